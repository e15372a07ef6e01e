-- (b) evaluate_rules() row trigger with the seeds' one rule.
\ir feed_plain.sql
SELECT session_stream.watch('feed');
INSERT INTO session_stream.feed_rules (source, name, condition, channel)
VALUES ('feed', 'c2_high', 'c2 > 9999', 'feed_alerts');
