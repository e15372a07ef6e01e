# The continuous consumer across restarts, with and without
# shared_preload_libraries.
#
# Without preloading, the worker is a dynamic background worker: it does
# not come back after a clean restart or stop('immediate') (consumer_stats
# says stopped; start_consumer() starts it again), but the postmaster keeps
# it across a crash restart (restart_after_crash).  With
# shared_preload_libraries = 'session_stream' the launcher brings it back
# after a clean restart and after stop('immediate'), and a killed worker
# (a crash restart) is back within about 5 s.  Eight writers with 2 s of
# arrival jitter and held transactions write while the worker consumes
# both modes; the server is stopped with stop('immediate') mid-stream,
# and after it comes back more writers write: once they stop, nothing is
# pending within 2 s, every message was consumed exactly once and the
# results equal the independent replay.  worker_state shows consuming
# while a batch waits for a lock.  DROP EXTENSION ends a worker; one whose
# database is dropped (DROP DATABASE ... WITH (FORCE)) is not started
# again and again.
# stop_consumer() stops the worker, and after a restart the launcher's
# worker finds nothing to consume and exits; a consumer restored (a row
# written without start_consumer()) gets its worker at pg_reload_conf().
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time usleep);
use lib 't';
use JitterWriters;

my $node = start_jitter_node('launcher');
# the test framework turns it off
$node->append_conf('postgresql.conf', "restart_after_crash = on\n");
$node->reload;
$node->safe_psql('postgres', q{
	ALTER TABLE session_stream.messages DISABLE TRIGGER track_sessions_customer;
	-- the writers' scripts also insert into the seeds' table; not consumed here
	CREATE TABLE tbl (a int NOT NULL, b int NOT NULL, ts timestamp NOT NULL,
	                  direct boolean NOT NULL);
	SELECT session_stream.start_consumer('session_stream.messages', 'customer');
	SELECT session_stream.start_consumer('session_stream.messages', 'pair');
});

my $worker_query = q{SELECT pid FROM pg_stat_activity
	WHERE backend_type = 'session_stream consumer' AND datname = 'postgres'};
my $workers = "SELECT count(*) FROM ($worker_query) w";

# wait_for_value() (JitterWriters.pm) on this node.
sub wait_for
{
	my ($query, $want, $seconds) = @_;
	return wait_for_value($node, $query, $want, $seconds);
}

sub states
{
	return $node->safe_psql('postgres', q{
		SELECT string_agg(mode || ' ' || worker_state, ', ' ORDER BY mode)
		  FROM session_stream.consumer_stats
		 WHERE source = 'session_stream.messages'::regclass});
}

ok(defined wait_for($workers, '1', 10), 'not preloaded: start_consumer() starts the worker');

# --- Without shared_preload_libraries --------------------------------

# A crash restart (a backend killed): the postmaster keeps its dynamic
# workers and starts them again.
my $pid = $node->safe_psql('postgres', $worker_query);
kill 'KILL', $pid;
my $back = wait_for("SELECT count(*) FROM ($worker_query) w WHERE pid <> $pid", '1', 15);
ok(defined $back, 'not preloaded: the worker comes back after a crash restart')
  and note sprintf('back %.1f s after the crash', $back);

# A restart: the worker ends with the server and stays away.
$node->restart;
usleep(3_000_000);
is($node->safe_psql('postgres', $workers), '0',
	'not preloaded: no worker after a restart');
is(states(), 'customer stopped, pair stopped',
	'consumer_stats says stopped; the consumers stay registered');
$node->safe_psql('postgres',
	q{SELECT session_stream.start_consumer('session_stream.messages', 'customer')});
ok(defined wait_for($workers, '1', 10),
	'start_consumer() of one registered consumer starts it again');

# --- With shared_preload_libraries -----------------------------------

$node->append_conf('postgresql.conf',
	"shared_preload_libraries = 'session_stream'\n");
