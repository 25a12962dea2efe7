from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable
from functools import partial
from typing import Annotated, Any, ClassVar, Literal

from pydantic import AfterValidator, ConfigDict, EmailStr, Field, model_validator

from app.domain.enums import CandidateView, CertificationStatus, ContractType, Phase
from app.domain.identifiers import normalise_phone
from app.schemas.common import (
    CommuneInsee,
    CompetencyLevels,
    EntityRead,
    ExternalRef,
    InputModel,
    Latitude,
    Longitude,
    Name,
    Page,
    Postcode,
    ReadModel,
    RncpCode,
    UpdateModel,
    UtcInstant,
    check_coordinates,
)

# DOMAIN.md: a candidate is at least 16 years old (the end of compulsory schooling).
MIN_CANDIDATE_AGE = 16


def _phone(value: str) -> str:
    normalised = normalise_phone(value)
    if normalised is None:
        raise ValueError("not a phone number (French national or +international form)")
    return normalised


def _years_before(day: dt.date, years: int) -> dt.date:
    try:
        return day.replace(year=day.year - years)
    except ValueError:  # 29 February
        return day.replace(year=day.year - years, day=28)


def old_enough(birth_date: dt.date, on: dt.date) -> bool:
    """Was the person at least MIN_CANDIDATE_AGE on that day: today for a path beginning
    now, the day it began for an imported one (app.services.dates.old_enough_at_entry).
    Nobody was born before year 1: a day in its first MIN_CANDIDATE_AGE years is too early
    for anyone (and has no date that many years before it)."""
    if on.year - MIN_CANDIDATE_AGE < dt.MINYEAR:
        return False
    return birth_date <= _years_before(on, MIN_CANDIDATE_AGE)


def _birth_date(value: dt.date) -> dt.date:
    today = dt.date.today()
    if not old_enough(value, today):
        raise ValueError(f"the person must be at least {MIN_CANDIDATE_AGE} years old")
    if value < _years_before(today, 100):
        raise ValueError("birth date is more than 100 years ago")
    return value


Phone = Annotated[
    str, Field(min_length=6, max_length=30, examples=["06 12 34 56 78"]), AfterValidator(_phone)
]
BirthDate = Annotated[dt.date, AfterValidator(_birth_date)]
CommuteKm = Annotated[int, Field(ge=0, le=300, description="Longest acceptable commute, km.")]


class CertificationEntry(InputModel):
    rncp_code: RncpCode = Field(examples=["RNCP40892"])
    status: CertificationStatus
    date: dt.date | None = Field(
        default=None, description="Date obtained (held) or expected (in progress)."
    )


def _unique_rncp(entries: list[CertificationEntry]) -> list[CertificationEntry]:
    codes = [e.rncp_code for e in entries]
    if len(codes) != len(set(codes)):
        raise ValueError("each RNCP code appears at most once")
    return entries


def _unique_contracts(values: list[ContractType]) -> list[ContractType]:
    if len(values) != len(set(values)):
        raise ValueError("each contract type appears at most once")
    return values


ContractPreferences = Annotated[
    list[ContractType],
    Field(
        max_length=len(ContractType),
        description="Contract types wanted; empty: any.",
        json_schema_extra={"uniqueItems": True},
    ),
    AfterValidator(_unique_contracts),
]
MaxWeeklyHours = Annotated[float, Field(gt=0, le=60, description="Most hours a week wanted.")]

Certifications = Annotated[
    list[CertificationEntry], Field(max_length=20), AfterValidator(_unique_rncp)
]


