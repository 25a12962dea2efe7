from __future__ import annotations

import datetime as dt
import uuid
from typing import Annotated, ClassVar, Literal

from pydantic import ConfigDict, Field, StringConstraints, model_validator

from app.domain.enums import (
    Appellation,
    ContractType,
    MissionType,
    VacancyKind,
    VacancyStatus,
)
from app.schemas.common import (
    AddressLine,
    CommuneInsee,
    CompetencyRequirements,
    EntityRead,
    ExternalRef,
    FieldRuleError,
    InputModel,
    Latitude,
    Longitude,
    LongName,
    Name,
    Page,
    Postcode,
    RncpCode,
    UpdateModel,
    check_coordinates,
    check_dates,
)

WeeklyHours = Annotated[float, Field(gt=0, le=60, description="Contractual hours per week.")]
Positions = Annotated[int, Field(ge=1, le=500, description="Number of people to hire.")]
Description = Annotated[str, StringConstraints(max_length=5000)]
RomeCode = Literal["K2501"]
CREATABLE_STATUSES = (VacancyStatus.DRAFT, VacancyStatus.OPEN)


def check_vacancy_kind(
    kind: VacancyKind, contract_type: ContractType, mission_type: MissionType | None
) -> None:
    if kind is VacancyKind.MISSION:
        if contract_type is not ContractType.MISSION:
            raise FieldRuleError("a mission has contract_type 'mission'", "contract_type")
        if mission_type is None:
            raise FieldRuleError("a mission needs a mission_type", "mission_type")
    else:
        if contract_type is ContractType.MISSION:
            raise FieldRuleError(
                "a job has a job contract_type (cdi, cdd, ...), not 'mission'", "contract_type"
            )
        if mission_type is not None:
            raise FieldRuleError("mission_type is for missions only", "mission_type")


class VacancyCreate(InputModel):
    landlord_id: uuid.UUID = Field(description="The landlord structure posting the vacancy.")
    title: LongName
    description: Description | None = None
    kind: VacancyKind
    mission_type: MissionType | None = Field(
        default=None, description="Required for missions, absent for jobs."
    )
    contract_type: ContractType
    rome_code: RomeCode = "K2501"
    appellation_code: Appellation = Appellation.GARDIEN_IMMEUBLE
    weekly_hours: WeeklyHours = 35
    positions: Positions = 1
    address_line: AddressLine | None = None
    postcode: Postcode
    commune_insee: CommuneInsee
    commune_name: Name | None = None
    latitude: Latitude | None = None
    longitude: Longitude | None = None
    onsite_housing: bool = Field(
        default=False, description="Housed on site (logement de fonction)."
    )
    driving_licence_required: bool = False
    required_competencies: CompetencyRequirements = Field(
        default_factory=lambda: CompetencyRequirements()
    )
    required_certification: RncpCode | None = None
    start_date: dt.date
    end_date: dt.date | None = None
    status: Literal[VacancyStatus.DRAFT, VacancyStatus.OPEN] = VacancyStatus.DRAFT
    external_ref: ExternalRef | None = None

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "landlord_id": "01939a2e-0000-7000-8000-000000000002",
                    "title": "Gardien d'immeuble, résidence Les Tilleuls",
                    "kind": "job",
                    "contract_type": "cdi",
                    "appellation_code": "15228",
                    "weekly_hours": 35,
                    "positions": 1,
                    "postcode": "69008",
                    "commune_insee": "69388",
                    "commune_name": "Lyon 8e",
                    "onsite_housing": False,
                    "required_competencies": {"cleaning_hygiene": 2, "tenant_welcome": 2},
                    "required_certification": "RNCP40892",
                    "start_date": "2027-01-04",
                    "status": "open",
                }
            ]
        }
    )

    @model_validator(mode="after")
    def _rules(self) -> VacancyCreate:
        check_vacancy_kind(self.kind, self.contract_type, self.mission_type)
        check_coordinates(self.latitude, self.longitude)
        check_dates(self.start_date, self.end_date)
        return self


class VacancyUpdate(UpdateModel):
    """The landlord and kind are fixed at creation; post a new vacancy instead."""

    non_nullable: ClassVar[frozenset[str]] = frozenset(
        {
            "title",
            "contract_type",
            "appellation_code",
            "weekly_hours",
            "positions",
            "postcode",
            "commune_insee",
            "onsite_housing",
            "driving_licence_required",
            "required_competencies",
            "start_date",
            "status",
        }
    )

    title: LongName | None = None
    description: Description | None = None
    mission_type: MissionType | None = None
    contract_type: ContractType | None = None
    appellation_code: Appellation | None = None
    weekly_hours: WeeklyHours | None = None
    positions: Positions | None = None
    address_line: AddressLine | None = None
    postcode: Postcode | None = None
    commune_insee: CommuneInsee | None = None
    commune_name: Name | None = None
    latitude: Latitude | None = None
    longitude: Longitude | None = None
    onsite_housing: bool | None = None
    driving_licence_required: bool | None = None
    required_competencies: CompetencyRequirements | None = None
    required_certification: RncpCode | None = None
    start_date: dt.date | None = None
    end_date: dt.date | None = None
    status: (
        Literal[
            VacancyStatus.DRAFT, VacancyStatus.OPEN, VacancyStatus.CLOSED, VacancyStatus.CANCELLED
        ]
        | None
    ) = Field(default=None, description="`filled` is set by the service, never by hand.")
    external_ref: ExternalRef | None = None

    model_config = ConfigDict(json_schema_extra={"examples": [{"status": "open", "positions": 2}]})


class Vacancy(EntityRead):
    landlord_id: uuid.UUID
    title: str
    description: str | None
    kind: VacancyKind
    mission_type: MissionType | None
    contract_type: ContractType
    rome_code: str
    appellation_code: str
    weekly_hours: float
    positions: int
    address_line: str | None
    postcode: str
    commune_insee: str
    commune_name: str | None
    departement: str
    region: str
    latitude: float | None
    longitude: float | None
    onsite_housing: bool
    driving_licence_required: bool
    required_competencies: CompetencyRequirements
    required_certification: str | None
    start_date: dt.date
    end_date: dt.date | None
    status: VacancyStatus
    filled_positions: int = Field(description="Placements accepted or started.")
    external_ref: str | None = Field(description="The landlord's own reference.")


class VacancyPage(Page[Vacancy]):
    pass
