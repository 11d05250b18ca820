/*
 * test_cluster.c: chand nodes in a cluster (PROTOCOL.md §17, issue 19)
 * against a real etcd that the suite starts on ephemeral loopback ports
 * with a temporary data dir, and stops: three nodes join, channels get
 * one owner under races, MOVED and UNAVAILABLE route clients, a killed
 * node's keys go after node_ttl, a stopped node fences itself before its
 * lease can expire, etcd restarting is survived. test_cluster_etcd.c has
 * the tests of server/etcd.c alone, of an etcd that answers garbage, of
 * the config keys and of HELLO's caps; clustertest.c the fixture (etcd,
 * the nodes, the ct_* helpers). What runs across the nodes (SELECT,
 * links, STREAM) is test_cluster_across.c's. The etcd suites are skipped
 * (with a message) without /usr/bin/etcd.
 *
 * SPDX-License-Identifier: BSD-2-Clause
 */
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "clock.h"
#include "clustertest.h"

/* ---- the tests --------------------------------------------------------------------------- */

/*
 * MAKE through each node: placed there (OK), or MOVED to the owner's
 * address; the owner in etcd is the node that made it; the channel works
 * on its owner, and a plain client elsewhere reaches it through forwarding.
 */
static void
test_moved_and_owner(void)
{
	int placed[CT_NODES] = { 0 };

	for (int k = 0; k < 24; k++) {
		const char *name = st_name("own");
		int owner = ct_make_anywhere(k % CT_NODES, name), other = (owner + 1) % CT_NODES;
		char *v = ct_chan_owner(name), want[8], msg[256], buf[16];
		struct test_conn c;
		bool ok;

		CU_ASSERT_FATAL(owner >= 0);
		placed[owner]++;
		snprintf(want, sizeof want, "n%d", owner);
		CU_ASSERT(v != NULL && strcmp(v, want) == 0);
		free(v);
		/* a plain client on another node: forwarded to the owner, where it exists */
		CU_ASSERT_FATAL(ct_open_client(&c, ct_node_port(other), false) == 0);
		CU_ASSERT_EQUAL(ct_make(&c, name, msg, sizeof msg), STATUS_OK);
		CU_ASSERT_EQUAL(st_send_wait(&c, name, "x", 0), STATUS_DEADLINE_EXCEEDED);
		test_conn_close(&c);
		/* on the owner it is an ordinary channel */
		CU_ASSERT_FATAL(ct_open_client(&c, ct_node_port(owner), false) == 0);
		CU_ASSERT_EQUAL(ct_make(&c, name, NULL, 0), STATUS_OK);
		CU_ASSERT_EQUAL(st_close(&c, name), STATUS_OK);
		CU_ASSERT_EQUAL(st_recv_wait(&c, name, 0, buf, sizeof buf, &ok), STATUS_OK);
		CU_ASSERT_FALSE(ok);
		test_conn_close(&c);
	}
	/* rendezvous spreads them: 24 names over 3 nodes leave none empty (p ≈ 3·(2/3)^24) */
	for (int i = 0; i < CT_NODES; i++)
		CU_ASSERT(placed[i] > 0);
	CU_ASSERT(ct_node_stat(0, "cluster_moved") > 0);
}

/* Anonymous channels stay on their maker, and a name nobody owns is NOT_FOUND, not an error. */
static void
test_anonymous_and_unknown(void)
{
	struct test_conn c;

	CU_ASSERT_FATAL(ct_open_client(&c, ct_node_port(1), false) == 0);
	CU_ASSERT_EQUAL(st_make(&c, NULL, 1), STATUS_OK);
	CU_ASSERT_EQUAL(st_send_wait(&c, st_name("nobody"), "x", 0), STATUS_NOT_FOUND);
	test_conn_close(&c);
}

/* A reply to a request on c: its status; its message copied into msg. */
static int
status_of(struct test_conn *c, uint64_t op, char *msg, size_t cap)
{
	struct proto_reply r;

	st_reply(c, op, &r);
	snprintf(msg, cap, "%.*s", (int)r.msg_len, r.msg != NULL ? r.msg : "");
	return r.status;
}

/*
 * A channel reference to an anonymous channel of node 1, used through node
 * 0 (PROTOCOL.md §17): its name ends "@n1", so a plain client's SEND, RECV
 * and OPEN are forwarded there and one that follows MOVED is sent there.
 * An OPEN forwarded by node 0 holds nothing: the channel ends with its
 * maker's connection. A name whose maker is not live, or no channel of a
 * live maker, is NOT_FOUND.
 */
