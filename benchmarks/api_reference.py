"""The reference apps of `make bench-api`: Starlette and the raw database driver.

BENCH_VARIANT=reference does exactly the work of Tremplin's authenticated reads:
  - the token check: the bearer JWT verified (HS256, issuer, audience, required claims)
    once per process and token, its expiry checked on every request (Tremplin's rule);
  - the client check: the client's credential version, revocation, expiry, role,
    structure and scopes, read from the database at most every AUTH_CLIENT_CACHE_S
    seconds per process (Tremplin's own rule, so both do the same database work);
  - the read, scoped to the caller's structure, the same columns;
  - the journal row(s) in the same transaction, then commit;
  - the same JSON document (the full view, every field Tremplin returns).
BENCH_VARIANT=bare does the read alone: no token, no transaction, no journal.

PostgreSQL through asyncpg (a pool of DB_POOL_SIZE connections); SQLite through aiosqlite
(the same pragmas as Tremplin; a read that journals is a write there: BEGIN IMMEDIATE,
the process's writers taking turns on an asyncio lock, as Tremplin's do).
"""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import json
import os
import time
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import jwt
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from app.domain.competencies import COMPETENCY_CODES

VARIANT = os.environ.get("BENCH_VARIANT", "reference")
DATABASE_URL = os.environ["DATABASE_URL"]
SIGNING_KEY = os.environ["JWT_SIGNING_KEY"].encode()
ISSUER = os.environ.get("TOKEN_ISSUER", "urn:tremplin")
AUDIENCE = os.environ.get("TOKEN_AUDIENCE", "tremplin-api")
CLIENT_CACHE_S = float(os.environ.get("AUTH_CLIENT_CACHE_S", "5"))
POOL_SIZE = int(os.environ.get("DB_POOL_SIZE", "10"))
IS_SQLITE = DATABASE_URL.startswith("sqlite")

COMPETENCIES = list(COMPETENCY_CODES)

COLUMNS = (
    "id, created_at, updated_at, version, first_name, last_name, birth_date, email, phone, "
    "postcode, commune_insee, commune_name, departement, region, latitude, longitude, "
    "structure_id, referrer_id, max_commute_km, has_driving_licence, accepts_onsite_housing, "
    "available_from, competencies, certifications, preferred_contract_types, "
    "max_weekly_hours, training_hours, positive_skills_assessments, consent_to_share, "
    "consent_given_at, phase, phase_changed_at"
)
FIELDS = [c.strip() for c in COLUMNS.split(",")]
AUDIT_COLUMNS = (
    "id, at, actor_kind, actor_id, actor_role, actor_structure_id, candidate_id, action, "
    "field_class, request_id"
)


def uuid7() -> uuid.UUID:
    ms = time.time_ns() // 1_000_000
    rand = int.from_bytes(os.urandom(10), "big")
    value = (ms & ((1 << 48) - 1)) << 80 | 0x7 << 76 | (rand >> 62) << 64
    value |= 0b10 << 62 | rand & ((1 << 62) - 1)
    return uuid.UUID(int=value)


class Unauthorized(Exception):
    pass


class ClientCache:
    """Client rows checked against the database at most every CLIENT_CACHE_S seconds."""

    def __init__(self) -> None:
        self._rows: dict[str, tuple[float, dict[str, Any]]] = {}

    async def get(self, client_id: str, load: Callable[[str], Any]) -> dict[str, Any] | None:
        now = time.monotonic()
        cached = self._rows.get(client_id)
        if cached is not None and now - cached[0] < CLIENT_CACHE_S:
            return cached[1]
        row = await load(client_id)
        if row is not None:
            self._rows[client_id] = (now, row)
        return row


CLIENTS = ClientCache()


VERIFIED: dict[str, dict[str, Any]] = {}


def claims_of(request: Request) -> dict[str, Any]:
    """Verified once per process and token, expiry checked on every use (as Tremplin)."""
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer":
        raise Unauthorized
    token = token.strip()
    known = VERIFIED.get(token)
    if known is not None:
        if known["exp"] <= time.time():
            raise Unauthorized
        return known
    try:
        claims: dict[str, Any] = jwt.decode(
            token,
            SIGNING_KEY,
            algorithms=["HS256"],
            audience=AUDIENCE,
            issuer=ISSUER,
            options={"require": ["exp", "iat", "iss", "aud", "sub"]},
        )
    except jwt.PyJWTError:
        raise Unauthorized from None
    if len(VERIFIED) >= 20_000:
        VERIFIED.clear()
    VERIFIED[token] = claims
    return claims


