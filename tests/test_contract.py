"""The spec says exactly what the API accepts: scalar types, nullability, 405s, unreadable
bodies, the Idempotency-Key format and the one-scope rule of assignments."""

from __future__ import annotations

import itertools
import re
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from pydantic import ValidationError

from app.domain.geography import DEPARTEMENT_PATTERN, DEPARTEMENTS
from app.main import create_app
from app.routers.idempotency import IDEMPOTENCY_KEY_PATTERN
from tests.access_helpers import is_problem
from tests.conftest import make_settings
from tests.factories import candidate_payload, create_candidate, create_structure
from tests.test_openapi import operations, resolve, schema_model
from tests.test_permissions import api_routes


@pytest.fixture(scope="module")
def spec() -> dict[str, Any]:
    return create_app(make_settings("sqlite+aiosqlite:///:memory:")).openapi()


def error_locs(response: httpx.Response) -> list[list[str]]:
    return [e["loc"] for e in response.json().get("errors", [])]


# --- exact scalar types in JSON bodies --------------------------------------------------

BAD_BODY_VALUES = {
    # field of CandidateCreate -> values of the wrong JSON type
    "has_driving_licence": [0, 1, "yes", "true", "NoneType"],  # boolean
    "max_commute_km": [1.0, "10", True],  # integer
    "max_weekly_hours": ["35", True],  # number
    "birth_date": [19900412, 1.5, "12/04/1990", "1990-04-12T00:00:00Z", True],  # date
    "available_from": [20270101, "tomorrow"],  # nullable date
}


@pytest.mark.parametrize(
    ("field", "value"),
    [(f, v) for f, values in BAD_BODY_VALUES.items() for v in values],
)
async def test_body_scalars_of_the_wrong_type_are_refused(
    client: httpx.AsyncClient, field: str, value: Any
) -> None:
    structure = await create_structure(client, "insertion")
    response = await client.post(
        "/v1/candidates", json=candidate_payload(structure["id"], **{field: value})
    )
    assert is_problem(response, 422), response.text
    assert ["body", field] in error_locs(response)


async def test_body_scalars_of_the_right_type_are_taken(client: httpx.AsyncClient) -> None:
    structure = await create_structure(client, "insertion")
    created = await client.post(
        "/v1/candidates",
        json=candidate_payload(
            structure["id"],
            has_driving_licence=True,
            max_commute_km=12,
            max_weekly_hours=35,  # an integer is a number
            birth_date="1990-04-12",
            available_from=None,
        ),
    )
    assert created.status_code == 201, created.text
    assert created.json()["max_weekly_hours"] == 35.0


async def test_date_times_in_bodies_are_rfc3339_strings(client: httpx.AsyncClient) -> None:
    for bad in (1893456000, "2030-01-01", "tomorrow", True):
        response = await client.post(
            "/v1/clients", json={"name": "exact types", "role": "admin", "expires_at": bad}
        )
        assert is_problem(response, 422), bad
        assert ["body", "expires_at"] in error_locs(response)
    good = await client.post(
        "/v1/clients",
        json={"name": "exact types", "role": "admin", "expires_at": "2030-01-01T00:00:00Z"},
    )
    assert good.status_code == 201, good.text


async def test_nested_and_union_bodies_are_exact_too(client: httpx.AsyncClient) -> None:
    candidate = await create_candidate(client)
    levels = await client.patch(
        f"/v1/candidates/{candidate['id']}", json={"competencies": {"cleaning_hygiene": "2"}}
    )
    assert is_problem(levels, 422)
    assert ["body", "competencies", "cleaning_hygiene"] in error_locs(levels)
    activity = await client.post(
        f"/v1/candidates/{candidate['id']}/activities",
        json={"type": "work_trial", "occurred_on": 20260601, "outcome": "positive"},
    )
    assert is_problem(activity, 422)
    assert any(loc[-1] == "occurred_on" for loc in error_locs(activity))


# --- exact scalar types in query strings ------------------------------------------------

BAD_QUERIES = [
    ("/v1/vacancies/{vacancy_id}/matches", "include_excluded", ["1", "0", "yes", "True", "on"]),
    ("/v1/candidates", "limit", ["1.0", "1e1", " 5", "five"]),
    ("/v1/candidates", "updated_since", ["1700000000", "2026-01-01", "yesterday"]),
    ("/v1/audit", "since", ["1700000000", "2026-01-01T00:00:00"]),
]


