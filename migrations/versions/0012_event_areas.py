"""Each event's area: the area its record was in when it was recorded (docs/adr/022).

A read model like the others (emptied and rebuilt from the events, no names or identifiers):
`rm_event_areas`, one row per event, and `rm_record_areas`, each record's area now, which the
projection keeps to know the next event's. The projection starts at position 0, so on a
database with history its runner fills both from the first event.

Revision ID: 0012
"""

from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        CREATE TABLE rm_event_areas (
            nominal_id uuid NOT NULL,
            version bigint NOT NULL,
            position bigint NOT NULL,
            type text NOT NULL,
            area text NOT NULL,
            PRIMARY KEY (nominal_id, version)
        );
        CREATE INDEX rm_event_areas_area ON rm_event_areas (area, type);
        CREATE TABLE rm_record_areas (
            nominal_id uuid PRIMARY KEY,
            area text NOT NULL
        );
        """
    )


def downgrade() -> None:
    op.execute("DROP TABLE rm_event_areas; DROP TABLE rm_record_areas")
