import pytest

from domain.agencies import (
    AGENCY_TYPES,
    RESPONSIBLE_AUTHORITY,
    agency_type,
    is_responsible_authority,
    parse_agency,
)
from domain.errors import InvalidValue


@pytest.mark.parametrize(
    "code",
    ["police:leicestershire", "probation:midlands", "prison:LEI", "mappa:leicestershire-rutland"],
)
def test_given_the_documented_examples_when_parsed_then_kept_as_they_are(code):
    assert parse_agency(code) == code


def test_given_an_upper_case_type_when_parsed_then_type_lowered_and_id_kept():
    assert parse_agency(" POLICE:Kent ") == "police:Kent"


@pytest.mark.parametrize("kind", sorted(AGENCY_TYPES))
def test_given_each_agency_type_when_parsed_then_accepted(kind):
    assert agency_type(f"{kind}:x-1") == kind


def test_given_the_types_when_listed_then_all_thirteen():
    assert len(AGENCY_TYPES) == 13
    assert {"social-care", "electronic-monitoring", "inspectorate"} <= AGENCY_TYPES


def test_given_an_id_of_64_characters_when_parsed_then_accepted():
    assert parse_agency("police:" + "a" * 64) == "police:" + "a" * 64


@pytest.mark.parametrize(
    "malformed",
    [
        "",
        "police",
        "police:",
        ":kent",
        "police:" + "a" * 65,
        "police:kent:north",
        "police:kent north",
        "police:kent_north",
        "police:kënt",
        "police :kent",
        "police:kent\nprison:LEI",
    ],
)
def test_given_a_malformed_code_when_parsed_then_refused(malformed):
    with pytest.raises(InvalidValue) as refused:
        parse_agency(malformed)
    assert refused.value.field == "agency"


def test_given_a_trailing_newline_when_parsed_then_stripped_like_other_white_space():
    # Surrounding white space is stripped; a newline inside the code is refused above.
    assert parse_agency("police:kent\n") == "police:kent"


def test_given_an_unknown_type_when_parsed_then_refused_naming_the_types():
    with pytest.raises(InvalidValue, match="not a type of agency") as refused:
        parse_agency("council:leicester")
    assert "probation" in refused.value.message


def test_given_a_code_that_is_not_text_when_parsed_then_refused():
    with pytest.raises(InvalidValue):
        parse_agency(None)  # type: ignore[arg-type]


@pytest.mark.parametrize("code", ["police:kent", "probation:midlands", "PRISON:LEI"])
def test_given_police_probation_or_prison_then_responsible_authority(code):
    assert is_responsible_authority(code)


@pytest.mark.parametrize("code", ["health:lpt", "yot:leicester", "mappa:kent", "dwp:east"])
def test_given_a_duty_to_cooperate_agency_then_not_responsible_authority(code):
    assert not is_responsible_authority(code)


def test_given_the_responsible_authority_then_three_types_all_known():
    assert frozenset({"police", "probation", "prison"}) == RESPONSIBLE_AUTHORITY
    assert RESPONSIBLE_AUTHORITY <= AGENCY_TYPES


def test_given_a_malformed_code_when_asking_its_type_then_refused():
    with pytest.raises(InvalidValue):
        agency_type("police")
