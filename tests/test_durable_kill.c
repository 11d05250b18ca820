/*
 * test_durable_kill.c: issue 18's crash measurements against a real chand.
 *
 * kill -9 under load: 8 producer threads (own connections) send numbered
 * values into 4 durable channels (two producers a channel) with
 * fsync = always; chand is SIGKILLed at a random moment (seeded, the seed
 * printed), restarted on the same data_dir, and every channel drained:
 * per producer, what comes out must be exactly the next numbers in order,
 * every one whose SEND returned OK, at most one more (the SEND in flight),
 * never one twice. Numbers go on across the 20 rounds, so a value drained
 * in an earlier round (its POP in the journal) coming back fails too.
 * journal_compact_min is 64 KiB there, so compactions run under the load
 * and some kills interrupt one. No
 * receiver runs during the load: on a plain durable channel a receive cut
 * by the crash after its POP was written is lost (at-most-once, like
 * Redis's LPOP with AOF); ack channels will redeliver it.
 *
 * everysec: the same load, one kill; the acknowledged values missing after
 * the restart are counted and printed (a kill of chand, not of the machine,
 * loses none: the page cache keeps what was written).
 *
 * Start-up: 1,000,000 buffered values across 1,000 channels, then a restart
 * whose replay time is printed. DURABLE_BIG=0 skips it.
 *
 * SPDX-License-Identifier: BSD-2-Clause
 */
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "durtest.h"

#define PRODUCERS 8
#define CHANNELS 4
#define ROUNDS 20
#define PER_ROUND_MAX 4000	/* values a producer sends at most per round */

struct producer {
	pthread_t t;
	int index;
	const char *addr;
	uint64_t next;		/* the number it sends next */
	uint64_t acked;		/* numbers below this got OK */
	uint64_t expect;	/* the number the drain must give next */
};

static void *
produce(void *arg)
{
	struct producer *p = arg;
	chan_conn_t *conn;
	chan_t *ch;
	char name[8], buf[32];
	int n;

	snprintf(name, sizeof name, "k%d", p->index % CHANNELS);
	if (chan_dial(chan_background(), p->addr, NULL, &conn) != CHAN_OK)
		return NULL;
	if (chan_open(chan_background(), conn, name, &ch) == CHAN_OK) {
		for (int k = 0; k < PER_ROUND_MAX; k++) {
			n = snprintf(buf, sizeof buf, "%d:%" PRIu64, p->index, p->next);
			p->next++;	/* sent, whatever comes back */
			if (chan_send(chan_background(), ch, buf, (size_t)n) != CHAN_OK)
				break;
			p->acked = p->next;
		}
		chan_free(ch);
	}
	chan_conn_close(conn);
	return NULL;
}

/* Drain every channel; check each producer's numbers. Returns acknowledged values missing. */
static uint64_t
drain_check(struct dur *d, struct producer *ps, bool strict)
{
	char name[8], buf[64];
	uint64_t missing = 0, seq;
	chan_t *ch;
	bool ok;
	int idx;

	for (int c = 0; c < CHANNELS; c++) {
		snprintf(name, sizeof name, "k%d", c);
		CU_ASSERT_FATAL(chan_open(chan_background(), d->conn, name, &ch) == CHAN_OK);
		while (dur_try_recv(ch, buf, sizeof buf, &ok) == 1) {
			CU_ASSERT_FATAL(sscanf(buf, "%d:%" SCNu64, &idx, &seq) == 2);
			CU_ASSERT_FATAL(idx >= 0 && idx < PRODUCERS);
			/* FIFO, no duplicate, never a value drained before; gaps only when not strict */
			if (strict)
				CU_ASSERT_EQUAL(seq, ps[idx].expect);
			CU_ASSERT(seq >= ps[idx].expect);
			if (seq > ps[idx].expect)
				missing += seq - ps[idx].expect;
			ps[idx].expect = seq + 1;
		}
		chan_free(ch);
	}
	for (int i = 0; i < PRODUCERS; i++) {
		/* every acknowledged one came out; the one in flight may have */
		if (strict)
			CU_ASSERT(ps[i].expect >= ps[i].acked && ps[i].expect <= ps[i].next);
		if (ps[i].expect < ps[i].acked)
			missing += ps[i].acked - ps[i].expect;
		ps[i].next = ps[i].expect = ps[i].expect > ps[i].acked ? ps[i].expect : ps[i].acked;
		ps[i].acked = ps[i].next;
	}
	return missing;
}

