/*
 * journaltest.c: the model of durable channels that the journal's replay
 * must rebuild, the random workload that drives journal and model together,
 * the file helpers and the temp directories of tests/test_journal
 * (journaltest.h).
 *
 * SPDX-License-Identifier: BSD-2-Clause
 */
#include <dirent.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "testutil.h"
#include "crc32c.h"
#include "journaltest.h"

/* ---- the model ---------------------------------------------------------------- */

void
model_init(struct model *m)
{
	memset(m, 0, sizeof *m);
}

static void
chan_clear(struct mchan *c)
{
	for (size_t i = 0; i < c->nq; i++)
		free(c->q[i].data);
	for (size_t i = 0; i < c->nfl; i++)
		free(c->fl[i].data);
	free(c->q);
	free(c->fl);
	memset(c, 0, sizeof *c);
}

void
model_free(struct model *m)
{
	for (int i = 0; i < M_CHANS; i++)
		chan_clear(&m->c[i]);
}

static struct mchan *
find(struct model *m, const char *name, size_t len)
{
	for (int i = 0; i < M_CHANS; i++)
		if (m->c[i].live && m->c[i].nlen == len && memcmp(m->c[i].name, name, len) == 0)
			return &m->c[i];
	return NULL;
}

static void
vpush(struct mval **v, size_t *n, size_t *cap, struct mval x)
{
	if (*n == *cap) {
		*cap = *cap ? 2 * *cap : 8;
		*v = realloc(*v, *cap * sizeof **v);
		CU_ASSERT_FATAL(*v != NULL);
	}
	(*v)[(*n)++] = x;
}

static void
m_declare(void *arg, const char *name, size_t len, uint32_t cap, uint32_t flags, const void *opts,
    size_t opts_len)
{
	struct model *m = arg;
	struct mchan *c = NULL;

	if (find(m, name, len) != NULL || len > JOURNAL_NAME_MAX || opts_len > sizeof c->opts) {
		m->bad++;
		return;
	}
	for (int i = 0; i < M_CHANS && c == NULL; i++)
		if (!m->c[i].live)
			c = &m->c[i];
	if (c == NULL) {
		m->bad++;
		return;
	}
	chan_clear(c);
	memcpy(c->name, name, len);
	c->nlen = len;
	c->live = true;
	c->cap = cap;
	c->flags = flags;
	if (opts_len > 0)
		memcpy(c->opts, opts, opts_len);
	c->opts_len = opts_len;
}

static void
m_push(void *arg, const char *name, size_t len, const void *value, size_t value_len)
{
	struct model *m = arg;
	struct mchan *c = find(m, name, len);
	struct mval v = { malloc(value_len + 1), value_len, 0, 0 };

	if (c == NULL || c->closed) {
		free(v.data);
		m->bad++;
		return;
	}
	memcpy(v.data, value, value_len);
	vpush(&c->q, &c->nq, &c->qcap, v);
}

/* Given back: after the values given back before it, ahead of every value never delivered. */
static void
give_back(struct mchan *c, struct mval v)
{
	vpush(&c->q, &c->nq, &c->qcap, v);
	memmove(c->q + c->nback + 1, c->q + c->nback, (c->nq - 1 - c->nback) * sizeof *c->q);
	c->q[c->nback++] = v;
}

static void
m_push_counted(void *arg, const char *name, size_t len, uint32_t count, const void *value,
    size_t value_len)
{
	struct model *m = arg;
	struct mchan *c = find(m, name, len);
	struct mval v = { malloc(value_len + 1), value_len, 0, count };

	if (c == NULL || c->closed) {
		free(v.data);
		m->bad++;
		return;
	}
	memcpy(v.data, value, value_len);
	give_back(c, v);
}

/* The index of tag in c's values in flight, or -1. */
static long
fl_find(const struct mchan *c, uint64_t tag)
{
	for (size_t i = 0; c != NULL && i < c->nfl; i++)
		if (c->fl[i].tag == tag)
			return (long)i;
	return -1;
}

/* Out of flight, the others kept in delivery order. */
static struct mval
fl_take(struct mchan *c, size_t i)
{
	struct mval v = c->fl[i];

	memmove(c->fl + i, c->fl + i + 1, (c->nfl - i - 1) * sizeof *c->fl);
	c->nfl--;
	return v;
}

static void
m_pop(void *arg, const char *name, size_t len, uint64_t tag)
{
	struct model *m = arg;
	struct mchan *c = find(m, name, len);
	struct mval v;

	if (c == NULL || c->nq == 0) {
		m->bad++;
		return;
	}
	v = c->q[0];
	memmove(c->q, c->q + 1, (c->nq - 1) * sizeof *c->q);
	c->nq--;
	if (c->nback > 0)
		c->nback--;
	if (tag == 0) {
		free(v.data);
		return;
	}
	v.tag = tag;
	v.count++;
	if (tag > m->tag)
		m->tag = tag;
	vpush(&c->fl, &c->nfl, &c->flcap, v);
}

