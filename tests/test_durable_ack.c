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

/* Receive want (first delivery) from "jobs" and ACK it. */
static void
recv_acked(struct dur *d, const char *want)
{
	chan_t *ch = dur_open(d, "jobs");
	uint64_t tag = dur_expect(ch, want, 1, NULL);

	CU_ASSERT_EQUAL(chan_ack_n(chan_background(), ch, &tag, 1), CHAN_OK);
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
	dur_restart(&d, true);
	expect_opts(&d);
	recv_acked(&d, "one");

	/* churn on another channel until the journal is compacted: the snapshot keeps the options */
	d.extra = "journal_compact_min = 16K";
	dur_restart(&d, false);
	expect_opts(&d);
	recv_acked(&d, "two");
	ch = dur_open(&d, "jobs");
	CU_ASSERT_EQUAL(chan_send(chan_background(), ch, "three", 5), CHAN_OK);
	chan_free(ch);
	dur_churn_until_compacted(&d);
	dur_restart(&d, true);
	expect_opts(&d);
	recv_acked(&d, "three");
	dur_free(&d);
}

/* ACK and NACK do not wait for their reply: a call after them does (replies keep their order). */
static void
round_trip(chan_t *ch)
{
	chan_info_t i;

	CU_ASSERT_EQUAL(chan_info(chan_background(), ch, &i), CHAN_OK);
}

/* Send each one-byte value of vals into ch. */
static void
send_all(chan_t *ch, const char *vals)
{
	for (const char *p = vals; *p != '\0'; p++)
		CU_ASSERT_EQUAL(chan_send(chan_background(), ch, p, 1), CHAN_OK);
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
	chan_msg_t b = { 0 };
	uint64_t c, x;
	struct dur d;
	chan_t *ch;

	dur_init(&d, "always");
	CU_ASSERT_FATAL(dur_start(&d) == 0);
	ch = make_jobs(&d);
	send_all(ch, "abcx");
	(void)dur_expect(ch, "a", 1, NULL);
	(void)dur_expect(ch, "b", 1, &b);
	c = dur_expect(ch, "c", 1, NULL);
	/* c is acked: gone for good; b is NACKed: given back, ahead of x */
	CU_ASSERT_EQUAL(chan_ack_n(chan_background(), ch, &c, 1), CHAN_OK);
	CU_ASSERT_EQUAL(chan_nack(chan_background(), ch, &b, 0), CHAN_OK);
	chan_msg_clear(&b);
	round_trip(ch);
	chan_free(ch);

	/* b was given back before the crash, a was in flight: b, a, then x */
	dur_restart(&d, true);
	ch = dur_open(&d, "jobs");
	(void)dur_expect(ch, "b", 2, NULL);
	(void)dur_expect(ch, "a", 2, NULL);
	x = dur_expect(ch, "x", 1, NULL);
	CU_ASSERT_EQUAL(chan_ack_n(chan_background(), ch, &x, 1), CHAN_OK);
	round_trip(ch);
	/* a tag after the restart is above every tag before it */
	CU_ASSERT(x > c);
	chan_free(ch);

	/* a and b again, 3rd delivery each, then the crash: past max_deliver, both dead-lettered */
	dur_restart(&d, true);
	ch = dur_open(&d, "jobs");
	(void)dur_expect(ch, "b", 3, NULL);
	(void)dur_expect(ch, "a", 3, NULL);
	chan_free(ch);
	dur_restart(&d, true);
	CU_ASSERT_EQUAL(dur_len(&d, "jobs"), 0);
	CU_ASSERT_EQUAL(dur_len(&d, "jobs.dead"), 2);
	/* the dead letters were logged, with their ACKs: nothing comes back again */
	dur_restart(&d, true);
	CU_ASSERT_EQUAL(dur_len(&d, "jobs"), 0);
	CU_ASSERT_EQUAL(dur_len(&d, "jobs.dead"), 2);
	dur_free(&d);
}

/*
 * A compaction keeps values in flight (their tags and counts, one NACKed
 * with a delay still running among them) and values given back (their
 * place and count): after it and a kill -9 they come back as they were.
 */
static void
test_inflight_compacted(void)
{
	chan_msg_t b = { 0 }, c = { 0 }, d1 = { 0 };
	struct dur d;
	chan_t *ch;

	dur_init(&d, "always");
	d.extra = "journal_compact_min = 16K";
	CU_ASSERT_FATAL(dur_start(&d) == 0);
	ch = make_jobs(&d);
	send_all(ch, "abcd");
	(void)dur_expect(ch, "a", 1, NULL);
	(void)dur_expect(ch, "b", 1, &b);
	(void)dur_expect(ch, "c", 1, &c);
	(void)dur_expect(ch, "d", 1, &d1);
	send_all(ch, "ef");	/* cap 4: values in flight do not count */
	/* b NACKed and received again (count 2), c NACKed for a minute, d given back */
	CU_ASSERT_EQUAL(chan_nack(chan_background(), ch, &b, 0), CHAN_OK);
	chan_msg_clear(&b);
	(void)dur_expect(ch, "b", 2, NULL);
	CU_ASSERT_EQUAL(chan_nack(chan_background(), ch, &c, 60 * CHAN_SEC), CHAN_OK);
	CU_ASSERT_EQUAL(chan_nack(chan_background(), ch, &d1, 0), CHAN_OK);
	chan_msg_clear(&c);
	chan_msg_clear(&d1);
	round_trip(ch);
	dur_churn_until_compacted(&d);
	chan_free(ch);

	/* given back first: d; then in flight in tag order: a, c, b; then e f */
	dur_restart(&d, true);
	ch = dur_open(&d, "jobs");
	(void)dur_expect(ch, "d", 2, NULL);
	(void)dur_expect(ch, "a", 2, NULL);
	(void)dur_expect(ch, "c", 2, NULL);
	(void)dur_expect(ch, "b", 3, NULL);
	(void)dur_expect(ch, "e", 1, NULL);
	(void)dur_expect(ch, "f", 1, NULL);
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
