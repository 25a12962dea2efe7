"""The permission matrix, walked: every route x every role x every kind of caller.

Generated from app.services.permissions.OPERATIONS, so a route without an entry, or
an entry the service layer does not honour, fails here. For each (operation, role):
- own object: success if the role is granted, else 403;
- foreign object: success for an `all` grant, 404 for `own` (403 or 422 for creations
  that name a foreign parent), 403 if not granted;
- no token, an expired token, a revoked client: 401.
Reads also check the exact set of fields returned.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Awaitable, Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import httpx
import jwt
import pytest
from fastapi import FastAPI
from fastapi.routing import APIRoute
from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.domain.enums import Role
from app.domain.ids import uuid7
from app.domain.webhooks import DeliveryStatus
from app.models import Event, WebhookDelivery
from app.schemas.access import ApiClient, ApiClientCredentials, AuditEvent
from app.schemas.activities import Activity
from app.schemas.candidates import Candidate, CandidateReduced, CandidateReferral
from app.schemas.pathway import CandidateTransition, Pathway, PlacementMachine
from app.schemas.placements import Placement, PlacementTransition
from app.schemas.structures import Structure
from app.schemas.vacancies import Vacancy
from app.schemas.webhooks import Webhook, WebhookWithSecret
from app.services.permissions import OPERATIONS, PUBLIC_OPERATIONS, Access
from tests.conftest import (
    TEST_SIGNING_KEY,
    Credentials,
    create_api_client,
    get_token,
    http_client,
)
from tests.factories import (
    candidate_payload,
    job_payload,
    referral_payload,
    structure_payload,
    vacancy_payload,
)

ROLE_STRUCTURE = {
    Role.ADMIN: None,
    Role.INSERTION: "ins_own",
    Role.LANDLORD: "lan_own",
    Role.PRESCRIBER: "par_own",
    Role.OBSERVER: None,
}
CANDIDATE_VIEW = {
    Role.ADMIN: Candidate,
    Role.INSERTION: Candidate,
    Role.LANDLORD: CandidateReduced,  # nothing accepted in this world
    Role.PRESCRIBER: CandidateReferral,
}


def fields(model: type[BaseModel]) -> set[str]:
    return set(model.model_fields) | set(model.model_computed_fields)


class World:
    """Two of everything: one within the caller's tenancy, one outside it."""

    def __init__(
        self,
        admin: httpx.AsyncClient,
        app: FastAPI,
        sessionmaker: async_sessionmaker[AsyncSession],
    ) -> None:
        self.admin = admin
        self.app = app
        self.sessionmaker = sessionmaker
        self.ids: dict[str, str] = {}

    async def post(self, path: str, payload: dict[str, Any]) -> str:
        response = await self.admin.post(path, json=payload)
        assert response.status_code == 201, response.text
        return str(response.json()["id"])

    async def build(self) -> World:
        for side in ("own", "foreign"):
            self.ids[f"ins_{side}"] = await self.post(
                "/v1/structures", structure_payload("insertion")
            )
            self.ids[f"lan_{side}"] = await self.post(
                "/v1/structures", structure_payload("landlord")
            )
            self.ids[f"par_{side}"] = await self.post(
                "/v1/structures", structure_payload("partner")
            )
            self.ids[f"cand_{side}"] = await self.candidate(side)
            self.ids[f"vac_{side}"] = await self.vacancy(side)
            self.ids[f"pl_{side}"] = await self.post(
                "/v1/placements",
                {"candidate_id": self.ids[f"cand_{side}"], "vacancy_id": self.ids[f"vac_{side}"]},
            )
            self.ids[f"act_{side}"] = await self.post(
                f"/v1/candidates/{self.ids[f'cand_{side}']}/activities",
                {"type": "work_trial", "occurred_on": "2026-06-01", "outcome": "positive"},
            )
        return self

    async def started_hire(self, side: str) -> str:
        """A job placement started more than six months ago, due for its follow-up."""
        candidate = await self.candidate(side)
        for phase, day in (("support", "2024-01-10"), ("securing", "2024-01-20")):
            moved = await self.admin.post(
                f"/v1/candidates/{candidate}/transitions",
                json={
                    "to": phase,
                    "force": True,
                    "note": "set up for the permission matrix",
                    "effective_at": f"{day}T09:00:00Z",
                },
            )
            assert moved.status_code == 200, moved.text
        vacancy = await self.post("/v1/vacancies", job_payload(self.ids[f"lan_{side}"]))
        placement = await self.post(
            "/v1/placements",
            {
                "candidate_id": candidate,
                "vacancy_id": vacancy,
                "proposed_at": "2024-02-01T09:00:00Z",
            },
        )
        started = (date.today() - timedelta(days=200)).isoformat()
        for move in ({"to": "accepted", "on": "2024-02-02"}, {"to": "started", "on": started}):
            moved = await self.admin.post(f"/v1/placements/{placement}/transitions", json=move)
            assert moved.status_code == 200, moved.text
        return placement

    async def candidate(self, side: str) -> str:
        return await self.post(
            "/v1/candidates",
            candidate_payload(self.ids[f"ins_{side}"], referrer_id=self.ids[f"par_{side}"]),
        )

    async def vacancy(self, side: str) -> str:
        return await self.post("/v1/vacancies", vacancy_payload(self.ids[f"lan_{side}"]))

    async def structure(self) -> str:
        return await self.post("/v1/structures", structure_payload("insertion"))

    async def api_client(self) -> str:
        return await self.post("/v1/clients", {"name": "target", "role": "observer"})

    def as_role(self, role: Role, structure_id: str) -> RoleWriter:
        return RoleWriter(self, role, structure_id)

    async def delivery(self, webhook_id: str) -> str:
        """A delivery record to send again, written as the worker would have."""
        async with self.sessionmaker() as session:
            event = Event(
                id=uuid7(),
                type="candidate.deleted",
                subject_type="candidate",
                subject_id=uuid7(),
                payload={"candidate_id": str(uuid7())},
                position=None,
            )
            session.add(event)
            await session.flush()
            delivery = WebhookDelivery(
                id=uuid7(),
                subscription_id=uuid.UUID(webhook_id),
                event_id=event.id,
                event_type=event.type,
                position=0,
                body="{}",
                status=DeliveryStatus.DELIVERED,
            )
            session.add(delivery)
            await session.commit()
            return str(delivery.id)

    async def objective(self, side: str) -> str:
        """Own: the national objective, everybody's; foreign: one about another territory
        (every structure of this world is in département 76, observers too)."""
        key = f"obj_{side}"
        if key not in self.ids:
            scope = (
                {"scope": "national"}
                if side == "own"
                else {"scope": "departement", "departement": "69"}
            )
            self.ids[key] = await self.post(
                "/v1/objectives", {"year": 2016, "target": 100, **scope}
            )
        return self.ids[key]

    async def fresh_objective(self) -> str:
        return await self.post("/v1/objectives", self.objective_payload())

    def objective_payload(self) -> dict[str, Any]:
        self.years = getattr(self, "years", 2030) + 1
        return {"year": self.years, "target": 10, "scope": "national"}


