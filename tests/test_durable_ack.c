/*
 * test_durable_ack.c: issue 18's durable ack channels against a real chand.
 *
 * MAKE with both ack_wait and durable: the channel's delivery options are
 * kept in its DECLARE and come back at a restart (INFO, MAKE again with
 * the same options opens it, with others EXISTS), with its buffered values,
 * after a clean stop and after a compaction.
 *
 * A missing segment: a journal of three segments (4 MiB values, fsync
 * no, no compaction) loses its middle one: chand refuses to start, naming
 * the missing file; with --repair it starts.
 *
 * SPDX-License-Identifier: BSD-2-Clause
 */
#include <poll.h>
#include <unistd.h>
#include "clock.h"
#include "durtest.h"

/* Run chand with args to its exit: its status, its stdout and stderr in out. */
static int
run_chand(const char *const *args, char *out, size_t cap)
{
	return test_run(getenv("CHAND") ? getenv("CHAND") : "server/chand", args, out, cap);
}

static void
ack_opts(chan_delivery_opts_t *o)
{
	chan_delivery_opts_t init = CHAN_DELIVERY_OPTS_INIT;

	*o = init;
	o->ack_wait_ns = 7 * CHAN_SEC;
	o->max_deliver = 3;
	o->max_unacked = 17;
	o->max_ack_pending = 40;
	o->dead_letter = "jobs.dead";
	o->durable = true;
}

/* INFO of "jobs" shows the options ack_opts gives. */
static void
expect_opts(struct dur *d)
{
	chan_delivery_opts_t o;
	chan_info_t i;
	chan_t *ch;

	ack_opts(&o);
	CU_ASSERT_FATAL(chan_make_opts(chan_background(), d->conn, "jobs", 4, &o, &ch) == CHAN_OK);
	CU_ASSERT_EQUAL(chan_info(chan_background(), ch, &i), CHAN_OK);
	CU_ASSERT(i.durable);
	CU_ASSERT_EQUAL(i.ack_wait_ns, 7 * CHAN_SEC);
	CU_ASSERT_EQUAL(i.max_unacked, 17);
	CU_ASSERT_EQUAL(i.max_ack_pending, 40);
	chan_free(ch);
	/* another max_deliver or dead_letter: the stored ones differ, EXISTS */
	o.max_deliver = 4;
	CU_ASSERT_EQUAL(chan_make_opts(chan_background(), d->conn, "jobs", 4, &o, &ch), CHAN_EEXISTS);
	ack_opts(&o);
	o.dead_letter = "other";
	CU_ASSERT_EQUAL(chan_make_opts(chan_background(), d->conn, "jobs", 4, &o, &ch), CHAN_EEXISTS);
	o.dead_letter = NULL;
	CU_ASSERT_EQUAL(chan_make_opts(chan_background(), d->conn, "jobs", 4, &o, &ch), CHAN_EEXISTS);
}

static void
recv_acked(struct dur *d, const char *want)
{
	chan_msg_t m = { 0 };
	chan_t *ch;
	bool ok;

	CU_ASSERT_FATAL(chan_open(chan_background(), d->conn, "jobs", &ch) == CHAN_OK);
	CU_ASSERT_EQUAL(chan_recv_msg(chan_background(), ch, &m, &ok), CHAN_OK);
	CU_ASSERT(ok && m.tag != 0 && m.count == 1);
	CU_ASSERT(m.value.len == strlen(want) && memcmp(m.value.data, want, m.value.len) == 0);
	CU_ASSERT_EQUAL(chan_ack_n(chan_background(), ch, &m.tag, 1), CHAN_OK);
	chan_msg_clear(&m);
	chan_free(ch);
}

