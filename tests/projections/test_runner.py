"""The runner's ordering: gaps in the notification ids, the command line, and a rebuild in
several processes."""

from __future__ import annotations

import functools
import os
import subprocess
import sys

import psycopg
import pytest
from sqlalchemy import text

from projections.runner import (
    EVENTS_TABLE,
    PROJECTIONS,
    RUNNER_LOCK,
    Busy,
    ProjectionRunner,
    rebuild_groups,
)
from service import cli
from tests.projections.readmodels import dump


def _run_once(runner) -> int:
    while True:
        try:
            return runner.run_once()
        except Busy:
            continue


def _applied(runner, nominal_id: str) -> bool:
    with runner.engine.connect() as conn:
        return (
            conn.execute(
                text("SELECT 1 FROM rm_nominals WHERE nominal_id = :id"), {"id": nominal_id}
            ).first()
            is not None
        )


def test_a_gap_is_passed_only_when_no_writer_can_still_fill_it(runner, enrol, database_url):
    runner.catch_up()
    # The session's API server runs a runner of its own in the background: keep every
    # runner out (their advisory lock) until a writer holds the events table.
    with psycopg.connect(database_url, autocommit=True) as runners_out:
        runners_out.execute("SELECT pg_advisory_lock(%s)", (RUNNER_LOCK,))
        # A writer that took an id and rolled back leaves a gap that will never fill.
        with psycopg.connect(database_url) as conn:
            conn.execute("LOCK TABLE nominals_events IN EXCLUSIVE MODE")
            conn.execute(
                "SELECT nextval(pg_get_serial_sequence('nominals_events', 'notification_id'))"
            )
            conn.rollback()
        nid = enrol("police:kent")
        writer = psycopg.connect(database_url)
        writer.execute("LOCK TABLE nominals_events IN EXCLUSIVE MODE")
        runners_out.execute("SELECT pg_advisory_unlock(%s)", (RUNNER_LOCK,))
    # While some writer holds the lock, no runner can know the gap is final: it waits.
    with writer:
        assert _run_once(runner) == 0
        assert not _applied(runner, nid)
        writer.rollback()

    # Once no writer holds the lock the gap is passed (by this runner, or by the one the
    # session's API server runs in the background, which may get there first).
    assert _run_once(runner) in (0, 1)
    assert _applied(runner, nid)
    assert min(s.position for s in runner.status()) == runner.head()


