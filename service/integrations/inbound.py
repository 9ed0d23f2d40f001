"""HMPPS domain events in: reading what the probation and prison systems announce, and
translating it into events of the record (docs/integrating.md lists every mapping;
docs/adr/007-integrations.md says why it works this way).

Reading (`read_message`) and translating (`translate`) are pure: they take the message,
the record as it stands and nothing else. A message is read through pydantic models like
every other payload (`SnsNotification`, `DomainEvent`, `PersonReference`): unknown fields
are ignored, since producers add them, and the first field that is wrong is named in a 400.
Dates are parsed strictly (`instant`): ISO 8601, a date alone, or Java's Date.toString()
with a zone it names unambiguously; nothing is guessed. Applying a translation is
`Records.apply_inbound`, which runs the same invariants and the same idempotent save as
any post.

Each message is applied at most once. Its key is the SNS `MessageId`, or the SHA-256 of
the event's canonical JSON when it arrives bare; the event ids of what it becomes are
derived from that key (uuid5), so a message seen before finds its events in the
event index instead of appending them again.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Annotated, Any, TypeVar
from uuid import UUID, uuid5
from zoneinfo import ZoneInfo

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainValidator,
    StrictStr,
    StringConstraints,
    ValidationError,
    ValidationInfo,
    field_validator,
)

from domain.calendar import london_date
from domain.chain import canonical_json, format_instant
from domain.errors import DomainError, InvalidValue, InvariantViolated, NoChange
from domain.identifiers import normalise_identifier
from domain.nominal import Nominal
from service import access
from service.auth import Principal
from service.payloads import first_unstorable
from service.records import Conflict, NewEvent, Records

INBOUND_NAMESPACE = UUID("3d0c52f4-9a8e-4f0b-b1a7-6a2f6b0e7c41")
LONDON = ZoneInfo("Europe/London")

REGISTRATION_ADDED = "probation-case.registration.added"
REGISTRATION_UPDATED = "probation-case.registration.updated"
REGISTRATION_DEREGISTERED = "probation-case.registration.deregistered"
PRISONER_RECEIVED = "prison-offender-events.prisoner.received"
PRISONER_RELEASED = "prison-offender-events.prisoner.released"
PRISON_IDENTIFIER_ADDED = "probation-case.prison-identifier.added"

# What each HMPPS event type can become; the event ids of a message are derived from its
# key and these types, so a repeat finds what the first delivery stored.
MAPPING: dict[str, tuple[str, ...]] = {
    REGISTRATION_ADDED: ("CategoryChanged", "LevelChanged"),
    REGISTRATION_UPDATED: ("CategoryChanged", "LevelChanged"),
    REGISTRATION_DEREGISTERED: ("NominalDeregistered",),
    PRISONER_RECEIVED: ("CustodyChanged",),
    PRISONER_RELEASED: ("CustodyChanged",),
    PRISON_IDENTIFIER_ADDED: ("IdentifierAdded",),
}

MAPPA_REGISTER = "MAPP"
CATEGORY_CODES = {"M1": 1, "M2": 2, "M3": 3, "M4": 4}
LEVEL_CODES = {"M0": None, "M1": 1, "M2": 2, "M3": 3}  # M0: the level is not yet set

# Identifier types as producers spell them -> our identifier kinds.
IDENTIFIER_TYPES = {"crn": "crn", "noms": "noms", "nomsnumber": "noms", "noms_number": "noms"}

MAX_MESSAGE_BYTES = 256 * 1024  # the SNS limit

M = TypeVar("M", bound=BaseModel)


class MalformedMessage(DomainError):
    """The body is not an HMPPS domain event we can read (400; the field names what)."""


class Skip(Exception):
    """The message is understood but changes nothing; `outcome` says which kind of nothing."""

    def __init__(self, outcome: str, reason: str) -> None:
        super().__init__(reason)
        self.outcome = outcome
        self.reason = reason


@dataclass(frozen=True)
class InboundMessage:
    """One HMPPS domain event, unwrapped from SNS if it came wrapped."""

    key: str
    event_type: str
    occurred_at: datetime
    identifiers: dict[str, str]
    additional: dict[str, Any] = field(default_factory=dict)
    detail_url: str | None = None

    def event_id(self, our_type: str) -> UUID:
        """The id of the event of our type this message becomes (the same on every delivery)."""
        return uuid5(INBOUND_NAMESPACE, f"{self.key}:{our_type}")

    def candidate_event_ids(self) -> list[UUID]:
        return [self.event_id(t) for t in MAPPING.get(self.event_type, ())]

    @property
    def source(self) -> str:
        return f"HMPPS {self.event_type} (message {self.key})"


@dataclass(frozen=True)
class Translated:
    """One event of the record that a message becomes."""

    event_id: UUID
    type: str
    occurred_at: str
    payload: dict[str, Any]


# -- reading -----------------------------------------------------------------------------


class _Lenient(BaseModel):
    """Producers add fields as their schemas grow: what is not read here is ignored."""

    model_config = ConfigDict(extra="ignore", populate_by_name=True, frozen=True)


def _schema_version(value: Any) -> Any:
    """Producers send the schema version as 1 or "1"; anything else is not an event."""
    if isinstance(value, bool) or value is None:
        raise ValueError("a number is required")
    if isinstance(value, int) or (isinstance(value, float) and value >= 0):
        return value
    if isinstance(value, str) and re.fullmatch(r"\s*\d+(\.\d+)?\s*", value):
        return value
    raise ValueError(f"{value!r} is not a number")


def _instant_text(value: Any) -> datetime:
    try:
        return instant(value)
    except InstantError as e:
        raise ValueError(str(e)) from None


def _json_object(value: Any) -> Any:
    # The standard parser, as for a bare body: it keeps a lone surrogate escape, which
    # `_require_storable` then names (422), where pydantic's would refuse the whole Message.
    if not isinstance(value, str):
        raise ValueError("the event, as a string of JSON, is required")
    try:
        event = json.loads(value)
    except ValueError:
        raise ValueError("not valid JSON") from None
    if not isinstance(event, dict):
        raise ValueError("the event is a JSON object")
    return event


def _text_or_none(value: Any) -> Any:
    return value if isinstance(value, str) else None


Instant = Annotated[datetime, PlainValidator(_instant_text)]
SchemaVersion = Annotated[Any, AfterValidator(_schema_version)]
Stripped = Annotated[str, StringConstraints(strip_whitespace=True)]


class PersonIdentifier(_Lenient):
    type: StrictStr
    value: Any = Field(default=None, validate_default=True)

    @property
    def kind(self) -> str | None:
        """Our identifier kind for the producer's type; None for one this service does not keep."""
        return IDENTIFIER_TYPES.get(self.type.strip().lower())

    @field_validator("value")
    @classmethod
    def _valid_when_kept(cls, value: Any, info: ValidationInfo) -> Any:
        kind = IDENTIFIER_TYPES.get(str(info.data.get("type", "")).strip().lower())
        return value if kind is None else _normalised(kind, value)


