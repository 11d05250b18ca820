/*
 * journal_replay.c: journal_open: find the segments, check their headers
 * and sequence, replay their records through journal_ops, cut a torn tail,
 * refuse or repair anything worse (journal.h has the rules).
 *
 * SPDX-License-Identifier: BSD-2-Clause
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "crc32c.h"
#include "log.h"
#include "journal_int.h"

struct seg {
	uint64_t seq;
	uint32_t flags;
	uint64_t size;
	bool sealed;		/* ends with its SEAL record */
};

struct replay {
	struct journal *j;
	const struct journal_ops *ops;
	void *arg;
	struct seg *v;
	size_t n, cap;
	char **cause;
};

static int __attribute__((format(printf, 2, 3)))
fail(struct replay *r, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	if (vasprintf(r->cause, fmt, ap) < 0)
		*r->cause = NULL;
	va_end(ap);
	return -1;
}

/* 16 lowercase hex digits and then exactly suffix. */
static bool
seg_name(const char *name, const char *suffix, uint64_t *seq)
{
	*seq = 0;
	for (int i = 0; i < 16; i++) {
		char c = name[i];

		if (c >= '0' && c <= '9')
			*seq = *seq << 4 | (uint64_t)(c - '0');
		else if (c >= 'a' && c <= 'f')
			*seq = *seq << 4 | (uint64_t)(c - 'a' + 10);
		else
			return false;
	}
	return strcmp(name + 16, suffix) == 0;
}

static int
seg_cmp(const void *a, const void *b)
{
	const struct seg *x = a, *y = b;

	return x->seq < y->seq ? -1 : x->seq > y->seq;
}

/* Every NNN.seg, sorted; leftover .tmp files of a crash are removed. */
static int
list_segments(struct replay *r)
{
	struct dirent *de;
	uint64_t seq;
	DIR *d;

	if ((d = opendir(r->j->dir)) == NULL)
		return fail(r, "journal: %s: %s", r->j->dir, strerror(errno));
	while ((de = readdir(d)) != NULL) {
		if (seg_name(de->d_name, ".seg.tmp", &seq) || seg_name(de->d_name, ".snap.tmp", &seq)) {
			/* a segment being created or a snapshot being written when chand stopped */
			log_info("journal removing file=%s/%s (unfinished)", r->j->dir, de->d_name);
			unlinkat(dirfd(d), de->d_name, 0);
			continue;
		}
		if (!seg_name(de->d_name, ".seg", &seq) || seq == 0)
			continue;
		if (r->n == r->cap) {
			size_t cap = r->cap ? 2 * r->cap : 16;
			struct seg *v = realloc(r->v, cap * sizeof *v);

			if (v == NULL) {
				closedir(d);
				return fail(r, "journal: out of memory");
			}
			r->v = v;
			r->cap = cap;
		}
		r->v[r->n++] = (struct seg){ .seq = seq };
	}
	closedir(d);
	if (r->n > 1)
		qsort(r->v, r->n, sizeof *r->v, seg_cmp);
	return 0;
}

/* Check one segment's header; *why says what is wrong (NULL when good). -1 on a system error. */
static int
read_header(struct replay *r, struct seg *s, const char **why)
{
	uint8_t h[JOURNAL_HDR];
	char path[4096];
	struct stat sb;
	int fd;

	*why = NULL;
	journal_path(r->j, s->seq, ".seg", path, sizeof path);
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0 || fstat(fd, &sb) != 0) {
		if (fd >= 0)
			close(fd);
		return fail(r, "journal: %s: %s", path, strerror(errno));
	}
	s->size = (uint64_t)sb.st_size;
	if (s->size < JOURNAL_HDR || pread(fd, h, sizeof h, 0) != (ssize_t)sizeof h)
		*why = "short segment header";
	else if (memcmp(h, JOURNAL_MAGIC, 8) != 0)
		*why = "not a journal segment (bad magic)";
	else if (jget32(h + 24) != crc32c(h, 24))
		*why = "segment header fails its CRC";
	else if (jget32(h + 8) != JOURNAL_VERSION)
		*why = "unknown journal version";
	else if (jget64(h + 16) != s->seq)
		*why = "header names another sequence number (a renamed segment)";
	s->flags = *why ? 0 : jget32(h + 12);
	close(fd);
	return 0;
}

