"""HMPPS domain events in, through the HTTP API with real tokens: every mapping, the
producers' quirks, duplicates, strangers, unused types and malformed bodies."""

from __future__ import annotations

import json
import uuid

from tests.conftest import NOTHING, random_crn, random_noms
from tests.integrations.conftest import (
    INBOUND_URL,
    PRISON_CLIENT,
    hmpps_event,
    mapp_registration,
    sns,
)


def history(client, auth, nominal_id):
    r = client.get(f"/v1/nominals/{nominal_id}/history", headers=auth("probation:midlands"))
    assert r.status_code == 200, r.text
    return r.json()["events"]


# -- registrations -------------------------------------------------------------------------


def test_a_mappa_registration_changes_category_and_level_with_a_rationale(
    inbound, person, view, client, auth
):
    nominal_id, crn, _ = person(category=1, level=1)
    message = sns(mapp_registration(crn, category="M2", level="M2"))
    r = inbound(message)
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["outcome"] == "applied"
    assert body["nominal_id"] == nominal_id
    assert [e["type"] for e in body["events"]] == ["LevelChanged", "CategoryChanged"]
    record = view(nominal_id)
    assert (record["category"], record["level"]) == (2, 2)
    stored = history(client, auth, nominal_id)[-2:]
    assert stored[0]["payload"]["from"] == 1
    assert stored[0]["payload"]["decided_on"] == "2026-11-20"
    assert all("probation-case.registration.added" in e["payload"]["rationale"] for e in stored)
    assert all(message["MessageId"] in e["payload"]["rationale"] for e in stored)
    assert {e["recorded_by"]["agency"] for e in stored} == {"probation:national-delius"}


def test_the_same_sns_message_twice_is_applied_once(inbound, person, view):
    nominal_id, crn, _ = person(level=1)
    message = sns(mapp_registration(crn, category="M1", level="M2"))
    first = inbound(message)
    assert first.status_code == 201, first.text
    again = inbound(message)
    assert again.status_code == 200, again.text
    assert again.json()["outcome"] == "already_applied"
    assert again.json()["events"] == first.json()["events"]
    assert view(nominal_id)["version"] == 2


def test_a_duplicate_is_not_reapplied_after_the_record_moved_on(
    inbound, person, view, client, auth
):
    nominal_id, crn, _ = person(level=1)
    message = sns(mapp_registration(crn, category="M1", level="M2"))
    assert inbound(message).status_code == 201
    # A partner sets the level back; a redelivery of the old message must not undo that.
    back = {
        "event_id": str(uuid.uuid4()),
        "type": "LevelChanged",
        "occurred_at": "2026-11-21",
        "payload": {"to": 1, "rationale": "Panel decided level 1", "decided_on": "2026-11-21"},
    }
    r = client.post(
        f"/v1/nominals/{nominal_id}/events", json=back, headers=auth("probation:midlands")
    )
    assert r.status_code == 201, r.text
    again = inbound(message)
    assert again.json()["outcome"] == "already_applied"
    assert view(nominal_id)["level"] == 1


def test_a_bare_event_is_keyed_by_its_content(inbound, person, view):
    nominal_id, crn, _ = person(category=1, level=1)
    event = mapp_registration(crn, category="M4", level="M1")
    assert inbound(event).status_code == 201
    again = inbound(json.loads(json.dumps(event)))
    assert again.status_code == 200
    assert again.json()["message_key"].startswith("sha256:")
    assert view(nominal_id)["category"] == 4
    assert view(nominal_id)["version"] == 2


def test_level_m0_means_not_yet_set_and_changes_only_the_category(inbound, person, view):
    nominal_id, crn, _ = person(category=1, level=2)
    r = inbound(sns(mapp_registration(crn, category="M2", level="M0")))
    assert r.status_code == 201, r.text
    assert [e["type"] for e in r.json()["events"]] == ["CategoryChanged"]
    assert (view(nominal_id)["category"], view(nominal_id)["level"]) == (2, 2)


