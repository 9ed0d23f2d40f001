"""The transparency log (docs/adr/020): signed checkpoints, proofs anyone can check, and the
rewrites a database superuser could make that only a kept checkpoint catches.

Each test that tampers has a database of its own: it rewrites history for good.
"""

from __future__ import annotations

import base64
import dataclasses
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from uuid import UUID

import httpx
import psycopg
import pytest
from sqlalchemy.engine import make_url

from domain.chain import chain_hash
from service import merkle
from service.auth import Principal
from service.bootstrap import Service, start
from service.integrity import verify_nominal
from service.records import NewEvent
from service.runtime.settings import Settings
from service.signed_note import Verifier, open_checkpoint
from service.store.eventstore import read_stream
from tests.audit.conftest import entry
from tests.conftest import AUDIENCE, ISSUER, registration

POLICE = Principal(
    sub="test-police", agency="police:kent", scopes=frozenset({"records:read", "records:write"})
)
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def own_log(service, database_url: str, tmp_path: Path) -> Iterator[Service]:
    """A service on a database of its own (`service` made the server ready)."""
    url = make_url(database_url)
    name = f"{url.database}_tlog_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    own_url = url.set(database=name).render_as_string(hide_password=False)
    settings = Settings(
        database_url=own_url,
        data_dir=tmp_path,
        jwt_issuer=ISSUER,
        jwt_audience=AUDIENCE,
        checkpoint_seconds=0,
        run_projections=False,
        dev_tokens=True,
    )
    own = start(settings)
    yield own
    own.close()
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE "{name}" WITH (FORCE)')


def _record(svc: Service, entries: int) -> UUID:
    body = registration()
    event_id = uuid.UUID(body.pop("event_id"))
    nominal_id = UUID(svc.records.register(POLICE, event_id, None, body).nominal_id)
    for i in range(entries):
        new = NewEvent(uuid.uuid4(), "EntryRecorded", "2026-11-20", entry(subject=f"Entry {i}"))
        svc.records.post_event(POLICE, nominal_id, new, None)
    return nominal_id


def _all_events(svc: Service) -> list[tuple[int, str]]:
    """(position, chain hash) of every stored event, in position order, as read now."""
    with svc.db.connect() as conn:
        ids = [r[0] for r in conn.execute("SELECT DISTINCT originator_id FROM nominals_events")]
    events = [(p, e.hash) for n in ids for p, e in read_stream(svc.ledger.app, n)]
    return sorted(events)


def _root(hashes: list[str]) -> bytes:
    tree = merkle.CompactRange()
    for h in hashes:
        tree.append(merkle.leaf_hash(bytes.fromhex(h)))
    return tree.root()


def test_checkpoints_sign_the_log_and_its_proofs_verify_against_them(own_log):
    svc, verifier = own_log, own_log.transparency.signer.verifier
    first = _record(svc, 9)
    kept = open_checkpoint(svc.transparency.checkpoint(), verifier)
    _record(svc, 6)
    svc.records.post_event(
        POLICE, first, NewEvent(uuid.uuid4(), "EntryRecorded", "2026-11-21", entry()), None
    )
    latest = open_checkpoint(svc.transparency.checkpoint(), verifier)
    assert svc.transparency.checkpoint() is None  # nothing new: nothing signed

    events = _all_events(svc)
    assert (kept.size, latest.size) == (10, 18) == (10, len(events))
    # The roots are the RFC 6962 trees of the events' own chain hashes, in position order.
    assert kept.root == _root([h for _, h in events[:10]])
    assert latest.root == _root([h for _, h in events])
    with svc.db.connect() as conn:
        ids = dict(conn.execute("SELECT e.notification_id, i.event_id FROM nominals_events e"
                                " JOIN event_index i ON i.nominal_id = e.originator_id"
                                " AND i.version = e.originator_version").fetchall())  # fmt: skip
    for index, (position, event_hash) in enumerate(events):
        proof = svc.transparency.inclusion(ids[position], None)
        assert (proof["leaf_index"], proof["position"], proof["tree_size"]) == (index, position, 18)
        path = [base64.b64decode(p) for p in proof["inclusion_path"]]
        leaf = merkle.leaf_hash(bytes.fromhex(event_hash))
        assert merkle.verify_inclusion(index, 18, leaf, path, latest.root)
    consistency = svc.transparency.consistency(kept.size, None)
    path = [base64.b64decode(p) for p in consistency["consistency_path"]]
    assert merkle.verify_consistency(10, 18, kept.root, latest.root, path)