/* Rename segments from index i on aside as *.dropped, with a log line each. */
static void
drop_from(struct replay *r, size_t i)
{
	char path[4096], aside[4200];
	struct stat sb;

	for (; i < r->n; i++) {
		journal_path(r->j, r->v[i].seq, ".seg", path, sizeof path);
		snprintf(aside, sizeof aside, "%s.dropped", path);
		/* headers after a bad one were not read */
		r->v[i].size = stat(path, &sb) == 0 ? (uint64_t)sb.st_size : 0;
		if (rename(path, aside) != 0)
			log_error("journal repair file=%s: rename: %s", path, strerror(errno));
		else
			log_warn("journal repair dropped file=%s bytes=%llu renamed=%s", path,
			    (unsigned long long)r->v[i].size, aside);
		r->j->st.truncated_bytes += r->v[i].size;
	}
}

/* One record's payload, its CRC good: call the op. Returns NULL, or what is wrong with it. */
static const char *
dispatch(struct replay *r, uint8_t type, const uint8_t *p, size_t plen)
{
	const struct journal_ops *ops = r->ops;
	const char *name = (const char *)p + 2;
	const uint8_t *rest;
	size_t nlen, rlen;

	if (plen < 2)
		return "record too short for a channel name";
	nlen = (size_t)p[0] | (size_t)p[1] << 8;
	if (nlen == 0 || nlen > JOURNAL_NAME_MAX || 2 + nlen > plen)
		return "bad channel name length";
	rest = p + 2 + nlen;
	rlen = plen - 2 - nlen;
	switch (type) {
	case JREC_DECLARE:
		if (rlen < 8)
			return "DECLARE record too short";
		if (ops && ops->declare)
			ops->declare(r->arg, name, nlen, jget32(rest), jget32(rest + 4), rest + 8, rlen - 8);
		return NULL;
	case JREC_PUSH:
		if (ops && ops->push)
			ops->push(r->arg, name, nlen, rest, rlen);
		return NULL;
	case JREC_POP:
	case JREC_ACK:
		if (rlen != 8)
			return "POP/ACK record of the wrong size";
		if (ops && type == JREC_POP && ops->pop)
			ops->pop(r->arg, name, nlen, jget64(rest));
		if (ops && type == JREC_ACK && ops->ack)
			ops->ack(r->arg, name, nlen, jget64(rest));
		return NULL;
	case JREC_PUSH_COUNTED:
		if (rlen < 4)
			return "PUSH_COUNTED record too short";
		if (ops && ops->push_counted)
			ops->push_counted(r->arg, name, nlen, jget32(rest), rest + 4, rlen - 4);
		return NULL;
	case JREC_REQUEUE:
		if (rlen != 12)
			return "REQUEUE record of the wrong size";
		if (ops && ops->requeue)
			ops->requeue(r->arg, name, nlen, jget64(rest), jget32(rest + 8));
		return NULL;
	case JREC_CLOSE:
		if (rlen < 4)
			return "CLOSE record too short";
		if (ops && ops->close)
			ops->close(r->arg, name, nlen, jget32(rest), (const char *)rest + 4, rlen - 4);
		return NULL;
	case JREC_DELETE:
		if (rlen != 0)
			return "DELETE record of the wrong size";
		if (ops && ops->delete)
			ops->delete(r->arg, name, nlen);
		return NULL;
	default:
		return "unknown record type";
	}
}

/* A SEAL record: the last of its segment, naming it. NULL, or what is wrong. */
static const char *
check_seal(const struct seg *s, const uint8_t *p, uint64_t plen, uint64_t end)
{
	if (plen != 8 || jget64(p) != s->seq)
		return "bad segment end record";
	if (end != s->size)
		return "records after the segment's end record";
	return NULL;
}

/*
 * Replay the records of a mapped segment. Returns 0 when all were good, or
 * 1 with *bad the offset of the first bad one, *why what is wrong, and
 * *torn whether it could be a torn write: incomplete, or failing its CRC
 * and ending exactly at the end of the file.
 */
