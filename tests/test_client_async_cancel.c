/*
 * test_client_async_cancel.c: asynchronous operations that end without a
 * match, part of test_client_async: a cancel (at once, no waiter left, no
 * value swallowed), a cancel after the match that keeps the value,
 * deadlines kept by the client and carried on the wire, bad arguments and
 * a done context that sends nothing, and the connection closed in flight
 * or while corked.
 *
 * SPDX-License-Identifier: BSD-2-Clause
 */
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "clienttest.h"
#include "asynctest.h"

/* ---- helpers ----------------------------------------------------------------------- */

static bool
fd_readable(int fd, int timeout_ms)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };

	return poll(&p, 1, timeout_ms) == 1;
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

/* Adds its tests to test_client_async.c's "async" suite s, after the deferred replies. */
void
register_client_async_cancel(CU_pSuite s)
{
	test_add(s, "cancel", test_async_cancel);
	test_add(s, "cancel after match keeps the value", test_async_cancel_after_match);
	test_add(s, "deadline", test_async_deadline);
	test_add(s, "deadline travels on the wire", test_async_deadline_on_wire);
	test_add(s, "errors", test_async_errors);
	test_add(s, "done context sends nothing", test_async_done_ctx);
	test_add(s, "connection closed in flight", test_async_conn_close);
	test_add(s, "connection closed while corked", test_async_close_corked);
}
