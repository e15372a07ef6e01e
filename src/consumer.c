/*-------------------------------------------------------------------------
 *
 * consumer.c
 *	  The continuous consumer: start_consumer() and stop_consumer(), and the
 *	  background worker that runs consume_window()'s work for every
 *	  registered (source, mode) of its database, each batch in a
 *	  transaction of its own, as the role that registered it.
 *
 * One worker per database, a dynamic background worker (no
 * shared_preload_libraries): start_consumer() registers it when none
 * runs.  Two locks of the database make "none runs" and "nothing left"
 * safe against each other:
 *
 * - the worker lock: a session-level advisory lock the worker holds for
 *	 its whole life.  start_consumer() tries it without waiting: if it gets
 *	 it, no worker runs, so it lets go and registers one.
 * - the registry lock: start_consumer() holds it shared until its
 *	 transaction ends; a worker that found no consumer takes it exclusive
 *	 (waiting for every start_consumer() in flight), reads the table again,
 *	 and only then lets go of the worker lock and exits.  So a consumer
 *	 registered while a worker decides to exit is either seen by that
 *	 worker, or finds the worker lock free and starts a new one.
 *
 * A new worker first waits for the transaction that registered it (its id
 * in bgw_extra): until that commits the worker would find nothing.
 *
 * The loop: read session_stream.consumers (a small table, read every
 * turn, so stop_consumer() and new registrations need no signal; they
 * set the worker's latch at commit all the same, so that they take
 * effect at once); run each consumer whose "every" has passed; sleep on
 * the latch until the next is due, at most a second.  An error in a batch aborts that batch
 * only: it is logged, stored in consumers.last_error and last_error_at
 * (in a transaction of its own) and the consumer is retried after a
 * backoff that doubles from "every" up to 30 seconds.  The consumer lock
 * (consume.c) is taken per batch and released at its commit, so a manual
 * consume_window() between batches consumes, and returns busy only while
 * a batch runs.
 *
 * While enabled SLA policies exist, the worker also runs check_slas()
 * about once a second (in a transaction of its own, as the bootstrap
 * superuser the worker connects as; an error is logged and retried with
 * the same backoff), so breaches are raised without cron.
 *
 * Exit codes (bgworker.h): 0 when nothing is left (a dynamic worker that
 * exits with 0 is unregistered); SIGTERM (pg_terminate_backend) ends it
 * with FATAL, exit code 1, and the postmaster starts it again after
 * bgw_restart_time, 5 seconds; it resumes from the committed positions.
 * A worker restarted for a database dropped meanwhile (DROP DATABASE ...
 * WITH (FORCE) terminates it) would fail to connect, again and again: it
 * looks for the database's directory first, and exits with 0 if there is
 * none.  It connects even to a database that no longer allows
 * connections, for the same reason.
 *
 * Without shared_preload_libraries the workers end with the server; with
 * it, launcher.c starts them at server start and after a crash restart.
 *
 * pg_stat_activity shows what the worker does: while a batch runs, state
 * active and query consume_window('mode', 'source') followed by a comment
 * with the source's oid; check_slas() while it checks; idle while it
 * sleeps.  consumer_stats.worker_state reads that.
 *
 *-------------------------------------------------------------------------
 */
#include "session_stream.h"

#include <sys/stat.h>

#include "access/htup_details.h"
#include "access/table.h"
#include "access/xact.h"
#include "catalog/namespace.h"
#include "catalog/pg_authid.h"
#include "catalog/pg_class.h"
#include "catalog/pg_extension.h"
#include "catalog/pg_tablespace_d.h"
#include "commands/dbcommands.h"
#include "commands/extension.h"
#include "common/relpath.h"
#include "executor/spi.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/fd.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "storage/lmgr.h"
#include "storage/lock.h"
#include "storage/proc.h"
#include "storage/procarray.h"
#include "tcop/tcopprot.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"
#include "utils/syscache.h"

/* field4 of the advisory lock tags; consume.c uses 0x5354 */
#define SS_WORKER_LOCK_CLASS	0x5355
#define SS_REGISTRY_LOCK_CLASS	0x5356

