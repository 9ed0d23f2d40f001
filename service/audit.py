"""The auditor's questions: how did the record stand then, was it altered, who consulted it?

Every answer goes through `Reading.readable`, so each is itself a logged consultation
(Data Protection Act 2018, s. 62). Verifying the chain and reading the consultation log
are for auditors (`audit:read`), who always say why (a Justification header), even when
their agency also happens to be a partner of the record.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from domain.calendar import london_date
from service import access
from service.access import NotFound, require_justification
from service.auth import Principal
from service.integrity import Verdict, verify_nominal
from service.reading import Reading, served_view
from service.store.eventstore import read_stream


class Audit:
    def __init__(self, reading: Reading) -> None:
        self.reading = reading
        self.ledger = reading.ledger

    def state_as_of(
        self, principal: Principal, nominal_id: UUID, as_of: datetime, justification: str | None
    ) -> dict[str, Any]:
        """The record as it stood at an instant: the events recorded by then, folded; its
        orders as on that day, restricted entries the caller may not read as placeholders
        (those it reads whole named in the consultation log)."""
        access.require_scope(principal, "records:read", "audit:read")
        route = "GET /v1/nominals/{id}/state"
        self.reading.readable(
            principal,
            nominal_id,
            route=route,
            justification=justification,
            action="read-as-of",
        )
        version = self.version_at(nominal_id, as_of)
        if version == 0:
            raise NotFound("the record did not exist at that instant")
        nominal = self.ledger.load(nominal_id, version=version)
        assert nominal is not None
        hidden = access.hidden_entries(principal, nominal, justification)
        read_whole = sorted(nominal.restricted_entries() - hidden)
        if read_whole:
            self.ledger.log_restricted_reads(
                principal, nominal_id, route, justification, read_whole
            )
        return served_view(nominal, london_date(as_of), hidden)

    def version_at(self, nominal_id: UUID, as_of: datetime) -> int:
        """The last version recorded at or before the instant (0: not yet registered)."""
        version = 0
        for _, event in read_stream(self.ledger.app, nominal_id):
            # recorded_at increases along a stream; the first later one ends the state.
            if event.timestamp > as_of:
                break
            version = event.originator_version
        return version

    def verify(self, principal: Principal, nominal_id: UUID, justification: str | None) -> Verdict:
        """Recompute the record's hash chain: intact, or its first bad version."""
        access.require_scope(principal, "audit:read")
        require_justification(justification)
        route = "GET /v1/nominals/{id}/verify"
        try:
            self.reading.readable(
                principal, nominal_id, route=route, justification=justification, action="verify"
            )
        except NotFound:
            raise
        except Exception:  # noqa: BLE001 - a stream broken behind our back cannot be folded
            # The auditor may read any record, so the chain itself is the answer.
            verdict = verify_nominal(self.ledger.app, nominal_id)
            if verdict.intact:
                raise
            self.ledger.log(principal, nominal_id, route, "verify", "allowed", justification)
            return verdict
        return verify_nominal(self.ledger.app, nominal_id)

    def access_log(
        self,
        principal: Principal,
        nominal_id: UUID,
        justification: str | None,
        *,
        after_id: int = 0,
        limit: int = 100,
    ) -> list[dict[str, Any]]:
        """Who consulted the record, when, through which route, with what outcome and why."""
        access.require_scope(principal, "audit:read")
        require_justification(justification)
        self.reading.readable(
            principal,
            nominal_id,
            route="GET /v1/nominals/{id}/access-log",
            justification=justification,
            action="read-access-log",
        )
        return self.ledger.consultations.for_nominal(nominal_id, after_id=after_id, limit=limit)
