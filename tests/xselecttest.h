/*
 * xselecttest.h: what the parts of test_cluster_select share
 * (test_cluster_select.c, test_cluster_select_send.c): a test's three
 * channels, channel i on node i, the receive cases over them and the
 * checks of a select's end; and the send part's tests, which
 * test_cluster_select.c registers among its own.
 *
 * SPDX-License-Identifier: BSD-2-Clause
 */
#ifndef CHAND_XSELECTTEST_H
#define CHAND_XSELECTTEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "clustertest.h"

/* Channel i of a test lives on node i. */
extern char cts_names[CT_NODES][CT_NAME_CAP];

/* Three channels with cap, channel i placed and made on node i; node 0 knows their owners. */
void cts_make_three(const char *base, uint64_t cap);
/* Node 0 has heard every answer node i's groups sent before now. */
void cts_home_heard(int i);
/* A receive case on channel i. */
struct proto_case cts_recv_case(int i);
/* A receive case on node 1's channel and one on node 2's, the select at node 0 their home. */
void cts_remote_pair(struct proto_case cases[2]);
/* A receive case on each of the three channels. */
void cts_recv_cases(struct proto_case *cases);
/* No receiver is left waiting on any of the three channels (each polled, with a bound). */
bool cts_no_waiters_anywhere(void);
/* The value of a SELECT reply as a string (in buf). */
const char *cts_value_of(const struct proto_reply *r, char *buf, size_t cap);

/* test_cluster_select_send.c: send cases (after the first four tests); an owner that dies (last). */
void ct_add_select_send_tests(CU_pSuite s);
void ct_add_select_owner_tests(CU_pSuite s);

#endif
