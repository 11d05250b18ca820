/*
 * test_cluster_xack.c: a cross-node SELECT over ack channels (PROTOCOL.md
 * §16 and §17), through a plain client of node 0, one ack channel on each
 * node: the value that fires comes under a tag of node 0's and stays in
 * flight at its owner until ACK through node 0; NACK there gives it back
 * with its count + 1; among values ready at once on several nodes exactly
 * one is delivered and every other goes back to the head of its channel
 * never delivered (count unchanged, nothing left in flight); a parked
 * select woken on a remote node; a client that leaves without ACK gets
 * its value redelivered once. The load runs are in
 * test_cluster_select_load.c. Run by test_cluster.c on its fixture (etcd,
 * n0..n2).
 *
 * SPDX-License-Identifier: BSD-2-Clause
 */
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "clustertest.h"

#define NAME_CAP 96
#define FWD_TAG_BASE (UINT64_C(1) << 62)	/* a forwarder's tags (router_int.h) */

/* Ack channel i of a test lives on node i. */
static char names[CT_NODES][NAME_CAP];

void
ct_make_ack_on(int node, const char *name, uint64_t cap)
{
	struct proto_delivery d = { .on = true, .ack_wait_us = 60 * 1000000ull,
	    .max_deliver = PROTO_MAX_DELIVER_DEFAULT, .max_unacked = PROTO_MAX_UNACKED_DEFAULT };
	struct test_conn o;
	struct proto_reply r;

	ct_client_of(&o, node);
	proto_req_make_opts(&ct_out, o.next_id++, name, strlen(name), cap, &d);
	st_write(&o, &ct_out);
	st_reply(&o, OP_MAKE, &r);
	CU_ASSERT_EQUAL_FATAL(r.status, STATUS_OK);
	test_conn_close(&o);
}

/* Three ack channels (ack_wait a minute), channel i placed and made on node i; receive cases on them. */
static void
make_three(const char *base, struct proto_case *cases)
{
	char b[64];

	for (int i = 0; i < CT_NODES; i++) {
		snprintf(b, sizeof b, "%s%d", base, i);
		snprintf(names[i], NAME_CAP, "%s", ct_name_placed_on(i, b));
		ct_make_ack_on(i, names[i], 4);
		cases[i] = (struct proto_case){ .dir = 0, .name = names[i],
		    .name_len = (uint32_t)strlen(names[i]) };
	}
}

/* Channel i's INFO at its owner. */
static struct proto_chan_info
info_of(int i)
{
	struct proto_chan_info info = { 0 };
	struct test_conn c;

	ct_client_of(&c, i);
	CU_ASSERT_EQUAL(st_info(&c, names[i], &info), STATUS_OK);
	test_conn_close(&c);
	return info;
}

/* Channel i's owner reaches len values buffered and inflight in flight (XSETTLE runs after the reply). */
static bool
await_info(int i, uint64_t len, uint64_t inflight)
{
	int64_t end = clock_now_ns() + 10 * NSEC_PER_SEC;
	struct proto_chan_info info;

	do {
		info = info_of(i);
		if (info.len == len && info.inflight == inflight)
			return true;
	} while (clock_now_ns() < end && poll(NULL, 0, 5) == 0);
	printf(" [node %d: len %llu inflight %llu]", i, (unsigned long long)info.len,
	    (unsigned long long)info.inflight);
	return false;
}

/* RECV from channel i at its owner, without waiting: the value (in buf) and its count. */
static uint64_t
recv_at_owner(int i, char *buf, size_t cap)
{
	struct test_conn c;
	struct proto_reply r;
	uint64_t count;

	ct_client_of(&c, i);
	st_recv(&c, names[i], 0);
	st_reply(&c, OP_RECV, &r);
	CU_ASSERT_EQUAL(r.status, STATUS_OK);
	snprintf(buf, cap, "%.*s", (int)r.value.len, r.value.len ? (const char *)r.value.data : "");
	count = r.count;
	/* acked at once: the test is about the count it came with */
	CU_ASSERT(r.status == STATUS_OK && r.tag != 0);
	if (r.status == STATUS_OK && r.tag != 0) {
		proto_req_ack(&ct_out, c.next_id++, &r.tag, 1);
		st_write(&c, &ct_out);
		st_reply(&c, OP_ACK, &r);
		CU_ASSERT_EQUAL(r.status, STATUS_OK);
	}
	test_conn_close(&c);
	return count;
}

