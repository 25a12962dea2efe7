"""JSON log lines through the standard library, each carrying its request's id.

One handler on the root logger writes one JSON object per line to stderr, for the app,
the libraries and uvicorn alike, from a thread of its own (`QueuedStderrHandler`).
uvicorn's own access log is replaced by ours (one line per request, written by
app.observability). A context variable holds the id of the request being served, so
every line logged while serving it carries that id, whichever module logs it. An
exception's traceback stays inside its record (`exc_info`).

Never log personal data: ids, roles, statuses and durations only; no request bodies,
no query strings, no names, no addresses.
"""

from __future__ import annotations

import json
import logging
import os
import queue
import sys
import threading
from contextvars import ContextVar
from datetime import UTC, date, datetime
from typing import Any

from app.metrics import LOG_LINES_DROPPED

WRITE_INTERVAL_S = 0.02

REQUEST_ID: ContextVar[str | None] = ContextVar("request_id", default=None)

# uvicorn configures these itself: they go through our handler instead.
_UVICORN = ("uvicorn", "uvicorn.error", "uvicorn.asgi")
_LIBRARIES_THAT_LOG_DATA = ("httpx", "httpcore", "aiosqlite")


def current_request_id() -> str | None:
    return REQUEST_ID.get()


class RequestIdFilter(logging.Filter):
    """Stamps every record with the id of the request being served (or null)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "request_id"):
            record.request_id = REQUEST_ID.get()
        return True


class QueuedStderrHandler(logging.Handler):
    """Formats each record where it is logged and hands the line to a thread that writes
    it to whatever sys.stderr is at the time (test capture included).

    The event loop never waits on stderr: writing a line there was 6% of a read's CPU,
    and a log shipper that lags (a full pipe) would stall every request. Lines logged
    close together leave in one write. At most `capacity` lines wait; beyond that a line
    is dropped and counted (`tremplin_log_lines_dropped_total`), and the writer says how
    many it lost once it catches up. `flush()` (called at exit by `logging.shutdown`)
    returns once every line logged before it is written, or after `flush_timeout_s`.
    """

    def __init__(
        self,
        capacity: int = 10_000,
        flush_timeout_s: float = 5.0,
        thread_name: str = "tremplin-log-writer",
    ) -> None:
        super().__init__()
        self.thread_name = thread_name
        self.setFormatter(JsonFormatter())
        self.capacity = capacity
        self.flush_timeout_s = flush_timeout_s
        self._lines: queue.SimpleQueue[str | threading.Event | None] = queue.SimpleQueue()
        self._dropped = 0
        # Not the handler's own lock: logging.shutdown holds that one while it flushes,
        # that is, while it waits for the writer.
        self._dropped_lock = threading.Lock()
        self._writer_pid: int | None = None
        self._start_lock = threading.Lock()
        self._wake = threading.Event()  # a flush need not wait for the next round
        self._direct = False  # see write_through()
        self._direct_lock = threading.Lock()

    def write_through(self, direct: bool = True) -> None:
        """From now on (until called with False), write each line where it is logged.

        The app calls it once its lifespan has ended: no request waits on stderr any
        more, and uvicorn then re-raises the SIGTERM it caught, with the default
        action, which ends the process at once, without logging's exit flush: the lines
        still queued (the last requests', uvicorn's "Application shutdown complete") were
        lost."""
        if direct:
            self.flush()
        self._direct = direct

    def emit(self, record: logging.LogRecord) -> None:
        try:
            line = self.format(record)
        except Exception:
            self.handleError(record)
            return
        if self._direct:
            with self._direct_lock:
                try:
                    sys.stderr.write(line + "\n")
                    sys.stderr.flush()
                except (OSError, ValueError):
                    pass
            return
        if self._writer_pid != os.getpid():
            self._start_writer()
        if self._lines.qsize() >= self.capacity:
            with self._dropped_lock:
                self._dropped += 1
            LOG_LINES_DROPPED.inc()
            return
        self._lines.put(line)

    def flush(self) -> None:
        if self._writer_pid != os.getpid():
            return  # nothing was logged by this process
        written = threading.Event()
        self._lines.put(written)
        self._wake.set()
        written.wait(self.flush_timeout_s)

    def close(self) -> None:
        if self._writer_pid == os.getpid():
            self.flush()
            self._lines.put(None)  # the writer stops once the lines before are written
            self._writer_pid = None
        super().close()

    def _start_writer(self) -> None:
        # Started by the first line, and again in a forked child: a thread does not
        # survive a fork, and a child must not write its parent's waiting lines.
        with self._start_lock:
            if self._writer_pid == os.getpid():
                return
            self._lines = queue.SimpleQueue()
            self._dropped = 0
            threading.Thread(target=self._write, name=self.thread_name, daemon=True).start()
            self._writer_pid = os.getpid()

    def _write(self) -> None:
        lines = self._lines
        while True:
            batch = [lines.get()]
            while len(batch) < 1000:
                try:
                    batch.append(lines.get_nowait())
                except queue.Empty:
                    break
            text = [item for item in batch if isinstance(item, str)]
            if self._dropped:
                with self._dropped_lock:
                    dropped, self._dropped = self._dropped, 0
                text.append(_dropped_line(dropped))
            if text:
                try:
                    sys.stderr.write("\n".join(text) + "\n")
                    sys.stderr.flush()
                except (OSError, ValueError):
                    pass  # stderr closed or gone: nowhere left to say so
            for item in batch:
                if isinstance(item, threading.Event):
                    item.set()
            if None in batch:
                return
            # Lines gather meanwhile: a wake-up per line would cost the event loop more
            # (a hand-over of the GIL each time) than the write it saves.
            self._wake.wait(WRITE_INTERVAL_S)
            self._wake.clear()


def _dropped_line(count: int) -> str:
    return _ENCODER.encode(
        {
            "level": "WARNING",
            "logger": "tremplin.logs",
            "message": "log lines dropped: stderr was not keeping up",
            "dropped": count,
            "request_id": None,
            "time": datetime.now(UTC).isoformat(),
        }
    )


# Attributes every record has: anything else on a record was passed in `extra`; uvicorn
# passes its message again with terminal colours (`color_message`), left out too.
_STANDARD = frozenset(vars(logging.makeLogRecord({}))) | {
    "message",
    "asctime",
    "taskName",
    "color_message",
}


class JsonFormatter(logging.Formatter):
    """One JSON object per record: level, logger, message, the `extra` fields, the
    traceback as `exc_info`, and `time` (ISO 8601, UTC).

    Written here rather than taken from a library: on the hot path (one access line per
    request) a general-purpose formatter cost twice as much CPU per line."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in record.__dict__.items():
            if key not in _STANDARD:
                line[key] = value
        if record.exc_info:
            line["exc_info"] = self.formatException(record.exc_info)
        elif record.exc_text:
            line["exc_info"] = record.exc_text
        if record.stack_info:
            line["stack_info"] = self.formatStack(record.stack_info)
        line["time"] = datetime.fromtimestamp(record.created, UTC).isoformat()
        try:
            return _ENCODER.encode(line)
        except (TypeError, ValueError):
            # Keys JSON cannot hold, or a value that refers to itself: the line still goes
            # out, each field as text.
            return json.dumps({k: _plain(v) for k, v in line.items()}, ensure_ascii=False)


