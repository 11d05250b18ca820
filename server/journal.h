/*
 * journal.h: the durable channels' log (issue 18, DESIGN.md §11): an
 * append-only sequence of records in segment files under DIR/journal/, with
 * group commit, replay at open, and compaction into a snapshot. The exact
 * byte layout is in docs/JOURNAL.md.
 *
 * The journal is told every state change of a durable channel through one
 * narrow interface (declare, push, pop, ack, close, delete, and for ack
 * channels push_counted and requeue) and replays the same calls at open
 * through struct journal_ops; it never interprets them (the engine does not
 * know it exists, and it does not know the engine).
 * Pure C and POSIX file I/O: no event loop, no threads, no clock reads
 * except to measure fsync latency; the caller drives time (journal_tick).
 *
 * Records: [u32 len][u8 type][u32 crc32c][payload], little-endian; the CRC
 * covers len, type and payload. Records carry channel names, not ids: each
 * record reads alone (repair and snapshots need no table), at a cost of at
 * most 257 bytes a record (names are 1 to 255 bytes, PROTOCOL.md §6).
 *
 * Segments: DIR/journal/%016llx.seg, sequence numbers from 1 without gaps.
 * Each starts with a 28-byte header (magic "CHANDJNL", version, flags,
 * sequence, CRC). A segment is created as *.seg.tmp and renamed once its
 * header is on disk, so every *.seg has a whole header. A new segment is
 * started by the first commit after the current one passes segment_bytes;
 * the old one ends with a SEAL record, so that a segment cut short exactly
 * between two records is still seen.
 *
 * Group commit: the append functions only buffer. journal_commit writes the
 * whole buffer with one pwrite(2) and, with JOURNAL_FSYNC_ALWAYS, one
 * fdatasync(2); EVERYSEC syncs from journal_tick at most once a second of
 * the caller's clock; NO leaves it to the kernel. Whatever the policy, a
 * segment is synced before the next one is created (once per segment), so
 * that a crash never leaves a hole before the tail.
 *
 * Compaction (Redis's AOF rewrite, incremental): journal_compact_begin
 * commits, then starts segment N+1 for live records, and returns a snapshot
 * writer, itself a struct journal, whose appends go to N.snap.tmp. The
 * caller writes its live state as of begin through that writer, a bounded
 * number of records per loop turn (journal_commit on it writes them out),
 * while live records keep going to N+1. To describe the state as of begin
 * while it keeps changing, the caller copies before writing, per channel:
 * at begin it marks every durable channel; a marked channel is written
 * whole into the snapshot and unmarked either in a later turn or just
 * before its next change (a delete included); channels made after begin
 * are not written (their DECLARE is in N+1). journal_compact_end syncs the
 * snapshot, renames it over N.seg (flagged as a snapshot), syncs the
 * directory, and unlinks segments below N. Invariants, so that a kill -9
 * anywhere replays the right state:
 *   - segments <= N hold exactly the state as of begin; > N, what followed;
 *   - a snapshot is complete and on disk before its rename makes it a .seg;
 *   - open starts from the newest snapshot segment and unlinks any older
 *     segment (a crash between the rename and the unlinks), and removes
 *     *.tmp files (a crash before the rename: the old segments still hold
 *     the state);
 *   - without a snapshot, replay must start at segment 1.
 *
 * Recovery: journal_open replays every segment in order. A torn or corrupt
 * tail (the last record of the last segment incomplete, or failing its CRC
 * with nothing after it) is truncated with a log line naming file and
 * offset. Anything else (a bad record with data after it, a segment
 * without its SEAL before the last, a bad header, a missing segment)
 * refuses to open with *cause naming file and offset, unless opts.repair:
 * then replay stops at the first bad record, that segment is truncated
 * there, later segments are renamed *.dropped, and what was dropped is
 * logged. A lost length field can make corruption look like a torn tail;
 * the CRC cannot tell those apart.
 *
 * Ack channels (PROTOCOL.md §16): a value's count is how many times it
 * was delivered (0 for a value never delivered). POP with a tag puts the
 * head in flight with count + 1; REQUEUE gives it back with the count it
 * then has; PUSH_COUNTED is a value given back, in a snapshot. Given back
 * means after the values given back before it and ahead of every value
 * never delivered (§16's redelivery). A dead letter needs no record of its
 * own: PUSH on the dead-letter channel, then ACK on the source. Replay
 * ends with the values still in flight: the caller gives them back (one
 * journal_append_requeue each, in delivery order) before it appends
 * anything else; docs/JOURNAL.md has the rule.
 *
 * Ownership: the journal owns its files, descriptors and buffers; names and
 * bytes passed to the append functions are copied; the pointers given to
 * the replay callbacks are valid only during the call.
 *
 * Thread-safety: none; one thread (the loop thread) owns a journal.
 *
 * Errors: journal_open and journal_compact_end return -1 with a malloc'd
 * *cause. The others return 0 or an errno value: ENOMEM, EINVAL (a name
 * of 0 or more than 255 bytes, a record over JOURNAL_MAX_RECORD, misuse),
 * EBUSY (a compaction is already running), and from commit, tick and
 * compaction the I/O errors of pwrite(2) and fdatasync(2) (ENOSPC, EIO,
 * EDQUOT...), which a caller maps to a STORAGE status (issue 18). A failed
 * commit leaves the segment as it was before it (truncated back to the
 * last good offset) and keeps the buffered records, so a later commit may
 * write them when space returns; journal_discard drops them instead.
 *
 * SPDX-License-Identifier: BSD-2-Clause
 */
