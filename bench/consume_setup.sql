-- The consume workload: 5M messages, 100 agents x 1M customers, times
-- increasing as if written by clock_timestamp(), 20 us apart; the last 1M
-- ("the batch") is what each timed call consumes.  Two states:
--   first:  results empty, the source holds the batch only;
--   steady: the earlier 4M consumed before (4 calls of 1M), the batch on
--           top; the seeds' tbl_result holds the earlier sessions.
-- Reference sessions come from the expert's window query
-- (consume_reference.sql) over expert_messages.
SET client_min_messages = warning;
DROP TABLE IF EXISTS batch_rows, expert_messages, first_reference,
    steady_reference, earlier_reference, window_plain, window_unique,
    tbl, tbl_mid, tbl_result, deferred_first, deferred_tbl CASCADE;
RESET client_min_messages;
CREATE TABLE batch_rows AS
SELECT n, 1 + (random() * 99)::int AS a, 1 + (random() * 999999)::int AS b,
       timestamp '2024-06-01' + n * interval '20 us' AS ts,
       random() < 0.5 AS direct
  FROM generate_series(1, 5000000) n;

-- (w) the expert's table and the reference sessions of each state
CREATE TABLE expert_messages (a int NOT NULL, b int NOT NULL,
                              ts timestamp NOT NULL, direct boolean NOT NULL);
\ir consume_reference.sql
INSERT INTO expert_messages SELECT a, b, ts, direct FROM batch_rows WHERE n <= 4000000;
CREATE TABLE earlier_reference AS SELECT * FROM reference_sessions;
TRUNCATE expert_messages;
INSERT INTO expert_messages SELECT a, b, ts, direct FROM batch_rows;
CREATE TABLE steady_reference AS SELECT * FROM reference_sessions;
TRUNCATE expert_messages;
INSERT INTO expert_messages SELECT a, b, ts, direct FROM batch_rows WHERE n > 4000000;
CREATE TABLE first_reference AS SELECT * FROM reference_sessions;
-- where the expert's statement writes: a plain table, and one with at
-- most one open session per customer
CREATE TABLE window_plain (customer_id int NOT NULL, opened_at timestamp NOT NULL,
                           responder_id int, answered_at timestamp);
CREATE TABLE window_unique (LIKE window_plain);
CREATE UNIQUE INDEX window_unique_one_open ON window_unique (customer_id)
    WHERE answered_at IS NULL;

-- (s) the seeds' method: read and burn tbl into tbl_mid, whose trigger
-- computes customer-mode sessions into tbl_result.
CREATE TABLE tbl (a int NOT NULL, b int NOT NULL, ts timestamp NOT NULL,
                  direct boolean NOT NULL);
CREATE INDEX tbl_ts_idx ON tbl (ts);
INSERT INTO tbl SELECT a, b, ts, direct FROM batch_rows WHERE n > 4000000;
CREATE TABLE tbl_result (
    b    int NOT NULL,      -- customer
    b_ts timestamp,         -- session opened
    a    int DEFAULT -1,    -- responder, -1 while open
    a_ts timestamp          -- answered
);
ALTER TABLE tbl_result ADD CONSTRAINT tbl_result_one_open
    EXCLUDE (b WITH =) WHERE (a = -1);
CREATE TABLE tbl_mid (a int NOT NULL, b int NOT NULL, ts timestamp NOT NULL,
                      direct boolean NOT NULL);
CREATE OR REPLACE FUNCTION tbl_mid_track() RETURNS trigger
LANGUAGE plpgsql STRICT AS $$
BEGIN
    IF NOT NEW.direct THEN
        PERFORM 1 FROM tbl_result WHERE b = NEW.b AND a = -1;
        IF NOT FOUND THEN
            INSERT INTO tbl_result (b, b_ts) VALUES (NEW.b, NEW.ts)
            ON CONFLICT ON CONSTRAINT tbl_result_one_open DO NOTHING;
        END IF;
    ELSE
        PERFORM 1 FROM tbl_result WHERE b = NEW.b AND a = -1;
        IF FOUND THEN
            UPDATE tbl_result SET a = NEW.a, a_ts = NEW.ts
             WHERE b = NEW.b AND a = -1 AND NEW.ts >= b_ts;
        END IF;
    END IF;
    RETURN NULL;   -- computed, not stored
