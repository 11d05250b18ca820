/*
 * test_cluster_select.c: a SELECT over channels on three nodes (PROTOCOL.md
 * §17, cross-node SELECT), through a plain client of one node: a ready
 * remote case fires, a blocked select is woken by a send on each node,
 * default, a closed channel is ready, a select never matches itself,
 * duplicate cases both fire, a deadline and a CANCEL leave no
 * waiter on any node, WAITERS shows a remote waiter's home node, a
 * client's disconnect removes its remote waiters,
 * the choice among ready cases on different nodes is uniform (two on one
 * node and one on another too), a case first in the home's order waits
 * for no later node's word, and a deadline racing a match never loses or
 * duplicates a value (send cases, and an owner that dies:
 * test_cluster_select_send.c; load: test_cluster_select_load.c). Run by
 * test_cluster_across.c on the fixture of clustertest.c: one etcd, nodes
 * n0..n2.
 *
 * SPDX-License-Identifier: BSD-2-Clause
 */
#include <inttypes.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "xselecttest.h"

/* Channel i of a test lives on node i. */
char cts_names[CT_NODES][CT_NAME_CAP];

/* Three channels with cap, channel i placed and made on node i; node 0 knows their owners. */
void
cts_make_three(const char *base, uint64_t cap)
{
	ct_make_three(cts_names, base, cap);
}

/*
 * Node 0 has heard what node i's groups said so far (a group parked there
 * says STARTED before WAITERS lists it): a LEN through node 0 goes to
 * node i on the one connection between them, and its answer comes back
 * behind theirs.
 */
void
cts_home_heard(int i)
{
	uint64_t n;

	CU_ASSERT_EQUAL(ct_len_at(0, cts_names[i], &n, NULL, 0), STATUS_OK);
}

/* A receive case on channel i. */
struct proto_case
cts_recv_case(int i)
{
	return (struct proto_case){ .dir = 0, .name = cts_names[i],
	    .name_len = (uint32_t)strlen(cts_names[i]) };
}

/* A receive case on node 1's channel and one on node 2's, the select at node 0 their home. */
void
cts_remote_pair(struct proto_case cases[2])
{
	cases[0] = cts_recv_case(1);
	cases[1] = cts_recv_case(2);
}

/* A receive case on each of the three channels. */
void
cts_recv_cases(struct proto_case *cases)
{
	for (int i = 0; i < CT_NODES; i++)
		cases[i] = cts_recv_case(i);
}

bool
cts_no_waiters_anywhere(void)
{
	bool ok = true;

	for (int i = 0; i < CT_NODES; i++)
		ok = ct_await_receivers(i, cts_names[i], 0) && ok;
	return ok;
}

/* The value of a SELECT reply as a string (in buf). */
const char *
cts_value_of(const struct proto_reply *r, char *buf, size_t cap)
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

	cts_make_three("xready", 1);
	ct_send(1, cts_names[1], "one");
	cts_recv_cases(cases);
	ct_client_of(&c, 0);
	st_select(&c, cases, CT_NODES, false, PROTO_WAIT_FOREVER);
	st_reply(&c, OP_SELECT, &r);
	if (r.status != STATUS_OK)
		printf(" [%s: %.*s]", status_name(r.status), (int)r.msg_len, r.msg ? r.msg : "");
	CU_ASSERT_EQUAL(r.status, STATUS_OK);
	CU_ASSERT_EQUAL(r.index, 1);
	CU_ASSERT_STRING_EQUAL(cts_value_of(&r, buf, sizeof buf), "one");
	test_conn_close(&c);
	for (int i = 0; i < CT_NODES; i++)
		CU_ASSERT_EQUAL(ct_len(i, cts_names[i]), 0);
	CU_ASSERT(cts_no_waiters_anywhere());
}

