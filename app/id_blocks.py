"""Ids taken from a table's sequence a block at a time, for rows whose ids must be known
before the statement that inserts them (issue 19).

The express path (app.calls.express) plans an event's messages before it writes anything,
and a new alert's message carries the alert's id: the id is taken ahead. One statement per
id would cost a round trip per alert; a block of them costs one per `block` alerts. The ids
are the sequence's own, so rows inserted with them and rows that take the column's default
never collide; a block a process does not use up (it stopped) leaves a gap, as a rolled back
insert does. Within one call the ids still rise in the order its alerts were raised; across
processes they follow no time order (nothing orders alerts of different calls by id).
"""

from __future__ import annotations

from app.db_direct import Direct


class IdBlocks:
    """Ids of the sequence `sequence`, `block` (or as many as asked, if more) per statement."""

    def __init__(self, sequence: str, block: int = 32) -> None:
        if not sequence.replace("_", "").isalnum():
            raise ValueError(f"not a sequence name: {sequence!r}")
        self._sql = f"SELECT nextval('{sequence}') FROM generate_series(1, $1)"
        self.block = block
        self._free: list[int] = []
        self.statements = 0  # blocks taken (for tests and benchmarks)

    async def take(self, direct: Direct, n: int) -> list[int]:
        """`n` unused ids, ascending."""
        if n <= 0:
            return []
        if len(self._free) < n:
            rows = await direct.fetch(self._sql, max(n, self.block))
            self.statements += 1
            # A concurrent taker that also found the block short adds its own beside this
            # one: kept in order, each id handed out once.
            self._free = sorted([*self._free, *(int(row[0]) for row in rows)])
        taken, self._free = self._free[:n], self._free[n:]
        return taken