/* SELECT over the three channels through c; the reply in *r. */
static void
select_three(struct test_conn *c, const struct proto_case *cases, int64_t wait_us,
    struct proto_reply *r)
{
	st_select(c, cases, CT_NODES, false, wait_us);
	st_reply(c, OP_SELECT, r);
	if (r->status != STATUS_OK)
		printf(" [%s: %.*s]", status_name(r->status), (int)r->msg_len, r->msg ? r->msg : "");
}

/* ACK (or NACK, delay 0) tag on c: the status. */
static int
settle_tag(struct test_conn *c, uint64_t op, uint64_t tag)
{
	struct proto_reply r;

	if (op == OP_ACK)
		proto_req_ack(&ct_out, c->next_id++, &tag, 1);
	else
		proto_req_nack(&ct_out, c->next_id++, tag, 0);
	st_write(c, &ct_out);
	st_reply(c, op, &r);
	return r.status;
}

/* A value on node 1's channel: delivered once, under node 0's tag; ACK through node 0 ends it. */
static void
test_ready_then_ack(void)
{
	struct proto_case cases[CT_NODES];
	struct proto_reply r;
	struct test_conn c;

	make_three("xaready", cases);
	ct_send(1, names[1], "one");
	ct_client_of(&c, 0);
	select_three(&c, cases, PROTO_WAIT_FOREVER, &r);
	CU_ASSERT_EQUAL_FATAL(r.status, STATUS_OK);
	CU_ASSERT_EQUAL(r.index, 1);
	CU_ASSERT(r.value.len == 3 && memcmp(r.value.data, "one", 3) == 0);
	CU_ASSERT(r.tag > FWD_TAG_BASE);
	CU_ASSERT_EQUAL(r.count, 1);
	CU_ASSERT_EQUAL(info_of(1).inflight, 1);
	CU_ASSERT_EQUAL(settle_tag(&c, OP_ACK, r.tag), STATUS_OK);
	CU_ASSERT_EQUAL(info_of(1).inflight, 0);
	CU_ASSERT_EQUAL(info_of(1).len, 0);
	CU_ASSERT_EQUAL(settle_tag(&c, OP_ACK, r.tag), STATUS_NOT_FOUND);	/* once */
	test_conn_close(&c);
}

/* NACK through node 0: the value is back at its owner with count 2, and goes to the next receiver. */
static void
test_nack_redelivers(void)
{
	struct proto_case cases[CT_NODES];
	struct proto_reply r;
	struct test_conn c;
	char buf[16];

	make_three("xanack", cases);
	ct_send(2, names[2], "two");
	ct_client_of(&c, 0);
	select_three(&c, cases, PROTO_WAIT_FOREVER, &r);
	CU_ASSERT_EQUAL_FATAL(r.status, STATUS_OK);
	CU_ASSERT_EQUAL(r.index, 2);
	CU_ASSERT_EQUAL(settle_tag(&c, OP_NACK, r.tag), STATUS_OK);
	CU_ASSERT_EQUAL(recv_at_owner(2, buf, sizeof buf), 2);
	CU_ASSERT_STRING_EQUAL(buf, "two");
	CU_ASSERT_EQUAL(info_of(2).inflight, 0);
	test_conn_close(&c);
}

/*
 * A value on every node, 30 times: each select delivers one (a tag of
 * node 0's, count 1); the two it did not choose are back at the head of
 * their channels, not in flight, and their next delivery counts 1, as
 * if the select had never seen them.
 */
