-- Deferred mode under UPDATE, DELETE and TRUNCATE: after each
-- consume_window() the results equal a replay of the source's current
-- rows; a message edited before it was consumed is consumed once.
SET TimeZone = 'UTC';
SET datestyle = 'ISO';

-- Seeds' table in pair mode, and customer mode on the same table with
-- results of its own; both triggers disabled (they hold the mapping), the
-- edit recorder enabled.
CREATE TABLE dchat (a int NOT NULL, b int NOT NULL, ts timestamp NOT NULL,
                    direct boolean NOT NULL,
                    txid bigint NOT NULL DEFAULT session_stream.current_txid());
CREATE INDEX ON dchat USING brin (txid);
CREATE INDEX ON dchat (ts);
SELECT session_stream.create_results('public.dchat_pairs', 'pair');
SELECT session_stream.create_results('public.dchat_customers', 'customer');
CREATE TRIGGER dchat_pairs AFTER INSERT OR UPDATE OR DELETE ON dchat
    FOR EACH ROW EXECUTE FUNCTION session_stream.track_sessions(
        'pair', 'agent=a', 'customer=b', 'ts=ts', 'from_agent=direct',
        'results=public.dchat_pairs');
CREATE TRIGGER dchat_customers AFTER INSERT OR UPDATE OR DELETE ON dchat
    FOR EACH ROW EXECUTE FUNCTION session_stream.track_sessions(
        'customer', 'agent=a', 'customer=b', 'ts=ts', 'from_agent=direct',
        'results=public.dchat_customers');
ALTER TABLE dchat DISABLE TRIGGER dchat_pairs, DISABLE TRIGGER dchat_customers;
CREATE TRIGGER dchat_edits AFTER UPDATE OR DELETE ON dchat
    FOR EACH ROW EXECUTE FUNCTION session_stream.record_edits();
CREATE TRIGGER dchat_edits_truncate AFTER TRUNCATE ON dchat
    FOR EACH STATEMENT EXECUTE FUNCTION session_stream.record_edits();

CREATE FUNCTION consume_and_check() RETURNS TABLE (mode text, status text,
    messages bigint, keys_recomputed bigint, differences bigint)
LANGUAGE sql AS $$
    SELECT m.mode, w.status, w.messages, w.keys_recomputed,
           (SELECT count(*) FROM oracle.diff(m.mode,
               $q$SELECT a, b, ts AT TIME ZONE 'UTC', direct FROM dchat$q$,
               CASE m.mode WHEN 'pair' THEN 'public.dchat_pairs'
                           ELSE 'public.dchat_customers' END))
      FROM (VALUES ('customer'), ('pair')) AS m(mode),
           LATERAL session_stream.consume_window(m.mode, 'dchat') w
$$;

INSERT INTO dchat (a, b, ts, direct) VALUES
    (1, 1, '2024-01-01 10:00', false), (1, 1, '2024-01-01 10:05', true),
    (2, 1, '2024-01-01 10:10', false), (2, 1, '2024-01-01 10:20', true),
    (3, 2, '2024-01-01 10:00', false), (3, 2, '2024-01-01 10:01', true);
-- a deferred source (a disabled track_sessions() trigger) records edits
-- from the start; the first window reads the rows as they are anyway
UPDATE dchat SET ts = '2024-01-01 10:02' WHERE b = 2 AND direct;
SELECT count(*) AS edits_recorded FROM session_stream.edits;
SELECT * FROM consume_and_check();

-- Edits of consumed messages wait for the next window.
DELETE FROM dchat WHERE b = 1 AND ts = '2024-01-01 10:05';      -- a closer
UPDATE dchat SET b = 3 WHERE b = 2 AND direct;                  -- moved
SELECT count(*) AS edits_recorded FROM session_stream.edits;
SELECT customer_id, opened_at::time, responder_id, answered_at::time
  FROM dchat_customers ORDER BY 1, 2;
SELECT * FROM consume_and_check();
SELECT customer_id, opened_at::time, responder_id, answered_at::time
  FROM dchat_customers ORDER BY 1, 2;

-- A message edited before it was consumed is consumed once, in its new
-- form; edits of it in its old form count for nothing.
INSERT INTO dchat (a, b, ts, direct) VALUES (4, 4, '2024-01-01 11:00', false);
UPDATE dchat SET ts = '2024-01-01 09:00' WHERE b = 4;
UPDATE dchat SET a = 5 WHERE b = 4;
SELECT * FROM consume_and_check();
SELECT mode, messages_consumed, edits FROM session_stream.consumer_stats
 WHERE source = 'dchat'::regclass ORDER BY mode;
-- every mode took them: none is left
SELECT count(*) AS edits_left FROM session_stream.edits;

-- An edit with nothing to consume is a window of its own.
DELETE FROM dchat WHERE b = 4;
SELECT * FROM consume_and_check();
SELECT mode, status FROM (VALUES ('customer'), ('pair')) AS m(mode),
       LATERAL session_stream.consume_window(m.mode, 'dchat') w;

-- Random edits between random windows: each window equals the replay.
SELECT setseed(0.77);
INSERT INTO dchat (a, b, ts, direct)
SELECT 1 + (random() * 3)::int, 100 + (random() * 9)::int,
       '2024-01-01 10:00'::timestamp + (random() * 900)::int * interval '1 second',
       random() < 0.5
  FROM generate_series(1, 300);
