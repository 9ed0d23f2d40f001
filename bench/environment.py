"""What a benchmark run stands on: one embedded PostgreSQL, a fresh database, the service.

Everything lives in one temporary directory that is removed at the end: the server's data,
the service's data directory (its development signing key) and its log.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import quote

import httpx
import psutil
import psycopg

from service.devkeys import ensure_dev_key, mint_token
from service.runtime.database import Database, start_embedded
from service.runtime.settings import Settings
from service.store.migrate import migrate

BENCH_DBNAME = "mappa_bench"


@dataclass
class Workspace:
    root: Path
    server: Database  # the embedded server's own database (postgres)
    db: Database  # the fresh benchmark database on that server

    @property
    def data_dir(self) -> Path:
        return self.root / "data"


@contextlib.contextmanager
def workspace() -> Iterator[Workspace]:
    """An embedded PostgreSQL in a temporary directory with a fresh, migrated database."""
    # Unix socket paths are limited to about 100 bytes: keep the directory short.
    root = Path(tempfile.mkdtemp(prefix="mappa-bench-", dir="/tmp"))
    server = None
    try:
        server = start_embedded(root / "pg")
        with psycopg.connect(server.url, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{BENCH_DBNAME}"')
        p = server.parts
        db = Database(
            url=f"postgresql://{p['user']}@/{BENCH_DBNAME}?host={quote(p['host'])}&port={p['port']}"
        )
        migrate(db)
        yield Workspace(root=root, server=server, db=db)
    finally:
        if server is not None and server.embedded is not None:
            with contextlib.suppress(Exception):
                server.embedded.cleanup()
        shutil.rmtree(root, ignore_errors=True)


def service_env(ws: Workspace, **extra: str) -> dict[str, str]:
    """The environment a `mappa-record` command gets: the bench database and data directory."""
    env = {
        **os.environ,
        "DATABASE_URL": ws.db.url,
        "MAPPA_DATA_DIR": str(ws.data_dir),
        "MAPPA_DEV_TOKENS": "true",  # DATABASE_URL is set: the bench's key is trusted only so
        **extra,
    }
    for name in ("MAPPA_JWKS_URL", "MAPPA_JWKS_FILE", "MAPPA_JWT_ISSUER", "MAPPA_JWT_AUDIENCE"):
        env.pop(name, None)
    return env


def mappa_record() -> str:
    return str(Path(sys.executable).parent / "mappa-record")


@dataclass(frozen=True)
class Command:
    returncode: int
    seconds: float
    log: Path

    def tail(self, lines: int = 3) -> str:
        return " / ".join(self.log.read_text(errors="replace").strip().splitlines()[-lines:])


def run_command(ws: Workspace, args: list[str], name: str) -> Command:
    """Run `mappa-record ARGS` against the bench database, timed, its output to a log file."""
    log = ws.root / f"{name}.log"
    began = time.perf_counter()
    with log.open("wb") as out:
        done = subprocess.run(
            [mappa_record(), *args], env=service_env(ws), stdout=out, stderr=subprocess.STDOUT,
            check=False,
        )  # fmt: skip
    return Command(done.returncode, time.perf_counter() - began, log)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class ServiceProcess:
    """`mappa-record serve` as a user runs it, on a loopback port, against the bench database."""

    def __init__(self, ws: Workspace, *, pool_size: int, workers: int = 1) -> None:
        self.ws = ws
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.log_path = ws.root / "service.log"
        self.settings = Settings(data_dir=ws.data_dir)  # issuer and audience as the service's
        self.key = ensure_dev_key(ws.data_dir)  # the service trusts this key (no JWKS set)
        env = {
            **os.environ,
            "DATABASE_URL": ws.db.url,
            "MAPPA_DATA_DIR": str(ws.data_dir),
            "MAPPA_POOL_SIZE": str(pool_size),
            "MAPPA_DEV_TOKENS": "true",
        }
        for name in ("MAPPA_JWKS_URL", "MAPPA_JWKS_FILE", "MAPPA_JWT_ISSUER", "MAPPA_JWT_AUDIENCE"):
            env.pop(name, None)
        command = [
            str(Path(sys.executable).parent / "mappa-record"),
            "serve",
            "--port",
            str(self.port),
            "--workers",
            str(workers),
        ]
        self._log = self.log_path.open("wb")
        self.process = subprocess.Popen(
            command, env=env, stdout=self._log, stderr=subprocess.STDOUT
        )
        self._wait_ready(timeout=60)

    def _wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"the service exited: see {self.log_tail()}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{self.base_url}/health/ready", timeout=2).status_code == 200:
                    return
            time.sleep(0.2)
        raise RuntimeError(f"the service did not become ready: {self.log_tail()}")

    def log_tail(self, lines: int = 20) -> str:
        self._log.flush()
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def token(
        self, agency: str, scopes: str = "records:read records:write", *, officer: int = 0
    ) -> str:
        """A real signed token the service accepts, as `mappa-record token` would print, for
        one officer of the agency (each its own client to the service's rate limit)."""
        return mint_token(
            self.key,
            agency=agency,
            scopes=scopes,
            sub=f"bench-{agency.replace(':', '-')}-{officer}",
            ttl=3600,
            issuer=self.settings.jwt_issuer,
            audience=self.settings.jwt_audience,
            now=datetime.now(UTC),
        )

    def rss_mb(self) -> float:
        """Resident memory of the service process and its children (uvicorn workers), in MiB."""
        parent = psutil.Process(self.process.pid)
        processes = [parent, *parent.children(recursive=True)]
        return sum(p.memory_info().rss for p in processes) / 2**20

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)
        self._log.close()

    def __enter__(self) -> ServiceProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def python_loop_seconds(steps: int = 5_000_000) -> float:
    """How long a fixed piece of pure-Python work takes now. A shared machine's speed swings
    (the same run of generation took 56 s and 93 s an hour apart): figures of two runs
    compare only when this does too."""
    began = time.perf_counter()
    total = 0
    for i in range(steps):
        total += i & 7
    return round(time.perf_counter() - began, 3)
