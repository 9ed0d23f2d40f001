"""Bulk import: an area's history, as NDJSON, into the record (`mappa-record import FILE`).

One event per line, grouped by nominal, each nominal's events in order, registration first
(the format of ADR 006). Every line's payload is checked against the schema a post's is
(service/payloads.py) and stored as that gives it back, and every line goes through the
Nominal aggregate exactly as a post does (the same invariants, the server-computed fields,
the hash chain); then whole streams are stored many at a time, each batch in one
transaction with its event-index and identifier rows. The import keeps the source system's
`recorded_at` and `recorded_by`: a migration must not make old minutes look late, or old
registrations look on time (ADR 009).

Idempotent and resumable: a line whose event_id is stored already is skipped, so running
the same file again, or again after a crash, stores nothing twice.

Building streams (aggregate, hash chain, the mapper's rows) is most of the work and needs
nothing from the database, so with `workers` it runs in that many processes, a batch each,
while this process reads the file and stores the batches, one at a time and in file order
(ADR 012). A batch with a line that an earlier batch of this run stored since it was looked
up is built again, here, once those before it are stored.

An import adds whole records only: a stream whose record is already stored is skipped when
every line of it is, and refused when it has lines the record lacks. Those lines would be
stored under the source's `recorded_by` on a record that agencies already rely on, and an
operator's file is not who posted them; later events are posted through the API by whoever
records them (hardening point 8, ADR 009).
"""

from __future__ import annotations

import contextlib
import gzip
import json
import multiprocessing
import re
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import IO, Any
from uuid import UUID, uuid5

import orjson
from eventsourcing.persistence import IntegrityError, Mapper
from pydantic import ValidationError

from domain.calendar import london_date
from domain.errors import DomainError, InvalidValue
from domain.identifiers import normalised_identifiers
from domain.nominal import Nominal
from service.auth import Principal
from service.payloads import PAYLOADS, NominalRegistered
from service.records import NOMINAL_NAMESPACE, Records, request_digest
from service.store.eventstore import (
    ClaimRow,
    EventRow,
    IndexRow,
    PartnerSet,
    bulk_append,
    detached_mapper,
    event_row,
    identifier_rows,
    partner_sets,
)

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
    """One nominal's consecutive lines, as read (builders parse them again: cheaper to send)."""

    nominal_id: UUID
    first_line: int
    key: Any = None  # nominal_id as the lines spell it
    numbers: list[int] = field(default_factory=list)
    texts: list[str] = field(default_factory=list)
    event_ids: list[str | None] = field(default_factory=list)  # canonical; None: not a UUID


@dataclass
class _Built:
    """A stream's new events as rows to store, with their index rows."""

    events: list[EventRow]
    indexed: list[IndexRow]
    claims: list[ClaimRow]
    partners: PartnerSet | None


# What building a stream comes to: its rows, None when every line is stored already, or the
# reason it is refused.
Outcome = _Built | str | None


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
            line = _parsed(raw)
            key = line["nominal_id"]
            if current is None or key != current.key:
                nominal_id = UUID(key)
        except (ValueError, KeyError, TypeError) as e:
            raise ImportRefused(f"line {number}: not an event line ({e})") from None
        if current is None or current.nominal_id != nominal_id:
            if current is not None:
                yield current
            current = _Stream(nominal_id, number, key=key)
        current.numbers.append(number)
        current.texts.append(raw)
        current.event_ids.append(_event_key(line.get("event_id")))
    if current is not None:
        yield current


_CANONICAL_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def _event_key(value: Any) -> str | None:
    """An event id as the store spells it, or None for one that is not a UUID (its line is
    then refused when its stream is built, with its number and why)."""
    if not isinstance(value, str):
        return None
    if _CANONICAL_UUID.fullmatch(value):
        return value
    try:
        return str(UUID(value))
    except ValueError:
        return None


def _parsed(raw: str) -> Any:
    """A line, parsed only to group it: orjson where it can (a third of the time), the
    standard library otherwise (it also reads NaN, and lone surrogates in escapes). The
    builders parse each line again with the standard library, for what they store."""
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        return json.loads(raw)


