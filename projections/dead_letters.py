"""Which events could a projection not apply, and why? (projection_dead_letters)

An event a projection cannot apply (an old event no class reads any more, a handler's bug, a
value PostgreSQL refuses) is set aside for that projection, with its position and the error,
so that one event never stops the read side (docs/adr/018). The runner writes these rows in
the transaction that moves the positions past the event; `projections retry` and rebuilds
read and delete them.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from psycopg import Connection, Cursor
from psycopg.rows import tuple_row

ERROR_CHARS = 1000  # an error is kept to one line of at most this many characters


@dataclass(frozen=True)
class DeadLetter:
    projection: str
    position: int
    nominal_id: UUID
    version: int
    topic: str
    error: str
    attempts: int
    failed_at: datetime


def one_line(error: BaseException) -> str:
    """The error's type and message on one line (PostgreSQL's CONTEXT and DETAIL included)."""
    message = " ".join(str(error).split())
    line = f"{type(error).__name__}: {message}" if message else type(error).__name__
    return line[:ERROR_CHARS]


def set_aside(
    cur: Cursor[Any],
    projection: str,
    *,
    position: int,
    nominal_id: UUID,
    version: int,
    topic: str,
    error: str,
) -> None:
    """Record that `projection` could not apply the event at `position` (again, if it had
    been set aside before: the error is the latest, the attempts counted)."""
    cur.execute(
        "INSERT INTO projection_dead_letters"
        " (projection, position, nominal_id, version, topic, error)"
        " VALUES (%s, %s, %s, %s, %s, %s)"
        " ON CONFLICT (projection, position) DO UPDATE SET error = EXCLUDED.error,"
        " attempts = projection_dead_letters.attempts + 1, failed_at = now()",
        [projection, position, nominal_id, version, topic, error],
    )


def held(cur: Cursor[Any], projections: Collection[str]) -> list[tuple[str, int, UUID]]:
    """(projection, position, record) of every event set aside by these projections."""
    cur.execute(
        "SELECT projection, position, nominal_id FROM projection_dead_letters"
        " WHERE projection = ANY(%s) ORDER BY position, projection",
        [list(projections)],
    )
    return [(str(p), int(at), nid) for p, at, nid in cur.fetchall()]


def release(cur: Cursor[Any], keys: Iterable[tuple[str, int]]) -> None:
    """Delete these (projection, position) rows: their events are applied now."""
    keys = list(keys)
    if keys:
        cur.execute(
            "DELETE FROM projection_dead_letters WHERE (projection, position) IN"
            " (SELECT * FROM unnest(CAST(%s AS text[]), CAST(%s AS bigint[])))",
            [[p for p, _ in keys], [at for _, at in keys]],
        )


def listed(conn: Connection[Any], projections: Collection[str], limit: int) -> list[DeadLetter]:
    """The first `limit` events set aside by these projections, in the log's order."""
    with conn.cursor(row_factory=tuple_row) as cur:
        cur.execute(
            "SELECT projection, position, nominal_id, version, topic, error, attempts, failed_at"
            " FROM projection_dead_letters WHERE projection = ANY(%s)"
            " ORDER BY position, projection LIMIT %s",
            [list(projections), limit],
        )
        return [DeadLetter(*row) for row in cur.fetchall()]
