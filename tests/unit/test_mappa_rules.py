from datetime import UTC, date, datetime

import pytest

from domain.errors import InvalidValue, InvariantViolated
from domain.mappa import (
    AREAS,
    CUSTODY_REFERRAL_MONTHS,
    IDENTIFICATION_DAYS,
    LEVEL1_REVIEW_WEEKS,
    MINUTES_DEADLINE,
    REFERRAL_ANSWER_DAYS,
    REVIEW_INTERVAL_WEEKS,
    Category,
    Level,
    MinutesTimeliness,
    add_calendar_months,
    level1_review_due,
    minutes_due_on,
    minutes_timeliness,
    next_review_due,
    parse_area,
    parse_category,
    parse_level,
    referral_answered_late,
    referral_from_custody_late,
    registered_late,
    require_category_level,
)


def utc(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)


# --- Categories, levels, areas -----------------------------------------------------------


@pytest.mark.parametrize("value", [1, 2, 3, 4])
def test_given_a_category_from_one_to_four_when_parsed_then_accepted(value):
    assert parse_category(value) is Category(value)


@pytest.mark.parametrize("value", [0, 5, -1, True, "1", 1.0, None])
def test_given_a_category_out_of_range_or_not_an_int_when_parsed_then_refused(value):
    with pytest.raises(InvalidValue) as refused:
        parse_category(value)
    assert refused.value.field == "category"


@pytest.mark.parametrize("value", [1, 2, 3])
def test_given_a_level_from_one_to_three_when_parsed_then_accepted(value):
    assert parse_level(value) is Level(value)


@pytest.mark.parametrize("value", [0, 4, False, True, "2", 2.0, None])
def test_given_a_level_out_of_range_or_not_an_int_when_parsed_then_refused(value):
    with pytest.raises(InvalidValue) as refused:
        parse_level(value)
    assert refused.value.field == "level"


def test_given_the_areas_then_forty_two_including_london_as_one():
    assert len(AREAS) == 42
    assert "london" in AREAS
    assert not {"metropolitan", "city-of-london"} & AREAS


@pytest.mark.parametrize(
    ("slug", "area"),
    [
        ("leicestershire-rutland", "leicestershire-rutland"),
        (" Greater-Manchester ", "greater-manchester"),
    ],
)
def test_given_an_area_slug_when_parsed_then_normalised(slug, area):
    assert parse_area(slug) == area


@pytest.mark.parametrize("slug", ["", "leicestershire", "scotland", "greater manchester", None])
def test_given_an_unknown_area_when_parsed_then_refused(slug):
    with pytest.raises(InvalidValue) as refused:
        parse_area(slug)
    assert refused.value.field == "area"


def test_given_category_three_at_level_one_then_refused():
    with pytest.raises(InvariantViolated, match="category 3 is managed at level 2 or 3 only"):
        require_category_level(Category.OTHER_DANGEROUS, Level.ONE)


@pytest.mark.parametrize("category", list(Category))
@pytest.mark.parametrize("level", list(Level))
def test_given_any_other_combination_then_allowed(category, level):
    if (category, level) != (Category.OTHER_DANGEROUS, Level.ONE):
        require_category_level(category, level)


# --- Minutes: 000, para 5.37 -------------------------------------------------------------


def test_given_the_rule_then_ten_working_days_for_level_two_and_five_for_level_three():
    assert MINUTES_DEADLINE == {Level.TWO: 10, Level.THREE: 5}


def test_minutes_late_after_ten_working_days_for_level_two():
    assert minutes_due_on(meeting_date=date(2025, 4, 17), level=Level.TWO) == date(2025, 5, 6)


def test_given_a_level_three_meeting_before_easter_then_minutes_due_five_working_days_on():
    # 18 and 21 April 2025 are Good Friday and Easter Monday.
    assert minutes_due_on(date(2025, 4, 17), Level.THREE) == date(2025, 4, 28)


