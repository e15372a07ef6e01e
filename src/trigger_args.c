/*-------------------------------------------------------------------------
 *
 * trigger_args.c
 *	  Parse and check track_sessions() trigger arguments once per trigger.
 *
 *	  track_sessions('pair', 'agent=a', 'customer=b', 'ts=ts',
 *					 'from_agent=direct', 'results=my_schema.my_sessions')
 *
 * The first argument is the mode; the others map the four message columns
 * (defaults agent_id, customer_id, sent_at, from_agent) and may name the
 * results set (default session_stream.sessions or pair_sessions: a view
 * over NAME_closed and NAME_latest, made by create_results()).  Each
 * trigger's parsed form, with the attribute numbers, types and indexes it
 * needs, is kept in a backend-local hash by trigger OID.  A relcache
 * invalidation of the source or the results table marks the entry invalid
 * (never frees it: it may be in use) and the next call rebuilds it, so
 * ALTER TABLE, CREATE/DROP INDEX and CREATE OR REPLACE TRIGGER all take
 * effect at once.
 *
 *-------------------------------------------------------------------------
 */
#include "session_stream.h"

#include "access/genam.h"
#include "access/relation.h"
#include "access/table.h"
#include "catalog/catalog.h"
#include "catalog/namespace.h"
#include "catalog/pg_am.h"
#include "catalog/pg_class.h"
#include "catalog/pg_type.h"
#include "commands/defrem.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/hsearch.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/regproc.h"
#include "utils/varlena.h"


static HTAB *trackers = NULL;

/* What the arguments say, before any catalog lookup. */
typedef struct TriggerArgs
{
	SSMode		mode;
	const char *agent;
	const char *customer;
	const char *time;
	const char *from_agent;
	const char *txid;			/* deferred mode only */
	const char *results;		/* NULL: the extension's table for the mode */
} TriggerArgs;

const char *
trigger_args_mode_name(SSMode mode)
{
	return mode == SS_MODE_PAIR ? "pair" : "customer";
}

static void
parse_trigger_args(Trigger *trigger, Relation source, TriggerArgs *args)
{
	int			i;

	if (trigger->tgnargs < 1)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("trigger \"%s\" on table \"%s\" has no mode",
						trigger->tgname, ss_table_name(source)),
				 errhint("Pass 'customer' or 'pair' as the first argument of track_sessions().")));

	if (strcmp(trigger->tgargs[0], "customer") == 0)
		args->mode = SS_MODE_CUSTOMER;
	else if (strcmp(trigger->tgargs[0], "pair") == 0)
		args->mode = SS_MODE_PAIR;
	else
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid mode \"%s\" for trigger \"%s\" on table \"%s\"",
						trigger->tgargs[0], trigger->tgname, ss_table_name(source)),
				 errhint("Valid modes are \"customer\" and \"pair\".")));

	args->agent = "agent_id";
	args->customer = "customer_id";
	args->time = "sent_at";
	args->from_agent = "from_agent";
	args->txid = "txid";
	args->results = NULL;

	for (i = 1; i < trigger->tgnargs; i++)
	{
		const char *arg = trigger->tgargs[i];
		const char *eq = strchr(arg, '=');
		size_t		keylen = eq ? (size_t) (eq - arg) : 0;
		const char **target = NULL;

		if (eq != NULL && eq[1] != '\0')
		{
			if (keylen == 5 && strncmp(arg, "agent", 5) == 0)
				target = &args->agent;
			else if (keylen == 8 && strncmp(arg, "customer", 8) == 0)
				target = &args->customer;
			else if (keylen == 2 && strncmp(arg, "ts", 2) == 0)
				target = &args->time;
			else if (keylen == 10 && strncmp(arg, "from_agent", 10) == 0)
				target = &args->from_agent;
			else if (keylen == 7 && strncmp(arg, "results", 7) == 0)
				target = &args->results;
			else if (keylen == 4 && strncmp(arg, "txid", 4) == 0)
				target = &args->txid;
		}
		if (target == NULL)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("invalid argument \"%s\" for trigger \"%s\" on table \"%s\"",
							arg, trigger->tgname, ss_table_name(source)),
					 errhint("Arguments after the mode are 'agent=column', 'customer=column', 'ts=column', 'from_agent=column', 'txid=column' and 'results=table'.")));
		*target = eq + 1;
	}
}