#define SS_CONSUMER_TYPE		"session_stream consumer"
#define SS_RESTART_SECONDS		5
#define SS_MAX_SLEEP_MS			1000
#define SS_MAX_BACKOFF_USECS	(30 * USECS_PER_SEC)
#define SS_MIN_EVERY_USECS		1000	/* 1 millisecond */
#define SS_MAX_EVERY_USECS		USECS_PER_DAY
#define SS_MAX_ERROR_LENGTH		2000
#define SS_SLA_CHECK_USECS		USECS_PER_SEC	/* check_slas() this often */

static bool ever_consumed = false;	/* this worker found a consumer */

PG_FUNCTION_INFO_V1(ss_start_consumer);
PG_FUNCTION_INFO_V1(ss_stop_consumer);

PGDLLEXPORT void consumer_main(Datum main_arg);

/* One registered consumer as the worker knows it. */
typedef struct ConsumerEntry
{
	Oid			source;
	SSMode		mode;
	int64		every;			/* microseconds */
	Oid			role;
	int			failures;		/* in a row, stored in consumers.failures */
	TimestampTz next_due;
	bool		seen;			/* still registered at the last read */
} ConsumerEntry;

static ConsumerEntry *entries;
static int	nentries;
static int	entries_capacity;
static MemoryContext worker_context;

static void
set_lock_tag(LOCKTAG *tag, uint16 lock_class)
{
	SET_LOCKTAG_ADVISORY(*tag, MyDatabaseId, 0, 0, lock_class);
}

/* ---------------------------------------------------------------------
 * start_consumer() and stop_consumer()
 * ---------------------------------------------------------------------
 */

static Oid
consumers_relid(void)
{
	Oid			relid = get_relname_relid("consumers",
										  get_namespace_oid(SS_SCHEMA, false));

	if (!OidIsValid(relid))
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("table session_stream.consumers does not exist"),
				 errhint("ALTER EXTENSION session_stream UPDATE adds it.")));
	return relid;
}

/*
 * Run an SQL statement on session_stream.consumers as the table's owner:
 * callers may register consumers without any privilege on the table;
 * what they may consume is checked before, as themselves.  Returns the
 * number of rows processed.
 */
static uint64
write_consumers_as_owner(const char *query, int nargs, Oid *argtypes,
						 Datum *args, const char *nulls)
{
	Oid			relid = consumers_relid();
	HeapTuple	tuple = SearchSysCache1(RELOID, ObjectIdGetDatum(relid));
	Oid			owner;
	Oid			save_user;
	int			save_sec;
	uint64		processed;

	if (!HeapTupleIsValid(tuple))
		elog(ERROR, "cache lookup failed for relation %u", relid);
	owner = ((Form_pg_class) GETSTRUCT(tuple))->relowner;
	ReleaseSysCache(tuple);

	GetUserIdAndSecContext(&save_user, &save_sec);
	SetUserIdAndSecContext(owner, save_sec | SECURITY_LOCAL_USERID_CHANGE);
	SPI_connect();
	if (SPI_execute_with_args(query, nargs, argtypes, args, nulls, false, 0) < 0)
		elog(ERROR, "could not write session_stream.consumers");
	processed = SPI_processed;
	SPI_finish();
	SetUserIdAndSecContext(save_user, save_sec);
	return processed;
}

static Oid
source_argument(FunctionCallInfo fcinfo, const char *function)
{
	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("source of %s must not be null", function),
				 errhint("Name the message table, e.g. 'session_stream.messages'.")));
	return PG_GETARG_OID(0);
}

/*
 * Fill in a background worker of this library that connects to a
 * database once recovery is over: its entry point, its type (also its
 * name, until the caller sets another) and its restart time.
 */
void
ss_worker_template(BackgroundWorker *worker, const char *function,
				   const char *type, int restart_seconds)
{
	memset(worker, 0, sizeof(*worker));
	worker->bgw_flags = BGWORKER_SHMEM_ACCESS |
		BGWORKER_BACKEND_DATABASE_CONNECTION;
	worker->bgw_start_time = BgWorkerStart_RecoveryFinished;
	worker->bgw_restart_time = restart_seconds;
	snprintf(worker->bgw_library_name, BGW_MAXLEN, "session_stream");
	snprintf(worker->bgw_function_name, BGW_MAXLEN, "%s", function);
	snprintf(worker->bgw_name, BGW_MAXLEN, "%s", type);
	snprintf(worker->bgw_type, BGW_MAXLEN, "%s", type);
}

