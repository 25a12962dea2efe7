"""Partner access: the token endpoint, bearer tokens, API clients, OIDC users, rate limits,
security headers and CORS."""

from __future__ import annotations

import hashlib
import json
import threading
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from fastapi import FastAPI
from jwt.algorithms import RSAAlgorithm
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.domain.enums import Role
from app.main import create_app
from app.services.permissions import ALL_SCOPES, default_scopes
from tests.access_helpers import World, build_world, is_problem, subject_of, token_of
from tests.conftest import (
    TEST_SIGNING_KEY,
    Backend,
    Credentials,
    client_as,
    create_api_client,
    get_token,
    http_client,
    make_settings,
)
from tests.factories import candidate_payload, create_candidate, structure_payload
from tests.history import Programme, ok

TOKEN_URL = "/v1/oauth/token"


def token_form(credentials: Credentials, **extra: str) -> dict[str, str]:
    return {
        "grant_type": "client_credentials",
        "client_id": credentials.client_id,
        "client_secret": credentials.client_secret,
        **extra,
    }


def assert_invalid_client(response: httpx.Response) -> None:
    assert is_problem(response, 401), response.text
    assert response.json()["error"] == "invalid_client"
    assert response.headers.get("www-authenticate")
    assert "access_token" not in response.json()


def assert_invalid_token(response: httpx.Response) -> None:
    assert is_problem(response, 401), response.text
    assert response.headers["www-authenticate"].startswith("Bearer")
    assert 'error="invalid_token"' in response.headers["www-authenticate"]


# --- token endpoint ---------------------------------------------------------------------


