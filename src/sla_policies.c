/*-------------------------------------------------------------------------
 *
 * sla_policies.c
 *	  session_stream.sla_policies: checking a policy when it is written,
 *	  and what the writers of a results set do for the policies on it:
 *	  queue each session that may miss a deadline for check_slas()
 *	  (src/slas.c tells the whole design).
 *
 * A policy says that a session of a results set is due `target` after it
 * opened, counted in business time when it names a calendar:
 *
 *	  INSERT INTO session_stream.sla_policies (name, results, target, calendar)
 *	  VALUES ('first_reply', 'session_stream.sessions', '30 minutes', 'support');
 *
 * check_sla_policy(), a BEFORE row trigger, checks every write as
 * check_feed_rule() does for feed rules: only the owner of the results set
 * (the view) may add, change or delete its policies; the results set must
 * be one (a view NAME over the tables NAME_closed and NAME_latest, with the
 * session columns); the target is positive, the calendar exists, delivery
 * and channel are what notify.c accepts.  covers_from (default now()) is
 * the start of the policy: sessions answered before it raise nothing.  A
 * policy moved to another results set, or enabled again, starts anew: the
 * trigger sets covers_from to now() unless the same UPDATE sets it.
 *
 * The writers' side.  track_sessions() and consume_window() write sessions
 * through results.c, which asks here, once per results_open(), for the
 * enabled policies on the results set (sla_policies_queue_for(); NULL, the
 * common case, when there are none).  For each session written it then
 * calls sla_policies_queue_session(), which adds a row to
 * session_stream.sla_pending for each policy the session may miss:
 *
 *	  an open session				always (it may stay open past its deadline)
 *	  an answered one				only if answered_at - opened_at > target
 *									and answered_at >= covers_from
 *
 * with due = opened_at + target.  A deadline is never earlier than that
 * (business time passes no faster than real time), so the writer needs no
 * calendar, cannot fail on one, and pays one heap and one index insert per
 * queued session; check_slas() computes the exact deadline when the row is
 * due.  Sessions answered in time, the vast majority, are never queued
 * when they close.
 *
 * Each backend caches the enabled policies (a short list).  The
 * statement trigger invalidate_sla_policies() sends a relcache
 * invalidation for sla_policies on any change (as invalidate_feed_rules()
 * does); the callback marks the list invalid.  A writer sees a new
 * policy once it takes a lock on the results tables after the policy
 * committed (lock acquisition processes invalidations); one that held its
 * locks from before may still write sessions without queueing them, which
 * is why check_slas() waits for the writers running when it starts a
 * policy before it queues what they wrote (see slas.c).
 *
 *-------------------------------------------------------------------------
 */
#include "session_stream.h"

#include "access/htup_details.h"
#include "access/relation.h"
#include "access/table.h"
#include "access/tableam.h"
#include "access/xact.h"
#include "catalog/namespace.h"
#include "catalog/pg_class.h"
#include "commands/trigger.h"
#include "common/int.h"
#include "executor/executor.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"

PG_FUNCTION_INFO_V1(ss_check_sla_policy);
PG_FUNCTION_INFO_V1(ss_invalidate_sla_policies);

#define SS_POLICIES_TABLE "sla_policies"

/* A sla_policies row as read. */
typedef struct PolicyRow
{
	int64		policy_id;
	char	   *name;
	Oid			results;
	Interval   *target;
	char	   *calendar;
	char	   *channel;
	char	   *delivery;
	bool		enabled;
	bool		has_covers_from;
	TimestampTz covers_from;
} PolicyRow;

/* ---------------------------------------------------------------------
 * Reading sla_policies rows
 * ---------------------------------------------------------------------
 */

static AttrNumber
policy_attnum(TupleDesc desc, const char *name)
{
	return ss_extension_attnum(desc, SS_POLICIES_TABLE, name);
}

static char *
text_column(HeapTuple tuple, TupleDesc desc, const char *name)
{
	bool		isnull;
	Datum		d = heap_getattr(tuple, policy_attnum(desc, name), desc, &isnull);

	return isnull ? NULL : TextDatumGetCString(d);
}

