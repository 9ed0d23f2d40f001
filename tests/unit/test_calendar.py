from datetime import UTC, date, datetime, timedelta, timezone

import pytest

from domain.calendar import (
    add_working_days,
    bank_holidays,
    is_working_day,
    london_date,
    working_days_between,
)
from domain.errors import InvalidValue


def _walk(start: date, end: date) -> int:
    """Working days in (start, end], counted one day at a time."""
    return sum(is_working_day(start + timedelta(days=i)) for i in range(1, (end - start).days + 1))


# --- Which days are working days ---------------------------------------------------------


@pytest.mark.parametrize("day", [date(2025, 4, 19), date(2025, 4, 20)])
def test_given_a_weekend_day_then_not_a_working_day(day):
    assert not is_working_day(day)


@pytest.mark.parametrize(
    "holiday",
    [
        date(2025, 4, 18),  # Good Friday
        date(2025, 4, 21),  # Easter Monday
        date(2025, 5, 5),  # Early May bank holiday
        date(2025, 12, 25),
        date(2025, 12, 26),
        date(2021, 12, 27),  # Christmas Day (Saturday) substituted
        date(2021, 12, 28),  # Boxing Day (Sunday) substituted
        date(2022, 1, 3),  # New Year's Day (Saturday) substituted
        date(2022, 12, 27),  # Christmas Day (Sunday) substituted
        date(2022, 9, 19),  # State funeral of Queen Elizabeth II
        date(2026, 12, 28),  # Boxing Day (Saturday) substituted
    ],
)
def test_given_an_england_and_wales_bank_holiday_then_not_a_working_day(holiday):
    assert not is_working_day(holiday)


@pytest.mark.parametrize(
    "scottish_only",
    [
        date(2025, 1, 2),  # 2 January
        date(2025, 8, 4),  # Scottish summer bank holiday
        date(2025, 12, 1),  # St Andrew's Day substituted
    ],
)
def test_given_a_scottish_only_holiday_then_a_working_day_in_england_and_wales(scottish_only):
    assert is_working_day(scottish_only)


def test_given_an_ordinary_tuesday_then_a_working_day():
    assert is_working_day(date(2025, 4, 22))


def test_given_a_year_then_its_bank_holidays_are_cached():
    assert bank_holidays(2025) is bank_holidays(2025)
    assert len(bank_holidays(2025)) == 8


# --- Adding working days -----------------------------------------------------------------


def test_given_easter_2025_when_adding_ten_working_days_then_good_friday_and_monday_skipped():
    assert add_working_days(date(2025, 4, 17), 10) == date(2025, 5, 6)


def test_given_zero_working_days_when_added_then_the_start():
    assert add_working_days(date(2025, 4, 19), 0) == date(2025, 4, 19)


def test_given_a_friday_when_adding_one_working_day_then_the_monday():
    assert add_working_days(date(2025, 3, 7), 1) == date(2025, 3, 10)


def test_given_a_weekend_start_when_adding_one_working_day_then_the_monday():
    assert add_working_days(date(2025, 3, 8), 1) == date(2025, 3, 10)


@pytest.mark.parametrize(
    ("start", "next_working_day"),
    [
        (date(2021, 12, 24), date(2021, 12, 29)),  # 25-26 on a weekend, 27-28 substituted
        (date(2021, 12, 31), date(2022, 1, 4)),  # 1 January on a Saturday, 3rd substituted
        (date(2022, 12, 23), date(2022, 12, 28)),  # 25 on a Sunday, 26 and 27 off
    ],
)
def test_given_christmas_with_substitute_days_when_adding_one_working_day(start, next_working_day):
    assert add_working_days(start, 1) == next_working_day


def test_given_a_negative_count_when_adding_working_days_then_refused():
    with pytest.raises(ValueError, match="must not be negative"):
        add_working_days(date(2025, 1, 6), -1)


# --- Counting working days ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("start", "end"),
    [(date(2025, 4, 17), date(2025, 4, 17)), (date(2025, 4, 17), date(2025, 4, 1))],
)
def test_given_an_end_not_after_the_start_when_counting_then_zero(start, end):
    assert working_days_between(start, end) == 0


def test_given_easter_2025_when_counting_to_the_minutes_deadline_then_ten():
    assert working_days_between(date(2025, 4, 17), date(2025, 5, 6)) == 10


def test_given_the_whole_of_2025_when_counting_then_weekdays_less_eight_bank_holidays():
    assert working_days_between(date(2024, 12, 31), date(2025, 12, 31)) == 261 - 8


def test_given_christmas_2021_when_counting_then_substitute_days_excluded():
    # 21, 22, 23, 24, 29, 30, 31 December and 4 January.
    assert working_days_between(date(2021, 12, 20), date(2022, 1, 4)) == 8


@pytest.mark.parametrize("weekday_offset", range(7))
@pytest.mark.parametrize("span", [1, 2, 5, 6, 7, 8, 13, 14, 15, 40, 400])
def test_given_any_start_and_span_then_the_count_matches_a_day_by_day_walk(weekday_offset, span):
    start = date(2021, 12, 20) + timedelta(days=weekday_offset)
    end = start + timedelta(days=span)
    assert working_days_between(start, end) == _walk(start, end)


@pytest.mark.parametrize("n", range(0, 25))
def test_given_n_working_days_added_then_counting_back_gives_n(n):
    start = date(2022, 12, 16)
    assert working_days_between(start, add_working_days(start, n)) == n


# --- London dates ------------------------------------------------------------------------


def test_given_a_late_evening_utc_instant_in_summer_then_the_london_date_is_the_next_day():
    assert london_date(datetime(2025, 6, 1, 23, 30, tzinfo=UTC)) == date(2025, 6, 2)


def test_given_a_late_evening_utc_instant_in_winter_then_the_london_date_is_the_same_day():
    assert london_date(datetime(2025, 12, 1, 23, 30, tzinfo=UTC)) == date(2025, 12, 1)


def test_given_an_instant_with_another_offset_then_converted_to_london():
    new_york = timezone(timedelta(hours=-5))
    assert london_date(datetime(2025, 1, 10, 20, 0, tzinfo=new_york)) == date(2025, 1, 11)


def test_given_the_night_clocks_go_forward_then_london_dates_follow_bst():
    assert london_date(datetime(2025, 3, 30, 0, 30, tzinfo=UTC)) == date(2025, 3, 30)
    assert london_date(datetime(2025, 3, 30, 23, 0, tzinfo=UTC)) == date(2025, 3, 31)


def test_given_a_naive_datetime_then_refused():
    with pytest.raises(InvalidValue, match="time zone"):
        london_date(datetime(2025, 6, 1, 12, 0))
