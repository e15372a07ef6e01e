/*-------------------------------------------------------------------------
 *
 * calendar.c
 *	  Business-hours calendars: checking the calendar tables when they are
 *	  written, and business_time() / business_deadline() over them.
 *
 * A calendar (session_stream.calendars) is a time zone, weekly opening
 * ranges in local time (business_hours: isodow, opens, closes; closes may
 * be 24:00) and closed local days (holidays).  Local day D's range
 * [opens, closes) is the real interval
 *
 *	  [(D + opens) AT TIME ZONE zone, (D + closes) AT TIME ZONE zone)
 *
 * converted as PostgreSQL converts a timestamp in a full zone name: a
 * local time in a spring-forward gap takes the offset from before the
 * change, an ambiguous fall-back time the offset from after it, and a
 * range the change turns inside out is empty.  Business time is the
 * measure of the union of these intervals: overlapping ranges, of one day
 * or of neighbouring days, count once.
 *
 * The walk.  Both functions walk local days forward, from two days before
 * the day of `since` (no zone is 24 hours or more from UTC, so no earlier
 * day has a range that ends after `since`):
 *
 *	- a holiday adds nothing; any other day adds its ranges, converted to
 *	  real intervals ("spans"), to a pending list kept sorted by start and
 *	  merged where spans overlap;
 *	- every span of day D starts at or after (D 00:00 as if UTC) - 24 h,
 *	  so once the walk is at day D, a pending span that ends before that
 *	  horizon can overlap nothing to come: it is final, and leaves the list
 *	  in time order;
 *	- business_time() sums the final spans clipped to [since, until) and
 *	  stops when the horizon passes `until`;
 *	- business_deadline() adds up the final spans clipped to start at
 *	  `since`, and in the span where the running total reaches the target
 *	  returns the span's start plus what was missing.  That is the first
 *	  instant with business_time(since, t) = target: inside an open span or
 *	  at its end, never in the closed gap after it.
 *
 * Converting a local time.  PostgreSQL's own functions do it
 * (timestamp2tm, DetermineTimeZoneOffset, tm2timestamp: what AT TIME
 * ZONE runs for a zone name), exact to the microsecond.  Most days are
 * nowhere near a DST change, and for those every local time of the day
 * has one offset: if the zone has no transition within [D - 24 h,
 * D + 48 h] (D as if UTC; that window holds every real instant the day's
 * local times can map to, and every transition that can make one of them
 * ambiguous or skipped), the day's spans are its local ranges shifted by
 * that offset.  The calendar remembers the stretch between two
 * transitions (pg_next_dst_boundary) that it last looked up, so a walk
 * asks the zone about once per DST change; the days around a change take
 * the slow path, range by range.  A walk costs in proportion to the days
 * it covers (a few hundredths of a microsecond a day), never to the
 * minutes: ten years take about 0.1 ms.
 *
 * Worked example.  Calendar "example": Europe/Berlin, Monday to Friday
 * 09:00-12:00 and 13:00-17:00, holiday 2024-04-01 (Easter Monday).
 * Europe/Berlin changes from +01 to +02 on Sunday 2024-03-31 at 02:00.
 * business_deadline('example', '2024-03-29 16:00+01', '4 hours'):
 *
 *	  Fri 03-29  13:00-17:00 +01 = [12:00Z, 16:00Z), from since (15:00Z)
 *				 on: 1 h, total 1 h
 *	  Sat, Sun   no ranges
 *	  Mon 04-01  a holiday
 *	  Tue 04-02  09:00-12:00 +02 = [07:00Z, 10:00Z): 3 h, total 4 h
 *
 * The total reaches 4 h at the end of Tuesday's first span: the deadline
 * is 2024-04-02 10:00Z, 12:00 in Berlin (not 13:00, when the next span
 * opens), and business_time('example', '2024-03-29 16:00+01', that) is
 * 4 hours.
 *
 * Durations.  A target interval is converted to microseconds the way
 * interval comparison converts it: a day is 24 hours and a month 30 days
 * (so '1 year' is 360 days; extract(epoch ...) would count 365.25).
 * business_time() returns a plain span of hours, e.g. '30:00:00', which
 * compares equal to the target it reached ('1 day 06:00:00').  A NULL
 * calendar means around the clock: real time elapsed.
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
#include "common/int.h"
#include "datatype/timestamp.h"
#include "executor/executor.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "pgtime.h"
#include "utils/builtins.h"
#include "utils/date.h"
#include "utils/datetime.h"
#include "utils/hsearch.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"

PG_FUNCTION_INFO_V1(ss_check_calendar);
PG_FUNCTION_INFO_V1(ss_invalidate_calendars);
PG_FUNCTION_INFO_V1(ss_business_time);
PG_FUNCTION_INFO_V1(ss_business_deadline);

/*
 * No zone is 24 hours or more from UTC (PostgreSQL's own time zone code
 * assumes as much), so a local time maps to a real instant less than a day
 * away from the same digits read as UTC.
 */
