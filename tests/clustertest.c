/*
 * clustertest.c: the cluster fixture the etcd suites share (test_cluster.c,
 * test_client_cluster.c): a real etcd on ephemeral loopback ports with a
 * temporary data dir, a small HTTP client for it, three chand nodes on it
 * (plain, with authentication or with TLS between them), and the ct_*
 * helpers of clustertest.h that start, stop, kill and restart them or
 * read and write etcd (those that speak to the nodes as a client are in
 * clustertest_client.c). Every suite that uses it starts its own etcd
 * and nodes (ct_suite_init) and stops them (ct_suite_clean).
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


#define ETCD CT_ETCD
#define NODES CT_NODES
#define CLUSTER CT_CLUSTER

static struct {
	pid_t pid;
	int port, peer_port;
	char dir[64];
} etcd;

static struct test_server nodes[NODES];
static int node_ports[NODES];
static int node_tls_ports[NODES];	/* with TLS (ct_tls_suite_init): the advertised listeners */
static int node_ttl_s = CT_TTL_S;	/* the nodes' node_ttl (ct_set_node_ttl) */
static char node_extra[2048];		/* more config lines for every node (ct_set_node_extra) */
static char node_certs[64];		/* TLS between the nodes with these certificates (ct_tls_suite_init) */
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

struct test_server *
ct_node(int i)
{
	return &nodes[i];
}

int
ct_node_port(int i)
{
	return nodes[i].port;
}

int
ct_node_tls_port(int i)
{
	return node_tls_ports[i];
}