static AttrNumber
optional_column(Relation rel, const char *name)
{
	TupleDesc	desc = RelationGetDescr(rel);
	int			i;

	for (i = 0; i < desc->natts; i++)
	{
		Form_pg_attribute att = TupleDescAttr(desc, i);

		if (!att->attisdropped && strcmp(NameStr(att->attname), name) == 0)
			return att->attnum;
	}
	return InvalidAttrNumber;
}

/* Find a live column by name; error naming table and column if absent. */
static AttrNumber
column_by_name(Relation rel, const char *name, const char *role,
			   const char *hint)
{
	AttrNumber	attnum = optional_column(rel, name);

	if (attnum == InvalidAttrNumber)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_COLUMN),
				 errmsg("column \"%s\" of table \"%s\" does not exist",
						name, ss_table_name(rel)),
				 errdetail("It was to hold the %s.", role),
				 errhint("%s", hint)));
	return attnum;
}

static Oid
column_type(Relation rel, AttrNumber attnum)
{
	return TupleDescAttr(RelationGetDescr(rel), attnum - 1)->atttypid;
}

static void
require_type(Relation rel, AttrNumber attnum, bool ok, const char *detail,
			 const char *hint)
{
	Form_pg_attribute att = TupleDescAttr(RelationGetDescr(rel), attnum - 1);

	if (!ok)
		ereport(ERROR,
				(errcode(ERRCODE_DATATYPE_MISMATCH),
				 errmsg("column \"%s\" of table \"%s\" has type %s",
						NameStr(att->attname), ss_table_name(rel),
						format_type_be(att->atttypid)),
				 errdetail("%s", detail),
				 errhint("%s", hint)));
}

static bool
is_id_type(Oid type)
{
	return type == INT4OID || type == INT8OID;
}

static bool
is_time_type(Oid type)
{
	return type == TIMESTAMPOID || type == TIMESTAMPTZOID;
}

/* Leading columns an index must have, for leads_with_columns(). */
typedef struct LeadingColumns
{
	const AttrNumber *attnums;
	int			count;
} LeadingColumns;

/*
 * A non-partial btree index whose leading columns are exactly the given
 * attributes, ascending, with their types' default operator classes, so
 * that plain equality and range scan keys work on it.
 */
static bool
leads_with_columns(Relation rel, Relation index, const void *arg)
{
	const LeadingColumns *leading = (const LeadingColumns *) arg;
	Form_pg_index form = index->rd_index;
	int			i;

	if (index->rd_rel->relam != BTREE_AM_OID || !form->indisready ||
		form->indnkeyatts < leading->count ||
		!heap_attisnull(index->rd_indextuple, Anum_pg_index_indpred, NULL))
		return false;
	for (i = 0; i < leading->count; i++)
	{
		Oid			opclass = GetDefaultOpClass(column_type(rel, leading->attnums[i]),
												BTREE_AM_OID);

		if (form->indkey.values[i] != leading->attnums[i] ||
			!OidIsValid(opclass) ||
			index->rd_opfamily[i] != get_opclass_family(opclass) ||
			index->rd_indoption[i] != 0)	/* ASC, NULLS LAST */
			return false;
	}
	return true;
}

static Oid
find_btree_index(Relation rel, const AttrNumber *attnums, int count)
{
	LeadingColumns leading = {attnums, count};

	return ss_find_index(rel, leads_with_columns, &leading);
}

