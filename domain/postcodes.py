"""UK postcodes, checked and put in one form (an address's postcode, docs/design.md#lifecycles)."""

import re

from domain.errors import InvalidValue

# The outward code (area, district) and the inward code (sector, unit) of the Royal Mail's
# format, and GIR 0AA; letters the format never uses in a position are refused there.
_POSTCODE = re.compile(
    r"(?:GIR0AA|[A-PR-UWYZ](?:\d{1,2}|[A-HK-Y]\d{1,2}|\d[A-HJKPSTUW]|[A-HK-Y]\d[ABEHMNPRVWXY])"
    r"\d[ABD-HJLNP-UW-Z]{2})"
)


def normalise_postcode(raw: object) -> str:
    """The postcode upper-cased with one space before its inward code, or InvalidValue."""
    if not isinstance(raw, str):
        raise InvalidValue("a postcode is text", field="postcode")
    compact = re.sub(r"\s+", "", raw).upper()
    if not compact.isascii() or _POSTCODE.fullmatch(compact) is None:
        raise InvalidValue(
            f"{raw!r} is not a UK postcode (for example SW1A 1AA or M1 1AE)", field="postcode"
        )
    return f"{compact[:-3]} {compact[-3:]}"