class PersonReference(_Lenient):
    identifiers: list[PersonIdentifier] = Field(default_factory=list, max_length=100)


class DomainEvent(_Lenient):
    """An HMPPS domain event (hmpps-domain-events' schema), the parts this service reads."""

    event_type: Stripped | None = Field(default=None, alias="eventType")
    version: SchemaVersion
    occurred_at: Instant = Field(alias="occurredAt")
    detail_url: Annotated[str | None, BeforeValidator(_text_or_none)] = Field(
        default=None, alias="detailUrl"
    )
    additional: dict[str, Any] | None = Field(default=None, alias="additionalInformation")
    person: PersonReference | None = Field(default=None, alias="personReference")


class SnsNotification(_Lenient):
    """An SNS HTTP notification carrying a domain event as a JSON string."""

    message_id: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1)] = Field(
        alias="MessageId"
    )
    message: Annotated[dict[str, Any], BeforeValidator(_json_object)] = Field(alias="Message")
    attributes: dict[str, Any] | None = Field(default=None, alias="MessageAttributes")

    @property
    def event_type(self) -> str | None:
        attribute = (self.attributes or {}).get("eventType")
        return attribute.get("Value") if isinstance(attribute, dict) else None


def _validated(model: type[M], data: Any) -> M:
    """The model, or MalformedMessage naming the first field that is wrong (400)."""
    try:
        return model.model_validate(data)
    except ValidationError as e:
        first = e.errors()[0]
        field = ".".join(str(part) for part in first["loc"]) or "body"
        if first["type"] == "missing":
            raise MalformedMessage(f"{field} is required", field=field) from None
        message = first["msg"].removeprefix("Value error, ")
        raise MalformedMessage(f"{field}: {message}", field=field) from None


