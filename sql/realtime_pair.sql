-- Pair mode on the seeds' own table, through trigger arguments: a session
-- per (customer, agent) opens at the customer's first unanswered message to
-- that agent and closes at that agent's first reply.
SET TimeZone = 'UTC';
SET datestyle = 'ISO';

CREATE TABLE tbl (
    a      int       NOT NULL,  -- agent
    b      int       NOT NULL,  -- customer
    ts     timestamp NOT NULL,
    direct boolean   NOT NULL   -- true: a -> b
);
CREATE INDEX ON tbl (b, ts);
CREATE TRIGGER tbl_sessions AFTER INSERT ON tbl FOR EACH ROW
    EXECUTE FUNCTION session_stream.track_sessions(
        'pair', 'agent=a', 'customer=b', 'ts=ts', 'from_agent=direct');

CREATE FUNCTION check_pair_sessions() RETURNS TABLE (differences bigint)
LANGUAGE sql AS $$
    SELECT count(*) FROM oracle.diff('pair',
        'SELECT a, b, ts AT TIME ZONE ''UTC'', direct FROM tbl',
        'session_stream.pair_sessions')
$$;

-- The seeds' pair-mode sample (customer 1, agent 9), shuffled: their
-- trigger got these right only because rows came in order.
INSERT INTO tbl
SELECT 9, 1, ts, direct FROM (VALUES
    ('2018-08-15 10:08:20.82439'::timestamp, false),
    ('2018-08-15 10:08:21.341471', false),
    ('2018-08-15 10:08:23.084166', false),
    ('2018-08-15 10:08:25.379688', true),
    ('2018-08-15 10:08:26.471402', true),
    ('2018-08-15 10:08:27.28104', false),
    ('2018-08-15 10:08:27.285187', false),
    ('2018-08-15 10:08:27.992076', true),
    ('2018-08-15 10:08:28.233072', true),
    ('2018-08-15 10:08:30.058747', false),
    ('2018-08-15 10:08:30.114936', true),
    ('2018-08-15 10:08:30.237846', false),
    ('2018-08-15 10:08:30.468956', true),
    ('2018-08-15 10:08:32.530952', false),
    ('2018-08-15 10:08:32.991299', false)
) AS v(ts, direct)
ORDER BY md5(ts::text);
-- another agent's messages to the same customer are another pair
INSERT INTO tbl VALUES (3, 1, '2018-08-15 10:08:22', false),
                       (9, 1, '2018-08-15 10:08:29', false);
SELECT customer_id, agent_id, opened_at, answered_at,
       answered_at - opened_at AS response_time
  FROM session_stream.pair_sessions ORDER BY agent_id, opened_at;
SELECT * FROM check_pair_sessions();

-- Randomised, out of order, int ids and timestamp times.
TRUNCATE tbl, session_stream.pair_sessions_closed, session_stream.pair_sessions_latest;
SELECT setseed(0.17);
INSERT INTO tbl
SELECT (1 + floor(random() * 5))::int, (1 + floor(random() * 30))::int,
       timestamp '2024-02-01' + floor(random() * 900) * interval '1 second',
       random() < 0.5
  FROM generate_series(1, 4000);
SELECT count(*) > 1000 AS many_sessions FROM session_stream.pair_sessions;
SELECT * FROM check_pair_sessions();

-- A second stream kept apart: its own results table.
SELECT session_stream.create_results('my_pair_sessions', 'pair');
CREATE TABLE tbl2 (LIKE tbl);
CREATE INDEX ON tbl2 (b, ts);
CREATE TRIGGER tbl2_sessions AFTER INSERT ON tbl2 FOR EACH ROW
    EXECUTE FUNCTION session_stream.track_sessions(
        'pair', 'agent=a', 'customer=b', 'ts=ts', 'from_agent=direct',
        'results=public.my_pair_sessions');
INSERT INTO tbl2 VALUES (1, 1, '2024-03-01 12:00:00', false),
                        (1, 1, '2024-03-01 12:00:02', true);
SELECT * FROM my_pair_sessions;
SELECT count(*) FROM session_stream.pair_sessions
 WHERE opened_at >= '2024-03-01';

-- Columns users add to a results set's tables get their defaults in new
-- rows (an identity column too) and keep their values when the trigger
-- updates a row.
ALTER TABLE my_pair_sessions_closed
    ADD COLUMN note text DEFAULT 'answered',
    ADD COLUMN seq bigint GENERATED ALWAYS AS IDENTITY,
    ADD COLUMN plain_extra int;
ALTER TABLE my_pair_sessions_latest ADD COLUMN first_seen text DEFAULT 'new';
INSERT INTO tbl2 VALUES (2, 5, '2024-03-02 09:00:00', false);
SELECT customer_id, agent_id, first_seen FROM my_pair_sessions_latest
 WHERE customer_id = 5;
UPDATE my_pair_sessions_latest SET first_seen = 'kept' WHERE customer_id = 5;
INSERT INTO tbl2 VALUES (2, 5, '2024-03-02 09:00:05', true),
                        (2, 5, '2024-03-02 09:01:00', false);
SELECT customer_id, agent_id, opened_at, answered_at, first_seen
  FROM my_pair_sessions_latest WHERE customer_id = 5;
SELECT customer_id, agent_id, opened_at, answered_at, note, seq IS NOT NULL AS has_seq, plain_extra
  FROM my_pair_sessions_closed WHERE customer_id = 5;

-- One statement writing many customers: keys are locked by bucket, so the
-- lock table does not overflow (one lock per key would need 20000).
TRUNCATE tbl, session_stream.pair_sessions_closed, session_stream.pair_sessions_latest;
INSERT INTO tbl
SELECT 1 + n % 3, n, timestamp '2024-05-01' + n * interval '1 ms', n % 2 = 0
  FROM generate_series(1, 20000) n;
SELECT count(*) AS open_sessions FROM session_stream.pair_sessions
 WHERE answered_at IS NULL;
SELECT * FROM check_pair_sessions();

-- Both modes on one table, each with its own results set: a multi-row
-- statement whose late row makes one trigger replay its key must not make
-- the other trigger skip rows of that statement.
SELECT session_stream.create_results('tbl2_customer', 'customer');
CREATE TRIGGER tbl2_customer AFTER INSERT ON tbl2 FOR EACH ROW
    EXECUTE FUNCTION session_stream.track_sessions(
        'customer', 'agent=a', 'customer=b', 'ts=ts', 'from_agent=direct',
        'results=public.tbl2_customer');
INSERT INTO tbl2 VALUES (1, 7, '2024-04-01 10:00:00', false);
INSERT INTO tbl2 VALUES (2, 7, '2024-04-01 10:00:01', false),
                        (2, 7, '2024-04-01 10:00:02', true);
INSERT INTO tbl2
SELECT 1 + (random() * 3)::int, 100 + (random() * 20)::int,
       timestamp '2024-04-02' + random() * interval '1 hour', random() < 0.5
  FROM generate_series(1, 300);
SELECT customer_id, opened_at, responder_id, answered_at FROM tbl2_customer
 WHERE customer_id = 7;
SELECT count(*) AS customer_differences FROM oracle.diff('customer',
    'SELECT a, b, ts AT TIME ZONE ''UTC'', direct FROM tbl2 WHERE b >= 7',
    'public.tbl2_customer');
SELECT count(*) AS pair_differences FROM oracle.diff('pair',
    'SELECT a, b, ts AT TIME ZONE ''UTC'', direct FROM tbl2',
    'public.my_pair_sessions');
