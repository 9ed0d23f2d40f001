"""Which exception becomes which HTTP status: the one table (RFC 9457 problem+json)."""

from __future__ import annotations

import json
import logging
from typing import Any

from eventsourcing.persistence import PersistenceError
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from domain.errors import (
    DomainError,
    InvalidValue,
    InvariantViolated,
    NoChange,
    RecordClosed,
)
from service.access import Forbidden, JustificationRequired, NotFound
from service.auth import Unauthenticated
from service.integrations.inbound import MalformedMessage
from service.minutes import DocumentTooLarge, UnsupportedDocument
from service.payloads import escaped
from service.records import Conflict, PreconditionFailed

log = logging.getLogger(__name__)

PROBLEM = "application/problem+json"
TYPE_BASE = "https://mappa-record.example/problems/"


class BadRequest(Exception):
    """A request the API itself refuses before the service sees it (a bad header, say)."""


class PayloadTooLarge(Exception):
    """The request body is over the limit."""


class ReportTimedOut(Exception):
    """A report's query ran past the statement timeout and was cancelled."""


class UnsupportedMediaType(Exception):
    """The uploaded file is not one of the accepted kinds."""


# exception class -> (status, type slug, title). Looked up along the class's MRO, so the
# most specific entry wins.
TABLE: dict[type[BaseException], tuple[int, str, str]] = {
    Unauthenticated: (401, "unauthenticated", "Not authenticated"),
    Forbidden: (403, "forbidden", "Not allowed"),
    NotFound: (404, "not-found", "Not found"),
    JustificationRequired: (400, "justification-required", "Justification required"),
    BadRequest: (400, "bad-request", "Bad request"),
    MalformedMessage: (400, "malformed-message", "Malformed message"),
    Conflict: (409, "conflict", "Conflict"),
    PreconditionFailed: (412, "precondition-failed", "Precondition failed"),
    PayloadTooLarge: (413, "payload-too-large", "Payload too large"),
    UnsupportedMediaType: (415, "unsupported-media-type", "Unsupported media type"),
    DocumentTooLarge: (413, "payload-too-large", "Payload too large"),
    UnsupportedDocument: (415, "unsupported-media-type", "Unsupported media type"),
    InvalidValue: (422, "invalid-value", "Invalid value"),
    NoChange: (422, "no-change", "Nothing would change"),
    RecordClosed: (422, "record-deregistered", "Record deregistered"),
    InvariantViolated: (422, "rule-broken", "A rule of the record forbids this"),
    DomainError: (422, "rule-broken", "A rule of the record forbids this"),
    ReportTimedOut: (503, "report-timed-out", "The report took too long"),
    # The database is down or unreachable: nothing was acknowledged, so a retry is safe.
    PersistenceError: (503, "unavailable", "Service unavailable"),
}


def problem(
    status: int,
    slug: str,
    title: str,
    detail: str,
    headers: dict[str, str] | None = None,
    **extra: Any,
) -> JSONResponse:
    body = _printable(
        {"type": TYPE_BASE + slug, "title": title, "status": status, "detail": detail} | extra
    )
    if status == 401:
        headers = {"WWW-Authenticate": "Bearer"} | (headers or {})
    return JSONResponse(body, status_code=status, media_type=PROBLEM, headers=headers)


def _printable(value: Any) -> Any:
    """The problem with any NUL or lone surrogate it would echo (a field named by a client,
    say) written as \\uXXXX: a lone surrogate has no UTF-8 form, so the answer could not be
    sent at all."""
    if isinstance(value, str):
        return escaped(value)
    if isinstance(value, dict):
        return {escaped(str(k)): _printable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_printable(v) for v in value]
    return value


def unauthenticated(exc: Unauthenticated) -> JSONResponse:
    """The one 401 answer, whatever was wrong with the token."""
    # Say nothing that helps an attacker; the reason goes to the log only.
    log.info("refused token: %s", exc)
    return problem(401, "unauthenticated", "Not authenticated", "a valid bearer token is required")


def _lookup(exc: BaseException) -> tuple[int, str, str] | None:
    for cls in type(exc).__mro__:
        if cls in TABLE:
            return TABLE[cls]
    return None


