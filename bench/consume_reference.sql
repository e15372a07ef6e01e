-- An expert's one-statement answer to customer mode, for bench/run.sh
-- consume: the sessions of the messages in expert_messages(a, b, ts,
-- direct), by window functions over each customer's messages in event-time
-- order (ts, direct, a).  A session opens at a customer message that
-- follows an agent message or nothing (lag), and is answered by the first
-- agent message after it: the next change of direction (lead over the
-- changes).  Both windows sort alike: one sort.
CREATE VIEW reference_sessions AS
SELECT b AS customer_id, ts AS opened_at,
       next_a AS responder_id, next_ts AS answered_at
  FROM (SELECT b, ts, direct,
               lead(a) OVER w AS next_a, lead(ts) OVER w AS next_ts
          FROM (SELECT a, b, ts, direct,
                       lag(direct) OVER w AS prev_direct
                  FROM expert_messages
                WINDOW w AS (PARTITION BY b ORDER BY ts, direct, a)) m
         WHERE prev_direct IS DISTINCT FROM direct
        WINDOW w AS (PARTITION BY b ORDER BY ts, direct, a)) changes
 WHERE NOT direct;
