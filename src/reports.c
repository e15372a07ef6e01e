/*-------------------------------------------------------------------------
 *
 * reports.c
 *	  _response_stats(interval), the aggregate behind response_times():
 *	  the median, 90th and 99th percentiles, mean and maximum of a group's
 *	  response times in one pass and one sort.
 *
 * response_times() (session_stream--0.1--0.2.sql) is a PL/pgSQL function
 * that checks its arguments and runs one GROUP BY query over the results
 * set's view; this aggregate computes the five numbers of each group.
 * The same report written by hand in SQL,
 *
 *	  percentile_cont(0.5) WITHIN GROUP (ORDER BY answered_at - opened_at),
 *	  ... (0.9), ... (0.99), avg(answered_at - opened_at),
 *	  max(answered_at - opened_at)
 *
 * gives the same intervals: they are what it computes, by the same steps.
 * Only the way to them differs.  percentile_cont() feeds every value to a
 * tuplesort that compares intervals through the function manager, and
 * avg(interval) builds a two-element array per row (PostgreSQL 15); here
 * the values go into a flat array, sorted once by an inlined comparison
 * (sort_template.h), and the sum is kept as avg() keeps it.  On 3M
 * sessions the report takes 0.55-0.75 of the time of the query by hand
 * (README.md, "Reports").
 *
 * Equal to percentile_cont(), to the microsecond.  percentile_cont(p)
 * over n values takes the values at 0-based rows floor(p * (n - 1)) and
 * ceil(p * (n - 1)) of the sorted input and interpolates between them
 * with interval_mi(), interval_mul() by the fraction and interval_pl(),
 * in float8 and PostgreSQL's own interval arithmetic, which rounds to the
 * microsecond; ours makes the same calls on the same two values with the
 * same fraction, so the result is the same interval, down to how its
 * microseconds are split between the day and time fields.  The sort
 * orders as interval comparison does (a day is 24 hours, a month 30 days),
 * ties broken by the fields so that the order is total; intervals that
 * compare equal but are written differently ('1 day', '24:00:00') could
 * make percentile_cont() pick the other one, but a results set's
 * responses are all of one form: answered_at - opened_at, which
 * justifies hours into days, or business_time(), which gives hours only.
 *
 * The mean is avg(interval)'s: interval_div() of the field-by-field sum
 * (interval_pl(), with its overflow error) by the count.  The maximum is
 * the last value of the sorted array, max(interval)'s value.
 *
 * Worked example: responses 10 s, 20 s, 40 s, 1 min 30 s (n = 4).
 * p50: 0.5 * 3 = 1.5, rows 1 and 2 (20 s, 40 s), 20 s + (40 s - 20 s) *
 * 0.5 = 30 s.  p90: 2.7, rows 2 and 3, 40 s + 50 s * 0.7 = 75 s.  p99:
 * 2.97, 40 s + 50 s * 0.97 = 88.5 s.  Mean 160 s / 4 = 40 s, max 90 s.
 *
 *-------------------------------------------------------------------------
 */
#include "session_stream.h"

#include <math.h>

#include "common/int.h"
#include "common/int128.h"
#include "datatype/timestamp.h"
#include "fmgr.h"
#include "utils/array.h"
#include "utils/fmgrprotos.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

PG_FUNCTION_INFO_V1(ss_response_stats_add);
PG_FUNCTION_INFO_V1(ss_response_stats_final);

/* The values _response_stats() returns, in this order. */
static const double percentiles[] = {0.5, 0.9, 0.99};
#define SS_RESPONSE_STATS 5		/* p50, p90, p99, mean, max */

/* First size of a group's array; it doubles as it fills. */
#define SS_RESPONSE_STATS_FIRST 64

/* A group's state, in the aggregate's memory context. */
typedef struct ResponseStats
{
	int64		count;			/* values seen */
	int64		room;			/* size of values[] */
	Interval   *values;			/* every value, in input order until sorted */
	bool		sorted;			/* values[] is sorted and nothing came since */
	Interval	sum;			/* field by field, as avg(interval) sums */
} ResponseStats;

/*
 * An interval as interval comparison sees it: microseconds, a day being 24
 * hours and a month 30 days.  interval_cmp_value() of timestamp.c splits
 * the time field into days first; the total is the same.
 */
static inline INT128
interval_key(const Interval *v)
{
	INT128		key = int64_to_int128(v->time);

	int128_add_int64_mul_int64(&key, (int64) v->month * DAYS_PER_MONTH + v->day,
							   USECS_PER_DAY);
	return key;
}

