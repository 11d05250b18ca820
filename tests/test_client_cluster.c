/*
 * test_client_cluster.c: libchanclient's cluster routing (PROTOCOL.md §17,
 * issue 19) against a real etcd and three chand nodes that the suite
 * starts on ephemeral loopback ports and stops: one cluster:// connection
 * reaches every channel's owner directly (each node's STATS shows the ops
 * ran there and no MOVED once the cache is warm), Go's semantics hold
 * through it, and a killed owner fails its waiters at once and its
 * channels converge on a live node. Its other parts: tags from a select or
 * stream across nodes go back to the node that handed them out
 * (test_client_cluster_ack.c); a MOVED loop ends in a clear error, and
 * chanctl's cluster commands (test_client_cluster_admin.c). Skipped (with
 * a message) without /usr/bin/etcd.
 *
 * SPDX-License-Identifier: BSD-2-Clause
 */
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "clock.h"
#include "clientclustertest.h"
#include "srvtest.h"
#include "status.h"

char seeds[128];			/* "cluster://127.0.0.1:P0", or cluster+tls:// and node 0's TLS port */
static const chan_dial_opts_t *dial_opts;	/* NULL, or the TLS suites' tls_opts */
static chan_dial_opts_t tls_opts;
static char tls_ca[128];

/* The fixture's etcd and nodes (clustertest.c), and one seed: the library finds the other nodes through MOVED. */
static int
suite_init(void)
{
	if (ct_suite_init() < 0)
		return -1;
	snprintf(seeds, sizeof seeds, "cluster://127.0.0.1:%d", ct_node_port(0));
	return 0;
}

/* ---- helpers ------------------------------------------------------------------------------------ */

chan_conn_t *
dial_cluster(void)
{
	chan_conn_t *c = NULL;

	CU_ASSERT_EQUAL_FATAL(chan_dial(NULL, seeds, dial_opts, &c), CHAN_OK);
	return c;
}

/* The node whose port addr names ("127.0.0.1:PORT", its plain or its TLS port), or -1. */
int
node_of(const char *addr)
{
	int port;

	if (sscanf(addr, "127.0.0.1:%d", &port) != 1)
		return -1;
	for (int i = 0; i < NODES; i++)
		if (ct_node(i)->pid > 0 && (ct_node_port(i) == port || ct_node_tls_port(i) == port))
			return i;
	return -1;
}

/* The node that owns name as the library sees it, checked against the node itself (INFO there is OK). */
int
owner(chan_conn_t *c, const char *name)
{
	struct proto_chan_info info;
	char addr[128];
	int i;

	CU_ASSERT_EQUAL_FATAL(chan_cluster_where(NULL, c, name, addr, sizeof addr), CHAN_OK);
	CU_ASSERT_FATAL((i = node_of(addr)) >= 0);
	CU_ASSERT_EQUAL(test_chan_info(ct_node_port(i), name, &info), 0);
	return i;
}

/*
 * chan_make, made again while the cluster answers UNAVAILABLE, for 10 s at
 * most, as a client would: a node's etcd call can fail under load (the
 * suites run beside each other on two CPUs). Each one is printed.
 */
static int
make_retry(chan_conn_t *c, const char *name, size_t cap, chan_t **ch)
{
	int64_t end = clock_now_ns() + 10 * NSEC_PER_SEC;
	int rc;

	while ((rc = chan_make(NULL, c, name, cap, ch)) == CHAN_EUNAVAILABLE && clock_now_ns() < end) {
		printf(" [MAKE %s: unavailable, again]", name);
		poll(NULL, 0, 50);
	}
	return rc;
}

/* A channel named base-N made through c on node want (trying N = 0, 1, ...). */
chan_t *
make_on(chan_conn_t *c, int want, const char *base, size_t cap, char *name, size_t ncap)
{
	chan_t *ch;

	for (int n = 0; n < 200; n++) {
		snprintf(name, ncap, "%s-%d", st_name(base), n);
		CU_ASSERT_EQUAL_FATAL(make_retry(c, name, cap, &ch), CHAN_OK);
		if (owner(c, name) == want)
			return ch;
		chan_delete(NULL, ch, NULL);
		chan_free(ch);
	}
	CU_FAIL_FATAL("no name placed on the node");
	return NULL;
}

static bool
recv_is(chan_t *ch, const char *want)
{
	chan_value_t v;
	bool ok = false, same;

	if (chan_recv(NULL, ch, &v, &ok) != CHAN_OK || !ok)
		return false;
	same = v.len == strlen(want) && memcmp(v.data, want, v.len) == 0;
	chan_value_clear(&v);
	return same;
}

/* ---- routing ------------------------------------------------------------------------------------- */

