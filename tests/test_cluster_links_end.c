/*
 * test_cluster_links_end.c: how links whose channels live on other nodes
 * end (PROTOCOL.md §17, "Links in a cluster"): CANCEL, the creator's
 * disconnect and the link's deadline leave no waiter on any node; an ack
 * channel's value goes back; the link's node stopping gives back the value
 * lent to its pump; a peer node SIGKILLed under a running fan-in ends the
 * link UNAVAILABLE with no value received twice, one it no longer needs
 * does not stop it; the final reply of a link that ended OK follows its
 * remote outputs' close. Run by test_cluster.c
 * (through ct_add_link_tests) on its fixture.
 *
 * SPDX-License-Identifier: BSD-2-Clause
 */
#include <stdio.h>
#include <string.h>

#include "clustertest.h"

/*
 * A FAN_IN over nodes 1 and 2 waits there (WAITERS shows n0 as home);
 * CANCEL, the creator's disconnect and the link's deadline leave no
 * waiter on any node.
 */
static void
test_cancel_disconnect(void)
{
	char a[CT_NAME_CAP], b[CT_NAME_CAP], out[CT_NAME_CAP];
	struct proto_case cases[2];
	struct proto_request l = { .op = OP_FAN_IN, .cases = cases, .ncases = 2 };
	struct proto_reply r;
	struct test_conn c;
	uint64_t id;

	ct_make_on(1, a, "xcd_a", 0);
	ct_make_on(2, b, "xcd_b", 0);
	ct_make_on(1, out, "xcd_out", 0);
	cases[0] = ctl_case_of(a);
	cases[1] = ctl_case_of(b);
	ctl_set_out(&l, 0, out, 0);
	for (int round = 0; round < 3; round++) {
		if (round < 2) {
			id = ctl_start_link(&l, &c);
			CU_ASSERT(ctl_await_waiters(1, a, "n0", 1));
			CU_ASSERT(ctl_await_waiters(2, b, "n0", 1));
		} else {
			/* a 300 ms life: it ends DEADLINE_EXCEEDED by itself */
			ct_client_of(&c, 0);
			proto_out_reset(&ct_out);
			CU_ASSERT_FATAL(proto_req_link(&ct_out, c.next_id++, 300000, &l) == 0);
			st_write(&c, &ct_out);
			st_reply(&c, OP_FAN_IN, &r);
			CU_ASSERT_EQUAL_FATAL(r.status, STATUS_STARTED);
			st_reply(&c, OP_FAN_IN, &r);
			CU_ASSERT_EQUAL(r.status, STATUS_DEADLINE_EXCEEDED);
		}
		if (round == 0) {
			proto_out_reset(&ct_out);
			proto_req_cancel(&ct_out, c.next_id++, id);
			st_write(&c, &ct_out);
			st_reply(&c, OP_FAN_IN, &r);
			CU_ASSERT_EQUAL(r.status, STATUS_CANCELED);
		}
		test_conn_close(&c);
		CU_ASSERT(ctl_await_waiters(1, a, NULL, 0));
		CU_ASSERT(ctl_await_waiters(2, b, NULL, 0));
		ctl_assert_closed(1, out, 0);
		/* closed now: the next round's output is a new one */
		ct_make_on(1, out, round == 0 ? "xcd_out1" : round == 1 ? "xcd_out2" : "xcd_out3", 0);
		ctl_set_out(&l, 0, out, 0);
	}
}

/*
 * An ack channel (§16) of node 1 as a link's input: the link ends
 * UNAVAILABLE saying why, and the value is given back (received again at
 * its owner, with a tag).
 */
