# consume_window() reads a window's pages as a sequential scan would: a
# window within a quarter of shared buffers is cached where the next
# reader finds it; a larger one (a backlog) goes through a small ring of
# buffers and leaves the rest of the cache alone (source.c,
# scan_heap_pages()).
#
# With 4 MB of shared buffers (512 pages, a quarter is 128) and the cache
# emptied by a restart, a window of about 60 pages must come to be cached
# whole, and one of about 400 pages must leave at most a ring's worth (32
# pages, 256 kB) and some more of its source in the cache.  Both calls'
# results must equal the independent replay.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('cache');
$node->init;
$node->append_conf('postgresql.conf', "shared_buffers = '4MB'\ntimezone = 'UTC'");
$node->start;
$node->safe_psql('postgres', 'CREATE EXTENSION session_stream');
$node->safe_psql('postgres', 'CREATE EXTENSION pg_buffercache');
$node->safe_psql('postgres', slurp_file('test/reference.sql'));

# A deferred source of ROWS messages, its own results set.
sub create_source
{
	my ($name, $rows) = @_;
	$node->safe_psql('postgres', qq{
		CREATE TABLE $name (a int NOT NULL, b int NOT NULL, ts timestamp NOT NULL,
		                    direct boolean NOT NULL,
		                    txid bigint NOT NULL DEFAULT session_stream.current_txid());
		CREATE INDEX ON $name USING brin (txid);
		SELECT session_stream.create_results('${name}_sessions', 'customer');
		CREATE TRIGGER ${name}_track AFTER INSERT ON $name FOR EACH ROW
		    EXECUTE FUNCTION session_stream.track_sessions('customer',
		        'agent=a', 'customer=b', 'ts=ts', 'from_agent=direct',
		        'results=public.${name}_sessions');
		ALTER TABLE $name DISABLE TRIGGER ${name}_track;
		INSERT INTO $name (a, b, ts, direct)
		SELECT 1 + (random() * 9)::int, 1 + (random() * 999)::int,
		       timestamp '2024-05-01' + random() * interval '1 day', random() < 0.5
		  FROM generate_series(1, $rows);
		VACUUM ANALYZE $name;
	});
	return $node->safe_psql('postgres', "SELECT pg_relation_size('$name') / 8192");
}

# Pages of the table in shared buffers.
sub cached_pages
{
	my ($name) = @_;
	return $node->safe_psql('postgres', qq{
		SELECT count(*) FROM pg_buffercache
		 WHERE relfilenode = pg_relation_filenode('$name')
		   AND reldatabase = (SELECT oid FROM pg_database WHERE datname = current_database())
		   AND relforknumber = 0});
}

sub consume
{
	my ($name) = @_;
	is( $node->safe_psql('postgres',
			"SELECT status FROM session_stream.consume_window('customer', '$name')"),
		'consumed', "$name: consumed");
}

# (The replay reads the whole source: check the cache before it.)
sub check_results
{
	my ($name) = @_;
	is( $node->safe_psql('postgres', qq{
			SELECT count(*) FROM oracle.diff('customer',
			    'SELECT a, b, ts AT TIME ZONE ''UTC'', direct FROM $name',
			    'public.${name}_sessions')}),
		'0', "$name: results equal the replay");
}

my $small_pages = create_source('small_src', 8000);
my $large_pages = create_source('large_src', 60000);
cmp_ok($small_pages, '<', 128, "the small window is within a quarter of shared buffers ($small_pages pages)");
cmp_ok($large_pages, '>', 128, "the large window is more than a quarter ($large_pages pages)");

$node->restart;
cmp_ok(cached_pages('small_src') + cached_pages('large_src'), '<', 10,
	'after a restart little of either source is cached');

consume('small_src');
is(cached_pages('small_src'), $small_pages, 'the small window is cached whole');
check_results('small_src');

consume('large_src');
cmp_ok(cached_pages('large_src'), '<=', 48,
	'the large window went through the ring: at most 48 of its pages are cached');
check_results('large_src');

$node->stop;
done_testing();
