/*
 * streamtest.h: what test_engine_stream.c and test_engine_park.c share: an
 * engine with a fixed seed, channels, sends and receives, and a stream
 * whose callbacks log what they saw (the helpers live in
 * test_engine_stream.c).
 *
 * SPDX-License-Identifier: BSD-2-Clause
 */
#ifndef CHAND_STREAMTEST_H
#define CHAND_STREAMTEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "server/engine.h"

#define MAXLOG 64

/* What a stream's callbacks saw, in order: values as their text, "closed:i", "end:status:i". */
struct srec {
	struct engine *e;
	struct engine_stream *s;
	char log[MAXLOG][32];
	int n;
	int nvals;
	int hits[4];			/* values per channel index */
	bool ended;
	int end_status, end_index;
	/* when the first value arrives: send this to send_ch (no wait), then end with end_with */
	struct chan *send_ch;
	const char *send_first;
	int end_with;
};

/* What a plain receive's done callback saw. */
struct rrec {
	int calls;
	struct engine_result res;
};

void s_value(void *arg, struct engine_result *res);
void s_end(void *arg, int status, int index);
/* An engine with no limits, seeded 777. */
struct engine *new_engine(void);
/* Make a channel (or open the existing one). */
struct chan *mk(struct engine *e, const char *name, uint32_t cap);
/* A send with no wait; returns its status (DEADLINE_EXCEEDED: nobody took it). */
int send_now(struct engine *e, struct chan *ch, const char *s);
void r_done(void *arg, struct engine_result *res);
/* A receive that must wait: r gets its result. */
struct engine_op *recv_wait(struct engine *e, struct chan *ch, struct rrec *r);
/* A stream over chans[0..n) logging into r, started with credit and flags. */
void open_stream(struct engine *e, struct srec *r, struct chan **chans, size_t n, uint32_t credit,
    unsigned flags);

#define LOG_IS(r, i, s) CU_ASSERT_STRING_EQUAL((r).log[i], s)
/* The stream ended (its end callback ran) with status, naming the case index. */
#define ENDED_WITH(r, status, index) do {		\
	CU_ASSERT((r).ended);				\
	CU_ASSERT_EQUAL((r).end_status, status);	\
	CU_ASSERT_EQUAL((r).end_index, index);		\
} while (0)

/* test_engine_park.c's suite, registered by test_engine_stream.c */
void register_engine_park(void);

#endif