async def test_token_with_form_fields(
    client: httpx.AsyncClient, app: FastAPI, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    credentials = await create_api_client(sessionmaker, "admin")
    async with http_client(app) as anonymous:
        response = await anonymous.post(TOKEN_URL, data=token_form(credentials))
    assert response.status_code == 200, response.text
    assert response.headers["cache-control"] == "no-store"
    body = response.json()
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 900
    assert sorted(body["scope"].split()) == sorted(ALL_SCOPES)
    async with http_client(app, body["access_token"]) as http:
        assert (await http.get("/v1/structures")).status_code == 200


async def test_token_with_http_basic(
    client: httpx.AsyncClient, app: FastAPI, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    credentials = await create_api_client(sessionmaker, "admin")
    async with http_client(app) as anonymous:
        response = await anonymous.post(
            TOKEN_URL,
            data={"grant_type": "client_credentials"},
            auth=(credentials.client_id, credentials.client_secret),
        )
    assert response.status_code == 200, response.text
    async with http_client(app, response.json()["access_token"]) as http:
        assert (await http.get("/v1/structures")).status_code == 200


def _wrong_secret(c: Credentials) -> dict[str, Any]:
    return {"data": token_form(Credentials(c.client_id, c.client_secret + "x"))}


def _wrong_secret_basic(c: Credentials) -> dict[str, Any]:
    return {
        "data": {"grant_type": "client_credentials"},
        "auth": (c.client_id, "not-the-secret"),
    }


def _unknown_client(c: Credentials) -> dict[str, Any]:
    return {"data": token_form(Credentials(str(uuid.uuid4()), c.client_secret))}


def _malformed_client_id(c: Credentials) -> dict[str, Any]:
    return {"data": token_form(Credentials("not-a-client-id", c.client_secret))}


def _missing_secret(c: Credentials) -> dict[str, Any]:
    return {"data": {"grant_type": "client_credentials", "client_id": c.client_id}}


def _malformed_basic(c: Credentials) -> dict[str, Any]:
    return {
        "data": {"grant_type": "client_credentials"},
        "headers": {"Authorization": "Basic %%%not-base64%%%"},
    }


@pytest.mark.parametrize(
    "make_request",
    [
        _wrong_secret,
        _wrong_secret_basic,
        _unknown_client,
        _malformed_client_id,
        _missing_secret,
        _malformed_basic,
    ],
    ids=lambda f: f.__name__.strip("_"),
)
async def test_token_refuses_bad_client_credentials(
    client: httpx.AsyncClient,
    app: FastAPI,
    sessionmaker: async_sessionmaker[AsyncSession],
    make_request: Callable[[Credentials], dict[str, Any]],
) -> None:
    credentials = await create_api_client(sessionmaker, "admin")
    async with http_client(app) as anonymous:
        response = await anonymous.post(TOKEN_URL, **make_request(credentials))
    assert_invalid_client(response)


async def test_token_refuses_other_grant_types(
    client: httpx.AsyncClient, app: FastAPI, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    credentials = await create_api_client(sessionmaker, "admin")
    async with http_client(app) as anonymous:
        response = await anonymous.post(
            TOKEN_URL, data=token_form(credentials, grant_type="password")
        )
    assert is_problem(response, 400)
    assert response.json()["error"] == "unsupported_grant_type"
    assert "access_token" not in response.json()


@pytest.mark.parametrize("scope", ["clients:admin", "candidates:read audit:read", "nonsense"])
async def test_token_refuses_scopes_not_granted(
    client: httpx.AsyncClient,
    app: FastAPI,
    sessionmaker: async_sessionmaker[AsyncSession],
    scope: str,
) -> None:
    structure = (await client.post("/v1/structures", json=structure_payload())).json()
    credentials = await create_api_client(sessionmaker, "insertion", structure["id"])
    async with http_client(app) as anonymous:
        response = await anonymous.post(TOKEN_URL, data=token_form(credentials, scope=scope))
    assert is_problem(response, 400)
    assert response.json()["error"] == "invalid_scope"
    assert "access_token" not in response.json()


async def test_token_limited_to_the_scopes_asked(
    client: httpx.AsyncClient, app: FastAPI, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    credentials = await create_api_client(sessionmaker, "admin")
    async with http_client(app) as anonymous:
        response = await anonymous.post(
            TOKEN_URL, data=token_form(credentials, scope="structures:read")
        )
    assert response.status_code == 200, response.text
    assert response.json()["scope"] == "structures:read"
    async with http_client(app, response.json()["access_token"]) as http:
        assert (await http.get("/v1/structures")).status_code == 200
        refused = await http.post("/v1/structures", json=structure_payload())
        assert is_problem(refused, 403)
        assert refused.json()["required_scope"] == "structures:write"
        assert is_problem(await http.get("/v1/candidates"), 403)
    listing = await client.get("/v1/structures")
    assert listing.json()["items"] == []  # the refused POST wrote nothing


async def test_narrowing_a_clients_scopes_applies_to_its_existing_tokens(
    client: httpx.AsyncClient, app: FastAPI, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    credentials = await create_api_client(sessionmaker, "admin")
    async with http_client(app) as anonymous:
        token = await get_token(anonymous, credentials)
    async with http_client(app, token) as http:
        assert (await http.get("/v1/candidates")).status_code == 200
        patched = await client.patch(
            f"/v1/clients/{credentials.client_id}", json={"scopes": ["structures:read"]}
        )
        assert patched.status_code == 200, patched.text
        assert is_problem(await http.get("/v1/candidates"), 403)
        assert (await http.get("/v1/structures")).status_code == 200


# --- bearer tokens on /v1 -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/v1/structures"),
        ("POST", "/v1/structures"),
        ("GET", "/v1/candidates"),
        ("GET", f"/v1/candidates/{uuid.UUID(int=1)}"),
        ("GET", "/v1/clients"),
        ("GET", "/v1/audit"),
    ],
)
async def test_v1_without_token_is_401(
    anonymous: httpx.AsyncClient, method: str, path: str
) -> None:
    response = await anonymous.request(method, path, json={} if method == "POST" else None)
    assert is_problem(response, 401)
    assert response.headers["www-authenticate"].startswith("Bearer")


async def test_basic_credentials_are_no_bearer_token(
    anonymous: httpx.AsyncClient, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    credentials = await create_api_client(sessionmaker, "admin")
    response = await anonymous.get(
        "/v1/structures", auth=(credentials.client_id, credentials.client_secret)
    )
    assert is_problem(response, 401)
    assert response.headers["www-authenticate"].startswith("Bearer")


async def test_public_routes_answer_without_token(
    anonymous: httpx.AsyncClient, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    assert (await anonymous.get("/healthz")).status_code == 200
    ready = await anonymous.get("/readyz")
    assert ready.status_code == 200
    assert ready.json()["status"] == "ok"
    docs = await anonymous.get("/docs")
    assert docs.status_code == 200
    assert "swagger" in docs.text.lower()
    spec = await anonymous.get("/openapi.json")
    assert spec.status_code == 200
    assert "/v1/oauth/token" in spec.json()["paths"]
    credentials = await create_api_client(sessionmaker, "admin")
    token = await anonymous.post(TOKEN_URL, data=token_form(credentials))
    assert token.status_code == 200, token.text


@pytest.mark.parametrize(
    "token", ["garbage", "a.b.c", "eyJhbGciOiJIUzI1NiJ9.e30.", "Bearer x"], ids=str
)
async def test_garbage_token_is_401(app: FastAPI, anonymous: httpx.AsyncClient, token: str) -> None:
    async with http_client(app, token) as http:
        assert_invalid_token(await http.get("/v1/structures"))


def _resign(token: str, key: str = TEST_SIGNING_KEY, **changes: Any) -> str:
    """The claims of a real token, changed and signed again with HS256."""
    claims = jwt.decode(token, options={"verify_signature": False})
    claims.update(changes)
    return jwt.encode(claims, key, algorithm="HS256")


async def test_forged_tokens(client: httpx.AsyncClient, app: FastAPI) -> None:
    real = token_of(client)
    now = datetime.now(UTC)
    fresh = _resign(real, iat=now, nbf=now, exp=now + timedelta(minutes=5))
    async with http_client(app, fresh) as http:  # the forging itself is sound
        assert (await http.get("/v1/structures")).status_code == 200

    expired = _resign(
        real,
        iat=now - timedelta(hours=2),
        nbf=now - timedelta(hours=2),
        exp=now - timedelta(hours=1),
    )
    async with http_client(app, expired) as http:
        response = await http.get("/v1/structures")
    assert_invalid_token(response)
    assert "expired" in response.headers["www-authenticate"]

    for forged in (
        _resign(real, key="another-signing-key-" + "1" * 44),
        _resign(real, aud="another-api"),
        _resign(real, cv=2),
        _resign(real, sub=str(uuid.uuid4())),
    ):
        async with http_client(app, forged) as http:
            assert_invalid_token(await http.get("/v1/structures"))


# --- revocation, expiry, rotation -----------------------------------------------------------


async def test_revoked_client(
    client: httpx.AsyncClient, app: FastAPI, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    credentials = await create_api_client(sessionmaker, "admin")
    async with http_client(app) as anonymous:
        token = await get_token(anonymous, credentials)
        async with http_client(app, token) as http:
            assert (await http.get("/v1/structures")).status_code == 200
            revoked = await client.post(f"/v1/clients/{credentials.client_id}/revoke")
            assert revoked.status_code == 200, revoked.text
            assert revoked.json()["revoked_at"] is not None
            assert_invalid_token(await http.get("/v1/structures"))
        assert_invalid_client(await anonymous.post(TOKEN_URL, data=token_form(credentials)))
    rotate = await client.post(f"/v1/clients/{credentials.client_id}/rotate-secret")
    assert is_problem(rotate, 409)
    assert rotate.json()["type"] == "urn:tremplin:problem:client-revoked"


async def test_expired_client(
    client: httpx.AsyncClient, app: FastAPI, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    past = datetime.now(UTC) - timedelta(minutes=1)
    expired = await create_api_client(sessionmaker, "admin")
    # A client is never created expired; a past expiry given later stops it at once.
    stopped = await client.patch(
        f"/v1/clients/{expired.client_id}", json={"expires_at": past.isoformat()}
    )
    assert stopped.status_code == 200, stopped.text
    live = await create_api_client(
        sessionmaker, "admin", expires_at=datetime.now(UTC) + timedelta(days=1)
    )
    async with http_client(app) as anonymous:
        assert_invalid_client(await anonymous.post(TOKEN_URL, data=token_form(expired)))
        token = await get_token(anonymous, live)
    async with http_client(app, token) as http:
        assert (await http.get("/v1/structures")).status_code == 200
        patched = await client.patch(
            f"/v1/clients/{live.client_id}", json={"expires_at": past.isoformat()}
        )
        assert patched.status_code == 200, patched.text
        assert_invalid_token(await http.get("/v1/structures"))


async def test_secret_rotation(
    client: httpx.AsyncClient, app: FastAPI, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    old = await create_api_client(sessionmaker, "admin")
    async with http_client(app) as anonymous:
        old_token = await get_token(anonymous, old)
        rotated = await client.post(f"/v1/clients/{old.client_id}/rotate-secret")
        assert rotated.status_code == 200, rotated.text
        assert rotated.headers["cache-control"] == "no-store"
        new_secret = rotated.json()["client_secret"]
        assert new_secret
        assert new_secret != old.client_secret
        assert_invalid_client(await anonymous.post(TOKEN_URL, data=token_form(old)))
        async with http_client(app, old_token) as http:
            assert_invalid_token(await http.get("/v1/structures"))
        new_token = await get_token(anonymous, Credentials(old.client_id, new_secret))
    async with http_client(app, new_token) as http:
        assert (await http.get("/v1/structures")).status_code == 200


# --- the clients admin API ------------------------------------------------------------------


async def test_client_secret_shown_once(client: httpx.AsyncClient, app: FastAPI) -> None:
    structure = (await client.post("/v1/structures", json=structure_payload())).json()
    created = await client.post(
        "/v1/clients",
        json={"name": "Logiciel SIAE", "role": "insertion", "structure_id": structure["id"]},
    )
    assert created.status_code == 201, created.text
    assert created.headers["cache-control"] == "no-store"
    body = created.json()
    secret = body["client_secret"]
    assert len(secret) >= 32
    assert sorted(body["scopes"]) == sorted(default_scopes(Role.INSERTION))
    assert created.headers["location"] == f"/v1/clients/{body['id']}"
    digest = hashlib.sha256(secret.encode()).hexdigest()

    shown = [await client.get(f"/v1/clients/{body['id']}"), await client.get("/v1/clients")]
    for response in shown:
        assert response.status_code == 200
        assert secret not in response.text
        assert digest not in response.text
        assert "secret" not in response.text
    assert len(shown[1].json()["items"]) == 2  # the fixture's admin client and this one

    async with http_client(app) as anonymous:
        token = await get_token(anonymous, Credentials(body["id"], secret))
    async with http_client(app, token) as http:
        assert (await http.get("/v1/candidates")).status_code == 200


async def test_client_secret_not_stored_even_with_idempotency_key(
    client: httpx.AsyncClient, app: FastAPI, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    """The secret is "not stored and cannot be read again": not even by the replay store."""
    create = {"json": {"name": "Outil national", "role": "admin"}}
    created = await client.post("/v1/clients", headers={"Idempotency-Key": "client-1"}, **create)
    assert created.status_code == 201, created.text
    client_id = created.json()["id"]
    rotated = await client.post(
        f"/v1/clients/{client_id}/rotate-secret", headers={"Idempotency-Key": "rotate-1"}
    )
    assert rotated.status_code == 200, rotated.text
    secrets_shown = [created.json()["client_secret"], rotated.json()["client_secret"]]

    async with sessionmaker() as session:
        stored = (await session.scalars(text("SELECT response_body FROM idempotency_keys"))).all()
    assert len(stored) == 2
    for secret in secrets_shown:
        assert all(secret not in (body or "") for body in stored)

    # A retry neither creates a second client nor shows a secret again.
    retried = await client.post("/v1/clients", headers={"Idempotency-Key": "client-1"}, **create)
    assert all(secret not in retried.text for secret in secrets_shown)
    assert len((await client.get("/v1/clients")).json()["items"]) == 2
    retried_rotation = await client.post(
        f"/v1/clients/{client_id}/rotate-secret", headers={"Idempotency-Key": "rotate-1"}
    )
    assert all(secret not in retried_rotation.text for secret in secrets_shown)
    async with http_client(app) as anonymous:  # the retry did not rotate a second time
        await get_token(anonymous, Credentials(client_id, secrets_shown[1]))


async def test_client_scopes_beyond_the_role_are_refused(
    client: httpx.AsyncClient, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    structure = (await client.post("/v1/structures", json=structure_payload())).json()
    credentials = await create_api_client(sessionmaker, "insertion", structure["id"])
    path = f"/v1/clients/{credentials.client_id}"
    before = (await client.get(path)).json()["scopes"]
    refused = await client.patch(path, json={"scopes": ["candidates:read", "clients:admin"]})
    assert is_problem(refused, 422)
    assert refused.json()["errors"][0]["loc"] == ["body", "scopes"]
    assert (await client.get(path)).json()["scopes"] == before
    created = await client.post(
        "/v1/clients",
        json={
            "name": "x",
            "role": "insertion",
            "structure_id": structure["id"],
            "scopes": ["audit:read"],
        },
    )
    assert is_problem(created, 422)
    narrowed = await client.patch(path, json={"scopes": ["candidates:read"]})
    assert narrowed.status_code == 200
    assert narrowed.json()["scopes"] == ["candidates:read"]


@pytest.mark.parametrize(
    "expires_at",
    [
        "0001-01-01T00:00:00Z",
        (datetime.now(UTC) - timedelta(minutes=1)).isoformat(),
        "2020-06-01T12:00:00+02:00",
    ],
)
async def test_a_client_is_never_created_expired(
    client: httpx.AsyncClient, expires_at: str
) -> None:
    body = {"name": "already over", "role": "admin", "expires_at": expires_at}
    refused = await client.post("/v1/clients", json=body)
    assert is_problem(refused, 422), refused.text
    assert [e["loc"] for e in refused.json()["errors"]] == [["body", "expires_at"]]
    assert expires_at not in refused.text
    assert expires_at[:10] not in refused.text
    assert len((await client.get("/v1/clients")).json()["items"]) == 1  # only the fixture's
    later = (datetime.now(UTC) + timedelta(minutes=5)).isoformat()
    created = await client.post("/v1/clients", json={**body, "expires_at": later})
    assert created.status_code == 201, created.text


async def test_client_structure_must_fit_the_role(client: httpx.AsyncClient) -> None:
    landlord = (await client.post("/v1/structures", json=structure_payload("landlord"))).json()
    wrong_kind = await client.post(
        "/v1/clients", json={"name": "x", "role": "insertion", "structure_id": landlord["id"]}
    )
    assert is_problem(wrong_kind, 409)
    assert wrong_kind.json()["type"] == "urn:tremplin:problem:wrong-reference-kind"
    missing = await client.post("/v1/clients", json={"name": "x", "role": "insertion"})
    assert is_problem(missing, 422)
    assert missing.json()["errors"][0]["loc"] == ["body", "structure_id"]
    unknown = await client.post(
        "/v1/clients", json={"name": "x", "role": "landlord", "structure_id": str(uuid.uuid4())}
    )
    assert is_problem(unknown, 422)
    assert len((await client.get("/v1/clients")).json()["items"]) == 1  # only the fixture's


async def test_non_admins_get_403_on_clients_and_audit(
    client: httpx.AsyncClient, app: FastAPI, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    world = await build_world(client)
    callers = {
        "insertion": world.insertion_id,
        "landlord": world.landlord_id,
        "prescriber": world.partner_id,
        "observer": None,
    }
    admin_id = subject_of(client)
    for role, structure_id in callers.items():
        async with await client_as(app, sessionmaker, role, structure_id) as http:
            for response in (
                await http.get("/v1/clients"),
                await http.get(f"/v1/clients/{admin_id}"),
                await http.post("/v1/clients", json={"name": "x", "role": "admin"}),
                await http.post(f"/v1/clients/{admin_id}/rotate-secret"),
                await http.get("/v1/audit"),
            ):
                assert is_problem(response, 403), (role, response.text)
    assert len((await client.get("/v1/clients")).json()["items"]) == 5


# --- OIDC users -----------------------------------------------------------------------------

OIDC_ISSUER = "https://idp.example.org/realms/tremplin"
OIDC_AUDIENCE = "tremplin-front"
OIDC_KID = "idp-key-2026"


@dataclass(frozen=True)
class Oidc:
    app: FastAPI
    key: rsa.RSAPrivateKey
    other_key: rsa.RSAPrivateKey

    def token(
        self,
        *,
        key: rsa.RSAPrivateKey | None = None,
        kid: str = OIDC_KID,
        drop: tuple[str, ...] = (),
        **claims: Any,
    ) -> str:
        now = datetime.now(UTC)
        payload: dict[str, Any] = {
            "iss": OIDC_ISSUER,
            "aud": OIDC_AUDIENCE,
            "sub": "user-7f3a",
            "iat": now,
            "exp": now + timedelta(minutes=5),
            "tremplin_role": "insertion",
        }
        payload.update(claims)
        for name in drop:
            payload.pop(name)
        return jwt.encode(payload, key or self.key, algorithm="RS256", headers={"kid": kid})


@dataclass(frozen=True)
class IdentityProvider:
    key: rsa.RSAPrivateKey
    other_key: rsa.RSAPrivateKey  # not published in the JWKS
    jwks_file: Path


@pytest.fixture(scope="module")
def identity_provider(tmp_path_factory: pytest.TempPathFactory) -> IdentityProvider:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    other_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    jwk = json.loads(RSAAlgorithm.to_jwk(key.public_key()))
    jwk.update({"kid": OIDC_KID, "use": "sig", "alg": "RS256"})
    path = tmp_path_factory.mktemp("oidc") / "jwks.json"
    path.write_text(json.dumps({"keys": [jwk]}))
    return IdentityProvider(key, other_key, path)


@pytest.fixture(scope="module")
async def oidc(backend: Backend, identity_provider: IdentityProvider) -> AsyncIterator[Oidc]:
    application = create_app(
        make_settings(
            backend.url,
            oidc_issuer=OIDC_ISSUER,
            oidc_audience=OIDC_AUDIENCE,
            oidc_jwks_file=identity_provider.jwks_file,
        )
    )
    async with application.router.lifespan_context(application):
        yield Oidc(application, identity_provider.key, identity_provider.other_key)


async def test_oidc_insertion_user_sees_own_structure_only(
    client: httpx.AsyncClient, oidc: Oidc
) -> None:
    world = await build_world(client)
    own = await create_candidate(client, world.insertion_id, first_name="Inès")
    other = await create_candidate(client, world.other_insertion_id, first_name="Oscar")
    token = oidc.token(tremplin_structure_id=world.insertion_id)
    async with http_client(oidc.app, token) as http:
        listing = await http.get("/v1/candidates")
        assert listing.status_code == 200, listing.text
        assert [c["id"] for c in listing.json()["items"]] == [own["id"]]
        assert (await http.get(f"/v1/candidates/{own['id']}")).json()["view"] == "full"
        assert is_problem(await http.get(f"/v1/candidates/{other['id']}"), 404)
        refused = await http.post(
            "/v1/candidates", json=candidate_payload(world.other_insertion_id)
        )
        assert is_problem(refused, 403)
        assert is_problem(await http.get("/v1/clients"), 403)
    journal = (await client.get("/v1/audit", params={"actor_id": "user-7f3a"})).json()["items"]
    assert journal
    assert {(e["actor_kind"], e["actor_role"], e["actor_structure_id"]) for e in journal} == {
        ("user", "insertion", world.insertion_id)
    }


async def test_oidc_national_admin_user(client: httpx.AsyncClient, oidc: Oidc) -> None:
    token = oidc.token(tremplin_role="admin")
    async with http_client(oidc.app, token) as http:
        assert (await http.get("/v1/clients")).status_code == 200


def _user_cases() -> list[Any]:
    now = datetime.now(UTC)

    def case(name: str, make: Callable[[Oidc, World], str]) -> Any:
        return pytest.param(make, id=name)

    return [
        case(
            "wrong-audience",
            lambda o, w: o.token(aud="another-app", tremplin_structure_id=w.insertion_id),
        ),
        case(
            "wrong-issuer",
            lambda o, w: o.token(
                iss="https://evil.example.org", tremplin_structure_id=w.insertion_id
            ),
        ),
        case(
            "expired",
            lambda o, w: o.token(
                iat=now - timedelta(hours=2),
                exp=now - timedelta(hours=1),
                tremplin_structure_id=w.insertion_id,
            ),
        ),
        case(
            "unknown-kid",
            lambda o, w: o.token(kid="rotated-away", tremplin_structure_id=w.insertion_id),
        ),
        case(
            "other-key", lambda o, w: o.token(key=o.other_key, tremplin_structure_id=w.insertion_id)
        ),
        case(
            "no-role",
            lambda o, w: o.token(drop=("tremplin_role",), tremplin_structure_id=w.insertion_id),
        ),
        case(
            "invalid-role",
            lambda o, w: o.token(tremplin_role="superuser", tremplin_structure_id=w.insertion_id),
        ),
        case("no-structure", lambda o, w: o.token()),
        case("structure-wrong-kind", lambda o, w: o.token(tremplin_structure_id=w.landlord_id)),
        case("structure-unknown", lambda o, w: o.token(tremplin_structure_id=str(uuid.uuid4()))),
        case("no-sub", lambda o, w: o.token(drop=("sub",), tremplin_structure_id=w.insertion_id)),
        # The header claims ES256 with the RSA key's kid: the key decides, not the header.
        case(
            "algorithm-confusion",
            lambda o, w: jwt.encode(
                {
                    "iss": OIDC_ISSUER,
                    "aud": OIDC_AUDIENCE,
                    "sub": "user-7f3a",
                    "iat": now,
                    "exp": now + timedelta(minutes=5),
                    "tremplin_role": "insertion",
                    "tremplin_structure_id": w.insertion_id,
                },
                ec.generate_private_key(ec.SECP256R1()),
                algorithm="ES256",
                headers={"kid": OIDC_KID},
            ),
        ),
    ]


@pytest.mark.parametrize("make_token", _user_cases())
async def test_oidc_refused_tokens(
    client: httpx.AsyncClient, oidc: Oidc, make_token: Callable[[Oidc, World], str]
) -> None:
    world = await build_world(client)
    await create_candidate(client, world.insertion_id)
    async with http_client(oidc.app, make_token(oidc, world)) as http:
        assert_invalid_token(await http.get("/v1/candidates"))


async def test_oidc_tokens_refused_when_oidc_is_off(
    client: httpx.AsyncClient, app: FastAPI, oidc: Oidc
) -> None:
    world = await build_world(client)
    async with http_client(app, oidc.token(tremplin_structure_id=world.insertion_id)) as http:
        assert_invalid_token(await http.get("/v1/candidates"))


# --- rate limits, headers, CORS ------------------------------------------------------------


@pytest.fixture
async def app_with(backend: Backend) -> AsyncIterator[Callable[..., Any]]:
    """Build another app on the same database with some settings overridden."""
    contexts: list[Any] = []

    async def build(**overrides: Any) -> FastAPI:
        application = create_app(make_settings(backend.url, **overrides))
        context = application.router.lifespan_context(application)
        await context.__aenter__()
        contexts.append(context)
        return application

    yield build
    for context in reversed(contexts):
        await context.__aexit__(None, None, None)


async def test_rate_limit(
    client: httpx.AsyncClient,
    sessionmaker: async_sessionmaker[AsyncSession],
    app_with: Callable[..., Any],
) -> None:
    limited: FastAPI = await app_with(rate_limit_admin=3)
    first = await create_api_client(sessionmaker, "admin")
    second = await create_api_client(sessionmaker, "admin")
    async with http_client(limited) as anonymous:
        first_token = await get_token(anonymous, first)
        second_token = await get_token(anonymous, second)
    async with http_client(limited, first_token) as http:
        for _ in range(3):
            assert (await http.get("/v1/structures")).status_code == 200
        refused = await http.get("/v1/structures")
        assert is_problem(refused, 429)
        retry_after = refused.headers["retry-after"]
        assert retry_after.isdigit()
        assert int(retry_after) >= 1
        assert is_problem(await http.post("/v1/structures", json=structure_payload()), 429)
    assert (await client.get("/v1/structures")).json()["items"] == []
    async with http_client(limited, second_token) as http:  # every caller has its own budget
        assert (await http.get("/v1/structures")).status_code == 200


async def test_security_headers_on_v1(client: httpx.AsyncClient, app: FastAPI) -> None:
    async with http_client(app) as anonymous:
        responses = [
            await client.get("/v1/structures"),
            await client.get(f"/v1/candidates/{uuid.uuid4()}"),
            await anonymous.get("/v1/candidates"),
        ]
    assert [r.status_code for r in responses] == [200, 404, 401]
    for response in responses:
        assert response.headers["x-content-type-options"] == "nosniff"
        assert response.headers["x-frame-options"] == "DENY"
        assert response.headers["cache-control"] == "no-store"
        assert "default-src 'none'" in response.headers["content-security-policy"]


async def test_cors(client: httpx.AsyncClient, app: FastAPI, app_with: Callable[..., Any]) -> None:
    allowed = "https://app.example.org"
    with_cors: FastAPI = await app_with(cors_origins=[allowed])
    preflight = {
        "Access-Control-Request-Method": "GET",
        "Access-Control-Request-Headers": "authorization",
    }
    async with http_client(with_cors) as anonymous:
        ok = await anonymous.options("/v1/candidates", headers={"Origin": allowed, **preflight})
        assert ok.status_code == 200
        assert ok.headers["access-control-allow-origin"] == allowed
        assert "GET" in ok.headers["access-control-allow-methods"]
        assert "authorization" in ok.headers["access-control-allow-headers"].lower()
        other = await anonymous.options(
            "/v1/candidates", headers={"Origin": "https://evil.example.com", **preflight}
        )
        assert "access-control-allow-origin" not in other.headers
    async with http_client(with_cors, token_of(client)) as http:
        simple = await http.get("/v1/structures", headers={"Origin": allowed})
        assert simple.status_code == 200
        assert simple.headers["access-control-allow-origin"] == allowed
        foreign = await http.get("/v1/structures", headers={"Origin": "https://evil.example.com"})
        assert "access-control-allow-origin" not in foreign.headers
    async with http_client(app) as anonymous:  # no origin configured: no CORS at all
        default = await anonymous.options(
            "/v1/candidates", headers={"Origin": allowed, **preflight}
        )
        assert "access-control-allow-origin" not in default.headers


@pytest.fixture
def jwks_server(identity_provider: IdentityProvider) -> Iterator[str]:
    """The identity provider's key set served over HTTP on the loopback, as a real
    provider publishes it."""
    body = identity_provider.jwks_file.read_bytes()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/protocol/openid-connect/certs"
    finally:
        server.shutdown()
        server.server_close()


async def test_oidc_keys_fetched_from_a_url(
    client: httpx.AsyncClient,
    backend: Backend,
    jwks_server: str,
    identity_provider: IdentityProvider,
) -> None:
    world = await build_world(client)
    own = await create_candidate(client, world.insertion_id)
    application = create_app(
        make_settings(
            backend.url,
            oidc_issuer=OIDC_ISSUER,
            oidc_audience=OIDC_AUDIENCE,
            oidc_jwks_url=jwks_server,
        )
    )
    oidc = Oidc(application, identity_provider.key, identity_provider.other_key)
    async with application.router.lifespan_context(application):
        async with http_client(
            application, oidc.token(tremplin_structure_id=world.insertion_id)
        ) as http:
            listing = await http.get("/v1/candidates")
            assert listing.status_code == 200, listing.text
            assert [c["id"] for c in listing.json()["items"]] == [own["id"]]
        forged = oidc.token(key=oidc.other_key, tremplin_structure_id=world.insertion_id)
        async with http_client(application, forged) as http:
            assert_invalid_token(await http.get("/v1/candidates"))


# --- Observers' territory claim --------------------------------------------------------

RHONE = {"postcode": "69008", "commune_insee": "69388"}


@pytest.mark.parametrize(
    ("claim", "hired"),
    [(None, 11), ("departement:69", 6), ("region:28", 5)],
    ids=["no-claim-national", "departement", "region"],
)
async def test_oidc_observers_read_their_territory(
    client: httpx.AsyncClient, oidc: Oidc, claim: str | None, hired: int
) -> None:
    rouen = await Programme.make(client)
    lyon = await Programme.make(client, **RHONE)
    for i in range(5):
        await rouen.hired_path(date(2015, 1, 5) + timedelta(days=i), date(2015, 9, 1))
    for i in range(6):
        await lyon.hired_path(date(2015, 1, 5) + timedelta(days=i), date(2015, 9, 1), **RHONE)
    claims = {"tremplin_role": "observer"}
    if claim is not None:
        claims["tremplin_territory"] = claim
    async with http_client(oidc.app, oidc.token(**claims)) as observer:
        funnel = await ok(await observer.get("/v1/stats/funnel", params={"year": 2015}))
        assert funnel["hired"] == hired
        assert is_problem(await observer.get("/v1/candidates"), 403)


async def test_a_malformed_territory_claim_is_refused(oidc: Oidc) -> None:
    token = oidc.token(tremplin_role="observer", tremplin_territory="region:xx")
    async with http_client(oidc.app, token) as observer:
        refused = await observer.get("/v1/stats/funnel")
    assert is_problem(refused, 401)
