"""Who is calling: API clients (OAuth2 client credentials) and OIDC users.

Secrets are random and long, so a SHA-256 digest is enough to store them (no need for
a slow password hash); they are compared in constant time.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import os
import secrets
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import jwt
from sqlalchemy.ext.asyncio import AsyncSession

from app.config import PROJECT_ROOT, Settings
from app.domain.enums import ROLE_STRUCTURE_KIND, ActorKind, Role
from app.domain.territory import NATIONAL, Territory, parse_territory
from app.errors import BadRequest, Unauthorized
from app.models import ApiClient, Structure
from app.models.base import utcnow
from app.services.permissions import OPERATIONS, default_scopes

SECRET_BYTES = 32


@dataclass(frozen=True, slots=True)
class Actor:
    """The caller of one request, as services see it."""

    kind: ActorKind
    id: str
    role: Role
    structure_id: uuid.UUID | None
    scopes: frozenset[str]
    request_id: str | None = None
    # The permission table's name of the operation being served: the audit journal
    # records it. None for commands run on the server.
    operation: str | None = None
    # Observers: the territory of the figures they read (app.domain.territory).
    territory: Territory | None = None


SYSTEM_ACTOR = Actor(
    ActorKind.SYSTEM,
    "system",
    Role.ADMIN,
    None,
    frozenset(op.scope for op in OPERATIONS.values()),
)


class InvalidToken(Unauthorized):
    slug, title = "invalid-token", "Invalid or expired access token"

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.headers = {
            "WWW-Authenticate": f'Bearer realm="tremplin", error="invalid_token", '
            f'error_description="{detail}"'
        }


class MissingToken(Unauthorized):
    slug, title = "unauthorized", "Authentication required"

    def __init__(self) -> None:
        super().__init__("Send an access token: Authorization: Bearer <token>.")
        self.headers = {"WWW-Authenticate": 'Bearer realm="tremplin"'}


class InvalidClient(Unauthorized):
    """RFC 6749 `invalid_client`, as problem+json with the OAuth `error` member."""

    slug, title = "invalid-client", "Client authentication failed"

    def __init__(self) -> None:
        super().__init__("Unknown client, wrong secret, or a revoked or expired client.")
        self.extensions["error"] = "invalid_client"
        self.headers = {"WWW-Authenticate": 'Basic realm="tremplin"'}


class InvalidScope(BadRequest):
    slug, title = "invalid-scope", "Requested scope not granted"

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.extensions["error"] = "invalid_scope"


class UnsupportedGrantType(BadRequest):
    slug, title = "unsupported-grant-type", "Unsupported grant type"

    def __init__(self) -> None:
        super().__init__("Only grant_type=client_credentials is supported.")
        self.extensions["error"] = "unsupported_grant_type"


def new_secret() -> str:
    return secrets.token_urlsafe(SECRET_BYTES)


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def secret_matches(secret: str, digest: str) -> bool:
    return hmac.compare_digest(hash_secret(secret), digest)


def load_signing_key(settings: Settings) -> bytes:
    """The HS256 key: from settings, or generated once under var/ outside production."""
    if settings.jwt_signing_key is not None:
        return settings.jwt_signing_key.get_secret_value().encode()
    if settings.is_production:
        raise RuntimeError("JWT_SIGNING_KEY must be set in production")
    path = PROJECT_ROOT / "var" / "jwt-signing.key"
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_text().strip().encode()
    with os.fdopen(fd, "w") as handle:
        handle.write(secrets.token_hex(64))
    return path.read_text().strip().encode()


@dataclass(frozen=True, slots=True)
class IssuedToken:
    access_token: str
    expires_in: int
    scope: str


class OidcKeys:
    """The provider's signing keys, from a JWKS file or URL (fetched and cached)."""

    def __init__(self, settings: Settings) -> None:
        self._jwks: jwt.PyJWKSet | None = None
        self._client: jwt.PyJWKClient | None = None
        if settings.oidc_jwks_file is not None:
            self._jwks = jwt.PyJWKSet.from_json(Path(settings.oidc_jwks_file).read_text())
        elif settings.oidc_jwks_url:
            self._client = jwt.PyJWKClient(settings.oidc_jwks_url, cache_keys=True, lifespan=300)

    async def key_for(self, token: str) -> jwt.PyJWK:
        if self._client is not None:
            # PyJWKClient fetches over urllib: keep it off the event loop.
            return await asyncio.to_thread(self._client.get_signing_key_from_jwt, token)
        assert self._jwks is not None
        kid = jwt.get_unverified_header(token).get("kid")
        for key in self._jwks.keys:
            if key.key_id == kid:
                return key
        raise jwt.InvalidTokenError("unknown signing key")


