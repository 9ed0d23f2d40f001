"""Issue 16, point 5: production never trusts the development key, a mistyped MAPPA_*
variable stops the start, and secrets may come from files
(docs/design.md#authentication-and-access, #running-it)."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

from service.auth import Unauthenticated
from service.bootstrap import StartupError, build_verifier, start
from service.devkeys import KEY_FILE, ensure_dev_key, mint_token
from service.runtime.settings import Settings, SettingsError, load_settings
from tests.conftest import AUDIENCE, ISSUER

CLI = [sys.executable, "-m", "service.cli"]


def _cli(args: list[str], env: dict[str, str], data_dir: Path) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if not k.upper().startswith("MAPPA_")}
    clean.pop("DATABASE_URL", None)
    clean.update({"MAPPA_DATA_DIR": str(data_dir)} | env)
    return subprocess.run(CLI + args, env=clean, capture_output=True, text=True, timeout=120)


def _one_line(result: subprocess.CompletedProcess) -> str:
    assert result.returncode == 2, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.startswith("mappa-record:")]
    assert len(lines) == 1, result.stderr
    return lines[0]


def _dev_token(data_dir: Path, agency: str = "police:kent") -> str:
    return mint_token(
        ensure_dev_key(data_dir),
        agency=agency,
        scopes="records:read",
        sub="mallory",
        ttl=600,
        issuer=ISSUER,
        audience=AUDIENCE,
        now=datetime.now(UTC),
    )


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """The process environment without any MAPPA_* variable or DATABASE_URL."""
    for name in list(os.environ):
        if name.upper().startswith("MAPPA_") or name == "DATABASE_URL":
            monkeypatch.delenv(name)
    return monkeypatch


# -- the development key -----------------------------------------------------------------


def test_with_database_url_and_no_jwks_the_cli_stops_with_one_line(database_url, tmp_path):
    line = _one_line(_cli(["migrate"], {"DATABASE_URL": database_url}, tmp_path))
    assert "MAPPA_JWKS_URL" in line and "MAPPA_DEV_TOKENS" in line
    # Refused before anything was made or touched: no development key was written.
    assert not (tmp_path / KEY_FILE).exists()


def test_with_database_url_and_no_jwks_start_refuses_and_trusts_nothing(database_url, tmp_path):
    settings = Settings(
        database_url=database_url, data_dir=tmp_path, jwt_issuer=ISSUER, jwt_audience=AUDIENCE
    )
    assert not settings.trusts_dev_key
    with pytest.raises(StartupError, match="MAPPA_JWKS_URL or MAPPA_JWKS_FILE") as caught:
        start(settings)
    assert "\n" not in str(caught.value)
    with pytest.raises(SettingsError):
        build_verifier(settings)
    assert not (tmp_path / KEY_FILE).exists()


def test_the_embedded_database_trusts_the_development_key(tmp_path):
    settings = Settings(data_dir=tmp_path, jwt_issuer=ISSUER, jwt_audience=AUDIENCE)
    assert settings.trusts_dev_key
    principal = build_verifier(settings).verify(_dev_token(tmp_path))
    assert principal.agency == "police:kent"


def test_dev_tokens_true_trusts_the_development_key_on_database_url_and_says_so(
    database_url, tmp_path, caplog
):
    settings = Settings(
        database_url=database_url,
        data_dir=tmp_path,
        jwt_issuer=ISSUER,
        jwt_audience=AUDIENCE,
        dev_tokens=True,
    )
    assert settings.trusts_dev_key
    with caplog.at_level("WARNING", logger="service.bootstrap"):
        verifier = build_verifier(settings)
    assert verifier.verify(_dev_token(tmp_path)).agency == "police:kent"
    assert any("development key" in r.getMessage() for r in caplog.records)


def _jwks_file(tmp_path: Path) -> tuple[Path, rsa.RSAPrivateKey]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    jwk = RSAAlgorithm.to_jwk(key.public_key(), as_dict=True) | {"kid": "idp-1", "alg": "RS256"}
    path = tmp_path / "jwks.json"
    path.write_text(json.dumps({"keys": [jwk]}))
    return path, key


def test_with_a_jwks_the_development_key_is_never_trusted(tmp_path):
    jwks, idp_key = _jwks_file(tmp_path)
    settings = Settings(data_dir=tmp_path, jwt_issuer=ISSUER, jwt_audience=AUDIENCE, jwks_file=jwks)
    assert not settings.trusts_dev_key
    verifier = build_verifier(settings)
    with pytest.raises(Unauthenticated):
        verifier.verify(_dev_token(tmp_path))
    now = int(datetime.now(UTC).timestamp())
    real = jwt.encode(
        {
            "iss": ISSUER,
            "aud": AUDIENCE,
            "sub": "officer-1",
            "agency": "police:kent",
            "scope": "records:read",
            "iat": now,
            "exp": now + 600,
        },
        idp_key,
        algorithm="RS256",
        headers={"kid": "idp-1"},
    )
    assert verifier.verify(real).sub == "officer-1"


def test_dev_tokens_beside_a_jwks_is_refused_as_a_contradiction(tmp_path, clean_env):
    jwks, _ = _jwks_file(tmp_path)
    clean_env.setenv("MAPPA_JWKS_FILE", str(jwks))
    clean_env.setenv("MAPPA_DEV_TOKENS", "true")
    with pytest.raises(SettingsError, match="^MAPPA_DEV_TOKENS: ") as caught:
        load_settings()
    assert "MAPPA_JWKS_FILE" in str(caught.value)


def test_the_token_command_warns_when_the_service_would_not_trust_it(database_url, tmp_path):
    result = _cli(
        ["token", "--agency", "police:kent", "--scope", "records:read"],
        {"DATABASE_URL": database_url},
        tmp_path,
    )
    assert result.returncode == 0, result.stderr
    assert "MAPPA_DEV_TOKENS" in result.stderr


# -- unknown MAPPA_* variables -----------------------------------------------------------


@pytest.mark.parametrize(
    ("typo", "meant"),
    [
        ("MAPPA_JWKS_URI", "MAPPA_JWKS_URL"),
        ("MAPPA_JWKS_FIEL", "MAPPA_JWKS_FILE"),
        ("MAPPA_CYPHER_KEY", "MAPPA_CIPHER_KEY"),
        ("MAPPA_DEV_TOKEN", "MAPPA_DEV_TOKENS"),
        ("MAPPA_CIPHER_KEY_FIEL", "MAPPA_CIPHER_KEY_FILE"),
        ("mappa_jwt_audiance", "MAPPA_JWT_AUDIENCE"),
    ],
)
def test_an_unknown_mappa_variable_stops_the_start_naming_the_nearest(typo, meant, clean_env):
    clean_env.setenv(typo, "https://idp.example/jwks.json")
    with pytest.raises(SettingsError) as caught:
        load_settings()
    message = str(caught.value)
    assert message.startswith(f"{typo}: ") and f"did you mean {meant}?" in message
    assert "\n" not in message


def test_the_typo_of_the_issue_stops_the_cli_with_one_line(tmp_path):
    line = _one_line(_cli(["migrate"], {"MAPPA_JWKS_URI": "https://idp.example/jwks"}, tmp_path))
    assert "MAPPA_JWKS_URI" in line and "MAPPA_JWKS_URL" in line
    assert not (tmp_path / "pg").exists()  # stopped before the embedded server was made


def test_every_documented_variable_is_known(clean_env, tmp_path):
    """The README's and deploy/README.md's settings are all read (none would be refused)."""
    import re

    root = Path(__file__).resolve().parents[2]
    documented = set()
    for doc in ("README.md", "deploy/README.md"):
        documented |= set(re.findall(r"`(MAPPA_[A-Z_]+)", (root / doc).read_text()))
    assert "MAPPA_DEV_TOKENS" in documented and "MAPPA_CIPHER_KEY_FILE" in documented
    from service.runtime.settings import known_variables

    assert documented <= known_variables()


# -- secrets from files ------------------------------------------------------------------


def _key() -> str:
    return base64.b64encode(os.urandom(32)).decode()


def test_the_cipher_key_may_come_from_a_file(clean_env, tmp_path):
    key = _key()
    path = tmp_path / "cipher-key"
    path.write_text(key + "\n")  # as `echo` or a secret store writes it
    clean_env.setenv("MAPPA_CIPHER_KEY_FILE", str(path))
    assert load_settings().cipher_key == key


def test_database_url_may_come_from_a_file(clean_env, tmp_path, database_url):
    path = tmp_path / "database-url"
    path.write_text(database_url + "\n")
    clean_env.setenv("DATABASE_URL_FILE", str(path))
    assert load_settings().database_url == database_url


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"MAPPA_CIPHER_KEY_FILE": "/no/such/secret"}, "MAPPA_CIPHER_KEY_FILE: cannot read"),
        ({"MAPPA_CIPHER_KEY_FILE": "{bad}"}, "MAPPA_CIPHER_KEY_FILE: must be base64"),
        ({"MAPPA_CIPHER_KEY_FILE": "{good}", "MAPPA_CIPHER_KEY": "{key}"}, "set one"),
        ({"DATABASE_URL_FILE": "{bad}"}, "DATABASE_URL_FILE: must be a libpq URL"),
    ],
)
def test_a_wrong_secret_file_stops_the_start_with_one_line(env, named, clean_env, tmp_path):
    key = _key()
    (tmp_path / "good").write_text(key)
    (tmp_path / "bad").write_text("not a key, and not a URL either")
    for name, value in env.items():
        value = value.format(good=tmp_path / "good", bad=tmp_path / "bad", key=key)
        clean_env.setenv(name, value)
    with pytest.raises(SettingsError) as caught:
        load_settings()
    message = str(caught.value)
    assert named in message and "\n" not in message
    assert key not in message and "not a key" not in message  # a secret is never echoed


def test_a_cipher_key_file_reaches_the_event_store(tmp_path, database_url, clean_env):
    import psycopg
    from sqlalchemy.engine import make_url

    name = f"mappa_keyfile_{os.getpid()}"
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    url = make_url(database_url).set(database=name).render_as_string(hide_password=False)
    key = _key()
    (tmp_path / "cipher-key").write_text(key + "\n")
    for name_, value in {
        "DATABASE_URL": url,
        "MAPPA_DATA_DIR": str(tmp_path),
        "MAPPA_DEV_TOKENS": "true",
        "MAPPA_CIPHER_KEY_FILE": str(tmp_path / "cipher-key"),
        "MAPPA_POOL_SIZE": "1",
    }.items():
        clean_env.setenv(name_, value)
    service = start(load_settings())
    try:
        assert service.ledger.app.env.get("CIPHER_KEY") == key
    finally:
        service.close()


def test_a_deployment_without_a_checkpoint_key_stops_with_one_line(database_url, tmp_path):
    # The checkpoint key is the log's word to outsiders: a deployment brings its own, as it
    # brings its own JWKS; a key made in the data directory is for development only.
    jwks, _ = _jwks_file(tmp_path)
    common = {"database_url": database_url, "data_dir": tmp_path, "jwks_file": jwks}
    settings = Settings(jwt_issuer=ISSUER, jwt_audience=AUDIENCE, **common)
    with pytest.raises(StartupError, match="^MAPPA_CHECKPOINT_KEY_FILE is not set"):
        start(settings)
    assert not (tmp_path / "checkpoint-key.pem").exists()

    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat

    key = tmp_path / "log-key.pem"
    key.write_bytes(
        Ed25519PrivateKey.generate().private_bytes(
            Encoding.PEM, PrivateFormat.PKCS8, NoEncryption()
        )
    )
    service = start(settings.model_copy(update={"checkpoint_key_file": key}))
    try:
        assert service.transparency.signer.verifier.name == settings.log_origin
    finally:
        service.close()
