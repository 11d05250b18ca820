/*
 * test_cluster_etcdtls.c: cluster nodes that reach etcd over TLS
 * (cluster_etcd = https://..., cluster_etcd_ca, cluster_etcd_cert/key),
 * against a real etcd started here with --cert-file/--key-file, and with
 * --client-cert-auth for the mutual case; a node with the wrong CA (or no
 * client certificate) says why and never serves. And a cluster node's
 * /metrics (chand_cluster_*), checked by promtool. test_cluster.c runs them.
 *
 * SPDX-License-Identifier: BSD-2-Clause
 */
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "clock.h"
#include "clustertest.h"
#include "scrapetest.h"

#define ETCD "/usr/bin/etcd"
#define ETCDCTL "/usr/bin/etcdctl"
#define TNODES 2

static struct {
	pid_t pid;
	int port, peer_port;
	char dir[64];
} tetcd;

static char certs[64];			/* gencerts.sh's output */
static bool mtls;			/* etcd asks for a client certificate */
static struct test_server tnodes[TNODES];
static int tnode_ports[TNODES + 1];	/* and the refused node's */

/* The etcdctl options that reach the test's etcd (a client certificate in any case). */
static void
etcdctl_opts(char *buf, size_t cap)
{
	snprintf(buf, cap, "--endpoints=https://127.0.0.1:%d --cacert=%s/ca.pem --cert=%s/client.pem "
	    "--key=%s/client.key", tetcd.port, certs, certs, certs);
}

static bool
tetcd_healthy(void)
{
	char cmd[512], opts[400];

	etcdctl_opts(opts, sizeof opts);
	snprintf(cmd, sizeof cmd, "ETCDCTL_API=3 " ETCDCTL " %s endpoint health >/dev/null 2>&1", opts);
	return system(cmd) == 0;
}

static int
tetcd_run(void)
{
	char client[64], peer[64], cluster[96], log[96], cert[96], key[96], ca[96];
	int64_t end = clock_now_ns() + 20 * NSEC_PER_SEC;

	snprintf(client, sizeof client, "https://127.0.0.1:%d", tetcd.port);
	snprintf(peer, sizeof peer, "http://127.0.0.1:%d", tetcd.peer_port);
	snprintf(cluster, sizeof cluster, "default=%s", peer);
	snprintf(log, sizeof log, "%s/etcd.log", tetcd.dir);
	snprintf(cert, sizeof cert, "%s/server.pem", certs);
	snprintf(key, sizeof key, "%s/server.key", certs);
	snprintf(ca, sizeof ca, "%s/ca.pem", certs);
	if ((tetcd.pid = fork()) == 0) {
		char data[96];
		int fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0644);

		snprintf(data, sizeof data, "%s/data", tetcd.dir);
		dup2(fd, STDOUT_FILENO);
		dup2(fd, STDERR_FILENO);
		if (mtls)
			execl(ETCD, ETCD, "--data-dir", data, "--listen-client-urls", client,
			    "--advertise-client-urls", client, "--listen-peer-urls", peer,
			    "--initial-advertise-peer-urls", peer, "--initial-cluster", cluster,
			    "--cert-file", cert, "--key-file", key, "--client-cert-auth",
			    "--trusted-ca-file", ca, (char *)NULL);
		else
			execl(ETCD, ETCD, "--data-dir", data, "--listen-client-urls", client,
			    "--advertise-client-urls", client, "--listen-peer-urls", peer,
			    "--initial-advertise-peer-urls", peer, "--initial-cluster", cluster,
			    "--cert-file", cert, "--key-file", key, (char *)NULL);
		_exit(127);
	}
	while (clock_now_ns() < end) {
		if (tetcd_healthy())
			return 0;
		if (waitpid(tetcd.pid, NULL, WNOHANG) == tetcd.pid)
			break;
		poll(NULL, 0, 100);
	}
	fprintf(stderr, "etcd (TLS) did not become healthy (see %s)\n", log);
	return -1;
}

/*
 * Node i on the TLS etcd: ca is the file it verifies etcd with (a name in
 * certs), client: it presents client.pem; metrics on an ephemeral port.
 */
