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

/* ---- compaction ----------------------------------------------------------------------- */

/* Open a copy of dir (a kill -9 image): its state must be want. */
static void
image_is(const char *dir, const struct model *want)
{
	struct journal_opts o = jt_opts(0);
	struct model r;
	struct journal *j;
	char img[64], *cause;

	jt_mkdir(img, sizeof img);
	copy_dir(dir, img);
	model_init(&r);
	CU_ASSERT_FATAL(jt_open(img, &o, &r, &j, &cause) == 0);
	CU_ASSERT(model_equal(want, &r));
	journal_free(j);
	model_free(&r);
	jt_rmdir(img);
}

/*
 * Counts and values in flight through a compaction: the snapshot holds
 * them as of begin, a REQUEUE after begin on a channel not yet written
 * copies it first, and the next delivery after a restart counts on.
 */
static void
test_counts_across_compaction(void)
{
	struct journal_opts o = jt_opts(0);
	struct journal_stats st;
	struct model m, r;
	struct mchan *ch;
	struct journal *j, *snap;
	char dir[64], *cause;

	jt_mkdir(dir, sizeof dir);
	model_init(&m);
	model_init(&r);
	CU_ASSERT_FATAL(jt_open(dir, &o, &r, &j, &cause) == 0);
	jobs_prefix(j, &m);
	op_requeue(j, &m, "jobs", 1, 1);
	op_pop(j, &m, "jobs", 4);		/* b, 2nd delivery */
	op_pop(j, &m, "jobs", 5);		/* a, 2nd delivery */
	op_requeue(j, &m, "jobs", 4, 2);
	CU_ASSERT_FATAL(journal_commit(j) == 0);
	ch = chan_named(&m, "jobs");
	CU_ASSERT_FATAL(ch != NULL);
	CU_ASSERT(fl_is(ch, 0, 'c', 3, 1) && fl_is(ch, 1, 'a', 5, 2));
	CU_ASSERT(ch->nback == 1 && q_is(ch, 0, 'b', 2) && q_is(ch, 1, 'd', 0));

	CU_ASSERT_FATAL(journal_compact_begin(j, &snap) == 0);
	image_is(dir, &m);
	/* a NACK of a before jobs is in the snapshot: jobs goes in first, as of begin */
	snapshot_chan(snap, ch);
	op_requeue(j, &m, "jobs", 5, 2);
	op_pop(j, &m, "jobs", 6);		/* b, 3rd delivery */
	CU_ASSERT_FATAL(journal_commit(j) == 0);
	CU_ASSERT_FATAL(journal_commit(snap) == 0);
	image_is(dir, &m);
	CU_ASSERT_FATAL(journal_compact_end(j, snap, &cause) == 0);
	image_is(dir, &m);
	journal_stats(j, &st);
	CU_ASSERT_EQUAL(st.compactions, 1);
	CU_ASSERT_EQUAL(st.segments, 2);
	journal_free(j);

	CU_ASSERT_FATAL(jt_open(dir, &o, &r, &j, &cause) == 0);
	CU_ASSERT(model_equal(&m, &r));
	ch = chan_named(&r, "jobs");
	CU_ASSERT_FATAL(ch != NULL);
	CU_ASSERT(ch->nfl == 2 && fl_is(ch, 0, 'c', 3, 1) && fl_is(ch, 1, 'b', 6, 3));
	CU_ASSERT(ch->nq == 3 && ch->nback == 1 && q_is(ch, 0, 'a', 2) && q_is(ch, 1, 'd', 0));
	/* after the restart: a, then c and b in delivery order, then d e */
	model_settle(j, &r);
	CU_ASSERT(ch->nback == 3 && q_is(ch, 0, 'a', 2) && q_is(ch, 1, 'c', 1) && q_is(ch, 2, 'b', 3));
	op_pop(j, &r, "jobs", 7);
	CU_ASSERT(fl_is(ch, 0, 'a', 7, 3));
	CU_ASSERT_FATAL(journal_commit(j) == 0);
	/* and a second compaction of that, straight through */
	CU_ASSERT_FATAL(journal_compact_begin(j, &snap) == 0);
	snapshot_chan(snap, ch);
	CU_ASSERT_FATAL(journal_compact_end(j, snap, &cause) == 0);
	journal_free(j);
	model_free(&m);
	model_copy(&m, &r);
	CU_ASSERT_FATAL(jt_open(dir, &o, &r, &j, &cause) == 0);
	CU_ASSERT(model_equal(&m, &r));
	journal_free(j);
	model_free(&m);
	model_free(&r);
	jt_rmdir(dir);
}

