"""Read-side figures: rebuild rate, report times at national scale, lag under a stream of posts.

    python -m bench.read_side [--nominals 100000] [--stream-seconds 10]

Loads `--nominals` records with a realistic spread of events into a database of its own
(on DATABASE_URL's server, or an embedded one in ./.data-bench), through the domain
aggregate and the event store (not HTTP, so loading is not what is measured), rebuilds
every read model from position 0, times each report through the HTTP app, then posts a
steady stream of events through the service while the runner runs and samples the lag.
Figures are printed and returned by `run()`; nothing is asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import statistics
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import psycopg

from domain.mappa import AREAS
from domain.nominal import Nominal
from projections.runner import ProjectionRunner
from service.auth import Principal
from service.bootstrap import Service, start
from service.devkeys import ensure_dev_key, mint_token
from service.records import NewEvent
from service.runtime.database import start_embedded
from service.runtime.settings import Settings

REPORTS = [
    "late-minutes",
    "partnering-audit",
    "reviews-overdue",
    "actions-outstanding",
    "disclosure-coverage",
    "attendance",
    "registration-timeliness",
    "referrals",
    "level-profile",
]
AREA_LIST = sorted(AREAS)


def _database(name: str) -> str:
    server = os.environ.get("DATABASE_URL") or start_embedded(Path(".data-bench")).url
    with psycopg.connect(server, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    from sqlalchemy.engine import make_url

    return make_url(server).set(database=name).render_as_string(hide_password=False)


def _nominal(rng: random.Random, now: datetime) -> Nominal:
    """One record with the events a year of MAPPA management might bring."""
    area = rng.choice(AREA_LIST)
    police, probation, mappa = f"police:{area}", f"probation:{area}", f"mappa:{area}"
    level = rng.choices([1, 2, 3], weights=[90, 8, 2])[0]
    category = rng.choices([1, 2, 3, 4], weights=[70, 25, 4, 1])[0]
    if category == 3 and level == 1:
        level = 2
    at = now - timedelta(days=rng.randint(20, 700), minutes=rng.randint(0, 1440))
    sentence = (at - timedelta(days=rng.choice([0, 1, 2, 3, 3, 4, 6, 12]))).date()
    by = {"sub": "bench", "agency": police}
    payload = {
        "identifiers": {"pnc": "bench"},
        "name": {"family": "Bench", "given": ["Record"]},
        "area": area,
        "category": category,
        "level": level,
        "lead_agency": probation if rng.random() > 0.05 else None,
        "sentence_date": sentence.isoformat(),
    }
    n = Nominal.register(
        nominal_id=uuid.uuid4(),
        event_id=str(uuid.uuid4()),
        occurred_at=at.date().isoformat(),
        recorded_at=at,
        recorded_by=by,
        payload=payload,
    )

    def record(kind: str, p: dict[str, Any], agency: str = police, days: int = 1) -> None:
        nonlocal at
        at = at + timedelta(days=days, minutes=rng.randint(0, 600))
        n.record(
            kind,
            event_id=str(uuid.uuid4()),
            occurred_at=at.date().isoformat(),
            recorded_at=at,
            recorded_by={"sub": "bench", "agency": agency},
            payload=p,
        )

    record("AgencyPartnered", {"agency": mappa, "reason": "coordination"})
    if rng.random() < 0.3:
        prison = f"prison:{rng.choice(['LEI', 'NMI', 'BMI', 'WDI', 'HMI'])}"
        record(
            "CustodyChanged",
            {
                "status": "received",
                "establishment": prison,
                "expected_release_on": (at + timedelta(days=300)).date().isoformat(),
            },
        )
        if rng.random() < 0.66:
            record("AgencyPartnered", {"agency": prison, "reason": "holds the person"})
    if rng.random() < 0.7:
        record(
            "OfficerAssigned",
            {"agency": police, "officer": {"name": "O", "role": "OM", "contact": "c"}},
        )
    if level == 1:
        for _ in range(rng.randint(0, 2)):
            record(
                "Level1ReviewRecorded",
                {
                    "reviewed_on": at.date().isoformat(),
                    "outcome": "remain_level_1",
                    "reviewers": [police],
                },
                days=rng.randint(60, 140),
            )
        if rng.random() < 0.05:
            record(
                "ReferralMade",
                {
                    "referral_id": "r1",
                    "requested_level": 2,
                    "reasons": "r",
                    "rosh_level": "high",
                    "imminence": "weeks",
                    "agencies_to_invite": [{"agency": probation, "why": "w"}],
                },
            )
            record(
                "ReferralDecided",
                {
                    "referral_id": "r1",
                    "decision": "level_2",
                    "feedback": "f",
                    "decided_on": (at + timedelta(days=rng.randint(1, 20))).date().isoformat(),
                },
                agency=mappa,
            )
        return n
    for i in range(rng.randint(1, 4)):
        held = at + timedelta(days=rng.randint(30, 130))
        meeting_id = f"m{i}"
        record(
            "MeetingHeld",
            {
                "meeting_id": meeting_id,
                "level": level,
                "held_on": held.date().isoformat(),
                "chair": "C",
                "invited": [police, probation, "health:trust"],
                "attended": [{"agency": police, "name": "A", "role": "R"}],
                "apologies": ["health:trust"] if rng.random() < 0.5 else [],
            },
            agency=mappa,
            days=(held - at).days,
        )
        record(
            "MinutesUploaded",
            {
                "meeting_id": meeting_id,
                "meeting_date": held.date().isoformat(),
                "level": level,
                "document": {
                    "sha256": "c" * 64,
                    "filename": "m.pdf",
                    "media_type": "application/pdf",
                    "size": 1,
                },
            },
            agency=mappa,
            days=rng.choice([2, 5, 9, 14, 20]),
        )
        if rng.random() < 0.6:
            record(
                "DisclosureDecisionRecorded",
                {
                    "meeting_id": meeting_id,
                    "decision": "do_not_disclose",
                    "rationale": "r",
                    "decided_on": held.date().isoformat(),
                },
                agency=mappa,
                days=0,
            )
        record(
            "ActionSet",
            {
                "action_id": f"a{i}",
                "meeting_id": meeting_id,
                "description": "d",
                "assigned_agency": police,
                "due_on": (held + timedelta(days=28)).date().isoformat(),
            },
            agency=mappa,
            days=0,
        )
        if rng.random() < 0.7:
            record(
                "ActionCompleted",
                {
                    "action_id": f"a{i}",
                    "outcome": "done",
                    "completed_on": (held + timedelta(days=20)).date().isoformat(),
                },
            )
    return n


def load(service: Service, nominals: int, seed: int = 7) -> int:
    """Store `nominals` generated records; the number of events stored."""
    rng = random.Random(seed)
    now = datetime(2026, 11, 20, 12, tzinfo=UTC)
    app = service.ledger.app
    events = 0
    batch: list[Nominal] = []
    for i in range(nominals):
        n = _nominal(rng, now)
        events += len(n.pending_events)
        batch.append(n)
        # Small batches: the store's insert is one statement pipeline per transaction.
        if len(batch) == 50 or i == nominals - 1:
            app.save(*batch)
            if i % 1000 < 50:
                print(f"  stored {i + 1} nominals", flush=True)
            batch = []
    return events


async def _time_reports(app: Any, token: str, repeats: int = 5) -> dict[str, dict[str, float]]:
    out: dict[str, dict[str, float]] = {}
    transport = httpx.ASGITransport(app=app)
    headers = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:
        for name in REPORTS:
            for label, params in (("all", {}), ("area", {"area": "kent"})):
                times = []
                for _ in range(repeats + 1):
                    started = time.perf_counter()
                    r = await client.get(f"/v1/reports/{name}", params=params, headers=headers)
                    times.append((time.perf_counter() - started) * 1000)
                    r.raise_for_status()
                times = times[1:]  # the first warms the pool and the plan cache
                out[f"{name} ({label})"] = {
                    "median_ms": statistics.median(times),
                    "max_ms": max(times),
                }
    engine = getattr(app.state, "reports_engine", None)
    if engine is not None:
        await engine.dispose()
    return out


def _stream(
    service: Service, runner: ProjectionRunner, seconds: float, rate: float
) -> dict[str, Any]:
    """Post `rate` events a second for `seconds` while the runner runs; sample its lag."""
    records = service.records
    who = Principal(
        sub="bench", agency="police:bench", scopes=frozenset({"records:write", "records:read"})
    )
    ids = []
    for _ in range(20):
        body = {
            "identifiers": {"crn": f"B{random.randint(0, 999_999):06d}"},
            "name": {"family": "B", "given": ["S"]},
            "area": "kent",
            "category": 1,
            "level": 1,
        }
        ids.append(uuid.UUID(records.register(who, uuid.uuid4(), None, body).nominal_id))
    runner.catch_up()
    runner.start()
    samples: list[int] = []
    stop = threading.Event()

    def sample() -> None:
        while not stop.is_set():
            samples.append(min(s.lag for s in runner.status()))
            stop.wait(0.1)

    sampler = threading.Thread(target=sample)
    sampler.start()
    posted = 0
    started = time.monotonic()
    while time.monotonic() - started < seconds:
        records.post_event(
            who,
            random.choice(ids),
            NewEvent(
                uuid.uuid4(),
                "EntryRecorded",
                "2026-11-20",
                {"entry_type": "contact", "subject": "s", "body": "b"},
            ),
            None,
        )
        posted += 1
        time.sleep(max(0.0, started + posted / rate - time.monotonic()))
    drained_at = time.monotonic()
    while min(s.lag for s in runner.status()) > 0:
        time.sleep(0.01)
    drain_ms = (time.monotonic() - drained_at) * 1000
    stop.set()
    sampler.join()
    runner.stop()
    return {
        "posted": posted,
        "rate_per_s": posted / seconds,
        "lag_events_max": max(samples),
        "lag_events_mean": statistics.mean(samples),
        "drain_after_last_post_ms": drain_ms,
    }


def run(
    nominals: int = 100_000, stream_seconds: float = 10.0, stream_rate: float = 50.0
) -> dict[str, Any]:
    """Load, rebuild, time the reports and stream; the figures."""
    from api.app import create_app

    data_dir = Path(".data-bench")
    settings = Settings(
        database_url=_database("mappa_bench"),
        data_dir=data_dir,
        run_projections=False,
        dev_tokens=True,
    )
    service = start(settings)
    figures: dict[str, Any] = {"nominals": nominals}
    try:
        t = time.perf_counter()
        figures["events"] = load(service, nominals)
        figures["load_s"] = round(time.perf_counter() - t, 1)
        print(
            f"loaded {nominals} nominals, {figures['events']} events in {figures['load_s']} s",
            flush=True,
        )

        runner = ProjectionRunner.for_service(service)
        t = time.perf_counter()
        applied = runner.rebuild()
        elapsed = time.perf_counter() - t
        figures["rebuild_s"] = round(elapsed, 1)
        figures["rebuild_events_per_s"] = round(applied / elapsed)
        print(
            f"rebuild: {applied} events in {elapsed:.1f} s = {applied / elapsed:.0f} events/s",
            flush=True,
        )
        with psycopg.connect(service.db.url, autocommit=True) as conn:
            conn.execute("VACUUM ANALYZE")

        key = ensure_dev_key(data_dir)
        token = mint_token(
            key,
            agency="mappa:national",
            scopes="reports:read",
            sub="bench",
            ttl=3600,
            issuer=settings.jwt_issuer,
            audience=settings.jwt_audience,
            now=datetime.now(UTC),
        )
        app = create_app(service)
        figures["reports"] = asyncio.run(_time_reports(app, token))
        for name, t_ in figures["reports"].items():
            print(
                f"  {name:40s} median {t_['median_ms']:7.1f} ms   max {t_['max_ms']:7.1f} ms",
                flush=True,
            )

        if stream_seconds > 0:
            figures["stream"] = _stream(
                service, ProjectionRunner.for_service(service), stream_seconds, stream_rate
            )
            print(f"lag under {stream_rate:.0f} posts/s: {figures['stream']}", flush=True)
        runner.engine.dispose()
    finally:
        service.close()
    return figures


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--nominals", type=int, default=100_000)
    p.add_argument("--stream-seconds", type=float, default=10.0)
    p.add_argument("--stream-rate", type=float, default=50.0)
    args = p.parse_args()
    run(args.nominals, args.stream_seconds, args.stream_rate)


if __name__ == "__main__":
    main()
