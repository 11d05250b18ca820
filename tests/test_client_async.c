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
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1
#endif
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "clienttest.h"

#define DEADLOCK_BOUND_S 60		/* the pipelining tests' bound: a deadlock fails, not hangs */

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
static size_t
raw_len(const char *name)
{
	struct proto_chan_info i;

	return raw_info(name, &i) == 0 ? i.len : (size_t)-1;
}

static chan_t *
make_on(chan_conn_t *c, const char *name, size_t cap)
{
	chan_t *ch = NULL;

	CU_ASSERT_EQUAL_FATAL(chan_make(NULL, c, name, cap, &ch), CHAN_OK);
	return ch;
}

static chan_t *
make(const char *name, size_t cap)
{
	return make_on(csuite.conn, name, cap);
}

/* Delete a channel make() made, and free its handle. */
static void
unmake(chan_t *ch)
{
	CU_ASSERT_EQUAL(chan_delete(NULL, ch, NULL), CHAN_OK);
	chan_free(ch);
}

static bool
fd_readable(int fd, int timeout_ms)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };

	return poll(&p, 1, timeout_ms) == 1;
}

static bool
value_is_u32(const chan_value_t *v, uint32_t want)
{
	uint32_t got;

	if (v->kind != CHAN_VALUE_BYTES || v->len != sizeof got)
		return false;
	memcpy(&got, v->data, sizeof got);
	return got == want;
}

static bool
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

/* A blocked synchronous call in another thread. */
struct op_thread {
	pthread_t t;
	chan_ctx_t *ctx;
	chan_t *ch;
	int rc;
	bool ok;
	chan_value_t v;
	int64_t end;
};

static void *
recv_main(void *arg)
{
	struct op_thread *o = arg;

	o->rc = chan_recv(o->ctx, o->ch, &o->v, &o->ok);
	o->end = chan_now();
	return NULL;
}

static void
recv_start(struct op_thread *o, chan_ctx_t *ctx, chan_t *ch)
{
	memset(o, 0, sizeof *o);
	o->ctx = ctx;
	o->ch = ch;
	o->rc = 1;		/* not a CHAN_* code: "did not return" */
	CU_ASSERT_FATAL(pthread_create(&o->t, NULL, recv_main, o) == 0);
}

/* Join within BOUND_MS; false (and the thread is left) on timeout. The value stays in o->v. */
static bool
op_join(struct op_thread *o)
{
	return timed_join(o->t, BOUND_MS);
}

/* chan_op_wait in another thread. */
struct wait_thread {
	pthread_t t;
	chan_op_t *op;
	int rc;
	bool ok;
	chan_value_t v;
	int64_t end;
};

static void *
wait_main(void *arg)
{
	struct wait_thread *w = arg;

	w->rc = chan_op_wait(w->op, &w->v, &w->ok);
	w->end = chan_now();
	return NULL;
}

