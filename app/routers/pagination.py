from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field, field_validator

from app.services.common import PageRequest

# Part of the API contract, hence constants and not settings.
DEFAULT_LIMIT = 50
MAX_LIMIT = 200


class PageQuery(BaseModel):
    """Query parameters every list accepts. Unknown parameters are rejected."""

    model_config = ConfigDict(extra="forbid")

    limit: int = Field(default=DEFAULT_LIMIT, ge=1, le=MAX_LIMIT, description="Page size.")
    cursor: str | None = Field(
        default=None, max_length=64, description="`next_cursor` of the previous page."
    )

    def page(self) -> PageRequest:
        return PageRequest(limit=self.limit, cursor=self.cursor)


class ListQuery(PageQuery):
    """Lists of resources also accept `updated_since`, for partners that synchronise."""

    updated_since: datetime | None = Field(
        default=None,
        description="Only resources changed at or after this instant (RFC 3339), to sync.",
    )

    @field_validator("updated_since")
    @classmethod
    def _aware(cls, value: datetime | None) -> datetime | None:
        if value is not None and value.tzinfo is None:
            raise ValueError("give a timezone, e.g. 2026-01-31T00:00:00Z")
        return value
