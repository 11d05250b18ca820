/*
 * test_engine.c: the channel engine with no sockets. Every Go rule in
 * DESIGN.md §4 has a test here; select's randomness is tested with a fixed
 * seed against wide statistical bounds.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"
#include "hmap.h"
#include "server/chan.h"
#include "server/engine.h"
#include "server/value.h"

/* ---- helpers ------------------------------------------------------------ */

/* What a pending operation's done callback saw. */
struct rec {
	int calls;
	struct engine_result res;
	struct engine_op *op;
};

static void
rec_done(void *arg, struct engine_result *res)
{
	struct rec *r = arg;

	r->calls++;
	r->res = *res;
}

static struct engine *
new_engine(uint64_t max_channels, uint64_t max_bytes)
{
	struct engine_limits lim = { max_channels, max_bytes };
	struct engine *e;

	CU_ASSERT_FATAL(engine_new(&e, &lim) == STATUS_OK);
	engine_seed(e, 12345);
	return e;
}

static struct chan *
mk(struct engine *e, const char *name, uint32_t cap)
{
	struct chan *ch;
	bool created;

	CU_ASSERT_FATAL(engine_make(e, name, name ? strlen(name) : 0, cap, &ch, &created) == STATUS_OK);
	CU_ASSERT(created);
	return ch;
}

static struct value *
V(const char *s)
{
	return value_new(s, strlen(s));
}

static bool
value_is(const struct value *v, const char *s)
{
	return v != NULL && value_len(v) == strlen(s) && memcmp(value_data(v), s, strlen(s)) == 0;
}

/* Submit one send; *now or *r gets the outcome. Returns submit's rc. */
static int
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
static void
send_now(struct engine *e, struct chan *ch, const char *s)
{
	struct engine_result res;
	struct rec r = { 0 };

	CU_ASSERT_FATAL(op_send(e, ch, s, 0, &r, &res) == 0);
	CU_ASSERT_EQUAL(res.status, STATUS_OK);
	CU_ASSERT_EQUAL(res.index, 0);
}

static void
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
static void
send_wait(struct engine *e, struct chan *ch, const char *s, struct rec *r)
{
	struct engine_result res;

	memset(r, 0, sizeof *r);
	CU_ASSERT_FATAL(op_send(e, ch, s, ENGINE_WAIT, r, &res) == 1);
	CU_ASSERT_PTR_NOT_NULL(r->op);
}

static void
recv_wait(struct engine *e, struct chan *ch, struct rec *r)
{
	struct engine_result res;

	memset(r, 0, sizeof *r);
	CU_ASSERT_FATAL(op_recv(e, ch, ENGINE_WAIT, r, &res) == 1);
}

static void
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

/* ---- select ------------------------------------------------------------- */

/* Select over recv cases n times, refilling whatever fired; counts per case. */
static void
select_counts(struct engine *e, struct chan **chs, size_t n, int rounds, int *counts)
{
	struct engine_case cases[8];
	struct engine_result res;
	struct rec r = { 0 };
	size_t i;

	for (i = 0; i < n; i++)
		cases[i] = (struct engine_case){ chs[i], CASE_RECV, NULL };
	while (rounds-- > 0) {
		CU_ASSERT_FATAL(engine_submit(e, cases, n, 0, rec_done, &r, &r.op, &res) == 0);
		CU_ASSERT_FATAL(res.status == STATUS_OK && res.index >= 0 && (size_t)res.index < n);
		CU_ASSERT_FATAL(res.ok && value_is(res.value, "v"));
		value_free(res.value);
		counts[res.index]++;
		send_now(e, chs[res.index], "v");
	}
}