static void
test_anonymous_elsewhere(void)
{
	struct test_conn maker, c;
	char name[128], buf[16], msg[256], want[32];
	int64_t end;
	uint64_t n;
	bool ok;

	ct_make_anonymous(&maker, 1, 1, name, sizeof name);
	CU_ASSERT_EQUAL(strlen(name), 33 + 3);
	CU_ASSERT_STRING_EQUAL(name + 33, "@n1");

	/* forwarded: a send through node 0 fills the buffer on node 1, a receive there empties it */
	CU_ASSERT_FATAL(ct_open_client(&c, ct_node_port(0), false) == 0);
	CU_ASSERT_EQUAL(st_send_wait(&c, name, "x", 0), STATUS_OK);
	CU_ASSERT_EQUAL(ct_len(1, name), 1);
	CU_ASSERT_EQUAL(st_recv_wait(&maker, name, 0, buf, sizeof buf, &ok), STATUS_OK);
	CU_ASSERT(ok && strcmp(buf, "x") == 0);
	CU_ASSERT_EQUAL(st_send_wait(&maker, name, "y", 0), STATUS_OK);
	CU_ASSERT_EQUAL(st_recv_wait(&c, name, 0, buf, sizeof buf, &ok), STATUS_OK);
	CU_ASSERT(ok && strcmp(buf, "y") == 0);
	st_name_op(&c, OP_OPEN, name);
	CU_ASSERT_EQUAL(status_of(&c, OP_OPEN, msg, sizeof msg), STATUS_OK);

	/* MOVED names node 1's address */
	{
		struct test_conn m;

		CU_ASSERT_FATAL(ct_open_client(&m, ct_node_port(0), true) == 0);
		st_send(&m, name, "z", 1, 0);
		CU_ASSERT_EQUAL(status_of(&m, OP_SEND, msg, sizeof msg), STATUS_MOVED);
		snprintf(want, sizeof want, "127.0.0.1:%d", ct_node_port(1));
		CU_ASSERT_STRING_EQUAL(msg, want);
		test_conn_close(&m);
	}

	/* no channel of that name on node 1; a maker that is not live */
	name[5] ^= 1;
	CU_ASSERT_EQUAL(st_send_wait(&c, name, "x", 0), STATUS_NOT_FOUND);
	snprintf(name + 33, sizeof name - 33, "@n9");
	st_send(&c, name, "x", 1, 0);
	CU_ASSERT_EQUAL(status_of(&c, OP_SEND, msg, sizeof msg), STATUS_NOT_FOUND);
	CU_ASSERT(strstr(msg, "node n9 made it and is not live") != NULL);
	name[5] ^= 1;
	snprintf(name + 33, sizeof name - 33, "@n1");

	/* node 0's OPEN kept nothing: the maker's connection was the channel's last hold */
	test_conn_close(&maker);
	end = clock_now_ns() + 10 * NSEC_PER_SEC;
	while (ct_len_at(1, name, &n, NULL, 0) == STATUS_OK && clock_now_ns() < end)
		poll(NULL, 0, 10);
	CU_ASSERT_EQUAL(st_send_wait(&c, name, "x", 0), STATUS_NOT_FOUND);
	test_conn_close(&c);
}

/*
 * The same name made through every node at once, many times: each name
 * has exactly one owner in etcd, exactly one MAKE created it, and every
 * other got MOVED to that owner or opened it there.
 */
static void
test_claim_race(void)
{
	for (int k = 0; k < 10; k++) {
		const char *name = st_name("race");
		struct test_conn c[CT_NODES];
		struct proto_reply r;
		int created = 0, moved = 0;
		char *v;

		for (int i = 0; i < CT_NODES; i++)
			CU_ASSERT_FATAL(ct_open_client(&c[i], ct_node_port(i), true) == 0);
		for (int i = 0; i < CT_NODES; i++) {
			proto_req_make(&ct_out, c[i].next_id++, name, strlen(name), 0);
			st_write(&c[i], &ct_out);
		}
		for (int i = 0; i < CT_NODES; i++) {
			st_reply(&c[i], OP_MAKE, &r);
			created += r.status == STATUS_OK && r.created;
			if (r.status == STATUS_MOVED) {
				moved++;
				CU_ASSERT_EQUAL(r.msg_len > 0, true);
			} else {
				CU_ASSERT_EQUAL(r.status, STATUS_OK);
			}
			test_conn_close(&c[i]);
		}
		CU_ASSERT_EQUAL(created, 1);
		CU_ASSERT_EQUAL(moved, CT_NODES - 1);
		v = ct_chan_owner(name);
		CU_ASSERT(v != NULL && v[0] == 'n');
		free(v);
	}
}

