"""The command line answers bad input with one clear line and a non-zero exit, never a
traceback; long jobs show progress on a terminal only."""

from __future__ import annotations

import asyncio
import io
import os
import re
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from app import migrations
from app.config import PROJECT_ROOT
from app.progress import Progress
from tests.conftest import create_postgres_database, drop_postgres_database, require_postgres
from tests.live_server import free_port

# (arguments, environment overrides, what the message must name)
BAD_INPUT = [
    (["create-client", "--role", "nope", "--name", "x"], {}, "invalid choice"),
    (["create-client", "--role", "admin", "--name", "x", "--structure-id", "zz"], {}, "UUID"),
    (["create-client", "--role", "insertion", "--name", "x"], {}, "structure_id"),
    (["create-client", "--role", "admin", "--name", ""], {}, "name: String should have at least"),
    # The line says what is wrong and what is known, not only which option.
    (
        ["create-client", "--role", "admin", "--name", "x", "--scope", "nope:nope"],
        {},
        "known scopes: activities:read",
    ),
    (["purge-audit", "--days", "zero"], {}, "whole number"),
    (["purge-audit", "--days", "0"], {}, "at least 1"),
    # A period past the year 1 was an OverflowError traceback (here and from the settings).
    (["purge-audit", "--days", "99999999"], {}, "at most 36500"),
    (["purge-audit"], {"AUDIT_RETENTION_DAYS": "99999999"}, "AUDIT_RETENTION_DAYS"),
    (["expire-proposals"], {"PROPOSAL_EXPIRY_DAYS": "99999999"}, "PROPOSAL_EXPIRY_DAYS"),
    (["jobs"], {"IDEMPOTENCY_TTL_S": "999999999999999"}, "IDEMPOTENCY_TTL_S"),
    (["jobs"], {"WEBHOOK_SECRET_GRACE_S": "999999999999999"}, "WEBHOOK_SECRET_GRACE_S"),
    (["retention", "--batch", "0"], {}, "at least 1"),
    (["retention", "--batch", "-5"], {}, "at least 1"),
    (["retention", "--batch", "many"], {}, "whole number"),
    # Each batch is one transaction: one of a billion people would hold its locks for long.
    (["retention", "--batch", "1000000000"], {}, "at most 10000"),
    (["retention", "--batch", "99999999999999999999"], {}, "at most 10000"),
    (["openapi", "--output", "/nonexistent/folder/spec.yaml"], {}, "No such file"),
    (["openapi", "--check", "/nonexistent/spec.yaml"], {}, "does not exist"),
    (["migrate", "no_such_revision"], {}, "no_such_revision"),
    (["migrate", "--downgrade"], {}, "needs a revision"),
    (["serve", "--port", "99999"], {}, "between 1 and 65535"),
    (["serve", "--port", "0"], {}, "between 1 and 65535"),
    (["serve", "--port", "-1"], {}, "between 1 and 65535"),
    (["no-such-command"], {}, "invalid choice"),
    (["demo"], {"ENVIRONMENT": "nonsense"}, "environment"),
    (["demo"], {"DATABASE_URL": "not a url"}, "DATABASE_URL"),
    (["demo"], {"DATABASE_URL": "sqlite+aiosqlite:///{tmp}/empty.db"}, "migrate"),
    (
        ["purge-audit"],
        {"DATABASE_URL": "postgresql+asyncpg://postgres@127.0.0.1:{port}/none"},
        "does not answer",
    ),
    # Without the driver: read as postgresql+asyncpg://, so it gets as far as connecting.
    (
        ["purge-audit"],
        {"DATABASE_URL": "postgresql://postgres@127.0.0.1:{port}/none"},
        "does not answer",
    ),
    (
        ["purge-audit"],
        {"DATABASE_URL": "postgres://postgres@127.0.0.1:{port}/none"},
        "does not answer",
    ),
    (
        ["create-client", "--role", "admin", "--name", "x"],
        {"DATABASE_URL": "postgresql+asyncpg://postgres@127.0.0.1:{port}/none"},
        "does not answer",
    ),
]


