/*
 * test_engine.c: the channel engine with no sockets. Every Go rule in
 * DESIGN.md §4 has a test here; select's randomness is tested with a fixed
 * seed against wide statistical bounds.
 *
 * This file holds the helpers the parts share, channels, send and receive,
 * close, and the hash map; select is in test_engine_select.c, cancel,
 * delete, anonymous channels, limits and re-entrant callbacks in
 * test_engine_lifecycle.c.
 *
 * SPDX-License-Identifier: BSD-2-Clause
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"
#include "hmap.h"
#include "server/chan.h"
#include "server/engine.h"
#include "server/value.h"
#include "enginetest.h"

/* ---- helpers ------------------------------------------------------------ */

void
rec_done(void *arg, struct engine_result *res)
{
	struct rec *r = arg;

	r->calls++;
	r->res = *res;
}

struct engine *
new_engine(uint64_t max_channels, uint64_t max_bytes)
{
	struct engine_limits lim = { max_channels, max_bytes };
	struct engine *e;

	CU_ASSERT_FATAL(engine_new(&e, &lim) == STATUS_OK);
	engine_seed(e, 12345);
	return e;
}

struct chan *
mk(struct engine *e, const char *name, uint32_t cap)
{
	struct chan *ch;
	bool created;

	CU_ASSERT_FATAL(engine_make(e, name, name ? strlen(name) : 0, cap, &ch, &created) == STATUS_OK);
	CU_ASSERT(created);
	return ch;
}

struct value *
V(const char *s)
{
	return value_new(s, strlen(s));
}

bool
value_is(const struct value *v, const char *s)
{
	return v != NULL && value_len(v) == strlen(s) && memcmp(value_data(v), s, strlen(s)) == 0;
}

/* Submit one send; *now or *r gets the outcome. Returns submit's rc. */
int
op_send(struct engine *e, struct chan *ch, const char *s, unsigned flags, struct rec *r,
    struct engine_result *now)
{
	struct engine_case c = { ch, CASE_SEND, V(s) };

	return engine_submit(e, &c, 1, flags, rec_done, r, &r->op, now);
}

static int
op_recv(struct engine *e, struct chan *ch, unsigned flags, struct rec *r, struct engine_result *now)
{
	struct engine_case c = { ch, CASE_RECV, NULL };

	return engine_submit(e, &c, 1, flags, rec_done, r, &r->op, now);
}

/* A send or receive that must complete now with status OK. */
void
send_now(struct engine *e, struct chan *ch, const char *s)
{
	struct engine_result res;
	struct rec r = { 0 };

	CU_ASSERT_FATAL(op_send(e, ch, s, 0, &r, &res) == 0);
	CU_ASSERT_EQUAL(res.status, STATUS_OK);
	CU_ASSERT_EQUAL(res.index, 0);
}

void
recv_now(struct engine *e, struct chan *ch, const char *want)
{
	struct engine_result res;
	struct rec r = { 0 };

	CU_ASSERT_FATAL(op_recv(e, ch, 0, &r, &res) == 0);
	CU_ASSERT_EQUAL(res.status, STATUS_OK);
	CU_ASSERT(res.ok);
	CU_ASSERT(value_is(res.value, want));
	value_free(res.value);
}

/* A send or receive that must wait. */
void
send_wait(struct engine *e, struct chan *ch, const char *s, struct rec *r)
{
	struct engine_result res;

	memset(r, 0, sizeof *r);
	CU_ASSERT_FATAL(op_send(e, ch, s, ENGINE_WAIT, r, &res) == 1);
	CU_ASSERT_PTR_NOT_NULL(r->op);
}

void
recv_wait(struct engine *e, struct chan *ch, struct rec *r)
{
	struct engine_result res;

	memset(r, 0, sizeof *r);
	CU_ASSERT_FATAL(op_recv(e, ch, ENGINE_WAIT, r, &res) == 1);
}

void
expect_nothing_to_recv(struct engine *e, struct chan *ch)
{
	struct engine_result res;
	struct rec r = { 0 };

	CU_ASSERT_FATAL(op_recv(e, ch, 0, &r, &res) == 0);
	CU_ASSERT_EQUAL(res.status, STATUS_DEADLINE_EXCEEDED);
	CU_ASSERT_EQUAL(res.index, -1);
	CU_ASSERT_PTR_NULL(res.value);
}

