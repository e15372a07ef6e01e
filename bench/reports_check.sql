-- Each report of response_times() against the same report written by
-- hand (the views of reports_setup.sql): its rows, and the rows in one
-- and not the other (the intervals compared with =).
CREATE TEMP TABLE check_fn_day AS
SELECT * FROM session_stream.response_times('bench_sessions', '2024-06-01', '2024-07-01');
CREATE TEMP TABLE check_fn_agent AS
SELECT * FROM session_stream.response_times('bench_sessions', '2024-06-01', '2024-07-01',
                                            by_agent => true);
CREATE TEMP TABLE check_fn_calendar AS
SELECT * FROM session_stream.response_times('bench_sessions', '2024-06-01', '2024-07-01',
                                            calendar => 'bench_office');
CREATE TEMP TABLE check_hand_day AS SELECT * FROM bench_by_hand_day;
CREATE TEMP TABLE check_hand_agent AS SELECT * FROM bench_by_hand_agent;
CREATE TEMP TABLE check_hand_calendar AS SELECT * FROM bench_by_hand_calendar;
SELECT report, rows, differences
  FROM (VALUES (1, 'by day', (SELECT count(*) FROM check_fn_day),
                (SELECT count(*) FROM ((TABLE check_fn_day EXCEPT ALL TABLE check_hand_day)
                                       UNION ALL
                                       (TABLE check_hand_day EXCEPT ALL TABLE check_fn_day)) d)),
               (2, 'by day and responder', (SELECT count(*) FROM check_fn_agent),
                (SELECT count(*) FROM ((TABLE check_fn_agent EXCEPT ALL TABLE check_hand_agent)
                                       UNION ALL
                                       (TABLE check_hand_agent EXCEPT ALL TABLE check_fn_agent)) d)),
               (3, 'by day in business time', (SELECT count(*) FROM check_fn_calendar),
                (SELECT count(*) FROM ((TABLE check_fn_calendar EXCEPT ALL TABLE check_hand_calendar)
                                       UNION ALL
                                       (TABLE check_hand_calendar EXCEPT ALL TABLE check_fn_calendar)) d)))
       r(n, report, rows, differences)
 ORDER BY n;
