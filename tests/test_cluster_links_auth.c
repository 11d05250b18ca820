/*
 * test_cluster_links_auth.c: links whose channels live on other nodes,
 * with authentication on (PROTOCOL.md §13, §17 "Links in a cluster"). A
 * link of alice's on node 0 acts for alice on the channels of nodes 1 and
 * 2 as it would on one node: her rights are checked on their real names
 * (she has every right on the stand-ins' `~` names, which must not help),
 * at the start, at each operation, for a channel a bridge follows, and at
 * a reload of node 0's rules, which ends the link PERMISSION_DENIED with no
 * value moved. `sec.*` channels are the node identity's, which alice may
 * not touch; a reload takes lr.* away from her (CT_AUTH_REVOCABLE). The
 * ct_* clients say HELLO as the node identity (test_cluster.c's
 * cluster_auth suite). Run by test_cluster.c on its fixture.
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

/* A client of node i that said HELLO as alice. */
static void
alice_of(struct test_conn *c, int i)
{
	ct_set_token("alice-secret");
	ct_client_of(c, i);
	ct_set_token("node-secret");
}

/* Link l of alice's on node 0 (c: her new connection): its first reply's status (words: msg). */
static int
alice_link(const struct proto_request *l, struct test_conn *c, char *msg, size_t cap)
{
	struct proto_reply r;

	alice_of(c, 0);
	proto_out_reset(&ct_out);
	CU_ASSERT_FATAL(proto_req_link(&ct_out, c->next_id++, PROTO_WAIT_FOREVER, l) == 0);
	st_write(c, &ct_out);
	st_reply(c, l->op, &r);
	snprintf(msg, cap, "%.*s", (int)r.msg_len, r.msg_len ? r.msg : "");
	if (r.status != STATUS_STARTED && r.status != STATUS_PERMISSION_DENIED)
		printf(" [%s: %s]", status_name(r.status), msg);
	return r.status;
}

/* The link's final reply: PERMISSION_DENIED, saying "permission denied: RIGHT on NAME". */
static void
assert_denied(struct test_conn *c, uint64_t op, const char *right, const char *name)
{
	char msg[400], want[200];

	snprintf(want, sizeof want, "permission denied: %s on %s", right, name);
	CU_ASSERT_EQUAL(ctl_link_end(c, op, NULL, msg, sizeof msg), STATUS_PERMISSION_DENIED);
	if (strstr(msg, want) == NULL) {
		printf(" [\"%s\" lacks \"%s\"]", msg, want);
		CU_FAIL("the link's final message");
	}
}

/* Is alice denied LEN of an lr.* name through node 0 (the rules she has there now)? */
static bool
lr_denied(void)
{
	struct proto_reply r;
	struct test_conn c;

	alice_of(&c, 0);
	st_name_op(&c, OP_LEN, "lr.probe");
	st_reply(&c, OP_LEN, &r);
	test_conn_close(&c);
	return r.status == STATUS_PERMISSION_DENIED;
}

/* Node 0's rules without (with) CT_AUTH_REVOCABLE, SIGHUP, and wait (10 s) until they apply. */
static void
reload_node0(bool with_lr)
{
	int64_t end = clock_now_ns() + 10 * NSEC_PER_SEC;
	char conf[8192], *at;
	size_t n, rl = strlen(CT_AUTH_REVOCABLE);
	FILE *f;

	CU_ASSERT_FATAL((f = fopen(ct_node(0)->conf, "r")) != NULL);
	n = fread(conf, 1, sizeof conf - rl - 1, f);
	fclose(f);
	conf[n] = '\0';
	if ((at = strstr(conf, CT_AUTH_REVOCABLE)) != NULL)
		memmove(at, at + rl, strlen(at + rl) + 1);
	if (with_lr)
		strcat(conf, CT_AUTH_REVOCABLE);
	CU_ASSERT_FATAL((f = fopen(ct_node(0)->conf, "w")) != NULL);
	fputs(conf, f);
	fclose(f);
	kill(ct_node(0)->pid, SIGHUP);
	while (lr_denied() == with_lr && clock_now_ns() < end)
		poll(NULL, 0, 20);
	CU_ASSERT_FATAL(lr_denied() != with_lr);
}

/* INFO of name at node (as the node identity): its len and closed. */
static void
info_at(int node, const char *name, uint64_t *len, bool *closed)
{
	struct proto_chan_info i = { 0 };
	struct test_conn c;

	ct_client_of(&c, node);
	CU_ASSERT_EQUAL(st_info(&c, name, &i), STATUS_OK);
	test_conn_close(&c);
	*len = i.len;
	*closed = i.closed;
}

