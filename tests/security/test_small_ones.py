"""Small ones seen in review (issue 16, point 10), each refused or cleaned as the design
says, and each leaving the record as it was. `serve` and SIGTERM: tests/reliability."""

from __future__ import annotations

import uuid

import pytest

from tests.conftest import event, random_crn, random_noms
from tests.integrations.conftest import INBOUND_SCOPES, INBOUND_URL, PROBATION_CLIENT, sns
from tests.integrations.conftest import mapp_registration as hmpps_registration
from tests.security.conftest import assert_refused
from tests.security.test_unstorable_text import upload_named

PARTNER = "police:kent"
STRANGER = "police:essex"


# -- Last-Event-ID --------------------------------------------------------------------------

NOT_A_POSITION = {
    "superscript two": b"\xb2",  # "²" as a latin-1 header: str.isdigit() says yes
    "superscripts": b"\xb9\xb2\xb3",
    "beyond bigint": b"99999999999999999999",
    "negative": b"-1",
    "a word": b"latest",
}


@pytest.mark.parametrize("value", NOT_A_POSITION.values(), ids=NOT_A_POSITION.keys())
@pytest.mark.parametrize("accept", ["application/json", "text/event-stream"])
def test_a_last_event_id_that_is_not_a_position_is_a_400(client, token, value, accept):
    headers = {
        "Authorization": f"Bearer {token(PARTNER, 'feed:read')}",
        "Last-Event-ID": value,
        "Accept": accept,
    }
    problem = assert_refused(client.get("/v1/feed", headers=headers), 400)
    assert "Last-Event-ID" in problem["detail"]


def test_a_last_event_id_that_is_a_position_still_resumes(client, token, register):
    register(PARTNER)
    headers = {"Authorization": f"Bearer {token(PARTNER, 'feed:read')}", "Last-Event-ID": "1"}
    r = client.get("/v1/feed", headers=headers)
    assert r.status_code == 200, r.text
    assert all(n["position"] > 1 for n in r.json()["notices"])


# -- the minutes' filename ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("sent", "stored"),
    [
        (b"min\x01ut\x1fes\x7f.pdf", "minutes.pdf"),
        (b"\tminutes\x1b[31m.pdf", "minutes[31m.pdf"),
        (b"minutes\xc2\x85 level 2.pdf", "minutes level 2.pdf"),  # NEL, U+0085
        (b"minutes\xe2\x80\xaefdp.exe", "minutesfdp.exe"),  # right-to-left override
        (b"\x01\x02\x03", "minutes"),
    ],
)
def test_a_minutes_filename_is_stored_without_control_characters(
    client, auth, register, partner, sent, stored
):
    nominal_id = register(PARTNER)
    partner(nominal_id, "mappa:kent")
    r = upload_named(client, auth, nominal_id, sent)
    assert r.status_code == 201, r.text
    document = r.json()["payload"]["document"]
    assert document["filename"] == stored
    read = client.get(
        f"/v1/nominals/{nominal_id}/documents/{document['sha256']}", headers=auth(PARTNER)
    )
    assert read.status_code == 200
    assert read.headers["content-disposition"] == f'attachment; filename="{stored}"'


# -- ActionCompleted for an unknown action ------------------------------------------------------


@pytest.mark.parametrize("poster", [PARTNER, "mappa:kent"])
def test_completing_an_unknown_action_is_a_422_naming_it_not_a_403(
    client, auth, register, partner, stored_count, poster
):
    nominal_id = register(PARTNER)
    partner(nominal_id, "mappa:kent")
    before = stored_count(nominal_id)
    body = event(
        "ActionCompleted",
        {"action_id": "a-404", "outcome": "Visited, no concerns", "completed_on": "2026-11-25"},
    )
    r = client.post(f"/v1/nominals/{nominal_id}/events", json=body, headers=auth(poster))
    problem = assert_refused(r, 422, "payload.action_id")
    assert "a-404" in problem["detail"]
    assert stored_count(nominal_id) == before


