/*-------------------------------------------------------------------------
 *
 * source.c
 *	  Read messages from a source table: one row, or one key's rows in
 *	  time order through the (customer, time) index; and for deferred mode
 *	  the rows of a window (txid) or since a time, through a BRIN or btree
 *	  index led by that column, a heap table's pages read whole.
 *
 * Lookups go through the index the tracker found (see trigger_args.c) with
 * the caller's snapshot; only a range read without an index on its column
 * scans the whole table.
 *
 *-------------------------------------------------------------------------
 */
#include "session_stream.h"

#include "access/genam.h"
#include "access/heapam.h"
#include "access/xact.h"
#include "access/relscan.h"
#include "access/stratnum.h"
#include "access/tableam.h"
#include "catalog/pg_am.h"
#include "catalog/pg_index.h"
#include "miscadmin.h"
#include "nodes/tidbitmap.h"
#include "storage/bufmgr.h"
#include "catalog/pg_type.h"
#include "executor/tuptable.h"
#include "utils/fmgroids.h"
#include "utils/lsyscache.h"
#include "utils/builtins.h"

static void
null_column_error(Relation source, AttrNumber attnum)
{
	ereport(ERROR,
			(errcode(ERRCODE_NOT_NULL_VIOLATION),
			 errmsg("null value in column \"%s\" of table \"%s\" cannot be tracked",
					NameStr(TupleDescAttr(RelationGetDescr(source), attnum - 1)->attname),
					ss_table_name(source)),
			 errdetail("Every message needs an agent, a customer, a time and a direction."),
			 errhint("Declare the column NOT NULL, or fill it before the row is inserted."),
			 errtablecol(source, attnum)));
}

static Datum
required_attr(Relation source, TupleTableSlot *slot, HeapTuple tuple,
			  AttrNumber attnum)
{
	bool		isnull;
	Datum		d;

	if (slot != NULL)
		d = slot_getattr(slot, attnum, &isnull);
	else
		d = heap_getattr(tuple, attnum, RelationGetDescr(source), &isnull);
	if (isnull)
		null_column_error(source, attnum);
	return d;
}

static void
read_message(const SSTracker *t, Relation source, TupleTableSlot *slot,
			 HeapTuple tuple, SSMessage *out)
{
	out->customer_id = id_value(required_attr(source, slot, tuple, t->customer_attnum),
								t->id_type);
	out->agent_id = id_value(required_attr(source, slot, tuple, t->agent_attnum),
							 t->agent_type);
	/* Timestamp and TimestampTz are both int64 microseconds. */
	out->sent_at = DatumGetInt64(required_attr(source, slot, tuple, t->time_attnum));
	out->from_agent = DatumGetBool(required_attr(source, slot, tuple, t->from_agent_attnum));
}

/* Read one row into a message; a NULL in any mapped column is an error. */
void
source_read_message(const SSTracker *tracker, Relation source,
					HeapTuple tuple, SSMessage *out)
{
	read_message(tracker, source, NULL, tuple, out);
}

/* The same, but false instead of the error: the row is no message. */
bool
source_try_read_message(const SSTracker *tracker, Relation source,
						HeapTuple tuple, SSMessage *out)
{
	TupleDesc	desc = RelationGetDescr(source);
	AttrNumber	mapped[4] = {tracker->customer_attnum, tracker->agent_attnum,
	tracker->time_attnum, tracker->from_agent_attnum};
	int			i;

	for (i = 0; i < (int) lengthof(mapped); i++)
		if (heap_attisnull(tuple, mapped[i], desc))
			return false;
	read_message(tracker, source, NULL, tuple, out);
	return true;
}

/*
 * Start an index scan over one customer's messages with sent_at >= since
 * (or all of them when since is NULL).
 */
