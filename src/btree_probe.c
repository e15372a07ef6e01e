/*-------------------------------------------------------------------------
 *
 * btree_probe.c
 *	  Visit the rows that the few index entries of one key point at,
 *	  found with a short btree probe instead of an index scan.
 *
 * The trigger looks up one key in NAME_latest's index and one customer's
 * newest entries in the source's (customer, time) index for every message.
 * An index scan costs more to set up and tear down than such a lookup
 * costs to do: btbeginscan allocates its page-sized position buffers,
 * btrescan preprocesses the keys, and _bt_readpage copies out the page's
 * matching items and checks each against every key.  Here we descend with
 * nbtree's own _bt_search(), binary-search the leaf with _bt_compare(),
 * and copy out the heap TIDs of the matching entries; the caller then
 * fetches the rows with its own snapshot.
 *
 * Only the common case is handled: when the matching entries might go on
 * past the leaf page, or there are more of them than the caller allows,
 * btree_probe_visit() says so and the caller falls back to an index scan,
 * whose entries index_scan_visit() goes through the same way.
 * Entries already marked dead are skipped; nothing is marked dead here
 * (index scans, bottom-up deletion and VACUUM still do that).
 *
 * The TIDs are used after the leaf is released, as nbtree's own scans do
 * with MVCC snapshots: a TID that VACUUM frees and a new row takes is
 * invisible to the caller's snapshot, taken before the probe.
 *
 * This calls nbtree's internal functions (access/nbtree.h), which change
 * between major versions: _bt_search() and the fields of BTScanInsertData
 * go through compat.h's shims for PostgreSQL 15, 16 and 17; check them
 * against each new major version.
 *
 *-------------------------------------------------------------------------
 */
#include "session_stream.h"

#include "access/nbtree.h"
#include "access/relscan.h"
#include "storage/predicate.h"

/* The most entries a caller of btree_probe_visit() may allow. */
#define BTREE_PROBE_MAX_TIDS 16

/*
 * Collect the heap TIDs of the entries of a btree that are equal to
 * values[0 .. nmatch) and not below values[0 .. nposition), in index
 * order, into tids (room for max_tids).  nmatch <= nposition <= the
 * index's key columns; the values are of the index columns' types.
 * Returns the number found, or -1 if the caller must use an index scan.
 */
static int
btree_probe(Relation index, Snapshot snapshot, const Datum *values,
			int nposition, int nmatch, ItemPointerData *tids, int max_tids)
{
	BTScanInsertData key;
	BTStack		stack;
	Buffer		buffer;
	Page		page;
	BTPageOpaque opaque;
	OffsetNumber low,
				high,
				maxoff,
				offnum;
	int			found = 0;
	int			i;

	Assert(index->rd_rel->relam == BTREE_AM_OID);
	Assert(nmatch >= 1 && nmatch <= nposition &&
		   nposition <= IndexRelationGetNumberOfKeyAttributes(index));

	_bt_metaversion(index, &key.heapkeyspace, &key.allequalimage);
	key.anynullkeys = false;
	key.nextkey = false;
	ss_bt_set_forward_search(&key);
	key.scantid = NULL;
	key.keysz = nposition;
	for (i = 0; i < nposition; i++)
		ScanKeyEntryInitializeWithInfo(&key.scankeys[i],
									   index->rd_indoption[i] << SK_BT_INDOPTION_SHIFT,
									   i + 1, InvalidStrategy, InvalidOid,
									   index->rd_indcollation[i],
									   index_getprocinfo(index, i + 1, BTORDER_PROC),
									   values[i]);

	stack = ss_bt_search(index, &key, &buffer, BT_READ, snapshot);
	_bt_freestack(stack);
	/* serializable transactions note what they read, as an index scan does */
	if (!BufferIsValid(buffer))
	{
		PredicateLockRelation(index, snapshot); /* the index is empty */
		return 0;
	}
	PredicateLockPage(index, BufferGetBlockNumber(buffer), snapshot);

	page = BufferGetPage(buffer);
	opaque = BTPageGetOpaque(page);
	maxoff = PageGetMaxOffsetNumber(page);

	/* the first entry >= the position key */
	low = P_FIRSTDATAKEY(opaque);
	high = OffsetNumberNext(maxoff);
	while (low < high)
	{
		OffsetNumber mid = low + (high - low) / 2;

		if (_bt_compare(index, &key, page, mid) > 0)
			low = OffsetNumberNext(mid);
		else
			high = mid;
	}

	/* from there, the entries equal to the match key */
	key.keysz = nmatch;
	for (offnum = low; offnum <= maxoff; offnum = OffsetNumberNext(offnum))
	{
		ItemId		item = PageGetItemId(page, offnum);
		IndexTuple	tuple;
		int			ntuple_tids;	/* a posting list holds several */

		if (_bt_compare(index, &key, page, offnum) != 0)
			break;
		if (ItemIdIsDead(item))
			continue;
		tuple = (IndexTuple) PageGetItem(page, item);
		ntuple_tids = BTreeTupleIsPosting(tuple) ? BTreeTupleGetNPosting(tuple) : 1;
		if (found + ntuple_tids > max_tids)
		{
			found = -1;
			break;
		}
		if (!BTreeTupleIsPosting(tuple))
			tids[found++] = tuple->t_tid;
		else
			for (i = 0; i < ntuple_tids; i++)
				tids[found++] = *BTreeTupleGetPostingN(tuple, i);
	}

	/*
	 * Past the last entry, equal ones may follow on the right sibling if
	 * the high key does not bound them.
	 */
	if (found >= 0 && offnum > maxoff && !P_RIGHTMOST(opaque) &&
		_bt_compare(index, &key, page, P_HIKEY) >= 0)
		found = -1;

	_bt_relbuf(index, buffer);
	return found;
}

/*
 * Visit the rows of a btree's entries equal to values[0 .. nmatch) and not
 * below values[0 .. nposition) (see btree_probe()), in index order, until
 * visit() finds what it looks for.  Returns 1 if it did, 0 if not, and -1,
 * having visited nothing, if the caller must use an index scan: the index
 * is not a btree, or the entries may be more than max_tids.
 */
int
btree_probe_visit(Relation index, Snapshot snapshot, const Datum *values,
				  int nposition, int nmatch, int max_tids,
				  SSEntryVisitor visit, void *arg)
{
	ItemPointerData tids[BTREE_PROBE_MAX_TIDS];
	int			ntids;
	int			i;
	bool		all_dead;

	Assert(max_tids <= BTREE_PROBE_MAX_TIDS);
	if (index->rd_rel->relam != BTREE_AM_OID)
		return -1;
	ntids = btree_probe(index, snapshot, values, nposition, nmatch, tids,
						max_tids);
	if (ntids < 0)
		return -1;
	for (i = 0; i < ntids; i++)
		if (visit(arg, &tids[i], &all_dead))
			return 1;
	return 0;
}

/*
 * The same over an index scan's entries: visit their rows until visit()
 * finds what it looks for.  Entries whose row versions are all dead are
 * marked so in the index as they go by, as index_fetch_heap() does.
 */
bool
index_scan_visit(IndexScanDesc scan, SSEntryVisitor visit, void *arg)
{
	ItemPointer tid;
	bool		all_dead;

	while ((tid = index_getnext_tid(scan, ForwardScanDirection)) != NULL)
	{
		if (visit(arg, tid, &all_dead))
			return true;
		if (!scan->xactStartedInRecovery)
			scan->kill_prior_tuple = all_dead;
	}
	return false;
}
