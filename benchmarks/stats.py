"""`make bench-stats`: the figures at national scale, on PostgreSQL.

Builds a synthetic history (100,000 people over the real départements since 2013: their
moves, placements and their moves, follow-ups and activities, about 1,000,000 history
rows, a fifth of it imported late) with COPY into a database of its own, then times each
stats endpoint, nationally and for one département, with and without `as_of`, through
the whole application in this process (httpx over ASGI: authentication, permissions,
SQL, JSON). Each p50 is printed beside the p50 of one hand-written SQL query computing
the same figures on the same connection pool's server (the floor), after checking that
both give the same numbers. Goals: p50 <= 500 ms nationally, within 2x of the floor.

BENCH_POSTGRES_URL: the server (default the local one); BENCH_CANDIDATES (default
100000); BENCH_RUNS (default 11); BENCH_KEEP=1 keeps the database for profiling, and
BENCH_DATABASE=<its postgresql:// URL> times it again without rebuilding it.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import random
import statistics
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from app import migrations  # noqa: E402
from app.config import Settings  # noqa: E402
from app.db import session_scope  # noqa: E402
from app.domain.geography import DEPARTEMENT_CENTRES, DEPARTEMENT_REGION  # noqa: E402
from app.domain.identifiers import luhn_valid  # noqa: E402
from app.domain.ids import uuid7  # noqa: E402
from app.main import create_app  # noqa: E402
from app.schemas.access import ApiClientCreate  # noqa: E402
from app.schemas.placements import _months_later as months_later  # noqa: E402
from app.services import clients  # noqa: E402
from app.services.stats import _due_cutoff  # noqa: E402

SERVER = os.environ.get("BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
N_CANDIDATES = int(os.environ.get("BENCH_CANDIDATES", "100000"))
RUNS = int(os.environ.get("BENCH_RUNS", "11"))
RNG = random.Random(2013)
NOW = datetime.now(UTC)
TODAY = NOW.date()
FIRST = date(2013, 1, 1)
IMPORTED_ON = datetime(2021, 3, 1, 8, tzinfo=UTC)  # history before it was imported that day
HEAVY = {"75": 4, "13": 4, "59": 5, "69": 4, "92": 3, "93": 3, "94": 3, "33": 3, "31": 3,
         "44": 3, "76": 3, "62": 3, "77": 3, "78": 3, "91": 3, "95": 3}  # fmt: skip
DEPS = sorted(DEPARTEMENT_CENTRES)
DEP_WEIGHTS = [HEAVY.get(d, 1) for d in DEPS]
LOCAL = "59"
ACTOR = ("system", "system", "admin")
EXITS = ["other_job", "other_training", "moved_away", "dropped_out", "not_suited", "other"]


def siret(i: int) -> str:
    base = f"77{i:011d}"
    return next(base + str(d) for d in range(10) if luhn_valid(base + str(d)))


def commune_of(dep: str) -> tuple[str, str]:
    insee = f"{dep}001" if len(dep) == 2 else f"{dep}01"
    postcode = "20000" if dep in ("2A", "2B") else f"{dep}000"[:5] if len(dep) == 2 else f"{dep}00"
    return insee, postcode


def instant(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, 8, tzinfo=UTC) + timedelta(
        minutes=RNG.randint(0, 600)
    )


class History:
    """Everything generated, as COPY records."""

    def __init__(self) -> None:
        self.structures: list[tuple[Any, ...]] = []
        self.candidates: list[tuple[Any, ...]] = []
        self.vacancies: list[tuple[Any, ...]] = []
        self.transitions: list[tuple[Any, ...]] = []
        self.placements: list[tuple[Any, ...]] = []
        self.moves: list[tuple[Any, ...]] = []
        self.activities: list[tuple[Any, ...]] = []
        self.insertion: dict[str, list[uuid.UUID]] = {}
        self.jobs: dict[str, list[list[Any]]] = {}  # département -> [vacancy id, held]

    def recorded(self, at: datetime, previous: datetime | None, imported: bool) -> datetime:
        """When the database learnt of something that took effect at `at`."""
        when = IMPORTED_ON + timedelta(minutes=RNG.randint(0, 60 * 24 * 30)) if imported else at
        when = max(when, at + timedelta(minutes=RNG.randint(1, 60 * 48)))
        when = min(when, max(NOW, at))
        return max(when, previous) if previous else when

    def build(self) -> None:
        for i in range(1000):
            kind = "insertion" if i < 500 else "landlord" if i < 900 else "partner"
            dep = DEPS[i % len(DEPS)]
            insee, postcode = commune_of(dep)
            sid = uuid7()
            if kind == "insertion":
                self.insertion.setdefault(dep, []).append(sid)
            if kind == "landlord":
                for _ in range(10):
                    vid = uuid7()
                    self.jobs.setdefault(dep, []).append([vid, sid, 0])
            self.structures.append(
                (sid, kind, {"insertion": "AI", "landlord": "OPH", "partner": "plie"}[kind],
                 f"Structure {i} (synthetic)", siret(i), None, postcode, insee, None, dep,
                 DEPARTEMENT_REGION[dep], None, None, NOW, NOW, 1)
            )  # fmt: skip
        everywhere = [s for xs in self.insertion.values() for s in xs]
        all_jobs = [j for js in self.jobs.values() for j in js]
        for dep in RNG.choices(DEPS, DEP_WEIGHTS, k=N_CANDIDATES):
            self.person(dep, RNG.choice(self.insertion.get(dep) or everywhere), all_jobs)
        for dep, jobs in self.jobs.items():
            insee, postcode = commune_of(dep)
            for vid, landlord, held in jobs:
                self.vacancies.append(
                    (vid, landlord, "Gardien d'immeuble (synthetic)", None, "job", None, "cdi",
                     "K2501", "15228", 35.0, 200, held, None, postcode, insee, None, dep,
                     DEPARTEMENT_REGION[dep], None, None, False, False, "{}", None,
                     FIRST, None, "open", NOW, NOW, 1)
                )  # fmt: skip

    def person(self, dep: str, structure: uuid.UUID, all_jobs: list[list[Any]]) -> None:
        cid = uuid7()
        entered = FIRST + timedelta(days=RNG.randint(0, (TODAY - FIRST).days - 5))
        imported = entered < IMPORTED_ON.date() and RNG.random() < 0.9
        rows: list[list[Any]] = []
        reached: set[str] = set()
        at, phase, previous_recorded = instant(entered), None, None

        def move(target: str, when: datetime, reason: str | None = None) -> None:
            nonlocal phase, previous_recorded
            rec = self.recorded(when, previous_recorded, imported)
            rows.append([uuid7(rec), cid, phase, target, reason, False, target not in reached,
                         when, rec, None, None, rows[0][7] if rows else when])  # fmt: skip
            reached.add(target)
            phase, previous_recorded = target, rec

        move("recruitment", at)
        self.activity(cid, "work_trial", "recruitment", at + timedelta(days=5), imported)
        self.activity(cid, "project_evaluation", "recruitment", at + timedelta(days=12), imported)
        for _ in range(8):
            at = at + timedelta(days=RNG.randint(20, 200))
            if at > NOW - timedelta(days=2):
                break
            roll = RNG.random()
            if phase == "recruitment":
                target, reason = ("support", None) if roll < 0.8 else ("exited", RNG.choice(EXITS))
            elif phase == "support":
                target, reason = (
                    ("securing", None) if roll < 0.65
                    else ("recruitment", "mission_broke_down") if roll < 0.7
                    else ("exited", RNG.choice(EXITS))
                )  # fmt: skip
                self.activity(cid, "training", "support", at - timedelta(days=15), imported, 150)
                self.activity(cid, "work_mission", "support", at - timedelta(days=12), imported)
                self.activity(cid, "skills_assessment", "support", at - timedelta(days=9), imported)
            elif phase == "securing":
                self.activity(
                    cid, "certification_exam", "securing", at - timedelta(days=9), imported
                )
                self.activity(cid, "hiring_support", "securing", at - timedelta(days=8), imported)
                if RNG.random() < 0.5:
                    self.rejected(cid, dep, all_jobs, at - timedelta(days=7), imported)
                if roll < 0.6:
                    at = self.hire(cid, dep, all_jobs, at, imported, move)
                    continue
                target, reason = (
                    ("support", "failed_exam") if roll < 0.7 else ("exited", RNG.choice(EXITS))
                )
            elif phase == "employed":
                if roll < 0.9:
                    break
                continue  # the job's end is written by hire()
            else:  # exited
                if roll < 0.9:
                    break
                target, reason = "recruitment", "re_entry"
            move(target, at, reason)
        for current, following in itertools.pairwise(rows):
            current[9], current[10] = following[7], following[8]
        self.transitions += [tuple(r) + ACTOR + (None,) for r in rows]
        insee, postcode = commune_of(dep)
        self.candidates.append(
            (cid, "Prénom", "Synthétique", date(1985, 1, 1), None, None, postcode, insee, None,
             dep, DEPARTEMENT_REGION[dep], None, None, structure, None, 30, False, False, None,
             "{}", "[]", "[]", None, 0.0, 0, False, None, phase, rows[-1][7],
             rows[0][8], rows[-1][8], 1)
        )  # fmt: skip

    def activity(self, cid: uuid.UUID, kind: str, phase: str, at: datetime, imported: bool,
                 hours: float | None = None) -> None:  # fmt: skip
        day = min(at.date(), TODAY)
        rec = self.recorded(at, None, imported)
        outcome = None if kind == "training" else "positive" if RNG.random() < 0.7 else "negative"
        self.activities.append(
            (uuid7(rec), cid, kind, phase, day, None, outcome, hours, None,
             "external" if kind == "training" else None, None,
             "RNCP40892" if kind == "certification_exam" else None, None, None, "system",
             rec, rec, 1)
        )  # fmt: skip

    def rejected(self, cid: uuid.UUID, dep: str, all_jobs: list[list[Any]], at: datetime,
                 imported: bool) -> None:  # fmt: skip
        """A proposal the landlord turned down."""
        job = RNG.choice(self.jobs.get(dep) or all_jobs)
        pid, proposed = uuid7(), at - timedelta(days=20)
        rec = self.recorded(at, None, imported)
        self.moves.append(
            (uuid7(rec), pid, "proposed", "rejected", "not_suited", at, rec, *ACTOR, None)
        )
        self.placements.append(
            (pid, cid, job[0], "rejected", "job", proposed, at, None, None, None, None,
             "not_suited", None, None, None, None, None, None, None, proposed, rec, 1)
        )  # fmt: skip

    def hire(self, cid: uuid.UUID, dep: str, all_jobs: list[list[Any]], start: datetime,
             imported: bool, move: Callable[..., None]) -> datetime:  # fmt: skip
        """A job proposed, accepted and started (the move to employed), maybe ended; returns
        the instant of the last move."""
        job = RNG.choice(self.jobs.get(dep) or all_jobs)
        pid = uuid7()
        proposed, accepted = start - timedelta(days=30), start - timedelta(days=14)
        prev = None
        moves = []
        for origin, target, when in (
            ("proposed", "accepted", accepted),
            ("accepted", "started", start),
        ):
            prev = self.recorded(when, prev, imported)
            moves.append((uuid7(prev), pid, origin, target, None, when, prev, *ACTOR, None))
        move("employed", start, "job_started")
        status, ended_on, closing = "started", None, None
        ends = start + timedelta(days=RNG.randint(60, 900))
        if RNG.random() < 0.15 and ends < NOW - timedelta(days=2):
            prev = self.recorded(ends, prev, imported)
            moves.append(
                (uuid7(prev), pid, "started", "ended", "resigned", ends, prev, *ACTOR, None)
            )
            move("securing", ends, "job_ended")
            status, ended_on, closing = "ended", ends.date(), "resigned"
        else:
            job[2] += 1
        follow = {}
        for months in (6, 12):
            due = months_later(start.date(), months)
            if due <= TODAY and (ended_on is None or ended_on > due) and RNG.random() < 0.85:
                rec = self.recorded(instant(due), None, imported)
                follow[months] = (due, RNG.random() < 0.9, rec)
        six, twelve = follow.get(6, (None, None, None)), follow.get(12, (None, None, None))
        self.moves += moves
        self.placements.append(
            (pid, cid, job[0], status, "job", proposed, moves[-1][5], None, None, start.date(),
             ended_on, closing, None, six[0], six[1], twelve[0], twelve[1], six[2], twelve[2],
             proposed, moves[-1][6], 1)
        )  # fmt: skip
        return moves[-1][5]


COLUMNS = {
    "structures": "id kind sub_kind name siret address_line postcode commune_insee commune_name "
    "departement region latitude longitude created_at updated_at version",
    "candidates": "id first_name last_name birth_date email phone postcode commune_insee "
    "commune_name departement region latitude longitude structure_id referrer_id "
    "max_commute_km has_driving_licence accepts_onsite_housing available_from competencies "
    "certifications preferred_contract_types max_weekly_hours training_hours "
    "positive_skills_assessments consent_to_share consent_given_at phase phase_changed_at "
    "created_at updated_at version",
    "vacancies": "id landlord_id title description kind mission_type contract_type rome_code "
    "appellation_code weekly_hours positions filled_positions address_line postcode "
    "commune_insee commune_name departement region latitude longitude onsite_housing "
    "driving_licence_required required_competencies required_certification start_date "
    "end_date status created_at updated_at version",
    "candidate_transitions": "id candidate_id from_phase to_phase reason forced first_reach at "
    "recorded_at ended_at ended_recorded_at entered_at actor_kind actor_id actor_role note",
    "placements": "id candidate_id vacancy_id status vacancy_kind proposed_at status_changed_at "
    "start_date end_date started_on ended_on closing_reason notes follow_up_6m_on "
    "follow_up_6m_in_post follow_up_12m_on follow_up_12m_in_post follow_up_6m_recorded_at "
    "follow_up_12m_recorded_at created_at updated_at version",
    "placement_transitions": "id placement_id from_status to_status reason at recorded_at "
    "actor_kind actor_id actor_role note",
    "activities": "id candidate_id type phase occurred_on end_on outcome hours landlord_id "
    "training_mode certifying rncp_code competency_levels notes recorded_by created_at "
    "updated_at version",
}


async def build_database() -> str:
    name = f"tremplin_bench_stats_{os.getpid()}"
    conn = await asyncpg.connect(SERVER)
    await conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
    await conn.execute(f'CREATE DATABASE "{name}"')
    await conn.close()
    url = SERVER.rsplit("/", 1)[0] + "/" + name
    await asyncio.to_thread(
        migrations.upgrade, url.replace("postgresql://", "postgresql+asyncpg://")
    )
    started = time.perf_counter()
    data = History()
    data.build()
    generated = time.perf_counter() - started
    conn = await asyncpg.connect(url)
    try:
        for table in COLUMNS:
            await conn.copy_records_to_table(
                table, records=getattr(data, TABLES[table]), columns=COLUMNS[table].split()
            )
        await conn.execute("VACUUM ANALYZE")
    finally:
        await conn.close()
    history = len(data.transitions) + len(data.moves) + len(data.activities)
    print(
        f"dataset: {len(data.candidates)} people, {history} history rows "
        f"({len(data.transitions)} path moves, {len(data.moves)} placement moves, "
        f"{len(data.activities)} activities), {len(data.placements)} placements; "
        f"generated in {generated:.1f} s, "
        f"copied in {time.perf_counter() - started - generated:.1f} s"
    )
    return url


TABLES = {
    "structures": "structures", "candidates": "candidates", "vacancies": "vacancies",
    "candidate_transitions": "transitions", "placements": "placements",
    "placement_transitions": "moves", "activities": "activities",
}  # fmt: skip


# --- the floor: each endpoint's figures in one hand-written query -------------------------

PEOPLE = f"AND candidate_id IN (SELECT id FROM candidates WHERE departement = '{LOCAL}')"
FUNNEL_SQL = """
WITH t AS (
    SELECT * FROM candidate_transitions
    WHERE recorded_at <= $3 AND at < $2 {people}
), exits AS (
    SELECT reason, count(*) AS n FROM (
        SELECT DISTINCT ON (candidate_id) reason FROM t
        WHERE to_phase = 'exited' AND at >= $1 ORDER BY candidate_id, at DESC, id DESC
    ) last GROUP BY reason
)
SELECT
    count(*) FILTER (WHERE from_phase IS NULL AND at >= $1) AS entered,
    count(*) FILTER (WHERE to_phase = 'support' AND first_reach AND at >= $1) AS reached_support,
    count(*) FILTER (WHERE to_phase = 'securing' AND first_reach AND at >= $1) AS reached_securing,
    count(*) FILTER (WHERE to_phase = 'employed' AND first_reach AND at >= $1) AS hired,
    count(*) FILTER (WHERE to_phase = 'employed'
        AND (ended_at IS NULL OR ended_at >= $2 OR ended_recorded_at > $3)) AS employed_at_end,
    (SELECT coalesce(sum(n), 0) FROM exits) AS exited
