"""The consultation log, hash-chained (hardening point 8).

Each row written from now on carries `prev_hash` (the `hash` of the row written before it,
64 zeros for the first) and `hash` = SHA-256(prev_hash || canonical JSON of the row's
content), as the events' chain (service/consultation.py writes them, one writer at a time
under an advisory lock). `mappa-record verify` recomputes the chain: a row deleted from the
middle, edited, or inserted behind the service's back breaks it. Rows written before this
revision carry no hash and are not chained.

Revision ID: 0007
"""

from alembic import op

revision = "0007"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        ALTER TABLE consultation_log
            ADD COLUMN prev_hash text CHECK (prev_hash ~ '^[0-9a-f]{64}$'),
            ADD COLUMN hash text CHECK (hash ~ '^[0-9a-f]{64}$');
        """
    )


def downgrade() -> None:
    op.execute("ALTER TABLE consultation_log DROP COLUMN prev_hash, DROP COLUMN hash")
