"""The national identifiers a nominal is known by, checked and put in one canonical form.

Canonical forms matter because an identifier belongs to at most one nominal: two spellings
of the same PNC ID must collide, so every identifier is normalised before it is stored or
looked up. For the same reason identifiers are ASCII, checked before anything else: Python
counts Arabic-Indic, full-width and many other digits as digits, and upper-cases a dotless
i or a long s to I and S, so `X١٢٣٤٥٦` passed as a CRN beside `X123456` (issue 16).
"""

import re
from datetime import date
from typing import Any

from domain.errors import InvalidValue

IDENTIFIER_KINDS = ("pnc", "crn", "noms", "cro")

# PNC IDs and CRO numbers share one check-letter alphabet: the 23 letters left once I, O
# and S (too easily read as digits) are taken out.
CHECK_LETTERS = "ZABCDEFGHJKLMNPQRTUVWXY"

# re.ASCII: \d is 0-9 only (the ASCII check below comes first; this is the second lock).
_PNC = re.compile(r"(?P<year>\d{2}|\d{4})/(?P<serial>\d{1,7})(?P<letter>[A-Z])", re.ASCII)
_CRN = re.compile(r"[A-Z]\d{6}", re.ASCII)
_NOMS = re.compile(r"[A-Z]\d{4}[A-Z]{2}", re.ASCII)
_CRO = re.compile(r"(?P<serial>\d{1,6})/(?P<year>\d{2})(?P<letter>[A-Z])", re.ASCII)
_CRO_SF = re.compile(r"SF(?P<year>\d{2})/(?P<serial>\d{1,6})(?P<letter>[A-Z])", re.ASCII)

# No worked example in these sentences: a valid example could be the very identifier the
# user mistyped, and the message would then reveal its check letter.
_PNC_FORMAT = (
    "a PNC ID has the form YYYY/NNNNNNNA, a year, a serial of up to seven digits and a check letter"
)
_CRO_FORMAT = (
    "a CRO number has the form NNNNNN/YYA (a serial of up to six digits, a two-digit year "
    "and a check letter) or SFYY/NNNNNNA"
)


def _cleaned(raw: object, kind: str) -> str:
    if not isinstance(raw, str):
        raise InvalidValue(f"the {kind} identifier must be text", field=kind)
    value = raw.strip()
    # Before upper(): it turns a dotless i into I and a long s into S.
    if not value.isascii():
        odd = next(c for c in value if not c.isascii())
        raise InvalidValue(
            f"{value!r} is not a {kind.upper()}: identifiers are written with the ASCII letters "
            f"A to Z, the digits 0 to 9 and a slash only, and {odd!r} (U+{ord(odd):04X}) is none "
            "of them.",
            field=kind,
        )
    return value.upper()


def _check_letter(two_digit_year: int, serial: int, serial_digits: int) -> str:
    return CHECK_LETTERS[(two_digit_year * 10**serial_digits + serial) % 23]


def normalise_pnc(raw: str, today: date) -> str:
    """Return the PNC ID as YYYY/NNNNNNNA, or raise InvalidValue."""
    value = _cleaned(raw, "pnc")
    match = _PNC.fullmatch(value)
    if match is None:
        raise InvalidValue(f"{value!r} is not a PNC ID: {_PNC_FORMAT}.", field="pnc")
    year_text, serial, letter = match["year"], int(match["serial"]), match["letter"]
    if len(year_text) == 2:
        short_year = int(year_text)
        century = 1900 if short_year > today.year % 100 else 2000
        year = century + short_year
    else:
        year = int(year_text)
        if year > today.year:
            raise InvalidValue(
                f"{value!r} is not a PNC ID: its year {year} is in the future.", field="pnc"
            )
    # The check letter is deliberately not revealed: it would turn a typo into a valid-looking
    # identifier of somebody else.
    if letter != _check_letter(year % 100, serial, 7):
        raise InvalidValue(
            f"{value!r} is not a PNC ID: the check letter does not match the year and "
            f"serial; {_PNC_FORMAT}.",
            field="pnc",
        )
    return f"{year:04d}/{serial:07d}{letter}"


def normalise_crn(raw: str) -> str:
    """Return the probation case reference number as X123456, or raise InvalidValue."""
    value = _cleaned(raw, "crn")
    if _CRN.fullmatch(value) is None:
        raise InvalidValue(
            f"{value!r} is not a CRN: a CRN is one letter then six digits (for example X123456).",
            field="crn",
        )
    return value


def normalise_noms(raw: str) -> str:
    """Return the NOMS number as A1234BC, or raise InvalidValue."""
    value = _cleaned(raw, "noms")
    if _NOMS.fullmatch(value) is None:
        raise InvalidValue(
            f"{value!r} is not a NOMS number: a NOMS number is a letter, four digits and two "
            "letters (for example A1234BC).",
            field="noms",
        )
    return value


def normalise_cro(raw: str) -> str:
    """Return the CRO number as NNNNNN/YYA or SFYY/NNNNNNA, or raise InvalidValue."""
    value = _cleaned(raw, "cro")
    if (match := _CRO.fullmatch(value)) is not None:
        canonical = "{serial:06d}/{year}{letter}"
    elif (match := _CRO_SF.fullmatch(value)) is not None:
        canonical = "SF{year}/{serial:06d}{letter}"
    else:
        raise InvalidValue(f"{value!r} is not a CRO number: {_CRO_FORMAT}.", field="cro")
    year, serial, letter = match["year"], int(match["serial"]), match["letter"]
    if letter != _check_letter(int(year), serial, 6):
        raise InvalidValue(
            f"{value!r} is not a CRO number: the check letter does not match the year and "
            f"serial; {_CRO_FORMAT}.",
            field="cro",
        )
    return canonical.format(year=year, serial=serial, letter=letter)


def normalise_identifier(kind: str, raw: str, today: date) -> str:
    """Return the canonical form of an identifier of the given kind, or raise InvalidValue."""
    if kind == "pnc":
        return normalise_pnc(raw, today)
    if kind == "crn":
        return normalise_crn(raw)
    if kind == "noms":
        return normalise_noms(raw)
    if kind == "cro":
        return normalise_cro(raw)
    raise InvalidValue(
        f"{kind!r} is not a kind of identifier: use one of {', '.join(IDENTIFIER_KINDS)}.",
        field=kind if isinstance(kind, str) else None,
    )


def normalised_identifiers(raw: Any, today: date) -> dict[str, str]:
    """A registration's identifiers in their stored form; InvalidValue names a bad one."""
    if not isinstance(raw, dict) or not raw:
        raise InvalidValue("at least one identifier is required", field="identifiers")
    return {
        kind: normalise_field(kind, value, today)
        for kind, value in raw.items()
        if value is not None
    }


def normalise_field(kind: str, value: Any, today: date) -> str:
    """`normalise_identifier`, its refusal naming the field as a registration holds it."""
    try:
        return normalise_identifier(kind, str(value), today)
    except InvalidValue as e:
        raise InvalidValue(e.message, field=f"identifiers.{kind}") from None
