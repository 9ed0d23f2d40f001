"""Identifiers released by a correction, and claimed again, without a row ever changing.

`nominal_identifiers` stays append-only (its triggers and the service role's privileges are
untouched). Each claim of an identifier now carries `claim_no`, the number of times that
identifier had been released before it was claimed, set by a trigger; the primary key is
(kind, value, claim_no). A release is a row of `identifier_releases`, append-only too,
naming the claim it releases (the current one: its `claim_no` is set by a trigger the same
way), the record that held it, and the stored event that released it.

So a claim can only be inserted as the claim after the last release: while an identifier is
held, a second claim gets the same `claim_no` as the holding one and the primary key refuses
it, exactly as the old key (kind, value) did; once released, the next claim takes the next
number, once. Concurrent claims race on one key, as at registration (docs/adr/019).

Revision ID: 0010
"""

from alembic import op

revision = "0010"
down_revision = "0007"
branch_labels = None
depends_on = None

ROLE = "mappa_app"


def upgrade() -> None:
    op.execute(
        """
        ALTER TABLE nominal_identifiers ADD COLUMN claim_no integer NOT NULL DEFAULT 0;
        ALTER TABLE nominal_identifiers DROP CONSTRAINT nominal_identifiers_pkey;
        ALTER TABLE nominal_identifiers ADD PRIMARY KEY (kind, value, claim_no);
        ALTER TABLE nominal_identifiers ADD CONSTRAINT nominal_identifiers_claim_holder
            UNIQUE (kind, value, claim_no, nominal_id);

        CREATE TABLE identifier_releases (
            kind text NOT NULL,
            value text NOT NULL,
            claim_no integer NOT NULL,
            nominal_id uuid NOT NULL,
            event_id uuid NOT NULL REFERENCES event_index (event_id),
            released_at timestamptz NOT NULL DEFAULT clock_timestamp(),
            PRIMARY KEY (kind, value, claim_no),
            FOREIGN KEY (kind, value, claim_no, nominal_id)
                REFERENCES nominal_identifiers (kind, value, claim_no, nominal_id)
        );

        -- The claim an identifier's next claim or release is about: the one after its
        -- releases so far. Written by the service's role, which can read the releases.
        CREATE FUNCTION identifier_claim_no() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            NEW.claim_no := (
                SELECT count(*) FROM identifier_releases r
                WHERE r.kind = NEW.kind AND r.value = NEW.value
            );
            RETURN NEW;
        END;
        $$;
        CREATE TRIGGER nominal_identifiers_claim_no BEFORE INSERT ON nominal_identifiers
            FOR EACH ROW EXECUTE FUNCTION identifier_claim_no();
        CREATE TRIGGER identifier_releases_claim_no BEFORE INSERT ON identifier_releases
            FOR EACH ROW EXECUTE FUNCTION identifier_claim_no();

        CREATE TRIGGER identifier_releases_append_only BEFORE UPDATE OR DELETE
            ON identifier_releases FOR EACH ROW EXECUTE FUNCTION refuse_rewrite();
        CREATE TRIGGER identifier_releases_no_truncate BEFORE TRUNCATE ON identifier_releases
            FOR EACH STATEMENT EXECUTE FUNCTION refuse_rewrite();
        """
    )
    # Created by the migrating user: the default privileges of 0003 grant it to the role in
    # full; take back what would let it rewrite history.
    op.execute(
        f"""
        GRANT SELECT, INSERT ON identifier_releases TO {ROLE};
        REVOKE UPDATE, DELETE, TRUNCATE ON identifier_releases FROM {ROLE};
        """
    )


def downgrade() -> None:
    op.execute(
        """
        DROP TABLE identifier_releases;
        DROP TRIGGER nominal_identifiers_claim_no ON nominal_identifiers;
        DROP FUNCTION identifier_claim_no();
        ALTER TABLE nominal_identifiers DROP CONSTRAINT nominal_identifiers_claim_holder;
        ALTER TABLE nominal_identifiers DROP CONSTRAINT nominal_identifiers_pkey;
        ALTER TABLE nominal_identifiers ADD PRIMARY KEY (kind, value);
        ALTER TABLE nominal_identifiers DROP COLUMN claim_no;
        """
    )
