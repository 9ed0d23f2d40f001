"""A long history is walked through the paging API in bounded memory: the peak is about the
same as for a short record, not proportional to the record's length.

`make test` walks 10,000 events. The issue's figure, 100,000, takes minutes to load here:
`LONG_HISTORY_EVENTS=100000 make test PYTEST_ARGS=tests/reliability/test_long_history.py`
runs it (docs/testing.md)."""

from __future__ import annotations

import gc
import os
import time
import tracemalloc
import uuid
from datetime import UTC, datetime

import pytest

from domain.nominal import Nominal
from service.store.eventstore import NominalRecorder

# Not a MAPPA_* name: the service refuses to start beside an unknown one. Pages check
# partnering from the partner index, not by rebuilding the record (docs/adr/010).
LONG = int(os.environ.get("LONG_HISTORY_EVENTS", "10000"))
SHORT = 1_000
PAGE = 1000
INSERT_BATCH = 100


def _grow(layer, nominal_id: str, total: int) -> None:
    """Append events until the stream holds `total`, straight through the library's recorder
    (the aggregate decides and chains each one; batches skip the per-post HTTP round trip)."""
    app = layer.ledger.app
    nominal = app.repository.get(uuid.UUID(nominal_id))
    assert isinstance(nominal, Nominal)
    recorder = app.recorder
    assert isinstance(recorder, NominalRecorder)
    now = datetime.now(UTC)
    by = {"sub": "bulk-loader", "agency": "police:kent"}
    while nominal.version < total:
        for _ in range(min(5000, total - nominal.version)):
            nominal.record(
                "EntryRecorded",
                event_id=str(uuid.uuid4()),
                occurred_at="2026-11-20",
                recorded_at=now,
                recorded_by=by,
                payload={
                    "entry_type": "contact",
                    "subject": "Weekly contact",
                    "body": "Seen at the approved premises; compliant.",
                },
            )
        stored = [app.mapper.to_stored_event(e) for e in nominal.collect_events()]
        # A few hundred per call: the library's pipelined insert of a few thousand rows in
        # one call deadlocks (client and server both waiting to read; docs/reliability.md).
        for i in range(0, len(stored), INSERT_BATCH):
            recorder.insert_events(stored[i : i + INSERT_BATCH])
    app.take_snapshot(nominal.id)  # as the service itself does every 100 versions


def _walk(client, headers, nominal_id: str) -> tuple[int, int, list[int]]:
    """Walk the history page by page; (events seen, peak traced bytes, versions checked)."""
    gc.collect()
    tracemalloc.start()
    seen = 0
    expected = 1
    from_version = 1
    try:
        while from_version is not None:
            r = client.get(
                f"/v1/nominals/{nominal_id}/history",
                params={"from_version": from_version, "limit": PAGE},
                headers=headers,
            )
            assert r.status_code == 200, r.text
            page = r.json()
            versions = [e["version"] for e in page["events"]]
            assert versions == list(range(expected, expected + len(versions)))
            expected += len(versions)
            seen += len(versions)
            from_version = page["next_from_version"]
            del r, page
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return seen, peak, []


@pytest.mark.slow
def test_walking_a_long_history_takes_bounded_memory_whatever_its_length(
    service, register, client, token
):
    headers = {"Authorization": f"Bearer {token('police:kent', ttl=3600)}"}
    short_id, long_id = register("police:kent"), register("police:kent")
    started = time.monotonic()
    _grow(service.records, short_id, SHORT)
    _grow(service.records, long_id, LONG)
    loaded = time.monotonic() - started

    short_seen, short_peak, _ = _walk(client, headers, short_id)
    started = time.monotonic()
    long_seen, long_peak, _ = _walk(client, headers, long_id)
    walked = time.monotonic() - started

    print(
        f"\nlong history: {LONG} events appended in {loaded:.1f}s; walked {long_seen} in "
        f"{walked:.1f}s; peak traced memory {long_peak / 2**20:.1f} MiB "
        f"(a {SHORT}-event record: {short_peak / 2**20:.1f} MiB)"
    )
    assert short_seen == SHORT and long_seen == LONG
    # Bounded: a hundred times the events may not cost more than a small multiple of the
    # memory, and never more than a fixed ceiling.
    assert long_peak < 3 * short_peak + 8 * 2**20
    assert long_peak < 64 * 2**20
