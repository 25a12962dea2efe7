"""What every router shares: the per-request session, preconditions and headers."""

from __future__ import annotations

import re
from collections.abc import Callable, Coroutine
from typing import Annotated, Any

from fastapi import Depends, Header, Request, Response
from fastapi.routing import APIRoute
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.config import Settings


class TransactionalRoute(APIRoute):
    """Runs each request in one session, committed before the response is sent.

    A dependency with `yield` would commit after the response on current FastAPI,
    so a failed commit could follow a 2xx already sent. Here the commit happens
    between building the response and returning it, and any error rolls back.
    """

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def transactional_handler(request: Request) -> Response:
            sessionmaker: async_sessionmaker[AsyncSession] = request.app.state.sessionmaker
            async with sessionmaker() as session:
                request.state.session = session
                try:
                    response = await handler(request)
                    await session.commit()
                except BaseException:
                    await session.rollback()
                    raise
            return response

        return transactional_handler


def get_session(request: Request) -> AsyncSession:
    session: AsyncSession = request.state.session
    return session


def get_settings_dep(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


Session = Annotated[AsyncSession, Depends(get_session)]
AppSettings = Annotated[Settings, Depends(get_settings_dep)]

_ETAG = re.compile(r'^(?:W/)?"(\d+)"$')


def etag(version: int) -> str:
    return f'"{version}"'


def expected_versions(
    if_match: Annotated[
        str | None,
        Header(
            description='Send the ETag you read (e.g. `"3"`); a stale one gets 412.',
        ),
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


def set_etag(response: Response, version: int) -> None:
    response.headers["ETag"] = etag(version)