END
$$;
CREATE TRIGGER tbl_mid_track BEFORE INSERT ON tbl_mid FOR EACH ROW
    EXECUTE FUNCTION tbl_mid_track();
CREATE VIEW seeds_sessions AS
SELECT b AS customer_id, b_ts AS opened_at, nullif(a, -1) AS responder_id,
       a_ts AS answered_at
  FROM tbl_result;

-- (c) session_stream's deferred mode on the same rows: deferred_first
-- holds the batch only; deferred_tbl the earlier 4M, consumed, then the
-- batch, each million in a transaction of its own.
CREATE FUNCTION create_deferred_source(source name, results name) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE format('CREATE TABLE %I (a int NOT NULL, b int NOT NULL, ts timestamp NOT NULL,
                                     direct boolean NOT NULL,
                                     txid bigint NOT NULL DEFAULT session_stream.current_txid())',
                   source);
    EXECUTE format('CREATE INDEX ON %I USING brin (txid)', source);
    PERFORM session_stream.create_results(results, 'customer');
    EXECUTE format($t$CREATE TRIGGER %I AFTER INSERT ON %I FOR EACH ROW
                      EXECUTE FUNCTION session_stream.track_sessions('customer',
                          'agent=a', 'customer=b', 'ts=ts', 'from_agent=direct',
                          'results=public.%s')$t$, source || '_sessions', source, results);
    EXECUTE format('ALTER TABLE %I DISABLE TRIGGER %I', source, source || '_sessions');
    -- the results in the reference's types (the C path stores the
    -- timestamp's microseconds as they are)
    EXECUTE format($v$CREATE VIEW %I AS
                      SELECT customer_id::int, opened_at AT TIME ZONE 'UTC' AS opened_at,
                             responder_id::int, answered_at AT TIME ZONE 'UTC' AS answered_at
                        FROM %I$v$, results || '_compared', results);
END
$$;
SELECT create_deferred_source('deferred_first', 'first_sessions');
SELECT create_deferred_source('deferred_tbl', 'deferred_sessions');
INSERT INTO deferred_first (a, b, ts, direct)
SELECT a, b, ts, direct FROM batch_rows WHERE n > 4000000;
INSERT INTO deferred_tbl (a, b, ts, direct) SELECT a, b, ts, direct FROM batch_rows WHERE n <= 1000000;
INSERT INTO deferred_tbl (a, b, ts, direct) SELECT a, b, ts, direct FROM batch_rows WHERE n > 1000000 AND n <= 2000000;
INSERT INTO deferred_tbl (a, b, ts, direct) SELECT a, b, ts, direct FROM batch_rows WHERE n > 2000000 AND n <= 3000000;
INSERT INTO deferred_tbl (a, b, ts, direct) SELECT a, b, ts, direct FROM batch_rows WHERE n > 3000000 AND n <= 4000000;
SELECT session_stream.consume_window('customer', 'deferred_tbl', 1000000);
SELECT session_stream.consume_window('customer', 'deferred_tbl', 1000000);
SELECT session_stream.consume_window('customer', 'deferred_tbl', 1000000);
SELECT session_stream.consume_window('customer', 'deferred_tbl', 1000000);
INSERT INTO deferred_tbl (a, b, ts, direct) SELECT a, b, ts, direct FROM batch_rows WHERE n > 4000000;
-- the steady state must start with the batch alone left to consume
DO $$
BEGIN
    IF (SELECT sum(messages) FROM session_stream.consumed_windows
         WHERE source = 'deferred_tbl'::regclass) <> 4000000 THEN
        RAISE EXCEPTION 'the earlier 4M were not consumed by four calls';
    END IF;
END
$$;
VACUUM ANALYZE;
