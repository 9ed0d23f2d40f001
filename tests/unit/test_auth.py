"""Token verification and the development key, with real keys and real signatures."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import stat
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

from service.auth import Principal, TokenVerifier, Unauthenticated
from service.devkeys import ensure_dev_key, mint_token

ISSUER = "https://idp.example.test"
AUDIENCE = "mappa-record"


# --- keys and tokens -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="module")
def ec_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


@pytest.fixture(scope="module")
def other_ec_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def public_jwk(private_key: Any, kid: str, alg: str | None = None) -> dict[str, Any]:
    if isinstance(private_key, rsa.RSAPrivateKey):
        jwk = RSAAlgorithm.to_jwk(private_key.public_key(), as_dict=True)
    else:
        jwk = ECAlgorithm.to_jwk(private_key.public_key(), as_dict=True)
    jwk["kid"] = kid
    if alg is not None:
        jwk["alg"] = alg
    return jwk


@pytest.fixture(scope="module")
def jwks(rsa_key: rsa.RSAPrivateKey, ec_key: ec.EllipticCurvePrivateKey) -> dict[str, Any]:
    return {"keys": [public_jwk(rsa_key, "rsa-1", "RS256"), public_jwk(ec_key, "ec-1")]}


@pytest.fixture
def verifier(jwks: dict[str, Any]) -> TokenVerifier:
    return TokenVerifier(issuer=ISSUER, audience=AUDIENCE, jwks=jwks)


def claims(*, drop: tuple[str, ...] = (), **overrides: Any) -> dict[str, Any]:
    now = int(time.time())
    values = {
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": "alice@kent.police.example",
        "agency": "police:kent",
        "scope": "records:read records:write",
        "iat": now,
        "exp": now + 300,
    }
    values.update(overrides)
    return {name: value for name, value in values.items() if name not in drop}


def sign(private_key: Any, alg: str, kid: str | None, payload: dict[str, Any]) -> str:
    headers = {"kid": kid} if kid is not None else {}
    return jwt.encode(payload, private_key, algorithm=alg, headers=headers)


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def hand_made(header: dict[str, Any], payload: dict[str, Any], secret: bytes | None) -> str:
    signing_input = f"{b64(json.dumps(header).encode())}.{b64(json.dumps(payload).encode())}"
    signature = b""
    if secret is not None:
        signature = hmac.new(secret, signing_input.encode("ascii"), hashlib.sha256).digest()
    return f"{signing_input}.{b64(signature)}"


# --- valid tokens --------------------------------------------------------------------------


def test_valid_rs256_token_names_the_principal(verifier, rsa_key):
    principal = verifier.verify(sign(rsa_key, "RS256", "rsa-1", claims()))

    assert principal == Principal(
        sub="alice@kent.police.example",
        agency="police:kent",
        scopes=frozenset({"records:read", "records:write"}),
    )
    assert principal.has("records:read")
    assert not principal.has("audit:read")


def test_valid_es256_token_names_the_principal(verifier, ec_key):
    token = sign(ec_key, "ES256", "ec-1", claims(agency="probation:midlands", scope="feed:read"))

    principal = verifier.verify(token)

    assert principal.agency == "probation:midlands"
    assert principal.scopes == frozenset({"feed:read"})


def test_agency_is_normalised_and_unknown_scopes_are_ignored(verifier, ec_key):
    token = sign(
        ec_key, "ES256", "ec-1", claims(agency="Police:kent", scope="records:read openid  email")
    )

    principal = verifier.verify(token)

    assert principal.agency == "police:kent"
    assert principal.scopes == frozenset({"records:read"})


def test_audience_may_be_a_list_holding_ours(verifier, ec_key):
    token = sign(ec_key, "ES256", "ec-1", claims(aud=["other-api", AUDIENCE]))

    assert verifier.verify(token).sub == "alice@kent.police.example"


# --- algorithms ----------------------------------------------------------------------------


def test_unsigned_token_is_refused(verifier):
    token = hand_made({"alg": "none", "typ": "JWT", "kid": "rsa-1"}, claims(), secret=None)

    with pytest.raises(Unauthenticated):
        verifier.verify(token)


def test_hs256_signed_with_the_public_key_is_refused(rsa_key, jwks):
    pem = rsa_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    token = hand_made({"alg": "HS256", "typ": "JWT", "kid": "rsa-1"}, claims(), secret=pem)
    # Even a verifier that also allows the RSA family never treats the key as an HMAC secret.
    verifier = TokenVerifier(
        issuer=ISSUER, audience=AUDIENCE, algorithms=("RS256", "PS256", "ES256"), jwks=jwks
    )

    with pytest.raises(Unauthenticated):
        verifier.verify(token)


@pytest.mark.parametrize("alg", ["RS384", "PS256", "RS512"])
def test_algorithms_off_the_allow_list_are_refused(verifier, rsa_key, alg):
    with pytest.raises(Unauthenticated):
        verifier.verify(sign(rsa_key, alg, "rsa-1", claims()))


def test_an_algorithm_allowed_by_configuration_is_accepted(jwks, rsa_key):
    jwks_without_alg = {"keys": [{k: v for k, v in jwks["keys"][0].items() if k != "alg"}]}
    verifier = TokenVerifier(
        issuer=ISSUER, audience=AUDIENCE, algorithms=["PS256"], jwks=jwks_without_alg
    )

    assert verifier.verify(sign(rsa_key, "PS256", "rsa-1", claims())).agency == "police:kent"
    with pytest.raises(Unauthenticated):
        verifier.verify(sign(rsa_key, "RS256", "rsa-1", claims()))


def test_a_key_verifies_only_its_own_algorithm(verifier, rsa_key, ec_key):
    # An ES256 token naming the RSA key, and an RS256 token naming the EC key.
    with pytest.raises(Unauthenticated):
        verifier.verify(sign(ec_key, "ES256", "rsa-1", claims()))
    with pytest.raises(Unauthenticated):
        verifier.verify(sign(rsa_key, "RS256", "ec-1", claims()))


def test_a_key_published_for_another_algorithm_is_not_used(rsa_key):
    jwks = {"keys": [public_jwk(rsa_key, "rsa-1", "RS512")]}
    verifier = TokenVerifier(issuer=ISSUER, audience=AUDIENCE, jwks=jwks)

    with pytest.raises(Unauthenticated):
        verifier.verify(sign(rsa_key, "RS256", "rsa-1", claims()))


@pytest.mark.parametrize(
    "algorithms", [("none",), ("HS256",), ("RS256", "HS512"), ("NONE",), ("XYZ1",), ()]
)
def test_unsafe_or_unknown_algorithms_cannot_be_configured(jwks, algorithms):
    with pytest.raises(ValueError):
        TokenVerifier(issuer=ISSUER, audience=AUDIENCE, algorithms=algorithms, jwks=jwks)


def test_exactly_one_jwks_source_is_required(jwks, tmp_path):
    with pytest.raises(ValueError):
        TokenVerifier(issuer=ISSUER, audience=AUDIENCE)
    with pytest.raises(ValueError):
        TokenVerifier(issuer=ISSUER, audience=AUDIENCE, jwks=jwks, jwks_url="http://127.0.0.1:9")
    with pytest.raises(ValueError):
        TokenVerifier(issuer=ISSUER, audience=AUDIENCE, jwks_file=tmp_path / "missing.json")


# --- claims --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("changes", "drop"),
    [
        pytest.param({"aud": "someone-else"}, (), id="wrong aud"),
        pytest.param({}, ("aud",), id="missing aud"),
        pytest.param({"iss": "https://evil.example"}, (), id="wrong iss"),
        pytest.param({}, ("iss",), id="missing iss"),
        pytest.param({}, ("exp",), id="missing exp"),
        pytest.param({}, ("iat",), id="missing iat"),
        pytest.param({}, ("sub",), id="missing sub"),
        pytest.param({"sub": ""}, (), id="empty sub"),
        pytest.param({}, ("agency",), id="missing agency"),
        pytest.param({}, ("scope",), id="missing scope"),
        pytest.param({"scope": ["records:read"]}, (), id="scope as a list"),
        pytest.param({"agency": "army:kent"}, (), id="unknown agency type"),
        pytest.param({"agency": "police"}, (), id="agency without id"),
        pytest.param({"agency": "police:kent/x"}, (), id="agency id with a slash"),
        pytest.param({"exp": "99999999999"}, (), id="exp as text"),
    ],
)
def test_tokens_with_bad_claims_are_refused(verifier, ec_key, changes, drop):
    token = sign(ec_key, "ES256", "ec-1", claims(drop=drop, **changes))
    assert verifier.verify(sign(ec_key, "ES256", "ec-1", claims()))  # the same, unspoilt

    with pytest.raises(Unauthenticated):
        verifier.verify(token)


def test_expiry_has_thirty_seconds_leeway(verifier, ec_key):
    now = int(time.time())

    within = sign(ec_key, "ES256", "ec-1", claims(iat=now - 300, exp=now - 20))
    beyond = sign(ec_key, "ES256", "ec-1", claims(iat=now - 300, exp=now - 45))

    assert verifier.verify(within).sub == "alice@kent.police.example"
    with pytest.raises(Unauthenticated):
        verifier.verify(beyond)


def test_not_before_in_the_future_is_refused(verifier, ec_key):
    now = int(time.time())

    with pytest.raises(Unauthenticated):
        verifier.verify(sign(ec_key, "ES256", "ec-1", claims(nbf=now + 120)))
    assert verifier.verify(sign(ec_key, "ES256", "ec-1", claims(nbf=now + 10)))


def test_issued_in_the_future_is_refused(verifier, ec_key):
    now = int(time.time())

    with pytest.raises(Unauthenticated):
        verifier.verify(sign(ec_key, "ES256", "ec-1", claims(iat=now + 120, exp=now + 600)))


# --- signatures and keys -------------------------------------------------------------------


def test_tampered_tokens_are_refused(verifier, rsa_key):
    header, payload, signature = sign(rsa_key, "RS256", "rsa-1", claims()).split(".")
    forged_payload = b64(json.dumps(claims(agency="police:met", scope="audit:read")).encode())
    middle = len(signature) // 2
    flipped = "A" if signature[middle] != "A" else "B"
    forged_signature = signature[:middle] + flipped + signature[middle + 1 :]

    with pytest.raises(Unauthenticated):
        verifier.verify(f"{header}.{forged_payload}.{signature}")
    with pytest.raises(Unauthenticated):
        verifier.verify(f"{header}.{payload}.{forged_signature}")


def test_a_token_signed_by_another_key_under_a_known_kid_is_refused(verifier, other_ec_key):
    with pytest.raises(Unauthenticated):
        verifier.verify(sign(other_ec_key, "ES256", "ec-1", claims()))


@pytest.mark.parametrize("kid", ["unknown", None])
def test_a_kid_not_in_the_jwks_is_refused(verifier, ec_key, kid):
    with pytest.raises(Unauthenticated):
        verifier.verify(sign(ec_key, "ES256", kid, claims()))


@pytest.mark.parametrize("garbage", ["", "abc", "a.b.c", "a.b", "....", "Bearer x.y.z"])
def test_garbage_is_refused(verifier, garbage):
    with pytest.raises(Unauthenticated):
        verifier.verify(garbage)


# --- remembered tokens ---------------------------------------------------------------------


def test_a_remembered_token_still_expires(jwks, ec_key):
    verifier = TokenVerifier(issuer=ISSUER, audience=AUDIENCE, jwks=jwks, leeway=0)
    now = int(time.time())
    token = sign(ec_key, "ES256", "ec-1", claims(iat=now, exp=now + 2))
    assert verifier.verify(token).agency == "police:kent"
    assert verifier.remembered(token) is not None

    time.sleep(max(0.0, now + 2.05 - time.time()))

    assert verifier.remembered(token) is None
    with pytest.raises(Unauthenticated):
        verifier.verify(token)


def test_only_verified_tokens_are_remembered(verifier, ec_key, other_ec_key):
    forged = sign(other_ec_key, "ES256", "ec-1", claims())
    with pytest.raises(Unauthenticated):
        verifier.verify(forged)
    assert verifier.remembered(forged) is None
    with pytest.raises(Unauthenticated):  # refused again, not remembered as a failure either
        verifier.verify(forged)
    assert verifier.remembered(sign(ec_key, "ES256", "ec-1", claims())) is None  # never seen


def test_reading_the_jwks_again_forgets_remembered_tokens(tmp_path, ec_key, other_ec_key):
    path = tmp_path / "jwks.json"
    write_jwks(path, public_jwk(ec_key, "old"))
    verifier = TokenVerifier(issuer=ISSUER, audience=AUDIENCE, jwks_file=path, refresh_interval=0)
    old_token = sign(ec_key, "ES256", "old", claims())
    assert verifier.verify(old_token).agency == "police:kent"

    write_jwks(path, public_jwk(other_ec_key, "new"))  # the old key retired
    verifier.verify(sign(other_ec_key, "ES256", "new", claims()))  # an unknown kid: re-read

    assert verifier.remembered(old_token) is None
    with pytest.raises(Unauthenticated):
        verifier.verify(old_token)


# --- JWKS from a file ----------------------------------------------------------------------


def write_jwks(path: Path, *keys: dict[str, Any]) -> None:
    path.write_text(json.dumps({"keys": list(keys)}), encoding="utf-8")


def test_jwks_file_rotated_on_disk_is_picked_up(tmp_path, ec_key, other_ec_key):
    path = tmp_path / "jwks.json"
    write_jwks(path, public_jwk(ec_key, "old"))
    verifier = TokenVerifier(issuer=ISSUER, audience=AUDIENCE, jwks_file=path, refresh_interval=0)
    new_token = sign(other_ec_key, "ES256", "new", claims())
    with pytest.raises(Unauthenticated):
        verifier.verify(new_token)

    write_jwks(path, public_jwk(other_ec_key, "new"))

    assert verifier.verify(new_token).agency == "police:kent"
    with pytest.raises(Unauthenticated):  # the retired key is gone after the refresh
        verifier.verify(sign(ec_key, "ES256", "old", claims()))


def test_jwks_file_is_not_reread_within_the_refresh_interval(tmp_path, ec_key, other_ec_key):
    path = tmp_path / "jwks.json"
    write_jwks(path, public_jwk(ec_key, "old"))
    verifier = TokenVerifier(issuer=ISSUER, audience=AUDIENCE, jwks_file=path)

    write_jwks(path, public_jwk(ec_key, "old"), public_jwk(other_ec_key, "new"))

    with pytest.raises(Unauthenticated):
        verifier.verify(sign(other_ec_key, "ES256", "new", claims()))


def test_a_broken_jwks_file_keeps_the_last_good_keys(tmp_path, ec_key):
    path = tmp_path / "jwks.json"
    write_jwks(path, public_jwk(ec_key, "good"))
    verifier = TokenVerifier(issuer=ISSUER, audience=AUDIENCE, jwks_file=path, refresh_interval=0)

    path.write_text("{not json", encoding="utf-8")
    with pytest.raises(Unauthenticated):
        verifier.verify(sign(ec_key, "ES256", "unknown", claims()))

    assert verifier.verify(sign(ec_key, "ES256", "good", claims())).sub


# --- JWKS from an URL ----------------------------------------------------------------------


class JwksServer:
    """A JWKS endpoint on 127.0.0.1 that counts requests and can be made to fail."""

    def __init__(self, document: dict[str, Any]) -> None:
        self.document = document
        self.status = 200
        self.requests = 0
        self._count_lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                with outer._count_lock:
                    outer.requests += 1
                body = json.dumps(outer.document).encode()
                self.send_response(outer.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/.well-known/jwks.json"
        self._thread = threading.Thread(
            target=self.httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )
        self._thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self._thread.join()


@pytest.fixture
def jwks_server(ec_key) -> Iterator[JwksServer]:
    server = JwksServer({"keys": [public_jwk(ec_key, "k1")]})
    yield server
    server.close()


def test_unknown_kids_cause_at_most_one_refresh_per_interval(jwks_server, ec_key, other_ec_key):
    interval = 0.4
    verifier = TokenVerifier(
        issuer=ISSUER, audience=AUDIENCE, jwks_url=jwks_server.url, refresh_interval=interval
    )
    assert jwks_server.requests == 1
    jwks_server.document = {"keys": [public_jwk(ec_key, "k1"), public_jwk(other_ec_key, "k2")]}
    time.sleep(interval + 0.05)

    tokens = [sign(ec_key, "ES256", f"stranger-{n}", claims()) for n in range(50)]
    outcomes: list[str] = []
    start = threading.Barrier(10)

    def attempt(batch: list[str]) -> None:
        start.wait()
        for token in batch:
            try:
                verifier.verify(token)
                outcomes.append("accepted")
            except Unauthenticated:
                outcomes.append("refused")

    began = time.monotonic()
    threads = [threading.Thread(target=attempt, args=(tokens[n::10],)) for n in range(10)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.monotonic() - began

    assert outcomes == ["refused"] * 50
    refreshes = jwks_server.requests - 1
    assert 1 <= refreshes <= 1 + int(elapsed / interval)
    # The one refresh brought k2 with it, for every thread.
    before = jwks_server.requests
    assert verifier.verify(sign(other_ec_key, "ES256", "k2", claims())).sub
    assert jwks_server.requests == before


def test_a_failing_jwks_url_keeps_the_last_good_keys(jwks_server, ec_key):
    verifier = TokenVerifier(
        issuer=ISSUER, audience=AUDIENCE, jwks_url=jwks_server.url, refresh_interval=0
    )
    jwks_server.status = 500

    with pytest.raises(Unauthenticated):
        verifier.verify(sign(ec_key, "ES256", "unknown", claims()))
    jwks_server.status = 200
    jwks_server.document = {"not": "a jwks"}
    with pytest.raises(Unauthenticated):
        verifier.verify(sign(ec_key, "ES256", "unknown", claims()))

    assert jwks_server.requests == 3
    assert verifier.verify(sign(ec_key, "ES256", "k1", claims())).agency == "police:kent"


def test_a_jwks_url_down_at_start_is_fetched_on_the_first_token(jwks_server, ec_key):
    jwks_server.status = 503
    verifier = TokenVerifier(
        issuer=ISSUER, audience=AUDIENCE, jwks_url=jwks_server.url, refresh_interval=0
    )
    jwks_server.status = 200

    assert verifier.verify(sign(ec_key, "ES256", "k1", claims())).agency == "police:kent"


# --- the development key -------------------------------------------------------------------


def test_dev_key_is_created_once_and_kept(tmp_path):
    data_dir = tmp_path / "data"

    first = ensure_dev_key(data_dir)
    second = ensure_dev_key(data_dir)

    assert first.kid == second.kid
    path = data_dir / "dev-signing-key.pem"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert [p.name for p in data_dir.iterdir()] == ["dev-signing-key.pem"]
    jwk = first.jwks()["keys"][0]
    assert jwk["kid"] == first.kid and jwk["alg"] == "ES256" and jwk["use"] == "sig"
    assert "d" not in jwk


def test_dev_key_created_concurrently_is_one_key(tmp_path):
    kids: list[str] = []

    def create() -> None:
        kids.append(ensure_dev_key(tmp_path).kid)

    threads = [threading.Thread(target=create) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert len(kids) == 8 and len(set(kids)) == 1
    assert [p.name for p in tmp_path.iterdir()] == ["dev-signing-key.pem"]


def test_dev_kid_is_the_rfc7638_thumbprint(tmp_path):
    key = ensure_dev_key(tmp_path)
    jwk = key.jwks()["keys"][0]
    canonical = json.dumps({n: jwk[n] for n in ("crv", "kty", "x", "y")}, separators=(",", ":"))

    assert key.kid == b64(hashlib.sha256(canonical.encode()).digest())


def test_minted_token_verifies_against_the_dev_jwks(tmp_path):
    key = ensure_dev_key(tmp_path)
    token = mint_token(
        key,
        agency="police:kent",
        scopes=["records:read", "records:write"],
        sub="dev",
        ttl=600,
        issuer="mappa-record-dev",
        audience="mappa-record",
        now=datetime.now(UTC),
    )
    verifier = TokenVerifier(issuer="mappa-record-dev", audience="mappa-record", jwks=key.jwks())

    assert verifier.verify(token) == Principal(
        sub="dev", agency="police:kent", scopes=frozenset({"records:read", "records:write"})
    )


def test_minted_token_expires_after_its_ttl(tmp_path):
    key = ensure_dev_key(tmp_path)
    verifier = TokenVerifier(issuer="dev", audience="api", jwks=key.jwks())
    long_ago = datetime(2020, 1, 1, tzinfo=UTC)
    token = mint_token(
        key,
        agency="yot:kent",
        scopes="feed:read",
        sub="dev",
        ttl=60,
        issuer="dev",
        audience="api",
        now=long_ago,
    )

    with pytest.raises(Unauthenticated):
        verifier.verify(token)


def test_mint_token_refuses_unknown_scopes_and_naive_times(tmp_path):
    key = ensure_dev_key(tmp_path)
    common = {"agency": "police:kent", "sub": "dev", "ttl": 60, "issuer": "i", "audience": "a"}

    with pytest.raises(ValueError, match="unknown scope"):
        mint_token(key, scopes="record:read", now=datetime.now(UTC), **common)
    with pytest.raises(ValueError, match="timezone"):
        mint_token(key, scopes="records:read", now=datetime(2025, 1, 1), **common)
