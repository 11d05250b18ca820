/*
 * test_cluster_select_load.c: cross-node SELECTs under load (PROTOCOL.md
 * §17): 8 producers whose selects send each value on any of 4 channels
 * and 8 consumers whose selects receive from the 4, the channels on 3
 * nodes, every client on its own connection to one node, all driven from
 * one loop: every value of 200,000 (60,000 under ASan) received exactly
 * once. Then the same with a SIGKILL of the node owning one channel
 * midway: no value is received twice, every value sent to a living node's
 * channel is received, and the values lost are exactly those the dead
 * node held (sent to its channel, never received). Run by test_cluster.c
 * on its fixture (etcd, n0..n2).
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

/*
 * Values per producer: 8 × 25,000 = 200,000 values in all, the issue's
 * count, each a select of 4 send cases on 3 nodes (3 owners polled,
 * parked, then XSETTLE) met by a select of 4 receive cases: 22 to 35 s
 * in a plain build on this 2-core machine, shared. Under AddressSanitizer
 * (the suite's second run) 8 × 7,500 = 60,000, about 15 s (200,000 would
 * take about 50 s there). The kill comes after LD_KILL_AT values were
 * received.
 */
#if defined(__SANITIZE_ADDRESS__)
#define LD_VALUES 7500
#else
#define LD_VALUES 25000
#endif
enum { LD_CHANS = 4, LD_PEERS = 8, LD_WINDOW = 8, LD_CAP = 8 };
enum { LD_KILL_AT = 10000 };

struct ld_state {
	char chans[LD_CHANS][NAME_CAP];
	struct proto_case rcases[LD_CHANS];
	struct test_conn prod[LD_PEERS], cons[LD_PEERS];
	int sent[LD_PEERS], answered[LD_PEERS], cons_out[LD_PEERS];
	uint64_t first_id[LD_PEERS];	/* producer p's value k went in request first_id + k */
	/* per value: the channel its send went to (+1; 0: not sent OK), and times received */
	uint8_t sent_on[LD_PEERS][LD_VALUES];
	uint8_t seen[LD_PEERS][LD_VALUES];
	int received, dups, bad, send_failed;
	int nlive;			/* consumers select over the channels 0..nlive-1 */
	bool producing;
};

/*
 * Each client node reaches every owner: a SELECT with default over the 4
 * channels answers default (a node restarted by an earlier test may still
 * be in the others' dialling backoff, up to 5 s).
 */
static bool
ld_reachable(struct ld_state *m, int nclient_nodes)
{
	int64_t end = clock_now_ns() + 15 * NSEC_PER_SEC;
	struct proto_reply r;
	struct test_conn c;
	int ok = 0;

	for (int i = 0; i < nclient_nodes; i++) {
		if (ct_open_client(&c, ct_node_port(i), false) < 0)
			return false;
		do {
			st_select(&c, m->rcases, LD_CHANS, true, 0);
			st_reply(&c, OP_SELECT, &r);
		} while (r.status != STATUS_OK && clock_now_ns() < end && poll(NULL, 0, 50) == 0);
		ok += r.status == STATUS_OK && r.index == -1;
		test_conn_close(&c);
	}
	return ok == nclient_nodes;
}

static void
ld_open(struct ld_state *m, const char *base, int node_of_client_mod)
{
	struct test_conn c;
	char b[32];

	for (int i = 0; i < LD_CHANS; i++) {
		snprintf(b, sizeof b, "%s%d", base, i);
		snprintf(m->chans[i], NAME_CAP, "%s", ct_name_placed_on(i % CT_NODES, b));
		CU_ASSERT_FATAL(ct_open_client(&c, ct_node_port(i % CT_NODES), false) == 0);
		CU_ASSERT_EQUAL_FATAL(st_make(&c, m->chans[i], LD_CAP), STATUS_OK);
		test_conn_close(&c);
		m->rcases[i] = (struct proto_case){ .dir = 0, .name = m->chans[i],
		    .name_len = (uint32_t)strlen(m->chans[i]) };
	}
	for (int p = 0; p < LD_PEERS; p++) {
		CU_ASSERT_FATAL(ct_open_client(&m->prod[p], ct_node_port((p + 1) % node_of_client_mod),
		    false) == 0);
		CU_ASSERT_FATAL(ct_open_client(&m->cons[p], ct_node_port(p % node_of_client_mod),
		    false) == 0);
	}
	m->nlive = LD_CHANS;
	m->producing = true;
	CU_ASSERT_FATAL(ld_reachable(m, node_of_client_mod));
}

