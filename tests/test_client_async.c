/*
 * test_client_async.c: libchanclient's pipelining and its reading scheme,
 * against a real chand ($CHAND).
 *
 * The asynchronous operations (chan_send_async, chan_recv_async,
 * chan_op_wait, chan_conn_flush): order, corking, rendezvous, cancel,
 * deadlines, errors, and a producer pipelining far more than the socket
 * buffers hold to a server that stops reading a client which does not read
 * (output_hwm), which must not deadlock. Then the read token: threads
 * blocked on one connection read it one at a time (leader/follower) and
 * every one of them must get its reply, whoever reads it.
 *
 * Waiting is always on a condition (a thread's result, INFO showing a
 * waiter or a length) with a generous upper bound, never a bare sleep.
 *
 * This file holds the helpers the parts share and the async suite's order,
 * corking, rendezvous and deferred replies; cancel, deadlines and errors
 * are in test_client_async_cancel.c, pipelining and the read token in
 * test_client_async_io.c.
 *
 * SPDX-License-Identifier: BSD-2-Clause
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1
#endif
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "clienttest.h"
#include "asynctest.h"

/* ---- helpers ----------------------------------------------------------------------- */

/* Wait (bounded) until the server shows at least len values buffered in name. */
static bool
wait_len_at_least(const char *name, size_t len)
{
	int64_t t0 = chan_now();
	struct proto_chan_info i;

	while (ms_since(t0) < BOUND_MS) {
		if (raw_info(name, &i) == 0 && i.len >= len)
			return true;
		pause_1ms();
	}
	return false;
}

/* The server's length of name, or (size_t)-1. */
size_t
raw_len(const char *name)
{
	struct proto_chan_info i;

	return raw_info(name, &i) == 0 ? i.len : (size_t)-1;
}

chan_t *
make_on(chan_conn_t *c, const char *name, size_t cap)
{
	chan_t *ch = NULL;

	CU_ASSERT_EQUAL_FATAL(chan_make(NULL, c, name, cap, &ch), CHAN_OK);
	return ch;
}

chan_t *
make(const char *name, size_t cap)
{
	return make_on(csuite.conn, name, cap);
}

/* Delete a channel make() made, and free its handle. */
void
unmake(chan_t *ch)
{
	CU_ASSERT_EQUAL(chan_delete(NULL, ch, NULL), CHAN_OK);
	chan_free(ch);
}

bool
value_is_u32(const chan_value_t *v, uint32_t want)
{
	uint32_t got;

	if (v->kind != CHAN_VALUE_BYTES || v->len != sizeof got)
		return false;
	memcpy(&got, v->data, sizeof got);
	return got == want;
}

bool
timed_join(pthread_t t, int bound_ms)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += bound_ms / 1000;
	ts.tv_nsec += (long)(bound_ms % 1000) * 1000000L;
	if (ts.tv_nsec >= 1000000000L) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000L;
	}
	return pthread_timedjoin_np(t, NULL, &ts) == 0;
}

/* ---- async: order, corking, rendezvous -------------------------------------------- */

enum { ORDER_N = 2000 };

/*
 * 2,000 sends leave without a round trip each, and 2,000 receives from
 * another connection get the values in exactly the order sent.
 */
