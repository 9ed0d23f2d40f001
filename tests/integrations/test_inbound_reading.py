"""Reading and translating HMPPS domain events: pure functions, no database."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from domain.nominal import Nominal
from service.integrations.inbound import (
    MalformedMessage,
    Skip,
    parse_instant,
    read_message,
    translate,
)
from tests.integrations.conftest import hmpps_event, mapp_registration, sns

RECORDED = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Fri Jun 14 09:06:52 BST 2024", datetime(2024, 6, 14, 8, 6, 52, tzinfo=UTC)),
        ("Thu Jan 04 17:30:00 GMT 2024", datetime(2024, 1, 4, 17, 30, tzinfo=UTC)),
        ("Mon Dec  2 07:00:01 UTC 2024", datetime(2024, 12, 2, 7, 0, 1, tzinfo=UTC)),
        ("2024-06-14T09:06:52.123+01:00", datetime(2024, 6, 14, 8, 6, 52, 123000, tzinfo=UTC)),
        ("2024-06-14T08:06:52Z", datetime(2024, 6, 14, 8, 6, 52, tzinfo=UTC)),
        ("2024-06-14T09:06:52", datetime(2024, 6, 14, 8, 6, 52, tzinfo=UTC)),  # London, summer
        ("2024-01-14T09:06:52", datetime(2024, 1, 14, 9, 6, 52, tzinfo=UTC)),  # London, winter
        ("2024-06-14", datetime(2024, 6, 13, 23, 0, tzinfo=UTC)),
    ],
)
def test_producers_dates_are_read_as_instants(text, expected):
    assert parse_instant(text, "occurredAt") == expected


@pytest.mark.parametrize(
    "text",
    [
        "",
        "yesterday",
        "Fri Jun 14 09:06:52 PDT 2024",
        "Fri Foo 14 09:06:52 BST 2024",
        "2024-13-01",
        "06/07/2024",  # June or July: not guessed
        1718352412,  # an epoch number: not guessed either
        None,
    ],
)
def test_anything_else_is_malformed(text):
    with pytest.raises(MalformedMessage) as e:
        parse_instant(text, "occurredAt")
    assert e.value.field == "occurredAt"


@pytest.mark.parametrize("version", [1, "1", 2, "1.0"])
def test_version_may_be_a_number_or_a_string(version):
    assert read_message(mapp_registration("X123456") | {"version": version}).event_type


@pytest.mark.parametrize("version", [None, "one", True, [1]])
def test_version_must_be_numeric(version):
    with pytest.raises(MalformedMessage):
        read_message(mapp_registration("X123456") | {"version": version})


def test_fields_producers_add_are_ignored():
    event = mapp_registration("X123456") | {"schemaRevision": 7, "source": {"system": "delius"}}
    event["personReference"]["identifiers"][0]["issuedBy"] = "nDelius"
    message = read_message(sns(event) | {"SignatureVersion": "1", "UnsubscribeURL": "x"})
    assert message.identifiers == {"crn": "X123456"}
    assert message.event_type == "probation-case.registration.added"


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"additionalInformation": ["M2"]}, "additionalInformation"),
        ({"personReference": {"identifiers": {"type": "CRN"}}}, "personReference.identifiers"),
        ({"personReference": {"identifiers": ["X123456"]}}, "personReference.identifiers.0"),
        (
            {"personReference": {"identifiers": [{"type": 1, "value": "X123456"}]}},
            "personReference.identifiers.0.type",
        ),
        (
            {"personReference": {"identifiers": [{"type": "CRN", "value": 123456}]}},
            "personReference.identifiers.0.value",
        ),
        ({"occurredAt": "14/06/2024"}, "occurredAt"),
        ({"version": None}, "version"),
    ],
)
def test_the_first_field_that_is_wrong_is_named(change, field):
    with pytest.raises(MalformedMessage) as e:
        read_message(mapp_registration("X123456") | change)
    assert e.value.field == field
    assert e.value.message.startswith(field)


def test_an_sns_envelope_is_validated_too():
    event = mapp_registration("X123456")
    for body, field in [
        (sns(event) | {"MessageId": "  "}, "MessageId"),
        (sns(event) | {"Message": json.dumps(["not", "an", "event"])}, "Message"),
        (sns(event) | {"Message": {"eventType": "not a string of JSON"}}, "Message"),
    ]:
        with pytest.raises(MalformedMessage) as e:
            read_message(body)
        assert e.value.field == field


def test_an_sns_message_is_keyed_by_its_message_id_and_a_bare_one_by_its_content():
    event = mapp_registration("X123456")
    assert read_message(sns(event, message_id="abc-1")).key == "sns:abc-1"
    bare = read_message(event)
    reordered = read_message(json.loads(json.dumps(event, sort_keys=True)))
    assert bare.key.startswith("sha256:") and bare.key == reordered.key
    assert read_message(event | {"occurredAt": "2026-11-21T00:00:00Z"}).key != bare.key


def test_identifier_types_as_producers_spell_them():
    for spelling in ("NOMS", "nomsNumber", "noms"):
        event = hmpps_event(
            "prison-offender-events.prisoner.received", noms="a1234bc", noms_type=spelling
        )
        assert read_message(event).identifiers == {"noms": "A1234BC"}


def _nominal(category=1, level=1, custody=None) -> Nominal:
    nominal = Nominal.register(
        nominal_id=__import__("uuid").uuid4(),
        event_id="e1",
        occurred_at="2026-11-20",
        recorded_at=RECORDED,
        recorded_by={"sub": "t", "agency": "probation:midlands"},
        payload={
            "identifiers": {"crn": "X123456"},
            "name": {"family": "A", "given": ["B"]},
            "area": "leicestershire-rutland",
            "category": category,
            "level": level,
        },
    )
    nominal.custody = custody
    return nominal


def test_event_ids_are_the_same_on_every_delivery_and_differ_by_type():
    message = read_message(sns(mapp_registration("X123456", "M2", "M3"), message_id="m-1"))
    first = translate(message, _nominal())
    second = translate(
        read_message(sns(mapp_registration("X123456", "M2", "M3"), message_id="m-1")), _nominal()
    )
    assert [t.event_id for t in first] == [t.event_id for t in second]
    assert len({t.event_id for t in first}) == 2
    assert set(message.candidate_event_ids()) == {t.event_id for t in first}


def test_a_registration_never_passes_through_category_3_at_level_1():
    to_three = translate(read_message(mapp_registration("X123456", "M3", "M2")), _nominal(1, 1))
    assert [t.type for t in to_three] == ["LevelChanged", "CategoryChanged"]
    from_three = translate(read_message(mapp_registration("X123456", "M1", "M1")), _nominal(3, 2))
    assert [t.type for t in from_three] == ["CategoryChanged", "LevelChanged"]


def test_the_level_is_decided_on_the_london_date_of_the_event():
    late_evening = mapp_registration("X123456", "M1", "M2") | {"occurredAt": "2026-06-20T23:30:00Z"}
    (change,) = translate(read_message(late_evening), _nominal(1, 1))
    assert change.payload["decided_on"] == "2026-06-21"
    assert change.occurred_at == "2026-06-20T23:30:00.000000Z"


def test_received_while_in_another_prison_is_a_transfer():
    event = hmpps_event(
        "prison-offender-events.prisoner.received",
        noms="A1234BC",
        prisonId="MDI",
        reason="ADMISSION",
    )
    custody = {"status": "received", "establishment": "prison:LEI"}
    (change,) = translate(read_message(event), _nominal(custody=custody))
    assert change.payload == {"status": "transferred", "establishment": "prison:MDI"}
    (first,) = translate(read_message(event), _nominal())
    assert first.payload["status"] == "received"


def test_unused_types_and_registers_are_skipped_before_any_record_is_consulted():
    with pytest.raises(Skip) as e:
        translate(
            read_message(hmpps_event("probation-case.engagement.created", crn="X123456")),
            _nominal(),
        )
    assert e.value.outcome == "unused_type"
    with pytest.raises(Skip) as e:
        translate(
            read_message(
                hmpps_event(
                    "probation-case.registration.added", crn="X123456", registerTypeCode="RSOR"
                )
            ),
            _nominal(),
        )
    assert e.value.outcome == "unused_type"