static void
test_select_uniform(void)
{
	struct engine *e = new_engine(0, 0);
	struct chan *chs[4] = { mk(e, "a", 1), mk(e, "b", 1), mk(e, "c", 1), mk(e, "d", 1) };
	struct chan *three[3] = { mk(e, "empty", 1), chs[0], chs[1] };
	int two[2] = { 0 }, four[4] = { 0 }, skip[3] = { 0 }, i;

	for (i = 0; i < 4; i++)
		send_now(e, chs[i], "v");
	select_counts(e, chs, 2, 10000, two);
	CU_ASSERT(two[0] >= 4500 && two[0] <= 5500);
	CU_ASSERT_EQUAL(two[0] + two[1], 10000);
	select_counts(e, chs, 4, 20000, four);
	for (i = 0; i < 4; i++)
		CU_ASSERT(four[i] >= 4500 && four[i] <= 5500);
	/* A not-ready case must not bias its neighbour (rotation would). */
	select_counts(e, three, 3, 10000, skip);
	CU_ASSERT_EQUAL(skip[0], 0);
	CU_ASSERT(skip[1] >= 4500 && skip[1] <= 5500);
	engine_free(e);
}

static void
test_select_default(void)
{
	struct engine *e = new_engine(0, 0);
	struct chan *a = mk(e, "a", 0), *b = mk(e, "b", 1);
	struct engine_case cases[2] = { { a, CASE_RECV, NULL }, { b, CASE_RECV, NULL } };
	struct engine_result res;
	struct rec r = { 0 };
	int i;

	CU_ASSERT_FATAL(engine_submit(e, cases, 2, ENGINE_DEFAULT | ENGINE_WAIT, rec_done, &r,
	    &r.op, &res) == 0);
	CU_ASSERT_EQUAL(res.status, STATUS_OK);
	CU_ASSERT_EQUAL(res.index, -1);
	CU_ASSERT_PTR_NULL(res.value);
	CU_ASSERT_EQUAL(engine_nwaiters(e), 0);
	/* Something ready: default never wins. */
	for (i = 0; i < 100; i++) {
		send_now(e, b, "v");
		CU_ASSERT_FATAL(engine_submit(e, cases, 2, ENGINE_DEFAULT, rec_done, &r, &r.op,
		    &res) == 0);
		CU_ASSERT_EQUAL(res.index, 1);
		CU_ASSERT(value_is(res.value, "v"));
		value_free(res.value);
	}
	CU_ASSERT_EQUAL(r.calls, 0);
	engine_free(e);
}

static void
test_no_wait_deadline(void)
{
	struct engine *e = new_engine(0, 0);
	struct chan *a = mk(e, "a", 0), *b = mk(e, "b", 0);
	struct engine_case cases[2] = { { a, CASE_RECV, NULL }, { b, CASE_SEND, NULL } };
	struct engine_result res;
	struct rec r = { 0 };

	cases[1].value = V("dropped");
	CU_ASSERT_FATAL(engine_submit(e, cases, 2, 0, rec_done, &r, &r.op, &res) == 0);
	CU_ASSERT_EQUAL(res.status, STATUS_DEADLINE_EXCEEDED);
	CU_ASSERT_EQUAL(res.index, -1);
	CU_ASSERT_PTR_NULL(r.op);
	CU_ASSERT_EQUAL(engine_nwaiters(e), 0);
	CU_ASSERT_EQUAL(r.calls, 0);
	engine_free(e);
}

static void
test_select_never_matches_itself(void)
{
	struct engine *e = new_engine(0, 0);
	struct chan *ch = mk(e, "c", 0);
	struct engine_case cases[2] = { { ch, CASE_SEND, NULL }, { ch, CASE_RECV, NULL } };
	struct engine_result res;
	struct rec sel = { 0 };

	cases[0].value = V("mine");
	CU_ASSERT_FATAL(engine_submit(e, cases, 2, ENGINE_WAIT, rec_done, &sel, &sel.op, &res) == 1);
	CU_ASSERT_EQUAL(chan_nsenders(ch), 1);
	CU_ASSERT_EQUAL(chan_nreceivers(ch), 1);
	CU_ASSERT_EQUAL(sel.calls, 0);
	/* A third party takes the send case. */
	recv_now(e, ch, "mine");
	CU_ASSERT_EQUAL(sel.calls, 1);
	CU_ASSERT_EQUAL(sel.res.status, STATUS_OK);
	CU_ASSERT_EQUAL(sel.res.index, 0);
	CU_ASSERT(chan_nsenders(ch) == 0 && chan_nreceivers(ch) == 0);
	/* Again; this time a third party completes the receive case. */
	memset(&sel, 0, sizeof sel);
	cases[0].value = V("mine");
	CU_ASSERT_FATAL(engine_submit(e, cases, 2, ENGINE_WAIT, rec_done, &sel, &sel.op, &res) == 1);
	send_now(e, ch, "theirs");
	CU_ASSERT_EQUAL(sel.calls, 1);
	CU_ASSERT_EQUAL(sel.res.index, 1);
	CU_ASSERT(value_is(sel.res.value, "theirs"));
	value_free(sel.res.value);
	CU_ASSERT(chan_nsenders(ch) == 0 && chan_nreceivers(ch) == 0);
	engine_free(e);
}

