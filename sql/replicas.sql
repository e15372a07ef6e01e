-- Replicas as input: adopt_replicated_rows() and the set-ups it refuses
-- (README "Replicas as input").  A real publisher and subscriber are in
-- t/011_replication.pl; here replica mode is set by hand, which is how a
-- subscription's workers run.
\set VERBOSITY default
SET client_min_messages = warning;

-- The default stream has it, enabled for replica mode only.
SELECT tgname, tgenabled FROM pg_catalog.pg_trigger
 WHERE tgrelid = 'session_stream.messages'::regclass AND tgname LIKE 'adopt%'
 ORDER BY tgname;

-- A user's source, realtime in pair mode, as a subscriber would have it.
CREATE TABLE rep (a int NOT NULL, b int NOT NULL, ts timestamptz NOT NULL,
                  direct boolean NOT NULL,
                  txid bigint NOT NULL DEFAULT session_stream.current_txid());
CREATE INDEX ON rep (b, ts);
SELECT session_stream.create_results('public.rep_sessions', 'pair');
CREATE TRIGGER rep_sessions AFTER INSERT OR UPDATE OR DELETE ON rep
    FOR EACH ROW EXECUTE FUNCTION session_stream.track_sessions('pair',
        'agent=a', 'customer=b', 'ts=ts', 'from_agent=direct', 'results=public.rep_sessions');
CREATE TRIGGER rep_sessions_truncate AFTER TRUNCATE ON rep
    FOR EACH STATEMENT EXECUTE FUNCTION session_stream.track_sessions('pair',
        'agent=a', 'customer=b', 'ts=ts', 'from_agent=direct', 'results=public.rep_sessions');
CREATE TRIGGER adopt_replicated_rows BEFORE INSERT OR UPDATE OR DELETE ON rep
    FOR EACH ROW EXECUTE FUNCTION session_stream.adopt_replicated_rows();
CREATE TRIGGER adopt_replicated_rows_truncate BEFORE TRUNCATE ON rep
    FOR EACH STATEMENT EXECUTE FUNCTION session_stream.adopt_replicated_rows();
ALTER TABLE rep ENABLE REPLICA TRIGGER adopt_replicated_rows,
                ENABLE REPLICA TRIGGER adopt_replicated_rows_truncate;

-- On an origin it does not fire.
INSERT INTO rep (a, b, ts, direct) VALUES (1, 1, '2024-01-01 10:00+00', false);
SELECT customer_id, agent_id, opened_at, answered_at FROM rep_sessions;

-- In replica mode a new row, an edit, a TRUNCATE would pass the
-- origin-only realtime trigger by: refused.
SET session_replication_role = replica;
INSERT INTO rep (a, b, ts, direct) VALUES (1, 1, '2024-01-01 10:05+00', true);
UPDATE rep SET ts = ts + interval '1 minute';
DELETE FROM rep;
TRUNCATE rep;
-- A restored row (another transaction's txid) is let by, not applied.
INSERT INTO rep VALUES (1, 99, '2024-01-01 09:00+00', false, 12345);
RESET session_replication_role;
SELECT customer_id, agent_id, opened_at, answered_at FROM rep_sessions ORDER BY 1;

-- Enabled ALWAYS, the triggers fire in replica mode too.
ALTER TABLE rep ENABLE ALWAYS TRIGGER rep_sessions;
SET session_replication_role = replica;
INSERT INTO rep (a, b, ts, direct) VALUES (1, 1, '2024-01-01 10:10+00', true);
SELECT customer_id, agent_id, opened_at, answered_at FROM rep_sessions ORDER BY 1;
TRUNCATE rep;
RESET session_replication_role;
ALTER TABLE rep ENABLE ALWAYS TRIGGER rep_sessions_truncate;
SET session_replication_role = replica;
TRUNCATE rep;
RESET session_replication_role;
SELECT count(*) FROM rep_sessions;

-- Misuse: fired AFTER; an unknown argument; a txid column of another type.
CREATE TRIGGER wrong AFTER INSERT ON rep
    FOR EACH ROW EXECUTE FUNCTION session_stream.adopt_replicated_rows();
INSERT INTO rep (a, b, ts, direct) VALUES (1, 2, '2024-01-01 11:00+00', false);
DROP TRIGGER wrong ON rep;
DROP TRIGGER adopt_replicated_rows ON rep;
CREATE TRIGGER adopt_replicated_rows BEFORE INSERT OR UPDATE OR DELETE ON rep
    FOR EACH ROW EXECUTE FUNCTION session_stream.adopt_replicated_rows('tx=txid');
ALTER TABLE rep ENABLE REPLICA TRIGGER adopt_replicated_rows;
SET session_replication_role = replica;
INSERT INTO rep (a, b, ts, direct) VALUES (1, 2, '2024-01-01 11:00+00', false);
RESET session_replication_role;
DROP TRIGGER adopt_replicated_rows ON rep;
CREATE TRIGGER adopt_replicated_rows BEFORE INSERT OR UPDATE OR DELETE ON rep
    FOR EACH ROW EXECUTE FUNCTION session_stream.adopt_replicated_rows('txid=ts');
ALTER TABLE rep ENABLE REPLICA TRIGGER adopt_replicated_rows;
SET session_replication_role = replica;
INSERT INTO rep (a, b, ts, direct) VALUES (1, 2, '2024-01-01 11:00+00', false);
RESET session_replication_role;

-- A publisher: UPDATE and DELETE of a source published with REPLICA
-- IDENTITY FULL are refused (a subscriber could not find the row by its
-- txid); published for inserts and truncates only, they are not.
INSERT INTO rep (a, b, ts, direct) VALUES (1, 3, '2024-01-01 12:00+00', false);
ALTER TABLE rep REPLICA IDENTITY FULL;
SET client_min_messages = error;  -- wal_level may be too low to publish
CREATE PUBLICATION rep_pub FOR TABLE rep;
SET client_min_messages = warning;
UPDATE rep SET ts = ts + interval '1 minute';
DELETE FROM rep;
ALTER PUBLICATION rep_pub SET (publish = 'insert, truncate');
UPDATE rep SET ts = ts + interval '1 minute';
SELECT customer_id, agent_id, opened_at, answered_at FROM rep_sessions ORDER BY 1;
DELETE FROM rep;
SELECT count(*) FROM rep_sessions;
DROP PUBLICATION rep_pub;
