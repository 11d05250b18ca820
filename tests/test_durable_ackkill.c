/*
 * test_durable_ackkill.c: issue 18's kill -9 loop on durable ack channels.
 *
 * 8 producer threads send numbered values "p:seq" into 4 durable ack
 * channels (two producers a channel; ack_wait 60 s, max_deliver 0) with
 * fsync = always and journal_compact_min 64 KiB (compactions run under the
 * load, so some kills land in one). One consumer thread a channel, on its
 * own connection, receives with chan_recv_msg and ACKs in batches of 1 to
 * 16 with chan_ack_n (a batch counts as acked once its reply came); about
 * one value in 100 is NACKed at once, one in 100 NACKed with a 20 ms
 * delay, and one in 100 times the consumer hangs up holding its batch and
 * dials again. chand is SIGKILLed at a random moment (seeded, the seed
 * printed), restarted on the same data_dir, and the next round goes on
 * with what the journal kept: 20 kills, then a drain of every channel.
 *
 * What is checked, on every delivery:
 * - it is a value a producer sent (never made up);
 * - never a value whose ACK reply came (an acked value is gone for good);
 * - a value delivered again is one the test had NACKed, abandoned with its
 *   connection, or held unacked (or acked without a reply) at a kill;
 * - its count is at least one more than the deliveries the test saw;
 * - FIFO: a first delivery (count 1) of producer p comes after every
 *   earlier first delivery of p (the channel's FIFO for values never
 *   delivered, across restarts);
 * - the head: within a round, a redelivered value (count > 1) given back
 *   at a kill comes before every first delivery on its channel (values in
 *   flight at the crash come back ahead of values never delivered); values
 *   NACKed or abandoned in the round may come anywhere.
 * At the end every value whose SEND returned OK was acked (its ACK reply
 * came), or its ACK was sent and its reply lost to a kill and it never
 * came back (counted and printed). Duplicates are counted by cause and the
 * ones caused by kills printed.
 *
 * SPDX-License-Identifier: BSD-2-Clause
 */
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "durtest.h"

#define PRODUCERS 8
#define CHANNELS 4
#define ROUNDS 20
#define PER_ROUND_MAX 3000	/* values a producer sends at most per round */
#define MAX_SEQ (ROUNDS * PER_ROUND_MAX + 1)
#define BATCH_MAX 16
#define WAIT_BOUND (30 * CHAN_SEC)	/* for a hang only */

/* Why a value may be delivered again. */
enum excuse { EX_NONE, EX_KILL, EX_ANYWHERE };

/* What the test knows of one value. */
struct val {
	uint8_t seen;		/* deliveries the test received */
	uint8_t acked;		/* ACKs whose reply came */
	uint8_t excuse;		/* enum excuse */
	bool ack_doubt;		/* its ACK was sent and its reply lost to a kill */
	bool send_ok;		/* its SEND returned OK (the producer's field) */
};

struct producer {
	pthread_t t;
	int index;
	const char *addr;
	_Atomic uint64_t next;	/* the number it sends next */
	uint64_t sent_ok;	/* SENDs that returned OK */
};

/* One channel's checks: its consumer thread's, then the drain's. */
struct watch {
	pthread_t t;
	int index;		/* the channel k<index> */
	const char *addr;
	unsigned seed;
	bool fresh_seen;	/* a first delivery seen this round */
	uint64_t received, nacked, abandoned;
	uint64_t dup_kill, dup_other;
	uint64_t bad;
	char why[200];		/* the first violation */
	char dups[10][32];	/* the first duplicates caused by a kill */
};

static struct producer ps[PRODUCERS];
static struct val *vals[PRODUCERS];
static uint64_t last_fresh[PRODUCERS];	/* 1 + the seq of p's last first delivery; 0: none */

