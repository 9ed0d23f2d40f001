"""The feed: every stored event as a notice, in the global order, with no personal data.

A notice says that something happened to which record, when and by which agency; the
consumer fetches the event itself from `detail_url` with its own token and partnering.

The order is the event store's `notification_id` (the notice's `position`). The library's
recorder takes an EXCLUSIVE lock on the events table before it draws positions and holds
it until commit, so positions become visible in order: once a reader sees position N, no
transaction can still commit a position below N. A consumer that asks for `after=N`
therefore never misses a notice and never sees one twice (docs/adr/007-integrations.md;
tests/integrations/test_feed.py follows the feed across concurrent writers).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg import sql

from domain.chain import format_instant
from domain.nominal import Nominal
from service import access
from service.auth import Principal
from service.ledger import Ledger
from service.store.eventstore import EVENTS_TABLE

log = logging.getLogger(__name__)

MAX_PAGE = 1000


def detail_url(nominal_id: str, version: int) -> str:
    """Where a partner (or an auditor) reads the event itself."""
    return f"/v1/nominals/{nominal_id}/history?from_version={version}&limit=1"


class Feed:
    """Pages of notices from the event store's notification log."""

    def __init__(self, ledger: Ledger) -> None:
        self._app = ledger.app

    def notices(self, principal: Principal, *, after: int, limit: int) -> list[dict[str, Any]]:
        """Notices with positions above `after`, oldest first, at most `limit` of them."""
        access.require_scope(principal, "feed:read")
        return self.page(after=after, limit=limit)

    def page(self, *, after: int, limit: int) -> list[dict[str, Any]]:
        """The notices after a position (no access check: the caller has made it)."""
        limit = max(1, min(limit, MAX_PAGE))
        notifications = self._app.recorder.select_notifications(
            start=after, limit=limit, inclusive_of_start=False
        )
        notices = []
        for n in notifications:
            # The payload may be encrypted at rest; the envelope fields the notice carries
            # (event id, agency, recorded_at) are read from the decoded event, server-side.
            event = self._app.mapper.to_domain_event(n)
            assert isinstance(event, Nominal.Event)
            notices.append(
                {
                    "position": n.id,
                    "event_id": event.event_id,
                    "type": n.topic.rsplit(".", 1)[-1],
                    "nominal_id": str(n.originator_id),
                    "version": n.originator_version,
                    "agency": event.recorded_by["agency"],
                    "recorded_at": format_instant(event.timestamp),
                    "detail_url": detail_url(str(n.originator_id), n.originator_version),
                }
            )
        return notices

    def latest_position(self) -> int:
        """The highest position stored, 0 when the record is empty."""
        return self._app.recorder.max_notification_id() or 0


class Doorbell:
    """Rings whenever the recorder NOTIFYs that events were stored.

    One LISTEN connection per process, opened when the first stream waits, shared by every
    stream. A waiter takes the current `ring()` before it reads the table and waits on it
    after, so a commit between the read and the wait is never slept through; streams also
    re-read after a timeout, so a lost notification delays a notice, never drops it.
    """

    def __init__(self, url: str, channel: str = EVENTS_TABLE) -> None:
        self._url = url
        self._channel = channel
        self._ring = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def ring(self) -> asyncio.Event:
        """The event that the next notification sets; take it before reading."""
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._listen())
        return self._ring

    async def wait(self, ring: asyncio.Event, timeout: float) -> bool:
        """Wait until `ring` is set or the timeout passes; True if it rang."""
        try:
            await asyncio.wait_for(ring.wait(), timeout)
        except TimeoutError:
            return False
        return True

    def _rang(self) -> None:
        ring, self._ring = self._ring, asyncio.Event()
        ring.set()

    async def _listen(self) -> None:
        while True:
            try:
                async with await psycopg.AsyncConnection.connect(
                    self._url, autocommit=True
                ) as conn:
                    await conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(self._channel)))
                    self._rang()  # anything committed while we were not listening
                    async for _ in conn.notifies():
                        self._rang()
            except asyncio.CancelledError:
                raise
            except Exception as e:  # noqa: BLE001 - reconnect whatever went wrong
                log.warning("feed listener lost its connection (%s); reconnecting", e)
                await asyncio.sleep(1)

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None


@dataclass(frozen=True)
class StreamLimits:
    heartbeat_seconds: float = 15.0  # a comment line keeps proxies from closing the stream
    max_seconds: float = 300.0  # then the client reconnects with Last-Event-ID
    per_officer: int = 4  # open streams of one officer (token agency and sub), per process
    total: int = 200  # open streams of everyone, per process


class TooManyStreams(Exception):
    """The officer, or everyone together, already holds as many streams as allowed."""

    def __init__(self, message: str, *, everyone: bool) -> None:
        super().__init__(message)
        self.everyone = everyone


class OpenStreams:
    """The streams open in this process, counted per officer, within `StreamLimits`.

    Used from the event loop only, so plain counts need no lock."""

    def __init__(self) -> None:
        self._by_officer: dict[tuple[str, str], int] = {}
        self.total = 0

    def admit(self, officer: tuple[str, str], limits: StreamLimits) -> Callable[[], None]:
        """Count one more stream for the officer; the function that ends it (once)."""
        if self.total >= limits.total:
            raise TooManyStreams(
                f"the service holds {self.total} streams, its most: retry later", everyone=True
            )
        held = self._by_officer.get(officer, 0)
        if held >= limits.per_officer:
            raise TooManyStreams(
                f"{held} streams are open for this officer, the most allowed: close one",
                everyone=False,
            )
        self._by_officer[officer] = held + 1
        self.total += 1
        ended = False

        def end() -> None:
            nonlocal ended
            if ended:
                return
            ended = True
            self.total -= 1
            left = self._by_officer[officer] - 1
            if left:
                self._by_officer[officer] = left
            else:
                del self._by_officer[officer]

        return end
