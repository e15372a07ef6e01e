/*-------------------------------------------------------------------------
 *
 * results.c
 *	  Read and write a results table (session_stream.sessions,
 *	  pair_sessions, or a user's table of the same shape).
 *
 * Reads are index scans on the results index, key columns then opened_at,
 * walking a key's sessions newest first.  Writes go through the executor's
 * simple-relation routines (as logical replication apply does), so the
 * table's constraints, including the one-open-session exclusion
 * constraint, its indexes and any user triggers on it behave as for an
 * ordinary INSERT, UPDATE or DELETE; the executor state they need is only
 * built once a call actually writes.
 *
 *-------------------------------------------------------------------------
 */
#include "session_stream.h"

#include "access/genam.h"
#include "access/relscan.h"
#include "access/stratnum.h"
#include "access/table.h"
#include "access/tableam.h"
#include "access/xact.h"
#include "catalog/pg_type.h"
#include "commands/trigger.h"
#include "executor/executor.h"
#include "storage/lmgr.h"
#include "utils/fmgroids.h"

void
results_open(SSResults *results, const SSTracker *tracker, Snapshot snapshot)
{
	memset(results, 0, sizeof(*results));
	results->tracker = tracker;
	/* a consumer locked the table against all other writers (consume.c) */
	results->exclusive = CheckRelationOidLockedByMe(tracker->results_relid,
													ShareRowExclusiveLock, true);
	results->snapshot = snapshot;
	results->rel = table_open(tracker->results_relid, RowExclusiveLock);
	results->index = index_open(tracker->results_index, AccessShareLock);
	results->slot = table_slot_create(results->rel, NULL);
}

static void
begin_writing(SSResults *results)
{
	EState	   *estate;

	if (results->estate != NULL)
		return;
	estate = CreateExecutorState();
	estate->es_snapshot = results->snapshot;
	estate->es_output_cid = GetCurrentCommandId(true);
	results->rri = makeNode(ResultRelInfo);
	InitResultRelInfo(results->rri, results->rel, 0, NULL, 0);
	ExecOpenIndices(results->rri, false);
	if (results->exclusive)
	{
		int			i;

		/*
		 * The caller holds a lock that keeps every other writer out and
		 * applies each key's messages from its stored state, so it never
		 * writes a second open session for a key: the exclusion
		 * constraint's per-row re-check (an index scan for each row) would
		 * find nothing.  The index entries are still made, so the
		 * constraint holds for everyone else.
		 */
		for (i = 0; i < results->rri->ri_NumIndices; i++)
			results->rri->ri_IndexRelationInfo[i]->ii_ExclusionOps = NULL;
	}
	EvalPlanQualInit(&results->epqstate, estate, NULL, NIL, -1);
	results->write_slot = ExecInitExtraTupleSlot(estate,
												 RelationGetDescr(results->rel),
												 &TTSOpsVirtual);
	results->estate = estate;
	/* AFTER triggers on the results table fire when we finish, as in SPI. */
	AfterTriggerBeginQuery();
}

void
results_close(SSResults *results)
{
	if (results->estate != NULL)
	{
		AfterTriggerEndQuery(results->estate);
		EvalPlanQualEnd(&results->epqstate);
		ExecCloseIndices(results->rri);
		ExecResetTupleTable(results->estate->es_tupleTable, false);
		FreeExecutorState(results->estate);
		results->estate = NULL;
	}
	ExecDropSingleTupleTableSlot(results->slot);
	index_close(results->index, AccessShareLock);
	table_close(results->rel, NoLock);
}

/* Scan one key's sessions, newest first. */
static IndexScanDesc
begin_key_scan(SSResults *results, const SSMessage *key)
{
	const SSTracker *t = results->tracker;
	ScanKeyData keys[2];
	IndexScanDesc scan;

	ScanKeyInit(&keys[0], 1, BTEqualStrategyNumber,
				t->results_customer_type == INT8OID ? F_INT8EQ : F_INT4EQ,
				id_datum(key->customer_id, t->results_customer_type));
	if (t->results_key_columns == 2)
		ScanKeyInit(&keys[1], 2, BTEqualStrategyNumber,
					t->results_agent_type == INT8OID ? F_INT8EQ : F_INT4EQ,
					id_datum(key->agent_id, t->results_agent_type));
	scan = index_beginscan(results->rel, results->index, results->snapshot,
						   t->results_key_columns, 0);
	index_rescan(scan, keys, t->results_key_columns, NULL, 0);
	return scan;
}

static void
read_session(SSResults *results, SSSession *s)
{
	const SSTracker *t = results->tracker;
	TupleTableSlot *slot = results->slot;
	bool		isnull;
	Datum		d;

	s->customer_id = id_value(slot_getattr(slot, t->results_customer_attnum, &isnull),
							  t->results_customer_type);
	s->opened_at = DatumGetInt64(slot_getattr(slot, t->results_opened_attnum, &isnull));
	d = slot_getattr(slot, t->results_answered_attnum, &isnull);
	s->is_open = isnull;
	s->answered_at = isnull ? 0 : DatumGetInt64(d);
	d = slot_getattr(slot, t->results_agent_attnum, &isnull);
	s->agent_id = isnull ? 0 : id_value(d, t->results_agent_type);
}

