/*
 * test_client_links.c: libchanclient's links (chan_or ... chan_fan_out and
 * the chan_link_* handle) against a real chand ($CHAND).
 *
 * Every constructor with named and anonymous outputs; every way a link
 * stops as the client sees it (input closed, done channel, context cancel
 * with nobody waiting, chan_link_stop, chan_link_free, deadline, the
 * connection closing), each checked on the server's side: no waiter left
 * (chan_admin_waiters) and the outputs closed (chan_info). Waiting is on
 * conditions with a generous bound, never a bare sleep.
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

#include "chanclient.h"
#include "testutil.h"

#define BOUND_MS 5000

static struct test_server srv;
static char addr[64];
static chan_conn_t *conn;
static unsigned seq;

/* ---- helpers ------------------------------------------------------------------------- */

static int
suite_init(void)
{
	if (test_server_start(&srv, "workers = 4\n") < 0)
		return -1;
	snprintf(addr, sizeof addr, "tcp://127.0.0.1:%d", srv.port);
	return chan_dial(NULL, addr, NULL, &conn) == CHAN_OK ? 0 : -1;
}

static int
suite_clean(void)
{
	chan_conn_close(conn);
	return test_server_stop(&srv) == 0 ? 0 : -1;
}

static void
pause_1ms(void)
{
	struct timespec ts = { 0, 1000000 };

	nanosleep(&ts, NULL);
}

/* A fresh named channel. */
static chan_t *
make(const char *base, size_t cap)
{
	char name[64];
	chan_t *ch = NULL;

	snprintf(name, sizeof name, "cl.%s.%u", base, ++seq);
	CU_ASSERT_EQUAL_FATAL(chan_make(NULL, conn, name, cap, &ch), CHAN_OK);
	return ch;
}

static void
send_str(chan_t *ch, const char *s)
{
	CU_ASSERT_EQUAL(chan_send(NULL, ch, s, strlen(s)), CHAN_OK);
}

/* The next value of ch must be the bytes s. */
static void
expect_str(chan_t *ch, const char *s)
{
	chan_value_t v;
	bool ok = false;

	CU_ASSERT_EQUAL_FATAL(chan_recv(NULL, ch, &v, &ok), CHAN_OK);
	CU_ASSERT(ok);
	CU_ASSERT_EQUAL(v.kind, CHAN_VALUE_BYTES);
	if (v.kind == CHAN_VALUE_BYTES && strcmp(v.data, s) != 0)
		fprintf(stderr, "expected \"%s\", got \"%s\"\n", s, (char *)v.data);
	CU_ASSERT(v.kind == CHAN_VALUE_BYTES && strcmp(v.data, s) == 0);
	chan_value_clear(&v);
}

/* ch is closed and drained: a receive says ok = false at once. */
static void
expect_closed(chan_t *ch)
{
	chan_value_t v;
	bool ok = true;
	chan_ctx_t *ctx;

	CU_ASSERT_EQUAL_FATAL(chan_with_timeout(&ctx, NULL, BOUND_MS * CHAN_MSEC), CHAN_OK);
	CU_ASSERT_EQUAL(chan_recv(ctx, ch, &v, &ok), CHAN_OK);
	CU_ASSERT(!ok);
	CU_ASSERT_EQUAL(v.kind, CHAN_VALUE_NIL);
	chan_ctx_free(ctx);
}

/* Wait (bounded) until the server has no pending request at all: no link runs. */
static bool
await_no_waiters(void)
{
	int64_t t0 = chan_now();
	chan_waiter_t *w;
	size_t n, total = 1;

	while (chan_now() - t0 < BOUND_MS * CHAN_MSEC) {
		if (chan_admin_waiters(NULL, conn, 0, &w, &n, &total) == CHAN_OK)
			chan_admin_waiters_free(w, n);
		if (total == 0)
			return true;
		pause_1ms();
	}
	return false;
}

