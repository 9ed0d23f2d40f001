"""Posting on the event loop (`Records.post`, ADR 011): the same answers as `post_event` in
a thread, whichever way a post goes, and nothing lost or doubled when both run at once.

The tests are coroutines on pytest-asyncio's event loop, as a route is on uvicorn's. `here`
is the session's service; `elsewhere` is a second application layer on the same database,
standing in for another worker process with a cache of its own.
"""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from uuid import UUID

import pytest

from service.access import NotFound
from service.auth import Principal
from service.bootstrap import Application
from service.integrity import verify_nominal
from service.records import Conflict, NewEvent, PreconditionFailed
from service.store.committer import Batched, awaited
from tests.integration.test_concurrency import POLICE, entry, register, versions

STRANGER = Principal(
    sub="test-stranger", agency="police:essex", scopes=frozenset({"records:write"})
)


async def post(
    layer: Application, new: NewEvent, nominal_id: UUID, principal=POLICE, if_match=None
):
    return await layer.records.post(principal, nominal_id, new, if_match)


async def test_a_post_on_the_loop_is_stored_and_its_record_handed_along(here):
    nominal_id = UUID(register(here))
    posted = await post(here, entry(subject="On the loop"), nominal_id)

    assert (posted.created, posted.version) == (True, 2)
    assert posted.event["payload"]["subject"] == "On the loop"
    assert here.ledger.cache.take(nominal_id).version == 2  # put back as stored, not copied
    assert versions(here, str(nominal_id)) == [1, 2]


async def test_a_retried_post_on_the_loop_is_answered_with_the_stored_event(here):
    nominal_id = UUID(register(here))
    new = entry()
    first = await post(here, new, nominal_id)
    again = await post(here, new, nominal_id)

    assert (first.created, again.created) == (True, False)
    assert again.event == first.event
    with pytest.raises(Conflict, match="different body"):
        await post(here, entry(event_id=new.event_id, subject="Another body"), nominal_id)
    assert versions(here, str(nominal_id)) == [1, 2]


async def test_refusals_on_the_loop_are_those_of_a_post_in_a_thread(here):
    nominal_id = UUID(register(here))
    with pytest.raises(NotFound):
        await post(here, entry(), nominal_id, principal=STRANGER)
    with pytest.raises(NotFound):
        await post(here, entry(), uuid.uuid4())
    with pytest.raises(PreconditionFailed):
        await post(here, entry(), nominal_id, if_match=7)
    assert (await post(here, entry(), nominal_id, if_match=1)).version == 2
    assert versions(here, str(nominal_id)) == [1, 2]


async def test_a_post_on_the_loop_after_another_process_wrote_is_stored_after_it(here, elsewhere):
    nominal_id = UUID(register(here))  # cached here at version 1
    elsewhere.records.post_event(POLICE, nominal_id, entry(), None)

    posted = await post(here, entry(), nominal_id)

    assert posted.version == 3
    assert versions(here, str(nominal_id)) == [1, 2, 3]
    assert verify_nominal(here.ledger.app, nominal_id).intact


async def test_a_post_on_the_loop_waits_its_turn_in_a_thread(here):
    nominal_id = UUID(register(here))
    holding, release = threading.Event(), threading.Event()

    def hold() -> None:
        with here.ledger.locks.hold(nominal_id, timeout=1):
            holding.set()
            release.wait(5)

    holder = threading.Thread(target=hold)
    holder.start()
    holding.wait(5)
    threading.Timer(0.2, release.set).start()
    posted = await post(here, entry(), nominal_id)
    holder.join()

    assert posted.version == 2


async def test_posts_on_the_loop_and_in_threads_at_once_lose_and_double_nothing(here, elsewhere):
    nominal_id = UUID(register(here))
    stored: list[int] = []

    def in_thread(layer: Application) -> None:
        for _ in range(10):
            stored.append(layer.records.post_event(POLICE, nominal_id, entry(), None).version)

    threads = [threading.Thread(target=in_thread, args=(r,)) for r in (here, elsewhere)]
    for t in threads:
        t.start()
    posts = [here.records.post(POLICE, nominal_id, entry(), None) for _ in range(20)]
    stored.extend(p.version for p in await asyncio.gather(*posts))
    for t in threads:
        await asyncio.to_thread(t.join)

    assert sorted(stored) == list(range(2, 42))
    assert versions(here, str(nominal_id)) == list(range(1, 42))
    assert verify_nominal(here.ledger.app, nominal_id).intact


async def test_a_request_that_stops_waiting_does_not_stop_the_batch_thread():
    def slow_answer(items: list[int]) -> list[int]:
        time.sleep(0.2)
        return [i * 10 for i in items]

    batched: Batched[int, int] = Batched("test", slow_answer, max_batch=8)
    try:
        waiting = asyncio.create_task(awaited(batched.submit(1)))
        await asyncio.sleep(0.05)
        waiting.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiting
        assert await awaited(batched.submit(2)) == 20  # the thread answers still
    finally:
        batched.close()


async def test_a_retry_is_answered_from_the_index_without_the_record_s_turn_or_a_commit(here):
    nominal_id = UUID(register(here))
    new = entry()
    first = await post(here, new, nominal_id)
    committer = here.ledger.committer
    appends, batches = committer.appends, committer.batches
    holding, release = threading.Event(), threading.Event()

    def hold() -> None:  # another post of this process holds the record's turn meanwhile
        with here.ledger.locks.hold(nominal_id, timeout=1):
            holding.set()
            release.wait(10)

    holder = threading.Thread(target=hold)
    holder.start()
    holding.wait(5)
    try:
        again = await asyncio.wait_for(post(here, new, nominal_id), timeout=5)
    finally:
        release.set()
        holder.join()

    assert (again.created, again.event) == (False, first.event)
    assert (committer.appends, committer.batches) == (appends, batches)  # no commit asked
    # Another body under the same id, or a stranger, still gets its own refusal.
    with pytest.raises(Conflict, match="different body"):
        await post(here, entry(event_id=new.event_id, subject="Another"), nominal_id)
    with pytest.raises(NotFound):
        await post(here, new, nominal_id, principal=STRANGER)
    assert versions(here, str(nominal_id)) == [1, 2]
