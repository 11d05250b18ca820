/*
 * test_journal_crash.c: what a crash or a damaged disk leaves behind: torn
 * tails at every byte, a flipped bit before the tail, missing and bad
 * segments (refused, then repaired), and compaction with kill -9 images
 * taken at each of its steps (copies of the directory, which is what the
 * page cache holds when a process dies).
 *
 * SPDX-License-Identifier: BSD-2-Clause
 */
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "testutil.h"
#include "crc32c.h"
#include "journaltest.h"

#define HDR 28			/* a segment header (docs/JOURNAL.md) */

/* What journal_compact_end writes before its rename: the SEAL record (type 7, u64 seq). */
static void
append_seal(const char *path, uint64_t seq)
{
	uint8_t rec[17] = { 8, 0, 0, 0, 7 };
	int fd = open(path, O_WRONLY | O_APPEND);

	for (int i = 0; i < 8; i++)
		rec[9 + i] = (uint8_t)(seq >> (8 * i));
	jput_crc(rec, 8);
	CU_ASSERT_FATAL(fd >= 0 && write(fd, rec, sizeof rec) == (ssize_t)sizeof rec);
	close(fd);
}

/* The bytes of DIR/journal's segments: what log_bytes must say. */
static uint64_t
seg_bytes(const char *dir)
{
	char path[128], file[400];
	struct dirent *de;
	uint64_t n = 0;
	DIR *d;

	snprintf(path, sizeof path, "%s/journal", dir);
	d = opendir(path);
	CU_ASSERT_FATAL(d != NULL);
	while ((de = readdir(d)) != NULL) {
		size_t len = strlen(de->d_name);

		if (len < 4 || strcmp(de->d_name + len - 4, ".seg") != 0)
			continue;
		snprintf(file, sizeof file, "%s/%s", path, de->d_name);
		n += jt_size(file);
	}
	closedir(d);
	return n;
}

/*
 * A journal of several segments where one record, the "marked" one, is
 * known: its segment, its offset, and the model just before it. Steps go
 * on after it for `after` more steps.
 */
struct marked {
	struct model before, all;
	uint64_t seq, off;
	uint64_t nsegs;
};

static void
build_marked(const char *dir, uint64_t segment_bytes, int steps, int after, struct marked *mk)
{
	struct journal_opts o = jt_opts(segment_bytes);
	struct journal_stats st0, st;
	struct journal *j;
	uint64_t rng = 7, size0;
	char path[128], *cause;

	model_init(&mk->all);
	model_init(&mk->before);
	CU_ASSERT_FATAL(jt_open(dir, &o, &mk->before, &j, &cause) == 0);
	workload(j, &mk->all, &rng, 5, steps, 1);
	do {
		model_free(&mk->before);
		model_copy(&mk->before, &mk->all);
		journal_stats(j, &st0);
		jt_seg(dir, st0.segments, path, sizeof path);
		size0 = jt_size(path);
		workload_step(j, &mk->all, &rng, 5, NULL, NULL);
		CU_ASSERT_FATAL(journal_commit(j) == 0);
		journal_stats(j, &st);
	} while (st.log_bytes == st0.log_bytes);
	/* no compaction here: segment k is the k-th; the record went at the end of the newest */
	mk->seq = st.segments;
	mk->off = st.segments == st0.segments ? size0 : HDR;
	workload(j, &mk->all, &rng, 5, after, 1);
	journal_stats(j, &st);
	mk->nsegs = st.segments;
	journal_free(j);
}

static void
marked_free(struct marked *mk)
{
	model_free(&mk->before);
	model_free(&mk->all);
}

/* ---- torn tails -------------------------------------------------------------------- */

