/*-------------------------------------------------------------------------
 *
 * pending.c
 *	  pending_messages(): what the next consume_window() call of a source
 *	  and mode would take, for monitoring (consumer_stats).
 *
 *-------------------------------------------------------------------------
 */
#include "session_stream.h"

#include "access/table.h"
#include "funcapi.h"
#include "utils/snapmgr.h"

PG_FUNCTION_INFO_V1(ss_pending_messages);

/* Counting what the next call would consume. */
typedef struct Pending
{
	const SSPosition *current;
	const SSPosition *previous;
	int64		count;
	int64		oldest_sent_at;
} Pending;

static void
count_pending(const SSMessage *message, int64 txid, void *arg)
{
	Pending    *p = (Pending *) arg;

	if (!windows_contains(p->current, txid) ||
		windows_contains(p->previous, txid))
		return;
	if (p->count == 0 || message->sent_at < p->oldest_sent_at)
		p->oldest_sent_at = message->sent_at;
	p->count++;
}

/*
 * pending_messages(mode, source): how many committed messages the next
 * consume_window() call would take, and the oldest sent_at among them.
 * Reads like a call but writes nothing and takes no lock.
 */
Datum
ss_pending_messages(PG_FUNCTION_ARGS)
{
	SSMode		mode = consume_parse_mode(fcinfo, 0, "pending_messages()");
	Relation	source;
	SSTracker	tracker;
	SSWindowState previous;
	SSPosition	current;
	Snapshot	snapshot;
	Pending		pending;
	TupleDesc	desc;
	Datum		values[2];
	bool		nulls[2] = {false, false};

	if (PG_ARGISNULL(1))
		PG_RETURN_NULL();
	/* monitoring keeps working if the realtime trigger was turned back on */
	source = consume_open_source(PG_GETARG_OID(1), mode, true, &tracker);
	snapshot = RegisterSnapshot(GetLatestSnapshot());
	windows_load(RelationGetRelid(source), mode, snapshot, &previous);
	windows_position_of_snapshot(snapshot, &current);

	memset(&pending, 0, sizeof(pending));
	pending.current = &current;
	pending.previous = &previous.position;
	source_scan_window(&tracker, source, snapshot,
					   previous.exists ? previous.position.xmin : 0,
					   count_pending, NULL, &pending);
	UnregisterSnapshot(snapshot);
	table_close(source, AccessShareLock);

	if (get_call_result_type(fcinfo, NULL, &desc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "pending_messages() must return a record");
	values[0] = Int64GetDatum(pending.count);
	values[1] = Int64GetDatum(pending.oldest_sent_at);
	nulls[1] = pending.count == 0;
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(BlessTupleDesc(desc),
													  values, nulls)));
}