static IndexScanDesc
begin_customer_scan(const SSTracker *t, Relation source, Relation index,
					Snapshot snapshot, int64 customer_id, const int64 *since)
{
	ScanKeyData keys[2];
	int			nkeys = 1;
	IndexScanDesc scan;

	ScanKeyInit(&keys[0], 1, BTEqualStrategyNumber,
				t->id_type == INT8OID ? F_INT8EQ : F_INT4EQ,
				id_datum(customer_id, t->id_type));
	if (since != NULL)
	{
		ScanKeyInit(&keys[1], 2, BTGreaterEqualStrategyNumber,
					t->time_type == TIMESTAMPTZOID ? F_TIMESTAMPTZ_GE : F_TIMESTAMP_GE,
					Int64GetDatum(*since));
		nkeys = 2;
	}
	scan = index_beginscan(source, index, snapshot, nkeys, 0);
	index_rescan(scan, keys, nkeys, NULL, 0);
	return scan;
}

/* The most index entries of one customer at or after a message we expect. */
#define LATER_PROBE_TIDS 16

/* What source_has_later_message() checks the rows it finds against. */
typedef struct LaterCheck
{
	const SSTracker *tracker;
	Relation	source;
	Snapshot	snapshot;
	const SSMessage *message;
	ItemPointer self;
	TupleTableSlot *slot;		/* made if another row turns up */
	IndexFetchTableData *fetch;
} LaterCheck;

/*
 * Is the row an index entry points at, if visible, a message of the key
 * after check->message?  *all_dead tells if no version of it is alive.
 * Usually the only entry found is the message's own row: it is recognised
 * by its TID, without a heap fetch.  An SSEntryVisitor; arg is the
 * LaterCheck.
 */
static bool
row_is_later_message(void *arg, ItemPointer tid, bool *all_dead)
{
	LaterCheck *check = (LaterCheck *) arg;
	ItemPointerData version = *tid;
	bool		call_again = false;
	SSMessage	other;

	*all_dead = false;
	if (ItemPointerEquals(tid, check->self))
		return false;
	if (check->slot == NULL)
	{
		check->slot = table_slot_create(check->source, NULL);
		check->fetch = table_index_fetch_begin(check->source);
	}
	/* MVCC snapshot: at most one version of a row is visible */
	if (!table_index_fetch_tuple(check->fetch, &version, check->snapshot,
								 check->slot, &call_again, all_dead))
		return false;
	read_message(check->tracker, check->source, check->slot, NULL, &other);
	return sessions_same_key(check->tracker->mode, check->message, &other) &&
		sessions_compare_messages(&other, check->message) > 0;
}

/*
 * Is there a message of the same key, other than the row "self", that comes
 * after "message" in event-time order?  If so the message is late.
 */
bool
source_has_later_message(const SSTracker *tracker, Relation source,
						 Snapshot snapshot, const SSMessage *message,
						 ItemPointer self)
{
	Relation	index = index_open(tracker->source_index, AccessShareLock);
	LaterCheck	check = {tracker, source, snapshot, message, self, NULL, NULL};
	Datum		values[2];
	int			later;

	values[0] = id_datum(message->customer_id, tracker->id_type);
	values[1] = Int64GetDatum(message->sent_at);
	later = btree_probe_visit(index, snapshot, values, 2, 1, LATER_PROBE_TIDS,
							  row_is_later_message, &check);
	if (later < 0)
	{
		IndexScanDesc scan = begin_customer_scan(tracker, source, index,
												 snapshot, message->customer_id,
												 &message->sent_at);

		later = index_scan_visit(scan, row_is_later_message, &check);
		index_endscan(scan);
	}
	if (check.slot != NULL)
	{
		table_index_fetch_end(check.fetch);
		ExecDropSingleTupleTableSlot(check.slot);
	}
	index_close(index, NoLock);	/* lock kept until commit, as the executor does */
	return later;
}

/*
 * Collect the messages of key's key that come strictly after "after" in
 * event-time order (all of them if after is NULL), sorted.  The visitor, if
 * given, sees each message with its heap tuple.
 */
