/*
 * test_client.c: libchanclient against a real chand ($CHAND).
 *
 * Every public function with its error paths; many threads sharing one
 * connection; cancellation and deadlines as seen from a second connection;
 * the server killed or stopped in the middle of a call. Waiting is always on
 * a condition (a thread's result, INFO showing a waiter) with a generous
 * upper bound, never a bare sleep.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1
#endif
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "clienttest.h"


/* ---- helpers ----------------------------------------------------------------------- */

static int
suite_init_noconn(void)
{
	return cs_up(NULL, false);
}

static chan_t *
make(const char *name, size_t cap)
{
	chan_t *ch = NULL;

	CU_ASSERT_EQUAL_FATAL(chan_make(NULL, csuite.conn, name, cap, &ch), CHAN_OK);
	return ch;
}

/* A blocked call in another thread. */
struct op_thread {
	pthread_t t;
	chan_ctx_t *ctx;
	chan_t *ch;
	enum { OP_T_RECV, OP_T_SEND, OP_T_SELECT } kind;
	int rc;
	bool ok;
	chan_value_t v;
	int64_t end;
};

static void *
op_main(void *arg)
{
	struct op_thread *o = arg;
	chan_case_t cs[2] = { { .dir = CHAN_DIR_RECV, .ch = o->ch }, { .dir = CHAN_DIR_RECV } };

	switch (o->kind) {
	case OP_T_RECV:
		o->rc = chan_recv(o->ctx, o->ch, &o->v, &o->ok);
		break;
	case OP_T_SEND:
		o->rc = chan_send(o->ctx, o->ch, "x", 1);
		break;
	case OP_T_SELECT:
		o->rc = chan_select(o->ctx, cs, 2, false);
		o->v = cs[0].value;	/* cleared by op_join */
		o->ok = cs[0].ok;
		break;
	}
	o->end = chan_now();
	return NULL;
}

static void
op_start(struct op_thread *o, int kind, chan_ctx_t *ctx, chan_t *ch)
{
	memset(o, 0, sizeof *o);
	o->kind = kind;
	o->ctx = ctx;
	o->ch = ch;
	CU_ASSERT_FATAL(pthread_create(&o->t, NULL, op_main, o) == 0);
}

/* Join within BOUND_MS; false (and the thread is left) on timeout. */
static bool
op_join(struct op_thread *o)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += BOUND_MS / 1000;
	if (pthread_timedjoin_np(o->t, NULL, &ts) != 0)
		return false;
	chan_value_clear(&o->v);
	return true;
}

/* ---- errors -------------------------------------------------------------------------- */

static void
test_strerror(void)
{
	static const int codes[] = {
		CHAN_ECLOSED, CHAN_EDEADLINE, CHAN_ECANCELED, CHAN_ENOTFOUND, CHAN_EEXISTS,
		CHAN_EPERM, CHAN_EBADREQ, CHAN_ELIMIT, CHAN_EPROTO, CHAN_ESHUTDOWN,
		CHAN_EWOULDBLOCK, CHAN_ECONNLOST, CHAN_ENOTCONN, CHAN_ECONNECT, CHAN_ENOTSUP,
		CHAN_EINVAL, CHAN_ENOMEM, CHAN_EUNKNOWN,
	};
	size_t n = sizeof codes / sizeof codes[0];

	for (size_t i = 0; i < n; i++) {
		CU_ASSERT(codes[i] <= CHAN_EBASE);
		CU_ASSERT_PTR_NOT_NULL(chan_strerror(codes[i]));
		CU_ASSERT_STRING_NOT_EQUAL(chan_strerror(codes[i]), "unknown error");
		for (size_t j = 0; j < i; j++)
			CU_ASSERT_STRING_NOT_EQUAL(chan_strerror(codes[i]), chan_strerror(codes[j]));
	}
	CU_ASSERT_STRING_EQUAL(chan_strerror(12345), "unknown error");
	CU_ASSERT_STRING_EQUAL(chan_strerror(-99999), "unknown error");
	CU_ASSERT_STRING_EQUAL(chan_strerror(CHAN_EBASE), "unknown error");
	CU_ASSERT_PTR_NOT_NULL(chan_strerror(CHAN_OK));
	CU_ASSERT_PTR_NOT_NULL(chan_strerror(CHAN_DEFAULT));
}

/* ---- contexts ------------------------------------------------------------------------- */

static bool
fd_readable(int fd, int timeout_ms)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };

	return poll(&p, 1, timeout_ms) == 1 && (p.revents & POLLIN);
}

static void
test_ctx_background(void)
{
	chan_ctx_t *bg = chan_background();
	int64_t d = 42;
	int fd;

	CU_ASSERT_PTR_NOT_NULL(bg);
	CU_ASSERT_PTR_EQUAL(bg, chan_background());
	CU_ASSERT_EQUAL(chan_ctx_err(bg), 0);
	CU_ASSERT_EQUAL(chan_ctx_err(NULL), 0);
	CU_ASSERT_FALSE(chan_ctx_deadline(bg, &d));
	CU_ASSERT_EQUAL(d, 42);
	CU_ASSERT_EQUAL(chan_cancel(bg), CHAN_EINVAL);
	CU_ASSERT_EQUAL(chan_cancel(NULL), CHAN_EINVAL);
	CU_ASSERT_PTR_NULL(chan_ctx_value(bg, &d));
	fd = chan_ctx_done_fd(bg);
	CU_ASSERT(fd >= 0);
	CU_ASSERT_FALSE(fd_readable(fd, 0));
	chan_ctx_free(bg);		/* no-op */
	chan_ctx_free(NULL);
	CU_ASSERT_EQUAL(chan_ctx_err(bg), 0);
	CU_ASSERT_EQUAL(chan_with_cancel(NULL, NULL), CHAN_EINVAL);
}

static void
test_ctx_cancel_tree(void)
{
	chan_ctx_t *p, *c1, *c2, *gc, *late;
	int fd;

	CU_ASSERT_EQUAL_FATAL(chan_with_cancel(&p, NULL), CHAN_OK);
	CU_ASSERT_EQUAL_FATAL(chan_with_cancel(&c1, p), CHAN_OK);
	CU_ASSERT_EQUAL_FATAL(chan_with_cancel(&c2, p), CHAN_OK);
	CU_ASSERT_EQUAL_FATAL(chan_with_cancel(&gc, c1), CHAN_OK);
	fd = chan_ctx_done_fd(gc);
	CU_ASSERT_FALSE(fd_readable(fd, 0));
	/* cancelling a child leaves its parent and sibling alone */
	CU_ASSERT_EQUAL(chan_cancel(c2), CHAN_OK);
	CU_ASSERT_EQUAL(chan_ctx_err(c2), CHAN_ECANCELED);
	CU_ASSERT_EQUAL(chan_ctx_err(p), 0);
	CU_ASSERT_EQUAL(chan_ctx_err(c1), 0);
	/* the parent takes every descendant with it */
	CU_ASSERT_EQUAL(chan_cancel(p), CHAN_OK);
	CU_ASSERT_EQUAL(chan_ctx_err(p), CHAN_ECANCELED);
	CU_ASSERT_EQUAL(chan_ctx_err(c1), CHAN_ECANCELED);
	CU_ASSERT_EQUAL(chan_ctx_err(gc), CHAN_ECANCELED);
	CU_ASSERT(fd_readable(fd, 0));
	CU_ASSERT_EQUAL(chan_cancel(p), CHAN_OK);	/* idempotent */
	/* a child of a done parent is born done, its fd readable */
	CU_ASSERT_EQUAL_FATAL(chan_with_cancel(&late, p), CHAN_OK);
	CU_ASSERT_EQUAL(chan_ctx_err(late), CHAN_ECANCELED);
	CU_ASSERT(fd_readable(chan_ctx_done_fd(late), 0));
	/* free in any order: children hold their parents */
	chan_ctx_free(p);
	chan_ctx_free(c1);
	chan_ctx_free(late);
	chan_ctx_free(c2);
	chan_ctx_free(gc);
}