/* Every node sees the three (STATS asserts: not in the suite's init). */
static void
test_join(void)
{
	for (int i = 0; i < NODES; i++)
		CU_ASSERT_FATAL(ct_await_stat(i, "cluster_nodes", NODES, 15000));
}

/* Channels on every node through one connection: each op goes straight to its owner. */
static void
test_owner_direct(void)
{
	chan_conn_t *c = dial_cluster();
	chan_t *ch[NCHANS];
	char name[NCHANS][64], v[32];
	uint64_t moved[NODES], reqs[NODES], d;
	int own[NCHANS], per[NODES] = { 0 };

	for (int i = 0; i < NCHANS; i++) {
		snprintf(name[i], sizeof name[i], "%s", st_name("direct"));
		CU_ASSERT_EQUAL_FATAL(make_retry(c, name[i], 4, &ch[i]), CHAN_OK);
		own[i] = owner(c, name[i]);
		per[own[i]]++;
	}
	for (int k = 0; k < NODES; k++)
		CU_ASSERT(per[k] > 0);	/* rendezvous spread them: every node is reached */
	for (int k = 0; k < NODES; k++) {
		moved[k] = ct_node_stat(k, "cluster_moved");
		reqs[k] = ct_node_stat(k, "requests_total");
	}
	for (int i = 0; i < NCHANS; i++) {
		snprintf(v, sizeof v, "v%d", i);
		CU_ASSERT_EQUAL(chan_send(NULL, ch[i], v, strlen(v)), CHAN_OK);
		CU_ASSERT(recv_is(ch[i], v));
	}
	for (int k = 0; k < NODES; k++) {
		CU_ASSERT_EQUAL(ct_node_stat(k, "cluster_moved"), moved[k]);
		/* its channels' SEND and RECV, plus the STATS connection's HELLO and STATS */
		d = ct_node_stat(k, "requests_total") - reqs[k];
		CU_ASSERT(d >= (uint64_t)(2 * per[k]) && d <= (uint64_t)(2 * per[k]) + 4);
	}
	for (int i = 0; i < NCHANS; i++)
		chan_free(ch[i]);
	chan_conn_close(c);
}

/* A fresh connection whose cache is cold: MOVED is followed, the reply's budget unspent. */
static void
test_follow_moved(void)
{
	chan_conn_t *a = dial_cluster(), *b = dial_cluster();
	chan_t *ch, *hb;
	char name[64];
	int k;

	ch = make_on(a, 2, "moved", 1, name, sizeof name);
	CU_ASSERT_EQUAL_FATAL(chan_open(NULL, b, name, &hb), CHAN_OK);	/* b's seed is node 0 */
	CU_ASSERT_EQUAL(chan_send(NULL, hb, "x", 1), CHAN_OK);
	CU_ASSERT(recv_is(ch, "x"));
	k = owner(b, name);
	CU_ASSERT_EQUAL(k, 2);
	chan_free(hb);
	chan_free(ch);
	chan_conn_close(b);
	chan_conn_close(a);
}

/*
 * An anonymous channel lives on the node that made it: its handle goes
 * there. Another connection's, made on node 2 and passed by name, is
 * reached there too (node 0 answers MOVED, its name says node 2).
 */
static void
test_anonymous(void)
{
	chan_conn_t *c = dial_cluster(), *other = NULL;
	chan_t *anon, *named, *ref;
	char name[64], seed2[64];

	named = make_on(c, 1, "anon", 1, name, sizeof name);	/* node 1 is connected now too */
	CU_ASSERT_EQUAL_FATAL(chan_make(NULL, c, NULL, 2, &anon), CHAN_OK);
	CU_ASSERT_EQUAL(chan_send(NULL, anon, "a", 1), CHAN_OK);
	CU_ASSERT_EQUAL(chan_send(NULL, anon, "b", 1), CHAN_OK);
	CU_ASSERT(recv_is(anon, "a"));
	CU_ASSERT(recv_is(anon, "b"));
	chan_free(anon);

	snprintf(seed2, sizeof seed2, "cluster://127.0.0.1:%d", ct_node_port(2));
	CU_ASSERT_EQUAL_FATAL(chan_dial(NULL, seed2, NULL, &other), CHAN_OK);
	CU_ASSERT_EQUAL_FATAL(chan_make(NULL, other, NULL, 1, &anon), CHAN_OK);
	CU_ASSERT_EQUAL_FATAL(chan_open(NULL, c, chan_name(anon), &ref), CHAN_OK);
	CU_ASSERT_EQUAL(owner(c, chan_name(anon)), 2);
	CU_ASSERT_EQUAL(chan_send(NULL, ref, "c", 1), CHAN_OK);
	CU_ASSERT(recv_is(anon, "c"));
	CU_ASSERT_EQUAL(chan_send(NULL, anon, "d", 1), CHAN_OK);
	CU_ASSERT(recv_is(ref, "d"));
	chan_free(ref);
	chan_free(anon);
	chan_conn_close(other);
	chan_free(named);
	chan_conn_close(c);
}