/* ---- channels ------------------------------------------------------------ */

static void
test_make_open_exists(void)
{
	struct engine *e = new_engine(0, 0);
	struct chan *ch, *again;
	const char *name;
	bool created = true;
	size_t len;

	ch = mk(e, "jobs", 2);
	CU_ASSERT_EQUAL(engine_make(e, "jobs", 4, 2, &again, &created), STATUS_OK);
	CU_ASSERT(!created);
	CU_ASSERT_PTR_EQUAL(again, ch);
	CU_ASSERT_EQUAL(engine_make(e, "jobs", 4, 3, &again, &created), STATUS_EXISTS);
	CU_ASSERT_PTR_EQUAL(engine_lookup(e, "jobs", 4), ch);
	CU_ASSERT_PTR_NULL(engine_lookup(e, "job", 3));
	name = chan_name(ch, &len);
	CU_ASSERT(len == 4 && memcmp(name, "jobs", 4) == 0);
	CU_ASSERT_EQUAL(chan_cap(ch), 2);
	CU_ASSERT_EQUAL(chan_len(ch), 0);
	CU_ASSERT(!chan_closed(ch) && !chan_deleted(ch) && !chan_anonymous(ch));
	CU_ASSERT_EQUAL(engine_nchannels(e), 1);
	engine_free(e);
}

static void
test_idle_channel_is_small(void)
{
	struct engine *e = new_engine(0, 0);
	struct chan *ch = mk(e, "big", 1024);
	char buf[16];
	int i;

	/* Fixed part + a short name + a bucket pointer + malloc overhead. */
	CU_ASSERT(sizeof(struct chan) + 8 + 1 + 16 + 16 < 200);
	CU_ASSERT_PTR_NULL(ch->ring);
	send_now(e, ch, "x");
	CU_ASSERT(ch->size > 0 && ch->size <= 4);
	for (i = 1; i < 1024; i++) {
		snprintf(buf, sizeof buf, "%d", i);
		send_now(e, ch, buf);
	}
	CU_ASSERT_EQUAL(ch->size, 1024);
	CU_ASSERT_EQUAL(chan_len(ch), 1024);
	recv_now(e, ch, "x");
	for (i = 1; i < 1024; i++) {
		snprintf(buf, sizeof buf, "%d", i);
		recv_now(e, ch, buf);
	}
	CU_ASSERT_PTR_NULL(ch->ring);	/* a drained big ring goes back */
	engine_free(e);
}

/* ---- send and receive ------------------------------------------------- */

static void
test_rendezvous_send_first(void)
{
	struct engine *e = new_engine(0, 0);
	struct chan *ch = mk(e, "c", 0);
	struct rec s;

	send_wait(e, ch, "hello", &s);
	CU_ASSERT_EQUAL(chan_nsenders(ch), 1);
	CU_ASSERT_EQUAL(chan_len(ch), 0);
	CU_ASSERT_EQUAL(s.calls, 0);
	recv_now(e, ch, "hello");
	CU_ASSERT_EQUAL(s.calls, 1);
	CU_ASSERT_EQUAL(s.res.status, STATUS_OK);
	CU_ASSERT_EQUAL(s.res.index, 0);
	CU_ASSERT_PTR_NULL(s.res.value);
	CU_ASSERT_EQUAL(chan_nsenders(ch), 0);
	CU_ASSERT_EQUAL(engine_nwaiters(e), 0);
	engine_free(e);
}

static void
test_rendezvous_recv_first(void)
{
	struct engine *e = new_engine(0, 0);
	struct chan *ch = mk(e, "c", 0);
	struct rec r;

	recv_wait(e, ch, &r);
	CU_ASSERT_EQUAL(chan_nreceivers(ch), 1);
	send_now(e, ch, "hello");
	CU_ASSERT_EQUAL_FATAL(r.calls, 1);
	CU_ASSERT_EQUAL(r.res.status, STATUS_OK);
	CU_ASSERT(r.res.ok);
	CU_ASSERT_EQUAL(r.res.index, 0);
	CU_ASSERT(value_is(r.res.value, "hello"));
	value_free(r.res.value);
	CU_ASSERT_EQUAL(chan_nreceivers(ch), 0);
	CU_ASSERT_EQUAL(chan_len(ch), 0);	/* never went through a buffer */
	engine_free(e);
}

