"""What a payload of each event type (docs/design.md#the-catalogue) may hold, whoever sends it.

A post over HTTP (api/routes/nominals.py) and a line of a bulk import
(service/integrations/importer.py) are checked against the same schema and stored as it
gives them back (`model_dump` in JSON mode), so the record holds the same kind of payload
however it came.

Every model forbids unknown fields, so a client cannot set what the server owns
(`recorded_at`, `recorded_by`, `version`, `position`, `hash`, `prev_hash`, `from`,
`due_on`, ...). Values that the domain knows how to check (agency codes, areas) are
checked here too, through the domain's own functions, so the error names the field.

Every text field refuses what PostgreSQL cannot store (`unstorable`): a NUL character, or a
lone surrogate, which has no UTF-8 form. One such payload accepted stopped every projection
for good (issue 16); the check is here, once, and the routes that take text outside these
models (headers, a filename, HMPPS messages, a token's `sub`) call the same function.
"""

from __future__ import annotations

import re
from datetime import date
from typing import Annotated, Any, Literal
from uuid import UUID

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PastDate,
    PlainSerializer,
    SerializerFunctionWrapHandler,
    StrictBool,
    StringConstraints,
    model_serializer,
    model_validator,
)

from domain.agencies import parse_agency
from domain.errors import InvalidValue
from domain.identifiers import IDENTIFIER_KINDS
from domain.mappa import parse_area
from domain.nominal.identity import ETHNICITIES
from domain.nominal.outcomes import BREACH_OF
from domain.postcodes import normalise_postcode


def _domain_check(parse: Any) -> Any:
    def check(value: Any) -> Any:
        try:
            return parse(value)
        except InvalidValue as e:
            raise ValueError(e.message) from None

    return AfterValidator(check)


# PostgreSQL's text and jsonb hold neither NUL nor a surrogate code point: in a Python str a
# surrogate is always a lone one (a pair arrives as the one character it encodes).
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


def unstorable(text: str) -> str | None:
    """Why the database could not store this text, or None when it can."""
    found = _UNSTORABLE.search(text)
    if found is None:
        return None
    if found.group() == "\x00":
        return "may not contain a NUL character (U+0000)"
    return f"may not contain a lone surrogate (U+{ord(found.group()):04X}), which has no UTF-8 form"


def first_unstorable(value: Any, path: str = "") -> tuple[str, str] | None:
    """(field path, reason) of the first key or string in a JSON value that the database
    could not store, or None; the path is dotted, with list indices as numbers."""
    # A stack, not recursion: a body nested as deep as the JSON parser allows is walked too.
    stack: list[tuple[str, Any]] = [(path, value)]
    while stack:
        where, item = stack.pop()
        if isinstance(item, str):
            if (reason := unstorable(item)) is not None:
                return where or "body", reason
            continue
        if isinstance(item, dict):
            children = list(item.items())
        elif isinstance(item, list):
            children = list(enumerate(item))
        else:
            continue
        named = [(f"{where}.{key}" if where else str(key), key, child) for key, child in children]
        for inner, key, _ in named:
            if isinstance(key, str) and (reason := unstorable(key)) is not None:
                return inner, reason
        stack.extend((inner, child) for inner, _, child in reversed(named))
    return None


def escaped(text: str) -> str:
    """The text with each character the database could not store written as \\uXXXX."""
    return _UNSTORABLE.sub(lambda m: f"\\u{ord(m.group()):04x}", text)


def _storable(value: str) -> str:
    reason = unstorable(value)
    if reason is not None:
        raise ValueError(reason)
    return value


Storable = AfterValidator(_storable)
StorableText = Annotated[str, Storable]
Text = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=5_000), Storable
]
ShortText = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200), Storable
]
Body = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=20_000), Storable
]
Ref = Annotated[
    str,
    StringConstraints(
        strip_whitespace=True, min_length=1, max_length=100, pattern=r"^[A-Za-z0-9._:/-]+$"
    ),
]
Agency = Annotated[str, _domain_check(parse_agency)]
Area = Annotated[str, _domain_check(parse_area)]
Postcode = Annotated[str, _domain_check(normalise_postcode)]
IdentifierKind = Literal[IDENTIFIER_KINDS]  # type: ignore[valid-type]
Ethnicity = Literal[tuple(ETHNICITIES)]  # type: ignore[valid-type]