/* A channel of the node identity's on node with two values alice must never see. */
static void
make_secret(int node, char *name)
{
	ct_make_on(node, name, "sec", 4);
	ctl_send_n(node, name, "s", 2);
}

static void
await_joined(void)
{
	for (int i = 0; i < CT_NODES; i++) {
		CU_ASSERT_FATAL(ct_await_stat(i, "cluster_nodes", CT_NODES, 15000));
		CU_ASSERT_FATAL(ct_await_stat(i, "cluster_serving", 1, 15000));
	}
}

/*
 * An input, a done channel or an output alice may not use, on another
 * node: PERMISSION_DENIED before anything runs; the secret keeps its values.
 */
static void
test_start_denied(void)
{
	char sec[CT_NAME_CAP], sec2[CT_NAME_CAP], in[CT_NAME_CAP], out[CT_NAME_CAP], msg[400];
	struct proto_request l;
	struct test_conn c;
	uint64_t len;
	bool closed;

	await_joined();
	make_secret(1, sec);
	ct_make_on(2, sec2, "sec", 4);
	ct_make_on(1, in, "la.sd_in", 4);
	ct_make_on(2, out, "la.sd_out", 4);
	l = ctl_one_in(OP_OR_DONE, sec, out);
	CU_ASSERT_EQUAL(alice_link(&l, &c, msg, sizeof msg), STATUS_PERMISSION_DENIED);
	test_conn_close(&c);
	l = ctl_one_in(OP_OR_DONE, in, out);
	l.done = sec;
	l.done_len = (uint32_t)strlen(sec);
	CU_ASSERT_EQUAL(alice_link(&l, &c, msg, sizeof msg), STATUS_PERMISSION_DENIED);
	test_conn_close(&c);
	l = ctl_one_in(OP_OR_DONE, in, sec2);
	CU_ASSERT_EQUAL(alice_link(&l, &c, msg, sizeof msg), STATUS_PERMISSION_DENIED);
	test_conn_close(&c);
	info_at(1, sec, &len, &closed);
	CU_ASSERT_EQUAL(len, 2);
	info_at(2, sec2, &len, &closed);
	CU_ASSERT(!closed);
	CU_ASSERT(ctl_await_waiters(1, sec, NULL, 0));
}

/*
 * OR_DONE from lr.* on node 1 to la.* on node 2 waits on its input (a
 * pump parked at node 1); node 0's reload takes recv on lr.* away: the
 * link ends PERMISSION_DENIED naming the input, a value sent after stays
 * there, and the output is closed (alice may still close it).
 */
static void
test_reload_input(void)
{
	char in[CT_NAME_CAP], out[CT_NAME_CAP], buf[16], msg[400];
	struct proto_request l;
	struct test_conn c;
	uint64_t len;
	bool closed;

	ct_make_on(1, in, "lr.ri_in", 4);
	ct_make_on(2, out, "la.ri_out", 4);
	l = ctl_one_in(OP_OR_DONE, in, out);
	CU_ASSERT_EQUAL_FATAL(alice_link(&l, &c, msg, sizeof msg), STATUS_STARTED);
	ctl_send_n(1, in, "v", 1);
	CU_ASSERT(ctl_recv_from(2, out, buf, sizeof buf));
	CU_ASSERT_STRING_EQUAL(buf, "v0");
	CU_ASSERT(ctl_await_waiters(1, in, "n0", 1));
	reload_node0(false);
	assert_denied(&c, OP_OR_DONE, "recv", in);
	test_conn_close(&c);
	CU_ASSERT(ctl_await_waiters(1, in, NULL, 0));
	ctl_send_n(1, in, "kept", 1);
	info_at(1, in, &len, &closed);
	CU_ASSERT_EQUAL(len, 1);
	ctl_assert_closed(2, out, 0);
	reload_node0(true);
}

/*
 * OR_DONE from la.* on node 1 to an unbuffered lr.* output on node 2: its
 * pump's SEND of w0 waits at node 2 while the link waits on its input.
 * The reload takes send on lr.* away: the SEND in flight is a pending send
 * of the link's, so the link ends PERMISSION_DENIED naming the output, the
 * SEND is withdrawn (w0 never arrives), and the output is left open (alice
 * may no longer close it).
 */
