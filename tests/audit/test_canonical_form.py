"""The worked example of docs/integrity.md: the documented canonical form is the code's."""

from domain.chain import canonical_json, chain_hash

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