static int
tnode_start(struct test_server *s, int i, const char *ca, bool client)
{
	char conf[2048], port[16], cert[256] = "";
	const char *args[] = { "-p", port, NULL };

	tnode_ports[i] = ct_free_port();
	snprintf(port, sizeof port, "%d", tnode_ports[i]);
	if (client)
		snprintf(cert, sizeof cert, "cluster_etcd_cert = %s/client.pem\n"
		    "cluster_etcd_key = %s/client.key\n", certs, certs);
	snprintf(conf, sizeof conf, "cluster_etcd = https://127.0.0.1:%d\ncluster_etcd_ca = %s/%s\n%s"
	    "cluster_name = tls\nnode_name = e%d\nadvertise = 127.0.0.1:%d\nnode_ttl = %ds\n"
	    "metrics_listen = 127.0.0.1:0\n", tetcd.port, certs, ca, cert, i, tnode_ports[i],
	    ct_node_ttl_s());
	return test_server_start_args(s, conf, args);
}

static uint64_t
tstat(struct test_server *s, const char *key)
{
	struct test_conn c;
	uint64_t v;

	if (test_conn_open(&c, s->port, true) < 0)
		return UINT64_MAX;
	v = st_stat(&c, key);
	test_conn_close(&c);
	return v;
}

static bool
tawait_stat(struct test_server *s, const char *key, uint64_t want, int ms)
{
	int64_t end = clock_now_ns() + (int64_t)ms * NSEC_PER_MSEC;

	while (clock_now_ns() < end) {
		if (tstat(s, key) == want)
			return true;
		poll(NULL, 0, 50);
	}
	return false;
}

static bool
tawait_log(struct test_server *s, const char *needle, int ms)
{
	int64_t end = clock_now_ns() + (int64_t)ms * NSEC_PER_MSEC;

	while (clock_now_ns() < end) {
		if (test_server_log_has(s, needle))
			return true;
		poll(NULL, 0, 50);
	}
	return false;
}

static int
tls_init(void)
{
	char cmd[256];
	const char *src = getenv("CHAND_SRCDIR") ? getenv("CHAND_SRCDIR") : ".";

	snprintf(certs, sizeof certs, "/tmp/chand-ecerts.XXXXXX");
	snprintf(tetcd.dir, sizeof tetcd.dir, "/tmp/chand-etcdtls.XXXXXX");
	if (mkdtemp(certs) == NULL || mkdtemp(tetcd.dir) == NULL)
		return -1;
	snprintf(cmd, sizeof cmd, "sh %s/tests/gencerts.sh %s", src, certs);
	if (system(cmd) != 0) {
		fprintf(stderr, "gencerts.sh failed (is the openssl CLI installed?)\n");
		return -1;
	}
	tetcd.port = ct_free_port();
	tetcd.peer_port = ct_free_port();
	if (tetcd_run() < 0)
		return -1;
	for (int i = 0; i < TNODES; i++)
		if (tnode_start(&tnodes[i], i, "ca.pem", mtls) < 0)
			return -1;
	return 0;
}

static int
tls_clean(void)
{
	char cmd[256];
	int rc = 0;

	for (int i = 0; i < TNODES; i++)
		if (tnodes[i].pid > 0 && test_server_stop(&tnodes[i]) != 0)
			rc = -1;
	if (tetcd.pid > 0) {
		kill(tetcd.pid, SIGTERM);
		if (test_wait_exit(tetcd.pid, 10000) < 0)
			rc = -1;
		tetcd.pid = 0;
	}
	snprintf(cmd, sizeof cmd, "rm -rf '%s' '%s'", certs, tetcd.dir);
	return system(cmd) == 0 ? rc : -1;
}

static int
mtls_init(void)
{
	mtls = true;
	return tls_init();
}

static int
mtls_clean(void)
{
	int rc = tls_clean();

	mtls = false;
	return rc;
}

/* MAKE name on node i following one MOVED: the node that made it, or -1. */
static int
tmake(int i, const char *name)
{
	struct test_conn c;
	char msg[256];
	int st, port;

	if (ct_open_client(&c, tnodes[i].port, true) != 0)
		return -1;
	st = ct_make(&c, name, msg, sizeof msg);
	test_conn_close(&c);
	if (st == STATUS_OK)
		return i;
	if (st != STATUS_MOVED || sscanf(msg, "127.0.0.1:%d", &port) != 1)
		return -1;
	for (int j = 0; j < TNODES; j++)
		if (tnode_ports[j] == port && ct_open_client(&c, tnodes[j].port, true) == 0) {
			st = ct_make(&c, name, NULL, 0);
			test_conn_close(&c);
			return st == STATUS_OK ? j : -1;
		}
	return -1;
}

