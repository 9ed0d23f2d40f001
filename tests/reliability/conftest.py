"""Helpers for the reliability suite: extra app instances with other settings (served with
tests.conftest.served), counts of what is stored, partnering."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import pytest

from tests.conftest import event


@pytest.fixture
def app_with(service) -> Callable:
    """app_with(rate_limit_burst=3, ...) -> a new app over the session's service, other settings."""
    from api.app import create_app

    def make(**changes):
        settings = service.settings.model_copy(update=changes)
        return create_app(dataclasses.replace(service, settings=settings))

    return make


@pytest.fixture
def stored_count(db) -> Callable[..., int]:
    """stored_count(nominal_id=None) -> rows in the events table (of one nominal, if given)."""

    def count(nominal_id: str | None = None) -> int:
        with db.connect() as conn:
            if nominal_id is None:
                row = conn.execute("SELECT count(*) FROM nominals_events").fetchone()
            else:
                row = conn.execute(
                    "SELECT count(*) FROM nominals_events WHERE originator_id = %s",
                    (nominal_id,),
                ).fetchone()
        assert row is not None
        return int(row[0])

    return count


@pytest.fixture
def partner(client, auth) -> Callable[..., None]:
    """partner(nominal_id, agency, by="police:kent"): AgencyPartnered, posted by a partner."""

    def post(nominal_id: str, agency: str, by: str = "police:kent") -> None:
        body = event("AgencyPartnered", {"agency": agency, "reason": "joint management"})
        r = client.post(f"/v1/nominals/{nominal_id}/events", json=body, headers=auth(by))
        assert r.status_code == 201, r.text

    return post


@pytest.fixture
def unpartner(client, auth) -> Callable[..., None]:
    def post(nominal_id: str, agency: str, by: str = "police:kent") -> None:
        body = event("PartneringEnded", {"agency": agency, "reason": "no longer involved"})
        r = client.post(f"/v1/nominals/{nominal_id}/events", json=body, headers=auth(by))
        assert r.status_code == 201, r.text

    return post
