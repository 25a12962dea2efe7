"""Placements: proposals, their state machine, capacity and retention follow-ups."""

from __future__ import annotations

import uuid
from calendar import monthrange
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import TypeVar

from sqlalchemy import ColumnElement, insert, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute

from app.config import Settings
from app.domain.enums import (
    OPEN_PLACEMENT_STATUSES,
    POSITION_HOLDING_STATUSES,
    AuditAction,
    Phase,
    PlacementEndReason,
    PlacementStatus,
    TransitionReason,
    VacancyKind,
    VacancyStatus,
)
from app.domain.ids import uuid7
from app.domain.placement_machine import EXPIRABLE, PHASES_FOR_KIND, allowed_moves, move
from app.errors import (
    Conflict,
    DuplicateResource,
    Forbidden,
    NotFound,
    ValidationFailed,
    constraint_name,
    field_error,
    integrity_to_conflict,
)
from app.models import Candidate, FollowUpReminder, Placement, PlacementTransition, Vacancy
from app.models.base import utcnow
from app.schemas.common import check_dates
from app.schemas.events import (
    PlacementFollowUpDue,
    PlacementFollowUpRecorded,
    PlacementProposed,
    PlacementStatusChanged,
    PlacementUpdated,
)
from app.schemas.placements import (
    FollowUpCreate,
    PlacementCreate,
    PlacementTransitionRequest,
    PlacementUpdate,
)
from app.schemas.placements import _months_later as months_later
from app.services import audit, dates, events, pathway, tenancy, vacancies, visibility
from app.services.auth import SYSTEM_ACTOR, Actor
from app.services.common import (
    ConflictFor,
    PageRequest,
    apply_changes,
    check_version,
    cross_field,
    flush,
    for_update,
    one_of,
    paginate,
)

L = TypeVar("L", Vacancy, Candidate)


def _already_open() -> DuplicateResource:
    return DuplicateResource("This candidate already has an open placement on this vacancy.")


def _one_job() -> Conflict:
    return Conflict("This candidate already holds a started job.")


_CONFLICTS: dict[str, ConflictFor] = {
    "uq_placements_open_candidate_vacancy": _already_open,
    "unique:placements.candidate_id, placements.vacancy_id": _already_open,
    "uq_placements_started_job_candidate": _one_job,
    "unique:placements.candidate_id": _one_job,
}


class VacancyNotOpen(Conflict):
    slug, title = "vacancy-not-open", "The vacancy is not open"


class VacancyFull(Conflict):
    slug, title = "vacancy-full", "Every position of the vacancy is taken"


class ConsentMissing(Conflict):
    slug, title = "consent-missing", "The candidate has not agreed to share their profile"


class PhaseMismatch(Conflict):
    slug, title = "phase-mismatch", "The candidate's phase does not fit this kind of vacancy"


class PlacementTransitionNotAllowed(Conflict):
    slug, title = "placement-transition-not-allowed", "No such move from the current status"


class FollowUpRefused(Conflict):
    slug, title = "follow-up-refused", "This follow-up cannot be recorded"


@dataclass(frozen=True, slots=True)
class PlacementFilters:
    candidate_id: uuid.UUID | None = None
    vacancy_id: uuid.UUID | None = None
    status: PlacementStatus | None = None
    updated_since: datetime | None = None
    follow_up_due: bool | None = None


async def _journal(
    session: AsyncSession, actor: Actor, placements: Sequence[Placement], action: AuditAction
) -> None:
    """A placement is a fact about its person: every read or write of one is journaled,
    one row per person, with the view the caller has of them."""
    people = list(dict.fromkeys(p.candidate_id for p in placements))
    views = await visibility.candidate_views(session, actor, people)
    await audit.record_views(session, actor, action, views)


visible_to = tenancy.placements


