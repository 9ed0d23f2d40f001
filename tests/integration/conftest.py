"""Two application layers on the session's database: `here`, the session's own, and
`elsewhere`, standing in for another worker process with a cache of its own."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from service.bootstrap import Application


@pytest.fixture
def here(service) -> Application:
    return service


@pytest.fixture
def elsewhere(settings, db) -> Iterator[Application]:
    other = Application.build(settings, db)
    yield other
    other.close()