/* Wait (bounded) until WAITERS lists request id with op name op. */
static bool
await_link_listed(uint64_t id, const char *op)
{
	int64_t t0 = chan_now();
	chan_waiter_t *w;
	size_t n;
	bool found = false;

	while (!found && chan_now() - t0 < BOUND_MS * CHAN_MSEC) {
		if (chan_admin_waiters(NULL, conn, 0, &w, &n, NULL) != CHAN_OK)
			break;
		for (size_t i = 0; i < n; i++)
			found = found || (w[i].request == id && strcmp(w[i].op, op) == 0);
		chan_admin_waiters_free(w, n);
		if (!found)
			pause_1ms();
	}
	return found;
}

/* Wait (bounded) until the server shows receivers waiting on ch. */
static bool
await_receivers(chan_t *ch, size_t receivers)
{
	int64_t t0 = chan_now();
	chan_info_t i;

	while (chan_now() - t0 < BOUND_MS * CHAN_MSEC) {
		if (chan_info(NULL, ch, &i) == CHAN_OK && i.receivers == receivers)
			return true;
		pause_1ms();
	}
	return false;
}

static bool
is_closed(chan_t *ch)
{
	chan_info_t i;

	return chan_info(NULL, ch, &i) == CHAN_OK && i.closed;
}

/* The link has ended with want; its outputs closed, nothing left waiting. */
static void
expect_end(chan_link_t *link, int want, chan_t *out)
{
	uint64_t sent;

	CU_ASSERT_EQUAL(chan_link_wait(link, &sent), want);
	CU_ASSERT_EQUAL(chan_link_wait(link, NULL), want);	/* kept */
	if (out)
		CU_ASSERT(is_closed(out));
	CU_ASSERT(await_no_waiters());
}

/* ---- the links ------------------------------------------------------------------------ */

static void
test_or(void)
{
	chan_t *in[5], *out;
	chan_link_t *link;

	for (int i = 0; i < 5; i++)
		in[i] = make("or", 0);
	CU_ASSERT_EQUAL_FATAL(chan_or(NULL, in, 5, NULL, &link, &out), CHAN_OK);
	CU_ASSERT(chan_name(out)[0] == '~');	/* anonymous */
	CU_ASSERT(await_receivers(in[4], 1));
	CU_ASSERT(!is_closed(out));
	CU_ASSERT(await_link_listed(chan_link_id(link), "OR"));
	CU_ASSERT_EQUAL(chan_close(NULL, in[3]), CHAN_OK);
	expect_closed(out);
	expect_end(link, CHAN_OK, out);
	for (int i = 0; i < 5; i++) {
		CU_ASSERT(await_receivers(in[i], 0));
		chan_free(in[i]);
	}
	chan_free(out);
	chan_link_free(link);
}

static void
test_or_done_named(void)
{
	chan_link_opts_t o = { .out_name = { "cl.ordone.out" }, .out_cap = { 4 } };
	chan_t *in = make("ordone.in", 0), *out;
	chan_link_t *link;
	chan_info_t info;
	uint64_t sent;

	CU_ASSERT_EQUAL_FATAL(chan_or_done(NULL, in, &o, &link, &out), CHAN_OK);
	CU_ASSERT_STRING_EQUAL(chan_name(out), "cl.ordone.out");
	CU_ASSERT_EQUAL(chan_info(NULL, out, &info), CHAN_OK);
	CU_ASSERT_EQUAL(info.cap, 4);
	CU_ASSERT(!info.anonymous);
	send_str(in, "a");
	send_str(in, "b");
	CU_ASSERT_EQUAL(chan_close(NULL, in), CHAN_OK);
	expect_str(out, "a");
	expect_str(out, "b");
	expect_closed(out);
	CU_ASSERT_EQUAL(chan_link_wait(link, &sent), CHAN_OK);
	CU_ASSERT_EQUAL(sent, 2);
	CU_ASSERT(await_no_waiters());
	CU_ASSERT_EQUAL(chan_delete(NULL, out, NULL), CHAN_OK);
	chan_free(in);
	chan_free(out);
	chan_link_free(link);
}

static void
test_done_channel(void)
{
	chan_t *in = make("done.in", 0), *done = make("done", 0), *out;
	chan_link_opts_t o = { .done = done };
	chan_link_t *link;

	CU_ASSERT_EQUAL_FATAL(chan_or_done(NULL, in, &o, &link, &out), CHAN_OK);
	CU_ASSERT(await_receivers(done, 1));
	CU_ASSERT_EQUAL(chan_close(NULL, done), CHAN_OK);
	expect_end(link, CHAN_ECANCELED, out);
	CU_ASSERT(await_receivers(in, 0));
	chan_free(in);
	chan_free(done);
	chan_free(out);
	chan_link_free(link);
}

