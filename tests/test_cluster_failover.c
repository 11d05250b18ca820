/*
 * test_cluster_failover.c: the failover cases issue 19 names, on the
 * fixture of test_cluster.c (a real etcd, three nodes, node_ttl 2 s):
 * SIGKILL of the owner of 100 channels (all usable again through the
 * survivors, blocked clients told at once), SIGKILL of one of two peers
 * on which node 0 holds a cross-node select, stream, link and ack tags
 * (what needed it ends UNAVAILABLE, what needs only the other goes on),
 * SIGSTOP of an owner for 2 × node_ttl under load from clients of every
 * node (the record of who served what, when, never shows two nodes
 * serving one channel at once), and an ownership key naming a node that
 * does not exist.
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

/* MAKE name with cap on c: the reply's status. */
static int
make_cap(struct test_conn *c, const char *name, uint64_t cap, char *msg, size_t msgcap)
{
	struct proto_reply r;

	proto_req_make(&ct_out, c->next_id++, name, strlen(name), cap);
	st_write(c, &ct_out);
	st_reply(c, OP_MAKE, &r);
	if (msg != NULL)
		snprintf(msg, msgcap, "%.*s", (int)r.msg_len, r.msg ? r.msg : "");
	return r.status;
}

static int
node_of_port(int port)
{
	for (int i = 0; i < CT_NODES; i++)
		if (ct_node_port(i) == port)
			return i;
	return -1;
}

/* ---- SIGKILL the owner of 100 channels ------------------------------------------------- */

#define KILLED 2
#define NKILL 100

/*
 * Node 2 owns 100 channels; a client of node 2 and a client of node 0
 * (forwarded) wait in RECV on two of them. SIGKILL node 2: both clients
 * hear at once (EOF; UNAVAILABLE "node n2 lost"), and every one of the 100
 * names can be made again on a survivor, and used (SEND, RECV), through
 * either survivor, once etcd has expired the dead node's lease. A third
 * client of node 0, whose RECV node 0 forwarded to node 1, goes on
 * waiting and gets the value sent next: a lost node ends only what was
 * forwarded to it (and, under ASan, node 0's clean stop at the suite's
 * end finds nothing of that leaked).
 */
