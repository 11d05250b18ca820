/*
 * journaltest.h: what tests/test_journal.c, test_journal_crash.c and
 * test_journal_ack.c share (journaltest.c): a model of the durable channels
 * that the journal's replay rebuilds, a random workload that drives the
 * journal and the model together, file helpers to damage segments, and a
 * temp directory per test.
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
	uint32_t count;			/* deliveries; in flight, this one included */
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
	struct mval *q;			/* buffered values: the nback given back, then the others */
	size_t nq, qcap, nback;
	struct mval *fl;		/* in flight, in delivery order */
	size_t nfl, flcap;
	bool pending;			/* live at a compaction's begin, not yet in its snapshot */
};

/* The state replay must rebuild. bad counts calls that made no sense (a push to an unknown channel...). */
struct model {
	struct mchan c[M_CHANS];
	uint64_t bad;
	uint64_t tag;			/* the last tag issued: tags increase with each delivery */
};

extern const struct journal_ops model_ops;

void model_init(struct model *m);
void model_free(struct model *m);
bool model_equal(const struct model *a, const struct model *b);
/* A copy (values duplicated). */
void model_copy(struct model *dst, const struct model *src);
/*
 * What a caller does after replay (docs/JOURNAL.md): every value still in
 * flight goes back, oldest delivery first, one REQUEUE each appended to j
 * (committed) and applied to m.
 */
void model_settle(struct journal *j, struct model *m);

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

/* Files: whole contents (malloc'd), written back, a bit flipped at off. */
uint8_t *slurp(const char *path, size_t *len);
void spit(const char *path, const uint8_t *p, size_t len);
void flip(const char *path, uint64_t off);
/* Recompute a record's CRC after a test changed it (docs/JOURNAL.md: over len, type, payload). */
void jput_crc(uint8_t *rec, size_t plen);
/* Files in DIR/journal whose names end with suffix. */
int count_files(const char *dir, const char *suffix);
/* DIR/journal copied into TO (a kill -9 image). */
void copy_dir(const char *from, const char *to);

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
void register_journal_ack(void);

#endif
