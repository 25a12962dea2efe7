"""The date rules of history imports, in one place.

A move may be dated in the past (`effective_at`, or a day `on`), never in the future,
and never before what it follows. Each refusal is a 422 naming the field and both dates,
except where one of them is the person's birth date (`old_enough_at_entry`).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, datetime, time

from app.errors import Forbidden, ValidationFailed, field_error
from app.models.base import utcnow
from app.schemas.candidates import MIN_CANDIDATE_AGE, old_enough


def _text(value: date | datetime) -> str:
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
    return value.isoformat()


def refuse(loc: Sequence[str], message: str) -> ValidationFailed:
    return ValidationFailed([field_error(list(loc), message, "date_order")])


def not_in_future(value: date | datetime, loc: Sequence[str]) -> None:
    now = utcnow()
    limit: date | datetime = now.date() if not isinstance(value, datetime) else now
    if value > limit:
        raise refuse(loc, f"{_text(value)} is in the future (now: {_text(limit)})")


def not_before(
    value: date | datetime, floor: date | datetime, loc: Sequence[str], what: str
) -> None:
    """`what` names the earlier event, e.g. "the person's previous transition"."""
    if value < floor:
        raise refuse(loc, f"{_text(value)} is before {what} ({_text(floor)})")


def old_enough_at_entry(birth_date: date, entered: datetime, loc: Sequence[str]) -> None:
    """A path begins once the person is of age for one (MIN_CANDIDATE_AGE, the rule a
    birth date meets today), so never before their birth. A birth date is personal data:
    unlike the other rules, the refusal names neither date."""
    if not old_enough(birth_date, entered.astimezone(UTC).date()):
        raise refuse(loc, f"the person was under {MIN_CANDIDATE_AGE} on the day their path began")


def start_of_day(day: date) -> datetime:
    return datetime.combine(day, time.min, tzinfo=UTC)


def instant_of_day(day: date, floors: Sequence[datetime]) -> datetime:
    """The instant a move dated by its day only is recorded at: the start of that day, or
    just when the move it follows took effect if that was on the same day, so that a
    day-dated move keeps both its day and its order."""
    same_day = [f for f in floors if f.astimezone(UTC).date() == day]
    return max([start_of_day(day), *same_day])


def may_date(role_may: bool) -> None:
    if not role_may:
        raise Forbidden(
            "Only national administrators and the person's insertion structure date a move "
            "in the past."
        )
