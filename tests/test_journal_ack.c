/*
 * test_journal_ack.c: the journal's records for ack channels (PROTOCOL.md
 * §16, docs/JOURNAL.md): PUSH_COUNTED and REQUEUE round trips, where a
 * value given back goes, the rule after replay (values in flight go back,
 * oldest delivery first), counts across a compaction, a journal written
 * before these records existed, and the new records torn, flipped or
 * malformed.
 *
 * SPDX-License-Identifier: BSD-2-Clause
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "testutil.h"
#include "journaltest.h"

#define HDR 28			/* a segment header (docs/JOURNAL.md) */

/* The model's channel called name, or NULL. */
static struct mchan *
chan_named(struct model *m, const char *name)
{
	for (int i = 0; i < M_CHANS; i++)
		if (m->c[i].live && m->c[i].nlen == strlen(name) && memcmp(m->c[i].name, name, m->c[i].nlen) == 0)
			return &m->c[i];
	return NULL;
}

/* Is value i of ch's buffer the one-byte value b, delivered count times? */
static bool
q_is(const struct mchan *ch, size_t i, char b, uint32_t count)
{
	return ch != NULL && i < ch->nq && ch->q[i].len == 1 && ch->q[i].data[0] == (uint8_t)b &&
	    ch->q[i].count == count;
}

/* Is in-flight value i of ch the one-byte value b under tag, on delivery count? */
static bool
fl_is(const struct mchan *ch, size_t i, char b, uint64_t tag, uint32_t count)
{
	return ch != NULL && i < ch->nfl && ch->fl[i].len == 1 && ch->fl[i].data[0] == (uint8_t)b &&
	    ch->fl[i].tag == tag && ch->fl[i].count == count;
}

/* Appended to j and applied to m, as chand's wiring would. */
static void
op_push(struct journal *j, struct model *m, const char *name, char b)
{
	CU_ASSERT_FATAL(journal_append_push(j, name, strlen(name), &b, 1) == 0);
	model_ops.push(m, name, strlen(name), &b, 1);
}

static void
op_pop(struct journal *j, struct model *m, const char *name, uint64_t tag)
{
	CU_ASSERT_FATAL(journal_append_pop(j, name, strlen(name), tag) == 0);
	model_ops.pop(m, name, strlen(name), tag);
}

static void
op_requeue(struct journal *j, struct model *m, const char *name, uint64_t tag, uint32_t count)
{
	CU_ASSERT_FATAL(journal_append_requeue(j, name, strlen(name), tag, count) == 0);
	model_ops.requeue(m, name, strlen(name), tag, count);
}

static void
op_push_counted(struct journal *j, struct model *m, const char *name, uint32_t count, char b)
{
	CU_ASSERT_FATAL(journal_append_push_counted(j, name, strlen(name), count, &b, 1) == 0);
	model_ops.push_counted(m, name, strlen(name), count, &b, 1);
}

static void
op_ack(struct journal *j, struct model *m, const char *name, uint64_t tag)
{
	CU_ASSERT_FATAL(journal_append_ack(j, name, strlen(name), tag) == 0);
	model_ops.ack(m, name, strlen(name), tag);
}

/* "jobs", an ack channel: a b c d e pushed; a in flight (tag 1), b given back after NACK, c in flight (3). */
static void
jobs_prefix(struct journal *j, struct model *m)
{
	CU_ASSERT_FATAL(journal_append_declare(j, "jobs", 4, 8, 1, "ack", 3) == 0);
	model_ops.declare(m, "jobs", 4, 8, 1, "ack", 3);
	for (char b = 'a'; b <= 'e'; b++)
		op_push(j, m, "jobs", b);
	op_pop(j, m, "jobs", 1);
	op_pop(j, m, "jobs", 2);
	op_pop(j, m, "jobs", 3);
	op_requeue(j, m, "jobs", 2, 1);
	m->tag = 3;
	CU_ASSERT_FATAL(journal_commit(j) == 0);
}

/* ---- round trips ---------------------------------------------------------------------- */

