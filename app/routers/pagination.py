from __future__ import annotations

from pydantic import Field

from app.schemas.common import QueryModel, UtcInstant
from app.services.common import PageRequest

# Part of the API contract, hence constants and not settings.
DEFAULT_LIMIT = 50
MAX_LIMIT = 200


class PageQuery(QueryModel):
    """Query parameters every list accepts. Unknown parameters are rejected."""

    limit: int = Field(default=DEFAULT_LIMIT, ge=1, le=MAX_LIMIT, description="Page size.")
    cursor: str | None = Field(
        default=None, max_length=64, description="`next_cursor` of the previous page."
    )

    def page(self) -> PageRequest:
        return PageRequest(limit=self.limit, cursor=self.cursor)


class ListQuery(PageQuery):
    """Lists of resources also accept `updated_since`, for partners that synchronise."""

    updated_since: UtcInstant | None = Field(
        default=None,
        description="Only resources changed at or after this instant (RFC 3339). "
        "Approximate: `updated_at` is stamped when a change is written, not when it "
        "commits, so a change committed late can carry an earlier time. To synchronise "
        "without missing anything, follow the change feed (GET /v1/events) instead.",
    )
