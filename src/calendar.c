/*-------------------------------------------------------------------------
 *
 * calendar.c
 *	  Business-hours calendars: reading the calendar tables into a
 *	  per-backend cache, and checking the tables when they are written.
 *	  business_time.c counts business time over the calendars read here.
 *
 * A calendar (session_stream.calendars) is a time zone, weekly opening
 * ranges in local time (business_hours: isodow, opens, closes; closes may
 * be 24:00) and closed local days (holidays).  It is read into an
 * SSCalendar (session_stream.h): per weekday the ranges sorted, without
 * exact duplicates, and their union; the holidays sorted and unique.
 *
 * The checks.  check_calendar(), BEFORE INSERT OR UPDATE on the three
 * tables, refuses what business_time.c cannot use: an empty calendar name
 * or one of NAMEDATALEN bytes or more, a time zone PostgreSQL does not know
 * or one that counts leap seconds, an isodow outside 1 to 7, a range that
 * does not open before it closes, an infinite holiday.  NULLs are left to
 * the NOT NULL constraints, which run after BEFORE triggers.
 *
 * The cache.  Each backend keeps the calendars it has used in a hash by
 * name, read from the three tables with a fresh snapshot.  Any change to
 * a calendar table runs the statement trigger invalidate_calendars(),
 * which sends a relcache invalidation for that table (as
 * invalidate_feed_rules() does); the callback marks every entry invalid,
 * and the next use rebuilds it.  An entry replaced by a rebuild is freed
 * at transaction end, since a caller may still hold it.
 *
 *-------------------------------------------------------------------------
 */
#include "session_stream.h"

#include "access/htup_details.h"
#include "access/parallel.h"
#include "access/table.h"
#include "access/tableam.h"
#include "access/xact.h"
#include "catalog/namespace.h"
#include "commands/trigger.h"
#include "executor/executor.h"
#include "fmgr.h"
#include "pgtime.h"
#include "utils/builtins.h"
#include "utils/date.h"
#include "utils/hsearch.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"

PG_FUNCTION_INFO_V1(ss_check_calendar);
PG_FUNCTION_INFO_V1(ss_invalidate_calendars);

typedef struct CalendarEntry
{
	char		name[NAMEDATALEN];	/* hash key */
	bool		valid;
	SSCalendar *calendar;		/* NULL until first built */
} CalendarEntry;

static HTAB *calendar_cache = NULL;
static Oid	calendar_relids[3];	/* as of the last build */
static uint64 invalidations = 0;	/* bumped by every relevant callback */
static SSCalendar *retired = NULL;
static bool parallel_built = false; /* an entry has from_parallel set */

/* ---------------------------------------------------------------------
 * Reading a calendar
 * ---------------------------------------------------------------------
 */

static Oid
calendar_table(const char *name)
{
	Oid			relid = get_relname_relid(name, get_namespace_oid(SS_SCHEMA, false));

	if (!OidIsValid(relid))
		elog(ERROR, "table %s.%s is missing", SS_SCHEMA, name);
	return relid;
}

typedef void (*RowVisitor) (HeapTuple tuple, TupleDesc desc, void *arg);

/* Visit the rows of one calendar table whose calendar column is name. */
static void
scan_calendar_rows(Oid relid, const char *table, const char *name,
				   Snapshot snapshot, RowVisitor visit, void *arg)
{
	Relation	rel = table_open(relid, AccessShareLock);
	TupleDesc	desc = RelationGetDescr(rel);
	AttrNumber	calendar_attnum = ss_extension_attnum(desc, table, "calendar");
	TableScanDesc scan = table_beginscan(rel, snapshot, 0, NULL);
	TupleTableSlot *slot = table_slot_create(rel, NULL);

	while (table_scan_getnextslot(scan, ForwardScanDirection, slot))
	{
		bool		should_free;
		HeapTuple	tuple = ExecFetchSlotHeapTuple(slot, false, &should_free);
		bool		isnull;
		Datum		d = heap_getattr(tuple, calendar_attnum, desc, &isnull);

		if (!isnull)
		{
			text	   *value = DatumGetTextPP(d);

			if (VARSIZE_ANY_EXHDR(value) == strlen(name) &&
				memcmp(VARDATA_ANY(value), name, strlen(name)) == 0)
				visit(tuple, desc, arg);
		}
		if (should_free)
			heap_freetuple(tuple);
	}
	ExecDropSingleTupleTableSlot(slot);
	table_endscan(scan);
	table_close(rel, AccessShareLock);
}