def check_phase_fits(candidate: Candidate, kind: VacancyKind) -> None:
    if candidate.phase not in PHASES_FOR_KIND[kind]:
        phases = ", ".join(p.value for p in PHASES_FOR_KIND[kind])
        raise PhaseMismatch(
            f"A {kind.value} is for candidates in {phases}; this one is in "
            f"{candidate.phase.value}.",
            phase=candidate.phase.value,
        )


def check_proposal(vacancy: Vacancy, candidate: Candidate) -> None:
    """The rules of a proposal, once both rows are locked: an open vacancy, the
    person's consent, a phase that fits the kind of vacancy."""
    if vacancy.status is not VacancyStatus.OPEN:
        raise VacancyNotOpen(
            f"Candidates can be proposed only for open vacancies; this one is "
            f"{vacancy.status.value}."
        )
    if not candidate.consent_to_share:
        raise ConsentMissing("Without the person's consent their profile is not shared.")
    check_phase_fits(candidate, vacancy.kind)


async def create(session: AsyncSession, actor: Actor, data: PlacementCreate) -> Placement:
    # Locked, vacancy then candidate (the order moves use): neither can close, fill,
    # exit or withdraw consent while this proposal is being made.
    vacancy = await session.scalar(
        for_update(select(Vacancy).where(Vacancy.id == data.vacancy_id, tenancy.vacancies(actor)))
    )
    candidate = await session.scalar(
        for_update(
            select(Candidate).where(Candidate.id == data.candidate_id, tenancy.candidates(actor))
        )
    )
    missing = []
    if candidate is None:
        missing.append(
            field_error(
                ["body", "candidate_id"], "no candidate with this id", "reference_not_found"
            )
        )
    if vacancy is None:
        missing.append(
            field_error(["body", "vacancy_id"], "no vacancy with this id", "reference_not_found")
        )
    if missing or candidate is None or vacancy is None:
        raise ValidationFailed(missing)
    check_proposal(vacancy, candidate)
    proposed_at = data.proposed_at or utcnow()
    if data.proposed_at is not None:
        dates.not_in_future(proposed_at, ["body", "proposed_at"])
        entered = await pathway.entered_at(session, candidate.id)
        if entered is not None:
            dates.not_before(
                proposed_at, entered, ["body", "proposed_at"], "the person entered the path"
            )
    placement = Placement(
        **data.model_dump(exclude={"proposed_at"}),
        status=PlacementStatus.PROPOSED,
        vacancy_kind=vacancy.kind,
        proposed_at=proposed_at,
        status_changed_at=proposed_at,
    )
    session.add(placement)
    await flush(session, _CONFLICTS)
    _emit_proposed(session, placement.id, candidate, vacancy)
    await _journal(session, actor, [placement], AuditAction.CREATE)
    return placement


def _emit_proposed(
    session: AsyncSession, placement_id: uuid.UUID, candidate: Candidate, vacancy: Vacancy
) -> None:
    events.emit(
        session,
        PlacementProposed(
            placement_id=placement_id, candidate_id=candidate.id, vacancy_id=vacancy.id
        ),
        events.Audience(structure_id=candidate.structure_id, landlord_id=vacancy.landlord_id),
    )