/* Cut the last segment at every byte of its last record: the state before that record, and a log line. */
static void
test_torn_tail_every_offset(void)
{
	struct journal_opts o = jt_opts(1 << 20);
	struct journal_stats st;
	struct marked mk;
	struct model r;
	struct journal *j;
	char dir[64], path[128], log[4096], want[64], *cause;
	uint8_t *whole;
	size_t len;
	int cuts = 0;

	jt_mkdir(dir, sizeof dir);
	model_init(&r);
	build_marked(dir, 1 << 20, 200, 0, &mk);
	CU_ASSERT_EQUAL_FATAL(mk.nsegs, 1);
	jt_seg(dir, mk.seq, path, sizeof path);
	whole = slurp(path, &len);
	CU_ASSERT_FATAL(mk.off > HDR && mk.off < len);
	for (uint64_t cut = mk.off; cut < len; cut++) {
		spit(path, whole, (size_t)cut);
		CU_ASSERT_FATAL(jt_open_logged(dir, &o, &r, &j, &cause, log, sizeof log) == 0);
		CU_ASSERT(model_equal(&mk.before, &r));
		CU_ASSERT_EQUAL(jt_size(path), mk.off);
		journal_stats(j, &st);
		CU_ASSERT_EQUAL(st.truncated_bytes, cut - mk.off);
		snprintf(want, sizeof want, "offset=%llu", (unsigned long long)mk.off);
		if (cut > mk.off) {
			CU_ASSERT(strstr(log, "torn tail") != NULL && strstr(log, want) != NULL &&
			    strstr(log, path) != NULL);
		} else {
			CU_ASSERT(strstr(log, "torn tail") == NULL);
		}
		journal_free(j);
		cuts++;
	}
	CU_ASSERT(cuts > 10);
	/* whole, but its CRC fails: torn too (the write reached the end, not all of it the disk) */
	whole[len - 1] ^= 1;
	spit(path, whole, len);
	CU_ASSERT_FATAL(jt_open_logged(dir, &o, &r, &j, &cause, log, sizeof log) == 0);
	CU_ASSERT(model_equal(&mk.before, &r));
	CU_ASSERT(strstr(log, "fails its CRC") != NULL && strstr(log, want) != NULL);
	CU_ASSERT_EQUAL(jt_size(path), mk.off);
	/* and the journal goes on from there */
	CU_ASSERT_EQUAL(journal_append_delete(j, "chan.0", 6), 0);
	CU_ASSERT_EQUAL(journal_commit(j), 0);
	journal_free(j);
	CU_ASSERT_FATAL(jt_open(dir, &o, &r, &j, &cause) == 0);
	CU_ASSERT_EQUAL(r.bad, mk.before.c[0].live ? 0 : 1);
	journal_free(j);
	free(whole);
	marked_free(&mk);
	model_free(&r);
	jt_rmdir(dir);
}

/* ---- corruption before the tail ------------------------------------------------------- */

static void
test_bit_flip_middle(void)
{
	struct journal_opts o = jt_opts(4096);
	struct journal_stats st;
	struct marked mk;
	struct model r;
	struct journal *j;
	char dir[64], path[128], want[160], *cause;

	jt_mkdir(dir, sizeof dir);
	model_init(&r);
	build_marked(dir, 4096, 250, 400, &mk);
	CU_ASSERT_FATAL(mk.seq > 1 && mk.nsegs > mk.seq + 1);
	jt_seg(dir, mk.seq, path, sizeof path);
	flip(path, mk.off + 12);
	CU_ASSERT_EQUAL(jt_open(dir, &o, &r, &j, &cause), -1);
	CU_ASSERT_PTR_NULL(j);
	CU_ASSERT_FATAL(cause != NULL);
	snprintf(want, sizeof want, "%s: offset %llu: record fails its CRC", path, (unsigned long long)mk.off);
	CU_ASSERT(strstr(cause, want) != NULL);
	CU_ASSERT(strstr(cause, "--repair") != NULL);
	free(cause);
	/* refusing changed nothing */
	CU_ASSERT_EQUAL(count_files(dir, ".seg"), (int)mk.nsegs);
	o.repair = true;
	CU_ASSERT_FATAL(jt_open(dir, &o, &r, &j, &cause) == 0);
	CU_ASSERT(model_equal(&mk.before, &r));
	journal_stats(j, &st);
	CU_ASSERT(st.truncated_bytes > 0);
	journal_free(j);
	CU_ASSERT_EQUAL(jt_size(path), mk.off);
	CU_ASSERT_EQUAL(count_files(dir, ".seg.dropped"), (int)(mk.nsegs - mk.seq));
	CU_ASSERT_EQUAL(count_files(dir, ".seg"), (int)mk.seq);
	/* repaired: opens without repair now, same state */
	o.repair = false;
	CU_ASSERT_FATAL(jt_open(dir, &o, &r, &j, &cause) == 0);
	CU_ASSERT(model_equal(&mk.before, &r));
	journal_free(j);
	marked_free(&mk);
	model_free(&r);
	jt_rmdir(dir);
}