static void
test_buffered_fifo(void)
{
	struct engine *e = new_engine(0, 0);
	struct chan *ch = mk(e, "c", 3);
	struct engine_result res;
	struct rec r = { 0 };

	send_now(e, ch, "a");
	send_now(e, ch, "b");
	send_now(e, ch, "c");
	CU_ASSERT_EQUAL(chan_len(ch), 3);
	CU_ASSERT_EQUAL(chan_buffered_bytes(ch), 3);
	CU_ASSERT_EQUAL(engine_buffered_bytes(e), 3);
	/* Full: a send without a wait budget fails, its value is freed. */
	CU_ASSERT_FATAL(op_send(e, ch, "d", 0, &r, &res) == 0);
	CU_ASSERT_EQUAL(res.status, STATUS_DEADLINE_EXCEEDED);
	CU_ASSERT_EQUAL(res.index, -1);
	recv_now(e, ch, "a");
	recv_now(e, ch, "b");
	recv_now(e, ch, "c");
	expect_nothing_to_recv(e, ch);
	CU_ASSERT_EQUAL(engine_buffered_bytes(e), 0);
	CU_ASSERT_EQUAL(r.calls, 0);
	engine_free(e);
}

static void
test_handoff_on_full_buffer(void)
{
	struct engine *e = new_engine(0, 0);
	struct chan *ch = mk(e, "c", 2);
	struct rec s;

	send_now(e, ch, "a");
	send_now(e, ch, "b");
	send_wait(e, ch, "c", &s);
	CU_ASSERT_EQUAL(chan_len(ch), 2);
	CU_ASSERT_EQUAL(chan_nsenders(ch), 1);
	/* The receiver gets the head; the sender's value lands at the tail. */
	recv_now(e, ch, "a");
	CU_ASSERT_EQUAL(s.calls, 1);
	CU_ASSERT_EQUAL(s.res.status, STATUS_OK);
	CU_ASSERT_EQUAL(s.res.index, 0);
	CU_ASSERT_EQUAL(chan_len(ch), 2);
	CU_ASSERT_EQUAL(chan_nsenders(ch), 0);
	CU_ASSERT_EQUAL(engine_buffered_bytes(e), 2);
	recv_now(e, ch, "b");
	recv_now(e, ch, "c");
	expect_nothing_to_recv(e, ch);
	engine_free(e);
}

static void
test_fifo_waiters(void)
{
	struct engine *e = new_engine(0, 0);
	struct chan *ch = mk(e, "c", 0), *b = mk(e, "b", 1);
	struct rec r[3], s[3];
	const char *v[3] = { "a", "b", "c" };
	int i;

	for (i = 0; i < 3; i++)
		recv_wait(e, ch, &r[i]);
	for (i = 0; i < 3; i++) {
		send_now(e, ch, v[i]);
		CU_ASSERT_EQUAL(r[i].calls, 1);
		CU_ASSERT(value_is(r[i].res.value, v[i]));
		value_free(r[i].res.value);
		if (i < 2)
			CU_ASSERT_EQUAL(r[i + 1].calls, 0);
	}
	for (i = 0; i < 3; i++)
		send_wait(e, ch, v[i], &s[i]);
	for (i = 0; i < 3; i++) {
		recv_now(e, ch, v[i]);
		CU_ASSERT_EQUAL(s[i].calls, 1);
		if (i < 2)
			CU_ASSERT_EQUAL(s[i + 1].calls, 0);
	}
	/* Buffered: each receive moves the oldest waiting sender in. */
	send_now(e, b, "x");
	for (i = 0; i < 3; i++)
		send_wait(e, b, v[i], &s[i]);
	recv_now(e, b, "x");
	CU_ASSERT(s[0].calls == 1 && s[1].calls == 0);
	recv_now(e, b, "a");
	CU_ASSERT(s[1].calls == 1 && s[2].calls == 0);
	recv_now(e, b, "b");
	recv_now(e, b, "c");
	CU_ASSERT_EQUAL(s[2].calls, 1);
	CU_ASSERT_EQUAL(engine_nwaiters(e), 0);
	engine_free(e);
}

