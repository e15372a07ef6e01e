/*-------------------------------------------------------------------------
 *
 * erasure.c
 *	  Emptying and erasing results: what a TRUNCATE of a source does to the
 *	  results set it feeds, and forget_customer(), which erases one
 *	  customer's messages and sessions everywhere.
 *
 * TRUNCATE.  track_sessions() fired AFTER TRUNCATE (FOR EACH STATEMENT)
 * empties its results set, NAME_closed and NAME_latest, sessions kept from
 * purged history included: the replay of no messages is no sessions.
 * record_edits() fired so on a deferred source empties every results set
 * the source feeds, at once rather than at the next consume_window() (the
 * consumers' positions stay; what they read next lands on empty results),
 * and forgets the source's purge horizons.  A
 * results set that another table's track_sessions() trigger also feeds
 * would lose that table's sessions too, so such a TRUNCATE is refused
 * with an error rather than leaving either source's results wrong.  The
 * tables are emptied with the rights of the source's owner, as the
 * trigger writes them: by TRUNCATE when the owner may, else by DELETE.
 *
 * forget_customer(customer_id, source) is erasure (GDPR art. 17), not
 * retention: it deletes the customer's rows from the source, then the
 * customer's sessions from every results set the source feeds (named by
 * its track_sessions() triggers, enabled or disabled, and the defaults of
 * a mode consumed without one), in both modes, at once rather than at the
 * next consume_window().  The results tables are locked first in SHARE ROW
 * EXCLUSIVE mode, which a realtime writer (ROW EXCLUSIVE, held to commit)
 * and consume_window() conflict with: a message of the customer committed
 * before that lock is granted is deleted with the rest, and one written
 * after it waits for our commit and starts a new history.  consumed_windows
 * keeps its counts (history, no personal data).  The customer's SLA
 * records of those results sets (session_stream.sla_misses, and
 * sla_pending) go too.
 *
 *-------------------------------------------------------------------------
 */
#include "session_stream.h"

#include "access/genam.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "catalog/namespace.h"
#include "catalog/pg_class.h"
#include "catalog/pg_trigger.h"
#include "commands/trigger.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "storage/lmgr.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"

PG_FUNCTION_INFO_V1(ss_forget_customer);

/*
 * Refuse to empty a results set that a track_sessions() trigger of another
 * table feeds too.
 */
static void
refuse_shared_results(Relation source, const SSTracker *t)
{
	Relation	triggers = table_open(TriggerRelationId, AccessShareLock);
	ScanKeyData key;
	SysScanDesc scan;
	HeapTuple	tuple;

	ScanKeyInit(&key, Anum_pg_trigger_tgfoid, BTEqualStrategyNumber, F_OIDEQ,
				ObjectIdGetDatum(ss_track_sessions_oid()));
	scan = systable_beginscan(triggers, InvalidOid, false, NULL, 1, &key);
	while (HeapTupleIsValid(tuple = systable_getnext(scan)))
	{
		Form_pg_trigger row = (Form_pg_trigger) GETSTRUCT(tuple);
		Relation	other;
		TriggerDesc *desc;
		int			i;

		if (row->tgrelid == RelationGetRelid(source))
			continue;
		other = table_open(row->tgrelid, AccessShareLock);
		desc = other->trigdesc;
		for (i = 0; desc != NULL && i < desc->numtriggers; i++)
		{
			Trigger    *feeder = &desc->triggers[i];

			if (feeder->tgoid == row->oid &&
				trigger_args_results_view(feeder, other) == t->results_relid)
				ereport(ERROR,
						(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
						 errmsg("cannot empty results set \"%s\" for the truncate of table \"%s\"",
								ss_relid_name(t->results_relid),
								ss_table_name(source)),
						 errdetail("Trigger \"%s\" of table \"%s\" feeds that results set too.",
								   feeder->tgname, ss_table_name(other)),
						 errhint("Truncate both tables in one TRUNCATE statement after dropping one of the triggers, or give each table a results set of its own with session_stream.create_results().")));
		}
		table_close(other, AccessShareLock);
	}
	systable_endscan(scan);
	table_close(triggers, AccessShareLock);
}

/* Run SQL through SPI as another role; SPI must be connected. */
static uint64
execute_as(Oid role, const char *sql, int nargs, Oid *types, Datum *values)
{
	Oid			save_userid;
	int			save_sec_context;
	int			rc;

	GetUserIdAndSecContext(&save_userid, &save_sec_context);
	SetUserIdAndSecContext(role, save_sec_context | SECURITY_LOCAL_USERID_CHANGE);
	rc = SPI_execute_with_args(sql, nargs, types, values, NULL, false, 0);
	SetUserIdAndSecContext(save_userid, save_sec_context);
	if (rc < 0)
		elog(ERROR, "SPI_execute_with_args failed (%d): %s", rc, sql);
	return SPI_processed;
}

