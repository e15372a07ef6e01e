# A coordinator and three shards on one machine (issue 18).
#
# Question: with session_stream.attach_shards() over postgres_fdw, are
# every shard's results, and the coordinator's session_stream_cluster
# views over all of them, exact when writers go through the coordinator
# (single- and multi-row statements) and straight to the shards (placed
# by shard_for()) at once, with 2 s arrival jitter?  Is a one-customer
# query sent to one shard only, and does shard_for() agree with the
# coordinator's routing?  Is attach_shards() refused where it cannot
# work, a no-op when repeated, and kept by pg_dump?  Do two coordinator
# transactions writing two customers of two shards in opposite orders
# hang until a timeout (a deadlock no server sees), and not when both
# write shard by shard?  Does session_stream_listen print every shard's
# alerts, each line naming its server?  Does the README's resharding by
# hand keep every message once and the results exact?
use strict;
use warnings;
use JSON::PP;
use Time::HiRes qw(time);
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use lib 't';
use JitterWriters;

my $nshards = 3;
my $coord = start_jitter_node('coordinator');
my @shards = map { start_jitter_node("shard$_") } 0 .. $nshards - 1;

# Each shard keeps pair mode too, so pair_sessions is checked as well.
foreach my $shard (@shards)
{
	$shard->safe_psql('postgres', q{
		CREATE TRIGGER track_sessions_pair AFTER INSERT OR UPDATE OR DELETE
		    ON session_stream.messages
		    FOR EACH ROW EXECUTE FUNCTION session_stream.track_sessions('pair');
	});
}

# 1. Refusals before anything is attached.
sub attach_error
{
	my ($node, $sql) = @_;
	my ($ret, $out, $err) = $node->psql('postgres', $sql);
	return $err;
}
like(attach_error($coord, q{SELECT session_stream.attach_shards('{shard0}')}),
	qr/extension "postgres_fdw" is not installed.*\n.*\nHINT:  Run CREATE EXTENSION postgres_fdw/,
	'refused without postgres_fdw, with a hint');

$coord->safe_psql('postgres', 'CREATE EXTENSION postgres_fdw');
foreach my $k (0 .. $nshards - 1)
{
	my ($host, $port) = ($shards[$k]->host, $shards[$k]->port);
	$coord->safe_psql('postgres', qq{
		CREATE SERVER shard$k FOREIGN DATA WRAPPER postgres_fdw
		    OPTIONS (host '$host', port '$port', dbname 'postgres');
		CREATE USER MAPPING FOR CURRENT_USER SERVER shard$k;
	});
}
my ($shost, $sport) = ($shards[0]->host, $shards[0]->port);
$coord->safe_psql('postgres', qq{
	CREATE SERVER no_extension FOREIGN DATA WRAPPER postgres_fdw
	    OPTIONS (host '$shost', port '$sport', dbname 'template1');
	CREATE USER MAPPING FOR CURRENT_USER SERVER no_extension;
	CREATE SERVER unreachable FOREIGN DATA WRAPPER postgres_fdw
	    OPTIONS (host '$shost', port '1', dbname 'postgres');
	CREATE USER MAPPING FOR CURRENT_USER SERVER unreachable;
	CREATE SERVER unmapped FOREIGN DATA WRAPPER postgres_fdw
	    OPTIONS (host '$shost', port '$sport', dbname 'postgres');
});
like(attach_error($coord, q{SELECT session_stream.attach_shards('{shard0,nowhere}')}),
	qr/server "nowhere" does not exist/, 'refused: a server that does not exist');
like(attach_error($coord, q{SELECT session_stream.attach_shards('{shard0,unmapped}')}),
	qr/user mapping for "\w+" on server "unmapped" does not exist/,
	'refused: a server without a user mapping');
like(attach_error($coord, q{SELECT session_stream.attach_shards('{shard0,no_extension}')}),
	qr/server "no_extension" has no extension session_stream/,
	'refused: a shard without the extension');
like(attach_error($coord, q{SELECT session_stream.attach_shards('{unreachable}')}),
	qr/could not read from server "unreachable"\nDETAIL:  .*connect/,
	'refused: a server that cannot be reached');
is($coord->safe_psql('postgres',
		q{SELECT count(*) FROM pg_namespace WHERE nspname = 'session_stream_cluster'}),
	'0', 'a refused call leaves nothing behind');

