"""Read models that keep how things stood (issue 18, docs/adr/025).

- Histories as a current table and an append-only table of the rows it replaced
  (`projections.base.supersede`): rm_nominals (with custody's start, gender, ethnicity and
  month of birth for the profile) and rm_nominals_past; rm_review_schedule and
  rm_review_schedule_past; rm_partnering_gaps and rm_partnering_gaps_past; rm_plans and
  rm_plans_past (plans out of date).
- Facts carry the version of their event, to be counted in the area their record was in
  then (rm_event_areas, which now keeps the record's category and level too), and the
  instants their changes were recorded (an action's completion, a referral's decision), to
  be counted as they stood at a past day.
- Meetings carry their minutes' due date and the agency that recorded them (minutes never
  uploaded); the agencies a referral requires at the next meeting (rm_required_invitations);
  each Responsible Authority partner's last sign on a record and the day it falls silent
  (rm_recording), and the silences that ended (rm_silences); breaches, recalls and further
  offences (rm_outcomes).

The projections whose tables change, and those that read their tables at their own position
(partnering_gaps reads the current view, partnerships and meetings), start again from the
first event: their tables are emptied, their events set aside forgotten, their positions set
to 0, and the runner (in `serve`, or `mappa-record projections run`) fills them again; their
reports are partial until it has caught up. The new projections start at 0 by themselves.

Revision ID: 0013_reports_as_of
"""

from alembic import op

revision = "0013_reports_as_of"
down_revision = ("0012", "0006_dead_letters")
branch_labels = None
depends_on = None

RESET = (
    "current_view",
    "partnerships",
    "meetings",
    "minutes",
    "referrals",
    "actions",
    "disclosure_decisions",
    "review_schedule",
    "event_areas",
    "partnering_gaps",
)
TABLES = (
    "rm_nominals",
    "rm_partnerships",
    "rm_officers",
    "rm_meetings",
    "rm_attendance",
    "rm_minutes",
    "rm_referrals",
    "rm_actions",
    "rm_disclosure_decisions",
    "rm_meeting_disclosures",
    "rm_review_schedule",
    "rm_event_areas",
    "rm_record_areas",
    "rm_partnering_gaps",
)


