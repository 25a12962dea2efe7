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
        # Figures read the trainings and exams of a period (from the index alone on
        # PostgreSQL).
        Index(
            "ix_activities_type_occurred_on",
            "type",
            "occurred_on",
            postgresql_include=["candidate_id", "hours", "outcome", "created_at"],
        ),
    )


class _TransitionRecord:
    """Who moved something, when, and why.

    `at` is when the move took effect; `recorded_at` when the database learnt of it. They
    differ for history imported with its real dates, and figures "as of" a past instant
    read only what was recorded by then.
    """

    at: Mapped[datetime] = mapped_column(default=utcnow)
    recorded_at: Mapped[datetime] = mapped_column(default=utcnow)
    actor_kind: Mapped[ActorKind] = mapped_column(
        enum_column_type(ActorKind, "transition_actor_kind")
    )
    actor_id: Mapped[str] = mapped_column(String(255))
    actor_role: Mapped[Role] = mapped_column(enum_column_type(Role, "transition_actor_role"))
    note: Mapped[str | None] = mapped_column(Text)


class CandidateTransition(_TransitionRecord, Base):
    """One move of a candidate's path, the first being the entry into it (no from_phase).

    A row opens a span of `to_phase` that the next row closes: `ended_at` and
    `ended_recorded_at` copy the next row's `at` and `recorded_at`, written once, with
    it. Moves are appended in order (each takes effect no earlier than the one before),
    so the phase at an instant T as known at A is the row with `at <= T` and
    `recorded_at <= A` whose span had not ended by then, and figures read it in one scan.
    `first_reach` marks the first time the person reached `to_phase`, and `entered_at`
    repeats when their path began (the entry row's `at`) so that the time to a hire reads
    without a join. Nothing else of a row is ever updated, except its note when the
    person's data is erased.
    """

    __tablename__ = "candidate_transitions"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid7)
    candidate_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("candidates.id", ondelete="CASCADE"), index=True
    )
    from_phase: Mapped[Phase | None] = mapped_column(
        enum_column_type(Phase, "transition_from_phase")
    )
    to_phase: Mapped[Phase] = mapped_column(enum_column_type(Phase, "transition_to_phase"))
    reason: Mapped[TransitionReason | None] = mapped_column(
        enum_column_type(TransitionReason, "transition_reason")
    )
    forced: Mapped[bool] = mapped_column(default=False)
    first_reach: Mapped[bool] = mapped_column(default=False)
    entered_at: Mapped[datetime]
    ended_at: Mapped[datetime | None]
    ended_recorded_at: Mapped[datetime | None]

    __table_args__ = (
        CheckConstraint("(ended_at IS NULL) = (ended_recorded_at IS NULL)", name="ended_complete"),
        CheckConstraint("ended_at IS NULL OR ended_at >= at", name="ended_after_start"),
        CheckConstraint("recorded_at >= at", name="recorded_after_effect"),
        CheckConstraint("from_phase IS NOT NULL OR first_reach", name="entry_first"),
        CheckConstraint("entered_at <= at", name="entered_before"),
        # Figures scan the history by phase and date.
        Index("ix_candidate_transitions_to_phase_at", "to_phase", "at"),
        # One open span per person: the latest move, whatever the concurrency.
        Index(
            "uq_candidate_transitions_open_span",
            "candidate_id",
            unique=True,
            postgresql_where=text("ended_at IS NULL"),
            sqlite_where=text("ended_at IS NULL"),
        ),
    )


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

    __table_args__ = (
        CheckConstraint("recorded_at >= at", name="recorded_after_effect"),
        Index("ix_placement_transitions_to_status_at", "to_status", "at"),
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
