"""A national-scale synthetic data set for `import_eps`: realistic histories, valid by construction.

`generate(nominals=100_000)` yields about 3.8 million events, one dict per NDJSON line, each
nominal's history contiguous and in order (the shape of ADR 006). Every line is one that
the service would accept: payloads match `api/schemas.py`, the poster is a current partner
allowed by `service/access.py` to post that type, and the aggregate's invariants hold (a
test folds a sample through `Nominal` and the access table). The data is deterministic:
nominal i's history depends only on (seed, i), so a shard or a resumed run yields the same
lines.

    python -m bench.import_ --small --out /tmp/small.ndjson    # 1,000 nominals
    python -m bench.import_ --out /tmp/national.ndjson.gz       # 100,000 nominals, ~2 GB raw
    python -m bench.import_ --out - | mappa-record import -     # streamed, nothing on disk
"""

from __future__ import annotations

import argparse
import contextlib
import gzip
import hashlib
import multiprocessing
import os
import random
import sys
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any, TextIO

import orjson

from bench.capabilities import cli_commands
from bench.environment import Workspace, run_command
from bench.figures import Results
from domain.calendar import add_working_days
from domain.identifiers import CHECK_LETTERS
from domain.mappa import AREAS
from service.records import NOMINAL_NAMESPACE

NATIONAL = 100_000  # about the number under MAPPA today (65,083 at 31 March 2014, rising)
SMALL = 1_000
FIRST_REGISTRATION = date(2016, 1, 4)
UNTIL = date(2026, 11, 2)  # the data set stops here, whatever day it is generated

AREA_LIST = sorted(AREAS)
PRISONS = ["LEI", "BMI", "MDI", "WSI", "HMI", "NMI", "LWI", "DMI", "PVI", "WWI", "FMI", "SFI"]
LETTERS = "ABCDEFGHJKLMNPRSTUVWXYZ"
FAMILY = [
    "Smith",
    "Jones",
    "Taylor",
    "Brown",
    "Williams",
    "Wilson",
    "Davies",
    "Evans",
    "Thomas",
    "Roberts",
    "Walker",
    "Wright",
    "Robinson",
    "Thompson",
    "White",
    "Hughes",
    "Edwards",
]
GIVEN = [
    "Sam",
    "Alex",
    "Chris",
    "Jordan",
    "Lee",
    "Daniel",
    "Mark",
    "Paul",
    "John",
    "David",
    "Michael",
    "Ryan",
    "Liam",
    "Kieran",
    "Gary",
    "Lewis",
    "Adam",
    "Craig",
]
ENTRY_TYPES = ["visit", "contact", "activity", "intelligence", "personal_details", "other"]
SENTENCE = (
    "Home visit completed; accommodation checked and consistent with licence. "
    "Discussed employment, contact with family and compliance with conditions. "
)