static void
check_source(Relation source, const TriggerArgs *args, bool need_key_index,
			 SSTracker *t)
{
	AttrNumber	leading[2];

	t->source_relid = RelationGetRelid(source);
	t->agent_attnum = column_by_name(source, args->agent, "agent id",
									 "Map another column with a trigger argument such as 'agent=agent_id'.");
	t->customer_attnum = column_by_name(source, args->customer, "customer id",
										"Map another column with a trigger argument such as 'customer=customer_id'.");
	t->time_attnum = column_by_name(source, args->time, "message time",
									"Map another column with a trigger argument such as 'ts=sent_at'.");
	t->from_agent_attnum = column_by_name(source, args->from_agent, "message direction",
										  "Map another column with a trigger argument such as 'from_agent=from_agent'.");

	t->id_type = column_type(source, t->customer_attnum);
	t->agent_type = column_type(source, t->agent_attnum);
	t->time_type = column_type(source, t->time_attnum);
	require_type(source, t->customer_attnum, is_id_type(t->id_type),
				 "Customer ids must be integer or bigint.",
				 "Map another column with a trigger argument such as 'customer=customer_id'.");
	require_type(source, t->agent_attnum, is_id_type(t->agent_type),
				 "Agent ids must be integer or bigint.",
				 "Map another column with a trigger argument such as 'agent=agent_id'.");
	require_type(source, t->time_attnum, is_time_type(t->time_type),
				 "Message times must be timestamp or timestamptz.",
				 "Map another column with a trigger argument such as 'ts=sent_at'.");
	require_type(source, t->from_agent_attnum,
				 column_type(source, t->from_agent_attnum) == BOOLOID,
				 "The message direction must be boolean, true for agent to customer.",
				 "Map another column with a trigger argument such as 'from_agent=from_agent'.");

	/* Deferred mode's transaction id column; consume.c insists on it. */
	namestrcpy(&t->txid_column, args->txid);
	t->txid_attnum = optional_column(source, args->txid);
	if (t->txid_attnum != InvalidAttrNumber)
		require_type(source, t->txid_attnum,
					 column_type(source, t->txid_attnum) == INT8OID,
					 "The transaction id column must be bigint, filled by session_stream.current_txid().",
					 "Map another column with a trigger argument such as 'txid=txid'.");

	leading[0] = t->customer_attnum;
	leading[1] = t->time_attnum;
	t->source_index = find_btree_index(source, leading, 2);
	if (!OidIsValid(t->source_index) && need_key_index)
	{
		TupleDesc	desc = RelationGetDescr(source);

		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("table \"%s\" has no index on (%s, %s)",
						ss_table_name(source),
						NameStr(TupleDescAttr(desc, t->customer_attnum - 1)->attname),
						NameStr(TupleDescAttr(desc, t->time_attnum - 1)->attname)),
				 errdetail("track_sessions() reads a customer's messages in time order to place late messages."),
				 errhint("CREATE INDEX ON %s (%s, %s);",
						 ss_table_name(source),
						 quote_identifier(NameStr(TupleDescAttr(desc, t->customer_attnum - 1)->attname)),
						 quote_identifier(NameStr(TupleDescAttr(desc, t->time_attnum - 1)->attname)))));
	}
}

/* The view a results set is read through: results= or the mode's own. */
static Oid
results_view(const TriggerArgs *args, bool missing_ok)
{
	if (args->results != NULL)
	{
		List	   *names = ss_stringToQualifiedNameList(args->results);

		return RangeVarGetRelid(makeRangeVarFromNameList(names), NoLock,
								missing_ok);
	}
	return get_relname_relid(args->mode == SS_MODE_PAIR ? "pair_sessions" : "sessions",
							 get_namespace_oid(SS_SCHEMA, false));
}

static const char *const results_set_detail =
"A results set NAME is the tables NAME_closed and NAME_latest and the view NAME over them.";

/* The hint of every error about a results set of this mode. */
static char *
results_set_hint(SSMode mode)
{
	return psprintf("Name a results set made for %s mode by session_stream.create_results(name, '%s').",
					trigger_args_mode_name(mode), trigger_args_mode_name(mode));
}