def test_an_update_to_category_3_moves_the_level_first(inbound, person, view):
    nominal_id, crn, _ = person(category=1, level=1)
    r = inbound(
        sns(
            hmpps_event(
                "probation-case.registration.updated",
                crn=crn,
                registerTypeCode="MAPP",
                registrationCategoryCode="M3",
                registrationLevelCode="M2",
            )
        )
    )
    assert r.status_code == 201, r.text
    assert [e["type"] for e in r.json()["events"]] == ["LevelChanged", "CategoryChanged"]
    assert (view(nominal_id)["category"], view(nominal_id)["level"]) == (3, 2)


def test_leaving_category_3_for_level_1_moves_the_category_first(inbound, person, view):
    nominal_id, crn, _ = person(category=3, level=2)
    r = inbound(sns(mapp_registration(crn, category="M2", level="M1")))
    assert r.status_code == 201, r.text
    assert [e["type"] for e in r.json()["events"]] == ["CategoryChanged", "LevelChanged"]
    assert (view(nominal_id)["category"], view(nominal_id)["level"]) == (2, 1)


def test_a_registration_already_held_changes_nothing(inbound, person, view):
    nominal_id, crn, _ = person(category=2, level=2)
    r = inbound(sns(mapp_registration(crn, category="M2", level="M2")))
    assert r.status_code == 202
    assert r.json()["outcome"] == "no_change"
    assert r.json()["reason"]
    assert view(nominal_id)["version"] == 1


def test_a_category_3_level_1_registration_is_not_applied(inbound, person, view):
    nominal_id, crn, _ = person(category=1, level=1)
    r = inbound(sns(mapp_registration(crn, category="M3", level="M1")))
    assert r.status_code == 202, r.text
    assert r.json()["outcome"] == "not_applied"
    assert "category 3" in r.json()["reason"]
    assert view(nominal_id)["version"] == 1


def test_another_register_type_is_not_used(inbound, person, view):
    nominal_id, crn, _ = person()
    r = inbound(
        sns(hmpps_event("probation-case.registration.added", crn=crn, registerTypeCode="RCCO"))
    )
    assert r.status_code == 202
    assert r.json()["outcome"] == "unused_type"
    assert "RCCO" in r.json()["reason"]
    assert view(nominal_id)["version"] == 1


def test_a_mappa_deregistration_deregisters_the_record(inbound, person, view):
    nominal_id, crn, _ = person()
    event = hmpps_event(
        "probation-case.registration.deregistered", crn=crn, registerTypeCode="MAPP"
    )
    r = inbound(sns(event))
    assert r.status_code == 201, r.text
    assert [e["type"] for e in r.json()["events"]] == ["NominalDeregistered"]
    assert view(nominal_id)["status"] == "deregistered"
    again = inbound(sns(event))  # another delivery under a new MessageId: nothing to do
    assert again.status_code == 202
    assert again.json()["outcome"] == "no_change"
    later = inbound(sns(mapp_registration(crn, category="M4", level="M3")))
    assert later.status_code == 202
    assert later.json()["outcome"] == "not_applied"


# -- custody -------------------------------------------------------------------------------


def received(noms, prison, reason="ADMISSION", **kw):
    return hmpps_event(
        "prison-offender-events.prisoner.received",
        noms=noms,
        prisonId=prison,
        reason=reason,
        nomsNumber=noms,
        **kw,
    )


def released(noms, reason="RELEASED", **kw):
    return hmpps_event(
        "prison-offender-events.prisoner.released",
        noms=noms,
        prisonId="LEI",
        reason=reason,
        nomsNumber=noms,
        **kw,
    )


def test_a_prisoner_received_transferred_and_released(inbound, person, view, client, auth):
    nominal_id, _, noms = person()
    r = inbound(sns(received(noms, "LEI")), agency=PRISON_CLIENT)
    assert r.status_code == 201, r.text
    assert view(nominal_id)["custody"]["status"] == "received"
    assert view(nominal_id)["custody"]["establishment"] == "prison:LEI"

    same = inbound(sns(received(noms, "LEI", reason="RETURN_FROM_COURT")), agency=PRISON_CLIENT)
    assert same.status_code == 202
    assert same.json()["outcome"] == "no_change"

    moved = inbound(sns(received(noms, "MDI", reason="TRANSFERRED")), agency=PRISON_CLIENT)
    assert moved.status_code == 201, moved.text
    assert view(nominal_id)["custody"] == view(nominal_id)["custody"] | {
        "status": "transferred",
        "establishment": "prison:MDI",
    }

    out = inbound(sns(released(noms)), agency=PRISON_CLIENT)
    assert out.status_code == 201, out.text
    assert view(nominal_id)["custody"]["status"] == "released"
    stored = history(client, auth, nominal_id)
    assert [e["payload"]["status"] for e in stored if e["type"] == "CustodyChanged"] == [
        "received",
        "transferred",
        "released",
    ]


