/*
 * durtest.h: what the durable channel tests (issue 18) share: a data_dir
 * of their own that outlives each chand they start on it, and the client
 * calls they repeat. Static functions: each test file includes it once.
 *
 * SPDX-License-Identifier: BSD-2-Clause
 */
#ifndef CHAND_DURTEST_H
#define CHAND_DURTEST_H

#include <CUnit/CUnit.h>
#include <glob.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chanclient.h"
#include "testutil.h"

/* A data_dir, and the chand running on it (if any). */
struct dur {
	char dir[64];
	char addr[64];
	char fsync[16];
	const char *extra;		/* more config lines, or NULL */
	struct test_server srv;
	bool up;
	chan_conn_t *conn;
};

static inline void
dur_init(struct dur *d, const char *fsync)
{
	memset(d, 0, sizeof *d);
	snprintf(d->dir, sizeof d->dir, "/tmp/chand-durable.XXXXXX");
	CU_ASSERT_FATAL(mkdtemp(d->dir) != NULL);
	snprintf(d->fsync, sizeof d->fsync, "%s", fsync);
}

/* Start chand on d's data_dir (args: more of chand's arguments) and dial it. 0 or -1. */
static inline int
dur_start_args(struct dur *d, const char *const *args)
{
	char conf[400];

	snprintf(conf, sizeof conf, "data_dir = %s\nfsync = %s\n%s\n", d->dir, d->fsync,
	    d->extra ? d->extra : "");
	if (test_server_start_args(&d->srv, conf, args) < 0)
		return -1;
	d->up = true;
	snprintf(d->addr, sizeof d->addr, "tcp://127.0.0.1:%d", d->srv.port);
	return chan_dial(chan_background(), d->addr, NULL, &d->conn) == CHAN_OK ? 0 : -1;
}

static inline int
dur_start(struct dur *d)
{
	return dur_start_args(d, NULL);
}

/*
 * Stop chand: cleanly (SIGTERM, exit 0 expected; d's connection closed
 * first) or with SIGKILL (before d's connection closes: chand never sees
 * it end, so what it held is still in flight at the crash).
 */
static inline void
dur_stop(struct dur *d, bool kill9)
{
	if (d->up && kill9)
		test_server_kill(&d->srv);
	if (d->conn != NULL)
		chan_conn_close(d->conn);
	d->conn = NULL;
	if (!d->up)
		return;
	d->up = false;
	if (!kill9)
		CU_ASSERT_EQUAL(test_server_stop(&d->srv), 0);
}

static inline void
dur_free(struct dur *d)
{
	char cmd[128];

	dur_stop(d, false);
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", d->dir);
	CU_ASSERT_EQUAL(system(cmd), 0);
}

/* The oldest (first) or newest segment file of d's journal into path; false if none. */
static inline bool
dur_segment(const struct dur *d, bool newest, char *path, size_t cap)
{
	char pat[128];
	glob_t g;
	bool found;

	snprintf(pat, sizeof pat, "%s/journal/*.seg", d->dir);
	if (glob(pat, 0, NULL, &g) != 0)
		return false;
	found = g.gl_pathc > 0;
	if (found)
		snprintf(path, cap, "%s", g.gl_pathv[newest ? g.gl_pathc - 1 : 0]);
	globfree(&g);
	return found;
}

static inline bool
dur_last_segment(const struct dur *d, char *path, size_t cap)
{
	return dur_segment(d, true, path, cap);
}

static inline bool
dur_first_segment(const struct dur *d, char *path, size_t cap)
{
	return dur_segment(d, false, path, cap);
}

/* MAKE a durable channel of cap on d's connection. */
static inline int
dur_make(struct dur *d, const char *name, size_t cap, chan_t **out)
{
	chan_delivery_opts_t o = CHAN_DELIVERY_OPTS_INIT;

	o.ack_wait_ns = 0;
	o.durable = true;
	return chan_make_opts(chan_background(), d->conn, name, cap, &o, out);
}