#define SS_MAX_UTC_OFFSET	USECS_PER_DAY

/* A walk checks for interrupts every this many days. */
#define SS_DAYS_PER_INTERRUPT_CHECK	1024

/* A local time range of one weekday, in microseconds after midnight. */
typedef struct LocalRange
{
	int64		opens;
	int64		closes;			/* up to USECS_PER_DAY (24:00) */
} LocalRange;

/* A real interval [start, end). */
typedef struct Span
{
	TimestampTz start;
	TimestampTz end;
} Span;

struct SSCalendar
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
	LocalRange *rows[8];
	int			nmerged[8];
	LocalRange *merged[8];

	int			nholidays;
	DateADT    *holidays;		/* sorted, unique */

	/*
	 * The stretch last looked up: the zone's offset (seconds east of UTC)
	 * is stretch_gmtoff for every real instant in [stretch_from,
	 * stretch_to), seconds since 1970.
	 */
	bool		has_stretch;
	pg_time_t	stretch_from;
	pg_time_t	stretch_to;
	long int	stretch_gmtoff;

	bool		from_parallel;	/* read with a parallel query's snapshot */
	struct SSCalendar *next_retired;
};

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
 * Small conversions
 * ---------------------------------------------------------------------
 */

/* The day a timestamp falls on when its digits are read as UTC. */
static int64
day_of(TimestampTz t)
{
	int64		day = t / USECS_PER_DAY;

	if (t % USECS_PER_DAY < 0)
		day--;
	return day;
}

/* Seconds since 1970 of a timestamp that is a whole number of seconds. */
static pg_time_t
unix_seconds(Timestamp t)
{
	return (pg_time_t) (t / USECS_PER_SEC) +
		(pg_time_t) (POSTGRES_EPOCH_JDATE - UNIX_EPOCH_JDATE) * SECS_PER_DAY;
}

static int
isodow_of(int64 day)
{
	int			dow = j2day((int) (day + POSTGRES_EPOCH_JDATE));

	return dow == 0 ? 7 : dow;
}

/* An interval of plain microseconds, e.g. '30:00:00'. */
static Interval *
usecs_interval(int64 usecs)
{
	Interval   *result = palloc(sizeof(Interval));

	result->time = usecs;
	result->day = 0;
	result->month = 0;
	return result;
}

/*
 * A target duration in microseconds, as interval comparison counts it: a
 * day is 24 hours, a month 30 days.
 */
