/*-------------------------------------------------------------------------
 *
 * replicas.c
 *	  Sources fed by logical replication: adopt_replicated_rows(), the
 *	  BEFORE trigger that makes a subscriber's replicated rows its own, and
 *	  the checks that refuse a set-up whose results could not be exact.
 *
 * On a subscriber, rows arrive through a logical-replication worker: the
 * apply worker, or a tablesync worker whose COPY brings the initial copy
 * and which fires row triggers as an INSERT does.  Both run with
 * session_replication_role = replica, so only triggers enabled REPLICA or
 * ALWAYS fire there, and a row carries the publisher's column values.
 * A published txid column is the publisher's transaction id: realtime's
 * restore guard would take such a row for a restored one, and deferred
 * mode, which finds new rows by this server's transaction ids, would
 * place it anywhere.  So adopt_replicated_rows(), a BEFORE row trigger
 * enabled REPLICA (it costs nothing on an origin), gives a row inserted by
 * a logical-replication worker this server's transaction id, as the
 * column's default would (a publication whose column list leaves txid out
 * gets that already), and keeps a replicated UPDATE from overwriting the
 * subscriber's txid with the publisher's.  The row is then a new row of
 * this server's transaction in every respect: realtime applies it at its
 * commit, deferred mode consumes it once, an edit of it is recorded
 * against it.
 *
 * What cannot be made exact is refused, with what to do:
 *
 *	- a track_sessions() or record_edits() trigger of the source that is
 *	  enabled for the origin only would not fire for a replicated row (or
 *	  one written by hand with session_replication_role = replica, except
 *	  a restored row, whose txid is not ours): adopt_replicated_rows()
 *	  raises an error instead, which stops the subscription until the
 *	  trigger is enabled ALWAYS (or disabled, for deferred mode);
 *	- consume_window() on a subscription's table without an enabled
 *	  adopt_replicated_rows() trigger (replicas_check_deferred());
 *	- on a publisher, UPDATE and DELETE of a source published with
 *	  REPLICA IDENTITY FULL (replicas_check_edit()): a subscriber finds the
 *	  row to change by all its old values, txid included, which differs
 *	  there, so it would skip the edit without a word.
 *
 *-------------------------------------------------------------------------
 */
#include "session_stream.h"

#include "access/htup_details.h"
#include "access/table.h"
#include "catalog/pg_publication.h"
#include "catalog/pg_subscription_rel.h"
#include "catalog/pg_trigger.h"
#include "commands/trigger.h"
#include "executor/spi.h"
#include "nodes/makefuncs.h"
#include "parser/parse_func.h"
#include "replication/logicalworker.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/relcache.h"

PG_FUNCTION_INFO_V1(ss_adopt_replicated_rows);

static Oid
extension_function_oid(const char *name)
{
	/* InvalidOid in a database still at 0.1, which has neither of ours */
	return LookupFuncName(list_make2(makeString(SS_SCHEMA), makeString(pstrdup(name))),
						  0, NULL, true);
}

static TriggerData *
check_adopt_call(FunctionCallInfo fcinfo)
{
	TriggerData *trigdata = (TriggerData *) fcinfo->context;
	TriggerEvent event;

	if (!CALLED_AS_TRIGGER(fcinfo))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("adopt_replicated_rows() was not called by the trigger manager")));
	event = trigdata->tg_event;
	if (!TRIGGER_FIRED_BEFORE(event) ||
		(TRIGGER_FIRED_BY_TRUNCATE(event)
		 ? !TRIGGER_FIRED_FOR_STATEMENT(event)
		 : !TRIGGER_FIRED_FOR_ROW(event)))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("trigger \"%s\" on table \"%s\" must be fired BEFORE INSERT OR UPDATE OR DELETE ... FOR EACH ROW, or BEFORE TRUNCATE ... FOR EACH STATEMENT",
						trigdata->tg_trigger->tgname,
						ss_table_name(trigdata->tg_relation)),
				 errhint("CREATE TRIGGER adopt_replicated_rows BEFORE INSERT OR UPDATE OR DELETE ON tbl FOR EACH ROW EXECUTE FUNCTION session_stream.adopt_replicated_rows(); then ALTER TABLE tbl ENABLE REPLICA TRIGGER adopt_replicated_rows;")));
	return trigdata;
}

/* The txid column: the trigger's argument 'txid=column', else "txid". */
static AttrNumber
adopt_txid_column(Trigger *trigger, Relation source)
{
	const char *column = "txid";
	AttrNumber	attnum;

	if (trigger->tgnargs > 1 ||
		(trigger->tgnargs == 1 && strncmp(trigger->tgargs[0], "txid=", 5) != 0))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid arguments for trigger \"%s\" on table \"%s\"",
						trigger->tgname, ss_table_name(source)),
				 errhint("adopt_replicated_rows() takes no argument, or one such as 'txid=txid'.")));
	if (trigger->tgnargs == 1)
		column = trigger->tgargs[0] + 5;
	attnum = SPI_fnumber(RelationGetDescr(source), column);
	if (attnum <= 0)
		return InvalidAttrNumber;	/* no txid: nothing to adopt */
	if (TupleDescAttr(RelationGetDescr(source), attnum - 1)->atttypid != INT8OID)
		ereport(ERROR,
				(errcode(ERRCODE_DATATYPE_MISMATCH),
				 errmsg("column \"%s\" of table \"%s\" has type %s",
						column, ss_table_name(source),
						format_type_be(TupleDescAttr(RelationGetDescr(source), attnum - 1)->atttypid)),
				 errdetail("The transaction id column must be bigint, filled by session_stream.current_txid()."),
				 errhint("Map another column with a trigger argument such as 'txid=txid'.")));
	return attnum;
}