typedef struct CalendarRows
{
	bool		found;
	char	   *time_zone;
	int			nhours;
	int			maxhours;
	int		   *isodows;
	SSLocalRange *hours;
	int			nholidays;
	int			maxholidays;
	DateADT    *holidays;
} CalendarRows;

static void
visit_calendar(HeapTuple tuple, TupleDesc desc, void *arg)
{
	CalendarRows *rows = (CalendarRows *) arg;
	bool		isnull;
	Datum		d;

	d = heap_getattr(tuple, ss_extension_attnum(desc, "calendars", "time_zone"),
					 desc, &isnull);
	rows->found = true;
	rows->time_zone = isnull ? NULL : TextDatumGetCString(d);
}

static void
visit_hours(HeapTuple tuple, TupleDesc desc, void *arg)
{
	CalendarRows *rows = (CalendarRows *) arg;
	bool		null_isodow,
				null_opens,
				null_closes;
	Datum		isodow = heap_getattr(tuple, ss_extension_attnum(desc, "business_hours", "isodow"),
									  desc, &null_isodow);
	Datum		opens = heap_getattr(tuple, ss_extension_attnum(desc, "business_hours", "opens"),
									 desc, &null_opens);
	Datum		closes = heap_getattr(tuple, ss_extension_attnum(desc, "business_hours", "closes"),
									  desc, &null_closes);

	/* the table's constraints keep out anything else */
	if (null_isodow || null_opens || null_closes ||
		DatumGetInt32(isodow) < 1 || DatumGetInt32(isodow) > 7 ||
		DatumGetTimeADT(opens) >= DatumGetTimeADT(closes))
		return;
	if (rows->nhours == rows->maxhours)
	{
		rows->maxhours = rows->maxhours == 0 ? 16 : rows->maxhours * 2;
		rows->isodows = rows->isodows == NULL ?
			palloc(rows->maxhours * sizeof(int)) :
			repalloc(rows->isodows, rows->maxhours * sizeof(int));
		rows->hours = rows->hours == NULL ?
			palloc(rows->maxhours * sizeof(SSLocalRange)) :
			repalloc(rows->hours, rows->maxhours * sizeof(SSLocalRange));
	}
	rows->isodows[rows->nhours] = DatumGetInt32(isodow);
	rows->hours[rows->nhours].opens = DatumGetTimeADT(opens);
	rows->hours[rows->nhours].closes = DatumGetTimeADT(closes);
	rows->nhours++;
}

static void
visit_holiday(HeapTuple tuple, TupleDesc desc, void *arg)
{
	CalendarRows *rows = (CalendarRows *) arg;
	bool		isnull;
	Datum		d = heap_getattr(tuple, ss_extension_attnum(desc, "holidays", "day"),
								 desc, &isnull);

	if (isnull || DATE_NOT_FINITE(DatumGetDateADT(d)))
		return;
	if (rows->nholidays == rows->maxholidays)
	{
		rows->maxholidays = rows->maxholidays == 0 ? 16 : rows->maxholidays * 2;
		rows->holidays = rows->holidays == NULL ?
			palloc(rows->maxholidays * sizeof(DateADT)) :
			repalloc(rows->holidays, rows->maxholidays * sizeof(DateADT));
	}
	rows->holidays[rows->nholidays++] = DatumGetDateADT(d);
}

