"""Per-caller rate limits: a token bucket per actor, refilled continuously.

Buckets live in the process: with several workers each enforces its own share.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping

from app.config import Settings
from app.domain.enums import Role
from app.errors import TooManyRequests

_MAX_BUCKETS = 50_000


class RateLimiter:
    def __init__(self, per_minute: Mapping[Role, int], anonymous_per_minute: int = 60) -> None:
        self._per_minute = dict(per_minute)
        self._anonymous = anonymous_per_minute
        self._buckets: dict[str, tuple[float, float]] = {}

    @classmethod
    def from_settings(cls, settings: Settings) -> RateLimiter:
        return cls(
            {role: getattr(settings, f"rate_limit_{role.value}") for role in Role},
            settings.rate_limit_anonymous,
        )

    def hit(self, actor_id: str, role: Role) -> None:
        self._take(actor_id, self._per_minute[role])

    def hit_anonymous(self, key: str) -> None:
        """Callers without a valid token: the token endpoint, failed authentications."""
        self._take("anonymous:" + key, self._anonymous)

    def _take(self, key: str, per_minute: int) -> None:
        actor_id = key
        capacity = float(per_minute)
        refill_per_s = capacity / 60.0
        now = time.monotonic()
        tokens, last = self._buckets.get(actor_id, (capacity, now))
        tokens = min(capacity, tokens + (now - last) * refill_per_s)
        if tokens < 1.0:
            self._buckets[actor_id] = (tokens, now)
            raise TooManyRequests(max(1, math.ceil((1.0 - tokens) / refill_per_s)))
        if len(self._buckets) >= _MAX_BUCKETS and actor_id not in self._buckets:
            self._buckets.clear()  # crude bound; only resets callers' allowances
        self._buckets[actor_id] = (tokens - 1.0, now)
