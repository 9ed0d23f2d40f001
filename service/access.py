"""Who may do what: who may read a record, and the one table of which agencies may post
which event (docs/design.md#the-catalogue, #authentication-and-access).

Every posting rule here is applied after the object-level check (`has_standing`: the
caller's agency is a current partner of the record, or the receiving MAPPA unit accepting
an open transfer); registration is the exception, since no one is partnered yet. Every
read, whatever its route, is decided by `read_outcome`; which restricted entries a reader
sees whole, by `sees_restricted`.
"""

from collections.abc import Callable, Collection
from typing import Any

from domain.agencies import agency_type
from domain.nominal import Nominal
from domain.nominal.entries import may_read
from service.auth import Principal


class Forbidden(Exception):
    """The caller is known and may see the record, but may not do this."""


class NotFound(Exception):
    """No such record, or one the caller may not see: the two are told apart by no one."""


class JustificationRequired(Exception):
    """An auditor read without saying why."""


MIN_JUSTIFICATION = 10


RA = frozenset({"police", "probation", "prison"})
RA_AND_MAPPA = RA | {"mappa"}
MEETING_BODIES = frozenset({"mappa", "police", "probation"})

# A rule is either the set of agency types that may post, or a predicate over the
# caller's agency, the record and the payload for rules that name a particular agency.
Rule = frozenset[str] | Callable[[str, Nominal, dict[str, Any]], bool]


def _named_agency_or_mappa(field: str) -> Rule:
    def allowed(agency: str, nominal: Nominal, payload: dict[str, Any]) -> bool:
        return agency_type(agency) == "mappa" or payload.get(field) == agency

    return allowed


def _lead_or_mappa(agency: str, nominal: Nominal, payload: dict[str, Any]) -> bool:
    return agency_type(agency) == "mappa" or agency == nominal.lead_agency


def _assigned_or_mappa(agency: str, nominal: Nominal, payload: dict[str, Any]) -> bool:
    action = nominal.actions.get(payload.get("action_id", ""))
    if action is None:
        return True  # no such action: the record refuses it, naming it (422, not 403)
    return agency_type(agency) == "mappa" or agency == action["assigned_agency"]


def _poster_or_mappa(agency: str, nominal: Nominal, payload: dict[str, Any]) -> bool:
    return (
        agency_type(agency) == "mappa" or nominal.posted_by(payload.get("retracts", "")) == agency
    )


def _any_partner(agency: str, nominal: Nominal, payload: dict[str, Any]) -> bool:
    return True


def _the_receiving_unit(agency: str, nominal: Nominal, payload: dict[str, Any]) -> bool:
    transfer = nominal.transfers.get(str(payload.get("transfer")))
    if transfer is None:
        return True  # no such transfer: the record refuses it, naming it (422, not 403)
    return agency == transfer["receiving"]


MAY_REGISTER = frozenset({"police", "probation", "prison", "yot", "health"})

MAY_POST: dict[str, Rule] = {
    "AgencyPartnered": RA_AND_MAPPA,
    "PartneringEnded": RA_AND_MAPPA,
    "OfficerAssigned": _named_agency_or_mappa("agency"),
    "EntryRecorded": _any_partner,
    "RestrictionRecorded": RA_AND_MAPPA,
    "RiskAssessmentRecorded": frozenset({"police", "probation", "prison", "yot", "health"}),
    "RiskManagementPlanUpdated": _lead_or_mappa,
    "DisclosureDecisionRecorded": frozenset({"police", "probation", "mappa"}),
    "LevelChanged": RA_AND_MAPPA,
    "CategoryChanged": RA_AND_MAPPA,
    "LeadAgencyChanged": RA_AND_MAPPA,
    "MeetingHeld": MEETING_BODIES,
    "MinutesUploaded": MEETING_BODIES,
    "ReferralMade": _any_partner,
    "ReferralDecided": frozenset({"mappa"}),
    "Level1ReviewRecorded": RA_AND_MAPPA,
    "ActionSet": MEETING_BODIES,
    "ActionCompleted": _assigned_or_mappa,
    "CustodyChanged": frozenset({"prison", "probation", "police"}),
    "AreaTransferred": frozenset({"police", "probation", "mappa"}),
    "NominalDeregistered": frozenset({"police", "probation", "mappa"}),
    "NominalReregistered": frozenset({"police", "probation", "mappa"}),
    "EntryRetracted": _poster_or_mappa,
    # docs/design.md#lifecycles
    "IdentifierAdded": RA_AND_MAPPA,
    "IdentifierCorrected": RA_AND_MAPPA,
    "PersonalDetailsCorrected": RA_AND_MAPPA,
    "AliasAdded": RA_AND_MAPPA,
    "AliasRemoved": RA_AND_MAPPA,
    "AddressRecorded": RA,
    "RestrictionVaried": RA_AND_MAPPA,
    "RestrictionEnded": RA_AND_MAPPA,
    "AreaTransferRequested": frozenset({"police", "probation", "mappa"}),
    "AreaTransferAccepted": _the_receiving_unit,
    "BreachRecorded": RA_AND_MAPPA,
    "RecallRecorded": frozenset({"probation", "prison"}),
    "FurtherOffenceRecorded": frozenset({"police", "probation", "mappa"}),
    "MappaStatusExplained": RA_AND_MAPPA,
    "CriticalCaseRegistered": frozenset({"mappa"}),
    "CriticalCaseEnded": frozenset({"mappa"}),
}