static int
compare_ranges(const void *a, const void *b)
{
	const SSLocalRange *x = (const SSLocalRange *) a;
	const SSLocalRange *y = (const SSLocalRange *) b;

	if (x->opens != y->opens)
		return x->opens < y->opens ? -1 : 1;
	if (x->closes != y->closes)
		return x->closes < y->closes ? -1 : 1;
	return 0;
}

static int
compare_dates(const void *a, const void *b)
{
	DateADT		x = *(const DateADT *) a;
	DateADT		y = *(const DateADT *) b;

	return x < y ? -1 : (x > y ? 1 : 0);
}

/*
 * The time zone of a calendar, or an error saying what is wrong (pointing
 * at the column when rel is given).
 */
static pg_tz *
calendar_zone(const char *calendar, const char *time_zone, Relation rel,
			  AttrNumber attnum)
{
	pg_tz	   *tz = time_zone[0] == '\0' ? NULL : pg_tzset(time_zone);

	if (tz == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("time zone \"%s\" of calendar \"%s\" is not recognized",
						time_zone, calendar),
				 errdetail("A calendar's time zone is a name from PostgreSQL's time zone database."),
				 errhint("Use a name from pg_timezone_names, such as \"Europe/Berlin\", \"America/New_York\" or \"UTC\"."),
				 rel ? errtablecol(rel, attnum) : 0));
	if (!pg_tz_acceptable(tz))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("time zone \"%s\" of calendar \"%s\" is not valid for business hours",
						time_zone, calendar),
				 errdetail("PostgreSQL does not use time zones that count leap seconds."),
				 errhint("Use the zone's name without \"right/\"."),
				 rel ? errtablecol(rel, attnum) : 0));
	return tz;
}

/*
 * Read a calendar into a new SSCalendar in a context of its own (a child
 * of the caller's context until it is complete); NULL if there is no such
 * calendar.
 */
static SSCalendar *
build_calendar(const char *name)
{
	CalendarRows rows;
	Snapshot	snapshot;
	MemoryContext context;
	MemoryContext old;
	SSCalendar *calendar;
	pg_tz	   *tz;
	int			isodow;
	int			i;

	calendar_relids[0] = calendar_table("calendars");
	calendar_relids[1] = calendar_table("business_hours");
	calendar_relids[2] = calendar_table("holidays");

	/*
	 * A fresh snapshot even in REPEATABLE READ: the cache outlives us.  A
	 * parallel query cannot take one; it reads with its own, and the entry
	 * is dropped at transaction end.
	 */
	memset(&rows, 0, sizeof(rows));
	snapshot = RegisterSnapshot(IsInParallelMode() ? GetActiveSnapshot() :
								GetLatestSnapshot());
	scan_calendar_rows(calendar_relids[0], "calendars", name, snapshot,
					   visit_calendar, &rows);
	if (rows.found)
	{
		scan_calendar_rows(calendar_relids[1], "business_hours", name,
						   snapshot, visit_hours, &rows);
		scan_calendar_rows(calendar_relids[2], "holidays", name, snapshot,
						   visit_holiday, &rows);
	}
	UnregisterSnapshot(snapshot);
	if (!rows.found)
		return NULL;
	tz = calendar_zone(name, rows.time_zone ? rows.time_zone : "", NULL, 0);

	context = AllocSetContextCreate(CurrentMemoryContext,
									"session_stream calendar",
									ALLOCSET_SMALL_SIZES);
	MemoryContextCopyAndSetIdentifier(context, name);
	old = MemoryContextSwitchTo(context);
	calendar = palloc0(sizeof(SSCalendar));
	strlcpy(calendar->name, name, NAMEDATALEN);
	calendar->context = context;
	calendar->time_zone = pstrdup(rows.time_zone);
	calendar->tz = tz;
	calendar->has_hours = rows.nhours > 0;
	calendar->from_parallel = IsInParallelMode();

	for (isodow = 1; isodow <= 7; isodow++)
	{
		SSLocalRange *day = palloc(Max(rows.nhours, 1) * sizeof(SSLocalRange));
		SSLocalRange *merged;
		int			n = 0;
		int			m = 0;

		for (i = 0; i < rows.nhours; i++)
			if (rows.isodows[i] == isodow)
				day[n++] = rows.hours[i];
		if (n > 1)
			qsort(day, n, sizeof(SSLocalRange), compare_ranges);

		/* the rows without exact duplicates, and their union */
		merged = palloc(Max(n, 1) * sizeof(SSLocalRange));
		for (i = 0; i < n; i++)
		{
			if (i > 0 && compare_ranges(&day[i], &day[i - 1]) == 0)
				continue;
			day[calendar->nrows[isodow]++] = day[i];
			if (m > 0 && day[i].opens <= merged[m - 1].closes)
				merged[m - 1].closes = Max(merged[m - 1].closes, day[i].closes);
			else
				merged[m++] = day[i];
		}
		calendar->rows[isodow] = day;
		calendar->merged[isodow] = merged;
		calendar->nmerged[isodow] = m;
	}

	calendar->holidays = palloc(Max(rows.nholidays, 1) * sizeof(DateADT));
	if (rows.nholidays > 1)
		qsort(rows.holidays, rows.nholidays, sizeof(DateADT), compare_dates);
	for (i = 0; i < rows.nholidays; i++)
		if (i == 0 || rows.holidays[i] != rows.holidays[i - 1])
			calendar->holidays[calendar->nholidays++] = rows.holidays[i];

	MemoryContextSwitchTo(old);
	return calendar;
}

