/*
 * test_client_chan.c: libchanclient's channel calls against a real chand,
 * part of test_client: make and open, send and receive, close, delete,
 * the value limit, rendezvous, channel references, select, and 32 threads
 * sharing one connection with none of 4,000 values lost or doubled.
 *
 * SPDX-License-Identifier: BSD-2-Clause
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "clienttest.h"
#include "synctest.h"

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

void
register_client_chan(void)
{
	CU_pSuite s;

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
}
