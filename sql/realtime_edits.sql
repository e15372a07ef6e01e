-- UPDATE, DELETE and TRUNCATE in realtime mode keep the results equal to a
-- replay of the current rows; forget_customer() erases a customer.
SET TimeZone = 'UTC';
SET datestyle = 'ISO';
TRUNCATE session_stream.messages, session_stream.pair_sessions_closed,
         session_stream.pair_sessions_latest;

CREATE FUNCTION customer_diff() RETURNS bigint LANGUAGE sql AS $$
    SELECT count(*) FROM oracle.diff('customer',
        'SELECT agent_id, customer_id, sent_at, from_agent FROM session_stream.messages',
        'session_stream.sessions')
$$;
CREATE FUNCTION show_sessions() RETURNS TABLE (customer_id bigint,
    opened time, responder bigint, answered time) LANGUAGE sql AS $$
    SELECT customer_id, opened_at::time, responder_id, answered_at::time
      FROM session_stream.sessions ORDER BY 1, 2
$$;

-- Customer 1: asks at :00, agent 1 answers at :05, asks at :10 and :12,
-- agent 2 answers at :20.  Customer 2: one answered session.
INSERT INTO session_stream.messages (agent_id, customer_id, sent_at, from_agent) VALUES
    (1, 1, '2024-01-01 10:00', false), (1, 1, '2024-01-01 10:05', true),
    (2, 1, '2024-01-01 10:10', false), (2, 1, '2024-01-01 10:12', false),
    (2, 1, '2024-01-01 10:20', true),
    (3, 2, '2024-01-01 10:00', false), (3, 2, '2024-01-01 10:01', true);
SELECT * FROM show_sessions();

-- Deleting a closer: the first session runs on to the next answer.
DELETE FROM session_stream.messages WHERE customer_id = 1 AND sent_at = '2024-01-01 10:05';
SELECT * FROM show_sessions();
-- Deleting an opener: the session opens at the next question.
DELETE FROM session_stream.messages WHERE customer_id = 1 AND sent_at = '2024-01-01 10:00';
SELECT * FROM show_sessions();
-- Deleting a message that changed nothing (a second question): no change.
DELETE FROM session_stream.messages WHERE customer_id = 1 AND sent_at = '2024-01-01 10:12';
SELECT * FROM show_sessions();
SELECT customer_diff();

-- An UPDATE that corrects a reply's time: earlier than the question, so it
-- answers nothing and the session stays open.
UPDATE session_stream.messages SET sent_at = '2024-01-01 10:08'
 WHERE customer_id = 1 AND from_agent;
SELECT * FROM show_sessions();
-- ... and back after it.
UPDATE session_stream.messages SET sent_at = '2024-01-01 10:30'
 WHERE customer_id = 1 AND from_agent;
SELECT * FROM show_sessions();
-- An UPDATE moving customer 2's reply to customer 1: two keys change.
UPDATE session_stream.messages SET customer_id = 1
 WHERE customer_id = 2 AND from_agent;
SELECT * FROM show_sessions();
-- An UPDATE of no tracked column changes nothing (nor fails).
ALTER TABLE session_stream.messages ADD COLUMN note text;
UPDATE session_stream.messages SET note = 'seen';
SELECT * FROM show_sessions();
ALTER TABLE session_stream.messages DROP COLUMN note;
SELECT customer_diff();

-- Multi-row statements: every message of customer 1 shifted by a minute,
-- then two of its rows deleted at once.
UPDATE session_stream.messages SET sent_at = sent_at + interval '1 minute'
 WHERE customer_id = 1;
SELECT * FROM show_sessions();
DELETE FROM session_stream.messages
 WHERE customer_id = 1 AND sent_at IN ('2024-01-01 10:11', '2024-01-01 10:31');
SELECT * FROM show_sessions();
SELECT customer_diff();

-- TRUNCATE empties the results set the table feeds.
TRUNCATE session_stream.messages;
SELECT count(*) AS sessions_after_truncate FROM session_stream.sessions;

-- Pair mode on a table of one's own, the four-event form.
CREATE TABLE chat (a int NOT NULL, b int NOT NULL, ts timestamp NOT NULL,
                   direct boolean NOT NULL);
CREATE INDEX ON chat (b, ts);
SELECT session_stream.create_results('public.chat_pairs', 'pair');
CREATE TRIGGER chat_sessions AFTER INSERT OR UPDATE OR DELETE ON chat
    FOR EACH ROW EXECUTE FUNCTION session_stream.track_sessions(
        'pair', 'agent=a', 'customer=b', 'ts=ts', 'from_agent=direct',
        'results=public.chat_pairs');
