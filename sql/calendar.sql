-- Business-hours calendars: business_time() and business_deadline() on
-- hand-made cases, checks on writes, the cache, then thousands of random
-- spans against an independent reference written plainly in SQL.
SET TimeZone = 'UTC';
SET DateStyle = 'ISO';
SET IntervalStyle = 'postgres';

-- ------------------------------------------------------------------
-- Calendars
-- ------------------------------------------------------------------

-- The worked example of src/business_time.c and README.md.
INSERT INTO session_stream.calendars VALUES ('example', 'Europe/Berlin');
INSERT INTO session_stream.business_hours
SELECT 'example', d, r.opens, r.closes
  FROM generate_series(1, 5) d,
       (VALUES (time '09:00', time '12:00'), ('13:00', '17:00')) r(opens, closes);
INSERT INTO session_stream.holidays VALUES ('example', '2024-04-01');

-- Europe/Berlin: split days, an overlap on Mondays (one range 09:00-17:00),
-- Friday night running through midnight into Saturday, and Sunday ranges
-- that overlap across 02:00-03:00, the hour DST skips or repeats.
INSERT INTO session_stream.calendars VALUES ('berlin', 'Europe/Berlin');
INSERT INTO session_stream.business_hours VALUES
    ('berlin', 1, '09:00', '12:00'), ('berlin', 1, '13:00', '17:00'),
    ('berlin', 1, '11:00', '14:00'),
    ('berlin', 2, '09:00', '12:00'), ('berlin', 2, '13:00', '17:00'),
    ('berlin', 3, '09:00', '12:00'), ('berlin', 3, '13:00', '17:00'),
    ('berlin', 4, '09:00', '12:00'), ('berlin', 4, '13:00', '17:00'),
    ('berlin', 5, '09:00', '12:00'), ('berlin', 5, '13:00', '17:00'),
    ('berlin', 5, '20:00', '24:00'),
    ('berlin', 6, '00:00', '01:00'), ('berlin', 6, '10:00', '14:00'),
    ('berlin', 7, '01:00', '02:30'), ('berlin', 7, '02:15', '04:00');
INSERT INTO session_stream.holidays VALUES
    ('berlin', '2023-04-07'), ('berlin', '2023-12-25'), ('berlin', '2024-03-29'),
    ('berlin', '2024-04-01'), ('berlin', '2024-10-27'), ('berlin', '2024-12-25'),
    ('berlin', '2024-12-26'), ('berlin', '2025-04-18'), ('berlin', '2026-03-29');

-- America/New_York: long weekdays, Saturday 00:00-24:00 running into
-- Sunday's early ranges; on Sundays (DST changes at 02:00) a range that
-- the spring change turns inside out (02:30-03:10), one in the hour the
-- autumn change repeats (01:30-01:45) and one that ends at 24:00.
INSERT INTO session_stream.calendars VALUES ('newyork', 'America/New_York');
INSERT INTO session_stream.business_hours
SELECT 'newyork', d, '08:00', '20:00' FROM generate_series(1, 5) d;
INSERT INTO session_stream.business_hours VALUES
    ('newyork', 6, '00:00', '24:00'),
    ('newyork', 7, '00:00', '02:30'), ('newyork', 7, '02:30', '03:10'),
    ('newyork', 7, '01:30', '01:45'), ('newyork', 7, '22:00', '24:00');
INSERT INTO session_stream.holidays VALUES
    ('newyork', '2023-07-04'), ('newyork', '2023-11-23'), ('newyork', '2024-07-04'),
    ('newyork', '2024-11-03'), ('newyork', '2024-11-28'), ('newyork', '2025-03-09'),
    ('newyork', '2025-11-27'), ('newyork', '2026-11-01');

-- Asia/Tokyo has had no DST since 1951.
INSERT INTO session_stream.calendars VALUES ('tokyo', 'Asia/Tokyo');
INSERT INTO session_stream.business_hours
SELECT 'tokyo', d, '09:00', '18:00' FROM generate_series(1, 5) d;
INSERT INTO session_stream.business_hours VALUES ('tokyo', 6, '09:00', '12:00');
INSERT INTO session_stream.holidays
SELECT 'tokyo', d::date FROM generate_series(timestamp '2024-01-01', '2024-01-03', '1 day') d;
INSERT INTO session_stream.holidays VALUES ('tokyo', '2025-01-01'), ('tokyo', '2026-05-05');