def read_message(body: Any) -> InboundMessage:
    """The domain event in a request body, bare or in an SNS notification."""
    if not isinstance(body, dict):
        raise MalformedMessage("the body is a JSON object", field="body")
    _require_storable(body)
    if "Message" in body or "Type" in body:
        kind = body.get("Type", "Notification")
        if kind != "Notification":
            raise Skip("unused_type", f"SNS {kind} messages are not handled here")
        notification = _validated(SnsNotification, body)
        key = "sns:" + notification.message_id
        _require_storable(notification.message)
        event = _validated(DomainEvent, notification.message)
        event_type = event.event_type or notification.event_type
    else:
        key = "sha256:" + hashlib.sha256(canonical_json(body)).hexdigest()
        event = _validated(DomainEvent, body)
        event_type = event.event_type
    if not isinstance(event_type, str) or not event_type.strip():
        raise MalformedMessage("eventType is required", field="eventType")
    additional = event.additional or {}
    return InboundMessage(
        key=key,
        event_type=event_type.strip(),
        occurred_at=event.occurred_at,
        identifiers=_identifiers(event.person, additional),
        additional=additional,
        detail_url=event.detail_url,
    )


def _require_storable(value: Any) -> None:
    """Refuse a message holding text the database cannot store, wherever it is: its key and
    type end up in the rationale of what it becomes (422 naming the field)."""
    found = first_unstorable(value)
    if found is not None:
        where, reason = found
        raise InvalidValue(f"{where} {reason}", field=where)


def _identifiers(person: PersonReference | None, additional: dict[str, Any]) -> dict[str, str]:
    found = {
        item.kind: item.value
        for item in (person.identifiers if person else [])
        if item.kind is not None
    }
    # Prison events also name the person in additionalInformation.
    if "noms" not in found and additional.get("nomsNumber") is not None:
        where = "additionalInformation.nomsNumber"
        try:
            found["noms"] = _normalised("noms", additional["nomsNumber"])
        except ValueError as e:
            raise MalformedMessage(f"{where}: {e}", field=where) from None
    if not found:
        raise MalformedMessage(
            "the event names the person by CRN or NOMS number",
            field="personReference.identifiers",
        )
    return found


