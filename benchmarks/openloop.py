"""An open-loop load generator: requests sent at a constant arrival rate, whatever the
server does, each one's latency counted from the instant it was due (no coordinated
omission). Runs in its own process; prints one JSON line.

    python benchmarks/openloop.py URL RATE SECONDS TOKEN [PATHS_FILE] [CONNECTIONS]

PATHS_FILE holds one request path per line, taken in turn; without it, the URL's path.
As wrk2 does, it keeps a fixed number of kept-alive connections (CONNECTIONS, 32 by
default), opened before the clock starts, and request i is due at start + i / RATE: a
free connection takes the next request, waits for its due instant if it is early, sends
it at once if it is late; a request due while every connection is busy waits for one,
and that wait counts in its latency. (Opening a connection whenever none was idle made
every hiccup a storm of new connections, a load of its own on the server.)

It shares the machine with the server: one coroutine per connection, no task or queue
per request, and only the Content-Length header parsed, so that its own CPU stays small.
"""

from __future__ import annotations

import asyncio
import json
import resource
import sys
import time
from urllib.parse import urlsplit

_BROKEN = (OSError, asyncio.IncompleteReadError, ValueError)


async def exchange(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, raw: bytes) -> bytes:
    """Send one request, read its answer; the answer's head."""
    writer.write(raw)
    head = await reader.readuntil(b"\r\n\r\n")
    length = _length(head)
    if length:
        await reader.readexactly(length)
    return head


def _length(head: bytes) -> int:
    at = head.lower().find(b"\r\ncontent-length:")
    if at < 0:
        return 0
    end = head.find(b"\r\n", at + 2)
    return int(head[at + 17 : end])


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
    total = int(rate * seconds)
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    errors = 0
    taken = 0  # the next request to send (shared by the connections' coroutines)
    clock = time.perf_counter

    opened = [await asyncio.open_connection(host, port) for _ in range(connections)]
    start = clock() + 0.2

    async def connection(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal taken, errors
        while taken < total:
            i = taken
            taken += 1
            due = start + i / rate
            delay = due - clock()
            if delay > 0:
                await asyncio.sleep(delay)
            raw = requests[i % len(requests)]
            try:
                head = await exchange(reader, writer, raw)
            except _BROKEN:
                # A kept-alive connection the server closed meanwhile: one more try on a
                # new one; if that fails too, this connection stops and counts an error.
                writer.close()
                try:
                    reader, writer = await asyncio.open_connection(host, port)
                    head = await exchange(reader, writer, raw)
                except _BROKEN:
                    errors += 1
                    return
            latencies.append(clock() - due)
            status = int(head[9:12])
            statuses[status] = statuses.get(status, 0) + 1
        writer.close()

    cpu_before = resource.getrusage(resource.RUSAGE_SELF)
    await asyncio.gather(*(connection(r, w) for r, w in opened))
    elapsed = clock() - start
    cpu_after = resource.getrusage(resource.RUSAGE_SELF)
    cpu = (cpu_after.ru_utime - cpu_before.ru_utime) + (cpu_after.ru_stime - cpu_before.ru_stime)
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
        "generator_cpu": cpu / elapsed,
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
