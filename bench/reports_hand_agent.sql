-- The report by day and responder written by hand in SQL (the view
-- bench_by_hand_agent of reports_setup.sql).
\o /dev/null
SELECT * FROM bench_by_hand_agent;
