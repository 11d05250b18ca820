/*
 * journal_compact.c: compaction: a snapshot of the live state, written
 * incrementally beside the live log, replaces the segments it covers
 * (journal.h has the invariants; docs/JOURNAL.md the crash cases). The
 * caller writes the state with the append calls, ack channels' values in
 * flight and their counts included (PUSH_COUNTED then POP with the tag);
 * the writer takes any record and interprets none.
 *
 * SPDX-License-Identifier: BSD-2-Clause
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "journal_int.h"

void
journal_set_live_bytes(struct journal *j, uint64_t bytes)
{
	j->live_bytes = bytes;
}

bool
journal_compact_due(const struct journal *j)
{
	uint64_t size = j->older_bytes + j->off;

	if (j->parent != NULL || j->snap != NULL || size < j->opts.compact_min_bytes)
		return false;
	return j->live_bytes <= size / 2;
}

int
journal_compact_begin(struct journal *j, struct journal **snap)
{
	struct journal *s;
	char path[4096];
	int err;

	*snap = NULL;
	if (j->parent != NULL)
		return EINVAL;
	if (j->snap != NULL)
		return EBUSY;
	/* what was appended is part of the state the caller will snapshot: it belongs before N+1 */
	if ((err = journal_commit(j)) != 0 || (err = journal_roll(j)) != 0)
		return err;
	if ((s = calloc(1, sizeof *s)) == NULL || (s->dir = strdup(j->dir)) == NULL) {
		free(s);
		return ENOMEM;
	}
	s->parent = j;
	s->opts = j->opts;
	s->seq = j->seq - 1;
	s->first_seq = s->seq;
	s->base_older = j->older_bytes;
	s->off = JOURNAL_HDR;
	journal_path(s, s->seq, ".snap.tmp", path, sizeof path);
	unlink(path);
	if ((err = journal_create_file(path, s->seq, JOURNAL_SEG_SNAPSHOT, &s->fd)) != 0) {
		s->fd = -1;
		journal_free(s);
		return err;
	}
	j->snap = s;
	*snap = s;
	return 0;
}

void
journal_compact_abort(struct journal *j, struct journal *snap)
{
	char path[4096];

	journal_path(snap, snap->seq, ".snap.tmp", path, sizeof path);
	unlink(path);
	j->snap = NULL;
	journal_free(snap);
}

/* The segments the snapshot replaced: a failure only leaves files the next open removes. */
static void
unlink_older(struct journal *j, uint64_t snap_seq)
{
	char path[4096];

	for (uint64_t seq = j->first_seq; seq < snap_seq; seq++) {
		journal_path(j, seq, ".seg", path, sizeof path);
		if (unlink(path) != 0 && errno != ENOENT)
			log_warn("journal compaction file=%s: unlink: %s", path, strerror(errno));
		j->st.segments--;
	}
	j->first_seq = snap_seq;
}

int
journal_compact_end(struct journal *j, struct journal *snap, char **cause)
{
	char tmp[4096], path[4096];
	const char *what;
	int err;

	journal_path(snap, snap->seq, ".snap.tmp", tmp, sizeof tmp);
	journal_path(snap, snap->seq, ".seg", path, sizeof path);
	what = "write";
	if ((err = journal_commit(snap)) != 0 || (err = journal_seal(snap)) != 0)
		goto fail;
	/* whole and on disk before the rename makes it the log */
	what = "fsync";
	if (fsync(snap->fd) != 0) {
		err = errno;
		goto fail;
	}
	what = "rename";
	if (rename(tmp, path) != 0) {
		err = errno;
		goto fail;
	}
	if ((err = journal_sync_dir(j)) != 0)
		log_warn("journal compaction dir=%s: fsync: %s", j->dir, strerror(err));
	unlink_older(j, snap->seq);
	j->older_bytes = j->older_bytes - snap->base_older + snap->off;
	j->live_bytes = snap->off;
	j->st.compactions++;
	j->st.bytes_written += snap->st.bytes_written;
	j->st.writes += snap->st.writes;
	log_info("journal compacted file=%s bytes=%llu log_bytes=%llu", path,
	    (unsigned long long)snap->off, (unsigned long long)(j->older_bytes + j->off));
	j->snap = NULL;
	journal_free(snap);
	return 0;
fail:
	if (asprintf(cause, "journal: %s: %s: %s", tmp, what, strerror(err)) < 0)
		*cause = NULL;
	journal_compact_abort(j, snap);
	return -1;
}
