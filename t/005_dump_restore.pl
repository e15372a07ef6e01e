# pg_dump and restore into a fresh database keep everything: messages,
# results, consumer state, rules and alerts, and working triggers.
#
# The old cluster's 64-bit xids are far ahead (epoch 7, set with
# pg_resetwal -e); it is restored, plain (psql) and custom format
# (pg_restore), into a cluster whose xids are far behind (epoch 0), one
# whose xids are ahead of it (epoch 20) and one whose xids are ahead of it
# by more than 2^40 (epoch 1000), beyond any headroom a restore may add
# to restored positions.  In the old database:
#   - a realtime customer stream on session_stream.messages;
#   - a realtime pair stream on the seeds' tbl(a, b, ts, direct);
#   - a deferred customer stream on dtbl, consumed twice (once while a
#     writer's transaction was open), with N messages still pending;
#   - a deferred pair stream on the same dtbl, results of its own, consumed
#     once before that writer began, with N_pair > N messages pending;
#   - a feed table with two outbox rules and their alerts.
# After each restore: the same rows in every table, realtime results equal
# the replay (test/reference.sql), late messages still placed exactly, for
# each mode of dtbl the next consume_window() takes exactly its pending
# messages (N customer, N_pair pair), its results then equal the replay, and
# later rows are taken exactly once, and feed rules still alert.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use List::Util qw(shuffle sum);
use Time::HiRes qw(time);

my $started = time;
my $seed = $ENV{SS_SEED} // int(rand(1_000_000_000));
srand($seed);
diag "random seed $seed (SS_SEED=$seed repeats this run)";

# A cluster whose next xid has the given epoch; the epoch is checked.
sub new_cluster
{
	my ($name, $epoch) = @_;
	my $node = PostgreSQL::Test::Cluster->new($name);
	$node->init;
	command_ok([ 'pg_resetwal', '-e', $epoch, $node->data_dir ],
		"$name: pg_resetwal -e $epoch")
	  if $epoch;
	$node->start;
	is($node->safe_psql('postgres', 'SELECT txid_current() >> 32'),
		$epoch, "$name: 64-bit xids are in epoch $epoch");
	diag "$name cluster: txid_current() = "
	  . $node->safe_psql('postgres', 'SELECT txid_current()');
	return $node;
}

# A random event time in 2024-05-01 09:00 + [from, to) seconds, UTC, as
# text; half of them on whole seconds so that some times tie.
sub random_time
{
	my ($from, $to) = @_;
	my $ms = int(1000 * ($from + rand($to - $from)));
	$ms -= $ms % 1000 if rand() < 0.5;
	my $s = $ms / 1000;
	return sprintf('2024-05-01 %02d:%02d:%06.3f',
		9 + int($s / 3600), int($s / 60) % 60, $s - 60 * int($s / 60));
}

# $n random messages (agent, customer, time, direction) as SQL value rows.
# $tz: '+00' for a timestamptz column, '' for a timestamp one.
sub random_rows
{
	my ($n, $from, $to, $tz) = @_;
	return map {
		sprintf("(%d, %d, '%s%s', %s)",
			1 + int(rand(5)), 1 + int(rand(30)),
			random_time($from, $to), $tz,
			rand() < 0.5 ? 'true' : 'false')
	} 1 .. $n;
}

# INSERT statements for the rows, in a random order, 1 to 5 rows each.
sub insert_sql
{
	my ($into, @rows) = @_;
	@rows = shuffle(@rows);
	my $sql = '';
	while (@rows)
	{
		my @chunk = splice(@rows, 0, 1 + int(rand(5)));
		$sql .= "INSERT INTO $into VALUES\n  " . join(",\n  ", @chunk) . ";\n";
	}
	return $sql;
}

# A table's rows, all columns, as "count, md5 of the ordered text".
sub table_text
{
	my ($node, $db, $table) = @_;
	return $node->safe_psql($db, qq{
		SELECT count(*) || ' rows, md5 '
		       || coalesce(md5(string_agg(t::text, E'\\n' ORDER BY t::text)), '-')
		  FROM $table t});
}

