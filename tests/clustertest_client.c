/*
 * clustertest_client.c: the ct_* helpers of clustertest.h that speak to
 * the fixture's nodes (clustertest.c) as a client does: connections with
 * the suite's token, STATS, LEN, SEND, MAKE and WAITERS through them; the
 * nodes' logs; where PROTOCOL.md §17 places a name, and the wait until the
 * others route to a restarted node again.
 *
 * SPDX-License-Identifier: BSD-2-Clause
 */
#include <poll.h>
#include <stdio.h>
#include <string.h>

#include <openssl/evp.h>

#include "clock.h"
#include "clustertest.h"

/* ---- connections to the nodes ---------------------------------------------------------- */

static const char *ct_token;		/* the ct_* clients' HELLO token (ct_set_token) */

void
ct_set_token(const char *token)
{
	ct_token = token;
}

/* A connection whose HELLO says it follows MOVED (moved), or a plain one. */
int
ct_open_client(struct test_conn *c, int port, bool moved)
{
	struct proto_reply r;

	if (test_conn_open(c, port, false) < 0)
		return -1;
	proto_req_hello_caps(&ct_out, c->next_id++, PROTO_VERSION, "test_cluster", ct_token, moved);
	st_write(c, &ct_out);
	st_reply(c, OP_HELLO, &r);
	return r.status == STATUS_OK ? 0 : -1;
}

void
ct_client_of(struct test_conn *c, int i)
{
	CU_ASSERT_FATAL(ct_open_client(c, ct_node_port(i), false) == 0);
}

/* ---- STATS ----------------------------------------------------------------------------- */

/* One STATS key of node i over a fresh connection. */
static uint64_t
node_stat(int i, const char *key)
{
	struct test_conn c;
	uint64_t v;

	if ((ct_token != NULL ? ct_open_client(&c, ct_node_port(i), false) :
	    test_conn_open(&c, ct_node_port(i), true)) < 0)
		return UINT64_MAX;
	v = st_stat(&c, key);
	test_conn_close(&c);
	return v;
}

/* Poll until node i's STATS key is want (up to ms). */
static bool
await_stat(int i, const char *key, uint64_t want, int ms)
{
	int64_t end = clock_now_ns() + (int64_t)ms * NSEC_PER_MSEC;

	while (clock_now_ns() < end) {
		if (node_stat(i, key) == want)
			return true;
		poll(NULL, 0, 50);
	}
	return false;
}

uint64_t
ct_node_stat(int i, const char *key)
{
	return node_stat(i, key);
}

bool
ct_await_stat(int i, const char *key, uint64_t want, int ms)
{
	return await_stat(i, key, want, ms);
}

/* ---- the nodes' logs ------------------------------------------------------------------- */

bool
ct_await_log(int i, const char *needle, int ms)
{
	int64_t end = clock_now_ns() + (int64_t)ms * NSEC_PER_MSEC;

	while (clock_now_ns() < end) {
		if (test_server_log_has(ct_node(i), needle))
			return true;
		poll(NULL, 0, 50);
	}
	return false;
}

int
ct_log_count(int i, const char *needle)
{
	return test_server_log_count(ct_node(i), needle);
}

void
ct_print_log(int i, const char *needle)
{
	char path[160], line[1024];
	FILE *f;

	snprintf(path, sizeof path, "%s/chand.log", ct_node(i)->dir);
	if ((f = fopen(path, "r")) == NULL)
		return;
	while (fgets(line, sizeof line, f) != NULL)
		if (strstr(line, needle) != NULL)
			printf("\n  n%d: %s", i, line);
	fclose(f);
}

/* ---- requests through a client of a node ----------------------------------------------- */

bool
ct_await_receivers(int i, const char *name, int64_t want)
{
	struct test_conn c;
	bool ok;

	ct_client_of(&c, i);
	ok = st_await_waiters(&c, name, -1, want);
	test_conn_close(&c);
	return ok;
}

void
ct_send(int i, const char *name, const char *v)
{
	struct test_conn c;

	ct_client_of(&c, i);
	CU_ASSERT_EQUAL(st_send_wait(&c, name, v, 20 * 1000000), STATUS_OK);
	test_conn_close(&c);
}