/* ---- close ------------------------------------------------------------ */

static void
test_close_then_drain(void)
{
	struct engine *e = new_engine(0, 0);
	struct chan *ch = mk(e, "c", 2);
	struct engine_result res;
	struct rec r = { 0 };

	send_now(e, ch, "a");
	send_now(e, ch, "b");
	CU_ASSERT_EQUAL(engine_close(e, ch), STATUS_OK);
	CU_ASSERT(chan_closed(ch));
	recv_now(e, ch, "a");
	recv_now(e, ch, "b");
	CU_ASSERT_FATAL(op_recv(e, ch, ENGINE_WAIT, &r, &res) == 0);
	CU_ASSERT_EQUAL(res.status, STATUS_OK);
	CU_ASSERT(!res.ok);
	CU_ASSERT_PTR_NULL(res.value);
	CU_ASSERT_EQUAL(res.index, 0);
	/* A full buffer with a sender waiting: the sender fails, the value
	 * already buffered is still delivered. */
	ch = mk(e, "full", 1);
	send_now(e, ch, "kept");
	send_wait(e, ch, "refused", &r);
	CU_ASSERT_EQUAL(engine_close(e, ch), STATUS_OK);
	CU_ASSERT(r.calls == 1 && r.res.status == STATUS_CLOSED && r.res.index == 0);
	recv_now(e, ch, "kept");
	CU_ASSERT_FATAL(op_recv(e, ch, 0, &r, &res) == 0);
	CU_ASSERT(res.status == STATUS_OK && !res.ok && res.value == NULL);
	engine_free(e);
}

static void
test_close_wakes_waiters(void)
{
	struct engine *e = new_engine(0, 0);
	struct chan *rc = mk(e, "r", 0), *sc = mk(e, "s", 0), *other = mk(e, "o", 0);
	struct engine_case cases[2] = { { other, CASE_RECV, NULL }, { sc, CASE_SEND, NULL } };
	struct engine_result res;
	struct rec r[2], s[2], sel = { 0 };
	int i;

	for (i = 0; i < 2; i++)
		recv_wait(e, rc, &r[i]);
	for (i = 0; i < 2; i++)
		send_wait(e, sc, "v", &s[i]);
	cases[1].value = V("sel");
	CU_ASSERT_FATAL(engine_submit(e, cases, 2, ENGINE_WAIT, rec_done, &sel, &sel.op, &res) == 1);
	CU_ASSERT_EQUAL(engine_close(e, rc), STATUS_OK);
	for (i = 0; i < 2; i++) {
		CU_ASSERT_EQUAL(r[i].calls, 1);
		CU_ASSERT_EQUAL(r[i].res.status, STATUS_OK);
		CU_ASSERT(!r[i].res.ok);
		CU_ASSERT_PTR_NULL(r[i].res.value);
	}
	CU_ASSERT_EQUAL(engine_close(e, sc), STATUS_OK);
	for (i = 0; i < 2; i++) {
		CU_ASSERT_EQUAL(s[i].calls, 1);
		CU_ASSERT_EQUAL(s[i].res.status, STATUS_CLOSED);
		CU_ASSERT_EQUAL(s[i].res.index, 0);
	}
	CU_ASSERT_EQUAL(sel.calls, 1);
	CU_ASSERT_EQUAL(sel.res.status, STATUS_CLOSED);
	CU_ASSERT_EQUAL(sel.res.index, 1);
	CU_ASSERT_EQUAL(chan_nreceivers(other), 0);
	CU_ASSERT_EQUAL(engine_nwaiters(e), 0);
	engine_free(e);
}

