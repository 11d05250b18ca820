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

/* Stop chand: cleanly (SIGTERM, exit 0 expected) or with SIGKILL. */
static inline void
dur_stop(struct dur *d, bool kill9)
{
	if (d->conn != NULL)
		chan_conn_close(d->conn);
	d->conn = NULL;
	if (!d->up)
		return;
	d->up = false;
	if (kill9)
		test_server_kill(&d->srv);
	else
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

#endif
