/*
 * test_journal.c: the journal of durable channels (server/journal*.c) and
 * CRC-32C, against real files in a temp dir under /tmp. A model of the
 * channels, kept beside the journal by the same calls, is what each replay
 * must rebuild.
 *
 * This file holds CRC-32C, round trips, group commit, everysec, disk full
 * and recovery speed; torn tails, corruption, missing segments and
 * compaction with its crash points are in test_journal_crash.c; the
 * records of ack channels in test_journal_ack.c; the model, the workload,
 * the file helpers and the temp dirs in journaltest.c.
 *
 * SPDX-License-Identifier: BSD-2-Clause
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <unistd.h>

#include "testutil.h"
#include "clock.h"
#include "crc32c.h"
#include "journaltest.h"

/* ---- CRC-32C ----------------------------------------------------------------------- */

static void
test_crc32c(void)
{
	uint8_t zeros[32] = { 0 }, ones[32];

	memset(ones, 0xff, sizeof ones);
	CU_ASSERT_EQUAL(crc32c("123456789", 9), 0xE3069283);
	CU_ASSERT_EQUAL(crc32c("", 0), 0);
	/* RFC 3720 (iSCSI) B.4 vectors */
	CU_ASSERT_EQUAL(crc32c(zeros, sizeof zeros), 0x8A9136AA);
	CU_ASSERT_EQUAL(crc32c(ones, sizeof ones), 0x62A8AB43);
	CU_ASSERT_EQUAL(crc32c_extend(crc32c("1234", 4), "56789", 5), 0xE3069283);
	CU_ASSERT_EQUAL(crc32c_extend(0, "123456789", 9), 0xE3069283);
	/* split off the 8-byte words the SSE4.2 path takes, from an odd address */
	CU_ASSERT_EQUAL(crc32c_extend(crc32c(zeros, 3), zeros + 3, 29), 0x8A9136AA);
}

/* ---- round trips -------------------------------------------------------------------- */

static void
test_round_trip(void)
{
	struct journal_opts o = jt_opts(2048);
	struct model m, r;
	struct journal *j;
	struct journal_stats st;
	uint64_t rng = 42;
	char dir[64], *cause;

	jt_mkdir(dir, sizeof dir);
	model_init(&m);
	model_init(&r);
	CU_ASSERT_FATAL(jt_open(dir, &o, &r, &j, &cause) == 0);
	CU_ASSERT_EQUAL(r.bad, 0);
	CU_ASSERT_EQUAL(model_values(&r), 0);
	for (int round = 0; round < 4; round++) {
		workload(j, &m, &rng, 6, 500, 7);
		journal_free(j);
		CU_ASSERT_FATAL(jt_open(dir, &o, &r, &j, &cause) == 0);
		CU_ASSERT(model_equal(&m, &r));
	}
	journal_stats(j, &st);
	/* about 2,000 records of ~60 bytes in 2 KiB segments */
	CU_ASSERT(st.segments > 10);
	CU_ASSERT(st.replayed_records > 1000);
	CU_ASSERT_EQUAL(st.truncated_bytes, 0);
	CU_ASSERT(model_values(&m) > 0);
	journal_free(j);
	model_free(&m);
	model_free(&r);
	jt_rmdir(dir);
}

