"""The feed: event notices in the global order, as pages of JSON or a server-sent stream."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Callable
from typing import Annotated, Any

from fastapi import APIRouter, FastAPI, Header, Query, Request
from fastapi.responses import StreamingResponse
from pydantic import BaseModel
from starlette.background import BackgroundTask
from starlette.concurrency import run_in_threadpool

from api.deps import PrincipalDep
from api.problems import BadRequest, problem
from service import access
from service.feed import MAX_PAGE, Doorbell, Feed, OpenStreams, StreamLimits, TooManyStreams

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


def _open_streams(app: FastAPI) -> OpenStreams:
    if not hasattr(app.state, "open_streams"):
        app.state.open_streams = OpenStreams()
    streams: OpenStreams = app.state.open_streams
    return streams


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
        try:
            end = _open_streams(request.app).admit((principal.agency, principal.sub), limits)
        except TooManyStreams as e:
            status, slug = (503, "streams-full") if e.everyone else (429, "too-many-streams")
            return problem(status, slug, "Too many streams", str(e), headers={"Retry-After": "5"})
        # Released however the stream ends: by itself, by the client, or never started.
        return StreamingResponse(
            _stream(request, feed, doorbell, limits, after, limit, principal.expires_at, end),
            media_type=EVENT_STREAM,
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
            background=BackgroundTask(end),
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
    expires_at: float | None,
    end: Callable[[], None],
) -> AsyncIterator[str]:
    """Notices as they commit, until the stream's time is up or its token expires (the
    client reconnects with a fresh token and Last-Event-ID)."""
    loop = asyncio.get_running_loop()
    seconds = limits.max_seconds
    if expires_at is not None:
        seconds = min(seconds, max(expires_at - time.time(), 0))
    deadline = loop.time() + seconds
    try:
        yield "retry: 2000\n\n"
        async for chunk in _notices(request, feed, doorbell, limits, after, limit, deadline):
            yield chunk
    finally:
        end()


async def _notices(
    request: Request,
    feed: Feed,
    doorbell: Doorbell,
    limits: StreamLimits,
    after: int,
    limit: int,
    deadline: float,
) -> AsyncIterator[str]:
    loop = asyncio.get_running_loop()
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