/* Both nodes join over TLS (with a client certificate under --client-cert-auth); channels work. */
static void
test_tls_join(void)
{
	struct test_conn a, b;
	char buf[16];
	bool ok;
	const char *name = st_name("etls");
	int owner;

	for (int i = 0; i < TNODES; i++) {
		CU_ASSERT(tawait_stat(&tnodes[i], "cluster_serving", 1, 15000));
		CU_ASSERT(tawait_stat(&tnodes[i], "cluster_nodes", TNODES, 15000));
		CU_ASSERT_EQUAL(tstat(&tnodes[i], "cluster_etcd_errors"), 0);
	}
	CU_ASSERT_FATAL((owner = tmake(0, name)) >= 0);
	/* a send through one node, the receive through the other (one is forwarded) */
	CU_ASSERT_FATAL(ct_open_client(&a, tnodes[0].port, false) == 0);
	CU_ASSERT_FATAL(ct_open_client(&b, tnodes[1].port, false) == 0);
	st_send(&a, name, "v", 1, PROTO_WAIT_FOREVER);
	CU_ASSERT_EQUAL(st_recv_wait(&b, name, 5 * 1000000, buf, sizeof buf, &ok), STATUS_OK);
	CU_ASSERT(ok && strcmp(buf, "v") == 0);
	test_conn_close(&a);
	test_conn_close(&b);
}

/*
 * A node that verifies etcd with the wrong CA (or, under mutual TLS, has no
 * client certificate) logs why, stays fenced, and answers UNAVAILABLE; the
 * others never see it.
 */
static void
refused(const char *ca, bool client, const char *why, const char *why2)
{
	struct test_server s;
	struct test_conn c;
	char msg[256];

	CU_ASSERT_FATAL(tnode_start(&s, TNODES, ca, client) == 0);
	CU_ASSERT(tawait_log(&s, "cluster-etcd-error", 15000));
	CU_ASSERT(test_server_log_has(&s, why) || (why2 != NULL && test_server_log_has(&s, why2)));
	CU_ASSERT_EQUAL(tstat(&s, "cluster_serving"), 0);
	CU_ASSERT(tstat(&s, "cluster_etcd_errors") > 0);
	CU_ASSERT_FATAL(ct_open_client(&c, s.port, true) == 0);
	CU_ASSERT_EQUAL(ct_make(&c, st_name("never"), msg, sizeof msg), STATUS_UNAVAILABLE);
	CU_ASSERT(msg[0] != '\0');
	test_conn_close(&c);
	CU_ASSERT_EQUAL(tstat(&tnodes[0], "cluster_nodes"), TNODES);
	/* still never serving after a few keepalive periods */
	poll(NULL, 0, ct_node_ttl_s() * 1000);
	CU_ASSERT_EQUAL(tstat(&s, "cluster_serving"), 0);
	CU_ASSERT_EQUAL(tstat(&s, "cluster_sessions"), 0);
	CU_ASSERT_EQUAL(test_server_stop(&s), 0);
}

static void
test_tls_wrong_ca(void)
{
	refused("otherca.pem", mtls, "etcd's certificate: unable to get local issuer certificate", NULL);
}

static void
test_mtls_no_client_cert(void)
{
	/* OpenSSL's words for etcd's alert (bad certificate), or the EOF when it is not read first */
	refused("ca.pem", false, "etcd closed the connection during the handshake",
	    "TLS: error:");
}
/* ---- a cluster node's metrics -------------------------------------------------------- */

/* GET /metrics of s (its port logged); the body, malloc'd, or NULL. */
static char *
tscrape(struct test_server *s)
{
	char path[128];

	snprintf(path, sizeof path, "%s/chand.log", s->dir);
	return scrape_metrics(scrape_logged_port(path));
}

/*
 * The chand_cluster_* series: what STATS says under the same names, each
 * moved by what it counts: a channel owned, a request forwarded, a MOVED,
 * a peer connection, and the etcd calls' times.
 */
