/*
 * test_cluster_forward.c: forwarding (PROTOCOL.md §17): plain clients of
 * any node reach a channel owned by another, with Go's semantics intact
 * through the forwarder: rendezvous, close-then-drain, FIFO of waiters,
 * deadlines, CANCEL (of a forwarded and of a held request), a client's
 * disconnect, a SELECT and a STREAM forwarded whole, channel references passed as they
 * are, an owner SIGKILLed or SIGSTOPped under a waiting client; and, in a
 * cluster with tokens, nodes that authenticate to each other with
 * cluster_token while the forwarder checks each client's own rights;
 * nodes with idle_timeout that never close each other's connections for
 * it; and, over TLS between the nodes, values of every size whole and a
 * node whose certificate is refused (wrong CA, wrong name). Run by test_cluster.c on its fixture: one etcd, nodes n0..n2.
 *
 * SPDX-License-Identifier: BSD-2-Clause
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "clock.h"
#include "clustertest.h"

/* A name placed on node owner, made there with cap, copied into buf. */
static void
made_on(int owner, const char *base, uint64_t cap, char *buf, size_t bufcap)
{
	struct test_conn c;

	snprintf(buf, bufcap, "%s", ct_name_placed_on(owner, base));
	ct_client_of(&c, owner);
	CU_ASSERT_EQUAL_FATAL(st_make(&c, buf, cap), STATUS_OK);
	test_conn_close(&c);
}

/* Every node knows the three and serves (the test ends if not within 15 s). */
static void
all_serving(void)
{
	for (int i = 0; i < CT_NODES; i++) {
		CU_ASSERT_FATAL(ct_await_stat(i, "cluster_nodes", CT_NODES, 15000));
		CU_ASSERT_FATAL(ct_await_stat(i, "cluster_serving", 1, 15000));
	}
}

/* INFO on the owner until name has senders/receivers waiting (-1: any). */
static bool
owner_waits(int owner, const char *name, int64_t senders, int64_t receivers)
{
	struct test_conn c;
	bool ok;

	ct_client_of(&c, owner);
	ok = st_await_waiters(&c, name, senders, receivers);
	test_conn_close(&c);
	return ok;
}

static bool
await_waiters_on(int i, const char *name, int want)
{
	int64_t end = clock_now_ns() + 10 * NSEC_PER_SEC;

	while (clock_now_ns() < end) {
		if (ct_waiters_naming(i, name, NULL) == want)
			return true;
		poll(NULL, 0, 20);
	}
	return false;
}

/*
 * MAKE through node 1 of a name placed on node 0 (held for etcd, then
 * forwarded to its place, which claims it), SEND through node 2, RECV
 * through node 1: every reply comes back with the client's id; a channel
 * reference passes as it is.
 */
static void
test_make_send_recv(void)
{
	char name[64], ref[64], buf[32];
	struct test_conn c1, c2;
	struct proto_reply r;
	struct proto_value v;
	struct proto_chan_info info;
	uint64_t before = ct_node_stat(1, "cluster_forwarded"), id;
	bool ok;

	snprintf(name, sizeof name, "%s", ct_name_placed_on(0, "fwd"));
	snprintf(ref, sizeof ref, "%s", ct_name_placed_on(2, "ref"));
	ct_client_of(&c1, 1);
	ct_client_of(&c2, 2);
	CU_ASSERT_EQUAL(st_make(&c1, name, 4), STATUS_OK);
	CU_ASSERT_EQUAL(st_send_wait(&c2, name, "hello", PROTO_WAIT_FOREVER), STATUS_OK);
	v = (struct proto_value){ .kind = VALUE_CHANREF, .data = (const uint8_t *)ref,
	    .len = strlen(ref) };
	id = c2.next_id++;
	proto_req_send(&ct_out, id, PROTO_WAIT_FOREVER, name, strlen(name), &v);
	st_write(&c2, &ct_out);
	st_reply(&c2, OP_SEND, &r);
	CU_ASSERT_EQUAL(r.id, id);
	CU_ASSERT_EQUAL(r.status, STATUS_OK);
	CU_ASSERT_EQUAL(st_recv_wait(&c1, name, PROTO_WAIT_FOREVER, buf, sizeof buf, &ok), STATUS_OK);
	CU_ASSERT(ok && strcmp(buf, "hello") == 0);
	id = st_recv(&c1, name, PROTO_WAIT_FOREVER);
	st_reply(&c1, OP_RECV, &r);
	CU_ASSERT_EQUAL(r.id, id);
	CU_ASSERT_EQUAL(r.status, STATUS_OK);
	CU_ASSERT_EQUAL(r.value.kind, VALUE_CHANREF);
	CU_ASSERT(r.value.len == strlen(ref) && memcmp(r.value.data, ref, r.value.len) == 0);
	test_conn_close(&c1);
	test_conn_close(&c2);
	/* the owner made it, with the cap asked through node 1; node 1 forwarded */
	ct_client_of(&c1, 0);
	CU_ASSERT_EQUAL(st_info(&c1, name, &info), STATUS_OK);
	CU_ASSERT_EQUAL(info.cap, 4);
	test_conn_close(&c1);
	CU_ASSERT(ct_node_stat(1, "cluster_forwarded") >= before + 3);
	CU_ASSERT(ct_node_stat(1, "cluster_peers") >= 1);
}