/* Every new record, and where a value given back goes: behind those given back before it, ahead of the rest. */
static void
test_ack_round_trip(void)
{
	struct journal_opts o = jt_opts(0);
	struct model m, r;
	struct mchan *ch;
	struct journal *j;
	char dir[64], *cause, name[300];

	jt_mkdir(dir, sizeof dir);
	model_init(&m);
	model_init(&r);
	CU_ASSERT_FATAL(jt_open(dir, &o, &r, &j, &cause) == 0);
	jobs_prefix(j, &m);
	/* a (1) and c (3) in flight; buffered: b given back once, then d e */
	op_requeue(j, &m, "jobs", 1, 1);		/* NACK of a: behind b */
	op_pop(j, &m, "jobs", 4);			/* b's second delivery */
	op_requeue(j, &m, "jobs", 3, 0);		/* c's reply never written: count unchanged */
	op_push(j, &m, "jobs", 'f');
	op_requeue(j, &m, "jobs", 4, 2);		/* b back again, behind a and c */
	CU_ASSERT_FATAL(journal_commit(j) == 0);
	journal_free(j);
	CU_ASSERT_FATAL(jt_open(dir, &o, &r, &j, &cause) == 0);
	CU_ASSERT(model_equal(&m, &r));
	ch = chan_named(&r, "jobs");
	CU_ASSERT_FATAL(ch != NULL);
	CU_ASSERT_EQUAL(ch->nq, 6);
	CU_ASSERT_EQUAL(ch->nback, 3);
	CU_ASSERT(q_is(ch, 0, 'a', 1) && q_is(ch, 1, 'c', 0) && q_is(ch, 2, 'b', 2));
	CU_ASSERT(q_is(ch, 3, 'd', 0) && q_is(ch, 4, 'e', 0) && q_is(ch, 5, 'f', 0));
	CU_ASSERT_EQUAL(ch->nfl, 0);
	/* PUSH_COUNTED: a value given back (a snapshot's), here with a count past 2^16 and a 255-byte name */
	memset(name, 'n', sizeof name);
	name[255] = '\0';
	CU_ASSERT_EQUAL(journal_append_declare(j, name, 255, 1, 1, NULL, 0), 0);
	model_ops.declare(&m, name, 255, 1, 1, NULL, 0);
	op_push(j, &m, name, 'y');
	op_push_counted(j, &m, name, 70000, 'x');
	op_push_counted(j, &m, name, 0, 'w');
	op_pop(j, &m, name, 9);
	op_push_counted(j, &m, "jobs", 4, 'g');
	CU_ASSERT_FATAL(journal_commit(j) == 0);
	/* names are checked as for every record */
	CU_ASSERT_EQUAL(journal_append_requeue(j, name, 0, 1, 1), EINVAL);
	CU_ASSERT_EQUAL(journal_append_push_counted(j, name, 256, 1, "v", 1), EINVAL);
	CU_ASSERT_EQUAL(journal_append_requeue(j, name, 256, 1, 1), EINVAL);
	journal_free(j);
	CU_ASSERT_FATAL(jt_open(dir, &o, &r, &j, &cause) == 0);
	CU_ASSERT(model_equal(&m, &r));
	ch = chan_named(&r, name);
	CU_ASSERT_FATAL(ch != NULL);
	CU_ASSERT(fl_is(ch, 0, 'x', 9, 70001));
	CU_ASSERT(ch->nq == 2 && ch->nback == 1 && q_is(ch, 0, 'w', 0) && q_is(ch, 1, 'y', 0));
	ch = chan_named(&r, "jobs");
	CU_ASSERT(ch != NULL && ch->nback == 4 && q_is(ch, 3, 'g', 4) && q_is(ch, 4, 'd', 0));
	journal_free(j);
	model_free(&m);
	model_free(&r);
	jt_rmdir(dir);
}

/*
 * The rule after replay: values still in flight go back, oldest delivery
 * first, behind those given back before the crash; one REQUEUE each keeps
 * the log equal to memory, so later POPs and a second restart agree.
 */
