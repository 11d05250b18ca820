/*
 * test_cluster_stream.c: a STREAM over channels on three nodes (PROTOCOL.md
 * §17, cross-node STREAM), through a plain client of one node: every
 * value exactly once (buffered, or from senders waiting on every node)
 * and each close reported once, credit respected
 * (values stay in their channels, no waiter left, when it is used up),
 * a parked stream woken by a send on each node, CANCEL, a disconnect and
 * the deadline leave no waiter on any node, a round's case first in the
 * home's order fires for good at the poll and a CANCEL never loses such a
 * value, and a node killed mid-stream
 * ends it UNAVAILABLE naming the node, no value twice. Run by
 * test_cluster.c on its fixture: one etcd, nodes n0..n2.
 *
 * SPDX-License-Identifier: BSD-2-Clause
 */
#include <inttypes.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clustertest.h"

/* Channel i of a test lives on node i. */
static char names[CT_NODES][CT_NAME_CAP];

/* Three channels with cap, channel i placed and made on node i; node 0 knows their owners. */
static void
make_three(const char *base, uint64_t cap)
{
	ct_make_three(names, base, cap);
}

/* n values "i:k" (k from 0) buffered in channel i, through its owner. */
static void
fill(int i, int n)
{
	struct test_conn c;
	char v[32];

	ct_client_of(&c, i);
	for (int k = 0; k < n; k++) {
		snprintf(v, sizeof v, "%d:%d", i, k);
		CU_ASSERT_EQUAL_FATAL(st_send_wait(&c, names[i], v, 0), STATUS_OK);
	}
	test_conn_close(&c);
}

static void
close_on(int i)
{
	struct test_conn c;

	ct_client_of(&c, i);
	CU_ASSERT_EQUAL(st_close(&c, names[i]), STATUS_OK);
	test_conn_close(&c);
}

/* A STREAM over channels first .. CT_NODES - 1 with credit, sent on c; its id. */
static uint64_t
stream_from(struct test_conn *c, int first, uint64_t credit, int64_t wait_us)
{
	struct proto_case pc[CT_NODES];
	uint64_t id = c->next_id++;

	for (int i = first; i < CT_NODES; i++)
		pc[i - first] = (struct proto_case){ .name = names[i], .name_len = (uint32_t)strlen(names[i]) };
	CU_ASSERT_EQUAL_FATAL(proto_req_stream(&ct_out, id, wait_us, pc, CT_NODES - first, credit), 0);
	st_write(c, &ct_out);
	return id;
}

/* A STREAM over the three channels with credit, sent on c; its id. */
static uint64_t
stream(struct test_conn *c, uint64_t credit, int64_t wait_us)
{
	return stream_from(c, 0, credit, wait_us);
}

static uint64_t
credit(struct test_conn *c, uint64_t sid, uint64_t n)
{
	uint64_t id = c->next_id++;

	CU_ASSERT_EQUAL_FATAL(proto_req_credit(&ct_out, id, sid, n), 0);
	st_write(c, &ct_out);
	return id;
}

static bool
no_waiters_anywhere(void)
{
	bool ok = true;

	for (int i = 0; i < CT_NODES; i++)
		ok = ct_await_receivers(i, names[i], 0) && ok;
	return ok;
}

/* Values buffered in the three channels, together. */
static uint64_t
buffered_everywhere(void)
{
	uint64_t n = 0;

	for (int i = 0; i < CT_NODES; i++)
		n += ct_len(i, names[i]);
	return n;
}

/* An interim "i:k" value, counted in seen[i][k]; false when it is not one we sent. */
static bool
count_value(const struct proto_reply *r, uint8_t seen[CT_NODES][256])
{
	char v[32];
	int node, k;

	snprintf(v, sizeof v, "%.*s", (int)r->value.len, r->value.len ? (const char *)r->value.data : "");
	if (!r->ok || sscanf(v, "%d:%d", &node, &k) != 2 || node < 0 || node >= CT_NODES || k < 0 ||
	    k >= 256 || r->index != node)
		return false;
	seen[node][k]++;
	return true;
}