@pytest.mark.parametrize(
    ("path", "name", "value"),
    [(p, n, v) for p, n, values in BAD_QUERIES for v in values],
)
async def test_query_scalars_of_the_wrong_form_are_refused(
    client: httpx.AsyncClient, path: str, name: str, value: str
) -> None:
    path = path.replace("{vacancy_id}", "01939a2e-0000-7000-8000-000000000004")
    response = await client.get(path, params={name: value})
    assert is_problem(response, 422), (name, value, response.text)
    assert ["query", name] in error_locs(response)


async def test_query_scalars_of_the_right_form_are_taken(client: httpx.AsyncClient) -> None:
    for params in (
        {"limit": "5", "updated_since": "2026-01-01T00:00:00Z"},
        {"updated_since": "2026-01-01T00:00:00+02:00"},
    ):
        assert (await client.get("/v1/candidates", params=params)).status_code == 200
    assert (
        await client.get("/v1/audit", params={"since": "2026-01-01T00:00:00Z"})
    ).status_code == 200


# --- 405 lists every method of the path -------------------------------------------------


async def test_405_allow_lists_every_method_of_every_path(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    served: dict[str, set[str]] = {}
    for route in api_routes(app.routes):
        served.setdefault(route.path, set()).update(route.methods)
    assert len(served) > 20
    for path, methods in served.items():
        concrete = re.sub(r"\{[a-z_]+\}", "01939a2e-0000-7000-8000-000000000009", path)
        unused = next(m for m in ("PUT", "PATCH", "DELETE", "POST", "GET") if m not in methods)
        response = await client.request(unused, concrete)
        assert is_problem(response, 405), (unused, path)
        allowed = {m.strip() for m in response.headers["allow"].split(",")}
        assert allowed == methods, (path, allowed, methods)


# --- bodies that are not UTF-8 JSON -----------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [b"\xff\xfe{}", b'{"name": "\xe9t\xe9"}', b"[" * 5000 + b"]" * 5000, b"{not json"],
)
async def test_an_unreadable_body_is_a_documented_422(
    client: httpx.AsyncClient, spec: dict[str, Any], body: bytes
) -> None:
    response = await client.post(
        "/v1/structures", content=body, headers={"Content-Type": "application/json"}
    )
    assert is_problem(response, 422), response.text
    assert error_locs(response)[0][0] == "body"
    assert "422" in spec["paths"]["/v1/structures"]["post"]["responses"]


# --- nullability: the spec says what PATCH accepts --------------------------------------


def _nullable(schema: dict[str, Any], spec: dict[str, Any]) -> bool:
    schema = resolve(spec, schema)
    if schema.get("type") == "null" or "null" in (schema.get("type") or []):
        return True
    return any(_nullable(branch, spec) for branch in schema.get("anyOf", []))


def test_every_patch_field_is_nullable_in_the_spec_exactly_when_null_is_accepted(
    spec: dict[str, Any],
) -> None:
    checked = 0
    for path, method, operation in operations(spec):
        if method != "patch":
            continue
        ref = operation["requestBody"]["content"]["application/json"]["schema"]["$ref"]
        model = schema_model(ref.rsplit("/", 1)[1])
        for name, prop in resolve(spec, {"$ref": ref})["properties"].items():
            try:
                model.model_validate({name: None})
                accepted = True
            except ValidationError:
                accepted = False
            assert _nullable(prop, spec) == accepted, (path, name)
            checked += 1
    assert checked > 40


async def test_null_on_a_non_nullable_field_is_refused_over_http(
    client: httpx.AsyncClient,
) -> None:
    candidate = await create_candidate(client)
    refused = await client.patch(f"/v1/candidates/{candidate['id']}", json={"first_name": None})
    assert is_problem(refused, 422)
    assert ["body", "first_name"] in error_locs(refused)
    cleared = await client.patch(f"/v1/candidates/{candidate['id']}", json={"email": None})
    assert cleared.status_code == 200
    assert cleared.json()["email"] is None


# --- Idempotency-Key: the format in the spec is the one enforced ------------------------


def test_idempotency_key_pattern_is_in_the_spec(spec: dict[str, Any]) -> None:
    posts = [op for _, method, op in operations(spec) if method == "post"]
    documented = [
        p for op in posts for p in op.get("parameters", []) if p["name"] == "Idempotency-Key"
    ]
    assert len(documented) >= 10
    assert {p["schema"]["pattern"] for p in documented} == {IDEMPOTENCY_KEY_PATTERN}


