-- response_times() by day over the 3M sessions of reports_setup.sql.
\o /dev/null
SELECT * FROM session_stream.response_times('bench_sessions', '2024-06-01', '2024-07-01');
