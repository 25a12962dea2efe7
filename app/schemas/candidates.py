from __future__ import annotations

import datetime as dt
import uuid
from typing import Annotated, Any, ClassVar, Literal

from pydantic import AfterValidator, ConfigDict, EmailStr, Field, model_validator

from app.domain.enums import CandidateView, CertificationStatus, ContractType, Phase
from app.domain.identifiers import normalise_phone
from app.schemas.common import (
    CommuneInsee,
    CompetencyLevels,
    EntityRead,
    InputModel,
    Latitude,
    Longitude,
    Name,
    Page,
    Postcode,
    ReadModel,
    RncpCode,
    UpdateModel,
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


def _birth_date(value: dt.date) -> dt.date:
    today = dt.date.today()
    min_age = MIN_CANDIDATE_AGE
    if value > _years_before(today, min_age):
        raise ValueError(f"the person must be at least {min_age} years old")
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
    Field(max_length=len(ContractType), description="Contract types wanted; empty: any."),
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

    model_config = ConfigDict(
        json_schema_extra={"examples": [{"max_commute_km": 40, "consent_to_share": True}]}
    )


class CertificationRead(ReadModel):
    rncp_code: str
    status: CertificationStatus
    date: dt.date | None


class Candidate(EntityRead):
    """The full profile: admins, the accompanying structure, and a landlord once one
    of its placements for the person is accepted."""

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


class CandidateReduced(EntityRead):
    """What a landlord sees of a person proposed to it, until a placement is accepted."""

    view: Literal[CandidateView.REDUCED] = CandidateView.REDUCED
    first_name: str
    last_name_initial: str
    commune_insee: str
    commune_name: str | None
    departement: str
    competencies: CompetencyLevels
    certifications: list[CertificationRead]
    phase: Phase


class CandidateReferral(EntityRead):
    """What a prescriber sees of a person it referred: who, where they are, the outcome."""

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


def present(
    candidate: object, view: CandidateView
) -> Candidate | CandidateReduced | CandidateReferral:
    """The representation of a stored candidate (entity or row) that a view allows."""
    mapping = getattr(candidate, "_mapping", None)
    if mapping is not None:  # a row: pydantic validates a dict fastest
        candidate = dict(mapping)
    if view is CandidateView.FULL:
        return Candidate.model_validate(candidate)
    if view is CandidateView.REFERRAL:
        return CandidateReferral.model_validate(candidate)
    source = candidate

    def value(name: str) -> Any:
        return source[name] if isinstance(source, dict) else getattr(source, name)

    last_name: str = value("last_name")
    return CandidateReduced.model_validate(
        {
            **{
                name: value(name)
                for name in CandidateReduced.model_fields
                if name not in {"view", "last_name_initial"}
            },
            "last_name_initial": f"{last_name[:1]}.",
        }
    )
