-- End to end: a rule every row matches, by NOTIFY, to session_stream_listen.
\ir feed_plain.sql
SELECT session_stream.watch('feed');
INSERT INTO session_stream.feed_rules (source, name, condition, channel)
VALUES ('feed', 'every_row', 'true', 'feed_every_row');
