"""Bulk sync: each item in a savepoint of its own, through the single-item services.

A bad item rolls back its savepoint and is answered with the problem the single-item
route would have given (field locations under `items.<index>`); the good ones stand.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm.exc import StaleDataError

from app.errors import ConcurrentUpdate, TremplinError, ValidationFailed, pydantic_errors
from app.models import Candidate, Vacancy
from app.schemas.bulk import BulkItemResult, CandidateBulkItem, ItemProblem, VacancyBulkItem
from app.services import candidates, vacancies
from app.services.auth import Actor

M = TypeVar("M", bound=BaseModel)
R = TypeVar("R", Candidate, Vacancy)


def _problem(exc: TremplinError, index: int) -> ItemProblem:
    extensions = dict(exc.extensions)
    if "errors" in extensions:
        # The single route says ["body", field]; here the field is in items[index].
        extensions["errors"] = [
            {**err, "loc": ["body", "items", str(index), *err["loc"][1:]]}
            if err["loc"][:1] == ["body"]
            else err
            for err in extensions["errors"]
        ]
    return ItemProblem.model_validate(
        {"type": exc.type, "title": exc.title, "status": exc.status, "detail": exc.detail}
        | extensions
    )


def _ref(raw: Any) -> str | None:
    ref = raw.get("external_ref") if isinstance(raw, dict) else None
    return ref if isinstance(ref, str) else None


async def _each(
    session: AsyncSession,
    items: Sequence[Any],
    model: type[M],
    apply: Callable[[M], Awaitable[tuple[R, str]]],
) -> list[BulkItemResult]:
    results = []
    for index, raw in enumerate(items):
        try:
            async with session.begin_nested():
                try:
                    item = model.model_validate(raw)
                except ValidationError as exc:
                    raise ValidationFailed(pydantic_errors(exc.errors(), ("body",))) from None
                record, status = await apply(item)
                record_id: uuid.UUID = record.id
                # As stored (trimmed): what `?external_ref=` finds it by.
                stored_ref: str | None = getattr(record, "external_ref", None)
        except StaleDataError:
            failure = ConcurrentUpdate("The record changed meanwhile; send the item again.")
            results.append(_failed(index, raw, failure))
            continue
        except TremplinError as exc:
            results.append(_failed(index, raw, exc))
            continue
        results.append(
            BulkItemResult(
                index=index, external_ref=stored_ref, status=status, id=record_id, problem=None
            )
        )
    return results


def _failed(index: int, raw: Any, exc: TremplinError) -> BulkItemResult:
    return BulkItemResult(
        index=index, external_ref=_ref(raw), status="failed", id=None, problem=_problem(exc, index)
    )


async def candidates_bulk(
    session: AsyncSession, actor: Actor, items: Sequence[Any]
) -> list[BulkItemResult]:
    async def apply(item: CandidateBulkItem) -> tuple[Candidate, str]:
        return await candidates.upsert(session, actor, item)

    return await _each(session, items, CandidateBulkItem, apply)


async def vacancies_bulk(
    session: AsyncSession, actor: Actor, items: Sequence[Any]
) -> list[BulkItemResult]:
    async def apply(item: VacancyBulkItem) -> tuple[Vacancy, str]:
        return await vacancies.upsert(session, actor, item)

    return await _each(session, items, VacancyBulkItem, apply)
