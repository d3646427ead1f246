"""Idle handler sockets per worker and the memory each costs (the worker's RSS growth).

    .venv/bin/python -m bench.sockets [--sockets 5000] [--handlers 500]

One worker on PostgreSQL + Redis; `handlers` accounts, each holding sockets/handlers sockets.
"""

from __future__ import annotations

import argparse
import asyncio
import json
from pathlib import Path
from typing import Any

from websockets.asyncio.client import connect

from bench.realtime_env import bench_backend, make_handlers, start_service


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError("no VmRSS")


async def run(args: argparse.Namespace, settings: Any) -> dict[str, Any]:
    handlers = [f"SK{i:04d}" for i in range(args.handlers)]
    tokens = await make_handlers(settings, handlers)
    service = await asyncio.to_thread(start_service, settings, 1)
    assert service.proc is not None
    sockets = []
    try:
        # Warm up the code paths (imports, pools) before the baseline.
        warm = await connect(
            service.ws_url + "/ws",
            additional_headers={"Authorization": f"Bearer {tokens[handlers[0]]}"},
        )
        await warm.recv()
        await warm.close()
        before = rss_kib(service.proc.pid)
        sem = asyncio.Semaphore(50)

        async def one(i: int) -> None:
            async with sem:
                token = tokens[handlers[i % len(handlers)]]
                ws = await connect(
                    service.ws_url + "/ws", additional_headers={"Authorization": f"Bearer {token}"},
                    max_queue=4,
                )  # fmt: skip
                assert json.loads(await ws.recv())["type"] == "hello"
                sockets.append(ws)

        await asyncio.gather(*(one(i) for i in range(args.sockets)))
        await asyncio.sleep(2)  # let the worker settle (allocator) before reading RSS
        after = rss_kib(service.proc.pid)
        return {
            "sockets": len(sockets), "handlers": args.handlers, "rss_before_kib": before,
            "rss_after_kib": after, "kib_per_socket": round((after - before) / len(sockets), 1),
        }  # fmt: skip
    finally:
        await asyncio.gather(*(ws.close() for ws in sockets), return_exceptions=True)
        service.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sockets", type=int, default=5000)
    parser.add_argument("--handlers", type=int, default=500)
    args = parser.parse_args()
    with bench_backend() as settings:
        print(json.dumps(asyncio.run(run(args, settings)), indent=2))


if __name__ == "__main__":
    main()
