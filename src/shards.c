/*-------------------------------------------------------------------------
 *
 * shards.c
 *	  shard_for(customer_id, shards): the 0-based shard that a coordinator
 *	  made by attach_shards() routes a customer to.
 *
 * attach_shards() (session_stream--0.1--0.2.sql) partitions
 * session_stream_cluster.messages BY HASH (customer_id) with one
 * partition per shard, every one with modulus = the number of shards and
 * remainder = its 0-based position.  PostgreSQL routes a row the way
 * compute_partition_hash_value() and get_partition_for_tuple() do: the
 * key's extended hash with seed HASH_PARTITION_SEED, folded with
 * hash_combine64() into a row hash that starts at 0, taken modulo the
 * modulus.  This computes the same, so that an application writing
 * straight to the shards places every customer where the coordinator
 * would.  The bigint hash equals the integer one for every value that
 * fits in an integer (hashint8extended), so a source whose customer_id is
 * integer routes the same way.
 *
 * IMMUTABLE: hash partitioning already depends on these hashes never
 * changing (pg_upgrade keeps the rows where they are).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/partition.h"
#include "common/hashfn.h"
#include "fmgr.h"
#include "utils/fmgrprotos.h"

PG_FUNCTION_INFO_V1(ss_shard_for);

Datum
ss_shard_for(PG_FUNCTION_ARGS)
{
	int64		customer_id = PG_GETARG_INT64(0);
	int32		shards = PG_GETARG_INT32(1);
	uint64		key_hash;
	uint64		row_hash;

	if (shards < 1)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid number of shards %d", shards),
				 errhint("Give the number of servers passed to attach_shards(), at least 1.")));

	key_hash = DatumGetUInt64(DirectFunctionCall2(hashint8extended,
												  Int64GetDatum(customer_id),
												  UInt64GetDatum(HASH_PARTITION_SEED)));
	row_hash = hash_combine64(0, key_hash);
	PG_RETURN_INT32((int32) (row_hash % (uint64) shards));
}