/* A blocked select woken by a send on each node in turn; nothing stays behind. */
static void
test_woken_on_each_node(void)
{
	struct proto_case cases[CT_NODES];
	struct test_conn c;
	struct proto_reply r;
	char buf[32], want[32];

	cts_make_three("xwake", 0);
	cts_recv_cases(cases);
	for (int k = 0; k < CT_NODES; k++) {
		ct_client_of(&c, 0);
		st_select(&c, cases, CT_NODES, false, PROTO_WAIT_FOREVER);
		for (int i = 0; i < CT_NODES; i++)
			CU_ASSERT_FATAL(ct_await_receivers(i, cts_names[i], 1));
		snprintf(want, sizeof want, "v%d", k);
		ct_send(k, cts_names[k], want);
		st_reply(&c, OP_SELECT, &r);
		CU_ASSERT_EQUAL(r.status, STATUS_OK);
		CU_ASSERT_EQUAL(r.index, k);
		CU_ASSERT_STRING_EQUAL(cts_value_of(&r, buf, sizeof buf), want);
		test_conn_close(&c);
		CU_ASSERT(cts_no_waiters_anywhere());
	}
}

/*
 * Anonymous channels of the three nodes, each held by its maker's
 * connection, in a select at node 0 (PROTOCOL.md §17: their names say
 * where they live): woken by a send on each in turn; a send case on one of
 * node 2's with room fires; a case on one whose maker is not live makes
 * the select NOT_FOUND, saying so.
 */
static void
test_anonymous(void)
{
	char a[CT_NODES][CT_NAME_CAP], buf[32], want[32];
	struct proto_case cases[CT_NODES];
	struct test_conn mk[CT_NODES], c;
	struct proto_reply r;

	for (int i = 0; i < CT_NODES; i++) {
		ct_make_anonymous(&mk[i], i, 0, a[i], sizeof a[i]);
		cases[i] = (struct proto_case){ .name = a[i], .name_len = (uint32_t)strlen(a[i]) };
	}
	ct_client_of(&c, 0);
	for (int k = 0; k < CT_NODES; k++) {
		st_select(&c, cases, CT_NODES, false, PROTO_WAIT_FOREVER);
		for (int i = 0; i < CT_NODES; i++)
			CU_ASSERT_FATAL(st_await_waiters(&mk[i], a[i], -1, 1));
		snprintf(want, sizeof want, "v%d", k);
		CU_ASSERT_EQUAL(st_send_wait(&mk[k], a[k], want, 0), STATUS_OK);
		st_reply(&c, OP_SELECT, &r);
		CU_ASSERT_EQUAL(r.status, STATUS_OK);
		CU_ASSERT_EQUAL(r.index, k);
		CU_ASSERT_STRING_EQUAL(cts_value_of(&r, buf, sizeof buf), want);
		for (int i = 0; i < CT_NODES; i++)
			CU_ASSERT(st_await_waiters(&mk[i], a[i], -1, 0));
	}
	test_conn_close(&mk[2]);
	ct_make_anonymous(&mk[2], 2, 1, a[2], sizeof a[2]);
	cases[2] = (struct proto_case){ .dir = 1, .name = a[2], .name_len = (uint32_t)strlen(a[2]),
	    .value = { .kind = VALUE_BIN, .data = (const uint8_t *)"s", .len = 1 } };
	st_select(&c, cases, CT_NODES, false, PROTO_WAIT_FOREVER);
	st_reply(&c, OP_SELECT, &r);
	CU_ASSERT_EQUAL(r.status, STATUS_OK);
	CU_ASSERT_EQUAL(r.index, 2);
	CU_ASSERT_EQUAL(st_recv_wait(&mk[2], a[2], 0, buf, sizeof buf, &(bool){ false }), STATUS_OK);
	CU_ASSERT_STRING_EQUAL(buf, "s");
	snprintf(a[2], sizeof a[2], "%.33s@n9", a[1]);
	cases[2] = (struct proto_case){ .name = a[2], .name_len = (uint32_t)strlen(a[2]) };
	st_select(&c, cases, CT_NODES, false, PROTO_WAIT_FOREVER);
	st_reply(&c, OP_SELECT, &r);
	CU_ASSERT_EQUAL(r.status, STATUS_NOT_FOUND);
	CU_ASSERT(r.msg_len > 0 && memmem(r.msg, r.msg_len, "node n9 made it and is not live", 31) != NULL);
	test_conn_close(&c);
	for (int i = 0; i < CT_NODES; i++) {
		if (i < 2)
			CU_ASSERT(st_await_waiters(&mk[i], a[i], -1, 0));
		test_conn_close(&mk[i]);
	}
}

