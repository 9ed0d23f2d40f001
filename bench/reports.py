"""`report_ms`: each report of docs/design.md#api at 100,000 nominals.

Needs the report routes (the projections issue) and the national data set loaded. When
both exist, each `/v1/reports/*` route in the service's OpenAPI is asked a few times with a
`reports:read` token and its median time kept; `report_ms` is the slowest report's, and
every report's own figure goes under `extra.report_ms`.
"""

from __future__ import annotations

import statistics
import time

import httpx

from bench.environment import ServiceProcess
from bench.figures import Results

REPEATS = 5


def report_paths(svc: ServiceProcess) -> list[str]:
    spec = httpx.get(f"{svc.base_url}/openapi.json", timeout=30).json()
    return sorted(p for p in spec.get("paths", {}) if p.startswith("/v1/reports/"))


def measure(results: Results, svc: ServiceProcess, *, data_set_loaded: bool) -> None:
    paths = report_paths(svc)
    if not paths:
        results.skip("report_ms", "no /v1/reports/* routes yet (projections branch)")
        return
    if not data_set_loaded:
        results.skip("report_ms", f"{len(paths)} reports found; need the national data set loaded")
        return
    token = svc.token("mappa:kent", "reports:read")
    timings: dict[str, float] = {}
    with httpx.Client(base_url=svc.base_url, timeout=120) as http:
        for path in paths:
            samples = []
            for _ in range(REPEATS):
                began = time.perf_counter()
                r = http.get(path, headers={"Authorization": f"Bearer {token}"})
                samples.append(time.perf_counter() - began)
                r.raise_for_status()
            timings[path] = statistics.median(samples) * 1000
    results.extra["report_ms"] = timings
    results.set("report_ms", max(timings.values()), note=f"slowest of {len(timings)} reports")
