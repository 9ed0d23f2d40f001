"""The consultation log (DPA 2018 s. 62): every read of a record and every refused attempt
leaves exactly one row; auditors read the log, and that read is logged too."""

import uuid
from datetime import UTC, datetime

import pytest

from tests.audit.conftest import REASON, pdf_bytes


def _rows(db, nominal_id):
    with db.connect() as conn:
        return conn.execute(
            "SELECT sub, agency, route, action, outcome, justification FROM consultation_log"
            " WHERE nominal_id = %s ORDER BY id",
            (nominal_id,),
        ).fetchall()


def test_every_read_route_logs_exactly_one_row_per_read(
    client, auth, auditor, register, upload, db
):
    nominal_id = register("police:kent")
    sha = upload(nominal_id, pdf_bytes(text="walk")).json()["payload"]["document"]["sha256"]
    pnc = client.get(f"/v1/nominals/{nominal_id}/history", headers=auth("police:kent")).json()[
        "events"
    ][0]["payload"]["identifiers"]["pnc"]
    partner = auth("police:kent")
    now = datetime.now(UTC).isoformat()
    reads = [
        ("GET /v1/nominals/{id}", f"/v1/nominals/{nominal_id}", {}, partner, None),
        ("GET /v1/nominals", "/v1/nominals", {"pnc": pnc}, partner, None),
        ("GET /v1/nominals/{id}/history", f"/v1/nominals/{nominal_id}/history", {}, partner, None),
        (
            "GET /v1/nominals/{id}/state",
            f"/v1/nominals/{nominal_id}/state",
            {"as_of": now},
            partner,
            None,
        ),
        (
            "GET /v1/nominals/{id}/documents/{sha256}",
            f"/v1/nominals/{nominal_id}/documents/{sha}",
            {},
            partner,
            None,
        ),
        (
            "GET /v1/nominals/{id}/verify",
            f"/v1/nominals/{nominal_id}/verify",
            {},
            auditor(),
            REASON,
        ),
        (
            "GET /v1/nominals/{id}/access-log",
            f"/v1/nominals/{nominal_id}/access-log",
            {},
            auditor(),
            REASON,
        ),
    ]
    for route, url, params, headers, why in reads:
        before = _rows(db, nominal_id)
        r = client.get(url, params=params, headers=headers)
        assert r.status_code == 200, (route, r.text)
        after = _rows(db, nominal_id)
        assert len(after) == len(before) + 1, route
        sub, agency, logged_route, _action, outcome, justification = after[-1]
        assert (logged_route, outcome, justification) == (route, "allowed", why)
        expected_agency = "police:kent" if why is None else "inspectorate:hmi-probation"
        assert (sub, agency) == (f"test-{expected_agency}", expected_agency)


@pytest.mark.parametrize(
    "path", ["", "/history", "/state?as_of=2100-01-01T00:00:00Z"], ids=["view", "history", "state"]
)
def test_a_refused_attempt_on_a_real_record_is_logged_once(client, auth, register, db, path):
    nominal_id = register("police:kent")
    before = _rows(db, nominal_id)
    r = client.get(f"/v1/nominals/{nominal_id}{path}", headers=auth("police:devon-cornwall"))
    assert r.status_code == 404
    after = _rows(db, nominal_id)
    assert len(after) == len(before) + 1
    assert after[-1][1] == "police:devon-cornwall" and after[-1][4] == "refused"


def test_auditors_read_the_log_with_its_own_read_last(client, auth, auditor, register):
    nominal_id = register("police:kent")
    client.get(f"/v1/nominals/{nominal_id}", headers=auth("police:kent"))
    client.get(f"/v1/nominals/{nominal_id}", headers=auth("police:devon-cornwall"))
    r = client.get(f"/v1/nominals/{nominal_id}/access-log", headers=auditor())
    assert r.status_code == 200, r.text
    entries = r.json()["entries"]
    assert [(e["agency"], e["outcome"]) for e in entries] == [
        ("police:kent", "allowed"),
        ("police:devon-cornwall", "refused"),
        ("inspectorate:hmi-probation", "allowed"),
    ]
    assert entries[-1]["justification"] == REASON
    assert entries[-1]["route"] == "GET /v1/nominals/{id}/access-log"
    assert all(e["at"].endswith("Z") for e in entries)


