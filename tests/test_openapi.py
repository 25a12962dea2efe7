"""The OpenAPI document is the product's contract: committed, complete, and client-friendly.

The spec does not depend on the database, so these tests serve it from an app whose
lifespan never runs and do not repeat per backend.
"""

from __future__ import annotations

import importlib
import pkgutil
import re
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from pydantic import BaseModel

import app.schemas
from app.config import PROJECT_ROOT
from app.main import create_app
from tests.conftest import make_settings

SPEC_FILE = PROJECT_ROOT / "openapi.yaml"
PROBLEM_JSON = "application/problem+json"
METHODS = {"get", "post", "put", "patch", "delete", "head", "options", "trace"}
CRUD_VERBS = {
    ("get", False): "list",
    ("post", False): "create",
    ("get", True): "get",
    ("patch", True): "update",
    ("delete", True): "delete",
}
# Resources that exist once, read with `<name>_get`: the path machine.
SINGLETONS = {"pathway"}
V1_PATH = re.compile(r"^/v1/(?P<resource>[a-z_]+)(?P<item>/\{[a-z_]+\})?$")
OPERATION_ID = re.compile(r"^[a-z]+_[a-z]+(?:_[a-z]+)*$")


@pytest.fixture(scope="module")
async def served() -> dict[str, Any]:
    application = create_app(make_settings("sqlite+aiosqlite:///:memory:"))
    transport = httpx.ASGITransport(app=application)
    async with httpx.AsyncClient(transport=transport, base_url="http://tremplin.test") as client:
        response = await client.get("/openapi.json")
    assert response.status_code == 200
    spec: dict[str, Any] = response.json()
    return spec


