"""The record's own tables beside the event store, and append-only enforcement.

The event store's tables (nominals_events, nominals_snapshots) are created by the
eventsourcing library just before this runs (service/store/migrate.py).

Revision ID: 0001
"""

from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

APPEND_ONLY = ("nominals_events", "event_index", "nominal_identifiers", "consultation_log")


def upgrade() -> None:
    op.execute(
        """
        CREATE TABLE event_index (
            event_id uuid PRIMARY KEY,
            nominal_id uuid NOT NULL,
            version bigint NOT NULL,
            request_digest text NOT NULL,
            agency text NOT NULL,
            UNIQUE (nominal_id, version)
        );
        CREATE TABLE nominal_identifiers (
            kind text NOT NULL,
            value text NOT NULL,
            nominal_id uuid NOT NULL,
            PRIMARY KEY (kind, value)
        );
        CREATE INDEX nominal_identifiers_nominal ON nominal_identifiers (nominal_id);
        CREATE TABLE consultation_log (
            id bigserial PRIMARY KEY,
            at timestamptz NOT NULL DEFAULT clock_timestamp(),
            sub text NOT NULL,
            agency text NOT NULL,
            nominal_id uuid NOT NULL,
            route text NOT NULL,
            action text NOT NULL,
            outcome text NOT NULL,
            justification text
        );
        CREATE INDEX consultation_log_nominal ON consultation_log (nominal_id, id);

        CREATE FUNCTION refuse_rewrite() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            RAISE EXCEPTION 'the table % is append-only: % is refused', TG_TABLE_NAME, TG_OP
                USING ERRCODE = 'insufficient_privilege';
        END;
        $$;
        """
    )
    for table in APPEND_ONLY:
        op.execute(
            f"""
            CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table}
                FOR EACH ROW EXECUTE FUNCTION refuse_rewrite();
            CREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table}
                FOR EACH STATEMENT EXECUTE FUNCTION refuse_rewrite();
            """
        )
