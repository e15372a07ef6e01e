-- shards (a): one message straight into the shard, the realtime workload
-- (10 agents x 10k customers).
\set a random(1, 10)
\set b random(1, 10000)
\set bo random(0, 1)
INSERT INTO session_stream.messages (agent_id, customer_id, sent_at, from_agent)
VALUES (:a, :b, clock_timestamp(), :bo::boolean);
