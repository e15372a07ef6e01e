#!/usr/bin/env bash
# A demo of session_stream on a throwaway cluster.
#
#   scripts/demo.sh          (as root, or as a user with sudo)
#
# Installs what is needed (Debian 12), builds and installs the extension,
# starts a private server in a temporary directory (own socket, own port,
# no TCP), streams a sample conversation into it, out of order, and prints
# the virtual sessions and first-response times it keeps, corrects a
# message, raises a feed-rule alert and prints it as received, then prints
# the response-time report and an SLA breach alert.  The server and its files are
# removed at the end.
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=scripts/common.sh
. "$here/scripts/common.sh"

install_packages
build_and_install "$here"
start_throwaway_cluster
echo "== throwaway server on socket $PGHOST, port $PGPORT"

sql <<'SQL'
SET client_min_messages = warning;
CREATE EXTENSION session_stream;
SET TimeZone = 'UTC';

\echo
\echo == A conversation arrives out of order: some messages come late.
\echo
-- (agent, customer, sent at, from agent)
INSERT INTO session_stream.messages VALUES
    (7, 1001, '2024-05-01 09:00:00', false),  -- customer 1001 asks
    (7, 1001, '2024-05-01 09:00:42', true);   -- agent 7 answers, 42 s
INSERT INTO session_stream.messages VALUES
    (3, 1002, '2024-05-01 09:01:10', false),  -- customer 1002 asks
    (3, 1002, '2024-05-01 09:01:30', false),  -- and asks again
    (5, 1002, '2024-05-01 09:03:00', true);   -- agent 5 answers, 110 s
INSERT INTO session_stream.messages VALUES
    (7, 1001, '2024-05-01 09:05:00', false);  -- 1001 asks again, unanswered
SELECT customer_id, opened_at::time AS opened, responder_id AS responder,
       answered_at::time AS answered, answered_at - opened_at AS first_response
  FROM session_stream.sessions ORDER BY customer_id, opened_at;

\echo == Late: a reply of agent 9 at 09:00:20 arrives only now.  It answered
\echo == 1001 first, so the session is recomputed: 20 s, responder 9.
INSERT INTO session_stream.messages VALUES (9, 1001, '2024-05-01 09:00:20', true);
SELECT customer_id, opened_at::time AS opened, responder_id AS responder,
       answered_at::time AS answered, answered_at - opened_at AS first_response
  FROM session_stream.sessions ORDER BY customer_id, opened_at;

\echo == Late: 1002 had asked at 09:00:50 already; the session starts there.
INSERT INTO session_stream.messages VALUES (3, 1002, '2024-05-01 09:00:50', false);
SELECT customer_id, opened_at::time AS opened, responder_id AS responder,
       answered_at::time AS answered, answered_at - opened_at AS first_response
  FROM session_stream.sessions ORDER BY customer_id, opened_at;

\echo == Average first-response time of answered sessions:
SELECT count(*) AS answered_sessions,
       avg(answered_at - opened_at) AS avg_first_response
  FROM session_stream.sessions WHERE answered_at IS NOT NULL;

\echo == Edits count: the reply to 1002 was logged with a wrong clock;
\echo == fixing its time to 09:02:00 answers 1002 a minute sooner.
UPDATE session_stream.messages SET sent_at = '2024-05-01 09:02:00'
 WHERE customer_id = 1002 AND from_agent;
SELECT customer_id, opened_at::time AS opened, responder_id AS responder,
       answered_at::time AS answered, answered_at - opened_at AS first_response
  FROM session_stream.sessions ORDER BY customer_id, opened_at;

\echo
\echo == Pair mode on your own table, tbl(a, b, ts, direct) as in the seeds.
CREATE TABLE tbl (a int NOT NULL, b int NOT NULL, ts timestamp NOT NULL,
                  direct boolean NOT NULL);
CREATE INDEX ON tbl (b, ts);
CREATE TRIGGER tbl_sessions AFTER INSERT ON tbl FOR EACH ROW
    EXECUTE FUNCTION session_stream.track_sessions(
        'pair', 'agent=a', 'customer=b', 'ts=ts', 'from_agent=direct');
INSERT INTO tbl VALUES
    (1, 50, '2024-05-01 10:00:05', true),   -- agent 1 answers at :05 ...
    (1, 50, '2024-05-01 10:00:00', false),  -- ... the question sent at :00
    (2, 50, '2024-05-01 10:00:01', false),  -- the same customer asks agent 2
    (2, 50, '2024-05-01 10:00:09', true);
SELECT customer_id, agent_id, opened_at::time AS opened,
       answered_at::time AS answered, answered_at - opened_at AS first_response
  FROM session_stream.pair_sessions ORDER BY agent_id;

\echo
\echo == Feed rules: an order feed merged by upserts, a rule, and its alert.
CREATE TABLE feed (id int8 PRIMARY KEY, c1 int, c2 int);
SELECT session_stream.watch('feed');
INSERT INTO session_stream.feed_rules (source, name, condition)
VALUES ('feed', 'big_order', 'c2 > 9999');
LISTEN session_stream_alerts;
INSERT INTO feed VALUES (1, 1, 20), (2, 1, 30)
    ON CONFLICT (id) DO UPDATE SET c1 = excluded.c1, c2 = excluded.c2;
\echo == an upsert that breaks the rule; psql shows the alert it receives:
INSERT INTO feed VALUES (2, 2, 12000)
    ON CONFLICT (id) DO UPDATE SET c1 = excluded.c1, c2 = excluded.c2;
SELECT 'alert received above' AS note;

\echo
\echo == The report support teams are judged by: first responses per hour,
\echo == median, p90 and the slowest, around the clock and in business hours
\echo == (a calendar: UTC, Monday to Friday 09:00-17:00; 2024-05-01 is a Wednesday).
SELECT bucket_start::time AS hour, sessions, answered, still_open, p50, p90, max
  FROM session_stream.response_times('session_stream.sessions',
                                     '2024-05-01 09:00', '2024-05-01 10:00', '1 hour');
INSERT INTO session_stream.calendars VALUES ('office', 'UTC');
INSERT INTO session_stream.business_hours
SELECT 'office', d, '09:00', '17:00' FROM generate_series(1, 5) d;
SELECT bucket_start::time AS hour, answered, p50, max
  FROM session_stream.response_times('session_stream.sessions',
                                     '2024-05-01 09:00', '2024-05-01 10:00', '1 hour',
                                     calendar => 'office');

\echo
\echo == An SLA: answer within 2 minutes.  The question of 1001 at 09:05 is still
\echo == open; check_slas(), run from cron, raises one alert for it, and
\echo == only one however often it runs.  psql shows the alert it receives:
INSERT INTO session_stream.sla_policies (name, target, covers_from)
VALUES ('first_reply', '2 minutes', '2024-05-01');
LISTEN session_stream_alerts;
SELECT session_stream.check_slas() AS alerts_raised;
SELECT session_stream.check_slas() AS alerts_raised_again;
SQL
echo "== done; removing the throwaway server"
