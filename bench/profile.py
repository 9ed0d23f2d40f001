"""`--profile`: py-spy samples the service process while a phase runs, as evidence for a note.

py-spy (`pip install -e '.[bench]'`) records collapsed stacks (`--format raw`, readable by
speedscope or flamegraph.pl) without pausing the service (`--nonblocking`), and stops when
the phase does. It samples only the thread holding the GIL (`--gil`): the service is one
Python process held to about one core by the GIL, so where the GIL goes is where its
requests' time goes. The run prints where the samples fell: by layer (the HTTP server, the
framework, our code, the group commit, ...), the functions at the top of the stacks (own
time) and the ones most often anywhere on them (inclusive time).
"""

from __future__ import annotations

import contextlib
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

RATE = 100  # samples per second
TELLING = ("api/", "service/", "domain/", "projections/", "eventsourcing/", "psycopg/",
           "psycopg_pool/", "jwt/", "pydantic", "fastapi/", "starlette/", "json/",
           "cryptography/")  # fmt: skip


def py_spy() -> str | None:
    beside = Path(sys.executable).parent / "py-spy"
    return str(beside) if beside.exists() else shutil.which("py-spy")


@contextlib.contextmanager
def profiled(pid: int, out: Path | None) -> Iterator[Path | None]:
    """Sample `pid` with py-spy for as long as the block runs; yields the output path or None."""
    exe = py_spy()
    if out is None or exe is None:
        yield None
        return
    out.parent.mkdir(parents=True, exist_ok=True)
    command = [exe, "record", "--pid", str(pid), "--rate", str(RATE), "--format", "raw", "--gil",
               "--nonblocking", "--subprocesses", "--output", str(out)]  # fmt: skip
    recorder = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    time.sleep(1.0)  # py-spy attaches before the phase starts
    try:
        yield out
    finally:
        recorder.send_signal(signal.SIGINT)  # py-spy writes its output on Ctrl-C
        try:
            recorder.wait(timeout=60)
        except subprocess.TimeoutExpired:
            recorder.kill()
            recorder.wait()
        if recorder.stderr is not None:
            recorder.stderr.close()


# A sample belongs to the first layer that claims it. The threads of their own first (found
# anywhere on the stack), then the access log, then the innermost frame that names a module.
Layers = tuple[tuple[str, tuple[str, ...]], ...]
THREADS: Layers = (
    ("group commit: the library's save, psycopg", ("GroupCommitter._run",)),
    ("batched reads and consultation rows", ("Batched._run",)),
    ("projection runner", ("ProjectionRunner.",)),
    ("uvicorn's access log", ("logging/",)),
)
MODULES: Layers = (
    ("validation (pydantic)", ("pydantic",)),
    ("our service and domain", ("service/", "domain/")),
    ("FastAPI's dependency solving", ("fastapi/dependencies/",)),
    ("framework: routing, middleware, responses", ("fastapi/", "starlette/", "api/")),
    ("HTTP server: uvicorn, httptools, socket writes", ("uvicorn/", "httptools")),
    ("event loop", ("asyncio/", "uvloop")),
)
OTHER = "other"


def _samples(collapsed: Path) -> Iterator[tuple[list[str], int]]:
    for line in collapsed.read_text(errors="replace").splitlines():
        stack, _, count = line.rpartition(" ")
        if stack and count.isdigit():
            yield stack.split(";"), int(count)


def layer(frames: list[str]) -> str:
    """The layer a sampled stack (outermost frame first) is counted in."""
    for name, marks in THREADS:
        if any(mark in frame for frame in frames for mark in marks):
            return name
    for frame in reversed(frames):
        for name, marks in MODULES:
            if any(mark in frame for mark in marks):
                return name
    return OTHER


def layers(collapsed: Path) -> list[tuple[str, float]]:
    """Each layer's share of the samples, in per cent, largest first."""
    counts: Counter[str] = Counter()
    for frames, n in _samples(collapsed):
        counts[layer(frames)] += n
    total = sum(counts.values())
    return [(name, round(100 * n / total, 1)) for name, n in counts.most_common()] if total else []


def hot_spots(collapsed: Path, top: int = 12) -> dict[str, list[tuple[str, float]]]:
    """The samples by layer, and the functions with the most samples at the top of the stack
    and anywhere on it."""
    own: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    total = 0
    for frames, n in _samples(collapsed):
        total += n
        own[frames[-1]] += n
        for frame in set(frames):
            inclusive[frame] += n
    if total == 0:
        return {"layers": [], "own": [], "inclusive": []}
    # Thread start-up and the server loop are on every stack and say nothing: keep our code
    # and the libraries a request goes through.
    telling = [(f, n) for f, n in inclusive.most_common() if any(m in f for m in TELLING)][:top]
    return {
        "layers": layers(collapsed),
        "own": [(f, round(100 * n / total, 1)) for f, n in own.most_common(top)],
        "inclusive": [(f, round(100 * n / total, 1)) for f, n in telling],
    }
