/*-------------------------------------------------------------------------
 *
 * rules.c
 *	  session_stream.feed_rules: checking a rule when it is written, and
 *	  compiling the rules of a source table into executor expressions that
 *	  evaluate_rules() runs on every new or updated row.
 *
 * A rule's condition is stored as SQL text, e.g. 'c2 > 9999', and is parsed
 * like a trigger's WHEN clause: one boolean expression whose unqualified
 * column names are the source table's columns, with no subqueries,
 * aggregates, window or set-returning functions.  The text is compiled per
 * backend (never stored as a node tree, so pg_dump and upgrades see only
 * SQL):
 *
 *	  raw_parser (PL/pgSQL expression mode) -> one target, nothing else
 *	  transformExpr over a namespace holding only the source table
 *	  coerce_to_boolean, collations, expression_planner
 *	  ExecInitQual -> ExprState, kept with a standalone ExprContext
 *
 * Compiled rule sets are cached per backend in a hash by source relid.  The
 * hot path of a row is one hash probe and one ExecQual per rule.  Entries
 * are invalidated, never freed in place, by relcache callbacks:
 *
 *	- a relcache invalidation of the source table (ALTER TABLE, RENAME,
 *	  DROP, ...) invalidates that table's entry;
 *	- any change to feed_rules runs the statement trigger
 *	  invalidate_feed_rules(), which sends a relcache invalidation for the
 *	  feed_rules table itself (as pg_cron does for its job table); that,
 *	  and a full reset (InvalidOid), invalidate every entry.  Invalidations
 *	  are transactional: other backends see them at commit, the writing
 *	  backend at its next command.
 *
 * An invalid entry is rebuilt on next use into a new SSRuleSet; the old one
 * goes on a retired list freed at transaction end, since a trigger further
 * up the stack may still be evaluating it.
 *
 * When a rule is written, check_feed_rule() compiles it and lets errors
 * through (with the parser's message and position inside the condition).
 * When a set is rebuilt inside a writer's trigger, each rule is compiled in
 * a subtransaction: a rule that no longer compiles (a column it used was
 * dropped) is skipped with a WARNING, because a writer's transaction must
 * not fail because of an alert.
 *
 *-------------------------------------------------------------------------
 */
#include "session_stream.h"

#include "access/htup_details.h"
#include "access/table.h"
#include "access/tableam.h"
#include "access/xact.h"
#include "catalog/namespace.h"
#include "catalog/pg_class.h"
#include "commands/trigger.h"
#include "executor/executor.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "nodes/nodeFuncs.h"
#include "optimizer/optimizer.h"
#include "parser/parse_coerce.h"
#include "parser/parse_collate.h"
#include "parser/parse_expr.h"
#include "utils/guc.h"
#include "parser/parse_relation.h"
#include "parser/parser.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/hsearch.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/resowner.h"
#include "utils/snapmgr.h"

#define SS_RULES_TABLE "feed_rules"

PG_FUNCTION_INFO_V1(ss_check_feed_rule);
PG_FUNCTION_INFO_V1(ss_invalidate_feed_rules);

typedef struct RuleSetEntry
{
	Oid			relid;			/* hash key: the source table */
	bool		valid;
	SSRuleSet  *set;			/* NULL until first built */
} RuleSetEntry;

static HTAB *rule_sets = NULL;
static Oid	feed_rules_relid = InvalidOid;	/* as of the last build */
static uint64 invalidations = 0;	/* bumped by every relevant callback */
static SSRuleSet *retired = NULL;

/* A feed_rules row, as text. */
typedef struct RuleRow
{
	int64		rule_id;
	Oid			source;
	char	   *name;
	char	   *condition;
	char	   *channel;
	char	   *delivery;
	char	   *on_update;
	bool		enabled;
} RuleRow;

/* ---------------------------------------------------------------------
 * Compiling a condition
 * ---------------------------------------------------------------------
 */

typedef struct ConditionContext
{
	const char *rule_name;
	const char *table_name;
	const char *condition;
} ConditionContext;

/*
 * Errors inside the condition point into the condition's text, shown as the
 * internal query, not into the INSERT that wrote the rule.
 */
