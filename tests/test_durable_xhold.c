/*
 * test_durable_xhold.c: a durable channel's value held for a cross-node
 * select (PROTOCOL.md §17), against a real chand killed with SIGKILL and
 * started again on its journal.
 *
 * The owner of a channel runs a cross-node select's group as a SELECT
 * with `hold` on the home node's connection; the value it takes is lent
 * until XSETTLE: keep, and it leaves for good; give back (keep false, or
 * the home's connection ends), and it goes back ahead of the buffer. This
 * test is the home: it speaks SELECT hold and XSETTLE itself (the cluster
 * fixture's nodes share one configuration, so they cannot have a data_dir
 * each). After a kill -9, a value given back must be there, first, a
 * value kept must not, and a value still held (the owner killed before
 * XSETTLE) must be back as if given back: first, once, whether it came from
 * the buffer or straight from a sender, and across a compaction. With hold
 * 2 (a select that waits) a value is taken unless given back: gone after
 * a kill, kept when the home's connection ends, back when given back.
 *
 * SPDX-License-Identifier: BSD-2-Clause
 */
#include <inttypes.h>
#include <string.h>
#include <unistd.h>

#include "clock.h"
#include "durtest.h"
#include "srvtest.h"

/* Start chand on d: "h", a plain durable channel (cap 4), holds v1, v2, v3; c a raw connection. */
static void
setup_started(struct dur *d, struct test_conn *c)
{
	chan_t *h;

	CU_ASSERT_FATAL(dur_start(d) == 0);
	CU_ASSERT_FATAL(dur_make(d, "h", 4, &h) == CHAN_OK);
	CU_ASSERT_EQUAL(chan_send(chan_background(), h, "v1", 2), CHAN_OK);
	CU_ASSERT_EQUAL(chan_send(chan_background(), h, "v2", 2), CHAN_OK);
	CU_ASSERT_EQUAL(chan_send(chan_background(), h, "v3", 2), CHAN_OK);
	chan_free(h);
	CU_ASSERT_FATAL(test_conn_open(c, d->srv.port, true) == 0);
}

static void
setup(struct dur *d, struct test_conn *c)
{
	dur_init(d, "always");
	setup_started(d, c);
}

/*
 * Send a SELECT with hold (true, or PROTO_HOLD_PARKED: a select that
 * waits, whose value is taken unless given back) over a receive from
 * name, waiting wait_us. Returns its id.
 */
static uint64_t
select_start_hold(struct test_conn *c, const char *name, int64_t wait_us, int hold)
{
	struct proto_out o;
	struct proto_case k = { .dir = 0, .name = name, .name_len = strlen(name) };
	uint64_t id = c->next_id++;

	proto_out_init(&o);
	CU_ASSERT_FATAL(proto_req_select_hold(&o, id, wait_us, &k, 1, false, hold, 0) == 0);
	st_write(c, &o);
	proto_out_destroy(&o);
	return id;
}

static uint64_t
select_start(struct test_conn *c, const char *name, int64_t wait_us)
{
	return select_start_hold(c, name, wait_us, true);
}

/* A SELECT's reply r: it received want. */
static void
select_got(const struct proto_reply *r, const char *want)
{
	CU_ASSERT_EQUAL(r->status, STATUS_OK);
	CU_ASSERT_EQUAL(r->index, 0);
	CU_ASSERT(ST_VALUE_IS(*r, want));
}

/* SELECT with hold over a receive from "h", not waiting: it takes want. Returns its id. */
static uint64_t
select_held(struct test_conn *c, const char *want)
{
	struct proto_reply r;
	uint64_t id = select_start(c, "h", 0);

	st_reply(c, OP_SELECT, &r);
	select_got(&r, want);
	return id;
}

/* The same with hold 2, as a cross-node select that waits sends it: "h" has want ready. */
static uint64_t
select_taken(struct test_conn *c, const char *want)
{
	struct proto_reply r;
	uint64_t id = select_start_hold(c, "h", 10 * 1000000LL, PROTO_HOLD_PARKED);

	st_reply(c, OP_SELECT, &r);
	select_got(&r, want);
	return id;
}

