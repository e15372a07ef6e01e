/*-------------------------------------------------------------------------
 *
 * slas.c
 *	  check_slas(): for every enabled SLA policy, one alert for every
 *	  session that missed its deadline: "breached" if a call saw it still
 *	  open after the deadline, "answered_late" if it was answered after
 *	  the deadline before any call saw it open.
 *
 * A policy (session_stream.sla_policies, checked by sla_policies.c) gives
 * a results set, a target and perhaps a calendar; a session's deadline is
 * opened_at + target, or business_deadline(calendar, opened_at, target).
 * A session is (results set, key, opened_at): a late message that
 * rebuilds a key's sessions with other opening times makes new sessions.
 * A policy covers the sessions open when it starts (covers_from) and all
 * later ones; sessions answered before covers_from raise nothing.
 *
 * What has to be cheap.  A call is made every minute or so, with millions
 * of sessions stored and few changed since the previous call, so a call
 * must cost what changed, not what is stored.  Sessions change in two
 * ways a scan by time cannot see: a deferred results set gets a window of
 * sessions at once, opened up to a window ago, and a late message (or an
 * edit) rebuilds a key's sessions with old opening times.  Either can
 * write a session whose deadline passed before the previous call.  So the
 * writers say what they wrote, in a queue, session_stream.sla_pending:
 *
 *	  writers (results.c, via sla_policies.c) queue, per enabled policy,
 *	  each session they open, and each they answer later than opened_at +
 *	  target; the row is due at opened_at + target, which is never after
 *	  the deadline (business time passes no faster than real time).
 *	  Sessions answered in time are not queued when they close.
 *
 * A call then takes the rows that are due (an index range scan on due:
 * nothing, when nothing is due), and for each:
 *
 *	  1. computes the deadline (with the calendar as it is now); if it is
 *		 still ahead, the row goes back with due = deadline;
 *	  2. looks the session up: open in NAME_latest with that opened_at ->
 *		 breached; in NAME_closed answered after the deadline and not
 *		 before covers_from -> answered_late; else (answered in time, or
 *		 gone: rebuilt, erased) nothing;
 *	  3. inserts the miss into session_stream.sla_misses, whose unique
 *		 index on (policy, results set, key, opened_at) says whether it was
 *		 raised before: INSERT ... ON CONFLICT DO NOTHING RETURNING, and
 *		 only the rows inserted alert.
 *
 * Exactly once.  The unique index is what makes it so, whatever the
 * queue holds: a session queued twice (opened, then answered late;
 * rewritten by a replay; queued by a writer and by a start) is raised by
 * the first row only.  Two calls at once take disjoint rows (FOR UPDATE
 * SKIP LOCKED); if both reach the same session, the second insert waits
 * for the first transaction and then does nothing (or raises it, if the
 * first rolled back).  The alert is sent in the same transaction as the
 * sla_misses row (NOTIFY at commit, an outbox row with it), so a call
 * that fails or rolls back raises nothing, and its rows are due again.
 *
 * Starting a policy.  A new policy (or one whose results, target or
 * covers_from changed, as sla_starts tells) must also cover what was
 * written before the writers knew about it: the sessions open now, and
 * those answered late since covers_from.  check_slas() queues them in one
 * pass over NAME_latest and NAME_closed, with a snapshot taken once the
 * writers running at that moment are done (WaitForLockers(), as CREATE
 * INDEX CONCURRENTLY waits): a writer that took its locks before the
 * policy committed may still be writing without queueing (its cache is
 * stale until it takes a new lock), while every later writer takes its
 * locks after the policy committed, so it knows the policy and queues for
 * itself.  New writers are never held up.  That costs one scan of the
 * results set per policy change.  After a restore (the queue and
 * sla_starts are not dumped) every policy is started again; sla_misses is
 * dumped, so nothing is raised twice.
 *
 * A policy that cannot be checked (its results set or calendar was
 * dropped) is skipped with a WARNING and its rows wait in the queue; the
 * other policies go on.  Rows of disabled or deleted policies are dropped
 * when due (enabling a policy starts it anew).
 *
 * Alerts go the way feed rule alerts go (notify.c: notify, outbox or both,
 * the 8000-byte fallback, never failing the call):
 *
 *	  {"policy":"first_reply","event":"breached",
 *	   "results":"session_stream.sessions","customer_id":42,
 *	   "responder_id":null,"opened_at":"2024-05-01T09:00:00+00:00",
 *	   "deadline":"2024-05-01T09:30:00+00:00","answered_at":null}
 *
 * with "agent_id" (the pair's agent) instead of "responder_id" in pair
 * mode.  "Now" is the calling transaction's start, now().
 *
 * Worked example.  Policy first_reply, 30 minutes, no calendar, on
 * session_stream.sessions.  Customer 1 writes at 09:00 (its session is
 * queued, due 09:30), customer 2 at 09:10 (due 09:40), agent 7 answers 2
 * at 09:50 (answered 40 minutes after opening, over the target: queued
 * again, due 09:40).  A call at 09:35 takes customer 1's row: open, past
 * its deadline: breached.  A call at 10:00 takes customer 2's two rows:
 * answered at 09:50, after 09:40: answered_late, raised by the first row;
 * the second finds the sla_misses row and raises nothing.  If agent 7 now
 * answers customer 1, that session is queued again (late), and the next
 * call finds it raised already.
 *
 *-------------------------------------------------------------------------
 */
