"""The canonical form and the payload copy are exactly what the plain standard library gives."""

import copy
import json

from hypothesis import given
from hypothesis import strategies as st

from mappa_record.domain.chain import canonical_json
from mappa_record.domain.nominal import _copied

# Every value json.loads can give (floats of every magnitude, non-ASCII and control
# characters, lone surrogates) and then some it cannot (tuples, non-string keys).
json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda children: st.lists(children) | st.dictionaries(st.text(), children),
    max_leaves=30,
)


def _reference(value):
    return json.dumps(
        value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    ).encode("utf-8")


@given(json_values)
def test_canonical_json_is_byte_for_byte_json_dumps(value):
    try:
        expected = _reference(value)
    except ValueError as e:  # a lone surrogate cannot be UTF-8
        try:
            canonical_json(value)
        except ValueError as f:
            assert type(f) is type(e)
            return
        raise AssertionError("canonical_json accepted what json.dumps refused") from None
    assert canonical_json(value) == expected


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