my %streams = (
	customer => [
		'customer',
		'SELECT agent_id, customer_id, sent_at, from_agent FROM session_stream.messages',
		'session_stream.sessions' ],
	pair => [
		'pair',
		q{SELECT a, b, ts AT TIME ZONE 'UTC', direct FROM tbl},
		'session_stream.pair_sessions' ],
	deferred => [
		'customer',
		'SELECT agent_id, customer_id, sent_at, from_agent FROM dtbl',
		'public.dsessions' ],
	deferred_pair => [
		'pair',
		'SELECT agent_id, customer_id, sent_at, from_agent FROM dtbl',
		'public.dpair_sessions' ],);

# The deferred streams on dtbl by mode, as named in %streams.
my %deferred = (customer => 'deferred', pair => 'deferred_pair');

# Rows in which the results and the replay differ (0 when exact).
sub diff_count
{
	my ($node, $db, $stream) = @_;
	my ($mode, $query, $results) = @{ $streams{$stream} };
	return $node->safe_psql($db, qq{
		SELECT count(*) FROM oracle.diff('$mode', \$q\$$query\$q\$, '$results')});
}

# Sum of the messages consumed from dtbl in a mode, minus its rows: 0 when
# every message was consumed exactly once in that mode.
sub dtbl_balance
{
	my ($mode) = @_;
	return qq{
	SELECT (SELECT count(*) FROM dtbl)
	     - (SELECT coalesce(sum(messages), 0) FROM session_stream.consumed_windows
	         WHERE source = 'dtbl'::regclass AND mode = '$mode')};
}

my $old = new_cluster('old', 7);
my $behind = new_cluster('behind', 0);
my $ahead = new_cluster('ahead', 20);
my $beyond = new_cluster('beyond', 1000);

# 1. The old database.
$old->safe_psql('postgres', 'CREATE EXTENSION session_stream');
$old->safe_psql('postgres', slurp_file('test/reference.sql'));
$old->safe_psql('postgres', q{
	-- b. realtime pair stream on the seeds' table
	CREATE TABLE tbl (a int, b int, ts timestamp, direct boolean);
	CREATE INDEX ON tbl (b, ts);
	CREATE TRIGGER tbl_sessions AFTER INSERT ON tbl FOR EACH ROW
	    EXECUTE FUNCTION session_stream.track_sessions(
	        'pair', 'agent=a', 'customer=b', 'ts=ts', 'from_agent=direct');

	-- c. deferred customer stream with results of its own
	CREATE TABLE dtbl (agent_id int, customer_id int, sent_at timestamptz,
	                   from_agent boolean,
	                   txid bigint NOT NULL DEFAULT session_stream.current_txid());
	CREATE INDEX ON dtbl USING brin (txid);
	SELECT session_stream.create_results('public.dsessions', 'customer');
	CREATE TRIGGER dtbl_sessions AFTER INSERT ON dtbl FOR EACH ROW
	    EXECUTE FUNCTION session_stream.track_sessions(
	        'customer', 'results=public.dsessions');
	ALTER TABLE dtbl DISABLE TRIGGER dtbl_sessions;

	-- c'. deferred pair stream on the same dtbl, results of its own
	SELECT session_stream.create_results('public.dpair_sessions', 'pair');
	CREATE TRIGGER dtbl_pair_sessions AFTER INSERT ON dtbl FOR EACH ROW
	    EXECUTE FUNCTION session_stream.track_sessions(
	        'pair', 'results=public.dpair_sessions');
	ALTER TABLE dtbl DISABLE TRIGGER dtbl_pair_sessions;

	-- d. a feed table with outbox rules
	CREATE TABLE feed (id int8 PRIMARY KEY, c1 int, c2 int, note text);
	SELECT session_stream.watch('feed');
	INSERT INTO session_stream.feed_rules (source, name, condition, delivery)
	VALUES ('feed', 'c2_high', 'c2 > 9999', 'outbox');
	INSERT INTO session_stream.feed_rules
	       (source, name, condition, channel, delivery, on_update)
	VALUES ('feed', 'c1_crossed', 'c1 > 100', 'feed_c1', 'outbox', 'edge');
});

