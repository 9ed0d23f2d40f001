"""Text the database cannot store is refused at the door (issue 16, point 1).

PostgreSQL stores neither NUL (U+0000) in text or jsonb nor a lone surrogate (U+D800 to
U+DFFF, which has no UTF-8 form). One accepted event holding either stopped every
projection for good. Each route that takes text refuses both with a 422 problem naming the
field, and stores nothing: event payloads of every type, registrations, the Justification
header, the minutes' filename, HMPPS messages, and the token's `sub`.
"""

from __future__ import annotations

import asyncio
import copy
import json
import random
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from domain.identifiers import CHECK_LETTERS
from tests.api.test_routes_matrix import catalogue
from tests.audit.conftest import pdf_bytes
from tests.conftest import random_crn, random_noms, random_pnc, registration
from tests.integrations.conftest import INBOUND_SCOPES, INBOUND_URL, PROBATION_CLIENT, sns
from tests.integrations.conftest import mapp_registration as hmpps_registration
from tests.security.conftest import NUL, UNSTORABLE, as_json, assert_refused

PARTNER = "police:kent"
AUDITOR = "inspectorate:hmicfrs"
JUSTIFICATION = "Thematic inspection of MAPPA level 2 cases, 2026"
Path = tuple[str | int, ...]


def string_leaves(value: Any, path: Path = ()) -> Iterator[Path]:
    """The path of every string in a JSON value."""
    if isinstance(value, str):
        yield path
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from string_leaves(item, (*path, key))
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield from string_leaves(item, (*path, i))


def with_text(value: Any, path: Path, bad: str) -> Any:
    """A copy of the value with `bad` put inside the string at `path`."""
    changed = copy.deepcopy(value)
    holder = changed
    for step in path[:-1]:
        holder = holder[step]
    text = holder[path[-1]]
    holder[path[-1]] = text[:1] + bad + text[1:]
    return changed


def dotted(path: Path) -> str:
    return ".".join(str(p) for p in path)


# -- event payloads of every type -----------------------------------------------------------

ENTRY_ID = "0d7c1b8e-8a53-4a59-b8a4-7d1f0c2b6e55"
PAYLOAD_CASES = [
    pytest.param(event_type, payload, path, bad, id=f"{event_type}.{dotted(path)}-{kind}")
    for _, event_type, payload in catalogue(ENTRY_ID)
    if event_type != "MinutesUploaded"  # only the upload route posts it: tested below
    for path in string_leaves(payload)
    for kind, bad in UNSTORABLE.items()
]


@pytest.fixture(scope="module")
def record(client, auth) -> str:
    r = client.post("/v1/nominals", json=registration(), headers=auth(PARTNER))
    assert r.status_code == 201, r.text
    return r.json()["nominal_id"]


@pytest.mark.parametrize(("event_type", "payload", "path", "bad"), PAYLOAD_CASES)
def test_unstorable_text_anywhere_in_a_payload_is_a_422_naming_the_field(
    post_json, auth, record, stored_count, event_type, payload, path, bad
):
    before = stored_count(record)
    body = {
        "event_id": str(uuid.uuid4()),
        "type": event_type,
        "occurred_at": "2026-11-20",
        "payload": with_text(payload, path, bad),
    }
    r = post_json(f"/v1/nominals/{record}/events", body, auth(PARTNER))
    assert_refused(r, 422, f"payload.{dotted(path)}")
    assert stored_count(record) == before


@pytest.mark.parametrize("bad", UNSTORABLE.values(), ids=UNSTORABLE.keys())
def test_unstorable_text_in_an_envelope_field_is_a_422_naming_it(
    post_json, auth, record, stored_count, bad
):
    before = stored_count(record)
    body = {
        "event_id": str(uuid.uuid4()),
        "type": "EntryRecorded",
        "occurred_at": f"2026-11-20{bad}",
        "payload": {"entry_type": "contact", "subject": "Seen", "body": "Seen at home"},
    }
    assert_refused(post_json(f"/v1/nominals/{record}/events", body, auth(PARTNER)), 422)
    assert stored_count(record) == before


