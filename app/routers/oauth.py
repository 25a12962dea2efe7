from __future__ import annotations

import base64
import binascii
import json
from typing import Any
from urllib.parse import unquote

from fastapi import APIRouter, Request, Response
from pydantic import ValidationError

from app.errors import ValidationFailed, field_error, pydantic_errors
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


_FORM = "application/x-www-form-urlencoded"
_JSON = "application/json"
_HOW = (
    "Send grant_type=client_credentials with client_id and client_secret as a form "
    "(application/x-www-form-urlencoded, as RFC 6749 asks) or as a JSON object with the "
    "same fields (application/json), or the credentials with HTTP Basic authentication."
)


# Documented as the form RFC 6749 defines. A JSON object with the same fields is accepted
# too (what generated clients send by default), but one content type is documented:
# openapi-python-client 0.29 generates code that does not import for a body with two.
_REQUEST_BODY = {
    "required": True,
    "content": {_FORM: {"schema": {"$ref": "#/components/schemas/TokenRequest"}}},
}


def document_token_request(spec: dict[str, Any]) -> None:
    """The body is read by hand (a form or JSON): its schema joins the components here."""
    schemas = spec.setdefault("components", {}).setdefault("schemas", {})
    schemas["TokenRequest"] = TokenRequest.model_json_schema()


async def _token_request(request: Request) -> TokenRequest:
    """The form, or a JSON object with the same fields (what a generated client sends)."""
    media = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    data: Any
    if media == _JSON:
        try:
            data = json.loads(await request.body())
        except ValueError:
            data = None
        if not isinstance(data, dict):
            raise ValidationFailed([field_error(["body"], "a JSON object", "json_invalid")], _HOW)
    elif media in (_FORM, "multipart/form-data", ""):
        data = dict((await request.form()).items())
    else:
        raise ValidationFailed(
            [field_error(["header", "content-type"], f"{_FORM} or {_JSON}", "media_type")], _HOW
        )
    try:
        return TokenRequest.model_validate(data)
    except ValidationError as exc:
        raise ValidationFailed(pydantic_errors(exc.errors(), ("body",)), _HOW) from None


@router.post(
    "/token",
    name="oauth_token",
    summary="Get an access token (OAuth2 client credentials)",
    description=_HOW + " The token is a JWT valid for `expires_in` seconds; send it as "
    "`Authorization: Bearer <token>`. Failed attempts are limited per client id and "
    "address (429 with `Retry-After`): an address that failed too often for a client "
    "waits, other addresses and clients do not.",
    responses=problem_responses(400, 401, 413, 422, 429),
    openapi_extra={"requestBody": _REQUEST_BODY},
)
async def token(request: Request, session: Session, response: Response) -> TokenResponse:
    limiter: RateLimiter = request.app.state.rate_limiter
    address = client_address(request)
    form = await _token_request(request)
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
