/*
 * example.h: the few lines every example shares.
 *
 * Dialing argv[1], dying on an error (the examples are smoke tests: any
 * failure exits 1), and integers carried as decimal text, since a chand
 * value is just bytes. Everything else is plain libchanclient.
 *
 * SPDX-License-Identifier: BSD-2-Clause
 */
#ifndef CHAND_EXAMPLE_H
#define CHAND_EXAMPLE_H

#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chanclient.h"

/* An error is <= CHAN_EBASE; chan_select's indexes and CHAN_DEFAULT are not. */
#define CHECK(call) do {						\
	int check_rc_ = (call);						\
	if (check_rc_ <= CHAN_EBASE)					\
		die(#call, check_rc_);					\
} while (0)

static inline __attribute__((noreturn)) void
die(const char *what, int err)
{
	fflush(stdout);
	fprintf(stderr, "%s: %s\n", what, chan_strerror(err));
	exit(1);
}

static inline const char *
example_addr(int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "usage: %s tcp://HOST:PORT | unix:/PATH\n", argv[0]);
		exit(2);
	}
	return argv[1];
}

static inline chan_conn_t *
example_dial(const char *addr)
{
	chan_conn_t *conn;

	CHECK(chan_dial(NULL, addr, NULL, &conn));
	return conn;
}

static inline void
example_thread(pthread_t *t, void *(*fn)(void *), void *arg)
{
	if (pthread_create(t, NULL, fn, arg) != 0) {
		perror("pthread_create");
		exit(1);
	}
}

/* ch <- n */
static inline int
send_int(chan_ctx_t *ctx, chan_t *ch, long n)
{
	char buf[24];
	int len = snprintf(buf, sizeof buf, "%ld", n);

	return chan_send(ctx, ch, buf, (size_t)len);
}

/* n, ok := <-ch */
static inline int
recv_int(chan_ctx_t *ctx, chan_t *ch, long *n, bool *ok)
{
	chan_value_t v;
	int rc;

	*n = 0;
	*ok = false;
	if ((rc = chan_recv(ctx, ch, &v, ok)) != CHAN_OK)
		return rc;
	*n = *ok && v.kind == CHAN_VALUE_BYTES ? strtol(v.data, NULL, 10) : 0;
	chan_value_clear(&v);
	return CHAN_OK;
}

/* A select case: a receive from ch, or a send of the decimal text in buf. */
static inline chan_case_t
case_recv(chan_t *ch)
{
	return (chan_case_t){ .dir = CHAN_DIR_RECV, .ch = ch };
}

static inline chan_case_t
case_send(chan_t *ch, const char *buf)
{
	return (chan_case_t){ .dir = CHAN_DIR_SEND, .ch = ch, .data = buf, .len = strlen(buf) };
}

/* select { case <-done: return false; case out <- n: return true } */
static inline bool
send_or_done(chan_t *done, chan_t *out, long n)
{
	char buf[24];
	chan_case_t cases[2];
	int idx;

	snprintf(buf, sizeof buf, "%ld", n);
	cases[0] = case_recv(done);
	cases[1] = case_send(out, buf);
	idx = chan_select(NULL, cases, 2, false);
	CHECK(idx);
	return idx == 1;
}

/* The notes' naive primality test (trial division): slow on purpose, work for the fan-out. */
static inline bool
is_prime(long v)
{
	long d;

	if (v < 2)
		return false;
	for (d = 2; d * d <= v; d++)
		if (v % d == 0)
			return false;
	return true;
}

#endif
