-- (c) of the continuous workload: deferred mode (txid column and its BRIN
-- index, the column mapping as a disabled trigger) consumed in pair mode
-- by the continuous consumer every 100 ms.
\ir continuous_reset.sql
\ir realtime_plain.sql
ALTER TABLE tbl ADD COLUMN txid bigint NOT NULL DEFAULT session_stream.current_txid();
CREATE INDEX ON tbl USING brin (txid);
TRUNCATE session_stream.pair_sessions_closed, session_stream.pair_sessions_latest;
CREATE TRIGGER tbl_sessions AFTER INSERT ON tbl FOR EACH ROW
    EXECUTE FUNCTION session_stream.track_sessions(
        'pair', 'agent=a', 'customer=b', 'ts=ts', 'from_agent=direct');
ALTER TABLE tbl DISABLE TRIGGER tbl_sessions;
SELECT session_stream.start_consumer('tbl', 'pair', '100 milliseconds');