/* Send XSETTLE for target. */
static void
xsettle_start(struct test_conn *c, uint64_t target, bool keep)
{
	struct proto_out o;

	proto_out_init(&o);
	CU_ASSERT_FATAL(proto_req_xsettle(&o, c->next_id++, target, keep) == 0);
	st_write(c, &o);
	proto_out_destroy(&o);
}

static void
xsettle(struct test_conn *c, uint64_t target, bool keep)
{
	struct proto_reply r;

	xsettle_start(c, target, keep);
	st_reply(c, OP_XSETTLE, &r);
	CU_ASSERT_EQUAL(r.status, STATUS_OK);
}

/*
 * Every change before this is in the journal: a durable SEND's OK comes
 * after its batch, and batches are written in order.
 */
static void
flush(struct dur *d)
{
	char buf[4];
	chan_t *mark;
	bool ok;

	CU_ASSERT_FATAL(dur_make(d, "mark", 1, &mark) == CHAN_OK);
	CU_ASSERT_EQUAL(chan_send(chan_background(), mark, "m", 1), CHAN_OK);
	CU_ASSERT_EQUAL(dur_try_recv(mark, buf, sizeof buf, &ok), 1);
	chan_free(mark);
}

/* kill -9 and restart: what name then holds, in order ("v1,v2"), into got. */
static void
after_kill_of(struct dur *d, const char *name, char *got, size_t cap)
{
	char buf[16];
	size_t n = 0;
	chan_t *h;
	bool ok;
	int rc;

	flush(d);
	dur_restart(d, true);
	h = dur_open(d, name);
	got[0] = '\0';
	while ((rc = dur_try_recv(h, buf, sizeof buf, &ok)) == 1 && n + strlen(buf) + 2 < cap)
		n += (size_t)snprintf(got + n, cap - n, "%s%s", n ? "," : "", buf);
	CU_ASSERT_EQUAL(rc, 0);
	chan_free(h);
}

static void
after_kill(struct dur *d, char *got, size_t cap)
{
	after_kill_of(d, "h", got, cap);
}

static void
expect_after_kill_of(struct dur *d, const char *name, const char *want)
{
	char got[64];

	after_kill_of(d, name, got, sizeof got);
	if (strcmp(got, want) != 0)
		printf("\n    wanted {%s}, got {%s}\n", want, got);
	CU_ASSERT_STRING_EQUAL(got, want);
}

static void
expect_after_kill(struct dur *d, const char *want)
{
	expect_after_kill_of(d, "h", want);
}

/* XSETTLE keep false: v1 goes back ahead of v2 and v3, and is in the journal so. */
static void
test_given_back(void)
{
	struct test_conn c;
	struct dur d;
	uint64_t id;

	setup(&d, &c);
	id = select_held(&c, "v1");
	CU_ASSERT_EQUAL(dur_len(&d, "h"), 2);
	xsettle(&c, id, false);
	CU_ASSERT_EQUAL(dur_len(&d, "h"), 3);
	test_conn_close(&c);
	expect_after_kill(&d, "v1,v2,v3");
	dur_free(&d);
}

/* XSETTLE keep true: v1 left for good (its POP is in the journal); v2, given back, stays. */
static void
test_kept(void)
{
	struct test_conn c;
	struct dur d;
	uint64_t id;

	setup(&d, &c);
	id = select_held(&c, "v1");
	xsettle(&c, id, true);
	id = select_held(&c, "v2");
	xsettle(&c, id, false);
	test_conn_close(&c);
	expect_after_kill(&d, "v2,v3");
	dur_free(&d);
}

/* The home's connection ends while it holds v1 and v2: both go back, in the order they came back. */
static void
test_home_gone(void)
{
	int64_t end = chan_now() + 10 * CHAN_SEC;
	struct test_conn c;
	char got[64];
	struct dur d;

	setup(&d, &c);
	(void)select_held(&c, "v1");
	(void)select_held(&c, "v2");
	test_conn_close(&c);
	while (dur_len(&d, "h") != 3 && chan_now() < end)
		usleep(2000);
	CU_ASSERT_FATAL(dur_len(&d, "h") == 3);
	/* they come back in the hold table's order: either is right, both must be there */
	after_kill(&d, got, sizeof got);
	if (strcmp(got, "v1,v2,v3") != 0 && strcmp(got, "v2,v1,v3") != 0)
		printf("\n    wanted {v1,v2,v3} (v1 and v2 in either order), got {%s}\n", got);
	CU_ASSERT(strcmp(got, "v1,v2,v3") == 0 || strcmp(got, "v2,v1,v3") == 0);
	dur_free(&d);
}