static void
read_policy_row(HeapTuple tuple, TupleDesc desc, PolicyRow *row)
{
	bool		isnull;
	Datum		d;

	d = heap_getattr(tuple, policy_attnum(desc, "policy_id"), desc, &isnull);
	row->policy_id = isnull ? 0 : DatumGetInt64(d);
	row->name = text_column(tuple, desc, "name");
	d = heap_getattr(tuple, policy_attnum(desc, "results"), desc, &isnull);
	row->results = isnull ? InvalidOid : DatumGetObjectId(d);
	d = heap_getattr(tuple, policy_attnum(desc, "target"), desc, &isnull);
	row->target = isnull ? NULL : DatumGetIntervalP(d);
	row->calendar = text_column(tuple, desc, "calendar");
	row->channel = text_column(tuple, desc, "channel");
	row->delivery = text_column(tuple, desc, "delivery");
	d = heap_getattr(tuple, policy_attnum(desc, "enabled"), desc, &isnull);
	row->enabled = !isnull && DatumGetBool(d);
	d = heap_getattr(tuple, policy_attnum(desc, "covers_from"), desc, &isnull);
	row->has_covers_from = !isnull;
	row->covers_from = isnull ? 0 : DatumGetTimestampTz(d);
}

/*
 * A target in microseconds (a day is 24 hours, a month 30 days, as
 * business_deadline() counts), or -1 if it is not a positive duration
 * that fits.  Never an error: writers call it.
 */
int64
sla_policies_target_usecs(const Interval *target)
{
	int64		usecs;

	if (!ss_interval_usecs(target, &usecs) || usecs <= 0)
		return -1;
	return usecs;
}

/* ---------------------------------------------------------------------
 * Results sets
 * ---------------------------------------------------------------------
 */

static const char *const results_set_detail =
"A results set NAME is the tables NAME_closed and NAME_latest and the view NAME over them.";
static const char *const results_set_hint =
"Name a results set made by session_stream.create_results(name, mode).";

/* A column of a results table of one of the given types, or an error. */
static void
require_column(Relation rel, const char *column, Oid type1, Oid type2,
			   const char *types)
{
	AttrNumber	attnum = get_attnum(RelationGetRelid(rel), column);
	Oid			type;

	if (attnum == InvalidAttrNumber)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_COLUMN),
				 errmsg("column \"%s\" of table \"%s\" does not exist",
						column, ss_table_name(rel)),
				 errdetail("%s", results_set_detail),
				 errhint("%s", results_set_hint)));
	type = get_atttype(RelationGetRelid(rel), attnum);
	if (type != type1 && type != type2)
		ereport(ERROR,
				(errcode(ERRCODE_DATATYPE_MISMATCH),
				 errmsg("column \"%s\" of table \"%s\" has type %s",
						column, ss_table_name(rel), format_type_be(type)),
				 errdetail("SLA policies need %s.", types),
				 errhint("%s", results_set_hint)));
}

