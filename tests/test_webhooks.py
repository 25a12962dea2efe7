"""Webhooks: subscriptions, signatures checked by `standardwebhooks`, retries, disabling,
SSRF refusals, redelivery, scoping, and workers that die or run side by side."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import datetime as dt
import itertools
import json
import os
import signal
import ssl
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from app.config import PROJECT_ROOT, Settings
from app.db import session_scope
from app.domain.enums import Role
from app.domain.ids import uuid7
from app.domain.webhooks import AttemptOutcome, DeliveryStatus, new_secret
from app.main import create_app
from app.models import WebhookAttempt, WebhookDelivery, WebhookSubscription
from app.services import delivery
from app.services.auth import SYSTEM_ACTOR
from app.services.jobs import JOBS
from app.worker import Worker
from tests.access_helpers import is_problem, subject_of
from tests.conftest import (
    TEST_SIGNING_KEY,
    Backend,
    _empty_tables,
    client_as,
    create_api_client,
    get_token,
    http_client,
    make_settings,
)
from tests.factories import candidate_payload, create, create_structure, job_payload
from tests.webhook_receiver import Receiver, always

WAIT_S = 60  # a bound on waits, never a speed assertion
JOBS_OFF = dict.fromkeys(JOBS, "off")
LOOPBACK = {"webhook_allow_private_targets": True, "webhook_allow_http": True}


def worker_settings(backend: Backend, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        **LOOPBACK,
        "webhook_timeout_s": 2,
        "webhook_retry_schedule_s": [0.05, 0.05, 0.05],
        "webhook_lease_s": 3,
        "worker_poll_interval_s": 0.05,
        "job_schedules": JOBS_OFF,
    }
    values.update(overrides)
    return make_settings(backend.url, **values)


@pytest.fixture(scope="session")
async def loopback_app(backend: Backend) -> AsyncIterator[FastAPI]:
    """The API with loopback callbacks allowed, as the tests' receiver needs."""
    application = create_app(make_settings(backend.url, **LOOPBACK))
    async with application.router.lifespan_context(application):
        yield application


@pytest.fixture
async def admin(
    loopback_app: FastAPI, engine: AsyncEngine, sessionmaker: async_sessionmaker[AsyncSession]
) -> AsyncIterator[httpx.AsyncClient]:
    await _empty_tables(engine)
    async with await client_as(loopback_app, sessionmaker, Role.ADMIN) as http:
        yield http
    await _empty_tables(engine)


@pytest.fixture
def receiver() -> Any:
    with Receiver() as r:
        yield r


async def wait_until(check: Callable[[], Awaitable[bool]], what: str) -> None:
    for _ in range(WAIT_S * 20):
        if await check():
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"never happened: {what}")


@contextlib.asynccontextmanager
async def running(settings: Settings, name: str = "test-worker") -> AsyncIterator[Worker]:
    worker = Worker(settings, name=name)
    task = asyncio.create_task(worker.run())
    try:
        yield worker
    finally:
        worker.stop()
        await task


async def subscribe(
    http: httpx.AsyncClient, receiver: Receiver, path: str, behaviour: Any = None, **body: Any
) -> dict[str, Any]:
    response = await http.post("/v1/webhooks", json={"url": receiver.url(path), **body})
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    receiver.expect(path, created["secret"], behaviour)
    return created


async def deliveries(http: httpx.AsyncClient, webhook_id: str) -> list[dict[str, Any]]:
    response = await http.get(f"/v1/webhooks/{webhook_id}/deliveries", params={"limit": 200})
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return items


async def settled(http: httpx.AsyncClient, webhook_id: str, count: int) -> bool:
    items = await deliveries(http, webhook_id)
    return len(items) >= count and all(d["status"] != "pending" for d in items)


async def feed_after(http: httpx.AsyncClient, after: int) -> list[dict[str, Any]]:
    response = await http.get("/v1/events", params={"after": after, "limit": 1000})
    assert response.status_code == 200
    items: list[dict[str, Any]] = response.json()["items"]
    return items


async def newest_position(http: httpx.AsyncClient) -> int:
    response = await http.get("/v1/events", params={"after": 0, "limit": 1000})
    position: int = response.json()["next_after"]
    return position