/*
 * Held and given back over and over until the journal compacts itself:
 * the snapshot keeps v1 as given back (ahead of v2, v3), once.
 */
static void
test_given_back_compacted(void)
{
	struct test_conn c;
	struct dur d;
	int k;

	dur_init(&d, "always");
	d.extra = "journal_compact_min = 16K";
	setup_started(&d, &c);
	for (k = 0; k < 20000 && !test_server_log_has(&d.srv, "journal compacted"); k++)
		xsettle(&c, select_held(&c, "v1"), false);
	CU_ASSERT_FATAL(k < 20000);
	test_conn_close(&c);
	expect_after_kill(&d, "v1,v2,v3");
	dur_free(&d);
}

/*
 * The owner is killed while it holds v1 (no XSETTLE, its connection never
 * ends cleanly): v1 is back, ahead of v2 and v3. The restart wrote it back
 * (REQUEUE): after a receive takes it, a second kill leaves v2 and v3.
 */
static void
test_held_killed(void)
{
	struct test_conn c;
	struct dur d;
	char buf[16];
	chan_t *h;
	bool ok;

	setup(&d, &c);
	(void)select_held(&c, "v1");
	flush(&d);
	dur_restart(&d, true);
	test_conn_close(&c);
	CU_ASSERT_EQUAL(dur_len(&d, "h"), 3);
	h = dur_open(&d, "h");
	CU_ASSERT_EQUAL(dur_try_recv(h, buf, sizeof buf, &ok), 1);
	CU_ASSERT_STRING_EQUAL(buf, "v1");
	chan_free(h);
	expect_after_kill(&d, "v2,v3");
	dur_free(&d);
}

/* v1 kept (its XSETTLE answered), v2 held at the kill: v1 is gone for good, v2 is back first. */
static void
test_kept_then_killed(void)
{
	struct test_conn c;
	struct dur d;

	setup(&d, &c);
	xsettle(&c, select_held(&c, "v1"), true);
	(void)select_held(&c, "v2");
	expect_after_kill(&d, "v2,v3");
	test_conn_close(&c);
	dur_free(&d);
}

/* The next two replies on c, whatever their order: a SELECT's (sel) and an XSETTLE's. */
static void
two_replies(struct test_conn *c, uint64_t sel, struct proto_reply *sr, struct proto_reply *xr)
{
	for (int k = 0; k < 2; k++) {
		const uint8_t *body;
		const char *why;
		uint64_t id;
		int status;
		long n = test_conn_frame(c, 10000, &body);

		CU_ASSERT_FATAL(n > 0);
		CU_ASSERT_FATAL(proto_reply_header(body, (size_t)n, &id, &status, &why) == STATUS_OK);
		CU_ASSERT_FATAL(proto_decode_reply(body, (size_t)n, id == sel ? OP_SELECT : OP_XSETTLE,
		    id == sel ? sr : xr, &why) == STATUS_OK);
	}
}

/*
 * "x" is sent straight to a held select waiting on the empty "w" (never
 * buffered), then given back straight to a second one waiting there; the
 * owner is killed holding it: "x" is back, once.
 */
