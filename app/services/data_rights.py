"""The person's data rights (GDPR): export, erasure, and anonymisation after inactivity.

Erasure anonymises, whatever the person's history: what identifies them goes (names,
contacts, exact birth date, exact position, free-text notes, profile details), what
the figures need stays (year of birth, commune, structure, referrer, every date, phase
and outcome of the history), so no figure changes. The person then answers 404 to
everyone, like an id that never existed. Nothing is deleted: history rows keep their
pseudonymous candidate id.

`_anonymise_rows` too.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import exists, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.config import Settings
from app.domain.enums import AuditAction, CandidateView
from app.errors import NotFound
from app.models import (
    Activity,
    AuditEvent,
    Candidate,
    CandidateTransition,
    Placement,
    PlacementTransition,
)
from app.models.base import utcnow
from app.schemas.events import CandidateDeleted
from app.schemas.placements import _months_later as months_later
from app.services import audit, events, pathway, placements, tenancy
from app.services.auth import SYSTEM_ACTOR, Actor
from app.services.common import check_version, flush


@dataclass(frozen=True, slots=True)
class Export:
    candidate: Candidate
    transitions: Sequence[CandidateTransition]
    activities: Sequence[Activity]
    placements: Sequence[Placement]
    placement_transitions: Sequence[PlacementTransition]
    accesses: Sequence[AuditEvent]
    exported_at: datetime


async def export(session: AsyncSession, actor: Actor, candidate_id: uuid.UUID) -> Export:
    """Everything held about the person, and who accessed their record (this export too)."""
    candidate = await session.scalar(
        select(Candidate).where(Candidate.id == candidate_id, tenancy.candidates(actor))
    )
    if candidate is None:
        raise NotFound("No candidate with this id.")
    await audit.record(session, actor, [candidate.id], AuditAction.READ, CandidateView.FULL)
    transitions = (
        await session.scalars(
            select(CandidateTransition)
            .where(CandidateTransition.candidate_id == candidate.id)
            .order_by(CandidateTransition.at, CandidateTransition.id)
        )
    ).all()
    activities = (
        await session.scalars(
            select(Activity)
            .where(Activity.candidate_id == candidate.id)
            .order_by(Activity.occurred_on, Activity.id)
        )
    ).all()
    held = (
        await session.scalars(
            select(Placement).where(Placement.candidate_id == candidate.id).order_by(Placement.id)
        )
    ).all()
    moves = (
        await session.scalars(
            select(PlacementTransition)
            .where(PlacementTransition.placement_id.in_([p.id for p in held]))
            .order_by(PlacementTransition.at, PlacementTransition.id)
        )
    ).all()
    accesses = (
        await session.scalars(
            select(AuditEvent)
            .where(AuditEvent.candidate_id == candidate.id)
            .order_by(AuditEvent.at, AuditEvent.id)
        )
    ).all()
    return Export(candidate, transitions, activities, held, moves, accesses, utcnow())


def _anonymise_candidate(candidate: Candidate, now: datetime) -> None:
    candidate.first_name = ""
    candidate.last_name = ""
    candidate.birth_date = date(candidate.birth_date.year, 1, 1)
    candidate.email = None
    candidate.phone = None
    # The commune stays (territorial figures); the exact position goes.
    candidate.latitude = None
    candidate.longitude = None
    candidate.available_from = None
    candidate.competencies = {}
    candidate.certifications = []
    candidate.preferred_contract_types = []
    candidate.max_weekly_hours = None
    candidate.max_commute_km = 30
    candidate.has_driving_licence = False
    candidate.accepts_onsite_housing = False
    candidate.consent_to_share = False
    candidate.consent_given_at = None
    # The partner's own reference would let its system put a name back on the person.
    candidate.external_ref = None
    candidate.anonymised_at = now


async def _anonymise_rows(session: AsyncSession, ids: Sequence[uuid.UUID], now: datetime) -> None:
    """Free-text notes of everything hanging off the people, in a few statements."""
    await session.execute(
        update(Activity)
        .where(Activity.candidate_id.in_(ids), Activity.notes.is_not(None))
        .values(notes=None, updated_at=now, version=Activity.version + 1)
        .execution_options(synchronize_session=False)
    )
    await session.execute(
        update(CandidateTransition)
        .where(CandidateTransition.candidate_id.in_(ids), CandidateTransition.note.is_not(None))
        .values(note=None)
        .execution_options(synchronize_session=False)
    )
    held = select(Placement.id).where(Placement.candidate_id.in_(ids))
    await session.execute(
        update(PlacementTransition)
        .where(PlacementTransition.placement_id.in_(held), PlacementTransition.note.is_not(None))
        .values(note=None)
        .execution_options(synchronize_session=False)
    )
    await session.execute(
        update(Placement)
        .where(Placement.candidate_id.in_(ids), Placement.notes.is_not(None))
        .values(notes=None, updated_at=now, version=Placement.version + 1)
        .execution_options(synchronize_session=False)
    )


async def _erase(session: AsyncSession, actor: Actor, candidates: Sequence[Candidate]) -> None:
    now = utcnow()
    for candidate in candidates:
        # Nobody is left waiting on a proposal for someone who no longer exists.
        await placements.withdraw_open(session, actor, candidate.id)
        _anonymise_candidate(candidate, now)
        # A tombstone, only the id: partners that hold a copy delete theirs.
        events.emit(
            session,
            CandidateDeleted(candidate_id=candidate.id),
            events.candidate_audience(candidate),
        )
    await flush(session)
    ids = [c.id for c in candidates]
    await _anonymise_rows(session, ids, now)
    await audit.record(session, actor, ids, AuditAction.DELETE, CandidateView.FULL)


async def erase(
    session: AsyncSession,
    actor: Actor,
    candidate_id: uuid.UUID,
    expected_versions: frozenset[int] | None,
) -> None:
    found = await pathway.lock_people(
        session, Candidate.id == candidate_id, tenancy.candidates(actor)
    )
    if not found:
        raise NotFound("No candidate with this id.")
    check_version(found[0].version, expected_versions)
    await _erase(session, actor, found)


@dataclass(slots=True)
class RetentionRun:
    """What one run found (and, unless a dry run, anonymised)."""

    cutoff: datetime
    found: int = 0
    anonymised: int = 0
    ids: list[uuid.UUID] = field(default_factory=list)


def inactivity_cutoff(settings: Settings, now: datetime) -> datetime:
    day = months_later(now.astimezone(UTC).date(), -settings.retention_inactive_months)
    return datetime.combine(day, now.astimezone(UTC).timetz())


def _inactive_since(cutoff: datetime) -> list[Any]:
    """No change recorded since the cutoff: to the person, an activity, a move, a placement.

    Recorded times, not effective ones: a history imported today is kept for the whole
    period, and an import in progress is never anonymised under the importer's feet."""
    return [
        Candidate.anonymised_at.is_(None),
        Candidate.updated_at < cutoff,
        ~exists().where(Activity.candidate_id == Candidate.id, Activity.updated_at >= cutoff),
        ~exists().where(
            CandidateTransition.candidate_id == Candidate.id,
            CandidateTransition.recorded_at >= cutoff,
        ),
        ~exists().where(Placement.candidate_id == Candidate.id, Placement.updated_at >= cutoff),
    ]