static void
test_duplicate_cases(void)
{
	struct engine *e = new_engine(0, 0);
	struct chan *ch = mk(e, "c", 0);
	struct engine_case cases[2] = { { ch, CASE_RECV, NULL }, { ch, CASE_RECV, NULL } };
	struct engine_result res;
	struct rec sel = { 0 };

	CU_ASSERT_FATAL(engine_submit(e, cases, 2, ENGINE_WAIT, rec_done, &sel, &sel.op, &res) == 1);
	CU_ASSERT_EQUAL(chan_nreceivers(ch), 2);
	send_now(e, ch, "once");
	CU_ASSERT_EQUAL(sel.calls, 1);
	CU_ASSERT_EQUAL(sel.res.index, 0);	/* case 0 queued first */
	CU_ASSERT(value_is(sel.res.value, "once"));
	value_free(sel.res.value);
	CU_ASSERT_EQUAL(chan_nreceivers(ch), 0);
	/* Two sends on one channel: exactly one value is taken. */
	memset(&sel, 0, sizeof sel);
	cases[0] = (struct engine_case){ ch, CASE_SEND, V("first") };
	cases[1] = (struct engine_case){ ch, CASE_SEND, V("second") };
	CU_ASSERT_FATAL(engine_submit(e, cases, 2, ENGINE_WAIT, rec_done, &sel, &sel.op, &res) == 1);
	CU_ASSERT_EQUAL(chan_nsenders(ch), 2);
	recv_now(e, ch, "first");
	CU_ASSERT_EQUAL(sel.calls, 1);
	CU_ASSERT_EQUAL(sel.res.index, 0);
	CU_ASSERT_EQUAL(chan_nsenders(ch), 0);
	expect_nothing_to_recv(e, ch);
	engine_free(e);
}

static void
test_nil_channel_case(void)
{
	struct engine *e = new_engine(0, 0);
	struct chan *ch = mk(e, "c", 0);
	struct engine_case cases[2] = { { NULL, CASE_SEND, NULL }, { ch, CASE_RECV, NULL } };
	struct engine_result res;
	struct rec sel = { 0 };

	cases[0].value = V("x");
	CU_ASSERT_FATAL(engine_submit(e, cases, 1, ENGINE_DEFAULT, rec_done, &sel, &sel.op, &res) == 0);
	CU_ASSERT_EQUAL(res.index, -1);
	cases[0].value = V("x");
	CU_ASSERT_FATAL(engine_submit(e, cases, 1, 0, rec_done, &sel, &sel.op, &res) == 0);
	CU_ASSERT_EQUAL(res.status, STATUS_DEADLINE_EXCEEDED);
	/* A nil case waits on nothing; the other case still works. */
	cases[0].value = V("x");
	CU_ASSERT_FATAL(engine_submit(e, cases, 2, ENGINE_WAIT, rec_done, &sel, &sel.op, &res) == 1);
	CU_ASSERT_EQUAL(engine_nwaiters(e), 1);
	send_now(e, ch, "v");
	CU_ASSERT_EQUAL(sel.calls, 1);
	CU_ASSERT_EQUAL(sel.res.index, 1);
	value_free(sel.res.value);
	/* Only nil cases (or none, Go's select{}): pending until cancelled. */
	memset(&sel, 0, sizeof sel);
	cases[0].value = V("x");
	CU_ASSERT_FATAL(engine_submit(e, cases, 1, ENGINE_WAIT, rec_done, &sel, &sel.op, &res) == 1);
	CU_ASSERT_EQUAL(engine_nwaiters(e), 0);
	engine_op_cancel(e, sel.op, STATUS_CANCELED);
	CU_ASSERT_EQUAL(sel.calls, 1);
	CU_ASSERT_EQUAL(sel.res.status, STATUS_CANCELED);
	memset(&sel, 0, sizeof sel);
	CU_ASSERT_FATAL(engine_submit(e, NULL, 0, ENGINE_WAIT, rec_done, &sel, &sel.op, &res) == 1);
	engine_op_cancel(e, sel.op, STATUS_DEADLINE_EXCEEDED);
	CU_ASSERT_EQUAL(sel.res.status, STATUS_DEADLINE_EXCEEDED);
	engine_free(e);
}

