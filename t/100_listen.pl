# session_stream_listen against a throwaway cluster.
#
# Question: does the listener print each alert once as a JSON line, live
# while connected, and after a crash restart of the server print the
# outbox alerts written while it could not connect (--drain), with none
# lost and none printed twice?  It must also refuse bad arguments with exit
# code 2 and stop cleanly on SIGTERM.
#
# Rules on feed(id, c1, c2, note), channels feed_alerts and feed_quiet:
#   c2_high   c2 > 9999  feed_alerts  notify  (at most once: lost while away)
#   c1_kept   c1 > 100   feed_alerts  both    (notified and kept)
#   c1_quiet  c1 < 0     feed_quiet   outbox  (kept only, drained)
use strict;
use warnings;
use JSON::PP;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $listen = 'session_stream_listen';

# Bad arguments: usage on stderr, exit code 2.
foreach my $args ([], ['dbname=postgres'], ['--bogus', 'dbname=postgres', 'x'],
	['dbname=postgres', 'x' x 64], ['nonsense', 'feed_alerts'])
{
	my ($out, $err) = ('', '');
	IPC::Run::run([ $listen, @$args ], '>', \$out, '2>', \$err);
	is($? >> 8, 2, "exit code 2 for arguments (@$args)");
	like($err, qr/Usage:/, "usage shown for arguments (@$args)");
}

my $node = PostgreSQL::Test::Cluster->new('listen');
$node->init;
$node->start;
$node->safe_psql('postgres', q{
	CREATE EXTENSION session_stream;
	CREATE TABLE feed (id int8 PRIMARY KEY, c1 int, c2 int, note text);
	SELECT session_stream.watch('feed');
	INSERT INTO session_stream.feed_rules (source, name, condition, channel, delivery)
	VALUES ('feed', 'c2_high', 'c2 > 9999', 'feed_alerts', 'notify'),
	       ('feed', 'c1_kept', 'c1 > 100', 'feed_alerts', 'both'),
	       ('feed', 'c1_quiet', 'c1 < 0', 'feed_quiet', 'outbox');
	-- what a consumer needs: take_alerts() locks and deletes outbox rows
	CREATE ROLE alert_reader LOGIN;
	GRANT SELECT, UPDATE, DELETE ON session_stream.alerts TO alert_reader;
});

my ($out, $err) = ('', '');
my $h = IPC::Run::start(
	[ $listen, '--drain', $node->connstr('postgres') . ' user=alert_reader',
	  'feed_alerts', 'feed_quiet' ],
	'>', \$out, '2>', \$err);

# Collect the listener's output until a condition holds.
sub wait_for
{
	my ($what, $cond) = @_;
	my $deadline = time() + $PostgreSQL::Test::Utils::timeout_default;
	until ($cond->())
	{
		if (time() > $deadline)
		{
			diag("stdout:\n$out\nstderr:\n$err");
			die "timed out waiting for $what";
		}
		$h->pump_nb;
		select(undef, undef, undef, 0.05);
	}
	return;
}

sub count_matches
{
	my ($re, $text) = @_;
	my @m = ($text =~ /$re/g);
	return scalar @m;
}

sub alert_lines
{
	return map { decode_json($_) } grep { length } split /\n/, $out;
}

wait_for('the first LISTEN', sub { $err =~ /listening on 2 channel\(s\)/ });

# 1. Live: a notify alert, a kept alert, an outbox-only alert (not printed
# yet), and an alert too large for NOTIFY (printed from the outbox).
$node->safe_psql('postgres', q{
	INSERT INTO feed VALUES (1, 1, 10000, NULL);
	INSERT INTO feed VALUES (2, 200, 1, NULL);
	INSERT INTO feed VALUES (3, -5, 1, NULL);
	INSERT INTO feed VALUES (4, 1, 10000, repeat('y', 9000));
});
wait_for('three live alerts', sub { count_matches(qr/\n/, $out) >= 3 });
my @lines = alert_lines();
is(scalar @lines, 3, 'three alerts printed while connected');
is_deeply(
	[ map { "$_->{payload}{rule}:$_->{payload}{row}{id}:$_->{via}" } @lines ],
	[ 'c2_high:1:notify', 'c1_kept:2:notify', 'c2_high:4:notify' ],
	'live alerts in commit order');
ok((grep { $_->{pid} && $_->{channel} eq 'feed_alerts' && $_->{received_at} } @lines) == 3,
	'each line has channel, sender pid and receive time');
is(length($lines[2]{payload}{row}{note}), 9000,
	'the oversize alert is printed whole, taken from the outbox');
is($node->safe_psql('postgres',
		'SELECT string_agg(rule, \',\') FROM session_stream.alerts'),
	'c1_quiet', 'alerts printed from notifications left the outbox');

# 2. Crash the server; while it restarts the listener may not log in, and
# alerts are written meanwhile.
$node->safe_psql('postgres', 'ALTER ROLE alert_reader NOLOGIN');
$node->stop('immediate');
$node->start;
wait_for('a refused reconnect',
	sub { $err =~ /not permitted to log in/ });
$node->safe_psql('postgres', q{
	INSERT INTO feed SELECT g, 100 + g, 1, NULL FROM generate_series(10, 14) g;
	INSERT INTO feed SELECT g, -g, 1, NULL FROM generate_series(15, 16) g;
	INSERT INTO feed VALUES (17, 1, 10000, NULL);   -- notify only: missed
	BEGIN;
	INSERT INTO feed VALUES (18, 500, 1, NULL);     -- rolled back: nothing
	ROLLBACK;
});
$node->safe_psql('postgres', 'ALTER ROLE alert_reader LOGIN');
wait_for('the drain after reconnecting',
	sub { count_matches(qr/listening on 2 channel\(s\)/, $err) >= 2 });
wait_for('the drained alerts', sub { count_matches(qr/\n/, $out) >= 11 });

# 3. Live again after the reconnect.
$node->safe_psql('postgres', 'INSERT INTO feed VALUES (20, 300, 1, NULL)');
wait_for('a live alert after reconnecting',
	sub { count_matches(qr/\n/, $out) >= 12 });

# 4. SIGTERM: a clean exit.
$h->signal('TERM');
$h->finish;
is($h->result(0), 0, 'exit code 0 on SIGTERM');
like($err, qr/stopped/, 'stopped cleanly');

@lines = alert_lines();
my @got = sort map { "$_->{payload}{rule}:$_->{payload}{row}{id}" } @lines;
my @want = sort(
	'c2_high:1', 'c1_kept:2', 'c2_high:4', 'c1_quiet:3',
	(map { "c1_kept:$_" } 10 .. 14), 'c1_quiet:15', 'c1_quiet:16',
	'c1_kept:20');
is_deeply(\@got, \@want,
	'every kept alert printed exactly once across the restart');
my %seen;
my @doubled = grep { $seen{$_}++ } map { $_->{alert_id} // () } @lines;
is(scalar @doubled, 0, 'no alert_id printed twice');
is((grep { $_->{via} eq 'outbox' } @lines), 8,
	'alerts kept while away came from the drain');
is($node->safe_psql('postgres', 'SELECT count(*) FROM session_stream.alerts'),
	'0', 'the outbox is empty');

$node->stop;
done_testing();
