/*
 * journal_int.h: what journal.c (records, segments, commit),
 * journal_replay.c (open) and journal_compact.c share. Not a public
 * interface: the layout is documented in docs/JOURNAL.md.
 *
 * SPDX-License-Identifier: BSD-2-Clause
 */
#ifndef CHAND_JOURNAL_INT_H
#define CHAND_JOURNAL_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "journal.h"

#define JOURNAL_MAGIC		"CHANDJNL"
#define JOURNAL_VERSION		1
#define JOURNAL_HDR		28	/* magic 8, version 4, flags 4, seq 8, crc 4 */
#define JOURNAL_SEG_SNAPSHOT	0x1	/* header flag: the state as of this point, replaces older segments */
#define JOURNAL_REC_HDR		9	/* len 4, type 1, crc 4 */
#define JOURNAL_DIR_MAX		3900	/* so that DIR/journal/NAME fits the 4096-byte path buffers */

enum journal_type {
	JREC_DECLARE = 1,
	JREC_PUSH = 2,
	JREC_POP = 3,
	JREC_ACK = 4,
	JREC_CLOSE = 5,
	JREC_DELETE = 6,
	JREC_SEAL = 7,		/* no name: u64 seq; the end of a segment that another follows */
	JREC_PUSH_COUNTED = 8,	/* u32 count, the value: given back, ahead of the values never delivered */
	JREC_REQUEUE = 9,	/* u64 tag, u32 count: an in-flight value given back, where PUSH_COUNTED puts one */
};

#define JOURNAL_SEAL_BYTES	(JOURNAL_REC_HDR + 8)

struct journal {
	char *dir;			/* DIR/journal */
	struct journal_opts opts;
	struct journal *parent;		/* a snapshot writer: the journal it compacts */
	struct journal *snap;		/* the compaction in progress, if any */
	int fd;				/* the current segment (or the snapshot's .tmp) */
	uint64_t first_seq, seq;	/* the oldest segment and the current one */
	uint64_t off;			/* end of the last good write to fd */
	uint64_t older_bytes;		/* size of segments first_seq .. seq-1 */
	uint64_t base_older;		/* snapshot writer: the parent's older_bytes at begin */
	uint8_t *buf;			/* appended records, not yet written */
	size_t len, cap;
	uint64_t live_bytes;		/* set_live's estimate, or the last snapshot's size */
	bool dirty;			/* written and not yet synced */
	bool synced_once;		/* last_sync_ns means something */
	bool broken;			/* a failed commit could not truncate: retried first */
	int64_t last_sync_ns;
	struct journal_stats st;
};

static inline void
jput32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static inline void
jput64(uint8_t *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static inline uint32_t
jget32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static inline uint64_t
jget64(const uint8_t *p)
{
	return (uint64_t)jget32(p) | (uint64_t)jget32(p + 4) << 32;
}

/* DIR/journal/%016llx followed by suffix, into buf (PATH_MAX). */
void journal_path(const struct journal *j, uint64_t seq, const char *suffix, char *buf, size_t cap);
/* Fill a segment header. */
void journal_header(uint8_t *hdr, uint64_t seq, uint32_t flags);
/* Write seq's header to a new file (O_EXCL): *fd open read-write. 0 or an errno. */
int journal_create_file(const char *path, uint64_t seq, uint32_t flags, int *fd);
/* Make a new live segment seq (via .seg.tmp and rename). 0 or an errno. */
int journal_create_segment(struct journal *j, uint64_t seq, int *fd);
/* fsync the directory, so that creations, renames and unlinks last. 0 or an errno. */
int journal_sync_dir(const struct journal *j);
/* Seal (a SEAL record), sync, close and leave the current segment; start seq+1. 0 or an errno. */
int journal_roll(struct journal *j);
/* Cut the file back to off; until that works (broken), no commit writes. */
void journal_truncate_back(struct journal *j);
/* Append the SEAL record at off (written at once, not buffered). 0 or an errno. */
int journal_seal(struct journal *j);
/* fdatasync fd, counting and timing it. 0 or an errno. */
int journal_sync(struct journal *j);

#endif