static void
test_select_resolution_unlinks_all(void)
{
	struct engine *e = new_engine(0, 0);
	struct chan *a = mk(e, "a", 0), *b = mk(e, "b", 0), *c = mk(e, "c", 0);
	struct engine_case cases[3] = { { a, CASE_RECV, NULL }, { b, CASE_RECV, NULL },
	    { c, CASE_SEND, NULL } };
	struct engine_result res;
	struct rec sel = { 0 }, s;

	cases[2].value = V("unsent");
	CU_ASSERT_FATAL(engine_submit(e, cases, 3, ENGINE_WAIT, rec_done, &sel, &sel.op, &res) == 1);
	CU_ASSERT_EQUAL(engine_nwaiters(e), 3);
	send_now(e, b, "vb");
	CU_ASSERT_EQUAL(sel.calls, 1);
	CU_ASSERT_EQUAL(sel.res.index, 1);
	CU_ASSERT(value_is(sel.res.value, "vb"));
	value_free(sel.res.value);
	CU_ASSERT_EQUAL(chan_nreceivers(a), 0);
	CU_ASSERT_EQUAL(chan_nreceivers(b), 0);
	CU_ASSERT_EQUAL(chan_nsenders(c), 0);
	CU_ASSERT_EQUAL(engine_nwaiters(e), 0);
	/* Nobody is left to take a value on a, nor to give one on c. */
	send_wait(e, a, "late", &s);
	CU_ASSERT_EQUAL(sel.calls, 1);
	engine_op_cancel(e, s.op, STATUS_CANCELED);
	expect_nothing_to_recv(e, c);
	engine_free(e);
}

/* ---- cancel, delete, anonymous channels, limits ------------------------ */

static void
test_cancel_restores(void)
{
	struct engine *e = new_engine(0, 0);
	struct chan *ch = mk(e, "c", 0);
	struct engine_case cases[2] = { { ch, CASE_SEND, NULL }, { ch, CASE_RECV, NULL } };
	struct engine_result res;
	struct rec s, r, sel = { 0 };

	send_wait(e, ch, "gone", &s);
	engine_op_cancel(e, s.op, STATUS_DEADLINE_EXCEEDED);
	CU_ASSERT_EQUAL(s.calls, 1);
	CU_ASSERT_EQUAL(s.res.status, STATUS_DEADLINE_EXCEEDED);
	CU_ASSERT_EQUAL(s.res.index, -1);
	CU_ASSERT_EQUAL(chan_nsenders(ch), 0);
	expect_nothing_to_recv(e, ch);
	cases[0].value = V("gone too");
	CU_ASSERT_FATAL(engine_submit(e, cases, 2, ENGINE_WAIT, rec_done, &sel, &sel.op, &res) == 1);
	engine_op_cancel(e, sel.op, STATUS_CANCELED);
	CU_ASSERT_EQUAL(sel.res.status, STATUS_CANCELED);
	CU_ASSERT_EQUAL(engine_nwaiters(e), 0);
	/* The channel pairs normally afterwards. */
	recv_wait(e, ch, &r);
	send_now(e, ch, "fresh");
	CU_ASSERT(r.calls == 1 && value_is(r.res.value, "fresh"));
	value_free(r.res.value);
	send_wait(e, ch, "fresh2", &s);
	recv_now(e, ch, "fresh2");
	CU_ASSERT_EQUAL(s.calls, 1);
	engine_free(e);
}