static void __attribute__((format(printf, 2, 3)))
violation(struct watch *w, const char *fmt, ...)
{
	va_list ap;

	if (w->bad++ > 0)
		return;
	va_start(ap, fmt);
	vsnprintf(w->why, sizeof w->why, fmt, ap);
	va_end(ap);
}

/* A delivery on w's channel: check it (the list above); its record, or NULL when it is none of ours. */
static struct val *
delivered(struct watch *w, const chan_msg_t *m)
{
	char buf[32];
	uint64_t seq;
	struct val *v;
	int p;

	snprintf(buf, sizeof buf, "%.*s", (int)m->value.len, (const char *)m->value.data);
	if (sscanf(buf, "%d:%" SCNu64, &p, &seq) != 2 || p < 0 || p >= PRODUCERS ||
	    p % CHANNELS != w->index || seq >= atomic_load(&ps[p].next)) {
		violation(w, "k%d: \"%s\" was never sent", w->index, buf);
		return NULL;
	}
	v = &vals[p][seq];
	w->received++;
	if (v->acked > 0)
		violation(w, "%s delivered again (count %u) after its ACK's reply", buf, m->count);
	else if (v->seen > 0 && v->excuse == EX_NONE)
		violation(w, "%s delivered again (count %u) with no kill, NACK or hang-up", buf, m->count);
	if (m->count < (uint32_t)v->seen + 1)
		violation(w, "%s has count %u, the test saw it %u times before", buf, m->count, v->seen);
	if (m->count == 1) {
		if (seq + 1 <= last_fresh[p])
			violation(w, "%s first delivered after %d:%" PRIu64 ": not FIFO", buf, p,
			    last_fresh[p] - 1);
		last_fresh[p] = seq + 1;
		w->fresh_seen = true;
	} else if (w->fresh_seen && v->excuse != EX_ANYWHERE) {
		violation(w, "%s (count %u, given back at a kill) came after a first delivery: not at the head",
		    buf, m->count);
	}
	if (v->seen > 0 && v->excuse == EX_KILL && w->dup_kill++ < 10)
		snprintf(w->dups[w->dup_kill - 1], sizeof w->dups[0], "%s", buf);
	else if (v->seen > 0)
		w->dup_other++;
	if (v->seen < UINT8_MAX)
		v->seen++;
	v->excuse = EX_NONE;
	v->ack_doubt = false;
	return v;
}

/* chan_ack_n of the held batch: acked when its reply comes, in doubt when the kill took it. */
static int
ack_batch(chan_t *ch, const uint64_t *tags, struct val **held, size_t n, struct watch *w)
{
	chan_ctx_t *ctx;
	int rc;

	if (chan_with_deadline(&ctx, NULL, chan_now() + WAIT_BOUND) != CHAN_OK)
		return CHAN_ENOMEM;
	rc = chan_ack_n(ctx, ch, tags, n);
	chan_ctx_free(ctx);
	for (size_t i = 0; i < n; i++) {
		if (held[i] == NULL)
			continue;
		if (rc == CHAN_OK) {
			held[i]->acked++;
		} else {
			held[i]->ack_doubt = true;
			held[i]->excuse = EX_KILL;
		}
	}
	if (rc != CHAN_OK && rc != CHAN_ECONNLOST)
		violation(w, "k%d: ACK of %zu tags: %s", w->index, n, chan_strerror(rc));
	return rc;
}

static int
open_chan(const char *addr, int index, chan_conn_t **conn, chan_t **ch)
{
	char name[8];

	snprintf(name, sizeof name, "k%d", index);
	if (chan_dial(chan_background(), addr, NULL, conn) != CHAN_OK)
		return -1;
	if (chan_open(chan_background(), *conn, name, ch) != CHAN_OK) {
		chan_conn_close(*conn);
		return -1;
	}
	return 0;
}

static void
hang_up(chan_conn_t *conn, chan_t *ch)
{
	chan_free(ch);
	chan_conn_close(conn);
}

