"""An open-loop load generator: requests sent at a constant arrival rate, whatever the
server does, each one's latency counted from the instant it was due (no coordinated
omission). Runs in its own process; prints one JSON line.

    python benchmarks/openloop.py URL RATE SECONDS TOKEN [PATHS_FILE] [CONNECTIONS]

PATHS_FILE holds one request path per line, taken in turn; without it, the URL's path.
As wrk2 does, it keeps a fixed number of kept-alive connections (CONNECTIONS, 32 by
default), opened before the clock starts: a request due while all are busy waits for
one, and that wait counts in its latency. (Opening a connection whenever none was idle
made every hiccup a storm of new connections, a load of its own on the server.)
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from urllib.parse import urlsplit


class Connection:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    async def request(self, raw: bytes) -> int:
        self.writer.write(raw)
        head = await self.reader.readuntil(b"\r\n\r\n")
        status = int(head[9:12])
        length = 0
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        if length:
            await self.reader.readexactly(length)
        return status


async def run(
    url: str, rate: float, seconds: float, token: str, paths: list[str], connections: int
) -> dict:
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    requests = [
        (
            f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\n"
            f"Authorization: Bearer {token}\r\nConnection: keep-alive\r\n\r\n"
        ).encode()
        for path in paths
    ]
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    errors = 0

    async def connect() -> Connection:
        reader, writer = await asyncio.open_connection(host, port)
        return Connection(reader, writer)

    idle: asyncio.Queue[Connection] = asyncio.Queue()
    for _ in range(connections):
        idle.put_nowait(await connect())

    async def one(due: float, raw: bytes) -> None:
        nonlocal errors
        conn = await idle.get()
        try:
            status = await conn.request(raw)
        except (OSError, asyncio.IncompleteReadError, ValueError):
            # A kept-alive connection the server closed meanwhile: one more try on a new one.
            conn.writer.close()
            try:
                conn = await connect()
                status = await conn.request(raw)
            except (OSError, asyncio.IncompleteReadError, ValueError):
                errors += 1
                return
        finally:
            idle.put_nowait(conn)
        latencies.append(time.perf_counter() - due)
        statuses[status] = statuses.get(status, 0) + 1

    total = int(rate * seconds)
    tasks = []
    start = time.perf_counter() + 0.2
    for i in range(total):
        due = start + i / rate
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(due, requests[i % len(requests)])))
    await asyncio.gather(*tasks)
    elapsed = time.perf_counter() - start
    while not idle.empty():
        idle.get_nowait().writer.close()
    latencies.sort()

    def pct(p: float) -> float:
        if not latencies:
            return float("nan")
        return latencies[min(len(latencies) - 1, int(p * len(latencies)))] * 1000

    return {
        "sent": total,
        "answered": len(latencies),
        "errors": errors,
        "connections": connections,
        "statuses": statuses,
        "achieved_rate": len(latencies) / elapsed,
        "elapsed_s": elapsed,
        "p50_ms": pct(0.50),
        "p99_ms": pct(0.99),
        "max_ms": latencies[-1] * 1000 if latencies else float("nan"),
    }


def main() -> None:
    url, rate, seconds, token = sys.argv[1], float(sys.argv[2]), float(sys.argv[3]), sys.argv[4]
    if len(sys.argv) > 5:
        with open(sys.argv[5]) as handle:
            paths = [line.strip() for line in handle if line.strip()]
    else:
        parts = urlsplit(url)
        paths = [parts.path + (f"?{parts.query}" if parts.query else "")]
    connections = int(sys.argv[6]) if len(sys.argv) > 6 else 32
    # uvloop when installed (uvicorn's): the generator's own CPU is shared with the server.
    try:
        import uvloop

        runner = uvloop.run
    except ImportError:
        runner = asyncio.run
    print(json.dumps(runner(run(url, rate, seconds, token, paths, connections))))


if __name__ == "__main__":
    main()