/*
 * Empty the results set of a stream of the truncated source, with the
 * rights of the source's owner.
 */
static void
empty_results_set(Relation source, const SSTracker *t)
{
	Oid			owner = source->rd_rel->relowner;
	char	   *closed = ss_relid_name(t->closed.relid);
	char	   *latest = ss_relid_name(t->latest.relid);

	SPI_connect();

	/*
	 * Already empty: nothing to do.  So it is when the results tables were
	 * truncated by the same statement (TRUNCATE messages, sessions_closed,
	 * sessions_latest), which could not truncate them again.
	 */
	if (execute_as(owner, psprintf("SELECT FROM %s UNION ALL SELECT FROM %s LIMIT 1",
								   closed, latest), 0, NULL, NULL) > 0)
	{
		refuse_shared_results(source, t);
		if (pg_class_aclcheck(t->closed.relid, owner, ACL_TRUNCATE) == ACLCHECK_OK &&
			pg_class_aclcheck(t->latest.relid, owner, ACL_TRUNCATE) == ACLCHECK_OK)
			execute_as(owner, psprintf("TRUNCATE %s, %s", closed, latest),
					   0, NULL, NULL);
		else
		{
			execute_as(owner, psprintf("DELETE FROM %s", closed), 0, NULL, NULL);
			execute_as(owner, psprintf("DELETE FROM %s", latest), 0, NULL, NULL);
		}
	}
	SPI_finish();
}

/* track_sessions() fired AFTER TRUNCATE: empty the trigger's results set. */
void
erasure_truncate_results(Trigger *trigger, Relation source)
{
	SSTracker	t;

	/* the (customer, time) index is not needed to empty anything */
	trigger_args_build(trigger, source, false, &t);
	empty_results_set(source, &t);
}

/* Add a tracker to the list unless one of its results set is there. */
static List *
add_results_set(List *trackers, const SSTracker *t)
{
	ListCell   *lc;
	SSTracker  *copy;

	foreach(lc, trackers)
	{
		if (((SSTracker *) lfirst(lc))->results_relid == t->results_relid)
			return trackers;
	}
	copy = palloc(sizeof(SSTracker));
	*copy = *t;
	return lappend(trackers, copy);
}

/*
 * The streams of a source: its track_sessions() triggers, enabled or not
 * and whatever events they fire on, and for a mode consumed without such a
 * trigger, the defaults consume_window() used.  One per results set.
 * SPI must be connected.
 */
static List *
source_streams(Relation source)
{
	TriggerDesc *desc = source->trigdesc;
	Oid			track_sessions = ss_track_sessions_oid();
	List	   *trackers = NIL;
	Oid			argtypes[1] = {OIDOID};
	Datum		args[1] = {ObjectIdGetDatum(RelationGetRelid(source))};
	uint64		i;
	int			rc;

	for (i = 0; desc != NULL && i < (uint64) desc->numtriggers; i++)
	{
		Trigger    *trigger = &desc->triggers[i];
		SSTracker	t;

		if (trigger->tgfoid != track_sessions)
			continue;
		trigger_args_build(trigger, source, false, &t);
		trackers = add_results_set(trackers, &t);
	}

	rc = SPI_execute_with_args("SELECT DISTINCT mode FROM session_stream.consumed_windows"
							   " WHERE source OPERATOR(pg_catalog.=) $1",
							   1, argtypes, args, NULL, true, 0);
	if (rc != SPI_OK_SELECT)
		elog(ERROR, "reading session_stream.consumed_windows failed (%d)", rc);
	for (i = 0; i < SPI_processed; i++)
	{
		char	   *mode = SPI_getvalue(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1);
		SSTracker	t;

		consume_stream_tracker(source,
							   strcmp(mode, "pair") == 0 ? SS_MODE_PAIR : SS_MODE_CUSTOMER,
							   true, &t);
		trackers = add_results_set(trackers, &t);
	}
	return trackers;
}

/*
 * record_edits() fired AFTER TRUNCATE: empty every results set the source
 * feeds, and forget its purge horizons (nothing purged is left).
 */
void
erasure_truncate_streams(Relation source)
{
	ListCell   *lc;
	Oid			argtypes[1] = {OIDOID};
	Datum		args[1] = {ObjectIdGetDatum(RelationGetRelid(source))};

	SPI_connect();
	foreach(lc, source_streams(source))
		empty_results_set(source, (SSTracker *) lfirst(lc));
	if (SPI_execute_with_args("DELETE FROM session_stream.purges"
							  " WHERE source OPERATOR(pg_catalog.=) $1",
							  1, argtypes, args, NULL, false, 0) != SPI_OK_DELETE)
		elog(ERROR, "could not forget the purges of \"%s\"", ss_table_name(source));
	SPI_finish();
}

