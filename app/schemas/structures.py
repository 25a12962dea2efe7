from __future__ import annotations

from typing import Annotated, ClassVar

from pydantic import AfterValidator, BeforeValidator, ConfigDict, Field, model_validator

from app.domain.enums import ALL_SUB_KINDS, SUB_KINDS, StructureKind
from app.domain.identifiers import siret_valid
from app.schemas.common import (
    AddressLine,
    CommuneInsee,
    EntityRead,
    FieldRuleError,
    InputModel,
    Latitude,
    Longitude,
    LongName,
    Name,
    Page,
    Postcode,
    UpdateModel,
    check_coordinates,
)


def _compact(value: object) -> object:
    return value.replace(" ", "") if isinstance(value, str) else value


def _check_siret(value: str) -> str:
    if not siret_valid(value):
        raise ValueError("not a valid SIRET (14 digits with a valid checksum)")
    return value


Siret = Annotated[
    str,
    BeforeValidator(_compact),
    Field(pattern=r"^[0-9]{14}$", examples=["44306184100047"]),
    AfterValidator(_check_siret),
]


def _known_sub_kind(value: str) -> str:
    if value not in ALL_SUB_KINDS:
        raise ValueError("not a known sub_kind")
    return value


# The enum the spec shows is enforced here; which values fit which kind, by the service.
SubKind = Annotated[
    str, Field(json_schema_extra={"enum": list(ALL_SUB_KINDS)}), AfterValidator(_known_sub_kind)
]


def check_sub_kind(kind: StructureKind, sub_kind: str) -> None:
    if sub_kind not in SUB_KINDS[kind]:
        allowed = ", ".join(sorted(SUB_KINDS[kind]))
        raise FieldRuleError(
            f"sub_kind of a {kind.value} structure is one of: {allowed}", "sub_kind"
        )


class StructureCreate(InputModel):
    kind: StructureKind
    sub_kind: SubKind
    name: LongName
    siret: Siret
    address_line: AddressLine | None = None
    postcode: Postcode
    commune_insee: CommuneInsee
    commune_name: Name | None = None
    latitude: Latitude | None = None
    longitude: Longitude | None = None

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "kind": "insertion",
                    "sub_kind": "AI",
                    "name": "Passerelle Emploi Seine (fictional)",
                    "siret": "44306184100047",
                    "address_line": "12 rue des Lilas",
                    "postcode": "76000",
                    "commune_insee": "76540",
                    "commune_name": "Rouen",
                    "latitude": 49.4431,
                    "longitude": 1.0993,
                }
            ]
        }
    )

    @model_validator(mode="after")
    def _rules(self) -> StructureCreate:
        check_sub_kind(self.kind, self.sub_kind)
        check_coordinates(self.latitude, self.longitude)
        return self


class StructureUpdate(UpdateModel):
    """The kind of a structure is fixed at creation: references depend on it."""

    non_nullable: ClassVar[frozenset[str]] = frozenset(
        {"sub_kind", "name", "siret", "postcode", "commune_insee"}
    )

    sub_kind: SubKind | None = None
    name: LongName | None = None
    siret: Siret | None = None
    address_line: AddressLine | None = None
    postcode: Postcode | None = None
    commune_insee: CommuneInsee | None = None
    commune_name: Name | None = None
    latitude: Latitude | None = None
    longitude: Longitude | None = None

    model_config = ConfigDict(json_schema_extra={"examples": [{"name": "Passerelle Emploi Seine"}]})


class Structure(EntityRead):
    kind: StructureKind
    sub_kind: str
    name: str
    siret: str
    address_line: str | None
    postcode: str
    commune_insee: str
    commune_name: str | None
    departement: str = Field(description="Derived from commune_insee.")
    region: str = Field(description="INSEE region code, derived from commune_insee.")
    latitude: float | None
    longitude: float | None


class StructurePage(Page[Structure]):
    pass