/* ---- Go's semantics through the cluster connection --------------------------------------------- */

struct op {
	chan_t *ch;
	chan_ctx_t *ctx;
	const char *v;			/* NULL: a receive */
	int rc;
	int64_t done;			/* when it returned */
};

static void *
op_thread(void *arg)
{
	struct op *o = arg;

	if (o->v != NULL)
		o->rc = chan_send(o->ctx, o->ch, o->v, strlen(o->v));
	else
		o->rc = chan_recv(o->ctx, o->ch, NULL, NULL);
	__atomic_store_n(&o->done, clock_now_ns(), __ATOMIC_RELEASE);
	return NULL;
}

static void
test_go_semantics(void)
{
	chan_conn_t *c = dial_cluster(), *r = dial_cluster();
	chan_t *un, *buf, *rh, *other;
	chan_case_t cases[2];
	struct op o;
	pthread_t t;
	chan_ctx_t *ctx;
	int64_t t0, t1;
	char n1[64], n2[64], n3[64];
	bool ok = true;

	/* rendezvous: the send completes only once a receiver (on another connection) took it */
	un = make_on(c, 1, "rv", 0, n1, sizeof n1);
	o = (struct op){ un, NULL, "hello", -1, 0 };
	pthread_create(&t, NULL, op_thread, &o);
	CU_ASSERT_FATAL(test_wait_waiters(ct_node_port(1), n1, 1, 0, 5000));
	CU_ASSERT_EQUAL(__atomic_load_n(&o.done, __ATOMIC_ACQUIRE), 0);
	CU_ASSERT_EQUAL_FATAL(chan_open(NULL, r, n1, &rh), CHAN_OK);
	CU_ASSERT(recv_is(rh, "hello"));
	pthread_join(t, NULL);
	CU_ASSERT_EQUAL(o.rc, CHAN_OK);
	chan_free(rh);

	/* close drains: buffered values first, then ok false */
	buf = make_on(c, 2, "drain", 4, n2, sizeof n2);
	CU_ASSERT_EQUAL(chan_send(NULL, buf, "1", 1), CHAN_OK);
	CU_ASSERT_EQUAL(chan_send(NULL, buf, "2", 1), CHAN_OK);
	CU_ASSERT_EQUAL(chan_close(NULL, buf), CHAN_OK);
	CU_ASSERT(recv_is(buf, "1"));
	CU_ASSERT(recv_is(buf, "2"));
	CU_ASSERT_EQUAL(chan_recv(NULL, buf, NULL, &ok), CHAN_OK);
	CU_ASSERT_FALSE(ok);
	CU_ASSERT_EQUAL(chan_send(NULL, buf, "3", 1), CHAN_ECLOSED);

	/* a deadline on an empty channel of another node */
	CU_ASSERT_EQUAL_FATAL(chan_with_timeout(&ctx, NULL, 200 * CHAN_MSEC), CHAN_OK);
	t0 = clock_now_ns();
	CU_ASSERT_EQUAL(chan_recv(ctx, un, NULL, NULL), CHAN_EDEADLINE);
	t1 = clock_now_ns();
	CU_ASSERT(t1 - t0 >= 190 * NSEC_PER_MSEC && t1 - t0 < 5 * NSEC_PER_SEC);
	chan_ctx_free(ctx);

	/* cancel: a blocked receive ends CANCELED and the owner keeps no waiter */
	CU_ASSERT_EQUAL_FATAL(chan_with_cancel(&ctx, NULL), CHAN_OK);
	o = (struct op){ un, ctx, NULL, -1, 0 };
	pthread_create(&t, NULL, op_thread, &o);
	CU_ASSERT_FATAL(test_wait_waiters(ct_node_port(1), n1, 0, 1, 5000));
	chan_cancel(ctx);
	pthread_join(t, NULL);
	CU_ASSERT_EQUAL(o.rc, CHAN_ECANCELED);
	CU_ASSERT(test_wait_waiters(ct_node_port(1), n1, 0, 0, 5000));
	chan_ctx_free(ctx);

	/* select: cases on one node go there; on two nodes, to one of them, which coordinates it */
	other = make_on(c, 1, "sel", 1, n3, sizeof n3);
	CU_ASSERT_EQUAL(chan_send(NULL, other, "s", 1), CHAN_OK);
	memset(cases, 0, sizeof cases);
	cases[0] = (chan_case_t){ .ch = un, .dir = CHAN_DIR_RECV };
	cases[1] = (chan_case_t){ .ch = other, .dir = CHAN_DIR_RECV };
	CU_ASSERT_EQUAL(chan_select(NULL, cases, 2, false), 1);
	chan_value_clear(&cases[1].value);
	cases[0].ch = buf;	/* node 2 beside node 1: buf is closed, so ready */
	CU_ASSERT_EQUAL(chan_select(NULL, cases, 2, true), 0);
	CU_ASSERT_FALSE(cases[0].ok);
	chan_free(other);
	chan_free(buf);
	chan_free(un);
	chan_conn_close(r);
	chan_conn_close(c);
}