def _normalised(kind: str, value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError(f"the {kind.upper()} is a string")
    try:
        return normalise_identifier(kind, value, date.today())
    except InvalidValue as e:
        raise ValueError(e.message) from None


# Java's Date.toString(): "Fri Jun 14 09:06:52 BST 2024".
_JAVA_DATE = re.compile(
    r"^(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun) (?P<mon>[A-Z][a-z]{2}) +(?P<day>\d{1,2}) "
    r"(?P<time>\d{2}:\d{2}:\d{2}) (?P<zone>[A-Z]{1,5}) (?P<year>\d{4})$"
)
_ZONES = {
    "GMT": UTC,
    "UTC": UTC,
    "Z": UTC,
    "BST": timezone(timedelta(hours=1)),
}


class InstantError(ValueError):
    """Not an instant as HMPPS producers write one."""


def parse_instant(value: Any, where: str) -> datetime:
    """`instant`, with MalformedMessage naming `where` for anything else."""
    try:
        return instant(value)
    except InstantError as e:
        raise MalformedMessage(f"{where}: {e}", field=where) from None


def instant(value: Any) -> datetime:
    """An instant as HMPPS producers write it, strictly: ISO 8601 (offset, Z, or London local
    time when none is given), a date alone (midnight in London), or Java's Date.toString()
    with a zone it names unambiguously (GMT, UTC, Z, BST). InstantError for anything else."""
    if not isinstance(value, str) or not value.strip():
        raise InstantError("a date or a timestamp, as text")
    text = value.strip()
    java = _JAVA_DATE.match(text)
    if java is not None:
        zone = _ZONES.get(java["zone"])
        if zone is None:
            raise InstantError(f"unknown time zone {java['zone']}")
        try:
            naive = datetime.strptime(
                f"{java['day']} {java['mon']} {java['year']} {java['time']}", "%d %b %Y %H:%M:%S"
            )
        except ValueError:
            raise InstantError(f"{text!r} is not a date") from None
        return naive.replace(tzinfo=zone).astimezone(UTC)
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise InstantError(
            f"{text!r} is neither ISO 8601 nor a date like 'Fri Jun 14 09:06:52 BST 2024'"
        ) from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=LONDON)
    return parsed.astimezone(UTC)


# -- translating -------------------------------------------------------------------------


def screen(message: InboundMessage) -> None:
    """Refuse what no record could use, before looking for the person: Skip or Malformed."""
    if message.event_type not in MAPPING:
        raise Skip("unused_type", f"{message.event_type} is not used by this service")
    if message.event_type in (REGISTRATION_ADDED, REGISTRATION_UPDATED):
        _require_mappa_register(message)
        _code(message, "registrationCategoryCode", dict(CATEGORY_CODES))
        _code(message, "registrationLevelCode", LEVEL_CODES)
    elif message.event_type == REGISTRATION_DEREGISTERED:
        _require_mappa_register(message)
    elif message.event_type == PRISONER_RECEIVED:
        _prison(message)
    elif message.event_type == PRISON_IDENTIFIER_ADDED:
        _both_identifiers(message)
    else:
        _release_reason(message)


def translate(message: InboundMessage, nominal: Nominal) -> list[Translated]:
    """What the message becomes on this record, in the order to apply it; Skip when nothing."""
    screen(message)
    if nominal.deregistered and message.event_type != REGISTRATION_DEREGISTERED:
        raise Skip("not_applied", "the record is deregistered")
    if message.event_type in (REGISTRATION_ADDED, REGISTRATION_UPDATED):
        return _registration(message, nominal)
    if message.event_type == REGISTRATION_DEREGISTERED:
        return _deregistration(message, nominal)
    if message.event_type == PRISONER_RECEIVED:
        return _received(message, nominal)
    if message.event_type == PRISON_IDENTIFIER_ADDED:
        return _prison_identifier(message, nominal)
    return _released(message, nominal)


def _occurred(message: InboundMessage) -> str:
    return format_instant(message.occurred_at)


def _require_mappa_register(message: InboundMessage) -> None:
    code = message.additional.get("registerTypeCode")
    if not isinstance(code, str):
        raise MalformedMessage(
            "additionalInformation.registerTypeCode is required",
            field="additionalInformation.registerTypeCode",
        )
    if code.strip().upper() != MAPPA_REGISTER:
        raise Skip("unused_type", f"register type {code} is not MAPPA ({MAPPA_REGISTER})")