/*
 * 150 values buffered on each node's channel, every channel closed: a
 * stream at node 0 granted 5, one more per reply, gets each value once,
 * each close once, then OK with the count. It never has more interim
 * replies than it was granted.
 */
static void
test_exact(void)
{
	enum { N = 150, CREDIT = 5 };
	uint8_t seen[CT_NODES][256] = { { 0 } };
	int closes[CT_NODES] = { 0 };
	uint64_t sid, granted = CREDIT, interims = 0, credit_oks = 0, credits = 0;
	struct test_conn c;
	struct proto_reply r;

	make_three("xsexact", N);
	for (int i = 0; i < CT_NODES; i++) {
		fill(i, N);
		close_on(i);
	}
	ct_client_of(&c, 0);
	sid = stream(&c, CREDIT, PROTO_WAIT_FOREVER);
	for (;;) {
		st_next(&c, sid, OP_CREDIT, &r);
		if (r.id != sid) {
			CU_ASSERT_EQUAL(r.status, STATUS_OK);
			credit_oks++;
			continue;
		}
		if (!r.interim)
			break;
		interims++;
		CU_ASSERT(interims <= granted);
		if (r.ok) {
			CU_ASSERT(count_value(&r, seen));
		} else if (r.index >= 0 && r.index < CT_NODES) {
			closes[r.index]++;
		}
		credit(&c, sid, 1);
		granted++;
		credits++;
	}
	CU_ASSERT_EQUAL(r.status, STATUS_OK);
	CU_ASSERT_EQUAL(r.n, (uint64_t)N * CT_NODES);
	CU_ASSERT_EQUAL(interims, (uint64_t)N * CT_NODES + CT_NODES);
	for (int i = 0; i < CT_NODES; i++) {
		CU_ASSERT_EQUAL(closes[i], 1);
		for (int k = 0; k < N; k++)
			CU_ASSERT_EQUAL(seen[i][k], 1);
	}
	/* CREDITs after the end are NOT_FOUND; the others OK */
	while (credit_oks < credits) {
		st_next(&c, sid, OP_CREDIT, &r);
		CU_ASSERT(r.status == STATUS_OK || r.status == STATUS_NOT_FOUND);
		credit_oks++;
	}
	test_conn_close(&c);
	CU_ASSERT(no_waiters_anywhere());
}

/*
 * Unbuffered channels, 200 SENDs waiting on each node (pipelined by one
 * client each) while a stream at node 1 granted 8, one more per value,
 * takes them: every value once, every SEND answered OK.
 */
static void
test_exact_waiting_senders(void)
{
	enum { N = 200, CREDIT = 8 };
	uint8_t seen[CT_NODES][256] = { { 0 } };
	struct test_conn c, p[CT_NODES];
	struct proto_reply r;
	uint64_t sid, got = 0;
	char v[32];

	make_three("xswait", 0);
	for (int i = 0; i < CT_NODES; i++) {
		ct_client_of(&p[i], i);
		for (int k = 0; k < N; k++) {
			snprintf(v, sizeof v, "%d:%d", i, k);
			st_send(&p[i], names[i], v, strlen(v), PROTO_WAIT_FOREVER);
		}
	}
	ct_client_of(&c, 1);
	sid = stream(&c, CREDIT, PROTO_WAIT_FOREVER);
	while (got < (uint64_t)N * CT_NODES) {
		st_next(&c, sid, OP_CREDIT, &r);
		if (r.id != sid)
			continue;	/* a CREDIT's OK */
		CU_ASSERT_FATAL(r.interim);
		CU_ASSERT(count_value(&r, seen));
		got++;
		credit(&c, sid, 1);
	}
	for (int i = 0; i < CT_NODES; i++) {
		for (int k = 0; k < N; k++) {
			st_reply(&p[i], OP_SEND, &r);
			CU_ASSERT_EQUAL(r.status, STATUS_OK);
			CU_ASSERT_EQUAL(seen[i][k], 1);
		}
		test_conn_close(&p[i]);
	}
	test_conn_close(&c);
	CU_ASSERT(no_waiters_anywhere());
}