/*
 * Register the consumer worker of database dboid (a dynamic background
 * worker; it waits for transaction starter, if valid, before reading the
 * consumers).  False if no background worker slot is free.  The launcher
 * (launcher.c) calls it too: a second worker of a database exits at once
 * (become_the_worker()).
 */
bool
consumer_register_worker(Oid dboid, TransactionId starter)
{
	BackgroundWorker worker;
	BackgroundWorkerHandle *handle;

	ss_worker_template(&worker, "consumer_main", SS_CONSUMER_TYPE,
					   SS_RESTART_SECONDS);
	snprintf(worker.bgw_name, BGW_MAXLEN, SS_CONSUMER_TYPE " of database %u",
			 dboid);
	worker.bgw_main_arg = ObjectIdGetDatum(dboid);
	memcpy(worker.bgw_extra, &starter, sizeof(starter));
	worker.bgw_notify_pid = 0;
	return RegisterDynamicBackgroundWorker(&worker, &handle);
}

/* Make sure a worker runs for this database: start one if none does. */
static void
ensure_worker(void)
{
	LOCKTAG		tag;

	set_lock_tag(&tag, SS_WORKER_LOCK_CLASS);
	if (LockAcquire(&tag, ExclusiveLock, true, true) == LOCKACQUIRE_NOT_AVAIL)
		return;					/* a worker runs, and will see our row */
	LockRelease(&tag, ExclusiveLock, true);

	if (!consumer_register_worker(MyDatabaseId, GetTopTransactionId()))
		ereport(ERROR,
				(errcode(ERRCODE_CONFIGURATION_LIMIT_EXCEEDED),
				 errmsg("could not start the session_stream consumer of database \"%s\"",
						get_database_name(MyDatabaseId)),
				 errdetail("Every background worker slot is in use."),
				 errhint("Raise max_worker_processes (a restart is needed), or stop other background workers.")));
}

/*
 * start_consumer() and stop_consumer() wake the database's worker when
 * their transaction commits, so that it reads the consumers then rather
 * than at its next turn (up to a second later).
 */
static bool wake_pending = false;

void
consumer_wake_at_commit(void)
{
	int			i;

	if (!wake_pending)
		return;
	wake_pending = false;
	for (i = 0; i < (int) ProcGlobal->allProcCount; i++)
	{
		PGPROC	   *proc = &ProcGlobal->allProcs[i];
		int			pid = proc->pid;
		const char *type;

		/* unlocked reads: at worst a spurious wakeup, or a missed one */
		if (pid == 0 || proc->databaseId != MyDatabaseId || pid == MyProcPid)
			continue;
		type = GetBackgroundWorkerTypeByPid(pid);
		if (type != NULL && strcmp(type, SS_CONSUMER_TYPE) == 0)
			SetLatch(&proc->procLatch);
	}
}

void
consumer_forget_wake(void)
{
	wake_pending = false;
}

/*
 * start_consumer(source, mode, every): register (source, mode), or change
 * its interval and role, and make sure the database's worker runs.
 */
