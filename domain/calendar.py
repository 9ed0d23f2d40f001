"""Working days in England and Wales, and the London-local date of an instant.

The one place that knows what a weekend and a bank holiday are. Bank holidays come from the
`holidays` package (England's list, which Wales shares: Easter Monday and substitute days
included, Scotland's and Northern Ireland's own days not).
"""

from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

import holidays

from domain.errors import InvalidValue

LONDON = ZoneInfo("Europe/London")

_SATURDAY = 5
# date.toordinal() counts from 0001-01-01, which was a Monday.
_ORDINAL_OF_A_MONDAY = 1


@lru_cache(maxsize=256)
def bank_holidays(year: int) -> frozenset[date]:
    """The England and Wales bank holidays of a year, substitute days included."""
    return frozenset(holidays.country_holidays("GB", subdiv="ENG", years=year))


def _is_weekend(d: date) -> bool:
    return d.weekday() >= _SATURDAY


def is_working_day(d: date) -> bool:
    """Tell whether the day is neither a weekend day nor an England and Wales bank holiday."""
    return not _is_weekend(d) and d not in bank_holidays(d.year)


def add_working_days(start: date, n: int) -> date:
    """Return the n-th working day after start (start itself when n is 0)."""
    if n < 0:
        raise ValueError(f"cannot count {n} working days: the count must not be negative")
    day = start
    remaining = n
    while remaining:
        day += timedelta(days=1)
        if is_working_day(day):
            remaining -= 1
    return day


def _weekdays_before(d: date) -> int:
    """Monday-to-Friday days from 0001-01-01 up to, but not including, d."""
    weeks, rest = divmod(d.toordinal() - _ORDINAL_OF_A_MONDAY, 7)
    return weeks * 5 + min(rest, 5)


def working_days_between(start: date, end: date) -> int:
    """Count the working days after start up to and including end (0 when end <= start)."""
    if end <= start:
        return 0
    # Arithmetic rather than a day-by-day walk: reports call this over long spans.
    weekdays = _weekdays_before(end) - _weekdays_before(start)
    # _weekdays_before excludes its argument: shift the window from [start, end) to (start, end].
    weekdays += (not _is_weekend(end)) - (not _is_weekend(start))
    holidays_on_weekdays = sum(
        1
        for year in range(start.year, end.year + 1)
        for holiday in bank_holidays(year)
        if start < holiday <= end and not _is_weekend(holiday)
    )
    return weekdays - holidays_on_weekdays


def london_date(instant: datetime) -> date:
    """Return the Europe/London calendar date of a timezone-aware instant."""
    if instant.tzinfo is None or instant.utcoffset() is None:
        raise InvalidValue(
            f"{instant.isoformat()} has no time zone: give the instant with its UTC offset."
        )
    return instant.astimezone(LONDON).date()


def end_of_london_day(d: date) -> datetime:
    """The instant the London day `d` ends (midnight starting the next day), in UTC: what was
    recorded before it was known by the end of that day."""
    return datetime.combine(d + timedelta(days=1), time(0), tzinfo=LONDON).astimezone(UTC)


def quarter_of(d: date) -> tuple[date, date]:
    """The first and last day of the calendar quarter holding `d` (January-March, ...)."""
    first = date(d.year, 3 * ((d.month - 1) // 3) + 1, 1)
    after = date(first.year + first.month // 10, (first.month + 2) % 12 + 1, 1)
    return first, after - timedelta(days=1)


def quarters_to(d: date, n: int) -> list[tuple[date, date]]:
    """The `n` calendar quarters up to and including the one holding `d`, oldest first."""
    out = [quarter_of(d)]
    while len(out) < n:
        out.insert(0, quarter_of(out[0][0] - timedelta(days=1)))
    return out
