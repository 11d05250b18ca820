/*
 * test_cluster_links.c: links whose channels live on different nodes
 * (PROTOCOL.md §17, "Links in a cluster"): each pattern (or, or-done, tee,
 * bridge, fan-in, repeat, take, fan-out) requested on node 0 with its done
 * channel, inputs and outputs spread over the three nodes runs there,
 * pumping through the other nodes: exact value sequences and multisets,
 * close errors passed downstream, the done channel's stop, a value held for
 * a link that ended going back to its channel. A named output that no
 * node owns is NOT_FOUND, one with another cap EXISTS (a STREAM over
 * channels of several nodes runs: test_cluster_stream.c). The ctl_* helpers are shared with test_cluster_links_end.c
 * (how such links end). Run by test_cluster.c on its fixture (etcd,
 * n0..n2).
 *
 * SPDX-License-Identifier: BSD-2-Clause
 */
#include <poll.h>
#include <stdio.h>
#include <string.h>

#include "clock.h"
#include "clustertest.h"

/* here[k]: channels on node 0 (test_links_here). */
static char here[3][CT_NAME_CAP];

/* Link l on node 0: its first reply's status (and its words, in msg). */
static int
link_at_node0(const struct proto_request *l, char *msg, size_t cap, uint64_t *id,
    struct test_conn *c)
{
	struct proto_reply r;

	ct_client_of(c, 0);
	*id = c->next_id++;
	proto_out_reset(&ct_out);
	CU_ASSERT_FATAL(proto_req_link(&ct_out, *id, PROTO_WAIT_FOREVER, l) == 0);
	st_write(c, &ct_out);
	st_reply(c, l->op, &r);
	snprintf(msg, cap, "%.*s", (int)r.msg_len, r.msg_len ? r.msg : "");
	return r.status;
}

/*
 * l started on node 0 (c its creator's connection); the test ends if it did
 * not. UNAVAILABLE (a node rejoined, node 0's dial backoff) is tried again
 * for up to 10 s: it leaves nothing behind.
 */
uint64_t
ctl_start_link(const struct proto_request *l, struct test_conn *c)
{
	int64_t end = clock_now_ns() + 10 * NSEC_PER_SEC;
	char msg[400];
	uint64_t id;
	int st;

	while ((st = link_at_node0(l, msg, sizeof msg, &id, c)) == STATUS_UNAVAILABLE &&
	    clock_now_ns() < end) {
		test_conn_close(c);
		poll(NULL, 0, 50);
	}

	if (st != STATUS_STARTED)
		printf(" [%s: %s %s]", proto_op_name(l->op), status_name(st), msg);
	CU_ASSERT_EQUAL_FATAL(st, STATUS_STARTED);
	return id;
}

/* The link's final reply on c: its status; *sent its count (OK), msg its words. */
int
ctl_link_end(struct test_conn *c, uint64_t op, uint64_t *sent, char *msg, size_t cap)
{
	struct proto_reply r;

	st_reply(c, op, &r);
	if (sent != NULL)
		*sent = r.n;
	if (msg != NULL)
		snprintf(msg, cap, "%.*s", (int)r.msg_len, r.msg_len ? r.msg : "");
	return r.status;
}

struct proto_request
ctl_one_in(uint64_t op, const char *in, const char *out)
{
	struct proto_request l = { .op = op, .name = in, .name_len = (uint32_t)strlen(in) };

	if (out != NULL) {
		l.outs[0] = (struct proto_link_out){ .name = out, .name_len = (uint32_t)strlen(out),
		    .cap = 4 };
		l.nouts = 1;
	}
	return l;
}

void
ctl_set_out(struct proto_request *l, int i, const char *name, uint64_t cap)
{
	l->outs[i] = (struct proto_link_out){ .name = name, .name_len = (uint32_t)strlen(name),
	    .cap = cap };
	if (l->nouts < (uint32_t)i + 1)
		l->nouts = (uint32_t)i + 1;
}

/* Receive one value from name at node (the owner): into buf; its ok, the test ends on an error. */
bool
ctl_recv_from(int node, const char *name, char *buf, size_t cap)
{
	struct test_conn c;
	bool ok = false;

	ct_client_of(&c, node);
	CU_ASSERT_EQUAL_FATAL(st_recv_wait(&c, name, 20 * 1000000, buf, cap, &ok), STATUS_OK);
	test_conn_close(&c);
	return ok;
}

