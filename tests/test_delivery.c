/*
 * test_delivery.c: ack channels (PROTOCOL.md §16) through libchanclient
 * against a real chand: delivery options on MAKE, tags and counts, ACK,
 * NACK with a delay, TOUCH, ack_wait expiry, redelivery at the head, dead
 * letters, disconnects, close while values are in flight, streams, and
 * every bad tag. Every wait is a blocking receive or a polled condition
 * with a generous bound; times are only checked as lower bounds (a value
 * must not come back before its ack_wait or delay).
 *
 * SPDX-License-Identifier: BSD-2-Clause
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <msgpack.h>

#include "clienttest.h"
#include "srvtest.h"

#define LONG_NS (10 * CHAN_SEC)		/* budget of a receive that must succeed */

static chan_t *
mk(chan_conn_t *c, const char *name, size_t cap, int64_t ack_wait_ns, uint32_t max_deliver,
    const char *dead_letter)
{
	chan_delivery_opts_t o = CHAN_DELIVERY_OPTS_INIT;
	chan_t *ch = NULL;

	o.ack_wait_ns = ack_wait_ns;
	o.max_deliver = max_deliver;
	o.dead_letter = dead_letter;
	CU_ASSERT_EQUAL_FATAL(chan_make_opts(NULL, c, name, cap, &o, &ch), CHAN_OK);
	return ch;
}

static chan_t *
handle(chan_conn_t *c, const char *name)
{
	chan_t *ch = NULL;

	CU_ASSERT_EQUAL_FATAL(chan_handle_new(&ch, c, name), CHAN_OK);
	return ch;
}

static void
send_s(chan_t *ch, const char *s)
{
	CU_ASSERT_EQUAL(chan_send(NULL, ch, s, strlen(s)), CHAN_OK);
}

/* Receive a value (bounded) into *m. */
static void
recv_any(chan_t *ch, chan_msg_t *m)
{
	chan_ctx_t *ctx;
	bool ok = false;

	chan_with_timeout(&ctx, NULL, LONG_NS);
	CU_ASSERT_EQUAL_FATAL(chan_recv_msg(ctx, ch, m, &ok), CHAN_OK);
	chan_ctx_free(ctx);
	CU_ASSERT_FATAL(ok);
}

/* Receive (bounded) into *m, which must be want with delivery count count. */
static void
recv_is(chan_t *ch, const char *want, uint32_t count, chan_msg_t *m)
{
	recv_any(ch, m);
	CU_ASSERT_EQUAL(m->value.len, strlen(want));
	CU_ASSERT(m->value.len == strlen(want) && memcmp(m->value.data, want, m->value.len) == 0);
	CU_ASSERT(m->tag != 0);
	CU_ASSERT_EQUAL(m->count, count);
}

static chan_info_t
info(chan_t *ch)
{
	chan_info_t i;

	memset(&i, 0, sizeof i);
	CU_ASSERT_EQUAL(chan_info(NULL, ch, &i), CHAN_OK);
	return i;
}

static uint64_t
stat(const char *key)
{
	chan_stat_t *st = NULL;
	size_t n = 0;
	uint64_t v = UINT64_MAX;

	CU_ASSERT_EQUAL_FATAL(chan_admin_stats(NULL, csuite.conn, &st, &n), CHAN_OK);
	for (size_t i = 0; i < n; i++)
		if (strcmp(st[i].key, key) == 0)
			v = st[i].value;
	free(st);
	return v;
}

/* Nothing to receive now: the value is still in flight (or waiting out a delay). */
static void
nothing_now(chan_t *ch)
{
	chan_value_t v;
	bool ok;

	CU_ASSERT_EQUAL(chan_try_recv(NULL, ch, &v, &ok), CHAN_EWOULDBLOCK);
}

/* Poll until INFO's inflight is n (acks are posted: they land a little later). */
static bool
await_inflight(chan_t *ch, size_t n)
{
	for (int t = 0; t < BOUND_MS; t++) {
		if (info(ch).inflight == n)
			return true;
		pause_1ms();
	}
	return false;
}

