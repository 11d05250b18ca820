/*
 * test_cluster.c: chand nodes in a cluster (PROTOCOL.md §17, issue 19)
 * against a real etcd that the suite starts on ephemeral loopback ports
 * with a temporary data dir, and stops: three nodes join, channels get
 * one owner under races, MOVED and UNAVAILABLE route clients, a killed
 * node's keys go after node_ttl, a stopped node fences itself before its
 * lease can expire, etcd restarting is survived. test_cluster_etcd.c has
 * the tests of server/etcd.c alone, of an etcd that answers garbage, of
 * the config keys and of HELLO's caps. The etcd suites are skipped (with a
 * message) without /usr/bin/etcd.
 *
 * SPDX-License-Identifier: BSD-2-Clause
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/evp.h>

#include "clock.h"
#include "clustertest.h"

#define ETCD "/usr/bin/etcd"
#define NODES CT_NODES
#define TTL_S 2
#define CLUSTER "t"

static struct {
	pid_t pid;
	int port, peer_port;
	char dir[64];
} etcd;

static struct test_server nodes[NODES];
static int node_ports[NODES];
static char node_extra[2048];		/* more config lines for every node (auth_suite_init) */
static char node_certs[64];		/* TLS between the nodes with these certificates (tls_suite_init) */
struct proto_out ct_out;

/* ---- etcd, and a small HTTP client for it ------------------------------------------ */

/* A port nobody listens on now: bind 0, read it, let it go. */
int
ct_free_port(void)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof a;
	int fd = socket(AF_INET, SOCK_STREAM, 0), port = -1;

	if (fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof a) == 0 &&
	    getsockname(fd, (struct sockaddr *)&a, &len) == 0)
		port = ntohs(a.sin_port);
	if (fd >= 0)
		close(fd);
	return port;
}

int
ct_etcd_port(void)
{
	return etcd.port;
}

int
ct_node_port(int i)
{
	return nodes[i].port;
}

/* POST body to path on 127.0.0.1:port (HTTP/1.0: the reply ends at EOF); the reply's body, malloc'd. */
static char *
http_post(int port, const char *path, const char *body)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port),
	    .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	struct timeval tv = { .tv_sec = 5 };
	char *buf = NULL, *p = NULL;
	size_t len = 0, cap = 0;
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	ssize_t n;
	char head[256];

	if (fd < 0)
		return NULL;
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
	if (connect(fd, (struct sockaddr *)&a, sizeof a) < 0)
		goto fail;
	snprintf(head, sizeof head, "%s %s HTTP/1.0\r\nContent-Type: application/json\r\n"
	    "Content-Length: %zu\r\n\r\n", body ? "POST" : "GET", path, body ? strlen(body) : 0);
	if (write(fd, head, strlen(head)) < 0 || (body && write(fd, body, strlen(body)) < 0))
		goto fail;
	for (;;) {
		if (len + 4096 + 1 > cap && (p = realloc(buf, cap = cap * 2 + 8192)) == NULL)
			goto fail;
		buf = p;
		if ((n = read(fd, buf + len, cap - len - 1)) <= 0)
			break;
		len += (size_t)n;
	}
	close(fd);
	if (buf == NULL)
		return NULL;
	buf[len] = '\0';
	if ((p = strstr(buf, "\r\n\r\n")) == NULL) {
		free(buf);
		return NULL;
	}
	memmove(buf, p + 4, strlen(p + 4) + 1);
	return buf;
fail:
	close(fd);
	free(buf);
	return NULL;
}

static bool
etcd_healthy(void)
{
	char *r = http_post(etcd.port, "/health", NULL);
	bool ok = r != NULL && strstr(r, "\"true\"") != NULL;

	free(r);
	return ok;
}

