"""`make bench`: every figure of issue 6 in one run on one embedded PostgreSQL.

    python -m bench            # full size, under 10 minutes
    python -m bench --quick    # about a minute: checks the harness end to end

Prints a table and writes bench/results/latest.json. Nothing here asserts a timing.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import platform
import sys
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rich.console import Console

from bench import http_, import_, library, profile, raw, rebuild, reports
from bench.environment import ServiceProcess, Workspace, python_loop_seconds, workspace
from bench.figures import Results
from bench.load import Budget, Run

# The figures each group of phases measures, in the order they run (raw copies the row size
# the service stored, 600 bytes when the service did not run).
GROUP_FIGURES = {
    "service": ("append_http_eps_c1", "append_http_eps_c16", "replay_http_eps_c16",
                "batch_eps_c4", "get_p50_ms", "get_p99_ms", "get_rps", "import_eps",
                "rebuild_eps", "report_ms", "rss_mb"),
    "library": ("append_library_eps_c1", "append_library_eps_c16"),
    "raw": ("insert_raw_tps_c1", "insert_raw_tps_c16"),
}  # fmt: skip
RESULTS = Path(__file__).resolve().parent / "results" / "latest.json"
GET_CLIENTS = 50
BATCH_SIZE = 100  # events a POST /v1/batches


@dataclass(frozen=True)
class Plan:
    mode: str
    seconds: int  # per measured phase
    operations: int  # per measured phase, across its clients
    nominals: int  # registered over HTTP before the appends and reads
    import_nominals: int  # size of the synthetic data set for import_eps
    workers: int = 1  # `mappa-record serve --workers`


PLANS = {
    # 10 s a phase: thousands of requests each, and the whole run inside its 10 minutes.
    "full": Plan("full", seconds=10, operations=200_000, nominals=1_024, import_nominals=100_000),
    "quick": Plan("quick", seconds=4, operations=20_000, nominals=128, import_nominals=1_000),
}


def _run_summary(run: Run) -> dict[str, float]:
    return {
        "clients": run.clients,
        "operations": run.operations,
        "seconds": round(run.elapsed, 3),
        "per_second": round(run.per_second, 1),
        "p50_ms": round(run.percentile_ms(50), 3),
        "p99_ms": round(run.percentile_ms(99), 3),
    }


def _machine(ws: Workspace) -> dict[str, object]:
    with ws.db.connect() as conn:
        version = conn.execute("SHOW server_version").fetchone()
    return {
        "cpus": os.cpu_count(),
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
        "python_loop_seconds_at_start": python_loop_seconds(),
        "python": platform.python_version(),
        "postgres": version[0] if version else None,
        "platform": platform.platform(),
    }


def service_phases(
    ws: Workspace, plan: Plan, results: Results, say: Console, profiles: Path | None
) -> None:
    """Registrations, appends at 1 and 16 clients, reads at 50; import and rebuild with the
    service stopped; reports and memory with it started again."""
    budget = Budget(seconds=plan.seconds, operations=plan.operations)

    def sampled(svc: ServiceProcess, phase: str) -> contextlib.AbstractContextManager[Any]:
        out = profiles / f"profile-{phase}.txt" if profiles else None
        return _profiled(svc, phase, out, results)

    with ServiceProcess(ws, pool_size=20, workers=plan.workers) as svc:
        say.log(f"service up on {svc.base_url}; registering {plan.nominals} nominals")
        nominals, run = http_.register(svc, plan.nominals, clients=16)
        results.runs["register_http_c16"] = _run_summary(run)
        results.extra["register_http_eps_c16"] = round(run.per_second, 1)
        posted: list[list[tuple[str, dict]]] = [[] for _ in range(16)]
        for clients in (1, 16):
            say.log(f"append over HTTP, {clients} client(s)")
            with sampled(svc, f"append_http_c{clients}"):
                kept = posted if clients == 16 else None
                run = http_.append(svc, nominals, clients, budget, kept)
            results.runs[f"append_http_c{clients}"] = _run_summary(run)
            results.set(f"append_http_eps_c{clients}", run.per_second)
        say.log("the same posts again (retries), 16 clients")
        with sampled(svc, "replay_http_c16"):
            run = http_.replay(svc, posted, budget)
        results.runs["replay_http_c16"] = _run_summary(run)
        results.set("replay_http_eps_c16", run.per_second)
        say.log(f"POST /v1/batches of {BATCH_SIZE}, 4 clients")
        with sampled(svc, "batch_c4"):
            run = http_.batches(svc, nominals, 4, budget, BATCH_SIZE)
        results.runs["batch_c4"] = _run_summary(run)
        results.set("batch_eps_c4", run.per_second * BATCH_SIZE)
        say.log(f"GET /v1/nominals/{{id}}, {GET_CLIENTS} clients")
        with sampled(svc, f"get_c{GET_CLIENTS}"):
            run = http_.read(svc, nominals, GET_CLIENTS, budget)
        results.runs[f"get_c{GET_CLIENTS}"] = _run_summary(run)
        results.set("get_p50_ms", run.percentile_ms(50))
        results.set("get_p99_ms", run.percentile_ms(99))
        results.set("get_rps", run.per_second)
        rss = {"after_http": svc.rss_mb()}
    # The service is stopped while the import and the rebuild run, as for a migration in a
    # maintenance window: its own projection runner would otherwise follow the import on the
    # same two cores (it took half a core of the import's time in the first full run).
    say.log("import and rebuild, the service stopped")
    loaded = import_.measure(results, ws, nominals=plan.import_nominals)
    rebuild.measure(results, ws, data_set_loaded=loaded)
    with ServiceProcess(ws, pool_size=20, workers=plan.workers) as svc:
        say.log("reports, the service started again over the loaded data set")
        reports.measure(results, svc, data_set_loaded=loaded)
        rss["after_reports"] = svc.rss_mb()
    results.extra["rss_mb"] = {k: round(v, 1) for k, v in rss.items()}
    results.set("rss_mb", max(rss.values()))


@contextlib.contextmanager
def _profiled(
    svc: ServiceProcess, phase: str, out: Path | None, results: Results
) -> Iterator[None]:
    with profile.profiled(svc.process.pid, out) as path:
        yield
    if path is not None and path.exists():
        results.extra.setdefault("profiles", {})[phase] = {"file": str(path)} | profile.hot_spots(
            path
        )


def library_phases(ws: Workspace, plan: Plan, results: Results, say: Console) -> None:
    budget = Budget(seconds=plan.seconds, operations=plan.operations)
    for clients in (1, 16):
        say.log(f"library Application.save, {clients} thread(s)")
        run = library.append(ws.db, clients, budget)
        results.runs[f"append_library_c{clients}"] = _run_summary(run)
        results.set(f"append_library_eps_c{clients}", run.per_second)


def raw_phases(ws: Workspace, plan: Plan, results: Results, say: Console) -> None:
    state_bytes = raw.stored_state_bytes(ws.db)
    results.config["raw_state_bytes"] = state_bytes
    for clients in (1, 16):
        say.log(f"pgbench single-row INSERT ({state_bytes} byte state), {clients} connection(s)")
        raw.prepare(ws.db)
        tps = raw.insert_tps(ws.db, ws.root, clients, plan.seconds, state_bytes)
        results.set(f"insert_raw_tps_c{clients}", tps)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true", help="small sizes, about a minute")
    p.add_argument("--out", type=Path, default=RESULTS, help=f"default {RESULTS}")
    p.add_argument(
        "--profile",
        action="store_true",
        help="sample the service with py-spy during the c16 appends and the reads",
    )
    p.add_argument(
        "--only",
        type=lambda v: set(v.split(",")),
        default=set(GROUP_FIGURES),
        help="comma-separated groups to run: service, library, raw (default: all)",
    )
    p.add_argument("--seconds", type=int, help="override the seconds per measured phase")
    p.add_argument("--nominals", type=int, help="override the nominals registered over HTTP")
    p.add_argument(
        "--workers", type=int, default=1, help="`mappa-record serve --workers` (default 1)"
    )
    args = p.parse_args(argv)
    unknown = args.only - set(GROUP_FIGURES)
    if unknown:
        p.error(f"unknown group {', '.join(sorted(unknown))}; use {', '.join(GROUP_FIGURES)}")
    plan = PLANS["quick" if args.quick else "full"]
    if args.seconds:
        plan = replace(plan, seconds=args.seconds)
    if args.nominals:
        plan = replace(plan, nominals=max(args.nominals, GET_CLIENTS, 16))
    plan = replace(plan, workers=max(1, args.workers))
    say = Console(stderr=True)
    results = Results(mode=plan.mode)
    results.config = asdict(plan) | {"service_pool_size": 20, "get_clients": GET_CLIENTS}
    results.config["only"] = sorted(args.only)
    started = time.monotonic()
    results.extra["started_at"] = datetime.now(UTC).isoformat(timespec="seconds")
    profiles = args.out.parent if args.profile else None
    if args.profile and profile.py_spy() is None:
        say.print("[yellow]--profile needs py-spy: pip install -e '.[bench]'[/yellow]")
    say.log("starting an embedded PostgreSQL and a fresh database")
    with workspace() as ws:
        results.machine = _machine(ws)
        # The service first: the raw rows copy the size of the events it stored.
        groups = {
            "service": lambda: service_phases(ws, plan, results, say, profiles),
            "library": lambda: library_phases(ws, plan, results, say),
            "raw": lambda: raw_phases(ws, plan, results, say),
        }
        for group, run_group in groups.items():
            if group in args.only:
                try:
                    run_group()
                except Exception as error:  # noqa: BLE001 - one broken group spoils no other
                    say.print_exception()
                    for figure in GROUP_FIGURES[group]:
                        if figure not in results.figures:
                            results.skip(figure, f"the {group} phases failed: {error}")
            else:
                for figure in GROUP_FIGURES[group]:
                    results.skip(figure, f"not run (--only {','.join(sorted(args.only))})")
    results.machine["python_loop_seconds_at_end"] = python_loop_seconds()
    results.ratio("append_vs_library_c16", "append_http_eps_c16", "append_library_eps_c16")
    results.ratio("append_vs_raw_c16", "append_http_eps_c16", "insert_raw_tps_c16")
    results.ratio("replay_vs_new_c16", "replay_http_eps_c16", "append_http_eps_c16")
    results.ratio("batch_vs_raw", "batch_eps_c4", "insert_raw_tps_c16")
    results.extra["total_seconds"] = round(time.monotonic() - started, 1)
    results.write(args.out)
    # A pipe or a log file gets the whole table, not 80 columns of wrapped notes.
    results.print_table(Console() if sys.stdout.isatty() else Console(width=150))
    for name, reason in results.notes.items():
        if results.figures.get(name) is None:
            say.print(f"[yellow]{name}[/yellow] is null: {reason}")
    for phase, found in results.extra.get("profiles", {}).items():
        say.print(f"[bold]{phase}[/bold]: py-spy samples in {found['file']}")
        for kind in ("layers", "own", "inclusive"):
            say.print(f"  {kind}:")
            for frame, share in found[kind]:
                say.print(f"    {share:5.1f} %  {frame}", highlight=False)
    say.print(f"wrote {args.out} in {results.extra['total_seconds']} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
