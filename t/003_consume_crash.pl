# A consume_window() call killed halfway leaves nothing half-applied, and
# the next call consumes exactly what was not consumed.
#
# Two ways to die mid-batch: pg_terminate_backend() of the consumer, and an
# immediate shutdown of the server (no clean-up, crash recovery on start).
# Either way the killed call's sessions and its consumed_windows row are
# gone together; the next call consumes every message once and the results
# equal the independent replay.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(usleep);

my $node = PostgreSQL::Test::Cluster->new('crash');
$node->init;
$node->start;
$node->safe_psql('postgres', 'CREATE EXTENSION session_stream');
$node->safe_psql('postgres', slurp_file('test/reference.sql'));
$node->safe_psql('postgres',
	'ALTER TABLE session_stream.messages DISABLE TRIGGER track_sessions_customer');

# Enough messages of many customers that a call takes a while.
sub add_messages
{
	my ($n) = @_;
	$node->safe_psql('postgres', qq{
		INSERT INTO session_stream.messages (agent_id, customer_id, sent_at, from_agent)
		SELECT 1 + (random() * 9)::int, 1 + (random() * 99999)::int,
		       now() - random() * interval '1 hour', random() < 0.5
		  FROM generate_series(1, $n)});
}

# Start a consume_window() call in the background; wait until it has been
# running for a moment and return its pid.
sub start_consumer
{
	my $consumer = $node->background_psql('postgres', on_error_stop => 0);
	$consumer->query_until(qr/started/, q{
		\echo started
		SELECT * FROM session_stream.consume_window();
	});
	my $pid;
	for (1 .. 500)
	{
		$pid = $node->safe_psql('postgres', q{
			SELECT pid FROM pg_stat_activity
			 WHERE query LIKE '%consume_window()%' AND state = 'active'
			   AND now() - query_start > interval '200 ms'
			   AND pid <> pg_backend_pid()});
		last if $pid;
		usleep(10_000);
	}
	return ($consumer, $pid);
}

sub consumed_windows
{
	return $node->safe_psql('postgres',
		'SELECT count(*) FROM session_stream.consumed_windows');
}

sub check_exact
{
	my ($what) = @_;
	is( $node->safe_psql('postgres', q{
			SELECT (SELECT count(*) FROM session_stream.messages)
			     - (SELECT coalesce(sum(messages), 0) FROM session_stream.consumed_windows)}),
		'0', "$what: every message consumed exactly once");
	is( $node->safe_psql('postgres', q{
			SELECT count(*) FROM oracle.diff('customer',
			  'SELECT agent_id, customer_id, sent_at, from_agent FROM session_stream.messages',
			  'session_stream.sessions')}),
		'0', "$what: sessions equal the replay");
}

# 1. pg_terminate_backend() mid-batch.
add_messages(600_000);
my ($consumer, $pid) = start_consumer();
ok($pid, 'a consume_window() call is running');
$node->safe_psql('postgres', "SELECT pg_terminate_backend($pid)");
eval { $consumer->quit; };		# psql may already have exited
is(consumed_windows(), '0', 'terminated call recorded no window');
is($node->safe_psql('postgres', 'SELECT count(*) FROM session_stream.sessions'),
	'0', 'terminated call left no session');
is($node->safe_psql('postgres',
		'SELECT status FROM session_stream.consume_window()'),
	'consumed', 'the next call consumes');
check_exact('after pg_terminate_backend');

# 2. Immediate shutdown mid-batch, on top of sessions already consumed.
my $sessions_before = $node->safe_psql('postgres',
	'SELECT md5(string_agg(s::text, \',\' ORDER BY customer_id, opened_at)) FROM session_stream.sessions s');
add_messages(600_000);
($consumer, $pid) = start_consumer();
ok($pid, 'a second consume_window() call is running');
$node->stop('immediate');
eval { $consumer->quit; };		# its server is gone

$node->start;
is(consumed_windows(), '1', 'crashed call recorded no window');
is( $node->safe_psql('postgres',
		'SELECT md5(string_agg(s::text, \',\' ORDER BY customer_id, opened_at)) FROM session_stream.sessions s'),
	$sessions_before, 'crashed call changed no session');
is($node->safe_psql('postgres',
		'SELECT status FROM session_stream.consume_window()'),
	'consumed', 'after restart the next call consumes');
check_exact('after an immediate shutdown');

$node->stop;
done_testing();
