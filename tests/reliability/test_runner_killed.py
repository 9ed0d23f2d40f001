"""The projection runner killed (SIGKILL) part-way through catching up, again and again,
converges to the rebuild, with no event applied twice.

The runners work on a database of their own, so no other runner (the session's served app
has one) applies the events for them. Each is killed once the read models reach a position
drawn at random between a tenth and eight tenths of the log, and the test asserts the kill
landed before the runner finished: a kill after the end would prove nothing. The draw is
seeded from the value the test prints; RUNNER_KILL_SEED=<value> replays it.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
import uuid

from sqlalchemy import text

from projections.runner import ProjectionRunner
from service.records import NewEvent
from tests.audit.conftest import separate_service
from tests.conftest import registration
from tests.projections.conftest import principal
from tests.projections.readmodels import dump

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

NOMINALS = 150  # x 3 events: a few hundred transactions of 2 events for each runner
KILLS = 3


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


def _write(service) -> None:
    police = principal("police:kent")

    def post(nominal_id, type_: str, payload: dict) -> None:
        new = NewEvent(event_id=uuid.uuid4(), type=type_, occurred_at="2026-11-20", payload=payload)
        service.records.post_event(police, nominal_id, new, None)

    for i in range(NOMINALS):
        body = registration(level=2, category=2)
        event_id = uuid.UUID(body.pop("event_id"))
        nid = uuid.UUID(service.records.register(police, event_id, None, body).nominal_id)
        meeting = {"meeting_id": f"m{i}", "level": 2, "held_on": "2026-11-19", "chair": "C"}
        post(nid, "MeetingHeld", meeting | {"invited": ["police:kent"]})
        action = {"action_id": "a", "description": "d", "assigned_agency": "police:kent"}
        post(nid, "ActionSet", action | {"due_on": "2026-12-01"})


def _position(runner: ProjectionRunner) -> int:
    return min(s.position for s in runner.status())


def test_runner_killed_part_way_again_and_again_converges_to_the_rebuild(database_url, data_dir):
    seed = int(os.environ.get("RUNNER_KILL_SEED") or random.randrange(2**32))
    print(f"\nRUNNER_KILL_SEED={seed}")
    rng = random.Random(seed)
    name = f"mappa_killed_{os.getpid()}"
    with separate_service(database_url, data_dir, name, run_projections=False) as parts:
        settings, service, _ = parts
        _write(service)
        runner = ProjectionRunner.for_service(service)
        try:
            head = runner.head()
            assert _position(runner) == 0  # nothing applied yet: every runner below catches up
            stops = sorted(rng.sample(range(head // 10, head * 8 // 10), KILLS))
            reached = []
            for stop in stops:
                proc = _spawn(settings.database_url, data_dir)
                deadline = time.monotonic() + 60
                while _position(runner) < stop:
                    assert proc.poll() is None, f"the runner died by itself (seed {seed})"
                    assert time.monotonic() < deadline, f"no progress to {stop} (seed {seed})"
                    time.sleep(0.002)
                proc.send_signal(signal.SIGKILL)
                proc.wait(timeout=10)
                assert proc.stdout is not None
                proc.stdout.close()
                reached.append(_position(runner))
            # Each kill landed part-way: past its stop, short of the head; and each runner
            # took up where the one before it was killed.
            assert all(s <= r < head for s, r in zip(stops, reached, strict=True)), (
                f"stops {stops}, reached {reached}, head {head} (seed {seed})"
            )

            runner.catch_up()
            resumed = dump(runner.engine)
            runner.rebuild()
            assert dump(runner.engine) == resumed, f"seed {seed}"
            with runner.engine.connect() as conn:
                twice = conn.execute(
                    text("SELECT count(*) FROM rm_nominals WHERE events_applied <> version")
                )
                assert twice.scalar_one() == 0, f"seed {seed}"
        finally:
            runner.engine.dispose()