Datum
ss_start_consumer(PG_FUNCTION_ARGS)
{
	Oid			source = source_argument(fcinfo, "start_consumer()");
	SSMode		mode = consume_parse_mode(fcinfo, 1, "start_consumer()");
	Interval   *every;
	int64		usecs;
	SSTracker	tracker;
	Relation	rel;
	LOCKTAG		tag;
	Oid			argtypes[4] = {OIDOID, TEXTOID, INTERVALOID, OIDOID};
	Datum		args[4];

	if (PG_ARGISNULL(2))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("interval of start_consumer() must not be null"),
				 errhint("Give a duration such as '100 milliseconds'.")));
	every = PG_GETARG_INTERVAL_P(2);
	if (!ss_interval_usecs(every, &usecs) ||
		usecs < SS_MIN_EVERY_USECS || usecs > SS_MAX_EVERY_USECS)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid interval \"%s\" for start_consumer()",
						DatumGetCString(DirectFunctionCall1(interval_out,
															IntervalPGetDatum(every)))),
				 errhint("Give a duration from 1 millisecond to 1 day, such as '100 milliseconds'.")));

	/* what consume_window() would refuse, refused now, as the caller */
	rel = consume_open_source(source, mode, false, &tracker);
	table_close(rel, AccessShareLock);

	/* keep an exiting worker from missing this row (see the top) */
	set_lock_tag(&tag, SS_REGISTRY_LOCK_CLASS);
	(void) LockAcquire(&tag, ShareLock, false, false);

	args[0] = ObjectIdGetDatum(source);
	args[1] = CStringGetTextDatum(trigger_args_mode_name(mode));
	args[2] = IntervalPGetDatum(every);
	args[3] = ObjectIdGetDatum(GetUserId());
	(void) write_consumers_as_owner(
									"INSERT INTO session_stream.consumers AS c"
									"   (source, mode, every, role)"
									" VALUES ($1, $2, $3, $4)"
									" ON CONFLICT (source, mode) DO UPDATE"
									"   SET every = EXCLUDED.every, role = EXCLUDED.role,"
									"       registered_at = EXCLUDED.registered_at,"
									"       failures = 0",
									4, argtypes, args, NULL);
	ensure_worker();
	wake_pending = true;
	PG_RETURN_VOID();
}

/*
 * stop_consumer(source, mode): unregister; the worker stops running it at
 * its next turn, and exits when nothing is left.  Allowed to the role that
 * registered it and the roles that have its privileges.
 */
Datum
ss_stop_consumer(PG_FUNCTION_ARGS)
{
	Oid			source = source_argument(fcinfo, "stop_consumer()");
	SSMode		mode = consume_parse_mode(fcinfo, 1, "stop_consumer()");
	const char *mode_name = trigger_args_mode_name(mode);
	Oid			argtypes[3] = {OIDOID, TEXTOID, OIDOID};
	Datum		args[3];
	char	   *source_name = ss_relid_name(source);

	args[0] = ObjectIdGetDatum(source);
	args[1] = CStringGetTextDatum(mode_name);
	args[2] = ObjectIdGetDatum(GetUserId());
	if (write_consumers_as_owner(
								 "DELETE FROM session_stream.consumers"
								 " WHERE source OPERATOR(pg_catalog.=) $1"
								 "   AND mode OPERATOR(pg_catalog.=) $2"
								 "   AND pg_catalog.pg_has_role($3, role, 'USAGE')",
								 3, argtypes, args, NULL) == 1)
	{
		wake_pending = true;
		PG_RETURN_VOID();
	}

	if (write_consumers_as_owner(
								 "SELECT FROM session_stream.consumers"
								 " WHERE source OPERATOR(pg_catalog.=) $1"
								 "   AND mode OPERATOR(pg_catalog.=) $2",
								 2, argtypes, args, NULL) == 0)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("no consumer of table \"%s\" in %s mode is registered",
						source_name, mode_name),
				 errhint("session_stream.consumer_stats lists the consumers (worker_state is not null).")));
	ereport(ERROR,
			(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
			 errmsg("permission denied to stop the consumer of table \"%s\" in %s mode",
					source_name, mode_name),
			 errdetail("Only the role that started it, and roles with its privileges, may stop it.")));
	PG_RETURN_VOID();			/* keep compiler quiet */
}

/* ---------------------------------------------------------------------
 * The worker
 * ---------------------------------------------------------------------
 */

static ConsumerEntry *
find_entry(Oid source, SSMode mode)
{
	int			i;

	for (i = 0; i < nentries; i++)
		if (entries[i].source == source && entries[i].mode == mode)
			return &entries[i];
	return NULL;
}

/*
 * Is the extension installed, and will it stay so until the transaction
 * ends?  DROP EXTENSION locks the extension exclusively, so once we hold a
 * share lock on it and still find it, its tables cannot vanish under our
 * queries.  (Without the lock, a DROP EXTENSION that committed between a
 * look-up of consumers and the read of it failed the read: the worker
 * exited with an error and was restarted, to find nothing.)
 */
