"""The canonical form and the payload copy are exactly what the plain standard library gives."""

import copy
import json

from hypothesis import given
from hypothesis import strategies as st

from domain.chain import canonical_json, plain_json
from domain.nominal.common import copied as _copied

# Every value json.loads can give (floats of every magnitude, integers beyond 64 bits,
# non-ASCII and control characters, lone surrogates).
json_scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text()
)


def json_containers(children):
    return st.lists(children) | st.dictionaries(st.text(), children)


json_values = st.recursive(json_scalars, json_containers, max_leaves=30)
# Documents of strings, integers, booleans and nulls only: the ones orjson writes.
plain_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(), json_containers, max_leaves=30
)
# And then some json.loads cannot give: tuples, non-string keys, NaN, UUIDs, datetimes.
odd_values = st.recursive(
    plain_values | st.floats() | st.uuids() | st.datetimes(),
    lambda children: (
        st.lists(children).map(tuple) | st.dictionaries(st.integers() | st.text(), children)
    ),
    max_leaves=10,
)


def _reference(value):
    return json.dumps(
        value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    ).encode("utf-8")


@given(json_values | plain_values | odd_values)
def test_canonical_json_is_byte_for_byte_json_dumps(value):
    try:
        expected = _reference(value)
    except (ValueError, TypeError) as e:  # a lone surrogate, NaN, a UUID, an int key...
        try:
            canonical_json(value)
        except (ValueError, TypeError) as f:
            assert type(f) is type(e)
            return
        raise AssertionError("canonical_json accepted what json.dumps refused") from None
    assert canonical_json(value) == expected


def test_a_typical_event_takes_the_fast_writer():
    # Otherwise every hash would quietly cost the definition's price again.
    envelope = {
        "event_id": "2a7a74b6-73bb-43aa-8d8a-0fe90c9e4dd1",
        "version": 2,
        "occurred_at": None,
        "recorded_by": {"sub": "officer-1", "agency": "police:kent"},
        "payload": {"given": ["Zoë", "Ann"], "level": 2, "active": True, "notes": []},
    }
    assert plain_json(envelope)
    assert plain_json({"payload": {"score": 45.5}})
    assert not plain_json({"payload": {"score": 1e-05}})
    assert not plain_json({1: "an int key"})


def test_floats_at_the_edges_of_the_fast_writer_are_written_as_defined():
    for f in (1e-4, 9.999999999999999e-05, 1e-05, 1e15, 1.0000000000000002e15, 1e16, -0.0, 0.0):
        for value in ({"score": f}, {"score": -f}, [f]):
            assert canonical_json(value) == _reference(value)


def test_canonical_json_refuses_what_json_dumps_refuses():
    for value in (float("nan"), {"x": float("inf")}, {1j: 1}, {"when": object()}):
        for encode in (canonical_json, _reference):
            try:
                encode(value)
            except (ValueError, TypeError):
                continue
            raise AssertionError(f"{encode.__name__} accepted {value!r}")


@given(json_values)
def test_a_copied_payload_equals_the_original_and_shares_nothing_that_can_change(value):
    copied = _copied(value)
    assert copied == copy.deepcopy(value)

    def containers(v):
        if isinstance(v, dict):
            yield v
            for item in v.values():
                yield from containers(item)
        elif isinstance(v, list):
            yield v
            for item in v:
                yield from containers(item)

    originals = {id(c) for c in containers(value)}
    assert not any(id(c) in originals for c in containers(copied))
