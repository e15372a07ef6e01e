/*-------------------------------------------------------------------------
 *
 * edits.c
 *	  Edits of a deferred source: record_edits(), the trigger that notes
 *	  each UPDATE and DELETE in session_stream.edits, and what
 *	  consume_window() reads back.
 *
 * A deferred source's track_sessions() triggers are disabled (they only
 * hold the column mapping), so edits need a trigger of their own that
 * stays enabled.  For each edited row it records the old row's message,
 * the txid the old row was inserted by (row_txid), an UPDATE's new
 * message, and, as the row's txid, the editing transaction's own
 * (session_stream.current_txid()).  A consumer takes an edit in the window
 * that contains its txid, as it takes messages, and then:
 *
 *	- if row_txid was consumed by an earlier window, the old message was
 *	  applied: its key is rewound to before it and replayed from the rows
 *	  that are left, and the edit is counted;
 *	- an UPDATE's new message: its key is rewound to before it and replayed
 *	  (the new row keeps its txid, so it is no new message by itself);
 *	- a message edited before it was ever consumed is in this window or a
 *	  later one in its new form, and its old form is ignored: consumed once.
 *
 * Edits are recorded for a source that has been consumed, or that a
 * disabled track_sessions() row trigger marks as deferred: before its first
 * window a consumer reads every row as it is, so a source that is neither
 * (say, realtime only) writes nothing here.  The first window of a source
 * consumed by the defaults, without such a trigger, is taken under a lock
 * that waits out running edits, so that none falls between "not recorded"
 * and the window.
 *
 * TRUNCATE empties, at once, every results set the source feeds and
 * forgets its purge horizons (erasure.c); nothing is left to record.
 *
 *-------------------------------------------------------------------------
 */
#include "session_stream.h"

#include "access/htup_details.h"
#include "access/table.h"
#include "catalog/namespace.h"
#include "catalog/pg_class.h"
#include "catalog/pg_trigger.h"
#include "commands/trigger.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/snapmgr.h"
#include "utils/syscache.h"

PG_FUNCTION_INFO_V1(ss_record_edits);

static SPIPlanPtr insert_plan = NULL;	/* kept across calls */
static SPIPlanPtr consumed_plan = NULL;

/*
 * Has any consume_window() of this source committed a window?  SPI must
 * be connected.
 */
static bool
source_is_consumed(Oid source)
{
	Oid			argtypes[1] = {OIDOID};
	Datum		args[1] = {ObjectIdGetDatum(source)};

	(void) ss_kept_plan(&consumed_plan,
						"SELECT FROM session_stream.consumed_windows"
						" WHERE source OPERATOR(pg_catalog.=) $1 LIMIT 1",
						1, argtypes);
	/* a fresh snapshot: a window committed after our statement began counts */
	if (SPI_execute_snapshot(consumed_plan, args, NULL, GetLatestSnapshot(),
							 InvalidSnapshot, true, false, 1) != SPI_OK_SELECT)
		elog(ERROR, "could not read session_stream.consumed_windows");
	return SPI_processed > 0;
}

/*
 * Are edits of this source recorded?  Yes once it has been consumed, and
 * before that if a disabled track_sessions() row trigger says it is a
 * deferred source (consume_window() drops what every consumer has taken).
 */
bool
edits_are_recorded(Relation source)
{
	TriggerDesc *desc = source->trigdesc;
	Oid			track_sessions = ss_track_sessions_oid();
	bool		recorded = false;
	int			i;

	for (i = 0; desc != NULL && i < desc->numtriggers && !recorded; i++)
	{
		Trigger    *trigger = &desc->triggers[i];

		recorded = trigger->tgfoid == track_sessions &&
			TRIGGER_FOR_ROW(trigger->tgtype) &&
			trigger->tgenabled == TRIGGER_DISABLED;
	}
	if (!recorded)
	{
		SPI_connect();
		recorded = source_is_consumed(RelationGetRelid(source));
		SPI_finish();
	}
	return recorded;
}

/*
 * The source's column mapping: its first track_sessions() row trigger's,
 * else the defaults.
 */
static void
source_mapping(Relation source, SSTracker *out)
{
	TriggerDesc *desc = source->trigdesc;
	Oid			track_sessions = ss_track_sessions_oid();
	int			i;

	for (i = 0; desc != NULL && i < desc->numtriggers; i++)
	{
		Trigger    *trigger = &desc->triggers[i];

		if (trigger->tgfoid == track_sessions && TRIGGER_FOR_ROW(trigger->tgtype))
		{
			trigger_args_build(trigger, source, false, out);
			return;
		}
	}
	consume_stream_tracker(source, SS_MODE_CUSTOMER, true, out);
}

/* session_stream.edits; InvalidOid on a 0.1 schema, which has none. */
static Oid
edits_table(void)
{
	return get_relname_relid("edits", get_namespace_oid(SS_SCHEMA, false));
}

