"""MAPPA minutes: the documents themselves, stored content-addressed beside the record.

ViSOR is the designated repository for MAPPA minutes (000, para 5.37). An upload stores
the file once per SHA-256 in the `documents` table (encrypted with the event store's
cipher when one is configured) and appends `MinutesUploaded` naming it, so every such
event has its document; the domain fills due_on, working_days_taken and late. A document
is read back only through a record whose minutes reference it, and that read is logged.
"""

from __future__ import annotations

import hashlib
import io
import zipfile
from dataclasses import dataclass
from datetime import date
from typing import Any
from uuid import UUID

from service import access
from service.access import NotFound
from service.auth import Principal
from service.reading import Reading
from service.records import NewEvent, Posted, Records

MAX_DOCUMENT_BYTES = 20 * 1024 * 1024  # 20 MiB

PDF = "application/pdf"
DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
ODT = "application/vnd.oasis.opendocument.text"
ACCEPTED = {PDF: ".pdf", DOCX: ".docx", ODT: ".odt"}


class DocumentTooLarge(Exception):
    """The file is over the size limit."""


class UnsupportedDocument(Exception):
    """The file is not a PDF, DOCX or ODT document (judged by its content)."""


def media_type_of(content: bytes) -> str:
    """PDF, DOCX or ODT, from the bytes themselves; UnsupportedDocument otherwise.

    A PDF starts with its header, `%PDF-` (ISO 32000-1, 7.5.2). DOCX and ODT are zip
    packages (`PK\x03\x04`), told apart by their packaging entries, wherever the writer put
    them in the zip."""
    if content.startswith(b"%PDF-"):
        return PDF
    if content.startswith(b"PK\x03\x04"):
        found = _zipped_document_type(content)
        if found is not None:
            return found
    raise UnsupportedDocument("minutes are accepted as PDF, DOCX or ODT documents only")


def _zipped_document_type(content: bytes) -> str | None:
    try:
        with zipfile.ZipFile(io.BytesIO(content)) as z:
            names = set(z.namelist())

            def small(name: str) -> bytes:
                # Only the packaging entries are read, and only when small: no zip bomb.
                if z.getinfo(name).file_size > 1_000_000:
                    return b""
                return z.read(name)

            if "mimetype" in names and small("mimetype").strip() == ODT.encode():
                return ODT
            if (
                "[Content_Types].xml" in names
                and "word/document.xml" in names
                and b"wordprocessingml.document.main+xml" in small("[Content_Types].xml")
            ):
                return DOCX
    except (zipfile.BadZipFile, KeyError, OSError, RuntimeError):
        return None
    return None


@dataclass(frozen=True)
class Document:
    sha256: str
    media_type: str
    filename: str
    content: bytes


class Minutes:
    def __init__(self, records: Records, reading: Reading) -> None:
        self.records = records
        self.reading = reading
        self.ledger = records.ledger

    def upload(
        self,
        principal: Principal,
        nominal_id: UUID,
        *,
        event_id: UUID,
        meeting_id: str,
        meeting_date: date,
        level: int,
        filename: str,
        content: bytes,
        occurred_at: str | None = None,
    ) -> Posted:
        """Store a meeting's minutes and append MinutesUploaded naming them."""
        access.require_scope(principal, "records:write")
        if len(content) > MAX_DOCUMENT_BYTES:
            raise DocumentTooLarge(f"minutes may be up to {MAX_DOCUMENT_BYTES // 2**20} MiB")
        if not content:
            raise UnsupportedDocument("the file is empty")
        # Refuse before storing anything, so no one but a poster leaves a file behind.
        nominal = self.ledger.load(nominal_id, read_only=True)
        if nominal is None or not nominal.is_partner(principal.agency):
            raise NotFound("no such record")
        access.require_may_post(principal, nominal, "MinutesUploaded", {})
        media_type = media_type_of(content)
        sha256 = hashlib.sha256(content).hexdigest()
        self._store(sha256, media_type, content)
        payload: dict[str, Any] = {
            "meeting_id": meeting_id,
            "meeting_date": meeting_date.isoformat(),
            "level": level,
            "document": {
                "sha256": sha256,
                "filename": filename,
                "media_type": media_type,
                "size": len(content),
            },
        }
        new = NewEvent(
            event_id=event_id,
            type="MinutesUploaded",
            occurred_at=occurred_at or meeting_date.isoformat(),
            payload=payload,
        )
        return self.records.post_event(principal, nominal_id, new, None)

    def document(
        self, principal: Principal, nominal_id: UUID, sha256: str, justification: str | None
    ) -> Document:
        """A document the record's minutes reference, to a partner or an auditor (logged)."""
        access.require_scope(principal, "records:read", "audit:read")
        nominal = self.reading.readable(
            principal,
            nominal_id,
            route="GET /v1/nominals/{id}/documents/{sha256}",
            justification=justification,
            action="read-document",
        )
        named = [m["document"] for m in nominal.minutes if m["document"]["sha256"] == sha256]
        if not named:
            raise NotFound("the record names no such document")
        content, media_type = self._load(sha256)
        return Document(sha256, media_type, named[-1]["filename"], content)

    def _store(self, sha256: str, media_type: str, content: bytes) -> None:
        cipher = self.ledger.app.mapper.cipher
        stored = cipher.encrypt(content) if cipher is not None else content
        with self.ledger.datastore.transaction(commit=True) as curs:
            curs.execute(
                "INSERT INTO documents (sha256, media_type, size, content, encrypted)"
                " VALUES (%s, %s, %s, %s, %s) ON CONFLICT (sha256) DO NOTHING",
                (sha256, media_type, len(content), stored, cipher is not None),
            )

    def _load(self, sha256: str) -> tuple[bytes, str]:
        with self.ledger.datastore.transaction() as curs:
            curs.execute(
                "SELECT media_type, content, encrypted FROM documents WHERE sha256 = %s",
                (sha256,),
            )
            row = curs.fetchone()
        if row is None:
            raise NotFound("the document is not stored")
        content = bytes(row["content"])
        if row["encrypted"]:
            cipher = self.ledger.app.mapper.cipher
            assert cipher is not None, "an encrypted document needs MAPPA_CIPHER_KEY"
            content = cipher.decrypt(content)
        if hashlib.sha256(content).hexdigest() != sha256:
            raise AssertionError(f"document {sha256} does not match its address")
        return content, str(row["media_type"])