/* ---------------------------------------------------------------------
 * The per-backend cache
 * ---------------------------------------------------------------------
 */

static void
invalidate_callback(Datum arg, Oid relid)
{
	HASH_SEQ_STATUS status;
	CalendarEntry *entry;

	if (calendar_cache == NULL)
		return;
	if (OidIsValid(relid) && relid != calendar_relids[0] &&
		relid != calendar_relids[1] && relid != calendar_relids[2])
		return;
	hash_seq_init(&status, calendar_cache);
	while ((entry = hash_seq_search(&status)) != NULL)
		entry->valid = false;
	invalidations++;
}

/*
 * Called at transaction end: nothing uses a replaced calendar any more,
 * and calendars read with a parallel query's snapshot are read again.
 */
void
calendar_release_retired(void)
{
	while (retired != NULL)
	{
		SSCalendar *next = retired->next_retired;

		MemoryContextDelete(retired->context);
		retired = next;
	}
	if (parallel_built && calendar_cache != NULL)
	{
		HASH_SEQ_STATUS status;
		CalendarEntry *entry;

		hash_seq_init(&status, calendar_cache);
		while ((entry = hash_seq_search(&status)) != NULL)
			if (entry->calendar != NULL && entry->calendar->from_parallel)
				entry->valid = false;
	}
	parallel_built = false;
}

static void
no_such_calendar(const char *name)
{
	ereport(ERROR,
			(errcode(ERRCODE_UNDEFINED_OBJECT),
			 errmsg("calendar \"%s\" does not exist", name),
			 errhint("Calendars are the rows of session_stream.calendars; a NULL calendar counts around the clock.")));
}

/*
 * A calendar by name, read on first use and after any change to the
 * calendar tables; an error if there is none.  The result stays usable
 * until the end of the transaction.
 */