class Authenticator:
    """Issues our access tokens and verifies every bearer token a request carries."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._key = load_signing_key(settings)
        self._oidc = OidcKeys(settings) if settings.oidc_enabled else None

    def issue(self, client: ApiClient, scopes: frozenset[str]) -> IssuedToken:
        now = datetime.now(UTC)
        ttl = self.settings.token_ttl_s
        scope = " ".join(sorted(scopes))
        claims = {
            "iss": self.settings.token_issuer,
            "aud": self.settings.token_audience,
            "sub": str(client.id),
            "iat": now,
            "nbf": now,
            "exp": now + timedelta(seconds=ttl),
            "jti": uuid.uuid4().hex,
            "role": client.role.value,
            "scope": scope,
            "cv": client.credential_version,
        }
        token = jwt.encode(claims, self._key, algorithm="HS256")
        return IssuedToken(access_token=token, expires_in=ttl, scope=scope)

    async def client_credentials(
        self,
        session: AsyncSession,
        client_id: str,
        client_secret: str,
        requested_scope: str | None,
    ) -> IssuedToken:
        client = await _find_client(session, client_id)
        digest = client.secret_hash if client is not None else "0" * 64
        if not secret_matches(client_secret, digest) or client is None or not _usable(client):
            raise InvalidClient()
        granted = frozenset(client.scopes)
        if requested_scope:
            requested = frozenset(requested_scope.split())
            if not requested <= granted:
                raise InvalidScope("Ask only for scopes granted to this client.")
            granted = requested
        return self.issue(client, granted)

    async def authenticate(
        self, session: AsyncSession, token: str, request_id: str | None
    ) -> Actor:
        try:
            issuer = jwt.decode(token, options={"verify_signature": False}).get("iss")
        except jwt.PyJWTError:
            raise InvalidToken("malformed token") from None
        if issuer == self.settings.token_issuer:
            return await self._client_actor(session, token, request_id)
        if self._oidc is not None and issuer == self.settings.oidc_issuer:
            return await self._user_actor(session, token, request_id)
        raise InvalidToken("unknown issuer")

    async def _client_actor(
        self, session: AsyncSession, token: str, request_id: str | None
    ) -> Actor:
        claims = _decode(
            token,
            self._key,
            algorithms=["HS256"],
            audience=self.settings.token_audience,
            issuer=self.settings.token_issuer,
        )
        client = await _find_client(session, str(claims["sub"]))
        if client is None or not _usable(client):
            raise InvalidToken("client revoked or expired")
        if claims.get("cv") != client.credential_version:
            raise InvalidToken("client secret rotated; get a new token")
        scopes = frozenset(str(claims.get("scope", "")).split()) & frozenset(client.scopes)
        return Actor(
            ActorKind.CLIENT,
            str(client.id),
            client.role,
            client.structure_id,
            scopes,
            request_id,
            territory=parse_territory(client.territory) if client.territory else None,
        )

    async def _user_actor(self, session: AsyncSession, token: str, request_id: str | None) -> Actor:
        assert self._oidc is not None
        try:
            key = await self._oidc.key_for(token)
        except (jwt.PyJWTError, ValueError):
            raise InvalidToken("unknown signing key") from None
        settings = self.settings
        # The key decides the algorithm, not the token's header (no algorithm confusion).
        if key.algorithm_name not in settings.oidc_algorithms:
            raise InvalidToken("signing algorithm not accepted")
        claims = _decode(
            token,
            key.key,
            algorithms=[key.algorithm_name],
            audience=settings.oidc_audience,
            issuer=settings.oidc_issuer,
        )
        try:
            role = Role(str(claims.get(settings.oidc_role_claim)))
        except ValueError:
            raise InvalidToken("no Tremplin role in the token") from None
        structure_id = await _claimed_structure(
            session, claims.get(settings.oidc_structure_claim), role
        )
        territory = None
        if role is Role.OBSERVER:
            territory = _claimed_territory(claims.get(settings.oidc_territory_claim))
        return Actor(
            ActorKind.USER,
            str(claims["sub"]),
            role,
            structure_id,
            default_scopes(role),
            request_id,
            territory=territory,
        )


def _decode(token: str, key: Any, **kwargs: Any) -> dict[str, Any]:
    try:
        claims: dict[str, Any] = jwt.decode(
            token, key, options={"require": ["exp", "iat", "iss", "aud", "sub"]}, **kwargs
        )
    except jwt.ExpiredSignatureError:
        raise InvalidToken("token expired") from None
    except jwt.InvalidAudienceError:
        raise InvalidToken("token not meant for this API") from None
    except jwt.InvalidIssuerError:
        raise InvalidToken("unknown issuer") from None
    except (jwt.PyJWTError, TypeError, ValueError):
        raise InvalidToken("invalid token") from None
    return claims


async def _claimed_structure(session: AsyncSession, raw: object, role: Role) -> uuid.UUID | None:
    expected_kind = ROLE_STRUCTURE_KIND[role]
    if raw is None:
        if expected_kind is not None:
            raise InvalidToken("the token names no structure for this role")
        return None
    try:
        structure_id = uuid.UUID(str(raw))
    except ValueError:
        raise InvalidToken("malformed structure claim") from None
    structure = await session.get(Structure, structure_id)
    if structure is None or (expected_kind is not None and structure.kind is not expected_kind):
        raise InvalidToken("the token's structure does not fit its role")
    return structure_id


def _claimed_territory(raw: object) -> Territory:
    """An observer user's territory claim; absent means national, as for API clients."""
    if raw is None:
        return NATIONAL
    try:
        return parse_territory(str(raw))
    except ValueError:
        raise InvalidToken("malformed territory claim") from None


async def _find_client(session: AsyncSession, client_id: str) -> ApiClient | None:
    try:
        return await session.get(ApiClient, uuid.UUID(client_id))
    except ValueError:
        return None


def _usable(client: ApiClient) -> bool:
    if client.revoked_at is not None:
        return False
    return client.expires_at is None or client.expires_at > utcnow()
