-- SLA policies: every policy is checked when it is written, and only the
-- owner of the results set (or a superuser) may write its policies.
\set VERBOSITY default
SET client_min_messages = warning;
SET TimeZone = 'UTC';
SET DateStyle = 'ISO';
SET IntervalStyle = 'postgres';

INSERT INTO session_stream.calendars VALUES ('office', 'Europe/Berlin');
INSERT INTO session_stream.business_hours
SELECT 'office', d, '09:00', '17:00' FROM generate_series(1, 5) d;

-- ------------------------------------------------------------------
-- Writing policies
-- ------------------------------------------------------------------

-- a good policy, with the defaults filled in
INSERT INTO session_stream.sla_policies (name, target)
VALUES ('first_reply', '30 minutes');
SELECT policy_id, name, results, target, calendar, channel, delivery, enabled,
       covers_from > now() - interval '1 hour' AS covers_from_now
  FROM session_stream.sla_policies;

-- the names of the parts a results set needs
SELECT session_stream.create_results('public.pair_results', 'pair');
INSERT INTO session_stream.sla_policies (name, results, target, calendar, delivery)
VALUES ('pair_business', 'public.pair_results', '4 hours', 'office', 'both');

-- not a results set
CREATE TABLE plain (customer_id bigint, opened_at timestamptz);
CREATE VIEW lonely AS SELECT 1 AS x;
CREATE VIEW half AS SELECT 1 AS x;
CREATE TABLE half_latest (customer_id bigint, responder_id bigint,
                          opened_at timestamptz, answered_at timestamptz);
CREATE VIEW oddly AS SELECT 1 AS x;
CREATE TABLE oddly_latest (customer_id bigint, responder_id bigint,
                           opened_at timestamp, answered_at timestamptz);
CREATE TABLE oddly_closed (customer_id bigint, responder_id bigint,
                           opened_at timestamp, answered_at timestamptz);
INSERT INTO session_stream.sla_policies (name, results, target)
VALUES ('bad', 'plain', '1 hour');
INSERT INTO session_stream.sla_policies (name, results, target)
VALUES ('bad', 'lonely', '1 hour');
INSERT INTO session_stream.sla_policies (name, results, target)
VALUES ('bad', 'half', '1 hour');
INSERT INTO session_stream.sla_policies (name, results, target)
VALUES ('bad', 'oddly', '1 hour');

-- targets: positive durations
INSERT INTO session_stream.sla_policies (name, target) VALUES ('bad', '0');
INSERT INTO session_stream.sla_policies (name, target) VALUES ('bad', '-5 minutes');
INSERT INTO session_stream.sla_policies (name, target) VALUES ('bad', '1 day -25 hours');
\set VERBOSITY terse
INSERT INTO session_stream.sla_policies (name, target) VALUES ('bad', NULL);
\set VERBOSITY default
-- '1 day -1 hour' is 23 hours
INSERT INTO session_stream.sla_policies (name, target, enabled)
VALUES ('odd_target', '1 day -1 hour', false);

-- calendar, delivery, channel, name
INSERT INTO session_stream.sla_policies (name, target, calendar)
VALUES ('bad', '1 hour', 'no_such_calendar');
INSERT INTO session_stream.sla_policies (name, target, delivery)
VALUES ('bad', '1 hour', 'mail');
INSERT INTO session_stream.sla_policies (name, target, channel)
VALUES ('bad', '1 hour', repeat('c', 64));
INSERT INTO session_stream.sla_policies (name, target, channel)
VALUES ('bad', '1 hour', '');
INSERT INTO session_stream.sla_policies (name, target)
VALUES (repeat('n', 64), '1 hour');
INSERT INTO session_stream.sla_policies (name, target) VALUES ('', '1 hour');
INSERT INTO session_stream.sla_policies (name, target)
VALUES ('first_reply', '1 hour');
UPDATE session_stream.sla_policies SET delivery = 'sms' WHERE name = 'first_reply';

