# Randomised differential test of the realtime trigger.
#
# Eight concurrent writers insert messages whose sent_at lags the insert
# time by up to 2 s (arrival jitter), in single-row statements and in
# multi-row statements inside transactions held open for up to 0.5 s.  Both
# modes run at once: customer mode on session_stream.messages (the trigger
# CREATE EXTENSION attached) and pair mode on the seeds' tbl(a, b, ts,
# direct) through trigger arguments.  Afterwards the results tables must
# equal an independent replay (test/reference.sql): 0 differing sessions.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use lib 't';
use JitterWriters;

my $node = start_jitter_node('jitter');
$node->safe_psql('postgres', q{
	CREATE TABLE tbl (a int NOT NULL, b int NOT NULL, ts timestamp NOT NULL,
	                  direct boolean NOT NULL,
	                  arrival bigint GENERATED ALWAYS AS IDENTITY);
	CREATE INDEX ON tbl (b, ts);
	CREATE TRIGGER tbl_sessions AFTER INSERT ON tbl FOR EACH ROW
	    EXECUTE FUNCTION session_stream.track_sessions(
	        'pair', 'agent=a', 'customer=b', 'ts=ts', 'from_agent=direct');
});

my $one_row = one_row_script();
my $held_open = held_open_script(500);

# Writers holding keys in different orders may deadlock; pgbench retries
# those transactions, as an application would.
$node->pgbench(
	'--no-vacuum --client=8 --jobs=2 --time=20 --max-tries=20',
	0,
	[qr{processed: [1-9]}],
	[qr{^$|deadlock|}],
	'eight concurrent writers with 2 s jitter',
	{ 'one_row@19' => $one_row, 'held_open@1' => $held_open });

my $messages = $node->safe_psql('postgres',
	'SELECT count(*) FROM session_stream.messages');
my $late = $node->safe_psql('postgres', q{
	SELECT count(*) FROM tbl m
	 WHERE EXISTS (SELECT 1 FROM tbl o
	                WHERE o.b = m.b AND o.a = m.a
	                  AND o.arrival < m.arrival AND o.ts > m.ts)});
note "messages: $messages; pair-mode messages that arrived late: $late";
cmp_ok($messages, ">", 2000, 'the writers wrote many messages');
cmp_ok($late, ">", 100, 'many messages arrived after later ones of their key');

is(replay_differences($node, 'customer'), '0',
	'customer mode: sessions equal the replay');
is(replay_differences($node, 'pair'), '0',
	'pair mode on tbl(a, b, ts, direct): sessions equal the replay');
cmp_ok($node->safe_psql('postgres', 'SELECT count(*) FROM session_stream.sessions'),
	'>', 100, 'customer mode kept many sessions');

$node->stop;
done_testing();
