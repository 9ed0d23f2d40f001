"""A realistic demonstration data set, loaded through the same service calls as the API.

Each demo nominal gets a plausible life: registration by police, probation or a prison;
partnering; an offender manager; entries, restrictions and risk assessments; at levels 2 and
3, meetings with attendance, minutes posted on time or late, disclosure decisions and
actions; referrals, custody moves and level 1 reviews. Then what years on the record bring
(docs/design.md#lifecycles), in proportions drawn from the source reports where they give
one: identifiers learnt later and corrected, personal details corrected, aliases, addresses,
orders varied and ended, moves between areas, breaches, recalls and further offences,
whether the person was told they are managed under MAPPA (004: 55% were not), critical cases
at level 3, and counter-terrorism entries restricted to the unit that holds them. Some
records keep the gaps the inspections found (no lead agency, a prison holding someone
without being partnered, minutes posted late). Event ids derive from the seed, so running
the demo twice stores nothing twice."""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any
from uuid import NAMESPACE_URL, UUID, uuid5

from domain.identifiers import CHECK_LETTERS
from domain.mappa import AREAS
from service.auth import Principal
from service.payloads import PAYLOADS
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

    def post(self, agency: str, type_: str, occurred: date, payload: dict[str, Any]) -> UUID:
        """Post the event (or find it, stored by an earlier run); its event id."""
        self.count += 1
        event_id = uuid5(NAMESPACE_URL, f"{self.seed}/{self.count}")
        self.records.post_event(
            _principal(agency),
            self.nominal_id,
            NewEvent(event_id, type_, occurred.isoformat(), payload),
            None,
        )
        return event_id

    def posted(self, agency: str, type_: str, occurred: date, payload: dict[str, Any]) -> UUID:
        """`post`, the payload first held to a post's schema (service/payloads.py)."""
        checked = PAYLOADS[type_].model_validate(payload).model_dump(mode="json")
        return self.post(agency, type_, occurred, checked)


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
        crn = f"D{rng.randint(0, 999_999):06d}"
        posted = records.register(
            _principal(registrar),
            registration_id,
            sentenced.isoformat(),
            {
                "identifiers": {"pnc": _pnc(rng), "crn": crn},
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
        in_custody = rng.random() < 0.5
        if in_custody:
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
        # Its own generator, so the records above are as they were before section 3.1.
        life = random.Random(f"demo-{seed}/{i}/later")  # noqa: S311 - demonstration data
        _later_years(
            story,
            life,
            _Person(area, police, probation, category, level, crn, in_custody, sentenced),
            today,
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


@dataclass(frozen=True)
class _Person:
    area: str
    police: str
    probation: str
    category: int
    level: int
    crn: str
    in_custody: bool
    sentenced: date


# ONS 2021 groups, weighted roughly as the people on probation caseloads in England and Wales.
_ETHNICITY_WEIGHTS = {
    "white_british": 70,
    "white_other": 6,
    "white_irish": 1,
    "white_gypsy_or_irish_traveller": 1,
    "black_caribbean": 3,
    "black_african": 3,
    "black_other": 1,
    "asian_pakistani": 3,
    "asian_indian": 2,
    "asian_bangladeshi": 1,
    "asian_other": 1,
    "mixed_white_black_caribbean": 2,
    "mixed_other": 1,
    "other_any": 1,
    "not_stated": 4,
}


def _noms(rng: random.Random) -> str:
    letters = "ABCDEFGHJKLMNPRSTUVWXYZ"
    return f"{rng.choice('AG')}{rng.randint(0, 9999):04d}{rng.choice(letters)}{rng.choice(letters)}"


def _later_years(story: _Story, rng: random.Random, p: _Person, today: date) -> None:
    """What years on the record bring (docs/design.md#lifecycles), in believable proportions."""
    since = p.sentenced + timedelta(days=30)
    if p.in_custody or rng.random() < 0.2:  # the NOMS number learnt after registration
        story.posted(p.probation, "IdentifierAdded", since, {"kind": "noms", "value": _noms(rng)})
    if rng.random() < 0.03:  # a CRN mistyped at registration
        right = f"C{rng.randint(0, 999_999):06d}"
        story.posted(
            p.probation,
            "IdentifierCorrected",
            since,
            {"kind": "crn", "from": p.crn, "to": right, "rationale": "Mistyped at registration"},
        )
    if rng.random() < 0.55:
        ethnicity = rng.choices(list(_ETHNICITY_WEIGHTS), weights=list(_ETHNICITY_WEIGHTS.values()))
        story.posted(
            p.probation,
            "PersonalDetailsCorrected",
            since,
            {"ethnicity": ethnicity[0], "rationale": "Self-declared at induction"},
        )
    if rng.random() < 0.05:
        born = today - timedelta(days=rng.randint(20 * 365, 70 * 365))
        story.posted(
            p.police,
            "PersonalDetailsCorrected",
            since,
            {"date_of_birth": born.isoformat(), "rationale": "Day and month swapped at intake"},
        )
    if rng.random() < 0.12:
        alias = {"family": rng.choice(FAMILY), "given": [rng.choice(GIVEN)]}
        story.posted(p.police, "AliasAdded", since, {"alias": alias})
        if rng.random() < 0.15:
            story.posted(
                p.police,
                "AliasRemoved",
                since + timedelta(days=60),
                {"alias": alias, "rationale": "Another person's name, recorded in error"},
            )
    _addresses(story, rng, p, today)
    _orders(story, rng, p, today)
    if rng.random() < 0.45:  # 004: 55% of those interviewed did not know
        story.posted(
            p.probation,
            "MappaStatusExplained",
            since,
            {
                "explained_on": since.isoformat(),
                "by": p.probation,
                "level_explained": p.level,
                "views_sought": rng.random() < 0.6,
            },
        )
    if p.level == 3 and rng.random() < 0.25:  # the critical few of the critical few
        mappa = f"mappa:{p.area}"
        on = today - timedelta(days=rng.randint(10, 120))
        story.posted(
            mappa,
            "CriticalCaseRegistered",
            on,
            {"on": on.isoformat(), "rationale": "Imminent risk to a known victim; resources"},
        )
        if rng.random() < 0.3:
            story.posted(
                mappa,
                "CriticalCaseEnded",
                today,
                {"on": today.isoformat(), "rationale": "Risk reduced after relocation"},
            )
    if p.category == 4:  # counter-terrorism material, for the unit that holds it (000, 6.32)
        unit = "police:counter-terrorism-policing"
        story.posted(p.police, "AgencyPartnered", since, {"agency": unit, "reason": "CT lead"})
        story.posted(
            p.police,
            "EntryRecorded",
            since,
            {
                "entry_type": "intelligence",
                "subject": "Counter-terrorism assessment",
                "body": "Demonstration text: no real intelligence.",
                "restricted_to": [unit],
            },
        )
    _outcomes(story, rng, p, today)
    if rng.random() < 0.04:  # a move between areas, handed over (004)
        to_area = rng.choice(sorted(AREAS - {p.area}))
        request = story.posted(
            p.probation,
            "AreaTransferRequested",
            today,
            {
                "to_area": to_area,
                "receiving": f"mappa:{to_area}",
                "rationale": "Moving to live with family",
                "handover_meeting_on": (today + timedelta(days=14)).isoformat(),
            },
        )
        if rng.random() < 0.7:
            story.posted(
                f"mappa:{to_area}",
                "AreaTransferAccepted",
                today,
                {"transfer": str(request), "accepted_on": today.isoformat()},
            )


def _addresses(story: _Story, rng: random.Random, p: _Person, today: date) -> None:
    if rng.random() < 0.3:
        return
    street = f"{rng.randint(1, 200)} {rng.choice(FAMILY)} Road"
    story.posted(
        p.police,
        "AddressRecorded",
        p.sentenced,
        {
            "kind": "home",
            "lines": [street, "Demonstration Town"],
            "postcode": f"DE{rng.randint(1, 99)} {rng.randint(1, 9)}XX",
            "from_date": (p.sentenced - timedelta(days=rng.randint(30, 2000))).isoformat(),
        },
    )
    if rng.random() < 0.25:  # released to approved premises
        moved = today - timedelta(days=rng.randint(1, 25))
        story.posted(
            p.probation,
            "AddressRecorded",
            moved,
            {
                "kind": "approved_premises",
                "lines": ["Demonstration Approved Premises"],
                "postcode": f"DE{rng.randint(1, 99)} {rng.randint(1, 9)}AP",
                "from_date": moved.isoformat(),
            },
        )


def _orders(story: _Story, rng: random.Random, p: _Person, today: date) -> None:
    if p.category == 1 or rng.random() < 0.3:
        kind = "notification_requirements" if p.category == 1 else "licence_condition"
        starts = p.sentenced
        ends_on = (starts + timedelta(days=rng.choice([365, 5 * 365, 10 * 365]))).isoformat()
        order = story.posted(
            p.police,
            "RestrictionRecorded",
            starts,
            {
                "kind": kind if rng.random() < 0.6 else "SHPO",
                "details": "No unsupervised contact with children under 16",
                "starts_on": starts.isoformat(),
                "ends_on": ends_on,
            },
        )
        in_force = date.fromisoformat(ends_on) >= today
        if in_force and rng.random() < 0.1:
            story.posted(
                p.police,
                "RestrictionVaried",
                today,
                {
                    "restriction": str(order),
                    "details": "No contact with children under 16; no use of devices unmonitored",
                    "rationale": "Varied on application by the police",
                },
            )
        elif rng.random() < 0.1:
            story.posted(
                p.probation,
                "RestrictionEnded",
                today,
                {"restriction": str(order), "ended_on": today.isoformat(), "reason": "discharged"},
            )


def _outcomes(story: _Story, rng: random.Random, p: _Person, today: date) -> None:
    if rng.random() < 0.08:
        on = today - timedelta(days=rng.randint(1, 90))
        action = rng.choice(["warning", "warning", "recall", "arrest", "none"])
        of = "licence" if p.category != 1 else "notification_requirements"
        story.posted(
            p.probation,
            "BreachRecorded",
            on,
            {"of": of, "occurred_on": on.isoformat(), "action": action},
        )
        if action == "recall":
            story.posted(
                p.probation,
                "RecallRecorded",
                on,
                {"recalled_on": on.isoformat(), "reason": "Breach of licence conditions"},
            )
    if rng.random() < 0.03:
        on = today - timedelta(days=rng.randint(1, 200))
        story.posted(
            p.police,
            "FurtherOffenceRecorded",
            on,
            {
                "offence_summary": "Demonstration: a further offence",
                "charged_on": on.isoformat(),
                "outcome": rng.choice(["charged", "convicted", "nfa"]),
                "serious": rng.random() < 0.15,
            },
        )
