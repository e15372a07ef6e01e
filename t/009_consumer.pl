# The continuous consumer under load.
#
# Eight writers insert into session_stream.messages with up to 2 s of
# arrival jitter (t/002's scripts, held transactions included) for 10 s
# while the background worker consumes both modes (the realtime trigger is
# disabled) and a client calls consume_window() by hand now and then.
# Early on the worker is terminated (pg_terminate_backend): it must be back
# within about 5 s and resume from the committed positions.  Once the
# writers stop, nothing is pending within 3 s, every message was consumed
# exactly once and the results equal the independent replay.  With an SLA
# policy the worker raises a breach by itself (check_slas() about once a
# second), once.  stop_consumer() then ends the worker.
#
# Restarts, crashes and the shared_preload_libraries launcher: t/010.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time usleep);
use lib 't';
use JitterWriters;

my $node = start_jitter_node('consumer');
$node->safe_psql('postgres', q{
	ALTER TABLE session_stream.messages DISABLE TRIGGER track_sessions_customer;
	-- the writers' scripts also insert into the seeds' table; not consumed here
	CREATE TABLE tbl (a int NOT NULL, b int NOT NULL, ts timestamp NOT NULL,
	                  direct boolean NOT NULL);
	CREATE TABLE consume_log (status text, messages bigint);
	SELECT session_stream.start_consumer('session_stream.messages', 'customer');
	SELECT session_stream.start_consumer('session_stream.messages', 'pair');
});

my $worker_query = q{SELECT pid FROM pg_stat_activity
	WHERE backend_type = 'session_stream consumer' AND datname = 'postgres'};

# wait_for_value() (JitterWriters.pm) on this node.
sub wait_for
{
	my ($query, $want, $seconds) = @_;
	return wait_for_value($node, $query, $want, $seconds);
}

ok(defined wait_for("SELECT count(*) FROM ($worker_query) w", '1', 10),
	'one worker runs, shown in pg_stat_activity as session_stream consumer');
my $first_pid = $node->safe_psql('postgres', $worker_query);

# The writers, and a client calling consume_window() by hand.
my $dir = $PostgreSQL::Test::Utils::tmp_check;
append_to_file("$dir/one_row.sql", one_row_script());
append_to_file("$dir/held_open.sql", held_open_script(1000));
append_to_file("$dir/manual.sql", q{
INSERT INTO consume_log SELECT status, messages FROM session_stream.consume_window('customer');
INSERT INTO consume_log SELECT status, messages FROM session_stream.consume_window('pair');
\sleep 200 ms
});
my ($writers_out, $writers_err, $manual_out, $manual_err) = ('', '', '', '');
my $writers = IPC::Run::start(
	[ 'pgbench', '--no-vacuum', '--client=8', '--jobs=2', '--time=10',
	  '--max-tries=20', '-f', "$dir/one_row.sql\@19", '-f', "$dir/held_open.sql\@1",
	  $node->connstr('postgres') ],
	'>', \$writers_out, '2>', \$writers_err);
my $manual = IPC::Run::start(
	[ 'pgbench', '--no-vacuum', '--client=1', '--jobs=1', '--time=10',
	  '-f', "$dir/manual.sql", $node->connstr('postgres') ],
	'>', \$manual_out, '2>', \$manual_err);

# Mid-stream, terminate the worker; it comes back after bgw_restart_time.
sleep 2;
is($node->safe_psql('postgres', "SELECT pg_terminate_backend($first_pid)"),
	't', 'worker terminated mid-stream');
my $back = wait_for(
	"SELECT count(*) FROM ($worker_query) w WHERE pid <> $first_pid", '1', 15);
