/*
 * test_chanctl_ack.c: chanctl on ack channels (PROTOCOL.md §16): make's
 * delivery options, info's counters, recv acking after printing or
 * leaving the value with --no-ack, and inflight. Part of test_chanctl,
 * with a chand of its own.
 *
 * SPDX-License-Identifier: BSD-2-Clause
 */
#include <stdio.h>
#include <string.h>

#include "ctltest.h"

static void
test_make_info(void)
{
	struct run r;

	ctl(&r, NULL, "make", "--ack-wait", "30s", "--max-deliver", "3", "--dead-letter", "a.dl",
	    "a.jobs", "4", NULL);
	CU_ASSERT_EQUAL(r.status, 0);
	ctl(&r, NULL, "--json", "info", "a.jobs", NULL);
	CU_ASSERT_EQUAL(r.status, 0);
	CU_ASSERT(json_valid(r.out));
	CU_ASSERT_PTR_NOT_NULL(strstr(r.out, "\"ack_wait_s\":30"));
	CU_ASSERT_PTR_NOT_NULL(strstr(r.out, "\"inflight\":0"));
	CU_ASSERT_PTR_NOT_NULL(strstr(r.out, "\"redelivered\":0"));
	CU_ASSERT_PTR_NOT_NULL(strstr(r.out, "\"dead_lettered\":0"));
	CU_ASSERT_PTR_NOT_NULL(strstr(r.out, "\"max_unacked\":1000"));
	CU_ASSERT_PTR_NOT_NULL(strstr(r.out, "\"max_ack_pending\":0"));
	/* the channel-wide limit (PROTOCOL.md §16) */
	ctl(&r, NULL, "make", "--ack-wait", "30s", "--max-ack-pending", "7", "a.pending", "4", NULL);
	CU_ASSERT_EQUAL(r.status, 0);
	ctl(&r, NULL, "--json", "info", "a.pending", NULL);
	CU_ASSERT_PTR_NOT_NULL(strstr(r.out, "\"max_ack_pending\":7"));
	ctl(&r, NULL, "make", "--ack-wait", "30s", "--max-ack-pending", "8", "a.pending", "4", NULL);
	CU_ASSERT_EQUAL(r.status, 1);
	ctl(&r, NULL, "make", "--max-ack-pending", "3", "a.x", NULL);
	CU_ASSERT_EQUAL(r.status, 2);
	ctl(&r, NULL, "make", "--ack-wait", "1s", "--max-ack-pending", "4294967296", "a.x", NULL);
	CU_ASSERT_EQUAL(r.status, 2);
	/* the same options open it; others are EXISTS (exit 1) */
	ctl(&r, NULL, "make", "--ack-wait", "30s", "--max-deliver", "3", "--dead-letter", "a.dl",
	    "a.jobs", "4", NULL);
	CU_ASSERT_EQUAL(r.status, 0);
	ctl(&r, NULL, "make", "--ack-wait", "10s", "a.jobs", "4", NULL);
	CU_ASSERT_EQUAL(r.status, 1);
	CU_ASSERT_PTR_NOT_NULL(strstr(r.err, "exists"));
	/* usage errors */
	ctl(&r, NULL, "make", "--max-deliver", "3", "a.x", NULL);
	CU_ASSERT_EQUAL(r.status, 2);
	CU_ASSERT_PTR_NOT_NULL(strstr(r.err, "need --ack-wait"));
	ctl(&r, NULL, "make", "--ack-wait", "soon", "a.x", NULL);
	CU_ASSERT_EQUAL(r.status, 2);
	ctl(&r, NULL, "make", "--ack-wait", "1s", "--max-deliver", "-1", "a.x", NULL);
	CU_ASSERT_EQUAL(r.status, 2);
	ctl(&r, NULL, "ping", "--no-ack", NULL);
	CU_ASSERT_EQUAL(r.status, 2);
	CU_ASSERT_PTR_NOT_NULL(strstr(r.err, "only for 'recv'"));
	/* a plain channel's info has no delivery counters */
	ctl(&r, NULL, "make", "a.plain", NULL);
	ctl(&r, NULL, "--json", "info", "a.plain", NULL);
	CU_ASSERT_PTR_NULL(strstr(r.out, "inflight"));
}

