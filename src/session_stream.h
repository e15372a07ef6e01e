/*-------------------------------------------------------------------------
 *
 * session_stream.h
 *	  Types and prototypes shared by the session_stream source files.
 *
 * Each section below belongs to one source file; a file only exports what
 * another file needs.
 *
 *-------------------------------------------------------------------------
 */
#ifndef SESSION_STREAM_H
#define SESSION_STREAM_H

#include "postgres.h"

#include "compat.h"

#include "access/genam.h"
#include "access/htup.h"
#include "access/transam.h"
#include "catalog/pg_type_d.h"
#include "executor/spi.h"
#include "executor/tuptable.h"
#include "nodes/execnodes.h"
#include "pgtime.h"
#include "storage/itemptr.h"
#include "utils/date.h"
#include "utils/rel.h"
#include "utils/snapshot.h"
#include "utils/timestamp.h"

/* The extension's schema (the extension is not relocatable). */
#define SS_SCHEMA "session_stream"

/* Which messages form one key: see DESIGN.md section 1. */
typedef enum SSMode
{
	SS_MODE_CUSTOMER,			/* key = customer */
	SS_MODE_PAIR				/* key = (customer, agent) */
} SSMode;

/* ---------------------------------------------------------------------
 * session_stream.c: module load and shared helpers
 * ---------------------------------------------------------------------
 */
extern char *ss_table_name(Relation rel);
extern char *ss_relid_name(Oid relid);
extern ErrorData *ss_in_subtransaction(void (*work) (void *arg), void *arg);
extern SPIPlanPtr ss_kept_plan(SPIPlanPtr *plan, const char *query, int nargs,
							   Oid *argtypes);
extern Oid	ss_track_sessions_oid(void);
extern bool ss_interval_usecs(const Interval *span, int64 *usecs);

/* Does an open index of rel suit the caller? */
typedef bool (*SSIndexTest) (Relation rel, Relation index, const void *arg);
extern Oid	ss_find_index(Relation rel, SSIndexTest usable, const void *arg);
extern AttrNumber ss_extension_attnum(TupleDesc desc, const char *table,
									  const char *column);

/* Ids are integer or bigint columns; inside they are int64. */
static inline int64
id_value(Datum d, Oid type)
{
	return type == INT8OID ? DatumGetInt64(d) : (int64) DatumGetInt32(d);
}

static inline Datum
id_datum(int64 v, Oid type)
{
	return type == INT8OID ? Int64GetDatum(v) : Int32GetDatum((int32) v);
}

/* ---------------------------------------------------------------------
 * sessions.c: the state machine; no catalog or table access
 * ---------------------------------------------------------------------
 */

/* One message; times are Timestamp or TimestampTz, both int64 microseconds. */
typedef struct SSMessage
{
	int64		customer_id;
	int64		agent_id;
	int64		sent_at;
	bool		from_agent;
} SSMessage;

/* One virtual session as stored in a results table. */
typedef struct SSSession
{
	int64		customer_id;
	int64		agent_id;		/* pair mode: the pair's agent; customer mode:
								 * the responder (meaningless while open) */
	int64		opened_at;
	int64		answered_at;	/* meaningless while open */
	bool		is_open;
	bool		was_open;		/* replay only: stored open before it */
} SSSession;

/* What a key's replay knows between two messages. */
typedef struct SSKeyState
{
	bool		is_open;
	int64		opened_at;
} SSKeyState;

typedef enum SSStep
{
	SS_STEP_NOTHING,			/* the message changed nothing */
	SS_STEP_OPENED,				/* it opened a session */
	SS_STEP_CLOSED				/* it answered the open session */
} SSStep;

typedef void (*SSSessionSink) (const SSSession *session, void *arg);

/* sla_policies.c: what a writer queues for SLA checks (defined there) */
typedef struct SSSlaQueue SSSlaQueue;

/*
 * Event-time order of two messages: sent_at, then customer before agent,
 * then lower agent id first.  Messages equal in all three are
 * interchangeable: replaying them in either order gives the same sessions.
 * Inline: sorts call it millions of times.
 */
static inline int
sessions_compare_messages(const SSMessage *a, const SSMessage *b)
{
	if (a->sent_at != b->sent_at)
		return a->sent_at < b->sent_at ? -1 : 1;
	if (a->from_agent != b->from_agent)
		return a->from_agent ? 1 : -1;
	if (a->agent_id != b->agent_id)
		return a->agent_id < b->agent_id ? -1 : 1;
	return 0;
}

