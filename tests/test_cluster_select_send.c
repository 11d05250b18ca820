/*
 * test_cluster_select_send.c: test_cluster_select.c's cross-node SELECTs
 * (PROTOCOL.md §17) with send cases, and with an owner that dies: a send
 * case beside remote receive cases, send cases on every node send only
 * the chosen value, a granted send that is no longer ready polls the
 * select again, and a receive that may not wait takes a parked send
 * case's value; a SIGKILL of an owner while selects run loses or
 * duplicates no value of a living node, and a value held when the link to
 * its owner breaks is logged lost. Registered by test_cluster_select.c
 * (xselecttest.h) among its own tests.
 *
 * SPDX-License-Identifier: BSD-2-Clause
 */
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "xselecttest.h"

/*
 * A send case on node 1 beside receive cases on nodes 0 and 2: a receiver
 * on node 1 takes the value (the send case fires, a value buffered for a
 * receive case meanwhile stays), and when a receive case fires the value
 * was not sent.
 */
static void
test_send_case(void)
{
	struct proto_case cases[CT_NODES];
	struct test_conn c, rc;
	struct proto_reply r;
	char buf[32];
	bool ok;

	cts_make_three("xsend", 0);
	cts_recv_cases(cases);
	cases[1] = (struct proto_case){ .dir = 1, .name = cts_names[1],
	    .name_len = (uint32_t)strlen(cts_names[1]),
	    .value = { .kind = VALUE_BIN, .data = (const uint8_t *)"out", .len = 3 } };
	/* blocked, then woken by a receiver on the send case's node */
	ct_client_of(&c, 0);
	st_select(&c, cases, CT_NODES, false, PROTO_WAIT_FOREVER);
	ct_client_of(&rc, 1);
	CU_ASSERT_FATAL(st_await_waiters(&rc, cts_names[1], 1, -1));
	CU_ASSERT_EQUAL(st_recv_wait(&rc, cts_names[1], PROTO_WAIT_FOREVER, buf, sizeof buf, &ok),
	    STATUS_OK);
	CU_ASSERT(ok && strcmp(buf, "out") == 0);
	st_reply(&c, OP_SELECT, &r);
	CU_ASSERT_EQUAL(r.status, STATUS_OK);
	CU_ASSERT_EQUAL(r.index, 1);
	CU_ASSERT(cts_no_waiters_anywhere());
	CU_ASSERT(st_await_waiters(&rc, cts_names[1], 0, 0));
	test_conn_close(&rc);
	/* blocked, then woken by a send on node 2: the send case's value was never sent */
	st_select(&c, cases, CT_NODES, false, PROTO_WAIT_FOREVER);
	ct_client_of(&rc, 1);
	CU_ASSERT_FATAL(st_await_waiters(&rc, cts_names[1], 1, -1));
	test_conn_close(&rc);
	ct_send(2, cts_names[2], "in");
	st_reply(&c, OP_SELECT, &r);
	CU_ASSERT_EQUAL(r.status, STATUS_OK);
	CU_ASSERT_EQUAL(r.index, 2);
	CU_ASSERT_STRING_EQUAL(cts_value_of(&r, buf, sizeof buf), "in");
	ct_client_of(&rc, 1);
	CU_ASSERT(st_await_waiters(&rc, cts_names[1], 0, 0));
	CU_ASSERT_EQUAL(st_recv_wait(&rc, cts_names[1], 0, buf, sizeof buf, &ok),
	    STATUS_DEADLINE_EXCEEDED);
	test_conn_close(&rc);
	test_conn_close(&c);
	CU_ASSERT(cts_no_waiters_anywhere());
}

/* Send case i of cases: value v on channel i. */
static void
send_case(struct proto_case *cases, int i, const char *v)
{
	cases[i] = (struct proto_case){ .dir = 1, .name = cts_names[i],
	    .name_len = (uint32_t)strlen(cts_names[i]),
	    .value = { .kind = VALUE_BIN, .data = (const uint8_t *)v, .len = strlen(v) } };
}

/* A RECV on channel i at its owner, at once; "" when there is nothing. */
static const char *
take_now(int i, char *buf, size_t cap)
{
	struct test_conn c;
	bool ok;

	ct_client_of(&c, i);
	if (st_recv_wait(&c, cts_names[i], 0, buf, cap, &ok) != STATUS_OK || !ok)
		buf[0] = '\0';
	test_conn_close(&c);
	return buf;
}

