-- Before each shards run, in the shard: no messages, no sessions.
TRUNCATE session_stream.messages, session_stream.sessions_closed,
         session_stream.sessions_latest;
