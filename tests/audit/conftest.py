"""Fixtures for the audit tests: auditors' headers, minutes documents, tampering as a superuser."""

from __future__ import annotations

import io
import uuid
import zipfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import psycopg
import pytest

from tests.conftest import event, served

AUDITOR = "inspectorate:hmi-probation"
REASON = "Thematic inspection of MAPPA records, 2026"


@pytest.fixture
def auditor(auth) -> Callable[..., dict[str, str]]:
    """auditor() -> headers of an inspector with audit:read and a Justification."""

    def headers(justification: str | None = REASON, agency: str = AUDITOR) -> dict[str, str]:
        extra = {"Justification": justification} if justification is not None else {}
        return auth(agency, "audit:read", **extra)

    return headers


@pytest.fixture
def post(client, auth) -> Callable[..., dict]:
    """post(nominal_id, type, payload, agency="police:kent") -> the stored event (201)."""

    def send(nominal_id: str, type_: str, payload: dict, agency: str = "police:kent") -> dict:
        r = client.post(
            f"/v1/nominals/{nominal_id}/events", json=event(type_, payload), headers=auth(agency)
        )
        assert r.status_code == 201, r.text
        return r.json()

    return send


def entry(subject: str = "Home visit", body: str = "Seen at home; compliant.") -> dict:
    return {"entry_type": "visit", "subject": subject, "body": body}


@pytest.fixture
def record_of(register, post) -> Callable[[int], str]:
    """record_of(n) -> a nominal with n events: the registration and n-1 entries."""

    def make(n: int) -> str:
        nominal_id = register("police:kent")
        for i in range(2, n + 1):
            post(
                nominal_id, "EntryRecorded", entry(subject=f"Entry {i}", body=f"Body of entry {i}")
            )
        return nominal_id

    return make


@contextmanager
def as_superuser(db) -> Iterator[psycopg.Connection]:
    """A superuser connection with user triggers off: tampering behind the service's back."""
    with db.connect() as conn:
        conn.execute("SET session_replication_role = replica")
        yield conn
        conn.commit()


# -- documents -----------------------------------------------------------------------------


def pdf_bytes(text: str = "MAPPA level 2 meeting minutes") -> bytes:
    body = f"BT /F1 12 Tf 72 720 Td ({text}) Tj ET".encode()
    return (
        b"%PDF-1.4\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj\n"
        b"2 0 obj<</Type/Pages/Kids[3 0 R]/Count 1>>endobj\n"
        b"3 0 obj<</Type/Page/Parent 2 0 R/MediaBox[0 0 612 792]/Contents 4 0 R>>endobj\n"
        + f"4 0 obj<</Length {len(body)}>>stream\n".encode()
        + body
        + b"\nendstream endobj\ntrailer<</Root 1 0 R>>\n%%EOF\n"
    )


def _zip(entries: list[tuple[str, bytes, int]]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for name, data, method in entries:
            z.writestr(
                zipfile.ZipInfo(name, date_time=(2026, 11, 20, 0, 0, 0)), data, compress_type=method
            )
    return buf.getvalue()


CONTENT_TYPES = (
    b'<?xml version="1.0" encoding="UTF-8"?><Types xmlns="http://schemas.openxmlformats.org/'
    b'package/2006/content-types"><Override PartName="/word/document.xml" ContentType="application/'
    b'vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml"/></Types>'
)


def docx_bytes(content_types_first: bool = True, text: str = "Minutes") -> bytes:
    parts = [
        ("[Content_Types].xml", CONTENT_TYPES, zipfile.ZIP_DEFLATED),
        ("_rels/.rels", b"<Relationships/>", zipfile.ZIP_DEFLATED),
        (
            "word/document.xml",
            f"<w:document><w:t>{text}</w:t></w:document>".encode(),
            zipfile.ZIP_DEFLATED,
        ),
    ]
    if not content_types_first:
        parts = parts[1:] + parts[:1]
    return _zip(parts)


def odt_bytes(text: str = "Minutes") -> bytes:
    return _zip(
        [
            ("mimetype", b"application/vnd.oasis.opendocument.text", zipfile.ZIP_STORED),
            (
                "content.xml",
                f"<office:document-content>{text}</office:document-content>".encode(),
                zipfile.ZIP_DEFLATED,
            ),
            ("META-INF/manifest.xml", b"<manifest:manifest/>", zipfile.ZIP_DEFLATED),
        ]
    )


@pytest.fixture
def upload(client, auth) -> Callable[..., object]:
    """upload(nominal_id, content, filename=..., agency=...) -> the httpx response."""

    def send(
        nominal_id: str,
        content: bytes,
        *,
        filename: str = "minutes.pdf",
        agency: str = "police:kent",
        meeting_date: str = "2026-11-02",
        level: int = 2,
        meeting_id: str = "M-1",
        event_id: str | None = None,
        media_type: str = "application/octet-stream",
    ):
        return client.post(
            f"/v1/nominals/{nominal_id}/minutes",
            headers=auth(agency),
            files={"file": (filename, content, media_type)},
            data={
                "event_id": event_id or str(uuid.uuid4()),
                "meeting_id": meeting_id,
                "meeting_date": meeting_date,
                "level": str(level),
            },
        )

    return send


@contextmanager
def separate_service(database_url: str, data_dir, name: str, **overrides) -> Iterator[tuple]:
    """A fresh database beside the session's, its own started service, served over HTTP
    and trusting the same test key: (settings, service, client). For tests that tamper
    with what is stored, or need other settings, without touching the shared database."""
    import httpx
    from sqlalchemy.engine import make_url

    from api.app import create_app
    from service.bootstrap import start
    from service.runtime.settings import Settings
    from tests.conftest import AUDIENCE, ISSUER

    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    url = make_url(database_url).set(database=name).render_as_string(hide_password=False)
    settings = Settings(
        database_url=url,
        data_dir=data_dir,
        jwt_issuer=ISSUER,
        jwt_audience=AUDIENCE,
        dev_tokens=True,
        **({"pool_size": 2} | overrides),
    )
    service = start(settings)
    try:
        with served(create_app(service)) as base, httpx.Client(base_url=base, timeout=30) as c:
            yield settings, service, c
    finally:
        service.close()