async def propose_many(
    session: AsyncSession, actor: Actor, pairs: Sequence[tuple[uuid.UUID, uuid.UUID]]
) -> list[uuid.UUID]:
    """(vacancy, candidate) pairs proposed at once, under the rules of `create`, plus the
    vacancy's free positions; all or nothing. Rows are locked vacancies first, then
    candidates, each in id order (the order `create` and the moves use); the
    placements go in as one INSERT per batch of rows."""
    vacancy_ids = sorted({v for v, _ in pairs})
    candidate_ids = sorted({c for _, c in pairs})
    vacancies_by_id = {
        row.id: row
        for row in await session.scalars(
            for_update(
                select(Vacancy)
                .where(one_of(session, Vacancy.id, vacancy_ids), tenancy.vacancies(actor))
                .order_by(Vacancy.id)
            )
        )
    }
    candidates_by_id = {
        row.id: row
        for row in await session.scalars(
            for_update(
                select(Candidate)
                .where(one_of(session, Candidate.id, candidate_ids), tenancy.candidates(actor))
                .order_by(Candidate.id)
            )
        )
    }
    if len(vacancies_by_id) < len(vacancy_ids) or len(candidates_by_id) < len(candidate_ids):
        raise ValidationFailed(
            [field_error(["body"], "a vacancy or candidate is no longer there", "value_error")]
        )
    per_vacancy: dict[uuid.UUID, int] = {}
    for vacancy_id, candidate_id in pairs:
        vacancy = vacancies_by_id[vacancy_id]
        check_proposal(vacancy, candidates_by_id[candidate_id])
        per_vacancy[vacancy_id] = per_vacancy.get(vacancy_id, 0) + 1
        if per_vacancy[vacancy_id] > vacancy.positions - vacancy.filled_positions:
            raise VacancyFull("More people proposed than the vacancy has free positions.")
    already = (
        await session.execute(
            select(Placement.candidate_id, Placement.vacancy_id).where(
                one_of(session, Placement.candidate_id, candidate_ids),
                Placement.status.in_(OPEN_PLACEMENT_STATUSES),
            )
        )
    ).all()
    open_pairs = {(v, c) for c, v in already}
    if len(set(pairs)) < len(pairs) or open_pairs & set(pairs):
        raise DuplicateResource("This candidate already has an open placement on this vacancy.")
    now = utcnow()
    ids = [uuid7() for _ in pairs]
    rows: list[dict[str, object]] = [
        {
            "id": placement_id,
            "candidate_id": candidate_id,
            "vacancy_id": vacancy_id,
            "status": PlacementStatus.PROPOSED,
            "vacancy_kind": vacancies_by_id[vacancy_id].kind,
            "proposed_at": now,
            "status_changed_at": now,
            "created_at": now,
            "updated_at": now,
            "version": 1,
        }
        for placement_id, (vacancy_id, candidate_id) in zip(ids, pairs, strict=True)
    ]
    try:
        await session.execute(insert(Placement), rows)
    except IntegrityError as exc:
        known = _CONFLICTS.get(constraint_name(exc) or "")
        if known is not None:
            raise known() from None
        raise integrity_to_conflict(exc) from None
    for placement_id, (vacancy_id, candidate_id) in zip(ids, pairs, strict=True):
        _emit_proposed(
            session, placement_id, candidates_by_id[candidate_id], vacancies_by_id[vacancy_id]
        )
    await flush(session)
    views = await visibility.candidate_views(session, actor, candidate_ids)
    await audit.record_views(session, actor, AuditAction.CREATE, views)
    return ids


async def _visible(session: AsyncSession, actor: Actor, placement_id: uuid.UUID) -> Placement:
    placement = await session.scalar(
        select(Placement).where(Placement.id == placement_id, visible_to(actor))
    )
    if placement is None:
        raise NotFound("No placement with this id.")
    return placement


async def get(session: AsyncSession, actor: Actor, placement_id: uuid.UUID) -> Placement:
    placement = await _visible(session, actor, placement_id)
    await _journal(session, actor, [placement], AuditAction.READ)
    return placement


async def _lock(session: AsyncSession, actor: Actor, placement_id: uuid.UUID) -> Placement:
    placement = await session.scalar(
        for_update(select(Placement).where(Placement.id == placement_id, visible_to(actor)))
    )
    if placement is None:
        raise NotFound("No placement with this id.")
    return placement


async def list_(
    session: AsyncSession, actor: Actor, filters: PlacementFilters, page: PageRequest
) -> tuple[Sequence[Placement], str | None]:
    stmt = select(Placement).where(visible_to(actor))
    if filters.candidate_id is not None:
        stmt = stmt.where(Placement.candidate_id == filters.candidate_id)
    if filters.vacancy_id is not None:
        stmt = stmt.where(Placement.vacancy_id == filters.vacancy_id)
    if filters.status is not None:
        stmt = stmt.where(Placement.status == filters.status)
    if filters.follow_up_due is not None:
        due = follow_up_due(utcnow().date())
        stmt = stmt.where(due if filters.follow_up_due else ~due)
    rows, next_cursor = await paginate(session, Placement, stmt, page, filters.updated_since)
    await _journal(session, actor, rows, AuditAction.LIST)
    return rows, next_cursor


