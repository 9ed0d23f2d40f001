"""How fast are the transparency log's proofs at national scale, and what does a checkpoint cost?

    .venv/bin/python -m bench.transparency [--leaves 4000000] [--proofs 500] [--events 1000]

Fills a fresh database's tree (migration 0008) with `--leaves` leaves (random leaf hashes
and every complete node they form, by the same `CompactRange` the service grows the tree
with, stored with COPY), then times, through the service's own `TransparencyLog`:
- inclusion proofs of random leaves and consistency proofs between random sizes (each one
  query for its O(log n) nodes and the hashing), p50/p99 and the proof sizes;
- a checkpoint after `--events` real events are posted on top: the cost of growing the
  tree by them and signing, which depends on the new events, not on the leaves before.

The filled leaves stand at negative positions, before any real event's, so the real events
are appended after them as any new events would be.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import time
import uuid
from pathlib import Path

import psycopg

from service import merkle
from service.auth import Principal
from service.bootstrap import start
from service.records import NewEvent
from service.runtime.database import start_embedded
from service.runtime.settings import Settings

POLICE = Principal(sub="bench", agency="police:kent", scopes=frozenset({"records:write"}))


def fresh_database(name: str) -> str:
    server = os.environ.get("DATABASE_URL") or start_embedded(Path("/tmp/mappa-bench")).url
    with psycopg.connect(server, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    from sqlalchemy.engine import make_url

    return make_url(server).set(database=name).render_as_string(hide_password=False)


def fill(url: str, leaves: int, seed: int = 20) -> None:
    """`leaves` random leaves and their complete nodes, as the service would have stored them."""
    rng = random.Random(seed)
    tree = merkle.CompactRange()
    started = time.perf_counter()
    with psycopg.connect(url) as conn, conn.cursor() as curs:
        with curs.copy("COPY log_leaves (idx, position) FROM STDIN") as copy:
            for i in range(leaves):
                copy.write_row((i, i - leaves))
        with curs.copy("COPY log_nodes (level, idx, hash) FROM STDIN") as copy:
            for _ in range(leaves):
                for node in tree.append(rng.randbytes(32)):
                    copy.write_row(node)
        conn.commit()
    print(f"filled {leaves:,} leaves in {time.perf_counter() - started:.0f} s", flush=True)


def _ms(samples: list[float]) -> str:
    ordered = sorted(samples)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    return f"p50 {statistics.median(ordered) * 1000:.2f} ms, p99 {p99 * 1000:.2f} ms"


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--leaves", type=int, default=4_000_000)
    p.add_argument("--proofs", type=int, default=500)
    p.add_argument("--events", type=int, default=1_000)
    args = p.parse_args(argv)
    url = fresh_database("mappa_bench_transparency")
    data_dir = Path("/tmp/mappa-bench/transparency")
    service = start(
        Settings(database_url=url, data_dir=data_dir, checkpoint_seconds=0, dev_tokens=True)
    )
    try:
        fill(url, args.leaves)
        log, n, rng = service.transparency, args.leaves, random.Random(7)
        inclusion, consistency, sizes = [], [], []
        for _ in range(args.proofs):
            index = rng.randrange(n)
            t = time.perf_counter()
            _, path = log.leaf_and_path(index, n)
            inclusion.append(time.perf_counter() - t)
            sizes.append(len(path))
            old = rng.randrange(1, n)
            t = time.perf_counter()
            proof = log.consistency(old, n)
            consistency.append(time.perf_counter() - t)
            sizes.append(len(proof["consistency_path"]))
        print(f"proofs at {n:,} leaves: inclusion {_ms(inclusion)}; consistency {_ms(consistency)}")
        print(f"  at most {max(sizes)} hashes a proof ({max(sizes) * 32} bytes)")

        body = {"identifiers": {"crn": "B000001"}, "name": {"family": "Bench", "given": ["S"]},
                "aliases": [], "date_of_birth": "1980-02-01", "gender": "male", "area": "kent",
                "category": 1, "level": 1, "lead_agency": "police:kent"}  # fmt: skip
        nominal = uuid.UUID(service.records.register(POLICE, uuid.uuid4(), None, body).nominal_id)
        for i in range(args.events - 1):
            payload = {"entry_type": "contact", "subject": f"c{i}", "body": "b"}
            new = NewEvent(uuid.uuid4(), "EntryRecorded", "2026-11-20", payload)
            service.records.post_event(POLICE, nominal, new, None)
        t = time.perf_counter()
        note = log.checkpoint()
        elapsed = time.perf_counter() - t
        assert note is not None
        print(
            f"checkpoint after {args.events:,} new events on {n:,} leaves: {elapsed * 1000:.0f} ms"
        )
    finally:
        service.close()


if __name__ == "__main__":
    sys.exit(main())
