-- The continuous consumer's SQL interface: start_consumer(),
-- stop_consumer(), session_stream.consumers and consumer_stats' worker
-- columns; the worker consumes, records an error and recovers, and exits
-- when nothing is left.
SET TimeZone = 'UTC';
SET datestyle = 'ISO';

-- Polls a condition up to 20 seconds; pg_stat_activity is re-read each time.
CREATE FUNCTION wait_for(condition text) RETURNS boolean
LANGUAGE plpgsql AS $$
DECLARE
    ok boolean;
BEGIN
    FOR i IN 1 .. 400 LOOP
        PERFORM pg_stat_clear_snapshot();
        EXECUTE condition INTO ok;
        IF ok THEN
            RETURN true;
        END IF;
        PERFORM pg_sleep(0.05);
    END LOOP;
    RETURN false;
END
$$;

CREATE TABLE consumer_chat (
    agent_id    int         NOT NULL,
    customer_id int         NOT NULL,
    sent_at     timestamptz NOT NULL,
    from_agent  boolean     NOT NULL,
    txid        bigint      NOT NULL DEFAULT session_stream.current_txid());
CREATE INDEX ON consumer_chat USING brin (txid);
SELECT session_stream.create_results('public.consumer_chat_sessions', 'customer');
CREATE TRIGGER consumer_chat_sessions AFTER INSERT ON consumer_chat FOR EACH ROW
    EXECUTE FUNCTION session_stream.track_sessions('customer',
        'results=public.consumer_chat_sessions');
SELECT session_stream.create_results('public.consumer_chat_pairs', 'pair');
CREATE TRIGGER consumer_chat_pairs AFTER INSERT ON consumer_chat FOR EACH ROW
    EXECUTE FUNCTION session_stream.track_sessions('pair',
        'results=public.consumer_chat_pairs');
ALTER TABLE consumer_chat DISABLE TRIGGER consumer_chat_pairs;

-- The realtime trigger is on: refused with consume_window()'s error.
SELECT session_stream.start_consumer('consumer_chat');
SELECT * FROM session_stream.consume_window('customer', 'consumer_chat');
SELECT count(*) FROM session_stream.consumers;

-- Bad arguments.
SELECT session_stream.start_consumer('consumer_chat', 'agent');
SELECT session_stream.start_consumer('consumer_chat', NULL);
SELECT session_stream.start_consumer(NULL);
SELECT session_stream.start_consumer('consumer_chat', 'pair', NULL);
SELECT session_stream.start_consumer('consumer_chat', 'pair', '0');
SELECT session_stream.start_consumer('consumer_chat', 'pair', '-1 second');
SELECT session_stream.start_consumer('consumer_chat', 'pair', '2 days');
SELECT session_stream.start_consumer('consumer_chat', 'pair', '1 mon');
SELECT session_stream.start_consumer('pg_class', 'pair');
CREATE TABLE no_txid (agent_id int, customer_id int, sent_at timestamptz, from_agent boolean);
SELECT session_stream.start_consumer('no_txid', 'pair');
SELECT session_stream.stop_consumer('consumer_chat');
SELECT session_stream.stop_consumer('consumer_chat', 'group');
SELECT session_stream.stop_consumer(NULL);
SELECT session_stream.stop_consumer('consumer_chat', NULL);

-- Same permissions as consume_window(): a role that may not read the source.
CREATE ROLE consumer_nobody;
SET ROLE consumer_nobody;
SELECT session_stream.start_consumer('consumer_chat', 'pair');
RESET ROLE;
SELECT count(*) FROM session_stream.consumers;

-- Deferred: the worker consumes what is there and what comes.
ALTER TABLE consumer_chat DISABLE TRIGGER consumer_chat_sessions;
INSERT INTO consumer_chat VALUES
    (10, 2, '2018-08-15 10:24:58', true),
    (25, 2, '2018-08-15 10:25:00', false),
    (62, 3, '2018-08-15 10:25:01', false);
SELECT session_stream.start_consumer('consumer_chat', 'customer', '50 milliseconds');
SELECT source, mode, every, role = current_user::regrole AS by_me, failures, last_error
  FROM session_stream.consumers;