#include "session_stream.h"

#include "access/xact.h"
#include "catalog/pg_type.h"
#include "common/int.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "storage/lmgr.h"
#include "storage/lock.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/json.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/resowner.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"

PG_FUNCTION_INFO_V1(ss_check_slas);

/* Due rows taken from the queue at a time. */
#define SS_SLA_BATCH 100000

/* field4 of the advisory lock serialising the start of one policy */
#define SS_SLA_LOCK_CLASS 0x534C

/* An enabled policy, as the call reads it. */
typedef struct Policy
{
	int64		policy_id;
	char	   *name;
	Oid			results;
	Interval	target;
	int64		target_usecs;
	char	   *calendar;		/* NULL: around the clock */
	SSAlertRoute route;
	TimestampTz covers_from;
	bool		needs_start;	/* sla_starts does not match */

	bool		usable;			/* results set and calendar are there */
	SSSlaResultsSet rs;
	SSCalendar *cal;
	char	   *latest_name;	/* quoted, qualified */
	char	   *closed_name;
} Policy;

/* A queue row taken. */
typedef struct DueRow
{
	int64		policy_id;
	Oid			results;
	int64		customer_id;
	int64		agent_id;
	bool		has_agent;
	TimestampTz opened_at;
	TimestampTz deadline;		/* computed */
} DueRow;

/* ---------------------------------------------------------------------
 * SPI helpers: every statement is schema-qualified and uses
 * OPERATOR(pg_catalog.x), so search_path matters not.
 * ---------------------------------------------------------------------
 */

/*
 * Run a statement; with a snapshot, as of that snapshot (a policy's start
 * reads what the writers it waited for committed, whatever the isolation
 * level).
 */
static int
run(const char *sql, int nargs, Oid *types, Datum *values,
	const char *nulls, Snapshot snapshot, int expected)
{
	int			rc;

	if (snapshot == InvalidSnapshot)
		rc = SPI_execute_with_args(sql, nargs, types, values, nulls, false, 0);
	else
	{
		SPIPlanPtr	plan = SPI_prepare(sql, nargs, types);

		if (plan == NULL)
			elog(ERROR, "SPI_prepare failed: %s", SPI_result_code_string(SPI_result));
		rc = SPI_execute_snapshot(plan, values, nulls, snapshot,
								  InvalidSnapshot, false, true, 0);
		SPI_freeplan(plan);
	}
	if (rc != expected)
		elog(ERROR, "SPI_execute failed: %s: %s", SPI_result_code_string(rc), sql);
	return (int) SPI_processed;
}

static Datum
column(int row, int col, bool *isnull)
{
	return SPI_getbinval(SPI_tuptable->vals[row], SPI_tuptable->tupdesc, col,
						 isnull);
}