# --- Subscriptions --------------------------------------------------------------------


async def test_a_delivery_is_signed_and_carries_the_feed_event(
    admin: httpx.AsyncClient, receiver: Receiver, backend: Backend
) -> None:
    created = await subscribe(admin, receiver, "/hook", description="all events")
    assert created["secret"].startswith("whsec_")
    assert len(base64.b64decode(created["secret"].removeprefix("whsec_"))) >= 24
    got = await admin.get(f"/v1/webhooks/{created['id']}")
    assert got.status_code == 200
    assert "secret" not in got.json()
    structure = await create_structure(admin, "insertion")
    person = await create(admin, "/v1/candidates", candidate_payload(structure["id"]))

    async with running(worker_settings(backend)):
        await wait_until(lambda: settled(admin, created["id"], 1), "the delivery")
    # What a partner received about a person is journaled, as a feed read would be.
    journal = await admin.get("/v1/audit", params={"operation": "webhooks_delivery"})
    assert [(r["candidate_id"], r["actor_id"]) for r in journal.json()["items"]] == [
        (person["id"], subject_of(admin))
    ]
    [receipt] = receiver.of("/hook")
    assert receipt.verified
    [event] = await feed_after(admin, 0)
    assert receipt.webhook_id == event["id"]
    assert json.loads(receipt.body) == event
    [delivery] = await deliveries(admin, created["id"])
    assert delivery["status"] == "delivered"
    assert delivery["event_id"] == event["id"]
    assert [(a["number"], a["outcome"], a["status_code"]) for a in delivery["attempts"]] == [
        (1, "succeeded", 200)
    ]


async def test_rotation_signs_with_both_secrets_for_the_grace_period(
    admin: httpx.AsyncClient, receiver: Receiver, backend: Backend
) -> None:
    created = await subscribe(admin, receiver, "/old")
    rotated = await admin.post(f"/v1/webhooks/{created['id']}/rotate-secret")
    assert rotated.status_code == 200
    assert rotated.headers["cache-control"] == "no-store"
    new_secret = rotated.json()["secret"]
    assert new_secret != created["secret"]
    assert rotated.json()["previous_secret_expires_at"] is not None
    # A receiver that knows only the new secret verifies, and so does one that knows
    # only the old one: both signatures travel.
    receiver.secrets["/old"] = [new_secret]
    await create_structure(admin, "landlord")  # no event: structures are not in the feed
    await create(admin, "/v1/candidates", candidate_payload((await create_structure(admin))["id"]))
    async with running(worker_settings(backend)):
        await wait_until(lambda: settled(admin, created["id"], 1), "the delivery")
    [receipt] = receiver.of("/old")
    assert receipt.verified
    assert receipt.signatures == 2


async def test_rotation_honours_if_match(client: httpx.AsyncClient) -> None:
    """A stale ETag rotates nothing (412), as on PATCH and DELETE; a current one or none
    rotates."""
    created = await client.post("/v1/webhooks", json={"url": "https://93.184.216.34:8443/h"})
    assert created.status_code == 201, created.text
    url = f"/v1/webhooks/{created.json()['id']}"
    etag = created.headers["etag"]
    moved = await client.patch(url, json={"description": "moved"}, headers={"If-Match": etag})
    assert moved.status_code == 200, moved.text

    stale = await client.post(f"{url}/rotate-secret", headers={"If-Match": etag})
    assert is_problem(stale, 412), stale.text
    assert stale.json()["type"] == "urn:tremplin:problem:precondition-failed"
    assert "whsec_" not in stale.text
    kept = await client.get(url)
    assert kept.headers["etag"] == moved.headers["etag"]
    assert kept.json()["previous_secret_expires_at"] is None

    current = await client.post(f"{url}/rotate-secret", headers={"If-Match": kept.headers["etag"]})
    assert current.status_code == 200, current.text
    assert current.json()["secret"] != created.json()["secret"]
    assert current.headers["etag"] != kept.headers["etag"]

    unconditional = await client.post(f"{url}/rotate-secret")
    assert unconditional.status_code == 200, unconditional.text
    assert unconditional.json()["secret"] != current.json()["secret"]


