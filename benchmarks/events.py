"""`make bench-events`: webhook delivery by one worker to a local receiver, on PostgreSQL.

Creates a database for the run (dropped after), subscribes a receiver on the loopback,
and measures with one worker process (`python -m app worker`, default settings except
loopback targets allowed):
  (a) throughput: EVENTS events committed up front, then drained by the worker:
      events delivered per second, beside a baseline measured in the same run: the
      same receiver hit by a bare HTTP client (no database, no signing) with the same
      concurrency; the ratio says what the outbox, leases and records cost;
  (b) delay from commit to delivery while events keep coming (RATE per second for
      SECONDS seconds, one event per transaction): p50 and p99, beside the worker's
      poll interval, which bounds the idle wait.
BENCH_POSTGRES_URL: the server to use (default the local one); EVENTS, RATE, SECONDS
size the run; BENCH_KEEP=1 keeps the database.
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import statistics
import subprocess
import sys
import time
from pathlib import Path

import asyncpg
import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from app import migrations  # noqa: E402
from app.config import Settings  # noqa: E402
from app.db import create_engine, create_sessionmaker, session_scope  # noqa: E402
from app.domain.enums import ActorKind, Role  # noqa: E402
from app.domain.ids import uuid7  # noqa: E402
from app.domain.webhooks import new_secret  # noqa: E402
from app.models import WebhookSubscription  # noqa: E402
from app.schemas.events import CandidateDeleted  # noqa: E402
from app.services import events  # noqa: E402
from app.services.jobs import JOBS  # noqa: E402

SERVER = os.environ.get("BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
N_EVENTS = int(os.environ.get("EVENTS", "5000"))
RATE = float(os.environ.get("RATE", "100"))
SECONDS = float(os.environ.get("SECONDS", "10"))
CONCURRENCY = 16  # the worker's default WEBHOOK_CONCURRENCY


class Receiver:
    """A minimal HTTP/1.1 server answering 200 at once; notes when each id arrives."""

    def __init__(self) -> None:
        self.arrivals: dict[str, float] = {}
        self.requests = 0
        self.server: asyncio.Server | None = None

    async def start(self) -> int:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        port: int = self.server.sockets[0].getsockname()[1]
        return port

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                headers = {}
                for line in head.decode("latin-1").split("\r\n")[1:]:
                    name, _, value = line.partition(":")
                    headers[name.strip().lower()] = value.strip()
                await reader.readexactly(int(headers.get("content-length", "0")))
                self.requests += 1
                webhook_id = headers.get("webhook-id")
                if webhook_id:
                    self.arrivals.setdefault(webhook_id, time.time())
                writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n")
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()


async def baseline(port: int, count: int) -> float:
    """Requests per second a bare client gets from the receiver, same concurrency."""
    body = json.dumps({"type": "baseline", "data": {"id": str(uuid7())}}).encode()
    queue: asyncio.Queue[int] = asyncio.Queue()
    for n in range(count):
        queue.put_nowait(n)
    async with httpx.AsyncClient() as http:

        async def drain() -> None:
            while not queue.empty():
                queue.get_nowait()
                await http.post(f"http://127.0.0.1:{port}/baseline", content=body)

        started = time.perf_counter()
        await asyncio.gather(*(drain() for _ in range(CONCURRENCY)))
        return count / (time.perf_counter() - started)


async def create_database() -> str:
    name = f"tremplin_bench_events_{secrets.token_hex(3)}"
    conn = await asyncpg.connect(SERVER)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    return (
        SERVER.replace("postgresql://", "postgresql+asyncpg://", 1).rsplit("/", 1)[0] + f"/{name}"
    )


async def drop_database(url: str) -> None:
    conn = await asyncpg.connect(SERVER)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{url.rsplit("/", 1)[1]}" WITH (FORCE)')
    finally:
        await conn.close()


async def emit(settings: Settings, count: int, per_transaction: int) -> dict[str, float]:
    """Commit `count` events; return each id's commit time."""
    engine = create_engine(settings)
    committed: dict[str, float] = {}
    try:
        maker = create_sessionmaker(engine)
        for start in range(0, count, per_transaction):
            async with session_scope(maker) as session:
                ids = [
                    str(
                        events.emit(
                            session, CandidateDeleted(candidate_id=uuid7()), events.Audience()
                        ).id
                    )
                    for _ in range(min(per_transaction, count - start))
                ]
            now = time.time()
            committed.update(dict.fromkeys(ids, now))
    finally:
        await engine.dispose()
    return committed


