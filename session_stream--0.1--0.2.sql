/* session_stream--0.1--0.2.sql */

-- complain if script is sourced in psql, rather than via ALTER EXTENSION
\echo Use "ALTER EXTENSION session_stream UPDATE TO '0.2'" to load this file. \quit

-- Version 0.2.  session_stream--0.1.sql is the released 0.1 and is never
-- edited: CREATE EXTENSION installs 0.2 by running it and then this step,
-- and ALTER EXTENSION session_stream UPDATE runs this step on a 0.1
-- database, so both roads end with the same objects
-- (t/006_upgrade.pl compares them through the catalogs).
--
-- As in the 0.1 script, every object and operator is schema-qualified so
-- that the step means the same whatever search_path the updating role
-- has, and functions set their own search_path.

-- Edits: UPDATE, DELETE and TRUNCATE of messages keep the results exact.
--
-- track_sessions() also handles AFTER UPDATE and AFTER DELETE (FOR EACH
-- ROW) and AFTER TRUNCATE (FOR EACH STATEMENT).  The default stream's
-- trigger is made anew to cover INSERT OR UPDATE OR DELETE, in the state it
-- was in (enabled, disabled for deferred mode, ...); its WHEN clause, which
-- let restored rows by, cannot stand on a trigger that also fires on
-- DELETE, and is now the trigger's own check of the row's txid.  A TRUNCATE
-- trigger joins it.  A database whose track_sessions_customer was dropped
-- gets neither.
COMMENT ON FUNCTION session_stream.track_sessions() IS
    'AFTER INSERT OR UPDATE OR DELETE row trigger, and AFTER TRUNCATE statement trigger, keeping a results set equal to an event-time replay; args: mode, then agent=, customer=, ts=, from_agent=, txid=, results=';

DO $$
DECLARE
    state "char";
BEGIN
    SELECT tgenabled INTO state FROM pg_catalog.pg_trigger
     WHERE tgrelid OPERATOR(pg_catalog.=) 'session_stream.messages'::pg_catalog.regclass
       AND tgname OPERATOR(pg_catalog.=) 'track_sessions_customer';
    IF state IS NULL THEN
        RETURN;
    END IF;
    DROP TRIGGER track_sessions_customer ON session_stream.messages;
    CREATE TRIGGER track_sessions_customer
        AFTER INSERT OR UPDATE OR DELETE ON session_stream.messages
        FOR EACH ROW EXECUTE FUNCTION session_stream.track_sessions('customer');
    EXECUTE pg_catalog.format('ALTER TABLE session_stream.messages %s TRIGGER track_sessions_customer',
        CASE state WHEN 'D' THEN 'DISABLE' WHEN 'R' THEN 'ENABLE REPLICA'
                   WHEN 'A' THEN 'ENABLE ALWAYS' ELSE 'ENABLE' END);
    CREATE TRIGGER track_sessions_customer_truncate
        AFTER TRUNCATE ON session_stream.messages
        FOR EACH STATEMENT EXECUTE FUNCTION session_stream.track_sessions('customer');
END
$$;

-- Erasure (GDPR art. 17): the customer's messages and sessions, everywhere.
CREATE FUNCTION session_stream.forget_customer(
    customer_id bigint,
    source regclass DEFAULT 'session_stream.messages')
RETURNS bigint
AS 'MODULE_PATHNAME', 'ss_forget_customer'
LANGUAGE C VOLATILE;
COMMENT ON FUNCTION session_stream.forget_customer(bigint, regclass) IS
    'Deletes a customer''s messages from source and the customer''s sessions from every results set source feeds; returns the messages deleted';

-- Edits of deferred sources: record_edits(), a trigger that stays enabled
-- on a deferred source, notes each UPDATE and DELETE here for the next
-- consume_window() of each mode; a TRUNCATE empties the results sets at
-- once.  Only sources that have been consumed get rows (before its first
-- window a consumer reads everything anyway); consume_window() deletes the
-- rows every consumer of the source has passed.
CREATE TABLE session_stream.edits (
    source          regclass NOT NULL,
    txid            bigint   NOT NULL DEFAULT session_stream.current_txid(),
                                        -- the editing transaction
    row_txid        bigint   NOT NULL,  -- the old row's: consumed before?
    customer_id     bigint   NOT NULL,  -- the old row's message ...
    agent_id        bigint   NOT NULL,
    sent_at         timestamptz NOT NULL,
    from_agent      boolean  NOT NULL,
    new_customer_id bigint,             -- ... and an UPDATE's new one
    new_agent_id    bigint,
    new_sent_at     timestamptz,
    new_from_agent  boolean
);
CREATE INDEX edits_source_txid_idx ON session_stream.edits (source, txid);
SELECT pg_catalog.pg_extension_config_dump('session_stream.edits', '');

