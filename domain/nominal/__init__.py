"""The Nominal aggregate: one person on the record, and every event of the catalogue.

Every event carries the same envelope (event_id, occurred_at, recorded_by, payload and
the hash chain); the type is the class. `Nominal.record` decides whether an event may
happen (docs/design.md#invariants and docs/design.md#lifecycles), fills the fields the
server owns, chains the hash and triggers the event; `apply` folds it into the current state, so
replaying the stored events rebuilds exactly the record that was acknowledged.

Each event's decision and effect live side by side in the module of its theme (identity,
partnering, management, meetings, entries, restrictions, custody, outcomes); this module
holds the aggregate, its events, its view, and the two tables assembled from the themes.
The events are classes of `Nominal` in this module, so their topics (`domain.nominal:
Nominal.<Type>`) stay what stored events say.

Payload shapes are validated at the edge (service/payloads.py) before they reach here; the
aggregate enforces what depends on the record's state, and the value rules that must
hold whatever the caller (levels, categories, agencies).
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import date, datetime
from typing import Any
from uuid import UUID

from eventsourcing.domain import Aggregate
from eventsourcing.utils import register_topic

from domain.calendar import london_date
from domain.chain import GENESIS_HASH, chain_hash, format_instant
from domain.errors import InvalidValue, RecordClosed
from domain.nominal import (
    custody,
    entries,
    identity,
    management,
    meetings,
    outcomes,
    partnering,
    restrictions,
)
from domain.nominal.common import Apply, Decide, Payload, copied
from domain.nominal.entries import RETRACTABLE

__all__ = ["EVENT_TYPES", "RETRACTABLE", "VIEW_LIST_LIMIT", "Nominal", "Payload", "envelope"]

# The most items of each growing list a view holds (the latest ones); the rest are in the
# record's history (docs/design.md, the current view).
VIEW_LIST_LIMIT = 100


class Nominal(Aggregate):
    """A person managed under MAPPA, as the agencies partnered to the record know them."""

    # 2: the state of docs/design.md#lifecycles (corrections, orders, transfers, outcomes); a
    # snapshot taken before it is brought up to date by `upcast_v1_v2`.
    class_version = 2

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

    # -- docs/design.md#the-catalogue ---------------------------------------------------

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

    # -- docs/design.md#lifecycles: corrections, lifecycles and outcomes ----------------------

    class IdentifierAdded(Event):
        pass

    class IdentifierCorrected(Event):
        pass

    class PersonalDetailsCorrected(Event):
        pass

    class AliasAdded(Event):
        pass

    class AliasRemoved(Event):
        pass

    class AddressRecorded(Event):
        pass

    class RestrictionVaried(Event):
        pass

    class RestrictionEnded(Event):
        pass

    class AreaTransferRequested(Event):
        pass

    class AreaTransferAccepted(Event):
        pass

    class BreachRecorded(Event):
        pass

    class RecallRecorded(Event):
        pass

    class FurtherOffenceRecorded(Event):
        pass

    class MappaStatusExplained(Event):
        pass

    class CriticalCaseRegistered(Event):
        pass

    class CriticalCaseEnded(Event):
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
        # docs/design.md#lifecycles (the state a snapshot of class version 1 lacks: _V2_STATE)
        self.ethnicity: str | None = None
        self.identifier_changes: list[dict[str, Any]] = []
        self.past_identifiers: list[dict[str, Any]] = []
        self.alias_changes: list[dict[str, Any]] = []
        self.past_aliases: list[dict[str, Any]] = []
        self.personal_details_corrections: list[dict[str, Any]] = []
        self.addresses: list[dict[str, Any]] = []
        self.ended_restrictions: dict[str, dict[str, Any]] = {}
        self.restricted: dict[str, dict[str, Any]] = {}
        self.area_history: list[dict[str, Any]] = []
        self.transfers: dict[str, dict[str, Any]] = {}
        self.breaches: list[dict[str, Any]] = []
        self.recalls: list[dict[str, Any]] = []
        self.further_offences: list[dict[str, Any]] = []
        self.mappa_status_explained: list[dict[str, Any]] = []
        self.critical_case: dict[str, Any] | None = None
        self.critical_cases_ended: list[dict[str, Any]] = []

    @staticmethod
    def upcast_v1_v2(state: dict[str, Any]) -> None:
        """A snapshot taken before section 3.1: the state it adds, as its events left it
        (none of them had been recorded). The area's history is the registration's area
        when the record never moved; a move before the snapshot left no trace of its areas
        in it, so the history is marked partial and such a record is folded from its events
        instead (`area_history_partial`: Ledger.rebuild, integrity's snapshot check)."""
        _add_v2_state(state)
        by_version = {e["version"]: (event_id, e) for event_id, e in state["event_log"].items()}
        registration = by_version[1][0]
        moves = [
            (i, e) for v, (i, e) in sorted(by_version.items()) if e["type"] == "AreaTransferred"
        ]
        if not moves:
            state["area_history"] = [
                {
                    "area": state["area"],
                    "since": state["registered_at"],
                    "event_id": registration,
                    "type": "NominalRegistered",
                }
            ]
            return
        state["area_history_partial"] = True
        state["area_history"] = [
            {"area": None, "since": None, "event_id": registration, "type": "NominalRegistered"}
        ] + [{"area": None, "since": None, "event_id": i, "type": e["type"]} for i, e in moves]
        state["area_history"][-1]["area"] = state["area"]

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
        payload = identity.decide_registration(payload)
        identity.require_founding_partner(recorded_by["agency"], payload)
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
        payload = decide(self, copied(payload), recorded_at)
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

    def open_transfer_receivers(self) -> frozenset[str]:
        """The MAPPA units an open transfer request names (each may accept its own)."""
        return custody.open_transfer_receivers(self)

    def restricted_from(self, agency: str) -> frozenset[str]:
        """The restricted entries of the current view this agency may not read whole."""
        return frozenset(
            event_id
            for event_id, r in self.restricted.items()
            if event_id in self.items["entries"]
            and not entries.may_read(r["agency"], r["restricted_to"], agency)
        )

    def restricted_entries(self) -> frozenset[str]:
        """Every restricted entry of the current view."""
        return frozenset(e for e in self.restricted if e in self.items["entries"])

    def view(self, today: date | None = None, hidden: Collection[str] = ()) -> dict[str, Any]:
        """The current record: what a partner sees now (retracted items hidden).

        `today` is the day whose orders are in force (default: the day of the record's last
        event); `hidden` names restricted entries the reader may not read, which show as
        placeholders (type, date, posting agency).

        Each list that grows with the record's history holds its latest VIEW_LIST_LIMIT
        items; `omitted` counts, per list, the older ones left out (all of them are in the
        record's history), so a view's size does not grow without end."""
        today = today or london_date(self.modified_on)
        current = self.items["restrictions"]
        lists = {
            "past_partners": self.past_partners,
            "entries": [
                entries.placeholder(i) if i["event_id"] in hidden else i
                for i in self.items["entries"].values()
            ],
            "restrictions": list(current.values()),
            "ended_restrictions": list(self.ended_restrictions.values()),
            "risk_assessments": list(self.items["risk_assessments"].values()),
            "disclosure_decisions": self.disclosure_decisions,
            "meetings": list(self.meetings.values()),
            "minutes": self.minutes,
            "referrals": list(self.referrals.values()),
            "level1_reviews": self.level1_reviews,
            "actions": list(self.actions.values()),
            "identifier_changes": self.identifier_changes,
            "past_identifiers": self.past_identifiers,
            "alias_changes": self.alias_changes,
            "past_aliases": self.past_aliases,
            "personal_details_corrections": self.personal_details_corrections,
            "past_addresses": _past_addresses(self),
            "area_history": self.area_history,
            "transfers": list(self.transfers.values()),
            "breaches": self.breaches,
            "recalls": self.recalls,
            "further_offences": self.further_offences,
            "mappa_status_explained": self.mappa_status_explained,
            "critical_cases_ended": self.critical_cases_ended,
        }
        omitted = {
            k: len(v) - VIEW_LIST_LIMIT for k, v in lists.items() if len(v) > VIEW_LIST_LIMIT
        }
        latest = {k: v[-VIEW_LIST_LIMIT:] for k, v in lists.items()}
        return copied(
            {
                "nominal_id": str(self.id),
                "version": self.version,
                "status": "deregistered" if self.deregistered else "active",
                "identifiers": self.identifiers,
                "name": self.name,
                "aliases": self.aliases,
                "date_of_birth": self.date_of_birth,
                "gender": self.gender,
                "ethnicity": self.ethnicity,
                "address": identity.current_address(self),
                "area": self.area,
                "category": self.category,
                "level": self.level,
                "critical_case": self.critical_case,
                "lead_agency": self.lead_agency,
                "sentence_date": self.sentence_date,
                "offence_summary": self.offence_summary,
                "registered_at": self.registered_at,
                "registered_by": self.registered_by,
                "partners": [{"agency": a} | p for a, p in sorted(self.partners.items())],
                "officers": [{"agency": a} | o for a, o in sorted(self.officers.items())],
                "risk_management_plan": self.risk_management_plan,
                "custody": self.custody,
                "restriction_status": {
                    event_id: restrictions.status_on(r, today) for event_id, r in current.items()
                },
                "as_on": today.isoformat(),
                "last_hash": self.last_hash,
                "updated_at": format_instant(self.modified_on),
            }
            | latest
            | {"omitted": omitted}
        )


def _add_v2_state(state: dict[str, Any]) -> None:
    """What docs/design.md#lifecycles adds to a record, as a record without its events has it
    (a new record's, less what `__init__` had before)."""
    blank = Nominal.__new__(Nominal)
    Nominal.__init__(blank)
    fresh = vars(blank)
    for name in _V2_STATE:
        state.setdefault(name, fresh[name])


_V2_STATE = (
    "ethnicity",
    "identifier_changes",
    "past_identifiers",
    "alias_changes",
    "past_aliases",
    "personal_details_corrections",
    "addresses",
    "ended_restrictions",
    "restricted",
    "area_history",
    "transfers",
    "breaches",
    "recalls",
    "further_offences",
    "mappa_status_explained",
    "critical_case",
    "critical_cases_ended",
)


def _past_addresses(n: Nominal) -> list[dict[str, Any]]:
    current = identity.current_address(n)
    return sorted((a for a in n.addresses if a is not current), key=lambda a: str(a["from_date"]))


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


# -- the two tables, assembled from the themes ---------------------------------------------

_THEMES = (identity, partnering, management, meetings, entries, restrictions, custody, outcomes)

_DECIDE: dict[str, Decide] = {"NominalRegistered": lambda n, p, _: p}
_APPLY: dict[str, Apply] = {}
for _theme in _THEMES:
    _DECIDE.update(_theme.DECIDE)
    _APPLY.update(_theme.APPLY)

EVENT_TYPES: tuple[str, ...] = tuple(_DECIDE)
assert set(_DECIDE) == set(_APPLY), "every event type is decided and applied"
assert all(isinstance(getattr(Nominal, t, None), type) for t in EVENT_TYPES)


# Stored events and snapshots name their class by its module path. Before the layout move
# (docs/adr/016) this module was `mappa_record.domain.nominal`: every event stored then says
# `mappa_record.domain.nominal:Nominal.<Type>`, and the library resolves those through this.
register_topic("mappa_record.domain.nominal:Nominal", Nominal)
