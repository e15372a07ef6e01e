-- Install the extension and the test oracle used by the other tests.
CREATE EXTENSION session_stream;
\i test/reference.sql

-- What CREATE EXTENSION made.
SELECT c.relname, c.relkind
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE n.nspname = 'session_stream'
 ORDER BY c.relname;
SELECT conname, contype FROM pg_constraint
 WHERE connamespace = 'session_stream'::regnamespace ORDER BY conname;
SELECT tgname, tgrelid::regclass, pg_get_triggerdef(oid)
  FROM pg_trigger WHERE tgname LIKE 'track_sessions_customer%' ORDER BY tgname;
