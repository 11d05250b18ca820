/*
 * test_durable_replay.c: chand's replay of ack channels' records
 * (server/durable_replay.c, delivery_restore; docs/JOURNAL.md), on
 * journals written record by record through journal.h into a data_dir,
 * then read by a real chand started on it: what it holds is checked
 * through the client (LEN, receive order, tags and counts, the dead
 * letter).
 *
 * - POP, ACK, REQUEUE, PUSH_COUNTED and POP(0) in sequence: the values in
 *   flight at the end come back behind the values given back before it,
 *   in tag order, with count + 1; the acked one and the one taken for good
 *   never; tags go on above the highest replayed. A kill -9 right after
 *   the start, then a second start: the REQUEUE records written at the
 *   first give the same state (no second count + 1); a kill -9 with a
 *   value received after the restart: the third start gives back that
 *   value, not another (the REQUEUEs put the values where memory had them).
 * - A value in flight whose count reached max_deliver goes to the dead
 *   letter at replay (the §16 map, reason "restart"), once: a second
 *   restart neither sends it again nor brings it back.
 *
 * SPDX-License-Identifier: BSD-2-Clause
 */
#include <string.h>

#include "durtest.h"
#include "server/journal.h"

/* A durable ack channel's options as its DECLARE keeps them (docs/JOURNAL.md). */
static size_t
opts_blob(uint8_t *p, uint32_t max_deliver, const char *dead_letter)
{
	uint64_t ack_wait_us = 30000000;
	size_t dl = dead_letter ? strlen(dead_letter) : 0;

	memset(p, 0, 22);
	p[0] = 1;
	for (int i = 0; i < 8; i++)
		p[1 + i] = (uint8_t)(ack_wait_us >> (8 * i));
	for (int i = 0; i < 4; i++)
		p[9 + i] = (uint8_t)(max_deliver >> (8 * i));
	p[21] = (uint8_t)dl;
	memcpy(p + 22, dead_letter ? dead_letter : "", dl);
	return 22 + dl;
}

/* The one-byte value b as chand stores it: a msgpack bin. */
static const uint8_t *
bin(char b)
{
	static uint8_t v[3] = { 0xc4, 1, 0 };

	v[2] = (uint8_t)b;
	return v;
}

static struct journal *
jopen(struct dur *d)
{
	struct journal *j;
	char *cause = NULL;

	if (journal_open(d->dir, NULL, NULL, NULL, &j, &cause) != 0) {
		printf("\n    journal_open: %s\n", cause ? cause : "?");
		free(cause);
		CU_FAIL_FATAL("journal_open");
	}
	return j;
}

static void
declare(struct journal *j, const char *name, uint32_t max_deliver, const char *dead_letter)
{
	uint8_t o[300];
	size_t n = opts_blob(o, max_deliver, dead_letter);

	CU_ASSERT_FATAL(journal_append_declare(j, name, strlen(name), 8, 0, o, n) == 0);
}

#define J "jobs"
#define JL 4

/* Every record type in sequence; two values in flight at the end. */
static void
test_replay_inflight(void)
{
	struct journal *j;
	struct dur d;
	uint64_t tags[6] = { 0 }, last;
	chan_t *ch;

	dur_init(&d, "always");
	j = jopen(&d);
	declare(j, J, 0, NULL);
	for (char b = 'a'; b <= 'f'; b++)
		CU_ASSERT_FATAL(journal_append_push(j, J, JL, bin(b), 3) == 0);
	CU_ASSERT(journal_append_pop(j, J, JL, 1) == 0);		/* a in flight, count 1 */
	CU_ASSERT(journal_append_pop(j, J, JL, 2) == 0);		/* b */
	CU_ASSERT(journal_append_pop(j, J, JL, 3) == 0);		/* c */
	CU_ASSERT(journal_append_ack(j, J, JL, 2) == 0);		/* b gone */
	CU_ASSERT(journal_append_requeue(j, J, JL, 3, 1) == 0);	/* c given back, count 1 */
	CU_ASSERT(journal_append_pop(j, J, JL, 5) == 0);		/* c again: count 2 */
	CU_ASSERT(journal_append_push_counted(j, J, JL, 4, bin('g'), 3) == 0);
	CU_ASSERT(journal_append_push_counted(j, J, JL, 1, bin('h'), 3) == 0);
	CU_ASSERT(journal_append_pop(j, J, JL, 0) == 0);		/* g taken for good (a link) */
	CU_ASSERT_FATAL(journal_commit(j) == 0);
	journal_free(j);

	/* given back before: h; then in flight, in tag order: a (1), c (5); then d e f */
	CU_ASSERT_FATAL(dur_start(&d) == 0);
	CU_ASSERT_EQUAL(dur_len(&d, J), 6);
	dur_restart(&d, true);
	CU_ASSERT_EQUAL(dur_len(&d, J), 6);
	ch = dur_open(&d, J);
	tags[0] = dur_expect(ch, "h", 2, NULL);
	CU_ASSERT_EQUAL(chan_ack_n(chan_background(), ch, tags, 1), CHAN_OK);
	tags[1] = dur_expect(ch, "a", 2, NULL);
	CU_ASSERT(tags[0] > 5 && tags[1] > tags[0]);
	chan_free(ch);

	/*
	 * a, in flight at the kill, comes back behind c: the POPs after the
	 * first start took the heads the REQUEUEs it wrote say (without them,
	 * a replay would put d in flight instead of a)
	 */
	dur_restart(&d, true);
	ch = dur_open(&d, J);
	last = tags[1];
	tags[0] = dur_expect(ch, "c", 3, NULL);
	tags[1] = dur_expect(ch, "a", 3, NULL);
	tags[2] = dur_expect(ch, "d", 1, NULL);
	tags[3] = dur_expect(ch, "e", 1, NULL);
	tags[4] = dur_expect(ch, "f", 1, NULL);
	CU_ASSERT(tags[0] > last);
	CU_ASSERT_EQUAL(chan_ack_n(chan_background(), ch, tags, 5), CHAN_OK);
	chan_free(ch);
	CU_ASSERT_EQUAL(dur_len(&d, J), 0);
	dur_free(&d);
}

