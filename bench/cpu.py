"""CPU per request: the service's own CPU time over the requests it answered.

    python -m bench.cpu                     # posts at 16 clients, reads at 50, 10 s each
    python -m bench.cpu --seconds 5 --workers 2

Wall-clock rates on a shared machine swing by half from one minute to the next; the CPU
time the service process (and its workers) spends per request swings much less, so an A/B
of a change (`git stash`, run, `git stash pop`, run, twice) is best read here. Each phase
prints requests/s, the latencies, the service's CPU per request and the cores it used.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import psutil

from bench import http_
from bench.environment import ServiceProcess, python_loop_seconds, workspace
from bench.load import Budget, Run


def cpu_seconds(processes: list[psutil.Process]) -> float:
    return sum(p.cpu_times().user + p.cpu_times().system for p in processes)


def phase(svc: ServiceProcess, name: str, run: Callable[[], Run]) -> str:
    """One measured phase, as a line of figures."""
    parent = psutil.Process(svc.process.pid)
    processes = [parent, *parent.children(recursive=True)]
    before, began = cpu_seconds(processes), time.monotonic()
    done = run()
    used, elapsed = cpu_seconds(processes) - before, time.monotonic() - began
    return (
        f"{name}: {done.operations} requests, {done.operations / elapsed:.0f}/s, "
        f"p50 {done.percentile_ms(50):.1f} ms, p99 {done.percentile_ms(99):.1f} ms; "
        f"service CPU {used / done.operations * 1000:.2f} ms a request "
        f"({used / elapsed:.2f} cores)"
    )


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m bench.cpu", description=__doc__.split("\n")[0])
    p.add_argument("--seconds", type=float, default=10.0)
    p.add_argument("--nominals", type=int, default=256)
    p.add_argument("--workers", type=int, default=1, help="`mappa-record serve --workers`")
    args = p.parse_args(argv)
    budget = Budget(seconds=args.seconds, operations=10**7)
    print(f"machine: a fixed Python loop took {python_loop_seconds()} s (compare runs by it)")
    with workspace() as ws, ServiceProcess(ws, pool_size=20, workers=args.workers) as svc:
        nominals, _ = http_.register(svc, args.nominals, clients=16)
        print(phase(svc, "POST c16", lambda: http_.append(svc, nominals, 16, budget)))
        print(phase(svc, "GET c50", lambda: http_.read(svc, nominals, 50, budget)))


if __name__ == "__main__":
    main()