/*
 * SIGKILL a node: its lease, granted for node_ttl, gets no more keepalives
 * and ends, and its node key and its channels' keys go with it. When etcd
 * ends it is etcd's part: bounded only against a hang.
 */
static void
test_kill(void)
{
	char *v;
	const char *name = NULL;
	int64_t t0, gone_ms = -1;
	int at;

	/* a channel owned by node 2 */
	for (int k = 0; k < 60 && name == NULL; k++) {
		const char *n = st_name("kill");

		if (ct_make_anywhere(0, n) == 2)
			name = n;
	}
	CU_ASSERT_FATAL(name != NULL);
	/* the node asked etcd for a lease of node_ttl: when it expires is etcd's part */
	CU_ASSERT_EQUAL(ct_node_lease_ttl(2), CT_TTL_S);
	t0 = clock_now_ns();
	ct_node_kill(2);
	while (clock_now_ns() - t0 < (CT_TTL_S + 20) * NSEC_PER_SEC) {
		v = ct_chan_owner(name);
		if (v == NULL && ct_node_lease_ttl(2) == 0) {
			gone_ms = (clock_now_ns() - t0) / NSEC_PER_MSEC;
			break;
		}
		free(v);
		poll(NULL, 0, 50);
	}
	/* no keepalive after death: the lease ends, its keys with it */
	printf("\n  node key and channel key gone %" PRId64 " ms after SIGKILL (node_ttl %d s) ",
	    gone_ms, CT_TTL_S);
	CU_ASSERT(gone_ms >= 0);
	/* the survivors see two nodes, and the name can be made again on one of them */
	CU_ASSERT(ct_await_stat(0, "cluster_nodes", 2, 10000));
	CU_ASSERT(ct_await_stat(1, "cluster_nodes", 2, 10000));
	at = ct_make_converged(0, name, 10000);
	CU_ASSERT(at == 0 || at == 1);
	/* node 2 again, in every view: the next test places names from node 1's */
	ct_node_rejoin(2, 10000);
}

/*
 * SIGSTOP the owner of a channel for 2 × node_ttl: meanwhile its lease
 * expires and another node takes the channel. A request that waited in its
 * socket is answered, after SIGCONT, without serving the channel: the node
 * knows by its own clock that it is fenced. Then it rejoins.
 */
static void
test_fencing(void)
{
	const char *name = NULL;
	struct test_conn c;
	struct proto_reply r;
	int64_t t0;
	char *v = NULL, was[8];
	int taker;

	for (int k = 0; k < 60 && name == NULL; k++) {
		const char *n = st_name("fence");

		if (ct_make_anywhere(1, n) == 0)
			name = n;
	}
	CU_ASSERT_FATAL(name != NULL);
	CU_ASSERT_FATAL(ct_open_client(&c, ct_node_port(0), false) == 0);
	CU_ASSERT_EQUAL(st_send_wait(&c, name, "x", 0), STATUS_DEADLINE_EXCEEDED);
	ct_node_signal(0, SIGSTOP);
	t0 = clock_now_ns();
	/* its keys go when the lease expires; then node 1 or 2 takes the name */
	while (clock_now_ns() - t0 < (CT_TTL_S + 5) * NSEC_PER_SEC) {
		v = ct_chan_owner(name);
		if (v == NULL)
			break;
		free(v);
		v = NULL;
		poll(NULL, 0, 50);
	}
	CU_ASSERT_PTR_NULL(v);
	CU_ASSERT(ct_await_stat(1, "cluster_nodes", 2, 10000));
	taker = ct_make_converged(1, name, 10000);
	CU_ASSERT(taker == 1 || taker == 2);
	snprintf(was, sizeof was, "n%d", taker);
	v = ct_chan_owner(name);
	CU_ASSERT(v != NULL && strcmp(v, was) == 0);
	free(v);
	/* 2 × node_ttl stopped in all (the wait above is part of it) */
	while (clock_now_ns() - t0 < 2 * CT_TTL_S * NSEC_PER_SEC)
		poll(NULL, 0, 50);
	st_send(&c, name, "y", 1, 0);
	ct_node_signal(0, SIGCONT);
	st_reply(&c, OP_SEND, &r);
	CU_ASSERT(r.status == STATUS_UNAVAILABLE || r.status == STATUS_MOVED);
	CU_ASSERT_NOT_EQUAL(r.status, STATUS_OK);
	test_conn_close(&c);
	CU_ASSERT(ct_await_log(0, "cluster-fenced", 5000) ||
	    ct_await_log(0, "cluster-lease-lost", 5000));
	/* it rejoins with a new lease, and the channel stays with its taker */
	CU_ASSERT(ct_await_stat(0, "cluster_serving", 1, 10000));
	CU_ASSERT(ct_node_stat(0, "cluster_sessions") >= 2);
	for (int i = 0; i < CT_NODES; i++)
		CU_ASSERT(ct_await_stat(i, "cluster_nodes", 3, 10000));
	v = ct_chan_owner(name);
	CU_ASSERT(v != NULL && strcmp(v, was) == 0);
	free(v);
	/* node 0 forwards to the taker, whose channel is new: nobody receives */
	CU_ASSERT_FATAL(ct_open_client(&c, ct_node_port(0), false) == 0);
	CU_ASSERT_EQUAL(st_send_wait(&c, name, "z", 0), STATUS_DEADLINE_EXCEEDED);
	test_conn_close(&c);
}