async def test_500_then_200_is_retried_until_delivered(
    admin: httpx.AsyncClient, receiver: Receiver, backend: Backend
) -> None:
    created = await subscribe(admin, receiver, "/flaky", lambda n: (500 if n < 2 else 200, 0.0))
    await create_structure(admin)
    await create(admin, "/v1/candidates", candidate_payload((await create_structure(admin))["id"]))
    async with running(worker_settings(backend)):
        await wait_until(lambda: settled(admin, created["id"], 1), "the retries")
    [delivery] = await deliveries(admin, created["id"])
    assert delivery["status"] == "delivered"
    assert [(a["outcome"], a["status_code"]) for a in delivery["attempts"]] == [
        ("failed", 500),
        ("failed", 500),
        ("succeeded", 200),
    ]
    subscription = (await admin.get(f"/v1/webhooks/{created['id']}")).json()
    assert (subscription["status"], subscription["failing_since"]) == ("active", None)
    assert len({r.webhook_id for r in receiver.of("/flaky")}) == 1


async def test_410_disables_the_subscription(
    admin: httpx.AsyncClient, receiver: Receiver, backend: Backend
) -> None:
    created = await subscribe(admin, receiver, "/gone", always(410))
    structure = await create_structure(admin)
    await create(admin, "/v1/candidates", candidate_payload(structure["id"]))
    async with running(worker_settings(backend)):
        await wait_until(lambda: settled(admin, created["id"], 1), "the 410")
        subscription = (await admin.get(f"/v1/webhooks/{created['id']}")).json()
        assert subscription["status"] == "disabled"
        assert "410" in subscription["disabled_reason"]
        # Nothing more is sent to it.
        await create(admin, "/v1/candidates", candidate_payload(structure["id"]))
        await asyncio.sleep(0.5)
    assert len(receiver.of("/gone")) == 1
    [delivery] = await deliveries(admin, created["id"])
    assert delivery["status"] == "failed"
    # Re-enabled, it receives what happened meanwhile.
    receiver.behaviours["/gone"] = always(200)
    enabled = await admin.patch(f"/v1/webhooks/{created['id']}", json={"status": "active"})
    assert enabled.status_code == 200
    assert enabled.json()["disabled_reason"] is None
    async with running(worker_settings(backend)):
        await wait_until(lambda: settled(admin, created["id"], 2), "the resumed delivery")
    assert [d["status"] for d in await deliveries(admin, created["id"])] == [
        "failed",
        "delivered",
    ]


async def test_a_receiver_that_times_out_is_retried_then_disabled(
    admin: httpx.AsyncClient, receiver: Receiver, backend: Backend
) -> None:
    created = await subscribe(admin, receiver, "/slow", lambda n: (200, 3.0))
    await create(admin, "/v1/candidates", candidate_payload((await create_structure(admin))["id"]))
    settings = worker_settings(backend, webhook_timeout_s=0.3, webhook_retry_schedule_s=[0.05])
    async with running(settings):
        await wait_until(lambda: settled(admin, created["id"], 1), "the timeouts")
    [delivery] = await deliveries(admin, created["id"])
    assert delivery["status"] == "failed"
    assert [(a["outcome"], a["error"]) for a in delivery["attempts"]] == [
        ("failed", "timed out"),
        ("failed", "timed out"),
    ]
    subscription = (await admin.get(f"/v1/webhooks/{created['id']}")).json()
    assert subscription["status"] == "disabled"
    assert "2 failed attempts in a row" in subscription["disabled_reason"]
    assert "timed out" in subscription["disabled_reason"]


