/*
 * test_cluster.c: chand nodes in a cluster (PROTOCOL.md §16, issue 19)
 * against a real etcd that the suite starts on ephemeral loopback ports
 * with a temporary data dir, and stops: three nodes join, channels get
 * one owner under races, MOVED and UNAVAILABLE route clients, a killed
 * node's keys go after node_ttl, a stopped node fences itself before its
 * lease can expire, etcd restarting is survived, and an etcd that answers
 * garbage makes errors, never a crash. Skipped (with a message) without
 * /usr/bin/etcd.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <event2/event.h>
#include <jansson.h>
#include <openssl/evp.h>

#include "clock.h"
#include "etcd.h"
#include "srvtest.h"
#include "status.h"

#define ETCD "/usr/bin/etcd"
#define NODES 3
#define TTL_S 2
#define CLUSTER "t"

static struct {
	pid_t pid;
	int port, peer_port;
	char dir[64];
} etcd;

static struct test_server nodes[NODES];
static int node_ports[NODES];
static struct proto_out req_out;

/* ---- etcd, and a small HTTP client for it ------------------------------------------ */

/* A port nobody listens on now: bind 0, read it, let it go. */
static int
free_port(void)
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
	char conf[512], port[16];
	const char *args[] = { "-p", port, NULL };

	node_ports[i] = free_port();
	snprintf(port, sizeof port, "%d", node_ports[i]);
	snprintf(conf, sizeof conf, "cluster_etcd = %s\ncluster_name = " CLUSTER "\nnode_name = n%d\n"
	    "advertise = 127.0.0.1:%d\nnode_ttl = %ds\n", etcd_url, i, node_ports[i], TTL_S);
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
static int
open_client(struct test_conn *c, int port, bool moved)
{
	struct proto_reply r;

	if (test_conn_open(c, port, false) < 0)
		return -1;
	proto_req_hello_caps(&req_out, c->next_id++, PROTO_VERSION, "test_cluster", NULL, moved);
	st_write(c, &req_out);
	st_reply(c, OP_HELLO, &r);
	return r.status == STATUS_OK ? 0 : -1;
}

