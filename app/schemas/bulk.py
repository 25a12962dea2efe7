"""Bulk sync: up to 1,000 records a request, each created or updated by the partner's
own reference, each answered on its own."""

from __future__ import annotations

import uuid
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SkipValidation

from app.schemas.candidates import CandidateCreate
from app.schemas.common import ExternalRef
from app.schemas.problems import FieldError
from app.schemas.vacancies import VacancyCreate

MAX_BULK_ITEMS = 1000


def bulk_description(on_update: str = "") -> str:
    """The bulk routes' description; `on_update`, what a resource's update adds."""
    return (
        f"Up to {MAX_BULK_ITEMS:,} items, each created or updated by its `external_ref` and "
        "answered on its own (`created`, `updated`, `unchanged`, or `failed` with the "
        "problem the single-item route would have answered). A bad item never blocks the "
        "others: each runs in a savepoint of its own, with every rule of the single-item "
        f"routes. Fields left out of an item keep their values on update{on_update}. Sending "
        "the same batch again changes nothing; with an `Idempotency-Key` it replays the "
        "first answer. The whole batch must fit the body limit (`MAX_BODY_BYTES`, 1 MiB by "
        f"default; 413 above it): {MAX_BULK_ITEMS:,} long records come close to it, so send "
        "fewer items a request when records are long, or indented."
    )


class CandidateBulkItem(CandidateCreate):
    """A candidate as the structure holds it. Created if no candidate of the structure has
    this `external_ref`; otherwise the fields given here are applied (those left out
    keep their values)."""

    external_ref: ExternalRef


class VacancyBulkItem(VacancyCreate):
    """A vacancy as the landlord holds it, keyed by `external_ref` within the landlord."""

    external_ref: ExternalRef


# Items are validated one by one, by the service: a bad item is answered on its own
# and never blocks the others (the schema still documents what an item is).
_ITEMS = Field(min_length=1, max_length=MAX_BULK_ITEMS)


def _example(model: type[BaseModel], ref: str) -> dict[str, Any]:
    extra: Any = model.model_config.get("json_schema_extra") or {}
    return {"items": [{**extra["examples"][0], "external_ref": ref}]}


class CandidateBulk(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [_example(CandidateCreate, "SIAE-2026-0042")]},
    )

    items: Annotated[list[SkipValidation[CandidateBulkItem]], _ITEMS]


class VacancyBulk(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [_example(VacancyCreate, "OPH-GARD-17")]},
    )

    items: Annotated[list[SkipValidation[VacancyBulkItem]], _ITEMS]


class ItemProblem(BaseModel):
    """The problem+json body the single-item route would have answered."""

    model_config = ConfigDict(extra="allow")

    type: str
    title: str
    status: int
    detail: str
    errors: list[FieldError] | None = None


class BulkItemResult(BaseModel):
    index: int = Field(description="The item's place in the request, from 0.")
    external_ref: str | None
    status: Literal["created", "updated", "unchanged", "failed"]
    id: uuid.UUID | None = Field(description="The record created, updated or unchanged.")
    problem: ItemProblem | None = Field(description="Why a failed item was refused.")


class BulkResult(BaseModel):
    items: list[BulkItemResult]
    created: int
    updated: int
    unchanged: int
    failed: int


def result_of(items: list[BulkItemResult]) -> BulkResult:
    counts: dict[str, Any] = {"created": 0, "updated": 0, "unchanged": 0, "failed": 0}
    for item in items:
        counts[item.status] += 1
    return BulkResult(items=items, **counts)
