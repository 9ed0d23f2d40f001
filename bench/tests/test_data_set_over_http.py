"""The synthetic data set is accepted by the real service: its lines posted over HTTP, each
with a real token for its agency, every one answered 201, and the record reads back."""

from __future__ import annotations

import httpx
import pytest

from bench.environment import ServiceProcess, workspace
from bench.import_ import generate
from bench.replay import post_lines

NOMINALS = 12


@pytest.mark.slow
def test_a_sample_of_the_data_set_is_accepted_line_by_line_by_the_service():
    lines = list(generate(NOMINALS))
    with workspace() as ws, ServiceProcess(ws, pool_size=4) as svc:
        assert post_lines(svc, lines) == len(lines)
        last = lines[-1]
        token = svc.token(last["recorded_by"]["agency"], "records:read")
        r = httpx.get(
            f"{svc.base_url}/v1/nominals/{last['nominal_id']}",
            headers={"Authorization": f"Bearer {token}"},
            timeout=30,
        )
        assert r.status_code == 200, r.text
        expected = sum(1 for line in lines if line["nominal_id"] == last["nominal_id"])
        assert r.json()["version"] == expected
        with ws.db.connect() as conn:
            stored = conn.execute("SELECT count(*) FROM nominals_events").fetchone()
        assert stored is not None and stored[0] == len(lines)