/*
 * A receive that may not wait at a send case's owner: a RECV with wait 0,
 * then a SELECT with default, each takes the value of a cross-node
 * select's send case parked there (its home grants the claim the receive
 * made), the other send case's value is not sent; with nothing parked,
 * both answer at once (DEADLINE_EXCEEDED, default).
 */
static void
test_poll_takes_claim(void)
{
	struct proto_case cases[CT_NODES], rcase;
	struct test_conn c, rc;
	struct proto_reply r;
	char buf[32];
	bool ok;

	cts_make_three("xpoll", 0);
	rcase = cts_recv_case(1);
	ct_client_of(&c, 0);
	ct_client_of(&rc, 1);
	for (int k = 0; k < 2; k++) {
		send_case(cases, 1, k ? "b" : "a");
		send_case(cases, 2, k ? "b" : "a");
		st_select(&c, &cases[1], 2, false, PROTO_WAIT_FOREVER);
		CU_ASSERT_FATAL(st_await_waiters(&rc, cts_names[1], 1, -1));
		if (k == 0) {
			CU_ASSERT_EQUAL(st_recv_wait(&rc, cts_names[1], 0, buf, sizeof buf, &ok),
			    STATUS_OK);
			CU_ASSERT(ok && strcmp(buf, "a") == 0);
		} else {
			st_select(&rc, &rcase, 1, true, PROTO_WAIT_FOREVER);
			st_reply(&rc, OP_SELECT, &r);
			CU_ASSERT(r.status == STATUS_OK && r.index == 0 && r.ok);
			CU_ASSERT_STRING_EQUAL(cts_value_of(&r, buf, sizeof buf), "b");
		}
		st_reply(&c, OP_SELECT, &r);
		CU_ASSERT_EQUAL(r.status, STATUS_OK);
		CU_ASSERT_EQUAL(r.index, 0);
		CU_ASSERT(cts_no_waiters_anywhere());
		CU_ASSERT_STRING_EQUAL(take_now(2, buf, sizeof buf), "");
	}
	CU_ASSERT_EQUAL(st_recv_wait(&rc, cts_names[1], 0, buf, sizeof buf, &ok),
	    STATUS_DEADLINE_EXCEEDED);
	st_select(&rc, &rcase, 1, true, PROTO_WAIT_FOREVER);
	st_reply(&rc, OP_SELECT, &r);
	CU_ASSERT(r.status == STATUS_OK && r.index == -1);
	test_conn_close(&rc);
	test_conn_close(&c);
}

/*
 * Send cases on all three nodes (unbuffered): blocked, a receiver on node
 * 2 takes its value and no other is sent; with receivers waiting on two
 * nodes, exactly one of them gets a value. Buffered (cap 1), each of 3
 * ready send cases is chosen (uniform: 60 runs miss one with probability
 * 3 × (2/3)^60 < 1e-10) and exactly the chosen value is sent per run.
 */
