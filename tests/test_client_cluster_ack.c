/*
 * test_client_cluster_ack.c: test_client_cluster's ack channels (PROTOCOL.md
 * §16) through one cluster:// connection: ACK, NACK and TOUCH of a value
 * go to the owner's connection, which handed out its tag; a select over
 * ack channels on two nodes acks each value once, at the node that ran
 * it; a stream's tags go back to the stream's node (m.conn). Nothing is
 * left in flight on any owner afterwards.
 *
 * SPDX-License-Identifier: BSD-2-Clause
 */
#include <poll.h>
#include <string.h>

#include "clock.h"
#include "clientclustertest.h"
#include "srvtest.h"
#include "status.h"

/* ---- ack channels ----------------------------------------------------------------------------- */

/* Receive one value of ch with its tag: want, delivered the count-th time. */
static uint64_t
recv_tagged(chan_t *ch, const char *want, uint32_t count)
{
	chan_msg_t m = { 0 };
	bool ok = false;
	uint64_t tag;

	CU_ASSERT_EQUAL_FATAL(chan_recv_msg(NULL, ch, &m, &ok), CHAN_OK);
	CU_ASSERT_FATAL(ok && m.tag != 0);
	CU_ASSERT(m.value.len == strlen(want) && memcmp(m.value.data, want, m.value.len) == 0);
	CU_ASSERT_EQUAL(m.count, count);
	tag = m.tag;
	chan_msg_clear(&m);
	return tag;
}

/* An ack channel named base-N on node want, with a 60 s ack_wait: nothing comes back by itself. */
static chan_t *
make_ack_on(chan_conn_t *c, int want, const char *base, char *name, size_t ncap)
{
	chan_delivery_opts_t d = CHAN_DELIVERY_OPTS_INIT;
	chan_t *ch = make_on(c, want, base, 8, name, ncap);

	/* the same name again as an ack channel: placement is the name's, so node want again */
	CU_ASSERT_EQUAL_FATAL(chan_delete(NULL, ch, NULL), CHAN_OK);
	chan_free(ch);
	d.ack_wait_ns = 60 * NSEC_PER_SEC;
	CU_ASSERT_EQUAL_FATAL(chan_make_opts(NULL, c, name, 8, &d, &ch), CHAN_OK);
	CU_ASSERT_EQUAL_FATAL(owner(c, name), want);
	return ch;
}

/* Node i's channel name holds nothing, in its buffer or in flight, within 5 s (acks are deferred). */
static void
assert_settled(int i, const char *name)
{
	struct proto_chan_info info = { .inflight = 1 };
	int64_t end = clock_now_ns() + 5 * NSEC_PER_SEC;

	while (test_chan_info(ct_node_port(i), name, &info) == 0 && info.inflight != 0 &&
	    clock_now_ns() < end)
		poll(NULL, 0, 20);
	CU_ASSERT_EQUAL(info.inflight, 0);
	CU_ASSERT_EQUAL(info.len, 0);
}

/*
 * An ack channel owned by node 1, used through a cluster connection whose
 * seed is node 0: its tags go to node 1's connection (the one that
 * received the values), so ACK, NACK, TOUCH and chan_ack work there;
 * nothing is left in flight on the owner afterwards.
 */
static void
test_ack_routed(void)
{
	chan_conn_t *c = dial_cluster();
	char name[64];
	chan_t *ch = make_ack_on(c, 1, "ack", name, sizeof name);
	chan_msg_t m = { 0 };
	uint64_t tag;

	CU_ASSERT_EQUAL(chan_send(NULL, ch, "a", 1), CHAN_OK);
	CU_ASSERT_EQUAL(chan_send(NULL, ch, "b", 1), CHAN_OK);
	tag = recv_tagged(ch, "a", 1);
	CU_ASSERT_EQUAL(chan_touch(NULL, ch, &(chan_msg_t){ .tag = tag }), CHAN_OK);
	CU_ASSERT_EQUAL(chan_ack_n(NULL, ch, &tag, 1), CHAN_OK);
	/* acked for good: a second ACK of it is NOT_FOUND on the owner, not an error of routing */
	CU_ASSERT_EQUAL(chan_ack_n(NULL, ch, &tag, 1), CHAN_ENOTFOUND);
	tag = recv_tagged(ch, "b", 1);
	CU_ASSERT_EQUAL(chan_nack(NULL, ch, &(chan_msg_t){ .tag = tag }, 0), CHAN_OK);
	m.tag = recv_tagged(ch, "b", 2);
	CU_ASSERT_EQUAL(chan_ack(ch, &m), CHAN_OK);
	CU_ASSERT_EQUAL(chan_conn_flush(c), CHAN_OK);
	/* the owner holds nothing in flight: its channel is empty and every tag is done */
	assert_settled(1, name);
	chan_delete(NULL, ch, NULL);
	chan_free(ch);
	chan_conn_close(c);
}

