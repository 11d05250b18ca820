/*
 * test_client.c: libchanclient against a real chand ($CHAND).
 *
 * Every public function with its error paths; many threads sharing one
 * connection; cancellation and deadlines as seen from a second connection;
 * the server killed or stopped in the middle of a call. Waiting is always on
 * a condition (a thread's result, INFO showing a waiter) with a generous
 * upper bound, never a bare sleep.
 *
 * This file holds the helpers the parts share, errors, contexts, dialing
 * and a configured server; channels, select and many threads sharing a
 * connection are in test_client_chan.c, deadlines, cancellation and the
 * server going away in test_client_deadline.c.
 *
 * SPDX-License-Identifier: BSD-2-Clause
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1
#endif
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "clienttest.h"
#include "synctest.h"


/* ---- helpers ----------------------------------------------------------------------- */

int
suite_init_noconn(void)
{
	return cs_up(NULL, false);
}

chan_t *
make(const char *name, size_t cap)
{
	chan_t *ch = NULL;

	CU_ASSERT_EQUAL_FATAL(chan_make(NULL, csuite.conn, name, cap, &ch), CHAN_OK);
	return ch;
}

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

void
op_start(struct op_thread *o, int kind, chan_ctx_t *ctx, chan_t *ch)
{
	memset(o, 0, sizeof *o);
	o->kind = kind;
	o->ctx = ctx;
	o->ch = ch;
	CU_ASSERT_FATAL(pthread_create(&o->t, NULL, op_main, o) == 0);
}

/* Join within BOUND_MS; false (and the thread is left) on timeout. */
bool
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

bool
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
		"foo:x", "tcp://", "tcp://::1", "tcp://:80", "tcp://127.0.0.1:",
		"tcp://[::1", "tcp://[::1]80", "unix:", "http://x:1",
		/* a host has no space, control character or '@' */
		"a b:1", "a\tb:1", "a\x7f" "b:1", "user@h:1", "tls://[::1 ]:1", "a\nb",
	};
	chan_conn_t *c = (chan_conn_t *)1;
	chan_ctx_t *cx;
	char a[96];

	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
		CU_ASSERT_EQUAL(chan_dial(NULL, bad[i], NULL, &c), CHAN_EINVAL);
	CU_ASSERT_EQUAL(chan_dial(NULL, NULL, NULL, &c), CHAN_EINVAL);
	CU_ASSERT_EQUAL(chan_dial(NULL, csuite.addr, NULL, NULL), CHAN_EINVAL);
	CU_ASSERT_PTR_EQUAL(c, (chan_conn_t *)1);	/* untouched on failure */
	snprintf(a, sizeof a, "tls://127.0.0.1:%d", closed_port());	/* nothing listens */
	CU_ASSERT_EQUAL(chan_dial(NULL, a, NULL, &c), CHAN_ECONNECT);
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
	/* an operation that would not wait is never refused: b's value, then nothing */
	CU_ASSERT_EQUAL(chan_try_recv(NULL, b, NULL, NULL), CHAN_OK);
	CU_ASSERT_EQUAL(chan_try_recv(NULL, b, NULL, NULL), CHAN_EWOULDBLOCK);
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

	register_client_chan();
	register_client_deadline();

	s = test_suite("configured", suite_init_config, suite_clean_config);
	test_add(s, "unix socket", test_unix_dial);
	test_add(s, "server limits", test_server_limits);
}

int
main(int argc, char **argv)
{
	return test_main(argc, argv, register_suites);
}
