-- Keys with many index entries.  The trigger looks a key up with a short
-- btree probe and falls back to an index scan when the key has more entries
-- than the probe takes or they may go on past its leaf page; dead entries
-- are skipped.  Every way must give the independent replay's sessions.
SET TimeZone = 'UTC';
SET datestyle = 'ISO';

CREATE TABLE chat (
    a      int       NOT NULL,
    b      int       NOT NULL,
    ts     timestamp NOT NULL,
    direct boolean   NOT NULL
);
CREATE INDEX ON chat (b, ts);
SELECT session_stream.create_results('chat_sessions', 'customer');
CREATE TRIGGER chat_sessions AFTER INSERT ON chat FOR EACH ROW
    EXECUTE FUNCTION session_stream.track_sessions(
        'customer', 'agent=a', 'customer=b', 'ts=ts', 'from_agent=direct',
        'results=public.chat_sessions');

-- Differences between a table's results set (named after it) and the
-- independent replay of its messages.
CREATE FUNCTION check_sessions(source text) RETURNS TABLE (differences bigint)
LANGUAGE sql AS $$
    SELECT count(*) FROM oracle.diff('customer',
        format('SELECT a, b, ts AT TIME ZONE ''UTC'', direct FROM %I', source),
        format('public.%I', source || '_sessions'))
$$;

-- Insert rows into a table one statement each, in the order given.
CREATE PROCEDURE insert_one_by_one(query text, into_table text DEFAULT 'chat')
LANGUAGE plpgsql AS $$
DECLARE
    m record;
BEGIN
    FOR m IN EXECUTE query LOOP
        EXECUTE format('INSERT INTO %I (a, b, ts, direct) VALUES ($1, $2, $3, $4)',
                       into_table)
          USING m.a, m.b, m.ts, m.direct;
    END LOOP;
END
$$;

-- Customer 1 asks 31 times in a row, then a reply comes late, between the
-- first two questions: the look for later messages finds 30 of them.
CALL insert_one_by_one($$
    SELECT 0 AS a, 1 AS b,
           '2024-05-01 10:00:00'::timestamp + i * interval '1 second' AS ts,
           false AS direct
      FROM generate_series(0, 30) i
$$);
INSERT INTO chat VALUES (4, 1, '2024-05-01 10:00:00.5', true);
SELECT * FROM chat_sessions ORDER BY opened_at;
SELECT * FROM check_sessions('chat');

-- Many messages of a few customers in random order, one statement each in
-- one transaction: the old versions of the keys' latest rows cannot be
-- pruned yet, so updates move them to other pages and leave dead index
-- entries behind, more than the probe takes for the busiest keys.
SELECT setseed(0.42);
CALL insert_one_by_one($$
    SELECT (random() * 5)::int AS a, 10 + (random() * 4)::int AS b,
           '2024-05-02 09:00:00'::timestamp
               + (random() * 3600)::int * interval '1 second' AS ts,
           random() < 0.5 AS direct
      FROM generate_series(1, 3000)
$$);
SELECT count(*) > 500 AS many_sessions FROM chat_sessions;
SELECT * FROM check_sessions('chat');

-- Customers 100 to 199: a question and 15 more, then a reply that comes
-- before up to 15 of them: the probe finds them next to the reply.
CALL insert_one_by_one($$
    SELECT 0 AS a, c AS b,
           '2024-05-03 09:00:00'::timestamp + i * interval '1 second' AS ts,
           false AS direct
      FROM generate_series(100, 199) c, generate_series(0, 15) i
     ORDER BY c, i
$$);
CALL insert_one_by_one($$
    SELECT 5 AS a, c AS b,
           '2024-05-03 09:00:00.5'::timestamp
               + (15 - c % 15) * interval '1 second' AS ts,
           true AS direct
      FROM generate_series(100, 199) c
$$);
SELECT count(*) AS answered FROM chat_sessions
 WHERE customer_id >= 100 AND answered_at IS NOT NULL;
SELECT * FROM check_sessions('chat');

-- A source index with a wide third column holds a few entries per leaf
-- page, so a customer's later messages mostly continue on the next leaf.
CREATE TABLE wide_chat (LIKE chat, note text NOT NULL DEFAULT repeat('x', 400));
CREATE INDEX ON wide_chat (b, ts, note);
SELECT session_stream.create_results('wide_chat_sessions', 'customer');
CREATE TRIGGER wide_chat_sessions AFTER INSERT ON wide_chat FOR EACH ROW
    EXECUTE FUNCTION session_stream.track_sessions(
        'customer', 'agent=a', 'customer=b', 'ts=ts', 'from_agent=direct',
        'results=public.wide_chat_sessions');
SELECT setseed(0.7);
CALL insert_one_by_one($$
    SELECT (random() * 5)::int AS a, (random() * 2)::int AS b,
           '2024-05-04 09:00:00'::timestamp
               + (random() * 600)::int * interval '1 second' AS ts,
           random() < 0.5 AS direct
      FROM generate_series(1, 600)
$$, 'wide_chat');
-- Customers 100 to 199 ask 30 questions in order, then get a reply that
-- comes before some of them: the later questions the reply must see are
-- often all on the leaves after its own.
CALL insert_one_by_one($$
    SELECT 0 AS a, c AS b,
           '2024-05-05 09:00:00'::timestamp + i * interval '1 second' AS ts,
           false AS direct
      FROM generate_series(100, 199) c, generate_series(0, 29) i
     ORDER BY c, i
$$, 'wide_chat');
CALL insert_one_by_one($$
    SELECT 5 AS a, c AS b,
           '2024-05-05 09:00:00.5'::timestamp + (c * 7 % 29) * interval '1 second' AS ts,
           true AS direct
      FROM generate_series(100, 199) c
$$, 'wide_chat');
SELECT * FROM check_sessions('wide_chat');

-- An index of the user's own on opened_at makes every opening of a session
-- a non-HOT update: each adds another primary key entry for its key.
CREATE INDEX ON chat_sessions_latest (opened_at);

-- Customer 2: 20 questions each answered, in order, so its latest row
-- gets an index entry per session; then late messages that rewind it.
CALL insert_one_by_one($$
    SELECT CASE WHEN i % 2 = 1 THEN 7 ELSE 0 END AS a, 2 AS b,
           '2024-05-01 11:00:00'::timestamp + i * interval '1 minute' AS ts,
           i % 2 = 1 AS direct
      FROM generate_series(0, 39) i
$$);
SELECT count(*) AS sessions FROM chat_sessions WHERE customer_id = 2;
INSERT INTO chat VALUES (0, 2, '2024-05-01 11:00:30', false);
INSERT INTO chat VALUES (8, 2, '2024-05-01 11:20:30', true);
INSERT INTO chat VALUES (0, 2, '2024-05-01 11:39:30', false);
SELECT count(*) AS sessions FROM chat_sessions WHERE customer_id = 2;
SELECT * FROM check_sessions('chat');

DROP TABLE chat, wide_chat;
DROP FUNCTION check_sessions(text);
DROP PROCEDURE insert_one_by_one(text, text);
DROP VIEW chat_sessions, wide_chat_sessions;
DROP TABLE chat_sessions_closed, chat_sessions_latest,
           wide_chat_sessions_closed, wide_chat_sessions_latest;
