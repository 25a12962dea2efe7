"""Webhook delivery, at least once: fan-out from the feed, leases, attempts, retries.

- Fan-out: each active subscription keeps a cursor in the feed; its owner's view of the
  events after it becomes one delivery row per event, in the same transaction that
  moves the cursor (the subscription row is locked, SKIP LOCKED between workers).
- Claim: a worker takes due deliveries with FOR UPDATE SKIP LOCKED (PostgreSQL; SQLite
  serialises writers) and leases them: it records the attempt and a lease expiry, and
  commits, before sending. Another worker skips a leased delivery until the lease
  expires, so two workers never send the same attempt; a worker that dies loses
  nothing: its lease expires and the delivery is attempted again (the attempt is
  recorded as abandoned). A late answer from a worker whose lease was taken over only
  completes its own attempt's record.
- Send: the URL is checked again and the address it resolved to is the one connected
  to (TLS still verifies the host name). Headers and signature per Standard Webhooks.
- Record: 2xx delivered; 410 disables the subscription; any other answer, a timeout
  or a refused connection is retried on the schedule; a delivery that spends the whole
  schedule with no success in between disables its subscription, with the reason.
"""

from __future__ import annotations

import logging
import random
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import cast

import httpx
from sqlalchemy import Table, bindparam, insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.config import Settings
from app.domain.enums import ActorKind, AuditAction
from app.domain.ids import uuid7
from app.domain.webhooks import (
    AttemptOutcome,
    DeliveryStatus,
    WebhookStatus,
    is_success,
    means_gone,
    retry_delay,
    signature_header,
)
from app.models import ApiClient, Event, WebhookAttempt, WebhookDelivery, WebhookSubscription
from app.models.base import utcnow
from app.services import audit, events, visibility
from app.services.auth import Actor
from app.services.permissions import OPERATIONS
from app.services.webhooks import TargetRefused, resolve_target

logger = logging.getLogger("tremplin.webhooks")

FAN_OUT_BATCH = 500
USER_AGENT = "Tremplin-Webhooks/1"
MAX_RETRY_AFTER_S = 24 * 3600


def lease_s(settings: Settings) -> float:
    """Long enough for one attempt to finish (resolution, connection, answer)."""
    return settings.webhook_lease_s or 2 * settings.webhook_timeout_s + 30


# A subscription delivers what its owner may read in the feed: no more once it may not.
FEED_SCOPE = OPERATIONS["events_list"].scope

# The journal's name for a disclosure by webhook (not an operation of the permission
# table: nobody calls it, the worker does it for the subscription's owner).
DELIVERY_OPERATION = "webhooks_delivery"


def _owner(subscription: WebhookSubscription) -> Actor:
    return Actor(
        kind=subscription.owner_kind,
        id=subscription.owner_id,
        role=subscription.role,
        structure_id=subscription.structure_id,
        scopes=frozenset(),
        operation=DELIVERY_OPERATION,
    )


async def _owner_gone(session: AsyncSession, subscription: WebhookSubscription) -> str | None:
    """Why the owner may no longer read the feed (a revoked or expired API client, or one
    whose scopes no longer include the feed's)."""
    if subscription.owner_kind is not ActorKind.CLIENT:
        return None
    try:
        client_id = uuid.UUID(subscription.owner_id)
    except ValueError:
        return None
    client = await session.get(ApiClient, client_id)
    if client is None:
        return "its API client was deleted"
    if client.revoked_at is not None:
        return "its API client was revoked"
    if client.expires_at is not None and client.expires_at <= utcnow():
        return "its API client expired"
    if FEED_SCOPE not in client.scopes:
        return f"its API client no longer has the {FEED_SCOPE} scope"
    return None


async def _disable(session: AsyncSession, subscription_id: uuid.UUID, reason: str) -> None:
    now = utcnow()
    await session.execute(
        update(WebhookSubscription)
        .where(
            WebhookSubscription.id == subscription_id,
            WebhookSubscription.status == WebhookStatus.ACTIVE,
        )
        .values(
            status=WebhookStatus.DISABLED,
            disabled_at=now,
            disabled_reason=reason[:1000],
            updated_at=now,
            version=WebhookSubscription.version + 1,
        )
        .execution_options(synchronize_session=False)
    )


