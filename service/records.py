"""The application layer: registering nominals, posting events, reading records.

One `Records` object per process, built at start-up. Its methods take a Principal and
plain values and return plain data; every refusal is an exception from this module,
`access`, or the domain, which the API maps to problem+json in one table.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import json
import logging
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any, TypeVar
from uuid import UUID, uuid5

import orjson
from eventsourcing.application import AggregateNotFoundError
from eventsourcing.persistence import IntegrityError

from domain.calendar import london_date
from domain.chain import canonical_json
from domain.errors import DomainError, InvalidValue
from domain.identifiers import normalise_identifier
from domain.nominal import Nominal
from service import access
from service.access import Forbidden, NotFound
from service.auth import Principal
from service.consultation import Consultation, ConsultationLog
from service.runtime.database import Database
from service.runtime.settings import Settings, SettingsError
from service.store.cache import RecordCache, RecordLocks
from service.store.committer import Batched, GroupCommitter, awaited
from service.store.eventstore import (
    IdentifierClaim,
    IndexedEvent,
    Nominals,
    act_as,
    moved_on,
    partner_sets,
    read_newer,
    read_stream,
    replayed,
    store_env,
)

log = logging.getLogger(__name__)
R = TypeVar("R")

# Registration ids are derived from the client's event_id, so two concurrent attempts
# at the same registration collide on the stream itself and only one can be stored.
NOMINAL_NAMESPACE = UUID("6b1f4a64-4c55-4d5e-9a4e-2f8f3f1c8a11")
MAX_ATTEMPTS = 50
BUSY_AFTER_SECONDS = 10.0  # a post waiting this long for its record's turn is told to retry
MIN_JUSTIFICATION = 10
# Threads for what a request cannot do on the event loop: rebuild a record, wait its turn.
BLOCKING_THREADS = 40
VIEW_ROUTE = "GET /v1/nominals/{id}"  # as the consultation log names it


class PreconditionFailed(Exception):
    """If-Match named a version that is no longer the latest."""


class Conflict(Exception):
    """The request contradicts what is stored (an event_id reused, an identifier held)."""

    def __init__(self, message: str, *, existing: str | None = None) -> None:
        super().__init__(message)
        self.existing = existing


class JustificationRequired(Exception):
    """An auditor read without saying why."""


@dataclass(frozen=True)
class NewEvent:
    event_id: UUID
    type: str
    occurred_at: str
    payload: dict[str, Any]


@dataclass(frozen=True)
class Posted:
    """A stored event, and whether this request stored it (201) or found it (200)."""

    event: dict[str, Any]
    created: bool

    @property
    def nominal_id(self) -> str:
        return str(self.event["nominal_id"])

    @property
    def version(self) -> int:
        return int(self.event["version"])


def stored_event(position: int, event: Nominal.Event) -> dict[str, Any]:
    """A stored event as the API shows it (DESIGN.md section 5)."""
    return {"position": position} | event.envelope()


class Records:
    def __init__(
        self,
        settings: Settings,
        db: Database,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        env = store_env(
            db.eventsourcing_env(),
            pool_size=settings.pool_size,
            cipher_key=settings.cipher_key,
            statement_timeout_ms=settings.statement_timeout_ms,
        )
        self.app = Nominals(env=env)
        act_as(self.app, settings.db_role)
        self.datastore = self.app.recorder.datastore  # type: ignore[attr-defined]
        self.consultations = ConsultationLog(self.datastore, functools.partial(moved_on, self.app))
        self.committer = GroupCommitter(self.app)
        # A cached record is brought up to date before it is read: the reads waiting ask the
        # store together, in one query (docs/adr/011).
        self.catch_up = Batched("catch-up", functools.partial(read_newer, self.app), max_batch=128)
        self.cache = RecordCache(settings.aggregate_cache)
        self.locks = RecordLocks()
        self._clock = clock
        self._blocking = ThreadPoolExecutor(BLOCKING_THREADS, thread_name_prefix="records")

    def close(self) -> None:
        self._blocking.shutdown(cancel_futures=True)  # what runs there may still need a save
        self.committer.close()
        self.catch_up.close()
        self.consultations.close()
        self.app.close()

    def check_cipher(self) -> None:
        """Refuse to start when the configured key cannot read what is stored."""
        notifications = self.app.recorder.select_notifications(start=None, limit=1)
        if not notifications:
            return
        try:
            self.app.mapper.to_domain_event(notifications[0])
        except Exception:  # noqa: BLE001 - any failure to decode means the wrong key
            raise SettingsError(
                "MAPPA_CIPHER_KEY: the stored events cannot be read with this key "
                "(wrong key, or a key set or unset since they were written)"
            ) from None

    def now(self) -> datetime:
        return self._clock()

    # -- writing ---------------------------------------------------------------------------

    def register(
        self, principal: Principal, event_id: UUID, occurred_at: str | None, payload: dict[str, Any]
    ) -> Posted:
        """Register a new nominal: identifiers unique, the registering agency its first partner."""
        access.require_may_register(principal)
        now = self.now()
        payload = dict(payload)
        payload["identifiers"] = normalised_identifiers(payload.get("identifiers"), now)
        nominal_id = uuid5(NOMINAL_NAMESPACE, str(event_id))
        occurred = occurred_at or london_date(now).isoformat()
        digest = request_digest(principal, nominal_id, "NominalRegistered", occurred_at, payload)
        claims = [
            IdentifierClaim(kind, value, nominal_id)
            for kind, value in payload["identifiers"].items()
        ]
        for _ in range(MAX_ATTEMPTS):
            found = self._already_stored(event_id, digest)
            if found is not None:
                return found
            self._refuse_held_identifiers(principal, claims)
            nominal = Nominal.register(
                nominal_id=nominal_id,
                event_id=str(event_id),
                occurred_at=occurred,
                recorded_at=now,
                recorded_by=_recorded_by(principal),
                payload=payload,
            )
            stored = self._save(nominal, digest, principal, claims)
            if stored is not None:
                self.cache.put(nominal)
                return stored
            now = self.now()
        raise Conflict("the record is busy: try again")

    def post_event(
        self, principal: Principal, nominal_id: UUID, new: NewEvent, if_match: int | None
    ) -> Posted:
        """Append one event to a nominal's record, at most once per event_id."""
        access.require_scope(principal, "records:write")
        digest = request_digest(principal, nominal_id, new.type, new.occurred_at, new.payload)
        with self.locks.hold(nominal_id, timeout=BUSY_AFTER_SECONDS) as my_turn:
            if not my_turn:
                raise Conflict("the record is busy: try again")
            return self._post_event(principal, nominal_id, new, if_match, digest)

    async def post(
        self, principal: Principal, nominal_id: UUID, new: NewEvent, if_match: int | None
    ) -> Posted:
        """`post_event` for the event loop, with the same answers.

        The usual post (its record cached here, no other post of this process at it, the
        cached record allowing it, no other writer first) is decided on the loop and waits
        there for its group commit: the hop to a worker thread and back cost more CPU than
        deciding it (ADR 011). Anything else is handed whole to `post_event` in a worker
        thread, which decides it afresh on the stored record, and finds a stored retry."""
        access.require_scope(principal, "records:write")
        with self.locks.hold(nominal_id, timeout=0) as my_turn:
            nominal = self.cache.take(nominal_id) if my_turn else None
            if nominal is not None:
                try:
                    self._decide(principal, nominal, new, if_match)
                except (NotFound, Forbidden, PreconditionFailed, DomainError):
                    nominal = None  # perhaps refused on an old state, or a stored retry
            if nominal is not None:
                digest = request_digest(
                    principal, nominal_id, new.type, new.occurred_at, new.payload
                )
                event, indexed = _indexed(nominal, digest, principal)
                position = await awaited(self.committer.submit(nominal, indexed, []))
                if position is not None:
                    self.cache.put(nominal)
                    return Posted(stored_event(position, event), created=True)
        return await self._in_thread(self.post_event, principal, nominal_id, new, if_match)

    async def _in_thread(self, work: Callable[..., R], *args: Any) -> R:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._blocking, functools.partial(work, *args))

    def _post_event(
        self,
        principal: Principal,
        nominal_id: UUID,
        new: NewEvent,
        if_match: int | None,
        digest: str,
    ) -> Posted:
        # Optimistic, twice over. The first attempt decides on the cached record as it is:
        # if another writer has stored an event since, the save fails on the taken version.
        # The event index is asked only when something refuses: a retry of a stored post
        # fails here (412, a broken rule, a partnering since ended) or at the save (its
        # event_id is in the unique index), and then finds its event.
        current = False
        for _ in range(MAX_ATTEMPTS):
            nominal = self._load(nominal_id, current=current)
            try:
                self._decide(principal, nominal, new, if_match)
            except (NotFound, Forbidden, PreconditionFailed, DomainError):
                if not current:
                    current = True  # refused on what may be an old state: decide again
                    continue
                found = self._already_stored(new.event_id, digest, principal)
                if found is not None:
                    return found
                raise
            assert nominal is not None
            stored = self._save(nominal, digest, principal, [])
            if stored is not None:
                self.cache.put(nominal)
                return stored
            current = True
            found = self._already_stored(new.event_id, digest, principal)
            if found is not None:
                return found
        raise Conflict("the record is busy: try again")

    def _decide(
        self, principal: Principal, nominal: Nominal | None, new: NewEvent, if_match: int | None
    ) -> None:
        """The new event applied to the nominal, or the refusal the post gets."""
        if nominal is None or not nominal.is_partner(principal.agency):
            raise NotFound("no such record")
        access.require_may_post(principal, nominal, new.type, new.payload)
        if if_match is not None and if_match != nominal.version:
            raise PreconditionFailed(f"the record is at version {nominal.version}, not {if_match}")
        self._record(principal, nominal, new)

    def _record(self, principal: Principal, nominal: Nominal, new: NewEvent) -> None:
        """The new event on the nominal, with the fields the server owns."""
        nominal.record(
            new.type,
            event_id=str(new.event_id),
            occurred_at=new.occurred_at,
            recorded_at=self.now(),
            recorded_by=_recorded_by(principal),
            payload=new.payload,
        )

    def apply_inbound(
        self,
        principal: Principal,
        nominal_id: UUID,
        seen: Sequence[UUID],
        decide: Callable[[Nominal], Sequence[NewEvent]],
    ) -> list[Posted]:
        """Apply what a national integration announced to the record that holds the person.

        No partnering is needed: `inbound:hmpps` is granted only to the national probation
        and prison integration clients (docs/adr/007-integrations.md). Everything else is
        as for any post: the access table by agency type, the aggregate's invariants, the
        event index. If any event id in `seen` is stored, the message was applied before
        and its stored events come back; otherwise `decide` says, from the record as it
        stands, which events to append, and they are stored together or not at all.
        """
        access.require_inbound_client(principal)
        for _ in range(MAX_ATTEMPTS):
            # Load first, then look for the message's events: whatever the loaded record
            # already shows is then also in the index, so a concurrent delivery of the same
            # message is reported as applied before, not judged as "no change".
            nominal = self._load(nominal_id)
            if nominal is None:
                raise NotFound("no such record")
            found = [p for p in (self._already_stored(i, None) for i in seen) if p is not None]
            if found:
                return found
            digests = []
            for new in decide(nominal):
                access.require_may_post(principal, nominal, new.type, new.payload)
                self._record(principal, nominal, new)
                digests.append(
                    request_digest(principal, nominal_id, new.type, new.occurred_at, new.payload)
                )
            if not digests:
                return []
            stored = self._save_pending(nominal, digests, principal)
            if stored is not None:
                self.cache.put(nominal)
                return stored
        raise Conflict("the record is busy: try again")

    def _save_pending(
        self, nominal: Nominal, digests: list[str], principal: Principal
    ) -> list[Posted] | None:
        """Store every pending event with its index row in one transaction; None on a race."""
        events = [e for e in nominal.pending_events if isinstance(e, Nominal.Event)]
        assert len(events) == len(digests) == len(nominal.pending_events)
        indexed = [
            IndexedEvent(
                event_id=UUID(e.event_id),
                nominal_id=nominal.id,
                version=e.originator_version,
                request_digest=digest,
                agency=principal.agency,
            )
            for e, digest in zip(events, digests, strict=True)
        ]
        try:
            recordings = self.app.save(
                nominal, indexed_events=indexed, partner_sets=partner_sets([nominal])
            )
        except IntegrityError:
            return None
        return [
            Posted(stored_event(r.notification.id, e), created=True)
            for r, e in zip(recordings, events, strict=True)
        ]

    def holder_of(self, kind: str, value: str) -> UUID | None:
        """The nominal holding a normalised identifier, for the service's own use (no read)."""
        return self._holder(kind, value)

    def _save(
        self, nominal: Nominal, digest: str, principal: Principal, claims: list[IdentifierClaim]
    ) -> Posted | None:
        """Store the pending event with its index rows; None when another writer got there first."""
        event, indexed = _indexed(nominal, digest, principal)
        position = self.committer.save(nominal, indexed, claims)
        if position is None:
            return None
        return Posted(stored_event(position, event), created=True)

    def _already_stored(
        self, event_id: UUID, digest: str | None, poster: Principal | None = None
    ) -> Posted | None:
        """The stored event of this id; Conflict if its body differs (None: don't compare),
        or NotFound when `poster` is given and is no partner of the record holding it: that
        the event exists is not for a stranger to learn (issue 16)."""
        with self.datastore.transaction() as curs:
            curs.execute(
                "SELECT nominal_id, version, request_digest FROM event_index WHERE event_id = %s",
                (event_id,),
            )
            row = curs.fetchone()
        if row is None:
            return None
        if digest is not None and row["request_digest"] != digest:
            if poster is not None:
                holder = self._load(row["nominal_id"], read_only=True)
                if holder is None or not holder.is_partner(poster.agency):
                    raise NotFound("no such record")
            raise Conflict(f"event {event_id} is already stored with a different body")
        for position, event in read_stream(
            self.app, row["nominal_id"], after_version=row["version"] - 1, limit=1
        ):
            return Posted(stored_event(position, event), created=False)
        raise AssertionError("an indexed event is missing from its stream")

    def _refuse_held_identifiers(self, principal: Principal, claims: list[IdentifierClaim]) -> None:
        for claim in claims:
            holder = self._holder(claim.kind, claim.value)
            if holder is not None and holder != claim.nominal_id:
                existing = self._load(holder, read_only=True)
                reveal = str(holder) if access.may_read(principal, existing) else None
                raise Conflict(
                    f"the {claim.kind.upper()} {claim.value} is already held by another record",
                    existing=reveal,
                )

    def _holder(self, kind: str, value: str) -> UUID | None:
        with self.datastore.transaction() as curs:
            curs.execute(
                "SELECT nominal_id FROM nominal_identifiers WHERE kind = %s AND value = %s",
                (kind, value),
            )
            row = curs.fetchone()
        return row["nominal_id"] if row else None

    # -- reading ---------------------------------------------------------------------------

    def _load(
        self,
        nominal_id: UUID,
        version: int | None = None,
        *,
        current: bool = True,
        read_only: bool = False,
    ) -> Nominal | None:
        """The record at `version`, or as it stands now; None if there is no such record.

        A record in the cache is brought up to date with the events stored since its
        version (one query, asked together with other reads), unless `current` is False:
        then it is as this process last saw it, for a post that lets the store refuse it if
        the record has moved on. The caller owns what it is given and puts it back in the
        cache once it has stored what it changed, unless it only reads (`read_only`): then
        it is given the copy every reader shares, and must not change it."""
        if version is not None:
            return self._rebuild(nominal_id, version)
        if read_only:
            return self._shared(nominal_id)
        nominal = self.cache.take(nominal_id)
        if nominal is None:
            return self._rebuild(nominal_id, None)
        if current:
            nominal = _caught_up(nominal, self.catch_up.ask((nominal_id, nominal.version)))
        return nominal

    def _shared(self, nominal_id: UUID) -> Nominal | None:
        """The record as every reader shares it, brought up to date on a copy of its own."""
        nominal = self.cache.shared(nominal_id)
        if nominal is not None:
            newer = self.catch_up.ask((nominal_id, nominal.version))
            if not newer:
                return nominal
            nominal = self.cache.take(nominal_id)
            if nominal is not None:
                nominal = _caught_up(nominal, newer)
        if nominal is None:
            nominal = self._rebuild(nominal_id, None)
        if nominal is not None:
            self.cache.put(nominal, shared=True)
        return nominal

    def _rebuild(self, nominal_id: UUID, version: int | None) -> Nominal | None:
        try:
            nominal: object = self.app.repository.get(
                nominal_id, version=version, projector_func=replayed
            )
        except AggregateNotFoundError:
            return None
        assert isinstance(nominal, Nominal)
        return nominal

    def readable(
        self,
        principal: Principal,
        nominal_id: UUID,
        *,
        route: str,
        justification: str | None,
        action: str = "read",
    ) -> Nominal:
        """The nominal if the caller may read it, the read logged; NotFound for strangers.

        Every reader shares it: the caller must not change it. A cached copy is decided on
        as `read_view` does, asking once (ADR 011); a record not cached or moved on is
        brought up to date first."""
        nominal = self.cache.shared(nominal_id)
        consultation = _on_copy(principal, nominal, route, action, justification)
        if consultation is not None and self.consultations.append(consultation):
            return _answered(nominal, consultation)
        nominal = self._load(nominal_id, read_only=True)
        outcome = _read_outcome(principal, nominal, justification)
        if outcome is not None:
            self._log(principal, nominal_id, route, action, outcome, justification)
        if nominal is None or outcome != "allowed":
            raise NotFound("no such record")
        return nominal

    def require_readable(
        self, principal: Principal, nominal_id: UUID, *, route: str, justification: str | None
    ) -> None:
        """`readable` without rebuilding the record: partnering from its partner index.

        For reads that need only the right to read (a page of a long history), so their cost
        and memory do not grow with the record (docs/adr/010)."""
        partners = self._partners(nominal_id)
        if partners is None:  # no index rows (written before the index existed): rebuild
            self.readable(principal, nominal_id, route=route, justification=justification)
            return
        if principal.has("records:read") and principal.agency in partners:
            self._log(principal, nominal_id, route, "read", "allowed", justification)
            return
        if principal.has("audit:read"):
            _require_justification(justification)
            self._log(principal, nominal_id, route, "read", "allowed", justification)
            return
        self._log(principal, nominal_id, route, "read", "refused", justification)
        raise NotFound("no such record")

    def _partners(self, nominal_id: UUID) -> frozenset[str] | None:
        with self.datastore.transaction() as curs:
            curs.execute("SELECT agency FROM nominal_partners WHERE nominal_id = %s", (nominal_id,))
            rows = curs.fetchall()
        return frozenset(row["agency"] for row in rows) if rows else None

    def view(
        self, principal: Principal, nominal_id: UUID, justification: str | None
    ) -> dict[str, Any]:
        """The current record, consistent with every write acknowledged before this call."""
        return self._viewed(principal, nominal_id, justification).view()

    def view_json(
        self, principal: Principal, nominal_id: UUID, justification: str | None
    ) -> tuple[int, bytes]:
        """`view` as JSON, with its version: rendered once per version and kept in the cache,
        as every reader of a version is shown the same view."""
        nominal = self._viewed(principal, nominal_id, justification)
        return nominal.version, self.cache.rendered(nominal, _view_json)

    async def read_view(
        self, principal: Principal, nominal_id: UUID, justification: str | None
    ) -> tuple[int, bytes]:
        """`view_json` for the event loop, with the same answers, checks and log.

        A read of a cached record is decided on that copy and waits on the loop, without a
        thread of its own, for its consultation row: written only if the record still
        stands at the copy's version, asked in the same transaction (ADR 011). The hop to a
        worker thread and back cost more CPU than the rest of such a read, and asking
        whether the record had moved on as a question of its own cost our part of it about
        as much again. A record not cached or moved on, and an auditor's read without a
        reason (refused, or not, on the record as it stands), are read by `view_json` in a
        worker thread, which logs them."""
        access.require_scope(principal, "records:read", "audit:read")
        nominal = self.cache.shared(nominal_id)
        consultation = _on_copy(principal, nominal, VIEW_ROUTE, "read", justification)
        if consultation is not None and await awaited(self.consultations.submit(consultation)):
            viewed = _answered(nominal, consultation)
            return viewed.version, self.cache.rendered(viewed, _view_json)
        return await self._in_thread(self.view_json, principal, nominal_id, justification)

    def _viewed(self, principal: Principal, nominal_id: UUID, justification: str | None) -> Nominal:
        access.require_scope(principal, "records:read", "audit:read")
        return self.readable(principal, nominal_id, route=VIEW_ROUTE, justification=justification)

    def lookup(
        self, principal: Principal, identifiers: dict[str, str], justification: str | None
    ) -> list[dict[str, Any]]:
        """Records holding every given identifier, among those the caller may read."""
        access.require_scope(principal, "records:read", "audit:read")
        today = london_date(self.now())
        holders: set[UUID] | None = None
        for kind, raw in identifiers.items():
            holder = self._holder(kind, _normalise_field(kind, raw, today))
            found = {holder} if holder is not None else set()
            holders = found if holders is None else holders & found
        results = []
        for nominal_id in sorted(holders or set()):
            nominal = self._load(nominal_id, read_only=True)
            if nominal is None:
                continue
            if _partner_reader(principal, nominal) or principal.has("audit:read"):
                if not _partner_reader(principal, nominal):
                    _require_justification(justification)
                self._log(
                    principal, nominal_id, "GET /v1/nominals", "lookup", "allowed", justification
                )
                results.append(_summary(nominal))
            else:
                self._log(
                    principal, nominal_id, "GET /v1/nominals", "lookup", "refused", justification
                )
        return results

    def history(
        self,
        principal: Principal,
        nominal_id: UUID,
        *,
        from_version: int,
        limit: int,
        justification: str | None,
    ) -> Iterator[dict[str, Any]]:
        """The record's events in order, from a version, at most `limit` of them."""
        access.require_scope(principal, "records:read", "audit:read")
        self.require_readable(
            principal,
            nominal_id,
            route="GET /v1/nominals/{id}/history",
            justification=justification,
        )
        for position, event in read_stream(
            self.app, nominal_id, after_version=from_version - 1, limit=limit
        ):
            yield stored_event(position, event)

    def _log(
        self,
        principal: Principal,
        nominal_id: UUID,
        route: str,
        action: str,
        outcome: str,
        justification: str | None,
    ) -> None:
        self.consultations.append(
            Consultation(principal, nominal_id, route, action, outcome, justification)
        )


