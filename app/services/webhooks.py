"""Webhook subscriptions: who may subscribe, where to, and the record of deliveries.

A subscription belongs to its owner's role and structure: it delivers exactly what
that role and structure read in the feed (tenancy.events), so a webhook never tells
more than GET /v1/events would. Callback URLs are https and must resolve to public
addresses; the check runs at subscription and again before every attempt, which pins
the address it checked (no DNS rebinding in between).
"""

from __future__ import annotations

import asyncio
import socket
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from urllib.parse import urlsplit

from sqlalchemy import ColumnElement, func, select, true
from sqlalchemy.ext.asyncio import AsyncSession

from app.config import Settings
from app.domain.enums import Role
from app.domain.webhooks import (
    DeliveryStatus,
    WebhookStatus,
    is_public_address,
    new_secret,
)
from app.errors import Conflict, NotFound, ValidationFailed, field_error
from app.models import Event, WebhookAttempt, WebhookDelivery, WebhookSubscription
from app.models.base import utcnow
from app.schemas.webhooks import WebhookCreate, WebhookUpdate
from app.services.auth import Actor
from app.services.common import PageRequest, apply_changes, check_version, flush, paginate


class WebhookDisabled(Conflict):
    slug, title = "webhook-disabled", "The subscription is disabled"


class TargetRefused(Exception):
    """The callback URL may not be called (scheme, resolution or address)."""


@dataclass(frozen=True, slots=True)
class Target:
    """A callback URL checked a moment ago, and the address to connect to."""

    url: str
    host: str
    port: int
    address: str


async def resolve_target(url: str, settings: Settings) -> Target:
    """Check a callback URL and pick the address to connect to, or raise TargetRefused."""
    parts = urlsplit(url)
    if parts.scheme != "https" and not (parts.scheme == "http" and settings.webhook_allow_http):
        raise TargetRefused("the URL must be https")
    host = parts.hostname or ""
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(
            host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP
        )
    except (OSError, UnicodeError):
        raise TargetRefused("the host name does not resolve") from None
    addresses = list(dict.fromkeys(str(info[4][0]) for info in infos))
    if not addresses:
        raise TargetRefused("the host name does not resolve")
    # Every address must be public: a name with one private address could be made to
    # reach it.
    private = [a for a in addresses if not is_public_address(a)]
    if private and not settings.webhook_allow_private_targets:
        raise TargetRefused("the host resolves to a private, loopback or link-local address")
    return Target(url=url, host=host, port=port, address=addresses[0])


async def _check_url(url: str, settings: Settings) -> None:
    try:
        await resolve_target(url, settings)
    except TargetRefused as exc:
        raise ValidationFailed([field_error(["body", "url"], str(exc), "url_refused")]) from None


def visible_to(actor: Actor) -> ColumnElement[bool]:
    """Admins see every subscription; others those of their role and structure."""
    if actor.role is Role.ADMIN:
        return true()
    return (WebhookSubscription.role == actor.role) & (
        WebhookSubscription.structure_id == actor.structure_id
    )


async def _find(
    session: AsyncSession, actor: Actor, webhook_id: uuid.UUID, *, lock: bool = False
) -> WebhookSubscription:
    stmt = select(WebhookSubscription).where(
        WebhookSubscription.id == webhook_id, visible_to(actor)
    )
    if lock:
        stmt = stmt.with_for_update()
    found = await session.scalar(stmt)
    if found is None:
        raise NotFound("No webhook subscription with this id.")
    return found


async def create(
    session: AsyncSession, actor: Actor, settings: Settings, data: WebhookCreate
) -> tuple[WebhookSubscription, str]:
    await _check_url(data.url, settings)
    secret = new_secret()
    # Events from now on: the newest position already handed out is where it starts.
    start = await session.scalar(select(func.max(Event.position))) or 0
    subscription = WebhookSubscription(
        owner_kind=actor.kind,
        owner_id=actor.id,
        role=actor.role,
        structure_id=actor.structure_id,
        url=data.url,
        description=data.description,
        event_types=list(data.event_types),
        secret=secret,
        status=WebhookStatus.ACTIVE,
        cursor=start,
    )
    session.add(subscription)
    await flush(session)
    return subscription, secret


async def get(session: AsyncSession, actor: Actor, webhook_id: uuid.UUID) -> WebhookSubscription:
    return await _find(session, actor, webhook_id)


async def list_(
    session: AsyncSession, actor: Actor, page: PageRequest
) -> tuple[Sequence[WebhookSubscription], str | None]:
    stmt = select(WebhookSubscription).where(visible_to(actor))
    return await paginate(session, WebhookSubscription, stmt, page)


