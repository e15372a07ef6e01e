-- response_times() by day, in business time.
\o /dev/null
SELECT * FROM session_stream.response_times('bench_sessions', '2024-06-01', '2024-07-01',
                                            calendar => 'bench_office');
