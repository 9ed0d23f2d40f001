"""Concurrent writers: optimistic concurrency through If-Match, and many writers at once."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import httpx

from tests.conftest import event

WRITERS = 32


def _entry(n: int) -> dict:
    return event(
        "EntryRecorded",
        {"entry_type": "activity", "subject": f"writer {n}", "body": "concurrent post"},
    )


def _history(client, auth, nominal_id: str) -> list[dict]:
    r = client.get(
        f"/v1/nominals/{nominal_id}/history", params={"limit": 1000}, headers=auth("police:kent")
    )
    assert r.status_code == 200
    return r.json()["events"]


def test_32_posts_with_the_same_if_match_store_exactly_one(base_url, register, client, auth):
    nominal_id = register("police:kent")
    headers = auth("police:kent", **{"If-Match": '"1"'})
    start = threading.Barrier(WRITERS)

    def post(n: int) -> int:
        with httpx.Client(base_url=base_url, timeout=30) as c:
            body = _entry(n)
            start.wait()
            return c.post(
                f"/v1/nominals/{nominal_id}/events", json=body, headers=headers
            ).status_code

    with ThreadPoolExecutor(WRITERS) as pool:
        codes = list(pool.map(post, range(WRITERS)))
    assert sorted(codes) == [201] + [412] * (WRITERS - 1)
    versions = [e["version"] for e in _history(client, auth, nominal_id)]
    assert versions == [1, 2]


def test_32_posts_without_if_match_all_land_with_contiguous_versions(
    base_url, register, client, auth
):
    nominal_id = register("police:kent")
    headers = auth("police:kent")
    start = threading.Barrier(WRITERS)
    bodies = [_entry(n) for n in range(WRITERS)]

    def post(body: dict) -> int:
        with httpx.Client(base_url=base_url, timeout=60) as c:
            start.wait()
            return c.post(
                f"/v1/nominals/{nominal_id}/events", json=body, headers=headers
            ).status_code

    with ThreadPoolExecutor(WRITERS) as pool:
        codes = list(pool.map(post, bodies))
    assert codes == [201] * WRITERS
    events = _history(client, auth, nominal_id)
    assert [e["version"] for e in events] == list(range(1, WRITERS + 2))
    assert sorted(e["event_id"] for e in events[1:]) == sorted(b["event_id"] for b in bodies)
    positions = [e["position"] for e in events]
    assert positions == sorted(positions)
    assert all(b["prev_hash"] == a["hash"] for a, b in zip(events, events[1:], strict=False))


def test_the_same_event_id_posted_32_times_at_once_is_stored_once(base_url, register, client, auth):
    nominal_id = register("police:kent")
    headers = auth("police:kent")
    body = _entry(0)
    start = threading.Barrier(WRITERS)

    def post(_: int) -> tuple[int, int]:
        with httpx.Client(base_url=base_url, timeout=60) as c:
            start.wait()
            r = c.post(f"/v1/nominals/{nominal_id}/events", json=body, headers=headers)
            return r.status_code, r.json().get("version", -1)

    with ThreadPoolExecutor(WRITERS) as pool:
        answers = list(pool.map(post, range(WRITERS)))
    assert sorted(code for code, _ in answers) == [200] * (WRITERS - 1) + [201]
    assert {version for _, version in answers} == {2}
    assert [e["version"] for e in _history(client, auth, nominal_id)] == [1, 2]
