"""The per-process record cache (docs/adr/011): a record another process has moved on is
never decided on as if it had not.

`here` is the session's service; `elsewhere` is a second `Records` on the same database,
standing in for another worker process with a cache of its own.
"""

from __future__ import annotations

import json
import threading
import uuid
from uuid import UUID

import pytest

from service.access import JustificationRequired, NotFound
from service.auth import Principal
from service.bootstrap import Application
from service.consultation import Consultation
from service.integrity import verify_nominal
from service.reading import _view_json
from service.records import NewEvent, PreconditionFailed
from service.store.cache import RecordCache
from service.store.eventstore import read_newer, read_stream
from tests.integration.test_concurrency import POLICE, entry, register, versions

PRISON = Principal(
    sub="test-prison", agency="prison:hmp-leicester", scopes=frozenset({"records:write"})
)


def partnering(event_type: str, agency: str) -> NewEvent:
    return NewEvent(uuid.uuid4(), event_type, "2026-11-20", {"agency": agency, "reason": "test"})


def cached_version(layer: Application, nominal_id: UUID) -> int | None:
    """The version cached, left in the cache as it was found."""
    nominal = layer.ledger.cache.take(nominal_id)
    if nominal is None:
        return None
    layer.ledger.cache.put(nominal)
    return nominal.version


def test_a_read_brings_a_cached_record_up_to_date(here, elsewhere):
    nominal_id = UUID(register(here))
    assert here.reading.view(POLICE, nominal_id, None)["version"] == 1
    elsewhere.records.post_event(POLICE, nominal_id, entry(subject="Posted elsewhere"), None)

    view = here.reading.view(POLICE, nominal_id, None)

    assert view["version"] == 2
    assert [e["subject"] for e in view["entries"]] == ["Posted elsewhere"]
    assert cached_version(here, nominal_id) == 2


def test_a_post_on_a_stale_cache_is_stored_after_the_other_process_event(here, elsewhere):
    nominal_id = UUID(register(here))
    assert cached_version(here, nominal_id) == 1
    elsewhere.records.post_event(POLICE, nominal_id, entry(), None)

    posted = here.records.post_event(POLICE, nominal_id, entry(), None)

    assert posted.version == 3
    assert versions(here, str(nominal_id)) == [1, 2, 3]
    assert verify_nominal(here.ledger.app, nominal_id).intact


def test_if_match_is_judged_against_the_stored_record_not_the_cache(here, elsewhere):
    nominal_id = UUID(register(here))
    elsewhere.records.post_event(POLICE, nominal_id, entry(), None)  # here still caches version 1

    assert here.records.post_event(POLICE, nominal_id, entry(), 2).version == 3
    elsewhere.records.post_event(POLICE, nominal_id, entry(), None)  # here caches version 3

    with pytest.raises(PreconditionFailed):
        here.records.post_event(POLICE, nominal_id, entry(), 3)
    assert versions(here, str(nominal_id)) == [1, 2, 3, 4]


def test_partnering_ended_elsewhere_refuses_the_partner_here(here, elsewhere):
    nominal_id = UUID(register(here))
    here.records.post_event(POLICE, nominal_id, partnering("AgencyPartnered", PRISON.agency), None)
    assert cached_version(here, nominal_id) == 2
    elsewhere.records.post_event(
        POLICE, nominal_id, partnering("PartneringEnded", PRISON.agency), None
    )

    with pytest.raises(NotFound):
        here.records.post_event(PRISON, nominal_id, entry(), None)
    assert versions(here, str(nominal_id)) == [1, 2, 3]


def test_partnering_begun_elsewhere_admits_the_new_partner_here(here, elsewhere):
    nominal_id = UUID(register(here))
    elsewhere.records.post_event(
        POLICE, nominal_id, partnering("AgencyPartnered", PRISON.agency), None
    )

    assert here.records.post_event(PRISON, nominal_id, entry(), None).version == 3


def test_the_cache_keeps_the_latest_state_and_its_bound(here):
    first, second = UUID(register(here)), UUID(register(here))
    loaded = here.ledger.load(first)
    assert loaded is not None
    here.records.post_event(POLICE, first, entry(), None)

    cache = RecordCache(maxsize=1)
    cache.put(here.ledger.load(first))  # version 2
    cache.put(loaded)  # version 1: older than what is kept, so ignored
    assert cache.take(first).version == 2
    cache.put(here.ledger.load(first))
    cache.put(here.ledger.load(second))
    assert (cache.take(first), len(cache)) == (None, 1)  # the least recently used went


