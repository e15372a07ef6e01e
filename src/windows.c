/*-------------------------------------------------------------------------
 *
 * windows.c
 *	  Consumer positions of deferred mode, and the consumed_windows table
 *	  that records them.
 *
 * A position is the set of transactions whose messages have been consumed,
 * written like a snapshot of top-level transaction ids (64-bit, so they
 * never wrap): every xid below xmin, and every xid below xmax that is not
 * listed in xip.  A call's batch is the rows whose inserting transaction is
 * in the current snapshot's set and not in the previous position's (the
 * PgQ technique): a transaction still open when the previous call looked is
 * in its xip, so its rows are taken by the first call that sees it
 * committed, however old their sent_at.
 *
 * Positions live in session_stream.consumed_windows, one row per call that
 * consumed anything; the newest row of a (source, mode) is its position.
 * The row is written in the caller's transaction, together with the
 * results, so a call that fails or is killed leaves no trace at all.
 *
 *-------------------------------------------------------------------------
 */
#include "session_stream.h"

#include "access/transam.h"
#include "access/xact.h"
#include "catalog/namespace.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"

static int
compare_int64(const void *a, const void *b)
{
	int64		x = *(const int64 *) a;
	int64		y = *(const int64 *) b;

	return x < y ? -1 : (x > y ? 1 : 0);
}

bool
windows_contains(const SSPosition *position, int64 xid)
{
	if (xid < position->xmin)
		return true;
	if (xid >= position->xmax)
		return false;
	return bsearch(&xid, position->xip, position->nxip, sizeof(int64),
				   compare_int64) == NULL;
}

/* The transactions a snapshot sees as committed (or aborted). */
void
windows_position_of_snapshot(Snapshot snapshot, SSPosition *out)
{
	FullTransactionId next = ReadNextFullTransactionId();
	uint32		i;

	out->xmin = txid_widen(next, snapshot->xmin);
	out->xmax = txid_widen(next, snapshot->xmax);
	out->nxip = snapshot->xcnt;
	out->xip = palloc((snapshot->xcnt + 1) * sizeof(int64));
	for (i = 0; i < snapshot->xcnt; i++)
		out->xip[i] = txid_widen(next, snapshot->xip[i]);
	qsort(out->xip, out->nxip, sizeof(int64), compare_int64);
}

/*
 * The position after a call: what "previous" had consumed, plus what
 * "current" sees committed up to "cutoff" (all of it when cutoff is
 * PG_INT64_MAX).  A transaction is consumed afterwards iff
 *
 *	  previous contains it, or current contains it and it is <= cutoff.
 */
void
windows_advance(const SSPosition *previous, const SSPosition *current,
				int64 cutoff, SSPosition *out)
{
	int64		upper = Min(current->xmax, cutoff == PG_INT64_MAX ? cutoff : cutoff + 1);
	int			i;

	out->xmax = Max(previous->xmax, upper);
	out->xip = palloc((previous->nxip + current->nxip + 1) * sizeof(int64));
	out->nxip = 0;
	/* still unconsumed of those previous had not consumed below its xmax */
	for (i = 0; i < previous->nxip; i++)
	{
		int64		xid = previous->xip[i];

		if (!windows_contains(current, xid) || xid > cutoff)
			out->xip[out->nxip++] = xid;
	}
	/* unconsumed between previous's xmax and ours: current's running ones */
	for (i = 0; i < current->nxip; i++)
	{
		int64		xid = current->xip[i];

		if (xid >= previous->xmax && xid < out->xmax)
			out->xip[out->nxip++] = xid;
	}
	qsort(out->xip, out->nxip, sizeof(int64), compare_int64);
	out->xmin = out->nxip > 0 ? out->xip[0] : out->xmax;
}

static Datum
xip_array(const SSPosition *p)
{
	Datum	   *elems = palloc((p->nxip + 1) * sizeof(Datum));
	int			i;

	for (i = 0; i < p->nxip; i++)
		elems[i] = Int64GetDatum(p->xip[i]);
	return PointerGetDatum(construct_array(elems, p->nxip, INT8OID,
										   sizeof(int64), FLOAT8PASSBYVAL,
										   TYPALIGN_DOUBLE));
}

/* Plans kept across calls (ss_kept_plan()): a consumer runs these often. */
static SPIPlanPtr load_plan = NULL;
static SPIPlanPtr save_plans[2] = {NULL, NULL}; /* without, with "edits" */

/*
 * Load the newest consumed window of (source, mode), reading with the given
 * snapshot (taken under the consumer lock, so it sees the last call's
 * commit).  Returns false if none was consumed yet.
 */