/* The owner of session_stream.edits (the extension's). */
static Oid
edits_owner(void)
{
	HeapTuple	tuple = SearchSysCache1(RELOID, ObjectIdGetDatum(edits_table()));
	Oid			owner;

	if (!HeapTupleIsValid(tuple))
		elog(ERROR, "table %s.edits is missing", SS_SCHEMA);
	owner = ((Form_pg_class) GETSTRUCT(tuple))->relowner;
	ReleaseSysCache(tuple);
	return owner;
}

static void
record_edit(Relation source, const SSTracker *t, HeapTuple old_tuple,
			HeapTuple new_tuple)
{
	SSMessage	old_message;
	SSMessage	new_message;
	Datum		args[10];
	char		nulls[10];
	Oid			argtypes[10] = {OIDOID, INT8OID, INT8OID, INT8OID,
		TIMESTAMPTZOID, BOOLOID, INT8OID, INT8OID, TIMESTAMPTZOID, BOOLOID};
	bool		isnull;
	Oid			save_userid;
	int			save_sec_context;
	int			i;

	if (new_tuple != NULL)
		source_read_message(t, source, new_tuple, &new_message);
	if (!source_try_read_message(t, source, old_tuple, &old_message))
		return;					/* never a message */
	if (new_tuple != NULL && sessions_same_message(&old_message, &new_message))
		return;					/* no mapped column changed */
	if (t->txid_attnum == InvalidAttrNumber)
		return;					/* no consumer can read this source */

	memset(nulls, ' ', sizeof(nulls));
	args[0] = ObjectIdGetDatum(RelationGetRelid(source));
	args[1] = heap_getattr(old_tuple, t->txid_attnum, RelationGetDescr(source), &isnull);
	if (isnull)
		return;					/* a consumer never took it */
	args[2] = Int64GetDatum(old_message.customer_id);
	args[3] = Int64GetDatum(old_message.agent_id);
	args[4] = Int64GetDatum(old_message.sent_at);
	args[5] = BoolGetDatum(old_message.from_agent);
	if (new_tuple != NULL)
	{
		args[6] = Int64GetDatum(new_message.customer_id);
		args[7] = Int64GetDatum(new_message.agent_id);
		args[8] = Int64GetDatum(new_message.sent_at);
		args[9] = BoolGetDatum(new_message.from_agent);
	}
	else
		for (i = 6; i < 10; i++)
			nulls[i] = 'n';

	(void) ss_kept_plan(&insert_plan,
						"INSERT INTO session_stream.edits"
						" (source, row_txid, customer_id, agent_id, sent_at, from_agent,"
						"  new_customer_id, new_agent_id, new_sent_at, new_from_agent)"
						" VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
						10, argtypes);

	/* the editing role need not write the extension's table: its owner does */
	GetUserIdAndSecContext(&save_userid, &save_sec_context);
	SetUserIdAndSecContext(edits_owner(), save_sec_context | SECURITY_LOCAL_USERID_CHANGE);
	if (SPI_execute_plan(insert_plan, args, nulls, false, 0) != SPI_OK_INSERT)
		elog(ERROR, "could not record an edit of \"%s\"", ss_table_name(source));
	SetUserIdAndSecContext(save_userid, save_sec_context);
}

Datum
ss_record_edits(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = (TriggerData *) fcinfo->context;
	Relation	source;
	SSTracker	t;
	bool		recorded;

	if (!CALLED_AS_TRIGGER(fcinfo) || !TRIGGER_FIRED_AFTER(trigdata->tg_event) ||
		(TRIGGER_FIRED_BY_TRUNCATE(trigdata->tg_event)
		 ? !TRIGGER_FIRED_FOR_STATEMENT(trigdata->tg_event)
		 : !TRIGGER_FIRED_FOR_ROW(trigdata->tg_event) ||
		 TRIGGER_FIRED_BY_INSERT(trigdata->tg_event)))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("record_edits() must be fired AFTER UPDATE OR DELETE ... FOR EACH ROW, or AFTER TRUNCATE ... FOR EACH STATEMENT"),
				 errhint("CREATE TRIGGER record_edits AFTER UPDATE OR DELETE ON tbl FOR EACH ROW EXECUTE FUNCTION session_stream.record_edits();")));
	source = trigdata->tg_relation;

	if (TRIGGER_FIRED_BY_TRUNCATE(trigdata->tg_event))
	{
		erasure_truncate_streams(source);
		return PointerGetDatum(NULL);
	}
	if (retention_is_purging(RelationGetRelid(source)))
		return PointerGetDatum(NULL);	/* retention, not an edit */

	recorded = edits_are_recorded(source);
	if (recorded || source->rd_rel->relreplident == REPLICA_IDENTITY_FULL)
	{
		SPI_connect();
		source_mapping(source, &t);
		/* a publisher's edit that a subscriber could not follow: refused */
		replicas_check_edit(source, t.txid_attnum,
							TRIGGER_FIRED_BY_UPDATE(trigdata->tg_event));
		if (recorded)
			record_edit(source, &t, trigdata->tg_trigtuple,
						TRIGGER_FIRED_BY_UPDATE(trigdata->tg_event)
						? trigdata->tg_newtuple : NULL);
		SPI_finish();
	}
	return PointerGetDatum(NULL);
}