static void
test_delete(void)
{
	struct engine *e = new_engine(0, 0);
	struct chan *ch = mk(e, "c", 0), *buf = mk(e, "buf", 3), *other = mk(e, "o", 0);
	struct chan *again;
	struct engine_case cases[2] = { { other, CASE_RECV, NULL }, { ch, CASE_SEND, NULL } };
	struct engine_result res;
	struct rec r, sel = { 0 }, z = { 0 };
	size_t discarded = 99;
	bool created;

	send_now(e, buf, "x");
	send_now(e, buf, "y");
	CU_ASSERT_EQUAL(engine_delete(e, buf, &discarded), STATUS_OK);
	CU_ASSERT_EQUAL(discarded, 2);
	CU_ASSERT_EQUAL(engine_buffered_bytes(e), 0);
	CU_ASSERT_PTR_NULL(engine_lookup(e, "buf", 3));
	/* Still held by mk's hold: a zombie, every use is NOT_FOUND. */
	CU_ASSERT(chan_deleted(buf));
	CU_ASSERT_FATAL(op_send(e, buf, "v", ENGINE_WAIT, &z, &res) == 0);
	CU_ASSERT_EQUAL(res.status, STATUS_NOT_FOUND);
	CU_ASSERT_EQUAL(res.index, 0);
	CU_ASSERT_EQUAL(engine_close(e, buf), STATUS_NOT_FOUND);
	CU_ASSERT_EQUAL(engine_delete(e, buf, NULL), STATUS_NOT_FOUND);
	engine_release(e, buf);

	recv_wait(e, ch, &r);
	cases[1].value = V("v");
	engine_hold(ch);
	CU_ASSERT_EQUAL(engine_delete(e, ch, NULL), STATUS_OK);
	CU_ASSERT_FATAL(engine_submit(e, cases, 2, ENGINE_WAIT, rec_done, &sel, &sel.op, &res) == 0);
	CU_ASSERT_EQUAL(res.status, STATUS_NOT_FOUND);
	CU_ASSERT_EQUAL(res.index, 1);
	engine_release(e, ch);
	engine_release(e, ch);
	CU_ASSERT_EQUAL(r.calls, 1);
	CU_ASSERT_EQUAL(r.res.status, STATUS_NOT_FOUND);
	CU_ASSERT_EQUAL(r.res.index, 0);

	/* A select waiting on a channel that goes fails with that index. */
	ch = mk(e, "c", 0);
	cases[1] = (struct engine_case){ ch, CASE_SEND, V("v") };
	CU_ASSERT_FATAL(engine_submit(e, cases, 2, ENGINE_WAIT, rec_done, &sel, &sel.op, &res) == 1);
	CU_ASSERT_EQUAL(engine_delete(e, ch, NULL), STATUS_OK);
	CU_ASSERT_EQUAL(sel.calls, 1);
	CU_ASSERT_EQUAL(sel.res.status, STATUS_NOT_FOUND);
	CU_ASSERT_EQUAL(sel.res.index, 1);
	CU_ASSERT_EQUAL(chan_nreceivers(other), 0);
	engine_release(e, ch);
	CU_ASSERT_EQUAL(engine_make(e, "c", 1, 5, &again, &created), STATUS_OK);
	CU_ASSERT(created);
	CU_ASSERT_EQUAL(engine_nchannels(e), 2);
	CU_ASSERT_EQUAL(z.calls, 0);
	engine_free(e);
}

