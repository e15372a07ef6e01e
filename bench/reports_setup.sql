-- The reports workload: 3M sessions of customer mode in a results set
-- made by create_results(), written straight into its tables (no
-- messages): 1M customers with three sessions each, one in each ten days
-- of 2024-06-01 .. 2024-07-01, 100 agents; responses from a second to
-- four hours (log-uniform), one in ten from four hours to three days;
-- the last session of one customer in fifty still open.  _closed is
-- written in answer order, as a live system appends to it.  And a
-- calendar: Europe/Berlin, Monday to Friday 09:00-12:00 and 13:00-17:00,
-- a holiday.
SET client_min_messages = warning;
DROP VIEW IF EXISTS bench_sessions CASCADE;
DROP TABLE IF EXISTS bench_sessions_closed, bench_sessions_latest, bench_draws;
DELETE FROM session_stream.calendars WHERE calendar = 'bench_office';
RESET client_min_messages;
SELECT session_stream.create_results('public.bench_sessions', 'customer');

CREATE TABLE bench_draws AS
SELECT c, k, 1 + (random() * 99)::int AS agent,
       timestamptz '2024-06-01 00:00+00' + (k - 1) * interval '10 days'
           + random() * interval '10 days' + c * interval '0' AS opened_at,
       CASE WHEN k = 3 AND c % 50 = 0 THEN NULL
            WHEN random() < 0.9 THEN exp(random() * ln(14400)) * interval '1 second'
            ELSE interval '4 hours' + random() * interval '68 hours'
       END AS response
  FROM generate_series(1, 1000000) c, generate_series(1, 3) k;
INSERT INTO bench_sessions_closed
SELECT c, opened_at, agent, opened_at + response
  FROM bench_draws WHERE response IS NOT NULL ORDER BY opened_at + response;
INSERT INTO bench_sessions_latest
SELECT c, opened_at, CASE WHEN response IS NOT NULL THEN agent END, opened_at + response
  FROM bench_draws WHERE k = 3 ORDER BY c;
DROP TABLE bench_draws;
VACUUM ANALYZE bench_sessions_closed, bench_sessions_latest;

INSERT INTO session_stream.calendars VALUES ('bench_office', 'Europe/Berlin');
INSERT INTO session_stream.business_hours
SELECT 'bench_office', d, r.opens, r.closes
  FROM generate_series(1, 5) d,
       (VALUES (time '09:00', time '12:00'), ('13:00', '17:00')) r(opens, closes);
INSERT INTO session_stream.holidays VALUES ('bench_office', '2024-06-20');

-- The same three reports written by hand in SQL, kept as views so that
-- the timed runs (reports_hand_*.sql) and the check (reports_check.sql)
-- read one text; a view is expanded into the query that reads it, so it
-- plans and runs as the query written out.  By day:
CREATE VIEW bench_by_hand_day AS
SELECT date_bin('1 day', opened_at, '2024-06-01') AS bucket_start,
       NULL::bigint AS agent_id,
       count(*) AS sessions, count(answered_at) AS answered,
       count(*) - count(answered_at) AS still_open,
       percentile_cont(0.5) WITHIN GROUP (ORDER BY answered_at - opened_at) AS p50,
       percentile_cont(0.9) WITHIN GROUP (ORDER BY answered_at - opened_at) AS p90,
       percentile_cont(0.99) WITHIN GROUP (ORDER BY answered_at - opened_at) AS p99,
       avg(answered_at - opened_at) AS mean, max(answered_at - opened_at) AS max
  FROM bench_sessions
 WHERE opened_at >= '2024-06-01' AND opened_at < '2024-07-01'
 GROUP BY 1, 2
 ORDER BY 1, 2;

-- By day and responder:
CREATE VIEW bench_by_hand_agent AS
SELECT date_bin('1 day', opened_at, '2024-06-01') AS bucket_start,
       responder_id AS agent_id,
       count(*) AS sessions, count(answered_at) AS answered,
       count(*) - count(answered_at) AS still_open,
       percentile_cont(0.5) WITHIN GROUP (ORDER BY answered_at - opened_at) AS p50,
       percentile_cont(0.9) WITHIN GROUP (ORDER BY answered_at - opened_at) AS p90,
       percentile_cont(0.99) WITHIN GROUP (ORDER BY answered_at - opened_at) AS p99,
       avg(answered_at - opened_at) AS mean, max(answered_at - opened_at) AS max
  FROM bench_sessions
 WHERE opened_at >= '2024-06-01' AND opened_at < '2024-07-01'
 GROUP BY 1, 2
 ORDER BY 1, 2;

-- By day in business time, business_time() computed once per session
-- (OFFSET 0 keeps the subquery from being merged into the aggregates,
-- which would call it once for the three percentiles, once for avg() and
-- once for max()):
CREATE VIEW bench_by_hand_calendar AS
SELECT date_bin('1 day', opened_at, '2024-06-01') AS bucket_start,
       NULL::bigint AS agent_id,
       count(*) AS sessions, count(answered_at) AS answered,
       count(*) - count(answered_at) AS still_open,
       percentile_cont(0.5) WITHIN GROUP (ORDER BY response) AS p50,
       percentile_cont(0.9) WITHIN GROUP (ORDER BY response) AS p90,
       percentile_cont(0.99) WITHIN GROUP (ORDER BY response) AS p99,
       avg(response) AS mean, max(response) AS max
  FROM (SELECT opened_at, answered_at,
               session_stream.business_time('bench_office', opened_at, answered_at) AS response
          FROM bench_sessions
         WHERE opened_at >= '2024-06-01' AND opened_at < '2024-07-01'
        OFFSET 0) s
 GROUP BY 1, 2
 ORDER BY 1, 2;
