"""Every candidate's matching features in memory, kept in step with the database.

The store is filled once, then updated in place: each use first reads what changed
since its last position, never the whole table again.
- PostgreSQL: the position is the oldest transaction still running when the store last
  read (the `xmin` of that statement's snapshot). A trigger rewrites a person's row of
  `candidate_changes` whenever their candidate row is inserted, updated or deleted, so
  that row's `xmin` is the last transaction that wrote them: one statement over those
  small rows (one per person ever written, a few dozen bytes each, not the candidates'
  wide rows) returns exactly the people to read again (written by the horizon's
  transaction or a later one). Those no longer in `candidates` were deleted; a
  row for everyone (the nil UUID, written on a TRUNCATE or when that table's own rows are
  deleted) makes the store read every candidate again.
- SQLite (the embedded default, for small deployments): every (id, version) is read
  and compared; only rows whose version moved are read in full.
Reads go through a connection of their own on PostgreSQL, so that only committed rows
ever enter the store.

Derived indexes (k-d trees, id order) are remade from memory after a change.
"""

from __future__ import annotations

import asyncio
import uuid
import weakref
from dataclasses import dataclass, fields
from datetime import date
from typing import Any

import numpy as np
from sqlalchemy import String, bindparam, cast, func, literal_column, select, true
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession
from sqlalchemy.types import UserDefinedType

from app.domain.matching import CandidateArrays
from app.domain.matching.features import BoolArray, IntArray
from app.domain.matching.geography import ReachIndex
from app.domain.matching.scorer import class_fits
from app.models import Candidate, CandidateChange
from app.models.base import utcnow
from app.services.common import is_postgres, one_of
from app.services.matching.rows import (
    CANDIDATE_COLUMNS,
    DecodedCandidates,
    RncpIndex,
    decode_candidates,
)

# The features kept per candidate: the scorer's, less those of the moment.
_KEPT = tuple(f.name for f in fields(CandidateArrays) if f.name not in ("days_in_path", "busy"))
# Beyond this many transactions since its last read, the store reads everything again
# (age() counts in 32 bits; PostgreSQL itself freezes rows long before 2**31).
_HORIZON_LIMIT = 1 << 30
# candidate_changes' row for everyone (a TRUNCATE, or that table's rows deleted): the
# store reads every candidate again.
EVERYONE = uuid.UUID(int=0)


def _oldest_running(snapshot: str) -> str:
    """The oldest transaction running when the snapshot was taken: any row it or a later
    one writes has a newer xmin (xids count in 32 bits in the rows; the snapshot, 64)."""
    return str(int(snapshot.split(":", 1)[0]) % (1 << 32))


class _Xid(UserDefinedType[str]):
    cache_ok = True

    def get_col_spec(self, **_kw: Any) -> str:
        return "xid"


@dataclass(slots=True)
class View:
    """The store as the scorer sees it, for one day: one row per slot; slots of erased
    people are absent (`present` False) and fit no vacancy. Ids are kept as numbers
    (two 64-bit halves, and a dict of plain ints): a hundred thousand UUID objects
    would be walked by every full garbage collection, pausing the event loop."""

    id_high: np.ndarray
    id_low: np.ndarray
    slots: dict[int, int]  # uuid.int -> slot, for present candidates (the store's own)
    arrays: CandidateArrays
    present: BoolArray
    rank: IntArray  # each slot's place in id order
    reach: ReachIndex
    rncp: RncpIndex

    def __len__(self) -> int:
        return len(self.present)

    def ids_of(self, slots: IntArray) -> list[uuid.UUID]:
        highs, lows = self.id_high[slots].tolist(), self.id_low[slots].tolist()
        return [uuid.UUID(int=(h << 64) | lo) for h, lo in zip(highs, lows, strict=True)]

    def slot_of(self, candidate_id: uuid.UUID) -> int | None:
        return self.slots.get(candidate_id.int)


@dataclass(slots=True)
class SyncReport:
    rows_read: int  # candidate rows read in full by the last sync
    erased: int