/*
 * The edits of a window: those of the source whose txid "upto" contains
 * and "previous" (NULL before the first window) does not, read with the
 * consumer's snapshot.  The visitor gets the old message, whether an
 * earlier window consumed it, and an UPDATE's new message (else NULL).
 * Returns the number of edits visited; none on a 0.1 schema, which has no
 * edits table.
 */
int64
edits_scan_window(Oid source, Snapshot snapshot, const SSPosition *previous,
				  const SSPosition *upto, SSEditVisitor visitor, void *arg)
{
	Oid			argtypes[2] = {OIDOID, INT8OID};
	Datum		args[2];
	SPIPlanPtr	plan;
	int64		visited = 0;
	uint64		i;

	if (!OidIsValid(edits_table()))
		return 0;
	args[0] = ObjectIdGetDatum(source);
	args[1] = Int64GetDatum(previous != NULL ? previous->xmin : 0);

	SPI_connect();
	plan = SPI_prepare("SELECT txid, row_txid, customer_id, agent_id, sent_at, from_agent,"
					   "       new_customer_id, new_agent_id, new_sent_at, new_from_agent"
					   "  FROM session_stream.edits"
					   " WHERE source OPERATOR(pg_catalog.=) $1"
					   "   AND txid OPERATOR(pg_catalog.>=) $2",
					   2, argtypes);
	if (plan == NULL)
		elog(ERROR, "SPI_prepare failed: %s", SPI_result_code_string(SPI_result));
	if (SPI_execute_snapshot(plan, args, NULL, snapshot, InvalidSnapshot,
							 true, false, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not read session_stream.edits");
	for (i = 0; i < SPI_processed; i++)
	{
		HeapTuple	tuple = SPI_tuptable->vals[i];
		TupleDesc	desc = SPI_tuptable->tupdesc;
		bool		isnull;
		int64		txid = DatumGetInt64(SPI_getbinval(tuple, desc, 1, &isnull));
		int64		row_txid = DatumGetInt64(SPI_getbinval(tuple, desc, 2, &isnull));
		SSMessage	old_message;
		SSMessage	new_message;
		bool		has_new;

		if (!windows_contains(upto, txid) ||
			(previous != NULL && windows_contains(previous, txid)))
			continue;
		old_message.customer_id = DatumGetInt64(SPI_getbinval(tuple, desc, 3, &isnull));
		old_message.agent_id = DatumGetInt64(SPI_getbinval(tuple, desc, 4, &isnull));
		old_message.sent_at = DatumGetInt64(SPI_getbinval(tuple, desc, 5, &isnull));
		old_message.from_agent = DatumGetBool(SPI_getbinval(tuple, desc, 6, &isnull));
		new_message.customer_id = DatumGetInt64(SPI_getbinval(tuple, desc, 7, &has_new));
		has_new = !has_new;
		if (has_new)
		{
			new_message.agent_id = DatumGetInt64(SPI_getbinval(tuple, desc, 8, &isnull));
			new_message.sent_at = DatumGetInt64(SPI_getbinval(tuple, desc, 9, &isnull));
			new_message.from_agent = DatumGetBool(SPI_getbinval(tuple, desc, 10, &isnull));
		}
		visitor(&old_message,
				previous != NULL && windows_contains(previous, row_txid),
				has_new ? &new_message : NULL, arg);
		visited++;
	}
	SPI_finish();
	return visited;
}

/*
 * Drop the source's edits below txid "below", which every consumer of the
 * source has taken (the caller knows), as the table's owner.
 */
void
edits_forget_before(Oid source, int64 below)
{
	Oid			argtypes[2] = {OIDOID, INT8OID};
	Datum		args[2] = {ObjectIdGetDatum(source), Int64GetDatum(below)};
	Oid			save_userid;
	int			save_sec_context;

	if (!OidIsValid(edits_table()))
		return;
	SPI_connect();
	GetUserIdAndSecContext(&save_userid, &save_sec_context);
	SetUserIdAndSecContext(edits_owner(), save_sec_context | SECURITY_LOCAL_USERID_CHANGE);
	if (SPI_execute_with_args("DELETE FROM session_stream.edits"
							  " WHERE source OPERATOR(pg_catalog.=) $1"
							  "   AND txid OPERATOR(pg_catalog.<) $2",
							  2, argtypes, args, NULL, false, 0) != SPI_OK_DELETE)
		elog(ERROR, "could not drop consumed edits");
	SetUserIdAndSecContext(save_userid, save_sec_context);
	SPI_finish();
}
