/*
 * test_cluster_selfpeer.c: a cross-node select's group for its home's own
 * cases goes over the home's in-process connection to itself (PROTOCOL.md
 * §17), not a socket: the waiter the group parks at the home belongs to a
 * connection listed with peer "in-process". When that connection ends
 * while the select is parked (the home sees itself leave the live set),
 * the select fails UNAVAILABLE once, leaves no waiter on any node, and a
 * value sent after is buffered, not lost to a dead waiter. Run by
 * test_cluster.c on its fixture (cluster_select suite; the first test in
 * cluster_auth, cluster_tls and cluster_tls_auth too, where the in-process
 * HELLO must pass cluster_token's authentication, or the nodes speak TLS,
 * or are known by their certificates' names).
 *
 * SPDX-License-Identifier: BSD-2-Clause
 */
#include <inttypes.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "clustertest.h"

#define NAME_CAP 96
#define HOME 2		/* the select's home; its other case lives on node 1 */

static char own[NAME_CAP], other[NAME_CAP];

/* MAKE name at node i, again while it is UNAVAILABLE (a node just rejoined), for up to 20 s. */
static int
make_on(int i, const char *name, uint64_t cap)
{
	int64_t end = clock_now_ns() + 20 * NSEC_PER_SEC;
	struct test_conn c;
	int st;

	ct_client_of(&c, i);
	while ((st = st_make(&c, name, cap)) == STATUS_UNAVAILABLE && clock_now_ns() < end)
		poll(NULL, 0, 100);
	test_conn_close(&c);
	return st;
}

/* own on HOME, other on node 1, both made with cap. */
static void
make_two(const char *base, uint64_t cap)
{
	char b[64];

	snprintf(b, sizeof b, "%s-own", base);
	snprintf(own, sizeof own, "%s", ct_name_placed_on(HOME, b));
	snprintf(b, sizeof b, "%s-other", base);
	snprintf(other, sizeof other, "%s", ct_name_placed_on(1, b));
	CU_ASSERT_EQUAL_FATAL(make_on(HOME, own, cap), STATUS_OK);
	CU_ASSERT_EQUAL_FATAL(make_on(1, other, cap), STATUS_OK);
}

/* A receive select over own and other from a new client of HOME, parked at both owners. */
static uint64_t
park_select(struct test_conn *c)
{
	struct proto_case cases[2] = {
		{ .dir = 0, .name = own, .name_len = (uint32_t)strlen(own) },
		{ .dir = 0, .name = other, .name_len = (uint32_t)strlen(other) },
	};
	uint64_t sid;

	ct_client_of(c, HOME);
	sid = st_select(c, cases, 2, false, PROTO_WAIT_FOREVER);
	if (!ct_await_receivers(HOME, own, 1)) {
		struct proto_reply r;

		if (test_conn_reply(c, OP_SELECT, 0, &r) == 0)
			printf(" [the select ended %s: %.*s]", status_name(r.status),
			    (int)r.msg_len, r.msg_len ? r.msg : "");
		CU_FAIL_FATAL("the select's own group is not parked at the home");
	}
	CU_ASSERT_FATAL(ct_await_receivers(1, other, 1));
	return sid;
}

/* CLIENTS at node i: client id's peer address into buf ("" when it is not listed). */
static const char *
client_peer(int i, uint64_t id, char *buf, size_t cap)
{
	struct test_conn c;
	struct proto_reply r;
	struct proto_client_info ci;

	buf[0] = '\0';
	ct_client_of(&c, i);
	proto_req_simple(&ct_out, OP_CLIENTS, c.next_id++);
	st_write(&c, &ct_out);
	st_reply(&c, OP_CLIENTS, &r);
	CU_ASSERT_EQUAL(r.status, STATUS_OK);
	while (proto_list_client(&r.list, &ci) == 1) {
		if (ci.id == id)
			snprintf(buf, cap, "%.*s", (int)ci.peer_len, ci.peer);
	}
	test_conn_close(&c);
	return buf;
}

/*
 * The home's own group is a waiter of its in-process connection: listed
 * with peer "in-process"; the other node's group came over TCP. A send
 * on the home's channel then wakes the select through it.
 */