@dataclass
class _History:
    """One nominal's history as it is generated: the lines and the state the rules need."""

    rng: random.Random
    nominal_id: str
    area: str  # where the record started: its agencies keep these names
    lines: list[dict[str, Any]] = field(default_factory=list)
    clock: datetime = datetime(2000, 1, 1, tzinfo=UTC)
    partners: set[str] = field(default_factory=set)
    lead: str = ""
    level: int = 1
    category: int = 1
    meetings: list[str] = field(default_factory=list)
    open_actions: list[tuple[str, str, date]] = field(default_factory=list)
    entries: list[tuple[str, str]] = field(default_factory=list)  # (event_id, agency)
    prison: str | None = None  # the establishment holding the person, if in custody
    counter: int = 0
    index: int = 0
    # docs/design.md#lifecycles: what the later years of a record need to stay valid
    identifiers: dict[str, str] = field(default_factory=dict)
    noms_learnt_later: str | None = None
    restrictions: dict[str, date | None] = field(default_factory=dict)  # current: ends_on
    critical_case: bool = False
    aliases: list[dict[str, Any]] = field(default_factory=list)
    current_area: str = ""
    until: date = UNTIL

    @property
    def police(self) -> str:
        return f"police:{self.area}"

    @property
    def probation(self) -> str:
        return f"probation:{self.area}"

    @property
    def mappa(self) -> str:
        return f"mappa:{self.area}"

    def ref(self, kind: str) -> str:
        self.counter += 1
        return f"{kind}-{self.nominal_id[:8]}-{self.counter}"

    def at(self, day: date) -> None:
        """Move the clock to a working hour of `day` (never backwards)."""
        hour = self.rng.randint(8, 17)
        instant = datetime(
            day.year,
            day.month,
            day.day,
            hour,
            self.rng.randint(0, 59),
            self.rng.randint(0, 59),
            tzinfo=UTC,
        )
        self.clock = max(instant, self.clock)

    def post(
        self,
        type_: str,
        agency: str,
        payload: dict[str, Any],
        occurred: date | None = None,
        event_id: str | None = None,
    ) -> str:
        event_id = event_id or str(uuid.UUID(int=self.rng.getrandbits(128), version=4))
        self.lines.append(
            {
                "nominal_id": self.nominal_id,
                "event_id": event_id,
                "type": type_,
                "occurred_at": (occurred or self.clock.date()).isoformat(),
                "recorded_at": self.clock.strftime("%Y-%m-%dT%H:%M:%S.000Z"),
                "recorded_by": {
                    "sub": f"{agency.replace(':', '-')}-{self.rng.randint(1, 40)}",
                    "agency": agency,
                },
                "payload": payload,
            }
        )
        self.clock += timedelta(seconds=self.rng.randint(30, 600))
        return event_id

    def partner(self, agency: str, by: str, reason: str) -> None:
        if agency not in self.partners:
            self.post("AgencyPartnered", by, {"agency": agency, "reason": reason})
            self.partners.add(agency)


def identifiers_for(index: int, rng: random.Random, registered_on: date) -> dict[str, str]:
    """Identifiers unique across the data set (derived from the index) with valid check letters;
    a NOMS number for 60% (the rest learn theirs later: `noms_for`)."""
    ids = {k: v for k, v in _identifiers(index, rng, registered_on).items() if k != "spare"}
    return ids