static void
test_unchosen_go_back(void)
{
	struct proto_case cases[CT_NODES];
	struct proto_reply r;
	struct test_conn c;
	char buf[16], want[16];
	int chosen[CT_NODES] = { 0 };

	make_three("xaback", cases);
	ct_client_of(&c, 0);
	for (int round = 0; round < 30; round++) {
		for (int i = 0; i < CT_NODES; i++) {
			snprintf(buf, sizeof buf, "%d.%d", round, i);
			ct_send(i, names[i], buf);
		}
		select_three(&c, cases, PROTO_WAIT_FOREVER, &r);
		CU_ASSERT_EQUAL_FATAL(r.status, STATUS_OK);
		CU_ASSERT_FATAL(r.index >= 0 && r.index < CT_NODES);
		chosen[r.index]++;
		CU_ASSERT(r.tag > FWD_TAG_BASE && r.count == 1);
		CU_ASSERT_EQUAL(settle_tag(&c, OP_ACK, r.tag), STATUS_OK);
		for (int i = 0; i < CT_NODES; i++) {
			CU_ASSERT(await_info(i, i == r.index ? 0 : 1, 0));
			if (i == r.index)
				continue;
			snprintf(want, sizeof want, "%d.%d", round, i);
			CU_ASSERT_EQUAL(recv_at_owner(i, buf, sizeof buf), 1);
			CU_ASSERT_STRING_EQUAL(buf, want);
		}
	}
	printf(" [chosen %d/%d/%d]", chosen[0], chosen[1], chosen[2]);
	test_conn_close(&c);
}

/* A select parked on three empty ack channels, woken by a send at node 2: delivered once, ACKed. */
static void
test_parked_woken(void)
{
	struct proto_case cases[CT_NODES];
	struct proto_reply r;
	struct test_conn c;

	make_three("xapark", cases);
	ct_client_of(&c, 0);
	st_select(&c, cases, CT_NODES, false, PROTO_WAIT_FOREVER);
	CU_ASSERT_FATAL(ct_await_receivers(2, names[2], 1));
	ct_send(2, names[2], "late");
	st_reply(&c, OP_SELECT, &r);
	CU_ASSERT_EQUAL_FATAL(r.status, STATUS_OK);
	CU_ASSERT_EQUAL(r.index, 2);
	CU_ASSERT(r.value.len == 4 && memcmp(r.value.data, "late", 4) == 0);
	CU_ASSERT(r.tag > FWD_TAG_BASE && r.count == 1);
	CU_ASSERT_EQUAL(settle_tag(&c, OP_ACK, r.tag), STATUS_OK);
	for (int i = 0; i < CT_NODES; i++) {
		CU_ASSERT(ct_await_receivers(i, names[i], 0));
		CU_ASSERT(await_info(i, 0, 0));
	}
	test_conn_close(&c);
}

/* The client leaves holding the value, never ACKed: back at its owner once, count 2. */
static void
test_disconnect_redelivers(void)
{
	struct proto_case cases[CT_NODES];
	struct proto_reply r;
	struct test_conn c, o;
	char buf[16];

	make_three("xadisc", cases);
	ct_send(1, names[1], "gone");
	ct_client_of(&c, 0);
	select_three(&c, cases, PROTO_WAIT_FOREVER, &r);
	CU_ASSERT_EQUAL_FATAL(r.status, STATUS_OK);
	CU_ASSERT_EQUAL(r.index, 1);
	test_conn_close(&c);
	/* node 0 NACKs it at node 1 when it sees the close: await it there */
	ct_client_of(&o, 1);
	st_recv(&o, names[1], 10 * 1000000);
	st_reply(&o, OP_RECV, &r);
	CU_ASSERT_EQUAL(r.status, STATUS_OK);
	CU_ASSERT_EQUAL(r.count, 2);
	snprintf(buf, sizeof buf, "%.*s", (int)r.value.len, r.value.len ? (const char *)r.value.data : "");
	CU_ASSERT_STRING_EQUAL(buf, "gone");
	CU_ASSERT_EQUAL(settle_tag(&o, OP_ACK, r.tag), STATUS_OK);
	CU_ASSERT_EQUAL(info_of(1).len, 0);
	CU_ASSERT_EQUAL(info_of(1).inflight, 0);
	test_conn_close(&o);
}

void
ct_add_xack_tests(CU_pSuite s)
{
	test_add(s, "ack select: a ready value under node 0's tag; ACK ends it", test_ready_then_ack);
	test_add(s, "ack select: NACK through node 0 redelivers, count 2", test_nack_redelivers);
	test_add(s, "ack select: the values not chosen go back never delivered", test_unchosen_go_back);
	test_add(s, "ack select: parked, woken at node 2", test_parked_woken);
	test_add(s, "ack select: a client gone before ACK: redelivered once", test_disconnect_redelivers);
}