# 2. Attach, under a hostile search_path; repeat; refuse another list.
my (undef, undef, $notice) = $coord->psql('postgres', q{
	CREATE SCHEMA evil;
	CREATE FUNCTION evil.cardinality(anyarray) RETURNS integer LANGUAGE sql
	    AS $$ SELECT 1 / 0 $$;
	SET search_path = evil, public;
	SELECT session_stream.attach_shards('{shard0,shard1,shard2}');
	SELECT session_stream.attach_shards('{shard0,shard1,shard2}');
	RESET search_path;
	DROP SCHEMA evil CASCADE;
}, on_error_stop => 1);
like($notice, qr/already attached to servers \{shard0,shard1,shard2\}/,
	'attaching the same servers again does nothing');
like(attach_error($coord, q{SELECT session_stream.attach_shards('{shard0,shard2,shard1}')}),
	qr/already attached to servers \{shard0,shard1,shard2\}.*\n.*\nHINT:  Resharding is done by hand/,
	'another list of servers is refused with a hint');
like(attach_error($coord, q{INSERT INTO session_stream_cluster.sessions VALUES (1, now(), 1, now())}),
	qr/does not allow inserts/, 'sessions across shards are read-only');

# 3. shard_for() agrees with the coordinator's routing, for 10,000 ids
# spread over the whole bigint range and for small ones.
is($coord->safe_psql('postgres', q{
	SELECT count(*) FROM (
	    SELECT g::bigint AS id FROM generate_series(-2000, 2999) g
	    UNION ALL
	    SELECT (random() * 1.8e19 - 9e18)::bigint FROM generate_series(1, 5000)) ids
	 WHERE NOT satisfies_hash_partition('session_stream_cluster.messages'::regclass,
	                                    3, session_stream.shard_for(id, 3), id)}),
	'0', 'shard_for() names the partition of 10,000 ids');

# 4. Writers: through the coordinator (single rows; multi-row statements
# across shards, written shard by shard), and straight to each shard for
# the customers shard_for() places there.  Customers 1-300, agents 1-4.
# One message into $table, sent up to 2 s before it is written, if $where.
sub one_message_script
{
	my ($table, $where) = @_;
	return qq{
\\set a random(1, 4)
\\set b random(1, 300)
\\set bo random(0, 1)
\\set lag random(0, 2000000)
INSERT INTO $table (agent_id, customer_id, sent_at, from_agent)
SELECT :a, :b, clock_timestamp() - :lag * interval '1 us', :bo::boolean
 WHERE $where;
};
}
my $coord_script = one_message_script('session_stream_cluster.messages', 'true');
my $coord_multi_script = q{
INSERT INTO session_stream_cluster.messages (agent_id, customer_id, sent_at, from_agent)
SELECT a, b, t, f FROM (
    SELECT 1 + (random() * 3)::int AS a, 1 + (random() * 299)::int AS b,
           clock_timestamp() - random() * interval '2 s' AS t, random() < 0.5 AS f
      FROM generate_series(1, 4)) m
 ORDER BY session_stream.shard_for(b, 3);
};
my $path = $PostgreSQL::Test::Utils::tmp_check;
my @writers;
foreach my $k (0 .. $nshards - 1)
{
	append_to_file("$path/direct$k.sql",
		one_message_script('session_stream.messages',
			"session_stream.shard_for(:b, $nshards) = $k"));
	push @writers, IPC::Run::start(
		[ 'pgbench', '--no-vacuum', '--client=1', '--time=8', '--max-tries=20',
		  '-f', "$path/direct$k.sql", $shards[$k]->connstr('postgres') ],
		'>', \my $out, '2>', \my $err);
}
$coord->pgbench(
	'--no-vacuum --client=4 --jobs=2 --time=8 --max-tries=20',
	0,
	[qr{processed: [1-9]}],
	[qr{^$|deadlock|}],
	'four writers through the coordinator with 2 s jitter',
	{ 'one_row@3' => $coord_script, 'multi_row@1' => $coord_multi_script });
$_->finish foreach @writers;
is(scalar(grep { $_->result != 0 } @writers), 0, 'the direct writers succeeded');

