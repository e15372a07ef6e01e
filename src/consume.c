/*-------------------------------------------------------------------------
 *
 * consume.c
 *	  consume_window(): deferred mode.  Inserts stay cheap (no trigger);
 *	  a call from cron consumes, exactly once, every message committed since
 *	  the previous call and applies it in event-time order.
 *
 * One call:
 *
 * 1. Take the (source, mode) consumer lock without waiting; if another
 *	  call holds it, return status 'busy' at once (pg_cron queues
 *	  overlapping runs; they must not pile up or double-process).
 * 2. Under the lock take a fresh snapshot and load the previous position
 *	  with it (windows.c).  The batch is the rows visible in the snapshot
 *	  whose transaction id (the source's txid column, filled by
 *	  session_stream.current_txid()) the snapshot sees committed and the
 *	  previous position had not consumed.  Rows are found through a BRIN or
 *	  btree index on txid when there is one; nothing is written per row.
 * 3. If the batch is larger than max_messages, keep the transactions with
 *	  the lowest ids that fit (a transaction is never split) and leave the
 *	  rest for the next call.
 * 4. Sort the batch by key, then event time (batch.c), and apply each
 *	  key's run with the shared state machine (sessions.c), starting from
 *	  the key's newest stored session: found by one ordered pass over
 *	  NAME_latest's index when the batch's keys are a large share of it,
 *	  else by a probe per key; new rows are written in bulk (results.c,
 *	  bulk_insert.c).  A run whose first message precedes something the
 *	  key already had applied is late: the key is rewound to the last
 *	  session answered before it and replayed from the source's rows that
 *	  are consumed once this call commits, as the realtime trigger does.
 * 5. Record the window (consumed_windows) in the same transaction: a call
 *	  that fails or is killed leaves nothing, and the next call consumes
 *	  exactly what this one did not.
 *
 * Knowing whether a run is late needs the key's latest applied message,
 * including messages that changed nothing and so left no trace in the
 * results.  The position keeps the latest sent_at ever consumed: a run
 * that starts after it cannot be late.  Runs at or before it (the
 * arrival-jitter edge of each window) are checked, and late keys are
 * replayed, with one scan of the source each from the earliest time
 * needed, through an index led by the time column when there is one; so
 * deferred mode needs no per-customer index on the source, and inserts
 * pay only for the txid column and its BRIN index.
 *
 *-------------------------------------------------------------------------
 */
#include "session_stream.h"

#include "access/table.h"
#include "access/transam.h"
#include "access/xact.h"
#include "catalog/namespace.h"
#include "catalog/pg_trigger.h"
#include "commands/trigger.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "parser/parse_func.h"
#include "storage/lmgr.h"
#include "storage/lock.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/hsearch.h"
#include "utils/lsyscache.h"
#include "utils/snapmgr.h"

/* field4 of the consumer lock tag; track_sessions() uses 0x5353 */
#define SS_CONSUMER_LOCK_CLASS 0x5354

int			consume_batch_limit = 1000000;

PG_FUNCTION_INFO_V1(ss_consume_window);

/* One call's working state. */
typedef struct Consumer
{
	const SSTracker *tracker;
	Relation	source;
	Snapshot	snapshot;
	SSResults	results;
	SSWindowState previous;
	SSPosition	upto;			/* consumed once this call commits */
	SSConsumeCounts counts;
	SSMessage  *run;			/* buffer for one key's messages */
	int64		run_capacity;
	HTAB	   *keys;			/* KeyWork of keys that need the source */
	HTAB	   *edit_points;	/* EditPoint of keys edited in the window */
} Consumer;

/* Store what a replay produced and count it. */
static void
write_session(const SSSession *session, void *arg)
{
	Consumer   *c = (Consumer *) arg;

	results_store(&c->results, session);
	if (!session->was_open)
		c->counts.sessions_opened++;
	if (!session->is_open)
		c->counts.sessions_closed++;
}

/* Where a key stands in this call, for keys that need the source. */
typedef struct KeyWork
{
	int64		key[2];			/* customer, agent (0 in customer mode) */
	SSMessage	first;			/* first message of this call's run */
	bool		has_prior;		/* a later message from an earlier call */
	SSMessage	prior;			/* the latest of those */
	bool		late;			/* replay this key */
	bool		has_kept;		/* replay after this answer ... */
	SSMessage	kept_answer;
	int64		replay_since;	/* ... or from this time on */
	SSMessage  *messages;		/* the replay's messages */
	int			count;
	int			capacity;
} KeyWork;

