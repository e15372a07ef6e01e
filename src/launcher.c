/*-------------------------------------------------------------------------
 *
 * launcher.c
 *	  With shared_preload_libraries = 'session_stream': the launcher, a
 *	  static background worker that starts the consumer worker
 *	  (consumer.c) of every database at server start, and again after a
 *	  crash restart (the postmaster starts the launcher again then).
 *
 * The launcher connects to no database, so it can read only the shared
 * catalogs: it cannot tell which databases have the extension, let alone
 * registered consumers.  It starts one worker per database that accepts
 * connections (templates aside: a process connected to a template makes
 * CREATE DATABASE from it fail); a worker that finds no extension or no
 * consumer exits at once with code 0, which unregisters it.  Its slot is
 * free again a few milliseconds later; when none is free, the launcher
 * waits a second and tries that database again, for up to 30 seconds.
 *
 * No duplicates: a worker takes its database's worker lock first and
 * exits if another worker holds it (consumer.c), so the launcher's
 * worker and one that start_consumer() started, or one the postmaster
 * kept across a crash restart, never both run.
 *
 * Databases created later get their worker from start_consumer(), as
 * without the launcher.  A SIGHUP (pg_reload_conf()) makes the launcher
 * go over the databases again, e.g. after restoring a dump whose
 * consumers table has rows.  After that the launcher only sleeps: the
 * workers are restarted by the postmaster (bgw_restart_time), not by it.
 *
 *-------------------------------------------------------------------------
 */
#include "session_stream.h"

#include "access/heapam.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "access/tableam.h"
#include "access/xact.h"
#include "catalog/pg_database.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/latch.h"
#include "tcop/tcopprot.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"

#define SS_LAUNCHER_RESTART_SECONDS	10
#define SS_SLOT_RETRIES				30	/* a second apart */

/* pg_database.datconnlimit of a database a failed DROP DATABASE left */
#define SS_DATCONNLIMIT_INVALID_DB	(-2)

PGDLLEXPORT void launcher_main(Datum main_arg);

/* Called from _PG_init() while shared_preload_libraries is processed. */
void
launcher_register(void)
{
	BackgroundWorker worker;

	ss_worker_template(&worker, "launcher_main", "session_stream launcher",
					   SS_LAUNCHER_RESTART_SECONDS);
	RegisterBackgroundWorker(&worker);
}

/* The databases a consumer may run in, from pg_database. */
static List *
consumable_databases(void)
{
	List	   *oids = NIL;
	MemoryContext cxt = CurrentMemoryContext;
	Relation	rel;
	TableScanDesc scan;
	HeapTuple	tuple;

	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	(void) GetTransactionSnapshot();
	rel = table_open(DatabaseRelationId, AccessShareLock);
	scan = table_beginscan_catalog(rel, 0, NULL);
	while ((tuple = heap_getnext(scan, ForwardScanDirection)) != NULL)
	{
		Form_pg_database db = (Form_pg_database) GETSTRUCT(tuple);
		MemoryContext old;

		if (!db->datallowconn || db->datistemplate ||
			db->datconnlimit == SS_DATCONNLIMIT_INVALID_DB)
			continue;
		old = MemoryContextSwitchTo(cxt);
		oids = lappend_oid(oids, db->oid);
		MemoryContextSwitchTo(old);
	}
	table_endscan(scan);
	table_close(rel, AccessShareLock);
	CommitTransactionCommand();
	return oids;
}

/* Sleep on the latch for up to ms milliseconds (forever if -1). */
static void
launcher_sleep(long ms)
{
	(void) WaitLatch(MyLatch,
					 WL_LATCH_SET | WL_EXIT_ON_PM_DEATH | (ms >= 0 ? WL_TIMEOUT : 0),
					 ms, PG_WAIT_EXTENSION);
	ResetLatch(MyLatch);
	CHECK_FOR_INTERRUPTS();
}

/* Start the worker of every consumable database. */
static void
launch_all(void)
{
	List	   *oids = consumable_databases();
	ListCell   *lc;
	int			started = 0;

	foreach(lc, oids)
	{
		Oid			dboid = lfirst_oid(lc);
		int			tries;

		for (tries = 0; !consumer_register_worker(dboid, InvalidTransactionId); tries++)
		{
			if (tries == SS_SLOT_RETRIES)
			{
				ereport(WARNING,
						(errcode(ERRCODE_CONFIGURATION_LIMIT_EXCEEDED),
						 errmsg("session_stream launcher could not start the consumer of database %u",
								dboid),
						 errdetail("Every background worker slot stayed in use for %d seconds.",
								   SS_SLOT_RETRIES),
						 errhint("Raise max_worker_processes, then pg_reload_conf() to try again; or call start_consumer() in that database.")));
				break;
			}
			launcher_sleep(1000);
		}
		started += tries <= SS_SLOT_RETRIES ? 1 : 0;
	}
	ereport(DEBUG1,
			(errmsg("session_stream launcher started the consumer of %d of %d databases",
					started, list_length(oids))));
	list_free(oids);
}

void
launcher_main(Datum main_arg)
{
	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	pqsignal(SIGTERM, die);
	BackgroundWorkerUnblockSignals();
	BackgroundWorkerInitializeConnection(NULL, NULL, 0);

	launch_all();
	for (;;)
	{
		launcher_sleep(-1);
		if (ConfigReloadPending)
		{
			ConfigReloadPending = false;
			ProcessConfigFile(PGC_SIGHUP);
			launch_all();
		}
	}
}