static void
test_ctx_timeout_fires(void)
{
	chan_ctx_t *t, *child;
	int64_t t0 = chan_now(), d = 0;

	CU_ASSERT_EQUAL_FATAL(chan_with_timeout(&t, NULL, 50 * CHAN_MSEC), CHAN_OK);
	CU_ASSERT_EQUAL_FATAL(chan_with_cancel(&child, t), CHAN_OK);
	CU_ASSERT(chan_ctx_deadline(t, &d));
	CU_ASSERT(d >= t0 + 50 * CHAN_MSEC && d <= chan_now() + 50 * CHAN_MSEC);
	CU_ASSERT(chan_ctx_deadline(child, &d));
	/* nobody calls anything: the fd still becomes readable on time */
	CU_ASSERT_FATAL(fd_readable(chan_ctx_done_fd(child), BOUND_MS));
	CU_ASSERT(ms_since(t0) >= 49);
	CU_ASSERT(ms_since(t0) < 1000);
	CU_ASSERT_EQUAL(chan_ctx_err(t), CHAN_EDEADLINE);
	CU_ASSERT_EQUAL(chan_ctx_err(child), CHAN_EDEADLINE);
	CU_ASSERT_EQUAL(chan_cancel(t), CHAN_OK);
	CU_ASSERT_EQUAL(chan_ctx_err(t), CHAN_EDEADLINE);	/* the first reason sticks */
	chan_ctx_free(child);
	chan_ctx_free(t);
}

static void
test_ctx_deadline_min(void)
{
	chan_ctx_t *p, *later, *sooner, *past;
	int64_t now = chan_now(), d;

	CU_ASSERT_EQUAL_FATAL(chan_with_deadline(&p, NULL, now + 10 * CHAN_SEC), CHAN_OK);
	CU_ASSERT_EQUAL_FATAL(chan_with_deadline(&later, p, now + 100 * CHAN_SEC), CHAN_OK);
	CU_ASSERT_EQUAL_FATAL(chan_with_deadline(&sooner, p, now + 5 * CHAN_SEC), CHAN_OK);
	CU_ASSERT(chan_ctx_deadline(later, &d) && d == now + 10 * CHAN_SEC);
	CU_ASSERT(chan_ctx_deadline(sooner, &d) && d == now + 5 * CHAN_SEC);
	/* cancelling the sooner child leaves the parent alone */
	CU_ASSERT_EQUAL(chan_cancel(sooner), CHAN_OK);
	CU_ASSERT_EQUAL(chan_ctx_err(p), 0);
	/* already past: done at once, before any timer */
	CU_ASSERT_EQUAL_FATAL(chan_with_deadline(&past, p, now - CHAN_SEC), CHAN_OK);
	CU_ASSERT_EQUAL(chan_ctx_err(past), CHAN_EDEADLINE);
	CU_ASSERT(fd_readable(chan_ctx_done_fd(past), 0));
	chan_ctx_free(past);
	chan_ctx_free(sooner);
	chan_ctx_free(later);
	chan_ctx_free(p);
}

static void
test_ctx_values(void)
{
	static int k1, k2, k3;
	int v1 = 1, v2 = 2, v1b = 11;
	chan_ctx_t *a, *b, *c, *cc;

	CU_ASSERT_EQUAL(chan_with_value(&a, NULL, NULL, &v1), CHAN_EINVAL);
	CU_ASSERT_EQUAL_FATAL(chan_with_value(&a, NULL, &k1, &v1), CHAN_OK);
	CU_ASSERT_EQUAL_FATAL(chan_with_cancel(&cc, a), CHAN_OK);
	CU_ASSERT_EQUAL_FATAL(chan_with_value(&b, cc, &k2, &v2), CHAN_OK);
	CU_ASSERT_EQUAL_FATAL(chan_with_value(&c, b, &k1, &v1b), CHAN_OK);
	CU_ASSERT_PTR_EQUAL(chan_ctx_value(b, &k1), &v1);
	CU_ASSERT_PTR_EQUAL(chan_ctx_value(b, &k2), &v2);
	CU_ASSERT_PTR_EQUAL(chan_ctx_value(c, &k1), &v1b);	/* the nearest wins */
	CU_ASSERT_PTR_NULL(chan_ctx_value(c, &k3));
	CU_ASSERT_PTR_NULL(chan_ctx_value(a, &k2));
	CU_ASSERT_EQUAL(chan_cancel(b), CHAN_EINVAL);		/* values are not cancellable */
	chan_ctx_free(a);	/* still held by cc */
	CU_ASSERT_PTR_EQUAL(chan_ctx_value(c, &k1), &v1b);
	CU_ASSERT_PTR_EQUAL(chan_ctx_value(b, &k1), &v1);
	/* but a value context is done with its parent */
	CU_ASSERT_EQUAL(chan_cancel(cc), CHAN_OK);
	CU_ASSERT_EQUAL(chan_ctx_err(c), CHAN_ECANCELED);
	CU_ASSERT_EQUAL(chan_ctx_err(a), 0);
	chan_ctx_free(c);
	chan_ctx_free(b);
	chan_ctx_free(cc);
}

/* ---- dialing ---------------------------------------------------------------------------- */

static int
closed_port(void)
{
	struct sockaddr_in sa = { .sin_family = AF_INET };
	socklen_t sl = sizeof sa;
	int fd = socket(AF_INET, SOCK_STREAM, 0), port;

	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	bind(fd, (struct sockaddr *)&sa, sizeof sa);
	getsockname(fd, (struct sockaddr *)&sa, &sl);
	port = ntohs(sa.sin_port);
	close(fd);		/* bound, never listened: connecting is refused */
	return port;
}

static void
test_dial_errors(void)
{
	static const char *const bad[] = {
		"foo", "tcp://", "tcp://127.0.0.1", "tcp://:80", "tcp://127.0.0.1:",
		"tcp://[::1", "tcp://[::1]80", "unix:", "http://x:1",
	};
	chan_conn_t *c = (chan_conn_t *)1;
	chan_ctx_t *cx;
	char a[96];

	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
		CU_ASSERT_EQUAL(chan_dial(NULL, bad[i], NULL, &c), CHAN_EINVAL);
	CU_ASSERT_EQUAL(chan_dial(NULL, NULL, NULL, &c), CHAN_EINVAL);
	CU_ASSERT_EQUAL(chan_dial(NULL, csuite.addr, NULL, NULL), CHAN_EINVAL);
	CU_ASSERT_PTR_EQUAL(c, (chan_conn_t *)1);	/* untouched on failure */
	CU_ASSERT_EQUAL(chan_dial(NULL, "tls://127.0.0.1:1", NULL, &c), CHAN_ECONNECT);	/* nothing listens */
	CU_ASSERT_EQUAL(chan_dial(NULL, "unix:/nonexistent/chand.sock", NULL, &c), CHAN_ECONNECT);
	snprintf(a, sizeof a, "tcp://127.0.0.1:%d", closed_port());
	CU_ASSERT_EQUAL(chan_dial(NULL, a, NULL, &c), CHAN_ECONNECT);
	/* a done context fails before connecting */
	CU_ASSERT_EQUAL_FATAL(chan_with_cancel(&cx, NULL), CHAN_OK);
	chan_cancel(cx);
	CU_ASSERT_EQUAL(chan_dial(cx, csuite.addr, NULL, &c), CHAN_ECANCELED);
	chan_ctx_free(cx);
	CU_ASSERT_EQUAL_FATAL(chan_with_timeout(&cx, NULL, 0), CHAN_OK);
	CU_ASSERT_EQUAL(chan_dial(cx, csuite.addr, NULL, &c), CHAN_EDEADLINE);
	chan_ctx_free(cx);
	CU_ASSERT_PTR_EQUAL(c, (chan_conn_t *)1);
}