/* Are two messages the same in all four columns? */
static inline bool
sessions_same_message(const SSMessage *a, const SSMessage *b)
{
	return a->customer_id == b->customer_id &&
		sessions_compare_messages(a, b) == 0;
}

/* Do two messages belong to the same key (customer, or customer and agent)? */
static inline bool
sessions_same_key(SSMode mode, const SSMessage *a, const SSMessage *b)
{
	return a->customer_id == b->customer_id &&
		(mode == SS_MODE_CUSTOMER || a->agent_id == b->agent_id);
}

/* Order of two messages' keys: customer, then agent in pair mode. */
static inline int
sessions_compare_keys(SSMode mode, const SSMessage *a, const SSMessage *b)
{
	if (a->customer_id != b->customer_id)
		return a->customer_id < b->customer_id ? -1 : 1;
	if (mode == SS_MODE_PAIR && a->agent_id != b->agent_id)
		return a->agent_id < b->agent_id ? -1 : 1;
	return 0;
}

extern void sessions_sort(SSMessage *messages, int count);
extern void sessions_closing_message(const SSSession *session, SSMessage *out);
extern SSStep sessions_apply(SSKeyState *state, const SSMessage *message);
extern void sessions_replay(const SSKeyState *initial,
							const SSMessage *sorted, int count,
							SSSessionSink sink, void *sink_arg);

/* ---------------------------------------------------------------------
 * trigger_args.c: a trigger's arguments, parsed and checked once per
 * trigger and cached until DDL on its tables
 * ---------------------------------------------------------------------
 */

/* One table of a results set, as track_sessions() writes it. */
typedef struct SSResultsTable
{
	Oid			relid;
	Oid			index;
	AttrNumber	customer_attnum;
	AttrNumber	agent_attnum;	/* agent_id or responder_id */
	AttrNumber	opened_attnum;
	AttrNumber	answered_attnum;
	Oid			customer_type;
	Oid			agent_type;
} SSResultsTable;

/* How one stream (a source table and a results set) is tracked. */
typedef struct SSTracker
{
	Oid			trigger_oid;	/* hash key */
	bool		valid;			/* false once DDL touched one of the tables */
	SSMode		mode;

	/* source table */
	Oid			source_relid;
	AttrNumber	agent_attnum;
	AttrNumber	customer_attnum;
	AttrNumber	time_attnum;
	AttrNumber	from_agent_attnum;
	Oid			id_type;		/* INT4OID or INT8OID, customer and agent */
	Oid			agent_type;
	Oid			time_type;		/* TIMESTAMPOID or TIMESTAMPTZOID */
	Oid			source_index;	/* btree led by (customer, time); deferred
								 * mode may have none */
	NameData	txid_column;	/* deferred mode: inserting transaction id */
	AttrNumber	txid_attnum;	/* InvalidAttrNumber if there is none */

	/*
	 * results set: the view the user named, its NAME_closed and
	 * NAME_latest tables (see create_results_in() in the install script)
	 */
	Oid			results_relid;	/* the view */
	int			results_key_columns;	/* 1 (customer) or 2 (pair) */
	SSResultsTable closed;		/* index: key columns, then opened_at */
	SSResultsTable latest;		/* index: key columns */
} SSTracker;

extern SSTracker *trigger_args_lookup(Trigger *trigger, Relation source);
extern void trigger_args_build(Trigger *trigger, Relation source,
							   bool need_key_index, SSTracker *out);
extern Oid	trigger_args_results_view(Trigger *trigger, Relation source);
extern const char *trigger_args_mode_name(SSMode mode);

/* ---------------------------------------------------------------------
 * source.c: reading messages from a source table
 * ---------------------------------------------------------------------
 */
extern void source_read_message(const SSTracker *tracker, Relation source,
								HeapTuple tuple, SSMessage *out);
extern bool source_try_read_message(const SSTracker *tracker, Relation source,
									HeapTuple tuple, SSMessage *out);
extern bool source_has_later_message(const SSTracker *tracker, Relation source,
									 Snapshot snapshot, const SSMessage *message,
									 ItemPointer self);

/* Called for each message found, with its heap tuple. */
typedef void (*SSMessageVisitor) (const SSMessage *message, HeapTuple tuple,
								  void *arg);