/* Asynchronous operations and streams go to the owner too (resolved first: they cannot bounce). */
static void
test_async_and_stream(void)
{
	chan_conn_t *c = dial_cluster(), *cold = dial_cluster();
	chan_t *ch, *hc;
	chan_op_t *op;
	chan_stream_t *s;
	chan_value_t v;
	char name[64];
	bool ok;
	size_t idx;

	ch = make_on(c, 2, "async", 8, name, sizeof name);
	CU_ASSERT_EQUAL_FATAL(chan_handle_new(&hc, cold, name), CHAN_OK);	/* cold: nothing cached */
	CU_ASSERT_EQUAL_FATAL(chan_recv_async(NULL, hc, &op), CHAN_OK);
	CU_ASSERT_EQUAL(chan_send(NULL, ch, "a", 1), CHAN_OK);
	CU_ASSERT_EQUAL(chan_op_wait(op, &v, &ok), CHAN_OK);
	CU_ASSERT(ok && v.len == 1 && memcmp(v.data, "a", 1) == 0);
	chan_value_clear(&v);
	/* credit 2 for 5 values: CREDIT must reach the node the stream runs on */
	for (int i = 0; i < 5; i++)
		CU_ASSERT_EQUAL(chan_send(NULL, ch, "s", 1), CHAN_OK);
	CU_ASSERT_EQUAL(chan_close(NULL, ch), CHAN_OK);
	CU_ASSERT_EQUAL_FATAL(chan_stream_open(NULL, &hc, 1, 2, &s), CHAN_OK);
	for (int i = 0; i < 5; i++) {
		CU_ASSERT_EQUAL(chan_stream_recv(s, &v, &ok, &idx), CHAN_OK);
		CU_ASSERT(ok);
		chan_value_clear(&v);
	}
	CU_ASSERT_EQUAL(chan_stream_recv(s, &v, &ok, &idx), CHAN_OK);
	CU_ASSERT_FALSE(ok);
	chan_stream_free(s);
	chan_free(hc);
	chan_free(ch);
	chan_conn_close(cold);
	chan_conn_close(c);
}

/*
 * The echo of test_corked_across: n values from ping, each sent back on
 * pong, on a front of its own. Between the two, a round trip to ping's node
 * (chan_len): its one loop has then written every reply of the turn that
 * handed the ping over, the pinger's SEND OK among them unless it holds it.
 */
struct echo {
	const char *ping, *pong;
	int n, rc;
};

static void *
echo_thread(void *arg)
{
	struct echo *e = arg;
	chan_conn_t *c = NULL;
	chan_ctx_t *ctx = NULL;
	chan_t *ping = NULL, *pong = NULL;
	chan_value_t v;

	if ((e->rc = chan_dial(NULL, seeds, NULL, &c)) != CHAN_OK ||
	    (e->rc = chan_with_timeout(&ctx, NULL, 10 * NSEC_PER_SEC)) != CHAN_OK ||
	    (e->rc = chan_handle_new(&ping, c, e->ping)) != CHAN_OK ||
	    (e->rc = chan_handle_new(&pong, c, e->pong)) != CHAN_OK)
		goto out;
	for (int i = 0; i < e->n && e->rc == CHAN_OK; i++) {
		size_t len;

		if ((e->rc = chan_recv(ctx, ping, &v, NULL)) == CHAN_OK &&
		    (e->rc = chan_len(ctx, ping, &len)) == CHAN_OK)
			e->rc = chan_send(ctx, pong, v.data, v.len);
		chan_value_clear(&v);
	}
out:
	chan_free(ping);
	chan_free(pong);
	chan_ctx_free(ctx);
	chan_conn_close(c);
	return NULL;
}

/*
 * One round trip of test_corked_across: ping's SEND queued, then a wait for
 * pong, an asynchronous RECV's (queued before the SEND) or a blocking one;
 * then the SEND's own wait with ping's node (stop_node) stopped: its reply
 * must be here already (the waits asked for it), not held by the node.
 */