/* One receive, then ack it (batched), NACK it or hang up; false once the kill broke the connection. */
static bool
consume_one(struct watch *w, chan_conn_t **conn, chan_t **ch, uint64_t *tags, struct val **held,
    size_t *n, size_t *want)
{
	chan_msg_t m = { 0 };
	chan_ctx_t *ctx;
	struct val *v;
	int rc, r;
	bool ok;

	if (chan_with_deadline(&ctx, NULL, chan_now() + WAIT_BOUND) != CHAN_OK)
		return false;
	rc = chan_recv_msg(ctx, *ch, &m, &ok);
	if (rc == CHAN_OK && !ok) {
		violation(w, "k%d: ok=false on a channel never closed", w->index);
		rc = CHAN_ECLOSED;
	} else if (rc == CHAN_OK && (v = delivered(w, &m)) != NULL) {
		r = rand_r(&w->seed) % 100;
		if (r < 2) {
			/* NACK, at once or after 20 ms: back to the channel, anywhere */
			v->excuse = EX_ANYWHERE;
			w->nacked++;
			rc = chan_nack(ctx, *ch, &m, r == 0 ? 0 : 20 * CHAN_MSEC);
		} else {
			tags[*n] = m.tag;
			held[(*n)++] = v;
			if (*n == *want) {
				rc = ack_batch(*ch, tags, held, *n, w);
				*n = 0;
				*want = 1 + rand_r(&w->seed) % BATCH_MAX;
			} else if (r == 2) {
				/* hang up holding the batch: it goes back, anywhere */
				for (size_t i = 0; i < *n; i++)
					held[i]->excuse = EX_ANYWHERE;
				*n = 0;
				w->abandoned++;
				hang_up(*conn, *ch);
				rc = open_chan(w->addr, w->index, conn, ch) == 0 ? CHAN_OK : CHAN_ECONNLOST;
				if (rc != CHAN_OK)
					*conn = NULL;
			}
		}
	}
	chan_msg_clear(&m);
	chan_ctx_free(ctx);
	if (rc != CHAN_OK && rc != CHAN_ECONNLOST && rc != CHAN_ECLOSED)
		violation(w, "k%d: %s", w->index, chan_strerror(rc));
	return rc == CHAN_OK;
}

/* A round's consumer: until the kill. What it held unacked may come again. */
static void *
consume(void *arg)
{
	struct watch *w = arg;
	uint64_t tags[BATCH_MAX];
	struct val *held[BATCH_MAX];
	size_t n = 0, want = 1 + rand_r(&w->seed) % BATCH_MAX;
	chan_conn_t *conn;
	chan_t *ch;

	if (open_chan(w->addr, w->index, &conn, &ch) < 0)
		return NULL;
	while (consume_one(w, &conn, &ch, tags, held, &n, &want))
		;
	for (size_t i = 0; i < n; i++)
		held[i]->excuse = EX_KILL;
	if (conn != NULL)
		hang_up(conn, ch);
	return NULL;
}

static void *
produce(void *arg)
{
	struct producer *p = arg;
	chan_conn_t *conn;
	chan_t *ch;
	char buf[32];
	uint64_t seq;
	int n;

	if (open_chan(p->addr, p->index % CHANNELS, &conn, &ch) < 0)
		return NULL;
	for (int k = 0; k < PER_ROUND_MAX; k++) {
		n = snprintf(buf, sizeof buf, "%d:%" PRIu64, p->index, atomic_load(&p->next));
		/* sent, whatever comes back: a value a SEND cut by the kill may be there or not */
		seq = atomic_fetch_add(&p->next, 1);
		if (chan_send(chan_background(), ch, buf, (size_t)n) != CHAN_OK)
			break;
		vals[p->index][seq].send_ok = true;
		p->sent_ok++;
	}
	hang_up(conn, ch);
	return NULL;
}