static void
test_cluster_metrics(void)
{
	const char *name = NULL;
	struct test_conn c;
	char *m0, *m1;
	double fwd0;

	/* a name node 0 owns, then a plain client of node 1 uses it: forwarded */
	for (int k = 0; k < 40 && name == NULL; k++) {
		const char *n = st_name("metr");

		if (tmake(1, n) == 0)
			name = n;
	}
	CU_ASSERT_FATAL(name != NULL);
	m1 = tscrape(&tnodes[1]);
	CU_ASSERT_PTR_NOT_NULL_FATAL(m1);
	fwd0 = scrape_sample(m1, "chand_cluster_forwarded_total");
	free(m1);
	CU_ASSERT_FATAL(ct_open_client(&c, tnodes[1].port, false) == 0);
	CU_ASSERT_EQUAL(st_send_wait(&c, name, "x", 0), STATUS_DEADLINE_EXCEEDED);
	test_conn_close(&c);
	m0 = tscrape(&tnodes[0]);
	m1 = tscrape(&tnodes[1]);
	CU_ASSERT_PTR_NOT_NULL_FATAL(m0);
	CU_ASSERT_PTR_NOT_NULL_FATAL(m1);
	scrape_promtool_clean(m0);
	CU_ASSERT_EQUAL(scrape_sample(m0, "chand_cluster_serving"), 1);
	CU_ASSERT_EQUAL(scrape_sample(m0, "chand_cluster_nodes"), TNODES);
	CU_ASSERT_EQUAL(scrape_sample(m0, "chand_cluster_owned"), (double)tstat(&tnodes[0], "cluster_owned"));
	CU_ASSERT(scrape_sample(m0, "chand_cluster_owned") >= 1);
	CU_ASSERT(scrape_sample(m1, "chand_cluster_forwarded_total") >= fwd0 + 1);
	CU_ASSERT_EQUAL(scrape_sample(m1, "chand_cluster_forwarded_total"),
	    (double)tstat(&tnodes[1], "cluster_forwarded"));
	CU_ASSERT(scrape_sample(m1, "chand_cluster_moved_total") >= 1);
	CU_ASSERT(scrape_sample(m1, "chand_cluster_peers") >= 1);
	CU_ASSERT_EQUAL(scrape_sample(m1, "chand_cluster_peer_errors_total"), 0);
	CU_ASSERT_EQUAL(scrape_sample(m0, "chand_cluster_unavailable_total"), 0);
	CU_ASSERT_EQUAL(scrape_sample(m0, "chand_cluster_etcd_errors_total"), 0);
	CU_ASSERT(scrape_sample(m0, "chand_cluster_sessions_total") >= 1);
	/* grant, put, watches' ranges, keepalives, claims: each call timed */
	CU_ASSERT(scrape_sample(m0, "chand_cluster_etcd_call_duration_seconds_count") >= 3);
	CU_ASSERT(scrape_sample(m0, "chand_cluster_etcd_call_duration_seconds_bucket{le=\"+Inf\"}") ==
	    scrape_sample(m0, "chand_cluster_etcd_call_duration_seconds_count"));
	CU_ASSERT(scrape_sample(m0, "chand_cluster_etcd_call_max_seconds") > 0);
	CU_ASSERT(scrape_sample(m0, "chand_cluster_etcd_call_max_seconds") >=
	    scrape_sample(m0, "chand_cluster_etcd_call_last_seconds"));
	CU_ASSERT(scrape_sample(m0, "chand_cluster_etcd_call_duration_seconds_sum") > 0);
	free(m0);
	free(m1);
}

/* A single node has none of them. */
static void
test_single_metrics(void)
{
	struct test_server s;
	char *m;

	CU_ASSERT_FATAL(test_server_start(&s, "metrics_listen = 127.0.0.1:0\n") == 0);
	m = tscrape(&s);
	CU_ASSERT_PTR_NOT_NULL_FATAL(m);
	CU_ASSERT(strstr(m, "chand_cluster_") == NULL);
	free(m);
	CU_ASSERT_EQUAL(test_server_stop(&s), 0);
}

void
ct_add_etcd_tls_suites(void)
{
	CU_pSuite s;

	s = test_suite("cluster_etcd_tls", tls_init, tls_clean);
	test_add(s, "nodes join over TLS to etcd", test_tls_join);
	test_add(s, "a cluster node's metrics (promtool)", test_cluster_metrics);
	test_add(s, "a single node has no cluster metrics", test_single_metrics);
	test_add(s, "etcd's certificate from another CA: refused, never serving", test_tls_wrong_ca);
	s = test_suite("cluster_etcd_mtls", mtls_init, mtls_clean);
	test_add(s, "nodes join with a client certificate", test_tls_join);
	test_add(s, "no client certificate: refused, never serving", test_mtls_no_client_cert);
	test_add(s, "etcd's certificate from another CA: refused, never serving", test_tls_wrong_ca);
}
