/*-------------------------------------------------------------------------
 *
 * btree_probe.c
 *	  Find the few index entries of one key in a btree without an index
 *	  scan.
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
 * past the leaf page, or there are more of them than the caller has room
 * for, btree_probe() says so and the caller falls back to an index scan.
 * Entries already marked dead are skipped; nothing is marked dead here
 * (index scans, bottom-up deletion and VACUUM still do that).
 *
 * The TIDs are used after the leaf is released, as nbtree's own scans do
 * with MVCC snapshots: a TID that VACUUM frees and a new row takes is
 * invisible to the caller's snapshot, taken before the probe.
 *
 * This calls nbtree's internal functions (access/nbtree.h) as PostgreSQL
 * 15 declares them; they change between major versions.
 *
 *-------------------------------------------------------------------------
 */
#include "session_stream.h"

#include "access/nbtree.h"
#include "storage/predicate.h"

/*
 * Collect the heap TIDs of the entries of a btree that are equal to
 * values[0 .. nmatch) and not below values[0 .. nposition), in index
 * order, into tids (room for max_tids).  nmatch <= nposition <= the
 * index's key columns; the values are of the index columns' types.
 * Returns the number found, or -1 if the caller must use an index scan.
 */
int
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
	key.pivotsearch = false;
	key.scantid = NULL;
	key.keysz = nposition;
	for (i = 0; i < nposition; i++)
		ScanKeyEntryInitializeWithInfo(&key.scankeys[i],
									   index->rd_indoption[i] << SK_BT_INDOPTION_SHIFT,
									   i + 1, InvalidStrategy, InvalidOid,
									   index->rd_indcollation[i],
									   index_getprocinfo(index, i + 1, BTORDER_PROC),
									   values[i]);

	stack = _bt_search(index, &key, &buffer, BT_READ, snapshot);
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