-- Nights across every DST change in Berlin and New York.  On the spring
-- Sunday in New York, 02:30-02:50 (in the skipped hour) is 07:30Z-07:50Z
-- and 03:00-04:00 is 07:00Z-08:00Z: a later range that starts earlier.
INSERT INTO session_stream.calendars VALUES ('berlin_night', 'Europe/Berlin'),
                                            ('newyork_night', 'America/New_York');
INSERT INTO session_stream.business_hours
SELECT 'berlin_night', d, '01:30', '03:30' FROM generate_series(1, 7) d;
INSERT INTO session_stream.business_hours
SELECT 'newyork_night', d, r.opens, r.closes
  FROM generate_series(1, 7) d,
       (VALUES (time '00:00', time '01:00'), ('01:00', '02:10'), ('01:50', '03:00'),
               ('02:20', '02:40'), ('02:30', '02:50'), ('03:00', '04:00'),
               ('23:30', '24:00')) r(opens, closes);

-- America/Santiago changes at midnight: Saturday 24:00 becomes Sunday
-- 01:00 in September, and 23:00 again in April, so one day's ranges can
-- reach into the next day's.
INSERT INTO session_stream.calendars VALUES ('santiago', 'America/Santiago');
INSERT INTO session_stream.business_hours
SELECT 'santiago', d, r.opens, r.closes
  FROM generate_series(1, 7) d,
       (VALUES (time '00:00', time '00:40'), ('00:20', '01:30'), ('09:00', '18:00'),
               ('22:30', '24:00'), ('23:10', '23:50')) r(opens, closes);
INSERT INTO session_stream.holidays VALUES ('santiago', '2024-09-08'), ('santiago', '2025-04-05');

-- Around the clock in UTC, and a calendar without hours (default zone UTC).
INSERT INTO session_stream.calendars VALUES ('always', 'UTC');
INSERT INTO session_stream.business_hours
SELECT 'always', d, '00:00', '24:00' FROM generate_series(1, 7) d;
INSERT INTO session_stream.calendars (calendar) VALUES ('empty');
SELECT calendar, time_zone FROM session_stream.calendars ORDER BY calendar;

-- ------------------------------------------------------------------
-- Hand-made cases
-- ------------------------------------------------------------------

-- The worked example: Friday 16:00-17:00, Monday a holiday, Tuesday
-- 09:00-12:00 (after the change to +02): the deadline is the end of
-- Tuesday's first range, not 13:00.
SELECT session_stream.business_deadline('example', '2024-03-29 16:00+01', '4 hours')
           AT TIME ZONE 'Europe/Berlin' AS deadline_berlin,
       session_stream.business_time('example', '2024-03-29 16:00+01', '2024-04-02 12:00+02');

-- a split day; the lunch gap; an overlap counted once; Friday night into
-- Saturday through 24:00
SELECT session_stream.business_time('berlin', '2024-01-09 08:00+01', '2024-01-09 18:00+01') AS split_day,
       session_stream.business_time('berlin', '2024-01-09 12:00+01', '2024-01-09 13:00+01') AS lunch,
       session_stream.business_time('berlin', '2024-01-08 00:00+01', '2024-01-09 00:00+01') AS monday,
       session_stream.business_time('berlin', '2024-01-12 22:00+01', '2024-01-13 00:30+01') AS friday_night;

-- deadlines: through midnight; exactly at the end of a range; a
-- microsecond more waits for the next range; from inside a gap
SELECT session_stream.business_deadline('berlin', '2024-01-12 23:30+01', '1 hour')
           AT TIME ZONE 'Europe/Berlin' AS through_midnight,
       session_stream.business_deadline('berlin', '2024-01-09 09:00+01', '3 hours')
           AT TIME ZONE 'Europe/Berlin' AS end_of_range,
       session_stream.business_deadline('berlin', '2024-01-09 09:00+01', '3 hours 0.000001 seconds')
           AT TIME ZONE 'Europe/Berlin' AS next_range,
       session_stream.business_deadline('berlin', '2024-01-09 12:30+01', '30 minutes')
           AT TIME ZONE 'Europe/Berlin' AS from_gap;

