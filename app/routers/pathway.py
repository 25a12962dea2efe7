from __future__ import annotations

from fastapi import APIRouter

from app.domain.enums import POSITION_HOLDING_STATUSES, Phase, PlacementStatus
from app.domain.pathway import ACTIVITY_PHASE, END_STATES, MACHINE, requirements
from app.domain.placement_machine import EXPIRABLE, PHASES_FOR_KIND, PLACEMENT_MACHINE
from app.routers.deps import ApiRoute, AppSettings
from app.schemas.pathway import (
    GuardDescription,
    Pathway,
    PathwayThresholds,
    PathwayTransition,
    PlacementMachine,
    PlacementMoveDescription,
)
from app.services.pathway import thresholds

router = APIRouter(prefix="/v1/pathway", tags=["pathway"], route_class=ApiRoute)


@router.get(
    "",
    name="pathway_get",
    summary="The path's state machine: phases, transitions, requirements, thresholds",
)
async def get(settings: AppSettings) -> Pathway:
    limits = thresholds(settings)
    transitions = [
        PathwayTransition(
            from_phase=origin,
            to_phase=target,
            description=rule.description,
            requirements=[
                GuardDescription(code=u.code, description=u.requirement)
                for u in requirements(origin, target, limits)
            ],
            reasons=sorted(rule.reasons),
            via_placement_only=rule.via_placement_only,
        )
        for origin, targets in MACHINE.items()
        for target, rule in targets.items()
    ]
    return Pathway(
        phases=list(Phase),
        initial=Phase.RECRUITMENT,
        terminal=list(END_STATES),
        transitions=transitions,
        thresholds=PathwayThresholds(
            min_training_hours=limits.min_training_hours,
            min_positive_trials=limits.min_positive_trials,
            min_positive_skills_assessments=limits.min_positive_skills_assessments,
            min_completed_work_missions=limits.min_completed_work_missions,
        ),
        activity_phases={t.value: p for t, p in ACTIVITY_PHASE.items()},
    )


@router.get(
    "/placements",
    name="pathway_placements",
    summary="The placement state machine: statuses, moves, who makes them, for which kinds",
)
async def placement_machine(settings: AppSettings) -> PlacementMachine:
    moves = [
        PlacementMoveDescription(
            from_status=origin,
            to_status=target,
            roles=sorted(rule.roles),
            reason_required=rule.reason_required,
            kinds=sorted(rule.kinds),
        )
        for origin, targets in PLACEMENT_MACHINE.items()
        for target, rule in targets.items()
    ]
    return PlacementMachine(
        statuses=list(PlacementStatus),
        initial=PlacementStatus.PROPOSED,
        terminal=[s for s, targets in PLACEMENT_MACHINE.items() if not targets],
        moves=moves,
        position_holding=list(POSITION_HOLDING_STATUSES),
        phases_for_kind={kind: list(phases) for kind, phases in PHASES_FOR_KIND.items()},
        expirable=list(EXPIRABLE),
        proposal_expiry_days=settings.proposal_expiry_days,
    )
