/*
 * fuzz_journal.c: libFuzzer harness for the journal's replay
 * (server/journal_replay.c: record framing, CRCs, each record type's
 * payload, SEAL, torn tails and --repair). See tests/fuzz/README.md.
 *
 * An input is one mode byte and the records of segment 1, which gets a
 * good header. Mode bit 0: the harness recomputes the CRC of every record
 * that fits (else a mutated record almost never passes its CRC and the
 * payload checks go unfuzzed); bit 1: open with repair.
 *
 * Checks: open returns 0 without a cause or -1 with one naming the
 * segment; repair always opens. Each record replayed is appended again,
 * through journal_append_*, to a second journal: its bytes must be exactly
 * the records the replay kept (the segment as open left it, less a last
 * SEAL), so that no record is misread, skipped or half-applied. A second
 * open of what the first left replays the same records and cuts nothing.
 *
 * SPDX-License-Identifier: BSD-2-Clause
 */
#include <dirent.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "crc32c.h"
#include "log.h"
#include "journal_int.h"

#define CHECK(cond) do { if (!(cond)) __builtin_trap(); } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct journal *again;	/* the records replayed, appended once more */
static size_t in_size;		/* no blob can be longer than the input */

static void
check_name(const char *name, size_t len)
{
	CHECK(name != NULL && len >= 1 && len <= JOURNAL_NAME_MAX);
}

static void
f_declare(void *arg, const char *name, size_t len, uint32_t cap, uint32_t flags, const void *opts,
    size_t opts_len)
{
	check_name(name, len);
	CHECK(opts_len <= in_size);
	CHECK(journal_append_declare(again, name, len, cap, flags, opts, opts_len) == 0);
}

static void
f_push(void *arg, const char *name, size_t len, const void *value, size_t value_len)
{
	check_name(name, len);
	CHECK(value_len <= in_size);
	CHECK(journal_append_push(again, name, len, value, value_len) == 0);
}

static void
f_pop(void *arg, const char *name, size_t len, uint64_t tag)
{
	check_name(name, len);
	CHECK(journal_append_pop(again, name, len, tag) == 0);
}

static void
f_ack(void *arg, const char *name, size_t len, uint64_t tag)
{
	check_name(name, len);
	CHECK(journal_append_ack(again, name, len, tag) == 0);
}

static void
f_close(void *arg, const char *name, size_t len, uint32_t code, const char *msg, size_t msg_len)
{
	check_name(name, len);
	CHECK(msg_len <= in_size);
	CHECK(journal_append_close(again, name, len, code, msg, msg_len) == 0);
}

static void
f_delete(void *arg, const char *name, size_t len)
{
	check_name(name, len);
	CHECK(journal_append_delete(again, name, len) == 0);
}

static void
f_push_counted(void *arg, const char *name, size_t len, uint32_t count, const void *value,
    size_t value_len)
{
	check_name(name, len);
	CHECK(value_len <= in_size);
	CHECK(journal_append_push_counted(again, name, len, count, value, value_len) == 0);
}

static void
f_requeue(void *arg, const char *name, size_t len, uint64_t tag, uint32_t count)
{
	check_name(name, len);
	CHECK(journal_append_requeue(again, name, len, tag, count) == 0);
}

static const struct journal_ops ops = {
	f_declare, f_push, f_pop, f_ack, f_close, f_delete, f_push_counted, f_requeue,
};

static uint8_t *
slurp(const char *path, size_t *len)
{
	struct stat sb;
	uint8_t *p;
	int fd = open(path, O_RDONLY);

	CHECK(fd >= 0 && fstat(fd, &sb) == 0);
	*len = (size_t)sb.st_size;
	CHECK((p = malloc(*len + 1)) != NULL);
	CHECK(pread(fd, p, *len, 0) == (ssize_t)*len);
	close(fd);
	return p;
}

static void
spit(const char *path, const uint8_t *p, size_t len)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);

	CHECK(fd >= 0 && write(fd, p, len) == (ssize_t)len);
	close(fd);
}

/* Remove DIR/journal and its files (no fork: thousands of inputs a second). */
static void
clear(const char *dir)
{
	char path[128];
	struct dirent *de;
	DIR *d;

	snprintf(path, sizeof path, "%s/journal", dir);
	if ((d = opendir(path)) == NULL)
		return;
	while ((de = readdir(d)) != NULL)
		if (de->d_name[0] != '.')
			CHECK(unlinkat(dirfd(d), de->d_name, 0) == 0);
	closedir(d);
	CHECK(rmdir(path) == 0);
}

