-- Every misuse of track_sessions() gets an error with a hint; nothing is
-- skipped silently.
\set VERBOSITY default
SET client_min_messages = warning;
CREATE TABLE chat (agent int, customer int, ts timestamptz, out boolean,
                   note text, big numeric);
CREATE INDEX ON chat (customer, ts);

-- no mode, unknown mode, unknown argument
CREATE TRIGGER t AFTER INSERT ON chat FOR EACH ROW
    EXECUTE FUNCTION session_stream.track_sessions();
INSERT INTO chat VALUES (1, 1, now(), false);
DROP TRIGGER t ON chat;
CREATE TRIGGER t AFTER INSERT ON chat FOR EACH ROW
    EXECUTE FUNCTION session_stream.track_sessions('agent');
INSERT INTO chat VALUES (1, 1, now(), false);
DROP TRIGGER t ON chat;
CREATE TRIGGER t AFTER INSERT ON chat FOR EACH ROW
    EXECUTE FUNCTION session_stream.track_sessions('pair', 'time=ts');
INSERT INTO chat VALUES (1, 1, now(), false);
DROP TRIGGER t ON chat;

-- missing columns (the defaults do not exist here), wrong types
CREATE TRIGGER t AFTER INSERT ON chat FOR EACH ROW
    EXECUTE FUNCTION session_stream.track_sessions('pair');
INSERT INTO chat VALUES (1, 1, now(), false);
DROP TRIGGER t ON chat;
CREATE TRIGGER t AFTER INSERT ON chat FOR EACH ROW
    EXECUTE FUNCTION session_stream.track_sessions('pair',
        'agent=agent', 'customer=customer', 'ts=note', 'from_agent=out');
INSERT INTO chat VALUES (1, 1, now(), false, 'x');
DROP TRIGGER t ON chat;
CREATE TRIGGER t AFTER INSERT ON chat FOR EACH ROW
    EXECUTE FUNCTION session_stream.track_sessions('pair',
        'agent=big', 'customer=customer', 'ts=ts', 'from_agent=out');
INSERT INTO chat VALUES (1, 1, now(), false, 'x', 1);
DROP TRIGGER t ON chat;
CREATE TRIGGER t AFTER INSERT ON chat FOR EACH ROW
    EXECUTE FUNCTION session_stream.track_sessions('pair',
        'agent=agent', 'customer=customer', 'ts=ts', 'from_agent=agent');
INSERT INTO chat VALUES (1, 1, now(), false);
DROP TRIGGER t ON chat;

-- the right columns; NULLs are refused, naming the column
CREATE TRIGGER t AFTER INSERT ON chat FOR EACH ROW
    EXECUTE FUNCTION session_stream.track_sessions('pair',
        'agent=agent', 'customer=customer', 'ts=ts', 'from_agent=out');
INSERT INTO chat VALUES (1, NULL, now(), false);
INSERT INTO chat VALUES (1, 1, NULL, false);
INSERT INTO chat VALUES (1, 1, now(), NULL);
INSERT INTO chat VALUES (NULL, 1, now(), false);
SELECT count(*) AS rows_kept FROM chat;

-- no (customer, time) index: refused with the CREATE INDEX to run
DROP INDEX chat_customer_ts_idx;
INSERT INTO chat VALUES (1, 1, now(), false);
CREATE INDEX ON chat (customer, ts);
INSERT INTO chat VALUES (1, 1, '2024-01-01 00:00:00+00', false);
SELECT count(*) AS pair_sessions FROM session_stream.pair_sessions
 WHERE opened_at = '2024-01-01 00:00:00+00';
DROP TRIGGER t ON chat;

-- a results table that cannot hold sessions
CREATE TRIGGER t AFTER INSERT ON chat FOR EACH ROW
    EXECUTE FUNCTION session_stream.track_sessions('pair',
        'agent=agent', 'customer=customer', 'ts=ts', 'from_agent=out',
        'results=no_such_table');
INSERT INTO chat VALUES (1, 1, now(), false);
DROP TRIGGER t ON chat;
CREATE TRIGGER t AFTER INSERT ON chat FOR EACH ROW
    EXECUTE FUNCTION session_stream.track_sessions('pair',
        'agent=agent', 'customer=customer', 'ts=ts', 'from_agent=out',
        'results=session_stream.sessions');