def _recorded(layer: Application, nominal) -> None:
    nominal.record(
        "EntryRecorded",
        event_id=str(uuid.uuid4()),
        occurred_at="2026-11-20",
        recorded_at=layer.ledger.now(),
        recorded_by={"sub": "x", "agency": "police:kent"},
        payload={"entry_type": "visit", "subject": "never saved", "body": "x"},
    )


def test_a_taken_record_is_its_taker_s_alone(here):
    nominal_id = UUID(register(here))
    taken = here.ledger.cache.take(nominal_id)
    assert taken is not None and taken.version == 1
    assert here.ledger.cache.take(nominal_id) is None  # no one else is given it meanwhile

    _recorded(here, taken)
    with pytest.raises(ValueError, match="pending"):
        here.ledger.cache.put(taken)
    assert here.ledger.load(nominal_id).version == 1  # the unsaved change is nowhere else


def test_writers_take_copies_of_what_the_readers_share(here):
    nominal_id = UUID(register(here))
    here.reading.view(POLICE, nominal_id, None)
    shared = here.ledger.cache.shared(nominal_id)
    first, second = here.ledger.cache.take(nominal_id), here.ledger.cache.take(nominal_id)

    assert len({id(shared), id(first), id(second)}) == 3
    _recorded(here, first)
    assert (first.version, shared.version, second.version) == (2, 1, 1)
    assert shared.items["entries"] == second.items["entries"] == {}


def test_a_run_of_posts_passes_one_record_along_without_copying_it(here):
    nominal_id = UUID(register(here))
    here.records.post_event(POLICE, nominal_id, entry(), None)
    record = here.ledger.cache.take(nominal_id)
    here.ledger.cache.put(record)

    here.records.post_event(POLICE, nominal_id, entry(), None)

    assert here.ledger.cache.take(nominal_id) is record
    assert record.version == 3 and not record.pending_events


def test_readers_share_one_copy_that_posts_and_catching_up_leave_alone(here, elsewhere):
    nominal_id = UUID(register(here))
    here.reading.view(POLICE, nominal_id, None)
    shared = here.ledger.cache.shared(nominal_id)
    assert shared is not None and here.ledger.cache.shared(nominal_id) is shared
    assert here.ledger.cache.take(nominal_id) is not shared  # a writer's copy is its own

    here.records.post_event(POLICE, nominal_id, entry(subject="Posted here"), None)
    assert (shared.version, shared.items["entries"]) == (1, {})  # the post changed its own

    here.reading.view(POLICE, nominal_id, None)
    shared = here.ledger.cache.shared(nominal_id)
    assert shared.version == 2
    elsewhere.records.post_event(POLICE, nominal_id, entry(subject="Posted elsewhere"), None)
    view = here.reading.view(POLICE, nominal_id, None)

    # Catching up changed a copy of its own too; the next reader is given the new state.
    assert (shared.version, len(shared.items["entries"])) == (2, 1)
    assert view["version"] == 3
    assert [e["subject"] for e in view["entries"]] == ["Posted here", "Posted elsewhere"]
    assert here.ledger.cache.shared(nominal_id).version == 3


def test_a_version_is_rendered_once_and_a_new_version_anew(here, elsewhere):
    nominal_id = UUID(register(here))
    version, first = here.reading.view_json(POLICE, nominal_id, None)
    again = here.reading.view_json(POLICE, nominal_id, None)[1]
    assert (version, json.loads(first)) == (1, here.reading.view(POLICE, nominal_id, None))
    assert again is first  # kept with the cached version

    elsewhere.records.post_event(POLICE, nominal_id, entry(subject="Posted elsewhere"), None)
    version, after = here.reading.view_json(POLICE, nominal_id, None)

    assert version == 2
    assert json.loads(after) == here.reading.view(POLICE, nominal_id, None)
    assert [e["subject"] for e in json.loads(after)["entries"]] == ["Posted elsewhere"]


def test_a_rendering_is_kept_only_with_the_version_it_was_rendered_from(here):
    nominal_id = UUID(register(here))
    older = here.ledger.load(nominal_id)
    here.records.post_event(POLICE, nominal_id, entry(subject="Newer"), None)
    newer = here.ledger.load(nominal_id)
    cache = RecordCache(maxsize=10)
    cache.put(newer)

    def render(nominal):
        return json.dumps(nominal.view()).encode()

    assert json.loads(cache.rendered(older, render))["version"] == 1  # not kept: not cached
    assert json.loads(cache.rendered(newer, render))["version"] == 2
    assert json.loads(cache.rendered(older, render))["version"] == 1  # not the newer one


def test_a_view_holding_an_integer_beyond_64_bits_is_rendered_all_the_same(here):
    nominal = here.ledger.load(UUID(register(here)))
    nominal.offence_summary = 2**70  # orjson refuses it; the standard library writes it
    assert json.loads(_view_json(nominal))["offence_summary"] == 2**70


