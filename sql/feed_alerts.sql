-- Evaluating feed rules: always vs edge, row vs statement triggers, bulk
-- writes, several rules and channels, the outbox, the 8000-byte fallback,
-- rollback, and rule or table changes taking effect at once.  Alerts are
-- looked at in the outbox here; the notifications themselves are shown by
-- specs/feed_notify.spec (psql would print the sender's PID, which
-- changes from run to run).
\set VERBOSITY default
SET client_min_messages = warning;
CREATE TABLE feed (id int8 PRIMARY KEY, c1 int, c2 int, note text);
SELECT session_stream.watch('feed');
TRUNCATE session_stream.feed_rules RESTART IDENTITY;

-- alerts, oldest first, without the time they were made
CREATE VIEW outbox AS
SELECT alert_id, rule, channel, payload FROM session_stream.alerts
 ORDER BY alert_id;

INSERT INTO session_stream.feed_rules (source, name, condition, channel, delivery, on_update)
VALUES ('feed', 'c2_high', 'c2 > 9999', 'feed_c2', 'outbox', 'always'),
       ('feed', 'c1_crossed', 'c1 > 100', 'feed_c1', 'outbox', 'edge'),
       ('feed', 'noted', 'note IS NOT NULL AND c1 IS NULL', 'feed_note', 'outbox', 'always');

-- INSERT: edge rules fire like always rules
INSERT INTO feed VALUES (1, 1, 10000, NULL), (2, 200, 1, NULL), (3, 1, 1, NULL),
                        (4, NULL, 1, 'x');
SELECT * FROM outbox;
TRUNCATE session_stream.alerts;

-- UPDATE, the seeds' way: upserts.  c2_high fires on every write with
-- c2 > 9999; c1_crossed only when c1 goes from <= 100 (or NULL) to > 100.
INSERT INTO feed (id, c1, c2) VALUES (1, 2, 20000)
    ON CONFLICT (id) DO UPDATE SET c1 = excluded.c1, c2 = excluded.c2;
INSERT INTO feed (id, c1, c2) VALUES (2, 300, 2)
    ON CONFLICT (id) DO UPDATE SET c1 = excluded.c1, c2 = excluded.c2;
INSERT INTO feed (id, c1, c2) VALUES (3, 101, 3)
    ON CONFLICT (id) DO UPDATE SET c1 = excluded.c1, c2 = excluded.c2;
UPDATE feed SET c1 = NULL WHERE id = 2;
UPDATE feed SET c1 = 150 WHERE id = 2;
SELECT rule, payload->>'op' AS op, payload->'row' AS row FROM outbox;
TRUNCATE session_stream.alerts;

-- statement-level: the same rules over transition tables, in bulk
SELECT session_stream.watch('feed', per_statement => true);
TRUNCATE feed;
INSERT INTO feed (id, c1, c2)
SELECT g, g % 150, CASE WHEN g % 250 = 0 THEN 10000 + g ELSE g END
  FROM generate_series(1, 1000) g;
SELECT rule, count(*), min((payload->'row'->>'id')::int), max((payload->'row'->>'id')::int)
  FROM session_stream.alerts GROUP BY rule ORDER BY rule;
TRUNCATE session_stream.alerts;
-- a bulk UPDATE pairs each old row with its new one for edge rules
UPDATE feed SET c1 = c1 + 10 WHERE id <= 300;
SELECT count(*) AS crossed, min(payload->'row'->>'c1') AS min_c1,
       max(payload->'row'->>'c1') AS max_c1
  FROM session_stream.alerts WHERE rule = 'c1_crossed';
SELECT count(*) AS expected FROM feed
 WHERE id <= 300 AND c1 > 100 AND c1 - 10 <= 100;
TRUNCATE session_stream.alerts;
-- a bulk upsert fires the INSERT and the UPDATE statement triggers
INSERT INTO feed (id, c1, c2)
SELECT g, 1, 99999 FROM generate_series(995, 1004) g
    ON CONFLICT (id) DO UPDATE SET c1 = excluded.c1, c2 = excluded.c2;
SELECT payload->>'op' AS op, count(*) FROM session_stream.alerts
 GROUP BY 1 ORDER BY 1;
