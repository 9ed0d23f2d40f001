"""A realistic demonstration data set, loaded through the same service calls as the API.

Each demo nominal gets a plausible life: registration by police, probation or a prison;
partnering; an offender manager; entries, restrictions and risk assessments; at levels 2 and
3, meetings with attendance, minutes posted on time or late, disclosure decisions and actions;
referrals, custody moves and level 1 reviews. Some records keep the gaps the inspections found
(no lead agency, a prison holding someone without being partnered, minutes posted late).
Event ids derive from the seed, so running the demo twice stores nothing twice.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from datetime import date, timedelta
from typing import Any
from uuid import NAMESPACE_URL, UUID, uuid5

from domain.identifiers import CHECK_LETTERS
from domain.mappa import AREAS
from service.auth import Principal
from service.records import NewEvent, Records

WRITE = frozenset({"records:read", "records:write"})
FAMILY = [
    "Ashdown",
    "Barker",
    "Carrow",
    "Dunmore",
    "Ellery",
    "Fairbank",
    "Garside",
    "Holt",
    "Ingram",
    "Jessop",
    "Kershaw",
    "Lomax",
    "Marsh",
    "Norcott",
    "Oakes",
    "Pryor",
]
GIVEN = ["Alex", "Jordan", "Sam", "Chris", "Lee", "Robin", "Jamie", "Terry", "Dale", "Kim"]


def _principal(agency: str) -> Principal:
    return Principal(sub=f"demo-{agency.replace(':', '-')}", agency=agency, scopes=WRITE)


def _pnc(rng: random.Random) -> str:
    year = rng.randint(0, 25)
    serial = rng.randint(1, 9_999_999)
    return f"20{year:02d}/{serial:07d}{CHECK_LETTERS[(year * 10**7 + serial) % 23]}"


class _Story:
    """Posts one nominal's events in order, with deterministic event ids."""

    def __init__(self, records: Records, seed: str, nominal_id: UUID) -> None:
        self.records = records
        self.seed = seed
        self.nominal_id = nominal_id
        self.count = 0

    def post(self, agency: str, type_: str, occurred: date, payload: dict[str, Any]) -> None:
        self.count += 1
        event_id = uuid5(NAMESPACE_URL, f"{self.seed}/{self.count}")
        self.records.post_event(
            _principal(agency),
            self.nominal_id,
            NewEvent(event_id, type_, occurred.isoformat(), payload),
            None,
        )


def load_demo(
    records: Records,
    *,
    nominals: int = 200,
    seed: int = 2026,
    today: date,
    progress: Callable[[int], None] = lambda _: None,
) -> int:
    """Load `nominals` demo records; returns how many events the service stored or found."""
    rng = random.Random(seed)  # noqa: S311 - demonstration data, not secrets
    areas = sorted(AREAS)
    total = 0
    for i in range(nominals):
        area = rng.choice(areas)
        police, probation = f"police:{area}", f"probation:{area}"
        registrar = rng.choice([police, probation, probation])
        category = rng.choices([1, 2, 3, 4], weights=[70, 25, 4, 1])[0]
        level = 1 if category != 3 and rng.random() < 0.9 else rng.choice([2, 3])
        sentenced = today - timedelta(days=rng.randint(30, 900))
        lead = None if rng.random() < 0.08 else probation
        registration_id = uuid5(NAMESPACE_URL, f"demo-{seed}/{i}/registration")
        posted = records.register(
            _principal(registrar),
            registration_id,
            sentenced.isoformat(),
            {
                "identifiers": {"pnc": _pnc(rng), "crn": f"D{rng.randint(0, 999_999):06d}"},
                "name": {"family": rng.choice(FAMILY), "given": [rng.choice(GIVEN)]},
                "aliases": [],
                "date_of_birth": (
                    today - timedelta(days=rng.randint(20 * 365, 70 * 365))
                ).isoformat(),
                "gender": rng.choice(["male", "male", "male", "female"]),
                "area": area,
                "category": category,
                "level": level,
                "lead_agency": lead,
                "sentence_date": sentenced.isoformat(),
                "offence_summary": "Demonstration record: no real person.",
            },
        )
        story = _Story(records, f"demo-{seed}/{i}", UUID(posted.nominal_id))
        for partner in (police, probation):
            if partner not in (registrar, lead):
                story.post(
                    registrar,
                    "AgencyPartnered",
                    sentenced,
                    {"agency": partner, "reason": "Responsible Authority for the area"},
                )
        story.post(
            police,
            "OfficerAssigned",
            sentenced,
            {
                "agency": police,
                "officer": {
                    "name": f"DC {rng.choice(FAMILY)}",
                    "role": "offender manager",
                    "contact": "0300 000 0000",
                },
                "supervisor": {"name": f"DS {rng.choice(FAMILY)}", "contact": "0300 000 0001"},
            },
        )
        story.post(
            probation,
            "RiskAssessmentRecorded",
            sentenced + timedelta(days=14),
            {
                "tool": "OASys",
                "rosh_level": rng.choice(["medium", "high", "very_high"]),
                "score": round(rng.uniform(10, 90), 1),
                "assessed_on": (sentenced + timedelta(days=14)).isoformat(),
                "authorised_by": None,
            },
        )
        story.post(
            police,
            "EntryRecorded",
            sentenced + timedelta(days=20),
            {
                "entry_type": "visit",
                "subject": "Home visit",
                "body": "Visited the registered address; compliant with notification requirements.",
            },
        )
        if rng.random() < 0.5:
            prison = f"prison:{rng.choice(['LEI', 'NMI', 'WDI', 'HMI', 'LPI'])}"
            story.post(
                probation,
                "CustodyChanged",
                sentenced,
                {
                    "status": "received",
                    "establishment": prison,
                    "expected_release_on": (
                        today + timedelta(days=rng.randint(60, 700))
                    ).isoformat(),
                },
            )
            if rng.random() < 0.6:  # a third-ish of prisons not partnered, as found (000, 5.35)
                story.post(
                    probation,
                    "AgencyPartnered",
                    sentenced,
                    {"agency": prison, "reason": "holds the person"},
                )
        if level >= 2:
            _multi_agency_management(story, rng, level, police, probation, area, today)
        else:
            story.post(
                probation,
                "Level1ReviewRecorded",
                today - timedelta(days=rng.randint(1, 200)),
                {
                    "reviewed_on": (today - timedelta(days=rng.randint(1, 200))).isoformat(),
                    "outcome": "remain_level_1",
                    "reviewers": [police, probation],
                    "notes": None,
                },
            )
        total += story.count + 1
        progress(i + 1)
    return total