my $query = 'SELECT agent_id, customer_id, sent_at, from_agent FROM session_stream.messages';
my $total = 0;
foreach my $k (0 .. $nshards - 1)
{
	my $count = $shards[$k]->safe_psql('postgres', 'SELECT count(*) FROM session_stream.messages');
	$total += $count;
	cmp_ok($count, '>', 300, "shard $k has many messages");
	is($shards[$k]->safe_psql('postgres',
			"SELECT count(*) FROM session_stream.messages WHERE session_stream.shard_for(customer_id, 3) <> $k"),
		'0', "shard $k holds only its own customers");
	is(replay_differences($shards[$k], 'customer', $query, 'session_stream.sessions'), '0',
		"shard $k: sessions equal the replay of its messages");
	is(replay_differences($shards[$k], 'pair', $query, 'session_stream.pair_sessions'), '0',
		"shard $k: pair_sessions equal the replay of its messages");
}
my $cquery = 'SELECT agent_id, customer_id, sent_at, from_agent FROM session_stream_cluster.messages';
is($coord->safe_psql('postgres', 'SELECT count(*) FROM session_stream_cluster.messages'),
	$total, 'the coordinator reads every shard\'s messages');
is(replay_differences($coord, 'customer', $cquery, 'session_stream_cluster.sessions'), '0',
	'coordinator: session_stream_cluster.sessions equal the replay of all messages');
is(replay_differences($coord, 'pair', $cquery, 'session_stream_cluster.pair_sessions'), '0',
	'coordinator: session_stream_cluster.pair_sessions equal the replay of all messages');
is($coord->safe_psql('postgres', q{
	SELECT count(*) FROM session_stream_cluster.messages
	 WHERE tableoid <> format('session_stream_cluster.messages_%s',
	                          session_stream.shard_for(customer_id, 3))::regclass}),
	'0', 'every message was routed where shard_for() says');

# 5. Plans: one customer, one shard; per-shard aggregates pushed down.
my $id = 42;
my $k42 = $coord->safe_psql('postgres', "SELECT session_stream.shard_for($id, 3)");
my $plan = $coord->safe_psql('postgres',
	"EXPLAIN (COSTS OFF) SELECT * FROM session_stream_cluster.sessions WHERE customer_id = $id");
my @scans = ($plan =~ /Foreign Scan on (\S+)/g);
is_deeply(\@scans, ["sessions_$k42"], 'a one-customer query scans one shard')
  or diag($plan);
$plan = $coord->safe_psql('postgres', q{
	SET enable_partitionwise_aggregate = on;
	EXPLAIN (VERBOSE, COSTS OFF)
	SELECT customer_id, count(*), max(answered_at) FROM session_stream_cluster.sessions
	 GROUP BY customer_id});
my @pushed = ($plan =~ /Remote SQL: SELECT customer_id, count\(\*\), max\(answered_at\) .* GROUP BY/g);
is(scalar @pushed, 3, 'with enable_partitionwise_aggregate each shard aggregates')
  or diag($plan);

# 6. pg_dump of the coordinator restores a working coordinator.
my $dump = "$path/coordinator.dump";
$coord->command_ok([ 'pg_dump', '-Fc', '-f', $dump, '-d', $coord->connstr('postgres') ],
	'pg_dump of the coordinator');
$coord->safe_psql('postgres', 'CREATE DATABASE restored');
$coord->command_ok([ 'pg_restore', '-d', $coord->connstr('restored'), $dump ],
	'restore into a fresh database');
is($coord->safe_psql('restored', 'SELECT count(*) FROM session_stream_cluster.messages'),
	$total, 'the restored coordinator reads the shards');
is($coord->safe_psql('restored', q{
	SET client_min_messages = warning;
	SELECT (SELECT count(*) FROM session_stream_cluster.messages_0)
	  FROM session_stream.attach_shards('{shard0,shard1,shard2}')}),
	$shards[0]->safe_psql('postgres', 'SELECT count(*) FROM session_stream.messages'),
	'after the restore attach_shards() with the same servers is a no-op');

# 7. Two transactions writing customers of shards 0 and 1 in opposite
# orders: each waits for the other on a different shard, which no
# server's deadlock detector sees.  The first has statement_timeout 4 s,
# the second 30 s: the second commits only once the first has timed out.
# Written shard by shard instead, one waits for the other's commit.
my ($c0, $c1) = split /\|/, $coord->safe_psql('postgres', q{
	SELECT min(g) FILTER (WHERE session_stream.shard_for(g, 3) = 0),
	       min(g) FILTER (WHERE session_stream.shard_for(g, 3) = 1)
	  FROM generate_series(100001, 100100) g});
