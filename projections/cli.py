"""`mappa-record projections run|rebuild|status`: the runner as its own process."""

from __future__ import annotations

import contextlib
import signal
import time
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from projections.runner import GroupRunner, ProjectionRunner


def run_command(
    service: Any, action: str, *, workers: int = 1, group_runner: GroupRunner | None = None
) -> None:
    """Do one of run, rebuild, status against a started service (a rebuild in `workers`
    processes, each made a runner by `group_runner`)."""
    runner = ProjectionRunner.for_service(service)
    console = Console()
    try:
        if action == "status":
            _status(runner, console)
        elif action == "rebuild":
            _rebuild(runner, console, workers, group_runner)
        else:
            _run(runner, console)
    finally:
        runner.engine.dispose()


def _status(runner: ProjectionRunner, console: Console) -> None:
    table = Table("projection", "position", "head", "lag (events)")
    for s in runner.status():
        table.add_row(s.name, str(s.position), str(s.head), str(s.lag))
    console.print(table)


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
