"""Identifiers learnt, corrected and released after registration, on the real database: one
record per identifier at any time, as at registration, also when records race for one
(docs/adr/019)."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from eventsourcing.persistence import IntegrityError

from service.auth import Principal
from service.records import Conflict, NewEvent, Posted
from tests.conftest import random_crn, random_noms, random_pnc
from tests.integration.test_concurrency import POLICE, register, together, versions

PROBATION = Principal(
    sub="test-probation",
    agency="probation:midlands",
    scopes=frozenset({"records:read", "records:write"}),
)


def added(kind: str, value: str) -> NewEvent:
    return NewEvent(uuid.uuid4(), "IdentifierAdded", "2026-11-20", {"kind": kind, "value": value})


def corrected(kind: str, wrong: str, right: str) -> NewEvent:
    payload = {"kind": kind, "from": wrong, "to": right, "rationale": "Mistyped at intake"}
    return NewEvent(uuid.uuid4(), "IdentifierCorrected", "2026-11-20", payload)


def post(layer, nominal_id: str, new: NewEvent) -> Posted:
    return layer.records.post_event(POLICE, uuid.UUID(nominal_id), new, None)


def holders(layer, **identifiers: str) -> list[str]:
    return [r["nominal_id"] for r in layer.reading.lookup(POLICE, identifiers, None)]


def rows(db, sql: str, *params: Any) -> list[tuple[Any, ...]]:
    """Rows read as the database's owner (the tests' view of what is stored)."""
    with db.connect() as conn:
        return [tuple(r) for r in conn.execute(sql, params).fetchall()]


def test_an_identifier_learnt_later_finds_the_record(service):
    nominal_id = register(service, identifiers={"pnc": random_pnc()})
    crn = random_crn()
    assert holders(service, crn=crn) == []
    post(service, nominal_id, added("crn", crn.lower()))
    assert holders(service, crn=crn) == [nominal_id]


def test_an_identifier_held_by_another_record_is_refused_and_nothing_stored(service):
    crn = random_crn()
    holder = register(service, identifiers={"crn": crn})
    other = register(service, identifiers={"pnc": random_pnc()})
    with pytest.raises(Conflict) as refused:
        post(service, other, added("crn", crn))
    assert refused.value.existing == holder  # POLICE is a partner of both
    assert versions(service, other) == [1]
    assert holders(service, crn=crn) == [holder]
    another = register(service, identifiers={"crn": random_crn()})
    own = service.reading.view(POLICE, uuid.UUID(another), None)["identifiers"]["crn"]
    with pytest.raises(Conflict):  # a correction to a held identifier, too
        post(service, another, corrected("crn", own, crn))
    assert versions(service, another) == [1]


def test_the_holder_is_named_only_to_its_partners_and_the_refused_claim_is_logged_there(
    service, db
):
    crn = random_crn()
    holder = register(service, identifiers={"crn": crn})
    other = register(service, identifiers={"pnc": random_pnc()})
    service.records.post_event(
        POLICE,
        uuid.UUID(other),
        NewEvent(
            uuid.uuid4(),
            "AgencyPartnered",
            "2026-11-20",
            {"agency": "police:essex", "reason": "moved"},
        ),
        None,
    )
    essex = Principal(
        sub="test-essex", agency="police:essex", scopes=frozenset({"records:read", "records:write"})
    )
    with pytest.raises(Conflict) as refused:
        service.records.post_event(essex, uuid.UUID(other), added("crn", crn), None)
    assert refused.value.existing is None  # police:essex is not a partner of the holder
    logged = rows(
        db,
        "SELECT agency, route, action, outcome FROM consultation_log WHERE nominal_id = %s"
        " ORDER BY id DESC LIMIT 1",
        uuid.UUID(holder),
    )
    assert logged == [
        ("police:essex", "POST /v1/nominals/{id}/events", "claim-identifier", "refused")
    ]


def test_a_corrected_away_identifier_is_released_for_another_record(service):
    wrong, right = random_crn(), random_crn()
    first = register(service, identifiers={"crn": wrong})
    post(service, first, corrected("crn", wrong, right))
    assert holders(service, crn=wrong) == []
    assert holders(service, crn=right) == [first]
    # Released: another record may hold it now, by registration or by adding it.
    second = register(service, identifiers={"crn": wrong})
    assert holders(service, crn=wrong) == [second]
    third = register(service, identifiers={"pnc": random_pnc()})
    with pytest.raises(Conflict):
        post(service, third, added("crn", wrong))


def test_an_identifier_corrected_back_is_claimed_again_by_its_record(service, db):
    one, two = random_noms(), random_noms()
    nominal_id = register(service, identifiers={"noms": one})
    post(service, nominal_id, corrected("noms", one, two))
    post(service, nominal_id, corrected("noms", two, one))
    assert holders(service, noms=one) == [nominal_id]
    assert holders(service, noms=two) == []
    claims = rows(
        db,
        "SELECT value, claim_no FROM nominal_identifiers WHERE nominal_id = %s AND kind = 'noms'"
        " ORDER BY claim_no, value",
        uuid.UUID(nominal_id),
    )
    assert sorted(claims) == sorted([(one, 0), (two, 0), (one, 1)])
    releases = rows(
        db,
        "SELECT value, claim_no FROM identifier_releases WHERE nominal_id = %s",
        uuid.UUID(nominal_id),
    )
    assert sorted(releases) == sorted([(one, 0), (two, 0)])


def test_two_records_racing_to_add_one_crn_one_wins_one_is_refused(service):
    for _ in range(3):
        crn = random_crn()
        records = [register(service, identifiers={"pnc": random_pnc()}) for _ in range(2)]
        outcomes = together(
            2, lambda i, records=records, crn=crn: post(service, records[i], added("crn", crn))
        )
        won = [o for o in outcomes if isinstance(o, Posted)]
        lost = [o for o in outcomes if not isinstance(o, Posted)]
        assert len(won) == 1 and won[0].created, outcomes
        assert len(lost) == 1 and isinstance(lost[0], Conflict), outcomes
        assert holders(service, crn=crn) == [won[0].nominal_id]
        loser = next(r for r in records if r != won[0].nominal_id)
        assert versions(service, loser) == [1]


def test_eight_records_racing_for_one_crn_by_addition_and_correction_leave_one_holder(service):
    crn = random_crn()
    records = [register(service, identifiers={"crn": random_crn()}) for _ in range(8)]
    held = {
        r: service.reading.view(POLICE, uuid.UUID(r), None)["identifiers"]["crn"] for r in records
    }

    def claim(i: int) -> Posted:
        nominal_id = records[i]
        return post(service, nominal_id, corrected("crn", held[nominal_id], crn))

    outcomes = together(8, claim)
    won = [o for o in outcomes if isinstance(o, Posted)]
    assert len(won) == 1, outcomes
    assert all(isinstance(o, Conflict) for o in outcomes if not isinstance(o, Posted)), outcomes
    assert holders(service, crn=crn) == [won[0].nominal_id]


def test_a_release_racing_a_claim_never_leaves_two_holders(service):
    for _ in range(3):
        wrong = random_crn()
        first = register(service, identifiers={"crn": wrong})
        body: dict[str, Any] = {
            "identifiers": {"crn": wrong},
            "name": {"family": "Example", "given": ["Sam"]},
            "aliases": [],
            "date_of_birth": "1980-02-01",
            "area": "kent",
            "category": 1,
            "level": 1,
            "lead_agency": "probation:midlands",
        }

        def race(i: int) -> Any:
            if i == 0:
                return post(service, first, corrected("crn", wrong, random_crn()))
            return service.records.register(POLICE, uuid.uuid4(), None, dict(body))

        released, claimed = together(2, race)
        assert isinstance(released, Posted), released
        assert isinstance(claimed, Posted | Conflict), claimed
        expected = [claimed.nominal_id] if isinstance(claimed, Posted) else []
        assert holders(service, crn=wrong) == expected


def test_the_database_refuses_a_second_claim_and_a_release_by_a_record_not_holding_it(
    service,
):
    crn = random_crn()
    holder = register(service, identifiers={"crn": crn})
    stranger = uuid.uuid4()
    with (
        pytest.raises(IntegrityError),
        service.ledger.datastore.transaction(commit=False) as curs,
    ):
        curs.execute(
            "INSERT INTO nominal_identifiers (kind, value, nominal_id) VALUES ('crn', %s, %s)",
            (crn, stranger),
        )
    event_id = rows_event(service, holder)
    with (
        pytest.raises(IntegrityError),
        service.ledger.datastore.transaction(commit=False) as curs,
    ):
        curs.execute(
            "INSERT INTO identifier_releases (kind, value, nominal_id, event_id)"
            " VALUES ('crn', %s, %s, %s)",
            (crn, stranger, event_id),
        )
    assert holders(service, crn=crn) == [holder]


def rows_event(service, nominal_id: str) -> uuid.UUID:
    with service.ledger.datastore.transaction() as curs:
        curs.execute(
            "SELECT event_id FROM event_index WHERE nominal_id = %s", (uuid.UUID(nominal_id),)
        )
        return curs.fetchone()["event_id"]


def test_an_import_holds_only_what_a_whole_record_holds_at_its_end(service):
    # identifier_rows over a stream's events: claimed then corrected away is never stored.
    from domain.nominal import Nominal
    from service.store.eventstore import identifier_rows
    from tests.unit.test_nominal import given, when

    nominal: Nominal = given(identifiers={"crn": "X123456", "pnc": "2002/0073319Z"})
    when(
        nominal,
        "IdentifierCorrected",
        {"kind": "crn", "from": "X123456", "to": "X123457", "rationale": "typo"},
    )
    when(nominal, "IdentifierAdded", {"kind": "noms", "value": "A1234BC"})
    releases, claims = identifier_rows([nominal])
    assert releases == []
    assert sorted((c.kind, c.value) for c in claims) == [
        ("crn", "X123457"),
        ("noms", "A1234BC"),
        ("pnc", "2002/0073319Z"),
    ]