def _multi_agency_management(
    story: _Story,
    rng: random.Random,
    level: int,
    police: str,
    probation: str,
    area: str,
    today: date,
) -> None:
    mappa = f"mappa:{area}"
    story.post(
        police,
        "AgencyPartnered",
        today - timedelta(days=200),
        {"agency": mappa, "reason": "managed at level 2 or 3"},
    )
    for m in range(rng.randint(1, 3)):
        held = today - timedelta(days=rng.randint(10, 300))
        meeting_id = f"M-{m + 1}"
        story.post(
            mappa,
            "MeetingHeld",
            held,
            {
                "meeting_id": meeting_id,
                "level": level,
                "held_on": held.isoformat(),
                "chair": "MAPPA coordinator",
                "invited": [police, probation],
                "attended": [{"agency": police, "name": "DS Holt", "role": "offender manager"}],
                "apologies": [probation] if rng.random() < 0.2 else [],
                "cppc_considered": level == 3,
            },
        )
        story.post(
            mappa,
            "MinutesUploaded",
            held,
            {
                "meeting_id": meeting_id,
                "meeting_date": held.isoformat(),
                "level": level,
                "document": {
                    "sha256": f"{rng.getrandbits(256):064x}",
                    "filename": "minutes.pdf",
                    "media_type": "application/pdf",
                    "size": rng.randint(20_000, 400_000),
                },
            },
        )
        if rng.random() < 0.7:  # disclosure decisions missing for some meetings (000, 5.23)
            story.post(
                mappa,
                "DisclosureDecisionRecorded",
                held,
                {
                    "meeting_id": meeting_id,
                    "decision": rng.choice(["do_not_disclose", "defer"]),
                    "recipient": None,
                    "rationale": "Considered at the meeting; no current need.",
                    "decided_on": held.isoformat(),
                },
            )
        action_id = f"A-{m + 1}"
        story.post(
            mappa,
            "ActionSet",
            held,
            {
                "action_id": action_id,
                "meeting_id": meeting_id,
                "description": "Check the address history with housing",
                "assigned_agency": police,
                "due_on": (held + timedelta(days=28)).isoformat(),
            },
        )
        if rng.random() < 0.6:
            story.post(
                police,
                "ActionCompleted",
                held + timedelta(days=20),
                {
                    "action_id": action_id,
                    "outcome": "Address confirmed; no concerns.",
                    "completed_on": (held + timedelta(days=20)).isoformat(),
                },
            )