/*
 * Check NAME_closed or NAME_latest of the results set read through view
 * NAME: a plain table the source's owner may write, with the session
 * columns and a btree index led by the key columns (then opened_at when
 * index_columns says so).
 */
static void
check_results_table(Relation source, const TriggerArgs *args,
					const SSTracker *t, Relation view, const char *suffix,
					int index_columns, SSResultsTable *out)
{
	const char *time_detail = "Session times must be timestamp or timestamptz.";
	const char *id_detail = "Ids in a results table must be bigint, or integer when the source's ids are integer.";
	const char *hint = results_set_hint(args->mode);
	char	   *name = psprintf("%s_%s", RelationGetRelationName(view), suffix);
	Relation	rel;
	AttrNumber	leading[3];
	AclResult	acl;

	out->relid = strlen(name) < NAMEDATALEN
		? get_relname_relid(name, RelationGetNamespace(view)) : InvalidOid;
	if (!OidIsValid(out->relid))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_TABLE),
				 errmsg("results set \"%s\" has no table \"%s\"",
						ss_table_name(view), name),
				 errdetail("%s", results_set_detail),
				 errhint("%s", hint)));
	rel = table_open(out->relid, AccessShareLock);
	if (rel->rd_rel->relkind != RELKIND_RELATION || IsCatalogRelation(rel))
		ereport(ERROR,
				(errcode(ERRCODE_WRONG_OBJECT_TYPE),
				 errmsg("\"%s\" cannot hold sessions", ss_table_name(rel)),
				 errdetail("A results table must be a plain user table."),
				 errhint("%s", hint)));

	/* The trigger writes with the source owner's rights, as RI triggers do. */
	acl = pg_class_aclcheck(out->relid, source->rd_rel->relowner,
							ACL_SELECT | ACL_INSERT | ACL_UPDATE | ACL_DELETE);
	if (acl != ACLCHECK_OK)
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("owner of table \"%s\" may not write results table \"%s\"",
						ss_table_name(source), ss_table_name(rel)),
				 errhint("GRANT SELECT, INSERT, UPDATE, DELETE ON %s TO %s;",
						 ss_table_name(rel),
						 quote_identifier(GetUserNameFromId(source->rd_rel->relowner, false)))));

	out->customer_attnum = column_by_name(rel, "customer_id", "customer id", hint);
	out->agent_attnum = column_by_name(rel,
									   args->mode == SS_MODE_PAIR ? "agent_id" : "responder_id",
									   args->mode == SS_MODE_PAIR ? "agent id" : "responder id",
									   hint);
	out->opened_attnum = column_by_name(rel, "opened_at", "session start", hint);
	out->answered_attnum = column_by_name(rel, "answered_at", "first response time", hint);

	out->customer_type = column_type(rel, out->customer_attnum);
	out->agent_type = column_type(rel, out->agent_attnum);
	require_type(rel, out->customer_attnum,
				 out->customer_type == INT8OID ||
				 (out->customer_type == INT4OID && t->id_type == INT4OID),
				 id_detail, hint);
	require_type(rel, out->agent_attnum,
				 out->agent_type == INT8OID ||
				 (out->agent_type == INT4OID && t->agent_type == INT4OID),
				 id_detail, hint);
	require_type(rel, out->opened_attnum,
				 is_time_type(column_type(rel, out->opened_attnum)),
				 time_detail, hint);
	require_type(rel, out->answered_attnum,
				 is_time_type(column_type(rel, out->answered_attnum)),
				 time_detail, hint);

	leading[0] = out->customer_attnum;
	leading[1] = args->mode == SS_MODE_PAIR ? out->agent_attnum : out->opened_attnum;
	leading[2] = out->opened_attnum;
	out->index = find_btree_index(rel, leading, index_columns);
	if (!OidIsValid(out->index))
	{
		StringInfoData columns;
		int			i;

		initStringInfo(&columns);
		for (i = 0; i < index_columns; i++)
			appendStringInfo(&columns, "%s%s", i > 0 ? ", " : "",
							 NameStr(TupleDescAttr(RelationGetDescr(rel), leading[i] - 1)->attname));
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("results table \"%s\" has no index on (%s)",
						ss_table_name(rel), columns.data),
				 errhint("%s", hint)));
	}
	table_close(rel, AccessShareLock);
}