static void
test_ack_input(void)
{
	struct proto_delivery d = { .on = true, .ack_wait_us = 30 * 1000000 };
	char in[CT_NAME_CAP], msg[300];
	struct proto_request l;
	struct proto_reply r;
	struct test_conn c;

	snprintf(in, sizeof in, "%s", ct_name_placed_on(1, "xack_in"));
	ct_client_of(&c, 1);
	proto_out_reset(&ct_out);
	proto_req_make_opts(&ct_out, c.next_id++, in, strlen(in), 4, &d);
	st_write(&c, &ct_out);
	st_reply(&c, OP_MAKE, &r);
	CU_ASSERT_EQUAL_FATAL(r.status, STATUS_OK);
	test_conn_close(&c);
	ctl_send_n(1, in, "z", 1);
	l = ctl_one_in(OP_OR_DONE, in, NULL);
	ctl_start_link(&l, &c);
	CU_ASSERT_EQUAL(ctl_link_end(&c, OP_OR_DONE, NULL, msg, sizeof msg), STATUS_UNAVAILABLE);
	CU_ASSERT(strstr(msg, "ack channel") != NULL && strstr(msg, in) != NULL);
	test_conn_close(&c);
	/* through node 0: behind the NACK on the same node-to-node connection */
	ct_client_of(&c, 0);
	st_recv(&c, in, 20 * 1000000);
	st_reply(&c, OP_RECV, &r);
	CU_ASSERT_EQUAL(r.status, STATUS_OK);
	CU_ASSERT(r.ok && r.value.len == 2 && memcmp(r.value.data, "z0", 2) == 0);
	CU_ASSERT(r.tag != 0);
	test_conn_close(&c);
}

/*
 * The link's node stops (SIGTERM) under an OR_DONE from node 1 to node 2
 * with a value lent to its pump: the value is back in the input, and no
 * waiter of node 0's stays on node 1 or 2.
 */
static void
test_link_node_stops(void)
{
	char in[CT_NAME_CAP], out[CT_NAME_CAP], buf[32];
	struct proto_request l;
	struct test_conn c;

	ct_make_on(1, in, "xns_in", 8);
	ct_make_on(2, out, "xns_out", 0);
	l = ctl_one_in(OP_OR_DONE, in, NULL);
	ctl_set_out(&l, 0, out, 0);
	ctl_start_link(&l, &c);
	/* u0 waits at node 2, u1 is in the link's hand, u2 is lent to the input's pump */
	ctl_send_n(1, in, "u", 3);
	CU_ASSERT(ctl_await_waiters(2, out, "n0", 1));
	CU_ASSERT(ctl_await_len(1, in, 0));
	CU_ASSERT_EQUAL(test_server_stop(ct_node(0)), 0);
	ct_node(0)->pid = 0;
	test_conn_close(&c);
	CU_ASSERT(ctl_await_len(1, in, 1));
	CU_ASSERT(ctl_recv_from(1, in, buf, sizeof buf));
	CU_ASSERT_STRING_EQUAL(buf, "u2");
	CU_ASSERT(ctl_await_waiters(1, in, NULL, 0));
	CU_ASSERT(ctl_await_waiters(2, out, NULL, 0));
	ct_node_rejoin(0, 15000);
}

/*
 * A FAN_IN over nodes 1 and 2 into node 0 runs while node 2 is SIGKILLed:
 * the link ends UNAVAILABLE naming node 2, every value received at most
 * once, node 1's exactly once (after the end, the rest are in its input).
 */