/* Send each of n values "<prefix><k>" to name through node; each send OK. */
void
ctl_send_n(int node, const char *name, const char *prefix, int n)
{
	struct test_conn c;
	char v[32];

	ct_client_of(&c, node);
	for (int k = 0; k < n; k++) {
		snprintf(v, sizeof v, "%s%d", prefix, k);
		CU_ASSERT_EQUAL(st_send_wait(&c, name, v, 20 * 1000000), STATUS_OK);
	}
	test_conn_close(&c);
}

/* CLOSE name at node, with an error (code, msg) when msg is not NULL. */
void
ctl_close_at(int node, const char *name, uint64_t code, const char *msg)
{
	struct proto_close_err e = { .set = msg != NULL, .code = code, .msg = msg,
	    .msg_len = msg ? (uint32_t)strlen(msg) : 0 };
	struct proto_reply r;
	struct test_conn c;

	ct_client_of(&c, node);
	proto_out_reset(&ct_out);
	proto_req_close(&ct_out, c.next_id++, PROTO_WAIT_FOREVER, name, strlen(name), &e);
	st_write(&c, &ct_out);
	st_reply(&c, OP_CLOSE, &r);
	CU_ASSERT_EQUAL(r.status, STATUS_OK);
	test_conn_close(&c);
}

/* The channel is closed and drained at its owner, with the error code (0: none). */
void
ctl_assert_closed(int node, const char *name, uint64_t code)
{
	struct proto_reply r;
	struct test_conn c;

	ct_client_of(&c, node);
	st_recv(&c, name, 20 * 1000000);
	st_reply(&c, OP_RECV, &r);
	CU_ASSERT_EQUAL(r.status, STATUS_OK);
	CU_ASSERT(!r.ok);
	CU_ASSERT_EQUAL(r.close_err.set ? r.close_err.code : 0, code);
	test_conn_close(&c);
}

/* Poll WAITERS at node until want requests from home name the channel (up to 20 s). */
bool
ctl_await_waiters(int node, const char *name, const char *home, int want)
{
	int64_t end = clock_now_ns() + 20 * NSEC_PER_SEC;
	int n;

	while ((n = ct_waiters_naming(node, name, home)) != want && clock_now_ns() < end)
		poll(NULL, 0, 10);
	if (n != want)
		printf(" [%d waiters name %s at n%d, not %d]", n, name, node, want);
	return n == want;
}

struct proto_case
ctl_case_of(const char *name)
{
	return (struct proto_case){ .name = name, .name_len = (uint32_t)strlen(name) };
}

/* ---- the patterns ------------------------------------------------------------------------ */

/*
 * FAN_IN of inputs on nodes 1, 2 and 0 into an output on node 2: 3 x 60
 * values, sent at once, each received exactly once, each input's in its
 * order; the inputs' close (one with an error) closes the output with it.
 */
static void
test_fan_in(void)
{
	enum { N = 60 };
	char in[3][CT_NAME_CAP], out[CT_NAME_CAP], buf[32], pre[3][4] = { "a", "b", "c" };
	struct proto_case cases[3];
	struct proto_request l = { .op = OP_FAN_IN, .cases = cases, .ncases = 3 };
	struct test_conn c, o, p[3];
	int next[3] = { 0 }, node[3] = { 1, 2, 0 };
	uint64_t id, sent;

	for (int i = 0; i < 3; i++) {
		ct_make_on(node[i], in[i], pre[i], 2);
		cases[i] = ctl_case_of(in[i]);
	}
	ct_make_on(2, out, "xfi_out", 3);
	ctl_set_out(&l, 0, out, 3);
	id = ctl_start_link(&l, &c);
	(void)id;
	/* every send written at once, on each input's owner: the link drains them */
	for (int i = 0; i < 3; i++) {
		ct_client_of(&p[i], node[i]);
		for (int k = 0; k < N; k++) {
			snprintf(buf, sizeof buf, "%s%d", pre[i], k);
			st_send(&p[i], in[i], buf, strlen(buf), PROTO_WAIT_FOREVER);
		}
	}
	ct_client_of(&o, 2);
	for (int k = 0; k < 3 * N; k++) {
		int i, v = -1;
		bool ok;

		CU_ASSERT_EQUAL_FATAL(st_recv_wait(&o, out, 20 * 1000000, buf, sizeof buf, &ok),
		    STATUS_OK);
		CU_ASSERT_FATAL(ok);
		for (i = 0; i < 3 && buf[0] != pre[i][0]; i++)
			;
		CU_ASSERT_FATAL(i < 3 && sscanf(buf + 1, "%d", &v) == 1);
		CU_ASSERT_EQUAL(v, next[i]);	/* in order, none twice, none lost */
		next[i] = v + 1;
	}
	test_conn_close(&o);
	for (int i = 0; i < 3; i++) {
		struct proto_reply r;

		for (int k = 0; k < N; k++) {
			st_reply(&p[i], OP_SEND, &r);
			CU_ASSERT_EQUAL(r.status, STATUS_OK);
		}
		test_conn_close(&p[i]);
		CU_ASSERT_EQUAL(next[i], N);
	}
	ctl_close_at(1, in[0], 0, NULL);
	ctl_close_at(2, in[1], 7, "producer b failed");
	ctl_close_at(0, in[2], 0, NULL);
	CU_ASSERT_EQUAL(ctl_link_end(&c, OP_FAN_IN, &sent, NULL, 0), STATUS_OK);
	CU_ASSERT_EQUAL(sent, 3 * N);
	test_conn_close(&c);
	ctl_assert_closed(2, out, 7);
	for (int i = 0; i < 3; i++)
		CU_ASSERT(ctl_await_waiters(node[i], in[i], NULL, 0));
}

