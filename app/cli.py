"""Command line: `python -m app <command>` (or the `tremplin` console script)."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import signal
import socket
import sys
import tempfile
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, NoReturn, TypeVar

import yaml
from sqlalchemy.ext.asyncio import AsyncSession

from app.config import PROJECT_ROOT, Settings, get_settings
from app.domain.enums import Role

if TYPE_CHECKING:
    from pydantic import ValidationError

T = TypeVar("T")


def _openapi_yaml() -> str:
    from app.main import create_app

    spec = create_app().openapi()
    return yaml.safe_dump(spec, sort_keys=False, allow_unicode=True, width=100)


def cmd_openapi(args: argparse.Namespace) -> int:
    text = _openapi_yaml()
    if args.check:
        path = Path(args.check)
        if not path.exists():
            print(f"{path} does not exist: run `make openapi` to write it.", file=sys.stderr)
            return 1
        if path.read_text(encoding="utf-8") != text:
            print(f"{path} differs from the served spec: run `make openapi`.", file=sys.stderr)
            return 1
        print(f"{path} matches the served spec.")
        return 0
    if args.output:
        Path(args.output).write_text(text, encoding="utf-8")
        print(f"wrote {args.output}")
    else:
        sys.stdout.write(text)
    return 0


def cmd_migrate(args: argparse.Namespace) -> int:
    from app import migrations

    if args.downgrade and args.revision is None:
        raise CommandError("--downgrade needs a revision (e.g. -1, a revision id, or base)")
    revision = args.revision or "head"
    if revision.startswith("-") or args.downgrade:
        migrations.downgrade(revision=revision)
    else:
        migrations.upgrade(revision=revision)
    return 0


def cmd_alembic_check(_args: argparse.Namespace) -> int:
    """`alembic check` on a throwaway SQLite database (or on DATABASE_URL with --here)."""
    from app import migrations

    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite+aiosqlite:///{tmp}/check.db"
        migrations.upgrade(url)
        migrations.check(url)
    print("alembic check: models and migrations agree.")
    return 0


class _Stopped(BaseException):
    """SIGTERM, outside uvicorn's own handler: once uvicorn has shut down, it restores
    the handler it found and raises the signal again (a BaseException, as SystemExit:
    no `except Exception` of a library swallows it during startup)."""


def _stop(_signum: int, _frame: FrameType | None) -> None:
    raise _Stopped


def _check_listen(host: str, port: int, workers: int) -> None:
    """Bind, then release, what uvicorn is about to bind, the way it binds it (address
    reuse on, so a port in TIME_WAIT passes as it does for uvicorn): a port in use is
    one line, before the app starts or the metrics folder is emptied. uvicorn's own
    error stays for a port taken between this check and its bind."""
    where = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    sockets: list[socket.socket] = []
    addresses: list[tuple[socket.AddressFamily, socket.SocketKind, int, tuple[object, ...]]]
    try:
        if workers > 1:  # uvicorn's Config.bind_socket
            family = socket.AF_INET6 if ":" in host else socket.AF_INET
            addresses = [(family, socket.SOCK_STREAM, 0, (host, port))]
        else:  # asyncio's create_server: every address the host resolves to
            addresses = [
                (family, kind, proto, address)
                for family, kind, proto, _, address in socket.getaddrinfo(
                    host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
                )
            ]
        for family, kind, proto, address in addresses:
            sock = socket.socket(family, kind, proto)
            sockets.append(sock)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if workers == 1 and family == socket.AF_INET6:
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            sock.bind(address)
    except OSError as exc:
        reason = exc.strerror or str(exc)
        raise CommandError(f"cannot listen on {where}: {reason[:1].lower()}{reason[1:]}") from None
    finally:
        for sock in sockets:
            sock.close()


def cmd_serve(args: argparse.Namespace) -> int:
    import uvicorn

    from app.logs import configure_logging
    from app.metrics import MULTIPROCESS_ENV, multiprocess_dir, prepare_multiprocess_dir

    settings = get_settings()
    problems = settings.production_problems()
    if problems:
        print(f"refusing to serve in production: {'; '.join(problems)}.", file=sys.stderr)
        return 2
    configure_logging(settings.log_level)
    workers = args.workers or settings.workers
    port = args.port if args.port is not None else settings.port
    _check_listen(args.host, port, workers)
    own_metrics_dir = None
    if workers > 1 and multiprocess_dir() is None:
        # Without a shared folder each worker would answer /metrics with its own figures
        # only: counters going back and forth between scrapes. The workers inherit it.
        own_metrics_dir = tempfile.mkdtemp(prefix="tremplin-metrics-")
        os.environ[MULTIPROCESS_ENV] = own_metrics_dir
    prepare_multiprocess_dir()
    # With one worker uvicorn ended the process by the SIGTERM it had caught (status 143),
    # with several the parent exited 0: a stop asked for is a success, 0 either way.
    previous = signal.signal(signal.SIGTERM, _stop)
    try:
        uvicorn.run(
            "app.main:create_app",
            factory=True,
            host=args.host,
            port=port,
            workers=workers,
            # The caller's address comes from X-Forwarded-For only behind TRUSTED_PROXIES,
            # decided by the app itself (app/routers/deps.py), never by uvicorn's defaults.
            proxy_headers=False,
            timeout_graceful_shutdown=max(1, round(settings.shutdown_timeout_s)),
            log_level=settings.log_level.lower(),
            # Our JSON handler and our access line (app/observability.py) replace uvicorn's.
            log_config=None,
            access_log=False,
        )
    except _Stopped:
        pass
    finally:
        signal.signal(signal.SIGTERM, previous)
        if own_metrics_dir is not None:
            shutil.rmtree(own_metrics_dir, ignore_errors=True)
    return 0


async def _with_session(settings: Settings, work: Callable[[AsyncSession], Awaitable[T]]) -> T:
    from app.db import create_engine, create_sessionmaker, session_scope

    engine = create_engine(settings)
    try:
        async with session_scope(create_sessionmaker(engine)) as session:
            return await work(session)
    finally:
        await engine.dispose()


def cmd_create_client(args: argparse.Namespace) -> int:
    from app.schemas.access import ApiClientCreate
    from app.services import clients

    data = ApiClientCreate(
        name=args.name,
        role=args.role,
        structure_id=args.structure_id,
        scopes=args.scope or None,
    )

    async def work(session: AsyncSession) -> tuple[str, str]:
        client, secret = await clients.create(session, data)
        return str(client.id), secret

    client_id, secret = asyncio.run(_with_session(get_settings(), work))
    print(json.dumps({"client_id": client_id, "client_secret": secret}, indent=2))
    print("Keep the secret now: it is stored only as a hash.", file=sys.stderr)
    return 0


BOOTSTRAP_FILE = PROJECT_ROOT / "var" / "bootstrap-admin.json"
BOOTSTRAP_NAME = "bootstrap admin (embedded default)"


def cmd_bootstrap_admin(_args: argparse.Namespace) -> int:
    """Once, on a development database: an admin client whose credentials go to var/."""
    settings = get_settings()
    if settings.is_production:
        print("bootstrap-admin is refused in production: use create-client.", file=sys.stderr)
        return 2
    from sqlalchemy import select

    from app.domain.enums import Role
    from app.models import ApiClient
    from app.schemas.access import ApiClientCreate
    from app.services import clients

    async def work(session: AsyncSession) -> dict[str, str] | None:
        existing = await session.scalar(
            select(ApiClient.id).where(ApiClient.name == BOOTSTRAP_NAME).limit(1)
        )
        if existing is not None:
            return None
        client, secret = await clients.create(
            session, ApiClientCreate(name=BOOTSTRAP_NAME, role=Role.ADMIN)
        )
        return {"client_id": str(client.id), "client_secret": secret}

    created = asyncio.run(_with_session(settings, work))
    if created is not None:
        BOOTSTRAP_FILE.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(BOOTSTRAP_FILE, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            json.dump(created, handle, indent=2)
        print(f"Created a first admin client; its credentials are in {BOOTSTRAP_FILE}.")
    if BOOTSTRAP_FILE.exists():
        print(
            f"Admin credentials: {BOOTSTRAP_FILE}. Get a token with:\n"
            f'  curl -s -u "$(python3 -c \'import json; d = json.load(open("{BOOTSTRAP_FILE}")); '
            f'print(d["client_id"] + ":" + d["client_secret"])\')" '
            f"-d grant_type=client_credentials http://127.0.0.1:{settings.port}/v1/oauth/token"
        )
    else:
        print(
            "An admin client exists but its credentials file is gone: "
            "`python -m app create-client --role admin --name NAME` makes another."
        )
    return 0


def cmd_purge_audit(args: argparse.Namespace) -> int:
    from app.services import audit

    settings = get_settings()
    days = args.days if args.days is not None else settings.audit_retention_days

    async def work(session: AsyncSession) -> int:
        return await audit.purge(session, days)

    removed = asyncio.run(_with_session(settings, work))
    print(f"purged {removed} audit entries older than {days} days")
    return 0


def cmd_purge_idempotency(_args: argparse.Namespace) -> int:
    from app.services.jobs import purge_idempotency_keys

    async def work(session: AsyncSession) -> int:
        return await purge_idempotency_keys(session)

    removed = asyncio.run(_with_session(get_settings(), work))
    print(f"purged {removed} expired idempotency keys")
    return 0


def cmd_expire_proposals(_args: argparse.Namespace) -> int:
    """Close unanswered proposals as expired; running it twice closes nothing more."""
    from app.services import placements

    settings = get_settings()

    async def work(session: AsyncSession) -> int:
        return await placements.expire_proposals(session, settings)

    closed = asyncio.run(_with_session(settings, work))
    print(f"expired {closed} proposals unanswered for {settings.proposal_expiry_days} days")
    return 0


def cmd_worker(args: argparse.Namespace) -> int:
    """Deliver webhooks and run the scheduled jobs until SIGTERM (or one round)."""
    settings = get_settings()  # a bad setting is one line, before anything is logged
    from app import worker
    from app.logs import configure_logging

    try:
        # Checked before anything is logged, connected or created.
        runner = worker.Worker(settings, name=args.name)
    except worker.Misconfigured as exc:
        print(f"worker: {exc}.", file=sys.stderr)
        return 2 if settings.production_problems() else 1
    configure_logging(settings.log_level)
    failures = asyncio.run(worker.serve(runner, once=args.once))
    return 1 if failures else 0


def cmd_jobs(_args: argparse.Namespace) -> int:
    from app.services.jobs import JOBS, ScheduleError, check_schedules, schedule_of

    settings = get_settings()
    try:
        check_schedules(JOBS, settings)
    except ScheduleError as exc:
        raise CommandError(f"{exc}.") from None
    for job in JOBS.values():
        print(f"{job.name:<24} {schedule_of(job, settings):<14} {job.description}")
    return 0


def cmd_retention(args: argparse.Namespace) -> int:
    """Anonymise people with no change for RETENTION_INACTIVE_MONTHS; safe to repeat."""
    from app.db import create_engine, create_sessionmaker, session_scope
    from app.progress import Progress
    from app.services.data_rights import anonymise_inactive

    settings = get_settings()

    async def work() -> tuple[int, int]:
        engine = create_engine(settings)
        try:
            maker = create_sessionmaker(engine)
            async with session_scope(maker) as session:
                found = (await anonymise_inactive(session, settings, dry_run=True)).found
            if args.dry_run or not found:
                return found, 0
            done = 0
            with Progress("anonymising", total=found) as bar:
                while True:  # one transaction per batch: a long run holds no lock for long
                    async with session_scope(maker) as session:
                        run = await anonymise_inactive(
                            session, settings, dry_run=False, limit=args.batch, progress=bar.advance
                        )
                    done += run.anonymised
                    if run.found < args.batch:
                        return found, done
        finally:
            await engine.dispose()

    found, done = asyncio.run(work())
    months = settings.retention_inactive_months
    if args.dry_run:
        print(f"dry run: {found} people inactive for {months} months would be anonymised")
    else:
        print(f"anonymised {done} people inactive for {months} months")
    return 0


def cmd_permissions_doc(args: argparse.Namespace) -> int:
    from app.services.permissions import render_markdown

    text = render_markdown()
    path = Path(args.output)
    if args.check:
        if not path.exists() or path.read_text(encoding="utf-8") != text:
            print(f"{path} is out of date: run `make docs`.", file=sys.stderr)
            return 1
        return 0
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    print(f"wrote {path}")
    return 0


def cmd_demo(_args: argparse.Namespace) -> int:
    from app.demo import load_demo

    settings = get_settings()
    if settings.is_production:
        # 128 invented people and a national objective would land among real ones,
        # in every figure and ranking.
        print("demo is refused in production: it loads invented people.", file=sys.stderr)
        return 2
    summary = asyncio.run(load_demo(settings))
    print(summary)
    return 0


def _port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if not 1 <= value <= 65535:
        raise argparse.ArgumentTypeError("must be between 1 and 65535")
    return value


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def _days(text: str) -> int:
    from app.config import MAX_PERIOD_DAYS

    value = _positive_int(text)
    if value > MAX_PERIOD_DAYS:
        raise argparse.ArgumentTypeError(f"must be at most {MAX_PERIOD_DAYS}")
    return value


# A batch is one transaction holding its people's row locks: past this, a run would
# hold them for long, which batching is there to avoid (and past 2**63, LIMIT overflows).
MAX_RETENTION_BATCH = 10_000


def _batch(text: str) -> int:
    value = _positive_int(text)
    if value > MAX_RETENTION_BATCH:
        raise argparse.ArgumentTypeError(f"must be at most {MAX_RETENTION_BATCH}")
    return value


class CommandError(Exception):
    """A failure the user can fix: printed as one line, exit status 1."""


def _uuid(text: str) -> uuid.UUID:
    try:
        return uuid.UUID(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a UUID: {text!r}") from None


# SQLSTATEs a user can fix (PostgreSQL's; SQLite's messages are matched below).
_SQLSTATE_LINES = {
    "42P01": "the database has no schema: run `python -m app migrate` first",
    "3D000": "the database named in DATABASE_URL does not exist: create it, then migrate",
    "28P01": "the database refused the user or password of DATABASE_URL",
    "28000": "the database refused the user or password of DATABASE_URL",
}


def _sqlstate(exc: BaseException) -> str | None:
    """The PostgreSQL SQLSTATE behind an error: SQLAlchemy wraps the driver's error
    (`.orig`), whose own cause is asyncpg's exception."""
    seen: set[int] = set()
    pending: list[BaseException | None] = [exc]
    while pending:
        current = pending.pop()
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        code = getattr(current, "sqlstate", None) or getattr(current, "pgcode", None)
        if isinstance(code, str) and code:
            return code
        pending += [getattr(current, "orig", None), current.__cause__, current.__context__]
    return None