class RoleWriter:
    """Posts as an API client of a role and structure (for objects owned per structure)."""

    def __init__(self, world: World, role: Role, structure_id: str) -> None:
        self.world, self.role, self.structure_id = world, role, structure_id

    async def post(self, path: str, payload: dict[str, Any]) -> str:
        credentials = await create_api_client(self.world.sessionmaker, self.role, self.structure_id)
        async with http_client(self.world.app) as anonymous:
            token = await get_token(anonymous, credentials)
        async with http_client(self.world.app, token) as http:
            response = await http.post(path, json=payload)
        assert response.status_code == 201, response.text
        return str(response.json()["id"])


@dataclass(frozen=True)
class Call:
    method: str
    path: str
    body: dict[str, Any] | None = None
    target: str | None = None  # id that a list must (own) or must not (foreign) contain


# How to call each operation on the own or foreign side. Creations that need a fresh
# object (deletes, placements) make it here, through the admin.
Builder = Callable[[World, str, Role], Awaitable[Call]]


async def _structures_list(w: World, side: str, role: Role) -> Call:
    return Call("GET", "/v1/structures?limit=200", target=w.ids[f"ins_{side}"])


async def _structures_get(w: World, side: str, role: Role) -> Call:
    return Call("GET", f"/v1/structures/{_structure_of(w, side, role)}")