/* NAME_suffix of a results set: a plain table with the session columns. */
static Oid
results_table(Relation view, const char *suffix, SSMode *mode)
{
	char	   *name = psprintf("%s_%s", RelationGetRelationName(view), suffix);
	Oid			relid;
	Relation	rel;
	const char *ids = "ids of type bigint or integer";

	relid = strlen(name) < NAMEDATALEN
		? get_relname_relid(name, RelationGetNamespace(view)) : InvalidOid;
	if (!OidIsValid(relid))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_TABLE),
				 errmsg("results set \"%s\" has no table \"%s\"",
						ss_table_name(view), name),
				 errdetail("%s", results_set_detail),
				 errhint("%s", results_set_hint)));
	rel = table_open(relid, AccessShareLock);
	if (rel->rd_rel->relkind != RELKIND_RELATION)
		ereport(ERROR,
				(errcode(ERRCODE_WRONG_OBJECT_TYPE),
				 errmsg("\"%s\" is not a table of a results set", ss_table_name(rel)),
				 errdetail("%s", results_set_detail),
				 errhint("%s", results_set_hint)));

	/* the latest table tells the mode, the closed one must agree */
	if (strcmp(suffix, "latest") == 0)
		*mode = get_attnum(relid, "agent_id") != InvalidAttrNumber
			? SS_MODE_PAIR : SS_MODE_CUSTOMER;
	require_column(rel, "customer_id", INT8OID, INT4OID, ids);
	require_column(rel, *mode == SS_MODE_PAIR ? "agent_id" : "responder_id",
				   INT8OID, INT4OID, ids);
	require_column(rel, "opened_at", TIMESTAMPTZOID, TIMESTAMPTZOID,
				   "session times of type timestamptz");
	require_column(rel, "answered_at", TIMESTAMPTZOID, TIMESTAMPTZOID,
				   "session times of type timestamptz");
	table_close(rel, AccessShareLock);
	return relid;
}

/*
 * The results set read through view: its mode and tables, or an error
 * saying what is missing.
 */
void
sla_policies_results_set(Oid view, SSSlaResultsSet *out)
{
	Relation	rel;

	if (get_rel_name(view) == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_TABLE),
				 errmsg("results set with OID %u does not exist", view),
				 errhint("%s", results_set_hint)));
	rel = relation_open(view, AccessShareLock);
	if (rel->rd_rel->relkind != RELKIND_VIEW)
		ereport(ERROR,
				(errcode(ERRCODE_WRONG_OBJECT_TYPE),
				 errmsg("\"%s\" is not a results set", ss_table_name(rel)),
				 errdetail("%s", results_set_detail),
				 errhint("%s", results_set_hint)));
	out->view = view;
	out->name = ss_table_name(rel);
	out->owner = rel->rd_rel->relowner;
	out->latest = results_table(rel, "latest", &out->mode);
	out->closed = results_table(rel, "closed", &out->mode);
	relation_close(rel, AccessShareLock);
}

/* ---------------------------------------------------------------------
 * check_sla_policy(): BEFORE INSERT OR UPDATE OR DELETE on sla_policies
 * ---------------------------------------------------------------------
 */

static void
policy_error_callback(void *arg)
{
	const char *name = (const char *) arg;

	errcontext("SLA policy \"%s\"", name);
}

/* Only the owner of a results set (or a superuser) may write its policies. */
static void
require_owner(Oid results, const char *policy)
{
	if (get_rel_name(results) == NULL)
		return;					/* the results set is gone: a leftover */
	if (!ss_pg_class_ownercheck(results, GetUserId()))
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("must be owner of results set \"%s\" to change its SLA policy \"%s\"",
						ss_relid_name(results), policy ? policy : ""),
				 errhint("Ask the owner of the results set or a superuser to write the policy.")));
}

static void
check_policy_row(const PolicyRow *row)
{
	SSSlaResultsSet results;
	ErrorContextCallback errcb;

	/* NOT NULL constraints run after BEFORE triggers: let them speak. */
	if (row->name == NULL || !OidIsValid(row->results) ||
		row->target == NULL || row->channel == NULL || row->delivery == NULL)
		return;

	if (row->name[0] == '\0' || strlen(row->name) >= NAMEDATALEN)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid SLA policy name \"%s\"", row->name),
				 errdetail("A policy name has 1 to %d bytes; it travels in every alert.",
						   NAMEDATALEN - 1)));

	errcb.callback = policy_error_callback;
	errcb.arg = row->name;
	errcb.previous = error_context_stack;
	error_context_stack = &errcb;

	sla_policies_results_set(row->results, &results);
	if (sla_policies_target_usecs(row->target) < 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid target %s for SLA policy \"%s\"",
						DatumGetCString(DirectFunctionCall1(interval_out,
															IntervalPGetDatum(row->target))),
						row->name),
				 errdetail("A target is a positive duration; a day counts 24 hours and a month 30 days."),
				 errhint("Use a target such as '30 minutes' or '4 hours'.")));
	if (row->calendar != NULL)
		(void) calendar_lookup(row->calendar);	/* an error if unknown */
	notify_check_route("SLA policy", row->name, row->channel, row->delivery);

	error_context_stack = errcb.previous;
}