int64
calendar_duration_usecs(const Interval *span)
{
	int64		days;
	int64		usecs;

	if (pg_mul_s64_overflow((int64) span->month, DAYS_PER_MONTH, &days) ||
		pg_add_s64_overflow(days, (int64) span->day, &days) ||
		pg_mul_s64_overflow(days, USECS_PER_DAY, &usecs) ||
		pg_add_s64_overflow(usecs, span->time, &usecs))
		ereport(ERROR,
				(errcode(ERRCODE_DATETIME_VALUE_OUT_OF_RANGE),
				 errmsg("business time target is out of range"),
				 errdetail("No deadline can lie that far ahead of a timestamp.")));
	if (usecs < 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("business time target must not be negative"),
				 errdetail("The target is %s.",
						   DatumGetCString(DirectFunctionCall1(interval_out,
															   IntervalPGetDatum(span)))),
				 errhint("A target is a duration such as '30 minutes' or '2 days'.")));
	return usecs;
}

/* ---------------------------------------------------------------------
 * Local time to real time
 * ---------------------------------------------------------------------
 */

/*
 * (local AT TIME ZONE zone), as timestamp_zone() computes it for a full
 * zone name.
 */
static TimestampTz
local_to_real(const SSCalendar *calendar, Timestamp local)
{
	struct pg_tm tm;
	fsec_t		fsec;
	int			tz;
	TimestampTz result;

	if (timestamp2tm(local, NULL, &tm, &fsec, NULL, NULL) != 0)
		ereport(ERROR,
				(errcode(ERRCODE_DATETIME_VALUE_OUT_OF_RANGE),
				 errmsg("timestamp out of range")));
	tz = DetermineTimeZoneOffset(&tm, calendar->tz);
	if (tm2timestamp(&tm, fsec, &tz, &result) != 0 ||
		!IS_VALID_TIMESTAMP(result))
		ereport(ERROR,
				(errcode(ERRCODE_DATETIME_VALUE_OUT_OF_RANGE),
				 errmsg("timestamp out of range")));
	return result;
}

/*
 * Does every local time of the day starting at midnight (local digits as
 * a timestamp) have one offset?  If so, set *offset (microseconds east of
 * UTC): local - offset is the real instant.  See the file header for why
 * the window [midnight - 24 h, midnight + 48 h] is the one to check.
 */
static bool
day_offset(SSCalendar *calendar, Timestamp midnight, int64 *offset)
{
	pg_time_t	from = unix_seconds(midnight) - SECS_PER_DAY;
	pg_time_t	to = from + 3 * SECS_PER_DAY;

	if (!calendar->has_stretch || from < calendar->stretch_from ||
		to >= calendar->stretch_to)
	{
		long int	before_gmtoff;
		long int	after_gmtoff;
		int			before_isdst;
		int			after_isdst;
		pg_time_t	boundary;
		int			found;

		found = pg_next_dst_boundary(&from, &before_gmtoff, &before_isdst,
									 &boundary, &after_gmtoff, &after_isdst,
									 calendar->tz);
		if (found < 0)
			return false;
		calendar->has_stretch = true;
		calendar->stretch_from = from;
		calendar->stretch_to = found == 0 ? PG_INT64_MAX : boundary;
		calendar->stretch_gmtoff = before_gmtoff;
		if (to >= calendar->stretch_to)
			return false;
	}
	*offset = (int64) calendar->stretch_gmtoff * USECS_PER_SEC;
	return true;
}

/* ---------------------------------------------------------------------
 * The walk over local days
 * ---------------------------------------------------------------------
 */

typedef struct CalendarWalk
{
	SSCalendar *calendar;
	int64		day;			/* the next local day to add */
	int			holiday;		/* first holiday on or after it */
	TimestampTz stop;			/* nothing at or after this is wanted */
	Span	   *spans;			/* pending spans [head, nspans) */
	int			head;
	int			nspans;
	int			maxspans;
	bool		unsorted;		/* a span was added out of order */
	int			until_check;	/* days left until CHECK_FOR_INTERRUPTS */
} CalendarWalk;

