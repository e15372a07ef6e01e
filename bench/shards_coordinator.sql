-- shards (b): the same message through the coordinator's
-- session_stream_cluster.messages (a postgres_fdw partition).
\set a random(1, 10)
\set b random(1, 10000)
\set bo random(0, 1)
INSERT INTO session_stream_cluster.messages (agent_id, customer_id, sent_at, from_agent)
VALUES (:a, :b, clock_timestamp(), :bo::boolean);
