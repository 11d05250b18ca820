/*
 * test_cluster_links.c: links whose channels live on different
 * nodes (PROTOCOL.md §17, "Links in a cluster"): each pattern (or, or-done,
 * tee, bridge, fan-in, repeat, take, fan-out) requested on node 0 with one
 * of its channels (an input, an output, the done channel) owned by node 1
 * is refused UNAVAILABLE naming the channel and its owner, and leaves
 * nothing behind; a named output that no node owns is NOT_FOUND (a link
 * makes no named channel in a cluster); the same link with every channel
 * on node 0 runs (a STREAM over channels of several nodes runs:
 * test_cluster_stream.c). Run by test_cluster.c on its fixture (etcd,
 * n0..n2).
 *
 * SPDX-License-Identifier: BSD-2-Clause
 */
#include <stdio.h>
#include <string.h>

#include "clustertest.h"

#define NAME_CAP 96

/* here[k]: channels on node 0; there: one on node 1. */
static char here[3][NAME_CAP], there[NAME_CAP];

static void
make_on(int node, char *name, const char *base)
{
	struct test_conn c;

	snprintf(name, NAME_CAP, "%s", ct_name_placed_on(node, base));
	CU_ASSERT_FATAL(ct_open_client(&c, ct_node_port(node), false) == 0);
	CU_ASSERT_EQUAL_FATAL(st_make(&c, name, 4), STATUS_OK);
	test_conn_close(&c);
}

/* Link l on node 0: its first reply's status (and its words, in msg). */
static int
link_at_node0(const struct proto_request *l, char *msg, size_t cap, uint64_t *id,
    struct test_conn *c)
{
	struct proto_reply r;

	CU_ASSERT_FATAL(ct_open_client(c, ct_node_port(0), false) == 0);
	*id = c->next_id++;
	proto_out_reset(&ct_out);
	CU_ASSERT_FATAL(proto_req_link(&ct_out, *id, PROTO_WAIT_FOREVER, l) == 0);
	st_write(c, &ct_out);
	st_reply(c, l->op, &r);
	snprintf(msg, cap, "%.*s", (int)r.msg_len, r.msg_len ? r.msg : "");
	return r.status;
}

/* l refused at node 0 for the channel `there`, saying who owns it; no waiter left anywhere. */
static void
refused(const struct proto_request *l, const char *what)
{
	struct test_conn c;
	char msg[400];
	uint64_t id;
	int st = link_at_node0(l, msg, sizeof msg, &id, &c);

	if (st != STATUS_UNAVAILABLE)
		printf(" [%s: %s %s]", what, status_name(st), msg);
	CU_ASSERT_EQUAL(st, STATUS_UNAVAILABLE);
	CU_ASSERT(strstr(msg, there) != NULL && strstr(msg, "node n1") != NULL &&
	    strstr(msg, "links across nodes are not built") != NULL);
	test_conn_close(&c);
	for (int i = 0; i < 3; i++) {
		CU_ASSERT_FATAL(ct_open_client(&c, ct_node_port(0), false) == 0);
		CU_ASSERT(st_await_waiters(&c, here[i], 0, 0));
		test_conn_close(&c);
	}
	CU_ASSERT_FATAL(ct_open_client(&c, ct_node_port(1), false) == 0);
	CU_ASSERT(st_await_waiters(&c, there, 0, 0));
	test_conn_close(&c);
}

static struct proto_request
one_in(uint64_t op, const char *in, const char *out)
{
	struct proto_request l = { .op = op, .name = in, .name_len = (uint32_t)strlen(in) };

	if (out != NULL) {
		l.outs[0] = (struct proto_link_out){ .name = out, .name_len = (uint32_t)strlen(out),
		    .cap = 4 };
		l.nouts = 1;
	}
	return l;
}

