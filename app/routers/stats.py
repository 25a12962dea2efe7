from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence
from dataclasses import asdict
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response

from app.errors import WrongReferenceKind
from app.routers.deps import ApiRoute, AppSettings, CurrentActor, Session
from app.schemas.problems import problem_responses
from app.schemas.stats import (
    FIGURE_COLUMNS,
    FIGURES_CSV_EXAMPLE,
    MONTHLY_COLUMNS,
    MONTHLY_CSV_EXAMPLE,
    Funnel,
    Monthly,
    Outcomes,
    StatsQuery,
    csv_response,
)
from app.services import stats as service


async def _varies_by_accept(response: Response) -> None:
    # JSON or CSV by Accept: a cache keeps one answer per Accept, not one for all.
    response.headers["Vary"] = "Accept"


router = APIRouter(
    prefix="/v1/stats",
    tags=["stats"],
    route_class=ApiRoute,
    dependencies=[Depends(_varies_by_accept)],
)

COMMON = (
    "Computed from the history (the path's moves, the placements' moves, follow-ups and "
    "activities), for a period (`from`/`to`, or `year`; UTC days) and any of "
    "`structure_id`, `landlord_id`, `departement`, `region`. `as_of` gives the figures as "
    "the database knew them then. Admins see every figure; insertion staff their "
    "structure's people; landlords the people they hired and the hires on their vacancies; "
    "prescribers the people they referred; observers their client's territory. For every "
    "role but admins a count concerning fewer people than the masking threshold (5 by "
    "default) is null and named in `masked`, with any rate or total derived from it. "
    "Landlords may not filter by `structure_id`, prescribers by `departement` or `region` "
    "(422). `structure_id` names an insertion structure and `landlord_id` a landlord: an "
    "unknown id answers 422, a structure of another kind 409 `wrong-reference-kind`, "
    "except to a caller who may not read structures (observers, or a token without "
    "`structures:read`), to whom it answers as an unknown id (422). "
    "Figures are aggregates: reading them is not journaled as a personal-data access.\n\n"
)
PROBLEMS = problem_responses(409, 422, conflicts=(WrongReferenceKind,))


JSON, CSV = "application/json", "text/csv"


def wants_csv(request: Request, query: StatsQuery) -> bool:
    """`format` decides; otherwise Accept (RFC 9110 12.5.1): CSV only when it weighs more
    than JSON, a more specific range counting before a wider one (`text/csv;q=0.1,
    application/json` is JSON, `text/csv, */*;q=0.5` is CSV; without Accept, JSON)."""
    if query.format is not None:
        return query.format == "csv"
    accept = request.headers.get("accept")
    return accept is not None and _weight(accept, CSV) > _weight(accept, JSON)


def _weight(accept: str, media_type: str) -> float:
    """The q-value the most specific matching range in Accept gives `media_type`."""
    kind = media_type.split("/")[0]
    best = (-1, 0.0)  # (specificity, q)
    for item in accept.split(","):
        range_, *params = (part.strip() for part in item.split(";"))
        range_ = range_.lower()
        if range_ == media_type:
            specificity = 2
        elif range_ == f"{kind}/*":
            specificity = 1
        elif range_ == "*/*":
            specificity = 0
        else:
            continue
        q = 1.0
        for param in params:
            name, _, value = param.partition("=")
            if name.strip().lower() == "q":
                try:
                    q = min(max(float(value), 0.0), 1.0)
                except ValueError:
                    q = 0.0
        if specificity > best[0]:
            best = (specificity, q)
    return best[1]


def render_csv(columns: Sequence[str], rows: Iterable[Sequence[Any]], filename: str) -> Response:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(columns)
    for row in rows:
        writer.writerow("" if value is None else value for value in row)
    return Response(
        buffer.getvalue(),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{filename}.csv"', "Vary": "Accept"},
    )


def figure_rows(figures: dict[str, Any]) -> list[tuple[str, Any, str]]:
    masked = set(service.masked_names(figures))
    return [
        (name, value, "true" if name in masked else "false")
        for name, value in service.flatten(figures)
    ]


def _context(query: StatsQuery) -> dict[str, Any]:
    period = query.period()
    return {
        "period": {"from": period.start, "to": period.end, "as_of": period.as_of},
        "filters": asdict(query.filters()),
    }


def _filename(name: str, query: StatsQuery) -> str:
    period = query.period()
    return f"{name}_{period.start or 'start'}_{period.end}"


@router.get(
    "/funnel",
    name="stats_funnel",
    summary="The path's funnel: entries, first reaches, hires, exits, phases at the end",
    description=COMMON
    + service.describe(
        "entered",
        "reached_support",
        "reached_securing",
        "hired",
        "exited",
        "exited_by_reason",
        "in_phase",
        "masked",
    ),
    response_model=Funnel,
    responses={**csv_response(FIGURES_CSV_EXAMPLE, FIGURE_COLUMNS), **PROBLEMS},
)
async def funnel(
    query: Annotated[StatsQuery, Query()],
    request: Request,
    session: Session,
    actor: CurrentActor,
    settings: AppSettings,
) -> Any:
    figures = await service.funnel(session, actor, settings, query.period(), query.filters())
    if wants_csv(request, query):
        return render_csv(FIGURE_COLUMNS, figure_rows(figures), _filename("funnel", query))
    return Funnel.model_validate({**_context(query), **figures})


@router.get(
    "/outcomes",
    name="stats_outcomes",
    summary="Outcomes: hires, hire rate, retention at 6 and 12 months, training, certification",
    description=COMMON
    + service.describe(
        "hires",
        "hire_rate",
        "retention_6m",
        "retention_12m",
        "median_days_to_hire",
        "training_hours",
        "certification",
        "masked",
    ),
    response_model=Outcomes,
    responses={**csv_response(FIGURES_CSV_EXAMPLE, FIGURE_COLUMNS), **PROBLEMS},
)
async def outcomes(
    query: Annotated[StatsQuery, Query()],
    request: Request,
    session: Session,
    actor: CurrentActor,
    settings: AppSettings,
) -> Any:
    figures = await service.outcomes(session, actor, settings, query.period(), query.filters())
    if wants_csv(request, query):
        return render_csv(FIGURE_COLUMNS, figure_rows(figures), _filename("outcomes", query))
    return Outcomes.model_validate({**_context(query), **figures})


@router.get(
    "/monthly",
    name="stats_monthly",
    summary="Entries into the path and hires, month by month",
    description=COMMON
    + service.describe("entries", "monthly_hires", "masked")
    + "\n\nWithout `from`, the months start with the first one that has figures.",
    response_model=Monthly,
    responses={**csv_response(MONTHLY_CSV_EXAMPLE, MONTHLY_COLUMNS), **PROBLEMS},
)
async def monthly(
    query: Annotated[StatsQuery, Query()],
    request: Request,
    session: Session,
    actor: CurrentActor,
    settings: AppSettings,
) -> Any:
    figures = await service.monthly(session, actor, settings, query.period(), query.filters())
    if wants_csv(request, query):
        rows = (
            (m["month"], m["entries"], m["hires"], " ".join(m["masked"])) for m in figures["months"]
        )
        return render_csv(MONTHLY_COLUMNS, rows, _filename("monthly", query))
    return Monthly.model_validate({**_context(query), **figures})