-- holidays: Good Friday is closed, Thursday before it is not
SELECT session_stream.business_time('berlin', '2024-03-29 00:00+01', '2024-03-30 00:00+01') AS good_friday,
       session_stream.business_time('berlin', '2024-03-28 00:00+01', '2024-03-29 00:00+01') AS thursday,
       session_stream.business_deadline('berlin', '2024-03-28 16:00+01', '2 hours')
           AT TIME ZONE 'Europe/Berlin' AS deadline_after_holiday;

-- DST in Berlin.  Sunday 01:00-02:30 and 02:15-04:00 are 3 hours on a
-- plain Sunday.  On 2024-03-31 02:30 and 02:15 do not exist and take the
-- offset from before the change (+01): 00:00Z-01:30Z and 01:15Z-02:00Z,
-- 2 hours.  On 2023-10-29 they exist twice and take the offset from after
-- (+01): 23:00Z-01:30Z and 01:15Z-03:00Z, 4 hours.
SELECT session_stream.business_time('berlin', '2024-03-24 00:00+01', '2024-03-25 00:00+01') AS plain_sunday,
       session_stream.business_time('berlin', '2024-03-31 00:00+01', '2024-04-01 00:00+02') AS spring_sunday,
       session_stream.business_time('berlin', '2023-10-29 00:00+02', '2023-10-30 00:00+01') AS autumn_sunday;
SELECT session_stream.business_deadline('berlin', '2024-03-31 00:00+01', '1 hour 45 minutes') AS spring,
       session_stream.business_deadline('berlin', '2023-10-29 00:00+02', '3 hours 30 minutes') AS autumn;

-- DST in New York.  A plain Sunday: 00:00-03:10 and 22:00-24:00, 5:10.
-- 2024-03-10: 00:00-02:30 is 05:00Z-07:30Z, 02:30-03:10 is 07:30Z-07:10Z,
-- inside out and empty, 22:00-24:00 is 2 hours: 4:30.  2023-11-05:
-- 00:00 EDT-03:10 EST is 4:10, plus 2 hours: 6:10.
SELECT session_stream.business_time('newyork', '2024-03-03 00:00-05', '2024-03-04 00:00-05') AS plain_sunday,
       session_stream.business_time('newyork', '2024-03-10 00:00-05', '2024-03-11 00:00-04') AS spring_sunday,
       session_stream.business_time('newyork', '2023-11-05 00:00-04', '2023-11-06 00:00-05') AS autumn_sunday;
-- Saturday 00:00-24:00 runs on into Sunday 00:00-03:10 without a gap.
SELECT session_stream.business_time('newyork', '2024-01-06 00:00-05', '2024-01-07 03:10-05') AS weekend,
       session_stream.business_deadline('newyork', '2024-01-06 12:00-05', '14 hours')
           AT TIME ZONE 'America/New_York' AS weekend_deadline;

-- Tokyo: Friday 17:00-18:00, then Saturday from 09:00.
SELECT session_stream.business_deadline('tokyo', '2024-01-05 17:00+09', '2 hours')
           AT TIME ZONE 'Asia/Tokyo' AS tokyo,
       session_stream.business_time('tokyo', '2023-12-29 00:00+09', '2024-01-05 00:00+09') AS new_year_week;

-- until <= since gives 0; a zero target gives since, even in a gap and on
-- an empty calendar; an empty calendar has no deadline and no business time
SELECT session_stream.business_time('berlin', '2024-01-09 10:00+01', '2024-01-09 09:00+01') AS backwards,
       session_stream.business_time('berlin', '2024-01-09 10:00+01', '2024-01-09 10:00+01') AS empty_span,
       session_stream.business_deadline('berlin', '2024-01-09 12:30+01', '0') AS zero_target,
       session_stream.business_deadline('empty', '2024-01-09 12:30+01', '0 hours') AS zero_target_empty,
       session_stream.business_deadline('empty', '2024-01-09 12:30+01', '1 hour') AS no_hours,
       session_stream.business_time('empty', '2024-01-01', '2025-01-01') AS none;