/*
 * etcd stopped for 3 × node_ttl: nodes fence and refuse new names
 * UNAVAILABLE all along; etcd back: all serve again, old names included.
 */
static void
test_etcd_restart(void)
{
	const char *name = ct_name_placed_on(1, "waiter");
	struct test_conn c, w;
	struct proto_reply r, anon;
	char msg[256], anon_name[64];
	uint64_t named_id, anon_id;
	int64_t t_down;

	/* a RECV waiting on node 1's channel, and one on an anonymous channel */
	CU_ASSERT_FATAL(ct_open_client(&w, ct_node_port(1), false) == 0);
	CU_ASSERT_EQUAL_FATAL(ct_make(&w, name, NULL, 0), STATUS_OK);
	proto_req_make(&ct_out, w.next_id++, NULL, 0, 0);
	st_write(&w, &ct_out);
	st_reply(&w, OP_MAKE, &anon);
	CU_ASSERT_EQUAL_FATAL(anon.status, STATUS_OK);
	snprintf(anon_name, sizeof anon_name, "%.*s", (int)anon.name_len, anon.name);
	named_id = st_recv(&w, name, PROTO_WAIT_FOREVER);
	anon_id = st_recv(&w, anon_name, PROTO_WAIT_FOREVER);
	CU_ASSERT(test_wait_waiters(ct_node_port(1), name, 0, 1, 10000));
	ct_etcd_stop();
	t_down = clock_now_ns();
	for (int i = 0; i < CT_NODES; i++)
		CU_ASSERT(ct_await_stat(i, "cluster_serving", 0, (CT_TTL_S + 5) * 1000));
	/* fenced: the named channel's waiter ends UNAVAILABLE, the anonymous one waits on */
	st_reply(&w, OP_RECV, &r);
	CU_ASSERT_EQUAL(r.id, named_id);
	CU_ASSERT_EQUAL(r.status, STATUS_UNAVAILABLE);
	CU_ASSERT(r.msg_len > 0 && memmem(r.msg, r.msg_len, "fenced", 6) != NULL);
	proto_req_cancel(&ct_out, w.next_id++, anon_id);
	st_write(&w, &ct_out);
	st_reply(&w, OP_RECV, &r);
	CU_ASSERT_EQUAL(r.id, anon_id);
	CU_ASSERT_EQUAL(r.status, STATUS_CANCELED);
	test_conn_close(&w);
	CU_ASSERT_FATAL(ct_open_client(&c, ct_node_port(1), true) == 0);
	CU_ASSERT_EQUAL(ct_make(&c, st_name("down"), msg, sizeof msg), STATUS_UNAVAILABLE);
	CU_ASSERT(strstr(msg, "fenced") != NULL || strstr(msg, "etcd") != NULL);
	test_conn_close(&c);
	CU_ASSERT(ct_node_stat(1, "cluster_etcd_errors") > 0);
	/* down for 3 × node_ttl in all (issue 19), still refusing new names at the end */
	while (clock_now_ns() - t_down < 3 * CT_TTL_S * NSEC_PER_SEC)
		poll(NULL, 0, 50);
	CU_ASSERT_FATAL(ct_open_client(&c, ct_node_port(2), true) == 0);
	CU_ASSERT_EQUAL(ct_make(&c, st_name("down"), NULL, 0), STATUS_UNAVAILABLE);
	test_conn_close(&c);
	for (int i = 0; i < CT_NODES; i++)
		CU_ASSERT_EQUAL(ct_node_stat(i, "cluster_serving"), 0);
	CU_ASSERT_FATAL(ct_etcd_start() == 0);
	for (int i = 0; i < CT_NODES; i++) {
		CU_ASSERT(ct_await_stat(i, "cluster_serving", 1, 15000));
		CU_ASSERT(ct_await_stat(i, "cluster_nodes", CT_NODES, 15000));
	}
	CU_ASSERT(ct_make_converged(2, st_name("back"), 10000) >= 0);
	/* the waiter's channel too: made again (its old owner's lease went), and used */
	CU_ASSERT(ct_make_converged(0, name, 10000) >= 0);
	CU_ASSERT_FATAL(ct_open_client(&c, ct_node_port(0), false) == 0);
	CU_ASSERT_EQUAL(st_send_wait(&c, name, "x", 0), STATUS_DEADLINE_EXCEEDED);
	test_conn_close(&c);
}