/* In the last segment with records after it: still before the tail. A good CRC over a bad record: refused too. */
static void
test_bit_flip_last_segment(void)
{
	struct journal_opts o = jt_opts(1 << 20);
	struct marked mk;
	struct model r;
	struct journal *j;
	char dir[64], path[128], want[160], *cause;
	uint8_t *whole, *p;
	size_t len, plen;

	jt_mkdir(dir, sizeof dir);
	model_init(&r);
	build_marked(dir, 1 << 20, 100, 50, &mk);
	CU_ASSERT_EQUAL_FATAL(mk.nsegs, 1);
	jt_seg(dir, 1, path, sizeof path);
	whole = slurp(path, &len);
	flip(path, mk.off + 7);		/* the CRC field itself */
	CU_ASSERT_EQUAL(jt_open(dir, &o, &r, &j, &cause), -1);
	snprintf(want, sizeof want, "%s: offset %llu: record fails its CRC", path, (unsigned long long)mk.off);
	CU_ASSERT(cause != NULL && strstr(cause, want) != NULL);
	free(cause);
	CU_ASSERT_EQUAL(jt_size(path), len);
	/* an unknown type whose CRC is right: a newer writer or a bug, never a torn write */
	p = malloc(len);
	CU_ASSERT_FATAL(p != NULL);
	memcpy(p, whole, len);
	p[mk.off + 4] = 99;
	plen = (size_t)p[mk.off] | (size_t)p[mk.off + 1] << 8 | (size_t)p[mk.off + 2] << 16 |
	    (size_t)p[mk.off + 3] << 24;
	jput_crc(p + mk.off, plen);
	spit(path, p, len);
	CU_ASSERT_EQUAL(jt_open(dir, &o, &r, &j, &cause), -1);
	snprintf(want, sizeof want, "%s: offset %llu: unknown record type", path, (unsigned long long)mk.off);
	CU_ASSERT(cause != NULL && strstr(cause, want) != NULL);
	free(cause);
	o.repair = true;
	CU_ASSERT_FATAL(jt_open(dir, &o, &r, &j, &cause) == 0);
	CU_ASSERT(model_equal(&mk.before, &r));
	CU_ASSERT_EQUAL(jt_size(path), mk.off);
	journal_free(j);
	free(p);
	free(whole);
	marked_free(&mk);
	model_free(&r);
	jt_rmdir(dir);
}