static void
ping_corked(chan_ctx_t *ctx, chan_t *ping, chan_t *pong, const char *val, bool blocking,
    int stop_node)
{
	chan_op_t *r = NULL, *w = NULL;
	chan_value_t v = { 0 };
	int rc;

	if (!blocking && chan_recv_async(ctx, pong, &r) != CHAN_OK) {
		CU_FAIL("chan_recv_async");
		return;
	}
	if (chan_send_async(ctx, ping, val, strlen(val), &w) != CHAN_OK) {
		CU_FAIL("chan_send_async");
		chan_op_wait(r, NULL, NULL);
		return;
	}
	rc = blocking ? chan_recv(ctx, pong, &v, NULL) : chan_op_wait(r, &v, NULL);
	CU_ASSERT_EQUAL(rc, CHAN_OK);
	CU_ASSERT(rc != CHAN_OK || (v.len == strlen(val) && memcmp(v.data, val, v.len) == 0));
	chan_value_clear(&v);
	ct_node_signal(stop_node, SIGSTOP);
	CU_ASSERT_EQUAL(chan_op_wait(w, NULL, NULL), CHAN_OK);
	ct_node_signal(stop_node, SIGCONT);
}

/*
 * What is queued for one node leaves when the thread waits on another's
 * reply, as on one connection (chanclient.h: "when a thread waits"): the
 * pinger's asynchronous RECV of pong (node 0) and SEND of ping (node 1),
 * then a wait for the pong, which comes only once the echo had the ping;
 * then a SEND of ping queued and a blocking RECV of pong. The SEND's reply,
 * which node 1 would hold for a WANT (PROTOCOL.md §15), was asked for when
 * the thread waited on node 0, as a wait on one connection would. Bounded
 * by a 10 s context: a ping left queued fails with CHAN_EDEADLINE.
 */
static void
test_corked_across(void)
{
	chan_conn_t *c = dial_cluster();
	chan_ctx_t *ctx;
	chan_t *ping, *pong;
	struct echo e = { .n = 2 };
	char nping[64], npong[64];
	pthread_t t;

	ping = make_on(c, 1, "cping", 0, nping, sizeof nping);
	pong = make_on(c, 0, "cpong", 0, npong, sizeof npong);
	e.ping = nping;
	e.pong = npong;
	CU_ASSERT_EQUAL_FATAL(chan_with_timeout(&ctx, NULL, 10 * NSEC_PER_SEC), CHAN_OK);
	CU_ASSERT_EQUAL_FATAL(pthread_create(&t, NULL, echo_thread, &e), 0);
	ping_corked(ctx, ping, pong, "async", false, 1);
	ping_corked(ctx, ping, pong, "blocking", true, 1);
	pthread_join(t, NULL);
	CU_ASSERT_EQUAL(e.rc, CHAN_OK);
	chan_ctx_free(ctx);
	chan_free(ping);
	chan_free(pong);
	chan_conn_close(c);
}

/*
 * A stream over channels on nodes 0, 1 and 2 goes to the first one's node,
 * which coordinates it (PROTOCOL.md §17, cross-node STREAM): with credit 2
 * every value comes once, from the channel it was sent to, and each close
 * once (rounds run at once: a close may come before its channel's last
 * value), then CHAN_ECLOSED.
 */
static void
test_stream_across(void)
{
	chan_conn_t *c = dial_cluster();
	chan_t *ch[3];
	chan_stream_t *s;
	chan_value_t v;
	char names[3][64];
	int seen[3] = { 0 }, closed[3] = { 0 };
	size_t idx;
	bool ok;

	for (int k = 0; k < 3; k++) {
		ch[k] = make_on(c, k, "sx", 4, names[k], sizeof names[k]);
		for (int i = 0; i < 3; i++)
			CU_ASSERT_EQUAL(chan_send(NULL, ch[k], (char[]){ (char)('a' + k) }, 1), CHAN_OK);
		CU_ASSERT_EQUAL(chan_close(NULL, ch[k]), CHAN_OK);
	}
	CU_ASSERT_EQUAL_FATAL(chan_stream_open(NULL, ch, 3, 2, &s), CHAN_OK);
	for (int i = 0; i < 12; i++) {
		CU_ASSERT_EQUAL_FATAL(chan_stream_recv(s, &v, &ok, &idx), CHAN_OK);
		CU_ASSERT_FATAL(idx < 3);
		if (!ok) {
			closed[idx]++;
			continue;
		}
		CU_ASSERT(v.len == 1 && ((const char *)v.data)[0] == (char)('a' + idx));
		seen[idx]++;
		chan_value_clear(&v);
	}
	for (int k = 0; k < 3; k++)
		CU_ASSERT(seen[k] == 3 && closed[k] == 1);
	CU_ASSERT_EQUAL(chan_stream_recv(s, &v, &ok, &idx), CHAN_ECLOSED);
	chan_stream_free(s);
	for (int k = 0; k < 3; k++)
		chan_free(ch[k]);
	chan_conn_close(c);
}

