/*-------------------------------------------------------------------------
 *
 * results.c
 *	  Read and write a results set: NAME_latest holds each key's newest
 *	  session, open or answered, one row per key; NAME_closed holds every
 *	  answered session.  (The view NAME shows the closed sessions and the
 *	  open ones; see create_results_in() in the install script.)
 *
 * A key's newest session is one index probe into NAME_latest.  Opening a
 * session and answering it update that row in place without touching an
 * indexed column, so the updates are HOT: no index entries, and page
 * pruning reclaims the old versions without VACUUM.  An answered session
 * is also inserted, once, into NAME_closed, whose index (key columns,
 * then opened_at) is walked newest first when a late message rewinds a
 * key.
 *
 * Callers work key by key.  The first call for a key reads its latest
 * row; the sessions stored for the key are remembered, and its latest row
 * is written once, when the next key comes or at results_close().  A key
 * must not come back after that within one results_open(): its row was
 * rewritten by this command, which cannot read its own writes.
 * consume.c and realtime.c keep to that.
 *
 * Writes go through the executor's simple-relation routines (as logical
 * replication apply does), so the tables' constraints, indexes and any
 * user triggers behave as for ordinary INSERT, UPDATE and DELETE; the
 * executor state they need is only built once a call writes.  With
 * results->bulk (consume_window()) new rows are held back and inserted
 * many at a time, as COPY does (bulk_insert.c).
 *
 * When SLA policies cover the results set, each session opened, and each
 * one answered later than a policy's target, is also queued for
 * check_slas() (sla_policies_queue_session(); see sla_policies.c).
 *
 *-------------------------------------------------------------------------
 */
#include "session_stream.h"

#include "access/genam.h"
#include "access/heapam.h"
#include "access/relscan.h"
#include "access/stratnum.h"
#include "access/table.h"
#include "access/tableam.h"
#include "access/xact.h"
#include "catalog/pg_am.h"
#include "catalog/pg_type.h"
#include "commands/trigger.h"
#include "executor/executor.h"
#include "rewrite/rewriteHandler.h"
#include "storage/bufmgr.h"
#include "utils/fmgroids.h"

void
results_open(SSResults *results, const SSTracker *tracker, Snapshot snapshot)
{
	memset(results, 0, sizeof(*results));
	results->tracker = tracker;
	results->snapshot = snapshot;
	results->latest_rel = table_open(tracker->latest.relid, RowExclusiveLock);
	/* the lock a write takes (ExecOpenIndices), so it finds it held */
	results->latest_index = index_open(tracker->latest.index, RowExclusiveLock);
	results->latest_slot = table_slot_create(results->latest_rel, NULL);
	/* after the lock: it has brought in policies committed before it */
	results->sla = sla_policies_queue_for(tracker->results_relid, tracker->mode);
}

/* NAME_closed is only needed to answer a session or to rewind a key. */
static void
open_closed(SSResults *results)
{
	if (results->closed_rel != NULL)
		return;
	results->closed_rel = table_open(results->tracker->closed.relid,
									 RowExclusiveLock);
	results->closed_index = index_open(results->tracker->closed.index,
									   RowExclusiveLock);
	results->closed_slot = table_slot_create(results->closed_rel, NULL);
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
	ss_EvalPlanQualInit(&results->epqstate, estate, NULL, NIL, -1);
	results->estate = estate;
	/* AFTER triggers on the results tables fire when we finish, as in SPI. */
	AfterTriggerBeginQuery();
}

/*
 * The defaults of the columns users added to a table (identity columns'
 * next values too), prepared once per call: new rows get them, as an
 * INSERT naming only the session's columns would.  NULL if there are none.
 */
static ExprState **
prepare_added_defaults(SSResults *results, Relation rel,
					   const SSResultsTable *table)
{
	TupleDesc	desc = RelationGetDescr(rel);
	ExprState **defaults = NULL;
	int			i;

	for (i = 0; i < desc->natts; i++)
	{
		Form_pg_attribute att = TupleDescAttr(desc, i);
		AttrNumber	attnum = i + 1;
		Expr	   *expr;

		if (att->attisdropped || att->attgenerated ||
			(!att->atthasdef && !att->attidentity) ||
			attnum == table->customer_attnum || attnum == table->agent_attnum ||
			attnum == table->opened_attnum || attnum == table->answered_attnum)
			continue;
		expr = (Expr *) build_column_default(rel, attnum);
		if (expr == NULL)
			continue;
		if (defaults == NULL)
			defaults = palloc0(desc->natts * sizeof(ExprState *));
		defaults[i] = ExecPrepareExpr(expr, results->estate);
	}
	return defaults;
}