/* Records not committed are not in the log; bad names are refused; all six record kinds replay. */
static void
test_uncommitted_and_names(void)
{
	struct journal_opts o = jt_opts(0);
	char dir[64], *cause, long_name[300], *big;
	struct model m, r;
	struct journal *j;

	jt_mkdir(dir, sizeof dir);
	model_init(&m);
	model_init(&r);
	memset(long_name, 'x', sizeof long_name);
	CU_ASSERT_FATAL(jt_open(dir, &o, &r, &j, &cause) == 0);
	CU_ASSERT_EQUAL(journal_append_push(j, long_name, 256, "v", 1), EINVAL);
	CU_ASSERT_EQUAL(journal_append_push(j, "", 0, "v", 1), EINVAL);
	CU_ASSERT_EQUAL(journal_append_declare(j, long_name, 255, 3, 1, "", 0), 0);
	model_ops.declare(&m, long_name, 255, 3, 1, "", 0);
	CU_ASSERT_EQUAL(journal_append_declare(j, "gone", 4, 1, 0, "o", 1), 0);
	model_ops.declare(&m, "gone", 4, 1, 0, "o", 1);
	CU_ASSERT_EQUAL(journal_append_push(j, long_name, 255, "", 0), 0);
	model_ops.push(&m, long_name, 255, "", 0);
	CU_ASSERT_EQUAL(journal_append_push(j, long_name, 255, "\xc4\x01z", 3), 0);
	model_ops.push(&m, long_name, 255, "\xc4\x01z", 3);
	CU_ASSERT_EQUAL(journal_append_pop(j, long_name, 255, 99), 0);
	model_ops.pop(&m, long_name, 255, 99);
	CU_ASSERT_EQUAL(journal_append_close(j, long_name, 255, 3, "why", 3), 0);
	model_ops.close(&m, long_name, 255, 3, "why", 3);
	CU_ASSERT_EQUAL(journal_append_delete(j, "gone", 4), 0);
	model_ops.delete(&m, "gone", 4);
	CU_ASSERT_FATAL(journal_commit(j) == 0);
	/* appended, never committed: lost by design */
	CU_ASSERT_EQUAL(journal_append_ack(j, long_name, 255, 99), 0);
	journal_free(j);
	CU_ASSERT_FATAL(jt_open(dir, &o, &r, &j, &cause) == 0);
	CU_ASSERT(model_equal(&m, &r));
	CU_ASSERT_EQUAL(r.c[0].nfl, 1);
	CU_ASSERT_EQUAL(r.c[0].nq, 1);
	/* and now the ack, then a discarded append */
	CU_ASSERT_EQUAL(journal_append_ack(j, long_name, 255, 99), 0);
	model_ops.ack(&m, long_name, 255, 99);
	CU_ASSERT_FATAL(journal_commit(j) == 0);
	CU_ASSERT_EQUAL(journal_append_push(j, long_name, 255, "x", 1), 0);
	journal_discard(j);
	CU_ASSERT_FATAL(journal_commit(j) == 0);
	journal_free(j);
	CU_ASSERT_FATAL(jt_open(dir, &o, &r, &j, &cause) == 0);
	CU_ASSERT(model_equal(&m, &r));
	CU_ASSERT_EQUAL(r.c[0].nfl, 0);
	journal_free(j);
	model_free(&m);
	model_free(&r);
	jt_rmdir(dir);
	/* a data directory that is not there, or too long a path */
	CU_ASSERT_EQUAL(journal_open("/nonexistent/chand", NULL, NULL, NULL, &j, &cause), -1);
	CU_ASSERT_PTR_NULL(j);
	CU_ASSERT(cause != NULL && strstr(cause, "/nonexistent/chand/journal: No such file") != NULL);
	free(cause);
	big = malloc(5000);
	CU_ASSERT_FATAL(big != NULL);
	memset(big, 'd', 4999);
	big[0] = '/';
	big[4999] = '\0';
	CU_ASSERT_EQUAL(journal_open(big, NULL, NULL, NULL, &j, &cause), -1);
	CU_ASSERT(cause != NULL && strstr(cause, "longer than") != NULL);
	free(cause);
	free(big);
}

/* ---- group commit and fsync policies -------------------------------------------------- */