async def test_manual_redelivery_sends_the_same_webhook_id_again(
    admin: httpx.AsyncClient, receiver: Receiver, backend: Backend
) -> None:
    created = await subscribe(admin, receiver, "/again")
    await create(admin, "/v1/candidates", candidate_payload((await create_structure(admin))["id"]))
    async with running(worker_settings(backend)):
        await wait_until(lambda: settled(admin, created["id"], 1), "the delivery")
        [delivery] = await deliveries(admin, created["id"])
        again = await admin.post(
            f"/v1/webhooks/{created['id']}/deliveries/{delivery['id']}/redeliver"
        )
        assert again.status_code == 202, again.text
        assert again.json()["status"] == "pending"

        async def two_attempts() -> bool:
            [d] = await deliveries(admin, created["id"])
            return d["status"] == "delivered" and len(d["attempts"]) == 2

        await wait_until(two_attempts, "the redelivery")
    [delivery] = await deliveries(admin, created["id"])
    assert [a["manual"] for a in delivery["attempts"]] == [False, True]
    first, second = receiver.of("/again")
    assert first.webhook_id == second.webhook_id
    assert second.verified
    unknown = await admin.post(f"/v1/webhooks/{created['id']}/deliveries/{created['id']}/redeliver")
    assert unknown.status_code == 404


async def test_a_subscription_whose_cursor_is_ahead_does_not_stop_the_others(
    admin: httpx.AsyncClient,
    receiver: Receiver,
    backend: Backend,
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    """A partner reading the feed with a cursor ahead of it is told so (409); a
    subscription's own cursor ahead (a database restored from an older backup) must not
    stop the deliveries of every other subscription."""
    ahead = await subscribe(admin, receiver, "/ahead")
    other = await subscribe(admin, receiver, "/other")
    async with session_scope(sessionmaker) as session:
        await session.execute(
            update(WebhookSubscription)
            .where(WebhookSubscription.id == uuid.UUID(ahead["id"]))
            .values(cursor=10**12)
        )
    structure = await create_structure(admin, "insertion")
    await create(admin, "/v1/candidates", candidate_payload(structure["id"]))

    async with running(worker_settings(backend)):
        await wait_until(lambda: settled(admin, other["id"], 1), "the other's delivery")
    assert [d["status"] for d in await deliveries(admin, other["id"])] == ["delivered"]
    assert await deliveries(admin, ahead["id"]) == []


async def test_a_subscription_delivers_only_what_its_owner_reads(
    admin: httpx.AsyncClient,
    loopback_app: FastAPI,
    sessionmaker: async_sessionmaker[AsyncSession],
    receiver: Receiver,
    backend: Backend,
) -> None:
    landlord = await create_structure(admin, "landlord")
    other_landlord = await create_structure(admin, "landlord")
    async with await client_as(loopback_app, sessionmaker, Role.LANDLORD, landlord["id"]) as own:
        created = await subscribe(own, receiver, "/landlord")
        await create(admin, "/v1/vacancies", job_payload(landlord["id"]))
        await create(admin, "/v1/vacancies", job_payload(other_landlord["id"]))
        await create(
            admin, "/v1/candidates", candidate_payload((await create_structure(admin))["id"])
        )
        async with running(worker_settings(backend)):
            await wait_until(lambda: settled(own, created["id"], 1), "the delivery")
            await asyncio.sleep(0.3)
        delivered = [json.loads(r.body) for r in receiver.of("/landlord")]
        assert [(e["type"], e["data"]["landlord_id"]) for e in delivered] == [
            ("vacancy.created", landlord["id"])
        ]
        # Subscriptions are per structure: another landlord neither sees nor changes it.
        async with await client_as(
            loopback_app, sessionmaker, Role.LANDLORD, other_landlord["id"]
        ) as other:
            assert (await other.get(f"/v1/webhooks/{created['id']}")).status_code == 404
            listed = (await other.get("/v1/webhooks")).json()["items"]
            assert listed == []
    async with await client_as(loopback_app, sessionmaker, Role.OBSERVER) as observer:
        refused = await observer.post("/v1/webhooks", json={"url": receiver.url("/x")})
        assert refused.status_code == 403


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"url": "ftp://example.org/hook"}, "url"),
        ({"url": "https://user:pw@example.org/hook"}, "url"),
        ({"url": "https://example.org/hook#frag"}, "url"),
        ({"url": "not a url"}, "url"),
        ({"url": "https://8.8.8.8/hook", "event_types": ["candidate.nothing"]}, "event_types"),
        (
            {"url": "https://8.8.8.8/hook", "event_types": ["candidate.created"] * 2},
            "event_types",
        ),
        ({"url": "https://8.8.8.8/hook", "secret": "whsec_mine"}, "secret"),
    ],
)
async def test_bad_subscriptions_are_refused(
    client: httpx.AsyncClient, body: dict[str, Any], field: str
) -> None:
    response = await client.post("/v1/webhooks", json=body)
    assert response.status_code == 422, response.text
    assert any(field in err["loc"] for err in response.json()["errors"])