sub two_writers
{
	my @orders = @_;
	my @h;
	foreach my $w (0, 1)
	{
		my ($first, $second) = @{ $orders[$w] };
		my $sql = sprintf(
			"SET statement_timeout = '%ds'; BEGIN; "
			  . "INSERT INTO session_stream_cluster.messages VALUES (1, %d, now(), false); "
			  . "SELECT pg_sleep(0.5); "
			  . "INSERT INTO session_stream_cluster.messages VALUES (1, %d, now(), false); COMMIT;",
			$w == 0 ? 4 : 30, $first, $second);
		my $e = '';
		push @h, [ IPC::Run::start(
				[ 'psql', '-X', '-q', '-v', 'ON_ERROR_STOP=1', '-d', $coord->connstr('postgres'),
				  '-c', $sql ],
				'>', \my $o, '2>', \$e), \$e ];
	}
	my $start = time();
	$_->[0]->finish foreach @h;
	return (time() - $start, map { ${ $_->[1] } } @h);
}
my ($secs, $e1, $e2) = two_writers([ $c0, $c1 ], [ $c1, $c0 ]);
note sprintf('opposite orders: %.1f s; first: %s; second: %s', $secs, $e1, $e2);
like($e1, qr/canceling statement due to statement timeout/,
	'opposite orders across shards: the first hangs until its statement_timeout');
is($e2, '', 'the second commits once the first gave up');
cmp_ok($secs, '>=', 4, 'and not before');
($secs, $e1, $e2) = two_writers([ $c0, $c1 ], [ $c0, $c1 ]);
note sprintf('shard by shard: %.1f s', $secs);
is("$e1$e2", '', 'written shard by shard, both commit');
cmp_ok($secs, '<', 4, 'without waiting for a timeout');
# The shards' own lock_timeout, set in the servers' options, turns the
# hang into an error on the shard where one waits.
$coord->safe_psql('postgres', qq{
	ALTER SERVER shard$_ OPTIONS (ADD options '-c lock_timeout=1s')}) foreach 0, 1;
($secs, $e1, $e2) = two_writers([ $c0, $c1 ], [ $c1, $c0 ]);
note sprintf('opposite orders, lock_timeout 1 s on the shards: %.1f s; %s %s', $secs, $e1, $e2);
like("$e1$e2", qr/canceling statement due to lock timeout/,
	'with lock_timeout on the shards the wait ends in an error');
unlike($e1, qr/statement timeout/, 'before the coordinator\'s statement_timeout');
$coord->safe_psql('postgres', qq{
	ALTER SERVER shard$_ OPTIONS (DROP options)}) foreach 0, 1;

# 8. The listener follows every shard, each line naming its server.
foreach my $shard (@shards)
{
	$shard->safe_psql('postgres', q{
		CREATE TABLE feed (id int8 PRIMARY KEY, c2 int);
		SELECT session_stream.watch('feed');
		INSERT INTO session_stream.feed_rules (source, name, condition, channel, delivery)
		VALUES ('feed', 'c2_high', 'c2 > 9999', 'feed_alerts', 'both');
		INSERT INTO feed VALUES (0, 10000);   -- kept while no one listens
	});
}
# Bad --server arguments: usage on stderr, exit code 2.
foreach my $args ([ '--server', 'a', 'dbname=postgres' ], [ '--server', 'a' ],
	[ '--server', '', 'dbname=postgres', 'x' ],
	[ '--server', 'a', 'dbname=postgres', '--server', 'a', 'dbname=postgres', 'x' ],
	[ '--server', 'a', 'nonsense', 'x' ])
{
	my ($out, $err) = ('', '');
	IPC::Run::run([ 'session_stream_listen', @$args ], '>', \$out, '2>', \$err);
	is($? >> 8, 2, "listener: exit code 2 for arguments (@$args)");
	like($err, qr/Usage:/, "listener: usage shown for arguments (@$args)");
}