extern SSMessage *source_key_messages_after(const SSTracker *tracker,
											Relation source, Snapshot snapshot,
											const SSMessage *key,
											const SSMessage *after,
											int *count,
											SSMessageVisitor visitor,
											void *visitor_arg);

typedef void (*SSWindowRowVisitor) (const SSMessage *message, int64 txid,
									void *arg);
/* Told, before the first row, about how many rows a scan expects. */
typedef void (*SSWindowSizeHint) (double rows, void *arg);
extern void source_scan_window(const SSTracker *tracker, Relation source,
							   Snapshot snapshot, int64 min_txid,
							   SSWindowRowVisitor visitor,
							   SSWindowSizeHint hint, void *arg);
extern void source_scan_since(const SSTracker *tracker, Relation source,
							  Snapshot snapshot, int64 since,
							  SSWindowRowVisitor visitor, void *arg);

/* ---------------------------------------------------------------------
 * bulk_insert.c: new rows of a table written many at a time
 * ---------------------------------------------------------------------
 */
#define SS_BULK_ROWS 1000

typedef struct SSBulkInsert
{
	ResultRelInfo *rri;
	EState	   *estate;
	CommandId	cid;
	MemoryContext context;		/* a flush's memory */
	int			count;			/* rows held back */
	TupleTableSlot *slots[SS_BULK_ROWS];
} SSBulkInsert;

extern bool bulk_insert_begin(SSBulkInsert *bulk, ResultRelInfo *rri,
							  EState *estate);
extern TupleTableSlot *bulk_insert_slot(SSBulkInsert *bulk);
extern void bulk_insert_add(SSBulkInsert *bulk);
extern void bulk_insert_flush(SSBulkInsert *bulk);
extern void bulk_insert_end(SSBulkInsert *bulk);

/* ---------------------------------------------------------------------
 * results.c: reading and writing a results table
 * ---------------------------------------------------------------------
 */
/* What writing one table of a results set needs; set up on its first write. */
typedef struct SSTableWriter
{
	ResultRelInfo *rri;			/* NULL until then */
	TupleTableSlot *slot;		/* the row being written */
	ExprState **defaults;		/* per column, the default of a column users
								 * added; NULL if no column has one */
	SSBulkInsert *bulk;			/* new rows held back (SSResults.bulk); NULL:
								 * each is inserted at once */
} SSTableWriter;

typedef struct SSResults
{
	const SSTracker *tracker;
	Snapshot	snapshot;
	bool		known_empty;	/* nothing stored before: skip latest lookups */
	bool		bulk;			/* insert new rows in bulk (bulk_insert.c) */
	Relation	closed_rel;
	Relation	closed_index;
	Relation	latest_rel;
	Relation	latest_index;
	TupleTableSlot *closed_slot;	/* a closed session being read */
	TupleTableSlot *latest_slot;	/* the current key's stored latest row */

	/* the key being worked on; its latest row is written when we leave it */
	bool		has_key;
	SSMessage	key;
	bool		latest_stored;	/* it has a latest row (in latest_slot) */
	bool		has_newest;		/* it has a session ... */
	SSSession	newest;			/* ... and this is its newest */
	bool		newest_changed; /* the latest row must be written */

	/* the ordered pass over NAME_latest (results_begin_ordered()) */
	IndexScanDesc ordered_scan; /* NULL when off or done */
	bool		ordered_done;	/* the scan passed its last entry */
	bool		has_ordered_last;
	SSMessage	ordered_last;	/* the last key it was asked for */
	bool		has_entry;		/* an entry read but not passed yet: */
	int64		entry_key[2];	/* its key (customer, agent) */
	ItemPointerData entry_tid;

	/* set up on the first write */
	EState	   *estate;
	EPQState	epqstate;
	SSTableWriter closed_writer;
	SSTableWriter latest_writer;

	/* sessions SLA policies may see missed go here; NULL if none covers */
	SSSlaQueue *sla;
} SSResults;

/*
 * btree_probe.c: visit the rows a key's index entries point at.  The
 * visitor returns true when it has found what it looks for, and sets
 * *all_dead when no version of the row is alive.
 */
typedef bool (*SSEntryVisitor) (void *arg, ItemPointer tid, bool *all_dead);
extern int	btree_probe_visit(Relation index, Snapshot snapshot,
							  const Datum *values, int nposition, int nmatch,
							  int max_tids, SSEntryVisitor visit, void *arg);
