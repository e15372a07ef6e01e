-- The seeds' realtime workload: 10 agents x 10k customers, messages
-- stamped with clock_timestamp() as they are written.
\set a random(1, 10)
\set b random(1, 10000)
\set bo random(0, 1)
INSERT INTO tbl VALUES (:a, :b, clock_timestamp(), :bo::boolean);
