"""Each event's area (rm_event_areas): the area its record was in when it was recorded, so a
fact keeps the area that held it after the record moves (docs/adr/022)."""

from __future__ import annotations

import uuid

from sqlalchemy import text

from tests.projections.readmodels import expected, observed


def test_a_fact_keeps_the_area_that_held_it_after_a_transfer(runner, enrol, post, writer):
    nid = enrol("police:kent", area="kent")
    post(
        "police:kent",
        nid,
        "BreachRecorded",
        {"of": "licence", "occurred_on": "2026-11-19", "action": "warning"},
    )
    request = post(
        "probation:midlands",
        nid,
        "AreaTransferRequested",
        {"to_area": "essex", "receiving": "mappa:essex", "rationale": "Moving to family"},
    )
    post(
        "mappa:essex",
        nid,
        "AreaTransferAccepted",
        {"transfer": request["event_id"], "accepted_on": "2026-11-20"},
    )
    post(
        "police:kent",
        nid,
        "BreachRecorded",
        {"of": "licence", "occurred_on": "2026-11-20", "action": "recall"},
    )
    post("police:kent", nid, "AreaTransferred", {"to_area": "surrey", "rationale": "Moved again"})
    post(
        "probation:midlands",
        nid,
        "RecallRecorded",
        {"recalled_on": "2026-11-20", "reason": "Breach"},
    )
    runner.catch_up()

    with runner.engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT version, type, area FROM rm_event_areas WHERE nominal_id = :id"
                " ORDER BY version"
            ),
            {"id": nid},
        ).all()
        area_now = conn.execute(
            text("SELECT area FROM rm_nominals WHERE nominal_id = :id"), {"id": nid}
        ).scalar()
        partner = conn.execute(
            text(
                "SELECT reason FROM rm_partnerships WHERE nominal_id = :id"
                " AND agency = 'mappa:essex' AND until IS NULL"
            ),
            {"id": nid},
        ).scalar()
    assert [tuple(r) for r in rows] == [
        (1, "NominalRegistered", "kent"),
        (2, "BreachRecorded", "kent"),
        (3, "AreaTransferRequested", "kent"),
        (4, "AreaTransferAccepted", "kent"),
        (5, "BreachRecorded", "essex"),
        (6, "AreaTransferred", "essex"),
        (7, "RecallRecorded", "surrey"),
    ]
    assert area_now == "surrey"
    assert partner == "area transfer from kent"
    nominal = writer.ledger.app.repository.get(uuid.UUID(nid))
    assert observed(runner.engine, nominal.id) == expected(nominal)