FROM t
"""
OUTCOMES_SQL = """
WITH starts AS (
    SELECT pt.at, p.follow_up_12m_recorded_at
    FROM placement_transitions pt JOIN placements p ON p.id = pt.placement_id
    WHERE pt.to_status = 'started' AND p.vacancy_kind = 'job' AND pt.recorded_at <= $3
      AND pt.at >= $1 AND pt.at < $2 {people_p}
), path AS (
    SELECT from_phase, to_phase, first_reach, at, entered_at FROM candidate_transitions
    WHERE (from_phase IS NULL OR (to_phase = 'employed' AND first_reach))
      AND recorded_at <= $3 AND at < $2 {people}
), acts AS (
    SELECT candidate_id, sum(hours) FILTER (WHERE type = 'training') AS hours,
        bool_or(type = 'certification_exam') AS sat
    FROM activities
    WHERE type IN ('training', 'certification_exam') AND created_at <= $3
      AND occurred_on >= $1::date AND occurred_on < $2::date {people}
    GROUP BY candidate_id
)
SELECT
    (SELECT count(*) FROM starts) AS hires,
    (SELECT count(*) FROM starts WHERE at < $4) AS due_12m,
    (SELECT count(*) FROM starts WHERE at < $4 AND follow_up_12m_recorded_at <= $3)
        AS followed_12m,
    (SELECT count(*) FROM path WHERE from_phase IS NULL AND entered_at >= $1) AS entered,
    (SELECT count(*) FROM path WHERE to_phase = 'employed' AND entered_at >= $1) AS hired,
    (SELECT percentile_cont(0.5) WITHIN GROUP (
        ORDER BY (at AT TIME ZONE 'UTC')::date - (entered_at AT TIME ZONE 'UTC')::date)
     FROM path WHERE to_phase = 'employed' AND at >= $1) AS median_days,
    (SELECT coalesce(sum(hours), 0) FROM acts) AS training_hours,
    (SELECT count(*) FROM acts WHERE sat) AS sat