static bool
lock_extension(void)
{
	for (;;)
	{
		Oid			extension = get_extension_oid("session_stream", true);

		if (!OidIsValid(extension))
			return false;
		LockDatabaseObject(ExtensionRelationId, extension, 0, AccessShareLock);
		/* locking took in the invalidations of what committed before */
		if (get_extension_oid("session_stream", true) == extension)
			return true;
		UnlockDatabaseObject(ExtensionRelationId, extension, 0, AccessShareLock);
	}
}

/* reading consumers: every turn of the worker, so the plan is kept */
static SPIPlanPtr consumers_plan = NULL;

/*
 * Read session_stream.consumers (in the caller's transaction), keeping
 * what the worker knows of consumers still registered.  Returns how many
 * there are; 0 if the extension or its table is gone.
 */
static int
load_consumers(void)
{
	Oid			schema;
	uint64		i;
	int			j;
	int			kept;

	for (j = 0; j < nentries; j++)
		entries[j].seen = false;
	if (lock_extension() &&
		OidIsValid(schema = get_namespace_oid(SS_SCHEMA, true)) &&
		OidIsValid(get_relname_relid("consumers", schema)))
	{
		SPI_connect();
		if (SPI_execute_plan(ss_kept_plan(&consumers_plan,
										  "SELECT source, mode, every, role, failures"
										  "  FROM session_stream.consumers", 0, NULL),
							 NULL, NULL, true, 0) != SPI_OK_SELECT)
			elog(ERROR, "could not read session_stream.consumers");
		for (i = 0; i < SPI_processed; i++)
		{
			HeapTuple	tuple = SPI_tuptable->vals[i];
			TupleDesc	desc = SPI_tuptable->tupdesc;
			bool		isnull;
			Oid			source = DatumGetObjectId(SPI_getbinval(tuple, desc, 1, &isnull));
			char	   *mode_name = SPI_getvalue(tuple, desc, 2);
			SSMode		mode = strcmp(mode_name, "pair") == 0 ? SS_MODE_PAIR : SS_MODE_CUSTOMER;
			ConsumerEntry *entry = find_entry(source, mode);

			if (entry == NULL)
			{
				if (nentries == entries_capacity)
				{
					entries_capacity = Max(8, 2 * entries_capacity);
					entries = entries == NULL
						? MemoryContextAlloc(worker_context, entries_capacity * sizeof(ConsumerEntry))
						: repalloc(entries, entries_capacity * sizeof(ConsumerEntry));
				}
				entry = &entries[nentries++];
				memset(entry, 0, sizeof(*entry));
				entry->source = source;
				entry->mode = mode;
				entry->next_due = GetCurrentTimestamp();
			}
			/* start_consumer() checked it: 1 ms to 1 day */
			(void) ss_interval_usecs(DatumGetIntervalP(SPI_getbinval(tuple, desc, 3, &isnull)),
									 &entry->every);
			entry->every = Max(entry->every, SS_MIN_EVERY_USECS);
			entry->role = DatumGetObjectId(SPI_getbinval(tuple, desc, 4, &isnull));
			entry->failures = DatumGetInt32(SPI_getbinval(tuple, desc, 5, &isnull));
			entry->seen = true;
		}
		SPI_finish();
	}
	for (j = 0, kept = 0; j < nentries; j++)
		if (entries[j].seen)
			entries[kept++] = entries[j];
	nentries = kept;
	return nentries;
}

static int
load_consumers_in_transaction(void)
{
	int			n;

	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	PushActiveSnapshot(GetTransactionSnapshot());
	n = load_consumers();
	PopActiveSnapshot();
	CommitTransactionCommand();
	return n;
}

/*
 * Store a consumer's error (NULL: its recovery) and its count of failures
 * in a row, in a transaction of its own.  A failure to store is logged.
 */
