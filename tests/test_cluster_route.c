/*
 * test_cluster_route.c: where requests go in a cluster (PROTOCOL.md §17):
 * placement by the documented rendezvous hash, requests held for etcd in
 * their connection's order, a SELECT routed whole. Run by test_cluster.c
 * on its nodes n0..n2.
 *
 * SPDX-License-Identifier: BSD-2-Clause
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clustertest.h"

/* Every MAKE lands where the documented rendezvous formula says, whichever node it was sent to. */
static void
test_placement(void)
{
	for (int k = 0; k < 15; k++) {
		const char *name = st_name("place");

		CU_ASSERT_EQUAL(ct_make_anywhere(k % CT_NODES, name), ct_expected_place(name, 7));
	}
}

/*
 * Requests pipelined behind a MAKE that waits for its claim run after it,
 * in order; an id reused while its request waits for etcd closes the
 * connection, as any duplicate id does: the waiting request is answered
 * CANCELED first, as every pending one is (PROTOCOL.md §2).
 */
static void
test_held_order(void)
{
	const char *name = ct_name_placed_on(0, "order");
	struct test_conn c;
	struct proto_reply r;
	uint64_t id0;
	const uint8_t *body;

	CU_ASSERT_FATAL(ct_open_client(&c, ct_node_port(0), false) == 0);
	id0 = c.next_id;
	proto_req_make(&ct_out, c.next_id++, name, strlen(name), 1);
	st_write(&c, &ct_out);
	st_send(&c, name, "v", 1, 0);
	proto_req_name(&ct_out, OP_LEN, c.next_id++, PROTO_WAIT_FOREVER, name, strlen(name));
	st_write(&c, &ct_out);
	st_reply(&c, OP_MAKE, &r);
	CU_ASSERT_EQUAL(r.id, id0);
	CU_ASSERT_EQUAL(r.status, STATUS_OK);
	CU_ASSERT(r.created);
	st_reply(&c, OP_SEND, &r);
	CU_ASSERT_EQUAL(r.id, id0 + 1);
	CU_ASSERT_EQUAL(r.status, STATUS_OK);
	st_reply(&c, OP_LEN, &r);
	CU_ASSERT_EQUAL(r.id, id0 + 2);
	CU_ASSERT_EQUAL(r.n, 1);
	test_conn_close(&c);
	/* MAKE and PING with one id, in one write: the PING finds the MAKE waiting for etcd */
	name = ct_name_placed_on(0, "dup");
	CU_ASSERT_FATAL(ct_open_client(&c, ct_node_port(0), false) == 0);
	proto_req_make(&ct_out, 7, name, strlen(name), 0);
	proto_req_ping(&ct_out, 7);
	st_write(&c, &ct_out);
	CU_ASSERT_EQUAL(test_conn_reply(&c, OP_MAKE, REPLY_MS, &r), 0);
	CU_ASSERT_EQUAL(r.id, 7);
	CU_ASSERT_EQUAL(r.status, STATUS_CANCELED);
	CU_ASSERT_EQUAL(test_conn_reply(&c, OP_PING, REPLY_MS, &r), 0);
	CU_ASSERT_EQUAL(r.id, 0);
	CU_ASSERT_EQUAL(r.status, STATUS_PROTOCOL);
	while (test_conn_frame(&c, REPLY_MS, &body) > 0)
		;
	CU_ASSERT_EQUAL(test_conn_frame(&c, 100, &body), 0);
	test_conn_close(&c);
}

/*
 * Many connections at once, each with requests held for etcd (LENs of
 * channels nobody made, pipelined, one after the other asking etcd): each
 * is answered NOT_FOUND, in its connection's order, and the node serves on.
 */