static void
test_tee(void)
{
	chan_t *in = make("tee.in", 3), *o1, *o2;
	chan_link_t *link;
	uint64_t sent;

	send_str(in, "1");
	send_str(in, "2");
	CU_ASSERT_EQUAL(chan_close(NULL, in), CHAN_OK);
	CU_ASSERT_EQUAL_FATAL(chan_tee(NULL, in, NULL, &link, &o1, &o2), CHAN_OK);
	CU_ASSERT_STRING_NOT_EQUAL(chan_name(o1), chan_name(o2));
	expect_str(o1, "1");
	expect_str(o2, "1");
	expect_str(o2, "2");
	expect_str(o1, "2");
	expect_closed(o1);
	expect_closed(o2);
	CU_ASSERT_EQUAL(chan_link_wait(link, &sent), CHAN_OK);
	CU_ASSERT_EQUAL(sent, 4);	/* each value twice */
	chan_free(in);
	chan_free(o1);
	chan_free(o2);
	chan_link_free(link);
}

/* bridge over three inner channels (one empty), and a bad value as an error value */
static void
test_bridge_error_value(void)
{
	chan_t *cc = make("bridge.cc", 8), *inner[3], *out;
	chan_link_t *link;
	chan_value_t v;
	bool ok = false;

	for (int i = 0; i < 3; i++)
		inner[i] = make("bridge.inner", 2);
	send_str(inner[0], "a0");
	send_str(inner[0], "a1");
	send_str(inner[2], "c0");
	for (int i = 0; i < 3; i++) {
		CU_ASSERT_EQUAL(chan_close(NULL, inner[i]), CHAN_OK);
		CU_ASSERT_EQUAL(chan_send_chan(NULL, cc, inner[i]), CHAN_OK);
	}
	send_str(cc, "not a channel");
	CU_ASSERT_EQUAL(chan_close(NULL, cc), CHAN_OK);
	CU_ASSERT_EQUAL_FATAL(chan_bridge(NULL, cc, NULL, &link, &out), CHAN_OK);
	expect_str(out, "a0");
	expect_str(out, "a1");
	expect_str(out, "c0");
	CU_ASSERT_EQUAL(chan_recv(NULL, out, &v, &ok), CHAN_OK);
	CU_ASSERT(ok);
	CU_ASSERT_EQUAL(v.kind, CHAN_VALUE_ERROR);
	CU_ASSERT(v.len > 0 && strlen(v.data) == v.len);
	chan_value_clear(&v);
	expect_closed(out);
	expect_end(link, CHAN_OK, out);
	for (int i = 0; i < 3; i++)
		chan_free(inner[i]);
	chan_free(cc);
	chan_free(out);
	chan_link_free(link);
}

static void
test_fan_in(void)
{
	chan_t *in[3], *out;
	chan_link_t *link;
	int seen[3] = { 0 };
	uint64_t sent;

	for (int i = 0; i < 3; i++) {
		char v[8];

		in[i] = make("fanin", 2);
		snprintf(v, sizeof v, "%d", i);
		send_str(in[i], v);
		send_str(in[i], v);
		CU_ASSERT_EQUAL(chan_close(NULL, in[i]), CHAN_OK);
	}
	CU_ASSERT_EQUAL_FATAL(chan_fan_in(NULL, in, 3, NULL, &link, &out), CHAN_OK);
	for (int i = 0; i < 6; i++) {
		chan_value_t v;
		bool ok = false;

		CU_ASSERT_EQUAL_FATAL(chan_recv(NULL, out, &v, &ok), CHAN_OK);
		CU_ASSERT_FATAL(ok && v.kind == CHAN_VALUE_BYTES && v.len == 1);
		seen[((char *)v.data)[0] - '0']++;
		chan_value_clear(&v);
	}
	CU_ASSERT(seen[0] == 2 && seen[1] == 2 && seen[2] == 2);
	expect_closed(out);
	CU_ASSERT_EQUAL(chan_link_wait(link, &sent), CHAN_OK);
	CU_ASSERT_EQUAL(sent, 6);
	for (int i = 0; i < 3; i++)
		chan_free(in[i]);
	chan_free(out);
	chan_link_free(link);
}