FOLLOW_UP_MILESTONES = (6, 12)


def latest_start_due(today: date, months: int) -> date:
    """The last start day whose `months` follow-up is due by `today` (start + months,
    clamped to the month's end as the follow-up rules count it)."""
    year, month = divmod(today.year * 12 + today.month - 1 - months, 12)
    base = date(year, month + 1, min(today.day, monthrange(year, month + 1)[1]))
    # A few later days may still fall due by today once clamped: step back from past them.
    day = base + timedelta(days=4)
    while months_later(day, months) > today:
        day -= timedelta(days=1)
    return day


def _milestone_due(months: int, today: date) -> ColumnElement[bool]:
    recorded: InstrumentedAttribute[date | None] = getattr(Placement, f"follow_up_{months}m_on")
    return recorded.is_(None) & (Placement.started_on <= latest_start_due(today, months))


def follow_up_due(today: date) -> ColumnElement[bool]:
    """Started jobs whose 6- or 12-month follow-up is due and not recorded."""
    return (
        (Placement.vacancy_kind == VacancyKind.JOB)
        & Placement.started_on.is_not(None)
        & or_(*(_milestone_due(m, today) for m in FOLLOW_UP_MILESTONES))
    )


async def remind_follow_ups(session: AsyncSession, today: date) -> int:
    """Announce each follow-up that fell due, once (placement.follow_up_due)."""
    announced = 0
    for months in FOLLOW_UP_MILESTONES:
        reminded = select(FollowUpReminder.placement_id).where(
            FollowUpReminder.placement_id == Placement.id,
            FollowUpReminder.milestone_months == months,
        )
        rows = (
            await session.scalars(
                select(Placement)
                .where(
                    Placement.vacancy_kind == VacancyKind.JOB,
                    Placement.started_on.is_not(None),
                    _milestone_due(months, today),
                    ~reminded.exists(),
                )
                .order_by(Placement.id)
            )
        ).all()
        for placement in rows:
            assert placement.started_on is not None
            due_on = months_later(placement.started_on, months)
            session.add(
                FollowUpReminder(placement_id=placement.id, milestone_months=months, due_on=due_on)
            )
            events.emit(
                session,
                PlacementFollowUpDue(
                    placement_id=placement.id,
                    candidate_id=placement.candidate_id,
                    milestone_months=months,
                    due_on=due_on,
                ),
                await events.placement_audience(session, placement),
            )
            announced += 1
    await flush(session)
    return announced


async def update(
    session: AsyncSession,
    actor: Actor,
    placement_id: uuid.UUID,
    data: PlacementUpdate,
    expected_versions: frozenset[int] | None,
) -> Placement:
    placement = await _lock(session, actor, placement_id)
    check_version(placement.version, expected_versions)
    changes = data.model_dump(exclude_unset=True)
    cross_field(
        lambda: check_dates(
            changes.get("start_date", placement.start_date),
            changes.get("end_date", placement.end_date),
        )
    )
    before = placement.version
    apply_changes(placement, changes)
    await flush(session)
    if placement.version != before:
        events.emit(
            session,
            PlacementUpdated(
                placement_id=placement.id,
                candidate_id=placement.candidate_id,
                vacancy_id=placement.vacancy_id,
                version=placement.version,
            ),
            await events.placement_audience(session, placement),
        )
    await _journal(session, actor, [placement], AuditAction.UPDATE)
    return placement


async def _locked(session: AsyncSession, model: type[L], id_: uuid.UUID) -> L:
    row = await session.scalar(for_update(select(model).where(model.id == id_)))
    assert row is not None  # foreign keys keep a placement's vacancy and candidate alive
    return row