static void
test_peer_killed(void)
{
	enum { N = 40 };
	char a[CT_NAME_CAP], b[CT_NAME_CAP], out[CT_NAME_CAP], buf[32], msg[300];
	uint8_t seen[2][N] = { { 0 } };
	struct proto_case cases[2];
	struct proto_request l = { .op = OP_FAN_IN, .cases = cases, .ncases = 2 };
	struct test_conn c, o;
	struct proto_reply r;
	int st;

	ct_make_on(1, a, "xk_a", N);
	ct_make_on(2, b, "xk_b", N);
	ct_make_on(0, out, "xk_out", 2 * N);
	ctl_send_n(1, a, "a", N / 2);
	ctl_send_n(2, b, "b", N / 2);
	cases[0] = ctl_case_of(a);
	cases[1] = ctl_case_of(b);
	ctl_set_out(&l, 0, out, 2 * N);
	ctl_start_link(&l, &c);
	ct_client_of(&o, 0);
	for (int k = 0; k < N / 2; k++) {
		int v;
		bool ok;

		CU_ASSERT_EQUAL_FATAL(st_recv_wait(&o, out, 20 * 1000000, buf, sizeof buf, &ok),
		    STATUS_OK);
		CU_ASSERT_FATAL(ok);
		CU_ASSERT_FATAL(sscanf(buf + 1, "%d", &v) == 1 && v >= 0 && v < N);
		seen[buf[0] == 'b'][v]++;
	}
	ct_node_kill(2);
	st = ctl_link_end(&c, OP_FAN_IN, NULL, msg, sizeof msg);
	printf(" [%s: %s]", status_name(st), msg);
	CU_ASSERT_EQUAL(st, STATUS_UNAVAILABLE);
	CU_ASSERT(strstr(msg, "node n2 lost") != NULL);
	test_conn_close(&c);
	/* the output holds what the link moved; closed without an error */
	for (;;) {
		int v;
		bool ok;

		CU_ASSERT_EQUAL_FATAL(st_recv_wait(&o, out, 20 * 1000000, buf, sizeof buf, &ok),
		    STATUS_OK);
		if (!ok)
			break;
		CU_ASSERT_FATAL(sscanf(buf + 1, "%d", &v) == 1 && v >= 0 && v < N);
		seen[buf[0] == 'b'][v]++;
	}
	test_conn_close(&o);
	/* node 1's values not moved are still in its input (read through node 0: behind its XSETTLE) */
	ct_client_of(&o, 0);
	for (;;) {
		int v;

		st_recv(&o, a, 0);
		st_reply(&o, OP_RECV, &r);
		if (r.status != STATUS_OK)
			break;
		CU_ASSERT_FATAL(r.value.len > 1 && r.value.len < sizeof buf);
		memcpy(buf, r.value.data, r.value.len);
		buf[r.value.len] = '\0';
		CU_ASSERT_FATAL(sscanf(buf + 1, "%d", &v) == 1 && v >= 0 && v < N);
		seen[0][v]++;
	}
	test_conn_close(&o);
	for (int k = 0; k < N / 2; k++) {
		CU_ASSERT_EQUAL(seen[0][k], 1);
		CU_ASSERT(seen[1][k] <= 1);
	}
	CU_ASSERT(ctl_await_waiters(1, a, NULL, 0));
	ct_node_rejoin(2, 10000);
}

/* INFO of name at node, on a fresh connection to it: closed? */
static bool
closed_at(int node, const char *name)
{
	struct proto_chan_info i = { 0 };
	struct test_conn c;

	ct_client_of(&c, node);
	CU_ASSERT_EQUAL(st_info(&c, name, &i), STATUS_OK);
	test_conn_close(&c);
	return i.closed;
}

/*
 * A TEE of node 0's channel to outputs on nodes 1 and 2 ends OK when its
 * input closes: its final reply comes only once both outputs are closed
 * at their owners, so INFO straight at each owner, asked after that
 * reply, finds them closed (no polling). Five rounds.
 */
static void
test_reply_after_close(void)
{
	char in[CT_NAME_CAP], o1[CT_NAME_CAP], o2[CT_NAME_CAP];
	struct proto_request l;
	struct test_conn c;
	uint64_t sent;

	for (int round = 0; round < 5; round++) {
		ct_make_on(0, in, "xrc_in", 4);
		ct_make_on(1, o1, "xrc_o1", 4);
		ct_make_on(2, o2, "xrc_o2", 4);
		ctl_send_n(0, in, "v", 2);
		ctl_close_at(0, in, 5, "fin");
		l = ctl_one_in(OP_TEE, in, NULL);
		ctl_set_out(&l, 0, o1, 4);
		ctl_set_out(&l, 1, o2, 4);
		ctl_start_link(&l, &c);
		CU_ASSERT_EQUAL(ctl_link_end(&c, OP_TEE, &sent, NULL, 0), STATUS_OK);
		CU_ASSERT_EQUAL(sent, 4);
		test_conn_close(&c);
		CU_ASSERT(closed_at(1, o1));
		CU_ASSERT(closed_at(2, o2));
	}
	/* the last round's output: its values, then its input's close error */
	for (int k = 0; k < 2; k++) {
		char buf[16], want[8];

		snprintf(want, sizeof want, "v%d", k);
		CU_ASSERT(ctl_recv_from(2, o2, buf, sizeof buf));
		CU_ASSERT_STRING_EQUAL(buf, want);
	}
	ctl_assert_closed(2, o2, 5);
}

