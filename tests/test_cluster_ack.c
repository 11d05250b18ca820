/*
 * test_cluster_ack.c: an ack channel (PROTOCOL.md §16) used through a
 * forwarding node (§17): two plain clients of n0 share an ack channel
 * owned by n1; each gets tags of n0's own, good on its connection only;
 * ACK, NACK and TOUCH reach the owner; a client's disconnect at n0 gives
 * back its values at once, not the other client's. Deferred replies
 * (§15) through a forwarder: held there until WANT or another reply, and
 * a WANT made before the reply came is honoured. And a forwarder told
 * MOVED by the old owner while the new one is unreachable answers
 * UNAVAILABLE after that one hop. Run by test_cluster.c on its fixture.
 *
 * SPDX-License-Identifier: BSD-2-Clause
 */
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "clustertest.h"

#define FWD_TAG_BASE (UINT64_C(1) << 62)	/* the forwarder's tags (router_int.h) */

/* An ack channel (ack_wait a minute: only ACK, NACK or a disconnect ends a delivery) on node 1, in buf. */
static void
ack_chan_on_1(const char *base, char *buf, size_t cap)
{
	struct proto_delivery d = { .on = true, .ack_wait_us = 60 * 1000000ull,
	    .max_deliver = PROTO_MAX_DELIVER_DEFAULT, .max_unacked = PROTO_MAX_UNACKED_DEFAULT };
	struct test_conn o;
	struct proto_reply r;

	snprintf(buf, cap, "%s", ct_name_placed_on(1, base));
	ct_client_of(&o, 1);
	proto_req_make_opts(&ct_out, o.next_id++, buf, strlen(buf), 8, &d);
	st_write(&o, &ct_out);
	st_reply(&o, OP_MAKE, &r);
	CU_ASSERT_EQUAL_FATAL(r.status, STATUS_OK);
	test_conn_close(&o);
}

/* RECV on c (through node 0): the value (one byte, in *v), its tag and count. */
static uint64_t
recv_tagged(struct test_conn *c, const char *name, char *v, uint64_t *count)
{
	struct proto_reply r;

	st_recv(c, name, 10 * 1000000);
	st_reply(c, OP_RECV, &r);
	CU_ASSERT_EQUAL_FATAL(r.status, STATUS_OK);
	CU_ASSERT_FATAL(r.value.len == 1);
	*v = (char)r.value.data[0];
	*count = r.count;
	return r.tag;
}

/* ACK tags on c: the status, acked (OK) and the error's words. */
int
ct_ack(struct test_conn *c, const uint64_t *tags, size_t n, uint64_t *acked, char *msg, size_t cap)
{
	struct proto_reply r;

	proto_req_ack(&ct_out, c->next_id++, tags, n);
	st_write(c, &ct_out);
	st_reply(c, OP_ACK, &r);
	*acked = r.status == STATUS_OK ? r.n : 0;
	snprintf(msg, cap, "%.*s", (int)r.msg_len, r.msg ? r.msg : "");
	return r.status;
}

/* NACK (delay 0) or TOUCH of tag on c: the status. */
int
ct_nack_touch(struct test_conn *c, uint64_t op, uint64_t tag)
{
	struct proto_reply r;

	if (op == OP_NACK)
		proto_req_nack(&ct_out, c->next_id++, tag, 0);
	else
		proto_req_touch(&ct_out, c->next_id++, tag);
	st_write(c, &ct_out);
	st_reply(c, op, &r);
	return r.status;
}

/* The channel's values in flight at its owner, node 1. */
static uint64_t
inflight(const char *name)
{
	struct proto_chan_info info;
	struct test_conn o;

	ct_client_of(&o, 1);
	CU_ASSERT_EQUAL(st_info(&o, name, &info), STATUS_OK);
	test_conn_close(&o);
	return info.inflight;
}