@pytest.fixture(scope="module")
def migrated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("cli")
    migrations.upgrade(f"sqlite+aiosqlite:///{folder / 'cli.db'}")
    return folder


def run_cli(
    args: list[str], env: dict[str, str], cwd: Path = PROJECT_ROOT
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "app", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.mark.parametrize(
    ("args", "overrides", "named"), BAD_INPUT, ids=[" ".join(a[0]) for a in BAD_INPUT]
)
def test_bad_input_gets_one_clear_line_and_a_non_zero_exit(
    migrated: Path, args: list[str], overrides: dict[str, str], named: str
) -> None:
    closed_port = str(free_port())  # nothing listens there
    env = {
        **os.environ,
        "DATABASE_URL": f"sqlite+aiosqlite:///{migrated / 'cli.db'}",
        "ENVIRONMENT": "test",
        "JWT_SIGNING_KEY": "cli-test-key-" + "0" * 40,
    }
    env.update({k: v.format(tmp=migrated, port=closed_port) for k, v in overrides.items()})
    result = run_cli(args, env)
    assert result.returncode != 0
    assert "Traceback" not in result.stderr + result.stdout
    lines = [line for line in result.stderr.splitlines() if not line.startswith("INFO")]
    assert len(lines) == 1, result.stderr  # argparse's usage no longer comes before it
    assert named.lower() in lines[0].lower(), result.stderr


@pytest.mark.parametrize(
    "command", [["create-client", "--role", "admin", "--name", "x"], ["expire-proposals"]]
)
def test_a_mistyped_sqlite_path_is_said_and_nothing_is_created(
    tmp_path: Path, command: list[str]
) -> None:
    missing = tmp_path / "no-such-folder" / "tremplin.db"
    env = {
        **os.environ,
        "DATABASE_URL": f"sqlite+aiosqlite:///{missing}",
        "ENVIRONMENT": "test",
        "JWT_SIGNING_KEY": "cli-test-key-" + "0" * 40,
    }
    result = run_cli(command, env)
    assert result.returncode == 1, result.stderr
    assert result.stderr.splitlines() == [
        f"{command[0]}: no SQLite database at {missing}: check DATABASE_URL, or run "
        "`python -m app migrate` first"
    ]
    # Neither an empty database nor its folder was left behind.
    assert not missing.parent.exists()


# (environment overrides, the setting named, what the line must say)
BAD_SETTINGS = [
    ({"REDIS_URL": "localhost:6379"}, "REDIS_URL", "redis://"),
    ({"REDIS_URL": "http://127.0.0.1:6379"}, "REDIS_URL", "redis://"),
    ({"DATABASE_URL": "mysql://x:s3cret-pw@y/z"}, "DATABASE_URL", "postgresql+asyncpg://"),
    ({"DATABASE_URL": "postgresql+psycopg://x:s3cret-pw@y/z"}, "DATABASE_URL", "sqlite+aiosqlite"),
    ({"DATABASE_URL": "not a url"}, "DATABASE_URL", "postgresql+asyncpg://"),
    ({"TRUSTED_PROXIES": "10.0.0.0/8"}, "TRUSTED_PROXIES", "JSON list"),
    ({"METRICS_ALLOW_FROM": "[bad"}, "METRICS_ALLOW_FROM", "JSON list"),
    ({"JOB_SCHEDULES": "notjson"}, "JOB_SCHEDULES", "JSON map"),
    ({"JOB_SCHEDULES": '["a list"]'}, "JOB_SCHEDULES", "JSON map"),
    ({"CORS_ORIGINS": "https://app.example.org"}, "CORS_ORIGINS", "JSON list"),
    ({"WEBHOOK_RETRY_SCHEDULE_S": "5,10"}, "WEBHOOK_RETRY_SCHEDULE_S", "JSON list"),
    ({"ENVIRONMENT": "prod"}, "ENVIRONMENT", "production"),
    # Empty is unset for the others; these two would silently fall back to development.
    ({"ENVIRONMENT": ""}, "ENVIRONMENT", "production"),
    ({"DATABASE_URL": " "}, "DATABASE_URL", "postgresql+asyncpg://"),
]
COMMANDS = [["serve", "--workers", "2"], ["worker", "--once"], ["migrate"]]


def _listening(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


@pytest.mark.parametrize("command", COMMANDS, ids=[" ".join(c) for c in COMMANDS])
@pytest.mark.parametrize(
    ("overrides", "setting", "expected"),
    BAD_SETTINGS,
    ids=[next(iter(o)) + "=" + next(iter(o.values())) for o, _, _ in BAD_SETTINGS],
)
def test_a_bad_setting_is_one_line_naming_it_before_anything_starts(
    migrated: Path, command: list[str], overrides: dict[str, str], setting: str, expected: str
) -> None:
    port = free_port()
    env = {
        **os.environ,
        "DATABASE_URL": f"sqlite+aiosqlite:///{migrated / 'cli.db'}",
        "ENVIRONMENT": "test",
        "PORT": str(port),
        **overrides,
    }
    result = run_cli(command, env)
    assert result.returncode == 1
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"{command[0]}: {setting}: "), lines[0]
    assert expected in lines[0]
    assert "s3cret" not in lines[0]  # a URL's password is never echoed
    assert not _listening(port)


@pytest.mark.parametrize("workers", ["1", "2"])
def test_a_port_in_use_is_one_line_naming_it(migrated: Path, tmp_path: Path, workers: str) -> None:
    """uvicorn exited 3: with one worker after starting the app up and shutting it down
    again (six log lines), with several on "[Errno 98] Address already in use", naming
    neither host nor port."""
    metrics = tmp_path / "metrics"
    metrics.mkdir()
    (metrics / "counter_1.db").write_bytes(b"")  # another server's figures stay
    env = {
        **os.environ,
        "DATABASE_URL": f"sqlite+aiosqlite:///{migrated / 'cli.db'}",
        "ENVIRONMENT": "test",
        "PROMETHEUS_MULTIPROC_DIR": str(metrics),
    }
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = run_cli(["serve", "--port", str(port), "--workers", workers], env)
    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr.splitlines() == [
        f"serve: cannot listen on 127.0.0.1:{port}: address already in use"
    ], result.stderr
    assert (metrics / "counter_1.db").exists()


def test_several_bad_settings_get_one_line_each(migrated: Path) -> None:
    env = {
        **os.environ,
        "DATABASE_URL": f"sqlite+aiosqlite:///{migrated / 'cli.db'}",
        "REDIS_URL": "localhost:6379",
        "TRUSTED_PROXIES": "10.0.0.0/8",
        "PORT": "0",
    }
    result = run_cli(["jobs"], env)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    named = sorted(line.split(":")[1].strip() for line in result.stderr.splitlines())
    assert named == ["PORT", "REDIS_URL", "TRUSTED_PROXIES"], result.stderr


@pytest.mark.parametrize("value", ["", "   "])
def test_an_empty_redis_url_is_unset(migrated: Path, value: str) -> None:
    env = {
        **os.environ,
        "DATABASE_URL": f"sqlite+aiosqlite:///{migrated / 'cli.db'}",
        "REDIS_URL": value,
    }
    result = run_cli(["jobs"], env)
    assert result.returncode == 0, result.stderr


# Commands that need the schema, on a PostgreSQL database without one.
NEEDS_SCHEMA = [
    ["create-client", "--role", "admin", "--name", "x"],
    ["purge-audit"],
    ["purge-idempotency-keys"],
    ["retention"],
    ["expire-proposals"],
    ["demo"],
    ["bootstrap-admin"],
]


def test_postgresql_without_schema_or_database_says_so() -> None:
    server = require_postgres()
    url = asyncio.run(create_postgres_database(server, prefix="tremplin_cli_empty"))
    try:
        env = {**os.environ, "DATABASE_URL": url, "ENVIRONMENT": "test"}
        for command in NEEDS_SCHEMA:
            result = run_cli(command, env)
            assert result.returncode == 1, (command, result.stderr)
            assert result.stderr.splitlines() == [
                f"{command[0]}: the database has no schema: run `python -m app migrate` first"
            ], result.stderr
    finally:
        asyncio.run(drop_postgres_database(server, url))
    # The database just dropped: it does not exist, and the password is not repeated.
    with_password = url.replace("://postgres@", "://postgres:not-the-password@", 1)
    for command in (["purge-audit"], ["migrate"]):
        result = run_cli(command, {**os.environ, "DATABASE_URL": with_password})
        assert result.returncode == 1
        lines = result.stderr.splitlines()
        assert len(lines) == 1, result.stderr
        assert "does not exist" in lines[0]
        assert "not-the-password" not in result.stderr


def test_a_good_command_still_works(migrated: Path) -> None:
    env = {**os.environ, "DATABASE_URL": f"sqlite+aiosqlite:///{migrated / 'cli.db'}"}
    result = run_cli(["create-client", "--role", "admin", "--name", "cli probe"], env)
    assert result.returncode == 0, result.stderr
    assert '"client_secret"' in result.stdout


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.mark.parametrize("command", [["demo"], ["bootstrap-admin"]], ids=["demo", "bootstrap"])
def test_development_only_commands_are_refused_in_production(
    migrated: Path, command: list[str]
) -> None:
    """`demo` in production loaded 128 invented people into the real figures."""
    database_url = f"sqlite+aiosqlite:///{migrated / 'cli.db'}"
    env = {**os.environ, "DATABASE_URL": database_url, "ENVIRONMENT": "production"}
    result = run_cli(command, env)
    assert result.returncode == 2
    assert result.stdout == ""
    (line,) = result.stderr.splitlines()
    assert "refused in production" in line

    async def structures() -> int:
        from sqlalchemy import func, select

        from app.db import create_engine
        from app.models import Structure
        from tests.conftest import make_settings

        engine = create_engine(make_settings(database_url))
        try:
            async with engine.connect() as conn:
                return int(await conn.scalar(select(func.count()).select_from(Structure)) or 0)
        finally:
            await engine.dispose()

    assert asyncio.run(structures()) == 0


def test_progress_draws_on_a_terminal_only() -> None:
    terminal, pipe = _Terminal(), io.StringIO()
    for stream in (terminal, pipe):
        with Progress("demo", total=4, stream=stream) as progress:
            for _ in range(4):
                progress.advance()
    assert pipe.getvalue() == ""
    assert "demo: [####################] 4/4 (100%" in terminal.getvalue()
    assert terminal.getvalue().endswith("\n")


def test_the_demo_shows_progress_on_a_terminal(tmp_path: Path) -> None:
    """Run under a pseudo-terminal: the loader draws its line, then its summary."""
    import pty

    database = f"sqlite+aiosqlite:///{tmp_path / 'demo.db'}"
    migrations.upgrade(database)
    env = {**os.environ, "DATABASE_URL": database, "ENVIRONMENT": "test"}
    controller, terminal = pty.openpty()
    try:
        process = subprocess.Popen(
            [sys.executable, "-m", "app", "demo"],
            cwd=PROJECT_ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=terminal,
        )
        stdout, _ = process.communicate(timeout=300)
        os.close(terminal)
        terminal = -1
        drawn = b""
        while True:
            try:
                chunk = os.read(controller, 4096)
            except OSError:
                break
            if not chunk:
                break
            drawn += chunk
    finally:
        if terminal != -1:
            os.close(terminal)
        os.close(controller)
    assert process.returncode == 0
    assert b"demo dataset loaded" in stdout
    # The people of both programmes, counted as they are registered, then the line ends.
    assert re.search(rb"demo: \d{3} \(\d+ s\)\r\n$", drawn), drawn[-200:]