/*
 * A select never matches itself: a send and a receive case on node 1's
 * unbuffered channel, beside a receive case on node 2's, times out and
 * sends nothing. Duplicate cases: two receive cases on node 1's channel
 * beside one on node 2's, a value on node 1's: each of the two fires (40
 * runs miss one with probability 2 × 2^-40).
 */
static void
test_self_and_duplicates(void)
{
	enum { RUNS = 40 };
	struct proto_case cases[3];
	struct test_conn c;
	struct proto_reply r;
	char buf[8];
	int hits[2] = { 0 };

	cts_make_three("xself", 0);
	cases[0] = (struct proto_case){ .dir = 1, .name = cts_names[1],
	    .name_len = (uint32_t)strlen(cts_names[1]),
	    .value = { .kind = VALUE_BIN, .data = (const uint8_t *)"me", .len = 2 } };
	cases[1] = cts_recv_case(1);
	cases[2] = cts_recv_case(2);
	ct_client_of(&c, 0);
	st_select(&c, cases, 3, false, 300 * 1000);
	st_reply(&c, OP_SELECT, &r);
	CU_ASSERT_EQUAL(r.status, STATUS_DEADLINE_EXCEEDED);
	CU_ASSERT(cts_no_waiters_anywhere());
	cts_make_three("xdup", 1);
	cases[0] = cases[1] = cts_recv_case(1);
	cases[2] = cts_recv_case(2);
	for (int k = 0; k < RUNS; k++) {
		ct_send(1, cts_names[1], "d");
		st_select(&c, cases, 3, false, PROTO_WAIT_FOREVER);
		st_reply(&c, OP_SELECT, &r);
		CU_ASSERT_EQUAL_FATAL(r.status, STATUS_OK);
		CU_ASSERT_FATAL(r.index == 0 || r.index == 1);
		CU_ASSERT_STRING_EQUAL(cts_value_of(&r, buf, sizeof buf), "d");
		hits[r.index]++;
	}
	printf(" [duplicate cases %d/%d]", hits[0], hits[1]);
	CU_ASSERT(hits[0] > 0 && hits[1] > 0);
	test_conn_close(&c);
	CU_ASSERT_EQUAL(ct_len(1, cts_names[1]), 0);
	CU_ASSERT(cts_no_waiters_anywhere());
}

/* Default when no case is ready; a closed channel is ready (nil, false). */
static void
test_default_and_closed(void)
{
	struct proto_case cases[CT_NODES];
	struct test_conn c;
	struct proto_reply r;

	cts_make_three("xdef", 1);
	cts_recv_cases(cases);
	ct_client_of(&c, 0);
	st_select(&c, cases, CT_NODES, true, PROTO_WAIT_FOREVER);
	st_reply(&c, OP_SELECT, &r);
	CU_ASSERT_EQUAL(r.status, STATUS_OK);
	CU_ASSERT_EQUAL(r.index, -1);
	test_conn_close(&c);
	ct_client_of(&c, 2);
	CU_ASSERT_EQUAL(st_close(&c, cts_names[2]), STATUS_OK);
	test_conn_close(&c);
	ct_client_of(&c, 0);
	st_select(&c, cases, CT_NODES, false, PROTO_WAIT_FOREVER);
	st_reply(&c, OP_SELECT, &r);
	CU_ASSERT_EQUAL(r.status, STATUS_OK);
	CU_ASSERT_EQUAL(r.index, 2);
	CU_ASSERT(!r.ok);
	test_conn_close(&c);
	CU_ASSERT(cts_no_waiters_anywhere());
}

/* A deadline with no match: DEADLINE_EXCEEDED, and no waiter on any node. */
static void
test_deadline(void)
{
	struct proto_case cases[CT_NODES];
	struct test_conn c;
	struct proto_reply r;

	cts_make_three("xdl", 0);
	cts_recv_cases(cases);
	ct_client_of(&c, 1);
	st_select(&c, cases, CT_NODES, false, 100 * 1000);
	st_reply(&c, OP_SELECT, &r);
	CU_ASSERT_EQUAL(r.status, STATUS_DEADLINE_EXCEEDED);
	test_conn_close(&c);
	CU_ASSERT(cts_no_waiters_anywhere());
}