"""
MONTHLY_SQL = """
WITH entries AS (
    SELECT to_char(at AT TIME ZONE 'UTC', 'YYYY-MM') AS month, count(*) AS n
    FROM candidate_transitions
    WHERE from_phase IS NULL AND recorded_at <= $3 AND at >= $1 AND at < $2 {people}
    GROUP BY 1
), hires AS (
    SELECT to_char(pt.at AT TIME ZONE 'UTC', 'YYYY-MM') AS month, count(*) AS n
    FROM placement_transitions pt JOIN placements p ON p.id = pt.placement_id
    WHERE pt.to_status = 'started' AND p.vacancy_kind = 'job' AND pt.recorded_at <= $3
      AND pt.at >= $1 AND pt.at < $2 {people_p}
    GROUP BY 1
)
SELECT m.month, coalesce(e.n, 0) AS entries, coalesce(h.n, 0) AS hires
FROM (SELECT to_char(d, 'YYYY-MM') AS month
      FROM generate_series($1::date, ($2 - interval '1 day')::date, interval '1 month') d) m
LEFT JOIN entries e USING (month) LEFT JOIN hires h USING (month)
ORDER BY m.month
"""
PROGRESS_SQL = """
SELECT count(*) FROM placement_transitions pt JOIN placements p ON p.id = pt.placement_id
WHERE pt.to_status = 'started' AND p.vacancy_kind = 'job' AND pt.recorded_at <= $3
  AND pt.at >= $1 AND pt.at < $2 {people_p}
