from __future__ import annotations

import datetime as dt
import uuid
from typing import Annotated, ClassVar, Literal
from urllib.parse import urlsplit

from pydantic import AfterValidator, ConfigDict, Field, StringConstraints

from app.domain.enums import Role
from app.domain.webhooks import AttemptOutcome, DeliveryStatus, WebhookStatus
from app.schemas.common import EntityRead, InputModel, Page, ReadModel, UpdateModel
from app.schemas.events import EventType


def _callback_url(value: str) -> str:
    try:
        parts = urlsplit(value)
        # `port` raises on a port out of range; 0 is in range but never reachable.
        if parts.port == 0:
            raise ValueError("port 0")
    except ValueError:
        raise ValueError("not a URL") from None
    if parts.scheme not in {"https", "http"} or not parts.hostname:
        raise ValueError("an absolute https:// URL")
    if parts.username is not None or parts.password is not None:
        raise ValueError("credentials do not belong in the URL; the signature authenticates")
    if parts.fragment:
        raise ValueError("a URL without a #fragment")
    return value


CallbackUrl = Annotated[
    str,
    StringConstraints(min_length=8, max_length=2000),
    AfterValidator(_callback_url),
    Field(
        description="Where events are POSTed: https only (and never to a private, loopback "
        "or link-local address).",
        examples=["https://partner.example.org/tremplin/webhooks"],
    ),
]


def _unique_types(values: list[str]) -> list[str]:
    if len(values) != len(set(values)):
        raise ValueError("each event type appears at most once")
    return values


EventTypes = Annotated[
    list[EventType],
    Field(
        max_length=50,
        description="Event types to deliver; empty: every type.",
        json_schema_extra={"uniqueItems": True},
    ),
    AfterValidator(_unique_types),
]
Description = Annotated[str, StringConstraints(min_length=1, max_length=200)]


class WebhookCreate(InputModel):
    url: CallbackUrl
    event_types: EventTypes = Field(default_factory=list)
    description: Description | None = None

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "url": "https://partner.example.org/tremplin/webhooks",
                    "event_types": ["candidate.phase_changed", "placement.status_changed"],
                    "description": "PLIE Rouen: outcomes",
                }
            ]
        }
    )


class WebhookUpdate(UpdateModel):
    non_nullable: ClassVar[frozenset[str]] = frozenset({"url", "event_types", "status"})

    url: CallbackUrl | None = None
    event_types: EventTypes | None = None
    description: Description | None = None
    status: WebhookStatus | None = Field(
        default=None,
        description="`active` re-enables a disabled subscription (deliveries resume where "
        "they stopped); `disabled` pauses it.",
    )

    model_config = ConfigDict(json_schema_extra={"examples": [{"status": "active"}]})


class Webhook(EntityRead):
    url: str
    description: str | None
    event_types: list[EventType]
    status: WebhookStatus
    disabled_at: dt.datetime | None
    disabled_reason: str | None = Field(description="Why it was disabled (410, failures...).")
    failing_since: dt.datetime | None = Field(
        description="Since when no delivery succeeded; null while deliveries succeed."
    )
    role: Role = Field(description="Deliveries carry what this role reads in the feed.")
    structure_id: uuid.UUID | None
    previous_secret_expires_at: dt.datetime | None = Field(
        description="After a rotation, the old secret also signs until then."
    )


class WebhookWithSecret(Webhook):
    """Answered once, at creation or rotation: keep the secret, it is not shown again."""

    secret: str = Field(
        description="`whsec_` and the base64 of 32 random bytes: the HMAC-SHA256 key of "
        "`webhook-signature` (Standard Webhooks)."
    )


class WebhookPage(Page[Webhook]):
    pass


class WebhookAttempt(ReadModel):
    number: int
    manual: bool = Field(description="Asked for by hand (redelivery).")
    started_at: dt.datetime
    finished_at: dt.datetime | None
    outcome: AttemptOutcome
    status_code: int | None
    error: str | None
    duration_ms: int | None


class WebhookDelivery(ReadModel):
    id: uuid.UUID
    event_id: uuid.UUID = Field(description="The `webhook-id` header: deduplicate by it.")
    event_type: EventType
    position: int
    status: DeliveryStatus
    created_at: dt.datetime
    next_attempt_at: dt.datetime | None = Field(description="For a pending delivery.")
    delivered_at: dt.datetime | None
    last_status_code: int | None
    last_error: str | None
    attempts: list[WebhookAttempt]


class WebhookDeliveryPage(Page[WebhookDelivery]):
    pass


DeliveryFilter = Literal["pending", "delivered", "failed"]