@pytest.mark.parametrize("port", ["0", "00", "99999", "65536"])
async def test_a_port_that_cannot_be_reached_is_refused(
    client: httpx.AsyncClient, port: str
) -> None:
    """Port 0 answers as a port out of range does: 422 on the url, without the url."""
    url = f"https://93.184.216.34:{port}/h"
    created = await client.post("/v1/webhooks", json={"url": url})
    assert is_problem(created, 422), created.text
    assert [(e["loc"], e["message"]) for e in created.json()["errors"]] == [
        (["body", "url"], "Value error, not a URL")
    ]
    assert url not in created.text
    hook = await client.post("/v1/webhooks", json={"url": "https://93.184.216.34:8443/h"})
    assert hook.status_code == 201, hook.text
    moved = await client.patch(f"/v1/webhooks/{hook.json()['id']}", json={"url": url})
    assert is_problem(moved, 422), moved.text
    assert [e["loc"] for e in moved.json()["errors"]] == [["body", "url"]]
    assert url not in moved.text
    kept = await client.get(f"/v1/webhooks/{hook.json()['id']}")
    assert kept.json()["url"] == "https://93.184.216.34:8443/h"


# --- SSRF -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "https://127.0.0.1/hook",
        "https://localhost/hook",  # a name that resolves to the loopback
        "https://LOCALHOST./hook",
        "https://[::1]/hook",
        "https://[::ffff:127.0.0.1]/hook",
        "https://10.1.2.3/hook",
        "https://192.168.0.10/hook",
        "https://172.16.5.4/hook",
        "https://169.254.169.254/latest/meta-data",  # link-local (cloud metadata)
        "https://[fe80::1]/hook",
        "https://100.64.0.1/hook",
        "https://0.0.0.0/hook",
        "https://nowhere.invalid/hook",  # does not resolve
        "http://8.8.8.8/hook",  # public, but not https
    ],
)
async def test_private_targets_are_refused_by_default(client: httpx.AsyncClient, url: str) -> None:
    response = await client.post("/v1/webhooks", json={"url": url})
    assert response.status_code == 422, response.text
    [error] = response.json()["errors"]
    assert error["loc"] == ["body", "url"]
    assert url not in response.text  # details never repeat the submitted value


async def test_a_public_https_target_is_accepted(client: httpx.AsyncClient) -> None:
    response = await client.post("/v1/webhooks", json={"url": "https://8.8.8.8/hook"})
    assert response.status_code == 201, response.text
    moved = await client.patch(
        f"/v1/webhooks/{response.json()['id']}", json={"url": "https://localhost/hook"}
    )
    assert moved.status_code == 422


async def test_the_target_is_checked_again_at_delivery(
    admin: httpx.AsyncClient, receiver: Receiver, backend: Backend
) -> None:
    """A name that turned private after the subscription (DNS rebinding) is refused when
    the worker is about to send: nothing reaches the address."""
    created = await subscribe(admin, receiver, "/rebound")
    await create(admin, "/v1/candidates", candidate_payload((await create_structure(admin))["id"]))
    strict = worker_settings(
        backend, webhook_allow_private_targets=False, webhook_retry_schedule_s=[0.05]
    )
    async with running(strict):
        await wait_until(lambda: settled(admin, created["id"], 1), "the refusals")
    [delivery] = await deliveries(admin, created["id"])
    assert delivery["status"] == "failed"
    assert all("refused" in a["error"] for a in delivery["attempts"])
    assert receiver.of("/rebound") == []


# --- Workers that die, workers side by side --------------------------------------------


