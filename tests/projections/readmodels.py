"""Helpers for comparing read models: what the tables hold, and what a fold implies."""

from __future__ import annotations

from datetime import date
from typing import Any
from uuid import UUID

from sqlalchemy import Engine, text

from domain.agencies import is_responsible_authority
from domain.calendar import london_date
from domain.mappa import first_silent_day, registered_late
from domain.nominal import Nominal
from projections import current_view
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
                " custody_status, custody_establishment, expected_release_on, registered_by,"
                " custody_since, gender, ethnicity, born_in"
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
                "SELECT version, type, area, category, level FROM rm_event_areas"
                " WHERE nominal_id = :id ORDER BY version"
            ),
            "plans": q(
                "SELECT plan_on, meeting_on, level_changed_on, restriction_on FROM rm_plans"
                " WHERE nominal_id = :id"
            ),
            "recording": q(
                "SELECT agency, partnered, last_sign_on, last_posted_on, silent_from"
                " FROM rm_recording WHERE nominal_id = :id ORDER BY agency"
            ),
            "silences": q(
                "SELECT agency, silent_from, until, last_posted_on FROM rm_silences"
                " WHERE nominal_id = :id ORDER BY agency, silent_from"
            ),
            "required": q(
                "SELECT referral_id, agency, meeting_id, invited FROM rm_required_invitations"
                " WHERE nominal_id = :id ORDER BY referral_id, agency"
            ),
            "outcomes": q(
                "SELECT version, kind, detail, serious, occurred_on FROM rm_outcomes"
                " WHERE nominal_id = :id ORDER BY version"
            ),
        }


def _d(value: str | None) -> date | None:
    return date.fromisoformat(value) if value else None


def expected(n: Nominal, events: list[Any]) -> dict[str, Any]:
    """What the read models must hold for a record, from the aggregate's own fold (and, for
    what the aggregate does not keep, such as the days its level fell to 1, its events)."""
    registered_on = london_date(n.created_on)
    reviewed = [_d(r["reviewed_on"]) for r in n.level1_reviews]
    fell_to_1 = [
        _d(e.payload["decided_on"])
        for e in events
        if e.type == "LevelChanged" and e.payload["to"] == 1 and e.payload["from"] != 1
    ]
    level1_since = max([registered_on, *reviewed, *fell_to_1])
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
                _custody_since(events),
                current_view.gender(n.gender),
                n.ethnicity,
                current_view.born_in(n.date_of_birth),
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
        "areas": _event_areas(n, events),
        "plans": [_plans(events)],
        **_recording(events),
        "required": _required(events),
        "outcomes": _outcomes(n),
    }


def _event_areas(n: Nominal, events: list[Any]) -> list[tuple[int, str, str, int, int]]:
    """Each event's (version, type, area, category, level): the area the record was in when
    it was recorded (a move counted in the area it left), and its category and level then
    (a change counted at the new value)."""
    types = {e["version"]: e["type"] for e in n.event_log.values()}
    moves = {
        n.event_log[a["event_id"]]["version"]: a["area"]
        for a in n.area_history[1:]
        if a.get("event_id") in n.event_log
    }
    area, rows = n.area_history[0]["area"], []
    category = level = 0
    for version, e in zip(range(1, n.version + 1), events, strict=True):
        if e.type == "NominalRegistered":
            category, level = e.payload["category"], e.payload["level"]
        category = e.payload["to"] if e.type == "CategoryChanged" else category
        level = e.payload["to"] if e.type == "LevelChanged" else level
        rows.append((version, types[version], area, category, level))
        area = moves.get(version, area)
    return rows


def _custody_since(events: list[Any]) -> Any:
    since = None
    for e in events:
        if e.type == "CustodyChanged":
            held = e.payload["status"] in ("received", "transferred")
            since = (since or e.timestamp) if held else None
    return since


