/*
 * test_engine_select.c: select in the engine, part of test_engine: a
 * uniform choice among ready cases (fixed seed, wide statistical bounds),
 * default only when nothing is ready, DEADLINE_EXCEEDED when it may not
 * wait, a select never matching itself, duplicate and nil channel cases,
 * a blocked select's cases on one channel queued in random order (fresh
 * seed each run, 4σ bounds), every waiter unlinked once one case wins,
 * and ENGINE_CLAIM's send cases that report ready and send nothing; ENGINE_ORDERED's
 * poll in the order given.
 *
 * SPDX-License-Identifier: BSD-2-Clause
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "testutil.h"
#include "rand.h"
#include "server/chan.h"
#include "server/engine.h"
#include "server/value.h"
#include "enginetest.h"

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

/*
 * ENGINE_ORDERED (a cross-node select's group, its home's order): the
 * first ready case in the order given fires, every time; a case that is
 * not ready is passed over.
 */
static void
test_select_ordered(void)
{
	struct engine *e = new_engine(0, 0);
	struct chan *empty = mk(e, "empty", 1), *a = mk(e, "a", 1), *b = mk(e, "b", 1);
	struct engine_case cases[3] = {
		{ empty, CASE_RECV, NULL }, { a, CASE_RECV, NULL }, { b, CASE_RECV, NULL },
	};
	struct engine_result res;
	struct rec r = { 0 };

	send_now(e, b, "v");
	for (int k = 0; k < 200; k++) {
		send_now(e, a, "v");
		CU_ASSERT_FATAL(engine_submit(e, cases, 3, ENGINE_ORDERED, rec_done, &r, &r.op,
		    &res) == 0);
		CU_ASSERT_EQUAL_FATAL(res.index, 1);
		value_free(res.value);
	}
	engine_free(e);
}

/*
 * |count - trials/k| within 4σ of a Binomial(trials, 1/k), in integers:
 * (k·count − trials)² ≤ 16·k²·σ² = 16·trials·(k − 1).
 */
static bool
within_4sigma(int count, int trials, int k)
{
	int64_t d = (int64_t)k * count - trials;

	return d * d <= 16 * (int64_t)trials * (k - 1);
}

/*
 * Go's TestPseudoRandomSend: a select of k cases, all dir on ch, blocks,
 * then one counterpart operation wakes it; counts[] the case that fired.
 * A send case i sends "i", so the receiver also sees which one it was.
 */
static void
blocked_counts(struct engine *e, struct chan *ch, enum case_dir dir, int k, int trials,
    int *counts)
{
	static const char *const vals[] = { "0", "1", "2" };
	struct engine_case cases[3], wake = { ch, CASE_RECV, NULL };
	struct engine_result res, got;
	struct rec sel, r = { 0 };
	int i;

	while (trials-- > 0) {
		memset(&sel, 0, sizeof sel);
		for (i = 0; i < k; i++)
			cases[i] = (struct engine_case){ ch, dir, dir == CASE_SEND ? V(vals[i]) : NULL };
		CU_ASSERT_FATAL(engine_submit(e, cases, (size_t)k, ENGINE_WAIT, rec_done, &sel, &sel.op,
		    &res) == 1);
		if (dir == CASE_RECV)
			wake = (struct engine_case){ ch, CASE_SEND, V("v") };
		CU_ASSERT_FATAL(engine_submit(e, &wake, 1, 0, rec_done, &r, &r.op, &res) == 0);
		CU_ASSERT_FATAL(res.status == STATUS_OK && sel.calls == 1);
		i = sel.res.index;
		CU_ASSERT_FATAL(sel.res.status == STATUS_OK && i >= 0 && i < k);
		got = dir == CASE_SEND ? res : sel.res;
		CU_ASSERT(value_is(got.value, dir == CASE_SEND ? vals[i] : "v"));
		value_free(got.value);
		counts[i]++;
	}
	CU_ASSERT_EQUAL(engine_nwaiters(e), 0);
}

/* An engine seeded afresh each run (the seed printed on failure): no lucky seed. */
static struct engine *
new_engine_fresh(uint64_t *seed)
{
	struct engine *e = new_engine(0, 0);
	struct rand_state r;

	rand_seed(&r);
	*seed = rand_next(&r);
	engine_seed(e, *seed);
	return e;
}

static void
check_shares(const int *counts, int trials, int k, uint64_t seed, const char *what)
{
	for (int i = 0; i < k; i++) {
		CU_ASSERT(within_4sigma(counts[i], trials, k));
		if (!within_4sigma(counts[i], trials, k))
			fprintf(stderr, "%s: case %d fired %d of %d times (seed %" PRIu64 ")\n", what, i,
			    counts[i], trials, seed);
	}
}

