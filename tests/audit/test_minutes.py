"""`POST /v1/nominals/{id}/minutes` and `GET /v1/nominals/{id}/documents/{sha256}`."""

import hashlib
import uuid

import pytest

from tests.audit.conftest import docx_bytes, odt_bytes, pdf_bytes
from tests.conftest import NOTHING, event


@pytest.mark.parametrize(
    ("make", "media_type"),
    [
        (pdf_bytes, "application/pdf"),
        (docx_bytes, "application/vnd.openxmlformats-officedocument.wordprocessingml.document"),
        (
            lambda: docx_bytes(content_types_first=False),
            "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        ),
        (odt_bytes, "application/vnd.oasis.opendocument.text"),
    ],
    ids=["pdf", "docx", "docx-other-order", "odt"],
)
def test_minutes_are_recognised_by_content_not_name(
    client, auth, register, upload, make, media_type
):
    nominal_id = register("police:kent")
    content = make()
    r = upload(nominal_id, content, filename="minutes.bin")
    assert r.status_code == 201, r.text
    document = r.json()["payload"]["document"]
    assert document == {
        "sha256": hashlib.sha256(content).hexdigest(),
        "filename": "minutes.bin",
        "media_type": media_type,
        "size": len(content),
    }


def test_the_answer_says_due_date_working_days_and_lateness(client, auth, register, upload):
    nominal_id = register("police:kent")
    # Level 3: five working days; a meeting long past is late whenever this test runs.
    r = upload(nominal_id, pdf_bytes(), meeting_date="2025-04-17", level=3, meeting_id="M-L3")
    assert r.status_code == 201, r.text
    payload = r.json()["payload"]
    assert payload["due_on"] == "2025-04-28"  # Good Friday and Easter Monday skipped
    assert payload["late"] is True
    assert payload["working_days_taken"] > 5
    assert payload["meeting_id"] == "M-L3" and payload["level"] == 3


def test_the_same_upload_again_is_idempotent(client, register, upload):
    nominal_id = register("police:kent")
    event_id = str(uuid.uuid4())
    first = upload(nominal_id, pdf_bytes(), event_id=event_id)
    again = upload(nominal_id, pdf_bytes(), event_id=event_id)
    assert (first.status_code, again.status_code) == (201, 200)
    assert first.json() == again.json()


def test_other_kinds_are_refused_with_415(register, upload, footprint):
    nominal_id = register("police:kent")
    mark = footprint.mark()
    for content, name in [
        (b"MAPPA minutes in plain text", "minutes.pdf"),
        (b"\x89PNG\r\n\x1a\n" + b"\0" * 100, "minutes.docx"),
        (docx_bytes().replace(b"word/document.xml", b"xl/workbook.xmlxx"), "minutes.docx"),
    ]:
        r = upload(nominal_id, content, filename=name, media_type="application/pdf")
        assert r.status_code == 415, r.text
        assert r.headers["content-type"] == "application/problem+json"
    assert footprint.since(mark) == NOTHING


def test_over_20_mib_is_refused_with_413(register, upload, footprint):
    nominal_id = register("police:kent")
    big = pdf_bytes() + b"%" * (20 * 1024 * 1024)
    mark = footprint.mark()
    r = upload(nominal_id, big)
    assert r.status_code == 413, r.text
    assert footprint.since(mark) == NOTHING
    exactly = pdf_bytes()
    exactly += b"%" * (20 * 1024 * 1024 - len(exactly))
    assert upload(nominal_id, exactly).status_code == 201


def test_minutes_cannot_be_posted_without_their_document(client, auth, register):
    nominal_id = register("police:kent")
    body = event(
        "MinutesUploaded",
        {
            "meeting_id": "M-1",
            "meeting_date": "2026-11-02",
            "level": 2,
            "document": {
                "sha256": "0" * 64,
                "filename": "x.pdf",
                "media_type": "application/pdf",
                "size": 1,
            },
        },
    )
    r = client.post(f"/v1/nominals/{nominal_id}/events", json=body, headers=auth("police:kent"))
    assert r.status_code == 422
    assert "/minutes" in r.json()["detail"]


def test_only_partners_that_may_post_minutes_upload_them(client, auth, register, upload, db):
    nominal_id = register("police:kent")
    assert (
        upload(nominal_id, pdf_bytes(text="stranger"), agency="police:devon-cornwall").status_code
        == 404
    )
    r = upload(nominal_id, pdf_bytes(text="not a meeting body"), agency="probation:midlands")
    assert r.status_code == 201  # probation may post minutes
    with db.connect() as conn:
        stored = conn.execute(
            "SELECT count(*) FROM documents WHERE sha256 = %s",
            (hashlib.sha256(pdf_bytes(text="stranger")).hexdigest(),),
        ).fetchone()[0]
    assert stored == 0  # nothing is left behind by a refused upload


def test_documents_are_read_back_by_partners_and_auditors(client, auth, auditor, register, upload):
    nominal_id = register("police:kent")
    content = odt_bytes(text="Level 2 review")
    sha = upload(nominal_id, content, filename="review.odt").json()["payload"]["document"]["sha256"]
    url = f"/v1/nominals/{nominal_id}/documents/{sha}"
    for headers in (auth("probation:midlands"), auditor()):
        r = client.get(url, headers=headers)
        assert r.status_code == 200, r.text
        assert r.content == content
        assert r.headers["content-type"] == "application/vnd.oasis.opendocument.text"
        assert 'filename="review.odt"' in r.headers["content-disposition"]
    assert client.get(url, headers=auth("police:devon-cornwall")).status_code == 404
    assert client.get(url, headers=auditor(None)).status_code == 400


def test_a_document_is_served_only_through_a_record_that_names_it(client, auth, register, upload):
    first = register("police:kent")
    second = register("police:kent")
    sha = upload(first, pdf_bytes(text="first only")).json()["payload"]["document"]["sha256"]
    assert (
        client.get(
            f"/v1/nominals/{second}/documents/{sha}", headers=auth("police:kent")
        ).status_code
        == 404
    )
    assert (
        client.get(
            f"/v1/nominals/{first}/documents/{'a' * 64}", headers=auth("police:kent")
        ).status_code
        == 404
    )