static void
m_ack(void *arg, const char *name, size_t len, uint64_t tag)
{
	struct model *m = arg;
	struct mchan *c = find(m, name, len);
	long i = fl_find(c, tag);

	if (i < 0) {
		m->bad++;
		return;
	}
	free(fl_take(c, (size_t)i).data);
}

static void
m_requeue(void *arg, const char *name, size_t len, uint64_t tag, uint32_t count)
{
	struct model *m = arg;
	struct mchan *c = find(m, name, len);
	long i = fl_find(c, tag);
	struct mval v;

	if (i < 0) {
		m->bad++;
		return;
	}
	v = fl_take(c, (size_t)i);
	v.tag = 0;
	v.count = count;
	give_back(c, v);
}

static void
m_close(void *arg, const char *name, size_t len, uint32_t code, const char *msg, size_t msg_len)
{
	struct model *m = arg;
	struct mchan *c = find(m, name, len);

	if (c == NULL || c->closed || msg_len > sizeof c->msg) {
		m->bad++;
		return;
	}
	c->closed = true;
	c->code = code;
	memcpy(c->msg, msg, msg_len);
	c->msg_len = msg_len;
}

static void
m_delete(void *arg, const char *name, size_t len)
{
	struct model *m = arg;
	struct mchan *c = find(m, name, len);

	if (c == NULL) {
		m->bad++;
		return;
	}
	chan_clear(c);
}

const struct journal_ops model_ops = {
	m_declare, m_push, m_pop, m_ack, m_close, m_delete, m_push_counted, m_requeue,
};

static bool
vals_equal(const struct mval *a, const struct mval *b, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (a[i].len != b[i].len || a[i].tag != b[i].tag || a[i].count != b[i].count ||
		    memcmp(a[i].data, b[i].data, a[i].len) != 0)
			return false;
	return true;
}

static bool
chan_equal(const struct mchan *a, const struct mchan *b)
{
	if (a->cap != b->cap || a->flags != b->flags || a->opts_len != b->opts_len ||
	    memcmp(a->opts, b->opts, a->opts_len) != 0 || a->closed != b->closed || a->code != b->code ||
	    a->msg_len != b->msg_len || memcmp(a->msg, b->msg, a->msg_len) != 0 || a->nq != b->nq ||
	    a->nback != b->nback || a->nfl != b->nfl)
		return false;
	/* in flight in delivery order: the order they go back in after a restart */
	return vals_equal(a->q, b->q, a->nq) && vals_equal(a->fl, b->fl, a->nfl);
}

bool
model_equal(const struct model *a, const struct model *b)
{
	size_t na = 0, nb = 0;

	if (a->bad != 0 || b->bad != 0)
		return false;
	for (int i = 0; i < M_CHANS; i++) {
		const struct mchan *y;

		nb += b->c[i].live;
		if (!a->c[i].live)
			continue;
		na++;
		y = find((struct model *)b, a->c[i].name, a->c[i].nlen);
		if (y == NULL || !chan_equal(&a->c[i], y))
			return false;
	}
	return na == nb;
}

void
model_copy(struct model *dst, const struct model *src)
{
	model_init(dst);
	for (int i = 0; i < M_CHANS; i++) {
		const struct mchan *s = &src->c[i];
		struct mchan *d = &dst->c[i];

		*d = *s;
		d->q = d->fl = NULL;
		d->nq = d->nfl = d->qcap = d->flcap = 0;
		for (size_t k = 0; k < s->nq; k++) {
			struct mval v = { malloc(s->q[k].len + 1), s->q[k].len, s->q[k].tag, s->q[k].count };

			memcpy(v.data, s->q[k].data, v.len);
			vpush(&d->q, &d->nq, &d->qcap, v);
		}
		for (size_t k = 0; k < s->nfl; k++) {
			struct mval v = { malloc(s->fl[k].len + 1), s->fl[k].len, s->fl[k].tag, s->fl[k].count };

			memcpy(v.data, s->fl[k].data, v.len);
			vpush(&d->fl, &d->nfl, &d->flcap, v);
		}
	}
	dst->bad = src->bad;
	dst->tag = src->tag;
}

void
model_settle(struct journal *j, struct model *m)
{
	for (int i = 0; i < M_CHANS; i++) {
		struct mchan *c = &m->c[i];

		while (c->live && c->nfl > 0) {
			CU_ASSERT_FATAL(journal_append_requeue(j, c->name, c->nlen, c->fl[0].tag,
			    c->fl[0].count) == 0);
			m_requeue(m, c->name, c->nlen, c->fl[0].tag, c->fl[0].count);
		}
	}
	CU_ASSERT_FATAL(journal_commit(j) == 0);
}