-- moving a policy to other results, or enabling it again, starts it anew
UPDATE session_stream.sla_policies SET covers_from = '2024-01-01'
 WHERE name = 'odd_target';
UPDATE session_stream.sla_policies SET target = '2 hours' WHERE name = 'odd_target';
SELECT covers_from FROM session_stream.sla_policies WHERE name = 'odd_target';
UPDATE session_stream.sla_policies SET enabled = true WHERE name = 'odd_target';
SELECT covers_from > '2024-01-02' AS restarted
  FROM session_stream.sla_policies WHERE name = 'odd_target';
UPDATE session_stream.sla_policies SET covers_from = '2024-01-01'
 WHERE name = 'odd_target';
UPDATE session_stream.sla_policies SET results = 'public.pair_results'
 WHERE name = 'odd_target';
SELECT covers_from > '2024-01-02' AS restarted
  FROM session_stream.sla_policies WHERE name = 'odd_target';
-- unless the same update says where it starts
UPDATE session_stream.sla_policies
   SET results = 'session_stream.sessions', covers_from = '2024-01-01'
 WHERE name = 'odd_target';
SELECT covers_from FROM session_stream.sla_policies WHERE name = 'odd_target';
DELETE FROM session_stream.sla_policies WHERE name = 'odd_target';

-- only the results set's owner writes its policies
CREATE ROLE regress_sla_outsider;
CREATE ROLE regress_sla_owner;
GRANT CREATE ON SCHEMA public TO regress_sla_owner;
SET ROLE regress_sla_owner;
SELECT session_stream.create_results('public.own_results');
INSERT INTO session_stream.sla_policies (name, results, target)
VALUES ('own', 'public.own_results', '1 hour');
INSERT INTO session_stream.sla_policies (name, target)
VALUES ('not_mine', '1 hour');
UPDATE session_stream.sla_policies SET results = 'session_stream.sessions'
 WHERE name = 'own';
SET ROLE regress_sla_outsider;
UPDATE session_stream.sla_policies SET target = '2 hours' WHERE name = 'own';
DELETE FROM session_stream.sla_policies WHERE name = 'own';
SELECT name FROM session_stream.sla_policies ORDER BY policy_id;
RESET ROLE;
DELETE FROM session_stream.sla_policies WHERE name = 'own';
DROP VIEW own_results;
DROP TABLE own_results_closed, own_results_latest;
REVOKE CREATE ON SCHEMA public FROM regress_sla_owner;
DROP ROLE regress_sla_outsider, regress_sla_owner;

-- pg_dump keeps the policies
SELECT c.relname
  FROM pg_extension e, unnest(e.extconfig) r JOIN pg_class c ON c.oid = r
 WHERE e.extname = 'session_stream' AND c.relname LIKE 'sla%'
 ORDER BY 1;

DELETE FROM session_stream.sla_policies;
DROP TABLE plain, half_latest, oddly_latest, oddly_closed;
DROP VIEW lonely, half, oddly;

-- ------------------------------------------------------------------
-- check_slas(): realtime customer mode
-- ------------------------------------------------------------------

-- A realtime stream of its own.
CREATE TABLE rt_msgs (agent_id bigint NOT NULL, customer_id bigint NOT NULL,
                      sent_at timestamptz NOT NULL, from_agent boolean NOT NULL);
CREATE INDEX ON rt_msgs (customer_id, sent_at);
SELECT session_stream.create_results('public.rt_results');
CREATE TRIGGER rt_sessions AFTER INSERT OR UPDATE OR DELETE ON rt_msgs
    FOR EACH ROW EXECUTE FUNCTION session_stream.track_sessions(
        'customer', 'results=public.rt_results');

-- The alerts kept in the outbox, taken.
CREATE FUNCTION taken() RETURNS TABLE (rule text, channel text, payload jsonb)
LANGUAGE sql AS $$
    SELECT rule, channel, payload FROM session_stream.take_alerts(1000)
     ORDER BY payload->>'policy', payload->>'opened_at', (payload->>'customer_id')::bigint
$$;