class CandidateStore:
    """One per database (per engine). Callers hold `lock` while they sync and use it."""

    def __init__(self) -> None:
        self.lock = asyncio.Lock()
        self.rncp = RncpIndex()
        self._size = 0
        self._columns: dict[str, np.ndarray] = {}
        self._slot: dict[int, int] = {}  # uuid.int -> slot
        self._free: list[int] = []
        self._horizon: str | None = None
        self._generation = 0
        self._view: tuple[tuple[int, date, int], View] | None = None
        self.last_sync = SyncReport(0, 0)

    def __len__(self) -> int:
        return len(self._slot)

    # --- reading the changes ---------------------------------------------------------

    async def sync(self, session: AsyncSession) -> SyncReport:
        """Bring the store up to date with what is committed."""
        today = utcnow().date()
        if is_postgres(session):
            async with _own_connection(session) as conn:
                report = await self._sync_postgres(session, conn, today)
        else:
            report = await self._sync_by_versions(session, today)
        self.last_sync = report
        if report.rows_read or report.erased:
            self._generation += 1
        return report

    async def _sync_postgres(
        self, session: AsyncSession, conn: AsyncConnection, today: date
    ) -> SyncReport:
        if self._horizon is None:
            return await self._read_everything(conn, today)
        # The people written since the horizon, from the rows the trigger keeps (one per
        # person, a few bytes each) rather than from the candidates themselves.
        since = cast(bindparam("since", self._horizon, type_=String), _Xid())
        meta = (
            await conn.execute(
                select(
                    cast(func.pg_current_snapshot(), String).label("snapshot"),
                    func.age(since).label("horizon"),
                    func.array_agg(CandidateChange.candidate_id)
                    .filter(func.age(literal_column("candidate_changes.xmin")) <= func.age(since))
                    .label("changed"),
                ).select_from(CandidateChange.__table__)
            )
        ).one()
        lost = not 0 <= meta.horizon < _HORIZON_LIMIT
        if lost or EVERYONE in (meta.changed or ()):
            return await self._read_everything(conn, today)
        found: list[Any] = []
        erased = 0
        if meta.changed:
            # Read after the pass: a row written in between comes in its newer version,
            # and is read once more next time (its xmin is past the new horizon).
            stmt = select(*CANDIDATE_COLUMNS).where(one_of(session, Candidate.id, meta.changed))
            found = list((await conn.execute(stmt)).all())
            self._upsert(decode_candidates(found, self.rncp, today))
            # Changed and absent: deleted (unless they came and went between two reads).
            still = {row.id.int for row in found}
            erased = self._drop(
                [c.int for c in meta.changed if c.int not in still and c.int in self._slot]
            )
        self._horizon = _oldest_running(meta.snapshot)
        return SyncReport(len(found), erased)

    async def _read_everything(self, conn: AsyncConnection, today: date) -> SyncReport:
        meta = select(cast(func.pg_current_snapshot(), String).label("snapshot")).subquery("meta")
        stmt = select(meta.c.snapshot, *CANDIDATE_COLUMNS).select_from(
            meta.outerjoin(Candidate.__table__, true())
        )
        rows = (await conn.execute(stmt)).all()
        found = [row for row in rows if row.id is not None]
        self._upsert(decode_candidates(found, self.rncp, today))
        # People the store held that the table no longer has (a full read after a long
        # pause, or a horizon lost): deleted meanwhile.
        still = {row.id.int for row in found}
        erased = self._drop([c for c in self._slot if c not in still])
        self._horizon = _oldest_running(rows[0].snapshot)
        return SyncReport(len(found), erased)

    async def _sync_by_versions(self, session: AsyncSession, today: date) -> SyncReport:
        connection = await session.connection()
        versions = {
            c.int: version
            for c, version in (await connection.execute(select(Candidate.id, Candidate.version)))
        }
        held = self._columns.get("version")
        moved = [
            uuid.UUID(int=c)
            for c, version in versions.items()
            if (slot := self._slot.get(c)) is None or held is None or held[slot] != version
        ]
        erased = self._drop([c for c in self._slot if c not in versions])
        found: list[Any] = []
        if moved:
            stmt = select(*CANDIDATE_COLUMNS).where(one_of(session, Candidate.id, moved))
            found = list((await connection.execute(stmt)).all())
            self._upsert(decode_candidates(found, self.rncp, today))
        return SyncReport(len(found), erased)

    # --- in place ----------------------------------------------------------------------

    def _upsert(self, decoded: DecodedCandidates) -> None:
        if not decoded.ids:
            return
        slots = np.array([self._slot_for(c.int) for c in decoded.ids], dtype=np.int64)
        width = len(self.rncp)
        self._ensure(self._size, width)
        arrays = decoded.arrays
        for name in _KEPT:
            values = getattr(arrays, name)
            if name == "certifications" and values.shape[1] < width:
                values = np.pad(values, ((0, 0), (0, width - values.shape[1])))
            self._columns[name][slots] = values
        self._columns["entered_day"][slots] = decoded.entered_day
        self._columns["version"][slots] = decoded.versions
        high, low = _id_keys(decoded.ids)
        self._columns["id_high"][slots] = high
        self._columns["id_low"][slots] = low
        self._columns["present"][slots] = True

    def _slot_for(self, key: int) -> int:
        slot = self._slot.get(key)
        if slot is None:
            if self._free:
                slot = self._free.pop()
            else:
                slot = self._size
                self._size += 1
            self._slot[key] = slot
        return slot

    def _drop(self, gone: list[int]) -> int:
        for key in gone:
            slot = self._slot.pop(key)
            self._columns["present"][slot] = False
            self._free.append(slot)
        return len(gone)

    def _ensure(self, size: int, width: int) -> None:
        """Room for `size` rows and `width` certification columns, grown geometrically."""
        capacity = len(self._columns["present"]) if self._columns else 0
        grow = size > capacity or not self._columns
        narrow = bool(self._columns) and self._columns["certifications"].shape[1] < width
        if not grow and not narrow:
            return
        rows = max(size, capacity * 3 // 2, 1024) if grow else capacity
        template = _empty(rows, width)
        for name, fresh in template.items():
            old = self._columns.get(name)
            if old is not None:
                if old.ndim == 2:
                    fresh[: old.shape[0], : old.shape[1]] = old
                else:
                    fresh[: len(old)] = old
            self._columns[name] = fresh

    # --- for the scorer -----------------------------------------------------------------

    def view(self, today: date) -> View:
        key = (self._generation, today, len(self.rncp))
        if self._view is not None and self._view[0] == key:
            return self._view[1]
        n = self._size
        self._ensure(n, len(self.rncp))
        col = self._columns
        arrays = CandidateArrays(
            **{name: col[name][:n] for name in _KEPT},
            days_in_path=(today.toordinal() - col["entered_day"][:n]).astype(np.float64),
            busy=np.zeros(n, dtype=np.bool_),
        )
        present = col["present"][:n]
        order = np.lexsort((col["id_low"][:n], col["id_high"][:n], ~present))
        rank = np.empty(n, dtype=np.int64)
        rank[order] = np.arange(n)

        def fits(key: tuple[int, ...]) -> BoolArray:
            kind, housing, licence, certification = key
            result: BoolArray = present & class_fits(
                arrays, kind, bool(housing), bool(licence), certification
            )
            return result

        view = View(
            col["id_high"][:n],
            col["id_low"][:n],
            self._slot,
            arrays,
            present,
            rank,
            ReachIndex(arrays, rank, fits),
            self.rncp,
        )
        self._view = (key, view)
        return view


def _id_keys(ids: list[uuid.UUID]) -> tuple[np.ndarray, np.ndarray]:
    values = [c.int for c in ids]
    high = np.fromiter((v >> 64 for v in values), dtype=np.uint64, count=len(values))
    low = np.fromiter((v & ((1 << 64) - 1) for v in values), dtype=np.uint64, count=len(values))
    return high, low


def _empty(rows: int, width: int) -> dict[str, np.ndarray]:
    from app.domain.competencies import COMPETENCY_CODES

    return {
        "lat": np.full(rows, np.nan),
        "lon": np.full(rows, np.nan),
        "departement": np.zeros(rows, dtype=np.int64),
        "phase": np.zeros(rows, dtype=np.int64),
        "available_from": np.zeros(rows, dtype=np.int64),
        "max_commute_km": np.zeros(rows),
        "licence": np.zeros(rows, dtype=np.bool_),
        "housing": np.zeros(rows, dtype=np.bool_),
        "consent": np.zeros(rows, dtype=np.bool_),
        "competencies": np.zeros((rows, len(COMPETENCY_CODES))),
        "certifications": np.zeros((rows, width), dtype=np.int64),
        "caretaker_certification": np.zeros(rows, dtype=np.int64),
        "training_hours": np.zeros(rows),
        "positive_assessments": np.zeros(rows),
        "contract_preferences": np.zeros(rows, dtype=np.int64),
        "max_weekly_hours": np.full(rows, np.nan),
        "entered_day": np.zeros(rows, dtype=np.int64),
        "version": np.zeros(rows, dtype=np.int64),
        "id_high": np.zeros(rows, dtype=np.uint64),
        "id_low": np.zeros(rows, dtype=np.uint64),
        "present": np.zeros(rows, dtype=np.bool_),
    }


class _own_connection:  # noqa: N801 - used as a context manager, like a function
    """A connection of the session's engine, outside the session's transaction."""

    def __init__(self, session: AsyncSession) -> None:
        bind = session.bind
        assert bind is not None
        self._engine: AsyncEngine = bind if isinstance(bind, AsyncEngine) else bind.engine
        self._conn: AsyncConnection | None = None

    async def __aenter__(self) -> AsyncConnection:
        self._conn = await self._engine.connect()
        return self._conn

    async def __aexit__(self, *exc: object) -> None:
        assert self._conn is not None
        await self._conn.close()


_STORES: weakref.WeakKeyDictionary[Any, CandidateStore] = weakref.WeakKeyDictionary()


def candidate_store(session: AsyncSession) -> CandidateStore:
    """The store of the session's database, made on first use."""
    engine = session.get_bind()
    store = _STORES.get(engine)
    if store is None:
        store = _STORES[engine] = CandidateStore()
    return store