SSCalendar *
calendar_lookup(const char *name)
{
	char		key[NAMEDATALEN];
	CalendarEntry *entry;
	SSCalendar *calendar;
	uint64		before;
	bool		found;

	if (strlen(name) >= NAMEDATALEN)
		no_such_calendar(name); /* longer names are refused when written */
	memset(key, 0, sizeof(key));
	strlcpy(key, name, NAMEDATALEN);

	if (calendar_cache == NULL)
	{
		HASHCTL		ctl;

		ctl.keysize = NAMEDATALEN;
		ctl.entrysize = sizeof(CalendarEntry);
		ctl.hcxt = CacheMemoryContext;
		calendar_cache = hash_create("session_stream calendars", 16, &ctl,
									 HASH_ELEM | HASH_STRINGS | HASH_CONTEXT);
		CacheRegisterRelcacheCallback(invalidate_callback, (Datum) 0);
	}

	entry = hash_search(calendar_cache, key, HASH_FIND, NULL);
	if (entry != NULL && entry->valid)
		return entry->calendar;

	/*
	 * Build, then install.  An invalidation arriving while we read (table
	 * locks accept them) leaves the new calendar in use for this call but
	 * marks it for another rebuild.
	 */
	before = invalidations;
	calendar = build_calendar(key);
	entry = hash_search(calendar_cache, key, HASH_ENTER, &found);
	if (found && entry->calendar != NULL)
	{
		entry->calendar->next_retired = retired;
		retired = entry->calendar;
	}
	if (calendar == NULL)
	{
		hash_search(calendar_cache, key, HASH_REMOVE, NULL);
		no_such_calendar(name);
	}
	MemoryContextSetParent(calendar->context, CacheMemoryContext);
	if (calendar->from_parallel)
		parallel_built = true;
	entry->calendar = calendar;
	entry->valid = (invalidations == before);
	return calendar;
}

/* ---------------------------------------------------------------------
 * check_calendar(): BEFORE INSERT OR UPDATE on the calendar tables
 * ---------------------------------------------------------------------
 */

static char *
text_value(HeapTuple tuple, TupleDesc desc, AttrNumber attnum)
{
	bool		isnull;
	Datum		d = heap_getattr(tuple, attnum, desc, &isnull);

	return isnull ? NULL : TextDatumGetCString(d);
}

static void
check_calendar_name(Relation rel, AttrNumber attnum, const char *name)
{
	if (name[0] == '\0' || strlen(name) >= NAMEDATALEN)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid calendar name \"%s\"", name),
				 errdetail("A calendar name has 1 to %d bytes; this one has %zu.",
						   NAMEDATALEN - 1, strlen(name)),
				 errtablecol(rel, attnum)));
}

/* NOT NULL constraints run after BEFORE triggers: NULLs are left to them. */
static void
check_calendar_row(Relation rel, HeapTuple tuple)
{
	TupleDesc	desc = RelationGetDescr(rel);
	AttrNumber	name_attnum = ss_extension_attnum(desc, "calendars", "calendar");
	AttrNumber	zone_attnum = ss_extension_attnum(desc, "calendars", "time_zone");
	char	   *name = text_value(tuple, desc, name_attnum);
	char	   *zone = text_value(tuple, desc, zone_attnum);

	if (name == NULL)
		return;
	check_calendar_name(rel, name_attnum, name);
	if (zone == NULL)
		return;
	(void) calendar_zone(name, zone, rel, zone_attnum);
}

static char *
time_text(Datum time)
{
	return DatumGetCString(DirectFunctionCall1(time_out, time));
}

