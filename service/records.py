"""The write side of the application layer: registering nominals and posting events.

One `Records` per process, built at start-up on the process's `Ledger`. Its methods take a
Principal and plain values and return plain data; every refusal is an exception from this
module, `access`, or the domain, which the API maps to problem+json in one table. Reading
is `service/reading.py`.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any
from uuid import UUID, uuid5

from eventsourcing.persistence import IntegrityError

from domain.calendar import london_date
from domain.chain import canonical_json
from domain.errors import DomainError
from domain.identifiers import normalised_identifiers
from domain.nominal import Nominal
from service import access
from service.access import Forbidden, NotFound
from service.auth import Principal
from service.ledger import Ledger
from service.store.committer import awaited
from service.store.eventstore import (
    IdentifierClaim,
    IndexedEvent,
    identifier_rows,
    partner_sets,
    read_stream,
)

log = logging.getLogger(__name__)

# Registration ids are derived from the client's event_id, so two concurrent attempts
# at the same registration collide on the stream itself and only one can be stored.
NOMINAL_NAMESPACE = UUID("6b1f4a64-4c55-4d5e-9a4e-2f8f3f1c8a11")
MAX_ATTEMPTS = 50
BUSY_AFTER_SECONDS = 10.0  # a post waiting this long for its record's turn is told to retry

# Events that claim an identifier: judged against the identifier index before they are
# stored, in a worker thread (the index is asked; a refused claim is logged, docs/adr/019).
CLAIMING = frozenset({"IdentifierAdded", "IdentifierCorrected"})


class PreconditionFailed(Exception):
    """If-Match named a version that is no longer the latest."""


class Conflict(Exception):
    """The request contradicts what is stored (an event_id reused, an identifier held)."""

    def __init__(self, message: str, *, existing: str | None = None) -> None:
        super().__init__(message)
        self.existing = existing


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
    """A stored event as the API shows it (docs/design.md#a-stored-event)."""
    return {"position": position} | event.envelope()


class Records:
    """Registering nominals and posting events: the write side of the application layer."""

    def __init__(self, ledger: Ledger) -> None:
        self.ledger = ledger

    def register(
        self, principal: Principal, event_id: UUID, occurred_at: str | None, payload: dict[str, Any]
    ) -> Posted:
        """Register a new nominal: identifiers unique, the registering agency its first partner.

        The whole body is judged before any identifier is looked up, so whether an identifier
        is held (409) is never told apart from a body refused on its own (422)."""
        access.require_may_register(principal)
        now = self.ledger.now()
        payload = dict(payload)
        today = london_date(now)
        payload["identifiers"] = normalised_identifiers(payload.get("identifiers"), today)
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
            nominal = Nominal.register(
                nominal_id=nominal_id,
                event_id=str(event_id),
                occurred_at=occurred,
                recorded_at=now,
                recorded_by=_recorded_by(principal),
                payload=payload,
            )
            self._refuse_held_identifiers(principal, claims, "POST /v1/nominals")
            stored = self._save(nominal, digest, principal)
            if stored is not None:
                self.ledger.cache.put(nominal)
                return stored
            now = self.ledger.now()
        raise Conflict("the record is busy: try again")

    def post_event(
        self, principal: Principal, nominal_id: UUID, new: NewEvent, if_match: int | None
    ) -> Posted:
        """Append one event to a nominal's record, at most once per event_id."""
        access.require_scope(principal, "records:write")
        digest = request_digest(principal, nominal_id, new.type, new.occurred_at, new.payload)
        with self.ledger.locks.hold(nominal_id, timeout=BUSY_AFTER_SECONDS) as my_turn:
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
        deciding it (ADR 011). A retry of a post this process's cached record already holds is
        answered from the event index, waiting neither for the record's turn nor for a
        commit. Anything else is handed whole to `post_event` in a worker thread, which
        decides it afresh on the stored record, and finds a stored retry."""
        access.require_scope(principal, "records:write")
        if self.ledger.cache.holds_event(nominal_id, str(new.event_id)):
            replayed = await self._replayed(principal, nominal_id, new)
            if replayed is not None:
                return replayed
        with self.ledger.locks.hold(nominal_id, timeout=0) as my_turn:
            usual = my_turn and new.type not in CLAIMING
            nominal = self.ledger.cache.take(nominal_id) if usual else None
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
                position = await awaited(self.ledger.committer.submit(nominal, indexed))
                if position is not None:
                    self.ledger.cache.put(nominal)
                    return Posted(stored_event(position, event), created=True)
        return await self.ledger.in_thread(self.post_event, principal, nominal_id, new, if_match)

    async def _replayed(
        self, principal: Principal, nominal_id: UUID, new: NewEvent
    ) -> Posted | None:
        """The stored event a retried post names, as `_already_stored` answers it (the same
        refusals: another body, another record, a stranger), or None to decide it afresh."""
        found = await awaited(self.ledger.replays.submit(new.event_id))
        if found is None or found.event.originator_id != nominal_id:
            return None  # not stored after all, or under another record: the long way
        digest = request_digest(principal, nominal_id, new.type, new.occurred_at, new.payload)
        if found.request_digest != digest:
            return None  # another body: refused the long way, with its own answer
        return Posted(stored_event(found.position, found.event), created=False)

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
            nominal = self.ledger.load(nominal_id, current=current)
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
            if new.type in CLAIMING:
                self._refuse_held_identifiers(
                    principal, identifier_rows([nominal])[1], "POST /v1/nominals/{id}/events"
                )
            stored = self._save(nominal, digest, principal)
            if stored is not None:
                self.ledger.cache.put(nominal)
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
        if not access.has_standing(principal, nominal, new.type):
            raise NotFound("no such record")
        assert nominal is not None
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
            recorded_at=self.ledger.now(),
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
            nominal = self.ledger.load(nominal_id)
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
            self._refuse_held_identifiers(
                principal,
                identifier_rows([nominal])[1],
                "POST /v1/inbound/hmpps-domain-events",
            )
            stored = self._save_pending(nominal, digests, principal)
            if stored is not None:
                self.ledger.cache.put(nominal)
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
        releases, claims = identifier_rows([nominal])
        try:
            recordings = self.ledger.app.save(
                nominal,
                indexed_events=indexed,
                identifier_releases=releases,
                identifier_claims=claims,
                partner_sets=partner_sets([nominal]),
            )
        except IntegrityError:
            return None
        return [
            Posted(stored_event(r.notification.id, e), created=True)
            for r, e in zip(recordings, events, strict=True)
        ]

    def _save(self, nominal: Nominal, digest: str, principal: Principal) -> Posted | None:
        """Store the pending event with its index rows (identifiers claimed and released
        included); None when another writer got there first."""
        event, indexed = _indexed(nominal, digest, principal)
        position = self.ledger.committer.save(nominal, indexed)
        if position is None:
            return None
        return Posted(stored_event(position, event), created=True)

    def _already_stored(
        self, event_id: UUID, digest: str | None, poster: Principal | None = None
    ) -> Posted | None:
        """The stored event of this id; Conflict if its body differs (None: don't compare),
        or NotFound when `poster` is given and is no partner of the record holding it: that
        the event exists is not for a stranger to learn (hardening point 10)."""
        with self.ledger.datastore.transaction() as curs:
            curs.execute(
                "SELECT nominal_id, version, request_digest FROM event_index WHERE event_id = %s",
                (event_id,),
            )
            row = curs.fetchone()
        if row is None:
            return None
        if digest is not None and row["request_digest"] != digest:
            if poster is not None:
                holder = self.ledger.load(row["nominal_id"], read_only=True)
                if holder is None or not holder.is_partner(poster.agency):
                    raise NotFound("no such record")
            raise Conflict(f"event {event_id} is already stored with a different body")
        for position, event in read_stream(
            self.ledger.app, row["nominal_id"], after_version=row["version"] - 1, limit=1
        ):
            return Posted(stored_event(position, event), created=False)
        raise AssertionError("an indexed event is missing from its stream")

    def _refuse_held_identifiers(
        self, principal: Principal, claims: Sequence[IdentifierClaim], route: str
    ) -> None:
        """Conflict if another record holds one of the identifiers: named only to its current
        partners, and the refused claim logged against it (who tried to claim whose
        identifier is a consultation of that record)."""
        for claim in claims:
            holder = self.ledger.holder(claim.kind, claim.value)
            if holder is not None and holder != claim.nominal_id:
                existing = self.ledger.load(holder, read_only=True)
                partnered = existing is not None and existing.is_partner(principal.agency)
                reveal = str(holder) if partnered and principal.has("records:read") else None
                self.ledger.log(principal, holder, route, "claim-identifier", "refused", None)
                raise Conflict(
                    f"the {claim.kind.upper()} {claim.value} is already held by another record",
                    existing=reveal,
                )


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
    "NewEvent",
    "NotFound",
    "Posted",
    "PreconditionFailed",
    "Records",
]
