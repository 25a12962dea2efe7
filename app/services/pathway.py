"""Path transitions of candidates: guards, history and events in one transaction."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, case, exists, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.config import Settings
from app.domain.enums import (
    OPEN_PLACEMENT_STATUSES,
    ActivityOutcome,
    ActivityType,
    AuditAction,
    MissionType,
    Phase,
    PlacementStatus,
    Role,
    TransitionReason,
    VacancyKind,
)
from app.domain.pathway import (
    MACHINE,
    TRIAL_TYPES,
    PathSnapshot,
    Thresholds,
    allowed_targets,
    unmet_for,
)
from app.errors import Conflict, Forbidden, NotFound, ValidationFailed, field_error
from app.models import Activity, Candidate, CandidateTransition, Placement, Vacancy
from app.models.base import utcnow
from app.schemas.events import CandidatePhaseChanged
from app.schemas.pathway import TransitionRequest
from app.services import audit, dates, events, tenancy, visibility
from app.services.auth import Actor
from app.services.common import PageRequest, check_version, flush, for_update, paginate


class TransitionNotAllowed(Conflict):
    slug, title = "transition-not-allowed", "No such transition from the current phase"


class TransitionRefused(Conflict):
    slug, title = "transition-refused", "The transition's requirements are not met"


def thresholds(settings: Settings) -> Thresholds:
    return Thresholds(
        min_training_hours=settings.pathway_min_training_hours,
        min_positive_trials=settings.pathway_min_positive_trials,
        min_positive_skills_assessments=settings.pathway_min_positive_skills_assessments,
        min_completed_work_missions=settings.pathway_min_completed_work_missions,
    )


async def snapshot(session: AsyncSession, candidate_id: uuid.UUID) -> PathSnapshot:
    """What the guards need, in two aggregate queries."""
    positive = Activity.outcome == ActivityOutcome.POSITIVE

    def count_positive(*types: ActivityType) -> ColumnElement[int]:
        return func.coalesce(func.sum(case((Activity.type.in_(types) & positive, 1), else_=0)), 0)

    row = (
        await session.execute(
            select(
                count_positive(*TRIAL_TYPES).label("trials"),
                count_positive(ActivityType.PROJECT_EVALUATION).label("evaluations"),
                func.coalesce(
                    func.sum(case((Activity.type == ActivityType.TRAINING, Activity.hours))), 0
                ).label("training_hours"),
                count_positive(ActivityType.SKILLS_ASSESSMENT).label("assessments"),
                count_positive(ActivityType.WORK_MISSION).label("work_missions"),
            ).where(Activity.candidate_id == candidate_id)
        )
    ).one()
    # Missions done as placements count like the activities that record them.
    missions: dict[Any, int] = dict(
        (
            await session.execute(
                select(Vacancy.mission_type, func.count())
                .select_from(Placement)
                .join(Vacancy, Vacancy.id == Placement.vacancy_id)
                .where(
                    Placement.candidate_id == candidate_id,
                    Placement.status == PlacementStatus.COMPLETED,
                )
                .group_by(Vacancy.mission_type)
            )
        ).all()
    )
    started_job = await session.scalar(
        select(
            exists().where(
                Placement.candidate_id == candidate_id,
                Placement.status == PlacementStatus.STARTED,
                Placement.vacancy_kind == VacancyKind.JOB,
            )
        )
    )
    return PathSnapshot(
        positive_trials=int(row.trials)
        + missions.get(MissionType.TEST_MISSION, 0)
        + missions.get(MissionType.REPLACEMENT, 0),
        project_validated=int(row.evaluations) > 0,
        training_hours=float(row.training_hours),
        positive_skills_assessments=int(row.assessments),
        completed_work_missions=int(row.work_missions) + missions.get(MissionType.WORK_MISSION, 0),
        started_job_placement=bool(started_job),
    )


async def lock_candidate(session: AsyncSession, actor: Actor, candidate_id: uuid.UUID) -> Candidate:
    """The candidate row, locked for this transaction (PostgreSQL; SQLite's writers are
    already serialised by BEGIN IMMEDIATE), if the caller may see it."""
    candidate = await session.scalar(
        for_update(select(Candidate).where(Candidate.id == candidate_id, tenancy.candidates(actor)))
    )
    if candidate is None:
        raise NotFound("No candidate with this id.")
    return candidate


async def lock_people(session: AsyncSession, *where: Any) -> Sequence[Candidate]:
    """The people, locked in the order every mover takes (their open placements, those
    placements' vacancies, then the people, each in id order), so that a change to the
    people and their placements together (an exit, an erasure) never deadlocks with a
    placement move."""
    people = select(Candidate.id).where(*where)
    held = (
        await session.scalars(
            for_update(
                select(Placement)
                .where(
                    Placement.candidate_id.in_(people),
                    Placement.status.in_(OPEN_PLACEMENT_STATUSES),
                )
                .order_by(Placement.id)
            )
        )
    ).all()
    if held:
        await session.execute(
            for_update(
                select(Vacancy)
                .where(Vacancy.id.in_({p.vacancy_id for p in held}))
                .order_by(Vacancy.id)
            )
        )
    return (
        await session.scalars(for_update(select(Candidate).where(*where).order_by(Candidate.id)))
    ).all()


async def open_span(session: AsyncSession, candidate_id: uuid.UUID) -> CandidateTransition | None:
    """The person's latest move: the one whose phase has not ended (None before the entry)."""
    return await session.scalar(
        select(CandidateTransition).where(
            CandidateTransition.candidate_id == candidate_id,
            CandidateTransition.ended_at.is_(None),
        )
    )


async def entered_at(session: AsyncSession, candidate_id: uuid.UUID) -> datetime | None:
    """When the person's path began (their entry row)."""
    return await session.scalar(
        select(CandidateTransition.at).where(
            CandidateTransition.candidate_id == candidate_id,
            CandidateTransition.from_phase.is_(None),
        )
    )


async def _append(
    session: AsyncSession,
    candidate: Candidate,
    origin: Phase | None,
    target: Phase,
    actor: Actor,
    *,
    at: datetime | None,
    reason: TransitionReason | None,
    note: str | None,
    forced: bool,
) -> CandidateTransition:
    """Append one history row, closing the span of the move before it.

    Callers have checked `at` against the previous move; this holds the order anyway."""
    now = utcnow()
    effective = at or now
    previous = await open_span(session, candidate.id)
    if previous is not None:
        assert effective >= previous.at, "moves are appended in order"
        previous.ended_at = effective
        previous.ended_recorded_at = now
        await flush(session)  # closed before the next one opens (one open span each)
    reached_before = await session.scalar(
        select(
            exists().where(
                CandidateTransition.candidate_id == candidate.id,
                CandidateTransition.to_phase == target,
            )
        )
    )
    candidate.phase = target
    candidate.phase_changed_at = effective
    record = CandidateTransition(
        candidate_id=candidate.id,
        from_phase=origin,
        to_phase=target,
        at=effective,
        recorded_at=now,
        actor_kind=actor.kind,
        actor_id=actor.id,
        actor_role=actor.role,
        reason=reason,
        note=note,
        forced=forced,
        first_reach=not reached_before,
        entered_at=previous.entered_at if previous is not None else effective,
    )
    session.add(record)
    return record


async def record_entry(
    session: AsyncSession, candidate: Candidate, actor: Actor, at: datetime | None
) -> CandidateTransition:
    """The path's start, as the first history row: every figure counts from it."""
    record = await _append(
        session,
        candidate,
        None,
        Phase.RECRUITMENT,
        actor,
        at=at,
        reason=None,
        note=None,
        forced=False,
    )
    await flush(session)
    return record


async def set_phase(
    session: AsyncSession,
    candidate: Candidate,
    target: Phase,
    actor: Actor,
    *,
    reason: TransitionReason | None,
    note: str | None,
    forced: bool,
    at: datetime | None = None,
) -> CandidateTransition:
    """The only writer of `phase`: the state, its history row and its event, together.

    `at`: when the move took effect (default now), already checked by the caller."""
    origin = candidate.phase
    record = await _append(
        session,
        candidate,
        origin,
        target,
        actor,
        at=at,
        reason=reason,
        note=note,
        forced=forced,
    )
    events.emit(
        session,
        CandidatePhaseChanged(
            candidate_id=candidate.id,
            structure_id=candidate.structure_id,
            from_phase=origin,
            to_phase=target,
            reason=reason,
            forced=forced,
            at=record.at,
        ),
        events.candidate_audience(candidate),
    )
    await flush(session)
    return record


async def check_move_at(
    session: AsyncSession, candidate: Candidate, at: datetime, loc: Sequence[str]
) -> None:
    """A path move dated `at`: not in the future, not before the person's previous move."""
    dates.not_in_future(at, loc)
    previous = await open_span(session, candidate.id)
    if previous is not None:
        dates.not_before(at, previous.at, loc, "the person's previous transition")


async def transition(
    session: AsyncSession,
    actor: Actor,
    settings: Settings,
    candidate_id: uuid.UUID,
    data: TransitionRequest,
    expected_versions: frozenset[int] | None,
) -> Candidate:
    if data.force and actor.role is not Role.ADMIN:
        raise Forbidden("Only a national administrator may force a transition.")
    if data.to is Phase.EXITED:
        # Leaving withdraws the person's placements not yet started: their rows first.
        found = await lock_people(session, Candidate.id == candidate_id, tenancy.candidates(actor))
        if not found:
            raise NotFound("No candidate with this id.")
        candidate = found[0]
    else:
        candidate = await lock_candidate(session, actor, candidate_id)
    check_version(candidate.version, expected_versions)
    limits = thresholds(settings)
    state = await snapshot(session, candidate.id)
    allowed = [p.value for p in allowed_targets(candidate.phase, state, limits)]
    rule = MACHINE[candidate.phase].get(data.to)
    if rule is None or rule.via_placement_only:
        detail = (
            "This move follows a job placement (its start or its end), never a request."
            if rule is not None
            else f"No transition from {candidate.phase.value} to {data.to.value}."
        )
        raise TransitionNotAllowed(detail, current=candidate.phase.value, allowed=allowed)
    if data.reason is not None and not rule.reasons:
        raise ValidationFailed(
            [field_error(["body", "reason"], "this transition takes no reason", "value_error")]
        )
    if rule.reasons and data.reason not in rule.reasons:
        raise ValidationFailed(
            [
                field_error(
                    ["body", "reason"],
                    "required, one of: " + ", ".join(sorted(r.value for r in rule.reasons)),
                    "value_error",
                )
            ]
        )
    if data.effective_at is not None:
        await check_move_at(session, candidate, data.effective_at, ["body", "effective_at"])
    unmet = unmet_for(candidate.phase, data.to, state, limits) or []
    if unmet and not data.force:
        raise TransitionRefused(
            f"Cannot move from {candidate.phase.value} to {data.to.value} yet.",
            current=candidate.phase.value,
            allowed=allowed,
            unmet=[{"code": u.code, "requirement": u.requirement, "have": u.have} for u in unmet],
        )
    await set_phase(
        session,
        candidate,
        data.to,
        actor,
        reason=data.reason,
        note=data.note,
        forced=bool(data.force and unmet),
        at=data.effective_at,
    )
    if data.to is Phase.EXITED:
        # A cycle: placements move the path (a job's start and end).
        from app.services import placements

        # Someone who left holds no position and waits on no landlord's answer. Started
        # placements stay: the structure completes the mission or ends the job.
        await placements.withdraw_open(session, actor, candidate.id, because="left the path")
    views = await visibility.candidate_views(session, actor, [candidate.id])
    await audit.record_views(session, actor, AuditAction.UPDATE, views)
    return candidate


async def history(
    session: AsyncSession, actor: Actor, candidate_id: uuid.UUID, page: PageRequest
) -> tuple[Sequence[CandidateTransition], str | None, visibility.MoveFields]:
    visible = await session.scalar(
        select(Candidate.id).where(Candidate.id == candidate_id, tenancy.candidates(actor))
    )
    if visible is None:
        raise NotFound("No candidate with this id.")
    # Ids are time-ordered and moves are appended in effective order: both orders agree.
    stmt = select(CandidateTransition).where(CandidateTransition.candidate_id == candidate_id)
    rows, next_cursor = await paginate(session, CandidateTransition, stmt, page)
    views = await visibility.candidate_views(session, actor, [candidate_id])
    await audit.record_views(session, actor, AuditAction.READ, views)
    return rows, next_cursor, visibility.candidate_move_fields(actor)