static void
store_outcome(ConsumerEntry *entry, const char *message)
{
	Oid			argtypes[4] = {OIDOID, TEXTOID, TEXTOID, INT4OID};
	Datum		args[4];
	char		nulls[4] = {' ', ' ', ' ', ' '};
	MemoryContext cxt = CurrentMemoryContext;

	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	PushActiveSnapshot(GetTransactionSnapshot());
	/* in the transaction's memory */
	args[0] = ObjectIdGetDatum(entry->source);
	args[1] = CStringGetTextDatum(trigger_args_mode_name(entry->mode));
	args[2] = message ? CStringGetTextDatum(message) : (Datum) 0;
	nulls[2] = message ? ' ' : 'n';
	args[3] = Int32GetDatum(entry->failures);
	PG_TRY();
	{
		SPI_connect();
		if (SPI_execute_with_args("UPDATE session_stream.consumers"
								  "   SET failures = $4,"
								  "       last_error = COALESCE($3, last_error),"
								  "       last_error_at = CASE WHEN $3 IS NULL THEN last_error_at"
								  "                       ELSE pg_catalog.now() END"
								  " WHERE source OPERATOR(pg_catalog.=) $1"
								  "   AND mode OPERATOR(pg_catalog.=) $2",
								  4, argtypes, args, nulls, false, 0) != SPI_OK_UPDATE)
			elog(ERROR, "could not update session_stream.consumers");
		SPI_finish();
		PopActiveSnapshot();
		CommitTransactionCommand();
	}
	PG_CATCH();
	{
		HOLD_INTERRUPTS();
		MemoryContextSwitchTo(cxt);
		EmitErrorReport();
		FlushErrorState();
		AbortCurrentTransaction();
		RESUME_INTERRUPTS();
	}
	PG_END_TRY();
}

/*
 * Run work(arg) in a transaction of its own.  An error aborts that
 * transaction only: it is returned (in the worker's memory), NULL if none.
 */
static ErrorData *
run_in_transaction(void (*work) (void *arg), void *arg)
{
	ErrorData  *volatile error = NULL;
	MemoryContext cxt = CurrentMemoryContext;

	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	PushActiveSnapshot(GetTransactionSnapshot());
	PG_TRY();
	{
		work(arg);
		PopActiveSnapshot();
		CommitTransactionCommand();
	}
	PG_CATCH();
	{
		/* the abort puts a changed user id back */
		HOLD_INTERRUPTS();
		MemoryContextSwitchTo(worker_context);
		error = CopyErrorData();
		FlushErrorState();
		AbortCurrentTransaction();
		MemoryContextSwitchTo(cxt);
		RESUME_INTERRUPTS();
	}
	PG_END_TRY();
	pgstat_report_stat(false);
	return error;
}

/* One batch of a consumer, as run_in_transaction() work. */
typedef struct Batch
{
	ConsumerEntry *entry;
	char		source_name[NAMEDATALEN * 2 + 8];
	const char *status;
	SSConsumeCounts counts;
} Batch;

static void
consume_as_role(void *arg)
{
	Batch	   *batch = (Batch *) arg;
	ConsumerEntry *entry = batch->entry;
	char		activity[NAMEDATALEN * 3 + 32];
	Oid			save_user;
	int			save_sec;

	/* the source's name, or its oid if it is gone */
	snprintf(batch->source_name, sizeof(batch->source_name), "%s",
			 DatumGetCString(DirectFunctionCall1(regclassout,
												 ObjectIdGetDatum(entry->source))));
	snprintf(activity, sizeof(activity), "consume_window('%s', '%s') /* source %u */",
			 trigger_args_mode_name(entry->mode), batch->source_name,
			 entry->source);
	pgstat_report_activity(STATE_RUNNING, activity);
	if (!SearchSysCacheExists1(AUTHOID, ObjectIdGetDatum(entry->role)))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("role %u that started the consumer no longer exists",
						entry->role),
				 errhint("Call start_consumer() again as another role, or stop_consumer().")));
	GetUserIdAndSecContext(&save_user, &save_sec);
	SetUserIdAndSecContext(entry->role,
						   save_sec | SECURITY_LOCAL_USERID_CHANGE |
						   SECURITY_RESTRICTED_OPERATION);
	batch->status = consume_batch(entry->source, entry->mode,
								  consume_batch_limit, &batch->counts);
	SetUserIdAndSecContext(save_user, save_sec);
}

