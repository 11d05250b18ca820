/*
 * limitstest.h: what the parts of test_server_limits share
 * (test_server_limits.c, test_server_limits_writes.c,
 * test_server_limits_lifecycle.c): the chand of the current suite and the
 * bystander, a connection that must keep working through everything.
 *
 * SPDX-License-Identifier: BSD-2-Clause
 */
#ifndef CHAND_LIMITSTEST_H
#define CHAND_LIMITSTEST_H

#include "testutil.h"

extern struct test_server srv;
extern struct test_conn bystander;	/* must keep working through everything */

/* Start chand with conf's lines (NULL: none) and connect the bystander: a suite's set-up. */
int start(const char *conf);
/* Close the bystander and stop chand: a suite's tear-down. */
int stop(void);
/* A PING through the bystander is answered OK. */
void assert_bystander_ok(void);

/* The suites of the other parts, in the order test_server_limits.c registers them. */
void register_server_limits_writes(void);
void register_server_limits_lifecycle(void);

#endif