static void
test_group_commit(void)
{
	struct journal_opts o = jt_opts(0);
	struct journal_stats st0, st;
	struct model r;
	struct journal *j;
	char dir[64], *cause;

	jt_mkdir(dir, sizeof dir);
	model_init(&r);
	CU_ASSERT_FATAL(jt_open(dir, &o, &r, &j, &cause) == 0);
	journal_stats(j, &st0);
	CU_ASSERT_EQUAL(journal_append_declare(j, "q", 1, 10, 0, NULL, 0), 0);
	for (int i = 0; i < 100; i++)
		CU_ASSERT_EQUAL(journal_append_push(j, "q", 1, "value", 5), 0);
	journal_stats(j, &st);
	CU_ASSERT_EQUAL(st.writes, st0.writes);
	CU_ASSERT(st.pending_bytes > 100 * 5);
	CU_ASSERT_FATAL(journal_commit(j) == 0);
	journal_stats(j, &st);
	CU_ASSERT_EQUAL(st.writes - st0.writes, 1);
	CU_ASSERT_EQUAL(st.syncs - st0.syncs, 1);
	CU_ASSERT_EQUAL(st.pending_bytes, 0);
	CU_ASSERT_EQUAL(st.bytes_written, st.log_bytes - 28);
	CU_ASSERT(st.last_sync_ns > 0 && st.max_sync_ns >= st.last_sync_ns);
	/* nothing buffered: no write, no sync */
	CU_ASSERT_FATAL(journal_commit(j) == 0);
	journal_stats(j, &st0);
	CU_ASSERT_EQUAL(st0.writes, st.writes);
	CU_ASSERT_EQUAL(st0.syncs, st.syncs);
	journal_free(j);
	/* policy no: writes, never syncs */
	o.fsync = JOURNAL_FSYNC_NO;
	CU_ASSERT_FATAL(jt_open(dir, &o, &r, &j, &cause) == 0);
	CU_ASSERT_EQUAL(model_values(&r), 100);
	CU_ASSERT_EQUAL(journal_append_pop(j, "q", 1, 0), 0);
	CU_ASSERT_FATAL(journal_commit(j) == 0);
	CU_ASSERT_EQUAL(journal_tick(j, 5 * NSEC_PER_SEC), 0);
	journal_stats(j, &st);
	CU_ASSERT_EQUAL(st.writes, 1);
	CU_ASSERT_EQUAL(st.syncs, 0);
	journal_free(j);
	model_free(&r);
	jt_rmdir(dir);
}

static void
test_everysec(void)
{
	struct journal_opts o = jt_opts(0);
	struct journal_stats st;
	struct model r;
	struct journal *j;
	char dir[64], *cause;
	int64_t t = 1000 * NSEC_PER_SEC;

	jt_mkdir(dir, sizeof dir);
	model_init(&r);
	o.fsync = JOURNAL_FSYNC_EVERYSEC;
	CU_ASSERT_FATAL(jt_open(dir, &o, &r, &j, &cause) == 0);
	CU_ASSERT_EQUAL(journal_append_declare(j, "q", 1, 10, 0, NULL, 0), 0);
	/* nothing written yet: a tick has nothing to sync */
	CU_ASSERT_EQUAL(journal_tick(j, t), 0);
	journal_stats(j, &st);
	CU_ASSERT_EQUAL(st.syncs, 0);
	CU_ASSERT_FATAL(journal_commit(j) == 0);
	journal_stats(j, &st);
	CU_ASSERT_EQUAL(st.writes, 1);
	CU_ASSERT_EQUAL(st.syncs, 0);
	/* 10 commits and ticks a 100 ms apart over 3 s of the given clock: one sync per second */
	for (int i = 0; i < 30; i++) {
		CU_ASSERT_EQUAL(journal_append_push(j, "q", 1, "v", 1), 0);
		CU_ASSERT_FATAL(journal_commit(j) == 0);
		CU_ASSERT_EQUAL(journal_tick(j, t + i * 100 * NSEC_PER_MSEC), 0);
	}
	journal_stats(j, &st);
	CU_ASSERT_EQUAL(st.writes, 31);
	CU_ASSERT_EQUAL(st.syncs, 3);	/* at t, t+1 s, t+2 s */
	/* nothing new written: later ticks do not sync */
	CU_ASSERT_EQUAL(journal_tick(j, t + 10 * NSEC_PER_SEC), 0);
	journal_stats(j, &st);
	CU_ASSERT_EQUAL(st.syncs, 4);	/* the writes after t+2 s */
	CU_ASSERT_EQUAL(journal_tick(j, t + 20 * NSEC_PER_SEC), 0);
	journal_stats(j, &st);
	CU_ASSERT_EQUAL(st.syncs, 4);
	/* a clean shutdown syncs whatever the policy */
	CU_ASSERT_EQUAL(journal_append_push(j, "q", 1, "v", 1), 0);
	CU_ASSERT_EQUAL(journal_flush(j), 0);
	journal_stats(j, &st);
	CU_ASSERT_EQUAL(st.syncs, 5);
	CU_ASSERT_EQUAL(st.pending_bytes, 0);
	CU_ASSERT_EQUAL(journal_flush(j), 0);
	journal_stats(j, &st);
	CU_ASSERT_EQUAL(st.syncs, 5);
	journal_free(j);
	model_free(&r);
	jt_rmdir(dir);
}