def _whole_number(value: Any) -> Any:
    # Without this a JSON `true` passes as level or category 1, and `2.0` as 2.
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError("must be a whole number")
    return value


WholeNumber = BeforeValidator(_whole_number)
MultiAgencyLevel = Annotated[Literal[2, 3], WholeNumber]
AnyLevel = Annotated[Literal[1, 2, 3], WholeNumber]
AnyCategory = Annotated[Literal[1, 2, 3, 4], WholeNumber]
RoshLevel = Literal["low", "medium", "high", "very_high"]


# The one number that is not whole. Stored as RFC 8785 (JCS) writes it, so an auditor's JCS
# library recomputes the hash (docs/integrity.md): 12.0 is stored as 12, and a score between
# 0 and 0.0001, which Python writes in exponent form and JCS does not, is refused.
def _not_tiny(value: float) -> float:
    if 0 < value < 1e-4:
        raise ValueError("a score is 0 or at least 0.0001")
    return value


def _whole_as_integer(value: float) -> int | float:
    return int(value) if value.is_integer() else value


Score = Annotated[
    float,
    Field(ge=0, le=10_000, allow_inf_nan=False),
    AfterValidator(_not_tiny),
    PlainSerializer(_whole_as_integer, when_used="json"),
]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


# -- registration -------------------------------------------------------------------------


class Identifiers(Strict):
    pnc: ShortText | None = None
    crn: ShortText | None = None
    noms: ShortText | None = None
    cro: ShortText | None = None

    @model_validator(mode="after")
    def _at_least_one(self) -> Identifiers:
        if not any((self.pnc, self.crn, self.noms, self.cro)):
            raise ValueError("at least one of pnc, crn, noms, cro is required")
        return self


class Name(Strict):
    family: ShortText
    given: list[ShortText] = Field(default_factory=list, max_length=10)


class NominalRegistered(Strict):
    identifiers: Identifiers
    name: Name
    aliases: list[Name] = Field(default_factory=list, max_length=50)
    date_of_birth: PastDate
    gender: ShortText | None = None
    area: Area
    category: AnyCategory
    level: AnyLevel
    lead_agency: Agency | None = None
    sentence_date: date | None = None
    offence_summary: Text | None = None


# -- the other events -----------------------------------------------------------------------


class AgencyPartnered(Strict):
    agency: Agency
    reason: Text


class PartneringEnded(Strict):
    agency: Agency
    reason: Text


class Officer(Strict):
    name: ShortText
    role: ShortText
    contact: ShortText


class Supervisor(Strict):
    name: ShortText
    contact: ShortText


class OfficerAssigned(Strict):
    agency: Agency
    officer: Officer
    supervisor: Supervisor | None = None


class EntryRecorded(Strict):
    entry_type: Literal[
        "activity",
        "intelligence",
        "visit",
        "contact",
        "personal_details",
        "modus_operandi",
        "conviction",
        "victim_safety",
        "other",
    ]
    subject: ShortText
    body: Body
    # Counter-terrorism material (000, para 6.32): other partners see that it exists, not
    # what it says (docs/adr/021).
    restricted_to: list[Agency] | None = Field(default=None, min_length=1, max_length=20)

    @model_serializer(mode="wrap")
    def _unrestricted_as_before(self, dump: SerializerFunctionWrapHandler) -> dict[str, Any]:
        # An entry for every partner is stored, and digested for idempotency, as it was
        # before restricted entries existed.
        payload: dict[str, Any] = dump(self)
        if payload.get("restricted_to") is None:
            payload.pop("restricted_to", None)
        return payload


class RestrictionRecorded(Strict):
    kind: Literal[
        "licence_condition",
        "SHPO",
        "SRO",
        "SOPO",
        "VOO",
        "RoSHO",
        "FTO",
        "restraining_order",
        "notification_requirements",
        "other",
    ]
    details: Text
    starts_on: date
    ends_on: date | None = None

    @model_validator(mode="after")
    def _ends_after_start(self) -> RestrictionRecorded:
        if self.ends_on is not None and self.ends_on < self.starts_on:
            raise ValueError("ends_on is before starts_on")
        return self