/* Unbuffered: a SEND through node 1 waits at the owner until a RECV through node 2 takes it. */
static void
test_rendezvous(void)
{
	char name[64], buf[32];
	struct test_conn s, rcv;
	struct proto_reply r;
	uint64_t sid;
	bool ok;

	made_on(0, "rdv", 0, name, sizeof name);
	ct_client_of(&s, 1);
	ct_client_of(&rcv, 2);
	sid = st_send(&s, name, "v", 1, PROTO_WAIT_FOREVER);
	CU_ASSERT(owner_waits(0, name, 1, 0));
	CU_ASSERT_EQUAL(st_recv_wait(&rcv, name, PROTO_WAIT_FOREVER, buf, sizeof buf, &ok), STATUS_OK);
	CU_ASSERT(ok && strcmp(buf, "v") == 0);
	st_reply(&s, OP_SEND, &r);
	CU_ASSERT_EQUAL(r.id, sid);
	CU_ASSERT_EQUAL(r.status, STATUS_OK);
	test_conn_close(&s);
	test_conn_close(&rcv);
}

/* Values sent before CLOSE are received after it, in order, then ok false: all through forwarders. */
static void
test_close_drain(void)
{
	char name[64], buf[32];
	struct test_conn a, b;
	bool ok;

	made_on(0, "drain", 2, name, sizeof name);
	ct_client_of(&a, 1);
	ct_client_of(&b, 2);
	CU_ASSERT_EQUAL(st_send_wait(&a, name, "a", 0), STATUS_OK);
	CU_ASSERT_EQUAL(st_send_wait(&a, name, "b", 0), STATUS_OK);
	CU_ASSERT_EQUAL(st_close(&b, name), STATUS_OK);
	CU_ASSERT_EQUAL(st_send_wait(&a, name, "c", 0), STATUS_CLOSED);
	CU_ASSERT_EQUAL(st_recv_wait(&b, name, 0, buf, sizeof buf, &ok), STATUS_OK);
	CU_ASSERT(ok && strcmp(buf, "a") == 0);
	CU_ASSERT_EQUAL(st_recv_wait(&a, name, 0, buf, sizeof buf, &ok), STATUS_OK);
	CU_ASSERT(ok && strcmp(buf, "b") == 0);
	CU_ASSERT_EQUAL(st_recv_wait(&b, name, 0, buf, sizeof buf, &ok), STATUS_OK);
	CU_ASSERT_FALSE(ok);
	test_conn_close(&a);
	test_conn_close(&b);
}

/* Receivers waiting through two forwarders are served in the order they came to the owner. */
static void
test_fifo(void)
{
	char name[64], v[8];
	struct test_conn rc[3], s;
	struct proto_reply r;
	uint64_t ids[3];

	made_on(0, "fifo", 0, name, sizeof name);
	for (int i = 0; i < 3; i++) {
		ct_client_of(&rc[i], 1 + i % 2);
		ids[i] = st_recv(&rc[i], name, PROTO_WAIT_FOREVER);
		CU_ASSERT_FATAL(owner_waits(0, name, 0, i + 1));
	}
	ct_client_of(&s, 2);
	for (int i = 0; i < 3; i++) {
		snprintf(v, sizeof v, "v%d", i);
		CU_ASSERT_EQUAL(st_send_wait(&s, name, v, PROTO_WAIT_FOREVER), STATUS_OK);
	}
	for (int i = 0; i < 3; i++) {
		snprintf(v, sizeof v, "v%d", i);
		st_reply(&rc[i], OP_RECV, &r);
		CU_ASSERT_EQUAL(r.id, ids[i]);
		CU_ASSERT_EQUAL(r.status, STATUS_OK);
		CU_ASSERT(ST_VALUE_IS(r, v));
		test_conn_close(&rc[i]);
	}
	test_conn_close(&s);
}

/* A RECV with a 200 ms wait through a forwarder ends DEADLINE_EXCEEDED, not before 200 ms. */
static void
test_deadline(void)
{
	char name[64], buf[8];
	struct test_conn c;
	int64_t t0, ms;
	bool ok;

	made_on(0, "dl", 0, name, sizeof name);
	ct_client_of(&c, 1);
	t0 = clock_now_ns();
	CU_ASSERT_EQUAL(st_recv_wait(&c, name, 200000, buf, sizeof buf, &ok), STATUS_DEADLINE_EXCEEDED);
	ms = (clock_now_ns() - t0) / NSEC_PER_MSEC;
	CU_ASSERT(ms >= 200);
	CU_ASSERT(ms < 5000);
	test_conn_close(&c);
	CU_ASSERT(await_waiters_on(0, name, 0));
}