static void
test_order_pipelined(void)
{
	chan_t *ch = make("as.order", ORDER_N);
	chan_conn_t *c2 = cs_dial_grace(0);
	chan_t *ch2 = NULL;
	chan_op_t **ops = calloc(ORDER_N, sizeof *ops);
	unsigned sent_ok = 0, in_order = 0, ok_true = 0;

	CU_ASSERT_PTR_NOT_NULL_FATAL(ops);
	for (uint32_t i = 0; i < ORDER_N; i++)
		CU_ASSERT_EQUAL_FATAL(chan_send_async(NULL, ch, &i, sizeof i, &ops[i]), CHAN_OK);
	for (int i = 0; i < ORDER_N; i++) {
		chan_value_t v;
		bool ok = true;

		if (chan_op_wait(ops[i], &v, &ok) == CHAN_OK)
			sent_ok++;
		/* a send's result leaves v NIL and ok false */
		CU_ASSERT(v.kind == CHAN_VALUE_NIL && !ok);
	}
	CU_ASSERT_EQUAL(sent_ok, ORDER_N);
	CU_ASSERT_EQUAL(raw_len("as.order"), ORDER_N);

	CU_ASSERT_EQUAL_FATAL(chan_open(NULL, c2, "as.order", &ch2), CHAN_OK);
	for (int i = 0; i < ORDER_N; i++)
		CU_ASSERT_EQUAL_FATAL(chan_recv_async(NULL, ch2, &ops[i]), CHAN_OK);
	for (uint32_t i = 0; i < ORDER_N; i++) {
		chan_value_t v;
		bool ok = false;

		CU_ASSERT_EQUAL(chan_op_wait(ops[i], &v, &ok), CHAN_OK);
		ok_true += ok;
		in_order += value_is_u32(&v, i);
		chan_value_clear(&v);
	}
	CU_ASSERT_EQUAL(ok_true, ORDER_N);
	CU_ASSERT_EQUAL(in_order, ORDER_N);	/* exactly the send order */
	CU_ASSERT_EQUAL(raw_len("as.order"), 0);
	free(ops);
	chan_free(ch2);
	chan_conn_close(c2);
	chan_free(ch);
}

/*
 * Corked requests leave on chan_conn_flush, on any blocking call of the
 * connection (another thread's too), and once the queue passes 64 KiB.
 */
static void
test_cork_and_flush(void)
{
	enum { BIG = 1024, NBIG = 100 };	/* 100 KiB queued: past the 64 KiB cork */
	chan_t *ch = make("as.cork", 1000);
	chan_op_t *a = NULL, *b = NULL, *big[NBIG];
	char payload[BIG];
	unsigned ok = 0;

	memset(payload, 'p', sizeof payload);
	/* chan_conn_flush */
	CU_ASSERT_EQUAL_FATAL(chan_send_async(NULL, ch, "a", 1, &a), CHAN_OK);
	CU_ASSERT_PTR_NOT_NULL(a);
	CU_ASSERT_EQUAL(chan_conn_flush(csuite.conn), CHAN_OK);
	CU_ASSERT(wait_len_at_least("as.cork", 1));	/* arrived before anyone waited */
	/* a blocking call on the connection sends what was corked before it */
	CU_ASSERT_EQUAL_FATAL(chan_send_async(NULL, ch, "b", 1, &b), CHAN_OK);
	CU_ASSERT_EQUAL(chan_ping(NULL, csuite.conn), CHAN_OK);
	CU_ASSERT(wait_len_at_least("as.cork", 2));
	/* the 64 KiB cork limit, with nobody waiting or flushing */
	for (int i = 0; i < NBIG; i++)
		CU_ASSERT_EQUAL_FATAL(chan_send_async(NULL, ch, payload, sizeof payload, &big[i]),
		    CHAN_OK);
	CU_ASSERT(wait_len_at_least("as.cork", 2 + 60));	/* ~62 fill 64 KiB */
	CU_ASSERT_EQUAL(chan_op_wait(a, NULL, NULL), CHAN_OK);
	CU_ASSERT_EQUAL(chan_op_wait(b, NULL, NULL), CHAN_OK);
	for (int i = 0; i < NBIG; i++)
		ok += chan_op_wait(big[i], NULL, NULL) == CHAN_OK;
	CU_ASSERT_EQUAL(ok, NBIG);
	CU_ASSERT_EQUAL(raw_len("as.cork"), 2 + NBIG);
	CU_ASSERT_EQUAL(chan_conn_flush(NULL), CHAN_EINVAL);
	unmake(ch);
}