TRUNCATE session_stream.alerts;
SELECT session_stream.watch('feed');

-- rolled back rows leave no alert, nor do rows of a rolled back savepoint
BEGIN;
INSERT INTO feed (id, c2) VALUES (2001, 10000);
SAVEPOINT s;
INSERT INTO feed (id, c2) VALUES (2002, 10000);
ROLLBACK TO SAVEPOINT s;
INSERT INTO feed (id, c2) VALUES (2003, 10000);
COMMIT;
BEGIN;
INSERT INTO feed (id, c2) VALUES (2004, 10000);
ROLLBACK;
SELECT payload->'row'->>'id' AS id FROM outbox;
TRUNCATE session_stream.alerts;

-- notify rules go nowhere near the outbox, but an alert too large for
-- NOTIFY (8000 bytes) does; its notification only points to it
UPDATE session_stream.feed_rules SET delivery = 'notify' WHERE name = 'c2_high';
INSERT INTO feed (id, c1, c2, note) VALUES (3001, 1, 10000, 'small');
SELECT count(*) FROM session_stream.alerts;
INSERT INTO feed (id, c1, c2, note) VALUES (3002, 1, 10000, repeat('y', 7900));
SELECT rule, channel, length(payload::text) > 8000 AS large,
       payload->'row'->>'id' AS id
  FROM outbox;
TRUNCATE session_stream.alerts;

-- take_alerts: oldest first, n at a time, per channel, and gone once taken
UPDATE session_stream.feed_rules SET delivery = 'outbox';
INSERT INTO feed (id, c1, c2) VALUES (4001, 500, 10000), (4002, 1, 10001),
                                     (4003, 600, 1);
SELECT rule, channel, payload->'row'->>'id' AS id
  FROM session_stream.take_alerts(2);
SELECT rule, channel, payload->'row'->>'id' AS id
  FROM session_stream.take_alerts(10, 'feed_c1');
SELECT rule, channel, payload->'row'->>'id' AS id
  FROM session_stream.take_alerts(10);
SELECT count(*) FROM session_stream.take_alerts(10);

-- rule changes are seen by the next statement of the same session
UPDATE session_stream.feed_rules SET enabled = false WHERE name = 'c2_high';
INSERT INTO feed (id, c2) VALUES (5001, 10000);
SELECT count(*) FROM session_stream.alerts;
UPDATE session_stream.feed_rules SET enabled = true, condition = 'c2 > 5'
 WHERE name = 'c2_high';
INSERT INTO feed (id, c2) VALUES (5002, 6);
SELECT rule, payload->'row'->>'id' AS id FROM outbox;
TRUNCATE session_stream.alerts;

-- so are changes to the table: a new column shows in the alert; a rule
-- whose column is renamed away is skipped with a warning, not an error,
-- and the row is written
ALTER TABLE feed ADD COLUMN region text;
INSERT INTO feed (id, c2, region) VALUES (6001, 10000, 'north');
SELECT payload->'row'->>'region' AS region FROM outbox;
ALTER TABLE feed RENAME COLUMN c1 TO c1_renamed;
SET client_min_messages = warning;
INSERT INTO feed (id, c2, c1_renamed) VALUES (6002, 10000, 500);
SELECT rule, payload->'row'->>'id' AS id FROM outbox;
SELECT count(*) FROM feed WHERE id = 6002;
TRUNCATE session_stream.alerts;

-- a condition may call functions; NULL counts as false
UPDATE session_stream.feed_rules
   SET condition = 'lower(note) LIKE ''%urgent%'' AND c2 IS NOT NULL'
 WHERE name = 'noted';
INSERT INTO feed (id, c2, note) VALUES (7001, 1, 'URGENT: call'),
                                       (7002, NULL, 'urgent too'),
                                       (7003, 1, NULL);
SELECT rule, payload->'row'->>'id' AS id FROM outbox WHERE rule = 'noted';

-- a table without rules costs nothing and alerts nobody
CREATE TABLE quiet (id int);
SELECT session_stream.watch('quiet');
INSERT INTO quiet VALUES (1);
DROP TABLE quiet;

DROP VIEW outbox;
DROP TABLE feed;
DELETE FROM session_stream.feed_rules;
TRUNCATE session_stream.alerts;
