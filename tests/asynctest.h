/*
 * asynctest.h: what the parts of test_client_async share
 * (test_client_async.c, test_client_async_cancel.c, test_client_async_io.c):
 * channels made and deleted on the suite's connection, the server's view
 * of a channel's length, and a bounded join.
 *
 * SPDX-License-Identifier: BSD-2-Clause
 */
#ifndef CHAND_ASYNCTEST_H
#define CHAND_ASYNCTEST_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "chanclient.h"
#include "clienttest.h"

/* The server's length of name, or (size_t)-1. */
size_t raw_len(const char *name);
/* chan_make on c, or on csuite.conn; the test fails at once if it cannot. */
chan_t *make_on(chan_conn_t *c, const char *name, size_t cap);
chan_t *make(const char *name, size_t cap);
/* Delete a channel make() made, and free its handle. */
void unmake(chan_t *ch);
/* v is the four bytes of want. */
bool value_is_u32(const chan_value_t *v, uint32_t want);
/* Join t within bound_ms; false (and the thread is left) on timeout. */
bool timed_join(pthread_t t, int bound_ms);

/* Adds the cancel, deadline and error tests to the "async" suite s. */
void register_client_async_cancel(CU_pSuite s);
/* The pipelining and read token suites. */
void register_client_async_io(void);

#endif
