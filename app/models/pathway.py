"""The path's records: activities, transition histories, and the event outbox."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Float,
    ForeignKey,
    Index,
    String,
    Text,
    false,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from app.domain.enums import (
    ActivityOutcome,
    ActivityType,
    ActorKind,
    Phase,
    PlacementEndReason,
    PlacementStatus,
    Role,
    TrainingMode,
    TransitionReason,
)
from app.domain.ids import uuid7
from app.models.base import Base, Entity, JSONType, enum_column_type, utcnow


class Activity(Entity):
    """Something done on the path: a trial, a training, an assessment, an exam..."""

    __tablename__ = "activities"

    candidate_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("candidates.id", ondelete="CASCADE"), index=True
    )
    type: Mapped[ActivityType] = mapped_column(enum_column_type(ActivityType, "activity_type"))
    phase: Mapped[Phase] = mapped_column(enum_column_type(Phase, "activity_phase"))
    occurred_on: Mapped[date]
    end_on: Mapped[date | None]
    outcome: Mapped[ActivityOutcome | None] = mapped_column(
        enum_column_type(ActivityOutcome, "activity_outcome")
    )
    hours: Mapped[float | None] = mapped_column(Float)
    landlord_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("structures.id", ondelete="RESTRICT"), index=True
    )
    training_mode: Mapped[TrainingMode | None] = mapped_column(
        enum_column_type(TrainingMode, "activity_training_mode")
    )
    certifying: Mapped[bool | None]
    rncp_code: Mapped[str | None] = mapped_column(String(12))
    # {competency code: level 0-3}, for skills assessments.
    competency_levels: Mapped[dict[str, Any] | None] = mapped_column(JSONType)
    notes: Mapped[str | None] = mapped_column(Text)
    recorded_by: Mapped[str] = mapped_column(String(255))

    __table_args__ = (
        CheckConstraint("hours IS NULL OR (hours >= 0 AND hours <= 2000)", name="hours_range"),
        CheckConstraint("end_on IS NULL OR end_on >= occurred_on", name="end_after_start"),
    )


class _TransitionRecord:
    """Who moved something, when, and why."""

    at: Mapped[datetime] = mapped_column(default=utcnow)
    actor_kind: Mapped[ActorKind] = mapped_column(
        enum_column_type(ActorKind, "transition_actor_kind")
    )
    actor_id: Mapped[str] = mapped_column(String(255))
    actor_role: Mapped[Role] = mapped_column(enum_column_type(Role, "transition_actor_role"))
    note: Mapped[str | None] = mapped_column(Text)


class CandidateTransition(_TransitionRecord, Base):
    """One move of a candidate's path. Never updated."""

    __tablename__ = "candidate_transitions"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid7)
    candidate_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("candidates.id", ondelete="CASCADE"), index=True
    )
    from_phase: Mapped[Phase] = mapped_column(enum_column_type(Phase, "transition_from_phase"))
    to_phase: Mapped[Phase] = mapped_column(enum_column_type(Phase, "transition_to_phase"))
    reason: Mapped[TransitionReason | None] = mapped_column(
        enum_column_type(TransitionReason, "transition_reason")
    )
    forced: Mapped[bool] = mapped_column(default=False)


class PlacementTransition(_TransitionRecord, Base):
    """One move of a placement. Never updated."""

    __tablename__ = "placement_transitions"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid7)
    placement_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("placements.id", ondelete="CASCADE"), index=True
    )
    from_status: Mapped[PlacementStatus] = mapped_column(
        enum_column_type(PlacementStatus, "placement_transition_from")
    )
    to_status: Mapped[PlacementStatus] = mapped_column(
        enum_column_type(PlacementStatus, "placement_transition_to")
    )
    reason: Mapped[PlacementEndReason | None] = mapped_column(
        enum_column_type(PlacementEndReason, "placement_transition_reason")
    )


class Event(Base):
    """The outbox: every change visible to partners, written in the transaction that made it.

    `position` is the feed's order: NULL when written, set after commit by the single
    sequencer (app.services.events.sequence), so a position is never given to a change
    while an earlier-committed one still lacks its own. The audience columns say who may
    read the event, as its subject stood when it happened: the insertion structure
    accompanying the person, the prescriber who referred them, the landlord of the
    vacancy, and whether a vacancy was published (insertion staff read published ones).
    """

    __tablename__ = "events"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid7)
    type: Mapped[str] = mapped_column(String(64))
    subject_type: Mapped[str] = mapped_column(String(32))
    subject_id: Mapped[uuid.UUID]
    payload: Mapped[dict[str, Any]] = mapped_column(JSONType)
    occurred_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    position: Mapped[int | None] = mapped_column(BigInteger, unique=True)
    structure_id: Mapped[uuid.UUID | None]
    referrer_id: Mapped[uuid.UUID | None]
    landlord_id: Mapped[uuid.UUID | None]
    published: Mapped[bool] = mapped_column(default=False, server_default=false())

    __table_args__ = (
        Index("ix_events_subject", "subject_type", "subject_id"),
        # The sequencer's work list: events committed but not yet given a position.
        Index(
            "ix_events_unsequenced",
            "id",
            postgresql_where=text("position IS NULL"),
            sqlite_where=text("position IS NULL"),
        ),
        # Each role's feed: its audience column, in feed order.
        Index("ix_events_structure_id_position", "structure_id", "position"),
        Index("ix_events_referrer_id_position", "referrer_id", "position"),
        Index("ix_events_landlord_id_position", "landlord_id", "position"),
    )