/* take(repeat("a", "b"), 5), then chan_link_stop ends the endless repeat */
static void
test_repeat_take_stop(void)
{
	chan_value_t vals[2] = { { .kind = CHAN_VALUE_BYTES, .data = (void *)"a", .len = 1 },
	    { .kind = CHAN_VALUE_BYTES, .data = (void *)"b", .len = 1 } };
	chan_link_t *rep, *take;
	chan_t *rout, *tout;
	uint64_t sent;

	CU_ASSERT_EQUAL_FATAL(chan_repeat(NULL, conn, vals, 2, NULL, &rep, &rout), CHAN_OK);
	CU_ASSERT_EQUAL_FATAL(chan_take(NULL, rout, 5, NULL, &take, &tout), CHAN_OK);
	expect_str(tout, "a");
	expect_str(tout, "b");
	expect_str(tout, "a");
	expect_str(tout, "b");
	expect_str(tout, "a");
	expect_closed(tout);
	CU_ASSERT_EQUAL(chan_link_wait(take, &sent), CHAN_OK);
	CU_ASSERT_EQUAL(sent, 5);
	CU_ASSERT(await_link_listed(chan_link_id(rep), "REPEAT"));
	CU_ASSERT_EQUAL(chan_link_stop(rep), CHAN_OK);
	expect_end(rep, CHAN_ECANCELED, rout);
	CU_ASSERT_EQUAL(chan_link_stop(rep), CHAN_OK);	/* harmless once ended */
	chan_free(rout);
	chan_free(tout);
	chan_link_free(take);
	chan_link_free(rep);
}

/* ---- lifetime --------------------------------------------------------------------------- */

/* Cancelling the context stops the link with nobody waiting on it. */
static void
test_cancel_ctx(void)
{
	chan_t *in = make("cancel.in", 0), *out;
	chan_link_t *link;
	chan_ctx_t *ctx;

	CU_ASSERT_EQUAL_FATAL(chan_with_cancel(&ctx, NULL), CHAN_OK);
	CU_ASSERT_EQUAL_FATAL(chan_or_done(ctx, in, NULL, &link, &out), CHAN_OK);
	CU_ASSERT(await_receivers(in, 1));
	CU_ASSERT_EQUAL(chan_cancel(ctx), CHAN_OK);
	chan_ctx_free(ctx);
	CU_ASSERT(await_no_waiters());	/* before anyone waits on the link */
	CU_ASSERT(await_receivers(in, 0));
	CU_ASSERT(is_closed(out));
	CU_ASSERT_EQUAL(chan_link_wait(link, NULL), CHAN_ECANCELED);
	chan_free(in);
	chan_free(out);
	chan_link_free(link);
}

static void *
cancel_later(void *arg)
{
	await_receivers(arg, 1);
	return NULL;
}

/* chan_link_wait blocked in one thread; cancel from another wakes it. */
static void
test_cancel_while_waiting(void)
{
	chan_t *in = make("cancelw.in", 0), *out;
	chan_link_t *link;
	chan_ctx_t *ctx;
	pthread_t t;
	int64_t t0;

	CU_ASSERT_EQUAL_FATAL(chan_with_cancel(&ctx, NULL), CHAN_OK);
	CU_ASSERT_EQUAL_FATAL(chan_or_done(ctx, in, NULL, &link, &out), CHAN_OK);
	CU_ASSERT_FATAL(pthread_create(&t, NULL, cancel_later, in) == 0);
	pthread_join(t, NULL);
	t0 = chan_now();
	chan_cancel(ctx);
	CU_ASSERT_EQUAL(chan_link_wait(link, NULL), CHAN_ECANCELED);
	CU_ASSERT(chan_now() - t0 < BOUND_MS * CHAN_MSEC);
	CU_ASSERT(is_closed(out));
	CU_ASSERT(await_no_waiters());
	chan_ctx_free(ctx);
	chan_free(in);
	chan_free(out);
	chan_link_free(link);
}

