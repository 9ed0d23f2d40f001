"""How fast does `mappa-record verify --all` recompute the hash chains?

    .venv/bin/python bench/verify.py [--events 1000000] [--per-nominal 50]

Loads a record set into a fresh database (on DATABASE_URL's server, or an embedded one in
/tmp/mappa-bench), then runs the same `verify_all` the CLI runs and prints events/s.

Loading goes through a bulk path, not the HTTP API, to build a million events in minutes:
each nominal is built by the domain itself (`Nominal.register`, then `record` for each
entry, so every hash is chained exactly as the service chains it), its events are encoded
by the library's mapper (so the rows are byte-for-byte what `Application.save` writes),
and the rows are copied into the events table and event_index with COPY, in version order
so global positions increase along each stream as they do in service.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import psycopg  # noqa: E402

from domain.nominal import Nominal  # noqa: E402
from service.bootstrap import start  # noqa: E402
from service.integrity import verify_all  # noqa: E402
from service.runtime.database import start_embedded  # noqa: E402
from service.runtime.settings import Settings  # noqa: E402

AGENCY = {"sub": "bench-loader", "agency": "police:kent"}


def fresh_database(name: str) -> str:
    server = os.environ.get("DATABASE_URL") or start_embedded(Path("/tmp/mappa-bench")).url
    with psycopg.connect(server, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    from sqlalchemy.engine import make_url

    return make_url(server).set(database=name).render_as_string(hide_password=False)


def nominal_events(index: int, per_nominal: int, start_at: datetime) -> list[Nominal.Event]:
    t = start_at + timedelta(seconds=index)
    nominal = Nominal.register(
        nominal_id=uuid.uuid4(),
        event_id=str(uuid.uuid4()),
        occurred_at="2026-01-05",
        recorded_at=t,
        recorded_by=AGENCY,
        payload={
            "identifiers": {"crn": f"X{index:06d}"[-7:]},
            "name": {"family": f"Bench{index}", "given": ["Sam"]},
            "aliases": [],
            "date_of_birth": "1980-02-01",
            "gender": "male",
            "area": "kent",
            "category": 1,
            "level": 1,
            "lead_agency": "probation:kent-surrey-sussex",
        },
    )
    for v in range(2, per_nominal + 1):
        nominal.record(
            "EntryRecorded",
            event_id=str(uuid.uuid4()),
            occurred_at="2026-01-06",
            recorded_at=t + timedelta(milliseconds=v),
            recorded_by=AGENCY,
            payload={
                "entry_type": "contact",
                "subject": f"Contact {v}",
                "body": "Reported as required; no concerns raised. " * 4,
            },
        )
    events = nominal.collect_events()
    return [e for e in events if isinstance(e, Nominal.Event)]


def load(service, total: int, per_nominal: int) -> float:
    mapper = service.ledger.app.mapper
    nominals = total // per_nominal
    start_at = datetime(2026, 1, 5, 9, tzinfo=UTC)
    began = time.perf_counter()
    batch = 200
    with service.db.connect() as conn:
        for first in range(0, nominals, batch):
            rows, index_rows = [], []
            for i in range(first, min(first + batch, nominals)):
                for e in nominal_events(i, per_nominal, start_at):
                    stored = mapper.to_stored_event(e)
                    rows.append(
                        (
                            stored.originator_id,
                            stored.originator_version,
                            stored.topic,
                            stored.state,
                        )
                    )
                    digest = hashlib.sha256(e.event_id.encode()).hexdigest()
                    index_rows.append(
                        (
                            e.event_id,
                            e.originator_id,
                            e.originator_version,
                            digest,
                            AGENCY["agency"],
                        )
                    )
            with conn.cursor() as cur:
                with cur.copy(
                    "COPY nominals_events (originator_id, originator_version, topic, state)"
                    " FROM STDIN"
                ) as copy:
                    for r in rows:
                        copy.write_row(r)
                with cur.copy(
                    "COPY event_index (event_id, nominal_id, version, request_digest, agency)"
                    " FROM STDIN"
                ) as copy:
                    for r in index_rows:
                        copy.write_row(r)
            conn.commit()
            done = min(first + batch, nominals) * per_nominal
            elapsed = time.perf_counter() - began
            print(f"\rloaded {done:,} events ({done / elapsed:,.0f}/s)", end="", flush=True)
        conn.execute("ANALYZE nominals_events")
        conn.execute("ANALYZE event_index")
        conn.commit()
    print()
    return time.perf_counter() - began


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--events", type=int, default=1_000_000)
    p.add_argument("--per-nominal", type=int, default=50)
    p.add_argument("--keep", action="store_true", help="verify the existing bench database again")
    args = p.parse_args()

    name = "mappa_bench_verify"
    if args.keep:
        server = os.environ.get("DATABASE_URL") or start_embedded(Path("/tmp/mappa-bench")).url
        from sqlalchemy.engine import make_url

        url = make_url(server).set(database=name).render_as_string(hide_password=False)
    else:
        url = fresh_database(name)
    settings = Settings(
        database_url=url, data_dir=Path("/tmp/mappa-bench/data"), pool_size=2, dev_tokens=True
    )
    service = start(settings)
    try:
        if not args.keep:
            seconds = load(service, args.events, args.per_nominal)
            print(f"load: {args.events:,} events in {seconds:.1f} s")
        began = time.perf_counter()
        summary = verify_all(service.ledger.app, progress=sys.stdout.isatty())
        seconds = time.perf_counter() - began
        print(
            f"verify --all: {summary.events:,} events of {summary.nominals:,} nominals in "
            f"{seconds:.1f} s = {summary.events / seconds:,.0f} events/s "
            f"({'all intact' if summary.intact else f'{len(summary.broken)} broken'})"
        )
    finally:
        service.close()


if __name__ == "__main__":
    main()