/* ---- disk full ------------------------------------------------------------------------------ */

/* Fill the rest of the file system with DIR/fill. */
static void
fill_fs(const char *dir)
{
	char path[128], block[4096];
	int fd;

	snprintf(path, sizeof path, "%s/fill", dir);
	fd = open(path, O_WRONLY | O_CREAT | O_APPEND, 0600);
	CU_ASSERT_FATAL(fd >= 0);
	memset(block, 'f', sizeof block);
	while (write(fd, block, sizeof block) > 0)
		;
	close(fd);
}

static void
test_enospc(void)
{
	struct journal_opts o = jt_opts(0);
	struct journal_stats st;
	struct model m, r;
	struct journal *j;
	char dir[64], fill[128], seg[128], *cause;
	struct journal *snap;
	uint8_t big[4096];
	uint64_t before;
	int err = 0, n;

	jt_mkdir(dir, sizeof dir);
	if (mount("tmpfs", dir, "tmpfs", 0, "size=256k") != 0) {
		printf("\n  skipped: cannot mount a 256 KiB tmpfs on %s: %s\n", dir, strerror(errno));
		jt_rmdir(dir);
		return;
	}
	model_init(&m);
	model_init(&r);
	CU_ASSERT_FATAL(jt_open(dir, &o, &r, &j, &cause) == 0);
	CU_ASSERT_EQUAL(journal_append_declare(j, "q", 1, 1000, 0, NULL, 0), 0);
	model_ops.declare(&m, "q", 1, 1000, 0, NULL, 0);
	CU_ASSERT_FATAL(journal_commit(j) == 0);
	fill_fs(dir);
	memset(big, 'f', sizeof big);
	for (n = 0; n < 20 && err == 0; n++) {
		CU_ASSERT_EQUAL(journal_append_push(j, "q", 1, big, 1000), 0);
		if ((err = journal_commit(j)) == 0)
			model_ops.push(&m, "q", 1, big, 1000);
	}
	CU_ASSERT_EQUAL(err, ENOSPC);
	journal_stats(j, &st);
	CU_ASSERT(st.errors >= 1);
	before = st.log_bytes;
	/* the failed records stay buffered; the segment was cut back to the last good offset */
	CU_ASSERT(st.pending_bytes > 1000);
	jt_seg(dir, 1, seg, sizeof seg);
	CU_ASSERT_EQUAL(jt_size(seg), before);
	CU_ASSERT_EQUAL(journal_commit(j), ENOSPC);
	CU_ASSERT_EQUAL(jt_size(seg), before);
	/* space returns: the same records are written, once */
	snprintf(fill, sizeof fill, "%s/fill", dir);
	CU_ASSERT_FATAL(unlink(fill) == 0);
	CU_ASSERT_EQUAL(journal_commit(j), 0);
	model_ops.push(&m, "q", 1, big, 1000);
	CU_ASSERT_EQUAL(journal_append_push(j, "q", 1, big, 10), 0);
	CU_ASSERT_EQUAL(journal_commit(j), 0);
	model_ops.push(&m, "q", 1, big, 10);
	journal_free(j);
	CU_ASSERT_FATAL(jt_open(dir, &o, &r, &j, &cause) == 0);
	CU_ASSERT(model_equal(&m, &r));
	CU_ASSERT_EQUAL(r.c[0].nq, (size_t)n + 1);
	journal_stats(j, &st);
	CU_ASSERT_EQUAL(st.truncated_bytes, 0);
	/* a compaction whose snapshot cannot be written: given up, the log as it was */
	CU_ASSERT_FATAL(journal_compact_begin(j, &snap) == 0);
	fill_fs(dir);
	for (size_t i = 0; i < M_CHANS; i++)
		if (m.c[i].live)
			snapshot_chan(snap, &m.c[i]);
	CU_ASSERT_EQUAL(journal_compact_end(j, snap, &cause), -1);
	CU_ASSERT(cause != NULL && strstr(cause, ".snap.tmp: write: No space left on device") != NULL);
	free(cause);
	CU_ASSERT_EQUAL(unlink(fill), 0);
	CU_ASSERT_EQUAL(journal_append_pop(j, "q", 1, 0), 0);
	CU_ASSERT_EQUAL(journal_commit(j), 0);
	model_ops.pop(&m, "q", 1, 0);
	journal_free(j);
	CU_ASSERT_FATAL(jt_open(dir, &o, &r, &j, &cause) == 0);
	CU_ASSERT(model_equal(&m, &r));
	journal_stats(j, &st);
	CU_ASSERT_EQUAL(st.compactions, 0);
	journal_free(j);
	model_free(&m);
	model_free(&r);
	CU_ASSERT(umount(dir) == 0);
	jt_rmdir(dir);
}