def test_given_a_level_two_meeting_before_christmas_2021_then_substitute_days_skipped():
    # 27 and 28 December 2021 and 3 January 2022 are substitute bank holidays.
    assert minutes_due_on(date(2021, 12, 20), Level.TWO) == date(2022, 1, 6)


def test_given_a_level_three_meeting_before_christmas_2022_then_substitute_day_skipped():
    # 25 December 2022 was a Sunday: 26 and 27 December were bank holidays.
    assert minutes_due_on(date(2022, 12, 20), Level.THREE) == date(2022, 12, 29)


def test_given_a_level_one_meeting_then_no_minutes_deadline():
    with pytest.raises(InvalidValue, match="level 2 and 3"):
        minutes_due_on(date(2025, 4, 17), Level.ONE)


def test_given_minutes_recorded_on_the_due_date_then_on_time():
    timeliness = minutes_timeliness(date(2025, 4, 17), Level.TWO, utc(2025, 5, 6, 16, 0))
    assert timeliness == MinutesTimeliness(
        due_on=date(2025, 5, 6), working_days_taken=10, late=False
    )


def test_given_minutes_recorded_the_day_after_the_due_date_then_late():
    timeliness = minutes_timeliness(date(2025, 4, 17), Level.TWO, utc(2025, 5, 7, 9, 0))
    assert timeliness == MinutesTimeliness(
        due_on=date(2025, 5, 6), working_days_taken=11, late=True
    )


def test_given_minutes_recorded_late_evening_utc_in_bst_then_already_the_next_london_day():
    # 23:30 UTC on 6 May is 00:30 on 7 May in London.
    timeliness = minutes_timeliness(date(2025, 4, 17), Level.TWO, utc(2025, 5, 6, 23, 30))
    assert timeliness.late
    assert timeliness.working_days_taken == 11


def test_given_minutes_recorded_a_minute_before_london_midnight_then_on_time():
    timeliness = minutes_timeliness(date(2025, 4, 17), Level.TWO, utc(2025, 5, 6, 22, 59))
    assert not timeliness.late


def test_given_level_three_minutes_on_day_five_and_six_then_on_time_and_late():
    on_time = minutes_timeliness(date(2025, 4, 17), Level.THREE, utc(2025, 4, 28, 12, 0))
    late = minutes_timeliness(date(2025, 4, 17), Level.THREE, utc(2025, 4, 29, 12, 0))
    assert (on_time.late, on_time.working_days_taken) == (False, 5)
    assert (late.late, late.working_days_taken) == (True, 6)


def test_given_minutes_recorded_on_a_bank_holiday_after_the_due_date_then_late_with_no_extra_day():
    # Meeting 10 December 2021, level 2: due 24 December; recorded on the 27th (substitute day).
    timeliness = minutes_timeliness(date(2021, 12, 10), Level.TWO, utc(2021, 12, 27, 10, 0))
    assert timeliness == MinutesTimeliness(
        due_on=date(2021, 12, 24), working_days_taken=10, late=True
    )


def test_given_minutes_recorded_on_the_meeting_day_then_no_working_days_taken():
    timeliness = minutes_timeliness(date(2025, 4, 17), Level.THREE, utc(2025, 4, 17, 18, 0))
    assert (timeliness.late, timeliness.working_days_taken) == (False, 0)


# --- Reviews: 000, paras 5.1 and 4.9 -----------------------------------------------------


def test_given_the_rule_then_level_two_every_sixteen_weeks_and_level_three_every_eight():
    assert REVIEW_INTERVAL_WEEKS == {Level.TWO: 16, Level.THREE: 8}
    assert LEVEL1_REVIEW_WEEKS == 16


def test_given_a_level_two_meeting_then_next_review_due_exactly_sixteen_weeks_on():
    assert next_review_due(date(2026, 1, 5), Level.TWO) == date(2026, 4, 27)


def test_given_a_level_three_meeting_then_next_review_due_exactly_eight_weeks_on():
    assert next_review_due(date(2026, 1, 5), Level.THREE) == date(2026, 3, 2)


