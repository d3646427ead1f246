"""The load client: an open-loop schedule of HTTP/1.1 POSTs over kept-alive connections.

A minimal client of its own rather than httpx: at 600 requests a second httpx spends more CPU
per request than the floor server does, on a machine whose two cores the client shares with
the service and the databases. Each request goes out at its scheduled time on an idle
connection (a new one if none is idle): a slow answer never delays the next send (open loop,
no coordinated omission).
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass, field

ANSWER_TIMEOUT = 60.0  # seconds


@dataclass
class Request:
    at: float  # seconds after the schedule's start
    body: bytes
    headers: dict[str, str]
    key: tuple[str, str] = ("", "")  # what the caller matches the answer with


@dataclass
class Answer:
    key: tuple[str, str]
    status: int
    body: bytes
    late: float  # how long after its scheduled time the request went out (client lag)


@dataclass
class Pool:
    host: str
    port: int
    path: str
    max_connections: int = 256
    _idle: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = field(default_factory=list)
    _open: int = 0
    _freed: asyncio.Condition | None = None

    async def _connection(
        self, fresh: bool = False
    ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter, bool]:
        """A connection and whether it was kept alive from an earlier request."""
        if self._freed is None:
            self._freed = asyncio.Condition()
        while not self._idle and self._open >= self.max_connections:
            async with self._freed:
                await self._freed.wait()
        if self._idle and not fresh:
            return (*self._idle.pop(), True)
        self._open += 1
        return (*await asyncio.open_connection(self.host, self.port), False)

    async def _release(self, conn: tuple[asyncio.StreamReader, asyncio.StreamWriter]) -> None:
        self._idle.append(conn)
        await self._notify()

    async def _notify(self) -> None:
        """A request waiting for a connection may go: one came back idle, or one failed and
        made room for a new one (without this, a waiter whose slot freed by a failure was
        never woken, and a run at the pool's limit could hang)."""
        assert self._freed is not None
        async with self._freed:
            self._freed.notify()

    def _head(self, body: bytes, headers: dict[str, str]) -> bytes:
        lines = [f"POST {self.path} HTTP/1.1", f"Host: {self.host}:{self.port}",
                 f"Content-Length: {len(body)}"]  # fmt: skip
        lines += [f"{k}: {v}" for k, v in headers.items()]
        return ("\r\n".join(lines) + "\r\n\r\n").encode()

    async def post(self, body: bytes, headers: dict[str, str]) -> tuple[int, bytes]:
        reader, writer, reused = await self._connection()
        try:
            return await self._exchange(reader, writer, body, headers)
        except (asyncio.IncompleteReadError, ConnectionError):
            if not reused:
                raise
        # The server closed a kept-alive connection while it sat idle (uvicorn: after 5 s):
        # what any HTTP client does, send again on a new one.
        reader, writer, _ = await self._connection(fresh=True)
        return await self._exchange(reader, writer, body, headers)

    async def _exchange(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        body: bytes,
        headers: dict[str, str],
    ) -> tuple[int, bytes]:
        try:
            writer.write(self._head(body, headers) + body)
            status_line = await reader.readuntil(b"\r\n")
            status = int(status_line.split(b" ", 2)[1])
            length = 0
            while True:
                line = await reader.readuntil(b"\r\n")
                if line == b"\r\n":
                    break
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value.strip())
            payload = await reader.readexactly(length)
        except BaseException:
            self._open -= 1
            writer.close()
            await self._notify()
            raise
        await self._release((reader, writer))
        return status, payload

    async def close(self) -> None:
        for _, writer in self._idle:
            writer.close()
        self._idle.clear()
        self._open = 0


async def run_schedule(pool: Pool, requests: list[Request], begin: float) -> list[Answer]:
    """Send each request at its time (`begin`, a `time.perf_counter()` value, + its `at`), never
    waiting for earlier answers; the answers (status 0: the request failed) once all are in."""
    answers: list[Answer] = []

    async def one(request: Request) -> None:
        late = time.perf_counter() - (begin + request.at)
        try:
            # An answer that never comes is a failed request, not a bench that never ends.
            status, payload = await asyncio.wait_for(
                pool.post(request.body, request.headers), ANSWER_TIMEOUT
            )
        except (OSError, asyncio.IncompleteReadError, ValueError, TimeoutError) as exc:
            status, payload = 0, repr(exc).encode()
        answers.append(Answer(request.key, status, payload, late))

    tasks: list[asyncio.Task[None]] = []
    for request in sorted(requests, key=lambda r: r.at):
        delay = begin + request.at - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(request)))
    await asyncio.gather(*tasks)
    return answers


def call_id_of(answer: Answer) -> int | None:
    """The service's call id from a 2xx answer of the telephony webhook."""
    if not 200 <= answer.status < 300:
        return None
    return int(json.loads(answer.body)["call_id"])
