/*-------------------------------------------------------------------------
 *
 * batch.c
 *	  The rows of one consume_window() window: collected from the source,
 *	  cut to the batch limit, and put in key and event-time order.
 *
 * A window can hold a million rows or more.  Its array is sized up front
 * from the source's estimate of the rows in range (source.c) and grows by
 * doubling past it; its pages are mapped a few MB at a time as it fills,
 * each time in one madvise(MADV_POPULATE_WRITE) call where Linux has it.
 * Touching fresh pages one at a time costs a page fault each, and in a
 * virtual machine a fault is dear: 11-15 us per 4 kB page on the machine
 * the benchmarks run on, where mapping the same pages in one call costs
 * about 0.2 us each (README, "Benchmarks"); for a 1M-row window that is
 * about 0.1 s.
 *
 * The rows are sorted with the comparison inlined (sort_template.h).  A
 * stable radix sort by customer was tried and was slower here: its
 * scattered writes of 40-byte rows stall on memory more than the
 * comparisons cost; so was radix-sorting 8-byte keys (customer, position)
 * and gathering the rows after, one more pass over the whole array.
 *
 *-------------------------------------------------------------------------
 */
#include "session_stream.h"

#include <sys/mman.h>
#include <unistd.h>

#include "miscadmin.h"

/* Blocks below this size are left to fault in: a syscall costs more. */
#define POPULATE_MIN_BYTES (64 * 1024)

/* The array's pages are mapped about 4 MB at a time as it fills. */
#define MAP_AHEAD_ROWS ((4 * 1024 * 1024) / (int64) sizeof(SSBatchRow))

/*
 * Sized up front for at most this many rows (640 MB of address space);
 * a larger window grows past it as one without an estimate does.
 */
#define MAX_ROWS_UP_FRONT (16 * 1024 * 1024)

/*
 * Map the pages of a new block now, in one call, rather than one fault at
 * a time as they are first written.  Only an optimisation: where it is
 * not available or fails, the pages fault in as usual.
 */
static void
populate(void *block, Size size)
{
#ifdef MADV_POPULATE_WRITE
	static long page_size = 0;
	char	   *start;
	char	   *end;

	if (size < POPULATE_MIN_BYTES)
		return;
	if (page_size == 0)
		page_size = sysconf(_SC_PAGESIZE);
	if (page_size <= 0)
		return;
	start = (char *) TYPEALIGN(page_size, block);
	end = (char *) TYPEALIGN_DOWN(page_size, (char *) block + size);
	if (end > start)
		(void) madvise(start, end - start, MADV_POPULATE_WRITE);
#endif
}

/* Room for count rows; its pages are mapped as it fills (map_ahead()). */
static SSBatchRow *
allocate_rows(int64 count)
{
	return palloc_extended((Size) count * sizeof(SSBatchRow), MCXT_ALLOC_HUGE);
}

/*
 * Map the pages of the next rows to be written, a few MB ahead: an
 * estimate too high (a source whose BRIN ranges are wide) then costs
 * address space, not memory.
 */
static void
map_ahead(SSBatch *batch)
{
	int64		upto = Min(batch->capacity, batch->mapped + MAP_AHEAD_ROWS);

	populate(&batch->rows[batch->mapped], (upto - batch->mapped) * sizeof(SSBatchRow));
	batch->mapped = upto;
}

void
batch_init(SSBatch *batch, const SSPosition *current,
		   const SSPosition *previous, int64 limit)
{
	memset(batch, 0, sizeof(*batch));
	batch->current = current;
	batch->previous = previous;
	batch->limit = limit;
	batch->cutoff = PG_INT64_MAX;
	batch->capacity = Min(1024, 2 * limit);
	batch->rows = allocate_rows(batch->capacity);
}

/*
 * The source expects about "rows" rows in range: make room for them (up
 * to what the batch may hold) before they come, rather than growing to
 * it.  An SSWindowSizeHint; arg is the SSBatch.
 */
