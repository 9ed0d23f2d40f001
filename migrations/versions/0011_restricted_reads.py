"""The consultation log names the restricted entry read (docs/adr/021).

A read that shows a restricted entry whole (to the agency that posted it, one it names, or an
auditor who said why) logs, beside its own row, one row per such entry, action
`read-restricted-entry`, with the entry's event id in `entry_id`. The column is part of the
row's hash when it is set; rows without it hash as before, so the chain of migration 0007
carries on unbroken.

Revision ID: 0011
"""

from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("ALTER TABLE consultation_log ADD COLUMN entry_id uuid")


def downgrade() -> None:
    op.execute("ALTER TABLE consultation_log DROP COLUMN entry_id")