static void
test_handed_straight(void)
{
	struct test_conn c, c2;
	struct proto_reply r, xr;
	uint64_t first, second;
	struct dur d;
	chan_t *w;

	setup(&d, &c);
	CU_ASSERT_FATAL(dur_make(&d, "w", 4, &w) == CHAN_OK);
	chan_free(w);
	CU_ASSERT_FATAL(test_conn_open(&c2, d.srv.port, true) == 0);
	first = select_start(&c, "w", 30 * 1000000LL);
	CU_ASSERT_FATAL(st_await_waiters(&c2, "w", -1, 1));
	CU_ASSERT_EQUAL(st_send_wait(&c2, "w", "x", 0), STATUS_OK);
	st_reply(&c, OP_SELECT, &r);
	select_got(&r, "x");
	second = select_start(&c, "w", 30 * 1000000LL);
	CU_ASSERT_FATAL(st_await_waiters(&c2, "w", -1, 1));
	test_conn_close(&c2);
	xsettle_start(&c, first, false);
	two_replies(&c, second, &r, &xr);
	select_got(&r, "x");
	CU_ASSERT_EQUAL(xr.status, STATUS_OK);
	CU_ASSERT_EQUAL(dur_len(&d, "w"), 0);
	expect_after_kill_of(&d, "w", "x");
	test_conn_close(&c);
	dur_free(&d);
}

/*
 * v1 is held while the journal compacts (v2 held and given back over and
 * over): the snapshot writes v1 in flight; after the kill it is back,
 * behind v2 (given back before it), ahead of v3.
 */
static void
test_held_compacted(void)
{
	struct test_conn c;
	struct dur d;
	int k;

	dur_init(&d, "always");
	d.extra = "journal_compact_min = 16K";
	setup_started(&d, &c);
	(void)select_held(&c, "v1");
	for (k = 0; k < 20000 && !test_server_log_has(&d.srv, "journal compacted"); k++)
		xsettle(&c, select_held(&c, "v2"), false);
	CU_ASSERT_FATAL(k < 20000);
	expect_after_kill(&d, "v2,v1,v3");
	test_conn_close(&c);
	dur_free(&d);
}

/*
 * hold 2: v1 taken unless given back is gone for the journal once its
 * reply came (a POP, as any receiver's): the owner killed while it is
 * held does not bring it back (at most once, as a plain RECV's value).
 */
static void
test_taken_killed(void)
{
	struct test_conn c;
	struct dur d;

	setup(&d, &c);
	(void)select_taken(&c, "v1");
	expect_after_kill(&d, "v2,v3");
	test_conn_close(&c);
	dur_free(&d);
}

/*
 * hold 2: v1 given back (XSETTLE keep false) is written back, first; taken
 * again and kept, it is gone; v2 taken and given back is first after the kill.
 */
static void
test_taken_given_back(void)
{
	struct test_conn c;
	struct dur d;

	setup(&d, &c);
	xsettle(&c, select_taken(&c, "v1"), false);
	CU_ASSERT_EQUAL(dur_len(&d, "h"), 3);
	xsettle(&c, select_taken(&c, "v1"), true);
	xsettle(&c, select_taken(&c, "v2"), false);
	test_conn_close(&c);
	expect_after_kill(&d, "v2,v3");
	dur_free(&d);
}

/*
 * The home's connection ends holding v1 taken by a select that waits
 * (hold 2) and v2 lent to one that does not (hold true): v2 goes back, v1
 * is kept (the home may have given it to its client). A CLOSE of "h" then
 * a drain sees it: a closed channel reports drained only once nothing is
 * lent, so the drain ends after the connection's end settled both.
 */
static void
test_taken_home_gone(void)
{
	chan_ctx_t *ctx;
	struct test_conn c;
	char got[32] = "", buf[16];
	struct dur d;
	chan_t *h;
	bool ok = true;
	int n = 0;

	setup(&d, &c);
	(void)select_taken(&c, "v1");
	(void)select_held(&c, "v2");
	test_conn_close(&c);
	h = dur_open(&d, "h");
	CU_ASSERT_EQUAL_FATAL(chan_close(chan_background(), h), CHAN_OK);
	CU_ASSERT_FATAL(chan_with_timeout(&ctx, chan_background(), 10 * CHAN_SEC) == CHAN_OK);
	while (n < 4) {
		chan_value_t v = { 0 };

		CU_ASSERT_EQUAL_FATAL(chan_recv(ctx, h, &v, &ok), CHAN_OK);
		if (!ok)
			break;
		snprintf(buf, sizeof buf, "%.*s", (int)v.len, (const char *)v.data);
		chan_value_clear(&v);
		snprintf(got + strlen(got), sizeof got - strlen(got), "%s%s", n++ ? "," : "", buf);
	}
	/* v2 went back to the head, maybe after the drain took v3 */
	if (strcmp(got, "v2,v3") != 0 && strcmp(got, "v3,v2") != 0)
		printf("\n    wanted {v2,v3} in either order, got {%s}\n", got);
	CU_ASSERT(!ok && (strcmp(got, "v2,v3") == 0 || strcmp(got, "v3,v2") == 0));
	chan_ctx_free(ctx);
	chan_free(h);
	dur_free(&d);
}