-- 30 minutes; backdated so that the sessions of 2024 below are covered.
INSERT INTO session_stream.sla_policies
       (name, results, target, delivery, channel, covers_from)
VALUES ('first_reply', 'public.rt_results', '30 minutes', 'outbox', 'sla',
        '2024-01-01');
SELECT session_stream.check_slas();

-- 1 is never answered, 2 in time, 3 late, 4 exactly at the deadline; 5 in
-- time, until a late question rebuilds its session 20 minutes earlier.
INSERT INTO rt_msgs VALUES
    (0, 1, '2024-05-01 09:00', false),
    (0, 2, '2024-05-01 09:00', false), (7, 2, '2024-05-01 09:10', true),
    (0, 3, '2024-05-01 09:00', false), (8, 3, '2024-05-01 09:45', true),
    (0, 4, '2024-05-01 09:00', false), (7, 4, '2024-05-01 09:30', true),
    (0, 5, '2024-05-01 09:00', false), (7, 5, '2024-05-01 09:20', true);
INSERT INTO rt_msgs VALUES (0, 5, '2024-05-01 08:40', false);
SELECT * FROM rt_results ORDER BY customer_id, opened_at;
-- what the writers queued: opened sessions, and answers over the target
SELECT customer_id, opened_at, due FROM session_stream.sla_pending
 ORDER BY customer_id, opened_at, due;

SELECT session_stream.check_slas();
SELECT * FROM taken();
SELECT p.name, m.results, m.customer_id, m.agent_id, m.opened_at, m.event,
       m.deadline, m.answered_at, m.responder_id
  FROM session_stream.sla_misses m JOIN session_stream.sla_policies p USING (policy_id)
 ORDER BY m.customer_id, m.opened_at;
SELECT count(*) AS left_in_queue FROM session_stream.sla_pending;

-- exactly once: again, nothing
SELECT session_stream.check_slas();
-- 1 answered now, late: already raised as breached
INSERT INTO rt_msgs VALUES (9, 1, '2024-05-01 10:00', true);
SELECT session_stream.check_slas();
-- a late question rebuilds 1's session from 08:50: a new session, late
INSERT INTO rt_msgs VALUES (0, 1, '2024-05-01 08:50', false);
SELECT * FROM rt_results WHERE customer_id = 1;
SELECT session_stream.check_slas();
SELECT * FROM taken();
-- an edit deletes 2's answer: open again, 2 hours past its deadline
DELETE FROM rt_msgs WHERE customer_id = 2 AND from_agent;
SELECT session_stream.check_slas();
SELECT * FROM taken();
-- and its answer again, late now: raised already
INSERT INTO rt_msgs VALUES (7, 2, '2024-05-01 11:00', true);
SELECT session_stream.check_slas();

