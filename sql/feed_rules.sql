-- Writing feed rules: every rule is checked when it is written, and only
-- the owner of the watched table (or a superuser) may write its rules.
\set VERBOSITY default
SET client_min_messages = warning;
CREATE TABLE feed (id int8 PRIMARY KEY, c1 int, c2 int, c3 int, c4 int,
                   c5 int, c6 int, c7 int, c8 int, c9 int, c10 int,
                   c11 int, c12 int);

-- a good rule, with the defaults filled in
INSERT INTO session_stream.feed_rules (source, name, condition)
VALUES ('feed', 'c2_high', 'c2 > 9999');
SELECT source, name, condition, channel, delivery, on_update, enabled
  FROM session_stream.feed_rules;

-- conditions that do not compile: the parser's message, pointing into
-- the condition
INSERT INTO session_stream.feed_rules (source, name, condition)
VALUES ('feed', 'bad', 'c2 >');
INSERT INTO session_stream.feed_rules (source, name, condition)
VALUES ('feed', 'bad', 'c2 > 9999 AND c13 = 1');
INSERT INTO session_stream.feed_rules (source, name, condition)
VALUES ('feed', 'bad', 'c2 + 1');
INSERT INTO session_stream.feed_rules (source, name, condition)
VALUES ('feed', 'bad', 'c2 = ''many''');
INSERT INTO session_stream.feed_rules (source, name, condition)
VALUES ('feed', 'bad', 'c2 > (SELECT max(c2) FROM feed)');
INSERT INTO session_stream.feed_rules (source, name, condition)
VALUES ('feed', 'bad', 'sum(c2) > 1');
INSERT INTO session_stream.feed_rules (source, name, condition)
VALUES ('feed', 'bad', 'c2 > 1 FROM pg_class');
INSERT INTO session_stream.feed_rules (source, name, condition)
VALUES ('feed', 'bad', 'c1 > 1, c2 > 1');
INSERT INTO session_stream.feed_rules (source, name, condition)
VALUES ('feed', 'bad', 'xmin IS NOT NULL');
INSERT INTO session_stream.feed_rules (source, name, condition)
VALUES ('feed', 'bad', '');

-- bad delivery, on_update, channel, name, table kind
INSERT INTO session_stream.feed_rules (source, name, condition, delivery)
VALUES ('feed', 'bad', 'c2 > 1', 'mail');
INSERT INTO session_stream.feed_rules (source, name, condition, on_update)
VALUES ('feed', 'bad', 'c2 > 1', 'sometimes');
INSERT INTO session_stream.feed_rules (source, name, condition, channel)
VALUES ('feed', 'bad', 'c2 > 1', repeat('x', 64));
INSERT INTO session_stream.feed_rules (source, name, condition, channel)
VALUES ('feed', 'bad', 'c2 > 1', '');
INSERT INTO session_stream.feed_rules (source, name, condition)
VALUES ('feed', repeat('n', 64), 'c2 > 1');
CREATE VIEW feed_view AS SELECT * FROM feed;
INSERT INTO session_stream.feed_rules (source, name, condition)
VALUES ('feed_view', 'bad', 'c2 > 1');
INSERT INTO session_stream.feed_rules (source, name, condition)
VALUES ('no_such_table', 'bad', 'c2 > 1');

-- 63 bytes is the longest channel NOTIFY takes
INSERT INTO session_stream.feed_rules (source, name, condition, channel)
VALUES ('feed', 'long_channel', 'c2 > 1', repeat('x', 63));
-- an update is checked too
UPDATE session_stream.feed_rules SET condition = 'c2 >> 1'
 WHERE name = 'long_channel';
UPDATE session_stream.feed_rules SET on_update = 'edge', delivery = 'both'
 WHERE name = 'long_channel';
SELECT name, delivery, on_update FROM session_stream.feed_rules ORDER BY rule_id;

-- only the table's owner may add, change or delete its rules
CREATE ROLE regress_feed_outsider;
CREATE TABLE outsider_feed (id int PRIMARY KEY, amount numeric);
ALTER TABLE outsider_feed OWNER TO regress_feed_outsider;
SET ROLE regress_feed_outsider;
INSERT INTO session_stream.feed_rules (source, name, condition)
VALUES ('feed', 'mine', 'c1 > 0');
UPDATE session_stream.feed_rules SET enabled = false WHERE name = 'c2_high';
DELETE FROM session_stream.feed_rules WHERE name = 'c2_high';
-- ... and an outsider may write rules for a table of its own
INSERT INTO session_stream.feed_rules (source, name, condition)
VALUES ('outsider_feed', 'big', 'amount > 1000');
-- but not move them onto someone else's table
UPDATE session_stream.feed_rules SET source = 'feed' WHERE name = 'big';
RESET ROLE;
SELECT source, name FROM session_stream.feed_rules ORDER BY rule_id;
DROP TABLE outsider_feed;
DELETE FROM session_stream.feed_rules WHERE name = 'big';
DROP ROLE regress_feed_outsider;

-- watch() attaches one row trigger, or two statement triggers
SELECT session_stream.watch('feed');
SELECT tgname, pg_get_triggerdef(oid) FROM pg_trigger
 WHERE tgrelid = 'feed'::regclass ORDER BY tgname;
SELECT session_stream.watch('feed', per_statement => true);
SELECT tgname, pg_get_triggerdef(oid) FROM pg_trigger
 WHERE tgrelid = 'feed'::regclass ORDER BY tgname;
SELECT session_stream.unwatch('feed');
SELECT count(*) FROM pg_trigger WHERE tgrelid = 'feed'::regclass;

-- evaluate_rules() attached the wrong way
CREATE TRIGGER t BEFORE INSERT ON feed FOR EACH ROW
    EXECUTE FUNCTION session_stream.evaluate_rules();
INSERT INTO feed (id, c2) VALUES (1, 10000);
DROP TRIGGER t ON feed;
CREATE TRIGGER t AFTER INSERT ON feed FOR EACH STATEMENT
    EXECUTE FUNCTION session_stream.evaluate_rules();
INSERT INTO feed (id, c2) VALUES (1, 10000);
DROP TRIGGER t ON feed;
CREATE TRIGGER t AFTER DELETE ON feed FOR EACH ROW
    EXECUTE FUNCTION session_stream.evaluate_rules();
INSERT INTO feed (id, c2) VALUES (1, 10000);
DELETE FROM feed;
DROP TRIGGER t ON feed;
SELECT session_stream.evaluate_rules();

DROP VIEW feed_view;
DROP TABLE feed;
TRUNCATE session_stream.feed_rules;
