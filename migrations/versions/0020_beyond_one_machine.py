"""Beyond one machine (issue 20): which projection runner leads, and rate limits that hold
across processes (docs/adr/024, docs/adr/025).

- `projection_leader`: one row naming the runner elected last (a host, a process id, the
  server backend holding the leader's advisory lock) and how many elections there have been.
  The lock decides who leads; the row only says who that is, and `projections status`
  believes it only while that backend still holds the lock.
- `rate_limit_buckets`: per client (an officer: agency and token subject) the theoretical
  arrival time of the generic cell rate algorithm, in seconds of the server's clock, so
  every API process on every host draws on one bucket. UNLOGGED: no WAL, not replicated; a
  crash or a failover forgets it, which costs a client at most one fresh burst.
- `rate_limit_take(key, want, rate, burst)`: up to `want` requests granted now (a positive
  count), or minus the seconds until one would be; one round trip, the row locked for its
  statement only.

Revision ID: 0020
"""

from alembic import op

revision = "0020"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        CREATE TABLE projection_leader (
            id boolean PRIMARY KEY DEFAULT true CHECK (id),
            holder text NOT NULL,
            backend_pid integer NOT NULL,
            elected_at timestamptz NOT NULL DEFAULT clock_timestamp(),
            term bigint NOT NULL DEFAULT 1
        );
        CREATE UNLOGGED TABLE rate_limit_buckets (
            key text PRIMARY KEY,
            tat double precision NOT NULL
        );
        CREATE FUNCTION rate_limit_take(
            p_key text, p_want integer, p_rate double precision, p_burst integer
        ) RETURNS double precision LANGUAGE plpgsql AS $$
        DECLARE
            now_s double precision := extract(epoch FROM clock_timestamp());
            step double precision := 1.0 / p_rate;
            tolerance double precision := p_burst * step;
            arrival double precision;
            free integer;
        BEGIN
            INSERT INTO rate_limit_buckets AS b (key, tat) VALUES (p_key, now_s)
                ON CONFLICT (key) DO NOTHING;
            SELECT greatest(b.tat, now_s) INTO arrival
                FROM rate_limit_buckets b WHERE b.key = p_key FOR UPDATE;
            free := floor((tolerance - (arrival - now_s)) / step + 1e-9);
            IF free >= 1 THEN
                free := least(free, p_want);
                UPDATE rate_limit_buckets SET tat = arrival + free * step WHERE key = p_key;
                -- A bucket whose arrival time has passed is a full one: forget such rows
                -- now and then, so the table holds the clients of the last minutes only.
                IF random() < 0.001 THEN
                    DELETE FROM rate_limit_buckets WHERE tat < now_s - 60;
                END IF;
                RETURN free;
            END IF;
            RETURN -((arrival + step - tolerance) - now_s);
        END
        $$;
        """
    )


def downgrade() -> None:
    op.execute(
        """
        DROP FUNCTION rate_limit_take(text, integer, double precision, integer);
        DROP TABLE rate_limit_buckets;
        DROP TABLE projection_leader;
        """
    )