static void
test_double_close_and_send_on_closed(void)
{
	struct engine *e = new_engine(0, 0);
	struct chan *ch = mk(e, "c", 4), *open = mk(e, "o", 0);
	struct engine_case cases[2] = { { open, CASE_RECV, NULL }, { ch, CASE_SEND, NULL } };
	struct engine_result res;
	struct rec r = { 0 };

	CU_ASSERT_EQUAL(engine_close(e, ch), STATUS_OK);
	CU_ASSERT_EQUAL(engine_close(e, ch), STATUS_CLOSED);
	CU_ASSERT_FATAL(op_send(e, ch, "v", ENGINE_WAIT, &r, &res) == 0);
	CU_ASSERT_EQUAL(res.status, STATUS_CLOSED);
	CU_ASSERT_EQUAL(res.index, 0);
	CU_ASSERT_EQUAL(chan_len(ch), 0);
	/* In a select, a closed channel is a ready send case. */
	cases[1].value = V("v");
	CU_ASSERT_FATAL(engine_submit(e, cases, 2, ENGINE_WAIT, rec_done, &r, &r.op, &res) == 0);
	CU_ASSERT_EQUAL(res.status, STATUS_CLOSED);
	CU_ASSERT_EQUAL(res.index, 1);
	/* ... and a ready receive case, ok=false. */
	cases[1].dir = CASE_RECV;
	CU_ASSERT_FATAL(engine_submit(e, cases, 2, ENGINE_WAIT, rec_done, &r, &r.op, &res) == 0);
	CU_ASSERT_EQUAL(res.status, STATUS_OK);
	CU_ASSERT_EQUAL(res.index, 1);
	CU_ASSERT(!res.ok);
	CU_ASSERT_EQUAL(r.calls, 0);
	CU_ASSERT_EQUAL(engine_nwaiters(e), 0);
	engine_free(e);
}

/* ---- scale ---------------------------------------------------------- */

static int
count_chan(struct chan *ch, void *arg)
{
	(*(uint64_t *)arg)++;
	return 0;
}

static int
stop_at_three(struct chan *ch, void *arg)
{
	return ++*(uint64_t *)arg == 3;
}

static void
test_many_channels(void)
{
	enum { N = 200000 };
	struct engine *e = new_engine(0, 0);
	struct chan *ch;
	uint64_t seen = 0;
	char name[32];
	int i, len, found = 0;

	for (i = 0; i < N; i++) {
		len = snprintf(name, sizeof name, "chan.%d", i);
		CU_ASSERT_FATAL(engine_make(e, name, (size_t)len, 1, &ch, NULL) == STATUS_OK);
	}
	CU_ASSERT_EQUAL(engine_nchannels(e), N);
	engine_foreach_chan(e, count_chan, &seen);
	CU_ASSERT_EQUAL(seen, N);
	seen = 0;
	engine_foreach_chan(e, stop_at_three, &seen);
	CU_ASSERT_EQUAL(seen, 3);
	for (i = 0; i < N; i++) {
		len = snprintf(name, sizeof name, "chan.%d", i);
		ch = engine_lookup(e, name, (size_t)len);
		found += ch != NULL;
		if (ch != NULL && i % 2 == 0) {
			CU_ASSERT_EQUAL(engine_delete(e, ch, NULL), STATUS_OK);
			engine_release(e, ch);
		}
	}
	CU_ASSERT_EQUAL(found, N);
	CU_ASSERT_EQUAL(engine_nchannels(e), N / 2);
	CU_ASSERT_PTR_NULL(engine_lookup(e, "chan.0", 6));
	CU_ASSERT_PTR_NOT_NULL(engine_lookup(e, "chan.1", 6));
	engine_free(e);
}

/* ---- hmap ------------------------------------------------------------- */

struct item {
	struct hmap_node node;
	uint64_t key;
};

static struct item *
item_find(struct hmap *h, uint64_t key)
{
	struct hmap_node *n;
	struct item *it;

	HMAP_FOR_EACH_HASH(n, hmap_hash_u64(h->seed, key), h) {
		it = HMAP_ENTRY(n, struct item, node);
		if (it->key == key)
			return it;
	}
	return NULL;
}

