"""Every token fault answers 401 through the routes, says nothing useful, and appends nothing
(neither an event nor a consultation-log row). The verifier itself is unit-tested in
tests/unit/test_auth.py (including the JWKS refresh rate limit)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from tests.conftest import AUDIENCE, ISSUER, NOTHING, event, registration


def _claims(drop: tuple[str, ...] = (), **overrides: Any) -> dict[str, Any]:
    now = int(time.time())
    values = {
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": "mallory",
        "agency": "police:kent",
        "scope": "records:read records:write",
        "iat": now,
        "exp": now + 300,
    }
    values.update(overrides)
    return {k: v for k, v in values.items() if k not in drop}


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _hand_made(header: dict[str, Any], payload: dict[str, Any], secret: bytes | None) -> str:
    signing_input = f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(payload).encode())}"
    signature = (
        b"" if secret is None else hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    )
    return f"{signing_input}.{_b64(signature)}"


def _faults(key, kid: str) -> dict[str, str]:
    """name -> a token with exactly that fault, all else as a valid token has it."""
    now = int(time.time())

    def sign(payload, **h):
        return jwt.encode(payload, key, algorithm="ES256", headers={"kid": kid} | h)

    public_pem = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    valid = sign(_claims())
    head, body, signature = valid.split(".")
    flipped = signature[:-4] + ("AAAA" if signature[-4:] != "AAAA" else "BBBB")
    other_rsa = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    other_ec = ec.generate_private_key(ec.SECP256R1())
    faults = {
        "alg none": _hand_made({"alg": "none", "kid": kid, "typ": "JWT"}, _claims(), None),
        "alg none, no signature part": _hand_made(
            {"alg": "none", "kid": kid}, _claims(), None
        ).rsplit(".", 1)[0]
        + ".",
        "HS256 signed with the public key": _hand_made(
            {"alg": "HS256", "kid": kid, "typ": "JWT"}, _claims(), public_pem
        ),
        "RS256 under the kid of an EC key": jwt.encode(
            _claims(), other_rsa, algorithm="RS256", headers={"kid": kid}
        ),
        "ES384 off the allow-list": jwt.encode(
            _claims(),
            ec.generate_private_key(ec.SECP384R1()),
            algorithm="ES384",
            headers={"kid": kid},
        ),
        "PS256 off the allow-list": jwt.encode(
            _claims(), other_rsa, algorithm="PS256", headers={"kid": kid}
        ),
        "wrong aud": sign(_claims(aud="someone-else")),
        "wrong iss": sign(_claims(iss="https://evil.example")),
        "expired beyond the leeway": sign(_claims(exp=now - 31, iat=now - 600)),
        "nbf in the future": sign(_claims(nbf=now + 120)),
        "iat in the future": sign(_claims(iat=now + 600, exp=now + 900)),
        "bad agency": sign(_claims(agency="cia:langley")),
        "agency not a string": sign(_claims(agency=["police:kent"])),
        "empty sub": sign(_claims(sub="")),
        "tampered signature": f"{head}.{body}.{flipped}",
        "tampered payload": f"{head}.{_b64(json.dumps(_claims(agency='mappa:x')).encode())}."
        f"{signature}",
        "kid not in the JWKS": sign(_claims(), kid="no-such-kid"),
        "no kid": jwt.encode(_claims(), key, algorithm="ES256"),
        "another key under our kid": jwt.encode(
            _claims(), other_ec, algorithm="ES256", headers={"kid": kid}
        ),
        "garbage": "not.a.jwt",
        "one word": "x",
    }
    for claim in ("aud", "iss", "exp", "iat", "sub", "agency", "scope"):
        faults[f"missing {claim}"] = sign(_claims(drop=(claim,)))
    return faults


FAULT_NAMES = list(_faults(ec.generate_private_key(ec.SECP256R1()), "k"))


@pytest.fixture(scope="module")
def faults(signing_key) -> dict[str, str]:
    return _faults(signing_key.private_key, signing_key.kid)


@pytest.fixture(scope="module")
def target(client, auth) -> str:
    r = client.post("/v1/nominals", json=registration(), headers=auth("police:kent"))
    assert r.status_code == 201
    return r.json()["nominal_id"]


def _requests(nominal_id: str) -> list[tuple[str, str, dict[str, Any] | None, dict[str, str]]]:
    return [
        ("POST", "/v1/nominals", registration(), {}),
        (
            "POST",
            f"/v1/nominals/{nominal_id}/events",
            event("EntryRecorded", {"entry_type": "activity", "subject": "s", "body": "b"}),
            {},
        ),
        ("GET", f"/v1/nominals/{nominal_id}", None, {}),
        ("GET", f"/v1/nominals/{nominal_id}/history", None, {}),
        ("GET", "/v1/nominals?crn=X123456", None, {}),
    ]


def _consultations(db) -> int:
    with db.connect() as conn:
        return conn.execute("SELECT count(*) FROM consultation_log").fetchone()[0]


@pytest.mark.parametrize("fault", FAULT_NAMES)
def test_each_token_fault_is_a_401_on_every_route_and_appends_nothing(
    fault, faults, target, client, db, stored_count
):
    events_before, log_before = stored_count(), _consultations(db)
    for method, path, body, _ in _requests(target):
        r = client.request(
            method, path, json=body, headers={"Authorization": f"Bearer {faults[fault]}"}
        )
        assert r.status_code == 401, (fault, method, path, r.text)
        assert r.headers["content-type"] == "application/problem+json"
        assert r.headers["WWW-Authenticate"] == "Bearer"
        assert r.json()["detail"] == "a valid bearer token is required"  # no hint
    assert stored_count() == events_before
    assert _consultations(db) == log_before


@pytest.mark.parametrize("header", [None, "Basic dXNlcjpwYXNz", "Bearer", "Token abc"])
def test_no_bearer_token_is_a_401(header, target, client, footprint):
    mark = footprint.mark()
    headers = {"Authorization": header} if header else {}
    for method, path, body, _ in _requests(target):
        r = client.request(method, path, json=body, headers=headers)
        assert r.status_code == 401, (header, method, path)
    assert footprint.since(mark) == NOTHING


def test_the_valid_token_the_faults_are_made_from_is_accepted(signing_key, target, client):
    """The control: without its fault the same token is let in (so the 401s mean something)."""
    valid = jwt.encode(
        _claims(), signing_key.private_key, algorithm="ES256", headers={"kid": signing_key.kid}
    )
    r = client.get(f"/v1/nominals/{target}", headers={"Authorization": f"Bearer {valid}"})
    assert r.status_code == 200


def test_a_token_expired_within_the_leeway_is_still_accepted(signing_key, target, client):
    now = int(time.time())
    token = jwt.encode(
        _claims(exp=now - 10, iat=now - 600),
        signing_key.private_key,
        algorithm="ES256",
        headers={"kid": signing_key.kid},
    )
    r = client.get(f"/v1/nominals/{target}", headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 200
