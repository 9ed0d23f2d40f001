"""The Nominal aggregate: one person on the record, and every event of the catalogue.

Every event carries the same envelope (event_id, occurred_at, recorded_by, payload and
the hash chain); the type is the class. `Nominal.record` decides whether an event may
happen (docs/design.md#invariants), fills the fields the server owns, chains
the hash and triggers the event; `apply` folds it into the current state, so replaying the
stored events rebuilds exactly the record that was acknowledged.

Payload shapes are validated at the edge (api/schemas.py) before they reach here; the
aggregate enforces what depends on the record's state, and the value rules that must
hold whatever the caller (levels, categories, agencies).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime
from typing import Any
from uuid import UUID

from eventsourcing.domain import Aggregate
from eventsourcing.utils import register_topic

from domain.agencies import is_responsible_authority, parse_agency
from domain.chain import GENESIS_HASH, chain_hash, format_instant
from domain.errors import InvalidValue, InvariantViolated, NoChange, RecordClosed
from domain.mappa import (
    Level,
    minutes_timeliness,
    parse_area,
    parse_category,
    parse_level,
    require_category_level,
)

Payload = dict[str, Any]

# The most items of each growing list a view holds (the latest ones); the rest are in the
# record's history (docs/design.md#api, the current record).
VIEW_LIST_LIMIT = 100

# Events whose item a retraction may hide from current views (they stay in history).
RETRACTABLE = frozenset({"EntryRecorded", "RestrictionRecorded", "RiskAssessmentRecorded"})


class Nominal(Aggregate):
    """A person managed under MAPPA, as the agencies partnered to the record know them."""

    class Event(Aggregate.Event):
        event_id: str
        occurred_at: str
        recorded_by: dict[str, str]
        payload: dict[str, Any]
        prev_hash: str
        hash: str

        @property
        def type(self) -> str:
            return type(self).__name__

        @property
        def recorded_at(self) -> datetime:
            return self.timestamp

        def envelope(self) -> dict[str, Any]:
            """The event as the API shows it, less `position` (the hash covers all of this)."""
            return envelope(
                event_id=self.event_id,
                type=self.type,
                nominal_id=self.originator_id,
                version=self.originator_version,
                occurred_at=self.occurred_at,
                recorded_at=self.timestamp,
                recorded_by=self.recorded_by,
                payload=self.payload,
                prev_hash=self.prev_hash,
            ) | {"hash": self.hash}

        def apply(self, aggregate: Aggregate) -> None:
            assert isinstance(aggregate, Nominal)
            aggregate.last_hash = self.hash
            aggregate.event_log[self.event_id] = {
                "type": self.type,
                "agency": self.recorded_by["agency"],
                "version": self.originator_version,
            }
            _APPLY[self.type](aggregate, self)

    class NominalRegistered(Event, Aggregate.Created):
        pass

    class AgencyPartnered(Event):
        pass

    class PartneringEnded(Event):
        pass

    class OfficerAssigned(Event):
        pass

    class EntryRecorded(Event):
        pass

    class RestrictionRecorded(Event):
        pass

    class RiskAssessmentRecorded(Event):
        pass

    class RiskManagementPlanUpdated(Event):
        pass

    class DisclosureDecisionRecorded(Event):
        pass

    class LevelChanged(Event):
        pass

    class CategoryChanged(Event):
        pass

    class LeadAgencyChanged(Event):
        pass

    class MeetingHeld(Event):
        pass

    class MinutesUploaded(Event):
        pass

    class ReferralMade(Event):
        pass

    class ReferralDecided(Event):
        pass

    class Level1ReviewRecorded(Event):
        pass

    class ActionSet(Event):
        pass

    class ActionCompleted(Event):
        pass

    class CustodyChanged(Event):
        pass

    class AreaTransferred(Event):
        pass

    class NominalDeregistered(Event):
        pass

    class NominalReregistered(Event):
        pass

    class EntryRetracted(Event):
        pass

    # -- construction --------------------------------------------------------------------

    def __init__(self) -> None:
        self.last_hash = GENESIS_HASH
        self.event_log: dict[str, dict[str, Any]] = {}
        self.identifiers: dict[str, str] = {}
        self.name: dict[str, Any] = {}
        self.aliases: list[Any] = []
        self.date_of_birth: str | None = None
        self.gender: str | None = None
        self.area = ""
        self.category = 0
        self.level = 0
        self.lead_agency: str | None = None
        self.sentence_date: str | None = None
        self.offence_summary: str | None = None
        self.registered_at = ""
        self.registered_by: dict[str, str] = {}
        self.partners: dict[str, dict[str, Any]] = {}
        self.past_partners: list[dict[str, Any]] = []
        self.officers: dict[str, dict[str, Any]] = {}
        self.items: dict[str, dict[str, dict[str, Any]]] = {
            "entries": {},
            "restrictions": {},
            "risk_assessments": {},
        }
        self.retracted: dict[str, dict[str, Any]] = {}
        self.risk_management_plan: dict[str, Any] | None = None
        self.disclosure_decisions: list[dict[str, Any]] = []
        self.meetings: dict[str, dict[str, Any]] = {}
        self.minutes: list[dict[str, Any]] = []
        self.referrals: dict[str, dict[str, Any]] = {}
        self.level1_reviews: list[dict[str, Any]] = []
        self.actions: dict[str, dict[str, Any]] = {}
        self.custody: dict[str, Any] | None = None
        self.deregistered = False

    @classmethod
    def register(
        cls,
        *,
        nominal_id: UUID,
        event_id: str,
        occurred_at: str,
        recorded_at: datetime,
        recorded_by: dict[str, str],
        payload: Payload,
    ) -> Nominal:
        """Register a new nominal; the registering agency and the lead become partners."""
        payload = decide_registration(payload)
        founders = [recorded_by["agency"], payload.get("lead_agency")]
        if not any(a and is_responsible_authority(a) for a in founders):
            raise InvariantViolated(
                "a record starts with a Responsible Authority partner: register it as police, "
                "probation or prison, or name one of them as the lead agency",
                field="lead_agency",
            )
        prev_hash = GENESIS_HASH
        digest = chain_hash(
            prev_hash,
            envelope(
                event_id=event_id,
                type="NominalRegistered",
                nominal_id=nominal_id,
                version=1,
                occurred_at=occurred_at,
                recorded_at=recorded_at,
                recorded_by=recorded_by,
                payload=payload,
                prev_hash=prev_hash,
            ),
        )
        return cls._create(
            cls.NominalRegistered,
            id=nominal_id,
            timestamp=recorded_at,
            event_id=event_id,
            occurred_at=occurred_at,
            recorded_by=recorded_by,
            payload=payload,
            prev_hash=prev_hash,
            hash=digest,
        )

    # -- commands ------------------------------------------------------------------------

    def record(
        self,
        event_type: str,
        *,
        event_id: str,
        occurred_at: str,
        recorded_at: datetime,
        recorded_by: dict[str, str],
        payload: Payload,
    ) -> Nominal.Event:
        """Decide, chain and apply one event of the catalogue; raise when a rule forbids it."""
        decide = _DECIDE.get(event_type)
        if decide is None or event_type == "NominalRegistered":
            raise InvalidValue(f"unknown event type {event_type!r}", field="type")
        if self.deregistered and event_type != "NominalReregistered":
            raise RecordClosed(
                "the record is deregistered: only NominalReregistered may be posted to it"
            )
        payload = decide(self, _copied(payload), recorded_at)
        digest = chain_hash(
            self.last_hash,
            envelope(
                event_id=event_id,
                type=event_type,
                nominal_id=self.id,
                version=self.version + 1,
                occurred_at=occurred_at,
                recorded_at=recorded_at,
                recorded_by=recorded_by,
                payload=payload,
                prev_hash=self.last_hash,
            ),
        )
        event_class = getattr(Nominal, event_type)
        self.trigger_event(
            event_class,
            timestamp=recorded_at,
            event_id=event_id,
            occurred_at=occurred_at,
            recorded_by=recorded_by,
            payload=payload,
            prev_hash=self.last_hash,
            hash=digest,
        )
        event = self.pending_events[-1]
        assert isinstance(event, Nominal.Event)
        return event

    # -- queries -------------------------------------------------------------------------

    def is_partner(self, agency: str) -> bool:
        return agency in self.partners

    def posted_by(self, event_id: str) -> str | None:
        """The agency that posted an event of this record, if it is one."""
        known = self.event_log.get(event_id)
        return known["agency"] if known else None

    def view(self) -> dict[str, Any]:
        """The current record: what a partner sees now (retracted items hidden).

        Each list that grows with the record's history holds its latest VIEW_LIST_LIMIT
        items; `omitted` counts, per list, the older ones left out (all of them are in the
        record's history), so a view's size does not grow without end."""
        lists = {
            "past_partners": self.past_partners,
            "entries": list(self.items["entries"].values()),
            "restrictions": list(self.items["restrictions"].values()),
            "risk_assessments": list(self.items["risk_assessments"].values()),
            "disclosure_decisions": self.disclosure_decisions,
            "meetings": list(self.meetings.values()),
            "minutes": self.minutes,
            "referrals": list(self.referrals.values()),
            "level1_reviews": self.level1_reviews,
            "actions": list(self.actions.values()),
        }
        omitted = {
            k: len(v) - VIEW_LIST_LIMIT for k, v in lists.items() if len(v) > VIEW_LIST_LIMIT
        }
        latest = {k: v[-VIEW_LIST_LIMIT:] for k, v in lists.items()}
        return _copied(
            {
                "nominal_id": str(self.id),
                "version": self.version,
                "status": "deregistered" if self.deregistered else "active",
                "identifiers": self.identifiers,
                "name": self.name,
                "aliases": self.aliases,
                "date_of_birth": self.date_of_birth,
                "gender": self.gender,
                "area": self.area,
                "category": self.category,
                "level": self.level,
                "lead_agency": self.lead_agency,
                "sentence_date": self.sentence_date,
                "offence_summary": self.offence_summary,
                "registered_at": self.registered_at,
                "registered_by": self.registered_by,
                "partners": [{"agency": a} | p for a, p in sorted(self.partners.items())],
                "officers": [{"agency": a} | o for a, o in sorted(self.officers.items())],
                "risk_management_plan": self.risk_management_plan,
                "custody": self.custody,
                "last_hash": self.last_hash,
                "updated_at": format_instant(self.modified_on),
            }
            | latest
            | {"omitted": omitted}
        )


def envelope(
    *,
    event_id: str,
    type: str,  # noqa: A002 - the field's name in the API
    nominal_id: UUID,
    version: int,
    occurred_at: str,
    recorded_at: datetime,
    recorded_by: dict[str, str],
    payload: Payload,
    prev_hash: str,
) -> dict[str, Any]:
    """The fields of a stored event that the hash covers."""
    return {
        "event_id": event_id,
        "type": type,
        "nominal_id": str(nominal_id),
        "version": version,
        "occurred_at": occurred_at,
        "recorded_at": format_instant(recorded_at),
        "recorded_by": dict(recorded_by),
        "payload": payload,
        "prev_hash": prev_hash,
    }


def _copied(value: Any) -> Any:
    """A copy of a JSON value that deciding may change without touching the caller's.

    Payloads are JSON (parsed, or dumped by the request schemas): dicts and lists are all
    that can change. About a third of the cost of `copy.deepcopy`, which was a sixth of an
    import's time.
    """
    if isinstance(value, dict):
        return {k: _copied(v) if isinstance(v, _CONTAINERS) else v for k, v in value.items()}
    if isinstance(value, list):
        return [_copied(v) if isinstance(v, _CONTAINERS) else v for v in value]
    return value


_CONTAINERS = (dict, list)


# -- decisions: the invariants of docs/design.md#invariants ---------------------------------


def decide_registration(payload: Payload) -> Payload:
    category = parse_category(payload.get("category"))
    level = parse_level(payload.get("level"))
    require_category_level(category, level)
    payload["area"] = parse_area(payload.get("area", ""))
    if payload.get("lead_agency") is not None:
        payload["lead_agency"] = parse_agency(payload["lead_agency"])
    if not payload.get("identifiers"):
        raise InvalidValue("at least one identifier is required", field="identifiers")
    return payload


def _partnered(nominal: Nominal, agency: str, field: str) -> str:
    agency = parse_agency(agency)
    if agency not in nominal.partners:
        raise InvariantViolated(f"{agency} is not a partner of this record", field=field)
    return agency


def _decide_partnered(n: Nominal, p: Payload, _: datetime) -> Payload:
    p["agency"] = parse_agency(p["agency"])
    if p["agency"] in n.partners:
        raise NoChange(f"{p['agency']} is already a partner of this record")
    return p


def _decide_partnering_ended(n: Nominal, p: Payload, _: datetime) -> Payload:
    agency = _partnered(n, p["agency"], "payload.agency")
    p["agency"] = agency
    if agency == n.lead_agency:
        raise InvariantViolated(
            f"{agency} leads this record: change the lead agency before ending its partnering"
        )
    remaining = [a for a in n.partners if a != agency and is_responsible_authority(a)]
    if not remaining:
        raise InvariantViolated(
            "ending this partnering would leave no Responsible Authority "
            "(police, probation or prison) partnered to the record"
        )
    return p


def _decide_officer(n: Nominal, p: Payload, _: datetime) -> Payload:
    p["agency"] = _partnered(n, p["agency"], "payload.agency")
    return p


def _decide_free(n: Nominal, p: Payload, _: datetime) -> Payload:
    return p


def _decide_disclosure(n: Nominal, p: Payload, _: datetime) -> Payload:
    meeting_id = p.get("meeting_id")
    if meeting_id is not None and meeting_id not in n.meetings:
        raise InvariantViolated(
            f"no meeting {meeting_id!r} is recorded", field="payload.meeting_id"
        )
    if p["decision"] == "disclose" and not p.get("recipient"):
        raise InvalidValue("a disclosure names its recipient", field="payload.recipient")
    return p


def _decide_level(n: Nominal, p: Payload, _: datetime) -> Payload:
    to = parse_level(p["to"])
    if to == n.level:
        raise NoChange(f"the record is already at level {int(to)}")
    require_category_level(parse_category(n.category), to)
    p["from"] = n.level
    return p


def _decide_category(n: Nominal, p: Payload, _: datetime) -> Payload:
    to = parse_category(p["to"])
    if to == n.category:
        raise NoChange(f"the record is already category {int(to)}")
    require_category_level(to, parse_level(n.level))
    p["from"] = n.category
    return p


def _decide_lead(n: Nominal, p: Payload, _: datetime) -> Payload:
    agency = _partnered(n, p["agency"], "payload.agency")
    if agency == n.lead_agency:
        raise NoChange(f"{agency} already leads this record")
    p["agency"] = agency
    p["from"] = n.lead_agency
    return p


def _require_multi_agency_level(value: Any, field: str) -> Level:
    level = parse_level(value)
    if level is Level.ONE:
        raise InvariantViolated("meetings and minutes are for levels 2 and 3 only", field=field)
    return level


def _decide_meeting(n: Nominal, p: Payload, _: datetime) -> Payload:
    _require_multi_agency_level(p["level"], "payload.level")
    if p["meeting_id"] in n.meetings:
        raise InvariantViolated(f"meeting {p['meeting_id']!r} is already recorded")
    return p


def _decide_minutes(n: Nominal, p: Payload, recorded_at: datetime) -> Payload:
    level = _require_multi_agency_level(p["level"], "payload.level")
    timeliness = minutes_timeliness(date.fromisoformat(p["meeting_date"]), level, recorded_at)
    p["due_on"] = timeliness.due_on.isoformat()
    p["working_days_taken"] = timeliness.working_days_taken
    p["late"] = timeliness.late
    return p


def _decide_referral(n: Nominal, p: Payload, _: datetime) -> Payload:
    _require_multi_agency_level(p["requested_level"], "payload.requested_level")
    if p["referral_id"] in n.referrals:
        raise InvariantViolated(f"referral {p['referral_id']!r} is already recorded")
    for i, invite in enumerate(p["agencies_to_invite"]):
        invite["agency"] = parse_agency(invite["agency"])
        if not invite.get("why"):
            raise InvalidValue(
                "say why the agency is invited", field=f"payload.agencies_to_invite.{i}.why"
            )
    return p


def _decide_referral_decided(n: Nominal, p: Payload, _: datetime) -> Payload:
    referral = n.referrals.get(p["referral_id"])
    if referral is None:
        raise InvariantViolated(
            f"no referral {p['referral_id']!r} is recorded", field="payload.referral_id"
        )
    if referral.get("decision") is not None:
        raise InvariantViolated(f"referral {p['referral_id']!r} is already decided")
    return p


def _decide_action_set(n: Nominal, p: Payload, _: datetime) -> Payload:
    if p["action_id"] in n.actions:
        raise InvariantViolated(f"action {p['action_id']!r} is already set")
    meeting_id = p.get("meeting_id")
    if meeting_id is not None and meeting_id not in n.meetings:
        raise InvariantViolated(
            f"no meeting {meeting_id!r} is recorded", field="payload.meeting_id"
        )
    p["assigned_agency"] = parse_agency(p["assigned_agency"])
    return p


def _decide_action_completed(n: Nominal, p: Payload, _: datetime) -> Payload:
    action = n.actions.get(p["action_id"])
    if action is None:
        raise InvariantViolated(f"no action {p['action_id']!r} is set", field="payload.action_id")
    if action.get("completed_on") is not None:
        raise InvariantViolated(f"action {p['action_id']!r} is already completed")
    if not str(p.get("outcome", "")).strip():
        raise InvalidValue("say what was found or done", field="payload.outcome")
    return p


def _decide_custody(n: Nominal, p: Payload, _: datetime) -> Payload:
    status = p["status"]
    in_custody = n.custody is not None and n.custody["status"] != "released"
    if status in ("received", "transferred"):
        establishment = parse_agency(p.get("establishment") or "")
        if not establishment.startswith("prison:"):
            raise InvalidValue(
                "the establishment is a prison: agency", field="payload.establishment"
            )
        p["establishment"] = establishment
        if status == "transferred" and not in_custody:
            raise InvariantViolated("a transfer is between prisons: the person is not in custody")
        if status == "transferred" and n.custody and establishment == n.custody["establishment"]:
            raise NoChange(f"the person is already held at {establishment}")
    elif not in_custody:
        raise InvariantViolated("the person is not in custody")
    return p


def _decide_area(n: Nominal, p: Payload, _: datetime) -> Payload:
    p["to_area"] = parse_area(p["to_area"])
    if p["to_area"] == n.area:
        raise NoChange(f"the record is already in {n.area}")
    p["from_area"] = n.area
    return p


def _decide_deregistered(n: Nominal, p: Payload, _: datetime) -> Payload:
    return p


def _decide_reregistered(n: Nominal, p: Payload, _: datetime) -> Payload:
    if not n.deregistered:
        raise NoChange("the record is not deregistered")
    return p


def _decide_retraction(n: Nominal, p: Payload, _: datetime) -> Payload:
    target = n.event_log.get(p["retracts"])
    if target is None or target["type"] not in RETRACTABLE:
        raise InvariantViolated(
            "only an entry, restriction or risk assessment of this record can be retracted",
            field="payload.retracts",
        )
    if p["retracts"] in n.retracted:
        raise NoChange("that entry is already retracted")
    return p


_DECIDE: dict[str, Callable[[Nominal, Payload, datetime], Payload]] = {
    "NominalRegistered": _decide_free,
    "AgencyPartnered": _decide_partnered,
    "PartneringEnded": _decide_partnering_ended,
    "OfficerAssigned": _decide_officer,
    "EntryRecorded": _decide_free,
    "RestrictionRecorded": _decide_free,
    "RiskAssessmentRecorded": _decide_free,
    "RiskManagementPlanUpdated": _decide_free,
    "DisclosureDecisionRecorded": _decide_disclosure,
    "LevelChanged": _decide_level,
    "CategoryChanged": _decide_category,
    "LeadAgencyChanged": _decide_lead,
    "MeetingHeld": _decide_meeting,
    "MinutesUploaded": _decide_minutes,
    "ReferralMade": _decide_referral,
    "ReferralDecided": _decide_referral_decided,
    "Level1ReviewRecorded": _decide_free,
    "ActionSet": _decide_action_set,
    "ActionCompleted": _decide_action_completed,
    "CustodyChanged": _decide_custody,
    "AreaTransferred": _decide_area,
    "NominalDeregistered": _decide_deregistered,
    "NominalReregistered": _decide_reregistered,
    "EntryRetracted": _decide_retraction,
}

EVENT_TYPES: tuple[str, ...] = tuple(_DECIDE)


# -- evolution: how each event changes the current record ----------------------------------


def _stamp(e: Nominal.Event) -> dict[str, Any]:
    return {
        "event_id": e.event_id,
        "occurred_at": e.occurred_at,
        "recorded_at": format_instant(e.timestamp),
        "recorded_by": dict(e.recorded_by),
    }


def _apply_registered(n: Nominal, e: Nominal.Event) -> None:
    p = e.payload
    n.identifiers = dict(p["identifiers"])
    n.name = p["name"]
    n.aliases = list(p.get("aliases") or [])
    n.date_of_birth = p.get("date_of_birth")
    n.gender = p.get("gender")
    n.area = p["area"]
    n.category = p["category"]
    n.level = p["level"]
    n.lead_agency = p.get("lead_agency")
    n.sentence_date = p.get("sentence_date")
    n.offence_summary = p.get("offence_summary")
    n.registered_at = format_instant(e.timestamp)
    n.registered_by = dict(e.recorded_by)
    since = format_instant(e.timestamp)
    by = e.recorded_by["agency"]
    for agency in dict.fromkeys([by, n.lead_agency]):
        if agency is not None:
            n.partners[agency] = {"since": since, "by": by, "reason": "registration"}


def _apply_partnered(n: Nominal, e: Nominal.Event) -> None:
    n.partners[e.payload["agency"]] = {
        "since": format_instant(e.timestamp),
        "by": e.recorded_by["agency"],
        "reason": e.payload["reason"],
    }


def _apply_partnering_ended(n: Nominal, e: Nominal.Event) -> None:
    agency = e.payload["agency"]
    partner = n.partners.pop(agency)
    n.officers.pop(agency, None)
    n.past_partners.append(
        {
            "agency": agency,
            "since": partner["since"],
            "by": partner["by"],
            "until": format_instant(e.timestamp),
            "ended_by": e.recorded_by["agency"],
            "reason": e.payload["reason"],
        }
    )


def _apply_officer(n: Nominal, e: Nominal.Event) -> None:
    n.officers[e.payload["agency"]] = {
        "officer": e.payload["officer"],
        "supervisor": e.payload.get("supervisor"),
        "since": format_instant(e.timestamp),
    }


def _item_applier(kind: str) -> Callable[[Nominal, Nominal.Event], None]:
    def apply(n: Nominal, e: Nominal.Event) -> None:
        n.items[kind][e.event_id] = _stamp(e) | e.payload

    return apply


def _apply_plan(n: Nominal, e: Nominal.Event) -> None:
    n.risk_management_plan = _stamp(e) | e.payload


def _apply_disclosure(n: Nominal, e: Nominal.Event) -> None:
    n.disclosure_decisions.append(_stamp(e) | e.payload)


def _apply_level(n: Nominal, e: Nominal.Event) -> None:
    n.level = e.payload["to"]


def _apply_category(n: Nominal, e: Nominal.Event) -> None:
    n.category = e.payload["to"]


def _apply_lead(n: Nominal, e: Nominal.Event) -> None:
    n.lead_agency = e.payload["agency"]


def _apply_meeting(n: Nominal, e: Nominal.Event) -> None:
    n.meetings[e.payload["meeting_id"]] = _stamp(e) | e.payload


def _apply_minutes(n: Nominal, e: Nominal.Event) -> None:
    n.minutes.append(_stamp(e) | e.payload)


def _apply_referral(n: Nominal, e: Nominal.Event) -> None:
    n.referrals[e.payload["referral_id"]] = _stamp(e) | e.payload | {"decision": None}


def _apply_referral_decided(n: Nominal, e: Nominal.Event) -> None:
    referral = n.referrals[e.payload["referral_id"]]
    referral["decision"] = {k: v for k, v in e.payload.items() if k != "referral_id"}


def _apply_level1_review(n: Nominal, e: Nominal.Event) -> None:
    n.level1_reviews.append(_stamp(e) | e.payload)


def _apply_action_set(n: Nominal, e: Nominal.Event) -> None:
    n.actions[e.payload["action_id"]] = (
        _stamp(e) | e.payload | {"completed_on": None, "outcome": None}
    )


def _apply_action_completed(n: Nominal, e: Nominal.Event) -> None:
    action = n.actions[e.payload["action_id"]]
    action["completed_on"] = e.payload["completed_on"]
    action["outcome"] = e.payload["outcome"]


def _apply_custody(n: Nominal, e: Nominal.Event) -> None:
    n.custody = {
        "status": e.payload["status"],
        "establishment": e.payload.get("establishment"),
        "expected_release_on": e.payload.get("expected_release_on"),
        "since": e.occurred_at,
    }


def _apply_area(n: Nominal, e: Nominal.Event) -> None:
    n.area = e.payload["to_area"]


def _apply_deregistered(n: Nominal, e: Nominal.Event) -> None:
    n.deregistered = True


def _apply_reregistered(n: Nominal, e: Nominal.Event) -> None:
    n.deregistered = False


def _apply_retraction(n: Nominal, e: Nominal.Event) -> None:
    target = e.payload["retracts"]
    for items in n.items.values():
        items.pop(target, None)
    n.retracted[target] = _stamp(e) | e.payload


_APPLY: dict[str, Callable[[Nominal, Nominal.Event], None]] = {
    "NominalRegistered": _apply_registered,
    "AgencyPartnered": _apply_partnered,
    "PartneringEnded": _apply_partnering_ended,
    "OfficerAssigned": _apply_officer,
    "EntryRecorded": _item_applier("entries"),
    "RestrictionRecorded": _item_applier("restrictions"),
    "RiskAssessmentRecorded": _item_applier("risk_assessments"),
    "RiskManagementPlanUpdated": _apply_plan,
    "DisclosureDecisionRecorded": _apply_disclosure,
    "LevelChanged": _apply_level,
    "CategoryChanged": _apply_category,
    "LeadAgencyChanged": _apply_lead,
    "MeetingHeld": _apply_meeting,
    "MinutesUploaded": _apply_minutes,
    "ReferralMade": _apply_referral,
    "ReferralDecided": _apply_referral_decided,
    "Level1ReviewRecorded": _apply_level1_review,
    "ActionSet": _apply_action_set,
    "ActionCompleted": _apply_action_completed,
    "CustodyChanged": _apply_custody,
    "AreaTransferred": _apply_area,
    "NominalDeregistered": _apply_deregistered,
    "NominalReregistered": _apply_reregistered,
    "EntryRetracted": _apply_retraction,
}


# Stored events and snapshots name their class by its module path. Before the layout move
# (docs/adr/016) this module was `mappa_record.domain.nominal`: every event stored then says
# `mappa_record.domain.nominal:Nominal.<Type>`, and the library resolves those through this.
register_topic("mappa_record.domain.nominal:Nominal", Nominal)