static void
ld_close(struct ld_state *m)
{
	for (int p = 0; p < LD_PEERS; p++) {
		test_conn_close(&m->prod[p]);
		test_conn_close(&m->cons[p]);
	}
}

/* Producer p's selects (value "p:k" on any of the 4 channels) up to its window. */
static void
ld_produce(struct ld_state *m, int p)
{
	struct proto_case cases[LD_CHANS];
	uint64_t id;
	char v[32];

	while (m->producing && m->sent[p] < LD_VALUES && m->sent[p] - m->answered[p] < LD_WINDOW) {
		snprintf(v, sizeof v, "%d:%d", p, m->sent[p]++);
		for (int i = 0; i < LD_CHANS; i++)
			cases[i] = (struct proto_case){ .dir = 1, .name = m->chans[i],
			    .name_len = (uint32_t)strlen(m->chans[i]),
			    .value = { .kind = VALUE_BIN, .data = (const uint8_t *)v, .len = strlen(v) } };
		id = st_select(&m->prod[p], cases, LD_CHANS, false, PROTO_WAIT_FOREVER);
		if (m->sent[p] == 1)
			m->first_id[p] = id;
	}
}

/* Producer p's replies: which channel each value went to. */
static void
ld_drain_producer(struct ld_state *m, int p)
{
	const uint8_t *body;
	struct proto_reply r;
	const char *why;
	long n;

	while ((n = test_conn_frame(&m->prod[p], 0, &body)) > 0) {
		m->answered[p]++;
		if (proto_decode_reply(body, (size_t)n, OP_SELECT, &r, &why) != STATUS_OK ||
		    r.id < m->first_id[p] || r.id - m->first_id[p] >= (uint64_t)m->sent[p]) {
			m->bad++;
		} else if (r.status == STATUS_OK && r.index >= 0 && r.index < LD_CHANS) {
			m->sent_on[p][r.id - m->first_id[p]] = (uint8_t)(r.index + 1);
		} else if (r.status == STATUS_UNAVAILABLE && !m->producing) {
			m->send_failed++;	/* a node was killed: it may or may not have been sent */
		} else {
			if (m->bad++ == 0)
				printf(" [producer %d: %s %.*s]", p, status_name(r.status), (int)r.msg_len,
				    r.msg_len ? r.msg : "");
		}
	}
}

/* Consumer p's replies; it selects again while values may come. */
static void
ld_drain_consumer(struct ld_state *m, int p)
{
	const uint8_t *body;
	struct proto_reply r;
	const char *why;
	char v[32];
	long n;
	int vp, vk;

	while ((n = test_conn_frame(&m->cons[p], 0, &body)) > 0) {
		m->cons_out[p]--;
		if (proto_decode_reply(body, (size_t)n, OP_SELECT, &r, &why) != STATUS_OK) {
			m->bad++;
			continue;
		}
		if (r.status == STATUS_UNAVAILABLE && !m->producing)
			continue;	/* a case on the killed node */
		snprintf(v, sizeof v, "%.*s", (int)r.value.len, (const char *)r.value.data);
		if (r.status != STATUS_OK || sscanf(v, "%d:%d", &vp, &vk) != 2 || vp < 0 ||
		    vp >= LD_PEERS || vk < 0 || vk >= LD_VALUES) {
			if (m->bad++ == 0)
				printf(" [consumer %d: %s %.*s]", p, status_name(r.status), (int)r.msg_len,
				    r.msg_len ? r.msg : "");
			continue;
		}
		m->dups += m->seen[vp][vk]++ > 0;
		m->received++;
	}
	if (m->producing && m->cons_out[p] == 0) {
		st_select(&m->cons[p], m->rcases, (size_t)m->nlive, false, PROTO_WAIT_FOREVER);
		m->cons_out[p]++;
	}
}