static void
condition_error_callback(void *arg)
{
	ConditionContext *cc = (ConditionContext *) arg;
	int			pos = geterrposition();

	if (pos > 0)
	{
		errposition(0);
		internalerrposition(pos);
		internalerrquery(cc->condition);
	}
	errcontext("condition of feed rule \"%s\" on table \"%s\"",
			   cc->rule_name, cc->table_name);
}

static bool
reject_system_columns(Node *node, void *context)
{
	if (node == NULL)
		return false;
	if (IsA(node, Var) && ((Var *) node)->varattno < 0)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("feed rule conditions cannot use system columns"),
				 errhint("Use the table's own columns.")));
	return expression_tree_walker(node, reject_system_columns, context);
}

/*
 * Parse and analyse a condition against the source table; the result is a
 * planned boolean expression whose Vars (varno 1) read the scan tuple.
 * Errors are the parser's.
 */
static Expr *
compile_condition(Relation source, const char *rule_name,
				  const char *condition)
{
	ConditionContext cc;
	ErrorContextCallback errcb;
	List	   *raw;
	SelectStmt *select;
	ResTarget  *target;
	ParseState *pstate;
	ParseNamespaceItem *nsitem;
	Node	   *expr;
	int			guc_level;

	cc.rule_name = rule_name;
	cc.table_name = ss_table_name(source);
	cc.condition = condition;
	errcb.callback = condition_error_callback;
	errcb.arg = &cc;
	errcb.previous = error_context_stack;
	error_context_stack = &errcb;

	/*
	 * Names in a condition resolve the same for every backend and every
	 * caller, whatever their search_path: pg_catalog first, then the source
	 * table's own schema.  A look-alike operator or function in a schema
	 * earlier in someone's search_path is never picked up.
	 */
	guc_level = NewGUCNestLevel();
	(void) set_config_option("search_path",
							 psprintf("pg_catalog, %s, pg_temp",
									  quote_identifier(get_namespace_name(RelationGetNamespace(source)))),
							 PGC_USERSET, PGC_S_SESSION, GUC_ACTION_SAVE,
							 true, 0, false);

	/* PL/pgSQL's expression mode: a SELECT list without the SELECT. */
	raw = raw_parser(condition, RAW_PARSE_PLPGSQL_EXPR);
	select = (SelectStmt *) ((RawStmt *) linitial(raw))->stmt;
	if (!IsA(select, SelectStmt) || list_length(select->targetList) != 1 ||
		select->fromClause != NIL || select->whereClause != NULL ||
		select->groupClause != NIL || select->havingClause != NULL ||
		select->windowClause != NIL || select->sortClause != NIL ||
		select->distinctClause != NIL || select->limitCount != NULL ||
		select->limitOffset != NULL || select->lockingClause != NIL ||
		((ResTarget *) linitial(select->targetList))->name != NULL)
		ereport(ERROR,
				(errcode(ERRCODE_SYNTAX_ERROR),
				 errmsg("condition of feed rule \"%s\" is not a single expression",
						rule_name),
				 errdetail("A condition is one boolean expression over the table's columns, such as c2 > 9999."),
				 errhint("Combine tests with AND and OR; leave out SELECT, FROM, WHERE and AS.")));
	target = (ResTarget *) linitial(select->targetList);

	pstate = make_parsestate(NULL);
	pstate->p_sourcetext = condition;
	nsitem = addRangeTableEntryForRelation(pstate, source, AccessShareLock,
										   NULL, false, false);
	addNSItemToQuery(pstate, nsitem, true, true, true);

	/* A trigger's WHEN clause has the same restrictions as a condition. */
	expr = transformExpr(pstate, target->val, EXPR_KIND_TRIGGER_WHEN);
	expr = coerce_to_boolean(pstate, expr, "a feed rule condition");
	assign_expr_collations(pstate, expr);
	(void) reject_system_columns(expr, NULL);
	free_parsestate(pstate);
	expr = (Node *) expression_planner((Expr *) expr);
	AtEOXact_GUC(true, guc_level);

	error_context_stack = errcb.previous;
	return (Expr *) expr;
}

/* ---------------------------------------------------------------------
 * Reading feed_rules rows
 * ---------------------------------------------------------------------
 */

static AttrNumber
rules_attnum(TupleDesc desc, const char *name)
{
	return ss_extension_attnum(desc, "feed_rules", name);
}

