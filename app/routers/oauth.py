from __future__ import annotations

import base64
import binascii
from typing import Annotated
from urllib.parse import unquote

from fastapi import APIRouter, Form, Request, Response

from app.routers.deps import ApiRoute, Session
from app.schemas.access import TokenResponse
from app.schemas.problems import problem_responses
from app.services.auth import Authenticator, InvalidClient, UnsupportedGrantType

router = APIRouter(prefix="/v1/oauth", tags=["oauth"], route_class=ApiRoute)


def _basic_credentials(request: Request) -> tuple[str, str] | None:
    scheme, _, value = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(value, validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
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
    "for `expires_in` seconds; send it as `Authorization: Bearer <token>`.",
    responses=problem_responses(400, 401, 422),
)
async def token(
    request: Request,
    session: Session,
    response: Response,
    grant_type: Annotated[str, Form(examples=["client_credentials"])],
    client_id: Annotated[str | None, Form(max_length=64)] = None,
    client_secret: Annotated[str | None, Form(max_length=256)] = None,
    scope: Annotated[str | None, Form(max_length=1000, examples=["candidates:read"])] = None,
) -> TokenResponse:
    if grant_type != "client_credentials":
        raise UnsupportedGrantType()
    basic = _basic_credentials(request)
    if basic is not None:
        client_id, client_secret = basic
    if not client_id or not client_secret:
        raise InvalidClient()
    authenticator: Authenticator = request.app.state.authenticator
    issued = await authenticator.client_credentials(session, client_id, client_secret, scope)
    response.headers["Cache-Control"] = "no-store"
    return TokenResponse(
        access_token=issued.access_token, expires_in=issued.expires_in, scope=issued.scope
    )
