from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query, Response, status
from pydantic import BaseModel, Field

from app import errors
from app.domain.enums import CandidateView, Phase
from app.routers.deps import ApiRoute, AppSettings, CurrentActor, IfMatch, Session, set_etag
from app.routers.pagination import ListQuery, PageQuery
from app.schemas.access import AuditEvent
from app.schemas.activities import Activity
from app.schemas.bulk import BulkResult, CandidateBulk, bulk_description, result_of
from app.schemas.candidates import (
    Candidate,
    CandidateAny,
    CandidateCreate,
    CandidatePage,
    CandidateRead,
    CandidateUpdate,
    present,
)
from app.schemas.common import Departement, ExternalRef, page_json
from app.schemas.data_rights import CandidateExport, ExportedPlacement, FollowUp
from app.schemas.pathway import CandidateTransition as CandidateTransitionRead
from app.schemas.pathway import CandidateTransitionPage, TransitionRequest, present_move
from app.schemas.placements import Placement as PlacementRead
from app.schemas.placements import PlacementTransition as PlacementTransitionRead
from app.schemas.problems import problem_responses
from app.services import bulk as bulk_service
from app.services import candidates as service
from app.services import data_rights, pathway

router = APIRouter(prefix="/v1/candidates", tags=["candidates"], route_class=ApiRoute)

_VIEWS = (
    "The fields returned depend on the caller (`view`): `full` for admins and the "
    "accompanying structure, and for a landlord while one of its placements for the person "
    "is accepted or started; `reduced` for a landlord otherwise; `referral` for the "
    "prescriber who referred the person. A partial view carries its own `version`, "
    '`updated_at` and ETag (`"reduced-3"`), which move only when a field of that view '
    "changes; `updated_since` compares them too. Every access is recorded in the audit "
    "journal."
)


def _variant(view: CandidateView) -> str | None:
    """A partial view's ETag names it (`"reduced-3"`)."""
    return None if view is CandidateView.FULL else view.value


def _shown(response: Response, candidate: object, view: CandidateView) -> CandidateRead:
    body = present(candidate, view)
    set_etag(response, body.version, _variant(view))
    return body


_BULK = bulk_description(
    "; `entered_at` is read only when the item creates the person (the path's start is "
    "history, not a field to update)"
)


class CandidateListQuery(ListQuery):
    structure_id: uuid.UUID | None = None
    phase: Phase | None = None
    departement: Departement | None = None
    external_ref: ExternalRef | None = Field(
        default=None, description="Your own reference (with `structure_id` when you have several)."
    )


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    name="candidates_create",
    summary="Register a candidate (or refer one, as a prescriber); the path starts in recruitment",
    description=_VIEWS,
    responses=problem_responses(
        409, 413, 422, conflicts=(errors.WrongReferenceKind, service.ExternalRefTaken)
    ),
)
async def create(
    body: CandidateCreate, session: Session, actor: CurrentActor, response: Response
) -> CandidateAny:
    candidate, view = await service.create(session, actor, body)
    response.headers["Location"] = f"{router.prefix}/{candidate.id}"
    return _shown(response, candidate, view)


@router.post(
    "/bulk",
    name="candidates_bulk",
    summary="Create or update up to 1,000 candidates by your own reference",
    description=_BULK,
    responses=problem_responses(413, 422),
)
async def bulk(body: CandidateBulk, session: Session, actor: CurrentActor) -> BulkResult:
    return result_of(await bulk_service.candidates_bulk(session, actor, body.items))


@router.get(
    "",
    name="candidates_list",
    summary="List the candidates the caller may see",
    description=_VIEWS,
    response_model=CandidatePage,
    responses=problem_responses(422),
)
async def list_(
    query: Annotated[CandidateListQuery, Query()], session: Session, actor: CurrentActor
) -> Response:
    filters = service.CandidateFilters(
        structure_id=query.structure_id,
        phase=query.phase,
        departement=query.departement,
        updated_since=query.updated_since,
        external_ref=query.external_ref,
    )
    rows, next_cursor = await service.list_(session, actor, filters, query.page())
    items: list[BaseModel] = [present(c, view) for c, view in rows]
    return Response(page_json(items, next_cursor), media_type="application/json")


@router.get(
    "/{candidate_id:record_id}",
    name="candidates_get",
    summary="Get a candidate",
    description=_VIEWS,
    response_model=CandidateAny,
    responses=problem_responses(404, 422),
)
async def get(candidate_id: uuid.UUID, session: Session, actor: CurrentActor) -> Response:
    candidate, view = await service.get(session, actor, candidate_id)
    # The hottest read: rendered here, once, from the model just validated (FastAPI
    # would validate it again against the union before rendering it).
    body = present(candidate, view)
    response = Response(body.__pydantic_serializer__.to_json(body), media_type="application/json")
    set_etag(response, body.version, _variant(view))
    return response