async def _structures_create(w: World, side: str, role: Role) -> Call:
    return Call("POST", "/v1/structures", structure_payload("landlord"))


async def _structures_update(w: World, side: str, role: Role) -> Call:
    return Call("PATCH", f"/v1/structures/{_structure_of(w, side, role)}", {"name": "Renamed"})


async def _structures_delete(w: World, side: str, role: Role) -> Call:
    return Call("DELETE", f"/v1/structures/{await w.structure()}")


def _structure_of(w: World, side: str, role: Role) -> str:
    own = ROLE_STRUCTURE[role]
    if side == "own" and own is not None:
        return w.ids[own]
    return w.ids[f"ins_{side}"]


async def _candidates_list(w: World, side: str, role: Role) -> Call:
    return Call("GET", "/v1/candidates?limit=200", target=w.ids[f"cand_{side}"])


async def _candidates_get(w: World, side: str, role: Role) -> Call:
    return Call("GET", f"/v1/candidates/{w.ids[f'cand_{side}']}")


async def _candidates_create(w: World, side: str, role: Role) -> Call:
    if role is Role.PRESCRIBER:
        # A prescriber refers people to any insertion structure, in its own name only.
        referrer = None if side == "own" else w.ids["par_foreign"]
        return Call(
            "POST", "/v1/candidates", referral_payload(w.ids["ins_own"], referrer_id=referrer)
        )
    return Call("POST", "/v1/candidates", candidate_payload(w.ids[f"ins_{side}"]))


async def _candidates_update(w: World, side: str, role: Role) -> Call:
    return Call("PATCH", f"/v1/candidates/{w.ids[f'cand_{side}']}", {"max_commute_km": 12})


async def _candidates_delete(w: World, side: str, role: Role) -> Call:
    return Call("DELETE", f"/v1/candidates/{await w.candidate(side)}")


async def _vacancies_list(w: World, side: str, role: Role) -> Call:
    return Call("GET", "/v1/vacancies?limit=200", target=w.ids[f"vac_{side}"])


async def _vacancies_get(w: World, side: str, role: Role) -> Call:
    return Call("GET", f"/v1/vacancies/{w.ids[f'vac_{side}']}")


async def _vacancies_create(w: World, side: str, role: Role) -> Call:
    return Call("POST", "/v1/vacancies", vacancy_payload(w.ids[f"lan_{side}"]))


async def _vacancies_update(w: World, side: str, role: Role) -> Call:
    return Call("PATCH", f"/v1/vacancies/{w.ids[f'vac_{side}']}", {"title": "Gardien (H/F)"})


async def _vacancies_delete(w: World, side: str, role: Role) -> Call:
    return Call("DELETE", f"/v1/vacancies/{await w.vacancy(side)}")


async def _placements_list(w: World, side: str, role: Role) -> Call:
    return Call("GET", "/v1/placements?limit=200", target=w.ids[f"pl_{side}"])


async def _placements_get(w: World, side: str, role: Role) -> Call:
    return Call("GET", f"/v1/placements/{w.ids[f'pl_{side}']}")


async def _placements_create(w: World, side: str, role: Role) -> Call:
    body = {"candidate_id": await w.candidate(side), "vacancy_id": w.ids["vac_own"]}
    return Call("POST", "/v1/placements", body)


async def _placements_update(w: World, side: str, role: Role) -> Call:
    return Call("PATCH", f"/v1/placements/{w.ids[f'pl_{side}']}", {"notes": "Interview on Monday."})


