/*
 * synctest.h: what the parts of test_client share (test_client.c,
 * test_client_chan.c, test_client_deadline.c): a channel made on the
 * suite's connection, a call blocked in another thread and joined within
 * BOUND_MS, and a poll on a context's done fd.
 *
 * SPDX-License-Identifier: BSD-2-Clause
 */
#ifndef CHAND_SYNCTEST_H
#define CHAND_SYNCTEST_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "chanclient.h"
#include "clienttest.h"

/* A blocked call in another thread. */
struct op_thread {
	pthread_t t;
	chan_ctx_t *ctx;
	chan_t *ch;
	enum { OP_T_RECV, OP_T_SEND, OP_T_SELECT } kind;
	int rc;
	bool ok;
	chan_value_t v;
	int64_t end;
};

/* The hook of suites that start chand but do not dial csuite.conn. */
int suite_init_noconn(void);
/* chan_make on csuite.conn (name NULL: anonymous); the test fails at once if it cannot. */
chan_t *make(const char *name, size_t cap);
/* Start a call of kind (OP_T_*) on ch with ctx in a new thread. */
void op_start(struct op_thread *o, int kind, chan_ctx_t *ctx, chan_t *ch);
/* Join within BOUND_MS; false (and the thread is left) on timeout. */
bool op_join(struct op_thread *o);
bool fd_readable(int fd, int timeout_ms);

/* The suites of the other parts, in the order test_client.c registers them. */
void register_client_chan(void);
void register_client_deadline(void);

#endif
