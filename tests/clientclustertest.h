/*
 * clientclustertest.h: what the parts of test_client_cluster share
 * (test_client_cluster.c, test_client_cluster_ack.c,
 * test_client_cluster_admin.c): the suite's seed, a cluster connection
 * dialled through it, the node that owns a channel and a channel made on
 * a given node; and the other parts' tests, which test_client_cluster.c
 * registers among its own.
 *
 * SPDX-License-Identifier: BSD-2-Clause
 */
#ifndef CHAND_CLIENTCLUSTERTEST_H
#define CHAND_CLIENTCLUSTERTEST_H

#include <stddef.h>

#include "chanclient.h"
#include "clustertest.h"

#define NODES CT_NODES
#define TTL_S CT_TTL_S
#define NCHANS 30		/* the channels of test_owner_direct */

extern char seeds[128];		/* "cluster://127.0.0.1:P0": node 0 (suite_init) */

/* A cluster connection dialled through seeds; the test ends if it cannot. */
chan_conn_t *dial_cluster(void);
/* The node whose port addr names ("127.0.0.1:PORT"), or -1. */
int node_of(const char *addr);
/* The node that owns name as the library sees it, checked against the node itself (INFO there is OK). */
int owner(chan_conn_t *c, const char *name);
/* A channel named base-N made through c on node want (trying N = 0, 1, ...), its name in name. */
chan_t *make_on(chan_conn_t *c, int want, const char *base, size_t cap, char *name, size_t ncap);

/* test_client_cluster_admin.c: the tests of the suite that needs no etcd. */
void register_client_cluster_no_etcd(CU_pSuite s);
/* test_client_cluster_ack.c: ack channels through the cluster connection. */
void register_client_cluster_ack(CU_pSuite s);
/* test_client_cluster_admin.c: CLUSTER_NODES and chanctl's cluster commands. */
void register_client_cluster_admin(CU_pSuite s);
/* test_client_cluster_admin.c: chanctl over cluster+tls:// (the TLS suite's seeds). */
void register_client_cluster_tls_admin(CU_pSuite s);

#endif
