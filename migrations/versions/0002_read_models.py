"""Read models built from the event store's global order, and the runner's positions.

Every table here can be emptied and rebuilt from the events (`mappa-record projections
rebuild`); none is a source of truth. Reports read them; they hold no names or
identifiers of people (docs/design.md#rules).

Revision ID: 0002
Revises: 0001
"""

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        CREATE TABLE projection_positions (
            name text PRIMARY KEY,
            position bigint NOT NULL DEFAULT 0,
            updated_at timestamptz NOT NULL DEFAULT now()
        );

        CREATE TABLE rm_nominals (
            nominal_id uuid PRIMARY KEY,
            version bigint NOT NULL,
            events_applied bigint NOT NULL,
            area text NOT NULL,
            category smallint NOT NULL,
            level smallint NOT NULL,
            lead_agency text,
            status text NOT NULL,
            custody_status text,
            custody_establishment text,
            expected_release_on date,
            registered_at timestamptz NOT NULL,
            registered_by text NOT NULL
        );
        CREATE INDEX rm_nominals_area ON rm_nominals (area, level);

        CREATE TABLE rm_partnerships (
            nominal_id uuid NOT NULL,
            agency text NOT NULL,
            since timestamptz NOT NULL,
            since_position bigint NOT NULL,
            by_agency text NOT NULL,
            reason text NOT NULL,
            until timestamptz,
            ended_by text,
            end_reason text,
            PRIMARY KEY (nominal_id, agency, since_position)
        );
        CREATE UNIQUE INDEX rm_partnerships_current ON rm_partnerships (nominal_id, agency)
            WHERE until IS NULL;
        CREATE INDEX rm_partnerships_agency ON rm_partnerships (agency) WHERE until IS NULL;

        CREATE TABLE rm_officers (
            nominal_id uuid NOT NULL,
            agency text NOT NULL,
            since timestamptz NOT NULL,
            PRIMARY KEY (nominal_id, agency)
        );

        CREATE TABLE rm_partnering_gaps (
            nominal_id uuid PRIMARY KEY,
            prison_not_partnered boolean NOT NULL,
            no_lead_agency boolean NOT NULL,
            no_police_offender_manager boolean NOT NULL,
            latest_meeting_level smallint,
            level_mismatch boolean NOT NULL
        );

        CREATE TABLE rm_meetings (
            nominal_id uuid NOT NULL,
            meeting_id text NOT NULL,
            level smallint NOT NULL,
            held_on date NOT NULL,
            recorded_at timestamptz NOT NULL,
            position bigint NOT NULL,
            PRIMARY KEY (nominal_id, meeting_id)
        );
        CREATE INDEX rm_meetings_held_on ON rm_meetings (held_on);
        CREATE INDEX rm_meetings_latest ON rm_meetings (nominal_id, position DESC);

        CREATE TABLE rm_attendance (
            nominal_id uuid NOT NULL,
            meeting_id text NOT NULL,
            agency text NOT NULL,
            invited boolean NOT NULL,
            attended boolean NOT NULL,
            apologies boolean NOT NULL,
            PRIMARY KEY (nominal_id, meeting_id, agency)
        );

        CREATE TABLE rm_minutes (
            event_id uuid PRIMARY KEY,
            nominal_id uuid NOT NULL,
            meeting_id text NOT NULL,
            meeting_date date NOT NULL,
            level smallint NOT NULL,
            posted_by text NOT NULL,
            recorded_at timestamptz NOT NULL,
            due_on date NOT NULL,
            working_days_taken integer NOT NULL,
            late boolean NOT NULL
        );
        CREATE INDEX rm_minutes_meeting_date ON rm_minutes (meeting_date);

        CREATE TABLE rm_referrals (
            nominal_id uuid NOT NULL,
            referral_id text NOT NULL,
            requested_level smallint NOT NULL,
            referred_by text NOT NULL,
            referred_at timestamptz NOT NULL,
            referred_on date NOT NULL,
            expected_release_on date,
            custody_late boolean,
            decision text,
            decided_on date,
            PRIMARY KEY (nominal_id, referral_id)
        );
        CREATE INDEX rm_referrals_referred_on ON rm_referrals (referred_on);

        CREATE TABLE rm_actions (
            nominal_id uuid NOT NULL,
            action_id text NOT NULL,
            meeting_id text,
            assigned_agency text NOT NULL,
            due_on date NOT NULL,
            set_at timestamptz NOT NULL,
            completed_on date,
            PRIMARY KEY (nominal_id, action_id)
        );
        CREATE INDEX rm_actions_open ON rm_actions (due_on) WHERE completed_on IS NULL;

        CREATE TABLE rm_disclosure_decisions (
            event_id uuid PRIMARY KEY,
            nominal_id uuid NOT NULL,
            meeting_id text,
            decision text NOT NULL,
            decided_on date NOT NULL
        );
        CREATE INDEX rm_disclosure_meeting ON rm_disclosure_decisions (nominal_id, meeting_id);

        CREATE TABLE rm_review_schedule (
            nominal_id uuid PRIMARY KEY,
            level smallint NOT NULL,
            last_meeting_on date,
            level1_since date NOT NULL,
            review_due date
        );
        CREATE INDEX rm_review_schedule_due ON rm_review_schedule (review_due);

        CREATE TABLE rm_registrations (
            nominal_id uuid PRIMARY KEY,
            registered_by text NOT NULL,
            registered_at timestamptz NOT NULL,
            registered_on date NOT NULL,
            sentence_date date,
            days_after_sentence integer,
            late boolean
        );
        CREATE INDEX rm_registrations_on ON rm_registrations (registered_on);
        """
    )


def downgrade() -> None:
    op.execute(
        """
        DROP TABLE rm_registrations, rm_review_schedule, rm_disclosure_decisions, rm_actions,
            rm_referrals, rm_minutes, rm_attendance, rm_meetings, rm_partnering_gaps, rm_officers,
            rm_partnerships,
            rm_nominals, projection_positions;
        """
    )