def check_client(claims: dict[str, Any], client: dict[str, Any] | None) -> dict[str, Any]:
    if client is None or client["revoked_at"] is not None:
        raise Unauthorized
    expires_at = client["expires_at"]
    if expires_at is not None and expires_at <= dt.datetime.now(dt.UTC):
        raise Unauthorized
    if claims.get("cv") != client["credential_version"]:
        raise Unauthorized
    scopes = set(str(claims.get("scope", "")).split()) & set(client["scopes"])
    if "candidates:read" not in scopes or client["role"] != "insertion":
        raise Unauthorized
    return client


def _iso(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=dt.UTC)
        return value.isoformat().replace("+00:00", "Z")
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, uuid.UUID):
        return str(value)
    return value


def _json(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str) else value


def present(row: Any) -> dict[str, Any]:
    """The full view, as Tremplin renders it."""
    doc: dict[str, Any] = {"view": "full"}
    for name in FIELDS:
        doc[name] = _iso(row[name])
    for name in ("id", "structure_id", "referrer_id"):
        if doc[name] is not None and not isinstance(doc[name], str):
            doc[name] = str(doc[name])
    levels = _json(row["competencies"]) or {}
    doc["competencies"] = {code: levels.get(code, 0) for code in COMPETENCIES}
    doc["certifications"] = [
        {"rncp_code": c["rncp_code"], "status": c["status"], "date": c.get("date")}
        for c in _json(row["certifications"]) or []
    ]
    doc["preferred_contract_types"] = _json(row["preferred_contract_types"]) or []
    for name in ("has_driving_licence", "accepts_onsite_housing", "consent_to_share"):
        doc[name] = bool(doc[name])
    doc["training_hours"] = float(doc["training_hours"])
    return doc


def audit_rows(
    client: dict[str, Any], sub: str, ids: list[Any], action: str, request: Request
) -> list[tuple[Any, ...]]:
    now = dt.datetime.now(dt.UTC)
    request_id = request.headers.get("x-request-id") or uuid.uuid4().hex
    return [
        (uuid7(), now, "client", sub, "insertion", client["structure_id"], cid, action, "full",
         request_id)
        for cid in ids
    ]  # fmt: skip


class Backend:
    async def start(self) -> None: ...
    async def stop(self) -> None: ...


# --- PostgreSQL: asyncpg ---------------------------------------------------------------------


class Postgres(Backend):
    def __init__(self) -> None:
        self.dsn = DATABASE_URL.replace("postgresql+asyncpg://", "postgresql://", 1)
        self.pool: Any = None

    async def start(self) -> None:
        import asyncpg

        async def init(conn: Any) -> None:
            for name in ("jsonb", "json"):
                await conn.set_type_codec(
                    name, encoder=json.dumps, decoder=json.loads, schema="pg_catalog"
                )

        self.pool = await asyncpg.create_pool(self.dsn, min_size=1, max_size=POOL_SIZE, init=init)

    async def stop(self) -> None:
        await self.pool.close()

    async def load_client(self, client_id: str) -> dict[str, Any] | None:
        row = await self.pool.fetchrow(
            "SELECT role, structure_id, scopes, credential_version, expires_at, revoked_at "
            "FROM api_clients WHERE id = $1",
            uuid.UUID(client_id),
        )
        return dict(row) if row is not None else None

    async def one(self, candidate_id: uuid.UUID, structure_id: Any, audit: Any) -> Any:
        async with self.pool.acquire() as conn, conn.transaction():
            row = await conn.fetchrow(
                f"SELECT {COLUMNS} FROM candidates WHERE id = $1 AND structure_id = $2",
                candidate_id,
                structure_id,
            )
            if row is not None:
                await conn.executemany(
                    f"INSERT INTO audit_events ({AUDIT_COLUMNS}) "
                    "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
                    audit([row["id"]]),
                )
        return row

    async def page(self, structure_id: Any, limit: int, audit: Any) -> list[Any]:
        async with self.pool.acquire() as conn, conn.transaction():
            rows = await conn.fetch(
                f"SELECT {COLUMNS} FROM candidates WHERE structure_id = $1 ORDER BY id LIMIT $2",
                structure_id,
                limit + 1,
            )
            await conn.executemany(
                f"INSERT INTO audit_events ({AUDIT_COLUMNS}) "
                "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
                audit([r["id"] for r in rows[:limit]]),
            )
        return list(rows)

    async def bare_one(self, candidate_id: uuid.UUID) -> Any:
        return await self.pool.fetchrow(
            f"SELECT {COLUMNS} FROM candidates WHERE id = $1", candidate_id
        )

    async def bare_page(self, limit: int) -> list[Any]:
        return list(
            await self.pool.fetch(
                f"SELECT {COLUMNS} FROM candidates ORDER BY id LIMIT $1", limit + 1
            )
        )