static void
test_deadline(void)
{
	chan_t *in = make("deadline.in", 0), *out;
	chan_link_t *link;
	chan_ctx_t *ctx;
	int64_t t0 = chan_now();

	CU_ASSERT_EQUAL_FATAL(chan_with_timeout(&ctx, NULL, 200 * CHAN_MSEC), CHAN_OK);
	CU_ASSERT_EQUAL_FATAL(chan_or_done(ctx, in, NULL, &link, &out), CHAN_OK);
	chan_ctx_free(ctx);		/* the link holds its own reference */
	expect_end(link, CHAN_EDEADLINE, out);
	CU_ASSERT(chan_now() - t0 >= 190 * CHAN_MSEC);
	CU_ASSERT(chan_now() - t0 < BOUND_MS * CHAN_MSEC);
	CU_ASSERT(await_receivers(in, 0));
	chan_free(in);
	chan_free(out);
	chan_link_free(link);
}

static void
test_free_stops(void)
{
	chan_t *in = make("free.in", 0), *out;
	chan_link_t *link;

	CU_ASSERT_EQUAL_FATAL(chan_or_done(NULL, in, NULL, &link, &out), CHAN_OK);
	CU_ASSERT(await_receivers(in, 1));
	chan_link_free(link);
	CU_ASSERT(await_no_waiters());
	CU_ASSERT(await_receivers(in, 0));
	expect_closed(out);
	chan_free(in);
	chan_free(out);
}

/* The link's connection closes: the server stops it, wait says so. */
static void
test_conn_closed(void)
{
	chan_conn_t *c2;
	chan_t *in = make("connclose.in", 0), *in2, *out;
	chan_link_t *link;

	CU_ASSERT_EQUAL_FATAL(chan_dial(NULL, addr, NULL, &c2), CHAN_OK);
	CU_ASSERT_EQUAL_FATAL(chan_open(NULL, c2, chan_name(in), &in2), CHAN_OK);
	CU_ASSERT_EQUAL_FATAL(chan_or_done(NULL, in2, NULL, &link, &out), CHAN_OK);
	CU_ASSERT(await_receivers(in, 1));
	chan_conn_close(c2);
	CU_ASSERT_EQUAL(chan_link_wait(link, NULL), CHAN_ENOTCONN);
	CU_ASSERT(await_no_waiters());
	CU_ASSERT(await_receivers(in, 0));
	chan_link_free(link);
	chan_free(out);
	chan_free(in2);
	chan_free(in);
}

static void
test_errors(void)
{
	chan_t *in = make("err.in", 0), *ghost, *out = NULL, *other;
	chan_conn_t *c2;
	chan_link_t *link = NULL;
	chan_ctx_t *ctx;
	chan_link_opts_t o = { .out_name = { "cl.err.out" }, .out_cap = { 1 } };

	CU_ASSERT_EQUAL(chan_or_done(NULL, NULL, NULL, &link, &out), CHAN_EINVAL);
	CU_ASSERT_EQUAL(chan_or_done(NULL, in, NULL, NULL, &out), CHAN_EINVAL);
	CU_ASSERT_EQUAL(chan_or(NULL, &in, 0, NULL, &link, &out), CHAN_EINVAL);
	CU_ASSERT_EQUAL(chan_repeat(NULL, conn, NULL, 1, NULL, &link, &out), CHAN_EINVAL);
	CU_ASSERT_EQUAL(chan_fan_out(NULL, in, "identity", 0, false, NULL, &link, &out), CHAN_EINVAL);
	CU_ASSERT_EQUAL(chan_handle_new(&ghost, conn, "cl.no.such"), CHAN_OK);
	CU_ASSERT_EQUAL(chan_or_done(NULL, ghost, NULL, &link, &out), CHAN_ENOTFOUND);
	CU_ASSERT_EQUAL(chan_fan_out(NULL, in, "no-such-stage", 1, false, NULL, &link, &out),
	    CHAN_ENOTFOUND);
	CU_ASSERT_EQUAL(chan_fan_out(NULL, in, "identity", 1000, false, NULL, &link, &out),
	    CHAN_ELIMIT);
	/* a named output that exists with another cap */
	CU_ASSERT_EQUAL_FATAL(chan_make(NULL, conn, "cl.err.out", 3, &other), CHAN_OK);
	CU_ASSERT_EQUAL(chan_or_done(NULL, in, &o, &link, &out), CHAN_EEXISTS);
	/* channels on two connections */
	CU_ASSERT_EQUAL_FATAL(chan_dial(NULL, addr, NULL, &c2), CHAN_OK);
	o = (chan_link_opts_t){ .done = in };
	CU_ASSERT_EQUAL(chan_repeat(NULL, c2, &(chan_value_t){ .kind = CHAN_VALUE_BYTES, .data = (void *)"x",
	    .len = 1 }, 1, &o, &link, &out), CHAN_EINVAL);
	chan_conn_close(c2);
	/* a context already done sends nothing */
	CU_ASSERT_EQUAL_FATAL(chan_with_cancel(&ctx, NULL), CHAN_OK);
	chan_cancel(ctx);
	CU_ASSERT_EQUAL(chan_or_done(ctx, in, NULL, &link, &out), CHAN_ECANCELED);
	chan_ctx_free(ctx);
	CU_ASSERT_PTR_NULL(link);
	CU_ASSERT_PTR_NULL(out);
	CU_ASSERT(await_no_waiters());
	CU_ASSERT_EQUAL(chan_link_wait(NULL, NULL), CHAN_EINVAL);
	CU_ASSERT_EQUAL(chan_link_stop(NULL), CHAN_EINVAL);
	chan_link_free(NULL);
	chan_delete(NULL, other, NULL);
	chan_free(other);
	chan_free(ghost);
	chan_free(in);
}