static void
test_kill_owner_of_100(void)
{
	static char names[NKILL][64];
	bool usable[NKILL] = { false };
	struct test_conn direct, fwd, other, via[2];
	struct proto_reply r;
	char other_name[64];
	struct pollfd p;
	int left = NKILL, ttl = ct_node_ttl_s(), st;
	int64_t t0, took_ms, all_ms, gone_ms = -1, first_ms[2] = { -1, -1 };
	char buf[16], msg[256];
	bool ok;

	for (int k = 0; k < NKILL; k++) {
		snprintf(names[k], sizeof names[k], "%s", ct_name_placed_on(KILLED, "k100"));
		CU_ASSERT_EQUAL_FATAL(ct_make_converged(KILLED, names[k], 5000), KILLED);
	}
	snprintf(other_name, sizeof other_name, "%s", ct_name_placed_on(1, "k100o"));
	CU_ASSERT_EQUAL_FATAL(ct_make_converged(1, other_name, 5000), 1);
	CU_ASSERT_FATAL(ct_open_client(&direct, ct_node_port(KILLED), false) == 0);
	CU_ASSERT_FATAL(ct_open_client(&fwd, ct_node_port(0), false) == 0);
	CU_ASSERT_FATAL(ct_open_client(&other, ct_node_port(0), false) == 0);
	st_recv(&direct, names[0], PROTO_WAIT_FOREVER);
	st_recv(&fwd, names[1], PROTO_WAIT_FOREVER);
	st_recv(&other, other_name, PROTO_WAIT_FOREVER);
	CU_ASSERT_FATAL(test_wait_waiters(ct_node_port(KILLED), names[0], 0, 1, 10000));
	CU_ASSERT_FATAL(test_wait_waiters(ct_node_port(KILLED), names[1], 0, 1, 10000));
	CU_ASSERT_FATAL(test_wait_waiters(ct_node_port(1), other_name, 0, 1, 10000));
	CU_ASSERT_EQUAL(ct_node_lease_ttl(KILLED), ttl);
	t0 = clock_now_ns();
	ct_node_kill(KILLED);
	/* the dead node's own client: EOF at once, not a hang */
	p = (struct pollfd){ .fd = direct.fd, .events = POLLIN };
	CU_ASSERT(poll(&p, 1, 1000) == 1 && read(direct.fd, buf, sizeof buf) == 0);
	test_conn_close(&direct);
	/* a client whose RECV was forwarded there: UNAVAILABLE at once */
	CU_ASSERT_FATAL(test_conn_reply(&fwd, OP_RECV, 1000, &r) == 0);
	CU_ASSERT_EQUAL(r.status, STATUS_UNAVAILABLE);
	CU_ASSERT(r.msg_len > 0 && memmem(r.msg, r.msg_len, "lost", 4) != NULL);
	CU_ASSERT((clock_now_ns() - t0) / NSEC_PER_MSEC < 1000);
	test_conn_close(&fwd);
	/* each name through a survivor (plain clients: forwarded as needed), until all work */
	for (int i = 0; i < 2; i++)
		CU_ASSERT_FATAL(ct_open_client(&via[i], ct_node_port(i), false) == 0);
	/* the RECV forwarded to node 1 still waits there, and takes the next value */
	CU_ASSERT(test_wait_waiters(ct_node_port(1), other_name, 0, 1, 1000));
	CU_ASSERT_EQUAL(st_send_wait(&via[1], other_name, "o", 0), STATUS_OK);
	CU_ASSERT_FATAL(test_conn_reply(&other, OP_RECV, 5000, &r) == 0);
	CU_ASSERT_EQUAL(r.status, STATUS_OK);
	CU_ASSERT(r.value.len == 1 && r.value.data[0] == 'o');
	test_conn_close(&other);
	while (left > 0 && clock_now_ns() - t0 < (int64_t)(ttl + 20) * NSEC_PER_SEC) {
		if (gone_ms < 0 && ct_node_lease_ttl(KILLED) == 0)
			gone_ms = (clock_now_ns() - t0) / NSEC_PER_MSEC;
		for (int k = 0; k < NKILL; k++) {
			struct test_conn *c = &via[k % 2];

			if (usable[k])
				continue;
			st = make_cap(c, names[k], 1, msg, sizeof msg);
			if (st != STATUS_OK) {
				/* the dead node's lease still runs: a clear UNAVAILABLE, nothing else */
				CU_ASSERT_EQUAL_FATAL(st, STATUS_UNAVAILABLE);
				CU_ASSERT(msg[0] != '\0');
				continue;
			}
			CU_ASSERT_EQUAL(st_send_wait(c, names[k], "v", 0), STATUS_OK);
			CU_ASSERT_EQUAL(st_recv_wait(c, names[k], 0, buf, sizeof buf, &ok), STATUS_OK);
			CU_ASSERT(ok && strcmp(buf, "v") == 0);
			usable[k] = true;
			left--;
			if (first_ms[k % 2] < 0)
				first_ms[k % 2] = (clock_now_ns() - t0) / NSEC_PER_MSEC;
		}
		if (left > 0)
			poll(NULL, 0, 20);
	}
	all_ms = (clock_now_ns() - t0) / NSEC_PER_MSEC;
	if (gone_ms < 0 && ct_node_lease_ttl(KILLED) == 0)
		gone_ms = all_ms;
	took_ms = first_ms[0] > first_ms[1] ? first_ms[0] : first_ms[1];
	printf("\n  node key gone %" PRId64 " ms after SIGKILL; usable again through both survivors %"
	    PRId64 " ms, all %d channels %" PRId64 " ms (node_ttl %d s) ", gone_ms, took_ms, NKILL,
	    all_ms, ttl);
	CU_ASSERT_EQUAL(left, 0);
	CU_ASSERT(first_ms[0] >= 0 && first_ms[1] >= 0);
	CU_ASSERT(gone_ms >= 0);
	/*
	 * The failover is two parts. etcd's: the lease, granted for node_ttl
	 * (checked above), expires; etcd checks every 500 ms and answers on its
	 * own time on a loaded machine (one CI run under ASan took 8.4 s for
	 * the whole, not saying which part), so only the loop's bound, there
	 * to stop a hang, holds it. Ours: the survivors learn it in one watch
	 * event and serve the dead node's names. That is bounded from when the
	 * test saw the key gone: 2 s covers the event, one pass of the loop
	 * (100 requests) and its 20 ms pause. The 300 requests of making and
	 * using the other 99 are the test's own work: under ASan on a loaded
	 * machine they alone took over a second.
	 */
	CU_ASSERT(took_ms - gone_ms <= 2000);
	for (int k = 0; k < NKILL; k++) {
		char *o = ct_chan_owner(names[k]);

		CU_ASSERT(o != NULL && (strcmp(o, "n0") == 0 || strcmp(o, "n1") == 0));
		free(o);
	}
	for (int i = 0; i < 2; i++)
		test_conn_close(&via[i]);
	ct_node_rejoin(KILLED, 10000);
}