/* What the executor needs to write one of the tables. */
static SSTableWriter *
begin_writing_table(SSResults *results, Relation rel,
					const SSResultsTable *table, SSTableWriter *writer)
{
	if (writer->rri != NULL)
		return writer;
	begin_writing(results);
	writer->rri = makeNode(ResultRelInfo);
	InitResultRelInfo(writer->rri, rel, 0, NULL, 0);
	ExecOpenIndices(writer->rri, false);
	writer->slot = ExecInitExtraTupleSlot(results->estate, RelationGetDescr(rel),
										  &TTSOpsVirtual);
	writer->defaults = prepare_added_defaults(results, rel, table);
	if (results->bulk)
	{
		writer->bulk = palloc(sizeof(SSBulkInsert));
		if (!bulk_insert_begin(writer->bulk, writer->rri, results->estate))
		{
			pfree(writer->bulk);
			writer->bulk = NULL;
		}
	}
	return writer;
}

static SSTableWriter *
latest_writer(SSResults *results)
{
	return begin_writing_table(results, results->latest_rel,
							   &results->tracker->latest,
							   &results->latest_writer);
}

static SSTableWriter *
closed_writer(SSResults *results)
{
	open_closed(results);
	return begin_writing_table(results, results->closed_rel,
							   &results->tracker->closed,
							   &results->closed_writer);
}

/* Scan one key's rows of a results table, through its index. */
static IndexScanDesc
begin_key_scan(SSResults *results, Relation rel, Relation index,
			   const SSResultsTable *table, const SSMessage *key)
{
	int			nkeys = results->tracker->results_key_columns;
	ScanKeyData keys[2];
	IndexScanDesc scan;

	ScanKeyInit(&keys[0], 1, BTEqualStrategyNumber,
				table->customer_type == INT8OID ? F_INT8EQ : F_INT4EQ,
				id_datum(key->customer_id, table->customer_type));
	if (nkeys == 2)
		ScanKeyInit(&keys[1], 2, BTEqualStrategyNumber,
					table->agent_type == INT8OID ? F_INT8EQ : F_INT4EQ,
					id_datum(key->agent_id, table->agent_type));
	scan = index_beginscan(rel, index, results->snapshot, nkeys, 0);
	index_rescan(scan, keys, nkeys, NULL, 0);
	return scan;
}

static void
read_session(const SSResultsTable *table, TupleTableSlot *slot, SSSession *s)
{
	bool		isnull;
	Datum		d;

	memset(s, 0, sizeof(*s));
	s->customer_id = id_value(slot_getattr(slot, table->customer_attnum, &isnull),
							  table->customer_type);
	s->opened_at = DatumGetInt64(slot_getattr(slot, table->opened_attnum, &isnull));
	d = slot_getattr(slot, table->answered_attnum, &isnull);
	s->is_open = isnull;
	s->answered_at = isnull ? 0 : DatumGetInt64(d);
	d = slot_getattr(slot, table->agent_attnum, &isnull);
	s->agent_id = isnull ? 0 : id_value(d, table->agent_type);
}

/* Put a session's columns into a slot of one of the tables. */
static void
fill_session(const SSTracker *t, const SSResultsTable *table,
			 TupleTableSlot *slot, const SSSession *s)
{
	slot->tts_values[table->customer_attnum - 1] =
		id_datum(s->customer_id, table->customer_type);
	slot->tts_isnull[table->customer_attnum - 1] = false;
	slot->tts_values[table->opened_attnum - 1] = Int64GetDatum(s->opened_at);
	slot->tts_isnull[table->opened_attnum - 1] = false;
	slot->tts_values[table->answered_attnum - 1] = Int64GetDatum(s->answered_at);
	slot->tts_isnull[table->answered_attnum - 1] = s->is_open;

	/* In pair mode the agent is part of the key, known while open too. */
	slot->tts_values[table->agent_attnum - 1] =
		id_datum(s->agent_id, table->agent_type);
	slot->tts_isnull[table->agent_attnum - 1] =
		s->is_open && t->mode == SS_MODE_CUSTOMER;
}

