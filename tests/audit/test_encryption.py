"""Encryption at rest: with MAPPA_CIPHER_KEY set, payloads (and minutes) are stored
encrypted, the chain still verifies, and a wrong key stops the start with one line."""

import base64
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from service.bootstrap import StartupError, start
from service.runtime.settings import Settings
from tests.audit.conftest import pdf_bytes, separate_service
from tests.conftest import registration


def _key() -> str:
    return base64.b64encode(os.urandom(32)).decode()


@pytest.fixture(scope="module")
def encrypted(database_url, data_dir):
    """A second database, its service started with a cipher key and served over HTTP."""
    name = f"mappa_cipher_{os.getpid()}"
    with separate_service(database_url, data_dir, name, cipher_key=_key()) as parts:
        yield parts


def test_the_raw_table_holds_no_name_or_pnc_and_the_chain_verifies(encrypted, auth, auditor):
    settings, service, client = encrypted
    body = registration(name={"family": "Quennell-Ashworth", "given": ["Theodora"]})
    r = client.post("/v1/nominals", json=body, headers=auth("police:kent"))
    assert r.status_code == 201, r.text
    nominal_id = r.json()["nominal_id"]
    document = pdf_bytes(text="Quennell-Ashworth reviewed at level 2")
    r = client.post(
        f"/v1/nominals/{nominal_id}/minutes",
        headers=auth("police:kent"),
        files={"file": ("minutes.pdf", document, "application/pdf")},
        data={
            "event_id": str(uuid.uuid4()),
            "meeting_id": "M-1",
            "meeting_date": "2026-11-02",
            "level": "2",
        },
    )
    assert r.status_code == 201, r.text
    sha = r.json()["payload"]["document"]["sha256"]
    pnc = r_pnc = body["identifiers"]["pnc"]
    with service.db.connect() as conn:
        states = [
            bytes(row[0])
            for row in conn.execute(
                "SELECT state FROM nominals_events WHERE originator_id = %s", (nominal_id,)
            )
        ]
        stored_document = bytes(conn.execute("SELECT content FROM documents").fetchone()[0])
    assert len(states) == 2
    for raw in [*states, stored_document]:
        for secret in (
            b"Quennell-Ashworth",
            b"Theodora",
            pnc.encode(),
            r_pnc.split("/")[1].encode(),
        ):
            assert secret not in raw
    # The service reads them back in plain, and the chain over the plaintext holds.
    view = client.get(f"/v1/nominals/{nominal_id}", headers=auth("police:kent")).json()
    assert view["name"]["family"] == "Quennell-Ashworth"
    assert view["identifiers"]["pnc"] == pnc
    verdict = client.get(f"/v1/nominals/{nominal_id}/verify", headers=auditor()).json()
    assert verdict["intact"] is True and verdict["events_checked"] == 2
    got = client.get(f"/v1/nominals/{nominal_id}/documents/{sha}", headers=auth("police:kent"))
    assert got.content == document


def test_a_wrong_key_fails_start_up_with_one_clear_line(encrypted):
    settings, _, _ = encrypted
    wrong = Settings(
        database_url=settings.database_url,
        data_dir=settings.data_dir,
        cipher_key=_key(),
        pool_size=1,
        dev_tokens=True,
    )
    with pytest.raises(StartupError) as caught:
        start(wrong).close()
    message = str(caught.value)
    assert "\n" not in message and message.startswith("MAPPA_CIPHER_KEY:")

    cli = subprocess.run(
        [str(Path(sys.executable).parent / "mappa-record"), "migrate"],
        env=os.environ
        | {
            "DATABASE_URL": settings.database_url,
            "MAPPA_DATA_DIR": str(settings.data_dir),
            "MAPPA_CIPHER_KEY": _key(),
            "MAPPA_DEV_TOKENS": "true",
        },
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert cli.returncode == 2
    last = cli.stderr.strip().splitlines()[-1]
    assert last.startswith("mappa-record: MAPPA_CIPHER_KEY: the stored events cannot be read")
    assert "Traceback" not in cli.stderr


@pytest.mark.parametrize("size", [0, 1, 15, 16, 17, 4096, 100_000])
def test_the_two_ciphers_of_the_library_read_each_other(size):
    """The service encrypts with the library's `cryptography` cipher (ADR 023); records were
    encrypted before with its pycryptodome one. Each decrypts what the other wrote, and a
    changed byte is refused by both (GCM's tag)."""
    from eventsourcing.cipher import AESCipher as PycryptodomeCipher
    from eventsourcing.cryptography import AESCipher as CryptographyCipher
    from eventsourcing.utils import Environment

    env = Environment(env={"CIPHER_KEY": _key()})
    old, new = PycryptodomeCipher(env), CryptographyCipher(env)
    plaintext = os.urandom(size)
    for writer, reader in ((old, new), (new, old)):
        ciphertext = writer.encrypt(plaintext)
        assert len(ciphertext) == 12 + 16 + size  # nonce, tag, ciphertext
        assert reader.decrypt(ciphertext) == plaintext
        damaged = bytearray(ciphertext)
        damaged[-1 if size else 20] ^= 1
        with pytest.raises(ValueError):
            reader.decrypt(bytes(damaged))
