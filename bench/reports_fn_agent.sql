-- response_times() by day and responder.
\o /dev/null
SELECT * FROM session_stream.response_times('bench_sessions', '2024-06-01', '2024-07-01',
                                            by_agent => true);