def worker_env(backend: Backend, **extra: str) -> dict[str, str]:
    env = {
        **os.environ,
        "DATABASE_URL": backend.url,
        "ENVIRONMENT": "test",
        "JWT_SIGNING_KEY": TEST_SIGNING_KEY,
        "WEBHOOK_ALLOW_PRIVATE_TARGETS": "true",
        "WEBHOOK_ALLOW_HTTP": "true",
        "WEBHOOK_TIMEOUT_S": "10",
        "WEBHOOK_LEASE_S": "2",
        "WEBHOOK_RETRY_SCHEDULE_S": "[0.1, 0.1, 0.1, 0.1, 0.1]",
        "WORKER_POLL_INTERVAL_S": "0.05",
        "JOB_SCHEDULES": json.dumps(JOBS_OFF),
    }
    env.update(extra)
    return env


def start_worker(env: dict[str, str], name: str, log: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "app", "worker", "--name", name],
        cwd=PROJECT_ROOT,
        env=env,
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
    )


async def stop_worker(process: subprocess.Popen[bytes]) -> int:
    process.send_signal(signal.SIGTERM)
    for _ in range(WAIT_S * 10):
        if process.poll() is not None:
            return process.returncode
        await asyncio.sleep(0.1)
    process.kill()
    raise AssertionError("the worker did not stop on SIGTERM")


TRAINING = {
    "type": "training",
    "occurred_on": "2026-07-01",
    "hours": 160,
    "training_mode": "external",
}
ASSESSMENT = {
    "type": "skills_assessment",
    "occurred_on": "2026-08-01",
    "outcome": "positive",
    "competency_levels": {"cleaning_hygiene": 2},
}
MISSION = {"type": "work_mission", "occurred_on": "2026-08-10", "outcome": "positive"}


async def scripted_path(admin: httpx.AsyncClient) -> None:
    """One person's whole path to a hire, through the API: many kinds of event."""
    structure = await create_structure(admin, "insertion")
    landlord = await create_structure(admin, "landlord")
    person = (await create(admin, "/v1/candidates", candidate_payload(structure["id"])))["id"]
    base = f"/v1/candidates/{person}"
    steps: list[tuple[str, dict[str, Any]]] = [
        ("/activities", {"type": "work_trial", "occurred_on": "2026-06-01", "outcome": "positive"}),
        (
            "/activities",
            {"type": "project_evaluation", "occurred_on": "2026-06-15", "outcome": "positive"},
        ),
        ("/transitions", {"to": "support"}),
        (
            "/activities",
            {
                "type": "training",
                "occurred_on": "2026-07-01",
                "hours": 160,
                "training_mode": "external",
            },
        ),
        (
            "/activities",
            {
                "type": "skills_assessment",
                "occurred_on": "2026-08-01",
                "outcome": "positive",
                "competency_levels": {"cleaning_hygiene": 2},
            },
        ),
        (
            "/activities",
            {
                "type": "work_mission",
                "occurred_on": "2026-08-10",
                "outcome": "positive",
                "landlord_id": landlord["id"],
            },
        ),
        ("/transitions", {"to": "securing"}),
    ]
    for path, body in steps:
        response = await admin.post(base + path, json=body)
        assert response.status_code in (200, 201), response.text
    vacancy = await create(admin, "/v1/vacancies", job_payload(landlord["id"]))
    placement = await create(
        admin, "/v1/placements", {"candidate_id": person, "vacancy_id": vacancy["id"]}
    )
    for move in ({"to": "accepted"}, {"to": "started"}):
        moved = await admin.post(f"/v1/placements/{placement['id']}/transitions", json=move)
        assert moved.status_code == 200, moved.text


