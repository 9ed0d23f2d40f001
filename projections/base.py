"""What a projection is: a name, the tables it owns, and a handler per event type.

A handler changes the rows one event implies in a `Batch`: the rows of the records the
runner's batch touches, held in memory. The runner loads those rows, applies every event
of the batch, and writes what changed with a few statements per table, in the same
transaction as its position (runner.py), so a handler never needs to be idempotent: it
runs exactly once per event. Handlers do no I/O; their cost is a few dictionary updates.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from operator import itemgetter
from typing import Any
from uuid import UUID

from psycopg import Cursor, sql
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from domain.chain import format_instant

# The event a handler gets: a `Nominal.Event`, or for an EVERY_EVENT handler of a type no
# projection reads the payload of, a `Stored` (the notification's header, not decoded).
Handler = Callable[["Batch", Any, int], None]

# A handler under this key runs for every event, after the type's own handler.
EVERY_EVENT = "*"

Row = dict[str, Any]


@dataclass(frozen=True, slots=True)
class Stored:
    """What a notification says without decoding its state: its type, record and version;
    and, for a projection that reads every event's envelope (`Projection.envelopes`), when
    it was recorded and by whom, read from the state without building the event."""

    type: str
    originator_id: UUID
    originator_version: int
    timestamp: datetime | None = None
    recorded_by: dict[str, str] | None = None


@dataclass(frozen=True)
class Table:
    """A read-model table: its primary key, and whether its rows are only ever inserted.

    Every read-model table has a `nominal_id` column; the runner loads a batch's rows by it.
    An append-only table's rows are never read back or changed by a handler, so the runner
    does not load them, only inserts the new ones.
    """

    name: str
    key: tuple[str, ...]
    append_only: bool = False


@dataclass(frozen=True)
class Projection:
    """One read model: the tables it owns (emptied on rebuild), how events change them, and
    the tables of other read models its handlers read (loaded with its own)."""

    name: str
    tables: tuple[Table, ...]
    handlers: Mapping[str, Handler]
    reads: tuple[Table, ...] = ()
    # Its EVERY_EVENT handler reads `timestamp` and `recorded_by` of events it does not
    # decode too (a `Stored` then carries them).
    envelopes: bool = False

    @property
    def decodes(self) -> frozenset[str]:
        """The event types whose payload this projection reads."""
        return frozenset(self.handlers) - {EVERY_EVENT}

    def handlers_for(self, kind: str) -> tuple[Handler, ...]:
        """The handlers an event of this type runs, in order: its own, then EVERY_EVENT's."""
        found = (self.handlers.get(kind), self.handlers.get(EVERY_EVENT))
        return tuple(h for h in found if h is not None)

    def acts_on(self, kinds: Iterable[str]) -> bool:
        """Whether any event of these types runs a handler of this projection."""
        return EVERY_EVENT in self.handlers or any(k in self.handlers for k in kinds)


