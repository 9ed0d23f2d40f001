"""The library beneath the service, used bare: `Application.save` of one small event per call.

A plain `eventsourcing` application on `eventsourcing.postgres` (its default
`PostgresApplicationRecorder`, which takes the same table lock per write as ours) in the same
server, its own table. Each client thread owns one aggregate, held in memory, and saves one
event carrying the same payload as the HTTP benchmark's entry per call: no HTTP, no token,
no validation, no reload, no index rows, no hash chain. This is what a user would write
without the service.
"""

from __future__ import annotations

from typing import Any

from eventsourcing.application import Application
from eventsourcing.domain import Aggregate, event

from bench.http_ import ENTRY
from bench.load import Budget, Operation, Run, run_clients
from service.runtime.database import Database


class Note(Aggregate):
    @event("Noted")
    def note(self, entry: dict[str, Any]) -> None:
        self.last = entry


class BenchLibrary(Application[Any]):
    name = "bench_library"


def application(db: Database, pool_size: int) -> BenchLibrary:
    env = db.eventsourcing_env() | {
        "CREATE_TABLE": "yes",
        "POSTGRES_POOL_SIZE": str(pool_size),
        "POSTGRES_MAX_OVERFLOW": "0",
    }
    return BenchLibrary(env=env)


def append(db: Database, clients: int, budget: Budget) -> Run:
    """Save one Noted event per call, each client on its own aggregate."""
    app = application(db, pool_size=clients)
    try:
        aggregates = [Note() for _ in range(clients)]
        app.save(*aggregates)

        def make(i: int) -> Operation:
            aggregate = aggregates[i]

            def op(n: int) -> None:
                aggregate.note(ENTRY)
                app.save(aggregate)

            return op

        return run_clients(make, clients, budget)
    finally:
        app.close()
