# Randomised differential test of deferred mode under edits.
#
# As t/002 (eight writers with up to 2 s of arrival jitter, two consumer
# clients calling consume_window() at random moments for three streams:
# session_stream.messages in customer and pair mode, the seeds' tbl in pair
# mode), but a third of the writers' transactions edit (t/007's edits:
# times moved, messages moved between customers and agents, directions
# flipped, deletes, one row or several, some in transactions held open).
# The track_sessions() triggers are disabled; record_edits() notes the
# edits (session_stream.messages has it from install).  After a final
# catch-up the results must equal the replay of the current rows, the
# messages consumed must lie between the rows left and those plus the rows
# deleted (updates are no new messages), and the consumed edits must be
# gone from session_stream.edits.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use lib 't';
use JitterWriters;

my $node = start_jitter_node('consume_edits');
$node->safe_psql('postgres', q{
	ALTER TABLE session_stream.messages DISABLE TRIGGER track_sessions_customer;
	CREATE TABLE tbl (a int NOT NULL, b int NOT NULL, ts timestamp NOT NULL,
	                  direct boolean NOT NULL,
	                  txid bigint NOT NULL DEFAULT session_stream.current_txid());
	CREATE INDEX ON tbl (ts);
	CREATE INDEX ON tbl (b, ts);         -- the edit script picks rows by customer
	CREATE INDEX ON tbl USING brin (txid);
	SELECT session_stream.create_results('public.tbl_pair_sessions', 'pair');
	CREATE TRIGGER tbl_sessions AFTER INSERT OR UPDATE OR DELETE ON tbl FOR EACH ROW
	    EXECUTE FUNCTION session_stream.track_sessions(
	        'pair', 'agent=a', 'customer=b', 'ts=ts', 'from_agent=direct',
	        'results=public.tbl_pair_sessions');
	ALTER TABLE tbl DISABLE TRIGGER tbl_sessions;
	CREATE TRIGGER tbl_edits AFTER UPDATE OR DELETE ON tbl FOR EACH ROW
	    EXECUTE FUNCTION session_stream.record_edits();
	CREATE TABLE consume_log (status text, messages bigint);
	-- committed deletes, for the exactly-once count (pg_stat_user_tables
	-- counts those of transactions that rolled back too)
	CREATE TABLE deleted_log (source text NOT NULL);
	CREATE FUNCTION log_delete() RETURNS trigger LANGUAGE plpgsql AS $$
	    BEGIN INSERT INTO deleted_log VALUES (TG_TABLE_NAME); RETURN NULL; END $$;
	CREATE TRIGGER log_delete AFTER DELETE ON session_stream.messages
	    FOR EACH ROW EXECUTE FUNCTION log_delete();
	CREATE TRIGGER log_delete AFTER DELETE ON tbl
	    FOR EACH ROW EXECUTE FUNCTION log_delete();
});


my ($consumers, $consumer_err) = start_consumer_clients($node, 22);
$node->pgbench(
	'--no-vacuum --client=8 --jobs=2 --time=20 --max-tries=20',
	0,
	[qr{processed: [1-9]}],
	[qr{^$|deadlock|}],
	'eight writers with 2 s jitter, inserting and editing, while two clients consume',
	{
		'one_row@12' => one_row_script(),
		'edit@6' => edit_script(),
		'held_edit@1' => held_edit_script(),
		'held_open@1' => held_open_script(1000)
	});
ok($consumers->finish, 'consumer clients ran without errors')
  or diag($$consumer_err);

# Catch up: every call consumes until nothing is left.
catch_up($node);

my %deleted = map { split /\|/ } split /\n/, $node->safe_psql('postgres',
	'SELECT source, count(*) FROM deleted_log GROUP BY source');
my $edits = $node->safe_psql('postgres',
	"SELECT source || ' ' || mode || ': ' || edits FROM session_stream.consumer_stats ORDER BY 1");
note "deleted rows: messages $deleted{messages}, tbl $deleted{tbl}; edits applied: "
  . join(', ', split /\n/, $edits);
cmp_ok($deleted{$_}, '>', 200, "$_: many rows deleted") for ('messages', 'tbl');
like($edits, qr/: [1-9]\d\d/, 'consumers applied many edits');

for my $stream (
	[ 'customer', 'session_stream.messages', 'session_stream.sessions',
	  'SELECT agent_id, customer_id, sent_at, from_agent FROM session_stream.messages' ],
	[ 'pair', 'session_stream.messages', 'session_stream.pair_sessions',
	  'SELECT agent_id, customer_id, sent_at, from_agent FROM session_stream.messages' ],
	[ 'pair', 'tbl', 'public.tbl_pair_sessions',
	  q{SELECT a, b, ts AT TIME ZONE 'UTC', direct FROM tbl} ])
{
	my ($mode, $source, $results, $query) = @$stream;
	my $table = $source =~ s/.*\.//r;
	# A row inserted and deleted between two windows is never consumed, so
	# the windows' messages lie between the rows left and those plus the
	# deleted ones: within that, none was taken twice.
	my ($left, $consumed) = split /\|/, $node->safe_psql('postgres', qq{
		SELECT (SELECT count(*) FROM $source),
		       (SELECT sum(messages) FROM session_stream.consumed_windows
		         WHERE source = '$source'::regclass AND mode = '$mode')});
	note "$source in $mode mode: $left rows left, $deleted{$table} deleted, $consumed consumed";
	cmp_ok($consumed, '>=', $left, "$source in $mode mode: no fewer messages consumed than rows left");
	cmp_ok($consumed, '<=', $left + $deleted{$table},
		"$source in $mode mode: no more consumed than rows left and deleted");
	is(replay_differences($node, $mode, $query, $results), '0',
		"$source in $mode mode: sessions equal the replay of the current rows");
}
is($node->safe_psql('postgres', 'SELECT count(*) FROM session_stream.edits'),
	'0', 'every consumer took every edit: none is kept');

$node->stop;
done_testing();
