"""Activities on a candidate's path, and what they change on the candidate."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import UTC, date
from typing import Any

from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.domain.enums import (
    ActivityOutcome,
    ActivityType,
    AuditAction,
    CertificationStatus,
    Phase,
    StructureKind,
)
from app.domain.pathway import ACTIVITY_PHASE, PHASE_RANK
from app.errors import Conflict, NotFound, ValidationFailed, field_error, pydantic_errors
from app.models import Activity, Candidate
from app.schemas.activities import ACTIVITY_MODELS, ActivityUpdate
from app.schemas.events import ActivityRecorded, ActivityUpdated
from app.services import audit, dates, events, structures, tenancy, visibility
from app.services.auth import Actor
from app.services.common import PageRequest, check_version, flush, paginate
from app.services.pathway import entered_at, lock_candidate, snapshot


async def _journal(
    session: AsyncSession, actor: Actor, candidate_id: uuid.UUID, action: AuditAction
) -> None:
    views = await visibility.candidate_views(session, actor, [candidate_id])
    await audit.record_views(session, actor, action, views)


class PhaseNotReached(Conflict):
    slug, title = "phase-not-reached", "The candidate has not reached this activity's phase"


def _check_phase(candidate: Candidate, activity_type: ActivityType) -> Phase:
    phase = ACTIVITY_PHASE[activity_type]
    if candidate.phase is Phase.EXITED or PHASE_RANK[phase] > PHASE_RANK[candidate.phase]:
        raise PhaseNotReached(
            f"A {activity_type.value} belongs to the {phase.value} phase; the candidate is "
            f"in {candidate.phase.value}.",
            current=candidate.phase.value,
            activity_phase=phase.value,
        )
    return phase


async def _check_date(session: AsyncSession, candidate: Candidate, occurred_on: date) -> None:
    """An activity is recorded once it happened (or began), and nothing happens on a path
    before it began."""
    dates.not_in_future(occurred_on, ["body", "occurred_on"])
    entered = await entered_at(session, candidate.id)
    if entered is not None:
        dates.not_before(
            occurred_on,
            entered.astimezone(UTC).date(),
            ["body", "occurred_on"],
            "the person entered the path",
        )


def _apply_levels(candidate: Candidate, activity: Activity) -> None:
    """A skills assessment sets the levels it assessed (the latest assessment speaks)."""
    if activity.type is ActivityType.SKILLS_ASSESSMENT and activity.competency_levels:
        # JSON columns change by reassignment, so the ORM sees the update.
        candidate.competencies = {**candidate.competencies, **activity.competency_levels}


async def _refresh_certifications(
    session: AsyncSession, candidate: Candidate, codes: set[str]
) -> None:
    """Each certification an exam touched, recomputed from all the person's exams for it.

    Held once any exam for it was passed; in progress while exams exist but none passed.
    Entries typed by hand (no `source`) are never downgraded or removed: only what exams
    set is taken back when an exam is corrected.
    """
    if not codes:
        return
    rows = (
        await session.execute(
            select(Activity.rncp_code, Activity.outcome, Activity.occurred_on).where(
                Activity.candidate_id == candidate.id,
                Activity.type == ActivityType.CERTIFICATION_EXAM,
                Activity.rncp_code.in_(codes),
            )
        )
    ).all()
    entries = [dict(e) for e in candidate.certifications]
    for code in sorted(codes):
        exams = [r for r in rows if r.rncp_code == code]
        passed = [r.occurred_on for r in exams if r.outcome is ActivityOutcome.POSITIVE]
        entry = next((e for e in entries if e.get("rncp_code") == code), None)
        by_hand = entry is not None and entry.get("source") != "exam"
        if by_hand and entry is not None and entry["status"] == CertificationStatus.HELD.value:
            continue
        if passed:
            status, day = CertificationStatus.HELD.value, max(passed).isoformat()
        elif exams:
            status, day = CertificationStatus.IN_PROGRESS.value, None
        else:
            if entry is not None and not by_hand:
                entries.remove(entry)
            continue
        fresh = {"rncp_code": code, "status": status, "date": day, "source": "exam"}
        if entry is None:
            entries.append(fresh)
        else:
            entry.clear()
            entry.update(fresh)
    candidate.certifications = entries


def _exam_codes(activity: Activity) -> set[str]:
    if activity.type is ActivityType.CERTIFICATION_EXAM and activity.rncp_code is not None:
        return {activity.rncp_code}
    return set()


async def _refresh_totals(session: AsyncSession, candidate: Candidate) -> None:
    """The candidate's running totals, recomputed from the activities in this transaction."""
    state = await snapshot(session, candidate.id)
    candidate.training_hours = state.training_hours
    candidate.positive_skills_assessments = state.positive_skills_assessments
    await flush(session)