/* ---- fan-out jobs -------------------------------------------------------------------- */

/* Numbers 2..199 into a buffered input, closed. */
static chan_t *
numbers_in(void)
{
	chan_t *in = make("fanout.in", 256);
	char buf[8];

	for (int v = 2; v < 200; v++) {
		snprintf(buf, sizeof buf, "%d", v);
		send_str(in, buf);
	}
	CU_ASSERT_EQUAL(chan_close(NULL, in), CHAN_OK);
	return in;
}

static int
cmp_long(const void *a, const void *b)
{
	long x = *(const long *)a, y = *(const long *)b;

	return (x > y) - (x < y);
}

static void
fan_out_primes(bool ordered)
{
	static const long want[] = { 2, 3, 5, 7, 11, 13, 17, 19, 23, 29, 31, 37, 41, 43, 47, 53,
	    59, 61, 67, 71, 73, 79, 83, 89, 97, 101, 103, 107, 109, 113, 127, 131, 137, 139, 149,
	    151, 157, 163, 167, 173, 179, 181, 191, 193, 197, 199 };
	chan_t *in = numbers_in(), *out;
	chan_link_t *link;
	long got[64];
	size_t n = 0;
	uint64_t sent;
	chan_value_t v;
	bool ok;

	CU_ASSERT_EQUAL_FATAL(chan_fan_out(NULL, in, "isprime", 4, ordered, NULL, &link, &out),
	    CHAN_OK);
	while (chan_recv(NULL, out, &v, &ok) == CHAN_OK && ok && n < 64) {
		CU_ASSERT_EQUAL(v.kind, CHAN_VALUE_BYTES);
		got[n++] = strtol(v.data, NULL, 10);
		chan_value_clear(&v);
	}
	CU_ASSERT_EQUAL_FATAL(n, sizeof want / sizeof want[0]);
	if (!ordered)
		qsort(got, n, sizeof got[0], cmp_long);
	CU_ASSERT(memcmp(got, want, sizeof want) == 0);
	CU_ASSERT_EQUAL(chan_link_wait(link, &sent), CHAN_OK);
	CU_ASSERT_EQUAL(sent, n);
	CU_ASSERT(await_no_waiters());
	chan_free(in);
	chan_free(out);
	chan_link_free(link);
}

static void test_fan_out_ordered(void) { fan_out_primes(true); }
static void test_fan_out_unordered(void) { fan_out_primes(false); }