# Events a caller not (yet) partnered to the record may post: an open transfer request
# naming the caller's agency as the receiving MAPPA unit is its standing to accept it.
# Anyone else not partnered gets the 404 a stranger gets (docs/design.md#lifecycles).


def has_standing(principal: Principal, nominal: Nominal | None, event_type: str) -> bool:
    """Whether the caller may post to this record at all: a current partner, or the
    receiving MAPPA unit of an open transfer request, for its acceptance."""
    if nominal is None:
        return False
    if nominal.is_partner(principal.agency):
        return True
    return (
        event_type == "AreaTransferAccepted"
        and principal.agency in nominal.open_transfer_receivers()
    )


def require_scope(principal: Principal, *scopes: str) -> None:
    """Refuse unless the token carries at least one of the scopes."""
    if not any(principal.has(s) for s in scopes):
        raise Forbidden(f"this needs the scope {' or '.join(scopes)}")


def read_outcome(
    principal: Principal, partners: Collection[str] | None, justification: str | None
) -> str | None:
    """How a read by the caller of a record with these partners is logged: "allowed",
    "refused", or None when there is no record to log it against (`partners` None).

    Partners with records:read read their records; auditors (audit:read) read any record,
    always saying why: JustificationRequired for one who gave no reason, whether or not
    the record exists."""
    if partners is not None and principal.has("records:read") and principal.agency in partners:
        return "allowed"
    if principal.has("audit:read"):
        require_justification(justification)
        return "allowed" if partners is not None else None
    return "refused" if partners is not None else None


def sees_restricted(
    principal: Principal, justification: str | None, poster: str, restricted_to: list[str]
) -> bool:
    """Whether the caller reads a restricted entry whole: the agency that posted it, an
    agency it names, or an auditor who says why (docs/adr/021). Everyone else who may read
    the record sees that it exists (type, date, posting agency), never what it says."""
    return _audits(principal, justification) or may_read(poster, restricted_to, principal.agency)


def hidden_entries(
    principal: Principal, nominal: Nominal, justification: str | None
) -> frozenset[str]:
    """The restricted entries of the record's view this caller sees only as placeholders."""
    if _audits(principal, justification):
        return frozenset()
    return nominal.restricted_from(principal.agency)


def _audits(principal: Principal, justification: str | None) -> bool:
    return principal.has("audit:read") and bool(
        justification and len(justification.strip()) >= MIN_JUSTIFICATION
    )


def require_justification(justification: str | None) -> None:
    if not justification or len(justification.strip()) < MIN_JUSTIFICATION:
        raise JustificationRequired(
            f"auditors say why in a Justification header of at least {MIN_JUSTIFICATION} characters"
        )


def require_may_register(principal: Principal) -> None:
    require_scope(principal, "records:write")
    if agency_type(principal.agency) not in MAY_REGISTER:
        raise Forbidden(f"a {agency_type(principal.agency)} agency may not register a nominal")


def require_may_post(
    principal: Principal, nominal: Nominal, event_type: str, payload: dict[str, Any]
) -> None:
    """Refuse unless the caller's agency may post this event type to this record."""
    rule = MAY_POST.get(event_type)
    if rule is None:
        raise Forbidden(f"{event_type} cannot be posted here")
    allowed = (
        agency_type(principal.agency) in rule
        if isinstance(rule, frozenset)
        else rule(principal.agency, nominal, payload)
    )
    if not allowed:
        raise Forbidden(f"{principal.agency} may not post {event_type} to this record")


# The national integration clients post HMPPS domain events for the probation and prison
# services; a token of another agency type is refused even if it carries inbound:hmpps.
INBOUND_CLIENTS = frozenset({"probation", "prison"})


def require_inbound_client(principal: Principal) -> None:
    """Refuse unless this is a national probation or prison integration client."""
    require_scope(principal, "records:write")
    require_scope(principal, "inbound:hmpps")
    kind = agency_type(principal.agency)
    if kind not in INBOUND_CLIENTS:
        raise Forbidden(f"a {kind} agency may not post HMPPS domain events")