static int
steady_tls_suite_init(void)
{
	ct_set_node_ttl(CT_STEADY_TTL_S);
	return ct_tls_suite_init();
}

/* The authenticated cluster's suite: its nodes get ct_auth_conf's lines (test_cluster_forward.c). */
static int
auth_suite_init(void)
{
	ct_set_node_ttl(CT_STEADY_TTL_S);
	ct_set_node_extra(ct_auth_conf());
	ct_set_token("node-secret");	/* the ct_* clients act as the node identity */
	return ct_suite_init();
}

/* TLS and authentication on: the nodes known by their certificates (ct_tls_auth_suite_init). */
static int
tls_auth_suite_init(void)
{
	return ct_tls_auth_suite_init(NULL);
}

static int
idle_suite_init(void)
{
	ct_set_node_extra("idle_timeout = 500ms\n");
	ct_set_node_ttl(CT_STEADY_TTL_S);
	return ct_suite_init();
}

static void
register_suites(void)
{
	CU_pSuite s;

	ct_register_alone();
	if (access(CT_ETCD, X_OK) != 0) {
		printf("test_cluster: %s is missing (apt-get install etcd-server): skipped\n", CT_ETCD);
		return;
	}
	s = test_suite("cluster", ct_suite_init, ct_suite_clean);
	test_add(s, "three nodes join", ct_test_join);
	test_add(s, "the claim txn raced by two clients", ct_test_txn_race);
	test_add(s, "a burst of lookups: few connections, the session's call first", ct_test_session_first);
	test_add(s, "MOVED, UNAVAILABLE and the owner in etcd", test_moved_and_owner);
	test_add(s, "anonymous and unknown channels", test_anonymous_and_unknown);
	test_add(s, "an anonymous channel through another node: forwarded, MOVED, or gone", test_anonymous_elsewhere);
	ct_add_route_tests(s);
	test_add(s, "one owner under racing MAKEs", test_claim_race);
	test_add(s, "SIGKILL: the node's keys go after node_ttl", test_kill);
	test_add(s, "SIGSTOP: fenced before its lease can expire", test_fencing);
	test_add(s, "etcd stopped and restarted", test_etcd_restart);
	test_add(s, "every node stops cleanly", ct_test_stop_all);
	/* a fresh etcd and three fresh nodes for forwarding (test_cluster_forward.c) */
	ct_nodes_suite("cluster_forward", ct_steady_suite_init, ct_add_forward_tests);
	/* ack channels through a forwarder (test_cluster_ack.c) */
	ct_nodes_suite("cluster_ack", ct_steady_suite_init, ct_add_ack_tests);
	/* forwarding and links (test_cluster_links_auth.c) with authentication on: cluster_token */
	s = test_suite("cluster_auth", auth_suite_init, ct_suite_clean);
	ct_add_auth_tests(s);
	ct_add_link_auth_tests(s);
	ct_add_selfpeer_group_test(s);
	/* forwarding between nodes over TLS */
	s = test_suite("cluster_tls", steady_tls_suite_init, ct_tls_suite_clean);
	ct_add_tls_tests(s);
	ct_add_selfpeer_group_test(s);
	/* ... with the nodes known by their certificates (auth on, no cluster_token) */
	s = test_suite("cluster_tls_auth", tls_auth_suite_init, ct_tls_suite_clean);
	ct_add_tls_tests(s);
	ct_add_selfpeer_group_test(s);
	/* idle_timeout on every node (test_cluster_forward.c) */
	s = test_suite("cluster_idle", idle_suite_init, ct_suite_clean);
	test_add(s, "three nodes join", ct_test_join);
	ct_add_idle_tests(s);
	/* the failover cases on fresh nodes (test_cluster_failover.c) */
	ct_nodes_suite("cluster_failover", ct_suite_init, ct_add_failover_tests);
	/* TLS to etcd, and a cluster node's metrics (test_cluster_etcdtls.c) */
	ct_add_etcd_tls_suites();
}

int
main(int argc, char **argv)
{
	return ct_main(argc, argv, register_suites);
}
