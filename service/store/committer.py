"""Group commit: concurrent appends to different records share one transaction.

Every append takes the events table lock and waits for its commit to reach the disk
(ADR 002), so appends are serialised and each pays a WAL flush. Here, requests hand their
pending event to one committer thread, which saves everything waiting in one
`Application.save` call: one lock, one transaction, one flush for the whole batch. What each
append guarantees is unchanged: the batch commits or none of it does, per-record order is the
record's version (two appends to one record never share a batch), idempotency and identifier
uniqueness are the same constraints, and positions are handed out in commit order.

A batch that fails on a constraint is retried one append at a time, so only the append that
really conflicted is told so.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar
from uuid import UUID

from eventsourcing.persistence import IntegrityError

from domain.nominal import Nominal
from service.store.eventstore import IndexedEvent, Nominals, identifier_rows, partner_sets

log = logging.getLogger(__name__)

T = TypeVar("T")
R = TypeVar("R")


def take_waiting(q: queue.SimpleQueue[T | None], waiting: list[T], limit: int) -> list[T] | None:
    """What a writer thread handles next: `waiting` and whatever else is queued, up to `limit`.

    Waits for one item when nothing is waiting yet; None when that one is the stop marker
    (None). A stop marker met after some items is put back: this batch first, then stop."""
    if not waiting:
        first = q.get()
        if first is None:
            return None
        waiting.append(first)
    while len(waiting) < limit:
        try:
            more = q.get_nowait()
        except queue.Empty:
            break
        if more is None:
            q.put(None)
            break
        waiting.append(more)
    return waiting


async def awaited(future: Future[R]) -> R:
    """`future`'s answer, awaited on the event loop.

    A request cancelled while it waits stops waiting, but the future itself is never
    cancelled: the thread answering a batch sets every answer in it, and setting one on a
    cancelled future would raise there and stop the thread."""
    return await asyncio.shield(asyncio.wrap_future(future))


class Batched(Generic[T, R]):
    """Callers wait while one thread answers everything waiting with one call of `answer`
    (its answers in the callers' order): reads' catch-up queries and consultation rows, as
    the group committer below does appends."""

    def __init__(
        self, name: str, answer: Callable[[list[T]], Sequence[R]], *, max_batch: int
    ) -> None:
        self._answer = answer
        self._max_batch = max_batch
        self._queue: queue.SimpleQueue[tuple[T, Future[R]] | None] = queue.SimpleQueue()
        self._closed = False
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def ask(self, item: T) -> R:
        """The answer for `item` once its batch is answered; raises what answering raised."""
        return self.submit(item).result()

    def submit(self, item: T) -> Future[R]:
        """`item` queued for the next batch: its answer, or what answering raised, comes in the
        future (which the event loop awaits through `awaited`)."""
        if self._closed:
            raise RuntimeError(f"the {self._thread.name} thread is closed")
        done: Future[R] = Future()
        self._queue.put((item, done))
        return done

    def close(self) -> None:
        self._closed = True
        self._queue.put(None)
        self._thread.join(timeout=10)
        while True:  # nothing may wait forever
            try:
                left = self._queue.get_nowait()
            except queue.Empty:
                return
            if left is not None:
                left[1].set_exception(RuntimeError(f"the {self._thread.name} thread closed"))

    def _run(self) -> None:
        while True:
            batch = take_waiting(self._queue, [], self._max_batch)
            if batch is None:
                return
            try:
                answers = self._answer([item for item, _ in batch])
            except BaseException as error:  # noqa: BLE001 - every caller must be answered
                for _, done in batch:
                    done.set_exception(error)
            else:
                for (_, done), answer in zip(batch, answers, strict=True):
                    done.set_result(answer)


@dataclass
class _Append:
    nominal: Nominal
    indexed: IndexedEvent
    done: Future[int | None] = field(default_factory=Future)


class GroupCommitter:
    """One thread that commits whatever appends are waiting, together."""

    def __init__(self, app: Nominals, *, max_batch: int = 64) -> None:
        self._app = app
        self._max_batch = max_batch
        self._queue: queue.SimpleQueue[_Append | None] = queue.SimpleQueue()
        self._carry: deque[_Append] = deque()
        self._closed = False
        self.batches = 0  # transactions committed or tried, for /metrics and tests
        self.appends = 0
        self._thread = threading.Thread(target=self._run, name="group-commit", daemon=True)
        self._thread.start()

    def save(self, nominal: Nominal, indexed: IndexedEvent) -> int | None:
        """The stored event's position, or None when another writer got there first (or
        holds an identifier it claims: the pending event's identifier rows go with it)."""
        return self.submit(nominal, indexed).result()

    def submit(self, nominal: Nominal, indexed: IndexedEvent) -> Future[int | None]:
        """`save` without waiting: the position, or None, comes in the future."""
        if self._closed:
            raise RuntimeError("the record store is closed")
        append = _Append(nominal, indexed)
        self._queue.put(append)
        return append.done

    def close(self) -> None:
        self._closed = True
        self._queue.put(None)
        self._thread.join(timeout=10)
        # Nothing may wait forever: whatever was queued behind the stop is refused.
        leftovers = list(self._carry)
        while True:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                break
            if item is not None:
                leftovers.append(item)
        for append in leftovers:
            append.done.set_exception(RuntimeError("the record store closed before this append"))

    def _next_batch(self) -> list[_Append] | None:
        waiting = take_waiting(self._queue, list(self._carry), self._max_batch)
        self._carry.clear()
        if waiting is None:
            return None
        batch: list[_Append] = []
        seen: set[UUID] = set()
        for append in waiting:
            if append.nominal.id in seen:
                self._carry.append(append)  # one append per record per batch
            else:
                seen.add(append.nominal.id)
                batch.append(append)
        return batch

    def _run(self) -> None:
        while True:
            batch = self._next_batch()
            if batch is None:
                return
            self._commit(batch)

    def _commit(self, batch: list[_Append]) -> None:
        # `save` takes the pending events off each aggregate; keep them, so a batch that
        # fails can be retried one append at a time.
        pending = [list(a.nominal.pending_events) for a in batch]
        self.batches += 1
        self.appends += len(batch)
        nominals = [a.nominal for a in batch]
        releases, claims = identifier_rows(nominals)
        try:
            recordings = self._app.save(
                *nominals,
                indexed_events=[a.indexed for a in batch],
                identifier_releases=releases,
                identifier_claims=claims,
                partner_sets=partner_sets(nominals),
            )
        except IntegrityError:
            for append, events in zip(batch, pending, strict=True):
                append.nominal.pending_events[:] = events
            if len(batch) == 1:
                batch[0].done.set_result(None)
            else:
                for append in batch:
                    self._commit([append])
            return
        except BaseException as e:  # noqa: BLE001 - every waiting request must be answered
            for append in batch:
                append.done.set_exception(e)
            return
        positions: dict[Any, int] = {
            r.domain_event.originator_id: r.notification.id for r in recordings
        }
        for append in batch:
            append.done.set_result(positions[append.nominal.id])