def _view_json(nominal: Nominal) -> bytes:
    view = nominal.view()
    try:
        return orjson.dumps(view)
    except orjson.JSONEncodeError:  # an integer beyond 64 bits, which only json writes
        return json.dumps(view, ensure_ascii=False, separators=(",", ":")).encode()


def _caught_up(nominal: Nominal, newer: Sequence[Nominal.Event]) -> Nominal:
    """The record with those of `newer` it lacks applied (a copy taken since the question
    may already hold some)."""
    lacking = [e for e in newer if e.originator_version > nominal.version]
    if not lacking:
        return nominal
    caught_up = replayed(nominal, lacking)
    assert isinstance(caught_up, Nominal)
    return caught_up


def _indexed(
    nominal: Nominal, digest: str, principal: Principal
) -> tuple[Nominal.Event, IndexedEvent]:
    """The record's one pending event, and its row of the event index."""
    event = nominal.pending_events[-1]
    assert isinstance(event, Nominal.Event)
    indexed = IndexedEvent(
        event_id=UUID(event.event_id),
        nominal_id=nominal.id,
        version=event.originator_version,
        request_digest=digest,
        agency=principal.agency,
    )
    return event, indexed


def _read_outcome(
    principal: Principal, nominal: Nominal | None, justification: str | None
) -> str | None:
    """How a read of the record by the caller is logged: "allowed", "refused", or None when
    there is no record to log it against. JustificationRequired for an auditor who gave no
    reason, whether or not the record exists."""
    if _partner_reader(principal, nominal):
        return "allowed"
    if principal.has("audit:read"):
        _require_justification(justification)
        return "allowed" if nominal is not None else None
    return "refused" if nominal is not None else None


