"""Every figure Tremplin reports, defined once: its definition (reused in the API
description) and the set-based SQL that computes it, on SQLite and PostgreSQL alike.

Figures are computed from the history, never from current state alone: the path's
moves (candidate_transitions, the entry into the path included), the placements' moves
(placement_transitions), the follow-ups and the activities. `as_of` keeps only what the
database had recorded by then (`recorded_at`, `follow_up_*_recorded_at`, activities'
`created_at`), so a past report can be reproduced exactly. Days are UTC days.

Path moves are appended in effective order, and each row records when its phase ended
(`ended_at`, `ended_recorded_at`; see models.pathway): the phase of every person at the
end of a period, as known at `as_of`, is then a filter in the same single scan that
counts entries and first reaches, with no window function over the whole history.

Who sees what (DOMAIN.md): admins everything; insertion staff their structure's people;
landlords the people they hired, and the hires on their vacancies; prescribers the
people they referred; observers everything in their client's territory. For every role
but admins a count concerning fewer people than STATS_MASK_THRESHOLD (1 to threshold-1;
zero is shown) is masked: null, and named in `masked`, as is any rate or total derived
from it. This is primary suppression only: a masked figure can sometimes be inferred
from others by difference.

Known limits: filters read the person's current structure, territory and referrer (a
move of structure is not historised); a corrected activity counts with its corrected
values at every `as_of`.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Integer,
    Select,
    String,
    and_,
    case,
    func,
    literal_column,
    or_,
    select,
    text,
)
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.functions import FunctionElement

from app.config import Settings
from app.domain.enums import (
    ActivityOutcome,
    ActivityType,
    Phase,
    PlacementStatus,
    Role,
    StructureKind,
    VacancyKind,
)
from app.domain.pathway import EXIT_REASONS
from app.domain.territory import TerritoryLevel
from app.errors import ValidationFailed, field_error
from app.models import (
    Activity,
    Candidate,
    CandidateTransition,
    Placement,
    PlacementTransition,
    Vacancy,
)
from app.schemas.placements import _months_later as months_later
from app.services import structures
from app.services.auth import SYSTEM_ACTOR, Actor

# --- definitions: the API description of every figure reads these ----------------------

DEFINITIONS: dict[str, str] = {
    "entered": "People whose path began in the period (their entry into the path, the "
    "first row of their history).",
    "reached_support": "People who reached the support phase for the first time in the period.",
    "reached_securing": "People who reached the securing phase for the first time in the period.",
    "hired": "People whose first start of a job placement (their first move to employed) "
    "falls in the period.",
    "exited": "People who left the path in the period, counted once.",
    "exited_by_reason": "`exited`, by the reason of each person's last exit in the period.",
    "in_phase": "People in each phase at the end of the period: each person's last move up "
    "to then, among those who had entered by then.",
    "hires": "Job placements started in the period (someone hired twice counts twice).",
    "hire_rate": "Of the people who entered in the period, the share whose first job start "
    "came by the end of the period.",
    "retention_6m": "Hires of the period whose 6-month follow-up has fallen due by the "
    "`as_of` day (`due`), those whose follow-up is recorded (`followed_up`), those still in "
    "post then (`in_post`), and `rate` = in_post / followed_up.",
    "retention_12m": "The same, 12 months after the start.",
    "median_days_to_hire": "For the people hired in the period (first job start), the "
    "median number of days from entering the path to that start.",
    "training_hours": "Hours of the training activities that began in the period (`total`), "
    "and per person trained in the period (`per_person`).",
    "certification": "People who sat a certification exam in the period (`sat`), those "
    "who passed one (`passed`), and `pass_rate` = passed / sat.",
    "entries": "Entries into the path in the month (as `entered`).",
    "monthly_hires": "Job placements started in the month (as `hires`).",
    "objective_hires": "Job placements started in the objective's year within its scope, "
    "as known at `as_of` (as `hires`).",
    "share": "hires / target.",
    "projected": "The hires expected by the end of the year at the pace so far: hires x "
    "days in the year / days elapsed at `as_of` (rounded); the hires themselves once the "
    "year is over; null before it begins.",
    "masked": "The figures withheld because they concern fewer people than the masking "
    "threshold (null in the answer), with any rate or total derived from them. Admins see "
    "every figure.",
}


def describe(*names: str) -> str:
    """The definitions of some figures, as a Markdown list for an endpoint's description."""
    return "\n".join(f"- `{name}`: {DEFINITIONS[name]}" for name in names)


