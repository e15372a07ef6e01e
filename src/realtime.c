/*-------------------------------------------------------------------------
 *
 * realtime.c
 *	  track_sessions(): the AFTER row trigger that keeps a results set
 *	  equal to an event-time replay of the source's messages after every
 *	  committed INSERT, UPDATE and DELETE, and the AFTER TRUNCATE statement
 *	  trigger that empties it.
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
 * A deleted message m of key k: lock k, then rewind k as for a late
 * message (to the last session answered before m) and replay its visible
 * messages from there; m is no longer among them.  An UPDATE is the delete
 * of the old row and the insert of the new one: on one key, one rewind to
 * before the earlier of the two and one replay; on two keys, both keys
 * locked (in lock order, so two such updates cannot deadlock) and each
 * handled as above.  Restored rows: a source with a transaction id column
 * (deferred mode's txid) gets rows from pg_dump's COPY with the txids they
 * were written with; an INSERT whose txid is not the inserting
 * transaction's is such a row, already reflected in the restored results,
 * and is not applied again, unless a logical-replication worker wrote it
 * (a replicated row is a new one: replicas.c).
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
 * A multi-row DELETE or UPDATE also fires its row triggers once all its
 * rows are changed, so a call may rewind to a session whose answer another
 * row of the statement deleted, and replay from a wrong start.  That is
 * mended within the statement: the call for the key's earliest changed
 * message rewinds to a session answered before every change, whose answer
 * is still there, and rebuilds everything after it from the final rows;
 * calls after it start from correct sessions.  So the result is exact in
 * any firing order.  These replays are not remembered: such a statement
 * costs one replay per changed row.
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
#include "replication/logicalworker.h"
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
	TriggerEvent event;
	const char *problem = NULL;

	if (!CALLED_AS_TRIGGER(fcinfo))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("track_sessions() was not called by the trigger manager"),
				 errhint("Attach it with CREATE TRIGGER ... AFTER INSERT OR UPDATE OR DELETE ... FOR EACH ROW.")));
	event = trigdata->tg_event;
	if (!TRIGGER_FIRED_AFTER(event))
		problem = "fired AFTER";
	else if (TRIGGER_FIRED_BY_TRUNCATE(event))
	{
		if (!TRIGGER_FIRED_FOR_STATEMENT(event))
			problem = "fired FOR EACH STATEMENT for TRUNCATE";
	}
	else if (!TRIGGER_FIRED_FOR_ROW(event))
		problem = "fired FOR EACH ROW for INSERT, UPDATE and DELETE";
	if (problem != NULL)
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("trigger \"%s\" on table \"%s\" must be %s",
						trigdata->tg_trigger->tgname,
						ss_table_name(trigdata->tg_relation),
						problem),
				 errhint("Create it as AFTER INSERT OR UPDATE OR DELETE ... FOR EACH ROW, and for TRUNCATE as AFTER TRUNCATE ... FOR EACH STATEMENT, EXECUTE FUNCTION session_stream.track_sessions(...).")));
	return trigdata;
}

/* The lock bucket of a message's key. */
static uint32
key_bucket(const SSTracker *tracker, const SSMessage *message)
{
	int64		key[2];

	key[0] = message->customer_id;
	key[1] = tracker->mode == SS_MODE_PAIR ? message->agent_id : 0;
	return hash_bytes((const unsigned char *) key, sizeof(key)) % SS_KEY_LOCK_BUCKETS;
}

static void
lock_bucket(const SSTracker *tracker, uint32 bucket)
{
	LOCKTAG		tag;

	SET_LOCKTAG_ADVISORY(tag, MyDatabaseId, tracker->results_relid,
						 bucket, SS_LOCK_CLASS);
	(void) LockAcquire(&tag, ExclusiveLock, false, false);
}

/*
 * Serialise writers of the keys (their buckets) of one or two messages
 * until commit; two buckets are taken in ascending order.
 */