async def _apply_move(
    session: AsyncSession,
    actor: Actor,
    placement: Placement,
    target: PlacementStatus,
    *,
    reason: object = None,
    note: str | None = None,
    at: datetime | None = None,
) -> None:
    """Write a move: capacity, the candidate's phase, history and event, together.

    `at`: when it took effect (default now), already checked by the caller. Lock order is
    placement, vacancy, candidate everywhere, so movers never deadlock.
    """
    origin = placement.status
    held_before = origin in POSITION_HOLDING_STATUSES
    held_after = target in POSITION_HOLDING_STATUSES
    vacancy = await _locked(session, Vacancy, placement.vacancy_id)
    if held_after and not held_before:
        if vacancy.status is VacancyStatus.FILLED:
            raise VacancyFull("Every position of this vacancy is accepted or started.")
        if vacancy.status is not VacancyStatus.OPEN:
            raise VacancyNotOpen(f"The vacancy is {vacancy.status.value}.")
        # The person may have exited or withdrawn consent since the proposal.
        candidate = await _locked(session, Candidate, placement.candidate_id)
        if not candidate.consent_to_share:
            raise ConsentMissing("The person no longer agrees to share their profile.")
        check_phase_fits(candidate, placement.vacancy_kind)
        vacancy.filled_positions += 1
    elif held_before and not held_after:
        vacancy.filled_positions -= 1
    vacancies.refresh_status(vacancy)

    now = utcnow()
    effective = at or now
    today = effective.astimezone(UTC).date()
    if target is PlacementStatus.STARTED:
        candidate = await _locked(session, Candidate, placement.candidate_id)
        check_phase_fits(candidate, placement.vacancy_kind)
        placement.started_on = today
        if placement.vacancy_kind is VacancyKind.JOB:
            # Starting the hire and becoming employed are one change: never one without the other.
            await pathway.set_phase(
                session,
                candidate,
                Phase.EMPLOYED,
                actor,
                reason=TransitionReason.JOB_STARTED,
                note=None,
                forced=False,
                at=effective,
            )
    if target in (PlacementStatus.COMPLETED, PlacementStatus.ENDED):
        placement.ended_on = today
    if target is PlacementStatus.ENDED and placement.vacancy_kind is VacancyKind.JOB:
        candidate = await _locked(session, Candidate, placement.candidate_id)
        if candidate.phase is Phase.EMPLOYED:
            # The hire is over: the person is looking again, from securing.
            await pathway.set_phase(
                session,
                candidate,
                Phase.SECURING,
                actor,
                reason=TransitionReason.JOB_ENDED,
                note=None,
                forced=False,
                at=effective,
            )
    if reason is not None:
        placement.closing_reason = reason  # type: ignore[assignment]
    placement.status = target
    placement.status_changed_at = effective
    session.add(
        PlacementTransition(
            placement_id=placement.id,
            from_status=origin,
            to_status=target,
            at=effective,
            recorded_at=now,
            actor_kind=actor.kind,
            actor_id=actor.id,
            actor_role=actor.role,
            reason=reason,
            note=note,
        )
    )
    events.emit(
        session,
        PlacementStatusChanged(
            placement_id=placement.id,
            candidate_id=placement.candidate_id,
            vacancy_id=placement.vacancy_id,
            from_status=origin,
            to_status=target,
            vacancy_status=vacancy.status,
        ),
        await events.placement_audience(session, placement),
    )
    await flush(session, _CONFLICTS)