-- Targets are durations: a day is 24 hours, a month 30 days (as interval
-- comparison counts them).  business_time() returns hours, which compare
-- equal to the target.
SELECT session_stream.business_deadline('always', '2024-01-01', '1 day') AS one_day,
       session_stream.business_deadline('always', '2024-01-01', '1 mon') AS one_month,
       session_stream.business_deadline('always', '2024-01-01', '1 year') AS one_year,
       session_stream.business_time('always', '2024-01-01', '2024-01-31') AS thirty_days,
       session_stream.business_time('always', '2024-01-01', '2024-01-31') = interval '1 mon' AS equal;
SELECT session_stream.business_deadline('berlin', '2024-01-08 09:00+01', '1 day 2 hours')
           AT TIME ZONE 'Europe/Berlin' AS twenty_six_hours;

-- A NULL calendar counts around the clock; other NULLs give NULL.
SELECT session_stream.business_time(NULL, '2024-03-30 12:00+01', '2024-03-31 12:00+02') AS elapsed,
       session_stream.business_deadline(NULL, '2024-03-30 12:00+01', '1 day')
           AT TIME ZONE 'Europe/Berlin' AS plus_24_hours,
       session_stream.business_time('berlin', NULL, now()) IS NULL AS null_since,
       session_stream.business_deadline('berlin', now(), NULL) IS NULL AS null_target;

-- errors
SELECT session_stream.business_time('nowhere', '2024-01-01', '2024-01-02');
SELECT session_stream.business_deadline('nowhere', '2024-01-01', '1 hour');
SELECT session_stream.business_deadline('berlin', '2024-01-01', '-1 hour');
SELECT session_stream.business_deadline('berlin', '2024-01-01', '1 day -25 hours');
SELECT session_stream.business_deadline('berlin', '-infinity', '1 hour');
SELECT session_stream.business_time('berlin', '2024-01-01', 'infinity');
SELECT session_stream.business_deadline('berlin', '2024-01-01', '200000 years');
SELECT session_stream.business_deadline('berlin', '294276-11-01', '1 year');
SELECT session_stream.business_deadline(NULL, '294276-11-01', '1 year');

-- ------------------------------------------------------------------
-- Checks on writes
-- ------------------------------------------------------------------
INSERT INTO session_stream.calendars VALUES ('mars', 'Mars/Olympus_Mons');
INSERT INTO session_stream.calendars VALUES ('blank', '');
UPDATE session_stream.calendars SET time_zone = 'Europe/Berln' WHERE calendar = 'berlin';
INSERT INTO session_stream.calendars VALUES ('', 'UTC');
INSERT INTO session_stream.calendars VALUES (repeat('x', 64), 'UTC');
INSERT INTO session_stream.calendars VALUES ('nozone', NULL);
INSERT INTO session_stream.business_hours VALUES ('berlin', 0, '09:00', '10:00');
INSERT INTO session_stream.business_hours VALUES ('berlin', 8, '09:00', '10:00');
INSERT INTO session_stream.business_hours VALUES ('berlin', 1, '22:00', '06:00');
INSERT INTO session_stream.business_hours VALUES ('berlin', 1, '09:00', '09:00');
INSERT INTO session_stream.business_hours VALUES ('berlin', 1, '24:00', '24:00');
UPDATE session_stream.business_hours SET closes = '08:00'
 WHERE calendar = 'berlin' AND isodow = 2 AND opens = '09:00';
INSERT INTO session_stream.business_hours VALUES ('nowhere', 1, '09:00', '10:00');
INSERT INTO session_stream.holidays VALUES ('berlin', 'infinity');
INSERT INTO session_stream.holidays VALUES ('nowhere', '2024-01-01');
-- time zone names are PostgreSQL's, in any case
INSERT INTO session_stream.calendars VALUES ('lower', 'europe/berlin'), ('posix', 'EST5EDT');
SELECT session_stream.business_time('lower', '2024-07-01', '2024-07-02') AS no_hours;
DELETE FROM session_stream.calendars WHERE calendar IN ('lower', 'posix');

