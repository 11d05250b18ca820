/*
 * journal.c: records, segment files and group commit. Open and replay are
 * in journal_replay.c, compaction in journal_compact.c.
 *
 * SPDX-License-Identifier: BSD-2-Clause
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "clock.h"
#include "crc32c.h"
#include "log.h"
#include "journal_int.h"

#define JOURNAL_BUF_MIN	4096

void
journal_opts_init(struct journal_opts *o)
{
	memset(o, 0, sizeof *o);
	o->fsync = JOURNAL_FSYNC_ALWAYS;
	o->segment_bytes = JOURNAL_SEGMENT_BYTES;
	o->compact_min_bytes = JOURNAL_COMPACT_MIN;
}

void
journal_path(const struct journal *j, uint64_t seq, const char *suffix, char *buf, size_t cap)
{
	snprintf(buf, cap, "%s/%016llx%s", j->dir, (unsigned long long)seq, suffix);
}

void
journal_header(uint8_t *hdr, uint64_t seq, uint32_t flags)
{
	memcpy(hdr, JOURNAL_MAGIC, 8);
	jput32(hdr + 8, JOURNAL_VERSION);
	jput32(hdr + 12, flags);
	jput64(hdr + 16, seq);
	jput32(hdr + 24, crc32c(hdr, 24));
}

/* All of buf at offset off; a short write goes on until an error. 0 or an errno. */
static int
pwrite_all(int fd, const uint8_t *buf, size_t len, uint64_t off)
{
	while (len > 0) {
		ssize_t n = pwrite(fd, buf, len, (off_t)off);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return errno;
		}
		buf += n;
		len -= (size_t)n;
		off += (uint64_t)n;
	}
	return 0;
}

int
journal_create_file(const char *path, uint64_t seq, uint32_t flags, int *fd)
{
	uint8_t hdr[JOURNAL_HDR];
	int err;

	*fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (*fd < 0)
		return errno;
	journal_header(hdr, seq, flags);
	if ((err = pwrite_all(*fd, hdr, sizeof hdr, 0)) != 0)
		goto fail;
	return 0;
fail:
	close(*fd);
	unlink(path);
	*fd = -1;
	return err;
}