static char *
text_or_null(int row, int col)
{
	bool		isnull;
	Datum		d = column(row, col, &isnull);

	return isnull ? NULL : TextDatumGetCString(d);
}

static Datum
interval_datum(int64 usecs)
{
	Interval   *span = palloc0(sizeof(Interval));

	span->time = usecs;
	return IntervalPGetDatum(span);
}

/* ---------------------------------------------------------------------
 * The policies
 * ---------------------------------------------------------------------
 */

/* The enabled policies, by policy_id, and whether each must be started. */
static Policy *
read_policies(int *count)
{
	int			n;
	int			i;
	Policy	   *policies;

	n = run("SELECT p.policy_id, p.name, p.results, p.target, p.calendar,"
			"       p.channel, p.delivery, p.covers_from,"
			"       s.policy_id IS NULL"
			"       OR s.results OPERATOR(pg_catalog.<>) p.results"
			"       OR s.target OPERATOR(pg_catalog.<>) p.target"
			"       OR s.covers_from OPERATOR(pg_catalog.<>) p.covers_from"
			"  FROM session_stream.sla_policies p"
			"  LEFT JOIN session_stream.sla_starts s"
			"         ON s.policy_id OPERATOR(pg_catalog.=) p.policy_id"
			" WHERE p.enabled"
			" ORDER BY p.policy_id",
			0, NULL, NULL, NULL, InvalidSnapshot, SPI_OK_SELECT);
	policies = palloc0(Max(n, 1) * sizeof(Policy));
	for (i = 0; i < n; i++)
	{
		Policy	   *p = &policies[i];
		bool		isnull;

		p->policy_id = DatumGetInt64(column(i, 1, &isnull));
		p->name = text_or_null(i, 2);
		p->results = DatumGetObjectId(column(i, 3, &isnull));
		p->target = *DatumGetIntervalP(column(i, 4, &isnull));
		p->target_usecs = sla_policies_target_usecs(&p->target);
		p->calendar = text_or_null(i, 5);
		p->route.kind = "policy";
		p->route.name = p->name;
		p->route.channel = text_or_null(i, 6);
		p->route.delivery = notify_parse_delivery(text_or_null(i, 7));
		p->covers_from = DatumGetTimestampTz(column(i, 8, &isnull));
		p->needs_start = DatumGetBool(column(i, 9, &isnull));
	}
	*count = n;
	return policies;
}

