"""Webhooks as the Standard Webhooks specification (1.0.0) describes them: pure rules.

Secrets, signatures, the retry schedule and which answers mean what; no I/O here.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import ipaddress
import secrets
from collections.abc import Sequence
from enum import StrEnum

SECRET_PREFIX = "whsec_"  # noqa: S105 - the format prefix, not a secret
# The specification asks for 24 to 64 random bytes; 32 is HMAC-SHA256's block-friendly size.
SECRET_BYTES = 32

# The specification's example schedule: the delay before each retry after a failed
# attempt. Ten attempts over 75 hours and a half (about three days).
RETRY_SCHEDULE_S: tuple[float, ...] = (
    5,
    5 * 60,
    30 * 60,
    2 * 3600,
    5 * 3600,
    10 * 3600,
    14 * 3600,
    20 * 3600,
    24 * 3600,
)


class WebhookStatus(StrEnum):
    ACTIVE = "active"
    DISABLED = "disabled"


class DeliveryStatus(StrEnum):
    PENDING = "pending"  # waiting for its next attempt (or being attempted)
    DELIVERED = "delivered"  # a 2xx answer
    FAILED = "failed"  # every attempt of the schedule failed, or the endpoint is gone


class AttemptOutcome(StrEnum):
    IN_PROGRESS = "in_progress"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    ABANDONED = "abandoned"  # its worker stopped before answering; the lease expired


def new_secret() -> str:
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode()


def _key(secret: str) -> bytes:
    return base64.b64decode(secret.removeprefix(SECRET_PREFIX))


def sign(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    """One `v1,<base64>` signature over `id.timestamp.body`."""
    content = f"{msg_id}.{timestamp}.".encode() + body
    digest = hmac.new(_key(secret), content, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def signature_header(secrets_: Sequence[str], msg_id: str, timestamp: int, body: bytes) -> str:
    """Space-separated signatures, one per secret still valid (rotation's grace period)."""
    return " ".join(sign(secret, msg_id, timestamp, body) for secret in secrets_)


def retry_delay(failed_attempts: int, schedule: Sequence[float]) -> float | None:
    """Seconds to wait after the n-th failed attempt; None once the schedule is spent."""
    if failed_attempts < 1 or failed_attempts > len(schedule):
        return None
    return float(schedule[failed_attempts - 1])


def is_success(status: int) -> bool:
    return 200 <= status < 300


def means_gone(status: int) -> bool:
    """410: the receiver wants no more webhooks from us; the subscription is disabled."""
    return status == 410


def is_public_address(address: str) -> bool:
    """Whether an IP address is a public, routable one (not private, loopback, link-local,
    multicast, reserved or unspecified), including IPv4 mapped into IPv6."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return not (
        ip.is_private
        or ip.is_loopback
        or ip.is_link_local
        or ip.is_multicast
        or ip.is_reserved
        or ip.is_unspecified
        or (isinstance(ip, ipaddress.IPv4Address) and ip in _SHARED_ADDRESS_SPACE)
    )


# RFC 6598 carrier-grade NAT space: not "private" to Python, not public either.
_SHARED_ADDRESS_SPACE = ipaddress.ip_network("100.64.0.0/10")