extern bool index_scan_visit(IndexScanDesc scan, SSEntryVisitor visit,
							 void *arg);

extern void results_open(SSResults *results, const SSTracker *tracker,
						 Snapshot snapshot);
extern void results_close(SSResults *results);
extern bool results_is_empty(SSResults *results);
extern bool results_last_session(SSResults *results, const SSMessage *key,
								 SSSession *session);
extern bool results_rewind_before(SSResults *results, const SSMessage *key,
								  const SSMessage *message,
								  SSSession *kept, int64 *oldest_opened_at);
extern bool results_answered_before(SSResults *results, const SSMessage *key,
									const SSMessage *message, SSSession *kept,
									int64 *oldest_opened_at);
extern void results_store(SSResults *results, const SSSession *session);
extern void results_begin_ordered(SSResults *results, int64 keys);
extern void results_end_ordered(SSResults *results);

/* ---------------------------------------------------------------------
 * windows.c: consumer positions and the consumed_windows table
 * ---------------------------------------------------------------------
 */

/* Consumed transactions: all below xmin, and those below xmax not in xip. */
typedef struct SSPosition
{
	int64		xmin;
	int64		xmax;
	int			nxip;
	int64	   *xip;			/* sorted */
} SSPosition;

typedef struct SSWindowState
{
	bool		exists;			/* false before the first consumed window */
	SSPosition	position;
	bool		has_high;
	int64		high_sent_at;	/* latest sent_at ever consumed */
	bool		has_horizon;
	int64		purged_before;	/* purge_messages() dropped older rows */
} SSWindowState;

/* What one consume_window() call did. */
typedef struct SSConsumeCounts
{
	int64		messages;
	int64		sessions_opened;
	int64		sessions_closed;
	int64		keys_recomputed;
	int64		late_messages;
	int64		late_beyond_retention;
	int64		edits;			/* edits of consumed messages applied */
	int64		first_sent_at;
	int64		last_sent_at;
	TimestampTz started_at;
} SSConsumeCounts;

extern bool windows_contains(const SSPosition *position, int64 xid);
extern void windows_position_of_snapshot(Snapshot snapshot, SSPosition *out);
extern void windows_advance(const SSPosition *previous,
							const SSPosition *current, int64 cutoff,
							SSPosition *out);
extern bool windows_load(Oid source, SSMode mode, Snapshot snapshot,
						 SSWindowState *state);
extern void windows_save(Oid source, SSMode mode, Oid results,
						 const SSPosition *upto, const SSConsumeCounts *counts,
						 bool has_high, int64 high_sent_at);

/* ---------------------------------------------------------------------
 * txid_base.c: transaction ids comparable across dump and restore
 * ---------------------------------------------------------------------
 */
extern int64 txid_base_get(void);
extern int64 txid_current_value(void);
extern int64 txid_widen(FullTransactionId next, TransactionId xid);
extern void txid_base_saving_own_window(bool saving);

/* ---------------------------------------------------------------------
 * batch.c: the rows of one consume_window() window
 * ---------------------------------------------------------------------
 */
typedef struct SSBatchRow
{
	SSMessage	message;
	int64		txid;
} SSBatchRow;

typedef struct SSBatch
{
	const SSPosition *current;	/* seen committed by this call's snapshot */
	const SSPosition *previous; /* consumed before */
	int64		limit;
	int64		cutoff;			/* highest txid kept; PG_INT64_MAX: all */
	SSBatchRow   *rows;
	int64		count;
	int64		capacity;
	int64		mapped;			/* rows[0 .. mapped) have their pages mapped */
} SSBatch;

extern void batch_init(SSBatch *batch, const SSPosition *current,
					   const SSPosition *previous, int64 limit);
extern void batch_expect_rows(double rows, void *arg);
extern void batch_collect_row(const SSMessage *message, int64 txid, void *arg);
extern void batch_shrink_to_limit(SSBatch *batch);
extern void batch_sort(SSBatch *batch, SSMode mode);

/* ---------------------------------------------------------------------
 * consume.c: consume_window()
 * ---------------------------------------------------------------------
 */
extern int	consume_batch_limit;
extern void consume_stream_tracker(Relation source, SSMode mode,
								   bool allow_enabled, SSTracker *out);