static void
test_make_options(void)
{
	chan_delivery_opts_t o = CHAN_DELIVERY_OPTS_INIT;
	chan_t *ch = mk(csuite.conn, "d.make", 4, 2 * CHAN_SEC, 5, "d.make.dl"), *x = NULL;
	chan_info_t i = info(ch);

	CU_ASSERT_EQUAL(i.ack_wait_ns, 2 * CHAN_SEC);
	CU_ASSERT_EQUAL(i.inflight, 0);
	/* the same options open it; others, or none, are EXISTS */
	o.ack_wait_ns = 2 * CHAN_SEC;
	o.dead_letter = "d.make.dl";
	CU_ASSERT_EQUAL(chan_make_opts(NULL, csuite.conn, "d.make", 4, &o, &x), CHAN_OK);
	chan_free(x);
	o.max_deliver = 6;
	CU_ASSERT_EQUAL(chan_make_opts(NULL, csuite.conn, "d.make", 4, &o, &x), CHAN_EEXISTS);
	o.max_deliver = 5;
	o.dead_letter = NULL;
	CU_ASSERT_EQUAL(chan_make_opts(NULL, csuite.conn, "d.make", 4, &o, &x), CHAN_EEXISTS);
	CU_ASSERT_EQUAL(chan_make(NULL, csuite.conn, "d.make", 4, &x), CHAN_EEXISTS);
	CU_ASSERT_EQUAL(chan_make(NULL, csuite.conn, "d.plain", 4, &x), CHAN_OK);
	chan_free(x);
	CU_ASSERT_EQUAL(chan_make_opts(NULL, csuite.conn, "d.plain", 4, &o, &x), CHAN_EEXISTS);
	/* the plain channel's INFO has no delivery fields */
	x = handle(csuite.conn, "d.plain");
	CU_ASSERT_EQUAL(info(x).ack_wait_ns, 0);
	chan_free(x);
	/* bad options: anonymous, its own dead letter, no ack_wait */
	CU_ASSERT_EQUAL(chan_make_opts(NULL, csuite.conn, NULL, 4, &o, &x), CHAN_EBADREQ);
	o.dead_letter = "d.self";
	CU_ASSERT_EQUAL(chan_make_opts(NULL, csuite.conn, "d.self", 4, &o, &x), CHAN_EBADREQ);
	o.ack_wait_ns = 0;
	CU_ASSERT_EQUAL(chan_make_opts(NULL, csuite.conn, "d.zero", 4, &o, &x), CHAN_EINVAL);
	chan_free(ch);
}

static void
test_tag_ack_len(void)
{
	chan_t *ch = mk(csuite.conn, "d.ack", 4, 30 * CHAN_SEC, 5, NULL);
	chan_info_t *list = NULL;
	chan_msg_t m, m2;
	size_t len = 9, n = 0;
	uint64_t acked = stat("acked");

	send_s(ch, "one");
	send_s(ch, "two");
	recv_is(ch, "one", 1, &m);
	recv_is(ch, "two", 1, &m2);
	CU_ASSERT(m2.tag > m.tag);
	/* in flight: LEN counts them, cap does not limit them */
	CU_ASSERT_EQUAL(chan_len(NULL, ch, &len), CHAN_OK);
	CU_ASSERT_EQUAL(len, 2);
	CU_ASSERT_EQUAL(info(ch).inflight, 2);
	/* CHANNELS lists it as INFO shows it */
	CU_ASSERT_EQUAL(chan_admin_channels(NULL, csuite.conn, "d.ack", 0, &list, &n, NULL), CHAN_OK);
	CU_ASSERT_FATAL(n == 1);
	CU_ASSERT(list[0].len == 2 && list[0].inflight == 2 && list[0].ack_wait_ns == 30 * CHAN_SEC);
	free(list);
	CU_ASSERT_EQUAL(chan_ack_n(NULL, ch, (uint64_t[]){ m.tag, m2.tag }, 2), CHAN_OK);
	CU_ASSERT_EQUAL(info(ch).inflight, 0);
	CU_ASSERT_EQUAL(chan_len(NULL, ch, &len), CHAN_OK);
	CU_ASSERT_EQUAL(len, 0);
	CU_ASSERT_EQUAL(stat("acked"), acked + 2);
	/* a posted ACK lands with the next request */
	chan_msg_clear(&m2);
	send_s(ch, "three");
	recv_is(ch, "three", 1, &m2);
	CU_ASSERT_EQUAL(chan_ack(ch, &m2), CHAN_OK);
	CU_ASSERT_EQUAL(chan_ping(NULL, csuite.conn), CHAN_OK);
	CU_ASSERT(await_inflight(ch, 0));
	chan_msg_clear(&m);
	chan_msg_clear(&m2);
	chan_free(ch);
}