static void
test_dial_ok(void)
{
	chan_dial_opts_t o = { .client_name = "test_client" };
	chan_conn_info_t info;
	chan_conn_t *c;
	chan_ctx_t *cx;
	char a[96];

	CU_ASSERT_EQUAL_FATAL(chan_with_timeout(&cx, NULL, 5 * CHAN_SEC), CHAN_OK);
	CU_ASSERT_EQUAL_FATAL(chan_dial(cx, csuite.addr, &o, &c), CHAN_OK);
	CU_ASSERT_EQUAL(chan_conn_info(c, &info), CHAN_OK);
	CU_ASSERT_EQUAL(info.version, 1);
	CU_ASSERT_NSTRING_EQUAL(info.server, "chand", 5);
	CU_ASSERT(info.max_frame > 0 && info.max_value > 0 && info.max_pending > 0 &&
	    info.max_select_cases > 0);
	CU_ASSERT_EQUAL(chan_conn_info(NULL, &info), CHAN_EINVAL);
	CU_ASSERT_EQUAL(chan_conn_info(c, NULL), CHAN_EINVAL);
	CU_ASSERT_EQUAL(chan_ping(cx, c), CHAN_OK);
	CU_ASSERT_EQUAL(chan_ping(NULL, NULL), CHAN_EINVAL);
	chan_conn_close(c);
	chan_ctx_free(cx);
	chan_conn_close(NULL);
	/* a host name resolves */
	snprintf(a, sizeof a, "tcp://localhost:%d", csuite.srv.port);
	if (chan_dial(NULL, a, NULL, &c) == CHAN_OK) {
		CU_ASSERT_EQUAL(chan_ping(NULL, c), CHAN_OK);
		chan_conn_close(c);
	}
}

static void
test_conn_close_then_use(void)
{
	chan_conn_t *c = cs_dial_grace(0);
	chan_t *ch = NULL, *h = NULL;
	size_t n;

	CU_ASSERT_EQUAL_FATAL(chan_make(NULL, c, "closeuse", 1, &ch), CHAN_OK);
	CU_ASSERT_EQUAL_FATAL(chan_handle_new(&h, c, "closeuse"), CHAN_OK);
	chan_conn_close(c);
	/* the handles outlive the connection; calls fail cleanly */
	CU_ASSERT_EQUAL(chan_len(NULL, ch, &n), CHAN_ENOTCONN);
	CU_ASSERT_EQUAL(chan_send(NULL, h, "x", 1), CHAN_ENOTCONN);
	CU_ASSERT_STRING_EQUAL(chan_name(h), "closeuse");
	chan_free(ch);
	chan_free(h);
}

static void
test_conn_close_wakes(void)
{
	chan_conn_t *c = cs_dial_grace(0);
	chan_t *ch = NULL;
	struct op_thread o;

	CU_ASSERT_EQUAL_FATAL(chan_make(NULL, c, "closewake", 0, &ch), CHAN_OK);
	op_start(&o, OP_T_RECV, NULL, ch);
	CU_ASSERT_FATAL(wait_waiters("closewake", 0, 1));
	chan_conn_close(c);
	CU_ASSERT_FATAL(op_join(&o));
	CU_ASSERT_EQUAL(o.rc, CHAN_ENOTCONN);
	/* the server drops the waiter with the connection */
	CU_ASSERT(wait_waiters("closewake", 0, 0));
	chan_free(ch);
}

/* ---- channels -------------------------------------------------------------------------- */

static void
test_make_open(void)
{
	chan_t *a, *b = NULL, *anon;
	chan_info_t info;
	size_t n = 99;

	a = make("mk.a", 3);
	CU_ASSERT_STRING_EQUAL(chan_name(a), "mk.a");
	CU_ASSERT_PTR_EQUAL(chan_conn(a), csuite.conn);
	/* same cap: opens; other cap: EXISTS */
	CU_ASSERT_EQUAL(chan_make(NULL, csuite.conn, "mk.a", 3, &b), CHAN_OK);
	chan_free(b);
	b = NULL;
	CU_ASSERT_EQUAL(chan_make(NULL, csuite.conn, "mk.a", 4, &b), CHAN_EEXISTS);
	CU_ASSERT_PTR_NULL(b);
	CU_ASSERT_EQUAL(chan_make(NULL, csuite.conn, "", 0, &b), CHAN_EBADREQ);
	CU_ASSERT_EQUAL(chan_make(NULL, csuite.conn, "bad\001name", 0, &b), CHAN_EBADREQ);
	CU_ASSERT_EQUAL(chan_make(NULL, csuite.conn, "~reserved", 0, &b), CHAN_EBADREQ);
	CU_ASSERT_EQUAL(chan_make(NULL, csuite.conn, "mk.huge", (size_t)1 << 40, &b), CHAN_ELIMIT);
	CU_ASSERT_EQUAL(chan_make(NULL, NULL, "x", 0, &b), CHAN_EINVAL);
	CU_ASSERT_EQUAL(chan_make(NULL, csuite.conn, "x", 0, NULL), CHAN_EINVAL);
	CU_ASSERT_PTR_NULL(b);
	/* open */
	CU_ASSERT_EQUAL(chan_open(NULL, csuite.conn, "mk.a", &b), CHAN_OK);
	CU_ASSERT_EQUAL(chan_cap(NULL, b, &n), CHAN_OK);
	CU_ASSERT_EQUAL(n, 3);
	chan_free(b);
	b = NULL;
	CU_ASSERT_EQUAL(chan_open(NULL, csuite.conn, "mk.none", &b), CHAN_ENOTFOUND);
	CU_ASSERT_EQUAL(chan_open(NULL, csuite.conn, NULL, &b), CHAN_EINVAL);
	CU_ASSERT_PTR_NULL(b);
	/* anonymous */
	anon = make(NULL, 2);
	CU_ASSERT_EQUAL(chan_name(anon)[0], '~');
	CU_ASSERT_EQUAL(chan_info(NULL, anon, &info), CHAN_OK);
	CU_ASSERT(info.anonymous);
	CU_ASSERT_EQUAL(info.cap, 2);
	CU_ASSERT_STRING_EQUAL(info.name, chan_name(anon));
	CU_ASSERT_EQUAL(chan_info(NULL, anon, NULL), CHAN_EINVAL);
	CU_ASSERT_EQUAL(chan_open(NULL, csuite.conn, chan_name(anon), &b), CHAN_OK);
	chan_free(b);
	chan_free(anon);
	chan_free(a);
	chan_free(NULL);
	CU_ASSERT_PTR_NULL(chan_name(NULL));
	CU_ASSERT_PTR_NULL(chan_conn(NULL));
	CU_ASSERT_EQUAL(chan_handle_new(&b, NULL, "x"), CHAN_EINVAL);
	CU_ASSERT_EQUAL(chan_handle_new(&b, csuite.conn, NULL), CHAN_EINVAL);
}

