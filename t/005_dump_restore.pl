# pg_dump and restore into a fresh database keep everything: messages,
# results, consumer state, rules and alerts, and working triggers.
#
# The old cluster's 64-bit xids are far ahead (epoch 7, set with
# pg_resetwal -e); it is restored, plain (psql) and custom format
# (pg_restore), into a cluster whose xids are far behind (epoch 0), one
# whose xids are ahead of it (epoch 20) and one whose xids are ahead of it
# by more than 2^40 (epoch 1000), beyond any headroom a restore may add
# to restored positions.  The old database and the checks after each
# restore are t/StreamScenario.pm's: realtime streams in both modes,
# deferred streams in both modes with messages pending, a feed table with
# rules and alerts; after the restore the same rows, results equal to the
# replay, late messages placed exactly, the pending messages consumed
# exactly once and rules that still alert.
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

my $old = new_cluster('old', 7);
my $behind = new_cluster('behind', 0);
my $ahead = new_cluster('ahead', 20);
my $beyond = new_cluster('beyond', 1000);

# 1. The old database.
$old->safe_psql('postgres', 'CREATE EXTENSION session_stream');
load_oracle($old, 'postgres');
create_streams($old, 'postgres');
my $state = write_streams($old, 'postgres', 'old');

# 2. Dump.
my $dump = dump_database($old, 'postgres');

# 3. and 4. Restore each dump into a fresh database of each new cluster.
for my $node ($behind, $ahead, $beyond)
{
	for my $format ('plain', 'custom')
	{
		my $db = "restored_$format";
		my $label = $node->name . ", $format";
		$node->safe_psql('postgres', "CREATE DATABASE $db");
		restore_database($node, $db, $dump, $format, $label);
		check_streams($node, $db, $label, $state);
	}
}

$_->stop for ($old, $behind, $ahead, $beyond);
diag sprintf('took %.1f s', time - $started);
done_testing();
