"""Documentation models of the problem+json error bodies (RFC 9457)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pydantic import BaseModel, Field

from app.errors import PROBLEM_TYPE_PREFIX


class FieldError(BaseModel):
    loc: list[str] = Field(description="Path to the field, e.g. ['body', 'siret'].")
    message: str
    type: str = Field(description="Machine-readable error kind.")


class Problem(BaseModel):
    type: str = Field(examples=["urn:tremplin:problem:not-found"])
    title: str
    status: int
    detail: str
    instance: str = Field(description="The request path.")


class ValidationProblem(Problem):
    errors: list[FieldError]


class UnmetRequirement(BaseModel):
    code: str
    requirement: str
    have: float | None = Field(default=None, description="Where the candidate stands.")


class ConflictProblem(Problem):
    constraint: str | None = Field(default=None, description="The database rule that refused.")
    current: str | None = Field(default=None, description="The current phase or status.")
    allowed: list[str] | None = Field(
        default=None, description="The moves allowed now (refused transitions)."
    )
    unmet: list[UnmetRequirement] | None = Field(
        default=None, description="What a refused path transition still needs."
    )
    newest_position: int | None = Field(
        default=None,
        description="The change feed's newest position (a cursor ahead of the feed).",
    )


def conflict_description(conflicts: Sequence[Any]) -> str:
    """The 409 description naming each problem type the operation may answer."""
    lines = [
        f"- `{PROBLEM_TYPE_PREFIX}{c.slug}`: {c.title}"
        for c in dict.fromkeys(conflicts)  # in order, once each
    ]
    return "Conflict with the current state. `type` is one of:\n" + "\n".join(lines)


def problem_responses(
    *statuses: int, conflicts: Sequence[Any] = ()
) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses` entries for the given error statuses.

    `conflicts`: the error classes (with `slug` and `title`) a 409 may carry.
    """
    descriptions = {
        400: "Malformed request",
        401: "Missing, invalid or expired access token",
        403: "The caller's role or token scope may not use this operation",
        404: "Unknown id",
        409: "Conflict with the current state (duplicate, wrong reference, in use)",
        412: "If-Match does not match the current version",
        413: "Request body too large",
        422: "Invalid payload or query parameters",
        429: "Rate limit reached; see Retry-After",
        503: "Database unavailable",
    }
    out: dict[int | str, dict[str, Any]] = {}
    for status in statuses:
        model: type[Problem] = Problem
        if status == 422:
            model = ValidationProblem
        elif status == 409:
            model = ConflictProblem
        # Served as application/problem+json: app.main relabels the media type.
        description = descriptions[status]
        if status == 409 and conflicts:
            description = conflict_description(conflicts)
        out[status] = {"model": model, "description": description}
    return out
