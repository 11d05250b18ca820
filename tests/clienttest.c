/* clienttest.c: see clienttest.h. */
/* SPDX-License-Identifier: BSD-2-Clause */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1		/* program_invocation_short_name */
#endif
#include <errno.h>
#include <stdio.h>
#include <time.h>

#include "clienttest.h"

struct client_suite csuite;

int
cs_up(const char *conf, bool dial)
{
	csuite.conn = NULL;
	if (test_server_start(&csuite.srv, conf) < 0)
		return -1;
	csuite.up = true;
	snprintf(csuite.addr, sizeof csuite.addr, "tcp://127.0.0.1:%d", csuite.srv.port);
	if (dial && chan_dial(NULL, csuite.addr, NULL, &csuite.conn) != CHAN_OK)
		return -1;
	return 0;
}

int
cs_down(void)
{
	chan_conn_close(csuite.conn);
	csuite.conn = NULL;
	if (csuite.up)
		test_server_stop(&csuite.srv);
	csuite.up = false;
	return 0;
}

int
cs_suite_init(void)
{
	return cs_up(NULL, true);
}

int
cs_suite_clean(void)
{
	return cs_down();
}

chan_conn_t *
cs_dial_grace(int64_t grace_ns)
{
	chan_dial_opts_t o = { .client_name = program_invocation_short_name,
	    .cancel_grace_ns = grace_ns };

	return cs_dial(&o);
}

chan_conn_t *
cs_dial(const chan_dial_opts_t *o)
{
	chan_conn_t *c = NULL;

	CU_ASSERT_EQUAL_FATAL(chan_dial(NULL, csuite.addr, o, &c), CHAN_OK);
	return c;
}

int64_t
ms_since(int64_t t0)
{
	return (chan_now() - t0) / CHAN_MSEC;
}

void
pause_1ms(void)
{
	struct timespec ts = { 0, 1000000 };

	nanosleep(&ts, NULL);
}

int
raw_info(const char *name, struct proto_chan_info *out)
{
	return test_chan_info(csuite.srv.port, name, out);
}

bool
wait_waiters(const char *name, size_t senders, size_t receivers)
{
	return test_wait_waiters(csuite.srv.port, name, senders, receivers, BOUND_MS);
}