def test_given_a_level_one_case_then_no_meeting_review_interval():
    with pytest.raises(InvalidValue):
        next_review_due(date(2026, 1, 5), Level.ONE)


def test_given_a_level_one_registration_then_review_due_sixteen_weeks_on():
    assert level1_review_due(date(2026, 1, 5)) == date(2026, 4, 27)


# --- Identification: 000, para 4.1 -------------------------------------------------------


def test_given_registration_on_day_three_after_sentence_then_on_time():
    assert IDENTIFICATION_DAYS == 3
    assert not registered_late(date(2026, 11, 18), utc(2026, 11, 21, 16, 0))


def test_given_registration_on_day_four_after_sentence_then_late():
    assert registered_late(date(2026, 11, 18), utc(2026, 11, 22, 9, 0))


def test_given_registration_late_evening_utc_in_bst_on_day_three_then_late():
    # 23:30 UTC on 4 June is 00:30 on 5 June in London: day four.
    assert registered_late(date(2025, 6, 1), utc(2025, 6, 4, 23, 30))


# --- Referrals: 000, paras 4.8 and 4.11 --------------------------------------------------


REFERRED_AT = utc(2026, 3, 2, 10, 0)


def test_given_a_referral_answered_on_day_ten_then_on_time():
    assert REFERRAL_ANSWER_DAYS == 10
    assert not referral_answered_late(REFERRED_AT, date(2026, 3, 12), today=date(2026, 6, 1))


def test_given_a_referral_answered_on_day_eleven_then_late():
    assert referral_answered_late(REFERRED_AT, date(2026, 3, 13), today=date(2026, 6, 1))


def test_given_an_undecided_referral_on_day_ten_then_not_yet_late():
    assert not referral_answered_late(REFERRED_AT, None, today=date(2026, 3, 12))


def test_given_an_undecided_referral_on_day_eleven_then_late():
    assert referral_answered_late(REFERRED_AT, None, today=date(2026, 3, 13))


def test_given_a_referral_received_late_evening_utc_in_bst_then_counted_from_the_london_day():
    # 23:30 UTC on 1 June is 2 June in London: 12 June is day ten.
    assert not referral_answered_late(utc(2025, 6, 1, 23, 30), date(2025, 6, 12), date(2025, 7, 1))


def test_given_a_custody_referral_exactly_six_months_before_release_then_on_time():
    assert CUSTODY_REFERRAL_MONTHS == 6
    assert not referral_from_custody_late(date(2026, 1, 15), date(2026, 7, 15))


def test_given_a_custody_referral_one_day_less_than_six_months_before_release_then_late():
    assert referral_from_custody_late(date(2026, 1, 15), date(2026, 7, 14))


def test_given_a_custody_referral_on_the_last_of_august_then_six_months_ends_in_february():
    # 31 August 2026 + 6 months is 28 February 2027: there is no 31 February.
    assert not referral_from_custody_late(date(2026, 8, 31), date(2027, 2, 28))
    assert referral_from_custody_late(date(2026, 8, 31), date(2027, 2, 27))


def test_given_a_custody_referral_after_the_expected_release_then_late():
    assert referral_from_custody_late(date(2026, 8, 31), date(2026, 8, 1))


@pytest.mark.parametrize(
    ("start", "months", "end"),
    [
        (date(2026, 8, 31), 6, date(2027, 2, 28)),
        (date(2027, 8, 31), 6, date(2028, 2, 29)),
        (date(2026, 3, 31), 6, date(2026, 9, 30)),
        (date(2026, 7, 31), 6, date(2027, 1, 31)),
        (date(2026, 12, 15), 1, date(2027, 1, 15)),
        (date(2026, 6, 30), 6, date(2026, 12, 30)),
        (date(2026, 1, 15), 0, date(2026, 1, 15)),
    ],
)
def test_given_a_date_when_adding_calendar_months_then_clamped_to_the_month_end(start, months, end):
    assert add_calendar_months(start, months) == end