/* The hash key of a message's key: customer, and agent in pair mode. */
static void
key_of(const Consumer *c, const SSMessage *m, int64 key[2])
{
	key[0] = m->customer_id;
	key[1] = c->tracker->mode == SS_MODE_PAIR ? m->agent_id : 0;
}

static KeyWork *
key_work(Consumer *c, const SSMessage *m, HASHACTION action)
{
	int64		key[2];
	bool		found;
	KeyWork    *work;

	key_of(c, m, key);
	work = hash_search(c->keys, key, action, &found);
	if (work != NULL && !found)
	{
		memset(work, 0, sizeof(*work));
		work->key[0] = key[0];
		work->key[1] = key[1];
		work->first = *m;
	}
	return work;
}

/*
 * Phase 1: for keys whose run starts at or before the latest sent_at any
 * earlier call consumed, find the latest message of the key an earlier
 * call consumed after the run's first message: one scan of the source
 * from the earliest such run on (through an index on the time column when
 * there is one), instead of a lookup per key.
 */
static void
note_prior_message(const SSMessage *message, int64 txid, void *arg)
{
	Consumer   *c = (Consumer *) arg;
	KeyWork    *work = key_work(c, message, HASH_FIND);

	if (work == NULL || !windows_contains(&c->previous.position, txid) ||
		sessions_compare_messages(message, &work->first) <= 0)
		return;
	if (!work->has_prior || sessions_compare_messages(message, &work->prior) > 0)
	{
		work->prior = *message;
		work->has_prior = true;
	}
}

static void
find_prior_messages(Consumer *c, const SSBatchRow *rows, int64 count)
{
	int64		since = PG_INT64_MAX;
	int64		i;

	if (!c->previous.has_high)
		return;					/* nothing consumed before */
	for (i = 0; i < count; i++)
	{
		if ((i == 0 || !sessions_same_key(c->tracker->mode, &rows[i - 1].message, &rows[i].message)) &&
			rows[i].message.sent_at <= c->previous.high_sent_at)
		{
			(void) key_work(c, &rows[i].message, HASH_ENTER);
			since = Min(since, rows[i].message.sent_at);
		}
	}
	if (since != PG_INT64_MAX)
		source_scan_since(c->tracker, c->source, c->snapshot, since,
						  note_prior_message, c);
}

/*
 * The latest message the key had applied before this call, as far as it
 * can come after "first": from its newest stored session, and from what
 * phase 1 found.
 */
static bool
latest_applied(Consumer *c, const SSMessage *first, SSSession *last,
			   bool *has_last, SSMessage *latest)
{
	/* (most calls note no key in phase 1: skip the lookup then) */
	KeyWork    *work = c->keys != NULL && hash_get_num_entries(c->keys) > 0
		? key_work(c, first, HASH_FIND) : NULL;
	bool		found = false;

	*has_last = results_last_session(&c->results, first, last);
	if (*has_last)
	{
		if (last->is_open)
		{
			/* its opening message: customer, at opened_at */
			latest->customer_id = last->customer_id;
			latest->agent_id = PG_INT64_MIN;
			latest->sent_at = last->opened_at;
			latest->from_agent = false;
		}
		else
			sessions_closing_message(last, latest);
		found = true;
	}
	if (work != NULL && work->has_prior &&
		(!found || sessions_compare_messages(&work->prior, latest) > 0))
	{
		*latest = work->prior;
		found = true;
	}
	return found;
}

/*
 * Would placing a late run need messages that purge_messages() dropped?
 * The replay restarts after the last session answered before the run, so
 * it rebuilds the sessions opened after that answer.  It is exact unless
 * one of those opened before the purge horizon: its opening message is
 * gone.  (A dropped message that opened nothing was an agent message to
 * an idle key, and changed nothing.)
 */
static bool
needs_purged_messages(Consumer *c, const SSMessage *first)
{
	SSSession	kept;
	int64		oldest_opened_at = PG_INT64_MAX;

	if (!c->previous.has_horizon)
		return false;
	(void) results_answered_before(&c->results, first, first, &kept,
								   &oldest_opened_at);
	return oldest_opened_at < c->previous.purged_before;
}

