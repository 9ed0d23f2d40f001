"""Current partners per record, written in the same transaction as the events that change them.

An index, not history (the events are the history): it lets a read of a long record check
partnering without rebuilding the record (docs/adr/010). Rows are replaced, so it is not one
of the append-only tables.

Revision ID: 0004
"""

from alembic import op

revision = "0004"
down_revision = "0003"  # after the role of 0003, whose default privileges cover this table
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        CREATE TABLE nominal_partners (
            nominal_id uuid NOT NULL,
            agency text NOT NULL,
            PRIMARY KEY (nominal_id, agency)
        );
        """
    )