class Batch:
    """The rows of the read models that one batch of events touches, in memory.

    `rows(table, nominal_id)` is a record's rows of a table, keyed by primary key; handlers
    add, change and delete entries. `flush` writes the difference from what was loaded:
    per table, one DELETE of the rows changed or gone and one COPY of the rows changed or
    new (delete before insert, so a row that moves in or out of a partial unique index
    never meets its old self).
    """

    def __init__(self, columns: Mapping[str, Mapping[str, str]]) -> None:
        self._columns = columns  # table -> column -> SQL type, in table order
        self._rows: dict[str, dict[UUID, dict[tuple[Any, ...], Row]]] = {}
        self._loaded: dict[str, dict[tuple[Any, ...], tuple[Any, ...]]] = {}

    def rows(self, table: Table, nominal_id: UUID) -> dict[tuple[Any, ...], Row]:
        """One record's rows of `table`, keyed by primary key (loaded, or added in this batch)."""
        return self._rows.setdefault(table.name, {}).setdefault(nominal_id, {})

    def row(self, table: Table, nominal_id: UUID, *key: Any) -> Row | None:
        """The row with this key (after nominal_id), or None."""
        return self.rows(table, nominal_id).get((nominal_id, *key))

    def load(
        self, cur: Cursor[Any], tables: Iterable[Table], nominal_ids: Collection[UUID]
    ) -> None:
        """Read these records' rows of the tables that handlers read back or change."""
        # The ids as one array literal, adapted once rather than once per table.
        ids = "{" + ",".join(map(str, nominal_ids)) + "}"
        for table in tables:
            self._loaded.setdefault(table.name, {})
            if table.append_only or not nominal_ids:
                continue
            columns = list(self._columns[table.name])
            at = [columns.index(k) for k in table.key]
            by_record = self._rows.setdefault(table.name, {})
            loaded = self._loaded[table.name]
            cur.execute(
                sql.SQL("SELECT * FROM {} WHERE nominal_id = ANY(CAST(%s AS uuid[]))").format(
                    sql.Identifier(table.name)
                ),
                [ids],
            )
            nominal_at = columns.index("nominal_id")
            for values in cur.fetchall():
                key = tuple(values[i] for i in at)
                loaded[key] = tuple(values)
                by_record.setdefault(values[nominal_at], {})[key] = dict(
                    zip(columns, values, strict=True)
                )

    def flush(self, cur: Cursor[Any], tables: Iterable[Table]) -> None:
        """Write every change since `load`: a DELETE and a COPY per table at most."""
        for table in tables:
            columns = self._columns[table.name]
            loaded = self._loaded.get(table.name, {})
            as_tuple = itemgetter(*columns)
            now: dict[tuple[Any, ...], tuple[Any, ...]] = {}
            for rows in self._rows.get(table.name, {}).values():
                for key, row in rows.items():
                    try:
                        now[key] = as_tuple(row)
                    except KeyError:  # a column the handler left out: NULL
                        now[key] = tuple([row.get(c) for c in columns])
            stale = [k for k, v in loaded.items() if now.get(k) != v]
            fresh = [v for k, v in now.items() if loaded.get(k) != v]
            if stale:
                _delete(cur, table, columns, stale)
            if fresh:
                with cur.copy(
                    sql.SQL("COPY {} ({}) FROM STDIN (FORMAT BINARY)").format(
                        sql.Identifier(table.name),
                        sql.SQL(", ").join(map(sql.Identifier, columns)),
                    )
                ) as copy:
                    copy.set_types(list(columns.values()))
                    for row_values in fresh:
                        copy.write_row(row_values)


def _delete(
    cur: Cursor[Any], table: Table, columns: Mapping[str, str], keys: list[tuple[Any, ...]]
) -> None:
    key = sql.SQL(", ").join(map(sql.Identifier, table.key))
    arrays = sql.SQL(", ").join(
        sql.SQL("CAST(%s AS {}[])").format(sql.SQL(columns[k])) for k in table.key
    )
    cur.execute(
        sql.SQL("DELETE FROM {} WHERE ({}) IN (SELECT * FROM unnest({}))").format(
            sql.Identifier(table.name), key, arrays
        ),
        [list(values) for values in zip(*keys, strict=True)],
    )


def day(value: Any) -> date | None:
    """An ISO date from a payload, or None."""
    return date.fromisoformat(value) if value else None


@dataclass(frozen=True)
class Filters:
    """The filters every report accepts (docs/design.md#api); None means any.

    `today` is the day overdue and due-soon rules are judged on. `cutoff` is the instant the
    figures are taken at: only facts recorded before it count (the end of the London day
    `as_of`); None counts everything recorded, as the read models stand now."""

    today: date
    cutoff: datetime | None = None
    area: str | None = None
    agency: str | None = None
    level: int | None = None
    category: int | None = None
    date_from: date | None = None
    date_to: date | None = None
    limit: int = 1000
    offset: int = 0
    within_days: int = 28

    def params(self) -> dict[str, Any]:
        return {
            "today": self.today,
            "cutoff": self.cutoff,
            "area": self.area,
            "agency": self.agency,
            "level": self.level,
            "category": self.category,
            "date_from": self.date_from,
            "date_to": self.date_to,
            "limit": self.limit,
            "offset": self.offset,
        }


def known(recorded_at: str) -> str:
    """SQL: the fact recorded at `recorded_at` was known at the cutoff (always, without one).

    Written `(:cutoff IS NULL OR ...)` like the filters: the reports' engine plans every
    statement with its values (plan_cache_mode), so the branch not taken costs nothing."""
    return f"(CAST(:cutoff AS timestamptz) IS NULL OR {recorded_at} < :cutoff)"


def partner_at_cutoff(record: str) -> str:
    """SQL: the filter's agency was a partner of the record at the cutoff (now, without one)."""
    return f"""(CAST(:agency AS text) IS NULL OR EXISTS (
        SELECT 1 FROM rm_partnerships p WHERE p.nominal_id = {record} AND p.agency = :agency
        AND {known("p.since")} AND {not_ended("p.until")}))"""  # noqa: S608 - our own names


def cte(f: Filters) -> str:
    """How a report's page should take the records it sorts: as of a day, computed whole
    first (the rows that stood are a UNION ALL whose joins the planner misjudges, choosing a
    nested loop for a LIMIT that then runs for seconds); as they stand, as the planner sees
    fit (an index walk)."""
    return "MATERIALIZED" if f.cutoff is not None else "NOT MATERIALIZED"


