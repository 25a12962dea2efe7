"""A webhook receiver for the tests: a real HTTP server on the loopback that checks
every signature with the `standardwebhooks` package (an independent implementation of
the specification), never with the sender's code."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from standardwebhooks.webhooks import Webhook, WebhookVerificationError

# How a path answers its n-th request (0-based): (status, seconds to wait first).
Behaviour = Callable[[int], tuple[int, float]]


class _Server(ThreadingHTTPServer):
    # The standard library listens with a backlog of 5; two workers sending 8 at a time
    # overflow it on a loaded machine, and a dropped connection is a retried attempt.
    request_queue_size = 128


def always(status: int) -> Behaviour:
    return lambda _n: (status, 0.0)


@dataclass(frozen=True)
class Receipt:
    path: str
    webhook_id: str
    body: bytes
    verified: bool
    signatures: int


class Receiver:
    def __init__(self) -> None:
        self.secrets: dict[str, list[str]] = {}
        self.behaviours: dict[str, Behaviour] = {}
        self.receipts: list[Receipt] = []
        self.lock = threading.Lock()
        self.counts: dict[str, int] = {}
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("content-length", "0"))
                body = self.rfile.read(length)
                headers = dict(self.headers.items())
                status, delay = receiver._answer(self.path, headers, body)
                if delay:
                    time.sleep(delay)
                try:
                    self.send_response(status)
                    self.send_header("content-length", "0")
                    self.end_headers()
                except OSError:
                    pass  # the sender gave up (timeout) or died

            def log_message(self, *_args: Any) -> None:
                pass

        self.server = _Server(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> Receiver:
        self.thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}{path}"

    def expect(self, path: str, secret: str, behaviour: Behaviour | None = None) -> None:
        with self.lock:
            self.secrets.setdefault(path, []).append(secret)
            self.behaviours[path] = behaviour or always(200)

    def _answer(self, path: str, headers: dict[str, str], body: bytes) -> tuple[int, float]:
        with self.lock:
            secrets = list(self.secrets.get(path, []))
            n = self.counts.get(path, 0)
            self.counts[path] = n + 1
            behaviour = self.behaviours.get(path, always(404))
        verified = False
        for secret in secrets:
            try:
                Webhook(secret).verify(body, headers)
            except WebhookVerificationError:
                continue
            verified = True
        lowered = {k.lower(): v for k, v in headers.items()}
        receipt = Receipt(
            path=path,
            webhook_id=lowered.get("webhook-id", ""),
            body=body,
            verified=verified,
            signatures=len(lowered.get("webhook-signature", "").split()),
        )
        with self.lock:
            self.receipts.append(receipt)
        if not verified:
            return 401, 0.0
        return behaviour(n)

    def of(self, path: str) -> list[Receipt]:
        with self.lock:
            return [r for r in self.receipts if r.path == path]
