"""API clients, the audit journal of personal-data access, and idempotency keys."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import CheckConstraint, ForeignKey, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from app.domain.enums import ActorKind, AuditAction, CandidateView, Role
from app.domain.ids import uuid7
from app.models.base import Base, Entity, JSONType, enum_column_type, utcnow


class ApiClient(Entity):
    """A partner system's credentials. The secret itself is never stored."""

    __tablename__ = "api_clients"

    name: Mapped[str] = mapped_column(String(200))
    role: Mapped[Role] = mapped_column(enum_column_type(Role, "api_client_role"))
    # None for national clients (admins, national observers).
    structure_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("structures.id", ondelete="RESTRICT"), index=True
    )
    scopes: Mapped[list[Any]] = mapped_column(JSONType, default=list)
    secret_hash: Mapped[str] = mapped_column(String(64))
    # Bumped by each rotation: tokens carry it, so rotating invalidates them at once.
    credential_version: Mapped[int] = mapped_column(default=1)
    expires_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]
    # Observers only: the territory whose aggregated figures they read
    # (`national`, `region:<code>`, `departement:<code>`; app.domain.territory).
    territory: Mapped[str | None] = mapped_column(String(20))

    __table_args__ = (
        CheckConstraint("(role = 'observer') = (territory IS NOT NULL)", name="observer_territory"),
        CheckConstraint(
            "territory IS NULL OR territory = 'national' OR territory LIKE 'region:%' "
            "OR territory LIKE 'departement:%'",
            name="territory_form",
        ),
    )


class AuditEvent(Base):
    """One access to a candidate's personal data. Append-only."""

    __tablename__ = "audit_events"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid7)
    at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    actor_kind: Mapped[ActorKind] = mapped_column(enum_column_type(ActorKind, "audit_actor_kind"))
    actor_id: Mapped[str] = mapped_column(String(255), index=True)
    actor_role: Mapped[Role] = mapped_column(enum_column_type(Role, "audit_actor_role"))
    # No foreign keys: the journal outlives the structures and people it mentions.
    actor_structure_id: Mapped[uuid.UUID | None]
    candidate_id: Mapped[uuid.UUID] = mapped_column(index=True)
    action: Mapped[AuditAction] = mapped_column(enum_column_type(AuditAction, "audit_action"))
    # The API operation (permission table name) that read or wrote; empty for commands
    # run on the server and for rows written before this column existed.
    operation: Mapped[str | None] = mapped_column(String(64))
    field_class: Mapped[CandidateView] = mapped_column(
        enum_column_type(CandidateView, "audit_field_class")
    )
    request_id: Mapped[str | None] = mapped_column(String(128))


class IdempotencyKey(Base):
    """The first response to a POST sent with an Idempotency-Key, kept for replays."""

    __tablename__ = "idempotency_keys"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid7)
    # Kind and id together name the caller: an API client and an OIDC user whose `sub`
    # equals the client's id keep separate keys.
    actor_kind: Mapped[ActorKind] = mapped_column(
        enum_column_type(ActorKind, "idempotency_actor_kind")
    )
    actor_id: Mapped[str] = mapped_column(String(255))
    key: Mapped[str] = mapped_column(String(255))
    fingerprint: Mapped[str] = mapped_column(String(64))
    response_status: Mapped[int]
    # None when the first response carried a secret (Cache-Control: no-store): it is
    # not kept, and a replay says so instead of repeating it.
    response_body: Mapped[str | None] = mapped_column(Text)
    response_headers: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(index=True)

    __table_args__ = (UniqueConstraint("actor_kind", "actor_id", "key"),)


__all__ = ["ApiClient", "AuditEvent", "IdempotencyKey"]
