-- The report by day in business time written by hand in SQL (the view
-- bench_by_hand_calendar of reports_setup.sql).
\o /dev/null
SELECT * FROM bench_by_hand_calendar;