/* One round: producers and consumers, SIGKILL after delay_ms, restart. */
static void
round_run(struct dur *d, struct watch *ws, int delay_ms)
{
	struct timespec ts = { delay_ms / 1000, (long)(delay_ms % 1000) * 1000000L };

	for (int c = 0; c < CHANNELS; c++) {
		ws[c].addr = d->addr;
		ws[c].fresh_seen = false;
		CU_ASSERT_FATAL(pthread_create(&ws[c].t, NULL, consume, &ws[c]) == 0);
	}
	for (int i = 0; i < PRODUCERS; i++) {
		ps[i].addr = d->addr;
		CU_ASSERT_FATAL(pthread_create(&ps[i].t, NULL, produce, &ps[i]) == 0);
	}
	nanosleep(&ts, NULL);	/* the random moment of the crash, not a synchronisation */
	dur_stop(d, true);
	for (int i = 0; i < PRODUCERS; i++)
		pthread_join(ps[i].t, NULL);
	for (int c = 0; c < CHANNELS; c++)
		pthread_join(ws[c].t, NULL);
	CU_ASSERT_FATAL(dur_start(d) == 0);
}

/* After the last restart: take and ack everything left in w's channel, one value at a time. */
static void
drain(struct dur *d, struct watch *w)
{
	char name[8];
	chan_ctx_t *ctx;
	chan_t *ch;
	size_t len;

	snprintf(name, sizeof name, "k%d", w->index);
	w->fresh_seen = false;
	CU_ASSERT_FATAL(chan_open(chan_background(), d->conn, name, &ch) == CHAN_OK);
	while (chan_len(chan_background(), ch, &len) == CHAN_OK && len > 0) {
		chan_msg_t m = { 0 };
		struct val *v;
		bool ok;
		int rc;

		CU_ASSERT_FATAL(chan_with_deadline(&ctx, NULL, chan_now() + WAIT_BOUND) == CHAN_OK);
		rc = chan_recv_msg(ctx, ch, &m, &ok);
		chan_ctx_free(ctx);
		if (rc != CHAN_OK)
			printf("\n    %s: LEN %zu, receive: %s\n", name, len, chan_strerror(rc));
		CU_ASSERT_FATAL(rc == CHAN_OK && ok);
		v = delivered(w, &m);
		CU_ASSERT_FATAL(chan_ack_n(chan_background(), ch, &m.tag, 1) == CHAN_OK);
		if (v != NULL)
			v->acked++;
		chan_msg_clear(&m);
	}
	chan_free(ch);
}

/* Every value whose SEND returned OK was acked; *doubt counts those acked without a reply. */
static uint64_t
count_lost(uint64_t *doubt)
{
	uint64_t lost = 0;

	*doubt = 0;
	for (int p = 0; p < PRODUCERS; p++) {
		for (uint64_t s = 0; s < ps[p].next; s++) {
			const struct val *v = &vals[p][s];

			if (!v->send_ok || v->acked > 0)
				continue;
			if (v->ack_doubt) {
				(*doubt)++;
				continue;
			}
			if (lost++ < 10)
				printf("\n    LOST %d:%" PRIu64 ": SEND OK, seen %u times, never acked",
				    p, s, v->seen);
		}
	}
	return lost;
}

static void
make_channels(struct dur *d)
{
	chan_delivery_opts_t o = CHAN_DELIVERY_OPTS_INIT;
	char name[8];
	chan_t *ch;

	o.ack_wait_ns = 60 * CHAN_SEC;	/* no expiry: every redelivery has a cause the test knows */
	o.max_deliver = 0;
	o.durable = true;
	for (int c = 0; c < CHANNELS; c++) {
		snprintf(name, sizeof name, "k%d", c);
		CU_ASSERT_FATAL(chan_make_opts(chan_background(), d->conn, name, 1000000, &o, &ch) ==
		    CHAN_OK);
		chan_free(ch);
	}
}

