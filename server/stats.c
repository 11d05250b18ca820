/* SPDX-License-Identifier: BSD-2-Clause */
#include "stats.h"

/* From 10 µs to 10 s: what a broker's operations span, waits included. */
static const double bounds[STATS_BUCKETS - 1] = {
	0.00001, 0.00005, 0.0001, 0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 10,
};

void
stats_record(struct op_stats *st, uint64_t op, int status, int64_t duration_ns)
{
	double secs = (double)duration_ns / 1e9;
	int i = 0;

	if (op < STATS_OPS && status >= 0 && status <= STATUS_MAX)
		st->count[op][status]++;
	while (i < STATS_BUCKETS - 1 && secs > bounds[i])
		i++;
	st->bucket[i]++;
	st->n++;
	st->sum_seconds += secs;
}

double
stats_bucket_le(int i)
{
	return i < STATS_BUCKETS - 1 ? bounds[i] : 1.0 / 0.0;
}
