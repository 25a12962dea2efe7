"""The outbox and the change feed read from it.

Writers add one row per change, in the transaction that makes it (`emit`). A row has
no position until it is committed: the single sequencer (`sequence`) gives positions,
in order, to the rows it finds committed without one. It runs under one lock (an
advisory lock on PostgreSQL; SQLite serialises writers anyway), so positions are
handed out by one transaction at a time and each batch becomes visible at once, whole.
A transaction still in flight is invisible to it, and gets its positions in a later
batch: a reader that resumes after the last position it saw can never miss a change
that committed late. The sequencer runs in the worker's loop and, without waiting for
the lock, before each feed read.
"""

from __future__ import annotations

import uuid
from collections.abc import Collection, Sequence
from dataclasses import dataclass

from sqlalchemy import func, select, update
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession

from app.domain.enums import AuditAction, VacancyStatus
from app.domain.ids import uuid7
from app.domain.webhooks import DeliveryStatus, WebhookStatus
from app.errors import Conflict
from app.models import (
    Candidate,
    Event,
    Placement,
    Vacancy,
    WebhookDelivery,
    WebhookSubscription,
)
from app.models.base import utcnow
from app.schemas.events import EventData, present
from app.services import audit, tenancy, visibility
from app.services.auth import Actor

# pg_advisory_xact_lock key of the sequencer ("tremplin" in ASCII).
SEQUENCER_LOCK = 0x7472656D706C696E
SEQUENCE_BATCH = 10_000


@dataclass(frozen=True, slots=True)
class Audience:
    """Who may read an event, as its subject stood when it happened (see tenancy.events)."""

    structure_id: uuid.UUID | None = None  # insertion staff of the accompanying structure
    referrer_id: uuid.UUID | None = None  # the prescriber who referred the person
    landlord_id: uuid.UUID | None = None  # landlord staff of the vacancy
    published: bool = False  # a published vacancy: every insertion structure reads it


def candidate_audience(candidate: Candidate) -> Audience:
    """The person's own changes: their structure, and the prescriber who referred them."""
    return Audience(structure_id=candidate.structure_id, referrer_id=candidate.referrer_id)


def path_audience(candidate: Candidate) -> Audience:
    """What is recorded on the path (activities): the structure only, as activities are."""
    return Audience(structure_id=candidate.structure_id)


def vacancy_audience(vacancy: Vacancy) -> Audience:
    return Audience(
        landlord_id=vacancy.landlord_id, published=vacancy.status is not VacancyStatus.DRAFT
    )


async def placement_audience(session: AsyncSession, placement: Placement) -> Audience:
    """The candidate's structure and the vacancy's landlord, both of whom read placements."""
    row = (
        await session.execute(
            select(Candidate.structure_id, Vacancy.landlord_id)
            .select_from(Placement)
            .join(Candidate, Candidate.id == Placement.candidate_id)
            .join(Vacancy, Vacancy.id == Placement.vacancy_id)
            .where(Placement.id == placement.id)
        )
    ).one()
    return Audience(structure_id=row.structure_id, landlord_id=row.landlord_id)


def emit(session: AsyncSession, data: EventData, audience: Audience) -> Event:
    """Queue the event on the session; the caller's flush or commit writes it."""
    event = Event(
        id=uuid7(),
        occurred_at=utcnow(),
        type=data.event_type,
        subject_type=data.subject,
        subject_id=data.subject_id(),
        payload=data.model_dump(mode="json", by_alias=True),
        structure_id=audience.structure_id,
        referrer_id=audience.referrer_id,
        landlord_id=audience.landlord_id,
        published=audience.published,
    )
    session.add(event)
    return event


def _is_postgres(session: AsyncSession) -> bool:
    return session.get_bind().dialect.name == "postgresql"


async def sequence(session: AsyncSession, *, wait: bool = True) -> int:
    """Give positions to committed events that have none; returns how many.

    The caller commits. With `wait=False` it gives up at once when another sequencer
    holds the lock (that one's batch will show on the next read).
    """
    if _is_postgres(session):
        lock = func.pg_advisory_xact_lock if wait else func.pg_try_advisory_xact_lock
        got = await session.scalar(select(lock(SEQUENCER_LOCK)))
        if not wait and not got:
            return 0
    top = await session.scalar(select(func.max(Event.position))) or 0
    pending = (
        await session.scalars(
            select(Event.id)
            .where(Event.position.is_(None))
            .order_by(Event.occurred_at, Event.id)
            .limit(SEQUENCE_BATCH)
        )
    ).all()
    if pending:
        await session.execute(
            update(Event),
            [{"id": id_, "position": top + n} for n, id_ in enumerate(pending, start=1)],
        )
    return len(pending)