static void
walk_start(CalendarWalk *walk, SSCalendar *calendar, TimestampTz since,
		   TimestampTz stop)
{
	int			lo = 0;
	int			hi = calendar->nholidays;

	walk->calendar = calendar;
	walk->day = day_of(since) - 2;
	walk->stop = stop;
	walk->maxspans = 32;
	walk->spans = palloc(walk->maxspans * sizeof(Span));
	walk->head = 0;
	walk->nspans = 0;
	walk->unsorted = false;
	walk->until_check = SS_DAYS_PER_INTERRUPT_CHECK;

	/* the first holiday on or after the first day */
	while (lo < hi)
	{
		int			mid = (lo + hi) / 2;

		if ((int64) calendar->holidays[mid] < walk->day)
			lo = mid + 1;
		else
			hi = mid;
	}
	walk->holiday = lo;
}

static void
walk_add_span(CalendarWalk *walk, TimestampTz start, TimestampTz end)
{
	Span	   *last;

	if (end <= start)
		return;					/* turned inside out by a DST change */
	if (walk->nspans > walk->head)
	{
		last = &walk->spans[walk->nspans - 1];
		if (start >= last->start && start <= last->end)
		{
			if (end > last->end)
				last->end = end;
			return;
		}
		if (start < last->start)
			walk->unsorted = true;
	}
	if (walk->nspans == walk->maxspans)
	{
		if (walk->head > 0)
		{
			walk->nspans -= walk->head;
			memmove(walk->spans, walk->spans + walk->head,
					walk->nspans * sizeof(Span));
			walk->head = 0;
		}
		if (walk->nspans == walk->maxspans)
		{
			walk->maxspans *= 2;
			walk->spans = repalloc(walk->spans, walk->maxspans * sizeof(Span));
		}
	}
	walk->spans[walk->nspans].start = start;
	walk->spans[walk->nspans].end = end;
	walk->nspans++;
}

static int
compare_spans(const void *a, const void *b)
{
	TimestampTz x = ((const Span *) a)->start;
	TimestampTz y = ((const Span *) b)->start;

	return x < y ? -1 : (x > y ? 1 : 0);
}

/* Sort the pending spans by start and merge those that overlap. */
static void
walk_sort_pending(CalendarWalk *walk)
{
	Span	   *pending = walk->spans + walk->head;
	int			n = walk->nspans - walk->head;
	int			kept = 0;
	int			i;

	qsort(pending, n, sizeof(Span), compare_spans);
	for (i = 1; i < n; i++)
	{
		if (pending[i].start <= pending[kept].end)
		{
			if (pending[i].end > pending[kept].end)
				pending[kept].end = pending[i].end;
		}
		else
			pending[++kept] = pending[i];
	}
	walk->nspans = walk->head + (n > 0 ? kept + 1 : 0);
	walk->unsorted = false;
}

/* Add the spans of the walk's next day and move on. */
static void
walk_add_day(CalendarWalk *walk)
{
	SSCalendar *calendar = walk->calendar;
	int64		day = walk->day++;
	Timestamp	midnight;
	int64		offset;
	int			isodow;
	int			i;

	if (--walk->until_check <= 0)
	{
		CHECK_FOR_INTERRUPTS();
		walk->until_check = SS_DAYS_PER_INTERRUPT_CHECK;
	}
	if (day + 3 > day_of(END_TIMESTAMP) || day - 1 < day_of(MIN_TIMESTAMP))
		ereport(ERROR,
				(errcode(ERRCODE_DATETIME_VALUE_OUT_OF_RANGE),
				 errmsg("timestamp out of range"),
				 errdetail("Business hours of calendar \"%s\" would be needed beyond the range of timestamps.",
						   calendar->name)));

	while (walk->holiday < calendar->nholidays &&
		   (int64) calendar->holidays[walk->holiday] < day)
		walk->holiday++;
	if (walk->holiday < calendar->nholidays &&
		(int64) calendar->holidays[walk->holiday] == day)
		return;

	isodow = isodow_of(day);
	if (calendar->nrows[isodow] == 0)
		return;
	midnight = day * USECS_PER_DAY;

	if (day_offset(calendar, midnight, &offset))
	{
		const LocalRange *ranges = calendar->merged[isodow];

		for (i = 0; i < calendar->nmerged[isodow]; i++)
			walk_add_span(walk, midnight + ranges[i].opens - offset,
						  midnight + ranges[i].closes - offset);
	}
	else
	{
		/* near a DST change: each row as AT TIME ZONE converts it */
		const LocalRange *ranges = calendar->rows[isodow];

		for (i = 0; i < calendar->nrows[isodow]; i++)
			walk_add_span(walk,
						  local_to_real(calendar, midnight + ranges[i].opens),
						  local_to_real(calendar, midnight + ranges[i].closes));
	}
	if (walk->unsorted)
		walk_sort_pending(walk);
}

