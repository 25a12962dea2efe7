"""The placement state machine, as one table: who may move a placement where.

proposed -> interview -> accepted -> started -> completed (missions) / ended (jobs),
with rejected (by the landlord), withdrawn (by the candidate's structure) and expired
(unanswered proposals, closed by a command) as exits (DOMAIN.md, "Placements").
"""

from __future__ import annotations

from dataclasses import dataclass

from app.domain.enums import Phase, PlacementStatus, Role, VacancyKind

# Which phases may take which kind of vacancy (DOMAIN.md): the proposal, acceptance and
# start rules, and matching's phase filter, all read this.
PHASES_FOR_KIND: dict[VacancyKind, tuple[Phase, ...]] = {
    VacancyKind.MISSION: (Phase.RECRUITMENT, Phase.SUPPORT),
    VacancyKind.JOB: (Phase.SECURING,),
}

P = PlacementStatus
LANDLORD_SIDE = frozenset({Role.ADMIN, Role.LANDLORD})
STRUCTURE_SIDE = frozenset({Role.ADMIN, Role.INSERTION})


@dataclass(frozen=True, slots=True)
class PlacementMove:
    roles: frozenset[Role]
    reason_required: bool = False
    kinds: frozenset[VacancyKind] = frozenset(VacancyKind)


_REJECT = PlacementMove(LANDLORD_SIDE, reason_required=True)
_WITHDRAW = PlacementMove(STRUCTURE_SIDE, reason_required=True)
# Only the expiry command closes a proposal as expired; no role does it by hand.
_EXPIRE = PlacementMove(frozenset())

PLACEMENT_MACHINE: dict[PlacementStatus, dict[PlacementStatus, PlacementMove]] = {
    P.PROPOSED: {
        P.INTERVIEW: PlacementMove(LANDLORD_SIDE),
        P.ACCEPTED: PlacementMove(LANDLORD_SIDE),
        P.REJECTED: _REJECT,
        P.WITHDRAWN: _WITHDRAW,
        P.EXPIRED: _EXPIRE,
    },
    P.INTERVIEW: {
        P.ACCEPTED: PlacementMove(LANDLORD_SIDE),
        P.REJECTED: _REJECT,
        P.WITHDRAWN: _WITHDRAW,
        P.EXPIRED: _EXPIRE,
    },
    P.ACCEPTED: {
        P.STARTED: PlacementMove(STRUCTURE_SIDE),
        P.REJECTED: _REJECT,
        P.WITHDRAWN: _WITHDRAW,
    },
    P.STARTED: {
        P.COMPLETED: PlacementMove(STRUCTURE_SIDE, kinds=frozenset({VacancyKind.MISSION})),
        P.ENDED: PlacementMove(
            STRUCTURE_SIDE, reason_required=True, kinds=frozenset({VacancyKind.JOB})
        ),
    },
    P.COMPLETED: {},
    P.ENDED: {},
    P.REJECTED: {},
    P.WITHDRAWN: {},
    P.EXPIRED: {},
}

# Statuses from which the expiry command closes a proposal.
EXPIRABLE = (P.PROPOSED, P.INTERVIEW)


def move(current: PlacementStatus, target: PlacementStatus) -> PlacementMove | None:
    return PLACEMENT_MACHINE[current].get(target)


def allowed_moves(current: PlacementStatus, role: Role, kind: VacancyKind) -> list[PlacementStatus]:
    return [
        target
        for target, rule in PLACEMENT_MACHINE[current].items()
        if role in rule.roles and kind in rule.kinds
    ]