def operations(spec: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, item in spec["paths"].items():
        for method, operation in item.items():
            if method in METHODS:
                yield path, method, operation


def resolve(spec: dict[str, Any], node: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in node:
        ref = node["$ref"]
        assert ref.startswith("#/"), ref
        target: Any = spec
        for part in ref[2:].split("/"):
            target = target[part]
        node = target
    return node


def schema_model(name: str) -> type[BaseModel]:
    for module_info in pkgutil.iter_modules(app.schemas.__path__):
        module = importlib.import_module(f"app.schemas.{module_info.name}")
        model = getattr(module, name, None)
        if isinstance(model, type) and issubclass(model, BaseModel):
            return model
    raise AssertionError(f"no Pydantic model named {name} in app.schemas")


def test_committed_spec_equals_served_spec(served: dict[str, Any]) -> None:
    assert SPEC_FILE.exists(), "openapi.yaml is missing: run `python -m app openapi --output`"
    committed = yaml.safe_load(Path(SPEC_FILE).read_text(encoding="utf-8"))
    assert committed == served, (
        "openapi.yaml differs from the served spec: regenerate it with "
        "`python -m app openapi --output openapi.yaml`"
    )


def test_every_operation_is_tagged(served: dict[str, Any]) -> None:
    declared = {tag["name"] for tag in served.get("tags", [])}
    for path, method, operation in operations(served):
        tags = operation.get("tags", [])
        assert tags, f"{method.upper()} {path} has no tag"
        assert set(tags) <= declared, f"{method.upper()} {path}: undeclared tag {tags}"


def test_operation_ids_are_unique_resource_verb_names(served: dict[str, Any]) -> None:
    ids = [op.get("operationId") for _, _, op in operations(served)]
    assert None not in ids
    assert [i for i, n in Counter(ids).items() if n > 1] == []
    for path, method, operation in operations(served):
        operation_id = operation["operationId"]
        assert OPERATION_ID.match(operation_id), f"{method.upper()} {path}: {operation_id}"
        assert operation_id.split("_", 1)[0] == operation["tags"][0]


def test_crud_operation_ids(served: dict[str, Any]) -> None:
    """Generated clients read `client.candidates_list()`, `client.candidates_update()`..."""
    checked = 0
    for path, method, operation in operations(served):
        match = V1_PATH.match(path)
        verb = CRUD_VERBS.get((method, bool(match and match["item"])))
        if match is None or verb is None or match["resource"] in SINGLETONS:
            continue
        assert operation["operationId"] == f"{match['resource']}_{verb}", f"{method} {path}"
        checked += 1
    assert checked >= 5 * 3 + 4  # five CRUD operations per resource; placements have no delete
    ids = {op["operationId"] for _, _, op in operations(served)}
    assert {
        "candidates_list",
        "candidates_get",
        "candidates_create",
        "candidates_update",
        "candidates_delete",
    } <= ids


def test_health_operation_ids(served: dict[str, Any]) -> None:
    assert served["paths"]["/healthz"]["get"]["operationId"] == "health_live"
    assert served["paths"]["/readyz"]["get"]["operationId"] == "health_ready"


def test_v1_operations_document_problem_responses(served: dict[str, Any]) -> None:
    for path, method, operation in operations(served):
        if not path.startswith("/v1/"):
            continue
        problems = [
            code
            for code, response in operation["responses"].items()
            if code.startswith("4") and PROBLEM_JSON in resolve(served, response).get("content", {})
        ]
        assert problems, f"{method.upper()} {path} documents no 4xx problem+json response"


def test_v1_operations_document_503_with_retry_after(served: dict[str, Any]) -> None:
    """Any /v1 operation answers 503 when the database cannot (tests/test_faults.py): a
    generated client must know the status and its Retry-After."""
    for path, method, operation in operations(served):
        if not path.startswith("/v1/"):
            continue
        unavailable = resolve(served, operation["responses"].get("503", {}))
        assert PROBLEM_JSON in unavailable.get("content", {}), f"{method.upper()} {path}"
        assert unavailable["headers"]["Retry-After"]["required"] is True, f"{method.upper()} {path}"


def test_error_responses_are_never_plain_json(served: dict[str, Any]) -> None:
    for path, method, operation in operations(served):
        for code, response in operation["responses"].items():
            if code[0] not in "45":
                continue
            content = resolve(served, response).get("content", {})
            assert "application/json" not in content, f"{method.upper()} {path} {code}"
            assert set(content) <= {PROBLEM_JSON}, f"{method.upper()} {path} {code}"


def test_every_ref_resolves(served: dict[str, Any]) -> None:
    """Dropped components (e.g. FastAPI's HTTPValidationError) must not be referenced."""

    def refs(node: Any) -> Iterator[str]:
        if isinstance(node, dict):
            for key, value in node.items():
                if key == "$ref" and isinstance(value, str):
                    yield value
                else:
                    yield from refs(value)
        elif isinstance(node, list):
            for value in node:
                yield from refs(value)

    for ref in set(refs(served)):
        resolve(served, {"$ref": ref})  # KeyError names the dangling reference


def _request_bodies(spec: dict[str, Any]) -> Iterator[tuple[str, str, str, dict[str, Any]]]:
    for path, method, operation in operations(spec):
        if method not in {"post", "patch"} or "requestBody" not in operation:
            continue
        for media_type, content in operation["requestBody"]["content"].items():
            yield path, method, media_type, content


def test_request_bodies_have_examples(served: dict[str, Any]) -> None:
    bodies = list(_request_bodies(served))
    assert len(bodies) >= 8  # create and update of four resources
    for path, method, _, content in bodies:
        schema = resolve(served, content["schema"])
        examples = content.get("examples") or schema.get("examples") or []
        assert examples, f"{method.upper()} {path}: request body without examples"


def test_request_body_examples_are_valid(served: dict[str, Any]) -> None:
    """A partner who copies an example from the docs must not get a 422 for its shape."""
    for path, method, _, content in _request_bodies(served):
        schema = content["schema"]
        if "discriminator" in schema:
            # A union on `type` (activities): each example names its own model.
            mapping = schema["discriminator"]["mapping"]
            field = schema["discriminator"]["propertyName"]
            examples = [e["value"] for e in content.get("examples", {}).values()]
            assert examples, f"{method.upper()} {path}: union body without examples"
            for example in examples:
                schema_model(mapping[example[field]].rsplit("/", 1)[1]).model_validate(example)
            continue
        ref = schema.get("$ref", "")
        assert ref.startswith("#/components/schemas/"), f"{method.upper()} {path}: inline body"
        model = schema_model(ref.rsplit("/", 1)[1])
        for example in resolve(served, content["schema"]).get("examples", []):
            model.model_validate(example)


def _subclasses(cls: type) -> set[type]:
    found = set(cls.__subclasses__())
    for sub in list(found):
        found |= _subclasses(sub)
    return found


def test_every_conflict_is_documented_with_its_problem_type(served: dict[str, Any]) -> None:
    """Each 409 names the problem types it may carry, and each type the code can raise as
    a 409 is named on some operation."""
    from app import errors

    documented = ""
    for path, method, operation in operations(served):
        conflict = operation["responses"].get("409")
        if conflict is None:
            continue
        assert "urn:tremplin:problem:" in conflict["description"], f"{method} {path}"
        documented += conflict["description"]
    raised = {errors.problem_type(c.slug) for c in _subclasses(errors.Conflict) | {errors.Conflict}}
    missing = {t for t in raised if f"`{t}`" not in documented}
    assert not missing, f"409 problem types documented nowhere: {sorted(missing)}"


def test_an_etag_is_documented_only_where_one_is_sent(served: dict[str, Any]) -> None:
    """A resource with a version sends it as its ETag; the path's description has none."""
    pathway = served["paths"]["/v1/pathway"]["get"]["responses"]["200"]
    assert "ETag" not in pathway.get("headers", {})
    candidate = served["paths"]["/v1/candidates/{candidate_id}"]["get"]["responses"]["200"]
    assert "ETag" in candidate["headers"]
