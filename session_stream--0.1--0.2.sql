/* session_stream--0.1--0.2.sql */

-- complain if script is sourced in psql, rather than via ALTER EXTENSION
\echo Use "ALTER EXTENSION session_stream UPDATE TO '0.2'" to load this file. \quit

-- Version 0.2.  session_stream--0.1.sql is the released 0.1 and is never
-- edited: CREATE EXTENSION installs 0.2 by running it and then this step,
-- and ALTER EXTENSION session_stream UPDATE runs this step on a 0.1
-- database, so both roads end with the same objects
-- (t/006_upgrade.pl compares them through the catalogs).
--
-- As in the 0.1 script, every object and operator is schema-qualified so
-- that the step means the same whatever search_path the updating role
-- has, and functions set their own search_path.

-- Edits: UPDATE, DELETE and TRUNCATE of messages keep the results exact.
--
-- track_sessions() also handles AFTER UPDATE and AFTER DELETE (FOR EACH
-- ROW) and AFTER TRUNCATE (FOR EACH STATEMENT).  The default stream's
-- trigger is made anew to cover INSERT OR UPDATE OR DELETE, in the state it
-- was in (enabled, disabled for deferred mode, ...); its WHEN clause, which
-- let restored rows by, cannot stand on a trigger that also fires on
-- DELETE, and is now the trigger's own check of the row's txid.  A TRUNCATE
-- trigger joins it.  A database whose track_sessions_customer was dropped
-- gets neither.
COMMENT ON FUNCTION session_stream.track_sessions() IS
    'AFTER INSERT OR UPDATE OR DELETE row trigger, and AFTER TRUNCATE statement trigger, keeping a results set equal to an event-time replay; args: mode, then agent=, customer=, ts=, from_agent=, txid=, results=';

DO $$
DECLARE
    state "char";
BEGIN
    SELECT tgenabled INTO state FROM pg_catalog.pg_trigger
     WHERE tgrelid OPERATOR(pg_catalog.=) 'session_stream.messages'::pg_catalog.regclass
       AND tgname OPERATOR(pg_catalog.=) 'track_sessions_customer';
    IF state IS NULL THEN
        RETURN;
    END IF;
    DROP TRIGGER track_sessions_customer ON session_stream.messages;
    CREATE TRIGGER track_sessions_customer
        AFTER INSERT OR UPDATE OR DELETE ON session_stream.messages
        FOR EACH ROW EXECUTE FUNCTION session_stream.track_sessions('customer');
    EXECUTE pg_catalog.format('ALTER TABLE session_stream.messages %s TRIGGER track_sessions_customer',
        CASE state WHEN 'D' THEN 'DISABLE' WHEN 'R' THEN 'ENABLE REPLICA'
                   WHEN 'A' THEN 'ENABLE ALWAYS' ELSE 'ENABLE' END);
    CREATE TRIGGER track_sessions_customer_truncate
        AFTER TRUNCATE ON session_stream.messages
        FOR EACH STATEMENT EXECUTE FUNCTION session_stream.track_sessions('customer');
END
$$;

-- Erasure (GDPR art. 17): the customer's messages and sessions, everywhere.
CREATE FUNCTION session_stream.forget_customer(
    customer_id bigint,
    source regclass DEFAULT 'session_stream.messages')
RETURNS bigint
AS 'MODULE_PATHNAME', 'ss_forget_customer'
LANGUAGE C VOLATILE;
COMMENT ON FUNCTION session_stream.forget_customer(bigint, regclass) IS
    'Deletes a customer''s messages from source and the customer''s sessions from every results set source feeds; returns the messages deleted';