def _plans(events: list[Any]) -> tuple[Any, ...]:
    def latest(kind: str, when: Any) -> date | None:
        return max((when(e) for e in events if e.type == kind), default=None)

    return (
        latest("RiskManagementPlanUpdated", lambda e: london_date(e.timestamp)),
        latest("MeetingHeld", lambda e: _d(e.payload["held_on"])),
        latest("LevelChanged", lambda e: _d(e.payload["decided_on"])),
        latest("RestrictionRecorded", lambda e: london_date(e.timestamp)),
    )


def _recording(events: list[Any]) -> dict[str, list[tuple[Any, ...]]]:
    """Each Responsible Authority partner's last signs and the silences that ended, folded
    from the events by the rule itself (a sign: a posting, or partnering)."""
    rows: dict[str, dict[str, Any]] = {}
    ended: list[tuple[Any, ...]] = []

    def row(agency: str) -> dict[str, Any]:
        return rows.setdefault(
            agency, {"partnered": False, "sign": None, "posted": None, "silent": None}
        )

    def close(agency: str, on: date) -> None:
        r = row(agency)
        if r["partnered"] and r["silent"] is not None and r["silent"] <= on:
            ended.append((agency, r["silent"], on, r["posted"]))

    def sign(agency: str, on: date, posting: bool) -> None:
        r = row(agency)
        close(agency, on)
        r["sign"] = max(r["sign"] or on, on)
        r["posted"] = max(r["posted"] or on, on) if posting else r["posted"]
        r["silent"] = first_silent_day(r["sign"]) if r["partnered"] else None

    def partner(agency: str | None, on: date) -> None:
        if agency and is_responsible_authority(agency) and not row(agency)["partnered"]:
            row(agency)["partnered"] = True
            sign(agency, on, posting=False)

    for e in events:
        on = london_date(e.timestamp)
        if e.type == "NominalRegistered":
            for agency in dict.fromkeys([e.recorded_by["agency"], e.payload.get("lead_agency")]):
                partner(agency, on)
        if e.type == "AgencyPartnered":
            partner(e.payload["agency"], on)
        if e.type == "PartneringEnded" and row(e.payload["agency"])["partnered"]:
            close(e.payload["agency"], on)
            rows[e.payload["agency"]] |= {"partnered": False, "silent": None}
        if is_responsible_authority(e.recorded_by["agency"]):
            sign(e.recorded_by["agency"], on, posting=True)
    return {
        "recording": [
            (a, r["partnered"], r["sign"], r["posted"], r["silent"])
            for a, r in sorted(rows.items())
            if is_responsible_authority(a)
        ],
        "silences": sorted(ended),
    }


def _required(events: list[Any]) -> list[tuple[str, str, str | None, bool | None]]:
    """The agencies each referral requires, and whether the next meeting invited them."""
    waiting: dict[tuple[str, str], Any] = {}
    judged: dict[tuple[str, str], tuple[str, bool]] = {}
    for e in events:
        p = e.payload
        if e.type == "ReferralMade":
            for i in p["agencies_to_invite"]:
                waiting[(p["referral_id"], i["agency"])] = london_date(e.timestamp)
        if e.type == "ReferralDecided" and p["decision"] == "level_1":
            waiting = {k: v for k, v in waiting.items() if k[0] != p["referral_id"]}
        if e.type == "MeetingHeld":
            for key, referred_on in list(waiting.items()):
                if _d(p["held_on"]) >= referred_on:
                    judged[key] = (p["meeting_id"], key[1] in (p.get("invited") or []))
                    del waiting[key]
    rows = [(r, a, m, i) for (r, a), (m, i) in judged.items()]
    rows += [(r, a, None, None) for (r, a) in waiting]
    return sorted(rows)


def _outcomes(n: Nominal) -> list[tuple[int, str, str | None, bool, date | None]]:
    def version(item: dict[str, Any]) -> int:
        return n.event_log[item["event_id"]]["version"]

    rows = [(version(b), "breach", b["action"], False, _d(b["occurred_on"])) for b in n.breaches]
    rows += [(version(r), "recall", None, False, _d(r["recalled_on"])) for r in n.recalls]
    rows += [
        (version(f), "further_offence", f["outcome"], f["serious"], _d(f["charged_on"]))
        for f in n.further_offences
    ]
    return sorted(rows)