/* Does the results table hold no session at all? */
bool
results_is_empty(SSResults *results)
{
	IndexScanDesc scan = index_beginscan(results->rel, results->index,
										 results->snapshot, 0, 0);
	bool		empty;

	index_rescan(scan, NULL, 0, NULL, 0);
	empty = !index_getnext_slot(scan, ForwardScanDirection, results->slot);
	index_endscan(scan);
	return empty;
}

/*
 * The key's newest session, if any.  It stays in results->slot so that
 * results_close_session() can answer it without a second lookup.
 */
bool
results_last_session(SSResults *results, const SSMessage *key,
					 SSSession *session)
{
	IndexScanDesc scan = begin_key_scan(results, key);
	bool		found = index_getnext_slot(scan, BackwardScanDirection,
										   results->slot);

	if (found)
		read_session(results, session);
	index_endscan(scan);
	return found;
}

/*
 * Walk the key's sessions newest first down to the first one answered
 * before "message"; that one is returned in kept (false if there is none).
 * The opening time of the oldest session passed on the way goes to
 * *oldest_opened_at (left alone if none was passed); with "delete" each
 * passed session is deleted.
 */
static bool
walk_back_to_answer(SSResults *results, const SSMessage *key,
					const SSMessage *message, bool delete,
					SSSession *kept, int64 *oldest_opened_at)
{
	IndexScanDesc scan = begin_key_scan(results, key);
	bool		found = false;

	while (index_getnext_slot(scan, BackwardScanDirection, results->slot))
	{
		SSSession	s;

		read_session(results, &s);
		if (!s.is_open)
		{
			SSMessage	answer;

			sessions_closing_message(&s, &answer);
			if (sessions_compare_messages(&answer, message) < 0)
			{
				*kept = s;
				found = true;
				break;
			}
		}
		if (delete)
		{
			begin_writing(results);
			ExecSimpleRelationDelete(results->rri, results->estate,
									 &results->epqstate, results->slot);
		}
		*oldest_opened_at = s.opened_at;
	}
	index_endscan(scan);
	return found;
}

/*
 * Undo the key's sessions that "message" may change: delete, newest first,
 * every session that is open or was answered at or after the message, and
 * stop at the first one answered before it.  That one is returned in kept
 * (the replay restarts right after its answer); false means no session
 * was kept and the key must be replayed from its first message.  The
 * oldest deleted session's opening time goes to *oldest_opened_at (left
 * alone if none was deleted).
 */
bool
results_rewind_before(SSResults *results, const SSMessage *key,
					  const SSMessage *message, SSSession *kept,
					  int64 *oldest_opened_at)
{
	return walk_back_to_answer(results, key, message, true, kept,
							   oldest_opened_at);
}

/* Where results_rewind_before() would stop, without changing anything. */
bool
results_answered_before(SSResults *results, const SSMessage *key,
						const SSMessage *message, SSSession *kept,
						int64 *oldest_opened_at)
{
	return walk_back_to_answer(results, key, message, false, kept,
							   oldest_opened_at);
}

static void
fill_session(SSResults *results, TupleTableSlot *slot, const SSSession *s)
{
	const SSTracker *t = results->tracker;

	slot->tts_values[t->results_customer_attnum - 1] =
		id_datum(s->customer_id, t->results_customer_type);
	slot->tts_isnull[t->results_customer_attnum - 1] = false;
	slot->tts_values[t->results_opened_attnum - 1] = Int64GetDatum(s->opened_at);
	slot->tts_isnull[t->results_opened_attnum - 1] = false;
	slot->tts_values[t->results_answered_attnum - 1] = Int64GetDatum(s->answered_at);
	slot->tts_isnull[t->results_answered_attnum - 1] = s->is_open;

	/* In pair mode the agent is part of the key, known while open too. */
	slot->tts_values[t->results_agent_attnum - 1] =
		id_datum(s->agent_id, t->results_agent_type);
	slot->tts_isnull[t->results_agent_attnum - 1] =
		s->is_open && t->mode == SS_MODE_CUSTOMER;
}

void
results_insert(SSResults *results, const SSSession *session)
{
	TupleTableSlot *slot;
	int			natts = RelationGetDescr(results->rel)->natts;

	begin_writing(results);
	slot = results->write_slot;
	ExecClearTuple(slot);
	memset(slot->tts_isnull, true, natts * sizeof(bool));
	fill_session(results, slot, session);
	ExecStoreVirtualTuple(slot);
	ExecSimpleRelationInsert(results->rri, results->estate, slot);
}

/*
 * Record the answer of the open session that results_last_session() just
 * returned; other columns keep their values.
 */
void
results_close_session(SSResults *results, const SSSession *session)
{
	TupleTableSlot *slot;
	int			natts = RelationGetDescr(results->rel)->natts;

	Assert(!session->is_open);
	begin_writing(results);
	slot = results->write_slot;
	ExecClearTuple(slot);
	slot_getallattrs(results->slot);
	memcpy(slot->tts_values, results->slot->tts_values, natts * sizeof(Datum));
	memcpy(slot->tts_isnull, results->slot->tts_isnull, natts * sizeof(bool));
	fill_session(results, slot, session);
	ExecStoreVirtualTuple(slot);
	ExecSimpleRelationUpdate(results->rri, results->estate, &results->epqstate,
							 results->slot, slot);
}
