"""Stalls of the machine itself, measured beside an open-loop run, so that a run's p99
can be told apart from the server's own doing.

    python benchmarks/stalls.py SECONDS FOLDER

Two probes, each in a thread of its own, for SECONDS; then one JSON line:
- scheduling: a thread asks to sleep 1 ms, again and again; how late it wakes is how long
  a runnable process can wait for a core (a neighbour's burst, the hypervisor's steal).
- disk: every 20 ms, 8 KiB written and fdatasync'ed to a file in FOLDER (put it on the
  database's disk): what a COMMIT waits for, as PostgreSQL's WAL flush does.
Each gives its worst delay and how many went over 20 ms and over 50 ms. The disk probe
adds 50 small flushes a second, a small load of its own beside the server's commits.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import threading
import time


def _summary(delays_ms: list[float]) -> dict[str, float | int]:
    return {
        "samples": len(delays_ms),
        "max_ms": round(max(delays_ms, default=0.0), 1),
        "over_20_ms": sum(1 for d in delays_ms if d > 20),
        "over_50_ms": sum(1 for d in delays_ms if d > 50),
    }


def scheduling(until: float, out: list[float]) -> None:
    clock = time.perf_counter
    while clock() < until:
        asked = clock()
        time.sleep(0.001)
        out.append((clock() - asked) * 1000 - 1)


def disk(until: float, folder: str, out: list[float]) -> None:
    clock = time.perf_counter
    block = os.urandom(8192)
    fd, path = tempfile.mkstemp(prefix="tremplin-stalls-", dir=folder)
    try:
        while clock() < until:
            os.write(fd, block)
            began = clock()
            os.fdatasync(fd)
            out.append((clock() - began) * 1000)
            time.sleep(0.02)
    finally:
        os.close(fd)
        os.unlink(path)


def main() -> None:
    seconds, folder = float(sys.argv[1]), sys.argv[2]
    until = time.perf_counter() + seconds
    late: list[float] = []
    flushes: list[float] = []
    threads = [
        threading.Thread(target=scheduling, args=(until, late)),
        threading.Thread(target=disk, args=(until, folder, flushes)),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    print(json.dumps({"scheduling": _summary(late), "disk": _summary(flushes)}))


if __name__ == "__main__":
    main()