bool
windows_load(Oid source, SSMode mode, Snapshot snapshot, SSWindowState *state)
{
	const char *query =
		"SELECT upto_xmin, upto_xmax, upto_xip, high_sent_at,"
		"       (SELECT max(p.purged_before) FROM session_stream.purges p"
		"         WHERE p.source OPERATOR(pg_catalog.=) $1)"
		"  FROM session_stream.consumed_windows"
		" WHERE source OPERATOR(pg_catalog.=) $1"
		"   AND mode OPERATOR(pg_catalog.=) $2"
		" ORDER BY window_id DESC LIMIT 1";
	Oid			argtypes[2] = {OIDOID, TEXTOID};
	Datum		args[2];
	bool		found = false;

	memset(state, 0, sizeof(*state));
	args[0] = ObjectIdGetDatum(source);
	args[1] = CStringGetTextDatum(trigger_args_mode_name(mode));

	SPI_connect();
	if (SPI_execute_snapshot(ss_kept_plan(&load_plan, query, 2, argtypes),
							 args, NULL, snapshot, InvalidSnapshot,
							 true, false, 1) != SPI_OK_SELECT)
		elog(ERROR, "could not read session_stream.consumed_windows");
	if (SPI_processed == 1)
	{
		HeapTuple	tuple = SPI_tuptable->vals[0];
		TupleDesc	desc = SPI_tuptable->tupdesc;
		bool		isnull;
		ArrayType  *xip;
		Datum	   *elems;
		int			n;
		int			i;

		state->position.xmin = DatumGetInt64(SPI_getbinval(tuple, desc, 1, &isnull));
		state->position.xmax = DatumGetInt64(SPI_getbinval(tuple, desc, 2, &isnull));
		xip = DatumGetArrayTypeP(SPI_getbinval(tuple, desc, 3, &isnull));
		deconstruct_array(xip, INT8OID, sizeof(int64), FLOAT8PASSBYVAL,
						  TYPALIGN_DOUBLE, &elems, NULL, &n);
		state->position.nxip = n;
		/* outside SPI's memory, which SPI_finish frees */
		state->position.xip = SPI_palloc((n + 1) * sizeof(int64));
		for (i = 0; i < n; i++)
			state->position.xip[i] = DatumGetInt64(elems[i]);
		qsort(state->position.xip, n, sizeof(int64), compare_int64);
		state->high_sent_at = DatumGetInt64(SPI_getbinval(tuple, desc, 4, &isnull));
		state->has_high = !isnull;
		state->purged_before = DatumGetInt64(SPI_getbinval(tuple, desc, 5, &isnull));
		state->has_horizon = !isnull;
		found = true;
	}
	SPI_finish();
	state->exists = found;
	return found;
}

/*
 * Record a window that consumed something, in the caller's transaction.
 * Its count of edits goes with it where consumed_windows has the column
 * (0.2; the library also serves a database still at 0.1).
 */
void
windows_save(Oid source, SSMode mode, Oid results, const SSPosition *upto,
			 const SSConsumeCounts *counts, bool has_high, int64 high_sent_at)
{
	Oid			windows_relid = get_relname_relid("consumed_windows",
												  get_namespace_oid(SS_SCHEMA, false));
	bool		with_edits = get_attnum(windows_relid, "edits") != InvalidAttrNumber;
	const char *query = psprintf(
								 "INSERT INTO session_stream.consumed_windows"
								 " (source, mode, results, upto_xmin, upto_xmax, upto_xip, high_sent_at,"
								 "  messages, sessions_opened, sessions_closed, keys_recomputed,"
								 "  late_messages, late_beyond_retention, first_sent_at, last_sent_at,"
								 "  started_at, elapsed%s)"
								 " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13,"
								 "         $14, $15, $16,"
								 "         pg_catalog.clock_timestamp() OPERATOR(pg_catalog.-) $16%s)",
								 with_edits ? ", edits" : "",
								 with_edits ? ", $17" : "");
	Oid			argtypes[17] = {OIDOID, TEXTOID, OIDOID, INT8OID, INT8OID,
		INT8ARRAYOID, TIMESTAMPTZOID, INT8OID, INT8OID, INT8OID, INT8OID,
	INT8OID, INT8OID, TIMESTAMPTZOID, TIMESTAMPTZOID, TIMESTAMPTZOID, INT8OID};
	Datum		args[17];
	char		nulls[17];

	memset(nulls, ' ', sizeof(nulls));
	args[0] = ObjectIdGetDatum(source);
	args[1] = CStringGetTextDatum(trigger_args_mode_name(mode));
	args[2] = ObjectIdGetDatum(results);
	args[3] = Int64GetDatum(upto->xmin);
	args[4] = Int64GetDatum(upto->xmax);
	args[5] = xip_array(upto);
	args[6] = Int64GetDatum(high_sent_at);
	nulls[6] = has_high ? ' ' : 'n';
	args[7] = Int64GetDatum(counts->messages);
	args[8] = Int64GetDatum(counts->sessions_opened);
	args[9] = Int64GetDatum(counts->sessions_closed);
	args[10] = Int64GetDatum(counts->keys_recomputed);
	args[11] = Int64GetDatum(counts->late_messages);
	args[12] = Int64GetDatum(counts->late_beyond_retention);
	args[13] = Int64GetDatum(counts->first_sent_at);
	args[14] = Int64GetDatum(counts->last_sent_at);
	if (counts->messages == 0)	/* a window of edits only */
		nulls[13] = nulls[14] = 'n';
	args[15] = TimestampTzGetDatum(counts->started_at);
	args[16] = Int64GetDatum(counts->edits);

	SPI_connect();
	/* our own position: no reason to raise the txid base */
	txid_base_saving_own_window(true);
	PG_TRY();
	{
		if (SPI_execute_plan(ss_kept_plan(&save_plans[with_edits], query,
										  with_edits ? 17 : 16, argtypes),
							 args, nulls, false, 0) != SPI_OK_INSERT)
			elog(ERROR, "could not record the consumed window");
	}
	PG_FINALLY();
	{
		txid_base_saving_own_window(false);
	}
	PG_END_TRY();
	SPI_finish();
}
