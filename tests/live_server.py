"""A real Tremplin server in a subprocess (uvicorn), on a database of its own, seeded.

For tests that exercise the app from outside: the contract fuzzer, and anything that
needs a live port. The database holds the demo dataset (structures of every kind,
candidates in each phase, open vacancies, placements), an admin client and an
insertion client of the dataset's first insertion structure.
"""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

import httpx
from sqlalchemy import select

from app import migrations
from app.config import PROJECT_ROOT
from app.db import create_engine, create_sessionmaker, session_scope
from app.demo import load_demo
from app.domain.enums import Role, StructureKind
from app.models import Structure
from app.schemas.access import ApiClientCreate
from app.services import clients
from tests.conftest import (
    TEST_SIGNING_KEY,
    create_postgres_database,
    drop_postgres_database,
    make_settings,
)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass(frozen=True)
class LiveServer:
    base_url: str
    admin_token: str
    insertion_token: str
    insertion_structure_id: str
    spare_client_id: str  # a client the tests may revoke, rotate and rename at will
    log_file: Path


async def _seed(database_url: str) -> tuple[dict[Role, tuple[str, str]], str]:
    settings = make_settings(database_url)
    await load_demo(settings)
    engine = create_engine(settings)
    try:
        maker = create_sessionmaker(engine)
        async with session_scope(maker) as session:
            insertion_id = await session.scalar(
                select(Structure.id)
                .where(Structure.kind == StructureKind.INSERTION)
                .order_by(Structure.id)
                .limit(1)
            )
            assert insertion_id is not None
            made: dict[Role, tuple[str, str]] = {}
            for role, structure_id in (
                (Role.ADMIN, None),
                (Role.INSERTION, insertion_id),
                (Role.OBSERVER, None),
            ):
                row, secret = await clients.create(
                    session,
                    ApiClientCreate(
                        name=f"contract test {role.value}", role=role, structure_id=structure_id
                    ),
                )
                made[role] = (str(row.id), secret)
    finally:
        await engine.dispose()
    return made, str(insertion_id)


def _token(base_url: str, client_id: str, secret: str) -> str:
    response = httpx.post(
        f"{base_url}/v1/oauth/token",
        data={"grant_type": "client_credentials"},
        auth=(client_id, secret),
        timeout=10,
    )
    response.raise_for_status()
    token: str = response.json()["access_token"]
    return token


def _wait_ready(base_url: str, process: subprocess.Popen[bytes], log_file: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the server exited: {log_file.read_text()[-2000:]}")
        try:
            if httpx.get(f"{base_url}/readyz", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise RuntimeError("the server did not become ready within 60 s")


@contextmanager
def live_server(backend: str, workdir: Path, **env: str) -> Iterator[LiveServer]:
    """Start a seeded server on `backend` (sqlite or postgresql) and stop it after."""
    postgres = os.environ.get("TEST_POSTGRES_URL")
    if backend == "sqlite":
        database_url = f"sqlite+aiosqlite:///{workdir / 'live.db'}"
    else:
        assert postgres is not None, "PostgreSQL is not available"
        database_url = asyncio.run(create_postgres_database(postgres, "tremplin_live"))
    process = None
    try:
        migrations.upgrade(database_url)
        made, insertion_id = asyncio.run(_seed(database_url))
        port = free_port()
        base_url = f"http://127.0.0.1:{port}"
        log_file = workdir / f"server-{backend}.log"
        server_env = {
            **os.environ,
            "DATABASE_URL": database_url,
            "ENVIRONMENT": "test",
            "JWT_SIGNING_KEY": TEST_SIGNING_KEY,
            "TOKEN_TTL_S": "7200",
            "LOG_LEVEL": "WARNING",
            **{f"RATE_LIMIT_{role}": "100000000" for role in ("ADMIN", "INSERTION")},
            "RATE_LIMIT_ANONYMOUS": "100000000",
            **env,
        }
        with log_file.open("wb") as log:
            process = subprocess.Popen(
                [sys.executable, "-m", "app", "serve", "--host", "127.0.0.1", "--port", str(port)],
                cwd=PROJECT_ROOT,
                env=server_env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        _wait_ready(base_url, process, log_file)
        yield LiveServer(
            base_url=base_url,
            admin_token=_token(base_url, *made[Role.ADMIN]),
            insertion_token=_token(base_url, *made[Role.INSERTION]),
            insertion_structure_id=insertion_id,
            spare_client_id=made[Role.OBSERVER][0],
            log_file=log_file,
        )
    finally:
        if process is not None:
            process.terminate()
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        if backend != "sqlite" and postgres is not None:
            asyncio.run(drop_postgres_database(postgres, database_url))


if __name__ == "__main__":  # a server to explore by hand: python -m tests.live_server
    import tempfile

    with tempfile.TemporaryDirectory() as tmp, live_server(sys.argv[1], Path(tmp)) as server:
        print(server, flush=True)
        print(f"export ADMIN={server.admin_token}\nexport STAFF={server.insertion_token}")
        with suppress(KeyboardInterrupt):
            time.sleep(float(sys.argv[2]) if len(sys.argv) > 2 else 3600)
