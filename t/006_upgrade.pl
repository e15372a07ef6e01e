# Updating from 0.1 gives what a fresh install gives, data kept.
#
# A database is created with CREATE EXTENSION session_stream VERSION '0.1'
# and filled, with the installed (0.2) library serving 0.1's SQL objects,
# by t/StreamScenario.pm: realtime streams in both modes, deferred streams
# in both modes with consumed windows and messages pending, a feed table
# with rules and alerts.  Then:
#   1. ALTER EXTENSION session_stream UPDATE: the data are kept and
#      everything keeps working (StreamScenario's checks), and the
#      extension's objects equal those of a fresh CREATE EXTENSION in
#      another database, compared through the catalogs (test/catalog.sql:
#      members, function signatures, defaults and bodies, columns, indexes,
#      constraints, triggers and their enabled state, ACLs, tables
#      registered for pg_dump);
#   2. the 0.1 database dumped, plain and custom format, and restored
#      into an empty database: pg_dump does not record the version, so the
#      restore installs 0.2 and puts 0.1's rows into it; the update is then
#      a no-op.  Data and positions kept, everything working, catalogs as
#      fresh;
#   3. a copy of the 0.1 database carried into a new cluster by
#      pg_upgrade, which keeps the version (0.1), then updated there: the
#      same checks.
# The catalog description itself is checked first: three changes to a
# fresh install show as three changed facts.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time);
use lib 't';
use StreamScenario;

my $started = time;
my $seed = $ENV{SS_SEED} // int(rand(1_000_000_000));
srand($seed);
diag "random seed $seed (SS_SEED=$seed repeats this run)";

my $default_version = '0.2';
my $catalog_query = slurp_file('test/catalog.sql');

sub extension_version
{
	my ($node, $db) = @_;
	return $node->safe_psql($db,
		q{SELECT extversion FROM pg_extension WHERE extname = 'session_stream'});
}

# test/catalog.sql's facts about the extension in a database.
sub catalog_facts
{
	my ($node, $db) = @_;
	return [ split /\n/, $node->safe_psql($db, $catalog_query) ];
}

# The facts in one list and not in the other, each marked with its side.
sub fact_differences
{
	my ($ours, $theirs) = @_;
	my %count;
	$count{$_}++ for @$ours;
	$count{$_}-- for @$theirs;
	return map {
		($count{$_} > 0 ? '+ ' : '- ') . $_
	} sort grep { $count{$_} } keys %count;
}

my $node = new_cluster('upgrade', 0);

# A fresh install with the same streams, no data: what every other
# database must match.
sub fresh_database
{
	my ($db) = @_;
	$node->safe_psql('postgres', "CREATE DATABASE $db");
	$node->safe_psql($db, 'CREATE EXTENSION session_stream');
	create_streams($node, $db);
	return;
}
fresh_database('fresh');
is(extension_version($node, 'fresh'), $default_version,
	"a fresh CREATE EXTENSION installs $default_version");
my $fresh = catalog_facts($node, 'fresh');
cmp_ok(scalar(@$fresh), '>', 100, 'the catalog description has '
	  . scalar(@$fresh) . ' facts');

# The description sees what it must: a disabled trigger, a changed
# default, a revoked privilege each show as a fact changed.
fresh_database('changed');
$node->safe_psql('changed', q{
	ALTER TABLE session_stream.messages DISABLE TRIGGER track_sessions_customer;
	ALTER TABLE session_stream.feed_rules ALTER COLUMN enabled SET DEFAULT false;
	REVOKE EXECUTE ON FUNCTION session_stream.take_alert(bigint) FROM PUBLIC;
});
my @changed = fact_differences(catalog_facts($node, 'changed'), $fresh);
is(scalar(@changed), 6,
	'catalog description: three changes give three facts changed')
  or diag join("\n", @changed);
like(join("\n", @changed),
	qr/^\+ trigger CREATE TRIGGER track_sessions_customer .* enabled D$/m,
	'catalog description: the disabled trigger shows');
like(join("\n", @changed),
	qr/^\+ column session_stream.feed_rules #\d+ enabled boolean NOT NULL default false /m,
	'catalog description: the changed default shows');
like(join("\n", @changed),
	qr/^\+ function CREATE OR REPLACE FUNCTION session_stream.take_alert.* ACL \{(\w+)=X\/\1\}$/m,
	'catalog description: the revoked privilege shows');

# The 0.1 database, written through the 0.2 library.
$node->safe_psql('postgres', 'CREATE DATABASE old');
$node->safe_psql('old', q{CREATE EXTENSION session_stream VERSION '0.1'});
is(extension_version($node, 'old'), '0.1', 'old: 0.1 installed');
load_oracle($node, 'old');
create_streams($node, 'old');
my $state = write_streams($node, 'old', 'old 0.1');
my $dump = dump_database($node, 'old');
# A copy of the 0.1 database, for pg_upgrade (3.)
$node->safe_psql('postgres', 'CREATE DATABASE kept TEMPLATE old');

# 1. Update in place.
$node->safe_psql('old', 'ALTER EXTENSION session_stream UPDATE');
is(extension_version($node, 'old'), $default_version,
	"old: updated to $default_version");
is_deeply([ fact_differences(catalog_facts($node, 'old'), $fresh) ],
	[], 'updated: the extension\'s objects equal a fresh install\'s');
is($node->safe_psql('old', 'SELECT sum(edits) FROM session_stream.consumed_windows'),
	'0', 'updated: the windows of 0.1 count no edits');
check_streams($node, 'old', 'updated', $state);

# 2. The 0.1 dump restored into an empty database: pg_dump does not
# record the version, so its CREATE EXTENSION installs the default one,
# and 0.1's rows go into 0.2's tables.
for my $format ('plain', 'custom')
{
	my $db = "restored_$format";
	my $label = "$format dump of 0.1 restored";
	$node->safe_psql('postgres', "CREATE DATABASE $db");
	restore_database($node, $db, $dump, $format, $label);
	is(extension_version($node, $db), $default_version,
		"$label: at $default_version");
	$node->safe_psql($db, 'ALTER EXTENSION session_stream UPDATE');
	is_deeply([ fact_differences(catalog_facts($node, $db), $fresh) ],
		[], "$label: the extension's objects equal a fresh install's");
	check_streams($node, $db, $label, $state);
}

# 3. pg_upgrade keeps each database's extension version: the copy of the
# 0.1 database arrives at 0.1 in a new cluster, is updated there, and
# keeps its data and positions (pg_upgrade keeps the xids).
$node->stop;
my $new = PostgreSQL::Test::Cluster->new('upgraded');
$new->init;
my $bindir = $node->config_data('--bindir');
command_ok(
	[ 'pg_upgrade', '--no-sync',
	  '-b', $bindir, '-B', $bindir,
	  '-d', $node->data_dir, '-D', $new->data_dir,
	  '-s', $new->host, '-p', $node->port, '-P', $new->port ],
	'pg_upgrade of the cluster into a new one');
$new->start;
is(extension_version($new, 'kept'), '0.1', 'pg_upgrade: the copy is at 0.1');
$new->safe_psql('kept', 'ALTER EXTENSION session_stream UPDATE');
is(extension_version($new, 'kept'), $default_version,
	"pg_upgrade: the copy updated to $default_version");
is_deeply([ fact_differences(catalog_facts($new, 'kept'), $fresh) ],
	[], 'pg_upgrade: the extension\'s objects equal a fresh install\'s');
check_streams($new, 'kept', 'pg_upgrade, updated', $state);

$new->stop;
diag sprintf('took %.1f s', time - $started);
done_testing();