def problem_document(exc: Exception) -> tuple[int, dict[str, Any]]:
    """The status and problem document an exception of a request is answered with (for
    each event of a batch, which answers its events one by one)."""
    if isinstance(exc, RequestValidationError):
        response = _validation_problem(exc)
    elif _lookup(exc) is not None and not isinstance(exc, Unauthenticated):
        response = _known_problem(exc)
    else:
        log.exception("unhandled error in a batch", exc_info=exc)
        response = problem(500, "internal", "Internal error", "the event could not be stored")
    return response.status_code, json.loads(response.body)


async def _handle_known(request: Request, exc: Exception) -> JSONResponse:
    if isinstance(exc, Unauthenticated):
        return unauthenticated(exc)
    return _known_problem(exc)


def _known_problem(exc: Exception) -> JSONResponse:
    found = _lookup(exc)
    assert found is not None
    status, slug, title = found
    extra: dict[str, Any] = {}
    if isinstance(exc, DomainError) and exc.field:
        extra["errors"] = [{"field": exc.field, "message": exc.message}]
    if isinstance(exc, Conflict) and exc.existing:
        extra["existing_nominal_id"] = exc.existing
    if isinstance(exc, PersistenceError):
        log.warning("database error: %s", exc)
        return problem(
            status,
            slug,
            title,
            "the record store is unavailable: retry later",
            headers={"Retry-After": "5"},
        )
    detail = exc.message if isinstance(exc, DomainError) else str(exc)
    return problem(status, slug, title, detail, **extra)


def _field_path(loc: tuple[Any, ...]) -> str:
    # Only the leading "body" is pydantic's: a field may be called body (an entry's text).
    parts = [str(p) for p in (loc[1:] if loc[:1] == ("body",) else loc)]
    return ".".join(parts) or "body"


async def _handle_validation(request: Request, exc: RequestValidationError) -> JSONResponse:
    return _validation_problem(exc)


def _validation_problem(exc: RequestValidationError) -> JSONResponse:
    errors = [
        {"field": _field_path(tuple(e["loc"])), "message": e["msg"].removeprefix("Value error, ")}
        for e in exc.errors()
    ]
    if any(e["type"] == "json_invalid" for e in exc.errors()):
        return problem(400, "malformed-json", "Malformed JSON", "the body is not valid JSON")
    first = errors[0] if errors else {"field": "body", "message": "invalid"}
    return problem(
        422,
        "validation",
        "Validation failed",
        f"{first['field']}: {first['message']}",
        errors=errors,
    )


async def _handle_http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
    slug = {404: "not-found", 405: "method-not-allowed"}.get(exc.status_code, "http-error")
    return problem(exc.status_code, slug, str(exc.detail), str(exc.detail))


async def _handle_unexpected(request: Request, exc: Exception) -> JSONResponse:
    log.exception("unhandled error on %s %s", request.method, request.url.path)
    return problem(500, "internal", "Internal error", "the request could not be completed")


PROBLEM_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["type", "title", "status", "detail"],
    "properties": {
        "type": {"type": "string"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "errors": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {"field": {"type": "string"}, "message": {"type": "string"}},
            },
        },
    },
}


def _document_problems(app: FastAPI) -> None:
    """Say in /openapi.json what the handlers send: every 4xx/5xx is problem+json."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        schema = build()
        schema.setdefault("components", {}).setdefault("schemas", {})["Problem"] = PROBLEM_SCHEMA
        for path in schema.get("paths", {}).values():
            for operation in path.values():
                for code, response in operation.get("responses", {}).items():
                    if code[:1] in ("4", "5"):
                        response["content"] = {
                            PROBLEM: {"schema": {"$ref": "#/components/schemas/Problem"}}
                        }
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]


def install(app: FastAPI) -> None:
    """Register every handler: each refusal leaves as problem+json."""
    _document_problems(app)
    for cls in TABLE:
        app.add_exception_handler(cls, _handle_known)
    app.add_exception_handler(RequestValidationError, _handle_validation)  # type: ignore[arg-type]
    app.add_exception_handler(StarletteHTTPException, _handle_http)  # type: ignore[arg-type]
    app.add_exception_handler(Exception, _handle_unexpected)