# --- SQLite: aiosqlite -------------------------------------------------------------------------


def _sqlite_value(value: Any) -> Any:
    if isinstance(value, uuid.UUID):
        return value.hex
    if isinstance(value, dt.datetime):
        return value.astimezone(dt.UTC).replace(tzinfo=None).isoformat(" ")
    return value


class Sqlite(Backend):
    def __init__(self) -> None:
        self.path = DATABASE_URL.split("///", 1)[1]
        self.idle: asyncio.Queue[Any] = asyncio.Queue()
        self.connections: list[Any] = []
        self.writers = asyncio.Lock()

    async def start(self) -> None:
        import aiosqlite

        for _ in range(POOL_SIZE):
            conn = await aiosqlite.connect(self.path, isolation_level=None, timeout=5)
            conn.row_factory = aiosqlite.Row
            for pragma in (
                "PRAGMA foreign_keys=ON",
                "PRAGMA journal_mode=WAL",
                "PRAGMA busy_timeout=5000",
                "PRAGMA synchronous=NORMAL",
            ):
                await conn.execute(pragma)
            self.connections.append(conn)
            self.idle.put_nowait(conn)

    async def stop(self) -> None:
        for conn in self.connections:
            await conn.close()

    @asynccontextmanager
    async def connection(self) -> AsyncIterator[Any]:
        conn = await self.idle.get()
        try:
            yield conn
        finally:
            self.idle.put_nowait(conn)

    async def load_client(self, client_id: str) -> dict[str, Any] | None:
        async with self.connection() as conn:
            cursor = await conn.execute(
                "SELECT role, structure_id, scopes, credential_version, expires_at, revoked_at "
                "FROM api_clients WHERE id = ?",
                (uuid.UUID(client_id).hex,),
            )
            row = await cursor.fetchone()
        if row is None:
            return None
        client = dict(row)
        client["scopes"] = json.loads(client["scopes"])
        for name in ("expires_at", "revoked_at"):
            if client[name] is not None:
                client[name] = dt.datetime.fromisoformat(client[name]).replace(tzinfo=dt.UTC)
        return client

    async def _in_transaction(self, sql: str, params: tuple[Any, ...], audit: Any) -> list[Any]:
        """Tremplin's rule: a read that journals is a write on SQLite, so it takes the
        write lock at BEGIN, one writer of the process at a time, in arrival order."""
        async with self.writers, self.connection() as conn:
            await conn.execute("BEGIN IMMEDIATE")
            try:
                cursor = await conn.execute(sql, params)
                rows = list(await cursor.fetchall())
                records = audit([r["id"] for r in rows])
                if records:
                    await conn.executemany(
                        f"INSERT INTO audit_events ({AUDIT_COLUMNS}) "
                        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                        [tuple(_sqlite_value(v) for v in r) for r in records],
                    )
                await conn.execute("COMMIT")
            except BaseException:
                await conn.execute("ROLLBACK")
                raise
        return rows

    async def one(self, candidate_id: uuid.UUID, structure_id: Any, audit: Any) -> Any:
        rows = await self._in_transaction(
            f"SELECT {COLUMNS} FROM candidates WHERE id = ? AND structure_id = ?",
            (candidate_id.hex, _sqlite_value(structure_id)),
            audit,
        )
        return rows[0] if rows else None

    async def page(self, structure_id: Any, limit: int, audit: Any) -> list[Any]:
        def first(ids: list[Any]) -> Any:
            return audit(ids[:limit])

        return await self._in_transaction(
            f"SELECT {COLUMNS} FROM candidates WHERE structure_id = ? ORDER BY id LIMIT ?",
            (_sqlite_value(structure_id), limit + 1),
            first,
        )

    async def bare_one(self, candidate_id: uuid.UUID) -> Any:
        async with self.connection() as conn:
            cursor = await conn.execute(
                f"SELECT {COLUMNS} FROM candidates WHERE id = ?", (candidate_id.hex,)
            )
            return await cursor.fetchone()

    async def bare_page(self, limit: int) -> list[Any]:
        async with self.connection() as conn:
            cursor = await conn.execute(
                f"SELECT {COLUMNS} FROM candidates ORDER BY id LIMIT ?", (limit + 1,)
            )
            return list(await cursor.fetchall())


