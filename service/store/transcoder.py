"""How an event's state becomes bytes in the store, and back: the library's JSON, faster.

The library's `JSONTranscoder` calls a Python hook for every JSON object it decodes, and
encodes in Python: a fifth of a projection rebuild's time and an eighth of an import's was
spent there. An event of the catalogue holds only JSON values and one datetime, its
`timestamp`: its `hash` was computed over its payload by chain.canonical_json, which refuses
anything but JSON (no UUIDs, no dates, no NaN). For those this transcoder writes with orjson
the same JSON document the library would (the datetime as the library's
`{"_type_": "datetime_iso", ...}`), and reads with the standard library's decoder without
the per-object hook, converting the one tagged object itself; so either transcoder reads
what the other wrote. Anything else (snapshots, which hold UUIDs and nested datetimes; a
state holding a subclass of a JSON type or an integer beyond 64 bits; a stored document
whose only tagged object is not the top-level timestamp) goes through the library's own
code, unchanged.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import orjson
from eventsourcing.persistence import JSONTranscoder

_TAG = b'"_type_"'
_ISO = "datetime_iso"
# Reading, the standard library's decoder, not orjson: orjson reads an integer beyond 64 bits
# as a float, and a pattern that finds one in a document took three times orjson's time.
_DECODER = json.JSONDecoder()
# orjson writes JSON's own types; a datetime, a dataclass or a subclass of a JSON type goes
# to `_tagged`, which writes a datetime as the library does and refuses anything else.
_OPTIONS = (
    orjson.OPT_PASSTHROUGH_DATETIME
    | orjson.OPT_PASSTHROUGH_DATACLASS
    | orjson.OPT_PASSTHROUGH_SUBCLASS
)


class _NotPlain(Exception):
    """The state holds something the fast path does not write as the library would."""


class EventJSONTranscoder(JSONTranscoder):
    """The library's JSON transcoder, with a fast path for the events of the catalogue."""

    def encode(self, obj: Any) -> bytes:
        if type(obj) is dict and type(obj.get("timestamp")) is datetime and "hash" in obj:
            try:
                return orjson.dumps(obj, default=_tagged, option=_OPTIONS)
            except (_NotPlain, TypeError):
                pass  # orjson's own refusals are TypeErrors too
        return super().encode(obj)

    def decode(self, data: bytes) -> Any:
        # One tagged object in the document, and it is the top-level timestamp: an event.
        if data.count(_TAG) == 1:
            obj = _DECODER.decode(data.decode("utf-8"))
            stamp = obj.get("timestamp") if type(obj) is dict else None
            if type(stamp) is dict and stamp.get("_type_") == _ISO and len(stamp) == 2:
                obj["timestamp"] = datetime.fromisoformat(stamp["_data_"])
                return obj
        return super().decode(data)


def _tagged(value: Any) -> Any:
    """orjson's hook for what it does not write itself, given the options above."""
    if type(value) is datetime:
        return {"_type_": _ISO, "_data_": value.isoformat()}
    raise _NotPlain(type(value).__name__)