# a. and b.: a few hundred messages in a random order, out of event-time
# order, single- and multi-row INSERTs.
$old->safe_psql('postgres',
	insert_sql('session_stream.messages (agent_id, customer_id, sent_at, from_agent)',
		random_rows(400, 0, 7200, '+00')));
$old->safe_psql('postgres',
	insert_sql('tbl (a, b, ts, direct)', random_rows(300, 0, 7200, '')));

# c.: consume twice, the second time while a writer's transaction is open
# (its rows stay pending: they are in the window's in-progress list), then
# more rows, some late for what was consumed.  c'.: pair mode consumes the
# first 150 rows with customer mode's first window, and not again.
my $dtbl_into = 'dtbl (agent_id, customer_id, sent_at, from_agent)';
$old->safe_psql('postgres', insert_sql($dtbl_into, random_rows(150, 0, 3600, '+00')));
is( $old->safe_psql('postgres',
		q{SELECT status FROM session_stream.consume_window('customer', 'dtbl')}),
	'consumed', 'old: first window of dtbl consumed');
is( $old->safe_psql('postgres',
		q{SELECT status || ' ' || messages FROM session_stream.consume_window('pair', 'dtbl')}),
	'consumed 150', 'old: the only pair window of dtbl consumes its 150 rows');
is(diff_count($old, 'postgres', 'deferred_pair'), '0',
	'old: deferred pair results equal the replay of those rows');
my $held = $old->background_psql('postgres');
$held->query_safe("BEGIN;\n"
	  . insert_sql($dtbl_into, random_rows(10, 0, 5400, '+00')));
$old->safe_psql('postgres', insert_sql($dtbl_into, random_rows(50, 1800, 5400, '+00')));
is( $old->safe_psql('postgres',
		q{SELECT status FROM session_stream.consume_window('customer', 'dtbl')}),
	'consumed', 'old: second window of dtbl consumed while a writer is open');
$held->query_safe('COMMIT');
$held->quit;
$old->safe_psql('postgres', insert_sql($dtbl_into, random_rows(60, 0, 7200, '+00')));

my %pending;
for my $mode ('customer', 'pair')
{
	$pending{$mode} = $old->safe_psql('postgres',
		qq{SELECT pending FROM session_stream.pending_messages('$mode', 'dtbl')});
	is($pending{$mode}, $old->safe_psql('postgres', dtbl_balance($mode)),
		"old: pending_messages() counts the rows not consumed in $mode mode");
}
is($pending{customer}, 10 + 60,
	'old: the open writer\'s 10 rows and the 60 later ones are pending for customer');
is($pending{pair}, 10 + 50 + 60,
	'old: every row after the first 150 is pending for pair');
diag "old: dtbl has "
  . $old->safe_psql('postgres', 'SELECT count(*) FROM dtbl')
  . " rows, $pending{customer} pending for customer, $pending{pair} for pair";

# d.: writes that alert (an insert matching c2_high, an update crossing
# c1 > 100) and some that do not.
$old->safe_psql('postgres', q{
	INSERT INTO feed (id, c1, c2) VALUES (1, 5, 100), (2, 7, 20000), (3, 1, 1);
	INSERT INTO feed (id, c1, c2) VALUES (1, 150, 100)
	    ON CONFLICT (id) DO UPDATE SET c1 = excluded.c1, c2 = excluded.c2;
	UPDATE feed SET c1 = 160 WHERE id = 1;     -- already above: edge rule quiet
	UPDATE feed SET note = 'checked' WHERE id = 3;
});
my $alerts = $old->safe_psql('postgres', 'SELECT count(*) FROM session_stream.alerts');
cmp_ok($alerts, '>=', 2, 'old: the feed rules alerted');

for my $stream ('customer', 'pair')
{
	is(diff_count($old, 'postgres', $stream), '0',
		"old: $stream stream equals the replay");
}