async def _candidates_transition(w: World, side: str, role: Role) -> Call:
    return Call(
        "POST",
        f"/v1/candidates/{w.ids[f'cand_{side}']}/transitions",
        {"to": "exited", "reason": "dropped_out"},
    )


async def _candidates_history(w: World, side: str, role: Role) -> Call:
    return Call("GET", f"/v1/candidates/{w.ids[f'cand_{side}']}/history")


async def _pathway_get(w: World, side: str, role: Role) -> Call:
    return Call("GET", "/v1/pathway")


async def _activities_list(w: World, side: str, role: Role) -> Call:
    return Call("GET", f"/v1/candidates/{w.ids[f'cand_{side}']}/activities")


async def _activities_get(w: World, side: str, role: Role) -> Call:
    return Call("GET", f"/v1/candidates/{w.ids[f'cand_{side}']}/activities/{w.ids[f'act_{side}']}")


async def _activities_create(w: World, side: str, role: Role) -> Call:
    return Call(
        "POST",
        f"/v1/candidates/{w.ids[f'cand_{side}']}/activities",
        {"type": "project_evaluation", "occurred_on": "2026-06-15", "outcome": "positive"},
    )


async def _activities_update(w: World, side: str, role: Role) -> Call:
    return Call(
        "PATCH",
        f"/v1/candidates/{w.ids[f'cand_{side}']}/activities/{w.ids[f'act_{side}']}",
        {"notes": "Went well with the tenants."},
    )


# Each side of the placement moves its own way: the landlord accepts, the structure withdraws.
PLACEMENT_MOVE = {
    Role.LANDLORD: {"to": "accepted"},
    Role.INSERTION: {"to": "withdrawn", "reason": "candidate_declined"},
}


async def _placements_transition(w: World, side: str, role: Role) -> Call:
    body = PLACEMENT_MOVE.get(role, {"to": "accepted"})
    return Call("POST", f"/v1/placements/{w.ids[f'pl_{side}']}/transitions", body)


async def _placements_history(w: World, side: str, role: Role) -> Call:
    return Call("GET", f"/v1/placements/{w.ids[f'pl_{side}']}/history")


async def _placements_follow_up(w: World, side: str, role: Role) -> Call:
    if role not in OPERATIONS["placements_follow_up"].grants:
        return Call("POST", f"/v1/placements/{w.ids[f'pl_{side}']}/follow-ups", FOLLOW_UP)
    return Call("POST", f"/v1/placements/{await w.started_hire(side)}/follow-ups", FOLLOW_UP)


FOLLOW_UP = {"at": date.today().isoformat(), "in_post": True}


async def _vacancies_matches(w: World, side: str, role: Role) -> Call:
    return Call("GET", f"/v1/vacancies/{w.ids[f'vac_{side}']}/matches")


async def _candidates_matches(w: World, side: str, role: Role) -> Call:
    return Call("GET", f"/v1/candidates/{w.ids[f'cand_{side}']}/matches")


async def _matching_assign(w: World, side: str, role: Role) -> Call:
    return Call(
        "POST", "/v1/matching/assignments", {"scope": {"vacancy_ids": [w.ids[f"vac_{side}"]]}}
    )


async def _clients_list(w: World, side: str, role: Role) -> Call:
    return Call("GET", "/v1/clients?limit=200", target=await w.api_client())


async def _clients_get(w: World, side: str, role: Role) -> Call:
    return Call("GET", f"/v1/clients/{await w.api_client()}")


async def _clients_create(w: World, side: str, role: Role) -> Call:
    return Call("POST", "/v1/clients", {"name": "new", "role": "observer"})


async def _clients_update(w: World, side: str, role: Role) -> Call:
    return Call("PATCH", f"/v1/clients/{await w.api_client()}", {"name": "renamed"})


async def _clients_revoke(w: World, side: str, role: Role) -> Call:
    return Call("POST", f"/v1/clients/{await w.api_client()}/revoke")