/*
 * Credit 2 over three channels of 10 values: two values, then nothing
 * (the rest stays buffered, no waiter anywhere); CREDIT 3: three more.
 */
static void
test_credit(void)
{
	uint8_t seen[CT_NODES][256] = { { 0 } };
	struct test_conn c;
	struct proto_reply r;
	uint64_t sid, cid, pid;
	int got = 0;

	make_three("xscredit", 10);
	for (int i = 0; i < CT_NODES; i++)
		fill(i, 10);
	ct_client_of(&c, 0);
	sid = stream(&c, 2, PROTO_WAIT_FOREVER);
	for (int k = 0; k < 2; k++) {
		st_next(&c, sid, OP_PING, &r);
		CU_ASSERT_EQUAL(r.id, sid);
		CU_ASSERT(r.interim);
		CU_ASSERT(count_value(&r, seen));
	}
	/* its credit is used up: no round runs, so no waiter and nothing taken */
	CU_ASSERT(no_waiters_anywhere());
	CU_ASSERT_EQUAL(buffered_everywhere(), 28);
	pid = st_ping(&c);
	st_next(&c, sid, OP_PING, &r);
	CU_ASSERT_EQUAL(r.id, pid);
	cid = credit(&c, sid, 3);
	while (got < 3) {
		st_next(&c, sid, OP_CREDIT, &r);
		if (r.id == cid) {
			CU_ASSERT_EQUAL(r.status, STATUS_OK);
			continue;
		}
		CU_ASSERT_EQUAL(r.id, sid);
		CU_ASSERT(r.interim);
		CU_ASSERT(count_value(&r, seen));
		got++;
	}
	CU_ASSERT(no_waiters_anywhere());
	CU_ASSERT_EQUAL(buffered_everywhere(), 25);
	for (int i = 0; i < CT_NODES; i++)
		for (int k = 0; k < 10; k++)
			CU_ASSERT(seen[i][k] <= 1);
	test_conn_close(&c);
	CU_ASSERT(no_waiters_anywhere());
}

/*
 * Credit 4 on three empty channels: 4 waiters on each node, each with
 * home n1; a send on each node in turn wakes it; CANCEL ends it CANCELED
 * (then OK) and removes every waiter; a second stream's waiters go with
 * its client's disconnect.
 */
static void
test_wake_cancel_disconnect(void)
{
	uint8_t seen[CT_NODES][256] = { { 0 } };
	struct test_conn c, p;
	struct proto_reply r;
	uint64_t sid, kid;
	char v[32];

	make_three("xswake", 0);
	ct_client_of(&c, 1);
	sid = stream(&c, 4, PROTO_WAIT_FOREVER);
	for (int i = 0; i < CT_NODES; i++) {
		CU_ASSERT_FATAL(ct_await_receivers(i, names[i], 4));
		CU_ASSERT_EQUAL(ct_waiters_naming(i, names[i], "n1"), 4);
	}
	for (int i = 0; i < CT_NODES; i++) {
		snprintf(v, sizeof v, "%d:0", i);
		ct_client_of(&p, i);
		CU_ASSERT_EQUAL(st_send_wait(&p, names[i], v, PROTO_WAIT_FOREVER), STATUS_OK);
		test_conn_close(&p);
		st_next(&c, sid, OP_PING, &r);
		CU_ASSERT_EQUAL(r.id, sid);
		CU_ASSERT(count_value(&r, seen));
	}
	/* one unit of credit left: one waiter on each node */
	for (int i = 0; i < CT_NODES; i++)
		CU_ASSERT(ct_await_receivers(i, names[i], 1));
	kid = c.next_id++;
	proto_req_cancel(&ct_out, kid, sid);
	st_write(&c, &ct_out);
	st_next(&c, sid, OP_CANCEL, &r);
	CU_ASSERT_EQUAL(r.id, sid);
	CU_ASSERT_EQUAL(r.status, STATUS_CANCELED);
	st_next(&c, sid, OP_CANCEL, &r);
	CU_ASSERT_EQUAL(r.id, kid);
	CU_ASSERT_EQUAL(r.status, STATUS_OK);
	CU_ASSERT(no_waiters_anywhere());
	for (int i = 0; i < CT_NODES; i++)
		CU_ASSERT_EQUAL(ct_waiters_naming(i, names[i], NULL), 0);
	stream(&c, 3, PROTO_WAIT_FOREVER);
	for (int i = 0; i < CT_NODES; i++)
		CU_ASSERT_FATAL(ct_await_receivers(i, names[i], 3));
	test_conn_close(&c);
	CU_ASSERT(no_waiters_anywhere());
	for (int i = 0; i < CT_NODES; i++)
		CU_ASSERT_EQUAL(ct_waiters_naming(i, names[i], NULL), 0);
	for (int i = 0; i < CT_NODES; i++)
		CU_ASSERT_EQUAL(seen[i][0], 1);
}