/* INFO len of name at node, polled until it is want (up to 20 s). */
bool
ctl_await_len(int node, const char *name, uint64_t want)
{
	int64_t end = clock_now_ns() + 20 * NSEC_PER_SEC;
	struct proto_chan_info i = { 0 };
	struct test_conn c;

	ct_client_of(&c, node);
	while ((st_info(&c, name, &i) != STATUS_OK || i.len != want) && clock_now_ns() < end)
		poll(NULL, 0, 10);
	test_conn_close(&c);
	return i.len == want;
}

/*
 * OR_DONE from node 1 to node 2 with its done channel on node 2: values
 * in order; when done closes, the value lent to the link's pump (taken
 * from the input, not yet by the link) goes back to the input; the output
 * is closed; no waiter left anywhere.
 */
static void
test_or_done(void)
{
	char in[CT_NAME_CAP], out[CT_NAME_CAP], done[CT_NAME_CAP], buf[32], want[8];
	struct proto_request l;
	struct test_conn c;
	char msg[200];

	ct_make_on(1, in, "xod_in", 8);
	ct_make_on(2, out, "xod_out", 0);
	ct_make_on(2, done, "xod_done", 0);
	l = ctl_one_in(OP_OR_DONE, in, NULL);
	ctl_set_out(&l, 0, out, 0);
	l.done = done;
	l.done_len = (uint32_t)strlen(done);
	ctl_start_link(&l, &c);
	ctl_send_n(1, in, "v", 5);
	for (int k = 0; k < 5; k++) {
		snprintf(want, sizeof want, "v%d", k);
		CU_ASSERT(ctl_recv_from(2, out, buf, sizeof buf));
		CU_ASSERT_STRING_EQUAL(buf, want);
	}
	/*
	 * nobody receives now: w0 waits at node 2 (the output's pump), w1 is in
	 * the link's hand, w2 is lent to the input's pump and waits for the link
	 */
	ctl_send_n(1, in, "w", 3);
	CU_ASSERT(ctl_await_waiters(2, out, "n0", 1));
	CU_ASSERT(ctl_await_len(1, in, 0));
	ctl_close_at(2, done, 0, NULL);
	CU_ASSERT_EQUAL(ctl_link_end(&c, OP_OR_DONE, NULL, msg, sizeof msg), STATUS_CANCELED);
	CU_ASSERT(strstr(msg, "done channel closed") != NULL);
	test_conn_close(&c);
	ctl_assert_closed(2, out, 0);
	/* through node 0: behind its XSETTLE on the same node-to-node connection */
	CU_ASSERT(ctl_recv_from(0, in, buf, sizeof buf));
	CU_ASSERT_STRING_EQUAL(buf, "w2");
	CU_ASSERT(ctl_await_len(1, in, 0));
	CU_ASSERT(ctl_await_waiters(1, in, NULL, 0));
	CU_ASSERT(ctl_await_waiters(2, done, NULL, 0));
}

