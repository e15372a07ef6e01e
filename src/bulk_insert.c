/*-------------------------------------------------------------------------
 *
 * bulk_insert.c
 *	  Insert rows into a table many at a time, as COPY does: the heap
 *	  rows of up to SS_BULK_ROWS new rows go in with one
 *	  table_multi_insert() (one WAL record per heap page rather than one
 *	  per row), then their index entries, row by row in the order they
 *	  came (consume.c writes in key order, so each index is filled from
 *	  left to right).
 *
 * It does what ExecSimpleRelationInsert() does for each row -- NOT NULL
 * and CHECK constraints, index entries with their uniqueness checks,
 * AFTER ROW triggers -- only later, at the flush.  A table whose rows a
 * BEFORE ROW trigger may change or skip, or with stored generated
 * columns, is written row by row instead: bulk_insert_begin() says so.
 *
 * A flushed row is visible to commands after this one only, like every
 * write of the command, so holding rows back changes nothing callers can
 * read (results.c reads with a snapshot taken before it writes).
 *
 *-------------------------------------------------------------------------
 */
#include "session_stream.h"

#include "access/tableam.h"
#include "access/xact.h"
#include "commands/trigger.h"
#include "executor/executor.h"
#include "utils/memutils.h"

/*
 * Can the rows of the table be held back and written in bulk?  If so set
 * up the buffer and return true.
 */
bool
bulk_insert_begin(SSBulkInsert *bulk, ResultRelInfo *rri, EState *estate)
{
	Relation	rel = rri->ri_RelationDesc;
	TupleConstr *constr = RelationGetDescr(rel)->constr;
	TriggerDesc *triggers = rri->ri_TrigDesc;

	memset(bulk, 0, sizeof(*bulk));
	if ((triggers != NULL && (triggers->trig_insert_before_row ||
							  triggers->trig_insert_instead_row)) ||
		(constr != NULL && constr->has_generated_stored) ||
		rel->rd_rel->relispartition)
		return false;
	/* a publication may require a replica identity for inserts */
	CheckCmdReplicaIdentity(rel, CMD_INSERT);
	bulk->rri = rri;
	bulk->estate = estate;
	bulk->cid = GetCurrentCommandId(true);
	bulk->context = AllocSetContextCreate(CurrentMemoryContext,
										  "session_stream bulk insert",
										  ALLOCSET_DEFAULT_SIZES);
	return true;
}

/* The slot to fill with the next row; bulk_insert_add() takes it. */
TupleTableSlot *
bulk_insert_slot(SSBulkInsert *bulk)
{
	if (bulk->slots[bulk->count] == NULL)
		bulk->slots[bulk->count] = table_slot_create(bulk->rri->ri_RelationDesc,
													 &bulk->estate->es_tupleTable);
	return bulk->slots[bulk->count];
}

/*
 * Take the row stored in the slot bulk_insert_slot() gave (its values may
 * point into memory the caller reuses: the slot gets its own copy).
 */
void
bulk_insert_add(SSBulkInsert *bulk)
{
	TupleTableSlot *slot = bulk->slots[bulk->count];

	if (RelationGetDescr(bulk->rri->ri_RelationDesc)->constr != NULL)
		ExecConstraints(bulk->rri, slot, bulk->estate);
	ExecMaterializeSlot(slot);
	if (++bulk->count == SS_BULK_ROWS)
		bulk_insert_flush(bulk);
}

/* Write the rows held back. */
void
bulk_insert_flush(SSBulkInsert *bulk)
{
	ResultRelInfo *rri = bulk->rri;
	EState	   *estate = bulk->estate;
	MemoryContext old;
	int			i;

	if (bulk->count == 0)
		return;
	old = MemoryContextSwitchTo(bulk->context);
	table_multi_insert(rri->ri_RelationDesc, bulk->slots, bulk->count,
					   bulk->cid, 0, NULL);
	for (i = 0; i < bulk->count; i++)
	{
		TupleTableSlot *slot = bulk->slots[i];
		List	   *recheck = NIL;

		if (rri->ri_NumIndices > 0)
			recheck = ss_ExecInsertIndexTuples(rri, slot, estate, false, false,
											   NULL, NIL);
		ExecARInsertTriggers(estate, rri, slot, recheck, NULL);
		ExecClearTuple(slot);
		ResetPerTupleExprContext(estate);
	}
	MemoryContextSwitchTo(old);
	MemoryContextReset(bulk->context);
	bulk->count = 0;
}

void
bulk_insert_end(SSBulkInsert *bulk)
{
	bulk_insert_flush(bulk);
	if (bulk->context != NULL)
		MemoryContextDelete(bulk->context);
	bulk->context = NULL;
	/* the slots go with the executor state's tuple table */
}