SSMessage *
source_key_messages_after(const SSTracker *tracker, Relation source,
						  Snapshot snapshot, const SSMessage *key,
						  const SSMessage *after, int *count,
						  SSMessageVisitor visitor, void *visitor_arg)
{
	Relation	index = index_open(tracker->source_index, AccessShareLock);
	TupleTableSlot *slot = table_slot_create(source, NULL);
	IndexScanDesc scan;
	int			capacity = 16;
	int			n = 0;
	SSMessage  *messages = palloc(capacity * sizeof(SSMessage));

	scan = begin_customer_scan(tracker, source, index, snapshot,
							   key->customer_id,
							   after != NULL ? &after->sent_at : NULL);
	while (index_getnext_slot(scan, ForwardScanDirection, slot))
	{
		SSMessage	m;

		read_message(tracker, source, slot, NULL, &m);
		if (!sessions_same_key(tracker->mode, key, &m))
			continue;
		if (after != NULL && sessions_compare_messages(&m, after) <= 0)
			continue;
		if (n == capacity)
		{
			capacity *= 2;
			messages = repalloc_huge(messages, capacity * sizeof(SSMessage));
		}
		if (visitor != NULL)
		{
			bool		should_free;
			HeapTuple	tuple = ExecFetchSlotHeapTuple(slot, false, &should_free);

			visitor(&m, tuple, visitor_arg);
			if (should_free)
				heap_freetuple(tuple);
		}
		messages[n++] = m;
	}
	index_endscan(scan);
	ExecDropSingleTupleTableSlot(slot);
	index_close(index, NoLock);

	sessions_sort(messages, n);
	*count = n;
	return messages;
}

/* The bigint transaction id a row was inserted by (deferred mode). */
static int64
source_row_txid(const SSTracker *tracker, Relation source, TupleTableSlot *slot)
{
	return DatumGetInt64(required_attr(source, slot, NULL, tracker->txid_attnum));
}

/*
 * An index usable for "column >= x": BRIN or btree, led by the column,
 * able to return a bitmap.
 */
static bool
leads_with_column(Relation rel, Relation index, const void *arg)
{
	AttrNumber	attnum = *(const AttrNumber *) arg;

	return (index->rd_rel->relam == BRIN_AM_OID ||
			index->rd_rel->relam == BTREE_AM_OID) &&
		index->rd_index->indkey.values[0] == attnum &&
		heap_attisnull(index->rd_indextuple, Anum_pg_index_indpred, NULL);
}

static Oid
index_led_by(Relation source, AttrNumber attnum)
{
	return ss_find_index(source, leads_with_column, &attnum);
}

/* What a range scan looks at: the txid column or the time column. */
typedef struct RangeScan
{
	AttrNumber	attnum;
	Oid			type;
	Oid			ge_proc;
	int64		min_value;
	SSWindowRowVisitor visitor;
	SSWindowSizeHint hint;		/* or NULL */
	void	   *arg;
} RangeScan;

static void
visit_range_row(const SSTracker *t, Relation source, TupleTableSlot *slot,
				const RangeScan *range)
{
	SSMessage	m;

	/* lossy bitmap pages and seq scans hand over rows out of range too */
	if (DatumGetInt64(required_attr(source, slot, NULL, range->attnum)) < range->min_value)
		return;
	read_message(t, source, slot, NULL, &m);
	range->visitor(&m, source_row_txid(t, source, slot), range->arg);
}

/*
 * How many of a bitmap's pages the table has, and about how many rows
 * they hold: the exact pages' count, and for each lossy page the table's
 * average (pg_class), if known.
 */
static BlockNumber
bitmap_extent(Relation source, TIDBitmap *bitmap, BlockNumber nblocks,
			  double *rows)
{
	double		per_page = source->rd_rel->relpages > 0 && source->rd_rel->reltuples > 0
		? source->rd_rel->reltuples / source->rd_rel->relpages : 0;
	TBMIterator *iterator = tbm_begin_iterate(bitmap);
	TBMIterateResult *page;
	BlockNumber pages = 0;

	*rows = 0;
	while ((page = tbm_iterate(iterator)) != NULL)
		if (page->blockno < nblocks)
		{
			pages++;
			*rows += page->ntuples >= 0 ? page->ntuples : per_page;
		}
	tbm_end_iterate(iterator);
	return pages;
}

