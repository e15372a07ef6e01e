-- The report by day written by hand in SQL (the view
-- bench_by_hand_day of reports_setup.sql).
\o /dev/null
SELECT * FROM bench_by_hand_day;
