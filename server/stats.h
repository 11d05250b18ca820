/*
 * stats.h: operation counters and the latency histogram behind /metrics.
 *
 * Every request is counted once, when its reply is decided: by operation
 * and status, with the time from its arrival to its reply in a histogram
 * of fixed buckets (cumulative, as Prometheus wants them). Loop thread only.
 *
 * SPDX-License-Identifier: BSD-2-Clause
 */
#ifndef CHAND_STATS_H
#define CHAND_STATS_H

#include <stdint.h>

#include "status.h"

#define STATS_OPS 64			/* op codes below this are counted */
#define STATS_BUCKETS 14

struct op_stats {
	uint64_t count[STATS_OPS][STATUS_MAX + 1];
	uint64_t bucket[STATS_BUCKETS];	/* not cumulative; see stats_bucket_le */
	uint64_t n;
	double sum_seconds;
};

/* Count one reply. */
void stats_record(struct op_stats *st, uint64_t op, int status, int64_t duration_ns);
/* The upper bound of bucket i in seconds (the last is +Inf). */
double stats_bucket_le(int i);

#endif