static void
test_sends_on_nodes(void)
{
	enum { RUNS = 60 };
	struct proto_case cases[CT_NODES];
	struct test_conn c, rc[2];
	struct proto_reply r, rr;
	char buf[32], v[CT_NODES][8];
	int chosen[CT_NODES] = { 0 };
	bool ok;

	cts_make_three("xsends", 0);
	for (int i = 0; i < CT_NODES; i++) {
		snprintf(v[i], sizeof v[i], "s%d", i);
		send_case(cases, i, v[i]);
	}
	ct_client_of(&c, 0);
	st_select(&c, cases, CT_NODES, false, PROTO_WAIT_FOREVER);
	for (int i = 0; i < CT_NODES; i++) {
		ct_client_of(&rc[0], i);
		CU_ASSERT_FATAL(st_await_waiters(&rc[0], cts_names[i], 1, -1));
		test_conn_close(&rc[0]);
	}
	ct_client_of(&rc[0], 2);
	CU_ASSERT_EQUAL(st_recv_wait(&rc[0], cts_names[2], PROTO_WAIT_FOREVER, buf, sizeof buf, &ok),
	    STATUS_OK);
	CU_ASSERT(ok && strcmp(buf, "s2") == 0);
	test_conn_close(&rc[0]);
	st_reply(&c, OP_SELECT, &r);
	CU_ASSERT_EQUAL(r.status, STATUS_OK);
	CU_ASSERT_EQUAL(r.index, 2);
	for (int i = 0; i < CT_NODES; i++) {
		ct_client_of(&rc[0], i);
		CU_ASSERT(st_await_waiters(&rc[0], cts_names[i], 0, 0));
		test_conn_close(&rc[0]);
	}
	/* receivers waiting on nodes 0 and 1: one gets its value, the other still waits */
	for (int i = 0; i < 2; i++) {
		ct_client_of(&rc[i], i);
		st_recv(&rc[i], cts_names[i], PROTO_WAIT_FOREVER);
		CU_ASSERT_FATAL(ct_await_receivers(i, cts_names[i], 1));
	}
	st_select(&c, cases, 2, false, PROTO_WAIT_FOREVER);
	st_reply(&c, OP_SELECT, &r);
	CU_ASSERT_EQUAL_FATAL(r.status, STATUS_OK);
	CU_ASSERT_FATAL(r.index == 0 || r.index == 1);
	st_reply(&rc[r.index], OP_RECV, &rr);
	CU_ASSERT(rr.status == STATUS_OK && rr.value.len == 2 &&
	    memcmp(rr.value.data, v[r.index], 2) == 0);
	CU_ASSERT(ct_await_receivers(1 - (int)r.index, cts_names[1 - (int)r.index], 1));
	for (int i = 0; i < 2; i++)
		test_conn_close(&rc[i]);
	CU_ASSERT(cts_no_waiters_anywhere());
	test_conn_close(&c);
	/* buffered: the chosen value, and only it, is sent per run; each case is chosen */
	cts_make_three("xsendsb", 1);
	for (int i = 0; i < CT_NODES; i++)
		send_case(cases, i, v[i]);
	ct_client_of(&c, 0);
	for (int k = 0; k < RUNS; k++) {
		int sent = -1, n = 0;

		st_select(&c, cases, CT_NODES, false, PROTO_WAIT_FOREVER);
		st_reply(&c, OP_SELECT, &r);
		CU_ASSERT_EQUAL_FATAL(r.status, STATUS_OK);
		CU_ASSERT_FATAL(r.index >= 0 && r.index < CT_NODES);
		chosen[r.index]++;
		for (int i = 0; i < CT_NODES; i++) {
			if (take_now(i, buf, sizeof buf)[0] != '\0') {
				n++;
				sent = i;
				CU_ASSERT_STRING_EQUAL(buf, v[i]);
			}
		}
		CU_ASSERT_EQUAL(n, 1);
		CU_ASSERT_EQUAL(sent, r.index);
	}
	printf(" [chosen %d/%d/%d]", chosen[0], chosen[1], chosen[2]);
	for (int i = 0; i < CT_NODES; i++)
		CU_ASSERT(chosen[i] > 0);
	test_conn_close(&c);
}

/* Which of a and b has a reply to read first (up to 10 s): 0, 1, or -1. */
static int
first_to_answer(struct test_conn *a, struct test_conn *b)
{
	struct pollfd fds[2] = { { .fd = a->fd, .events = POLLIN }, { .fd = b->fd, .events = POLLIN } };

	if (poll(fds, 2, 10000) <= 0)
		return -1;
	return (fds[0].revents & POLLIN) ? 0 : 1;
}

/*
 * Two selects from two clients at once, each with send cases on node 1
 * (cap 1, empty) and node 2 (unbuffered, no receiver): both may find node
 * 1's one slot ready and be granted it; the second's send then finds it
 * full and its select starts over and waits. Either way one answers with
 * node 1's case, the other waits until that value is taken, and each value
 * arrives exactly once, in the order the selects were answered.
 */
