"""Routes of the shared record: register, post events, read, look up, history."""

from __future__ import annotations

import re
from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Header, Query, Response, status
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError

from api.deps import JustificationHeader, PrincipalDep, ReadingDep, RecordsDep
from api.problems import BadRequest
from api.schemas import (
    EventPost,
    HistoryOut,
    LookupOut,
    RegisteredOut,
    Registration,
    StoredEventOut,
    occurred,
)
from domain.errors import InvalidValue
from service.payloads import PAYLOADS
from service.records import NewEvent, Posted

router = APIRouter(prefix="/v1/nominals", tags=["nominals"])

_ETAG = re.compile(r'^\s*(?:W/)?"?(\d{1,18})"?\s*$')
MAX_HISTORY_PAGE = 1000


def validated_payload(event_type: str, payload: dict[str, Any]) -> dict[str, Any]:
    """The payload checked against its event type's schema; errors name `payload.<field>`."""
    try:
        model = PAYLOADS[event_type].model_validate(payload)
    except ValidationError as e:
        raise RequestValidationError(
            [dict(err) | {"loc": ("body", "payload", *err["loc"])} for err in e.errors()]
        ) from None
    return model.model_dump(mode="json")


def parse_if_match(value: str | None) -> int | None:
    if value is None:
        return None
    match = _ETAG.match(value)
    if match is None:
        raise BadRequest('If-Match takes the version as an entity tag, like "3"')
    return int(match.group(1))


def _answer(posted: Posted, response: Response) -> None:
    response.status_code = status.HTTP_201_CREATED if posted.created else status.HTTP_200_OK
    response.headers["Location"] = f"/v1/nominals/{posted.nominal_id}"
    response.headers["ETag"] = f'"{posted.version}"'


@router.post("", status_code=201, response_model=RegisteredOut)
def register_nominal(
    body: Registration, principal: PrincipalDep, records: RecordsDep, response: Response
) -> dict[str, Any]:
    """Register a person on the record; the registering agency becomes the first partner."""
    payload = body.model_dump(mode="json", exclude={"event_id", "occurred_at"})
    payload["identifiers"] = {k: v for k, v in payload["identifiers"].items() if v is not None}
    posted = records.register(principal, body.event_id, occurred(body.occurred_at), payload)
    _answer(posted, response)
    return {"nominal_id": posted.nominal_id, "version": posted.version, "event": posted.event}


# The two busiest routes are `async def` and call the service's event-loop methods, which
# hand to a worker thread only what cannot be done on the loop (ADR 011): a plain `def`
# route hops to the thread pool and back, and again to validate its answer.


@router.post("/{nominal_id}/events", status_code=201, response_model=StoredEventOut)
async def post_event(
    nominal_id: UUID,
    body: EventPost,
    principal: PrincipalDep,
    records: RecordsDep,
    response: Response,
    if_match: Annotated[str | None, Header(alias="If-Match")] = None,
) -> dict[str, Any]:
    """Append one event to a record; the same event_id again returns the stored event."""
    if body.type == "MinutesUploaded":
        # Every MinutesUploaded names a stored document: only the upload route makes one.
        raise InvalidValue(
            f"minutes are uploaded as a file to POST /v1/nominals/{nominal_id}/minutes",
            field="type",
        )
    new = NewEvent(
        event_id=body.event_id,
        type=body.type,
        occurred_at=occurred(body.occurred_at) or "",
        payload=validated_payload(body.type, body.payload),
    )
    posted = await records.post(principal, nominal_id, new, parse_if_match(if_match))
    _answer(posted, response)
    return posted.event


@router.get("/{nominal_id}", response_model=dict[str, Any])
async def read_nominal(
    nominal_id: UUID,
    principal: PrincipalDep,
    reading: ReadingDep,
    justification: JustificationHeader = None,
) -> Response:
    """The current record, with its version as the ETag."""
    # Rendered once per version (Reading.read_view), so returned as it is, not serialised.
    version, body = await reading.read_view(principal, nominal_id, justification)
    return Response(body, media_type="application/json", headers={"ETag": f'"{version}"'})


@router.get("", response_model=LookupOut)
def look_up(
    principal: PrincipalDep,
    reading: ReadingDep,
    justification: JustificationHeader = None,
    pnc: Annotated[str | None, Query(max_length=20)] = None,
    crn: Annotated[str | None, Query(max_length=20)] = None,
    noms: Annotated[str | None, Query(max_length=20)] = None,
    cro: Annotated[str | None, Query(max_length=20)] = None,
) -> dict[str, Any]:
    """Exact identifier look-up among the records the caller may read."""
    given = {k: v for k, v in {"pnc": pnc, "crn": crn, "noms": noms, "cro": cro}.items() if v}
    if not given:
        raise BadRequest("give at least one of pnc, crn, noms, cro")
    return {"results": reading.lookup(principal, given, justification)}


@router.get("/{nominal_id}/history", response_model=HistoryOut)
def history(
    nominal_id: UUID,
    principal: PrincipalDep,
    reading: ReadingDep,
    justification: JustificationHeader = None,
    from_version: Annotated[int, Query(ge=1, le=2**62)] = 1,
    limit: Annotated[int, Query(ge=1, le=MAX_HISTORY_PAGE)] = 100,
) -> dict[str, Any]:
    """The record's events in order, a page at a time."""
    events = list(
        reading.history(
            principal,
            nominal_id,
            from_version=from_version,
            limit=limit,
            justification=justification,
        )
    )
    more = len(events) == limit
    return {
        "nominal_id": str(nominal_id),
        "events": events,
        "next_from_version": events[-1]["version"] + 1 if more else None,
    }
