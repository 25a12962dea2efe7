"""JSON logs (one line per request, request ids everywhere, no personal data), /metrics,
and the offline interactive docs."""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app import migrations
from app.config import PROJECT_ROOT
from app.logs import JsonFormatter, QueuedStderrHandler
from app.main import create_app
from app.metrics import register_event_backlog
from tests.conftest import Backend, client_as, http_client, make_settings
from tests.factories import candidate_payload, create_candidate, create_structure
from tests.live_server import free_port, live_server


def read_logs(capsys: pytest.CaptureFixture[str]) -> Any:
    """What was captured, once the log writer (a thread) has written every line so far."""
    for handler in logging.getLogger().handlers:
        handler.flush()
    return capsys.readouterr()


def json_lines(text: str) -> list[dict[str, Any]]:
    """The JSON log records in captured stderr (other handlers may write plain lines)."""
    records = []
    for line in text.splitlines():
        if line.startswith("{"):
            records.append(json.loads(line))
    return records


def access_lines(text: str) -> list[dict[str, Any]]:
    if text.startswith("["):  # already parsed and dumped
        return [r for r in json.loads(text) if r.get("logger") == "tremplin.access"]
    return [r for r in json_lines(text) if r.get("logger") == "tremplin.access"]


def wait_until_serving(base: str, timeout_s: float) -> None:
    """Until a server started as a subprocess answers /healthz."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            httpx.get(f"{base}/healthz", timeout=2)
            return
        except httpx.HTTPError:
            assert time.monotonic() < deadline, "the server did not start"
            time.sleep(0.2)


# --- logs -------------------------------------------------------------------------------


async def test_a_request_logs_one_json_line_with_its_fields_and_no_personal_data(
    client: httpx.AsyncClient, capsys: pytest.CaptureFixture[str]
) -> None:
    insertion = await create_structure(client, "insertion")
    payload = candidate_payload(
        insertion["id"],
        first_name="Zéphyrine",
        last_name="Brocéliande",
        email="zephyrine.broceliande@example.org",
        phone="06 39 98 11 22",
    )
    read_logs(capsys)
    listed = await client.get(
        "/v1/candidates?departement=2B", headers={"X-Request-ID": "log-fields-1"}
    )
    assert listed.status_code == 200
    created = await client.post(
        "/v1/candidates", json=payload, headers={"X-Request-ID": "log-fields-2"}
    )
    assert created.status_code == 201, created.text
    read = await client.get(f"/v1/candidates/{created.json()['id']}")
    # What Tremplin logged (the test's HTTP client logs URLs of its own).
    records = [r for r in json_lines(read_logs(capsys).err) if r["logger"] != "httpx"]
    captured = json.dumps(records, ensure_ascii=False)

    lines = access_lines(captured)
    by_id = {line["request_id"]: line for line in lines}
    line = by_id["log-fields-2"]
    assert line["method"] == "POST"
    assert line["route"] == "/v1/candidates"
    assert line["status"] == 201
    assert isinstance(line["duration_ms"], float | int)
    assert line["caller_role"] == "admin"
    assert line["caller_kind"] == "client"
    assert re.fullmatch(r"[0-9a-f-]{36}", line["caller_id"])
    assert {"time", "level", "logger", "message"} <= set(line)
    get_line = by_id[read.headers["x-request-id"]]
    assert get_line["route"] == "/v1/candidates/{candidate_id}"  # the template, not the id
    assert created.json()["id"] not in json.dumps(get_line)
    assert by_id["log-fields-1"]["route"] == "/v1/candidates"
    for secret in ("Zéphyrine", "Brocéliande", "zephyrine", "39 98 11 22", "departement", "=2B"):
        assert secret not in captured, secret


async def test_a_line_logged_inside_a_service_carries_the_request_id(
    client: httpx.AsyncClient, capsys: pytest.CaptureFixture[str]
) -> None:
    created = await client.post(
        "/v1/clients", json={"name": "log probe", "role": "admin"}, headers={"X-Request-ID": "r-7"}
    )
    assert created.status_code == 201
    read_logs(capsys)
    revoked = await client.post(
        f"/v1/clients/{created.json()['id']}/revoke", headers={"X-Request-ID": "svc-line-1"}
    )
    assert revoked.status_code == 200
    records = json_lines(read_logs(capsys).err)
    service_lines = [r for r in records if r["logger"] == "tremplin.services.clients"]
    assert service_lines, records
    assert {r["request_id"] for r in service_lines} == {"svc-line-1"}
    assert [r["request_id"] for r in records if r["logger"] == "tremplin.access"] == ["svc-line-1"]


async def test_an_unexpected_error_is_one_json_record_with_its_traceback(
    backend: Backend, capsys: pytest.CaptureFixture[str]
) -> None:
    application = create_app(make_settings(backend.url))

    @application.get("/boom", include_in_schema=False)
    async def boom() -> None:
        raise RuntimeError("kaboom")

    async with (
        application.router.lifespan_context(application),
        http_client(application) as http,
    ):
        read_logs(capsys)
        response = await http.get("/boom", headers={"X-Request-ID": "boom-1"})
    assert response.status_code == 500
    assert response.headers["x-request-id"] == "boom-1"
    records = json_lines(read_logs(capsys).err)
    errors = [r for r in records if r["level"] == "ERROR" and r["logger"] == "tremplin"]
    assert len(errors) == 1
    assert errors[0]["request_id"] == "boom-1"
    assert "Traceback" in errors[0]["exc_info"]
    assert "kaboom" in errors[0]["exc_info"]
    access = [r for r in records if r["logger"] == "tremplin.access"]
    assert [(a["status"], a["route"]) for a in access] == [(500, "/boom")]


def test_a_record_json_cannot_hold_still_makes_one_line() -> None:
    """Extras JSON cannot encode as such (tuple keys, dates, a value holding itself) and a
    traceback already rendered to text: the line goes out, whole, as JSON."""
    looping: dict[str, object] = {}
    looping["self"] = looping
    formatter = JsonFormatter()
    odd = logging.makeLogRecord(
        {"name": "tremplin", "levelname": "WARNING", "msg": "odd %s", "args": ("x",),
         "pairs": {(1, 2): "a"}, "day": dt.date(2026, 12, 2), "looping": looping}
    )  # fmt: skip
    line = json.loads(formatter.format(odd))
    assert (line["level"], line["logger"], line["message"]) == ("WARNING", "tremplin", "odd x")
    assert line["day"] == "2026-12-02"
    assert "(1, 2)" in line["pairs"]
    rendered = logging.makeLogRecord({"msg": "failed", "exc_text": "Traceback: kaboom"})
    assert json.loads(formatter.format(rendered))["exc_info"] == "Traceback: kaboom"
    plain = logging.makeLogRecord({"msg": "at", "when": dt.datetime(2026, 12, 2, 10, 0)})
    assert json.loads(formatter.format(plain))["when"] == "2026-12-02T10:00:00"


def test_uvicorn_access_log_is_replaced_by_ours() -> None:
    create_app(make_settings("sqlite+aiosqlite:///:memory:"))
    assert logging.getLogger("uvicorn.access").disabled
    assert logging.getLogger("uvicorn.error").propagate
    root_handlers = [h.get_name() for h in logging.getLogger().handlers]
    assert root_handlers.count("tremplin-json") == 1


def test_uvicorn_lines_are_json_without_terminal_colours() -> None:
    record = logging.makeLogRecord(
        {"name": "uvicorn.error", "levelname": "INFO", "msg": "Started server process [%d]",
         "args": (7,), "color_message": "Started server process [\x1b[36m%d\x1b[0m]"}
    )  # fmt: skip
    line = json.loads(JsonFormatter().format(record))
    assert line["message"] == "Started server process [7]"
    assert "color_message" not in line


class StalledStderr:
    """A stderr whose writes wait until released: a log shipper that stopped reading."""

    def __init__(self) -> None:
        self.released = threading.Event()
        self.text: list[str] = []

    def write(self, text: str) -> int:
        self.released.wait()
        self.text.append(text)
        return len(text)

    def flush(self) -> None:
        pass


def test_a_stalled_stderr_drops_and_counts_lines_instead_of_blocking(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    stalled = StalledStderr()
    monkeypatch.setattr(sys, "stderr", stalled)
    handler = QueuedStderrHandler(capacity=100)
    logger = logging.getLogger("tremplin.test.stalled")
    logger.propagate = False
    logger.addHandler(handler)
    dropped_before = REGISTRY.get_sample_value("tremplin_log_lines_dropped_total") or 0.0
    try:
        # Each call returns although nothing can be written (were one to wait for stderr,
        # this loop would never end).
        for i in range(1000):
            logger.warning("line %d", i)
        stalled.released.set()
        handler.flush()
    finally:
        logger.removeHandler(handler)
    records = json_lines("".join(stalled.text))
    lines = [r for r in records if r["logger"] == "tremplin.test.stalled"]
    notices = [r for r in records if r["logger"] == "tremplin.logs"]
    dropped = sum(r["dropped"] for r in notices)
    assert notices
    assert all(r["level"] == "WARNING" for r in notices)
    assert 100 <= len(lines) < 1000  # what waited, and what the writer held when it stalled
    assert len(lines) + dropped == 1000
    # The lines kept come out whole and in the order they were logged.
    kept = [int(r["message"].removeprefix("line ")) for r in lines]
    assert kept == sorted(set(kept))
    dropped_after = REGISTRY.get_sample_value("tremplin_log_lines_dropped_total")
    assert dropped_after == dropped_before + dropped


def test_flush_writes_every_line_logged_before_it(capsys: pytest.CaptureFixture[str]) -> None:
    handler = QueuedStderrHandler(thread_name="tremplin-log-writer-test")
    logger = logging.getLogger("tremplin.test.flush")
    logger.setLevel(logging.INFO)
    logger.propagate = False
    logger.addHandler(handler)
    try:
        for i in range(500):
            logger.info("line %d", i, extra={"n": i})
        handler.flush()
        records = json_lines(capsys.readouterr().err)
    finally:
        logger.removeHandler(handler)
    assert [r["n"] for r in records] == list(range(500))
    (writer,) = [t for t in threading.enumerate() if t.name == "tremplin-log-writer-test"]
    handler.close()
    writer.join()  # closing the handler ends its thread (else this would wait for ever)


def test_lines_logged_just_before_exit_are_written() -> None:
    """The writer is a thread: at exit, logging's shutdown waits for it."""
    script = (
        "import logging; from app.logs import configure_logging; configure_logging(); "
        "[logging.getLogger('tremplin').info('line %d', i) for i in range(2000)]"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=60
    )
    assert [r["message"] for r in json_lines(done.stderr)] == [f"line {i}" for i in range(2000)]


