"""`mappa-record import`: the national data set's format, idempotent and resumable."""

import json
from pathlib import Path
from uuid import UUID

import pytest

from bench.import_ import write
from mappa_record.service.importer import Importer
from mappa_record.service.integrity import verify_nominal


@pytest.fixture(scope="module")
def lines(tmp_path_factory) -> list[dict]:
    path = tmp_path_factory.mktemp("import") / "set.ndjson"
    # A seed of its own, so these nominals and identifiers appear nowhere else in the session.
    write(path, 12, seed=91_273, progress=False)
    return [json.loads(line) for line in path.read_text().splitlines()]


def _file(tmp_path: Path, lines: list[dict], name: str = "in.ndjson") -> Path:
    path = tmp_path / name
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    return path


def _stored(records, nominal_id: str) -> list:
    from mappa_record.service.store import read_stream

    return [event for _, event in read_stream(records.app, UUID(nominal_id))]


def test_an_import_stores_every_line_once_keeping_who_and_when(service, lines, tmp_path):
    records = service.records
    half = len(lines) // 2
    cut = next(
        i for i in range(half, len(lines)) if lines[i]["nominal_id"] != lines[half]["nominal_id"]
    )
    first = Importer(records, batch_events=50).run(_file(tmp_path, lines[:cut], "first.ndjson"))
    assert first.refused == [] and first.stored == cut

    # The whole file again, as after a crash: only what is missing is stored.
    again = Importer(records, batch_events=50).run(_file(tmp_path, lines))
    assert again.refused == []
    assert again.stored == len(lines) - cut and again.skipped == cut

    by_nominal: dict[str, list[dict]] = {}
    for line in lines:
        by_nominal.setdefault(line["nominal_id"], []).append(line)
    for nominal_id, expected in by_nominal.items():
        events = _stored(records, nominal_id)
        assert [e.event_id for e in events] == [line["event_id"] for line in expected]
        first_line, first_event = expected[0], events[0]
        assert first_event.recorded_by == first_line["recorded_by"]
        assert first_event.envelope()["recorded_at"][:19] == first_line["recorded_at"][:19]
        assert verify_nominal(records.app, UUID(nominal_id)).intact

    # And once more: nothing at all.
    third = Importer(records).run(_file(tmp_path, lines))
    assert third.stored == 0 and third.skipped == len(lines)


def test_a_stream_that_breaks_a_rule_is_refused_with_its_line_and_the_rest_is_stored(
    service, lines, tmp_path
):
    records = service.records
    nominals = list(dict.fromkeys(line["nominal_id"] for line in lines))
    # A fresh copy of two nominals under new ids: the second breaks a rule on its first line.
    from uuid import uuid4, uuid5

    from mappa_record.service.records import NOMINAL_NAMESPACE

    def renamed(nominal_id: str, level: int | None = None, pnc: str | None = None) -> list[dict]:
        out = []
        registration_id = str(uuid4())
        new_id = str(uuid5(NOMINAL_NAMESPACE, registration_id))
        new_ids: dict[str, str] = {}
        for line in (line for line in lines if line["nominal_id"] == nominal_id):
            new_ids[line["event_id"]] = str(uuid4())
            line = json.loads(json.dumps(line)) | {
                "nominal_id": new_id,
                "event_id": new_ids[line["event_id"]],
            }
            if "retracts" in line["payload"]:
                line["payload"]["retracts"] = new_ids[line["payload"]["retracts"]]
            if line["type"] == "NominalRegistered":
                line["event_id"] = registration_id
                line["payload"]["identifiers"] = {"crn": f"Q{uuid4().int % 10**6:06d}"}
                if level is not None:
                    line["payload"] |= {"category": 3, "level": level}
            out.append(line)
        return out

    good, bad = renamed(nominals[0]), renamed(nominals[1], level=1)
    path = _file(tmp_path, good + bad)
    report = Importer(records).run(path)
    assert report.stored == len(good)
    assert len(report.refused) == 1
    assert f"line {len(good) + 1}:" in report.refused[0] and "category 3" in report.refused[0]
    assert _stored(records, bad[0]["nominal_id"]) == []