/* Receive without waiting: the value as a string in buf, 1; 0 when empty; <0 an error. */
static inline int
dur_try_recv(chan_t *ch, char *buf, size_t cap, bool *ok)
{
	chan_value_t v = { 0 };
	int rc = chan_try_recv(chan_background(), ch, &v, ok);

	if (rc == CHAN_EWOULDBLOCK)
		return 0;
	if (rc != CHAN_OK)
		return rc;
	snprintf(buf, cap, "%.*s", (int)v.len, v.data ? (const char *)v.data : "");
	chan_value_clear(&v);
	return 1;
}

/* Kill chand (SIGKILL) or stop it cleanly, and start it again on the same data_dir. */
static inline void
dur_restart(struct dur *d, bool kill9)
{
	dur_stop(d, kill9);
	CU_ASSERT_FATAL(dur_start(d) == 0);
}

/* Open the channel name on d's connection. */
static inline chan_t *
dur_open(struct dur *d, const char *name)
{
	chan_t *ch;

	CU_ASSERT_FATAL(chan_open(chan_background(), d->conn, name, &ch) == CHAN_OK);
	return ch;
}

/* LEN of the channel name (in flight included, PROTOCOL.md §16); SIZE_MAX on an error. */
static inline size_t
dur_len(struct dur *d, const char *name)
{
	chan_t *ch = dur_open(d, name);
	size_t n = SIZE_MAX;

	CU_ASSERT_EQUAL(chan_len(chan_background(), ch, &n), CHAN_OK);
	chan_free(ch);
	return n;
}

/*
 * Receive the next value of the ack channel ch, waiting (30 s at most, for
 * a value that never comes): it must be want, delivered count times with
 * this one. Returns its tag, 0 on a mismatch (printed). m (may be NULL)
 * keeps the message, for a NACK; the caller clears it.
 */
static inline uint64_t
dur_expect(chan_t *ch, const char *want, uint32_t count, chan_msg_t *m)
{
	chan_msg_t own = { 0 };
	chan_ctx_t *ctx;
	uint64_t tag = 0;
	bool ok;
	int rc;

	if (m == NULL)
		m = &own;
	CU_ASSERT_FATAL(chan_with_deadline(&ctx, NULL, chan_now() + 30 * CHAN_SEC) == CHAN_OK);
	rc = chan_recv_msg(ctx, ch, m, &ok);
	chan_ctx_free(ctx);
	if (rc != CHAN_OK)
		printf("\n    wanted %s count %u, got %s\n", want, (unsigned)count, chan_strerror(rc));
	CU_ASSERT_FATAL(rc == CHAN_OK && ok);
	if (m->tag != 0 && m->count == count && m->value.len == strlen(want) &&
	    memcmp(m->value.data, want, m->value.len) == 0)
		tag = m->tag;
	else
		printf("\n    wanted %s count %u, got %.*s count %u\n", want, (unsigned)count,
		    (int)m->value.len, (const char *)m->value.data, (unsigned)m->count);
	CU_ASSERT(tag != 0);
	chan_msg_clear(&own);
	return tag;
}

/*
 * In and out of a durable channel "churn" until chand's log says the
 * journal was compacted (d->extra sets a small journal_compact_min).
 */
static inline void
dur_churn_until_compacted(struct dur *d)
{
	chan_t *ch;

	CU_ASSERT_FATAL(dur_make(d, "churn", 4, &ch) == CHAN_OK);
	for (int k = 0; k < 3000 && !test_server_log_has(&d->srv, "journal compacted"); k++) {
		char buf[64];
		bool ok;

		CU_ASSERT_EQUAL(chan_send(chan_background(), ch, "0123456789abcdef", 16), CHAN_OK);
		CU_ASSERT_EQUAL(dur_try_recv(ch, buf, sizeof buf, &ok), 1);
	}
	CU_ASSERT(test_server_log_has(&d->srv, "journal compacted"));
	chan_free(ch);
}

#endif
