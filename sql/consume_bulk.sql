-- consume_window() writes new results rows in bulk (bulk_insert.c) and
-- reads the stored keys in one ordered pass when a batch touches a large
-- share of them (results_begin_ordered()): both must behave as row-by-row
-- writes and per-key probes do -- columns users added get their
-- defaults, their AFTER ROW triggers see every new row, their CHECK
-- constraints hold, a BEFORE ROW trigger still changes the row -- and
-- the results must equal the replay, late messages included.
SET TimeZone = 'UTC';
SET datestyle = 'ISO';
CREATE TABLE bulk_src (a int NOT NULL, b int NOT NULL, ts timestamp NOT NULL,
                       direct boolean NOT NULL,
                       txid bigint NOT NULL DEFAULT session_stream.current_txid())
    WITH (autovacuum_enabled = false);   -- statistics only when we say
CREATE INDEX ON bulk_src USING brin (txid);
SELECT session_stream.create_results('bulk_sessions', 'customer');
CREATE TRIGGER bulk_src_sessions AFTER INSERT ON bulk_src FOR EACH ROW
    EXECUTE FUNCTION session_stream.track_sessions('customer',
        'agent=a', 'customer=b', 'ts=ts', 'from_agent=direct',
        'results=public.bulk_sessions');
ALTER TABLE bulk_src DISABLE TRIGGER bulk_src_sessions;

-- a column of the user's own on each table, and a log of every new row
ALTER TABLE bulk_sessions_closed ADD COLUMN note text DEFAULT 'added';
ALTER TABLE bulk_sessions_latest ADD COLUMN note text DEFAULT 'added';
CREATE TABLE bulk_log (tbl text, customer_id bigint, opened_at timestamptz, note text);
CREATE FUNCTION log_new_row() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO bulk_log VALUES (TG_ARGV[0], NEW.customer_id, NEW.opened_at, NEW.note);
    RETURN NULL;
END
$$;
CREATE TRIGGER log_closed AFTER INSERT ON bulk_sessions_closed FOR EACH ROW
    EXECUTE FUNCTION log_new_row('closed');
CREATE TRIGGER log_latest AFTER INSERT ON bulk_sessions_latest FOR EACH ROW
    EXECUTE FUNCTION log_new_row('latest');

CREATE FUNCTION bulk_differences() RETURNS bigint LANGUAGE sql AS $$
    SELECT count(*) FROM oracle.diff('customer',
        'SELECT a, b, ts AT TIME ZONE ''UTC'', direct FROM bulk_src',
        'public.bulk_sessions')
$$;
-- every stored row was logged as it was inserted, with its default
CREATE FUNCTION bulk_unlogged() RETURNS bigint LANGUAGE sql AS $$
    SELECT count(*) FROM (
        SELECT 'closed', customer_id, opened_at, note FROM bulk_sessions_closed
        EXCEPT
        SELECT tbl, customer_id, opened_at, note FROM bulk_log WHERE tbl = 'closed') d
$$;

-- 3,000 messages of 300 customers, 2,500 rows a call: the first call
-- writes into empty results, the next ones touch most stored keys.
SELECT setseed(0.17);
CREATE FUNCTION add_messages(n int, minutes int) RETURNS void LANGUAGE sql AS $$
    INSERT INTO bulk_src (a, b, ts, direct)
    SELECT 1 + (random() * 9)::int, 1 + (random() * 299)::int,
           timestamp '2024-05-01' + random() * make_interval(mins => minutes),
           random() < 0.5
      FROM generate_series(1, n)
$$;
SELECT add_messages(3000, 60);
-- no statistics yet: the window's array (batch.c) grows from 1,024 rows
SELECT reltuples < 0 AS no_statistics FROM pg_class WHERE oid = 'bulk_src'::regclass;
SELECT status, messages FROM session_stream.consume_window('customer', 'bulk_src');
SELECT bulk_differences(), bulk_unlogged();
SELECT count(*) FILTER (WHERE tbl = 'closed') AS closed_logged,
       count(*) FILTER (WHERE tbl = 'latest') AS latest_logged,
       (SELECT count(*) FROM bulk_sessions_closed) AS closed_rows,
       (SELECT count(*) FROM bulk_sessions_latest) AS latest_rows
  FROM bulk_log;
SELECT DISTINCT note FROM bulk_sessions_closed;
-- later messages, and late ones (the same hour again): most keys are
-- touched, late keys are rewound and replayed after the ordered pass
SELECT add_messages(2500, 120);
SELECT status, messages, keys_recomputed > 0 AS recomputed
  FROM session_stream.consume_window('customer', 'bulk_src');
SELECT bulk_differences(), bulk_unlogged();
-- a few keys only: probes
INSERT INTO bulk_src (a, b, ts, direct) VALUES
    (3, 7, '2024-05-01 05:00', false), (4, 7, '2024-05-01 05:01', true),
    (3, 400, '2024-05-01 05:00', false);
SELECT status, messages, sessions_opened, sessions_closed
  FROM session_stream.consume_window('customer', 'bulk_src');
SELECT bulk_differences(), bulk_unlogged();

-- A CHECK constraint of the user's holds for rows held back: the call
-- fails at once and consumes nothing.
ALTER TABLE bulk_sessions_closed ADD CONSTRAINT quick_answers
    CHECK (answered_at - opened_at < interval '10 seconds') NOT VALID;
SELECT add_messages(2500, 180);
SELECT status, messages FROM session_stream.consume_window('customer', 'bulk_src');
ALTER TABLE bulk_sessions_closed DROP CONSTRAINT quick_answers;

-- A BEFORE ROW trigger may change rows: they are written one by one.
CREATE FUNCTION mark_row() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.note := 'before trigger';
    RETURN NEW;
END
$$;
CREATE TRIGGER mark_closed BEFORE INSERT ON bulk_sessions_closed FOR EACH ROW
    EXECUTE FUNCTION mark_row();
SELECT status, messages FROM session_stream.consume_window('customer', 'bulk_src');
SELECT bulk_differences(), bulk_unlogged();
SELECT note, count(*) > 0 AS some FROM bulk_sessions_closed GROUP BY note ORDER BY note;

-- With statistics the window's array is sized up front from the source's
-- estimate of the rows in range, at most twice max_messages: the next
-- 5,000 rows get room for about all of the table's rows (they share a
-- BRIN range), then, with max_messages 2,000, room for 4,000, and the one
-- transaction of 5,000 is taken whole.  Results equal the replay each way.
ANALYZE bulk_src;
SELECT add_messages(5000, 240);
SELECT status, messages FROM session_stream.consume_window('customer', 'bulk_src');
SELECT bulk_differences(), bulk_unlogged();
ANALYZE bulk_src;
SELECT add_messages(5000, 240);
SELECT status, messages FROM session_stream.consume_window('customer', 'bulk_src', 2000);
SELECT bulk_differences(), bulk_unlogged();

DROP TABLE bulk_src, bulk_log;
DROP VIEW bulk_sessions;
DROP TABLE bulk_sessions_closed, bulk_sessions_latest;
DROP FUNCTION log_new_row(), mark_row(), bulk_differences(), bulk_unlogged(), add_messages(int, int);

