/*
 * test_client_async_io.c: the connection's reading and writing under load,
 * part of test_client_async: a producer pipelining far more than the
 * socket buffers hold to a server that stops reading a client which does
 * not read (output_hwm), which must not deadlock; and the read token:
 * threads blocked on one connection read it one at a time
 * (leader/follower) and every one of them gets its reply, whoever reads it.
 *
 * SPDX-License-Identifier: BSD-2-Clause
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clienttest.h"
#include "asynctest.h"

#define DEADLOCK_BOUND_S 60		/* the pipelining tests' bound: a deadlock fails, not hangs */

/* ---- helpers ----------------------------------------------------------------------- */

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

void
register_client_async_io(void)
{
	CU_pSuite s;

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