/* Run one batch of a consumer, as its role; on error, log, store, back off. */
static void
run_consumer(ConsumerEntry *entry)
{
	const char *mode_name = trigger_args_mode_name(entry->mode);
	Batch		batch;
	ErrorData  *error;

	memset(&batch, 0, sizeof(batch));
	batch.entry = entry;
	snprintf(batch.source_name, sizeof(batch.source_name), "%u", entry->source);
	error = run_in_transaction(consume_as_role, &batch);

	if (error == NULL)
	{
		/* a full batch may have left more: come back at once */
		entry->next_due = strcmp(batch.status, "consumed") == 0 &&
			batch.counts.messages >= consume_batch_limit
			? GetCurrentTimestamp()
			: GetCurrentTimestamp() + entry->every;
		if (entry->failures > 0)
		{
			entry->failures = 0;
			store_outcome(entry, NULL);
		}
	}
	else
	{
		int64		backoff = entry->every;
		int			i;

		for (i = 0; i < entry->failures && backoff < SS_MAX_BACKOFF_USECS; i++)
			backoff *= 2;
		backoff = Min(backoff * 2, SS_MAX_BACKOFF_USECS);
		entry->failures++;
		entry->next_due = GetCurrentTimestamp() + backoff;
		if (strlen(error->message) > SS_MAX_ERROR_LENGTH)
			error->message[SS_MAX_ERROR_LENGTH] = '\0';
		ereport(LOG,
				(errmsg("session_stream consumer of table \"%s\" in %s mode failed: %s",
						batch.source_name, mode_name, error->message),
				 error->detail ? errdetail_internal("%s", error->detail) : 0,
				 errhint("Retrying in %d ms; session_stream.consumer_stats shows the last error.",
						 (int) (backoff / 1000))));
		store_outcome(entry, error->message);
		FreeErrorData(error);
	}
	pgstat_report_activity(STATE_IDLE, NULL);
}