static void
test_missing_and_bad_segments(void)
{
	struct journal_opts o = jt_opts(4096);
	struct marked mk;
	struct model r;
	struct journal *j;
	char dir[64], path[128], path2[128], *cause;
	size_t len, len3;
	uint8_t *p, *p3;

	jt_mkdir(dir, sizeof dir);
	model_init(&r);
	build_marked(dir, 4096, 250, 400, &mk);
	CU_ASSERT_FATAL(mk.nsegs >= 4);
	/* a middle segment gone */
	jt_seg(dir, 2, path, sizeof path);
	p = slurp(path, &len);
	CU_ASSERT_FATAL(unlink(path) == 0);
	CU_ASSERT_EQUAL(jt_open(dir, &o, &r, &j, &cause), -1);
	CU_ASSERT(cause != NULL && strstr(cause, path) != NULL && strstr(cause, "missing segment") != NULL);
	free(cause);
	spit(path, p, len);
	/* a bad magic */
	jt_seg(dir, 3, path2, sizeof path2);
	p3 = slurp(path2, &len3);
	flip(path2, 1);
	CU_ASSERT_EQUAL(jt_open(dir, &o, &r, &j, &cause), -1);
	CU_ASSERT(cause != NULL && strstr(cause, path2) != NULL && strstr(cause, "offset 0: not a journal") != NULL);
	free(cause);
	flip(path2, 1);
	/* a renamed segment: 2's bytes under 3's name */
	spit(path2, p, len);
	CU_ASSERT_EQUAL(jt_open(dir, &o, &r, &j, &cause), -1);
	CU_ASSERT(cause != NULL && strstr(cause, path2) != NULL && strstr(cause, "renamed") != NULL);
	free(cause);
	spit(path2, p3, len3);
	/* a header bit flip: the header's CRC */
	jt_seg(dir, 4, path2, sizeof path2);
	flip(path2, 13);
	CU_ASSERT_EQUAL(jt_open(dir, &o, &r, &j, &cause), -1);
	CU_ASSERT(cause != NULL && strstr(cause, path2) != NULL && strstr(cause, "header fails its CRC") != NULL);
	free(cause);
	flip(path2, 13);
	/* the first segment gone, no snapshot: refused too */
	jt_seg(dir, 1, path2, sizeof path2);
	CU_ASSERT_FATAL(rename(path2, "/tmp/test_journal.seg1") == 0);
	CU_ASSERT_EQUAL(jt_open(dir, &o, &r, &j, &cause), -1);
	CU_ASSERT(cause != NULL && strstr(cause, path2) != NULL && strstr(cause, "missing segment") != NULL);
	free(cause);
	CU_ASSERT_FATAL(rename("/tmp/test_journal.seg1", path2) == 0);
	/* repair: segments 1 and 2 are valid, 3 (renamed) and later are dropped */
	jt_seg(dir, 3, path2, sizeof path2);
	spit(path2, p, len);
	o.repair = true;
	CU_ASSERT_FATAL(jt_open(dir, &o, &r, &j, &cause) == 0);
	CU_ASSERT_EQUAL(r.bad, 0);
	/* 2 was sealed when 3 began: appends go to a new 3 */
	CU_ASSERT_EQUAL(count_files(dir, ".seg"), 3);
	CU_ASSERT_EQUAL(count_files(dir, ".seg.dropped"), (int)mk.nsegs - 2);
	journal_free(j);
	free(p);
	free(p3);
	marked_free(&mk);
	model_free(&r);
	jt_rmdir(dir);
}

/* A segment too short for its header; garbage files; a corrupt length in a middle segment. */
static void
test_short_and_junk(void)
{
	struct journal_opts o = jt_opts(4096);
	struct marked mk;
	struct model r;
	struct journal *j;
	char dir[64], path[128], *cause;
	size_t len;
	uint8_t *p;

	jt_mkdir(dir, sizeof dir);
	model_init(&r);
	build_marked(dir, 4096, 100, 300, &mk);
	CU_ASSERT_FATAL(mk.seq < mk.nsegs);
	snprintf(path, sizeof path, "%s/journal/README", dir);
	spit(path, (const uint8_t *)"x", 1);
	snprintf(path, sizeof path, "%s/journal/00000000000000zz.seg", dir);
	spit(path, (const uint8_t *)"x", 1);
	CU_ASSERT_FATAL(jt_open(dir, &o, &r, &j, &cause) == 0);
	CU_ASSERT(model_equal(&mk.all, &r));
	journal_free(j);
	/* a length field gone huge in a middle segment: past the end, but not the tail */
	jt_seg(dir, mk.seq, path, sizeof path);
	p = slurp(path, &len);
	p[mk.off + 2] = 0x7f;
	spit(path, p, len);
	CU_ASSERT_EQUAL(jt_open(dir, &o, &r, &j, &cause), -1);
	CU_ASSERT(cause != NULL && strstr(cause, "runs past the end") != NULL);
	free(cause);
	p[mk.off + 3] = 0x7f;
	spit(path, p, len);
	CU_ASSERT_EQUAL(jt_open(dir, &o, &r, &j, &cause), -1);
	CU_ASSERT(cause != NULL && strstr(cause, "impossible record length") != NULL);
	free(cause);
	/* short header */
	spit(path, p, 10);
	CU_ASSERT_EQUAL(jt_open(dir, &o, &r, &j, &cause), -1);
	CU_ASSERT(cause != NULL && strstr(cause, "short segment header") != NULL);
	free(cause);
	free(p);
	marked_free(&mk);
	model_free(&r);
	jt_rmdir(dir);
}