async def _clients_rotate_secret(w: World, side: str, role: Role) -> Call:
    return Call("POST", f"/v1/clients/{await w.api_client()}/rotate-secret")


async def _audit_list(w: World, side: str, role: Role) -> Call:
    return Call("GET", "/v1/audit?limit=200")


async def _events_list(w: World, side: str, role: Role) -> Call:
    return Call("GET", "/v1/events?limit=1000")


async def _candidates_bulk(w: World, side: str, role: Role) -> Call:
    item = {**candidate_payload(w.ids[f"ins_{side}"]), "external_ref": f"bulk-{side}"}
    return Call("POST", "/v1/candidates/bulk", {"items": [item]})


async def _vacancies_bulk(w: World, side: str, role: Role) -> Call:
    item = {**vacancy_payload(w.ids[f"lan_{side}"]), "external_ref": f"bulk-{side}"}
    return Call("POST", "/v1/vacancies/bulk", {"items": [item]})


async def _pathway_placements(w: World, side: str, role: Role) -> Call:
    return Call("GET", "/v1/pathway/placements")


# Webhook subscriptions are the structure's own: the own side is made by an API client
# of the caller's role and structure, the foreign side by one of another structure.
WEBHOOK_URL = "https://8.8.8.8/hooks"


async def _webhook(w: World, side: str, role: Role) -> str:
    key = ROLE_STRUCTURE[role]
    if side == "own" and role in (Role.ADMIN, Role.OBSERVER):
        return await w.post("/v1/webhooks", {"url": WEBHOOK_URL})
    owner_role = role if role in ROLE_STRUCTURE and key is not None else Role.INSERTION
    structure = w.ids[(key or "ins_own").replace("_own", f"_{side}")]
    return await w.as_role(owner_role, structure).post("/v1/webhooks", {"url": WEBHOOK_URL})


async def _webhooks_list(w: World, side: str, role: Role) -> Call:
    return Call("GET", "/v1/webhooks?limit=200", target=await _webhook(w, side, role))


async def _webhooks_get(w: World, side: str, role: Role) -> Call:
    return Call("GET", f"/v1/webhooks/{await _webhook(w, side, role)}")


async def _webhooks_create(w: World, side: str, role: Role) -> Call:
    return Call("POST", "/v1/webhooks", {"url": WEBHOOK_URL})


async def _webhooks_update(w: World, side: str, role: Role) -> Call:
    return Call("PATCH", f"/v1/webhooks/{await _webhook(w, side, role)}", {"description": "x"})


async def _webhooks_delete(w: World, side: str, role: Role) -> Call:
    return Call("DELETE", f"/v1/webhooks/{await _webhook(w, side, role)}")


async def _webhooks_rotate_secret(w: World, side: str, role: Role) -> Call:
    return Call("POST", f"/v1/webhooks/{await _webhook(w, side, role)}/rotate-secret")


async def _webhooks_deliveries(w: World, side: str, role: Role) -> Call:
    return Call("GET", f"/v1/webhooks/{await _webhook(w, side, role)}/deliveries")


async def _webhooks_redeliver(w: World, side: str, role: Role) -> Call:
    webhook = await _webhook(w, side, role)
    delivery = await w.delivery(webhook)
    return Call("POST", f"/v1/webhooks/{webhook}/deliveries/{delivery}/redeliver")


async def _candidates_export(w: World, side: str, role: Role) -> Call:
    return Call("GET", f"/v1/candidates/{w.ids[f'cand_{side}']}/export")


async def _stats_funnel(w: World, side: str, role: Role) -> Call:
    return Call("GET", "/v1/stats/funnel")


async def _stats_outcomes(w: World, side: str, role: Role) -> Call:
    return Call("GET", "/v1/stats/outcomes?year=2024")


async def _stats_monthly(w: World, side: str, role: Role) -> Call:
    return Call("GET", "/v1/stats/monthly?year=2024")