def _columns(data: Any) -> dict[str, Any]:
    values: dict[str, Any] = data.model_dump(exclude={"type"})
    if "competency_levels" in values and values["competency_levels"] is not None:
        values["competency_levels"] = {
            code: level for code, level in values["competency_levels"].items() if level is not None
        }
    return values


async def create(
    session: AsyncSession, actor: Actor, candidate_id: uuid.UUID, data: Any
) -> Activity:
    candidate = await lock_candidate(session, actor, candidate_id)
    phase = _check_phase(candidate, data.type)
    await _check_date(session, candidate, data.occurred_on)
    values = _columns(data)
    if values.get("landlord_id") is not None:
        await structures.require_kind(
            session, values["landlord_id"], StructureKind.LANDLORD, "landlord_id"
        )
    activity = Activity(
        candidate_id=candidate.id, type=data.type, phase=phase, recorded_by=actor.id, **values
    )
    session.add(activity)
    _apply_levels(candidate, activity)
    await flush(session)
    await _refresh_certifications(session, candidate, _exam_codes(activity))
    await _refresh_totals(session, candidate)
    events.emit(
        session,
        ActivityRecorded(
            candidate_id=candidate.id, activity_id=activity.id, activity_type=activity.type
        ),
        events.path_audience(candidate),
    )
    await _journal(session, actor, candidate.id, AuditAction.UPDATE)
    return activity


async def _visible_candidate(session: AsyncSession, actor: Actor, candidate_id: uuid.UUID) -> None:
    found = await session.scalar(
        select(Candidate.id).where(Candidate.id == candidate_id, tenancy.candidates(actor))
    )
    if found is None:
        raise NotFound("No candidate with this id.")


async def _find(session: AsyncSession, candidate_id: uuid.UUID, activity_id: uuid.UUID) -> Activity:
    activity = await session.scalar(
        select(Activity).where(Activity.id == activity_id, Activity.candidate_id == candidate_id)
    )
    if activity is None:
        raise NotFound("No activity with this id for this candidate.")
    return activity


async def get(
    session: AsyncSession, actor: Actor, candidate_id: uuid.UUID, activity_id: uuid.UUID
) -> Activity:
    await _visible_candidate(session, actor, candidate_id)
    activity = await _find(session, candidate_id, activity_id)
    await _journal(session, actor, candidate_id, AuditAction.READ)
    return activity


async def list_(
    session: AsyncSession,
    actor: Actor,
    candidate_id: uuid.UUID,
    activity_type: ActivityType | None,
    page: PageRequest,
) -> tuple[Sequence[Activity], str | None]:
    await _visible_candidate(session, actor, candidate_id)
    stmt = select(Activity).where(Activity.candidate_id == candidate_id)
    if activity_type is not None:
        stmt = stmt.where(Activity.type == activity_type)
    rows, next_cursor = await paginate(session, Activity, stmt, page)
    await _journal(session, actor, candidate_id, AuditAction.LIST)
    return rows, next_cursor


async def update(
    session: AsyncSession,
    actor: Actor,
    candidate_id: uuid.UUID,
    activity_id: uuid.UUID,
    data: ActivityUpdate,
    expected_versions: frozenset[int] | None,
) -> Activity:
    candidate = await lock_candidate(session, actor, candidate_id)
    activity = await _find(session, candidate_id, activity_id)
    check_version(activity.version, expected_versions)
    model = ACTIVITY_MODELS[activity.type]
    own_fields = set(model.model_fields) - {"type"}
    changes = data.model_dump(exclude_unset=True)
    foreign = sorted(set(changes) - own_fields)
    if foreign:
        raise ValidationFailed(
            [
                field_error(
                    ["body", name], f"not a field of a {activity.type.value}", "extra_forbidden"
                )
                for name in foreign
            ]
        )
    merged = {name: getattr(activity, name) for name in own_fields}
    merged.update(changes)
    try:
        validated = model.model_validate({**merged, "type": activity.type})
    except ValidationError as exc:
        raise ValidationFailed(pydantic_errors(exc.errors(), ("body",))) from None
    values = _columns(validated)
    if "landlord_id" in changes and values.get("landlord_id") is not None:
        await structures.require_kind(
            session, values["landlord_id"], StructureKind.LANDLORD, "landlord_id"
        )
    if "occurred_on" in changes:
        await _check_date(session, candidate, values["occurred_on"])
    touched = _exam_codes(activity)  # a corrected code frees the old one too
    before = activity.version
    for name, value in values.items():
        setattr(activity, name, value)
    _apply_levels(candidate, activity)
    await flush(session)
    await _refresh_certifications(session, candidate, touched | _exam_codes(activity))
    await _refresh_totals(session, candidate)
    if activity.version != before:
        events.emit(
            session,
            ActivityUpdated(
                candidate_id=candidate.id, activity_id=activity.id, activity_type=activity.type
            ),
            events.path_audience(candidate),
        )
    await _journal(session, actor, candidate.id, AuditAction.UPDATE)
    return activity
