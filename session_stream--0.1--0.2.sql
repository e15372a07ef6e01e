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

-- consume_window() counts the edits it applied; consumer_stats sums them
-- (its one redefinition is with the consumers, below).
ALTER TABLE session_stream.consumed_windows
    ADD COLUMN edits bigint NOT NULL DEFAULT 0;

-- ====================================================================
-- Business hours: calendars, and business_time() / business_deadline()
-- over them (src/calendar.c, src/business_time.c).  See README.md,
-- "Business hours".
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
-- Continuous consumer: start_consumer() registers a (source, mode) and
-- makes sure a background worker of the database runs consume_window()'s
-- work for it every "every"; stop_consumer() unregisters it
-- (src/consumer.c).  See README.md, "Deferred mode".
-- ====================================================================

-- The registered consumers, read by the worker every turn.  role: the
-- role that registered it, as which the worker consumes; failures:
-- batches failed in a row (the worker backs off); last_error and
-- last_error_at: the last failure, kept after a recovery.
CREATE TABLE session_stream.consumers (
    source        regclass    NOT NULL,
    mode          text        NOT NULL,
    every         interval    NOT NULL DEFAULT '100 milliseconds',
    role          regrole     NOT NULL,
    registered_at timestamptz NOT NULL DEFAULT pg_catalog.now(),
    failures      integer     NOT NULL DEFAULT 0,
    last_error    text,
    last_error_at timestamptz,
    PRIMARY KEY (source, mode),
    CONSTRAINT consumers_mode_check
        CHECK (mode OPERATOR(pg_catalog.=) ANY (ARRAY['customer', 'pair']::text[]))
);
COMMENT ON TABLE session_stream.consumers IS
    'Continuous consumers: each (source, mode) is consumed by the database''s background worker every "every", as role';
SELECT pg_catalog.pg_extension_config_dump('session_stream.consumers', '');

CREATE FUNCTION session_stream.start_consumer(
    source regclass DEFAULT 'session_stream.messages',
    mode text DEFAULT 'customer',
    every interval DEFAULT '100 milliseconds')
RETURNS void
AS 'MODULE_PATHNAME', 'ss_start_consumer'
LANGUAGE C VOLATILE;
COMMENT ON FUNCTION session_stream.start_consumer(regclass, text, interval) IS
    'Consume source in mode continuously, every "every", in a background worker, as the calling role; starts the worker if none runs';

CREATE FUNCTION session_stream.stop_consumer(
    source regclass DEFAULT 'session_stream.messages',
    mode text DEFAULT 'customer')
RETURNS void
AS 'MODULE_PATHNAME', 'ss_stop_consumer'
LANGUAGE C VOLATILE;
COMMENT ON FUNCTION session_stream.stop_consumer(regclass, text) IS
    'Stop the continuous consumer of source in mode; the worker exits when none is left';

