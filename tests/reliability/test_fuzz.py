"""schemathesis over /openapi.json of the live test server, with valid tokens of a partnered
agency: no 5xx, no response that breaks its declared schema or content type.

Bounded: MAX_EXAMPLES per operation and mode (valid and invalid inputs). The case count is
printed and recorded in docs/reliability.md.
"""

from __future__ import annotations

import random

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis.checks import not_a_server_error
from schemathesis.generation import GenerationMode
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
)

MAX_EXAMPLES = 40
SCOPES = "records:read records:write audit:read reports:read feed:read"


@pytest.mark.slow
def test_fuzzing_the_openapi_document_finds_no_5xx_and_no_broken_response(
    base_url, token, register
):
    schema = schemathesis.openapi.from_url(f"{base_url}/openapi.json")
    headers = {
        "Authorization": f"Bearer {token('police:kent', SCOPES, sub='fuzzer', ttl=900)}",
        "Justification": "Fuzzing the API for the reliability suite",
    }
    real = [register("police:kent") for _ in range(3)]
    rng = random.Random(5)
    cases: dict[str, int] = {}
    statuses: dict[int, int] = {}

    for result in schema.get_all_operations():
        operation = result.ok()
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            mode_name = f" ({mode.value})"

            @settings(
                max_examples=MAX_EXAMPLES,
                deadline=None,
                database=None,
                phases=[Phase.explicit, Phase.generate],
                suppress_health_check=list(HealthCheck),
            )
            @given(case=operation.as_strategy(generation_mode=mode))
            def run(case):
                params = case.path_parameters or {}
                if "nominal_id" in params and rng.random() < 0.7:
                    params["nominal_id"] = rng.choice(real)  # a record we are partnered to
                response = case.call_and_validate(
                    base_url=base_url,
                    headers=headers,
                    checks=[
                        not_a_server_error,
                        response_schema_conformance,
                        content_type_conformance,
                    ],
                    timeout=30,
                )
                cases[case.operation.label + mode_name] = (
                    cases.get(case.operation.label + mode_name, 0) + 1
                )
                statuses[response.status_code] = statuses.get(response.status_code, 0) + 1

            try:
                run()
            except Unsatisfiable:
                # An operation with no inputs has no invalid inputs to make.
                assert mode is GenerationMode.NEGATIVE

    total = sum(cases.values())
    print(
        f"\nschemathesis: {total} cases over {len(cases)} operation/mode pairs; "
        f"statuses {dict(sorted(statuses.items()))}"
    )
    for label, n in sorted(cases.items()):
        print(f"  {label}: {n}")
    assert total > 0 and not any(s >= 500 for s in statuses)