-- ------------------------------------------------------------------
-- The cache follows every change, and a rollback
-- ------------------------------------------------------------------
SELECT session_stream.business_time('tokyo', '2024-01-08 00:00+09', '2024-01-09 00:00+09') AS before;
UPDATE session_stream.business_hours SET closes = '17:00' WHERE calendar = 'tokyo' AND isodow = 1;
SELECT session_stream.business_time('tokyo', '2024-01-08 00:00+09', '2024-01-09 00:00+09') AS shorter;
BEGIN;
INSERT INTO session_stream.holidays VALUES ('tokyo', '2024-01-08');
SELECT session_stream.business_time('tokyo', '2024-01-08 00:00+09', '2024-01-09 00:00+09') AS holiday;
ROLLBACK;
SELECT session_stream.business_time('tokyo', '2024-01-08 00:00+09', '2024-01-09 00:00+09') AS after_rollback;
UPDATE session_stream.calendars SET time_zone = 'Europe/Berlin' WHERE calendar = 'tokyo';
SELECT session_stream.business_time('tokyo', '2024-01-08 00:00+01', '2024-01-09 00:00+01') AS in_berlin;
UPDATE session_stream.calendars SET time_zone = 'Asia/Tokyo' WHERE calendar = 'tokyo';
UPDATE session_stream.business_hours SET closes = '18:00' WHERE calendar = 'tokyo' AND isodow = 1;
-- renaming a calendar carries its hours and holidays (ON UPDATE CASCADE)
UPDATE session_stream.calendars SET calendar = 'tokyo_office' WHERE calendar = 'tokyo';
SELECT session_stream.business_time('tokyo_office', '2024-01-01 00:00+09', '2024-01-08 00:00+09') AS renamed;
SELECT session_stream.business_time('tokyo', '2024-01-01 00:00+09', '2024-01-08 00:00+09');
UPDATE session_stream.calendars SET calendar = 'tokyo' WHERE calendar = 'tokyo_office';
SELECT count(*) AS tokyo_rows FROM session_stream.business_hours WHERE calendar = 'tokyo';
-- TRUNCATE and deleting a calendar (its rows go with it)
INSERT INTO session_stream.calendars VALUES ('temp', 'UTC');
INSERT INTO session_stream.business_hours VALUES ('temp', 1, '09:00', '17:00');
SELECT session_stream.business_time('temp', '2024-01-01', '2024-01-02') AS temp;
BEGIN;
TRUNCATE session_stream.business_hours, session_stream.holidays, session_stream.calendars;
SELECT session_stream.business_time('temp', '2024-01-01', '2024-01-02');
ROLLBACK;
BEGIN;
TRUNCATE session_stream.business_hours;
SELECT session_stream.business_time('tokyo', '2024-01-08 00:00+09', '2024-01-09 00:00+09') AS truncated;
ROLLBACK;
DELETE FROM session_stream.calendars WHERE calendar = 'temp';
SELECT count(*) AS temp_rows FROM session_stream.business_hours WHERE calendar = 'temp';
SELECT session_stream.business_time('temp', '2024-01-01', '2024-01-02');

-- ------------------------------------------------------------------
-- The reference: every local day from 2022-12-20 to 2029-06-30, each of
-- its business_hours rows made a real range with AT TIME ZONE, the ranges
-- united per calendar with range_agg; business time up to t is then the
-- sum of the united ranges before t.
-- ------------------------------------------------------------------
CREATE SCHEMA calref;
CREATE TABLE calref.spans AS
WITH day_ranges AS (
    SELECT c.calendar,
           (d::date + h.opens) AT TIME ZONE c.time_zone AS lo,
           (d::date + h.closes) AT TIME ZONE c.time_zone AS hi
      FROM session_stream.calendars c
      JOIN session_stream.business_hours h ON h.calendar = c.calendar
     CROSS JOIN generate_series(timestamp '2022-12-20', timestamp '2029-06-30', interval '1 day') d
     WHERE extract(isodow FROM d) = h.isodow
       AND NOT EXISTS (SELECT FROM session_stream.holidays x
                        WHERE x.calendar = c.calendar AND x.day = d::date)
), united AS (
    SELECT calendar, unnest(range_agg(tstzrange(lo, hi))) AS r
      FROM day_ranges WHERE lo < hi GROUP BY calendar
), us AS (
    SELECT calendar,
           (extract(epoch FROM lower(r)) * 1000000)::bigint AS lo,
           (extract(epoch FROM upper(r)) * 1000000)::bigint AS hi
      FROM united
)
SELECT calendar, lo, hi,
       coalesce(sum(hi - lo) OVER (PARTITION BY calendar ORDER BY lo
                                   ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING), 0)::bigint AS before,
       sum(hi - lo) OVER (PARTITION BY calendar ORDER BY lo)::bigint AS through
  FROM us;
