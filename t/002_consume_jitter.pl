# Randomised differential test of deferred mode.
#
# Eight writers insert messages with up to 2 s of arrival jitter, some in
# transactions held open for up to 1 s, while two consumer clients call
# consume_window() at random moments, often at the same time.  Three
# streams are consumed: session_stream.messages in customer mode and in
# pair mode, and the seeds' tbl(a, b, ts, direct) in pair mode through a
# disabled trigger's column mapping.  After a final catch-up every message
# must have been consumed exactly once and the results must equal the
# independent replay (test/reference.sql).
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use lib 't';
use JitterWriters;

my $node = start_jitter_node('consume');
$node->safe_psql('postgres', q{
	ALTER TABLE session_stream.messages DISABLE TRIGGER track_sessions_customer;
	CREATE TABLE tbl (a int NOT NULL, b int NOT NULL, ts timestamp NOT NULL,
	                  direct boolean NOT NULL,
	                  txid bigint NOT NULL DEFAULT session_stream.current_txid());
	CREATE INDEX ON tbl (ts);            -- the seeds' index: late keys are read through it
	CREATE INDEX ON tbl USING brin (txid);
	SELECT session_stream.create_results('public.tbl_pair_sessions', 'pair');
	CREATE TRIGGER tbl_sessions AFTER INSERT ON tbl FOR EACH ROW
	    EXECUTE FUNCTION session_stream.track_sessions(
	        'pair', 'agent=a', 'customer=b', 'ts=ts', 'from_agent=direct',
	        'results=public.tbl_pair_sessions');
	ALTER TABLE tbl DISABLE TRIGGER tbl_sessions;
	CREATE TABLE consume_log (status text, messages bigint);
});

my $one_row = one_row_script();
my $held_open = held_open_script(1000);

# Eight writers and two consumers.
my ($consumers, $consumer_err) = start_consumer_clients($node, 22);
$node->pgbench(
	'--no-vacuum --client=8 --jobs=2 --time=20 --max-tries=20',
	0,
	[qr{processed: [1-9]}],
	[qr{^$|deadlock|}],
	'eight writers with 2 s jitter while two clients consume',
	{ 'one_row@19' => $one_row, 'held_open@1' => $held_open });
ok($consumers->finish, 'consumer clients ran without errors')
  or diag($$consumer_err);

# Catch up: every call consumes until nothing is left.
catch_up($node);

my $log = $node->safe_psql('postgres',
	"SELECT string_agg(status || ': ' || n, ', ' ORDER BY status)
	   FROM (SELECT status, count(*) n FROM consume_log GROUP BY status) s");
note "consumer calls during the run: $log";
like($log, qr/consumed: \d+/, 'consumers consumed while writers wrote');

my $late = $node->safe_psql('postgres',
	"SELECT sum(late_messages) FROM session_stream.consumed_windows");
note "late messages seen by the consumers: $late";
cmp_ok($late, '>', 0, 'some messages arrived late for their window');

for my $stream (
	[ 'customer', 'session_stream.messages', 'session_stream.sessions',
	  'SELECT agent_id, customer_id, sent_at, from_agent FROM session_stream.messages' ],
	[ 'pair', 'session_stream.messages', 'session_stream.pair_sessions',
	  'SELECT agent_id, customer_id, sent_at, from_agent FROM session_stream.messages' ],
	[ 'pair', 'tbl', 'public.tbl_pair_sessions',
	  q{SELECT a, b, ts AT TIME ZONE 'UTC', direct FROM tbl} ])
{
	my ($mode, $source, $results, $query) = @$stream;
	is( $node->safe_psql('postgres', qq{
			SELECT (SELECT count(*) FROM $source)
			     - (SELECT sum(messages) FROM session_stream.consumed_windows
			         WHERE source = '$source'::regclass AND mode = '$mode')}),
		'0',
		"$source in $mode mode: every message consumed exactly once");
	is(replay_differences($node, $mode, $query, $results), '0',
		"$source in $mode mode: sessions equal the replay");
}

$node->stop;
done_testing();
