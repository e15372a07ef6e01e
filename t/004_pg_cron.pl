# consume_window() scheduled with pg_cron (Debian's postgresql-15-cron) on
# a throwaway cluster: messages written while the job is scheduled turn
# into sessions without anyone calling the function by hand.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('cron');
# scripts/test.sh installs pg_cron for PostgreSQL 15; a build against
# another server (README, "PostgreSQL versions") may have none
plan skip_all => 'pg_cron is not installed for this server'
  unless -e $node->config_data('--pkglibdir') . '/pg_cron.so';
$node->init;
$node->append_conf('postgresql.conf', q{
shared_preload_libraries = 'pg_cron'
cron.database_name = 'postgres'
cron.use_background_workers = on
max_worker_processes = 16
});
$node->start;

$node->safe_psql('postgres', 'CREATE EXTENSION pg_cron');
$node->safe_psql('postgres', 'CREATE EXTENSION session_stream');
$node->safe_psql('postgres', slurp_file('test/reference.sql'));
$node->safe_psql('postgres', q{
	ALTER TABLE session_stream.messages DISABLE TRIGGER track_sessions_customer;
	SELECT cron.schedule('consume-sessions', '* * * * *',
	                     'SELECT session_stream.consume_window()');
	INSERT INTO session_stream.messages (agent_id, customer_id, sent_at, from_agent)
	SELECT 1 + (random() * 3)::int, 1 + (random() * 49)::int,
	       now() - random() * interval '10 min', random() < 0.5
	  FROM generate_series(1, 2000);
});

# pg_cron runs at the start of each minute: wait for a consumed window.
ok( $node->poll_query_until('postgres',
		'SELECT count(*) > 0 FROM session_stream.consumed_windows'),
	'the scheduled job consumed messages');
is( $node->safe_psql('postgres', q{
		SELECT status FROM cron.job_run_details ORDER BY runid LIMIT 1}),
	'succeeded', 'the job run succeeded');
is( $node->safe_psql('postgres', q{
		SELECT count(*) FROM oracle.diff('customer',
		  'SELECT agent_id, customer_id, sent_at, from_agent FROM session_stream.messages',
		  'session_stream.sessions')}),
	'0', 'sessions from the scheduled job equal the replay');

$node->stop;
done_testing();