/*
 * Set covers_from of an updated row to now() when the policy starts anew
 * (other results, or enabled again) and the update did not set it itself.
 */
static HeapTuple
restart_if_moved(Relation rel, HeapTuple old_tuple, HeapTuple new_tuple,
				 const PolicyRow *old_row, const PolicyRow *new_row)
{
	TupleDesc	desc = RelationGetDescr(rel);
	Datum	   *values;
	bool	   *nulls;
	bool	   *replace;
	AttrNumber	attnum;

	if (new_row->results == old_row->results &&
		(old_row->enabled || !new_row->enabled))
		return new_tuple;
	if (new_row->has_covers_from != old_row->has_covers_from ||
		new_row->covers_from != old_row->covers_from)
		return new_tuple;		/* the update says where it starts */

	attnum = policy_attnum(desc, "covers_from");
	values = palloc0(desc->natts * sizeof(Datum));
	nulls = palloc0(desc->natts * sizeof(bool));
	replace = palloc0(desc->natts * sizeof(bool));
	values[attnum - 1] = TimestampTzGetDatum(GetCurrentTransactionStartTimestamp());
	replace[attnum - 1] = true;
	return heap_modify_tuple(new_tuple, desc, values, nulls, replace);
}

Datum
ss_check_sla_policy(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = (TriggerData *) fcinfo->context;
	TupleDesc	desc;
	PolicyRow	old_row;
	PolicyRow	new_row;
	HeapTuple	result;

	if (!CALLED_AS_TRIGGER(fcinfo) ||
		!TRIGGER_FIRED_BEFORE(trigdata->tg_event) ||
		!TRIGGER_FIRED_FOR_ROW(trigdata->tg_event))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("check_sla_policy() must be fired BEFORE ... FOR EACH ROW on session_stream.sla_policies")));
	desc = RelationGetDescr(trigdata->tg_relation);

	/* The old row's results set: its owner must agree to losing the policy. */
	if (!TRIGGER_FIRED_BY_INSERT(trigdata->tg_event))
	{
		read_policy_row(trigdata->tg_trigtuple, desc, &old_row);
		if (OidIsValid(old_row.results))
			require_owner(old_row.results, old_row.name);
	}
	if (TRIGGER_FIRED_BY_DELETE(trigdata->tg_event))
		return PointerGetDatum(trigdata->tg_trigtuple);

	result = TRIGGER_FIRED_BY_INSERT(trigdata->tg_event) ?
		trigdata->tg_trigtuple : trigdata->tg_newtuple;
	read_policy_row(result, desc, &new_row);
	if (OidIsValid(new_row.results))
		require_owner(new_row.results, new_row.name);
	check_policy_row(&new_row);
	if (TRIGGER_FIRED_BY_UPDATE(trigdata->tg_event))
		result = restart_if_moved(trigdata->tg_relation, trigdata->tg_trigtuple,
								  result, &old_row, &new_row);
	return PointerGetDatum(result);
}

/* AFTER ... FOR EACH STATEMENT on sla_policies: every backend rereads. */
Datum
ss_invalidate_sla_policies(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = (TriggerData *) fcinfo->context;

	if (!CALLED_AS_TRIGGER(fcinfo))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("invalidate_sla_policies() was not called by the trigger manager")));
	CacheInvalidateRelcache(trigdata->tg_relation);
	return PointerGetDatum(NULL);
}

/* ---------------------------------------------------------------------
 * The writers' side: the enabled policies, cached per backend, and the
 * queue rows for check_slas()
 * ---------------------------------------------------------------------
 */

/* One enabled policy as writers need it. */
typedef struct CachedPolicy
{
	Oid			results;
	SSSlaTarget target;
} CachedPolicy;