/* CANCEL ends it CANCELED, then OK; a disconnect removes its waiters on every node. */
static void
test_cancel_and_disconnect(void)
{
	struct proto_case cases[CT_NODES];
	struct test_conn c;
	struct proto_reply r;
	uint64_t sid;

	cts_make_three("xcan", 0);
	cts_recv_cases(cases);
	ct_client_of(&c, 2);
	sid = st_select(&c, cases, CT_NODES, false, PROTO_WAIT_FOREVER);
	for (int i = 0; i < CT_NODES; i++)
		CU_ASSERT_FATAL(ct_await_receivers(i, cts_names[i], 1));
	/* WAITERS at every owner shows the remote waiter with its home, n2 (itself too) */
	for (int i = 0; i < CT_NODES; i++)
		CU_ASSERT_EQUAL(ct_waiters_naming(i, cts_names[i], "n2"), 1);
	proto_req_cancel(&ct_out, c.next_id++, sid);
	st_write(&c, &ct_out);
	st_reply(&c, OP_SELECT, &r);
	CU_ASSERT_EQUAL(r.id, sid);
	CU_ASSERT_EQUAL(r.status, STATUS_CANCELED);
	st_reply(&c, OP_CANCEL, &r);
	CU_ASSERT_EQUAL(r.status, STATUS_OK);
	CU_ASSERT(cts_no_waiters_anywhere());
	st_select(&c, cases, CT_NODES, false, PROTO_WAIT_FOREVER);
	for (int i = 0; i < CT_NODES; i++)
		CU_ASSERT_FATAL(ct_await_receivers(i, cts_names[i], 1));
	test_conn_close(&c);
	CU_ASSERT(cts_no_waiters_anywhere());
}

/*
 * A case ready at the poll wins once every other group has said it waits,
 * without the home hearing their CANCELs first. Node 1 is stopped while
 * the select starts (its group unread), node 2's group parks; then node 2
 * is stopped and node 1 resumed: node 1's value is the answer while node
 * 2 is still stopped, node 0 having lost no peer. (The home used to CANCEL
 * node 2's group and wait for its answer: the select hung until node 2
 * came back, or its lease ran out.)
 */
static void
test_poll_heard_out(void)
{
	struct proto_case cases[2];
	struct test_conn c;
	struct proto_reply r;
	uint64_t errors;
	char buf[32];

	cts_make_three("xheard", 1);
	ct_send(1, cts_names[1], "one");
	cts_remote_pair(cases);
	errors = ct_node_stat(0, "cluster_peer_errors");
	ct_client_of(&c, 0);
	ct_node_signal(1, SIGSTOP);
	st_select(&c, cases, 2, false, 30 * 1000000);
	CU_ASSERT(ct_await_receivers(2, cts_names[2], 1));
	cts_home_heard(2);
	ct_node_signal(2, SIGSTOP);
	ct_node_signal(1, SIGCONT);
	st_reply(&c, OP_SELECT, &r);
	CU_ASSERT_EQUAL(r.status, STATUS_OK);
	CU_ASSERT_EQUAL(r.index, 0);
	CU_ASSERT_STRING_EQUAL(cts_value_of(&r, buf, sizeof buf), "one");
	if (ct_node_stat(0, "cluster_peer_errors") != errors)
		ct_print_log(0, "cluster-peer-lost");	/* seen once (plain build, load ~6): why */
	CU_ASSERT_EQUAL(ct_node_stat(0, "cluster_peer_errors"), errors);
	ct_node_signal(2, SIGCONT);
	test_conn_close(&c);
	CU_ASSERT(ct_await_receivers(2, cts_names[2], 0));
	for (int i = 0; i < CT_NODES; i++)
		CU_ASSERT(ct_await_stat(i, "cluster_nodes", CT_NODES, 15000));
}