class CandidateCreate(InputModel):
    first_name: Name
    last_name: Name
    birth_date: BirthDate
    email: EmailStr | None = None
    phone: Phone | None = None
    postcode: Postcode
    commune_insee: CommuneInsee
    commune_name: Name | None = None
    latitude: Latitude | None = None
    longitude: Longitude | None = None
    structure_id: uuid.UUID = Field(description="The insertion structure accompanying the person.")
    referrer_id: uuid.UUID | None = Field(
        default=None, description="The partner that referred the person, if any."
    )
    max_commute_km: CommuteKm = 30
    has_driving_licence: bool = False
    accepts_onsite_housing: bool = False
    available_from: dt.date | None = None
    competencies: CompetencyLevels = Field(default_factory=lambda: CompetencyLevels())
    certifications: Certifications = Field(default_factory=list)
    preferred_contract_types: ContractPreferences = Field(default_factory=list)
    max_weekly_hours: MaxWeeklyHours | None = None
    consent_to_share: bool = Field(
        default=False,
        description="The person agreed to share their profile with landlords; "
        "the time of consent is recorded.",
    )
    external_ref: ExternalRef | None = None
    entered_at: UtcInstant | None = Field(
        default=None,
        description="When the person's path began, to import past history (default: now; "
        f"not in the future, nor before the person was {MIN_CANDIDATE_AGE}). Admins and the "
        "person's insertion structure only. It is the first row of the history, from which "
        "every figure counts.",
    )

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "first_name": "Camille",
                    "last_name": "Exemple",
                    "birth_date": "1990-04-12",
                    "email": "camille.exemple@example.org",
                    "phone": "06 00 00 00 01",
                    "postcode": "76000",
                    "commune_insee": "76540",
                    "commune_name": "Rouen",
                    "structure_id": "01939a2e-0000-7000-8000-000000000001",
                    "max_commute_km": 25,
                    "has_driving_licence": True,
                    "competencies": {"cleaning_hygiene": 2, "tenant_welcome": 1},
                    "certifications": [{"rncp_code": "RNCP40892", "status": "in_progress"}],
                    "consent_to_share": True,
                }
            ]
        }
    )

    @model_validator(mode="after")
    def _rules(self) -> CandidateCreate:
        check_coordinates(self.latitude, self.longitude)
        return self


class CandidateUpdate(UpdateModel):
    """`phase` is absent on purpose: only path transitions change it."""

    non_nullable: ClassVar[frozenset[str]] = frozenset(
        {
            "first_name",
            "last_name",
            "birth_date",
            "postcode",
            "commune_insee",
            "structure_id",
            "max_commute_km",
            "has_driving_licence",
            "accepts_onsite_housing",
            "competencies",
            "certifications",
            "preferred_contract_types",
            "consent_to_share",
        }
    )

    first_name: Name | None = None
    last_name: Name | None = None
    birth_date: BirthDate | None = None
    email: EmailStr | None = None
    phone: Phone | None = None
    postcode: Postcode | None = None
    commune_insee: CommuneInsee | None = None
    commune_name: Name | None = None
    latitude: Latitude | None = None
    longitude: Longitude | None = None
    structure_id: uuid.UUID | None = None
    referrer_id: uuid.UUID | None = None
    max_commute_km: CommuteKm | None = None
    has_driving_licence: bool | None = None
    accepts_onsite_housing: bool | None = None
    available_from: dt.date | None = None
    competencies: CompetencyLevels | None = None
    certifications: Certifications | None = None
    preferred_contract_types: ContractPreferences | None = None
    max_weekly_hours: MaxWeeklyHours | None = None
    consent_to_share: bool | None = None
    external_ref: ExternalRef | None = None

    model_config = ConfigDict(
        json_schema_extra={"examples": [{"max_commute_km": 40, "consent_to_share": True}]}
    )


class CertificationRead(ReadModel):
    rncp_code: str
    status: CertificationStatus
    date: dt.date | None


class Candidate(EntityRead):
    """The full profile: admins, the accompanying structure, and a landlord while one of
    its placements for the person is accepted or started."""

    view: Literal[CandidateView.FULL] = CandidateView.FULL
    first_name: str
    last_name: str
    birth_date: dt.date
    email: str | None
    phone: str | None
    postcode: str
    commune_insee: str
    commune_name: str | None
    departement: str
    region: str
    latitude: float | None
    longitude: float | None
    structure_id: uuid.UUID
    referrer_id: uuid.UUID | None
    max_commute_km: int
    has_driving_licence: bool
    accepts_onsite_housing: bool
    available_from: dt.date | None
    competencies: CompetencyLevels
    certifications: list[CertificationRead]
    preferred_contract_types: list[ContractType]
    max_weekly_hours: float | None
    training_hours: float = Field(description="Sum of the training activities' hours.")
    positive_skills_assessments: int
    consent_to_share: bool
    consent_given_at: dt.datetime | None
    phase: Phase = Field(description="Read-only: changed by path transitions only.")
    phase_changed_at: dt.datetime
    external_ref: str | None = Field(description="The accompanying structure's own reference.")


_VIEW_STAMP = (
    "This view's own: it moves only when a field of this view changes, never when a "
    "field it hides does (its ETag follows it)."
)