def not_ended(until: str) -> str:
    """SQL: what ended at `until` (NULL: has not) had not ended by the cutoff."""
    return f"({until} IS NULL OR (CAST(:cutoff AS timestamptz) IS NOT NULL AND {until} >= :cutoff))"


def as_it_stood(current: Table, past: Table, columns: str, f: Filters) -> str:
    """SQL for a history kept as a current table and an append-only table of the rows it
    replaced (`supersede`): the rows as they stood at the cutoff, or without one the current
    table alone (which the planner joins by its keys and indexes). `columns` are selected from
    both; each has `since` and the past one `until`."""
    if f.cutoff is None:
        return f"SELECT {columns} FROM {current.name}"  # noqa: S608 - our own names
    return f"""
        SELECT {columns} FROM {current.name}
        WHERE (CAST(:cutoff AS timestamptz) IS NULL OR since < :cutoff)
        UNION ALL
        SELECT {columns} FROM {past.name}
        WHERE CAST(:cutoff AS timestamptz) IS NOT NULL AND since < :cutoff AND until >= :cutoff
    """  # noqa: S608 - our own table and column names


def area_join(f: Filters, alias: str, *, level: bool = False) -> str:
    """SQL joining a fact (`alias`, with nominal_id and the version of its event) to the area
    its record was in when the event was recorded, kept to the filter's area, and with
    `level`, to the record's level then, kept to the filter's level; nothing when neither
    filter applies (docs/adr/022)."""
    conditions = []
    if f.area is not None:
        conditions.append("ea.area = :area")
    if level and f.level is not None:
        conditions.append("ea.level = :level")
    if not conditions:
        return ""
    return (
        f"JOIN rm_event_areas ea ON ea.nominal_id = {alias}.nominal_id"
        f" AND ea.version = {alias}.version AND " + " AND ".join(conditions)
    )


def with_area(page: str, order: str) -> str:
    """SQL adding to a page of facts (each with nominal_id and version) the area its record
    was in when the fact was recorded: joined after the page is cut, so only its rows are
    looked up."""
    return (
        f"SELECT p.*, ea.area FROM ({page}) p LEFT JOIN rm_event_areas ea"  # noqa: S608
        f" ON ea.nominal_id = p.nominal_id AND ea.version = p.version ORDER BY {order}"
    )


def supersede(
    b: Batch,
    current: Table,
    past: Table,
    e: Any,
    position: int,
    tracked: Iterable[str],
    changes: Mapping[str, Any],
) -> None:
    """Change the record's current row of a history: if a `tracked` column changes, the row
    as it was goes to `past` with `until` (this event's instant) and the current row is
    stamped `since` this event. A row this same event made is changed in place."""
    row = b.row(current, e.originator_id)
    if row is None:
        return
    if all(row.get(k) == v for k, v in changes.items()):
        return
    if row["since_position"] != position:
        old = {k: row[k] for k in ("nominal_id", "since", "since_position", *tracked)}
        key = (e.originator_id, row["since_position"])
        b.rows(past, e.originator_id)[key] = old | {"until": e.timestamp}
        row["since"], row["since_position"] = e.timestamp, position
    row.update(changes)


def report_filters(
    *,
    level: str | None,
    date: str | None,
    agency: str | None = None,
    area: str | None = None,
    category: str | None = None,
) -> str:
    """The conditions of the report filters (area, level, category, from, to, agency), given
    the column each filter means in this report: the one place a filter's meaning is spelled
    out in SQL. A filter given None is left out (a report of records as they stand has no
    dates; the area and the level of the record when a fact was recorded are joined from
    rm_event_areas instead, `area_join`)."""
    conditions = []
    if area is not None:
        conditions.append(f"(CAST(:area AS text) IS NULL OR {area} = :area)")
    if level is not None:
        conditions.append(f"(CAST(:level AS integer) IS NULL OR {level} = :level)")
    if category is not None:
        conditions.append(f"(CAST(:category AS integer) IS NULL OR {category} = :category)")
    if date is not None:
        conditions.append(f"(CAST(:date_from AS date) IS NULL OR {date} >= :date_from)")
        conditions.append(f"(CAST(:date_to AS date) IS NULL OR {date} <= :date_to)")
    if agency is not None:
        conditions.append(f"(CAST(:agency AS text) IS NULL OR {agency} = :agency)")
    return "\n      AND ".join(conditions)


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


def median(value: Any) -> float | None:
    """A `percentile_cont(0.5)` as JSON: a float, or None over no rows."""
    return float(value) if value is not None else None