static void
test_send_granted_not_ready(void)
{
	enum { ROUNDS = 10 };
	struct proto_case cases[2][CT_NODES];
	struct test_conn c[2], m;
	struct proto_reply r;
	char buf[32], v[2][8];
	int first;

	cts_make_three("xsendrace", 1);
	snprintf(cts_names[2], CT_NAME_CAP, "%s", ct_name_placed_on(2, "xsendrace2u"));
	ct_client_of(&m, 2);
	CU_ASSERT_EQUAL_FATAL(st_make(&m, cts_names[2], 0), STATUS_OK);
	test_conn_close(&m);
	for (int k = 0; k < 2; k++) {
		snprintf(v[k], sizeof v[k], "v%d", k);
		send_case(cases[k], 1, v[k]);
		send_case(cases[k], 2, v[k]);
		ct_client_of(&c[k], 0);
	}
	for (int n = 0; n < ROUNDS; n++) {
		for (int k = 0; k < 2; k++)
			st_select(&c[k], &cases[k][1], 2, false, PROTO_WAIT_FOREVER);
		CU_ASSERT_FATAL((first = first_to_answer(&c[0], &c[1])) >= 0);
		st_reply(&c[first], OP_SELECT, &r);
		CU_ASSERT_EQUAL(r.status, STATUS_OK);
		CU_ASSERT_EQUAL(r.index, 0);
		ct_client_of(&m, 1);
		CU_ASSERT(st_await_waiters(&m, cts_names[1], 1, 0));
		test_conn_close(&m);
		CU_ASSERT_STRING_EQUAL(take_now(1, buf, sizeof buf), v[first]);
		st_reply(&c[1 - first], OP_SELECT, &r);
		CU_ASSERT_EQUAL(r.status, STATUS_OK);
		CU_ASSERT_EQUAL(r.index, 0);
		CU_ASSERT_STRING_EQUAL(take_now(1, buf, sizeof buf), v[1 - first]);
		CU_ASSERT_STRING_EQUAL(take_now(1, buf, sizeof buf), "");
	}
	printf(" [polled again %" PRIu64 " times in %d rounds]", ct_node_stat(0,
	    "cluster_xselect_retries"), ROUNDS);
	for (int k = 0; k < 2; k++)
		test_conn_close(&c[k]);
	CU_ASSERT(cts_no_waiters_anywhere());
}

/* A received "node:k" value, counted in seen; false when it is not one we sent. */
static bool
count_value(const struct proto_reply *r, uint8_t seen[CT_NODES][64])
{
	char v[32];
	int node, k;

	if (sscanf(cts_value_of(r, v, sizeof v), "%d:%d", &node, &k) != 2 || node < 1 ||
	    node >= CT_NODES || k < 0 || k >= 64 || r->index != node)
		return false;
	seen[node][k]++;
	return true;
}

/*
 * SIGKILL of an owner while selects run over its channel: the select in
 * flight completes once or fails UNAVAILABLE, a select naming the dead
 * node's channel fails UNAVAILABLE (never hangs), and the living node's
 * values are each received exactly once, the dead one's at most once.
 */
static void
test_owner_killed(void)
{
	enum { FILL = 40 };
	struct proto_case cases[CT_NODES];
	uint8_t seen[CT_NODES][64] = { { 0 } };
	struct test_conn c, p;
	struct proto_reply r;
	char v[32];

	cts_make_three("xkill", 64);
	for (int i = 1; i < CT_NODES; i++) {
		ct_client_of(&p, i);
		for (int k = 0; k < FILL; k++) {
			snprintf(v, sizeof v, "%d:%d", i, k);
			CU_ASSERT_EQUAL_FATAL(st_send_wait(&p, cts_names[i], v, 0), STATUS_OK);
		}
		test_conn_close(&p);
	}
	cts_recv_cases(cases);
	ct_client_of(&c, 0);
	for (int k = 0; k < 20; k++) {
		st_select(&c, cases, CT_NODES, false, PROTO_WAIT_FOREVER);
		st_reply(&c, OP_SELECT, &r);
		CU_ASSERT_EQUAL_FATAL(r.status, STATUS_OK);
		CU_ASSERT(count_value(&r, seen));
	}
	/* one in flight as its case's owner dies */
	st_select(&c, cases, CT_NODES, false, PROTO_WAIT_FOREVER);
	ct_node_kill(2);
	st_reply(&c, OP_SELECT, &r);
	printf(" [in flight at the kill: %s]", status_name(r.status));
	CU_ASSERT(r.status == STATUS_OK || r.status == STATUS_UNAVAILABLE);
	if (r.status == STATUS_OK)
		CU_ASSERT(count_value(&r, seen));
	/* naming the dead node's channel: UNAVAILABLE or a living case, at once */
	st_select(&c, cases, CT_NODES, false, PROTO_WAIT_FOREVER);
	st_reply(&c, OP_SELECT, &r);
	printf(" [naming the dead node: %s %.*s]", status_name(r.status), (int)r.msg_len,
	    r.msg_len ? r.msg : "");
	CU_ASSERT(r.status == STATUS_OK || r.status == STATUS_UNAVAILABLE);
	if (r.status == STATUS_OK)
		CU_ASSERT(count_value(&r, seen));
	/* the living two: drained to the last value */
	for (;;) {
		st_select(&c, cases, 2, false, 0);
		st_reply(&c, OP_SELECT, &r);
		if (r.status != STATUS_OK)
			break;
		CU_ASSERT(count_value(&r, seen));
	}
	CU_ASSERT_EQUAL(r.status, STATUS_DEADLINE_EXCEEDED);
	test_conn_close(&c);
	for (int k = 0; k < FILL; k++) {
		CU_ASSERT_EQUAL(seen[1][k], 1);
		CU_ASSERT(seen[2][k] <= 1);
	}
	ct_node_rejoin(2, 10000);
}