# --- what a request asks for -----------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Period:
    """Days `start` to `end`, both included (UTC); `start` None: since the beginning."""

    start: date | None
    end: date
    as_of: datetime

    @property
    def lo(self) -> datetime | None:
        return None if self.start is None else _midnight(self.start)

    @property
    def hi(self) -> datetime:
        """The first instant after the period."""
        return _midnight(self.end + timedelta(days=1))


@dataclass(frozen=True, slots=True)
class Filters:
    structure_id: uuid.UUID | None = None
    landlord_id: uuid.UUID | None = None
    departement: str | None = None
    region: str | None = None


def _midnight(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


# --- dialect helpers: the two places SQLite and PostgreSQL differ -----------------------


class utc_month(FunctionElement[str]):  # noqa: N801 - an SQL function
    """'YYYY-MM' of a UTC timestamp."""

    type = String()
    inherit_cache = True


@compiles(utc_month, "postgresql")
def _utc_month_pg(element: utc_month, compiler: SQLCompiler, **kw: Any) -> str:
    (arg,) = element.clauses
    return f"to_char({compiler.process(arg, **kw)} AT TIME ZONE 'UTC', 'YYYY-MM')"


@compiles(utc_month, "sqlite")
def _utc_month_sqlite(element: utc_month, compiler: SQLCompiler, **kw: Any) -> str:
    (arg,) = element.clauses
    return f"strftime('%Y-%m', {compiler.process(arg, **kw)})"


class days_between(FunctionElement[int]):  # noqa: N801 - an SQL function
    """Whole UTC days from the first timestamp to the second."""

    type = Integer()
    inherit_cache = True


@compiles(days_between, "postgresql")
def _days_between_pg(element: days_between, compiler: SQLCompiler, **kw: Any) -> str:
    start, end = (compiler.process(c, **kw) for c in element.clauses)
    return f"(({end} AT TIME ZONE 'UTC')::date - ({start} AT TIME ZONE 'UTC')::date)"


@compiles(days_between, "sqlite")
def _days_between_sqlite(element: days_between, compiler: SQLCompiler, **kw: Any) -> str:
    start, end = (compiler.process(c, **kw) for c in element.clauses)
    return f"CAST(julianday(date({end})) - julianday(date({start})) AS INTEGER)"


# --- who is counted --------------------------------------------------------------------

T = CandidateTransition.__table__
PT = PlacementTransition.__table__
P = Placement.__table__
V = Vacancy.__table__
C = Candidate.__table__
A = Activity.__table__

# A filter on a field the caller's view of a person lacks would reveal it by difference
# (the candidates list refuses them for the same reason).
HIDDEN_FILTERS: dict[Role, tuple[str, ...]] = {
    Role.LANDLORD: ("structure_id",),
    Role.PRESCRIBER: ("departement", "region"),
}


@dataclass(frozen=True, slots=True)
class Scope:
    """The people a figure counts (conditions on candidates) and, for hires, the
    landlords whose vacancies they must be on."""

    people: tuple[ColumnElement[bool], ...]
    landlords: tuple[uuid.UUID, ...]
    masked: bool

    def members(self, column: Any) -> list[ColumnElement[bool]]:
        if not self.people:
            return []
        return [column.in_(select(C.c.id).where(*self.people))]

    def hires_at(self, vacancy_id: Any) -> list[ColumnElement[bool]]:
        return [
            vacancy_id.in_(select(V.c.id).where(V.c.landlord_id == landlord))
            for landlord in self.landlords
        ]


def _hired_by(landlord_id: uuid.UUID, as_of: datetime) -> Select[Any]:
    """The people who started a job on one of the landlord's vacancies, as known at as_of."""
    return (
        select(P.c.candidate_id)
        .join(PT, PT.c.placement_id == P.c.id)
        .join(V, V.c.id == P.c.vacancy_id)
        .where(
            V.c.landlord_id == landlord_id,
            P.c.vacancy_kind == VacancyKind.JOB.value,
            PT.c.to_status == PlacementStatus.STARTED.value,
            PT.c.recorded_at <= as_of,
        )
    )


# Objective progress counts over the objective's scope, whoever reads it.
_OBJECTIVE_READER = SYSTEM_ACTOR


async def _plan_each_query(session: AsyncSession) -> None:
    """Figures are few, heavy queries whose best plan depends on their values (a national
    scan, or a département's few thousand people through an index): PostgreSQL plans each
    one for its values instead of reusing a generic plan after five runs."""
    if session.get_bind().dialect.name == "postgresql":
        await session.execute(text("SET LOCAL plan_cache_mode = force_custom_plan"))


def scope_of(actor: Actor, filters: Filters, as_of: datetime) -> Scope:
    """The caller's share of the figures, narrowed by the request's filters."""
    hidden = [name for name in HIDDEN_FILTERS.get(actor.role, ()) if getattr(filters, name)]
    if hidden:
        raise ValidationFailed(
            [
                field_error(
                    ["query", name], f"not a filter the {actor.role.value} role has", "value_error"
                )
                for name in hidden
            ]
        )
    people: list[ColumnElement[bool]] = []
    landlords: list[uuid.UUID] = []
    if filters.structure_id is not None:
        people.append(C.c.structure_id == filters.structure_id)
    if filters.departement is not None:
        people.append(C.c.departement == filters.departement)
    if filters.region is not None:
        people.append(C.c.region == filters.region)
    if filters.landlord_id is not None:
        landlords.append(filters.landlord_id)
    match actor.role:
        case Role.ADMIN:
            pass
        case Role.INSERTION:
            people.append(C.c.structure_id == actor.structure_id)
        case Role.PRESCRIBER:
            people.append(C.c.referrer_id == actor.structure_id)
        case Role.LANDLORD:
            assert actor.structure_id is not None
            landlords.append(actor.structure_id)
        case Role.OBSERVER:
            territory = actor.territory
            if territory is not None and territory.level is TerritoryLevel.REGION:
                people.append(C.c.region == territory.code)
            elif territory is not None and territory.level is TerritoryLevel.DEPARTEMENT:
                people.append(C.c.departement == territory.code)
    for landlord in dict.fromkeys(landlords):
        people.append(C.c.id.in_(_hired_by(landlord, as_of)))
    return Scope(tuple(people), tuple(dict.fromkeys(landlords)), actor.role is not Role.ADMIN)


async def checked_scope(
    session: AsyncSession, actor: Actor, filters: Filters, as_of: datetime
) -> Scope:
    """`scope_of`, once the structures a query names are checked as a body's would be:
    unknown is a 422, a structure of another kind a 409, except for a caller who may not
    read structures (observers): for it another kind is the unknown id's 422, so that the
    figures do not tell it what it may not read elsewhere (that an id is a structure, and
    of which kind)."""
    scope = scope_of(actor, filters, as_of)
    named = (
        ("structure_id", filters.structure_id, StructureKind.INSERTION),
        ("landlord_id", filters.landlord_id, StructureKind.LANDLORD),
    )
    kinds_hidden = not structures.reads_structures(actor)
    for field, structure_id, kind in named:
        if structure_id is not None:
            await structures.require_kind(
                session, structure_id, kind, field, within=("query",), kinds_hidden=kinds_hidden
            )
    return scope


# --- masking ---------------------------------------------------------------------------


class Masker:
    """Withholds counts concerning 1 to threshold-1 people, and what derives from them."""

    def __init__(self, scope: Scope, settings: Settings) -> None:
        self.threshold = settings.stats_mask_threshold if scope.masked else 0
        self.masked: list[str] = []

    def hides(self, people: int) -> bool:
        return 0 < people < self.threshold

    def count(self, name: str, value: int) -> int | None:
        if self.hides(value):
            self.masked.append(name)
            return None
        return value

    def derived(self, name: str, value: Any, *inputs: str, people: Iterable[int] = ()) -> Any:
        """A rate or total: withheld when an input is, or when it concerns too few."""
        if value is None:
            return None
        if any(i in self.masked for i in inputs) or any(self.hides(n) for n in people):
            self.masked.append(name)
            return None
        return value


def _rate(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def _count_if(*conditions: ColumnElement[bool]) -> ColumnElement[int]:
    return func.coalesce(func.sum(case((and_(*conditions), 1), else_=0)), 0)


def _in_period(column: Any, period: Period) -> list[ColumnElement[bool]]:
    lo = period.lo
    return [column < period.hi] if lo is None else [column >= lo, column < period.hi]


def _days(period: Period, column: Any) -> list[ColumnElement[bool]]:
    days = [column <= period.end]
    return days if period.start is None else [column >= period.start, *days]


# --- the figures -----------------------------------------------------------------------


async def funnel(
    session: AsyncSession, actor: Actor, settings: Settings, period: Period, filters: Filters
) -> dict[str, Any]:
    scope = await checked_scope(session, actor, filters, period.as_of)
    await _plan_each_query(session)
    known = [T.c.recorded_at <= period.as_of, T.c.at < period.hi, *scope.members(T.c.candidate_id)]
    started = [] if period.lo is None else [T.c.at >= period.lo]
    # A span still open at the end of the period, as known at as_of.
    open_at_end = or_(
        T.c.ended_at.is_(None), T.c.ended_at >= period.hi, T.c.ended_recorded_at > period.as_of
    )

    def first_reach(phase: Phase) -> ColumnElement[int]:
        return _count_if(T.c.to_phase == phase.value, T.c.first_reach, *started)

    exited = T.c.to_phase == Phase.EXITED.value
    row = (
        await session.execute(
            select(
                _count_if(T.c.from_phase.is_(None), *started).label("entered"),
                first_reach(Phase.SUPPORT).label("reached_support"),
                first_reach(Phase.SECURING).label("reached_securing"),
                first_reach(Phase.EMPLOYED).label("hired"),
                *(
                    _count_if(T.c.to_phase == phase.value, open_at_end).label(phase.value)
                    for phase in Phase
                ),
                # Whoever left in the period and is still out at its end: that exit is their
                # last one in the period.
                *(
                    _count_if(exited, open_at_end, T.c.reason == reason.value, *started).label(
                        f"out_{reason.value}"
                    )
                    for reason in EXIT_REASONS
                ),
            ).where(*known)
        )
    ).one()
    exits = {reason.value: int(getattr(row, f"out_{reason.value}")) for reason in EXIT_REASONS}
    # The few who came back within the period: each one's last exit there counts, unless
    # it is one of those still open at the end (counted above). A window over their exits
    # only, not over everyone's.
    came_back_ids = select(T.c.candidate_id).where(exited, ~open_at_end, *known, *started)
    their_exits = (
        select(
            T.c.reason,
            open_at_end.label("still_out"),
            func.row_number()
            .over(partition_by=T.c.candidate_id, order_by=(T.c.at.desc(), T.c.id.desc()))
            .label("n"),
        )
        .where(exited, *known, *started, T.c.candidate_id.in_(came_back_ids))
        .subquery()
    )
    came_back = (
        await session.execute(
            select(their_exits.c.reason, func.count())
            .where(their_exits.c.n == 1, ~their_exits.c.still_out)
            .group_by(their_exits.c.reason)
        )
    ).all()
    for reason, n in came_back:
        exits[str(reason)] += int(n)
    mask = Masker(scope, settings)
    return {
        "entered": mask.count("entered", int(row.entered)),
        "reached_support": mask.count("reached_support", int(row.reached_support)),
        "reached_securing": mask.count("reached_securing", int(row.reached_securing)),
        "hired": mask.count("hired", int(row.hired)),
        "exited": mask.count("exited", sum(exits.values())),
        "exited_by_reason": {
            reason.value: mask.count(f"exited_by_reason.{reason.value}", exits.get(reason.value, 0))
            for reason in sorted(EXIT_REASONS)
        },
        "in_phase": {
            phase.value: mask.count(f"in_phase.{phase.value}", int(getattr(row, phase.value)))
            for phase in Phase
        },
        "masked": mask.masked,
    }


def _due_cutoff(as_of_day: date, months: int) -> date:
    """The last start day whose follow-up `months` later has fallen due by as_of_day."""
    day = as_of_day - timedelta(days=31 * months + 3)
    while months_later(day + timedelta(days=1), months) <= as_of_day:
        day += timedelta(days=1)
    return day


def _job_starts(period: Period, scope: Scope) -> list[ColumnElement[bool]]:
    """Job placements started in the period, as known at as_of, on the scope's vacancies."""
    return [
        PT.c.to_status == PlacementStatus.STARTED.value,
        P.c.vacancy_kind == VacancyKind.JOB.value,
        PT.c.recorded_at <= period.as_of,
        *_in_period(PT.c.at, period),
        *scope.members(P.c.candidate_id),
        *scope.hires_at(P.c.vacancy_id),
    ]


async def outcomes(
    session: AsyncSession, actor: Actor, settings: Settings, period: Period, filters: Filters
) -> dict[str, Any]:
    scope = await checked_scope(session, actor, filters, period.as_of)
    await _plan_each_query(session)
    as_of = period.as_of
    as_of_day = as_of.astimezone(UTC).date()
    retention_columns = []
    for months in (6, 12):
        due = PT.c.at < _midnight(_due_cutoff(as_of_day, months) + timedelta(days=1))
        recorded = P.c[f"follow_up_{months}m_recorded_at"] <= as_of
        in_post = P.c[f"follow_up_{months}m_in_post"].is_(True)
        retention_columns += [
            _count_if(due).label(f"due_{months}"),
            _count_if(due, recorded).label(f"followed_{months}"),
            _count_if(due, recorded, in_post).label(f"in_post_{months}"),
        ]
    hires = (
        await session.execute(
            select(func.count().label("hires"), *retention_columns)
            .select_from(PT.join(P, P.c.id == PT.c.placement_id))
            .where(*_job_starts(period, scope))
        )
    ).one()

    # Every row carries when its person's path began: the hire rate and the time to hire
    # read the first moves to employed without a join.
    employed_first = and_(T.c.to_phase == Phase.EMPLOYED.value, T.c.first_reach)
    known = [T.c.recorded_at <= as_of, T.c.at < period.hi, *scope.members(T.c.candidate_id)]
    entered_in = [] if period.lo is None else [T.c.entered_at >= period.lo]
    path_row = (
        await session.execute(
            select(
                _count_if(T.c.from_phase.is_(None), *entered_in).label("entered"),
                _count_if(employed_first, *entered_in).label("hired"),
            ).where(or_(T.c.from_phase.is_(None), employed_first), *known)
        )
    ).one()
    days = days_between(T.c.entered_at, T.c.at)
    ranked = (
        select(
            days.label("days"),
            func.row_number().over(order_by=days).label("n"),
            func.count().over().label("people"),
        )
        .where(employed_first, *known, *_in_period(T.c.at, period))
        .subquery()
    )
    median_row = (
        await session.execute(
            select(
                func.avg(ranked.c.days).label("median_days"),
                func.max(ranked.c.people).label("people"),
            ).where(ranked.c.n.in_([(ranked.c.people + 1) // 2, (ranked.c.people + 2) // 2]))
        )
    ).one()
    median = None if median_row.median_days is None else round(float(median_row.median_days), 1)
    hired_people = int(median_row.people or 0)

    # The period's trainings and exams, each kind through its covering index.
    def activities_of(kind: ActivityType) -> list[ColumnElement[bool]]:
        return [
            A.c.type == kind.value,
            A.c.created_at <= as_of,
            *_days(period, A.c.occurred_on),
            *scope.members(A.c.candidate_id),
        ]

    training = ActivityType.TRAINING
    exam = ActivityType.CERTIFICATION_EXAM
    passed_by = case((A.c.outcome == ActivityOutcome.POSITIVE.value, A.c.candidate_id))
    activity_row = (
        await session.execute(
            select(
                select(func.coalesce(func.sum(A.c.hours), 0))
                .where(*activities_of(training))
                .scalar_subquery()
                .label("hours"),
                select(func.count(func.distinct(A.c.candidate_id)))
                .where(*activities_of(training))
                .scalar_subquery()
                .label("trained"),
                select(func.count(func.distinct(A.c.candidate_id)))
                .where(*activities_of(exam))
                .scalar_subquery()
                .label("sat"),
                select(func.count(func.distinct(passed_by)))
                .where(*activities_of(exam))
                .scalar_subquery()
                .label("passed"),
            )
        )
    ).one()

    mask = Masker(scope, settings)
    out: dict[str, Any] = {"hires": mask.count("hires", int(hires.hires))}
    out["hire_rate"] = mask.derived(
        "hire_rate",
        _rate(int(path_row.hired), int(path_row.entered)),
        people=(int(path_row.entered), int(path_row.hired)),
    )
    for months in (6, 12):
        key = f"retention_{months}m"
        followed = int(getattr(hires, f"followed_{months}"))
        kept = int(getattr(hires, f"in_post_{months}"))
        out[key] = {
            "due": mask.count(f"{key}.due", int(getattr(hires, f"due_{months}"))),
            "followed_up": mask.count(f"{key}.followed_up", followed),
            "in_post": mask.count(f"{key}.in_post", kept),
        }
        out[key]["rate"] = mask.derived(
            f"{key}.rate", _rate(kept, followed), f"{key}.followed_up", f"{key}.in_post"
        )
    out["median_days_to_hire"] = mask.derived("median_days_to_hire", median, people=(hired_people,))
    trained = int(activity_row.trained)
    total = float(activity_row.hours)
    out["training_hours"] = {
        "total": mask.derived("training_hours.total", total, people=(trained,)),
        "per_person": mask.derived(
            "training_hours.per_person",
            round(total / trained, 1) if trained else None,
            people=(trained,),
        ),
    }
    sat = mask.count("certification.sat", int(activity_row.sat))
    passed = mask.count("certification.passed", int(activity_row.passed))
    out["certification"] = {
        "sat": sat,
        "passed": passed,
        "pass_rate": mask.derived(
            "certification.pass_rate",
            _rate(int(activity_row.passed), int(activity_row.sat)),
            "certification.sat",
            "certification.passed",
        ),
    }
    out["masked"] = mask.masked
    return out


def _months(first: date, last: date) -> list[str]:
    months, year, month = [], first.year, first.month
    while (year, month) <= (last.year, last.month):
        months.append(f"{year:04d}-{month:02d}")
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return months


async def monthly(
    session: AsyncSession, actor: Actor, settings: Settings, period: Period, filters: Filters
) -> dict[str, Any]:
    scope = await checked_scope(session, actor, filters, period.as_of)
    await _plan_each_query(session)
    entries: dict[str, int] = {
        str(month): int(n)
        for month, n in (
            await session.execute(
                select(utc_month(T.c.at).label("month"), func.count())
                .where(
                    T.c.from_phase.is_(None),
                    T.c.recorded_at <= period.as_of,
                    *_in_period(T.c.at, period),
                    *scope.members(T.c.candidate_id),
                )
                .group_by(literal_column("month"))
            )
        ).all()
    }
    hires: dict[str, int] = {
        str(month): int(n)
        for month, n in (
            await session.execute(
                select(utc_month(PT.c.at).label("month"), func.count())
                .select_from(PT.join(P, P.c.id == PT.c.placement_id))
                .where(*_job_starts(period, scope))
                .group_by(literal_column("month"))
            )
        ).all()
    }
    first = period.start
    if first is None:
        seen = sorted({*entries, *hires})
        first = date.fromisoformat(f"{seen[0]}-01") if seen else period.end
    rows = []
    for month in _months(first, period.end):
        mask = Masker(scope, settings)
        rows.append(
            {
                "month": month,
                "entries": mask.count("entries", entries.get(month, 0)),
                "hires": mask.count("hires", hires.get(month, 0)),
                "masked": mask.masked,
            }
        )
    return {"months": rows}


async def hires_in_year(
    session: AsyncSession,
    *,
    masked: bool,
    settings: Settings,
    year: int,
    filters: Filters,
    as_of: datetime,
) -> tuple[int | None, list[str]]:
    """An objective's hires: job starts in the year within its scope (`filters`)."""
    period = Period(date(year, 1, 1), date(year, 12, 31), as_of)
    scope = scope_of(_OBJECTIVE_READER, filters, as_of)
    await _plan_each_query(session)
    count = await session.scalar(
        select(func.count())
        .select_from(PT.join(P, P.c.id == PT.c.placement_id))
        .where(*_job_starts(period, scope))
    )
    mask = Masker(Scope(scope.people, scope.landlords, masked), settings)
    return mask.count("hires", int(count or 0)), mask.masked


def projected(hires: int, year: int, as_of: datetime) -> int | None:
    """The hires expected by the end of the year at the pace so far (see DEFINITIONS)."""
    day = as_of.astimezone(UTC).date()
    first, last = date(year, 1, 1), date(year, 12, 31)
    if day < first:
        return None
    if day > last:
        return hires
    elapsed = (day - first).days + 1
    length = (last - first).days + 1
    return math.floor(hires * length / elapsed + 0.5)


def flatten(figures: dict[str, Any], prefix: str = "") -> Iterable[tuple[str, Any]]:
    """(dotted name, value) pairs of a figures document, for the CSV answers."""
    for name, value in figures.items():
        if name == "masked":
            continue
        key = f"{prefix}{name}"
        if isinstance(value, dict):
            yield from flatten(value, f"{key}.")
        else:
            yield key, value


def masked_names(figures: dict[str, Any]) -> Sequence[str]:
    names: Sequence[str] = figures.get("masked", [])
    return names
