-- shards (d), (e): ten messages per statement through the coordinator.
INSERT INTO session_stream_cluster.messages (agent_id, customer_id, sent_at, from_agent)
SELECT 1 + (random() * 9)::int, 1 + (random() * 9999)::int, clock_timestamp(), random() < 0.5
  FROM generate_series(1, 10);