/* Each pattern with one channel on node 1: refused. */
static void
test_links_refused(void)
{
	struct proto_case two[2], vals[1] = { { .dir = 1, .value = { .kind = VALUE_BIN,
	    .data = (const uint8_t *)"v", .len = 1 } } };
	struct proto_request l;

	make_on(0, here[0], "xlk_a");
	make_on(0, here[1], "xlk_b");
	make_on(0, here[2], "xlk_c");
	make_on(1, there, "xlk_far");
	two[0] = (struct proto_case){ .name = here[0], .name_len = (uint32_t)strlen(here[0]) };
	two[1] = (struct proto_case){ .name = there, .name_len = (uint32_t)strlen(there) };
	l = (struct proto_request){ .op = OP_OR, .cases = two, .ncases = 2 };
	refused(&l, "or");
	l = one_in(OP_OR_DONE, there, here[1]);
	refused(&l, "or-done");
	l = one_in(OP_TEE, here[0], here[1]);
	l.outs[1] = (struct proto_link_out){ .name = there, .name_len = (uint32_t)strlen(there),
	    .cap = 4 };
	l.nouts = 2;
	refused(&l, "tee");
	l = one_in(OP_BRIDGE, there, here[1]);
	refused(&l, "bridge");
	l = (struct proto_request){ .op = OP_FAN_IN, .cases = two, .ncases = 2 };
	refused(&l, "fan-in");
	l = (struct proto_request){ .op = OP_REPEAT, .cases = vals, .ncases = 1 };
	l.outs[0] = (struct proto_link_out){ .name = there, .name_len = (uint32_t)strlen(there),
	    .cap = 4 };
	l.nouts = 1;
	refused(&l, "repeat");
	l = one_in(OP_TAKE, here[0], here[1]);
	l.count = 3;
	l.done = there;
	l.done_len = (uint32_t)strlen(there);
	refused(&l, "take (done)");
	l = one_in(OP_FAN_OUT, there, here[1]);
	l.stage = "sha256";
	l.stage_len = 6;
	l.count = 1;
	refused(&l, "fan-out");
}

/*
 * A named output no node owns: NOT_FOUND, saying to make it first; every
 * channel on node 0: the link runs (TAKE of 1 value from here[0] to here[2]).
 */
static void
test_links_here(void)
{
	struct proto_request l;
	struct proto_reply r;
	struct test_conn c, p;
	char msg[400], buf[16];
	uint64_t id;
	bool ok;

	l = one_in(OP_TAKE, here[0], "xlk_nobody_made_this");
	l.count = 1;
	CU_ASSERT_EQUAL(link_at_node0(&l, msg, sizeof msg, &id, &c), STATUS_NOT_FOUND);
	CU_ASSERT(strstr(msg, "make it first") != NULL);
	test_conn_close(&c);
	l = one_in(OP_TAKE, here[0], here[2]);
	l.count = 1;
	CU_ASSERT_EQUAL_FATAL(link_at_node0(&l, msg, sizeof msg, &id, &c), STATUS_STARTED);
	CU_ASSERT_FATAL(ct_open_client(&p, ct_node_port(2), false) == 0);
	/* through node 2: forwarded to node 0, which runs the link */
	CU_ASSERT_EQUAL(st_send_wait(&p, here[0], "one", PROTO_WAIT_FOREVER), STATUS_OK);
	CU_ASSERT_EQUAL(st_recv_wait(&p, here[2], PROTO_WAIT_FOREVER, buf, sizeof buf, &ok),
	    STATUS_OK);
	CU_ASSERT(ok && strcmp(buf, "one") == 0);
	test_conn_close(&p);
	st_reply(&c, OP_TAKE, &r);
	CU_ASSERT_EQUAL(r.status, STATUS_OK);
	CU_ASSERT_EQUAL(r.n, 1);
	test_conn_close(&c);
}

void
ct_add_link_tests(CU_pSuite s)
{
	test_add(s, "links: each pattern with a channel on another node is refused", test_links_refused);
	test_add(s, "links: an output nobody made; every channel here runs", test_links_here);
}
