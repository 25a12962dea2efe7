"""schemathesis hooks for tests/test_contract_fuzz.py (loaded by the fuzzer's process).

Each generated request is independent of the others, but an Idempotency-Key names one
request: reusing a key for another request is a client's mistake, which Tremplin
refuses with 422 (`idempotency-key-reused`), as the IETF draft asks. A correct client
sends a fresh key per request; so does the fuzzer here: a key that fits the documented
pattern gets a unique suffix and still fits it. Keys that do not fit are left as
generated, to be refused.
"""

from __future__ import annotations

import re
import uuid
from typing import Any

import schemathesis

from app.routers.idempotency import IDEMPOTENCY_HEADER, IDEMPOTENCY_KEY_PATTERN

_KEY = re.compile(IDEMPOTENCY_KEY_PATTERN)


@schemathesis.hook
def before_call(ctx: Any, case: Any, **kwargs: Any) -> None:
    headers = case.headers or {}
    key = headers.get(IDEMPOTENCY_HEADER)
    if isinstance(key, str) and _KEY.match(key):
        headers[IDEMPOTENCY_HEADER] = f"{key[:200]}.{uuid.uuid4().hex}"