def _cli(database_url: str, data_dir, *args: str) -> subprocess.CompletedProcess:
    env = os.environ | {
        "DATABASE_URL": database_url,
        "MAPPA_DATA_DIR": str(data_dir),
        "MAPPA_DEV_TOKENS": "true",
    }
    return subprocess.run(
        [
            sys.executable,
            "-c",
            "from service.cli import main; main()",
            "projections",
            *args,
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_projections_status_and_rebuild_from_the_command_line(
    database_url, data_dir, enrol, runner
):
    enrol("police:kent")
    head = runner.head()

    rebuilt = _cli(database_url, data_dir, "rebuild")
    status = _cli(database_url, data_dir, "status")

    assert rebuilt.returncode == 0, rebuilt.stderr
    assert f"rebuilt from position 0 to {head}" in rebuilt.stdout
    assert status.returncode == 0, status.stderr
    for s in runner.status():
        assert s.name in status.stdout
    assert all(s.position >= head for s in runner.status())


def test_workers_are_refused_where_they_would_do_nothing(database_url, data_dir):
    status = _cli(database_url, data_dir, "status", "--workers", "3")

    assert status.returncode == 2
    assert "--workers is for rebuild" in status.stderr


def test_one_event_per_batch_ends_where_a_rebuild_does(runner, enrol, post):
    """Rows loaded, changed and written back batch after batch (base.Batch) give the same
    state as one batch over everything, including a partner that leaves and comes back."""
    nid = enrol("police:kent", level=2, category=2)
    for kind, payload in [
        ("AgencyPartnered", {"agency": "mappa:kent", "reason": "coordinates"}),
        ("AgencyPartnered", {"agency": "prison:HMP1", "reason": "holds"}),
        (
            "OfficerAssigned",
            {"agency": "police:kent", "officer": {"name": "O", "role": "R", "contact": "c"}},
        ),
        ("PartneringEnded", {"agency": "prison:HMP1", "reason": "released"}),
        ("AgencyPartnered", {"agency": "prison:HMP1", "reason": "recalled"}),
        (
            "MeetingHeld",
            {"meeting_id": "m", "level": 3, "held_on": "2026-11-19", "chair": "C"},
        ),
        ("LevelChanged", {"to": 3, "rationale": "r", "decided_on": "2026-11-19"}),
    ]:
        # The registrant brings MAPPA in; MAPPA posts the rest.
        poster = "police:kent" if payload.get("agency") == "mappa:kent" else "mappa:kent"
        post(poster, nid, kind, payload)
    one_by_one = ProjectionRunner(runner.engine, runner.recorder, runner.mapper, batch_size=1)
    one_by_one.rebuild()
    incremental = dump(runner.engine)

    runner.rebuild()

    assert dump(runner.engine) == incremental
    with runner.engine.connect() as conn:
        stints = conn.execute(
            text(
                "SELECT count(*) FROM rm_partnerships WHERE nominal_id = :id"
                " AND agency = 'prison:HMP1'"
            ),
            {"id": nid},
        ).scalar_one()
    assert stints == 2


# partnering_gaps and the read models whose rows it reads (its Projection.reads), and the
# outcomes with the event areas (each outcome takes its record's area, category and level).
TOGETHER = frozenset({"current_view", "partnerships", "meetings", "partnering_gaps"})
ALSO_TOGETHER = frozenset({"event_areas", "outcomes"})


def test_rebuild_groups_keep_the_gaps_with_what_they_read_and_place_every_projection_once():
    for workers in (1, 2, 3, 20):
        groups = rebuild_groups(PROJECTIONS, workers)
        names = [p.name for g in groups for p in g]
        assert sorted(names) == sorted(p.name for p in PROJECTIONS)
        units = len(PROJECTIONS) - len(TOGETHER) - len(ALSO_TOGETHER) + 2
        assert len(groups) == min(workers, units)
        assert any({p.name for p in g} >= TOGETHER for g in groups)
        assert any({p.name for p in g} >= ALSO_TOGETHER for g in groups)
    assert rebuild_groups(PROJECTIONS, 1) == [list(PROJECTIONS)]


def _group_runner_for(service):
    return functools.partial(
        cli._group_runner,
        service.db.sqlalchemy_url("psycopg").render_as_string(hide_password=False),
        dict(service.ledger.app.env),
    )


def test_a_rebuild_in_processes_equals_the_incremental_state(service, runner, enrol, post):
    nid = enrol("police:kent", level=2, category=2)
    post("police:kent", nid, "AgencyPartnered", {"agency": "mappa:kent", "reason": "MAPPA"})
    post(
        "mappa:kent",
        nid,
        "MeetingHeld",
        {"meeting_id": "m", "level": 2, "held_on": "2026-11-19", "chair": "C"},
    )
    runner.catch_up()
    incremental = dump(runner.engine)

    read = runner.rebuild(workers=2, group_runner=_group_runner_for(service))

    assert dump(runner.engine) == incremental
    assert all(s.position == runner.head() for s in runner.status())
    # Every stored event, read once. (Not compared with a rebuild in this process: that
    # one takes the runners' lock batch by batch, so the session's served app, whose own
    # runner follows the log, may apply some batches first and leave it fewer to read.)
    with runner.engine.connect() as conn:
        stored = conn.execute(text(f"SELECT count(*) FROM {EVENTS_TABLE}")).scalar_one()
    assert read == stored


def _failing_group_runner(names, lock_key):
    raise ValueError(f"no event store for {', '.join(names)}")


def test_a_rebuild_process_that_fails_fails_the_rebuild_and_names_its_projections(runner, enrol):
    enrol("police:kent")
    with pytest.raises(RuntimeError, match=r"rebuilding [a-z_, ]+ failed: ValueError: no event"):
        runner.rebuild(workers=2, group_runner=_failing_group_runner)
    runner.catch_up()  # what the rebuild emptied is applied again from position 0
    assert all(s.position == runner.head() for s in runner.status())


def test_an_event_applied_alone_finds_the_rows_its_handlers_read(runner, enrol, post, database_url):
    """A batch loads only the tables of the projections its events change, and the tables
    those read (Projection.reads): here each event is a batch of its own, so a LevelChanged
    alone must still find the officers and meetings partnering_gaps reads."""
    nid = enrol("police:kent", level=2, category=2)
    alone = ProjectionRunner(
        runner.engine, runner.recorder, runner.mapper, batch_size=1, lock_key=RUNNER_LOCK + 50
    )
    with psycopg.connect(database_url, autocommit=True) as side:
        side.execute("SELECT pg_advisory_lock(%s)", (RUNNER_LOCK,))  # the server's runner out
        alone.catch_up()
        for poster, kind, payload in [
            ("police:kent", "AgencyPartnered", {"agency": "mappa:kent", "reason": "MAPPA"}),
            (
                "mappa:kent",
                "OfficerAssigned",
                {"agency": "police:kent", "officer": {"name": "O", "role": "R", "contact": "c"}},
            ),
            (
                "mappa:kent",
                "MeetingHeld",
                {"meeting_id": "m", "level": 2, "held_on": "2026-11-19", "chair": "C"},
            ),
            ("mappa:kent", "LevelChanged", {"to": 3, "rationale": "r", "decided_on": "2026-11-19"}),
        ]:
            post(poster, nid, kind, payload)
            assert alone.catch_up() == 1
        side.execute("SELECT pg_advisory_unlock(%s)", (RUNNER_LOCK,))
    one_at_a_time = dump(runner.engine)

    runner.rebuild()

    assert dump(runner.engine) == one_at_a_time