static void
require_source_owner(Relation source)
{
	if (!ss_pg_class_ownercheck(RelationGetRelid(source), GetUserId()))
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("must be owner of table \"%s\" to forget a customer in it",
						ss_table_name(source)),
				 errhint("Ask the table's owner or a superuser to call forget_customer().")));
}

/*
 * The customer's SLA records of a results set: the misses check_slas()
 * raised and the sessions it has queued (neither exists in a database
 * still at 0.1).  They belong to the extension's owner, not to the
 * caller, who owns the source.
 */
static void
forget_sla_records(Oid results, Datum customer_id)
{
	Oid			nspid = get_namespace_oid(SS_SCHEMA, false);
	Oid			tables[2];
	Oid			types[2] = {REGCLASSOID, INT8OID};
	Datum		values[2];
	int			i;

	tables[0] = get_relname_relid("sla_misses", nspid);
	tables[1] = get_relname_relid("sla_pending", nspid);
	values[0] = ObjectIdGetDatum(results);
	values[1] = customer_id;
	for (i = 0; i < 2; i++)
	{
		Relation	rel;
		Oid			owner;

		if (!OidIsValid(tables[i]))
			continue;
		rel = table_open(tables[i], AccessShareLock);
		owner = rel->rd_rel->relowner;
		table_close(rel, AccessShareLock);
		execute_as(owner,
				   psprintf("DELETE FROM %s WHERE results OPERATOR(pg_catalog.=) $1"
							" AND customer_id OPERATOR(pg_catalog.=) $2",
							ss_relid_name(tables[i])),
				   2, types, values);
	}
}

/*
 * forget_customer(customer_id bigint, source regclass) returns bigint: the
 * number of the customer's messages deleted from the source.
 */
Datum
ss_forget_customer(PG_FUNCTION_ARGS)
{
	int64		customer_id;
	Relation	source;
	List	   *trackers;
	ListCell   *lc;
	Oid			argtypes[1] = {INT8OID};
	Datum		args[1];
	const char *customer_column = "customer_id";
	uint64		deleted;

	if (PG_ARGISNULL(0) || PG_ARGISNULL(1))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("%s of forget_customer() must not be null",
						PG_ARGISNULL(0) ? "customer_id" : "source"),
				 errhint("Name the customer and the message table, e.g. forget_customer(42, 'session_stream.messages').")));
	customer_id = PG_GETARG_INT64(0);
	args[0] = Int64GetDatum(customer_id);

	source = table_open(PG_GETARG_OID(1), RowExclusiveLock);
	if (source->rd_rel->relkind != RELKIND_RELATION &&
		source->rd_rel->relkind != RELKIND_PARTITIONED_TABLE)
		ereport(ERROR,
				(errcode(ERRCODE_WRONG_OBJECT_TYPE),
				 errmsg("cannot forget a customer in \"%s\"", ss_table_name(source)),
				 errdetail("forget_customer() deletes from tables only."),
				 errhint("Name the message table, e.g. 'session_stream.messages'.")));
	require_source_owner(source);

	SPI_connect();
	trackers = source_streams(source);

	/* wait out writers and consumers of the results, keep new ones out */
	foreach(lc, trackers)
	{
		SSTracker  *t = (SSTracker *) lfirst(lc);

		LockRelationOid(t->closed.relid, ShareRowExclusiveLock);
		LockRelationOid(t->latest.relid, ShareRowExclusiveLock);
	}

	if (trackers != NIL)
		customer_column = get_attname(RelationGetRelid(source),
									  ((SSTracker *) linitial(trackers))->customer_attnum,
									  false);
	else if (get_attnum(RelationGetRelid(source), customer_column) == InvalidAttrNumber)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_COLUMN),
				 errmsg("table \"%s\" has no column \"%s\"",
						ss_table_name(source), customer_column),
				 errdetail("Without a track_sessions() trigger the customer is column \"customer_id\"."),
				 errhint("Attach the table's track_sessions() trigger, which maps its columns.")));

	deleted = execute_as(GetUserId(),
						 psprintf("DELETE FROM %s WHERE %s OPERATOR(pg_catalog.=) $1",
								  ss_table_name(source),
								  quote_identifier(customer_column)),
						 1, argtypes, args);

	foreach(lc, trackers)
	{
		SSTracker  *t = (SSTracker *) lfirst(lc);
		Oid			tables[2] = {t->closed.relid, t->latest.relid};
		int			i;

		for (i = 0; i < 2; i++)
			execute_as(GetUserId(),
					   psprintf("DELETE FROM %s WHERE customer_id OPERATOR(pg_catalog.=) $1",
								ss_relid_name(tables[i])),
					   1, argtypes, args);
		forget_sla_records(t->results_relid, args[0]);
	}
	SPI_finish();
	table_close(source, NoLock);
	PG_RETURN_INT64((int64) deleted);
}