# What the restored databases must hold.
my @tables = qw(session_stream.messages session_stream.sessions
  session_stream.pair_sessions dsessions dpair_sessions
  session_stream.sessions_latest session_stream.pair_sessions_latest
  dsessions_latest dpair_sessions_latest tbl dtbl feed
  session_stream.feed_rules session_stream.alerts
  session_stream.consumed_windows);
my %expected = map { $_ => table_text($old, 'postgres', $_) } @tables;
diag "old: $_: $expected{$_}" for @tables;
my $windows = $old->safe_psql('postgres',
	'SELECT count(*) FROM session_stream.consumed_windows');
my $max_alert = $old->safe_psql('postgres',
	'SELECT max(alert_id) FROM session_stream.alerts');

# 2. Dump.  The oracle is the test's, not the application's: it is loaded
# again after each restore.
$old->safe_psql('postgres', 'DROP SCHEMA oracle CASCADE');
my $dumpdir = PostgreSQL::Test::Utils::tempdir;
my %dump = (plain => "$dumpdir/old.sql", custom => "$dumpdir/old.dump");
$old->command_ok(
	[ 'pg_dump', '-f', $dump{plain}, '-d', $old->connstr('postgres') ],
	'pg_dump, plain format');
$old->command_ok(
	[ 'pg_dump', '-Fc', '-f', $dump{custom}, '-d', $old->connstr('postgres') ],
	'pg_dump, custom format');

# 3. and 4. Restore each dump into a fresh database of each new cluster.
for my $node ($behind, $ahead, $beyond)
{
	for my $format ('plain', 'custom')
	{
		check_restore($node, $format);
	}
}

$_->stop for ($old, $behind, $ahead, $beyond);
diag sprintf('took %.1f s', time - $started);
done_testing();

