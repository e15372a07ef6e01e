-- shards: database shard0 of this cluster is the shard (session_stream,
-- its realtime customer-mode trigger); this database is a coordinator
-- over it alone, reaching it through postgres_fdw over the cluster's unix
-- socket.  psql variables: host, port.
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS postgres_fdw;
DROP SCHEMA IF EXISTS session_stream_cluster CASCADE;
DROP SERVER IF EXISTS shard0 CASCADE;
RESET client_min_messages;
CREATE SERVER shard0 FOREIGN DATA WRAPPER postgres_fdw
    OPTIONS (host :'host', port :'port', dbname 'shard0');
CREATE USER MAPPING FOR CURRENT_USER SERVER shard0;
SELECT session_stream.attach_shards('{shard0}');