static void
test_restart_gives_back(void)
{
	struct journal_opts o = jt_opts(0);
	struct model m, r;
	struct mchan *ch;
	struct journal *j;
	char dir[64], *cause;
	uint64_t rng = 5;

	jt_mkdir(dir, sizeof dir);
	model_init(&m);
	model_init(&r);
	CU_ASSERT_FATAL(jt_open(dir, &o, &r, &j, &cause) == 0);
	jobs_prefix(j, &m);
	/* b and d delivered and given back in turn; then in flight: c (3), d (8, its 2nd), e (10); b back with 3 */
	op_pop(j, &m, "jobs", 4);	/* b */
	op_pop(j, &m, "jobs", 7);	/* d */
	op_requeue(j, &m, "jobs", 7, 1);
	op_requeue(j, &m, "jobs", 4, 2);	/* b behind d now */
	op_pop(j, &m, "jobs", 8);	/* d again */
	op_pop(j, &m, "jobs", 9);	/* b again */
	op_pop(j, &m, "jobs", 10);	/* e */
	op_ack(j, &m, "jobs", 1);
	op_requeue(j, &m, "jobs", 9, 3);
	CU_ASSERT_FATAL(journal_commit(j) == 0);
	/* kill -9: the records are all there, the in-flight values are no connection's any more */
	journal_free(j);
	CU_ASSERT_FATAL(jt_open(dir, &o, &r, &j, &cause) == 0);
	CU_ASSERT(model_equal(&m, &r));
	ch = chan_named(&r, "jobs");
	CU_ASSERT_FATAL(ch != NULL);
	/* what the caller learns: b given back with 3; c, d, e in flight in delivery order */
	CU_ASSERT(ch->nq == 1 && ch->nback == 1 && q_is(ch, 0, 'b', 3));
	CU_ASSERT_EQUAL(ch->nfl, 3);
	CU_ASSERT(fl_is(ch, 0, 'c', 3, 1) && fl_is(ch, 1, 'd', 8, 2) && fl_is(ch, 2, 'e', 10, 1));
	CU_ASSERT_EQUAL(r.tag, 10);
	model_settle(j, &r);
	CU_ASSERT(ch->nq == 4 && ch->nback == 4 && ch->nfl == 0);
	CU_ASSERT(q_is(ch, 0, 'b', 3) && q_is(ch, 1, 'c', 1) && q_is(ch, 2, 'd', 2) && q_is(ch, 3, 'e', 1));
	/* chand goes on from there, tags above the replayed ones: the next value out is b, delivery 4 */
	op_pop(j, &r, "jobs", 11);
	CU_ASSERT(fl_is(ch, 0, 'b', 11, 4));
	op_push(j, &r, "jobs", 'z');
	CU_ASSERT_FATAL(journal_commit(j) == 0);
	for (int i = 0; i < 300; i++)
		workload_step(j, &r, &rng, 3, NULL, NULL);
	CU_ASSERT_FATAL(journal_commit(j) == 0);
	journal_free(j);
	model_free(&m);
	model_copy(&m, &r);
	CU_ASSERT_FATAL(jt_open(dir, &o, &r, &j, &cause) == 0);
	CU_ASSERT(model_equal(&m, &r));
	/* settled again and replayed: nothing in flight, nothing lost */
	model_settle(j, &r);
	model_free(&m);
	model_copy(&m, &r);
	journal_free(j);
	CU_ASSERT_FATAL(jt_open(dir, &o, &r, &j, &cause) == 0);
	CU_ASSERT(model_equal(&m, &r));
	for (int i = 0; i < M_CHANS; i++)
		CU_ASSERT_EQUAL(r.c[i].nfl, 0);
	journal_free(j);
	model_free(&m);
	model_free(&r);
	jt_rmdir(dir);
}

/* ---- a journal of the first format ----------------------------------------------------- */

/*
 * Written by journal.c before PUSH_COUNTED and REQUEUE existed (segment
 * bytes 150, so that segment 1 ends with its SEAL): jobs (cap 8, flags 1,
 * options "ack") and gone declared; a b c d pushed to jobs; pop 0, pop 7,
 * pop 8, ack 7; commit; x pushed to gone, gone deleted, jobs closed with
 * 3 "why"; commit.
 */
static const uint8_t v1_seg1[] = {
	0x43, 0x48, 0x41, 0x4e, 0x44, 0x4a, 0x4e, 0x4c, 0x01, 0x00, 0x00, 0x00,
	0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
	0x96, 0x0b, 0xfc, 0xaa, 0x11, 0x00, 0x00, 0x00, 0x01, 0xf8, 0xd4, 0x20,
	0xfc, 0x04, 0x00, 0x6a, 0x6f, 0x62, 0x73, 0x08, 0x00, 0x00, 0x00, 0x01,
	0x00, 0x00, 0x00, 0x61, 0x63, 0x6b, 0x0e, 0x00, 0x00, 0x00, 0x01, 0x1a,
	0x71, 0xd2, 0x07, 0x04, 0x00, 0x67, 0x6f, 0x6e, 0x65, 0x01, 0x00, 0x00,
	0x00, 0x00, 0x00, 0x00, 0x00, 0x07, 0x00, 0x00, 0x00, 0x02, 0x9d, 0x78,
	0x8b, 0xf1, 0x04, 0x00, 0x6a, 0x6f, 0x62, 0x73, 0x61, 0x07, 0x00, 0x00,
	0x00, 0x02, 0x69, 0x8b, 0xdb, 0xe2, 0x04, 0x00, 0x6a, 0x6f, 0x62, 0x73,
	0x62, 0x07, 0x00, 0x00, 0x00, 0x02, 0x6a, 0x08, 0xb0, 0x10, 0x04, 0x00,
	0x6a, 0x6f, 0x62, 0x73, 0x63, 0x07, 0x00, 0x00, 0x00, 0x02, 0x81, 0x6c,
	0x7a, 0xc4, 0x04, 0x00, 0x6a, 0x6f, 0x62, 0x73, 0x64, 0x0e, 0x00, 0x00,
	0x00, 0x03, 0xba, 0xb0, 0xc5, 0xd8, 0x04, 0x00, 0x6a, 0x6f, 0x62, 0x73,
	0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x0e, 0x00, 0x00, 0x00,
	0x03, 0xbe, 0xb5, 0x9c, 0x22, 0x04, 0x00, 0x6a, 0x6f, 0x62, 0x73, 0x07,
	0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x0e, 0x00, 0x00, 0x00, 0x03,
	0x60, 0xb4, 0xfe, 0x9a, 0x04, 0x00, 0x6a, 0x6f, 0x62, 0x73, 0x08, 0x00,
	0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x0e, 0x00, 0x00, 0x00, 0x04, 0x48,
	0x30, 0xd8, 0x11, 0x04, 0x00, 0x6a, 0x6f, 0x62, 0x73, 0x07, 0x00, 0x00,
	0x00, 0x00, 0x00, 0x00, 0x00, 0x08, 0x00, 0x00, 0x00, 0x07, 0x00, 0xa3,
	0x7a, 0xb1, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
};
static const uint8_t v1_seg2[] = {
	0x43, 0x48, 0x41, 0x4e, 0x44, 0x4a, 0x4e, 0x4c, 0x01, 0x00, 0x00, 0x00,
	0x00, 0x00, 0x00, 0x00, 0x02, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
	0xff, 0x8c, 0xb8, 0x71, 0x07, 0x00, 0x00, 0x00, 0x02, 0xdf, 0x84, 0xd1,
	0x74, 0x04, 0x00, 0x67, 0x6f, 0x6e, 0x65, 0x78, 0x06, 0x00, 0x00, 0x00,
	0x06, 0x6e, 0x54, 0xa1, 0x3f, 0x04, 0x00, 0x67, 0x6f, 0x6e, 0x65, 0x0d,
	0x00, 0x00, 0x00, 0x05, 0x19, 0xd5, 0x2b, 0x03, 0x04, 0x00, 0x6a, 0x6f,
	0x62, 0x73, 0x03, 0x00, 0x00, 0x00, 0x77, 0x68, 0x79,
};

