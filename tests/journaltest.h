/*
 * journaltest.h: what tests/test_journal.c and test_journal_crash.c share
 * (journaltest.c): a model of the durable channels that the journal's
 * replay rebuilds, a random workload that drives the journal and the model
 * together, and a temp directory per test.
 *
 * SPDX-License-Identifier: BSD-2-Clause
 */
#ifndef CHAND_JOURNALTEST_H
#define CHAND_JOURNALTEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "server/journal.h"

#define M_CHANS 16

struct mval {
	uint8_t *data;
	size_t len;
	uint64_t tag;			/* in flight: its tag */
};

struct mchan {
	char name[JOURNAL_NAME_MAX + 1];
	size_t nlen;
	bool live;
	uint32_t cap, flags;
	uint8_t opts[32];
	size_t opts_len;
	bool closed;
	uint32_t code;
	char msg[64];
	size_t msg_len;
	struct mval *q;			/* buffered values, oldest first */
	size_t nq, qcap;
	struct mval *fl;		/* in flight */
	size_t nfl, flcap;
	bool pending;			/* live at a compaction's begin, not yet in its snapshot */
};

/* The state replay must rebuild. bad counts calls that made no sense (a push to an unknown channel...). */
struct model {
	struct mchan c[M_CHANS];
	uint64_t bad;
};

extern const struct journal_ops model_ops;

void model_init(struct model *m);
void model_free(struct model *m);
bool model_equal(const struct model *a, const struct model *b);
/* A copy (values duplicated). */
void model_copy(struct model *dst, const struct model *src);

/* Live channels, buffered values and in-flight values. */
size_t model_values(const struct model *m);

/*
 * One random operation on chan.K (K < nchans), appended to j and applied
 * to m. before(arg, ch), if set, is called first with the channel about to
 * change (a compaction's copy-before-write).
 */
void workload_step(struct journal *j, struct model *m, uint64_t *rng, int nchans,
    void (*before)(void *arg, struct mchan *ch), void *arg);
/* n steps, committing every `every` steps (and at the end). */
void workload(struct journal *j, struct model *m, uint64_t *rng, int nchans, int n, int every);
/* Append one channel's whole state to j (a snapshot writer). */
void snapshot_chan(struct journal *j, const struct mchan *ch);

/* A fresh temp dir for a test, and its removal. */
void jt_mkdir(char *dir, size_t cap);
void jt_rmdir(const char *dir);
/* DIR/journal/%016llx.seg */
void jt_seg(const char *dir, uint64_t seq, char *buf, size_t cap);
uint64_t jt_size(const char *path);
/* Open dir, replaying into m (re-initialised); 0, or -1 with *cause. */
int jt_open(const char *dir, const struct journal_opts *o, struct model *m, struct journal **j,
    char **cause);
/* The same, with what the journal logged (to stderr) copied into log (NUL-terminated). */
int jt_open_logged(const char *dir, const struct journal_opts *o, struct model *m,
    struct journal **j, char **cause, char *log, size_t cap);
struct journal_opts jt_opts(uint64_t segment_bytes);

void register_journal_crash(void);

#endif