class RiskAssessmentRecorded(Strict):
    tool: Literal["OASys", "RM2000", "ARMS", "OSP", "ERG22+", "other"]
    rosh_level: RoshLevel
    score: Score | None = None
    assessed_on: date
    authorised_by: ShortText | None = None


class RiskManagementPlanUpdated(Strict):
    supervision: Text
    monitoring_and_control: Text
    interventions_and_treatment: Text
    victim_safety_planning: Text
    contingency: Text


class DisclosureDecisionRecorded(Strict):
    meeting_id: Ref | None = None
    decision: Literal["disclose", "do_not_disclose", "defer"]
    recipient: ShortText | None = None
    rationale: Text
    decided_on: date

    @model_validator(mode="after")
    def _recipient_when_disclosing(self) -> DisclosureDecisionRecorded:
        if self.decision == "disclose" and not self.recipient:
            raise ValueError("recipient is required when the decision is disclose")
        return self


class LevelChanged(Strict):
    to: AnyLevel
    rationale: Text
    decided_on: date
    meeting_id: Ref | None = None


class CategoryChanged(Strict):
    to: AnyCategory
    rationale: Text


class LeadAgencyChanged(Strict):
    agency: Agency
    rationale: Text


class Attendee(Strict):
    agency: Agency
    name: ShortText
    role: ShortText


class MeetingHeld(Strict):
    meeting_id: Ref
    level: MultiAgencyLevel
    held_on: date
    chair: ShortText
    invited: list[Agency] = Field(default_factory=list, max_length=100)
    attended: list[Attendee] = Field(default_factory=list, max_length=200)
    apologies: list[Agency] = Field(default_factory=list, max_length=100)
    cppc_considered: bool | None = None


class Document(Strict):
    sha256: Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{64}$")]
    filename: ShortText
    media_type: ShortText
    size: Annotated[int, Field(ge=1)]


class MinutesUploaded(Strict):
    meeting_id: Ref
    meeting_date: date
    level: MultiAgencyLevel
    document: Document


class Invitation(Strict):
    agency: Agency
    why: Text


class ReferralMade(Strict):
    referral_id: Ref
    requested_level: MultiAgencyLevel
    reasons: Text
    rosh_level: RoshLevel
    imminence: ShortText
    agencies_to_invite: list[Invitation] = Field(min_length=1, max_length=50)
    expected_release_on: date | None = None


class ReferralDecided(Strict):
    referral_id: Ref
    decision: Literal["level_2", "level_3", "level_1"]
    feedback: Text
    decided_on: date


class Level1ReviewRecorded(Strict):
    reviewed_on: date
    outcome: Literal["remain_level_1", "refer"]
    reviewers: list[Agency] = Field(min_length=1, max_length=20)
    notes: Text | None = None


class ActionSet(Strict):
    action_id: Ref
    meeting_id: Ref | None = None
    description: Text
    assigned_agency: Agency
    due_on: date


class ActionCompleted(Strict):
    action_id: Ref
    outcome: Text
    completed_on: date


class CustodyChanged(Strict):
    status: Literal["received", "transferred", "released"]
    establishment: Agency | None = None
    expected_release_on: date | None = None

    @model_validator(mode="after")
    def _establishment_when_held(self) -> CustodyChanged:
        if self.status != "released":
            if self.establishment is None:
                raise ValueError("establishment is required when received or transferred")
            if not self.establishment.startswith("prison:"):
                raise ValueError("establishment must be a prison: agency")
        return self


class AreaTransferred(Strict):
    to_area: Area
    rationale: Text


class NominalDeregistered(Strict):
    rationale: Text


class NominalReregistered(Strict):
    rationale: Text


class EntryRetracted(Strict):
    retracts: UUID
    rationale: Text


# -- docs/design.md#lifecycles: corrections, lifecycles and outcomes -----------------------------


class IdentifierAdded(Strict):
    kind: IdentifierKind
    value: ShortText


class IdentifierCorrected(Strict):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True, serialize_by_alias=True)

    kind: IdentifierKind
    wrong: ShortText = Field(alias="from")
    to: ShortText
    rationale: Text


