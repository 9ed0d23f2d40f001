"""What a projection is: a name, the tables it owns, and a handler per event type.

A handler writes the rows one event implies, on the connection of the runner's
transaction; the runner records its position in that same transaction (runner.py), so a
handler never needs to be idempotent: it runs exactly once per event.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import Connection, text
from sqlalchemy.ext.asyncio import AsyncConnection

from mappa_record.domain.chain import format_instant
from mappa_record.domain.nominal import Nominal

Handler = Callable[[Connection, Nominal.Event, int], None]

# A handler under this key runs for every event, after the type's own handler.
EVERY_EVENT = "*"


@dataclass(frozen=True)
class Projection:
    """One read model: the tables it owns (emptied on rebuild) and how events change them."""

    name: str
    tables: tuple[str, ...]
    handlers: Mapping[str, Handler]

    def apply(self, conn: Connection, event: Nominal.Event, position: int) -> None:
        handler = self.handlers.get(event.type)
        if handler is not None:
            handler(conn, event, position)
        every = self.handlers.get(EVERY_EVENT)
        if every is not None:
            every(conn, event, position)


def day(value: Any) -> date | None:
    """An ISO date from a payload, or None."""
    return date.fromisoformat(value) if value else None


@dataclass(frozen=True)
class Filters:
    """The filters every report accepts (DESIGN.md section 5); None means any."""

    today: date
    area: str | None = None
    agency: str | None = None
    level: int | None = None
    date_from: date | None = None
    date_to: date | None = None
    limit: int = 1000
    offset: int = 0

    def params(self) -> dict[str, Any]:
        return {
            "today": self.today,
            "area": self.area,
            "agency": self.agency,
            "level": self.level,
            "date_from": self.date_from,
            "date_to": self.date_to,
            "limit": self.limit,
            "offset": self.offset,
        }


def share(part: int, whole: int) -> float | None:
    """part / whole rounded to four places, or None when there is nothing to divide."""
    return round(part / whole, 4) if whole else None


def plain(row: Mapping[str, Any]) -> dict[str, Any]:
    """A result row as JSON-ready values (dates and instants as ISO text, ids as text)."""
    out: dict[str, Any] = {}
    for key, value in row.items():
        if isinstance(value, datetime):
            out[key] = format_instant(value)
        elif hasattr(value, "isoformat"):
            out[key] = value.isoformat()
        elif value is not None and not isinstance(value, (int, float, str, bool, list, dict)):
            out[key] = str(value)
        else:
            out[key] = value
    return out


async def fetch_one(conn: AsyncConnection, sql: str, params: dict[str, Any]) -> Any:
    """The one row a report's summary query returns, as a mapping."""
    return (await conn.execute(text(sql), params)).mappings().one()


async def fetch_all(conn: AsyncConnection, sql: str, params: dict[str, Any]) -> Any:
    """A report's rows, as mappings."""
    return (await conn.execute(text(sql), params)).mappings().all()