/*
 * A value taken unless given back (a select that waits, PROTOCOL.md §17)
 * is kept at its owner when the connection to it breaks: the home, which
 * had not relayed it, says so in its log (xselect-lost), never silently.
 * Nodes 1 (a ready value) and 2 stopped; node 1 resumes, answers, and is
 * killed once node 0 heard its answer. When node 1's case came first in
 * the home's order its value was fired for good and is the select's
 * answer, once node 2 answered too. Else node 1 held it, and its loss
 * ends the select UNAVAILABLE, or with node 2's value if node 2, resumed,
 * had it at its poll: that is the case this test is after (1 in 2 a
 * run; 10 runs at most), and its line must be in node 0's log.
 */
static void
test_held_link_broken(void)
{
	struct proto_case cases[2];
	struct test_conn c;
	struct proto_reply r;
	char base[32], buf[32];
	bool held = false;

	for (int k = 0; k < 10 && !held; k++) {
		snprintf(base, sizeof base, "xlost%d-", k);
		cts_make_three(base, 1);
		cts_remote_pair(cases);
		ct_send(1, cts_names[1], "one");
		ct_node_signal(1, SIGSTOP);
		ct_node_signal(2, SIGSTOP);
		ct_client_of(&c, 0);
		st_select(&c, cases, 2, false, PROTO_WAIT_FOREVER);
		ct_node_signal(1, SIGCONT);
		if (!ctl_await_len(1, cts_names[1], 0)) {
			ct_node_signal(2, SIGCONT);	/* the test ends: the next ones need node 2 */
			CU_FAIL_FATAL("node 1's value was not taken");
		}
		/* node 1's answer reached node 0 before it dies: else nobody knew it held a value */
		cts_home_heard(1);
		ct_node_kill(1);
		ct_node_signal(2, SIGCONT);
		ct_send(2, cts_names[2], "two");
		st_reply(&c, OP_SELECT, &r);
		printf(" [%s %" PRId64 "]", status_name(r.status), r.index);
		CU_ASSERT(r.status == STATUS_OK || r.status == STATUS_UNAVAILABLE);
		held = r.status == STATUS_UNAVAILABLE || r.index == 1;
		if (r.status == STATUS_OK)
			CU_ASSERT_STRING_EQUAL(cts_value_of(&r, buf, sizeof buf), held ? "two" : "one");
		test_conn_close(&c);
		ct_node_rejoin(1, 10000);
	}
	CU_ASSERT_FATAL(held);
	/* xselect-lost's note for this case */
	CU_ASSERT(ct_await_log(0, "the connection to the owner broke", 10000));
}

/* The send-case tests, after test_cluster_select.c's first four. */
void
ct_add_select_send_tests(CU_pSuite s)
{
	test_add(s, "select: a send case beside remote receive cases", test_send_case);
	test_add(s, "select: send cases on three nodes", test_sends_on_nodes);
	test_add(s, "select: a granted send no longer ready starts over", test_send_granted_not_ready);
	test_add(s, "select: a receive that may not wait takes a parked send case", test_poll_takes_claim);
}

/* An owner that dies: the last of the select tests. */
void
ct_add_select_owner_tests(CU_pSuite s)
{
	test_add(s, "select: SIGKILL of an owner while selects run", test_owner_killed);
	test_add(s, "select: a held value kept when the link breaks is logged lost",
	    test_held_link_broken);
}