def test_completing_a_known_action_assigned_elsewhere_is_still_a_403(
    client, auth, register, partner, stored_count
):
    nominal_id = register(PARTNER)
    partner(nominal_id, "mappa:kent")
    partner(nominal_id, "probation:kent")
    set_action = event(
        "ActionSet",
        {
            "action_id": "a-1",
            "description": "Visit",
            "assigned_agency": "probation:kent",
            "due_on": "2026-12-01",
        },
    )
    r = client.post(
        f"/v1/nominals/{nominal_id}/events", json=set_action, headers=auth("mappa:kent")
    )
    assert r.status_code == 201, r.text
    before = stored_count(nominal_id)
    body = event(
        "ActionCompleted", {"action_id": "a-1", "outcome": "Done", "completed_on": "2026-11-25"}
    )
    r = client.post(f"/v1/nominals/{nominal_id}/events", json=body, headers=auth(PARTNER))
    assert_refused(r, 403)
    assert stored_count(nominal_id) == before


# -- a stranger re-using an event_id ----------------------------------------------------------


def test_a_stranger_reusing_an_event_id_it_cannot_see_gets_the_404_of_a_missing_record(
    client, auth, register, stored_count
):
    theirs = register(PARTNER)
    entry = event("EntryRecorded", {"entry_type": "contact", "subject": "Seen", "body": "At home"})
    r = client.post(f"/v1/nominals/{theirs}/events", json=entry, headers=auth(PARTNER))
    assert r.status_code == 201, r.text
    own = register(STRANGER)
    missing = str(uuid.uuid4())
    guess = entry | {"payload": {"entry_type": "contact", "subject": "Probe", "body": "Probe"}}

    def answer(nominal_id: str, body: dict):
        return client.post(f"/v1/nominals/{nominal_id}/events", json=body, headers=auth(STRANGER))

    fresh = event("EntryRecorded", {"entry_type": "contact", "subject": "Probe", "body": "Probe"})
    baseline = answer(missing, fresh)
    assert_refused(baseline, 404)
    before = {n: stored_count(n) for n in (theirs, own)}
    for nominal_id, body in [(theirs, guess), (theirs, entry), (missing, guess), (own, guess)]:
        r = answer(nominal_id, body)
        assert r.status_code == 404, (nominal_id, r.text)
        assert r.json() == baseline.json()
    assert {n: stored_count(n) for n in (theirs, own)} == before
    # The partner that stored it still hears of it: the same body again, and another body.
    again = client.post(f"/v1/nominals/{theirs}/events", json=entry, headers=auth(PARTNER))
    assert again.status_code == 200, again.text
    other = client.post(f"/v1/nominals/{theirs}/events", json=guess, headers=auth(PARTNER))
    assert_refused(other, 409)


# -- an HMPPS MessageId used for two people ------------------------------------------------------


def test_an_hmpps_message_id_already_used_for_another_person_is_a_409(
    client, auth, register, stored_count
):
    first_crn, second_crn = random_crn(), random_crn()
    first = register("probation:midlands", identifiers={"crn": first_crn, "noms": random_noms()})
    second = register("probation:midlands", identifiers={"crn": second_crn})
    message_id = str(uuid.uuid4())
    headers = auth(PROBATION_CLIENT, INBOUND_SCOPES)
    applied = client.post(
        INBOUND_URL, json=sns(hmpps_registration(first_crn), message_id), headers=headers
    )
    assert applied.status_code == 201, applied.text
    before = stored_count(second)
    r = client.post(
        INBOUND_URL, json=sns(hmpps_registration(second_crn), message_id), headers=headers
    )
    problem = assert_refused(r, 409)
    assert first not in r.text  # the other person's record is not named
    assert stored_count(second) == before
    # The same message for the same person is still "applied before".
    again = client.post(
        INBOUND_URL, json=sns(hmpps_registration(first_crn), message_id), headers=headers
    )
    assert again.status_code == 200 and again.json()["outcome"] == "already_applied"
    assert "MessageId" in problem["detail"]