static void
test_send_recv_buffered(void)
{
	chan_t *ch = make("sr.buf", 3);
	chan_value_t v;
	chan_info_t info;
	bool ok = false;
	size_t n = 0;
	static const char bin[] = { 'a', 0, 'b', (char)0xff };

	CU_ASSERT_EQUAL(chan_send(NULL, ch, "one", 3), CHAN_OK);
	CU_ASSERT_EQUAL(chan_send(NULL, ch, bin, sizeof bin), CHAN_OK);
	CU_ASSERT_EQUAL(chan_send(NULL, ch, NULL, 0), CHAN_OK);
	CU_ASSERT_EQUAL(chan_send(NULL, ch, NULL, 1), CHAN_EINVAL);
	CU_ASSERT_EQUAL(chan_send(NULL, NULL, "x", 1), CHAN_EINVAL);
	CU_ASSERT_EQUAL(chan_len(NULL, ch, &n), CHAN_OK);
	CU_ASSERT_EQUAL(n, 3);
	CU_ASSERT_EQUAL(chan_cap(NULL, ch, &n), CHAN_OK);
	CU_ASSERT_EQUAL(n, 3);
	CU_ASSERT_EQUAL(chan_info(NULL, ch, &info), CHAN_OK);
	CU_ASSERT_EQUAL(info.len, 3);
	CU_ASSERT_FALSE(info.closed);
	CU_ASSERT_FALSE(info.anonymous);
	CU_ASSERT_EQUAL(chan_try_send(NULL, ch, "full", 4), CHAN_EWOULDBLOCK);
	CU_ASSERT_EQUAL(chan_recv(NULL, ch, &v, &ok), CHAN_OK);
	CU_ASSERT(ok);
	CU_ASSERT_EQUAL(v.kind, CHAN_VALUE_BYTES);
	CU_ASSERT_EQUAL(v.len, 3);
	CU_ASSERT_STRING_EQUAL(v.data, "one");
	chan_value_clear(&v);
	CU_ASSERT_EQUAL(v.kind, CHAN_VALUE_NIL);
	CU_ASSERT_EQUAL(chan_try_recv(NULL, ch, &v, &ok), CHAN_OK);
	CU_ASSERT_EQUAL(v.len, sizeof bin);
	CU_ASSERT(v.data && memcmp(v.data, bin, sizeof bin) == 0);
	chan_value_clear(&v);
	CU_ASSERT_EQUAL(chan_recv(NULL, ch, NULL, NULL), CHAN_OK);	/* discard the empty one */
	CU_ASSERT_EQUAL(chan_try_recv(NULL, ch, &v, &ok), CHAN_EWOULDBLOCK);
	CU_ASSERT_EQUAL(v.kind, CHAN_VALUE_NIL);
	chan_value_clear(NULL);
	chan_free(ch);
}

static void
test_close_semantics(void)
{
	chan_t *ch = make("cl.sem", 2);
	chan_value_t v;
	bool ok = false;

	CU_ASSERT_EQUAL(chan_send(NULL, ch, "a", 1), CHAN_OK);
	CU_ASSERT_EQUAL(chan_close(NULL, ch), CHAN_OK);
	CU_ASSERT_EQUAL(chan_close(NULL, ch), CHAN_ECLOSED);
	CU_ASSERT_EQUAL(chan_send(NULL, ch, "b", 1), CHAN_ECLOSED);
	CU_ASSERT_EQUAL(chan_try_send(NULL, ch, "b", 1), CHAN_ECLOSED);
	/* buffered values drain before ok = false */
	CU_ASSERT_EQUAL(chan_recv(NULL, ch, &v, &ok), CHAN_OK);
	CU_ASSERT(ok);
	CU_ASSERT_EQUAL(v.len, 1);
	chan_value_clear(&v);
	CU_ASSERT_EQUAL(chan_recv(NULL, ch, &v, &ok), CHAN_OK);
	CU_ASSERT_FALSE(ok);
	CU_ASSERT_EQUAL(v.kind, CHAN_VALUE_NIL);
	ok = true;
	CU_ASSERT_EQUAL(chan_try_recv(NULL, ch, &v, &ok), CHAN_OK);
	CU_ASSERT_FALSE(ok);
	chan_free(ch);
}

static void
test_not_found_delete(void)
{
	chan_t *ch = make("del.me", 4), *ghost;
	chan_info_t info;
	size_t n = 0;
	bool ok;

	CU_ASSERT_EQUAL(chan_send(NULL, ch, "a", 1), CHAN_OK);
	CU_ASSERT_EQUAL(chan_send(NULL, ch, "b", 1), CHAN_OK);
	CU_ASSERT_EQUAL(chan_delete(NULL, ch, &n), CHAN_OK);
	CU_ASSERT_EQUAL(n, 2);
	CU_ASSERT_EQUAL(chan_delete(NULL, ch, NULL), CHAN_ENOTFOUND);
	CU_ASSERT_EQUAL(chan_len(NULL, ch, &n), CHAN_ENOTFOUND);
	CU_ASSERT_EQUAL(chan_cap(NULL, ch, &n), CHAN_ENOTFOUND);
	CU_ASSERT_EQUAL(chan_info(NULL, ch, &info), CHAN_ENOTFOUND);
	CU_ASSERT_EQUAL(chan_close(NULL, ch), CHAN_ENOTFOUND);
	CU_ASSERT_EQUAL(chan_send(NULL, ch, "c", 1), CHAN_ENOTFOUND);
	CU_ASSERT_EQUAL(chan_recv(NULL, ch, NULL, &ok), CHAN_ENOTFOUND);
	CU_ASSERT_EQUAL(chan_handle_new(&ghost, csuite.conn, "bad\nname"), CHAN_OK);
	CU_ASSERT_EQUAL(chan_len(NULL, ghost, &n), CHAN_EBADREQ);
	CU_ASSERT_EQUAL(chan_len(NULL, NULL, &n), CHAN_EINVAL);
	chan_free(ghost);
	chan_free(ch);
}

static void
test_value_limit(void)
{
	chan_conn_info_t ci;
	chan_t *ch = make("lim.val", 1);
	char *big;

	CU_ASSERT_EQUAL_FATAL(chan_conn_info(csuite.conn, &ci), CHAN_OK);
	big = calloc(1, ci.max_value + 1);
	CU_ASSERT_EQUAL(chan_send(NULL, ch, big, ci.max_value + 1), CHAN_ELIMIT);
	CU_ASSERT_EQUAL(chan_ping(NULL, csuite.conn), CHAN_OK);	/* the connection goes on */
	CU_ASSERT_EQUAL(chan_send(NULL, ch, big, ci.max_value), CHAN_OK);
	CU_ASSERT_EQUAL(chan_recv(NULL, ch, NULL, NULL), CHAN_OK);
	/* a frame over max_frame is refused here: the server would drop the connection */
	if (3 * ci.max_value > ci.max_frame) {
		chan_case_t cs[3];

		for (int i = 0; i < 3; i++)
			cs[i] = (chan_case_t){ .dir = CHAN_DIR_SEND, .ch = ch, .data = big,
			    .len = ci.max_value };
		CU_ASSERT_EQUAL(chan_select(NULL, cs, 3, true), CHAN_ELIMIT);
		CU_ASSERT_EQUAL(chan_ping(NULL, csuite.conn), CHAN_OK);
	}
	free(big);
	chan_free(ch);
}

static void
test_rendezvous(void)
{
	chan_t *ch = make("rdv", 0);
	struct op_thread o;

	CU_ASSERT_EQUAL(chan_try_send(NULL, ch, "x", 1), CHAN_EWOULDBLOCK);
	op_start(&o, OP_T_RECV, NULL, ch);
	CU_ASSERT_FATAL(wait_waiters("rdv", 0, 1));
	CU_ASSERT_EQUAL(chan_send(NULL, ch, "hello", 5), CHAN_OK);
	CU_ASSERT_FATAL(op_join(&o));
	CU_ASSERT_EQUAL(o.rc, CHAN_OK);
	CU_ASSERT(o.ok);
	/* a blocked send and a try_recv */
	op_start(&o, OP_T_SEND, NULL, ch);
	CU_ASSERT_FATAL(wait_waiters("rdv", 1, 0));
	CU_ASSERT_EQUAL(chan_ping(NULL, csuite.conn), CHAN_OK);	/* not held up by the blocked call */
	CU_ASSERT_EQUAL(chan_try_recv(NULL, ch, NULL, NULL), CHAN_OK);
	CU_ASSERT_FATAL(op_join(&o));
	CU_ASSERT_EQUAL(o.rc, CHAN_OK);
	chan_free(ch);
}