/* CANCEL of a forwarded RECV reaches the owner: CANCELED, then OK, and no waiter stays there. */
static void
test_cancel(void)
{
	char name[64];
	struct test_conn c;
	struct proto_reply r;
	uint64_t rid, cid;

	made_on(0, "cancel", 0, name, sizeof name);
	ct_client_of(&c, 1);
	rid = st_recv(&c, name, PROTO_WAIT_FOREVER);
	CU_ASSERT_FATAL(owner_waits(0, name, 0, 1));
	cid = c.next_id++;
	proto_req_cancel(&ct_out, cid, rid);
	st_write(&c, &ct_out);
	st_reply(&c, OP_RECV, &r);
	CU_ASSERT_EQUAL(r.id, rid);
	CU_ASSERT_EQUAL(r.status, STATUS_CANCELED);
	st_reply(&c, OP_CANCEL, &r);
	CU_ASSERT_EQUAL(r.id, cid);
	CU_ASSERT_EQUAL(r.status, STATUS_OK);
	CU_ASSERT(owner_waits(0, name, 0, 0));
	/* the id is free again: a PING with it is answered */
	proto_req_ping(&ct_out, rid);
	st_write(&c, &ct_out);
	st_reply(&c, OP_PING, &r);
	CU_ASSERT_EQUAL(r.id, rid);
	CU_ASSERT_EQUAL(r.status, STATUS_OK);
	test_conn_close(&c);
}

/* A MAKE waiting for etcd, CANCELed in the same write: CANCELED, then OK (it was NOT_FOUND). */
static void
test_cancel_held(void)
{
	const char *name = st_name("held");
	struct test_conn c;
	struct proto_reply r;
	uint64_t mid, cid;

	ct_client_of(&c, 1);
	mid = c.next_id++;
	cid = c.next_id++;
	proto_req_make(&ct_out, mid, name, strlen(name), 0);
	proto_req_cancel(&ct_out, cid, mid);
	st_write(&c, &ct_out);
	st_reply(&c, OP_MAKE, &r);
	CU_ASSERT_EQUAL(r.id, mid);
	CU_ASSERT_EQUAL(r.status, STATUS_CANCELED);
	st_reply(&c, OP_CANCEL, &r);
	CU_ASSERT_EQUAL(r.id, cid);
	CU_ASSERT_EQUAL(r.status, STATUS_OK);
	/* the connection goes on: nothing else was answered for the MAKE */
	proto_req_ping(&ct_out, c.next_id++);
	st_write(&c, &ct_out);
	st_reply(&c, OP_PING, &r);
	CU_ASSERT_EQUAL(r.status, STATUS_OK);
	test_conn_close(&c);
}

/* A client that disconnects from the forwarder: its waiter at the owner goes (admin WAITERS). */
static void
test_disconnect(void)
{
	char name[64];
	struct test_conn c;

	made_on(0, "gone", 0, name, sizeof name);
	ct_client_of(&c, 1);
	st_recv(&c, name, PROTO_WAIT_FOREVER);
	st_recv(&c, name, PROTO_WAIT_FOREVER);
	CU_ASSERT_FATAL(await_waiters_on(0, name, 2));
	test_conn_close(&c);
	CU_ASSERT(await_waiters_on(0, name, 0));
}

/*
 * One connection may have max_pending (4096 by default) requests forwarded
 * at once: one more is LIMIT at the forwarder, so that one client cannot
 * use up the peer connection that every client of the node shares. Its
 * disconnect then ends all 4096 waiters at the owner.
 */
static void
test_forwarded_limit(void)
{
	char name[64];
	struct test_conn c;
	struct proto_reply r;
	uint64_t id = 0;

	made_on(0, "lim", 0, name, sizeof name);
	ct_client_of(&c, 1);
	/*
	 * node 1 learns the owner first: otherwise the burst waits for etcd and
	 * meets that queue's max_pending (held requests) instead of the forwarded one
	 */
	CU_ASSERT_EQUAL_FATAL(st_info(&c, name, NULL), STATUS_OK);
	for (int i = 0; i <= 4096; i++) {
		id = c.next_id++;
		proto_req_name(&ct_out, OP_RECV, id, PROTO_WAIT_FOREVER, name, strlen(name));
	}
	st_write(&c, &ct_out);
	st_reply(&c, OP_RECV, &r);
	CU_ASSERT_EQUAL(r.id, id);
	CU_ASSERT_EQUAL(r.status, STATUS_LIMIT);
	CU_ASSERT(r.msg_len > 0 && memmem(r.msg, r.msg_len, "forwarded", 9) != NULL);
	CU_ASSERT(await_waiters_on(0, name, 4096));
	test_conn_close(&c);
	CU_ASSERT(await_waiters_on(0, name, 0));
}

/* A SELECT over two channels of node 1, sent to node 0, is forwarded whole and answered there. */
static void
test_select_whole(void)
{
	char a[64], b[64];
	struct proto_case cases[2];
	struct test_conn c, s;
	struct proto_reply r;
	uint64_t id;

	made_on(1, "swa", 0, a, sizeof a);
	made_on(1, "swb", 0, b, sizeof b);
	cases[0] = (struct proto_case){ .dir = 0, .name = a, .name_len = (uint32_t)strlen(a) };
	cases[1] = (struct proto_case){ .dir = 0, .name = b, .name_len = (uint32_t)strlen(b) };
	ct_client_of(&c, 0);
	id = st_select(&c, cases, 2, false, PROTO_WAIT_FOREVER);
	CU_ASSERT_FATAL(owner_waits(1, b, 0, 1));
	CU_ASSERT(owner_waits(1, a, 0, 1));
	ct_client_of(&s, 2);
	CU_ASSERT_EQUAL(st_send_wait(&s, b, "sel", PROTO_WAIT_FOREVER), STATUS_OK);
	st_reply(&c, OP_SELECT, &r);
	CU_ASSERT_EQUAL(r.id, id);
	CU_ASSERT_EQUAL(r.status, STATUS_OK);
	CU_ASSERT_EQUAL(r.index, 1);
	CU_ASSERT(ST_VALUE_IS(r, "sel"));
	/* its case on the other channel went with it */
	CU_ASSERT(owner_waits(1, a, 0, 0));
	test_conn_close(&c);
	test_conn_close(&s);
}

