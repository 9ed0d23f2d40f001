"""Bulk import: an area's history, as NDJSON, into the record (`mappa-record import FILE`).

One event per line, grouped by nominal, each nominal's events in order, registration first
(the format of ADR 006). Every line goes through the Nominal aggregate exactly as a post
does (the same invariants, the server-computed fields, the hash chain), then whole streams
are stored many at a time, each batch in one transaction with its event-index and
identifier rows. The import keeps the source system's `recorded_at` and `recorded_by`: a
migration must not make old minutes look late, or old registrations look on time (ADR 009).

Idempotent and resumable: a line whose event_id is stored already is skipped, so running
the same file again, or again after a crash, stores nothing twice.
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import IO, Any
from uuid import UUID, uuid5

from eventsourcing.persistence import IntegrityError

from mappa_record.domain.errors import DomainError
from mappa_record.domain.nominal import Nominal

from .auth import Principal
from .records import NOMINAL_NAMESPACE, Records, request_digest
from .store import IdentifierClaim, IndexedEvent, bulk_append, partner_sets

BATCH_EVENTS = 5_000  # events per transaction


class ImportRefused(Exception):
    """A line cannot be imported; the message names the line and why."""


@dataclass
class ImportReport:
    lines: int = 0
    stored: int = 0
    skipped: int = 0
    nominals: int = 0
    refused: list[str] = field(default_factory=list)


@dataclass
class _Stream:
    nominal_id: UUID
    first_line: int
    lines: list[dict[str, Any]]


def _open(path: Path) -> IO[str]:
    if path.suffix == ".gz":
        return gzip.open(path, "rt", encoding="utf-8")
    return path.open(encoding="utf-8")


def _streams(handle: IO[str]) -> Iterator[_Stream]:
    current: _Stream | None = None
    for number, raw in enumerate(handle, start=1):
        if not raw.strip():
            continue
        try:
            line = json.loads(raw)
            nominal_id = UUID(line["nominal_id"])
        except (ValueError, KeyError, TypeError) as e:
            raise ImportRefused(f"line {number}: not an event line ({e})") from None
        line["_line"] = number
        if current is None or current.nominal_id != nominal_id:
            if current is not None:
                yield current
            current = _Stream(nominal_id, number, [])
        current.lines.append(line)
    if current is not None:
        yield current


def _principal(line: dict[str, Any]) -> Principal:
    by = line["recorded_by"]
    return Principal(sub=str(by["sub"]), agency=str(by["agency"]), scopes=frozenset())


def _recorded_at(line: dict[str, Any]) -> datetime:
    at = datetime.fromisoformat(str(line["recorded_at"]).replace("Z", "+00:00"))
    if at.tzinfo is None:
        raise ValueError("recorded_at has no time zone")
    return at


class Importer:
    def __init__(self, records: Records, *, batch_events: int = BATCH_EVENTS) -> None:
        self.records = records
        self.batch_events = batch_events

    def run(self, path: Path, progress: Callable[[int], None] = lambda _: None) -> ImportReport:
        """Import a file; refused streams are reported, everything else is stored once."""
        report = ImportReport()
        batch: list[_Stream] = []
        size = 0
        with _open(path) as handle:
            for stream in _streams(handle):
                batch.append(stream)
                size += len(stream.lines)
                if size >= self.batch_events:
                    self._store(batch, report)
                    progress(report.lines)
                    batch, size = [], 0
            if batch:
                self._store(batch, report)
                progress(report.lines)
        return report

    def _stored_ids(self, streams: list[_Stream]) -> set[str]:
        ids = [line["event_id"] for s in streams for line in s.lines]
        with self.records.datastore.transaction() as curs:
            curs.execute(
                "SELECT event_id::text FROM event_index WHERE event_id = ANY(%s::uuid[])", (ids,)
            )
            return {row["event_id"] for row in curs.fetchall()}

    def _store(self, streams: list[_Stream], report: ImportReport) -> None:
        stored = self._stored_ids(streams)
        built: list[tuple[_Stream, Nominal, list[IndexedEvent], list[IdentifierClaim]]] = []
        for stream in streams:
            report.lines += len(stream.lines)
            try:
                result = self._build(stream, stored)
            except ImportRefused as e:
                report.refused.append(str(e))
                continue
            if result is None:
                report.skipped += len(stream.lines)
                continue
            nominal, indexed, claims = result
            report.skipped += len(stream.lines) - len(indexed)
            built.append((stream, nominal, indexed, claims))
        if not built:
            return
        try:
            self._save(built)
        except IntegrityError:
            # Something in the batch is held already (an identifier, most likely): store
            # the streams one by one, so only the one that conflicts is refused.
            for item in built:
                try:
                    self._save([item])
                except IntegrityError:
                    report.refused.append(
                        f"line {item[0].first_line}: nominal {item[0].nominal_id} conflicts "
                        "with a stored record (an identifier already held, or an event id "
                        "used elsewhere)"
                    )
                    continue
                report.stored += len(item[2])
                report.nominals += 1
            return
        report.stored += sum(len(item[2]) for item in built)
        report.nominals += len(built)

    def _save(
        self, built: list[tuple[_Stream, Nominal, list[IndexedEvent], list[IdentifierClaim]]]
    ) -> None:
        nominals = [nominal for _, nominal, _, _ in built]
        bulk_append(
            self.records.app,
            [e for n in nominals for e in n.pending_events],  # type: ignore[misc]
            [e for _, _, indexed, _ in built for e in indexed],
            [c for _, _, _, claims in built for c in claims],
            partner_sets(nominals),
        )

    def _build(
        self, stream: _Stream, stored: set[str]
    ) -> tuple[Nominal, list[IndexedEvent], list[IdentifierClaim]] | None:
        """The stream's new events applied to its nominal, or None when all are stored."""
        fresh = [line for line in stream.lines if line["event_id"] not in stored]
        if not fresh:
            return None
        nominal: Nominal | None = None
        claims: list[IdentifierClaim] = []
        if fresh[0]["type"] != "NominalRegistered" or fresh[0] is not stream.lines[0]:
            nominal = self.records._load(stream.nominal_id)
            if nominal is None:
                raise ImportRefused(
                    f"line {stream.first_line}: nominal {stream.nominal_id} is not registered "
                    "and its stream does not start with NominalRegistered"
                )
        indexed: list[IndexedEvent] = []
        for line in fresh:
            try:
                nominal = self._apply(nominal, stream, line, claims)
            except (DomainError, KeyError, TypeError, ValueError) as e:
                reason = e.message if isinstance(e, DomainError) else f"{type(e).__name__}: {e}"
                raise ImportRefused(f"line {line['_line']}: {line.get('type')}: {reason}") from None
            event = nominal.pending_events[-1]
            assert isinstance(event, Nominal.Event)
            indexed.append(
                IndexedEvent(
                    event_id=UUID(line["event_id"]),
                    nominal_id=stream.nominal_id,
                    version=event.originator_version,
                    request_digest=request_digest(
                        _principal(line),
                        stream.nominal_id,
                        line["type"],
                        line.get("occurred_at"),
                        line["payload"],
                    ),
                    agency=line["recorded_by"]["agency"],
                )
            )
        assert nominal is not None
        return nominal, indexed, claims

    def _apply(
        self,
        nominal: Nominal | None,
        stream: _Stream,
        line: dict[str, Any],
        claims: list[IdentifierClaim],
    ) -> Nominal:
        principal = _principal(line)
        recorded_at = _recorded_at(line)
        if line["type"] == "NominalRegistered":
            if nominal is not None:
                raise ImportRefused(f"line {line['_line']}: a second NominalRegistered")
            if uuid5(NOMINAL_NAMESPACE, str(line["event_id"])) != stream.nominal_id:
                raise ImportRefused(
                    f"line {line['_line']}: nominal_id is not the one the service derives "
                    "from the registration's event_id"
                )
            payload = dict(line["payload"])
            payload["identifiers"] = self.records._normalised_identifiers(
                payload.get("identifiers"), recorded_at
            )
            claims.extend(
                IdentifierClaim(kind, value, stream.nominal_id)
                for kind, value in payload["identifiers"].items()
            )
            return Nominal.register(
                nominal_id=stream.nominal_id,
                event_id=str(line["event_id"]),
                occurred_at=line.get("occurred_at") or recorded_at.date().isoformat(),
                recorded_at=recorded_at,
                recorded_by={"sub": principal.sub, "agency": principal.agency},
                payload=payload,
            )
        if nominal is None:
            raise ImportRefused(f"line {line['_line']}: an event before NominalRegistered")
        nominal.record(
            line["type"],
            event_id=str(line["event_id"]),
            occurred_at=str(line["occurred_at"]),
            recorded_at=recorded_at,
            recorded_by={"sub": principal.sub, "agency": principal.agency},
            payload=line["payload"],
        )
        return nominal