def _settings_lines(exc: ValidationError) -> list[str]:
    """One line per bad setting, named as its variable; never the value (it may be secret)."""
    lines = []
    for error in exc.errors():
        name = "_".join(str(p) for p in error["loc"][:1]).upper() or "settings"
        message = str(error["msg"]).removeprefix("Value error, ")
        lines.append(f"{name}: {message}")
    return lines


def _one_line(exc: BaseException) -> str:
    """A readable reason for a known failure, without values that could be personal data
    (one line, or one per bad setting)."""
    from pydantic import ValidationError
    from pydantic_settings import SettingsError
    from sqlalchemy.exc import (
        ArgumentError,
        DBAPIError,
        NoSuchModuleError,
        OperationalError,
        SQLAlchemyError,
    )

    from app.errors import TremplinError

    if isinstance(exc, CommandError):
        return str(exc)
    if type(exc).__module__.startswith("alembic"):
        return f"migration: {exc}"
    if isinstance(exc, TremplinError):
        problems = [
            f"{'.'.join(str(p) for p in e['loc'] if p != 'body')}: {e['message']}"
            for e in exc.extensions.get("errors", [])
        ]
        return "; ".join(problems) if problems else exc.detail
    if isinstance(exc, ValidationError) and exc.title == "Settings":
        return "\n".join(_settings_lines(exc))
    if isinstance(exc, SettingsError):
        return f"settings: {exc}"
    if isinstance(exc, ValidationError):
        # The API's messages, which never repeat the value given (app.errors).
        from app.errors import pydantic_errors

        return "; ".join(
            f"invalid {'.'.join(e['loc']) or 'input'}: {e['message']}"
            for e in pydantic_errors(exc.errors())
        )
    if isinstance(exc, ArgumentError | NoSuchModuleError):
        return f"DATABASE_URL: {exc}"
    orig = type(getattr(exc, "orig", exc)).__name__
    sqlstate = _sqlstate(exc)
    if sqlstate in _SQLSTATE_LINES:
        return _SQLSTATE_LINES[sqlstate]
    if "no such table" in str(exc) or orig == "UndefinedTableError":
        return "the database has no schema: run `python -m app migrate` first"
    if isinstance(exc, OperationalError | ConnectionError | TimeoutError):
        return f"the database does not answer ({orig})"
    if isinstance(exc, OSError):
        where = f": {exc.filename}" if exc.filename else ""
        return f"{exc.strerror or type(exc).__name__}{where}"
    if isinstance(exc, DBAPIError | SQLAlchemyError):
        return f"database error ({type(getattr(exc, 'orig', exc)).__name__})"
    return f"{type(exc).__name__}: {exc}"


