-- Deferred mode: consume_window() on the default stream and on the seeds'
-- table, compared with the independent replay.
SET TimeZone = 'UTC';
SET datestyle = 'ISO';
TRUNCATE session_stream.messages, session_stream.sessions_closed, session_stream.sessions_latest,
         session_stream.pair_sessions_closed, session_stream.pair_sessions_latest;

-- The realtime trigger for customer mode is on: consuming would count twice.
SELECT * FROM session_stream.consume_window();
ALTER TABLE session_stream.messages DISABLE TRIGGER track_sessions_customer;

CREATE FUNCTION check_consumed(mode text) RETURNS TABLE (differences bigint)
LANGUAGE sql AS $$
    SELECT count(*) FROM oracle.diff(mode,
        'SELECT agent_id, customer_id, sent_at, from_agent FROM session_stream.messages',
        CASE mode WHEN 'pair' THEN 'session_stream.pair_sessions'
                  ELSE 'session_stream.sessions' END)
$$;

-- Nothing yet.
SELECT status, messages FROM session_stream.consume_window();

-- The seeds' sample, then a call; inserts alone change no session.
INSERT INTO session_stream.messages VALUES
    (10, 2, '2018-08-15 10:24:58.538558', true),
    (25, 2, '2018-08-15 10:25:00.585426', false),
    (62, 2, '2018-08-15 10:25:04.2633', false);
SELECT count(*) AS sessions_before FROM session_stream.sessions;
SELECT status, messages, sessions_opened, sessions_closed, keys_recomputed,
       late_messages, first_sent_at, last_sent_at
  FROM session_stream.consume_window();
SELECT * FROM session_stream.sessions;
-- The reply, then a late question (an earlier time) in a later window.
INSERT INTO session_stream.messages VALUES (45, 2, '2018-08-15 10:25:04.406764', true);
SELECT status, messages, sessions_opened, sessions_closed, keys_recomputed, late_messages
  FROM session_stream.consume_window();
INSERT INTO session_stream.messages VALUES (7, 2, '2018-08-15 10:24:59', false);
SELECT status, messages, sessions_opened, sessions_closed, keys_recomputed, late_messages
  FROM session_stream.consume_window();
SELECT * FROM session_stream.sessions;
SELECT * FROM check_consumed('customer');
-- Calling again consumes nothing: each message exactly once.
SELECT status, messages FROM session_stream.consume_window();
SELECT source, mode, results, messages, late_messages, first_sent_at, last_sent_at
  FROM session_stream.consumed_windows ORDER BY window_id;

-- A late message that changed nothing in an earlier window still counts:
-- q@:10 opens, q@:30 changes nothing; the late reply at :20 closes the
-- first session and lets q@:30 open a second one.
INSERT INTO session_stream.messages VALUES
    (1, 3, '2024-01-01 09:00:10', false), (1, 3, '2024-01-01 09:00:30', false);
SELECT status, messages FROM session_stream.consume_window();
INSERT INTO session_stream.messages VALUES (2, 3, '2024-01-01 09:00:20', true);
SELECT status, messages, keys_recomputed, late_messages FROM session_stream.consume_window();
SELECT * FROM session_stream.sessions WHERE customer_id = 3 ORDER BY opened_at;
SELECT * FROM check_consumed('customer');

-- max_messages bounds a call: whole transactions, lowest ids first, the
-- rest is left for the next call.  Six transactions of 50 rows:
SELECT setseed(0.5);
\set add50 'INSERT INTO session_stream.messages (agent_id, customer_id, sent_at, from_agent) SELECT 1 + (random() * 4)::int, 100 + (random() * 20)::int, timestamptz \'2024-03-01\' + random() * interval \'10 min\', random() < 0.5 FROM generate_series(1, 50)'
:add50;
:add50;
:add50;
:add50;
:add50;
:add50;
SELECT status, messages FROM session_stream.consume_window(max_messages => 120);
SELECT status, messages FROM session_stream.consume_window(max_messages => 120);
SELECT status, messages FROM session_stream.consume_window(max_messages => 120);
SELECT * FROM check_consumed('customer');

-- Rows of a transaction still open are not consumed, whatever their time;
-- rows that roll back never are.
BEGIN;
INSERT INTO session_stream.messages VALUES (1, 200, '2020-01-01 00:00:00', false);
SELECT status, messages FROM session_stream.consume_window();
ROLLBACK;
SELECT status, messages FROM session_stream.consume_window();

-- Pair mode on the seeds' table: the mapping comes from a disabled
-- track_sessions() trigger, so it is written once.
CREATE TABLE feed_tbl (a int NOT NULL, b int NOT NULL, ts timestamp NOT NULL,
                       direct boolean NOT NULL,
                       txid bigint NOT NULL DEFAULT session_stream.current_txid());
CREATE INDEX ON feed_tbl (ts);
CREATE INDEX ON feed_tbl USING brin (txid);
CREATE TRIGGER feed_tbl_sessions AFTER INSERT ON feed_tbl FOR EACH ROW
    EXECUTE FUNCTION session_stream.track_sessions(
        'pair', 'agent=a', 'customer=b', 'ts=ts', 'from_agent=direct');
SELECT * FROM session_stream.consume_window('pair', 'feed_tbl');
ALTER TABLE feed_tbl DISABLE TRIGGER feed_tbl_sessions;
SELECT setseed(0.25);
INSERT INTO feed_tbl (a, b, ts, direct)
SELECT 1 + (random() * 4)::int, 1 + (random() * 30)::int,
       timestamp '2024-04-01' + random() * interval '15 min', random() < 0.5
  FROM generate_series(1, 1500);
SELECT status, messages > 0 AS consumed FROM session_stream.consume_window('pair', 'feed_tbl');
INSERT INTO feed_tbl (a, b, ts, direct)
SELECT 1 + (random() * 4)::int, 1 + (random() * 30)::int,
       timestamp '2024-04-01' + random() * interval '15 min', random() < 0.5
  FROM generate_series(1, 1500);
SELECT status, messages, keys_recomputed > 0 AS recomputed
  FROM session_stream.consume_window('pair', 'feed_tbl');
SELECT count(*) FROM oracle.diff('pair',
    'SELECT a, b, ts AT TIME ZONE ''UTC'', direct FROM feed_tbl',
    'session_stream.pair_sessions');

-- Errors.
SELECT * FROM session_stream.consume_window('agent');
SELECT * FROM session_stream.consume_window(NULL);
SELECT * FROM session_stream.consume_window('customer', NULL);
SELECT * FROM session_stream.consume_window(max_messages => 0);
CREATE TABLE no_txid (agent_id int, customer_id int, sent_at timestamptz,
                      from_agent boolean);
CREATE INDEX ON no_txid (customer_id, sent_at);
SELECT * FROM session_stream.consume_window('customer', 'no_txid');
DROP TABLE no_txid;

ALTER TABLE session_stream.messages ENABLE TRIGGER track_sessions_customer;