static void
test_chanref(void)
{
	chan_t *carrier = make("ref.carrier", 2), *inner = make(NULL, 1), *got;
	chan_value_t v;
	bool ok;

	CU_ASSERT_EQUAL(chan_send_chan(NULL, carrier, inner), CHAN_OK);
	CU_ASSERT_EQUAL(chan_send_chan(NULL, carrier, NULL), CHAN_EINVAL);
	CU_ASSERT_EQUAL(chan_recv(NULL, carrier, &v, &ok), CHAN_OK);
	CU_ASSERT(ok);
	CU_ASSERT_EQUAL_FATAL(v.kind, CHAN_VALUE_CHAN);
	got = v.chan;
	CU_ASSERT_STRING_EQUAL(chan_name(got), chan_name(inner));
	CU_ASSERT_PTR_EQUAL(chan_conn(got), csuite.conn);
	/* the received handle works */
	CU_ASSERT_EQUAL(chan_send(NULL, got, "via ref", 7), CHAN_OK);
	chan_value_clear(&v);
	CU_ASSERT_EQUAL(chan_recv(NULL, inner, &v, &ok), CHAN_OK);
	CU_ASSERT(v.len == 7 && memcmp(v.data, "via ref", 7) == 0);
	chan_value_clear(&v);
	chan_free(inner);
	chan_free(carrier);
}

/* ---- select ----------------------------------------------------------------------------- */

static void
test_select_basic(void)
{
	chan_t *a = make("sel.a", 1), *b = make("sel.b", 1);
	chan_case_t cs[3];
	chan_value_t v;
	bool ok;

	memset(cs, 0, sizeof cs);
	cs[0] = (chan_case_t){ .dir = CHAN_DIR_RECV, .ch = a };
	cs[1] = (chan_case_t){ .dir = CHAN_DIR_RECV, .ch = b };
	CU_ASSERT_EQUAL(chan_select(NULL, cs, 2, true), CHAN_DEFAULT);
	CU_ASSERT_EQUAL(chan_send(NULL, b, "bee", 3), CHAN_OK);
	CU_ASSERT_EQUAL(chan_select(NULL, cs, 2, true), 1);
	CU_ASSERT(cs[1].ok);
	CU_ASSERT_EQUAL(cs[1].value.kind, CHAN_VALUE_BYTES);
	CU_ASSERT(cs[1].value.len == 3 && memcmp(cs[1].value.data, "bee", 3) == 0);
	chan_value_clear(&cs[1].value);
	/* a send case: a has room */
	cs[2] = (chan_case_t){ .dir = CHAN_DIR_SEND, .ch = a, .data = "ay", .len = 2 };
	CU_ASSERT_EQUAL(chan_select(NULL, &cs[2], 1, false), 0);
	CU_ASSERT_EQUAL(chan_recv(NULL, a, &v, &ok), CHAN_OK);
	CU_ASSERT(ok && v.len == 2);
	chan_value_clear(&v);
	/* a send case carrying a channel reference */
	cs[2] = (chan_case_t){ .dir = CHAN_DIR_SEND, .ch = a, .ref = b };
	CU_ASSERT_EQUAL(chan_select(NULL, &cs[2], 1, false), 0);
	CU_ASSERT_EQUAL(chan_recv(NULL, a, &v, &ok), CHAN_OK);
	CU_ASSERT_EQUAL(v.kind, CHAN_VALUE_CHAN);
	CU_ASSERT_STRING_EQUAL(chan_name(v.chan), "sel.b");
	chan_value_clear(&v);
	/* invalid */
	CU_ASSERT_EQUAL(chan_select(NULL, cs, 0, true), CHAN_EINVAL);
	CU_ASSERT_EQUAL(chan_select(NULL, NULL, 1, true), CHAN_EINVAL);
	cs[2] = (chan_case_t){ .dir = CHAN_DIR_SEND, .ch = a, .data = NULL, .len = 3 };
	CU_ASSERT_EQUAL(chan_select(NULL, &cs[2], 1, true), CHAN_EINVAL);
	chan_free(a);
	chan_free(b);
}

static void
test_select_nil_and_closed(void)
{
	chan_t *a = make("sel.c", 0), *gone;
	chan_case_t cs[3];
	chan_ctx_t *cx;
	int64_t t0;

	memset(cs, 0, sizeof cs);
	/* nil channels are never ready */
	cs[0] = (chan_case_t){ .dir = CHAN_DIR_RECV, .ch = NULL };
	cs[1] = (chan_case_t){ .dir = CHAN_DIR_SEND, .ch = NULL, .data = "x", .len = 1 };
	CU_ASSERT_EQUAL(chan_select(NULL, cs, 2, true), CHAN_DEFAULT);
	t0 = chan_now();
	CU_ASSERT_EQUAL_FATAL(chan_with_timeout(&cx, NULL, 100 * CHAN_MSEC), CHAN_OK);
	CU_ASSERT_EQUAL(chan_select(cx, cs, 2, false), CHAN_EDEADLINE);
	CU_ASSERT(ms_since(t0) >= 99 && ms_since(t0) < BOUND_MS);
	chan_ctx_free(cx);
	cs[2] = (chan_case_t){ .dir = CHAN_DIR_RECV, .ch = a };
	CU_ASSERT_EQUAL(chan_select(NULL, cs, 3, true), CHAN_DEFAULT);
	CU_ASSERT_EQUAL_FATAL(chan_with_timeout(&cx, NULL, 100 * CHAN_MSEC), CHAN_OK);
	CU_ASSERT_EQUAL(chan_select(cx, cs, 3, false), CHAN_EDEADLINE);
	chan_ctx_free(cx);
	CU_ASSERT(wait_waiters("sel.c", 0, 0));
	/* closed: a receive case is ready with ok = false, a send case fails with its index */
	CU_ASSERT_EQUAL(chan_close(NULL, a), CHAN_OK);
	cs[2].ok = true;
	CU_ASSERT_EQUAL(chan_select(NULL, cs, 3, false), 2);
	CU_ASSERT_FALSE(cs[2].ok);
	CU_ASSERT_EQUAL(cs[2].value.kind, CHAN_VALUE_NIL);
	cs[2] = (chan_case_t){ .dir = CHAN_DIR_SEND, .ch = a, .data = "x", .len = 1 };
	CU_ASSERT_EQUAL(chan_select(NULL, cs, 3, false), CHAN_ECLOSED);
	CU_ASSERT_EQUAL(cs[2].err, CHAN_ECLOSED);
	CU_ASSERT_EQUAL(cs[0].err, 0);
	/* a missing channel */
	CU_ASSERT_EQUAL_FATAL(chan_handle_new(&gone, csuite.conn, "sel.gone"), CHAN_OK);
	cs[1] = (chan_case_t){ .dir = CHAN_DIR_RECV, .ch = gone };
	CU_ASSERT_EQUAL(chan_select(NULL, cs, 2, true), CHAN_ENOTFOUND);
	CU_ASSERT_EQUAL(cs[1].err, CHAN_ENOTFOUND);
	chan_free(gone);
	chan_free(a);
}

static void
test_select_blocks_and_wakes(void)
{
	chan_t *a = make("sel.w", 0);
	chan_conn_t *c2 = cs_dial_grace(0);
	chan_t *other = NULL;
	struct op_thread o;
	chan_case_t cs[2];

	op_start(&o, OP_T_SELECT, NULL, a);
	CU_ASSERT_FATAL(wait_waiters("sel.w", 0, 1));
	CU_ASSERT_EQUAL(chan_send(NULL, a, "wake", 4), CHAN_OK);
	CU_ASSERT_FATAL(op_join(&o));
	CU_ASSERT_EQUAL(o.rc, 0);
	/* cases on two connections cannot be one select */
	CU_ASSERT_EQUAL_FATAL(chan_open(NULL, c2, "sel.w", &other), CHAN_OK);
	memset(cs, 0, sizeof cs);
	cs[0] = (chan_case_t){ .dir = CHAN_DIR_RECV, .ch = a };
	cs[1] = (chan_case_t){ .dir = CHAN_DIR_RECV, .ch = other };
	CU_ASSERT_EQUAL(chan_select(NULL, cs, 2, true), CHAN_EINVAL);
	chan_free(other);
	chan_conn_close(c2);
	chan_free(a);
}

/* ---- many threads, one connection ----------------------------------------------------------- */

#define NPAIRS 16
#define PER_SENDER 250