/*
 * Random damage, a flip or a cut anywhere in any segment: never a crash;
 * either it opens or it says why; with repair it always opens, on a valid
 * prefix (the model sees no call that makes no sense).
 */
static void
test_random_damage(void)
{
	struct journal_opts o = jt_opts(4096);
	struct marked mk;
	struct model r;
	struct journal *j;
	char dir[64], work[64], cmd[256], path[128], *cause;
	uint64_t rng = 99, seq, size, off;
	int opened = 0, refused = 0;

	jt_mkdir(dir, sizeof dir);
	jt_mkdir(work, sizeof work);
	model_init(&r);
	build_marked(dir, 4096, 300, 100, &mk);
	for (int it = 0; it < 100; it++) {
		snprintf(cmd, sizeof cmd, "rm -rf %s/journal", work);
		CU_ASSERT_FATAL(system(cmd) == 0);
		copy_dir(dir, work);
		rng = rng * 6364136223846793005ULL + 1442695040888963407ULL;
		seq = 1 + (rng >> 33) % mk.nsegs;
		jt_seg(work, seq, path, sizeof path);
		size = jt_size(path);
		off = (rng >> 13) % size;
		if (it % 2 == 0) {
			flip(path, off);
		} else {
			CU_ASSERT_FATAL(truncate(path, (off_t)off) == 0);
		}
		o.repair = false;
		if (jt_open(work, &o, &r, &j, &cause) == 0) {
			opened++;
			CU_ASSERT_EQUAL(r.bad, 0);
			journal_free(j);
		} else {
			refused++;
			CU_ASSERT(cause != NULL && strstr(cause, "journal: ") != NULL);
			free(cause);
		}
		o.repair = true;
		CU_ASSERT_FATAL(jt_open(work, &o, &r, &j, &cause) == 0);
		CU_ASSERT_EQUAL(r.bad, 0);
		journal_free(j);
	}
	/* damage to the last segment can be a torn tail; anywhere else it is refused */
	CU_ASSERT(opened > 0 && refused > 0);
	marked_free(&mk);
	model_free(&r);
	jt_rmdir(work);
	jt_rmdir(dir);
}

/* ---- compaction ----------------------------------------------------------------------- */

struct compaction {
	struct journal *snap;
	struct model *m;
};

/* Copy-before-write: a channel about to change goes into the snapshot first, as it was at begin. */
static void
before_change(void *arg, struct mchan *c)
{
	struct compaction *cp = arg;

	if (cp->snap == NULL || !c->pending)
		return;
	snapshot_chan(cp->snap, c);
	c->pending = false;
}

/*
 * 4 channels; many push/pop pairs that leave a few values each: a log far
 * bigger than its state. On the ack channels (b, d) some values are given
 * back and delivered again, so that counts climb past 1, in flight and
 * given back alike.
 */