static void
test_bad_tags(void)
{
	chan_conn_t *b = cs_dial(NULL);
	chan_t *ch = mk(csuite.conn, "d.bad", 4, 30 * CHAN_SEC, 5, NULL), *bch = handle(b, "d.bad");
	chan_t *plain = NULL;
	chan_msg_t m, pm, other = { .tag = 0 }, alone;
	bool ok = false;

	send_s(ch, "v");
	recv_is(ch, "v", 1, &m);
	/*
	 * another connection's tag (a tag alone goes by the handle's
	 * connection): PERMISSION_DENIED for all three, and it stays in flight
	 */
	alone = (chan_msg_t){ .tag = m.tag };
	CU_ASSERT_EQUAL(chan_ack_n(NULL, bch, &m.tag, 1), CHAN_EPERM);
	CU_ASSERT_EQUAL(chan_nack(NULL, bch, &alone, 0), CHAN_EPERM);
	CU_ASSERT_EQUAL(chan_touch(NULL, bch, &alone), CHAN_EPERM);
	CU_ASSERT_EQUAL(info(ch).inflight, 1);
	/* the message itself knows its connection, whichever handle it is given with */
	CU_ASSERT_PTR_EQUAL(m.conn, csuite.conn);
	CU_ASSERT_EQUAL(chan_touch(NULL, bch, &m), CHAN_OK);
	nothing_now(bch);
	/* a tag never issued */
	other.tag = m.tag + 1000000;
	CU_ASSERT_EQUAL(chan_ack_n(NULL, ch, &other.tag, 1), CHAN_ENOTFOUND);
	CU_ASSERT_EQUAL(chan_nack(NULL, ch, &other, 0), CHAN_ENOTFOUND);
	CU_ASSERT_EQUAL(chan_touch(NULL, ch, &other), CHAN_ENOTFOUND);
	/* a batch with a bad tag acks the good one all the same */
	CU_ASSERT_EQUAL(chan_ack_n(NULL, ch, (uint64_t[]){ other.tag, m.tag }, 2), CHAN_ENOTFOUND);
	CU_ASSERT_EQUAL(info(ch).inflight, 0);
	/* already acked */
	CU_ASSERT_EQUAL(chan_ack_n(NULL, ch, &m.tag, 1), CHAN_ENOTFOUND);
	CU_ASSERT_EQUAL(chan_touch(NULL, ch, &m), CHAN_ENOTFOUND);
	CU_ASSERT_EQUAL(chan_nack(NULL, ch, &m, 0), CHAN_ENOTFOUND);
	nothing_now(ch);
	/* a plain channel's value has no tag: nothing to ack */
	CU_ASSERT_EQUAL(chan_make(NULL, csuite.conn, "d.bad.plain", 1, &plain), CHAN_OK);
	send_s(plain, "p");
	CU_ASSERT_EQUAL(chan_recv_msg(NULL, plain, &pm, &ok), CHAN_OK);
	CU_ASSERT(ok);
	CU_ASSERT_EQUAL(pm.tag, 0);
	CU_ASSERT_EQUAL(pm.count, 0);
	CU_ASSERT_EQUAL(chan_ack(plain, &pm), CHAN_EINVAL);
	chan_msg_clear(&pm);
	CU_ASSERT_EQUAL(chan_ping(NULL, csuite.conn), CHAN_OK);	/* the connection goes on */
	chan_msg_clear(&m);
	chan_free(plain);
	chan_free(bch);
	chan_free(ch);
	chan_conn_close(b);
}

static void
test_ack_wait_expiry(void)
{
	chan_conn_t *b = cs_dial(NULL);
	chan_t *ch = mk(csuite.conn, "d.expiry", 0, 200 * CHAN_MSEC, 5, NULL), *bch = handle(b, "d.expiry");
	chan_op_t *op;
	chan_msg_t m, m2;
	int64_t t0;

	/* unbuffered: the send completes by rendezvous with the receive */
	CU_ASSERT_EQUAL_FATAL(chan_send_async(NULL, bch, "job", 3, &op), CHAN_OK);
	CU_ASSERT_EQUAL(chan_conn_flush(b), CHAN_OK);
	recv_is(ch, "job", 1, &m);
	CU_ASSERT_EQUAL(chan_op_wait(op, NULL, NULL), CHAN_OK);
	t0 = chan_now();
	/* not acked: it comes back after ack_wait, to the waiting receiver, count 2 */
	recv_is(bch, "job", 2, &m2);
	CU_ASSERT(chan_now() - t0 >= 150 * CHAN_MSEC);	/* not before its ack_wait (timer slack aside) */
	CU_ASSERT_EQUAL(info(ch).redelivered, 1);
	/* the first tag is over */
	CU_ASSERT_EQUAL(chan_ack_n(NULL, ch, &m.tag, 1), CHAN_ENOTFOUND);
	CU_ASSERT_EQUAL(chan_ack_n(NULL, bch, &m2.tag, 1), CHAN_OK);
	chan_msg_clear(&m);
	chan_msg_clear(&m2);
	chan_free(bch);
	chan_free(ch);
	chan_conn_close(b);
}

static void
test_touch(void)
{
	chan_conn_t *b = cs_dial(NULL);
	chan_t *ch = mk(csuite.conn, "d.touch", 1, 1000 * CHAN_MSEC, 5, NULL), *bch = handle(b, "d.touch");
	chan_msg_t m;
	int64_t t0;

	send_s(ch, "long job");
	recv_is(ch, "long job", 1, &m);
	t0 = chan_now();
	/*
	 * a job 2.2 ack_waits long, touched every 50 ms: never given back (an
	 * ack_wait of 1 s: a loaded CI machine's ASan build once took over 250 ms
	 * between two touches)
	 */
	while (chan_now() - t0 < 2200 * CHAN_MSEC) {
		CU_ASSERT_EQUAL_FATAL(chan_touch(NULL, ch, &m), CHAN_OK);
		nothing_now(bch);
		for (int i = 0; i < 50; i++)
			pause_1ms();
	}
	CU_ASSERT_EQUAL(info(ch).redelivered, 0);
	CU_ASSERT_EQUAL(chan_ack_n(NULL, ch, &m.tag, 1), CHAN_OK);
	nothing_now(bch);
	chan_msg_clear(&m);
	chan_free(bch);
	chan_free(ch);
	chan_conn_close(b);
}