static void
wait_start(struct wait_thread *w, chan_op_t *op)
{
	memset(w, 0, sizeof *w);
	w->op = op;
	w->rc = 1;
	CU_ASSERT_FATAL(pthread_create(&w->t, NULL, wait_main, w) == 0);
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

/* ---- async: cancel and deadline --------------------------------------------------- */

/*
 * Cancel an async receive waiting on the server: CHAN_ECANCELED at once
 * (not after the 10 s grace), no waiter is left, and a value sent
 * afterwards is not swallowed by a ghost receive.
 */
static void
cancel_one(const char *name, bool wait_in_thread)
{
	chan_conn_t *c = cs_dial_grace(10 * CHAN_SEC);
	chan_t *ch = make_on(c, name, 1);
	chan_ctx_t *cx;
	chan_op_t *op = NULL;
	chan_value_t v;
	bool ok = true;
	int64_t t0;
	int rc;

	CU_ASSERT_EQUAL_FATAL(chan_with_cancel(&cx, NULL), CHAN_OK);
	CU_ASSERT_EQUAL_FATAL(chan_recv_async(cx, ch, &op), CHAN_OK);
	CU_ASSERT_EQUAL(chan_conn_flush(c), CHAN_OK);
	CU_ASSERT_FATAL(wait_waiters(name, 0, 1));
	if (wait_in_thread) {
		static struct wait_thread w;	/* static: see handoff */

		wait_start(&w, op);
		/* the waiting thread leads: cancel wakes it out of its read */
		t0 = chan_now();
		CU_ASSERT_EQUAL(chan_cancel(cx), CHAN_OK);
		CU_ASSERT_FATAL(timed_join(w.t, BOUND_MS));
		rc = w.rc;
		ok = w.ok;
		v = w.v;
		CU_ASSERT((w.end - t0) / CHAN_MSEC < 1000);
	} else {
		CU_ASSERT_EQUAL(chan_cancel(cx), CHAN_OK);
		t0 = chan_now();
		rc = chan_op_wait(op, &v, &ok);
		CU_ASSERT(ms_since(t0) < 1000);
	}
	CU_ASSERT_EQUAL(rc, CHAN_ECANCELED);
	CU_ASSERT(!ok);
	CU_ASSERT_EQUAL(v.kind, CHAN_VALUE_NIL);
	chan_value_clear(&v);
	CU_ASSERT(wait_waiters(name, 0, 0));
	/* nothing lost: a value sent now stays for the next receiver */
	CU_ASSERT_EQUAL(chan_send(NULL, ch, "kept", 4), CHAN_OK);
	CU_ASSERT_EQUAL(raw_len(name), 1);
	CU_ASSERT_EQUAL(chan_try_recv(NULL, ch, &v, &ok), CHAN_OK);
	CU_ASSERT(ok && v.len == 4 && memcmp(v.data, "kept", 4) == 0);
	chan_value_clear(&v);
	chan_ctx_free(cx);
	unmake(ch);
	chan_conn_close(c);
}

static void
test_async_cancel(void)
{
	cancel_one("as.cancel", false);
	cancel_one("as.cancel.t", true);
}

/* A value matched before the cancel reaches the server is returned, not lost. */
static void
test_async_cancel_after_match(void)
{
	chan_t *ch = make("as.cxmatch", 0);
	chan_conn_t *c2 = cs_dial_grace(0);
	chan_t *ch2 = NULL;
	chan_ctx_t *cx;
	chan_op_t *op = NULL;
	chan_value_t v;
	bool ok = false;

	CU_ASSERT_EQUAL_FATAL(chan_open(NULL, c2, "as.cxmatch", &ch2), CHAN_OK);
	CU_ASSERT_EQUAL_FATAL(chan_with_cancel(&cx, NULL), CHAN_OK);
	CU_ASSERT_EQUAL_FATAL(chan_recv_async(cx, ch, &op), CHAN_OK);
	CU_ASSERT_EQUAL(chan_conn_flush(csuite.conn), CHAN_OK);
	CU_ASSERT_FATAL(wait_waiters("as.cxmatch", 0, 1));
	CU_ASSERT_EQUAL(chan_send(NULL, ch2, "won", 3), CHAN_OK);	/* matched on the server */
	CU_ASSERT_EQUAL(chan_cancel(cx), CHAN_OK);			/* too late */
	CU_ASSERT_EQUAL(chan_op_wait(op, &v, &ok), CHAN_OK);
	CU_ASSERT(ok && v.len == 3 && memcmp(v.data, "won", 3) == 0);
	chan_value_clear(&v);
	chan_ctx_free(cx);
	chan_free(ch2);
	chan_conn_close(c2);
	chan_free(ch);
}

static void
test_async_deadline(void)
{
	chan_t *ch = make("as.dl", 0);
	chan_ctx_t *cx;
	chan_op_t *op = NULL;
	chan_value_t v;
	bool ok = true;
	int64_t t0 = chan_now(), took;

	CU_ASSERT_EQUAL_FATAL(chan_with_timeout(&cx, NULL, 200 * CHAN_MSEC), CHAN_OK);
	CU_ASSERT_EQUAL_FATAL(chan_recv_async(cx, ch, &op), CHAN_OK);
	CU_ASSERT_EQUAL(chan_op_wait(op, &v, &ok), CHAN_EDEADLINE);
	took = ms_since(t0);
	CU_ASSERT(took >= 199);
	CU_ASSERT(took < 2000);
	CU_ASSERT(!ok);
	CU_ASSERT_EQUAL(v.kind, CHAN_VALUE_NIL);
	chan_ctx_free(cx);
	CU_ASSERT(wait_waiters("as.dl", 0, 0));
	chan_free(ch);
}

/*
 * The budget at submission travels with the request: with a 10 s client
 * grace and nobody waiting, the server alone ends the wait on time, and a
 * late chan_op_wait finds CHAN_EDEADLINE.
 */
static void
test_async_deadline_on_wire(void)
{
	chan_conn_t *c = cs_dial_grace(10 * CHAN_SEC);
	chan_t *ch = make_on(c, "as.dlwire", 0);
	chan_ctx_t *cx;
	chan_op_t *op = NULL;
	int64_t t0 = chan_now();

	CU_ASSERT_EQUAL_FATAL(chan_with_timeout(&cx, NULL, 300 * CHAN_MSEC), CHAN_OK);
	CU_ASSERT_EQUAL_FATAL(chan_recv_async(cx, ch, &op), CHAN_OK);
	CU_ASSERT_EQUAL(chan_conn_flush(c), CHAN_OK);
	CU_ASSERT_FATAL(wait_waiters("as.dlwire", 0, 1));
	CU_ASSERT_FATAL(wait_waiters("as.dlwire", 0, 0));	/* gone without the client */
	CU_ASSERT(ms_since(t0) >= 290);
	t0 = chan_now();
	CU_ASSERT_EQUAL(chan_op_wait(op, NULL, NULL), CHAN_EDEADLINE);
	CU_ASSERT(ms_since(t0) < 1000);
	chan_ctx_free(cx);
	chan_free(ch);
	chan_conn_close(c);
}

/* ---- async: errors ------------------------------------------------------------------ */

static void
test_async_errors(void)
{
	chan_conn_info_t ci;
	chan_t *ch = make("as.err", 4);
	chan_op_t *op = NULL;
	chan_value_t v;
	bool ok = true;
	char *big;

	/* NULL arguments */
	CU_ASSERT_EQUAL(chan_send_async(NULL, NULL, "x", 1, &op), CHAN_EINVAL);
	CU_ASSERT_EQUAL(chan_send_async(NULL, ch, "x", 1, NULL), CHAN_EINVAL);
	CU_ASSERT_EQUAL(chan_send_async(NULL, ch, NULL, 1, &op), CHAN_EINVAL);
	CU_ASSERT_EQUAL(chan_recv_async(NULL, NULL, &op), CHAN_EINVAL);
	CU_ASSERT_EQUAL(chan_recv_async(NULL, ch, NULL), CHAN_EINVAL);
	CU_ASSERT_PTR_NULL(op);
	v.kind = CHAN_VALUE_BYTES;
	CU_ASSERT_EQUAL(chan_op_wait(NULL, &v, &ok), CHAN_EINVAL);
	CU_ASSERT_EQUAL(v.kind, CHAN_VALUE_NIL);
	CU_ASSERT(!ok);
	/* an empty value is a value */
	CU_ASSERT_EQUAL_FATAL(chan_send_async(NULL, ch, NULL, 0, &op), CHAN_OK);
	CU_ASSERT_EQUAL(chan_op_wait(op, NULL, NULL), CHAN_OK);
	CU_ASSERT_EQUAL(chan_recv(NULL, ch, &v, &ok), CHAN_OK);
	CU_ASSERT(ok && v.kind == CHAN_VALUE_BYTES && v.len == 0);
	chan_value_clear(&v);

	/* over max_value: refused here, nothing queued, the connection goes on */
	CU_ASSERT_EQUAL_FATAL(chan_conn_info(csuite.conn, &ci), CHAN_OK);
	big = calloc(1, ci.max_value + 1);
	CU_ASSERT_PTR_NOT_NULL_FATAL(big);
	op = NULL;
	CU_ASSERT_EQUAL(chan_send_async(NULL, ch, big, ci.max_value + 1, &op), CHAN_ELIMIT);
	CU_ASSERT_PTR_NULL(op);
	CU_ASSERT_EQUAL(chan_conn_flush(csuite.conn), CHAN_OK);
	CU_ASSERT_EQUAL(chan_ping(NULL, csuite.conn), CHAN_OK);
	CU_ASSERT_EQUAL(raw_len("as.err"), 0);
	CU_ASSERT_EQUAL_FATAL(chan_send_async(NULL, ch, big, ci.max_value, &op), CHAN_OK);
	CU_ASSERT_EQUAL(chan_op_wait(op, NULL, NULL), CHAN_OK);
	CU_ASSERT_EQUAL(raw_len("as.err"), 1);
	CU_ASSERT_EQUAL(chan_recv(NULL, ch, &v, &ok), CHAN_OK);
	CU_ASSERT(ok && v.len == ci.max_value);
	chan_value_clear(&v);
	free(big);

	/* no such channel: the server's answer, through chan_op_wait */
	{
		chan_t *ghost = NULL;

		CU_ASSERT_EQUAL_FATAL(chan_handle_new(&ghost, csuite.conn, "as.nosuch"), CHAN_OK);
		CU_ASSERT_EQUAL_FATAL(chan_recv_async(NULL, ghost, &op), CHAN_OK);
		CU_ASSERT_EQUAL(chan_op_wait(op, NULL, NULL), CHAN_ENOTFOUND);
		CU_ASSERT_EQUAL_FATAL(chan_send_async(NULL, ghost, "g", 1, &op), CHAN_OK);
		CU_ASSERT_EQUAL(chan_op_wait(op, NULL, NULL), CHAN_ENOTFOUND);
		chan_free(ghost);
	}
	unmake(ch);
}

/* A context already done at submission: its error, and nothing reaches the server. */
static void
test_async_done_ctx(void)
{
	chan_t *ch = make("as.donectx", 4);
	chan_ctx_t *cx;
	chan_op_t *op = NULL;

	CU_ASSERT_EQUAL_FATAL(chan_with_cancel(&cx, NULL), CHAN_OK);
	CU_ASSERT_EQUAL(chan_cancel(cx), CHAN_OK);
	CU_ASSERT_EQUAL(chan_send_async(cx, ch, "c", 1, &op), CHAN_ECANCELED);
	CU_ASSERT_PTR_NULL(op);
	chan_ctx_free(cx);
	CU_ASSERT_EQUAL_FATAL(chan_with_timeout(&cx, NULL, 1), CHAN_OK);
	CU_ASSERT_FATAL(fd_readable(chan_ctx_done_fd(cx), BOUND_MS));
	CU_ASSERT_EQUAL(chan_send_async(cx, ch, "d", 1, &op), CHAN_EDEADLINE);
	CU_ASSERT_PTR_NULL(op);
	CU_ASSERT_EQUAL(chan_conn_flush(csuite.conn), CHAN_OK);
	CU_ASSERT_EQUAL(chan_ping(NULL, csuite.conn), CHAN_OK);
	CU_ASSERT_EQUAL(raw_len("as.donectx"), 0);	/* no send reached the server */
	/* a receive with a done context takes nothing */
	CU_ASSERT_EQUAL(chan_send(NULL, ch, "v", 1), CHAN_OK);
	CU_ASSERT_EQUAL(chan_recv_async(cx, ch, &op), CHAN_EDEADLINE);
	CU_ASSERT_PTR_NULL(op);
	CU_ASSERT_EQUAL(chan_ping(NULL, csuite.conn), CHAN_OK);
	CU_ASSERT_EQUAL(raw_len("as.donectx"), 1);
	chan_ctx_free(cx);
	unmake(ch);
}

/*
 * chan_conn_close with operations in flight: two receives waiting on the
 * server, one of them with its chan_op_wait blocked (reading) in another
 * thread, and a send that may still be corked. Every one ends with
 * CHAN_ENOTCONN; submitting afterwards fails too.
 */
static void
test_async_conn_close(void)
{
	chan_conn_t *c = cs_dial_grace(0);
	chan_t *ch = make_on(c, "as.close", 0);
	chan_t *other = make_on(c, "as.close2", 0);	/* nobody receives: a send never completes */
	chan_op_t *waiting = NULL, *corked = NULL, *blocked = NULL, *late = NULL;
	static struct wait_thread w;	/* static: see handoff */
	chan_value_t v;
	bool ok = true;

	CU_ASSERT_EQUAL_FATAL(chan_recv_async(NULL, ch, &waiting), CHAN_OK);
	CU_ASSERT_EQUAL_FATAL(chan_recv_async(NULL, ch, &blocked), CHAN_OK);
	CU_ASSERT_EQUAL(chan_conn_flush(c), CHAN_OK);
	CU_ASSERT_FATAL(wait_waiters("as.close", 0, 2));
	wait_start(&w, blocked);
	CU_ASSERT_EQUAL_FATAL(chan_send_async(NULL, other, "c", 1, &corked), CHAN_OK);
	chan_conn_close(c);
	CU_ASSERT_FATAL(timed_join(w.t, BOUND_MS));
	CU_ASSERT_EQUAL(w.rc, CHAN_ENOTCONN);
	CU_ASSERT(!w.ok);
	CU_ASSERT_EQUAL(chan_op_wait(waiting, &v, &ok), CHAN_ENOTCONN);
	CU_ASSERT(!ok);
	CU_ASSERT_EQUAL(v.kind, CHAN_VALUE_NIL);
	CU_ASSERT_EQUAL(chan_op_wait(corked, NULL, NULL), CHAN_ENOTCONN);
	CU_ASSERT_EQUAL(chan_send_async(NULL, ch, "l", 1, &late), CHAN_ENOTCONN);
	CU_ASSERT_PTR_NULL(late);
	CU_ASSERT_EQUAL(chan_recv_async(NULL, ch, &late), CHAN_ENOTCONN);
	CU_ASSERT_PTR_NULL(late);
	CU_ASSERT_EQUAL(chan_conn_flush(chan_conn(ch)), CHAN_ENOTCONN);
	/* the server dropped the waiters with the connection */
	CU_ASSERT(wait_waiters("as.close", 0, 0));
	CU_ASSERT(wait_waiters("as.close2", 0, 0));
	chan_free(ch);
	chan_free(other);
}

/* Requests still corked when the connection closes: never sent, CHAN_ENOTCONN. */
static void
test_async_close_corked(void)
{
	chan_conn_t *c = cs_dial_grace(0);
	chan_t *ch = make_on(c, "as.corkclose", 4);
	chan_op_t *s = NULL, *r = NULL;
	chan_value_t v;
	bool ok = true;

	CU_ASSERT_EQUAL_FATAL(chan_send_async(NULL, ch, "s", 1, &s), CHAN_OK);
	CU_ASSERT_EQUAL_FATAL(chan_recv_async(NULL, ch, &r), CHAN_OK);
	chan_conn_close(c);
	CU_ASSERT_EQUAL(chan_op_wait(s, NULL, NULL), CHAN_ENOTCONN);
	CU_ASSERT_EQUAL(chan_op_wait(r, &v, &ok), CHAN_ENOTCONN);
	CU_ASSERT(!ok);
	CU_ASSERT_EQUAL(v.kind, CHAN_VALUE_NIL);
	CU_ASSERT_EQUAL(raw_len("as.corkclose"), 0);	/* the send never left */
	chan_free(ch);
}

/* ---- pipelining past the socket buffers (output_hwm) ------------------------------- */

enum { PIPE_N = 20000, PIPE_VAL = 1024 };

struct pipe_job {
	chan_t *ch;
	bool with_recv;			/* interleave a receive after each send */
	chan_op_t **sends, **recvs;
	unsigned submitted, sent_ok, recv_ok, in_order;
	int first_err;
};

/* Submit everything first, waiting for nothing, then wait for all of it. */
static void *
pipe_main(void *arg)
{
	struct pipe_job *j = arg;
	uint8_t val[PIPE_VAL];
	unsigned i;
	int rc;

	memset(val, 0xa5, sizeof val);
	for (i = 0; i < PIPE_N; i++) {
		memcpy(val, &i, sizeof i);
		if ((rc = chan_send_async(NULL, j->ch, val, sizeof val, &j->sends[i])) != 0)
			break;
		if (j->with_recv && (rc = chan_recv_async(NULL, j->ch, &j->recvs[i])) != 0) {
			chan_op_wait(j->sends[i], NULL, NULL);
			break;
		}
		__atomic_add_fetch(&j->submitted, 1, __ATOMIC_RELAXED);
	}
	if (i < PIPE_N)
		j->first_err = rc;
	for (i = 0; i < j->submitted; i++) {
		chan_value_t v;
		bool ok = false;
		uint32_t got;

		if ((rc = chan_op_wait(j->sends[i], NULL, NULL)) == 0)
			j->sent_ok++;
		else if (j->first_err == 0)
			j->first_err = rc;
		if (!j->with_recv)
			continue;
		if ((rc = chan_op_wait(j->recvs[i], &v, &ok)) == 0 && ok)
			j->recv_ok++;
		else if (j->first_err == 0)
			j->first_err = rc;
		if (v.kind == CHAN_VALUE_BYTES && v.len == PIPE_VAL) {
			memcpy(&got, v.data, sizeof got);
			j->in_order += got == i;
		}
		chan_value_clear(&v);
	}
	return NULL;
}

static int
suite_init_hwm(void)
{
	return cs_up("output_hwm = 4096\nlog_level = info\n", true);
}

static void
run_pipe(const char *name, size_t cap, bool with_recv)
{
	chan_t *ch = make(name, cap);
	/* on the heap: after a timeout the thread may still use it (then it is left) */
	struct pipe_job *j = calloc(1, sizeof *j);
	pthread_t t;

	CU_ASSERT_PTR_NOT_NULL_FATAL(j);
	j->ch = ch;
	j->with_recv = with_recv;
	j->sends = calloc(PIPE_N, sizeof *j->sends);
	j->recvs = calloc(PIPE_N, sizeof *j->recvs);
	CU_ASSERT_FATAL(j->sends != NULL && j->recvs != NULL);
	CU_ASSERT_FATAL(pthread_create(&t, NULL, pipe_main, j) == 0);
	if (!timed_join(t, DEADLOCK_BOUND_S * 1000)) {
		fprintf(stderr, "%s: no progress in %d s: submitted=%u (deadlock?)\n", name,
		    DEADLOCK_BOUND_S, __atomic_load_n(&j->submitted, __ATOMIC_RELAXED));
		CU_FAIL_FATAL("the pipelining client deadlocked with the server");
	}
	CU_ASSERT_EQUAL(j->first_err, 0);
	CU_ASSERT_EQUAL(j->submitted, PIPE_N);
	CU_ASSERT_EQUAL(j->sent_ok, PIPE_N);
	if (with_recv) {
		CU_ASSERT_EQUAL(j->recv_ok, PIPE_N);
		CU_ASSERT_EQUAL(j->in_order, PIPE_N);
		CU_ASSERT_EQUAL(raw_len(name), 0);
	} else {
		CU_ASSERT_EQUAL(raw_len(name), PIPE_N);
	}
	CU_ASSERT_EQUAL(chan_ping(NULL, csuite.conn), CHAN_OK);
	free(j->sends);
	free(j->recvs);
	free(j);
	unmake(ch);
}

/*
 * 20,000 sends of 1 KiB (20 MiB) in flight at once onto a channel that
 * holds them all: far more than the socket buffers, so the writer blocks
 * again and again. (Their replies are small: the server need not pause;
 * test_pipe_both_ways makes it.)
 */
static void
test_pipe_sends(void)
{
	run_pipe("pipe.sends", PIPE_N, false);
}

/*
 * A send and a receive of 1 KiB each, 20,000 times, all in flight: the
 * replies carry the values, so they outgrow the socket buffers and the
 * server pauses reading this client (the log says so) while the client
 * is still writing. The client must read while it writes, or both wait.
 */
static void
test_pipe_both_ways(void)
{
	run_pipe("pipe.both", 16, true);
	CU_ASSERT(test_server_log_has(&csuite.srv, "action=pause-reading"));
}

/* ---- the read token: leader / follower -------------------------------------------- */

/*
 * On one connection, A blocks first (so it reads: it leads) and B second
 * (it follows). Whichever value arrives first, both calls must return: the
 * leader hands B its reply, or, done itself, passes the token to B.
 */
static void
handoff(bool leader_first)
{
	chan_t *a = make("lf.a", 0), *b = make("lf.b", 0);
	chan_conn_t *c2 = cs_dial_grace(0);
	chan_t *a2 = NULL, *b2 = NULL;
	static struct op_thread ta, tb;	/* static: a thread left after a timeout may still write */
	uint32_t va = 1, vb = 2;

	CU_ASSERT_EQUAL_FATAL(chan_open(NULL, c2, "lf.a", &a2), CHAN_OK);
	CU_ASSERT_EQUAL_FATAL(chan_open(NULL, c2, "lf.b", &b2), CHAN_OK);
	recv_start(&ta, NULL, a);
	CU_ASSERT_FATAL(wait_waiters("lf.a", 0, 1));
	recv_start(&tb, NULL, b);
	CU_ASSERT_FATAL(wait_waiters("lf.b", 0, 1));
	if (leader_first) {
		CU_ASSERT_EQUAL(chan_send(NULL, a2, &va, sizeof va), CHAN_OK);
		CU_ASSERT_FATAL(op_join(&ta));
		CU_ASSERT_EQUAL(chan_send(NULL, b2, &vb, sizeof vb), CHAN_OK);
		CU_ASSERT_FATAL(op_join(&tb));	/* the token passed to B */
	} else {
		CU_ASSERT_EQUAL(chan_send(NULL, b2, &vb, sizeof vb), CHAN_OK);
		CU_ASSERT_FATAL(op_join(&tb));	/* the leader read B's reply for it */
		CU_ASSERT_EQUAL(chan_send(NULL, a2, &va, sizeof va), CHAN_OK);
		CU_ASSERT_FATAL(op_join(&ta));
	}
	CU_ASSERT_EQUAL(ta.rc, CHAN_OK);
	CU_ASSERT(ta.ok && value_is_u32(&ta.v, va));
	CU_ASSERT_EQUAL(tb.rc, CHAN_OK);
	CU_ASSERT(tb.ok && value_is_u32(&tb.v, vb));
	chan_value_clear(&ta.v);
	chan_value_clear(&tb.v);
	CU_ASSERT_EQUAL(chan_ping(NULL, csuite.conn), CHAN_OK);	/* and the token is free again */
	chan_free(a2);
	chan_free(b2);
	chan_conn_close(c2);
	unmake(a);
	unmake(b);
}

static void
test_handoff_leader_first(void)
{
	handoff(true);
}

static void
test_handoff_follower_first(void)
{
	handoff(false);
}

/*
 * The leader leaves without a reply of its own (its context ends): the
 * follower must take over reading, or its value would never be read.
 */
static void
leader_leaves(bool cancel)
{
	chan_t *a = make("lf.la", 0), *b = make("lf.lb", 0);
	chan_conn_t *c2 = cs_dial_grace(0);
	chan_t *b2 = NULL;
	chan_ctx_t *cx;
	static struct op_thread ta, tb;	/* static: a thread left after a timeout may still write */
	uint32_t vb = 7;

	CU_ASSERT_EQUAL_FATAL(chan_open(NULL, c2, "lf.lb", &b2), CHAN_OK);
	if (cancel) {
		CU_ASSERT_EQUAL_FATAL(chan_with_cancel(&cx, NULL), CHAN_OK);
	} else {
		CU_ASSERT_EQUAL_FATAL(chan_with_timeout(&cx, NULL, 300 * CHAN_MSEC), CHAN_OK);
	}
	recv_start(&ta, cx, a);
	CU_ASSERT_FATAL(wait_waiters("lf.la", 0, 1));
	recv_start(&tb, NULL, b);
	CU_ASSERT_FATAL(wait_waiters("lf.lb", 0, 1));
	if (cancel) {
		CU_ASSERT_EQUAL(chan_cancel(cx), CHAN_OK);
	}
	CU_ASSERT_FATAL(op_join(&ta));
	CU_ASSERT_EQUAL(ta.rc, cancel ? CHAN_ECANCELED : CHAN_EDEADLINE);
	CU_ASSERT(wait_waiters("lf.la", 0, 0));
	CU_ASSERT_EQUAL(chan_send(NULL, b2, &vb, sizeof vb), CHAN_OK);
	CU_ASSERT_FATAL(op_join(&tb));
	CU_ASSERT_EQUAL(tb.rc, CHAN_OK);
	CU_ASSERT(tb.ok && value_is_u32(&tb.v, vb));
	chan_value_clear(&tb.v);
	chan_ctx_free(cx);
	chan_free(b2);
	chan_conn_close(c2);
	unmake(a);
	unmake(b);
}

static void
test_leader_cancelled(void)
{
	leader_leaves(true);
}

static void
test_leader_deadline(void)
{
	leader_leaves(false);
}

/* While A blocks (and reads), 1,000 pings on its connection get their replies through it. */
static void
test_pings_while_leading(void)
{
	enum { PINGS = 1000 };
	chan_t *a = make("lf.ping", 0);
	chan_conn_t *c2 = cs_dial_grace(0);
	chan_t *a2 = NULL;
	static struct op_thread ta;	/* static: see handoff */
	unsigned pinged = 0;
	uint32_t va = 42;
	int64_t t0;

	CU_ASSERT_EQUAL_FATAL(chan_open(NULL, c2, "lf.ping", &a2), CHAN_OK);
	recv_start(&ta, NULL, a);
	CU_ASSERT_FATAL(wait_waiters("lf.ping", 0, 1));
	t0 = chan_now();
	for (int i = 0; i < PINGS && ms_since(t0) < BOUND_MS; i++)
		pinged += chan_ping(NULL, csuite.conn) == CHAN_OK;
	CU_ASSERT_EQUAL(pinged, PINGS);
	CU_ASSERT(ms_since(t0) < BOUND_MS);
	CU_ASSERT_EQUAL(ta.rc, 1);		/* A still waits */
	CU_ASSERT_EQUAL(chan_send(NULL, a2, &va, sizeof va), CHAN_OK);
	CU_ASSERT_FATAL(op_join(&ta));
	CU_ASSERT_EQUAL(ta.rc, CHAN_OK);
	CU_ASSERT(ta.ok && value_is_u32(&ta.v, va));
	chan_value_clear(&ta.v);
	chan_free(a2);
	chan_conn_close(c2);
	chan_free(a);
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
	test_add(s, "cancel", test_async_cancel);
	test_add(s, "cancel after match keeps the value", test_async_cancel_after_match);
	test_add(s, "deadline", test_async_deadline);
	test_add(s, "deadline travels on the wire", test_async_deadline_on_wire);
	test_add(s, "errors", test_async_errors);
	test_add(s, "done context sends nothing", test_async_done_ctx);
	test_add(s, "connection closed in flight", test_async_conn_close);
	test_add(s, "connection closed while corked", test_async_close_corked);

	/* a server each: the pause in the log must be the test's own */
	s = test_suite("pipeline sends", suite_init_hwm, cs_suite_clean);
	test_add(s, "20000 sends past the socket buffers", test_pipe_sends);
	s = test_suite("pipeline both ways", suite_init_hwm, cs_suite_clean);
	test_add(s, "20000 sends and receives, server pauses", test_pipe_both_ways);

	s = test_suite("read token", cs_suite_init, cs_suite_clean);
	test_add(s, "handoff: leader's reply first", test_handoff_leader_first);
	test_add(s, "handoff: follower's reply first", test_handoff_follower_first);
	test_add(s, "leader cancelled, follower reads", test_leader_cancelled);
	test_add(s, "leader's deadline, follower reads", test_leader_deadline);
	test_add(s, "1000 pings while another call leads", test_pings_while_leading);
}

int
main(int argc, char **argv)
{
	return test_main(argc, argv, register_suites);
}