def _batches(streams: Iterator[_Stream], size: int) -> Iterator[list[_Stream]]:
    batch: list[_Stream] = []
    events = 0
    for stream in streams:
        batch.append(stream)
        events += len(stream.texts)
        if events >= size:
            yield batch
            batch, events = [], 0
    if batch:
        yield batch


def _check_payload(line: dict[str, Any]) -> None:
    """The line's payload as a post's schema gives it back (service/payloads.py): a payload a
    post could not send (a field unknown or the server's, a value of the wrong kind) refuses
    the line, naming the field; one it could is stored as a post stores it (a retraction's
    reference spelt as event ids are stored, defaults filled in)."""
    kind = line.get("type")
    model = NominalRegistered if kind == "NominalRegistered" else PAYLOADS.get(str(kind))
    if model is None:
        return  # not an event type: the aggregate refuses it by name
    try:
        line["payload"] = model.model_validate(line.get("payload")).model_dump(mode="json")
    except ValidationError as e:
        first = e.errors()[0]
        where = ".".join(str(part) for part in ("payload", *first["loc"]))
        more = f" (and {e.error_count() - 1} more)" if e.error_count() > 1 else ""
        raise InvalidValue(f"{where}: {first['msg']}{more}", field=where) from None


def _principal(line: dict[str, Any]) -> Principal:
    by = line["recorded_by"]
    return Principal(sub=str(by["sub"]), agency=str(by["agency"]), scopes=frozenset())


def _recorded_at(line: dict[str, Any]) -> datetime:
    at = datetime.fromisoformat(str(line["recorded_at"]).replace("Z", "+00:00"))
    if at.tzinfo is None:
        raise ValueError("recorded_at has no time zone")
    return at


class StreamBuilder:
    """Builds streams into rows: the Nominal aggregate's events through the given mapper."""

    def __init__(self, mapper: Mapper[UUID]) -> None:
        self.mapper = mapper

    def build_batch(self, streams: list[_Stream], stored: set[str]) -> list[Outcome]:
        """Each stream's outcome."""
        return [self.outcome(stream, stored) for stream in streams]

    def outcome(self, stream: _Stream, stored: set[str]) -> Outcome:
        """What building the stream comes to, a refusal included."""
        try:
            return self.build(stream, stored)
        except ImportRefused as e:
            return str(e)

    def build(self, stream: _Stream, stored: set[str]) -> Outcome:
        """The stream's new events applied to its nominal, or None when all are stored."""
        lines = []
        for number, text, key in zip(stream.numbers, stream.texts, stream.event_ids, strict=True):
            line = json.loads(text)
            line["_line"] = number
            line["_event_id"] = key  # canonical, found when the stream was grouped
            lines.append(line)
        fresh = [line for line in lines if line["_event_id"] not in stored]
        if not fresh:
            return None
        if fresh[0] is not lines[0]:
            raise ImportRefused(
                f"line {fresh[0]['_line']}: nominal {stream.nominal_id} is already on the "
                "record: an import adds whole records; post later events through the API"
            )
        if fresh[0].get("type") != "NominalRegistered":
            raise ImportRefused(
                f"line {stream.first_line}: the stream of nominal {stream.nominal_id} does not "
                "start with NominalRegistered"
            )
        nominal: Nominal | None = None
        nominal_key = str(stream.nominal_id)
        indexed: list[IndexRow] = []
        for line in fresh:
            try:
                event_id = line["_event_id"]
                if event_id is None:
                    raise ValueError(f"event_id {line['event_id']!r} is not a UUID")
                _check_payload(line)
                principal = _principal(line)
                nominal = self._apply(nominal, stream, line, event_id, principal)
                digest = request_digest(
                    principal,
                    stream.nominal_id,
                    line["type"],
                    line.get("occurred_at"),
                    line["payload"],
                )
            except (DomainError, KeyError, TypeError, ValueError) as e:
                reason = e.message if isinstance(e, DomainError) else f"{type(e).__name__}: {e}"
                raise ImportRefused(f"line {line['_line']}: {line.get('type')}: {reason}") from None
            indexed.append((event_id, nominal_key, nominal.version, digest, principal.agency))
        assert nominal is not None
        events = nominal.pending_events
        assert len(events) == nominal.version
        partners = partner_sets([nominal])
        # A whole record: every identifier it releases was claimed in this stream, so only
        # what it holds at the end is claimed, and nothing is released (docs/adr/019).
        releases, claims = identifier_rows([nominal])
        assert not releases
        return _Built(
            events=[event_row(self.mapper.to_stored_event(e)) for e in events],
            indexed=indexed,
            claims=[(c.kind, c.value, nominal_key) for c in claims],
            partners=partners[0] if partners else None,
        )

    def _apply(
        self,
        nominal: Nominal | None,
        stream: _Stream,
        line: dict[str, Any],
        event_id: str,  # canonical, as the index and a post spell it
        principal: Principal,
    ) -> Nominal:
        recorded_at = _recorded_at(line)
        recorded_by = {"sub": principal.sub, "agency": principal.agency}
        if line["type"] == "NominalRegistered":
            if nominal is not None:
                raise ImportRefused(f"line {line['_line']}: a second NominalRegistered")
            if uuid5(NOMINAL_NAMESPACE, event_id) != stream.nominal_id:
                raise ImportRefused(
                    f"line {line['_line']}: nominal_id is not the one the service derives "
                    "from the registration's event_id"
                )
            payload = dict(line["payload"])
            payload["identifiers"] = normalised_identifiers(
                payload.get("identifiers"), london_date(recorded_at)
            )
            line["payload"] = payload  # its digest is over the stored identifiers, as a post's
            return Nominal.register(
                nominal_id=stream.nominal_id,
                event_id=event_id,
                occurred_at=line.get("occurred_at") or recorded_at.date().isoformat(),
                recorded_at=recorded_at,
                recorded_by=recorded_by,
                payload=payload,
            )
        if nominal is None:
            raise ImportRefused(f"line {line['_line']}: an event before NominalRegistered")
        nominal.record(
            line["type"],
            event_id=event_id,
            occurred_at=str(line["occurred_at"]),
            recorded_at=recorded_at,
            recorded_by=recorded_by,
            payload=line["payload"],
        )
        return nominal


