"""Clients generated from openapi.yaml drive a running server through a whole path:
Python by openapi-python-client, TypeScript by openapi-typescript with openapi-fetch.

The server is a real uvicorn process on a free port with an SQLite file of the test's
own; the generated code lives in a temporary folder (or clients/typescript/generated,
ignored by git) and is never committed.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import importlib
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from app import migrations
from app.config import PROJECT_ROOT
from app.db import create_engine, create_sessionmaker, session_scope
from app.domain.enums import Role
from app.schemas.access import ApiClientCreate
from app.services import clients
from tests.conftest import TEST_SIGNING_KEY, make_settings
from tests.factories import make_siret

TS_DIR = PROJECT_ROOT / "clients" / "typescript"
CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass(frozen=True)
class Server:
    base_url: str
    client_id: str
    client_secret: str


async def _admin(url: str) -> tuple[str, str]:
    engine = create_engine(make_settings(url))
    try:
        async with session_scope(create_sessionmaker(engine)) as session:
            row, secret = await clients.create(
                session, ApiClientCreate(name="generated client", role=Role.ADMIN)
            )
            return str(row.id), secret
    finally:
        await engine.dispose()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    folder = tmp_path_factory.mktemp("served")
    url = f"sqlite+aiosqlite:///{folder / 'clients.db'}"
    migrations.upgrade(url)
    client_id, secret = asyncio.run(_admin(url))
    port = free_port()
    env = {
        **os.environ,
        "DATABASE_URL": url,
        "ENVIRONMENT": "test",
        "JWT_SIGNING_KEY": TEST_SIGNING_KEY,
        "RATE_LIMIT_ANONYMOUS": "100000",
    }
    log = (folder / "server.log").open("wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "app", "serve", "--host", "127.0.0.1", "--port", str(port)],
        cwd=PROJECT_ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base_url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(300):
            try:
                if httpx.get(f"{base_url}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if process.poll() is not None:
                raise AssertionError((folder / "server.log").read_text())
            time.sleep(0.1)
        else:
            raise AssertionError("the server did not start")
        yield Server(base_url, client_id, secret)
    finally:
        process.terminate()
        process.wait(timeout=30)
        log.close()


def test_python_client_walks_the_path(server: Server, tmp_path: Path) -> None:
    generator = Path(sys.executable).parent / "openapi-python-client"
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    subprocess.run(
        [
            str(generator),
            "generate",
            "--path",
            str(PROJECT_ROOT / "openapi.yaml"),
            "--meta",
            "none",
            "--output-path",
            str(tmp_path / "tremplin_client"),
        ],
        check=True,
        env=env,
        capture_output=True,
    )
    sys.path.insert(0, str(tmp_path))
    try:
        _walk_with_python_client(server)
    finally:
        sys.path.remove(str(tmp_path))
        for name in [m for m in sys.modules if m.startswith("tremplin_client")]:
            del sys.modules[name]


def _walk_with_python_client(server: Server) -> None:
    api: Any = importlib.import_module("tremplin_client.api")
    models: Any = importlib.import_module("tremplin_client.models")
    client_module: Any = importlib.import_module("tremplin_client")
    from_module = importlib.import_module
    oauth_token = from_module("tremplin_client.api.oauth.oauth_token")
    structures_create = from_module("tremplin_client.api.structures.structures_create")
    candidates_create = from_module("tremplin_client.api.candidates.candidates_create")
    candidates_transition = from_module("tremplin_client.api.candidates.candidates_transition")
    candidates_history = from_module("tremplin_client.api.candidates.candidates_history")
    activities_create = from_module("tremplin_client.api.activities.activities_create")
    vacancies_create = from_module("tremplin_client.api.vacancies.vacancies_create")
    placements_create = from_module("tremplin_client.api.placements.placements_create")
    placements_transition = from_module("tremplin_client.api.placements.placements_transition")
    del api

    def ok(answer: Any, kind: Any) -> Any:
        assert isinstance(answer, kind), answer
        return answer

    anonymous = client_module.Client(base_url=server.base_url)
    # The form, as documented (RFC 6749); JSON is accepted too (see the last test).
    token = ok(
        oauth_token.sync(
            client=anonymous,
            body=models.TokenRequest(
                grant_type="client_credentials",
                client_id=server.client_id,
                client_secret=server.client_secret,
            ),
        ),
        models.TokenResponse,
    )
    api_client = client_module.AuthenticatedClient(
        base_url=server.base_url, token=token.access_token
    )
    place = {"postcode": "76000", "commune_insee": "76540"}
    siae = ok(
        structures_create.sync(
            client=api_client,
            body=models.StructureCreate(
                kind=models.StructureKind.INSERTION,
                sub_kind=models.StructureCreateSubKind.AI,
                name="SIAE (fictional)",
                siret=make_siret(),
                **place,
            ),
        ),
        models.Structure,
    )
    landlord = ok(
        structures_create.sync(
            client=api_client,
            body=models.StructureCreate(
                kind=models.StructureKind.LANDLORD,
                sub_kind=models.StructureCreateSubKind.OPH,
                name="OPH (fictional)",
                siret=make_siret(),
                **place,
            ),
        ),
        models.Structure,
    )
    person = ok(
        candidates_create.sync(
            client=api_client,
            body=models.CandidateCreate(
                first_name="Camille",
                last_name="Exemple",
                birth_date=dt.date(1990, 4, 12),
                structure_id=siae.id,
                consent_to_share=True,
                # The path began before the activities recorded below.
                entered_at=dt.datetime(2026, 5, 1, tzinfo=dt.UTC),
                **place,
            ),
        ),
        models.Candidate,
    )

    def record(activity: Any) -> None:
        ok(
            activities_create.sync(candidate_id=person.id, client=api_client, body=activity),
            models.Activity,
        )

    def move(to: Any) -> None:
        ok(
            candidates_transition.sync(
                candidate_id=person.id,
                client=api_client,
                body=models.TransitionRequest(to=to),
            ),
            models.Candidate,
        )

    positive = models.ActivityOutcome.POSITIVE
    # No `type_=` to spell out: each activity model carries its own.
    record(models.WorkTrialCreate(occurred_on=dt.date(2026, 6, 1), outcome=positive))
    record(models.ProjectEvaluationCreate(occurred_on=dt.date(2026, 6, 15), outcome=positive))
    move(models.Phase.SUPPORT)
    record(
        models.TrainingCreate(
            occurred_on=dt.date(2026, 7, 1),
            hours=160,
            training_mode=models.TrainingMode.EXTERNAL,
        )
    )
    record(
        models.SkillsAssessmentCreate(
            occurred_on=dt.date(2026, 8, 1),
            outcome=positive,
            competency_levels=models.CompetencyAssessment(cleaning_hygiene=2),
        )
    )
    record(
        models.WorkMissionCreate(
            occurred_on=dt.date(2026, 8, 10), outcome=positive, landlord_id=landlord.id
        )
    )
    move(models.Phase.SECURING)
    vacancy = ok(
        vacancies_create.sync(
            client=api_client,
            body=models.VacancyCreate(
                landlord_id=landlord.id,
                title="Gardien d'immeuble (fictional)",
                kind=models.VacancyKind.JOB,
                contract_type=models.ContractType.CDI,
                start_date=dt.date(2027, 1, 4),
                status=models.VacancyCreateStatus.OPEN,
                **place,
            ),
        ),
        models.Vacancy,
    )
    placement = ok(
        placements_create.sync(
            client=api_client,
            body=models.PlacementCreate(candidate_id=person.id, vacancy_id=vacancy.id),
        ),
        models.Placement,
    )
    for to in (models.PlacementStatus.ACCEPTED, models.PlacementStatus.STARTED):
        ok(
            placements_transition.sync(
                placement_id=placement.id,
                client=api_client,
                body=models.PlacementTransitionRequest(to=to),
            ),
            models.Placement,
        )
    history = ok(
        candidates_history.sync(candidate_id=person.id, client=api_client),
        models.CandidateTransitionPage,
    )
    # The entry into the path first, then each move.
    assert [t.to_phase.value for t in history.items] == [
        "recruitment",
        "support",
        "securing",
        "employed",
    ]


def _npm() -> str:
    npm = shutil.which("npm")
    if npm is None:
        if CI:
            pytest.fail("CI=true but npm is missing: the TypeScript client must be checked")
        pytest.skip("npm is not installed")
    return npm


def test_typescript_client_walks_the_path(server: Server) -> None:
    npm = _npm()
    if not (TS_DIR / "node_modules").exists():
        subprocess.run([npm, "ci", "--no-audit", "--no-fund"], cwd=TS_DIR, check=True)
    for script in ("generate", "build"):
        done = subprocess.run(
            [npm, "run", "--silent", script], cwd=TS_DIR, capture_output=True, text=True
        )
        assert done.returncode == 0, done.stdout + done.stderr
    env = {
        **os.environ,
        "BASE_URL": server.base_url,
        "CLIENT_ID": server.client_id,
        "CLIENT_SECRET": server.client_secret,
        "SIRETS": f"{make_siret()},{make_siret()}",
    }
    walked = subprocess.run(
        ["node", "build/path.js"], cwd=TS_DIR, env=env, capture_output=True, text=True
    )
    assert walked.returncode == 0, walked.stdout + walked.stderr
    assert "path complete" in walked.stdout
    assert walked.stdout.strip().endswith("employed")


def test_the_token_endpoint_takes_a_form_or_json(server: Server) -> None:
    credentials = {
        "grant_type": "client_credentials",
        "client_id": server.client_id,
        "client_secret": server.client_secret,
    }
    url = f"{server.base_url}/v1/oauth/token"
    assert httpx.post(url, data=credentials).status_code == 200
    assert httpx.post(url, json=credentials).status_code == 200
    broken = httpx.post(url, content=b"{not json", headers={"content-type": "application/json"})
    assert broken.status_code == 422
    assert "form" in broken.json()["detail"]
    listed = httpx.post(url, json=[credentials])
    assert listed.status_code == 422
    xml = httpx.post(url, content=b"<grant/>", headers={"content-type": "application/xml"})
    assert xml.status_code == 422
    assert xml.json()["errors"][0]["loc"] == ["header", "content-type"]
    missing = httpx.post(url, json={"client_id": server.client_id})
    assert missing.status_code == 422
    assert missing.json()["errors"][0]["loc"] == ["body", "grant_type"]
