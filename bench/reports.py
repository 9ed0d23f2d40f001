"""`report_ms` and `report_quarters_ms`: each report of docs/design.md#api at 100,000
nominals, as it stands and as a series of 8 quarters.

Needs the report routes (the projections issue) and the national data set loaded. When
both exist, each `/v1/reports/*` route in the service's OpenAPI is asked a few times with a
`reports:read` token and its median time kept, then again with `by=quarter&quarters=8`;
`report_ms` and `report_quarters_ms` are the slowest report's, and every report's own figures
go under `extra.report_ms` and `extra.report_quarters_ms`.

Alone, against a service already serving a loaded database:
`python -m bench.reports http://127.0.0.1:8000 "$(mappa-record token --agency mappa:kent
--scope reports:read)"` prints each report's median and slowest times.
"""

from __future__ import annotations

import statistics
import sys
import time

import httpx

from bench.environment import ServiceProcess
from bench.figures import Results

REPEATS = 5
SERIES = {"by": "quarter", "quarters": "8"}


def report_paths(svc: ServiceProcess) -> list[str]:
    return paths_of(svc.base_url)


def paths_of(base_url: str) -> list[str]:
    spec = httpx.get(f"{base_url}/openapi.json", timeout=30).json()
    return sorted(p for p in spec.get("paths", {}) if p.startswith("/v1/reports/"))


def timed(
    base_url: str, token: str, paths: list[str], params: dict[str, str]
) -> dict[str, list[float]]:
    """Each path's times in milliseconds, REPEATS calls, one after another."""
    out: dict[str, list[float]] = {}
    with httpx.Client(base_url=base_url, timeout=120) as http:
        for path in paths:
            samples = []
            for _ in range(REPEATS):
                began = time.perf_counter()
                r = http.get(path, params=params, headers={"Authorization": f"Bearer {token}"})
                samples.append((time.perf_counter() - began) * 1000)
                r.raise_for_status()
            out[path] = samples
    return out


def measure(results: Results, svc: ServiceProcess, *, data_set_loaded: bool) -> None:
    paths = report_paths(svc)
    if not paths:
        for figure in ("report_ms", "report_quarters_ms"):
            results.skip(figure, "no /v1/reports/* routes yet (projections branch)")
        return
    if not data_set_loaded:
        for figure in ("report_ms", "report_quarters_ms"):
            results.skip(figure, f"{len(paths)} reports found; need the national data set loaded")
        return
    token = svc.token("mappa:kent", "reports:read")
    for figure, params in (("report_ms", {}), ("report_quarters_ms", SERIES)):
        samples = timed(svc.base_url, token, paths, params)
        timings = {path: statistics.median(s) for path, s in samples.items()}
        results.extra[figure] = timings
        results.set(figure, max(timings.values()), note=f"slowest of {len(timings)} reports")


def main(base_url: str, token: str) -> None:
    paths = paths_of(base_url)
    for label, params in (("as it stands", {}), ("by=quarter&quarters=8", SERIES)):
        print(f"\n{label}: median and slowest of {REPEATS} calls, ms")
        for path, s in timed(base_url, token, paths, params).items():
            print(f"  {path:40} {statistics.median(s):8.1f} {max(s):8.1f}")


if __name__ == "__main__":
    main(*sys.argv[1:3])
