"""Faults, each against a PostgreSQL cluster of the test's own (tests/pg_cluster.py):
the server stopped and restarted under load, the server frozen (SIGSTOP) for longer
than every timeout, and the API killed (SIGKILL) under write load.

What a user would notice is asserted: answers are 2xx or a 503 problem with
Retry-After, never a 500 and never a hang (each request is guarded); readiness says
503 then 200; the API recovers without a restart; no write answered 2xx is lost; the
database's invariants hold (phases agree with history, capacities, one outbox event
per change). These tests use no `backend` fixture: they run once, on PostgreSQL only.
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from typing import Any

import asyncpg
import httpx
import pytest
from fastapi import FastAPI

from app import migrations
from app.config import PROJECT_ROOT
from app.main import create_app
from tests.conftest import TEST_SIGNING_KEY, create_api_client, get_token, http_client
from tests.factories import (
    candidate_payload,
    create_candidate,
    structure_payload,
    vacancy_payload,
)
from tests.pg_cluster import Cluster, postgres_bin
from tests.test_runtime import free_port, wait_for_http

pytestmark = pytest.mark.faults

PROBLEM_JSON = "application/problem+json"
# A request that has not answered after this long is a hang (every bound is far lower).
HANG_S = 20


def _required() -> None:
    if os.environ.get("CI", "").lower() in {"1", "true", "yes"}:
        return
    if postgres_bin() is None:
        pytest.skip("no PostgreSQL binaries (initdb, pg_ctl); set TEST_PG_BIN")


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    _required()
    bin_dir = postgres_bin()
    if bin_dir is None:
        pytest.fail("CI=true but no PostgreSQL binaries were found (TEST_PG_BIN)")
    server = Cluster(bin_dir)
    try:
        server.init()
        server.start()
        yield server
    finally:
        server.destroy()


@pytest.fixture
async def database(cluster: Cluster) -> AsyncIterator[str]:
    """A migrated database of the cluster (SQLAlchemy URL), dropped after the test."""
    name = f"faults_{secrets.token_hex(4)}"
    conn = await asyncpg.connect(cluster.url)
    await conn.execute(f'CREATE DATABASE "{name}"')
    await conn.close()
    url = cluster.url.replace("postgresql://", "postgresql+asyncpg://").rsplit("/", 1)[0]
    url += f"/{name}"
    await asyncio.to_thread(migrations.upgrade, url)
    try:
        yield url
    finally:
        conn = await asyncpg.connect(cluster.url)
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await conn.close()


def fault_settings(url: str) -> dict[str, Any]:
    """Short bounds, so that a fault outlives them within a test of a few seconds."""
    return {
        "database_url": url,
        "environment": "test",
        "jwt_signing_key": TEST_SIGNING_KEY,
        "rate_limit_admin": 1_000_000,
        "db_pool_size": 4,
        "db_pool_timeout_s": 1.5,
        "db_connect_timeout_s": 1.5,
        "db_command_timeout_s": 1.5,
        "readiness_timeout_s": 1,
        "db_retry_after_s": 1,
        "shutdown_timeout_s": 3,
    }


@dataclass
class Answer:
    phase: str
    status: int  # -1: no answer within HANG_S
    elapsed: float
    created: str | None = None
    problem: bool = True


@dataclass
class Load:
    """Workers posting structures and listing them until told to stop; every answer kept
    with the phase of the test it was sent and answered in. A request still in flight
    when the phase changed (sent just before the server stopped) is kept under
    "before->stopping": it must be bounded, but may go either way."""

    http: httpx.AsyncClient
    # A person read by id in turn with the writes and lists: that read runs alone, on a
    # connection of its own (app.services.candidates.get), and must be bounded too.
    person: str
    phase: str = "before"
    answers: list[Answer] = field(default_factory=list)
    stop: asyncio.Event = field(default_factory=asyncio.Event)

    async def worker(self, number: int) -> None:
        turn = 0
        while not self.stop.is_set():
            turn += 1
            phase, started = self.phase, time.monotonic()
            kind = (number + turn) % 3
            try:
                async with asyncio.timeout(HANG_S):
                    if kind == 0:
                        response = await self.http.post("/v1/structures", json=structure_payload())
                    elif kind == 1:
                        response = await self.http.get("/v1/structures", params={"limit": 5})
                    else:
                        response = await self.http.get(f"/v1/candidates/{self.person}")
            except TimeoutError:
                self.answers.append(Answer(phase, -1, time.monotonic() - started))
                continue
            if self.phase != phase:
                phase = f"{phase}->{self.phase}"
            answer = Answer(phase, response.status_code, time.monotonic() - started)
            if response.status_code == 201:
                answer.created = response.json()["id"]
            if response.status_code == 503:
                answer.problem = (
                    response.headers.get("content-type") == PROBLEM_JSON
                    and int(response.headers.get("retry-after", "0")) >= 1
                )
            self.answers.append(answer)
            await asyncio.sleep(0.01)

    def statuses(self, phase: str) -> set[int]:
        return {a.status for a in self.answers if a.phase == phase}

    def summary(self) -> str:
        out = []
        for phase in dict.fromkeys(a.phase for a in self.answers):
            mine = [a for a in self.answers if a.phase == phase]
            counts = {
                s: sum(1 for a in mine if a.status == s) for s in sorted({a.status for a in mine})
            }
            slowest = max(a.elapsed for a in mine)
            out.append(f"{phase}: {counts}, slowest {slowest:.2f} s")
        return "; ".join(out)


async def admin_client(application: FastAPI) -> httpx.AsyncClient:
    credentials = await create_api_client(application.state.sessionmaker, "admin")
    async with http_client(application) as anonymous:
        token = await get_token(anonymous, credentials)
    transport = httpx.ASGITransport(app=application, raise_app_exceptions=False)
    return httpx.AsyncClient(
        transport=transport,
        base_url="http://tremplin.test",
        headers={"Authorization": f"Bearer {token}"},
    )


async def ready(http: httpx.AsyncClient, within_s: float = 60) -> int:
    """Poll /readyz until 200 (or the deadline); the last status."""
    deadline = time.monotonic() + within_s
    status = 0
    while time.monotonic() < deadline:
        async with asyncio.timeout(HANG_S):
            status = (await http.get("/readyz")).status_code
        if status == 200:
            break
        await asyncio.sleep(0.2)
    return status


async def stored_ids(url: str, table: str, ids: list[str]) -> set[str]:
    conn = await asyncpg.connect(url.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        rows = await conn.fetch(f"SELECT id::text FROM {table} WHERE id::text = ANY($1)", ids)
    finally:
        await conn.close()
    return {r[0] for r in rows}


def assert_answers_bounded(load: Load) -> None:
    assert all(a.status != -1 for a in load.answers), f"a request hung: {load.summary()}"
    assert {a.status for a in load.answers} <= {200, 201, 503}, load.summary()
    assert all(a.problem for a in load.answers if a.status == 503), "a 503 without Retry-After"


async def assert_no_write_lost(url: str, load: Load) -> None:
    created = [a.created for a in load.answers if a.created]
    assert created
    assert await stored_ids(url, "structures", created) == set(created)


async def test_stop_and_restart_under_load(cluster: Cluster, database: str) -> None:
    application = create_app(fault_settings_obj(database))
    async with application.router.lifespan_context(application):
        http = await admin_client(application)
        load = Load(http, (await create_candidate(http))["id"])
        workers = [asyncio.create_task(load.worker(i)) for i in range(6)]
        await asyncio.sleep(1.5)
        load.phase = "stopping"
        await asyncio.to_thread(cluster.stop)
        load.phase = "down"
        async with asyncio.timeout(HANG_S):
            down_ready = (await http.get("/readyz")).status_code
        await asyncio.sleep(1.5)
        load.phase = "restarting"
        await asyncio.to_thread(cluster.start)
        assert await ready(http) == 200  # recovered, without restarting the API
        load.phase = "after"
        await asyncio.sleep(1.5)
        load.stop.set()
        await asyncio.gather(*workers)
        await http.aclose()
    print(f"\n[stop/restart] {load.summary()}")
    assert down_ready == 503
    assert_answers_bounded(load)
    assert load.statuses("before") <= {200, 201}
    assert load.statuses("down") == {503}  # every answer while stopped: a fast 503
    assert load.statuses("after") <= {200, 201}
    assert 201 in load.statuses("after")
    await assert_no_write_lost(database, load)


async def test_a_frozen_server_gives_bounded_answers_then_recovers(
    cluster: Cluster, database: str
) -> None:
    """SIGSTOP for longer than the connect, command, pool and readiness timeouts."""
    application = create_app(fault_settings_obj(database))
    context = application.router.lifespan_context(application)
    await context.__aenter__()
    frozen: list[int] = []
    try:
        http = await admin_client(application)
        load = Load(http, (await create_candidate(http))["id"])
        workers = [asyncio.create_task(load.worker(i)) for i in range(6)]
        await asyncio.sleep(1.5)
        load.phase = "frozen"
        frozen = cluster.freeze()
        async with asyncio.timeout(HANG_S):
            frozen_ready = (await http.get("/readyz")).status_code
        await asyncio.sleep(4)
        load.phase = "thawing"
        cluster.thaw(frozen)
        frozen = []
        assert await ready(http) == 200
        load.phase = "after"
        await asyncio.sleep(1.5)
        load.stop.set()
        await asyncio.gather(*workers)
        print(f"\n[freeze] {load.summary()}")
        assert frozen_ready == 503
        assert_answers_bounded(load)
        assert 503 in load.statuses("frozen")
        assert load.statuses("after") <= {200, 201}
        assert 201 in load.statuses("after")
        await assert_no_write_lost(database, load)
        # Shutting down while the server is frozen is bounded too.
        async with asyncio.timeout(HANG_S):
            await http.get("/v1/structures")
        frozen = cluster.freeze()
        started = time.monotonic()
        async with asyncio.timeout(HANG_S):
            await context.__aexit__(None, None, None)
        print(f"[freeze] shutdown with a frozen server: {time.monotonic() - started:.2f} s")
        context = None
        await http.aclose()
    finally:
        cluster.thaw(frozen)
        if context is not None:
            await context.__aexit__(None, None, None)


def fault_settings_obj(url: str) -> Any:
    from app.config import Settings

    return Settings(**fault_settings(url))


# --- SIGKILL of the API under write load ----------------------------------------------------


@dataclass
class Ledger:
    """What the API answered 2xx, as a user would remember it."""

    candidates: set[str] = field(default_factory=set)
    moved: set[str] = field(default_factory=set)  # candidates moved to support
    placements: set[str] = field(default_factory=set)
    accepted: set[str] = field(default_factory=set)
    other: dict[int, int] = field(default_factory=dict)


async def writer(http: httpx.AsyncClient, vacancies: list[str], insertion: str, ledger: Ledger,
                 number: int) -> None:  # fmt: skip
    """Candidates registered, proposed, accepted and moved along the path, until the API
    dies under it."""
    turn = 0
    try:
        while True:
            turn += 1
            created = await http.post("/v1/candidates", json=candidate_payload(insertion))
            if created.status_code != 201:
                ledger.other[created.status_code] = ledger.other.get(created.status_code, 0) + 1
                continue
            candidate = created.json()["id"]
            ledger.candidates.add(candidate)
            vacancy = vacancies[(number + turn) % len(vacancies)]
            proposed = await http.post(
                "/v1/placements", json={"candidate_id": candidate, "vacancy_id": vacancy}
            )
            if proposed.status_code == 201:
                placement = proposed.json()["id"]
                ledger.placements.add(placement)
                accepted = await http.post(
                    f"/v1/placements/{placement}/transitions", json={"to": "accepted"}
                )
                if accepted.status_code == 200:
                    ledger.accepted.add(placement)
            moved = await http.post(
                f"/v1/candidates/{candidate}/transitions",
                json={"to": "support", "force": True, "note": "fault test"},
            )
            if moved.status_code == 200:
                ledger.moved.add(candidate)
    except httpx.TransportError:
        return  # the API is gone


async def test_killing_the_api_under_write_load_loses_nothing(
    cluster: Cluster, database: str
) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_", "REDIS_"))}
    env.update(
        DATABASE_URL=database,
        JWT_SIGNING_KEY=TEST_SIGNING_KEY,
        RATE_LIMIT_ADMIN="1000000",
        ENVIRONMENT="test",
    )
    created = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "app", "create-client", "--role", "admin", "--name", "faults"],
        cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, check=True,
    )  # fmt: skip
    credentials = json.loads(created.stdout)

    def serve() -> tuple[subprocess.Popen[bytes], str]:
        port = free_port()
        server = subprocess.Popen(
            [sys.executable, "-m", "app", "serve", "--port", str(port)],
            cwd=PROJECT_ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        base = f"http://127.0.0.1:{port}"
        wait_for_http(f"{base}/healthz", server)
        return server, base

    server, base = await asyncio.to_thread(serve)
    ledger = Ledger()
    try:
        async with httpx.AsyncClient(base_url=base, timeout=HANG_S) as anonymous:
            token = (
                await anonymous.post(
                    "/v1/oauth/token", data={"grant_type": "client_credentials", **credentials}
                )
            ).json()["access_token"]
        headers = {"Authorization": f"Bearer {token}"}
        async with httpx.AsyncClient(base_url=base, timeout=HANG_S, headers=headers) as http:
            insertion = (await http.post("/v1/structures", json=structure_payload())).json()["id"]
            landlord = (
                await http.post("/v1/structures", json=structure_payload("landlord"))
            ).json()["id"]
            vacancies = [
                (
                    await http.post("/v1/vacancies", json=vacancy_payload(landlord, positions=2))
                ).json()["id"]
                for _ in range(5)
            ]
            writers = [
                asyncio.create_task(writer(http, vacancies, insertion, ledger, i)) for i in range(6)
            ]
            await asyncio.sleep(2.5)
            server.send_signal(signal.SIGKILL)
            await asyncio.to_thread(server.wait, 30)
            async with asyncio.timeout(HANG_S):
                await asyncio.gather(*writers)
    finally:
        if server.poll() is None:
            server.kill()
    print(
        f"\n[SIGKILL] answered 2xx before the kill: {len(ledger.candidates)} candidates, "
        f"{len(ledger.placements)} placements, {len(ledger.accepted)} acceptances, "
        f"{len(ledger.moved)} moves; other answers {ledger.other}"
    )
    assert ledger.candidates
    assert ledger.accepted
    assert ledger.moved
    assert not (set(ledger.other) - {409}), ledger.other
    await assert_invariants(database, ledger, vacancies)

    # A new API process serves the same database at once.
    server, base = await asyncio.to_thread(serve)
    try:
        async with httpx.AsyncClient(base_url=base, timeout=HANG_S, headers=headers) as http:
            assert (await http.get("/readyz")).status_code == 200
            some = sorted(ledger.moved)[0]
            assert (await http.get(f"/v1/candidates/{some}")).json()["phase"] == "support"
    finally:
        server.terminate()
        await asyncio.to_thread(server.wait, 30)


async def assert_invariants(url: str, ledger: Ledger, vacancies: list[str]) -> None:
    conn = await asyncpg.connect(url.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        # Every write answered 2xx is there.
        candidates = {r[0] for r in await conn.fetch("SELECT id::text FROM candidates")}
        assert ledger.candidates <= candidates
        placements = {
            r[0]: r[1] for r in await conn.fetch("SELECT id::text, status FROM placements")
        }
        assert ledger.placements <= set(placements)
        assert all(placements[p] == "accepted" for p in ledger.accepted)
        moved = {
            r[0]
            for r in await conn.fetch(
                "SELECT candidate_id::text FROM candidate_transitions WHERE to_phase = 'support'"
            )
        }
        assert ledger.moved <= moved
        # Phases agree with history: the phase is where the last move led (or the start).
        disagreeing = await conn.fetch(
            """
            SELECT c.id FROM candidates c
            LEFT JOIN LATERAL (
                SELECT to_phase FROM candidate_transitions t
                WHERE t.candidate_id = c.id ORDER BY t.at DESC, t.id DESC LIMIT 1
            ) last ON true
            WHERE c.phase <> coalesce(last.to_phase, 'recruitment')
            """
        )
        assert disagreeing == []
        # Capacities hold, and the vacancy's count is the placements' count.
        over = await conn.fetch(
            """
            SELECT v.id, v.positions, v.filled_positions, count(p.id) AS held
            FROM vacancies v LEFT JOIN placements p
              ON p.vacancy_id = v.id AND p.status IN ('accepted', 'started')
            GROUP BY v.id
            HAVING count(p.id) > v.positions OR count(p.id) <> v.filled_positions
            """
        )
        assert over == []
        held = await conn.fetchval(
            "SELECT count(*) FROM placements WHERE status = 'accepted' AND vacancy_id::text = "
            "ANY($1)",
            vacancies,
        )
        assert held <= 2 * len(vacancies)
        # Every change has its outbox event, in the same number.
        missing = await conn.fetch(
            """
            SELECT c.id FROM candidates c
            WHERE (SELECT count(*) FROM candidate_transitions t WHERE t.candidate_id = c.id
                   AND t.from_phase IS NOT NULL)
               <> (SELECT count(*) FROM events e WHERE e.subject_id = c.id
                   AND e.type = 'candidate.phase_changed')
               -- the path's entry row goes with the person's creation event
               OR (SELECT count(*) FROM events e WHERE e.subject_id = c.id
                   AND e.type = 'candidate.created') <> 1
            UNION ALL
            SELECT p.id FROM placements p
            WHERE (SELECT count(*) FROM placement_transitions t WHERE t.placement_id = p.id)
               <> (SELECT count(*) FROM events e WHERE e.subject_id = p.id
                   AND e.type = 'placement.status_changed')
               OR (SELECT count(*) FROM events e WHERE e.subject_id = p.id
                   AND e.type = 'placement.proposed') <> 1
            """
        )
        assert missing == []
    finally:
        await conn.close()