static void
test_nack_delay(void)
{
	chan_conn_t *b = cs_dial(NULL);
	chan_t *ch = mk(csuite.conn, "d.nack", 4, 30 * CHAN_SEC, 5, NULL), *bch = handle(b, "d.nack");
	chan_msg_t m, m2;
	int64_t t0;

	send_s(ch, "n");
	recv_is(ch, "n", 1, &m);
	t0 = chan_now();
	CU_ASSERT_EQUAL(chan_nack(NULL, ch, &m, 300 * CHAN_MSEC), CHAN_OK);
	/* waiting out its delay: in flight, not receivable, its tag over */
	nothing_now(bch);
	CU_ASSERT_EQUAL(info(ch).inflight, 1);
	CU_ASSERT_EQUAL(chan_ack_n(NULL, ch, &m.tag, 1), CHAN_ENOTFOUND);
	recv_is(bch, "n", 2, &m2);
	CU_ASSERT(chan_now() - t0 >= 250 * CHAN_MSEC);
	/* NACK without delay: back at once */
	CU_ASSERT_EQUAL(chan_nack(NULL, bch, &m2, 0), CHAN_OK);
	chan_msg_clear(&m);
	recv_is(ch, "n", 3, &m);
	CU_ASSERT_EQUAL(chan_ack_n(NULL, ch, &m.tag, 1), CHAN_OK);
	CU_ASSERT_EQUAL(info(ch).redelivered, 2);
	chan_msg_clear(&m);
	chan_msg_clear(&m2);
	chan_free(bch);
	chan_free(ch);
	chan_conn_close(b);
}

static void
test_redelivered_first(void)
{
	chan_t *ch = mk(csuite.conn, "d.head", 3, 30 * CHAN_SEC, 5, NULL);
	chan_msg_t a, m;

	send_s(ch, "a");
	send_s(ch, "b");
	send_s(ch, "c");
	recv_is(ch, "a", 1, &a);
	/* the buffer is full again: a NACKed value still goes back, ahead of all */
	send_s(ch, "d");
	CU_ASSERT_EQUAL(chan_nack(NULL, ch, &a, 0), CHAN_OK);
	recv_is(ch, "a", 2, &m);
	chan_ack_n(NULL, ch, &m.tag, 1);
	chan_msg_clear(&m);
	for (const char *const *s = (const char *const[]){ "b", "c", "d", NULL }; *s; s++) {
		recv_is(ch, *s, 1, &m);
		chan_ack_n(NULL, ch, &m.tag, 1);
		chan_msg_clear(&m);
	}
	chan_msg_clear(&a);
	chan_free(ch);
}

/* The dead letter's map: channel, count, reason and the original value. */
static void
check_dead_letter(const chan_value_t *v, const char *chan, uint64_t count, const char *reason,
    const char *value)
{
	msgpack_unpacked u;
	int seen = 0;

	msgpack_unpacked_init(&u);
	CU_ASSERT_FATAL(v->kind == CHAN_VALUE_BYTES);
	CU_ASSERT_FATAL(msgpack_unpack_next(&u, v->data, v->len, NULL) == MSGPACK_UNPACK_SUCCESS);
	CU_ASSERT_FATAL(u.data.type == MSGPACK_OBJECT_MAP);
	for (uint32_t i = 0; i < u.data.via.map.size; i++) {
		msgpack_object *k = &u.data.via.map.ptr[i].key, *x = &u.data.via.map.ptr[i].val;
		const char *want = NULL;

#define KEY(s) (k->type == MSGPACK_OBJECT_STR && k->via.str.size == strlen(s) && \
	memcmp(k->via.str.ptr, s, strlen(s)) == 0)
		if (KEY("channel"))
			want = chan;
		else if (KEY("reason"))
			want = reason;
		if (want != NULL) {
			CU_ASSERT(x->type == MSGPACK_OBJECT_STR && x->via.str.size == strlen(want) &&
			    memcmp(x->via.str.ptr, want, strlen(want)) == 0);
			seen++;
		} else if (KEY("count")) {
			CU_ASSERT(x->type == MSGPACK_OBJECT_POSITIVE_INTEGER && x->via.u64 == count);
			seen++;
		} else if (KEY("value")) {
			CU_ASSERT(x->type == MSGPACK_OBJECT_BIN && x->via.bin.size == strlen(value) &&
			    memcmp(x->via.bin.ptr, value, strlen(value)) == 0);
			seen++;
		}
#undef KEY
	}
	CU_ASSERT_EQUAL(seen, 4);
	msgpack_unpacked_destroy(&u);
}