/* A receiver waits on name at its owner, node 1. */
static bool
owner_waits_recv(const char *name)
{
	struct test_conn o;
	bool ok;

	ct_client_of(&o, 1);
	ok = st_await_waiters(&o, name, 0, 1);
	test_conn_close(&o);
	return ok;
}

/*
 * Two clients of node 0 receive from one ack channel of node 1: distinct
 * tags of node 0's; neither may ACK, NACK or TOUCH the other's
 * (PERMISSION_DENIED); a NACKed value comes again to the other client with
 * count 2; ACKs end them at the owner; an ACKed tag is not in flight.
 */
static void
test_two_clients(void)
{
	char name[64], va, vb, vc, msg[160];
	struct test_conn o, a, b;
	uint64_t ta, tb, tc, ca, cb, cc, acked;

	ack_chan_on_1("ackfw2", name, sizeof name);
	ct_client_of(&o, 1);
	CU_ASSERT_EQUAL(st_send_wait(&o, name, "a", 0), STATUS_OK);
	CU_ASSERT_EQUAL(st_send_wait(&o, name, "b", 0), STATUS_OK);
	ct_client_of(&a, 0);
	ct_client_of(&b, 0);
	ta = recv_tagged(&a, name, &va, &ca);
	tb = recv_tagged(&b, name, &vb, &cb);
	CU_ASSERT(va == 'a' && vb == 'b' && ca == 1 && cb == 1);
	CU_ASSERT(ta > FWD_TAG_BASE && tb > FWD_TAG_BASE && ta != tb);
	CU_ASSERT_EQUAL(inflight(name), 2);
	/* the other client's tag: refused, and nothing changes */
	CU_ASSERT_EQUAL(ct_ack(&b, &ta, 1, &acked, msg, sizeof msg), STATUS_PERMISSION_DENIED);
	CU_ASSERT(strstr(msg, "held by another connection") != NULL);
	CU_ASSERT_EQUAL(ct_nack_touch(&a, OP_NACK, tb), STATUS_PERMISSION_DENIED);
	CU_ASSERT_EQUAL(ct_nack_touch(&a, OP_TOUCH, tb), STATUS_PERMISSION_DENIED);
	CU_ASSERT_EQUAL(inflight(name), 2);
	/* its own: TOUCH, ACK */
	CU_ASSERT_EQUAL(ct_nack_touch(&a, OP_TOUCH, ta), STATUS_OK);
	CU_ASSERT_EQUAL(ct_ack(&a, &ta, 1, &acked, msg, sizeof msg), STATUS_OK);
	CU_ASSERT_EQUAL(acked, 1);
	CU_ASSERT_EQUAL(ct_ack(&a, &ta, 1, &acked, msg, sizeof msg), STATUS_NOT_FOUND);
	CU_ASSERT(strstr(msg, "is not in flight (0 of 1 acked)") != NULL);
	/* b gives "b" back: a gets it again, count 2, under a new tag */
	CU_ASSERT_EQUAL(ct_nack_touch(&b, OP_NACK, tb), STATUS_OK);
	CU_ASSERT_EQUAL(ct_nack_touch(&b, OP_NACK, tb), STATUS_NOT_FOUND);
	tc = recv_tagged(&a, name, &vc, &cc);
	CU_ASSERT(vc == 'b' && cc == 2 && tc != tb && tc != ta);
	/* an ACK naming a good tag and a gone one: the good one is acked all the same */
	{
		uint64_t both[2] = { tc, tb };

		CU_ASSERT_EQUAL(ct_ack(&a, both, 2, &acked, msg, sizeof msg), STATUS_NOT_FOUND);
		CU_ASSERT(strstr(msg, "is not in flight (1 of 2 acked)") != NULL);
	}
	CU_ASSERT_EQUAL(inflight(name), 0);
	test_conn_close(&a);
	test_conn_close(&b);
	test_conn_close(&o);
}

/*
 * A client of node 0 that disconnects holding a value: the owner gets it
 * back at once (ack_wait is a minute), count 2 at its next delivery; the
 * other client's value stays in flight for it, and its ACK still works.
 */
