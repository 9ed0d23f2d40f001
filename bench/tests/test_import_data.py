"""The synthetic national data set is one the service would accept, line by line.

Each line is checked as the API and the service check a post: the payload against its
schema, the poster against the access table (a current partner, allowed that type), then
the aggregate's own invariants by folding it into a `Nominal`. No database: this is the
generator's contract, not a timing.
"""

from __future__ import annotations

import json
from collections import Counter
from datetime import date, datetime
from itertools import groupby
from pathlib import Path
from uuid import UUID

from bench.import_ import generate, main, nominal_history
from domain.identifiers import normalise_identifier
from domain.nominal import Nominal
from service import access
from service.auth import Principal
from service.payloads import PAYLOADS, NominalRegistered

SAMPLE = 300


def _principal(line: dict) -> Principal:
    return Principal(
        sub=line["recorded_by"]["sub"],
        agency=line["recorded_by"]["agency"],
        scopes=frozenset({"records:read", "records:write"}),
    )


def _instant(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def _fold(lines: list[dict]) -> Nominal:
    """One nominal's lines through the checks a post goes through; raises on a refusal."""
    first, *rest = lines
    assert first["type"] == "NominalRegistered"
    registration = NominalRegistered.model_validate(first["payload"])
    access.require_may_register(_principal(first))
    today = _instant(first["recorded_at"]).date()
    for kind, value in registration.identifiers.model_dump(exclude_none=True).items():
        assert normalise_identifier(kind, value, today) == value
    nominal = Nominal.register(
        nominal_id=UUID(first["nominal_id"]),
        event_id=first["event_id"],
        occurred_at=first["occurred_at"],
        recorded_at=_instant(first["recorded_at"]),
        recorded_by=first["recorded_by"],
        payload=first["payload"],
    )
    for line in rest:
        payload = PAYLOADS[line["type"]].model_validate(line["payload"]).model_dump(mode="json")
        principal = _principal(line)
        assert access.has_standing(principal, nominal, line["type"]), (
            line["type"],
            principal.agency,
        )
        access.require_may_post(principal, nominal, line["type"], payload)
        nominal.record(
            line["type"],
            event_id=line["event_id"],
            occurred_at=line["occurred_at"],
            recorded_at=_instant(line["recorded_at"]),
            recorded_by=line["recorded_by"],
            payload=payload,
        )
    return nominal


def test_every_line_of_a_sample_is_accepted_by_schemas_access_and_invariants():
    lines = list(generate(SAMPLE))
    for nominal_id, history in groupby(lines, key=lambda line: line["nominal_id"]):
        nominal = _fold(list(history))
        assert str(nominal.id) == nominal_id


def test_each_history_is_in_order_of_recorded_time():
    for index in range(SAMPLE):
        recorded = [_instant(line["recorded_at"]) for line in nominal_history(index)]
        assert recorded == sorted(recorded)
        assert len(set(recorded)) == len(recorded)


def test_identifiers_and_event_ids_are_unique_across_the_data_set():
    lines = list(generate(SAMPLE))
    event_ids = [line["event_id"] for line in lines]
    assert len(set(event_ids)) == len(event_ids)
    held = Counter(
        (kind, value)
        for line in lines
        if line["type"] == "NominalRegistered"
        for kind, value in line["payload"]["identifiers"].items()
    )
    # Learnt or corrected later (docs/design.md#lifecycles): unique too, and never one held already.
    held.update(
        (line["payload"]["kind"], line["payload"].get("value") or line["payload"]["to"])
        for line in lines
        if line["type"] in ("IdentifierAdded", "IdentifierCorrected")
    )
    assert held.most_common(1)[0][1] == 1


def test_the_sample_covers_the_catalogue_and_the_national_size_reaches_three_million():
    lines = list(generate(SAMPLE))
    types = Counter(line["type"] for line in lines)
    # The rare ones (category change, re-registration, an alias removed, the critical few of
    # level 3) need more than this sample.
    rare = {"CategoryChanged", "NominalReregistered", "AliasRemoved"}
    rare |= {"CriticalCaseRegistered", "CriticalCaseEnded"}
    assert set(PAYLOADS) - set(types) <= rare
    per_nominal = len(lines) / SAMPLE
    assert per_nominal * 100_000 >= 3_000_000, per_nominal


def test_the_data_is_deterministic_and_resumable_from_any_nominal():
    assert list(generate(20)) == list(generate(20))
    assert list(generate(20, start=12)) == [
        line for i in range(12, 20) for line in nominal_history(i)
    ]
    assert nominal_history(3, seed=1) != nominal_history(3, seed=2)


def test_the_nominal_id_is_the_one_the_service_derives_from_the_registration():
    from uuid import uuid5

    from service.records import NOMINAL_NAMESPACE

    first = nominal_history(7)[0]
    assert first["nominal_id"] == str(uuid5(NOMINAL_NAMESPACE, first["event_id"]))


def test_no_line_is_dated_after_the_end_of_the_data_set():
    until = date(2020, 1, 1)
    for index in range(50):
        for line in nominal_history(index, until=until):
            assert _instant(line["recorded_at"]).date() < until
            assert date.fromisoformat(line["occurred_at"]) < until


def test_the_command_writes_ndjson(tmp_path: Path):
    out = tmp_path / "small.ndjson"
    main(["--nominals", "25", "--out", str(out)])
    lines = out.read_text(encoding="utf-8").splitlines()
    assert [json.loads(line) for line in lines] == list(generate(25))


def test_the_command_streams_to_stdout_and_compresses(tmp_path: Path, capsys):
    import gzip

    main(["--nominals", "5", "--out", "-"])
    streamed = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert streamed == list(generate(5))
    packed = tmp_path / "five.ndjson.gz"
    main(["--nominals", "5", "--out", str(packed)])
    with gzip.open(packed, "rt", encoding="utf-8") as f:
        assert [json.loads(line) for line in f] == streamed


def test_several_processes_write_the_same_bytes_as_one(tmp_path: Path):
    from bench.import_ import CHUNK, write

    nominals = 2 * CHUNK + 7  # a short last piece
    one, two = tmp_path / "one.ndjson", tmp_path / "two.ndjson"
    events = write(one, nominals, progress=False, processes=1)
    assert write(two, nominals, progress=False, processes=2) == events
    assert one.read_bytes() == two.read_bytes()
