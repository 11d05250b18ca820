/*
 * linkstest.h: what the parts of test_links share (test_links.c,
 * test_links_fanout.c): the suite's connections and request encoder, and
 * the helpers that start links, read their replies, and move values.
 *
 * SPDX-License-Identifier: BSD-2-Clause
 */
#ifndef CHAND_LINKSTEST_H
#define CHAND_LINKSTEST_H

#include <stdbool.h>
#include <stdint.h>

#include "codec.h"
#include "testutil.h"

#define NAME_CAP 256

/* ctl creates links and reads their replies; d sends and receives data; adm polls INFO, STATS, WAITERS. */
extern struct test_conn ctl, d, adm;
extern struct proto_out o;		/* made and freed in main: both suites use it */

/*
 * Send a link request on c; read its first reply. Returns the status
 * (STATUS_STARTED on success, names copied into outs) and the id in *id.
 */
int link_start(struct test_conn *c, const struct proto_request *l, int64_t wait_us, uint64_t *id,
    char outs[][NAME_CAP]);
/* The final reply of a link on c: its status; *sent on OK. */
int link_end(struct test_conn *c, uint64_t op, uint64_t id, uint64_t *sent);
/* RECV into buf; returns the status; *kind is the value's kind (VALUE_NONE for nil). */
int recv_value(struct test_conn *c, const char *name, char *buf, size_t cap, bool *ok,
    enum proto_value_kind *kind);
/* Receive the next value from name and check it is the bin want. */
void expect_value(const char *name, const char *want);
/* Receive from name and check it is closed. */
void expect_closed(const char *name);
/* Nothing waits anywhere and no request is pending (other than those of this suite's conns). */
bool await_no_waiters(void);
bool chan_is_closed(const char *name);
/* MAKE, SEND and CLOSE through d, which must succeed. */
void make(const char *name, uint64_t cap);
void send_ok(const char *name, const char *v);
void close_ok(const char *name);
/* A link request with one input (name) and anonymous unbuffered outputs. */
struct proto_request one_input(uint64_t op, const char *in, const char *done);

/* Adds the fan-out tests to the "links" suite s. */
void register_links_fanout(CU_pSuite s);

#endif