static void
test_reload_output(void)
{
	char in[CT_NAME_CAP], out[CT_NAME_CAP], msg[400];
	struct proto_request l;
	struct test_conn c;
	uint64_t len;
	bool closed;

	ct_make_on(1, in, "la.ro_in", 4);
	ct_make_on(2, out, "lr.ro_out", 0);
	l = ctl_one_in(OP_OR_DONE, in, NULL);
	ctl_set_out(&l, 0, out, 0);
	CU_ASSERT_EQUAL_FATAL(alice_link(&l, &c, msg, sizeof msg), STATUS_STARTED);
	ctl_send_n(1, in, "w", 1);
	CU_ASSERT(ctl_await_waiters(2, out, "n0", 1));
	CU_ASSERT(ctl_await_waiters(1, in, "n0", 1));
	reload_node0(false);
	assert_denied(&c, OP_OR_DONE, "send", out);
	test_conn_close(&c);
	CU_ASSERT(ctl_await_waiters(2, out, NULL, 0));
	CU_ASSERT(ctl_await_waiters(1, in, NULL, 0));
	info_at(2, out, &len, &closed);
	CU_ASSERT_EQUAL(len, 0);
	CU_ASSERT(!closed);
	reload_node0(true);
}

/* The next value of out, through c: of kind, spelling want. */
static void
expect(struct test_conn *c, const char *out, enum proto_value_kind kind, const char *want)
{
	struct proto_reply r;
	char got[400];

	st_recv(c, out, 20 * 1000000);
	st_reply(c, OP_RECV, &r);
	CU_ASSERT_EQUAL_FATAL(r.status, STATUS_OK);
	CU_ASSERT_FATAL(r.ok);
	snprintf(got, sizeof got, "%.*s", (int)r.value.len, (const char *)r.value.data);
	CU_ASSERT_EQUAL(r.value.kind, kind);
	CU_ASSERT_STRING_EQUAL(got, want);
}

/*
 * BRIDGE on node 0 from la.* on node 1 to la.* on node 2, given references
 * to a secret of node 2 (an error value, as on one node; the secret keeps
 * its values), to lr.* on node 2 (followed until node 0's reload takes recv
 * away: an error value, and the bridge goes on; a value sent after stays
 * there), and to la.* on node 1 (drained).
 */
static void
test_bridge(void)
{
	char sec[CT_NAME_CAP], in[CT_NAME_CAP], out[CT_NAME_CAP], sub[CT_NAME_CAP], ok[CT_NAME_CAP];
	char msg[400], want[200];
	const char *refs[3] = { sec, sub, ok };
	struct proto_request l;
	struct test_conn c, o;
	uint64_t len, sent;
	bool closed;

	make_secret(2, sec);
	ct_make_on(1, in, "la.br_in", 4);
	ct_make_on(2, out, "la.br_out", 4);
	ct_make_on(2, sub, "lr.br_sub", 4);
	ct_make_on(1, ok, "la.br_ok", 4);
	ctl_send_n(1, ok, "ok", 1);
	ctl_close_at(1, ok, 0, NULL);
	ctl_send_n(2, sub, "r", 1);
	ctl_send_refs(1, in, refs, 3);
	l = ctl_one_in(OP_BRIDGE, in, out);
	CU_ASSERT_EQUAL_FATAL(alice_link(&l, &c, msg, sizeof msg), STATUS_STARTED);
	ct_client_of(&o, 2);
	snprintf(want, sizeof want, "permission denied: recv on %s", sec);
	expect(&o, out, VALUE_ERROR, want);
	expect(&o, out, VALUE_BIN, "r0");
	CU_ASSERT(ctl_await_waiters(2, sub, "n0", 1));
	reload_node0(false);
	snprintf(want, sizeof want, "permission denied: recv on %s", sub);
	expect(&o, out, VALUE_ERROR, want);
	expect(&o, out, VALUE_BIN, "ok0");
	ctl_close_at(1, in, 0, NULL);
	CU_ASSERT_EQUAL(ctl_link_end(&c, OP_BRIDGE, &sent, msg, sizeof msg), STATUS_OK);
	CU_ASSERT_EQUAL(sent, 4);
	test_conn_close(&c);
	test_conn_close(&o);
	ctl_assert_closed(2, out, 0);
	CU_ASSERT(ctl_await_waiters(2, sub, NULL, 0));	/* the pump's SELECT withdrawn */
	ctl_send_n(2, sub, "kept", 1);
	info_at(2, sub, &len, &closed);
	CU_ASSERT_EQUAL(len, 1);
	info_at(2, sec, &len, &closed);
	CU_ASSERT_EQUAL(len, 2);
	reload_node0(true);
}

void
ct_add_link_auth_tests(CU_pSuite s)
{
	test_add(s, "links across nodes: a channel alice may not use is refused at the start",
	    test_start_denied);
	test_add(s, "links across nodes: a reload takes recv on a remote input away",
	    test_reload_input);
	test_add(s, "links across nodes: a reload takes send on a remote output away",
	    test_reload_output);
	test_add(s, "links across nodes: a bridge follows only what alice may receive",
	    test_bridge);
}