ok(defined $back && $back < 6.5, 'a new worker is back within about 5 s')
  or diag('back after ' . ($back // 'never'));
note sprintf('worker back after %.1f s', $back // -1);

ok($writers->finish, 'writers ran without errors') or diag($writers_err);
ok($manual->finish, 'manual consume_window() calls ran without errors')
  or diag($manual_err);
like($writers_out, qr/processed: [1-9]/, 'writers wrote');

# Once the writers stop, the worker catches up.
my $caught_up = wait_for(q{
	SELECT sum(p.pending) FROM unnest(ARRAY['customer', 'pair']) m,
	       session_stream.pending_messages(m, 'session_stream.messages') p},
	'0', 15);
ok(defined $caught_up && $caught_up < 3,
	'nothing pending within 3 s of the writers stopping')
  or diag('caught up after ' . ($caught_up // 'never'));
note sprintf('caught up %.1f s after the writers stopped', $caught_up // -1);

my $log = $node->safe_psql('postgres',
	"SELECT string_agg(status || ': ' || n, ', ' ORDER BY status)
	   FROM (SELECT status, count(*) n FROM consume_log GROUP BY status) s");
note "manual calls: $log";
unlike($log, qr/^$/, 'manual calls returned rows');
is($node->safe_psql('postgres',
		"SELECT count(*) FROM consume_log WHERE status NOT IN ('consumed', 'empty', 'busy')"),
	'0', 'manual calls returned consumed, empty or busy');

is($node->safe_psql('postgres', q{
	SELECT string_agg(mode || ' ' || (lag IS NULL) || ' ' || messages_pending, ', ' ORDER BY mode)
	  FROM session_stream.consumer_stats
	 WHERE source = 'session_stream.messages'::regclass}),
	'customer true 0, pair true 0', 'consumer_stats: no lag, nothing pending');
is($node->safe_psql('postgres', q{
	SELECT string_agg(mode || ' ' || (worker_state IN ('consuming', 'sleeping'))
	                  || ' ' || (last_error IS NULL), ', ' ORDER BY mode)
	  FROM session_stream.consumer_stats
	 WHERE source = 'session_stream.messages'::regclass}),
	'customer true true, pair true true',
	'consumer_stats: worker running, no error');

check_messages_consumed($node, '');

# With an SLA policy the worker also runs check_slas(), about once a
# second: a question left unanswered past a one-second target raises its
# alert (outbox) without anyone calling check_slas().
$node->safe_psql('postgres', q{
	INSERT INTO session_stream.sla_policies (name, target, delivery)
	VALUES ('one_second', '1 second', 'outbox');
	INSERT INTO session_stream.messages (agent_id, customer_id, sent_at, from_agent)
	VALUES (1, 424242, now(), false);
});
my $raised = wait_for(q{
	SELECT count(*) FROM session_stream.alerts
	 WHERE payload->>'policy' = 'one_second' AND payload->>'customer_id' = '424242'
	   AND payload->>'event' = 'breached'}, '1', 10);
ok(defined $raised, 'the worker raised the breach of an SLA policy on its own')
  and note sprintf('breach raised %.1f s after the message', $raised);
usleep(2_500_000);
is($node->safe_psql('postgres', q{
	SELECT count(*) FROM session_stream.alerts WHERE payload->>'policy' = 'one_second'
	   AND payload->>'customer_id' = '424242'}), '1',
	'and only once, however often it checks');

# stop_consumer() of both: the worker exits.
$node->safe_psql('postgres', q{
	SELECT session_stream.stop_consumer('session_stream.messages', 'customer');
	SELECT session_stream.stop_consumer('session_stream.messages', 'pair');
});
my $gone = wait_for("SELECT count(*) FROM ($worker_query) w", '0', 10);
ok(defined $gone && $gone < 3, 'the worker exits once no consumer is left')
  or diag('gone after ' . ($gone // 'never'));
usleep(6_000_000);		# longer than bgw_restart_time: it stays gone
is($node->safe_psql('postgres', "SELECT count(*) FROM ($worker_query) w"), '0',
	'and is not restarted');

$node->stop;
done_testing();