@pytest.mark.parametrize("bad", UNSTORABLE.values(), ids=UNSTORABLE.keys())
def test_unstorable_text_in_a_field_name_is_refused_and_the_answer_still_encodes(
    post_json, auth, record, stored_count, bad
):
    before = stored_count(record)
    payload = {"agency": "prison:LEI", "reason": "holding", f"reason{bad}": "x"}
    body = {
        "event_id": str(uuid.uuid4()),
        "type": "AgencyPartnered",
        "occurred_at": "2026-11-20",
        "payload": payload,
    }
    problem = assert_refused(post_json(f"/v1/nominals/{record}/events", body, auth(PARTNER)), 422)
    # Named as far as it can be: pydantic itself writes a lone surrogate as U+FFFD.
    assert [e["field"][:14] for e in problem["errors"]] == ["payload.reason"]
    assert stored_count(record) == before


def test_the_issues_example_is_refused(post_json, auth, record, stored_count):
    before = stored_count(record)
    body = {
        "event_id": str(uuid.uuid4()),
        "type": "AgencyPartnered",
        "occurred_at": "2026-11-20",
        "payload": {"agency": "prison:LEI", "reason": "hold\u0000ing"},
    }
    problem = assert_refused(
        post_json(f"/v1/nominals/{record}/events", body, auth(PARTNER)), 422, "payload.reason"
    )
    assert "NUL" in problem["detail"]
    assert stored_count(record) == before


# -- registrations ------------------------------------------------------------------------------


def random_cro() -> str:
    serial, year = random.randint(1, 999_999), random.randint(0, 99)
    return f"{serial:06d}/{year:02d}{CHECK_LETTERS[(year * 10**6 + serial) % 23]}"


REGISTRATION = registration(
    identifiers={
        "pnc": random_pnc(),
        "crn": random_crn(),
        "noms": random_noms(),
        "cro": random_cro(),
    },
    aliases=[{"family": "Other", "given": ["Sam", "Jo"]}],
    offence_summary="Offences against a child",
)
REGISTRATION_CASES = [
    pytest.param(path, bad, id=f"{dotted(path)}-{kind}")
    for path in string_leaves(REGISTRATION)
    for kind, bad in UNSTORABLE.items()
]


@pytest.mark.parametrize(("path", "bad"), REGISTRATION_CASES)
def test_unstorable_text_anywhere_in_a_registration_is_a_422_naming_the_field(
    post_json, auth, stored_count, table_count, path, bad
):
    before, held = stored_count(), table_count("nominal_identifiers")
    body = with_text(REGISTRATION, path, bad) | {}
    if path != ("event_id",):
        body["event_id"] = str(uuid.uuid4())
    r = post_json("/v1/nominals", body, auth(PARTNER))
    assert_refused(r, 422, dotted(path))
    assert stored_count() == before
    assert table_count("nominal_identifiers") == held


# -- the Justification header ------------------------------------------------------------------


def test_a_nul_in_a_header_never_reaches_the_app_over_http(base_url, token, register, table_count):
    """uvicorn's parser refuses the request itself (400, before the app): nothing is logged."""
    import socket

    nominal_id = register(PARTNER)
    before = table_count("consultation_log")
    host, port = base_url.removeprefix("http://").split(":")
    request = (
        f"GET /v1/nominals/{nominal_id} HTTP/1.1\r\nHost: {host}\r\n"
        f"Authorization: Bearer {token(AUDITOR, 'audit:read')}\r\n"
        "Connection: close\r\n"
    ).encode() + b"Justification: Thematic inspection\x00 of cases\r\n\r\n"
    with socket.create_connection((host, int(port)), timeout=10) as s:
        s.sendall(request)
        answer = s.recv(65536)
    assert answer.startswith(b"HTTP/1.1 400 ")
    assert table_count("consultation_log") == before


@pytest.mark.parametrize(
    "route", ["", "/history", "/verify", "/access-log", "/state?as_of=2030-01-01T00:00:00Z"]
)
def test_a_nul_in_the_justification_header_is_a_422_naming_it(
    app, token, register, table_count, route
):
    """Behind another server or proxy the header may arrive: the app refuses it too."""
    nominal_id = register(PARTNER)
    before = table_count("consultation_log")
    headers = [
        (b"authorization", f"Bearer {token(AUDITOR, 'audit:read')}".encode()),
        (b"justification", f"{JUSTIFICATION}{NUL}".encode()),
    ]

    async def ask() -> httpx.Response:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://app") as c:
            return await c.get(f"/v1/nominals/{nominal_id}{route}", headers=headers)

    assert_refused(asyncio.run(ask()), 422, "header.Justification")
    assert table_count("consultation_log") == before


# -- the minutes' filename ----------------------------------------------------------------------


