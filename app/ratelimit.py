"""Rate limits: per caller, per address, and on the token endpoint's failures.

Moving windows of one minute (the `limits` library). With REDIS_URL the windows live in
Redis and every process and replica shares them; without it each process keeps its own
(in memory), so N workers allow N times the rate.

Callers are keyed by kind and id (`client:<uuid>`, `user:<sub>`): an API client and an
OpenID Connect user whose subject happens to equal the client's id never share a budget.

The token endpoint limits failures, not requests, so that nobody locks out a client
they do not hold the secret of (see README, "Token endpoint limits"):
  - per client id and address: an address that failed N times for a client is refused
    for that client (429) until its window slides; other addresses and other clients
    are not affected;
  - per client id, over every address: when this budget is spent, addresses that have
    failed for the client at all are refused, while an address with no failure may
    still try. A distributed guesser gets about one guess per address and window,
    and the holder of the secret, from an address with no failure, is never refused;
  - client ids that do not exist (or are malformed) count per address.
"""

from __future__ import annotations

import logging
import math
import time
from collections import deque
from collections.abc import Awaitable
from typing import Any, Protocol

from limits import RateLimitItem, RateLimitItemPerMinute
from limits.aio.storage import RedisStorage
from limits.aio.strategies import MovingWindowRateLimiter
from limits.util import WindowStats

from app.config import Settings
from app.domain.enums import Role
from app.errors import TooManyRequests

logger = logging.getLogger("tremplin.ratelimit")

# Redis calls are bounded: a slow or absent Redis costs a request at most this much.
_REDIS_TIMEOUT_S = 0.5


class Windows(Protocol):
    """Moving windows: `limits`' strategy over Redis, or `MemoryWindows` in the process."""

    async def hit(self, item: RateLimitItem, *identifiers: str) -> bool: ...
    async def test(self, item: RateLimitItem, *identifiers: str) -> bool: ...
    async def get_window_stats(self, item: RateLimitItem, *identifiers: str) -> WindowStats: ...


class MemoryWindows:
    """The same moving windows as `limits`' Redis strategy, kept in this process.

    (`limits`' own asyncio memory storage sends every expiry sweep to a thread: a cost
    on every request that this plain version does not pay.) Each key keeps at most
    `amount` instants, so memory stays bounded by callers times their limit.
    """

    _MAX_KEYS = 50_000

    def __init__(self) -> None:
        self._hits: dict[tuple[str, ...], deque[float]] = {}

    def _window(self, item: RateLimitItem, identifiers: tuple[str, ...]) -> deque[float]:
        key = (item.key_for(), *identifiers)
        hits = self._hits.get(key)
        if hits is None:
            if len(self._hits) >= self._MAX_KEYS:
                self._hits.clear()  # crude bound; only resets callers' allowances
            hits = self._hits[key] = deque(maxlen=item.amount)
        cutoff = time.time() - item.get_expiry()
        while hits and hits[0] <= cutoff:
            hits.popleft()
        return hits

    async def hit(self, item: RateLimitItem, *identifiers: str) -> bool:
        hits = self._window(item, identifiers)
        if len(hits) >= item.amount:
            return False
        hits.append(time.time())
        return True

    async def test(self, item: RateLimitItem, *identifiers: str) -> bool:
        return len(self._window(item, identifiers)) < item.amount

    async def get_window_stats(self, item: RateLimitItem, *identifiers: str) -> WindowStats:
        hits = self._window(item, identifiers)
        oldest = hits[0] if hits else time.time()
        return WindowStats(oldest + item.get_expiry(), item.amount - len(hits))


class RateLimiter:
    def __init__(self, settings: Settings) -> None:
        self.shared = settings.redis_url is not None
        self._redis: RedisStorage | None = None
        self._windows: Windows
        if settings.redis_url is not None:
            self._redis = RedisStorage(
                _async_uri(settings.redis_url),
                implementation="redispy",
                key_prefix=settings.rate_limit_key_prefix,
                socket_timeout=_REDIS_TIMEOUT_S,
                socket_connect_timeout=_REDIS_TIMEOUT_S,
            )
            self._windows = MovingWindowRateLimiter(self._redis)
        else:
            self._windows = MemoryWindows()
        self._per_role: dict[Role, RateLimitItem] = {
            role: RateLimitItemPerMinute(getattr(settings, f"rate_limit_{role.value}"))
            for role in Role
        }
        self._anonymous = RateLimitItemPerMinute(settings.rate_limit_anonymous)
        self._pair_failures = RateLimitItemPerMinute(settings.rate_limit_token_failures)
        self._client_failures = RateLimitItemPerMinute(settings.rate_limit_token_client_failures)

    @classmethod
    def from_settings(cls, settings: Settings) -> RateLimiter:
        return cls(settings)

    async def close(self) -> None:
        bridge = getattr(self._redis, "bridge", None)
        client: Any = getattr(bridge, "storage", None)
        if client is not None:
            await client.aclose()

    async def hit(self, caller_key: str, role: Role) -> None:
        """One request of an authenticated caller (`Actor.id_key`)."""
        await self._take(self._per_role[role], "caller", caller_key)

    async def hit_anonymous(self, address: str) -> None:
        """A failed authentication, or a token request naming no known client."""
        await self._take(self._anonymous, "address", address)

    async def check_token_attempt(self, client_id: str, address: str) -> None:
        """429 before the secret is even checked, when this address may not try now."""
        pair = ("token-failures", client_id, address)
        if not await self._safe(self._windows.test(self._pair_failures, *pair), True):
            raise await self._refusal(self._pair_failures, pair)
        client = ("token-client-failures", client_id)
        if await self._safe(self._windows.test(self._client_failures, *client), True):
            return
        stats = await self._safe(self._windows.get_window_stats(self._pair_failures, *pair), None)
        if stats is not None and stats.remaining < self._pair_failures.amount:
            raise await self._refusal(self._client_failures, client)

    async def token_failed(self, client_id: str, address: str) -> None:
        """A wrong secret (or a revoked or expired client) for an existing client id."""
        await self._safe(
            self._windows.hit(self._pair_failures, "token-failures", client_id, address), True
        )
        await self._safe(
            self._windows.hit(self._client_failures, "token-client-failures", client_id), True
        )

    async def _take(self, item: RateLimitItem, *identifiers: str) -> None:
        if not await self._safe(self._windows.hit(item, *identifiers), True):
            raise await self._refusal(item, identifiers)

    async def _refusal(self, item: RateLimitItem, identifiers: tuple[str, ...]) -> TooManyRequests:
        stats = await self._safe(self._windows.get_window_stats(item, *identifiers), None)
        wait = stats.reset_time - time.time() if stats is not None else item.get_expiry()
        return TooManyRequests(max(1, math.ceil(wait)))

    async def _safe(self, call: Awaitable[Any], fallback: Any) -> Any:
        """Redis unreachable: the limits open (and say so) rather than refusing everyone."""
        try:
            return await call
        except Exception as exc:  # the Redis client's errors; memory never raises
            if not self.shared:
                raise
            logger.warning("rate limits not applied: Redis unavailable (%s)", type(exc).__name__)
            return fallback


def _async_uri(url: str) -> str:
    """limits names its asyncio storages `async+redis://...`."""
    return url if url.startswith("async+") else f"async+{url}"
