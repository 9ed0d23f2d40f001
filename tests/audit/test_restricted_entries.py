"""Restricted entries (counter-terrorism material, 000 para 6.32) through the HTTP API: the
agency that posted one, the agencies it names and auditors who say why read it whole, and the
consultation log names each such reading; every other partner sees that it exists (type,
date, posting agency), never what it says, in the view, the history, the state as of an
instant and the feed's details (docs/adr/021)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from tests.audit.conftest import AUDITOR

POSTER = "police:kent"
NAMED = "police:ct-south-east"
OTHER = "probation:midlands"  # the lead agency: a partner not named
SECRET = {"subject": "Operation Larch", "body": "Attends meetings of a proscribed group"}


@pytest.fixture
def restricted(client, auth, register, post) -> tuple[str, dict[str, Any]]:
    nominal_id = register(POSTER)
    post(nominal_id, "AgencyPartnered", {"agency": NAMED, "reason": "counter-terrorism"})
    entry = post(
        nominal_id,
        "EntryRecorded",
        {"entry_type": "intelligence", **SECRET, "restricted_to": [NAMED]},
    )
    post(nominal_id, "EntryRecorded", {"entry_type": "visit", "subject": "Visit", "body": "Home"})
    return nominal_id, entry


def entries_of(view: dict[str, Any]) -> list[dict[str, Any]]:
    return view["entries"]


def assert_hidden(shown: dict[str, Any], entry: dict[str, Any]) -> None:
    assert shown["event_id"] == entry["event_id"]
    assert shown["restricted"] is True and shown["entry_type"] == "intelligence"
    assert shown["recorded_by"] == {"sub": "restricted", "agency": POSTER}
    text = repr(shown)
    assert "Larch" not in text and "proscribed" not in text and NAMED not in text


def restricted_reads(client, auditor, nominal_id: str) -> list[tuple[str, str, str]]:
    r = client.get(f"/v1/nominals/{nominal_id}/access-log?limit=1000", headers=auditor())
    assert r.status_code == 200, r.text
    return [
        (e["agency"], e["route"], e["entry_id"])
        for e in r.json()["entries"]
        if e["action"] == "read-restricted-entry"
    ]


@pytest.mark.parametrize("reader", [POSTER, NAMED])
def test_the_poster_and_the_named_agencies_read_it_whole_and_are_logged(
    client, auth, auditor, restricted, reader
):
    nominal_id, entry = restricted
    for _ in range(2):  # the second from the cached rendering: logged again all the same
        r = client.get(f"/v1/nominals/{nominal_id}", headers=auth(reader))
        assert r.status_code == 200, r.text
        whole = entries_of(r.json())[0]
        assert (whole["subject"], whole["body"]) == (SECRET["subject"], SECRET["body"])
        assert whole["restricted_to"] == [NAMED]
    reads = restricted_reads(client, auditor, nominal_id)
    assert reads.count((reader, "GET /v1/nominals/{id}", entry["event_id"])) == 2


def test_other_partners_see_that_it_exists_in_the_view_and_nothing_of_it(
    client, auth, auditor, restricted
):
    nominal_id, entry = restricted
    client.get(f"/v1/nominals/{nominal_id}", headers=auth(POSTER))  # a rendering for the poster
    r = client.get(f"/v1/nominals/{nominal_id}", headers=auth(OTHER))
    assert r.status_code == 200, r.text
    hidden, visible = entries_of(r.json())
    assert_hidden(hidden, entry)
    assert visible["subject"] == "Visit"
    assert not [a for a, *_ in restricted_reads(client, auditor, nominal_id) if a == OTHER]


def test_other_partners_see_a_placeholder_in_the_history_and_the_feed_details(
    client, auth, auditor, restricted
):
    nominal_id, entry = restricted
    r = client.get(f"/v1/nominals/{nominal_id}/history", headers=auth(OTHER))
    events = r.json()["events"]
    shown = next(e for e in events if e["event_id"] == entry["event_id"])
    assert shown["payload"] == {"entry_type": "intelligence", "restricted": True}
    assert shown["recorded_by"] == {"sub": "restricted", "agency": POSTER}
    # Its place in the chain stays: the next event links to its hash.
    after = next(e for e in events if e["version"] == shown["version"] + 1)
    assert after["prev_hash"] == shown["hash"] == entry["hash"]
    # The feed's notice names no payload; its detail_url is a page of the history.
    feed = client.get(
        "/v1/feed",
        params={"after": entry["position"] - 1, "limit": 1},
        headers=auth(OTHER, "feed:read"),
    ).json()["notices"][0]
    assert feed["event_id"] == entry["event_id"] and "payload" not in feed
    detail = client.get(feed["detail_url"], headers=auth(OTHER)).json()["events"][0]
    assert detail["payload"] == {"entry_type": "intelligence", "restricted": True}
    whole = client.get(feed["detail_url"], headers=auth(NAMED)).json()["events"][0]
    assert whole["payload"]["subject"] == SECRET["subject"]
    reads = restricted_reads(client, auditor, nominal_id)
    assert (NAMED, "GET /v1/nominals/{id}/history", entry["event_id"]) in reads
    assert not [a for a, *_ in reads if a == OTHER]


def test_the_state_as_of_an_instant_hides_it_from_other_partners_too(
    client, auth, auditor, restricted
):
    nominal_id, entry = restricted
    now = datetime.now(UTC).isoformat()
    r = client.get(f"/v1/nominals/{nominal_id}/state", params={"as_of": now}, headers=auth(OTHER))
    assert r.status_code == 200, r.text
    assert_hidden(entries_of(r.json()["record"])[0], entry)
    r = client.get(f"/v1/nominals/{nominal_id}/state", params={"as_of": now}, headers=auth(NAMED))
    assert entries_of(r.json()["record"])[0]["body"] == SECRET["body"]
    assert (NAMED, "GET /v1/nominals/{id}/state", entry["event_id"]) in restricted_reads(
        client, auditor, nominal_id
    )


def test_an_auditor_who_says_why_reads_it_whole_and_is_logged_with_the_reason(
    client, auth, auditor, restricted, db
):
    nominal_id, entry = restricted
    view = client.get(f"/v1/nominals/{nominal_id}", headers=auditor())
    assert entries_of(view.json())[0]["body"] == SECRET["body"]
    history = client.get(f"/v1/nominals/{nominal_id}/history", headers=auditor()).json()
    assert any(e["payload"].get("body") == SECRET["body"] for e in history["events"])
    reads = restricted_reads(client, auditor, nominal_id)
    assert (AUDITOR, "GET /v1/nominals/{id}", entry["event_id"]) in reads
    assert (AUDITOR, "GET /v1/nominals/{id}/history", entry["event_id"]) in reads
    with db.connect() as conn:
        reasons = {
            r[0]
            for r in conn.execute(
                "SELECT justification FROM consultation_log WHERE nominal_id = %s"
                " AND action = 'read-restricted-entry' AND agency = %s",
                (nominal_id, AUDITOR),
            )
        }
    assert reasons == {"Thematic inspection of MAPPA records, 2026"}


def test_a_partner_who_is_also_an_auditor_sees_it_only_when_saying_why(client, auth, restricted):
    nominal_id, entry = restricted
    both = "records:read audit:read"
    r = client.get(f"/v1/nominals/{nominal_id}", headers=auth(OTHER, both))
    assert_hidden(entries_of(r.json())[0], entry)
    r = client.get(
        f"/v1/nominals/{nominal_id}",
        headers=auth(OTHER, both, Justification="Reviewing the case for the SMB audit"),
    )
    assert entries_of(r.json())[0]["body"] == SECRET["body"]


def test_the_consultation_log_stays_a_chain_with_the_rows_naming_entries(
    client, auth, restricted, service
):
    from service.consultation import verify_log

    nominal_id, _ = restricted
    client.get(f"/v1/nominals/{nominal_id}", headers=auth(NAMED))
    assert verify_log(service.ledger.datastore).intact
