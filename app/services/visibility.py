"""Who sees what of a person, through every route: decided here, once.

The permission table (permissions.py) says which operations a role may call, tenancy.py
which rows it reaches (as SQL conditions); this module says what it is told of them:
- of a person, a view: full, reduced (landlords), referral (prescribers), or nothing;
- of every record that mentions a person: placements, their history, the path's
  history, activities, rankings, assignments, and the journal rows of the access;
- and it keeps each partial view's own version and stamp moving only when a field of
  that view changes, so that neither tells of a change to a field it hides.
Services ask it; schemas render what it decided; nothing else decides a view.

A derived value is hidden when any field it is computed from is: a ranking tells a
caller a criterion's points, a filter's result or an exact distance only when the
caller's view of the person shows every field behind it.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
from pydantic import ValidationError
from sqlalchemy import (
    ColumnElement,
    SQLColumnExpression,
    and_,
    case,
    event,
    false,
    inspect,
    literal,
    or_,
    select,
    true,
)
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapper

from app.domain.enums import (
    CandidateView,
    DistanceBand,
    Phase,
    Role,
    VacancyStatus,
)
from app.domain.matching import CRITERIA, Filter, point_distance_km
from app.errors import Conflict, Forbidden, ValidationFailed, field_error
from app.models import AuditEvent, Candidate, Vacancy
from app.models.base import utcnow
from app.schemas.candidates import VIEW_STAMPS, shown_fields, view_content
from app.services import tenancy
from app.services.auth import Actor

# --- a person ----------------------------------------------------------------------------

# The least a role is shown of anyone it may reach (a landlord may get more of some).
_BASE_VIEW: dict[Role, CandidateView] = {
    Role.ADMIN: CandidateView.FULL,
    Role.INSERTION: CandidateView.FULL,
    Role.LANDLORD: CandidateView.REDUCED,
    Role.PRESCRIBER: CandidateView.REFERRAL,
}


def base_view(actor: Actor) -> CandidateView | None:
    """The view a role has of anyone it reaches; None: it sees no one (observers)."""
    return _BASE_VIEW.get(actor.role)


def view_column(actor: Actor) -> ColumnElement[CandidateView]:
    """The caller's view of each person, as SQL: a landlord's is full while one of its
    placements for the person is accepted or started, reduced otherwise; any other
    role's is its base view. Callers only ask it for roles that see people."""
    field_class = AuditEvent.__table__.c.field_class.type
    if actor.role is Role.LANDLORD:
        assert actor.structure_id is not None
        return case(
            (tenancy.landlord_holds_position(Candidate.id, actor.structure_id),
             literal(CandidateView.FULL, field_class)),
            else_=literal(CandidateView.REDUCED, field_class),
        )  # fmt: skip
    base = base_view(actor)
    assert base is not None
    return literal(base, field_class)


async def candidate_views(
    session: AsyncSession, actor: Actor, candidate_ids: Collection[uuid.UUID]
) -> dict[uuid.UUID, CandidateView]:
    """The view the caller has of each person (reachable or not: tenancy decides that)."""
    base = base_view(actor)
    if base is None or not candidate_ids:
        return {}
    if actor.role is not Role.LANDLORD:
        return dict.fromkeys(candidate_ids, base)
    rows = await session.execute(
        select(Candidate.id, view_column(actor)).where(Candidate.id.in_(list(candidate_ids)))
    )
    views = {c: CandidateView(view) for c, view in rows}
    # A person with no row (gone meanwhile) is shown nothing more than the base view.
    return {c: views.get(c, base) for c in candidate_ids}


def view_updated_at(actor: Actor) -> SQLColumnExpression[Any]:
    """The stamp of the caller's view of each person, as SQL: what `updated_since` on a
    list compares, so that a change to a hidden field brings nobody back into a sync."""
    match actor.role:
        case Role.LANDLORD:
            assert actor.structure_id is not None
            return case(
                (tenancy.landlord_holds_position(Candidate.id, actor.structure_id),
                 Candidate.updated_at),
                else_=Candidate.reduced_updated_at,
            )  # fmt: skip
        case Role.PRESCRIBER:
            return Candidate.referral_updated_at
        case _:
            return Candidate.updated_at