async def _objectives_list(w: World, side: str, role: Role) -> Call:
    return Call("GET", "/v1/objectives?limit=200", target=await w.objective(side))


async def _objectives_get(w: World, side: str, role: Role) -> Call:
    return Call("GET", f"/v1/objectives/{await w.objective(side)}")


async def _objectives_create(w: World, side: str, role: Role) -> Call:
    return Call("POST", "/v1/objectives", w.objective_payload())


async def _objectives_update(w: World, side: str, role: Role) -> Call:
    return Call("PATCH", f"/v1/objectives/{await w.objective(side)}", {"target": 120})


async def _objectives_delete(w: World, side: str, role: Role) -> Call:
    return Call("DELETE", f"/v1/objectives/{await w.fresh_objective()}")


async def _objectives_progress(w: World, side: str, role: Role) -> Call:
    return Call("GET", f"/v1/objectives/{await w.objective(side)}/progress")


BUILDERS: dict[str, Builder] = {
    name.removeprefix("_"): fn
    for name, fn in list(globals().items())
    if name.startswith("_") and name.removeprefix("_") in OPERATIONS and callable(fn)
}

SUCCESS = {"GET": 200, "PATCH": 200, "DELETE": 204}
# Lists under a parent resource: a foreign parent is not found.
NESTED_LISTS = {"activities_list"}
# POSTs that act on an existing resource answer 200; the others create (201).
ACTIONS = {"_transition", "_revoke", "_rotate_secret", "_follow_up", "_assign", "_bulk"}
ACCEPTED = {"webhooks_redeliver"}
# Creating under a parent outside one's tenancy: refused as a role rule (403) when the
# caller names the parent outright, or as an unknown reference (422) when it names an
# object it cannot see.
FOREIGN_CREATE = {
    "candidates_create": 403,
    "vacancies_create": 403,
    "placements_create": 422,
    # A subscription is always the caller's own; bulk answers per item (403 inside).
    "webhooks_create": 201,
    "candidates_bulk": 200,
    "vacancies_bulk": 200,
}

READ_FIELDS: dict[str, Callable[[Role], set[str]]] = {
    "structures_list": lambda role: fields(Structure),
    "structures_get": lambda role: fields(Structure),
    "candidates_list": lambda role: fields(CANDIDATE_VIEW[role]),
    "candidates_get": lambda role: fields(CANDIDATE_VIEW[role]),
    "vacancies_list": lambda role: fields(Vacancy),
    "vacancies_get": lambda role: fields(Vacancy),
    "placements_list": lambda role: fields(Placement),
    "placements_get": lambda role: fields(Placement),
    "clients_list": lambda role: fields(ApiClient),
    "clients_get": lambda role: fields(ApiClient),
    "clients_rotate_secret": lambda role: fields(ApiClientCredentials),
    "audit_list": lambda role: fields(AuditEvent),
    "candidates_history": lambda role: fields(CandidateTransition),
    "pathway_get": lambda role: fields(Pathway),
    "activities_list": lambda role: fields(Activity),
    "activities_get": lambda role: fields(Activity),
    "placements_history": lambda role: fields(PlacementTransition),
    "placements_transition": lambda role: fields(Placement),
    "candidates_transition": lambda role: fields(Candidate),
    "webhooks_list": lambda role: fields(Webhook),
    "webhooks_get": lambda role: fields(Webhook),
    "webhooks_create": lambda role: fields(WebhookWithSecret),
    "webhooks_rotate_secret": lambda role: fields(WebhookWithSecret),
    "pathway_placements": lambda role: fields(PlacementMachine),
}


def success_status(operation: str, method: str) -> int:
    if method == "POST":
        if operation in ACCEPTED:
            return 202
        return 200 if operation.endswith(tuple(ACTIONS)) else 201
    return SUCCESS[method]


# Figures are scoped, never refused: outside one's share they count nobody.
SCOPED_FIGURES = {"stats_funnel", "stats_outcomes", "stats_monthly"}