/*
 * A fan-in over inputs on nodes 1 and 2 into an output on node 0: the
 * library sends it to the first input's node, which pumps the others
 * (PROTOCOL.md §17, links in a cluster); every value arrives once.
 */
static void
test_link_across(void)
{
	chan_conn_t *c = dial_cluster();
	char na[64], nb[64], no[64];
	chan_t *in[2], *out, *o;
	chan_link_opts_t opts = { .out_name = { no }, .out_cap = { 4 } };
	chan_link_t *link;
	chan_value_t v;
	uint64_t sent = 0;
	int seen[2] = { 0 };
	bool ok;

	in[0] = make_on(c, 1, "lxa", 4, na, sizeof na);
	in[1] = make_on(c, 2, "lxb", 4, nb, sizeof nb);
	out = make_on(c, 0, "lxo", 4, no, sizeof no);
	CU_ASSERT_EQUAL_FATAL(chan_fan_in(NULL, in, 2, &opts, &link, &o), CHAN_OK);
	CU_ASSERT_EQUAL(chan_send(NULL, in[0], "a", 1), CHAN_OK);
	CU_ASSERT_EQUAL(chan_send(NULL, in[1], "b", 1), CHAN_OK);
	for (int k = 0; k < 2; k++) {
		CU_ASSERT_EQUAL_FATAL(chan_recv(NULL, out, &v, &ok), CHAN_OK);
		CU_ASSERT_FATAL(ok && v.len == 1);
		seen[((const char *)v.data)[0] == 'b']++;
		chan_value_clear(&v);
	}
	CU_ASSERT(seen[0] == 1 && seen[1] == 1);
	CU_ASSERT_EQUAL(chan_close(NULL, in[0]), CHAN_OK);
	CU_ASSERT_EQUAL(chan_close(NULL, in[1]), CHAN_OK);
	CU_ASSERT_EQUAL(chan_link_wait(link, &sent), 0);
	CU_ASSERT_EQUAL(sent, 2);
	CU_ASSERT_EQUAL(chan_recv(NULL, out, &v, &ok), CHAN_OK);
	CU_ASSERT_FALSE(ok);
	chan_link_free(link);
	chan_free(o);
	chan_free(out);
	chan_free(in[0]);
	chan_free(in[1]);
	chan_conn_close(c);
}

/* ---- the owner dies ------------------------------------------------------------------------------- */

/* An asynchronous send of s through ch, waited for. */
static int
send_async(chan_t *ch, const char *s)
{
	chan_op_t *op;
	int rc = chan_send_async(NULL, ch, s, strlen(s), &op);

	return rc != CHAN_OK ? rc : chan_op_wait(op, NULL, NULL);
}

/*
 * SIGKILL the owner while a client waits: the wait ends at once; the
 * channel converges on a live node. A second cluster connection that used
 * the channel and sat idle meanwhile fails its next call on it once with
 * CHAN_ECONNLOST (its node's connection is gone), then routes again; its
 * handle's asynchronous sends, which went to the old owner, go to the new.
 */