/*
 * chan_select over ack channels on nodes 1 and 2 through one cluster
 * connection: the select runs at one node, which relays the winner under
 * a tag of its own (PROTOCOL.md §17); select returns no tag, so the
 * library acks it, and the ack must go to the connection that answered.
 * Every value is taken once and nothing stays in flight on either owner.
 */
static void
test_select_ack_across(void)
{
	chan_conn_t *c = dial_cluster();
	char names[2][64];
	chan_t *ch[2];
	chan_case_t cases[2];
	int got[2] = { 0 }, idx;

	for (int k = 0; k < 2; k++) {
		ch[k] = make_ack_on(c, k + 1, "sack", names[k], sizeof names[k]);
		for (int i = 0; i < 4; i++)
			CU_ASSERT_EQUAL(chan_send(NULL, ch[k], (char[]){ (char)('a' + k) }, 1), CHAN_OK);
	}
	for (int i = 0; i < 8; i++) {
		for (int k = 0; k < 2; k++)
			cases[k] = (chan_case_t){ .dir = CHAN_DIR_RECV, .ch = ch[k] };
		idx = chan_select(NULL, cases, 2, false);
		CU_ASSERT_FATAL(idx == 0 || idx == 1);
		CU_ASSERT(cases[idx].ok && cases[idx].value.len == 1 &&
		    ((const char *)cases[idx].value.data)[0] == (char)('a' + idx));
		got[idx]++;
		chan_value_clear(&cases[idx].value);
	}
	CU_ASSERT(got[0] == 4 && got[1] == 4);
	CU_ASSERT_EQUAL(chan_conn_flush(c), CHAN_OK);
	for (int k = 0; k < 2; k++) {
		assert_settled(k + 1, names[k]);
		chan_delete(NULL, ch[k], NULL);
		chan_free(ch[k]);
	}
	chan_conn_close(c);
}

/*
 * chan_stream_recv_msg over ack channels on the three nodes: the stream
 * runs at one node, and every tag it hands out is that node's, so
 * m.conn (not the channel's owner) is where chan_ack and chan_nack go.
 * A NACKed value comes back through the stream with count 2; at the end
 * nothing is in flight on any owner.
 */
static void
test_stream_ack_across(void)
{
	chan_conn_t *c = dial_cluster();
	char names[3][64];
	chan_t *ch[3];
	chan_stream_t *s;
	chan_msg_t m;
	int got[3] = { 0 }, nacked = -1, again = 0;
	size_t idx;
	bool ok;

	for (int k = 0; k < 3; k++) {
		ch[k] = make_ack_on(c, k, "stack", names[k], sizeof names[k]);
		for (int i = 0; i < 3; i++)
			CU_ASSERT_EQUAL(chan_send(NULL, ch[k], (char[]){ (char)('a' + k) }, 1), CHAN_OK);
	}
	CU_ASSERT_EQUAL_FATAL(chan_stream_open(NULL, ch, 3, 2, &s), CHAN_OK);
	for (int i = 0; i < 10; i++) {
		CU_ASSERT_EQUAL_FATAL(chan_stream_recv_msg(s, &m, &ok, &idx), CHAN_OK);
		CU_ASSERT_FATAL(ok && idx < 3 && m.tag != 0 && m.conn != NULL);
		CU_ASSERT(m.value.len == 1 && ((const char *)m.value.data)[0] == (char)('a' + idx));
		if (nacked < 0) {
			CU_ASSERT_EQUAL(m.count, 1);
			CU_ASSERT_EQUAL(chan_nack(NULL, ch[idx], &m, 0), CHAN_OK);
			nacked = (int)idx;
		} else {
			if (m.count == 2) {	/* the value given back, in its channel's turn */
				CU_ASSERT_EQUAL((int)idx, nacked);
				again++;
			} else {
				CU_ASSERT_EQUAL(m.count, 1);
			}
			CU_ASSERT_EQUAL(chan_ack(ch[idx], &m), CHAN_OK);
			got[idx]++;
		}
		chan_msg_clear(&m);
	}
	for (int k = 0; k < 3; k++)
		CU_ASSERT_EQUAL(got[k], 3);
	CU_ASSERT_EQUAL(again, 1);
	CU_ASSERT_EQUAL(chan_conn_flush(c), CHAN_OK);
	for (int k = 0; k < 3; k++)
		assert_settled(k, names[k]);
	chan_stream_free(s);
	for (int k = 0; k < 3; k++) {
		chan_delete(NULL, ch[k], NULL);
		chan_free(ch[k]);
	}
	chan_conn_close(c);
}

/* The ack channel tests, after the stream across nodes. */
void
register_client_cluster_ack(CU_pSuite s)
{
	test_add(s, "ACK, NACK and TOUCH go to the owner's connection", test_ack_routed);
	test_add(s, "select over ack channels on two nodes acks once", test_select_ack_across);
	test_add(s, "a stream's tags go back to the stream's node", test_stream_ack_across);
}
