/*
 * test_client_deadline.c: libchanclient calls that end without their
 * partner, against a real chand, part of test_client: deadlines kept by
 * the client and enforced by the server, a done context sending nothing,
 * cancellation from another thread (no waiter left, no value lost), and a
 * server stopped, killed or shut down in the middle of a call.
 *
 * SPDX-License-Identifier: BSD-2-Clause
 */
#include <pthread.h>
#include <signal.h>

#include "clienttest.h"
#include "synctest.h"

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

/*
 * A plain call (no context) and a cancellable one wait on one connection;
 * whichever came first leads its read and blocks in recv with no poll.
 * The cancelled call still ends at once (its CANCELED reply wakes the
 * read: the canceller wrote the CANCEL itself when its call led), and a
 * value then sent wakes the plain call with it.
 */
static void
cancel_beside_plain(bool plain_first)
{
	chan_conn_t *c = cs_dial_grace(10 * CHAN_SEC);
	chan_t *plain = NULL, *other = NULL;
	struct op_thread lead, o;
	chan_ctx_t *cx;
	int64_t t0;

	CU_ASSERT_EQUAL_FATAL(chan_make(NULL, c, "cx.plain", 0, &plain), CHAN_OK);
	CU_ASSERT_EQUAL_FATAL(chan_make(NULL, c, "cx.beside", 0, &other), CHAN_OK);
	CU_ASSERT_EQUAL_FATAL(chan_with_cancel(&cx, NULL), CHAN_OK);
	if (plain_first) {
		op_start(&lead, OP_T_RECV, NULL, plain);
		CU_ASSERT_FATAL(wait_waiters("cx.plain", 0, 1));
	}
	op_start(&o, OP_T_RECV, cx, other);
	CU_ASSERT_FATAL(wait_waiters("cx.beside", 0, 1));
	if (!plain_first) {
		op_start(&lead, OP_T_RECV, NULL, plain);
		CU_ASSERT_FATAL(wait_waiters("cx.plain", 0, 1));
	}
	t0 = chan_now();
	CU_ASSERT_EQUAL(chan_cancel(cx), CHAN_OK);
	CU_ASSERT_FATAL(op_join(&o));
	CU_ASSERT_EQUAL(o.rc, CHAN_ECANCELED);
	CU_ASSERT((o.end - t0) / CHAN_MSEC < 500);	/* at once, not after a tick or the 10 s grace */
	CU_ASSERT(wait_waiters("cx.beside", 0, 0));
	/* from here, on the same connection: the plain call, leading now, reads both replies */
	CU_ASSERT_EQUAL(chan_send(NULL, plain, "p", 1), CHAN_OK);
	CU_ASSERT_FATAL(op_join(&lead));
	CU_ASSERT_EQUAL(lead.rc, CHAN_OK);
	CU_ASSERT(lead.ok);
	chan_ctx_free(cx);
	chan_free(plain);
	chan_free(other);
	chan_conn_close(c);
}

static void
test_cancel_beside_plain_leader(void)
{
	cancel_beside_plain(true);
}

static void
test_cancel_leader_beside_plain(void)
{
	cancel_beside_plain(false);
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

/*
 * A cancel while the server is stopped: the call's thread waits in recv,
 * where only the server's CANCELED would wake it. The canceller does not
 * wait for the server, and the call still ends after the grace period
 * (its receive timeout, a quarter of the grace, wakes it), not never.
 */
static void
test_server_stopped_cancel(void)
{
	chan_conn_t *c = cs_dial_grace(200 * CHAN_MSEC);
	chan_t *ch = NULL;
	chan_ctx_t *cx;
	struct op_thread o;
	int64_t t0, took;
	bool joined;

	CU_ASSERT_EQUAL_FATAL(chan_make(NULL, c, "stopped.cancel", 0, &ch), CHAN_OK);
	CU_ASSERT_EQUAL_FATAL(chan_with_cancel(&cx, NULL), CHAN_OK);
	op_start(&o, OP_T_RECV, cx, ch);
	CU_ASSERT_FATAL(wait_waiters("stopped.cancel", 0, 1));
	CU_ASSERT_FATAL(kill(csuite.srv.pid, SIGSTOP) == 0);
	t0 = chan_now();
	CU_ASSERT_EQUAL(chan_cancel(cx), CHAN_OK);
	took = ms_since(t0);
	joined = op_join(&o);
	CU_ASSERT_FATAL(kill(csuite.srv.pid, SIGCONT) == 0);
	CU_ASSERT_FATAL(joined);
	CU_ASSERT(took < 100);
	CU_ASSERT_EQUAL(o.rc, CHAN_ECANCELED);
	/* no confirmation could come: the grace was waited in full, and not much more */
	CU_ASSERT((o.end - t0) / CHAN_MSEC >= 199 && (o.end - t0) / CHAN_MSEC < 2000);
	/* running again, the server acts on the CANCEL; its late CANCELED is dropped */
	CU_ASSERT(wait_waiters("stopped.cancel", 0, 0));
	CU_ASSERT_EQUAL(chan_ping(NULL, c), CHAN_OK);
	CU_ASSERT_EQUAL(chan_try_send(NULL, ch, "x", 1), CHAN_EWOULDBLOCK);
	chan_ctx_free(cx);
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

void
register_client_deadline(void)
{
	CU_pSuite s;

	s = test_suite("deadline", cs_suite_init, cs_suite_clean);
	test_add(s, "client", test_deadline_client);
	test_add(s, "server enforces wire budget", test_deadline_server);
	test_add(s, "done context sends nothing", test_done_ctx_sends_nothing);
	test_add(s, "cancel wakes at once", test_cancel_wakes);
	test_add(s, "cancel race keeps values", test_cancel_race_keeps_values);
	test_add(s, "cancel beside a plain call's read", test_cancel_beside_plain_leader);
	test_add(s, "cancel of the read's leader, a plain call beside", test_cancel_leader_beside_plain);

	s = test_suite("server gone", suite_init_noconn, cs_suite_clean);
	test_add(s, "stopped mid-call", test_server_stopped);
	test_add(s, "stopped mid-call, cancelled", test_server_stopped_cancel);
	test_add(s, "killed mid-call", test_server_killed);
	test_add(s, "shutdown mid-call", test_server_shutdown);
}
