-- response_times(): first-response reports over results sets, on
-- hand-made sessions in both modes (by agent or not, buckets, a calendar,
-- results sets of timestamp and integer columns), every error, then
-- random sessions against the same report written by hand in SQL.
SET TimeZone = 'UTC';
SET DateStyle = 'ISO';
SET IntervalStyle = 'postgres';

-- ------------------------------------------------------------------
-- Customer mode, by hand
-- ------------------------------------------------------------------

-- Sessions are written into the results tables directly: _closed holds
-- the answered ones, _latest each customer's newest, open or answered.
SELECT session_stream.create_results('public.rt_customer', 'customer');
INSERT INTO rt_customer_closed (customer_id, opened_at, responder_id, answered_at) VALUES
    -- Monday 2024-03-04: 10 s, 20 s, 40 s, 90 s (src/reports.c's example)
    (1, '2024-03-04 09:00:00', 7, '2024-03-04 09:00:10'),
    (2, '2024-03-04 09:30:00', 7, '2024-03-04 09:30:20'),
    (3, '2024-03-04 10:00:00', 8, '2024-03-04 10:00:40'),
    (4, '2024-03-04 11:00:00', 8, '2024-03-04 11:01:30'),
    -- Tuesday: 5.000001 s, and 17 hours overnight
    (1, '2024-03-05 08:00:00', 8, '2024-03-05 08:00:05.000001'),
    (5, '2024-03-05 16:30:00', 7, '2024-03-06 09:30:00'),
    -- outside [since, until) below: a microsecond before, and at until
    (8, '2024-03-03 23:59:59.999999', 7, '2024-03-04 00:00:01'),
    (9, '2024-03-06 00:00:00', 7, '2024-03-06 00:00:01');
INSERT INTO rt_customer_latest (customer_id, opened_at, responder_id, answered_at) VALUES
    (1, '2024-03-05 08:00:00', 8, '2024-03-05 08:00:05.000001'),
    (2, '2024-03-04 09:30:00', 7, '2024-03-04 09:30:20'),
    (3, '2024-03-04 10:00:00', 8, '2024-03-04 10:00:40'),
    (4, '2024-03-04 11:00:00', 8, '2024-03-04 11:01:30'),
    (5, '2024-03-05 16:30:00', 7, '2024-03-06 09:30:00'),
    (6, '2024-03-04 12:00:00', NULL, NULL),                  -- open
    (7, '2024-03-05 23:59:59.999999', NULL, NULL),           -- open
    (8, '2024-03-03 23:59:59.999999', 7, '2024-03-04 00:00:01'),
    (9, '2024-03-06 00:00:00', 7, '2024-03-06 00:00:01');

-- Monday: p50 = 20 s + (40 s - 20 s) * 0.5, p90 = 40 s + 50 s * 0.7,
-- p99 = 40 s + 50 s * 0.97.  Tuesday's median falls between two
-- microseconds (30602.5000005 s): percentile_cont() rounds (61194.999999 s
-- * 0.5) to even, avg() rounds the sum's half to even, a microsecond apart.
SELECT * FROM session_stream.response_times('rt_customer', '2024-03-04', '2024-03-06');

-- By responder: the open sessions have none, and make the NULL row.
SELECT * FROM session_stream.response_times('rt_customer', '2024-03-04', '2024-03-06',
                                            by_agent => true);

-- One bucket of two days; buckets of 6 hours from 03:00 (empty ones make
-- no row); since = until makes no row at all.
SELECT * FROM session_stream.response_times('rt_customer', '2024-03-04', '2024-03-06', '2 days');
SELECT bucket_start, sessions, answered, still_open, p50, max
  FROM session_stream.response_times('rt_customer', '2024-03-04 03:00', '2024-03-06', '6 hours');
SELECT count(*) FROM session_stream.response_times('rt_customer', '2024-03-04', '2024-03-04');

-- In business time: Monday to Friday 09:00-17:00 UTC.  Monday's sessions
-- were all in business hours, so the same numbers, as hours; Tuesday's
-- 08:00 question, answered before opening, took 0 business time, and the
-- 16:30 one 30 minutes on Tuesday and 30 on Wednesday.
INSERT INTO session_stream.calendars VALUES ('rt_office', 'UTC');
INSERT INTO session_stream.business_hours
SELECT 'rt_office', d, '09:00', '17:00' FROM generate_series(1, 5) d;
SELECT * FROM session_stream.response_times('rt_customer', '2024-03-04', '2024-03-06',
                                            calendar => 'rt_office');
SELECT * FROM session_stream.response_times('rt_customer', '2024-03-04', '2024-03-06',
                                            by_agent => true, calendar => 'rt_office');

-- ------------------------------------------------------------------
-- Pair mode, by hand
-- ------------------------------------------------------------------

SELECT session_stream.create_results('public.rt_pair', 'pair');
INSERT INTO rt_pair_closed (customer_id, agent_id, opened_at, answered_at) VALUES
    (1, 7, '2024-03-04 09:00:00', '2024-03-04 09:00:30'),    -- 30 s
    (1, 8, '2024-03-04 09:00:00', '2024-03-04 09:02:00'),    -- the same question, 2 min
    (3, 8, '2024-03-04 12:00:00', '2024-03-06 14:00:00'),    -- 2 days 2 hours
    (4, 7, '2024-03-05 00:00:00', '2024-03-05 00:00:00');    -- at once
INSERT INTO rt_pair_latest (customer_id, agent_id, opened_at, answered_at) VALUES
    (1, 7, '2024-03-04 09:00:00', '2024-03-04 09:00:30'),
    (1, 8, '2024-03-04 09:00:00', '2024-03-04 09:02:00'),
    (2, 7, '2024-03-04 10:00:00', NULL),                     -- open, for agent 7
    (3, 8, '2024-03-04 12:00:00', '2024-03-06 14:00:00'),
    (4, 7, '2024-03-05 00:00:00', '2024-03-05 00:00:00');

-- Buckets of 12 hours from 06:00: Tuesday 00:00 is in Monday's 18:00
-- bucket.  Responses longer than a day print as answered_at - opened_at
-- does ('2 days 02:00:00'), and so do the statistics made of them:
-- percentile_cont(0.99) gives '1 day 25:00:02.4', the same interval.
SELECT * FROM session_stream.response_times('rt_pair', '2024-03-04 06:00', '2024-03-06', '12 hours');
-- By agent: an open session of pair mode is its agent's.
SELECT * FROM session_stream.response_times('rt_pair', '2024-03-04 06:00', '2024-03-06', '12 hours',
                                            by_agent => true);
SELECT * FROM session_stream.response_times('rt_pair', '2024-03-04', '2024-03-06', '1 day',
                                            true, 'rt_office');

-- ------------------------------------------------------------------
-- A results set of timestamp and integer columns (as track_sessions()
-- accepts for a source of such columns): its times are read in the
-- session's TimeZone.
-- ------------------------------------------------------------------

CREATE TABLE rt_local_closed (customer_id integer NOT NULL, opened_at timestamp NOT NULL,
                              responder_id integer NOT NULL, answered_at timestamp NOT NULL,
                              PRIMARY KEY (customer_id, opened_at));
CREATE TABLE rt_local_latest (customer_id integer PRIMARY KEY, opened_at timestamp NOT NULL,
                              responder_id integer, answered_at timestamp);
CREATE VIEW rt_local AS
SELECT customer_id, opened_at, responder_id, answered_at FROM rt_local_closed
UNION ALL
SELECT customer_id, opened_at, responder_id, answered_at FROM rt_local_latest
 WHERE answered_at IS NULL;
INSERT INTO rt_local_closed VALUES (1, '2024-03-04 23:30', 3, '2024-03-04 23:31'),
                                   (2, '2024-03-05 00:30', 3, '2024-03-05 00:35');
INSERT INTO rt_local_latest VALUES (1, '2024-03-04 23:30', 3, '2024-03-04 23:31'),
                                   (2, '2024-03-05 00:30', 3, '2024-03-05 00:35');
SET TimeZone = 'Europe/Berlin';
SELECT * FROM session_stream.response_times('rt_local', '2024-03-04 00:00', '2024-03-06 00:00', by_agent => true);
SET TimeZone = 'UTC';

-- ------------------------------------------------------------------
-- The defaults: session_stream.sessions, the last 7 days by day.  In a
-- transaction, so that now() stands still; times shown from since.
-- ------------------------------------------------------------------

BEGIN;
TRUNCATE session_stream.sessions_closed, session_stream.sessions_latest;
INSERT INTO session_stream.sessions_closed VALUES
    (1, now() - interval '8 days', 4, now() - interval '8 days' + interval '1 minute'),
    (1, now() - interval '3 days', 4, now() - interval '3 days' + interval '2 minutes'),
    (2, now() - interval '3 days', 5, now() - interval '3 days' + interval '4 minutes');
INSERT INTO session_stream.sessions_latest VALUES
    (1, now() - interval '3 days', 4, now() - interval '3 days' + interval '2 minutes'),
    (2, now() - interval '3 days', 5, now() - interval '3 days' + interval '4 minutes'),
    (3, now() - interval '1 second', NULL, NULL);
SELECT bucket_start - (now() - interval '7 days') AS bucket_from_since,
       agent_id, sessions, answered, still_open, p50, p90, p99, mean, max
  FROM session_stream.response_times();
ROLLBACK;

-- ------------------------------------------------------------------
-- Errors
-- ------------------------------------------------------------------

\set VERBOSITY default
\set SHOW_CONTEXT never
SELECT * FROM session_stream.response_times(NULL);
SELECT * FROM session_stream.response_times('rt_customer', NULL);
SELECT * FROM session_stream.response_times('rt_customer', until => NULL);
SELECT * FROM session_stream.response_times('rt_customer', bucket => NULL);
SELECT * FROM session_stream.response_times('rt_customer', by_agent => NULL);
SELECT * FROM session_stream.response_times('rt_customer', '-infinity', '2024-03-06');
SELECT * FROM session_stream.response_times('rt_customer', '2024-03-06', '2024-03-04');
SELECT * FROM session_stream.response_times('rt_customer', bucket => '0');
SELECT * FROM session_stream.response_times('rt_customer', bucket => '-1 hour');
SELECT * FROM session_stream.response_times('rt_customer', bucket => '1 day -25 hours');
SELECT * FROM session_stream.response_times('rt_customer', bucket => '1 month');
SELECT * FROM session_stream.response_times('rt_customer', bucket => '1 year');
SELECT * FROM session_stream.response_times('rt_customer', calendar => 'rt_nowhere');
-- not results sets: a table, a view without tables, a dropped relation,
-- views whose columns are not a results set's
SELECT * FROM session_stream.response_times('rt_customer_closed');
CREATE VIEW rt_lonely AS SELECT * FROM rt_customer;
SELECT * FROM session_stream.response_times('rt_lonely');
CREATE TABLE rt_gone (i int);
SELECT set_config('rt.gone', 'rt_gone'::regclass::oid::text, false) IS NOT NULL AS noted;
DROP TABLE rt_gone;
DO $$
BEGIN
    PERFORM session_stream.response_times(current_setting('rt.gone')::oid::regclass);
EXCEPTION WHEN undefined_table THEN
    RAISE NOTICE 'dropped relation: % (%)', regexp_replace(SQLERRM, '[0-9]+', 'N'), SQLSTATE;
END
$$;
CREATE TABLE rt_odd_closed (customer_id bigint, opened_at text, answered_at timestamptz);
CREATE TABLE rt_odd_latest (LIKE rt_odd_closed);
CREATE VIEW rt_odd AS SELECT * FROM rt_odd_closed;
SELECT * FROM session_stream.response_times('rt_odd');
ALTER TABLE rt_odd_closed ADD COLUMN agent_id bigint, ADD COLUMN responder_id bigint;
CREATE OR REPLACE VIEW rt_odd AS SELECT * FROM rt_odd_closed;
SELECT * FROM session_stream.response_times('rt_odd');
DROP VIEW rt_odd;
CREATE VIEW rt_odd AS SELECT customer_id, answered_at AS opened_at, opened_at AS answered_at, agent_id FROM rt_odd_closed;
SELECT * FROM session_stream.response_times('rt_odd');
DROP VIEW rt_odd;
CREATE VIEW rt_odd AS SELECT customer_id, answered_at AS opened_at, answered_at, agent_id::numeric AS agent_id FROM rt_odd_closed;
SELECT * FROM session_stream.response_times('rt_odd');
DROP VIEW rt_odd;
CREATE VIEW rt_odd AS SELECT answered_at, agent_id FROM rt_odd_closed;
SELECT * FROM session_stream.response_times('rt_odd');
DROP VIEW rt_odd, rt_lonely;
DROP TABLE rt_odd_closed, rt_odd_latest;
-- a caller who may not read the results set
CREATE ROLE regress_rt_stranger;
SET ROLE regress_rt_stranger;
SELECT * FROM session_stream.response_times('rt_customer', '2024-03-04', '2024-03-06');
RESET ROLE;
DROP ROLE regress_rt_stranger;
\set SHOW_CONTEXT errors

-- ------------------------------------------------------------------
-- Random sessions against the report written by hand
-- ------------------------------------------------------------------

-- 3000 sessions in each mode over 11 days from 2024-03-01 (a Friday),
-- a third of them opened on the hour (so on the edges of buckets and
-- ranges below): responses from 0 to about 3 days, to the microsecond,
-- some at once, 10 % open; agents 1-6.  Customer c's sessions are 4 days
-- apart, so that they do not overlap.
SELECT setseed(0.15);
SELECT session_stream.create_results('public.rt_random_c', 'customer');
SELECT session_stream.create_results('public.rt_random_p', 'pair');
CREATE TEMP TABLE rt_draws AS
SELECT c, k, 1 + (random() * 5)::int AS agent,
       CASE WHEN random() < 0.33 THEN date_trunc('hour', t) ELSE t END AS opened_at,
       CASE WHEN random() < 0.1 THEN NULL
            WHEN random() < 0.05 THEN interval '0'
            ELSE (exp(random() * ln(250000000000)) * interval '1 microsecond')
       END AS response
  FROM generate_series(1, 1200) c, generate_series(1, 3) k,
       LATERAL (SELECT timestamptz '2024-03-01' + (k - 1) * interval '4 days'
                       + random() * interval '3 days' + c * interval '0' AS t) t
 WHERE random() < 0.85;
-- only a customer's last session may be open (customer mode)
UPDATE rt_draws d SET response = coalesce(response, interval '17 seconds')
 WHERE k < (SELECT max(k) FROM rt_draws e WHERE e.c = d.c);
INSERT INTO rt_random_c_closed
SELECT c, opened_at, agent, opened_at + response FROM rt_draws WHERE response IS NOT NULL;
INSERT INTO rt_random_c_latest
SELECT DISTINCT ON (c) c, opened_at, CASE WHEN response IS NOT NULL THEN agent END,
       opened_at + response
  FROM rt_draws ORDER BY c, k DESC;
-- pair mode: the same draws, each (customer, agent) pair its own key
INSERT INTO rt_random_p_closed
SELECT c, agent, opened_at, opened_at + response FROM rt_draws WHERE response IS NOT NULL;
INSERT INTO rt_random_p_latest
SELECT DISTINCT ON (c, agent) c, agent, opened_at, opened_at + response
  FROM rt_draws ORDER BY c, agent, k DESC;
SELECT count(*) AS sessions, count(answered_at) AS answered,
       count(*) FILTER (WHERE answered_at - opened_at >= interval '1 day') AS over_a_day,
       count(*) FILTER (WHERE opened_at IN ('2024-03-01', '2024-03-09 02:00', '2024-03-12'))
           AS on_an_edge
  FROM rt_random_c;
SELECT count(*) AS sessions, count(answered_at) AS answered FROM rt_random_p;

-- The report by hand: percentile_cont(), avg() and max() over the
-- answered sessions, counts over all, grouped by date_bin().
CREATE FUNCTION rt_by_hand(results regclass, since timestamptz, until timestamptz,
                           bucket interval, by_agent boolean, calendar text)
RETURNS TABLE (bucket_start timestamptz, agent_id bigint, sessions bigint,
               answered bigint, still_open bigint, p50 interval, p90 interval,
               p99 interval, mean interval, max interval)
LANGUAGE plpgsql AS $$
BEGIN
    RETURN QUERY EXECUTE format($q$
        SELECT date_bin($1, opened_at, $2), CASE WHEN $4 THEN %s END::bigint,
               count(*), count(answered_at), count(*) - count(answered_at),
               percentile_cont(0.5) WITHIN GROUP (ORDER BY %s),
               percentile_cont(0.9) WITHIN GROUP (ORDER BY %2$s),
               percentile_cont(0.99) WITHIN GROUP (ORDER BY %2$s),
               avg(%2$s), max(%2$s)
          FROM %s
         WHERE opened_at >= $2 AND opened_at < $3
         GROUP BY 1, 2$q$,
        CASE WHEN results = 'rt_random_c'::regclass THEN 'responder_id' ELSE 'agent_id' END,
        CASE WHEN calendar IS NULL THEN 'answered_at - opened_at'
             ELSE 'session_stream.business_time($5, opened_at, answered_at)' END,
        results)
        USING bucket, since, until, by_agent, calendar;
END
$$;

-- Each report of both sets, by hand and by response_times(): rows in
-- one and not the other, the intervals compared with = (to the
-- microsecond; the report prints them justified, the hand-written one as
-- interval arithmetic leaves them).
INSERT INTO session_stream.calendars VALUES ('rt_berlin', 'Europe/Berlin');
INSERT INTO session_stream.business_hours
SELECT 'rt_berlin', d, r.opens, r.closes
  FROM generate_series(1, 6) d,
       (VALUES (time '08:00', time '12:30'), ('13:15', '18:00')) r(opens, closes);
INSERT INTO session_stream.holidays VALUES ('rt_berlin', '2024-03-08');
CREATE TEMP TABLE rt_reports (since timestamptz, until timestamptz, bucket interval,
                              by_agent boolean, calendar text);
INSERT INTO rt_reports VALUES
    ('2024-03-01', '2024-03-15', '1 day', false, NULL),
    ('2024-03-01', '2024-03-15', '1 day', true, NULL),
    ('2024-02-20', '2024-04-01', '7 days', false, NULL),
    ('2024-03-03 13:17:12.345678', '2024-03-09 02:00', '5 hours 3 minutes', true, NULL),
    ('2024-03-02 00:00:00.000001', '2024-03-12', '1 day', false, 'rt_berlin'),
    ('2024-03-01', '2024-03-15', '2 days', true, 'rt_office'),
    ('2024-03-01', '2024-03-15', '1 microsecond', false, NULL);
SELECT r.results, count(DISTINCT (q.since, q.bucket, q.by_agent, q.calendar)) AS reports,
       sum(x.rows) AS rows, sum(x.differences) AS differences
  FROM (VALUES ('rt_random_c'::regclass), ('rt_random_p')) r(results), rt_reports q,
       LATERAL (
           SELECT (SELECT count(*) FROM session_stream.response_times(r.results,
                       q.since, q.until, q.bucket, q.by_agent, q.calendar)) AS rows,
                  (SELECT count(*) FROM (
                       (SELECT * FROM session_stream.response_times(r.results,
                            q.since, q.until, q.bucket, q.by_agent, q.calendar)
                        EXCEPT ALL
                        SELECT * FROM rt_by_hand(r.results, q.since, q.until,
                            q.bucket, q.by_agent, q.calendar))
                       UNION ALL
                       (SELECT * FROM rt_by_hand(r.results, q.since, q.until,
                            q.bucket, q.by_agent, q.calendar)
                        EXCEPT ALL
                        SELECT * FROM session_stream.response_times(r.results,
                            q.since, q.until, q.bucket, q.by_agent, q.calendar))) d)
                      AS differences) x
 GROUP BY r.results ORDER BY r.results;

-- Exact to the microsecond: every percentile of the daily reports is
-- within half a microsecond of the interpolation computed in numeric
-- from the sorted responses (exactly half at the ties, which
-- percentile_cont() rounds to even).
WITH responses AS (
    SELECT r.results, date_bin('1 day', s.opened_at, '2024-03-01') AS bucket_start,
           array_agg(extract(epoch FROM s.answered_at - s.opened_at) * 1000000
                     ORDER BY s.answered_at - s.opened_at) AS us
      FROM (VALUES ('rt_random_c'), ('rt_random_p')) r(results),
           LATERAL (SELECT opened_at, answered_at FROM rt_random_c WHERE r.results = 'rt_random_c'
                    UNION ALL
                    SELECT opened_at, answered_at FROM rt_random_p WHERE r.results = 'rt_random_p') s
     WHERE s.answered_at IS NOT NULL
     GROUP BY 1, 2),
exact AS (
    SELECT results, bucket_start, p,
           us[floor(p * (n - 1))::int + 1] + (us[ceil(p * (n - 1))::int + 1] - us[floor(p * (n - 1))::int + 1])
               * (p * (n - 1) - floor(p * (n - 1))) AS us
      FROM (SELECT *, cardinality(us) AS n FROM responses) r,
           (VALUES (0.5), (0.9), (0.99)) ps(p)),
reported AS (
    SELECT r.results, t.bucket_start, p.p,
           extract(epoch FROM CASE p.p WHEN 0.5 THEN t.p50 WHEN 0.9 THEN t.p90 ELSE t.p99 END) * 1000000 AS us
      FROM (VALUES ('rt_random_c'), ('rt_random_p')) r(results),
           session_stream.response_times(r.results::regclass, '2024-03-01', '2024-03-15') t,
           (VALUES (0.5), (0.9), (0.99)) p(p))
SELECT count(*) AS percentiles,
       count(*) FILTER (WHERE abs(reported.us - exact.us) < 0.5) AS within_half,
       count(*) FILTER (WHERE abs(reported.us - exact.us) = 0.5) AS ties,
       count(*) FILTER (WHERE abs(reported.us - exact.us) > 0.5) AS further
  FROM exact JOIN reported USING (results, bucket_start, p);

DROP FUNCTION rt_by_hand;
DROP VIEW rt_customer, rt_pair, rt_local, rt_random_c, rt_random_p;
DROP TABLE rt_customer_closed, rt_customer_latest, rt_pair_closed, rt_pair_latest,
           rt_local_closed, rt_local_latest, rt_random_c_closed, rt_random_c_latest,
           rt_random_p_closed, rt_random_p_latest;
DELETE FROM session_stream.calendars WHERE calendar IN ('rt_office', 'rt_berlin');
