from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from app.routers.deps import ApiRoute, CurrentActor, Session
from app.schemas.events import EventPage, EventQuery, present
from app.schemas.problems import problem_responses
from app.services import events as service

router = APIRouter(prefix="/v1/events", tags=["events"], route_class=ApiRoute)


@router.get(
    "",
    name="events_list",
    summary="The change feed: every change the caller may read, in commit order",
    description="Events are thin (ids, kinds and statuses): fetch the resource for the rest. "
    "Resume with `after` set to the last `next_after`: a change that commits late gets a "
    "position after every position already handed out, so nothing is skipped and nothing "
    "comes twice. Deletions come as tombstones (`candidate.deleted`, `vacancy.deleted`). "
    "What each role reads: admins everything; insertion staff their candidates, what "
    "hangs off them and published vacancies; prescribers the people they referred; "
    "landlords their vacancies and the placements on them. The same bodies are sent by "
    "webhooks. A cursor beyond the newest position the feed has given (one from another "
    "environment, say) answers 409 `cursor-ahead-of-feed` with `newest_position`, never an "
    "empty page to wait on: a position this feed gave is always accepted.",
    responses=problem_responses(409, 422, conflicts=(service.CursorAheadOfFeed,)),
)
async def list_(
    query: Annotated[EventQuery, Query()], session: Session, actor: CurrentActor
) -> EventPage:
    page = await service.feed(session, actor, query.after, query.types, query.limit)
    return EventPage(
        items=[present(e) for e in page.events],
        next_after=page.next_after,
    )