struct mt {
	chan_t *ch;
	int idx;
	int rc;
	unsigned got;
	unsigned *seen;			/* NPAIRS * PER_SENDER counters */
};

static void *
mt_sender(void *arg)
{
	struct mt *m = arg;
	chan_ctx_t *cx;

	/* half the senders carry a budget on the wire, half wait forever */
	if ((m->rc = chan_with_timeout(&cx, NULL, 60 * CHAN_SEC)) != 0)
		return NULL;
	for (int i = 0; i < PER_SENDER && m->rc == 0; i++) {
		uint32_t val = (uint32_t)(m->idx * PER_SENDER + i);

		m->rc = chan_send(m->idx % 2 ? cx : NULL, m->ch, &val, sizeof val);
	}
	chan_ctx_free(cx);
	return NULL;
}

static void *
mt_receiver(void *arg)
{
	struct mt *m = arg;

	for (;;) {
		chan_value_t v;
		bool ok;
		uint32_t val;

		if ((m->rc = chan_recv(NULL, m->ch, &v, &ok)) != 0 || !ok)
			break;
		if (v.len == sizeof val) {
			memcpy(&val, v.data, sizeof val);
			if (val < NPAIRS * PER_SENDER)
				__atomic_add_fetch(&m->seen[val], 1, __ATOMIC_RELAXED);
		}
		m->got++;
		chan_value_clear(&v);
	}
	return NULL;
}

static void
run_mt(const char *name, size_t cap)
{
	chan_t *ch = make(name, cap);
	struct mt s[NPAIRS], r[NPAIRS];
	pthread_t st[NPAIRS], rt[NPAIRS];
	unsigned *seen = calloc(NPAIRS * PER_SENDER, sizeof *seen), total = 0, once = 0;

	for (int i = 0; i < NPAIRS; i++) {
		s[i] = (struct mt){ .ch = ch, .idx = i, .seen = seen };
		r[i] = (struct mt){ .ch = ch, .idx = i, .seen = seen };
		CU_ASSERT_FATAL(pthread_create(&rt[i], NULL, mt_receiver, &r[i]) == 0);
		CU_ASSERT_FATAL(pthread_create(&st[i], NULL, mt_sender, &s[i]) == 0);
	}
	for (int i = 0; i < NPAIRS; i++) {
		pthread_join(st[i], NULL);
		CU_ASSERT_EQUAL(s[i].rc, 0);
	}
	CU_ASSERT_EQUAL(chan_close(NULL, ch), CHAN_OK);	/* receivers range until ok = false */
	for (int i = 0; i < NPAIRS; i++) {
		pthread_join(rt[i], NULL);
		CU_ASSERT_EQUAL(r[i].rc, 0);
		total += r[i].got;
	}
	for (int i = 0; i < NPAIRS * PER_SENDER; i++)
		once += seen[i] == 1;
	CU_ASSERT_EQUAL(total, NPAIRS * PER_SENDER);
	CU_ASSERT_EQUAL(once, NPAIRS * PER_SENDER);	/* none lost, none twice */
	CU_ASSERT(wait_waiters(name, 0, 0));
	free(seen);
	chan_free(ch);
}

static void
test_mt_unbuffered(void)
{
	run_mt("mt.unbuf", 0);
}

static void
test_mt_buffered(void)
{
	run_mt("mt.buf", 7);
}

/* ---- deadlines and cancellation -------------------------------------------------------------- */

static void
test_deadline_client(void)
{
	chan_t *ch = make("dl.client", 0);
	chan_ctx_t *cx;
	chan_value_t v;
	bool ok;
	int64_t t0 = chan_now();

	CU_ASSERT_EQUAL_FATAL(chan_with_timeout(&cx, NULL, 200 * CHAN_MSEC), CHAN_OK);
	CU_ASSERT_EQUAL(chan_recv(cx, ch, &v, &ok), CHAN_EDEADLINE);
	CU_ASSERT(ms_since(t0) >= 199);
	CU_ASSERT(ms_since(t0) < 1000);
	CU_ASSERT_EQUAL(v.kind, CHAN_VALUE_NIL);
	/* and the try forms say "would block", not "deadline" */
	chan_ctx_free(cx);
	CU_ASSERT_EQUAL_FATAL(chan_with_timeout(&cx, NULL, 5 * CHAN_SEC), CHAN_OK);
	CU_ASSERT_EQUAL(chan_try_recv(cx, ch, &v, &ok), CHAN_EWOULDBLOCK);
	CU_ASSERT_EQUAL(chan_try_send(cx, ch, "x", 1), CHAN_EWOULDBLOCK);
	chan_ctx_free(cx);
	CU_ASSERT(wait_waiters("dl.client", 0, 0));
	chan_free(ch);
}

/*
 * The budget travels on the wire: with a 10 s client grace the client does
 * nothing at its deadline, yet a second connection sees the waiter go at
 * the deadline, because the server enforces the wait it was sent.
 */
static void
test_deadline_server(void)
{
	chan_conn_t *c = cs_dial_grace(10 * CHAN_SEC);
	chan_t *ch = NULL;
	chan_ctx_t *cx;
	struct op_thread o;
	struct proto_chan_info i;
	int64_t t0, gone = -1;

	CU_ASSERT_EQUAL_FATAL(chan_make(NULL, c, "dl.server", 0, &ch), CHAN_OK);
	t0 = chan_now();
	CU_ASSERT_EQUAL_FATAL(chan_with_timeout(&cx, NULL, 400 * CHAN_MSEC), CHAN_OK);
	op_start(&o, OP_T_RECV, cx, ch);
	CU_ASSERT_FATAL(wait_waiters("dl.server", 0, 1));
	while (ms_since(t0) < BOUND_MS) {
		if (raw_info("dl.server", &i) == 0 && i.receivers == 0) {
			gone = ms_since(t0);
			break;
		}
		pause_1ms();
	}
	CU_ASSERT(gone >= 390);
	CU_ASSERT(gone >= 0 && gone < 1500);
	CU_ASSERT_FATAL(op_join(&o));
	CU_ASSERT_EQUAL(o.rc, CHAN_EDEADLINE);
	CU_ASSERT((o.end - t0) / CHAN_MSEC < 1500);
	chan_ctx_free(cx);
	chan_free(ch);
	chan_conn_close(c);
}

static void
test_done_ctx_sends_nothing(void)
{
	chan_t *ch = make("dl.nothing", 4);
	chan_ctx_t *cx;
	chan_case_t cs = { .dir = CHAN_DIR_SEND, .ch = ch, .data = "x", .len = 1 };
	size_t n = 99;
	chan_t *made = NULL;

	CU_ASSERT_EQUAL_FATAL(chan_with_timeout(&cx, NULL, 1), CHAN_OK);
	CU_ASSERT_FATAL(fd_readable(chan_ctx_done_fd(cx), BOUND_MS));
	CU_ASSERT_EQUAL(chan_send(cx, ch, "x", 1), CHAN_EDEADLINE);
	CU_ASSERT_EQUAL(chan_try_send(cx, ch, "x", 1), CHAN_EDEADLINE);
	CU_ASSERT_EQUAL(chan_select(cx, &cs, 1, true), CHAN_EDEADLINE);
	CU_ASSERT_EQUAL(chan_ping(cx, csuite.conn), CHAN_EDEADLINE);
	CU_ASSERT_EQUAL(chan_make(cx, csuite.conn, "dl.never", 0, &made), CHAN_EDEADLINE);
	chan_ctx_free(cx);
	CU_ASSERT_EQUAL_FATAL(chan_with_cancel(&cx, NULL), CHAN_OK);
	chan_cancel(cx);
	CU_ASSERT_EQUAL(chan_send(cx, ch, "x", 1), CHAN_ECANCELED);
	CU_ASSERT_EQUAL(chan_recv(cx, ch, NULL, NULL), CHAN_ECANCELED);
	CU_ASSERT_EQUAL(chan_close(cx, ch), CHAN_ECANCELED);
	chan_ctx_free(cx);
	CU_ASSERT_EQUAL(chan_len(NULL, ch, &n), CHAN_OK);
	CU_ASSERT_EQUAL(n, 0);			/* nothing reached the server */
	CU_ASSERT_EQUAL(chan_open(NULL, csuite.conn, "dl.never", &made), CHAN_ENOTFOUND);
	chan_free(ch);
}