def check_filters(actor: Actor, given: Mapping[str, object]) -> None:
    """A filter on a field the caller's view hides would reveal it, one yes/no at a time:
    only filters on fields its least view shows are accepted (422 otherwise)."""
    base = base_view(actor)
    shown = shown_fields(base) if base is not None else frozenset()
    hidden = sorted(
        name for name, value in given.items() if value is not None and name not in shown
    )
    if hidden:
        raise ValidationFailed(
            [
                field_error(
                    ["query", name],
                    f"not a filter the {actor.role.value} role has",
                    "filter_not_allowed",
                )
                for name in hidden
            ]
        )


# --- each view's own version ------------------------------------------------------------

_PARTIAL_VIEWS = (CandidateView.REDUCED, CandidateView.REFERRAL)


class _Before:
    """A candidate as it was before the changes being flushed."""

    def __init__(self, target: Candidate) -> None:
        self._target = target
        self._attrs = inspect(target).attrs

    def __getattr__(self, name: str) -> Any:
        if name in self._attrs:
            history = self._attrs[name].history
            if history.deleted:
                return history.deleted[0]
        return getattr(self._target, name)


def _content(candidate: object, view: CandidateView) -> dict[str, Any] | None:
    try:
        return view_content(candidate, view)
    except ValidationError:  # a row no view can render (never written by this API)
        return None


@event.listens_for(Candidate, "before_update")
def _bump_view_versions(_mapper: Mapper[Candidate], _connection: Any, target: Candidate) -> None:
    """Every write path (PATCH, activities, transitions, placements) goes through the
    flush: here a partial view's version and stamp move when its content changed."""
    before = _Before(target)
    now = utcnow()
    for view in _PARTIAL_VIEWS:
        if _content(before, view) != _content(target, view):
            version, stamp = VIEW_STAMPS[view]
            setattr(target, version, getattr(target, version) + 1)
            setattr(target, stamp, now)


# --- placements and histories -------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PlacementFields:
    """What of a placement record the caller gets."""

    notes: bool  # the insertion structure's working notes


def placement_fields(actor: Actor) -> PlacementFields:
    return PlacementFields(notes=actor.role is not Role.LANDLORD)


@dataclass(frozen=True, slots=True)
class MoveFields:
    """What of a history row (a path transition or a placement move) the caller gets:
    the move, its date and reason always; its free text and author id maybe."""

    note: bool
    actor_id: bool


ALL_OF_A_MOVE = MoveFields(note=True, actor_id=True)
BARE_MOVE = MoveFields(note=False, actor_id=False)


def candidate_move_fields(actor: Actor) -> MoveFields:
    """A prescriber follows the path (moves, dates, reasons), not the staff's notes."""
    return BARE_MOVE if actor.role is Role.PRESCRIBER else ALL_OF_A_MOVE


def placement_move_fields(actor: Actor, mover_role: Role) -> MoveFields:
    """A landlord reads the notes and client ids of the moves it made itself (only its
    staff move a placement on its vacancy as a landlord), never the other side's."""
    if actor.role is Role.LANDLORD and mover_role is not Role.LANDLORD:
        return BARE_MOVE
    return ALL_OF_A_MOVE


# --- rankings ---------------------------------------------------------------------------