CREATE TRIGGER chat_sessions_truncate AFTER TRUNCATE ON chat
    FOR EACH STATEMENT EXECUTE FUNCTION session_stream.track_sessions(
        'pair', 'agent=a', 'customer=b', 'ts=ts', 'from_agent=direct',
        'results=public.chat_pairs');
CREATE FUNCTION pair_diff() RETURNS bigint LANGUAGE sql AS $$
    SELECT count(*) FROM oracle.diff('pair',
        $q$SELECT a, b, ts AT TIME ZONE 'UTC', direct FROM chat$q$, 'public.chat_pairs')
$$;
INSERT INTO chat VALUES
    (1, 50, '2024-01-01 10:00', false), (1, 50, '2024-01-01 10:03', true),
    (2, 50, '2024-01-01 10:01', false), (2, 50, '2024-01-01 10:09', true),
    (1, 51, '2024-01-01 10:00', false);
SELECT customer_id, agent_id, opened_at::time, answered_at::time
  FROM chat_pairs ORDER BY 1, 2, 3;
-- agent 2's reply was agent 1's: the pair (50, 2) stays open and (50, 1)
-- is answered at 10:03 still (its first reply)
UPDATE chat SET a = 1 WHERE b = 50 AND a = 2 AND direct;
SELECT customer_id, agent_id, opened_at::time, answered_at::time
  FROM chat_pairs ORDER BY 1, 2, 3;
DELETE FROM chat WHERE b = 50 AND ts = '2024-01-01 10:03';
SELECT customer_id, agent_id, opened_at::time, answered_at::time
  FROM chat_pairs ORDER BY 1, 2, 3;
SELECT pair_diff();

-- An UPDATE to NULL gets the same error as such an INSERT, and changes
-- nothing; deleting a row with a NULL (never a message) changes nothing.
CREATE TABLE loose (a int, b int, ts timestamp, direct boolean);
CREATE INDEX ON loose (b, ts);
INSERT INTO loose VALUES (1, 50, NULL, false);
CREATE TRIGGER loose_sessions AFTER INSERT OR UPDATE OR DELETE ON loose
    FOR EACH ROW EXECUTE FUNCTION session_stream.track_sessions(
        'pair', 'agent=a', 'customer=b', 'ts=ts', 'from_agent=direct',
        'results=public.chat_pairs');
INSERT INTO loose VALUES (1, 50, NULL, false);
INSERT INTO loose VALUES (1, 52, '2024-01-01 10:00', false);
UPDATE loose SET ts = NULL WHERE b = 52;
DELETE FROM loose WHERE ts IS NULL;
SELECT customer_id, agent_id, opened_at::time, answered_at::time
  FROM chat_pairs ORDER BY 1, 2, 3;
DROP TABLE loose;
DELETE FROM chat_pairs_latest WHERE customer_id = 52;

-- A second table feeding the same results set: its TRUNCATE cannot empty
-- the set without losing chat's sessions, and is refused.
CREATE TABLE chat2 (LIKE chat);
CREATE INDEX ON chat2 (b, ts);
CREATE TRIGGER chat2_sessions AFTER INSERT ON chat2
    FOR EACH ROW EXECUTE FUNCTION session_stream.track_sessions(
        'pair', 'agent=a', 'customer=b', 'ts=ts', 'from_agent=direct',
        'results=public.chat_pairs');
TRUNCATE chat;
DROP TABLE chat2;
TRUNCATE chat;
SELECT count(*) AS pairs_after_truncate FROM chat_pairs;

-- An AFTER INSERT trigger alone keeps working as before, and misses edits.
CREATE TABLE old_chat (LIKE chat);
CREATE INDEX ON old_chat (b, ts);
SELECT session_stream.create_results('public.old_pairs', 'pair');
CREATE TRIGGER old_chat_sessions AFTER INSERT ON old_chat
    FOR EACH ROW EXECUTE FUNCTION session_stream.track_sessions(
        'pair', 'agent=a', 'customer=b', 'ts=ts', 'from_agent=direct',
        'results=public.old_pairs');
INSERT INTO old_chat VALUES (1, 60, '2024-01-01 10:00', false),
    (1, 60, '2024-01-01 10:02', true);
DELETE FROM old_chat WHERE direct;
SELECT customer_id, agent_id, opened_at::time, answered_at::time FROM old_pairs;

