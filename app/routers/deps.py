"""What every router shares: the per-request transaction, the caller, preconditions."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import replace
from typing import Annotated, Any

from fastapi import Depends, Header, Request, Response
from fastapi.datastructures import DefaultPlaceholder
from fastapi.routing import APIRoute
from pydantic_core import from_json
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from starlette.convertors import Convertor, register_url_convertor

from app import db
from app.config import Settings
from app.errors import (
    Forbidden,
    Unauthorized,
    ValidationFailed,
    field_error,
    unreadable_body,
    wrong_media_type,
)
from app.ratelimit import RateLimiter
from app.routers.idempotency import IDEMPOTENCY_HEADER, run_idempotent
from app.services.auth import Actor, Authenticator, MissingToken
from app.services.permissions import OPERATIONS, PUBLIC_OPERATIONS, Operation

CLIENTS_SCOPE = "clients:admin"


# Operations that only read although they are not GET: on SQLite they take no write lock.
READ_ONLY_OPERATIONS = frozenset({"oauth_token"})
_READ_METHODS = frozenset({"GET", "HEAD"})


def operation_id(route: APIRoute) -> str:
    """A route's operationId is its name (`candidates_get`), the permission matrix's
    key; generated clients name their methods after it."""
    return route.name


class ApiRoute(APIRoute):
    """Every request runs in one session, committed before the response is sent.

    A dependency with `yield` would commit after the response on current FastAPI,
    so a failed commit could follow a 2xx already sent. Here the commit happens
    between building the response and returning it, and any error rolls back.
    Before the endpoint runs, the caller is authenticated, rate-limited and checked
    against the permission matrix; POSTs honour Idempotency-Key.

    On SQLite, reads (GET, HEAD, the token endpoint) run in a DEFERRED transaction and
    never wait for the write lock; writes take it at BEGIN (IMMEDIATE), one request at a
    time per process in arrival order (`SqliteWriters`), so they queue instead of polling
    the busy handler. A read that journals writes too: if its journal row cannot take the
    lock (another writer committed since its read began), it runs again as a writer,
    and later requests of that route start as writers.
    """

    def __init__(self, path: str, endpoint: Callable[..., Any], **kwargs: Any) -> None:
        # Set here, not by the app: its routes join the app's list without an include
        # (app/main.py), so the app's setting would not reach them.
        kwargs["generate_unique_id_function"] = operation_id
        if kwargs.get("status_code") == 204 and isinstance(
            kwargs.get("response_class"), DefaultPlaceholder | None
        ):
            # No content, so no Content-Type (FastAPI's default class would name JSON).
            kwargs["response_class"] = Response
        super().__init__(path, endpoint, **kwargs)

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()
        name = self.name
        if name in PUBLIC_OPERATIONS:
            operation = None
        elif name in OPERATIONS:
            operation = OPERATIONS[name]
        else:
            raise RuntimeError(f"route {self.name} has no entry in the permission matrix")
        reads = self.name in READ_ONLY_OPERATIONS or (self.methods or set()) <= _READ_METHODS
        # A change to an API client reaches this process's token checks at once.
        changes_clients = operation is not None and operation.scope == CLIENTS_SCOPE and not reads
        journals = [False]  # learnt: this read route writes its journal (SQLite only)
        one_value: list[frozenset[str]] = []  # read from the spec on first need

        def one_value_params(request: Request) -> frozenset[str]:
            if not one_value:
                one_value.append(_one_value_query_params(request.app.openapi(), self))
            return one_value[0]

        async def run(request: Request, reads_only: bool) -> Response:
            sessionmaker: async_sessionmaker[AsyncSession] = request.app.state.sessionmaker
            with db.reads_only(reads_only):
                session = sessionmaker()
                try:
                    request.state.session = session
                    try:
                        if operation is None:
                            response = await handler(request)
                        else:
                            actor = await _admit(request, session, name, operation)
                            request.state.actor = actor
                            query = request.query_params
                            if len(query.multi_items()) != len(query):  # a name repeated
                                _refuse_repeated(request, one_value_params(request))
                            if request.method in _BODY_METHODS:  # no coroutine for reads
                                await _read_json(request)
                            key = request.headers.get(IDEMPOTENCY_HEADER)
                            if request.method == "POST" and key is not None:
                                settings: Settings = request.app.state.settings
                                response = await run_idempotent(
                                    request, session, actor, key, settings, handler
                                )
                            else:
                                response = await handler(request)
                        if session.in_transaction() or _pending(session):
                            await session.commit()
                    except BaseException:
                        await session.rollback()
                        raise
                finally:
                    # Closed as `async with` closes it (in a task of its own, which a
                    # cancellation cannot cut short), unless it holds nothing: no
                    # transaction, so no connection, and no object. The hot reads run on
                    # the pool's connection and a known token reads nothing; closing an
                    # untouched session costs a task and a greenlet, 5% of such a read.
                    if session.in_transaction() or session.identity_map or _pending(session):
                        await session.__aexit__(None, None, None)
            if changes_clients:
                request.app.state.authenticator.clients.forget()
            return response

        async def api_handler(request: Request) -> Response:
            writers: db.SqliteWriters | None = request.app.state.sqlite_writers
            if writers is None:
                return await run(request, reads_only=False)
            if reads and not journals[0]:
                try:
                    return await run(request, reads_only=True)
                except DBAPIError as exc:
                    if not db.is_lost_upgrade(exc):
                        raise
                    journals[0] = True
            async with writers.turn():
                return await run(request, reads_only=False)

        return api_handler


_BODY_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def _one_value_query_params(spec: dict[str, Any], route: APIRoute) -> frozenset[str]:
    """The query parameters of this route that are not lists, as the spec declares them."""
    names: set[str] = set()
    for method in route.methods or ():
        operation = spec.get("paths", {}).get(route.path_format, {}).get(method.lower(), {})
        for parameter in operation.get("parameters", []):
            schema = parameter.get("schema", {})
            variants = [schema, *schema.get("anyOf", [])]
            if parameter.get("in") == "query" and not any(
                v.get("type") == "array" for v in variants
            ):
                names.add(parameter["name"])
    return frozenset(names)


def _refuse_repeated(request: Request, one_value: frozenset[str]) -> None:
    """FastAPI keeps the last of a repeated parameter: `after=1&after=2` would read the
    feed after 2 and skip what a partner's URL builder meant to ask for. A parameter that
    takes one value, given twice, answers 422 instead."""
    params = request.query_params
    repeated = sorted(name for name in one_value if len(params.getlist(name)) > 1)
    if repeated:
        raise ValidationFailed(
            [
                field_error(["query", name], "give this parameter once", "repeated")
                for name in repeated
            ]
        )


async def _read_json(request: Request) -> None:
    """A JSON body is UTF-8 JSON (RFC 8259), nothing else: the standard library's parser,
    which FastAPI would use, also takes UTF-16 and UTF-32 and the tokens NaN and
    Infinity. Parsed here, strictly, and left where FastAPI looks for it (Starlette's
    cached `Request._json`), so the body is parsed once; anything else answers 422
    `json_invalid` on `body`, whatever went wrong."""
    media_type = request.headers.get("content-type", "").partition(";")[0].strip().lower()
    body = await request.body()
    if not body:
        return
    if media_type != "application/json" and not (
        media_type.startswith("application/") and media_type.endswith("+json")
    ):
        # FastAPI would hand the raw bytes to the model and answer "Input should be a
        # valid dictionary", which sends the caller looking in the wrong place (`curl -d`
        # sends a form type, some clients none at all).
        raise wrong_media_type()
    try:
        request._json = from_json(body, allow_inf_nan=False)
    except ValueError:
        raise unreadable_body() from None


def _pending(session: AsyncSession) -> bool:
    return bool(session.new or session.dirty or session.deleted)


class RecordId(Convertor[str]):
    """A record's id in a path: any segment but a collection's own action (`bulk`), so
    that /v1/candidates/bulk is a path of its own, whose undeclared methods answer 405
    instead of reaching GET /v1/candidates/{candidate_id} with a malformed id (422)."""

    regex = "(?!bulk$)[^/]+"

    def convert(self, value: str) -> str:
        return value

    def to_string(self, value: str) -> str:
        return value


register_url_convertor("record_id", RecordId())


async def _admit(request: Request, session: AsyncSession, name: str, operation: Operation) -> Actor:
    """401 without a valid token, 429 over the rate, 403 for a role or scope not allowed."""
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise MissingToken()
    authenticator: Authenticator = request.app.state.authenticator
    limiter: RateLimiter = request.app.state.rate_limiter
    request_id = getattr(request.state, "request_id", None)
    try:
        actor = await authenticator.authenticate(session, token.strip(), request_id)
    except Unauthorized:
        # Guessing tokens costs the guesser: failures are limited per address.
        await limiter.hit_anonymous(client_address(request))
        raise
    if not getattr(request.state, "rate_counted", False):
        request.state.rate_counted = True  # a request run again is counted once
        await limiter.hit(actor.id_key, actor.role)
    if actor.role not in operation.grants:
        raise Forbidden(f"The {actor.role.value} role may not use this operation.")
    if operation.scope not in actor.scopes:
        raise Forbidden(
            f"This token lacks the scope {operation.scope}.", required_scope=operation.scope
        )
    return replace(actor, operation=name)


def client_address(request: Request) -> str:
    """The caller's address: the peer's, or, behind trusted proxies, the right-most
    X-Forwarded-For entry that is not one of them (the left part is the caller's say)."""
    peer = request.client.host if request.client else "unknown"
    settings: Settings = request.app.state.settings
    return forwarded_client(
        peer, request.headers.getlist("x-forwarded-for"), settings.trusted_proxies
    )


Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def forwarded_client(peer: str, forwarded: Sequence[str], trusted: Sequence[Network]) -> str:
    if not trusted or not _is_trusted(peer, trusted):
        return peer
    hops = [hop.strip() for header in forwarded for hop in header.split(",") if hop.strip()]
    for hop in reversed(hops):
        if not _is_trusted(hop, trusted):
            return hop
    return hops[0] if hops else peer


def _is_trusted(address: str, trusted: Sequence[Network]) -> bool:
    try:
        ip = ipaddress.ip_address(address.strip("[]"))
    except ValueError:
        return False
    return any(ip in network for network in trusted)


# Dependencies are `async def`: a plain `def` would be sent to the thread pool.
async def get_session(request: Request) -> AsyncSession:
    session: AsyncSession = request.state.session
    return session


async def get_actor(request: Request) -> Actor:
    actor: Actor = request.state.actor
    return actor


async def get_settings_dep(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


Session = Annotated[AsyncSession, Depends(get_session)]
CurrentActor = Annotated[Actor, Depends(get_actor)]
AppSettings = Annotated[Settings, Depends(get_settings_dep)]

# If-Match uses strong comparison (RFC 9110 13.1.1): a tag matches only as the exact
# string we send, so weak tags, leading zeros ("06") and numbers longer than a version
# can be (they would not even convert) match nothing.
_ETAG = re.compile(r'^"(0|[1-9][0-9]{0,18})"$')


def etag(version: int, variant: str | None = None) -> str:
    """`"3"`; a partial representation's tag names it (`"reduced-3"`): tags of two
    representations never collide, and If-Match accepts only the full one's."""
    return f'"{version}"' if variant is None else f'"{variant}-{version}"'


async def expected_versions(
    if_match: Annotated[
        str | None,
        Header(description='Send the ETag you read (e.g. `"3"`); a stale one gets 412.'),
    ] = None,
) -> frozenset[int] | None:
    """The versions an If-Match header accepts; None when there is no condition.

    `*` matches any current version. A tag that is not one of ours matches nothing.
    """
    if if_match is None or if_match.strip() == "*":
        return None
    versions = set()
    for tag in if_match.split(","):
        match = _ETAG.match(tag.strip())
        if match:
            versions.add(int(match.group(1)))
    return frozenset(versions)


IfMatch = Annotated[frozenset[int] | None, Depends(expected_versions)]


def set_etag(response: Response, version: int, variant: str | None = None) -> None:
    response.headers["ETag"] = etag(version, variant)
