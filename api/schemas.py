"""The HTTP envelopes around the payloads (service/payloads.py holds what each event type's
payload may hold, for posts and imports alike), and the answers' shapes.

Every request model forbids unknown fields, so a client cannot set what the server owns.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Annotated, Any
from uuid import UUID

from pydantic import AfterValidator, AwareDatetime, BaseModel

from domain.chain import format_instant
from service.payloads import EventType, NominalRegistered, Strict


def _in_utc(value: datetime) -> datetime:
    """An instant that has a UTC form: 0001-01-01T00:30:00+01:00 has none (it falls before
    year 1 in UTC), and its formatting raised OverflowError, a 500."""
    try:
        value.astimezone(UTC)
    except OverflowError:
        raise ValueError("the instant is out of range in UTC") from None
    return value


# An instant with its offset, storable as UTC.
Instant = Annotated[AwareDatetime, AfterValidator(_in_utc)]


class Registration(NominalRegistered):
    event_id: UUID
    occurred_at: date | Instant | None = None


class EventPost(Strict):
    """`POST /v1/nominals/{id}/events`: the envelope; the payload is checked by type."""

    event_id: UUID
    type: EventType
    occurred_at: date | Instant
    payload: dict[str, Any]


def occurred(value: date | datetime | None) -> str | None:
    """Business time as stored: a date as YYYY-MM-DD, an instant as UTC ISO 8601."""
    if value is None:
        return None
    if isinstance(value, datetime):
        return format_instant(value)
    return value.isoformat()


# -- responses -------------------------------------------------------------------------------


class RecordedBy(BaseModel):
    sub: str
    agency: str


class StoredEventOut(BaseModel):
    event_id: str
    type: str
    nominal_id: str
    version: int
    position: int
    occurred_at: str
    recorded_at: str
    recorded_by: RecordedBy
    payload: dict[str, Any]
    prev_hash: str
    hash: str


class RegisteredOut(BaseModel):
    nominal_id: str
    version: int
    event: StoredEventOut


class HistoryOut(BaseModel):
    nominal_id: str
    events: list[StoredEventOut]
    next_from_version: int | None


class LookupOut(BaseModel):
    results: list[dict[str, Any]]