/* ---- torn, flipped, malformed ------------------------------------------------------------ */

/*
 * A journal of one segment: jobs_prefix and a dead-letter channel, then
 * what add appends, committed alone. *before is the state before those
 * records, *off where they start, *m the state after.
 */
static void
build_tail(const char *dir, void (*add)(struct journal *, struct model *), struct model *before,
    struct model *m, uint64_t *off)
{
	struct journal_opts o = jt_opts(0);
	struct journal_stats st;
	struct journal *j;
	char *cause;

	model_init(m);
	model_init(before);
	CU_ASSERT_FATAL(jt_open(dir, &o, before, &j, &cause) == 0);
	jobs_prefix(j, m);
	CU_ASSERT_FATAL(journal_append_declare(j, "dead", 4, 100, 0, NULL, 0) == 0);
	model_ops.declare(m, "dead", 4, 100, 0, NULL, 0);
	CU_ASSERT_FATAL(journal_commit(j) == 0);
	journal_stats(j, &st);
	CU_ASSERT_EQUAL_FATAL(st.segments, 1);
	*off = st.log_bytes;
	model_free(before);
	model_copy(before, m);
	add(j, m);
	CU_ASSERT_FATAL(journal_commit(j) == 0);
	journal_free(j);
}

static void
add_requeue(struct journal *j, struct model *m)
{
	op_requeue(j, m, "jobs", 3, 1);
}

static void
add_push_counted(struct journal *j, struct model *m)
{
	op_push_counted(j, m, "jobs", 6, 'v');
}

/* a (tag 1) dead-lettered: PUSH on the dead-letter channel, then ACK on the source */
static void
add_dead_letter(struct journal *j, struct model *m)
{
	op_push(j, m, "dead", 'a');
	op_ack(j, m, "jobs", 1);
}

/* How many copies of the one-byte value b the model holds, buffered or in flight, on any channel. */
static int
copies(const struct model *m, char b)
{
	int n = 0;

	for (int i = 0; i < M_CHANS; i++) {
		for (size_t k = 0; m->c[i].live && k < m->c[i].nq; k++)
			n += m->c[i].q[k].len == 1 && m->c[i].q[k].data[0] == (uint8_t)b;
		for (size_t k = 0; m->c[i].live && k < m->c[i].nfl; k++)
			n += m->c[i].fl[k].len == 1 && m->c[i].fl[k].data[0] == (uint8_t)b;
	}
	return n;
}