/* ---- recovery speed ----------------------------------------------------------------------------- */

static void
test_recovery_speed(void)
{
	struct journal_opts o = jt_opts(0);
	struct journal_stats st;
	struct model r;
	struct journal *j;
	char dir[64], *cause, name[16];
	uint8_t v[64];
	int64_t t0, dt;
	size_t npop = 0;

	jt_mkdir(dir, sizeof dir);
	model_init(&r);
	o.fsync = JOURNAL_FSYNC_NO;
	CU_ASSERT_FATAL(jt_open(dir, &o, &r, &j, &cause) == 0);
	memset(v, 'v', sizeof v);
	for (int c = 0; c < 10; c++) {
		snprintf(name, sizeof name, "chan.%d", c);
		CU_ASSERT_EQUAL(journal_append_declare(j, name, strlen(name), 1 << 20, 0, NULL, 0), 0);
	}
	/* 200,000 records: pushes, and a pop for every fourth */
	for (int i = 0; i < 200000; i++) {
		snprintf(name, sizeof name, "chan.%d", i % 10);
		if (i % 4 == 3 && i >= 40) {
			CU_ASSERT_EQUAL(journal_append_pop(j, name, strlen(name), 0), 0);
			npop++;
		} else {
			CU_ASSERT_EQUAL(journal_append_push(j, name, strlen(name), v, sizeof v), 0);
		}
		if (i % 1000 == 999)
			CU_ASSERT_FATAL(journal_commit(j) == 0);
	}
	journal_free(j);
	t0 = clock_now_ns();
	CU_ASSERT_FATAL(jt_open(dir, &o, &r, &j, &cause) == 0);
	dt = clock_now_ns() - t0;
	journal_stats(j, &st);
	CU_ASSERT_EQUAL(st.replayed_records, 200010);
	CU_ASSERT_EQUAL(r.bad, 0);
	CU_ASSERT_EQUAL(model_values(&r), 200000 - 2 * npop);
	printf("\n  replayed %llu records, %.1f MB in %.1f ms: %.0f MB/s\n",
	    (unsigned long long)st.replayed_records, st.replayed_bytes / 1e6, dt / 1e6,
	    st.replayed_bytes / 1e6 / (dt / 1e9));
	journal_free(j);
	model_free(&r);
	jt_rmdir(dir);
}

static void
register_suites(void)
{
	CU_pSuite s;

	s = test_suite("crc32c", NULL, NULL);
	test_add(s, "check value and RFC 3720 vectors, extend", test_crc32c);
	s = test_suite("journal.records", NULL, NULL);
	test_add(s, "round trip over many segments", test_round_trip);
	test_add(s, "uncommitted, discarded, every record kind, names", test_uncommitted_and_names);
	s = test_suite("journal.commit", NULL, NULL);
	test_add(s, "group commit: one write, one fdatasync", test_group_commit);
	test_add(s, "everysec: the caller's clock, once a second", test_everysec);
	test_add(s, "disk full: ENOSPC, consistent, recovers", test_enospc);
	register_journal_crash();
	register_journal_ack();
	s = test_suite("journal.speed", NULL, NULL);
	test_add(s, "recovery speed (printed)", test_recovery_speed);
}

int
main(int argc, char **argv)
{
	return test_main(argc, argv, register_suites);
}