static char *
text_column(HeapTuple tuple, TupleDesc desc, const char *name)
{
	bool		isnull;
	Datum		d = heap_getattr(tuple, rules_attnum(desc, name), desc, &isnull);

	return isnull ? NULL : TextDatumGetCString(d);
}

static void
read_rule_row(HeapTuple tuple, TupleDesc desc, RuleRow *row)
{
	bool		isnull;
	Datum		d;

	d = heap_getattr(tuple, rules_attnum(desc, "rule_id"), desc, &isnull);
	row->rule_id = isnull ? 0 : DatumGetInt64(d);
	d = heap_getattr(tuple, rules_attnum(desc, "source"), desc, &isnull);
	row->source = isnull ? InvalidOid : DatumGetObjectId(d);
	row->name = text_column(tuple, desc, "name");
	row->condition = text_column(tuple, desc, "condition");
	row->channel = text_column(tuple, desc, "channel");
	row->delivery = text_column(tuple, desc, "delivery");
	row->on_update = text_column(tuple, desc, "on_update");
	d = heap_getattr(tuple, rules_attnum(desc, "enabled"), desc, &isnull);
	row->enabled = !isnull && DatumGetBool(d);
}

/* ---------------------------------------------------------------------
 * check_feed_rule(): BEFORE INSERT OR UPDATE OR DELETE on feed_rules
 * ---------------------------------------------------------------------
 */

/* Only the owner of a table (or a superuser) may write rules for it. */
static void
require_owner(Oid source, const char *rule_name)
{
	if (get_rel_name(source) == NULL)
		return;					/* the table is gone: a leftover rule */
	if (!ss_pg_class_ownercheck(source, GetUserId()))
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("must be owner of table \"%s\" to change its feed rule \"%s\"",
						ss_relid_name(source), rule_name ? rule_name : ""),
				 errhint("Ask the table's owner or a superuser to write the rule.")));
}

static void
check_rule_row(const RuleRow *row)
{
	Relation	source;

	/* NOT NULL constraints run after BEFORE triggers: let them speak. */
	if (row->name == NULL || row->condition == NULL || row->channel == NULL ||
		row->delivery == NULL || row->on_update == NULL ||
		!OidIsValid(row->source))
		return;

	if (row->name[0] == '\0' || strlen(row->name) >= NAMEDATALEN)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid feed rule name \"%s\"", row->name),
				 errdetail("A rule name has 1 to %d bytes; it travels in every alert.",
						   NAMEDATALEN - 1)));
	notify_check_route("feed rule", row->name, row->channel, row->delivery);
	if (strcmp(row->on_update, "always") != 0 &&
		strcmp(row->on_update, "edge") != 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid on_update \"%s\" for feed rule \"%s\"",
						row->on_update, row->name),
				 errhint("Valid values are \"always\" and \"edge\".")));

	source = table_open(row->source, AccessShareLock);
	if (source->rd_rel->relkind != RELKIND_RELATION)
		ereport(ERROR,
				(errcode(ERRCODE_WRONG_OBJECT_TYPE),
				 errmsg("feed rule \"%s\" cannot watch \"%s\"",
						row->name, ss_table_name(source)),
				 errdetail("Feed rules apply to plain tables only."),
				 errhint("For a partitioned table, write the rules for each partition.")));
	(void) compile_condition(source, row->name, row->condition);
	table_close(source, AccessShareLock);
}

Datum
ss_check_feed_rule(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = (TriggerData *) fcinfo->context;
	TupleDesc	desc;
	RuleRow		row;

	if (!CALLED_AS_TRIGGER(fcinfo) ||
		!TRIGGER_FIRED_BEFORE(trigdata->tg_event) ||
		!TRIGGER_FIRED_FOR_ROW(trigdata->tg_event))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("check_feed_rule() must be fired BEFORE ... FOR EACH ROW on session_stream.feed_rules")));
	desc = RelationGetDescr(trigdata->tg_relation);

	/* The old row's table: its owner must agree to losing the rule. */
	if (!TRIGGER_FIRED_BY_INSERT(trigdata->tg_event))
	{
		read_rule_row(trigdata->tg_trigtuple, desc, &row);
		if (OidIsValid(row.source))
			require_owner(row.source, row.name);
	}
	if (TRIGGER_FIRED_BY_DELETE(trigdata->tg_event))
		return PointerGetDatum(trigdata->tg_trigtuple);

	read_rule_row(TRIGGER_FIRED_BY_INSERT(trigdata->tg_event) ?
				  trigdata->tg_trigtuple : trigdata->tg_newtuple,
				  desc, &row);
	if (OidIsValid(row.source))
		require_owner(row.source, row.name);
	check_rule_row(&row);

	return PointerGetDatum(TRIGGER_FIRED_BY_INSERT(trigdata->tg_event) ?
						   trigdata->tg_trigtuple : trigdata->tg_newtuple);
}