-- Random edits, one statement at a time, each followed by a check against
-- the replay of the current rows: inserts, time corrections, moves between
-- customers and agents, flips of direction, deletes; single and multi-row.
SELECT setseed(0.4242);
INSERT INTO chat
SELECT 1 + (random() * 3)::int, 100 + (random() * 5)::int,
       '2024-01-01 10:00'::timestamp + (random() * 600)::int * interval '1 second',
       random() < 0.5
  FROM generate_series(1, 200);
CREATE FUNCTION random_edits(n int) RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
    differences bigint := 0;
    pick double precision;
    victim tid;
BEGIN
    FOR i IN 1 .. n LOOP
        pick := random();
        SELECT ctid INTO victim FROM chat ORDER BY random() LIMIT 1;
        IF pick < 0.2 THEN
            UPDATE chat SET ts = ts + ((random() - 0.5) * 300)::int * interval '1 second'
             WHERE ctid = victim;
        ELSIF pick < 0.35 THEN
            UPDATE chat SET b = 100 + (random() * 5)::int WHERE ctid = victim;
        ELSIF pick < 0.45 THEN
            UPDATE chat SET a = 1 + (random() * 3)::int WHERE ctid = victim;
        ELSIF pick < 0.55 THEN
            UPDATE chat SET direct = NOT direct WHERE ctid = victim;
        ELSIF pick < 0.7 THEN
            DELETE FROM chat WHERE ctid = victim;
        ELSIF pick < 0.78 THEN
            -- several rows of one customer at once
            UPDATE chat SET ts = ts + ((random() - 0.5) * 120)::int * interval '1 second'
             WHERE b = 100 + (random() * 5)::int AND random() < 0.5;
        ELSIF pick < 0.82 THEN
            DELETE FROM chat WHERE b = 100 + (random() * 5)::int AND random() < 0.2;
        ELSE
            INSERT INTO chat
            SELECT 1 + (random() * 3)::int, 100 + (random() * 5)::int,
                   '2024-01-01 10:00'::timestamp + (random() * 600)::int * interval '1 second',
                   random() < 0.5
              FROM generate_series(1, 1 + (random() * 5)::int);
        END IF;
        differences := differences + pair_diff();
    END LOOP;
    RETURN differences;
END
$$;
SELECT random_edits(300) AS differences_over_300_edits;
SELECT count(*) > 150 AS enough_rows, pair_diff() FROM chat;

-- forget_customer(): messages and sessions of the customer, every results
-- set the source feeds, realtime and deferred.
INSERT INTO session_stream.messages (agent_id, customer_id, sent_at, from_agent) VALUES
    (1, 7, '2024-01-01 10:00', false), (1, 7, '2024-01-01 10:05', true),
    (2, 7, '2024-01-01 11:00', false),
    (1, 8, '2024-01-01 10:00', false), (1, 8, '2024-01-01 10:05', true);
-- pair mode consumed from the same table (deferred)
SELECT status, messages FROM session_stream.consume_window('pair');
SELECT customer_id, count(*) FROM session_stream.sessions GROUP BY 1 ORDER BY 1;
SELECT customer_id, count(*) FROM session_stream.pair_sessions GROUP BY 1 ORDER BY 1;
SELECT session_stream.forget_customer(7) AS messages_deleted;
SELECT customer_id, count(*) FROM session_stream.sessions GROUP BY 1 ORDER BY 1;
SELECT customer_id, count(*) FROM session_stream.pair_sessions GROUP BY 1 ORDER BY 1;
SELECT count(*) AS customer_7_messages FROM session_stream.messages WHERE customer_id = 7;
SELECT customer_diff();
-- the consumed windows keep their counts
SELECT sum(messages) AS consumed FROM session_stream.consumed_windows
 WHERE source = 'session_stream.messages'::regclass AND mode = 'pair';
-- a table of one's own, pair mode
SELECT session_stream.forget_customer(103, 'chat') > 0 AS deleted_some;
SELECT count(*) FROM chat WHERE b = 103;
SELECT count(*) FROM chat_pairs WHERE customer_id = 103;
SELECT pair_diff();
-- errors
SELECT session_stream.forget_customer(NULL);
SELECT session_stream.forget_customer(1, 'chat_pairs');
CREATE ROLE edits_stranger;
SET ROLE edits_stranger;
SELECT session_stream.forget_customer(8);
RESET ROLE;
DROP ROLE edits_stranger;

-- reset for the tests after this one
TRUNCATE session_stream.messages, session_stream.pair_sessions_closed,
         session_stream.pair_sessions_latest, session_stream.consumed_windows,
         session_stream.edits;
DROP TABLE chat, old_chat;
DROP FUNCTION customer_diff(), show_sessions(), pair_diff(), random_edits(int);