/*
 * A round whose case comes first in the home's order fires it for good at
 * the poll, as a select does (cluster_xselect_firm): a stream at node 0
 * over node 1's channel (RUNS values) and node 2's (empty), credit 1 given
 * back after each value, gets them in order, about half of them so
 * (within 4 sigma); then CANCEL ends it.
 */
static void
test_firm_rounds(void)
{
	enum { RUNS = 40 };
	struct test_conn c;
	struct proto_reply r;
	uint64_t sid, kid, firm;
	char want[32];

	make_three("xsfirm", RUNS);
	fill(1, RUNS);
	firm = ct_node_stat(0, "cluster_xselect_firm");
	ct_client_of(&c, 0);
	sid = stream_from(&c, 1, 1, PROTO_WAIT_FOREVER);
	for (int k = 0; k < RUNS; k++) {
		do
			st_next(&c, sid, OP_CREDIT, &r);	/* CREDIT's OK in between */
		while (r.id != sid && r.status == STATUS_OK);
		snprintf(want, sizeof want, "1:%d", k);
		CU_ASSERT(r.id == sid && r.status == STATUS_OK && r.interim && r.index == 0);
		CU_ASSERT(ST_VALUE_IS(r, want));
		credit(&c, sid, 1);
	}
	firm = ct_node_stat(0, "cluster_xselect_firm") - firm;
	printf(" [fired for good at the poll: %" PRIu64 " of %d]", firm, RUNS);
	CU_ASSERT(fabs((double)firm - RUNS / 2.0) <= 4 * sqrt(RUNS * 0.25));
	kid = c.next_id++;
	proto_req_cancel(&ct_out, kid, sid);
	st_write(&c, &ct_out);
	do
		st_next(&c, sid, OP_CANCEL, &r);	/* the last CREDIT's OK first */
	while (r.id != sid && r.id != kid);
	CU_ASSERT(r.id == sid && r.status == STATUS_CANCELED);
	st_next(&c, sid, OP_CANCEL, &r);
	CU_ASSERT(r.id == kid && r.status == STATUS_OK);
	test_conn_close(&c);
	CU_ASSERT_EQUAL(ct_len(1, names[1]), 0);
	CU_ASSERT(no_waiters_anywhere());
}

/*
 * One run of test_firm_round_cancel: node 1 stopped (and node 2 too when
 * unheard, so that node 1 answers its poll first), a STREAM over nodes 1
 * and 2 at node 0, CANCELed; then its outcome, counted in delivered or
 * given_back.
 */
