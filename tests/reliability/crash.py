"""Crash-test tools: the real `mappa-record serve` in a subprocess, and a fleet of clients
that retry each post with the same event_id until it is acknowledged."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from tests.conftest import AUDIENCE, ISSUER, event


class ServerProcess:
    """`mappa-record serve` on a loopback port, killable and restartable on the same port."""

    def __init__(
        self,
        database_url: str,
        data_dir: Path,
        port: int,
        log: Path,
        env: dict[str, str] | None = None,
    ) -> None:
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.log = log
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("MAPPA_")}
        self.env.update(
            {
                "DATABASE_URL": database_url,
                "MAPPA_DATA_DIR": str(data_dir),
                "MAPPA_JWT_ISSUER": ISSUER,
                "MAPPA_JWT_AUDIENCE": AUDIENCE,
                "MAPPA_POOL_SIZE": "4",
                "MAPPA_DEV_TOKENS": "true",
            }
            | (env or {})
        )
        self.process: subprocess.Popen | None = None
        self.starts = 0

    def start(self, timeout: float = 60) -> None:
        with self.log.open("a") as out:
            self.process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "service.cli",
                    "serve",
                    "--host",
                    "127.0.0.1",
                    "--port",
                    str(self.port),
                ],
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.starts += 1
        deadline = time.monotonic() + timeout
        while True:
            assert self.process.poll() is None, f"serve exited: {self.log.read_text()[-2000:]}"
            try:
                if httpx.get(f"{self.url}/health/ready", timeout=2).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, (
                f"serve did not start: {self.log.read_text()[-2000:]}"
            )  # noqa: E501
            time.sleep(0.1)

    def kill(self) -> None:
        """SIGKILL: no shutdown hooks, no flushing, requests cut off mid-flight."""
        assert self.process is not None
        os.kill(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)


@dataclass
class Fleet:
    """`clients` threads, each posting `per_client` events in order to the nominal, each
    retried with the same event_id and body on any connection error or 5xx until answered."""

    url: str
    nominal_id: str
    headers: dict[str, str]
    clients: int
    per_client: int
    timeout: float = 10.0  # a client gives up on an answer after this, and retries
    acknowledged: dict[str, int] = field(default_factory=dict)  # event_id -> version
    answers: list[int] = field(default_factory=list)
    faults_seen: int = 0
    retries: int = 0
    unexpected: list[str] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _threads: list[threading.Thread] = field(default_factory=list)

    def bodies(self, n: int) -> list[dict]:
        return [
            event(
                "EntryRecorded",
                {
                    "entry_type": "activity",
                    "subject": f"client {n} #{i}",
                    "body": "posted under fire",
                },
            )
            for i in range(self.per_client)
        ]

    def start(self) -> None:
        for n in range(self.clients):
            t = threading.Thread(target=self._run, args=(self.bodies(n),), daemon=True)
            t.start()
            self._threads.append(t)

    def join(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        for t in self._threads:
            t.join(max(0.1, deadline - time.monotonic()))
        assert not any(t.is_alive() for t in self._threads), "clients still retrying"

    @property
    def acked(self) -> int:
        with self._lock:
            return len(self.acknowledged)

    def _run(self, bodies: list[dict]) -> None:
        path = f"/v1/nominals/{self.nominal_id}/events"
        with httpx.Client(base_url=self.url, timeout=self.timeout) as c:
            for body in bodies:
                while True:
                    try:
                        r = c.post(path, json=body, headers=self.headers)
                    except httpx.TransportError:
                        self._count_fault()
                        continue
                    if r.status_code >= 500 or (r.status_code == 409 and "busy" in r.text):
                        self._count_fault()
                        continue
                    with self._lock:
                        self.answers.append(r.status_code)
                        if r.status_code in (200, 201):
                            self.acknowledged[body["event_id"]] = r.json()["version"]
                        else:
                            self.unexpected.append(f"{r.status_code} {r.text[:200]}")
                    break

    def _count_fault(self) -> None:
        with self._lock:
            self.faults_seen += 1
            self.retries += 1
        time.sleep(0.05)


def wait_until(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.01)


class RunnerProcess:
    """`mappa-record projections run` in a process of its own, killable and restartable."""

    def __init__(self, env: dict[str, str], log: Path) -> None:
        self.env = env
        self.log = log
        self.process: subprocess.Popen | None = None

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def start(self) -> None:
        with self.log.open("a") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "service.cli", "projections", "run"],
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def kill(self) -> None:
        assert self.process is not None
        os.kill(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)


@dataclass
class Ack:
    """One acknowledged post: its record and version, when it was first sent and answered."""

    nominal_id: str
    version: int
    status: int
    first_sent: float
    sent: float  # the attempt that was answered
    answered: float


@dataclass
class Traffic:
    """`clients` threads, each registering a record of its own and then posting to it a cycle
    of events that most read models see (entries, meetings, actions, partnering), spread over
    the API processes at `urls`. Every post is retried with the same event_id and body on a
    connection error, a time-out or a 5xx, against the next URL, until it is answered;
    `acks` keeps every 201 and 200, with time.monotonic() stamps."""

    urls: list[str]
    headers: dict[str, str]
    clients: int
    per_client: int
    timeout: float = 5.0
    acks: dict[str, Ack] = field(default_factory=dict)  # event_id -> its acknowledgement
    nominals: list[str] = field(default_factory=list)
    failed_attempts: int = 0
    unexpected: list[str] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _threads: list[threading.Thread] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)

    def start(self) -> None:
        for n in range(self.clients):
            t = threading.Thread(target=self._run, args=(n,), daemon=True)
            t.start()
            self._threads.append(t)

    def stop(self) -> None:
        """Post nothing new; what is being retried is retried until answered."""
        self._stop.set()

    def join(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        for t in self._threads:
            t.join(max(0.1, deadline - time.monotonic()))
        assert not any(t.is_alive() for t in self._threads), "clients still retrying"

    @property
    def acked(self) -> int:
        with self._lock:
            return len(self.acks)

    def acks_sent_after(self, instant: float) -> list[Ack]:
        with self._lock:
            return [a for a in self.acks.values() if a.sent > instant]

    def _run(self, n: int) -> None:
        from tests.conftest import registration

        body = registration(level=2, category=2)
        with httpx.Client(timeout=self.timeout) as c:
            ack = self._post(c, n, "/v1/nominals", body)
            nominal_id = ack.nominal_id
            with self._lock:
                self.nominals.append(nominal_id)
            for i in range(self.per_client):
                if self._stop.is_set():
                    return
                self._post(c, n + i, f"/v1/nominals/{nominal_id}/events", _nth_event(n, i))

    def _post(self, c: httpx.Client, turn: int, path: str, body: dict) -> Ack:
        first = time.monotonic()
        while True:
            url = self.urls[turn % len(self.urls)]
            sent = time.monotonic()
            try:
                r = c.post(url + path, json=body, headers=self.headers)
            except httpx.TransportError:
                r = None
            if r is None or r.status_code >= 500 or (r.status_code == 409 and "busy" in r.text):
                with self._lock:
                    self.failed_attempts += 1
                turn += 1  # as a load balancer would: the next process
                time.sleep(0.05)
                continue
            answered = time.monotonic()
            if r.status_code not in (200, 201):
                with self._lock:
                    self.unexpected.append(f"{r.status_code} {r.text[:300]}")
                raise AssertionError(f"{path}: {r.status_code} {r.text[:300]}")
            answer = r.json()
            ack = Ack(answer["nominal_id"], answer["version"], r.status_code, first, sent, answered)
            with self._lock:
                self.acks[body["event_id"]] = ack
            return ack


def _nth_event(client: int, i: int) -> dict:
    """The i-th event of a client's cycle: partnering, meetings, actions and entries."""
    kind = i % 5
    if kind == 0:
        return event(
            "MeetingHeld",
            {
                "meeting_id": f"m{i}",
                "level": 2,
                "held_on": "2026-11-19",
                "chair": "Chair",
                "invited": ["police:kent", "probation:midlands"],
            },
        )
    if kind == 1:
        return event(
            "ActionSet",
            {
                "action_id": f"a{i}",
                "description": "visit the home address",
                "assigned_agency": "police:kent",
                "due_on": "2026-12-01",
            },
        )
    if kind == 2:
        return event("AgencyPartnered", {"agency": f"housing:area{i}", "reason": "joint work"})
    return event(
        "EntryRecorded",
        {
            "entry_type": "activity",
            "subject": f"client {client} #{i}",
            "body": "posted under fire",
        },
    )


