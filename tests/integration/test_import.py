"""`mappa-record import`: the national data set's format, idempotent and resumable."""

import json
from pathlib import Path
from uuid import UUID, uuid4, uuid5

import pytest

from bench.import_ import write
from service.integrations.importer import Importer
from service.integrity import verify_nominal
from service.records import NOMINAL_NAMESPACE


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


def _stored(layer, nominal_id: str) -> list:
    from service.store.eventstore import read_stream

    return [event for _, event in read_stream(layer.ledger.app, UUID(nominal_id))]


def test_an_import_stores_every_line_once_keeping_who_and_when(service, lines, tmp_path):
    layer = service
    half = len(lines) // 2
    cut = next(
        i for i in range(half, len(lines)) if lines[i]["nominal_id"] != lines[half]["nominal_id"]
    )
    first = Importer(layer.records, batch_events=50).run(
        _file(tmp_path, lines[:cut], "first.ndjson")
    )
    assert first.refused == [] and first.stored == cut

    # The whole file again, as after a crash: only what is missing is stored.
    again = Importer(layer.records, batch_events=50).run(_file(tmp_path, lines))
    assert again.refused == []
    assert again.stored == len(lines) - cut and again.skipped == cut

    by_nominal: dict[str, list[dict]] = {}
    for line in lines:
        by_nominal.setdefault(line["nominal_id"], []).append(line)
    for nominal_id, expected in by_nominal.items():
        events = _stored(layer, nominal_id)
        assert [e.event_id for e in events] == [line["event_id"] for line in expected]
        first_line, first_event = expected[0], events[0]
        assert first_event.recorded_by == first_line["recorded_by"]
        assert first_event.envelope()["recorded_at"][:19] == first_line["recorded_at"][:19]
        assert verify_nominal(layer.ledger.app, UUID(nominal_id)).intact

    # And once more: nothing at all.
    third = Importer(layer.records).run(_file(tmp_path, lines))
    assert third.stored == 0 and third.skipped == len(lines)


def _nominal_with(lines: list[dict], has) -> str:
    """The first nominal with a line that `has` what a test needs."""
    return next(line["nominal_id"] for line in lines if has(line))


def _renamed(lines: list[dict], nominal_id: str, level: int | None = None) -> list[dict]:
    """A fresh copy of one nominal's stream under new ids; `level` makes it category 3."""
    out = []
    registration_id = str(uuid4())
    new_id = str(uuid5(NOMINAL_NAMESPACE, registration_id))
    new_ids: dict[str, str] = {}
    crn = f"Q{uuid4().int % 10**6:06d}"
    for line in (line for line in lines if line["nominal_id"] == nominal_id):
        new_ids[line["event_id"]] = str(uuid4())
        line = json.loads(json.dumps(line)) | {
            "nominal_id": new_id,
            "event_id": new_ids[line["event_id"]],
        }
        payload = line["payload"]
        # Lines naming other lines of the stream (a retraction, an order varied, ended or
        # breached, a transfer accepted) name them under their new ids.
        for field in ("retracts", "restriction", "transfer", "of"):
            if payload.get(field) in new_ids:
                payload[field] = new_ids[payload[field]]
        if line["type"] == "NominalRegistered":
            line["event_id"] = registration_id
            payload["identifiers"] = {"crn": crn}
            if level is not None:
                payload |= {"category": 3, "level": level}
        # Identifiers learnt or corrected later: the copy's own, not the original's.
        if line["type"] == "IdentifierAdded":
            payload["value"] = (
                f"R{uuid4().int % 10**4:04d}QQ"
                if payload["kind"] == "noms"
                else (f"R{uuid4().int % 10**6:06d}")
            )
        if line["type"] == "IdentifierCorrected":
            payload["from"], crn = crn, f"Q{uuid4().int % 10**6:06d}"
            payload["to"] = crn
        out.append(line)
    return out