-- consumer_stats, as 0.2 has it: the edits applied (see "Edits" above),
-- the registered consumers that have no window yet, and the worker: its pid, its state for the consumer
-- (consuming: a batch of it runs; sleeping: until it is due; backing off:
-- after failures; stopped: no worker; NULL for a stream consumed only by
-- hand or cron; the worker's pg_stat_activity query names the source's
-- oid while it consumes) and the consumer's last error.  lag is NULL when
-- nothing is pending (pending_messages() gives no oldest_sent_at then).
CREATE OR REPLACE VIEW session_stream.consumer_stats AS
SELECT k.source, k.mode, s.results,
       COALESCE(s.windows, 0::bigint) AS windows,
       s.last_consumed_at,
       s.messages_consumed, s.late_messages, s.keys_recomputed,
       s.late_beyond_retention,
       p.pending AS messages_pending,
       pg_catalog.now() OPERATOR(pg_catalog.-) p.oldest_sent_at AS lag,
       s.edits,
       a.pid AS worker_pid,
       CASE WHEN c.source IS NULL THEN NULL
            WHEN a.pid IS NULL THEN 'stopped'
            WHEN c.failures OPERATOR(pg_catalog.>) 0 THEN 'backing off'
            WHEN a.state OPERATOR(pg_catalog.=) 'active'
             AND a.query OPERATOR(pg_catalog.~~)
                 ('consume_window(''' OPERATOR(pg_catalog.||) k.mode
                  OPERATOR(pg_catalog.||) ''', % /* source '
                  OPERATOR(pg_catalog.||) k.source::oid::text
                  OPERATOR(pg_catalog.||) ' */')
            THEN 'consuming'
            ELSE 'sleeping' END AS worker_state,
       c.last_error, c.last_error_at
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
  FULL JOIN session_stream.consumers c
    ON c.source OPERATOR(pg_catalog.=) s.source
   AND c.mode OPERATOR(pg_catalog.=) s.mode
 CROSS JOIN LATERAL (SELECT COALESCE(s.source, c.source) AS source,
                            COALESCE(s.mode, c.mode) AS mode) k
 CROSS JOIN LATERAL session_stream.pending_messages(k.mode, k.source) p
  LEFT JOIN LATERAL (SELECT b.pid, b.state, b.query
                       FROM pg_catalog.pg_stat_activity b
                      WHERE c.source IS NOT NULL
                        AND b.backend_type OPERATOR(pg_catalog.=) 'session_stream consumer'
                        AND b.datname OPERATOR(pg_catalog.=) pg_catalog.current_database()
                      LIMIT 1) a ON true;

-- ====================================================================
-- Reports: response_times(), first-response times per bucket of time
-- (and per agent) over a results set.  See README.md, "Reports".
-- ====================================================================

-- _response_stats(response): {p50, p90, p99, mean, max} of a group's
-- responses as an interval[] (src/reports.c): the values
-- percentile_cont(0.5), (0.9), (0.99), avg() and max() give, in one sort.
CREATE FUNCTION session_stream._response_stats_add(internal, interval)
RETURNS internal
AS 'MODULE_PATHNAME', 'ss_response_stats_add'
LANGUAGE C IMMUTABLE PARALLEL SAFE;

CREATE FUNCTION session_stream._response_stats_final(internal)
RETURNS interval[]
AS 'MODULE_PATHNAME', 'ss_response_stats_final'
LANGUAGE C IMMUTABLE PARALLEL SAFE;

CREATE AGGREGATE session_stream._response_stats(interval) (
    SFUNC = session_stream._response_stats_add,
    STYPE = internal,
    FINALFUNC = session_stream._response_stats_final,
    PARALLEL = SAFE
);
COMMENT ON AGGREGATE session_stream._response_stats(interval) IS
    'response_times()''s helper: {p50, p90, p99, mean, max} of the non-NULL values, equal to percentile_cont(0.5), (0.9), (0.99), avg() and max()';

-- The report.  A results set is a view NAME with tables NAME_closed and
-- NAME_latest next to it (create_results_in() above); its mode shows in
-- its columns, responder_id (customer) or agent_id (pair).  Sessions
-- opened in [since, until) fall in buckets date_bin(bucket, opened_at,
-- since), and with by_agent in one row per responder (customer mode; the
-- open sessions, which have none, in the row whose agent_id is NULL) or
-- agent (pair mode).  A response is answered_at - opened_at, or its
-- business time by calendar; the statistics are over the answered
-- sessions.  The query is written for the results set at hand and run
-- once; its operators and functions are pg_catalog's and ours, named so.
CREATE FUNCTION session_stream.response_times(
    results  regclass    DEFAULT 'session_stream.sessions',
    since    timestamptz DEFAULT pg_catalog.now() OPERATOR(pg_catalog.-) interval '7 days',
    until    timestamptz DEFAULT pg_catalog.now(),
    bucket   interval    DEFAULT '1 day',
    by_agent boolean     DEFAULT false,
    calendar text        DEFAULT NULL)
RETURNS TABLE (bucket_start timestamptz, agent_id bigint, sessions bigint,
               answered bigint, still_open bigint, p50 interval,
               p90 interval, p99 interval, mean interval, max interval)
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    detail CONSTANT text := 'A results set NAME is the tables NAME_closed and NAME_latest and the view NAME over them.';
    hint CONSTANT text := 'Name the view of a results set made by session_stream.create_results(), such as session_stream.sessions or session_stream.pair_sessions.';
    view_schema name;
    view_name name;
    view_kind "char";
    view_text text;
    argument text;
    table_suffix text;
    column_name text;
    column_type regtype;
    agent_column text;           -- responder_id or agent_id
    time_column text;
    opened_expr text;            -- the view's time columns as timestamptz
    answered_expr text;
    response_expr text;
BEGIN
    -- the arguments
    argument := CASE WHEN results IS NULL THEN 'results'
                     WHEN since IS NULL THEN 'since'
                     WHEN until IS NULL THEN 'until'
                     WHEN bucket IS NULL THEN 'bucket'
                     WHEN by_agent IS NULL THEN 'by_agent' END;
    IF argument IS NOT NULL THEN
        RAISE EXCEPTION 'argument "%" of response_times() must not be null', argument
            USING ERRCODE = 'null_value_not_allowed',
                  HINT = 'Only calendar may be NULL (around the clock); leave out an argument to take its default.';
    END IF;
    IF NOT pg_catalog.isfinite(since) THEN
        RAISE EXCEPTION 'since must be finite, not %', since
            USING ERRCODE = 'datetime_field_overflow',
                  DETAIL = 'Buckets are counted from since.',
                  HINT = 'Give the start of the first bucket, such as the day of the oldest session.';
    END IF;
    IF until OPERATOR(pg_catalog.<) since THEN
        RAISE EXCEPTION 'until (%) is before since (%)', until, since
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'The report covers the sessions opened in [since, until).';
    END IF;
    IF pg_catalog.date_part('month', bucket) OPERATOR(pg_catalog.<>) 0
       OR pg_catalog.date_part('year', bucket) OPERATOR(pg_catalog.<>) 0 THEN
        RAISE EXCEPTION 'invalid bucket "%"', bucket
            USING ERRCODE = 'invalid_parameter_value',
                  DETAIL = 'Buckets are fixed lengths of time, as date_bin() counts them; months and years are not.',
                  HINT = 'Give days instead, such as ''30 days''.';
    END IF;
    IF bucket OPERATOR(pg_catalog.<=) CAST('0' AS pg_catalog.interval) THEN
        RAISE EXCEPTION 'invalid bucket "%"', bucket
            USING ERRCODE = 'invalid_parameter_value',
                  DETAIL = 'A bucket is a positive length of time.',
                  HINT = 'Give a bucket such as ''1 hour'', ''1 day'' or ''7 days''.';
    END IF;
    IF calendar IS NOT NULL AND NOT EXISTS (
           SELECT FROM session_stream.calendars c
            WHERE c.calendar OPERATOR(pg_catalog.=) response_times.calendar) THEN
        RAISE EXCEPTION 'calendar "%" does not exist', calendar
            USING ERRCODE = 'undefined_object',
                  HINT = 'Calendars are the rows of session_stream.calendars; a NULL calendar counts around the clock.';
    END IF;

    -- the results set: a view, its two tables, its columns
    SELECT n.nspname, c.relname, c.relkind
      INTO view_schema, view_name, view_kind
      FROM pg_catalog.pg_class c
      JOIN pg_catalog.pg_namespace n ON n.oid OPERATOR(pg_catalog.=) c.relnamespace
     WHERE c.oid OPERATOR(pg_catalog.=) results;
    IF view_kind IS NULL THEN
        RAISE EXCEPTION 'relation with OID % does not exist', results::oid
            USING ERRCODE = 'undefined_table', HINT = hint;
    END IF;
    view_text := pg_catalog.format('%I.%I', view_schema, view_name);
    IF view_kind OPERATOR(pg_catalog.<>) 'v' THEN
        RAISE EXCEPTION '"%" is not a results set', view_text
            USING ERRCODE = 'wrong_object_type', DETAIL = detail, HINT = hint;
    END IF;
    FOREACH table_suffix IN ARRAY ARRAY['_closed', '_latest'] LOOP
        IF NOT EXISTS (
               SELECT FROM pg_catalog.pg_class c
                WHERE c.relnamespace OPERATOR(pg_catalog.=) (
                          SELECT n.oid FROM pg_catalog.pg_namespace n
                           WHERE n.nspname OPERATOR(pg_catalog.=) view_schema)
                  AND c.relname OPERATOR(pg_catalog.=) (view_name OPERATOR(pg_catalog.||) table_suffix)
                  AND c.relkind OPERATOR(pg_catalog.=) 'r') THEN
            RAISE EXCEPTION 'results set "%" has no table "%"', view_text,
                    view_name OPERATOR(pg_catalog.||) table_suffix
                USING ERRCODE = 'undefined_table', DETAIL = detail, HINT = hint;
        END IF;
    END LOOP;

    -- customer mode has responder_id, pair mode agent_id
    SELECT pg_catalog.string_agg(CAST(a.attname AS pg_catalog.text), ' and ')
      INTO agent_column
      FROM pg_catalog.pg_attribute a
     WHERE a.attrelid OPERATOR(pg_catalog.=) results
       AND a.attname OPERATOR(pg_catalog.=) ANY (ARRAY['responder_id', 'agent_id']::pg_catalog.name[])
       AND NOT a.attisdropped;
    IF agent_column IS NULL OR pg_catalog.strpos(agent_column, ' and ') OPERATOR(pg_catalog.>) 0 THEN
        RAISE EXCEPTION '"%" is not a results set', view_text
            USING ERRCODE = 'wrong_object_type',
                  DETAIL = pg_catalog.format('A results set of customer mode has a column responder_id, one of pair mode agent_id; this view has %s.',
                                             CASE WHEN agent_column IS NULL THEN 'neither' ELSE 'both' END),
                  HINT = hint;
    END IF;
    FOREACH column_name IN ARRAY ARRAY['customer_id', agent_column, 'opened_at', 'answered_at'] LOOP
        SELECT a.atttypid INTO column_type
          FROM pg_catalog.pg_attribute a
         WHERE a.attrelid OPERATOR(pg_catalog.=) results
           AND a.attname OPERATOR(pg_catalog.=) column_name
           AND a.attnum OPERATOR(pg_catalog.>) 0 AND NOT a.attisdropped;
        IF column_type IS NULL THEN
            RAISE EXCEPTION 'results set "%" has no column "%"', view_text, column_name
                USING ERRCODE = 'undefined_column', DETAIL = detail, HINT = hint;
        END IF;
        IF column_name OPERATOR(pg_catalog.=) ANY (ARRAY['opened_at', 'answered_at']) THEN
            IF column_type OPERATOR(pg_catalog.<>) ALL (ARRAY['pg_catalog.timestamptz', 'pg_catalog.timestamp']::pg_catalog.regtype[]) THEN
                RAISE EXCEPTION 'column "%" of results set "%" has type %', column_name, view_text, column_type
                    USING ERRCODE = 'datatype_mismatch',
                          DETAIL = 'Session times must be timestamp or timestamptz.', HINT = hint;
            END IF;
            -- times without time zone are read in the session's TimeZone
            time_column := pg_catalog.format(
                CASE WHEN column_type OPERATOR(pg_catalog.=) 'pg_catalog.timestamptz'::pg_catalog.regtype
                     THEN 's.%I' ELSE 'CAST(s.%I AS pg_catalog.timestamptz)' END,
                column_name);
            IF column_name OPERATOR(pg_catalog.=) 'opened_at' THEN
                opened_expr := time_column;
            ELSE
                answered_expr := time_column;
            END IF;
        ELSIF column_type OPERATOR(pg_catalog.<>) ALL (ARRAY['pg_catalog.int8', 'pg_catalog.int4']::pg_catalog.regtype[]) THEN
            RAISE EXCEPTION 'column "%" of results set "%" has type %', column_name, view_text, column_type
                USING ERRCODE = 'datatype_mismatch',
                      DETAIL = 'Ids in a results set must be bigint or integer.', HINT = hint;
        END IF;
    END LOOP;

    response_expr := CASE WHEN calendar IS NULL
        THEN pg_catalog.format('%s OPERATOR(pg_catalog.-) %s', answered_expr, opened_expr)
        ELSE pg_catalog.format('session_stream.business_time($4, %s, %s)', opened_expr, answered_expr) END;
    -- The statistics print as the responses do: as answered_at -
    -- opened_at prints (justify_hours(): whole days, then under 24 hours),
    -- or in hours as business_time() prints.  Either way, equal to what
    -- percentile_cont() etc. give.
    RETURN QUERY EXECUTE pg_catalog.format(
        'SELECT g.bucket_start, g.agent_id, g.sessions, g.answered,
                g.sessions OPERATOR(pg_catalog.-) g.answered,
                %6$s(g.stats[1]), %6$s(g.stats[2]), %6$s(g.stats[3]),
                %6$s(g.stats[4]), %6$s(g.stats[5])
           FROM (SELECT pg_catalog.date_bin($1, %1$s, $2) AS bucket_start,
                        %2$s AS agent_id,
                        pg_catalog.count(*) AS sessions,
                        pg_catalog.count(%3$s) AS answered,
                        session_stream._response_stats(%4$s) AS stats
                   FROM %5$s s
                  WHERE %1$s OPERATOR(pg_catalog.>=) $2
                    AND %1$s OPERATOR(pg_catalog.<) $3
                  GROUP BY 1, 2) g
          ORDER BY 1, 2',
        opened_expr,
        CASE WHEN by_agent THEN pg_catalog.format('CAST(s.%I AS pg_catalog.int8)', agent_column)
             ELSE 'CAST(NULL AS pg_catalog.int8)' END,
        answered_expr, response_expr, view_text,
        CASE WHEN calendar IS NULL THEN 'pg_catalog.justify_hours' ELSE '' END)
        USING bucket, since, until, calendar;
END
$$;
COMMENT ON FUNCTION session_stream.response_times(regclass, timestamptz, timestamptz, interval, boolean, text) IS
    'First-response times of the sessions opened in [since, until) per bucket (and agent): counts, p50, p90, p99 (as percentile_cont), mean and max, in business time by calendar';

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

-- ---------------------------------------------------------------------
-- More than one server: shard_for() and attach_shards() (src/shards.c)
-- ---------------------------------------------------------------------

-- The 0-based shard a coordinator made by attach_shards() with `shards`
-- servers routes a customer to: PostgreSQL's hash partitioning of a
-- bigint key, so that writers going straight to the shards agree with it.
CREATE FUNCTION session_stream.shard_for(customer_id bigint, shards integer)
RETURNS integer
AS 'MODULE_PATHNAME', 'ss_shard_for'
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION session_stream.shard_for(bigint, integer) IS
    'The 0-based position, in the array given to attach_shards(), of the server that holds a customer';

-- Make this database the coordinator of the shards reached through the
-- postgres_fdw servers `servers` (the user's own CREATE SERVER and CREATE
-- USER MAPPING; each shard database has session_stream installed).  It
-- creates schema session_stream_cluster with
--
--   messages       partitioned BY HASH (customer_id): the partition of
--                  servers[k] is foreign table messages_<k-1>, remainder
--                  k - 1, modulus the array's length, writing into the
--                  shard's session_stream.messages (whose own txid default
--                  and triggers apply the rows there);
--   sessions,      partitioned the same way over the shards' results
--   pair_sessions  views, with their columns; read-only.
--
-- So a query for one customer is pruned to one shard, and with
-- enable_partitionwise_aggregate an aggregate grouped by customer_id runs
-- on each shard.  Called again with the same list it does nothing (after
-- a restore, say); another list is refused: resharding moves rows, which
-- is the user's to do by hand (README, "More than one server").
--
-- It runs with the caller's rights (USAGE on the servers, CREATE on the
-- database), and what it creates is the caller's, not the extension's:
-- it is made after CREATE EXTENSION, names the user's servers, and
-- pg_dump dumps it with them.  Dropping the extension leaves it;
-- DROP SCHEMA session_stream_cluster CASCADE removes it (the shards keep
-- their rows).
CREATE FUNCTION session_stream.attach_shards(servers name[])
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    n integer := cardinality(servers);
    attached name[];
    server name;
    wrapper name;
    probe text;
    found_version text;
    t text;
    columns text;
BEGIN
    IF n IS NULL OR n = 0 OR array_ndims(servers) <> 1
       OR array_position(servers, NULL) IS NOT NULL THEN
        RAISE EXCEPTION 'invalid list of servers %', coalesce(servers::text, 'NULL')
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Give a one-dimensional array of postgres_fdw server names, one per shard, e.g. ARRAY[''shard0'', ''shard1''].';
    END IF;
    SELECT s INTO server FROM unnest(servers) s GROUP BY s HAVING count(*) > 1 LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'server "%" is listed more than once', server
            USING ERRCODE = 'invalid_parameter_value',
                  DETAIL = 'Each shard is one server, and each server one shard.';
    END IF;

    -- Attached already: the same list is a no-op, another one an error.
    IF to_regclass('session_stream_cluster.messages') IS NOT NULL THEN
        SELECT array_agg(fs.srvname ORDER BY
                   (regexp_match(pg_get_expr(c.relpartbound, c.oid),
                                 'remainder (\d+)'))[1]::integer)
          INTO attached
          FROM pg_inherits i
          JOIN pg_class c ON c.oid = i.inhrelid
          JOIN pg_foreign_table ft ON ft.ftrelid = c.oid
          JOIN pg_foreign_server fs ON fs.oid = ft.ftserver
         WHERE i.inhparent = 'session_stream_cluster.messages'::regclass;
        IF attached = servers THEN
            RAISE NOTICE 'session_stream_cluster is already attached to servers %', servers;
            RETURN;
        END IF;
        RAISE EXCEPTION 'session_stream_cluster is already attached to servers %',
                coalesce(attached::text, '{}')
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  DETAIL = format('This call lists %s.  Changing the servers or their order moves customers from shard to shard.', servers),
                  HINT = 'Resharding is done by hand: see "Resharding by hand" in the README (copy the customers whose shard changes, then DROP SCHEMA session_stream_cluster CASCADE and attach again).';
    END IF;
    IF to_regnamespace('session_stream_cluster') IS NOT NULL THEN
        RAISE EXCEPTION 'schema "session_stream_cluster" already exists'
            USING ERRCODE = 'duplicate_schema',
                  DETAIL = 'It has no table messages, so attach_shards() did not make it.',
                  HINT = 'Drop or rename that schema first.';
    END IF;

    IF NOT EXISTS (SELECT FROM pg_extension WHERE extname = 'postgres_fdw') THEN
        RAISE EXCEPTION 'extension "postgres_fdw" is not installed'
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  DETAIL = 'The coordinator reaches its shards through postgres_fdw foreign tables.',
                  HINT = 'Run CREATE EXTENSION postgres_fdw, then CREATE SERVER and CREATE USER MAPPING for each shard.';
    END IF;
    FOREACH server IN ARRAY servers LOOP
        SELECT w.fdwname INTO wrapper
          FROM pg_foreign_server fs
          JOIN pg_foreign_data_wrapper w ON w.oid = fs.srvfdw
         WHERE fs.srvname = server;
        IF NOT FOUND THEN
            RAISE EXCEPTION 'server "%" does not exist', server
                USING ERRCODE = 'undefined_object',
                      HINT = format('Create it with CREATE SERVER %I FOREIGN DATA WRAPPER postgres_fdw OPTIONS (host ..., port ..., dbname ...) and give it a user mapping.', server);
        END IF;
        IF wrapper <> 'postgres_fdw' THEN
            RAISE EXCEPTION 'server "%" uses foreign-data wrapper "%"', server, wrapper
                USING ERRCODE = 'wrong_object_type',
                      HINT = 'Shards are postgres_fdw servers.';
        END IF;
        IF NOT has_server_privilege(server, 'USAGE') THEN
            RAISE EXCEPTION 'permission denied for foreign server %', server
                USING ERRCODE = 'insufficient_privilege',
                      HINT = format('GRANT USAGE ON FOREIGN SERVER %I TO the role calling attach_shards().', server);
        END IF;
        IF NOT EXISTS (SELECT FROM pg_user_mappings um
                        WHERE um.srvname = server
                          AND (um.umuser = 0 OR um.usename = current_user)) THEN
            RAISE EXCEPTION 'user mapping for "%" on server "%" does not exist', current_user, server
                USING ERRCODE = 'undefined_object',
                      HINT = format('Run CREATE USER MAPPING FOR %I SERVER %I OPTIONS (user ..., password ...).', current_user, server);
        END IF;
    END LOOP;

    EXECUTE 'CREATE SCHEMA session_stream_cluster';
    COMMENT ON SCHEMA session_stream_cluster IS
        'session_stream across shards, made by session_stream.attach_shards()';

    -- Each shard must be reachable and have the extension: ask its
    -- pg_extension through a foreign table dropped at once.
    FOR k IN 1 .. n LOOP
        server := servers[k];
        probe := format('session_stream_cluster.%I', 'probe_' || (k - 1));
        EXECUTE format('CREATE FOREIGN TABLE %s (extname name, extversion text) SERVER %I
                        OPTIONS (schema_name %L, table_name %L)',
                       probe, server, 'pg_catalog', 'pg_extension');
        BEGIN
            EXECUTE format('SELECT extversion FROM %s WHERE extname OPERATOR(pg_catalog.=) %L',
                           probe, 'session_stream')
               INTO found_version;
        EXCEPTION WHEN OTHERS THEN
            RAISE EXCEPTION 'could not read from server "%"', server
                USING ERRCODE = 'connection_failure',
                      DETAIL = SQLERRM,
                      HINT = 'Check the server''s options (host, port, dbname) and the user mapping.';
        END;
        EXECUTE format('DROP FOREIGN TABLE %s', probe);
        IF found_version IS NULL THEN
            RAISE EXCEPTION 'server "%" has no extension session_stream', server
                USING ERRCODE = 'object_not_in_prerequisite_state',
                      HINT = 'Run CREATE EXTENSION session_stream in the database the server''s dbname option names.';
        END IF;
    END LOOP;

    -- the columns of session_stream.messages (but txid) and of the
    -- results views, as on one server
    FOR t, columns IN VALUES
        ('messages', 'agent_id bigint NOT NULL, customer_id bigint NOT NULL,
                      sent_at timestamptz NOT NULL, from_agent boolean NOT NULL'),
        ('sessions', 'customer_id bigint, opened_at timestamptz,
                      responder_id bigint, answered_at timestamptz'),
        ('pair_sessions', 'customer_id bigint, agent_id bigint,
                           opened_at timestamptz, answered_at timestamptz')
    LOOP
        EXECUTE format('CREATE TABLE session_stream_cluster.%I (%s) PARTITION BY HASH (customer_id)',
                       t, columns);
        FOR k IN 1 .. n LOOP
            -- messages leaves out txid: the shard fills in its own
            -- transaction's, which its realtime trigger expects.
            EXECUTE format(
                'CREATE FOREIGN TABLE session_stream_cluster.%I
                     PARTITION OF session_stream_cluster.%I
                     FOR VALUES WITH (MODULUS %s, REMAINDER %s)
                     SERVER %I OPTIONS (schema_name %L, table_name %L%s)',
                t || '_' || (k - 1), t, n, k - 1, servers[k], 'session_stream', t,
                CASE WHEN t = 'messages' THEN '' ELSE ', updatable ''false''' END);
            EXECUTE format('COMMENT ON FOREIGN TABLE session_stream_cluster.%I IS %L',
                           t || '_' || (k - 1),
                           format('Shard %s of %s: session_stream.%s on server %s',
                                  k - 1, n, t, servers[k]));
        END LOOP;
    END LOOP;