/* AFTER ... FOR EACH STATEMENT on feed_rules: every backend recompiles. */
Datum
ss_invalidate_feed_rules(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = (TriggerData *) fcinfo->context;

	if (!CALLED_AS_TRIGGER(fcinfo))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("invalidate_feed_rules() was not called by the trigger manager")));
	CacheInvalidateRelcache(trigdata->tg_relation);
	return PointerGetDatum(NULL);
}

/* ---------------------------------------------------------------------
 * The per-backend cache
 * ---------------------------------------------------------------------
 */

static void
invalidate_callback(Datum arg, Oid relid)
{
	HASH_SEQ_STATUS status;
	RuleSetEntry *entry;

	if (rule_sets == NULL)
		return;
	if (!OidIsValid(relid) || relid == feed_rules_relid)
	{
		hash_seq_init(&status, rule_sets);
		while ((entry = hash_seq_search(&status)) != NULL)
			entry->valid = false;
		invalidations++;
		return;
	}
	entry = hash_search(rule_sets, &relid, HASH_FIND, NULL);
	if (entry != NULL)
	{
		entry->valid = false;
		invalidations++;
	}
}

/* Called at transaction end: nothing is being evaluated any more. */
void
rules_release_retired(void)
{
	while (retired != NULL)
	{
		SSRuleSet  *next = retired->next_retired;

		MemoryContextDelete(retired->context);
		retired = next;
	}
}

static int
compare_rule_rows(const void *a, const void *b)
{
	int64		x = ((const RuleRow *) a)->rule_id;
	int64		y = ((const RuleRow *) b)->rule_id;

	return x < y ? -1 : (x > y ? 1 : 0);
}

/* The enabled rules of a source, ordered by rule_id, read now. */
static RuleRow *
read_rules(Oid source, int *count)
{
	Relation	rel;
	TableScanDesc scan;
	TupleTableSlot *slot;
	Snapshot	snapshot;
	RuleRow    *rows = NULL;
	int			n = 0;
	int			allocated = 0;

	feed_rules_relid = get_relname_relid(SS_RULES_TABLE,
										 get_namespace_oid(SS_SCHEMA, false));
	if (!OidIsValid(feed_rules_relid))
		elog(ERROR, "table session_stream.feed_rules is missing");

	/* A fresh snapshot even in REPEATABLE READ: the cache outlives us. */
	rel = table_open(feed_rules_relid, AccessShareLock);
	snapshot = RegisterSnapshot(GetLatestSnapshot());
	scan = table_beginscan(rel, snapshot, 0, NULL);
	slot = table_slot_create(rel, NULL);
	while (table_scan_getnextslot(scan, ForwardScanDirection, slot))
	{
		bool		should_free;
		HeapTuple	tuple = ExecFetchSlotHeapTuple(slot, false, &should_free);
		RuleRow		row;

		read_rule_row(tuple, RelationGetDescr(rel), &row);
		if (should_free)
			heap_freetuple(tuple);
		if (row.source != source || !row.enabled)
			continue;
		if (n == allocated)
		{
			allocated = allocated == 0 ? 8 : allocated * 2;
			rows = rows == NULL ? palloc(allocated * sizeof(RuleRow)) :
				repalloc(rows, allocated * sizeof(RuleRow));
		}
		rows[n++] = row;
	}
	ExecDropSingleTupleTableSlot(slot);
	table_endscan(scan);
	UnregisterSnapshot(snapshot);
	table_close(rel, AccessShareLock);

	if (n > 1)
		qsort(rows, n, sizeof(RuleRow), compare_rule_rows);
	*count = n;
	return rows;
}

/* What compile_into_set() compiles, and where. */
typedef struct RuleCompilation
{
	Relation	source;
	SSRuleSet  *set;
	const RuleRow *row;
	SSRule	   *rule;
} RuleCompilation;