static void
lock_keys(const SSTracker *tracker, const SSMessage *a, const SSMessage *b)
{
	uint32		first = key_bucket(tracker, a);
	uint32		second = b != NULL ? key_bucket(tracker, b) : first;

	lock_bucket(tracker, Min(first, second));
	if (second != first)
		lock_bucket(tracker, Max(first, second));
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

/*
 * Rebuild the key's sessions from the last answer before "earliest": the
 * late message, or the earliest of the changed ones.  stmt, if not NULL,
 * names the firing INSERT's statement, whose rows the replay applies are
 * remembered.
 */
static void
replay_key(SSResults *results, Relation source, const SSMessage *earliest,
		   StatementRows *stmt)
{
	SSSession	kept;
	SSMessage	kept_answer;
	bool		has_kept;
	int64		oldest_opened_at;	/* not needed here */
	int			count;
	SSMessage  *messages;

	has_kept = results_rewind_before(results, earliest, earliest, &kept,
									 &oldest_opened_at);
	if (has_kept)
		sessions_closing_message(&kept, &kept_answer);
	messages = source_key_messages_after(results->tracker, source,
										 results->snapshot, earliest,
										 has_kept ? &kept_answer : NULL,
										 &count,
										 stmt != NULL ? remember_statement_row : NULL,
										 stmt);
	sessions_replay(NULL, messages, count, store_session, results);
	pfree(messages);
}

/*
 * Under the key locks, wait out a consumer of the results set, then open
 * it with a snapshot that sees every committed message of the keys and our
 * own changes.
 */
static Snapshot
begin_keys(SSResults *results, const SSTracker *tracker)
{
	Snapshot	snapshot;

	LockRelationOid(tracker->closed.relid, RowExclusiveLock);
	LockRelationOid(tracker->latest.relid, RowExclusiveLock);
	CommandCounterIncrement();
	snapshot = RegisterSnapshot(GetLatestSnapshot());
	results_open(results, tracker, snapshot);
	return snapshot;
}

static void
end_keys(SSResults *results, Snapshot snapshot)
{
	results_close(results);
	UnregisterSnapshot(snapshot);
}

/*
 * Is an inserted row a restored one?  With a transaction id column, a row
 * written by anything but pg_dump's COPY carries the inserting
 * transaction's id (its default, session_stream.current_txid()).  A row
 * that logical replication brings is a new one whatever its txid (the
 * publisher's, unless adopt_replicated_rows() made it ours: replicas.c).
 */
static bool
is_restored_row(const SSTracker *tracker, Relation source, HeapTuple tuple)
{
	bool		isnull;
	Datum		txid;

	if (tracker->txid_attnum == InvalidAttrNumber || IsLogicalWorker())
		return false;
	txid = heap_getattr(tuple, tracker->txid_attnum, RelationGetDescr(source),
						&isnull);
	return !isnull && DatumGetInt64(txid) != txid_current_value();
}

/*
 * Apply a new row's message: in order, or by a replay of its key.  With
 * "remember", the rows of the row's statement that the replay applies are
 * remembered (see the header comment).
 */
static void
apply_new_row(const SSTracker *tracker, Relation source, HeapTuple tuple,
			  const SSMessage *message, bool remember)
{
	SSResults	results;
	Snapshot	snapshot;
	StatementRows stmt;

	lock_keys(tracker, message, NULL);
	snapshot = begin_keys(&results, tracker);
	if (!apply_in_order(&results, source, tuple, message))
	{
		stmt.tgoid = tracker->trigger_oid;
		stmt.relid = RelationGetRelid(source);
		stmt.cid = HeapTupleHeaderGetRawCommandId(tuple->t_data);
		stmt.self = &tuple->t_self;
		replay_key(&results, source, message, remember ? &stmt : NULL);
	}
	end_keys(&results, snapshot);
}

static void
track_insert(const SSTracker *tracker, Relation source, HeapTuple tuple)
{
	SSMessage	message;

	source_read_message(tracker, source, tuple, &message);
	if (take_applied(tracker->trigger_oid, RelationGetRelid(source),
					 &tuple->t_self) ||
		is_restored_row(tracker, source, tuple))
		return;
	apply_new_row(tracker, source, tuple, &message, true);
}

/*
 * A row left the source (DELETE, or the old row of an UPDATE).  A row with
 * a NULL in a mapped column was never a message (no trigger took it in):
 * its going changes nothing; nor does a row purge_messages() deletes
 * (retention keeps the sessions of purged messages).
 */
static void
track_delete(const SSTracker *tracker, Relation source, HeapTuple tuple)
{
	SSMessage	message;
	SSResults	results;
	Snapshot	snapshot;

	if (retention_is_purging(RelationGetRelid(source)))
		return;
	replicas_check_edit(source, tracker->txid_attnum, false);
	if (!source_try_read_message(tracker, source, tuple, &message))
		return;
	lock_keys(tracker, &message, NULL);
	snapshot = begin_keys(&results, tracker);
	replay_key(&results, source, &message, NULL);
	end_keys(&results, snapshot);
}

static void
track_update(const SSTracker *tracker, Relation source, HeapTuple old_tuple,
			 HeapTuple new_tuple)
{
	SSMessage	old_message;
	SSMessage	new_message;
	SSResults	results;
	Snapshot	snapshot;

	replicas_check_edit(source, tracker->txid_attnum, true);
	/* the new row is checked as an insert is */
	source_read_message(tracker, source, new_tuple, &new_message);
	if (!source_try_read_message(tracker, source, old_tuple, &old_message))
	{
		apply_new_row(tracker, source, new_tuple, &new_message, false);
		return;
	}
	if (sessions_same_message(&old_message, &new_message))
		return;					/* no tracked column changed */

	lock_keys(tracker, &old_message, &new_message);
	snapshot = begin_keys(&results, tracker);
	if (sessions_same_key(tracker->mode, &old_message, &new_message))
		replay_key(&results, source,
				   sessions_compare_messages(&old_message, &new_message) < 0
				   ? &old_message : &new_message,
				   NULL);
	else
	{
		/* two keys: each is used once within this results_open() */
		replay_key(&results, source, &old_message, NULL);
		if (!apply_in_order(&results, source, new_tuple, &new_message))
			replay_key(&results, source, &new_message, NULL);
	}
	end_keys(&results, snapshot);
}

Datum
ss_track_sessions(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = check_trigger_call(fcinfo);
	Relation	source = trigdata->tg_relation;
	TriggerEvent event = trigdata->tg_event;
	SSTracker  *tracker;

	if (TRIGGER_FIRED_BY_TRUNCATE(event))
	{
		erasure_truncate_results(trigdata->tg_trigger, source);
		return PointerGetDatum(NULL);
	}

	tracker = trigger_args_lookup(trigdata->tg_trigger, source);
	if (TRIGGER_FIRED_BY_INSERT(event))
		track_insert(tracker, source, trigdata->tg_trigtuple);
	else if (TRIGGER_FIRED_BY_DELETE(event))
		track_delete(tracker, source, trigdata->tg_trigtuple);
	else
		track_update(tracker, source, trigdata->tg_trigtuple,
					 trigdata->tg_newtuple);
	return PointerGetDatum(NULL);
}