/* TEE from node 1 to nodes 2 and 0: each output gets the whole sequence; the input's error both. */
static void
test_tee(void)
{
	char in[CT_NAME_CAP], o1[CT_NAME_CAP], o2[CT_NAME_CAP], buf[32], want[8];
	struct proto_request l;
	struct test_conn c;
	uint64_t sent;

	ct_make_on(1, in, "xtee_in", 8);
	ct_make_on(2, o1, "xtee_o1", 8);
	ct_make_on(0, o2, "xtee_o2", 8);
	l = ctl_one_in(OP_TEE, in, NULL);
	ctl_set_out(&l, 0, o1, 8);
	ctl_set_out(&l, 1, o2, 8);
	ctl_start_link(&l, &c);
	ctl_send_n(1, in, "t", 6);
	ctl_close_at(1, in, 42, "the end");
	CU_ASSERT_EQUAL(ctl_link_end(&c, OP_TEE, &sent, NULL, 0), STATUS_OK);
	CU_ASSERT_EQUAL(sent, 12);
	test_conn_close(&c);
	for (int k = 0; k < 6; k++) {
		snprintf(want, sizeof want, "t%d", k);
		CU_ASSERT(ctl_recv_from(2, o1, buf, sizeof buf));
		CU_ASSERT_STRING_EQUAL(buf, want);
		CU_ASSERT(ctl_recv_from(0, o2, buf, sizeof buf));
		CU_ASSERT_STRING_EQUAL(buf, want);
	}
	ctl_assert_closed(2, o1, 42);
	ctl_assert_closed(0, o2, 42);
}

/* OR over inputs on nodes 1 and 2: a close on node 2 closes its anonymous output; no waiter stays. */
static void
test_or(void)
{
	char a[CT_NAME_CAP], b[CT_NAME_CAP];
	struct proto_case cases[2];
	struct proto_request l = { .op = OP_OR, .cases = cases, .ncases = 2 };
	struct test_conn c;

	ct_make_on(1, a, "xor_a", 0);
	ct_make_on(2, b, "xor_b", 0);
	cases[0] = ctl_case_of(a);
	cases[1] = ctl_case_of(b);
	ctl_start_link(&l, &c);
	CU_ASSERT(ctl_await_waiters(1, a, "n0", 1));
	CU_ASSERT(ctl_await_waiters(2, b, "n0", 1));
	ctl_close_at(2, b, 0, NULL);
	CU_ASSERT_EQUAL(ctl_link_end(&c, OP_OR, NULL, NULL, 0), STATUS_OK);
	test_conn_close(&c);
	CU_ASSERT(ctl_await_waiters(1, a, "n0", 0));
}

/*
 * TAKE 3 from node 2 to node 1, then REPEAT into node 1 until CANCEL:
 * exact sequences, the untaken values stay in the input in order, the
 * output closed, no waiter left.
 */
static void
test_take_repeat(void)
{
	char in[CT_NAME_CAP], out[CT_NAME_CAP], rout[CT_NAME_CAP], buf[32], want[8];
	struct proto_case vals[2] = {
		{ .dir = 1, .value = { .kind = VALUE_BIN, .data = (const uint8_t *)"x", .len = 1 } },
		{ .dir = 1, .value = { .kind = VALUE_BIN, .data = (const uint8_t *)"y", .len = 1 } } };
	struct proto_request l;
	struct proto_reply r;
	struct test_conn c;
	uint64_t sent, id;

	ct_make_on(2, in, "xtk_in", 8);
	ct_make_on(1, out, "xtk_out", 8);
	ctl_send_n(2, in, "k", 5);
	l = ctl_one_in(OP_TAKE, in, NULL);
	ctl_set_out(&l, 0, out, 8);
	l.count = 3;
	ctl_start_link(&l, &c);
	CU_ASSERT_EQUAL(ctl_link_end(&c, OP_TAKE, &sent, NULL, 0), STATUS_OK);
	CU_ASSERT_EQUAL(sent, 3);
	test_conn_close(&c);
	for (int k = 0; k < 3; k++) {
		snprintf(want, sizeof want, "k%d", k);
		CU_ASSERT(ctl_recv_from(1, out, buf, sizeof buf));
		CU_ASSERT_STRING_EQUAL(buf, want);
	}
	ctl_assert_closed(1, out, 0);
	/* through node 0: behind the pump's XSETTLE (k3 given back) on one connection */
	for (int k = 3; k < 5; k++) {
		snprintf(want, sizeof want, "k%d", k);
		CU_ASSERT(ctl_recv_from(0, in, buf, sizeof buf));
		CU_ASSERT_STRING_EQUAL(buf, want);
	}
	ct_make_on(1, rout, "xrep_out", 2);
	l = (struct proto_request){ .op = OP_REPEAT, .cases = vals, .ncases = 2 };
	ctl_set_out(&l, 0, rout, 2);
	id = ctl_start_link(&l, &c);
	for (int k = 0; k < 7; k++) {
		CU_ASSERT(ctl_recv_from(1, rout, buf, sizeof buf));
		CU_ASSERT_STRING_EQUAL(buf, k % 2 ? "y" : "x");
	}
	/* its output full again, a send waits at node 1 for the link */
	CU_ASSERT(ctl_await_waiters(1, rout, "n0", 1));
	proto_out_reset(&ct_out);
	proto_req_cancel(&ct_out, c.next_id++, id);
	st_write(&c, &ct_out);
	st_reply(&c, OP_REPEAT, &r);
	CU_ASSERT_EQUAL(r.status, STATUS_CANCELED);
	st_reply(&c, OP_CANCEL, &r);
	CU_ASSERT_EQUAL(r.status, STATUS_OK);
	test_conn_close(&c);
	CU_ASSERT(ctl_await_waiters(1, rout, "n0", 0));
	/* what was buffered is drained, in order, then it is closed */
	for (int k = 7; k < 9; k++) {
		CU_ASSERT(ctl_recv_from(1, rout, buf, sizeof buf));
		CU_ASSERT_STRING_EQUAL(buf, k % 2 ? "y" : "x");
	}
	ctl_assert_closed(1, rout, 0);
}

