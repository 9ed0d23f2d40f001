"""Events a projection could not apply, set aside so that the rest of the log is applied
(docs/adr/018).

A row names the event (its position in the log, its record and version, its topic), the
projection that could not apply it, and the error, on one line. The runner writes it in the
same transaction as the positions it moves past the event; `mappa-record projections retry`
applies it again (and deletes the row once it is applied); a rebuild deletes the rows of the
projections it rebuilds and sets aside afresh what still fails.

Revision ID: 0006_dead_letters
"""

from alembic import op

revision = "0006_dead_letters"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        CREATE TABLE projection_dead_letters (
            projection text NOT NULL,
            position bigint NOT NULL,
            nominal_id uuid NOT NULL,
            version bigint NOT NULL,
            topic text NOT NULL,
            error text NOT NULL,
            attempts integer NOT NULL DEFAULT 1,
            first_failed_at timestamptz NOT NULL DEFAULT now(),
            failed_at timestamptz NOT NULL DEFAULT now(),
            PRIMARY KEY (projection, position)
        );
        CREATE INDEX projection_dead_letters_nominal ON projection_dead_letters (nominal_id);
        """
    )


def downgrade() -> None:
    op.execute("DROP TABLE projection_dead_letters")