# The person's fields each criterion of the score is computed from. A caller is told a
# criterion's points (and its explanation) only when its view shows all of them.
CRITERION_SOURCES: dict[str, frozenset[str]] = {
    "distance": frozenset({"latitude", "longitude", "max_commute_km"}),
    "competencies": frozenset({"competencies"}),
    "certification": frozenset({"certifications"}),
    # The caller's own dealings with the person: missions completed with this landlord.
    "landlord_history": frozenset(),
    "training": frozenset({"training_hours", "positive_skills_assessments"}),
    "waiting": frozenset({"created_at"}),
    "preferences": frozenset({"preferred_contract_types", "max_weekly_hours"}),
}
# The person's fields behind each hard filter: `failed` lists are told on the same terms.
FILTER_SOURCES: dict[int, frozenset[str]] = {
    Filter.PHASE: frozenset({"phase"}),
    Filter.AVAILABILITY: frozenset({"available_from"}),
    Filter.DISTANCE: frozenset({"latitude", "longitude", "max_commute_km"}),
    Filter.HOUSING: frozenset({"accepts_onsite_housing"}),
    Filter.LICENCE: frozenset({"has_driving_licence"}),
    Filter.CERTIFICATION: frozenset({"certifications"}),
    Filter.CONSENT: frozenset({"consent_to_share"}),
    # The person's other placements: for whoever reads the whole profile only.
    Filter.PLACEMENT: shown_fields(CandidateView.FULL),
}
_LOCATION = frozenset({"latitude", "longitude"})

# A person's location, for callers that may not see it, is the centre of a cell of this
# grid (degrees; about 5.5 km north-south, 3.5 km east-west in mainland France): a band
# computed from it tells no more than the cell, however the vacancy is moved about.
LOCATION_GRID_DEG = 0.05
# How far a person may be from the centre of their cell, at most (half its diagonal).
CELL_REACH_KM = 4.0
DISTANCE_BANDS: tuple[tuple[float, DistanceBand], ...] = (
    (5.0, DistanceBand.UNDER_5_KM),
    (15.0, DistanceBand.FROM_5_TO_15_KM),
    (30.0, DistanceBand.FROM_15_TO_30_KM),
)
SCORE_BANDS: tuple[tuple[float, float], ...] = ((0, 40), (40, 60), (60, 80), (80, 100))
# Counts of people a caller may not name are rounded down to a multiple of this: no count
# small enough to point at someone (DOMAIN.md), and a change of one person rarely shows.
COUNT_STEP = 5
# Off the path: in nobody's rankings but their own structure's and administrators'.
OFF_PATH = (Phase.EXITED, Phase.EMPLOYED)


class RankingUnavailable(Conflict):
    slug, title = "vacancy-not-published", "A draft vacancy is ranked by administrators only"


@dataclass(frozen=True, slots=True)
class Disclosure:
    """What a ranking may tell of one (person, vacancy) pair."""

    criteria: frozenset[str]
    filters: int  # bits of the hard filters whose result may be told
    exact_distance: bool


def disclosure(view: CandidateView) -> Disclosure:
    shown = shown_fields(view)
    return Disclosure(
        criteria=frozenset(c for c, fields in CRITERION_SOURCES.items() if fields <= shown),
        filters=sum(bit for bit, fields in FILTER_SOURCES.items() if fields <= shown),
        exact_distance=shown >= _LOCATION,
    )


@dataclass(frozen=True, slots=True)
class RankingRules:
    """How a caller's ranking of a vacancy is made."""

    named: ColumnElement[bool]  # who may be listed by name
    proposed_only: bool  # named: only people proposed to this vacancy, in any hard-filter state
    criteria: tuple[str, ...]  # what every score in the ranking is computed on
    counts_of_others: bool  # the eligible people not named, as counts by score band


def _off_path_hidden(actor: Actor) -> ColumnElement[bool]:
    if actor.role is Role.ADMIN:
        return true()
    own = Candidate.structure_id == actor.structure_id if actor.structure_id else false()
    return or_(Candidate.phase.not_in(OFF_PATH), own)


def _check_include_excluded(include_excluded: bool, allowed: bool, actor: Actor) -> None:
    if include_excluded and not allowed:
        raise ValidationFailed(
            [
                field_error(
                    ["query", "include_excluded"],
                    f"not available to the {actor.role.value} role: why a filter removed "
                    "someone would tell fields its view hides",
                    "filter_not_allowed",
                )
            ]
        )


