"""Who the person is: registration, identifiers, personal details, aliases, addresses, and
the registration's own lifecycle (deregistered, registered again).

What was written at registration is sometimes wrong or incomplete (docs/design.md#lifecycles): each
correction is an event of its own, so the record shows the value now, the values before,
and who changed them, when and why.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from domain.agencies import is_responsible_authority, parse_agency
from domain.calendar import london_date
from domain.chain import format_instant
from domain.errors import InvalidValue, InvariantViolated, NoChange
from domain.identifiers import IDENTIFIER_KINDS, normalise_identifier
from domain.mappa import parse_area, parse_category, parse_level, require_category_level
from domain.nominal.common import Apply, Decide, Payload, not_after_recording, stamp

if TYPE_CHECKING:
    from domain.nominal import Nominal

# The ethnic groups of the 2021 census of England and Wales (ONS), as codes, and "not
# stated" for a person who declined to say (the 004 standards count by ethnicity).
ETHNICITIES: dict[str, str] = {
    "asian_bangladeshi": "Asian, Asian British or Asian Welsh: Bangladeshi",
    "asian_chinese": "Asian, Asian British or Asian Welsh: Chinese",
    "asian_indian": "Asian, Asian British or Asian Welsh: Indian",
    "asian_pakistani": "Asian, Asian British or Asian Welsh: Pakistani",
    "asian_other": "Asian, Asian British or Asian Welsh: Other Asian",
    "black_african": "Black, Black British, Black Welsh, Caribbean or African: African",
    "black_caribbean": "Black, Black British, Black Welsh, Caribbean or African: Caribbean",
    "black_other": "Black, Black British, Black Welsh, Caribbean or African: Other Black",
    "mixed_white_asian": "Mixed or Multiple ethnic groups: White and Asian",
    "mixed_white_black_african": "Mixed or Multiple ethnic groups: White and Black African",
    "mixed_white_black_caribbean": "Mixed or Multiple ethnic groups: White and Black Caribbean",
    "mixed_other": "Mixed or Multiple ethnic groups: Other Mixed or Multiple ethnic groups",
    "white_british": "White: English, Welsh, Scottish, Northern Irish or British",
    "white_irish": "White: Irish",
    "white_gypsy_or_irish_traveller": "White: Gypsy or Irish Traveller",
    "white_roma": "White: Roma",
    "white_other": "White: Other White",
    "other_arab": "Other ethnic group: Arab",
    "other_any": "Other ethnic group: Any other ethnic group",
    "not_stated": "Not stated",
}

PERSONAL_DETAILS = ("name", "date_of_birth", "gender", "ethnicity")


# -- registration --------------------------------------------------------------------------


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


def require_founding_partner(registering: str, payload: Payload) -> None:
    """A record starts with a Responsible Authority partner: the registering or lead agency."""
    founders = [registering, payload.get("lead_agency")]
    if not any(a and is_responsible_authority(a) for a in founders):
        raise InvariantViolated(
            "a record starts with a Responsible Authority partner: register it as police, "
            "probation or prison, or name one of them as the lead agency",
            field="lead_agency",
        )


def _apply_registered(n: Nominal, e: Any) -> None:
    p = e.payload
    n.identifiers = dict(p["identifiers"])
    n.name = p["name"]
    n.aliases = list(p.get("aliases") or [])
    n.date_of_birth = p.get("date_of_birth")
    n.gender = p.get("gender")
    n.area = p["area"]
    n.area_history = [{"area": p["area"], "since": format_instant(e.timestamp)} | _by(e)]
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


def _by(e: Any) -> dict[str, Any]:
    return {"event_id": e.event_id, "type": type(e).__name__}


def _decide_deregistered(n: Nominal, p: Payload, _: datetime) -> Payload:
    return p


def _decide_reregistered(n: Nominal, p: Payload, _: datetime) -> Payload:
    if not n.deregistered:
        raise NoChange("the record is not deregistered")
    return p


def _apply_deregistered(n: Nominal, e: Any) -> None:
    n.deregistered = True


def _apply_reregistered(n: Nominal, e: Any) -> None:
    n.deregistered = False


# -- identifiers ---------------------------------------------------------------------------


def _kind(value: Any) -> str:
    if value not in IDENTIFIER_KINDS:
        raise InvalidValue(
            f"{value!r} is not a kind of identifier: use one of {', '.join(IDENTIFIER_KINDS)}",
            field="payload.kind",
        )
    return str(value)


def _normalised(kind: str, value: Any, recorded_at: datetime, field: str) -> str:
    try:
        return normalise_identifier(kind, str(value), london_date(recorded_at))
    except InvalidValue as e:
        raise InvalidValue(e.message, field=field) from None


def _decide_identifier_added(n: Nominal, p: Payload, recorded_at: datetime) -> Payload:
    kind = _kind(p["kind"])
    value = _normalised(kind, p["value"], recorded_at, "payload.value")
    held = n.identifiers.get(kind)
    if held == value:
        raise NoChange(f"the record already holds the {kind.upper()} {value}")
    if held is not None:
        raise InvariantViolated(
            f"the record holds a {kind.upper()} already ({held}): if it is wrong, correct it "
            "with IdentifierCorrected",
            field="payload.kind",
        )
    p["value"] = value
    return p


def _decide_identifier_corrected(n: Nominal, p: Payload, recorded_at: datetime) -> Payload:
    kind = _kind(p["kind"])
    held = n.identifiers.get(kind)
    if held is None:
        raise InvariantViolated(
            f"the record holds no {kind.upper()}: add one with IdentifierAdded",
            field="payload.kind",
        )
    # `from` names what is held; a value stored under older rules may no longer normalise.
    try:
        wrong = _normalised(kind, p["from"], recorded_at, "payload.from")
    except InvalidValue:
        wrong = str(p["from"]).strip().upper()
    if wrong != held:
        raise InvariantViolated(
            f"the record's {kind.upper()} is {held}, not {p['from']}: `from` names the "
            "identifier held",
            field="payload.from",
        )
    right = _normalised(kind, p["to"], recorded_at, "payload.to")
    if right == held:
        raise NoChange(f"the record already holds the {kind.upper()} {held}")
    p["from"], p["to"] = held, right
    return p


def _apply_identifier_added(n: Nominal, e: Any) -> None:
    p = e.payload
    n.identifiers[p["kind"]] = p["value"]
    n.identifier_changes.append(
        stamp(e) | {"change": "added", "kind": p["kind"], "from": None, "to": p["value"]}
    )


def _apply_identifier_corrected(n: Nominal, e: Any) -> None:
    p = e.payload
    n.identifiers[p["kind"]] = p["to"]
    change = {"kind": p["kind"], "from": p["from"], "to": p["to"], "rationale": p["rationale"]}
    n.identifier_changes.append(stamp(e) | {"change": "corrected"} | change)
    n.past_identifiers.append(
        {
            "kind": p["kind"],
            "value": p["from"],
            "until": format_instant(e.timestamp),
            "replaced_by": p["to"],
            "released_by": dict(e.recorded_by),
            "event_id": e.event_id,
            "rationale": p["rationale"],
        }
    )


# -- personal details and aliases ----------------------------------------------------------


def _decide_personal_details(n: Nominal, p: Payload, recorded_at: datetime) -> Payload:
    given = {f: p[f] for f in PERSONAL_DETAILS if p.get(f) is not None}
    if not given:
        raise InvalidValue(
            f"say what is corrected: one or more of {', '.join(PERSONAL_DETAILS)}",
            field="payload",
        )
    if "ethnicity" in given and given["ethnicity"] not in ETHNICITIES:
        raise InvalidValue(
            f"{given['ethnicity']!r} is not one of the ONS 2021 ethnic groups",
            field="payload.ethnicity",
        )
    if "date_of_birth" in given:
        not_after_recording(given["date_of_birth"], recorded_at, "payload.date_of_birth", "a birth")
    held = {f: getattr(n, f) for f in given}
    if all(held[f] == v for f, v in given.items()):
        raise NoChange("the record already holds these details")
    p["from"] = held
    return p


def _apply_personal_details(n: Nominal, e: Any) -> None:
    p = e.payload
    for field in PERSONAL_DETAILS:
        if p.get(field) is not None:
            setattr(n, field, p[field])
    changed = {f: {"from": p["from"].get(f), "to": p[f]} for f in p["from"]}
    n.personal_details_corrections.append(
        stamp(e) | {"changes": changed, "rationale": p["rationale"]}
    )


def same_name(a: dict[str, Any], b: dict[str, Any]) -> bool:
    """Two names are one if they read the same, whatever the case."""

    def key(name: dict[str, Any]) -> tuple[str, tuple[str, ...]]:
        return (
            str(name.get("family", "")).casefold(),
            tuple(str(g).casefold() for g in name.get("given") or []),
        )

    return key(a) == key(b)


def _decide_alias_added(n: Nominal, p: Payload, _: datetime) -> Payload:
    if any(same_name(a, p["alias"]) for a in n.aliases):
        raise NoChange("the record already holds this alias")
    return p


def _decide_alias_removed(n: Nominal, p: Payload, _: datetime) -> Payload:
    if not any(same_name(a, p["alias"]) for a in n.aliases):
        raise InvariantViolated("this is not an alias of the record", field="payload.alias")
    return p


def _apply_alias_added(n: Nominal, e: Any) -> None:
    n.aliases.append(e.payload["alias"])
    n.alias_changes.append(stamp(e) | {"change": "added", "alias": e.payload["alias"]})


def _apply_alias_removed(n: Nominal, e: Any) -> None:
    alias = e.payload["alias"]
    removed = [a for a in n.aliases if same_name(a, alias)]
    n.aliases = [a for a in n.aliases if not same_name(a, alias)]
    change = {"alias": removed[0] if removed else alias, "rationale": e.payload["rationale"]}
    n.alias_changes.append(stamp(e) | {"change": "removed"} | change)
    n.past_aliases.append(change | {"removed": stamp(e)})


# -- addresses -----------------------------------------------------------------------------


def current_address(n: Nominal) -> dict[str, Any] | None:
    """The address lived at from the latest date (the later recorded of two on one date)."""
    if not n.addresses:
        return None
    return max(enumerate(n.addresses), key=lambda a: (a[1]["from_date"], a[0]))[1]


def _place(address: dict[str, Any]) -> tuple[Any, ...]:
    return (address["kind"], tuple(address.get("lines") or ()), address.get("postcode"))


def _decide_address(n: Nominal, p: Payload, recorded_at: datetime) -> Payload:
    not_after_recording(p["from_date"], recorded_at, "payload.from_date", "moving in")
    current = current_address(n)
    if (
        current is not None
        and _place(current) == _place(p)
        and (current["from_date"] <= p["from_date"])
    ):
        raise NoChange("the record already holds this address")
    return p


def _apply_address(n: Nominal, e: Any) -> None:
    n.addresses.append(stamp(e) | e.payload)


DECIDE: dict[str, Decide] = {
    "NominalDeregistered": _decide_deregistered,
    "NominalReregistered": _decide_reregistered,
    "IdentifierAdded": _decide_identifier_added,
    "IdentifierCorrected": _decide_identifier_corrected,
    "PersonalDetailsCorrected": _decide_personal_details,
    "AliasAdded": _decide_alias_added,
    "AliasRemoved": _decide_alias_removed,
    "AddressRecorded": _decide_address,
}

APPLY: dict[str, Apply] = {
    "NominalRegistered": _apply_registered,
    "NominalDeregistered": _apply_deregistered,
    "NominalReregistered": _apply_reregistered,
    "IdentifierAdded": _apply_identifier_added,
    "IdentifierCorrected": _apply_identifier_corrected,
    "PersonalDetailsCorrected": _apply_personal_details,
    "AliasAdded": _apply_alias_added,
    "AliasRemoved": _apply_alias_removed,
    "AddressRecorded": _apply_address,
}
