/*
 * test_client_stream.c: libchanclient's receive streams (chan_stream_*,
 * PROTOCOL.md §14) against a real chand ($CHAND).
 *
 * What the server shows (INFO's receivers) is read through a second
 * connection; every wait is on a condition with a generous upper bound.
 *
 * SPDX-License-Identifier: BSD-2-Clause
 */
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "chanclient.h"
#include "testutil.h"

#define BOUND_MS 5000

static struct test_server srv;
static char addr[64];
static chan_conn_t *conn;		/* the streams' connection */
static chan_conn_t *other;		/* senders and INFO */

static int
suite_init(void)
{
	if (test_server_start(&srv, NULL) < 0)
		return -1;
	snprintf(addr, sizeof addr, "tcp://127.0.0.1:%d", srv.port);
	if (chan_dial(NULL, addr, NULL, &conn) != CHAN_OK || chan_dial(NULL, addr, NULL, &other) != CHAN_OK)
		return -1;
	return 0;
}

static int
suite_clean(void)
{
	chan_conn_close(conn);
	chan_conn_close(other);
	return test_server_stop(&srv) == 0 ? 0 : -1;
}

/* name on both connections: [0] on conn (the stream's), [1] on other. */
static void
make2(const char *name, size_t cap, chan_t *h[2])
{
	CU_ASSERT_EQUAL_FATAL(chan_make(NULL, conn, name, cap, &h[0]), CHAN_OK);
	CU_ASSERT_EQUAL_FATAL(chan_make(NULL, other, name, cap, &h[1]), CHAN_OK);
}

static void
free2(chan_t *h[2])
{
	chan_delete(NULL, h[1], NULL);
	chan_free(h[0]);
	chan_free(h[1]);
}

/* Wait until INFO shows this many receivers on ch (a handle on `other`). */
static bool
wait_receivers(chan_t *ch, size_t want)
{
	struct timespec ms = { 0, 1000000 };
	chan_info_t i;

	for (int t = 0; t < BOUND_MS; t++) {
		if (chan_info(NULL, ch, &i) == CHAN_OK && i.receivers == want)
			return true;
		nanosleep(&ms, NULL);	/* between polls of the condition */
	}
	return false;
}

static void
send_str(chan_t *ch, const char *s)
{
	CU_ASSERT_EQUAL(chan_send(NULL, ch, s, strlen(s)), CHAN_OK);
}

/* The next stream value must be the string want from channel index. */
static void
expect_value(chan_stream_t *s, const char *want, size_t index)
{
	chan_value_t v;
	bool ok = false;
	size_t i = 99;

	CU_ASSERT_EQUAL_FATAL(chan_stream_recv(s, &v, &ok, &i), CHAN_OK);
	CU_ASSERT(ok);
	CU_ASSERT_EQUAL(i, index);
	CU_ASSERT(v.kind == CHAN_VALUE_BYTES && v.len == strlen(want) && memcmp(v.data, want, v.len) == 0);
	chan_value_clear(&v);
}

static void
expect_closed(chan_stream_t *s, size_t index)
{
	chan_value_t v;
	bool ok = true;
	size_t i = 99;

	CU_ASSERT_EQUAL(chan_stream_recv(s, &v, &ok, &i), CHAN_OK);
	CU_ASSERT(!ok && v.kind == CHAN_VALUE_NIL);
	CU_ASSERT_EQUAL(i, index);
}

/* ---- tests ------------------------------------------------------------------------- */

static void
test_info(void)
{
	chan_conn_info_t ci;

	CU_ASSERT_EQUAL(chan_conn_info(conn, &ci), CHAN_OK);
	CU_ASSERT_EQUAL(ci.max_stream_credit, 1024);	/* the shipped default */
	CU_ASSERT_EQUAL(ci.max_waiters_per_connection, 65536);
}

/* Send "v3" once the server shows three receivers (the test fails on a timeout). */
static void *
send_when_3(void *arg)
{
	chan_t *ch = arg;

	CU_ASSERT(wait_receivers(ch, 3));
	send_str(ch, "v3");
	return NULL;
}

