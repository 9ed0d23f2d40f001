"""HMPPS domain events in: the probation and prison integrations announce, the record follows."""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse

from api.deps import PrincipalDep, RecordsDep
from api.problems import PayloadTooLarge
from service.integrations import inbound
from service.integrations.inbound import MAX_MESSAGE_BYTES, MalformedMessage

router = APIRouter(prefix="/v1/inbound", tags=["inbound"])


async def json_body(request: Request) -> Any:
    """The body as JSON whatever its Content-Type: SNS posts its notifications as text/plain."""
    raw = await request.body()
    if len(raw) > MAX_MESSAGE_BYTES:
        raise PayloadTooLarge(f"a message is at most {MAX_MESSAGE_BYTES} bytes")
    try:
        return json.loads(raw)
    except ValueError:
        raise MalformedMessage("the body is not valid JSON", field="body") from None


_EXAMPLE = {
    "eventType": "probation-case.registration.added",
    "version": 1,
    "occurredAt": "2024-06-14T09:06:52.123+01:00",
    "description": "A new registration has been added to the probation case",
    "detailUrl": None,
    "additionalInformation": {
        "registerTypeCode": "MAPP",
        "registrationCategoryCode": "M2",
        "registrationLevelCode": "M2",
        "createdDateAndTime": "Fri Jun 14 09:06:52 BST 2024",
    },
    "personReference": {"identifiers": [{"type": "CRN", "value": "X123456"}]},
}


@router.post(
    "/hmpps-domain-events",
    status_code=202,
    responses={
        200: {"description": "The message was applied before; nothing appended"},
        201: {"description": "Applied: the events appended"},
        202: {"description": "Understood, nothing changed; `outcome` and `reason` say why"},
        400: {"description": "Not an HMPPS domain event we can read"},
    },
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": {"type": "object"}, "example": _EXAMPLE}},
        }
    },
)
def receive_hmpps_domain_event(
    principal: PrincipalDep,
    records: RecordsDep,
    body: Annotated[Any, Depends(json_body)],
) -> JSONResponse:
    """Apply an HMPPS domain event, bare or in an SNS notification, to the record it names."""
    result = inbound.receive(records, principal, body)
    return JSONResponse(
        {
            "outcome": result.outcome,
            "reason": result.reason,
            "message_key": result.message_key,
            "nominal_id": result.nominal_id,
            "events": list(result.events),
        },
        status_code=result.status,
    )
