"""The feed: event notices in the global order, as pages of JSON or a server-sent stream."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, FastAPI, Header, Query, Request
from fastapi.responses import StreamingResponse
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool

from api.deps import PrincipalDep
from api.problems import BadRequest
from service import access
from service.feed import MAX_PAGE, Doorbell, Feed, StreamLimits

router = APIRouter(prefix="/v1/feed", tags=["feed"])

EVENT_STREAM = "text/event-stream"


class Notice(BaseModel):
    position: int
    event_id: str
    type: str
    nominal_id: str
    version: int
    agency: str
    recorded_at: str
    detail_url: str


class FeedPage(BaseModel):
    notices: list[Notice]
    next_after: int


def _feed(app: FastAPI) -> tuple[Feed, Doorbell, StreamLimits]:
    state = app.state
    if not hasattr(state, "feed"):
        state.feed = Feed(state.service.ledger)
        state.feed_doorbell = Doorbell(state.service.db.url)
        state.feed_limits = StreamLimits()
    return state.feed, state.feed_doorbell, state.feed_limits


async def close(app: FastAPI) -> None:
    """Stop the feed's listener (at shutdown)."""
    doorbell = getattr(app.state, "feed_doorbell", None)
    if doorbell is not None:
        await doorbell.close()


MAX_POSITION = 2**62  # as `after` allows: a bigint, with room


def _resume_from(after: int, last_event_id: str | None) -> int:
    if last_event_id is None or not last_event_id.strip():
        return after
    text = last_event_id.strip()
    # ASCII digits only: str.isdigit() also says yes to "²", which int() then refuses.
    if not (text.isascii() and text.isdigit()) or int(text) > MAX_POSITION:
        raise BadRequest("Last-Event-ID is the position of the last notice received")
    return int(text)


@router.get(
    "",
    response_model=FeedPage,
    responses={200: {"content": {EVENT_STREAM: {}}, "description": "A page, or a stream"}},
)
async def read_feed(
    request: Request,
    principal: PrincipalDep,
    after: Annotated[int, Query(ge=0, le=MAX_POSITION)] = 0,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 100,
    accept: Annotated[str | None, Header()] = None,
    last_event_id: Annotated[str | None, Header(alias="Last-Event-ID", max_length=20)] = None,
) -> Any:
    """Event notices after a position; with Accept: text/event-stream, a live stream."""
    access.require_scope(principal, "feed:read")
    feed, doorbell, limits = _feed(request.app)
    after = _resume_from(after, last_event_id)
    if accept is not None and EVENT_STREAM in accept:
        return StreamingResponse(
            _stream(request, feed, doorbell, limits, after, limit),
            media_type=EVENT_STREAM,
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )
    notices = await run_in_threadpool(feed.notices, principal, after=after, limit=limit)
    return {"notices": notices, "next_after": notices[-1]["position"] if notices else after}


async def _stream(
    request: Request,
    feed: Feed,
    doorbell: Doorbell,
    limits: StreamLimits,
    after: int,
    limit: int,
) -> AsyncIterator[str]:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + limits.max_seconds
    yield "retry: 2000\n\n"
    while loop.time() < deadline:
        if await request.is_disconnected():
            return
        ring = doorbell.ring()
        notices = await run_in_threadpool(feed.page, after=after, limit=limit)
        for notice in notices:
            yield f"id: {notice['position']}\nevent: notice\ndata: {json.dumps(notice)}\n\n"
            after = notice["position"]
        if len(notices) == limit:
            continue
        remaining = deadline - loop.time()
        if not await doorbell.wait(ring, min(limits.heartbeat_seconds, max(remaining, 0))):
            yield ": keep-alive\n\n"
