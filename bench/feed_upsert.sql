-- The seeds' feed workload: one system writes c1, c2 of a random order;
-- c2 > 9999 (the rule) holds for about 1 write in 10,000.
\set id random(1, 10000000)
\set c1 random(1, 1001)
\set c2 random(1, 10000)
INSERT INTO feed (id, c1, c2) VALUES (:id, :c1, :c2)
    ON CONFLICT (id) DO UPDATE SET c1 = excluded.c1, c2 = excluded.c2;
