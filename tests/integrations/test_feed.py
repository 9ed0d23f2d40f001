"""The feed, through the HTTP API with real tokens: notices, paging, access, the stream,
and consumers that follow it across concurrent writers."""

from __future__ import annotations

import asyncio
import importlib.util
import json
import threading
from pathlib import Path

import httpx
import pytest

from tests.conftest import NOTHING, event

ROOT = Path(__file__).resolve().parents[2]
NOTICE_FIELDS = {
    "position",
    "event_id",
    "type",
    "nominal_id",
    "version",
    "agency",
    "recorded_at",
    "detail_url",
}


def _example():
    spec = importlib.util.spec_from_file_location(
        "feed_consumer", ROOT / "examples/feed_consumer.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


feed_consumer = _example()


@pytest.fixture
def feed_token(token):
    return token("police:kent", "feed:read")


@pytest.fixture
def latest(service):
    def position() -> int:
        return service.ledger.app.recorder.max_notification_id() or 0

    return position


def entry(subject="Visit"):
    return event(
        "EntryRecorded", {"entry_type": "visit", "subject": subject, "body": "Seen at home"}
    )


def post(client, auth, nominal_id, body, agency="police:kent"):
    r = client.post(f"/v1/nominals/{nominal_id}/events", json=body, headers=auth(agency))
    assert r.status_code == 201, r.text
    return r.json()


def test_notices_name_the_event_and_carry_no_personal_data(
    client, auth, register, latest, feed_token
):
    start = latest()
    nominal_id = register("police:kent", name={"family": "Zebedee", "given": ["Quentin"]})
    stored = post(client, auth, nominal_id, entry())
    r = client.get(
        "/v1/feed", params={"after": start}, headers={"Authorization": f"Bearer {feed_token}"}
    )
    assert r.status_code == 200, r.text
    notices = [n for n in r.json()["notices"] if n["nominal_id"] == nominal_id]
    assert [n["type"] for n in notices] == ["NominalRegistered", "EntryRecorded"]
    assert all(set(n) == NOTICE_FIELDS for n in notices)
    last = notices[-1]
    assert last == {
        "position": stored["position"],
        "event_id": stored["event_id"],
        "type": "EntryRecorded",
        "nominal_id": nominal_id,
        "version": 2,
        "agency": "police:kent",
        "recorded_at": stored["recorded_at"],
        "detail_url": f"/v1/nominals/{nominal_id}/history?from_version=2&limit=1",
    }
    assert "Zebedee" not in r.text and "Seen at home" not in r.text
    assert r.json()["next_after"] == r.json()["notices"][-1]["position"]


def test_the_detail_url_serves_a_partner_and_hides_the_event_from_a_stranger(
    client, auth, register, latest, feed_token
):
    start = latest()
    nominal_id = register("police:kent")
    r = client.get(
        "/v1/feed", params={"after": start}, headers={"Authorization": f"Bearer {feed_token}"}
    )
    notice = next(n for n in r.json()["notices"] if n["nominal_id"] == nominal_id)
    mine = client.get(notice["detail_url"], headers=auth("police:kent", "records:read"))
    assert mine.status_code == 200
    assert mine.json()["events"][0]["event_id"] == notice["event_id"]
    theirs = client.get(notice["detail_url"], headers=auth("police:essex", "records:read"))
    assert theirs.status_code == 404


def test_the_feed_needs_feed_read(client, auth, footprint):
    mark = footprint.mark()
    assert client.get("/v1/feed").status_code == 401
    r = client.get("/v1/feed", headers=auth("police:kent", "records:read records:write"))
    assert r.status_code == 403
    r = client.get(
        "/v1/feed", headers=auth("police:kent", "records:read") | {"Accept": "text/event-stream"}
    )
    assert r.status_code == 403
    assert footprint.since(mark) == NOTHING


def test_bad_positions_and_limits_are_refused(client, feed_token):
    headers = {"Authorization": f"Bearer {feed_token}"}
    assert client.get("/v1/feed", params={"after": -1}, headers=headers).status_code == 422
    assert client.get("/v1/feed", params={"limit": 0}, headers=headers).status_code == 422
    assert client.get("/v1/feed", params={"limit": 1001}, headers=headers).status_code == 422
    r = client.get("/v1/feed", headers=headers | {"Last-Event-ID": "abc"})
    assert r.status_code == 400


def test_pages_follow_one_another_without_gaps_or_repeats(
    client, auth, register, latest, feed_token
):
    start = latest()
    nominal_id = register("police:kent")
    for i in range(6):
        post(client, auth, nominal_id, entry(f"visit {i}"))
    seen = []
    after = start
    while True:
        r = client.get(
            "/v1/feed",
            params={"after": after, "limit": 2},
            headers={"Authorization": f"Bearer {feed_token}"},
        )
        page = r.json()
        seen += page["notices"]
        if not page["notices"]:
            assert page["next_after"] == after
            break
        after = page["next_after"]
    ours = [n["version"] for n in seen if n["nominal_id"] == nominal_id]
    assert ours == [1, 2, 3, 4, 5, 6, 7]
    positions = [n["position"] for n in seen]
    assert positions == sorted(set(positions))


def _writers(client, auth, nominal_ids, per_writer, writers):
    """Concurrent writers on shared records; returns the event ids they stored."""
    posted: list[str] = []
    lock = threading.Lock()
    errors: list[BaseException] = []

    def write(w: int) -> None:
        try:
            for i in range(per_writer):
                body = entry(f"writer {w} entry {i}")
                stored = post(client, auth, nominal_ids[(w + i) % len(nominal_ids)], body)
                with lock:
                    posted.append(stored["event_id"])
        except BaseException as e:  # noqa: BLE001 - reported by the test
            errors.append(e)

    threads = [threading.Thread(target=write, args=(w,)) for w in range(writers)]
    return threads, posted, errors


def test_a_consumer_following_the_feed_sees_every_event_once_and_in_order(
    client, base_url, auth, register, latest, feed_token
):
    start = latest()
    nominal_ids = [register("police:kent") for _ in range(3)]
    threads, posted, errors = _writers(client, auth, nominal_ids, per_writer=15, writers=6)
    done = threading.Event()
    followed: list[dict] = []

    def consume() -> None:
        after = start
        with httpx.Client(base_url=base_url, timeout=30) as own:
            while True:
                finished = done.is_set()  # read before the page: the last page is complete
                for notice in feed_consumer.pages(own, feed_token, after, limit=7):
                    followed.append(notice)
                    after = notice["position"]
                if finished:
                    return

    consumer = threading.Thread(target=consume)
    consumer.start()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    done.set()
    consumer.join(timeout=60)
    assert not errors, errors
    assert not consumer.is_alive()

    ours = [n for n in followed if n["nominal_id"] in nominal_ids and n["type"] == "EntryRecorded"]
    ids = [n["event_id"] for n in ours]
    assert len(ids) == len(set(ids)) == len(posted) == 90
    assert set(ids) == set(posted)
    positions = [n["position"] for n in followed]
    assert positions == sorted(positions) and len(positions) == len(set(positions))
    for nominal_id in nominal_ids:
        versions = [n["version"] for n in followed if n["nominal_id"] == nominal_id]
        assert versions == list(range(1, 32))  # registered after `start`
    # What the consumer saw live is exactly what a reader sees once everything committed.
    after_the_fact = list(feed_consumer.pages(client, feed_token, start))
    assert followed == after_the_fact


def _sse(response):
    """The notices of an event stream, each with the id the server sent."""
    data, event_id = [], None
    for line in response.iter_lines():
        if line.startswith("id:"):
            event_id = line[3:].strip()
        elif line.startswith("data:"):
            data.append(line[5:].strip())
        elif line == "" and data:
            yield json.loads("\n".join(data)), event_id
            data = []


async def _read_stream_async(response: httpx.Response, count: int):
    """The first `count` notices of an event stream read as it arrives, and their ids."""
    notices, ids, data, event_id = [], [], [], None
    async for line in response.aiter_lines():
        if line.startswith("id:"):
            event_id = line[3:].strip()
        elif line.startswith("data:"):
            data.append(line[5:].strip())
        elif line == "" and data:
            notices.append(json.loads("\n".join(data)))
            ids.append(event_id)
            data = []
            if len(notices) == count:
                break
    return notices, ids


async def test_the_stream_delivers_notices_as_they_commit_and_resumes_with_last_event_id(
    base_url, auth, register, latest, feed_token
):
    nominal_id = register("police:kent")
    start = latest()
    headers = {"Authorization": f"Bearer {feed_token}", "Accept": "text/event-stream"}

    async def post_live(api: httpx.AsyncClient, subject: str) -> None:
        r = await api.post(
            f"/v1/nominals/{nominal_id}/events", json=entry(subject), headers=auth("police:kent")
        )
        assert r.status_code == 201, r.text

    async with httpx.AsyncClient(base_url=base_url, timeout=httpx.Timeout(10.0)) as api:
        async with api.stream("GET", "/v1/feed", params={"after": start}, headers=headers) as r:
            assert r.status_code == 200
            assert r.headers["content-type"].startswith("text/event-stream")
            # Posted after the stream opened: they must arrive through the open connection.
            reading = asyncio.create_task(_read_stream_async(r, 3))
            for i in range(3):
                await post_live(api, f"live {i}")
            notices, ids = await asyncio.wait_for(reading, timeout=10)
        assert [n["version"] for n in notices if n["nominal_id"] == nominal_id] == [2, 3, 4]
        assert ids == [str(n["position"]) for n in notices]
        await post_live(api, "after the disconnect")
        resumed_headers = headers | {"Last-Event-ID": ids[1]}
        async with api.stream("GET", "/v1/feed", params={"after": 0}, headers=resumed_headers) as r:
            resumed, _ = await _read_stream_async(r, 2)
    assert [n["version"] for n in resumed] == [4, 5]


def test_a_streaming_consumer_sees_every_event_once_and_in_order_across_concurrent_writers(
    base_url, client, auth, register, latest, feed_token
):
    nominal_ids = [register("police:kent") for _ in range(2)]
    start = latest()
    threads, posted, errors = _writers(client, auth, nominal_ids, per_writer=10, writers=4)
    headers = {"Authorization": f"Bearer {feed_token}", "Accept": "text/event-stream"}
    with (
        httpx.Client(base_url=base_url, timeout=httpx.Timeout(10.0)) as sse,
        sse.stream("GET", "/v1/feed", params={"after": start, "limit": 5}, headers=headers) as r,
    ):
        for t in threads:
            t.start()
        streamed = []
        for notice, _ in _sse(r):
            streamed.append(notice)
            if len([n for n in streamed if n["nominal_id"] in nominal_ids]) == 40:
                break
        for t in threads:
            t.join()
    assert not errors, errors
    ids = [n["event_id"] for n in streamed if n["nominal_id"] in nominal_ids]
    assert len(ids) == len(set(ids)) == 40 and set(ids) == set(posted)
    positions = [n["position"] for n in streamed]
    assert positions == sorted(set(positions))
    for nominal_id in nominal_ids:
        assert [n["version"] for n in streamed if n["nominal_id"] == nominal_id] == list(
            range(2, 22)
        )


def test_the_example_stream_client_resumes_after_the_position_it_is_given(
    base_url, client, auth, register, latest, feed_token
):
    nominal_id = register("police:kent")
    start = latest()
    for i in range(3):
        post(client, auth, nominal_id, entry(f"example {i}"))
    with httpx.Client(base_url=base_url, timeout=httpx.Timeout(10.0)) as sse:
        notices = feed_consumer.stream(sse, feed_token, start)
        first = [next(notices) for _ in range(3)]
        notices.close()
    ours = [n["version"] for n in first if n["nominal_id"] == nominal_id]
    assert ours == [2, 3, 4]


@pytest.fixture
def short_streams(app):
    """Streams that beat every 0.2 s and end after 1 s, for this test only."""
    from api.routes.feed import _feed
    from service.feed import StreamLimits

    _feed(app)
    saved = app.state.feed_limits
    app.state.feed_limits = StreamLimits(heartbeat_seconds=0.2, max_seconds=1.0)
    yield
    app.state.feed_limits = saved


def test_a_quiet_stream_sends_keep_alives_and_ends_so_the_client_reconnects(
    base_url, latest, feed_token, short_streams
):
    headers = {"Authorization": f"Bearer {feed_token}", "Accept": "text/event-stream"}
    with (
        httpx.Client(base_url=base_url, timeout=httpx.Timeout(10.0)) as sse,
        sse.stream("GET", "/v1/feed", params={"after": latest() + 10**9}, headers=headers) as r,
    ):
        lines = list(r.iter_lines())  # ends by itself: the server closes the stream
    assert lines[0] == "retry: 2000"
    assert ": keep-alive" in lines
    assert not any(line.startswith("data:") for line in lines)


def test_the_integration_routes_are_in_the_openapi_document(client):
    paths = client.get("/openapi.json").json()["paths"]
    assert "text/event-stream" in paths["/v1/feed"]["get"]["responses"]["200"]["content"]
    inbound = paths["/v1/inbound/hmpps-domain-events"]["post"]
    assert inbound["requestBody"]["content"]["application/json"]["example"]["eventType"]