/* FAN_OUT (identity, 2 workers, ordered) from node 1 to node 2: the exact sequence. */
static void
test_fan_out(void)
{
	enum { N = 30 };
	char in[CT_NAME_CAP], out[CT_NAME_CAP], buf[32], want[8];
	struct proto_request l;
	struct test_conn c, p;
	struct proto_reply r;
	uint64_t sent;

	ct_make_on(1, in, "xfo_in", 4);
	ct_make_on(2, out, "xfo_out", 4);
	l = ctl_one_in(OP_FAN_OUT, in, NULL);
	ctl_set_out(&l, 0, out, 4);
	l.stage = "identity";
	l.stage_len = 8;
	l.count = 2;
	l.ordered = true;
	ctl_start_link(&l, &c);
	ct_client_of(&p, 1);
	for (int k = 0; k < N; k++) {
		snprintf(buf, sizeof buf, "f%d", k);
		st_send(&p, in, buf, strlen(buf), PROTO_WAIT_FOREVER);
	}
	for (int k = 0; k < N; k++) {
		snprintf(want, sizeof want, "f%d", k);
		CU_ASSERT(ctl_recv_from(2, out, buf, sizeof buf));
		CU_ASSERT_STRING_EQUAL(buf, want);
	}
	for (int k = 0; k < N; k++) {
		st_reply(&p, OP_SEND, &r);
		CU_ASSERT_EQUAL(r.status, STATUS_OK);
	}
	test_conn_close(&p);
	ctl_close_at(1, in, 0, NULL);
	CU_ASSERT_EQUAL(ctl_link_end(&c, OP_FAN_OUT, &sent, NULL, 0), STATUS_OK);
	CU_ASSERT_EQUAL(sent, N);
	test_conn_close(&c);
	ctl_assert_closed(2, out, 0);
}

void
ctl_send_refs(int node, const char *name, const char *const *to, int n)
{
	struct proto_value ref = { .kind = VALUE_CHANREF };
	struct proto_reply r;
	struct test_conn c;

	ct_client_of(&c, node);
	for (int k = 0; k < n; k++) {
		ref.data = (const uint8_t *)to[k];
		ref.len = strlen(to[k]);
		proto_out_reset(&ct_out);
		proto_req_send(&ct_out, c.next_id++, PROTO_WAIT_FOREVER, name, strlen(name), &ref);
		st_write(&c, &ct_out);
		st_reply(&c, OP_SEND, &r);
		CU_ASSERT_EQUAL(r.status, STATUS_OK);
	}
	test_conn_close(&c);
}

/*
 * A bridge's output out on node 2: n values, want[k] each, then closed
 * without an error. A NULL want[k] is an error value whose words contain
 * err and err2 (NULL: not checked).
 */
static void
expect_bridged(const char *out, const char *const *want, int n, const char *err, const char *err2)
{
	struct proto_reply r;
	struct test_conn c;
	char buf[256];

	ct_client_of(&c, 2);
	for (int k = 0; k < n; k++) {
		st_recv(&c, out, 20 * 1000000);
		st_reply(&c, OP_RECV, &r);
		CU_ASSERT_EQUAL_FATAL(r.status, STATUS_OK);
		CU_ASSERT_FATAL(r.ok);
		snprintf(buf, sizeof buf, "%.*s", (int)r.value.len, (const char *)r.value.data);
		CU_ASSERT_EQUAL(r.value.kind, want[k] == NULL ? VALUE_ERROR : VALUE_BIN);
		if (want[k] != NULL) {
			CU_ASSERT_STRING_EQUAL(buf, want[k]);
		} else {
			CU_ASSERT(strstr(buf, err) != NULL && (err2 == NULL || strstr(buf, err2) != NULL));
		}
	}
	test_conn_close(&c);
	ctl_assert_closed(2, out, 0);
}

