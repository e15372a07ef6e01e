# Randomised differential test of the realtime trigger under edits.
#
# As t/001 (eight concurrent writers, up to 2 s of arrival jitter, both
# modes at once: customer mode on session_stream.messages, pair mode on the
# seeds' tbl(a, b, ts, direct) through the four-event form of the trigger),
# but a third of the writers' transactions edit: a message's time moved by
# up to 2 s either way, a message moved to another customer or agent, its
# direction flipped, a message deleted, several of a customer's messages
# shifted or deleted in one statement, some inside transactions held open.
# Afterwards the results must equal the independent replay of the tables'
# current rows (test/reference.sql): 0 differing sessions.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use lib 't';
use JitterWriters;

my $node = start_jitter_node('edits');
$node->safe_psql('postgres', q{
	CREATE TABLE tbl (a int NOT NULL, b int NOT NULL, ts timestamp NOT NULL,
	                  direct boolean NOT NULL);
	CREATE INDEX ON tbl (b, ts);
	CREATE TRIGGER tbl_sessions AFTER INSERT OR UPDATE OR DELETE ON tbl
	    FOR EACH ROW EXECUTE FUNCTION session_stream.track_sessions(
	        'pair', 'agent=a', 'customer=b', 'ts=ts', 'from_agent=direct');
});

# Writers holding keys in different orders may deadlock; pgbench retries
# those transactions, as an application would.
$node->pgbench(
	'--no-vacuum --client=8 --jobs=2 --time=20 --max-tries=20',
	0,
	[qr{processed: [1-9]}],
	[qr{^$|deadlock|}],
	'eight concurrent writers with 2 s jitter, inserting and editing',
	{
		'one_row@12' => one_row_script(),
		'edit@6' => edit_script(),
		'held_edit@1' => held_edit_script(),
		'held_open@1' => held_open_script(500)
	});

check_edits_made($node, 200, 1000);

is(replay_differences($node, 'customer'), '0',
	'customer mode: sessions equal the replay of the current rows');
is(replay_differences($node, 'pair'), '0',
	'pair mode on tbl(a, b, ts, direct): sessions equal the replay of the current rows');
cmp_ok($node->safe_psql('postgres', 'SELECT count(*) FROM session_stream.sessions'),
	'>', 100, 'customer mode kept many sessions');

$node->stop;
done_testing();