static void
test_options_survive(void)
{
	struct dur d;
	chan_delivery_opts_t o;
	chan_t *ch;

	dur_init(&d, "always");
	CU_ASSERT_FATAL(dur_start(&d) == 0);
	ack_opts(&o);
	CU_ASSERT_FATAL(chan_make_opts(chan_background(), d.conn, "jobs", 4, &o, &ch) == CHAN_OK);
	CU_ASSERT_EQUAL(chan_send(chan_background(), ch, "one", 3), CHAN_OK);
	CU_ASSERT_EQUAL(chan_send(chan_background(), ch, "two", 3), CHAN_OK);
	chan_free(ch);
	expect_opts(&d);
	dur_stop(&d, true);

	/* kill -9, then the options and both values are back */
	CU_ASSERT_FATAL(dur_start(&d) == 0);
	expect_opts(&d);
	recv_acked(&d, "one");
	dur_stop(&d, false);

	/* churn on another channel until the journal is compacted: the snapshot keeps the options */
	d.extra = "journal_compact_min = 16K";
	CU_ASSERT_FATAL(dur_start(&d) == 0);
	expect_opts(&d);
	recv_acked(&d, "two");
	CU_ASSERT_FATAL(chan_open(chan_background(), d.conn, "jobs", &ch) == CHAN_OK);
	CU_ASSERT_EQUAL(chan_send(chan_background(), ch, "three", 5), CHAN_OK);
	chan_free(ch);
	CU_ASSERT_FATAL(dur_make(&d, "churn", 4, &ch) == CHAN_OK);
	for (int k = 0; k < 3000 && !test_server_log_has(&d.srv, "journal compacted"); k++) {
		char buf[64];
		bool ok;

		CU_ASSERT_EQUAL(chan_send(chan_background(), ch, "0123456789abcdef", 16), CHAN_OK);
		CU_ASSERT_EQUAL(dur_try_recv(ch, buf, sizeof buf, &ok), 1);
	}
	CU_ASSERT(test_server_log_has(&d.srv, "journal compacted"));
	chan_free(ch);
	dur_stop(&d, true);
	CU_ASSERT_FATAL(dur_start(&d) == 0);
	expect_opts(&d);
	recv_acked(&d, "three");
	dur_free(&d);
}

/* Receive one value of ch, waiting: it is want, delivered count times with this one. */
static void
recv_expect(chan_t *ch, const char *want, uint32_t count, chan_msg_t *m)
{
	chan_ctx_t *ctx;
	bool ok;
	int rc;

	/* a generous bound, for a value that never comes back */
	CU_ASSERT_FATAL(chan_with_deadline(&ctx, NULL, chan_now() + 30 * CHAN_SEC) == CHAN_OK);
	rc = chan_recv_msg(ctx, ch, m, &ok);
	chan_ctx_free(ctx);
	if (rc != CHAN_OK)
		printf("\n    wanted %s count %u, got %s\n", want, (unsigned)count, chan_strerror(rc));
	CU_ASSERT_FATAL(rc == CHAN_OK && ok);
	CU_ASSERT(m->tag != 0);
	CU_ASSERT_EQUAL(m->count, count);
	CU_ASSERT(m->value.len == strlen(want) && memcmp(m->value.data, want, m->value.len) == 0);
	if (m->count != count || m->value.len != strlen(want) ||
	    memcmp(m->value.data, want, m->value.len) != 0)
		printf("\n    wanted %s count %u, got %.*s count %u\n", want, (unsigned)count,
		    (int)m->value.len, (const char *)m->value.data, (unsigned)m->count);
}

/* ACK and NACK do not wait for their reply: a call after them does (replies keep their order). */
static void
round_trip(chan_t *ch)
{
	chan_info_t i;

	CU_ASSERT_EQUAL(chan_info(chan_background(), ch, &i), CHAN_OK);
}

/* "jobs" (ack_opts, max_deliver 3) with dead letters to a durable "jobs.dead". */
static chan_t *
make_jobs(struct dur *d)
{
	chan_delivery_opts_t o;
	chan_t *ch, *dead;

	CU_ASSERT_FATAL(dur_make(d, "jobs.dead", 8, &dead) == CHAN_OK);
	chan_free(dead);
	ack_opts(&o);
	CU_ASSERT_FATAL(chan_make_opts(chan_background(), d->conn, "jobs", 4, &o, &ch) == CHAN_OK);
	return ch;
}

/*
 * Values in flight at a kill -9 come back first, oldest delivery first,
 * counted (a crash is a failed delivery); a NACKed one too; past
 * max_deliver (3) across restarts the value goes to the dead letter.
 */