/* Recompute the CRC of every whole record (framing as docs/JOURNAL.md). */
static void
fix_crcs(uint8_t *p, size_t len)
{
	size_t off = JOURNAL_HDR;

	while (len - off >= JOURNAL_REC_HDR) {
		uint32_t plen = jget32(p + off);

		if (plen > len - off - JOURNAL_REC_HDR)
			return;
		jput32(p + off + 5, crc32c_extend(crc32c(p + off, 5), p + off + JOURNAL_REC_HDR, plen));
		off += JOURNAL_REC_HDR + plen;
	}
}

/* Do the records kept (all good: replay said so) end with a SEAL? */
static bool
last_is_seal(const uint8_t *p, size_t len)
{
	size_t off = JOURNAL_HDR, last = 0;

	while (off < len) {
		last = off;
		off += JOURNAL_REC_HDR + jget32(p + off);
	}
	CHECK(off == len);
	return last != 0 && p[last + 4] == JREC_SEAL;
}

/* Open dir; the appended-again journal in dir2. Returns open's result; *cause freed. */
static int
open_both(const char *dir, const char *dir2, bool repair, struct journal_stats *st)
{
	struct journal_opts o, o2;
	struct journal *j;
	char *cause = NULL;
	int rc;

	journal_opts_init(&o);
	o.fsync = JOURNAL_FSYNC_NO;
	o.repair = repair;
	o2 = o;
	o2.repair = false;
	clear(dir2);
	CHECK(journal_open(dir2, &o2, NULL, NULL, &again, &cause) == 0);
	rc = journal_open(dir, &o, &ops, NULL, &j, &cause);
	CHECK(rc == 0 || rc == -1);
	CHECK((rc == 0) == (cause == NULL));
	CHECK(rc == 0 || strstr(cause, "journal: ") == cause);
	CHECK(rc == 0 || !repair);
	if (rc == 0) {
		journal_stats(j, st);
		journal_free(j);
	}
	CHECK(journal_commit(again) == 0);
	journal_free(again);
	again = NULL;
	free(cause);
	return rc;
}

static char dir[] = "/dev/shm/fuzz_journal.XXXXXX", dir2[64];

/* At exit: nothing left in /dev/shm. */
static void
remove_dirs(void)
{
	clear(dir2);
	clear(dir);
	rmdir(dir2);
	rmdir(dir);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct journal_stats st, st2;
	char seg[128], seg2[128];
	uint8_t *in, *kept, *redo;
	size_t len, klen, rlen;
	bool repair;

	if (size < 1 || size > (1 << 20))
		return 0;
	if (dir2[0] == '\0') {
		CHECK(mkdtemp(dir) != NULL);
		snprintf(dir2, sizeof dir2, "%s/again", dir);
		CHECK(mkdir(dir2, 0700) == 0);
		atexit(remove_dirs);
		log_set_level(LOG_LEVEL_ERROR);
	}
	repair = data[0] & 2;
	len = JOURNAL_HDR + size - 1;
	in_size = size;
	CHECK((in = malloc(len)) != NULL);
	journal_header(in, 1, 0);
	memcpy(in + JOURNAL_HDR, data + 1, size - 1);
	if (data[0] & 1)
		fix_crcs(in, len);
	clear(dir);
	snprintf(seg, sizeof seg, "%s/journal", dir);
	CHECK(mkdir(seg, 0700) == 0);
	snprintf(seg, sizeof seg, "%s/journal/%016llx.seg", dir, 1ULL);
	snprintf(seg2, sizeof seg2, "%s/journal/%016llx.seg", dir2, 1ULL);
	spit(seg, in, len);
	if (open_both(dir, dir2, repair, &st) == 0) {
		/* what replay kept, appended again, is byte for byte what is left of the segment */
		kept = slurp(seg, &klen);
		redo = slurp(seg2, &rlen);
		CHECK(klen >= JOURNAL_HDR && klen <= len && memcmp(kept, in, klen) == 0);
		CHECK(st.truncated_bytes == len - klen);
		if (last_is_seal(kept, klen))
			klen -= JOURNAL_SEAL_BYTES;
		CHECK(rlen == klen && memcmp(kept + JOURNAL_HDR, redo + JOURNAL_HDR, klen - JOURNAL_HDR) == 0);
		free(kept);
		free(redo);
		/* opening what it left changes nothing */
		CHECK(open_both(dir, dir2, false, &st2) == 0);
		CHECK(st2.replayed_records == st.replayed_records && st2.truncated_bytes == 0);
	}
	free(in);
	return 0;
}