/* One round: load, SIGKILL after delay_ms, restart, drain. Returns the values sent. */
static uint64_t
round_run(struct dur *d, struct producer *ps, int delay_ms, bool strict, uint64_t *missing)
{
	struct timespec ts = { delay_ms / 1000, (long)(delay_ms % 1000) * 1000000L };
	uint64_t sent = 0;

	for (int i = 0; i < PRODUCERS; i++) {
		ps[i].addr = d->addr;
		sent -= ps[i].acked;
		CU_ASSERT_FATAL(pthread_create(&ps[i].t, NULL, produce, &ps[i]) == 0);
	}
	nanosleep(&ts, NULL);	/* the random moment of the crash, not a synchronisation */
	dur_stop(d, true);
	for (int i = 0; i < PRODUCERS; i++) {
		pthread_join(ps[i].t, NULL);
		sent += ps[i].acked;
	}
	CU_ASSERT_FATAL(dur_start(d) == 0);
	*missing += drain_check(d, ps, strict);
	return sent;
}

static void
make_channels(struct dur *d)
{
	char name[8];
	chan_t *ch;

	for (int c = 0; c < CHANNELS; c++) {
		snprintf(name, sizeof name, "k%d", c);
		CU_ASSERT_FATAL(dur_make(d, name, 1000000, &ch) == CHAN_OK);
		chan_free(ch);
	}
}

static void
test_kill9_always(void)
{
	struct producer ps[PRODUCERS] = { 0 };
	unsigned seed = (unsigned)time(NULL);
	uint64_t sent = 0, missing = 0;
	char first[160];
	int64_t t0 = clock_now_ns();
	struct dur d;

	srand(seed);
	for (int i = 0; i < PRODUCERS; i++)
		ps[i].index = i;
	dur_init(&d, "always");
	/* compactions run under the load too, so some kills land in one */
	d.extra = "journal_compact_min = 64K";
	CU_ASSERT_FATAL(dur_start(&d) == 0);
	make_channels(&d);
	for (int r = 0; r < ROUNDS; r++)
		sent += round_run(&d, ps, 20 + rand() % 300, true, &missing);
	CU_ASSERT_EQUAL(missing, 0);
	/* compactions ran and completed: the segments before the last snapshot are gone */
	CU_ASSERT_FATAL(dur_first_segment(&d, first, sizeof first));
	CU_ASSERT(strstr(first, "/0000000000000001.seg") == NULL);
	printf("\n    seed %u: %d kills, %" PRIu64 " acknowledged values, %" PRIu64
	    " lost, %.1f s; oldest segment %s\n", seed, ROUNDS, sent, missing,
	    (double)(clock_now_ns() - t0) / 1e9, strrchr(first, '/') + 1);
	CU_ASSERT(clock_now_ns() - t0 < 60 * NSEC_PER_SEC);
	dur_free(&d);
}

static void
test_kill9_everysec(void)
{
	struct producer ps[PRODUCERS] = { 0 };
	uint64_t sent = 0, missing = 0;
	struct dur d;

	for (int i = 0; i < PRODUCERS; i++)
		ps[i].index = i;
	dur_init(&d, "everysec");
	CU_ASSERT_FATAL(dur_start(&d) == 0);
	make_channels(&d);
	for (int r = 0; r < 3; r++)
		sent += round_run(&d, ps, 700 + rand() % 600, false, &missing);
	printf("\n    everysec: 3 kills -9 of chand, %" PRIu64 " acknowledged values, %" PRIu64
	    " lost\n", sent, missing);
	/* bounded by about a second of traffic: the rounds are shorter than that each */
	CU_ASSERT(missing <= sent);
	dur_free(&d);
}