static int
replay_records(struct replay *r, struct seg *s, const uint8_t *m, uint64_t *bad, const char **why,
    bool *torn)
{
	uint64_t size = s->size;

	uint64_t off = JOURNAL_HDR;

	while (off < size) {
		uint64_t plen, end;
		const uint8_t *p = m + off;

		*bad = off;
		*torn = true;
		if (size - off < JOURNAL_REC_HDR) {
			*why = "incomplete record header";
			return 1;
		}
		plen = jget32(p);
		end = off + JOURNAL_REC_HDR + plen;
		if (plen > JOURNAL_MAX_RECORD) {
			/* no writer makes one: a torn tail only if it could run past the end */
			*torn = end > size;
			*why = "impossible record length";
			return 1;
		}
		if (end > size) {
			*why = "record runs past the end of the file";
			return 1;
		}
		if (crc32c_extend(crc32c(p, 5), p + JOURNAL_REC_HDR, plen) != jget32(p + 5)) {
			*torn = end == size;
			*why = "record fails its CRC";
			return 1;
		}
		*torn = false;
		if (p[4] == JREC_SEAL) {
			if ((*why = check_seal(s, p + JOURNAL_REC_HDR, plen, end)) != NULL)
				return 1;
			s->sealed = true;
		} else if ((*why = dispatch(r, p[4], p + JOURNAL_REC_HDR, plen)) != NULL) {
			return 1;
		}
		r->j->st.replayed_records++;
		r->j->st.replayed_bytes += JOURNAL_REC_HDR + plen;
		off = end;
	}
	return 0;
}

/* Replay segment i; a torn tail of the last one is cut, anything else refused or repaired. */
static int
replay_segment(struct replay *r, size_t i)
{
	struct seg *s = &r->v[i];
	bool last = i + 1 == r->n, torn;
	char path[4096];
	const char *why;
	uint64_t bad;
	void *m;
	int fd, rc;

	journal_path(r->j, s->seq, ".seg", path, sizeof path);
	if ((fd = open(path, O_RDWR | O_CLOEXEC)) < 0)
		return fail(r, "journal: %s: %s", path, strerror(errno));
	m = mmap(NULL, (size_t)s->size, PROT_READ, MAP_PRIVATE, fd, 0);
	if (m == MAP_FAILED) {
		close(fd);
		return fail(r, "journal: %s: mmap: %s", path, strerror(errno));
	}
	rc = replay_records(r, s, m, &bad, &why, &torn);
	munmap(m, (size_t)s->size);
	if (rc == 0 && !last && !s->sealed) {
		/* another segment follows, so this one was sealed: it lost its end */
		rc = 1;
		bad = s->size;
		torn = false;
		why = "segment ends without its end record (cut short)";
	}
	if (rc == 0)
		goto done;
	if (!(last && torn) && !r->j->opts.repair) {
		close(fd);
		return fail(r, "journal: %s: offset %llu: %s (corruption before the tail; "
		    "--repair keeps the records before it and drops the rest)", path,
		    (unsigned long long)bad, why);
	}
	/* on disk before anything is appended after it */
	if (ftruncate(fd, (off_t)bad) != 0 || fsync(fd) != 0) {
		close(fd);
		return fail(r, "journal: %s: truncate at %llu: %s", path, (unsigned long long)bad,
		    strerror(errno));
	}
	if (last && torn)
		log_warn("journal torn tail file=%s offset=%llu dropped=%llu bytes: %s; truncated",
		    path, (unsigned long long)bad, (unsigned long long)(s->size - bad), why);
	else
		log_warn("journal repair file=%s offset=%llu dropped=%llu bytes: %s; truncated",
		    path, (unsigned long long)bad, (unsigned long long)(s->size - bad), why);
	r->j->st.truncated_bytes += s->size - bad;
	s->size = bad;
	drop_from(r, i + 1);
	r->n = i + 1;
done:
	close(fd);
	return 0;
}

/* Headers, then where replay starts (the newest snapshot), then no gaps. *start set. */
static int
check_segments(struct replay *r, size_t *start)
{
	char path[4096];
	const char *why;
	size_t i;

	for (i = 0; i < r->n; i++) {
		if (read_header(r, &r->v[i], &why) != 0)
			return -1;
		if (why == NULL)
			continue;
		journal_path(r->j, r->v[i].seq, ".seg", path, sizeof path);
		if (!r->j->opts.repair)
			return fail(r, "journal: %s: offset 0: %s", path, why);
		log_warn("journal repair file=%s offset=0: %s", path, why);
		drop_from(r, i);
		r->n = i;
	}
	*start = 0;
	for (i = 0; i < r->n; i++)
		if (r->v[i].flags & JOURNAL_SEG_SNAPSHOT)
			*start = i;
	for (i = *start; i < r->n; i++) {
		uint64_t want = i == *start ? 1 : r->v[i - 1].seq + 1;
		bool ok = i == *start ? (r->v[i].flags & JOURNAL_SEG_SNAPSHOT) || r->v[i].seq == 1 :
		    r->v[i].seq == want;

		if (ok)
			continue;
		journal_path(r->j, want, ".seg", path, sizeof path);
		if (!r->j->opts.repair)
			return fail(r, "journal: %s: offset 0: missing segment (the next one found is "
			    "%016llx)", path, (unsigned long long)r->v[i].seq);
		log_warn("journal repair file=%s: missing segment", path);
		drop_from(r, i);
		r->n = i;
	}
	return 0;
}

