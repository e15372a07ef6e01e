-- A hostile search_path: a user owns a schema that comes first and defines
-- look-alike functions and operators, each raising an error if called.
-- CREATE EXTENSION, the realtime trigger, create_results(), consume_window(),
-- the monitoring view, purging, watch(), rule compilation, the calendar
-- tables' checks, business_time() / business_deadline(), response_times(),
-- SLA policies and check_slas() must work as without them and never call
-- them.  (Checks run after RESET search_path.)
SET client_min_messages = warning;
CREATE SCHEMA evil;
CREATE FUNCTION evil.trap() RETURNS boolean LANGUAGE plpgsql
    AS $$ BEGIN RAISE EXCEPTION 'a look-alike in schema evil was called'; END $$;
CREATE FUNCTION evil.now() RETURNS timestamptz LANGUAGE sql
    AS $$ SELECT CASE WHEN evil.trap() THEN pg_catalog.now() END $$;
CREATE FUNCTION evil.clock_timestamp() RETURNS timestamptz LANGUAGE sql
    AS $$ SELECT CASE WHEN evil.trap() THEN pg_catalog.now() END $$;
CREATE FUNCTION evil.eq(bigint, bigint) RETURNS boolean LANGUAGE sql AS $$ SELECT evil.trap() $$;
CREATE FUNCTION evil.eq(oid, oid) RETURNS boolean LANGUAGE sql AS $$ SELECT evil.trap() $$;
CREATE FUNCTION evil.eq(text, text) RETURNS boolean LANGUAGE sql AS $$ SELECT evil.trap() $$;
CREATE FUNCTION evil.eq(timestamptz, timestamptz) RETURNS boolean LANGUAGE sql AS $$ SELECT evil.trap() $$;
CREATE FUNCTION evil.lt(timestamptz, timestamptz) RETURNS boolean LANGUAGE sql AS $$ SELECT evil.trap() $$;
CREATE FUNCTION evil.gt(integer, integer) RETURNS boolean LANGUAGE sql AS $$ SELECT evil.trap() $$;
CREATE FUNCTION evil.ge(integer, integer) RETURNS boolean LANGUAGE sql AS $$ SELECT evil.trap() $$;
CREATE FUNCTION evil.le(integer, integer) RETURNS boolean LANGUAGE sql AS $$ SELECT evil.trap() $$;
CREATE FUNCTION evil.lt(time, time) RETURNS boolean LANGUAGE sql AS $$ SELECT evil.trap() $$;
CREATE FUNCTION evil.minus(timestamptz, timestamptz) RETURNS interval LANGUAGE sql
    AS $$ SELECT CASE WHEN evil.trap() THEN interval '0' END $$;
CREATE FUNCTION evil.concat(text, text) RETURNS text LANGUAGE sql
    AS $$ SELECT CASE WHEN evil.trap() THEN '' END $$;
CREATE OPERATOR evil.= (LEFTARG = bigint, RIGHTARG = bigint, FUNCTION = evil.eq);
CREATE OPERATOR evil.= (LEFTARG = oid, RIGHTARG = oid, FUNCTION = evil.eq);
CREATE OPERATOR evil.= (LEFTARG = text, RIGHTARG = text, FUNCTION = evil.eq);
CREATE OPERATOR evil.= (LEFTARG = timestamptz, RIGHTARG = timestamptz, FUNCTION = evil.eq);
CREATE OPERATOR evil.< (LEFTARG = timestamptz, RIGHTARG = timestamptz, FUNCTION = evil.lt);
CREATE OPERATOR evil.> (LEFTARG = integer, RIGHTARG = integer, FUNCTION = evil.gt);
CREATE OPERATOR evil.>= (LEFTARG = integer, RIGHTARG = integer, FUNCTION = evil.ge);
CREATE OPERATOR evil.<= (LEFTARG = integer, RIGHTARG = integer, FUNCTION = evil.le);
CREATE OPERATOR evil.< (LEFTARG = time, RIGHTARG = time, FUNCTION = evil.lt);
CREATE OPERATOR evil.- (LEFTARG = timestamptz, RIGHTARG = timestamptz, FUNCTION = evil.minus);
CREATE OPERATOR evil.|| (LEFTARG = text, RIGHTARG = text, FUNCTION = evil.concat);
RESET client_min_messages;

DROP EXTENSION session_stream CASCADE;
SET search_path = evil, public, pg_catalog;
CREATE EXTENSION session_stream;

-- realtime, customer mode: a late reply recomputes the key
INSERT INTO session_stream.messages (agent_id, customer_id, sent_at, from_agent) VALUES
    (1, 5, '2024-01-01 10:00:00+00', false), (2, 5, '2024-01-01 10:00:09+00', true);
INSERT INTO session_stream.messages (agent_id, customer_id, sent_at, from_agent) VALUES
    (3, 5, '2024-01-01 10:00:04+00', true);

-- deferred mode in pair mode on the same stream, monitored and purged
SELECT status, messages FROM session_stream.consume_window('pair');
INSERT INTO session_stream.messages (agent_id, customer_id, sent_at, from_agent) VALUES
    (1, 5, '2024-01-01 10:00:02+00', true);