async def transition(
    session: AsyncSession,
    actor: Actor,
    placement_id: uuid.UUID,
    data: PlacementTransitionRequest,
    expected_versions: frozenset[int] | None,
) -> Placement:
    placement = await _lock(session, actor, placement_id)
    check_version(placement.version, expected_versions)
    allowed = [s.value for s in allowed_moves(placement.status, actor.role, placement.vacancy_kind)]
    rule = move(placement.status, data.to)
    if rule is None or placement.vacancy_kind not in rule.kinds or not rule.roles:
        raise PlacementTransitionNotAllowed(
            f"A {placement.vacancy_kind.value} placement cannot go from "
            f"{placement.status.value} to {data.to.value}.",
            current=placement.status.value,
            allowed=allowed,
        )
    if actor.role not in rule.roles:
        raise Forbidden(
            f"The {actor.role.value} role cannot move a placement to {data.to.value}.",
            allowed=allowed,
        )
    if rule.reason_required and data.reason is None:
        raise ValidationFailed(
            [field_error(["body", "reason"], f"required to move to {data.to.value}", "missing")]
        )
    at = None
    if data.on is not None or data.effective_at is not None:
        # Whoever may make a move may date it: the landlord knows when it accepted.
        at = await _move_instant(session, placement, data)
    await _apply_move(session, actor, placement, data.to, reason=data.reason, note=data.note, at=at)
    await _journal(session, actor, [placement], AuditAction.UPDATE)
    return placement


async def _move_instant(
    session: AsyncSession, placement: Placement, data: PlacementTransitionRequest
) -> datetime:
    """When a dated move took effect, checked against what it follows: the placement's
    previous move (the proposal first), and for a job's start the person's path."""
    loc = ["body", "effective_at" if data.effective_at is not None else "on"]
    floors = [placement.status_changed_at]
    reached = None
    if data.to is PlacementStatus.STARTED and placement.vacancy_kind is VacancyKind.JOB:
        reached = await pathway.open_span(session, placement.candidate_id)
        if reached is not None:
            floors.append(reached.at)
    if data.effective_at is not None:
        at: date | datetime = data.effective_at
        if data.on is not None and data.on != data.effective_at.astimezone(UTC).date():
            raise dates.refuse(["body", "on"], "is not the UTC day of effective_at")
    else:
        assert data.on is not None
        at = data.on  # compared by day; placed after what it follows on that day, below

    def floor(instant: datetime) -> date | datetime:
        return instant if isinstance(at, datetime) else instant.astimezone(UTC).date()

    dates.not_in_future(at, loc)
    previous = (
        "the proposal"
        if placement.status is PlacementStatus.PROPOSED
        else f"the placement's previous move ({placement.status.value})"
    )
    dates.not_before(at, floor(placement.status_changed_at), loc, previous)
    if reached is not None:
        what = (
            "the person reached securing"
            if reached.to_phase is Phase.SECURING
            else "the person's previous transition"
        )
        dates.not_before(at, floor(reached.at), loc, what)
    return at if isinstance(at, datetime) else dates.instant_of_day(at, floors)


async def history(
    session: AsyncSession, actor: Actor, placement_id: uuid.UUID, page: PageRequest
) -> tuple[list[tuple[PlacementTransition, visibility.MoveFields]], str | None]:
    """Each move, with what of it the caller may read."""
    placement = await _visible(session, actor, placement_id)
    stmt = select(PlacementTransition).where(PlacementTransition.placement_id == placement_id)
    rows, next_cursor = await paginate(session, PlacementTransition, stmt, page)
    await _journal(session, actor, [placement], AuditAction.READ)
    shown = [(row, visibility.placement_move_fields(actor, row.actor_role)) for row in rows]
    return shown, next_cursor