static void
test_fan_out_sha256(void)
{
	static const uint8_t abc[32] = {
		0xba, 0x78, 0x16, 0xbf, 0x8f, 0x01, 0xcf, 0xea, 0x41, 0x41, 0x40, 0xde, 0x5d, 0xae, 0x22, 0x23,
		0xb0, 0x03, 0x61, 0xa3, 0x96, 0x17, 0x7a, 0x9c, 0xb4, 0x10, 0xff, 0x61, 0xf2, 0x00, 0x15, 0xad,
	};
	chan_link_opts_t o = { .out_name = { "cl.sha.out" }, .out_cap = { 8 } };
	chan_t *in = make("sha.in", 4), *out;
	chan_link_t *link;
	chan_value_t v;
	bool ok = false;

	for (int i = 0; i < 3; i++)
		send_str(in, "abc");
	CU_ASSERT_EQUAL(chan_close(NULL, in), CHAN_OK);
	CU_ASSERT_EQUAL_FATAL(chan_fan_out(NULL, in, "sha256", 2, true, &o, &link, &out), CHAN_OK);
	for (int i = 0; i < 3; i++) {
		CU_ASSERT_EQUAL_FATAL(chan_recv(NULL, out, &v, &ok), CHAN_OK);
		CU_ASSERT(ok && v.kind == CHAN_VALUE_BYTES && v.len == 32 && memcmp(v.data, abc, 32) == 0);
		chan_value_clear(&v);
	}
	expect_closed(out);
	expect_end(link, CHAN_OK, out);
	chan_delete(NULL, out, NULL);
	chan_free(in);
	chan_free(out);
	chan_link_free(link);
}

/* A stage error reaches the receiver as CHAN_VALUE_ERROR; the job goes on. */
static void
test_stage_error_value(void)
{
	chan_t *in = make("stageerr.in", 4), *out;
	chan_link_t *link;
	chan_case_t cs[1];
	uint64_t sent;

	send_str(in, "7");
	send_str(in, "hello");
	send_str(in, "11");
	CU_ASSERT_EQUAL(chan_close(NULL, in), CHAN_OK);
	CU_ASSERT_EQUAL_FATAL(chan_fan_out(NULL, in, "isprime", 1, true, NULL, &link, &out), CHAN_OK);
	expect_str(out, "7");
	cs[0] = (chan_case_t){ .dir = CHAN_DIR_RECV, .ch = out };	/* select sees it too */
	CU_ASSERT_EQUAL(chan_select(NULL, cs, 1, false), 0);
	CU_ASSERT(cs[0].ok);
	CU_ASSERT_EQUAL(cs[0].value.kind, CHAN_VALUE_ERROR);
	CU_ASSERT_PTR_NOT_NULL(cs[0].value.data ? strstr(cs[0].value.data, "isprime") : NULL);
	chan_value_clear(&cs[0].value);
	expect_str(out, "11");
	expect_closed(out);
	CU_ASSERT_EQUAL(chan_link_wait(link, &sent), CHAN_OK);
	CU_ASSERT_EQUAL(sent, 3);
	chan_free(in);
	chan_free(out);
	chan_link_free(link);
}

static void
register_suites(void)
{
	CU_pSuite s = test_suite("links", suite_init, suite_clean);

	test_add(s, "or: the 4th of 5 closes", test_or);
	test_add(s, "or-done: named buffered output", test_or_done_named);
	test_add(s, "done channel stops a link", test_done_channel);
	test_add(s, "tee: both outputs, sent twice", test_tee);
	test_add(s, "bridge: inner channels, error value", test_bridge_error_value);
	test_add(s, "fan-in of 3", test_fan_in);
	test_add(s, "take(repeat), chan_link_stop", test_repeat_take_stop);
	test_add(s, "context cancel, nobody waiting", test_cancel_ctx);
	test_add(s, "context cancel wakes chan_link_wait", test_cancel_while_waiting);
	test_add(s, "context deadline", test_deadline);
	test_add(s, "chan_link_free stops a running link", test_free_stops);
	test_add(s, "connection closed", test_conn_closed);
	test_add(s, "errors", test_errors);
	test_add(s, "fan-out isprime ordered", test_fan_out_ordered);
	test_add(s, "fan-out isprime unordered", test_fan_out_unordered);
	test_add(s, "fan-out sha256, named output", test_fan_out_sha256);
	test_add(s, "stage error value", test_stage_error_value);
}

int
main(int argc, char **argv)
{
	return test_main(argc, argv, register_suites);
}