def sqlite_row(row: Any) -> dict[str, Any]:
    """SQLite answers text: give the values the types asyncpg would."""
    out = dict(row)
    for name in ("id", "structure_id", "referrer_id"):
        if out[name] is not None:
            out[name] = str(uuid.UUID(out[name]))
    for name in ("created_at", "updated_at", "consent_given_at", "phase_changed_at"):
        if out[name] is not None:
            out[name] = dt.datetime.fromisoformat(out[name]).replace(tzinfo=dt.UTC)
    for name in ("birth_date", "available_from"):
        if out[name] is not None:
            out[name] = dt.date.fromisoformat(out[name])
    return out


DB: Any = Sqlite() if IS_SQLITE else Postgres()
ROW: Callable[[Any], Any] = sqlite_row if IS_SQLITE else (lambda r: r)


def encode_cursor(last_id: Any) -> str:
    raw = uuid.UUID(str(last_id)).bytes
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


async def authenticated(request: Request) -> tuple[dict[str, Any], str]:
    claims = claims_of(request)
    sub = str(claims["sub"])
    client = check_client(claims, await CLIENTS.get(sub, DB.load_client))
    return client, sub


def unauthorized() -> Response:
    return JSONResponse({"status": 401}, status_code=401)


async def get_one(request: Request) -> Response:
    try:
        candidate_id = uuid.UUID(request.path_params["candidate_id"])
    except ValueError:
        return JSONResponse({"status": 422}, status_code=422)
    if VARIANT == "bare":
        row = await DB.bare_one(candidate_id)
    else:
        try:
            client, sub = await authenticated(request)
        except Unauthorized:
            return unauthorized()

        def audit(ids: list[Any]) -> Any:
            return audit_rows(client, sub, ids, "read", request)

        row = await DB.one(candidate_id, client["structure_id"], audit)
    if row is None:
        return JSONResponse({"status": 404}, status_code=404)
    doc = present(ROW(row))
    return JSONResponse(doc, headers={"ETag": f'"{doc["version"]}"'})


async def get_page(request: Request) -> Response:
    limit = int(request.query_params.get("limit", "50"))
    if VARIANT == "bare":
        rows = await DB.bare_page(limit)
    else:
        try:
            client, sub = await authenticated(request)
        except Unauthorized:
            return unauthorized()

        def audit(ids: list[Any]) -> Any:
            return audit_rows(client, sub, ids, "list", request)

        rows = await DB.page(client["structure_id"], limit, audit)
    items = [present(ROW(r)) for r in rows[:limit]]
    cursor = encode_cursor(items[-1]["id"]) if len(rows) > limit else None
    return JSONResponse({"items": items, "next_cursor": cursor})


@asynccontextmanager
async def lifespan(_app: Starlette) -> AsyncIterator[None]:
    await DB.start()
    try:
        yield
    finally:
        await DB.stop()


app = Starlette(
    routes=[
        Route("/v1/candidates", get_page),
        Route("/v1/candidates/{candidate_id}", get_one),
    ],
    lifespan=lifespan,
)