async def paced(settings: Settings, rate: float, seconds: float) -> dict[str, float]:
    engine = create_engine(settings)
    committed: dict[str, float] = {}
    try:
        maker = create_sessionmaker(engine)
        deadline = time.monotonic() + seconds
        interval = 1 / rate
        next_at = time.monotonic()
        while time.monotonic() < deadline:
            async with session_scope(maker) as session:
                event = events.emit(
                    session, CandidateDeleted(candidate_id=uuid7()), events.Audience()
                )
            committed[str(event.id)] = time.time()
            next_at += interval
            await asyncio.sleep(max(0.0, next_at - time.monotonic()))
    finally:
        await engine.dispose()
    return committed


async def wait_for(receiver: Receiver, ids: set[str], limit_s: float) -> None:
    deadline = time.monotonic() + limit_s
    while not ids <= receiver.arrivals.keys():
        if time.monotonic() > deadline:
            missing = len(ids - receiver.arrivals.keys())
            raise SystemExit(f"{missing} events not delivered within {limit_s:.0f} s")
        await asyncio.sleep(0.01)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def main() -> None:
    url = await create_database()
    receiver = Receiver()
    port = await receiver.start()
    worker = None
    try:
        await asyncio.to_thread(migrations.upgrade, url)
        settings = Settings(database_url=url, environment="test", jwt_signing_key="x" * 64)
        engine = create_engine(settings)
        async with session_scope(create_sessionmaker(engine)) as session:
            session.add(
                WebhookSubscription(
                    owner_kind=ActorKind.SYSTEM,
                    owner_id="bench",
                    role=Role.ADMIN,
                    url=f"http://127.0.0.1:{port}/hook",
                    event_types=[],
                    secret=new_secret(),
                    cursor=0,
                )
            )
        await engine.dispose()
        raw = await baseline(port, min(N_EVENTS, 2000))
        receiver.arrivals.clear()

        committed = await emit(settings, N_EVENTS, per_transaction=100)
        env = {
            **os.environ,
            "DATABASE_URL": url,
            "ENVIRONMENT": "test",
            "JWT_SIGNING_KEY": "x" * 64,
            "WEBHOOK_ALLOW_PRIVATE_TARGETS": "true",
            "WEBHOOK_ALLOW_HTTP": "true",
            "JOB_SCHEDULES": json.dumps(dict.fromkeys(JOBS, "off")),
        }
        started = time.perf_counter()
        worker = subprocess.Popen(
            [sys.executable, "-m", "app", "worker", "--name", "bench"],
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        await wait_for(receiver, set(committed), limit_s=600)
        drained = time.perf_counter() - started
        rate = N_EVENTS / drained

        receiver.arrivals.clear()
        live = await paced(settings, RATE, SECONDS)
        await wait_for(receiver, set(live), limit_s=120)
        delays = [(receiver.arrivals[i] - t) * 1000 for i, t in live.items()]

        load = os.getloadavg()[0]
        poll_ms = settings.worker_poll_interval_s * 1000
        print(f"bench-events on PostgreSQL (load average {load:.2f}, {os.cpu_count()} cores)")
        print(
            f"(a) throughput, one worker, {N_EVENTS} events queued: {rate:,.0f} events/s "
            f"delivered (drained in {drained:.1f} s, worker start included)"
        )
        print(
            f"    baseline, bare client to the same receiver, concurrency {CONCURRENCY}: "
            f"{raw:,.0f} requests/s; ratio worker/baseline {rate / raw:.2f}"
        )
        print(
            f"(b) commit to delivery, {RATE:.0f} events/s for {SECONDS:.0f} s "
            f"({len(delays)} events): p50 {statistics.median(delays):.0f} ms, "
            f"p99 {percentile(delays, 0.99):.0f} ms (poll interval {poll_ms:.0f} ms; "
            f"p50/poll {statistics.median(delays) / poll_ms:.2f})"
        )
        print(f"    requests received in all: {receiver.requests} (duplicates would show here)")
    finally:
        if worker is not None:
            worker.terminate()
            worker.wait(timeout=60)
        if receiver.server is not None:
            receiver.server.close()
        if not os.environ.get("BENCH_KEEP"):
            await drop_database(url)


if __name__ == "__main__":
    asyncio.run(main())