async def anonymise_inactive(
    session: AsyncSession,
    settings: Settings,
    *,
    dry_run: bool,
    limit: int | None = None,
    now: datetime | None = None,
    progress: Callable[[int], None] | None = None,
) -> RetentionRun:
    """Anonymise people with no change for RETENTION_INACTIVE_MONTHS (the retention job).

    Safe to repeat: anonymised people are skipped, so a second run finds nothing. `limit`
    bounds one run (one transaction); a scheduler calls it again until `found` is 0.
    """
    run = RetentionRun(cutoff=inactivity_cutoff(settings, now or utcnow()))
    stmt = select(Candidate.id).where(*_inactive_since(run.cutoff)).order_by(Candidate.id)
    if limit is not None:
        stmt = stmt.limit(limit)
    run.ids = list((await session.scalars(stmt)).all())
    run.found = len(run.ids)
    if dry_run or not run.ids:
        return run
    for start in range(0, len(run.ids), 200):
        chunk = run.ids[start : start + 200]
        # Checked again under the lock: someone may have recorded a change meanwhile.
        people = await pathway.lock_people(
            session, Candidate.id.in_(chunk), *_inactive_since(run.cutoff)
        )
        if people:
            await _erase(session, SYSTEM_ACTOR, people)
        run.anonymised += len(people)
        if progress is not None:
            progress(len(people))
    return run
