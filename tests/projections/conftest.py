"""Fixtures for the read side: a runner on the session's database, and a writer with a clock."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from projections.runner import ProjectionRunner
from service.auth import Principal
from service.bootstrap import Application
from service.records import NewEvent
from tests.conftest import registration


@pytest.fixture(scope="session")
def runner(service) -> Iterator[ProjectionRunner]:
    r = ProjectionRunner.for_service(service)
    yield r
    r.engine.dispose()


class Clock:
    """The instant the next write is recorded at (the service's clock, not the domain's)."""

    def __init__(self) -> None:
        self.now = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def writer(settings, db, clock) -> Iterator[Application]:
    """A Records service on the session's database whose recorded_at comes from `clock`."""
    layer = Application.build(settings, db, clock=clock)
    yield layer
    layer.close()


def principal(agency: str, scopes: str = "records:read records:write") -> Principal:
    return Principal(sub=f"test-{agency}", agency=agency, scopes=frozenset(scopes.split()))


@pytest.fixture
def post(writer) -> Callable[..., dict[str, Any]]:
    """post(agency, nominal_id, type, payload) -> the stored event, through the service."""

    def make(
        agency: str,
        nominal_id: str,
        type_: str,
        payload: dict[str, Any],
        occurred_at: str = "2026-11-20",
    ) -> dict[str, Any]:
        posted = writer.records.post_event(
            principal(agency),
            uuid.UUID(nominal_id),
            NewEvent(event_id=uuid.uuid4(), type=type_, occurred_at=occurred_at, payload=payload),
            None,
        )
        return posted.event

    return make


@pytest.fixture
def enrol(writer) -> Callable[..., str]:
    """enrol(agency, **registration overrides) -> nominal_id, through the service."""

    def make(agency: str = "police:kent", **overrides: Any) -> str:
        body = registration(**overrides)
        event_id = uuid.UUID(body.pop("event_id"))
        posted = writer.records.register(principal(agency), event_id, None, body)
        return posted.nominal_id

    return make


@pytest.fixture
def report(client, auth, runner) -> Callable[..., dict[str, Any]]:
    """report(name, **params) -> the report's JSON, after the runner has caught up."""

    def get(name: str, **params: Any) -> dict[str, Any]:
        runner.catch_up()
        r = client.get(
            f"/v1/reports/{name}", params=params, headers=auth("mappa:national", "reports:read")
        )
        assert r.status_code == 200, r.text
        return r.json()

    return get


def at(text: str) -> datetime:
    """An instant written as in the tests, `2026-11-02T10:00` (UTC)."""
    return datetime.fromisoformat(text).replace(tzinfo=UTC)
