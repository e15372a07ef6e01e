/*-------------------------------------------------------------------------
 *
 * session_stream.c
 *	  Module load: transaction callbacks that reset per-transaction state,
 *	  and the consumers' launcher when preloaded (launcher.c).
 *
 * Per-trigger caches register their own relcache callbacks when first
 * used (see trigger_args.c, rules.c, notify.c, calendar.c).
 *
 *-------------------------------------------------------------------------
 */
#include "session_stream.h"

#include "access/genam.h"
#include "access/xact.h"
#include "executor/spi.h"
#include "common/int.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "nodes/makefuncs.h"
#include "parser/parse_func.h"
#include "utils/guc.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/resowner.h"
#include "utils/relcache.h"

PG_MODULE_MAGIC;

void		_PG_init(void);

static void
on_xact_event(XactEvent event, void *arg)
{
	switch (event)
	{
		case XACT_EVENT_COMMIT:
			consumer_wake_at_commit();
			/* FALLTHROUGH */
		case XACT_EVENT_PARALLEL_COMMIT:
		case XACT_EVENT_ABORT:
		case XACT_EVENT_PARALLEL_ABORT:
		case XACT_EVENT_PREPARE:
			consumer_forget_wake();
			realtime_forget_applied();
			rules_release_retired();
			calendar_release_retired();
			break;
		default:
			break;
	}
}

static void
on_subxact_event(SubXactEvent event, SubTransactionId mySubid,
				 SubTransactionId parentSubid, void *arg)
{
	/* Rows an aborted subtransaction applied may be gone: forget them all. */
	if (event == SUBXACT_EVENT_ABORT_SUB)
		realtime_forget_applied();
}

void
_PG_init(void)
{
	DefineCustomIntVariable("session_stream.consume_batch_limit",
							"Most messages one consume_window() call takes when max_messages is NULL.",
							"Bounds a call's memory (about 50 bytes a message) on a large backlog; the rest is left for the next call.",
							&consume_batch_limit,
							1000000, 1, INT_MAX,
							PGC_USERSET, 0,
							NULL, NULL, NULL);
	MarkGUCPrefixReserved("session_stream");

	RegisterXactCallback(on_xact_event, NULL);
	RegisterSubXactCallback(on_subxact_event, NULL);

	/*
	 * Preloaded: start the consumers at server start (launcher.c); not in
	 * the server pg_upgrade runs, which must not consume anything.
	 */
	if (process_shared_preload_libraries_in_progress && !IsBinaryUpgrade)
		launcher_register();
}

/* "schema.table", quoted as needed, for messages. */
char *
ss_table_name(Relation rel)
{
	return quote_qualified_identifier(get_namespace_name(RelationGetNamespace(rel)),
									  RelationGetRelationName(rel));
}

/*
 * Run work(arg) in an internal subtransaction, in the caller's memory
 * context and resource owner.  NULL if it succeeded (the subtransaction
 * is committed); otherwise its error, copied into the caller's context,
 * after the subtransaction is rolled back: the caller reports it, and one
 * bad rule or policy does not stop the others.
 */
ErrorData *
ss_in_subtransaction(void (*work) (void *arg), void *arg)
{
	MemoryContext caller = CurrentMemoryContext;
	ResourceOwner owner = CurrentResourceOwner;
	ErrorData  *volatile error = NULL;

	BeginInternalSubTransaction(NULL);
	MemoryContextSwitchTo(caller);
	PG_TRY();
	{
		work(arg);
		ReleaseCurrentSubTransaction();
		MemoryContextSwitchTo(caller);
		CurrentResourceOwner = owner;
	}
	PG_CATCH();
	{
		MemoryContextSwitchTo(caller);
		error = CopyErrorData();
		FlushErrorState();
		RollbackAndReleaseCurrentSubTransaction();
		MemoryContextSwitchTo(caller);
		CurrentResourceOwner = owner;
	}
	PG_END_TRY();
	return error;
}

/*
 * The plan of a query that runs through SPI again and again, prepared
 * once per backend into *plan and kept (SPI_keepplan()): the plan cache
 * plans it again when what it reads changes.  SPI must be connected.
 */
SPIPlanPtr
ss_kept_plan(SPIPlanPtr *plan, const char *query, int nargs, Oid *argtypes)
{
	if (*plan == NULL)
	{
		SPIPlanPtr	prepared = SPI_prepare(query, nargs, argtypes);

		if (prepared == NULL)
			elog(ERROR, "SPI_prepare failed: %s", SPI_result_code_string(SPI_result));
		if (SPI_keepplan(prepared) != 0)
			elog(ERROR, "SPI_keepplan failed");
		*plan = prepared;
	}
	return *plan;
}

/*
 * "schema.table" of a relation by oid, quoted as needed, for messages and
 * queries; its oid if the relation is gone.
 */
char *
ss_relid_name(Oid relid)
{
	char	   *name = get_rel_name(relid);

	if (name == NULL)
		return psprintf("%u", relid);
	return quote_qualified_identifier(get_namespace_name(get_rel_namespace(relid)),
									  name);
}

/*
 * The first index of rel that "usable" accepts (InvalidOid if none): each
 * index is opened for the test and closed again.
 */
Oid
ss_find_index(Relation rel, SSIndexTest usable, const void *arg)
{
	List	   *indexes = RelationGetIndexList(rel);
	ListCell   *lc;
	Oid			found = InvalidOid;

	foreach(lc, indexes)
	{
		Relation	index = index_open(lfirst_oid(lc), AccessShareLock);
		bool		ok = index->rd_index->indisvalid && usable(rel, index, arg);

		index_close(index, AccessShareLock);
		if (ok)
		{
			found = lfirst_oid(lc);
			break;
		}
	}
	list_free(indexes);
	return found;
}

/*
 * A duration in microseconds as interval comparison counts it: a day is
 * 24 hours, a month 30 days.  False if it does not fit in 64 bits.
 */
bool
ss_interval_usecs(const Interval *span, int64 *usecs)
{
	int64		days;

	return !(pg_mul_s64_overflow((int64) span->month, DAYS_PER_MONTH, &days) ||
			 pg_add_s64_overflow(days, (int64) span->day, &days) ||
			 pg_mul_s64_overflow(days, USECS_PER_DAY, usecs) ||
			 pg_add_s64_overflow(*usecs, span->time, usecs));
}

/* The oid of session_stream.track_sessions(), the trigger function. */
Oid
ss_track_sessions_oid(void)
{
	return LookupFuncName(list_make2(makeString(SS_SCHEMA),
									 makeString("track_sessions")),
						  0, NULL, false);
}

/* A column of one of the extension's own tables; missing can't happen. */
AttrNumber
ss_extension_attnum(TupleDesc desc, const char *table, const char *column)
{
	int			attnum = SPI_fnumber(desc, column);

	if (attnum <= 0)
		elog(ERROR, "column \"%s\" of session_stream.%s is missing", column, table);
	return (AttrNumber) attnum;
}
