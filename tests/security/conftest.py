"""Helpers for the security suite: bodies sent byte for byte (text an encoder would refuse
or tidy up), what is stored, and the reliability suite's fixtures."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from tests.reliability.conftest import app_with, partner, stored_count  # noqa: F401

PROBLEM = "application/problem+json"

NUL = "\x00"
LONE_SURROGATE = "\ud800"
UNSTORABLE = {"NUL": NUL, "lone surrogate": LONE_SURROGATE}


def as_json(body: Any) -> bytes:
    """JSON as a client may send it: escapes such as \\u0000 and a lone \\ud800 included
    (httpx's own encoder refuses a lone surrogate)."""
    return json.dumps(body).encode()


@pytest.fixture
def post_json(client) -> Callable[..., Any]:
    """post_json(url, body, headers) -> the response to the body sent as `as_json` gives it."""

    def post(url: str, body: Any, headers: dict[str, str]):
        return client.post(
            url, content=as_json(body), headers=headers | {"Content-Type": "application/json"}
        )

    return post


@pytest.fixture
def table_count(db) -> Callable[[str], int]:
    """table_count("consultation_log") -> rows in that table."""

    def count(table: str) -> int:
        with db.connect() as conn:
            row = conn.execute(f"SELECT count(*) FROM {table}").fetchone()  # noqa: S608
        assert row is not None
        return int(row[0])

    return count


def assert_refused(r, status: int, field: str | None = None) -> dict[str, Any]:
    """The answer is problem+json with that status, naming `field` when one is given."""
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == PROBLEM
    body = r.json()
    assert body["status"] == status
    if field is not None:
        assert field in [e["field"] for e in body.get("errors", [])], body
    return body