CREATE INDEX ON calref.spans (calendar, lo);
CREATE INDEX ON calref.spans (calendar, through);
ANALYZE calref.spans;
SELECT calendar, count(*) AS ranges FROM calref.spans GROUP BY calendar ORDER BY calendar;

-- microseconds since 1970, and back
CREATE FUNCTION calref.us(t timestamptz) RETURNS bigint LANGUAGE sql IMMUTABLE
    AS $$ SELECT (extract(epoch FROM t) * 1000000)::bigint $$;
CREATE FUNCTION calref.ts(us bigint) RETURNS timestamptz LANGUAGE sql IMMUTABLE
    AS $$ SELECT timestamptz 'epoch' + interval '1 second' * (us / 1000000)
                                      + interval '1 microsecond' * (us % 1000000) $$;
-- business time from the start of the reference up to t, microseconds
CREATE FUNCTION calref.upto(cal text, t timestamptz) RETURNS bigint LANGUAGE sql STABLE AS $$
    SELECT coalesce((SELECT s.before + least(s.hi, calref.us(t)) - s.lo
                       FROM calref.spans s
                      WHERE s.calendar = cal AND s.lo < calref.us(t)
                      ORDER BY s.lo DESC LIMIT 1), 0)
$$;
CREATE FUNCTION calref.business_time(cal text, since timestamptz, until timestamptz)
RETURNS bigint LANGUAGE sql STABLE AS $$
    SELECT greatest(calref.upto(cal, until) - calref.upto(cal, since), 0)
$$;
-- the first instant whose business time since `since` is target
CREATE FUNCTION calref.deadline(cal text, since timestamptz, target bigint)
RETURNS timestamptz LANGUAGE sql STABLE AS $$
    SELECT CASE WHEN target = 0 THEN since ELSE
        (SELECT calref.ts(s.lo + (calref.upto(cal, since) + target - s.before))
           FROM calref.spans s
          WHERE s.calendar = cal AND s.through >= calref.upto(cal, since) + target
          ORDER BY s.through LIMIT 1) END
$$;

-- ------------------------------------------------------------------
-- Random spans: half anywhere in 2023 to mid-2026, half within three
-- days of a DST change in Berlin, New York or Santiago; lengths from seconds to
-- a year, to the microsecond; targets with days and months in them.
-- ------------------------------------------------------------------
SELECT setseed(0.15);
CREATE TABLE calref.changes AS
SELECT d::date AS day
  FROM generate_series(timestamp '2023-01-01', timestamp '2026-12-31', interval '1 day') d,
       unnest(ARRAY['Europe/Berlin', 'America/New_York', 'America/Santiago']) z
 WHERE ((d + interval '1 day' + time '12:00') AT TIME ZONE z)
       - ((d + time '12:00') AT TIME ZONE z) <> interval '24 hours';
SELECT count(*) AS dst_changes FROM calref.changes;