size_t
model_values(const struct model *m)
{
	size_t n = 0;

	for (int i = 0; i < M_CHANS; i++)
		n += m->c[i].nq + m->c[i].nfl;
	return n;
}

/* ---- the workload --------------------------------------------------------------- */

static uint64_t
rnd(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

void
workload_step(struct journal *j, struct model *m, uint64_t *rng, int nchans,
    void (*before)(void *arg, struct mchan *ch), void *arg)
{
	uint64_t counter = rnd(rng);
	char name[32];
	int len = snprintf(name, sizeof name, "chan.%d", (int)(rnd(rng) % (uint64_t)nchans));
	struct mchan *c = find(m, name, (size_t)len);
	unsigned r = (unsigned)(rnd(rng) % 100);

	if (c != NULL && before != NULL)
		before(arg, c);
	if (c == NULL) {
		char opts[16];
		int olen = snprintf(opts, sizeof opts, "opt%u", r);
		uint32_t cap = 1 + r, flags = r % 2;

		CU_ASSERT_FATAL(journal_append_declare(j, name, (size_t)len, cap, flags, opts, (size_t)olen) == 0);
		m_declare(m, name, (size_t)len, cap, flags, opts, (size_t)olen);
	} else if (r < 55 && !c->closed) {
		uint8_t v[96];
		size_t vlen = 1 + rnd(rng) % sizeof v;

		for (size_t i = 0; i < vlen; i++)
			v[i] = (uint8_t)(counter >> (8 * (i % 8)));
		CU_ASSERT_FATAL(journal_append_push(j, name, (size_t)len, v, vlen) == 0);
		m_push(m, name, (size_t)len, v, vlen);
	} else if (r < 85 && c->nq > 0) {
		/* flags bit 0 stands for an ack channel: its values go in flight under increasing tags */
		uint64_t tag = (c->flags & 1) ? ++m->tag : 0;

		CU_ASSERT_FATAL(journal_append_pop(j, name, (size_t)len, tag) == 0);
		m_pop(m, name, (size_t)len, tag);
	} else if (r < 90 && c->nfl > 0) {
		uint64_t tag = c->fl[rnd(rng) % c->nfl].tag;

		CU_ASSERT_FATAL(journal_append_ack(j, name, (size_t)len, tag) == 0);
		m_ack(m, name, (size_t)len, tag);
	} else if (r < 93 && c->nfl > 0) {
		/* NACK, ack_wait or a closed connection; now and then a reply never written: count unchanged */
		struct mval *v = &c->fl[rnd(rng) % c->nfl];
		uint64_t tag = v->tag;
		uint32_t count = v->count - (counter % 8 == 0);

		CU_ASSERT_FATAL(journal_append_requeue(j, name, (size_t)len, tag, count) == 0);
		m_requeue(m, name, (size_t)len, tag, count);
	} else if (r < 97 && !c->closed) {
		const char *msg = r % 2 ? "upstream failed" : "";

		CU_ASSERT_FATAL(journal_append_close(j, name, (size_t)len, r % 2 ? 7 : 0, msg, strlen(msg)) == 0);
		m_close(m, name, (size_t)len, r % 2 ? 7 : 0, msg, strlen(msg));
	} else if (r >= 97 || (c->closed && c->nq == 0)) {
		/* a drained closed channel goes, so that the workload keeps doing things */
		CU_ASSERT_FATAL(journal_append_delete(j, name, (size_t)len) == 0);
		m_delete(m, name, (size_t)len);
	}
}

void
workload(struct journal *j, struct model *m, uint64_t *rng, int nchans, int n, int every)
{
	for (int i = 1; i <= n; i++) {
		workload_step(j, m, rng, nchans, NULL, NULL);
		if (i % every == 0 || i == n)
			CU_ASSERT_FATAL(journal_commit(j) == 0);
	}
}

void
snapshot_chan(struct journal *j, const struct mchan *c)
{
	CU_ASSERT_FATAL(journal_append_declare(j, c->name, c->nlen, c->cap, c->flags, c->opts, c->opts_len) == 0);
	/* in flight first: each pop takes the head and counts a delivery, so these go back in flight in order */
	for (size_t i = 0; i < c->nfl; i++)
		CU_ASSERT_FATAL(journal_append_push_counted(j, c->name, c->nlen, c->fl[i].count - 1, c->fl[i].data,
		    c->fl[i].len) == 0);
	for (size_t i = 0; i < c->nfl; i++)
		CU_ASSERT_FATAL(journal_append_pop(j, c->name, c->nlen, c->fl[i].tag) == 0);
	/* then the values given back, with their counts, and those never delivered */
	for (size_t i = 0; i < c->nback; i++)
		CU_ASSERT_FATAL(journal_append_push_counted(j, c->name, c->nlen, c->q[i].count, c->q[i].data,
		    c->q[i].len) == 0);
	for (size_t i = c->nback; i < c->nq; i++)
		CU_ASSERT_FATAL(journal_append_push(j, c->name, c->nlen, c->q[i].data, c->q[i].len) == 0);
	if (c->closed)
		CU_ASSERT_FATAL(journal_append_close(j, c->name, c->nlen, c->code, c->msg, c->msg_len) == 0);
}

/* ---- files ---------------------------------------------------------------------- */

void
jput_crc(uint8_t *rec, size_t plen)
{
	uint32_t crc = crc32c_extend(crc32c(rec, 5), rec + 9, plen);

	for (int i = 0; i < 4; i++)
		rec[5 + i] = (uint8_t)(crc >> (8 * i));
}

uint8_t *
slurp(const char *path, size_t *len)
{
	int fd = open(path, O_RDONLY);
	uint8_t *p;

	CU_ASSERT_FATAL(fd >= 0);
	*len = (size_t)jt_size(path);
	p = malloc(*len + 1);
	CU_ASSERT_FATAL(p != NULL && pread(fd, p, *len, 0) == (ssize_t)*len);
	close(fd);
	return p;
}

void
spit(const char *path, const uint8_t *p, size_t len)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);

	CU_ASSERT_FATAL(fd >= 0);
	CU_ASSERT_FATAL(write(fd, p, len) == (ssize_t)len);
	close(fd);
}