/* Poll every connection once (a generous bound for a hang only); false on a hang. */
static bool
ld_step(struct ld_state *m)
{
	struct pollfd fds[2 * LD_PEERS];

	for (int p = 0; p < LD_PEERS; p++) {
		fds[2 * p] = (struct pollfd){ .fd = m->prod[p].fd, .events = POLLIN };
		fds[2 * p + 1] = (struct pollfd){ .fd = m->cons[p].fd, .events = POLLIN };
	}
	if (poll(fds, 2 * LD_PEERS, 30000) <= 0)
		return false;
	for (int p = 0; p < LD_PEERS; p++) {
		ld_drain_producer(m, p);
		ld_drain_consumer(m, p);
		ld_produce(m, p);
	}
	return true;
}

static int
ld_total(const int *a)
{
	int n = 0;

	for (int p = 0; p < LD_PEERS; p++)
		n += a[p];
	return n;
}

/* 8 producers, 8 consumers, selects over 4 channels on 3 nodes: the exact multiset. */
static void
test_load_multiset(void)
{
	struct ld_state *m = calloc(1, sizeof *m);
	int64_t t0;
	int wrong = 0;
	bool hung = false;

	CU_ASSERT_FATAL(m != NULL);
	ld_open(m, "xld", CT_NODES);
	t0 = clock_now_ns();
	for (int p = 0; p < LD_PEERS; p++) {
		ld_drain_consumer(m, p);
		ld_produce(m, p);
	}
	while (m->received < LD_PEERS * LD_VALUES && m->bad == 0 && !hung)
		hung = !ld_step(m);
	printf(" [%d values received in %lld ms, duplicates %d, bad replies %d, polled again %" PRIu64
	    "]", m->received, (long long)((clock_now_ns() - t0) / NSEC_PER_MSEC), m->dups, m->bad,
	    ct_node_stat(0, "cluster_xselect_retries") + ct_node_stat(1, "cluster_xselect_retries") +
	    ct_node_stat(2, "cluster_xselect_retries"));
	CU_ASSERT(!hung);
	CU_ASSERT_EQUAL(m->received, LD_PEERS * LD_VALUES);
	CU_ASSERT_EQUAL(m->dups, 0);
	CU_ASSERT_EQUAL(m->bad, 0);
	/* the producers' last replies may still be on their way */
	while (ld_total(m->answered) < LD_PEERS * LD_VALUES && m->bad == 0 && !hung)
		hung = !ld_step(m);
	for (int p = 0; p < LD_PEERS; p++)
		for (int k = 0; k < LD_VALUES; k++)
			wrong += m->seen[p][k] != 1 || m->sent_on[p][k] == 0;
	CU_ASSERT_EQUAL(wrong, 0);
	ld_close(m);
	free(m);
}

/*
 * The same run, clients on nodes 0 and 1 only, node 2 (owner of channel
 * 2) SIGKILLed once LD_KILL_AT values were received: every select pending
 * then completes or fails UNAVAILABLE (none hangs), the living channels
 * are drained, and
 *   lost (sent OK, never received) == held by node 2 (sent OK to channel
 *   2, never received), no value is received twice, and every value sent
 *   OK to a living channel is received.
 */