/* ---- SIGKILL of one peer while node 0 holds work on both ------------------------------- */

/* Made on node (an ack channel when ack, with ack_wait a minute), its owner known to node 0. */
static void
made_on(int node, char *name, const char *base, uint64_t cap, bool ack)
{
	uint64_t n;

	if (ack) {
		snprintf(name, CT_NAME_CAP, "%s", ct_name_placed_on(node, base));
		ct_make_ack_on(node, name, cap);
	} else {
		ct_make_on(node, name, base, cap);
	}
	/* else a request of node 0's naming it could be held while it asks etcd */
	if (node != 0)
		CU_ASSERT_EQUAL_FATAL(ct_len_at(0, name, &n, NULL, 0), STATUS_OK);
}

/* A STREAM over names a, b with credit, sent on c; its id. */
static uint64_t
stream_two(struct test_conn *c, const char *a, const char *b, uint64_t credit)
{
	struct proto_case pc[2] = { ctl_case_of(a), ctl_case_of(b) };
	uint64_t id = c->next_id++;

	CU_ASSERT_EQUAL_FATAL(proto_req_stream(&ct_out, id, PROTO_WAIT_FOREVER, pc, 2, credit), 0);
	st_write(c, &ct_out);
	return id;
}

/* RECV of name through c (wait 5 s): its status; the value in buf, *tag and *count. */
static int
recv_val(struct test_conn *c, const char *name, char *buf, size_t cap, uint64_t *tag,
    uint64_t *count)
{
	struct proto_reply r;

	st_recv(c, name, 5 * 1000000);
	st_reply(c, OP_RECV, &r);
	snprintf(buf, cap, "%.*s", (int)r.value.len, r.value.len ? (const char *)r.value.data : "");
	*tag = r.tag;
	*count = r.count;
	return r.status;
}

/* An error reply of `what` on c within ms: UNAVAILABLE, naming node n2 lost. */
static void
assert_lost(struct test_conn *c, uint64_t op, int ms, const char *what)
{
	struct proto_reply r;
	char msg[300];

	CU_ASSERT_FATAL(test_conn_reply(c, op, ms, &r) == 0);
	snprintf(msg, sizeof msg, "%.*s", (int)r.msg_len, r.msg_len ? r.msg : "");
	if (r.status != STATUS_UNAVAILABLE || strstr(msg, "node n2 lost") == NULL)
		printf(" [%s: %s %s]", what, status_name(r.status), msg);
	CU_ASSERT(!r.interim);
	CU_ASSERT_EQUAL(r.status, STATUS_UNAVAILABLE);
	CU_ASSERT(strstr(msg, "node n2 lost") != NULL);
}

/*
 * Node 0 holds, on both node 1 and node 2 at once: a cross-node SELECT
 * parked on a channel of each (A), a cross-node STREAM with credit 2 over
 * a channel of each (A), a FAN_IN with an input on each and its output on
 * node 1 (A), and values of an ack channel of each, received through node
 * 0 and not yet acked (one of node 1's by a cross-node SELECT). Beside
 * them, work of node 0's that needs only node 1 (and itself): a select
 * (B) and a stream (B) over a channel of node 0 and the same channel of
 * node 1 as A's, and a FAN_IN (B) with inputs on node 0 and on A's input
 * of node 1, its output on node 1. SIGKILL node 2 (PROTOCOL.md §17): each
 * A ends at once UNAVAILABLE "node n2 lost" (select: "an owner dies ...
 * fails UNAVAILABLE"; stream: "a node lost mid-round"; link: "every link
 * with a pump through it that it still needs"), its waiters at node 1 go,
 * and link A's output there is closed (§12: a stopped link closes its
 * outputs); node 2's tag is not in flight any more (NOT_FOUND). Every B
 * goes on: a value sent on node 1's channel reaches it, and the ack tags
 * of node 1's values are ACKed and NACKed at node 1 as before.
 */