static void
test_anonymous(void)
{
	struct engine *e = new_engine(0, 0);
	struct chan *a = mk(e, NULL, 1), *b = mk(e, NULL, 0);
	struct rec r;
	size_t alen, blen;
	const char *an = chan_name(a, &alen), *bn = chan_name(b, &blen);
	char name[64];

	CU_ASSERT(chan_anonymous(a) && chan_anonymous(b));
	CU_ASSERT(alen > 1 && an[0] == '~' && bn[0] == '~');
	CU_ASSERT(alen != blen || memcmp(an, bn, alen) != 0);
	CU_ASSERT_PTR_EQUAL(engine_lookup(e, an, alen), a);
	CU_ASSERT_EQUAL(engine_nchannels(e), 2);
	/* Last hold gone: deleted, buffered value and all. */
	send_now(e, a, "lost");
	engine_hold(a);
	engine_release(e, a);
	CU_ASSERT_EQUAL(engine_nchannels(e), 2);
	engine_release(e, a);
	CU_ASSERT_EQUAL(engine_nchannels(e), 1);
	CU_ASSERT_EQUAL(engine_buffered_bytes(e), 0);
	/* A waiter holds it; when the waiter leaves, it goes. */
	memcpy(name, bn, blen);
	recv_wait(e, b, &r);
	engine_release(e, b);
	CU_ASSERT_PTR_EQUAL(engine_lookup(e, name, blen), b);
	send_now(e, b, "v");
	CU_ASSERT(r.calls == 1 && value_is(r.res.value, "v"));
	value_free(r.res.value);
	CU_ASSERT_PTR_NULL(engine_lookup(e, name, blen));
	CU_ASSERT_EQUAL(engine_nchannels(e), 0);
	/* Same through a cancel. */
	b = mk(e, NULL, 0);
	bn = chan_name(b, &blen);
	memcpy(name, bn, blen);
	recv_wait(e, b, &r);
	engine_release(e, b);
	engine_op_cancel(e, r.op, STATUS_CANCELED);
	CU_ASSERT_PTR_NULL(engine_lookup(e, name, blen));
	engine_free(e);
}

static void
test_limits(void)
{
	struct engine *e = new_engine(2, 10);
	struct engine_limits unlimited = { 0, 0 };
	struct chan *a = mk(e, "a", 10), *b = mk(e, "b", 0), *c, *x;
	struct engine_result res;
	struct rec r, s = { 0 };
	char big[101];

	CU_ASSERT_EQUAL(engine_make(e, "c", 1, 0, &c, NULL), STATUS_LIMIT);
	CU_ASSERT_EQUAL(engine_make(e, NULL, 0, 0, &c, NULL), STATUS_LIMIT);
	CU_ASSERT_EQUAL(engine_make(e, "a", 1, 10, &x, NULL), STATUS_OK);	/* opening is fine */
	send_now(e, a, "123456");
	CU_ASSERT_FATAL(op_send(e, a, "abcdef", ENGINE_WAIT, &s, &res) == 0);
	CU_ASSERT_EQUAL(res.status, STATUS_LIMIT);
	CU_ASSERT_EQUAL(res.index, 0);
	CU_ASSERT_EQUAL(chan_len(a), 1);
	send_now(e, a, "7890");	/* exactly 10 */
	CU_ASSERT_EQUAL(engine_buffered_bytes(e), 10);
	CU_ASSERT_EQUAL(chan_buffered_bytes(a), 10);
	/* A handoff is never limited. */
	memset(big, 'z', 100);
	big[100] = '\0';
	recv_wait(e, b, &r);
	send_now(e, b, big);
	CU_ASSERT(r.calls == 1 && value_is(r.res.value, big));
	value_free(r.res.value);
	engine_set_limits(e, &unlimited);
	send_now(e, a, big);
	CU_ASSERT_EQUAL(engine_buffered_bytes(e), 110);
	CU_ASSERT_EQUAL(engine_delete(e, b, NULL), STATUS_OK);
	engine_release(e, b);
	CU_ASSERT_PTR_NOT_NULL(mk(e, "c", 0));
	CU_ASSERT_EQUAL(s.calls, 0);
	engine_free(e);
}

/* ---- callbacks that call back in --------------------------------------- */