static inline int
interval_order(const Interval *a, const Interval *b)
{
	int			c = int128_compare(interval_key(a), interval_key(b));

	if (c != 0)
		return c;
	/* equal spans written differently: any fixed order will do */
	if (a->month != b->month)
		return a->month < b->month ? -1 : 1;
	if (a->day != b->day)
		return a->day < b->day ? -1 : 1;
	return 0;
}

#define ST_SORT sort_intervals
#define ST_ELEMENT_TYPE Interval
#define ST_COMPARE(a, b) interval_order(a, b)
#define ST_SCOPE static
#define ST_DEFINE
#include "lib/sort_template.h"

/* interval_pl()'s sum, with its error on overflow. */
static void
add_to_sum(Interval *sum, const Interval *v)
{
	if (pg_add_s32_overflow(sum->month, v->month, &sum->month) ||
		pg_add_s32_overflow(sum->day, v->day, &sum->day) ||
		pg_add_s64_overflow(sum->time, v->time, &sum->time))
		ereport(ERROR,
				(errcode(ERRCODE_DATETIME_VALUE_OUT_OF_RANGE),
				 errmsg("interval out of range")));
}

/* _response_stats(interval)'s transition: keep the value, add it up. */
Datum
ss_response_stats_add(PG_FUNCTION_ARGS)
{
	MemoryContext aggcontext;
	ResponseStats *state;
	Interval   *v;

	if (!AggCheckCallContext(fcinfo, &aggcontext))
		elog(ERROR, "_response_stats_add called in non-aggregate context");

	state = PG_ARGISNULL(0) ? NULL : (ResponseStats *) PG_GETARG_POINTER(0);
	if (state == NULL)
	{
		state = MemoryContextAllocZero(aggcontext, sizeof(ResponseStats));
		state->room = SS_RESPONSE_STATS_FIRST;
		state->values = MemoryContextAllocHuge(aggcontext,
											   state->room * sizeof(Interval));
	}
	if (PG_ARGISNULL(1))		/* an open session */
		PG_RETURN_POINTER(state);

	v = PG_GETARG_INTERVAL_P(1);
	if (state->count == state->room)
	{
		state->room *= 2;
		state->values = repalloc_huge(state->values,
									  state->room * sizeof(Interval));
	}
	state->values[state->count++] = *v;
	state->sorted = false;
	add_to_sum(&state->sum, v);

	PG_RETURN_POINTER(state);
}

/* percentile_cont()'s interpolation: interval_lerp() of orderedsetaggs.c. */
static Datum
interpolate(const Interval *lo, const Interval *hi, double fraction)
{
	Datum		diff = DirectFunctionCall2(interval_mi,
										   IntervalPGetDatum(hi),
										   IntervalPGetDatum(lo));
	Datum		part = DirectFunctionCall2(interval_mul, diff,
										   Float8GetDatum(fraction));

	return DirectFunctionCall2(interval_pl, part, IntervalPGetDatum(lo));
}

/* percentile_cont(p) of the sorted values, as percentile_cont() takes it. */
static Datum
percentile(const ResponseStats *state, double p)
{
	int64		first = floor(p * (state->count - 1));
	int64		second = ceil(p * (state->count - 1));

	if (first == second)
		return IntervalPGetDatum(&state->values[first]);
	return interpolate(&state->values[first], &state->values[second],
					   (p * (state->count - 1)) - first);
}

/*
 * _response_stats()'s final function: {p50, p90, p99, mean, max} as an
 * interval[], NULL without a value.  It sorts the array in place, which
 * leaves the state as good as before: more values may come (a window
 * aggregate) and it may be called again.
 */
Datum
ss_response_stats_final(PG_FUNCTION_ARGS)
{
	ResponseStats *state;
	Datum		result[SS_RESPONSE_STATS];
	size_t		i;

	if (!AggCheckCallContext(fcinfo, NULL))
		elog(ERROR, "_response_stats_final called in non-aggregate context");
	state = PG_ARGISNULL(0) ? NULL : (ResponseStats *) PG_GETARG_POINTER(0);
	if (state == NULL || state->count == 0)
		PG_RETURN_NULL();

	if (!state->sorted)
	{
		sort_intervals(state->values, state->count);
		state->sorted = true;
	}
	for (i = 0; i < lengthof(percentiles); i++)
		result[i] = percentile(state, percentiles[i]);
	result[3] = DirectFunctionCall2(interval_div,
									IntervalPGetDatum(&state->sum),
									Float8GetDatum((double) state->count));
	result[4] = IntervalPGetDatum(&state->values[state->count - 1]);

	PG_RETURN_ARRAYTYPE_P(construct_array(result, SS_RESPONSE_STATS,
										  INTERVALOID, sizeof(Interval),
										  false, TYPALIGN_DOUBLE));
}