/*
 * Does a trigger of ours that must see this event stay silent in replica
 * role?  record_edits() only matters once edits of the source are recorded.
 * A TRUNCATE is covered by a record_edits() TRUNCATE trigger that fires:
 * it empties every results set of the source, those of its
 * track_sessions() triggers too (erasure.c).
 */
static void
refuse_origin_only(Relation source, TriggerEvent event, bool replicated)
{
	TriggerDesc *desc = source->trigdesc;
	Oid			track_sessions = ss_track_sessions_oid();
	Oid			record_edits = extension_function_oid("record_edits");
	int			level = TRIGGER_FIRED_BY_TRUNCATE(event)
		? TRIGGER_TYPE_STATEMENT : TRIGGER_TYPE_ROW;
	int			type = TRIGGER_FIRED_BY_INSERT(event) ? TRIGGER_TYPE_INSERT
		: TRIGGER_FIRED_BY_UPDATE(event) ? TRIGGER_TYPE_UPDATE
		: TRIGGER_FIRED_BY_DELETE(event) ? TRIGGER_TYPE_DELETE
		: TRIGGER_TYPE_TRUNCATE;
	int			i;

	for (i = 0; type == TRIGGER_TYPE_TRUNCATE && desc != NULL && i < desc->numtriggers; i++)
	{
		Trigger    *trigger = &desc->triggers[i];

		if (trigger->tgfoid == record_edits &&
			TRIGGER_TYPE_MATCHES(trigger->tgtype, level, TRIGGER_TYPE_AFTER, type) &&
			(trigger->tgenabled == TRIGGER_FIRES_ALWAYS ||
			 trigger->tgenabled == TRIGGER_FIRES_ON_REPLICA))
			return;
	}
	for (i = 0; desc != NULL && i < desc->numtriggers; i++)
	{
		Trigger    *trigger = &desc->triggers[i];

		if (trigger->tgenabled != TRIGGER_FIRES_ON_ORIGIN ||
			!TRIGGER_TYPE_MATCHES(trigger->tgtype, level, TRIGGER_TYPE_AFTER, type) ||
			!(trigger->tgfoid == track_sessions ||
			  (trigger->tgfoid == record_edits && edits_are_recorded(source))))
			continue;
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("trigger \"%s\" on table \"%s\" does not fire in replica mode",
						trigger->tgname, ss_table_name(source)),
				 replicated
				 ? errdetail("It is enabled for the origin only, so the results would miss what logical replication applies to this table.")
				 : errdetail("It is enabled for the origin only, so the results would miss what this session writes with session_replication_role = replica."),
				 trigger->tgfoid == track_sessions
				 ? errhint("ALTER TABLE %s ENABLE ALWAYS TRIGGER %s; or DISABLE TRIGGER %s to consume this table in deferred mode instead.",
						   ss_table_name(source), quote_identifier(trigger->tgname),
						   quote_identifier(trigger->tgname))
				 : errhint("ALTER TABLE %s ENABLE ALWAYS TRIGGER %s;",
						   ss_table_name(source), quote_identifier(trigger->tgname))));
	}
}

/*
 * BEFORE INSERT OR UPDATE OR DELETE row trigger, and BEFORE TRUNCATE
 * statement trigger, enabled REPLICA: see the header comment.
 */
