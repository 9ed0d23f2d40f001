"""The event transcoder writes what the library's JSON transcoder writes, and reads it back."""

from datetime import UTC, datetime, timedelta, timezone
from uuid import uuid4

import pytest
from eventsourcing.persistence import DatetimeAsISO, DecimalAsStr, JSONTranscoder, UUIDAsHex
from hypothesis import given
from hypothesis import strategies as st

from service.store.transcoder import EventJSONTranscoder
from tests.unit import test_nominal
from tests.unit.test_chain import json_containers, json_scalars


def _registered(transcoder):
    for transcoding in (UUIDAsHex(), DecimalAsStr(), DatetimeAsISO()):
        transcoder.register(transcoding)
    return transcoder


LIBRARY = _registered(JSONTranscoder())
OURS = _registered(EventJSONTranscoder())

# What an event's payload can hold (JSON as parsed: no NaN, the hash refuses it), including
# a payload that happens to look like one of the library's tagged objects.
payloads = st.recursive(
    json_scalars,
    lambda children: (
        json_containers(children)
        | st.fixed_dictionaries(
            {"_type_": st.just("datetime_iso"), "_data_": st.just("2020-01-01")}
        )
    ),
    max_leaves=20,
)
instants = st.datetimes(
    min_value=datetime(1990, 1, 1), timezones=st.sampled_from([UTC, timezone(timedelta(hours=1))])
)


def _state(timestamp, payload):
    # The shape of a Nominal event's state, as the library's mapper hands it over.
    return {
        "timestamp": timestamp,
        "event_id": str(uuid4()),
        "occurred_at": "2024-08-15",
        "recorded_by": {"sub": "officer-1", "agency": "police:kent"},
        "payload": payload,
        "prev_hash": "0" * 64,
        "hash": "f" * 64,
    }


@given(instants, payloads)
def test_each_reads_what_the_other_writes(timestamp, payload):
    state = _state(timestamp, payload)
    by_library, by_us = LIBRARY.encode(state), OURS.encode(state)
    expected = LIBRARY.decode(by_library)
    assert OURS.decode(by_library) == expected
    assert LIBRARY.decode(by_us) == expected
    assert OURS.decode(by_us) == expected


@given(instants, st.dictionaries(st.text(), st.text() | st.integers(-100, 100) | st.none()))
def test_without_floats_the_bytes_are_the_librarys(timestamp, payload):
    state = _state(timestamp, payload)
    assert OURS.encode(state) == LIBRARY.encode(state)


def test_a_long_integer_reads_back_as_an_integer():
    for number in (2**64 - 1, 2**64, -(2**63) - 1, -(10**19) + 1, -(2**70), 10**40):
        state = _state(datetime(2024, 1, 1, tzinfo=UTC), {"n": number, "list": [1, number]})
        for written in (OURS.encode(state), LIBRARY.encode(state)):
            assert OURS.decode(written) == state


def test_anything_but_an_event_goes_the_librarys_way():
    # A snapshot holds UUIDs and datetimes below the top level: orjson would write the UUID
    # as a plain string, which would read back as a string.
    snapshot = {
        "timestamp": datetime(2024, 1, 1, tzinfo=UTC),
        "state": {"_id": uuid4(), "_modified_on": datetime(2024, 1, 2, tzinfo=UTC)},
    }
    assert OURS.encode(snapshot) == LIBRARY.encode(snapshot)
    assert OURS.decode(OURS.encode(snapshot)) == snapshot


def test_an_event_cannot_hold_what_the_fast_path_would_write_otherwise():
    # The fast path relies on it: a payload that is not JSON has no hash, so no event.
    nominal = test_nominal.given()
    for odd in (uuid4(), datetime(2026, 1, 1, tzinfo=UTC), float("nan")):
        with pytest.raises((TypeError, ValueError), match="JSON"):
            nominal.record(
                "EntryRecorded",
                event_id=str(uuid4()),
                occurred_at="2026-11-20",
                recorded_at=datetime(2026, 11, 20, 13, tzinfo=UTC),
                recorded_by={"sub": "officer-1", "agency": "police:kent"},
                payload={"entry_type": "contact", "subject": "Visit", "body": "Seen", "x": odd},
            )