/* Cancel from another thread: the call wakes at once, the server keeps no waiter. */
static void
cancel_case(int kind, chan_ctx_t *parent_to_cancel, chan_ctx_t *call_ctx, const char *name,
    size_t snd, size_t rcv)
{
	chan_conn_t *c = cs_dial_grace(10 * CHAN_SEC);
	chan_t *ch = NULL;
	struct op_thread o;
	chan_info_t info;
	int64_t t0;

	CU_ASSERT_EQUAL_FATAL(chan_make(NULL, c, name, 0, &ch), CHAN_OK);
	op_start(&o, kind, call_ctx, ch);
	CU_ASSERT_FATAL(wait_waiters(name, snd, rcv));
	t0 = chan_now();
	CU_ASSERT_EQUAL(chan_cancel(parent_to_cancel), CHAN_OK);
	CU_ASSERT_FATAL(op_join(&o));
	CU_ASSERT_EQUAL(o.rc, CHAN_ECANCELED);
	CU_ASSERT((o.end - t0) / CHAN_MSEC < 500);	/* at once, not after the 10 s grace */
	/* no waiter afterwards: asked on the same connection, then on another */
	CU_ASSERT_EQUAL(chan_info(NULL, ch, &info), CHAN_OK);
	CU_ASSERT_EQUAL(info.senders + info.receivers, 0);
	CU_ASSERT(wait_waiters(name, 0, 0));
	CU_ASSERT_EQUAL(chan_ping(NULL, c), CHAN_OK);
	chan_free(ch);
	chan_conn_close(c);
}

static void
test_cancel_wakes(void)
{
	chan_ctx_t *cx, *p, *child;

	CU_ASSERT_EQUAL_FATAL(chan_with_cancel(&cx, NULL), CHAN_OK);
	cancel_case(OP_T_RECV, cx, cx, "cx.recv", 0, 1);
	chan_ctx_free(cx);
	CU_ASSERT_EQUAL_FATAL(chan_with_cancel(&cx, NULL), CHAN_OK);
	cancel_case(OP_T_SEND, cx, cx, "cx.send", 1, 0);
	chan_ctx_free(cx);
	CU_ASSERT_EQUAL_FATAL(chan_with_cancel(&cx, NULL), CHAN_OK);
	cancel_case(OP_T_SELECT, cx, cx, "cx.select", 0, 1);
	chan_ctx_free(cx);
	/* the call's context is a (timeout) child of the one cancelled */
	CU_ASSERT_EQUAL_FATAL(chan_with_cancel(&p, NULL), CHAN_OK);
	CU_ASSERT_EQUAL_FATAL(chan_with_timeout(&child, p, 60 * CHAN_SEC), CHAN_OK);
	cancel_case(OP_T_RECV, p, child, "cx.child", 0, 1);
	chan_ctx_free(child);
	chan_ctx_free(p);
}

/* A value matched before the cancel reaches the server is not lost. */
static void
test_cancel_race_keeps_values(void)
{
	chan_t *ch = make("cx.race", 64);
	unsigned delivered = 0, received = 0;

	for (int i = 0; i < 64; i++) {
		chan_ctx_t *cx;
		struct op_thread o;

		CU_ASSERT_EQUAL_FATAL(chan_with_cancel(&cx, NULL), CHAN_OK);
		op_start(&o, OP_T_RECV, cx, ch);
		if (chan_send(NULL, ch, "v", 1) == CHAN_OK)
			delivered++;
		chan_cancel(cx);
		/* op_join clears o.v, so count before */
		CU_ASSERT_FATAL(pthread_join(o.t, NULL) == 0);
		if (o.rc == CHAN_OK && o.ok)
			received++;
		else
			CU_ASSERT_EQUAL(o.rc, CHAN_ECANCELED);
		chan_value_clear(&o.v);
		chan_ctx_free(cx);
	}
	while (chan_try_recv(NULL, ch, NULL, NULL) == CHAN_OK)
		received++;
	CU_ASSERT_EQUAL(received, delivered);
	chan_free(ch);
}

/* ---- the server going away ----------------------------------------------------------------------- */

/* A stopped (not dead) server: calls still end, within deadline + grace. */
static void
test_server_stopped(void)
{
	chan_conn_t *c = cs_dial_grace(200 * CHAN_MSEC);
	chan_t *ch = NULL;
	chan_ctx_t *cx;
	int64_t t0;
	size_t n = 9;

	CU_ASSERT_EQUAL_FATAL(chan_make(NULL, c, "stopped", 1, &ch), CHAN_OK);
	CU_ASSERT_FATAL(kill(csuite.srv.pid, SIGSTOP) == 0);
	t0 = chan_now();
	CU_ASSERT_EQUAL_FATAL(chan_with_timeout(&cx, NULL, 300 * CHAN_MSEC), CHAN_OK);
	CU_ASSERT_EQUAL(chan_recv(cx, ch, NULL, NULL), CHAN_EDEADLINE);
	CU_ASSERT(ms_since(t0) >= 299 && ms_since(t0) < 2000);
	CU_ASSERT_EQUAL(chan_len(cx, ch, &n), CHAN_EDEADLINE);	/* fails before sending */
	chan_ctx_free(cx);
	CU_ASSERT_FATAL(kill(csuite.srv.pid, SIGCONT) == 0);
	/* the late replies are dropped; the connection goes on */
	CU_ASSERT_EQUAL(chan_send(NULL, ch, "z", 1), CHAN_OK);
	CU_ASSERT_EQUAL(chan_len(NULL, ch, &n), CHAN_OK);
	CU_ASSERT_EQUAL(n, 1);
	chan_free(ch);
	chan_conn_close(c);
}

static void
test_server_killed(void)
{
	chan_conn_t *c = cs_dial_grace(0);
	chan_t *a = NULL, *b = NULL;
	chan_ctx_t *cx;
	struct op_thread o1, o2;
	int64_t t0;

	CU_ASSERT_EQUAL_FATAL(chan_make(NULL, c, "kill.a", 0, &a), CHAN_OK);
	CU_ASSERT_EQUAL_FATAL(chan_make(NULL, c, "kill.b", 0, &b), CHAN_OK);
	CU_ASSERT_EQUAL_FATAL(chan_with_timeout(&cx, NULL, 4 * CHAN_SEC), CHAN_OK);
	op_start(&o1, OP_T_RECV, cx, a);
	op_start(&o2, OP_T_SEND, NULL, b);
	CU_ASSERT_FATAL(wait_waiters("kill.a", 0, 1));
	CU_ASSERT_FATAL(wait_waiters("kill.b", 1, 0));
	t0 = chan_now();
	test_server_kill(&csuite.srv);
	csuite.up = false;
	CU_ASSERT_FATAL(op_join(&o1));
	CU_ASSERT_FATAL(op_join(&o2));
	/* both pending calls fail at once, well within the 4 s deadline */
	CU_ASSERT_EQUAL(o1.rc, CHAN_ECONNLOST);
	CU_ASSERT_EQUAL(o2.rc, CHAN_ECONNLOST);
	CU_ASSERT((o1.end - t0) / CHAN_MSEC < 1000);
	CU_ASSERT((o2.end - t0) / CHAN_MSEC < 1000);
	/* and so does everything after */
	CU_ASSERT_EQUAL(chan_ping(NULL, c), CHAN_ECONNLOST);
	CU_ASSERT_EQUAL(chan_send(NULL, a, "x", 1), CHAN_ECONNLOST);
	chan_ctx_free(cx);
	chan_free(a);
	chan_free(b);
	chan_conn_close(c);
}

