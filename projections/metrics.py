"""Prometheus metrics of the read side: each projection's position, the head, the lag."""

from __future__ import annotations

from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Gauge, generate_latest


def projection_metrics(service: Any) -> tuple[bytes, str]:
    """The metrics body and its content type, read from the database now."""
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
    head_gauge = Gauge(
        "mappa_event_store_head", "Highest notification id stored", registry=registry
    )
    head = int(service.ledger.app.recorder.max_notification_id() or 0)
    head_gauge.set(head)
    with service.db.connect(connect_timeout=3) as conn:
        rows = conn.execute("SELECT name, position FROM projection_positions").fetchall()
    for name, at in rows:
        position.labels(name).set(at)
        lag.labels(name).set(max(head - int(at), 0))
    return generate_latest(registry), CONTENT_TYPE_LATEST