static void
check_hours_row(Relation rel, HeapTuple tuple)
{
	TupleDesc	desc = RelationGetDescr(rel);
	AttrNumber	isodow_attnum = ss_extension_attnum(desc, "business_hours", "isodow");
	AttrNumber	opens_attnum = ss_extension_attnum(desc, "business_hours", "opens");
	AttrNumber	closes_attnum = ss_extension_attnum(desc, "business_hours", "closes");
	char	   *name = text_value(tuple, desc,
								  ss_extension_attnum(desc, "business_hours", "calendar"));
	bool		null_isodow,
				null_opens,
				null_closes;
	Datum		isodow = heap_getattr(tuple, isodow_attnum, desc, &null_isodow);
	Datum		opens = heap_getattr(tuple, opens_attnum, desc, &null_opens);
	Datum		closes = heap_getattr(tuple, closes_attnum, desc, &null_closes);

	if (name == NULL)
		name = "";
	if (!null_isodow && (DatumGetInt32(isodow) < 1 || DatumGetInt32(isodow) > 7))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid isodow %d in business hours of calendar \"%s\"",
						DatumGetInt32(isodow), name),
				 errdetail("isodow numbers the days of the week from 1 (Monday) to 7 (Sunday), as extract(isodow FROM ...) does."),
				 errtablecol(rel, isodow_attnum)));
	if (!null_opens && !null_closes &&
		DatumGetTimeADT(opens) >= DatumGetTimeADT(closes))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid business hours %s-%s of calendar \"%s\"",
						time_text(opens), time_text(closes), name),
				 errdetail("A range opens before it closes, on the same day; it may close at 24:00."),
				 errhint("Split a range that runs past midnight into two rows, such as 22:00-24:00 and 00:00-06:00 on the next day."),
				 errtablecol(rel, closes_attnum)));
}

static void
check_holiday_row(Relation rel, HeapTuple tuple)
{
	TupleDesc	desc = RelationGetDescr(rel);
	AttrNumber	day_attnum = ss_extension_attnum(desc, "holidays", "day");
	char	   *name = text_value(tuple, desc,
								  ss_extension_attnum(desc, "holidays", "calendar"));
	bool		isnull;
	Datum		day = heap_getattr(tuple, day_attnum, desc, &isnull);

	if (!isnull && DATE_NOT_FINITE(DatumGetDateADT(day)))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid holiday %s of calendar \"%s\"",
						DatumGetCString(DirectFunctionCall1(date_out, day)),
						name ? name : ""),
				 errdetail("A holiday is one local day on which the calendar is closed."),
				 errtablecol(rel, day_attnum)));
}

Datum
ss_check_calendar(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = (TriggerData *) fcinfo->context;
	Relation	rel;
	HeapTuple	tuple;
	const char *table;

	if (!CALLED_AS_TRIGGER(fcinfo) ||
		!TRIGGER_FIRED_BEFORE(trigdata->tg_event) ||
		!TRIGGER_FIRED_FOR_ROW(trigdata->tg_event) ||
		TRIGGER_FIRED_BY_DELETE(trigdata->tg_event) ||
		RelationGetNamespace(trigdata->tg_relation) !=
		get_namespace_oid(SS_SCHEMA, false))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("check_calendar() must be fired BEFORE INSERT OR UPDATE ... FOR EACH ROW on a calendar table of session_stream")));
	rel = trigdata->tg_relation;
	tuple = TRIGGER_FIRED_BY_INSERT(trigdata->tg_event) ?
		trigdata->tg_trigtuple : trigdata->tg_newtuple;
	table = RelationGetRelationName(rel);

	if (strcmp(table, "calendars") == 0)
		check_calendar_row(rel, tuple);
	else if (strcmp(table, "business_hours") == 0)
		check_hours_row(rel, tuple);
	else if (strcmp(table, "holidays") == 0)
		check_holiday_row(rel, tuple);
	else
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("check_calendar() cannot check table \"%s\"", table),
				 errhint("It checks session_stream.calendars, business_hours and holidays.")));
	return PointerGetDatum(tuple);
}

/* AFTER ... FOR EACH STATEMENT on the calendar tables: every backend rereads. */
Datum
ss_invalidate_calendars(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = (TriggerData *) fcinfo->context;

	if (!CALLED_AS_TRIGGER(fcinfo))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("invalidate_calendars() was not called by the trigger manager")));
	CacheInvalidateRelcache(trigdata->tg_relation);
	return PointerGetDatum(NULL);
}