/* An async receive on an unbuffered channel waits on the server; a plain send meets it. */
static void
test_async_rendezvous(void)
{
	chan_t *ch = make("as.rdv", 0);
	chan_conn_t *c2 = cs_dial_grace(0);
	chan_t *ch2 = NULL;
	chan_op_t *op = NULL;
	chan_value_t v;
	bool ok = false;

	CU_ASSERT_EQUAL_FATAL(chan_open(NULL, c2, "as.rdv", &ch2), CHAN_OK);
	CU_ASSERT_EQUAL_FATAL(chan_recv_async(NULL, ch, &op), CHAN_OK);
	CU_ASSERT_EQUAL(chan_conn_flush(csuite.conn), CHAN_OK);
	CU_ASSERT_FATAL(wait_waiters("as.rdv", 0, 1));
	CU_ASSERT_EQUAL(chan_send(NULL, ch2, "hello", 5), CHAN_OK);	/* completes: it met the receive */
	CU_ASSERT_EQUAL(chan_op_wait(op, &v, &ok), CHAN_OK);
	CU_ASSERT(ok);
	CU_ASSERT(v.kind == CHAN_VALUE_BYTES && v.len == 5 && memcmp(v.data, "hello", 5) == 0);
	chan_value_clear(&v);
	CU_ASSERT(wait_waiters("as.rdv", 0, 0));

	/* the other way round: an async send waits for a plain receive */
	CU_ASSERT_EQUAL_FATAL(chan_send_async(NULL, ch, "back", 4, &op), CHAN_OK);
	CU_ASSERT_EQUAL(chan_conn_flush(csuite.conn), CHAN_OK);
	CU_ASSERT_FATAL(wait_waiters("as.rdv", 1, 0));
	CU_ASSERT_EQUAL(chan_recv(NULL, ch2, &v, &ok), CHAN_OK);
	CU_ASSERT(ok && v.len == 4 && memcmp(v.data, "back", 4) == 0);
	chan_value_clear(&v);
	CU_ASSERT_EQUAL(chan_op_wait(op, NULL, NULL), CHAN_OK);

	/* a receive blocked on the server is woken by close: ok false */
	CU_ASSERT_EQUAL_FATAL(chan_recv_async(NULL, ch, &op), CHAN_OK);
	CU_ASSERT_EQUAL(chan_conn_flush(csuite.conn), CHAN_OK);
	CU_ASSERT_FATAL(wait_waiters("as.rdv", 0, 1));
	CU_ASSERT_EQUAL(chan_close(NULL, ch2), CHAN_OK);
	ok = true;
	CU_ASSERT_EQUAL(chan_op_wait(op, &v, &ok), CHAN_OK);
	CU_ASSERT(!ok);
	CU_ASSERT_EQUAL(v.kind, CHAN_VALUE_NIL);
	/* on a closed channel: ok false at once; a send: CHAN_ECLOSED */
	CU_ASSERT_EQUAL_FATAL(chan_recv_async(NULL, ch, &op), CHAN_OK);
	ok = true;
	CU_ASSERT_EQUAL(chan_op_wait(op, &v, &ok), CHAN_OK);
	CU_ASSERT(!ok);
	CU_ASSERT_EQUAL_FATAL(chan_send_async(NULL, ch, "x", 1, &op), CHAN_OK);
	CU_ASSERT_EQUAL(chan_op_wait(op, NULL, NULL), CHAN_ECLOSED);
	chan_free(ch2);
	chan_conn_close(c2);
	unmake(ch);
}

/* The echo of test_async_deferred: pipelined like the pinger, values sent back as they came. */
struct def_echo {
	chan_t *ping, *pong;
	int rounds, rc;
};

static void *
def_echo_run(void *arg)
{
	struct def_echo *e = arg;
	chan_op_t *r = NULL, *w = NULL;
	chan_value_t v;
	int rc = chan_recv_async(NULL, e->ping, &r);

	for (int i = 0; rc == CHAN_OK && i < e->rounds; i++) {
		if ((rc = chan_op_wait(r, &v, NULL)) != CHAN_OK)
			break;
		if (i + 1 < e->rounds && (rc = chan_recv_async(NULL, e->ping, &r)) != CHAN_OK)
			break;
		if (w != NULL && (rc = chan_op_wait(w, NULL, NULL)) != CHAN_OK)
			break;
		rc = chan_send_async(NULL, e->pong, v.data, v.len, &w);
		chan_value_clear(&v);
	}
	if (rc == CHAN_OK && w != NULL)
		rc = chan_op_wait(w, NULL, NULL);
	e->rc = rc;
	return NULL;
}