def expected(operation: str, role: Role, side: str, method: str) -> int:
    grant = OPERATIONS[operation].grants.get(role)
    if grant is None:
        return 403
    if side == "own" or grant.access is Access.ALL or operation in SCOPED_FIGURES:
        return success_status(operation, method)
    if method == "POST" and operation in FOREIGN_CREATE:
        return FOREIGN_CREATE[operation]
    if operation.endswith("_list") and operation not in NESTED_LISTS:
        return 200  # a list scoped to the caller: the foreign object is just absent
    return 404


def api_routes(routes: Iterable[Any]) -> Iterator[APIRoute]:
    for route in routes:
        if isinstance(route, APIRoute):
            yield route
        elif hasattr(route, "original_router"):  # FastAPI's included routers
            yield from api_routes(route.original_router.routes)


def test_every_route_is_in_the_matrix(app: FastAPI) -> None:
    names = {route.name for route in api_routes(app.routes)}
    assert len(names) > 20
    missing = names - set(OPERATIONS) - PUBLIC_OPERATIONS
    assert not missing, f"routes without a permission entry: {sorted(missing)}"
    assert set(OPERATIONS) <= names, "matrix entries without a route"
    assert set(BUILDERS) == set(OPERATIONS), "every operation needs a call builder here"


async def _send(http: httpx.AsyncClient, call: Call) -> httpx.Response:
    return await http.request(call.method, call.path, json=call.body)


def _expired_token(token: str) -> str:
    claims = jwt.decode(token, options={"verify_signature": False})
    claims["iat"] = claims["nbf"] = int(time.time()) - 3600
    claims["exp"] = int(time.time()) - 60
    return jwt.encode(claims, TEST_SIGNING_KEY, algorithm="HS256")


MATRIX = [(op, role) for op in OPERATIONS for role in Role]


@pytest.mark.parametrize(("operation", "role"), MATRIX, ids=[f"{o}-{r.value}" for o, r in MATRIX])
async def test_matrix(
    client: httpx.AsyncClient,
    app: FastAPI,
    sessionmaker: async_sessionmaker[AsyncSession],
    operation: str,
    role: Role,
) -> None:
    world = await World(client, app, sessionmaker).build()
    structure_key = ROLE_STRUCTURE[role]
    structure_id = world.ids[structure_key] if structure_key else None
    territory = {"territory": "departement:76"} if role is Role.OBSERVER else {}
    credentials: Credentials = await create_api_client(
        sessionmaker, role, structure_id, **territory
    )
    async with http_client(app) as anonymous:
        token = await get_token(anonymous, credentials)
        build = BUILDERS[operation]

        for side in ("own", "foreign"):
            call = await build(world, side, role)
            async with http_client(app, token) as caller:
                response = await _send(caller, call)
            want = expected(operation, role, side, call.method)
            assert response.status_code == want, (side, response.text)
            if want >= 400:
                assert response.headers["content-type"] == "application/problem+json"
                continue
            if operation in READ_FIELDS and response.status_code == 200:
                body = response.json()
                items = body["items"] if "next_cursor" in body else [body]
                for item in items:
                    assert set(item) == READ_FIELDS[operation](role), item
            if call.target is not None:
                listed = {item["id"] for item in response.json()["items"]}
                grant = OPERATIONS[operation].grants[role]
                visible = side == "own" or grant.access is Access.ALL
                assert (call.target in listed) is visible, side

        # Whoever the role, a request without a valid token never gets through.
        call = await build(world, "own", role)
        no_token = await _send(anonymous, call)
        assert no_token.status_code == 401
        assert no_token.headers["www-authenticate"].startswith("Bearer")
        async with http_client(app, _expired_token(token)) as expired:
            assert (await _send(expired, await build(world, "own", role))).status_code == 401
        revoked = await client.post(f"/v1/clients/{credentials.client_id}/revoke")
        assert revoked.status_code == 200
        async with http_client(app, token) as caller:
            assert (await _send(caller, await build(world, "own", role))).status_code == 401