extern Relation consume_open_source(Oid relid, SSMode mode, bool allow_enabled,
									SSTracker *tracker);
extern SSMode consume_parse_mode(FunctionCallInfo fcinfo, int argno,
								 const char *function);
extern const char *consume_batch(Oid relid, SSMode mode, int64 max_messages,
								 SSConsumeCounts *counts);

/* ---------------------------------------------------------------------
 * consumer.c: the continuous consumer's workers; launcher.c: their
 * launcher under shared_preload_libraries
 * ---------------------------------------------------------------------
 */
struct BackgroundWorker;
extern void ss_worker_template(struct BackgroundWorker *worker,
							   const char *function, const char *type,
							   int restart_seconds);
extern bool consumer_register_worker(Oid dboid, TransactionId starter);
extern void consumer_wake_at_commit(void);
extern void consumer_forget_wake(void);
extern void launcher_register(void);

/* ---------------------------------------------------------------------
 * realtime.c: the track_sessions() trigger
 * ---------------------------------------------------------------------
 */
extern void realtime_forget_applied(void);

/* ---------------------------------------------------------------------
 * retention.c: purge_messages()
 * ---------------------------------------------------------------------
 */
extern bool retention_is_purging(Oid relid);

/* ---------------------------------------------------------------------
 * erasure.c: TRUNCATE of a source, forget_customer()
 * ---------------------------------------------------------------------
 */
extern void erasure_truncate_results(Trigger *trigger, Relation source);
extern void erasure_truncate_streams(Relation source);

/* ---------------------------------------------------------------------
 * edits.c: edits of deferred sources, recorded for consume_window()
 * ---------------------------------------------------------------------
 */
extern bool edits_are_recorded(Relation source);

/* An edit of a window: see edits_scan_window(). */
typedef void (*SSEditVisitor) (const SSMessage *old_message, bool old_consumed,
							   const SSMessage *new_message, void *arg);
extern int64 edits_scan_window(Oid source, Snapshot snapshot,
							   const SSPosition *previous,
							   const SSPosition *upto,
							   SSEditVisitor visitor, void *arg);
extern void edits_forget_before(Oid source, int64 below);

/* ---------------------------------------------------------------------
 * replicas.c: sources fed by logical replication
 * ---------------------------------------------------------------------
 */
extern void replicas_check_deferred(Relation source);
extern void replicas_check_edit(Relation source, AttrNumber txid_attnum,
								bool is_update);

/* ---------------------------------------------------------------------
 * rules.c: feed_rules compiled per source table, cached per backend
 * ---------------------------------------------------------------------
 */

/* One enabled rule, ready to evaluate. */
typedef struct SSRule
{
	int64		rule_id;
	char	   *name;
	char	   *channel;
	int			delivery;		/* SS_DELIVER_* bits (notify.c) */
	bool		edge;			/* on_update = 'edge' */
	ExprState  *qual;			/* the condition over the scan tuple */
} SSRule;

/*
 * The rules of one source table.  A rebuilt set replaces the old one, which
 * is freed only at transaction end (a trigger may still be using it).
 */
typedef struct SSRuleSet
{
	Oid			relid;
	MemoryContext context;		/* everything below lives here */
	char	   *table_name;		/* "schema.table", for alerts */
	int			nrules;
	SSRule	   *rules;			/* by rule_id */
	ExprContext *econtext;		/* scan tuple = the row being checked */
	bool		busy;			/* evaluating: no re-entry */
	struct SSRuleSet *next_retired;
} SSRuleSet;

extern SSRuleSet *rules_lookup(Relation source);
extern void rules_release_retired(void);

/* ---------------------------------------------------------------------
 * notify.c: NOTIFY or outbox, the 8000-byte fallback; feed rule alert JSON
 * ---------------------------------------------------------------------
 */

/* delivery: bit flags, "both" is both bits */
#define SS_DELIVER_NOTIFY	0x01
#define SS_DELIVER_OUTBOX	0x02

/* Who sends an alert, and how it goes. */
typedef struct SSAlertRoute
{
	const char *kind;			/* the JSON key naming the sender: "rule" or
								 * "policy" */
	const char *name;			/* the rule's or policy's name */
	const char *channel;
	int			delivery;		/* SS_DELIVER_* bits */
} SSAlertRoute;

extern void notify_deliver(const SSAlertRoute *route, const char *alert,
						   int len);
