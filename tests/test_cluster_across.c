/*
 * test_cluster_across.c: what runs across the nodes of a cluster (PROTOCOL.md
 * §17, issue 20), each suite on a fresh etcd and three fresh nodes: a SELECT
 * over channels on three nodes (test_cluster_select.c, the load runs in
 * test_cluster_select_load.c, the home's own group in
 * test_cluster_selfpeer.c), the same over ack channels
 * (test_cluster_xack.c), links (test_cluster_links.c, how they end in
 * test_cluster_links_end.c) and STREAM (test_cluster_stream.c). The cluster
 * itself (joins, routing, forwarding, failover) is test_cluster's; the two
 * programs are apart so that `make -j check` runs them side by side.
 * Skipped (with a message) without /usr/bin/etcd.
 *
 * SPDX-License-Identifier: BSD-2-Clause
 */
#include <stdio.h>
#include <unistd.h>

#include "clustertest.h"

static void
add_select(CU_pSuite s)
{
	ct_add_select_tests(s);
	ct_add_selfpeer_tests(s);
	ct_add_select_load_tests(s);
}

static void
add_xack(CU_pSuite s)
{
	ct_add_xack_tests(s);
	ct_add_xack_load_tests(s);
}

static void
register_suites(void)
{
	if (access(CT_ETCD, X_OK) != 0) {
		printf("test_cluster_across: %s is missing (apt-get install etcd-server): skipped\n",
		    CT_ETCD);
		return;
	}
	ct_nodes_suite("cluster_select", ct_steady_suite_init, add_select);
	ct_nodes_suite("cluster_xack", ct_steady_suite_init, add_xack);
	ct_nodes_suite("cluster_links", ct_steady_suite_init, ct_add_link_tests);
	ct_nodes_suite("cluster_stream", ct_steady_suite_init, ct_add_stream_tests);
}

int
main(int argc, char **argv)
{
	return ct_main(argc, argv, register_suites);
}
