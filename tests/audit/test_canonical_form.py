"""The canonical form of docs/integrity.md: its worked example is the code's, and it is
RFC 8785 (JCS) for every value the record stores, checked against the `rfc8785` package."""

import gzip
import hashlib
import json
from collections import Counter
from pathlib import Path

import rfc8785
from hypothesis import given, settings
from hypothesis import strategies as st

from domain.chain import canonical_json, chain_hash
from service.payloads import PAYLOADS
from tests.conftest import event

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "pre_layout"

ENVELOPE = {
    "event_id": "6f0e2a0c-3f61-4c43-9d0e-0f5b7f2a9c11",
    "type": "LevelChanged",
    "nominal_id": "0b9a6d0e-6a1e-5f57-9d3c-3f3f3b1e2a10",
    "version": 7,
    "occurred_at": "2026-11-20",
    "recorded_at": "2026-11-20T14:03:11.204000Z",
    "recorded_by": {"sub": "svc-kent-niche", "agency": "police:kent"},
    "payload": {
        "from": 1,
        "to": 2,
        "rationale": "Escalating contact with a known victim",
        "decided_on": "2026-11-20",
    },
    "prev_hash": "9c1f" + "0" * 60,
}


def test_the_documented_example_hashes_as_documented():
    assert canonical_json(ENVELOPE).startswith(
        b'{"event_id":"6f0e2a0c-3f61-4c43-9d0e-0f5b7f2a9c11","nominal_id"'
    )
    assert chain_hash(ENVELOPE["prev_hash"], ENVELOPE) == (
        "0ecb07ff7e117a5bcc0f25f0b4f954c13fdb9c17ca7957bb2c0b82877923390e"
    )


def test_non_ascii_is_hashed_as_utf8_not_escapes():
    envelope = ENVELOPE | {"payload": {"rationale": "Siân Ó Ceallaigh"}}
    assert "Siân Ó Ceallaigh".encode() in canonical_json(envelope)


# -- RFC 8785 (JCS) ---------------------------------------------------------------------------

JCS_INTEGERS = st.integers(min_value=-(2**53) + 1, max_value=2**53 - 1)  # I-JSON's safe range
# The one float the record takes is a risk score, as payloads store it (service/payloads.py).
SCORES = st.floats(min_value=1e-4, max_value=10_000).map(
    lambda f: int(f) if f.is_integer() else f
) | st.just(0)
TEXT = st.text(st.characters(exclude_categories=("Cs",)))  # any Unicode but lone surrogates
KEYS = st.from_regex(r"[a-z][a-z0-9_]{0,30}", fullmatch=True)  # every key is a schema's name
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | JCS_INTEGERS | SCORES | TEXT,
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(KEYS, inner, max_size=5),
    max_leaves=30,
)


@settings(max_examples=150, deadline=None)
@given(st.dictionaries(KEYS, JSON_VALUES, max_size=8))
def test_the_canonical_form_is_rfc8785_for_the_values_the_record_stores(document):
    assert canonical_json(document) == rfc8785.dumps(document)


def test_where_the_two_would_differ_the_record_stores_nothing():
    """Python and JCS part ways on whole floats (12.0 / 12), on floats below 1e-4 or from
    1e16 (exponent form), on integers beyond 2**53 and on key order beyond the BMP: the
    payload schemas never store such a value."""
    assert canonical_json({"score": 12.0}) != rfc8785.dumps({"score": 12.0})
    assert canonical_json({"score": 1e-05}) != rfc8785.dumps({"score": 1e-05})
    stored = PAYLOADS["RiskAssessmentRecorded"].model_validate(
        {"tool": "OASys", "rosh_level": "high", "score": 12.0, "assessed_on": "2026-11-19"}
    )
    assert stored.model_dump(mode="json")["score"] == 12
    assert type(stored.model_dump(mode="json")["score"]) is int


def test_an_auditor_recomputes_every_hash_with_a_standard_jcs_library(client, auth, register, post):
    nominal_id = register("police:kent")
    assessment = {"tool": "OASys", "rosh_level": "high", "assessed_on": "2026-11-19"}
    for score in (42, 42.0, 12.5, 0.0001, 0.0):
        post(nominal_id, "RiskAssessmentRecorded", assessment | {"score": score})
    body = 'Siân said:\n\t"not at home" \\ 家 😀 \u2028 \u0007'
    post(nominal_id, "EntryRecorded", {"entry_type": "visit", "subject": "Visit", "body": body})
    events = client.get(f"/v1/nominals/{nominal_id}/history", headers=auth("police:kent")).json()[
        "events"
    ]
    assert [e["payload"]["score"] for e in events[1:6]] == [42, 42, 12.5, 0.0001, 0]
    for e in events:
        envelope = {k: v for k, v in e.items() if k not in ("position", "hash")}
        recomputed = hashlib.sha256(e["prev_hash"].encode("ascii") + rfc8785.dumps(envelope))
        assert recomputed.hexdigest() == e["hash"], e["type"]


def test_a_score_jcs_would_write_otherwise_is_refused(client, auth, register):
    nominal_id = register("police:kent")
    payload = {"tool": "OASys", "rosh_level": "low", "score": 0.00001, "assessed_on": "2026-11-19"}
    r = client.post(
        f"/v1/nominals/{nominal_id}/events",
        json=event("RiskAssessmentRecorded", payload),
        headers=auth("police:kent"),
    )
    assert r.status_code == 422, r.text
    assert r.json()["errors"][0]["field"] == "payload.score"


def test_events_stored_before_differ_only_by_whole_float_scores():
    """What docs/integrity.md says of events recorded before scores were stored as JCS
    writes them: of the pre-layout fixtures' events (every type of the catalogue), the
    canonical form is JCS's but for a RiskAssessmentRecorded whose score is a whole float."""
    differing, total = Counter(), 0
    for name in ("plain", "encrypted"):
        expected = json.loads(gzip.decompress((FIXTURES / f"{name}.json.gz").read_bytes()))
        for facts in expected["records"].values():
            for e in facts["history"]:
                total += 1
                envelope = {k: v for k, v in e.items() if k not in ("position", "hash")}
                if canonical_json(envelope) != rfc8785.dumps(envelope):
                    score = e["payload"].get("score")
                    assert e["type"] == "RiskAssessmentRecorded", e["type"]
                    assert isinstance(score, float) and score.is_integer(), score
                    differing[e["type"]] += 1
    assert total > 1000 and 0 < sum(differing.values()) < total / 10
