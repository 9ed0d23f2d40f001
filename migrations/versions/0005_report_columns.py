"""Read-model columns that let two reports at national scale read one table each.

`rm_attendance` carries its meeting's level and date (written by the same handler as the
meeting), so the attendance report filters by level and date without joining the meetings;
`rm_meeting_disclosures` counts each meeting's disclosure decisions as they are recorded,
so disclosure coverage joins one row per meeting instead of grouping every decision.

The two projections that own these tables start again from the first event: their tables
are emptied and their positions set to 0, and the runner (in `serve`, or `mappa-record
projections run`) fills them again; their reports are partial until it has caught up.

Revision ID: 0005
"""

from alembic import op

revision = "0005"
# After the read models (0002) and the role whose default privileges cover new tables (0004).
down_revision = ("0002", "0004")
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        ALTER TABLE rm_attendance ADD COLUMN level smallint, ADD COLUMN held_on date;
        CREATE INDEX rm_attendance_held_on ON rm_attendance (held_on);

        CREATE TABLE rm_meeting_disclosures (
            nominal_id uuid NOT NULL,
            meeting_id text NOT NULL,
            decisions integer NOT NULL,
            disclosed integer NOT NULL,
            PRIMARY KEY (nominal_id, meeting_id)
        );

        TRUNCATE rm_meetings, rm_attendance, rm_disclosure_decisions;
        UPDATE projection_positions SET position = 0, updated_at = now()
            WHERE name IN ('meetings', 'disclosure_decisions');
        """
    )


def downgrade() -> None:
    op.execute(
        """
        DROP TABLE rm_meeting_disclosures;
        DROP INDEX rm_attendance_held_on;
        ALTER TABLE rm_attendance DROP COLUMN level, DROP COLUMN held_on;
        """
    )