/*
 * Deferred replies (PROTOCOL.md §15). A send that completed at once, its
 * result held by the server, is still fetched by chan_op_wait (WANT), well
 * before the deadline its context would end it with. Then 500 rounds of a
 * pipelined ping-pong between two connections, each side waiting for its
 * receive before its send's result (which the server holds until then):
 * every value comes back, in order.
 */
static void
test_async_deferred(void)
{
	chan_t *buf = make("as.def.buf", 4), *ping = make("as.def.ping", 0),
	    *pong = make("as.def.pong", 0);
	chan_conn_t *c2 = cs_dial_grace(0);
	struct def_echo e = { .rounds = 500 };
	struct proto_chan_info info;
	chan_ctx_t *ctx = NULL;
	chan_op_t *r, *w;
	chan_value_t v;
	pthread_t tid;
	int64_t t0;

	CU_ASSERT_EQUAL_FATAL(chan_with_timeout(&ctx, chan_background(), 30 * CHAN_SEC), CHAN_OK);
	CU_ASSERT_EQUAL_FATAL(chan_send_async(ctx, buf, "x", 1, &w), CHAN_OK);
	CU_ASSERT_EQUAL(chan_conn_flush(csuite.conn), CHAN_OK);
	t0 = chan_now();
	while (raw_info("as.def.buf", &info) == 0 && info.len == 0 && ms_since(t0) < BOUND_MS)
		pause_1ms();
	CU_ASSERT_EQUAL(info.len, 1);		/* done on the server; its OK is held */
	t0 = chan_now();
	CU_ASSERT_EQUAL(chan_op_wait(w, NULL, NULL), CHAN_OK);
	CU_ASSERT(ms_since(t0) < BOUND_MS);

	CU_ASSERT_EQUAL_FATAL(chan_open(NULL, c2, "as.def.ping", &e.ping), CHAN_OK);
	CU_ASSERT_EQUAL_FATAL(chan_open(NULL, c2, "as.def.pong", &e.pong), CHAN_OK);
	CU_ASSERT_EQUAL_FATAL(pthread_create(&tid, NULL, def_echo_run, &e), 0);
	for (int i = 0; i < e.rounds; i++) {
		char out[16];
		int n = snprintf(out, sizeof out, "%d", i);

		CU_ASSERT_EQUAL_FATAL(chan_recv_async(ctx, pong, &r), CHAN_OK);
		CU_ASSERT_EQUAL_FATAL(chan_send_async(ctx, ping, out, (size_t)n, &w), CHAN_OK);
		CU_ASSERT_EQUAL_FATAL(chan_op_wait(r, &v, NULL), CHAN_OK);
		CU_ASSERT_FATAL(v.len == (size_t)n && memcmp(v.data, out, (size_t)n) == 0);
		chan_value_clear(&v);
		CU_ASSERT_EQUAL_FATAL(chan_op_wait(w, NULL, NULL), CHAN_OK);
	}
	pthread_join(tid, NULL);
	CU_ASSERT_EQUAL(e.rc, CHAN_OK);
	chan_free(e.ping);
	chan_free(e.pong);
	chan_conn_close(c2);
	chan_ctx_free(ctx);
	unmake(buf);
	unmake(ping);
	unmake(pong);
}

/* ---- registry -------------------------------------------------------------------------- */

static void
register_suites(void)
{
	CU_pSuite s;

	s = test_suite("async", cs_suite_init, cs_suite_clean);
	test_add(s, "2000 in order, pipelined", test_order_pipelined);
	test_add(s, "cork and flush", test_cork_and_flush);
	test_add(s, "rendezvous and closed", test_async_rendezvous);
	test_add(s, "deferred replies: a held result, a pipelined ping-pong", test_async_deferred);
	register_client_async_cancel(s);

	register_client_async_io();
}

int
main(int argc, char **argv)
{
	return test_main(argc, argv, register_suites);
}