/*
 * The next final piece of business time, in time order; false when none
 * that starts before the walk's stop remains.  A pending span that reaches
 * past the horizon is handed out up to the horizon, and the rest kept:
 * nothing to come can start before the horizon, so that part is final
 * (a calendar open around the clock is one span that never ends).
 */
static bool
walk_next(CalendarWalk *walk, Span *span)
{
	for (;;)
	{
		/* every span of walk->day and later starts at or after this */
		TimestampTz horizon = walk->day * USECS_PER_DAY - SS_MAX_UTC_OFFSET;

		if (walk->head < walk->nspans)
		{
			Span	   *first = &walk->spans[walk->head];

			if (first->start >= walk->stop)
				return false;
			if (first->end <= horizon || horizon >= walk->stop)
			{
				*span = *first;
				walk->head++;
				return true;
			}
			if (first->start < horizon)
			{
				span->start = first->start;
				span->end = horizon;
				first->start = horizon;
				return true;
			}
		}
		else if (horizon >= walk->stop)
			return false;
		walk_add_day(walk);
	}
}

/*
 * Business time in [since, until), microseconds; since < until, both
 * finite.
 */
int64
calendar_business_time(SSCalendar *calendar, TimestampTz since,
					   TimestampTz until)
{
	CalendarWalk walk;
	Span		span;
	int64		total = 0;

	if (!calendar->has_hours || until <= since)
		return 0;
	walk_start(&walk, calendar, since, until);
	while (walk_next(&walk, &span))
	{
		TimestampTz start = Max(span.start, since);
		TimestampTz end = Min(span.end, until);

		if (end > start)
			total += end - start;
	}
	pfree(walk.spans);
	return total;
}

/*
 * The first instant by which target microseconds (> 0) of business time
 * have passed since `since` (finite).  False if the calendar has no hours
 * at all.
 */
bool
calendar_deadline(SSCalendar *calendar, TimestampTz since, int64 target,
				  TimestampTz *deadline)
{
	CalendarWalk walk;
	Span		span;
	int64		total = 0;

	if (!calendar->has_hours)
		return false;
	if (since > END_TIMESTAMP - target)
		ereport(ERROR,
				(errcode(ERRCODE_DATETIME_VALUE_OUT_OF_RANGE),
				 errmsg("business deadline of calendar \"%s\" is out of range",
						calendar->name),
				 errdetail("The target is longer than the time left before the end of the timestamp range.")));
	walk_start(&walk, calendar, since, DT_NOEND);
	while (walk_next(&walk, &span))
	{
		TimestampTz start = Max(span.start, since);

		if (span.end <= start)
			continue;
		if (span.end - start >= target - total)
		{
			*deadline = start + (target - total);
			pfree(walk.spans);
			return true;
		}
		total += span.end - start;
	}
	/* walk_add_day() stops at the end of the timestamp range first */
	elog(ERROR, "business deadline walk of calendar \"%s\" ended", calendar->name);
	return false;
}

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
	LocalRange *hours;
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
			palloc(rows->maxhours * sizeof(LocalRange)) :
			repalloc(rows->hours, rows->maxhours * sizeof(LocalRange));
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
	const LocalRange *x = (const LocalRange *) a;
	const LocalRange *y = (const LocalRange *) b;

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
		LocalRange *day = palloc(Max(rows.nhours, 1) * sizeof(LocalRange));
		LocalRange *merged;
		int			n = 0;
		int			m = 0;

		for (i = 0; i < rows.nhours; i++)
			if (rows.isodows[i] == isodow)
				day[n++] = rows.hours[i];
		if (n > 1)
			qsort(day, n, sizeof(LocalRange), compare_ranges);

		/* the rows without exact duplicates, and their union */
		merged = palloc(Max(n, 1) * sizeof(LocalRange));
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