/* The next frame on c is the STREAM sid's value v (interim). */
static void
stream_value(struct test_conn *c, uint64_t sid, const char *v)
{
	struct proto_reply r;

	st_next(c, sid, OP_PING, &r);
	CU_ASSERT_EQUAL(r.id, sid);
	CU_ASSERT_EQUAL(r.status, STATUS_OK);
	CU_ASSERT(r.interim);
	CU_ASSERT(ST_VALUE_IS(r, v));
}

/* A STREAM forwarded whole: its values are relayed, CREDIT and CANCEL reach it at the owner. */
static void
test_stream(void)
{
	char name[64];
	struct proto_case pc;
	struct test_conn c, s;
	struct proto_reply r;
	uint64_t sid, id;

	made_on(1, "strm", 8, name, sizeof name);
	ct_client_of(&s, 2);
	CU_ASSERT_EQUAL(st_send_wait(&s, name, "s0", 0), STATUS_OK);
	CU_ASSERT_EQUAL(st_send_wait(&s, name, "s1", 0), STATUS_OK);
	CU_ASSERT_EQUAL(st_send_wait(&s, name, "s2", 0), STATUS_OK);
	ct_client_of(&c, 0);
	pc = (struct proto_case){ .name = name, .name_len = (uint32_t)strlen(name) };
	sid = c.next_id++;
	proto_req_stream(&ct_out, sid, PROTO_WAIT_FOREVER, &pc, 1, 2);
	st_write(&c, &ct_out);
	stream_value(&c, sid, "s0");
	stream_value(&c, sid, "s1");
	id = c.next_id++;
	proto_req_credit(&ct_out, id, sid, 1);
	st_write(&c, &ct_out);
	stream_value(&c, sid, "s2");
	st_next(&c, sid, OP_CREDIT, &r);
	CU_ASSERT_EQUAL(r.id, id);
	CU_ASSERT_EQUAL(r.status, STATUS_OK);
	id = c.next_id++;
	proto_req_cancel(&ct_out, id, sid);
	st_write(&c, &ct_out);
	st_next(&c, sid, OP_CANCEL, &r);
	CU_ASSERT_EQUAL(r.id, sid);
	CU_ASSERT_EQUAL(r.status, STATUS_CANCELED);
	CU_ASSERT_FALSE(r.interim);
	st_next(&c, sid, OP_CANCEL, &r);
	CU_ASSERT_EQUAL(r.id, id);
	CU_ASSERT_EQUAL(r.status, STATUS_OK);
	CU_ASSERT(owner_waits(1, name, 0, 0));
	test_conn_close(&c);
	test_conn_close(&s);
}

/*
 * SIGKILL the owner while a client waits through a forwarder: the client
 * gets UNAVAILABLE "node n2 lost" at once (well before node_ttl), not a
 * hang. Node 2 is started again for what follows.
 */
static void
test_owner_killed(void)
{
	char name[64];
	struct test_conn c;
	struct proto_reply r;
	uint64_t id;
	int64_t t0;

	made_on(2, "kill", 0, name, sizeof name);
	ct_client_of(&c, 0);
	id = st_recv(&c, name, PROTO_WAIT_FOREVER);
	CU_ASSERT_FATAL(owner_waits(2, name, 0, 1));
	t0 = clock_now_ns();
	ct_node_kill(2);
	st_reply(&c, OP_RECV, &r);
	CU_ASSERT_EQUAL(r.id, id);
	CU_ASSERT_EQUAL(r.status, STATUS_UNAVAILABLE);
	CU_ASSERT(r.msg_len > 0 && memmem(r.msg, r.msg_len, "node n2 lost", 12) != NULL);
	CU_ASSERT((clock_now_ns() - t0) / NSEC_PER_MSEC < 1500);
	/* the connection goes on */
	proto_req_ping(&ct_out, c.next_id++);
	st_write(&c, &ct_out);
	st_reply(&c, OP_PING, &r);
	CU_ASSERT_EQUAL(r.status, STATUS_OK);
	test_conn_close(&c);
	CU_ASSERT(ct_node_stat(0, "cluster_peer_errors") >= 1);
	CU_ASSERT_FATAL(ct_node_restart(2) == 0);
	CU_ASSERT(ct_await_stat(0, "cluster_nodes", CT_NODES, 15000));
	CU_ASSERT(ct_await_stat(2, "cluster_serving", 1, 15000));
}

