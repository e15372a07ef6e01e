-- Customer mode on session_stream.messages: the trigger CREATE EXTENSION
-- attached keeps session_stream.sessions exact however rows arrive.
SET TimeZone = 'UTC';
SET datestyle = 'ISO';

CREATE FUNCTION check_customer_sessions() RETURNS TABLE (differences bigint)
LANGUAGE sql AS $$
    SELECT count(*) FROM oracle.diff('customer',
        'SELECT agent_id, customer_id, sent_at, from_agent FROM session_stream.messages',
        'session_stream.sessions')
$$;

CREATE FUNCTION reset_messages() RETURNS void LANGUAGE sql AS $$
    TRUNCATE session_stream.messages, session_stream.sessions_closed, session_stream.sessions_latest;
$$;

-- The seeds' verification sample: customer 2, four messages, one session,
-- answered by agent 45 after 3.82 s.  Inserted in event-time order:
INSERT INTO session_stream.messages VALUES
    (10, 2, '2018-08-15 10:24:58.538558', true);
INSERT INTO session_stream.messages VALUES
    (25, 2, '2018-08-15 10:25:00.585426', false);
INSERT INTO session_stream.messages VALUES
    (62, 2, '2018-08-15 10:25:04.2633', false);
INSERT INTO session_stream.messages VALUES
    (45, 2, '2018-08-15 10:25:04.406764', true);
SELECT *, answered_at - opened_at AS response_time FROM session_stream.sessions;

-- The same four in reverse order, one row per statement: still one session.
SELECT reset_messages();
INSERT INTO session_stream.messages VALUES (45, 2, '2018-08-15 10:25:04.406764', true);
SELECT * FROM session_stream.sessions;
INSERT INTO session_stream.messages VALUES (62, 2, '2018-08-15 10:25:04.2633', false);
SELECT * FROM session_stream.sessions;
INSERT INTO session_stream.messages VALUES (25, 2, '2018-08-15 10:25:00.585426', false);
SELECT * FROM session_stream.sessions;
INSERT INTO session_stream.messages VALUES (10, 2, '2018-08-15 10:24:58.538558', true);
SELECT * FROM session_stream.sessions;
SELECT * FROM check_customer_sessions();

-- A reply before any question changes nothing.
SELECT reset_messages();
INSERT INTO session_stream.messages VALUES (1, 7, '2024-01-01 09:00:00', true);
SELECT count(*) AS sessions FROM session_stream.sessions;

-- Equal timestamps: the customer message comes first, so the reply at the
-- same instant answers it (response time 0); of two replies at one instant
-- the lower agent id is the responder.
INSERT INTO session_stream.messages VALUES (9, 7, '2024-01-01 09:00:05', true);
INSERT INTO session_stream.messages VALUES (3, 7, '2024-01-01 09:00:05', true);
INSERT INTO session_stream.messages VALUES (5, 7, '2024-01-01 09:00:05', false);
SELECT *, answered_at - opened_at AS response_time FROM session_stream.sessions;
SELECT * FROM check_customer_sessions();

-- A late question splits an answered session: the late message at 09:00:10
-- opens a session that the reply at 09:00:20 answers; the question at
-- 09:00:15 stays inside it and a later question opens a new one.
SELECT reset_messages();
INSERT INTO session_stream.messages VALUES
    (1, 8, '2024-01-01 09:00:15', false),
    (2, 8, '2024-01-01 09:00:20', true),
    (1, 8, '2024-01-01 09:00:30', false);
SELECT * FROM session_stream.sessions ORDER BY opened_at;
INSERT INTO session_stream.messages VALUES (4, 8, '2024-01-01 09:00:10', false);
SELECT * FROM session_stream.sessions ORDER BY opened_at;
-- A late reply answers the session it falls in and lets the next question
-- open a session of its own.
INSERT INTO session_stream.messages VALUES (3, 8, '2024-01-01 09:00:12', true);
SELECT * FROM session_stream.sessions ORDER BY opened_at;
SELECT * FROM check_customer_sessions();

-- A multi-row INSERT out of order, and COPY: AFTER ROW triggers fire once
-- all rows are in the table.
SELECT reset_messages();
INSERT INTO session_stream.messages VALUES
    (1, 9, '2024-01-01 10:00:09', true),
    (1, 9, '2024-01-01 10:00:01', false),
    (2, 9, '2024-01-01 10:00:05', true),
    (1, 9, '2024-01-01 10:00:07', false),
    (2, 9, '2024-01-01 10:00:03', false);
SELECT * FROM session_stream.sessions ORDER BY opened_at;
COPY session_stream.messages (agent_id, customer_id, sent_at, from_agent) FROM stdin;
4	9	2024-01-01 10:00:12	t
4	9	2024-01-01 10:00:11	f
4	9	2024-01-01 10:00:04	t
\.
SELECT * FROM session_stream.sessions ORDER BY opened_at;
SELECT * FROM check_customer_sessions();

-- Randomised: 3000 messages of 40 customers and 6 agents inserted in random
-- order, some single rows, some in multi-row statements, some inside
-- transactions that roll back.
SELECT reset_messages();
SELECT setseed(0.42);
CREATE TEMP TABLE random_messages AS
SELECT (1 + floor(random() * 6))::int AS agent_id,
       (1 + floor(random() * 40))::int AS customer_id,
       timestamptz '2024-02-01' + floor(random() * 600) * interval '1 second' AS sent_at,
       random() < 0.5 AS from_agent,
       random() AS arrival,
       n
  FROM generate_series(1, 3000) n;
DO $$
DECLARE r record;
BEGIN
    FOR r IN SELECT * FROM random_messages WHERE n <= 1500 ORDER BY arrival LOOP
        INSERT INTO session_stream.messages
        VALUES (r.agent_id, r.customer_id, r.sent_at, r.from_agent);
    END LOOP;
END $$;
INSERT INTO session_stream.messages
SELECT agent_id, customer_id, sent_at, from_agent
  FROM random_messages WHERE n > 1500 ORDER BY arrival;
BEGIN;
INSERT INTO session_stream.messages
SELECT agent_id, customer_id, sent_at + interval '1 ms', NOT from_agent
  FROM random_messages WHERE n % 7 = 0;
ROLLBACK;
SELECT count(*) AS messages FROM session_stream.messages;
SELECT count(*) > 500 AS many_sessions FROM session_stream.sessions;
SELECT * FROM check_customer_sessions();

-- The check itself can fail: one wrong answer shows as one missing and one
-- extra session.
BEGIN;
UPDATE session_stream.sessions_closed SET answered_at = answered_at + interval '1 ms'
 WHERE ctid = (SELECT min(ctid) FROM session_stream.sessions_closed);
SELECT * FROM check_customer_sessions();
ROLLBACK;
