"""The consultation log: who read or tried to read a nominal's record, when, and why.

Data Protection Act 2018, section 62: logs of consultation and disclosure. The table is
append-only like the events (migration 0001). Writes go through the event store's pool.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from uuid import UUID

from eventsourcing.postgres import PostgresDatastore

from mappa_record.domain.chain import format_instant

from .auth import Principal


@dataclass(frozen=True)
class Consultation:
    """One read, or one refused attempt, on a real record."""

    principal: Principal
    nominal_id: UUID
    route: str
    action: str
    outcome: str
    justification: str | None = None


class ConsultationLog:
    def __init__(self, datastore: PostgresDatastore) -> None:
        self._datastore = datastore

    def append(self, entry: Consultation) -> None:
        """Record one consultation; committed before the data is handed over."""
        with self._datastore.transaction(commit=True) as curs:
            curs.execute(
                "INSERT INTO consultation_log"
                " (sub, agency, nominal_id, route, action, outcome, justification)"
                " VALUES (%s, %s, %s, %s, %s, %s, %s)",
                (
                    entry.principal.sub,
                    entry.principal.agency,
                    entry.nominal_id,
                    entry.route,
                    entry.action,
                    entry.outcome,
                    entry.justification,
                ),
            )

    def for_nominal(
        self, nominal_id: UUID, *, after_id: int = 0, limit: int = 100
    ) -> list[dict[str, Any]]:
        """The log of one record, oldest first, paged by id."""
        with self._datastore.transaction() as curs:
            curs.execute(
                "SELECT id, at, sub, agency, route, action, outcome, justification"
                " FROM consultation_log WHERE nominal_id = %s AND id > %s ORDER BY id LIMIT %s",
                (nominal_id, after_id, limit),
            )
            rows = curs.fetchall()
        return [dict(row) | {"at": format_instant(row["at"])} for row in rows]
