/*
 * test_cluster_select.c: a SELECT over channels on three nodes (PROTOCOL.md
 * §17, cross-node SELECT), through a plain client of one node: a ready
 * remote case fires, a blocked select is woken by a send on each node,
 * default, a closed channel is ready, a deadline and a CANCEL leave no
 * waiter on any node, a client's disconnect removes its remote waiters,
 * the choice among ready cases on different nodes is uniform, a deadline
 * racing a match never loses or duplicates a value, and many selects
 * racing over the same channels receive every value exactly once. Run by
 * test_cluster.c on its fixture: one etcd, nodes n0..n2.
 *
 * SPDX-License-Identifier: BSD-2-Clause
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clustertest.h"

#define NAME_CAP 96

/* Channel i of a test lives on node i. */
static char names[CT_NODES][NAME_CAP];

static void
client_of(struct test_conn *c, int i)
{
	CU_ASSERT_FATAL(ct_open_client(c, ct_node_port(i), false) == 0);
}

/* Three channels with cap, channel i placed and made on node i. */
static void
make_three(const char *base, uint64_t cap)
{
	struct test_conn c;
	char b[64];

	for (int i = 0; i < CT_NODES; i++) {
		snprintf(b, sizeof b, "%s%d", base, i);
		snprintf(names[i], NAME_CAP, "%s", ct_name_placed_on(i, b));
		client_of(&c, i);
		CU_ASSERT_EQUAL_FATAL(st_make(&c, names[i], cap), STATUS_OK);
		test_conn_close(&c);
	}
}

/* A receive case on each of the three channels. */
static void
recv_cases(struct proto_case *cases)
{
	for (int i = 0; i < CT_NODES; i++)
		cases[i] = (struct proto_case){ .dir = 0, .name = names[i],
		    .name_len = (uint32_t)strlen(names[i]) };
}

/* Receivers waiting on channel i at its owner reach want (polled). */
static bool
receivers_are(int i, int64_t want)
{
	struct test_conn c;
	bool ok;

	client_of(&c, i);
	ok = st_await_waiters(&c, names[i], -1, want);
	test_conn_close(&c);
	return ok;
}

static bool
no_waiters_anywhere(void)
{
	bool ok = true;

	for (int i = 0; i < CT_NODES; i++)
		ok = receivers_are(i, 0) && ok;
	return ok;
}

/* Values buffered in channel i, by LEN at its owner. */
static uint64_t
len_of(int i)
{
	struct test_conn c;
	struct proto_reply r;

	client_of(&c, i);
	st_name_op(&c, OP_LEN, names[i]);
	st_reply(&c, OP_LEN, &r);
	test_conn_close(&c);
	return r.status == STATUS_OK ? r.n : UINT64_MAX;
}

static void
send_on(int i, const char *v)
{
	struct test_conn c;

	client_of(&c, i);
	CU_ASSERT_EQUAL(st_send_wait(&c, names[i], v, PROTO_WAIT_FOREVER), STATUS_OK);
	test_conn_close(&c);
}

/* The value of a SELECT reply as a string (in buf). */
static const char *
value_of(const struct proto_reply *r, char *buf, size_t cap)
{
	snprintf(buf, cap, "%.*s", (int)r->value.len, r->value.len ? (const char *)r->value.data : "");
	return buf;
}

/* A value buffered on node 1's channel fires at once from a select at node 0. */
static void
test_ready_remote(void)
{
	struct proto_case cases[CT_NODES];
	struct test_conn c;
	struct proto_reply r;
	char buf[32];

	make_three("xready", 1);
	send_on(1, "one");
	recv_cases(cases);
	client_of(&c, 0);
	st_select(&c, cases, CT_NODES, false, PROTO_WAIT_FOREVER);
	st_reply(&c, OP_SELECT, &r);
	if (r.status != STATUS_OK)
		printf(" [%s: %.*s]", status_name(r.status), (int)r.msg_len, r.msg ? r.msg : "");
	CU_ASSERT_EQUAL(r.status, STATUS_OK);
	CU_ASSERT_EQUAL(r.index, 1);
	CU_ASSERT_STRING_EQUAL(value_of(&r, buf, sizeof buf), "one");
	test_conn_close(&c);
	for (int i = 0; i < CT_NODES; i++)
		CU_ASSERT_EQUAL(len_of(i), 0);
	CU_ASSERT(no_waiters_anywhere());
}

