-- (a) plain upsert: no trigger, no rules.
SET client_min_messages = warning;
SELECT session_stream.unwatch('feed');
DROP TRIGGER IF EXISTS feed_alerts ON feed;
DELETE FROM session_stream.feed_rules;
TRUNCATE session_stream.alerts;
RESET client_min_messages;