SELECT status, messages, late_messages FROM session_stream.consume_window('pair');
SELECT source, mode, messages_consumed, messages_pending FROM session_stream.consumer_stats;
SELECT session_stream.purge_messages('session_stream.messages', '30 days');

-- a results set of one's own, made and used under the same search_path
SELECT session_stream.create_results('public.hostile_pairs', 'pair');
CREATE TABLE public.chat (a int, b int, ts timestamptz, direct boolean);
CREATE INDEX ON public.chat (b, ts);
CREATE TRIGGER chat_sessions AFTER INSERT ON public.chat FOR EACH ROW
    EXECUTE FUNCTION session_stream.track_sessions('pair', 'agent=a',
        'customer=b', 'ts=ts', 'from_agent=direct', 'results=public.hostile_pairs');
INSERT INTO public.chat VALUES (7, 8, '2024-01-01 10:00:00+00', false),
    (7, 8, '2024-01-01 10:00:30+00', true);
INSERT INTO public.chat VALUES (7, 8, '2024-01-01 10:00:10+00', true);

-- feed rules: the condition's > is pg_catalog's, not evil's
CREATE TABLE public.feed (id bigint PRIMARY KEY, c2 integer);
SELECT session_stream.watch('public.feed');
INSERT INTO session_stream.feed_rules (source, name, condition, delivery)
VALUES ('public.feed', 'c2_high', 'c2 > 9999', 'outbox');
INSERT INTO public.feed VALUES (1, 5), (2, 10000)
    ON CONFLICT (id) DO UPDATE SET c2 = excluded.c2;
SELECT rule, channel FROM session_stream.take_alerts(10);

-- calendars: written, checked, cached and used; their constraints compare
-- with pg_catalog's operators, not evil's
INSERT INTO session_stream.calendars VALUES ('office', 'Europe/Berlin');
INSERT INTO session_stream.business_hours VALUES
    ('office', 1, '09:00', '17:00'), ('office', 2, '09:00', '17:00');
INSERT INTO session_stream.holidays VALUES ('office', '2024-01-02');
SELECT session_stream.business_time('office', '2024-01-01 00:00+01', '2024-01-10 00:00+01'),
       session_stream.business_deadline('office', '2024-01-08 16:00+01', '2 hours');
UPDATE session_stream.business_hours SET opens = '11:00' WHERE isodow = 2;
SELECT session_stream.business_deadline('office', '2024-01-08 16:00+01', '2 hours');

-- response_times(): its checks and its query, over both modes' results,
-- around the clock and by calendar
SELECT * FROM session_stream.response_times('session_stream.sessions',
    '2024-01-01', '2024-01-02', by_agent => true);
SELECT * FROM session_stream.response_times('public.hostile_pairs',
    '2024-01-01', '2024-01-02', '1 hour', true, 'office');

-- SLA policies: written and checked, sessions queued by their writer and
-- judged by check_slas(), with pg_catalog's operators, not evil's
INSERT INTO session_stream.sla_policies
       (name, results, target, calendar, delivery, covers_from)
VALUES ('hostile_reply', 'public.hostile_pairs', '1 minute', 'office', 'outbox',
        '2024-01-01');
SELECT session_stream.check_slas();
INSERT INTO public.chat VALUES (7, 9, '2024-01-08 16:00+01', false),
    (7, 10, '2024-01-08 16:00+01', false), (7, 10, '2024-01-09 12:00+01', true);
SELECT session_stream.check_slas();
SELECT payload->>'event' AS event, payload->>'customer_id' AS customer_id
  FROM session_stream.take_alerts(10) ORDER BY 2;
DELETE FROM session_stream.sla_policies;

RESET search_path;
SELECT customer_id, opened_at, responder_id, answered_at FROM session_stream.sessions;
SELECT customer_id, agent_id, opened_at, answered_at FROM session_stream.pair_sessions
 ORDER BY agent_id;
SELECT count(*) AS purged_messages FROM session_stream.purges;
SELECT customer_id, agent_id, opened_at, answered_at FROM hostile_pairs;
DROP TABLE feed, chat;
DROP VIEW hostile_pairs;
DROP TABLE hostile_pairs_closed, hostile_pairs_latest;
DROP SCHEMA evil CASCADE;

-- consume_window() keeps the plans of its own queries in the backend
-- (ss_kept_plan()); the calls above made them.  Dropped and created again
-- in this session, the extension's tables are new ones: the plans are
-- made again, and the next call works.
DROP EXTENSION session_stream CASCADE;
CREATE EXTENSION session_stream;
INSERT INTO session_stream.messages (agent_id, customer_id, sent_at, from_agent) VALUES
    (1, 7, '2024-01-01 11:00:00+00', false), (1, 7, '2024-01-01 11:00:09+00', true);
SELECT status, messages, sessions_opened, sessions_closed
  FROM session_stream.consume_window('pair');
SELECT status, messages FROM session_stream.consume_window('pair');
SELECT customer_id, agent_id, opened_at, answered_at FROM session_stream.pair_sessions;