static void
test_own_group_in_process(void)
{
	struct test_conn c, p;
	struct proto_reply r;
	uint64_t own_id, other_id;
	char peer[96], home[8];

	for (int i = 0; i < CT_NODES; i++)
		CU_ASSERT_FATAL(ct_await_stat(i, "cluster_nodes", CT_NODES, 15000));
	snprintf(home, sizeof home, "n%d", HOME);
	make_two("xselfgrp", 0);
	park_select(&c);
	own_id = ct_waiter_client(HOME, own, home);
	other_id = ct_waiter_client(1, other, home);
	CU_ASSERT_NOT_EQUAL(own_id, 0);
	CU_ASSERT_NOT_EQUAL(other_id, 0);
	printf(" [own group: peer %s]", client_peer(HOME, own_id, peer, sizeof peer));
	CU_ASSERT_STRING_EQUAL(peer, "in-process");
	/* the other node's group: a real socket of the home's */
	CU_ASSERT_STRING_NOT_EQUAL(client_peer(1, other_id, peer, sizeof peer), "in-process");
	CU_ASSERT_STRING_NOT_EQUAL(peer, "");
	ct_client_of(&p, HOME);
	CU_ASSERT_EQUAL(st_send_wait(&p, own, "v", PROTO_WAIT_FOREVER), STATUS_OK);
	test_conn_close(&p);
	st_reply(&c, OP_SELECT, &r);
	CU_ASSERT_EQUAL(r.status, STATUS_OK);
	CU_ASSERT_EQUAL(r.index, 0);
	CU_ASSERT(r.value.len == 1 && r.value.data[0] == 'v');
	test_conn_close(&c);
	CU_ASSERT(ct_await_receivers(HOME, own, 0));
	CU_ASSERT(ct_await_receivers(1, other, 0));
}

/*
 * The in-process connection ends under a parked select: the home sees its
 * own node key go (as when its lease is lost), drops its connection to
 * itself, and the in-process connection gets EOF. The select fails
 * UNAVAILABLE, once; no waiter stays on either node; values sent after
 * are buffered, not taken by a dead waiter. The home restarts after.
 */
static void
test_self_conn_lost(void)
{
	struct test_conn c, p;
	struct proto_reply r;
	uint64_t sid;
	char key[128];

	make_two("xselflost", 1);
	sid = park_select(&c);
	snprintf(key, sizeof key, "/chand/" CT_CLUSTER "/nodes/n%d", HOME);
	CU_ASSERT_FATAL(ct_etcd_delete(key));
	st_reply(&c, OP_SELECT, &r);
	printf(" [%s: %.*s]", status_name(r.status), (int)r.msg_len, r.msg_len ? r.msg : "");
	CU_ASSERT_EQUAL(r.id, sid);
	CU_ASSERT_EQUAL(r.status, STATUS_UNAVAILABLE);
	/* once: nothing more comes for it (a PING's reply is next) */
	proto_req_simple(&ct_out, OP_PING, c.next_id++);
	st_write(&c, &ct_out);
	st_reply(&c, OP_PING, &r);
	CU_ASSERT_EQUAL(r.status, STATUS_OK);
	test_conn_close(&c);
	CU_ASSERT(ct_await_receivers(HOME, own, 0));
	CU_ASSERT(ct_await_receivers(1, other, 0));
	ct_client_of(&p, 1);
	CU_ASSERT_EQUAL(st_send_wait(&p, other, "after", 0), STATUS_OK);
	test_conn_close(&p);
	CU_ASSERT_EQUAL(ct_len(1, other), 1);
	ct_node_kill(HOME);
	ct_node_rejoin(HOME, 10000);
}

void
ct_add_selfpeer_tests(CU_pSuite s)
{
	test_add(s, "select: the home's own group goes in-process", test_own_group_in_process);
	test_add(s, "select: the in-process connection ends under a parked select", test_self_conn_lost);
}

void
ct_add_selfpeer_group_test(CU_pSuite s)
{
	test_add(s, "select: the home's own group goes in-process (its HELLO as over TCP)",
	    test_own_group_in_process);
}