async def sequence_if_free(session: AsyncSession) -> None:
    """Sequence before a read, inside a savepoint: if the lock is busy (SQLite reading
    in a deferred transaction) the read goes on with what is already sequenced."""
    try:
        async with session.begin_nested():
            await sequence(session, wait=False)
    except DBAPIError:
        pass


class CursorAheadOfFeed(Conflict):
    slug, title = "cursor-ahead-of-feed", "The cursor is ahead of the feed"


@dataclass(frozen=True, slots=True)
class FeedPage:
    events: Sequence[Event]
    next_after: int
    newest: int  # the feed's newest position when the page was read


async def read(
    session: AsyncSession,
    actor: Actor,
    after: int,
    types: Collection[str] | None,
    limit: int,
) -> FeedPage:
    """The events the actor may read after a position, in feed order."""
    # Read the newest position first: every position up to it is committed (batches
    # commit in order), so the page below is complete up to it, whatever commits now.
    top = await session.scalar(select(func.max(Event.position))) or 0
    stmt = select(Event).where(Event.position > after, Event.position <= top, tenancy.events(actor))
    if types:
        stmt = stmt.where(Event.type.in_(sorted(types)))
    rows = (await session.scalars(stmt.order_by(Event.position).limit(limit))).all()
    if len(rows) == limit:
        last = rows[-1].position
        assert last is not None
        return FeedPage(rows, last, top)
    return FeedPage(rows, max(after, top), top)


async def feed(
    session: AsyncSession,
    actor: Actor,
    after: int,
    types: Collection[str] | None,
    limit: int,
) -> FeedPage:
    await sequence_if_free(session)
    page = await read(session, actor, after, types, limit)
    if after > page.newest:
        # No answer ever handed out this position (events are never deleted, so the
        # newest position never goes back, and a position reaches a reader only once its
        # batch has committed, before this read began): the cursor comes from elsewhere
        # (another environment, a restored copy). An empty page would have the partner
        # wait forever for events that will come, but at positions it would skip.
        # (Webhooks read through `read` and are not refused: one subscription's cursor
        # must not stop the others' deliveries.)
        raise CursorAheadOfFeed(
            f"The cursor is ahead of the feed, whose newest position is {page.newest}: "
            "resume from the last next_after this feed gave (0 reads it from the start).",
            newest_position=page.newest,
        )
    # The feed tells what happened to people (their phase, their placements): a read of
    # personal data like any list, journaled one row per person named.
    views = await visibility.candidate_views(session, actor, people_named(page.events))
    await audit.record_views(session, actor, AuditAction.LIST, views)
    return page


def people_named(rows: Sequence[Event]) -> list[uuid.UUID]:
    """The people a page of events is about, once each, in feed order."""
    people: dict[uuid.UUID, None] = {}
    for event in rows:
        if event.subject_type == "candidate":
            people[event.subject_id] = None
        elif (candidate_id := event.payload.get("candidate_id")) is not None:
            people[uuid.UUID(str(candidate_id))] = None
    return list(people)


def body_of(event: Event) -> str:
    """The event as the feed shows it and webhooks send it (compact JSON)."""
    return present(event).model_dump_json(by_alias=True)


@dataclass(frozen=True, slots=True)
class Backlog:
    unsequenced_events: int
    undelivered_attempts: int


async def backlog(session: AsyncSession) -> Backlog:
    """The work waiting for workers: for a metrics gauge (events committed without a
    position yet, webhook deliveries still pending for active subscriptions)."""
    unsequenced = await session.scalar(
        select(func.count()).select_from(Event).where(Event.position.is_(None))
    )
    undelivered = await session.scalar(
        select(func.count())
        .select_from(WebhookDelivery)
        .join(WebhookSubscription, WebhookSubscription.id == WebhookDelivery.subscription_id)
        .where(
            WebhookDelivery.status == DeliveryStatus.PENDING,
            WebhookSubscription.status == WebhookStatus.ACTIVE,
        )
    )
    return Backlog(int(unsequenced or 0), int(undelivered or 0))


async def backlog_by_stage(session: AsyncSession) -> dict[str, int]:
    """The backlog as the tremplin_event_backlog gauge labels it."""
    waiting = await backlog(session)
    return {"unsequenced": waiting.unsequenced_events, "undelivered": waiting.undelivered_attempts}
