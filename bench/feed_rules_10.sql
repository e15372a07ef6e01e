-- (c) evaluate_rules() with ten rules: the seeds' one, and nine more that
-- read the written columns but (almost) never fire.
\ir feed_plain.sql
SELECT session_stream.watch('feed');
INSERT INTO session_stream.feed_rules (source, name, condition, channel)
VALUES ('feed', 'c2_high', 'c2 > 9999', 'feed_alerts'),
       ('feed', 'c1_high', 'c1 > 1001', 'feed_c1'),
       ('feed', 'c1_negative', 'c1 < 0', 'feed_c1'),
       ('feed', 'c2_negative', 'c2 < 0', 'feed_c2'),
       ('feed', 'sum_high', 'c1 + c2 > 11001', 'feed_sum'),
       ('feed', 'c1_equals_c2_high', 'c1 = c2 AND c1 > 2000', 'feed_mix'),
       ('feed', 'c1_null', 'c1 IS NULL', 'feed_mix'),
       ('feed', 'c2_range', 'c2 BETWEEN 20000 AND 30000', 'feed_c2'),
       ('feed', 'c1_list', 'c1 IN (-1, -2, -3, 5000)', 'feed_c1'),
       ('feed', 'ratio', 'c2 > 100 * c1 AND c1 > 1000', 'feed_mix');