static void
test_dead_letter(void)
{
	chan_t *dl = NULL, *ch;
	chan_msg_t m, d;
	uint64_t dropped = stat("delivery_dropped");
	int64_t t0;

	CU_ASSERT_EQUAL_FATAL(chan_make(NULL, csuite.conn, "d.dead.dl", 4, &dl), CHAN_OK);
	ch = mk(csuite.conn, "d.dead", 4, 200 * CHAN_MSEC, 2, "d.dead.dl");
	send_s(ch, "poison");
	recv_is(ch, "poison", 1, &m);
	CU_ASSERT_EQUAL(chan_nack(NULL, ch, &m, 0), CHAN_OK);
	chan_msg_clear(&m);
	recv_is(ch, "poison", 2, &m);
	/* delivered max_deliver times: the next give-back (ack_wait here) dead-letters it */
	t0 = chan_now();
	recv_any(dl, &d);
	CU_ASSERT(chan_now() - t0 >= 150 * CHAN_MSEC);
	check_dead_letter(&d.value, "d.dead", 2, "ack_wait", "poison");
	CU_ASSERT_EQUAL(info(ch).dead_lettered, 1);
	CU_ASSERT_EQUAL(info(ch).inflight, 0);
	nothing_now(ch);
	chan_msg_clear(&m);
	chan_msg_clear(&d);
	/* no dead_letter: dropped, counted */
	chan_free(ch);
	ch = mk(csuite.conn, "d.dead.none", 4, 30 * CHAN_SEC, 1, NULL);
	send_s(ch, "x");
	recv_is(ch, "x", 1, &m);
	CU_ASSERT_EQUAL(chan_nack(NULL, ch, &m, 0), CHAN_OK);
	nothing_now(ch);
	CU_ASSERT_EQUAL(stat("delivery_dropped"), dropped + 1);
	CU_ASSERT(test_server_log_has(&csuite.srv, "delivery-dropped channel=d.dead.none count=1 reason=nack"));
	chan_msg_clear(&m);
	chan_free(ch);
	chan_free(dl);
}

static void
test_disconnect(void)
{
	chan_conn_t *b = cs_dial(NULL);
	chan_t *ch = mk(csuite.conn, "d.disc", 4, 30 * CHAN_SEC, 5, NULL), *bch = handle(b, "d.disc");
	chan_msg_t m, m2;

	send_s(ch, "x");
	send_s(ch, "y");
	recv_is(bch, "x", 1, &m);
	recv_is(bch, "y", 1, &m2);
	chan_msg_clear(&m);
	chan_msg_clear(&m2);
	chan_free(bch);
	chan_conn_close(b);
	/* both come back, oldest first, each counted as a second delivery */
	recv_is(ch, "x", 2, &m);
	recv_is(ch, "y", 2, &m2);
	CU_ASSERT_EQUAL(chan_ack_n(NULL, ch, (uint64_t[]){ m.tag, m2.tag }, 2), CHAN_OK);
	chan_msg_clear(&m);
	chan_msg_clear(&m2);
	chan_free(ch);
}

struct waiter_arg {
	chan_t *ch;
	chan_msg_t m;
	bool ok;
	int rc;
};

static void *
recv_thread(void *p)
{
	struct waiter_arg *w = p;
	chan_ctx_t *ctx;

	chan_with_timeout(&ctx, NULL, LONG_NS);
	w->rc = chan_recv_msg(ctx, w->ch, &w->m, &w->ok);
	chan_ctx_free(ctx);
	return NULL;
}

static void
test_close_in_flight(void)
{
	chan_conn_t *b = cs_dial(NULL);
	chan_t *ch = mk(csuite.conn, "d.close", 4, 30 * CHAN_SEC, 5, NULL);
	struct waiter_arg w = { .ch = handle(b, "d.close") };
	chan_msg_t m;
	pthread_t t;
	bool ok = true;

	send_s(ch, "last");
	CU_ASSERT_EQUAL(chan_close(NULL, ch), CHAN_OK);
	recv_is(ch, "last", 1, &m);
	/* closed and drained, but a value is in flight: a receiver waits for it */
	pthread_create(&t, NULL, recv_thread, &w);
	CU_ASSERT(wait_waiters("d.close", 0, 1));
	CU_ASSERT_EQUAL(chan_nack(NULL, ch, &m, 0), CHAN_OK);
	pthread_join(t, NULL);
	CU_ASSERT_EQUAL(w.rc, CHAN_OK);
	CU_ASSERT(w.ok);
	CU_ASSERT_EQUAL(w.m.count, 2);
	/* another waits again; the last ack gives it ok=false */
	chan_msg_clear(&m);
	m = w.m;
	memset(&w.m, 0, sizeof w.m);
	pthread_create(&t, NULL, recv_thread, &w);
	CU_ASSERT(wait_waiters("d.close", 0, 1));
	CU_ASSERT_EQUAL(chan_ack_n(NULL, w.ch, &m.tag, 1), CHAN_OK);
	pthread_join(t, NULL);
	CU_ASSERT_EQUAL(w.rc, CHAN_OK);
	CU_ASSERT(!w.ok);
	chan_msg_clear(&m);
	CU_ASSERT_EQUAL(chan_recv_msg(NULL, ch, &m, &ok), CHAN_OK);
	CU_ASSERT(!ok);
	chan_free(w.ch);
	chan_free(ch);
	chan_conn_close(b);
}