/* Credit k is k pending receives, kept k deep as values are taken. */
static void
test_credit_depth(void)
{
	chan_t *h[2];
	chan_stream_t *s;
	pthread_t t;
	char buf[16];

	make2("st.depth", 0, h);
	CU_ASSERT_EQUAL_FATAL(chan_stream_open(NULL, &h[0], 1, 3, &s), CHAN_OK);
	CU_ASSERT_FATAL(wait_receivers(h[1], 3));
	/* three unbuffered sends complete with nobody calling recv: the stream took them */
	for (int i = 0; i < 3; i++) {
		snprintf(buf, sizeof buf, "v%d", i);
		send_str(h[1], buf);
	}
	CU_ASSERT(wait_receivers(h[1], 0));
	CU_ASSERT_EQUAL(chan_try_send(NULL, h[1], "x", 1), CHAN_EWOULDBLOCK);	/* no fourth */
	expect_value(s, "v0", 0);
	expect_value(s, "v1", 0);
	expect_value(s, "v2", 0);
	/* a recv that must wait grants back every value taken: three receives pending again */
	CU_ASSERT_FATAL(pthread_create(&t, NULL, send_when_3, h[1]) == 0);
	expect_value(s, "v3", 0);
	pthread_join(t, NULL);
	chan_stream_free(s);
	CU_ASSERT(wait_receivers(h[1], 0));	/* freeing withdrew them */
	free2(h);
}

struct producer {
	chan_t *ch;
	int n;
	bool close;
	int rc;
};

static void *
produce(void *arg)
{
	struct producer *p = arg;
	char buf[16];

	for (int i = 0; i < p->n && p->rc == CHAN_OK; i++) {
		snprintf(buf, sizeof buf, "%d", i);
		p->rc = chan_send(NULL, p->ch, buf, strlen(buf));
	}
	if (p->close && p->rc == CHAN_OK)
		p->rc = chan_close(NULL, p->ch);
	return NULL;
}

/* Many values in order, through credit 1 (a CREDIT per value) and 64, then the close. */
static void
test_order_and_close(void)
{
	static const size_t credits[] = { 1, 64 };

	for (size_t c = 0; c < 2; c++) {
		struct producer p;
		pthread_t t;
		chan_t *h[2];
		chan_stream_t *s;
		char name[32], want[16];

		snprintf(name, sizeof name, "st.order.%zu", credits[c]);
		make2(name, 0, h);
		CU_ASSERT_EQUAL_FATAL(chan_stream_open(NULL, &h[0], 1, credits[c], &s), CHAN_OK);
		p = (struct producer){ h[1], 2000, true, CHAN_OK };
		CU_ASSERT_FATAL(pthread_create(&t, NULL, produce, &p) == 0);
		for (int i = 0; i < 2000; i++) {
			snprintf(want, sizeof want, "%d", i);
			expect_value(s, want, 0);
		}
		expect_closed(s, 0);
		CU_ASSERT_EQUAL(chan_stream_recv(s, NULL, NULL, NULL), CHAN_ECLOSED);
		CU_ASSERT_EQUAL(chan_stream_recv(s, NULL, NULL, NULL), CHAN_ECLOSED);	/* and after */
		pthread_join(t, NULL);
		CU_ASSERT_EQUAL(p.rc, CHAN_OK);
		chan_stream_free(s);
		free2(h);
	}
}

/* A streaming select: the index says where a value came from; closes are reported once. */
static void
test_several_channels(void)
{
	chan_t *a[2], *b[2], *c[2];
	chan_t *set[3];
	chan_stream_t *s;

	make2("st.sel.a", 4, a);
	make2("st.sel.b", 4, b);
	make2("st.sel.c", 4, c);
	set[0] = a[0], set[1] = b[0], set[2] = c[0];
	CU_ASSERT_EQUAL_FATAL(chan_stream_open(NULL, set, 3, 2, &s), CHAN_OK);
	send_str(b[1], "from-b");
	expect_value(s, "from-b", 1);
	send_str(c[1], "from-c");
	expect_value(s, "from-c", 2);
	CU_ASSERT_EQUAL(chan_close(NULL, a[1]), CHAN_OK);
	expect_closed(s, 0);
	send_str(b[1], "b-again");	/* a is closed: the stream goes on */
	expect_value(s, "b-again", 1);
	CU_ASSERT_EQUAL(chan_close(NULL, b[1]), CHAN_OK);
	expect_closed(s, 1);
	send_str(c[1], "last");
	expect_value(s, "last", 2);
	CU_ASSERT_EQUAL(chan_close(NULL, c[1]), CHAN_OK);
	expect_closed(s, 2);
	CU_ASSERT_EQUAL(chan_stream_recv(s, NULL, NULL, NULL), CHAN_ECLOSED);
	chan_stream_free(s);
	free2(a);
	free2(b);
	free2(c);
}

