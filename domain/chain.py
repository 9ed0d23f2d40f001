"""The hash chain over a nominal's events (docs/design.md#integrity; docs/integrity.md).

hash = SHA-256(prev_hash || canonical JSON of the event without `position` and `hash`),
where prev_hash is the previous event's hash as 64 lower-case hex characters (64 zeros
for the first event) and the canonical JSON has sorted keys, no insignificant white
space and is encoded as UTF-8.
"""

import functools
import hashlib
import json
from datetime import UTC, datetime
from typing import Any

import orjson

GENESIS_HASH = "0" * 64

# The definition: Python's own encoder with these options (built once: `json.dumps` would
# build a new one on every call).
_CANONICAL = json.JSONEncoder(
    sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
)
# orjson writes the same bytes for documents of strings, integers, booleans, nulls and
# floats from 1e-4 to 1e15, in objects with string keys and arrays, several times faster
# (a third of an import's time was spent here). It writes smaller floats otherwise
# ("0.00001" for "1e-05"), NaN as null where the definition refuses it, and UUIDs where
# the definition refuses them, so any document holding anything else is written by the
# definition itself; so is one orjson refuses (integers beyond 64 bits).
# tests/unit/test_chain.py checks the two agree.
_PLAIN = frozenset({str, int, bool, type(None)})


def canonical_json(value: Any) -> bytes:
    """The one serialisation every hash is computed over."""
    if plain_json(value):
        try:
            return orjson.dumps(value, option=orjson.OPT_SORT_KEYS)
        except orjson.JSONEncodeError:
            pass
    return _CANONICAL.encode(value).encode("utf-8")


def plain_json(value: Any) -> bool:
    """Whether the document holds only what orjson writes exactly as the definition does."""
    todo = [value]
    pop, push = todo.pop, todo.append
    while todo:
        item = pop()
        kind = type(item)
        if kind is dict:
            for key in item:
                if type(key) is not str:
                    return False
            for v in item.values():
                if type(v) not in _PLAIN:
                    push(v)
        elif kind is list or kind is tuple:
            for v in item:
                if type(v) not in _PLAIN:
                    push(v)
        elif kind is float:
            if not (item == 0.0 or 1e-4 <= abs(item) <= 1e15):  # NaN is neither
                return False
        elif kind not in _PLAIN:
            return False
    return True


def chain_hash(prev_hash: str, envelope: dict[str, Any]) -> str:
    """The hash of one event, given the previous event's hash."""
    return hashlib.sha256(prev_hash.encode("ascii") + canonical_json(envelope)).hexdigest()


@functools.lru_cache(maxsize=1024)  # an event's instant is formatted for its hash and its view
def format_instant(instant: datetime) -> str:
    """An aware datetime as UTC ISO 8601 with microseconds and a Z."""
    if instant.utcoffset() is None:
        raise ValueError("an instant needs a time zone")
    if instant.tzinfo is not UTC:
        instant = instant.astimezone(UTC)
    # isoformat is done in C; strftime was a tenth of a bulk import's time.
    return instant.replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"