static void
check_results(Relation source, const TriggerArgs *args, SSTracker *t)
{
	Relation	view;

	t->results_relid = results_view(args, false);
	if (!OidIsValid(t->results_relid))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_TABLE),
				 errmsg("results set for %s mode does not exist",
						trigger_args_mode_name(args->mode)),
				 errhint("Create results sets with session_stream.create_results(name, mode).")));
	view = relation_open(t->results_relid, AccessShareLock);
	if (view->rd_rel->relkind != RELKIND_VIEW)
		ereport(ERROR,
				(errcode(ERRCODE_WRONG_OBJECT_TYPE),
				 errmsg("\"%s\" is not a results set", ss_table_name(view)),
				 errdetail("%s", results_set_detail),
				 errhint("%s", results_set_hint(args->mode))));
	t->results_key_columns = args->mode == SS_MODE_PAIR ? 2 : 1;
	check_results_table(source, args, t, view, "closed",
						t->results_key_columns + 1, &t->closed);
	check_results_table(source, args, t, view, "latest",
						t->results_key_columns, &t->latest);
	relation_close(view, AccessShareLock);
}

/* Mark every tracker reading or writing relid invalid (all if InvalidOid). */
static void
invalidate_callback(Datum arg, Oid relid)
{
	HASH_SEQ_STATUS status;
	SSTracker  *t;

	if (trackers == NULL)
		return;
	hash_seq_init(&status, trackers);
	while ((t = hash_seq_search(&status)) != NULL)
	{
		if (!OidIsValid(relid) || t->source_relid == relid ||
			t->results_relid == relid || t->closed.relid == relid ||
			t->latest.relid == relid)
			t->valid = false;
	}
}

/*
 * Parse and check a trigger's arguments against its tables, without
 * caching.  consume.c uses this with the arguments of a disabled trigger,
 * or with just a mode for the defaults; it reads a key's messages by time
 * range, so it does not need the (customer, time) index the trigger does.
 */
void
trigger_args_build(Trigger *trigger, Relation source, bool need_key_index,
				   SSTracker *out)
{
	TriggerArgs args;

	memset(out, 0, sizeof(*out));
	out->trigger_oid = trigger->tgoid;
	parse_trigger_args(trigger, source, &args);
	out->mode = args.mode;
	check_source(source, &args, need_key_index, out);
	check_results(source, &args, out);
	out->valid = true;
}

/*
 * The results set (its view) a trigger's arguments name, InvalidOid if it
 * does not exist; nothing else is checked.
 */
Oid
trigger_args_results_view(Trigger *trigger, Relation source)
{
	TriggerArgs args;

	parse_trigger_args(trigger, source, &args);
	return results_view(&args, true);
}

SSTracker *
trigger_args_lookup(Trigger *trigger, Relation source)
{
	SSTracker  *entry;
	SSTracker	built;
	bool		found;

	if (trackers == NULL)
	{
		HASHCTL		ctl;

		ctl.keysize = sizeof(Oid);
		ctl.entrysize = sizeof(SSTracker);
		ctl.hcxt = CacheMemoryContext;
		trackers = hash_create("session_stream trackers", 64, &ctl,
							   HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
		CacheRegisterRelcacheCallback(invalidate_callback, (Datum) 0);
	}

	entry = hash_search(trackers, &trigger->tgoid, HASH_ENTER, &found);
	if (!found)
		entry->valid = false;
	if (entry->valid && entry->source_relid == RelationGetRelid(source))
		return entry;

	/* Build into a local copy so that an error leaves the entry invalid. */
	trigger_args_build(trigger, source, true, &built);
	*entry = built;
	return entry;
}