static void
test_stream_and_autoack(void)
{
	chan_t *ch = mk(csuite.conn, "d.stream", 8, 30 * CHAN_SEC, 5, NULL);
	chan_stream_t *s = NULL;
	chan_msg_t m;
	chan_value_t v;
	bool ok = false;

	send_s(ch, "s1");
	send_s(ch, "s2");
	CU_ASSERT_EQUAL_FATAL(chan_stream_open(NULL, &ch, 1, 2, &s), CHAN_OK);
	CU_ASSERT_EQUAL(chan_stream_recv_msg(s, &m, &ok, NULL), CHAN_OK);
	CU_ASSERT(ok && m.tag != 0 && m.count == 1 && m.value.len == 2 && memcmp(m.value.data, "s1", 2) == 0);
	CU_ASSERT_EQUAL(chan_ack(ch, &m), CHAN_OK);
	chan_msg_clear(&m);
	/* chan_stream_recv returns no tag: it acks */
	CU_ASSERT_EQUAL(chan_stream_recv(s, &v, &ok, NULL), CHAN_OK);
	CU_ASSERT(ok && v.len == 2 && memcmp(v.data, "s2", 2) == 0);
	chan_value_clear(&v);
	chan_stream_free(s);
	/* so does chan_recv (sent now: a stream takes ahead what it has credit for) */
	send_s(ch, "r1");
	CU_ASSERT_EQUAL(chan_recv(NULL, ch, &v, &ok), CHAN_OK);
	CU_ASSERT(ok && v.len == 2 && memcmp(v.data, "r1", 2) == 0);
	chan_value_clear(&v);
	CU_ASSERT_EQUAL(chan_conn_flush(csuite.conn), CHAN_OK);
	CU_ASSERT(await_inflight(ch, 0));
	CU_ASSERT_EQUAL(info(ch).redelivered, 0);
	chan_free(ch);
}

static void
test_unacked_limit(void)
{
	chan_conn_t *g = cs_dial(NULL);
	chan_delivery_opts_t o = CHAN_DELIVERY_OPTS_INIT;
	chan_t *ch = NULL, *gch;
	chan_op_t *op[4];
	chan_msg_t m[2], om;
	chan_value_t v;
	bool ok;

	o.max_unacked = 2;
	CU_ASSERT_EQUAL_FATAL(chan_make_opts(NULL, csuite.conn, "d.limit", 8, &o, &ch), CHAN_OK);
	gch = handle(g, "d.limit");
	/* a greedy consumer takes its two and pipelines four more receives */
	send_s(ch, "1");
	send_s(ch, "2");
	recv_is(gch, "1", 1, &m[0]);
	recv_is(gch, "2", 1, &m[1]);
	for (int i = 0; i < 4; i++)
		CU_ASSERT_EQUAL_FATAL(chan_recv_async(NULL, gch, &op[i]), CHAN_OK);
	/* PING's reply comes after the server has read the four (frames run in order) */
	CU_ASSERT_EQUAL(chan_ping(NULL, g), CHAN_OK);
	/* they wait outside the channel: a later receiver is served first */
	CU_ASSERT_EQUAL(info(ch).receivers, 0);
	send_s(ch, "3");
	recv_is(ch, "3", 1, &om);
	CU_ASSERT_EQUAL(chan_ack_n(NULL, ch, &om.tag, 1), CHAN_OK);
	CU_ASSERT_EQUAL(chan_try_recv(NULL, gch, &v, &ok), CHAN_EWOULDBLOCK);
	/* an ack makes room for exactly one of them */
	CU_ASSERT_EQUAL(chan_ack_n(NULL, gch, &m[0].tag, 1), CHAN_OK);
	CU_ASSERT(wait_waiters("d.limit", 0, 1));
	send_s(ch, "4");
	CU_ASSERT_EQUAL(chan_op_wait(op[0], &v, &ok), CHAN_OK);	/* chan_op_wait acks it */
	CU_ASSERT(ok && v.len == 1 && memcmp(v.data, "4", 1) == 0);
	chan_value_clear(&v);
	/* the auto-ack and the other ack make room for the rest */
	CU_ASSERT_EQUAL(chan_ack_n(NULL, gch, &m[1].tag, 1), CHAN_OK);
	send_s(ch, "5");
	send_s(ch, "6");
	send_s(ch, "7");
	for (int i = 1; i < 4; i++) {
		CU_ASSERT_EQUAL(chan_op_wait(op[i], &v, &ok), CHAN_OK);
		CU_ASSERT(ok && v.len == 1);
		chan_value_clear(&v);
	}
	CU_ASSERT_EQUAL(chan_conn_flush(g), CHAN_OK);
	CU_ASSERT(await_inflight(ch, 0));
	chan_msg_clear(&m[0]);
	chan_msg_clear(&m[1]);
	chan_msg_clear(&om);
	chan_free(gch);
	chan_free(ch);
	chan_conn_close(g);
}