def _code(message: InboundMessage, name: str, codes: dict[str, int | None]) -> int | None:
    raw = message.additional.get(name)
    if raw is None or raw == "":
        return None
    value = str(raw).strip().upper()
    if value not in codes:
        raise MalformedMessage(
            f"{name} is one of {', '.join(codes)}, not {raw!r}",
            field=f"additionalInformation.{name}",
        )
    return codes[value]


def _registration(message: InboundMessage, nominal: Nominal) -> list[Translated]:
    _require_mappa_register(message)
    category = _code(message, "registrationCategoryCode", dict(CATEGORY_CODES))
    level = _code(message, "registrationLevelCode", LEVEL_CODES)
    rationale = f"From {message.source}"
    changes: list[Translated] = []
    if category is not None and category != nominal.category:
        changes.append(
            Translated(
                message.event_id("CategoryChanged"),
                "CategoryChanged",
                _occurred(message),
                {"to": category, "rationale": rationale},
            )
        )
    if level is not None and level != nominal.level:
        level_change = Translated(
            message.event_id("LevelChanged"),
            "LevelChanged",
            _occurred(message),
            {
                "to": level,
                "rationale": rationale,
                "decided_on": london_date(message.occurred_at).isoformat(),
            },
        )
        # Category 3 exists only at levels 2 and 3: order the two changes so that the
        # record never passes through category 3 at level 1.
        if nominal.category == 3 and level == 1:
            changes.append(level_change)
        else:
            changes.insert(0, level_change)
    if not changes:
        raise Skip("no_change", "the record already holds this MAPPA category and level")
    return changes


def _deregistration(message: InboundMessage, nominal: Nominal) -> list[Translated]:
    _require_mappa_register(message)
    if nominal.deregistered:
        raise Skip("no_change", "the record is already deregistered")
    return [
        Translated(
            message.event_id("NominalDeregistered"),
            "NominalDeregistered",
            _occurred(message),
            {"rationale": f"MAPPA registration ended: from {message.source}"},
        )
    ]


def _prison(message: InboundMessage) -> str:
    prison_id = message.additional.get("prisonId")
    if not isinstance(prison_id, str) or not re.fullmatch(r"[A-Za-z0-9-]{1,64}", prison_id.strip()):
        raise MalformedMessage(
            "additionalInformation.prisonId names the prison, like LEI",
            field="additionalInformation.prisonId",
        )
    return f"prison:{prison_id.strip()}"


def _received(message: InboundMessage, nominal: Nominal) -> list[Translated]:
    establishment = _prison(message)
    custody = nominal.custody
    in_custody = custody is not None and custody["status"] != "released"
    if in_custody and custody is not None and custody.get("establishment") == establishment:
        raise Skip("no_change", f"the record already shows custody at {establishment}")
    status = "transferred" if in_custody else "received"
    return [
        Translated(
            message.event_id("CustodyChanged"),
            "CustodyChanged",
            _occurred(message),
            {"status": status, "establishment": establishment},
        )
    ]


def _release_reason(message: InboundMessage) -> None:
    reason = message.additional.get("reason")
    if not isinstance(reason, str):
        raise MalformedMessage(
            "additionalInformation.reason is required", field="additionalInformation.reason"
        )
    if reason.strip().upper() != "RELEASED":
        raise Skip("unused_type", f"a movement out for {reason} is not a release from custody")


def _released(message: InboundMessage, nominal: Nominal) -> list[Translated]:
    _release_reason(message)
    custody = nominal.custody
    if custody is None or custody["status"] == "released":
        raise Skip("no_change", "the record does not show the person in custody")
    return [
        Translated(
            message.event_id("CustodyChanged"),
            "CustodyChanged",
            _occurred(message),
            {"status": "released"},
        )
    ]


def _both_identifiers(message: InboundMessage) -> None:
    if not {"crn", "noms"} <= set(message.identifiers):
        raise MalformedMessage(
            "a prison identifier added names the person by CRN and NOMS number",
            field="personReference.identifiers",
        )


