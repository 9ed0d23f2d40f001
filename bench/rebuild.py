"""`rebuild_eps`: all projections rebuilt from position 0 over the national data set.

Needs `mappa-record projections rebuild` (the projections issue) and the data set loaded by
`import_eps`. When both exist this runs the command against the bench database and divides
the events in the store by its wall time.
"""

from __future__ import annotations

from bench.capabilities import cli_commands
from bench.figures import Results


def measure(results: Results, *, data_set_loaded: bool) -> None:
    if "projections" not in cli_commands():
        results.skip(
            "rebuild_eps", "no `mappa-record projections rebuild` yet (projections branch)"
        )
        return
    if not data_set_loaded:
        results.skip("rebuild_eps", "needs the national data set loaded by import_eps first")
        return
    results.skip("rebuild_eps", "`projections rebuild` exists but is not wired into the bench yet")