static void
test_kill_peer_of_two(void)
{
	char s0[CT_NAME_CAP], s1[CT_NAME_CAP], s2[CT_NAME_CAP];	/* selects */
	char t0[CT_NAME_CAP], t1[CT_NAME_CAP], t2[CT_NAME_CAP];	/* streams */
	char b0[CT_NAME_CAP], a1[CT_NAME_CAP], a2[CT_NAME_CAP];	/* links' inputs */
	char oa[CT_NAME_CAP], ob[CT_NAME_CAP];			/* links' outputs, on node 1 */
	char k1[CT_NAME_CAP], k2[CT_NAME_CAP], buf[32], msg[300];	/* ack channels */
	struct proto_case sel_a[2], sel_b[2], lin_a[2], lin_b[2], kc[2];
	struct proto_request la = { .op = OP_FAN_IN, .cases = lin_a, .ncases = 2 };
	struct proto_request lb = { .op = OP_FAN_IN, .cases = lin_b, .ncases = 2 };
	struct test_conn sa, sb, xa, xb, ca, cb, ak, o;
	struct proto_chan_info info;
	struct proto_reply r;
	uint64_t sid_b, t1a, t1b, t2a, count, acked, tag;
	int64_t t0_ns, took_ms;

	made_on(0, s0, "p2s", 1, false);
	made_on(1, s1, "p2s", 1, false);
	made_on(2, s2, "p2s", 1, false);
	made_on(0, t0, "p2t", 1, false);
	made_on(1, t1, "p2t", 1, false);
	made_on(2, t2, "p2t", 1, false);
	made_on(0, b0, "p2b", 1, false);
	made_on(1, a1, "p2a", 1, false);
	made_on(2, a2, "p2a", 1, false);
	made_on(1, oa, "p2oa", 4, false);
	made_on(1, ob, "p2ob", 4, false);
	made_on(1, k1, "p2k", 4, true);
	made_on(2, k2, "p2k", 4, true);

	/* (c) values of each ack channel, in flight for node 0's client ak */
	ct_send(1, k1, "k1a");
	ct_send(1, k1, "k1b");
	ct_send(1, k1, "k1c");
	ct_send(2, k2, "k2a");
	ct_client_of(&ak, 0);
	CU_ASSERT_EQUAL_FATAL(recv_val(&ak, k1, buf, sizeof buf, &t1a, &count), STATUS_OK);
	CU_ASSERT_STRING_EQUAL(buf, "k1a");
	CU_ASSERT_EQUAL_FATAL(recv_val(&ak, k2, buf, sizeof buf, &t2a, &count), STATUS_OK);
	CU_ASSERT_STRING_EQUAL(buf, "k2a");
	/* node 2's channel is empty now: a cross-node select takes node 1's next value */
	kc[0] = ctl_case_of(k1);
	kc[1] = ctl_case_of(k2);
	st_select(&ak, kc, 2, false, 5 * 1000000);
	st_reply(&ak, OP_SELECT, &r);
	CU_ASSERT_EQUAL_FATAL(r.status, STATUS_OK);
	CU_ASSERT_EQUAL(r.index, 0);
	CU_ASSERT(ST_VALUE_IS(r, "k1b"));
	t1b = r.tag;
	CU_ASSERT(t1a != 0 && t1b != 0 && t2a != 0);
	CU_ASSERT(test_wait_waiters(ct_node_port(2), k2, 0, 0, 10000));

	/* (a) select A over nodes 1 and 2, select B over nodes 0 and 1 (the same channel there) */
	sel_a[0] = ctl_case_of(s1);
	sel_a[1] = ctl_case_of(s2);
	sel_b[0] = ctl_case_of(s0);
	sel_b[1] = ctl_case_of(s1);
	ct_client_of(&sa, 0);
	ct_client_of(&sb, 0);
	st_select(&sa, sel_a, 2, false, PROTO_WAIT_FOREVER);
	st_select(&sb, sel_b, 2, false, PROTO_WAIT_FOREVER);
	/* (b) stream A (credit 2: two rounds) over nodes 1 and 2, stream B over nodes 0 and 1 */
	ct_client_of(&xa, 0);
	ct_client_of(&xb, 0);
	(void)stream_two(&xa, t1, t2, 2);
	sid_b = stream_two(&xb, t0, t1, 1);
	/* (d) fan-in A of nodes 1 and 2, B of nodes 0 and 1 (A's input): outputs on node 1 */
	lin_a[0] = ctl_case_of(a1);
	lin_a[1] = ctl_case_of(a2);
	lin_b[0] = ctl_case_of(b0);
	lin_b[1] = ctl_case_of(a1);
	ctl_set_out(&la, 0, oa, 4);
	ctl_set_out(&lb, 0, ob, 4);
	ctl_start_link(&la, &ca);
	ctl_start_link(&lb, &cb);
	/* all of it parked at its owners */
	CU_ASSERT_FATAL(test_wait_waiters(ct_node_port(0), s0, 0, 1, 10000));
	CU_ASSERT_FATAL(test_wait_waiters(ct_node_port(1), s1, 0, 2, 10000));
	CU_ASSERT_FATAL(test_wait_waiters(ct_node_port(2), s2, 0, 1, 10000));
	CU_ASSERT_FATAL(test_wait_waiters(ct_node_port(0), t0, 0, 1, 10000));
	CU_ASSERT_FATAL(test_wait_waiters(ct_node_port(1), t1, 0, 3, 10000));
	CU_ASSERT_FATAL(test_wait_waiters(ct_node_port(2), t2, 0, 2, 10000));
	CU_ASSERT_FATAL(ctl_await_waiters(1, a1, "n0", 2));
	CU_ASSERT_FATAL(ctl_await_waiters(2, a2, "n0", 1));

	t0_ns = clock_now_ns();
	ct_node_kill(KILLED);
	/* what needed node 2 ends at once, UNAVAILABLE naming it */
	assert_lost(&sa, OP_SELECT, 1000, "select A");
	assert_lost(&xa, OP_STREAM, 1000, "stream A");
	assert_lost(&ca, OP_FAN_IN, 1000, "fan-in A");
	took_ms = (clock_now_ns() - t0_ns) / NSEC_PER_MSEC;
	printf("\n  select, stream and link over n1 and n2 ended %" PRId64 " ms after SIGKILL ",
	    took_ms);
	CU_ASSERT(took_ms < 1000);
	/* node 2's tag: its value died with its owner, it is in flight nowhere */
	CU_ASSERT_EQUAL(ct_ack(&ak, &t2a, 1, &acked, msg, sizeof msg), STATUS_NOT_FOUND);
	CU_ASSERT(strstr(msg, "not in flight") != NULL);

	/* A's waiters at node 1 went with it: only B's are left */
	CU_ASSERT(test_wait_waiters(ct_node_port(1), s1, 0, 1, 10000));
	CU_ASSERT(test_wait_waiters(ct_node_port(1), t1, 0, 1, 10000));
	CU_ASSERT(ctl_await_waiters(1, a1, "n0", 1));
	/* link A closed its output at node 1 (seen through node 0, behind its CLOSE) */
	ctl_assert_closed(0, oa, 0);

	/* B's go on: a value sent on node 1's channel reaches each */
	ct_send(1, s1, "x");
	CU_ASSERT_FATAL(test_conn_reply(&sb, OP_SELECT, 5000, &r) == 0);
	CU_ASSERT_EQUAL(r.status, STATUS_OK);
	CU_ASSERT_EQUAL(r.index, 1);
	CU_ASSERT(ST_VALUE_IS(r, "x"));
	ct_send(1, t1, "y");
	CU_ASSERT_FATAL(test_conn_reply(&xb, OP_STREAM, 5000, &r) == 0);
	CU_ASSERT_EQUAL(r.id, sid_b);
	CU_ASSERT(r.interim && r.status == STATUS_OK);
	CU_ASSERT_EQUAL(r.index, 1);
	CU_ASSERT(ST_VALUE_IS(r, "y"));
	ct_send(1, a1, "z");
	CU_ASSERT(ctl_recv_from(1, ob, buf, sizeof buf) && strcmp(buf, "z") == 0);

	/* node 1's tags: ACKed and NACKed at node 1 through node 0 */
	CU_ASSERT_EQUAL(ct_ack(&ak, &t1a, 1, &acked, msg, sizeof msg), STATUS_OK);
	CU_ASSERT_EQUAL(acked, 1);
	CU_ASSERT_EQUAL(ct_nack_touch(&ak, OP_NACK, t1b), STATUS_OK);
	/* the NACKed value first (count 2), then the one never delivered */
	CU_ASSERT_EQUAL(recv_val(&ak, k1, buf, sizeof buf, &tag, &count), STATUS_OK);
	CU_ASSERT_STRING_EQUAL(buf, "k1b");
	CU_ASSERT_EQUAL(count, 2);
	CU_ASSERT_EQUAL(ct_ack(&ak, &tag, 1, &acked, msg, sizeof msg), STATUS_OK);
	CU_ASSERT_EQUAL(recv_val(&ak, k1, buf, sizeof buf, &tag, &count), STATUS_OK);
	CU_ASSERT_STRING_EQUAL(buf, "k1c");
	CU_ASSERT_EQUAL(count, 1);
	CU_ASSERT_EQUAL(ct_ack(&ak, &tag, 1, &acked, msg, sizeof msg), STATUS_OK);
	ct_client_of(&o, 1);
	CU_ASSERT_EQUAL(st_info(&o, k1, &info), STATUS_OK);
	CU_ASSERT(info.len == 0 && info.inflight == 0);
	test_conn_close(&o);

	/* B's clients go: their waiters at node 0 and 1 with them */
	test_conn_close(&ak);
	test_conn_close(&sa);
	test_conn_close(&sb);
	test_conn_close(&xa);
	test_conn_close(&xb);
	test_conn_close(&ca);
	test_conn_close(&cb);
	CU_ASSERT(test_wait_waiters(ct_node_port(0), t0, 0, 0, 10000));
	CU_ASSERT(test_wait_waiters(ct_node_port(1), t1, 0, 0, 10000));
	CU_ASSERT(test_wait_waiters(ct_node_port(1), s1, 0, 0, 10000));
	CU_ASSERT(ctl_await_waiters(1, a1, NULL, 0));
	CU_ASSERT(ctl_await_waiters(0, b0, NULL, 0));
	ct_node_rejoin(KILLED, 10000);
}

