"""Helpers for comparing read models: what the tables hold, and what a fold implies."""

from __future__ import annotations

from datetime import date
from typing import Any
from uuid import UUID

from sqlalchemy import Engine, text

from domain.calendar import london_date
from domain.mappa import registered_late
from domain.nominal import Nominal
from projections.review_schedule import review_due
from projections.runner import PROJECTIONS

TABLES = tuple(t.name for p in PROJECTIONS for t in p.tables)


def dump(engine: Engine) -> dict[str, list[tuple]]:
    """Every row of every read-model table, in a stable order."""
    out = {}
    with engine.connect() as conn:
        for table in TABLES:
            rows = conn.execute(text(f"SELECT * FROM {table}")).all()  # noqa: S608
            out[table] = sorted((tuple(r) for r in rows), key=repr)
    return out


def observed(engine: Engine, nominal_id: UUID) -> dict[str, Any]:
    """One record's rows, in the shape `expected` gives."""
    p = {"id": nominal_id}
    with engine.connect() as c:

        def q(sql: str) -> list[Any]:
            return [tuple(r) for r in c.execute(text(sql), p).all()]

        return {
            "nominal": q(
                "SELECT version, events_applied, area, category, level, lead_agency, status,"
                " custody_status, custody_establishment, expected_release_on, registered_by"
                " FROM rm_nominals WHERE nominal_id = :id"
            ),
            "partners": sorted(
                q(
                    "SELECT agency, by_agency FROM rm_partnerships"
                    " WHERE nominal_id = :id AND until IS NULL"
                )
            ),
            "past_partners": q(
                "SELECT agency, by_agency, ended_by FROM rm_partnerships"
                " WHERE nominal_id = :id AND until IS NOT NULL ORDER BY until, agency"
            ),
            "officers": sorted(q("SELECT agency FROM rm_officers WHERE nominal_id = :id")),
            "meetings": sorted(
                q("SELECT meeting_id, level, held_on FROM rm_meetings WHERE nominal_id = :id")
            ),
            "attendance": sorted(
                q(
                    "SELECT meeting_id, agency, invited, attended, apologies"
                    " FROM rm_attendance WHERE nominal_id = :id"
                )
            ),
            "minutes": sorted(
                q(
                    "SELECT CAST(event_id AS text), meeting_id, due_on,"
                    " working_days_taken, late FROM rm_minutes WHERE nominal_id = :id"
                )
            ),
            "referrals": sorted(
                q(
                    "SELECT referral_id, requested_level, decision, decided_on"
                    " FROM rm_referrals WHERE nominal_id = :id"
                )
            ),
            "actions": sorted(
                q(
                    "SELECT action_id, assigned_agency, due_on, completed_on"
                    " FROM rm_actions WHERE nominal_id = :id"
                )
            ),
            "disclosures": sorted(
                q(
                    "SELECT CAST(event_id AS text), meeting_id, decision, decided_on"
                    " FROM rm_disclosure_decisions WHERE nominal_id = :id"
                )
            ),
            "reviews": q(
                "SELECT level, last_meeting_on, level1_since, review_due"
                " FROM rm_review_schedule WHERE nominal_id = :id"
            ),
            "gaps": q(
                "SELECT prison_not_partnered, no_lead_agency, no_police_offender_manager,"
                " latest_meeting_level, level_mismatch FROM rm_partnering_gaps"
                " WHERE nominal_id = :id"
            ),
            "registration": q(
                "SELECT sentence_date, late FROM rm_registrations WHERE nominal_id = :id"
            ),
            "areas": q(
                "SELECT version, type, area FROM rm_event_areas WHERE nominal_id = :id"
                " ORDER BY version"
            ),
        }


def _d(value: str | None) -> date | None:
    return date.fromisoformat(value) if value else None


def expected(n: Nominal) -> dict[str, Any]:
    """What the read models must hold for a record, from the aggregate's own fold."""
    registered_on = london_date(n.created_on)
    reviewed = [_d(r["reviewed_on"]) for r in n.level1_reviews]
    level1_since = max([registered_on, *reviewed])
    held = [_d(m["held_on"]) for m in n.meetings.values()]
    last_meeting = max(held) if held else None
    custody = n.custody or {}
    sentence = _d(n.sentence_date)
    attendance = []
    for m in n.meetings.values():
        invited, apologies = set(m.get("invited") or []), set(m.get("apologies") or [])
        attended = {a["agency"] for a in m.get("attended") or []}
        for agency in invited | attended | apologies:
            attendance.append(
                (
                    m["meeting_id"],
                    agency,
                    agency in invited,
                    agency in attended,
                    agency in apologies,
                )
            )
    in_custody = custody.get("status") in ("received", "transferred")
    latest = list(n.meetings.values())[-1]["level"] if n.meetings else None
    gaps = (
        in_custody and custody.get("establishment") not in n.partners,
        n.lead_agency is None,
        n.level >= 2 and not any(a.startswith("police:") for a in n.officers),
        latest,
        latest is not None and latest != n.level,
    )
    return {
        "gaps": [gaps],
        "nominal": [
            (
                n.version,
                n.version,
                n.area,
                n.category,
                n.level,
                n.lead_agency,
                "deregistered" if n.deregistered else "active",
                custody.get("status"),
                custody.get("establishment"),
                _d(custody.get("expected_release_on")),
                n.registered_by["agency"],
            )
        ],
        "partners": sorted((a, p["by"]) for a, p in n.partners.items()),
        "past_partners": [(p["agency"], p["by"], p["ended_by"]) for p in n.past_partners],
        "officers": sorted((a,) for a in n.officers),
        "meetings": sorted(
            (m["meeting_id"], m["level"], _d(m["held_on"])) for m in n.meetings.values()
        ),
        "attendance": sorted(attendance),
        "minutes": sorted(
            (m["event_id"], m["meeting_id"], _d(m["due_on"]), m["working_days_taken"], m["late"])
            for m in n.minutes
        ),
        "referrals": sorted(
            (
                r["referral_id"],
                r["requested_level"],
                (r["decision"] or {}).get("decision"),
                _d((r["decision"] or {}).get("decided_on")),
            )
            for r in n.referrals.values()
        ),
        "actions": sorted(
            (a["action_id"], a["assigned_agency"], _d(a["due_on"]), _d(a["completed_on"]))
            for a in n.actions.values()
        ),
        "disclosures": sorted(
            (d["event_id"], d.get("meeting_id"), d["decision"], _d(d["decided_on"]))
            for d in n.disclosure_decisions
        ),
        "reviews": [
            (n.level, last_meeting, level1_since, review_due(n.level, last_meeting, level1_since))
        ],
        "registration": [(sentence, registered_late(sentence, n.created_on) if sentence else None)],
        "areas": _event_areas(n),
    }


def _event_areas(n: Nominal) -> list[tuple[int, str, str]]:
    """Each event's (version, type, area): the area the record was in when it was recorded,
    a move counted in the area it left."""
    types = {e["version"]: e["type"] for e in n.event_log.values()}
    moves = {
        n.event_log[a["event_id"]]["version"]: a["area"]
        for a in n.area_history[1:]
        if a.get("event_id") in n.event_log
    }
    area, rows = n.area_history[0]["area"], []
    for version in range(1, n.version + 1):
        rows.append((version, types[version], area))
        area = moves.get(version, area)
    return rows
