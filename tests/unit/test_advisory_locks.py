"""Every PostgreSQL advisory lock key of the service is its own (issue 20): the transparency
log once took the projection runners' key, and a rebuild's groups take the keys just above
it, one per process, so no other key may sit in that range."""

from projections.runner import LEADER_LOCK, RUNNER_LOCK
from service.consultation import CHAIN_LOCK
from service.store.migrate import MIGRATION_LOCK
from service.transparency import LOG_LOCK

REBUILD_GROUPS = range(RUNNER_LOCK + 1, RUNNER_LOCK + 1 + 1024)  # up to 1,024 workers


def test_advisory_lock_keys_are_distinct_and_clear_of_the_rebuilds_range():
    keys = [MIGRATION_LOCK, CHAIN_LOCK, RUNNER_LOCK, LEADER_LOCK, LOG_LOCK]
    assert len(set(keys)) == len(keys)
    assert not [k for k in keys if k in REBUILD_GROUPS]