void
ct_make_anonymous(struct test_conn *c, int i, uint64_t chan_cap, char *name, size_t cap)
{
	struct proto_reply r;

	ct_client_of(c, i);
	proto_out_reset(&ct_out);
	proto_req_make(&ct_out, c->next_id++, NULL, 0, chan_cap);
	st_write(c, &ct_out);
	st_reply(c, OP_MAKE, &r);
	CU_ASSERT_EQUAL_FATAL(r.status, STATUS_OK);
	snprintf(name, cap, "%.*s", (int)r.name_len, r.name);
}

int
ct_len_at(int i, const char *name, uint64_t *n, char *why, size_t cap)
{
	struct test_conn c;
	struct proto_reply r;

	ct_client_of(&c, i);
	st_name_op(&c, OP_LEN, name);
	st_reply(&c, OP_LEN, &r);
	*n = r.status == STATUS_OK ? r.n : UINT64_MAX;
	/* r.msg points into c's buffer */
	if (why != NULL)
		snprintf(why, cap, "%.*s", (int)r.msg_len, r.msg_len ? r.msg : "");
	test_conn_close(&c);
	return r.status;
}

uint64_t
ct_len(int i, const char *name)
{
	uint64_t n;

	(void)ct_len_at(i, name, &n, NULL, 0);
	return n;
}

/*
 * UNAVAILABLE (an etcd call that failed under load: the claim is not
 * made) is said, then tried again for up to 10 s, as a client would.
 */
void
ct_make_on(int node, char *name, const char *base, uint64_t cap)
{
	int64_t end = clock_now_ns() + 10 * NSEC_PER_SEC;
	struct test_conn c;
	char msg[300];
	int st;

	snprintf(name, CT_NAME_CAP, "%s", ct_name_placed_on(node, base));
	ct_client_of(&c, node);
	for (;;) {
		if ((st = ct_make_cap(&c, name, cap, msg, sizeof msg)) != STATUS_OK)
			printf(" [MAKE %s at n%d: %s %s]", name, node, status_name(st), msg);
		if (st != STATUS_UNAVAILABLE || clock_now_ns() > end)
			break;
		poll(NULL, 0, 50);
	}
	CU_ASSERT_EQUAL_FATAL(st, STATUS_OK);
	test_conn_close(&c);
}

void
ct_make_three(char names[CT_NODES][CT_NAME_CAP], const char *base, uint64_t cap)
{
	char b[64];
	uint64_t n;

	for (int i = 0; i < CT_NODES; i++) {
		snprintf(b, sizeof b, "%s%d", base, i);
		ct_make_on(i, names[i], b, cap);
	}
	/*
	 * else node 0's first request naming them could be held while it asks
	 * etcd (its watch not yet told of a channel just made), and a CANCEL
	 * would end it at once: not what the tests that stop nodes under a
	 * select or stream expect. A LEN of a name it does not know asks etcd,
	 * which it remembers.
	 */
	for (int i = 1; i < CT_NODES; i++)
		CU_ASSERT_EQUAL_FATAL(ct_len_at(0, names[i], &n, NULL, 0), STATUS_OK);
}

/* Does s (len bytes, not terminated) spell want? */
static bool
spells(const char *s, uint32_t len, const char *want)
{
	return s != NULL && len == strlen(want) && memcmp(s, want, len) == 0;
}

/* WAITERS at node i: how many name name with home (NULL: any); *client the last one's client id. */
static int
waiters_walk(int i, const char *name, const char *home, uint64_t *client)
{
	struct test_conn c;
	struct proto_reply r;
	struct proto_waiter_info w;
	int n = 0;

	ct_client_of(&c, i);
	proto_req_waiters(&ct_out, c.next_id++, 100000);
	st_write(&c, &ct_out);
	st_reply(&c, OP_WAITERS, &r);
	CU_ASSERT_EQUAL(r.status, STATUS_OK);
	while (proto_list_waiter(&r.list, &w) == 1) {
		struct proto_list cl;
		uint8_t dir;
		const char *cn;
		uint32_t nl;
		bool named = false;

		proto_case_list(&w, &cl);
		while (proto_list_case(&cl, &dir, &cn, &nl) == 1)
			named |= spells(cn, nl, name);
		if (named && (home == NULL || spells(w.home, w.home_len, home))) {
			n++;
			if (client != NULL)
				*client = w.client;
		}
	}
	test_conn_close(&c);
	return n;
}