/* ---- SIGSTOP the owner for 2 × node_ttl under load: who served what, when ---------------- */

#define NCH 4			/* channels of node 0 */
#define MAXREC 200000

struct rec {
	int chan, node, status;
	int64_t sent, answered;
};

static struct rec recs[MAXREC];
static size_t nrec;

/* One request out on one connection. */
struct slot {
	bool busy;
	int chan, kind;
	uint64_t op;
	int64_t sent;
};

/* A client whose HELLO follows MOVED: its home node, and a connection to each node. */
struct client {
	int home, kind, chan;
	struct test_conn c[CT_NODES];
	struct slot s[CT_NODES];
};

static char stop_names[NCH][64];

static bool
served(int status)
{
	/* the owner answered from the channel: it served it */
	return status == STATUS_OK || status == STATUS_DEADLINE_EXCEEDED;
}

/* Send the client's next operation (MAKE, SEND, RECV; wait 0) on its connection to node n. */
static void
issue(struct client *cl, int n, int chan, int kind)
{
	struct slot *s = &cl->s[n];
	struct test_conn *c = &cl->c[n];
	const char *name = stop_names[chan];

	s->busy = true;
	s->chan = chan;
	s->kind = kind;
	s->sent = clock_now_ns();
	if (kind == 0) {
		s->op = OP_MAKE;
		proto_req_make(&ct_out, c->next_id++, name, strlen(name), 64);
		st_write(c, &ct_out);
	} else if (kind == 1) {
		s->op = OP_SEND;
		st_send(c, name, "s", 1, 0);
	} else {
		s->op = OP_RECV;
		st_recv(c, name, 0);
	}
}