static void
round_cancel_run(struct test_conn *c, bool unheard, int *delivered, int *given_back)
{
	struct proto_reply r;
	uint64_t sid, kid, pid;
	char buf[32];
	int got = 0;
	bool ok;

	fill(1, 1);
	ct_node_signal(1, SIGSTOP);
	if (unheard)
		ct_node_signal(2, SIGSTOP);
	sid = stream_from(c, 1, 1, PROTO_WAIT_FOREVER);
	if (!unheard && !ct_await_receivers(2, names[2], 1)) {
		ct_node_signal(1, SIGCONT);	/* the test ends: the next ones need node 1 */
		CU_FAIL_FATAL("node 2's group did not park");
	}
	kid = c->next_id++;
	proto_req_cancel(&ct_out, kid, sid);
	st_write(c, &ct_out);
	if (unheard) {
		/* a PING after it: its OK says the CANCEL came first */
		pid = c->next_id++;
		proto_req_ping(&ct_out, pid);
		st_write(c, &ct_out);
		st_next(c, sid, OP_PING, &r);
		CU_ASSERT(r.id == pid && r.status == STATUS_OK);
	}
	ct_node_signal(1, SIGCONT);
	if (unheard) {
		bool taken = ctl_await_len(1, names[1], 0);

		/* node 2 resumes before the test can end here, or the next tests would find it stopped */
		ct_node_signal(2, SIGCONT);
		CU_ASSERT_FATAL(taken);
	}
	/* the value (if it fired for good), then CANCELED, then the CANCEL's OK */
	for (;;) {
		st_next(c, sid, OP_CANCEL, &r);
		if (r.id != sid || r.status != STATUS_OK || !r.interim)
			break;
		CU_ASSERT(ST_VALUE_IS(r, "1:0"));
		got++;
	}
	CU_ASSERT(r.id == sid && r.status == STATUS_CANCELED);
	st_next(c, sid, OP_CANCEL, &r);
	CU_ASSERT(r.id == kid && r.status == STATUS_OK);
	CU_ASSERT_FATAL(got <= 1);
	if (got == 1) {
		(*delivered)++;
	} else {
		CU_ASSERT_FATAL(ctl_await_len(1, names[1], 1));
		CU_ASSERT_EQUAL(st_recv_wait(c, names[1], 0, buf, sizeof buf, &ok), STATUS_OK);
		CU_ASSERT(ok && strcmp(buf, "1:0") == 0);
		(*given_back)++;
	}
	CU_ASSERT_FATAL(no_waiters_anywhere());
}

static void
firm_round_cancel(const char *base, bool unheard)
{
	struct test_conn c;
	int delivered = 0, given_back = 0;

	make_three(base, 1);
	ct_client_of(&c, 0);
	for (int k = 0; ct_race_more(k, delivered, given_back); k++)
		round_cancel_run(&c, unheard, &delivered, &given_back);
	test_conn_close(&c);
	printf(" [delivered before CANCELED %d, given back %d]", delivered, given_back);
	CU_ASSERT(delivered > 0 && given_back > 0);
}

/*
 * A CANCEL while a round's first group (node 1, stopped, a value ready)
 * has not answered its poll never loses that value: once node 1 resumes,
 * either the value comes before the final CANCELED (it fired for good)
 * or it is back in its channel. Both are seen (ct_race_more).
 */
static void
test_firm_round_cancel(void)
{
	firm_round_cancel("xsfcan", false);
}

/*
 * test_firm_round_cancel with node 2 stopped too, so that node 1 answers
 * its poll first (as in test_cluster_select's test_firm_cancel_unheard):
 * a value fired for good before the CANCEL is the stream's last interim
 * reply, once node 2 answered; a value held is back in its channel when
 * the stream ends CANCELED, not when node 2 answers the CANCEL.
 */
static void
test_firm_round_cancel_unheard(void)
{
	firm_round_cancel("xsfcun", true);
}

/*
 * Its wait: 300 ms on empty channels ends DEADLINE_EXCEEDED, no waiter
 * left; wait 0 takes what is ready, up to its credit, then ends so.
 */