/*
 * Start a new row, in the writer's slot or the next of its bulk buffer;
 * returns that slot.  The session's columns are filled in by
 * fill_session(), columns users added get their defaults.
 */
static TupleTableSlot *
start_new_row(SSResults *results, SSTableWriter *writer)
{
	TupleTableSlot *slot = writer->bulk != NULL ? bulk_insert_slot(writer->bulk)
		: writer->slot;
	int			natts = slot->tts_tupleDescriptor->natts;
	int			i;

	ExecClearTuple(slot);
	memset(slot->tts_isnull, true, natts * sizeof(bool));
	if (writer->defaults == NULL)
		return slot;
	/* the previous row is written: its per-row memory can go */
	ResetPerTupleExprContext(results->estate);
	for (i = 0; i < natts; i++)
		if (writer->defaults[i] != NULL)
			slot->tts_values[i] =
				ExecEvalExprSwitchContext(writer->defaults[i],
										  GetPerTupleExprContext(results->estate),
										  &slot->tts_isnull[i]);
	return slot;
}

/* Insert the row start_new_row() began, now or with its bulk buffer. */
static void
insert_new_row(SSResults *results, SSTableWriter *writer, TupleTableSlot *slot)
{
	ExecStoreVirtualTuple(slot);
	if (writer->bulk != NULL)
		bulk_insert_add(writer->bulk);
	else
		ExecSimpleRelationInsert(writer->rri, results->estate, slot);
}

/* Write what the writers hold back (before AFTER triggers fire). */
static void
end_bulk_inserts(SSTableWriter *writer)
{
	if (writer->bulk == NULL)
		return;
	bulk_insert_end(writer->bulk);
	pfree(writer->bulk);
	writer->bulk = NULL;
}

/* Write the key's latest row if its newest session changed. */
static void
flush_key(SSResults *results)
{
	const SSTracker *t = results->tracker;
	SSTableWriter *writer;
	TupleTableSlot *slot;
	int			natts = RelationGetDescr(results->latest_rel)->natts;

	if (!results->has_key || !results->newest_changed)
		return;
	writer = latest_writer(results);
	slot = writer->slot;		/* for an update */
	if (results->has_newest)
	{
		/* a session opened: SLA policies will want to know if it stays so */
		bool		opened = results->sla != NULL && results->newest.is_open;

		if (opened && results->latest_stored)
		{
			SSSession	stored;

			read_session(&t->latest, results->latest_slot, &stored);
			opened = !stored.is_open || stored.opened_at != results->newest.opened_at;
		}
		if (results->latest_stored)
		{
			/* columns of the user's own keep their values */
			ExecClearTuple(slot);
			slot_getallattrs(results->latest_slot);
			memcpy(slot->tts_values, results->latest_slot->tts_values, natts * sizeof(Datum));
			memcpy(slot->tts_isnull, results->latest_slot->tts_isnull, natts * sizeof(bool));
		}
		else
			slot = start_new_row(results, writer);
		fill_session(t, &t->latest, slot, &results->newest);
		if (results->latest_stored)
		{
			ExecStoreVirtualTuple(slot);
			ExecSimpleRelationUpdate(writer->rri, results->estate, &results->epqstate,
									 results->latest_slot, slot);
		}
		else
			insert_new_row(results, writer, slot);
		if (opened)
			sla_policies_queue_session(results->sla, results->estate,
									   &results->newest);
	}
	else if (results->latest_stored)
		ExecSimpleRelationDelete(writer->rri, results->estate, &results->epqstate,
								 results->latest_slot);
	results->newest_changed = false;
	results->has_key = false;	/* see the header comment */
}

/*
 * NAME_latest's rows are updated in place (HOT) all the time, so nearly
 * every read of one of its pages finds an old version that could be
 * pruned, and the heap's index fetch prunes whenever a page is fuller
 * than its fillfactor: on almost every read, one dead version at a time.
 * Pruning a page costs about the same for one dead version as for twenty
 * (it looks at every tuple and compacts the page), so for heap tables we
 * fetch the row ourselves and prune only when the page is running out of
 * room for the next updates.  Every update of a latest row follows a read
 * of its page here, so the room is there when it is needed.
 */