def test_a_movement_out_that_is_not_a_release_is_not_used(inbound, person, view):
    nominal_id, _, noms = person()
    assert inbound(sns(received(noms, "LEI")), agency=PRISON_CLIENT).status_code == 201
    r = inbound(sns(released(noms, reason="TEMPORARY_ABSENCE_RELEASE")), agency=PRISON_CLIENT)
    assert r.status_code == 202
    assert r.json()["outcome"] == "unused_type"
    assert view(nominal_id)["custody"]["status"] == "received"


def test_a_release_of_someone_not_in_custody_changes_nothing(inbound, person, view):
    nominal_id, _, noms = person()
    r = inbound(sns(released(noms)), agency=PRISON_CLIENT)
    assert r.status_code == 202
    assert r.json()["outcome"] == "no_change"
    assert view(nominal_id)["version"] == 1


# -- producers' quirks ---------------------------------------------------------------------


def test_java_dates_string_versions_and_noms_number_identifiers_are_accepted(
    inbound, person, client, auth
):
    nominal_id, _, noms = person()
    event = received(
        noms, "LEI", occurred_at="Fri Jun 14 09:06:52 BST 2024", version="1", noms_type="nomsNumber"
    )
    del event["additionalInformation"]["nomsNumber"]  # named only as nomsNumber in the identifiers
    r = inbound(sns(event), agency=PRISON_CLIENT)
    assert r.status_code == 201, r.text
    stored = history(client, auth, nominal_id)[-1]
    assert stored["occurred_at"] == "2024-06-14T08:06:52.000000Z"


def test_an_sns_notification_posted_as_text_plain_is_read(client, auth, person, view):
    nominal_id, crn, _ = person(level=1)
    r = client.post(
        INBOUND_URL,
        content=json.dumps(sns(mapp_registration(crn, category="M1", level="M2"))),
        headers=auth("probation:national-delius", "records:write inbound:hmpps")
        | {"Content-Type": "text/plain; charset=UTF-8"},
    )
    assert r.status_code == 201, r.text
    assert view(nominal_id)["level"] == 2


def test_the_event_type_may_come_from_the_sns_attributes(inbound, person, view):
    nominal_id, crn, _ = person(level=1)
    event = mapp_registration(crn, category="M1", level="M3")
    message = sns(event)
    del event["eventType"]
    message["Message"] = json.dumps(event)
    r = inbound(message)
    assert r.status_code == 201, r.text
    assert view(nominal_id)["level"] == 3


# -- strangers, unused types ---------------------------------------------------------------


def test_a_person_not_on_the_record_changes_nothing(inbound):
    crn = random_crn()
    r = inbound(sns(mapp_registration(crn)))
    assert r.status_code == 202
    assert r.json()["outcome"] == "unknown_person"
    assert crn in r.json()["reason"]
    assert r.json()["events"] == []


def test_an_event_type_this_service_does_not_use_changes_nothing(inbound, person, view):
    nominal_id, crn, _ = person()
    r = inbound(sns(hmpps_event("probation-case.address.created", crn=crn)))
    assert r.status_code == 202
    assert r.json()["outcome"] == "unused_type"
    assert "probation-case.address.created" in r.json()["reason"]
    assert view(nominal_id)["version"] == 1


def test_crn_and_noms_of_different_records_change_nothing(inbound, person):
    _, crn, _ = person()
    _, _, noms = person()
    r = inbound(
        sns(
            hmpps_event(
                "probation-case.registration.deregistered",
                crn=crn,
                noms=noms,
                registerTypeCode="MAPP",
            )
        )
    )
    assert r.status_code == 202
    assert r.json()["outcome"] == "not_applied"