class PersonalDetailsCorrected(Strict):
    name: Name | None = None
    date_of_birth: PastDate | None = None
    gender: ShortText | None = None
    ethnicity: Ethnicity | None = None  # type: ignore[valid-type]
    rationale: Text

    @model_validator(mode="after")
    def _something_corrected(self) -> PersonalDetailsCorrected:
        if all(v is None for v in (self.name, self.date_of_birth, self.gender, self.ethnicity)):
            raise ValueError("say what is corrected: name, date_of_birth, gender or ethnicity")
        return self


class AliasAdded(Strict):
    alias: Name


class AliasRemoved(Strict):
    alias: Name
    rationale: Text


class AddressRecorded(Strict):
    kind: Literal["home", "approved_premises", "temporary", "no_fixed_abode", "custody"]
    lines: list[ShortText] = Field(default_factory=list, max_length=6)
    postcode: Postcode | None = None
    from_date: date

    @model_validator(mode="after")
    def _an_address_unless_none(self) -> AddressRecorded:
        if self.kind != "no_fixed_abode":
            if not self.lines:
                raise ValueError("an address has at least one line (no_fixed_abode may have none)")
            if self.postcode is None:
                raise ValueError("an address has a postcode (no_fixed_abode may have none)")
        return self


class RestrictionVaried(Strict):
    restriction: UUID
    details: Text | None = None
    ends_on: date | None = None
    rationale: Text


class RestrictionEnded(Strict):
    restriction: UUID
    ended_on: date
    reason: Literal["expired", "discharged", "revoked", "replaced", "other"]


class AreaTransferRequested(Strict):
    to_area: Area
    receiving: Agency
    rationale: Text
    handover_meeting_on: date | None = None


class AreaTransferAccepted(Strict):
    transfer: UUID
    accepted_on: date


def _breach_of(value: Any) -> str:
    # One field, so a refusal names `of` whichever of the two kinds of value was meant.
    if value in BREACH_OF:
        return str(value)
    try:
        return str(UUID(str(value)))
    except ValueError:
        raise ValueError(
            "of is licence, notification_requirements, or the event_id of a restriction"
        ) from None


class BreachRecorded(Strict):
    of: Annotated[
        StorableText,
        AfterValidator(_breach_of),
        Field(description="licence, notification_requirements, or a restriction's event_id"),
    ]
    occurred_on: date
    action: Literal["warning", "recall", "arrest", "charge", "none"]


class RecallRecorded(Strict):
    recalled_on: date
    reason: Text


class FurtherOffenceRecorded(Strict):
    offence_summary: Text
    charged_on: date
    outcome: Literal["charged", "convicted", "acquitted", "nfa"]
    serious: StrictBool


class MappaStatusExplained(Strict):
    explained_on: date
    by: Agency
    level_explained: AnyLevel
    views_sought: StrictBool


class CriticalCaseRegistered(Strict):
    on: date
    rationale: Text


class CriticalCaseEnded(Strict):
    on: date
    rationale: Text


PAYLOADS: dict[str, type[Strict]] = {
    model.__name__: model
    for model in (
        AgencyPartnered,
        PartneringEnded,
        OfficerAssigned,
        EntryRecorded,
        RestrictionRecorded,
        RiskAssessmentRecorded,
        RiskManagementPlanUpdated,
        DisclosureDecisionRecorded,
        LevelChanged,
        CategoryChanged,
        LeadAgencyChanged,
        MeetingHeld,
        MinutesUploaded,
        ReferralMade,
        ReferralDecided,
        Level1ReviewRecorded,
        ActionSet,
        ActionCompleted,
        CustodyChanged,
        AreaTransferred,
        NominalDeregistered,
        NominalReregistered,
        EntryRetracted,
        IdentifierAdded,
        IdentifierCorrected,
        PersonalDetailsCorrected,
        AliasAdded,
        AliasRemoved,
        AddressRecorded,
        RestrictionVaried,
        RestrictionEnded,
        AreaTransferRequested,
        AreaTransferAccepted,
        BreachRecorded,
        RecallRecorded,
        FurtherOffenceRecorded,
        MappaStatusExplained,
        CriticalCaseRegistered,
        CriticalCaseEnded,
    )
}

EventType = Literal[tuple(PAYLOADS)]  # type: ignore[valid-type]
