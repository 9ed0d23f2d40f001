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

    def __init__(self, database_url: str, data_dir: Path, port: int, log: Path) -> None:
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
