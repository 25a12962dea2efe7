"""The change feed's events: one payload model per type, read as a union on `type`.

Payloads are thin on purpose: ids, kinds and statuses, never a name, a contact or any
field whose visibility depends on the reader's view. A partner fetches the resource
(as itself, through its own view) when it needs more.
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Annotated, Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field

from app.domain.enums import (
    ActivityType,
    Phase,
    PlacementStatus,
    TransitionReason,
    VacancyKind,
    VacancyStatus,
)
from app.schemas.common import QueryModel


class EventData(BaseModel):
    """A payload. `event_type` names it; `subject` names the resource it is about."""

    model_config = ConfigDict(frozen=True, serialize_by_alias=True, validate_by_name=True)

    event_type: ClassVar[str]
    subject: ClassVar[str]

    def subject_id(self) -> uuid.UUID:
        value: uuid.UUID = getattr(self, f"{self.subject}_id")
        return value


class CandidateCreated(EventData):
    event_type, subject = "candidate.created", "candidate"
    candidate_id: uuid.UUID
    structure_id: uuid.UUID
    phase: Phase


class CandidateUpdated(EventData):
    """Some fields of the person changed (which ones is not said: fetch it)."""

    event_type, subject = "candidate.updated", "candidate"
    candidate_id: uuid.UUID
    structure_id: uuid.UUID
    version: int


class CandidateDeleted(EventData):
    """A tombstone: the person was erased; forget them."""

    event_type, subject = "candidate.deleted", "candidate"
    candidate_id: uuid.UUID


class CandidatePhaseChanged(EventData):
    event_type, subject = "candidate.phase_changed", "candidate"
    candidate_id: uuid.UUID
    structure_id: uuid.UUID
    from_phase: Phase = Field(alias="from")
    to_phase: Phase = Field(alias="to")
    reason: TransitionReason | None
    forced: bool
    at: dt.datetime = Field(
        description="When the move took effect (a history import gives past dates)."
    )


class ActivityRecorded(EventData):
    event_type, subject = "activity.recorded", "candidate"
    candidate_id: uuid.UUID
    activity_id: uuid.UUID
    activity_type: ActivityType = Field(alias="type")


class ActivityUpdated(EventData):
    event_type, subject = "activity.updated", "candidate"
    candidate_id: uuid.UUID
    activity_id: uuid.UUID
    activity_type: ActivityType = Field(alias="type")


class VacancyCreated(EventData):
    event_type, subject = "vacancy.created", "vacancy"
    vacancy_id: uuid.UUID
    landlord_id: uuid.UUID
    kind: VacancyKind
    status: VacancyStatus


class VacancyUpdated(EventData):
    event_type, subject = "vacancy.updated", "vacancy"
    vacancy_id: uuid.UUID
    landlord_id: uuid.UUID
    status: VacancyStatus
    version: int


class VacancyDeleted(EventData):
    """A tombstone: the vacancy no longer exists."""

    event_type, subject = "vacancy.deleted", "vacancy"
    vacancy_id: uuid.UUID
    landlord_id: uuid.UUID


class PlacementProposed(EventData):
    event_type, subject = "placement.proposed", "placement"
    placement_id: uuid.UUID
    candidate_id: uuid.UUID
    vacancy_id: uuid.UUID


class PlacementStatusChanged(EventData):
    event_type, subject = "placement.status_changed", "placement"
    placement_id: uuid.UUID
    candidate_id: uuid.UUID
    vacancy_id: uuid.UUID
    from_status: PlacementStatus = Field(alias="from")
    to_status: PlacementStatus = Field(alias="to")
    vacancy_status: VacancyStatus


class PlacementUpdated(EventData):
    """Planned dates or notes changed."""

    event_type, subject = "placement.updated", "placement"
    placement_id: uuid.UUID
    candidate_id: uuid.UUID
    vacancy_id: uuid.UUID
    version: int


class PlacementFollowUpRecorded(EventData):
    event_type, subject = "placement.follow_up_recorded", "placement"
    placement_id: uuid.UUID
    milestone_months: Literal[6, 12]
    in_post: bool


class PlacementFollowUpDue(EventData):
    """A hire's 6- or 12-month follow-up fell due and is not recorded (sent once)."""

    event_type, subject = "placement.follow_up_due", "placement"
    placement_id: uuid.UUID
    candidate_id: uuid.UUID
    milestone_months: Literal[6, 12]
    due_on: dt.date


EVENT_DATA: tuple[type[EventData], ...] = (
    CandidateCreated,
    CandidateUpdated,
    CandidateDeleted,
    CandidatePhaseChanged,
    ActivityRecorded,
    ActivityUpdated,
    VacancyCreated,
    VacancyUpdated,
    VacancyDeleted,
    PlacementProposed,
    PlacementStatusChanged,
    PlacementUpdated,
    PlacementFollowUpRecorded,
    PlacementFollowUpDue,
)
EVENT_TYPES: dict[str, type[EventData]] = {model.event_type: model for model in EVENT_DATA}
EventType = Literal[
    "candidate.created",
    "candidate.updated",
    "candidate.deleted",
    "candidate.phase_changed",
    "activity.recorded",
    "activity.updated",
    "vacancy.created",
    "vacancy.updated",
    "vacancy.deleted",
    "placement.proposed",
    "placement.status_changed",
    "placement.updated",
    "placement.follow_up_recorded",
    "placement.follow_up_due",
]