#ifndef CHAND_JOURNAL_H
#define CHAND_JOURNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct journal;

#define JOURNAL_NAME_MAX	255
#define JOURNAL_MAX_RECORD	(256u << 20)	/* a payload past this is corruption */
#define JOURNAL_SEGMENT_BYTES	(64ull << 20)
#define JOURNAL_COMPACT_MIN	(64ull << 20)

enum journal_fsync { JOURNAL_FSYNC_ALWAYS, JOURNAL_FSYNC_EVERYSEC, JOURNAL_FSYNC_NO };

struct journal_opts {
	enum journal_fsync fsync;
	uint64_t segment_bytes;		/* start a new segment past this; 0: JOURNAL_SEGMENT_BYTES */
	uint64_t compact_min_bytes;	/* journal_compact_due never below this; 0: JOURNAL_COMPACT_MIN */
	bool repair;			/* keep the valid prefix instead of refusing */
};

/*
 * What replay tells the caller, in log order. name is 1 to 255 bytes, not
 * NUL-terminated; blobs may be empty (then possibly NULL). Any may be NULL
 * (the record is skipped).
 */
struct journal_ops {
	/* A durable channel: cap, flags and the delivery options, opaque here. */
	void (*declare)(void *arg, const char *name, size_t len, uint32_t cap, uint32_t flags,
	    const void *opts, size_t opts_len);
	/* A value at the tail: its exact msgpack encoding, as stored. */
	void (*push)(void *arg, const char *name, size_t len, const void *value, size_t value_len);
	/* The head value leaves; tag 0: gone for good, else in flight under tag. */
	void (*pop)(void *arg, const char *name, size_t len, uint64_t tag);
	/* The in-flight value with tag is gone for good. */
	void (*ack)(void *arg, const char *name, size_t len, uint64_t tag);
	/* Closed; code 0 and an empty message when closed without an error. */
	void (*close)(void *arg, const char *name, size_t len, uint32_t code, const char *msg,
	    size_t msg_len);
	/* Deleted, with its buffer and its values in flight. */
	void (*delete)(void *arg, const char *name, size_t len);
	/*
	 * A value given back, delivered count times already: after the values
	 * given back before it, ahead of every value never delivered.
	 */
	void (*push_counted)(void *arg, const char *name, size_t len, uint32_t count, const void *value,
	    size_t value_len);
	/* The in-flight value with tag is given back (where push_counted puts one), with count. */
	void (*requeue)(void *arg, const char *name, size_t len, uint64_t tag, uint32_t count);
};