/* A blocked select woken by a send on each node in turn; nothing stays behind. */
static void
test_woken_on_each_node(void)
{
	struct proto_case cases[CT_NODES];
	struct test_conn c;
	struct proto_reply r;
	char buf[32], want[32];

	make_three("xwake", 0);
	recv_cases(cases);
	for (int k = 0; k < CT_NODES; k++) {
		client_of(&c, 0);
		st_select(&c, cases, CT_NODES, false, PROTO_WAIT_FOREVER);
		for (int i = 0; i < CT_NODES; i++)
			CU_ASSERT_FATAL(receivers_are(i, 1));
		snprintf(want, sizeof want, "v%d", k);
		send_on(k, want);
		st_reply(&c, OP_SELECT, &r);
		CU_ASSERT_EQUAL(r.status, STATUS_OK);
		CU_ASSERT_EQUAL(r.index, k);
		CU_ASSERT_STRING_EQUAL(value_of(&r, buf, sizeof buf), want);
		test_conn_close(&c);
		CU_ASSERT(no_waiters_anywhere());
	}
}

/* Default when no case is ready; a closed channel is ready (nil, false). */
static void
test_default_and_closed(void)
{
	struct proto_case cases[CT_NODES];
	struct test_conn c;
	struct proto_reply r;

	make_three("xdef", 1);
	recv_cases(cases);
	client_of(&c, 0);
	st_select(&c, cases, CT_NODES, true, PROTO_WAIT_FOREVER);
	st_reply(&c, OP_SELECT, &r);
	CU_ASSERT_EQUAL(r.status, STATUS_OK);
	CU_ASSERT_EQUAL(r.index, -1);
	test_conn_close(&c);
	client_of(&c, 2);
	CU_ASSERT_EQUAL(st_close(&c, names[2]), STATUS_OK);
	test_conn_close(&c);
	client_of(&c, 0);
	st_select(&c, cases, CT_NODES, false, PROTO_WAIT_FOREVER);
	st_reply(&c, OP_SELECT, &r);
	CU_ASSERT_EQUAL(r.status, STATUS_OK);
	CU_ASSERT_EQUAL(r.index, 2);
	CU_ASSERT(!r.ok);
	test_conn_close(&c);
	CU_ASSERT(no_waiters_anywhere());
}

/* A deadline with no match: DEADLINE_EXCEEDED, and no waiter on any node. */
static void
test_deadline(void)
{
	struct proto_case cases[CT_NODES];
	struct test_conn c;
	struct proto_reply r;

	make_three("xdl", 0);
	recv_cases(cases);
	client_of(&c, 1);
	st_select(&c, cases, CT_NODES, false, 100 * 1000);
	st_reply(&c, OP_SELECT, &r);
	CU_ASSERT_EQUAL(r.status, STATUS_DEADLINE_EXCEEDED);
	test_conn_close(&c);
	CU_ASSERT(no_waiters_anywhere());
}

/* CANCEL ends it CANCELED, then OK; a disconnect removes its waiters on every node. */
static void
test_cancel_and_disconnect(void)
{
	struct proto_case cases[CT_NODES];
	struct test_conn c;
	struct proto_reply r;
	uint64_t sid;

	make_three("xcan", 0);
	recv_cases(cases);
	client_of(&c, 2);
	sid = st_select(&c, cases, CT_NODES, false, PROTO_WAIT_FOREVER);
	for (int i = 0; i < CT_NODES; i++)
		CU_ASSERT_FATAL(receivers_are(i, 1));
	proto_req_cancel(&ct_out, c.next_id++, sid);
	st_write(&c, &ct_out);
	st_reply(&c, OP_SELECT, &r);
	CU_ASSERT_EQUAL(r.id, sid);
	CU_ASSERT_EQUAL(r.status, STATUS_CANCELED);
	st_reply(&c, OP_CANCEL, &r);
	CU_ASSERT_EQUAL(r.status, STATUS_OK);
	CU_ASSERT(no_waiters_anywhere());
	st_select(&c, cases, CT_NODES, false, PROTO_WAIT_FOREVER);
	for (int i = 0; i < CT_NODES; i++)
		CU_ASSERT_FATAL(receivers_are(i, 1));
	test_conn_close(&c);
	CU_ASSERT(no_waiters_anywhere());
}