async def test_every_event_arrives_once_after_deduplication_across_a_killed_worker(
    admin: httpx.AsyncClient, receiver: Receiver, backend: Backend, tmp_path: Path
) -> None:
    """The first request hangs; its worker is killed (SIGKILL) mid-delivery. Another
    worker takes the delivery over once the lease expires: the receiver gets every event
    of the path, each verified, exactly once after deduplication by webhook-id."""
    start = await newest_position(admin)
    created = await subscribe(
        admin, receiver, "/path", lambda n: (200, 30.0) if n == 0 else (200, 0.0)
    )
    await scripted_path(admin)
    expected = await feed_after(admin, start)
    assert len(expected) >= 12

    env = worker_env(backend)
    first = start_worker(env, "doomed", tmp_path / "doomed.log")
    try:
        await wait_until(lambda: _true(len(receiver.of("/path")) >= 1), "the first request")
        await wait_until(
            lambda: settled_except(admin, created["id"], len(expected), 1), "the others"
        )
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait()
    second = start_worker(env, "survivor", tmp_path / "survivor.log")
    try:
        await wait_until(lambda: settled(admin, created["id"], len(expected)), "the takeover")
    finally:
        assert await stop_worker(second) == 0, (tmp_path / "survivor.log").read_text()

    receipts = receiver.of("/path")
    assert all(r.verified for r in receipts)
    unique = {r.webhook_id for r in receipts}
    assert unique == {e["id"] for e in expected}
    by_id = {e["id"]: e for e in expected}
    assert all(json.loads(r.body) == by_id[r.webhook_id] for r in receipts)
    items = await deliveries(admin, created["id"])
    assert {d["status"] for d in items} == {"delivered"}
    taken_over = [d for d in items if len(d["attempts"]) > 1]
    assert [[a["outcome"] for a in d["attempts"]] for d in taken_over] == [
        ["abandoned", "succeeded"]
    ]
    retries = sum(len(d["attempts"]) - 1 for d in items)
    print(
        f"\nwebhook delivery figures ({backend.name}): events {len(expected)}, "
        f"requests received {len(receipts)}, distinct after dedup by webhook-id {len(unique)}, "
        f"duplicates removed {len(receipts) - len(unique)}, retries {retries}"
    )


async def _true(value: bool) -> bool:
    return value


async def settled_except(
    http: httpx.AsyncClient, webhook_id: str, count: int, in_flight: int
) -> bool:
    items = await deliveries(http, webhook_id)
    return len(items) >= count and sum(d["status"] == "pending" for d in items) == in_flight


async def test_two_workers_never_deliver_the_same_attempt(
    admin: httpx.AsyncClient,
    receiver: Receiver,
    backend: Backend,
    sessionmaker: async_sessionmaker[AsyncSession],
    tmp_path: Path,
) -> None:
    if not backend.is_postgres:
        pytest.skip("concurrent workers are proven on PostgreSQL")
    created = await subscribe(admin, receiver, "/pair")
    structure = await create_structure(admin, "insertion")
    # A lease longer than any slow round on a loaded machine: a second attempt here can
    # only come from two workers claiming the same delivery, not from a lease expiring.
    env = worker_env(backend, WEBHOOK_CONCURRENCY="8", WEBHOOK_LEASE_S="120")
    workers = [start_worker(env, f"w{n}", tmp_path / f"w{n}.log") for n in (1, 2)]
    try:
        for n in range(60):
            await create(
                admin, "/v1/candidates", candidate_payload(structure["id"], first_name=f"P{n}")
            )
        await wait_until(lambda: settled(admin, created["id"], 60), "the deliveries")
    finally:
        codes = [await stop_worker(w) for w in workers]
    assert codes == [0, 0]
    receipts = receiver.of("/pair")
    assert len(receipts) == 60 == len({r.webhook_id for r in receipts})
    async with sessionmaker() as session:
        attempts = (await session.execute(select(WebhookAttempt))).scalars().all()
        delivered = await session.scalar(
            select(func.count())
            .select_from(WebhookDelivery)
            .where(WebhookDelivery.status == DeliveryStatus.DELIVERED)
        )
    succeeded = [a for a in attempts if a.outcome == AttemptOutcome.SUCCEEDED]
    assert delivered == len(succeeded) == len({a.delivery_id for a in succeeded}) == 60
    # An attempt the loaded loopback refused is a retry, recorded with its error, and
    # starts after the one before it ended. A second claim of a leased delivery would
    # overlap the first, or be left abandoned or in progress.
    others = [(a.outcome, a.error) for a in attempts if a.outcome != AttemptOutcome.SUCCEEDED]
    assert all(o == AttemptOutcome.FAILED and e for o, e in others), others
    by_delivery: dict[uuid.UUID, list[WebhookAttempt]] = {}
    for a in sorted(attempts, key=lambda a: a.number):
        by_delivery.setdefault(a.delivery_id, []).append(a)
    for tries in by_delivery.values():
        for before, after in itertools.pairwise(tries):
            assert before.finished_at is not None
            assert after.started_at >= before.finished_at, (before.worker, after.worker)
    assert {a.worker for a in attempts} <= {"w1", "w2"}