$node->restart;
is($node->safe_psql('postgres', q{SELECT count(*) FROM pg_stat_activity
		WHERE backend_type = 'session_stream launcher'}), '1',
	'preloaded: the launcher runs');
ok(defined wait_for($workers, '1', 10), 'preloaded: the worker is back after a restart');
$pid = $node->safe_psql('postgres', $worker_query);

# worker_state: consuming while a batch waits for the results' lock.
my $dir = $PostgreSQL::Test::Utils::tmp_check;
my $locker = IPC::Run::start(
	[ 'psql', '-X', '-q', '-d', $node->connstr('postgres'), '-c', q{
		BEGIN;
		LOCK TABLE session_stream.sessions IN EXCLUSIVE MODE;
		SELECT pg_sleep(3);
		COMMIT;} ],
	'>', \my $locker_out, '2>', \my $locker_err);
ok(defined wait_for(q{SELECT count(*) FROM pg_locks
		WHERE relation = 'session_stream.sessions'::regclass AND mode = 'ExclusiveLock'
		  AND granted}, '1', 5), 'the results are locked');
$node->safe_psql('postgres', q{
	INSERT INTO session_stream.messages (agent_id, customer_id, sent_at, from_agent)
	VALUES (1, 1, now(), false)});
ok(defined wait_for(q{SELECT worker_state FROM session_stream.consumer_stats
		WHERE source = 'session_stream.messages'::regclass AND mode = 'customer'},
		'consuming', 5),
	'worker_state is consuming while a batch runs');
$locker->finish;
ok(defined wait_for(q{SELECT count(*) FROM session_stream.consumer_stats
		WHERE source = 'session_stream.messages'::regclass
		  AND worker_state = 'sleeping' AND lag IS NULL}, '2', 10),
	'and sleeping once it is done');

# Writers mid-stream, then stop('immediate').
append_to_file("$dir/one_row.sql", one_row_script());
append_to_file("$dir/held_open.sql", held_open_script(1000));
sub start_writers
{
	my ($seconds, $out, $err) = @_;
	return IPC::Run::start(
		[ 'pgbench', '--no-vacuum', '--client=8', '--jobs=2', "--time=$seconds",
		  '--max-tries=20', '-f', "$dir/one_row.sql\@19", '-f', "$dir/held_open.sql\@1",
		  $node->connstr('postgres') ],
		'>', $out, '2>', $err);
}
my ($out1, $err1, $out2, $err2) = ('', '', '', '');
my $writers = start_writers(20, \$out1, \$err1);
usleep(4_000_000);
my $before = $node->safe_psql('postgres',
	q{SELECT sum(messages) FROM session_stream.consumed_windows});
ok($before > 0, 'the worker consumed while the writers wrote');
$node->stop('immediate');
$writers->finish;			# they lost their connections
like($out1 . $err1, qr/connection|terminat|abort/i, 'the first writers were cut off by the crash');
$node->start;
ok(defined wait_for($workers, '1', 10), 'preloaded: the worker is back after stop(\'immediate\')');

$writers = start_writers(6, \$out2, \$err2);
usleep(2_000_000);

