/*
 * clienttest.h: the frame of the libchanclient suites (test_client.c,
 * test_client_async.c): one chand per suite on an ephemeral loopback port,
 * the address to dial it, a connection the suite's tests share, and the
 * bounded waits they poll with. CUnit suite hooks return 0 or -1.
 *
 * SPDX-License-Identifier: BSD-2-Clause
 */
#ifndef CHAND_CLIENTTEST_H
#define CHAND_CLIENTTEST_H

#include <stdbool.h>
#include <stdint.h>

#include "chanclient.h"
#include "codec.h"
#include "testutil.h"

#define BOUND_MS 5000			/* generous upper bound for any wait */

struct client_suite {
	struct test_server srv;
	bool up;			/* srv is running */
	char addr[64];			/* tcp://127.0.0.1:PORT */
	chan_conn_t *conn;		/* shared by the suite's tests; NULL if not dialled */
};
extern struct client_suite csuite;

/* Start chand with conf's lines (NULL: none); with dial, also dial csuite.conn. */
int cs_up(const char *conf, bool dial);
/* Close csuite.conn, stop chand (either may be absent). Always 0. */
int cs_down(void);
/* The suite hooks: cs_up(NULL, true), cs_down(). */
int cs_suite_init(void);
int cs_suite_clean(void);
/* Dial csuite.addr with o (NULL: defaults); the test fails at once if it cannot. */
chan_conn_t *cs_dial(const chan_dial_opts_t *o);
/* Dial with this cancel grace (chan_dial_opts_t.cancel_grace_ns; 0: the default). */
chan_conn_t *cs_dial_grace(int64_t grace_ns);

int64_t ms_since(int64_t t0);
/* Between polls of a condition, never instead of one. */
void pause_1ms(void);
/* INFO through a raw second connection: the server's own view. 0 or -1. */
int raw_info(const char *name, struct proto_chan_info *out);
/* Wait (BOUND_MS) until the server shows this many waiters on name. */
bool wait_waiters(const char *name, size_t senders, size_t receivers);

#endif