#define LATEST_PRUNE_BELOW (BLCKSZ / 8)

/* Room for a key's index entries: its row, and dead versions not yet gone. */
#define LATEST_PROBE_TIDS 8

/*
 * Look for a visible version of the row in the HOT chain at tid (pruning
 * its page first if it is short of room, see above); if found it goes to
 * latest_slot.  *all_dead tells if every version there is dead.  An
 * SSEntryVisitor; arg is the SSResults.
 */
static bool
fetch_heap_chain(void *arg, ItemPointer tid, bool *all_dead)
{
	SSResults  *results = (SSResults *) arg;
	Relation	rel = results->latest_rel;
	BufferHeapTupleTableSlot *slot = (BufferHeapTupleTableSlot *) results->latest_slot;
	Buffer		buffer = ReadBuffer(rel, ItemPointerGetBlockNumber(tid));
	ItemPointerData version = *tid;
	bool		found;

	if (PageGetHeapFreeSpace(BufferGetPage(buffer)) < LATEST_PRUNE_BELOW)
		heap_page_prune_opt(rel, buffer);
	LockBuffer(buffer, BUFFER_LOCK_SHARE);
	found = heap_hot_search_buffer(&version, rel, buffer, results->snapshot,
								   &slot->base.tupdata, all_dead, true);
	if (found)
		ExecStoreBufferHeapTuple(&slot->base.tupdata, &slot->base.base, buffer);
	LockBuffer(buffer, BUFFER_LOCK_UNLOCK);
	ReleaseBuffer(buffer);		/* the slot keeps its own pin */
	return found;
}

/*
 * The ordered pass (results_begin_ordered()): a caller that asks for keys
 * in increasing order and for a large share of them reads NAME_latest's
 * index once, from left to right, instead of descending it for each key.
 * The scan returns the entries' keys (as an index-only scan would), so
 * only the rows of keys asked for are fetched.
 */
#define ORDERED_MIN_SHARE 16	/* keys asked for >= 1/16 of the rows */

/* Compare an index entry's key with a message's key (customer, agent). */
static int
compare_entry_key(const SSResults *results, const int64 entry[2],
				  const SSMessage *key)
{
	if (entry[0] != key->customer_id)
		return entry[0] < key->customer_id ? -1 : 1;
	if (results->tracker->results_key_columns == 2 && entry[1] != key->agent_id)
		return entry[1] < key->agent_id ? -1 : 1;
	return 0;
}

/* The next entry of the ordered pass, into results->entry_*; false at the end. */
static bool
next_ordered_entry(SSResults *results)
{
	IndexScanDesc scan = results->ordered_scan;
	const SSResultsTable *table = &results->tracker->latest;
	ItemPointer tid = index_getnext_tid(scan, ForwardScanDirection);
	bool		isnull;

	if (tid == NULL)
		return false;
	results->entry_tid = *tid;
	results->entry_key[0] =
		id_value(index_getattr(scan->xs_itup, 1, scan->xs_itupdesc, &isnull),
				 table->customer_type);
	results->entry_key[1] = results->tracker->results_key_columns == 2
		? id_value(index_getattr(scan->xs_itup, 2, scan->xs_itupdesc, &isnull),
				   table->agent_type)
		: 0;
	return true;
}

/* The key's latest row by the ordered pass: keys come in increasing order. */
static bool
fetch_latest_in_order(SSResults *results, const SSMessage *key)
{
	results->ordered_last = *key;
	results->has_ordered_last = true;
	for (;;)
	{
		int			cmp;
		bool		all_dead;
		bool		found;

		if (!results->has_entry)
		{
			if (!next_ordered_entry(results))
			{
				/* past the last entry: no key after this one has a row */
				index_endscan(results->ordered_scan);
				results->ordered_scan = NULL;
				results->ordered_done = true;
				return false;
			}
			results->has_entry = true;
		}
		cmp = compare_entry_key(results, results->entry_key, key);
		if (cmp > 0)
			return false;
		results->has_entry = false;
		if (cmp < 0)
			continue;
		/* the entry just returned: the scan may mark it dead */
		found = fetch_heap_chain(results, &results->entry_tid, &all_dead);
		if (!results->ordered_scan->xactStartedInRecovery)
			results->ordered_scan->kill_prior_tuple = all_dead;
		if (found)
			return true;
	}
}