async def fan_out(session: AsyncSession) -> int:
    """Turn the feed into deliveries for every active subscription; returns how many."""
    subscriptions = (
        await session.scalars(
            select(WebhookSubscription)
            .where(WebhookSubscription.status == WebhookStatus.ACTIVE)
            .order_by(WebhookSubscription.id)
            .with_for_update(skip_locked=True)
        )
    ).all()
    created = 0
    now = utcnow()
    for subscription in subscriptions:
        gone = await _owner_gone(session, subscription)
        if gone is not None:
            await _disable(session, subscription.id, f"Disabled: {gone}.")
            continue
        page = await events.read(
            session,
            _owner(subscription),
            subscription.cursor,
            subscription.event_types or None,
            FAN_OUT_BATCH,
        )
        if page.events:
            await session.execute(
                insert(WebhookDelivery),
                [
                    {
                        "id": uuid7(),
                        "subscription_id": subscription.id,
                        "event_id": event.id,
                        "event_type": event.type,
                        "position": event.position,
                        "body": events.body_of(event),
                        "status": DeliveryStatus.PENDING,
                        "attempts": 0,
                        "manual": False,
                        "next_attempt_at": now,
                        "created_at": now,
                    }
                    for event in page.events
                ],
            )
            created += len(page.events)
        if page.next_after != subscription.cursor:
            # The cursor is bookkeeping: no new version of the subscription for it.
            await session.execute(
                update(WebhookSubscription)
                .where(WebhookSubscription.id == subscription.id)
                .values(cursor=page.next_after)
                .execution_options(synchronize_session=False)
            )
    return created


@dataclass(frozen=True, slots=True)
class Claimed:
    delivery_id: uuid.UUID
    subscription_id: uuid.UUID
    attempt_id: uuid.UUID
    attempt: int
    manual: bool
    event_id: uuid.UUID
    url: str
    secrets: tuple[str, ...]
    body: str
    # Who receives it and whom it is about: a delivered event is journaled as a read.
    owner: Actor
    people: tuple[uuid.UUID, ...]


async def claim(
    session: AsyncSession, settings: Settings, worker: str, limit: int
) -> list[Claimed]:
    """Lease up to `limit` due deliveries to this worker and record their attempts."""
    now = utcnow()
    rows = (
        await session.execute(
            select(WebhookDelivery, WebhookSubscription, Event)
            .join(WebhookSubscription, WebhookSubscription.id == WebhookDelivery.subscription_id)
            .join(Event, Event.id == WebhookDelivery.event_id)
            .where(
                WebhookDelivery.status == DeliveryStatus.PENDING,
                WebhookDelivery.next_attempt_at <= now,
                or_(
                    WebhookDelivery.lease_expires_at.is_(None),
                    WebhookDelivery.lease_expires_at < now,
                ),
                WebhookSubscription.status == WebhookStatus.ACTIVE,
            )
            .order_by(WebhookDelivery.next_attempt_at, WebhookDelivery.id)
            .limit(limit)
            .with_for_update(of=WebhookDelivery, skip_locked=True)
        )
    ).all()
    claimed = []
    lease_until = now + timedelta(seconds=lease_s(settings))
    for delivery, subscription, event in rows:
        if delivery.lease_expires_at is not None:
            # Its worker stopped mid-attempt: say so in the attempt's record.
            await session.execute(
                update(WebhookAttempt)
                .where(
                    WebhookAttempt.delivery_id == delivery.id,
                    WebhookAttempt.outcome == AttemptOutcome.IN_PROGRESS,
                )
                .values(
                    outcome=AttemptOutcome.ABANDONED,
                    finished_at=now,
                    error="the worker stopped before an answer; the lease expired",
                )
                .execution_options(synchronize_session=False)
            )
        delivery.attempts += 1
        delivery.lease_expires_at = lease_until
        delivery.leased_by = worker
        attempt_id = uuid7()
        session.add(
            WebhookAttempt(
                id=attempt_id,
                delivery_id=delivery.id,
                number=delivery.attempts,
                manual=delivery.manual,
                started_at=now,
                worker=worker,
            )
        )
        secrets = [subscription.secret]
        expires = subscription.previous_secret_expires_at
        if subscription.previous_secret and expires is not None and expires > now:
            secrets.append(subscription.previous_secret)
        claimed.append(
            Claimed(
                delivery_id=delivery.id,
                subscription_id=subscription.id,
                attempt_id=attempt_id,
                attempt=delivery.attempts,
                manual=delivery.manual,
                event_id=delivery.event_id,
                url=subscription.url,
                secrets=tuple(secrets),
                body=delivery.body,
                owner=_owner(subscription),
                people=tuple(events.people_named([event])),
            )
        )
    await session.flush()
    return claimed