def test_the_log_is_for_auditors_who_say_why(client, auth, auditor, register):
    nominal_id = register("police:kent")
    url = f"/v1/nominals/{nominal_id}/access-log"
    assert client.get(url, headers=auth("police:kent")).status_code == 403
    assert client.get(url, headers=auditor(None)).status_code == 400
    assert client.get(url, headers=auditor("short")).status_code == 400


def test_the_log_pages_by_id(client, auth, auditor, register):
    nominal_id = register("police:kent")
    for _ in range(3):
        client.get(f"/v1/nominals/{nominal_id}", headers=auth("police:kent"))
    first = client.get(
        f"/v1/nominals/{nominal_id}/access-log", params={"limit": 2}, headers=auditor()
    ).json()
    assert len(first["entries"]) == 2 and first["next_after_id"] == first["entries"][-1]["id"]
    rest = client.get(
        f"/v1/nominals/{nominal_id}/access-log",
        params={"after_id": first["next_after_id"]},
        headers=auditor(),
    ).json()
    assert [e["id"] for e in rest["entries"]][0] > first["next_after_id"]


def test_a_disclosure_records_its_recipient(client, auth, register, post):
    nominal_id = register("police:kent")
    body = {"decision": "disclose", "rationale": "Risk to new partner", "decided_on": "2026-11-20"}
    r = client.post(
        f"/v1/nominals/{nominal_id}/events",
        json={
            "event_id": str(uuid.uuid4()),
            "type": "DisclosureDecisionRecorded",
            "occurred_at": "2026-11-20",
            "payload": body,
        },
        headers=auth("police:kent"),
    )
    assert r.status_code == 422
    post(
        nominal_id, "DisclosureDecisionRecorded", body | {"recipient": "New partner of the nominal"}
    )
    view = client.get(f"/v1/nominals/{nominal_id}", headers=auth("police:kent")).json()
    assert view["disclosure_decisions"][0]["recipient"] == "New partner of the nominal"


def test_concurrent_reads_are_each_logged_before_their_data_is_handed_over(
    base_url, token, register, db
):
    """Reads arriving together share the log's transactions; each read returns only once its
    own row is committed (visible to another connection), and no row is lost or doubled."""
    import threading

    import httpx

    nominal_id = register("police:kent")
    readers, reads_each = 12, 6
    failures: list[str] = []

    def read(n: int) -> None:
        sub = f"reader-{n}-{uuid.uuid4().hex[:6]}"
        headers = {"Authorization": f"Bearer {token('police:kent', 'records:read', sub=sub)}"}
        with httpx.Client(base_url=base_url, timeout=30) as c, db.connect() as conn:
            for done in range(1, reads_each + 1):
                if c.get(f"/v1/nominals/{nominal_id}", headers=headers).status_code != 200:
                    failures.append(f"{sub}: read {done} refused")
                    return
                (logged,) = conn.execute(
                    "SELECT count(*) FROM consultation_log WHERE nominal_id = %s AND sub = %s",
                    (nominal_id, sub),
                ).fetchone()
                if logged != done:
                    failures.append(f"{sub}: {logged} rows after {done} reads")

    threads = [threading.Thread(target=read, args=(n,)) for n in range(readers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    assert failures == []
    assert len(_rows(db, nominal_id)) == readers * reads_each


@pytest.mark.parametrize(
    "path",
    ["", "/history", "/state?as_of=2100-01-01T00:00:00Z", "/verify", "/access-log"],
    ids=["view", "history", "state", "verify", "access-log"],
)
def test_an_overlong_justification_is_refused_before_anything_is_read_or_logged(
    client, auditor, register, db, path
):
    nominal_id = register("police:kent")
    before = _rows(db, nominal_id)
    r = client.get(f"/v1/nominals/{nominal_id}{path}", headers=auditor("why " * 250 + "?"))
    assert r.status_code == 422, r.text
    assert r.headers["content-type"] == "application/problem+json"
    assert "Justification" in r.text
    assert _rows(db, nominal_id) == before
    # at the limit, the same read is answered and logged with its reason
    assert client.get(f"/v1/nominals/{nominal_id}{path}", headers=auditor("y" * 1000)).is_success
    assert _rows(db, nominal_id)[-1][5] == "y" * 1000
