"""A wrong setting stops the start with one clear line, not a traceback
(docs/design.md#running-it)."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

CLI = [sys.executable, "-m", "service.cli"]


def run_cli(args: list[str], env: dict[str, str], tmp_path: Path) -> subprocess.CompletedProcess:
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("MAPPA_")}
    full_env.pop("DATABASE_URL", None)
    full_env.update({"MAPPA_DATA_DIR": str(tmp_path)} | env)
    return subprocess.run(CLI + args, env=full_env, capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"MAPPA_CIPHER_KEY": "not-a-key"}, "MAPPA_CIPHER_KEY"),
        ({"DATABASE_URL": "mysql://nobody@localhost/db"}, "DATABASE_URL"),
        (
            {"DATABASE_URL": "postgresql://nobody@127.0.0.1:1/db", "MAPPA_DEV_TOKENS": "true"},
            "cannot connect to the database",
        ),
        ({"MAPPA_JWKS_FILE": "/no/such/jwks.json"}, "MAPPA_JWKS_FILE"),
        ({"MAPPA_JWT_ALGORITHMS": "HS256"}, "MAPPA_JWT_ALGORITHMS"),
        ({"MAPPA_POOL_SIZE": "lots"}, "MAPPA_POOL_SIZE"),
    ],
)
def test_a_wrong_setting_stops_the_start_with_one_line(env, named, tmp_path):
    result = run_cli(["migrate"], env, tmp_path)
    assert result.returncode == 2
    lines = [line for line in result.stderr.splitlines() if line.startswith("mappa-record:")]
    assert len(lines) == 1 and named in lines[0]
    assert "Traceback" not in result.stderr


def test_a_development_token_names_its_agency_and_scopes(tmp_path, database_url):
    import jwt

    result = run_cli(
        ["token", "--agency", "police:kent", "--scope", "records:read records:write"],
        {"DATABASE_URL": database_url, "MAPPA_DEV_TOKENS": "true"},
        tmp_path,
    )
    assert result.returncode == 0, result.stderr
    claims = jwt.decode(result.stdout.strip(), options={"verify_signature": False})
    assert claims["agency"] == "police:kent"
    assert claims["scope"].split() == ["records:read", "records:write"]