/* Cancelling the stream's context ends it; nothing stays behind, nothing is lost. */
static void
test_cancel(void)
{
	chan_t *h[2];
	chan_stream_t *s;
	chan_ctx_t *cx;
	chan_value_t v;
	bool ok;

	make2("st.cancel", 1, h);
	CU_ASSERT_EQUAL_FATAL(chan_with_cancel(&cx, NULL), CHAN_OK);
	CU_ASSERT_EQUAL_FATAL(chan_stream_open(cx, &h[0], 1, 5, &s), CHAN_OK);
	CU_ASSERT_FATAL(wait_receivers(h[1], 5));
	CU_ASSERT_EQUAL(chan_cancel(cx), CHAN_OK);
	CU_ASSERT_EQUAL(chan_stream_recv(s, NULL, NULL, NULL), CHAN_ECANCELED);
	CU_ASSERT_EQUAL(chan_stream_recv(s, NULL, NULL, NULL), CHAN_ECANCELED);
	CU_ASSERT(wait_receivers(h[1], 0));
	send_str(h[1], "kept");		/* buffered: nobody took it */
	CU_ASSERT_EQUAL(chan_try_recv(NULL, h[1], &v, &ok), CHAN_OK);
	CU_ASSERT(ok && v.len == 4);
	chan_value_clear(&v);
	chan_stream_free(s);
	chan_ctx_free(cx);
	free2(h);
}

/* The context's deadline is the stream's wait: the server ends it. */
static void
test_deadline(void)
{
	chan_t *h[2];
	chan_stream_t *s;
	chan_ctx_t *cx;
	int64_t t0 = chan_now();

	make2("st.deadline", 0, h);
	CU_ASSERT_EQUAL_FATAL(chan_with_timeout(&cx, NULL, 200 * CHAN_MSEC), CHAN_OK);
	CU_ASSERT_EQUAL_FATAL(chan_stream_open(cx, &h[0], 1, 2, &s), CHAN_OK);
	CU_ASSERT_EQUAL(chan_stream_recv(s, NULL, NULL, NULL), CHAN_EDEADLINE);
	CU_ASSERT((chan_now() - t0) / CHAN_MSEC >= 199);
	CU_ASSERT((chan_now() - t0) / CHAN_MSEC < BOUND_MS);
	CU_ASSERT(wait_receivers(h[1], 0));
	chan_stream_free(s);
	chan_ctx_free(cx);
	free2(h);
}

/* A connection to the test's server that waits grace for the server's word on an ended context. */
static chan_conn_t *
dial_grace(int64_t grace_ns)
{
	chan_dial_opts_t o = { .cancel_grace_ns = grace_ns };
	chan_conn_t *c = NULL;

	CU_ASSERT_EQUAL_FATAL(chan_dial(NULL, addr, &o, &c), CHAN_OK);
	return c;
}

struct stream_waiter {
	chan_stream_t *s;
	pthread_t t;
	int rc;
	int64_t end;
};

static void *
stream_wait(void *arg)
{
	struct stream_waiter *w = arg;

	w->rc = chan_stream_recv(w->s, NULL, NULL, NULL);
	w->end = chan_now();
	return NULL;
}

/*
 * A cancel from another thread ends a waiting stream at once. Its context
 * has a deadline, which the stream carries as its wait, so the waiting
 * thread blocks in recv where only the server's reply wakes it: the
 * canceller writes the CANCEL itself. Neither the 10 s grace nor a quarter
 * of it is waited.
 */
static void
test_cancel_waiting(void)
{
	chan_conn_t *c = dial_grace(10 * CHAN_SEC);
	chan_t *ch = NULL, *seen = NULL;
	chan_ctx_t *p, *cx;
	struct stream_waiter w = { 0 };
	int64_t t0;

	CU_ASSERT_EQUAL_FATAL(chan_make(NULL, c, "st.cancelwait", 0, &ch), CHAN_OK);
	CU_ASSERT_EQUAL_FATAL(chan_make(NULL, other, "st.cancelwait", 0, &seen), CHAN_OK);
	CU_ASSERT_EQUAL_FATAL(chan_with_cancel(&p, NULL), CHAN_OK);
	CU_ASSERT_EQUAL_FATAL(chan_with_timeout(&cx, p, 60 * CHAN_SEC), CHAN_OK);
	CU_ASSERT_EQUAL_FATAL(chan_stream_open(cx, &ch, 1, 1, &w.s), CHAN_OK);
	CU_ASSERT_FATAL(pthread_create(&w.t, NULL, stream_wait, &w) == 0);
	CU_ASSERT(wait_receivers(seen, 1));
	t0 = chan_now();
	CU_ASSERT_EQUAL(chan_cancel(p), CHAN_OK);
	pthread_join(w.t, NULL);
	CU_ASSERT_EQUAL(w.rc, CHAN_ECANCELED);
	CU_ASSERT((w.end - t0) / CHAN_MSEC < 500);
	CU_ASSERT(wait_receivers(seen, 0));
	chan_stream_free(w.s);
	chan_ctx_free(cx);
	chan_ctx_free(p);
	chan_delete(NULL, seen, NULL);
	chan_free(seen);
	chan_free(ch);
	chan_conn_close(c);
}