/* Cut the segment at every byte of the new records: the state before them, or (dead letter) never a loss. */
static void
test_torn_new_records(void)
{
	static void (*const adds[])(struct journal *, struct model *) = {
		add_requeue, add_push_counted, add_dead_letter,
	};
	/* record headers 9, names 2 + 4; REQUEUE 8 + 4, PUSH_COUNTED 4 + 1; PUSH 1 and ACK 8 */
	static const size_t sizes[] = { 27, 20, 16 + 23 };
	struct journal_opts o = jt_opts(0);
	struct model before, m, r;
	struct journal *j;
	char dir[64], path[128], log[4096], want[64], *cause;
	uint64_t off;
	uint8_t *whole;
	size_t len;

	for (size_t t = 0; t < sizeof adds / sizeof *adds; t++) {
		size_t cuts = 0;
		int both = 0;

		jt_mkdir(dir, sizeof dir);
		model_init(&r);
		build_tail(dir, adds[t], &before, &m, &off);
		jt_seg(dir, 1, path, sizeof path);
		whole = slurp(path, &len);
		/* the whole journal first */
		CU_ASSERT_FATAL(jt_open(dir, &o, &r, &j, &cause) == 0);
		CU_ASSERT(model_equal(&m, &r));
		journal_free(j);
		snprintf(want, sizeof want, "offset=%llu", (unsigned long long)off);
		for (uint64_t cut = off; cut < len; cut++) {
			spit(path, whole, (size_t)cut);
			CU_ASSERT_FATAL(jt_open_logged(dir, &o, &r, &j, &cause, log, sizeof log) == 0);
			if (model_equal(&before, &r)) {
				CU_ASSERT(cut == off || (strstr(log, "torn tail") != NULL && strstr(log, want) != NULL));
			} else {
				/* only the dead letter's PUSH survived: a duplicate, never a loss */
				CU_ASSERT_EQUAL(adds[t], add_dead_letter);
				CU_ASSERT(cut == off + 16 || strstr(log, "torn tail") != NULL);
				CU_ASSERT(fl_is(chan_named(&r, "jobs"), 0, 'a', 1, 1));
				CU_ASSERT_EQUAL(chan_named(&r, "dead")->nq, 1);
				both++;
			}
			CU_ASSERT(copies(&r, 'a') >= 1);
			journal_free(j);
			cuts++;
		}
		CU_ASSERT_EQUAL(len - off, sizes[t]);
		CU_ASSERT_EQUAL(cuts, sizes[t]);
		CU_ASSERT_EQUAL(both, adds[t] == add_dead_letter ? 23 : 0);
		free(whole);
		model_free(&before);
		model_free(&m);
		model_free(&r);
		jt_rmdir(dir);
	}
}

/* A record with a given type and payload (name, then rest), its CRC right, appended to path. */
static void
append_raw(const char *path, uint8_t type, const char *name, const uint8_t *rest, size_t rlen)
{
	uint8_t rec[512];
	size_t nlen = strlen(name), plen = 2 + nlen + rlen;
	size_t len;
	uint8_t *p = slurp(path, &len);

	CU_ASSERT_FATAL(9 + plen <= sizeof rec);
	for (int i = 0; i < 4; i++)
		rec[i] = (uint8_t)(plen >> (8 * i));
	rec[4] = type;
	rec[9] = (uint8_t)nlen;
	rec[10] = 0;
	memcpy(rec + 11, name, nlen);
	memcpy(rec + 11 + nlen, rest, rlen);
	jput_crc(rec, plen);
	p = realloc(p, len + 9 + plen);
	CU_ASSERT_FATAL(p != NULL);
	memcpy(p + len, rec, 9 + plen);
	spit(path, p, len + 9 + plen);
	free(p);
}

/* A new record with a bit flipped: before the tail refused, then repaired; as the tail, cut. */
static void
test_flipped_new_records(void)
{
	static void (*const adds[])(struct journal *, struct model *) = { add_requeue, add_push_counted };
	struct journal_opts o = jt_opts(0);
	struct model before, m, r;
	struct journal *j;
	char dir[64], path[128], want[200], log[4096], *cause;
	uint64_t off;
	size_t len;
	uint8_t *whole;

	for (size_t t = 0; t < sizeof adds / sizeof *adds; t++) {
		jt_mkdir(dir, sizeof dir);
		model_init(&r);
		build_tail(dir, adds[t], &before, &m, &off);
		jt_seg(dir, 1, path, sizeof path);
		whole = slurp(path, &len);
		/* the count's first byte (REQUEUE: the tag's), with a record after it */
		append_raw(path, 2, "jobs", (const uint8_t *)"z", 1);
		flip(path, off + 9 + 2 + 4);
		o.repair = false;
		CU_ASSERT_EQUAL(jt_open(dir, &o, &r, &j, &cause), -1);
		snprintf(want, sizeof want, "%s: offset %llu: record fails its CRC", path, (unsigned long long)off);
		CU_ASSERT(cause != NULL && strstr(cause, want) != NULL && strstr(cause, "--repair") != NULL);
		free(cause);
		o.repair = true;
		CU_ASSERT_FATAL(jt_open(dir, &o, &r, &j, &cause) == 0);
		CU_ASSERT(model_equal(&before, &r));
		CU_ASSERT_EQUAL(jt_size(path), off);
		journal_free(j);
		/* the last record, its last byte flipped: a torn tail */
		whole[len - 1] ^= 0x10;
		spit(path, whole, len);
		o.repair = false;
		CU_ASSERT_FATAL(jt_open_logged(dir, &o, &r, &j, &cause, log, sizeof log) == 0);
		CU_ASSERT(model_equal(&before, &r));
		CU_ASSERT(strstr(log, "torn tail") != NULL && strstr(log, "fails its CRC") != NULL);
		CU_ASSERT_EQUAL(jt_size(path), off);
		journal_free(j);
		free(whole);
		model_free(&before);
		model_free(&m);
		model_free(&r);
		jt_rmdir(dir);
	}
}