/*
 * Phase 2, a late run: note from where its replay must read the source;
 * phase 3 undoes the key's sessions the run may change, down to the same
 * point.  Before the replay point the key is idle and what came before
 * cannot change; without a kept answer, messages before both the run and
 * the key's first session were agent messages to an idle key, which
 * changed nothing.
 */
static void
note_late_key(Consumer *c, const SSMessage *first, int64 *replay_since)
{
	KeyWork    *work = key_work(c, first, HASH_ENTER);
	SSSession	kept;
	int64		oldest_opened_at = first->sent_at;

	work->first = *first;		/* an edit may reach back before the run */
	work->late = true;
	work->has_kept = results_answered_before(&c->results, first, first, &kept,
											 &oldest_opened_at);
	if (work->has_kept)
	{
		sessions_closing_message(&kept, &work->kept_answer);
		work->replay_since = kept.answered_at;
	}
	else
		work->replay_since = Min(first->sent_at, oldest_opened_at);
	*replay_since = Min(*replay_since, work->replay_since);
}

/*
 * A key edited in this window (edits.c): replayed from before its earliest
 * edited message, old or new, as a late key is.
 */
typedef struct EditPoint
{
	int64		key[2];			/* customer, agent (0 in customer mode) */
	SSMessage	from;			/* the earliest edited message */
	int64		applied;		/* edits of messages consumed before */
	bool		done;			/* replayed with the key's run */
} EditPoint;

static void
note_edit_point(Consumer *c, const SSMessage *m, bool applied)
{
	int64		key[2];
	bool		found;
	EditPoint  *point;

	key_of(c, m, key);
	point = hash_search(c->edit_points, key, HASH_ENTER, &found);
	if (!found)
	{
		memset(point, 0, sizeof(*point));
		point->key[0] = key[0];
		point->key[1] = key[1];
		point->from = *m;
	}
	else if (sessions_compare_messages(m, &point->from) < 0)
		point->from = *m;
	if (applied)
		point->applied++;
}

/*
 * An edit of the window.  The old message matters only if an earlier
 * window applied it; an UPDATE's new one always (its row keeps the txid
 * it was inserted with, so it is no new message of this window).
 */
static void
collect_edit(const SSMessage *old_message, bool old_consumed,
			 const SSMessage *new_message, void *arg)
{
	Consumer   *c = (Consumer *) arg;

	if (old_consumed)
		note_edit_point(c, old_message, true);
	if (new_message != NULL)
		note_edit_point(c, new_message, false);
}

/* Replay an edited key from "from" (and the run of n messages, if any). */
static void
replay_edited_key(Consumer *c, const SSMessage *from, int64 n,
				  const EditPoint *point, int64 *replay_since)
{
	if (needs_purged_messages(c, from))
	{
		/* left out, and said so, rather than applied wrongly */
		c->counts.late_beyond_retention += n + point->applied;
		return;
	}
	c->counts.edits += point->applied;
	c->counts.keys_recomputed++;
	note_late_key(c, from, replay_since);
}

/* The edits of keys that had no messages in the window. */
static void
replay_edited_keys(Consumer *c, int64 *replay_since)
{
	HASH_SEQ_STATUS status;
	EditPoint  *point;

	hash_seq_init(&status, c->edit_points);
	while ((point = hash_seq_search(&status)) != NULL)
	{
		CHECK_FOR_INTERRUPTS();
		if (!point->done)
			replay_edited_key(c, &point->from, 0, point, replay_since);
	}
}