static void
test_inflight_survives(void)
{
	chan_msg_t a = { 0 }, b = { 0 }, c = { 0 }, x = { 0 };
	struct dur d;
	char buf[256];
	chan_t *ch;
	bool ok;

	dur_init(&d, "always");
	CU_ASSERT_FATAL(dur_start(&d) == 0);
	ch = make_jobs(&d);
	CU_ASSERT_EQUAL(chan_send(chan_background(), ch, "a", 1), CHAN_OK);
	CU_ASSERT_EQUAL(chan_send(chan_background(), ch, "b", 1), CHAN_OK);
	CU_ASSERT_EQUAL(chan_send(chan_background(), ch, "c", 1), CHAN_OK);
	CU_ASSERT_EQUAL(chan_send(chan_background(), ch, "x", 1), CHAN_OK);
	recv_expect(ch, "a", 1, &a);
	recv_expect(ch, "b", 1, &b);
	recv_expect(ch, "c", 1, &c);
	/* c is acked: gone for good; b is NACKed: given back, ahead of x */
	CU_ASSERT_EQUAL(chan_ack_n(chan_background(), ch, &c.tag, 1), CHAN_OK);
	CU_ASSERT_EQUAL(chan_nack(chan_background(), ch, &b, 0), CHAN_OK);
	round_trip(ch);
	chan_free(ch);
	dur_stop(&d, true);

	/* b was given back before the crash, a was in flight: b, a, then x */
	CU_ASSERT_FATAL(dur_start(&d) == 0);
	CU_ASSERT_FATAL(chan_open(chan_background(), d.conn, "jobs", &ch) == CHAN_OK);
	chan_msg_clear(&a);
	chan_msg_clear(&b);
	recv_expect(ch, "b", 2, &b);
	recv_expect(ch, "a", 2, &a);
	recv_expect(ch, "x", 1, &x);
	CU_ASSERT_EQUAL(chan_ack_n(chan_background(), ch, &x.tag, 1), CHAN_OK);
	round_trip(ch);
	/* a tag after the restart is above every tag before it */
	CU_ASSERT(x.tag > c.tag);
	chan_free(ch);
	dur_stop(&d, true);

	/* a and b again, 3rd delivery each, then the crash: past max_deliver, both dead-lettered */
	CU_ASSERT_FATAL(dur_start(&d) == 0);
	CU_ASSERT_FATAL(chan_open(chan_background(), d.conn, "jobs", &ch) == CHAN_OK);
	chan_msg_clear(&a);
	chan_msg_clear(&b);
	recv_expect(ch, "b", 3, &b);
	recv_expect(ch, "a", 3, &a);
	chan_free(ch);
	dur_stop(&d, true);

	CU_ASSERT_FATAL(dur_start(&d) == 0);
	CU_ASSERT_FATAL(chan_open(chan_background(), d.conn, "jobs", &ch) == CHAN_OK);
	CU_ASSERT_EQUAL(dur_try_recv(ch, buf, sizeof buf, &ok), 0);
	chan_free(ch);
	CU_ASSERT_FATAL(chan_open(chan_background(), d.conn, "jobs.dead", &ch) == CHAN_OK);
	CU_ASSERT_EQUAL(dur_try_recv(ch, buf, sizeof buf, &ok), 1);
	CU_ASSERT_EQUAL(dur_try_recv(ch, buf, sizeof buf, &ok), 1);
	CU_ASSERT_EQUAL(dur_try_recv(ch, buf, sizeof buf, &ok), 0);
	chan_free(ch);
	/* the dead letters were logged, with their ACKs: nothing comes back again */
	dur_stop(&d, true);
	CU_ASSERT_FATAL(dur_start(&d) == 0);
	CU_ASSERT_FATAL(chan_open(chan_background(), d.conn, "jobs", &ch) == CHAN_OK);
	CU_ASSERT_EQUAL(dur_try_recv(ch, buf, sizeof buf, &ok), 0);
	chan_free(ch);
	chan_msg_clear(&a);
	chan_msg_clear(&b);
	chan_msg_clear(&c);
	chan_msg_clear(&x);
	dur_free(&d);
}

/* A compaction keeps a value in flight (its tag and count) and one given back (its place and count). */
static void
test_inflight_compacted(void)
{
	chan_msg_t a = { 0 }, b = { 0 };
	struct dur d;
	chan_t *ch, *churn;

	dur_init(&d, "always");
	d.extra = "journal_compact_min = 16K";
	CU_ASSERT_FATAL(dur_start(&d) == 0);
	ch = make_jobs(&d);
	CU_ASSERT_EQUAL(chan_send(chan_background(), ch, "a", 1), CHAN_OK);
	CU_ASSERT_EQUAL(chan_send(chan_background(), ch, "b", 1), CHAN_OK);
	CU_ASSERT_EQUAL(chan_send(chan_background(), ch, "c", 1), CHAN_OK);
	recv_expect(ch, "a", 1, &a);
	recv_expect(ch, "b", 1, &b);
	CU_ASSERT_EQUAL(chan_nack(chan_background(), ch, &b, 0), CHAN_OK);
	round_trip(ch);
	CU_ASSERT_FATAL(dur_make(&d, "churn", 4, &churn) == CHAN_OK);
	for (int k = 0; k < 3000 && !test_server_log_has(&d.srv, "journal compacted"); k++) {
		char buf[64];
		bool ok;

		CU_ASSERT_EQUAL(chan_send(chan_background(), churn, "0123456789abcdef", 16), CHAN_OK);
		CU_ASSERT_EQUAL(dur_try_recv(churn, buf, sizeof buf, &ok), 1);
	}
	CU_ASSERT(test_server_log_has(&d.srv, "journal compacted"));
	chan_free(churn);
	chan_free(ch);
	dur_stop(&d, true);

	CU_ASSERT_FATAL(dur_start(&d) == 0);
	CU_ASSERT_FATAL(chan_open(chan_background(), d.conn, "jobs", &ch) == CHAN_OK);
	chan_msg_clear(&a);
	chan_msg_clear(&b);
	recv_expect(ch, "b", 2, &b);
	recv_expect(ch, "a", 2, &a);
	chan_msg_clear(&a);
	recv_expect(ch, "c", 1, &a);
	chan_msg_clear(&a);
	chan_msg_clear(&b);
	chan_free(ch);
	dur_free(&d);
}

