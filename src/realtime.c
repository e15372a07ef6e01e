/*-------------------------------------------------------------------------
 *
 * realtime.c
 *	  track_sessions(): the AFTER INSERT row trigger that keeps a results
 *	  table equal to an event-time replay of the source's messages after
 *	  every committed insert.
 *
 * For each new message m of key k:
 *
 * 1. Take an exclusive transaction-level lock on k (an advisory lock tag in
 *	  a class of our own, keyed by results set and a hash bucket of k).
 *	  Writers of one key are thereby serialised until commit, so when we
 *	  hold the lock, every committed message of k has been applied by its
 *	  own trigger.  Under the lock we read with a fresh snapshot (after a
 *	  CommandCounterIncrement, so our own earlier changes show), which is
 *	  right in READ COMMITTED and in the stricter levels alike.
 *
 * 2. In-order fast path: if m is not older than k's newest session and,
 *	  when m changes k's state, no visible message of k comes after m in
 *	  event-time order, m is applied to k's newest session (its row in
 *	  the results set's _latest table): it may open one or answer the open
 *	  one, an in-place update of that row, plus an insert into _closed for
 *	  an answer (results.c).  This is the common case and costs one or two
 *	  index probes and at most two writes.
 *
 * 3. Late message: delete k's sessions that m may change (those answered
 *	  at or after m, and the open one), newest first, down to the last
 *	  session answered before m.  After that answer the key is idle and m
 *	  cannot change anything before it, so replaying k's visible messages
 *	  from there, m included, in event-time order rebuilds exactly what m
 *	  changed.
 *
 * Applying the newest message a second time changes nothing (a customer
 * message finds the session open, an agent message finds none), and a
 * replay rebuilds the same sessions however often it runs.  So it is never
 * wrong for a row's trigger to find its row already reflected.  That
 * matters for multi-row INSERTs and COPY, whose AFTER ROW triggers fire only
 * once all their rows are in the table: the first late row's replay already
 * includes the statement's later rows.  To keep such a statement linear
 * rather than quadratic, the replay remembers the rows of the current
 * statement it applied, and their own trigger calls return at once.
 *
 *-------------------------------------------------------------------------
 */
#include "session_stream.h"

#include "access/htup_details.h"
#include "access/xact.h"
#include "commands/trigger.h"
#include "common/hashfn.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "storage/lmgr.h"
#include "storage/lock.h"
#include "utils/hsearch.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"

/* field4 of our advisory lock tags; pg_advisory_lock() uses 1 and 2 */
#define SS_LOCK_CLASS 0x5353

/*
 * Keys are locked by hash bucket, so that a transaction writing many
 * customers (a COPY, a multi-row INSERT) holds at most this many locks
 * instead of one per key, which would overflow the shared lock table.
 * Two keys in one bucket merely wait for each other.
 */
#define SS_KEY_LOCK_BUCKETS 1024

PG_FUNCTION_INFO_V1(ss_track_sessions);

/* A source row of the current statement already applied by a replay. */
typedef struct AppliedRowKey
{
	Oid			tgoid;			/* whose replay applied it */
	Oid			relid;
	ItemPointerData tid;
} AppliedRowKey;

static HTAB *applied_rows = NULL;	/* in TopTransactionContext */

/* Called at transaction end and at subtransaction abort. */
void
realtime_forget_applied(void)
{
	applied_rows = NULL;
}

static void
applied_row_key(AppliedRowKey *key, Oid tgoid, Oid relid, ItemPointer tid)
{
	memset(key, 0, sizeof(*key));	/* the hash reads padding bytes too */
	key->tgoid = tgoid;
	key->relid = relid;
	key->tid = *tid;
}

static void
remember_applied(Oid tgoid, Oid relid, ItemPointer tid)
{
	AppliedRowKey key;

	if (applied_rows == NULL)
	{
		HASHCTL		ctl;

		ctl.keysize = sizeof(AppliedRowKey);
		ctl.entrysize = sizeof(AppliedRowKey);
		ctl.hcxt = TopTransactionContext;
		applied_rows = hash_create("session_stream applied rows", 256, &ctl,
								   HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
	}
	applied_row_key(&key, tgoid, relid, tid);
	(void) hash_search(applied_rows, &key, HASH_ENTER, NULL);
}

/* True, and forgotten, if a replay already applied this row. */
static bool
take_applied(Oid tgoid, Oid relid, ItemPointer tid)
{
	AppliedRowKey key;
	bool		found;

	if (applied_rows == NULL)
		return false;
	applied_row_key(&key, tgoid, relid, tid);
	(void) hash_search(applied_rows, &key, HASH_REMOVE, &found);
	return found;
}

/* What a replay needs to spot rows of the firing statement. */
typedef struct StatementRows
{
	Oid			tgoid;
	Oid			relid;
	CommandId	cid;			/* the statement's command id */
	ItemPointer self;			/* the row whose trigger is running */
} StatementRows;

static void
remember_statement_row(const SSMessage *message, HeapTuple tuple, void *arg)
{
	StatementRows *stmt = (StatementRows *) arg;
	HeapTupleHeader header = tuple->t_data;

	if (TransactionIdIsCurrentTransactionId(HeapTupleHeaderGetRawXmin(header)) &&
		HeapTupleHeaderGetRawCommandId(header) == stmt->cid &&
		!ItemPointerEquals(&tuple->t_self, stmt->self))
		remember_applied(stmt->tgoid, stmt->relid, &tuple->t_self);
}

static TriggerData *
check_trigger_call(FunctionCallInfo fcinfo)
{
	TriggerData *trigdata = (TriggerData *) fcinfo->context;
	const char *problem = NULL;

	if (!CALLED_AS_TRIGGER(fcinfo))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("track_sessions() was not called by the trigger manager"),
				 errhint("Attach it with CREATE TRIGGER ... AFTER INSERT ... FOR EACH ROW.")));
	if (!TRIGGER_FIRED_AFTER(trigdata->tg_event))
		problem = "fired AFTER";
	else if (!TRIGGER_FIRED_FOR_ROW(trigdata->tg_event))
		problem = "fired FOR EACH ROW";
	else if (!TRIGGER_FIRED_BY_INSERT(trigdata->tg_event))
		problem = "fired by INSERT only";
	if (problem != NULL)
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("trigger \"%s\" on table \"%s\" must be %s",
						trigdata->tg_trigger->tgname,
						ss_table_name(trigdata->tg_relation),
						problem),
				 errhint("Create it as AFTER INSERT ... FOR EACH ROW EXECUTE FUNCTION session_stream.track_sessions(...).")));
	return trigdata;
}