/* Apply one key's messages of this window, sorted; late keys wait. */
static void
apply_run(Consumer *c, const SSBatchRow *rows, int64 n, int64 *replay_since)
{
	const SSMessage *first = &rows[0].message;
	SSSession	last;
	bool		has_last;
	SSMessage	latest;
	int64		i;
	int64		key[2];
	EditPoint  *point;

	key_of(c, first, key);
	point = hash_get_num_entries(c->edit_points) == 0 ? NULL
		: hash_search(c->edit_points, key, HASH_FIND, NULL);
	if (point != NULL)
	{
		point->done = true;
		replay_edited_key(c,
						  sessions_compare_messages(&point->from, first) < 0
						  ? &point->from : first,
						  n, point, replay_since);
		return;
	}
	if (latest_applied(c, first, &last, &has_last, &latest) &&
		sessions_compare_messages(first, &latest) < 0)
	{
		if (needs_purged_messages(c, first))
		{
			/* left out, and said so, rather than placed wrongly */
			c->counts.late_beyond_retention += n;
			return;
		}
		for (i = 0; i < n && sessions_compare_messages(&rows[i].message, &latest) < 0; i++)
			c->counts.late_messages++;
		c->counts.keys_recomputed++;
		note_late_key(c, first, replay_since);
	}
	else
	{
		SSKeyState	initial = {has_last && last.is_open, has_last ? last.opened_at : 0};

		if (n > c->run_capacity)
		{
			c->run_capacity = Max(n, 2 * c->run_capacity);
			c->run = repalloc_huge(c->run, c->run_capacity * sizeof(SSMessage));
		}
		for (i = 0; i < n; i++)
			c->run[i] = rows[i].message;
		sessions_replay(&initial, c->run, (int) n, write_session, c);
	}
}

/*
 * Phase 3: one scan of the source from the earliest replay point gathers
 * the late keys' messages that are consumed once this call commits; each
 * late key is then replayed.
 */
static void
collect_replay_message(const SSMessage *message, int64 txid, void *arg)
{
	Consumer   *c = (Consumer *) arg;
	KeyWork    *work = key_work(c, message, HASH_FIND);

	if (work == NULL || !work->late || !windows_contains(&c->upto, txid))
		return;
	if (work->has_kept ? sessions_compare_messages(message, &work->kept_answer) <= 0
		: message->sent_at < work->replay_since)
		return;
	if (work->count == work->capacity)
	{
		work->capacity = Max(16, 2 * work->capacity);
		work->messages = work->messages == NULL
			? palloc(work->capacity * sizeof(SSMessage))
			: repalloc_huge(work->messages, work->capacity * sizeof(SSMessage));
	}
	work->messages[work->count++] = *message;
}

static void
replay_late_keys(Consumer *c, int64 replay_since)
{
	HASH_SEQ_STATUS status;
	KeyWork    *work;

	source_scan_since(c->tracker, c->source, c->snapshot, replay_since,
					  collect_replay_message, c);
	/* phase 2 may have stored sessions: look every late key up */
	c->results.known_empty = false;
	hash_seq_init(&status, c->keys);
	while ((work = hash_seq_search(&status)) != NULL)
	{
		SSSession	kept;
		int64		oldest_opened_at;	/* known from phase 2 */

		if (!work->late)
			continue;
		CHECK_FOR_INTERRUPTS();
		(void) results_rewind_before(&c->results, &work->first, &work->first,
									 &kept, &oldest_opened_at);
		sessions_sort(work->messages, work->count);
		sessions_replay(NULL, work->messages, work->count, write_session, c);
	}
}

/* How many keys the sorted rows have. */
static int64
count_keys(SSMode mode, const SSBatchRow *rows, int64 count)
{
	int64		keys = 0;
	int64		i;

	for (i = 0; i < count; i++)
		if (i == 0 || !sessions_same_key(mode, &rows[i - 1].message, &rows[i].message))
			keys++;
	return keys;
}