#define BIG (4u << 20)

static void
test_missing_segment(void)
{
	const char *repair[] = { "--repair", NULL };
	char cpath[200], conf[300], out[4096], first[160], last[160], middle[160];
	const char *args[] = { "-f", "-p", "0", "-c", cpath, NULL };
	struct dur d;
	char *big, buf[16];
	chan_t *ch;
	FILE *f;
	int k;

	dur_init(&d, "no");
	d.extra = "max_value = 4M\nmax_frame = 8M\njournal_compact_min = 1024G";
	CU_ASSERT_FATAL(dur_start(&d) == 0);
	CU_ASSERT_FATAL((big = calloc(1, BIG)) != NULL);
	CU_ASSERT_FATAL(dur_make(&d, "big", 1, &ch) == CHAN_OK);
	/* 64 MiB a segment: in and out until a third one is there */
	for (k = 0; k < 80; k++) {
		bool ok;

		snprintf(middle, sizeof middle, "%s/journal/0000000000000003.seg", d.dir);
		if (access(middle, F_OK) == 0)
			break;
		CU_ASSERT_FATAL(chan_send(chan_background(), ch, big, BIG) == CHAN_OK);
		CU_ASSERT_FATAL(dur_try_recv(ch, buf, sizeof buf, &ok) == 1);
	}
	CU_ASSERT_FATAL(k < 80);
	CU_ASSERT_EQUAL(chan_send(chan_background(), ch, "last", 4), CHAN_OK);
	free(big);
	chan_free(ch);
	dur_stop(&d, false);
	CU_ASSERT_FATAL(dur_first_segment(&d, first, sizeof first));
	CU_ASSERT_FATAL(dur_last_segment(&d, last, sizeof last));
	snprintf(middle, sizeof middle, "%s/journal/0000000000000002.seg", d.dir);
	CU_ASSERT_FATAL(strcmp(first, middle) < 0 && strcmp(middle, last) < 0);
	CU_ASSERT_FATAL(unlink(middle) == 0);

	snprintf(cpath, sizeof cpath, "%s/chand.conf", d.dir);
	snprintf(conf, sizeof conf, "data_dir = %s\nport = 0\nmax_value = 4M\nmax_frame = 8M\n", d.dir);
	CU_ASSERT_FATAL((f = fopen(cpath, "w")) != NULL);
	fputs(conf, f);
	fclose(f);
	CU_ASSERT_EQUAL(run_chand(args, out, sizeof out), 1);
	CU_ASSERT(strstr(out, "0000000000000002.seg") != NULL && strstr(out, "missing segment") != NULL);
	if (strstr(out, "missing segment") == NULL)
		printf("\n    chand said: %s\n", out);
	unlink(cpath);

	CU_ASSERT_FATAL(dur_start_args(&d, repair) == 0);
	CU_ASSERT(test_server_await_log(&d.srv, "missing segment"));
	dur_free(&d);
}

static void
register_suites(void)
{
	CU_pSuite s = test_suite("durable_ack", NULL, NULL);

	test_add(s, "a durable ack channel's options and values survive restarts and compaction",
	    test_options_survive);
	test_add(s, "values in flight and NACKed survive kill -9, counted; dead letter across restarts",
	    test_inflight_survives);
	test_add(s, "a compacted journal keeps values in flight and given back", test_inflight_compacted);
	test_add(s, "a missing middle segment: refused, naming it; --repair starts", test_missing_segment);
}

int
main(int argc, char **argv)
{
	return test_main(argc, argv, register_suites);
}