my ($out, $err) = ('', '');
my $listener = IPC::Run::start(
	[ 'session_stream_listen', '--drain',
	  map({ ('--server', "shard$_", $shards[$_]->connstr('postgres')) } 0 .. $nshards - 1),
	  'feed_alerts' ],
	'>', \$out, '2>', \$err);
my $deadline = time() + $PostgreSQL::Test::Utils::timeout_default;
my $wait = sub {
	my ($lines) = @_;
	until ((() = $out =~ /\n/g) >= $lines)
	{
		die "timed out: stdout $out stderr $err" if time() > $deadline;
		$listener->pump_nb;
		select(undef, undef, undef, 0.05);
	}
};
$wait->(3);
$shards[$_]->safe_psql('postgres', "INSERT INTO feed VALUES (1, 10000 + $_)") foreach 0 .. $nshards - 1;
$wait->(6);
# One shard goes away and comes back: the others are served meanwhile,
# and what it kept is drained when the listener is back.
$shards[1]->stop('immediate');
$shards[0]->safe_psql('postgres', 'INSERT INTO feed VALUES (2, 10000)');
$wait->(7);
$shards[1]->start;
$shards[1]->safe_psql('postgres', 'INSERT INTO feed VALUES (2, 10001)');
$wait->(8);
$listener->signal('TERM');
$listener->finish;
my @alerts = map { decode_json($_) } grep { length } split /\n/, $out;
is_deeply(
	[ sort map { "$_->{server}:$_->{payload}{row}{id}:$_->{payload}{row}{c2}:$_->{via}" } @alerts ],
	[ sort((map { "shard$_:0:10000:outbox" } 0 .. 2), (map { "shard$_:1:" . (10000 + $_) . ":notify" } 0 .. 2),
		'shard0:2:10000:notify', 'shard1:2:10001:' . $alerts[-1]{via}) ],
	'the listener prints every shard\'s kept and live alerts once, naming the server');
like($err, qr/listening on 1 channel\(s\) of server "shard2"/, 'it says what it follows');
like($err, qr/server "shard1": connection lost/, 'it saw shard 1 go');
is((() = $err =~ /listening on 1 channel\(s\) of server "shard1"/g), 2,
	'and came back to it');

# 9. Resharding by hand, as the README says, from three shards to two
# (shard2 leaves): attach the new list beside the old one, copy the
# customers whose shard changes, forget them where they were.
my $before = $coord->safe_psql('postgres', 'SELECT count(*) FROM session_stream_cluster.messages');
$coord->safe_psql('postgres', q{
	ALTER SCHEMA session_stream_cluster RENAME TO session_stream_cluster_old;
	SELECT session_stream.attach_shards('{shard0,shard1}');
	ALTER SERVER shard0 OPTIONS (ADD batch_size '100');
	ALTER SERVER shard1 OPTIONS (ADD batch_size '100');
	CREATE TEMP TABLE movers AS
	SELECT agent_id, customer_id, sent_at, from_agent FROM session_stream_cluster_old.messages
	 WHERE session_stream.shard_for(customer_id, 2) <> session_stream.shard_for(customer_id, 3);
	INSERT INTO session_stream_cluster.messages (agent_id, customer_id, sent_at, from_agent)
	SELECT * FROM movers;
});
foreach my $k (0 .. 2)
{
	$shards[$k]->safe_psql('postgres', qq{
		SELECT count(session_stream.forget_customer(customer_id))
		  FROM (SELECT DISTINCT customer_id FROM session_stream.messages
		         WHERE session_stream.shard_for(customer_id, 2) IS DISTINCT FROM $k) c});
}
$coord->safe_psql('postgres', 'DROP SCHEMA session_stream_cluster_old CASCADE');
is($coord->safe_psql('postgres', 'SELECT count(*) FROM session_stream_cluster.messages'),
	$before, 'resharded: every message is on the two shards, once');
is($shards[2]->safe_psql('postgres', 'SELECT count(*) FROM session_stream.messages'),
	'0', 'the shard that left is empty');
is(replay_differences($coord, 'customer', $cquery, 'session_stream_cluster.sessions'), '0',
	'resharded: sessions equal the replay of all messages');
is(replay_differences($coord, 'pair', $cquery, 'session_stream_cluster.pair_sessions'), '0',
	'resharded: pair_sessions equal the replay of all messages');

$_->stop foreach $coord, @shards;
done_testing();
