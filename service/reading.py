"""The read side of the application layer: a record's view, look-up by identifier, history.

Every read is decided by one rule (`access.read_outcome`: partners read their records,
auditors read any with a reason, strangers get the same NotFound as for a missing record)
and logged in the consultation log before its data is handed over (Data Protection Act
2018, s. 62). A restricted entry is shown whole only to the agency that posted it, the
agencies it names and auditors who say why (`access.sees_restricted`), each such reading
named in the log (docs/adr/021); other readers see a placeholder.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Iterator
from datetime import date
from typing import Any
from uuid import UUID

import orjson

from domain.calendar import london_date
from domain.identifiers import normalise_field
from domain.nominal import Nominal
from domain.nominal.entries import is_restricted, redacted
from service import access
from service.access import JustificationRequired, NotFound
from service.auth import Principal
from service.consultation import Consultation
from service.ledger import Ledger
from service.records import stored_event
from service.store.committer import awaited
from service.store.eventstore import read_stream

VIEW_ROUTE = "GET /v1/nominals/{id}"  # as the consultation log names it


class Reading:
    def __init__(self, ledger: Ledger) -> None:
        self.ledger = ledger

    def readable(
        self,
        principal: Principal,
        nominal_id: UUID,
        *,
        route: str,
        justification: str | None,
        action: str = "read",
        shows_entries: bool = False,
    ) -> Nominal:
        """The nominal if the caller may read it, the read logged; NotFound for strangers.

        With `shows_entries` (a read of the current view), the restricted entries the caller
        reads whole are named in the log too (docs/adr/021).

        Every reader shares it: the caller must not change it. A cached copy is decided on
        as `read_view` does, asking once (ADR 011); a record not cached or moved on is
        brought up to date first."""
        ledger = self.ledger
        nominal = ledger.cache.shared(nominal_id)
        consultation = _on_copy(principal, nominal, route, action, justification, shows_entries)
        if consultation is not None and ledger.consultations.append(consultation):
            return _answered(nominal, consultation)
        nominal = ledger.load(nominal_id, read_only=True)
        outcome = access.read_outcome(principal, _partners(nominal), justification)
        if outcome is not None:
            entries = (
                _read_whole(principal, nominal, justification)
                if shows_entries and outcome == "allowed" and nominal is not None
                else ()
            )
            ledger.log(principal, nominal_id, route, action, outcome, justification, entries)
        if nominal is None or outcome != "allowed":
            raise NotFound("no such record")
        return nominal

    def require_readable(
        self, principal: Principal, nominal_id: UUID, *, route: str, justification: str | None
    ) -> None:
        """`readable` without rebuilding the record: partnering from its partner index.

        For reads that need only the right to read (a page of a long history), so their cost
        and memory do not grow with the record (docs/adr/010)."""
        partners = self.ledger.partners(nominal_id)
        if partners is None:  # no index rows (written before the index existed): rebuild
            self.readable(principal, nominal_id, route=route, justification=justification)
            return
        outcome = access.read_outcome(principal, partners, justification)
        assert outcome is not None  # there is a record to log it against
        self.ledger.log(principal, nominal_id, route, "read", outcome, justification)
        if outcome != "allowed":
            raise NotFound("no such record")

    def view(
        self, principal: Principal, nominal_id: UUID, justification: str | None
    ) -> dict[str, Any]:
        """The current record, consistent with every write acknowledged before this call;
        orders in force today, restricted entries the caller may not read as placeholders."""
        nominal = self._viewed(principal, nominal_id, justification)
        hidden = access.hidden_entries(principal, nominal, justification)
        return served_view(nominal, self._today(), hidden)

    def view_json(
        self, principal: Principal, nominal_id: UUID, justification: str | None
    ) -> tuple[int, bytes]:
        """`view` as JSON, with its version: rendered once per version and kind of reader,
        and kept in the cache, as every such reader of a version is shown the same view."""
        nominal = self._viewed(principal, nominal_id, justification)
        return nominal.version, self._rendered(principal, nominal, justification)

    def _rendered(self, principal: Principal, nominal: Nominal, justification: str | None) -> bytes:
        today = self._today()
        hidden = access.hidden_entries(principal, nominal, justification)
        return self.ledger.cache.rendered(
            nominal, lambda n: _view_json(n, today, hidden), key=(today, hidden)
        )

    def _today(self) -> date:
        """The day whose orders a view shows in force (London)."""
        return london_date(self.ledger.now())

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
        ledger = self.ledger
        nominal = ledger.cache.shared(nominal_id)
        consultation = _on_copy(principal, nominal, VIEW_ROUTE, "read", justification, True)
        if consultation is not None and await awaited(ledger.consultations.submit(consultation)):
            viewed = _answered(nominal, consultation)
            return viewed.version, self._rendered(principal, viewed, justification)
        return await ledger.in_thread(self.view_json, principal, nominal_id, justification)

    def _viewed(self, principal: Principal, nominal_id: UUID, justification: str | None) -> Nominal:
        access.require_scope(principal, "records:read", "audit:read")
        return self.readable(
            principal,
            nominal_id,
            route=VIEW_ROUTE,
            justification=justification,
            shows_entries=True,
        )

    def lookup(
        self, principal: Principal, identifiers: dict[str, str], justification: str | None
    ) -> list[dict[str, Any]]:
        """Records holding every given identifier, among those the caller may read.

        An auditor's look-up is a search of every record: it says why before anything is
        looked up, so the refusal is the same whether or not an identifier is held."""
        access.require_scope(principal, "records:read", "audit:read")
        if principal.has("audit:read"):
            access.require_justification(justification)
        ledger = self.ledger
        today = london_date(ledger.now())
        holders: set[UUID] | None = None
        for kind, raw in identifiers.items():
            holder = ledger.holder(kind, normalise_field(kind, raw, today))
            found = {holder} if holder is not None else set()
            holders = found if holders is None else holders & found
        results = []
        for nominal_id in sorted(holders or set()):
            nominal = ledger.load(nominal_id, read_only=True)
            if nominal is None:
                continue
            outcome = access.read_outcome(principal, nominal.partners, justification)
            assert outcome is not None  # there is a record to log it against
            ledger.log(principal, nominal_id, "GET /v1/nominals", "lookup", outcome, justification)
            if outcome == "allowed":
                results.append(_summary(nominal))
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
        """The record's events in order, from a version, at most `limit` of them; a
        restricted entry the caller may not read shows as a placeholder (its type, date and
        posting agency), and one it reads whole is named in the consultation log first."""
        access.require_scope(principal, "records:read", "audit:read")
        route = "GET /v1/nominals/{id}/history"
        self.require_readable(principal, nominal_id, route=route, justification=justification)
        page = [
            stored_event(position, event)
            for position, event in read_stream(
                self.ledger.app, nominal_id, after_version=from_version - 1, limit=limit
            )
        ]
        read_whole = []
        for i, event in enumerate(page):
            if is_restricted(event):
                poster, named = event["recorded_by"]["agency"], event["payload"]["restricted_to"]
                if access.sees_restricted(principal, justification, poster, named):
                    read_whole.append(event["event_id"])
                else:
                    page[i] = redacted(event)
        if read_whole:
            self.ledger.log_restricted_reads(
                principal, nominal_id, route, justification, read_whole
            )
        return iter(page)


def _partners(nominal: Nominal | None) -> Any:
    return nominal.partners if nominal is not None else None


def _on_copy(
    principal: Principal,
    nominal: Nominal | None,
    route: str,
    action: str,
    justification: str | None,
    shows_entries: bool = False,
) -> Consultation | None:
    """The consultation row of a read decided on a cached copy, naming the version it saw
    (written only if the record still stands there), and the restricted entries it shows
    whole; None when there is no copy, or when an auditor gave no reason: that refusal, or
    not, is decided on the record as it stands."""
    if nominal is None:
        return None
    try:
        outcome = access.read_outcome(principal, nominal.partners, justification)
    except JustificationRequired:
        return None
    assert outcome is not None  # there is a record to log it against
    entries = (
        _read_whole(principal, nominal, justification)
        if shows_entries and outcome == "allowed"
        else ()
    )
    return Consultation(
        principal,
        nominal.id,
        route,
        action,
        outcome,
        justification,
        seen_version=nominal.version,
        entries=entries,
    )


def _read_whole(
    principal: Principal, nominal: Nominal, justification: str | None
) -> tuple[str, ...]:
    """The restricted entries of the record's view that the caller reads whole."""
    restricted = nominal.restricted_entries()
    if not restricted:
        return ()
    return tuple(sorted(restricted - access.hidden_entries(principal, nominal, justification)))


def _answered(nominal: Nominal | None, consultation: Consultation) -> Nominal:
    """The copy a logged read was decided on; NotFound unless it was allowed."""
    if nominal is None or consultation.outcome != "allowed":
        raise NotFound("no such record")
    return nominal


def served_view(
    nominal: Nominal, today: date | None = None, hidden: Collection[str] = ()
) -> dict[str, Any]:
    """The record's view as the service serves it: with the link to the whole history that
    its bounded lists point to; orders as on `today`, `hidden` entries as placeholders."""
    return nominal.view(today, hidden) | {"history": f"/v1/nominals/{nominal.id}/history"}


def _view_json(nominal: Nominal, today: date | None = None, hidden: Collection[str] = ()) -> bytes:
    view = served_view(nominal, today, hidden)
    try:
        return orjson.dumps(view)
    except orjson.JSONEncodeError:  # an integer beyond 64 bits, which only json writes
        return json.dumps(view, ensure_ascii=False, separators=(",", ":")).encode()


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