/* compile_into_set()'s part that may fail */
static void
compile_rule(void *arg)
{
	RuleCompilation *c = (RuleCompilation *) arg;
	const RuleRow *row = c->row;
	SSRule	   *rule = c->rule;
	Expr	   *expr = compile_condition(c->source, row->name, row->condition);
	MemoryContext old = MemoryContextSwitchTo(c->set->context);

	rule->rule_id = row->rule_id;
	rule->name = pstrdup(row->name);
	rule->channel = pstrdup(row->channel);
	rule->delivery = notify_parse_delivery(row->delivery);
	rule->edge = row->on_update != NULL && strcmp(row->on_update, "edge") == 0;
	rule->qual = ExecInitQual(list_make1(copyObject(expr)), NULL);
	MemoryContextSwitchTo(old);
}

/*
 * Compile one rule into set's context inside a subtransaction.  False, with
 * a WARNING, if it does not compile any more.
 */
static bool
compile_into_set(Relation source, SSRuleSet *set, const RuleRow *row,
				 SSRule *rule)
{
	RuleCompilation c = {source, set, row, rule};
	ErrorData  *edata = ss_in_subtransaction(compile_rule, &c);

	if (edata == NULL)
		return true;
	ereport(WARNING,
			(errcode(edata->sqlerrcode),
			 errmsg("feed rule \"%s\" on table \"%s\" is skipped",
					row->name, set->table_name),
			 errdetail("Its condition no longer compiles: %s", edata->message),
			 errhint("Fix or disable the rule: UPDATE session_stream.feed_rules SET condition = ... WHERE rule_id = " INT64_FORMAT ";",
					 row->rule_id)));
	FreeErrorData(edata);
	return false;
}

static SSRuleSet *
build_rule_set(Relation source)
{
	MemoryContext context;
	MemoryContext old;
	SSRuleSet  *set;
	RuleRow    *rows;
	int			nrows;
	int			i;

	rows = read_rules(RelationGetRelid(source), &nrows);

	context = AllocSetContextCreate(CacheMemoryContext,
									"session_stream feed rules",
									ALLOCSET_SMALL_SIZES);
	MemoryContextCopyAndSetIdentifier(context, RelationGetRelationName(source));
	old = MemoryContextSwitchTo(context);
	set = palloc0(sizeof(SSRuleSet));
	set->relid = RelationGetRelid(source);
	set->context = context;
	set->table_name = ss_table_name(source);
	set->rules = nrows > 0 ? palloc0(nrows * sizeof(SSRule)) : NULL;
	set->econtext = CreateStandaloneExprContext();
	MemoryContextSwitchTo(old);

	for (i = 0; i < nrows; i++)
	{
		if (compile_into_set(source, set, &rows[i], &set->rules[set->nrules]))
			set->nrules++;
	}
	return set;
}

/*
 * The compiled rules of a source table, built on first use and after any
 * invalidation.  The result stays usable until the end of the transaction.
 */
SSRuleSet *
rules_lookup(Relation source)
{
	Oid			relid = RelationGetRelid(source);
	RuleSetEntry *entry;
	SSRuleSet  *set;
	uint64		before;
	bool		found;

	if (rule_sets == NULL)
	{
		HASHCTL		ctl;

		ctl.keysize = sizeof(Oid);
		ctl.entrysize = sizeof(RuleSetEntry);
		ctl.hcxt = CacheMemoryContext;
		rule_sets = hash_create("session_stream feed rules", 16, &ctl,
								HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
		CacheRegisterRelcacheCallback(invalidate_callback, (Datum) 0);
	}

	entry = hash_search(rule_sets, &relid, HASH_ENTER, &found);
	if (!found)
	{
		entry->valid = false;
		entry->set = NULL;
	}
	if (entry->valid)
		return entry->set;

	/*
	 * Build, then install.  An invalidation arriving while we build (table
	 * locks accept them) leaves the new set in use for this call but marks
	 * it for another rebuild.
	 */
	before = invalidations;
	set = build_rule_set(source);
	entry = hash_search(rule_sets, &relid, HASH_ENTER, &found);
	if (found && entry->set != NULL)
	{
		entry->set->next_retired = retired;
		retired = entry->set;
	}
	entry->set = set;
	entry->valid = (invalidations == before);
	return set;
}
