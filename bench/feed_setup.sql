-- The seeds' order feed: a wide row merged by upserts from many systems.
-- Filled with 1 row in 10 of the 10M ids (1M rows), so that the upserts
-- are a mix of inserts and ON CONFLICT updates from the start.
SET client_min_messages = warning;
DROP TABLE IF EXISTS feed CASCADE;
RESET client_min_messages;
CREATE TABLE feed (id int8 PRIMARY KEY, c1 int, c2 int, c3 int, c4 int,
                   c5 int, c6 int, c7 int, c8 int, c9 int, c10 int,
                   c11 int, c12 int);
INSERT INTO feed (id, c1, c2)
SELECT g, g % 1001, g % 10000 FROM generate_series(1, 10000000, 10) g;
VACUUM ANALYZE feed;