static void
churn(struct journal *j, struct model *m, int pairs)
{
	static const char *names[] = { "a", "b", "c", "d" };
	uint8_t v[100];

	memset(v, 'x', sizeof v);
	for (int i = 0; i < 4; i++) {
		if (m->c[i].live)
			continue;
		CU_ASSERT_EQUAL(journal_append_declare(j, names[i], 1, 100, (uint32_t)i % 2, "o", 1), 0);
		model_ops.declare(m, names[i], 1, 100, (uint32_t)i % 2, "o", 1);
	}
	for (int k = 0; k < pairs; k++) {
		const char *n = names[k % 4];
		uint64_t tag = (k % 4) % 2 ? (uint64_t)k + 1 : 0;

		v[0] = (uint8_t)k;
		CU_ASSERT_EQUAL(journal_append_push(j, n, 1, v, sizeof v), 0);
		model_ops.push(m, n, 1, v, sizeof v);
		CU_ASSERT_EQUAL(journal_append_push(j, n, 1, v, 50), 0);
		model_ops.push(m, n, 1, v, 50);
		CU_ASSERT_EQUAL(journal_append_pop(j, n, 1, tag), 0);
		model_ops.pop(m, n, 1, tag);
		CU_ASSERT_EQUAL(journal_append_pop(j, n, 1, 0), 0);
		model_ops.pop(m, n, 1, 0);
		if (tag != 0 && k % 3 == 1) {
			CU_ASSERT_EQUAL(journal_append_ack(j, n, 1, tag), 0);
			model_ops.ack(m, n, 1, tag);
		} else if (tag != 0 && k % 9 != 0) {
			/* NACKed: the next tagged pop on this channel delivers it again */
			uint32_t count = 0;

			for (int i = 0; i < M_CHANS; i++)
				if (m->c[i].live && m->c[i].nlen == 1 && m->c[i].name[0] == n[0])
					count = m->c[i].fl[m->c[i].nfl - 1].count;

			CU_ASSERT_EQUAL(journal_append_requeue(j, n, 1, tag, count), 0);
			model_ops.requeue(m, n, 1, tag, count);
		}
		if (k % 16 == 15)
			CU_ASSERT_FATAL(journal_commit(j) == 0);
	}
	CU_ASSERT_FATAL(journal_commit(j) == 0);
}

/* The highest delivery counts of m's values given back (*back) and in flight (*inflight). */
static void
max_counts(const struct model *m, uint32_t *back, uint32_t *inflight)
{
	*back = *inflight = 0;
	for (int i = 0; i < M_CHANS; i++) {
		const struct mchan *c = &m->c[i];

		for (size_t k = 0; c->live && k < c->nback; k++)
			*back = c->q[k].count > *back ? c->q[k].count : *back;
		for (size_t k = 0; c->live && k < c->nfl; k++)
			*inflight = c->fl[k].count > *inflight ? c->fl[k].count : *inflight;
	}
}

/* Open a copy of dir as it is now (a kill -9 image): its state must be want. */
static void
check_image(const char *dir, const struct journal_opts *o, const struct model *want, int *tmp_files)
{
	struct model r;
	struct journal *j;
	char img[64], *cause;

	jt_mkdir(img, sizeof img);
	copy_dir(dir, img);
	*tmp_files = count_files(img, ".tmp");
	model_init(&r);
	CU_ASSERT_FATAL(jt_open(img, o, &r, &j, &cause) == 0);
	CU_ASSERT(model_equal(want, &r));
	CU_ASSERT_EQUAL(count_files(img, ".tmp"), 0);
	journal_free(j);
	model_free(&r);
	jt_rmdir(img);
}

