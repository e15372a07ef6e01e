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

