"""The consultation log: who read or tried to read a nominal's record, when, and why.

Data Protection Act 2018, section 62: logs of consultation and disclosure. The table is
append-only like the events (migration 0001). Writes go through the event store's pool.

Reads arriving together are logged together: one writer thread inserts whatever rows are
waiting in one transaction (a group commit, as the event store's appends), and each read
waits until its own row is committed before its data is handed over.

A read of a cached copy names the version it saw (`seen_version`): its row is written only
if the record still stands at that version, asked in the same transaction, so one round
trip both logs the read and tells it whether its copy was current (ADR 011). A read whose
record has moved on is not logged here; it is read again from the store, and logged then.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from eventsourcing.postgres import PostgresDatastore
from psycopg import Cursor
from psycopg.rows import DictRow

from domain.chain import format_instant
from service.auth import Principal
from service.store.committer import Batched


@dataclass(frozen=True)
class Consultation:
    """One read, or one refused attempt, on a real record."""

    principal: Principal
    nominal_id: UUID
    route: str
    action: str
    outcome: str
    justification: str | None = None
    seen_version: int | None = None  # logged only if the record still stands at it


# For each (nominal, version seen), whether the store holds a later version (store.moved_on).
MovedOn = Callable[[Cursor[DictRow], Sequence[tuple[UUID, int]]], list[bool]]


class ConsultationLog:
    def __init__(
        self, datastore: PostgresDatastore, moved_on: MovedOn, *, max_batch: int = 256
    ) -> None:
        self._datastore = datastore
        self._moved_on = moved_on
        self._writer = Batched("consultation-log", self._insert, max_batch=max_batch)

    def append(self, entry: Consultation) -> bool:
        """Record one consultation; returns once it is committed (raises if it cannot be).
        False, and nothing recorded, when the record has moved on from `seen_version`."""
        return self._writer.ask(entry)

    def submit(self, entry: Consultation) -> Future[bool]:
        """`append` without waiting: the future is done once the row is committed."""
        return self._writer.submit(entry)

    def close(self) -> None:
        self._writer.close()

    def _insert(self, batch: list[Consultation]) -> list[bool]:
        with self._datastore.transaction(commit=True) as curs:
            logged = [True] * len(batch)
            seen = {
                i: (e.nominal_id, e.seen_version)
                for i, e in enumerate(batch)
                if e.seen_version is not None
            }
            if seen:
                later = self._moved_on(curs, list(seen.values()))
                for i, moved in zip(seen, later, strict=True):
                    logged[i] = not moved
            entries = [e for e, log in zip(batch, logged, strict=True) if log]
            if not entries:
                return logged
            curs.execute(
                "INSERT INTO consultation_log"
                " (sub, agency, nominal_id, route, action, outcome, justification)"
                " SELECT * FROM unnest(%s::text[], %s::text[], %s::uuid[],"
                " %s::text[], %s::text[], %s::text[], %s::text[])",
                (
                    [e.principal.sub for e in entries],
                    [e.principal.agency for e in entries],
                    [e.nominal_id for e in entries],
                    [e.route for e in entries],
                    [e.action for e in entries],
                    [e.outcome for e in entries],
                    [e.justification for e in entries],
                ),
            )
        return logged

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