static void
test_load_kill(void)
{
	struct ld_state *m = calloc(1, sizeof *m);
	struct test_conn c;
	struct proto_case live[LD_CHANS - 1];
	struct proto_reply r;
	int lost = 0, held = 0, sent_ok = 0, on_dead_seen = 0;
	bool hung = false;

	CU_ASSERT_FATAL(m != NULL);
	ld_open(m, "xldk", 2);
	for (int p = 0; p < LD_PEERS; p++) {
		ld_drain_consumer(m, p);
		ld_produce(m, p);
	}
	while (m->received < LD_KILL_AT && m->bad == 0 && !hung)
		hung = !ld_step(m);
	CU_ASSERT_FATAL(!hung && m->bad == 0);
	m->producing = false;
	ct_node_kill(2);
	/* every pending select ends: OK, or UNAVAILABLE for a case on node 2 */
	while ((ld_total(m->answered) < ld_total(m->sent) || ld_total(m->cons_out) > 0) &&
	    m->bad == 0 && !hung)
		hung = !ld_step(m);
	CU_ASSERT(!hung);
	if (hung) {
		for (int p = 0; p < LD_PEERS; p++)
			printf(" [p%d sent %d answered %d, c%d waiting %d]", p, m->sent[p], m->answered[p], p,
			    m->cons_out[p]);
		for (int i = 0; i < 2; i++)
			printf(" [n%d forwarded %" PRIu64 " retries %" PRIu64 "]", i,
			    ct_node_stat(i, "cluster_forwarded"), ct_node_stat(i, "cluster_xselect_retries"));
	}
	/* drain the living channels (0, 1 and 3) from one connection, without waiting */
	for (int i = 0, j = 0; i < LD_CHANS; i++)
		if (i % CT_NODES != 2)
			live[j++] = m->rcases[i];
	CU_ASSERT_FATAL(ct_open_client(&c, ct_node_port(0), false) == 0);
	for (;;) {
		char v[32];
		int vp, vk;

		st_select(&c, live, LD_CHANS - 1, false, 0);
		st_reply(&c, OP_SELECT, &r);
		if (r.status != STATUS_OK)
			break;
		snprintf(v, sizeof v, "%.*s", (int)r.value.len, (const char *)r.value.data);
		if (sscanf(v, "%d:%d", &vp, &vk) != 2 || vp < 0 || vp >= LD_PEERS || vk < 0 ||
		    vk >= LD_VALUES) {
			m->bad++;
			break;
		}
		m->dups += m->seen[vp][vk]++ > 0;
		m->received++;
	}
	CU_ASSERT_EQUAL(r.status, STATUS_DEADLINE_EXCEEDED);
	test_conn_close(&c);
	for (int p = 0; p < LD_PEERS; p++) {
		for (int k = 0; k < m->sent[p]; k++) {
			bool dead = m->sent_on[p][k] == 3;	/* channel 2, + 1 */

			sent_ok += m->sent_on[p][k] != 0;
			lost += m->sent_on[p][k] != 0 && m->seen[p][k] == 0;
			held += dead && m->seen[p][k] == 0;
			on_dead_seen += dead && m->seen[p][k] > 0;
			/* a living channel's value, sent OK, arrives once */
			if (m->sent_on[p][k] != 0 && !dead)
				CU_ASSERT_EQUAL(m->seen[p][k], 1);
			CU_ASSERT(m->seen[p][k] <= 1);
		}
	}
	printf(" [sent OK %d, received %d, lost %d, held by the dead node %d (it had delivered %d),"
	    " sends ending UNAVAILABLE %d, duplicates %d]", sent_ok, m->received, lost, held,
	    on_dead_seen, m->send_failed, m->dups);
	CU_ASSERT_EQUAL(lost, held);
	CU_ASSERT_EQUAL(m->dups, 0);
	CU_ASSERT_EQUAL(m->bad, 0);
	ld_close(m);
	free(m);
	ct_node_rejoin(2, 10000);
}

void
ct_add_select_load_tests(CU_pSuite s)
{
	test_add(s, "select: 8 producers, 8 consumers, 4 channels on 3 nodes", test_load_multiset);
	test_add(s, "select: SIGKILL of a node in the middle of that run", test_load_kill);
}
