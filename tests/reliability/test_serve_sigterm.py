"""`mappa-record serve` on its embedded PostgreSQL, stopped as systemd or a container
runtime stops it (SIGTERM), stops the PostgreSQL server too (issue 16, point 10). Before,
only Ctrl-C did: uvicorn re-raises the SIGTERM it caught once it has shut down, and the
process died of it without running the exit handler that stops the embedded server; with
several workers, each worker died the same way and left its handle on the server behind."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import pytest

from tests.conftest import free_port


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie is gone for our purpose (its parent has not reaped it yet).
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except FileNotFoundError:
        return False


def _wait(condition, seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, what
        time.sleep(0.2)


def _sigterm(serve: subprocess.Popen) -> None:
    serve.send_signal(signal.SIGTERM)  # systemd, a container runtime


def _ctrl_c(serve: subprocess.Popen) -> None:
    os.killpg(serve.pid, signal.SIGINT)  # a terminal: to the whole process group


@pytest.mark.slow
@pytest.mark.parametrize("stop", [_sigterm, _ctrl_c], ids=["SIGTERM", "Ctrl-C"])
@pytest.mark.parametrize("workers", [1, 2])
def test_stopping_serve_stops_its_embedded_postgres(workers, stop):
    data_dir = Path(tempfile.mkdtemp(prefix="mappa-term-", dir="/tmp"))  # a short socket path
    data_dir.chmod(0o755)  # run as root, the embedded server runs as a user of its own
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("MAPPA_")}
    env.pop("DATABASE_URL", None)
    env["MAPPA_DATA_DIR"] = str(data_dir)
    log = data_dir / "serve.log"
    with log.open("w") as out:
        serve = subprocess.Popen(
            [sys.executable, "-m", "service.cli", "serve", "--port", str(port)]
            + ["--workers", str(workers)],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    postmaster: int | None = None
    try:

        def ready() -> bool:
            assert serve.poll() is None, f"serve exited: {log.read_text()[-2000:]}"
            try:
                return httpx.get(f"http://127.0.0.1:{port}/health/ready").status_code == 200
            except httpx.TransportError:
                return False

        _wait(ready, 180, f"serve did not start: {log.read_text()[-2000:]}")
        postmaster = int((data_dir / "pg" / "postmaster.pid").read_text().split()[0])
        assert _alive(postmaster)

        stop(serve)
        serve.wait(timeout=60)
        _wait(
            lambda: not _alive(postmaster),
            60,
            f"the embedded PostgreSQL outlived serve: {log.read_text()[-2000:]}",
        )
        assert not (data_dir / "pg" / "postmaster.pid").exists()
    finally:
        if serve.poll() is None:
            os.killpg(serve.pid, signal.SIGKILL)  # its own session: serve and its workers
            serve.wait(timeout=10)
        if postmaster is not None and _alive(postmaster):
            os.kill(postmaster, signal.SIGQUIT)  # the server this test started, left behind
            _wait(lambda: not _alive(postmaster), 30, "the left-behind server did not stop")
        shutil.rmtree(data_dir, ignore_errors=True)