@pytest.mark.parametrize("workers", [0, 2])
def test_a_stream_that_breaks_a_rule_is_refused_with_its_line_and_the_rest_is_stored(
    service, lines, tmp_path, workers
):
    layer = service
    nominals = list(dict.fromkeys(line["nominal_id"] for line in lines))
    # Fresh copies of three nominals: the middle one breaks a rule on its first line.
    good, bad, after = (
        _renamed(lines, nominals[0]),
        _renamed(lines, nominals[1], level=1),
        _renamed(lines, nominals[2]),
    )
    path = _file(tmp_path, good + bad + after)
    # Batches of about one stream, or all three in one.
    for batch_events in (len(good), 10_000):
        report = Importer(layer.records, batch_events=batch_events, workers=workers).run(path)
        if batch_events == len(good):
            assert report.stored == len(good) + len(after)
        else:
            assert report.stored == 0 and report.skipped == len(good) + len(after)
        assert len(report.refused) == 1
        assert f"line {len(good) + 1}:" in report.refused[0] and "category 3" in report.refused[0]
        assert _stored(layer, bad[0]["nominal_id"]) == []
        assert len(_stored(layer, after[0]["nominal_id"])) == len(after)


def test_an_event_id_that_is_not_a_uuid_refuses_its_stream_and_an_odd_spelling_is_one_id(
    service, lines, tmp_path
):
    layer = service
    nominals = list(dict.fromkeys(line["nominal_id"] for line in lines))
    retracting = _nominal_with(lines, lambda x: "retracts" in x["payload"])
    bad, shouting = _renamed(lines, nominals[3]), _renamed(lines, retracting)
    numbered = _renamed(lines, nominals[5] if retracting != nominals[5] else nominals[6])
    bad[1]["event_id"] = "not-a-uuid"
    numbered[1]["event_id"] = 12345
    for line in shouting:
        line["event_id"] = line["event_id"].upper()
        if "retracts" in line["payload"]:
            line["payload"]["retracts"] = line["payload"]["retracts"].upper()
    path = _file(tmp_path, bad + numbered + shouting)

    report = Importer(layer.records).run(path)

    assert len(report.refused) == 2, report.refused
    assert (
        report.refused[0].startswith("line 2: ")
        and "'not-a-uuid' is not a UUID" in (report.refused[0])
    )
    assert (
        report.refused[1].startswith(f"line {len(bad) + 2}: ")
        and "12345 is not a UUID" in (report.refused[1])
    )
    assert _stored(layer, bad[0]["nominal_id"]) == []
    assert _stored(layer, numbered[0]["nominal_id"]) == []
    assert report.stored == len(shouting)
    # Stored as a post stores it: the event, its index row and its retractions agree.
    stored = _stored(layer, shouting[0]["nominal_id"])
    assert [e.event_id for e in stored] == [line["event_id"].lower() for line in shouting]
    retractions = [e for e in stored if "retracts" in e.payload]
    assert retractions and all(
        e.payload["retracts"] in {x.event_id for x in stored} for e in retractions
    )
    again = Importer(layer.records).run(path)  # stored already, however it is spelt
    assert (again.stored, again.skipped) == (0, len(shouting))


def test_a_payload_a_post_could_not_send_refuses_its_stream_naming_the_field(
    service, lines, tmp_path
):
    layer = service
    nominals = list(dict.fromkeys(line["nominal_id"] for line in lines))
    with_meeting = _nominal_with(lines, lambda x: x["type"] == "MeetingHeld")
    odd_date, owned_field, fine = (
        _renamed(lines, with_meeting),
        _renamed(lines, nominals[1]),
        _renamed(lines, nominals[2]),
    )
    meeting = next(i for i, x in enumerate(odd_date) if x["type"] == "MeetingHeld")
    odd_date[meeting]["payload"]["held_on"] = 12  # a projection would choke on it
    owned_field[1]["payload"]["recorded_at"] = "2020-01-01T00:00:00Z"  # the server's to set
    path = _file(tmp_path, odd_date + owned_field + fine)

    report = Importer(layer.records).run(path)

    assert len(report.refused) == 2, report.refused
    assert report.refused[0].startswith(f"line {meeting + 1}: MeetingHeld: payload.held_on: ")
    assert report.refused[1].startswith(f"line {len(odd_date) + 2}: ")
    assert "payload.recorded_at: Extra inputs are not permitted" in report.refused[1]
    assert _stored(layer, odd_date[0]["nominal_id"]) == []
    assert _stored(layer, owned_field[0]["nominal_id"]) == []
    assert report.stored == len(fine)


