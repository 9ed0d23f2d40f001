"""Figures for the integrations: HMPPS messages applied per second, duplicates answered
per second, feed pages read. Prints them; asserts nothing.

    .venv/bin/python bench/feed_and_inbound.py [--records 300]

Runs on DATABASE_URL's server or a fresh embedded PostgreSQL in a temporary directory,
through the service layer (no HTTP), so it measures translation, the event store and the
feed's decoding.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import tempfile
import time
import uuid
from pathlib import Path

from service.auth import Principal
from service.bootstrap import start
from service.feed import Feed
from service.integrations import inbound
from service.runtime.settings import Settings

WRITER = Principal("bench", "probation:midlands", frozenset({"records:write", "records:read"}))
DELIUS = Principal(
    "bench-delius", "probation:national-delius", frozenset({"records:write", "inbound:hmpps"})
)


def registration(crn: str) -> dict:
    return {
        "identifiers": {"crn": crn},
        "name": {"family": "Bench", "given": ["Mark"]},
        "aliases": [],
        "area": "leicestershire-rutland",
        "category": 1,
        "level": 1,
        "lead_agency": "probation:midlands",
    }


def message(crn: str) -> dict:
    event = {
        "eventType": "probation-case.registration.added",
        "version": 1,
        "occurredAt": "Fri Jun 14 09:06:52 BST 2024",
        "additionalInformation": {
            "registerTypeCode": "MAPP",
            "registrationCategoryCode": "M2",
            "registrationLevelCode": "M2",
        },
        "personReference": {"identifiers": [{"type": "CRN", "value": crn}]},
    }
    return {"Type": "Notification", "MessageId": str(uuid.uuid4()), "Message": json.dumps(event)}


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--records", type=int, default=300)
    args = p.parse_args()
    with tempfile.TemporaryDirectory(prefix="mappa-bench-") as tmp:
        service = start(Settings(data_dir=Path(tmp)))
        try:
            records = service.records
            crns = [f"B{n:06d}" for n in random.sample(range(1_000_000), args.records)]
            for crn in crns:
                records.register(WRITER, uuid.uuid4(), None, registration(crn))
            messages = [message(crn) for crn in crns]

            applied = []
            for m in messages:
                t = time.perf_counter()
                result = inbound.receive(records, DELIUS, m)
                applied.append(time.perf_counter() - t)
                assert result.outcome == "applied", result
            repeated = []
            for m in messages:
                t = time.perf_counter()
                assert inbound.receive(records, DELIUS, m).outcome == "already_applied"
                repeated.append(time.perf_counter() - t)

            feed = Feed(records)
            t = time.perf_counter()
            after, read = 0, 0
            while page := feed.page(after=after, limit=1000):
                read += len(page)
                after = page[-1]["position"]
            whole = time.perf_counter() - t
        finally:
            service.close()

    def ms(xs: list[float]) -> str:
        p95 = sorted(xs)[int(len(xs) * 0.95)]
        return f"median {statistics.median(xs) * 1000:.1f} ms, p95 {p95 * 1000:.1f} ms"

    print(f"records: {args.records}, each receiving one MAPP registration (2 events)")
    print(f"inbound applied:   {ms(applied)}; {len(applied) / sum(applied):.0f} messages/s")
    print(f"inbound duplicate: {ms(repeated)}; {len(repeated) / sum(repeated):.0f} messages/s")
    print(f"feed read: {read} notices in {whole * 1000:.0f} ms ({read / whole:.0f} notices/s)")


if __name__ == "__main__":
    main()