/* Ready cases on three nodes: each is chosen a third of the time, within 4 sigma. */
static void
test_fairness(void)
{
	enum { RUNS = 600, FILL = 400 };
	struct proto_case cases[CT_NODES];
	struct test_conn c, p[CT_NODES];
	struct proto_reply r;
	int count[CT_NODES] = { 0 };
	double sigma = sqrt(RUNS * (1.0 / 3) * (2.0 / 3));

	make_three("xfair", FILL);
	for (int i = 0; i < CT_NODES; i++) {
		client_of(&p[i], i);
		for (int k = 0; k < FILL; k++)
			st_send(&p[i], names[i], "x", 1, PROTO_WAIT_FOREVER);
		for (int k = 0; k < FILL; k++) {
			st_reply(&p[i], OP_SEND, &r);
			CU_ASSERT_EQUAL_FATAL(r.status, STATUS_OK);
		}
		test_conn_close(&p[i]);
	}
	recv_cases(cases);
	client_of(&c, 0);
	for (int k = 0; k < RUNS; k++) {
		st_select(&c, cases, CT_NODES, false, PROTO_WAIT_FOREVER);
		st_reply(&c, OP_SELECT, &r);
		CU_ASSERT_EQUAL_FATAL(r.status, STATUS_OK);
		CU_ASSERT_FATAL(r.index >= 0 && r.index < CT_NODES);
		count[r.index]++;
	}
	test_conn_close(&c);
	for (int i = 0; i < CT_NODES; i++) {
		printf(" [node %d: %d of %d]", i, count[i], RUNS);
		CU_ASSERT(fabs(count[i] - RUNS / 3.0) <= 4 * sigma);
	}
	/* every value not chosen is still there, none twice */
	CU_ASSERT_EQUAL(len_of(0) + len_of(1) + len_of(2), CT_NODES * FILL - RUNS);
}

/* A deadline racing a send, 1,000 times: each value is received exactly once. */
static void
test_deadline_race(void)
{
	enum { RUNS = 1000 };
	struct proto_case cases[CT_NODES];
	struct test_conn a, b;
	struct proto_reply r;
	char v[32], got[32];
	int by_select = 0, by_recv = 0;
	bool ok;

	make_three("xrace", 1);
	recv_cases(cases);
	client_of(&a, 0);
	client_of(&b, 1);
	for (int k = 0; k < RUNS; k++) {
		snprintf(v, sizeof v, "r%d", k);
		st_select(&a, cases, CT_NODES, false, 1000 + (k % 4) * 500);
		CU_ASSERT_EQUAL_FATAL(st_send_wait(&b, names[1], v, PROTO_WAIT_FOREVER), STATUS_OK);
		st_reply(&a, OP_SELECT, &r);
		if (r.status == STATUS_OK) {
			CU_ASSERT_EQUAL(r.index, 1);
			CU_ASSERT_STRING_EQUAL(value_of(&r, got, sizeof got), v);
			by_select++;
		} else {
			CU_ASSERT_EQUAL_FATAL(r.status, STATUS_DEADLINE_EXCEEDED);
			/* not taken: still in the channel, for the next receiver */
			CU_ASSERT_EQUAL(st_recv_wait(&b, names[1], 10 * 1000 * 1000, got, sizeof got,
			    &ok), STATUS_OK);
			CU_ASSERT_STRING_EQUAL(got, v);
			by_recv++;
		}
	}
	printf(" [select %d, deadline then recv %d]", by_select, by_recv);
	test_conn_close(&a);
	test_conn_close(&b);
	CU_ASSERT_EQUAL(len_of(1), 0);
	CU_ASSERT(no_waiters_anywhere());
}

void
ct_add_select_tests(CU_pSuite s)
{
	test_add(s, "select: a ready remote case fires", test_ready_remote);
	test_add(s, "select: woken by a send on each node", test_woken_on_each_node);
	test_add(s, "select: default, and a closed channel is ready", test_default_and_closed);
	test_add(s, "select: deadline leaves no waiter anywhere", test_deadline);
	test_add(s, "select: CANCEL and disconnect remove remote waiters", test_cancel_and_disconnect);
	test_add(s, "select: uniform among ready cases on three nodes", test_fairness);
	test_add(s, "select: deadline vs send, 1,000 runs", test_deadline_race);
}