/*
 * Once answered, the client finds every value it did not choose in its
 * channel, as after Go's select: the home answers only once every group
 * answered its poll, and gives the others' values back first, even when
 * the case that won was first in its order and fired for good. Both
 * channels ready (node 1's "one", node 2's "two"), node 2 stopped while
 * the select is sent, then resumed: the answer comes, and the channel not
 * chosen holds its value at once. Each case wins some (ct_race_more).
 */
static void
test_poll_first_case(void)
{
	static const char *const want[2] = { "one", "two" };
	struct proto_case cases[2];
	struct test_conn c, at[3];
	struct proto_reply r;
	char buf[32];
	int won[2] = { 0, 0 }, other, k;
	bool ok;

	cts_make_three("xfirst", 1);
	cts_remote_pair(cases);
	ct_client_of(&c, 0);
	ct_client_of(&at[1], 1);
	ct_client_of(&at[2], 2);
	for (k = 0; ct_race_more(k, won[0], won[1]); k++) {
		ct_send(1, cts_names[1], want[0]);
		ct_send(2, cts_names[2], want[1]);
		ct_node_signal(2, SIGSTOP);
		st_select(&c, cases, 2, false, 30 * 1000000);
		ct_node_signal(2, SIGCONT);
		st_reply(&c, OP_SELECT, &r);
		CU_ASSERT_EQUAL_FATAL(r.status, STATUS_OK);
		CU_ASSERT_FATAL(r.index == 0 || r.index == 1);
		CU_ASSERT_STRING_EQUAL(cts_value_of(&r, buf, sizeof buf), want[r.index]);
		won[r.index]++;
		/* a receive that does not wait, straight at its owner: back already */
		other = r.index == 0 ? 2 : 1;
		CU_ASSERT_EQUAL(st_recv_wait(&at[other], cts_names[other], 0, buf, sizeof buf, &ok),
		    STATUS_OK);
		CU_ASSERT(ok && strcmp(buf, want[other - 1]) == 0);
	}
	test_conn_close(&c);
	test_conn_close(&at[1]);
	test_conn_close(&at[2]);
	printf(" [node 1's case %d, node 2's %d of %d]", won[0], won[1], k);
	CU_ASSERT(won[0] > 0 && won[1] > 0);
}

/*
 * A case first in the home's order fires for good at its owner's poll,
 * with no XSETTLE (cluster_xselect_firm): RUNS selects at node 0 over
 * node 1's channel, which holds RUNS values, and node 2's empty one.
 * Node 1's case comes first half of the time (within 4 sigma); each
 * select gets the next value in order either way, and node 1's channel
 * ends empty with nothing held there.
 */
static void
test_firm_first_case(void)
{
	enum { RUNS = 40 };
	struct proto_case cases[2];
	struct test_conn c;
	struct proto_reply r;
	char buf[32], want[32];
	uint64_t firm;

	cts_make_three("xfirm", RUNS);
	for (int k = 0; k < RUNS; k++) {
		snprintf(want, sizeof want, "v%d", k);
		ct_send(1, cts_names[1], want);
	}
	cts_remote_pair(cases);
	firm = ct_node_stat(0, "cluster_xselect_firm");
	ct_client_of(&c, 0);
	for (int k = 0; k < RUNS; k++) {
		st_select(&c, cases, 2, false, PROTO_WAIT_FOREVER);
		st_reply(&c, OP_SELECT, &r);
		snprintf(want, sizeof want, "v%d", k);
		CU_ASSERT_EQUAL(r.status, STATUS_OK);
		CU_ASSERT_EQUAL(r.index, 0);
		CU_ASSERT_STRING_EQUAL(cts_value_of(&r, buf, sizeof buf), want);
	}
	test_conn_close(&c);
	firm = ct_node_stat(0, "cluster_xselect_firm") - firm;
	printf(" [fired for good at the poll: %" PRIu64 " of %d]", firm, RUNS);
	CU_ASSERT(fabs((double)firm - RUNS / 2.0) <= 4 * sqrt(RUNS * 0.25));
	CU_ASSERT_EQUAL(ct_len(1, cts_names[1]), 0);
	CU_ASSERT(ct_await_receivers(2, cts_names[2], 0));
}

/*
 * The select's answer r after a late CANCEL: node 1's value (it fired for
 * good, or was held and won), counted in delivered; or CANCELED, and the
 * value back in its channel, counted in canceled.
 */