def _prison_identifier(message: InboundMessage, nominal: Nominal) -> list[Translated]:
    """The probation case has been matched to a prison record: the record found by one of
    the two identifiers learns the other, so later messages naming either find it."""
    _both_identifiers(message)
    missing = []
    for kind in ("crn", "noms"):
        held, value = nominal.identifiers.get(kind), message.identifiers[kind]
        if held is not None and held != value:
            raise Skip(
                "not_applied",
                f"the record holds another {kind.upper()}: if it is wrong, a partner corrects "
                "it (IdentifierCorrected)",
            )
        if held is None:
            missing.append(kind)
    if not missing:
        raise Skip("no_change", "the record already holds the CRN and the NOMS number")
    [kind] = missing  # the record was found by the other one
    return [
        Translated(
            message.event_id("IdentifierAdded"),
            "IdentifierAdded",
            _occurred(message),
            {"kind": kind, "value": message.identifiers[kind]},
        )
    ]


@dataclass(frozen=True)
class InboundResult:
    """What became of one message: `outcome` and a sentence, and the events it stored."""

    outcome: (
        str  # applied | already_applied | unknown_person | unused_type | no_change | not_applied
    )
    reason: str | None
    message_key: str
    nominal_id: str | None = None
    events: Sequence[dict[str, Any]] = ()

    @property
    def status(self) -> int:
        return {"applied": 201, "already_applied": 200}.get(self.outcome, 202)


# -- receiving: the service method the route calls ----------------------------------------


def receive(records: Records, principal: Principal, body: Any) -> InboundResult:
    """Read, translate and apply one HMPPS domain event, at most once."""
    access.require_inbound_client(principal)
    try:
        message = read_message(body)
    except Skip as skip:
        return InboundResult(skip.outcome, skip.reason, message_key="")
    try:
        screen(message)
        nominal_id = _holder(records, message)

        def decide(nominal: Nominal) -> list[NewEvent]:
            return [
                NewEvent(t.event_id, t.type, t.occurred_at, t.payload)
                for t in translate(message, nominal)
            ]

        try:
            posted = records.apply_inbound(
                principal, nominal_id, message.candidate_event_ids(), decide
            )
        except NoChange as e:
            raise Skip("no_change", e.message) from None
        except InvariantViolated as e:
            raise Skip("not_applied", e.message) from None
        except Conflict as e:  # an identifier it would add is held by another record
            raise Skip("not_applied", str(e)) from None
    except Skip as skip:
        return InboundResult(skip.outcome, skip.reason, message.key)
    if any(p.nominal_id != str(nominal_id) for p in posted):
        # The events a message's key makes were stored for someone else: a producer re-used
        # a MessageId. Not "applied before", and the other record is not named.
        raise Conflict(
            f"message {message.key} was already applied to another person's record; "
            "each message needs a MessageId of its own"
        )
    created = any(p.created for p in posted)
    return InboundResult(
        "applied" if created else "already_applied",
        None if created else "this message was applied before",
        message.key,
        nominal_id=str(nominal_id),
        events=[_notice(p.event) for p in posted],
    )


def _holder(records: Records, message: InboundMessage) -> UUID:
    holders = {
        holder
        for kind, value in sorted(message.identifiers.items())
        if (holder := records.ledger.holder(kind, value)) is not None
    }
    if not holders:
        named = " or ".join(f"{k.upper()} {v}" for k, v in sorted(message.identifiers.items()))
        raise Skip("unknown_person", f"no record holds the {named}")
    if len(holders) > 1:
        raise Skip("not_applied", "the CRN and the NOMS number are held by different records")
    return holders.pop()


def _notice(event: dict[str, Any]) -> dict[str, Any]:
    return {k: event[k] for k in ("event_id", "type", "nominal_id", "version", "position")}