/* MAKE name on c; the reply's status, and for MOVED or UNAVAILABLE its words in msg. */
static int
make(struct test_conn *c, const char *name, char *msg, size_t cap)
{
	struct proto_reply r;

	proto_req_make(&req_out, c->next_id++, name, strlen(name), 0);
	st_write(c, &req_out);
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
static int
make_anywhere(int from, const char *name)
{
	struct test_conn c;
	char msg[256];
	int st, to = -1, port;

	CU_ASSERT_FATAL(open_client(&c, nodes[from].port, true) == 0);
	st = make(&c, name, msg, sizeof msg);
	test_conn_close(&c);
	if (st == STATUS_OK)
		return from;
	CU_ASSERT_EQUAL_FATAL(st, STATUS_MOVED);
	CU_ASSERT_FATAL(sscanf(msg, "127.0.0.1:%d", &port) == 1);
	CU_ASSERT_FATAL((to = index_of_port(port)) >= 0);
	CU_ASSERT_FATAL(open_client(&c, nodes[to].port, true) == 0);
	CU_ASSERT_EQUAL(make(&c, name, NULL, 0), STATUS_OK);
	test_conn_close(&c);
	return to;
}

static int
suite_init(void)
{
	char url[64];

	snprintf(etcd.dir, sizeof etcd.dir, "/tmp/chand-etcd.XXXXXX");
	if (mkdtemp(etcd.dir) == NULL)
		return -1;
	etcd.port = free_port();
	etcd.peer_port = free_port();
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
 * on its owner, and a plain client elsewhere gets UNAVAILABLE naming it.
 */
static void
test_moved_and_owner(void)
{
	int placed[NODES] = { 0 };

	for (int k = 0; k < 24; k++) {
		const char *name = st_name("own");
		int owner = make_anywhere(k % NODES, name), other = (owner + 1) % NODES;
		char *v = chan_owner(name), want[8], msg[256], buf[16];
		struct test_conn c;
		bool ok;

		CU_ASSERT_FATAL(owner >= 0);
		placed[owner]++;
		snprintf(want, sizeof want, "n%d", owner);
		CU_ASSERT(v != NULL && strcmp(v, want) == 0);
		free(v);
		/* a plain client on another node: UNAVAILABLE with the owner's address */
		CU_ASSERT_FATAL(open_client(&c, nodes[other].port, false) == 0);
		CU_ASSERT_EQUAL(make(&c, name, msg, sizeof msg), STATUS_UNAVAILABLE);
		snprintf(want, sizeof want, "%d", node_ports[owner]);
		CU_ASSERT(strstr(msg, want) != NULL);
		CU_ASSERT_EQUAL(st_send_wait(&c, name, "x", 0), STATUS_UNAVAILABLE);
		test_conn_close(&c);
		/* on the owner it is an ordinary channel */
		CU_ASSERT_FATAL(open_client(&c, nodes[owner].port, false) == 0);
		CU_ASSERT_EQUAL(make(&c, name, NULL, 0), STATUS_OK);
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

/* PROTOCOL.md §16's place: the node with the highest first 8 bytes of SHA-256(node, 0, name). */
static int
expected_place(const char *name, int live)
{
	unsigned char buf[320], md[EVP_MAX_MD_SIZE];
	uint64_t best = 0, w;
	int at = -1;

	for (int i = 0; i < NODES; i++) {
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

/* Every MAKE lands where the documented rendezvous formula says, whichever node it was sent to. */
static void
test_placement(void)
{
	for (int k = 0; k < 15; k++) {
		const char *name = st_name("place");

		CU_ASSERT_EQUAL(make_anywhere(k % NODES, name), expected_place(name, 7));
	}
}

/* A name placed on node i. */
static const char *
name_placed_on(int i, const char *base)
{
	for (;;) {
		const char *name = st_name(base);

		if (expected_place(name, 7) == i)
			return name;
	}
}

/*
 * Requests pipelined behind a MAKE that waits for its claim run after it,
 * in order; an id reused while its request waits for etcd closes the
 * connection, as any duplicate id does.
 */
static void
test_held_order(void)
{
	const char *name = name_placed_on(0, "order");
	struct test_conn c;
	struct proto_reply r;
	uint64_t id0;
	const uint8_t *body;

	CU_ASSERT_FATAL(open_client(&c, nodes[0].port, false) == 0);
	id0 = c.next_id;
	proto_req_make(&req_out, c.next_id++, name, strlen(name), 1);
	st_write(&c, &req_out);
	st_send(&c, name, "v", 1, 0);
	proto_req_name(&req_out, OP_LEN, c.next_id++, PROTO_WAIT_FOREVER, name, strlen(name));
	st_write(&c, &req_out);
	st_reply(&c, OP_MAKE, &r);
	CU_ASSERT_EQUAL(r.id, id0);
	CU_ASSERT_EQUAL(r.status, STATUS_OK);
	CU_ASSERT(r.created);
	st_reply(&c, OP_SEND, &r);
	CU_ASSERT_EQUAL(r.id, id0 + 1);
	CU_ASSERT_EQUAL(r.status, STATUS_OK);
	st_reply(&c, OP_LEN, &r);
	CU_ASSERT_EQUAL(r.id, id0 + 2);
	CU_ASSERT_EQUAL(r.n, 1);
	test_conn_close(&c);
	/* MAKE and PING with one id, in one write: the PING finds the MAKE waiting for etcd */
	name = name_placed_on(0, "dup");
	CU_ASSERT_FATAL(open_client(&c, nodes[0].port, false) == 0);
	proto_req_make(&req_out, 7, name, strlen(name), 0);
	proto_req_ping(&req_out, 7);
	st_write(&c, &req_out);
	CU_ASSERT_EQUAL(test_conn_reply(&c, OP_PING, REPLY_MS, &r), 0);
	CU_ASSERT_EQUAL(r.id, 0);
	CU_ASSERT_EQUAL(r.status, STATUS_PROTOCOL);
	while (test_conn_frame(&c, REPLY_MS, &body) > 0)
		;
	CU_ASSERT_EQUAL(test_conn_frame(&c, 100, &body), 0);
	test_conn_close(&c);
}

/* Anonymous channels stay on their maker, and a name nobody owns is NOT_FOUND, not an error. */
static void
test_anonymous_and_unknown(void)
{
	struct test_conn c;

	CU_ASSERT_FATAL(open_client(&c, nodes[1].port, false) == 0);
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
			CU_ASSERT_FATAL(open_client(&c[i], nodes[i].port, true) == 0);
		for (int i = 0; i < NODES; i++) {
			proto_req_make(&req_out, c[i].next_id++, name, strlen(name), 0);
			st_write(&c[i], &req_out);
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

	/* a channel owned by node 2 */
	for (int k = 0; k < 60 && name == NULL; k++) {
		const char *n = st_name("kill");

		if (make_anywhere(0, n) == 2)
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
	CU_ASSERT(make_anywhere(0, name) != 2);
	/* node 2 again, for the tests after this one */
	snprintf(url, sizeof url, "http://127.0.0.1:%d", etcd.port);
	CU_ASSERT_FATAL(node_start(2, url) == 0);
	CU_ASSERT(await_stat(0, "cluster_nodes", 3, 10000));
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

		if (make_anywhere(1, n) == 0)
			name = n;
	}
	CU_ASSERT_FATAL(name != NULL);
	CU_ASSERT_FATAL(open_client(&c, nodes[0].port, false) == 0);
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
	taker = make_anywhere(1, name);
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
	CU_ASSERT(await_stat(0, "cluster_nodes", 3, 10000));
	v = chan_owner(name);
	CU_ASSERT(v != NULL && strcmp(v, was) == 0);
	free(v);
	CU_ASSERT_FATAL(open_client(&c, nodes[0].port, false) == 0);
	CU_ASSERT_EQUAL(st_send_wait(&c, name, "z", 0), STATUS_UNAVAILABLE);
	test_conn_close(&c);
}

/* etcd stopped: nodes fence and refuse new names UNAVAILABLE; etcd back: all serve again. */
static void
test_etcd_restart(void)
{
	struct test_conn c;
	char msg[256];

	etcd_stop();
	for (int i = 0; i < NODES; i++)
		CU_ASSERT(await_stat(i, "cluster_serving", 0, (TTL_S + 5) * 1000));
	CU_ASSERT_FATAL(open_client(&c, nodes[1].port, true) == 0);
	CU_ASSERT_EQUAL(make(&c, st_name("down"), msg, sizeof msg), STATUS_UNAVAILABLE);
	CU_ASSERT(strstr(msg, "fenced") != NULL || strstr(msg, "etcd") != NULL);
	test_conn_close(&c);
	CU_ASSERT(node_stat(1, "cluster_etcd_errors") > 0);
	CU_ASSERT_FATAL(etcd_run() == 0);
	for (int i = 0; i < NODES; i++) {
		CU_ASSERT(await_stat(i, "cluster_serving", 1, 15000));
		CU_ASSERT(await_stat(i, "cluster_nodes", NODES, 15000));
	}
	CU_ASSERT(make_anywhere(2, st_name("back")) >= 0);
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

/* ---- server/etcd.c alone, on a loop of the test's own ---------------------------------- */

struct outcome {
	int done;
	bool ok, succeeded;
	int64_t n;			/* a grant's lease ID */
	char winner[16];		/* a failed create: the value that won */
};

static void
outcome_cb(void *arg, json_t *reply, const char *why)
{
	struct outcome *o = arg;
	const json_t *kv;
	const char *v;

	o->done++;
	o->ok = reply != NULL;
	if (reply == NULL)
		return;
	etcd_int(reply, "ID", &o->n);
	o->succeeded = json_is_true(json_object_get(reply, "succeeded"));
	kv = json_array_get(json_object_get(json_object_get(json_array_get(
	    json_object_get(reply, "responses"), 0), "response_range"), "kvs"), 0);
	if ((v = json_string_value(json_object_get(kv, "value"))) != NULL)
		EVP_DecodeBlock((unsigned char *)o->winner, (const unsigned char *)v, (int)strlen(v));
}

/* Run base until every outcome is done (up to 10 s). */
static bool
run_until(struct event_base *base, struct outcome *o, size_t n)
{
	int64_t end = clock_now_ns() + 10 * NSEC_PER_SEC;

	for (;;) {
		size_t done = 0;

		for (size_t i = 0; i < n; i++)
			done += o[i].done > 0;
		if (done == n)
			return true;
		if (clock_now_ns() > end)
			return false;
		event_base_loop(base, EVLOOP_ONCE);
	}
}

/*
 * Two clients, each with its lease, send the claim txn for the same key at
 * once, many times: exactly one succeeds each time, and the loser's reply
 * names the winner. The first endpoint of each is dead: failover.
 */
static void
test_txn_race(void)
{
	struct event_base *base = event_base_new();
	struct etcd *e[2] = { NULL, NULL };
	struct outcome g[2] = { { 0 } };
	char url[128], *cause = NULL;

	CU_ASSERT_FATAL(base != NULL);
	snprintf(url, sizeof url, "http://127.0.0.1:%d,http://127.0.0.1:%d", free_port(), etcd.port);
	for (int i = 0; i < 2; i++) {
		CU_ASSERT_FATAL(etcd_new(&e[i], base, url, 2000, &cause) == 0);
		CU_ASSERT_FATAL(etcd_lease_grant(e[i], 30, outcome_cb, &g[i]) == 0);
	}
	CU_ASSERT_FATAL(run_until(base, g, 2));
	CU_ASSERT_FATAL(g[0].ok && g[1].ok && g[0].n != 0 && g[1].n != g[0].n);
	for (int k = 0; k < 20; k++) {
		struct outcome c[2] = { { 0 } };
		char key[64];

		snprintf(key, sizeof key, "/chand/" CLUSTER "/race/%d", k);
		/* both are on the wire before either answer is read */
		CU_ASSERT_FATAL(etcd_create(e[k % 2], key, k % 2 ? "b" : "a", g[k % 2].n, outcome_cb, &c[0]) == 0);
		CU_ASSERT_FATAL(etcd_create(e[1 - k % 2], key, k % 2 ? "a" : "b", g[1 - k % 2].n, outcome_cb,
		    &c[1]) == 0);
		CU_ASSERT_FATAL(run_until(base, c, 2));
		CU_ASSERT(c[0].ok && c[1].ok);
		CU_ASSERT_EQUAL(c[0].succeeded + c[1].succeeded, 1);
		CU_ASSERT(strcmp(c[c[0].succeeded ? 1 : 0].winner, c[0].succeeded ?
		    (k % 2 ? "b" : "a") : (k % 2 ? "a" : "b")) == 0);
	}
	for (int i = 0; i < 2; i++) {
		struct outcome r = { 0 };

		CU_ASSERT(etcd_lease_revoke(e[i], g[i].n, outcome_cb, &r) == 0 && run_until(base, &r, 1));
		etcd_free(e[i]);
	}
	event_base_free(base);
}

/* Endpoints that are not http://HOST:PORT are refused with the reason; nothing reachable is an error. */
static void
test_etcd_endpoints(void)
{
	static const char *const bad[] = { "", ",", "ftp://h:1", "https://h:1", "http://h:1/v3", "h:1" };
	struct event_base *base = event_base_new();
	struct outcome o = { 0 };
	struct etcd *e;
	char url[64], *cause;

	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		cause = NULL;
		CU_ASSERT_EQUAL(etcd_new(&e, base, bad[i], 1000, &cause), -1);
		CU_ASSERT(cause != NULL && cause[0] != '\0');
		free(cause);
	}
	snprintf(url, sizeof url, "http://127.0.0.1:%d,http://127.0.0.1:%d", free_port(), free_port());
	CU_ASSERT_FATAL(etcd_new(&e, base, url, 1000, &cause) == 0);
	CU_ASSERT_FATAL(etcd_range(e, "/x", 1, outcome_cb, &o) == 0);
	CU_ASSERT(run_until(base, &o, 1));
	CU_ASSERT_FALSE(o.ok);
	/* a call still out when the client goes is dropped without a callback */
	CU_ASSERT_FATAL(etcd_range(e, "/x", 0, outcome_cb, &o) == 0);
	etcd_free(e);
	CU_ASSERT_EQUAL(o.done, 1);
	event_base_free(base);
}

/* HELLO's optional caps (PROTOCOL.md §5): decoded, checked, and three arguments still work. */
static void
test_hello_caps(void)
{
	struct proto_limits lim = { .max_value = 1024, .max_select_cases = 4 };
	struct proto_case cases[4];
	struct proto_request q;
	struct proto_out o;
	const char *why;
	static const uint8_t bad_caps[] = { 0x97, 0x01, 0x01, 0xc0, 0x01, 0xa0, 0xc0, 0x05 };
	static const uint8_t bad_moved[] = { 0x97, 0x01, 0x01, 0xc0, 0x01, 0xa0, 0xc0, 0x81, 0xa5,
	    'm', 'o', 'v', 'e', 'd', 0x01 };
	static const uint8_t five[] = { 0x98, 0x01, 0x01, 0xc0, 0x01, 0xa0, 0xc0, 0xc0, 0xc0 };

	proto_out_init(&o);
	for (int moved = 0; moved < 2; moved++) {
		CU_ASSERT_FATAL(proto_req_hello_caps(&o, 1, 1, "c", "tok", moved) == 0);
		CU_ASSERT_EQUAL(proto_decode_request(proto_out_data(&o) + 4, proto_out_len(&o) - 4, &lim, cases, 4, &q, &why),
		    STATUS_OK);
		CU_ASSERT_EQUAL(q.moved, moved);
		CU_ASSERT_EQUAL(q.token_len, 3);
		proto_out_reset(&o);
	}
	CU_ASSERT_FATAL(proto_req_hello(&o, 1, 1, "c", NULL) == 0);
	CU_ASSERT_EQUAL(proto_decode_request(proto_out_data(&o) + 4, proto_out_len(&o) - 4, &lim, cases, 4, &q, &why), STATUS_OK);
	CU_ASSERT_FALSE(q.moved);
	CU_ASSERT_EQUAL(proto_decode_request(bad_caps, sizeof bad_caps, &lim, cases, 4, &q, &why),
	    STATUS_BAD_REQUEST);
	CU_ASSERT_EQUAL(proto_decode_request(bad_moved, sizeof bad_moved, &lim, cases, 4, &q, &why),
	    STATUS_BAD_REQUEST);
	CU_ASSERT(strstr(why, "moved") != NULL);
	CU_ASSERT_EQUAL(proto_decode_request(five, sizeof five, &lim, cases, 4, &q, &why),
	    STATUS_BAD_REQUEST);
	CU_ASSERT_STRING_EQUAL(status_name(STATUS_MOVED), "MOVED");
	CU_ASSERT_STRING_EQUAL(status_name(STATUS_UNAVAILABLE), "UNAVAILABLE");
	proto_out_destroy(&o);
}

/* ---- an etcd that answers garbage ------------------------------------------------------------ */

static const char *const garbage[] = {
	"\x01\x02 not http at all\r\n\r\n",
	"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\nnot json!",
	"HTTP/1.1 200 OK\r\nContent-Length: 7\r\n\r\n[1,2,3]",
	"HTTP/1.1 500 Oops\r\nContent-Length: 30\r\n\r\n{\"error\":\"x\",\"message\":\"boom\"}",
	"HTTP/1.1 200 OK\r\nContent-Length: 27\r\n\r\n{\"ID\":{\"a\":1},\"TTL\":\"zz\"}xx",
	"HTTP/1.1 200 OK\r\nContent-Length: 40\r\n\r\n{\"header\":{\"revision\":\"-\"},\"kvs\":7,\"",
	"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}",
	"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\n{\"res\r\n0\r\n\r\n",
	"HTTP/1.1 200 OK\r\nContent-Length: 50\r\n\r\n{\"result\":{\"events\":[{\"kv\":{\"key\":\"!!!\"}}]}}",
};

static struct {
	int fd;
	volatile bool stop;
	unsigned served;
} fake;

/* Accept, read what comes, answer the next garbage, close; until stop. */
static void *
fake_etcd(void *arg)
{
	while (!fake.stop) {
		struct pollfd p = { .fd = fake.fd, .events = POLLIN };
		char buf[4096];
		const char *g;
		int c;

		if (poll(&p, 1, 100) <= 0 || (c = accept(fake.fd, NULL, NULL)) < 0)
			continue;
		p.fd = c;
		if (poll(&p, 1, 1000) > 0 && read(c, buf, sizeof buf) > 0) {
			g = garbage[fake.served++ % (sizeof garbage / sizeof garbage[0])];
			if (write(c, g, strlen(g)) < 0)
				fake.served += 0;
		}
		close(c);
	}
	return NULL;
}

static void
test_garbage(void)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof a;
	struct test_server s;
	struct test_conn c;
	pthread_t t;
	char conf[256], msg[256];
	int64_t end;

	fake.fd = socket(AF_INET, SOCK_STREAM, 0);
	CU_ASSERT_FATAL(bind(fake.fd, (struct sockaddr *)&a, sizeof a) == 0);
	CU_ASSERT_FATAL(listen(fake.fd, 16) == 0 && getsockname(fake.fd, (struct sockaddr *)&a, &len) == 0);
	CU_ASSERT_FATAL(pthread_create(&t, NULL, fake_etcd, NULL) == 0);
	/* a dead endpoint first: failover goes to the liar */
	snprintf(conf, sizeof conf, "cluster_etcd = http://127.0.0.1:%d,http://127.0.0.1:%d\n"
	    "node_name = liar\nadvertise = 127.0.0.1:1\nnode_ttl = 1s\n", free_port(), ntohs(a.sin_port));
	CU_ASSERT_FATAL(test_server_start(&s, conf) == 0);
	end = clock_now_ns() + 10 * NSEC_PER_SEC;
	while (fake.served < 4 * sizeof garbage / sizeof garbage[0] && clock_now_ns() < end)
		poll(NULL, 0, 50);
	CU_ASSERT(fake.served >= 4 * sizeof garbage / sizeof garbage[0]);
	CU_ASSERT_FATAL(open_client(&c, s.port, true) == 0);
	CU_ASSERT_EQUAL(st_stat(&c, "cluster_serving"), 0);
	CU_ASSERT(st_stat(&c, "cluster_etcd_errors") > 0);
	CU_ASSERT_EQUAL(make(&c, "g", msg, sizeof msg), STATUS_UNAVAILABLE);
	CU_ASSERT(msg[0] != '\0');
	CU_ASSERT_EQUAL(st_make(&c, NULL, 0), STATUS_OK);
	test_conn_close(&c);
	CU_ASSERT(test_server_log_has(&s, "cluster-etcd-error"));
	CU_ASSERT_EQUAL(test_server_stop(&s), 0);
	fake.stop = true;
	pthread_join(t, NULL);
	close(fake.fd);
}

/* The cluster keys are checked at start: advertise is required, names are path segments. */
static void
test_config(void)
{
	static const char *const bad[][2] = {
		{ "cluster_etcd = http://127.0.0.1:1\n", "advertise" },
		{ "cluster_etcd = http://127.0.0.1:1\nadvertise = nocolon\n", "HOST:PORT" },
		{ "node_name = a/b\n", "node_name" },
		{ "node_ttl = 500ms\n", "node_ttl" },
		{ "cluster_etcd = ftp://x\nadvertise = 127.0.0.1:1\n", "http://" },
		{ "cluster_etcd = http://127.0.0.1:1,https://h:2\nadvertise = 127.0.0.1:1\n", "https://" },
		{ "cluster_etcd = http://127.0.0.1\nadvertise = 127.0.0.1:1\n", "HOST:PORT" },
	};

	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		struct test_server s;
		char cmd[512], out[1024] = "";
		FILE *f;
		size_t n;

		snprintf(s.dir, sizeof s.dir, "/tmp/chand-cfg.XXXXXX");
		CU_ASSERT_FATAL(mkdtemp(s.dir) != NULL);
		snprintf(s.conf, sizeof s.conf, "%s/c.conf", s.dir);
		CU_ASSERT_FATAL((f = fopen(s.conf, "w")) != NULL);
		fputs(bad[i][0], f);
		fclose(f);
		snprintf(cmd, sizeof cmd, "timeout 10 '%s' -f -c '%s' -l 127.0.0.1 -p 0 2>&1 </dev/null; "
		    "echo exit=$?; rm -rf '%s'",
		    getenv("CHAND") ? getenv("CHAND") : "server/chand", s.conf, s.dir);
		CU_ASSERT_FATAL((f = popen(cmd, "r")) != NULL);
		n = fread(out, 1, sizeof out - 1, f);
		out[n] = '\0';
		pclose(f);
		CU_ASSERT(strstr(out, "exit=1\n") != NULL);
		CU_ASSERT(strstr(out, bad[i][1]) != NULL);
	}
}

static void
register_suites(void)
{
	CU_pSuite s;

	s = test_suite("codec", NULL, NULL);
	test_add(s, "HELLO caps", test_hello_caps);
	s = test_suite("etcd", NULL, NULL);
	test_add(s, "endpoints and unreachable etcd", test_etcd_endpoints);
	if (access(ETCD, X_OK) != 0) {
		printf("test_cluster: %s is missing (apt-get install etcd-server): skipped\n", ETCD);
		return;
	}
	s = test_suite("config", NULL, NULL);
	test_add(s, "cluster keys checked at start", test_config);
	test_add(s, "an etcd that answers garbage", test_garbage);
	s = test_suite("cluster", suite_init, suite_clean);
	test_add(s, "three nodes join", test_join);
	test_add(s, "the claim txn raced by two clients", test_txn_race);
	test_add(s, "MOVED, UNAVAILABLE and the owner in etcd", test_moved_and_owner);
	test_add(s, "anonymous and unknown channels", test_anonymous_and_unknown);
	test_add(s, "placement is PROTOCOL.md's rendezvous hash", test_placement);
	test_add(s, "held requests keep their order; a held id reused", test_held_order);
	test_add(s, "one owner under racing MAKEs", test_claim_race);
	test_add(s, "SIGKILL: the node's keys go after node_ttl", test_kill);
	test_add(s, "SIGSTOP: fenced before its lease can expire", test_fencing);
	test_add(s, "etcd stopped and restarted", test_etcd_restart);
	test_add(s, "every node stops cleanly", test_stop_all);
}

int
main(int argc, char **argv)
{
	int rc;

	signal(SIGPIPE, SIG_IGN);
	proto_out_init(&req_out);
	rc = test_main(argc, argv, register_suites);
	proto_out_destroy(&req_out);
	return rc;
}
