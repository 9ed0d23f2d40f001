"""Routes for auditors: the record as it stood, the hash chain verified, the consultation log."""

from __future__ import annotations

from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel

from api.deps import JustificationHeader, PrincipalDep
from api.schemas import Instant
from domain.chain import format_instant
from service.audit import Audit

router = APIRouter(prefix="/v1/nominals", tags=["audit"])

MAX_LOG_PAGE = 1000


def get_audit(request: Request) -> Audit:
    return Audit(request.app.state.reading)


AuditDep = Annotated[Audit, Depends(get_audit)]


class StateOut(BaseModel):
    as_of: str
    record: dict[str, Any]


class VerifyOut(BaseModel):
    nominal_id: str
    intact: bool
    events_checked: int
    first_bad_version: int | None
    reason: str | None


class Consultation(BaseModel):
    id: int
    at: str
    sub: str
    agency: str
    route: str
    action: str
    outcome: str
    justification: str | None
    entry_id: str | None = None  # the restricted entry read (action read-restricted-entry)


class AccessLogOut(BaseModel):
    nominal_id: str
    entries: list[Consultation]
    next_after_id: int | None


@router.get("/{nominal_id}/state", response_model=StateOut)
def state_as_of(
    nominal_id: UUID,
    principal: PrincipalDep,
    audit: AuditDep,
    as_of: Annotated[
        Instant, Query(description="an instant with its offset, e.g. 2026-11-20T12:00:00Z")
    ],
    justification: JustificationHeader = None,
) -> dict[str, Any]:
    """The record as it stood at an instant, rebuilt from the events recorded by then."""
    record = audit.state_as_of(principal, nominal_id, as_of, justification)
    return {"as_of": format_instant(as_of), "record": record}


@router.get("/{nominal_id}/verify", response_model=VerifyOut)
def verify(
    nominal_id: UUID,
    principal: PrincipalDep,
    audit: AuditDep,
    justification: JustificationHeader = None,
) -> dict[str, Any]:
    """Recompute the record's hash chain: intact, or the first version that does not match."""
    return audit.verify(principal, nominal_id, justification).as_dict()


@router.get("/{nominal_id}/access-log", response_model=AccessLogOut)
def access_log(
    nominal_id: UUID,
    principal: PrincipalDep,
    audit: AuditDep,
    justification: JustificationHeader = None,
    after_id: Annotated[int, Query(ge=0, le=2**62)] = 0,
    limit: Annotated[int, Query(ge=1, le=MAX_LOG_PAGE)] = 100,
) -> dict[str, Any]:
    """Who consulted the record, when, through which route, and why (this read included)."""
    entries = audit.access_log(principal, nominal_id, justification, after_id=after_id, limit=limit)
    more = len(entries) == limit
    return {
        "nominal_id": str(nominal_id),
        "entries": entries,
        "next_after_id": entries[-1]["id"] if more else None,
    }
