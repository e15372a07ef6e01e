# Shared by the randomised differential tests t/001 (realtime), t/002
# (deferred), t/007 and t/008 (the same with edits): a cluster with the
# extension and the replay oracle (test/reference.sql), and the pgbench
# scripts of the writers, which insert into session_stream.messages and the
# seeds' tbl(a, b, ts, direct) messages whose sent_at lags the insert by up
# to 2 s (arrival jitter), and edit them.
# Few keys (4 agents, 100 customers), so that writers meet on the same
# key all the time.
package JitterWriters;

use strict;
use warnings;
use Exporter 'import';
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time usleep);

our @EXPORT = qw(start_jitter_node one_row_script held_open_script
  edit_script held_edit_script replay_differences start_consumer_clients
  catch_up wait_for_value check_messages_consumed check_edits_made);

sub start_jitter_node
{
	my ($name) = @_;
	my $node = PostgreSQL::Test::Cluster->new($name);
	$node->init;
	$node->append_conf('postgresql.conf', "max_connections = 30\n");
	$node->start;
	$node->safe_psql('postgres', 'CREATE EXTENSION session_stream');
	$node->safe_psql('postgres', slurp_file('test/reference.sql'));
	return $node;
}

# One message to each stream, single-row statements.
sub one_row_script
{
	return q{
\set a random(1, 4)
\set b random(1, 100)
\set bo random(0, 1)
\set lag random(0, 2000000)
INSERT INTO session_stream.messages (agent_id, customer_id, sent_at, from_agent) VALUES
  (:a, :b, clock_timestamp() - :lag * interval '1 us', :bo::boolean);
INSERT INTO tbl (a, b, ts, direct) VALUES
  (:a, :b, (clock_timestamp() AT TIME ZONE 'UTC') - :lag * interval '1 us', :bo::boolean);
};
}

# Multi-row statements in a transaction held open for up to $max_hold_ms.
sub held_open_script
{
	my ($max_hold_ms) = @_;
	return "\\set hold random(0, $max_hold_ms)\n" . q{
BEGIN;
INSERT INTO session_stream.messages (agent_id, customer_id, sent_at, from_agent)
SELECT 1 + (random() * 3)::int, 1 + (random() * 99)::int,
       clock_timestamp() - random() * interval '2 s', random() < 0.5
  FROM generate_series(1, 3);
INSERT INTO tbl (a, b, ts, direct)
SELECT 1 + (random() * 3)::int, 1 + (random() * 99)::int,
       (clock_timestamp() AT TIME ZONE 'UTC') - random() * interval '2 s', random() < 0.5
  FROM generate_series(1, 3);
\sleep :hold ms
INSERT INTO session_stream.messages (agent_id, customer_id, sent_at, from_agent)
SELECT 1 + (random() * 3)::int, 1 + (random() * 99)::int,
       clock_timestamp() - random() * interval '2 s', random() < 0.5
  FROM generate_series(1, 2);
COMMIT;
};
}