/*
 * BRIDGE on node 0 from a channel of references on node 1 to an output on
 * node 2, following a channel of node 0, one of node 2 that closes with an
 * error (an error value naming it), and one of node 1: the exact sequence.
 * Then a bridge following an empty channel of node 2 waits there (WAITERS,
 * home n0) until CANCEL, which leaves no waiter.
 */
static void
test_bridge(void)
{
	char in[CT_NAME_CAP], out[CT_NAME_CAP], s[3][CT_NAME_CAP], err[200];
	const char *want[] = { "p0", "p1", "q0", "q1", NULL, "r0", "r1" };
	int node[3] = { 0, 2, 1 };
	struct proto_request l;
	struct proto_reply r;
	struct test_conn c;
	uint64_t id;
	int st;

	ct_make_on(1, in, "xbr_in", 4);
	ct_make_on(2, out, "xbr_out", 8);
	for (int k = 0; k < 3; k++) {
		ct_make_on(node[k], s[k], k == 0 ? "xbr_p" : k == 1 ? "xbr_q" : "xbr_r", 4);
		ctl_send_n(node[k], s[k], k == 0 ? "p" : k == 1 ? "q" : "r", 2);
		ctl_close_at(node[k], s[k], k == 1 ? 9 : 0, k == 1 ? "q broke" : NULL);
	}
	l = ctl_one_in(OP_BRIDGE, in, NULL);
	ctl_set_out(&l, 0, out, 8);
	ctl_start_link(&l, &c);
	for (int k = 0; k < 3; k++)
		ctl_send_refs(1, in, (const char *[]){ s[k] }, 1);
	ctl_close_at(1, in, 0, NULL);
	st = ctl_link_end(&c, OP_BRIDGE, NULL, err, sizeof err);
	if (st != STATUS_OK)
		printf(" [%s: %s]", status_name(st), err);
	CU_ASSERT_EQUAL(st, STATUS_OK);
	test_conn_close(&c);
	snprintf(err, sizeof err, "bridge: %s closed with error 9: q broke", s[1]);
	expect_bridged(out, want, 7, err, NULL);
	/* following an empty channel of node 2, until CANCEL */
	ct_make_on(1, in, "xbr_in2", 4);
	ct_make_on(2, s[1], "xbr_empty", 4);
	ctl_send_refs(1, in, (const char *[]){ s[1] }, 1);
	l = ctl_one_in(OP_BRIDGE, in, NULL);
	id = ctl_start_link(&l, &c);
	CU_ASSERT(ctl_await_waiters(2, s[1], "n0", 1));
	proto_out_reset(&ct_out);
	proto_req_cancel(&ct_out, c.next_id++, id);
	st_write(&c, &ct_out);
	st_reply(&c, OP_BRIDGE, &r);
	CU_ASSERT_EQUAL(r.status, STATUS_CANCELED);
	test_conn_close(&c);
	CU_ASSERT(ctl_await_waiters(2, s[1], NULL, 0));
	CU_ASSERT(ctl_await_waiters(1, in, NULL, 0));
}

/*
 * A bridge given a reference to a name no node owns, then one to a channel
 * of node 2: the first is asked of etcd (the owner cache cannot tell a
 * channel too new from none) and becomes an error value saying no node
 * owns it; then the second channel's values, in order.
 */
static void
test_bridge_unowned(void)
{
	char in[CT_NAME_CAP], out[CT_NAME_CAP], sub[CT_NAME_CAP], nobody[CT_NAME_CAP];
	const char *want[] = { NULL, "u0", "u1" };
	struct proto_request l;
	struct test_conn c;

	ct_make_on(1, in, "xbu_in", 4);
	ct_make_on(2, out, "xbu_out", 8);
	ct_make_on(2, sub, "xbu_sub", 4);
	ctl_send_n(2, sub, "u", 2);
	ctl_close_at(2, sub, 0, NULL);
	snprintf(nobody, sizeof nobody, "%s", ct_name_placed_on(2, "xbu_nobody"));
	l = ctl_one_in(OP_BRIDGE, in, NULL);
	ctl_set_out(&l, 0, out, 8);
	ctl_start_link(&l, &c);
	ctl_send_refs(1, in, (const char *[]){ nobody, sub }, 2);
	ctl_close_at(1, in, 0, NULL);
	CU_ASSERT_EQUAL(ctl_link_end(&c, OP_BRIDGE, NULL, NULL, 0), STATUS_OK);
	test_conn_close(&c);
	expect_bridged(out, want, 3, nobody, "no node owns it");
}