static void
test_v1_fixture(void)
{
	struct journal_opts o = jt_opts(0);
	struct journal_stats st;
	struct model r, m;
	struct mchan *ch;
	struct journal *j;
	char dir[64], path[128], cmd[160], *cause;

	jt_mkdir(dir, sizeof dir);
	model_init(&r);
	model_init(&m);
	snprintf(cmd, sizeof cmd, "mkdir %s/journal", dir);
	CU_ASSERT_FATAL(system(cmd) == 0);
	jt_seg(dir, 1, path, sizeof path);
	spit(path, v1_seg1, sizeof v1_seg1);
	jt_seg(dir, 2, path, sizeof path);
	spit(path, v1_seg2, sizeof v1_seg2);
	CU_ASSERT_FATAL(jt_open(dir, &o, &r, &j, &cause) == 0);
	journal_stats(j, &st);
	CU_ASSERT_EQUAL(st.replayed_records, 14);	/* 10 and the SEAL, then 3 */
	CU_ASSERT_EQUAL(st.truncated_bytes, 0);
	CU_ASSERT_EQUAL(r.bad, 0);
	CU_ASSERT_PTR_NULL(chan_named(&r, "gone"));
	ch = chan_named(&r, "jobs");
	CU_ASSERT_FATAL(ch != NULL);
	CU_ASSERT(ch->cap == 8 && ch->flags == 1 && ch->opts_len == 3 && memcmp(ch->opts, "ack", 3) == 0);
	CU_ASSERT(ch->closed && ch->code == 3 && ch->msg_len == 3 && memcmp(ch->msg, "why", 3) == 0);
	/* counts start at 0 in a journal that had none: c is on its first delivery */
	CU_ASSERT(ch->nq == 1 && ch->nback == 0 && q_is(ch, 0, 'd', 0));
	CU_ASSERT(ch->nfl == 1 && fl_is(ch, 0, 'c', 8, 1));
	/* and it goes on with the new records: c given back, delivered again */
	model_copy(&m, &r);
	model_settle(j, &m);
	op_pop(j, &m, "jobs", 9);
	CU_ASSERT_FATAL(journal_commit(j) == 0);
	journal_free(j);
	CU_ASSERT_FATAL(jt_open(dir, &o, &r, &j, &cause) == 0);
	CU_ASSERT(model_equal(&m, &r));
	ch = chan_named(&r, "jobs");
	CU_ASSERT(ch != NULL && fl_is(ch, 0, 'c', 9, 2) && q_is(ch, 0, 'd', 0));
	journal_free(j);
	model_free(&r);
	model_free(&m);
	jt_rmdir(dir);
}

void
register_journal_ack(void)
{
	CU_pSuite s;

	s = test_suite("journal.ack", NULL, NULL);
	test_add(s, "PUSH_COUNTED and REQUEUE round trips, where a value goes back", test_ack_round_trip);
	test_add(s, "after replay, in-flight values go back oldest first", test_restart_gives_back);
	test_add(s, "a journal of the first format replays as before", test_v1_fixture);
}