# Kill the worker: a crash restart; the launcher and the postmaster bring
# it back (one of them: never two).
$pid = $node->safe_psql('postgres', $worker_query);
kill 'KILL', $pid;
$back = wait_for("SELECT count(*) FROM ($worker_query) w WHERE pid <> $pid", '1', 15);
ok(defined $back && $back < 6.5, 'preloaded: the worker is back within about 5 s of a crash restart')
  or diag('back after ' . ($back // 'never'));
note sprintf('back %.1f s after the crash', $back // -1);
$writers->finish;			# cut off by the crash restart too

# The last writers: they run to the end.
($out2, $err2) = ('', '');
$writers = start_writers(5, \$out2, \$err2);
ok($writers->finish, 'the last writers ran without errors') or diag($err2);
like($out2, qr/processed: [1-9]/, 'and wrote');

my $caught_up = wait_for(q{
	SELECT sum(p.pending) FROM unnest(ARRAY['customer', 'pair']) m,
	       session_stream.pending_messages(m, 'session_stream.messages') p},
	'0', 15);
ok(defined $caught_up && $caught_up < 2, 'nothing pending within 2 s of the writers stopping')
  or diag('caught up after ' . ($caught_up // 'never'));
note sprintf('caught up %.2f s after the writers stopped', $caught_up // -1);
is($node->safe_psql('postgres', q{
	SELECT string_agg(mode || ' ' || (lag IS NULL) || ' ' || messages_pending, ', ' ORDER BY mode)
	  FROM session_stream.consumer_stats
	 WHERE source = 'session_stream.messages'::regclass}),
	'customer true 0, pair true 0', 'consumer_stats: no lag, nothing pending');

check_messages_consumed($node, ' across the crashes');
is($node->safe_psql('postgres', $workers), '1', 'one worker, not two');

# A database dropped under its worker: no restart loop.
$node->safe_psql('postgres', 'CREATE DATABASE doomed');
$node->safe_psql('doomed', q{
	CREATE EXTENSION session_stream;
	ALTER TABLE session_stream.messages DISABLE TRIGGER track_sessions_customer;
	SELECT session_stream.start_consumer();
});
my $doomed = q{SELECT count(*) FROM pg_stat_activity
	WHERE backend_type = 'session_stream consumer' AND datname = 'doomed'};
ok(defined wait_for($doomed, '1', 10), 'a worker consumes in a second database');

# DROP EXTENSION: the worker finds no consumer and exits.
$node->safe_psql('doomed', 'DROP EXTENSION session_stream');
ok(defined wait_for($doomed, '0', 5), 'DROP EXTENSION: the worker exits');
$node->safe_psql('doomed', q{
	CREATE EXTENSION session_stream;
	ALTER TABLE session_stream.messages DISABLE TRIGGER track_sessions_customer;
	SELECT session_stream.start_consumer();
});
ok(defined wait_for($doomed, '1', 10), 'and starts again with the extension');
my $log_offset = -s $node->logfile;
$node->safe_psql('postgres', 'DROP DATABASE doomed WITH (FORCE)');
usleep(7_000_000);			# longer than bgw_restart_time
my $log = slurp_file($node->logfile, $log_offset);
like($log, qr/consumer of database \d+ exits: the database no longer exists/,
	'the dropped database\'s worker, restarted, exits for good');
is(scalar(() = $log =~ /no longer exists/g), 1, 'once');

# stop_consumer() stops the worker; after a restart the launcher's worker
# finds nothing and exits.
$node->safe_psql('postgres', q{
	SELECT session_stream.stop_consumer('session_stream.messages', 'customer');
	SELECT session_stream.stop_consumer('session_stream.messages', 'pair');
});
ok(defined wait_for($workers, '0', 5), 'stop_consumer() stops the worker');
$node->restart;
usleep(2_000_000);
is($node->safe_psql('postgres', $workers), '0',
	'after a restart, no consumer: the launcher\'s worker exited');
is(states(), '', 'consumer_stats: no worker state for unregistered streams');

# A consumer registered without start_consumer() (as a restored dump's
# rows are): no worker until the launcher gets a SIGHUP.
$node->safe_psql('postgres', q{
	INSERT INTO session_stream.consumers (source, mode, role)
	VALUES ('session_stream.messages', 'customer', current_user::regrole)});
usleep(1_500_000);
is($node->safe_psql('postgres', $workers), '0', 'a consumer restored: no worker yet');
$node->safe_psql('postgres', 'SELECT pg_reload_conf()');
ok(defined wait_for($workers, '1', 10), 'pg_reload_conf(): the launcher starts it');

$node->stop;
done_testing();