/*
 * A stopped (not dead) server: a stream's deadline still ends it, after
 * the grace period and at most a quarter more (the receive timeout of a
 * thread waiting in recv), not never.
 */
static void
test_server_stopped(void)
{
	chan_conn_t *c = dial_grace(200 * CHAN_MSEC);
	chan_t *ch = NULL;
	chan_ctx_t *cx;
	chan_stream_t *s = NULL;
	int64_t t0 = chan_now(), took;
	int rc;

	CU_ASSERT_EQUAL_FATAL(chan_make(NULL, c, "st.stopped", 0, &ch), CHAN_OK);
	CU_ASSERT_EQUAL_FATAL(chan_with_timeout(&cx, NULL, 300 * CHAN_MSEC), CHAN_OK);
	CU_ASSERT_EQUAL_FATAL(chan_stream_open(cx, &ch, 1, 1, &s), CHAN_OK);
	CU_ASSERT(wait_receivers(ch, 1));
	CU_ASSERT_FATAL(kill(srv.pid, SIGSTOP) == 0);
	rc = chan_stream_recv(s, NULL, NULL, NULL);
	took = (chan_now() - t0) / CHAN_MSEC;
	CU_ASSERT_FATAL(kill(srv.pid, SIGCONT) == 0);
	CU_ASSERT_EQUAL(rc, CHAN_EDEADLINE);
	CU_ASSERT(took >= 299 && took < 2000);
	/* the late DEADLINE_EXCEEDED is dropped; the connection goes on */
	CU_ASSERT_EQUAL(chan_ping(NULL, c), CHAN_OK);
	chan_stream_free(s);
	chan_ctx_free(cx);
	chan_delete(NULL, ch, NULL);
	chan_free(ch);
	chan_conn_close(c);
}

/* A deleted channel ends the stream with NOT_FOUND and its index. */
static void
test_deleted(void)
{
	chan_t *a[2], *b[2], *set[2];
	chan_stream_t *s;
	size_t index = 99;

	make2("st.del.a", 0, a);
	make2("st.del.b", 0, b);
	set[0] = a[0], set[1] = b[0];
	CU_ASSERT_EQUAL_FATAL(chan_stream_open(NULL, set, 2, 1, &s), CHAN_OK);
	CU_ASSERT_FATAL(wait_receivers(b[1], 1));
	CU_ASSERT_EQUAL(chan_delete(NULL, b[1], NULL), CHAN_OK);
	CU_ASSERT_EQUAL(chan_stream_recv(s, NULL, NULL, &index), CHAN_ENOTFOUND);
	CU_ASSERT_EQUAL(index, 1);
	CU_ASSERT(wait_receivers(a[1], 0));
	chan_stream_free(s);
	free2(a);
	chan_free(b[0]);
	chan_free(b[1]);
}

