"""Routes for MAPPA minutes: upload a meeting's minutes, read a stored document back."""

from __future__ import annotations

import unicodedata
from datetime import date
from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Depends, File, Form, Request, Response, UploadFile, status
from fastapi.responses import Response as RawResponse
from pydantic import StringConstraints

from api.deps import JustificationHeader, PrincipalDep
from api.problems import PayloadTooLarge
from api.schemas import StoredEventOut
from domain.errors import InvalidValue
from service.minutes import MAX_DOCUMENT_BYTES, Minutes
from service.payloads import unstorable

router = APIRouter(prefix="/v1/nominals", tags=["minutes"])

Ref = Annotated[
    str,
    StringConstraints(
        strip_whitespace=True, min_length=1, max_length=100, pattern=r"^[A-Za-z0-9._:/-]+$"
    ),
]
Sha256 = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{64}$")]


def get_minutes(request: Request) -> Minutes:
    return Minutes(request.app.state.records, request.app.state.reading)


MinutesDep = Annotated[Minutes, Depends(get_minutes)]


def _read_limited(upload: UploadFile) -> bytes:
    content = upload.file.read(MAX_DOCUMENT_BYTES + 1)
    if len(content) > MAX_DOCUMENT_BYTES:
        raise PayloadTooLarge(f"minutes may be up to {MAX_DOCUMENT_BYTES // 2**20} MiB")
    return content


def _filename(upload: UploadFile) -> str:
    """The name the file is stored under: its last path segment without control or
    invisible formatting characters (a line break, a right-to-left override), at most 200
    characters; a name the database could not store at all is refused."""
    raw = upload.filename or "minutes"
    if (reason := unstorable(raw)) is not None:
        raise InvalidValue(f"the file's name {reason}", field="file.filename")
    visible = "".join(c for c in raw if unicodedata.category(c) not in ("Cc", "Cf"))
    name = visible.replace("\\", "/").rsplit("/", 1)[-1].strip()
    return name[:200] or "minutes"


@router.post("/{nominal_id}/minutes", status_code=201, response_model=StoredEventOut)
def upload_minutes(
    nominal_id: UUID,
    principal: PrincipalDep,
    minutes: MinutesDep,
    response: Response,
    file: Annotated[UploadFile, File(description="PDF, DOCX or ODT, up to 20 MiB")],
    event_id: Annotated[UUID, Form()],
    meeting_id: Annotated[Ref, Form()],
    meeting_date: Annotated[date, Form()],
    level: Annotated[int, Form(ge=2, le=3, description="2 or 3")],
) -> dict[str, Any]:
    """Store a meeting's minutes and record them; answers due_on, working days taken, late."""
    posted = minutes.upload(
        principal,
        nominal_id,
        event_id=event_id,
        meeting_id=meeting_id,
        meeting_date=meeting_date,
        level=level,
        filename=_filename(file),
        content=_read_limited(file),
    )
    response.status_code = status.HTTP_201_CREATED if posted.created else status.HTTP_200_OK
    response.headers["Location"] = (
        f"/v1/nominals/{posted.nominal_id}/documents/{posted.event['payload']['document']['sha256']}"
    )
    response.headers["ETag"] = f'"{posted.version}"'
    return posted.event


@router.get(
    "/{nominal_id}/documents/{sha256}",
    response_class=RawResponse,
    responses={200: {"content": {"application/pdf": {}}, "description": "the stored file"}},
)
def read_document(
    nominal_id: UUID,
    sha256: Sha256,
    principal: PrincipalDep,
    minutes: MinutesDep,
    justification: JustificationHeader = None,
) -> RawResponse:
    """A document the record's minutes name, as it was uploaded."""
    document = minutes.document(principal, nominal_id, sha256, justification)
    safe = document.filename.replace('"', "").encode("ascii", "replace").decode()
    return RawResponse(
        content=document.content,
        media_type=document.media_type,
        headers={
            "Content-Disposition": f'attachment; filename="{safe}"',
            "ETag": f'"{document.sha256}"',
            "Cache-Control": "no-store",
            "X-Content-Type-Options": "nosniff",
        },
    )