@dataclass(frozen=True, slots=True)
class Outcome:
    status_code: int | None
    error: str | None
    duration_ms: int
    retry_after_s: float | None = None


def _retry_after(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


async def send(http: httpx.AsyncClient, settings: Settings, job: Claimed) -> Outcome:
    """One attempt: check the target again, connect to the address checked, POST."""
    started = time.perf_counter()

    def elapsed() -> int:
        return int((time.perf_counter() - started) * 1000)

    try:
        target = await resolve_target(job.url, settings)
    except TargetRefused as exc:
        return Outcome(None, f"refused: {exc}", elapsed())
    body = job.body.encode()
    msg_id = str(job.event_id)
    timestamp = int(time.time())
    parts = httpx.URL(job.url)
    host = f"[{target.address}]" if ":" in target.address else target.address
    pinned = parts.copy_with(host=host)
    headers = {
        "content-type": "application/json",
        "user-agent": USER_AGENT,
        "host": parts.netloc.decode(),
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": signature_header(job.secrets, msg_id, timestamp, body),
    }
    extensions = {"sni_hostname": target.host} if parts.scheme == "https" else {}
    try:
        request = http.build_request(
            "POST",
            pinned,
            content=body,
            headers=headers,
            extensions=extensions,
            timeout=settings.webhook_timeout_s,
        )
        response = await http.send(request, stream=True)
        await response.aclose()  # the answer's body is not needed
    except httpx.TimeoutException:
        return Outcome(None, "timed out", elapsed())
    except httpx.HTTPError as exc:
        return Outcome(None, f"{type(exc).__name__}: connection failed", elapsed())
    retry_after = None
    if response.status_code in (429, 503):
        retry_after = _retry_after(response.headers.get("retry-after"))
    return Outcome(response.status_code, None, elapsed(), retry_after)


def _describe(outcome: Outcome) -> str:
    return f"HTTP {outcome.status_code}" if outcome.status_code else (outcome.error or "failed")


async def record_many(
    session: AsyncSession,
    settings: Settings,
    worker: str,
    finished: list[tuple[Claimed, Outcome]],
) -> None:
    """Several attempts' outcomes in one transaction (in delivery id order: no deadlock
    between workers recording at once). Successes, the usual case, are written with a
    few statements for the whole batch; failures one by one."""
    ordered = sorted(finished, key=lambda pair: pair[0].delivery_id)
    succeeded = [
        (job, outcome)
        for job, outcome in ordered
        if outcome.status_code is not None and is_success(outcome.status_code)
    ]
    if succeeded:
        await _record_successes(session, worker, succeeded)
        await _journal(session, [job for job, _ in succeeded])
    done = {job.delivery_id for job, _ in succeeded}
    for job, outcome in ordered:
        if job.delivery_id not in done:
            await record(session, settings, worker, job, outcome)


async def _record_successes(
    session: AsyncSession, worker: str, succeeded: list[tuple[Claimed, Outcome]]
) -> None:
    now = utcnow()
    await session.execute(
        update(WebhookAttempt),
        [
            {
                "id": job.attempt_id,
                "outcome": AttemptOutcome.SUCCEEDED,
                "finished_at": now,
                "status_code": outcome.status_code,
                "duration_ms": outcome.duration_ms,
            }
            for job, outcome in succeeded
        ],
    )
    deliveries = cast(Table, WebhookDelivery.__table__)
    # A delivery whose lease was taken over is left to the newer attempt.
    await session.execute(
        update(deliveries)
        .where(
            deliveries.c.id == bindparam("delivery"),
            deliveries.c.leased_by == worker,
            deliveries.c.attempts == bindparam("attempt"),
        )
        .values(
            status=DeliveryStatus.DELIVERED,
            delivered_at=now,
            lease_expires_at=None,
            leased_by=None,
            manual=False,
            last_status_code=bindparam("code"),
            last_error=None,
        ),
        [
            {"delivery": job.delivery_id, "attempt": job.attempt, "code": outcome.status_code}
            for job, outcome in succeeded
        ],
    )
    for subscription_id in sorted({job.subscription_id for job, _ in succeeded}):
        await _clear_failures(session, subscription_id)


async def _journal(session: AsyncSession, delivered: list[Claimed]) -> None:
    """Events received by a partner told it about the people they name: one journal row
    per person and owner for the batch, as a feed read leaves."""
    by_owner: dict[Actor, dict[uuid.UUID, None]] = {}
    for job in delivered:
        by_owner.setdefault(job.owner, {}).update(dict.fromkeys(job.people))
    for owner in sorted(by_owner, key=lambda actor: (actor.kind.value, actor.id)):
        views = await visibility.candidate_views(session, owner, list(by_owner[owner]))
        await audit.record_views(session, owner, AuditAction.LIST, views)


async def _clear_failures(session: AsyncSession, subscription_id: uuid.UUID) -> None:
    """Only a subscription that was failing is written: no hot row for the usual case."""
    await session.execute(
        update(WebhookSubscription)
        .where(
            WebhookSubscription.id == subscription_id,
            or_(
                WebhookSubscription.failing_since.is_not(None),
                WebhookSubscription.consecutive_failures != 0,
            ),
        )
        .values(failing_since=None, consecutive_failures=0)
        .execution_options(synchronize_session=False)
    )


async def record(
    session: AsyncSession, settings: Settings, worker: str, job: Claimed, outcome: Outcome
) -> None:
    """Write the attempt's outcome, and what follows for the delivery and subscription."""
    now = utcnow()
    succeeded = outcome.status_code is not None and is_success(outcome.status_code)
    await session.execute(
        update(WebhookAttempt)
        .where(WebhookAttempt.id == job.attempt_id)
        .values(
            outcome=AttemptOutcome.SUCCEEDED if succeeded else AttemptOutcome.FAILED,
            finished_at=now,
            status_code=outcome.status_code,
            error=outcome.error,
            duration_ms=outcome.duration_ms,
        )
        .execution_options(synchronize_session=False)
    )
    delivery = await session.scalar(
        select(WebhookDelivery).where(WebhookDelivery.id == job.delivery_id).with_for_update()
    )
    if delivery is None or delivery.leased_by != worker or delivery.attempts != job.attempt:
        return  # the lease was taken over: the newer attempt decides
    delivery.lease_expires_at = None
    delivery.leased_by = None
    delivery.manual = False
    delivery.last_status_code = outcome.status_code
    delivery.last_error = outcome.error
    if succeeded:
        delivery.status = DeliveryStatus.DELIVERED
        delivery.delivered_at = now
        await _clear_failures(session, job.subscription_id)
        await _journal(session, [job])
        return
    subscription = await session.scalar(
        select(WebhookSubscription)
        .where(WebhookSubscription.id == job.subscription_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    assert subscription is not None  # deliveries go with their subscription
    failing_since = subscription.failing_since or now
    failures = subscription.consecutive_failures + 1
    await session.execute(
        update(WebhookSubscription)
        .where(WebhookSubscription.id == subscription.id)
        .values(failing_since=failing_since, consecutive_failures=failures)
        .execution_options(synchronize_session=False)
    )
    if outcome.status_code is not None and means_gone(outcome.status_code):
        delivery.status = DeliveryStatus.FAILED
        await _disable(
            session, subscription.id, "The endpoint answered 410 Gone: it wants no more events."
        )
        return
    delay = None if job.manual else retry_delay(job.attempt, settings.webhook_retry_schedule_s)
    if delay is None:
        delivery.status = DeliveryStatus.FAILED
        if not job.manual:
            await _disable(
                session,
                subscription.id,
                f"{failures} failed attempts in a row since "
                f"{failing_since.isoformat(timespec='seconds')}, over a whole retry schedule "
                f"with no success; the last: {_describe(outcome)}.",
            )
        return
    # A little jitter, so retries of one outage do not all come back at once.
    delay *= 1 + random.uniform(0, 0.1)  # noqa: S311 - not a secret
    if outcome.retry_after_s is not None:
        delay = max(delay, min(outcome.retry_after_s, MAX_RETRY_AFTER_S))
    delivery.next_attempt_at = now + timedelta(seconds=delay)