def _on_copy(
    principal: Principal,
    nominal: Nominal | None,
    route: str,
    action: str,
    justification: str | None,
) -> Consultation | None:
    """The consultation row of a read decided on a cached copy, naming the version it saw
    (written only if the record still stands there); None when there is no copy, or when
    an auditor gave no reason: that refusal, or not, is decided on the record as it stands."""
    if nominal is None:
        return None
    try:
        outcome = _read_outcome(principal, nominal, justification)
    except JustificationRequired:
        return None
    assert outcome is not None  # there is a record to log it against
    return Consultation(
        principal, nominal.id, route, action, outcome, justification, seen_version=nominal.version
    )


def _answered(nominal: Nominal | None, consultation: Consultation) -> Nominal:
    """The copy a logged read was decided on; NotFound unless it was allowed."""
    if nominal is None or consultation.outcome != "allowed":
        raise NotFound("no such record")
    return nominal


def _partner_reader(principal: Principal, nominal: Nominal | None) -> bool:
    return (
        nominal is not None
        and principal.has("records:read")
        and nominal.is_partner(principal.agency)
    )


def _require_justification(justification: str | None) -> None:
    if not justification or len(justification.strip()) < MIN_JUSTIFICATION:
        raise JustificationRequired(
            f"auditors say why in a Justification header of at least {MIN_JUSTIFICATION} characters"
        )


