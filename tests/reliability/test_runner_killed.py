"""The projection runner killed (SIGKILL) at random points converges to the rebuild, with no
event applied twice."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time

from sqlalchemy import text

from tests.projections.conftest import clock, enrol, post, runner, writer  # noqa: F401 - fixtures
from tests.projections.readmodels import TABLES, dump

RUNNER = """
import sys
from projections.runner import ProjectionRunner
from service.bootstrap import start
from service.runtime.settings import load_settings

service = start(load_settings(), run_migrations=False)
runner = ProjectionRunner.for_service(service, batch_size=int(sys.argv[1]))
print("ready", flush=True)
runner.run_forever(interval=0.05)
"""


def _spawn(database_url: str, data_dir) -> subprocess.Popen:
    env = os.environ | {
        "DATABASE_URL": database_url,
        "MAPPA_DATA_DIR": str(data_dir),
        "MAPPA_DEV_TOKENS": "true",
    }
    proc = subprocess.Popen(
        [sys.executable, "-c", RUNNER, "2"],
        env=env,
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )
    assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
    return proc


def test_runner_killed_at_random_points_converges_to_the_rebuild(
    runner,  # noqa: F811 - the fixtures imported above
    enrol,  # noqa: F811
    post,  # noqa: F811
    database_url,
    data_dir,
):
    for i in range(25):
        nid = enrol("police:kent", level=2, category=2)
        post(
            "police:kent",
            nid,
            "MeetingHeld",
            {
                "meeting_id": f"m{i}",
                "level": 2,
                "held_on": "2026-11-19",
                "chair": "C",
                "invited": ["police:kent"],
            },
        )
        post(
            "police:kent",
            nid,
            "ActionSet",
            {
                "action_id": "a",
                "description": "d",
                "assigned_agency": "police:kent",
                "due_on": "2026-12-01",
            },
        )
    # Start a rebuild by hand: empty read models, positions at 0, nothing applied yet.
    with runner.engine.begin() as conn:
        conn.execute(text(f"TRUNCATE {', '.join(TABLES)}"))
        conn.execute(text("UPDATE projection_positions SET position = 0"))
    head = runner.head()
    rng = random.Random(os.getpid())
    kills = 0
    for _ in range(4):
        proc = _spawn(database_url, data_dir)
        time.sleep(rng.uniform(0.0, 0.4))  # somewhere in its run of small transactions
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
        proc.stdout.close()
        kills += 1
        if min(s.position for s in runner.status()) >= head:
            break
    partway = min(s.position for s in runner.status())

    runner.catch_up()
    resumed = dump(runner.engine)
    runner.rebuild()

    assert kills >= 1 and partway > 0, "the killed runners applied nothing"
    assert dump(runner.engine) == resumed
    with runner.engine.connect() as conn:
        twice = conn.execute(
            text("SELECT count(*) FROM rm_nominals WHERE events_applied <> version")
        )
        assert twice.scalar_one() == 0