def _rewrite(svc: Service, nominal_id: UUID, version: int) -> None:
    """What a superuser can do without the service: change one event's payload and re-chain
    the stream from there, rows and hashes consistent, the event index untouched."""
    events = [e for _, e in read_stream(svc.ledger.app, nominal_id)]
    prev = events[version - 2].hash
    rewritten = []
    for event in events[version - 1 :]:
        payload = event.payload
        if event.originator_version == version:
            payload = payload | {"body": "Nothing of note."}
        envelope = event.envelope() | {"payload": payload, "prev_hash": prev}
        envelope.pop("hash")
        new = dataclasses.replace(event, payload=payload, prev_hash=prev)
        new = dataclasses.replace(new, hash=chain_hash(prev, envelope))
        rewritten.append(svc.ledger.app.mapper.to_stored_event(new))
        prev = new.hash
    with svc.db.connect() as conn:
        conn.execute("SET session_replication_role = replica")
        for stored in rewritten:
            conn.execute(
                "UPDATE nominals_events SET state = %s"
                " WHERE originator_id = %s AND originator_version = %s",
                (stored.state, stored.originator_id, stored.originator_version),
            )
        conn.commit()


def _position(svc: Service, nominal_id: UUID, version: int) -> int:
    return next(
        p for p, e in read_stream(svc.ledger.app, nominal_id) if e.originator_version == version
    )


def test_a_stream_rewritten_with_its_index_is_caught_against_a_kept_checkpoint(own_log):
    svc, verifier = own_log, own_log.transparency.signer.verifier
    _record(svc, 3)
    target = _record(svc, 5)
    _record(svc, 2)
    kept = svc.transparency.checkpoint()
    position = _position(svc, target, 3)

    _rewrite(svc, target, 3)

    assert verify_nominal(svc.ledger.app, target).intact  # the chain alone cannot tell
    found = svc.transparency.verify_extends(kept, verifier)
    assert not found.intact
    assert found.first_bad_position == position
    assert found.first_bad_leaf == [p for p, _ in _all_events(svc)].index(position)
    assert "rewritten" in found.reason


def test_a_rewrite_of_the_tree_s_leaves_too_is_placed_between_two_checkpoints(own_log):
    svc, verifier = own_log, own_log.transparency.signer.verifier
    _record(svc, 4)
    first = svc.transparency.checkpoint()  # 5 events
    target = _record(svc, 4)
    svc.transparency.checkpoint()  # 10
    _record(svc, 4)
    latest = svc.transparency.checkpoint()  # 15
    _rewrite(svc, target, 2)
    with svc.db.connect() as conn:  # the leaves made to match the rewritten events
        conn.execute("SET session_replication_role = replica")
        for index, (_, h) in enumerate(_all_events(svc)):
            conn.execute(
                "UPDATE log_nodes SET hash = %s WHERE level = 0 AND idx = %s",
                (merkle.leaf_hash(bytes.fromhex(h)), index),
            )
        conn.commit()

    assert svc.transparency.verify_extends(first, verifier).intact  # before the rewrite
    found = svc.transparency.verify_extends(latest, verifier)
    assert not found.intact
    assert found.first_bad_leaf == 5  # the last checkpoint that holds: 5 events
    assert "within leaves 5 to 9" in found.reason


