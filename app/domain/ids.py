"""Time-ordered UUIDs (RFC 9562 version 7).

Ids sort in creation order, so keyset pagination on the primary key lists new rows
last and PostgreSQL's B-tree inserts stay at the right edge.
"""

from __future__ import annotations

import os
import time
import uuid
from datetime import datetime


def uuid7(at: datetime | None = None) -> uuid.UUID:
    """A new id; `at` (timezone-aware) dates it, for rows backfilled by a migration."""
    ms = time.time_ns() // 1_000_000 if at is None else int(at.timestamp() * 1000)
    rand = int.from_bytes(os.urandom(10), "big")
    value = (ms & ((1 << 48) - 1)) << 80
    value |= 0x7 << 76  # version
    value |= ((rand >> 62) & 0xFFF) << 64  # rand_a, 12 bits
    value |= 0b10 << 62  # variant
    value |= rand & ((1 << 62) - 1)  # rand_b, 62 bits
    return uuid.UUID(int=value)