/*
 * Read NAME_latest in one ordered pass from now on, if "keys" (how many
 * distinct keys the caller will ask for, in increasing order) are a large
 * enough share of its rows that this beats a probe per key.
 * results_end_ordered() goes back to probes; a key asked for out of
 * order is probed.
 */
void
results_begin_ordered(SSResults *results, int64 keys)
{
	Relation	rel = results->latest_rel;
	double		rows = rel->rd_rel->reltuples;

	/* a btree returns its entries' keys */
	if (results->known_empty || results->latest_index->rd_rel->relam != BTREE_AM_OID)
		return;
	if (rows < 0)				/* never vacuumed nor analyzed: guess */
		rows = (double) RelationGetNumberOfBlocks(rel) * 100;
	if ((double) keys * ORDERED_MIN_SHARE < rows)
		return;
	results->ordered_scan = index_beginscan(rel, results->latest_index,
											results->snapshot, 0, 0);
	results->ordered_scan->xs_want_itup = true;
	index_rescan(results->ordered_scan, NULL, 0, NULL, 0);
	results->has_entry = false;
	results->has_ordered_last = false;
	results->ordered_done = false;
}

void
results_end_ordered(SSResults *results)
{
	if (results->ordered_scan != NULL)
		index_endscan(results->ordered_scan);
	results->ordered_scan = NULL;
	results->ordered_done = false;
}

/* Is the ordered pass on, and "key" after every key it was asked for? */
static bool
in_order(SSResults *results, const SSMessage *key)
{
	if (results->ordered_scan == NULL && !results->ordered_done)
		return false;
	return !results->has_ordered_last ||
		sessions_compare_keys(results->tracker->mode, &results->ordered_last, key) < 0;
}

/* Read the key's latest row into latest_slot, if it has one. */
static bool
fetch_latest_row(SSResults *results, const SSMessage *key)
{
	const SSTracker *t = results->tracker;
	Relation	rel = results->latest_rel;
	bool		heap = rel->rd_tableam == GetHeapamTableAmRoutine();
	IndexScanDesc scan;
	int			found;

	/* the previous key's row is done with: drop it and its buffer pin */
	ExecClearTuple(results->latest_slot);
	if (heap && in_order(results, key))
		return results->ordered_done ? false : fetch_latest_in_order(results, key);
	if (heap)
	{
		Datum		values[2];

		values[0] = id_datum(key->customer_id, t->latest.customer_type);
		values[1] = id_datum(key->agent_id, t->latest.agent_type);
		found = btree_probe_visit(results->latest_index, results->snapshot,
								  values, t->results_key_columns,
								  t->results_key_columns, LATEST_PROBE_TIDS,
								  fetch_heap_chain, results);
		if (found >= 0)
			return found;
	}

	scan = begin_key_scan(results, rel, results->latest_index, &t->latest, key);
	if (heap)
		found = index_scan_visit(scan, fetch_heap_chain, results);
	else
		found = index_getnext_slot(scan, ForwardScanDirection,
								   results->latest_slot);
	index_endscan(scan);
	return found;
}

/* Make "key" the key being worked on, reading its latest row. */
static void
use_key(SSResults *results, const SSMessage *key)
{
	const SSTracker *t = results->tracker;

	if (results->has_key && sessions_same_key(t->mode, &results->key, key))
		return;
	flush_key(results);
	results->has_key = true;
	results->key = *key;
	results->newest_changed = false;
	results->latest_stored = false;
	results->has_newest = false;
	if (results->known_empty)
		return;
	if (fetch_latest_row(results, key))
	{
		read_session(&t->latest, results->latest_slot, &results->newest);
		results->latest_stored = true;
		results->has_newest = true;
	}
}

