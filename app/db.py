"""Engine and session factory. The engine is built in the app lifespan, never at import."""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import uuid
from collections.abc import (
    AsyncIterator,
    Awaitable,
    Callable,
    Iterable,
    Iterator,
    Mapping,
    Sequence,
)
from contextlib import asynccontextmanager, contextmanager
from contextvars import ContextVar
from pathlib import Path
from typing import Any, TypeVar

import asyncpg  # type: ignore[import-untyped]
from pydantic_core import from_json
from sqlalchemy import event, make_url
from sqlalchemy.engine.interfaces import DBAPIConnection, Dialect
from sqlalchemy.exc import DBAPIError, DisconnectionError
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.pool import ConnectionPoolEntry, PoolProxiedConnection
from sqlalchemy.sql import ClauseElement
from sqlalchemy.util import greenlet_spawn

from app.config import PROJECT_ROOT, Settings
from app.errors import ServiceUnavailable

T = TypeVar("T")

logger = logging.getLogger("tremplin.db")


def create_engine(settings: Settings) -> AsyncEngine:
    # JSON columns (a candidate's competencies, certifications, contracts) are parsed by
    # pydantic-core's parser: four to ten times faster than the standard library's, a
    # twentieth of a 50-row page's CPU; same values for the JSON we store.
    if settings.is_sqlite:
        ensure_sqlite_dir(settings.database_url)
        engine = create_async_engine(
            settings.database_url,
            echo=settings.db_echo,
            hide_parameters=True,  # bound values are personal data: never in logs
            pool_timeout=settings.db_pool_timeout_s,
            connect_args={"timeout": settings.sqlite_busy_timeout_ms / 1000},
            # No ROLLBACK when a connection goes back to the pool: every transaction
            # ends before (SQLAlchemy's own, and `run_alone_sqlite`'s), and each reset
            # is one more hop to the driver's thread per request.
            pool_reset_on_return=None,
            json_deserializer=from_json,
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
        json_deserializer=from_json,
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
    after `command_timeout`; SQLAlchemy then invalidates the whole pool (the hot read,
    `fetch_one_alone`, that one connection), so one request pays for it, and
    `pool_recycle` bounds the age of every connection.
    """

    @event.listens_for(engine.sync_engine, "checkout")
    def _on_checkout(
        dbapi_conn: DBAPIConnection, _record: ConnectionPoolEntry, _proxy: PoolProxiedConnection
    ) -> None:
        raw = getattr(dbapi_conn, "_connection", None)
        if raw is not None and raw.is_closed():
            # The pool discards this connection and checks out another (or connects).
            raise DisconnectionError("connection closed by the server")


def sqlite_file(url: str) -> Path | None:
    """The file an SQLite URL names, as written (None: another database, memory, a URI)."""
    parsed = make_url(url)
    database = parsed.database
    if parsed.get_backend_name() != "sqlite" or not database:
        return None
    if database == ":memory:" or database.startswith("file:"):
        return None
    return Path(database)


def ensure_sqlite_dir(url: str) -> None:
    """Create the folder of an SQLite database file (var/ on a fresh clone)."""
    path = sqlite_file(url)
    if path is not None:
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


class DriverStatement:
    """A statement compiled once for one dialect and run on the driver's own connection.

    For the hottest read (one statement, alone, many times a second): SQLAlchemy's work
    per execution (execution context, parameter and result processing, its cursor
    adapter) cost as much CPU as asyncpg's own. The statement is still built and
    compiled by SQLAlchemy, its parameters go through the same bind processors, and the
    errors come out as SQLAlchemy's (`fetch_one_alone`). `given` names the parameters
    given at each run; every other value was bound when the statement was built and is
    processed once, here.
    """

    __slots__ = ("_columns", "_slots", "sql")

    def __init__(self, statement: ClauseElement, dialect: Dialect, given: Iterable[str]) -> None:
        given = frozenset(given)
        compiled = statement.compile(dialect=dialect)
        # Lists bound when the statement was built become one parameter per element.
        state = compiled.construct_expanded_state(dict.fromkeys(given))  # type: ignore[attr-defined]
        # The expanded state lists the processors of expanded lists only.
        processors = {**compiled._bind_processors, **state.processors}  # type: ignore[attr-defined]
        slots: list[tuple[str | None, Callable[[Any], Any] | None, Any]] = []
        for name in state.positiontup or ():
            process = processors.get(name)
            if name in given:
                slots.append((name, process, None))
            else:
                value = state.parameters[name]
                slots.append((None, None, process(value) if process else value))
        missing = given - {name for name, _, _ in slots}
        if missing:
            raise ValueError(f"the statement has no parameter {sorted(missing)}")
        # Values SQLAlchemy computes at each execution (Python-side column defaults) would
        # be missing here: such a statement must give them.
        computed = [c.key for c in (*compiled.insert_prefetch, *compiled.update_prefetch)]  # type: ignore[attr-defined]
        if computed or not all(callable(p) for _, p, _ in slots if p is not None):
            raise ValueError(f"the statement needs values computed at execution: {computed}")
        self.sql: str = state.statement
        self._slots = tuple(slots)
        # SQLite's values, read back as SQLAlchemy reads them (`row`). A PostgreSQL
        # statement's records are used as asyncpg decodes them: ids, instants, numbers
        # and JSON alike, enums as their text (the response models read it).
        self._columns = (
            tuple(
                (column.key, column.type.dialect_impl(dialect).result_processor(dialect, None))
                for column in getattr(statement, "selected_columns", ())
            )
            if dialect.name == "sqlite"
            else None
        )

    def arguments(self, values: Mapping[str, Any]) -> list[Any]:
        return [
            constant if name is None else process(values[name]) if process else values[name]
            for name, process, constant in self._slots
        ]

    def row(self, values: Sequence[Any]) -> dict[str, Any]:
        """A row the driver returned, by column name, each value as SQLAlchemy reads it
        (SQLite answers text and numbers: ids, instants, JSON, booleans are converted)."""
        if self._columns is None:
            raise TypeError("only SQLite's rows are read back by DriverStatement.row")
        return {
            key: process(value) if process else value
            for (key, process), value in zip(self._columns, values, strict=True)
        }


async def fetch_one_alone(
    engine: AsyncEngine, statement: DriverStatement, values: Mapping[str, Any]
) -> asyncpg.Record | None:
    """PostgreSQL: run a statement that is atomic by itself alone (no BEGIN or COMMIT:
    the driver's connection, outside any transaction, commits it) on a pooled
    connection, and return its first row.

    Errors are SQLAlchemy's, as the app's error handlers expect: the driver's error is
    translated by SQLAlchemy's dialect adapter and wrapped in DBAPIError, whether it
    comes from connecting or from the statement. A connection the failure may have left
    in an unknown state (closed, a timeout, a cancellation, anything the server did not
    answer itself) is invalidated, never given to another request.
    """
    return await _alone(engine, statement, values, asyncpg.Connection.fetchrow)


async def fetch_all_alone(
    engine: AsyncEngine, statement: DriverStatement, values: Mapping[str, Any]
) -> list[asyncpg.Record]:
    """`fetch_one_alone`, every row."""
    return await _alone(engine, statement, values, asyncpg.Connection.fetch)


async def _alone(
    engine: AsyncEngine,
    statement: DriverStatement,
    values: Mapping[str, Any],
    fetch: Callable[..., Awaitable[T]],
) -> T:
    arguments = statement.arguments(values)
    # The pool's connection itself, without a Connection around it: that wrapper and
    # its options cost two thirds of a checkout's CPU. Nothing here begins a transaction.
    try:
        pooled = await engine.raw_connection()
    except Exception as exc:  # connecting failed (refused, too many, starting up...)
        raise _as_dbapi_error(engine.dialect, None, exc) from exc
    driver: asyncpg.Connection = pooled.driver_connection
    try:
        return await fetch(driver, statement.sql, *arguments)
    except BaseException as exc:
        error = _as_dbapi_error(engine.dialect, pooled.dbapi_connection, exc)
        if not isinstance(exc, asyncpg.PostgresError) or driver.is_closed():
            # Outside a greenlet SQLAlchemy terminates the connection at once, without
            # waiting for a server that may not answer.
            pooled.invalidate(exc if isinstance(exc, Exception) else None)
        if error is exc:
            raise
        raise error from exc
    finally:
        await greenlet_spawn(pooled.close)


async def run_alone_sqlite(engine: AsyncEngine, work: Callable[[sqlite3.Connection], T]) -> T:
    """SQLite: `work` in a transaction of its own on a pooled connection, run on the
    driver's thread in one hop: BEGIN (IMMEDIATE unless `reads_only`), `work`, COMMIT,
    or ROLLBACK if anything fails.

    Through SQLAlchemy's adapter, each statement is three or four hops between the event
    loop and the driver's thread (cursor, execute, fetch, close): a journaled read made a
    dozen. Errors come out as SQLAlchemy's (DBAPIError), so a lost lock upgrade is seen
    as such (`is_lost_upgrade`) and the request runs again as a writer. The connection
    goes back to the pool only once the work has ended, even if this task is cancelled,
    and is invalidated if it is closed or still in a transaction.
    """
    begin = "BEGIN" if _reads_only.get() else "BEGIN IMMEDIATE"
    left_open = False

    def transaction(raw: sqlite3.Connection) -> T:
        nonlocal left_open
        raw.execute(begin)
        try:
            result = work(raw)
            raw.execute("COMMIT")
        except BaseException:
            try:
                if raw.in_transaction:
                    raw.execute("ROLLBACK")
            finally:
                left_open = raw.in_transaction
            raise
        return result

    async with engine.connect() as connection:
        pooled = await connection.get_raw_connection()
        driver: Any = pooled.driver_connection
        # aiosqlite's own queue to its thread, as SQLAlchemy's adapter uses it too.
        execution = asyncio.ensure_future(driver._execute(transaction, driver._conn))
        try:
            result: T = await asyncio.shield(execution)
        except asyncio.CancelledError:
            # The work runs on: the connection is not released before it ends.
            await asyncio.wait([execution])
            if not execution.cancelled():
                execution.exception()  # retrieved: its failure is this request's no more
            if left_open:
                await connection.invalidate()
            raise
        except Exception as exc:
            error = _as_dbapi_error(engine.dialect, pooled.dbapi_connection, exc)
            closed = isinstance(error, DBAPIError) and error.connection_invalidated
            if left_open or closed:  # never handed to another request in doubt
                await connection.invalidate(exc)
            if error is exc:
                raise
            raise error from exc
        return result


def _as_dbapi_error(dialect: Dialect, adapter: Any, exc: BaseException) -> BaseException:
    """The exception SQLAlchemy would have raised for `exc`: the connection adapter's
    translation (a failed connect comes translated already), wrapped in DBAPIError;
    other errors (a timeout, a cancellation) as they are."""
    if not isinstance(exc, Exception):
        return exc
    dbapi_error = dialect.loaded_dbapi.Error
    try:
        if adapter is None:
            raise exc
        adapter._handle_exception(exc)
    except dbapi_error as translated:
        return DBAPIError.instance(
            None,
            None,
            translated,
            dbapi_error,
            hide_parameters=True,
            connection_invalidated=dialect.is_disconnect(translated, adapter, None),
            dialect=dialect,
        )
    except Exception as other:  # what the adapter does not translate
        return other
    return exc


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
