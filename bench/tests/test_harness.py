"""The harness measures what it says: budgets bound a run, errors stop it, figures and notes
reach the JSON. No timing is asserted; the end-to-end run checks shape, not speed."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest

from bench import profile, raw
from bench.capabilities import cli_commands
from bench.figures import FIGURES, Results
from bench.load import Budget, Run, run_clients


def test_a_run_stops_at_its_operation_budget_across_clients():
    seen: list[tuple[int, int]] = []
    lock = threading.Lock()

    def make(i: int):
        def op(n: int) -> None:
            with lock:
                seen.append((i, n))

        return op

    run = run_clients(make, clients=4, budget=Budget(seconds=60, operations=101))
    assert run.operations == 101 == len(seen) == len(run.latencies)
    assert run.clients == 4
    # each client numbers its own operations from 0
    for i in range(4):
        mine = sorted(n for c, n in seen if c == i)
        assert mine == list(range(len(mine)))


def test_a_run_stops_at_its_time_budget():
    run = run_clients(
        lambda i: lambda n: None, clients=2, budget=Budget(seconds=0.2, operations=10**12)
    )
    assert 0 < run.operations < 10**12
    assert run.elapsed >= 0.2


def test_a_failed_operation_stops_the_run_with_its_error():
    def make(i: int):
        def op(n: int) -> None:
            if n == 3:
                raise ValueError("answered 500")

        return op

    with pytest.raises(ValueError, match="answered 500"):
        run_clients(make, clients=3, budget=Budget(seconds=60, operations=10**9))


def test_percentiles_are_nearest_rank_in_milliseconds():
    run = Run(clients=1, operations=100, elapsed=1.0, latencies=[i / 1000 for i in range(1, 101)])
    assert run.percentile_ms(50) == pytest.approx(50)
    assert run.percentile_ms(99) == pytest.approx(99)
    assert run.percentile_ms(100) == pytest.approx(100)
    assert run.per_second == 100


def test_a_figure_not_measured_is_null_with_its_reason_and_ratios_need_both_sides(tmp_path: Path):
    results = Results(mode="test")
    results.set("append_http_eps_c16", 300.0)
    results.set("append_library_eps_c16", 100.0)
    results.ratio("append_vs_library_c16", "append_http_eps_c16", "append_library_eps_c16")
    results.ratio("append_vs_raw_c16", "append_http_eps_c16", "insert_raw_tps_c16")
    results.skip("import_eps", "no importer yet")
    out = tmp_path / "latest.json"
    results.write(out)
    written = json.loads(out.read_text())
    assert set(written["figures"]) == {f.name for f in FIGURES}
    assert written["figures"]["append_vs_library_c16"] == 3.0
    assert written["figures"]["append_vs_raw_c16"] is None
    assert "insert_raw_tps_c16" in written["notes"]["append_vs_raw_c16"]
    assert written["notes"]["import_eps"] == "no importer yet"
    assert written["targets"]["append_vs_library_c16"] == {"op": ">=", "value": 2.0}


def test_profile_samples_are_counted_in_the_layer_that_claims_them(tmp_path: Path):
    loop = "Server.run (uvicorn/server.py:70);Runner.run (asyncio/runners.py:118)"
    route = f"{loop};APIRoute.handle (fastapi/routing.py:800)"
    collapsed = tmp_path / "profile.txt"
    collapsed.write_text(
        f"{route};solve_dependencies (fastapi/dependencies/utils.py:823) 30\n"
        f"{route};Records.post (mappa_record/service/records.py:500);"
        "dumps (json/__init__.py:231) 20\n"
        f"{route};validate_python (pydantic/type_adapter.py:410) 10\n"
        "Thread._bootstrap (threading.py:1002);GroupCommitter._run (mappa_record/service/"
        "committer.py:150);Cursor.execute (psycopg/cursor.py:97) 25\n"
        f"{loop};RequestResponseCycle.send (uvicorn/protocols/http/httptools_impl.py:524);"
        "Logger.info (logging/__init__.py:1489) 10\n"
        f"{loop} 4\n"
        "<module> (x.py:1) 1\n"
        "a line that is not a sample\n"
    )
    assert profile.layers(collapsed) == [
        ("FastAPI's dependency solving", 30.0),
        ("group commit: the library's save, psycopg", 25.0),
        ("our service and domain", 20.0),  # the innermost frame that names a layer
        ("validation (pydantic)", 10.0),
        ("uvicorn's access log", 10.0),  # the log claims a sample before the server does
        ("event loop", 4.0),
        ("other", 1.0),
    ]
    assert profile.hot_spots(collapsed)["layers"] == profile.layers(collapsed)


def test_pgbench_tps_is_read_from_its_report():
    report = (
        "number of transactions actually processed: 4021\n"
        "latency average = 3.979 ms\n"
        "initial connection time = 12.5 ms\n"
        "tps = 4005.123456 (without initial connection time)\n"
    )
    assert float(raw._TPS.search(report).group(1)) == pytest.approx(4005.123456)
    assert "repeat('x', 700)" in raw.script(700)


def test_the_cli_is_inspected_for_the_commands_figures_need():
    assert {"serve", "migrate", "token"} <= cli_commands()


@pytest.mark.slow
def test_a_tiny_run_end_to_end_writes_every_figure_or_says_why_not(tmp_path: Path):
    from bench.__main__ import main

    out = tmp_path / "latest.json"
    assert main(["--quick", "--seconds", "1", "--nominals", "50", "--out", str(out)]) == 0
    written = json.loads(out.read_text())
    for name, value in written["figures"].items():
        if value is None:
            assert written["notes"].get(name), f"{name} is null without a reason"
        else:
            assert value > 0, name
    for measured in (
        "append_http_eps_c1",
        "append_http_eps_c16",
        "append_library_eps_c16",
        "insert_raw_tps_c16",
        "get_p99_ms",
        "rss_mb",
    ):
        assert written["figures"][measured] is not None, measured
    c16 = written["figures"]
    assert c16["append_vs_raw_c16"] == pytest.approx(  # figures are kept to 3 decimals
        c16["append_http_eps_c16"] / c16["insert_raw_tps_c16"], abs=6e-4
    )
    assert written["runs"]["get_c50"]["clients"] == 50
    for moment in ("start", "end"):  # the machine's speed, to compare runs by
        assert written["machine"][f"python_loop_seconds_at_{moment}"] > 0


def test_an_unknown_group_is_refused_before_anything_starts(capsys):
    from bench.__main__ import main

    with pytest.raises(SystemExit) as exit_:
        main(["--only", "service,nonsense"])
    assert exit_.value.code == 2
    assert "unknown group nonsense" in capsys.readouterr().err