/* A reply on cl's connection to node n: record it, follow MOVED once, move on. */
static void
answered(struct client *cl, int n)
{
	struct slot *s = &cl->s[n];
	struct proto_reply r;
	int port, to;

	CU_ASSERT_FATAL(test_conn_reply(&cl->c[n], s->op, 1000, &r) == 0);
	s->busy = false;
	if (nrec < MAXREC)
		recs[nrec++] = (struct rec){ s->chan, n, r.status, s->sent, clock_now_ns() };
	if (r.status == STATUS_MOVED) {
		CU_ASSERT_FATAL(sscanf(r.msg ? r.msg : "", "127.0.0.1:%d", &port) == 1);
		to = node_of_port(port);
		CU_ASSERT_FATAL(to >= 0);
		if (!cl->s[to].busy)
			issue(cl, to, s->chan, s->kind);
	}
	if (n == cl->home) {
		/* the next operation; NOT_FOUND (a new owner, nothing made yet) starts over with MAKE */
		cl->kind = r.status == STATUS_NOT_FOUND ? 0 : (cl->kind + 1) % 3;
		if (cl->kind == 0)
			cl->chan = (cl->chan + 1) % NCH;
	}
}

/* Run the clients until `until`: each keeps one operation out at home, and follows MOVED. */
static void
drive(struct client *cls, int64_t until)
{
	while (clock_now_ns() < until) {
		struct pollfd p[CT_NODES * CT_NODES];
		int who[CT_NODES * CT_NODES], np = 0;

		for (int i = 0; i < CT_NODES; i++) {
			struct client *cl = &cls[i];

			if (!cl->s[cl->home].busy)
				issue(cl, cl->home, cl->chan, cl->kind);
			for (int n = 0; n < CT_NODES; n++)
				if (cl->s[n].busy) {
					p[np] = (struct pollfd){ .fd = cl->c[n].fd, .events = POLLIN };
					who[np++] = i * CT_NODES + n;
				}
		}
		/* paced (a MOVED answered at once would loop): a few hundred operations a second */
		poll(NULL, 0, 2);
		if (poll(p, (nfds_t)np, 10) <= 0)
			continue;
		for (int k = 0; k < np; k++)
			if (p[k].revents != 0)
				answered(&cls[who[k] / CT_NODES], who[k] % CT_NODES);
	}
}

