/*-------------------------------------------------------------------------
 *
 * evaluate.c
 *	  evaluate_rules(): the AFTER INSERT OR UPDATE trigger that runs a feed
 *	  table's rules on every new or updated row and sends an alert for
 *	  each rule that fires.
 *
 * Two ways to attach it (session_stream.watch() does either):
 *
 *	  FOR EACH ROW, AFTER INSERT OR UPDATE: one call per row, the new row in
 *	  tg_trigslot (INSERT) or tg_newslot, the old one in tg_trigslot
 *	  (UPDATE).  INSERT ... ON CONFLICT DO UPDATE fires it as an UPDATE for
 *	  the rows that conflicted.
 *
 *	  FOR EACH STATEMENT with transition tables, one trigger per event:
 *	  AFTER INSERT REFERENCING NEW TABLE, AFTER UPDATE REFERENCING OLD TABLE
 *	  NEW TABLE.  One call per statement reads the rows from the tuplestores;
 *	  an UPDATE's old and new tables hold the rows in the same order.
 *
 * A rule fires for a row when its condition is true for the new row; with
 * on_update = 'edge' an UPDATE fires it only if the condition was not true
 * (false or NULL) for the old row.  The per-row cost when nothing fires is
 * a hash probe for the table's compiled rules and one ExecQual per rule; the
 * alert's JSON is only built for a rule that fires (notify.c).
 *
 *-------------------------------------------------------------------------
 */
#include "session_stream.h"

#include "commands/trigger.h"
#include "executor/executor.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "utils/memutils.h"
#include "utils/tuplestore.h"

PG_FUNCTION_INFO_V1(ss_evaluate_rules);

static TriggerData *
check_trigger_call(FunctionCallInfo fcinfo)
{
	TriggerData *trigdata = (TriggerData *) fcinfo->context;
	const char *problem = NULL;
	const char *hint = "Attach it with SELECT session_stream.watch('table'), or watch('table', per_statement => true) for bulk writes.";

	if (!CALLED_AS_TRIGGER(fcinfo))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("evaluate_rules() was not called by the trigger manager"),
				 errhint("%s", hint)));
	if (!TRIGGER_FIRED_AFTER(trigdata->tg_event))
		problem = "fired AFTER";
	else if (!TRIGGER_FIRED_BY_INSERT(trigdata->tg_event) &&
			 !TRIGGER_FIRED_BY_UPDATE(trigdata->tg_event))
		problem = "fired by INSERT or UPDATE";
	else if (TRIGGER_FIRED_FOR_STATEMENT(trigdata->tg_event) &&
			 trigdata->tg_newtable == NULL)
		problem = "FOR EACH ROW, or FOR EACH STATEMENT with REFERENCING NEW TABLE";
	if (problem != NULL)
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("trigger \"%s\" on table \"%s\" must be %s",
						trigdata->tg_trigger->tgname,
						ss_table_name(trigdata->tg_relation), problem),
				 errhint("%s", hint)));
	return trigdata;
}

/*
 * Run every rule on one row; old is the row before an UPDATE, NULL for an
 * INSERT.  Alerts are built in the per-tuple memory, reset afterwards.
 */
static void
evaluate_row(SSRuleSet *set, const char *op, TupleTableSlot *old,
			 TupleTableSlot *new)
{
	ExprContext *econtext = set->econtext;
	int			i;

	for (i = 0; i < set->nrules; i++)
	{
		SSRule	   *rule = &set->rules[i];
		bool		fires;

		econtext->ecxt_scantuple = new;
		fires = ExecQual(rule->qual, econtext);
		if (fires && rule->edge && old != NULL)
		{
			econtext->ecxt_scantuple = old;
			fires = !ExecQual(rule->qual, econtext);
		}
		if (fires)
		{
			MemoryContext caller;

			caller = MemoryContextSwitchTo(econtext->ecxt_per_tuple_memory);
			notify_alert(set, rule, op, new);
			MemoryContextSwitchTo(caller);
		}
	}
	econtext->ecxt_scantuple = NULL;
	ResetExprContext(econtext);
}

static bool
any_edge_rule(const SSRuleSet *set)
{
	int			i;

	for (i = 0; i < set->nrules; i++)
		if (set->rules[i].edge)
			return true;
	return false;
}

/* A statement's rows, from its transition tables. */
static void
evaluate_statement(SSRuleSet *set, TriggerData *trigdata, const char *op)
{
	TupleDesc	desc = RelationGetDescr(trigdata->tg_relation);
	Tuplestorestate *olds = NULL;
	TupleTableSlot *new_slot;
	TupleTableSlot *old_slot = NULL;

	if (TRIGGER_FIRED_BY_UPDATE(trigdata->tg_event) && any_edge_rule(set))
	{
		olds = trigdata->tg_oldtable;
		if (olds == NULL)
			ereport(ERROR,
					(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
					 errmsg("trigger \"%s\" on table \"%s\" has no OLD TABLE for its edge rules",
							trigdata->tg_trigger->tgname,
							ss_table_name(trigdata->tg_relation)),
					 errhint("Attach it with SELECT session_stream.watch('%s', per_statement => true).",
							 ss_table_name(trigdata->tg_relation))));
		old_slot = MakeSingleTupleTableSlot(desc, &TTSOpsMinimalTuple);
		tuplestore_rescan(olds);
	}
	new_slot = MakeSingleTupleTableSlot(desc, &TTSOpsMinimalTuple);
	tuplestore_rescan(trigdata->tg_newtable);

	while (tuplestore_gettupleslot(trigdata->tg_newtable, true, false, new_slot))
	{
		if (olds != NULL &&
			!tuplestore_gettupleslot(olds, true, false, old_slot))
			elog(ERROR, "transition tables of trigger \"%s\" differ in length",
				 trigdata->tg_trigger->tgname);
		evaluate_row(set, op, old_slot, new_slot);
		CHECK_FOR_INTERRUPTS();
	}

	ExecDropSingleTupleTableSlot(new_slot);
	if (old_slot != NULL)
		ExecDropSingleTupleTableSlot(old_slot);
}

Datum
ss_evaluate_rules(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = check_trigger_call(fcinfo);
	SSRuleSet  *set = rules_lookup(trigdata->tg_relation);
	const char *op;

	if (set->nrules == 0)
		return PointerGetDatum(NULL);
	if (set->busy)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("feed rules of table \"%s\" were invoked recursively",
						set->table_name),
				 errdetail("A rule's condition wrote to the table it watches.")));

	op = TRIGGER_FIRED_BY_INSERT(trigdata->tg_event) ? "INSERT" : "UPDATE";
	set->busy = true;
	PG_TRY();
	{
		if (TRIGGER_FIRED_FOR_STATEMENT(trigdata->tg_event))
			evaluate_statement(set, trigdata, op);
		else if (TRIGGER_FIRED_BY_INSERT(trigdata->tg_event))
			evaluate_row(set, op, NULL, trigdata->tg_trigslot);
		else
			evaluate_row(set, op, trigdata->tg_trigslot, trigdata->tg_newslot);
	}
	PG_FINALLY();
	{
		set->busy = false;
	}
	PG_END_TRY();

	return PointerGetDatum(NULL);
}