def test_an_sns_subscription_confirmation_is_not_used(inbound):
    r = inbound({"Type": "SubscriptionConfirmation", "MessageId": "x", "Token": "t"})
    assert r.status_code == 202
    assert r.json()["outcome"] == "unused_type"


# -- malformed -----------------------------------------------------------------------------


def _problem(r, field):
    assert r.status_code == 400, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    body = r.json()
    assert body["status"] == 400
    assert body["errors"][0]["field"] == field, body
    return body


def test_malformed_messages_answer_400_naming_what_is_wrong(inbound, client, auth):
    crn = random_crn()
    good = mapp_registration(crn)
    cases = {
        "eventType": {k: v for k, v in good.items() if k != "eventType"},
        "occurredAt": good | {"occurredAt": "yesterday"},
        "version": good | {"version": "one"},
        "personReference.identifiers": good | {"personReference": {"identifiers": []}},
        "personReference.identifiers.0.value": good
        | {"personReference": {"identifiers": [{"type": "CRN", "value": "not a crn"}]}},
        "additionalInformation.registrationLevelCode": mapp_registration(crn, level="M7"),
        "body": ["not", "an", "object"],
    }
    for field, body in cases.items():
        _problem(inbound(body), field)
    no_json = sns(good)
    no_json["Message"] = "{not json"
    _problem(inbound(no_json), "Message")
    no_id = sns(good)
    del no_id["MessageId"]
    _problem(inbound(no_id), "MessageId")
    r = client.post(
        INBOUND_URL,
        content=b"{nope",
        headers=auth("probation:national-delius", "records:write inbound:hmpps"),
    )
    _problem(r, "body")
    bad_prison = received(random_noms(), "L E I")
    _problem(inbound(bad_prison, agency=PRISON_CLIENT), "additionalInformation.prisonId")


def test_an_unknown_time_zone_is_malformed(inbound):
    event = mapp_registration(random_crn()) | {"occurredAt": "Fri Jun 14 09:06:52 PDT 2024"}
    r = inbound(event)
    assert r.status_code == 400
    assert "PDT" in r.json()["detail"]


# -- who may post --------------------------------------------------------------------------


def test_without_inbound_hmpps_the_answer_is_403(inbound, person, view):
    nominal_id, crn, _ = person(level=1)
    message = sns(mapp_registration(crn, category="M1", level="M2"))
    r = inbound(message, scopes="records:write")
    assert r.status_code == 403
    assert r.headers["content-type"].startswith("application/problem+json")
    r = inbound(message, agency="probation:midlands", scopes="records:read records:write")
    assert r.status_code == 403
    r = inbound(message, scopes="inbound:hmpps")
    assert r.status_code == 403
    r = inbound(message, agency="police:national-pnc")  # both scopes, not a probation/prison client
    assert r.status_code == 403
    assert view(nominal_id)["version"] == 1


def test_without_a_token_the_answer_is_401(client, person, footprint):
    _, crn, _ = person()
    mark = footprint.mark()
    r = client.post(INBOUND_URL, json=sns(mapp_registration(crn)))
    assert r.status_code == 401
    assert footprint.since(mark) == NOTHING


def test_an_agency_type_the_access_table_refuses_gets_403(inbound, person, view):
    nominal_id, crn, _ = person()
    event = hmpps_event(
        "probation-case.registration.deregistered", crn=crn, registerTypeCode="MAPP"
    )
    # Prisons may not deregister (docs/design.md#the-catalogue).
    r = inbound(sns(event), agency=PRISON_CLIENT)
    assert r.status_code == 403
    assert view(nominal_id)["status"] == "active"


def test_one_message_delivered_concurrently_is_applied_once(inbound, person, view):
    import threading

    nominal_id, crn, _ = person(category=1, level=1)
    message = sns(mapp_registration(crn, category="M2", level="M3"))
    outcomes: list[str] = []
    lock = threading.Lock()

    def deliver() -> None:
        r = inbound(message)
        with lock:
            outcomes.append(r.json().get("outcome", r.text))

    threads = [threading.Thread(target=deliver) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcomes) == ["already_applied"] * 7 + ["applied"]
    assert view(nominal_id)["version"] == 3
    assert (view(nominal_id)["category"], view(nominal_id)["level"]) == (2, 3)