/*
 * Read the pages of a bitmap of a heap table whole, as a sequential scan
 * does: the tuples of a page visible to the snapshot are found under its
 * lock (on an all-visible page, without a check per tuple), then handed
 * over with the page pinned only.  The rows' column is rechecked.
 *
 * Pages not in shared buffers are read through a small ring of buffers
 * only if the window is more than a quarter of shared buffers, as a
 * sequential scan does (heapam.c's initscan()): a backlog then does not
 * push everything else out, while a usual window, whose rows were
 * written recently, stays cached for the next reader as anyone's would.
 */
static void
scan_heap_pages(const SSTracker *tracker, Relation source, Snapshot snapshot,
				TIDBitmap *bitmap, const RangeScan *range)
{
	TupleTableSlot *slot = MakeSingleTupleTableSlot(RelationGetDescr(source),
													&TTSOpsHeapTuple);
	BlockNumber nblocks = RelationGetNumberOfBlocks(source);
	double		rows;
	BlockNumber pages = bitmap_extent(source, bitmap, nblocks, &rows);
	BufferAccessStrategy strategy = pages > (BlockNumber) NBuffers / 4
		? GetAccessStrategy(BAS_BULKREAD) : NULL;
	TBMIterator *iterator = tbm_begin_iterate(bitmap);
	TBMIterateResult *page;
	OffsetNumber visible[MaxHeapTuplesPerPage];

	if (range->hint != NULL)
		range->hint(rows, range->arg);
	while ((page = tbm_iterate(iterator)) != NULL)
	{
		Buffer		buffer;
		Page		dp;
		OffsetNumber off;
		OffsetNumber maxoff;
		bool		all_visible;
		int			nvisible = 0;
		int			i;
		HeapTupleData tuple;

		CHECK_FOR_INTERRUPTS();
		if (page->blockno >= nblocks)
			continue;
		buffer = ReadBufferExtended(source, MAIN_FORKNUM, page->blockno,
									RBM_NORMAL, strategy);
		LockBuffer(buffer, BUFFER_LOCK_SHARE);
		dp = BufferGetPage(buffer);
		all_visible = PageIsAllVisible(dp) && !snapshot->takenDuringRecovery;
		maxoff = PageGetMaxOffsetNumber(dp);
		tuple.t_tableOid = RelationGetRelid(source);
		for (off = FirstOffsetNumber; off <= maxoff; off = OffsetNumberNext(off))
		{
			ItemId		lp = PageGetItemId(dp, off);

			if (!ItemIdIsNormal(lp))
				continue;
			tuple.t_data = (HeapTupleHeader) PageGetItem(dp, lp);
			tuple.t_len = ItemIdGetLength(lp);
			ItemPointerSet(&tuple.t_self, page->blockno, off);
			if (all_visible || HeapTupleSatisfiesVisibility(&tuple, snapshot, buffer))
				visible[nvisible++] = off;
		}
		LockBuffer(buffer, BUFFER_LOCK_UNLOCK);

		for (i = 0; i < nvisible; i++)
		{
			ItemId		lp = PageGetItemId(dp, visible[i]);

			tuple.t_data = (HeapTupleHeader) PageGetItem(dp, lp);
			tuple.t_len = ItemIdGetLength(lp);
			ItemPointerSet(&tuple.t_self, page->blockno, visible[i]);
			ExecStoreHeapTuple(&tuple, slot, false);
			visit_range_row(tracker, source, slot, range);
		}
		ExecClearTuple(slot);
		ReleaseBuffer(buffer);
	}
	tbm_end_iterate(iterator);
	if (strategy != NULL)
		FreeAccessStrategy(strategy);
	ExecDropSingleTupleTableSlot(slot);
}