def normalised_identifiers(raw: Any, now: datetime) -> dict[str, str]:
    """A registration's identifiers in their stored form; InvalidValue names a bad one."""
    if not isinstance(raw, dict) or not raw:
        raise InvalidValue("at least one identifier is required", field="identifiers")
    today = london_date(now)
    out: dict[str, str] = {}
    for kind, value in raw.items():
        if value is None:
            continue
        out[kind] = _normalise_field(kind, value, today)
    return out


def _normalise_field(kind: str, value: Any, today: date) -> str:
    try:
        return normalise_identifier(kind, str(value), today)
    except InvalidValue as e:
        raise InvalidValue(e.message, field=f"identifiers.{kind}") from None


def _summary(nominal: Nominal) -> dict[str, Any]:
    return {
        "nominal_id": str(nominal.id),
        "version": nominal.version,
        "identifiers": dict(nominal.identifiers),
        "name": nominal.name,
        "date_of_birth": nominal.date_of_birth,
        "area": nominal.area,
        "status": "deregistered" if nominal.deregistered else "active",
    }


def _recorded_by(principal: Principal) -> dict[str, str]:
    return {"sub": principal.sub, "agency": principal.agency}


def request_digest(
    principal: Principal, nominal_id: UUID, event_type: str, occurred_at: str | None, payload: Any
) -> str:
    """What makes two posts of one event_id "the same": the same caller agency and body."""
    body = {
        "agency": principal.agency,
        "nominal_id": str(nominal_id),
        "type": event_type,
        "occurred_at": occurred_at,
        "payload": payload,
    }
    return hashlib.sha256(canonical_json(body)).hexdigest()


__all__ = [
    "Conflict",
    "Forbidden",
    "JustificationRequired",
    "NewEvent",
    "NotFound",
    "Posted",
    "PreconditionFailed",
    "Records",
]