void
flip(const char *path, uint64_t off)
{
	size_t len;
	uint8_t *p = slurp(path, &len);

	CU_ASSERT_FATAL(off < len);
	p[off] ^= 0x10;
	spit(path, p, len);
	free(p);
}

int
count_files(const char *dir, const char *suffix)
{
	char path[128];
	struct dirent *de;
	size_t sl = strlen(suffix);
	int n = 0;
	DIR *d;

	snprintf(path, sizeof path, "%s/journal", dir);
	d = opendir(path);
	CU_ASSERT_FATAL(d != NULL);
	while ((de = readdir(d)) != NULL) {
		size_t len = strlen(de->d_name);

		n += len >= sl && strcmp(de->d_name + len - sl, suffix) == 0;
	}
	closedir(d);
	return n;
}

void
copy_dir(const char *from, const char *to)
{
	char cmd[256];

	snprintf(cmd, sizeof cmd, "cp -a %s/journal %s/", from, to);
	CU_ASSERT_FATAL(system(cmd) == 0);
}

/* ---- temp dirs and opening ------------------------------------------------------ */

void
jt_mkdir(char *dir, size_t cap)
{
	snprintf(dir, cap, "/tmp/test_journal.XXXXXX");
	CU_ASSERT_FATAL(mkdtemp(dir) != NULL);
}

static int
rm_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	return remove(path);
}

void
jt_rmdir(const char *dir)
{
	nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

void
jt_seg(const char *dir, uint64_t seq, char *buf, size_t cap)
{
	snprintf(buf, cap, "%s/journal/%016llx.seg", dir, (unsigned long long)seq);
}

uint64_t
jt_size(const char *path)
{
	struct stat sb;

	return stat(path, &sb) == 0 ? (uint64_t)sb.st_size : 0;
}

struct journal_opts
jt_opts(uint64_t segment_bytes)
{
	struct journal_opts o;

	journal_opts_init(&o);
	o.segment_bytes = segment_bytes;
	return o;
}

int
jt_open(const char *dir, const struct journal_opts *o, struct model *m, struct journal **j,
    char **cause)
{
	model_free(m);
	model_init(m);
	*cause = NULL;
	return journal_open(dir, o, &model_ops, m, j, cause);
}

int
jt_open_logged(const char *dir, const struct journal_opts *o, struct model *m, struct journal **j,
    char **cause, char *log, size_t cap)
{
	char path[128];
	int fd, saved, rc;
	ssize_t n;

	snprintf(path, sizeof path, "%s/log", dir);
	fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
	CU_ASSERT_FATAL(fd >= 0);
	saved = dup(STDERR_FILENO);
	dup2(fd, STDERR_FILENO);
	rc = jt_open(dir, o, m, j, cause);
	dup2(saved, STDERR_FILENO);
	close(saved);
	n = pread(fd, log, cap - 1, 0);
	log[n > 0 ? n : 0] = '\0';
	close(fd);
	unlink(path);
	return rc;
}
