"""The outbox: one row per state change, added in the transaction that makes it."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from app.models import Event


def emit(
    session: AsyncSession,
    type_: str,
    subject_type: str,
    subject_id: uuid.UUID,
    payload: dict[str, Any],
) -> Event:
    """Queue the event on the session; the caller's flush or commit writes it."""
    event = Event(type=type_, subject_type=subject_type, subject_id=subject_id, payload=payload)
    session.add(event)
    return event