def exactly_once(traffic: Traffic, url: str, headers: dict[str, str]) -> dict[str, int]:
    """Every acknowledged event stored once at its acknowledged version, each record's
    versions contiguous and its chain linked; the figures (acknowledged, stored, lost,
    doubled)."""
    from collections import Counter

    stored: Counter[str] = Counter()
    versions: dict[str, int] = {}
    for nominal_id in traffic.nominals:
        r = httpx.get(
            f"{url}/v1/nominals/{nominal_id}/history",
            params={"limit": 1000},
            headers=headers,
            timeout=30,
        )
        assert r.status_code == 200, r.text
        events = r.json()["events"]
        assert [e["version"] for e in events] == list(range(1, len(events) + 1))
        assert all(b["prev_hash"] == a["hash"] for a, b in zip(events, events[1:], strict=False))
        for e in events:
            stored[e["event_id"]] += 1
            versions[e["event_id"]] = e["version"]
    acked = traffic.acks
    lost = [eid for eid in acked if stored[eid] == 0]
    doubled = [eid for eid, n in stored.items() if n > 1]
    moved = [eid for eid, a in acked.items() if stored[eid] and versions[eid] != a.version]
    figures = {
        "acknowledged": len(acked),
        "stored": sum(1 for eid in acked if stored[eid]),
        "lost": len(lost),
        "doubled": len(doubled),
        "at another version": len(moved),
        "stored unacknowledged": sum(1 for eid in stored if eid not in acked),
    }
    assert not lost and not doubled and not moved, figures
    return figures