/* Serialise writers of one key (of its bucket) until commit. */
static void
lock_key(const SSTracker *tracker, const SSMessage *message)
{
	LOCKTAG		tag;
	int64		key[2];
	uint32		hash;

	key[0] = message->customer_id;
	key[1] = tracker->mode == SS_MODE_PAIR ? message->agent_id : 0;
	hash = hash_bytes((const unsigned char *) key, sizeof(key));
	SET_LOCKTAG_ADVISORY(tag, MyDatabaseId, tracker->results_relid,
						 hash % SS_KEY_LOCK_BUCKETS, SS_LOCK_CLASS);
	(void) LockAcquire(&tag, ExclusiveLock, false, false);
}

/*
 * Apply an in-order message to the key's newest session.  Returns false,
 * having changed nothing, if the message is late: older than that
 * session's last event, or, when it would change the key's state, older
 * than another message of the key in the source.  Only then does the
 * source matter: messages that changed nothing left no trace in the
 * results, and after an open session's start only customer messages can
 * have come (an agent message would have answered it), after an answer
 * only agent messages (a customer message would have opened a session).
 * So a message that changes nothing now would change nothing in a replay
 * either, and needs no look at the source.
 */
static bool
apply_in_order(SSResults *results, Relation source, HeapTuple tuple,
			   const SSMessage *message)
{
	SSSession	last;
	SSKeyState	state = {false, 0};
	SSStep		step;

	if (results_last_session(results, message, &last))
	{
		if (last.is_open)
		{
			if (message->sent_at < last.opened_at)
				return false;
			state.is_open = true;
			state.opened_at = last.opened_at;
		}
		else
		{
			SSMessage	answer;

			sessions_closing_message(&last, &answer);
			if (sessions_compare_messages(message, &answer) < 0)
				return false;
		}
	}

	step = sessions_apply(&state, message);
	if (step != SS_STEP_NOTHING &&
		source_has_later_message(results->tracker, source, results->snapshot,
								 message, &tuple->t_self))
		return false;

	switch (step)
	{
		case SS_STEP_NOTHING:
			break;
		case SS_STEP_OPENED:
			last.customer_id = message->customer_id;
			last.agent_id = message->agent_id;
			last.opened_at = message->sent_at;
			last.is_open = true;
			results_store(results, &last);
			break;
		case SS_STEP_CLOSED:
			last.agent_id = message->agent_id;
			last.answered_at = message->sent_at;
			last.is_open = false;
			results_store(results, &last);
			break;
	}
	return true;
}

static void
store_session(const SSSession *session, void *arg)
{
	results_store((SSResults *) arg, session);
}

/* Rebuild the key's sessions from the last answer before the message. */
static void
replay_key(SSResults *results, Relation source, HeapTuple tuple,
		   const SSMessage *message)
{
	SSSession	kept;
	SSMessage	kept_answer;
	bool		has_kept;
	int64		oldest_opened_at;	/* not needed here */
	int			count;
	SSMessage  *messages;
	StatementRows stmt;

	has_kept = results_rewind_before(results, message, message, &kept,
									 &oldest_opened_at);
	if (has_kept)
		sessions_closing_message(&kept, &kept_answer);

	stmt.tgoid = results->tracker->trigger_oid;
	stmt.relid = RelationGetRelid(source);
	stmt.cid = HeapTupleHeaderGetRawCommandId(tuple->t_data);
	stmt.self = &tuple->t_self;
	messages = source_key_messages_after(results->tracker, source,
										 results->snapshot, message,
										 has_kept ? &kept_answer : NULL,
										 &count, remember_statement_row, &stmt);
	sessions_replay(NULL, messages, count, store_session, results);
	pfree(messages);
}

Datum
ss_track_sessions(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = check_trigger_call(fcinfo);
	Relation	source = trigdata->tg_relation;
	HeapTuple	tuple = trigdata->tg_trigtuple;
	SSTracker  *tracker;
	SSMessage	message;
	Snapshot	snapshot;
	SSResults	results;

	tracker = trigger_args_lookup(trigdata->tg_trigger, source);
	source_read_message(tracker, source, tuple, &message);

	if (take_applied(tracker->trigger_oid, RelationGetRelid(source),
					 &tuple->t_self))
		return PointerGetDatum(NULL);

	lock_key(tracker, &message);
	/* wait out a consumer of the results set before taking the snapshot */
	LockRelationOid(tracker->closed.relid, RowExclusiveLock);
	LockRelationOid(tracker->latest.relid, RowExclusiveLock);
	CommandCounterIncrement();
	snapshot = RegisterSnapshot(GetLatestSnapshot());
	results_open(&results, tracker, snapshot);

	if (!apply_in_order(&results, source, tuple, &message))
		replay_key(&results, source, tuple, &message);

	results_close(&results);
	UnregisterSnapshot(snapshot);
	return PointerGetDatum(NULL);
}
