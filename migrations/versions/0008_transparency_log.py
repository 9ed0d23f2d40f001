"""The transparency log: the whole event log as an RFC 6962 Merkle tree, and the signed
checkpoints the service issued (docs/adr/020-transparency-log.md).

- `log_leaves`: the tree's leaves in order: leaf `idx` is the event stored at `position`
  (its global position), its leaf hash SHA-256(0x00 || the event's chain hash).
- `log_nodes`: every complete node of the tree, (level, idx) covering leaves
  [idx * 2^level, (idx + 1) * 2^level); level 0 are the leaf hashes. Proofs read O(log n)
  of them, so a proof costs the same at 4 million events as at 4 thousand.
- `log_checkpoints`: every checkpoint issued, as the signed note handed out.

All three are append-only, like the events: the same triggers, and no UPDATE, DELETE or
TRUNCATE for the service's role.

Revision ID: 0008
"""

from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

TABLES = ("log_leaves", "log_nodes", "log_checkpoints")
ROLE = "mappa_app"


def upgrade() -> None:
    op.execute(
        """
        CREATE TABLE log_leaves (
            idx bigint PRIMARY KEY CHECK (idx >= 0),
            position bigint NOT NULL UNIQUE
        );
        CREATE TABLE log_nodes (
            level smallint NOT NULL CHECK (level >= 0),
            idx bigint NOT NULL CHECK (idx >= 0),
            hash bytea NOT NULL CHECK (length(hash) = 32),
            PRIMARY KEY (level, idx)
        );
        CREATE TABLE log_checkpoints (
            size bigint PRIMARY KEY CHECK (size > 0),
            root bytea NOT NULL CHECK (length(root) = 32),
            note text NOT NULL,
            issued_at timestamptz NOT NULL DEFAULT clock_timestamp()
        );
        """
    )
    for table in TABLES:
        op.execute(
            f"""
            CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table}
                FOR EACH ROW EXECUTE FUNCTION refuse_rewrite();
            CREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table}
                FOR EACH STATEMENT EXECUTE FUNCTION refuse_rewrite();
            REVOKE UPDATE, DELETE, TRUNCATE ON {table} FROM {ROLE};
            """
        )


def downgrade() -> None:
    for table in TABLES:
        op.execute(f"DROP TABLE {table}")