"""


def sql(template: str, local: bool) -> str:
    people = PEOPLE if local else ""
    return template.format(people=people, people_p=people.replace("candidate_id", "p.candidate_id"))


async def main() -> None:
    reused = os.environ.get("BENCH_DATABASE")
    url = reused or await build_database()
    sa_url = url.replace("postgresql://", "postgresql+asyncpg://")
    settings = Settings(
        database_url=sa_url, environment="test", jwt_signing_key="bench-" + "0" * 58,
        rate_limit_admin=10_000_000, db_pool_size=4,
    )  # fmt: skip
    app = create_app(settings)
    # Planned for its values each time, as the application's figures are.
    floor = await asyncpg.connect(url, server_settings={"plan_cache_mode": "force_custom_plan"})
    try:
        async with app.router.lifespan_context(app):
            async with session_scope(app.state.sessionmaker) as session:
                client, secret = await clients.create(
                    session,
                    ApiClientCreate(name="bench", role="admin"),  # type: ignore[arg-type]
                )
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(
                transport=transport, base_url="http://bench", timeout=120
            ) as http:
                token = (await http.post("/v1/oauth/token", data={
                    "grant_type": "client_credentials", "client_id": str(client.id),
                    "client_secret": secret})).json()["access_token"]  # fmt: skip
                http.headers["Authorization"] = f"Bearer {token}"
                year = {"year": TODAY.year - 1, "scope": "national"}
                made = await http.post("/v1/objectives", json={**year, "target": 3000})
                objective = (
                    made.json()
                    if made.status_code == 201
                    else (await http.get("/v1/objectives", params=year)).json()["items"][0]
                )
                await run_cases(http, floor, objective["id"])
    finally:
        await floor.close()
        if not (os.environ.get("BENCH_KEEP") or reused):
            conn = await asyncpg.connect(SERVER)
            await conn.execute(f'DROP DATABASE IF EXISTS "{url.rsplit("/", 1)[1]}" WITH (FORCE)')
            await conn.close()
        elif not reused:
            print(f"kept {url}")


@dataclass(frozen=True)
class Case:
    """An endpoint's call, the floor's query, and whether both give the same figures."""

    name: str
    path: str
    params: dict[str, Any]
    sql: str
    args: list[Any]
    same: Callable[[Any, list[asyncpg.Record]], bool]


def same_funnel(api: Any, rows: list[asyncpg.Record]) -> bool:
    row = rows[0]
    return (api["entered"], api["hired"], api["exited"], api["in_phase"]["employed"]) == (
        row["entered"], row["hired"], row["exited"], row["employed_at_end"]
    )  # fmt: skip


def same_outcomes(api: Any, rows: list[asyncpg.Record]) -> bool:
    row, retention = rows[0], api["retention_12m"]
    ours = (api["hires"], retention["due"], retention["followed_up"], api["certification"]["sat"])
    return ours == (row["hires"], row["due_12m"], row["followed_12m"], row["sat"])


def same_monthly(api: Any, rows: list[asyncpg.Record]) -> bool:
    ours = [(m["month"], m["entries"], m["hires"]) for m in api["months"]]
    return ours == [(r["month"], r["entries"], r["hires"]) for r in rows]


def same_progress(api: Any, rows: list[asyncpg.Record]) -> bool:
    return bool(api["hires"] == rows[0][0])


def p50(samples: list[float]) -> float:
    return statistics.median(samples) * 1000


async def timed(call: Awaitable[Any]) -> tuple[float, Any]:
    started = time.perf_counter()
    result = await call
    return time.perf_counter() - started, result


async def run_cases(http: httpx.AsyncClient, floor: asyncpg.Connection, objective: str) -> None:
    lo = datetime(2013, 1, 1, tzinfo=UTC)
    hi = datetime.combine(TODAY + timedelta(days=1), datetime.min.time(), tzinfo=UTC)
    year_lo = datetime(TODAY.year - 1, 1, 1, tzinfo=UTC)
    year_hi = datetime(TODAY.year, 1, 1, tzinfo=UTC)
    last_year = NOW - timedelta(days=365)
    print(f"p50 of {RUNS} runs each; the floor is one hand-written SQL query (asyncpg)")
    overhead = []
    for run in range(RUNS + 2):
        spent, response = await timed(http.get("/v1/pathway"))
        response.raise_for_status()
        if run >= 2:
            overhead.append(spent)
    print(
        f"the cost of any request (GET /v1/pathway: token, client, permissions, JSON): "
        f"p50 {p50(overhead):.1f} ms"
    )
    for label, as_of in (("now", None), ("as_of a year ago", last_year)):
        known = as_of or NOW
        hi_of = (
            hi
            if as_of is None
            else datetime.combine(as_of.date() + timedelta(days=1), datetime.min.time(), tzinfo=UTC)
        )
        # The last start day whose 12-month follow-up had fallen due (calendar arithmetic).
        due_12 = datetime.combine(
            _due_cutoff(known.date(), 12) + timedelta(days=1), datetime.min.time(), tzinfo=UTC
        )
        for scope, local in (("national", False), (f"département {LOCAL}", True)):
            params: dict[str, Any] = {"from": "2013-01-01"}
            args: list[Any] = [lo, hi_of, known]
            if as_of is not None:
                params["as_of"] = as_of.isoformat()
            if local:
                params["departement"] = LOCAL
            query = sql(FUNNEL_SQL, local), sql(OUTCOMES_SQL, local), sql(MONTHLY_SQL, local)
            cases = [
                Case("funnel", "/v1/stats/funnel", params, query[0], args, same_funnel),
                Case("outcomes", "/v1/stats/outcomes", params, query[1], [*args, due_12],
                     same_outcomes),
                Case("monthly", "/v1/stats/monthly", params, query[2], args, same_monthly),
            ]  # fmt: skip
            if not local:
                cases.append(
                    Case("objective progress", f"/v1/objectives/{objective}/progress",
                         {k: v for k, v in params.items() if k == "as_of"},
                         sql(PROGRESS_SQL, False), [year_lo, year_hi, known], same_progress)
                )  # fmt: skip
            for case in cases:
                api_times, floor_times = [], []
                for run in range(RUNS + 2):
                    spent, response = await timed(http.get(case.path, params=case.params))
                    response.raise_for_status()
                    floor_spent, rows = await timed(floor.fetch(case.sql, *case.args))
                    if run >= 2:  # the first two warm caches and connections
                        api_times.append(spent)
                        floor_times.append(floor_spent)
                assert case.same(response.json(), rows), (case.name, scope, response.json(), rows)
                api, base = p50(api_times), p50(floor_times)
                goal = "" if local else f"; goal <= 500 ms: {'met' if api <= 500 else 'MISSED'}"
                print(
                    f"{case.name:>18} | {scope:<15} | {label:<16} | p50 {api:7.1f} ms | floor "
                    f"{base:7.1f} ms | ratio {api / base:4.2f} (goal <= 2: "
                    f"{'met' if api / base <= 2 else 'MISSED'}){goal}"
                )


if __name__ == "__main__":
    asyncio.run(main())