static void
cancel_outcome(struct test_conn *c, uint64_t sid, const struct proto_reply *r, int *delivered,
    int *canceled)
{
	char buf[32];
	bool ok;

	CU_ASSERT_EQUAL(r->id, sid);
	if (r->status == STATUS_OK) {
		CU_ASSERT_EQUAL(r->index, 0);
		CU_ASSERT_STRING_EQUAL(cts_value_of(r, buf, sizeof buf), "one");
		(*delivered)++;
	} else {
		CU_ASSERT_EQUAL(r->status, STATUS_CANCELED);
		CU_ASSERT_FATAL(ctl_await_len(1, cts_names[1], 1));
		CU_ASSERT_EQUAL(st_recv_wait(c, cts_names[1], 0, buf, sizeof buf, &ok), STATUS_OK);
		CU_ASSERT(ok && strcmp(buf, "one") == 0);
		(*canceled)++;
	}
	CU_ASSERT_FATAL(ct_await_receivers(2, cts_names[2], 0));
}

/*
 * A CANCEL while the group that may fire a case for good has not
 * answered its poll never loses that value. Node 1 (a ready value) is
 * stopped, node 2's group parks, the client CANCELs. When node 1's case
 * comes first in the home's order, the CANCEL is too late (NOT_FOUND) and
 * the select's answer, once node 1 resumes, is the value; else the select
 * ends CANCELED at once and the value is back in its channel once node 1
 * resumes. Both are seen (ct_race_more).
 */
static void
test_firm_cancel(void)
{
	struct proto_case cases[2];
	struct test_conn c;
	struct proto_reply r, cr;
	uint64_t sid, cid;
	int delivered = 0, canceled = 0;

	cts_make_three("xfcan", 1);
	cts_remote_pair(cases);
	ct_client_of(&c, 0);
	for (int k = 0; ct_race_more(k, delivered, canceled); k++) {
		ct_send(1, cts_names[1], "one");
		ct_node_signal(1, SIGSTOP);
		sid = st_select(&c, cases, 2, false, PROTO_WAIT_FOREVER);
		if (!ct_await_receivers(2, cts_names[2], 1)) {
			ct_node_signal(1, SIGCONT);	/* the test ends: the next ones need node 1 */
			CU_FAIL_FATAL("node 2's group did not park");
		}
		cid = c.next_id++;
		proto_req_cancel(&ct_out, cid, sid);
		st_write(&c, &ct_out);
		/* the CANCEL's answer may come first (NOT_FOUND: too late), before node 1 resumes */
		st_reply(&c, OP_CANCEL, &r);
		if (r.id == cid) {
			CU_ASSERT_EQUAL(r.status, STATUS_NOT_FOUND);
			ct_node_signal(1, SIGCONT);
			st_reply(&c, OP_SELECT, &r);
		} else {
			st_reply(&c, OP_CANCEL, &cr);
			CU_ASSERT(cr.id == cid && cr.status == STATUS_OK);
			ct_node_signal(1, SIGCONT);
		}
		cancel_outcome(&c, sid, &r, &delivered, &canceled);
	}
	test_conn_close(&c);
	printf(" [delivered after a late CANCEL %d, canceled and given back %d]", delivered, canceled);
	CU_ASSERT(delivered > 0 && canceled > 0);
}

/*
 * A CANCEL before either owner answered its poll: nodes 1 (a ready value)
 * and 2 are stopped, so the CANCEL is too late (NOT_FOUND: the first group
 * in the home's order may fire for good). Node 1 resumes and answers
 * first, then node 2. When node 1's case came first it fired for good and
 * decides the select, though the CANCEL came before it: the answer is its
 * value, once node 2 answered too. Else node 1's group holds the value;
 * the select ends CANCELED once node 2 says it waits, and the value is back
 * in its channel at once, not when node 2 answers the CANCEL (deferred:
 * nobody waits for it). Both are seen (ct_race_more).
 */