# Failures a user can cause and fix; anything else is a bug and keeps its traceback.
def _known_errors() -> tuple[type[BaseException], ...]:
    from alembic.util.exc import CommandError as MigrationError
    from pydantic import ValidationError
    from pydantic_settings import SettingsError
    from sqlalchemy.exc import SQLAlchemyError

    from app.errors import TremplinError

    return (
        CommandError,
        SettingsError,
        MigrationError,
        TremplinError,
        ValidationError,
        SQLAlchemyError,
        ConnectionError,
        TimeoutError,
        OSError,
    )


def _require_sqlite_file(settings: Settings) -> None:
    """For the commands that work on a database `migrate` has made (`needs_database`):
    against a mistyped SQLite path they would create an empty file, and its folder,
    before failing on its schema."""
    from app.db import sqlite_file

    path = sqlite_file(settings.database_url)
    if path is not None and not path.exists():  # where SQLite would open it
        raise CommandError(
            f"no SQLite database at {path.resolve()}: check DATABASE_URL, "
            "or run `python -m app migrate` first"
        )


def run(args: argparse.Namespace) -> int:
    """Run one command; a known failure becomes one line on stderr and exit status 1."""
    try:
        if getattr(args, "needs_database", False):
            _require_sqlite_file(get_settings())
        status: int = args.func(args)
    except KeyboardInterrupt:
        print(f"{args.command}: interrupted", file=sys.stderr)
        return 130
    except _known_errors() as exc:
        for line in _one_line(exc).splitlines():
            print(f"{args.command}: {line}", file=sys.stderr)
        return 1
    return status