def test_the_last_events_deleted_are_caught_by_verify_against(own_log, tmp_path):
    svc, verifier = own_log, own_log.transparency.signer.verifier
    _record(svc, 6)
    _record(svc, 2)
    kept = svc.transparency.checkpoint()  # 10 events
    with svc.db.connect() as conn:
        conn.execute("SET session_replication_role = replica")
        last = conn.execute(
            "SELECT originator_id, originator_version FROM nominals_events"
            " ORDER BY notification_id DESC LIMIT 3"
        ).fetchall()
        for nominal_id, version in last:
            conn.execute(
                "DELETE FROM nominals_events WHERE originator_id = %s AND originator_version = %s",
                (nominal_id, version),
            )
            conn.execute(
                "DELETE FROM event_index WHERE nominal_id = %s AND version = %s",
                (nominal_id, version),
            )
        conn.commit()

    found = svc.transparency.verify_extends(kept, verifier)
    assert (found.intact, found.log_size, found.first_bad_leaf) == (False, 7, 7)

    (tmp_path / "kept.txt").write_text(kept)
    (tmp_path / "key.pub").write_text(f"{verifier}\n")
    env = os.environ | {
        "DATABASE_URL": svc.settings.database_url,
        "MAPPA_DATA_DIR": str(tmp_path),
        "MAPPA_JWT_ISSUER": ISSUER,
        "MAPPA_DEV_TOKENS": "true",
    }
    args = ["verify", "--against", str(tmp_path / "kept.txt"), "--public-key"]
    cli = subprocess.run(
        [Path(sys.executable).parent / "mappa-record", *args, str(tmp_path / "key.pub")],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert cli.returncode == 1, cli.stdout + cli.stderr
    assert "does NOT extend the checkpoint of 10 events" in cli.stdout
    assert "the log holds 7 events" in cli.stdout


def test_the_log_routes_answer_auditors_and_witnesses_and_no_one_else(
    client, auth, service, register
):
    register("police:kent")
    service.transparency.checkpoint()
    auditor = auth("inspectorate:hmi-probation", "audit:read")
    witness = auth("police:kent", "feed:read")

    key = client.get("/v1/log/public-key", headers=witness)
    assert key.status_code == 200
    verifier = Verifier.parse(key.text)
    note = client.get("/v1/log/checkpoint", headers=auditor)
    assert note.status_code == 200 and note.headers["content-type"].startswith("text/plain")
    checkpoint = open_checkpoint(note.text, verifier)

    with service.db.connect() as conn:
        event_id = conn.execute(
            "SELECT i.event_id FROM log_leaves l JOIN nominals_events e"
            " ON e.notification_id = l.position JOIN event_index i"
            " ON i.nominal_id = e.originator_id AND i.version = e.originator_version"
            " WHERE l.idx = 0"
        ).fetchone()[0]
    proof = client.get(
        "/v1/log/proof/inclusion", params={"event_id": str(event_id)}, headers=witness
    )
    assert proof.status_code == 200, proof.text
    body = proof.json()
    assert body["tree_size"] == checkpoint.size and body["leaf_index"] == 0
    assert merkle.verify_inclusion(
        0,
        checkpoint.size,
        base64.b64decode(body["leaf_hash"]),
        [base64.b64decode(p) for p in body["inclusion_path"]],
        checkpoint.root,
    )
    consistency = client.get("/v1/log/proof/consistency", params={"from": 1}, headers=auditor)
    assert consistency.status_code == 200 and consistency.json()["to"] == checkpoint.size
    verified = client.post(
        "/v1/log/verify", content=note.text, headers=auditor | {"Content-Type": "text/plain"}
    )
    assert verified.status_code == 200, verified.text
    assert verified.json()["intact"] is True

    refusals = [
        client.get("/v1/log/checkpoint", headers=auth("police:kent", "records:read")),
        client.get("/v1/log/checkpoint"),
        client.post("/v1/log/verify", content=note.text, headers=witness),
        client.get(
            "/v1/log/proof/inclusion", params={"event_id": str(uuid.uuid4())}, headers=auditor
        ),
        client.get("/v1/log/proof/consistency", params={"from": 10**9}, headers=auditor),
        client.post(
            "/v1/log/verify",
            content=note.text.replace("\n\n", "\n\n\u2014 x y\n"),
            headers=auditor | {"Content-Type": "text/plain"},
        ),
    ]
    assert [r.status_code for r in refusals] == [403, 401, 403, 404, 404, 400]
    assert all(r.headers["content-type"] == "application/problem+json" for r in refusals)


def _witness_over_http(svc: Service, tmp_path: Path) -> tuple:
    """The example witness, the service served over HTTP, and an auditor's headers for it."""
    import importlib.util
    from datetime import UTC, datetime

    from api.app import create_app
    from service.devkeys import ensure_dev_key, mint_token
    from tests.conftest import served

    spec = importlib.util.spec_from_file_location("witness", ROOT / "examples" / "witness.py")
    assert spec is not None and spec.loader is not None
    witness = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(witness)
    token = mint_token(
        ensure_dev_key(tmp_path),
        agency="inspectorate:hmi-probation",
        scopes="audit:read",
        sub="witness",
        ttl=600,
        issuer=ISSUER,
        audience=AUDIENCE,
        now=datetime.now(UTC),
    )
    return witness, served(create_app(svc)), {"Authorization": f"Bearer {token}"}


def test_a_witness_follows_twenty_checkpoints_and_raises_the_alarm_on_a_fork(own_log, tmp_path):
    svc = own_log
    witness, server, headers = _witness_over_http(svc, tmp_path)
    nominals = [_record(svc, 0) for _ in range(10)]
    with server as url, httpx.Client(base_url=url, headers=headers, timeout=30) as client:
        watcher = witness.Witness(client, svc.transparency.signer.verifier)
        sizes = []
        for round_ in range(20):
            for i in range(50):  # 1,000 appends in all, across ten records
                new = NewEvent(uuid.uuid4(), "EntryRecorded", "2026-11-20", entry(f"{round_}.{i}"))
                svc.records.post_event(POLICE, nominals[i % 10], new, None)
            assert svc.transparency.checkpoint() is not None
            sizes.append(watcher.poll().size)
        assert sizes == [10 + 50 * (n + 1) for n in range(20)]

        # A superuser rewrites an early event and rebuilds the tree to match; the service
        # signs what its tables now say. The witness's kept checkpoint is not extended.
        _rewrite(svc, nominals[3], 2)
        with svc.db.connect() as conn:
            conn.execute("SET session_replication_role = replica")
            conn.execute("DELETE FROM log_nodes")
            conn.execute("DELETE FROM log_leaves")
            conn.commit()
        svc.records.post_event(
            POLICE,
            nominals[0],
            NewEvent(uuid.uuid4(), "EntryRecorded", "2026-11-20", entry()),
            None,
        )
        assert svc.transparency.checkpoint() is not None
        with pytest.raises(witness.Fork, match="does not extend"):
            watcher.poll()