def _plain(value: object) -> str:
    return value.isoformat() if isinstance(value, datetime | date) else str(value)


# Built once: json.dumps with options builds an encoder per call.
_ENCODER = json.JSONEncoder(ensure_ascii=False, default=_plain)


def json_handler() -> logging.Handler:
    handler = QueuedStderrHandler()
    handler.addFilter(RequestIdFilter())
    handler.set_name("tremplin-json")
    return handler


def write_through(direct: bool = True) -> None:
    """Switch this process's JSON handler to writing each line at once (or back to its
    writer thread): see QueuedStderrHandler.write_through."""
    for handler in logging.getLogger().handlers:
        if isinstance(handler, QueuedStderrHandler):
            handler.write_through(direct)


def configure_logging(level: str = "INFO") -> None:
    """Idempotent: keeps the handler an earlier call installed, and any other (a test's
    capture handler, for one)."""
    # Where a line was logged from, and the thread and process that logged it,
    # are not written (the request id says more): not collecting them saves a quarter
    # of a record's cost (the logging HOWTO's optimisation table).
    logging._srcfile = None
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False
    root = logging.getLogger()
    # One handler, and one writer thread, per process, however many apps it creates.
    if not any(handler.get_name() == "tremplin-json" for handler in root.handlers):
        root.addHandler(json_handler())
    root.setLevel(level.upper())
    logging.getLogger("tremplin").setLevel(level.upper())
    for name in _UVICORN:
        uvicorn_logger = logging.getLogger(name)
        uvicorn_logger.handlers.clear()
        uvicorn_logger.propagate = True
    # Alembic lists the plugins it loads each time the app reads its revisions.
    logging.getLogger("alembic.runtime.plugins").setLevel(logging.WARNING)
    # Libraries that log what they carry: httpx a line per webhook delivery with the
    # target's full URL (a query-string token included), httpcore the requests' headers,
    # aiosqlite (at DEBUG) every statement with its parameters (names, emails), from its
    # own thread (no request id). Their warnings still come through.
    for name in _LIBRARIES_THAT_LOG_DATA:
        logging.getLogger(name).setLevel(logging.WARNING)
    access = logging.getLogger("uvicorn.access")
    access.handlers.clear()
    access.propagate = False
    access.disabled = True
