from __future__ import annotations

import base64
import binascii
from typing import Annotated
from urllib.parse import unquote

from fastapi import APIRouter, Form, Request, Response

from app.routers.deps import ApiRoute, Session, client_address
from app.schemas.access import TokenRequest, TokenResponse
from app.schemas.problems import problem_responses
from app.services.auth import Authenticator, InvalidClient, UnsupportedGrantType

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
    "for `expires_in` seconds; send it as `Authorization: Bearer <token>`.",
    responses=problem_responses(400, 401, 422),
)
async def token(
    request: Request,
    session: Session,
    response: Response,
    form: Annotated[TokenRequest, Form()],
) -> TokenResponse:
    request.app.state.rate_limiter.hit_anonymous(f"token:{client_address(request)}")
    if form.grant_type != "client_credentials":
        raise UnsupportedGrantType()
    client_id, client_secret = _basic_credentials(request) or (form.client_id, form.client_secret)
    if not client_id or not client_secret:
        raise InvalidClient()
    authenticator: Authenticator = request.app.state.authenticator
    issued = await authenticator.client_credentials(session, client_id, client_secret, form.scope)
    response.headers["Cache-Control"] = "no-store"
    return TokenResponse(
        access_token=issued.access_token, expires_in=issued.expires_in, scope=issued.scope
    )
