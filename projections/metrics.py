"""What the read side looks like now: each projection's position, lag and events set aside,
for `/metrics` (Prometheus) and the readiness detail."""

from __future__ import annotations

from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Gauge, generate_latest
from psycopg import Connection, sql
from psycopg.rows import tuple_row

from projections.runner import EVENTS_TABLE, STATUS_SQL, ProjectionStatus


def read_side(conn: Connection[Any]) -> list[ProjectionStatus]:
    """Every projection's position, the log's head and the events each set aside, read on
    `conn` (a pooled connection: probes open none of their own)."""
    with conn.cursor(row_factory=tuple_row) as cur:
        cur.execute(
            sql.SQL("SELECT coalesce(max(notification_id), 0) FROM {}").format(
                sql.Identifier(EVENTS_TABLE)
            )
        )
        row = cur.fetchone()
        head = int(row[0]) if row else 0
        cur.execute(STATUS_SQL)
        return [
            ProjectionStatus(name, int(position), head, int(set_aside))
            for name, position, set_aside in cur.fetchall()
        ]


def projection_metrics(statuses: list[ProjectionStatus]) -> tuple[bytes, str]:
    """The metrics body and its content type."""
    registry = CollectorRegistry()
    position = Gauge(
        "mappa_projection_position",
        "Last notification id applied",
        ["projection"],
        registry=registry,
    )
    lag = Gauge(
        "mappa_projection_lag_events",
        "Events stored but not yet applied",
        ["projection"],
        registry=registry,
    )
    set_aside = Gauge(
        "mappa_projection_dead_letters",
        "Events the projection could not apply, set aside (mappa-record projections retry)",
        ["projection"],
        registry=registry,
    )
    head = Gauge("mappa_event_store_head", "Highest notification id stored", registry=registry)
    head.set(max((s.head for s in statuses), default=0))
    for s in statuses:
        position.labels(s.name).set(s.position)
        lag.labels(s.name).set(s.lag)
        set_aside.labels(s.name).set(s.set_aside)
    return generate_latest(registry), CONTENT_TYPE_LATEST