CREATE FUNCTION session_stream.record_edits()
RETURNS trigger
AS 'MODULE_PATHNAME', 'ss_record_edits'
LANGUAGE C;
COMMENT ON FUNCTION session_stream.record_edits() IS
    'AFTER UPDATE OR DELETE row trigger, and AFTER TRUNCATE statement trigger, of a deferred source: edits for consume_window(); args: txid=column if not txid';

CREATE TRIGGER record_edits
    AFTER UPDATE OR DELETE ON session_stream.messages
    FOR EACH ROW EXECUTE FUNCTION session_stream.record_edits();
CREATE TRIGGER record_edits_truncate
    AFTER TRUNCATE ON session_stream.messages
    FOR EACH STATEMENT EXECUTE FUNCTION session_stream.record_edits();

-- consume_window() counts the edits it applied.
ALTER TABLE session_stream.consumed_windows
    ADD COLUMN edits bigint NOT NULL DEFAULT 0;

CREATE OR REPLACE VIEW session_stream.consumer_stats AS
SELECT s.source, s.mode, s.results, s.windows, s.last_consumed_at,
       s.messages_consumed, s.late_messages, s.keys_recomputed,
       s.late_beyond_retention,
       p.pending AS messages_pending,
       pg_catalog.now() OPERATOR(pg_catalog.-) p.oldest_sent_at AS lag,
       s.edits
  FROM (SELECT w.source, w.mode,
               (pg_catalog.array_agg(w.results ORDER BY w.window_id DESC))[1] AS results,
               pg_catalog.count(*) AS windows,
               pg_catalog.max(w.started_at) AS last_consumed_at,
               pg_catalog.sum(w.messages) AS messages_consumed,
               pg_catalog.sum(w.late_messages) AS late_messages,
               pg_catalog.sum(w.keys_recomputed) AS keys_recomputed,
               pg_catalog.sum(w.late_beyond_retention) AS late_beyond_retention,
               pg_catalog.sum(w.edits) AS edits
          FROM session_stream.consumed_windows w
         GROUP BY w.source, w.mode) s
 CROSS JOIN LATERAL session_stream.pending_messages(s.mode, s.source) p;

-- ====================================================================
-- Business hours: calendars, and business_time() / business_deadline()
-- over them (src/calendar.c).  See README.md, "Business hours".
-- ====================================================================

-- A calendar: a time zone from pg_timezone_names, checked when written.
CREATE TABLE session_stream.calendars (
    calendar  text NOT NULL PRIMARY KEY,   -- 1 to 63 bytes
    time_zone text NOT NULL DEFAULT 'UTC'
);
COMMENT ON TABLE session_stream.calendars IS
    'Business-hours calendars: a time zone, weekly business_hours and holidays';

-- Weekly opening ranges in the calendar's local time; several a day,
-- overlaps count once.  Day D's range is the real interval from
-- (D + opens) AT TIME ZONE time_zone to (D + closes) AT TIME ZONE time_zone.
CREATE TABLE session_stream.business_hours (
    calendar text    NOT NULL REFERENCES session_stream.calendars
                     ON DELETE CASCADE ON UPDATE CASCADE,
    isodow   integer NOT NULL,   -- 1 Monday .. 7 Sunday
    opens    time    NOT NULL,
    closes   time    NOT NULL,   -- may be 24:00
    PRIMARY KEY (calendar, isodow, opens, closes),
    CONSTRAINT business_hours_isodow_check
        CHECK (isodow OPERATOR(pg_catalog.>=) 1 AND isodow OPERATOR(pg_catalog.<=) 7),
    CONSTRAINT business_hours_opens_before_closes
        CHECK (opens OPERATOR(pg_catalog.<) closes)
);
COMMENT ON TABLE session_stream.business_hours IS
    'Weekly business hours of a calendar, in its local time: isodow 1 (Monday) to 7, opens < closes, closes may be 24:00';

-- Local days on which a calendar is closed.
CREATE TABLE session_stream.holidays (
    calendar text NOT NULL REFERENCES session_stream.calendars
                  ON DELETE CASCADE ON UPDATE CASCADE,
    day      date NOT NULL,
    PRIMARY KEY (calendar, day)
);
COMMENT ON TABLE session_stream.holidays IS
    'Local days on which a calendar is closed';

