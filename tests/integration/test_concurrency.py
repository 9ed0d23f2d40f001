"""Concurrent writers through `Records` on the real database: nothing lost, nothing doubled.

Threads start together at a barrier and call the service as concurrent requests would.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from service.auth import Principal
from service.bootstrap import Application
from service.records import Conflict, NewEvent, Posted, PreconditionFailed
from tests.conftest import random_crn, random_pnc, registration

POLICE = Principal(
    sub="test-police", agency="police:kent", scopes=frozenset({"records:read", "records:write"})
)


def together(n: int, call: Callable[[int], Any]) -> list[Any]:
    """Run call(i) in n threads released at once; each result, or the exception raised."""
    barrier = threading.Barrier(n)

    def run(i: int) -> Any:
        barrier.wait(timeout=30)
        try:
            return call(i)
        except Exception as e:  # noqa: BLE001 - the test sorts outcomes by kind
            return e

    with ThreadPoolExecutor(max_workers=n) as pool:
        return list(pool.map(run, range(n)))


@pytest.fixture
def layer(service) -> Application:
    return service


def register(layer: Application, **overrides: Any) -> str:
    body = registration(**overrides)
    event_id = uuid.UUID(body.pop("event_id"))
    return layer.records.register(POLICE, event_id, None, body).nominal_id


def entry(event_id: uuid.UUID | None = None, subject: str = "Sighting") -> NewEvent:
    return NewEvent(
        event_id=event_id or uuid.uuid4(),
        type="EntryRecorded",
        occurred_at="2026-11-20",
        payload={"entry_type": "intelligence", "subject": subject, "body": "Seen near the school"},
    )


def versions(layer: Application, nominal_id: str) -> list[int]:
    return [
        e["version"]
        for e in layer.reading.history(
            POLICE, uuid.UUID(nominal_id), from_version=1, limit=1000, justification=None
        )
    ]


def test_eight_concurrent_posts_of_one_event_store_it_once(layer):
    nominal_id = register(layer)
    new = entry()
    outcomes = together(
        8, lambda _: layer.records.post_event(POLICE, uuid.UUID(nominal_id), new, None)
    )
    assert all(isinstance(o, Posted) for o in outcomes), outcomes
    assert sum(o.created for o in outcomes) == 1
    assert {o.event["version"] for o in outcomes} == {2}
    assert {o.event["hash"] for o in outcomes} == {outcomes[0].event["hash"]}
    assert versions(layer, nominal_id) == [1, 2]


def test_concurrent_posts_of_one_event_id_with_different_bodies_store_one_and_refuse_the_rest(
    layer,
):
    nominal_id = register(layer)
    event_id = uuid.uuid4()
    outcomes = together(
        8,
        lambda i: layer.records.post_event(
            POLICE, uuid.UUID(nominal_id), entry(event_id, f"s{i}"), None
        ),
    )
    stored = [o for o in outcomes if isinstance(o, Posted)]
    assert len(stored) == 1 and stored[0].created
    assert all(isinstance(o, Conflict) for o in outcomes if not isinstance(o, Posted)), outcomes
    assert versions(layer, nominal_id) == [1, 2]


def test_eight_concurrent_registrations_of_one_event_store_one_record(layer):
    body = registration()
    event_id = uuid.UUID(body.pop("event_id"))
    outcomes = together(8, lambda _: layer.records.register(POLICE, event_id, None, dict(body)))
    assert all(isinstance(o, Posted) for o in outcomes), outcomes
    assert sum(o.created for o in outcomes) == 1
    assert len({o.nominal_id for o in outcomes}) == 1


def test_concurrent_registrations_of_one_pnc_make_exactly_one_record(layer):
    pnc = random_pnc()
    outcomes = together(8, lambda _: register(layer, identifiers={"pnc": pnc, "crn": random_crn()}))
    created = [o for o in outcomes if isinstance(o, str)]
    refused = [o for o in outcomes if not isinstance(o, str)]
    assert len(created) == 1, outcomes
    assert refused and all(isinstance(o, Conflict) for o in refused), refused
    found = layer.reading.lookup(POLICE, {"pnc": pnc}, None)
    assert [r["nominal_id"] for r in found] == created


def test_sixteen_concurrent_posts_without_if_match_are_all_stored_in_contiguous_versions(layer):
    nominal_id = register(layer)
    outcomes = together(
        16,
        lambda i: layer.records.post_event(
            POLICE, uuid.UUID(nominal_id), entry(subject=f"s{i}"), None
        ),
    )
    assert all(isinstance(o, Posted) and o.created for o in outcomes), outcomes
    assert sorted(o.version for o in outcomes) == list(range(2, 18))
    assert versions(layer, nominal_id) == list(range(1, 18))
    history = list(
        layer.reading.history(
            POLICE, uuid.UUID(nominal_id), from_version=1, limit=100, justification=None
        )
    )
    for before, after in zip(history, history[1:], strict=False):
        assert after["prev_hash"] == before["hash"]
        assert after["position"] > before["position"]
    assert {e["payload"]["subject"] for e in history[1:]} == {f"s{i}" for i in range(16)}


def test_sixteen_concurrent_posts_with_the_same_if_match_store_exactly_one(layer):
    nominal_id = register(layer)
    outcomes = together(
        16,
        lambda i: layer.records.post_event(
            POLICE, uuid.UUID(nominal_id), entry(subject=f"s{i}"), 1
        ),
    )
    stored = [o for o in outcomes if isinstance(o, Posted)]
    refused = [o for o in outcomes if not isinstance(o, Posted)]
    assert len(stored) == 1, outcomes
    assert len(refused) == 15 and all(isinstance(o, PreconditionFailed) for o in refused), refused
    assert versions(layer, nominal_id) == [1, 2]


def test_a_conflict_in_a_shared_commit_refuses_only_the_append_that_conflicted(layer):
    # Concurrent appends to different records may share one transaction (committer.py):
    # one conflicting identifier must not take the other appends down with it.
    pnc = random_pnc()
    others = [register(layer) for _ in range(8)]

    def work(i: int) -> Any:
        if i < 2:
            return register(layer, identifiers={"pnc": pnc, "crn": random_crn()})
        if i < 10:
            return layer.records.post_event(POLICE, uuid.UUID(others[i - 2]), entry(), None)
        return register(layer)

    outcomes = together(16, work)
    conflicts = [o for o in outcomes[:2] if isinstance(o, Conflict)]
    assert len(conflicts) == 1, outcomes[:2]
    assert all(isinstance(o, Posted) and o.version == 2 for o in outcomes[2:10]), outcomes
    assert all(isinstance(o, str) for o in outcomes[10:]), outcomes[10:]
    for nominal_id in others:
        assert versions(layer, nominal_id) == [1, 2]