class _EventBase(BaseModel):
    """What every event carries; `data` depends on `type`. Webhooks send the same body."""

    model_config = ConfigDict(serialize_by_alias=True)

    id: uuid.UUID = Field(description="Also the `webhook-id` of its webhook deliveries.")
    position: int = Field(description="Pass as `after` to resume the feed after this event.")
    timestamp: dt.datetime = Field(description="When the change was made.")


class CandidateCreatedEvent(_EventBase):
    type: Literal["candidate.created"]
    data: CandidateCreated


class CandidateUpdatedEvent(_EventBase):
    type: Literal["candidate.updated"]
    data: CandidateUpdated


class CandidateDeletedEvent(_EventBase):
    type: Literal["candidate.deleted"]
    data: CandidateDeleted


class CandidatePhaseChangedEvent(_EventBase):
    type: Literal["candidate.phase_changed"]
    data: CandidatePhaseChanged


class ActivityRecordedEvent(_EventBase):
    type: Literal["activity.recorded"]
    data: ActivityRecorded


class ActivityUpdatedEvent(_EventBase):
    type: Literal["activity.updated"]
    data: ActivityUpdated


class VacancyCreatedEvent(_EventBase):
    type: Literal["vacancy.created"]
    data: VacancyCreated


class VacancyUpdatedEvent(_EventBase):
    type: Literal["vacancy.updated"]
    data: VacancyUpdated


class VacancyDeletedEvent(_EventBase):
    type: Literal["vacancy.deleted"]
    data: VacancyDeleted


class PlacementProposedEvent(_EventBase):
    type: Literal["placement.proposed"]
    data: PlacementProposed


class PlacementStatusChangedEvent(_EventBase):
    type: Literal["placement.status_changed"]
    data: PlacementStatusChanged


class PlacementUpdatedEvent(_EventBase):
    type: Literal["placement.updated"]
    data: PlacementUpdated


class PlacementFollowUpRecordedEvent(_EventBase):
    type: Literal["placement.follow_up_recorded"]
    data: PlacementFollowUpRecorded


class PlacementFollowUpDueEvent(_EventBase):
    type: Literal["placement.follow_up_due"]
    data: PlacementFollowUpDue


EVENT_MODELS: dict[str, type[_EventBase]] = {
    "candidate.created": CandidateCreatedEvent,
    "candidate.updated": CandidateUpdatedEvent,
    "candidate.deleted": CandidateDeletedEvent,
    "candidate.phase_changed": CandidatePhaseChangedEvent,
    "activity.recorded": ActivityRecordedEvent,
    "activity.updated": ActivityUpdatedEvent,
    "vacancy.created": VacancyCreatedEvent,
    "vacancy.updated": VacancyUpdatedEvent,
    "vacancy.deleted": VacancyDeletedEvent,
    "placement.proposed": PlacementProposedEvent,
    "placement.status_changed": PlacementStatusChangedEvent,
    "placement.updated": PlacementUpdatedEvent,
    "placement.follow_up_recorded": PlacementFollowUpRecordedEvent,
    "placement.follow_up_due": PlacementFollowUpDueEvent,
}

Event = Annotated[
    CandidateCreatedEvent
    | CandidateUpdatedEvent
    | CandidateDeletedEvent
    | CandidatePhaseChangedEvent
    | ActivityRecordedEvent
    | ActivityUpdatedEvent
    | VacancyCreatedEvent
    | VacancyUpdatedEvent
    | VacancyDeletedEvent
    | PlacementProposedEvent
    | PlacementStatusChangedEvent
    | PlacementUpdatedEvent
    | PlacementFollowUpRecordedEvent
    | PlacementFollowUpDueEvent,
    Field(discriminator="type"),
]


class EventPage(BaseModel):
    items: list[Event]
    next_after: int = Field(
        description="Pass as `after` for the next page; on the last page, the newest position "
        "the caller may resume from (poll again with it later)."
    )


def present(event: Any) -> _EventBase:
    """A stored outbox row as the feed shows it and webhooks send it."""
    return EVENT_MODELS[event.type].model_validate(
        {
            "id": event.id,
            "position": event.position,
            "timestamp": event.occurred_at,
            "type": event.type,
            "data": event.payload,
        }
    )


MAX_EVENTS = 1000


class EventQuery(QueryModel):
    """GET /v1/events: where to resume, which types, how many."""

    after: int = Field(
        default=0,
        ge=0,
        le=2**63 - 1,
        description="Return events after this position: 0 from the start, then the "
        "`next_after` of the previous answer. Beyond the feed's newest position (a cursor "
        "this feed never gave): 409 `cursor-ahead-of-feed`.",
    )
    types: list[EventType] | None = Field(
        default=None, description="Only these event types (repeat the parameter)."
    )
    limit: int = Field(default=100, ge=1, le=MAX_EVENTS, description="Page size.")
