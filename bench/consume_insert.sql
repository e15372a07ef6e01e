-- Inserts into a consume-mode source: 100 agents x 1M customers.
\set a random(1, 100)
\set b random(1, 1000000)
\set bo random(0, 1)
INSERT INTO src (a, b, ts, direct) VALUES (:a, :b, clock_timestamp(), :bo::boolean);