static bool cache_valid = false;
static bool cache_callback_registered = false;
static uint64 invalidations = 0;	/* bumped by every relevant callback */
static Oid	policies_relid = InvalidOid;	/* as of the last build */
static Oid	pending_relid = InvalidOid;
static int	ncached = 0;
static CachedPolicy *cached = NULL; /* in CacheMemoryContext */

static void
invalidate_callback(Datum arg, Oid relid)
{
	if (!OidIsValid(relid) || relid == policies_relid || relid == pending_relid)
	{
		cache_valid = false;
		invalidations++;
	}
}

/*
 * Read the enabled policies with a fresh snapshot (the cache outlives the
 * caller's).  In a database still at 0.1 there are none.
 */
static void
build_cache(void)
{
	Oid			nspid = get_namespace_oid(SS_SCHEMA, true);
	Relation	rel;
	Snapshot	snapshot;
	TableScanDesc scan;
	TupleTableSlot *slot;
	CachedPolicy *policies = NULL;
	int			n = 0;
	int			allocated = 0;

	if (!cache_callback_registered)
	{
		CacheRegisterRelcacheCallback(invalidate_callback, (Datum) 0);
		cache_callback_registered = true;
	}
	policies_relid = OidIsValid(nspid)
		? get_relname_relid(SS_POLICIES_TABLE, nspid) : InvalidOid;
	pending_relid = OidIsValid(nspid)
		? get_relname_relid("sla_pending", nspid) : InvalidOid;
	if (OidIsValid(policies_relid) && OidIsValid(pending_relid))
	{
		rel = table_open(policies_relid, AccessShareLock);
		snapshot = RegisterSnapshot(GetLatestSnapshot());
		scan = table_beginscan(rel, snapshot, 0, NULL);
		slot = table_slot_create(rel, NULL);
		while (table_scan_getnextslot(scan, ForwardScanDirection, slot))
		{
			bool		should_free;
			HeapTuple	tuple = ExecFetchSlotHeapTuple(slot, false, &should_free);
			PolicyRow	row;
			int64		target;

			read_policy_row(tuple, RelationGetDescr(rel), &row);
			target = row.target != NULL ? sla_policies_target_usecs(row.target) : -1;
			if (row.enabled && OidIsValid(row.results) && target > 0 &&
				row.has_covers_from)
			{
				if (n == allocated)
				{
					allocated = allocated == 0 ? 8 : allocated * 2;
					policies = policies == NULL
						? MemoryContextAlloc(CacheMemoryContext,
											 allocated * sizeof(CachedPolicy))
						: repalloc(policies, allocated * sizeof(CachedPolicy));
				}
				policies[n].results = row.results;
				policies[n].target.policy_id = row.policy_id;
				policies[n].target.target = target;
				policies[n].target.covers_from = row.covers_from;
				n++;
			}
			if (should_free)
				heap_freetuple(tuple);
		}
		ExecDropSingleTupleTableSlot(slot);
		table_endscan(scan);
		UnregisterSnapshot(snapshot);
		table_close(rel, AccessShareLock);
	}
	if (cached != NULL)
		pfree(cached);
	cached = policies;
	ncached = n;
}

/*
 * What writers of results set `results` (in `mode`) queue, or NULL when no
 * enabled policy covers it.  Call it once the results tables are locked:
 * taking those locks has processed the invalidations of policies
 * committed before.  The result lives in the caller's memory context.
 */
SSSlaQueue *
sla_policies_queue_for(Oid results, SSMode mode)
{
	SSSlaQueue *queue = NULL;
	int			i;

	if (!cache_valid)
	{
		uint64		before = invalidations;

		/*
		 * An invalidation arriving while we read (table locks accept them)
		 * leaves the new list in use for this call but marks it for
		 * another rebuild.  A database still at 0.1 has no policies table
		 * yet: look again next time, as ALTER EXTENSION UPDATE sends no
		 * invalidation we would recognise.
		 */
		build_cache();
		cache_valid = (invalidations == before) && OidIsValid(policies_relid) &&
			OidIsValid(pending_relid);
	}
	for (i = 0; i < ncached; i++)
	{
		if (cached[i].results != results)
			continue;
		if (queue == NULL)
		{
			queue = palloc0(sizeof(SSSlaQueue));
			queue->results = results;
			queue->mode = mode;
			queue->targets = palloc(ncached * sizeof(SSSlaTarget));
		}
		queue->targets[queue->ntargets++] = cached[i].target;
	}
	return queue;
}