/* Several cases on one channel, blocked, then woken once: each wins equally often. */
static void
test_blocked_select_random(void)
{
	enum { TRIALS = 2000 };
	uint64_t seed;
	struct engine *e = new_engine_fresh(&seed);
	struct chan *ch = mk(e, "c", 0);
	int send2[2] = { 0 }, recv2[2] = { 0 }, send3[3] = { 0 }, recv3[3] = { 0 };

	blocked_counts(e, ch, CASE_SEND, 2, TRIALS, send2);
	check_shares(send2, TRIALS, 2, seed, "2 send cases");
	blocked_counts(e, ch, CASE_RECV, 2, TRIALS, recv2);
	check_shares(recv2, TRIALS, 2, seed, "2 receive cases");
	blocked_counts(e, ch, CASE_SEND, 3, TRIALS, send3);
	check_shares(send3, TRIALS, 3, seed, "3 send cases");
	blocked_counts(e, ch, CASE_RECV, 3, TRIALS, recv3);
	check_shares(recv3, TRIALS, 3, seed, "3 receive cases");
	engine_free(e);
}

/*
 * Only a select's own cases are shuffled: across operations the queue stays
 * FIFO, so an older select (whichever of its cases) is served first.
 */
static void
test_blocked_selects_fifo(void)
{
	uint64_t seed;
	struct engine *e = new_engine_fresh(&seed);
	struct chan *ch = mk(e, "c", 0);
	struct engine_case cases[3] = { { ch, CASE_RECV, NULL }, { ch, CASE_RECV, NULL },
	    { ch, CASE_RECV, NULL } };
	struct engine_result res;
	struct rec sel[3], plain;
	char v[8];
	int i, round;

	for (round = 0; round < 200; round++) {
		memset(sel, 0, sizeof sel);
		for (i = 0; i < 3; i++)
			CU_ASSERT_FATAL(engine_submit(e, cases, 3, ENGINE_WAIT, rec_done, &sel[i],
			    &sel[i].op, &res) == 1);
		recv_wait(e, ch, &plain);
		CU_ASSERT_EQUAL(chan_nreceivers(ch), 10);
		for (i = 0; i < 4; i++) {
			snprintf(v, sizeof v, "v%d", i);
			send_now(e, ch, v);
			if (i < 3) {
				CU_ASSERT_FATAL(sel[i].calls == 1);
				CU_ASSERT(value_is(sel[i].res.value, v));
				value_free(sel[i].res.value);
				CU_ASSERT_EQUAL(chan_nreceivers(ch), (uint32_t)(7 - 3 * i));
			}
		}
		CU_ASSERT(plain.calls == 1 && value_is(plain.res.value, "v3"));
		value_free(plain.res.value);
		CU_ASSERT_EQUAL(engine_nwaiters(e), 0);
	}
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
	struct engine_case rcase = { ch, CASE_RECV, NULL };
	struct engine_result res;
	struct rec sel = { 0 }, r = { 0 };

	CU_ASSERT_FATAL(engine_submit(e, cases, 2, ENGINE_WAIT, rec_done, &sel, &sel.op, &res) == 1);
	CU_ASSERT_EQUAL(chan_nreceivers(ch), 2);
	send_now(e, ch, "once");
	CU_ASSERT_EQUAL(sel.calls, 1);
	CU_ASSERT(sel.res.index == 0 || sel.res.index == 1);	/* queued in random order */
	CU_ASSERT(value_is(sel.res.value, "once"));
	value_free(sel.res.value);
	CU_ASSERT_EQUAL(chan_nreceivers(ch), 0);
	/* Two sends on one channel: exactly one value is taken. */
	memset(&sel, 0, sizeof sel);
	cases[0] = (struct engine_case){ ch, CASE_SEND, V("first") };
	cases[1] = (struct engine_case){ ch, CASE_SEND, V("second") };
	CU_ASSERT_FATAL(engine_submit(e, cases, 2, ENGINE_WAIT, rec_done, &sel, &sel.op, &res) == 1);
	CU_ASSERT_EQUAL(chan_nsenders(ch), 2);
	CU_ASSERT_FATAL(engine_submit(e, &rcase, 1, 0, rec_done, &r, &r.op, &res) == 0);
	CU_ASSERT_EQUAL(sel.calls, 1);
	CU_ASSERT_FATAL(sel.res.index == 0 || sel.res.index == 1);
	CU_ASSERT(value_is(res.value, sel.res.index == 0 ? "first" : "second"));
	value_free(res.value);
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

/*
 * ENGINE_CLAIM (a cross-node select's send cases): a ready send case
 * reports ready with its own value and sends nothing; waiting, it is
 * reported when a receive would take it, and that receive goes on (to the
 * buffer, the next sender, or its own wait); a claim reserves its
 * receiver or slot against other claims until settled; a closed channel
 * is still CLOSED; receive cases are untouched.
 */
static void
test_claim_send(void)
{
	struct engine *e = new_engine(0, 0);
	struct chan *u = mk(e, "u", 0), *b = mk(e, "b", 1);
	struct engine_case c[2] = { { u, CASE_SEND, NULL }, { b, CASE_RECV, NULL } };
	struct engine_result res;
	struct rec r = { 0 }, rr = { 0 }, rs = { 0 };

	/* nothing ready: it waits */
	c[0].value = V("x");
	CU_ASSERT_FATAL(engine_submit(e, c, 2, ENGINE_WAIT | ENGINE_CLAIM, rec_done, &r, &r.op,
	    &res) == 1);
	/* a receiver arrives: the claim is reported, the receiver waits on */
	recv_wait(e, u, &rr);
	CU_ASSERT_EQUAL(r.calls, 1);
	CU_ASSERT(r.res.status == STATUS_OK && r.res.index == 0 && r.res.claimed);
	CU_ASSERT(r.res.ch == u && value_is(r.res.value, "x"));
	value_free(r.res.value);
	engine_claim_next(e, u);	/* not granted: the receiver it reserved is free again */
	CU_ASSERT_EQUAL(rr.calls, 0);
	CU_ASSERT_EQUAL(chan_nsenders(u), 0);
	CU_ASSERT_EQUAL(chan_nreceivers(b), 0);
	/* a receiver waiting: ready at once, nothing sent */
	c[0].value = V("y");
	CU_ASSERT_FATAL(engine_submit(e, c, 1, ENGINE_WAIT | ENGINE_CLAIM, rec_done, &r, &r.op,
	    &res) == 0);
	CU_ASSERT(res.status == STATUS_OK && res.claimed && value_is(res.value, "y"));
	value_free(res.value);
	CU_ASSERT_EQUAL(rr.calls, 0);
	/* the receiver is reserved by that claim: another claim waits (a plain send would not) */
	c[0].value = V("y2");
	r = (struct rec){ 0 };
	CU_ASSERT_FATAL(engine_submit(e, c, 1, ENGINE_WAIT | ENGINE_CLAIM, rec_done, &r, &r.op,
	    &res) == 1);
	/* the first not granted: the chance goes to the waiting one */
	engine_claim_next(e, u);
	CU_ASSERT(r.calls == 1 && r.res.claimed && value_is(r.res.value, "y2"));
	value_free(r.res.value);
	engine_claim_next(e, u);
	/* a plain send takes the receiver */
	send_now(e, u, "z");
	CU_ASSERT(rr.calls == 1 && value_is(rr.res.value, "z"));
	value_free(rr.res.value);
	/* a full buffer: a receive takes the head, the plain sender's value moves in ahead of the claim */
	send_now(e, b, "h");
	c[0] = (struct engine_case){ b, CASE_SEND, V("t") };
	r = (struct rec){ 0 };
	CU_ASSERT_FATAL(engine_submit(e, c, 1, ENGINE_WAIT | ENGINE_CLAIM, rec_done, &r, &r.op,
	    &res) == 1);
	send_wait(e, b, "plain", &rs);
	recv_now(e, b, "h");
	CU_ASSERT(rs.calls == 1 && rs.res.status == STATUS_OK);
	CU_ASSERT_EQUAL(r.calls, 0);
	CU_ASSERT_EQUAL(chan_len(b), 1);
	/* ... the next receive frees the slot: the claim is reported */
	recv_now(e, b, "plain");
	CU_ASSERT(r.calls == 1 && r.res.claimed && value_is(r.res.value, "t"));
	value_free(r.res.value);
	engine_claim_next(e, b);
	/* two claims waiting, one receiver: one is reported; that one unused, the next is */
	{
		struct rec w1 = { 0 }, w2 = { 0 }, rv = { 0 };
		struct engine_case one = { u, CASE_SEND, V("1") };

		CU_ASSERT_FATAL(engine_submit(e, &one, 1, ENGINE_WAIT | ENGINE_CLAIM, rec_done, &w1,
		    &w1.op, &res) == 1);
		one.value = V("2");
		CU_ASSERT_FATAL(engine_submit(e, &one, 1, ENGINE_WAIT | ENGINE_CLAIM, rec_done, &w2,
		    &w2.op, &res) == 1);
		recv_wait(e, u, &rv);
		CU_ASSERT(w1.calls == 1 && w1.res.claimed && value_is(w1.res.value, "1"));
		CU_ASSERT_EQUAL(w2.calls, 0);
		value_free(w1.res.value);
		engine_claim_next(e, u);
		CU_ASSERT(w2.calls == 1 && w2.res.claimed);
		/* granted: sent now, on the receiver it reserved */
		CU_ASSERT_EQUAL(engine_send_claimed(e, u, w2.res.value), STATUS_OK);
		CU_ASSERT(rv.calls == 1 && value_is(rv.res.value, "2"));
		value_free(rv.res.value);
		engine_claim_next(e, u);	/* nothing waits: nothing happens */
	}
	/* a receive that may not wait: at once with no claiming sender; else it waits for the claim */
	{
		struct rec w = { 0 }, p = { 0 };
		struct engine_case snd = { u, CASE_SEND, V("cw") }, rcv = { u, CASE_RECV, NULL };

		CU_ASSERT_FATAL(engine_submit(e, &rcv, 1, ENGINE_CLAIM_WAIT, rec_done, &p, &p.op,
		    &res) == 0);
		CU_ASSERT_EQUAL(res.status, STATUS_DEADLINE_EXCEEDED);
		CU_ASSERT_FATAL(engine_submit(e, &snd, 1, ENGINE_WAIT | ENGINE_CLAIM, rec_done, &w,
		    &w.op, &res) == 1);
		CU_ASSERT_FATAL(engine_submit(e, &rcv, 1, ENGINE_CLAIM_WAIT, rec_done, &p, &p.op,
		    &res) == 1);
		CU_ASSERT(w.calls == 1 && w.res.claimed && value_is(w.res.value, "cw"));
		CU_ASSERT_EQUAL(p.calls, 0);
		/* granted: the send reaches the waiting receive */
		CU_ASSERT_EQUAL(engine_send_claimed(e, u, w.res.value), STATUS_OK);
		CU_ASSERT(p.calls == 1 && p.res.status == STATUS_OK && value_is(p.res.value, "cw"));
		value_free(p.res.value);
	}
	/* granted too late: a plain sender took the receiver it found; nothing is sent */
	{
		struct rec w = { 0 }, rv = { 0 };
		struct engine_case snd = { u, CASE_SEND, V("late") };

		recv_wait(e, u, &rv);
		CU_ASSERT_FATAL(engine_submit(e, &snd, 1, ENGINE_CLAIM, rec_done, &w, &w.op, &res) == 0);
		CU_ASSERT(res.claimed && value_is(res.value, "late"));
		send_now(e, u, "plain");
		CU_ASSERT(rv.calls == 1 && value_is(rv.res.value, "plain"));
		value_free(rv.res.value);
		CU_ASSERT_EQUAL(engine_send_claimed(e, u, res.value), STATUS_DEADLINE_EXCEEDED);
		CU_ASSERT_EQUAL(chan_nsenders(u), 0);
	}
	/* closed: CLOSED, as ever */
	CU_ASSERT_EQUAL(engine_close(e, u), STATUS_OK);
	c[0] = (struct engine_case){ u, CASE_SEND, V("w") };
	CU_ASSERT_FATAL(engine_submit(e, c, 1, ENGINE_WAIT | ENGINE_CLAIM, rec_done, &r, &r.op,
	    &res) == 0);
	CU_ASSERT(res.status == STATUS_CLOSED && !res.claimed && res.value == NULL);
	engine_free(e);
}

void
register_engine_select(void)
{
	CU_pSuite s = test_suite("engine.select", NULL, NULL);

	test_add(s, "uniform choice", test_select_uniform);
	test_add(s, "ENGINE_ORDERED: the first ready case in the order given", test_select_ordered);
	test_add(s, "default only when nothing ready", test_select_default);
	test_add(s, "no wait: DEADLINE_EXCEEDED", test_no_wait_deadline);
	test_add(s, "never matches itself", test_select_never_matches_itself);
	test_add(s, "duplicate cases", test_duplicate_cases);
	test_add(s, "blocked cases on one channel fire at random", test_blocked_select_random);
	test_add(s, "blocked selects stay FIFO among themselves", test_blocked_selects_fifo);
	test_add(s, "nil channel case", test_nil_channel_case);
	test_add(s, "resolution unlinks every waiter", test_select_resolution_unlinks_all);
	test_add(s, "ENGINE_CLAIM: send cases report ready, send nothing", test_claim_send);
}