/*
 * An ack channel's value received through a forwarder is in flight on the
 * owner for the forwarder's peer connection: when the forwarder dies, the
 * owner gives the value back as it does for any consumer that disconnects,
 * and the next receiver gets it again with its delivery count 2.
 */
static void
test_forwarder_killed_ack(void)
{
	struct proto_delivery d = { .on = true, .ack_wait_us = 60 * 1000000ull,
	    .max_deliver = PROTO_MAX_DELIVER_DEFAULT, .max_unacked = PROTO_MAX_UNACKED_DEFAULT };
	char name[64];
	struct test_conn o, f;
	struct proto_reply r;
	uint64_t tag;

	snprintf(name, sizeof name, "%s", ct_name_placed_on(1, "ackfw"));
	ct_client_of(&o, 1);
	proto_req_make_opts(&ct_out, o.next_id++, name, strlen(name), 4, &d);
	st_write(&o, &ct_out);
	st_reply(&o, OP_MAKE, &r);
	CU_ASSERT_EQUAL_FATAL(r.status, STATUS_OK);
	CU_ASSERT_EQUAL_FATAL(st_send_wait(&o, name, "v", 0), STATUS_OK);
	/* node 0 forwards the RECV: the value is in flight on node 1 for node 0's peer connection */
	ct_client_of(&f, 0);
	st_recv(&f, name, 0);
	st_reply(&f, OP_RECV, &r);
	CU_ASSERT_EQUAL_FATAL(r.status, STATUS_OK);
	CU_ASSERT(r.tag > 0 && r.count == 1);
	tag = r.tag;
	ct_node_kill(0);
	test_conn_close(&f);
	/* given back when the peer connection ends (ack_wait is a minute): delivered again */
	st_recv(&o, name, 10 * 1000000);
	st_reply(&o, OP_RECV, &r);
	CU_ASSERT_EQUAL(r.status, STATUS_OK);
	CU_ASSERT(r.value.len == 1 && memcmp(r.value.data, "v", 1) == 0);
	CU_ASSERT(r.tag != tag && r.count == 2);
	test_conn_close(&o);
	ct_node_rejoin(0, 15000);
	CU_ASSERT(ct_await_stat(0, "cluster_serving", 1, 15000));
}

/*
 * SIGSTOP the owner (its socket stays open: no EOF) while a client waits
 * through a forwarder: when the owner's lease ends and it leaves the live
 * set, the client gets UNAVAILABLE "node n1 lost", well within 2 x
 * node_ttl. After SIGCONT node 1 rejoins and is reached again.
 */
static void
test_owner_stopped(void)
{
	char name[64], again[64];
	struct test_conn c;
	struct proto_reply r;
	uint64_t id;
	int64_t t0, ms;

	made_on(1, "stop", 0, name, sizeof name);
	ct_client_of(&c, 0);
	id = st_recv(&c, name, PROTO_WAIT_FOREVER);
	CU_ASSERT_FATAL(owner_waits(1, name, 0, 1));
	t0 = clock_now_ns();
	ct_node_signal(1, SIGSTOP);
	/* the answer comes after the lease ends: wait longer than REPLY_MS, the bound is below */
	CU_ASSERT_FATAL(test_conn_reply(&c, OP_RECV, (2 * ct_node_ttl_s() + 5) * 1000, &r) == 0);
	ms = (clock_now_ns() - t0) / NSEC_PER_MSEC;
	ct_node_signal(1, SIGCONT);
	CU_ASSERT_EQUAL(r.id, id);
	CU_ASSERT_EQUAL(r.status, STATUS_UNAVAILABLE);
	CU_ASSERT(r.msg_len > 0 && memmem(r.msg, r.msg_len, "node n1 lost", 12) != NULL);
	CU_ASSERT(ms < 2 * ct_node_ttl_s() * 1000);
	test_conn_close(&c);
	CU_ASSERT(ct_await_stat(1, "cluster_serving", 1, 15000));
	CU_ASSERT(ct_await_stat(0, "cluster_nodes", CT_NODES, 15000));
	/* node 1 is dialled again for a channel it owns now */
	made_on(1, "back", 1, again, sizeof again);
	ct_client_of(&c, 0);
	CU_ASSERT_EQUAL(st_send_wait(&c, again, "x", 0), STATUS_OK);
	test_conn_close(&c);
}

/* ---- with authentication on ---------------------------------------------------------- */

/*
 * Tokens for the nodes (cluster_token), alice (send, recv, make on fa.*) and
 * bob (recv only); for alice's links (test_cluster_links_auth.c), send, recv
 * and close on la.* and lr.* (a reload takes lr.* away), and on ~*.
 */
const char *
ct_auth_conf(void)
{
	static char conf[2048];
	char node[80], alice[80], bob[80];

	test_token_digest("node-secret", node);
	test_token_digest("alice-secret", alice);
	test_token_digest("bob-secret", bob);
	snprintf(conf, sizeof conf, "token = node:%s\ntoken = alice:%s\ntoken = bob:%s\n"
	    "allow = node * all,admin\nallow = alice fa.* send,recv,make\nallow = bob fa.* recv\n"
	    "allow = alice la.* send,recv,close\nallow = alice ~* send,recv,close\n"
	    CT_AUTH_REVOCABLE "cluster_token = node-secret\n", node, alice, bob);
	return conf;
}