static void
report(const struct watch *ws, uint64_t sent, uint64_t lost, uint64_t doubt, unsigned seed,
    int64_t t0)
{
	uint64_t recv = 0, nack = 0, hang = 0, dk = 0, dother = 0;

	for (int c = 0; c < CHANNELS; c++) {
		recv += ws[c].received;
		nack += ws[c].nacked;
		hang += ws[c].abandoned;
		dk += ws[c].dup_kill;
		dother += ws[c].dup_other;
		if (ws[c].bad > 0)
			printf("\n    k%d: %" PRIu64 " violations, the first: %s", c, ws[c].bad, ws[c].why);
	}
	printf("\n    seed %u: %d kills, %" PRIu64 " values sent OK, %" PRIu64 " deliveries, %" PRIu64
	    " NACKs, %" PRIu64 " hang-ups; lost %" PRIu64 "; acked without a reply and not back %"
	    PRIu64 "; duplicates: %" PRIu64 " held at a kill, %" PRIu64 " NACKed or hung up; %.1f s\n",
	    seed, ROUNDS, sent, recv, nack, hang, lost, doubt, dk, dother,
	    (double)(clock_now_ns() - t0) / 1e9);
	for (int c = 0; c < CHANNELS; c++)
		for (uint64_t i = 0; i < ws[c].dup_kill && i < 10; i++)
			printf("    k%d: %s again after a kill\n", c, ws[c].dups[i]);
}

static void
test_ack_kill9(void)
{
	struct watch ws[CHANNELS];
	unsigned seed = (unsigned)time(NULL);
	uint64_t sent = 0, lost, doubt;
	int64_t t0 = clock_now_ns();
	char first[160];
	struct dur d;

	if (getenv("DURABLE_ACK_SEED") != NULL)
		seed = (unsigned)strtoul(getenv("DURABLE_ACK_SEED"), NULL, 10);
	srand(seed);
	memset(ws, 0, sizeof ws);
	memset(last_fresh, 0, sizeof last_fresh);
	for (int i = 0; i < PRODUCERS; i++) {
		ps[i] = (struct producer){ .index = i };
		CU_ASSERT_FATAL((vals[i] = calloc(MAX_SEQ, sizeof *vals[i])) != NULL);
	}
	for (int c = 0; c < CHANNELS; c++)
		ws[c] = (struct watch){ .index = c, .seed = seed + (unsigned)c };
	dur_init(&d, "always");
	d.extra = "journal_compact_min = 64K";
	CU_ASSERT_FATAL(dur_start(&d) == 0);
	make_channels(&d);
	for (int r = 0; r < ROUNDS; r++)
		round_run(&d, ws, 20 + rand() % 300);
	for (int c = 0; c < CHANNELS; c++)
		drain(&d, &ws[c]);
	for (int i = 0; i < PRODUCERS; i++)
		sent += ps[i].sent_ok;
	lost = count_lost(&doubt);
	report(ws, sent, lost, doubt, seed, t0);
	CU_ASSERT_EQUAL(lost, 0);
	for (int c = 0; c < CHANNELS; c++)
		CU_ASSERT_EQUAL(ws[c].bad, 0);
	/* compactions ran and completed: the segments before the last snapshot are gone */
	CU_ASSERT_FATAL(dur_first_segment(&d, first, sizeof first));
	CU_ASSERT(strstr(first, "/0000000000000001.seg") == NULL);
	for (int i = 0; i < PRODUCERS; i++)
		free(vals[i]);
	dur_free(&d);
}

static void
register_suites(void)
{
	CU_pSuite s = test_suite("durable_ackkill", NULL, NULL);

	test_add(s, "ack channels, kill -9 under load 20 times: every acknowledged value acked, "
	    "duplicates only from kills, FIFO and the head kept", test_ack_kill9);
}

int
main(int argc, char **argv)
{
	return test_main(argc, argv, register_suites);
}