/*
 * Hand every row visible to the snapshot whose column is >= min_value to
 * the visitor.  With a BRIN or btree index led by the column only the
 * pages that may hold such rows are read (a bitmap heap scan, rows
 * rechecked); without one, the whole table is.
 */
static void
scan_range(const SSTracker *tracker, Relation source, Snapshot snapshot,
		   const RangeScan *range)
{
	Oid			indexoid = index_led_by(source, range->attnum);
	TupleTableSlot *slot = table_slot_create(source, NULL);
	TableScanDesc scan;

	if (!OidIsValid(indexoid))
	{
		scan = table_beginscan(source, snapshot, 0, NULL);
		while (table_scan_getnextslot(scan, ForwardScanDirection, slot))
		{
			CHECK_FOR_INTERRUPTS();
			visit_range_row(tracker, source, slot, range);
		}
	}
	else
	{
		Relation	index = index_open(indexoid, AccessShareLock);
		TIDBitmap  *bitmap = tbm_create(work_mem * 1024L, NULL);
		IndexScanDesc iscan;
		ScanKeyData key;
		TBMIterator *iterator;
		TBMIterateResult *page;

		/* BRIN looks the operator up by its right-hand type: name it. */
		ScanKeyEntryInitialize(&key, 0, 1, BTGreaterEqualStrategyNumber,
							   range->type, InvalidOid, range->ge_proc,
							   Int64GetDatum(range->min_value));
		iscan = index_beginscan_bitmap(index, snapshot, 1);
		index_rescan(iscan, &key, 1, NULL, 0);
		(void) index_getbitmap(iscan, bitmap);
		index_endscan(iscan);
		index_close(index, AccessShareLock);

		/*
		 * A heap table's pages are read whole (a BRIN bitmap's are all
		 * lossy anyway); serializable transactions need the table AM's
		 * scan, which records what they read.
		 */
		if (source->rd_tableam == GetHeapamTableAmRoutine() &&
			!IsolationIsSerializable())
		{
			scan_heap_pages(tracker, source, snapshot, bitmap, range);
			tbm_free(bitmap);
			ExecDropSingleTupleTableSlot(slot);
			return;
		}
		scan = ss_table_beginscan_bm(source, snapshot, 0, NULL);
		iterator = tbm_begin_iterate(bitmap);
		while ((page = tbm_iterate(iterator)) != NULL)
		{
			CHECK_FOR_INTERRUPTS();
			if (!table_scan_bitmap_next_block(scan, page))
				continue;
			while (table_scan_bitmap_next_tuple(scan, page, slot))
				visit_range_row(tracker, source, slot, range);
		}
		tbm_end_iterate(iterator);
		tbm_free(bitmap);
	}
	table_endscan(scan);
	ExecDropSingleTupleTableSlot(slot);
}

/* Every visible row inserted by a transaction id >= min_txid. */
void
source_scan_window(const SSTracker *tracker, Relation source,
				   Snapshot snapshot, int64 min_txid,
				   SSWindowRowVisitor visitor, SSWindowSizeHint hint, void *arg)
{
	RangeScan	range = {tracker->txid_attnum, INT8OID, F_INT8GE, min_txid,
	visitor, hint, arg};

	scan_range(tracker, source, snapshot, &range);
}

/* Every visible row with sent_at >= since (deferred mode: has txid). */
void
source_scan_since(const SSTracker *tracker, Relation source,
				  Snapshot snapshot, int64 since,
				  SSWindowRowVisitor visitor, void *arg)
{
	RangeScan	range = {tracker->time_attnum, tracker->time_type,
		tracker->time_type == TIMESTAMPTZOID ? F_TIMESTAMPTZ_GE : F_TIMESTAMP_GE,
	since, visitor, NULL, arg};

	scan_range(tracker, source, snapshot, &range);
}