/* The wire: a tagged value has two results more, a plain one is as before (§16). */
static void
test_wire_shape(void)
{
	struct proto_case pc[2] = { { .name = "d.wire.plain", .name_len = 12 },
	    { .name = "d.wire", .name_len = 6 } };
	chan_t *ch = mk(csuite.conn, "d.wire", 4, 30 * CHAN_SEC, 5, NULL), *plain = NULL;
	struct test_conn t;
	struct proto_reply r;
	chan_case_t cs[1] = { { .dir = CHAN_DIR_RECV, .ch = ch } };

	CU_ASSERT_EQUAL_FATAL(chan_make(NULL, csuite.conn, "d.wire.plain", 4, &plain), CHAN_OK);
	CU_ASSERT_FATAL(test_conn_open(&t, csuite.srv.port, true) == 0);
	send_s(plain, "p");
	send_s(ch, "a");
	send_s(ch, "b");
	st_recv(&t, "d.wire.plain", -1);
	st_reply(&t, OP_RECV, &r);
	CU_ASSERT(r.status == STATUS_OK && r.tag == 0 && r.ok);
	st_recv(&t, "d.wire", -1);
	st_reply(&t, OP_RECV, &r);
	CU_ASSERT(r.status == STATUS_OK && r.tag != 0 && r.count == 1 && ST_VALUE_IS(r, "a"));
	/* a SELECT receive case on an ack channel: index, value, true, tag, count */
	st_select(&t, pc, 2, false, -1);
	st_reply(&t, OP_SELECT, &r);
	CU_ASSERT(r.status == STATUS_OK && r.index == 1 && r.tag != 0 && ST_VALUE_IS(r, "b"));
	CU_ASSERT_EQUAL(info(ch).inflight, 2);
	test_conn_close(&t);	/* both come back */
	CU_ASSERT(await_inflight(ch, 0));
	CU_ASSERT_EQUAL(info(ch).redelivered, 2);
	/* chan_select returns no tag: it acks */
	CU_ASSERT_EQUAL(chan_select(NULL, cs, 1, false), 0);
	CU_ASSERT(cs[0].ok && cs[0].value.len == 1);
	chan_value_clear(&cs[0].value);
	CU_ASSERT_EQUAL(chan_select(NULL, cs, 1, false), 0);
	chan_value_clear(&cs[0].value);
	CU_ASSERT_EQUAL(chan_conn_flush(csuite.conn), CHAN_OK);
	CU_ASSERT(await_inflight(ch, 0));
	nothing_now(ch);
	chan_free(plain);
	chan_free(ch);
}

/* A stream over a channel with max_unacked gets only the credit there is room for. */
static void
test_unacked_limit_stream(void)
{
	chan_conn_t *g = cs_dial(NULL);
	chan_delivery_opts_t o = CHAN_DELIVERY_OPTS_INIT;
	chan_t *ch = NULL, *gch;
	chan_stream_t *s = NULL;
	chan_msg_t m[3], om;
	bool ok;

	o.max_unacked = 2;
	CU_ASSERT_EQUAL_FATAL(chan_make_opts(NULL, csuite.conn, "d.slimit", 8, &o, &ch), CHAN_OK);
	gch = handle(g, "d.slimit");
	for (int i = 0; i < 4; i++)
		send_s(ch, (const char *[]){ "1", "2", "3", "4" }[i]);
	/* credit 8, room for 2: the stream takes two and leaves the rest to others */
	CU_ASSERT_EQUAL_FATAL(chan_stream_open(NULL, &gch, 1, 8, &s), CHAN_OK);
	CU_ASSERT_EQUAL(chan_stream_recv_msg(s, &m[0], &ok, NULL), CHAN_OK);
	CU_ASSERT(ok && m[0].value.len == 1 && memcmp(m[0].value.data, "1", 1) == 0);
	CU_ASSERT_EQUAL(chan_stream_recv_msg(s, &m[1], &ok, NULL), CHAN_OK);
	CU_ASSERT(ok && memcmp(m[1].value.data, "2", 1) == 0);
	recv_is(ch, "3", 1, &om);	/* another consumer is served */
	CU_ASSERT_EQUAL(chan_ack_n(NULL, ch, &om.tag, 1), CHAN_OK);
	CU_ASSERT_EQUAL(info(ch).inflight, 2);
	/* an ack makes room for one more */
	CU_ASSERT_EQUAL(chan_ack_n(NULL, gch, &m[0].tag, 1), CHAN_OK);
	CU_ASSERT_EQUAL(chan_stream_recv_msg(s, &m[2], &ok, NULL), CHAN_OK);
	CU_ASSERT(ok && memcmp(m[2].value.data, "4", 1) == 0);
	CU_ASSERT_EQUAL(chan_ack_n(NULL, gch, (uint64_t[]){ m[1].tag, m[2].tag }, 2), CHAN_OK);
	chan_stream_free(s);
	CU_ASSERT(await_inflight(ch, 0));
	for (int i = 0; i < 3; i++)
		chan_msg_clear(&m[i]);
	chan_msg_clear(&om);
	chan_free(gch);
	chan_free(ch);
	chan_conn_close(g);
}

static void
test_plain_untouched(void)
{
	chan_t *ch = NULL;
	chan_info_t i;
	uint64_t inflight = stat("inflight");

	CU_ASSERT_EQUAL_FATAL(chan_make(NULL, csuite.conn, "d.plain2", 2, &ch), CHAN_OK);
	send_s(ch, "p");
	i = info(ch);
	CU_ASSERT_EQUAL(i.len, 1);
	CU_ASSERT_EQUAL(i.ack_wait_ns, 0);
	CU_ASSERT_EQUAL(stat("inflight"), inflight);
	chan_free(ch);
}

/*
 * The wire: an ack channel closed with an error while its value is in
 * flight. Receivers wait (no ok=false while the value may come back); the
 * NACKed value is redelivered tagged, with ok true and no error; only once
 * it is acked do receivers get ok=false and the error (RECV, SELECT).
 */
