"""What every theme of the record shares: the payload type, an item's stamp, a safe copy.

The theme modules (identity, partnering, management, meetings, entries, restrictions,
custody, outcomes) each hold their events' decisions and effects side by side, as two
small tables that `domain/nominal/__init__.py` assembles; they import the aggregate only
for its type.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime
from typing import TYPE_CHECKING, Any

from domain.agencies import parse_agency
from domain.calendar import london_date
from domain.chain import format_instant
from domain.errors import InvalidValue, InvariantViolated

if TYPE_CHECKING:
    from domain.nominal import Nominal

Payload = dict[str, Any]
Decide = Callable[["Nominal", Payload, datetime], Payload]
Apply = Callable[["Nominal", Any], None]  # Any: a Nominal.Event


def stamp(e: Any) -> dict[str, Any]:
    """Who recorded an item, when, and under which event: every item of a view carries it."""
    return {
        "event_id": e.event_id,
        "occurred_at": e.occurred_at,
        "recorded_at": format_instant(e.timestamp),
        "recorded_by": dict(e.recorded_by),
    }


def copied(value: Any) -> Any:
    """A copy of a JSON value that deciding may change without touching the caller's.

    Payloads are JSON (parsed, or dumped by the request schemas): dicts and lists are all
    that can change. About a third of the cost of `copy.deepcopy`, which was a sixth of an
    import's time.
    """
    if isinstance(value, dict):
        return {k: copied(v) if isinstance(v, _CONTAINERS) else v for k, v in value.items()}
    if isinstance(value, list):
        return [copied(v) if isinstance(v, _CONTAINERS) else v for v in value]
    return value


_CONTAINERS = (dict, list)


def partnered(nominal: Nominal, agency: str, field: str) -> str:
    """The agency, parsed, if it is a current partner of the record."""
    agency = parse_agency(agency)
    if agency not in nominal.partners:
        raise InvariantViolated(f"{agency} is not a partner of this record", field=field)
    return agency


def day_of(value: Any, field: str) -> date:
    """An ISO date of a payload (the schemas send dates as YYYY-MM-DD)."""
    try:
        return date.fromisoformat(str(value))
    except ValueError:
        raise InvalidValue(f"{value!r} is not a date (YYYY-MM-DD)", field=field) from None


def not_after_recording(value: Any, recorded_at: datetime, field: str, what: str) -> date:
    """A date of a payload that cannot be later than the day it is recorded (London)."""
    day = day_of(value, field)
    if day > london_date(recorded_at):
        raise InvalidValue(f"{what} cannot be after the day it is recorded", field=field)
    return day


def decide_free(nominal: Nominal, payload: Payload, _: datetime) -> Payload:
    """An event with no rule beyond its payload's shape."""
    return payload
