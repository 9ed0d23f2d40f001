"""Two `Records` services on the session's database: `here`, the session's own, and
`elsewhere`, standing in for another worker process with a cache of its own."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from service.records import Records


@pytest.fixture
def here(service) -> Records:
    return service.records


@pytest.fixture
def elsewhere(settings, db) -> Iterator[Records]:
    other = Records(settings, db)
    yield other
    other.close()