static void
test_compaction(void)
{
	struct journal_opts o = jt_opts(8192);
	struct journal_stats st0, st1, st;
	struct compaction cp = { NULL, NULL };
	struct model m, r;
	struct journal *j, *j2;
	char dir[64], img[64], tmp[160], seg[128], *cause;
	uint64_t rng = 3, n, sseq;
	uint32_t back, inflight;
	int tmps;

	jt_mkdir(dir, sizeof dir);
	model_init(&m);
	model_init(&r);
	o.compact_min_bytes = 32768;
	CU_ASSERT_FATAL(jt_open(dir, &o, &r, &j, &cause) == 0);
	CU_ASSERT(!journal_compact_due(j));
	churn(j, &m, 400);
	journal_set_live_bytes(j, 4 * 1000);
	CU_ASSERT(journal_compact_due(j));
	journal_stats(j, &st0);
	CU_ASSERT(st0.log_bytes > 60000);
	/* the snapshot has counts to keep: values delivered twice or more, in flight and given back */
	max_counts(&m, &back, &inflight);
	CU_ASSERT(back >= 2 && inflight >= 2);

	/* begin: N+1 is the live segment; state as of begin goes to the snapshot, a channel a turn */
	CU_ASSERT_FATAL(journal_compact_begin(j, &cp.snap) == 0);
	CU_ASSERT_EQUAL(journal_compact_begin(j, &j2), EBUSY);
	CU_ASSERT_PTR_NULL(j2);
	CU_ASSERT(!journal_compact_due(j));
	/* kill -9 just after begin: N+1 empty, the .tmp a bare header */
	check_image(dir, &o, &m, &tmps);
	CU_ASSERT_EQUAL(tmps, 1);
	cp.m = &m;
	for (int i = 0; i < M_CHANS; i++)
		m.c[i].pending = m.c[i].live;
	sseq = st0.segments;
	n = 0;
	for (int i = 0; i < M_CHANS; i++) {
		if (!m.c[i].pending)
			continue;
		snapshot_chan(cp.snap, &m.c[i]);
		m.c[i].pending = false;
		CU_ASSERT_FATAL(journal_commit(cp.snap) == 0);
		/* the loop goes on: live records, some on channels not yet in the snapshot */
		for (int k = 0; k < 100; k++)
			workload_step(j, &m, &rng, 6, before_change, &cp);
		CU_ASSERT_FATAL(journal_commit(j) == 0);
		CU_ASSERT_FATAL(journal_commit(cp.snap) == 0);
		/* kill -9 mid-snapshot, after each turn: the .tmp is removed, the old segments hold the state */
		check_image(dir, &o, &m, &tmps);
		CU_ASSERT_EQUAL(tmps, 1);
		n++;
	}
	CU_ASSERT(n >= 4);
	CU_ASSERT_FATAL(journal_commit(cp.snap) == 0);
	/* the live log went on to more segments meanwhile */
	journal_stats(j, &st1);
	CU_ASSERT(st1.segments >= st0.segments + 2);
	CU_ASSERT_EQUAL(st1.log_bytes, seg_bytes(dir));
	/* kill -9 with the snapshot complete, not renamed */
	check_image(dir, &o, &m, &tmps);
	CU_ASSERT_EQUAL(tmps, 1);
	/* kill -9 after the rename, before the old segments are unlinked */
	jt_mkdir(img, sizeof img);
	copy_dir(dir, img);
	snprintf(tmp, sizeof tmp, "%s/journal/%016llx.snap.tmp", img, (unsigned long long)sseq);
	jt_seg(img, sseq, seg, sizeof seg);
	append_seal(tmp, sseq);
	CU_ASSERT_FATAL(rename(tmp, seg) == 0);
	journal_stats(j, &st);
	CU_ASSERT_EQUAL(count_files(img, ".seg"), (int)st.segments);
	CU_ASSERT_FATAL(jt_open(img, &o, &r, &j2, &cause) == 0);
	CU_ASSERT(model_equal(&m, &r));
	/* the snapshot and what followed it; the segments it replaced are gone */
	CU_ASSERT_EQUAL(count_files(img, ".seg"), (int)(st.segments - sseq + 1));
	jt_seg(img, 1, seg, sizeof seg);
	CU_ASSERT_EQUAL(access(seg, F_OK), -1);
	journal_free(j2);
	jt_rmdir(img);

	CU_ASSERT_FATAL(journal_compact_end(j, cp.snap, &cause) == 0);
	cp.snap = NULL;
	journal_stats(j, &st);
	CU_ASSERT_EQUAL(st.compactions, 1);
	/* the snapshot is what replaced the st0.log_bytes of segments <= N */
	CU_ASSERT(st.log_bytes - (st1.log_bytes - st0.log_bytes) < st0.log_bytes / 4);
	CU_ASSERT_EQUAL(count_files(dir, ".seg"), (int)st.segments);
	CU_ASSERT_EQUAL(st.log_bytes, seg_bytes(dir));
	CU_ASSERT(!journal_compact_due(j));
	/* more churn, a second compaction replaces the first snapshot */
	churn(j, &m, 400);
	CU_ASSERT(journal_compact_due(j));
	journal_stats(j, &st1);
	CU_ASSERT_FATAL(journal_compact_begin(j, &cp.snap) == 0);
	for (int i = 0; i < M_CHANS; i++)
		if (m.c[i].live)
			snapshot_chan(cp.snap, &m.c[i]);
	CU_ASSERT_FATAL(journal_compact_end(j, cp.snap, &cause) == 0);
	journal_stats(j, &st);
	CU_ASSERT_EQUAL(st.compactions, 2);
	CU_ASSERT_EQUAL(st.log_bytes, seg_bytes(dir));
	journal_free(j);
	CU_ASSERT_FATAL(jt_open(dir, &o, &r, &j, &cause) == 0);
	CU_ASSERT(model_equal(&m, &r));
	journal_stats(j, &st);
	CU_ASSERT(st.log_bytes < st1.log_bytes / 2);
	CU_ASSERT_EQUAL(st.segments, 2);	/* the snapshot, an empty live segment */
	journal_free(j);
	model_free(&m);
	model_free(&r);
	jt_rmdir(dir);
}

