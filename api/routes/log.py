"""The transparency log: signed checkpoints, inclusion and consistency proofs (docs/adr/020).

For auditors and inspectorates (`audit:read`) and for integrators who keep a witness
(`feed:read`). Nothing here is personal data: hashes, sizes and positions.
"""

from __future__ import annotations

from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Body, Query, Request
from fastapi.responses import PlainTextResponse
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool

from api.deps import PrincipalDep
from api.problems import BadRequest
from service import access
from service.access import NotFound
from service.signed_note import NoteError
from service.transparency import NotInLog, TransparencyLog

router = APIRouter(prefix="/v1/log", tags=["transparency log"])

NOTE = "text/plain; charset=utf-8"
Size = Annotated[int, Query(ge=1, le=2**62)]


class InclusionOut(BaseModel):
    event_id: str
    position: int
    leaf_index: int
    tree_size: int
    leaf_hash: str
    inclusion_path: list[str]


class ConsistencyOut(BaseModel):
    from_: int
    to: int
    consistency_path: list[str]

    model_config = {"populate_by_name": True, "alias_generator": lambda f: f.rstrip("_")}


class ExtensionOut(BaseModel):
    checkpoint_size: int
    log_size: int
    intact: bool
    first_bad_leaf: int | None
    first_bad_position: int | None
    reason: str | None


def _log(request: Request) -> TransparencyLog:
    log: TransparencyLog = request.app.state.service.transparency
    return log


async def _answer(work: Any, *args: Any) -> Any:
    try:
        return await run_in_threadpool(work, *args)
    except NotInLog as e:
        raise NotFound(str(e)) from None


@router.get(
    "/checkpoint", response_class=PlainTextResponse, responses={200: {"content": {NOTE: {}}}}
)
async def checkpoint(request: Request, principal: PrincipalDep) -> PlainTextResponse:
    """The latest signed checkpoint (c2sp.org/tlog-checkpoint): origin, size, root."""
    access.require_scope(principal, "audit:read", "feed:read")
    latest = await run_in_threadpool(_log(request).latest)
    if latest is None:
        raise NotFound("no checkpoint has been issued yet")
    return PlainTextResponse(latest[1], media_type=NOTE)


@router.get(
    "/public-key", response_class=PlainTextResponse, responses={200: {"content": {NOTE: {}}}}
)
async def public_key(request: Request, principal: PrincipalDep) -> PlainTextResponse:
    """The key that signs checkpoints, as a note verifier key (name+hash+base64 key)."""
    access.require_scope(principal, "audit:read", "feed:read")
    return PlainTextResponse(f"{_log(request).signer.verifier}\n", media_type=NOTE)


@router.get("/proof/inclusion", response_model=InclusionOut)
async def inclusion(
    request: Request,
    principal: PrincipalDep,
    event_id: UUID,
    size: Size | None = None,
) -> Any:
    """That an event is in the log of `size` events (the latest checkpoint's by default):
    its leaf and audit path, RFC 6962, base64."""
    access.require_scope(principal, "audit:read", "feed:read")
    return await _answer(_log(request).inclusion, event_id, size)


@router.get("/proof/consistency", response_model=ConsistencyOut, response_model_by_alias=True)
async def consistency(
    request: Request,
    principal: PrincipalDep,
    from_: Annotated[int, Query(alias="from", ge=1, le=2**62)],
    to: Size | None = None,
) -> Any:
    """That the log of `to` events (the latest checkpoint's by default) extends the log of
    `from` events: RFC 6962, base64."""
    access.require_scope(principal, "audit:read", "feed:read")
    return await _answer(_log(request).consistency, from_, to)


@router.post("/verify", response_model=ExtensionOut)
async def verify(
    request: Request,
    principal: PrincipalDep,
    note: Annotated[str, Body(media_type=NOTE, max_length=4096)],
) -> Any:
    """Whether the log, recomputed from every stored event, extends a checkpoint the caller
    kept (signed by this service's key); where it first does not, if not."""
    access.require_scope(principal, "audit:read")
    log = _log(request)
    try:
        found = await run_in_threadpool(log.verify_extends, note, log.signer.verifier)
    except NoteError as e:
        raise BadRequest(f"not a checkpoint of this log: {e}") from None
    return {
        "checkpoint_size": found.checkpoint_size,
        "log_size": found.log_size,
        "intact": found.intact,
        "first_bad_leaf": found.first_bad_leaf,
        "first_bad_position": found.first_bad_position,
        "reason": found.reason,
    }