async def record_follow_up(
    session: AsyncSession, actor: Actor, placement_id: uuid.UUID, data: FollowUpCreate
) -> Placement:
    """Whether a hire is still in post 6 and 12 months after it started."""
    placement = await _lock(session, actor, placement_id)
    started = placement.started_on
    if placement.vacancy_kind is not VacancyKind.JOB or started is None:
        raise FollowUpRefused("Follow-ups are for job placements that started.")
    dates.not_in_future(data.at, ["body", "at"])
    if data.at >= months_later(started, 12):
        milestone = 12
    elif data.at >= months_later(started, 6):
        milestone = 6
    else:
        dates.not_before(
            data.at,
            months_later(started, 6),
            ["body", "at"],
            f"the due date of the first follow-up (6 months after the start on {started})",
        )
        raise AssertionError("unreachable: the date is before the due date")
    if getattr(placement, f"follow_up_{milestone}m_on") is not None:
        raise FollowUpRefused(f"The {milestone}-month follow-up is already recorded.")
    if data.in_post and placement.ended_on is not None and placement.ended_on <= data.at:
        raise FollowUpRefused(
            f"The job ended on {placement.ended_on.isoformat()}: not in post on that day."
        )
    setattr(placement, f"follow_up_{milestone}m_on", data.at)
    setattr(placement, f"follow_up_{milestone}m_in_post", data.in_post)
    setattr(placement, f"follow_up_{milestone}m_recorded_at", utcnow())
    events.emit(
        session,
        PlacementFollowUpRecorded(
            placement_id=placement.id,
            milestone_months=milestone,
            in_post=data.in_post,
        ),
        await events.placement_audience(session, placement),
    )
    await flush(session)
    await _journal(session, actor, [placement], AuditAction.UPDATE)
    return placement


async def expire_proposals(session: AsyncSession, settings: Settings) -> int:
    """Close proposals unanswered for the configured delay. Safe to run again and again:
    a second run finds nothing left to close."""
    cutoff = utcnow() - timedelta(days=settings.proposal_expiry_days)
    stale = (
        await session.scalars(
            select(Placement)
            .where(Placement.status.in_(EXPIRABLE), Placement.status_changed_at < cutoff)
            .order_by(Placement.id)
            .with_for_update(skip_locked=True)
        )
    ).all()
    # Vacancies locked in id order, as proposals lock them: no deadlock with those.
    vacancy_ids = sorted({p.vacancy_id for p in stale})
    if vacancy_ids:
        await session.execute(
            for_update(select(Vacancy).where(Vacancy.id.in_(vacancy_ids)).order_by(Vacancy.id))
        )
    for placement in stale:
        await _apply_move(
            session, SYSTEM_ACTOR, placement, PlacementStatus.EXPIRED, note="no answer in time"
        )
    await _journal(session, SYSTEM_ACTOR, stale, AuditAction.UPDATE)
    return len(stale)


# Placements not yet started: what a person leaving, or a vacancy cancelled, closes.
PENDING_STATUSES = tuple(s for s in OPEN_PLACEMENT_STATUSES if s is not PlacementStatus.STARTED)


async def _close_pending(
    session: AsyncSession,
    actor: Actor,
    where: ColumnElement[bool],
    target: PlacementStatus,
    because: str | None,
) -> int:
    """Move the placements not yet started that `where` selects to `target`, now, reason
    `other` and `because` as the move's note. The caller has locked the rows in the
    movers' order (placements, vacancies, then candidates)."""
    rows = (
        await session.scalars(
            for_update(
                select(Placement)
                .where(where, Placement.status.in_(PENDING_STATUSES))
                .order_by(Placement.id)
            )
        )
    ).all()
    for placement in rows:
        await _apply_move(
            session, actor, placement, target, reason=PlacementEndReason.OTHER, note=because
        )
    return len(rows)


async def withdraw_open(
    session: AsyncSession, actor: Actor, candidate_id: uuid.UUID, because: str | None = None
) -> int:
    """Withdraw the person's placements not yet started (they left the path, or their data
    is being erased): no position stays held and no landlord is left waiting on them.
    Started placements stay. Locked first by pathway.lock_people."""
    return await _close_pending(
        session, actor, Placement.candidate_id == candidate_id, PlacementStatus.WITHDRAWN, because
    )


async def reject_open(session: AsyncSession, actor: Actor, vacancy_id: uuid.UUID) -> int:
    """Close, as its landlord's rejections, the placements not yet started of a vacancy
    being cancelled: its positions are freed and nobody waits on an offer that is gone.
    Started placements stay. Locked first by vacancies.update."""
    return await _close_pending(
        session,
        actor,
        Placement.vacancy_id == vacancy_id,
        PlacementStatus.REJECTED,
        "the vacancy was cancelled",
    )
