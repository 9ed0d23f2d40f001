"""The service over real HTTP: registrations, appends (`POST .../events`) and reads (`GET`).

Each client thread has its own keep-alive connection (httpx for the set-up, the standard
library's lighter `http.client` in the measured loops) and its own real signed token, as
its own officer: the service's rate limit (500 requests a second a client, bursts of
5,000) is per officer, and 50 clients reading as one officer hit it once the service
answered more than about 1,000 GETs a second.
Appends go to nominals registered beforehand, each client to its own share of them, so no
two clients ever write to the same stream: the figure is the service's, not its
optimistic-concurrency retries'.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import random
import uuid
from collections.abc import Callable, Iterator
from datetime import date

import httpx

from bench.environment import ServiceProcess
from bench.import_ import identifiers_for
from bench.load import Budget, Operation, Run, run_clients

AGENCY = "police:kent"
WRITE = "records:read records:write"
IDENTIFIER_OFFSET = 500_000  # away from the synthetic data set's identifiers
ENTRY = {
    "entry_type": "contact",
    "subject": "Home visit",
    "body": "Home visit completed; accommodation checked and consistent with the licence. "
    "Discussed employment and compliance with conditions; no concerns raised.",
}


class UnexpectedAnswer(Exception):
    pass


@contextlib.contextmanager
def _clients(svc: ServiceProcess, scopes: str) -> Iterator[Callable[[], httpx.Client]]:
    """A factory of HTTP clients with a real token each, all closed at the end."""
    made: list[httpx.Client] = []

    def make() -> httpx.Client:
        token = svc.token(AGENCY, scopes, officer=len(made))
        client = httpx.Client(
            base_url=svc.base_url, timeout=60, headers={"Authorization": f"Bearer {token}"}
        )
        made.append(client)
        return client

    try:
        yield make
    finally:
        for client in made:
            client.close()


class _Connection:
    """One keep-alive connection from the standard library, for the measured loops.

    A lighter load generator than httpx (about half the client CPU per request on this
    machine), so more of the cores the clients share with the service go to the service.
    """

    def __init__(self, svc: ServiceProcess, scopes: str, officer: int) -> None:
        self._http = http.client.HTTPConnection("127.0.0.1", svc.port, timeout=60)
        self._headers = {
            "Authorization": f"Bearer {svc.token(AGENCY, scopes, officer=officer)}",
            "Content-Type": "application/json",
        }

    def expect(self, method: str, path: str, status: int, body: object = None) -> bytes:
        """Send one request and read the whole answer; UnexpectedAnswer unless `status`."""
        content = json.dumps(body).encode() if body is not None else None
        self._http.request(method, path, body=content, headers=self._headers)
        response = self._http.getresponse()
        data = response.read()
        if response.status != status:
            raise UnexpectedAnswer(
                f"{method} {path} answered {response.status}, not {status}: {data[:300]!r}"
            )
        return data

    def close(self) -> None:
        self._http.close()


@contextlib.contextmanager
def _connections(svc: ServiceProcess, scopes: str) -> Iterator[Callable[[], _Connection]]:
    made: list[_Connection] = []

    def make() -> _Connection:
        made.append(_Connection(svc, scopes, officer=len(made)))
        return made[-1]

    try:
        yield make
    finally:
        for connection in made:
            connection.close()


def _expect(response: httpx.Response, status: int) -> httpx.Response:
    if response.status_code != status:
        raise UnexpectedAnswer(
            f"{response.request.method} {response.request.url.path} answered "
            f"{response.status_code}, not {status}: {response.text[:300]}"
        )
    return response


def registration(index: int) -> dict:
    identifiers = identifiers_for(IDENTIFIER_OFFSET + index, random.Random(index), date(2026, 1, 1))
    return {
        "event_id": str(uuid.uuid4()),
        "identifiers": identifiers,
        "name": {"family": "Example", "given": ["Sam"]},
        "aliases": [],
        "date_of_birth": "1980-02-01",
        "gender": "male",
        "area": "kent",
        "category": 1,
        "level": 1,
        "lead_agency": "probation:kent",
        "sentence_date": "2026-11-18",
    }


def register(svc: ServiceProcess, count: int, clients: int) -> tuple[list[str], Run]:
    """Register `count` nominals with `clients` concurrent clients; their ids and the run."""
    ids: list[list[str]] = [[] for _ in range(clients)]

    with _clients(svc, WRITE) as client:

        def make(i: int) -> Operation:
            http = client()

            def op(n: int) -> None:
                body = registration(n * clients + i)
                r = _expect(http.post("/v1/nominals", json=body), 201)
                ids[i].append(r.json()["nominal_id"])

            return op

        run = run_clients(make, clients, Budget(seconds=600, operations=count))
    return [nominal_id for per_client in ids for nominal_id in per_client], run


def append(
    svc: ServiceProcess,
    nominals: list[str],
    clients: int,
    budget: Budget,
    kept: list[list[tuple[str, dict]]] | None = None,
) -> Run:
    """POST one EntryRecorded per request, each client cycling over its own nominals; each
    client's posts kept in `kept[client]`, if given, to be posted again."""
    shares = [nominals[i::clients] for i in range(clients)]
    if any(not share for share in shares):
        raise ValueError(f"need at least {clients} nominals, have {len(nominals)}")

    with _connections(svc, WRITE) as connection:

        def make(i: int) -> Operation:
            http = connection()
            share = shares[i]

            def op(n: int) -> None:
                body = {
                    "event_id": str(uuid.uuid4()),
                    "type": "EntryRecorded",
                    "occurred_at": "2026-11-20",
                    "payload": ENTRY,
                }
                path = f"/v1/nominals/{share[n % len(share)]}/events"
                http.expect("POST", path, 201, body)
                if kept is not None:
                    kept[i].append((path, body))

            return op

        return run_clients(make, clients, budget)