-- pg_dump keeps the calendars.
SELECT pg_catalog.pg_extension_config_dump('session_stream.calendars', '');
SELECT pg_catalog.pg_extension_config_dump('session_stream.business_hours', '');
SELECT pg_catalog.pg_extension_config_dump('session_stream.holidays', '');

-- Every role may read calendars (business_time() reads them for any
-- caller); changing them is left to the owner, who may GRANT it.
GRANT SELECT ON session_stream.calendars, session_stream.business_hours,
                session_stream.holidays TO PUBLIC;

-- Writing a calendar checks it: a known time zone, isodow 1-7, a range
-- that opens before it closes, a finite holiday.
CREATE FUNCTION session_stream.check_calendar()
RETURNS trigger
AS 'MODULE_PATHNAME', 'ss_check_calendar'
LANGUAGE C;
CREATE TRIGGER check_calendar
    BEFORE INSERT OR UPDATE ON session_stream.calendars
    FOR EACH ROW EXECUTE FUNCTION session_stream.check_calendar();
CREATE TRIGGER check_calendar
    BEFORE INSERT OR UPDATE ON session_stream.business_hours
    FOR EACH ROW EXECUTE FUNCTION session_stream.check_calendar();
CREATE TRIGGER check_calendar
    BEFORE INSERT OR UPDATE ON session_stream.holidays
    FOR EACH ROW EXECUTE FUNCTION session_stream.check_calendar();

-- Any change to a calendar drops every backend's cached calendars.
CREATE FUNCTION session_stream.invalidate_calendars()
RETURNS trigger
AS 'MODULE_PATHNAME', 'ss_invalidate_calendars'
LANGUAGE C;
CREATE TRIGGER invalidate_calendars
    AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON session_stream.calendars
    FOR EACH STATEMENT EXECUTE FUNCTION session_stream.invalidate_calendars();
CREATE TRIGGER invalidate_calendars
    AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON session_stream.business_hours
    FOR EACH STATEMENT EXECUTE FUNCTION session_stream.invalidate_calendars();
CREATE TRIGGER invalidate_calendars
    AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON session_stream.holidays
    FOR EACH STATEMENT EXECUTE FUNCTION session_stream.invalidate_calendars();

-- Business time in [since, until), as hours ('30:00:00'); 0 when until <=
-- since.  A NULL calendar counts around the clock.
CREATE FUNCTION session_stream.business_time(calendar text,
                                             since timestamptz,
                                             until timestamptz)
RETURNS interval
AS 'MODULE_PATHNAME', 'ss_business_time'
LANGUAGE C STABLE PARALLEL SAFE;
COMMENT ON FUNCTION session_stream.business_time(text, timestamptz, timestamptz) IS
    'Business time of a calendar in [since, until), as hours; a NULL calendar counts around the clock';

-- The first instant by which target of business time has passed since
-- since (a day of target is 24 hours, a month 30 days); since for a zero
-- target; NULL when the calendar has no hours at all.
CREATE FUNCTION session_stream.business_deadline(calendar text,
                                                 since timestamptz,
                                                 target interval)
RETURNS timestamptz
AS 'MODULE_PATHNAME', 'ss_business_deadline'
LANGUAGE C STABLE PARALLEL SAFE;
COMMENT ON FUNCTION session_stream.business_deadline(text, timestamptz, interval) IS
    'First instant by which target of business time has passed since since; NULL if the calendar has no hours';

-- ====================================================================
-- SLA alerts: policies saying how soon a results set's sessions must be
-- answered, and check_slas(), which raises an alert for every session
-- that misses a policy's deadline.  See README.md, "SLA alerts", and
-- src/slas.c.
-- ====================================================================

-- A policy: a session of results is due target after it opened (of
-- business time when a calendar is named); covers_from says from when:
-- sessions answered before it raise nothing.  Written by the results
-- set's owner (check_sla_policy() enforces that), so open to every role.
CREATE TABLE session_stream.sla_policies (
    policy_id   bigserial   PRIMARY KEY,
    name        text        NOT NULL,
    results     regclass    NOT NULL DEFAULT 'session_stream.sessions',
    target      interval    NOT NULL,
    calendar    text,                   -- NULL: around the clock
    channel     text        NOT NULL DEFAULT 'session_stream_alerts',
    delivery    text        NOT NULL DEFAULT 'notify',   -- notify | outbox | both
    enabled     boolean     NOT NULL DEFAULT true,
    covers_from timestamptz NOT NULL DEFAULT pg_catalog.now(),
    CONSTRAINT sla_policies_name_key UNIQUE (name)
);
COMMENT ON TABLE session_stream.sla_policies IS
    'SLA policies: every session of results not answered within target (business time of calendar) raises one alert';
