"""Floods end (hardening point 9): what one record, one officer or one connection can make
the service hold is bounded."""

from __future__ import annotations

import uuid
from uuid import UUID

import pytest

from domain.nominal import VIEW_LIST_LIMIT
from service.auth import Principal
from service.records import NewEvent

POLICE = Principal(
    sub="test-police", agency="police:kent", scopes=frozenset({"records:read", "records:write"})
)


def test_a_record_s_view_holds_its_latest_items_and_points_to_the_rest(
    service, client, auth, register
):
    nominal_id = register("police:kent")
    more = 7
    for i in range(VIEW_LIST_LIMIT + more):
        service.records.post_event(
            POLICE,
            UUID(nominal_id),
            NewEvent(
                uuid.uuid4(),
                "EntryRecorded",
                "2026-11-20",
                {"entry_type": "contact", "subject": f"contact {i}", "body": "b"},
            ),
            None,
        )

    view = client.get(f"/v1/nominals/{nominal_id}", headers=auth("police:kent")).json()

    subjects = [e["subject"] for e in view["entries"]]
    assert subjects == [f"contact {i}" for i in range(more, VIEW_LIST_LIMIT + more)]
    assert view["omitted"] == {"entries": more}
    history = client.get(
        view["history"], params={"limit": 1000}, headers=auth("police:kent")
    ).json()
    recorded = [e["payload"]["subject"] for e in history["events"] if e["type"] == "EntryRecorded"]
    assert recorded == [f"contact {i}" for i in range(VIEW_LIST_LIMIT + more)]


def _history_of(index: int):
    """A record folded from the bench's national data set (its history, by the domain)."""
    from datetime import datetime

    from bench.import_ import nominal_history
    from domain.calendar import london_date
    from domain.identifiers import normalised_identifiers
    from domain.nominal import Nominal

    nominal = None
    for line in nominal_history(index):
        at = datetime.fromisoformat(line["recorded_at"].replace("Z", "+00:00"))
        fields = {
            "event_id": line["event_id"],
            "occurred_at": line["occurred_at"],
            "recorded_at": at,
            "recorded_by": line["recorded_by"],
        }
        if nominal is None:
            payload = dict(line["payload"])
            payload["identifiers"] = normalised_identifiers(payload["identifiers"], london_date(at))
            nominal = Nominal.register(
                nominal_id=UUID(line["nominal_id"]), payload=payload, **fields
            )
        else:
            nominal.record(line["type"], payload=line["payload"], **fields)
    nominal.collect_events()
    return nominal


def test_the_record_cache_keeps_within_its_bytes_whatever_its_count():
    import pickle

    from service.store.cache import LIVE_PER_PICKLED, RecordCache

    records = [_history_of(i) for i in range(40)]
    weights = {
        n.id: len(pickle.dumps(n, pickle.HIGHEST_PROTOCOL)) * LIVE_PER_PICKLED for n in records
    }
    bound = sum(sorted(weights.values())[:10])  # room for about ten of the forty
    cache = RecordCache(maxsize=1_000, max_bytes=bound)
    for nominal in records:
        cache.put(nominal)
        assert cache.bytes <= bound
    kept = [n for n in records if cache.shared(n.id) is not None]
    assert 1 <= len(kept) < 40
    assert cache.bytes == sum(weights[n.id] for n in kept)  # first weighed: exactly measured
    assert kept == records[-len(kept) :]  # the most recently kept ones

    # A record larger than the whole bound is not kept at all; nothing else is pushed out.
    before = len(cache)
    cache_small = RecordCache(maxsize=1_000, max_bytes=min(weights.values()) - 1)
    cache_small.put(records[0])
    assert len(cache_small) == 0 and cache_small.bytes == 0
    assert len(cache) == before


