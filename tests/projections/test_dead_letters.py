"""No single event stops the read side (issue 16, point 2; docs/adr/018).

An event a projection cannot apply is written here straight into the store, behind the
service's back, as an older version or a careless partner could have left it: a payload
string with a NUL (PostgreSQL's text refuses it), or an event whose class was moved
without its old topic registered. The runner sets it aside for the projections that
cannot apply it, applies everything else exactly once, and a fixed projection applies it,
in its place in its record's history, on `projections retry` or on a rebuild.

Each test has a database of its own: what is written here would poison the session's.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import psycopg
import pytest
from eventsourcing.utils import register_topic
from sqlalchemy import Engine, create_engine, text

from domain.nominal import Nominal
from projections.runner import PROJECTIONS, ProjectionRunner
from service.auth import Principal
from tests.audit.conftest import separate_service
from tests.conftest import registration
from tests.projections.readmodels import dump

KENT = Principal(sub="test-police:kent", agency="police:kent", scopes=frozenset({"records:write"}))
NUL_REASON = "hold\x00ing"  # issue 16: accepted with 201 before point 1 refused it at the door


@dataclass
class Store:
    """A database of its own with a started service on it, and a way to write behind it."""

    url: str
    service: Any
    client: Any
    engine: Engine
    runners: list[ProjectionRunner] = field(default_factory=list)

    def runner(self, **kwargs: Any) -> ProjectionRunner:
        runner = ProjectionRunner.for_service(self.service, **kwargs)
        self.runners.append(runner)
        return runner

    def close(self) -> None:
        for runner in self.runners:
            runner.engine.dispose()
        self.engine.dispose()

    def register(self, **overrides: Any) -> str:
        body = registration(**overrides)
        event_id = uuid.UUID(body.pop("event_id"))
        return str(self.service.records.register(KENT, event_id, None, body).nominal_id)

    def post(self, nominal_id: str, type_: str, payload: dict[str, Any]) -> int:
        """An event posted through the service; its position."""
        from service.records import NewEvent

        posted = self.service.records.post_event(
            KENT,
            uuid.UUID(nominal_id),
            NewEvent(event_id=uuid.uuid4(), type=type_, occurred_at="2026-11-20", payload=payload),
            None,
        )
        return int(posted.event["position"])

    def write_behind(
        self, nominal_id: str, events: list[tuple[str, dict[str, Any]]], topics: dict[int, str]
    ) -> list[int]:
        """Events decided on the record as it is stored, then inserted into the events table
        directly (the topic of the i-th replaced by topics[i]); their positions."""
        nominal = self.service.ledger.app.repository.get(uuid.UUID(nominal_id))
        for type_, payload in events:
            nominal.record(
                type_,
                event_id=str(uuid.uuid4()),
                occurred_at="2026-11-20",
                recorded_at=datetime.now(UTC),
                recorded_by={"sub": KENT.sub, "agency": KENT.agency},
                payload=payload,
            )
        mapper = self.service.ledger.app.mapper
        positions = []
        with psycopg.connect(self.url) as conn:
            for i, event in enumerate(nominal.collect_events()):
                stored = mapper.to_stored_event(event)
                positions.append(
                    conn.execute(
                        "INSERT INTO nominals_events (originator_id, originator_version, topic,"
                        " state) VALUES (%s, %s, %s, %s) RETURNING notification_id",
                        (
                            stored.originator_id,
                            stored.originator_version,
                            topics.get(i, stored.topic),
                            stored.state,
                        ),
                    ).fetchone()[0]
                )
        return positions

    def set_aside(self) -> list[tuple[str, int, str]]:
        """(projection, position, error) of every event set aside, in order."""
        with self.engine.connect() as conn:
            rows = conn.execute(
                text(
                    "SELECT projection, position, error FROM projection_dead_letters"
                    " ORDER BY position, projection"
                )
            ).all()
        return [tuple(r) for r in rows]

    def nominal(self, nominal_id: str) -> tuple[int, int, int] | None:
        """(level, version, events_applied) of the record's current-view row."""
        with self.engine.connect() as conn:
            row = conn.execute(
                text(
                    "SELECT level, version, events_applied FROM rm_nominals WHERE nominal_id = :id"
                ),
                {"id": nominal_id},
            ).first()
        return None if row is None else tuple(row)

    def cli(self, *args: str) -> subprocess.CompletedProcess:
        env = os.environ | {
            "DATABASE_URL": self.url,
            "MAPPA_DATA_DIR": str(self.service.settings.data_dir),
            "MAPPA_DEV_TOKENS": "true",
        }
        return subprocess.run(
            [sys.executable, "-c", "from service.cli import main; main()", "projections", *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )


@pytest.fixture
def store(database_url, data_dir, request) -> Iterator[Store]:
    name = f"{psycopg.conninfo.conninfo_to_dict(database_url)['dbname']}_dl_{request.node.name}"
    name = re.sub(r"[^a-z0-9_]", "_", name.lower())[:60]
    with separate_service(database_url, data_dir, name, run_projections=False) as (
        settings,
        service,
        client,
    ):
        store = Store(settings.database_url, service, client, _engine(service))
        try:
            yield store
        finally:
            store.close()


def _engine(service: Any) -> Engine:
    return create_engine(service.db.sqlalchemy_url("psycopg"), pool_size=1)


def _partnered_with_nul(store: Store, nominal_id: str) -> int:
    [position] = store.write_behind(
        nominal_id, [("AgencyPartnered", {"agency": "prison:LEI", "reason": NUL_REASON})], {}
    )
    return position


def test_an_event_a_projection_cannot_store_is_set_aside_and_the_rest_applied_once(store):
    runner = store.runner()
    first = store.register(level=2, category=2)
    poison = _partnered_with_nul(store, first)
    # After it, in the same batch: a change to the same record and a new record.
    store.post(first, "LevelChanged", {"to": 3, "rationale": "r", "decided_on": "2026-11-20"})
    second = store.register()

    runner.catch_up(timeout=30)

    head = runner.head()
    assert [s.position for s in runner.status()] == [head] * len(PROJECTIONS)
    [(projection, position, error)] = store.set_aside()
    assert (projection, position) == ("partnerships", poison)
    assert "0x00" in error and "\n" not in error
    # Every other event applied, each exactly once (events_applied counts applications),
    # the one set aside included by the projections that could apply it.
    assert store.nominal(first) == (3, 3, 3)
    assert store.nominal(second) == (1, 1, 1)
    with store.engine.connect() as conn:
        partners = conn.execute(
            text("SELECT agency FROM rm_partnerships WHERE nominal_id = :id ORDER BY agency"),
            {"id": first},
        ).scalars()
        assert list(partners) == ["police:kent", "probation:midlands"]
    assert [s.set_aside for s in runner.status()] == [
        int(p.name == "partnerships") for p in PROJECTIONS
    ]


def test_one_batch_and_one_event_a_batch_set_aside_the_same_and_a_rebuild_does_again(store):
    nominals = [store.register(level=2, category=2) for _ in range(3)]
    poison = _partnered_with_nul(store, nominals[1])
    store.post(nominals[1], "LevelChanged", {"to": 3, "rationale": "r", "decided_on": "2026-11-20"})
    store.post(nominals[2], "AgencyPartnered", {"agency": "prison:HMP1", "reason": "holds"})

    store.runner(batch_size=1).rebuild(timeout=60)
    one_at_a_time, set_aside = dump(store.engine), store.set_aside()
    with store.engine.begin() as conn:  # a dead letter of a projection that is rebuilt
        conn.execute(
            text(
                "INSERT INTO projection_dead_letters (projection, position, nominal_id,"
                " version, topic, error) VALUES ('referrals', 1, :id, 1, 't', 'old')"
            ),
            {"id": nominals[0]},
        )

    store.runner().rebuild(timeout=60)

    assert set_aside == [("partnerships", poison, set_aside[0][2])]
    assert store.set_aside() == set_aside
    assert dump(store.engine) == one_at_a_time


LEGACY = "tests.legacy_nominal:Nominal.LevelChanged"  # a module path no longer importable


def test_a_fixed_projection_applies_what_it_set_aside_in_its_place_on_retry(store):
    runner = store.runner()
    moved = store.register(level=2, category=2)
    other = store.register()
    # An older version's LevelChanged (its class since moved, the old topic not registered),
    # then today's, both to the same record; then a post to another record.
    old, _ = store.write_behind(
        moved,
        [
            ("LevelChanged", {"to": 3, "rationale": "r", "decided_on": "2026-11-20"}),
            ("LevelChanged", {"to": 2, "rationale": "r", "decided_on": "2026-11-21"}),
        ],
        {0: LEGACY},
    )
    store.post(other, "LevelChanged", {"to": 2, "rationale": "r", "decided_on": "2026-11-20"})
    runner.catch_up(timeout=30)

    # No projection can read it: each sets it aside; the event after it is applied.
    assert [(p, at) for p, at, _ in store.set_aside()] == [
        (name, old) for name in sorted(p.name for p in PROJECTIONS)
    ]
    assert all("tests.legacy_nominal" in error for _, _, error in store.set_aside())
    assert store.nominal(moved) == (2, 3, 2)
    assert store.nominal(other) == (2, 2, 2)

    # Not fixed yet: retried, set aside again, nothing else changed.
    before = dump(store.engine)
    assert runner.retry() == (0, len(PROJECTIONS))
    assert dump(store.engine) == before
    assert len(store.set_aside()) == len(PROJECTIONS)

    register_topic(LEGACY, Nominal.LevelChanged)  # the fix: the old topic registered
    assert runner.retry() == (len(PROJECTIONS), 0)

    assert store.set_aside() == []
    # Applied in its place: the later LevelChanged still decides the level (applied out of
    # order the old one would have set it to 3), and every event is applied once.
    assert store.nominal(moved) == (2, 3, 3)
    retried = dump(store.engine)
    runner.rebuild(timeout=60)
    assert dump(store.engine) == retried
    assert all(s.position == runner.head() for s in runner.status())


def test_status_metrics_readiness_and_retry_show_what_is_set_aside(store):
    nominal_id = store.register()
    poison = _partnered_with_nul(store, nominal_id)
    store.runner().catch_up(timeout=30)

    metrics = store.client.get("/metrics").text
    ready = store.client.get("/health/ready")
    status = store.cli("status")
    retried = store.cli("retry")

    for p in PROJECTIONS:
        held = int(p.name == "partnerships")
        assert f'mappa_projection_dead_letters{{projection="{p.name}"}} {float(held)}' in metrics
        assert f"{p.name}: {held} set aside" in ready.text
    assert ready.status_code == 200
    assert ready.text.startswith("ok\n")
    assert status.returncode == 0, status.stderr
    assert re.search(r"partnerships\s+│\s+\d+\s+│\s+\d+\s+│\s+0\s+│\s+1", status.stdout), (
        status.stdout
    )
    assert f"position {poison}: partnerships, record {nominal_id} version 2" in status.stdout
    assert '"UTF8": 0x00' in status.stdout
    assert retried.returncode == 1, retried.stderr
    assert "applied 0 of 1 events set aside; 1 still set aside" in retried.stdout


def test_retry_with_nothing_set_aside_says_so(store):
    store.register()
    store.runner().catch_up(timeout=30)

    retried = store.cli("retry")

    assert retried.returncode == 0, retried.stderr
    assert "nothing is set aside" in retried.stdout


@pytest.fixture
def served_store(database_url, data_dir) -> Iterator[Store]:
    """Like `store`, with the projection runner in the served app, as `serve` has it."""
    name = f"{psycopg.conninfo.conninfo_to_dict(database_url)['dbname']}_dl_served"
    with separate_service(database_url, data_dir, name) as (settings, service, client):
        store = Store(settings.database_url, service, client, _engine(service))
        try:
            yield store
        finally:
            store.close()


def _eventually(check: Callable[[], bool], timeout: float = 20.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.1)
    return check()


def test_the_reports_stay_current_past_an_event_set_aside(served_store, auth):
    store = served_store
    headers = auth("police:kent", "records:write reports:read")
    r = store.client.post("/v1/nominals", json=registration(level=1), headers=headers)
    assert r.status_code == 201, r.text
    _partnered_with_nul(store, r.json()["nominal_id"])
    # Posted after it: one record at level 3, which the level profile must come to show.
    r = store.client.post("/v1/nominals", json=registration(level=3, category=2), headers=headers)
    assert r.status_code == 201, r.text

    def level_three_counted() -> bool:
        report = store.client.get("/v1/reports/level-profile", headers=headers).json()
        return any(c["level"] == 3 and c["count"] == 1 for c in report["cells"])

    assert _eventually(level_three_counted)
    assert "partnerships: 1 set aside" in store.client.get("/health/ready").text


def test_a_failure_of_the_database_not_of_the_events_sets_nothing_aside(store):
    """A lock held too long (or a lost connection, a deadlock, a restart) says nothing about
    the events: the batch fails whole, is tried again, and nothing is set aside."""
    nominal_id = store.register()
    impatient = ProjectionRunner(
        create_engine(
            store.service.db.sqlalchemy_url("psycopg"),
            connect_args={"options": "-c lock_timeout=200"},
        ),
        store.service.ledger.app.recorder,
        store.service.ledger.app.mapper,
    )
    store.runners.append(impatient)
    with psycopg.connect(store.url) as holder:
        holder.execute("LOCK TABLE rm_nominals IN ACCESS EXCLUSIVE MODE")
        with pytest.raises(psycopg.errors.LockNotAvailable):
            impatient.run_once()
        holder.rollback()

    assert store.set_aside() == []
    assert store.nominal(nominal_id) is None
    impatient.catch_up(timeout=30)
    assert store.nominal(nominal_id) == (1, 1, 1)
