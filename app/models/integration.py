"""Partner integration: webhook subscriptions and deliveries, scheduled job runs."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Any

from sqlalchemy import BigInteger, ForeignKey, Index, String, Text, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column

from app.domain.enums import ActorKind, Role
from app.domain.ids import uuid7
from app.domain.webhooks import AttemptOutcome, DeliveryStatus, WebhookStatus
from app.models.base import Base, Entity, JSONType, enum_column_type, utcnow


class WebhookSubscription(Entity):
    """An endpoint of a partner that receives the events its owner may read."""

    __tablename__ = "webhook_subscriptions"

    # Who subscribed: deliveries carry exactly what this role and structure read in the feed.
    owner_kind: Mapped[ActorKind] = mapped_column(enum_column_type(ActorKind, "webhook_owner_kind"))
    owner_id: Mapped[str] = mapped_column(String(255), index=True)
    role: Mapped[Role] = mapped_column(enum_column_type(Role, "webhook_role"))
    structure_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("structures.id", ondelete="RESTRICT"), index=True
    )
    url: Mapped[str] = mapped_column(String(2000))
    description: Mapped[str | None] = mapped_column(String(200))
    # Event types delivered; empty: every type.
    event_types: Mapped[list[Any]] = mapped_column(JSONType, default=list)
    # The signing secret must be readable to sign: it is stored as issued, shown once.
    secret: Mapped[str] = mapped_column(String(100))
    previous_secret: Mapped[str | None] = mapped_column(String(100))
    previous_secret_expires_at: Mapped[datetime | None]
    status: Mapped[WebhookStatus] = mapped_column(
        enum_column_type(WebhookStatus, "webhook_status"), default=WebhookStatus.ACTIVE
    )
    disabled_at: Mapped[datetime | None]
    disabled_reason: Mapped[str | None] = mapped_column(Text)
    # Since when no attempt succeeded (NULL while the last attempt succeeded).
    failing_since: Mapped[datetime | None]
    consecutive_failures: Mapped[int] = mapped_column(default=0)
    # The feed position up to which events were turned into deliveries.
    cursor: Mapped[int] = mapped_column(BigInteger, default=0)


class WebhookDelivery(Base):
    """One event for one subscription, until a 2xx answer or the end of the schedule."""

    __tablename__ = "webhook_deliveries"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid7)
    subscription_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("webhook_subscriptions.id", ondelete="CASCADE"), index=True
    )
    event_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("events.id", ondelete="CASCADE"))
    event_type: Mapped[str] = mapped_column(String(64))
    position: Mapped[int] = mapped_column(BigInteger)
    # The exact bytes signed and sent, the same on every attempt.
    body: Mapped[str] = mapped_column(Text)
    status: Mapped[DeliveryStatus] = mapped_column(
        enum_column_type(DeliveryStatus, "webhook_delivery_status"),
        default=DeliveryStatus.PENDING,
    )
    attempts: Mapped[int] = mapped_column(default=0)
    # The next attempt was asked for by hand (redelivery): one attempt, no schedule.
    manual: Mapped[bool] = mapped_column(default=False)
    next_attempt_at: Mapped[datetime] = mapped_column(default=utcnow)
    # A worker holds the delivery until then; past it, another worker may take it over.
    lease_expires_at: Mapped[datetime | None]
    leased_by: Mapped[str | None] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    delivered_at: Mapped[datetime | None]
    last_status_code: Mapped[int | None]
    last_error: Mapped[str | None] = mapped_column(String(500))

    __table_args__ = (
        UniqueConstraint("subscription_id", "event_id"),
        # The workers' queue: pending deliveries by due time.
        Index(
            "ix_webhook_deliveries_due",
            "next_attempt_at",
            postgresql_where=text("status = 'pending'"),
            sqlite_where=text("status = 'pending'"),
        ),
    )


class WebhookAttempt(Base):
    """One HTTP request of a delivery, as the worker saw it."""

    __tablename__ = "webhook_attempts"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid7)
    delivery_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("webhook_deliveries.id", ondelete="CASCADE"), index=True
    )
    number: Mapped[int]
    manual: Mapped[bool] = mapped_column(default=False)
    started_at: Mapped[datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[datetime | None]
    outcome: Mapped[AttemptOutcome] = mapped_column(
        enum_column_type(AttemptOutcome, "webhook_attempt_outcome"),
        default=AttemptOutcome.IN_PROGRESS,
    )
    status_code: Mapped[int | None]
    error: Mapped[str | None] = mapped_column(String(500))
    duration_ms: Mapped[int | None]
    worker: Mapped[str] = mapped_column(String(100))

    __table_args__ = (UniqueConstraint("delivery_id", "number"),)


class JobRun(Base):
    """One run of a scheduled job for one period; the unique key makes it once per period."""

    __tablename__ = "job_runs"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid7)
    job: Mapped[str] = mapped_column(String(64))
    period: Mapped[datetime]
    started_at: Mapped[datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[datetime | None]
    succeeded: Mapped[bool] = mapped_column(default=False)
    worker: Mapped[str] = mapped_column(String(100))
    summary: Mapped[str | None] = mapped_column(String(500))

    __table_args__ = (UniqueConstraint("job", "period"),)


class FollowUpReminder(Base):
    """A follow-up that fell due and was announced (placement.follow_up_due), once."""

    __tablename__ = "follow_up_reminders"

    placement_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("placements.id", ondelete="CASCADE"), primary_key=True
    )
    milestone_months: Mapped[int] = mapped_column(primary_key=True)
    due_on: Mapped[date]
    reminded_at: Mapped[datetime] = mapped_column(default=utcnow)


__all__ = ["FollowUpReminder", "JobRun", "WebhookAttempt", "WebhookDelivery", "WebhookSubscription"]
