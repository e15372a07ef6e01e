/*-------------------------------------------------------------------------
 *
 * business_time.c
 *	  business_time() / business_deadline(): business time over a
 *	  calendar, and when a target of it has passed.  calendar.c reads the
 *	  calendars from their tables into a per-backend cache and checks the
 *	  tables when they are written.
 *
 * Local day D's range [opens, closes) of a calendar (a time zone, weekly
 * opening ranges in local time and closed local days: see calendar.c) is
 * the real interval
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
 *-------------------------------------------------------------------------
 */
#include "session_stream.h"

#include "common/int.h"
#include "datatype/timestamp.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "pgtime.h"
#include "utils/builtins.h"
#include "utils/date.h"
#include "utils/datetime.h"
#include "utils/timestamp.h"

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

/* A real interval [start, end). */
typedef struct Span
{
	TimestampTz start;
	TimestampTz end;
} Span;

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
business_time_duration_usecs(const Interval *span)
{
	int64		usecs;

	if (!ss_interval_usecs(span, &usecs))
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
		const SSLocalRange *ranges = calendar->merged[isodow];

		for (i = 0; i < calendar->nmerged[isodow]; i++)
			walk_add_span(walk, midnight + ranges[i].opens - offset,
						  midnight + ranges[i].closes - offset);
	}
	else
	{
		/* near a DST change: each row as AT TIME ZONE converts it */
		const SSLocalRange *ranges = calendar->rows[isodow];

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
business_time_between(SSCalendar *calendar, TimestampTz since,
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
business_time_deadline(SSCalendar *calendar, TimestampTz since, int64 target,
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
			usecs = business_time_between(calendar, since, until);
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
	target = business_time_duration_usecs(PG_GETARG_INTERVAL_P(2));
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
	if (!business_time_deadline(calendar, since, target, &deadline))
		PG_RETURN_NULL();
	if (!IS_VALID_TIMESTAMP(deadline))
		ereport(ERROR,
				(errcode(ERRCODE_DATETIME_VALUE_OUT_OF_RANGE),
				 errmsg("timestamp out of range")));
	PG_RETURN_TIMESTAMPTZ(deadline);
}
