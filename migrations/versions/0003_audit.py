"""Audit: minutes documents, and the role the service runs as (docs/adr/004).

- `documents`: uploaded files, content-addressed by SHA-256, append-only like the events.
- `mappa_app`: a role without UPDATE, DELETE or TRUNCATE on the append-only tables. The
  event store's connections `SET ROLE` to it (Settings.db_role), so even a superuser URL
  (the embedded server) writes history through a role that cannot rewrite it. Every other
  table, present or created later by the migrating user, is granted to it in full, so read
  models and their trackers keep working whichever migration branch runs first.

Revision ID: 0003
"""

from alembic import op

revision = "0003"
down_revision = "0001"
branch_labels = None
depends_on = None

ROLE = "mappa_app"
APPEND_ONLY = (
    "nominals_events",
    "nominals_snapshots",
    "event_index",
    "nominal_identifiers",
    "consultation_log",
    "documents",
)


def upgrade() -> None:
    op.execute(
        """
        CREATE TABLE documents (
            sha256 text PRIMARY KEY CHECK (sha256 ~ '^[0-9a-f]{64}$'),
            media_type text NOT NULL,
            size bigint NOT NULL CHECK (size > 0),
            content bytea NOT NULL,
            encrypted boolean NOT NULL,
            stored_at timestamptz NOT NULL DEFAULT clock_timestamp()
        );
        CREATE TRIGGER documents_append_only BEFORE UPDATE OR DELETE ON documents
            FOR EACH ROW EXECUTE FUNCTION refuse_rewrite();
        CREATE TRIGGER documents_no_truncate BEFORE TRUNCATE ON documents
            FOR EACH STATEMENT EXECUTE FUNCTION refuse_rewrite();
        CREATE TRIGGER nominals_snapshots_append_only BEFORE UPDATE OR DELETE ON nominals_snapshots
            FOR EACH ROW EXECUTE FUNCTION refuse_rewrite();
        CREATE TRIGGER nominals_snapshots_no_truncate BEFORE TRUNCATE ON nominals_snapshots
            FOR EACH STATEMENT EXECUTE FUNCTION refuse_rewrite();
        """
    )
    # Roles are cluster-wide: another database on the server may have created it already.
    op.execute(
        """
        DO $$
        BEGIN
            IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '@ROLE@') THEN
                CREATE ROLE @ROLE@ NOLOGIN;
            END IF;
        EXCEPTION WHEN duplicate_object OR unique_violation THEN
            NULL;
        END
        $$;
        """.replace("@ROLE@", ROLE)
    )
    # A non-superuser migrator must be a member to SET ROLE; a superuser needs nothing.
    op.execute(
        """
        DO $$
        BEGIN
            IF NOT (SELECT rolsuper FROM pg_roles WHERE rolname = current_user)
               AND NOT pg_has_role(current_user, '@ROLE@', 'MEMBER') THEN
                EXECUTE format('GRANT @ROLE@ TO %I', current_user);
            END IF;
        END
        $$;
        """.replace("@ROLE@", ROLE)
    )
    op.execute(
        f"""
        GRANT USAGE ON SCHEMA public TO {ROLE};
        GRANT SELECT, INSERT, UPDATE, DELETE, TRUNCATE ON ALL TABLES IN SCHEMA public TO {ROLE};
        GRANT USAGE, SELECT, UPDATE ON ALL SEQUENCES IN SCHEMA public TO {ROLE};
        ALTER DEFAULT PRIVILEGES IN SCHEMA public
            GRANT SELECT, INSERT, UPDATE, DELETE, TRUNCATE ON TABLES TO {ROLE};
        ALTER DEFAULT PRIVILEGES IN SCHEMA public
            GRANT USAGE, SELECT, UPDATE ON SEQUENCES TO {ROLE};
        """
    )
    for table in APPEND_ONLY:
        op.execute(f"REVOKE UPDATE, DELETE, TRUNCATE ON {table} FROM {ROLE}")
    # The library's writer takes LOCK TABLE ... IN EXCLUSIVE MODE on the events table,
    # which needs UPDATE, DELETE, TRUNCATE or (PostgreSQL 17+) MAINTAIN.
    op.execute(
        f"""
        DO $$
        BEGIN
            IF current_setting('server_version_num')::int >= 170000 THEN
                EXECUTE 'GRANT MAINTAIN ON nominals_events TO {ROLE}';
            ELSE
                RAISE WARNING 'PostgreSQL before 17 has no MAINTAIN privilege: the events '
                    'table keeps UPDATE for {ROLE} so its writer can lock it; the trigger '
                    'still refuses every UPDATE';
                EXECUTE 'GRANT UPDATE ON nominals_events TO {ROLE}';
            END IF;
        END
        $$;
        """
    )


def downgrade() -> None:
    op.execute("DROP TABLE documents")