static void
test_server_shutdown(void)
{
	chan_conn_t *c;
	chan_t *ch = NULL;
	struct op_thread o;

	CU_ASSERT_FATAL(cs_up(NULL, false) == 0);
	c = cs_dial_grace(0);
	CU_ASSERT_EQUAL_FATAL(chan_make(NULL, c, "stop.me", 0, &ch), CHAN_OK);
	op_start(&o, OP_T_RECV, NULL, ch);
	CU_ASSERT_FATAL(wait_waiters("stop.me", 0, 1));
	CU_ASSERT_EQUAL(test_server_stop(&csuite.srv), 0);
	csuite.up = false;
	CU_ASSERT_FATAL(op_join(&o));
	CU_ASSERT_EQUAL(o.rc, CHAN_ESHUTDOWN);		/* PROTOCOL.md §10 */
	CU_ASSERT(chan_ping(NULL, c) < 0);
	chan_free(ch);
	chan_conn_close(c);
}

/* ---- a configured server: unix socket, small limits ------------------------------------------ */

static char sock_path[108];

static int
suite_init_config(void)
{
	char conf[256];

	snprintf(sock_path, sizeof sock_path, "/tmp/chanclient-test.%d.sock", (int)getpid());
	unlink(sock_path);
	snprintf(conf, sizeof conf, "unix_socket = %s\nmax_pending = 3\nmax_value = 1K\n"
	    "max_select_cases = 2\n", sock_path);
	return cs_up(conf, false);
}

static int
suite_clean_config(void)
{
	cs_suite_clean();
	unlink(sock_path);
	return 0;
}

static void
test_unix_dial(void)
{
	chan_conn_t *c = NULL;
	chan_t *ch = NULL;
	chan_value_t v;
	bool ok;
	char a[128];

	snprintf(a, sizeof a, "unix:%s", sock_path);
	CU_ASSERT_EQUAL_FATAL(chan_dial(NULL, a, NULL, &c), CHAN_OK);
	CU_ASSERT_EQUAL(chan_ping(NULL, c), CHAN_OK);
	CU_ASSERT_EQUAL_FATAL(chan_make(NULL, c, "unix.ch", 1, &ch), CHAN_OK);
	CU_ASSERT_EQUAL(chan_send(NULL, ch, "u", 1), CHAN_OK);
	CU_ASSERT_EQUAL(chan_recv(NULL, ch, &v, &ok), CHAN_OK);
	CU_ASSERT(ok && v.len == 1);
	chan_value_clear(&v);
	chan_free(ch);
	chan_conn_close(c);
}

static void
test_server_limits(void)
{
	chan_conn_t *c = cs_dial_grace(0);
	chan_conn_info_t ci;
	chan_t *a = NULL, *b = NULL;
	chan_case_t cs[3];
	struct op_thread o1, o2, o3;
	char buf[1025] = { 0 };
	size_t n;

	CU_ASSERT_EQUAL_FATAL(chan_conn_info(c, &ci), CHAN_OK);
	CU_ASSERT_EQUAL(ci.max_value, 1024);
	CU_ASSERT_EQUAL(ci.max_pending, 3);
	CU_ASSERT_EQUAL(ci.max_select_cases, 2);
	CU_ASSERT_EQUAL_FATAL(chan_make(NULL, c, "lim.a", 0, &a), CHAN_OK);
	CU_ASSERT_EQUAL_FATAL(chan_make(NULL, c, "lim.b", 1, &b), CHAN_OK);
	CU_ASSERT_EQUAL(chan_send(NULL, b, buf, 1025), CHAN_ELIMIT);
	CU_ASSERT_EQUAL(chan_send(NULL, b, buf, 1024), CHAN_OK);
	memset(cs, 0, sizeof cs);
	for (int i = 0; i < 3; i++)
		cs[i] = (chan_case_t){ .dir = CHAN_DIR_RECV, .ch = a };
	CU_ASSERT_EQUAL(chan_select(NULL, cs, 3, true), CHAN_ELIMIT);
	/* max_pending: three waiting calls fill the connection, a fourth is refused */
	op_start(&o1, OP_T_RECV, NULL, a);
	op_start(&o2, OP_T_RECV, NULL, a);
	op_start(&o3, OP_T_RECV, NULL, a);
	CU_ASSERT_FATAL(wait_waiters("lim.a", 0, 3));
	/* (only waiting operations stay pending: the others complete at once) */
	CU_ASSERT_EQUAL(chan_len(NULL, b, &n), CHAN_OK);
	CU_ASSERT_EQUAL(chan_recv(NULL, a, NULL, NULL), CHAN_ELIMIT);
	CU_ASSERT_EQUAL(chan_try_recv(NULL, b, NULL, NULL), CHAN_ELIMIT);
	CU_ASSERT_EQUAL(chan_ping(NULL, c), CHAN_OK);
	chan_conn_close(c);		/* wakes the three */
	CU_ASSERT_FATAL(op_join(&o1) && op_join(&o2) && op_join(&o3));
	CU_ASSERT(o1.rc == CHAN_ENOTCONN && o2.rc == CHAN_ENOTCONN && o3.rc == CHAN_ENOTCONN);
	chan_free(a);
	chan_free(b);
}

/* ---- registry -------------------------------------------------------------------------------------- */

static void
register_suites(void)
{
	CU_pSuite s;

	s = test_suite("errors", NULL, NULL);
	test_add(s, "strerror", test_strerror);

	s = test_suite("ctx", NULL, NULL);
	test_add(s, "background", test_ctx_background);
	test_add(s, "cancel tree", test_ctx_cancel_tree);
	test_add(s, "timeout fires alone", test_ctx_timeout_fires);
	test_add(s, "deadline min", test_ctx_deadline_min);
	test_add(s, "values", test_ctx_values);

	s = test_suite("dial", suite_init_noconn, cs_suite_clean);
	test_add(s, "errors", test_dial_errors);
	test_add(s, "ok", test_dial_ok);
	test_add(s, "close then use", test_conn_close_then_use);
	test_add(s, "close wakes calls", test_conn_close_wakes);

	s = test_suite("chan", cs_suite_init, cs_suite_clean);
	test_add(s, "make open", test_make_open);
	test_add(s, "send recv buffered", test_send_recv_buffered);
	test_add(s, "close", test_close_semantics);
	test_add(s, "not found, delete", test_not_found_delete);
	test_add(s, "value limit", test_value_limit);
	test_add(s, "rendezvous", test_rendezvous);
	test_add(s, "channel references", test_chanref);

	s = test_suite("select", cs_suite_init, cs_suite_clean);
	test_add(s, "basic", test_select_basic);
	test_add(s, "nil and closed", test_select_nil_and_closed);
	test_add(s, "blocks and wakes", test_select_blocks_and_wakes);

	s = test_suite("threads", cs_suite_init, cs_suite_clean);
	test_add(s, "32 threads unbuffered", test_mt_unbuffered);
	test_add(s, "32 threads buffered", test_mt_buffered);

	s = test_suite("deadline", cs_suite_init, cs_suite_clean);
	test_add(s, "client", test_deadline_client);
	test_add(s, "server enforces wire budget", test_deadline_server);
	test_add(s, "done context sends nothing", test_done_ctx_sends_nothing);
	test_add(s, "cancel wakes at once", test_cancel_wakes);
	test_add(s, "cancel race keeps values", test_cancel_race_keeps_values);

	s = test_suite("server gone", suite_init_noconn, cs_suite_clean);
	test_add(s, "stopped mid-call", test_server_stopped);
	test_add(s, "killed mid-call", test_server_killed);
	test_add(s, "shutdown mid-call", test_server_shutdown);

	s = test_suite("configured", suite_init_config, suite_clean_config);
	test_add(s, "unix socket", test_unix_dial);
	test_add(s, "server limits", test_server_limits);
}

int
main(int argc, char **argv)
{
	return test_main(argc, argv, register_suites);
}