SELECT count(*) AS windows_with_differences FROM consume_and_check() WHERE differences > 0;
-- each edit is a transaction of its own, and so is each window
CREATE TABLE bad_windows (n bigint);
CREATE PROCEDURE random_edits(n int) LANGUAGE plpgsql AS $$
DECLARE
    pick double precision;
    victim tid;
BEGIN
    FOR i IN 1 .. n LOOP
        pick := random();
        SELECT ctid INTO victim FROM dchat ORDER BY random() LIMIT 1;
        IF pick < 0.2 THEN
            UPDATE dchat SET ts = ts + ((random() - 0.5) * 300)::int * interval '1 second'
             WHERE ctid = victim;
        ELSIF pick < 0.35 THEN
            UPDATE dchat SET b = 100 + (random() * 9)::int WHERE ctid = victim;
        ELSIF pick < 0.45 THEN
            UPDATE dchat SET a = 1 + (random() * 3)::int WHERE ctid = victim;
        ELSIF pick < 0.55 THEN
            UPDATE dchat SET direct = NOT direct WHERE ctid = victim;
        ELSIF pick < 0.7 THEN
            DELETE FROM dchat WHERE ctid = victim;
        ELSIF pick < 0.78 THEN
            UPDATE dchat SET ts = ts + ((random() - 0.5) * 120)::int * interval '1 second'
             WHERE b = 100 + (random() * 9)::int AND random() < 0.5;
        ELSE
            INSERT INTO dchat (a, b, ts, direct)
            SELECT 1 + (random() * 3)::int, 100 + (random() * 9)::int,
                   '2024-01-01 10:00'::timestamp + (random() * 900)::int * interval '1 second',
                   random() < 0.5
              FROM generate_series(1, 1 + (random() * 4)::int);
        END IF;
        COMMIT;
        -- a window now and then, each mode on its own
        IF random() < 0.1 THEN
            INSERT INTO bad_windows
            SELECT count(*) FROM consume_and_check() WHERE differences > 0;
            COMMIT;
        END IF;
    END LOOP;
    INSERT INTO bad_windows
    SELECT count(*) FROM consume_and_check() WHERE differences > 0;
END
$$;
CALL random_edits(300);
SELECT count(*) > 20 AS many_windows, sum(n) AS windows_with_differences
  FROM bad_windows;
SELECT count(*) > 200 AS enough_rows FROM dchat;
SELECT sum(edits) > 0 AS edits_applied FROM session_stream.consumer_stats
 WHERE source = 'dchat'::regclass;

-- TRUNCATE empties the results sets at once, and the next windows start
-- from nothing.
TRUNCATE dchat;
SELECT (SELECT count(*) FROM dchat_pairs) AS pairs,
       (SELECT count(*) FROM dchat_customers) AS customers;
INSERT INTO dchat (a, b, ts, direct) VALUES
    (1, 9, '2024-01-01 08:00', false), (1, 9, '2024-01-01 08:01', true);
SELECT * FROM consume_and_check();

-- Retention is not erasure: purged messages keep their sessions, and are
-- not edits.
SELECT session_stream.purge_messages('dchat', '0 seconds') AS purged;
SELECT count(*) AS edits_recorded FROM session_stream.edits;
SELECT customer_id, agent_id, opened_at::time, answered_at::time FROM dchat_pairs;

-- An edit whose replay would need purged messages is left out and counted
-- as late_beyond_retention, never applied wrongly: customer 20 asked two
-- hours ago (purged below) and was answered an hour from now; moving the
-- answer would rebuild a session whose question is gone.
INSERT INTO dchat (a, b, ts, direct) VALUES
    (1, 20, (now() AT TIME ZONE 'UTC') - interval '2 hours', false),
    (1, 20, (now() AT TIME ZONE 'UTC') + interval '1 hour', true);
SELECT mode, status FROM (VALUES ('customer'), ('pair')) AS m(mode),
       LATERAL session_stream.consume_window(m.mode, 'dchat') w;
SELECT session_stream.purge_messages('dchat', '1 hour') AS purged;
UPDATE dchat SET ts = ts + interval '1 minute' WHERE b = 20 AND direct;
SELECT status, late_beyond_retention FROM session_stream.consume_window('pair', 'dchat');
SELECT count(*) AS customer_20_sessions, count(answered_at) AS answered
  FROM dchat_pairs WHERE customer_id = 20;

-- The recorder's errors.
SELECT session_stream.record_edits();
CREATE TRIGGER bad_edits BEFORE UPDATE ON dchat
    FOR EACH ROW EXECUTE FUNCTION session_stream.record_edits();
INSERT INTO dchat (a, b, ts, direct) VALUES (1, 9, '2024-01-01 08:00', false);
UPDATE dchat SET a = 2;
DROP TRIGGER bad_edits ON dchat;

DELETE FROM session_stream.consumed_windows WHERE source = 'dchat'::regclass;
DELETE FROM session_stream.purges WHERE source = 'dchat'::regclass;
DELETE FROM session_stream.edits WHERE source = 'dchat'::regclass;
DROP TABLE dchat;
DROP TABLE bad_windows;
DROP FUNCTION consume_and_check();
DROP PROCEDURE random_edits(int);