/* prepare_policy()'s part that may fail */
static void
find_policy_tables(void *arg)
{
	Policy	   *p = (Policy *) arg;

	if (p->target_usecs <= 0 || p->route.delivery == 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid target or delivery")));
	sla_policies_results_set(p->results, &p->rs);
	p->cal = p->calendar != NULL ? calendar_lookup(p->calendar) : NULL;
	p->latest_name = ss_relid_name(p->rs.latest);
	p->closed_name = ss_relid_name(p->rs.closed);
}

/*
 * Find the policy's results set and calendar, or skip it with a WARNING
 * (in a subtransaction: a dropped results set must not stop the others).
 */
static void
prepare_policy(Policy *p)
{
	ErrorData  *edata = ss_in_subtransaction(find_policy_tables, p);

	p->usable = edata == NULL;
	if (edata == NULL)
		return;
	ereport(WARNING,
			(errcode(edata->sqlerrcode),
			 errmsg("SLA policy \"%s\" is skipped", p->name),
			 errdetail("%s", edata->message),
			 errhint("Its sessions wait in session_stream.sla_pending until the policy is fixed, disabled or deleted.")));
	FreeErrorData(edata);
}

/*
 * Start a policy: queue the sessions open now and those answered late
 * since covers_from, once the writers that may not know the policy are
 * done (see the header comment), and record the start.
 */
static void
start_policy(Policy *p)
{
	LOCKTAG		tag;
	LOCKTAG		latest_tag;
	LOCKTAG		closed_tag;
	Snapshot	snapshot;
	Oid			types[4] = {INT8OID, REGCLASSOID, INTERVALOID, TIMESTAMPTZOID};
	Datum		values[4];
	bool		pair = p->rs.mode == SS_MODE_PAIR;

	/* one start of a policy at a time */
	SET_LOCKTAG_ADVISORY(tag, MyDatabaseId, (uint32) (p->policy_id >> 32),
						 (uint32) p->policy_id, SS_SLA_LOCK_CLASS);
	(void) LockAcquire(&tag, ExclusiveLock, false, false);

	/*
	 * Wait out the writers of the results set that are running now: one of
	 * them may not know the policy.  Those that come later take their locks
	 * after the policy committed, and know it.
	 */
	SET_LOCKTAG_RELATION(latest_tag, MyDatabaseId, p->rs.latest);
	SET_LOCKTAG_RELATION(closed_tag, MyDatabaseId, p->rs.closed);
	WaitForLockersMultiple(list_make2(&latest_tag, &closed_tag), ShareLock, false);
	CommandCounterIncrement();
	snapshot = RegisterSnapshot(GetLatestSnapshot());

	values[0] = Int64GetDatum(p->policy_id);
	values[1] = ObjectIdGetDatum(p->results);
	values[2] = IntervalPGetDatum(&p->target);
	values[3] = TimestampTzGetDatum(p->covers_from);

	/* started by another call while we waited? */
	if (run("SELECT 1 FROM session_stream.sla_starts s"
			" WHERE s.policy_id OPERATOR(pg_catalog.=) $1"
			"   AND s.results OPERATOR(pg_catalog.=) $2"
			"   AND s.target OPERATOR(pg_catalog.=) $3"
			"   AND s.covers_from OPERATOR(pg_catalog.=) $4",
			4, types, values, NULL, snapshot, SPI_OK_SELECT) > 0)
	{
		UnregisterSnapshot(snapshot);
		return;
	}

	/* due = opened_at + target, in plain microseconds */
	values[2] = interval_datum(p->target_usecs);
	run(psprintf("INSERT INTO session_stream.sla_pending"
				 "       (policy_id, results, customer_id, agent_id, opened_at, due)"
				 " SELECT $1, $2, l.customer_id, %s, l.opened_at,"
				 "        l.opened_at OPERATOR(pg_catalog.+) $3"
				 "   FROM %s l"
				 "  WHERE l.answered_at IS NULL",
				 pair ? "l.agent_id" : "NULL",
				 p->latest_name),
		3, types, values, NULL, snapshot, SPI_OK_INSERT);
	run(psprintf("INSERT INTO session_stream.sla_pending"
				 "       (policy_id, results, customer_id, agent_id, opened_at, due)"
				 " SELECT $1, $2, c.customer_id, %s, c.opened_at,"
				 "        c.opened_at OPERATOR(pg_catalog.+) $3"
				 "   FROM %s c"
				 "  WHERE c.answered_at OPERATOR(pg_catalog.>=) $4"
				 "    AND (c.answered_at OPERATOR(pg_catalog.-) c.opened_at)"
				 "        OPERATOR(pg_catalog.>) $3",
				 pair ? "c.agent_id" : "NULL",
				 p->closed_name),
		4, types, values, NULL, snapshot, SPI_OK_INSERT);

	values[2] = IntervalPGetDatum(&p->target);
	run("INSERT INTO session_stream.sla_starts AS s"
		"       (policy_id, results, target, covers_from, started_at)"
		" VALUES ($1, $2, $3, $4, pg_catalog.now())"
		" ON CONFLICT (policy_id) DO UPDATE"
		"   SET results = excluded.results, target = excluded.target,"
		"       covers_from = excluded.covers_from, started_at = excluded.started_at",
		4, types, values, NULL, snapshot, SPI_OK_INSERT);
	UnregisterSnapshot(snapshot);
}

/* ---------------------------------------------------------------------
 * Taking due rows and judging them
 * ---------------------------------------------------------------------
 */

/*
 * Take up to SS_SLA_BATCH due rows (not of the skipped policies) off the
 * queue, rows another call holds left to it.  *from is where the
 * previous batch of this call ended: the rows it deleted are still in the
 * index until we commit, and scanning past them again and again would
 * make a large backlog cost its square.
 */
static DueRow *
take_due(TimestampTz now, ArrayType *skipped, TimestampTz *from, int *count)
{
	Oid			types[4] = {TIMESTAMPTZOID, INT8ARRAYOID, INT4OID, TIMESTAMPTZOID};
	Datum		values[4];
	DueRow	   *rows;
	int			n;
	int			i;

	values[0] = TimestampTzGetDatum(now);
	values[1] = PointerGetDatum(skipped);
	values[2] = Int32GetDatum(SS_SLA_BATCH);
	values[3] = TimestampTzGetDatum(*from);
	n = run("DELETE FROM session_stream.sla_pending q"
			" WHERE q.ctid OPERATOR(pg_catalog.=) ANY (ARRAY("
			"       SELECT p.ctid FROM session_stream.sla_pending p"
			"        WHERE p.due OPERATOR(pg_catalog.<=) $1"
			"          AND p.due OPERATOR(pg_catalog.>=) $4"
			"          AND p.policy_id OPERATOR(pg_catalog.<>) ALL ($2)"
			"        ORDER BY p.due"
			"        LIMIT $3"
			"          FOR UPDATE SKIP LOCKED))"
			" RETURNING q.policy_id, q.results, q.customer_id, q.agent_id,"
			"           q.opened_at, q.due",
			4, types, values, NULL, InvalidSnapshot, SPI_OK_DELETE_RETURNING);
	rows = palloc(Max(n, 1) * sizeof(DueRow));
	for (i = 0; i < n; i++)
	{
		bool		isnull;
		Datum		agent;
		TimestampTz due;

		rows[i].policy_id = DatumGetInt64(column(i, 1, &isnull));
		rows[i].results = DatumGetObjectId(column(i, 2, &isnull));
		rows[i].customer_id = DatumGetInt64(column(i, 3, &isnull));
		agent = column(i, 4, &isnull);
		rows[i].has_agent = !isnull;
		rows[i].agent_id = isnull ? 0 : DatumGetInt64(agent);
		rows[i].opened_at = DatumGetTimestampTz(column(i, 5, &isnull));
		due = DatumGetTimestampTz(column(i, 6, &isnull));
		if (due > *from)
			*from = due;
	}
	SPI_freetuptable(SPI_tuptable);
	*count = n;
	return rows;
}

static int
compare_due_rows(const void *a, const void *b)
{
	const DueRow *x = (const DueRow *) a;
	const DueRow *y = (const DueRow *) b;

	if (x->policy_id != y->policy_id)
		return x->policy_id < y->policy_id ? -1 : 1;
	if (x->opened_at != y->opened_at)
		return x->opened_at < y->opened_at ? -1 : 1;
	if (x->customer_id != y->customer_id)
		return x->customer_id < y->customer_id ? -1 : 1;
	return 0;
}

/*
 * The rows as four arrays, $first .. $first + 3 of a statement:
 * customer_id, agent_id (NULL in customer mode), opened_at, and deadline
 * (or due, for rows going back).
 */
static void
rows_as_arrays(DueRow **rows, int n, Datum *values)
{
	Datum	   *customers = palloc(n * sizeof(Datum));
	Datum	   *agents = palloc(n * sizeof(Datum));
	bool	   *agent_nulls = palloc(n * sizeof(bool));
	Datum	   *opened = palloc(n * sizeof(Datum));
	Datum	   *deadlines = palloc(n * sizeof(Datum));
	int			dims[1] = {n};
	int			lbs[1] = {1};
	int			i;

	for (i = 0; i < n; i++)
	{
		customers[i] = Int64GetDatum(rows[i]->customer_id);
		agents[i] = Int64GetDatum(rows[i]->agent_id);
		agent_nulls[i] = !rows[i]->has_agent;
		opened[i] = TimestampTzGetDatum(rows[i]->opened_at);
		deadlines[i] = TimestampTzGetDatum(rows[i]->deadline);
	}
	values[0] = PointerGetDatum(construct_array(customers, n, INT8OID, 8,
												FLOAT8PASSBYVAL, TYPALIGN_DOUBLE));
	values[1] = PointerGetDatum(construct_md_array(agents, agent_nulls, 1, dims, lbs,
												   INT8OID, 8, FLOAT8PASSBYVAL,
												   TYPALIGN_DOUBLE));
	values[2] = PointerGetDatum(construct_array(opened, n, TIMESTAMPTZOID, 8,
												FLOAT8PASSBYVAL, TYPALIGN_DOUBLE));
	values[3] = PointerGetDatum(construct_array(deadlines, n, TIMESTAMPTZOID, 8,
												FLOAT8PASSBYVAL, TYPALIGN_DOUBLE));
	pfree(customers);
	pfree(agents);
	pfree(agent_nulls);
	pfree(opened);
	pfree(deadlines);
}

static void
free_arrays(Datum *values)
{
	int			i;

	for (i = 0; i < 4; i++)
		pfree(DatumGetPointer(values[i]));
}

/* Rows whose deadline is still ahead go back, due at the deadline. */
static void
requeue(const Policy *p, DueRow **rows, int n)
{
	Oid			types[6] = {INT8OID, REGCLASSOID, INT8ARRAYOID, INT8ARRAYOID,
	TIMESTAMPTZARRAYOID, TIMESTAMPTZARRAYOID};
	Datum		values[6];

	if (n == 0)
		return;
	values[0] = Int64GetDatum(p->policy_id);
	values[1] = ObjectIdGetDatum(p->results);
	rows_as_arrays(rows, n, &values[2]);
	run("INSERT INTO session_stream.sla_pending"
		"       (policy_id, results, customer_id, agent_id, opened_at, due)"
		" SELECT $1, $2, d.customer_id, d.agent_id, d.opened_at, d.due"
		"   FROM ROWS FROM (pg_catalog.unnest($3), pg_catalog.unnest($4),"
		"                   pg_catalog.unnest($5), pg_catalog.unnest($6))"
		"        AS d(customer_id, agent_id, opened_at, due)",
		6, types, values, NULL, InvalidSnapshot, SPI_OK_INSERT);
	free_arrays(&values[2]);
}

static void
append_time(StringInfo buf, const char *key, bool isnull, Datum value)
{
	appendStringInfo(buf, ",\"%s\":", key);
	if (isnull)
		appendStringInfoString(buf, "null");
	else
		appendStringInfo(buf, "\"%s\"",
						 JsonEncodeDateTime(NULL, value, TIMESTAMPTZOID, NULL));
}

/* Send the alert of row `row` of the judging statement's result. */
static void
deliver(const Policy *p, int row)
{
	StringInfoData alert;
	bool		isnull;
	Datum		d;

	initStringInfo(&alert);
	appendStringInfoString(&alert, "{\"policy\":");
	escape_json(&alert, p->name);
	appendStringInfoString(&alert, ",\"event\":");
	escape_json(&alert, text_or_null(row, 4));
	appendStringInfoString(&alert, ",\"results\":");
	escape_json(&alert, p->rs.name);
	appendStringInfo(&alert, ",\"customer_id\":" INT64_FORMAT,
					 DatumGetInt64(column(row, 1, &isnull)));
	d = column(row, p->rs.mode == SS_MODE_PAIR ? 2 : 7, &isnull);
	appendStringInfo(&alert, ",\"%s\":",
					 p->rs.mode == SS_MODE_PAIR ? "agent_id" : "responder_id");
	if (isnull)
		appendStringInfoString(&alert, "null");
	else
		appendStringInfo(&alert, INT64_FORMAT, DatumGetInt64(d));
	d = column(row, 3, &isnull);
	append_time(&alert, "opened_at", isnull, d);
	d = column(row, 5, &isnull);
	append_time(&alert, "deadline", isnull, d);
	d = column(row, 6, &isnull);
	append_time(&alert, "answered_at", isnull, d);
	appendStringInfoChar(&alert, '}');
	notify_deliver(&p->route, alert.data, alert.len);
}

/*
 * Judge the rows past their deadline: record and alert the misses not
 * raised before.  Returns the number raised.
 */
static int64
judge(const Policy *p, DueRow **rows, int n, TimestampTz now)
{
	Oid			types[8] = {INT8OID, REGCLASSOID, INT8ARRAYOID, INT8ARRAYOID,
		TIMESTAMPTZARRAYOID, TIMESTAMPTZARRAYOID, TIMESTAMPTZOID, TIMESTAMPTZOID};
	Datum		values[8];
	bool		pair = p->rs.mode == SS_MODE_PAIR;
	int			raised;
	int			guc_level;
	MemoryContext alert_context;
	int			i;

	if (n == 0)
		return 0;
	values[0] = Int64GetDatum(p->policy_id);
	values[1] = ObjectIdGetDatum(p->results);
	rows_as_arrays(rows, n, &values[2]);
	values[6] = TimestampTzGetDatum(now);
	values[7] = TimestampTzGetDatum(p->covers_from);

	/*
	 * Each row is one probe of each results table's primary key: what the
	 * call costs grows with the rows, not with the tables, as a hash or
	 * merge join reading them whole would make it.
	 */
	guc_level = NewGUCNestLevel();
	(void) set_config_option("enable_hashjoin", "off", PGC_USERSET, PGC_S_SESSION,
							 GUC_ACTION_SAVE, true, 0, false);
	(void) set_config_option("enable_mergejoin", "off", PGC_USERSET, PGC_S_SESSION,
							 GUC_ACTION_SAVE, true, 0, false);
	raised = run(psprintf(
						  "WITH raised AS ("
						  " INSERT INTO session_stream.sla_misses AS m"
						  "        (policy_id, results, customer_id, agent_id, opened_at,"
						  "         event, deadline, answered_at, responder_id, raised_at)"
						  " SELECT $1, $2, d.customer_id, d.agent_id, d.opened_at,"
						  "        CASE WHEN l.opened_at IS NOT NULL THEN 'breached'"
						  "             ELSE 'answered_late' END,"
						  "        d.deadline,"
						  "        CASE WHEN l.opened_at IS NULL THEN c.answered_at END,"
						  "        %s,"
						  "        $7"
						  "   FROM ROWS FROM (pg_catalog.unnest($3), pg_catalog.unnest($4),"
						  "                   pg_catalog.unnest($5), pg_catalog.unnest($6))"
						  "        AS d(customer_id, agent_id, opened_at, deadline)"
						  "   LEFT JOIN %s l"
						  "          ON l.customer_id OPERATOR(pg_catalog.=) d.customer_id"
						  "         %s"
						  "         AND l.opened_at OPERATOR(pg_catalog.=) d.opened_at"
						  "         AND l.answered_at IS NULL"
						  "   LEFT JOIN %s c"
						  "          ON c.customer_id OPERATOR(pg_catalog.=) d.customer_id"
						  "         %s"
						  "         AND c.opened_at OPERATOR(pg_catalog.=) d.opened_at"
						  "  WHERE l.opened_at IS NOT NULL"
						  "     OR (c.answered_at OPERATOR(pg_catalog.>) d.deadline"
						  "         AND c.answered_at OPERATOR(pg_catalog.>=) $8)"
						  " ON CONFLICT DO NOTHING"
						  " RETURNING m.customer_id, m.agent_id, m.opened_at, m.event,"
						  "           m.deadline, m.answered_at, m.responder_id)"
						  " SELECT * FROM raised"
						  "  ORDER BY opened_at, customer_id, agent_id",
						  pair ? "NULL::pg_catalog.int8"
						  : "CASE WHEN l.opened_at IS NULL THEN c.responder_id END",
						  p->latest_name,
						  pair ? "AND l.agent_id OPERATOR(pg_catalog.=) d.agent_id" : "",
						  p->closed_name,
						  pair ? "AND c.agent_id OPERATOR(pg_catalog.=) d.agent_id" : ""),
				 8, types, values, NULL, InvalidSnapshot, SPI_OK_SELECT);
	AtEOXact_GUC(true, guc_level);
	free_arrays(&values[2]);

	/* an alert's JSON, outbox row and so on are freed after it is sent */
	alert_context = AllocSetContextCreate(CurrentMemoryContext,
										  "check_slas alert",
										  ALLOCSET_DEFAULT_SIZES);
	for (i = 0; i < raised; i++)
	{
		MemoryContext old = MemoryContextSwitchTo(alert_context);

		deliver(p, i);
		MemoryContextSwitchTo(old);
		MemoryContextReset(alert_context);
	}
	MemoryContextDelete(alert_context);
	SPI_freetuptable(SPI_tuptable);
	return raised;
}

/*
 * The due rows of one policy: deadlines, then back to the queue or
 * judged.  Returns the number raised.
 */
static int64
check_rows(const Policy *p, DueRow *rows, int n, TimestampTz now)
{
	DueRow	  **later = palloc(n * sizeof(DueRow *));
	DueRow	  **past = palloc(n * sizeof(DueRow *));
	int			nlater = 0;
	int			npast = 0;
	int64		raised;
	int			i;

	for (i = 0; i < n; i++)
	{
		DueRow	   *row = &rows[i];

		if (row->results != p->results)
			continue;			/* queued before the policy moved */
		if (p->cal == NULL)
		{
			if (pg_add_s64_overflow(row->opened_at, p->target_usecs, &row->deadline))
				continue;
		}
		else if (!business_time_deadline(p->cal, row->opened_at, p->target_usecs,
									&row->deadline))
			continue;			/* a calendar with no hours: no deadline */
		if (row->deadline > now)
			later[nlater++] = row;
		else
			past[npast++] = row;
	}
	requeue(p, later, nlater);
	raised = judge(p, past, npast, now);
	pfree(later);
	pfree(past);
	return raised;
}

/* ---------------------------------------------------------------------
 * check_slas()
 * ---------------------------------------------------------------------
 */

static Policy *
find_policy(Policy *policies, int npolicies, int64 policy_id)
{
	int			low = 0;
	int			high = npolicies - 1;

	while (low <= high)
	{
		int			mid = (low + high) / 2;

		if (policies[mid].policy_id == policy_id)
			return &policies[mid];
		if (policies[mid].policy_id < policy_id)
			low = mid + 1;
		else
			high = mid - 1;
	}
	return NULL;
}

Datum
ss_check_slas(PG_FUNCTION_ARGS)
{
	TimestampTz now = GetCurrentTransactionStartTimestamp();
	Policy	   *policies;
	int			npolicies;
	Datum	   *skipped_ids;
	int			nskipped = 0;
	ArrayType  *skipped;
	int64		raised = 0;
	TimestampTz from = DT_NOBEGIN;
	int			i;

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");

	policies = read_policies(&npolicies);
	skipped_ids = palloc(Max(npolicies, 1) * sizeof(Datum));
	for (i = 0; i < npolicies; i++)
	{
		prepare_policy(&policies[i]);
		if (!policies[i].usable)
			skipped_ids[nskipped++] = Int64GetDatum(policies[i].policy_id);
		else if (policies[i].needs_start)
			start_policy(&policies[i]);
	}
	skipped = construct_array(skipped_ids, nskipped, INT8OID, 8,
							  FLOAT8PASSBYVAL, TYPALIGN_DOUBLE);

	for (;;)
	{
		DueRow	   *rows;
		int			n;
		int			start;

		CHECK_FOR_INTERRUPTS();
		rows = take_due(now, skipped, &from, &n);
		if (n > 1)
			qsort(rows, n, sizeof(DueRow), compare_due_rows);
		for (start = 0; start < n;)
		{
			Policy	   *p = find_policy(policies, npolicies, rows[start].policy_id);
			int			end = start;

			while (end < n && rows[end].policy_id == rows[start].policy_id)
				end++;
			/* rows of disabled or deleted policies just go */
			if (p != NULL && p->usable)
				raised += check_rows(p, &rows[start], end - start, now);
			start = end;
		}
		pfree(rows);
		if (n < SS_SLA_BATCH)
			break;
	}

	SPI_finish();
	PG_RETURN_INT64(raised);
}
