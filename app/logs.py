"""JSON log lines through the standard library, each carrying its request's id.

One handler on the root logger writes one JSON object per line to stderr, for the app,
the libraries and uvicorn alike; uvicorn's own access log is replaced by ours (one line
per request, written by app.observability). A context variable holds the id of the
request being served, so every line logged while serving it carries that id, whichever
module logs it. An exception's traceback stays inside its record (`exc_info`).

Never log personal data: ids, roles, statuses and durations only; no request bodies,
no query strings, no names, no addresses.
"""

from __future__ import annotations

import json
import logging
import sys
from contextvars import ContextVar
from datetime import UTC, date, datetime
from typing import Any, TextIO

REQUEST_ID: ContextVar[str | None] = ContextVar("request_id", default=None)

# uvicorn configures these itself: they go through our handler instead.
_UVICORN = ("uvicorn", "uvicorn.error", "uvicorn.asgi")


def current_request_id() -> str | None:
    return REQUEST_ID.get()


class RequestIdFilter(logging.Filter):
    """Stamps every record with the id of the request being served (or null)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "request_id"):
            record.request_id = REQUEST_ID.get()
        return True


class _StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever sys.stderr is at the time (test capture included)."""

    def __init__(self) -> None:
        super().__init__()

    @property
    def stream(self) -> TextIO:
        return sys.stderr

    @stream.setter
    def stream(self, _value: Any) -> None:
        pass


# Attributes every record has: anything else on a record was passed in `extra`.
_STANDARD = frozenset(vars(logging.makeLogRecord({}))) | {"message", "asctime", "taskName"}


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


def json_formatter() -> logging.Formatter:
    return JsonFormatter()


def json_handler() -> logging.Handler:
    handler = _StderrHandler()
    handler.setFormatter(json_formatter())
    handler.addFilter(RequestIdFilter())
    handler.set_name("tremplin-json")
    return handler


def configure_logging(level: str = "INFO") -> None:
    """Idempotent: replaces the handler an earlier call installed, keeps any other
    (a test's capture handler, for one)."""
    # Where a line was logged from, and the thread and process that logged it,
    # are not written (the request id says more): not collecting them saves a quarter
    # of a record's cost (the logging HOWTO's optimisation table).
    logging._srcfile = None
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False
    root = logging.getLogger()
    for handler in list(root.handlers):
        if handler.get_name() == "tremplin-json":
            root.removeHandler(handler)
    root.addHandler(json_handler())
    root.setLevel(level.upper())
    logging.getLogger("tremplin").setLevel(level.upper())
    for name in _UVICORN:
        uvicorn_logger = logging.getLogger(name)
        uvicorn_logger.handlers.clear()
        uvicorn_logger.propagate = True
    access = logging.getLogger("uvicorn.access")
    access.handlers.clear()
    access.propagate = False
    access.disabled = True