/* Open sla_pending for inserts in the writer's executor state. */
static void
open_pending(SSSlaQueue *queue)
{
	Relation	rel = table_open(pending_relid, RowExclusiveLock);

	queue->rri = makeNode(ResultRelInfo);
	InitResultRelInfo(queue->rri, rel, 0, NULL, 0);
	ExecOpenIndices(queue->rri, false);
	queue->slot = MakeSingleTupleTableSlot(RelationGetDescr(rel), &TTSOpsVirtual);
	queue->policy_attnum = ss_extension_attnum(RelationGetDescr(rel), "sla_pending", "policy_id");
	queue->results_attnum = ss_extension_attnum(RelationGetDescr(rel), "sla_pending", "results");
	queue->customer_attnum = ss_extension_attnum(RelationGetDescr(rel), "sla_pending", "customer_id");
	queue->agent_attnum = ss_extension_attnum(RelationGetDescr(rel), "sla_pending", "agent_id");
	queue->opened_attnum = ss_extension_attnum(RelationGetDescr(rel), "sla_pending", "opened_at");
	queue->due_attnum = ss_extension_attnum(RelationGetDescr(rel), "sla_pending", "due");
}

static void
set_column(TupleTableSlot *slot, AttrNumber attnum, Datum value, bool isnull)
{
	slot->tts_values[attnum - 1] = value;
	slot->tts_isnull[attnum - 1] = isnull;
}

/*
 * A session was written to the results set: queue it for each policy it
 * may miss (see the header comment).  estate is the writer's.
 */
void
sla_policies_queue_session(SSSlaQueue *queue, EState *estate,
						   const SSSession *session)
{
	int			i;

	for (i = 0; i < queue->ntargets; i++)
	{
		const SSSlaTarget *t = &queue->targets[i];
		TupleTableSlot *slot;
		TimestampTz due;

		if (!session->is_open &&
			(session->answered_at < t->covers_from ||
			 session->answered_at - session->opened_at <= t->target))
			continue;			/* answered in time, or before the policy */
		if (pg_add_s64_overflow(session->opened_at, t->target, &due) ||
			!IS_VALID_TIMESTAMP(due))
			continue;			/* no deadline that far ahead */

		if (queue->rri == NULL)
			open_pending(queue);
		slot = queue->slot;
		ExecClearTuple(slot);
		memset(slot->tts_isnull, true, slot->tts_tupleDescriptor->natts * sizeof(bool));
		set_column(slot, queue->policy_attnum, Int64GetDatum(t->policy_id), false);
		set_column(slot, queue->results_attnum, ObjectIdGetDatum(queue->results), false);
		set_column(slot, queue->customer_attnum, Int64GetDatum(session->customer_id), false);
		set_column(slot, queue->agent_attnum, Int64GetDatum(session->agent_id),
				   queue->mode != SS_MODE_PAIR);
		set_column(slot, queue->opened_attnum, TimestampTzGetDatum(session->opened_at), false);
		set_column(slot, queue->due_attnum, TimestampTzGetDatum(due), false);
		ExecStoreVirtualTuple(slot);
		ExecSimpleRelationInsert(queue->rri, estate, slot);
	}
}

/* The writer is done (before its executor state goes). */
void
sla_policies_queue_close(SSSlaQueue *queue)
{
	if (queue->rri == NULL)
		return;
	ExecCloseIndices(queue->rri);
	ExecDropSingleTupleTableSlot(queue->slot);
	table_close(queue->rri->ri_RelationDesc, NoLock);
	queue->rri = NULL;
}
