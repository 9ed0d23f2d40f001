from datetime import date

import pytest

from domain.errors import InvalidValue
from domain.identifiers import (
    IDENTIFIER_KINDS,
    normalise_crn,
    normalise_cro,
    normalise_identifier,
    normalise_noms,
    normalise_pnc,
)

TODAY = date(2026, 11, 22)


# --- PNC ---------------------------------------------------------------------------------


@pytest.mark.parametrize("pnc", ["2002/0073319Z", "1979/0163001B"])
def test_given_the_published_pnc_examples_when_normalised_then_they_are_valid(pnc):
    assert normalise_pnc(pnc, TODAY) == pnc


def test_given_lower_case_and_spaces_when_pnc_normalised_then_upper_case_and_stripped():
    assert normalise_pnc("  2002/0073319z\n", TODAY) == "2002/0073319Z"


def test_given_a_short_serial_when_pnc_normalised_then_serial_padded_to_seven_digits():
    assert normalise_pnc("2002/73319Z", TODAY) == "2002/0073319Z"


@pytest.mark.parametrize(
    ("short", "full"),
    [
        ("02/73319Z", "2002/0073319Z"),
        ("79/163001B", "1979/0163001B"),
        ("00/1A", "2000/0000001A"),
        # 26 is this year's two digits (not above it): 2026.
        ("26/1234567Q", "2026/1234567Q"),
        # 27 is above this year's two digits: 1927.
        ("27/1234567F", "1927/1234567F"),
    ],
)
def test_given_a_two_digit_year_when_pnc_normalised_then_year_pivots_on_this_year(short, full):
    assert normalise_pnc(short, TODAY) == full


def test_given_the_pivot_depends_on_today_when_pnc_normalised_then_a_later_today_moves_it():
    assert normalise_pnc("27/1234567F", date(2027, 1, 1)) == "2027/1234567F"


@pytest.mark.parametrize("wrong", ["2002/0073319A", "1979/0163001C", "02/73319Y"])
def test_given_a_wrong_check_letter_when_pnc_normalised_then_refused(wrong):
    with pytest.raises(InvalidValue) as refused:
        normalise_pnc(wrong, TODAY)
    assert "check letter" in refused.value.message
    assert "YYYY/NNNNNNNA" in refused.value.message
    assert refused.value.field == "pnc"


def test_given_a_wrong_check_letter_when_refused_then_the_message_does_not_reveal_the_right_one():
    messages = set()
    for wrong in ("2002/0073319A", "2002/0073319B", "2002/0073319Y"):
        with pytest.raises(InvalidValue) as refused:
            normalise_pnc(wrong, TODAY)
        messages.add(refused.value.message.replace(wrong, "<input>"))
        assert "0073319Z" not in refused.value.message
    # The same sentence whatever the wrong letter: nothing in it depends on the right one.
    assert len(messages) == 1


@pytest.mark.parametrize(
    "malformed",
    [
        "",
        "2002-0073319Z",
        "2002/0073319",
        "2002/12345678Z",
        "200/0073319Z",
        "2/0073319Z",
        "2002/0073319Z1",
        "2002/0073319ZZ",
        "2002 /0073319Z",
        "20020073319Z",
        "2002/0073319Z\n2002/0073319Z",
    ],
)
def test_given_a_malformed_pnc_when_normalised_then_refused_with_the_format(malformed):
    with pytest.raises(InvalidValue, match="YYYY/NNNNNNNA"):
        normalise_pnc(malformed, TODAY)


def test_given_a_pnc_year_in_the_future_when_normalised_then_refused():
    with pytest.raises(InvalidValue, match="future"):
        normalise_pnc("2027/1234567F", TODAY)


def test_given_a_pnc_that_is_not_text_when_normalised_then_refused():
    with pytest.raises(InvalidValue):
        normalise_pnc(20020073319, TODAY)  # type: ignore[arg-type]


# --- CRN and NOMS ------------------------------------------------------------------------


@pytest.mark.parametrize(("raw", "crn"), [("X123456", "X123456"), (" x123456 ", "X123456")])
def test_given_a_crn_when_normalised_then_one_upper_case_letter_and_six_digits(raw, crn):
    assert normalise_crn(raw) == crn


@pytest.mark.parametrize("malformed", ["", "X12345", "X1234567", "XX23456", "1234567", "X12345A"])
def test_given_a_malformed_crn_when_normalised_then_refused(malformed):
    with pytest.raises(InvalidValue, match="one letter then six digits") as refused:
        normalise_crn(malformed)
    assert refused.value.field == "crn"


@pytest.mark.parametrize(("raw", "noms"), [("A1234BC", "A1234BC"), ("\ta1234bc", "A1234BC")])
def test_given_a_noms_number_when_normalised_then_upper_case(raw, noms):
    assert normalise_noms(raw) == noms


@pytest.mark.parametrize("malformed", ["", "A123BC", "A12345BC", "A1234B", "A1234B1", "11234BC"])
def test_given_a_malformed_noms_number_when_normalised_then_refused(malformed):
    with pytest.raises(InvalidValue, match="a letter, four digits and two letters"):
        normalise_noms(malformed)


# --- CRO ---------------------------------------------------------------------------------


@pytest.mark.parametrize("cro", ["065656/91H", "SF05/482703J"])
def test_given_the_published_cro_examples_when_normalised_then_they_are_valid(cro):
    assert normalise_cro(cro) == cro


