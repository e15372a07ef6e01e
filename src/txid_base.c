/*-------------------------------------------------------------------------
 *
 * txid_base.c
 *	  Transaction ids that stay comparable across pg_dump and restore.
 *
 * Deferred mode tags each source row with the id of its inserting
 * transaction (current_txid(), the txid column's default) and keeps each
 * consumer's position as a set of such ids (windows.c).  A restore into
 * another cluster brings rows and positions whose ids the old server
 * handed out, while the new server goes on counting from its own next id,
 * which may be far behind.  Those ids are only ever compared with each
 * other, so everything session_stream hands out or compares is the
 * server's 64-bit id plus a per-database base (session_stream.txid_base,
 * never dumped).
 *
 * When consumed_windows rows arrive that consume_window() did not write
 * itself (a restore's COPY), raise_txid_base() raises the base so that
 * every id this server hands out from now on is above the restored
 * positions by a wide margin (TXID_BASE_HEADROOM).  Then every later
 * position contains every restored one: rows that were consumed before
 * the dump stay consumed, the rows that were pending are consumed by the
 * next call, and new rows come after them.  The margin covers the ids the
 * old server handed out after its consumers' last windows (rows pending at
 * dump time); it is spent once per restore, out of 2^63.
 *
 * The base is read once per backend and again after a relcache
 * invalidation of its table, which raising it sends.  It must not change
 * while other transactions are writing tagged rows: a restore is the only
 * time it does.
 *
 *-------------------------------------------------------------------------
 */
#include "session_stream.h"

#include "access/genam.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "access/transam.h"
#include "access/xact.h"
#include "catalog/namespace.h"
#include "catalog/pg_type.h"
#include "commands/trigger.h"
#include "executor/spi.h"
#include "storage/procarray.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/snapmgr.h"

/* Ids the old server may have handed out after its last consumed window. */
#define TXID_BASE_HEADROOM (INT64CONST(1) << 40)

static int64 cached_base = 0;
static bool cached_base_valid = false;
static Oid	base_relid = InvalidOid;
static bool callback_registered = false;

/* Set while consume_window() records its own window. */
static bool saving_own_window = false;

PG_FUNCTION_INFO_V1(ss_current_txid);
PG_FUNCTION_INFO_V1(ss_raise_txid_base);

static void
forget_base(Datum arg, Oid relid)
{
	if (relid == InvalidOid || relid == base_relid)
		cached_base_valid = false;
}

static Oid
base_table(void)
{
	Oid			relid = get_relname_relid("txid_base",
										  get_namespace_oid(SS_SCHEMA, false));

	if (!OidIsValid(relid))
		elog(ERROR, "table %s.txid_base is missing", SS_SCHEMA);
	return relid;
}

/* What session_stream adds to the server's 64-bit transaction ids. */
int64
txid_base_get(void)
{
	Relation	rel;
	SysScanDesc scan;
	HeapTuple	tuple;
	Snapshot	snapshot;
	int64		base = 0;

	if (cached_base_valid)
		return cached_base;
	if (!callback_registered)
	{
		CacheRegisterRelcacheCallback(forget_base, (Datum) 0);
		callback_registered = true;
	}
	base_relid = base_table();
	/* an invalidation arriving while we read makes us read again next time */
	cached_base_valid = true;
	rel = table_open(base_relid, AccessShareLock);
	snapshot = RegisterSnapshot(GetLatestSnapshot());
	scan = systable_beginscan(rel, InvalidOid, false, snapshot, 0, NULL);
	while ((tuple = systable_getnext(scan)) != NULL)
	{
		bool		isnull;
		Datum		d = heap_getattr(tuple, 1, RelationGetDescr(rel), &isnull);

		if (!isnull)
			base = Max(base, DatumGetInt64(d));
	}
	systable_endscan(scan);
	UnregisterSnapshot(snapshot);
	table_close(rel, AccessShareLock);
	cached_base = base;
	return base;
}

/*
 * A 32-bit xid of a running or recent transaction as session_stream
 * compares it: made 64-bit against the server's next id, plus the base.
 */
int64
txid_widen(FullTransactionId next, TransactionId xid)
{
	uint32		behind = XidFromFullTransactionId(next) - xid;

	return (int64) (U64FromFullTransactionId(next) - behind) + txid_base_get();
}

/* The inserting (top-level) transaction's id, for a txid column default. */
Datum
ss_current_txid(PG_FUNCTION_ARGS)
{
	PG_RETURN_INT64(txid_current_value());
}

/* session_stream.current_txid(), for C callers. */
int64
txid_current_value(void)
{
	return (int64) U64FromFullTransactionId(GetTopFullTransactionId()) +
		txid_base_get();
}

/* consume_window() brackets its own consumed_windows INSERT with these. */
void
txid_base_saving_own_window(bool saving)
{
	saving_own_window = saving;
}

/*
 * AFTER INSERT ... FOR EACH STATEMENT on consumed_windows: windows that
 * this server's consume_window() did not write may hold ids beyond ours.
 */
Datum
ss_raise_txid_base(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = (TriggerData *) fcinfo->context;
	int64		highest;
	int64		oldest;
	bool		isnull;

	if (!CALLED_AS_TRIGGER(fcinfo) || trigdata->tg_newtable == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("raise_txid_base() must be an AFTER INSERT statement trigger with a NEW TABLE")));
	if (saving_own_window)
		return PointerGetDatum(NULL);

	SPI_connect();
	SPI_register_trigger_data(trigdata);
	if (SPI_execute("SELECT pg_catalog.max(upto_xmax) FROM new_windows",
					true, 1) != SPI_OK_SELECT)
		elog(ERROR, "could not read the inserted windows");
	highest = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0],
										  SPI_tuptable->tupdesc, 1, &isnull));
	/* the lowest id a later snapshot can report, with today's base */
	oldest = txid_widen(ReadNextFullTransactionId(),
						GetOldestActiveTransactionId());
	if (!isnull && highest > oldest - TXID_BASE_HEADROOM)
	{
		Oid			argtypes[1] = {INT8OID};
		Datum		args[1];

		args[0] = Int64GetDatum(highest + TXID_BASE_HEADROOM - oldest);
		if (SPI_execute_with_args("UPDATE session_stream.txid_base"
								  "   SET base = base OPERATOR(pg_catalog.+) $1",
								  1, argtypes, args, NULL, false, 0) != SPI_OK_UPDATE)
			elog(ERROR, "could not raise session_stream.txid_base");
		/* base_relid was looked up by txid_widen() above */
		CacheInvalidateRelcacheByRelid(base_relid);
		cached_base_valid = false;
	}
	SPI_finish();
	return PointerGetDatum(NULL);
}