static void
test_disconnect_requeues_own(void)
{
	char name[64], v, w;
	struct test_conn o, a, b;
	uint64_t ta, tb, tr, count, acked;
	char msg[160];

	ack_chan_on_1("ackfwd", name, sizeof name);
	ct_client_of(&o, 1);
	CU_ASSERT_EQUAL(st_send_wait(&o, name, "x", 0), STATUS_OK);
	CU_ASSERT_EQUAL(st_send_wait(&o, name, "y", 0), STATUS_OK);
	ct_client_of(&a, 0);
	ct_client_of(&b, 0);
	ta = recv_tagged(&a, name, &v, &count);
	CU_ASSERT(v == 'x' && count == 1);
	tb = recv_tagged(&b, name, &w, &count);
	CU_ASSERT(w == 'y' && count == 1);
	CU_ASSERT(ta != tb);
	test_conn_close(&a);
	/* redelivered to a receiver of the owner itself: "x" only, count 2 */
	tr = recv_tagged(&o, name, &v, &count);
	CU_ASSERT(v == 'x' && count == 2);
	CU_ASSERT_EQUAL(inflight(name), 2);
	CU_ASSERT_EQUAL(ct_ack(&b, &tb, 1, &acked, msg, sizeof msg), STATUS_OK);
	CU_ASSERT_EQUAL(acked, 1);
	CU_ASSERT_EQUAL(ct_ack(&o, &tr, 1, &acked, msg, sizeof msg), STATUS_OK);
	CU_ASSERT_EQUAL(inflight(name), 0);
	test_conn_close(&b);
	test_conn_close(&o);
}

/*
 * An ACK through node 0 may not mix a tag of node 0's own channel with a
 * forwarded one (BAD_REQUEST, nothing acked); each in its own ACK works.
 */
static void
test_mixed_ack(void)
{
	struct proto_delivery d = { .on = true, .ack_wait_us = 60 * 1000000ull,
	    .max_deliver = PROTO_MAX_DELIVER_DEFAULT, .max_unacked = PROTO_MAX_UNACKED_DEFAULT };
	char name[64], local[64], v, msg[160];
	struct test_conn a;
	struct proto_reply r;
	uint64_t tags[2], count, acked;

	ack_chan_on_1("ackmix", name, sizeof name);
	snprintf(local, sizeof local, "%s", ct_name_placed_on(0, "acklocal"));
	ct_client_of(&a, 0);
	proto_req_make_opts(&ct_out, a.next_id++, local, strlen(local), 8, &d);
	st_write(&a, &ct_out);
	st_reply(&a, OP_MAKE, &r);
	CU_ASSERT_EQUAL_FATAL(r.status, STATUS_OK);
	CU_ASSERT_EQUAL(st_send_wait(&a, name, "f", 0), STATUS_OK);
	CU_ASSERT_EQUAL(st_send_wait(&a, local, "l", 0), STATUS_OK);
	tags[0] = recv_tagged(&a, name, &v, &count);
	tags[1] = recv_tagged(&a, local, &v, &count);
	CU_ASSERT(tags[0] > FWD_TAG_BASE && tags[1] < FWD_TAG_BASE);
	CU_ASSERT_EQUAL(ct_ack(&a, tags, 2, &acked, msg, sizeof msg), STATUS_BAD_REQUEST);
	CU_ASSERT_EQUAL(inflight(name), 1);
	CU_ASSERT_EQUAL(ct_ack(&a, &tags[1], 1, &acked, msg, sizeof msg), STATUS_OK);
	CU_ASSERT_EQUAL(ct_ack(&a, &tags[0], 1, &acked, msg, sizeof msg), STATUS_OK);
	CU_ASSERT_EQUAL(inflight(name), 0);
	test_conn_close(&a);
}

/*
 * A deferred SEND through node 0: its OK is held at node 0 (nothing comes
 * to the client; the sync point is another client's forwarded request
 * on the same peer connection, answered after it), then written by a
 * WANT. A deferred RECV through node 0 waited for by WANT before the
 * value comes: its reply comes with the value, not held.
 */