/*
 * An ack channel's values taken by SELECTs with hold on a connection that
 * then ends: hold true's ("a1") is untaken, back never delivered (count
 * 1 when received again); hold 2's ("a2") stayed in flight for that
 * connection, whose end NACKs it: delivered again, count 2.
 */
static void
test_taken_ack_home_gone(void)
{
	chan_delivery_opts_t o = CHAN_DELIVERY_OPTS_INIT;
	chan_ctx_t *ctx;
	struct test_conn c;
	struct proto_reply r;
	uint32_t count[2] = { 0, 0 };
	struct dur d;
	chan_t *a;

	setup(&d, &c);
	o.ack_wait_ns = 60 * CHAN_SEC;
	CU_ASSERT_FATAL(chan_make_opts(chan_background(), d.conn, "a", 4, &o, &a) == CHAN_OK);
	CU_ASSERT_EQUAL(chan_send(chan_background(), a, "a1", 2), CHAN_OK);
	CU_ASSERT_EQUAL(chan_send(chan_background(), a, "a2", 2), CHAN_OK);
	(void)select_start_hold(&c, "a", 0, true);
	st_reply(&c, OP_SELECT, &r);
	select_got(&r, "a1");
	CU_ASSERT(r.tag != 0 && r.count == 1);
	(void)select_start_hold(&c, "a", 10 * 1000000LL, PROTO_HOLD_PARKED);
	st_reply(&c, OP_SELECT, &r);
	select_got(&r, "a2");
	CU_ASSERT(r.tag != 0 && r.count == 1);
	test_conn_close(&c);
	/* both come back once the connection's end is handled: wait for them */
	CU_ASSERT_FATAL(chan_with_timeout(&ctx, chan_background(), 10 * CHAN_SEC) == CHAN_OK);
	for (int k = 0; k < 2; k++) {
		chan_msg_t m = { 0 };
		bool ok;

		CU_ASSERT_EQUAL_FATAL(chan_recv_msg(ctx, a, &m, &ok), CHAN_OK);
		CU_ASSERT_FATAL(ok && m.value.len == 2);
		count[((const char *)m.value.data)[1] - '1'] = m.count;
		CU_ASSERT_EQUAL(chan_ack(a, &m), CHAN_OK);
		chan_msg_clear(&m);
	}
	CU_ASSERT_EQUAL(count[0], 1);
	CU_ASSERT_EQUAL(count[1], 2);
	chan_ctx_free(ctx);
	chan_free(a);
	dur_free(&d);
}

/* Write a PING with id: a duplicate when a reply with that id is still held (§15). */
static void
ping_with_id(struct test_conn *c, uint64_t id)
{
	struct proto_out o;

	proto_out_init(&o);
	proto_req_ping(&o, id);
	st_write(c, &o);
	proto_out_destroy(&o);
}

/* The next reply on c is the PROTOCOL close for the duplicate id. */
static void
expect_duplicate(struct test_conn *c, uint64_t id)
{
	struct proto_reply r;
	char want[64];

	st_reply(c, OP_PING, &r);
	snprintf(want, sizeof want, "duplicate request id %" PRIu64, id);
	CU_ASSERT_EQUAL(r.status, STATUS_PROTOCOL);
	CU_ASSERT(r.msg_len >= strlen(want) && memcmp(r.msg, want, strlen(want)) == 0);
}

/*
 * What a home sends deferred (§17, "Deferred, when nobody waits"): an
 * XSETTLE with bit 6 has its OK held; a deferred CANCEL of a SELECT with
 * hold 2 has that SELECT's CANCELED held too, a hold true one's not. A
 * held reply keeps its id in use (§15): a PING reusing it is a duplicate.
 */