/* A plain client of node i that says HELLO with token. */
static void
auth_client_of(struct test_conn *c, int i, const char *token)
{
	struct proto_reply r;

	CU_ASSERT_FATAL(test_conn_open(c, ct_node_port(i), false) == 0);
	proto_req_hello_caps(&ct_out, c->next_id++, PROTO_VERSION, "test_cluster", token, false);
	st_write(c, &ct_out);
	st_reply(c, OP_HELLO, &r);
	CU_ASSERT_EQUAL_FATAL(r.status, STATUS_OK);
}

/*
 * alice makes a channel through node 0 that is placed on node 1, and sends
 * on it through node 2: the nodes' HELLOs to each other carried
 * cluster_token, so the owner served them (retried while the nodes join).
 * bob, who may only receive, is refused SEND at the forwarder itself.
 */
static void
test_auth_forward(void)
{
	char name[64], buf[8];
	struct test_conn a, b;
	int64_t end = clock_now_ns() + 20 * NSEC_PER_SEC;
	int st;
	bool ok;

	snprintf(name, sizeof name, "%s", ct_name_placed_on(1, "fa.x"));
	auth_client_of(&a, 0, "alice-secret");
	while ((st = st_make(&a, name, 1)) == STATUS_UNAVAILABLE && clock_now_ns() < end)
		poll(NULL, 0, 100);
	CU_ASSERT_EQUAL_FATAL(st, STATUS_OK);
	test_conn_close(&a);
	auth_client_of(&a, 2, "alice-secret");
	while ((st = st_send_wait(&a, name, "au", 0)) == STATUS_UNAVAILABLE && clock_now_ns() < end)
		poll(NULL, 0, 100);
	CU_ASSERT_EQUAL(st, STATUS_OK);
	auth_client_of(&b, 0, "bob-secret");
	CU_ASSERT_EQUAL(st_send_wait(&b, name, "no", 0), STATUS_PERMISSION_DENIED);
	CU_ASSERT_EQUAL(st_recv_wait(&b, name, 0, buf, sizeof buf, &ok), STATUS_OK);
	CU_ASSERT(ok && strcmp(buf, "au") == 0);
	test_conn_close(&a);
	test_conn_close(&b);
}

/* ---- with TLS between the nodes --------------------------------------------------------- */

/*
 * Each node advertises its TLS listener only: a value sent through node 0
 * and received through node 2, both forwarded to node 1, went over TLS
 * connections whose certificates were verified (a plaintext HELLO to a TLS
 * listener gets nowhere).
 */
static void
test_tls_forward(void)
{
	char name[64], buf[8];
	struct test_conn a, b;
	bool ok;

	all_serving();
	made_on(1, "tls", 1, name, sizeof name);
	ct_client_of(&a, 0);
	CU_ASSERT_EQUAL(st_send_wait(&a, name, "t", PROTO_WAIT_FOREVER), STATUS_OK);
	ct_client_of(&b, 2);
	CU_ASSERT_EQUAL(st_recv_wait(&b, name, PROTO_WAIT_FOREVER, buf, sizeof buf, &ok), STATUS_OK);
	CU_ASSERT(ok && strcmp(buf, "t") == 0);
	test_conn_close(&a);
	test_conn_close(&b);
	CU_ASSERT(ct_node_stat(0, "cluster_peers") >= 1);
	CU_ASSERT_EQUAL(ct_node_stat(0, "cluster_peer_errors"), 0);
}

/* The byte at j of value i of tls_bulk: each value its own. */
static uint8_t
bulk_byte(int i, size_t j)
{
	return (uint8_t)((size_t)i * 7 + j % 251);
}

/*
 * Many values, 1 byte to 500 KB, pipelined through TLS connections between
 * the nodes: node 0 forwards the SENDs to node 1, node 2 the RECVs. Their
 * frames span records, reads and seals (one seal takes 64 KiB, one read
 * opens up to 64 KiB), and records may wait in a session while its socket
 * is silent. Every value arrives whole, in order.
 */
static void
test_tls_bulk(void)
{
	static const size_t sizes[] = { 1, 2, 100, 1000, 16383, 16384, 16385, 65535, 65536, 65537,
	    131072, 200000, 500000 };
	enum { N = 130 };
	char name[64];
	struct test_conn a, b;
	struct proto_reply r;
	uint8_t *v = malloc(500000);
	int bad = 0;

	CU_ASSERT_FATAL(v != NULL);
	all_serving();
	made_on(1, "tlsbulk", N, name, sizeof name);
	ct_client_of(&a, 0);
	ct_client_of(&b, 2);
	for (int i = 0; i < N; i++) {
		size_t len = sizes[i % (sizeof sizes / sizeof sizes[0])];

		for (size_t j = 0; j < len; j++)
			v[j] = bulk_byte(i, j);
		st_send(&a, name, v, len, PROTO_WAIT_FOREVER);
		st_recv(&b, name, PROTO_WAIT_FOREVER);
	}
	for (int i = 0; i < N; i++) {
		st_reply(&a, OP_SEND, &r);
		CU_ASSERT_EQUAL(r.status, STATUS_OK);
	}
	for (int i = 0; i < N; i++) {
		size_t len = sizes[i % (sizeof sizes / sizeof sizes[0])];

		st_reply(&b, OP_RECV, &r);
		CU_ASSERT_EQUAL_FATAL(r.status, STATUS_OK);
		/* the RECVs are answered in the order they wait, with the values in the order sent */
		CU_ASSERT_FATAL(r.value.len == len);
		for (size_t j = 0; j < len; j++)
			bad += r.value.data[j] != bulk_byte(i, j);
	}
	CU_ASSERT_EQUAL(bad, 0);
	test_conn_close(&a);
	test_conn_close(&b);
	CU_ASSERT_EQUAL(ct_node_stat(0, "cluster_peer_errors"), 0);
	CU_ASSERT_EQUAL(ct_node_stat(2, "cluster_peer_errors"), 0);
	free(v);
}

