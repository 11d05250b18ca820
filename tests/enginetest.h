/*
 * enginetest.h: what the parts of test_engine share (test_engine.c,
 * test_engine_select.c, test_engine_lifecycle.c): an engine with a fixed
 * seed, channels, and sends and receives that must complete now or must
 * wait, each recording what its done callback saw.
 *
 * SPDX-License-Identifier: BSD-2-Clause
 */
#ifndef CHAND_ENGINETEST_H
#define CHAND_ENGINETEST_H

#include <stdbool.h>
#include <stdint.h>

#include "server/engine.h"
#include "server/value.h"

/* What a pending operation's done callback saw. */
struct rec {
	int calls;
	struct engine_result res;
	struct engine_op *op;
};

void rec_done(void *arg, struct engine_result *res);
/* An engine with these limits (0: none), seeded 12345. */
struct engine *new_engine(uint64_t max_channels, uint64_t max_bytes);
/* Make a new channel (NULL: anonymous); fails the test if it existed. */
struct chan *mk(struct engine *e, const char *name, uint32_t cap);
struct value *V(const char *s);
bool value_is(const struct value *v, const char *s);
/* Submit one send; *now or *r gets the outcome. Returns submit's rc. */
int op_send(struct engine *e, struct chan *ch, const char *s, unsigned flags, struct rec *r,
    struct engine_result *now);
/* A send or receive that must complete now with status OK. */
void send_now(struct engine *e, struct chan *ch, const char *s);
void recv_now(struct engine *e, struct chan *ch, const char *want);
/* A send or receive that must wait. */
void send_wait(struct engine *e, struct chan *ch, const char *s, struct rec *r);
void recv_wait(struct engine *e, struct chan *ch, struct rec *r);
/* A receive that may not wait finds nothing: DEADLINE_EXCEEDED. */
void expect_nothing_to_recv(struct engine *e, struct chan *ch);

/* The suites of the other parts, in the order test_engine.c registers them. */
void register_engine_select(void);
void register_engine_lifecycle(void);
void register_engine_lend(void);

#endif