/*
 * Every request out to node n gets its answer; nothing new is sent to it.
 * Before node 0 is stopped: a request it had read and answered just
 * before the stop, its reply still in its output queue (chand writes
 * replies after the loop's read callbacks), would reach the client after
 * the stop and look like a reply served while fenced.
 */
static void
settle(struct client *cls, int n)
{
	for (int i = 0; i < CT_NODES; i++)
		if (cls[i].s[n].busy)
			answered(&cls[i], n);
}

/*
 * Clients of every node operate on node 0's channels while node 0 is
 * stopped for 2 × node_ttl and continued: for each channel, the span in
 * which each node served it (first request sent to last reply read, so
 * wider than the truth) never overlaps another node's. Node 0 has no
 * request out when it is stopped, so every reply it sends after that
 * answers a request it read after SIGCONT.
 */
static void
test_stop_record(void)
{
	struct client cls[CT_NODES];
	int ttl = ct_node_ttl_s(), nodes_serving[NCH] = { 0 };
	int64_t t_stop, t_cont, lo[NCH][CT_NODES], hi[NCH][CT_NODES];
	size_t during = 0, old_after = 0;

	for (int k = 0; k < NCH; k++)
		snprintf(stop_names[k], sizeof stop_names[k], "%s", ct_name_placed_on(0, "rec"));
	memset(cls, 0, sizeof cls);
	nrec = 0;
	for (int i = 0; i < CT_NODES; i++) {
		cls[i].home = i;
		cls[i].chan = i % NCH;
		for (int n = 0; n < CT_NODES; n++)
			CU_ASSERT_FATAL(ct_open_client(&cls[i].c[n], ct_node_port(n), true) == 0);
	}
	drive(cls, clock_now_ns() + NSEC_PER_SEC);
	settle(cls, 0);
	t_stop = clock_now_ns();
	ct_node_signal(0, SIGSTOP);
	drive(cls, t_stop + 2 * ttl * NSEC_PER_SEC);
	t_cont = clock_now_ns();
	ct_node_signal(0, SIGCONT);
	drive(cls, t_cont + 3 * NSEC_PER_SEC);
	/* the requests still out get their answers */
	for (int i = 0; i < CT_NODES; i++)
		for (int n = 0; n < CT_NODES; n++) {
			if (cls[i].s[n].busy)
				answered(&cls[i], n);
			test_conn_close(&cls[i].c[n]);
		}
	CU_ASSERT_FATAL(nrec < MAXREC);
	for (int k = 0; k < NCH; k++)
		for (int n = 0; n < CT_NODES; n++) {
			lo[k][n] = INT64_MAX;
			hi[k][n] = INT64_MIN;
		}
	for (size_t i = 0; i < nrec; i++) {
		const struct rec *e = &recs[i];

		if (!served(e->status))
			continue;
		if (e->sent < lo[e->chan][e->node])
			lo[e->chan][e->node] = e->sent;
		if (e->answered > hi[e->chan][e->node])
			hi[e->chan][e->node] = e->answered;
		during += e->sent > t_stop && e->answered < t_cont;
		old_after += e->node == 0 && e->sent > t_stop;
	}
	for (int k = 0; k < NCH; k++) {
		for (int n = 0; n < CT_NODES; n++) {
			if (lo[k][n] == INT64_MAX)
				continue;
			nodes_serving[k]++;
			for (int m = n + 1; m < CT_NODES; m++) {
				bool apart = lo[k][m] == INT64_MAX || hi[k][n] < lo[k][m] ||
				    hi[k][m] < lo[k][n];

				if (!apart)
					fprintf(stderr, "%s: n%d served it in [%" PRId64 ", %" PRId64 "] ms, n%d in "
					    "[%" PRId64 ", %" PRId64 "] ms\n", stop_names[k], n,
					    (int64_t)((lo[k][n] - t_stop) / NSEC_PER_MSEC), (int64_t)((hi[k][n] - t_stop) / NSEC_PER_MSEC), m,
					    (int64_t)((lo[k][m] - t_stop) / NSEC_PER_MSEC), (int64_t)((hi[k][m] - t_stop) / NSEC_PER_MSEC));
				CU_ASSERT(apart);
			}
		}
		/* node 0 served it before the stop, and another node took it over */
		CU_ASSERT(lo[k][0] < t_stop);
		CU_ASSERT(nodes_serving[k] >= 2);
	}
	printf("\n  %zu operations recorded, %zu served during the stop, none by n0 after it ", nrec,
	    during);
	CU_ASSERT(during > 0);
	CU_ASSERT_EQUAL(old_after, 0);
	/* node 0 rejoins */
	CU_ASSERT(ct_await_stat(0, "cluster_serving", 1, 10000));
	for (int i = 0; i < CT_NODES; i++)
		CU_ASSERT(ct_await_stat(i, "cluster_nodes", CT_NODES, 10000));
}