SELECT wait_for($$SELECT count(*) = 1 FROM pg_stat_activity
                   WHERE backend_type = 'session_stream consumer'
                     AND datname = current_database()$$) AS worker_runs;
SELECT wait_for($$SELECT messages_consumed = 3 FROM session_stream.consumer_stats
                   WHERE source = 'consumer_chat'::regclass$$) AS consumed;
INSERT INTO consumer_chat VALUES (45, 2, '2018-08-15 10:25:04', true);
INSERT INTO consumer_chat VALUES (46, 3, '2018-08-15 10:25:02', true);
SELECT wait_for($$SELECT messages_consumed = 5 FROM session_stream.consumer_stats
                   WHERE source = 'consumer_chat'::regclass$$) AS consumed;
SELECT * FROM consumer_chat_sessions ORDER BY customer_id, opened_at;
SELECT count(*) AS differences FROM oracle.diff('customer',
    'SELECT agent_id, customer_id, sent_at, from_agent FROM consumer_chat',
    'public.consumer_chat_sessions');
SELECT source, mode, windows > 0 AS has_windows, messages_consumed, messages_pending,
       lag, worker_pid IS NOT NULL AS has_pid,
       worker_state IN ('consuming', 'sleeping') AS worker_up, last_error, last_error_at
  FROM session_stream.consumer_stats WHERE source = 'consumer_chat'::regclass;
-- A manual call while the worker runs: consumed, empty or busy, no error.
SELECT status IN ('consumed', 'empty', 'busy') AS fine
  FROM session_stream.consume_window('customer', 'consumer_chat');

-- Starting it again changes its interval; a second mode shares the worker.
SELECT session_stream.start_consumer('consumer_chat', 'customer', '20 milliseconds');
SELECT session_stream.start_consumer('consumer_chat', 'pair');
SELECT source, mode, every FROM session_stream.consumers ORDER BY mode;
SELECT wait_for($$SELECT count(*) = 1 FROM pg_stat_activity
                   WHERE backend_type = 'session_stream consumer'
                     AND datname = current_database()$$) AS one_worker;
SELECT wait_for($$SELECT messages_consumed = 5 FROM session_stream.consumer_stats
                   WHERE source = 'consumer_chat'::regclass AND mode = 'pair'$$) AS pair_consumed;
SELECT count(*) AS differences FROM oracle.diff('pair',
    'SELECT agent_id, customer_id, sent_at, from_agent FROM consumer_chat',
    'public.consumer_chat_pairs');
SELECT session_stream.stop_consumer('consumer_chat', 'pair');

-- A batch that fails: logged, stored, retried with backoff; then recovers.
ALTER TABLE consumer_chat ENABLE TRIGGER consumer_chat_sessions;
SELECT wait_for($$SELECT failures > 0 FROM session_stream.consumers
                   WHERE source = 'consumer_chat'::regclass$$) AS failed;
SELECT worker_state, last_error, last_error_at IS NOT NULL AS has_time
  FROM session_stream.consumer_stats
 WHERE source = 'consumer_chat'::regclass AND mode = 'customer';
ALTER TABLE consumer_chat DISABLE TRIGGER consumer_chat_sessions;
INSERT INTO consumer_chat VALUES (62, 4, '2018-08-15 10:26:00', false);
SELECT wait_for($$SELECT messages_consumed = 6 AND worker_state IN ('consuming', 'sleeping')
                   FROM session_stream.consumer_stats
                   WHERE source = 'consumer_chat'::regclass AND mode = 'customer'$$) AS recovered;
-- the last error stays for the record
SELECT failures, last_error IS NOT NULL AS kept FROM session_stream.consumers;

-- Stopping the last consumer ends the worker.
SELECT session_stream.stop_consumer('consumer_chat');
SELECT count(*) FROM session_stream.consumers;
SELECT wait_for($$SELECT count(*) = 0 FROM pg_stat_activity
                   WHERE backend_type = 'session_stream consumer'$$) AS worker_gone;
SELECT source, mode, worker_pid, worker_state
  FROM session_stream.consumer_stats WHERE source = 'consumer_chat'::regclass ORDER BY mode;
SELECT session_stream.stop_consumer('consumer_chat');

DROP TABLE consumer_chat, no_txid;
DROP ROLE consumer_nobody;
DROP FUNCTION wait_for(text);