void
batch_expect_rows(double rows, void *arg)
{
	SSBatch    *batch = (SSBatch *) arg;
	int64		capacity;

	if (batch->count > 0)
		return;
	capacity = rows >= 2.0 * batch->limit ? 2 * batch->limit : (int64) rows;
	capacity = Min(capacity, MAX_ROWS_UP_FRONT);
	if (capacity <= batch->capacity)
		return;
	pfree(batch->rows);
	batch->rows = allocate_rows(capacity);
	batch->capacity = capacity;
	batch->mapped = 0;
}

static int
compare_txid(const void *a, const void *b)
{
	int64		x = ((const SSBatchRow *) a)->txid;
	int64		y = ((const SSBatchRow *) b)->txid;

	return x < y ? -1 : (x > y ? 1 : 0);
}

/*
 * Keep only the transactions with the lowest ids, at least "limit" rows
 * of them (a transaction is kept whole), and lower the cutoff to match.
 */
void
batch_shrink_to_limit(SSBatch *batch)
{
	int64		kept;

	if (batch->count <= batch->limit)
		return;
	qsort(batch->rows, batch->count, sizeof(SSBatchRow), compare_txid);
	batch->cutoff = batch->rows[batch->limit - 1].txid;
	kept = batch->limit;
	while (kept < batch->count && batch->rows[kept].txid == batch->cutoff)
		kept++;
	batch->count = kept;
}

/* Double the array: the rows copied over into pages mapped first. */
static void
grow(SSBatch *batch)
{
	SSBatchRow *rows = allocate_rows(2 * batch->capacity);

	populate(rows, batch->count * sizeof(SSBatchRow));
	memcpy(rows, batch->rows, batch->count * sizeof(SSBatchRow));
	pfree(batch->rows);
	batch->rows = rows;
	batch->capacity *= 2;
	batch->mapped = batch->count;
}

/*
 * Add a row if its transaction belongs to this window.  An
 * SSWindowRowVisitor; arg is the SSBatch.
 */
void
batch_collect_row(const SSMessage *message, int64 txid, void *arg)
{
	SSBatch	   *batch = (SSBatch *) arg;

	if (!windows_contains(batch->current, txid) ||
		windows_contains(batch->previous, txid) ||
		txid > batch->cutoff)
		return;

	if (batch->count == batch->capacity)
	{
		/* Hold at most about twice the limit: shrink, grow only if needed. */
		if (batch->capacity >= 2 * batch->limit)
			batch_shrink_to_limit(batch);
		if (batch->count == batch->capacity)
			grow(batch);
		if (txid > batch->cutoff)
			return;
	}
	if (batch->count == batch->mapped)
		map_ahead(batch);
	batch->rows[batch->count].message = *message;
	batch->rows[batch->count].txid = txid;
	batch->count++;
}

/* Key order (sessions.c), then event-time order within a key. */
static inline int
compare_runs(SSMode mode, const SSBatchRow *a, const SSBatchRow *b)
{
	int			keys = sessions_compare_keys(mode, &a->message, &b->message);

	return keys != 0 ? keys : sessions_compare_messages(&a->message, &b->message);
}

/* Sorts with the comparison inlined, one per mode. */
#define ST_SORT sort_customer_runs
#define ST_ELEMENT_TYPE SSBatchRow
#define ST_COMPARE(a, b) compare_runs(SS_MODE_CUSTOMER, a, b)
#define ST_SCOPE static
#define ST_CHECK_FOR_INTERRUPTS
#define ST_DEFINE
#include "lib/sort_template.h"

#define ST_SORT sort_pair_runs
#define ST_ELEMENT_TYPE SSBatchRow
#define ST_COMPARE(a, b) compare_runs(SS_MODE_PAIR, a, b)
#define ST_SCOPE static
#define ST_CHECK_FOR_INTERRUPTS
#define ST_DEFINE
#include "lib/sort_template.h"

/*
 * Put the rows in key order, each key's in event-time order: the order
 * consume_window() applies them in.
 */
void
batch_sort(SSBatch *batch, SSMode mode)
{
	if (mode == SS_MODE_PAIR)
		sort_pair_runs(batch->rows, batch->count);
	else
		sort_customer_runs(batch->rows, batch->count);
}