CREATE TABLE calref.cases AS
WITH draws AS (
    SELECT i,
           (ARRAY['berlin', 'newyork', 'tokyo', 'berlin_night', 'newyork_night',
                  'santiago', 'always', 'empty', 'example'])[1 + floor(random() * 9)::int] AS calendar,
           random() AS where_draw, random() AS anywhere, random() AS near,
           random() AS length_class, random() AS length_draw,
           random() AS target_class, random() AS target_draw, random() AS days_draw
      FROM generate_series(1, 7000) i
), placed AS (
    SELECT d.*,
           CASE WHEN where_draw < 0.5
                THEN timestamptz '2023-01-01 00:00Z'
                     + interval '1 microsecond' * floor(anywhere * 1277 * 86400e6)
                ELSE (SELECT day FROM calref.changes ORDER BY day
                       OFFSET floor(anywhere * (SELECT count(*) FROM calref.changes)) LIMIT 1)
                     + interval '1 microsecond' * floor((near - 0.5) * 6 * 86400e6)
           END AS since
      FROM draws d
)
SELECT i, calendar, since,
       since + interval '1 microsecond' *
           CASE WHEN length_class < 0.03 THEN -floor(length_draw * 86400e6)
                WHEN length_class < 0.05 THEN 0
                WHEN length_class < 0.35 THEN floor(length_draw * 6 * 3600e6)
                WHEN length_class < 0.65 THEN floor(length_draw * 4 * 86400e6)
                WHEN length_class < 0.90 THEN floor(length_draw * 60 * 86400e6)
                ELSE floor(length_draw * 400 * 86400e6) END AS until,
       CASE WHEN target_class < 0.05 THEN interval '0'
            WHEN target_class < 0.35 THEN interval '1 microsecond' * floor(target_draw * 4 * 3600e6)
            WHEN target_class < 0.65 THEN make_interval(days => floor(days_draw * 3)::int)
                 + interval '1 microsecond' * floor(target_draw * 86400e6)
            WHEN target_class < 0.90 THEN make_interval(days => floor(days_draw * 40)::int)
                 + interval '1 second' * floor(target_draw * 86400)
            ELSE make_interval(months => 1 + floor(days_draw * 2)::int)
                 + interval '1 minute' * floor(target_draw * 1440) END AS target
  FROM placed;
-- the target in microseconds, counted from its fields
ALTER TABLE calref.cases ADD COLUMN target_us bigint;
UPDATE calref.cases SET target_us =
    ((extract(year FROM target) * 12 + extract(month FROM target)) * 30
     + extract(day FROM target))::bigint * 86400000000
    + (extract(epoch FROM target - date_trunc('day', target))
       * 1000000)::bigint;
SELECT count(*) AS cases,
       count(*) FILTER (WHERE until < since) AS backwards,
       count(*) FILTER (WHERE until - since > interval '60 days') AS over_60_days,
       count(*) FILTER (WHERE target_us = 0) AS zero_targets,
       count(*) FILTER (WHERE target >= interval '1 mon') AS month_targets,
       count(*) FILTER (WHERE EXISTS (SELECT FROM calref.changes c
                                       WHERE c.day BETWEEN since::date - 1 AND until::date + 1)) AS across_dst
  FROM calref.cases;

-- business_time against the reference
CREATE TABLE calref.times AS
SELECT i, calendar, since, until,
       session_stream.business_time(calendar, since, until) AS got,
       calref.business_time(calendar, since, until) AS want_us
  FROM calref.cases;
SELECT count(*) AS compared,
       count(*) FILTER (WHERE got <> interval '1 microsecond' * want_us) AS differences,
       count(*) FILTER (WHERE want_us > 0) AS nonzero
  FROM calref.times;
SELECT * FROM calref.times WHERE got <> interval '1 microsecond' * want_us ORDER BY i LIMIT 5;

-- business_deadline against the reference, and as business_time's inverse:
-- business_time up to the deadline is the target, and a microsecond
-- earlier it falls short (the deadline is the first such instant)
CREATE TABLE calref.deadlines AS
SELECT i, calendar, since, target, target_us,
       session_stream.business_deadline(calendar, since, target) AS got,
       calref.deadline(calendar, since, target_us) AS want
  FROM calref.cases;
SELECT count(*) AS compared,
       count(*) FILTER (WHERE got IS DISTINCT FROM want) AS differences,
       count(*) FILTER (WHERE got IS NULL) AS no_deadline,
       count(*) FILTER (WHERE want IS NULL AND calendar <> 'empty') AS beyond_reference,
       count(*) FILTER (WHERE got IS NOT NULL
                          AND session_stream.business_time(calendar, since, got) <> target) AS not_inverse,
       count(*) FILTER (WHERE got > since
                          AND session_stream.business_time(calendar, since, got - interval '1 microsecond')
                              >= target) AS not_first
  FROM calref.deadlines;
SELECT * FROM calref.deadlines WHERE got IS DISTINCT FROM want ORDER BY i LIMIT 5;

DROP SCHEMA calref CASCADE;