struct journal_stats {
	uint64_t bytes_written;		/* record bytes written: commits, seals, snapshots */
	uint64_t writes;		/* write(2) calls of commits */
	uint64_t syncs;			/* fdatasync(2) calls of commits and ticks that succeeded */
	uint64_t errors;		/* failed commits and syncs */
	/* Around fdatasync alone, CLOCK_MONOTONIC (clock_now_ns), in ns. */
	uint64_t last_sync_ns, max_sync_ns;
	uint64_t compactions;		/* completed */
	uint64_t log_bytes;		/* size of the segment files, headers included */
	uint64_t segments;		/* segment files */
	uint64_t pending_bytes;		/* appended, not yet written */
	/* journal_open: records replayed, their bytes, and bytes cut off a torn tail or by repair. */
	uint64_t replayed_records, replayed_bytes, truncated_bytes;
};

/* Defaults: fsync always, 64 MiB segments, 64 MiB compaction floor, no repair. */
void journal_opts_init(struct journal_opts *o);

/*
 * Open (creating DIR/journal if needed; DIR must exist) and replay every
 * record through ops (ops may be NULL; opts NULL means the defaults). Returns 0 with *out ready to
 * append, or -1 with *cause (see the top of this file).
 */
int journal_open(const char *dir, const struct journal_opts *opts, const struct journal_ops *ops,
    void *arg, struct journal **out, char **cause);
/*
 * Close the files; records not committed are dropped, and a compaction in
 * progress is abandoned (its .tmp is removed at the next open). Does not
 * sync: journal_flush first. Accepts NULL; never pass a snapshot writer.
 */
void journal_free(struct journal *j);

/* ---- the narrow interface: append (buffer only) --------------------------- */

int journal_append_declare(struct journal *j, const char *name, size_t len, uint32_t cap, uint32_t flags,
    const void *opts, size_t opts_len);
int journal_append_push(struct journal *j, const char *name, size_t len, const void *value,
    size_t value_len);
int journal_append_pop(struct journal *j, const char *name, size_t len, uint64_t tag);
int journal_append_ack(struct journal *j, const char *name, size_t len, uint64_t tag);
int journal_append_close(struct journal *j, const char *name, size_t len, uint32_t code, const char *msg,
    size_t msg_len);
int journal_append_delete(struct journal *j, const char *name, size_t len);
/* Ack channels: a value given back with its count (a snapshot's), and an in-flight one given back. */
int journal_append_push_counted(struct journal *j, const char *name, size_t len, uint32_t count,
    const void *value, size_t value_len);
int journal_append_requeue(struct journal *j, const char *name, size_t len, uint64_t tag, uint32_t count);

/* ---- group commit ----------------------------------------------------------- */

/* Write everything buffered (one write), then sync per policy. 0 or an errno. */
int journal_commit(struct journal *j);
/* Commit, then fdatasync whatever the policy (a clean shutdown). 0 or an errno. */
int journal_flush(struct journal *j);
/* Drop the records buffered since the last successful commit. */
void journal_discard(struct journal *j);
/* EVERYSEC: sync if something was written and the last sync is >= 1 s before now_ns. 0 or an errno. */
int journal_tick(struct journal *j, int64_t now_ns);
void journal_stats(const struct journal *j, struct journal_stats *st);

/* ---- compaction ------------------------------------------------------------- */

/*
 * The log's size against the live data: the caller's estimate of the bytes
 * its snapshot would take (set_live), or else the size of the last snapshot
 * (Redis's rule: rewrite when the log has doubled since the last rewrite).
 */
void journal_set_live_bytes(struct journal *j, uint64_t bytes);
/* The log passed compact_min_bytes and twice the live size, and no compaction runs. */
bool journal_compact_due(const struct journal *j);
/*
 * Commit, start a new live segment, and return in *snap the writer of the
 * snapshot: append to it the live state as of now (docs/JOURNAL.md: declare
 * each channel, push_counted and pop with tag its in-flight values,
 * push_counted those given back, push the others, close...), calling
 * journal_commit(*snap) as often as wanted (it writes, never syncs). One
 * compaction at a time (EBUSY). 0 or an errno.
 */
int journal_compact_begin(struct journal *j, struct journal **snap);
/* Finish: sync, rename, unlink the old segments; frees snap either way. */
int journal_compact_end(struct journal *j, struct journal *snap, char **cause);
/* Give up (e.g. a write failed): remove the temporary file; frees snap. */
void journal_compact_abort(struct journal *j, struct journal *snap);

#endif
