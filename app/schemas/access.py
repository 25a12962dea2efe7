from __future__ import annotations

import datetime as dt
import uuid
from typing import Annotated, ClassVar, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from app.domain.enums import ActorKind, AuditAction, CandidateView, Role
from app.domain.territory import TERRITORY_PATTERN, parse_territory
from app.schemas.common import (
    EntityRead,
    InputModel,
    LongName,
    Page,
    ReadModel,
    UpdateModel,
    UtcInstant,
)
from app.services.permissions import ALL_SCOPES


def _known_scopes(scopes: list[str]) -> list[str]:
    # Positions, not the values: an error never repeats what was sent.
    unknown = [str(i) for i, scope in enumerate(scopes) if scope not in ALL_SCOPES]
    if unknown:
        raise ValueError(
            f"unknown scopes at positions {', '.join(unknown)}; "
            f"known scopes: {', '.join(ALL_SCOPES)}"
        )
    return sorted(set(scopes))


def _territory(value: str) -> str:
    return str(parse_territory(value))


TerritoryText = Annotated[
    str,
    Field(
        pattern=TERRITORY_PATTERN,
        examples=["national", "region:28", "departement:76"],
        description="Observers only: the territory whose aggregated figures they read: "
        "`national`, `region:<INSEE code>` or `departement:<code>`. Default `national`.",
    ),
    AfterValidator(_territory),
]


def _ahead(value: dt.datetime) -> dt.datetime:
    if value <= dt.datetime.now(dt.UTC):
        raise ValueError("is not in the future: a client created expired could never be used")
    return value


Expiry = Annotated[UtcInstant, AfterValidator(_ahead)]

Scopes = Annotated[
    list[str],
    Field(max_length=len(ALL_SCOPES), json_schema_extra={"items": {"enum": list(ALL_SCOPES)}}),
    AfterValidator(_known_scopes),
]


class ApiClientCreate(InputModel):
    name: LongName
    role: Role
    structure_id: uuid.UUID | None = Field(
        default=None,
        description="The structure the client acts for; required for insertion, landlord "
        "and prescriber clients, empty for national ones.",
    )
    scopes: Scopes | None = Field(
        default=None, description="Defaults to every scope the role can use."
    )
    expires_at: Expiry | None = Field(
        default=None, description="When the client stops working: in the future; null: never."
    )
    territory: TerritoryText | None = None

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "name": "PLIE de l'agglomération : logiciel de suivi",
                    "role": "prescriber",
                    "structure_id": "01939a2e-0000-7000-8000-000000000005",
                    "expires_at": "2027-12-31T23:59:59Z",
                },
                {
                    "name": "DREETS Normandie : tableau de bord",
                    "role": "observer",
                    "territory": "region:28",
                },
            ]
        }
    )


class ApiClientUpdate(UpdateModel):
    non_nullable: ClassVar[frozenset[str]] = frozenset({"name", "scopes", "territory"})

    name: LongName | None = None
    scopes: Scopes | None = None
    expires_at: UtcInstant | None = Field(
        default=None,
        description="When the client stops working; a past instant stops it at once; null: never.",
    )
    territory: TerritoryText | None = None

    model_config = ConfigDict(json_schema_extra={"examples": [{"scopes": ["candidates:read"]}]})


class ApiClient(EntityRead):
    name: str
    role: Role
    structure_id: uuid.UUID | None
    scopes: list[str]
    expires_at: dt.datetime | None
    revoked_at: dt.datetime | None
    territory: str | None = Field(description="Observers: the territory of their figures.")


class ApiClientCredentials(ApiClient):
    """Returned once, at creation and rotation: the secret is not stored and cannot be read
    again."""

    client_secret: str


class ApiClientPage(Page[ApiClient]):
    pass


class TokenRequest(BaseModel):
    """RFC 6749 section 4.4 form (a JSON object with the same fields is accepted too).
    Credentials may come as HTTP Basic instead of fields."""

    # Unknown parameters are ignored, as RFC 6749 section 3.2 asks of a token endpoint.
    model_config = ConfigDict(
        extra="ignore",
        json_schema_extra={
            "examples": [
                {
                    "grant_type": "client_credentials",
                    "client_id": "01939a2e-0000-7000-8000-000000000006",
                    "client_secret": "secret-shown-once-at-creation",
                    "scope": "candidates:read placements:read",
                }
            ]
        },
    )

    grant_type: str = Field(max_length=64)
    client_id: str | None = Field(default=None, max_length=64)
    client_secret: str | None = Field(default=None, max_length=256)
    scope: str | None = Field(default=None, max_length=1000)


class TokenResponse(BaseModel):
    access_token: str
    token_type: Literal["Bearer"] = "Bearer"  # noqa: S105 - a token type, not a secret
    expires_in: int = Field(description="Seconds until the token expires.")
    scope: str = Field(description="Space-separated scopes granted.")


class AuditEvent(ReadModel):
    id: uuid.UUID
    at: dt.datetime
    actor_kind: ActorKind
    actor_id: str
    actor_role: Role
    actor_structure_id: uuid.UUID | None
    candidate_id: uuid.UUID
    action: AuditAction
    field_class: CandidateView = Field(description="The view the caller had of the person.")
    operation: str | None = Field(
        description="The API operation (as in docs/permissions.md); null for server commands."
    )
    request_id: str | None


class AuditPage(Page[AuditEvent]):
    pass
