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
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import jwt
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.config import PROJECT_ROOT, Settings
from app.domain.enums import ROLE_STRUCTURE_KIND, ActorKind, Role
from app.domain.territory import NATIONAL, Territory, parse_territory
from app.errors import BadRequest, Unauthorized
from app.models import ApiClient, Structure
from app.models.base import utcnow
from app.services.permissions import OPERATIONS, default_scopes

SECRET_BYTES = 32
# Tokens whose signature this process has verified (each a few hundred bytes).
_MAX_VERIFIED_TOKENS = 20_000


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

    @property
    def id_key(self) -> str:
        """The caller's id with its kind: an API client and an OIDC user whose `sub`
        equals the client's id are two callers (rate budgets, idempotency keys)."""
        return f"{self.kind.value}:{self.id}"


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


class UnknownClient(InvalidClient):
    """No client has this id. Answered exactly as a wrong secret is; only rate limits
    tell the two apart (failures for unknown ids count per address)."""


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


@dataclass(frozen=True, slots=True)
class ClientState:
    """What a token is checked against: the client's row as last read."""

    role: Role
    structure_id: uuid.UUID | None
    scopes: frozenset[str]
    credential_version: int
    expires_at: datetime | None
    revoked: bool
    territory: Territory | None

    def usable(self) -> bool:
        return not self.revoked and (self.expires_at is None or self.expires_at > utcnow())


class ClientStates:
    """Each process re-reads a client's row at most every `ttl_s` seconds.

    This bounds how late a revocation, rotation or re-scoping made elsewhere (another
    process, replica or command) reaches this process; a change made through this
    process's API is seen at once (`forget`). Expiry is compared with the clock on every
    request, so it is exact.
    """

    _MAX_ENTRIES = 10_000

    def __init__(self, ttl_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.ttl_s = ttl_s
        self._clock = clock
        self._states: dict[uuid.UUID, tuple[float, ClientState]] = {}

    async def get(self, session: AsyncSession, client_id: uuid.UUID) -> ClientState | None:
        now = self._clock()
        cached = self._states.get(client_id)
        if cached is not None and now - cached[0] < self.ttl_s:
            return cached[1]
        # Core on the session's connection: no ORM machinery for a row of plain values.
        connection = await session.connection()
        row = (
            await connection.execute(
                select(
                    ApiClient.role,
                    ApiClient.structure_id,
                    ApiClient.scopes,
                    ApiClient.credential_version,
                    ApiClient.expires_at,
                    ApiClient.revoked_at,
                    ApiClient.territory,
                ).where(ApiClient.id == client_id)
            )
        ).one_or_none()
        if row is None:
            self._states.pop(client_id, None)
            return None
        state = ClientState(
            row.role,
            row.structure_id,
            frozenset(row.scopes),
            row.credential_version,
            row.expires_at,
            row.revoked_at is not None,
            parse_territory(row.territory) if row.territory else None,
        )
        if self.ttl_s > 0:
            if len(self._states) >= self._MAX_ENTRIES:
                self._states.clear()
            self._states[client_id] = (now, state)
        return state

    def forget(self) -> None:
        self._states.clear()


class Authenticator:
    """Issues our access tokens and verifies every bearer token a request carries."""

    # Our tokens are HS256; the OIDC provider's are asymmetric (OIDC_ALGORITHMS), so the
    # header's algorithm says which verification applies without decoding twice.
    _OWN_ALGORITHM = "HS256"

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._key = load_signing_key(settings)
        self._oidc = OidcKeys(settings) if settings.oidc_enabled else None
        self.clients = ClientStates(settings.auth_client_cache_s)
        self._verified: dict[str, dict[str, Any]] = {}

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
        token = jwt.encode(claims, self._key, algorithm=self._OWN_ALGORITHM)
        return IssuedToken(access_token=token, expires_in=ttl, scope=scope)

    async def client_credentials(
        self,
        session: AsyncSession,
        client_id: str,
        client_secret: str,
        requested_scope: str | None,
    ) -> IssuedToken:
        client = await find_client(session, client_id)
        digest = client.secret_hash if client is not None else "0" * 64
        matches = secret_matches(client_secret, digest)  # compared even for no client
        if client is None:
            raise UnknownClient()
        if not matches or not _usable(client):
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
        claims = self._verified.get(token)
        if claims is not None:
            return await self._client_actor(session, claims, request_id)
        try:
            algorithm = jwt.get_unverified_header(token).get("alg")
        except jwt.PyJWTError:
            raise InvalidToken("malformed token") from None
        if algorithm == self._OWN_ALGORITHM:
            return await self._client_actor(session, self._verify(token), request_id)
        if self._oidc is not None:
            return await self._user_actor(session, token, request_id)
        raise InvalidToken("unknown issuer")

    def _verify(self, token: str) -> dict[str, Any]:
        """Our token's claims, verified once per process and token: a client sends the
        same token for its whole life, and the signature of a given string cannot change.
        Expiry is checked again on every use (`_client_actor`)."""
        claims = _decode(
            token,
            self._key,
            algorithms=[self._OWN_ALGORITHM],
            audience=self.settings.token_audience,
            issuer=self.settings.token_issuer,
        )
        if len(self._verified) >= _MAX_VERIFIED_TOKENS:
            self._verified.clear()
        self._verified[token] = claims
        return claims

    async def _client_actor(
        self, session: AsyncSession, claims: dict[str, Any], request_id: str | None
    ) -> Actor:
        if claims["exp"] <= time.time():
            raise InvalidToken("token expired")
        try:
            client_id = uuid.UUID(str(claims["sub"]))
        except ValueError:
            raise InvalidToken("client revoked or expired") from None
        client = await self.clients.get(session, client_id)
        if client is None or not client.usable():
            raise InvalidToken("client revoked or expired")
        if claims.get("cv") != client.credential_version:
            raise InvalidToken("client secret rotated; get a new token")
        scopes = frozenset(str(claims.get("scope", "")).split()) & client.scopes
        return Actor(
            ActorKind.CLIENT,
            str(client_id),
            client.role,
            client.structure_id,
            scopes,
            request_id,
            territory=client.territory,
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


async def find_client(session: AsyncSession, client_id: str) -> ApiClient | None:
    try:
        return await session.get(ApiClient, uuid.UUID(client_id))
    except ValueError:
        return None


def _usable(client: ApiClient) -> bool:
    if client.revoked_at is not None:
        return False
    return client.expires_at is None or client.expires_at > utcnow()