#define BIG_CHANNELS 1000
#define BIG_VALUES 1000000
#define BIG_WINDOW 256		/* sends in flight on the filling connection */

static void
test_startup_1m(void)
{
	const char *env = getenv("DURABLE_BIG");
	chan_op_t *ops[BIG_WINDOW];
	chan_t *chans[BIG_CHANNELS];
	char name[16], buf[16];
	int64_t t0, t1;
	struct dur d;
	size_t len, total = 0;
	int n;

	if (env != NULL && strcmp(env, "0") == 0) {
		printf("\n    skipped (DURABLE_BIG=0)\n");
		return;
	}
	dur_init(&d, "no");
	CU_ASSERT_FATAL(dur_start(&d) == 0);
	for (int c = 0; c < BIG_CHANNELS; c++) {
		snprintf(name, sizeof name, "big%04d", c);
		CU_ASSERT_FATAL(dur_make(&d, name, BIG_VALUES / BIG_CHANNELS, &chans[c]) == CHAN_OK);
	}
	t0 = clock_now_ns();
	for (int k = 0; k < BIG_VALUES; k++) {
		if (k >= BIG_WINDOW)
			CU_ASSERT_EQUAL_FATAL(chan_op_wait(ops[k % BIG_WINDOW], NULL, NULL), CHAN_OK);
		n = snprintf(buf, sizeof buf, "%08d", k);
		CU_ASSERT_EQUAL_FATAL(chan_send_async(chan_background(), chans[k % BIG_CHANNELS], buf,
		    (size_t)n, &ops[k % BIG_WINDOW]), CHAN_OK);
	}
	for (int k = 0; k < BIG_WINDOW; k++)
		CU_ASSERT_EQUAL_FATAL(chan_op_wait(ops[k], NULL, NULL), CHAN_OK);
	t1 = clock_now_ns();
	for (int c = 0; c < BIG_CHANNELS; c++)
		chan_free(chans[c]);
	dur_stop(&d, false);
	t0 = t1 - t0;
	t1 = clock_now_ns();
	CU_ASSERT_FATAL(dur_start(&d) == 0);
	t1 = clock_now_ns() - t1;
	for (int c = 0; c < BIG_CHANNELS; c += 111) {
		chan_t *ch;

		snprintf(name, sizeof name, "big%04d", c);
		CU_ASSERT_FATAL(chan_open(chan_background(), d.conn, name, &ch) == CHAN_OK);
		CU_ASSERT_EQUAL(chan_len(chan_background(), ch, &len), CHAN_OK);
		total += len;
		chan_free(ch);
	}
	CU_ASSERT_EQUAL(total, 10 * (BIG_VALUES / BIG_CHANNELS));
	printf("\n    %d values in %d channels: filled in %.1f s; restart (replay and listen) %.2f s\n",
	    BIG_VALUES, BIG_CHANNELS, (double)t0 / 1e9, (double)t1 / 1e9);
	dur_free(&d);
}

static void
register_suites(void)
{
	CU_pSuite s = test_suite("durable_kill", NULL, NULL);

	test_add(s, "kill -9 under load, 20 times, fsync always: nothing acknowledged lost",
	    test_kill9_always);
	test_add(s, "kill -9 with fsync everysec: acknowledged values lost, counted", test_kill9_everysec);
	test_add(s, "restart with 1,000,000 values in 1,000 channels: start-up time", test_startup_1m);
}

int
main(int argc, char **argv)
{
	return test_main(argc, argv, register_suites);
}