GRANT SELECT, INSERT, UPDATE, DELETE ON session_stream.sla_policies TO PUBLIC;
GRANT USAGE ON SEQUENCE session_stream.sla_policies_policy_id_seq TO PUBLIC;

SELECT pg_catalog.pg_extension_config_dump('session_stream.sla_policies', '');
SELECT pg_catalog.pg_extension_config_dump('session_stream.sla_policies_policy_id_seq', '');

-- Writing a policy checks it: the results set's owner, a results set, a
-- positive target, a known calendar, a delivery and a channel NOTIFY
-- accepts; a policy moved to other results or enabled again covers
-- sessions from then on.
CREATE FUNCTION session_stream.check_sla_policy()
RETURNS trigger
AS 'MODULE_PATHNAME', 'ss_check_sla_policy'
LANGUAGE C;
CREATE TRIGGER check_sla_policy
    BEFORE INSERT OR UPDATE OR DELETE ON session_stream.sla_policies
    FOR EACH ROW EXECUTE FUNCTION session_stream.check_sla_policy();

-- Any change to the policies drops every backend's cached policies.
CREATE FUNCTION session_stream.invalidate_sla_policies()
RETURNS trigger
AS 'MODULE_PATHNAME', 'ss_invalidate_sla_policies'
LANGUAGE C;
CREATE TRIGGER invalidate_sla_policies
    AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON session_stream.sla_policies
    FOR EACH STATEMENT EXECUTE FUNCTION session_stream.invalidate_sla_policies();

-- Sessions that may miss a policy: the writers of a results set queue
-- each session that opens, and each answered later than a policy's
-- target (src/sla_policies.c); check_slas() queues a policy's sessions
-- when it starts the policy, and takes each row when due.  due is
-- opened_at + target, never after the deadline.  Not dumped: after a
-- restore, check_slas() starts every policy again.
CREATE TABLE session_stream.sla_pending (
    policy_id   bigint      NOT NULL,
    results     regclass    NOT NULL,
    customer_id bigint      NOT NULL,
    agent_id    bigint,                 -- pair mode: the pair's agent
    opened_at   timestamptz NOT NULL,
    due         timestamptz NOT NULL
);
CREATE INDEX sla_pending_due_idx ON session_stream.sla_pending (due);

-- The policies check_slas() has started, as they were then: one whose
-- results, target or covers_from changed since is started again.
CREATE TABLE session_stream.sla_starts (
    policy_id   bigint      PRIMARY KEY,
    results     regclass    NOT NULL,
    target      interval    NOT NULL,
    covers_from timestamptz NOT NULL,
    started_at  timestamptz NOT NULL
);

-- Every session that missed a policy, once: the alert check_slas() sent.
-- A session is (results, customer_id, agent_id, opened_at).
CREATE TABLE session_stream.sla_misses (
    policy_id    bigint      NOT NULL,
    results      regclass    NOT NULL,
    customer_id  bigint      NOT NULL,
    agent_id     bigint,                -- pair mode: the pair's agent
    opened_at    timestamptz NOT NULL,
    event        text        NOT NULL,  -- breached | answered_late
    deadline     timestamptz NOT NULL,
    answered_at  timestamptz,           -- answered_late: when
    responder_id bigint,                -- answered_late in customer mode: who
    raised_at    timestamptz NOT NULL
);
COMMENT ON TABLE session_stream.sla_misses IS
    'Sessions that missed an SLA policy, one row each: breached (seen open after the deadline) or answered_late';
-- exactly once: a session's alert is raised by whoever inserts this row
CREATE UNIQUE INDEX sla_misses_session_idx ON session_stream.sla_misses
    (policy_id, results, customer_id, (COALESCE(agent_id, 0)), opened_at);
SELECT pg_catalog.pg_extension_config_dump('session_stream.sla_misses', '');

-- For every enabled policy, alert on every session that missed its
-- deadline since the previous call; returns the number of alerts.  Run
-- it from cron.  It works with the extension owner's rights (it reads
-- every results set a policy names); EXECUTE is granted to no one else
-- until the owner grants it.
CREATE FUNCTION session_stream.check_slas()
RETURNS bigint
AS 'MODULE_PATHNAME', 'ss_check_slas'
LANGUAGE C VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp;
REVOKE EXECUTE ON FUNCTION session_stream.check_slas() FROM PUBLIC;
COMMENT ON FUNCTION session_stream.check_slas() IS
    'Raise one alert per session and SLA policy for every session that missed the policy''s deadline; returns the number raised';