def replay(svc: ServiceProcess, posted: list[list[tuple[str, dict]]], budget: Budget) -> Run:
    """POST again what `append` posted, each client its own posts in order: every answer a
    200 with the stored event (what every client does after a timeout or an outage)."""
    with _connections(svc, WRITE) as connection:

        def make(i: int) -> Operation:
            http, mine = connection(), posted[i]

            def op(n: int) -> None:
                path, body = mine[n % len(mine)]
                http.expect("POST", path, 200, body)

            return op

        return run_clients(make, len(posted), budget)


def batches(
    svc: ServiceProcess, nominals: list[str], clients: int, budget: Budget, size: int
) -> Run:
    """POST /v1/batches of `size` new entries, spread over each client's own nominals."""
    shares = [nominals[i::clients] for i in range(clients)]
    with _connections(svc, WRITE) as connection:

        def make(i: int) -> Operation:
            http, share = connection(), shares[i]

            def op(n: int) -> None:
                events = [
                    {
                        "nominal_id": share[(n * size + k) % len(share)],
                        "event_id": str(uuid.uuid4()),
                        "type": "EntryRecorded",
                        "occurred_at": "2026-11-20",
                        "payload": ENTRY,
                    }
                    for k in range(size)
                ]
                answer = http.expect("POST", "/v1/batches", 200, {"events": events})
                statuses = {r["status"] for r in json.loads(answer)["results"]}
                if statuses != {201}:
                    raise AssertionError(f"a batch answered {statuses}")

            return op

        return run_clients(make, clients, budget)


def read(svc: ServiceProcess, nominals: list[str], clients: int, budget: Budget) -> Run:
    """GET /v1/nominals/{id}, each client walking the nominals from its own offset."""

    with _connections(svc, "records:read") as connection:

        def make(i: int) -> Operation:
            http = connection()
            offset = i * max(1, len(nominals) // clients)

            def op(n: int) -> None:
                http.expect("GET", f"/v1/nominals/{nominals[(offset + n) % len(nominals)]}", 200)

            return op

        return run_clients(make, clients, budget)