struct chain {
	struct engine *e;
	struct chan *out;	/* forward what was received here */
	struct chan *close;	/* or close this */
	struct engine_op *cancel; /* or cancel this */
	struct rec rec;
	int *seq, order;	/* when this callback ran */
	struct rec rearm;	/* a new pending receive submitted from done */
	struct chan *rearm_on;
};

/* Callbacks in progress: the engine must never nest them. */
static int chain_depth, chain_max_depth;

static void
chain_done(void *arg, struct engine_result *res)
{
	struct chain *c = arg;
	struct engine_case fwd = { c->out, CASE_SEND, res->value };
	struct engine_result now;
	struct engine_op *op;

	if (++chain_depth > chain_max_depth)
		chain_max_depth = chain_depth;
	rec_done(&c->rec, res);
	c->order = ++*c->seq;
	if (c->out != NULL) {
		CU_ASSERT(engine_submit(c->e, &fwd, 1, 0, rec_done, NULL, &op, &now) == 0);
		CU_ASSERT_EQUAL(now.status, STATUS_OK);
		c->rec.res.value = NULL;	/* moved on */
	}
	if (c->close != NULL)
		CU_ASSERT_EQUAL(engine_close(c->e, c->close), STATUS_OK);
	if (c->cancel != NULL)
		engine_op_cancel(c->e, c->cancel, STATUS_CANCELED);
	if (c->rearm_on != NULL)
		recv_wait(c->e, c->rearm_on, &c->rearm);
	chain_depth--;
}

static struct engine_op *
chain_recv(struct engine *e, struct chan *ch, struct chain *c)
{
	struct engine_case rc = { ch, CASE_RECV, NULL };
	struct engine_result now;
	struct engine_op *op = NULL;

	CU_ASSERT_FATAL(engine_submit(e, &rc, 1, ENGINE_WAIT, chain_done, c, &op, &now) == 1);
	return op;
}

static void
test_callback_reentry(void)
{
	struct engine *e = new_engine(0, 0);
	struct chan *a = mk(e, "a", 0), *b = mk(e, "b", 0), *k = mk(e, "k", 0);
	int seq = 0;
	struct chain c1 = { .e = e, .out = b, .seq = &seq };
	struct chain c2 = { .e = e, .close = k, .seq = &seq };
	struct chain c3 = { .e = e, .seq = &seq }, c4 = { .e = e, .seq = &seq };

	/* a -> c1 forwards to b -> c2 closes k -> c3 and c4 wake. */
	chain_recv(e, a, &c1);
	chain_recv(e, b, &c2);
	chain_recv(e, k, &c3);
	c4.cancel = NULL;
	chain_recv(e, k, &c4);
	send_now(e, a, "relay");
	CU_ASSERT_EQUAL(c1.rec.calls, 1);
	CU_ASSERT_EQUAL(c2.rec.calls, 1);
	CU_ASSERT(value_is(c2.rec.res.value, "relay"));
	value_free(c2.rec.res.value);
	CU_ASSERT(c3.rec.calls == 1 && !c3.rec.res.ok && c3.rec.res.status == STATUS_OK);
	CU_ASSERT(c4.rec.calls == 1 && !c4.rec.res.ok);
	/* Callbacks ran one after another, never nested. */
	CU_ASSERT(c1.order == 1 && c2.order == 2 && c3.order == 3 && c4.order == 4);
	CU_ASSERT_EQUAL(chain_max_depth, 1);
	CU_ASSERT_EQUAL(engine_nwaiters(e), 0);

	/* One close resolves two; the first callback cancels the second,
	 * already resolved: that is a no-op, its own result stands. */
	k = mk(e, "k2", 0);
	memset(&c3, 0, sizeof c3);
	memset(&c4, 0, sizeof c4);
	c3.e = c4.e = e;
	c3.seq = c4.seq = &seq;
	chain_recv(e, k, &c3);
	c3.cancel = chain_recv(e, k, &c4);
	CU_ASSERT_EQUAL(engine_close(e, k), STATUS_OK);
	CU_ASSERT_EQUAL(c4.rec.calls, 1);
	CU_ASSERT_EQUAL(c4.rec.res.status, STATUS_OK);

	/* A callback that submits a new pending receive re-arms itself. */
	memset(&c1, 0, sizeof c1);
	c1.e = e;
	c1.seq = &seq;
	c1.rearm_on = a;
	chain_recv(e, a, &c1);
	send_now(e, a, "one");
	CU_ASSERT_EQUAL(c1.rec.calls, 1);
	value_free(c1.rec.res.value);
	CU_ASSERT_EQUAL(chan_nreceivers(a), 1);
	send_now(e, a, "two");
	CU_ASSERT_EQUAL(c1.rearm.calls, 1);
	CU_ASSERT(value_is(c1.rearm.res.value, "two"));
	value_free(c1.rearm.res.value);
	CU_ASSERT_EQUAL(engine_nwaiters(e), 0);
	engine_free(e);
}