/*
 * A node whose certificate node 0 must refuse (cert, gencerts.sh's): node
 * 0 dials it, the handshake fails on node 0's check, a request for its
 * channel is UNAVAILABLE, node 0's log says why (needle), and the node is
 * told by an alert (its log says so). The node is a lone chand the cluster
 * learns of by keys the test writes in etcd.
 */
static void
refused_peer(const char *cert, const char *needle)
{
	struct test_server lone = { 0 };
	char conf[512], key[128], node[128], name[64], msg[300];
	struct test_conn c;
	struct proto_reply r;
	uint64_t errors;

	all_serving();
	snprintf(conf, sizeof conf, "tls_listen = 127.0.0.1:0\ntls_cert = %s/%s.pem\n"
	    "tls_key = %s/%s.key\n", ct_certs(), cert, ct_certs(), cert);
	CU_ASSERT_FATAL(test_server_start(&lone, conf) == 0);
	snprintf(node, sizeof node, "{\"advertise\": \"127.0.0.1:%d\"}", test_server_tls_port(&lone));
	CU_ASSERT_FATAL(ct_etcd_put("/chand/" CT_CLUSTER "/nodes/n8", node));
	snprintf(name, sizeof name, "%s", st_name(cert));
	snprintf(key, sizeof key, "/chand/" CT_CLUSTER "/chans/%s", name);
	CU_ASSERT_FATAL(ct_etcd_put(key, "n8"));
	CU_ASSERT_FATAL(ct_await_stat(0, "cluster_nodes", CT_NODES + 1, 10000));
	errors = ct_node_stat(0, "cluster_peer_errors");
	ct_client_of(&c, 0);
	st_name_op(&c, OP_LEN, name);
	st_reply(&c, OP_LEN, &r);
	snprintf(msg, sizeof msg, "%.*s", (int)r.msg_len, r.msg ? r.msg : "");
	CU_ASSERT_EQUAL(r.status, STATUS_UNAVAILABLE);
	CU_ASSERT(strstr(msg, "n8") != NULL);
	test_conn_close(&c);
	CU_ASSERT(ct_await_log(0, "cluster-peer-lost node=n8", 10000));
	CU_ASSERT(ct_log_count(0, needle) >= 1);
	CU_ASSERT(ct_node_stat(0, "cluster_peer_errors") > errors);
	/* node 0 sent its alert before it closed: the lone node knows why */
	CU_ASSERT(test_server_await_log(&lone, "tls-failed"));
	CU_ASSERT(test_server_log_has(&lone, "alert"));
	CU_ASSERT(ct_etcd_delete(key));
	CU_ASSERT(ct_etcd_delete("/chand/" CT_CLUSTER "/nodes/n8"));
	CU_ASSERT(ct_await_stat(0, "cluster_nodes", CT_NODES, 10000));
	CU_ASSERT_EQUAL(test_server_stop(&lone), 0);
}

static void
test_tls_wrong_ca_peer(void)
{
	refused_peer("otherserver", "certificate: unable to get local issuer certificate");
}

/* The right CA, but a certificate for another name than the address dialled (127.0.0.1). */
static void
test_tls_wrong_name_peer(void)
{
	refused_peer("elsewhere", "certificate: IP address mismatch");
}

/*
 * idle_timeout on (the suite's 500 ms): a client that says HELLO and then
 * nothing is closed for it, but node 0's connection to node 1, idle for
 * longer, is not: node 0 counts no failed peer connection, and the next
 * forwarded SEND goes over the same one.
 */