/* A hash by key (customer, agent) of entries of the given size. */
static HTAB *
create_key_table(const char *name, Size entrysize)
{
	HASHCTL		ctl;

	ctl.keysize = 2 * sizeof(int64);
	ctl.entrysize = entrysize;
	ctl.hcxt = CurrentMemoryContext;
	return hash_create(name, 1024, &ctl, HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
}

/*
 * The stream's column mapping and results set: from a disabled
 * track_sessions() trigger of the same mode on the source if there is one,
 * else the defaults.  An enabled one already applies every row: refuse.
 */
void
consume_stream_tracker(Relation source, SSMode mode, bool allow_enabled,
					   SSTracker *out)
{
	TriggerDesc *triggers = source->trigdesc;
	const char *mode_name = trigger_args_mode_name(mode);
	Oid			track_sessions = ss_track_sessions_oid();
	Trigger		defaults;
	char	   *default_args[1];
	int			i;

	for (i = 0; triggers != NULL && i < triggers->numtriggers; i++)
	{
		Trigger    *trigger = &triggers->triggers[i];

		/* a TRUNCATE trigger (statement level) applies no rows */
		if (trigger->tgfoid != track_sessions || trigger->tgnargs < 1 ||
			strcmp(trigger->tgargs[0], mode_name) != 0 ||
			!TRIGGER_FOR_ROW(trigger->tgtype))
			continue;
		if (trigger->tgenabled != TRIGGER_DISABLED && !allow_enabled)
			ereport(ERROR,
					(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
					 errmsg("cannot consume table \"%s\" in %s mode",
							ss_table_name(source), mode_name),
					 errdetail("Trigger \"%s\" already applies each row as it arrives.",
							   trigger->tgname),
					 errhint("Disable that trigger first (ALTER TABLE %s DISABLE TRIGGER %s), or consume in the other mode.",
							 ss_table_name(source), quote_identifier(trigger->tgname))));
		trigger_args_build(trigger, source, false, out);
		return;
	}

	memset(&defaults, 0, sizeof(defaults));
	defaults.tgname = "consume_window";
	default_args[0] = (char *) mode_name;
	defaults.tgnargs = 1;
	defaults.tgargs = default_args;
	trigger_args_build(&defaults, source, false, out);
}

static void
check_deferred_source(Relation source, const SSTracker *tracker)
{
	AclResult	acl;
	Oid			results_tables[2] = {tracker->closed.relid, tracker->latest.relid};
	int			i;

	if (tracker->txid_attnum == InvalidAttrNumber)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_COLUMN),
				 errmsg("table \"%s\" has no transaction id column \"%s\"",
						ss_table_name(source), NameStr(tracker->txid_column)),
				 errdetail("consume_window() finds new messages by the transaction that inserted them."),
				 errhint("ALTER TABLE %s ADD COLUMN %s bigint NOT NULL DEFAULT session_stream.current_txid(); CREATE INDEX ON %s USING brin (%s);",
						 ss_table_name(source), quote_identifier(NameStr(tracker->txid_column)),
						 ss_table_name(source), quote_identifier(NameStr(tracker->txid_column)))));

	replicas_check_deferred(source);

	acl = pg_class_aclcheck(RelationGetRelid(source), GetUserId(), ACL_SELECT);
	if (acl != ACLCHECK_OK)
		aclcheck_error(acl, OBJECT_TABLE, RelationGetRelationName(source));
	for (i = 0; i < (int) lengthof(results_tables); i++)
	{
		acl = pg_class_aclcheck(results_tables[i], GetUserId(),
								ACL_SELECT | ACL_INSERT | ACL_UPDATE | ACL_DELETE);
		if (acl != ACLCHECK_OK)
			aclcheck_error(acl, OBJECT_TABLE, get_rel_name(results_tables[i]));
	}
}

/*
 * Open a source for deferred mode and find how its stream is tracked;
 * checks what consume_window() checks (an enabled realtime trigger of the
 * mode unless allow_enabled, the txid column, the caller's privileges).
 */
Relation
consume_open_source(Oid relid, SSMode mode, bool allow_enabled,
					 SSTracker *tracker)
{
	Relation	source = table_open(relid, AccessShareLock);

	if (source->rd_rel->relkind != RELKIND_RELATION)
		ereport(ERROR,
				(errcode(ERRCODE_WRONG_OBJECT_TYPE),
				 errmsg("cannot consume \"%s\"", ss_table_name(source)),
				 errdetail("consume_window() reads plain tables only."),
				 errhint("Consume each partition of a partitioned table on its own.")));
	consume_stream_tracker(source, mode, allow_enabled, tracker);
	check_deferred_source(source, tracker);
	return source;
}

static bool
try_consumer_lock(Oid source, SSMode mode)
{
	LOCKTAG		tag;

	SET_LOCKTAG_ADVISORY(tag, MyDatabaseId, source, (uint32) mode,
						 SS_CONSUMER_LOCK_CLASS);
	return LockAcquire(&tag, ExclusiveLock, false, true) != LOCKACQUIRE_NOT_AVAIL;
}

/*
 * The mode argument (argno) of an SQL function: "customer" or "pair";
 * errors name the function.
 */