void
results_close(SSResults *results)
{
	flush_key(results);
	results_end_ordered(results);
	if (results->estate != NULL)
	{
		end_bulk_inserts(&results->latest_writer);
		end_bulk_inserts(&results->closed_writer);
		AfterTriggerEndQuery(results->estate);
		/* relations ExecGetTriggerResultRel() opened to fire AFTER triggers */
		ExecCloseResultRelations(results->estate);
		EvalPlanQualEnd(&results->epqstate);
		if (results->latest_writer.rri != NULL)
			ExecCloseIndices(results->latest_writer.rri);
		if (results->closed_writer.rri != NULL)
			ExecCloseIndices(results->closed_writer.rri);
		if (results->sla != NULL)
			sla_policies_queue_close(results->sla);
		ExecResetTupleTable(results->estate->es_tupleTable, false);
		FreeExecutorState(results->estate);
		results->estate = NULL;
	}
	ExecDropSingleTupleTableSlot(results->latest_slot);
	/* locks are kept until commit, as the executor does */
	index_close(results->latest_index, NoLock);
	table_close(results->latest_rel, NoLock);
	if (results->closed_rel != NULL)
	{
		ExecDropSingleTupleTableSlot(results->closed_slot);
		index_close(results->closed_index, NoLock);
		table_close(results->closed_rel, NoLock);
	}
}

/* Does the results set hold no session at all? */
bool
results_is_empty(SSResults *results)
{
	IndexScanDesc scan = index_beginscan(results->latest_rel,
										 results->latest_index,
										 results->snapshot, 0, 0);
	bool		empty;

	index_rescan(scan, NULL, 0, NULL, 0);
	empty = !index_getnext_slot(scan, ForwardScanDirection, results->latest_slot);
	index_endscan(scan);
	ExecClearTuple(results->latest_slot);
	return empty;
}

/* The key's newest session, if any. */
bool
results_last_session(SSResults *results, const SSMessage *key,
					 SSSession *session)
{
	use_key(results, key);
	if (results->has_newest)
		*session = results->newest;
	return results->has_newest;
}

/*
 * Walk the key's sessions newest first down to the first one answered
 * before "message"; that one is returned in kept (false if there is none).
 * The opening time of the oldest session passed on the way goes to
 * *oldest_opened_at (left alone if none was passed); with "delete" each
 * passed session is deleted and the kept one becomes the key's newest.
 */
static bool
walk_back_to_answer(SSResults *results, const SSMessage *key,
					const SSMessage *message, bool delete,
					SSSession *kept, int64 *oldest_opened_at)
{
	const SSTracker *t = results->tracker;
	IndexScanDesc scan;
	bool		found = false;

	use_key(results, key);
	/* an open session is the newest, and answered at no time */
	if (results->has_newest && results->newest.is_open)
		*oldest_opened_at = results->newest.opened_at;

	open_closed(results);
	scan = begin_key_scan(results, results->closed_rel, results->closed_index,
						  &t->closed, key);
	while (index_getnext_slot(scan, BackwardScanDirection, results->closed_slot))
	{
		SSSession	s;
		SSMessage	answer;

		read_session(&t->closed, results->closed_slot, &s);
		sessions_closing_message(&s, &answer);
		if (sessions_compare_messages(&answer, message) < 0)
		{
			*kept = s;
			found = true;
			break;
		}
		if (delete)
		{
			SSTableWriter *writer = closed_writer(results); /* sets up estate */

			ExecSimpleRelationDelete(writer->rri, results->estate, &results->epqstate,
									 results->closed_slot);
		}
		*oldest_opened_at = s.opened_at;
	}
	index_endscan(scan);

	if (delete)
	{
		results->has_newest = found;
		if (found)
			results->newest = *kept;
		results->newest_changed = true;
	}
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

/*
 * Store the key's next session, newer than every stored one: an opened
 * session, or an answered one (just answered, or replayed).  An answered
 * session goes to NAME_closed now; the key's latest row follows when the
 * key is done.
 */
void
results_store(SSResults *results, const SSSession *session)
{
	SSMessage	key;

	key.customer_id = session->customer_id;
	key.agent_id = session->agent_id;
	use_key(results, &key);
	if (!session->is_open)
	{
		SSTableWriter *writer = closed_writer(results);
		TupleTableSlot *slot = start_new_row(results, writer);

		fill_session(results->tracker, &results->tracker->closed, slot, session);
		insert_new_row(results, writer, slot);
		/* answered late, it may have missed a deadline */
		if (results->sla != NULL)
			sla_policies_queue_session(results->sla, results->estate, session);
	}
	results->newest = *session;
	results->has_newest = true;
	results->newest_changed = true;
}