/* ---- bad ownership keys ------------------------------------------------------------------ */

/*
 * A channel key naming a node that does not exist (written straight into
 * etcd, as a stale tool might): UNAVAILABLE with the node's name, for a
 * plain client and one that follows MOVED; the node lives on. An empty
 * owner the same. Deleting the key frees the name.
 */
static void
test_unknown_owner(void)
{
	static const char *const owners[] = { "ghost", "" };

	for (size_t i = 0; i < sizeof owners / sizeof owners[0]; i++) {
		const char *name = st_name("ghostly");
		char key[256], msg[256];
		struct test_conn c;

		snprintf(key, sizeof key, "/chand/t/chans/%s", name);
		CU_ASSERT_FATAL(ct_etcd_put(key, owners[i]));
		for (int moved = 0; moved < 2; moved++) {
			int st = -1;

			CU_ASSERT_FATAL(ct_open_client(&c, ct_node_port(moved), moved) == 0);
			/* until the node's watch has the key (a bounded wait: one watch event) */
			for (int k = 0; k < 250; k++) {
				st = ct_make(&c, name, msg, sizeof msg);
				if (st == STATUS_UNAVAILABLE && strstr(msg, "not live") != NULL)
					break;
				CU_ASSERT_FATAL(st == STATUS_UNAVAILABLE || st == STATUS_MOVED);
				poll(NULL, 0, 20);
			}
			CU_ASSERT_EQUAL(st, STATUS_UNAVAILABLE);
			CU_ASSERT(strstr(msg, "not live") != NULL);
			CU_ASSERT(owners[i][0] == '\0' || strstr(msg, owners[i]) != NULL);
			CU_ASSERT_EQUAL(st_send_wait(&c, name, "x", 0), STATUS_UNAVAILABLE);
			test_conn_close(&c);
		}
		CU_ASSERT_FATAL(ct_etcd_delete(key));
		CU_ASSERT(ct_make_converged(2, name, 5000) >= 0);
	}
	for (int i = 0; i < CT_NODES; i++)
		CU_ASSERT_EQUAL(ct_node_stat(i, "cluster_serving"), 1);
}

void
ct_add_failover_tests(CU_pSuite s)
{
	test_add(s, "a ghost owner in etcd: UNAVAILABLE, not a crash", test_unknown_owner);
	test_add(s, "SIGKILL the owner of 100 channels", test_kill_owner_of_100);
	test_add(s, "SIGKILL one of two peers node 0 holds work on", test_kill_peer_of_two);
	test_add(s, "SIGSTOP the owner: never two nodes serving one channel", test_stop_record);
}