/* ---- scale ---------------------------------------------------------- */

static void
test_many_pending(void)
{
	enum { NOPS = 100000, NCH = 100 };
	struct engine *e = new_engine(0, 0);
	struct chan *chs[NCH];
	struct engine_case c;
	struct engine_result now;
	struct engine_op **ops = calloc(NOPS, sizeof *ops);
	struct rec r = { 0 };
	char name[16];
	int i, round;

	CU_ASSERT_FATAL(ops != NULL);
	for (i = 0; i < NCH; i++) {
		snprintf(name, sizeof name, "ch%d", i);
		chs[i] = mk(e, name, 0);
	}
	for (round = 0; round < 2; round++) {
		for (i = 0; i < NOPS; i++) {
			/* Receivers on the first half, senders on the second: none pair. */
			c = (struct engine_case){ chs[(i % 2) * (NCH / 2) + (i / 2) % (NCH / 2)],
			    i % 2 ? CASE_SEND : CASE_RECV, i % 2 ? V("v") : NULL };
			CU_ASSERT_FATAL(engine_submit(e, &c, 1, ENGINE_WAIT, rec_done, &r, &ops[i],
			    &now) == 1);
		}
		CU_ASSERT_EQUAL(engine_nwaiters(e), NOPS);
		CU_ASSERT_EQUAL(chan_nreceivers(chs[0]), NOPS / NCH);
		for (i = 0; i < NOPS; i++)
			engine_op_cancel(e, ops[i], STATUS_CANCELED);
		CU_ASSERT_EQUAL(engine_nwaiters(e), 0);
		CU_ASSERT_EQUAL(r.calls, NOPS * (round + 1));
		for (i = 0; i < NCH; i++)
			CU_ASSERT(chan_nreceivers(chs[i]) == 0 && chan_nsenders(chs[i]) == 0);
	}
	free(ops);
	engine_free(e);
}

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
	s = test_suite("engine.select", NULL, NULL);
	test_add(s, "uniform choice", test_select_uniform);
	test_add(s, "default only when nothing ready", test_select_default);
	test_add(s, "no wait: DEADLINE_EXCEEDED", test_no_wait_deadline);
	test_add(s, "never matches itself", test_select_never_matches_itself);
	test_add(s, "duplicate cases", test_duplicate_cases);
	test_add(s, "nil channel case", test_nil_channel_case);
	test_add(s, "resolution unlinks every waiter", test_select_resolution_unlinks_all);
	s = test_suite("engine.lifecycle", NULL, NULL);
	test_add(s, "cancel restores the channel", test_cancel_restores);
	test_add(s, "delete wakes waiters NOT_FOUND", test_delete);
	test_add(s, "anonymous channels", test_anonymous);
	test_add(s, "limits", test_limits);
	test_add(s, "callbacks call back in", test_callback_reentry);
	test_add(s, "100000 pending ops cancelled", test_many_pending);
	s = test_suite("hmap", NULL, NULL);
	test_add(s, "insert, find, remove, shrink, hash", test_hmap);
}

int
main(int argc, char **argv)
{
	return test_main(argc, argv, register_suites);
}