@pytest.mark.parametrize("key", ["é-accent", " leading", "trailing ", "x" * 256, "tab\there"])
async def test_idempotency_keys_outside_the_pattern_are_refused(
    client: httpx.AsyncClient, key: str
) -> None:
    assert not re.match(IDEMPOTENCY_KEY_PATTERN, key)
    structure = await create_structure(client, "insertion")
    response = await client.post(
        "/v1/candidates",
        json=candidate_payload(structure["id"]),
        headers={"Idempotency-Key": key.encode("utf-8")},  # type: ignore[dict-item]
    )
    assert is_problem(response, 422), key
    assert ["header", "Idempotency-Key"] in error_locs(response)


# --- the one-scope rule of assignments --------------------------------------------------


def test_assignment_scope_rule_is_in_the_spec(spec: dict[str, Any]) -> None:
    scope = spec["components"]["schemas"]["AssignmentScope"]
    assert scope["maxProperties"] == 1
    assert scope["properties"]["landlord_ids"]["minItems"] == 1
    assert scope["properties"]["vacancy_ids"]["minItems"] == 1
    assert all(not _nullable(p, spec) for p in scope["properties"].values())


@pytest.mark.parametrize(
    "scope",
    [
        {"departement": "76", "region": "28"},
        {"departement": "76", "landlord_ids": []},
        {"departement": None},
        {"landlord_ids": []},
    ],
)
async def test_assignments_refuse_what_the_scope_schema_refuses(
    client: httpx.AsyncClient, scope: dict[str, Any]
) -> None:
    response = await client.post("/v1/matching/assignments", json={"scope": scope})
    assert is_problem(response, 422), response.text


async def test_assignments_take_one_scope_or_none(client: httpx.AsyncClient) -> None:
    for scope in ({}, {"departement": "76"}, {"region": "28"}):
        response = await client.post("/v1/matching/assignments", json={"scope": scope})
        assert response.status_code == 200, (scope, response.text)


# --- patterns that carry a rule --------------------------------------------------------


def test_departement_pattern_is_exactly_the_known_departements() -> None:
    alphabet = "0123456789AB"
    codes = {"".join(p) for n in (2, 3) for p in itertools.product(alphabet, repeat=n)}
    assert {c for c in codes if re.match(DEPARTEMENT_PATTERN, c)} == set(DEPARTEMENTS)


# --- the headers an answer carries are in the spec ---------------------------------------

SENT_HEADERS = ("etag", "location", "retry-after")


def documented_headers(spec: dict[str, Any], path: str, method: str, status: int) -> set[str]:
    response = resolve(spec, spec["paths"][path][method]["responses"][str(status)])
    return {name.lower() for name in response.get("headers", {})}


async def test_the_headers_an_answer_carries_are_documented(
    client: httpx.AsyncClient, spec: dict[str, Any]
) -> None:
    """A generated client reads what the spec names: the ETag of a transition's answer
    (for the next If-Match) and the Location of a creation were sent but undocumented."""
    structure = (await create_structure(client, "insertion"))["id"]
    created = await client.post("/v1/candidates", json=candidate_payload(structure))
    person = created.json()["id"]
    moved = await client.post(
        f"/v1/candidates/{person}/transitions", json={"to": "exited", "reason": "moved_away"}
    )
    api_client = await client.post("/v1/clients", json={"name": "headers", "role": "admin"})
    revoked = await client.post(f"/v1/clients/{api_client.json()['id']}/revoke")
    answers = [
        (created, "/v1/candidates", "post"),
        (moved, "/v1/candidates/{candidate_id}/transitions", "post"),
        (api_client, "/v1/clients", "post"),
        (revoked, "/v1/clients/{client_id}/revoke", "post"),
    ]
    for response, path, method in answers:
        assert response.status_code in (200, 201), response.text
        sent = {name for name in SENT_HEADERS if name in response.headers}
        assert "etag" in sent, path
        documented = documented_headers(spec, path, method, response.status_code)
        assert sent <= documented, (path, sent - documented)
    # A 429 always carries Retry-After (app.errors.TooManyRequests): said wherever documented.
    for path, method, operation in operations(spec):
        if "429" in operation["responses"]:
            assert "retry-after" in documented_headers(spec, path, method, 429), (method, path)