/*
 * Anonymous channels of nodes 1 and 2 in links on node 0 (PROTOCOL.md §17:
 * their names say their maker): a BRIDGE follows one of each, then one
 * whose maker is not live (an error value saying so); an OR_DONE takes its
 * input and its done channel from them; a link whose input's maker is not
 * live is NOT_FOUND, saying so.
 */
static void
test_anonymous(void)
{
	char a[2][CT_NAME_CAP], in[CT_NAME_CAP], out[CT_NAME_CAP], gone[CT_NAME_CAP], buf[32], msg[200];
	const char *want[] = { "a0", "a1", "b0", "b1", NULL };
	struct test_conn mk[2], c;
	struct proto_request l;
	uint64_t id;

	for (int k = 0; k < 2; k++) {
		ct_make_anonymous(&mk[k], k + 1, 2, a[k], sizeof a[k]);
		for (int v = 0; v < 2; v++) {
			snprintf(buf, sizeof buf, "%c%d", 'a' + k, v);
			CU_ASSERT_EQUAL(st_send_wait(&mk[k], a[k], buf, 0), STATUS_OK);
		}
		CU_ASSERT_EQUAL(st_close(&mk[k], a[k]), STATUS_OK);
	}
	snprintf(gone, sizeof gone, "%.33s@n9", a[0]);
	ct_make_on(1, in, "xan_in", 4);
	ct_make_on(2, out, "xan_out", 8);
	l = ctl_one_in(OP_BRIDGE, in, NULL);
	ctl_set_out(&l, 0, out, 8);
	ctl_start_link(&l, &c);
	ctl_send_refs(1, in, (const char *[]){ a[0], a[1], gone }, 3);
	ctl_close_at(1, in, 0, NULL);
	CU_ASSERT_EQUAL(ctl_link_end(&c, OP_BRIDGE, NULL, NULL, 0), STATUS_OK);
	test_conn_close(&c);
	expect_bridged(out, want, 5, gone, "made it is not live");

	/* OR_DONE from node 1's to node 2's channel, until node 2's anonymous done channel closes */
	ct_make_anonymous(&c, 1, 4, a[0], sizeof a[0]);
	test_conn_close(&mk[0]);
	mk[0] = c;
	test_conn_close(&mk[1]);
	ct_make_anonymous(&mk[1], 2, 0, a[1], sizeof a[1]);
	ct_make_on(2, out, "xan_out2", 0);
	l = ctl_one_in(OP_OR_DONE, a[0], NULL);
	ctl_set_out(&l, 0, out, 0);
	l.done = a[1];
	l.done_len = (uint32_t)strlen(a[1]);
	ctl_start_link(&l, &c);
	for (int k = 0; k < 3; k++) {
		snprintf(buf, sizeof buf, "v%d", k);
		CU_ASSERT_EQUAL(st_send_wait(&mk[0], a[0], buf, 0), STATUS_OK);
		CU_ASSERT(ctl_recv_from(2, out, msg, sizeof msg));
		CU_ASSERT_STRING_EQUAL(msg, buf);
	}
	CU_ASSERT_EQUAL(st_close(&mk[1], a[1]), STATUS_OK);
	CU_ASSERT_EQUAL(ctl_link_end(&c, OP_OR_DONE, NULL, msg, sizeof msg), STATUS_CANCELED);
	CU_ASSERT(strstr(msg, "done channel closed") != NULL);
	test_conn_close(&c);
	ctl_assert_closed(2, out, 0);

	/* an input whose maker is not live */
	snprintf(gone, sizeof gone, "%.33s@n9", a[0]);
	l = ctl_one_in(OP_OR_DONE, gone, NULL);
	ctl_set_out(&l, 0, out, 0);
	CU_ASSERT_EQUAL(link_at_node0(&l, msg, sizeof msg, &id, &c), STATUS_NOT_FOUND);
	CU_ASSERT(strstr(msg, "no such input") != NULL && strstr(msg, "not live") != NULL);
	test_conn_close(&c);
	for (int k = 0; k < 2; k++)
		test_conn_close(&mk[k]);
}

