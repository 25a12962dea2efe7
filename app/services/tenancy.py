"""What each caller may see, as SQL conditions: queries are scoped, never filtered after.

One place for every tenancy rule of DOMAIN.md ("Who may see what"); the services add
these conditions to their queries, so an object outside the tenancy is simply not found.
"""

from __future__ import annotations

import uuid

from sqlalchemy import ColumnElement, SQLColumnExpression, exists, false, select, true

from app.domain.enums import (
    LANDLORD_FULL_VIEW_STATUSES,
    LANDLORD_VISIBLE_STATUSES,
    OPEN_PLACEMENT_STATUSES,
    Role,
    VacancyStatus,
)
from app.models import Candidate, Event, Placement, Vacancy
from app.services.auth import Actor


def proposed_to_landlord(
    candidate_id: SQLColumnExpression[uuid.UUID] | uuid.UUID, landlord_id: uuid.UUID
) -> ColumnElement[bool]:
    """Whether the candidate is proposed to (or was hired by) one of the landlord's vacancies."""
    return exists(
        select(Placement.id)
        .join(Vacancy, Vacancy.id == Placement.vacancy_id)
        .where(
            Placement.candidate_id == candidate_id,
            Vacancy.landlord_id == landlord_id,
            Placement.status.in_(LANDLORD_VISIBLE_STATUSES),
        )
    )


def landlord_holds_position(
    candidate_id: SQLColumnExpression[uuid.UUID] | uuid.UUID, landlord_id: uuid.UUID
) -> ColumnElement[bool]:
    """Whether one of the landlord's placements for the person is accepted or started:
    while it is, the landlord reads the full profile (see visibility)."""
    return exists(
        select(Placement.id)
        .join(Vacancy, Vacancy.id == Placement.vacancy_id)
        .where(
            Placement.candidate_id == candidate_id,
            Vacancy.landlord_id == landlord_id,
            Placement.status.in_(LANDLORD_FULL_VIEW_STATUSES),
        )
    )


def proposed_to_vacancy(
    candidate_id: SQLColumnExpression[uuid.UUID] | uuid.UUID, vacancy: Vacancy
) -> ColumnElement[bool]:
    """Whether the person has an open (proposed to started) placement on the vacancy."""
    return exists(
        select(Placement.id).where(
            Placement.candidate_id == candidate_id,
            Placement.vacancy_id == vacancy.id,
            Placement.status.in_(OPEN_PLACEMENT_STATUSES),
        )
    )


def candidates(actor: Actor) -> ColumnElement[bool]:
    # An erased person is kept, anonymised, for the figures only: nobody finds them.
    return Candidate.anonymised_at.is_(None) & _candidates(actor)


def _candidates(actor: Actor) -> ColumnElement[bool]:
    match actor.role:
        case Role.ADMIN:
            return true()
        case Role.INSERTION:
            return Candidate.structure_id == actor.structure_id
        case Role.PRESCRIBER:
            return Candidate.referrer_id == actor.structure_id
        case Role.LANDLORD:
            assert actor.structure_id is not None
            # Consent governs all sharing with landlords: withdrawn, the profile is hidden.
            return Candidate.consent_to_share.is_(True) & proposed_to_landlord(
                Candidate.id, actor.structure_id
            )
        case _:
            return false()


def vacancies(actor: Actor) -> ColumnElement[bool]:
    match actor.role:
        case Role.ADMIN:
            return true()
        case Role.LANDLORD:
            return Vacancy.landlord_id == actor.structure_id
        case Role.INSERTION:
            return Vacancy.status != VacancyStatus.DRAFT
        case _:
            return false()


def vacancies_writable(actor: Actor) -> ColumnElement[bool]:
    if actor.role is Role.ADMIN:
        return true()
    if actor.role is Role.LANDLORD:
        return Vacancy.landlord_id == actor.structure_id
    return false()


def placements(actor: Actor) -> ColumnElement[bool]:
    match actor.role:
        case Role.ADMIN:
            return true()
        case Role.INSERTION:
            return exists(
                select(Candidate.id).where(
                    Candidate.id == Placement.candidate_id,
                    Candidate.structure_id == actor.structure_id,
                )
            )
        case Role.LANDLORD:
            return exists(
                select(Vacancy.id).where(
                    Vacancy.id == Placement.vacancy_id, Vacancy.landlord_id == actor.structure_id
                )
            )
        case _:
            return false()


def events(actor: Actor) -> ColumnElement[bool]:
    """The change feed, per role: what the reader may read of each event's subject, as it
    stood when the event happened (the audience columns written with the event)."""
    match actor.role:
        case Role.ADMIN:
            return true()
        case Role.INSERTION:
            # Their candidates and what hangs off them; published vacancies, as they read.
            return (Event.structure_id == actor.structure_id) | Event.published.is_(True)
        case Role.PRESCRIBER:
            # The people they referred: the person's own events, never the path's records.
            return Event.referrer_id == actor.structure_id
        case Role.LANDLORD:
            # Their vacancies and the placements on them.
            return Event.landlord_id == actor.structure_id
        case _:
            return false()