# One edit of each stream: the row is one of customer :b's, picked at
# random; :op chooses the edit.
sub edit_script
{
	return q{
\set op random(1, 7)
\set b random(1, 100)
\set other random(1, 100)
\set a random(1, 4)
\set shift random(-2000000, 2000000)
\if :op = 1
UPDATE session_stream.messages SET sent_at = sent_at + :shift * interval '1 us'
 WHERE ctid = (SELECT ctid FROM session_stream.messages WHERE customer_id = :b ORDER BY random() LIMIT 1);
UPDATE tbl SET ts = ts + :shift * interval '1 us'
 WHERE ctid = (SELECT ctid FROM tbl WHERE b = :b ORDER BY random() LIMIT 1);
\elif :op = 2
UPDATE session_stream.messages SET customer_id = :other
 WHERE ctid = (SELECT ctid FROM session_stream.messages WHERE customer_id = :b ORDER BY random() LIMIT 1);
UPDATE tbl SET b = :other
 WHERE ctid = (SELECT ctid FROM tbl WHERE b = :b ORDER BY random() LIMIT 1);
\elif :op = 3
UPDATE session_stream.messages SET agent_id = :a
 WHERE ctid = (SELECT ctid FROM session_stream.messages WHERE customer_id = :b ORDER BY random() LIMIT 1);
UPDATE tbl SET a = :a
 WHERE ctid = (SELECT ctid FROM tbl WHERE b = :b ORDER BY random() LIMIT 1);
\elif :op = 4
UPDATE session_stream.messages SET from_agent = NOT from_agent
 WHERE ctid = (SELECT ctid FROM session_stream.messages WHERE customer_id = :b ORDER BY random() LIMIT 1);
UPDATE tbl SET direct = NOT direct
 WHERE ctid = (SELECT ctid FROM tbl WHERE b = :b ORDER BY random() LIMIT 1);
\elif :op = 5
DELETE FROM session_stream.messages
 WHERE ctid = (SELECT ctid FROM session_stream.messages WHERE customer_id = :b ORDER BY random() LIMIT 1);
DELETE FROM tbl
 WHERE ctid = (SELECT ctid FROM tbl WHERE b = :b ORDER BY random() LIMIT 1);
\elif :op = 6
UPDATE session_stream.messages SET sent_at = sent_at + :shift * interval '1 us'
 WHERE customer_id = :b AND random() < 0.5;
UPDATE tbl SET ts = ts + :shift * interval '1 us' WHERE b = :b AND random() < 0.5;
\else
DELETE FROM session_stream.messages WHERE customer_id = :b AND random() < 0.3;
DELETE FROM tbl WHERE b = :b AND random() < 0.3;
\endif
};
}

# Inserts and edits of one key in a transaction held open.
sub held_edit_script
{
	return q{
\set b random(1, 100)
\set hold random(0, 500)
BEGIN;
INSERT INTO session_stream.messages (agent_id, customer_id, sent_at, from_agent)
SELECT 1 + (random() * 3)::int, :b, clock_timestamp() - random() * interval '2 s', random() < 0.5
  FROM generate_series(1, 2);
UPDATE tbl SET ts = ts - random() * interval '1 s'
 WHERE ctid = (SELECT ctid FROM tbl WHERE b = :b ORDER BY random() LIMIT 1);
\sleep :hold ms
DELETE FROM session_stream.messages
 WHERE ctid = (SELECT ctid FROM session_stream.messages WHERE customer_id = :b ORDER BY random() LIMIT 1);
UPDATE session_stream.messages SET sent_at = sent_at - random() * interval '1 s'
 WHERE ctid = (SELECT ctid FROM session_stream.messages WHERE customer_id = :b ORDER BY random() LIMIT 1);
COMMIT;
};
}

# Check that the writers edited: at least $min_edited rows of messages and
# of tbl updated and deleted, and at least $min_left left (as the
# statistics count them, rolled-back transactions too).
sub check_edits_made
{
	my ($node, $min_edited, $min_left) = @_;
	my %counts = map { split /\|/ } split /\n/, $node->safe_psql('postgres', q{
		SELECT relname || '_' || k, v FROM pg_stat_user_tables,
		       LATERAL (VALUES ('rows', n_live_tup), ('updated', n_tup_upd),
		                       ('deleted', n_tup_del)) AS c(k, v)
		 WHERE relname IN ('messages', 'tbl')});
	Test::More::note(join(', ', map { "$_ $counts{$_}" } sort keys %counts));
	for my $table ('messages', 'tbl')
	{
		Test::More::cmp_ok($counts{"${table}_updated"}, '>', $min_edited, "$table: many rows updated");
		Test::More::cmp_ok($counts{"${table}_deleted"}, '>', $min_edited, "$table: many rows deleted");
		Test::More::cmp_ok($counts{"${table}_rows"}, '>', $min_left, "$table: many rows left");
	}
	return;
}