/* Good CRCs over bad payloads, and types past 9: refused even as the last record, never guessed at. */
static void
test_malformed_new_records(void)
{
	static const struct {
		uint8_t type;
		size_t rlen;
		const char *why;
	} bad[] = {
		{ 9, 11, "REQUEUE record of the wrong size" },
		{ 9, 13, "REQUEUE record of the wrong size" },
		{ 9, 0, "REQUEUE record of the wrong size" },
		{ 8, 3, "PUSH_COUNTED record too short" },
		{ 10, 12, "unknown record type" },
		{ 255, 4, "unknown record type" },
	};
	struct journal_opts o = jt_opts(0);
	struct model before, m, r;
	struct journal *j;
	char dir[64], path[128], want[200], *cause;
	uint8_t rest[16] = { 3 };
	uint64_t off;
	size_t len;
	uint8_t *whole;

	jt_mkdir(dir, sizeof dir);
	model_init(&r);
	build_tail(dir, add_requeue, &before, &m, &off);
	jt_seg(dir, 1, path, sizeof path);
	whole = slurp(path, &len);
	for (size_t t = 0; t < sizeof bad / sizeof *bad; t++) {
		spit(path, whole, len);
		append_raw(path, bad[t].type, "jobs", rest, bad[t].rlen);
		o.repair = false;
		CU_ASSERT_EQUAL(jt_open(dir, &o, &r, &j, &cause), -1);
		snprintf(want, sizeof want, "%s: offset %llu: %s", path, (unsigned long long)len, bad[t].why);
		CU_ASSERT(cause != NULL && strstr(cause, want) != NULL);
		free(cause);
		CU_ASSERT_EQUAL(jt_size(path), len + 9 + 6 + bad[t].rlen);
		o.repair = true;
		CU_ASSERT_FATAL(jt_open(dir, &o, &r, &j, &cause) == 0);
		CU_ASSERT(model_equal(&m, &r));
		CU_ASSERT_EQUAL(jt_size(path), len);
		journal_free(j);
	}
	/* and the good sizes are good: the REQUEUE of tag 3 again, 8 + 4 bytes */
	spit(path, whole, off);
	rest[8] = 1;
	append_raw(path, 9, "jobs", rest, 12);
	o.repair = false;
	CU_ASSERT_FATAL(jt_open(dir, &o, &r, &j, &cause) == 0);
	CU_ASSERT(model_equal(&m, &r));
	journal_free(j);
	free(whole);
	model_free(&before);
	model_free(&m);
	model_free(&r);
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
	test_add(s, "counts and values in flight across a compaction", test_counts_across_compaction);
	s = test_suite("journal.ack.damage", NULL, NULL);
	test_add(s, "torn at every byte of REQUEUE, PUSH_COUNTED, a dead letter", test_torn_new_records);
	test_add(s, "a bit flipped in the new records: refused, repaired, torn", test_flipped_new_records);
	test_add(s, "malformed new records and types past 9: refused", test_malformed_new_records);
}
