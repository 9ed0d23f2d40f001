"""`POST /v1/batches`: up to 500 events for any records in one request, each judged alone.

For systems syncing a backlog (a force's or a prison's case system, the HMPPS bridge). Each
event is what `POST /v1/nominals/{id}/events` takes, plus its `nominal_id` and an optional
`if_match`, and gets that route's answer: its status (201, 200, 404, 409, 412, 422) with the
stored event or a problem document. One refused does not undo the others. A record's events
are posted in the order the batch gives them; different records' at once, so they share
group commits with each other and with every other request in flight.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Body
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, Field, ValidationError

from api.deps import PrincipalDep, RecordsDep
from api.problems import problem_document
from api.routes.nominals import validated_payload
from api.schemas import EventPost, occurred
from domain.errors import InvalidValue
from service import access
from service.auth import Principal
from service.records import NewEvent, Records

router = APIRouter(prefix="/v1/batches", tags=["nominals"])

MAX_BATCH = 500


class BatchEvent(EventPost):
    """One event of a batch: the envelope of a post, and the record it is for."""

    nominal_id: UUID
    if_match: int | None = Field(default=None, ge=0, le=2**62)


class Batch(BaseModel):
    # Each event is read on its own (a bad one is that event's 422, not the batch's).
    events: list[dict[str, Any]] = Field(min_length=1, max_length=MAX_BATCH)


class Result(BaseModel):
    index: int
    status: int
    event: dict[str, Any] | None = None
    problem: dict[str, Any] | None = None


class BatchOut(BaseModel):
    results: list[Result]


@router.post("", response_model=BatchOut)
async def post_batch(
    body: Annotated[Batch, Body()], principal: PrincipalDep, records: RecordsDep
) -> dict[str, Any]:
    """Up to 500 events for any records; one result per event, in the batch's order."""
    access.require_scope(principal, "records:write")
    results: list[dict[str, Any] | None] = [None] * len(body.events)
    by_record: dict[UUID, list[tuple[int, BatchEvent]]] = defaultdict(list)
    for index, raw in enumerate(body.events):
        try:
            event = BatchEvent.model_validate(raw)
        except ValidationError as e:
            results[index] = _refused(index, RequestValidationError(_located(e, index)))
            continue
        by_record[event.nominal_id].append((index, event))

    async def post_in_order(events: list[tuple[int, BatchEvent]]) -> None:
        for index, event in events:
            results[index] = await _posted(records, principal, index, event)

    await asyncio.gather(*(post_in_order(events) for events in by_record.values()))
    return {"results": results}


async def _posted(
    records: Records, principal: Principal, index: int, event: BatchEvent
) -> dict[str, Any]:
    try:
        if event.type == "MinutesUploaded":
            raise InvalidValue(
                "minutes are uploaded as a file to POST /v1/nominals/{id}/minutes", field="type"
            )
        new = NewEvent(
            event_id=event.event_id,
            type=event.type,
            occurred_at=occurred(event.occurred_at) or "",
            payload=validated_payload(event.type, event.payload),
        )
        posted = await records.post(principal, event.nominal_id, new, event.if_match)
    except Exception as e:  # noqa: BLE001 - every refusal is this event's answer alone
        return _refused(index, e)
    return {"index": index, "status": 201 if posted.created else 200, "event": posted.event}


def _refused(index: int, exc: Exception) -> dict[str, Any]:
    status, document = problem_document(exc)
    return {"index": index, "status": status, "problem": document}


def _located(error: ValidationError, index: int) -> list[dict[str, Any]]:
    """The event's validation errors, named as fields of the batch's event."""
    return [dict(e) | {"loc": ("body", "events", index, *e["loc"])} for e in error.errors()]
