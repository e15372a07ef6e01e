/*-------------------------------------------------------------------------
 *
 * retention.c
 *	  purge_messages(): drop consumed messages older than a horizon from a
 *	  deferred-mode source, and remember the horizon.
 *
 * A message may go once every consumer of its source (each mode with a
 * consumed window) has consumed it, i.e. its txid is below the xmin of each
 * consumer's position, and its time is older than the horizon.  The
 * horizon is recorded in session_stream.purges: a late message that would
 * need purged rows to be placed is then left out and counted by
 * consume_window() (late_beyond_retention), never applied wrongly.
 *
 * Retention is not erasure: the sessions of purged messages stay.  While
 * purge_messages() deletes, the source's track_sessions() DELETE triggers
 * ask retention_is_purging() and leave the results alone.
 *
 *-------------------------------------------------------------------------
 */
#include "session_stream.h"

#include "access/table.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "utils/builtins.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"

PG_FUNCTION_INFO_V1(ss_purge_messages);

/* The source purge_messages() is deleting from, while it does. */
static Oid	purging = InvalidOid;

/* Are rows of this source leaving by retention (not by an edit)? */
bool
retention_is_purging(Oid relid)
{
	return OidIsValid(purging) && purging == relid;
}

Datum
ss_purge_messages(PG_FUNCTION_ARGS)
{
	Oid			relid = PG_GETARG_OID(0);
	Interval   *keep = PG_GETARG_INTERVAL_P(1);
	TimestampTz horizon;
	Relation	source;
	SSTracker	tracker;
	SSMode		mode;
	int64		safe_txid = -1;
	bool		has_consumer = false;
	int64		purged = 0;
	Oid			argtypes[3] = {TIMESTAMPTZOID, INT8OID, OIDOID};
	Datum		args[3];
	char	   *query;

	horizon = DatumGetTimestampTz(DirectFunctionCall2(timestamptz_mi_interval,
													  TimestampTzGetDatum(GetCurrentTransactionStartTimestamp()),
													  IntervalPGetDatum(keep)));
	source = table_open(relid, RowExclusiveLock);

	/* Below every consumer's position: consumed by all of them. */
	for (mode = SS_MODE_CUSTOMER; mode <= SS_MODE_PAIR; mode++)
	{
		SSWindowState state;

		if (!windows_load(relid, mode, GetActiveSnapshot(), &state))
			continue;
		if (!has_consumer)
			consume_stream_tracker(source, mode, false, &tracker);
		safe_txid = has_consumer ? Min(safe_txid, state.position.xmin)
			: state.position.xmin;
		has_consumer = true;
	}
	if (!has_consumer)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("table \"%s\" has no consumer", ss_table_name(source)),
				 errdetail("purge_messages() drops messages that consume_window() has consumed; nothing was consumed from this table yet."),
				 errhint("Call session_stream.consume_window() for the table first.")));

	query = psprintf("DELETE FROM %s WHERE %s OPERATOR(pg_catalog.<) $1"
					 " AND %s OPERATOR(pg_catalog.<) $2",
					 ss_table_name(source),
					 quote_identifier(NameStr(TupleDescAttr(RelationGetDescr(source),
															tracker.time_attnum - 1)->attname)),
					 quote_identifier(NameStr(tracker.txid_column)));
	/* A timestamp source compares its raw times, as the trigger stores them. */
	args[0] = TimestampTzGetDatum(horizon);
	args[1] = Int64GetDatum(safe_txid);
	if (tracker.time_type == TIMESTAMPOID)
		argtypes[0] = TIMESTAMPOID;

	SPI_connect();
	purging = relid;
	PG_TRY();
	{
		if (SPI_execute_with_args(query, 2, argtypes, args, NULL, false, 0) != SPI_OK_DELETE)
			elog(ERROR, "could not purge \"%s\"", ss_table_name(source));
	}
	PG_FINALLY();
	{
		purging = InvalidOid;
	}
	PG_END_TRY();
	purged = (int64) SPI_processed;
	argtypes[0] = TIMESTAMPTZOID;
	args[1] = Int64GetDatum(purged);
	args[2] = ObjectIdGetDatum(relid);
	if (SPI_execute_with_args("INSERT INTO session_stream.purges (source, purged_before, messages)"
							  " VALUES ($3, $1, $2)",
							  3, argtypes, args, NULL, false, 0) != SPI_OK_INSERT)
		elog(ERROR, "could not record the purge of \"%s\"", ss_table_name(source));
	SPI_finish();

	table_close(source, NoLock);
	PG_RETURN_INT64(purged);
}