const char *
ct_certs(void)
{
	return node_certs;
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

int
ct_etcd_start(void)
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

void
ct_etcd_stop(void)
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

/* POST body to etcd's path: true when etcd answered it (its reply has a header). */
static bool
etcd_post_ok(const char *path, const char *body)
{
	char *reply = http_post(etcd.port, path, body);
	bool ok = reply != NULL && strstr(reply, "\"header\"") != NULL;

	free(reply);
	return ok;
}

/*
 * etcd's range reply for key, parsed (json_decref it), *kv its key-value
 * (NULL when absent); NULL when etcd did not answer.
 */
static json_t *
etcd_range(const char *key, json_t **kv)
{
	char body[1024], *k = b64(key), *reply;
	json_t *o;

	snprintf(body, sizeof body, "{\"key\":\"%s\"}", k);
	free(k);
	reply = http_post(etcd.port, "/v3/kv/range", body);
	o = reply ? json_loads(reply, 0, NULL) : NULL;
	free(reply);
	*kv = json_array_get(json_object_get(o, "kvs"), 0);
	return o;
}

/* Node i's key in etcd, in buf. */
static const char *
node_key(int i, char *buf, size_t cap)
{
	snprintf(buf, cap, "/chand/" CLUSTER "/nodes/n%d", i);
	return buf;
}

/* The value of key in etcd, malloc'd; NULL when absent (or etcd did not answer). */
char *
ct_etcd_get(const char *key)
{
	json_t *kv, *o = etcd_range(key, &kv);
	const char *enc;
	char *v = NULL;

	if ((enc = json_string_value(json_object_get(kv, "value"))) != NULL) {
		v = calloc(1, strlen(enc) + 1);
		EVP_DecodeBlock((unsigned char *)v, (const unsigned char *)enc, (int)strlen(enc));
	}
	json_decref(o);
	return v;
}

static char *
chan_owner(const char *name)
{
	char key[256];

	snprintf(key, sizeof key, "/chand/" CLUSTER "/chans/%s", name);
	return ct_etcd_get(key);
}

bool
ct_node_key_present(int i)
{
	char key[128], *v;

	v = ct_etcd_get(node_key(i, key, sizeof key));
	free(v);
	return v != NULL;
}

/* ---- nodes ----------------------------------------------------------------------------- */

static int
node_start_once(int i, const char *etcd_url)
{
	char conf[3072], port[16], tls[512] = "";
	const char *args[] = { "-p", port, NULL };
	int tls_port = 0;

	node_ports[i] = ct_free_port();
	node_tls_ports[i] = 0;
	snprintf(port, sizeof port, "%d", node_ports[i]);
	/* with TLS, the advertised address (what the nodes dial) is the TLS listener */
	if (node_certs[0] != '\0') {
		node_tls_ports[i] = tls_port = ct_free_port();
		snprintf(tls, sizeof tls, "tls_listen = 127.0.0.1:%d\ntls_cert = %s/server.pem\n"
		    "tls_key = %s/server.key\ntls_ca = %s/ca.pem\ntls_verify_client = optional\n"
		    "protected_mode = no\n", tls_port, node_certs, node_certs, node_certs);
	}
	snprintf(conf, sizeof conf, "cluster_etcd = %s\ncluster_name = " CLUSTER "\nnode_name = n%d\n"
	    "advertise = 127.0.0.1:%d\nnode_ttl = %ds\n%s%s", etcd_url, i,
	    tls_port ? tls_port : node_ports[i], node_ttl_s, tls, node_extra);
	return test_server_start_args(&nodes[i], conf, args);
}

/*
 * Node i on ports picked first (its advertise address is in its config):
 * another socket may take one before the node binds it, so a start that
 * fails is tried again on new ports, three times at most.
 */
static int
node_start(int i, const char *etcd_url)
{
	for (int try = 0; try < 3; try++)
		if (node_start_once(i, etcd_url) == 0)
			return 0;
	return -1;
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

int
ct_suite_init(void)
{
	char url[64];

	snprintf(etcd.dir, sizeof etcd.dir, "/tmp/chand-etcd.XXXXXX");
	if (mkdtemp(etcd.dir) == NULL)
		return -1;
	etcd.port = ct_free_port();
	etcd.peer_port = ct_free_port();
	if (ct_etcd_start() < 0)
		return -1;
	snprintf(url, sizeof url, "http://127.0.0.1:%d", etcd.port);
	for (int i = 0; i < NODES; i++)
		if (node_start(i, url) < 0)
			return -1;
	return 0;
}

int
ct_suite_clean(void)
{
	char cmd[128];
	int rc = 0;

	/* a node that does not stop cleanly fails the suite (no test is current here) */
	for (int i = 0; i < NODES; i++)
		if (nodes[i].pid > 0 && test_server_stop(&nodes[i]) != 0)
			rc = -1;
	ct_etcd_stop();
	/* a suite's settings end with it */
	node_ttl_s = CT_TTL_S;
	node_extra[0] = '\0';
	ct_set_token(NULL);
	/* CHAND_TEST_KEEP_LOG keeps etcd's log too (testutil.c keeps the nodes') */
	if (getenv("CHAND_TEST_KEEP_LOG") != NULL)
		snprintf(cmd, sizeof cmd, "rm -rf '%s/data'", etcd.dir);
	else
		snprintf(cmd, sizeof cmd, "rm -rf '%s'", etcd.dir);
	return system(cmd) == 0 ? rc : -1;
}

/* ---- what the suites of test_cluster and test_cluster_across share ------------------------ */

/* Each node sees all three, serves, and has its node key in etcd with its advertise address. */
void
ct_test_join(void)
{
	char key[128], want[64], *v;

	for (int i = 0; i < CT_NODES; i++) {
		CU_ASSERT(ct_await_stat(i, "cluster_nodes", CT_NODES, 10000));
		CU_ASSERT(ct_await_stat(i, "cluster_serving", 1, 10000));
		CU_ASSERT_EQUAL(ct_node_stat(i, "cluster_sessions"), 1);
		snprintf(key, sizeof key, "/chand/" CT_CLUSTER "/nodes/n%d", i);
		snprintf(want, sizeof want, "\"advertise\":\"127.0.0.1:%d\"", ct_node_port(i));
		v = ct_etcd_get(key);
		CU_ASSERT(v != NULL && strstr(v, want) != NULL);
		free(v);
	}
}

/* SIGTERM: each node revokes its lease (its key goes now) and exits 0 (a sanitizer's report would fail it). */
void
ct_test_stop_all(void)
{
	for (int i = 0; i < CT_NODES; i++) {
		CU_ASSERT(ct_node_key_present(i));
		CU_ASSERT_EQUAL(test_server_stop(ct_node(i)), 0);
		ct_node(i)->pid = 0;
		CU_ASSERT_FALSE(ct_node_key_present(i));
	}
}

/*
 * The suites that time no failover run their nodes on CT_STEADY_TTL_S
 * leases (clustertest.h says why); "cluster" and "cluster_failover" keep
 * CT_TTL_S, the node_ttl their time bounds are about.
 */
int
ct_steady_suite_init(void)
{
	ct_set_node_ttl(CT_STEADY_TTL_S);
	return ct_suite_init();
}

int
ct_main(int argc, char **argv, void (*register_suites)(void))
{
	int rc;

	signal(SIGPIPE, SIG_IGN);
	proto_out_init(&ct_out);
	rc = test_main(argc, argv, register_suites);
	proto_out_destroy(&ct_out);
	return rc;
}

void
ct_nodes_suite(const char *name, CU_InitializeFunc init, void (*add)(CU_pSuite))
{
	CU_pSuite s = test_suite(name, init, ct_suite_clean);

	test_add(s, "three nodes join", ct_test_join);
	add(s);
	test_add(s, "every node stops cleanly", ct_test_stop_all);
}

/* ---- what the tests use of the nodes ------------------------------------------------------ */

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

/* More config lines for the nodes the next ct_suite_init starts (NULL: none). */
void
ct_set_node_extra(const char *lines)
{
	snprintf(node_extra, sizeof node_extra, "%s", lines ? lines : "");
}

/* The TLS cluster's suite: certificates by gencerts.sh, TLS listeners advertised. */
int
ct_tls_suite_init(void)
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
	return ct_suite_init();
}

/*
 * TLS between the nodes and authentication on, with no cluster_token: a
 * node's HELLO to another is the identity of its certificate (CN localhost,
 * gencerts.sh), and so must be its in-process connection to itself
 * (tls_self_name). The ct_* clients say HELLO with a token of their own.
 */
int
ct_tls_auth_suite_init(const char *more)
{
	static char conf[1024];
	char node[80];

	test_token_digest("node-secret", node);
	snprintf(conf, sizeof conf, "token = tester:%s\nallow = tester * all,admin\n"
	    "allow = localhost * all,admin\n%s", node, more ? more : "");
	ct_set_node_extra(conf);
	ct_set_token("node-secret");
	ct_set_node_ttl(CT_STEADY_TTL_S);
	return ct_tls_suite_init();
}

int
ct_tls_suite_clean(void)
{
	char cmd[128];
	int rc = ct_suite_clean();

	snprintf(cmd, sizeof cmd, "rm -rf '%s'", node_certs);
	node_certs[0] = '\0';
	return system(cmd) == 0 ? rc : -1;
}

int
ct_node_ttl_s(void)
{
	return node_ttl_s;
}

void
ct_set_node_ttl(int seconds)
{
	node_ttl_s = seconds;
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
	char *k = b64(key), *v = b64(value), *body;
	bool ok;

	if (asprintf(&body, "{\"key\":\"%s\",\"value\":\"%s\"}", k, v) < 0)
		body = NULL;
	ok = body != NULL && etcd_post_ok("/v3/kv/put", body);
	free(body);
	free(k);
	free(v);
	return ok;
}

bool
ct_etcd_delete(const char *key)
{
	char *k = b64(key), body[512];
	bool ok;

	snprintf(body, sizeof body, "{\"key\":\"%s\"}", k);
	ok = etcd_post_ok("/v3/kv/deleterange", body);
	free(k);
	return ok;
}

bool
ct_node_expire(int i)
{
	char key[128], body[512];
	json_t *kv, *o = etcd_range(node_key(i, key, sizeof key), &kv);
	const char *lease;
	bool ok = false;

	/* the JSON gateway gives int64s as strings */
	if ((lease = json_string_value(json_object_get(kv, "lease"))) != NULL) {
		snprintf(body, sizeof body, "{\"ID\":\"%s\"}", lease);
		ok = etcd_post_ok("/v3/lease/revoke", body);
	}
	json_decref(o);
	return ok;
}

/*
 * The ttl etcd granted node i's lease, in seconds, read from etcd: 0 when
 * node i's key is gone, -1 when etcd did not answer.
 */
int64_t
ct_node_lease_ttl(int i)
{
	char key[128], body[512], *reply;
	json_t *kv, *o = etcd_range(node_key(i, key, sizeof key), &kv), *t;
	const char *lease, *granted;
	int64_t ttl = -1;

	if (o == NULL || json_object_get(o, "header") == NULL)
		goto done;
	if ((lease = json_string_value(json_object_get(kv, "lease"))) == NULL) {
		ttl = 0;
		goto done;
	}
	snprintf(body, sizeof body, "{\"ID\":\"%s\"}", lease);
	reply = http_post(etcd.port, "/v3/lease/timetolive", body);
	t = reply ? json_loads(reply, 0, NULL) : NULL;
	free(reply);
	/* the JSON gateway gives int64s as strings */
	if ((granted = json_string_value(json_object_get(t, "grantedTTL"))) != NULL)
		ttl = strtoll(granted, NULL, 10);
	json_decref(t);
done:
	json_decref(o);
	return ttl;
}

int
ct_node_restart(int i)
{
	char url[64];

	snprintf(url, sizeof url, "http://127.0.0.1:%d", etcd.port);
	return node_start(i, url);
}