static int
etcd_run(void)
{
	char client[64], peer[64], cluster[96], log[96];
	int64_t end = clock_now_ns() + 20 * NSEC_PER_SEC;

	snprintf(client, sizeof client, "http://127.0.0.1:%d", etcd.port);
	snprintf(peer, sizeof peer, "http://127.0.0.1:%d", etcd.peer_port);
	snprintf(cluster, sizeof cluster, "default=%s", peer);
	snprintf(log, sizeof log, "%s/etcd.log", etcd.dir);
	if ((etcd.pid = fork()) == 0) {
		char data[96];
		int fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0644);

		snprintf(data, sizeof data, "%s/data", etcd.dir);
		dup2(fd, STDOUT_FILENO);
		dup2(fd, STDERR_FILENO);
		execl(ETCD, ETCD, "--data-dir", data, "--listen-client-urls", client,
		    "--advertise-client-urls", client, "--listen-peer-urls", peer,
		    "--initial-advertise-peer-urls", peer, "--initial-cluster", cluster, (char *)NULL);
		_exit(127);
	}
	while (clock_now_ns() < end) {
		if (etcd_healthy())
			return 0;
		if (waitpid(etcd.pid, NULL, WNOHANG) == etcd.pid)
			break;
		poll(NULL, 0, 50);
	}
	fprintf(stderr, "etcd did not become healthy (see %s)\n", log);
	return -1;
}

static void
etcd_stop(void)
{
	if (etcd.pid <= 0)
		return;
	kill(etcd.pid, SIGTERM);
	if (test_wait_exit(etcd.pid, 10000) < 0)
		fprintf(stderr, "etcd did not stop on SIGTERM\n");
	etcd.pid = 0;
}

static char *
b64(const char *s)
{
	char *out = malloc(4 * ((strlen(s) + 2) / 3) + 1);

	EVP_EncodeBlock((unsigned char *)out, (const unsigned char *)s, (int)strlen(s));
	return out;
}

/* The value of key in etcd, malloc'd; NULL when absent (or etcd did not answer). */
static char *
etcd_get(const char *key)
{
	char body[1024], *k = b64(key), *reply, *v = NULL;
	json_t *o, *kv;
	const char *enc;

	snprintf(body, sizeof body, "{\"key\":\"%s\"}", k);
	free(k);
	reply = http_post(etcd.port, "/v3/kv/range", body);
	o = reply ? json_loads(reply, 0, NULL) : NULL;
	kv = json_array_get(json_object_get(o, "kvs"), 0);
	if ((enc = json_string_value(json_object_get(kv, "value"))) != NULL) {
		v = calloc(1, strlen(enc) + 1);
		EVP_DecodeBlock((unsigned char *)v, (const unsigned char *)enc, (int)strlen(enc));
	}
	json_decref(o);
	free(reply);
	return v;
}

static char *
chan_owner(const char *name)
{
	char key[256];

	snprintf(key, sizeof key, "/chand/" CLUSTER "/chans/%s", name);
	return etcd_get(key);
}

static bool
node_key_present(int i)
{
	char key[128], *v;

	snprintf(key, sizeof key, "/chand/" CLUSTER "/nodes/n%d", i);
	v = etcd_get(key);
	free(v);
	return v != NULL;
}

/* ---- nodes ----------------------------------------------------------------------------- */

static int
node_start(int i, const char *etcd_url)
{
	char conf[3072], port[16], tls[512] = "";
	const char *args[] = { "-p", port, NULL };
	int tls_port = 0;

	node_ports[i] = ct_free_port();
	snprintf(port, sizeof port, "%d", node_ports[i]);
	/* with TLS, the advertised address (what the nodes dial) is the TLS listener */
	if (node_certs[0] != '\0') {
		tls_port = ct_free_port();
		snprintf(tls, sizeof tls, "tls_listen = 127.0.0.1:%d\ntls_cert = %s/server.pem\n"
		    "tls_key = %s/server.key\ntls_ca = %s/ca.pem\ntls_verify_client = optional\n"
		    "protected_mode = no\n", tls_port, node_certs, node_certs, node_certs);
	}
	snprintf(conf, sizeof conf, "cluster_etcd = %s\ncluster_name = " CLUSTER "\nnode_name = n%d\n"
	    "advertise = 127.0.0.1:%d\nnode_ttl = %ds\n%s%s", etcd_url, i,
	    tls_port ? tls_port : node_ports[i], TTL_S, tls, node_extra);
	return test_server_start_args(&nodes[i], conf, args);
}