# -- the builders' processes ---------------------------------------------------------------

_worker_builder: StreamBuilder | None = None


def _start_worker(env: Mapping[str, str]) -> None:
    global _worker_builder  # one per worker process, made once
    _worker_builder = StreamBuilder(detached_mapper(env))


def _build_in_worker(streams: list[_Stream], stored: set[str]) -> list[Outcome]:
    assert _worker_builder is not None
    return _worker_builder.build_batch(streams, stored)


Submit = Callable[[list[_Stream], set[str]], Future[list[Outcome]]]


def _built_now(
    builder: StreamBuilder, streams: list[_Stream], stored: set[str]
) -> Future[list[Outcome]]:
    future: Future[list[Outcome]] = Future()
    try:
        future.set_result(builder.build_batch(streams, stored))
    except BaseException as e:  # noqa: BLE001 - raised where the result is read, as a pool does
        future.set_exception(e)
    return future


@contextlib.contextmanager
def _builders(workers: int, builder: StreamBuilder, env: Mapping[str, str]) -> Iterator[Submit]:
    """How batches are built: in this process as submitted, or in `workers` processes."""
    if workers == 0:
        yield lambda streams, stored: _built_now(builder, streams, stored)
        return
    # Spawned, not forked: this process has threads (the connection pool's), and a fork
    # would copy their locks in whatever state they are.
    pool = ProcessPoolExecutor(
        workers,
        mp_context=multiprocessing.get_context("spawn"),
        initializer=_start_worker,
        initargs=(dict(env),),
    )
    try:
        yield lambda streams, stored: pool.submit(_build_in_worker, streams, stored)
    except BaseException:
        pool.shutdown(wait=True, cancel_futures=True)
        raise
    pool.shutdown(wait=True)


@dataclass
class _Batch:
    streams: list[_Stream]
    stored: set[str]  # its lines' event ids stored when it was looked up
    looked_up_after: int  # how many batches this run had stored by then
    outcomes: Future[list[Outcome]]