def test_an_imported_event_is_stored_as_a_post_stores_it_so_posting_it_again_finds_it(
    service, lines, tmp_path
):
    from api.routes.nominals import validated_payload
    from service.auth import Principal
    from service.payloads import NominalRegistered
    from service.records import NewEvent

    layer = service
    nominals = list(dict.fromkeys(line["nominal_id"] for line in lines))
    stream = _renamed(lines, nominals[0])
    assigned = next(x for x in stream if x["type"] == "OfficerAssigned")
    assigned["payload"].pop("supervisor", None)  # optional: a post stores it as null
    assigned["payload"]["officer"]["name"] = "  Liam Jones  "  # a post strips it

    report = Importer(layer.records).run(_file(tmp_path, stream))
    assert report.stored == len(stream), report.refused

    stored = next(e for e in _stored(layer, stream[0]["nominal_id"]) if e.type == "OfficerAssigned")
    assert stored.payload["supervisor"] is None
    assert stored.payload["officer"]["name"] == "Liam Jones"
    # The same event posted over the API is found, not a conflict with a different body.
    poster = Principal(
        sub="again", agency=assigned["recorded_by"]["agency"], scopes=frozenset({"records:write"})
    )
    again = layer.records.post_event(
        poster,
        UUID(stream[0]["nominal_id"]),
        NewEvent(
            UUID(assigned["event_id"]),
            "OfficerAssigned",
            assigned["occurred_at"],
            validated_payload("OfficerAssigned", assigned["payload"]),
        ),
        None,
    )
    assert (again.created, again.event["event_id"]) == (False, assigned["event_id"])
    # So is the registration, posted again as the registration route posts it.
    registration = stream[0]
    body = NominalRegistered.model_validate(registration["payload"]).model_dump(mode="json")
    body["identifiers"] = {k: v for k, v in body["identifiers"].items() if v is not None}
    registrar = Principal(
        sub="again",
        agency=registration["recorded_by"]["agency"],
        scopes=frozenset({"records:write"}),
    )
    registered = layer.records.register(
        registrar, UUID(registration["event_id"]), registration["occurred_at"], body
    )
    assert (registered.created, registered.nominal_id) == (False, registration["nominal_id"])


# -- building in worker processes -----------------------------------------------------------


@pytest.fixture(scope="module")
def two_databases(database_url, data_dir):
    """Two fresh databases beside the session's, each with its own started service."""
    import os

    from tests.audit.conftest import separate_service

    pid = os.getpid()
    with (
        separate_service(database_url, data_dir, f"mappa_import_a_{pid}") as (_, a, _),
        separate_service(database_url, data_dir, f"mappa_import_b_{pid}") as (_, b, _),
    ):
        yield a, b


def _tables(service) -> dict[str, list[tuple]]:
    """Every row the import writes, in position or key order."""
    queries = {
        "events": "SELECT notification_id, originator_id, originator_version, topic, state"
        " FROM nominals_events ORDER BY notification_id",
        "event_index": "SELECT event_id, nominal_id, version, request_digest, agency"
        " FROM event_index ORDER BY event_id",
        "identifiers": "SELECT kind, value, nominal_id FROM nominal_identifiers ORDER BY 1, 2",
        "partners": "SELECT nominal_id, agency FROM nominal_partners ORDER BY 1, 2",
    }
    with service.db.connect() as conn:
        return {name: conn.execute(sql).fetchall() for name, sql in queries.items()}


