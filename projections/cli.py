"""`mappa-record projections run|rebuild|status|retry`: the runner as its own process."""

from __future__ import annotations

import contextlib
import signal
import time
from datetime import UTC, datetime
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from projections.runner import GroupRunner, Leader, ProjectionRunner, candidate_name

LISTED = 20  # events set aside that `status` and `retry` list


def run_command(
    service: Any, action: str, *, workers: int = 1, group_runner: GroupRunner | None = None
) -> None:
    """Do one of run, rebuild, status, retry against a started service (a rebuild in
    `workers` processes, each made a runner by `group_runner`). A retry that leaves events set
    aside exits with status 1."""
    runner = ProjectionRunner.for_service(service, name=candidate_name("projections run"))
    console = Console()
    try:
        if action == "status":
            _status(runner, console)
        elif action == "rebuild":
            _rebuild(runner, console, workers, group_runner)
        elif action == "retry":
            _retry(runner, console)
        else:
            _run(runner, console)
    finally:
        runner.engine.dispose()


def _status(runner: ProjectionRunner, console: Console) -> None:
    table = Table("projection", "position", "head", "lag (events)", "set aside")
    statuses = runner.status()
    for s in statuses:
        table.add_row(s.name, str(s.position), str(s.head), str(s.lag), str(s.set_aside))
    console.print(table)
    console.print(leader_line(runner.leader(), datetime.now(UTC)), markup=False, highlight=False)
    if total := sum(s.set_aside for s in statuses):
        _set_aside(runner, console, total)


def leader_line(leader: Leader | None, now: datetime) -> str:
    """Which runner applies events (docs/adr/024), on one line."""
    if leader is None:
        return "leader: none elected yet (no `projections run` or `serve` has run)"
    since = f"elected {leader.elected_at:%Y-%m-%d %H:%M:%S %Z}"
    ago = (now - leader.elected_at).total_seconds()
    if leader.leads:
        return f"leader: {leader.holder}, {since} ({ago:.0f} s ago, term {leader.term})"
    return (
        f"leader: none now; the last, {leader.holder}, {since}, has lost its session "
        "(another runner takes over within a second of trying)"
    )


def _set_aside(runner: ProjectionRunner, console: Console, total: int) -> None:
    """The first events set aside, one line each and its error on the next, and what to do."""
    rows = runner.set_aside(LISTED)
    shown = f"the first {len(rows)} listed" if len(rows) < total else "listed"
    lines = [
        f"{total} events set aside ({shown}); fix the projection, then "
        "`mappa-record projections retry`:"
    ]
    for d in rows:
        lines.append(
            f"  position {d.position}: {d.projection}, record {d.nominal_id} version "
            f"{d.version}, {d.attempts} attempt{'s' if d.attempts > 1 else ''}"
        )
        lines.append(f"    {d.error}")
    # Plain text: an error may hold brackets that are not markup, and a long line wraps.
    console.print("\n".join(lines), markup=False, highlight=False, soft_wrap=True)


def _retry(runner: ProjectionRunner, console: Console) -> None:
    held = sum(s.set_aside for s in runner.status())
    if not held:
        console.print("nothing is set aside")
        return
    applied, still = runner.retry()
    console.print(f"applied {applied} of {held} events set aside; {still} still set aside")
    if still:
        _set_aside(runner, console, still)
        raise SystemExit(1)


def _rebuild(
    runner: ProjectionRunner, console: Console, workers: int, group_runner: GroupRunner | None
) -> None:
    head = runner.head()
    started = time.monotonic()
    with Progress(
        TextColumn("rebuilding read models"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=console,
    ) as progress:
        task = progress.add_task("rebuild", total=head)
        applied = runner.rebuild(
            progress=lambda n: progress.advance(task, n),
            workers=workers,
            group_runner=group_runner,
        )
    elapsed = time.monotonic() - started
    rate = applied / elapsed if elapsed else 0.0
    console.print(
        f"rebuilt from position 0 to {head}: {applied} events in {elapsed:.1f} s "
        f"({rate:.0f} events/s)"
    )


def _run(runner: ProjectionRunner, console: Console) -> None:
    console.print("applying events to the read models; Ctrl-C or SIGTERM stops")
    signal.signal(signal.SIGTERM, lambda *_: runner.stop_soon())
    with contextlib.suppress(KeyboardInterrupt):
        runner.run_forever()