static void
test_hmap(void)
{
	enum { N = 100000 };
	struct item *items = calloc(N, sizeof *items);
	struct hmap_node *n, *nx;
	struct hmap h;
	size_t pos, seen = 0, i;
	bool all = true;

	CU_ASSERT_FATAL(items != NULL);
	hmap_init(&h, 7);
	CU_ASSERT_PTR_NULL(item_find(&h, 1));
	for (i = 0; i < N; i++) {
		items[i].key = i * 0x10000;	/* low bits all zero: the hash must mix */
		CU_ASSERT_FATAL(hmap_insert(&h, &items[i].node, hmap_hash_u64(7, items[i].key)) == 0);
	}
	CU_ASSERT_EQUAL(hmap_count(&h), N);
	CU_ASSERT(h.mask + 1 >= N && h.mask + 1 <= 2 * (size_t)N);
	for (i = 0; i < N; i++)
		all &= item_find(&h, i * 0x10000) == &items[i];
	CU_ASSERT(all);
	CU_ASSERT_PTR_NULL(item_find(&h, 3));
	HMAP_FOR_EACH_SAFE(n, nx, pos, &h) {
		if (HMAP_ENTRY(n, struct item, node)->key % 0x20000 == 0)
			hmap_remove(&h, n);
		seen++;
	}
	CU_ASSERT_EQUAL(seen, N);
	CU_ASSERT_EQUAL(hmap_count(&h), N / 2);
	CU_ASSERT_PTR_NULL(item_find(&h, 0));
	CU_ASSERT_PTR_EQUAL(item_find(&h, 0x10000), &items[1]);
	for (i = 1; i < N; i += 2)
		hmap_remove(&h, &items[i].node);
	hmap_shrink(&h);
	CU_ASSERT_EQUAL(hmap_count(&h), 0);
	CU_ASSERT_EQUAL(h.mask + 1, 16);
	/* emptied, with its buckets kept: a lookup finds nothing, and an insert works again */
	CU_ASSERT_PTR_NULL(item_find(&h, 0x10000));
	CU_ASSERT_FATAL(hmap_insert(&h, &items[1].node, hmap_hash_u64(7, items[1].key)) == 0);
	CU_ASSERT_PTR_EQUAL(item_find(&h, 0x10000), &items[1]);
	hmap_remove(&h, &items[1].node);
	hmap_destroy(&h);
	free(items);
	/* The seed changes the hash; trailing NULs and length count. */
	CU_ASSERT(hmap_hash_bytes(1, "name", 4) != hmap_hash_bytes(2, "name", 4));
	CU_ASSERT(hmap_hash_bytes(1, "a", 1) != hmap_hash_bytes(1, "a\0", 2));
	CU_ASSERT(hmap_hash_bytes(1, "", 0) != hmap_hash_bytes(1, "\0", 1));
	CU_ASSERT(hmap_hash_bytes(1, "abcdefgh", 8) != hmap_hash_bytes(1, "abcdefgi", 8));
}

static void
register_suites(void)
{
	CU_pSuite s;

	s = test_suite("engine.channels", NULL, NULL);
	test_add(s, "make, open, EXISTS, lookup", test_make_open_exists);
	test_add(s, "idle channel small, ring lazy", test_idle_channel_is_small);
	test_add(s, "many channels", test_many_channels);
	s = test_suite("engine.sendrecv", NULL, NULL);
	test_add(s, "rendezvous, send first", test_rendezvous_send_first);
	test_add(s, "rendezvous, receive first", test_rendezvous_recv_first);
	test_add(s, "buffered FIFO", test_buffered_fifo);
	test_add(s, "handoff on a full buffer", test_handoff_on_full_buffer);
	test_add(s, "FIFO among waiters", test_fifo_waiters);
	s = test_suite("engine.close", NULL, NULL);
	test_add(s, "close then drain", test_close_then_drain);
	test_add(s, "close wakes receivers and senders", test_close_wakes_waiters);
	test_add(s, "double close, send on closed", test_double_close_and_send_on_closed);
	register_engine_select();
	register_engine_lifecycle();
	register_engine_lend();
	s = test_suite("hmap", NULL, NULL);
	test_add(s, "insert, find, remove, shrink, hash", test_hmap);
}

int
main(int argc, char **argv)
{
	return test_main(argc, argv, register_suites);
}