static void
test_deferred(void)
{
	char name[64], buf[8];
	struct test_conn a, b;
	struct proto_reply r;
	struct pollfd pfd;
	uint64_t sid, rid, wid;
	bool ok;

	snprintf(name, sizeof name, "%s", ct_name_placed_on(1, "fwdefer"));
	ct_client_of(&a, 1);
	CU_ASSERT_EQUAL_FATAL(st_make(&a, name, 4), STATUS_OK);
	test_conn_close(&a);
	ct_client_of(&a, 0);
	ct_client_of(&b, 0);
	/* node 0 learns the owner first: a request that waited for etcd is answered, not deferred */
	CU_ASSERT_EQUAL_FATAL(st_info(&a, name, NULL), STATUS_OK);
	sid = st_send_deferred(&a, name, "d", 1);
	/* the owner answered it before this, on the same peer connection */
	CU_ASSERT_EQUAL(st_send_wait(&b, name, "e", 0), STATUS_OK);
	pfd = (struct pollfd){ .fd = a.fd, .events = POLLIN };
	CU_ASSERT_EQUAL(a.len - a.consumed, 0);
	CU_ASSERT_EQUAL(poll(&pfd, 1, 200), 0);
	wid = st_want(&a, sid);
	st_reply(&a, OP_SEND, &r);
	CU_ASSERT(r.id == sid && r.status == STATUS_OK);
	/* WANT's own reply is held: it comes with the next one */
	st_ping(&a);
	st_reply(&a, OP_WANT, &r);
	CU_ASSERT_EQUAL(r.id, wid);
	st_reply(&a, OP_PING, &r);
	/* drain; then a deferred RECV that waits, WANTed before the value comes */
	for (int i = 0; i < 2; i++)
		CU_ASSERT_EQUAL(st_recv_wait(&b, name, 0, buf, sizeof buf, &ok), STATUS_OK);
	rid = st_recv_deferred(&a, name);
	wid = st_want(&a, rid);
	CU_ASSERT_FATAL(owner_waits_recv(name));
	CU_ASSERT_EQUAL(st_send_wait(&b, name, "f", 0), STATUS_OK);
	st_reply(&a, OP_WANT, &r);
	CU_ASSERT_EQUAL(r.id, wid);
	st_reply(&a, OP_RECV, &r);
	CU_ASSERT(r.id == rid && r.status == STATUS_OK && r.value.len == 1 && r.value.data[0] == 'f');
	test_conn_close(&a);
	test_conn_close(&b);
}

/* Does node i answer MOVED for name to a client that follows it? */
static bool
moved_at(int i, const char *name)
{
	struct test_conn c;
	struct proto_reply r;

	CU_ASSERT_FATAL(ct_open_client(&c, ct_node_port(i), true) == 0);
	st_send(&c, name, "z", 1, 0);
	st_reply(&c, OP_SEND, &r);
	test_conn_close(&c);
	return r.status == STATUS_MOVED;
}

/*
 * One try with name, a channel made on node 1: node 0 stopped while the client's
 * SEND reaches its socket and then the channel's key names n9, until node
 * 1 answers MOVED for it; node 0 continued. Its answer, in msg: the
 * status. Node 0 reads the SEND before etcd's news (it came first), so it
 * forwards it to node 1 with its old view; should it read the news first,
 * it goes to n9 itself ("node n9 lost"), and the caller tries again.
 */
