-- Monitoring (consumer_stats, pending_messages) and retention
-- (purge_messages) of deferred mode.
SET TimeZone = 'UTC';
SET datestyle = 'ISO';
TRUNCATE session_stream.messages, session_stream.sessions_closed, session_stream.sessions_latest,
         session_stream.consumed_windows;
ALTER TABLE session_stream.messages DISABLE TRIGGER track_sessions_customer;
-- one clock for the whole file, so that differences are exact
SELECT now() AS t0 \gset

-- Nothing consumed yet: no consumer, and purging is refused.
SELECT count(*) FROM session_stream.consumer_stats;
SELECT session_stream.purge_messages();

-- Old messages (two days ago) and recent ones, consumed.
INSERT INTO session_stream.messages (agent_id, customer_id, sent_at, from_agent) VALUES
    (1, 1, (:'t0'::timestamptz) - interval '2 days 10 s', false),
    (1, 1, (:'t0'::timestamptz) - interval '2 days', true),
    (1, 2, (:'t0'::timestamptz) - interval '2 days 20 s', false),
    (1, 1, (:'t0'::timestamptz) - interval '1 min', false),
    (2, 1, (:'t0'::timestamptz) - interval '50 s', true);
SELECT status, messages FROM session_stream.consume_window();
SELECT source, mode, results, windows, messages_consumed, messages_pending, lag
  FROM session_stream.consumer_stats;

-- Two more, not consumed yet: pending, and the lag is the older one's age.
INSERT INTO session_stream.messages (agent_id, customer_id, sent_at, from_agent) VALUES
    (1, 3, (:'t0'::timestamptz) - interval '30 s', false), (1, 3, (:'t0'::timestamptz) - interval '10 s', false);
SELECT pending, oldest_sent_at = (:'t0'::timestamptz) - interval '30 s' AS oldest_is_30s_old
  FROM session_stream.pending_messages('customer', 'session_stream.messages');
SELECT messages_pending, lag >= interval '30 s' AS lag_at_least_30s
  FROM session_stream.consumer_stats;
SELECT status, messages FROM session_stream.consume_window();
SELECT messages_pending, lag FROM session_stream.consumer_stats;

-- Purge what is older than a day: the three old messages go.
SELECT session_stream.purge_messages(keep => interval '1 day');
SELECT count(*) AS messages_left FROM session_stream.messages;
SELECT purged_before < (:'t0'::timestamptz) - interval '1 day' AS horizon_a_day_ago, messages
  FROM session_stream.purges;

-- A reply to customer 2's session, opened in the purged period, still
-- lands: the open session is in the results, nothing needs replaying.
SELECT customer_id, responder_id, answered_at - opened_at AS response
  FROM session_stream.sessions ORDER BY customer_id, opened_at;
INSERT INTO session_stream.messages (agent_id, customer_id, sent_at, from_agent) VALUES
    (9, 2, (:'t0'::timestamptz) - interval '2 days 15 s', true);
SELECT status, messages, late_messages, late_beyond_retention
  FROM session_stream.consume_window();
-- A late question before that reply would need customer 2's purged first
-- question to be replayed: it is counted, and the sessions stay as they are.
INSERT INTO session_stream.messages (agent_id, customer_id, sent_at, from_agent) VALUES
    (9, 2, (:'t0'::timestamptz) - interval '2 days 18 s', false);
SELECT status, messages, late_messages, late_beyond_retention
  FROM session_stream.consume_window();
SELECT customer_id, responder_id, answered_at - opened_at AS response
  FROM session_stream.sessions ORDER BY customer_id, opened_at;
-- A late reply after the horizon is placed exactly, although the session
-- before it was answered in the purged period: agent 7 answered first.
INSERT INTO session_stream.messages (agent_id, customer_id, sent_at, from_agent) VALUES
    (7, 1, (:'t0'::timestamptz) - interval '55 s', true);
SELECT status, messages, late_messages, late_beyond_retention
  FROM session_stream.consume_window();
SELECT customer_id, responder_id, answered_at - opened_at AS response
  FROM session_stream.sessions ORDER BY customer_id, opened_at;
SELECT late_messages, late_beyond_retention FROM session_stream.consumer_stats;

-- Monitoring keeps working when the realtime trigger is turned back on.
ALTER TABLE session_stream.messages ENABLE TRIGGER track_sessions_customer;
SELECT source, mode, messages_pending FROM session_stream.consumer_stats;
TRUNCATE session_stream.messages, session_stream.sessions_closed, session_stream.sessions_latest,
         session_stream.consumed_windows, session_stream.purges;
