"""The eventsourcing library's own recorder test cases, run against our recorders.

`NominalRecorder` is the application recorder the service uses for events (store.py);
with no index rows to write it must behave exactly as the library's. Snapshots go to the
library's aggregate recorder, which the aggregate cases check. The cases run on the session's real
database, in a schema of their own (`recorder_cases`) so they never touch the service's
tables; each test starts from empty tables, as the library's own PostgreSQL tests do.
"""

from __future__ import annotations

from typing import Any, ClassVar

import psycopg
import pytest
from eventsourcing.postgres import (
    PostgresAggregateRecorder,
    PostgresDatastore,
    PostgresTrackingRecorder,
)
from eventsourcing.tests.persistence import (
    AggregateRecorderTestCase,
    ApplicationRecorderTestCase,
    TrackingRecorderTestCase,
)
from psycopg.sql import SQL, Identifier

from service.store.eventstore import NominalRecorder

SCHEMA = "recorder_cases"
EVENTS_TABLE = "case_stored_events"
SNAPSHOTS_TABLE = "case_snapshots"
TRACKING_TABLE = "case_notification_tracking"


class OnSessionDatabase:
    """Mixin: a datastore on the session's database, fresh tables for each test."""

    parts: ClassVar[dict[str, Any]]
    datastore: PostgresDatastore

    @pytest.fixture(autouse=True)
    def _on_session_database(self, db) -> None:
        type(self).parts = dict(db.parts)
        with psycopg.connect(db.url, autocommit=True) as conn:
            conn.execute(SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(Identifier(SCHEMA)))
            conn.execute(SQL("CREATE SCHEMA {}").format(Identifier(SCHEMA)))

    def setUp(self) -> None:  # noqa: N802 - unittest's name
        p = self.parts
        self.datastore = PostgresDatastore(
            dbname=p["dbname"],
            host=p["host"],
            port=p["port"],
            user=p["user"],
            password=p["password"],
            schema=SCHEMA,
            pool_size=10,
            max_overflow=10,
            originator_id_type="uuid",
        )

    def tearDown(self) -> None:  # noqa: N802
        self.datastore.close()

    def application_recorder(self) -> NominalRecorder:
        recorder = NominalRecorder(self.datastore, events_table_name=EVENTS_TABLE)
        recorder.create_table()
        return recorder


class TestAggregateRecorderCases(OnSessionDatabase, AggregateRecorderTestCase):
    def create_recorder(self) -> PostgresAggregateRecorder:
        recorder = PostgresAggregateRecorder(self.datastore, events_table_name=SNAPSHOTS_TABLE)
        recorder.create_table()
        return recorder


class TestApplicationRecorderCases(OnSessionDatabase, ApplicationRecorderTestCase):
    def create_recorder(self) -> NominalRecorder:
        return self.application_recorder()


class TestTrackingRecorderCases(OnSessionDatabase, TrackingRecorderTestCase):
    def create_recorder(self) -> PostgresTrackingRecorder:
        recorder = PostgresTrackingRecorder(self.datastore, tracking_table_name=TRACKING_TABLE)
        recorder.create_table()
        return recorder


def test_the_cases_run_against_the_recorders_the_service_is_configured_with(service):
    app = service.ledger.app
    assert type(app.recorder) is NominalRecorder
    assert app.snapshots is not None
    assert type(app.snapshots.recorder) is PostgresAggregateRecorder