static void
test_idle_spares_nodes(void)
{
	char name[64], needle[64];
	struct test_conn a, idle;
	struct sockaddr_in sin;
	socklen_t slen = sizeof sin;
	uint64_t errors;

	all_serving();
	made_on(1, "idle", 4, name, sizeof name);
	ct_client_of(&a, 0);
	CU_ASSERT_EQUAL(st_send_wait(&a, name, "1", 0), STATUS_OK);	/* node 0 dials node 1 */
	test_conn_close(&a);
	errors = ct_node_stat(0, "cluster_peer_errors");
	/* opened after node 0's connection went quiet: once it is closed, that one was idle longer */
	ct_client_of(&idle, 1);
	CU_ASSERT_FATAL(getsockname(idle.fd, (struct sockaddr *)&sin, &slen) == 0);
	snprintf(needle, sizeof needle, "peer=127.0.0.1:%d timeout_ms=", ntohs(sin.sin_port));
	CU_ASSERT(ct_await_log(1, needle, 15000));
	CU_ASSERT_EQUAL(ct_node_stat(0, "cluster_peer_errors"), errors);
	CU_ASSERT(ct_node_stat(0, "cluster_peers") >= 1);
	ct_client_of(&a, 0);
	CU_ASSERT_EQUAL(st_send_wait(&a, name, "2", 0), STATUS_OK);
	test_conn_close(&a);
	CU_ASSERT_EQUAL(ct_node_stat(0, "cluster_peer_errors"), errors);
	CU_ASSERT_EQUAL(ct_len(1, name), 2);
	test_conn_close(&idle);
}

/* LEN of name through node 0: its status, and in *ms the backoff its UNAVAILABLE names (or 0). */
static int
len_at_0(const char *name, int *ms)
{
	char why[300];
	const char *p;
	uint64_t n;
	int st = ct_len_at(0, name, &n, why, sizeof why);

	*ms = st == STATUS_UNAVAILABLE && (p = strstr(why, "again in ")) != NULL ? atoi(p + 9) : 0;
	return st;
}

/*
 * A node killed and restarted within its lease (its key never went) is
 * dialled at once when its new key comes, however long the backoff that
 * failed dials to the dead one built up: node 0 dials the dead node 1 until
 * its next try is a second or more away, then node 1 restarts; once node 0
 * saw its key written again, a request forwarded there is answered by it.
 */
static void
test_restart_resets_backoff(void)
{
	char name[64];
	int ms = 0, ups, st;
	int64_t end;

	all_serving();
	made_on(1, "boff", 4, name, sizeof name);
	ct_node_kill(1);
	end = clock_now_ns() + 8 * NSEC_PER_SEC;	/* within the lease (CT_STEADY_TTL_S) */
	while (ms < 1000 && clock_now_ns() < end) {
		CU_ASSERT_EQUAL(len_at_0(name, &ms), STATUS_UNAVAILABLE);
		poll(NULL, 0, 20);
	}
	CU_ASSERT_FATAL(ms >= 1000);
	ups = ct_log_count(0, "cluster-node-up node=n1");
	CU_ASSERT_FATAL(ct_node_restart(1) == 0);
	end = clock_now_ns() + 10 * NSEC_PER_SEC;
	while (ct_log_count(0, "cluster-node-up node=n1") == ups && clock_now_ns() < end)
		poll(NULL, 0, 10);
	CU_ASSERT_FATAL(ct_log_count(0, "cluster-node-up node=n1") > ups);
	/* the channel went with the dead node: the new one says NOT_FOUND */
	st = len_at_0(name, &ms);
	CU_ASSERT_EQUAL(st, STATUS_NOT_FOUND);
	if (st != STATUS_NOT_FOUND)
		printf(" [%s, dialling again in %d ms]", status_name(st), ms);
	ct_await_rejoined(1, 10000);
}

void
ct_add_idle_tests(CU_pSuite s)
{
	test_add(s, "idle_timeout spares the nodes' connections", test_idle_spares_nodes);
}

void
ct_add_tls_tests(CU_pSuite s)
{
	test_add(s, "forwarding over TLS between the nodes", test_tls_forward);
	test_add(s, "many values, 1 B to 500 KB, through TLS between the nodes", test_tls_bulk);
	test_add(s, "a node's certificate from another CA: its handshake fails, said",
	    test_tls_wrong_ca_peer);
	test_add(s, "a node's certificate for another name: its handshake fails, said",
	    test_tls_wrong_name_peer);
}

void
ct_add_auth_tests(CU_pSuite s)
{
	test_add(s, "forwarding with tokens: cluster_token, the client's rights", test_auth_forward);
}

void
ct_add_forward_tests(CU_pSuite s)
{
	test_add(s, "make, send and receive through other nodes", test_make_send_recv);
	test_add(s, "rendezvous through a forwarder", test_rendezvous);
	test_add(s, "close then drain through forwarders", test_close_drain);
	test_add(s, "FIFO of waiters through forwarders", test_fifo);
	test_add(s, "a forwarded deadline", test_deadline);
	test_add(s, "CANCEL of a forwarded RECV", test_cancel);
	test_add(s, "CANCEL of a request waiting for etcd", test_cancel_held);
	test_add(s, "a disconnect CANCELs at the owner", test_disconnect);
	test_add(s, "max_pending forwarded per connection", test_forwarded_limit);
	test_add(s, "a SELECT forwarded whole", test_select_whole);
	test_add(s, "a STREAM forwarded whole, with CREDIT and CANCEL", test_stream);
	test_add(s, "the owner SIGKILLed under a waiting client", test_owner_killed);
	test_add(s, "the owner SIGSTOPped under a waiting client", test_owner_stopped);
	test_add(s, "the forwarder SIGKILLed holding an ack channel's value", test_forwarder_killed_ack);
	test_add(s, "a node restarted within its lease is dialled at once", test_restart_resets_backoff);
}
