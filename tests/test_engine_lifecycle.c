/*
 * test_engine_lifecycle.c: the life of operations and channels in the
 * engine, part of test_engine: a cancel restoring the channel, delete
 * waking waiters with NOT_FOUND, anonymous channels, the engine's limits,
 * done callbacks that call back into the engine, and 100,000 pending
 * operations cancelled.
 *
 * SPDX-License-Identifier: BSD-2-Clause
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"
#include "server/chan.h"
#include "server/engine.h"
#include "server/value.h"
#include "enginetest.h"

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

/* A lowercase hex digit's value, or -1. */
static int
hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* '~' and 32 lowercase hex digits (PROTOCOL.md §6). */
static bool
anon_name_ok(const char *n, size_t len)
{
	if (len != 33 || n[0] != '~')
		return false;
	for (size_t i = 1; i < len; i++)
		if (hexval(n[i]) < 0)
			return false;
	return true;
}

static int
name_cmp(const void *x, const void *y)
{
	return memcmp(x, y, 33);
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
	CU_ASSERT(anon_name_ok(an, alen) && anon_name_ok(bn, blen));
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

/*
 * Anonymous names are capabilities: 128 random bits, none of the old
 * counter's "~0", "~1"... Over 1,000 names every hex digit shows up in
 * every position (a counter or a short random part would leave some
 * position constant; by chance a digit misses one with p < 1e-25).
 */
static void
test_anonymous_names_unguessable(void)
{
	enum { N = 1000 };
	struct engine *e = new_engine(0, 0);
	char (*names)[33] = calloc(N, sizeof *names);
	bool seen[33][16] = { { false } };
	struct chan *ch;
	const char *n;
	size_t len;
	int i, d;

	CU_ASSERT_FATAL(names != NULL);
	for (i = 0; i < N; i++) {
		ch = mk(e, NULL, 0);
		n = chan_name(ch, &len);
		CU_ASSERT_FATAL(anon_name_ok(n, len));
		memcpy(names[i], n, 33);
		for (size_t p = 1; p < 33; p++)
			seen[p][hexval(n[p])] = true;
	}
	CU_ASSERT_EQUAL(engine_nchannels(e), N);
	qsort(names, N, sizeof *names, name_cmp);
	for (i = 1; i < N; i++)
		CU_ASSERT(memcmp(names[i - 1], names[i], 33) != 0);
	for (i = 1; i < 33; i++)
		for (d = 0; d < 16; d++)
			CU_ASSERT(seen[i][d]);
	CU_ASSERT_PTR_NULL(engine_lookup(e, "~0", 2));
	CU_ASSERT_PTR_NULL(engine_lookup(e, "~1", 2));
	CU_ASSERT_PTR_NULL(engine_lookup(e, "~3e7", 4));	/* the old counter's last */
	free(names);
	engine_free(e);
}

/*
 * A cluster node's anonymous names end with "@" and its name, which
 * engine_anon_maker finds again; names it does not take are none's.
 */
static void
test_anonymous_maker(void)
{
	struct engine *e = new_engine(0, 0);
	char long_node[ENGINE_MAKER_MAX + 2], name[ENGINE_ANON_NAME_LEN + 1 + ENGINE_MAKER_MAX + 1];
	const char *n, *m;
	struct chan *ch;
	size_t len, mlen;

	memset(long_node, 'x', sizeof long_node - 1);
	long_node[sizeof long_node - 1] = '\0';
	CU_ASSERT_EQUAL(engine_set_maker(e, ""), STATUS_BAD_REQUEST);
	CU_ASSERT_EQUAL(engine_set_maker(e, long_node), STATUS_BAD_REQUEST);
	ch = mk(e, NULL, 0);	/* no maker set: a single node's name */
	n = chan_name(ch, &len);
	CU_ASSERT(anon_name_ok(n, len));
	CU_ASSERT_PTR_NULL(engine_anon_maker(n, len, &mlen));
	long_node[ENGINE_MAKER_MAX] = '\0';	/* the longest name */
	CU_ASSERT_EQUAL_FATAL(engine_set_maker(e, long_node), STATUS_OK);
	n = chan_name(mk(e, NULL, 0), &len);
	CU_ASSERT_EQUAL(len, ENGINE_ANON_NAME_LEN + 1 + ENGINE_MAKER_MAX);
	CU_ASSERT(engine_anon_maker(n, len, &mlen) != NULL && mlen == ENGINE_MAKER_MAX);
	CU_ASSERT_EQUAL_FATAL(engine_set_maker(e, "n1"), STATUS_OK);
	ch = mk(e, NULL, 1);
	n = chan_name(ch, &len);
	CU_ASSERT_EQUAL_FATAL(len, ENGINE_ANON_NAME_LEN + 3);
	CU_ASSERT(anon_name_ok(n, ENGINE_ANON_NAME_LEN));
	CU_ASSERT(memcmp(n + ENGINE_ANON_NAME_LEN, "@n1", 3) == 0);
	CU_ASSERT_PTR_EQUAL(engine_lookup(e, n, len), ch);
	m = engine_anon_maker(n, len, &mlen);
	CU_ASSERT(m != NULL && mlen == 2 && memcmp(m, "n1", 2) == 0);
	/* "@" alone, no "@", not anonymous, a maker longer than any */
	memcpy(name, n, ENGINE_ANON_NAME_LEN + 1);
	CU_ASSERT_PTR_NULL(engine_anon_maker(name, ENGINE_ANON_NAME_LEN + 1, &mlen));
	name[ENGINE_ANON_NAME_LEN] = '.';
	name[ENGINE_ANON_NAME_LEN + 1] = 'a';
	CU_ASSERT_PTR_NULL(engine_anon_maker(name, ENGINE_ANON_NAME_LEN + 2, &mlen));
	name[ENGINE_ANON_NAME_LEN] = '@';
	name[0] = 'x';
	CU_ASSERT_PTR_NULL(engine_anon_maker(name, ENGINE_ANON_NAME_LEN + 2, &mlen));
	name[0] = '~';
	CU_ASSERT_PTR_NOT_NULL(engine_anon_maker(name, ENGINE_ANON_NAME_LEN + 2, &mlen));
	memset(name + ENGINE_ANON_NAME_LEN + 1, 'y', ENGINE_MAKER_MAX + 1);
	CU_ASSERT_PTR_NULL(engine_anon_maker(name, sizeof name, &mlen));
	CU_ASSERT_PTR_NOT_NULL(engine_anon_maker(name, sizeof name - 1, &mlen));
	CU_ASSERT_EQUAL(mlen, ENGINE_MAKER_MAX);
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

/* ---- close errors ----------------------------------------------------------------- */

/* What a done callback saw of a close error, copied while it was valid. */
struct err_rec {
	int calls;
	bool ok, has_err;
	uint64_t code;
	char msg[32];
};

static void
err_done(void *arg, struct engine_result *res)
{
	struct err_rec *r = arg;

	r->calls++;
	r->ok = res->ok;
	if ((r->has_err = res->err != NULL)) {
		r->code = res->err->code;
		snprintf(r->msg, sizeof r->msg, "%.*s", (int)res->err->len, res->err->msg);
	}
	value_free(res->value);
}

static int
recv_err_wait(struct engine *e, struct chan *ch, struct err_rec *r)
{
	struct engine_case c = { ch, CASE_RECV, NULL };
	struct engine_result now;
	struct engine_op *op;

	return engine_submit(e, &c, 1, ENGINE_WAIT, err_done, r, &op, &now);
}

/* A waiting receiver and one after the buffer drained get the error; the channel keeps it. */
static void
test_close_err(void)
{
	struct engine *e = new_engine(0, 0);
	struct chan *ch = mk(e, "c", 1), *w = mk(e, "w", 0), *plain = mk(e, "p", 0);
	struct close_err *err = close_err_new(7, "disk full", 9);
	struct engine_case c = { ch, CASE_RECV, NULL };
	struct engine_result now;
	struct engine_op *op;
	struct err_rec r = { 0 };

	CU_ASSERT_FATAL(err != NULL);
	CU_ASSERT_EQUAL(recv_err_wait(e, w, &r), 1);
	CU_ASSERT_EQUAL(engine_close_err(e, w, err), STATUS_OK);
	CU_ASSERT(r.calls == 1 && !r.ok && r.has_err && r.code == 7 && strcmp(r.msg, "disk full") == 0);
	/* one error closes many channels: each takes its own reference */
	send_now(e, ch, "a");
	CU_ASSERT_EQUAL(engine_close_err(e, ch, err), STATUS_OK);
	close_err_unref(err);
	CU_ASSERT_PTR_EQUAL(chan_close_error(ch), err);
	recv_now(e, ch, "a");
	CU_ASSERT_EQUAL(engine_submit(e, &c, 1, 0, err_done, &r, &op, &now), 0);
	CU_ASSERT(now.status == STATUS_OK && !now.ok && now.err == err && now.value == NULL);
	/* a second close is CLOSED and changes nothing; a plain close has none */
	CU_ASSERT_EQUAL(engine_close_err(e, ch, NULL), STATUS_CLOSED);
	CU_ASSERT_PTR_EQUAL(chan_close_error(ch), err);
	CU_ASSERT_PTR_NULL(chan_close_error(plain));
	CU_ASSERT_EQUAL(engine_close(e, plain), STATUS_OK);
	CU_ASSERT_PTR_NULL(chan_close_error(plain));
	c.ch = plain;
	CU_ASSERT_EQUAL(engine_submit(e, &c, 1, 0, err_done, &r, &op, &now), 0);
	CU_ASSERT(now.status == STATUS_OK && !now.ok && now.err == NULL);
	engine_free(e);	/* the channels drop the last references (ASan: nothing leaks) */
}

/* The close frees an anonymous channel (its waiter held it last) before done runs: the error lives on. */
static void
test_close_err_outlives_channel(void)
{
	struct engine *e = new_engine(0, 0);
	struct chan *ch = mk(e, NULL, 0);
	struct close_err *err = close_err_new(UINT64_MAX, "gone", 4);
	struct err_rec r = { 0 };

	CU_ASSERT_FATAL(err != NULL);
	CU_ASSERT_EQUAL(recv_err_wait(e, ch, &r), 1);
	engine_release(e, ch);	/* the waiter's hold is the last */
	CU_ASSERT_EQUAL(engine_close_err(e, ch, err), STATUS_OK);
	close_err_unref(err);
	CU_ASSERT(r.calls == 1 && !r.ok && r.has_err && r.code == UINT64_MAX && strcmp(r.msg, "gone") == 0);
	CU_ASSERT_EQUAL(engine_nchannels(e), 0);
	engine_free(e);
}

/* ---- the change hook of durable channels (durable.c) -------------------- */

struct changes {
	char log[256];
};

static void
on_change(void *arg, struct chan *ch, enum engine_change what, const struct value *v)
{
	static const char *const kind[] = { "push", "pop", "close", "delete" };
	struct changes *c = arg;
	size_t nlen, len = strlen(c->log);
	const char *name = chan_name(ch, &nlen);

	snprintf(c->log + len, sizeof c->log - len, "%s %.*s%s%.*s;", kind[what], (int)nlen, name,
	    v ? " " : "", v ? (int)value_len(v) : 0, v ? (const char *)value_data(v) : "");
}

static void
test_change_hook(void)
{
	struct engine *e = new_engine(0, 0);
	struct chan *d = mk(e, "d", 1), *p = mk(e, "p", 1);
	struct changes c = { "" };
	struct rec s;

	engine_set_change_hook(e, on_change, &c);
	chan_set_durable(d);
	CU_ASSERT(chan_durable(d) && !chan_durable(p));
	send_now(e, p, "x");		/* a plain channel: never reported */
	recv_now(e, p, "x");
	send_now(e, d, "a");
	send_wait(e, d, "b", &s);	/* full: waits */
	CU_ASSERT_STRING_EQUAL(c.log, "push d a;");
	/* the head leaves before the waiting sender's value joins the tail */
	recv_now(e, d, "a");
	CU_ASSERT_STRING_EQUAL(c.log, "push d a;pop d a;push d b;");
	CU_ASSERT_EQUAL(engine_close(e, d), STATUS_OK);
	CU_ASSERT_EQUAL(engine_delete(e, d, NULL), STATUS_OK);
	CU_ASSERT_STRING_EQUAL(c.log, "push d a;pop d a;push d b;close d;delete d;");
	engine_release(e, d);
	engine_release(e, p);
	engine_free(e);
}

void
register_engine_lifecycle(void)
{
	CU_pSuite s = test_suite("engine.lifecycle", NULL, NULL);

	test_add(s, "cancel restores the channel", test_cancel_restores);
	test_add(s, "durable channels' changes reach the hook in order; plain ones never", test_change_hook);
	test_add(s, "delete wakes waiters NOT_FOUND", test_delete);
	test_add(s, "anonymous channels", test_anonymous);
	test_add(s, "anonymous names: 128 random bits, not ~0, ~1", test_anonymous_names_unguessable);
	test_add(s, "anonymous names of a cluster node name it", test_anonymous_maker);
	test_add(s, "limits", test_limits);
	test_add(s, "callbacks call back in", test_callback_reentry);
	test_add(s, "100000 pending ops cancelled", test_many_pending);
	test_add(s, "close with an error: receivers get it, the channel keeps it", test_close_err);
	test_add(s, "a close error outlives the channel its close freed", test_close_err_outlives_channel);
}