static void
test_firm_cancel_unheard(void)
{
	struct proto_case cases[2];
	struct test_conn c;
	struct proto_reply r;
	uint64_t sid, cid;
	int delivered = 0, canceled = 0;
	bool back;

	cts_make_three("xfcun", 1);
	cts_remote_pair(cases);
	ct_client_of(&c, 0);
	for (int k = 0; ct_race_more(k, delivered, canceled); k++) {
		ct_send(1, cts_names[1], "one");
		ct_node_signal(1, SIGSTOP);
		ct_node_signal(2, SIGSTOP);
		sid = st_select(&c, cases, 2, false, PROTO_WAIT_FOREVER);
		cid = c.next_id++;
		proto_req_cancel(&ct_out, cid, sid);
		st_write(&c, &ct_out);
		st_reply(&c, OP_CANCEL, &r);
		if (r.id != cid || r.status != STATUS_NOT_FOUND)
			printf(" [reply %s to %s, not NOT_FOUND to the CANCEL: %.*s]",
			    status_name(r.status), r.id == sid ? "the SELECT" : "?",
			    (int)r.msg_len, r.msg_len ? r.msg : "");
		CU_ASSERT(r.id == cid && r.status == STATUS_NOT_FOUND);
		ct_node_signal(1, SIGCONT);
		back = ctl_await_len(1, cts_names[1], 0);
		/* node 2 resumes before the test can end here, or the next tests would find it stopped */
		ct_node_signal(2, SIGCONT);
		CU_ASSERT_FATAL(back);
		st_reply(&c, OP_SELECT, &r);
		cancel_outcome(&c, sid, &r, &delivered, &canceled);
	}
	test_conn_close(&c);
	printf(" [fired for good and delivered %d, held and given back %d]", delivered, canceled);
	CU_ASSERT(delivered > 0 && canceled > 0);
}

/*
 * Ready cases on the nodes on[0..2] (channel i made on node on[i], filled
 * through it; cts_names[] holds them for this test only), RUNS SELECTs of a
 * receive case on each through node 0: each case is chosen a third of
 * the time, within 4 sigma, wherever it lives.
 */
static void
fairness_on(const char *base, const int on[CT_NODES])
{
	enum { RUNS = 600, FILL = 400 };
	struct proto_case cases[CT_NODES];
	struct test_conn c, p;
	struct proto_reply r;
	int count[CT_NODES] = { 0 };
	double sigma = sqrt(RUNS * (1.0 / 3) * (2.0 / 3));
	uint64_t left = 0;
	char b[64];

	for (int i = 0; i < CT_NODES; i++) {
		snprintf(b, sizeof b, "%s%d", base, i);
		snprintf(cts_names[i], CT_NAME_CAP, "%s", ct_name_placed_on(on[i], b));
		ct_client_of(&p, on[i]);
		CU_ASSERT_EQUAL_FATAL(st_make(&p, cts_names[i], FILL), STATUS_OK);
		for (int k = 0; k < FILL; k++)
			st_send(&p, cts_names[i], "x", 1, PROTO_WAIT_FOREVER);
		for (int k = 0; k < FILL; k++) {
			st_reply(&p, OP_SEND, &r);
			CU_ASSERT_EQUAL_FATAL(r.status, STATUS_OK);
		}
		test_conn_close(&p);
	}
	cts_recv_cases(cases);
	ct_client_of(&c, 0);
	for (int k = 0; k < RUNS; k++) {
		st_select(&c, cases, CT_NODES, false, PROTO_WAIT_FOREVER);
		st_reply(&c, OP_SELECT, &r);
		CU_ASSERT_EQUAL_FATAL(r.status, STATUS_OK);
		CU_ASSERT_FATAL(r.index >= 0 && r.index < CT_NODES);
		count[r.index]++;
	}
	test_conn_close(&c);
	for (int i = 0; i < CT_NODES; i++) {
		printf(" [case %d on node %d: %d of %d]", i, on[i], count[i], RUNS);
		CU_ASSERT(fabs(count[i] - RUNS / 3.0) <= 4 * sigma);
		left += ct_len(on[i], cts_names[i]);
	}
	/* every value not chosen is still there, none twice */
	CU_ASSERT_EQUAL(left, CT_NODES * FILL - RUNS);
}

