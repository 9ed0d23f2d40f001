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

The log is hash-chained like the events (migration 0007): each row's `hash` is SHA-256 over
the previous row's `hash` and the canonical JSON of its own content, written one batch at a
time under an advisory lock (every process's writer takes it), so `verify_log` finds a row
deleted from the middle, edited, or inserted behind the service's back.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from eventsourcing.postgres import PostgresDatastore
from psycopg import Cursor
from psycopg.rows import DictRow

from domain.chain import GENESIS_HASH, chain_hash, format_instant
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
    # Restricted entries the read showed whole: a row each, naming it (docs/adr/021).
    entries: tuple[str, ...] = ()


RESTRICTED_READ = "read-restricted-entry"  # the action of a row naming a restricted entry


CHAIN_LOCK = 7_413_002  # pg_advisory_xact_lock key: one writer of the log's chain at a time

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
            curs.execute("SELECT pg_advisory_xact_lock(%s)", (CHAIN_LOCK,))
            curs.execute(
                "SELECT hash FROM consultation_log WHERE hash IS NOT NULL ORDER BY id DESC LIMIT 1"
            )
            last = curs.fetchone()
            prev = last["hash"] if last else GENESIS_HASH
            at = datetime.now(UTC)
            rows = []
            for e in entries:
                # A read's own row (unless it only names entries of a read logged before),
                # then one per restricted entry it showed whole.
                read: list[tuple[str, str | None]] = []
                if e.action != RESTRICTED_READ:
                    read.append((e.action, None))
                read += [(RESTRICTED_READ, entry) for entry in e.entries]
                for action, entry_id in read:
                    row = {
                        "at": at,
                        "sub": e.principal.sub,
                        "agency": e.principal.agency,
                        "nominal_id": e.nominal_id,
                        "route": e.route,
                        "action": action,
                        "outcome": e.outcome,
                        "justification": e.justification,
                        "entry_id": entry_id,
                        "prev_hash": prev,
                    }
                    prev = row["hash"] = chain_hash(prev, _content(row))
                    rows.append(row)
            curs.execute(
                "INSERT INTO consultation_log (at, sub, agency, nominal_id, route, action,"
                " outcome, justification, entry_id, prev_hash, hash)"
                " SELECT %s, sub, agency, nominal_id, route, action, outcome, justification,"
                " entry_id, prev_hash, hash FROM unnest(%s::text[], %s::text[], %s::uuid[],"
                " %s::text[], %s::text[], %s::text[], %s::text[], %s::uuid[], %s::text[],"
                " %s::text[]) WITH ORDINALITY AS r(sub, agency, nominal_id, route, action,"
                " outcome, justification, entry_id, prev_hash, hash, n) ORDER BY n",
                (at, *([r[c] for r in rows] for c in _COLUMNS)),
            )
        return logged

    def for_nominal(
        self, nominal_id: UUID, *, after_id: int = 0, limit: int = 100
    ) -> list[dict[str, Any]]:
        """The log of one record, oldest first, paged by id."""
        with self._datastore.transaction() as curs:
            curs.execute(
                "SELECT id, at, sub, agency, route, action, outcome, justification, entry_id"
                " FROM consultation_log WHERE nominal_id = %s AND id > %s ORDER BY id LIMIT %s",
                (nominal_id, after_id, limit),
            )
            rows = curs.fetchall()
        return [
            dict(row)
            | {
                "at": format_instant(row["at"]),
                "entry_id": str(row["entry_id"]) if row["entry_id"] else None,
            }
            for row in rows
        ]


# What a row's hash covers: everything it says (`at` and the id as the events write them).
_CHAINED = ("at", "sub", "agency", "nominal_id", "route", "action", "outcome", "justification")
_COLUMNS = ("sub", "agency", "nominal_id", "route", "action", "outcome", "justification",
            "entry_id", "prev_hash", "hash")  # fmt: skip


def _content(row: Mapping[str, Any]) -> dict[str, Any]:
    content = {c: row[c] for c in _CHAINED}
    content["at"] = format_instant(row["at"])
    content["nominal_id"] = str(row["nominal_id"])
    if row.get("entry_id") is not None:  # rows that name no entry hash as before (0011)
        content["entry_id"] = str(row["entry_id"])
    return content


@dataclass(frozen=True)
class LogVerdict:
    """The consultation log's chain: intact, or the first row that breaks it."""

    rows: int
    first_bad_id: int | None = None
    reason: str | None = None

    @property
    def intact(self) -> bool:
        return self.first_bad_id is None


def verify_log(datastore: PostgresDatastore, *, batch: int = 10_000) -> LogVerdict:
    """Recompute the consultation log's chain from its first chained row.

    A row deleted from the middle leaves the next row's `prev_hash` naming a hash no row
    has; an edited row's `hash` no longer matches its content; a row inserted without the
    service carries no hash, or one that does not follow. Rows removed from the very end
    leave no trace in the chain itself (signed checkpoints kept outside are for that)."""
    checked, last, last_id = 0, GENESIS_HASH, 0
    started = False
    for row in _rows_from(datastore, batch):
        if row["hash"] is None:
            if started:
                return LogVerdict(
                    checked, row["id"], "the row carries no hash: not written by the service"
                )
            continue
        started = True
        if row["prev_hash"] != last:
            where = f"row {last_id}" if last_id else "the start of the chain"
            return LogVerdict(
                checked, row["id"], f"the row does not follow {where}: a row between was removed"
            )
        if chain_hash(last, _content(row)) != row["hash"]:
            return LogVerdict(checked, row["id"], "the row's content does not match its hash")
        checked, last, last_id = checked + 1, row["hash"], row["id"]
    return LogVerdict(checked)


def _rows_from(datastore: PostgresDatastore, batch: int) -> Iterator[dict[str, Any]]:
    after = 0
    while True:
        with datastore.transaction() as curs:
            curs.execute(
                "SELECT id, at, sub, agency, nominal_id, route, action, outcome, justification,"
                " entry_id, prev_hash, hash FROM consultation_log WHERE id > %s ORDER BY id"
                " LIMIT %s",
                (after, batch),
            )
            rows = curs.fetchall()
        yield from rows
        if len(rows) < batch:
            return
        after = rows[-1]["id"]