# -- catching up together (Records.catch_up) ---------------------------------------------


def test_one_query_answers_each_reader_with_what_its_copy_lacks(here, elsewhere):
    first, second = UUID(register(here)), UUID(register(here))
    for subject in ("a", "b"):
        elsewhere.records.post_event(POLICE, first, entry(subject=subject), None)
    elsewhere.records.post_event(POLICE, second, entry(subject="c"), None)
    unknown = uuid.uuid4()

    asked = [(first, 1), (second, 1), (first, 2), (unknown, 0), (first, 3), (second, 0)]
    newer = read_newer(here.ledger.app, asked)

    assert [[e.originator_version for e in events] for events in newer] == [
        [2, 3],
        [2],
        [3],
        [],
        [],
        [1, 2],
    ]
    assert {e.originator_id for e in newer[0]} == {first}
    assert [e.payload["subject"] for e in newer[0]] == ["a", "b"]
    assert [e.hash for e in newer[5]] == [e.hash for _, e in read_stream(here.ledger.app, second)]


def test_concurrent_readers_of_records_moved_on_elsewhere_each_see_the_latest(here, elsewhere):
    nominal_ids = [UUID(register(here)) for _ in range(8)]
    for n, nominal_id in enumerate(nominal_ids):
        here.reading.view(POLICE, nominal_id, None)  # cached here at version 1
        for i in range(n % 3 + 1):
            elsewhere.records.post_event(POLICE, nominal_id, entry(subject=f"{n}.{i}"), None)
    seen: dict[int, dict] = {}
    barrier = threading.Barrier(24)

    def read(n: int) -> None:
        barrier.wait()
        seen[n] = here.reading.view(POLICE, nominal_ids[n % 8], None)

    threads = [threading.Thread(target=read, args=(n,)) for n in range(24)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    for n, view in seen.items():
        k = n % 8
        assert view["version"] == 1 + k % 3 + 1
        assert [e["subject"] for e in view["entries"]] == [f"{k}.{i}" for i in range(k % 3 + 1)]
    assert len(seen) == 24


def test_a_read_after_the_store_closed_is_refused_not_left_waiting(settings, db):
    layer = Application.build(settings, db)
    nominal_id = UUID(register(layer))
    layer.close()
    with pytest.raises(RuntimeError, match="closed"):
        layer.ledger.catch_up.ask((nominal_id, 1))


def test_readers_and_writers_of_one_record_at_once_each_see_a_whole_version(here):
    # Writers hand the record along (take, change, put back) while readers share copies:
    # a reader given the object a writer was changing would see a version whose entries
    # do not match it, or a view rendered from a half-applied event.
    nominal_id = UUID(register(here))
    views: list[dict] = []
    barrier = threading.Barrier(8)

    def write(n: int) -> None:
        barrier.wait()
        for i in range(15):
            here.records.post_event(POLICE, nominal_id, entry(subject=f"{n}.{i}"), None)

    def read() -> None:
        barrier.wait()
        for _ in range(40):
            views.append(json.loads(here.reading.view_json(POLICE, nominal_id, None)[1]))

    threads = [threading.Thread(target=write, args=(n,)) for n in range(4)]
    threads += [threading.Thread(target=read) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    assert len(views) == 160
    for view in views:
        assert len(view["entries"]) == view["version"] - 1
    assert versions(here, str(nominal_id)) == list(range(1, 62))
    assert verify_nominal(here.ledger.app, nominal_id).intact
    assert here.reading.view(POLICE, nominal_id, None)["version"] == 61


# -- reading on the event loop (Records.read_view) ----------------------------------------

STRANGER = Principal(sub="test-stranger", agency="police:essex", scopes=frozenset({"records:read"}))
AUDITOR = Principal(sub="test-auditor", agency="hmiprobation", scopes=frozenset({"audit:read"}))


def _answer(read):
    try:
        version, body = read()
    except (NotFound, JustificationRequired) as refused:
        return type(refused).__name__
    return version, json.loads(body)


async def _answered_on_loop(read):
    try:
        version, body = await read
    except (NotFound, JustificationRequired) as refused:
        return type(refused).__name__
    return version, json.loads(body)


def _last_logged(layer: Application, nominal_id: UUID) -> tuple[str, str, str] | None:
    rows = layer.ledger.consultations.for_nominal(nominal_id, limit=1000)
    return (rows[-1]["sub"], rows[-1]["route"], rows[-1]["outcome"]) if rows else None


@pytest.mark.parametrize(
    ("principal", "justification"),
    [
        (POLICE, None),
        (STRANGER, None),
        (AUDITOR, None),
        (AUDITOR, "Inspection of case records"),
    ],
)
async def test_a_read_on_the_event_loop_answers_and_logs_as_a_read_in_a_thread(
    here, principal, justification
):
    nominal_id = UUID(register(here))
    here.reading.view(POLICE, nominal_id, None)
    assert here.ledger.cache.shared(nominal_id) is not None  # so the loop answers it itself

    on_loop = await _answered_on_loop(here.reading.read_view(principal, nominal_id, justification))
    logged_on_loop = _last_logged(here, nominal_id)
    in_thread = _answer(lambda: here.reading.view_json(principal, nominal_id, justification))

    assert on_loop == in_thread
    assert logged_on_loop == _last_logged(here, nominal_id)
    logs = here.ledger.consultations.for_nominal(nominal_id, limit=1000)
    if justification is None and principal is AUDITOR:
        assert len(logs) == 1  # the partner's first view only: no reason, no read
    else:
        assert [r["outcome"] for r in logs[1:]] == [logged_on_loop[2]] * 2
        assert logged_on_loop[:2] == (principal.sub, "GET /v1/nominals/{id}")


async def test_a_read_on_the_event_loop_sees_what_another_process_stored(here, elsewhere):
    nominal_id = UUID(register(here))
    here.reading.view(POLICE, nominal_id, None)  # cached here at version 1
    elsewhere.records.post_event(POLICE, nominal_id, entry(subject="Posted elsewhere"), None)

    version, body = await here.reading.read_view(POLICE, nominal_id, None)

    assert (version, json.loads(body)["version"]) == (2, 2)
    assert [e["subject"] for e in json.loads(body)["entries"]] == ["Posted elsewhere"]


async def test_a_read_on_the_event_loop_of_a_record_not_cached_or_not_there(here):
    nominal_id = UUID(register(here))
    here.ledger.cache.take(nominal_id)  # gone from the cache: read from the store
    version, body = await here.reading.read_view(POLICE, nominal_id, None)
    assert (version, json.loads(body)["nominal_id"]) == (1, str(nominal_id))
    with pytest.raises(NotFound):
        await here.reading.read_view(POLICE, uuid.uuid4(), None)


PRISON_READER = Principal(
    sub="test-prison-reader", agency=PRISON.agency, scopes=frozenset({"records:read"})
)


@pytest.mark.parametrize("where", ["loop", "thread"])
@pytest.mark.parametrize(
    ("elsewhere_posts", "expected"),
    [("PartneringEnded", "refused"), ("AgencyPartnered", "allowed")],
)
async def test_a_read_of_a_cached_copy_is_decided_and_logged_on_the_record_as_it_stands(
    here, elsewhere, elsewhere_posts, expected, where
):
    # The copy here says the opposite of the record as it stands: the read is decided, and
    # logged once, on the record as it stands, never on the copy; on the event loop
    # (read_view) and in a thread (view_json, through `readable` as every other read).
    nominal_id = UUID(register(here))
    if elsewhere_posts == "PartneringEnded":
        here.records.post_event(
            POLICE, nominal_id, partnering("AgencyPartnered", PRISON.agency), None
        )
    here.reading.view(POLICE, nominal_id, None)
    copy = here.ledger.cache.shared(nominal_id)
    assert copy is not None
    seen = copy.version
    elsewhere.records.post_event(
        POLICE, nominal_id, partnering(elsewhere_posts, PRISON.agency), None
    )
    before = len(here.ledger.consultations.for_nominal(nominal_id, limit=1000))

    if where == "loop":
        answer = await _answered_on_loop(here.reading.read_view(PRISON_READER, nominal_id, None))
    else:
        answer = _answer(lambda: here.reading.view_json(PRISON_READER, nominal_id, None))

    rows = here.ledger.consultations.for_nominal(nominal_id, limit=1000)[before:]
    assert [(r["sub"], r["outcome"]) for r in rows] == [(PRISON_READER.sub, expected)]
    if expected == "refused":
        assert answer == "NotFound"
    else:
        assert isinstance(answer, tuple)
        assert answer[0] == seen + 1 == answer[1]["version"]


def test_a_read_of_a_copy_is_logged_only_if_the_record_still_stands_at_its_version(here, elsewhere):
    nominal_id = UUID(register(here))
    elsewhere.records.post_event(POLICE, nominal_id, entry(), None)  # the record is at version 2

    def read(seen: int | None) -> Consultation:
        return Consultation(POLICE, nominal_id, "test", "read", "allowed", seen_version=seen)

    futures = [here.ledger.consultations.submit(read(seen)) for seen in (1, 2, None, 1)]

    assert [f.result(timeout=10) for f in futures] == [False, True, True, False]
    rows = here.ledger.consultations.for_nominal(nominal_id, limit=1000)
    assert [r["route"] for r in rows].count("test") == 2