int
ct_waiters_naming(int i, const char *name, const char *home)
{
	return waiters_walk(i, name, home, NULL);
}

uint64_t
ct_waiter_client(int i, const char *name, const char *home)
{
	uint64_t id = 0;

	waiters_walk(i, name, home, &id);
	return id;
}

/* MAKE name on c; the reply's status, and for MOVED or UNAVAILABLE its words in msg. */
int
ct_make(struct test_conn *c, const char *name, char *msg, size_t cap)
{
	return ct_make_cap(c, name, 0, msg, cap);
}

int
ct_make_cap(struct test_conn *c, const char *name, uint64_t chan_cap, char *msg, size_t cap)
{
	struct proto_reply r;

	proto_req_make(&ct_out, c->next_id++, name, strlen(name), chan_cap);
	st_write(c, &ct_out);
	st_reply(c, OP_MAKE, &r);
	if (msg != NULL)
		snprintf(msg, cap, "%.*s", (int)r.msg_len, r.msg ? r.msg : "");
	return r.status;
}

/* ---- placement, and a restarted node routed to again ----------------------------------- */

/* PROTOCOL.md §17's place: the node with the highest first 8 bytes of SHA-256(node, 0, name). */
int
ct_expected_place(const char *name, int live)
{
	unsigned char buf[320], md[EVP_MAX_MD_SIZE];
	uint64_t best = 0, w;
	int at = -1;

	for (int i = 0; i < CT_NODES; i++) {
		int n;

		if (!(live & 1 << i))
			continue;
		n = snprintf((char *)buf, sizeof buf, "n%d", i) + 1;
		memcpy(buf + n, name, strlen(name));
		EVP_Digest(buf, (size_t)n + strlen(name), md, NULL, EVP_sha256(), NULL);
		w = 0;
		for (int k = 0; k < 8; k++)
			w = w << 8 | md[k];
		if (at < 0 || w > best) {
			best = w;
			at = i;
		}
	}
	return at;
}

/* A name placed on node i (in st_name's buffers: copy it before the next st_name). */
const char *
ct_name_placed_on(int i, const char *base)
{
	for (;;) {
		const char *name = st_name(base);

		if (ct_expected_place(name, 7) == i)
			return name;
	}
}

/*
 * Node k forwards to node i: a MAKE at k of a new name placed on i is
 * answered by i (OK; EXISTS when an earlier try's reply was lost), not
 * UNAVAILABLE. (A LEN of a name nobody made would not do: k answers it
 * NOT_FOUND itself, once etcd says no node owns it.)
 */
static bool
await_route(int k, int i, int ms)
{
	static unsigned probes;
	int64_t end = clock_now_ns() + (int64_t)ms * NSEC_PER_MSEC;
	char base[48], name[CT_NAME_CAP];
	struct test_conn c;
	int st;

	snprintf(base, sizeof base, "route-probe-%u", probes++);
	snprintf(name, sizeof name, "%s", ct_name_placed_on(i, base));
	do {
		ct_client_of(&c, k);
		st = st_make(&c, name, 0);
		test_conn_close(&c);
		if (st == STATUS_OK || st == STATUS_EXISTS)
			return true;
		poll(NULL, 0, 20);
	} while (clock_now_ns() < end);
	printf(" [node n%d does not route to n%d: %s]", k, i, status_name(st));
	return false;
}

/*
 * The restarted node's lease may be the one its predecessor held (killed
 * within node_ttl, cluster_nodes never changed): the others route to it
 * once they saw its new key and dialled it.
 */
void
ct_node_rejoin(int i, int ms)
{
	CU_ASSERT_FATAL(ct_node_restart(i) == 0);
	ct_await_rejoined(i, ms);
}

void
ct_await_rejoined(int i, int ms)
{
	for (int k = 0; k < CT_NODES; k++) {
		CU_ASSERT(ct_await_stat(k, "cluster_nodes", CT_NODES, ms));
		if (k != i)
			CU_ASSERT(await_route(k, i, ms));
	}
}