static void
test_deadline(void)
{
	uint8_t seen[CT_NODES][256] = { { 0 } };
	struct test_conn c;
	struct proto_reply r;
	uint64_t sid;
	int got = 0;

	make_three("xsdead", 4);
	ct_client_of(&c, 2);
	sid = stream(&c, 2, 300000);
	st_next(&c, sid, OP_PING, &r);
	CU_ASSERT_EQUAL(r.id, sid);
	CU_ASSERT_EQUAL(r.status, STATUS_DEADLINE_EXCEEDED);
	CU_ASSERT(no_waiters_anywhere());
	fill(0, 2);
	fill(1, 2);
	sid = stream(&c, 3, 0);
	for (;;) {
		st_next(&c, sid, OP_PING, &r);
		CU_ASSERT_EQUAL(r.id, sid);
		if (!r.interim)
			break;
		CU_ASSERT(count_value(&r, seen));
		got++;
	}
	CU_ASSERT_EQUAL(r.status, STATUS_DEADLINE_EXCEEDED);
	CU_ASSERT(got >= 1 && got <= 3);
	CU_ASSERT_EQUAL(buffered_everywhere(), (uint64_t)(4 - got));
	test_conn_close(&c);
	CU_ASSERT(no_waiters_anywhere());
}

/*
 * SIGKILL of node 2 while a stream at node 0 runs over its channel: the
 * rounds under way complete once (with a living node's value) or fail;
 * the next one cannot reach node 2, so the stream ends UNAVAILABLE naming
 * it, and no value came twice.
 */
static void
test_node_killed(void)
{
	enum { N = 100 };
	uint8_t seen[CT_NODES][256] = { { 0 } };
	struct test_conn c;
	struct proto_reply r;
	uint64_t sid;
	char msg[200];
	int after = 0;

	make_three("xskill", N);
	for (int i = 0; i < CT_NODES; i++)
		fill(i, N);
	ct_client_of(&c, 0);
	sid = stream(&c, 4, PROTO_WAIT_FOREVER);
	for (int k = 0; k < 4; k++) {
		st_next(&c, sid, OP_CREDIT, &r);
		CU_ASSERT_EQUAL_FATAL(r.id, sid);
		CU_ASSERT(count_value(&r, seen));
	}
	credit(&c, sid, 4);
	ct_node_kill(2);
	/* one more unit for each value: rounds go on until one finds node 2 gone */
	for (;;) {
		st_next(&c, sid, OP_CREDIT, &r);
		if (r.id != sid)
			continue;	/* a CREDIT's OK (or NOT_FOUND after the end) */
		if (!r.interim)
			break;
		CU_ASSERT(count_value(&r, seen));
		CU_ASSERT_FATAL(++after < 2 * N);
		credit(&c, sid, 1);
	}
	snprintf(msg, sizeof msg, "%.*s", (int)r.msg_len, r.msg_len ? r.msg : "");
	printf(" [%d values after the kill, then %s: %s]", after, status_name(r.status), msg);
	CU_ASSERT_EQUAL(r.status, STATUS_UNAVAILABLE);
	CU_ASSERT(strstr(msg, "n2") != NULL);
	test_conn_close(&c);
	for (int i = 0; i < CT_NODES; i++)
		for (int k = 0; k < N; k++)
			CU_ASSERT(seen[i][k] <= 1);
	ct_node_rejoin(2, 10000);
}

void
ct_add_stream_tests(CU_pSuite s)
{
	test_add(s, "stream: every value once over three nodes", test_exact);
	test_add(s, "stream: every value once from senders waiting on three nodes",
	    test_exact_waiting_senders);
	test_add(s, "stream: credit respected across nodes", test_credit);
	test_add(s, "stream: woken on each node; CANCEL and disconnect", test_wake_cancel_disconnect);
	test_add(s, "stream: deadline, and wait 0", test_deadline);
	test_add(s, "stream: a round's first case fires for good at the poll", test_firm_rounds);
	test_add(s, "stream: a CANCEL never loses a value fired for good", test_firm_round_cancel);
	test_add(s, "stream: a CANCEL before any owner answered neither loses nor strands a value",
	    test_firm_round_cancel_unheard);
	test_add(s, "stream: SIGKILL of an owner mid-stream", test_node_killed);
}