@pytest.mark.parametrize("change", ["revoked", "narrowed"])
async def test_an_owner_that_may_no_longer_read_stops_its_subscriptions(
    admin: httpx.AsyncClient,
    loopback_app: FastAPI,
    sessionmaker: async_sessionmaker[AsyncSession],
    receiver: Receiver,
    backend: Backend,
    change: str,
) -> None:
    landlord = await create_structure(admin, "landlord")
    credentials = await create_api_client(sessionmaker, Role.LANDLORD, landlord["id"])
    async with http_client(loopback_app) as anonymous:
        token = await get_token(anonymous, credentials)
    async with http_client(loopback_app, token) as own:
        created = await subscribe(own, receiver, "/revoked")
    if change == "revoked":
        changed = await admin.post(f"/v1/clients/{credentials.client_id}/revoke")
        reason = "Disabled: its API client was revoked."
    else:  # the feed's scope taken away: the deliveries stop as the feed does
        client = (await admin.get(f"/v1/clients/{credentials.client_id}")).json()
        scopes = [s for s in client["scopes"] if s != "events:read"]
        changed = await admin.patch(f"/v1/clients/{credentials.client_id}", json={"scopes": scopes})
        reason = "Disabled: its API client no longer has the events:read scope."
    assert changed.status_code == 200, changed.text
    await create(admin, "/v1/vacancies", job_payload(landlord["id"]))
    async with running(worker_settings(backend)):

        async def disabled() -> bool:
            got = (await admin.get(f"/v1/webhooks/{created['id']}")).json()
            return bool(got["status"] == "disabled")

        await wait_until(disabled, "the subscription disabled")
    subscription = (await admin.get(f"/v1/webhooks/{created['id']}")).json()
    assert subscription["disabled_reason"] == reason
    assert receiver.of("/revoked") == []


def _self_signed(tmp_path: Path, name: str) -> tuple[Path, Path]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(hours=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = tmp_path / f"{name}.pem", tmp_path / f"{name}.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


@pytest.mark.parametrize(("certified", "delivered"), [("localhost", True), ("other.test", False)])
async def test_https_delivery_connects_to_the_checked_address_and_verifies_the_name(
    tmp_path: Path, backend: Backend, certified: str, delivered: bool
) -> None:
    """The attempt connects to the address resolved a moment before (127.0.0.1 here),
    while TLS still checks the certificate against the URL's host name."""
    cert, key = _self_signed(tmp_path, certified)
    with Receiver() as receiver:
        server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        server_context.load_cert_chain(cert, key)
        receiver.server.socket = server_context.wrap_socket(
            receiver.server.socket, server_side=True
        )
        secret = new_secret()
        receiver.expect("/tls", secret)
        port = receiver.server.server_address[1]
        job = delivery.Claimed(
            delivery_id=uuid7(),
            subscription_id=uuid7(),
            attempt_id=uuid7(),
            attempt=1,
            manual=False,
            event_id=uuid7(),
            url=f"https://localhost:{port}/tls",
            secrets=(secret,),
            body='{"type": "candidate.deleted"}',
            owner=SYSTEM_ACTOR,
            people=(),
        )
        settings = make_settings(backend.url, webhook_allow_private_targets=True)
        trusted = ssl.create_default_context(cafile=str(cert))
        async with httpx.AsyncClient(verify=trusted) as http:
            outcome = await delivery.send(http, settings, job)
        if delivered:
            assert (outcome.status_code, outcome.error) == (200, None)
            [receipt] = receiver.of("/tls")
            assert receipt.verified
        else:
            assert outcome.status_code is None
            assert outcome.error is not None
            assert "connection failed" in outcome.error
            assert receiver.of("/tls") == []