async def update(
    session: AsyncSession,
    actor: Actor,
    settings: Settings,
    webhook_id: uuid.UUID,
    data: WebhookUpdate,
    expected_versions: frozenset[int] | None,
) -> WebhookSubscription:
    subscription = await _find(session, actor, webhook_id, lock=True)
    check_version(subscription.version, expected_versions)
    changes = data.model_dump(exclude_unset=True)
    if "url" in changes:
        await _check_url(changes["url"], settings)
    status = changes.get("status")
    if status is WebhookStatus.ACTIVE and subscription.status is WebhookStatus.DISABLED:
        # A fresh start: the failure run that disabled it is over.
        changes.update(
            disabled_at=None, disabled_reason=None, failing_since=None, consecutive_failures=0
        )
    elif status is WebhookStatus.DISABLED and subscription.status is WebhookStatus.ACTIVE:
        changes.update(disabled_at=utcnow(), disabled_reason="disabled by its owner")
    apply_changes(subscription, changes)
    await flush(session)
    return subscription


async def delete(
    session: AsyncSession,
    actor: Actor,
    webhook_id: uuid.UUID,
    expected_versions: frozenset[int] | None,
) -> None:
    subscription = await _find(session, actor, webhook_id)
    check_version(subscription.version, expected_versions)
    await session.delete(subscription)
    await flush(session)


async def rotate_secret(
    session: AsyncSession,
    actor: Actor,
    settings: Settings,
    webhook_id: uuid.UUID,
    expected_versions: frozenset[int] | None,
) -> tuple[WebhookSubscription, str]:
    """A new secret; the old one keeps signing too (both signatures are sent) for the
    grace period, so the receiver can switch without losing a delivery."""
    subscription = await _find(session, actor, webhook_id, lock=True)
    check_version(subscription.version, expected_versions)
    secret = new_secret()
    grace = settings.webhook_secret_grace_s
    subscription.previous_secret = subscription.secret if grace else None
    subscription.previous_secret_expires_at = utcnow() + timedelta(seconds=grace) if grace else None
    subscription.secret = secret
    await flush(session)
    return subscription, secret


@dataclass(frozen=True, slots=True)
class DeliveryRecord:
    delivery: WebhookDelivery
    attempts: Sequence[WebhookAttempt]


async def deliveries(
    session: AsyncSession,
    actor: Actor,
    webhook_id: uuid.UUID,
    status: DeliveryStatus | None,
    page: PageRequest,
) -> tuple[list[DeliveryRecord], str | None]:
    await _find(session, actor, webhook_id)
    stmt = select(WebhookDelivery).where(WebhookDelivery.subscription_id == webhook_id)
    if status is not None:
        stmt = stmt.where(WebhookDelivery.status == status)
    rows, next_cursor = await paginate(session, WebhookDelivery, stmt, page)
    attempts: dict[uuid.UUID, list[WebhookAttempt]] = {row.id: [] for row in rows}
    if rows:
        for attempt in await session.scalars(
            select(WebhookAttempt)
            .where(WebhookAttempt.delivery_id.in_(list(attempts)))
            .order_by(WebhookAttempt.delivery_id, WebhookAttempt.number)
        ):
            attempts[attempt.delivery_id].append(attempt)
    return [DeliveryRecord(row, attempts[row.id]) for row in rows], next_cursor


async def redeliver(
    session: AsyncSession, actor: Actor, webhook_id: uuid.UUID, delivery_id: uuid.UUID
) -> DeliveryRecord:
    """One more attempt, now, whatever became of the delivery (same webhook-id)."""
    subscription = await _find(session, actor, webhook_id)
    if subscription.status is WebhookStatus.DISABLED:
        raise WebhookDisabled("Re-enable the subscription (status: active) first.")
    delivery = await session.scalar(
        select(WebhookDelivery)
        .where(WebhookDelivery.id == delivery_id, WebhookDelivery.subscription_id == webhook_id)
        .with_for_update()
    )
    if delivery is None:
        raise NotFound("No delivery with this id for this subscription.")
    delivery.status = DeliveryStatus.PENDING
    delivery.manual = True
    delivery.next_attempt_at = utcnow()
    await flush(session)
    attempts = (
        await session.scalars(
            select(WebhookAttempt)
            .where(WebhookAttempt.delivery_id == delivery.id)
            .order_by(WebhookAttempt.number)
        )
    ).all()
    return DeliveryRecord(delivery, attempts)
