/*
 * srvtest.h: small request helpers for the tests that talk to a real chand
 * over the raw protocol (test_server.c, test_server_limits.c, test_stream.c). Each helper
 * encodes one request, writes it, and (for the rq_* forms) reads its reply
 * with a 10 s bound, failing the test when the reply does not come.
 *
 * SPDX-License-Identifier: BSD-2-Clause
 */
#ifndef CHAND_SRVTEST_H
#define CHAND_SRVTEST_H

#include "codec.h"
#include "testutil.h"

#define REPLY_MS 10000

/* The reply's value is exactly the bytes of the string s. */
#define ST_VALUE_IS(r, s) ((r).value.len == strlen(s) && memcmp((r).value.data, s, strlen(s)) == 0)

/*
 * Two fresh connections to port, for suites whose every test uses two
 * clients: call these from the CUnit set-up and tear-down, so that one
 * failed test cannot confuse the next.
 */
void st_pair_open(struct test_conn *a, struct test_conn *b, int port);
void st_pair_close(struct test_conn *a, struct test_conn *b);

/* Send one frame from a proto_out (then reset it). */
void st_write(struct test_conn *c, struct proto_out *o);

/* Fire-and-forget requests: return the id used. */
uint64_t st_send(struct test_conn *c, const char *name, const void *v, size_t len, int64_t wait_us);
uint64_t st_recv(struct test_conn *c, const char *name, int64_t wait_us);
/* SEND and RECV (no deadline) asking for a deferred reply, and WANT (PROTOCOL.md §15). */
uint64_t st_send_deferred(struct test_conn *c, const char *name, const void *v, size_t len);
uint64_t st_recv_deferred(struct test_conn *c, const char *name);
uint64_t st_want(struct test_conn *c, uint64_t target);
uint64_t st_ping(struct test_conn *c);
uint64_t st_name_op(struct test_conn *c, uint64_t op, const char *name);
uint64_t st_select(struct test_conn *c, const struct proto_case *cases, size_t n, bool dflt,
    int64_t wait_us);

/* Read the next reply to op; fails the test on timeout. */
void st_reply(struct test_conn *c, uint64_t op, struct proto_reply *r);
/* The next reply on c (REPLY_MS), decoded as a STREAM's when its id is sid, else as a reply to op. */
void st_next(struct test_conn *c, uint64_t sid, uint64_t op, struct proto_reply *r);

/* Request + reply. */
int st_make(struct test_conn *c, const char *name, uint64_t cap);
int st_send_wait(struct test_conn *c, const char *name, const char *v, int64_t wait_us);
/* RECV; *ok and the value (copied into buf, NUL-terminated) returned. */
int st_recv_wait(struct test_conn *c, const char *name, int64_t wait_us, char *buf, size_t cap,
    bool *ok);
int st_close(struct test_conn *c, const char *name);
/* INFO; returns its status. */
int st_info(struct test_conn *c, const char *name, struct proto_chan_info *info);

/*
 * Wait (up to 10 s, polling INFO through c) until the channel shows
 * senders/receivers waiting; -1 for "don't care". Returns true when it did.
 */
bool st_await_waiters(struct test_conn *c, const char *name, int64_t senders, int64_t receivers);

/* One STATS counter (PROTOCOL.md §11) through c; UINT64_MAX if the server has no such key. */
uint64_t st_stat(struct test_conn *c, const char *key);

/* A unique channel name for this test run. */
const char *st_name(const char *base);

#endif