extern void notify_alert(const SSRuleSet *set, const SSRule *rule,
						 const char *op, TupleTableSlot *row);
extern int	notify_parse_delivery(const char *delivery);
extern void notify_check_route(const char *what, const char *name,
							   const char *channel, const char *delivery);

/* ---------------------------------------------------------------------
 * calendar.c: business-hours calendars read from their tables, cached per
 * backend
 * ---------------------------------------------------------------------
 */

/* A local time range of one weekday, in microseconds after midnight. */
typedef struct SSLocalRange
{
	int64		opens;
	int64		closes;			/* up to USECS_PER_DAY (24:00) */
} SSLocalRange;

/* One calendar as read; usable until the end of the transaction. */
typedef struct SSCalendar
{
	char		name[NAMEDATALEN];
	MemoryContext context;		/* everything below lives here */
	char	   *time_zone;
	pg_tz	   *tz;				/* pg_tzset()'s, kept by it for good */
	bool		has_hours;		/* any business_hours row at all */

	/*
	 * Per isodow (1 Monday .. 7 Sunday, [0] unused): the rows as written,
	 * sorted by opens, without exact duplicates (converted one by one near
	 * a DST change), and their union (shifted as a whole elsewhere).
	 */
	int			nrows[8];
	SSLocalRange *rows[8];
	int			nmerged[8];
	SSLocalRange *merged[8];

	int			nholidays;
	DateADT    *holidays;		/* sorted, unique */

	/*
	 * The stretch business_time.c last looked up: the zone's offset
	 * (seconds east of UTC) is stretch_gmtoff for every real instant in
	 * [stretch_from, stretch_to), seconds since 1970.
	 */
	bool		has_stretch;
	pg_time_t	stretch_from;
	pg_time_t	stretch_to;
	long int	stretch_gmtoff;

	bool		from_parallel;	/* read with a parallel query's snapshot */
	struct SSCalendar *next_retired;
} SSCalendar;

extern SSCalendar *calendar_lookup(const char *name);
extern void calendar_release_retired(void);

/* ---------------------------------------------------------------------
 * business_time.c: business_time() and business_deadline() over a calendar
 * ---------------------------------------------------------------------
 */
extern int64 business_time_duration_usecs(const Interval *span);
extern int64 business_time_between(SSCalendar *calendar, TimestampTz since,
								   TimestampTz until);
extern bool business_time_deadline(SSCalendar *calendar, TimestampTz since,
								   int64 target, TimestampTz *deadline);

/* ---------------------------------------------------------------------
 * sla_policies.c: session_stream.sla_policies, checked when written
 * ---------------------------------------------------------------------
 */

/* A results set as SLA policies see it. */
typedef struct SSSlaResultsSet
{
	Oid			view;			/* NAME, what a policy names */
	char	   *name;			/* "schema.name", for alerts */
	Oid			owner;
	SSMode		mode;
	Oid			latest;			/* NAME_latest */
	Oid			closed;			/* NAME_closed */
} SSSlaResultsSet;

extern void sla_policies_results_set(Oid view, SSSlaResultsSet *out);
extern int64 sla_policies_target_usecs(const Interval *target);

/* An enabled policy as the writers of its results set see it. */
typedef struct SSSlaTarget
{
	int64		policy_id;
	int64		target;			/* microseconds */
	TimestampTz covers_from;
} SSSlaTarget;

/*
 * What a writer of a results set queues in session_stream.sla_pending for
 * check_slas(): set up by results_open(), NULL when no policy covers it.
 */
struct SSSlaQueue
{
	Oid			results;		/* the view */
	SSMode		mode;
	int			ntargets;
	SSSlaTarget *targets;

	/* sla_pending, opened on the first row queued */
	ResultRelInfo *rri;
	TupleTableSlot *slot;
	AttrNumber	policy_attnum;
	AttrNumber	results_attnum;
	AttrNumber	customer_attnum;
	AttrNumber	agent_attnum;
	AttrNumber	opened_attnum;
	AttrNumber	due_attnum;
};

extern SSSlaQueue *sla_policies_queue_for(Oid results, SSMode mode);
extern void sla_policies_queue_session(SSSlaQueue *queue, EState *estate,
									   const SSSession *session);
extern void sla_policies_queue_close(SSSlaQueue *queue);

#endif							/* SESSION_STREAM_H */
