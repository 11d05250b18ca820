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
 * each). After a kill -9, a value given back must be there, first, and a
 * value kept must not.
 *
 * SPDX-License-Identifier: BSD-2-Clause
 */
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

/* SELECT with hold over a receive from "h", not waiting: it takes want. Returns its id. */
static uint64_t
select_held(struct test_conn *c, const char *want)
{
	struct proto_out o;
	struct proto_case k = { .dir = 0, .name = "h", .name_len = 1 };
	struct proto_reply r;
	uint64_t id = c->next_id++;

	proto_out_init(&o);
	CU_ASSERT_FATAL(proto_req_select_hold(&o, id, 0, &k, 1, false, true) == 0);
	st_write(c, &o);
	st_reply(c, OP_SELECT, &r);
	CU_ASSERT_EQUAL(r.status, STATUS_OK);
	CU_ASSERT_EQUAL(r.index, 0);
	CU_ASSERT(ST_VALUE_IS(r, want));
	proto_out_destroy(&o);
	return id;
}

static void
xsettle(struct test_conn *c, uint64_t target, bool keep)
{
	struct proto_out o;
	struct proto_reply r;

	proto_out_init(&o);
	CU_ASSERT_FATAL(proto_req_xsettle(&o, c->next_id++, target, keep) == 0);
	st_write(c, &o);
	st_reply(c, OP_XSETTLE, &r);
	CU_ASSERT_EQUAL(r.status, STATUS_OK);
	proto_out_destroy(&o);
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

/* kill -9 and restart: what "h" then holds, in order ("v1,v2"), into got. */
static void
after_kill(struct dur *d, char *got, size_t cap)
{
	char buf[16];
	size_t n = 0;
	chan_t *h;
	bool ok;
	int rc;

	flush(d);
	dur_restart(d, true);
	h = dur_open(d, "h");
	got[0] = '\0';
	while ((rc = dur_try_recv(h, buf, sizeof buf, &ok)) == 1 && n + strlen(buf) + 2 < cap)
		n += (size_t)snprintf(got + n, cap - n, "%s%s", n ? "," : "", buf);
	CU_ASSERT_EQUAL(rc, 0);
	chan_free(h);
}

static void
expect_after_kill(struct dur *d, const char *want)
{
	char got[64];

	after_kill(d, got, sizeof got);
	if (strcmp(got, want) != 0)
		printf("\n    wanted {%s}, got {%s}\n", want, got);
	CU_ASSERT_STRING_EQUAL(got, want);
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
}

int
main(int argc, char **argv)
{
	return test_main(argc, argv, register_suites);
}