INSERT INTO chat VALUES (1, 1, now(), false);
DROP TRIGGER t ON chat;
CREATE TRIGGER t AFTER INSERT ON chat FOR EACH ROW
    EXECUTE FUNCTION session_stream.track_sessions('pair',
        'agent=agent', 'customer=customer', 'ts=ts', 'from_agent=out',
        'results=pg_catalog.pg_class');
INSERT INTO chat VALUES (1, 1, now(), false);
DROP TRIGGER t ON chat;
CREATE TABLE keyless (customer_id bigint, agent_id bigint,
                      opened_at timestamptz, answered_at timestamptz);
CREATE TRIGGER t AFTER INSERT ON chat FOR EACH ROW
    EXECUTE FUNCTION session_stream.track_sessions('pair',
        'agent=agent', 'customer=customer', 'ts=ts', 'from_agent=out',
        'results=keyless');
INSERT INTO chat VALUES (1, 1, now(), false);
DROP TRIGGER t ON chat;
-- a results set missing its index, or one of its tables
SELECT session_stream.create_results('indexless', 'pair');
ALTER TABLE indexless_closed DROP CONSTRAINT indexless_closed_pkey;
CREATE TRIGGER t AFTER INSERT ON chat FOR EACH ROW
    EXECUTE FUNCTION session_stream.track_sessions('pair',
        'agent=agent', 'customer=customer', 'ts=ts', 'from_agent=out',
        'results=indexless');
INSERT INTO chat VALUES (1, 1, now(), false);
DROP VIEW indexless;
DROP TABLE indexless_latest;
CREATE VIEW indexless AS SELECT * FROM indexless_closed;
ALTER TABLE indexless_closed ADD PRIMARY KEY (customer_id, agent_id, opened_at);
INSERT INTO chat VALUES (1, 1, now(), false);
DROP TRIGGER t ON chat;
DROP VIEW indexless;
DROP TABLE indexless_closed;
-- create_results() knows two modes, and names its tables can be made of
SELECT session_stream.create_results('threeway', 'group');
SELECT session_stream.create_results(repeat('n', 57), 'pair');
SELECT session_stream.create_results('a.b.c', 'pair');

-- a table owner without rights on the results table
CREATE ROLE ss_outsider;
CREATE TABLE outsider_chat (LIKE chat);
CREATE INDEX ON outsider_chat (customer, ts);
ALTER TABLE outsider_chat OWNER TO ss_outsider;
CREATE TRIGGER t AFTER INSERT ON outsider_chat FOR EACH ROW
    EXECUTE FUNCTION session_stream.track_sessions('pair',
        'agent=agent', 'customer=customer', 'ts=ts', 'from_agent=out');
INSERT INTO outsider_chat VALUES (1, 1, now(), false);
DROP TABLE outsider_chat;
DROP ROLE ss_outsider;

-- fired the wrong way
CREATE TRIGGER t BEFORE INSERT ON chat FOR EACH ROW
    EXECUTE FUNCTION session_stream.track_sessions('pair');
INSERT INTO chat VALUES (1, 1, now(), false);
DROP TRIGGER t ON chat;
CREATE TRIGGER t AFTER INSERT ON chat FOR EACH STATEMENT
    EXECUTE FUNCTION session_stream.track_sessions('pair');
INSERT INTO chat VALUES (1, 1, now(), false);
DROP TRIGGER t ON chat;
CREATE TRIGGER t AFTER UPDATE ON chat FOR EACH ROW
    EXECUTE FUNCTION session_stream.track_sessions('pair');
UPDATE chat SET out = true;
DROP TRIGGER t ON chat;
SELECT session_stream.track_sessions();

-- DDL takes effect at once: a renamed column is seen by the next insert
CREATE TRIGGER t AFTER INSERT ON chat FOR EACH ROW
    EXECUTE FUNCTION session_stream.track_sessions('pair',
        'agent=agent', 'customer=customer', 'ts=ts', 'from_agent=out');
INSERT INTO chat VALUES (1, 2, now(), false);
ALTER TABLE chat RENAME COLUMN out TO outgoing;
INSERT INTO chat VALUES (1, 2, now(), false);
DROP TABLE chat, keyless;
