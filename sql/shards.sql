-- shard_for() and attach_shards() on one server: routing against local
-- hash partitions, and the refusals that need no shard.  t/012_shards.pl
-- runs a coordinator with three shards.
SET client_min_messages = warning;
\set SHOW_CONTEXT never

-- shard_for() places ids as PostgreSQL's hash partitioning does: rows
-- routed into a local table partitioned like session_stream_cluster.messages
CREATE TABLE routed (customer_id bigint) PARTITION BY HASH (customer_id);
CREATE TABLE routed_0 PARTITION OF routed FOR VALUES WITH (MODULUS 4, REMAINDER 0);
CREATE TABLE routed_1 PARTITION OF routed FOR VALUES WITH (MODULUS 4, REMAINDER 1);
CREATE TABLE routed_2 PARTITION OF routed FOR VALUES WITH (MODULUS 4, REMAINDER 2);
CREATE TABLE routed_3 PARTITION OF routed FOR VALUES WITH (MODULUS 4, REMAINDER 3);
INSERT INTO routed SELECT g FROM generate_series(-1000, 1000) g;
INSERT INTO routed VALUES (-9223372036854775808), (9223372036854775807), (2147483648), (-2147483649);
SELECT count(*) AS misplaced FROM routed
 WHERE tableoid <> ('routed_' || session_stream.shard_for(customer_id, 4))::regclass;
SELECT count(*) AS rows, count(DISTINCT tableoid) AS partitions FROM routed;
-- an integer key hashes as a bigint one of the same value
CREATE TABLE routed_int (customer_id integer) PARTITION BY HASH (customer_id);
CREATE TABLE routed_int_0 PARTITION OF routed_int FOR VALUES WITH (MODULUS 2, REMAINDER 0);
CREATE TABLE routed_int_1 PARTITION OF routed_int FOR VALUES WITH (MODULUS 2, REMAINDER 1);
INSERT INTO routed_int SELECT g FROM generate_series(-500, 500) g;
SELECT count(*) AS misplaced FROM routed_int
 WHERE tableoid <> ('routed_int_' || session_stream.shard_for(customer_id, 2))::regclass;
SELECT session_stream.shard_for(42, 1) AS one_shard, session_stream.shard_for(NULL, 3) AS null_id,
       session_stream.shard_for(42, NULL) AS null_shards;
SELECT provolatile, proisstrict, proparallel FROM pg_proc
 WHERE oid = 'session_stream.shard_for(bigint, integer)'::regprocedure;
SELECT session_stream.shard_for(42, 0);
SELECT session_stream.shard_for(42, -3);

-- attach_shards(): bad lists
SELECT session_stream.attach_shards(NULL);
SELECT session_stream.attach_shards('{}');
SELECT session_stream.attach_shards('{a,NULL}');
SELECT session_stream.attach_shards('{{a},{b}}');
SELECT session_stream.attach_shards('{a,b,a}');
-- no postgres_fdw
SELECT session_stream.attach_shards('{a}');
CREATE EXTENSION postgres_fdw;
-- servers that do not exist, of another wrapper, without a user mapping
SELECT session_stream.attach_shards('{nowhere}');
CREATE FOREIGN DATA WRAPPER other_fdw;
CREATE SERVER other FOREIGN DATA WRAPPER other_fdw;
SELECT session_stream.attach_shards('{other}');
CREATE SERVER unmapped FOREIGN DATA WRAPPER postgres_fdw OPTIONS (dbname 'nowhere');
SELECT session_stream.attach_shards('{unmapped}');
-- no USAGE on the server
CREATE ROLE shard_user;
GRANT CREATE ON DATABASE contrib_regression TO shard_user;
SET ROLE shard_user;
SELECT session_stream.attach_shards('{unmapped}');
RESET ROLE;
-- a schema of that name made by someone else
CREATE SCHEMA session_stream_cluster;
SELECT session_stream.attach_shards('{unmapped}');
DROP SCHEMA session_stream_cluster;
-- nothing is left behind
SELECT count(*) FROM pg_namespace WHERE nspname = 'session_stream_cluster';

REVOKE CREATE ON DATABASE contrib_regression FROM shard_user;
DROP ROLE shard_user;
DROP SERVER unmapped, other;
DROP FOREIGN DATA WRAPPER other_fdw;
DROP EXTENSION postgres_fdw;
DROP TABLE routed, routed_int;