def upgrade() -> None:
    names = ", ".join(f"'{n}'" for n in RESET)
    op.execute(f"TRUNCATE {', '.join(TABLES)}")
    op.execute(f"DELETE FROM projection_dead_letters WHERE projection IN ({names})")  # noqa: S608
    op.execute(
        "UPDATE projection_positions SET position = 0, updated_at = now()"  # noqa: S608
        f" WHERE name IN ({names})"
    )
    op.execute(
        """

        ALTER TABLE rm_nominals
            ADD COLUMN custody_since timestamptz,
            ADD COLUMN gender text,
            ADD COLUMN ethnicity text,
            ADD COLUMN born_in date,
            ADD COLUMN since timestamptz NOT NULL,
            ADD COLUMN since_position bigint NOT NULL;
        CREATE TABLE rm_nominals_past (
            nominal_id uuid NOT NULL,
            since_position bigint NOT NULL,
            since timestamptz NOT NULL,
            until timestamptz NOT NULL,
            area text NOT NULL,
            category smallint NOT NULL,
            level smallint NOT NULL,
            lead_agency text,
            status text NOT NULL,
            custody_status text,
            custody_establishment text,
            expected_release_on date,
            custody_since timestamptz,
            gender text,
            ethnicity text,
            born_in date,
            PRIMARY KEY (nominal_id, since_position)
        );
        CREATE INDEX rm_nominals_past_until ON rm_nominals_past (until);

        ALTER TABLE rm_review_schedule
            ADD COLUMN since timestamptz NOT NULL,
            ADD COLUMN since_position bigint NOT NULL;
        CREATE TABLE rm_review_schedule_past (
            nominal_id uuid NOT NULL,
            since_position bigint NOT NULL,
            since timestamptz NOT NULL,
            until timestamptz NOT NULL,
            level smallint NOT NULL,
            last_meeting_on date,
            level1_since date NOT NULL,
            review_due date,
            PRIMARY KEY (nominal_id, since_position)
        );
        CREATE INDEX rm_review_schedule_past_until ON rm_review_schedule_past (until);

        ALTER TABLE rm_partnering_gaps
            ADD COLUMN since timestamptz NOT NULL,
            ADD COLUMN since_position bigint NOT NULL;
        CREATE TABLE rm_partnering_gaps_past (
            nominal_id uuid NOT NULL,
            since_position bigint NOT NULL,
            since timestamptz NOT NULL,
            until timestamptz NOT NULL,
            prison_not_partnered boolean NOT NULL,
            no_lead_agency boolean NOT NULL,
            no_police_offender_manager boolean NOT NULL,
            latest_meeting_level smallint,
            level_mismatch boolean NOT NULL,
            PRIMARY KEY (nominal_id, since_position)
        );
        CREATE INDEX rm_partnering_gaps_past_until ON rm_partnering_gaps_past (until);

        ALTER TABLE rm_meetings
            ADD COLUMN version bigint NOT NULL,
            ADD COLUMN posted_by text NOT NULL,
            ADD COLUMN minutes_due_on date NOT NULL;
        CREATE INDEX rm_meetings_minutes_due ON rm_meetings (minutes_due_on);
        ALTER TABLE rm_attendance
            ADD COLUMN version bigint NOT NULL,
            ADD COLUMN recorded_at timestamptz NOT NULL;
        CREATE TABLE rm_required_invitations (
            nominal_id uuid NOT NULL,
            referral_id text NOT NULL,
            agency text NOT NULL,
            referred_on date NOT NULL,
            meeting_id text,
            version bigint,
            meeting_recorded_at timestamptz,
            held_on date,
            level smallint,
            invited boolean,
            PRIMARY KEY (nominal_id, referral_id, agency)
        );

        ALTER TABLE rm_minutes ADD COLUMN version bigint NOT NULL;
        CREATE INDEX rm_minutes_meeting ON rm_minutes (nominal_id, meeting_id);
        ALTER TABLE rm_referrals
            ADD COLUMN version bigint NOT NULL,
            ADD COLUMN decided_at timestamptz;
        ALTER TABLE rm_actions
            ADD COLUMN version bigint NOT NULL,
            ADD COLUMN completed_at timestamptz;
        CREATE INDEX rm_actions_due_on ON rm_actions (due_on);
        ALTER TABLE rm_disclosure_decisions ADD COLUMN recorded_at timestamptz NOT NULL;

        ALTER TABLE rm_event_areas
            ADD COLUMN category smallint NOT NULL,
            ADD COLUMN level smallint NOT NULL;
        ALTER TABLE rm_record_areas
            ADD COLUMN category smallint NOT NULL,
            ADD COLUMN level smallint NOT NULL;

        CREATE TABLE rm_plans (
            nominal_id uuid PRIMARY KEY,
            since timestamptz NOT NULL,
            since_position bigint NOT NULL,
            plan_on date,
            meeting_on date,
            level_changed_on date,
            restriction_on date
        );
        CREATE TABLE rm_plans_past (
            nominal_id uuid NOT NULL,
            since_position bigint NOT NULL,
            since timestamptz NOT NULL,
            until timestamptz NOT NULL,
            plan_on date,
            meeting_on date,
            level_changed_on date,
            restriction_on date,
            PRIMARY KEY (nominal_id, since_position)
        );
        CREATE INDEX rm_plans_past_until ON rm_plans_past (until);

        CREATE TABLE rm_recording (
            nominal_id uuid NOT NULL,
            agency text NOT NULL,
            partnered boolean NOT NULL,
            last_sign_on date,
            last_posted_on date,
            silent_from date,
            PRIMARY KEY (nominal_id, agency)
        );
        CREATE INDEX rm_recording_silent ON rm_recording (silent_from) WHERE partnered;
        CREATE TABLE rm_silences (
            nominal_id uuid NOT NULL,
            agency text NOT NULL,
            silent_from date NOT NULL,
            until date NOT NULL,
            last_posted_on date,
            PRIMARY KEY (nominal_id, agency, silent_from)
        );
        CREATE INDEX rm_silences_from ON rm_silences (silent_from);

        CREATE TABLE rm_outcomes (
            nominal_id uuid NOT NULL,
            version bigint NOT NULL,
            kind text NOT NULL,
            detail text,
            serious boolean NOT NULL,
            occurred_on date NOT NULL,
            recorded_at timestamptz NOT NULL,
            posted_by text NOT NULL,
            area text NOT NULL,
            category smallint NOT NULL,
            level smallint NOT NULL,
            PRIMARY KEY (nominal_id, version)
        );
        """
    )


def downgrade() -> None:
    op.execute(
        """
        DROP TABLE rm_outcomes, rm_silences, rm_recording, rm_plans_past, rm_plans,
            rm_required_invitations, rm_partnering_gaps_past, rm_review_schedule_past,
            rm_nominals_past;
        DROP INDEX rm_meetings_minutes_due, rm_minutes_meeting, rm_actions_due_on;
        ALTER TABLE rm_record_areas DROP COLUMN category, DROP COLUMN level;
        ALTER TABLE rm_event_areas DROP COLUMN category, DROP COLUMN level;
        ALTER TABLE rm_disclosure_decisions DROP COLUMN recorded_at;
        ALTER TABLE rm_actions DROP COLUMN version, DROP COLUMN completed_at;
        ALTER TABLE rm_referrals DROP COLUMN version, DROP COLUMN decided_at;
        ALTER TABLE rm_minutes DROP COLUMN version;
        ALTER TABLE rm_attendance DROP COLUMN version, DROP COLUMN recorded_at;
        ALTER TABLE rm_meetings DROP COLUMN version, DROP COLUMN posted_by,
            DROP COLUMN minutes_due_on;
        ALTER TABLE rm_partnering_gaps DROP COLUMN since, DROP COLUMN since_position;
        ALTER TABLE rm_review_schedule DROP COLUMN since, DROP COLUMN since_position;
        ALTER TABLE rm_nominals DROP COLUMN custody_since, DROP COLUMN gender,
            DROP COLUMN ethnicity, DROP COLUMN born_in, DROP COLUMN since,
            DROP COLUMN since_position;
        """
    )