class Importer:
    def __init__(
        self, records: Records, *, batch_events: int = BATCH_EVENTS, workers: int = 0
    ) -> None:
        self.records = records
        self.batch_events = batch_events
        self.workers = workers
        self.builder = StreamBuilder(records.ledger.app.mapper)
        self._saved = 0  # batches stored by this run
        self._saved_ids: dict[int, set[str]] = {}  # event ids each recent batch stored

    def run(self, path: Path, progress: Callable[[int], None] = lambda _: None) -> ImportReport:
        """Import a file; refused streams are reported, everything else is stored once."""
        report = ImportReport()
        window: deque[_Batch] = deque()

        def store_oldest() -> None:
            self._store(window.popleft(), report)
            progress(report.lines)

        builders = _builders(self.workers, self.builder, self.records.ledger.app.env)
        with _open(path) as handle, builders as submit:
            try:
                for streams in _batches(_streams(handle), self.batch_events):
                    window.append(self._submit(streams, submit))
                    while len(window) > self.workers:
                        store_oldest()
            except ImportRefused:
                # A line that is not an event line stops the import there; what was read
                # before it is stored, as when batches were built one at a time.
                while window:
                    store_oldest()
                raise
            while window:
                store_oldest()
        return report

    def _stored_ids(self, streams: list[_Stream]) -> set[str]:
        # Canonical UUIDs only, so one array literal is safe, and cheaper to send than a list
        # adapted element by element.
        ids = "{" + ",".join(i for s in streams for i in s.event_ids if i is not None) + "}"
        with self.records.ledger.datastore.transaction() as curs:
            curs.execute(
                "SELECT event_id::text FROM event_index WHERE event_id = ANY(%s::uuid[])", (ids,)
            )
            return {row["event_id"] for row in curs.fetchall()}

    def _submit(self, streams: list[_Stream], submit: Submit) -> _Batch:
        stored = self._stored_ids(streams)
        return _Batch(streams, stored, self._saved, submit(streams, stored))

    def _stored_since(self, batch: _Batch) -> set[str]:
        since: set[str] = set()
        for number in range(batch.looked_up_after, self._saved):
            since |= self._saved_ids[number]
        return since

    def _store(self, batch: _Batch, report: ImportReport) -> None:
        stored, outcomes = batch.stored, batch.outcomes.result()
        since = self._stored_since(batch)
        if since and any(i in since for s in batch.streams for i in s.event_ids):
            # Lines an earlier batch stored after this one was looked up: build it again.
            stored = self._stored_ids(batch.streams)
            outcomes = self.builder.build_batch(batch.streams, stored)
        built: list[tuple[_Stream, _Built]] = []
        for stream, outcome in zip(batch.streams, outcomes, strict=True):
            report.lines += len(stream.texts)
            if isinstance(outcome, str):
                report.refused.append(outcome)
            elif outcome is None:
                report.skipped += len(stream.texts)
            else:
                report.skipped += len(stream.texts) - len(outcome.indexed)
                built.append((stream, outcome))
        saved = self._save(built, report)
        self._saved_ids[self._saved] = {i for s in saved for i in s.event_ids if i is not None}
        self._saved += 1
        # A batch waits behind at most `workers` others: older entries are never asked for.
        self._saved_ids.pop(self._saved - self.workers - 2, None)

    def _save(self, built: list[tuple[_Stream, _Built]], report: ImportReport) -> list[_Stream]:
        """Store the built streams in one transaction, or one by one if that one fails."""
        if not built:
            return []
        try:
            self._append([b for _, b in built])
        except IntegrityError:
            # Something in the batch is held already (an identifier, most likely): store
            # the streams one by one, so only the one that conflicts is refused.
            saved = []
            for stream, item in built:
                try:
                    self._append([item])
                except IntegrityError:
                    report.refused.append(
                        f"line {stream.first_line}: nominal {stream.nominal_id} conflicts "
                        "with a stored record (an identifier already held, or an event id "
                        "used elsewhere)"
                    )
                    continue
                report.stored += len(item.indexed)
                report.nominals += 1
                saved.append(stream)
            return saved
        report.stored += sum(len(b.indexed) for _, b in built)
        report.nominals += len(built)
        return [stream for stream, _ in built]

    def _append(self, built: list[_Built]) -> None:
        bulk_append(
            self.records.ledger.app,
            [e for b in built for e in b.events],
            [e for b in built for e in b.indexed],
            [c for b in built for c in b.claims],
            [b.partners for b in built if b.partners is not None],
        )