def noms_for(index: int) -> str:
    """Nominal `index`'s NOMS number, unique across the data set."""
    noms_number = index % 10_000
    rest = index // 10_000
    prefix, suffix = LETTERS[rest // 529 % 23], LETTERS[rest // 23 % 23] + LETTERS[rest % 23]
    return f"{prefix}{noms_number:04d}{suffix}"


def corrected_crn(index: int) -> str:
    """The right CRN of nominal `index` when the one registered was mistyped: its own letter
    (Z, which the data set's registrations reach only past 22 million nominals)."""
    return f"Z{index % 1_000_000:06d}"


def _identifiers(index: int, rng: random.Random, registered_on: date) -> dict[str, str]:
    year = rng.randint(1995, registered_on.year)  # arrested before registration
    serial = index + 1
    pnc = f"{year}/{serial:07d}{CHECK_LETTERS[((year % 100) * 10**7 + serial) % 23]}"
    crn = f"{LETTERS[index // 1_000_000 % 23]}{index % 1_000_000:06d}"
    ids = {"pnc": pnc, "crn": crn}
    if rng.random() < 0.6:
        ids["noms"] = noms_for(index)
    return ids


def _category_and_level(rng: random.Random) -> tuple[int, int]:
    category = rng.choices([1, 2, 3, 4], weights=[70, 28, 1, 1])[0]
    if category == 3:
        return category, rng.choices([2, 3], weights=[85, 15])[0]
    return category, rng.choices([1, 2, 3], weights=[94, 5, 1])[0]


def nominal_history(index: int, *, seed: int = 6, until: date = UNTIL) -> list[dict[str, Any]]:
    """The lines of nominal `index`: its registration and everything that followed, in order."""
    rng = random.Random(f"{seed}:{index}")
    registration_id = str(uuid.UUID(int=rng.getrandbits(128), version=4))
    nominal_id = str(uuid.uuid5(NOMINAL_NAMESPACE, registration_id))  # as the service derives it
    h = _History(rng=rng, nominal_id=nominal_id, area=rng.choice(AREA_LIST))
    h.current_area = h.area
    h.until = until
    span = (until - FIRST_REGISTRATION).days - 30
    registered_on = FIRST_REGISTRATION + timedelta(days=rng.randint(0, span))
    h.category, h.level = _category_and_level(rng)
    registrar = rng.choices([h.probation, h.police], weights=[65, 35])[0]
    h.lead = h.probation
    h.at(registered_on)
    h.identifiers = identifiers_for(index, rng, registered_on)
    if "noms" not in h.identifiers:
        h.noms_learnt_later = noms_for(index)
    h.index = index
    h.post(
        "NominalRegistered",
        registrar,
        {
            "identifiers": dict(h.identifiers),
            "name": {"family": rng.choice(FAMILY), "given": [rng.choice(GIVEN)]},
            "aliases": [],
            "date_of_birth": date(
                rng.randint(1945, 2004), rng.randint(1, 12), rng.randint(1, 28)
            ).isoformat(),
            "gender": rng.choices(["male", "female"], weights=[96, 4])[0],
            "area": h.area,
            "category": h.category,
            "level": h.level,
            "lead_agency": h.lead,
            "sentence_date": (
                registered_on
                - timedelta(
                    days=rng.choices([0, 1, 2, 3, 4, 7, 14], weights=[30, 25, 20, 10, 6, 5, 4])[0]
                )
            ).isoformat(),
            "offence_summary": "Index offence and previous convictions as recorded by the court.",
        },
        occurred=registered_on,
        event_id=registration_id,
    )
    h.partners = {registrar, h.lead}
    h.partner(h.police, h.probation, "Police offender manager for the case")
    if h.level >= 2 or rng.random() < 0.3:
        h.partner(h.mappa, h.police, "MAPPA coordination")
    _start(h, rng)
    day = registered_on
    next_review = day + timedelta(weeks=16)
    next_assessment = day + timedelta(days=rng.randint(150, 365))
    while True:
        day = max(day + timedelta(days=rng.randint(60, 180)), h.clock.date() + timedelta(days=1))
        if day >= until:
            break
        h.at(day)
        # Level 1 reviews are good practice, not a rule (000, para 4.9): some areas lag.
        if h.level == 1 and day >= next_review and rng.random() < 0.7:
            _level1_review(h, rng, day)
            next_review = day + timedelta(weeks=16, days=rng.choice([0, 0, 0, 7, 21]))
        elif h.level >= 2 and day >= next_review:
            _meeting(h, rng, day, until)
            next_review = day + timedelta(weeks=16 if h.level == 2 else 8)
        if day >= next_assessment:
            _assessment(h, rng, day)
            next_assessment = day + timedelta(days=rng.randint(300, 700))
        if rng.random() < 0.6:
            _entry(h, rng, day)
        _maybe_something_else(h, rng, day)
        if h.lines[-1]["type"] == "NominalDeregistered":
            break
        if h.open_actions and rng.random() < 0.6:
            _complete_action(h, rng, day)
    return h.lines


def _start(h: _History, rng: random.Random) -> None:
    """What follows registration: officers, custody, restrictions, the first assessment."""
    h.post(
        "OfficerAssigned",
        h.probation,
        {
            "agency": h.probation,
            "officer": {
                "name": f"{rng.choice(GIVEN)} {rng.choice(FAMILY)}",
                "role": "Probation Officer",
                "contact": "01632 960000",
            },
            "supervisor": {
                "name": f"{rng.choice(GIVEN)} {rng.choice(FAMILY)}",
                "contact": "01632 960001",
            },
        },
    )
    if h.level >= 2 or rng.random() < 0.7:
        h.post(
            "OfficerAssigned",
            h.police,
            {
                "agency": h.police,
                "officer": {
                    "name": f"DC {rng.choice(FAMILY)}",
                    "role": "Offender Manager",
                    "contact": "01632 960100",
                },
            },
        )
    if rng.random() < 0.45:
        prison = f"prison:{rng.choice(PRISONS)}"
        if rng.random() < 0.9:  # the rest are the gap of 000, para 5.35
            h.partner(prison, h.probation, "Serving a custodial sentence")
        poster = prison if prison in h.partners else h.probation
        h.post(
            "CustodyChanged",
            poster,
            {
                "status": "received",
                "establishment": prison,
                "expected_release_on": (
                    h.clock.date() + timedelta(days=rng.randint(90, 1500))
                ).isoformat(),
            },
        )
        h.prison = prison
    _assessment(h, rng, h.clock.date())
    kinds = ["licence_condition", "notification_requirements"] + (
        ["SHPO"] if h.category == 1 else []
    )
    for kind in rng.sample(kinds, rng.randint(1, len(kinds))):
        ends_on = h.clock.date() + timedelta(days=365 * rng.randint(1, 10))
        order = h.post(
            "RestrictionRecorded",
            rng.choice([h.police, h.probation]),
            {
                "kind": kind,
                "details": f"{kind.replace('_', ' ')} as imposed",
                "starts_on": h.clock.date().isoformat(),
                "ends_on": ends_on.isoformat(),
            },
        )
        h.restrictions[order] = ends_on
    if h.level >= 2:
        _plan(h, rng)
    _first_year(h, rng)


def _assessment(h: _History, rng: random.Random, day: date) -> None:
    tool, agency = rng.choice([("OASys", h.probation), ("RM2000", h.police), ("OSP", h.probation)])
    h.post(
        "RiskAssessmentRecorded",
        agency,
        {
            "tool": tool,
            "rosh_level": rng.choices(
                ["low", "medium", "high", "very_high"], weights=[20, 50, 25, 5]
            )[0],
            "score": round(rng.uniform(0, 60), 1),
            "assessed_on": day.isoformat(),
        },
    )


def _plan(h: _History, rng: random.Random) -> None:
    poster = h.lead if rng.random() < 0.7 or h.mappa not in h.partners else h.mappa
    h.post(
        "RiskManagementPlanUpdated",
        poster,
        {
            "supervision": "Weekly reporting to the probation office; unannounced home visits.",
            "monitoring_and_control": "Licence conditions, exclusion zone, curfew; ViSOR checks.",
            "interventions_and_treatment": "Accredited programme; substance misuse support.",
            "victim_safety_planning": "Victim liaison officer engaged; exclusion zone set.",
            "contingency": "Recall if conditions are breached; police to attend within the hour.",
        },
    )


def _entry(h: _History, rng: random.Random, day: date) -> None:
    agency = rng.choices([h.probation, h.police], weights=[65, 35])[0]
    entry_type = rng.choice(ENTRY_TYPES)
    event_id = h.post(
        "EntryRecorded",
        agency,
        {
            "entry_type": entry_type,
            "subject": f"{entry_type.replace('_', ' ').capitalize()} on {day.isoformat()}",
            "body": SENTENCE * rng.randint(1, 4),
        },
    )
    h.entries.append((event_id, agency))


def _level1_review(h: _History, rng: random.Random, day: date) -> None:
    refer = rng.random() < 0.02
    h.post(
        "Level1ReviewRecorded",
        rng.choice([h.probation, h.police]),
        {
            "reviewed_on": day.isoformat(),
            "outcome": "refer" if refer else "remain_level_1",
            "reviewers": sorted({h.probation, h.police}),
            "notes": "Risk reviewed; management plan remains appropriate.",
        },
    )
    if refer:
        _referral(h, rng, day)


def _referral(h: _History, rng: random.Random, day: date) -> None:
    referral_id = h.ref("ref")
    payload: dict[str, Any] = {
        "referral_id": referral_id,
        "requested_level": 2,
        "reasons": "Escalating risk to a known victim needs multi-agency management.",
        "rosh_level": "high",
        "imminence": "within weeks",
        "agencies_to_invite": [
            {"agency": h.police, "why": "Offender manager"},
            {"agency": f"social-care:{h.area}", "why": "Children at the address"},
        ],
    }
    if h.prison is not None:
        payload["expected_release_on"] = (day + timedelta(days=rng.randint(60, 400))).isoformat()
    h.post("ReferralMade", h.probation, payload)
    h.partner(h.mappa, h.police, "Referred for multi-agency management")
    decided_on = day + timedelta(
        days=rng.choices([3, 7, 10, 14, 21], weights=[30, 35, 20, 10, 5])[0]
    )
    if decided_on >= h.until:
        return  # still undecided when the data set ends
    h.at(decided_on)
    decision = rng.choices(["level_2", "level_1"], weights=[75, 25])[0]
    h.post(
        "ReferralDecided",
        h.mappa,
        {
            "referral_id": referral_id,
            "decision": decision,
            "feedback": "Thank you for the referral; decision and reasons as discussed.",
            "decided_on": h.clock.date().isoformat(),
        },
    )
    if decision == "level_2":
        _change_level(h, 2, h.mappa)
        _plan(h, rng)


def _change_level(h: _History, to: int, agency: str) -> None:
    h.post(
        "LevelChanged",
        agency,
        {
            "to": to,
            "rationale": "Agreed at the MAPPA meeting",
            "decided_on": h.clock.date().isoformat(),
        },
    )
    h.level = to


def _meeting(h: _History, rng: random.Random, day: date, until: date) -> None:
    meeting_id = h.ref("mtg")
    invited = sorted({h.police, h.probation, f"social-care:{h.area}", f"housing:{h.area}"})
    attended = [a for a in invited if rng.random() < 0.85]
    h.post(
        "MeetingHeld",
        h.mappa,
        {
            "meeting_id": meeting_id,
            "level": h.level,
            "held_on": day.isoformat(),
            "chair": f"{rng.choice(GIVEN)} {rng.choice(FAMILY)}",
            "invited": invited,
            "attended": [
                {
                    "agency": a,
                    "name": f"{rng.choice(GIVEN)} {rng.choice(FAMILY)}",
                    "role": "Representative",
                }
                for a in attended
            ],
            "apologies": [a for a in invited if a not in attended and rng.random() < 0.5],
            "cppc_considered": rng.random() < 0.3 if h.level == 3 else None,
        },
        occurred=day,
    )
    if rng.random() < 0.8:
        h.post(
            "DisclosureDecisionRecorded",
            rng.choice([h.mappa, h.police]),
            {
                "meeting_id": meeting_id,
                "decision": rng.choices(
                    ["do_not_disclose", "disclose", "defer"], weights=[70, 20, 10]
                )[0],
                "recipient": "New partner at the address",
                "rationale": "Considered against the risk to identified persons.",
                "decided_on": day.isoformat(),
            },
        )
    for _ in range(rng.randint(1, 3)):
        action_id = h.ref("act")
        assigned = rng.choice([h.police, h.probation])
        due = day + timedelta(days=rng.randint(14, 60))
        h.post(
            "ActionSet",
            h.mappa,
            {
                "action_id": action_id,
                "meeting_id": meeting_id,
                "description": "Check the address and report back to the panel.",
                "assigned_agency": assigned,
                "due_on": due.isoformat(),
            },
        )
        h.open_actions.append((action_id, assigned, due))
    late = rng.random() < 0.25
    deadline = 10 if h.level == 2 else 5
    taken = rng.randint(deadline + 1, deadline + 15) if late else rng.randint(1, deadline)
    posted_on = add_working_days(day, taken)
    if posted_on < until:  # otherwise the minutes are still to come
        h.at(posted_on)
        document = f"{meeting_id}.pdf"
        h.post(
            "MinutesUploaded",
            h.mappa,
            {
                "meeting_id": meeting_id,
                "meeting_date": day.isoformat(),
                "level": h.level,
                "document": {
                    "sha256": hashlib.sha256(document.encode()).hexdigest(),
                    "filename": document,
                    "media_type": "application/pdf",
                    "size": rng.randint(40_000, 900_000),
                },
            },
            occurred=day,
        )


def _complete_action(h: _History, rng: random.Random, day: date) -> None:
    action_id, assigned, _due = h.open_actions.pop(0)
    h.post(
        "ActionCompleted",
        assigned,
        {
            "action_id": action_id,
            "outcome": "Address visited; no concerns found.",
            "completed_on": h.clock.date().isoformat(),
        },
    )


def _maybe_something_else(h: _History, rng: random.Random, day: date) -> None:
    """The rarer events, each at about the rate a real record sees them."""
    roll = rng.random()
    if roll < 0.02 and h.level >= 2 and h.category != 3:
        if h.critical_case:
            _critical_case_ended(h)
        _change_level(h, 1, h.mappa if h.mappa in h.partners else h.police)
    elif roll < 0.03 and h.prison is not None:
        status = rng.choice(["released", "transferred"])
        poster = rng.choice([h.probation, h.police])
        if status == "released":
            h.post("CustodyChanged", poster, {"status": "released"})
            if h.prison in h.partners and h.prison != h.lead:
                h.post("PartneringEnded", h.probation, {"agency": h.prison, "reason": "Released"})
                h.partners.discard(h.prison)
            h.prison = None
        else:
            to = f"prison:{rng.choice([p for p in PRISONS if f'prison:{p}' != h.prison])}"
            h.partner(to, h.probation, "Transferred")
            h.post("CustodyChanged", poster, {"status": "transferred", "establishment": to})
            h.prison = to
    elif roll < 0.035 and h.entries:
        event_id, agency = h.entries.pop(rng.randrange(len(h.entries)))
        h.post(
            "EntryRetracted",
            agency,
            {"retracts": event_id, "rationale": "Recorded on the wrong record"},
        )
    elif roll < 0.037 and h.level == 1:
        _referral(h, rng, day)
    elif roll < 0.042:
        to_area = rng.choice([a for a in AREA_LIST if a != h.current_area])
        if rng.random() < 0.5:  # the older one-step move
            h.post(
                "AreaTransferred", h.probation, {"to_area": to_area, "rationale": "Moved address"}
            )
        else:  # requested, handed over and accepted by the receiving unit (004)
            _transfer(h, rng, to_area)
        h.current_area = to_area
    elif roll < 0.044 and h.lead != h.police:
        h.post("LeadAgencyChanged", h.police, {"agency": h.police, "rationale": "Police now lead"})
        h.lead = h.police
    elif roll < 0.045 and h.category == 2 and h.level >= 1:
        h.post("CategoryChanged", h.police, {"to": 1, "rationale": "Now subject to notification"})
        h.category = 1
    elif roll < 0.046:
        h.post("NominalDeregistered", h.police, {"rationale": "Notification period ended"})
        if rng.random() < 0.2:
            h.at(min(day + timedelta(days=rng.randint(1, 10)), h.until - timedelta(days=1)))
            h.post("NominalReregistered", h.police, {"rationale": "Deregistered in error"})
    else:
        _later_years(h, rng, roll)


# -- docs/design.md#lifecycles: the later years of a record ------------------------------------

CT_UNIT = "police:counter-terrorism-policing"
INWARD_LETTERS = "ABDEFGHJLNPQRSTUWXYZ"  # the letters a postcode's inward code may use
ETHNICITIES = {  # ONS 2021 groups, weighted roughly as probation caseloads
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


def _first_year(h: _History, rng: random.Random) -> None:
    """What the first weeks add: the NOMS number learnt on reception, ethnicity declared, an
    address, the person told they are managed under MAPPA (004: 55% were not), and for
    terrorism cases counter-terrorism material restricted to the unit that holds it."""
    day = h.clock.date()
    if h.noms_learnt_later and (h.prison is not None or rng.random() < 0.3):
        h.post("IdentifierAdded", h.probation, {"kind": "noms", "value": h.noms_learnt_later})
        h.identifiers["noms"] = h.noms_learnt_later
        h.noms_learnt_later = None
    if rng.random() < 0.6:
        ethnicity = rng.choices(list(ETHNICITIES), weights=list(ETHNICITIES.values()))[0]
        h.post(
            "PersonalDetailsCorrected",
            h.probation,
            {"ethnicity": ethnicity, "rationale": "Self-declared at induction"},
        )
    if rng.random() < 0.8:
        _address(
            h, rng, "custody" if h.prison else "home", day - timedelta(days=rng.randint(0, 60))
        )
    if rng.random() < 0.45:
        h.post(
            "MappaStatusExplained",
            h.probation,
            {
                "explained_on": day.isoformat(),
                "by": h.probation,
                "level_explained": h.level,
                "views_sought": rng.random() < 0.6,
            },
        )
    if h.category == 4:
        h.partner(CT_UNIT, h.police, "Counter-terrorism lead")
        h.post(
            "EntryRecorded",
            h.police,
            {
                "entry_type": "intelligence",
                "subject": "Counter-terrorism assessment",
                "body": SENTENCE,
                "restricted_to": [CT_UNIT],
            },
        )


def _address(h: _History, rng: random.Random, kind: str, from_date: date) -> None:
    district, sector = rng.randint(1, 20), rng.randint(1, 9)
    unit = rng.choice(INWARD_LETTERS) + rng.choice(INWARD_LETTERS)
    h.post(
        "AddressRecorded",
        h.police if kind == "home" else h.probation,
        {
            "kind": kind,
            "lines": [f"{rng.randint(1, 300)} {rng.choice(FAMILY)} Road", h.current_area.title()],
            "postcode": f"LE{district} {sector}{unit}",
            "from_date": from_date.isoformat(),
        },
    )


def _transfer(h: _History, rng: random.Random, to_area: str) -> None:
    receiving = f"mappa:{to_area}"
    request = h.post(
        "AreaTransferRequested",
        h.probation,
        {"to_area": to_area, "receiving": receiving, "rationale": "Moving to live with family"},
    )
    h.at(min(h.clock.date() + timedelta(days=rng.randint(3, 30)), h.until - timedelta(days=1)))
    h.post(
        "AreaTransferAccepted",
        receiving,
        {"transfer": request, "accepted_on": h.clock.date().isoformat()},
    )
    h.partners.add(receiving)


def _critical_case_ended(h: _History) -> None:
    h.post(
        "CriticalCaseEnded",
        h.mappa,
        {"on": h.clock.date().isoformat(), "rationale": "Risk now managed at level 2"},
    )
    h.critical_case = False


def _later_years(h: _History, rng: random.Random, roll: float) -> None:
    """The rarer events of docs/design.md#lifecycles, each at about the rate a record sees them."""
    day = h.clock.date()
    current = [r for r, ends in h.restrictions.items() if ends is None or ends >= day]
    if roll < 0.056:
        of = rng.choice(["licence", "notification_requirements", *current])
        action = rng.choices(
            ["warning", "recall", "arrest", "charge", "none"], [40, 25, 15, 10, 10]
        )[0]
        h.post(
            "BreachRecorded",
            rng.choice([h.probation, h.police]),
            {"of": of, "occurred_on": day.isoformat(), "action": action},
        )
        if action == "recall" and h.prison is None:
            h.post(
                "RecallRecorded",
                h.probation,
                {"recalled_on": day.isoformat(), "reason": "Breach of licence"},
            )
    elif roll < 0.059 and current:
        order = rng.choice(current)
        ends_on = day + timedelta(days=365 * rng.randint(1, 5))
        h.post(
            "RestrictionVaried",
            h.police,
            {
                "restriction": order,
                "ends_on": ends_on.isoformat(),
                "rationale": "Varied by the court on application",
            },
        )
        h.restrictions[order] = ends_on
    elif roll < 0.062 and h.restrictions:
        order = rng.choice(sorted(h.restrictions))
        h.restrictions.pop(order)
        h.post(
            "RestrictionEnded",
            h.probation,
            {
                "restriction": order,
                "ended_on": day.isoformat(),
                "reason": rng.choice(["discharged", "expired", "replaced"]),
            },
        )
    elif roll < 0.065:
        _address(h, rng, rng.choice(["home", "temporary", "approved_premises"]), day)
    elif roll < 0.066:
        alias = {"family": rng.choice(FAMILY), "given": [rng.choice(GIVEN)]}
        if alias not in h.aliases:
            h.post("AliasAdded", h.police, {"alias": alias})
            h.aliases.append(alias)
    elif roll < 0.0665 and h.aliases:
        alias = h.aliases.pop()
        h.post("AliasRemoved", h.police, {"alias": alias, "rationale": "Recorded in error"})
    elif roll < 0.0675:
        h.post(
            "FurtherOffenceRecorded",
            h.police,
            {
                "offence_summary": "Further offence charged",
                "charged_on": day.isoformat(),
                "outcome": rng.choices(
                    ["charged", "convicted", "acquitted", "nfa"], [40, 35, 10, 15]
                )[0],
                "serious": rng.random() < 0.1,
            },
        )
    elif roll < 0.069 and h.identifiers.get("crn", "").startswith("A"):
        right = corrected_crn(h.index)
        h.post(
            "IdentifierCorrected",
            h.probation,
            {
                "kind": "crn",
                "from": h.identifiers["crn"],
                "to": right,
                "rationale": "Mistyped at registration",
            },
        )
        h.identifiers["crn"] = right
    elif roll < 0.071 and h.level == 3 and h.mappa in h.partners:
        if h.critical_case:
            _critical_case_ended(h)
        else:
            h.post(
                "CriticalCaseRegistered",
                h.mappa,
                {"on": day.isoformat(), "rationale": "Imminent risk; exceptional resources needed"},
            )
            h.critical_case = True


def generate(
    nominals: int, *, seed: int = 6, start: int = 0, until: date = UNTIL
) -> Iterator[dict[str, Any]]:
    """Every line of the data set, nominal by nominal, from nominal `start` on."""
    for index in range(start, nominals):
        yield from nominal_history(index, seed=seed, until=until)


CHUNK = 250  # nominals per piece of work when several processes write the data set
PROCESSES_FROM = 5_000  # nominals; below that, starting processes costs more than it saves


def _ndjson(span: tuple[int, int, int]) -> tuple[str, int]:
    """The lines of nominals start..stop-1 (of the given seed) as NDJSON, and their count."""
    start, stop, seed = span
    lines = [
        orjson.dumps(line)  # compact JSON, as json.dumps with separators=(",", ":"), faster
        for index in range(start, stop)
        for line in nominal_history(index, seed=seed)
    ]
    return b"".join(line + b"\n" for line in lines).decode(), len(lines)


def write(
    path: Path | None,
    nominals: int,
    *,
    seed: int = 6,
    progress: bool = True,
    processes: int | None = None,
) -> int:
    """Write the data set as NDJSON (to stdout when path is None, gzip for .gz); the events.

    Nominal i depends only on (seed, i), so pieces of CHUNK nominals are made in `processes`
    processes (by default one per core, for PROCESSES_FROM nominals or more) and written in
    order: the same bytes as one process writes.
    """
    spans = [(start, min(start + CHUNK, nominals), seed) for start in range(0, nominals, CHUNK)]
    if processes is None:
        processes = (os.cpu_count() or 1) if nominals >= PROCESSES_FROM else 1
    events = 0
    began = time.monotonic()
    with contextlib.ExitStack() as stack:
        if path is None:
            out: TextIO = sys.stdout
        elif path.suffix == ".gz":
            out = stack.enter_context(gzip.open(path, "wt", encoding="utf-8", compresslevel=1))
        else:
            out = stack.enter_context(path.open("w", encoding="utf-8"))
        if processes > 1 and len(spans) > 1:
            spawn = multiprocessing.get_context("spawn")
            pool = stack.enter_context(ProcessPoolExecutor(processes, mp_context=spawn))
            pieces: Iterator[tuple[str, int]] = pool.map(_ndjson, spans)
        else:
            pieces = map(_ndjson, spans)
        for (text, count), (_, stop, _) in zip(pieces, spans, strict=True):
            out.write(text)
            events += count
            if progress and stop % 5_000 == 0:
                rate = events / (time.monotonic() - began)
                print(
                    f"  {stop:,} nominals, {events:,} events ({rate:,.0f} events/s)",
                    file=sys.stderr,
                    flush=True,
                )
        out.flush()
    return events


def measure(results: Results, ws: Workspace, *, nominals: int) -> bool:
    """`import_eps`: the data set through `mappa-record import FILE`; True when it is loaded.

    The events per second count the import command's wall time only, not the generation.
    """
    if "import" not in cli_commands():
        results.skip(
            "import_eps",
            "no `mappa-record import` yet; the data set is ready (python -m bench.import_)",
        )
        return False
    path = ws.root / "national.ndjson"
    began = time.monotonic()
    events = write(path, nominals, progress=False)
    results.extra["import_data_set"] = {
        "nominals": nominals,
        "events": events,
        "bytes": path.stat().st_size,
        "generated_in_seconds": round(time.monotonic() - began, 1),
    }
    done = run_command(ws, ["import", str(path)], "import")
    path.unlink()
    if done.returncode != 0:
        results.skip("import_eps", f"`mappa-record import FILE` failed: {done.tail()}")
        return False
    results.set("import_eps", events / done.seconds)
    return True


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m bench.import_", description=__doc__.split("\n")[0])
    p.add_argument(
        "--small", action="store_true", help=f"{SMALL:,} nominals instead of {NATIONAL:,}"
    )
    p.add_argument("--nominals", type=int, default=None)
    p.add_argument("--seed", type=int, default=6)
    p.add_argument("--out", required=True, help="a file (.gz to compress), or - for stdout")
    args = p.parse_args(argv)
    count = args.nominals or (SMALL if args.small else NATIONAL)
    events = write(None if args.out == "-" else Path(args.out), count, seed=args.seed)
    print(f"wrote {count:,} nominals and {events:,} events to {args.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