static void
test_held_many(void)
{
	enum { CONNS = 100, EACH = 12 };
	struct test_conn *c = calloc(CONNS, sizeof *c);
	uint64_t first[CONNS];
	struct proto_reply r;
	char name[64];
	size_t wrong = 0;

	CU_ASSERT_FATAL(c != NULL);
	for (int i = 0; i < CONNS; i++) {
		CU_ASSERT_FATAL(ct_open_client(&c[i], ct_node_port(0), false) == 0);
		first[i] = c[i].next_id;
		for (int k = 0; k < EACH; k++) {
			snprintf(name, sizeof name, "never.%d.%d", i, k % 3);
			proto_req_name(&ct_out, OP_LEN, c[i].next_id++, PROTO_WAIT_FOREVER, name,
			    strlen(name));
		}
		st_write(&c[i], &ct_out);
	}
	for (int i = 0; i < CONNS; i++) {
		for (int k = 0; k < EACH; k++) {
			st_reply(&c[i], OP_LEN, &r);
			wrong += r.id != first[i] + (uint64_t)k || r.status != STATUS_NOT_FOUND;
		}
		test_conn_close(&c[i]);
	}
	CU_ASSERT_EQUAL(wrong, 0);
	CU_ASSERT_FATAL(ct_open_client(&c[0], ct_node_port(0), false) == 0);
	CU_ASSERT_EQUAL(st_stat(&c[0], "cluster_serving"), 1);
	test_conn_close(&c[0]);
	free(c);
}

/* A SELECT is routed whole: its channels on one other node, MOVED there; on two nodes, run from here. */
static void
test_select_routing(void)
{
	char a[64], b[64], other[64];
	struct proto_case cases[2];
	struct test_conn c;
	struct proto_reply r;
	char want[16];

	/* st_name's buffers are reused: copy */
	snprintf(a, sizeof a, "%s", ct_name_placed_on(1, "sela"));
	snprintf(b, sizeof b, "%s", ct_name_placed_on(1, "selb"));
	snprintf(other, sizeof other, "%s", ct_name_placed_on(2, "selc"));
	cases[0] = (struct proto_case){ .dir = 0, .name = a, .name_len = (uint32_t)strlen(a) };
	cases[1] = (struct proto_case){ .dir = 0, .name = b, .name_len = (uint32_t)strlen(b) };
	CU_ASSERT_EQUAL(ct_make_anywhere(0, a), 1);
	CU_ASSERT_EQUAL(ct_make_anywhere(0, b), 1);
	CU_ASSERT_EQUAL(ct_make_anywhere(0, other), 2);
	CU_ASSERT_FATAL(ct_open_client(&c, ct_node_port(0), true) == 0);
	st_select(&c, cases, 2, true, 0);
	st_reply(&c, OP_SELECT, &r);
	CU_ASSERT_EQUAL(r.status, STATUS_MOVED);
	snprintf(want, sizeof want, "%d", ct_node_port(1));
	CU_ASSERT(r.msg_len > 0 && memmem(r.msg, r.msg_len, want, strlen(want)) != NULL);
	cases[1].name = other;
	cases[1].name_len = (uint32_t)strlen(other);
	/* a cross-node select, coordinated here (test_cluster_select.c): nothing ready, the default */
	st_select(&c, cases, 2, true, 0);
	st_reply(&c, OP_SELECT, &r);
	CU_ASSERT_EQUAL(r.status, STATUS_OK);
	CU_ASSERT_EQUAL(r.index, -1);
	test_conn_close(&c);
	/* on the owner, the SELECT of its two channels runs: nothing ready, so the default */
	cases[1].name = b;
	cases[1].name_len = (uint32_t)strlen(b);
	CU_ASSERT_FATAL(ct_open_client(&c, ct_node_port(1), true) == 0);
	st_select(&c, cases, 2, true, 0);
	st_reply(&c, OP_SELECT, &r);
	CU_ASSERT_EQUAL(r.status, STATUS_OK);
	CU_ASSERT_EQUAL(r.index, -1);
	test_conn_close(&c);
}

void
ct_add_route_tests(CU_pSuite s)
{
	test_add(s, "placement is PROTOCOL.md's rendezvous hash", test_placement);
	test_add(s, "held requests keep their order; a held id reused", test_held_order);
	test_add(s, "many connections' requests held at once, each in order", test_held_many);
	test_add(s, "a SELECT is routed whole", test_select_routing);
}
