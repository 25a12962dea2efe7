"""`make bench-matching`: matching at national scale, on PostgreSQL.

Builds a synthetic country (1,000 structures, 100,000 candidates, 10,000 vacancies,
spread over the real départements: prefecture coordinates plus jitter, a realistic phase
mix) with COPY, serves it with uvicorn in a subprocess, and prints:
  (a) top-50 for one vacancy over 100k candidates, HTTP end to end: p50 and p95;
  (b) the assignment for 10k vacancies x 100k candidates, and for one département;
  (c) the vectorised scorer against a plain per-pair Python loop, same run, same data,
      after checking that both give the same scores;
  (d) the peak memory (VmHWM) of the server process.
Each figure is printed beside its goal, as a ratio. The database is created for the run
and dropped after it (BENCH_POSTGRES_URL: the server to use; default the local one).
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import secrets
import socket
import statistics
import subprocess
import sys
import time
import uuid
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from app import migrations  # noqa: E402
from app.domain.competencies import COMPETENCY_CODES  # noqa: E402
from app.domain.geography import DEPARTEMENT_CENTRES, DEPARTEMENT_REGION  # noqa: E402
from app.domain.identifiers import luhn_valid  # noqa: E402
from app.domain.ids import uuid7  # noqa: E402
from app.domain.matching import (  # noqa: E402
    score_pair_loop,
    score_pairs,
)

SERVER = os.environ.get("BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
N_CANDIDATES = int(os.environ.get("BENCH_CANDIDATES", "100000"))
N_VACANCIES = int(os.environ.get("BENCH_VACANCIES", "10000"))
N_STRUCTURES = 1000
SIGNING_KEY = secrets.token_hex(32)
RNG = random.Random(2016)
NOW = datetime.now(UTC)
TODAY = NOW.date()

# Big metropolitan départements get more people, as they do.
HEAVY = {"75": 4, "13": 4, "59": 5, "69": 4, "92": 3, "93": 3, "94": 3, "33": 3, "31": 3,
         "06": 2, "44": 3, "67": 2, "34": 2, "76": 3, "62": 3, "77": 3, "78": 3, "91": 3,
         "95": 3}  # fmt: skip
DEPS = sorted(DEPARTEMENT_CENTRES)
DEP_WEIGHTS = [HEAVY.get(d, 1) for d in DEPS]
PHASES = ["recruitment", "support", "securing", "employed", "exited"]
PHASE_WEIGHTS = [35, 35, 20, 5, 5]


def commune_of(dep: str) -> tuple[str, str]:
    insee = f"{dep}001" if len(dep) == 2 else f"{dep}01"
    postcode = "20000" if dep in ("2A", "2B") else f"{dep}000"[:5] if len(dep) == 2 else f"{dep}00"
    return insee, postcode


def place(dep: str) -> tuple[float, float]:
    lat, lon = DEPARTEMENT_CENTRES[dep]
    return lat + RNG.gauss(0, 0.18), lon + RNG.gauss(0, 0.25)


def siret(i: int) -> str:
    base = f"88{i:011d}"
    return next(base + str(d) for d in range(10) if luhn_valid(base + str(d)))


def structures() -> tuple[list[tuple[Any, ...]], dict[str, list[uuid.UUID]], list[uuid.UUID]]:
    rows, landlords_by_dep, insertion = [], {}, []
    for i in range(N_STRUCTURES):
        kind = "insertion" if i < 500 else "landlord" if i < 900 else "partner"
        sub = {"insertion": "AI", "landlord": "OPH", "partner": "plie"}[kind]
        dep = DEPS[i % len(DEPS)]
        insee, postcode = commune_of(dep)
        lat, lon = place(dep)
        sid = uuid7()
        if kind == "landlord":
            landlords_by_dep.setdefault(dep, []).append(sid)
        if kind == "insertion":
            insertion.append(sid)
        rows.append(
            (
                sid,
                kind,
                sub,
                f"Structure {i} (synthetic)",
                siret(i),
                None,
                postcode,
                insee,
                None,
                dep,
                DEPARTEMENT_REGION[dep],
                lat,
                lon,
                NOW,
                NOW,
                1,
            )
        )
    return rows, landlords_by_dep, insertion


def candidates(insertion: list[uuid.UUID]) -> list[tuple[Any, ...]]:
    rows = []
    deps = RNG.choices(DEPS, DEP_WEIGHTS, k=N_CANDIDATES)
    for i, dep in enumerate(deps):
        insee, postcode = commune_of(dep)
        located = RNG.random() > 0.05
        lat, lon = place(dep) if located else (None, None)
        phase = RNG.choices(PHASES, PHASE_WEIGHTS)[0]
        consent = RNG.random() < 0.85
        certs = []
        roll = RNG.random()
        if roll < 0.10:
            certs = [{"rncp_code": "RNCP40892", "status": "held", "date": "2025-06-30"}]
        elif roll < 0.40:
            certs = [{"rncp_code": "RNCP40892", "status": "in_progress", "date": None}]
        levels = {code: RNG.randint(0, 3) for code in COMPETENCY_CODES}
        created = NOW - timedelta(days=RNG.randint(0, 700))
        available = None if RNG.random() < 0.6 else TODAY + timedelta(days=RNG.randint(-60, 60))
        prefs = (
            []
            if RNG.random() < 0.7
            else RNG.sample(["cdi", "cdd", "professionalisation", "mission"], 2)
        )
        hours = None if RNG.random() < 0.8 else float(RNG.choice([24, 28, 35]))
        training = 0.0 if phase == "recruitment" else float(RNG.randint(0, 400))
        rows.append(
            (
                uuid7(),
                "Prénom",
                f"Synthétique {i}",
                date(1990, 1, 1),
                None,
                None,
                postcode,
                insee,
                None,
                dep,
                DEPARTEMENT_REGION[dep],
                lat,
                lon,
                RNG.choice(insertion),
                None,
                RNG.choice([10, 15, 20, 30, 40, 60]),
                RNG.random() < 0.5,
                RNG.random() < 0.3,
                available,
                json.dumps(levels),
                json.dumps(certs),
                json.dumps(prefs),
                hours,
                training,
                int(RNG.random() < 0.5) if phase != "recruitment" else 0,
                consent,
                NOW if consent else None,
                phase,
                created,
                created,
                created,
                1,
                1,  # the reduced and referral views' own versions and stamps
                created,
                1,
                created,
            )
        )
    return rows


CANDIDATE_COPY_COLUMNS = [
    "id", "first_name", "last_name", "birth_date", "email", "phone", "postcode",
    "commune_insee", "commune_name", "departement", "region", "latitude", "longitude",
    "structure_id", "referrer_id", "max_commute_km", "has_driving_licence",
    "accepts_onsite_housing", "available_from", "competencies", "certifications",
    "preferred_contract_types", "max_weekly_hours", "training_hours",
    "positive_skills_assessments", "consent_to_share", "consent_given_at", "phase",
    "phase_changed_at", "created_at", "updated_at", "version", "reduced_version",
    "reduced_updated_at", "referral_version", "referral_updated_at",
]  # fmt: skip
VACANCY_COPY_COLUMNS = [
    "id", "landlord_id", "title", "description", "kind", "mission_type", "contract_type",
    "rome_code", "appellation_code", "weekly_hours", "positions", "filled_positions",
    "address_line", "postcode", "commune_insee", "commune_name", "departement", "region",
    "latitude", "longitude", "onsite_housing", "driving_licence_required",
    "required_competencies", "required_certification", "start_date", "end_date", "status",
    "created_at", "updated_at", "version",
]  # fmt: skip
STRUCTURE_COPY_COLUMNS = [
    "id", "kind", "sub_kind", "name", "siret", "address_line", "postcode", "commune_insee",
    "commune_name", "departement", "region", "latitude", "longitude", "created_at",
    "updated_at", "version",
]  # fmt: skip


def vacancies(landlords_by_dep: dict[str, list[uuid.UUID]]) -> list[tuple[Any, ...]]:
    rows = []
    all_landlords = [x for xs in landlords_by_dep.values() for x in xs]
    deps = RNG.choices(DEPS, DEP_WEIGHTS, k=N_VACANCIES)
    for dep in deps:
        insee, postcode = commune_of(dep)
        lat, lon = place(dep) if RNG.random() > 0.05 else (None, None)
        mission = RNG.random() < 0.6
        required = dict.fromkeys(COMPETENCY_CODES, 0)
        for code in RNG.sample(COMPETENCY_CODES, 2):
            required[code] = RNG.randint(1, 2)
        landlord = RNG.choice(landlords_by_dep.get(dep) or all_landlords)
        rows.append(
            (
                uuid7(),
                landlord,
                "Gardien d'immeuble (synthetic)",
                None,
                "mission" if mission else "job",
                "work_mission" if mission else None,
                "mission" if mission else RNG.choice(["cdi", "cdd", "professionalisation"]),
                "K2501",
                "15228",
                float(RNG.choice([24, 35, 39])),
                RNG.randint(1, 3),
                0,
                None,
                postcode,
                insee,
                None,
                dep,
                DEPARTEMENT_REGION[dep],
                lat,
                lon,
                RNG.random() < 0.2,
                RNG.random() < 0.3,
                json.dumps(required),
                "RNCP40892" if (not mission and RNG.random() < 0.3) else None,
                TODAY + timedelta(days=RNG.randint(0, 90)),
                None,
                "open",
                NOW,
                NOW,
                1,
            )
        )
    return rows


async def build_database() -> str:
    name = f"tremplin_bench_{os.getpid()}"
    conn = await asyncpg.connect(SERVER)
    await conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
    await conn.execute(f'CREATE DATABASE "{name}"')
    await conn.close()
    url = SERVER.rsplit("/", 1)[0] + "/" + name
    await asyncio.to_thread(
        migrations.upgrade, url.replace("postgresql://", "postgresql+asyncpg://")
    )
    started = time.perf_counter()
    structure_rows, landlords_by_dep, insertion = structures()
    candidate_rows = candidates(insertion)
    vacancy_rows = vacancies(landlords_by_dep)
    conn = await asyncpg.connect(url)
    try:
        await conn.copy_records_to_table(
            "structures", records=structure_rows, columns=STRUCTURE_COPY_COLUMNS
        )
        await conn.copy_records_to_table(
            "candidates", records=candidate_rows, columns=CANDIDATE_COPY_COLUMNS
        )
        await conn.copy_records_to_table(
            "vacancies", records=vacancy_rows, columns=VACANCY_COPY_COLUMNS
        )
        await conn.execute("ANALYZE")
    finally:
        await conn.close()
    print(
        f"dataset: {len(structure_rows)} structures, {len(candidate_rows)} candidates, "
        f"{len(vacancy_rows)} vacancies over {len(DEPS)} départements "
        f"({time.perf_counter() - started:.1f} s to generate and COPY)"
    )
    return url


async def drop_database(url: str) -> None:
    conn = await asyncpg.connect(SERVER)
    await conn.execute(f'DROP DATABASE IF EXISTS "{url.rsplit("/", 1)[1]}" WITH (FORCE)')
    await conn.close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def vm_hwm_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def ratio(label: str, value: float, goal: float, unit: str, lower_is_better: bool = True) -> str:
    r = goal / value if lower_is_better else value / goal
    verdict = "meets the goal" if r >= 1 else "misses the goal"
    return (
        f"{label}: {value:.1f} {unit} (goal {goal:g} {unit}; ratio goal/actual {r:.2f}, {verdict})"
    )


async def main() -> None:
    url = await build_database()
    sa_url = url.replace("postgresql://", "postgresql+asyncpg://")
    port = free_port()
    env = dict(os.environ, DATABASE_URL=sa_url, JWT_SIGNING_KEY=SIGNING_KEY,
               RATE_LIMIT_ADMIN="1000000", ENVIRONMENT="development")  # fmt: skip
    create = subprocess.run(
        [sys.executable, "-m", "app", "create-client", "--role", "admin", "--name", "bench"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    credentials = json.loads(create.stdout)
    server = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "app.main:create_app", "--factory", "--host",
         "127.0.0.1", "--port", str(port), "--log-level", "warning"],
        cwd=ROOT, env=env,
    )  # fmt: skip
    try:
        base = f"http://127.0.0.1:{port}"
        async with httpx.AsyncClient(base_url=base, timeout=120) as http:
            for _ in range(100):
                try:
                    if (await http.get("/readyz")).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                await asyncio.sleep(0.2)
            token = (
                await http.post(
                    "/v1/oauth/token",
                    data={"grant_type": "client_credentials", **credentials},
                )
            ).json()["access_token"]
            http.headers["Authorization"] = f"Bearer {token}"
            await bench_rankings(http, url)
            await bench_assignments(http)
        print(f"(d) server peak memory (VmHWM): {vm_hwm_mb(server.pid):.0f} MB")
    finally:
        server.terminate()
        server.wait(timeout=10)
        if not os.environ.get("BENCH_KEEP"):
            await drop_database(url)
    bench_scorer_ratio()


async def bench_rankings(http: httpx.AsyncClient, url: str) -> None:
    conn = await asyncpg.connect(url)
    ids = [
        r["id"]
        for r in await conn.fetch(
            "SELECT id FROM vacancies WHERE latitude IS NOT NULL ORDER BY random() LIMIT 220"
        )
    ]
    await conn.close()
    for vid in ids[:20]:  # warm-up: connections, caches
        (await http.get(f"/v1/vacancies/{vid}/matches", params={"limit": 50})).raise_for_status()
    timings, considered = [], []
    for vid in ids[20:]:
        started = time.perf_counter()
        response = await http.get(f"/v1/vacancies/{vid}/matches", params={"limit": 50})
        timings.append((time.perf_counter() - started) * 1000)
        response.raise_for_status()
        considered.append(response.json()["considered"])
    p50 = statistics.median(timings)
    p95 = statistics.quantiles(timings, n=20)[-1]
    print(
        ratio(
            f"(a) top-50 for one vacancy over {N_CANDIDATES} candidates, HTTP, p50", p50, 30, "ms"
        )
    )
    print(
        f"    p95 {p95:.1f} ms over {len(timings)} vacancies; candidates read near a vacancy: "
        f"median {statistics.median(considered):.0f} of {N_CANDIDATES}"
    )


async def bench_assignments(http: httpx.AsyncClient) -> None:
    national = []
    for _ in range(3):
        started = time.perf_counter()
        response = await http.post("/v1/matching/assignments", json={"scope": {}})
        national.append(time.perf_counter() - started)
        response.raise_for_status()
    body = response.json()
    label = f"(b) assignment, {N_VACANCIES} vacancies x {N_CANDIDATES} candidates (best of 3)"
    print(ratio(label, min(national), 2, "s"))
    print(
        f"    {len(body['pairs'])} pairs, {body['unfilled_positions']} positions unfilled, "
        f"{body['edges']} edges, {body['candidates_considered']} candidates considered; "
        f"runs: {', '.join(f'{t:.2f}' for t in national)} s"
    )
    local = []
    for _ in range(5):
        started = time.perf_counter()
        response = await http.post(
            "/v1/matching/assignments", json={"scope": {"departement": "76"}}
        )
        local.append((time.perf_counter() - started) * 1000)
        response.raise_for_status()
    body = response.json()
    print(
        ratio(
            "(b) assignment, one département (76), median of 5", statistics.median(local), 100, "ms"
        )
    )
    print(
        f"    {body['vacancies_considered']} vacancies, {body['candidates_considered']} "
        f"candidates, {len(body['pairs'])} pairs"
    )


def bench_scorer_ratio() -> None:
    """Same pairs through score_pairs and score_pair_loop; equal scores first, then time."""
    from app.domain.matching import Weights
    from tests.scorer_data import random_instance

    cands, vacs, c_records, v_records, ci, vi, history, opened = random_instance(
        random.Random(7), n_candidates=20000, n_vacancies=40, pairs=200000
    )
    weights = Weights()
    vector_runs, loop_runs = [], []
    for _ in range(7):
        started = time.perf_counter()
        scores = score_pairs(cands, vacs, ci, vi, weights, history, opened)
        vector_runs.append(time.perf_counter() - started)
    for _ in range(2):
        started = time.perf_counter()
        loop = [
            score_pair_loop(c_records[c], v_records[v], weights, bool(h), bool(o))
            for c, v, h, o in zip(ci, vi, history, opened, strict=True)
        ]
        loop_runs.append(time.perf_counter() - started)
    vector_s, loop_s = min(vector_runs), min(loop_runs)
    masks = np.array([m for m, _, _, _ in loop])
    totals = np.array([s for _, _, s, _ in loop])
    assert (masks == scores.mask).all(), "the two scorers disagree on the filters"
    assert np.abs(totals - scores.score).max() <= 0.011, "the two scorers disagree on scores"
    speedup = loop_s / vector_s
    print(
        f"(c) scorer on {len(ci)} pairs (best of 7 and of 2): vectorised "
        f"{vector_s * 1000:.1f} ms, plain loop "
        f"{loop_s * 1000:.0f} ms: {speedup:.0f}x (goal >= 50x; ratio {speedup / 50:.2f}, "
        f"{'meets' if speedup >= 50 else 'misses'} the goal); same masks and scores checked"
    )


if __name__ == "__main__":
    asyncio.run(main())