/*
 * A named output no node owns: NOT_FOUND, saying to make it first; every
 * channel on node 0: the link runs (TAKE of 1 value from here[0] to here[2]).
 */
static void
test_links_here(void)
{
	struct proto_request l;
	struct proto_reply r;
	struct test_conn c, p;
	char msg[400], buf[16];
	uint64_t id;
	bool ok;

	ct_make_on(0, here[0], "xlk_a", 4);
	ct_make_on(0, here[1], "xlk_b", 4);
	ct_make_on(0, here[2], "xlk_c", 4);
	l = ctl_one_in(OP_TAKE, here[0], "xlk_nobody_made_this");
	l.count = 1;
	CU_ASSERT_EQUAL(link_at_node0(&l, msg, sizeof msg, &id, &c), STATUS_NOT_FOUND);
	CU_ASSERT(strstr(msg, "make it first") != NULL);
	test_conn_close(&c);
	l = ctl_one_in(OP_TAKE, here[0], here[2]);
	l.count = 1;
	CU_ASSERT_EQUAL_FATAL(link_at_node0(&l, msg, sizeof msg, &id, &c), STATUS_STARTED);
	CU_ASSERT_FATAL(ct_open_client(&p, ct_node_port(2), false) == 0);
	/* through node 2: forwarded to node 0, which runs the link */
	CU_ASSERT_EQUAL(st_send_wait(&p, here[0], "one", PROTO_WAIT_FOREVER), STATUS_OK);
	CU_ASSERT_EQUAL(st_recv_wait(&p, here[2], PROTO_WAIT_FOREVER, buf, sizeof buf, &ok),
	    STATUS_OK);
	CU_ASSERT(ok && strcmp(buf, "one") == 0);
	test_conn_close(&p);
	st_reply(&c, OP_TAKE, &r);
	CU_ASSERT_EQUAL(r.status, STATUS_OK);
	CU_ASSERT_EQUAL(r.n, 1);
	test_conn_close(&c);
}

/*
 * A named output on node 2 made with cap 4, asked with cap 8: EXISTS, as on
 * one node, and no STARTED; nothing ran: the input on node 1 keeps its
 * value, the output is open, with cap 4, and nothing waits on either.
 */
static void
test_output_cap(void)
{
	char in[CT_NAME_CAP], out[CT_NAME_CAP], msg[400];
	struct proto_chan_info i = { 0 };
	struct proto_request l;
	struct test_conn c;
	uint64_t id;

	ct_make_on(1, in, "xcap_in", 4);
	ct_make_on(2, out, "xcap_out", 4);
	ctl_send_n(1, in, "c", 1);
	l = ctl_one_in(OP_OR_DONE, in, NULL);
	ctl_set_out(&l, 0, out, 8);
	CU_ASSERT_EQUAL(link_at_node0(&l, msg, sizeof msg, &id, &c), STATUS_EXISTS);
	CU_ASSERT(strstr(msg, "different cap") != NULL && strstr(msg, out) != NULL);
	test_conn_close(&c);
	CU_ASSERT(ctl_await_len(1, in, 1));
	ct_client_of(&c, 2);
	CU_ASSERT_EQUAL(st_info(&c, out, &i), STATUS_OK);
	test_conn_close(&c);
	CU_ASSERT(!i.closed);
	CU_ASSERT_EQUAL(i.cap, 4);
	CU_ASSERT(ctl_await_waiters(1, in, NULL, 0));
	CU_ASSERT(ctl_await_waiters(2, out, NULL, 0));
}

void
ct_add_link_tests(CU_pSuite s)
{
	test_add(s, "links: fan-in over three nodes, exact and in order", test_fan_in);
	test_add(s, "links: or-done stopped by a remote done channel", test_or_done);
	test_add(s, "links: tee to two nodes, the close error to both", test_tee);
	test_add(s, "links: or over two nodes", test_or);
	test_add(s, "links: take, then repeat until CANCEL", test_take_repeat);
	test_add(s, "links: fan-out job between two nodes", test_fan_out);
	test_add(s, "links: bridge from, to and following other nodes", test_bridge);
	test_add(s, "links: bridge following a name no node owns", test_bridge_unowned);
	test_add(s, "links: anonymous channels of other nodes, and of one not live", test_anonymous);
	test_add(s, "links: an output nobody made; every channel here runs", test_links_here);
	test_add(s, "links: a remote output's cap differs: EXISTS, nothing runs", test_output_cap);
	ct_add_link_end_tests(s);
}
