from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query, Response, status

from app import errors
from app.domain.webhooks import DeliveryStatus
from app.routers.deps import ApiRoute, AppSettings, CurrentActor, IfMatch, Session, set_etag
from app.routers.pagination import PageQuery
from app.schemas.problems import problem_responses
from app.schemas.webhooks import (
    Webhook,
    WebhookAttempt,
    WebhookCreate,
    WebhookDelivery,
    WebhookDeliveryPage,
    WebhookPage,
    WebhookUpdate,
    WebhookWithSecret,
)
from app.services import webhooks as service

router = APIRouter(prefix="/v1/webhooks", tags=["webhooks"], route_class=ApiRoute)

_ABOUT = (
    "Events are POSTed as JSON (the same body as in GET /v1/events) with the Standard "
    "Webhooks headers `webhook-id` (the event id: deduplicate by it), `webhook-timestamp` "
    "and `webhook-signature` (`v1,` and the base64 HMAC-SHA256 of `id.timestamp.body` "
    "keyed by the secret). A subscription delivers what its owner's role and structure "
    "read in the feed. Any 2xx answer is a success; other answers and timeouts are "
    "retried with exponential backoff over about three days; 410 disables the "
    "subscription, as does a whole retry schedule without a success (`disabled_reason` "
    "says why)."
)


def _with_secret(subscription: object, secret: str) -> WebhookWithSecret:
    return WebhookWithSecret.model_validate(
        {**Webhook.model_validate(subscription).model_dump(), "secret": secret}
    )


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    name="webhooks_create",
    summary="Subscribe an endpoint; the signing secret is shown once, in this answer",
    description=_ABOUT,
    responses=problem_responses(413, 422),
)
async def create(
    body: WebhookCreate,
    session: Session,
    actor: CurrentActor,
    settings: AppSettings,
    response: Response,
) -> WebhookWithSecret:
    subscription, secret = await service.create(session, actor, settings, body)
    set_etag(response, subscription.version)
    response.headers["Location"] = f"{router.prefix}/{subscription.id}"
    response.headers["Cache-Control"] = "no-store"
    return _with_secret(subscription, secret)


@router.get(
    "",
    name="webhooks_list",
    summary="List webhook subscriptions",
    responses=problem_responses(422),
)
async def list_(
    query: Annotated[PageQuery, Query()], session: Session, actor: CurrentActor
) -> WebhookPage:
    items, next_cursor = await service.list_(session, actor, query.page())
    return WebhookPage(items=[Webhook.model_validate(w) for w in items], next_cursor=next_cursor)


@router.get(
    "/{webhook_id}",
    name="webhooks_get",
    summary="Get a webhook subscription",
    responses=problem_responses(404, 422),
)
async def get(
    webhook_id: uuid.UUID, session: Session, actor: CurrentActor, response: Response
) -> Webhook:
    subscription = await service.get(session, actor, webhook_id)
    set_etag(response, subscription.version)
    return Webhook.model_validate(subscription)


@router.patch(
    "/{webhook_id}",
    name="webhooks_update",
    summary="Change a subscription's URL or event types, pause it or re-enable it",
    responses=problem_responses(404, 409, 412, 413, 422, conflicts=(errors.ConcurrentUpdate,)),
)
async def update(
    webhook_id: uuid.UUID,
    body: WebhookUpdate,
    session: Session,
    actor: CurrentActor,
    settings: AppSettings,
    if_match: IfMatch,
    response: Response,
) -> Webhook:
    subscription = await service.update(session, actor, settings, webhook_id, body, if_match)
    set_etag(response, subscription.version)
    return Webhook.model_validate(subscription)


@router.delete(
    "/{webhook_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    name="webhooks_delete",
    summary="Delete a subscription (and its delivery records)",
    responses=problem_responses(404, 409, 412, 422, conflicts=(errors.ConcurrentUpdate,)),
)
async def delete(
    webhook_id: uuid.UUID, session: Session, actor: CurrentActor, if_match: IfMatch
) -> None:
    await service.delete(session, actor, webhook_id, if_match)


@router.post(
    "/{webhook_id}/rotate-secret",
    name="webhooks_rotate_secret",
    summary="Issue a new signing secret; the old one also signs for a grace period",
    description="Until `previous_secret_expires_at` (WEBHOOK_SECRET_GRACE_S, a day by "
    "default) every delivery carries two signatures, one per secret, so the receiver can "
    "switch to the new secret without losing a delivery.",
    responses=problem_responses(404, 412, 422),
)
async def rotate_secret(
    webhook_id: uuid.UUID,
    session: Session,
    actor: CurrentActor,
    settings: AppSettings,
    if_match: IfMatch,
    response: Response,
) -> WebhookWithSecret:
    subscription, secret = await service.rotate_secret(
        session, actor, settings, webhook_id, if_match
    )
    set_etag(response, subscription.version)
    response.headers["Cache-Control"] = "no-store"
    return _with_secret(subscription, secret)


class DeliveryQuery(PageQuery):
    status: DeliveryStatus | None = None


def _delivery(record: service.DeliveryRecord) -> WebhookDelivery:
    return WebhookDelivery.model_validate(
        {
            **{
                name: getattr(record.delivery, name)
                for name in WebhookDelivery.model_fields
                if name != "attempts"
            },
            "attempts": [WebhookAttempt.model_validate(a) for a in record.attempts],
        }
    )


@router.get(
    "/{webhook_id}/deliveries",
    name="webhooks_deliveries",
    summary="Every delivery of a subscription, with each of its attempts",
    responses=problem_responses(404, 422),
)
async def deliveries(
    webhook_id: uuid.UUID,
    query: Annotated[DeliveryQuery, Query()],
    session: Session,
    actor: CurrentActor,
) -> WebhookDeliveryPage:
    records, next_cursor = await service.deliveries(
        session, actor, webhook_id, query.status, query.page()
    )
    return WebhookDeliveryPage(items=[_delivery(r) for r in records], next_cursor=next_cursor)


@router.post(
    "/{webhook_id}/deliveries/{delivery_id}/redeliver",
    status_code=status.HTTP_202_ACCEPTED,
    name="webhooks_redeliver",
    summary="Send a delivery again, now (one attempt, same webhook-id)",
    responses=problem_responses(404, 409, 422, conflicts=(service.WebhookDisabled,)),
)
async def redeliver(
    webhook_id: uuid.UUID, delivery_id: uuid.UUID, session: Session, actor: CurrentActor
) -> WebhookDelivery:
    record = await service.redeliver(session, actor, webhook_id, delivery_id)
    return _delivery(record)