/* Given up halfway, then done again: the log and the state as if the first had never begun. */
static void
test_compaction_abort(void)
{
	struct journal_opts o = jt_opts(8192);
	struct journal_stats st;
	struct model m, r;
	struct journal *j, *snap, *other;
	char dir[64], *cause;
	uint64_t rng = 11;

	jt_mkdir(dir, sizeof dir);
	model_init(&m);
	model_init(&r);
	o.compact_min_bytes = 16384;
	CU_ASSERT_FATAL(jt_open(dir, &o, &r, &j, &cause) == 0);
	churn(j, &m, 200);
	CU_ASSERT_FATAL(journal_compact_begin(j, &snap) == 0);
	/* a snapshot writer does not compact */
	CU_ASSERT_EQUAL(journal_compact_begin(snap, &other), EINVAL);
	CU_ASSERT(!journal_compact_due(snap));
	snapshot_chan(snap, &m.c[0]);
	CU_ASSERT_FATAL(journal_commit(snap) == 0);
	CU_ASSERT_EQUAL(count_files(dir, ".snap.tmp"), 1);
	journal_compact_abort(j, snap);
	CU_ASSERT_EQUAL(count_files(dir, ".snap.tmp"), 0);
	workload(j, &m, &rng, 6, 100, 10);
	CU_ASSERT(journal_compact_due(j));
	CU_ASSERT_FATAL(journal_compact_begin(j, &snap) == 0);
	for (int i = 0; i < M_CHANS; i++)
		if (m.c[i].live)
			snapshot_chan(snap, &m.c[i]);
	CU_ASSERT_FATAL(journal_compact_end(j, snap, &cause) == 0);
	journal_stats(j, &st);
	CU_ASSERT_EQUAL(st.compactions, 1);
	CU_ASSERT_EQUAL(st.log_bytes, seg_bytes(dir));
	journal_free(j);
	CU_ASSERT_FATAL(jt_open(dir, &o, &r, &j, &cause) == 0);
	CU_ASSERT(model_equal(&m, &r));
	journal_free(j);
	model_free(&m);
	model_free(&r);
	jt_rmdir(dir);
}

void
register_journal_crash(void)
{
	CU_pSuite s;

	s = test_suite("journal.torn", NULL, NULL);
	test_add(s, "torn tail at every byte of the last record", test_torn_tail_every_offset);
	s = test_suite("journal.corrupt", NULL, NULL);
	test_add(s, "bit flip before the tail: refused, repaired", test_bit_flip_middle);
	test_add(s, "bit flip in the last segment, bad record with a good CRC", test_bit_flip_last_segment);
	test_add(s, "missing, renamed and bad segments", test_missing_and_bad_segments);
	test_add(s, "short header, junk files, a huge length", test_short_and_junk);
	test_add(s, "random flips and cuts: open, refuse or repair", test_random_damage);
	s = test_suite("journal.compact", NULL, NULL);
	test_add(s, "compaction and its kill -9 images", test_compaction);
	test_add(s, "compaction given up, then done", test_compaction_abort);
}
