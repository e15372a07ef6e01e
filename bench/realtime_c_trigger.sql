-- (b): session_stream's C trigger in pair mode, plus the (customer, time)
-- index it requires.
\ir realtime_plain.sql
CREATE INDEX tbl_b_ts_idx ON tbl (b, ts);
TRUNCATE session_stream.pair_sessions_closed, session_stream.pair_sessions_latest;
CREATE TRIGGER tbl_sessions AFTER INSERT ON tbl FOR EACH ROW
    EXECUTE FUNCTION session_stream.track_sessions(
        'pair', 'agent=a', 'customer=b', 'ts=ts', 'from_agent=direct');