static int
moved_try(const char *name, char *msg, size_t cap)
{
	char key[256];
	struct test_conn c;
	struct proto_reply r;
	uint64_t id;
	int64_t t0, end;
	int status;

	ct_client_of(&c, 0);
	ct_node_signal(0, SIGSTOP);
	id = st_send(&c, name, "m", 1, PROTO_WAIT_FOREVER);
	snprintf(key, sizeof key, "/chand/" CT_CLUSTER "/chans/%s", name);
	CU_ASSERT(ct_etcd_put(key, "n9"));
	end = clock_now_ns() + 10 * NSEC_PER_SEC;
	while (!moved_at(1, name) && clock_now_ns() < end)
		poll(NULL, 0, 10);
	t0 = clock_now_ns();
	ct_node_signal(0, SIGCONT);
	st_reply(&c, OP_SEND, &r);
	CU_ASSERT_EQUAL(r.id, id);
	status = r.status;
	snprintf(msg, cap, "%.*s", (int)r.msg_len, r.msg ? r.msg : "");
	CU_ASSERT((clock_now_ns() - t0) / NSEC_PER_MSEC < 5000);
	/* node 0 knows now: n9, which it cannot reach */
	st_send(&c, name, "m", 1, PROTO_WAIT_FOREVER);
	st_reply(&c, OP_SEND, &r);
	CU_ASSERT_EQUAL(r.status, STATUS_UNAVAILABLE);
	test_conn_close(&c);
	CU_ASSERT(ct_etcd_delete(key));
	return status;
}

/*
 * Node 0 forwards a SEND to node 1, which owned the channel when node 0
 * last heard; node 1 knows meanwhile that node n9 (live in etcd, but
 * nothing listens at its address) owns it, and answers MOVED: node 0
 * answers UNAVAILABLE "owned by another node at ..." at once, without a
 * second hop (node 1 forwarded nothing), and goes on serving. A node key
 * and channel keys are written straight into etcd, and deleted.
 */
static void
test_moved_unreachable(void)
{
	char node[128], msg[256], names[3][64];
	struct test_conn c;
	uint64_t fwd1;
	bool moved = false;

	/* made before n9 joins: placement counts live nodes */
	ct_client_of(&c, 1);
	for (int k = 0; k < 3; k++) {
		snprintf(names[k], sizeof names[k], "%s", ct_name_placed_on(1, "movedaway"));
		CU_ASSERT_EQUAL_FATAL(st_make(&c, names[k], 4), STATUS_OK);
	}
	test_conn_close(&c);
	fwd1 = ct_node_stat(1, "cluster_forwarded");
	snprintf(node, sizeof node, "{\"advertise\": \"127.0.0.1:%d\"}", ct_free_port());
	CU_ASSERT_FATAL(ct_etcd_put("/chand/" CT_CLUSTER "/nodes/n9", node));
	for (int i = 0; i < 2; i++)
		CU_ASSERT_FATAL(ct_await_stat(i, "cluster_nodes", CT_NODES + 1, 10000));
	for (int k = 0; k < 3 && !moved; k++) {
		CU_ASSERT_EQUAL(moved_try(names[k], msg, sizeof msg), STATUS_UNAVAILABLE);
		moved = strstr(msg, "owned by another node at 127.0.0.1:") != NULL;
		CU_ASSERT(moved || strstr(msg, "node n9 lost") != NULL);
	}
	CU_ASSERT(moved);
	CU_ASSERT_EQUAL(ct_node_stat(1, "cluster_forwarded"), fwd1);
	CU_ASSERT(ct_etcd_delete("/chand/" CT_CLUSTER "/nodes/n9"));
	for (int i = 0; i < CT_NODES; i++) {
		CU_ASSERT(ct_await_stat(i, "cluster_nodes", CT_NODES, 10000));
		CU_ASSERT_EQUAL(ct_node_stat(i, "cluster_serving"), 1);
	}
}

void
ct_add_ack_tests(CU_pSuite s)
{
	test_add(s, "two clients of a forwarder share an ack channel", test_two_clients);
	test_add(s, "a disconnect at the forwarder gives back its own values", test_disconnect_requeues_own);
	test_add(s, "an ACK mixing local and forwarded tags", test_mixed_ack);
	test_add(s, "deferred replies through a forwarder, and WANT", test_deferred);
	test_add(s, "MOVED from the old owner, the new one unreachable", test_moved_unreachable);
}
