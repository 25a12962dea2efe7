"""The contract, fuzzed: schemathesis with every check against a live server.

A seeded server (tests/live_server.py: the demo dataset, an admin and an insertion
client) runs per database; schemathesis (pinned in pyproject.toml) runs every phase and
every check against it, once as a national administrator and once as insertion staff,
with a fixed seed and a bounded number of examples per operation, and must find
nothing. The figures (cases, failures, time) are printed at the end of the session.

Seeded ids are fed to path parameters and body references half of the time, so that
cases reach real rows, not only 404s. Client operations always act on a spare client:
a fuzzer that renamed, re-scoped or revoked its own client would lock itself out.

One deliberate setting: for the operations below, a schema-valid payload may still
break a rule that JSON Schema cannot carry (a SIRET's checksum, a date relative to
today, a rule across fields, an id that must name a row of the right kind, an opaque
cursor this server did not issue), and the answer is then 422 with the field named.
Everything else (types, formats, patterns, nullability, required fields, unknown
fields, status codes, headers, response schemas) is checked as schemathesis ships it.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import BACKENDS, require_postgres
from tests.live_server import LiveServer, live_server

MAX_EXAMPLES = int(os.environ.get("CONTRACT_FUZZ_EXAMPLES", "12"))
SEED = 2016
RUN_TIMEOUT_S = 900
FIGURES: list[str] = []

# operationId -> the rules beyond JSON Schema that may make a schema-valid payload a 422.
SEMANTIC_RULES = {
    "structures_create": "SIRET checksum; sub_kind depends on kind; latitude with longitude",
    "structures_update": "SIRET checksum; sub_kind depends on the stored kind",
    "candidates_create": "age window from today, and 16 or more on entered_at; structure "
    "and referrer of the right kind; one entry per certification",
    "candidates_update": "age window from today, and 16 or more on the stored entry; "
    "references of the right kind",
    "candidates_transition": "reason required by some moves; forced moves need a note",
    "vacancies_create": "landlord of the right kind; kind, contract and mission type agree; "
    "end after start; latitude with longitude",
    "vacancies_update": "kind, contract and mission type agree with the stored vacancy",
    "placements_create": "the candidate and the vacancy must exist; end after start",
    "placements_update": "end after start, with the stored dates",
    "placements_transition": "reason required to reject, withdraw or end",
    "placements_follow_up": "follow-ups only for started jobs, on or after their due day",
    "activities_create": "landlord of the right kind; end after start; occurred_on neither "
    "in the future nor before the entry into the path",
    "activities_update": "fields of the activity's own type only; end after start; "
    "occurred_on neither in the future nor before the entry into the path",
    "clients_create": "structure required by some roles, of the role's kind; scopes of the "
    "role; expires_at in the future",
    "clients_update": "scopes of the client's role",
    "matching_assign": "landlords named must exist and be landlords; vacancies named must "
    "exist, open and not full",
    "webhooks_create": "the callback's host must resolve, to a public address",
    "objectives_create": "the id or code field of the scope given, and no other",
    "objectives_update": "the id or code field of the stored scope",
    "objectives_progress": "as_of in the past",
    **dict.fromkeys(
        ("stats_funnel", "stats_outcomes", "stats_monthly"),
        "a period between 2000 and 2100, year or from/to, as_of in the past, known codes, "
        "a landlord_id that names a structure",
    ),
    "webhooks_update": "the callback's host must resolve, to a public address",
    # Opaque cursors: a string this server did not issue is refused.
    **dict.fromkeys(
        (
            "structures_list",
            "candidates_list",
            "candidates_history",
            "activities_list",
            "vacancies_list",
            "placements_list",
            "placements_history",
            "clients_list",
            "audit_list",
            "webhooks_list",
            "webhooks_deliveries",
            "objectives_list",
        ),
        "cursor is opaque",
    ),
}
# Bulk routes answer each item on its own, a schema-violating one included (as a failed
# item with the problem the single route gives): the batch itself is accepted by design.
ITEM_BY_ITEM = {
    "candidates_bulk": "items are validated one by one",
    "vacancies_bulk": "items are validated one by one",
}
# schemathesis' own list for schema-violating requests.
NEGATIVE_STATUSES = ["400", "401", "403", "404", "405", "406", "409", "415", "422", "428", "429"]
# schemathesis' own list, plus 412: a well-formed If-Match naming another version is
# refused by design (RFC 9110 13.1.1), whatever the payload.
POSITIVE_STATUSES = ["2xx", "3xx", "401", "403", "404", "409", "412", "429", "5xx"]
HOOKS = Path(__file__).with_name("schemathesis_hooks.py")


def _seeded_ids(server: LiveServer) -> dict[str, list[str]]:
    headers = {"Authorization": f"Bearer {server.admin_token}"}
    ids: dict[str, list[str]] = {}
    with httpx.Client(base_url=server.base_url, headers=headers, timeout=30) as http:
        for name, path in (
            ("structure", "/v1/structures"),
            ("candidate", "/v1/candidates"),
            ("vacancy", "/v1/vacancies"),
            ("placement", "/v1/placements"),
        ):
            response = http.get(path, params={"limit": 200})
            response.raise_for_status()
            ids[name] = [item["id"] for item in response.json()["items"]]
        landlords = http.get("/v1/structures", params={"kind": "landlord", "limit": 200})
        ids["landlord"] = [item["id"] for item in landlords.json()["items"]]
    return ids


def _toml(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)  # JSON scalars and arrays are valid TOML


def write_config(path: Path, server: LiveServer) -> None:
    ids = _seeded_ids(server)
    lines = [f"hooks = {_toml(str(HOOKS))}", "", "[checks.positive_data_acceptance]"]
    lines += [f"expected-statuses = {_toml(POSITIVE_STATUSES)}", "", "[dictionaries]"]
    for name, values in ids.items():
        lines.append(f"{name}_ids = {{ values = {_toml(values)} }}")
    lines += ["", "[parameters]", f'"client_id" = {_toml(server.spare_client_id)}']
    bindings = {
        "path.structure_id": "structure_ids",
        "path.candidate_id": "candidate_ids",
        "path.vacancy_id": "vacancy_ids",
        "path.placement_id": "placement_ids",
        "body.structure_id": "structure_ids",
        "body.landlord_id": "landlord_ids",
        "body.candidate_id": "candidate_ids",
        "body.vacancy_id": "vacancy_ids",
    }
    for key, dictionary in bindings.items():
        lines.append(f'"{key}" = {{ dictionary = "{dictionary}", probability = 0.5 }}')
    lines += [
        "",
        # Stateful links come from Location headers only. Links inferred from field names
        # take a reference from any item of a response, a null one included (an admin
        # client's structure_id), and send it as the text "None" in a path, a request no
        # client makes, which the API rightly refuses with 422.
        "[phases.stateful.inference]",
        'algorithms = ["location-headers"]',
        "",
        "[[operations]]",
        f"include-operation-id = {_toml(sorted(SEMANTIC_RULES))}",
        "checks.positive_data_acceptance.expected-statuses = " + _toml([*POSITIVE_STATUSES, "422"]),
        "",
        "[[operations]]",
        f"include-operation-id = {_toml(sorted(ITEM_BY_ITEM))}",
        # The batch is answered 200 with the failed item in it.
        "checks.negative_data_rejection.expected-statuses = " + _toml(["200", *NEGATIVE_STATUSES]),
    ]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


@pytest.fixture(scope="module", params=BACKENDS)
def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveServer]:
    if request.param == "postgresql":
        require_postgres()
    workdir = tmp_path_factory.mktemp(f"contract-{request.param}")
    with live_server(request.param, workdir) as running:
        yield running


def _summary(output: str) -> str:
    cases = re.search(r"(\d+) generated, (.*)", output)
    took = re.search(r" in ([\d.]+)s =+", output)
    return (
        f"{cases.group(1) if cases else '?'} cases ({cases.group(2) if cases else '?'})"
        f" in {took.group(1) if took else '?'} s"
    )


@pytest.mark.parametrize("role", ["admin", "insertion"])
def test_schemathesis_finds_no_failure(server: LiveServer, role: str, tmp_path: Path) -> None:
    config = tmp_path / "schemathesis.toml"
    write_config(config, server)
    token = server.admin_token if role == "admin" else server.insertion_token
    command = [
        sys.executable,
        "-m",
        "schemathesis.cli",
        "--config-file",
        str(config),
        "run",
        f"{server.base_url}/openapi.json",
        "--checks",
        "all",
        "--header",
        f"Authorization: Bearer {token}",
        "--max-examples",
        str(MAX_EXAMPLES),
        "--seed",
        str(SEED),
        "--workers",
        "1",
        "--generation-database",
        "none",
        "--no-color",
        "--warnings",
        "off",
    ]
    began = time.monotonic()
    result = subprocess.run(
        command,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT_S,
        check=False,
    )
    elapsed = time.monotonic() - began
    backend = "postgresql" if "postgresql" in str(server.log_file) else "sqlite"
    FIGURES.append(f"{backend}, {role}: {_summary(result.stdout)}; wall {elapsed:.0f} s")
    assert result.returncode == 0, (
        result.stdout[-20000:] + result.stderr[-5000:] + server.log_file.read_text()[-5000:]
    )
    assert not re.search(r"(?<![0-9])0 generated", result.stdout), "no case was generated"