static void
test_owner_killed(void)
{
	chan_conn_t *c = dial_cluster(), *idle = dial_cluster();
	chan_t *ch, *live, *ich;
	char name[64], lname[64];
	struct op o;
	pthread_t t;
	int64_t killed, end;
	int rc, k;

	ch = make_on(c, 2, "kill", 1, name, sizeof name);
	live = make_on(c, 1, "live", 1, lname, sizeof lname);
	CU_ASSERT_EQUAL_FATAL(make_retry(idle, name, 1, &ich), CHAN_OK);
	CU_ASSERT_EQUAL(owner(idle, name), 2);
	CU_ASSERT_EQUAL(send_async(ich, "pre"), CHAN_OK);
	CU_ASSERT(recv_is(ch, "pre"));
	o = (struct op){ ch, NULL, NULL, 0, 0 };
	pthread_create(&t, NULL, op_thread, &o);
	CU_ASSERT_FATAL(test_wait_waiters(ct_node_port(2), name, 0, 1, 5000));
	killed = clock_now_ns();
	ct_node_kill(2);
	pthread_join(t, NULL);
	CU_ASSERT_EQUAL(o.rc, CHAN_ECONNLOST);
	CU_ASSERT(o.done - killed < 2 * NSEC_PER_SEC);	/* at once, not after node_ttl */
	/* the other nodes' channels are untouched */
	CU_ASSERT_EQUAL(chan_send(NULL, live, "l", 1), CHAN_OK);
	CU_ASSERT(recv_is(live, "l"));
	/* until the lease ends the cluster still names the dead node: clear errors, never a hang */
	end = clock_now_ns() + (TTL_S + 10) * NSEC_PER_SEC;
	chan_free(ch);
	while ((rc = chan_make(NULL, c, name, 1, &ch)) != CHAN_OK && clock_now_ns() < end) {
		CU_ASSERT(rc == CHAN_ECONNECT || rc == CHAN_EUNAVAILABLE || rc == CHAN_ECONNLOST);
		poll(NULL, 0, 100);	/* between retries, as a client would back off */
	}
	CU_ASSERT_EQUAL_FATAL(rc, CHAN_OK);
	k = owner(c, name);
	CU_ASSERT(k == 0 || k == 1);
	CU_ASSERT_EQUAL(chan_send(NULL, ch, "again", 5), CHAN_OK);
	CU_ASSERT(recv_is(ch, "again"));
	/* the idle connection: the lost node once, then the channel where it is now */
	CU_ASSERT_EQUAL(chan_send(NULL, ich, "idle", 4), CHAN_ECONNLOST);
	CU_ASSERT_EQUAL(chan_send(NULL, ich, "idle", 4), CHAN_OK);
	CU_ASSERT_EQUAL(owner(idle, name), k);
	CU_ASSERT(recv_is(ch, "idle"));
	CU_ASSERT_EQUAL(send_async(ich, "async"), CHAN_OK);
	CU_ASSERT(recv_is(ch, "async"));
	chan_free(ich);
	chan_conn_close(idle);
	chan_free(ch);
	chan_free(live);
	chan_conn_close(c);
}

/* ---- TLS to the nodes ------------------------------------------------------------------------------ */

/* The TLS suites' seed, node 0's TLS listener, and the CA of the nodes' certificates. */
static void
tls_dial_set(void)
{
	snprintf(seeds, sizeof seeds, "cluster+tls://127.0.0.1:%d", ct_node_tls_port(0));
	snprintf(tls_ca, sizeof tls_ca, "%s/ca.pem", ct_certs());
	tls_opts = (chan_dial_opts_t){ .tls_ca = tls_ca };
	dial_opts = &tls_opts;
}

/* Three nodes that speak TLS to each other and advertise their TLS listeners. */
static int
tls_suite_init(void)
{
	if (ct_tls_suite_init() < 0)
		return -1;
	tls_dial_set();
	return 0;
}

/* The same with authentication on: alice, known by her client certificate, has every right. */
static int
mtls_suite_init(void)
{
	if (ct_tls_auth_suite_init("allow = alice * all\n") < 0)
		return -1;
	tls_dial_set();
	return 0;
}

static int
tls_suite_clean(void)
{
	dial_opts = NULL;
	return ct_tls_suite_clean();
}

/*
 * Every node's certificate is verified: against another CA, or for a name
 * the certificates do not carry, the seed's handshake fails; TLS at a plain
 * port fails so too, and a plain cluster:// at the TLS listener gets no
 * HELLO through. tls_server_name, when given, is the one name every node's
 * certificate must carry (gencerts.sh's name localhost).
 */
static void
test_tls_verified(void)
{
	char other[160], addr[128], name[64];
	chan_dial_opts_t o = { .tls_ca = other };
	chan_conn_t *c = NULL;
	chan_t *ch;

	snprintf(other, sizeof other, "%s/otherca.pem", ct_certs());
	CU_ASSERT_EQUAL(chan_dial(NULL, seeds, &o, &c), CHAN_ETLS);
	o = (chan_dial_opts_t){ .tls_ca = tls_ca, .tls_server_name = "chand.example" };
	CU_ASSERT_EQUAL(chan_dial(NULL, seeds, &o, &c), CHAN_ETLS);
	snprintf(addr, sizeof addr, "cluster+tls://127.0.0.1:%d", ct_node_port(0));
	CU_ASSERT_EQUAL(chan_dial(NULL, addr, &tls_opts, &c), CHAN_ETLS);
	snprintf(addr, sizeof addr, "cluster://127.0.0.1:%d", ct_node_tls_port(0));
	CU_ASSERT_EQUAL(chan_dial(NULL, addr, NULL, &c), CHAN_ECONNLOST);
	CU_ASSERT_PTR_NULL(c);
	/* a seed that cut the HELLO short is passed over as a dead one is: the next one serves */
	snprintf(addr, sizeof addr, "cluster://127.0.0.1:%d,127.0.0.1:%d", ct_node_tls_port(0),
	    ct_node_port(1));
	CU_ASSERT_EQUAL_FATAL(chan_dial(NULL, addr, NULL, &c), CHAN_OK);
	CU_ASSERT_EQUAL(chan_ping(NULL, c), CHAN_OK);
	chan_conn_close(c);
	/* the name every certificate carries: node 2 is reached through a MOVED, and verified */
	o.tls_server_name = "localhost";
	CU_ASSERT_EQUAL_FATAL(chan_dial(NULL, seeds, &o, &c), CHAN_OK);
	ch = make_on(c, 2, "tlsname", 1, name, sizeof name);
	CU_ASSERT_EQUAL(chan_send(NULL, ch, "n", 1), CHAN_OK);
	CU_ASSERT(recv_is(ch, "n"));
	chan_free(ch);
	chan_conn_close(c);
}