def multipart(filename: bytes, content: bytes, fields: dict[str, str]) -> tuple[bytes, str]:
    """A multipart/form-data body written byte for byte (httpx would escape the filename)."""
    boundary = "mappa-" + uuid.uuid4().hex
    parts = [
        f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode()
        for name, value in fields.items()
    ]
    parts.append(
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="'.encode()
        + filename
        + b'"\r\nContent-Type: application/pdf\r\n\r\n'
        + content
        + b"\r\n"
    )
    return b"".join(parts) + f"--{boundary}--\r\n".encode(), boundary


def upload_named(client, auth, nominal_id: str, filename: bytes, event_id: str | None = None):
    body, boundary = multipart(
        filename,
        pdf_bytes(f"minutes {uuid.uuid4()}"),
        {
            "event_id": event_id or str(uuid.uuid4()),
            "meeting_id": "m-1",
            "meeting_date": "2026-11-20",
            "level": "2",
        },
    )
    return client.post(
        f"/v1/nominals/{nominal_id}/minutes",
        content=body,
        headers=auth("mappa:kent") | {"Content-Type": f"multipart/form-data; boundary={boundary}"},
    )


def test_a_nul_in_the_minutes_filename_is_a_422_naming_it(
    client, auth, register, partner, stored_count, table_count
):
    nominal_id = register(PARTNER)
    partner(nominal_id, "mappa:kent")
    before, documents = stored_count(nominal_id), table_count("documents")
    r = upload_named(client, auth, nominal_id, b"minutes\x00.pdf")
    assert_refused(r, 422, "file.filename")
    assert stored_count(nominal_id) == before
    assert table_count("documents") == documents


# -- HMPPS messages ------------------------------------------------------------------------------


def hmpps_post(client, auth, body: Any) -> httpx.Response:
    return client.post(
        INBOUND_URL,
        content=as_json(body),
        headers=auth(PROBATION_CLIENT, INBOUND_SCOPES) | {"Content-Type": "application/json"},
    )


INNER = [
    ("eventType",),
    ("description",),
    ("additionalInformation", "registerTypeCode"),
    ("additionalInformation", "registrationLevelCode"),
    ("personReference", "identifiers", 0, "value"),
    ("personReference", "identifiers", 0, "type"),
]


@pytest.mark.parametrize(
    ("path", "bad"),
    [
        pytest.param(path, bad, id=f"{dotted(path)}-{kind}")
        for path in INNER
        for kind, bad in UNSTORABLE.items()
    ],
)
def test_unstorable_text_in_an_hmpps_message_is_a_422_naming_the_field(
    client, auth, register, stored_count, path, bad
):
    crn = random_crn()
    nominal_id = register("probation:midlands", identifiers={"crn": crn, "noms": random_noms()})
    before = stored_count(nominal_id)
    message = with_text(hmpps_registration(crn, category="M2", level="M2"), path, bad)
    assert_refused(hmpps_post(client, auth, message), 422, dotted(path))
    # Wrapped, the event type is also an attribute of the notification, found first.
    outer = "MessageAttributes.eventType.Value" if path == ("eventType",) else dotted(path)
    assert_refused(hmpps_post(client, auth, sns(message)), 422, outer)
    assert stored_count(nominal_id) == before


@pytest.mark.parametrize(("bad"), UNSTORABLE.values(), ids=UNSTORABLE.keys())
def test_unstorable_text_in_an_sns_message_id_is_a_422_naming_it(
    client, auth, register, stored_count, bad
):
    crn = random_crn()
    nominal_id = register("probation:midlands", identifiers={"crn": crn})
    before = stored_count(nominal_id)
    body = sns(hmpps_registration(crn, category="M2", level="M2"), message_id=f"m{bad}1")
    assert_refused(hmpps_post(client, auth, body), 422, "MessageId")
    assert stored_count(nominal_id) == before


# -- the token ----------------------------------------------------------------------------------


@pytest.mark.parametrize("bad", UNSTORABLE.values(), ids=UNSTORABLE.keys())
def test_a_token_whose_sub_cannot_be_stored_is_refused(client, token, stored_count, bad):
    before = stored_count()
    headers = {"Authorization": f"Bearer {token(PARTNER, sub=f'svc{bad}kent')}"}
    r = client.post("/v1/nominals", content=json.dumps(registration()), headers=headers)
    assert_refused(r, 401)
    assert stored_count() == before