/*
 * A FAN_IN over inputs on nodes 1 and 2 into node 0, whose input on node 2
 * closed: node 2 SIGKILLed (and gone from node 0's live set) does not stop
 * it, for it no longer needs node 2; node 1's values still flow, and its
 * input's close ends the link OK.
 */
static void
test_peer_not_needed(void)
{
	char a[CT_NAME_CAP], b[CT_NAME_CAP], out[CT_NAME_CAP], buf[16];
	struct proto_case cases[2];
	struct proto_request l = { .op = OP_FAN_IN, .cases = cases, .ncases = 2 };
	struct test_conn c;
	uint64_t sent;
	char msg[300];
	int st;

	ct_make_on(1, a, "xnn_a", 4);
	ct_make_on(2, b, "xnn_b", 4);
	ct_make_on(0, out, "xnn_out", 8);
	cases[0] = ctl_case_of(a);
	cases[1] = ctl_case_of(b);
	ctl_set_out(&l, 0, out, 8);
	ctl_start_link(&l, &c);
	ctl_send_n(2, b, "b", 1);
	CU_ASSERT(ctl_recv_from(0, out, buf, sizeof buf));
	CU_ASSERT_STRING_EQUAL(buf, "b0");
	ctl_close_at(2, b, 0, NULL);
	CU_ASSERT(ctl_await_waiters(2, b, NULL, 0));	/* the link took the close */
	ct_node_kill(2);
	/* n2 leaves the live set when its lease ends: now, not a steady ttl later */
	CU_ASSERT(ct_node_expire(2));
	CU_ASSERT(ct_await_stat(0, "cluster_nodes", CT_NODES - 1, (ct_node_ttl_s() + 10) * 1000));
	ctl_send_n(1, a, "a", 2);
	CU_ASSERT(ctl_recv_from(0, out, buf, sizeof buf));
	CU_ASSERT_STRING_EQUAL(buf, "a0");
	CU_ASSERT(ctl_recv_from(0, out, buf, sizeof buf));
	CU_ASSERT_STRING_EQUAL(buf, "a1");
	ctl_close_at(1, a, 0, NULL);
	st = ctl_link_end(&c, OP_FAN_IN, &sent, msg, sizeof msg);
	if (st != STATUS_OK)
		printf(" [%s: %s]", status_name(st), msg);
	CU_ASSERT_EQUAL(st, STATUS_OK);
	CU_ASSERT_EQUAL(sent, 3);
	test_conn_close(&c);
	ctl_assert_closed(0, out, 0);
	ct_node_rejoin(2, 10000);
}

void
ct_add_link_end_tests(CU_pSuite s)
{
	test_add(s, "links: CANCEL, disconnect, deadline leave no remote waiter",
	    test_cancel_disconnect);
	test_add(s, "links: an ack channel's value across nodes goes back", test_ack_input);
	test_add(s, "links: the link's node stops: values lent go back", test_link_node_stops);
	test_add(s, "links: a peer SIGKILLed under a fan-in", test_peer_killed);
	test_add(s, "links: ended OK, the reply follows the remote outputs' close",
	    test_reply_after_close);
	test_add(s, "links: a peer lost that the link no longer needs", test_peer_not_needed);
}