static void
test_recv_ack_no_ack(void)
{
	struct run r;

	ctl(&r, NULL, "make", "--ack-wait", "30s", "a.recv", "4", NULL);
	ctl(&r, NULL, "send", "a.recv", "job", NULL);
	/* --no-ack: printed, left unacked; chanctl's exit gives it back */
	ctl(&r, NULL, "recv", "--no-ack", "a.recv", NULL);
	CU_ASSERT_EQUAL(r.status, 0);
	CU_ASSERT_STRING_EQUAL(r.out, "job\n");
	/* delivered again, acked this time */
	ctl(&r, NULL, "recv", "a.recv", NULL);
	CU_ASSERT_EQUAL(r.status, 0);
	CU_ASSERT_STRING_EQUAL(r.out, "job\n");
	ctl(&r, NULL, "--json", "info", "a.recv", NULL);
	CU_ASSERT_PTR_NOT_NULL(strstr(r.out, "\"inflight\":0"));
	CU_ASSERT_PTR_NOT_NULL(strstr(r.out, "\"redelivered\":1"));
	CU_ASSERT_PTR_NOT_NULL(strstr(r.out, "\"len\":0"));
	ctl(&r, NULL, "recv", "-t", "100ms", "a.recv", NULL);
	CU_ASSERT_EQUAL(r.status, 4);	/* nothing came back */
}

static void
test_inflight(void)
{
	struct test_conn holder;
	struct proto_reply rep;
	struct run r;
	char want[64];

	ctl(&r, NULL, "make", "--ack-wait", "30s", "a.held", "4", NULL);
	ctl(&r, NULL, "send", "a.held", "v", NULL);
	/* a raw connection receives it and holds it */
	CU_ASSERT_FATAL(test_conn_open(&holder, srv.port, true) == 0);
	st_recv(&holder, "a.held", -1);
	st_reply(&holder, OP_RECV, &rep);
	CU_ASSERT_EQUAL(rep.status, STATUS_OK);
	CU_ASSERT(rep.tag != 0 && rep.count == 1);
	ctl(&r, NULL, "--json", "inflight", "a.held", NULL);
	CU_ASSERT_EQUAL(r.status, 0);
	CU_ASSERT(json_valid(r.out));
	snprintf(want, sizeof want, "\"tag\":%llu", (unsigned long long)rep.tag);
	CU_ASSERT_PTR_NOT_NULL(strstr(r.out, want));
	CU_ASSERT_PTR_NOT_NULL(strstr(r.out, "\"count\":1"));
	CU_ASSERT_PTR_NOT_NULL(strstr(r.out, "\"total\":1"));
	ctl(&r, NULL, "inflight", "a.held", NULL);
	CU_ASSERT_EQUAL(r.status, 0);
	snprintf(want, sizeof want, " %llu ", (unsigned long long)rep.tag);
	CU_ASSERT_PTR_NOT_NULL(strstr(r.out, want));	/* the table's row */
	/* a plain channel, a missing one */
	ctl(&r, NULL, "make", "a.plain2", NULL);
	ctl(&r, NULL, "inflight", "a.plain2", NULL);
	CU_ASSERT_EQUAL(r.status, 1);
	CU_ASSERT_PTR_NOT_NULL(strstr(r.err, "not an ack channel"));
	ctl(&r, NULL, "inflight", "a.none", NULL);
	CU_ASSERT_EQUAL(r.status, 6);
	test_conn_close(&holder);
}

/* close --error on an ack channel: recv gets the value, acks it, then the error (exit 5). */
static void
test_close_error(void)
{
	struct run r;

	ctl(&r, NULL, "make", "--ack-wait", "30s", "a.closed", "4", NULL);
	ctl(&r, NULL, "send", "a.closed", "last", NULL);
	ctl(&r, NULL, "close", "--error", "disk full", "--code", "28", "a.closed", NULL);
	CU_ASSERT_EQUAL(r.status, 0);
	ctl(&r, NULL, "--json", "info", "a.closed", NULL);
	CU_ASSERT_PTR_NOT_NULL(strstr(r.out, "\"close_code\":28,\"close_error\":\"disk full\""));
	CU_ASSERT_PTR_NOT_NULL(strstr(r.out, "\"inflight\":0"));
	ctl(&r, NULL, "recv", "-n", "2", "a.closed", NULL);
	CU_ASSERT_EQUAL(r.status, 5);
	CU_ASSERT_STRING_EQUAL(r.out, "last\n");
	CU_ASSERT_STRING_EQUAL(r.err, "chanctl: a.closed: closed with error 28: disk full\n");
}

void
register_chanctl_ack(void)
{
	CU_pSuite s = test_suite("chanctl-ack", ctl_suite_init, ctl_suite_clean);

	test_add(s, "make --ack-wait, info's counters, usage errors", test_make_info);
	test_add(s, "recv acks after printing; --no-ack leaves it", test_recv_ack_no_ack);
	test_add(s, "inflight lists who holds what", test_inflight);
	test_add(s, "close --error: the value, acked, then the error", test_close_error);
}
