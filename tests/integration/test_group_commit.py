"""Group commit: concurrent appends share transactions, and nothing else changes: from
threads (`post_event`) and from coroutines on one event loop (`post`, as the routes post)."""

import asyncio
import threading
import uuid
from uuid import UUID

from domain.chain import GENESIS_HASH
from service.auth import Principal
from service.records import NewEvent
from tests.conftest import registration

KENT = Principal(sub="t", agency="police:kent", scopes=frozenset({"records:read", "records:write"}))


def _register(layer) -> UUID:
    body = registration()
    body.pop("event_id")
    return UUID(layer.records.register(KENT, uuid.uuid4(), None, body).nominal_id)


def _entry(i: int) -> NewEvent:
    return NewEvent(
        uuid.uuid4(),
        "EntryRecorded",
        "2026-11-20",
        {"entry_type": "contact", "subject": f"contact {i}", "body": "phoned"},
    )


def _run_together(threads: int, work) -> None:
    barrier = threading.Barrier(threads)
    errors: list[BaseException] = []

    def run(n: int) -> None:
        barrier.wait()
        try:
            work(n)
        except BaseException as e:  # noqa: BLE001
            errors.append(e)

    pool = [threading.Thread(target=run, args=(n,)) for n in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    assert errors == []


def test_concurrent_appends_to_many_records_share_transactions_and_all_land(service):
    layer = service
    nominals = [_register(layer) for _ in range(16)]
    batches_before, appends_before = layer.ledger.committer.batches, layer.ledger.committer.appends
    positions: list[int] = []

    def work(n: int) -> None:
        for i in range(20):
            posted = layer.records.post_event(KENT, nominals[n], _entry(i), None)
            positions.append(posted.event["position"])

    _run_together(16, work)
    appends = layer.ledger.committer.appends - appends_before
    batches = layer.ledger.committer.batches - batches_before
    assert appends == 16 * 20
    assert batches < appends  # some appends committed together
    assert len(set(positions)) == 16 * 20
    for nominal_id in nominals:
        events = list(
            layer.reading.history(KENT, nominal_id, from_version=1, limit=100, justification=None)
        )
        assert [e["version"] for e in events] == list(range(1, 22))
        prev = GENESIS_HASH
        for e in events:
            assert e["prev_hash"] == prev
            prev = e["hash"]


def test_concurrent_appends_to_one_record_keep_its_order_and_lose_nothing(service):
    layer = service
    nominal_id = _register(layer)

    def work(n: int) -> None:
        for i in range(5):
            layer.records.post_event(KENT, nominal_id, _entry(n * 100 + i), None)

    _run_together(8, work)
    events = list(
        layer.reading.history(KENT, nominal_id, from_version=1, limit=100, justification=None)
    )
    assert [e["version"] for e in events] == list(range(1, 42))
    assert len({e["event_id"] for e in events}) == 41
    positions = [e["position"] for e in events]
    assert positions == sorted(positions)


async def test_posts_awaited_on_one_event_loop_share_commits_and_all_land(service):
    nominals = [_register(service) for _ in range(16)]
    committer = service.ledger.committer
    batches_before, appends_before = committer.batches, committer.appends

    async def client(nominal_id: UUID) -> list[int]:
        versions = []
        for i in range(10):  # one officer's posts, one after another
            posted = await service.records.post(KENT, nominal_id, _entry(i), None)
            assert posted.created
            versions.append(posted.version)
        return versions

    answered = await asyncio.gather(*(client(n) for n in nominals))

    assert answered == [list(range(2, 12))] * 16
    assert committer.appends - appends_before == 16 * 10
    # Sixteen clients waiting on one loop: their appends are committed together.
    assert committer.batches - batches_before < 16 * 10
    for nominal_id in nominals:
        events = list(
            service.reading.history(KENT, nominal_id, from_version=1, limit=100, justification=None)
        )
        assert [e["version"] for e in events] == list(range(1, 12))
        assert all(e["prev_hash"] == p["hash"] for p, e in zip(events, events[1:], strict=False))