int
journal_sync_dir(const struct journal *j)
{
	int fd = open(j->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	int err = 0;

	if (fd < 0)
		return errno;
	if (fsync(fd) != 0)
		err = errno;
	close(fd);
	return err;
}

int
journal_create_segment(struct journal *j, uint64_t seq, int *fd)
{
	char tmp[4096], path[4096];
	int err;

	journal_path(j, seq, ".seg.tmp", tmp, sizeof tmp);
	journal_path(j, seq, ".seg", path, sizeof path);
	unlink(tmp);
	if ((err = journal_create_file(tmp, seq, 0, fd)) != 0)
		return err;
	/* the header is on disk before the name is: every .seg has a whole header */
	if (fsync(*fd) != 0 || rename(tmp, path) != 0) {
		err = errno;
		goto fail;
	}
	if ((err = journal_sync_dir(j)) != 0)
		goto fail_renamed;
	return 0;
fail_renamed:
	unlink(path);
	goto out;
fail:
	unlink(tmp);
out:
	close(*fd);
	*fd = -1;
	return err;
}

int
journal_sync(struct journal *j)
{
	int64_t t0 = clock_now_ns(), dt;

	if (fdatasync(j->fd) != 0)
		return errno;
	dt = clock_now_ns() - t0;
	j->st.syncs++;
	j->st.last_sync_ns = (uint64_t)dt;
	if ((uint64_t)dt > j->st.max_sync_ns)
		j->st.max_sync_ns = (uint64_t)dt;
	j->dirty = false;
	return 0;
}

int
journal_seal(struct journal *j)
{
	uint8_t rec[JOURNAL_SEAL_BYTES];
	int err;

	jput32(rec, 8);
	rec[4] = JREC_SEAL;
	jput64(rec + JOURNAL_REC_HDR, j->seq);
	jput32(rec + 5, crc32c_extend(crc32c(rec, 5), rec + JOURNAL_REC_HDR, 8));
	if ((err = pwrite_all(j->fd, rec, sizeof rec, j->off)) != 0)
		return err;
	j->off += sizeof rec;
	j->st.bytes_written += sizeof rec;
	j->dirty = true;
	return 0;
}

int
journal_roll(struct journal *j)
{
	uint64_t off = j->off;
	int fd, err;

	/* sealed, so that a segment cut short at a record boundary is seen */
	if ((err = journal_seal(j)) != 0)
		goto fail;
	/* N must be whole on disk before N+1 exists, or a crash would leave a hole before the tail */
	if ((err = journal_sync(j)) != 0 || (err = journal_create_segment(j, j->seq + 1, &fd)) != 0)
		goto fail;
	close(j->fd);
	j->fd = fd;
	j->older_bytes += j->off;
	j->seq++;
	j->off = JOURNAL_HDR;
	j->st.segments++;
	return 0;
fail:
	/* no seal without a next segment */
	j->st.bytes_written -= j->off - off;
	j->off = off;
	journal_truncate_back(j);
	return err;
}

/* ---- records ----------------------------------------------------------------- */

static int
buf_reserve(struct journal *j, size_t more)
{
	size_t cap = j->cap ? j->cap : JOURNAL_BUF_MIN;
	uint8_t *p;

	if (more <= j->cap - j->len)
		return 0;
	while (cap - j->len < more) {
		if (cap > SIZE_MAX / 2)
			return ENOMEM;
		cap *= 2;
	}
	if ((p = realloc(j->buf, cap)) == NULL)
		return ENOMEM;
	j->buf = p;
	j->cap = cap;
	return 0;
}

/*
 * One record: [len][type][crc] then the payload: u16 name length, the
 * name, fixed (a record type's numbers), and blob (the rest).
 */
static int
append(struct journal *j, enum journal_type type, const char *name, size_t nlen,
    const uint8_t *fixed, size_t flen, const void *blob, size_t blen)
{
	size_t plen = 2 + nlen + flen + blen;
	uint8_t *p;
	int err;

	if (nlen == 0 || nlen > JOURNAL_NAME_MAX || blen > JOURNAL_MAX_RECORD - 2 - nlen - flen)
		return EINVAL;
	if ((err = buf_reserve(j, JOURNAL_REC_HDR + plen)) != 0)
		return err;
	p = j->buf + j->len;
	jput32(p, (uint32_t)plen);
	p[4] = (uint8_t)type;
	p[9] = (uint8_t)nlen;
	p[10] = (uint8_t)(nlen >> 8);
	memcpy(p + 11, name, nlen);
	if (flen > 0)
		memcpy(p + 11 + nlen, fixed, flen);
	if (blen > 0)
		memcpy(p + 11 + nlen + flen, blob, blen);
	jput32(p + 5, crc32c_extend(crc32c(p, 5), p + JOURNAL_REC_HDR, plen));
	j->len += JOURNAL_REC_HDR + plen;
	return 0;
}

int
journal_append_declare(struct journal *j, const char *name, size_t len, uint32_t cap, uint32_t flags,
    const void *opts, size_t opts_len)
{
	uint8_t fixed[8];

	jput32(fixed, cap);
	jput32(fixed + 4, flags);
	return append(j, JREC_DECLARE, name, len, fixed, sizeof fixed, opts, opts_len);
}

int
journal_append_push(struct journal *j, const char *name, size_t len, const void *value, size_t value_len)
{
	return append(j, JREC_PUSH, name, len, NULL, 0, value, value_len);
}

int
journal_append_push_counted(struct journal *j, const char *name, size_t len, uint32_t count,
    const void *value, size_t value_len)
{
	uint8_t fixed[4];

	jput32(fixed, count);
	return append(j, JREC_PUSH_COUNTED, name, len, fixed, sizeof fixed, value, value_len);
}

int
journal_append_pop(struct journal *j, const char *name, size_t len, uint64_t tag)
{
	uint8_t fixed[8];

	jput64(fixed, tag);
	return append(j, JREC_POP, name, len, fixed, sizeof fixed, NULL, 0);
}

int
journal_append_ack(struct journal *j, const char *name, size_t len, uint64_t tag)
{
	uint8_t fixed[8];

	jput64(fixed, tag);
	return append(j, JREC_ACK, name, len, fixed, sizeof fixed, NULL, 0);
}

int
journal_append_requeue(struct journal *j, const char *name, size_t len, uint64_t tag, uint32_t count)
{
	uint8_t fixed[12];

	jput64(fixed, tag);
	jput32(fixed + 8, count);
	return append(j, JREC_REQUEUE, name, len, fixed, sizeof fixed, NULL, 0);
}

int
journal_append_close(struct journal *j, const char *name, size_t len, uint32_t code, const char *msg,
    size_t msg_len)
{
	uint8_t fixed[4];

	jput32(fixed, code);
	return append(j, JREC_CLOSE, name, len, fixed, sizeof fixed, msg, msg_len);
}

int
journal_append_delete(struct journal *j, const char *name, size_t len)
{
	return append(j, JREC_DELETE, name, len, NULL, 0, NULL, 0);
}

/* ---- group commit --------------------------------------------------------------- */

void
journal_truncate_back(struct journal *j)
{
	char path[4096];

	if (ftruncate(j->fd, (off_t)j->off) == 0) {
		j->broken = false;
		return;
	}
	if (!j->broken) {
		journal_path(j, j->seq, j->parent ? ".snap.tmp" : ".seg", path, sizeof path);
		log_error("journal truncate file=%s offset=%llu: %s", path, (unsigned long long)j->off,
		    strerror(errno));
	}
	j->broken = true;
}

int
journal_commit(struct journal *j)
{
	bool live = j->parent == NULL;
	int err;

	if (j->broken) {
		journal_truncate_back(j);
		if (j->broken)
			return EIO;
	}
	if (j->len == 0)
		return 0;
	if (live && j->off >= j->opts.segment_bytes && j->off > JOURNAL_HDR &&
	    (err = journal_roll(j)) != 0)
		goto fail;
	if ((err = pwrite_all(j->fd, j->buf, j->len, j->off)) != 0)
		goto fail_written;
	j->st.writes++;
	j->dirty = true;
	/* one fdatasync covers every record of this commit (group commit) */
	if (live && j->opts.fsync == JOURNAL_FSYNC_ALWAYS && (err = journal_sync(j)) != 0)
		goto fail_written;
	j->off += j->len;
	j->st.bytes_written += j->len;
	j->len = 0;
	return 0;
fail_written:
	journal_truncate_back(j);
fail:
	j->st.errors++;
	return err;
}

int
journal_flush(struct journal *j)
{
	int err;

	if ((err = journal_commit(j)) != 0)
		return err;
	if (j->dirty && (err = journal_sync(j)) != 0) {
		j->st.errors++;
		return err;
	}
	return 0;
}

void
journal_discard(struct journal *j)
{
	j->len = 0;
}

int
journal_tick(struct journal *j, int64_t now_ns)
{
	int err;

	if (j->opts.fsync != JOURNAL_FSYNC_EVERYSEC || !j->dirty)
		return 0;
	if (j->synced_once && now_ns - j->last_sync_ns < NSEC_PER_SEC)
		return 0;
	if ((err = journal_sync(j)) != 0) {
		j->st.errors++;
		return err;
	}
	j->synced_once = true;
	j->last_sync_ns = now_ns;
	return 0;
}

void
journal_stats(const struct journal *j, struct journal_stats *st)
{
	*st = j->st;
	st->log_bytes = j->older_bytes + j->off;
	st->pending_bytes = j->len;
}

void
journal_free(struct journal *j)
{
	if (j == NULL)
		return;
	if (j->snap != NULL)
		journal_free(j->snap);
	if (j->fd >= 0)
		close(j->fd);
	free(j->dir);
	free(j->buf);
	free(j);
}