/* One STATS key of node i over a fresh connection. */
static uint64_t
node_stat(int i, const char *key)
{
	struct test_conn c;
	uint64_t v;

	if (test_conn_open(&c, nodes[i].port, true) < 0)
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

static bool
await_log(struct test_server *s, const char *needle, int ms)
{
	int64_t end = clock_now_ns() + (int64_t)ms * NSEC_PER_MSEC;

	while (clock_now_ns() < end) {
		if (test_server_log_has(s, needle))
			return true;
		poll(NULL, 0, 50);
	}
	return false;
}

/* A connection whose HELLO says it follows MOVED (moved), or a plain one. */
int
ct_open_client(struct test_conn *c, int port, bool moved)
{
	struct proto_reply r;

	if (test_conn_open(c, port, false) < 0)
		return -1;
	proto_req_hello_caps(&ct_out, c->next_id++, PROTO_VERSION, "test_cluster", NULL, moved);
	st_write(c, &ct_out);
	st_reply(c, OP_HELLO, &r);
	return r.status == STATUS_OK ? 0 : -1;
}

/* MAKE name on c; the reply's status, and for MOVED or UNAVAILABLE its words in msg. */
int
ct_make(struct test_conn *c, const char *name, char *msg, size_t cap)
{
	struct proto_reply r;

	proto_req_make(&ct_out, c->next_id++, name, strlen(name), 0);
	st_write(c, &ct_out);
	st_reply(c, OP_MAKE, &r);
	if (msg != NULL)
		snprintf(msg, cap, "%.*s", (int)r.msg_len, r.msg ? r.msg : "");
	return r.status;
}

static int
index_of_port(int port)
{
	for (int i = 0; i < NODES; i++)
		if (node_ports[i] == port)
			return i;
	return -1;
}

/* MAKE name through node `from`, following one MOVED: the index of the node that made it, or -1. */
int
ct_make_anywhere(int from, const char *name)
{
	struct test_conn c;
	char msg[256];
	int st, to = -1, port;

	CU_ASSERT_FATAL(ct_open_client(&c, nodes[from].port, true) == 0);
	st = ct_make(&c, name, msg, sizeof msg);
	test_conn_close(&c);
	if (st == STATUS_OK)
		return from;
	CU_ASSERT_EQUAL_FATAL(st, STATUS_MOVED);
	CU_ASSERT_FATAL(sscanf(msg, "127.0.0.1:%d", &port) == 1);
	CU_ASSERT_FATAL((to = index_of_port(port)) >= 0);
	CU_ASSERT_FATAL(ct_open_client(&c, nodes[to].port, true) == 0);
	CU_ASSERT_EQUAL(ct_make(&c, name, NULL, 0), STATUS_OK);
	test_conn_close(&c);
	return to;
}

/*
 * MAKE name as a client that follows MOVED would, for use right after the
 * live set changed: until every node's view has caught up (one watch event,
 * PROTOCOL.md §17), a node may still place the name on the node that left,
 * or bounce it once more. Follows up to 8 MOVED per try and tries again on
 * UNAVAILABLE, for at most ms: the index of the node that made it, or -1.
 */
int
ct_make_converged(int from, const char *name, int ms)
{
	int64_t until = clock_now_ns() + (int64_t)ms * NSEC_PER_MSEC;
	struct test_conn c;
	char msg[256];
	int st, at, port;

	do {
		at = from;
		for (int hop = 0; hop < 8; hop++) {
			if (ct_open_client(&c, nodes[at].port, true) != 0)
				return -1;
			st = ct_make(&c, name, msg, sizeof msg);
			test_conn_close(&c);
			if (st == STATUS_OK)
				return at;
			if (st != STATUS_MOVED || sscanf(msg, "127.0.0.1:%d", &port) != 1 ||
			    (at = index_of_port(port)) < 0)
				break;
		}
		CU_ASSERT_FATAL(st == STATUS_MOVED || st == STATUS_UNAVAILABLE);
		poll(NULL, 0, 20);
	} while (clock_now_ns() < until);
	return -1;
}

static int
suite_init(void)
{
	char url[64];

	snprintf(etcd.dir, sizeof etcd.dir, "/tmp/chand-etcd.XXXXXX");
	if (mkdtemp(etcd.dir) == NULL)
		return -1;
	etcd.port = ct_free_port();
	etcd.peer_port = ct_free_port();
	if (etcd_run() < 0)
		return -1;
	snprintf(url, sizeof url, "http://127.0.0.1:%d", etcd.port);
	for (int i = 0; i < NODES; i++)
		if (node_start(i, url) < 0)
			return -1;
	return 0;
}

static int
suite_clean(void)
{
	char cmd[128];

	int rc = 0;

	/* a node that does not stop cleanly fails the suite (no test is current here) */
	for (int i = 0; i < NODES; i++)
		if (nodes[i].pid > 0 && test_server_stop(&nodes[i]) != 0)
			rc = -1;
	etcd_stop();
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", etcd.dir);
	return system(cmd) == 0 ? rc : -1;
}

/* ---- the tests --------------------------------------------------------------------------- */

/* Each node sees all three, serves, and has its node key in etcd with its advertise address. */
static void
test_join(void)
{
	char key[128], want[64], *v;

	for (int i = 0; i < NODES; i++) {
		CU_ASSERT(await_stat(i, "cluster_nodes", NODES, 10000));
		CU_ASSERT(await_stat(i, "cluster_serving", 1, 10000));
		CU_ASSERT_EQUAL(node_stat(i, "cluster_sessions"), 1);
		snprintf(key, sizeof key, "/chand/" CLUSTER "/nodes/n%d", i);
		snprintf(want, sizeof want, "\"advertise\":\"127.0.0.1:%d\"", node_ports[i]);
		v = etcd_get(key);
		CU_ASSERT(v != NULL && strstr(v, want) != NULL);
		free(v);
	}
}

/*
 * MAKE through each node: placed there (OK), or MOVED to the owner's
 * address; the owner in etcd is the node that made it; the channel works
 * on its owner, and a plain client elsewhere reaches it through forwarding.
 */
static void
test_moved_and_owner(void)
{
	int placed[NODES] = { 0 };

	for (int k = 0; k < 24; k++) {
		const char *name = st_name("own");
		int owner = ct_make_anywhere(k % NODES, name), other = (owner + 1) % NODES;
		char *v = chan_owner(name), want[8], msg[256], buf[16];
		struct test_conn c;
		bool ok;

		CU_ASSERT_FATAL(owner >= 0);
		placed[owner]++;
		snprintf(want, sizeof want, "n%d", owner);
		CU_ASSERT(v != NULL && strcmp(v, want) == 0);
		free(v);
		/* a plain client on another node: forwarded to the owner, where it exists */
		CU_ASSERT_FATAL(ct_open_client(&c, nodes[other].port, false) == 0);
		CU_ASSERT_EQUAL(ct_make(&c, name, msg, sizeof msg), STATUS_OK);
		CU_ASSERT_EQUAL(st_send_wait(&c, name, "x", 0), STATUS_DEADLINE_EXCEEDED);
		test_conn_close(&c);
		/* on the owner it is an ordinary channel */
		CU_ASSERT_FATAL(ct_open_client(&c, nodes[owner].port, false) == 0);
		CU_ASSERT_EQUAL(ct_make(&c, name, NULL, 0), STATUS_OK);
		CU_ASSERT_EQUAL(st_close(&c, name), STATUS_OK);
		CU_ASSERT_EQUAL(st_recv_wait(&c, name, 0, buf, sizeof buf, &ok), STATUS_OK);
		CU_ASSERT_FALSE(ok);
		test_conn_close(&c);
	}
	/* rendezvous spreads them: 24 names over 3 nodes leave none empty (p ≈ 3·(2/3)^24) */
	for (int i = 0; i < NODES; i++)
		CU_ASSERT(placed[i] > 0);
	CU_ASSERT(node_stat(0, "cluster_moved") > 0);
}

/* Anonymous channels stay on their maker, and a name nobody owns is NOT_FOUND, not an error. */
static void
test_anonymous_and_unknown(void)
{
	struct test_conn c;

	CU_ASSERT_FATAL(ct_open_client(&c, nodes[1].port, false) == 0);
	CU_ASSERT_EQUAL(st_make(&c, NULL, 1), STATUS_OK);
	CU_ASSERT_EQUAL(st_send_wait(&c, st_name("nobody"), "x", 0), STATUS_NOT_FOUND);
	test_conn_close(&c);
}

/*
 * The same name made through every node at once, many times: each name
 * has exactly one owner in etcd, exactly one MAKE created it, and every
 * other got MOVED to that owner or opened it there.
 */
static void
test_claim_race(void)
{
	for (int k = 0; k < 10; k++) {
		const char *name = st_name("race");
		struct test_conn c[NODES];
		struct proto_reply r;
		int created = 0, moved = 0;
		char *v;

		for (int i = 0; i < NODES; i++)
			CU_ASSERT_FATAL(ct_open_client(&c[i], nodes[i].port, true) == 0);
		for (int i = 0; i < NODES; i++) {
			proto_req_make(&ct_out, c[i].next_id++, name, strlen(name), 0);
			st_write(&c[i], &ct_out);
		}
		for (int i = 0; i < NODES; i++) {
			st_reply(&c[i], OP_MAKE, &r);
			created += r.status == STATUS_OK && r.created;
			if (r.status == STATUS_MOVED) {
				moved++;
				CU_ASSERT_EQUAL(r.msg_len > 0, true);
			} else {
				CU_ASSERT_EQUAL(r.status, STATUS_OK);
			}
			test_conn_close(&c[i]);
		}
		CU_ASSERT_EQUAL(created, 1);
		CU_ASSERT_EQUAL(moved, NODES - 1);
		v = chan_owner(name);
		CU_ASSERT(v != NULL && v[0] == 'n');
		free(v);
	}
}

/* SIGKILL a node: its node key and its channels' keys go within node_ttl (+ slack), not before. */
static void
test_kill(void)
{
	char url[64], *v;
	const char *name = NULL;
	int64_t t0, gone_ms = -1;
	int at;

	/* a channel owned by node 2 */
	for (int k = 0; k < 60 && name == NULL; k++) {
		const char *n = st_name("kill");

		if (ct_make_anywhere(0, n) == 2)
			name = n;
	}
	CU_ASSERT_FATAL(name != NULL);
	t0 = clock_now_ns();
	test_server_kill(&nodes[2]);
	while (clock_now_ns() - t0 < (TTL_S + 5) * NSEC_PER_SEC) {
		v = chan_owner(name);
		if (v == NULL && !node_key_present(2)) {
			gone_ms = (clock_now_ns() - t0) / NSEC_PER_MSEC;
			break;
		}
		free(v);
		poll(NULL, 0, 50);
	}
	CU_ASSERT(gone_ms >= 0);
	/* etcd may round the ttl up a second; never long after it */
	CU_ASSERT(gone_ms <= (TTL_S + 2) * 1000);
	/* the survivors see two nodes, and the name can be made again on one of them */
	CU_ASSERT(await_stat(0, "cluster_nodes", 2, 10000));
	CU_ASSERT(await_stat(1, "cluster_nodes", 2, 10000));
	at = ct_make_converged(0, name, 10000);
	CU_ASSERT(at == 0 || at == 1);
	/* node 2 again, for the tests after this one */
	snprintf(url, sizeof url, "http://127.0.0.1:%d", etcd.port);
	CU_ASSERT_FATAL(node_start(2, url) == 0);
	/* every view has it again (the next test places names from node 1's) */
	for (int i = 0; i < NODES; i++)
		CU_ASSERT(await_stat(i, "cluster_nodes", 3, 10000));
}

/*
 * SIGSTOP the owner of a channel for 2 × node_ttl: meanwhile its lease
 * expires and another node takes the channel. A request that waited in its
 * socket is answered, after SIGCONT, without serving the channel: the node
 * knows by its own clock that it is fenced. Then it rejoins.
 */
static void
test_fencing(void)
{
	const char *name = NULL;
	struct test_conn c;
	struct proto_reply r;
	int64_t t0;
	char *v = NULL, was[8];
	int taker;

	for (int k = 0; k < 60 && name == NULL; k++) {
		const char *n = st_name("fence");

		if (ct_make_anywhere(1, n) == 0)
			name = n;
	}
	CU_ASSERT_FATAL(name != NULL);
	CU_ASSERT_FATAL(ct_open_client(&c, nodes[0].port, false) == 0);
	CU_ASSERT_EQUAL(st_send_wait(&c, name, "x", 0), STATUS_DEADLINE_EXCEEDED);
	kill(nodes[0].pid, SIGSTOP);
	t0 = clock_now_ns();
	/* its keys go when the lease expires; then node 1 or 2 takes the name */
	while (clock_now_ns() - t0 < (TTL_S + 5) * NSEC_PER_SEC) {
		v = chan_owner(name);
		if (v == NULL)
			break;
		free(v);
		v = NULL;
		poll(NULL, 0, 50);
	}
	CU_ASSERT_PTR_NULL(v);
	CU_ASSERT(await_stat(1, "cluster_nodes", 2, 10000));
	taker = ct_make_converged(1, name, 10000);
	CU_ASSERT(taker == 1 || taker == 2);
	snprintf(was, sizeof was, "n%d", taker);
	v = chan_owner(name);
	CU_ASSERT(v != NULL && strcmp(v, was) == 0);
	free(v);
	/* 2 × node_ttl stopped in all (the wait above is part of it) */
	while (clock_now_ns() - t0 < 2 * TTL_S * NSEC_PER_SEC)
		poll(NULL, 0, 50);
	st_send(&c, name, "y", 1, 0);
	kill(nodes[0].pid, SIGCONT);
	st_reply(&c, OP_SEND, &r);
	CU_ASSERT(r.status == STATUS_UNAVAILABLE || r.status == STATUS_MOVED);
	CU_ASSERT_NOT_EQUAL(r.status, STATUS_OK);
	test_conn_close(&c);
	CU_ASSERT(await_log(&nodes[0], "cluster-fenced", 5000) ||
	    await_log(&nodes[0], "cluster-lease-lost", 5000));
	/* it rejoins with a new lease, and the channel stays with its taker */
	CU_ASSERT(await_stat(0, "cluster_serving", 1, 10000));
	CU_ASSERT(node_stat(0, "cluster_sessions") >= 2);
	for (int i = 0; i < NODES; i++)
		CU_ASSERT(await_stat(i, "cluster_nodes", 3, 10000));
	v = chan_owner(name);
	CU_ASSERT(v != NULL && strcmp(v, was) == 0);
	free(v);
	/* node 0 forwards to the taker, whose channel is new: nobody receives */
	CU_ASSERT_FATAL(ct_open_client(&c, nodes[0].port, false) == 0);
	CU_ASSERT_EQUAL(st_send_wait(&c, name, "z", 0), STATUS_DEADLINE_EXCEEDED);
	test_conn_close(&c);
}

/*
 * etcd stopped for 3 × node_ttl: nodes fence and refuse new names
 * UNAVAILABLE all along; etcd back: all serve again, old names included.
 */
static void
test_etcd_restart(void)
{
	const char *name = ct_name_placed_on(1, "waiter");
	struct test_conn c, w;
	struct proto_reply r, anon;
	char msg[256], anon_name[64];
	uint64_t named_id, anon_id;
	int64_t t_down;

	/* a RECV waiting on node 1's channel, and one on an anonymous channel */
	CU_ASSERT_FATAL(ct_open_client(&w, nodes[1].port, false) == 0);
	CU_ASSERT_EQUAL_FATAL(ct_make(&w, name, NULL, 0), STATUS_OK);
	proto_req_make(&ct_out, w.next_id++, NULL, 0, 0);
	st_write(&w, &ct_out);
	st_reply(&w, OP_MAKE, &anon);
	CU_ASSERT_EQUAL_FATAL(anon.status, STATUS_OK);
	snprintf(anon_name, sizeof anon_name, "%.*s", (int)anon.name_len, anon.name);
	named_id = st_recv(&w, name, PROTO_WAIT_FOREVER);
	anon_id = st_recv(&w, anon_name, PROTO_WAIT_FOREVER);
	CU_ASSERT(test_wait_waiters(nodes[1].port, name, 0, 1, 10000));
	etcd_stop();
	t_down = clock_now_ns();
	for (int i = 0; i < NODES; i++)
		CU_ASSERT(await_stat(i, "cluster_serving", 0, (TTL_S + 5) * 1000));
	/* fenced: the named channel's waiter ends UNAVAILABLE, the anonymous one waits on */
	st_reply(&w, OP_RECV, &r);
	CU_ASSERT_EQUAL(r.id, named_id);
	CU_ASSERT_EQUAL(r.status, STATUS_UNAVAILABLE);
	CU_ASSERT(r.msg_len > 0 && memmem(r.msg, r.msg_len, "fenced", 6) != NULL);
	proto_req_cancel(&ct_out, w.next_id++, anon_id);
	st_write(&w, &ct_out);
	st_reply(&w, OP_RECV, &r);
	CU_ASSERT_EQUAL(r.id, anon_id);
	CU_ASSERT_EQUAL(r.status, STATUS_CANCELED);
	test_conn_close(&w);
	CU_ASSERT_FATAL(ct_open_client(&c, nodes[1].port, true) == 0);
	CU_ASSERT_EQUAL(ct_make(&c, st_name("down"), msg, sizeof msg), STATUS_UNAVAILABLE);
	CU_ASSERT(strstr(msg, "fenced") != NULL || strstr(msg, "etcd") != NULL);
	test_conn_close(&c);
	CU_ASSERT(node_stat(1, "cluster_etcd_errors") > 0);
	/* down for 3 × node_ttl in all (issue 19), still refusing new names at the end */
	while (clock_now_ns() - t_down < 3 * TTL_S * NSEC_PER_SEC)
		poll(NULL, 0, 50);
	CU_ASSERT_FATAL(ct_open_client(&c, nodes[2].port, true) == 0);
	CU_ASSERT_EQUAL(ct_make(&c, st_name("down"), NULL, 0), STATUS_UNAVAILABLE);
	test_conn_close(&c);
	for (int i = 0; i < NODES; i++)
		CU_ASSERT_EQUAL(node_stat(i, "cluster_serving"), 0);
	CU_ASSERT_FATAL(etcd_run() == 0);
	for (int i = 0; i < NODES; i++) {
		CU_ASSERT(await_stat(i, "cluster_serving", 1, 15000));
		CU_ASSERT(await_stat(i, "cluster_nodes", NODES, 15000));
	}
	CU_ASSERT(ct_make_converged(2, st_name("back"), 10000) >= 0);
	/* the waiter's channel too: made again (its old owner's lease went), and used */
	CU_ASSERT(ct_make_converged(0, name, 10000) >= 0);
	CU_ASSERT_FATAL(ct_open_client(&c, nodes[0].port, false) == 0);
	CU_ASSERT_EQUAL(st_send_wait(&c, name, "x", 0), STATUS_DEADLINE_EXCEEDED);
	test_conn_close(&c);
}

/* SIGTERM: each node revokes its lease (its key goes now) and exits 0 (a sanitizer's report would fail it). */
static void
test_stop_all(void)
{
	for (int i = 0; i < NODES; i++) {
		CU_ASSERT(node_key_present(i));
		CU_ASSERT_EQUAL(test_server_stop(&nodes[i]), 0);
		nodes[i].pid = 0;
		CU_ASSERT_FALSE(node_key_present(i));
	}
}

/* ---- what test_cluster_forward.c uses of the nodes --------------------------------------- */

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

void
ct_node_kill(int i)
{
	test_server_kill(&nodes[i]);
}

void
ct_node_signal(int i, int sig)
{
	kill(nodes[i].pid, sig);
}

/* The authenticated cluster's suite: its nodes get ct_auth_conf's lines (test_cluster_forward.c). */
static int
auth_suite_init(void)
{
	snprintf(node_extra, sizeof node_extra, "%s", ct_auth_conf());
	return suite_init();
}

static int
auth_suite_clean(void)
{
	int rc = suite_clean();

	node_extra[0] = '\0';
	return rc;
}

/* The TLS cluster's suite: certificates by gencerts.sh, TLS listeners advertised. */
static int
tls_suite_init(void)
{
	char cmd[256];
	const char *src = getenv("CHAND_SRCDIR") ? getenv("CHAND_SRCDIR") : ".";

	snprintf(node_certs, sizeof node_certs, "/tmp/chand-certs.XXXXXX");
	if (mkdtemp(node_certs) == NULL)
		return -1;
	snprintf(cmd, sizeof cmd, "sh %s/tests/gencerts.sh %s", src, node_certs);
	if (system(cmd) != 0) {
		fprintf(stderr, "gencerts.sh failed (is the openssl CLI installed?)\n");
		return -1;
	}
	return suite_init();
}

static int
tls_suite_clean(void)
{
	char cmd[128];
	int rc = suite_clean();

	snprintf(cmd, sizeof cmd, "rm -rf '%s'", node_certs);
	node_certs[0] = '\0';
	return system(cmd) == 0 ? rc : -1;
}

int
ct_node_ttl_s(void)
{
	return TTL_S;
}

char *
ct_chan_owner(const char *name)
{
	return chan_owner(name);
}

/* Put key = value (no lease) straight into etcd, as a bad actor or a stale tool would. */
bool
ct_etcd_put(const char *key, const char *value)
{
	char *k = b64(key), *v = b64(value), *body, *reply;
	bool ok;

	if (asprintf(&body, "{\"key\":\"%s\",\"value\":\"%s\"}", k, v) < 0)
		body = NULL;
	reply = body ? http_post(etcd.port, "/v3/kv/put", body) : NULL;
	ok = reply != NULL && strstr(reply, "\"header\"") != NULL;
	free(reply);
	free(body);
	free(k);
	free(v);
	return ok;
}

bool
ct_etcd_delete(const char *key)
{
	char *k = b64(key), body[512], *reply;
	bool ok;

	snprintf(body, sizeof body, "{\"key\":\"%s\"}", k);
	reply = http_post(etcd.port, "/v3/kv/deleterange", body);
	ok = reply != NULL && strstr(reply, "\"header\"") != NULL;
	free(reply);
	free(k);
	return ok;
}

int
ct_node_restart(int i)
{
	char url[64];

	snprintf(url, sizeof url, "http://127.0.0.1:%d", etcd.port);
	return node_start(i, url);
}

static void
register_suites(void)
{
	CU_pSuite s;

	ct_register_alone();
	if (access(ETCD, X_OK) != 0) {
		printf("test_cluster: %s is missing (apt-get install etcd-server): skipped\n", ETCD);
		return;
	}
	s = test_suite("cluster", suite_init, suite_clean);
	test_add(s, "three nodes join", test_join);
	test_add(s, "the claim txn raced by two clients", ct_test_txn_race);
	test_add(s, "MOVED, UNAVAILABLE and the owner in etcd", test_moved_and_owner);
	test_add(s, "anonymous and unknown channels", test_anonymous_and_unknown);
	ct_add_route_tests(s);
	test_add(s, "one owner under racing MAKEs", test_claim_race);
	test_add(s, "SIGKILL: the node's keys go after node_ttl", test_kill);
	test_add(s, "SIGSTOP: fenced before its lease can expire", test_fencing);
	test_add(s, "etcd stopped and restarted", test_etcd_restart);
	test_add(s, "every node stops cleanly", test_stop_all);
	/* a fresh etcd and three fresh nodes for forwarding (test_cluster_forward.c) */
	s = test_suite("cluster_forward", suite_init, suite_clean);
	test_add(s, "three nodes join", test_join);
	ct_add_forward_tests(s);
	test_add(s, "every node stops cleanly", test_stop_all);
	/* a SELECT over channels on three nodes (test_cluster_select.c) */
	s = test_suite("cluster_select", suite_init, suite_clean);
	test_add(s, "three nodes join", test_join);
	ct_add_select_tests(s);
	test_add(s, "every node stops cleanly", test_stop_all);
	/* forwarding between nodes with authentication on: cluster_token */
	s = test_suite("cluster_auth", auth_suite_init, auth_suite_clean);
	ct_add_auth_tests(s);
	/* forwarding between nodes over TLS */
	s = test_suite("cluster_tls", tls_suite_init, tls_suite_clean);
	ct_add_tls_tests(s);
	/* the failover cases on fresh nodes (test_cluster_failover.c) */
	s = test_suite("cluster_failover", suite_init, suite_clean);
	test_add(s, "three nodes join", test_join);
	ct_add_failover_tests(s);
	test_add(s, "every node stops cleanly", test_stop_all);
	/* TLS to etcd, and a cluster node's metrics (test_cluster_etcdtls.c) */
	ct_add_etcd_tls_suites();
}

int
main(int argc, char **argv)
{
	int rc;

	signal(SIGPIPE, SIG_IGN);
	proto_out_init(&ct_out);
	rc = test_main(argc, argv, register_suites);
	proto_out_destroy(&ct_out);
	return rc;
}