END
$$;
COMMENT ON FUNCTION session_stream.attach_shards(name[]) IS
    'Make this database the coordinator of the postgres_fdw servers given, one shard each: schema session_stream_cluster';
-- ====================================================================
-- Replicas as input: on a logical-replication subscriber, the rows that
-- replication applies to a source become the subscriber's own, so that
-- realtime and deferred mode compute results for them exactly; a set-up
-- that could not be exact is refused (src/replicas.c).  See README.md,
-- "Replicas as input".
-- ====================================================================

CREATE FUNCTION session_stream.adopt_replicated_rows()
RETURNS trigger
AS 'MODULE_PATHNAME', 'ss_adopt_replicated_rows'
LANGUAGE C;
COMMENT ON FUNCTION session_stream.adopt_replicated_rows() IS
    'BEFORE INSERT OR UPDATE OR DELETE row trigger, and BEFORE TRUNCATE statement trigger, enabled REPLICA: replicated rows get this server''s txid, and a track_sessions() or record_edits() trigger that would not fire for them is an error; args: txid=column if not txid';

-- On the default stream, enabled REPLICA: it fires only in replica mode (a
-- subscription's apply and tablesync workers), so a publisher or a
-- stand-alone server never runs it.
CREATE TRIGGER adopt_replicated_rows
    BEFORE INSERT OR UPDATE OR DELETE ON session_stream.messages
    FOR EACH ROW EXECUTE FUNCTION session_stream.adopt_replicated_rows();
CREATE TRIGGER adopt_replicated_rows_truncate
    BEFORE TRUNCATE ON session_stream.messages
    FOR EACH STATEMENT EXECUTE FUNCTION session_stream.adopt_replicated_rows();
ALTER TABLE session_stream.messages
    ENABLE REPLICA TRIGGER adopt_replicated_rows,
    ENABLE REPLICA TRIGGER adopt_replicated_rows_truncate;