def vacancy_ranking(actor: Actor, vacancy: Vacancy, *, include_excluded: bool) -> RankingRules:
    """The rules of the caller's ranking of a vacancy it may read.

    Administrators and insertion staff (their own candidates) rank people as they see
    them, in full. A landlord ranks the people proposed to its vacancy, on the criteria
    its view of them shows, and learns of the others only counts by score band. A draft
    is ranked by administrators only: a landlord could otherwise survey who lives where.
    """
    if vacancy.status is VacancyStatus.DRAFT and actor.role is not Role.ADMIN:
        raise RankingUnavailable(
            "Publish the vacancy first: a draft is ranked by national administrators only."
        )
    base = base_view(actor)
    if base is None:
        raise Forbidden(f"The {actor.role.value} role ranks no one.")
    criteria = disclosure(base).criteria
    everyone_in_full = base is CandidateView.FULL
    _check_include_excluded(include_excluded, everyone_in_full, actor)
    # Erased people are kept for the figures only: tenancy never reaches them.
    reachable = tenancy.candidates(actor)
    if actor.role is Role.LANDLORD:
        reachable = and_(
            Candidate.anonymised_at.is_(None),
            Candidate.consent_to_share.is_(True),
            tenancy.proposed_to_vacancy(Candidate.id, vacancy),
        )
    return RankingRules(
        named=and_(reachable, _off_path_hidden(actor)),
        proposed_only=actor.role is Role.LANDLORD,
        criteria=tuple(c for c in CRITERIA if c in criteria),
        counts_of_others=not everyone_in_full,
    )


def candidate_ranking(view: CandidateView, actor: Actor, *, include_excluded: bool) -> None:
    """Ranking vacancies for a person: `include_excluded` only for a full view of them."""
    _check_include_excluded(include_excluded, view is CandidateView.FULL, actor)


def coarse_location(lat: float, lon: float) -> tuple[float, float]:
    """The centre of the grid cell holding a point."""
    step = LOCATION_GRID_DEG
    return (
        (math.floor(lat / step) + 0.5) * step,
        (math.floor(lon / step) + 0.5) * step,
    )


def coarse_locations(
    lat: npt.NDArray[np.float64], lon: npt.NDArray[np.float64]
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """coarse_location for arrays of points (NaN stays NaN)."""
    step = LOCATION_GRID_DEG
    return (np.floor(lat / step) + 0.5) * step, (np.floor(lon / step) + 0.5) * step


def distance_band(km: float) -> DistanceBand:
    for upper, band in DISTANCE_BANDS:
        if km < upper:
            return band
    return DistanceBand.OVER_30_KM


def told_distance(
    shown: Disclosure,
    exact_km: float | None,
    person: tuple[float, float] | None,
    place: tuple[float, float] | None,
) -> tuple[float | None, DistanceBand | None]:
    """(distance_km, distance_band) of a pair: the exact figure only to a caller that
    sees the person's coordinates; otherwise a band from the person's grid cell. Both
    null when a side has no coordinates."""
    if person is None or place is None:
        return None, None
    if shown.exact_distance and exact_km is not None:
        return exact_km, distance_band(exact_km)
    return None, distance_band(point_distance_km(*coarse_location(*person), *place))


def score_band_labels() -> list[str]:
    return [f"{low:g}-{high:g}" for low, high in SCORE_BANDS]


def score_band(score: float) -> str:
    """The band a score falls in; each band holds its lower bound (80 is in 80-100)."""
    labels = score_band_labels()
    for (_, high), label in zip(SCORE_BANDS, labels, strict=True):
        if score < high:
            return label
    return labels[-1]


def rounded_count(count: int) -> int:
    return count // COUNT_STEP * COUNT_STEP


def criteria_shown(shown: Disclosure, ranking: tuple[str, ...]) -> frozenset[str]:
    """The criteria a ranking item explains: the ranking's, as far as its view allows."""
    return shown.criteria & frozenset(ranking)