sub check_restore
{
	my ($node, $format) = @_;
	my $db = "restored_$format";
	my $label = $node->name . ", $format";

	$node->safe_psql('postgres', "CREATE DATABASE $db");
	my @restore =
	  $format eq 'plain'
	  ? ('psql', '-X', '-q', '-v', 'ON_ERROR_STOP=1', '-d', $node->connstr($db),
		'-f', $dump{plain})
	  : ('pg_restore', '--exit-on-error', '-d', $node->connstr($db),
		$dump{custom});
	my ($out, $err) = ('', '');
	my $restored = IPC::Run::run(\@restore, '>', \$out, '2>', \$err);
	ok($restored, "$label: restore exits with 0");
	unlike($err, qr/ERROR/, "$label: restore reports no error")
	  or diag $err;

	# The same rows.
	for my $table (@tables)
	{
		is(table_text($node, $db, $table), $expected{$table},
			"$label: $table has the old rows");
	}

	# Positions after the restore are beyond every restored window's.
	is( $node->safe_psql($db, q{
			SELECT session_stream.current_txid() >= max(upto_xmax)
			  FROM session_stream.consumed_windows}),
		't', "$label: current_txid() is beyond the restored windows");

	# The realtime streams equal the replay, and place late messages.
	$node->safe_psql($db, slurp_file('test/reference.sql'));
	for my $stream ('customer', 'pair')
	{
		is(diff_count($node, $db, $stream), '0',
			"$label: restored $stream stream equals the replay");
	}
	$node->safe_psql($db, q{
		-- before every message of customers 1 and 2, then a reply in between
		INSERT INTO session_stream.messages (agent_id, customer_id, sent_at, from_agent)
		SELECT 3, customer_id, min(sent_at) - interval '10 min', false
		  FROM session_stream.messages WHERE customer_id IN (1, 2) GROUP BY customer_id;
		INSERT INTO session_stream.messages (agent_id, customer_id, sent_at, from_agent)
		SELECT 4, customer_id, min(sent_at) + interval '5 min', true
		  FROM session_stream.messages WHERE customer_id = 1 GROUP BY customer_id;
		INSERT INTO session_stream.messages (agent_id, customer_id, sent_at, from_agent)
		VALUES (2, 5, '2024-05-01 09:59:59.5+00', false),
		       (2, 5, '2024-05-01 10:00:00.5+00', true);
		-- the same for the first two pairs of tbl
		INSERT INTO tbl (a, b, ts, direct)
		SELECT a, b, min(ts) - interval '10 min', false
		  FROM tbl GROUP BY a, b ORDER BY b, a LIMIT 2;
		INSERT INTO tbl (a, b, ts, direct)
		SELECT a, b, min(ts) + interval '5 min', true
		  FROM tbl GROUP BY a, b ORDER BY b, a LIMIT 1;
		INSERT INTO tbl (a, b, ts, direct)
		VALUES (1, 5, '2024-05-01 09:59:59.5', false),
		       (1, 5, '2024-05-01 10:00:00.5', true);
	});
	for my $stream ('customer', 'pair')
	{
		is(diff_count($node, $db, $stream), '0',
			"$label: late messages in the $stream stream are placed exactly");
	}

	# The deferred streams: in each mode the next window is exactly what
	# was pending in that mode.
	my %first;
	for my $mode ('customer', 'pair')
	{
		is( $node->safe_psql($db,
				qq{SELECT pending FROM session_stream.pending_messages('$mode', 'dtbl')}),
			$pending{$mode},
			"$label: pending_messages() reports the $pending{$mode} pending $mode messages");
		$first{$mode} = $node->safe_psql($db,
			qq{SELECT status || ' ' || messages FROM session_stream.consume_window('$mode', 'dtbl')});
		is($first{$mode}, "consumed $pending{$mode}",
			"$label: the next $mode window consumes exactly the pending messages");
		is(diff_count($node, $db, $deferred{$mode}), '0',
			"$label: deferred $mode results equal the replay of dtbl");
	}

	# Rows written after the restore, some late for their customer.
	my @late = random_rows(5, 0, 7200, '+00');
	my @new = random_rows(3, 7200, 9000, '+00');
	$node->safe_psql($db, insert_sql($dtbl_into, @late, @new));
	my %second;
	for my $mode ('customer', 'pair')
	{
		$second{$mode} = $node->safe_psql($db,
			qq{SELECT status || ' ' || messages FROM session_stream.consume_window('$mode', 'dtbl')});
		is($second{$mode}, 'consumed ' . (@late + @new),
			"$label: the $mode window after consumes exactly the rows written since");
		is(diff_count($node, $db, $deferred{$mode}), '0',
			"$label: deferred $mode results still equal the replay");
	}
	for my $mode ('customer', 'pair')
	{
		is( $node->safe_psql($db,
				qq{SELECT status FROM session_stream.consume_window('$mode', 'dtbl')}),
			'empty', "$label: then nothing is left for $mode");
		is($node->safe_psql($db, dtbl_balance($mode)), '0',
			"$label: every dtbl message consumed exactly once in $mode mode");
	}
	is( $node->safe_psql($db, 'SELECT count(*) FROM session_stream.consumed_windows'),
		$windows + 4, "$label: two windows per mode recorded after the restored ones");
	diag "$label: next windows: customer $first{customer}, pair $first{pair}; "
	  . "then: customer $second{customer}, pair $second{pair}; current_txid() = "
	  . $node->safe_psql($db, 'SELECT session_stream.current_txid()');

	# Feed rules still alert, into the restored outbox.
	$node->safe_psql($db, q{
		INSERT INTO feed (id, c1, c2) VALUES (100, 1, 50000)
		    ON CONFLICT (id) DO UPDATE SET c1 = excluded.c1, c2 = excluded.c2});
	is( $node->safe_psql($db, qq{
			SELECT count(*) || ' ' || string_agg(rule || ':' || (payload->'row'->>'id'), ',')
			  FROM session_stream.alerts WHERE alert_id > $max_alert}),
		'1 c2_high:100', "$label: a write matching a rule adds an alert");
	is( $node->safe_psql($db, 'SELECT count(*) FROM session_stream.alerts'),
		$alerts + 1, "$label: the old alerts are kept");
	return;
}