/* check_slas() in a transaction of its own, if enabled policies exist. */
static void
check_slas_now(void *arg)
{
	if (!OidIsValid(get_relname_relid("sla_policies",
									  get_namespace_oid(SS_SCHEMA, false))))
		return;					/* a database still at 0.1 */
	pgstat_report_activity(STATE_RUNNING, "check_slas()");
	SPI_connect();
	if (SPI_execute("SELECT session_stream.check_slas()"
					" WHERE EXISTS (SELECT FROM session_stream.sla_policies WHERE enabled)",
					false, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not run session_stream.check_slas()");
	SPI_finish();
}

/*
 * About once a second, check the SLA policies of the database (its
 * consumers keep its results sets fresh); on error, log and back off.
 */
static void
run_sla_checks(void)
{
	static TimestampTz next_due = 0;
	static int	failures = 0;
	int64		backoff = SS_SLA_CHECK_USECS;
	ErrorData  *error;
	int			i;

	if (GetCurrentTimestamp() < next_due)
		return;
	error = run_in_transaction(check_slas_now, NULL);
	if (error == NULL)
		failures = 0;
	else
	{
		for (i = 0; i <= failures && backoff < SS_MAX_BACKOFF_USECS; i++)
			backoff *= 2;
		backoff = Min(backoff, SS_MAX_BACKOFF_USECS);
		failures++;
		ereport(LOG,
				(errmsg("session_stream consumer: check_slas() failed: %s",
						error->message),
				 errhint("Retrying in %d ms.", (int) (backoff / 1000))));
		FreeErrorData(error);
	}
	next_due = GetCurrentTimestamp() + backoff;
	pgstat_report_activity(STATE_IDLE, NULL);
}

/*
 * Nothing registered: exit unless a start_consumer() in flight registers
 * something (see the top of the file).  Returns only if there is work.
 */
static void
exit_if_nothing_left(void)
{
	LOCKTAG		registry;
	LOCKTAG		worker;

	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	set_lock_tag(&registry, SS_REGISTRY_LOCK_CLASS);
	(void) LockAcquire(&registry, ExclusiveLock, false, false);
	PushActiveSnapshot(GetTransactionSnapshot());
	if (load_consumers() > 0)
	{
		PopActiveSnapshot();
		CommitTransactionCommand();
		return;
	}
	PopActiveSnapshot();
	set_lock_tag(&worker, SS_WORKER_LOCK_CLASS);
	LockRelease(&worker, ExclusiveLock, true);
	CommitTransactionCommand();
	/* a worker the launcher started in a database without consumers: quiet */
	ereport(ever_consumed ? LOG : DEBUG1,
			(errmsg("session_stream consumer of database %u exits: no consumer is registered",
					MyDatabaseId)));
	proc_exit(0);				/* 0: a dynamic worker is not restarted */
}

/* Take the worker lock, or exit if another worker of the database has it. */
static void
become_the_worker(void)
{
	LOCKTAG		tag;
	TransactionId starter;

	set_lock_tag(&tag, SS_WORKER_LOCK_CLASS);
	StartTransactionCommand();
	if (LockAcquire(&tag, ExclusiveLock, true, true) == LOCKACQUIRE_NOT_AVAIL)
	{
		CommitTransactionCommand();
		proc_exit(0);			/* another one runs: not restarted */
	}
	/* wait for the start_consumer() that registered us */
	memcpy(&starter, MyBgworkerEntry->bgw_extra, sizeof(starter));
	if (TransactionIdIsValid(starter))
		XactLockTableWait(starter, NULL, NULL, XLTW_None);
	CommitTransactionCommand();
}

/* Whether database dboid still has its directory, in any tablespace. */
static bool
database_exists_on_disk(Oid dboid)
{
	struct stat st;
	char	   *path = GetDatabasePath(dboid, DEFAULTTABLESPACE_OID);
	DIR		   *dir;
	struct dirent *de;
	bool		found = stat(path, &st) == 0;

	pfree(path);
	if (found)
		return true;
	dir = AllocateDir("pg_tblspc");
	while (!found && (de = ReadDir(dir, "pg_tblspc")) != NULL)
	{
		char		other[MAXPGPATH];

		if (strspn(de->d_name, "0123456789") != strlen(de->d_name))
			continue;
		snprintf(other, sizeof(other), "pg_tblspc/%s/%s/%u",
				 de->d_name, TABLESPACE_VERSION_DIRECTORY, dboid);
		found = stat(other, &st) == 0;
	}
	FreeDir(dir);
	return found;
}

void
consumer_main(Datum main_arg)
{
	Oid			dboid = DatumGetObjectId(main_arg);

	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	pqsignal(SIGTERM, die);
	BackgroundWorkerUnblockSignals();
	if (!database_exists_on_disk(dboid))
	{
		ereport(LOG,
				(errmsg("session_stream consumer of database %u exits: the database no longer exists",
						dboid)));
		proc_exit(0);			/* not restarted */
	}
	BackgroundWorkerInitializeConnectionByOid(dboid, InvalidOid,
											  BGWORKER_BYPASS_ALLOWCONN);
	worker_context = AllocSetContextCreate(TopMemoryContext,
										   "session_stream consumer",
										   ALLOCSET_DEFAULT_SIZES);
	become_the_worker();

	for (;;)
	{
		TimestampTz now;
		TimestampTz wake;
		long		sleep_ms;
		int			i;

		CHECK_FOR_INTERRUPTS();
		if (ConfigReloadPending)
		{
			ConfigReloadPending = false;
			ProcessConfigFile(PGC_SIGHUP);
		}
		if (load_consumers_in_transaction() == 0)
			exit_if_nothing_left();
		ever_consumed = true;

		for (i = 0; i < nentries; i++)
		{
			CHECK_FOR_INTERRUPTS();
			if (entries[i].next_due <= GetCurrentTimestamp())
				run_consumer(&entries[i]);
		}
		run_sla_checks();

		now = GetCurrentTimestamp();
		wake = now + SS_MAX_SLEEP_MS * (int64) 1000;
		for (i = 0; i < nentries; i++)
			wake = Min(wake, entries[i].next_due);
		sleep_ms = wake > now ? (long) ((wake - now + 999) / 1000) : 0;
		if (sleep_ms > 0)
		{
			(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
							 sleep_ms, PG_WAIT_EXTENSION);
			ResetLatch(MyLatch);
		}
	}
}