def test_workers_store_the_same_rows_in_the_same_order_as_one_process(
    two_databases, lines, tmp_path
):
    serial, parallel = two_databases
    # Two files cut between streams (an import adds whole records); the second repeats a
    # stream that an earlier batch of the same run stores.
    third = len(lines) // 3
    cut = next(
        i for i in range(third, len(lines)) if lines[i]["nominal_id"] != lines[third]["nominal_id"]
    )
    streams: dict[str, list[dict]] = {}
    for line in lines[cut:]:
        streams.setdefault(line["nominal_id"], []).append(line)
    following, whole, *others = streams.values()
    repeated = whole + others[0] + whole + [line for stream in others[1:] for line in stream]
    first = _file(tmp_path, lines[:cut], "first.ndjson")
    rest = _file(tmp_path, following + repeated, "rest.ndjson")
    reports = {}
    for service, workers in ((serial, 0), (parallel, 2)):
        # About a stream a batch: the repeated stream is looked up before its first
        # occurrence is stored, two batches earlier.
        one = Importer(service.records, batch_events=30, workers=workers).run(first)
        two = Importer(service.records, batch_events=30, workers=workers).run(rest)
        reports[workers] = (one, two)
        assert one.refused == two.refused == []
        assert one.stored + two.stored == len(lines) and two.skipped == len(whole)
    assert reports[0] == reports[2]
    assert _tables(serial) == _tables(parallel)
    for nominal_id in dict.fromkeys(line["nominal_id"] for line in lines):
        assert verify_nominal(parallel.ledger.app, UUID(nominal_id)).intact


def test_workers_store_events_encrypted_with_the_services_key(
    database_url, data_dir, lines, tmp_path
):
    import base64
    import os

    from tests.audit.conftest import separate_service

    key = base64.b64encode(os.urandom(32)).decode()
    name = f"mappa_import_cipher_{os.getpid()}"
    with separate_service(database_url, data_dir, name, cipher_key=key) as (_, service, _):
        report = Importer(service.records, batch_events=50, workers=2).run(_file(tmp_path, lines))
        assert report.refused == [] and report.stored == len(lines)
        with service.db.connect() as conn:
            states = [bytes(r[0]) for r in conn.execute("SELECT state FROM nominals_events")]
        families = {
            line["payload"]["name"]["family"].encode()
            for line in lines
            if line["type"] == "NominalRegistered"
        }
        assert len(states) == len(lines)
        assert not any(family in state for family in families for state in states)
        for nominal_id in dict.fromkeys(line["nominal_id"] for line in lines):
            assert verify_nominal(service.ledger.app, UUID(nominal_id)).intact
        expected = [line["event_id"] for line in lines]
        by_nominal = [
            e.event_id
            for nominal_id in dict.fromkeys(line["nominal_id"] for line in lines)
            for e in _stored(service.records, nominal_id)
        ]
        assert by_nominal == expected


def test_lines_a_stored_record_lacks_are_refused_not_stored_under_the_source_s_name(
    service, lines, tmp_path
):
    # The record is stored whole; a later file has one more line for it, in the source's
    # name. An import adds whole records only: that line would put words in an agency's
    # mouth on a record it already relies on.
    nominal_id = _nominal_with(lines, lambda line: line["type"] == "EntryRecorded")
    stream = _renamed(lines, nominal_id)
    last = stream[-1]
    first = Importer(service.records).run(_file(tmp_path, stream[:-1], "first.ndjson"))
    assert first.refused == [] and first.stored == len(stream) - 1

    again = Importer(service.records).run(_file(tmp_path, stream, "again.ndjson"))

    assert again.stored == 0
    assert len(again.refused) == 1
    assert f"line {len(stream)}:" in again.refused[0]
    assert "already on the record" in again.refused[0]
    stored = _stored(service, last["nominal_id"])
    assert [e.event_id for e in stored] == [line["event_id"] for line in stream[:-1]]