/* Segments replaced by the snapshot: a compaction stopped before its unlinks. Once it has replayed. */
static void
remove_replaced(struct replay *r, size_t start)
{
	char path[4096];

	for (size_t i = 0; i < start; i++) {
		journal_path(r->j, r->v[i].seq, ".seg", path, sizeof path);
		log_info("journal removing file=%s (older than snapshot %016llx)", path,
		    (unsigned long long)r->v[start].seq);
		unlink(path);
	}
}

/* Where appends go: the last segment, or a new one after a snapshot or none. */
static int
open_tail(struct replay *r, size_t start)
{
	struct journal *j = r->j;
	struct seg *last = r->n > start ? &r->v[r->n - 1] : NULL;
	char path[4096];
	int err;

	j->first_seq = last ? r->v[start].seq : 1;
	for (size_t i = start; i < r->n; i++)
		j->older_bytes += r->v[i].size;
	j->st.segments = r->n - start;
	if (last && (r->v[start].flags & JOURNAL_SEG_SNAPSHOT))
		j->live_bytes = r->v[start].size;
	if (last != NULL && !(last->flags & JOURNAL_SEG_SNAPSHOT) && !last->sealed) {
		journal_path(j, last->seq, ".seg", path, sizeof path);
		if ((j->fd = open(path, O_RDWR | O_CLOEXEC)) < 0)
			return fail(r, "journal: %s: %s", path, strerror(errno));
		j->seq = last->seq;
		j->off = last->size;
		j->older_bytes -= last->size;
		return 0;
	}
	j->seq = last ? last->seq + 1 : 1;
	journal_path(j, j->seq, ".seg", path, sizeof path);
	if ((err = journal_create_segment(j, j->seq, &j->fd)) != 0)
		return fail(r, "journal: %s: %s", path, strerror(err));
	j->off = JOURNAL_HDR;
	j->st.segments++;
	return 0;
}

int
journal_open(const char *dir, const struct journal_opts *opts, const struct journal_ops *ops,
    void *arg, struct journal **out, char **cause)
{
	struct replay r = { .ops = ops, .arg = arg, .cause = cause };
	struct journal *j;
	size_t start;

	*out = NULL;
	if ((j = r.j = calloc(1, sizeof *j)) == NULL)
		return fail(&r, "journal: out of memory");
	j->fd = -1;
	if (opts != NULL)
		j->opts = *opts;
	else
		journal_opts_init(&j->opts);
	if (j->opts.segment_bytes == 0)
		j->opts.segment_bytes = JOURNAL_SEGMENT_BYTES;
	if (j->opts.compact_min_bytes == 0)
		j->opts.compact_min_bytes = JOURNAL_COMPACT_MIN;
	if (strlen(dir) > JOURNAL_DIR_MAX) {
		fail(&r, "journal: data directory path is longer than %d bytes: %s", JOURNAL_DIR_MAX, dir);
		goto out;
	}
	if (asprintf(&j->dir, "%s/journal", dir) < 0) {
		j->dir = NULL;
		fail(&r, "journal: out of memory");
		goto out;
	}
	if (mkdir(j->dir, 0700) != 0 && errno != EEXIST) {
		fail(&r, "journal: %s: %s", j->dir, strerror(errno));
		goto out;
	}
	if (list_segments(&r) != 0 || check_segments(&r, &start) != 0)
		goto out;
	for (size_t i = start; i < r.n; i++)
		if (replay_segment(&r, i) != 0)
			goto out;
	remove_replaced(&r, start);
	if (open_tail(&r, start) != 0)
		goto out;
	free(r.v);
	*out = j;
	return 0;
out:
	free(r.v);
	journal_free(j);
	return -1;
}