class CandidateReduced(ReadModel):
    """What a landlord sees of a person proposed to it, until one of its placements for
    them is accepted (and again once none is accepted or started)."""

    id: uuid.UUID
    updated_at: dt.datetime = Field(description=_VIEW_STAMP)
    version: int = Field(description=_VIEW_STAMP)
    view: Literal[CandidateView.REDUCED] = CandidateView.REDUCED
    first_name: str
    last_name_initial: str
    commune_insee: str
    commune_name: str | None
    departement: str
    competencies: CompetencyLevels
    certifications: list[CertificationRead]
    phase: Phase


class CandidateReferral(ReadModel):
    """What a prescriber sees of a person it referred: who, where they are, the outcome."""

    id: uuid.UUID
    created_at: dt.datetime
    updated_at: dt.datetime = Field(description=_VIEW_STAMP)
    version: int = Field(description=_VIEW_STAMP)
    view: Literal[CandidateView.REFERRAL] = CandidateView.REFERRAL
    first_name: str
    last_name: str
    structure_id: uuid.UUID
    phase: Phase
    phase_changed_at: dt.datetime


CandidateAny = Annotated[
    Candidate | CandidateReduced | CandidateReferral, Field(discriminator="view")
]


class CandidatePage(Page[CandidateAny]):
    pass


CandidateRead = Candidate | CandidateReduced | CandidateReferral
VIEW_SCHEMAS: dict[CandidateView, type[CandidateRead]] = {
    CandidateView.FULL: Candidate,
    CandidateView.REDUCED: CandidateReduced,
    CandidateView.REFERRAL: CandidateReferral,
}
# Where each view's version and stamp live on the candidate row.
VIEW_STAMPS: dict[CandidateView, tuple[str, str]] = {
    CandidateView.FULL: ("version", "updated_at"),
    CandidateView.REDUCED: ("reduced_version", "reduced_updated_at"),
    CandidateView.REFERRAL: ("referral_version", "referral_updated_at"),
}
# Identity and stamps: what a view's content is compared without.
STAMP_FIELDS = frozenset({"id", "created_at", "updated_at", "version", "view"})
# Fields a view computes from the row rather than copies (given a reader of the row).
_DERIVED: dict[str, Callable[[Callable[[str], Any]], Any]] = {
    "last_name_initial": lambda read: f"{str(read('last_name') or '')[:1]}.",
}


def shown_fields(view: CandidateView) -> frozenset[str]:
    """The names of what a view shows of a person."""
    return frozenset(VIEW_SCHEMAS[view].model_fields) - {"view"}


def _sources(view: CandidateView) -> tuple[tuple[str, str], ...]:
    """Each field of a view and the column it is read from (its own stamps)."""
    version, stamp = VIEW_STAMPS[view]
    renamed = {"version": version, "updated_at": stamp}
    return tuple(
        (name, renamed.get(name, name))
        for name in VIEW_SCHEMAS[view].model_fields
        if name != "view" and name not in _DERIVED
    )


_SOURCES = {view: _sources(view) for view in CandidateView}
_VIEW_DERIVED = {
    view: tuple(name for name in VIEW_SCHEMAS[view].model_fields if name in _DERIVED)
    for view in CandidateView
}


def present(candidate: Any, view: CandidateView) -> CandidateRead:
    """The representation of a stored candidate that a view allows, with its own stamps.
    `candidate` is an entity (attributes), a row or a dict of columns."""
    read: Callable[[str], Any]
    if isinstance(candidate, dict):
        read = candidate.__getitem__
    elif (mapping := getattr(candidate, "_mapping", None)) is not None:
        # A row (SQLAlchemy Core), read by key: its attribute lookup costs four times as
        # much, a sixth of a 50-row page's CPU.
        read = mapping.__getitem__
    else:
        read = partial(getattr, candidate)
    values = {name: read(source) for name, source in _SOURCES[view]}
    for name in _VIEW_DERIVED[view]:
        values[name] = _DERIVED[name](read)
    return VIEW_SCHEMAS[view].model_validate(values)


def view_content(candidate: Any, view: CandidateView) -> dict[str, Any]:
    """What a view shows of a person, without identity and stamps: the view's version
    moves when, and only when, this changes."""
    return present(candidate, view).model_dump(mode="json", exclude=set(STAMP_FIELDS))