static void
test_bad_input(void)
{
	chan_t *a[2], *b[2], *x = NULL, *set[2];
	chan_stream_t *s = NULL;
	chan_conn_info_t ci;

	make2("st.bad.a", 0, a);
	make2("st.bad.b", 0, b);
	CU_ASSERT_EQUAL(chan_stream_open(NULL, a, 0, 1, &s), CHAN_EINVAL);
	CU_ASSERT_EQUAL(chan_stream_open(NULL, a, 1, 0, &s), CHAN_EINVAL);
	CU_ASSERT_EQUAL(chan_stream_open(NULL, NULL, 1, 1, &s), CHAN_EINVAL);
	CU_ASSERT_EQUAL(chan_stream_open(NULL, a, 1, 1, NULL), CHAN_EINVAL);
	set[0] = a[0], set[1] = b[1];	/* two connections */
	CU_ASSERT_EQUAL(chan_stream_open(NULL, set, 2, 1, &s), CHAN_EINVAL);
	set[1] = NULL;
	CU_ASSERT_EQUAL(chan_stream_open(NULL, set, 2, 1, &s), CHAN_EINVAL);
	CU_ASSERT_EQUAL(s, NULL);
	/* refused by the server: the stream opens, its first recv says why */
	CU_ASSERT_EQUAL_FATAL(chan_conn_info(conn, &ci), CHAN_OK);
	CU_ASSERT_EQUAL_FATAL(chan_stream_open(NULL, a, 1, ci.max_stream_credit + 1, &s), CHAN_OK);
	CU_ASSERT_EQUAL(chan_stream_recv(s, NULL, NULL, NULL), CHAN_ELIMIT);
	chan_stream_free(s);
	CU_ASSERT_EQUAL_FATAL(chan_handle_new(&x, conn, "st.no-such"), CHAN_OK);
	CU_ASSERT_EQUAL_FATAL(chan_stream_open(NULL, &x, 1, 1, &s), CHAN_OK);
	CU_ASSERT_EQUAL(chan_stream_recv(s, NULL, NULL, NULL), CHAN_ENOTFOUND);
	chan_stream_free(s);
	set[0] = a[0], set[1] = a[0];
	CU_ASSERT_EQUAL_FATAL(chan_stream_open(NULL, set, 2, 1, &s), CHAN_OK);
	CU_ASSERT_EQUAL(chan_stream_recv(s, NULL, NULL, NULL), CHAN_EBADREQ);
	chan_stream_free(s);
	CU_ASSERT_EQUAL(chan_stream_recv(NULL, NULL, NULL, NULL), CHAN_EINVAL);
	chan_stream_free(NULL);
	CU_ASSERT_EQUAL(chan_ping(NULL, conn), CHAN_OK);	/* the connection goes on */
	CU_ASSERT(wait_receivers(a[1], 0));
	chan_free(x);
	free2(a);
	free2(b);
}

/* A stream and plain receivers on one channel: every value reaches exactly one of them. */
static void
test_exactly_once(void)
{
	enum { N = 3000 };
	chan_t *h[2];
	chan_stream_t *s;
	struct producer p;
	pthread_t t;
	static unsigned char seen[N];
	int got = 0;
	chan_value_t v;
	bool ok;

	memset(seen, 0, sizeof seen);
	make2("st.once", 8, h);
	CU_ASSERT_EQUAL_FATAL(chan_stream_open(NULL, &h[0], 1, 16, &s), CHAN_OK);
	p = (struct producer){ h[1], N, true, CHAN_OK };
	CU_ASSERT_FATAL(pthread_create(&t, NULL, produce, &p) == 0);
	for (;;) {
		int rc = got % 3 == 0 ? chan_try_recv(NULL, h[0], &v, &ok) : chan_stream_recv(s, &v, &ok, NULL);

		if (rc == CHAN_EWOULDBLOCK)
			continue;	/* bounded: the producer fills the channel */
		if (rc == CHAN_ECLOSED || (rc == CHAN_OK && !ok && got % 3 == 0))
			break;
		CU_ASSERT_EQUAL_FATAL(rc, CHAN_OK);
		if (!ok)
			continue;	/* the stream's close report; try_recv ends the loop */
		int i = atoi((const char *)v.data);

		CU_ASSERT_FATAL(i >= 0 && i < N);
		CU_ASSERT_EQUAL(seen[i], 0);
		seen[i] = 1;
		got++;
		chan_value_clear(&v);
	}
	pthread_join(t, NULL);
	CU_ASSERT_EQUAL(p.rc, CHAN_OK);
	/* what the stream took and the loop did not: drain it */
	while (chan_stream_recv(s, &v, &ok, NULL) == CHAN_OK && ok) {
		seen[atoi((const char *)v.data)] = 1;
		got++;
		chan_value_clear(&v);
	}
	CU_ASSERT_EQUAL(got, N);
	chan_stream_free(s);
	free2(h);
}

static void
register_suites(void)
{
	CU_pSuite s = test_suite("stream", suite_init, suite_clean);

	test_add(s, "conn info", test_info);
	test_add(s, "credit depth", test_credit_depth);
	test_add(s, "order and close", test_order_and_close);
	test_add(s, "several channels", test_several_channels);
	test_add(s, "cancel", test_cancel);
	test_add(s, "deadline", test_deadline);
	test_add(s, "cancel of a waiting stream", test_cancel_waiting);
	test_add(s, "stopped mid-stream", test_server_stopped);
	test_add(s, "deleted channel", test_deleted);
	test_add(s, "bad input", test_bad_input);
	test_add(s, "exactly once", test_exactly_once);
}

int
main(int argc, char **argv)
{
	return test_main(argc, argv, register_suites);
}