static void
test_deferred_settle_cancel(void)
{
	struct test_conn c;
	struct proto_out o;
	struct proto_reply r;
	uint64_t sid, xid, cid;
	struct dur d;
	chan_t *w;

	setup(&d, &c);
	CU_ASSERT_FATAL(dur_make(&d, "w", 4, &w) == CHAN_OK);
	chan_free(w);
	proto_out_init(&o);
	/* XSETTLE keep of v1, deferred: its OK is held */
	sid = select_taken(&c, "v1");
	xid = c.next_id++;
	CU_ASSERT_FATAL(proto_req_xsettle(&o, xid, sid, true) == 0 && proto_req_defer_last(&o) == 0);
	st_write(&c, &o);
	ping_with_id(&c, xid);
	st_reply(&c, OP_XSETTLE, &r);
	CU_ASSERT(r.id == xid && r.status == STATUS_OK);
	expect_duplicate(&c, xid);
	test_conn_close(&c);
	for (int hold = 1; hold <= PROTO_HOLD_PARKED; hold++) {
		CU_ASSERT_FATAL(test_conn_open(&c, d.srv.port, true) == 0);
		sid = select_start_hold(&c, "w", 30 * 1000000LL, hold);
		if (hold == PROTO_HOLD_PARKED) {
			st_reply(&c, OP_SELECT, &r);
			CU_ASSERT(r.id == sid && r.status == STATUS_STARTED);
		} else {
			CU_ASSERT_FATAL(st_await_waiters(&c, "w", -1, 1));
		}
		cid = c.next_id++;
		proto_out_reset(&o);
		CU_ASSERT_FATAL(proto_req_cancel(&o, cid, sid) == 0 && proto_req_defer_last(&o) == 0);
		st_write(&c, &o);
		ping_with_id(&c, sid);
		st_reply(&c, OP_SELECT, &r);
		CU_ASSERT(r.id == sid && r.status == STATUS_CANCELED);
		st_reply(&c, OP_CANCEL, &r);
		CU_ASSERT(r.id == cid && r.status == STATUS_OK);
		if (hold == PROTO_HOLD_PARKED) {
			expect_duplicate(&c, sid);	/* CANCELED was held */
		} else {
			st_reply(&c, OP_PING, &r);	/* CANCELED was written: sid was free */
			CU_ASSERT(r.id == sid && r.status == STATUS_OK);
		}
		test_conn_close(&c);
	}
	proto_out_destroy(&o);
	dur_free(&d);
}

static void
register_suites(void)
{
	CU_pSuite s = test_suite("durable_xhold", NULL, NULL);

	test_add(s, "a held value given back (XSETTLE keep false) survives kill -9, first",
	    test_given_back);
	test_add(s, "a held value kept (XSETTLE keep true) is gone after kill -9", test_kept);
	test_add(s, "held values given back by the home's disconnect survive kill -9", test_home_gone);
	test_add(s, "held values given back until the journal compacts survive kill -9, once",
	    test_given_back_compacted);
	test_add(s, "a value held when the owner is killed -9 is back first, once across kills",
	    test_held_killed);
	test_add(s, "a value kept (XSETTLE answered) stays gone after kill -9, one held is back",
	    test_kept_then_killed);
	test_add(s, "a value sent or given back straight to a waiting held select is back after kill -9",
	    test_handed_straight);
	test_add(s, "a value held while the journal compacts is back after kill -9", test_held_compacted);
	test_add(s, "hold 2: a value taken unless given back is gone after kill -9", test_taken_killed);
	test_add(s, "hold 2: given back (XSETTLE keep false) it is back first after kill -9",
	    test_taken_given_back);
	test_add(s, "hold 2: the home's end keeps a value taken; hold true's goes back",
	    test_taken_home_gone);
	test_add(s, "hold 2: the home's end NACKs an ack channel's value taken; hold true's is untaken",
	    test_taken_ack_home_gone);
	test_add(s, "a deferred XSETTLE's OK is held; a deferred CANCEL holds a hold 2 SELECT's CANCELED",
	    test_deferred_settle_cancel);
}

int
main(int argc, char **argv)
{
	return test_main(argc, argv, register_suites);
}