@pytest.mark.parametrize(
    ("raw", "cro"),
    [
        ("65656/91h", "065656/91H"),
        (" sf05/482703j ", "SF05/482703J"),
        ("1/05H", "000001/05H"),
        ("SF05/1H", "SF05/000001H"),
        ("123456/99L", "123456/99L"),
    ],
)
def test_given_a_cro_number_when_normalised_then_serial_padded_to_six_digits(raw, cro):
    assert normalise_cro(raw) == cro


@pytest.mark.parametrize("wrong", ["065656/91A", "SF05/482703K"])
def test_given_a_wrong_cro_check_letter_when_normalised_then_refused_without_the_right_one(wrong):
    with pytest.raises(InvalidValue, match="check letter") as refused:
        normalise_cro(wrong)
    assert "91H" not in refused.value.message
    assert "482703J" not in refused.value.message
    assert refused.value.field == "cro"


@pytest.mark.parametrize(
    "malformed",
    ["", "065656/9H", "1234567/91H", "065656/91", "SF5/482703J", "SF05/1234567J", "SF05-482703J"],
)
def test_given_a_malformed_cro_number_when_normalised_then_refused_with_the_format(malformed):
    with pytest.raises(InvalidValue, match="NNNNNN/YYA"):
        normalise_cro(malformed)


# --- Dispatch ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "raw", "canonical"),
    [
        ("pnc", "02/73319z", "2002/0073319Z"),
        ("crn", "x123456", "X123456"),
        ("noms", "a1234bc", "A1234BC"),
        ("cro", "65656/91H", "065656/91H"),
    ],
)
def test_given_each_kind_when_identifier_normalised_then_dispatched(kind, raw, canonical):
    assert normalise_identifier(kind, raw, TODAY) == canonical


def test_given_the_kinds_when_listed_then_all_four_in_order():
    assert IDENTIFIER_KINDS == ("pnc", "crn", "noms", "cro")


@pytest.mark.parametrize("kind", ["passport", "PNC", ""])
def test_given_an_unknown_kind_when_identifier_normalised_then_refused(kind):
    with pytest.raises(InvalidValue, match="not a kind of identifier"):
        normalise_identifier(kind, "X123456", TODAY)


# --- ASCII only (issue 16, point 3) --------------------------------------------------------

# (kind, a valid identifier, the same written with look-alike characters, which ones)
LOOKALIKES = [
    ("crn", "X123456", "X١٢٣٤٥٦", "Arabic-Indic digits"),
    ("crn", "X123456", "X۱۲۳۴۵۶", "Extended Arabic-Indic digits"),
    ("crn", "X123456", "X१२३४५६", "Devanagari digits"),
    ("crn", "X123456", "X１２３４５６", "full-width digits"),
    ("crn", "X123456", "Ｘ123456", "a full-width letter"),
    ("crn", "X123456", "X¹²³⁴⁵⁶", "superscript digits"),
    ("crn", "X123456", "X₁₂₃₄₅₆", "subscript digits"),
    ("crn", "X123456", "X𝟏𝟐𝟑𝟒𝟓𝟔", "mathematical bold digits"),
    ("crn", "X123456", "X①23456", "a circled digit"),
    ("crn", "X123456", "Х123456", "a Cyrillic Kha"),
    ("crn", "X123456", "Χ123456", "a Greek Chi"),
    ("crn", "I123456", "ı123456", "a dotless i, which upper-cases to I"),
    ("crn", "K123456", "\u212a123456", "the Kelvin sign"),
    ("noms", "A1234BC", "А1234ВС", "Cyrillic A, Ve and Es"),
    ("noms", "A1234BC", "A١٢٣٤BC", "Arabic-Indic digits"),
    ("noms", "A1234BC", "Ａ１２３４ＢＣ", "full-width letters and digits"),
    ("noms", "A1234SC", "A1234ſC", "a long s, which upper-cases to S"),
    ("pnc", "2002/0073319Z", "٢٠٠٢/٠٠٧٣٣١٩Z", "Arabic-Indic digits"),
    ("pnc", "2002/0073319Z", "২০০২/০০৭৩৩১৯Z", "Bengali digits"),
    ("pnc", "2002/0073319Z", "²⁰⁰²/0073319Z", "superscript digits"),
    ("pnc", "2002/0073319Z", "2002／0073319Z", "a full-width solidus"),
    ("pnc", "2002/0073319Z", "2002/0073319Ζ", "a Greek Zeta"),
    ("cro", "065656/91H", "٠٦٥٦٥٦/٩١H", "Arabic-Indic digits"),
    ("cro", "065656/91H", "０６５６５６/９１H", "full-width digits"),
    ("cro", "065656/91H", "065656/91Н", "a Cyrillic En"),
    ("cro", "SF05/482703J", "ſF05/482703J", "a long s, which upper-cases to S"),
    ("cro", "SF05/482703J", "ЅF05/482703J", "a Cyrillic Dze"),
]


@pytest.mark.parametrize(
    ("kind", "valid", "lookalike"),
    [pytest.param(k, v, la, id=f"{k}-{what}") for k, v, la, what in LOOKALIKES],
)
def test_given_look_alike_characters_when_identifier_normalised_then_refused_naming_it(
    kind, valid, lookalike
):
    assert normalise_identifier(kind, valid, TODAY) == valid
    with pytest.raises(InvalidValue) as refused:
        normalise_identifier(kind, lookalike, TODAY)
    assert refused.value.field == kind
    assert "ASCII" in refused.value.message


def test_given_the_issues_example_when_crn_normalised_then_it_is_not_x123456():
    with pytest.raises(InvalidValue, match="ASCII"):
        normalise_crn("X١٢٣٤٥٦")