@router.patch(
    "/{candidate_id:record_id}",
    name="candidates_update",
    summary="Change some fields of a candidate (never the phase)",
    responses=problem_responses(
        404,
        409,
        412,
        413,
        422,
        conflicts=(
            errors.WrongReferenceKind,
            service.ExternalRefTaken,
            errors.ConcurrentUpdate,
        ),
    ),
)
async def update(
    candidate_id: uuid.UUID,
    body: CandidateUpdate,
    session: Session,
    actor: CurrentActor,
    if_match: IfMatch,
    response: Response,
) -> Candidate:
    candidate = await service.update(session, actor, candidate_id, body, if_match)
    set_etag(response, candidate.version)
    return Candidate.model_validate(candidate)


@router.delete(
    "/{candidate_id:record_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    name="candidates_delete",
    summary="Erase a person: anonymise them, whatever their history",
    description="The right to erasure. Names, contacts, the exact birth date (the year "
    "stays), the exact position (the commune stays), profile details and every free-text "
    "note are removed; the path's dates, phases and outcomes stay, so no figure changes. "
    "Proposals not yet started are withdrawn. The person then answers 404 to everyone, as "
    "an unknown id does (no trace of who existed), and a `candidate.deleted` event carrying "
    "only the id tells partners to delete their copies. The erasure is journaled.",
    responses=problem_responses(404, 409, 412, 422, conflicts=(errors.ConcurrentUpdate,)),
)
async def delete(
    candidate_id: uuid.UUID, session: Session, actor: CurrentActor, if_match: IfMatch
) -> None:
    await data_rights.erase(session, actor, candidate_id, if_match)


@router.get(
    "/{candidate_id}/export",
    name="candidates_export",
    summary="Everything held about a person, as one document (right of access)",
    description="The profile, the path's history, activities, placements and their moves, "
    "the retention follow-ups, and every access to the record from the audit journal. "
    "The export itself is journaled (and listed in its own `accesses`).",
    responses=problem_responses(404, 422),
)
async def export(candidate_id: uuid.UUID, session: Session, actor: CurrentActor) -> CandidateExport:
    held = await data_rights.export(session, actor, candidate_id)
    moves: dict[uuid.UUID, list[PlacementTransitionRead]] = {}
    for move in held.placement_transitions:
        moves.setdefault(move.placement_id, []).append(PlacementTransitionRead.model_validate(move))
    follow_ups = [
        FollowUp(
            placement_id=p.id,
            milestone_months=months,
            on=on,
            in_post=bool(getattr(p, f"follow_up_{months}m_in_post")),
            recorded_at=getattr(p, f"follow_up_{months}m_recorded_at"),
        )
        for p in held.placements
        for months in (6, 12)
        if (on := getattr(p, f"follow_up_{months}m_on")) is not None
    ]
    return CandidateExport(
        exported_at=held.exported_at,
        candidate=Candidate.model_validate(held.candidate),
        transitions=[CandidateTransitionRead.model_validate(t) for t in held.transitions],
        activities=[Activity.model_validate(a) for a in held.activities],
        placements=[
            ExportedPlacement.model_validate(
                {**PlacementRead.model_validate(p).model_dump(), "history": moves.get(p.id, [])}
            )
            for p in held.placements
        ],
        follow_ups=follow_ups,
        accesses=[AuditEvent.model_validate(e) for e in held.accesses],
    )


@router.post(
    "/{candidate_id}/transitions",
    name="candidates_transition",
    summary="Move a candidate along the path",
    description="The only way `phase` changes. A refused transition answers 409 "
    "(`transition-refused`) with the unmet requirements (`unmet`) and the targets allowed "
    "now (`allowed`); a transition absent from the machine answers 409 "
    "(`transition-not-allowed`). See GET /v1/pathway for the machine. Leaving the path "
    "(`exited`) withdraws the person's placements not yet started, in the same "
    "transaction.",
    responses=problem_responses(
        404,
        409,
        412,
        413,
        422,
        conflicts=(
            pathway.TransitionNotAllowed,
            pathway.TransitionRefused,
            errors.ConcurrentUpdate,
        ),
    ),
)
async def transition(
    candidate_id: uuid.UUID,
    body: TransitionRequest,
    session: Session,
    actor: CurrentActor,
    settings: AppSettings,
    if_match: IfMatch,
    response: Response,
) -> Candidate:
    candidate = await pathway.transition(session, actor, settings, candidate_id, body, if_match)
    set_etag(response, candidate.version)
    response.headers["Content-Location"] = f"{router.prefix}/{candidate.id}"
    return Candidate.model_validate(candidate)


@router.get(
    "/{candidate_id}/history",
    name="candidates_history",
    summary="Every transition of a candidate's path: from, to, when, who, why, forced",
    responses=problem_responses(404, 422),
)
async def history(
    candidate_id: uuid.UUID,
    query: Annotated[PageQuery, Query()],
    session: Session,
    actor: CurrentActor,
) -> CandidateTransitionPage:
    rows, next_cursor, shown = await pathway.history(session, actor, candidate_id, query.page())
    items = [present_move(r, note=shown.note, actor_id=shown.actor_id) for r in rows]
    return CandidateTransitionPage(items=items, next_cursor=next_cursor)