SSMode
consume_parse_mode(FunctionCallInfo fcinfo, int argno, const char *function)
{
	char	   *mode;

	if (PG_ARGISNULL(argno))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("mode of %s must not be null", function),
				 errhint("Valid modes are \"customer\" and \"pair\".")));
	mode = text_to_cstring(PG_GETARG_TEXT_PP(argno));
	if (strcmp(mode, "customer") == 0)
		return SS_MODE_CUSTOMER;
	if (strcmp(mode, "pair") == 0)
		return SS_MODE_PAIR;
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("invalid mode \"%s\" for %s", mode, function),
			 errhint("Valid modes are \"customer\" and \"pair\".")));
	return SS_MODE_CUSTOMER;	/* keep compiler quiet */
}

static int64
parse_max_messages(FunctionCallInfo fcinfo)
{
	int64		max_messages;

	if (PG_ARGISNULL(2))
		return consume_batch_limit;
	max_messages = PG_GETARG_INT64(2);
	if (max_messages < 1)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("max_messages must be at least 1, not " INT64_FORMAT, max_messages),
				 errhint("Pass NULL for the default bound, session_stream.consume_batch_limit.")));
	return max_messages;
}

static Datum
result_row(FunctionCallInfo fcinfo, const char *status,
		   const SSConsumeCounts *counts)
{
	TupleDesc	desc;
	Datum		values[10];
	bool		nulls[10];
	Interval   *elapsed = palloc0(sizeof(Interval));

	if (get_call_result_type(fcinfo, NULL, &desc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "consume_window() must return a record");
	desc = BlessTupleDesc(desc);
	memset(nulls, false, sizeof(nulls));
	elapsed->time = GetCurrentTimestamp() - counts->started_at;

	values[0] = CStringGetTextDatum(status);
	values[1] = Int64GetDatum(counts->messages);
	values[2] = Int64GetDatum(counts->sessions_opened);
	values[3] = Int64GetDatum(counts->sessions_closed);
	values[4] = Int64GetDatum(counts->keys_recomputed);
	values[5] = Int64GetDatum(counts->late_messages);
	values[6] = Int64GetDatum(counts->late_beyond_retention);
	values[7] = Int64GetDatum(counts->first_sent_at);
	values[8] = Int64GetDatum(counts->last_sent_at);
	nulls[7] = nulls[8] = counts->messages == 0;
	values[9] = IntervalPGetDatum(elapsed);
	return HeapTupleGetDatum(heap_form_tuple(desc, values, nulls));
}

/*
 * Drop the source's edits that every consumer of it has taken: below the
 * lowest position of a mode with windows, this call's included.  (A mode
 * without one reads every row as it is at its first window.)
 */
static void
forget_taken_edits(Oid relid, SSMode mode, Snapshot snapshot,
				   const SSPosition *upto)
{
	SSMode		other = mode == SS_MODE_PAIR ? SS_MODE_CUSTOMER : SS_MODE_PAIR;
	SSWindowState state;
	int64		below = upto->xmin;

	if (windows_load(relid, other, snapshot, &state))
		below = Min(below, state.position.xmin);
	edits_forget_before(relid, below);
}

/*
 * One consume_window() call's work, in the caller's transaction and as
 * the current user: consume what (relid, mode) has not consumed yet, at
 * most max_messages (whole transactions).  Returns "consumed", "empty" or
 * "busy" and fills *counts.  The consumer lock is held until the
 * transaction ends.  The continuous consumer (consumer.c) calls this too.
 */
const char *
consume_batch(Oid relid, SSMode mode, int64 max_messages,
			  SSConsumeCounts *counts)
{
	SSTracker	tracker;
	SSPosition	current;
	Consumer	c;
	SSBatch		batch;
	int64		start;
	int64		i;
	int64		replay_since = PG_INT64_MAX;
	int64		edits;
	Snapshot	results_snapshot;

	memset(&c, 0, sizeof(c));
	c.counts.started_at = GetCurrentTimestamp();
	c.source = consume_open_source(relid, mode, false, &tracker);
	c.tracker = &tracker;

	if (!try_consumer_lock(relid, mode))
	{
		table_close(c.source, AccessShareLock);
		*counts = c.counts;
		return "busy";
	}

	/*
	 * The first window of a source whose edits are not recorded yet: wait
	 * out edits in progress and keep new ones out until commit, so that
	 * none falls between "not recorded" and this window (edits.c).
	 */
	if (!edits_are_recorded(c.source))
		LockRelationOid(relid, ShareLock);

	/* A snapshot that sees the previous call's commit, and our own work. */
	CommandCounterIncrement();
	c.snapshot = RegisterSnapshot(GetLatestSnapshot());
	windows_load(relid, mode, c.snapshot, &c.previous);
	windows_position_of_snapshot(c.snapshot, &current);

	/* previous is empty before the first call */
	batch_init(&batch, &current, &c.previous.position, max_messages);
	source_scan_window(&tracker, c.source, c.snapshot,
					   c.previous.exists ? c.previous.position.xmin : 0,
					   batch_collect_row, batch_expect_rows, &batch);
	batch_shrink_to_limit(&batch);
	windows_advance(&c.previous.position, &current, batch.cutoff, &c.upto);
	c.edit_points = create_key_table("session_stream edited keys", sizeof(EditPoint));
	edits = edits_scan_window(relid, c.snapshot,
							  c.previous.exists ? &c.previous.position : NULL,
							  &c.upto, collect_edit, &c);

	if (batch.count > 0 || edits > 0)
	{
		batch_sort(&batch, mode);
		c.counts.messages = batch.count;
		c.counts.first_sent_at = PG_INT64_MAX;
		c.counts.last_sent_at = PG_INT64_MIN;

		/*
		 * Keep every other writer of the results set out until commit
		 * (another consumer writing it from another source waits), so
		 * that what this call reads of it stays true while it writes.
		 */
		LockRelationOid(tracker.closed.relid, ShareRowExclusiveLock);
		LockRelationOid(tracker.latest.relid, ShareRowExclusiveLock);
		/* read the results set as of now that no one else writes it */
		results_snapshot = RegisterSnapshot(GetLatestSnapshot());
		results_open(&c.results, &tracker, results_snapshot);
		c.results.bulk = true;
		/* nothing stored yet: no key needs looking up (results.c) */
		c.results.known_empty = results_is_empty(&c.results);
		c.run_capacity = 64;
		c.run = palloc(c.run_capacity * sizeof(SSMessage));
		c.keys = create_key_table("session_stream consume keys", sizeof(KeyWork));

		find_prior_messages(&c, batch.rows, batch.count);
		/* runs come in key order: read the stored keys in one pass if worth it */
		results_begin_ordered(&c.results, count_keys(mode, batch.rows, batch.count));
		for (start = 0; start < batch.count; start = i)
		{
			CHECK_FOR_INTERRUPTS();
			for (i = start; i < batch.count &&
				 sessions_same_key(mode, &batch.rows[start].message, &batch.rows[i].message); i++)
			{
				c.counts.first_sent_at = Min(c.counts.first_sent_at, batch.rows[i].message.sent_at);
				c.counts.last_sent_at = Max(c.counts.last_sent_at, batch.rows[i].message.sent_at);
			}
			apply_run(&c, &batch.rows[start], i - start, &replay_since);
		}
		/* edited and late keys come in hash order */
		results_end_ordered(&c.results);
		replay_edited_keys(&c, &replay_since);
		if (c.counts.keys_recomputed > 0)
			replay_late_keys(&c, replay_since);
		results_close(&c.results);
		UnregisterSnapshot(results_snapshot);

		if (batch.count == 0)
			windows_save(relid, mode, tracker.results_relid, &c.upto, &c.counts,
						 c.previous.has_high, c.previous.high_sent_at);
		else
			windows_save(relid, mode, tracker.results_relid, &c.upto, &c.counts,
						 true,
						 c.previous.has_high ? Max(c.previous.high_sent_at, c.counts.last_sent_at)
						 : c.counts.last_sent_at);
		forget_taken_edits(relid, mode, c.snapshot, &c.upto);
	}

	UnregisterSnapshot(c.snapshot);
	table_close(c.source, NoLock);
	*counts = c.counts;
	return batch.count > 0 || edits > 0 ? "consumed" : "empty";
}

Datum
ss_consume_window(PG_FUNCTION_ARGS)
{
	SSMode		mode = consume_parse_mode(fcinfo, 0, "consume_window()");
	int64		max_messages = parse_max_messages(fcinfo);
	SSConsumeCounts counts;
	const char *status;

	if (PG_ARGISNULL(1))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("source of consume_window() must not be null"),
				 errhint("Name the message table, e.g. 'session_stream.messages'.")));
	status = consume_batch(PG_GETARG_OID(1), mode, max_messages, &counts);
	PG_RETURN_DATUM(result_row(fcinfo, status, &counts));
}