-- A policy made after the fact is started on what is there: the sessions
-- open now and those answered late since covers_from.  It finds the same
-- misses as first_reply did (1's first session is gone).
INSERT INTO session_stream.sla_policies
       (name, results, target, delivery, channel, covers_from)
VALUES ('late_comer', 'public.rt_results', '30 minutes', 'outbox', 'sla',
        '2024-01-01');
SELECT session_stream.check_slas();
SELECT p.name, m.event, m.customer_id, m.opened_at
  FROM session_stream.sla_misses m JOIN session_stream.sla_policies p USING (policy_id)
 ORDER BY p.policy_id, m.customer_id, m.opened_at;
SELECT p.name, s.results, s.target, s.covers_from
  FROM session_stream.sla_starts s JOIN session_stream.sla_policies p USING (policy_id)
 ORDER BY p.policy_id;
SELECT count(*) AS alerts FROM taken();

-- A policy covers the sessions open when it starts and every later one:
-- with covers_from now, the late answers of 2024 raise nothing, but a
-- session open since then does.
INSERT INTO rt_msgs VALUES (0, 6, '2024-05-01 09:00', false);
INSERT INTO session_stream.sla_policies (name, results, target, delivery, channel)
VALUES ('from_now', 'public.rt_results', '30 minutes', 'outbox', 'sla');
SELECT session_stream.check_slas();
SELECT payload->>'policy' AS policy, payload->>'event' AS event,
       payload->>'customer_id' AS customer_id
  FROM taken();

-- A disabled policy raises nothing and drops what falls due; enabled
-- again it starts anew, and what it raised before is not raised again.
UPDATE session_stream.sla_policies SET enabled = false WHERE name = 'from_now';
INSERT INTO rt_msgs VALUES (0, 7, '2024-05-01 09:00', false);
SELECT session_stream.check_slas();
SELECT payload->>'policy' AS policy, payload->>'event' AS event,
       payload->>'customer_id' AS customer_id
  FROM taken();
UPDATE session_stream.sla_policies SET enabled = true WHERE name = 'from_now';
SELECT session_stream.check_slas();
SELECT payload->>'policy' AS policy, payload->>'event' AS event,
       payload->>'customer_id' AS customer_id
  FROM taken();

-- A session not due yet stays queued.
INSERT INTO rt_msgs VALUES (0, 8, now(), false);
SELECT session_stream.check_slas();
SELECT name, due = opened_at + interval '30 minutes' AS due_at_target
  FROM session_stream.sla_pending JOIN session_stream.sla_policies USING (policy_id)
 WHERE customer_id = 8 ORDER BY name;

-- Changing the target starts the policy again with the new due times;
-- what was raised stays raised.
UPDATE session_stream.sla_policies SET target = '1 second' WHERE name = 'late_comer';
SELECT pg_sleep(1.1);
SELECT session_stream.check_slas();
SELECT payload->>'policy' AS policy, payload->>'event' AS event,
       payload->>'customer_id' AS customer_id
  FROM taken();

-- forget_customer() erases the customer's SLA records with its sessions
SELECT (SELECT count(*) FROM session_stream.sla_misses WHERE customer_id = 3) AS misses_of_3,
       (SELECT count(*) FROM session_stream.sla_pending WHERE customer_id = 8) AS queued_for_8;
SELECT session_stream.forget_customer(3, 'rt_msgs'), session_stream.forget_customer(8, 'rt_msgs');
SELECT (SELECT count(*) FROM session_stream.sla_misses WHERE customer_id = 3) AS misses_of_3,
       (SELECT count(*) FROM session_stream.sla_pending WHERE customer_id = 8) AS queued_for_8;

DELETE FROM session_stream.sla_policies;
TRUNCATE session_stream.sla_misses, session_stream.sla_pending;

-- ------------------------------------------------------------------
-- A policy on a calendar, pair mode, delivery both
-- ------------------------------------------------------------------

CREATE TABLE pair_msgs (agent_id bigint NOT NULL, customer_id bigint NOT NULL,
                        sent_at timestamptz NOT NULL, from_agent boolean NOT NULL);
CREATE INDEX ON pair_msgs (customer_id, sent_at);
CREATE TRIGGER pair_sessions AFTER INSERT OR UPDATE OR DELETE ON pair_msgs
    FOR EACH ROW EXECUTE FUNCTION session_stream.track_sessions(
        'pair', 'results=public.pair_results');

-- office: Berlin, Monday to Friday 09:00-17:00; 4 business hours.
INSERT INTO session_stream.sla_policies
       (name, results, target, calendar, delivery, channel, covers_from)
VALUES ('office_reply', 'public.pair_results', '4 hours', 'office', 'both',
        'pair_sla', '2024-01-01');

-- Friday 2024-05-03 15:00 in Berlin (13:00Z): two business hours that day,
-- the rest on Monday from 09:00, so the deadline is Monday 11:00 (09:00Z).
-- 21 is answered Monday 10:30 (in time, though days later), 22 Monday
-- 11:30 (late), 23's question to agent 2 never.
INSERT INTO pair_msgs VALUES
    (1, 21, '2024-05-03 13:00Z', false), (1, 21, '2024-05-06 08:30Z', true),
    (1, 22, '2024-05-03 13:00Z', false), (1, 22, '2024-05-06 09:30Z', true),
    (2, 23, '2024-05-03 13:00Z', false);
SELECT session_stream.check_slas();
SELECT rule, channel, payload FROM session_stream.alerts ORDER BY alert_id;
SELECT session_stream.check_slas();

-- A calendar the policy names goes away: the policy is skipped with a
-- WARNING, its sessions wait; the calendar back, they are checked.
BEGIN;
DELETE FROM session_stream.business_hours WHERE calendar = 'office';
DELETE FROM session_stream.calendars WHERE calendar = 'office';
INSERT INTO pair_msgs VALUES (3, 24, '2024-05-03 13:00Z', false);
SELECT session_stream.check_slas();
SELECT customer_id, agent_id FROM session_stream.sla_pending;
ROLLBACK;
INSERT INTO pair_msgs VALUES (3, 24, '2024-05-03 13:00Z', false);
SELECT session_stream.check_slas();
SELECT customer_id, agent_id, event, deadline FROM session_stream.sla_misses
 ORDER BY customer_id, agent_id;

-- A deadline still ahead by the calendar, though past by the clock: the
-- row goes back, due at the deadline.  ('closed' has a holiday from
-- yesterday to ten days ahead; it starts with 23 and 24 open, long past
-- their deadlines on the 2024 days it was open.)
DELETE FROM session_stream.sla_policies WHERE name = 'office_reply';
TRUNCATE session_stream.alerts;
INSERT INTO session_stream.calendars VALUES ('closed', 'UTC');
INSERT INTO session_stream.business_hours
SELECT 'closed', d, '00:00', '24:00' FROM generate_series(1, 7) d;
INSERT INTO session_stream.holidays
SELECT 'closed', d::date
  FROM generate_series(current_date - 1, current_date + 10, interval '1 day') d;
INSERT INTO session_stream.sla_policies
       (name, results, target, calendar, delivery, channel)
VALUES ('closed_reply', 'public.pair_results', '1 hour', 'closed', 'outbox', 'pair_sla');
INSERT INTO pair_msgs VALUES (1, 25, now() - interval '2 hours', false);
SELECT session_stream.check_slas();
SELECT payload->>'policy' AS policy, payload->>'event' AS event,
       payload->>'customer_id' AS customer_id, payload->>'deadline' AS deadline
  FROM taken();
-- (queued twice, by its writer and by the start of the policy; one alert
-- when due)
SELECT customer_id, count(*),
       bool_and(due = (current_date + 11)::timestamptz + interval '1 hour') AS due_at_deadline
  FROM session_stream.sla_pending GROUP BY customer_id;

DELETE FROM session_stream.sla_policies;
TRUNCATE session_stream.sla_misses, session_stream.sla_pending,
         session_stream.alerts;

-- ------------------------------------------------------------------
-- A deferred results set
-- ------------------------------------------------------------------

CREATE TABLE def_msgs (agent_id bigint NOT NULL, customer_id bigint NOT NULL,
                       sent_at timestamptz NOT NULL, from_agent boolean NOT NULL,
                       txid bigint NOT NULL DEFAULT session_stream.current_txid());
CREATE INDEX ON def_msgs USING brin (txid);
CREATE INDEX ON def_msgs (sent_at);
SELECT session_stream.create_results('public.def_results');
CREATE TRIGGER def_sessions AFTER INSERT ON def_msgs
    FOR EACH ROW EXECUTE FUNCTION session_stream.track_sessions(
        'customer', 'results=public.def_results');
ALTER TABLE def_msgs DISABLE TRIGGER def_sessions;
INSERT INTO session_stream.sla_policies
       (name, results, target, delivery, channel, covers_from)
VALUES ('deferred_reply', 'public.def_results', '30 minutes', 'outbox', 'sla',
        '2024-01-01');

-- Not consumed yet: no sessions, nothing to raise.
INSERT INTO def_msgs (agent_id, customer_id, sent_at, from_agent) VALUES
    (0, 31, '2024-05-01 09:00', false),
    (0, 32, '2024-05-01 09:00', false), (7, 32, '2024-05-01 09:50', true),
    (0, 33, '2024-05-01 09:00', false), (7, 33, '2024-05-01 09:05', true);
SELECT session_stream.check_slas();
-- A window: sessions long past their deadlines appear at once.
SELECT status, messages FROM session_stream.consume_window('customer', 'def_msgs');
SELECT session_stream.check_slas();
SELECT payload->>'event' AS event, payload->>'customer_id' AS customer_id,
       payload->>'opened_at' AS opened_at
  FROM taken();
-- A late question in the next window rebuilds 33's session: now late.
INSERT INTO def_msgs (agent_id, customer_id, sent_at, from_agent)
VALUES (0, 33, '2024-05-01 08:30', false);
SELECT status, messages, late_messages
  FROM session_stream.consume_window('customer', 'def_msgs');
SELECT session_stream.check_slas();
SELECT payload->>'event' AS event, payload->>'customer_id' AS customer_id,
       payload->>'opened_at' AS opened_at
  FROM taken();
SELECT session_stream.check_slas();

DELETE FROM session_stream.sla_policies;
TRUNCATE session_stream.sla_misses, session_stream.sla_pending,
         session_stream.sla_starts, session_stream.alerts;

-- ------------------------------------------------------------------
-- Random streams in random order, checked after every batch: every
-- session that missed has one row and one alert, open ones breached.
-- ------------------------------------------------------------------

TRUNCATE rt_msgs, rt_results_closed, rt_results_latest;
INSERT INTO session_stream.sla_policies
       (name, results, target, delivery, channel, covers_from)
VALUES ('random_reply', 'public.rt_results', '20 minutes', 'outbox', 'sla',
        '2024-01-01');
CREATE TEMP TABLE raised (n bigint);
SELECT setseed(0.15);
DO $$
BEGIN
    FOR batch IN 1..20 LOOP
        INSERT INTO rt_msgs
        SELECT 1 + floor(random() * 5), 1 + floor(random() * 100),
               '2024-06-01 08:00'::timestamptz + random() * interval '10 hours',
               random() < 0.45
          FROM generate_series(1, 100);
        INSERT INTO raised SELECT session_stream.check_slas();
    END LOOP;
END
$$;
SELECT sum(n) AS raised, count(*) FILTER (WHERE n > 0) AS calls_raising FROM raised;
SELECT count(*) AS alerts FROM taken();
WITH missed AS (
    SELECT s.* FROM rt_results s
     WHERE s.answered_at IS NULL
        OR s.answered_at > s.opened_at + interval '20 minutes')
SELECT (SELECT count(*) FROM missed) AS missed_sessions,
       (SELECT count(*) FROM missed s
         WHERE NOT EXISTS (SELECT FROM session_stream.sla_misses m
                            WHERE m.customer_id = s.customer_id
                              AND m.opened_at = s.opened_at)) AS not_raised,
       (SELECT count(*) FROM missed s JOIN session_stream.sla_misses m
            USING (customer_id, opened_at)
         WHERE s.answered_at IS NULL AND m.event <> 'breached') AS open_not_breached,
       (SELECT count(*) FROM session_stream.sla_misses m
         WHERE NOT EXISTS (SELECT FROM missed s
                            WHERE m.customer_id = s.customer_id
                              AND m.opened_at = s.opened_at)) AS of_rebuilt_sessions;
SELECT session_stream.check_slas();
SELECT count(*) AS left_in_queue FROM session_stream.sla_pending;

DELETE FROM session_stream.sla_policies;
TRUNCATE session_stream.sla_misses, session_stream.sla_pending,
         session_stream.sla_starts;

DROP TABLE rt_msgs, pair_msgs, def_msgs;
DROP VIEW rt_results, pair_results, def_results;
DROP TABLE rt_results_closed, rt_results_latest, pair_results_closed,
           pair_results_latest, def_results_closed, def_results_latest;
DELETE FROM session_stream.holidays;
DELETE FROM session_stream.business_hours;
DELETE FROM session_stream.calendars;
