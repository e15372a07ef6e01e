# Shared by t/005 (dump and restore) and t/006 (update from 0.1): a
# database holding every kind of state session_stream keeps, and the checks
# that a copy or an update of it kept that state and still works.
#
# The database (create_streams, then write_streams):
#   - a realtime customer stream on session_stream.messages;
#   - a realtime pair stream on the seeds' tbl(a, b, ts, direct);
#   - a deferred customer stream on dtbl, consumed twice (once while a
#     writer's transaction was open), with N messages still pending;
#   - a deferred pair stream on the same dtbl, results of its own, consumed
#     once before that writer began, with N_pair > N messages pending;
#   - a feed table with two outbox rules and their alerts.
# check_streams: the same rows in every table, realtime results equal the
# replay (test/reference.sql), late messages still placed exactly, for each
# mode of dtbl the next consume_window() takes exactly its pending messages
# (N customer, N_pair pair), its results then equal the replay, and later
# rows are taken exactly once, and feed rules still alert.
package StreamScenario;

use strict;
use warnings;
use Exporter 'import';
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use List::Util qw(shuffle);

our @EXPORT = qw(new_cluster load_oracle create_streams write_streams
  dump_database restore_database check_streams);

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

# The replay oracle (test/reference.sql), loaded anew.  It is the test's,
# not the application's: dump_database() drops it first.
sub load_oracle
{
	my ($node, $db) = @_;
	$node->safe_psql($db, 'DROP SCHEMA IF EXISTS oracle CASCADE');
	$node->safe_psql($db, slurp_file('test/reference.sql'));
	return;
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

# A table's columns, in order, as a select list.
sub table_columns
{
	my ($node, $db, $table) = @_;
	return $node->safe_psql($db, qq{
		SELECT string_agg(quote_ident(attname), ', ' ORDER BY attnum)
		  FROM pg_attribute
		 WHERE attrelid = '$table'::regclass AND attnum > 0 AND NOT attisdropped});
}

# A table's rows, in the given columns, as "count, md5 of the ordered
# text".  (A later version may add columns to a table: the rows it kept
# are compared in the columns they had.)
sub table_text
{
	my ($node, $db, $table, $columns) = @_;
	return $node->safe_psql($db, qq{
		SELECT count(*) || ' rows, md5 '
		       || coalesce(md5(string_agg(t::text, E'\\n' ORDER BY t::text)), '-')
		  FROM (SELECT $columns FROM $table) t});
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

my $dtbl_into = 'dtbl (agent_id, customer_id, sent_at, from_agent)';

# The tables a copy or an update must keep row for row.
my @tables = qw(session_stream.messages session_stream.sessions
  session_stream.pair_sessions dsessions dpair_sessions
  session_stream.sessions_latest session_stream.pair_sessions_latest
  dsessions_latest dpair_sessions_latest tbl dtbl feed
  session_stream.feed_rules session_stream.alerts
  session_stream.consumed_windows);

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

# The streams' tables, triggers, results sets and rules, no messages yet,
# in a database that has the extension.
sub create_streams
{
	my ($node, $db) = @_;
	$node->safe_psql($db, q{
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
	return;
}

# Messages, windows and alerts into the streams create_streams() made,
# checked as they go; returns what check_streams() compares a copy with.
sub write_streams
{
	my ($node, $db, $label) = @_;
	my %state;

	# a. and b.: a few hundred messages in a random order, out of
	# event-time order, single- and multi-row INSERTs.
	$node->safe_psql($db,
		insert_sql('session_stream.messages (agent_id, customer_id, sent_at, from_agent)',
			random_rows(400, 0, 7200, '+00')));
	$node->safe_psql($db,
		insert_sql('tbl (a, b, ts, direct)', random_rows(300, 0, 7200, '')));

	# c.: consume twice, the second time while a writer's transaction is
	# open (its rows stay pending: they are in the window's in-progress
	# list), then more rows, some late for what was consumed.  c'.: pair
	# mode consumes the first 150 rows with customer mode's first window,
	# and not again.
	$node->safe_psql($db, insert_sql($dtbl_into, random_rows(150, 0, 3600, '+00')));
	is( $node->safe_psql($db,
			q{SELECT status FROM session_stream.consume_window('customer', 'dtbl')}),
		'consumed', "$label: first window of dtbl consumed");
	is( $node->safe_psql($db,
			q{SELECT status || ' ' || messages FROM session_stream.consume_window('pair', 'dtbl')}),
		'consumed 150', "$label: the only pair window of dtbl consumes its 150 rows");
	is(diff_count($node, $db, 'deferred_pair'), '0',
		"$label: deferred pair results equal the replay of those rows");
	my $held = $node->background_psql($db);
	$held->query_safe("BEGIN;\n"
		  . insert_sql($dtbl_into, random_rows(10, 0, 5400, '+00')));
	$node->safe_psql($db, insert_sql($dtbl_into, random_rows(50, 1800, 5400, '+00')));
	is( $node->safe_psql($db,
			q{SELECT status FROM session_stream.consume_window('customer', 'dtbl')}),
		'consumed', "$label: second window of dtbl consumed while a writer is open");
	$held->query_safe('COMMIT');
	$held->quit;
	$node->safe_psql($db, insert_sql($dtbl_into, random_rows(60, 0, 7200, '+00')));

	for my $mode ('customer', 'pair')
	{
		$state{pending}{$mode} = $node->safe_psql($db,
			qq{SELECT pending FROM session_stream.pending_messages('$mode', 'dtbl')});
		is($state{pending}{$mode}, $node->safe_psql($db, dtbl_balance($mode)),
			"$label: pending_messages() counts the rows not consumed in $mode mode");
	}
	is($state{pending}{customer}, 10 + 60,
		"$label: the open writer's 10 rows and the 60 later ones are pending for customer");
	is($state{pending}{pair}, 10 + 50 + 60,
		"$label: every row after the first 150 is pending for pair");
	diag "$label: dtbl has "
	  . $node->safe_psql($db, 'SELECT count(*) FROM dtbl')
	  . " rows, $state{pending}{customer} pending for customer, "
	  . "$state{pending}{pair} for pair";

	# d.: writes that alert (an insert matching c2_high, an update crossing
	# c1 > 100) and some that do not.
	$node->safe_psql($db, q{
		INSERT INTO feed (id, c1, c2) VALUES (1, 5, 100), (2, 7, 20000), (3, 1, 1);
		INSERT INTO feed (id, c1, c2) VALUES (1, 150, 100)
		    ON CONFLICT (id) DO UPDATE SET c1 = excluded.c1, c2 = excluded.c2;
		UPDATE feed SET c1 = 160 WHERE id = 1;     -- already above: edge rule quiet
		UPDATE feed SET note = 'checked' WHERE id = 3;
	});
	$state{alerts} = $node->safe_psql($db, 'SELECT count(*) FROM session_stream.alerts');
	cmp_ok($state{alerts}, '>=', 2, "$label: the feed rules alerted");

	for my $stream ('customer', 'pair')
	{
		is(diff_count($node, $db, $stream), '0',
			"$label: $stream stream equals the replay");
	}

	$state{columns} = { map { $_ => table_columns($node, $db, $_) } @tables };
	$state{tables} =
	  { map { $_ => table_text($node, $db, $_, $state{columns}{$_}) } @tables };
	diag "$label: $_: $state{tables}{$_}" for @tables;
	$state{windows} = $node->safe_psql($db,
		'SELECT count(*) FROM session_stream.consumed_windows');
	$state{max_alert} = $node->safe_psql($db,
		'SELECT max(alert_id) FROM session_stream.alerts');
	return \%state;
}

# Plain and custom-format dumps of the database, without the oracle.
sub dump_database
{
	my ($node, $db) = @_;
	$node->safe_psql($db, 'DROP SCHEMA IF EXISTS oracle CASCADE');
	my $dir = PostgreSQL::Test::Utils::tempdir;
	my %dump = (plain => "$dir/$db.sql", custom => "$dir/$db.dump");
	$node->command_ok([ 'pg_dump', '-f', $dump{plain}, '-d', $node->connstr($db) ],
		"pg_dump of $db, plain format");
	$node->command_ok(
		[ 'pg_dump', '-Fc', '-f', $dump{custom}, '-d', $node->connstr($db) ],
		"pg_dump of $db, custom format");
	return \%dump;
}

# Restore a dump of dump_database() into an existing database.
sub restore_database
{
	my ($node, $db, $dump, $format, $label) = @_;
	my @restore =
	  $format eq 'plain'
	  ? ('psql', '-X', '-q', '-v', 'ON_ERROR_STOP=1', '-d', $node->connstr($db),
		'-f', $dump->{plain})
	  : ('pg_restore', '--exit-on-error', '-d', $node->connstr($db),
		$dump->{custom});
	my ($out, $err) = ('', '');
	my $restored = IPC::Run::run(\@restore, '>', \$out, '2>', \$err);
	ok($restored, "$label: restore exits with 0");
	unlike($err, qr/ERROR/, "$label: restore reports no error")
	  or diag $err;
	return;
}

# Everything write_streams() left is in the database and still works.
sub check_streams
{
	my ($node, $db, $label, $state) = @_;

	# The same rows.
	for my $table (@tables)
	{
		is(table_text($node, $db, $table, $state->{columns}{$table}),
			$state->{tables}{$table},
			"$label: $table has the old rows");
	}

	# Positions are beyond every recorded window's.
	is( $node->safe_psql($db, q{
			SELECT session_stream.current_txid() >= max(upto_xmax)
			  FROM session_stream.consumed_windows}),
		't', "$label: current_txid() is beyond the recorded windows");

	# The realtime streams equal the replay, and place late messages.
	load_oracle($node, $db);
	for my $stream ('customer', 'pair')
	{
		is(diff_count($node, $db, $stream), '0',
			"$label: $stream stream equals the replay");
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

	# Edits of session_stream.messages keep its results exact (0.2).
	$node->safe_psql($db, q{
		DELETE FROM session_stream.messages WHERE customer_id = 3 AND from_agent;
		UPDATE session_stream.messages SET sent_at = sent_at - interval '30 min'
		 WHERE customer_id = 4 AND NOT from_agent;
		UPDATE session_stream.messages SET customer_id = 6 WHERE customer_id = 7;
	});
	is(diff_count($node, $db, 'customer'), '0',
		"$label: deletes and updates of messages keep the customer stream exact");

	# The deferred streams: in each mode the next window is exactly what
	# was pending in that mode.
	my %pending = %{ $state->{pending} };
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

	# Rows written since, some late for their customer.
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
		$state->{windows} + 4, "$label: two windows per mode recorded after the old ones");
	diag "$label: next windows: customer $first{customer}, pair $first{pair}; "
	  . "then: customer $second{customer}, pair $second{pair}; current_txid() = "
	  . $node->safe_psql($db, 'SELECT session_stream.current_txid()');

	# Feed rules still alert, into the kept outbox.
	$node->safe_psql($db, q{
		INSERT INTO feed (id, c1, c2) VALUES (100, 1, 50000)
		    ON CONFLICT (id) DO UPDATE SET c1 = excluded.c1, c2 = excluded.c2});
	is( $node->safe_psql($db, qq{
			SELECT count(*) || ' ' || string_agg(rule || ':' || (payload->'row'->>'id'), ',')
			  FROM session_stream.alerts WHERE alert_id > $state->{max_alert}}),
		'1 c2_high:100', "$label: a write matching a rule adds an alert");
	is( $node->safe_psql($db, 'SELECT count(*) FROM session_stream.alerts'),
		$state->{alerts} + 1, "$label: the old alerts are kept");
	return;
}

1;