static void
test_fairness(void)
{
	static const int on[CT_NODES] = { 0, 1, 2 };

	fairness_on("xfair", on);
}

/*
 * Two ready cases on one node, one on another: a third each, as in Go, not
 * half for the node with one (the home takes the first ready case of its
 * random order of all the cases, not a node at random).
 */
static void
test_fairness_uneven(void)
{
	static const int on[CT_NODES] = { 1, 1, 2 };

	fairness_on("xfairu", on);
}

/* A deadline racing a send, 1,000 times: each value is received exactly once. */
static void
test_deadline_race(void)
{
	enum { RUNS = 1000 };
	struct proto_case cases[CT_NODES];
	struct test_conn a, b[CT_NODES];
	struct proto_reply r;
	char v[32], got[32];
	int by_select = 0, by_recv = 0;
	bool ok;

	cts_make_three("xrace", 1);
	cts_recv_cases(cases);
	ct_client_of(&a, 0);
	for (int i = 0; i < CT_NODES; i++)
		ct_client_of(&b[i], i);
	for (int k = 0; k < RUNS; k++) {
		/* sent through each node in turn (behind the select's group, or not) */
		struct test_conn *s = &b[k % CT_NODES];

		snprintf(v, sizeof v, "r%d", k);
		/* from a poll (0) to a wait the send may or may not beat */
		st_select(&a, cases, CT_NODES, false, (k / CT_NODES % 6) * 200);
		CU_ASSERT_EQUAL_FATAL(st_send_wait(s, cts_names[1], v, PROTO_WAIT_FOREVER), STATUS_OK);
		st_reply(&a, OP_SELECT, &r);
		if (r.status == STATUS_OK) {
			CU_ASSERT_EQUAL(r.index, 1);
			CU_ASSERT_STRING_EQUAL(cts_value_of(&r, got, sizeof got), v);
			by_select++;
		} else {
			CU_ASSERT_EQUAL_FATAL(r.status, STATUS_DEADLINE_EXCEEDED);
			/* not taken: still in the channel, for the next receiver */
			CU_ASSERT_EQUAL(st_recv_wait(s, cts_names[1], 10 * 1000 * 1000, got, sizeof got,
			    &ok), STATUS_OK);
			CU_ASSERT_STRING_EQUAL(got, v);
			by_recv++;
		}
	}
	printf(" [select %d, deadline then recv %d]", by_select, by_recv);
	test_conn_close(&a);
	for (int i = 0; i < CT_NODES; i++)
		test_conn_close(&b[i]);
	CU_ASSERT_EQUAL(ct_len(1, cts_names[1]), 0);
	CU_ASSERT(cts_no_waiters_anywhere());
}

void
ct_add_select_tests(CU_pSuite s)
{
	test_add(s, "select: a ready remote case fires", test_ready_remote);
	test_add(s, "select: woken by a send on each node", test_woken_on_each_node);
	test_add(s, "select: anonymous channels of each node, and of one not live", test_anonymous);
	test_add(s, "select: default, and a closed channel is ready", test_default_and_closed);
	test_add(s, "select: never matches itself; duplicate cases", test_self_and_duplicates);
	ct_add_select_send_tests(s);
	test_add(s, "select: deadline leaves no waiter anywhere", test_deadline);
	test_add(s, "select: CANCEL and disconnect remove remote waiters", test_cancel_and_disconnect);
	test_add(s, "select: a ready case wins once the others said they wait", test_poll_heard_out);
	test_add(s, "select: once answered, the value not chosen is back in its channel",
	    test_poll_first_case);
	test_add(s, "select: a case first in the home's order fires for good at the poll",
	    test_firm_first_case);
	test_add(s, "select: a CANCEL never loses a value fired for good", test_firm_cancel);
	test_add(s, "select: a CANCEL before any owner answered neither loses nor strands a value",
	    test_firm_cancel_unheard);
	test_add(s, "select: uniform among ready cases on three nodes", test_fairness);
	test_add(s, "select: uniform among ready cases, two of them on one node", test_fairness_uneven);
	test_add(s, "select: deadline vs send, 1,000 runs", test_deadline_race);
	ct_add_select_owner_tests(s);
}