/* ---------------------------------------------------------------------
 * business_time() and business_deadline()
 * ---------------------------------------------------------------------
 */

static SSCalendar *
calendar_argument(FunctionCallInfo fcinfo)
{
	char	   *name;

	if (PG_ARGISNULL(0))
		return NULL;			/* around the clock */
	name = text_to_cstring(PG_GETARG_TEXT_PP(0));
	return calendar_lookup(name);
}

static void
reject_infinite(TimestampTz t, const char *what)
{
	if (TIMESTAMP_NOT_FINITE(t))
		ereport(ERROR,
				(errcode(ERRCODE_DATETIME_VALUE_OUT_OF_RANGE),
				 errmsg("%s cannot be infinite", what),
				 errdetail("Business time is counted between finite timestamps.")));
}

/*
 * business_time(calendar text, since timestamptz, until timestamptz)
 * RETURNS interval: the business hours in [since, until), as hours.
 */
Datum
ss_business_time(PG_FUNCTION_ARGS)
{
	SSCalendar *calendar = calendar_argument(fcinfo);
	TimestampTz since;
	TimestampTz until;
	int64		usecs = 0;

	if (PG_ARGISNULL(1) || PG_ARGISNULL(2))
		PG_RETURN_NULL();
	since = PG_GETARG_TIMESTAMPTZ(1);
	until = PG_GETARG_TIMESTAMPTZ(2);
	if (until > since)
	{
		reject_infinite(since, "since");
		reject_infinite(until, "until");
		if (calendar == NULL)
			usecs = until - since;
		else
			usecs = calendar_business_time(calendar, since, until);
	}
	PG_RETURN_INTERVAL_P(usecs_interval(usecs));
}

/*
 * business_deadline(calendar text, since timestamptz, target interval)
 * RETURNS timestamptz: the first instant by which target of business time
 * has passed since `since`; NULL if the calendar has no hours at all.
 */
Datum
ss_business_deadline(PG_FUNCTION_ARGS)
{
	SSCalendar *calendar = calendar_argument(fcinfo);
	TimestampTz since;
	int64		target;
	TimestampTz deadline;

	if (PG_ARGISNULL(1) || PG_ARGISNULL(2))
		PG_RETURN_NULL();
	since = PG_GETARG_TIMESTAMPTZ(1);
	target = calendar_duration_usecs(PG_GETARG_INTERVAL_P(2));
	reject_infinite(since, "since");
	if (target == 0)
		PG_RETURN_TIMESTAMPTZ(since);
	if (calendar == NULL)
	{
		if (pg_add_s64_overflow(since, target, &deadline) ||
			!IS_VALID_TIMESTAMP(deadline))
			ereport(ERROR,
					(errcode(ERRCODE_DATETIME_VALUE_OUT_OF_RANGE),
					 errmsg("timestamp out of range")));
		PG_RETURN_TIMESTAMPTZ(deadline);
	}
	if (!calendar_deadline(calendar, since, target, &deadline))
		PG_RETURN_NULL();
	if (!IS_VALID_TIMESTAMP(deadline))
		ereport(ERROR,
				(errcode(ERRCODE_DATETIME_VALUE_OUT_OF_RANGE),
				 errmsg("timestamp out of range")));
	PG_RETURN_TIMESTAMPTZ(deadline);
}
