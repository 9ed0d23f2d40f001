"""MAPPA categories, levels and areas, and the timeliness rules of docs/design.md#rules.

Each rule carries its source once, next to its constant; "000" is the 2015 follow-up
inspection of MAPPA and "004" the 2022 effective practice guide (docs/design.md#sources).
"""

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from enum import IntEnum

from domain.calendar import add_working_days, london_date, working_days_between
from domain.errors import InvalidValue, InvariantViolated


class Category(IntEnum):
    REGISTERED_SEXUAL_OFFENDER = 1
    VIOLENT_OR_OTHER_SEXUAL = 2
    OTHER_DANGEROUS = 3
    TERRORISM = 4


class Level(IntEnum):
    ONE = 1
    TWO = 2
    THREE = 3


# The 42 MAPPA areas of England and Wales follow the police force areas; London is one area
# covering the Metropolitan and City of London forces.
AREAS = frozenset(
    {
        "avon-somerset",
        "bedfordshire",
        "cambridgeshire",
        "cheshire",
        "cleveland",
        "cumbria",
        "derbyshire",
        "devon-cornwall",
        "dorset",
        "durham",
        "dyfed-powys",
        "essex",
        "gloucestershire",
        "greater-manchester",
        "gwent",
        "hampshire",
        "hertfordshire",
        "humberside",
        "kent",
        "lancashire",
        "leicestershire-rutland",
        "lincolnshire",
        "london",
        "merseyside",
        "norfolk",
        "north-wales",
        "north-yorkshire",
        "northamptonshire",
        "northumbria",
        "nottinghamshire",
        "south-wales",
        "south-yorkshire",
        "staffordshire",
        "suffolk",
        "surrey",
        "sussex",
        "thames-valley",
        "warwickshire",
        "west-mercia",
        "west-midlands",
        "west-yorkshire",
        "wiltshire",
    }
)


def _whole_number(value: object, what: str, field: str) -> int:
    # bool is an int in Python; `true` in a JSON payload is not a level.
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidValue(f"the {what} must be a whole number, not {value!r}.", field=field)
    return value


def parse_category(value: object) -> Category:
    """Return the MAPPA category 1 to 4, or raise InvalidValue."""
    number = _whole_number(value, "MAPPA category", "category")
    try:
        return Category(number)
    except ValueError:
        raise InvalidValue(
            f"{number} is not a MAPPA category: use 1, 2, 3 or 4.", field="category"
        ) from None


def parse_level(value: object) -> Level:
    """Return the MAPPA level 1 to 3, or raise InvalidValue."""
    number = _whole_number(value, "MAPPA level", "level")
    try:
        return Level(number)
    except ValueError:
        raise InvalidValue(
            f"{number} is not a MAPPA level: use 1, 2 or 3.", field="level"
        ) from None


def parse_area(slug: str) -> str:
    """Return the MAPPA area slug, or raise InvalidValue."""
    if not isinstance(slug, str):
        raise InvalidValue(
            "a MAPPA area must be text, such as leicestershire-rutland.", field="area"
        )
    value = slug.strip().lower()
    if value not in AREAS:
        raise InvalidValue(
            f"{slug!r} is not one of the 42 MAPPA areas of England and Wales "
            "(for example leicestershire-rutland or greater-manchester).",
            field="area",
        )
    return value


def require_category_level(category: Category, level: Level) -> None:
    """Refuse a combination of category and level that MAPPA does not allow."""
    # "Category 3 cases can only be managed at level 2 or 3"; 004, figure 3.
    if category is Category.OTHER_DANGEROUS and level is Level.ONE:
        raise InvariantViolated("category 3 is managed at level 2 or 3 only", field="level")


def _multi_agency(level: Level, what: str) -> Level:
    if level not in (Level.TWO, Level.THREE):
        raise InvalidValue(f"{what} are kept for level 2 and 3 cases only.", field="level")
    return level


# --- Minutes ---------------------------------------------------------------------------

MINUTES_DEADLINE = {Level.TWO: 10, Level.THREE: 5}  # working days; 000, para 5.37


@dataclass(frozen=True)
class MinutesTimeliness:
    due_on: date
    working_days_taken: int
    late: bool


def minutes_due_on(meeting_date: date, level: Level) -> date:
    """The last day on which the minutes of a meeting are on time."""
    return add_working_days(meeting_date, MINUTES_DEADLINE[_multi_agency(level, "minutes")])


def minutes_timeliness(
    meeting_date: date, level: Level, recorded_at: datetime
) -> MinutesTimeliness:
    """Whether minutes recorded at an instant were posted within the deadline."""
    due_on = minutes_due_on(meeting_date, level)
    posted_on = london_date(recorded_at)
    return MinutesTimeliness(
        due_on=due_on,
        working_days_taken=working_days_between(meeting_date, posted_on),
        late=posted_on > due_on,
    )


# --- Reviews ---------------------------------------------------------------------------

REVIEW_INTERVAL_WEEKS = {Level.TWO: 16, Level.THREE: 8}  # 000, para 5.1
LEVEL1_REVIEW_WEEKS = 16  # good practice; 000 para 4.9; 004 North Wales


def next_review_due(held_on: date, level: Level) -> date:
    """The date by which the next level 2 or 3 meeting is due after one held on held_on."""
    weeks = REVIEW_INTERVAL_WEEKS[_multi_agency(level, "review meetings")]
    return held_on + timedelta(weeks=weeks)


def level1_review_due(since: date) -> date:
    """The date a level 1 review is due, after registration or the last level 1 review."""
    return since + timedelta(weeks=LEVEL1_REVIEW_WEEKS)


# --- Identification and referral -------------------------------------------------------

IDENTIFICATION_DAYS = 3  # calendar days from sentence; 000, para 4.1
REFERRAL_ANSWER_DAYS = 10  # calendar days from receipt; 000, para 4.8
CUSTODY_REFERRAL_MONTHS = 6  # calendar months before release; 000, para 4.11


def registered_late(sentence_date: date, recorded_at: datetime) -> bool:
    """Whether a registration came more than three days after sentence."""
    return (london_date(recorded_at) - sentence_date).days > IDENTIFICATION_DAYS


def referral_answered_late(referred_at: datetime, decided_on: date | None, today: date) -> bool:
    """Whether a referral was, or still unanswered is, answered more than ten days after receipt."""
    received_on = london_date(referred_at)
    answered_by = decided_on if decided_on is not None else today
    return (answered_by - received_on).days > REFERRAL_ANSWER_DAYS


def add_calendar_months(d: date, months: int) -> date:
    """The same day of the month `months` later, or that month's last day when it is shorter."""
    month_index = d.year * 12 + (d.month - 1) + months
    year, month = divmod(month_index, 12)
    month += 1
    first_of_next = date(year + month // 12, month % 12 + 1, 1)
    days_in_month = (first_of_next - timedelta(days=1)).day
    return date(year, month, min(d.day, days_in_month))


def referral_from_custody_late(referred_on: date, expected_release_on: date) -> bool:
    """Whether a referral from custody came less than six months before the expected release."""
    return expected_release_on < add_calendar_months(referred_on, CUSTODY_REFERRAL_MONTHS)