/* The dead letter as received: a map with channel, count, reason and value (§16). */
static void
expect_dead_letter(struct dur *d)
{
	static const char want[][16] = { "\xa7" "channel" "\xa4" "jobs", "\xa5" "count" "\x02",
	    "\xa6" "reason" "\xa7" "restart", "\xa5" "value" "\xc4\x01" "x" };
	chan_value_t v = { 0 };
	chan_t *ch;
	bool ok;

	CU_ASSERT_FATAL(chan_open(chan_background(), d->conn, "jobs.dead", &ch) == CHAN_OK);
	CU_ASSERT_FATAL(chan_try_recv(chan_background(), ch, &v, &ok) == CHAN_OK && ok);
	for (size_t i = 0; i < sizeof want / sizeof want[0]; i++)
		CU_ASSERT(memmem(v.data, v.len, want[i], strlen(want[i])) != NULL);
	chan_value_clear(&v);
	chan_free(ch);
}

static void
test_replay_max_deliver(void)
{
	struct journal *j;
	struct dur d;
	chan_t *ch;

	dur_init(&d, "always");
	j = jopen(&d);
	CU_ASSERT_FATAL(journal_append_declare(j, "jobs.dead", 9, 8, 0, NULL, 0) == 0);
	declare(j, J, 2, "jobs.dead");
	CU_ASSERT(journal_append_push(j, J, JL, bin('x'), 3) == 0);
	CU_ASSERT(journal_append_push(j, J, JL, bin('y'), 3) == 0);
	CU_ASSERT(journal_append_pop(j, J, JL, 1) == 0);		/* x, count 1 */
	CU_ASSERT(journal_append_requeue(j, J, JL, 1, 1) == 0);
	CU_ASSERT(journal_append_pop(j, J, JL, 2) == 0);		/* x, count 2: max_deliver */
	CU_ASSERT(journal_append_pop(j, J, JL, 3) == 0);		/* y, count 1 */
	CU_ASSERT_FATAL(journal_commit(j) == 0);
	journal_free(j);

	/* x dead-lettered at the start, y given back; twice, the second from the first's records */
	CU_ASSERT_FATAL(dur_start(&d) == 0);
	for (int k = 0; k < 2; k++) {
		CU_ASSERT_EQUAL(dur_len(&d, J), 1);
		CU_ASSERT_EQUAL(dur_len(&d, "jobs.dead"), 1);
		dur_restart(&d, true);
	}
	expect_dead_letter(&d);
	ch = dur_open(&d, J);
	(void)dur_expect(ch, "y", 2, NULL);
	chan_free(ch);
	dur_free(&d);
}

static void
register_suites(void)
{
	CU_pSuite s = test_suite("durable_replay", NULL, NULL);

	test_add(s, "POP, ACK, REQUEUE, PUSH_COUNTED, POP(0): in flight back in tag order, count + 1, "
	    "once", test_replay_inflight);
	test_add(s, "a value in flight at max_deliver goes to the dead letter at replay, once",
	    test_replay_max_deliver);
}

int
main(int argc, char **argv)
{
	return test_main(argc, argv, register_suites);
}