class _Parser(argparse.ArgumentParser):
    """argparse, with a usage error in one line (argparse prints the usage before it)."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: {message} (see: {self.prog} --help)\n")


def main(argv: list[str] | None = None) -> None:
    parser = _Parser(prog="tremplin", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="serve the API with uvicorn")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=_port, default=None, help="default: $PORT or 8000")
    serve.add_argument(
        "--workers", type=_positive_int, default=None, help="processes; default: $WORKERS or 1"
    )
    serve.set_defaults(func=cmd_serve)

    migrate = sub.add_parser("migrate", help="apply migrations to DATABASE_URL")
    migrate.add_argument("revision", nargs="?", default=None, help="default: head")
    migrate.add_argument(
        "--downgrade", action="store_true", help="go down to REVISION (required: -1, an id, base)"
    )
    migrate.set_defaults(func=cmd_migrate)

    spec = sub.add_parser("openapi", help="print, write or check the OpenAPI spec")
    group = spec.add_mutually_exclusive_group()
    group.add_argument("--output", help="write the spec to this file")
    group.add_argument("--check", help="exit 1 if this file differs from the served spec")
    spec.set_defaults(func=cmd_openapi)

    check = sub.add_parser("alembic-check", help="fail if models and migrations disagree")
    check.set_defaults(func=cmd_alembic_check)

    demo = sub.add_parser("demo", help="load the fictional demo dataset (idempotent)")
    demo.set_defaults(func=cmd_demo, needs_database=True)

    client = sub.add_parser("create-client", help="create an API client and print its secret")
    client.add_argument("--name", required=True)
    client.add_argument("--role", required=True, choices=[r.value for r in Role])
    client.add_argument("--structure-id", type=_uuid, default=None)
    client.add_argument("--scope", action="append", help="repeat; default: all of the role's")
    client.set_defaults(func=cmd_create_client, needs_database=True)

    boot = sub.add_parser("bootstrap-admin", help="first admin client (never in production)")
    boot.set_defaults(func=cmd_bootstrap_admin, needs_database=True)

    purge = sub.add_parser("purge-audit", help="delete audit entries past the retention")
    purge.add_argument(
        "--days", type=_days, default=None, help="1-36500; default: AUDIT_RETENTION_DAYS"
    )
    purge.set_defaults(func=cmd_purge_audit, needs_database=True)

    keys = sub.add_parser("purge-idempotency-keys", help="delete expired idempotency keys")
    keys.set_defaults(func=cmd_purge_idempotency, needs_database=True)

    expire = sub.add_parser("expire-proposals", help="close proposals left unanswered")
    expire.set_defaults(func=cmd_expire_proposals, needs_database=True)

    work = sub.add_parser("worker", help="deliver webhooks and run the scheduled jobs")
    work.add_argument("--name", default=None, help="default: host:pid:random")
    work.add_argument("--once", action="store_true", help="one round, then exit")
    work.set_defaults(func=cmd_worker)

    listing = sub.add_parser("jobs", help="list the scheduled jobs and their schedules")
    listing.set_defaults(func=cmd_jobs)

    retention = sub.add_parser(
        "retention", help="anonymise people inactive for RETENTION_INACTIVE_MONTHS"
    )
    retention.add_argument("--dry-run", action="store_true", help="count them, change nothing")
    retention.add_argument(
        "--batch", type=_batch, default=500, help=f"people per transaction, 1-{MAX_RETENTION_BATCH}"
    )
    retention.set_defaults(func=cmd_retention, needs_database=True)

    perms = sub.add_parser("permissions-doc", help="render docs/permissions.md")
    perms.add_argument("--output", default=str(PROJECT_ROOT / "docs" / "permissions.md"))
    perms.add_argument("--check", action="store_true", help="exit 1 if the file is stale")
    perms.set_defaults(func=cmd_permissions_doc)

    args = parser.parse_args(argv)  # a usage error: one line, exit 2
    sys.exit(run(args))
