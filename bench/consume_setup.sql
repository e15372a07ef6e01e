-- The seeds' consume workload: 1M messages, 100 agents x 1M customers,
-- times increasing as if written by clock_timestamp(), the same rows in
-- both tables.
SET client_min_messages = warning;
DROP TABLE IF EXISTS batch_rows, tbl, tbl_mid, tbl_result, deferred_tbl CASCADE;
RESET client_min_messages;
CREATE TABLE batch_rows AS
SELECT 1 + (random() * 99)::int AS a, 1 + (random() * 999999)::int AS b,
       timestamp '2024-06-01' + n * interval '20 us' AS ts,
       random() < 0.5 AS direct
  FROM generate_series(1, 1000000) n;

-- (1) the seeds' method: read and burn tbl into tbl_mid, whose trigger
-- computes customer-mode sessions into tbl_result.
CREATE TABLE tbl (a int NOT NULL, b int NOT NULL, ts timestamp NOT NULL,
                  direct boolean NOT NULL);
CREATE INDEX tbl_ts_idx ON tbl (ts);
INSERT INTO tbl SELECT * FROM batch_rows;
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

-- (2) session_stream's deferred mode on the same rows.
CREATE TABLE deferred_tbl (a int NOT NULL, b int NOT NULL, ts timestamp NOT NULL,
                           direct boolean NOT NULL,
                           txid bigint NOT NULL DEFAULT session_stream.current_txid());
CREATE INDEX ON deferred_tbl (ts);
CREATE INDEX ON deferred_tbl USING brin (txid);
SELECT session_stream.create_results('deferred_sessions', 'customer');
CREATE TRIGGER deferred_tbl_sessions AFTER INSERT ON deferred_tbl FOR EACH ROW
    EXECUTE FUNCTION session_stream.track_sessions('customer',
        'agent=a', 'customer=b', 'ts=ts', 'from_agent=direct',
        'results=public.deferred_sessions');
ALTER TABLE deferred_tbl DISABLE TRIGGER deferred_tbl_sessions;
INSERT INTO deferred_tbl (a, b, ts, direct) SELECT * FROM batch_rows;
VACUUM ANALYZE tbl, deferred_tbl;
CHECKPOINT;
