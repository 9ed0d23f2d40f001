"""A closed-loop load driver: N client threads, each doing one operation after another.

Every client starts at once (a barrier), stops when the run's time or operation budget is
spent, and times each operation. Throughput is completed operations over the wall time
from the start to the last client's stop; a failed operation stops the run with its error,
since a figure over failures would measure the wrong thing.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

Operation = Callable[[int], None]  # called with the operation's sequence number for its client


@dataclass(frozen=True)
class Budget:
    seconds: float
    operations: int  # across all clients


@dataclass
class Run:
    clients: int
    operations: int
    elapsed: float
    latencies: list[float] = field(repr=False)

    @property
    def per_second(self) -> float:
        return self.operations / self.elapsed if self.elapsed > 0 else 0.0

    def percentile_ms(self, q: float) -> float:
        """The q-th percentile latency (nearest rank), in milliseconds."""
        ordered = sorted(self.latencies)
        if not ordered:
            return float("nan")
        rank = math.ceil(q / 100 * len(ordered))  # 1-based: the smallest covering q per cent
        return ordered[max(0, min(len(ordered), rank) - 1)] * 1000


def run_clients(make_client: Callable[[int], Operation], clients: int, budget: Budget) -> Run:
    """Run `clients` threads of `make_client(i)` operations within the budget."""
    operations = [make_client(i) for i in range(clients)]
    barrier = threading.Barrier(clients + 1)
    lock = threading.Lock()
    remaining = [budget.operations]
    latencies: list[list[float]] = [[] for _ in range(clients)]
    errors: list[BaseException] = []
    stop = threading.Event()
    deadline = [0.0]

    def take() -> bool:
        with lock:
            if remaining[0] <= 0:
                return False
            remaining[0] -= 1
            return True

    def client(i: int) -> None:
        op = operations[i]
        mine = latencies[i]
        barrier.wait()
        n = 0
        try:
            while not stop.is_set() and time.perf_counter() < deadline[0] and take():
                began = time.perf_counter()
                op(n)
                mine.append(time.perf_counter() - began)
                n += 1
        except BaseException as e:  # noqa: BLE001 - reported after the run
            errors.append(e)
            stop.set()

    threads = [threading.Thread(target=client, args=(i,), daemon=True) for i in range(clients)]
    for t in threads:
        t.start()
    started = time.perf_counter()
    deadline[0] = started + budget.seconds
    barrier.wait()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - started
    if errors:
        raise errors[0]
    flat = [x for per_client in latencies for x in per_client]
    return Run(clients=clients, operations=len(flat), elapsed=elapsed, latencies=flat)
