"""The permission matrix: which role may call which operation, and on what.

Written once, here. The router layer refuses a role absent from an operation (403),
services scope their queries for OWN access (404 outside tenancy), docs/permissions.md
is rendered from this table, and the test matrix is generated from it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Final, Literal

from app.domain.enums import AuditAction, Role


class Access(StrEnum):
    ALL = "all"  # every object of the kind (within the note's limits)
    OWN = "own"  # objects within the caller's tenancy; others answer 404


@dataclass(frozen=True, slots=True)
class Grant:
    access: Access
    note: str = ""


@dataclass(frozen=True, slots=True)
class Operation:
    scope: str
    summary: str
    grants: dict[Role, Grant] = field(default_factory=dict)


ADM, INS, LAN, PRE = Role.ADMIN, Role.INSERTION, Role.LANDLORD, Role.PRESCRIBER
OBS = Role.OBSERVER
ALL, OWN = Grant(Access.ALL), Grant(Access.OWN, "their own structure")

_READ_STRUCTURES = {ADM: ALL, INS: ALL, LAN: ALL, PRE: ALL}
_READ_CANDIDATES = {
    ADM: ALL,
    INS: Grant(Access.OWN, "candidates their structure accompanies"),
    LAN: Grant(
        Access.OWN,
        "candidates proposed to their vacancies; reduced view, full while one of its "
        "placements for the person is accepted or started",
    ),
    PRE: Grant(Access.OWN, "people they referred; referral view (phase and outcome)"),
}
_READ_VACANCIES = {
    ADM: ALL,
    INS: Grant(Access.ALL, "published vacancies (not drafts)"),
    LAN: Grant(Access.OWN, "their structure's vacancies"),
}
_READ_PLACEMENTS = {
    ADM: ALL,
    INS: Grant(Access.OWN, "placements of their candidates"),
    LAN: Grant(
        Access.OWN, "placements on their vacancies, without the insertion structure's notes"
    ),
}
_ADMIN_ONLY = {ADM: ALL}
_READ_EVENTS = {
    ADM: ALL,
    INS: Grant(
        Access.OWN, "events of their candidates and what hangs off them; published vacancies"
    ),
    LAN: Grant(Access.OWN, "events of their vacancies and the placements on them"),
    PRE: Grant(Access.OWN, "events of the people they referred (not their path's records)"),
}
# A subscription delivers what its owner reads in the feed; each structure sees its own.
_WEBHOOKS = {
    ADM: ALL,
    INS: Grant(Access.OWN, "their structure's subscriptions; deliver what they read"),
    LAN: Grant(Access.OWN, "their structure's subscriptions; deliver what they read"),
    PRE: Grant(Access.OWN, "their structure's subscriptions; deliver what they read"),
}
_OWN_CANDIDATES = Grant(Access.OWN, "candidates their structure accompanies")
# Figures are aggregates; below admins, counts concerning few people are masked.
_FIGURES = {
    ADM: ALL,
    INS: Grant(Access.OWN, "their structure's people; small counts masked"),
    LAN: Grant(
        Access.OWN, "the people they hired and the hires on their vacancies; small counts masked"
    ),
    PRE: Grant(Access.OWN, "the people they referred; small counts masked"),
    OBS: Grant(Access.OWN, "everyone in their client's territory; small counts masked"),
}
_READ_OBJECTIVES = {
    ADM: ALL,
    INS: Grant(Access.OWN, "national ones, their territory's and their structure's"),
    LAN: Grant(Access.OWN, "national ones, their territory's and their structure's"),
    PRE: Grant(Access.OWN, "national ones and their territory's"),
    OBS: Grant(Access.OWN, "national ones and those within their client's territory"),
}
_OBJECTIVE_PROGRESS = {
    role: Grant(grant.access, grant.note + ("; small counts masked" if grant.note else ""))
    for role, grant in _READ_OBJECTIVES.items()
}

OPERATIONS: dict[str, Operation] = {
    "structures_list": Operation("structures:read", "List structures", _READ_STRUCTURES),
    "structures_get": Operation("structures:read", "Get a structure", _READ_STRUCTURES),
    "structures_create": Operation("structures:write", "Register a structure", _ADMIN_ONLY),
    "structures_update": Operation(
        "structures:write", "Update a structure", {ADM: ALL, INS: OWN, LAN: OWN, PRE: OWN}
    ),
    "structures_delete": Operation("structures:write", "Delete a structure", _ADMIN_ONLY),
    "candidates_list": Operation("candidates:read", "List candidates", _READ_CANDIDATES),
    "candidates_get": Operation("candidates:read", "Get a candidate", _READ_CANDIDATES),
    "candidates_create": Operation(
        "candidates:write",
        "Register or refer a candidate",
        {
            ADM: ALL,
            INS: Grant(Access.OWN, "for their own structure"),
            PRE: Grant(Access.OWN, "a referral to an insertion structure, as the referrer"),
        },
    ),
    "candidates_update": Operation(
        "candidates:write",
        "Update a candidate",
        {ADM: ALL, INS: Grant(Access.OWN, "candidates their structure accompanies")},
    ),
    "candidates_delete": Operation(
        "candidates:write",
        "Erase a candidate",
        {ADM: ALL, INS: Grant(Access.OWN, "candidates their structure accompanies")},
    ),
    "vacancies_list": Operation("vacancies:read", "List vacancies", _READ_VACANCIES),
    "vacancies_get": Operation("vacancies:read", "Get a vacancy", _READ_VACANCIES),
    "vacancies_create": Operation(
        "vacancies:write",
        "Post a vacancy",
        {ADM: ALL, LAN: Grant(Access.OWN, "for their structure")},
    ),
    "vacancies_update": Operation(
        "vacancies:write",
        "Update a vacancy",
        {ADM: ALL, LAN: Grant(Access.OWN, "their structure's vacancies")},
    ),
    "vacancies_delete": Operation(
        "vacancies:write",
        "Delete a vacancy",
        {ADM: ALL, LAN: Grant(Access.OWN, "their structure's vacancies")},
    ),
    "placements_list": Operation("placements:read", "List placements", _READ_PLACEMENTS),
    "placements_get": Operation("placements:read", "Get a placement", _READ_PLACEMENTS),
    "placements_create": Operation(
        "placements:write",
        "Propose a candidate",
        {ADM: ALL, INS: Grant(Access.OWN, "their candidates, for published vacancies")},
    ),
    "placements_update": Operation(
        "placements:write",
        "Update a placement's dates and notes",
        {ADM: ALL, INS: Grant(Access.OWN, "placements of their candidates")},
    ),
    "candidates_transition": Operation(
        "candidates:write",
        "Move a candidate along the path",
        {ADM: Grant(Access.ALL, "may force a transition whose guard fails"), INS: _OWN_CANDIDATES},
    ),
    "candidates_history": Operation(
        "candidates:read",
        "Read a candidate's path history",
        {
            ADM: ALL,
            INS: _OWN_CANDIDATES,
            PRE: Grant(Access.OWN, "people they referred; without notes or author ids"),
        },
    ),
    "pathway_get": Operation(
        "pathway:read",
        "Read the path's state machine",
        dict.fromkeys(Role, ALL),
    ),
    "activities_list": Operation(
        "activities:read", "List a candidate's activities", {ADM: ALL, INS: _OWN_CANDIDATES}
    ),
    "activities_get": Operation(
        "activities:read", "Get an activity", {ADM: ALL, INS: _OWN_CANDIDATES}
    ),
    "activities_create": Operation(
        "activities:write", "Record an activity", {ADM: ALL, INS: _OWN_CANDIDATES}
    ),
    "activities_update": Operation(
        "activities:write", "Correct an activity", {ADM: ALL, INS: _OWN_CANDIDATES}
    ),
    "placements_transition": Operation(
        "placements:write",
        "Move a placement",
        {
            ADM: ALL,
            INS: Grant(Access.OWN, "withdraw, start, complete, end their candidates' placements"),
            LAN: Grant(Access.OWN, "interview, accept, reject placements on their vacancies"),
        },
    ),
    "placements_history": Operation(
        "placements:read",
        "Read a placement's history",
        {
            **_READ_PLACEMENTS,
            LAN: Grant(
                Access.OWN,
                "placements on their vacancies: moves, dates and reasons; the notes and "
                "client ids of moves they did not make are hidden",
            ),
        },
    ),
    "placements_follow_up": Operation(
        "placements:write",
        "Record a hire's 6- or 12-month follow-up",
        {ADM: ALL, INS: Grant(Access.OWN, "placements of their candidates")},
    ),
    "vacancies_matches": Operation(
        "matching:read",
        "Rank candidates for a vacancy",
        {
            ADM: ALL,
            INS: Grant(Access.ALL, "published vacancies; only their own candidates ranked"),
            LAN: Grant(
                Access.OWN,
                "their published vacancies: the people proposed to it, in their view, and "
                "counts of the others by score band; distances as bands",
            ),
        },
    ),
    "candidates_matches": Operation(
        "matching:read",
        "Rank open vacancies for a candidate",
        {ADM: ALL, INS: _OWN_CANDIDATES},
    ),
    "matching_assign": Operation(
        "matching:assign",
        "Compute the best pairing in a territory (optionally as proposals)",
        _ADMIN_ONLY,
    ),
    "clients_list": Operation("clients:admin", "List API clients", _ADMIN_ONLY),
    "clients_get": Operation("clients:admin", "Get an API client", _ADMIN_ONLY),
    "clients_create": Operation("clients:admin", "Create an API client", _ADMIN_ONLY),
    "clients_update": Operation("clients:admin", "Update an API client", _ADMIN_ONLY),
    "clients_revoke": Operation("clients:admin", "Revoke an API client", _ADMIN_ONLY),
    "clients_rotate_secret": Operation(
        "clients:admin", "Rotate an API client's secret", _ADMIN_ONLY
    ),
    "audit_list": Operation("audit:read", "Read the audit journal", _ADMIN_ONLY),
    "events_list": Operation("events:read", "Read the change feed", _READ_EVENTS),
    "webhooks_list": Operation("webhooks:manage", "List webhook subscriptions", _WEBHOOKS),
    "webhooks_get": Operation("webhooks:manage", "Get a webhook subscription", _WEBHOOKS),
    "webhooks_create": Operation(
        "webhooks:manage", "Subscribe an endpoint to the events one may read", _WEBHOOKS
    ),
    "webhooks_update": Operation(
        "webhooks:manage", "Change or re-enable a webhook subscription", _WEBHOOKS
    ),
    "webhooks_delete": Operation("webhooks:manage", "Delete a webhook subscription", _WEBHOOKS),
    "webhooks_rotate_secret": Operation(
        "webhooks:manage", "Rotate a webhook subscription's signing secret", _WEBHOOKS
    ),
    "webhooks_deliveries": Operation(
        "webhooks:manage", "List a subscription's deliveries and their attempts", _WEBHOOKS
    ),
    "webhooks_redeliver": Operation("webhooks:manage", "Deliver an event again", _WEBHOOKS),
    "candidates_bulk": Operation(
        "candidates:write",
        "Create or update up to 1,000 candidates by external reference",
        {ADM: ALL, INS: Grant(Access.OWN, "for their own structure")},
    ),
    "vacancies_bulk": Operation(
        "vacancies:write",
        "Create or update up to 1,000 vacancies by external reference",
        {ADM: ALL, LAN: Grant(Access.OWN, "for their structure")},
    ),
    "pathway_placements": Operation(
        "pathway:read", "Read the placement state machine", dict.fromkeys(Role, ALL)
    ),
    "candidates_export": Operation(
        "candidates:export",
        "Export everything held about a person (journaled)",
        {ADM: ALL, INS: _OWN_CANDIDATES},
    ),
    "stats_funnel": Operation("stats:read", "Read the path's funnel", _FIGURES),
    "stats_outcomes": Operation("stats:read", "Read hires, retention and training", _FIGURES),
    "stats_monthly": Operation("stats:read", "Read entries and hires by month", _FIGURES),
    "objectives_list": Operation("objectives:read", "List objectives", _READ_OBJECTIVES),
    "objectives_get": Operation("objectives:read", "Get an objective", _READ_OBJECTIVES),
    "objectives_create": Operation("objectives:write", "Set an objective", _ADMIN_ONLY),
    "objectives_update": Operation("objectives:write", "Change an objective", _ADMIN_ONLY),
    "objectives_delete": Operation("objectives:write", "Delete an objective", _ADMIN_ONLY),
    "objectives_progress": Operation(
        "stats:read", "Read an objective's progress", _OBJECTIVE_PROGRESS
    ),
}

# What the audit journal records of each operation: the action of its rows (one row
# per person whose data it returns or changes, written in the request's own
# transaction), or NOT_PERSONAL when it touches nobody's data. Every operation is
# classified here: tests/test_journal.py fails on an operation missing from this table
# and calls each one to check its rows, so a new route cannot escape the journal.
NOT_PERSONAL: Final = "none"
Journal = AuditAction | Literal["none"]
_R, _L, _C, _U, _D = (
    AuditAction.READ,
    AuditAction.LIST,
    AuditAction.CREATE,
    AuditAction.UPDATE,
    AuditAction.DELETE,
)
JOURNAL: dict[str, Journal] = {
    "structures_list": NOT_PERSONAL,
    "structures_get": NOT_PERSONAL,
    "structures_create": NOT_PERSONAL,
    "structures_update": NOT_PERSONAL,
    "structures_delete": NOT_PERSONAL,
    "candidates_list": _L,
    "candidates_get": _R,
    "candidates_create": _C,
    "candidates_update": _U,
    "candidates_delete": _D,
    "vacancies_list": NOT_PERSONAL,
    "vacancies_get": NOT_PERSONAL,
    "vacancies_create": NOT_PERSONAL,
    "vacancies_update": NOT_PERSONAL,
    "vacancies_delete": NOT_PERSONAL,
    "placements_list": _L,
    "placements_get": _R,
    "placements_create": _C,
    "placements_update": _U,
    "candidates_transition": _U,
    "candidates_history": _R,
    "pathway_get": NOT_PERSONAL,
    "activities_list": _L,
    "activities_get": _R,
    "activities_create": _U,
    "activities_update": _U,
    "placements_transition": _U,
    "placements_history": _R,
    "placements_follow_up": _U,
    # One row per person named in the ranking; the counts given of the others name no one.
    "vacancies_matches": _L,
    "candidates_matches": _R,
    # One row per person paired (and a creation row per proposal made).
    "matching_assign": _L,
    # API clients are organisations' credentials, not people.
    "clients_list": NOT_PERSONAL,
    "clients_get": NOT_PERSONAL,
    "clients_create": NOT_PERSONAL,
    "clients_update": NOT_PERSONAL,
    "clients_revoke": NOT_PERSONAL,
    "clients_rotate_secret": NOT_PERSONAL,
    # The journal names people by id only and is itself the record of access; reading
    # it is not journaled (each read would add rows to what it reads).
    "audit_list": NOT_PERSONAL,
    # What happened to people, by id: journaled one row per person named in the page.
    "events_list": _L,
    # Subscriptions and their attempts name events, not people.
    "webhooks_list": NOT_PERSONAL,
    "webhooks_get": NOT_PERSONAL,
    "webhooks_create": NOT_PERSONAL,
    "webhooks_update": NOT_PERSONAL,
    "webhooks_delete": NOT_PERSONAL,
    "webhooks_rotate_secret": NOT_PERSONAL,
    "webhooks_deliveries": NOT_PERSONAL,
    "webhooks_redeliver": NOT_PERSONAL,
    # Each item goes through candidates_create or candidates_update and is journaled as
    # that (creation or update).
    "candidates_bulk": _C,
    "vacancies_bulk": NOT_PERSONAL,
    "pathway_placements": NOT_PERSONAL,
    # Everything held about the person, and who accessed it: a read, journaled as such.
    "candidates_export": _R,
    # Figures and objectives are aggregates, masked below the threshold: nobody's data.
    "stats_funnel": NOT_PERSONAL,
    "stats_outcomes": NOT_PERSONAL,
    "stats_monthly": NOT_PERSONAL,
    "objectives_list": NOT_PERSONAL,
    "objectives_get": NOT_PERSONAL,
    "objectives_create": NOT_PERSONAL,
    "objectives_update": NOT_PERSONAL,
    "objectives_delete": NOT_PERSONAL,
    "objectives_progress": NOT_PERSONAL,
}

# Operations anyone may call without a token.
PUBLIC_OPERATIONS = frozenset({"health_live", "health_ready", "oauth_token"})

ALL_SCOPES: tuple[str, ...] = tuple(sorted({op.scope for op in OPERATIONS.values()}))


def default_scopes(role: Role) -> frozenset[str]:
    """Every scope an operation open to the role needs."""
    return frozenset(op.scope for op in OPERATIONS.values() if role in op.grants)


def grant(operation: str, role: Role) -> Grant | None:
    return OPERATIONS[operation].grants.get(role)


def render_markdown() -> str:
    """docs/permissions.md, generated from OPERATIONS (python -m app permissions-doc)."""
    roles = list(Role)
    lines = [
        "# Permissions",
        "",
        "Generated from `app/services/permissions.py` by `make docs`; do not edit by hand.",
        "",
        "`all`: any object; `own`: objects within the caller's tenancy (others answer 404);",
        "`-`: the role may not use the operation (403). Every operation also needs its scope.",
        "Without a valid token every operation answers 401, except "
        + ", ".join(f"`{name}`" for name in sorted(PUBLIC_OPERATIONS))
        + ".",
        "",
        "`journal`: what the audit journal records, one row per person whose data the",
        "operation returns or changes (`none`: no personal data).",
        "",
        "| operation | scope | journal | " + " | ".join(r.value for r in roles) + " |",
        "| --- | --- | --- | " + " | ".join("---" for _ in roles) + " |",
    ]
    notes: list[str] = []
    for name, op in OPERATIONS.items():
        cells = []
        for role in roles:
            g = op.grants.get(role)
            if g is None:
                cells.append("-")
                continue
            cell = g.access.value
            if g.note:
                notes.append(f"- `{name}`, {role.value}: {g.note}.")
                cell += f" [{len(notes)}]"
            cells.append(cell)
        journal = JOURNAL.get(name, "unclassified")
        lines.append(f"| `{name}` | `{op.scope}` | {journal} | " + " | ".join(cells) + " |")
    lines += ["", "Notes:", ""]
    lines += [f"{i}. {note[2:]}" for i, note in enumerate(notes, start=1)]
    lines += [
        "",
        "Observers get aggregated statistics only (the stats operations and objectives, within",
        "their client's territory), and the path's state machine (no personal data).",
        "",
    ]
    return "\n".join(lines)
