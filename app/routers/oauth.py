from __future__ import annotations

import base64
import binascii
from typing import Annotated
from urllib.parse import unquote

from fastapi import APIRouter, Form, Request, Response

from app.ratelimit import RateLimiter
from app.routers.deps import ApiRoute, Session, client_address
from app.schemas.access import TokenRequest, TokenResponse
from app.schemas.problems import problem_responses
from app.services.auth import (
    Authenticator,
    InvalidClient,
    UnknownClient,
    UnsupportedGrantType,
)

router = APIRouter(prefix="/v1/oauth", tags=["oauth"], route_class=ApiRoute)


def _basic_credentials(request: Request) -> tuple[str, str] | None:
    scheme, _, value = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(value, validate=True).decode()
    except (binascii.Error, ValueError):  # UnicodeDecodeError is a ValueError
        raise InvalidClient() from None
    client_id, sep, secret = decoded.partition(":")
    if not sep:
        raise InvalidClient()
    # RFC 6749 2.3.1: both parts are form-urlencoded before going into Basic.
    return unquote(client_id), unquote(secret)


@router.post(
    "/token",
    name="oauth_token",
    summary="Get an access token (OAuth2 client credentials)",
    description="Send `grant_type=client_credentials` with the client's id and secret, "
    "either as form fields or with HTTP Basic authentication. The token is a JWT valid "
    "for `expires_in` seconds; send it as `Authorization: Bearer <token>`. Failed "
    "attempts are limited per client id and address (429 with `Retry-After`): an address "
    "that failed too often for a client waits, other addresses and clients do not.",
    responses=problem_responses(400, 401, 422, 429),
)
async def token(
    request: Request,
    session: Session,
    response: Response,
    form: Annotated[TokenRequest, Form()],
) -> TokenResponse:
    limiter: RateLimiter = request.app.state.rate_limiter
    address = client_address(request)
    if form.grant_type != "client_credentials":
        raise UnsupportedGrantType()
    try:
        credentials = _basic_credentials(request) or (form.client_id, form.client_secret)
    except InvalidClient:
        await limiter.hit_anonymous(address)
        raise
    client_id, client_secret = credentials
    if not client_id or not client_secret:
        await limiter.hit_anonymous(address)
        raise InvalidClient()
    await limiter.check_token_attempt(client_id, address)
    authenticator: Authenticator = request.app.state.authenticator
    try:
        issued = await authenticator.client_credentials(
            session, client_id, client_secret, form.scope
        )
    except UnknownClient:
        await limiter.hit_anonymous(address)
        raise
    except InvalidClient:
        await limiter.token_failed(client_id, address)
        raise
    response.headers["Cache-Control"] = "no-store"
    return TokenResponse(
        access_token=issued.access_token, expires_in=issued.expires_in, scope=issued.scope
    )