def serve_then_stop(
    tmp_path: Path, sig: signal.Signals, workers: int = 1, requests: int = 0
) -> tuple[int, str]:
    """`python -m app serve` on SQLite, `requests` unauthenticated reads (each 401), then
    `sig`: its exit status and stderr."""
    database_url = f"sqlite+aiosqlite:///{tmp_path / 'stop.db'}"
    migrations.upgrade(database_url)
    port = free_port()
    env = {**os.environ, "DATABASE_URL": database_url, "ENVIRONMENT": "test", "LOG_LEVEL": "INFO"}
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    process = subprocess.Popen(
        [sys.executable, "-m", "app", "serve", "--port", str(port), "--workers", str(workers)],
        cwd=PROJECT_ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_until_serving(f"http://127.0.0.1:{port}", 90)
        for _ in range(requests):
            assert httpx.get(f"http://127.0.0.1:{port}/v1/structures").status_code == 401
        process.send_signal(sig)
        _, stderr = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    return process.returncode, stderr


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_a_stopped_server_writes_its_last_lines(tmp_path: Path, sig: signal.Signals) -> None:
    """uvicorn ends the process with the signal it caught once it has shut down, without
    logging's exit flush: the last requests' lines and the shutdown lines were lost."""
    _, stderr = serve_then_stop(tmp_path, sig, requests=3)
    records = json_lines(stderr)
    assert len(access_lines(stderr)) == 3, stderr
    messages = [r["message"] for r in records]
    assert "Application shutdown complete." in messages, messages
    assert any(m.startswith("Finished server process") for m in messages), messages


@pytest.mark.parametrize("workers", [1, 2])
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_a_stopped_server_exits_0_whatever_its_workers(
    tmp_path: Path, sig: signal.Signals, workers: int
) -> None:
    """A process manager sees one outcome for one event: with one worker, uvicorn ended
    the process by the SIGTERM it had caught once shut down (status -15, 143 in a shell),
    with several the parent exited 0."""
    returncode, stderr = serve_then_stop(tmp_path, sig, workers=workers)
    assert returncode == 0, stderr
    assert "Traceback" not in stderr
    messages = [r["message"] for r in json_lines(stderr)]
    # The shutdown still runs to its end, in every worker.
    assert messages.count("Application shutdown complete.") == workers, messages


def test_libraries_never_log_urls_or_statement_parameters(tmp_path: Path) -> None:
    """The worker logged each webhook delivery's full URL (httpx, at INFO: a token in its
    query string), and LOG_LEVEL=DEBUG every SQLite statement with its parameters
    (aiosqlite: names, emails), without a request id."""
    script = f"""
import asyncio, logging, threading
from http.server import BaseHTTPRequestHandler, HTTPServer
import aiosqlite, httpx
from app.logs import configure_logging

class Hook(BaseHTTPRequestHandler):
    def do_POST(self):
        self.rfile.read(int(self.headers["content-length"]))
        self.send_response(204)
        self.end_headers()
    def log_message(self, *args):
        pass

server = HTTPServer(("127.0.0.1", 0), Hook)
threading.Thread(target=server.serve_forever, daemon=True).start()
configure_logging("DEBUG")

async def main():
    async with httpx.AsyncClient() as http:
        url = f"http://127.0.0.1:{{server.server_port}}/hook?token=hook-s3cret"
        assert (await http.post(url, json={{}})).status_code == 204
    async with aiosqlite.connect({str(tmp_path / "libs.db")!r}) as db:
        await db.execute("CREATE TABLE people (name TEXT)")
        await db.execute("INSERT INTO people VALUES (?)", ("Zoltanique Persodatum",))
    logging.getLogger("tremplin").info("done")

asyncio.run(main())
"""
    done = subprocess.run(
        [sys.executable, "-c", script],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    assert "hook-s3cret" not in done.stderr
    assert "Persodatum" not in done.stderr
    loggers = {r["logger"] for r in json_lines(done.stderr)}
    assert "tremplin" in loggers
    assert not loggers & {"httpx", "httpcore.http11", "httpcore.connection", "aiosqlite"}


# --- metrics ----------------------------------------------------------------------------


def sample(text: str, name: str, **labels: str) -> float:
    for family in text_string_to_metric_families(text):
        for metric in family.samples:
            if metric.name == name and all(metric.labels.get(k) == v for k, v in labels.items()):
                return float(metric.value)
    return 0.0


async def test_metrics_count_requests_by_route_template_and_status(
    client: httpx.AsyncClient, app: FastAPI
) -> None:
    anonymous = http_client(app)  # /metrics needs no token
    route = "/v1/structures/{structure_id}"
    before = (await anonymous.get("/metrics")).text
    structure = await create_structure(client, "insertion")
    for _ in range(2):
        assert (await client.get(f"/v1/structures/{structure['id']}")).status_code == 200
    missing = "/v1/structures/01939a2e-0000-7000-8000-00000000dead"
    assert (await client.get(missing)).status_code == 404
    scraped = await anonymous.get("/metrics")
    assert scraped.status_code == 200
    assert scraped.headers["content-type"].startswith("text/plain")
    after = scraped.text

    def delta(status: str) -> float:
        labels = {"method": "GET", "route": route, "status": status}
        name = "tremplin_http_requests_total"
        return sample(after, name, **labels) - sample(before, name, **labels)

    assert delta("200") == 2
    assert delta("404") == 1
    count = "tremplin_http_request_duration_seconds_count"
    latency = sample(after, count, method="GET", route=route) - sample(
        before, count, method="GET", route=route
    )
    assert latency == 3
    assert structure["id"] not in after  # never a raw path
    for gauge in ("tremplin_db_pool_in_use", "tremplin_db_pool_waiting", "tremplin_db_pool_size"):
        assert f"\n{gauge} " in after, gauge


@pytest.mark.parametrize("streamed", [False, True], ids=["content-length", "chunked"])
async def test_a_body_refused_for_its_size_is_counted_under_its_route(
    client: httpx.AsyncClient, app: FastAPI, capsys: pytest.CaptureFixture[str], streamed: bool
) -> None:
    """A 413 decided on the announced Content-Length, before routing, still names the
    route it was sent to (it was counted under `unmatched`)."""
    anonymous = http_client(app)
    before = (await anonymous.get("/metrics")).text
    structure = await create_structure(client, "insertion")
    body = b"{" + b" " * 1_048_577 + b"}"  # over the default limit
    sent = [(f"/v1/structures/{structure['id']}", "/v1/structures/{structure_id}")]
    if not streamed:  # streamed to no route, the body is never read: a 404
        sent.append(("/v1/nowhere", "unmatched"))
    read_logs(capsys)
    for path, _ in sent:

        async def chunks() -> AsyncIterator[bytes]:
            yield body

        refused = await client.patch(
            path,
            content=chunks() if streamed else body,
            headers={"content-type": "application/json", "if-match": '"1"'},
        )
        assert refused.status_code == 413, refused.text
    after = (await anonymous.get("/metrics")).text
    routes = [line["route"] for line in access_lines(read_logs(capsys).err)]
    for _, route in sent:
        labels = {"method": "PATCH", "route": route, "status": "413"}
        name = "tremplin_http_requests_total"
        assert sample(after, name, **labels) - sample(before, name, **labels) == 1, route
        assert route in routes
    assert structure["id"] not in after


async def test_pool_gauges_show_connections_in_use_and_waiting(backend: Backend) -> None:
    application = create_app(make_settings(backend.url, db_pool_size=1, db_max_overflow=0))
    async with (
        application.router.lifespan_context(application),
        http_client(application) as http,
    ):
        engine = application.state.engine
        if not hasattr(engine.sync_engine.pool, "checkedout"):
            pytest.skip("this database's pool keeps no count")
        held = await engine.connect()
        await held.exec_driver_sql("SELECT 1")
        waiter = None
        try:
            import asyncio

            waiter = asyncio.create_task(engine.connect().__aenter__())
            await asyncio.sleep(0.2)
            text = (await http.get("/metrics")).text
        finally:
            await held.close()
            if waiter is not None:
                await (await waiter).close()
    # Two checkouts: one held, one more. On PostgreSQL the pool is sized 1 here, so the
    # second waits; the SQLite engine keeps SQLAlchemy's default pool, so both get one.
    pool = application.state.engine.sync_engine.pool
    capacity = pool.size() + pool._max_overflow
    assert sample(text, "tremplin_db_pool_in_use") == min(2, capacity)
    assert sample(text, "tremplin_db_pool_waiting") == 2 - min(2, capacity)


async def test_the_event_backlog_gauge_reads_what_is_registered(backend: Backend) -> None:
    application = create_app(make_settings(backend.url))

    async def backlog(session: AsyncSession) -> dict[str, int]:
        return {"unsequenced": 42, "undelivered": 7}

    register_event_backlog(application, backlog)
    async with (
        application.router.lifespan_context(application),
        http_client(application) as http,
    ):
        text = (await http.get("/metrics")).text
    assert sample(text, "tremplin_event_backlog", stage="unsequenced") == 42
    assert sample(text, "tremplin_event_backlog", stage="undelivered") == 7


async def test_the_event_backlog_gauge_counts_events_not_yet_in_the_feed(
    client: httpx.AsyncClient, app: FastAPI
) -> None:
    """The app registers the outbox's own backlog: a write adds an unsequenced event,
    reading the feed sequences it."""
    structure = await create_structure(client, "insertion")
    await create_candidate(client, structure["id"])
    metrics = (await client.get("/metrics")).text
    assert sample(metrics, "tremplin_event_backlog", stage="unsequenced") >= 1
    assert (await client.get("/v1/events")).status_code == 200
    metrics = (await client.get("/metrics")).text
    assert sample(metrics, "tremplin_event_backlog", stage="unsequenced") == 0


@pytest.fixture
async def restricted_app(backend: Backend) -> AsyncIterator[FastAPI]:
    application = create_app(make_settings(backend.url, metrics_allow_from=["10.0.0.0/8"]))
    async with application.router.lifespan_context(application):
        yield application


async def test_metrics_can_be_restricted_to_networks(restricted_app: FastAPI) -> None:
    async with http_client(restricted_app) as http:  # httpx's ASGI client is 127.0.0.1
        response = await http.get("/metrics")
    assert response.status_code == 403
    assert response.headers["content-type"].startswith("application/problem+json")


async def test_metrics_can_be_turned_off(backend: Backend) -> None:
    application = create_app(make_settings(backend.url, metrics_enabled=False))
    async with http_client(application) as http:
        assert (await http.get("/metrics")).status_code == 404


# --- interactive docs, offline ----------------------------------------------------------


_REFERENCE = re.compile(r"""(?:src|href)=["']([^"']+)["']|url:\s*'([^']+)'|spec-url="([^"]+)\"""")


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
async def test_docs_reference_only_local_assets_that_answer(
    page: str, anonymous: httpx.AsyncClient
) -> None:
    response = await anonymous.get(page)
    assert response.status_code == 200
    html = response.text
    assert "http://" not in html
    assert "https://" not in html
    references = [next(g for g in m if g) for m in _REFERENCE.findall(html)]
    assert references, html
    for reference in references:
        assert reference.startswith("/"), reference
        asset = await anonymous.get(reference)
        assert asset.status_code == 200, reference
        assert asset.content, reference
    policy = response.headers["content-security-policy"]
    assert "default-src 'none'" in policy
    assert "script-src 'self'" in policy
    assert "cdn" not in policy


async def test_swagger_ui_inline_script_is_allowed_by_hash_only(
    anonymous: httpx.AsyncClient,
) -> None:
    import base64
    import hashlib

    response = await anonymous.get("/docs")
    scripts = re.findall(r"<script>(.*?)</script>", response.text, re.DOTALL)
    assert scripts
    policy = response.headers["content-security-policy"]
    for script in scripts:
        digest = base64.b64encode(hashlib.sha256(script.encode()).digest()).decode()
        assert f"'sha256-{digest}'" in policy
    assert "'unsafe-inline'" not in policy.split("script-src", 1)[1].split(";", 1)[0]


async def test_insertion_staff_log_lines_carry_their_role(
    client: httpx.AsyncClient,
    app: FastAPI,
    sessionmaker: async_sessionmaker[AsyncSession],
    capsys: pytest.CaptureFixture[str],
) -> None:
    insertion = await create_structure(client, "insertion")
    async with await client_as(app, sessionmaker, "insertion", insertion["id"]) as staff:
        read_logs(capsys)
        assert (await staff.get("/v1/candidates")).status_code == 200
    (line,) = access_lines(read_logs(capsys).err)
    assert line["caller_role"] == "insertion"
    assert line["route"] == "/v1/candidates"


# --- several processes -------------------------------------------------------------------


def test_multiprocess_mode_adds_up_what_workers_write(tmp_path: Path) -> None:
    """With PROMETHEUS_MULTIPROC_DIR, figures go through the folder (what several uvicorn
    workers share) and /metrics reads them back from there."""
    folder = tmp_path / "prometheus"
    folder.mkdir()
    (folder / "counter_stale.db").write_bytes(b"left by an earlier run")
    with live_server("sqlite", tmp_path, PROMETHEUS_MULTIPROC_DIR=str(folder)) as server:
        for _ in range(3):
            assert httpx.get(f"{server.base_url}/healthz", timeout=10).status_code == 200
        text = httpx.get(f"{server.base_url}/metrics", timeout=10).text
    assert sample(text, "tremplin_http_requests_total", route="/healthz", status="200") == 3
    assert "python_gc_objects_collected_total" not in text  # the per-process collectors are off
    assert not (folder / "counter_stale.db").exists()
    assert any(folder.glob("counter_*.db"))


def test_several_workers_without_a_folder_still_count_every_request(tmp_path: Path) -> None:
    """`serve --workers 2` without PROMETHEUS_MULTIPROC_DIR (the image's default): each
    worker answered /metrics with its own figures, 13 then 7 then 13 for 20 requests."""
    database_url = f"sqlite+aiosqlite:///{tmp_path / 'workers.db'}"
    migrations.upgrade(database_url)
    port = free_port()
    env = {**os.environ, "DATABASE_URL": database_url, "ENVIRONMENT": "test"}
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    process = subprocess.Popen(
        [sys.executable, "-m", "app", "serve", "--port", str(port), "--workers", "2"],
        cwd=PROJECT_ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until_serving(base, 90)
        for _ in range(20):  # a new connection each: both workers answer some
            assert httpx.get(f"{base}/v1/structures", timeout=10).status_code == 401
        counts = {
            sample(
                httpx.get(f"{base}/metrics", timeout=10).text,
                "tremplin_http_requests_total",
                route="/v1/structures",
                status="401",
            )
            for _ in range(6)
        }
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert counts == {20}


def test_multiprocess_folder_is_made_and_a_single_worker_keeps_its_gauges(
    tmp_path: Path,
) -> None:
    folder = tmp_path / "not" / "yet"
    with live_server("sqlite", tmp_path, PROMETHEUS_MULTIPROC_DIR=str(folder)) as server:
        assert httpx.get(f"{server.base_url}/healthz", timeout=10).status_code == 200
        text = httpx.get(f"{server.base_url}/metrics", timeout=10).text
    assert sample(text, "tremplin_db_pool_size") > 0
    assert "tremplin_http_requests_in_flight" in text


def test_a_dead_workers_live_gauges_stop_counting(tmp_path: Path) -> None:
    """A worker killed without its shutdown leaves its gauges' file: what a process no
    longer running wrote is not added to the live ones'."""
    folder = tmp_path / "prometheus"
    with live_server("sqlite", tmp_path, PROMETHEUS_MULTIPROC_DIR=str(folder)) as server:
        metrics = f"{server.base_url}/metrics"
        alone = sample(httpx.get(metrics, timeout=10).text, "tremplin_db_pool_size")
        (own,) = folder.glob("gauge_livesum_*.db")
        dead = folder / "gauge_livesum_99999999.db"  # beyond any pid this system gives
        dead.write_bytes(own.read_bytes())
        after = sample(httpx.get(metrics, timeout=10).text, "tremplin_db_pool_size")
    assert alone > 0
    assert after == alone
    assert not dead.exists()
