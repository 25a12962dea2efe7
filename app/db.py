"""Engine and session factory. The engine is built in the app lifespan, never at import."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from contextvars import ContextVar
from functools import lru_cache
from pathlib import Path
from typing import Any

from sqlalchemy import event, make_url
from sqlalchemy.engine.interfaces import DBAPIConnection
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.pool import ConnectionPoolEntry, PoolProxiedConnection

from app.config import PROJECT_ROOT, Settings
from app.errors import ServiceUnavailable

logger = logging.getLogger("tremplin.db")


def create_engine(settings: Settings) -> AsyncEngine:
    if settings.is_sqlite:
        ensure_sqlite_dir(settings.database_url)
        engine = create_async_engine(
            settings.database_url,
            echo=settings.db_echo,
            hide_parameters=True,  # bound values are personal data: never in logs
            pool_timeout=settings.db_pool_timeout_s,
            connect_args={"timeout": settings.sqlite_busy_timeout_ms / 1000},
        )
        _install_sqlite_pragmas(engine, settings.sqlite_busy_timeout_ms)
        return engine
    server_settings = {"application_name": settings.db_application_name}
    connect_args: dict[str, Any] = {
        "timeout": settings.db_connect_timeout_s,
        # Each statement, BEGIN and COMMIT included, is bounded on this side too.
        "command_timeout": settings.db_command_timeout_s,
        "server_settings": server_settings,
    }
    if settings.db_pgbouncer:
        # A transaction-mode pooler hands each transaction any server connection: a
        # statement prepared on one is unknown on the next. No statement cache, and
        # names that never collide. PgBouncer refuses unknown startup parameters, so
        # statement_timeout is set on the database role instead (README).
        connect_args["statement_cache_size"] = 0
        connect_args["prepared_statement_cache_size"] = 0
        connect_args["prepared_statement_name_func"] = _unique_statement_name
    else:
        server_settings["statement_timeout"] = str(settings.db_statement_timeout_ms)
    engine = create_async_engine(
        settings.database_url,
        echo=settings.db_echo,
        hide_parameters=True,  # bound values are personal data: never in logs
        pool_size=settings.db_pool_size,
        max_overflow=settings.db_max_overflow,
        pool_timeout=settings.db_pool_timeout_s,
        pool_recycle=settings.db_pool_recycle_s,
        pool_pre_ping=settings.db_pool_pre_ping,
        connect_args=connect_args,
    )
    _discard_closed_connections(engine)
    return engine


def _unique_statement_name() -> str:
    return f"__asyncpg_{uuid.uuid4().hex}__"


def _discard_closed_connections(engine: AsyncEngine) -> None:
    """A connection the server closed (restart, failover, idle kill) is replaced at
    checkout, without the round trip a pre-ping costs on every request.

    asyncpg learns of the close as soon as the event loop reads the socket's end, so the
    check is a flag. A connection that died silently (a network cut) fails its statement
    after `command_timeout`; SQLAlchemy then invalidates the whole pool, so one request
    pays for it, and `pool_recycle` bounds the age of every connection.
    """

    @event.listens_for(engine.sync_engine, "checkout")
    def _on_checkout(
        dbapi_conn: DBAPIConnection, _record: ConnectionPoolEntry, _proxy: PoolProxiedConnection
    ) -> None:
        raw = getattr(dbapi_conn, "_connection", None)
        if raw is not None and raw.is_closed():
            # The pool discards this connection and checks out another (or connects).
            raise DisconnectionError("connection closed by the server")


def ensure_sqlite_dir(url: str) -> None:
    """Create the folder of an SQLite database file (var/ on a fresh clone)."""
    database = make_url(url).database
    if database and database != ":memory:" and not database.startswith("file:"):
        path = Path(database)
        (path if path.is_absolute() else PROJECT_ROOT / path).parent.mkdir(
            parents=True, exist_ok=True
        )


def _install_sqlite_pragmas(engine: AsyncEngine, busy_timeout_ms: int) -> None:
    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_conn: DBAPIConnection, _record: ConnectionPoolEntry) -> None:
        # pysqlite's own BEGIN handling defers transactions oddly; take control of it so
        # that "BEGIN" is emitted by SQLAlchemy (see the SQLAlchemy SQLite dialect docs).
        dbapi_conn.isolation_level = None
        cursor = dbapi_conn.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(conn: Any) -> None:
        # Writers take the write lock at BEGIN, so read-modify-write sequences are
        # serialised instead of failing late with "database is locked". Reads (see
        # `reads_only`) take no lock at all: they never wait behind a writer.
        conn.exec_driver_sql("BEGIN" if _reads_only.get() else "BEGIN IMMEDIATE")


# SQLite: whether the transactions started in this context only read (BEGIN DEFERRED).
# Set per request by the router layer (GET, HEAD, the token endpoint) and by /readyz;
# everything else (writes, commands, tests) begins IMMEDIATE.
_reads_only: ContextVar[bool] = ContextVar("sqlite_reads_only", default=False)


@contextmanager
def reads_only(enabled: bool = True) -> Iterator[None]:
    token = _reads_only.set(enabled)
    try:
        yield
    finally:
        _reads_only.reset(token)


# SQLITE_BUSY_SNAPSHOT: a DEFERRED transaction tried to write after another connection
# committed since its first read. Waiting cannot help; the transaction must start again.
_SQLITE_BUSY = 5


def is_lost_upgrade(exc: BaseException) -> bool:
    """A DEFERRED SQLite transaction that could not take the write lock (see above)."""
    orig = getattr(exc, "orig", None)
    code = getattr(orig, "sqlite_errorcode", None)
    if code is None:
        cause = getattr(orig, "__cause__", None)
        code = getattr(cause, "sqlite_errorcode", None)
    return isinstance(code, int) and code & 0xFF == _SQLITE_BUSY


class SqliteWriters:
    """SQLite has one writer at a time: a process's writing requests take turns here, in
    arrival order, before BEGIN IMMEDIATE, instead of polling SQLite's busy handler
    (which favours no one and let a few requests time out under load). The wait is
    bounded by the busy timeout. A turn is re-entrant within a task: an idempotent
    replay reads the resource again through the app while its POST holds the turn.
    """

    def __init__(self, timeout_s: float) -> None:
        self.timeout_s = timeout_s
        self._lock = asyncio.Lock()
        self._owner: asyncio.Task[Any] | None = None

    @asynccontextmanager
    async def turn(self) -> AsyncIterator[None]:
        task = asyncio.current_task()
        if task is not None and self._owner is task:
            yield
            return
        try:
            async with asyncio.timeout(self.timeout_s):
                await self._lock.acquire()
        except TimeoutError:
            raise WritersBusy() from None
        self._owner = task
        try:
            yield
        finally:
            self._owner = None
            self._lock.release()


class WritersBusy(ServiceUnavailable):
    slug, title = "database-busy", "The database is busy"

    def __init__(self) -> None:
        super().__init__("Too many writes are waiting; retry shortly.", retry_after_s=1)


async def dispose(engine: AsyncEngine, timeout_s: float) -> None:
    """Close the pool, but never wait longer than `timeout_s` for a frozen server."""
    try:
        async with asyncio.timeout(timeout_s):
            await engine.dispose()
    except TimeoutError:
        logger.warning("database connections not closed within %s s; dropped", timeout_s)
        await engine.dispose(close=False)


@lru_cache(maxsize=8)
def autocommit(engine: AsyncEngine) -> AsyncEngine:
    """The engine's pool, each statement committed on its own: for a request whose only
    statement is atomic by itself, it saves the BEGIN and COMMIT round trips."""
    return engine.execution_options(isolation_level="AUTOCOMMIT")


def create_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False, autoflush=False)


@asynccontextmanager
async def session_scope(
    sessionmaker: async_sessionmaker[AsyncSession],
) -> AsyncIterator[AsyncSession]:
    """A unit of work for commands outside HTTP: commit on success, roll back on error."""
    async with sessionmaker() as session:
        try:
            yield session
            await session.commit()
        except BaseException:
            await session.rollback()
            raise
