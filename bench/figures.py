"""The figures a run reports, their targets (issue 6), the table and `results/latest.json`.

A figure is a number or `None`; a `None` always carries the reason it was not measured.
Targets are shown next to the figures for the reader; nothing here asserts them.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table


@dataclass(frozen=True)
class Figure:
    name: str
    unit: str
    meaning: str
    target: tuple[str, float] | None = None  # (">=" or "<", value)


FIGURES: tuple[Figure, ...] = (
    Figure("append_http_eps_c1", "events/s", "POST .../events over HTTP, 1 client"),
    Figure("append_http_eps_c16", "events/s", "POST .../events over HTTP, 16 clients"),
    Figure("append_library_eps_c1", "events/s", "eventsourcing Application.save, 1 thread"),
    Figure("append_library_eps_c16", "events/s", "eventsourcing Application.save, 16 threads"),
    Figure("insert_raw_tps_c1", "tx/s", "pgbench single-row INSERT, 1 connection"),
    Figure("insert_raw_tps_c16", "tx/s", "pgbench single-row INSERT, 16 connections"),
    Figure("append_vs_library_c16", "ratio", "HTTP c16 / library c16", (">=", 2.0)),
    Figure("append_vs_raw_c16", "ratio", "HTTP c16 / raw INSERT c16", (">=", 0.25)),
    Figure("replay_http_eps_c16", "events/s", "the same posts again (retries), 16 clients"),
    Figure("replay_vs_new_c16", "ratio", "retries c16 / new posts c16", (">=", 1.0)),
    Figure("batch_eps_c4", "events/s", "POST /v1/batches of 100 events, 4 clients"),
    Figure("batch_vs_raw", "ratio", "batches c4 / raw INSERT c16", (">=", 0.5)),
    Figure(
        "import_eps", "events/s", "mappa-record import of the national data set", (">=", 10_000)
    ),
    Figure("rebuild_eps", "events/s", "projections rebuild from position 0", (">=", 20_000)),
    Figure("get_p50_ms", "ms", "GET /v1/nominals/{id}, 50 clients, median"),
    Figure("get_p99_ms", "ms", "GET /v1/nominals/{id}, 50 clients, 99th percentile", ("<", 25)),
    Figure("get_rps", "requests/s", "GET /v1/nominals/{id}, 50 clients"),
    Figure("report_ms", "ms", "each report at 100,000 nominals (slowest shown)", ("<", 300)),
    Figure("rss_mb", "MiB", "service process resident memory at the end", ("<", 300)),
)


@dataclass
class Results:
    mode: str
    figures: dict[str, Any] = field(default_factory=dict)
    notes: dict[str, str] = field(default_factory=dict)
    runs: dict[str, dict[str, Any]] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)
    config: dict[str, Any] = field(default_factory=dict)
    machine: dict[str, Any] = field(default_factory=dict)

    def set(self, name: str, value: Any, note: str | None = None) -> None:
        self.figures[name] = value
        if note:
            self.notes[name] = note

    def skip(self, name: str, reason: str) -> None:
        """Record a figure as not measured, with the reason (printed and in the JSON)."""
        self.figures[name] = None
        self.notes[name] = reason

    def ratio(self, name: str, numerator: str, denominator: str) -> None:
        a, b = self.figures.get(numerator), self.figures.get(denominator)
        if isinstance(a, int | float) and isinstance(b, int | float) and b > 0:
            self.set(name, a / b)
        else:
            self.skip(name, f"needs both {numerator} and {denominator}")

    def as_json(self) -> dict[str, Any]:
        return {
            "mode": self.mode,
            "figures": {f.name: _rounded(self.figures.get(f.name)) for f in FIGURES},
            "notes": self.notes,
            "targets": {
                f.name: {"op": f.target[0], "value": f.target[1]} for f in FIGURES if f.target
            },
            "units": {f.name: f.unit for f in FIGURES},
            "runs": self.runs,
            "extra": self.extra,
            "config": self.config,
            "machine": self.machine,
        }

    def write(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.as_json(), indent=2, sort_keys=False) + "\n")

    def print_table(self, console: Console) -> None:
        table = Table(title=f"mappa-record bench ({self.mode})", show_lines=False)
        table.add_column("figure")
        table.add_column("value", justify="right")
        table.add_column("unit")
        table.add_column("target")
        table.add_column("what it is / why not measured")
        for f in FIGURES:
            value = self.figures.get(f.name)
            target = f"{f.target[0]} {f.target[1]:g}" if f.target else ""
            if value is None:
                shown, status = "null", ""
            else:
                shown = _format(value)
                status = "" if not f.target else (" met" if _meets(value, f.target) else " missed")
            note = self.notes.get(f.name, f.meaning)
            table.add_row(f.name, shown, f.unit, target + status, note)
        console.print(table)


def _meets(value: float, target: tuple[str, float]) -> bool:
    op, bound = target
    return value >= bound if op == ">=" else value < bound


def _format(value: float) -> str:
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if abs(value) >= 100:
        return f"{value:,.0f}"
    return f"{value:,.2f}"


def _rounded(value: Any) -> Any:
    if isinstance(value, float) and math.isfinite(value):
        return round(value, 3)
    return value