# The two streams' queries and results sets, as t/001 and t/007 set them up.
my %realtime_streams = (
	customer => [
		'SELECT agent_id, customer_id, sent_at, from_agent FROM session_stream.messages',
		'session_stream.sessions' ],
	pair => [
		q{SELECT a, b, ts AT TIME ZONE 'UTC', direct FROM tbl},
		'session_stream.pair_sessions' ],);

# Rows in which a results set and the replay of a query's messages differ
# (0 when exact); without a query and results set, those of the realtime
# stream of the mode.
sub replay_differences
{
	my ($node, $mode, $query, $results) = @_;
	($query, $results) = @{ $realtime_streams{$mode} } unless defined $query;
	return $node->safe_psql('postgres', qq{
		SELECT count(*) FROM oracle.diff('$mode', \$q\$$query\$q\$, '$results')});
}

# The consumers of the deferred tests t/002 and t/008: each mode of
# session_stream.messages, and tbl in pair mode, at random moments (tbl in
# windows of at most 200 messages); every call's status goes to
# consume_log.
my $consume_script = q{
\set pause random(0, 300)
INSERT INTO consume_log SELECT status, messages FROM session_stream.consume_window('customer');
INSERT INTO consume_log SELECT status, messages FROM session_stream.consume_window('pair');
INSERT INTO consume_log SELECT status, messages FROM session_stream.consume_window('pair', 'tbl', 200);
\sleep :pause ms
};

# Two clients running the consumers for $seconds (pgbench runs the
# writers' scripts in one run; to keep two clients consuming, a second
# pgbench runs this one).  Returns the IPC::Run handle, and a reference to
# what that pgbench writes to stderr.
sub start_consumer_clients
{
	my ($node, $seconds) = @_;
	my $path = $PostgreSQL::Test::Utils::tmp_check . '/consume.sql';
	my $err = '';

	PostgreSQL::Test::Utils::append_to_file($path, $consume_script);
	my $handle = IPC::Run::start(
		[ 'pgbench', '--no-vacuum', '--client=2', '--jobs=1', "--time=$seconds",
		  '-f', $path, $node->connstr('postgres') ],
		'>', \my $out, '2>', \$err);
	return ($handle, \$err);
}

# After the writers: every consumer call until nothing is left.
sub catch_up
{
	my ($node) = @_;
	for my $call ("'customer'", "'pair'", "'pair', 'tbl'")
	{
		for (1 .. 100)
		{
			last if $node->safe_psql('postgres',
				"SELECT status FROM session_stream.consume_window($call)") eq 'empty';
		}
	}
	return;
}

# Polls $query until it returns $want, up to $seconds (through a crash
# restart: a failed connection counts as not yet); returns the seconds
# waited, or undef.
sub wait_for_value
{
	my ($node, $query, $want, $seconds) = @_;
	my $start = time;
	while (time - $start < $seconds)
	{
		my ($rc, $out) = $node->psql('postgres', $query);
		return time - $start if $rc == 0 && $out eq $want;
		usleep(50_000);
	}
	return undef;
}

# The continuous consumer's checks (t/009, t/010): both modes of
# session_stream.messages consumed exactly once, and equal to the replay;
# $what ends the checks' names.
sub check_messages_consumed
{
	my ($node, $what) = @_;
	my $query = 'SELECT agent_id, customer_id, sent_at, from_agent FROM session_stream.messages';
	for my $mode ('customer', 'pair')
	{
		is( $node->safe_psql('postgres', qq{
				SELECT (SELECT count(*) FROM session_stream.messages)
				     - (SELECT sum(messages) FROM session_stream.consumed_windows
				         WHERE source = 'session_stream.messages'::regclass AND mode = '$mode')}),
			'0', "$mode mode: every message consumed exactly once$what");
		is(replay_differences($node, $mode, $query, $realtime_streams{$mode}[1]), '0',
			"$mode mode: sessions equal the replay");
	}
	return;
}

1;