def test_a_record_growing_in_the_cache_is_scaled_by_its_events_and_weighed_again_by_a_quarter():
    import pickle
    from datetime import UTC, datetime

    from service.store.cache import LIVE_PER_PICKLED, RecordCache

    nominal = _history_of(4)  # a long history (over a hundred events)
    start = nominal.version
    cache = RecordCache(maxsize=10)
    cache.put(nominal)
    first = cache.bytes
    assert first == len(pickle.dumps(nominal, pickle.HIGHEST_PROTOCOL)) * LIVE_PER_PICKLED

    def grow(to: int):
        record = cache.take(nominal.id)
        assert cache.bytes == 0  # the writer has it: nothing is kept
        while record.version < to:
            record.record(
                "EntryRecorded",
                event_id=str(uuid.uuid4()),
                occurred_at="2026-11-20",
                recorded_at=datetime.now(UTC),
                recorded_by={"sub": "t", "agency": record.registered_by["agency"]},
                payload={"entry_type": "contact", "subject": "s", "body": "b"},
            )
        record.collect_events()
        cache.put(record)
        return record

    grown = grow(start + start // 10)  # a tenth more: scaled, not pickled again
    assert cache.bytes == first * grown.version // start
    grown = grow(int(start * 1.25) + 1)  # a quarter more: weighed afresh
    assert cache.bytes == len(pickle.dumps(grown, pickle.HIGHEST_PROTOCOL)) * LIVE_PER_PICKLED


# -- event streams --------------------------------------------------------------------------


@pytest.fixture
def few_streams(app):
    """At most two streams an officer and three in all, for this test only."""
    from api.routes.feed import _feed
    from service.feed import StreamLimits

    _feed(app)
    saved = app.state.feed_limits
    app.state.feed_limits = StreamLimits(per_officer=2, total=3, max_seconds=30)
    yield
    app.state.feed_limits = saved


HELD: list = []  # the line readers of open streams: dropping one would close its stream


def _open(stack, client, token: str):
    """An event stream held open; its response once the first line arrived."""
    r = stack.enter_context(
        client.stream(
            "GET",
            "/v1/feed",
            params={"after": 10**12},
            headers={"Authorization": f"Bearer {token}", "Accept": "text/event-stream"},
        )
    )
    if r.status_code == 200:
        lines = r.iter_lines()
        assert next(lines).startswith("retry:")
        HELD.append(lines)
    else:
        r.read()  # a refusal is a problem document, read whole
    return r


def test_streams_are_capped_per_officer_and_in_all(client, token, few_streams):
    import contextlib

    def officer(n: int) -> str:
        return token("police:kent", "feed:read", sub=f"officer-{n}")

    with contextlib.ExitStack() as outer:
        first = [_open(outer, client, officer(1)) for _ in range(2)]
        assert [r.status_code for r in first] == [200, 200]
        with contextlib.ExitStack() as inner:
            third = _open(inner, client, officer(1))
            assert third.status_code == 429
            assert third.headers["content-type"] == "application/problem+json"
            assert third.headers["Retry-After"] == "5"
            assert _open(inner, client, officer(2)).status_code == 200  # another officer may
            full = _open(inner, client, officer(3))
            assert (full.status_code, full.json()["type"].rsplit("/", 1)[-1]) == (
                503,
                "streams-full",
            )
        # The other officer's stream closed: there is room again, for anyone within limits.
        assert _open(outer, client, officer(3)).status_code == 200
    HELD.clear()


def test_a_stream_ends_when_its_token_expires(client, token, few_streams):
    import time

    short = token("police:kent", "feed:read", sub="short-lived", ttl=2)
    started = time.monotonic()
    with client.stream(
        "GET",
        "/v1/feed",
        params={"after": 10**12},
        headers={"Authorization": f"Bearer {short}", "Accept": "text/event-stream"},
    ) as r:
        assert r.status_code == 200
        lines = list(r.iter_lines())  # ends by itself, long before the 30 s the limits allow
    assert time.monotonic() - started < 10
    assert lines[0].startswith("retry:")


def test_a_half_open_database_connection_is_noticed_within_a_minute(settings):
    # The URL sets none of them: every path of the service gets the keepalive defaults.
    from service.runtime.database import NETWORK_DEFAULTS, open_database

    db = open_database(settings)
    with db.connect() as conn:
        used = conn.info.get_parameters()
    assert {k: used.get(k) for k in NETWORK_DEFAULTS} == NETWORK_DEFAULTS
    # One the URL sets itself wins.
    own = settings.model_copy(update={"database_url": settings.database_url + "&keepalives_idle=5"})
    with open_database(own).connect() as conn:
        assert conn.info.get_parameters()["keepalives_idle"] == "5"