Datum
ss_adopt_replicated_rows(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = check_adopt_call(fcinfo);
	Relation	source = trigdata->tg_relation;
	TriggerEvent event = trigdata->tg_event;
	bool		replicated = IsLogicalWorker();
	AttrNumber	txid_attnum;
	HeapTuple	tuple;
	Datum		value;
	bool		isnull;

	if (TRIGGER_FIRED_BY_TRUNCATE(event))
	{
		if (replicated || SessionReplicationRole == SESSION_REPLICATION_ROLE_REPLICA)
			refuse_origin_only(source, event, replicated);
		return PointerGetDatum(NULL);
	}
	tuple = TRIGGER_FIRED_BY_UPDATE(event) ? trigdata->tg_newtuple
		: trigdata->tg_trigtuple;
	/* enabled ALWAYS, on an origin: an ordinary row */
	if (!replicated && SessionReplicationRole != SESSION_REPLICATION_ROLE_REPLICA)
		return PointerGetDatum(tuple);

	txid_attnum = adopt_txid_column(trigdata->tg_trigger, source);
	if (!replicated && TRIGGER_FIRED_BY_INSERT(event) &&
		txid_attnum != InvalidAttrNumber)
	{
		/* by hand in replica role: a restored row is not applied anyway */
		value = heap_getattr(tuple, txid_attnum, RelationGetDescr(source), &isnull);
		if (!isnull && DatumGetInt64(value) != txid_current_value())
			return PointerGetDatum(tuple);
	}
	refuse_origin_only(source, event, replicated);
	if (!replicated || txid_attnum == InvalidAttrNumber ||
		TRIGGER_FIRED_BY_DELETE(event))
		return PointerGetDatum(tuple);

	/* an INSERT gets our transaction's id; an UPDATE keeps the row's */
	if (TRIGGER_FIRED_BY_INSERT(event))
	{
		value = Int64GetDatum(txid_current_value());
		isnull = false;
	}
	else
		value = heap_getattr(trigdata->tg_trigtuple, txid_attnum,
							 RelationGetDescr(source), &isnull);
	{
		int			cols[1] = {txid_attnum};

		tuple = heap_modify_tuple_by_cols(tuple, RelationGetDescr(source), 1,
										  cols, &value, &isnull);
	}
	return PointerGetDatum(tuple);
}

/* Is the table a logical-replication subscription's? */
static bool
is_subscription_table(Oid relid)
{
	Relation	rel = table_open(SubscriptionRelRelationId, AccessShareLock);
	ScanKeyData key;
	SysScanDesc scan;
	bool		found;

	ScanKeyInit(&key, Anum_pg_subscription_rel_srrelid, BTEqualStrategyNumber,
				F_OIDEQ, ObjectIdGetDatum(relid));
	scan = systable_beginscan(rel, SubscriptionRelSrrelidSrsubidIndexId, true,
							  NULL, 1, &key);
	found = HeapTupleIsValid(systable_getnext(scan));
	systable_endscan(scan);
	table_close(rel, AccessShareLock);
	return found;
}

/*
 * consume_window() on a subscription's table: the replicated rows must get
 * this server's txids, from an adopt_replicated_rows() trigger that fires
 * in the apply worker.
 */
void
replicas_check_deferred(Relation source)
{
	TriggerDesc *desc = source->trigdesc;
	Oid			adopt;
	int			i;

	if (!is_subscription_table(RelationGetRelid(source)))
		return;
	adopt = extension_function_oid("adopt_replicated_rows");
	for (i = 0; desc != NULL && i < desc->numtriggers; i++)
	{
		Trigger    *trigger = &desc->triggers[i];

		if (trigger->tgfoid == adopt && TRIGGER_FOR_ROW(trigger->tgtype) &&
			TRIGGER_FOR_BEFORE(trigger->tgtype) &&
			TRIGGER_FOR_INSERT(trigger->tgtype) &&
			TRIGGER_FOR_UPDATE(trigger->tgtype) &&
			(trigger->tgenabled == TRIGGER_FIRES_ON_REPLICA ||
			 trigger->tgenabled == TRIGGER_FIRES_ALWAYS))
			return;
	}
	ereport(ERROR,
			(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
			 errmsg("cannot consume table \"%s\", which a subscription replicates into",
					ss_table_name(source)),
			 errdetail("Replicated rows carry the publisher's transaction ids, by which consume_window() cannot place them, unless a trigger gives them this server's."),
			 errhint("CREATE TRIGGER adopt_replicated_rows BEFORE INSERT OR UPDATE OR DELETE ON %s FOR EACH ROW EXECUTE FUNCTION session_stream.adopt_replicated_rows(); ALTER TABLE %s ENABLE REPLICA TRIGGER adopt_replicated_rows;",
					 ss_table_name(source), ss_table_name(source))));
}

/*
 * UPDATE or DELETE of a source with a txid column, on a publisher: refused
 * if it is published with REPLICA IDENTITY FULL, which a subscriber that
 * adopts the rows cannot follow.
 */
void
replicas_check_edit(Relation source, AttrNumber txid_attnum, bool is_update)
{
	PublicationDesc pubdesc;

	if (source->rd_rel->relreplident != REPLICA_IDENTITY_FULL ||
		txid_attnum == InvalidAttrNumber || IsLogicalWorker())
		return;
	RelationBuildPublicationDesc(source, &pubdesc);
	if (is_update ? !pubdesc.pubactions.pubupdate : !pubdesc.pubactions.pubdelete)
		return;
	ereport(ERROR,
			(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
			 errmsg("cannot %s table \"%s\", which is published with REPLICA IDENTITY FULL",
					is_update ? "update" : "delete from", ss_table_name(source)),
			 errdetail("A subscriber finds the row by all its old values, but gives replicated rows its own transaction ids, so it would skip the change without a word."),
			 errhint("Give the table a replica identity index that leaves out \"%s\" (ALTER TABLE %s REPLICA IDENTITY USING INDEX ...), or publish it WITH (publish = 'insert, truncate').",
					 NameStr(TupleDescAttr(RelationGetDescr(source), txid_attnum - 1)->attname),
					 ss_table_name(source))));
}