/*
 * Mutual TLS: alice's certificate goes to every node, the seed and those
 * MOVED names, and each knows her by it: a channel on each node is made,
 * sent to and received from. Without the certificate every node refuses
 * the client.
 */
static void
test_tls_client_cert(void)
{
	char cert[160], key[160], name[64], addr[128];
	chan_dial_opts_t o = tls_opts;
	chan_conn_t *c = NULL;
	chan_t *ch;
	int seen = 0, k;

	snprintf(cert, sizeof cert, "%s/client.pem", ct_certs());
	snprintf(key, sizeof key, "%s/client.key", ct_certs());
	o.tls_cert = cert;
	o.tls_key = key;
	CU_ASSERT_EQUAL_FATAL(chan_dial(NULL, seeds, &o, &c), CHAN_OK);
	for (int n = 0; n < 200 && seen != (1 << NODES) - 1; n++) {
		snprintf(name, sizeof name, "%s-%d", st_name("mtls"), n);
		CU_ASSERT_EQUAL_FATAL(make_retry(c, name, 1, &ch), CHAN_OK);
		CU_ASSERT_EQUAL_FATAL(chan_cluster_where(NULL, c, name, addr, sizeof addr), CHAN_OK);
		CU_ASSERT_FATAL((k = node_of(addr)) >= 0);
		seen |= 1 << k;
		CU_ASSERT_EQUAL(chan_send(NULL, ch, "m", 1), CHAN_OK);
		CU_ASSERT(recv_is(ch, "m"));
		chan_free(ch);
	}
	CU_ASSERT_EQUAL(seen, (1 << NODES) - 1);
	chan_conn_close(c);
	/* without it, each node refuses the HELLO: authentication is on and no token is said */
	for (k = 0; k < NODES; k++) {
		snprintf(addr, sizeof addr, "cluster+tls://127.0.0.1:%d", ct_node_tls_port(k));
		CU_ASSERT_EQUAL(chan_dial(NULL, addr, &tls_opts, &c), CHAN_EPERM);
	}
}

static void
register_suites(void)
{
	CU_pSuite s = test_suite("client cluster, no etcd", NULL, NULL);

	register_client_cluster_no_etcd(s);
	if (access(CT_ETCD, X_OK) != 0) {
		printf("test_client_cluster: %s is missing (apt-get install etcd-server): skipped\n", CT_ETCD);
		return;
	}
	s = test_suite("client cluster", suite_init, ct_suite_clean);
	test_add(s, "three nodes join", test_join);
	test_add(s, "every op goes straight to its owner", test_owner_direct);
	test_add(s, "a cold cache follows MOVED", test_follow_moved);
	test_add(s, "anonymous channels live on their maker, reached from anywhere", test_anonymous);
	test_add(s, "Go semantics through the cluster", test_go_semantics);
	test_add(s, "async ops and streams on the owner", test_async_and_stream);
	test_add(s, "a wait sends what was queued for the other nodes", test_corked_across);
	test_add(s, "a link over channels on three nodes", test_link_across);
	test_add(s, "a stream over channels on three nodes", test_stream_across);
	register_client_cluster_ack(s);
	register_client_cluster_admin(s);
	test_add(s, "SIGKILL of the owner: error at once, then converges", test_owner_killed);
	/* the same cluster over TLS: cluster+tls:// */
	s = test_suite("client cluster, TLS", tls_suite_init, tls_suite_clean);
	test_add(s, "three nodes join", test_join);
	test_add(s, "every op goes straight to its owner", test_owner_direct);
	test_add(s, "a cold cache follows MOVED", test_follow_moved);
	test_add(s, "Go semantics through the cluster", test_go_semantics);
	test_add(s, "every node's certificate verified", test_tls_verified);
	register_client_cluster_tls_admin(s);
	s = test_suite("client cluster, mutual TLS", mtls_suite_init, tls_suite_clean);
	test_add(s, "three nodes join", test_join);
	test_add(s, "a client certificate on every node", test_tls_client_cert);
}

int
main(int argc, char **argv)
{
	return ct_main(argc, argv, register_suites);
}