static void
test_close_err_in_flight(void)
{
	static const char name[] = "d.closeerr";
	struct proto_close_err err = { .set = true, .code = 7, .msg = "boom", .msg_len = 4 };
	struct proto_case pc = { .name = name, .name_len = sizeof name - 1 };
	chan_t *ch = mk(csuite.conn, name, 4, 30 * CHAN_SEC, 5, NULL);
	struct test_conn t, t2;
	struct proto_reply r;
	struct proto_out o;
	uint64_t tag;

	proto_out_init(&o);
	CU_ASSERT_FATAL(test_conn_open(&t, csuite.srv.port, true) == 0);
	CU_ASSERT_FATAL(test_conn_open(&t2, csuite.srv.port, true) == 0);
	send_s(ch, "v");
	st_recv(&t, name, -1);
	st_reply(&t, OP_RECV, &r);
	CU_ASSERT(r.status == STATUS_OK && r.ok && r.tag != 0 && r.count == 1 && ST_VALUE_IS(r, "v"));
	tag = r.tag;
	proto_req_close(&o, t.next_id++, PROTO_WAIT_FOREVER, name, sizeof name - 1, &err);
	st_write(&t, &o);
	st_reply(&t, OP_CLOSE, &r);
	CU_ASSERT_EQUAL(r.status, STATUS_OK);
	/* closed and drained, but the value may come back: no ok=false yet */
	st_recv(&t, name, 0);
	st_reply(&t, OP_RECV, &r);
	CU_ASSERT_EQUAL(r.status, STATUS_DEADLINE_EXCEEDED);
	st_recv(&t2, name, -1);
	CU_ASSERT(wait_waiters(name, 0, 1));
	proto_req_nack(&o, t.next_id++, tag, 0);
	st_write(&t, &o);
	st_reply(&t, OP_NACK, &r);
	CU_ASSERT_EQUAL(r.status, STATUS_OK);
	/* redelivered: tagged, count 2, ok true, no close error */
	st_reply(&t2, OP_RECV, &r);
	CU_ASSERT(r.status == STATUS_OK && r.ok && r.tag != 0 && r.count == 2 && ST_VALUE_IS(r, "v"));
	CU_ASSERT(!r.close_err.set);
	tag = r.tag;
	st_recv(&t, name, -1);
	CU_ASSERT(wait_waiters(name, 0, 1));
	proto_req_ack(&o, t2.next_id++, &tag, 1);
	st_write(&t2, &o);
	st_reply(&t2, OP_ACK, &r);
	CU_ASSERT(r.status == STATUS_OK && r.n == 1);
	/* the last value acked: the waiting receiver gets ok=false and the error */
	st_reply(&t, OP_RECV, &r);
	CU_ASSERT(r.status == STATUS_OK && !r.ok && r.tag == 0 && r.close_err.set);
	CU_ASSERT(r.close_err.code == 7 && r.close_err.msg_len == 4 &&
	    memcmp(r.close_err.msg, "boom", 4) == 0);
	st_recv(&t2, name, 0);
	st_reply(&t2, OP_RECV, &r);
	CU_ASSERT(r.status == STATUS_OK && !r.ok && r.close_err.set && r.close_err.code == 7);
	st_select(&t2, &pc, 1, false, -1);
	st_reply(&t2, OP_SELECT, &r);
	CU_ASSERT(r.status == STATUS_OK && r.index == 0 && !r.ok && r.close_err.set && r.tag == 0);
	CU_ASSERT_EQUAL(info(ch).inflight, 0);
	proto_out_destroy(&o);
	test_conn_close(&t2);
	test_conn_close(&t);
	chan_free(ch);
}

static void
register_suites(void)
{
	CU_pSuite s = test_suite("delivery", cs_suite_init, cs_suite_clean);

	test_add(s, "MAKE with delivery options, EXISTS, bad options", test_make_options);
	test_add(s, "tags, counts, ACK, LEN counts in flight", test_tag_ack_len);
	test_add(s, "unknown, acked, another connection's, plain: clear statuses", test_bad_tags);
	test_add(s, "ack_wait expiry redelivers to a waiting receiver", test_ack_wait_expiry);
	test_add(s, "TOUCH renews ack_wait", test_touch);
	test_add(s, "NACK with and without a delay", test_nack_delay);
	test_add(s, "a redelivered value goes first, past cap", test_redelivered_first);
	test_add(s, "max_deliver: dead letter with metadata, or dropped and counted", test_dead_letter);
	test_add(s, "a connection's end gives its values back", test_disconnect);
	test_add(s, "closed: ok=false only when nothing is in flight", test_close_in_flight);
	test_add(s, "streams keep tags; untagged receives ack", test_stream_and_autoack);
	test_add(s, "max_unacked holds a greedy consumer while another is served", test_unacked_limit);
	test_add(s, "the wire: tagged RECV and SELECT replies; chan_select acks", test_wire_shape);
	test_add(s, "max_unacked limits a stream's credit", test_unacked_limit_stream);
	test_add(s, "plain channels unchanged", test_plain_untouched);
	test_add(s, "closed with an error, a value in flight: redelivered, then the error",
	    test_close_err_in_flight);
}

int
main(int argc, char **argv)
{
	return test_main(argc, argv, register_suites);
}
