"""Agency codes (`TYPE:ID`) and which agencies form the MAPPA Responsible Authority."""

import re

from domain.errors import InvalidValue

AGENCY_TYPES = frozenset(
    {
        "police",
        "probation",
        "prison",
        "yot",
        "health",
        "social-care",
        "housing",
        "dwp",
        "education",
        "immigration",
        "electronic-monitoring",
        "mappa",
        "inspectorate",
    }
)

# The police, probation and prison services are the Responsible Authority (Criminal Justice
# Act 2003, s.325); every other agency has a Duty to Cooperate. docs/design.md#people-and-agencies.
RESPONSIBLE_AUTHORITY = frozenset({"police", "probation", "prison"})

_AGENCY = re.compile(r"(?P<type>[A-Za-z-]+):(?P<id>[A-Za-z0-9-]{1,64})")


def parse_agency(code: str) -> str:
    """Return the agency code with its type in lower case, or raise InvalidValue."""
    if not isinstance(code, str):
        raise InvalidValue("an agency code must be text of the form TYPE:ID", field="agency")
    value = code.strip()
    match = _AGENCY.fullmatch(value)
    if match is None:
        raise InvalidValue(
            f"{value!r} is not an agency code: use TYPE:ID, the ID being 1 to 64 letters, "
            "digits or hyphens (for example police:leicestershire).",
            field="agency",
        )
    kind = match["type"].lower()
    if kind not in AGENCY_TYPES:
        raise InvalidValue(
            f"{value!r} is not an agency code: {kind!r} is not a type of agency; use one of "
            f"{', '.join(sorted(AGENCY_TYPES))}.",
            field="agency",
        )
    return f"{kind}:{match['id']}"


def agency_type(code: str) -> str:
    """Return the type of an agency code (`police` for `police:kent`)."""
    return parse_agency(code).partition(":")[0]


def is_responsible_authority(code: str) -> bool:
    """Tell whether the agency belongs to the Responsible Authority (police, probation, prison)."""
    return agency_type(code) in RESPONSIBLE_AUTHORITY
