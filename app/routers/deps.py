"""What every router shares: the per-request transaction, the caller, preconditions."""

from __future__ import annotations

import re
from collections.abc import Callable, Coroutine
from dataclasses import replace
from typing import Annotated, Any

from fastapi import Depends, Header, Request, Response
from fastapi.routing import APIRoute
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from starlette.convertors import Convertor, register_url_convertor

from app.config import Settings
from app.errors import Forbidden, Unauthorized
from app.routers.idempotency import IDEMPOTENCY_HEADER, run_idempotent
from app.services.auth import Actor, Authenticator, MissingToken
from app.services.permissions import OPERATIONS, PUBLIC_OPERATIONS, Operation


class ApiRoute(APIRoute):
    """Every request runs in one session, committed before the response is sent.

    A dependency with `yield` would commit after the response on current FastAPI,
    so a failed commit could follow a 2xx already sent. Here the commit happens
    between building the response and returning it, and any error rolls back.
    Before the endpoint runs, the caller is authenticated, rate-limited and checked
    against the permission matrix; POSTs honour Idempotency-Key.
    """

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()
        name = self.name
        if name in PUBLIC_OPERATIONS:
            operation = None
        elif name in OPERATIONS:
            operation = OPERATIONS[name]
        else:
            raise RuntimeError(f"route {self.name} has no entry in the permission matrix")

        async def api_handler(request: Request) -> Response:
            sessionmaker: async_sessionmaker[AsyncSession] = request.app.state.sessionmaker
            async with sessionmaker() as session:
                request.state.session = session
                try:
                    if operation is None:
                        response = await handler(request)
                    else:
                        actor = await _admit(request, session, name, operation)
                        request.state.actor = actor
                        key = request.headers.get(IDEMPOTENCY_HEADER)
                        if request.method == "POST" and key is not None:
                            settings: Settings = request.app.state.settings
                            response = await run_idempotent(
                                request, session, actor.id, key, settings, handler
                            )
                        else:
                            response = await handler(request)
                    await session.commit()
                except BaseException:
                    await session.rollback()
                    raise
            return response

        return api_handler


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
    request_id = getattr(request.state, "request_id", None)
    try:
        actor = await authenticator.authenticate(session, token.strip(), request_id)
    except Unauthorized:
        # Guessing tokens costs the guesser: failures are limited per address.
        request.app.state.rate_limiter.hit_anonymous(client_address(request))
        raise
    request.app.state.rate_limiter.hit(actor.id, actor.role)
    if actor.role not in operation.grants:
        raise Forbidden(f"The {actor.role.value} role may not use this operation.")
    if operation.scope not in actor.scopes:
        raise Forbidden(
            f"This token lacks the scope {operation.scope}.", required_scope=operation.scope
        )
    return replace(actor, operation=name)


def client_address(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def get_session(request: Request) -> AsyncSession:
    session: AsyncSession = request.state.session
    return session


def get_actor(request: Request) -> Actor:
    actor: Actor = request.state.actor
    return actor


def get_settings_dep(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


Session = Annotated[AsyncSession, Depends(get_session)]
CurrentActor = Annotated[Actor, Depends(get_actor)]
AppSettings = Annotated[Settings, Depends(get_settings_dep)]

# If-Match uses strong comparison (RFC 9110 13.1.1): weak tags match nothing.
_ETAG = re.compile(r'^"(\d+)"$')


def etag(version: int, variant: str | None = None) -> str:
    """`"3"`; a partial representation's tag names it (`"reduced-3"`): tags of two
    representations never collide, and If-Match accepts only the full one's."""
    return f'"{version}"' if variant is None else f'"{variant}-{version}"'


def expected_versions(
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
