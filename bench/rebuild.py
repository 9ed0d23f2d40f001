"""`rebuild_eps`: all projections rebuilt from position 0 over the national data set.

Needs `mappa-record projections rebuild` (the projections issue) and the data set loaded by
`import_eps`. Runs the command against the bench database and divides the events in the
store by its wall time (a Python start-up of a second or two included, which is small
against millions of events).
"""

from __future__ import annotations

from bench.capabilities import cli_commands
from bench.environment import Workspace, run_command
from bench.figures import Results


def measure(results: Results, ws: Workspace, *, data_set_loaded: bool) -> None:
    if "projections" not in cli_commands():
        results.skip(
            "rebuild_eps", "no `mappa-record projections rebuild` yet (projections branch)"
        )
        return
    if not data_set_loaded:
        results.skip("rebuild_eps", "needs the national data set loaded by import_eps first")
        return
    with ws.db.connect() as conn:
        row = conn.execute("SELECT count(*) FROM nominals_events").fetchone()
    events = int(row[0]) if row else 0
    done = run_command(ws, ["projections", "rebuild"], "rebuild")
    if done.returncode != 0:
        results.skip("rebuild_eps", f"`mappa-record projections rebuild` failed: {done.tail()}")
        return
    results.extra["rebuild_events"] = events
    results.set("rebuild_eps", events / done.seconds)
