/*
 * test_cluster_etcd.c: server/etcd.c alone, on a loop of the test's own
 * (the claim txn raced by two clients, endpoints, unreachable etcd), a
 * fake etcd that answers garbage to a real chand, the cluster config keys,
 * and HELLO's caps (issue 19). test_cluster.c runs them.
 *
 * SPDX-License-Identifier: BSD-2-Clause
 */
#include <arpa/inet.h>
#include <dirent.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/event.h>
#include <jansson.h>
#include <openssl/evp.h>

#include "clock.h"
#include "clustertest.h"
#include "etcd.h"

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
void
ct_test_txn_race(void)
{
	struct event_base *base = event_base_new();
	struct etcd *e[2] = { NULL, NULL };
	struct outcome g[2] = { { 0 } };
	char url[128], *cause = NULL;

	CU_ASSERT_FATAL(base != NULL);
	snprintf(url, sizeof url, "http://127.0.0.1:%d,http://127.0.0.1:%d", ct_free_port(), ct_etcd_port());
	for (int i = 0; i < 2; i++) {
		CU_ASSERT_FATAL(etcd_new(&e[i], base, url, 2000, &cause) == 0);
		CU_ASSERT_FATAL(etcd_lease_grant(e[i], 30, outcome_cb, &g[i]) == 0);
	}
	CU_ASSERT_FATAL(run_until(base, g, 2));
	CU_ASSERT_FATAL(g[0].ok && g[1].ok && g[0].n != 0 && g[1].n != g[0].n);
	for (int k = 0; k < 20; k++) {
		struct outcome c[2] = { { 0 } };
		char key[64];

		snprintf(key, sizeof key, "/chand/t/race/%d", k);
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

/* Calls ended, and those that ended well. */
struct tally {
	size_t done, ok;
	char why[160];			/* the last error's words */
};

static void
tally_cb(void *arg, json_t *reply, const char *why)
{
	struct tally *t = arg;

	t->done++;
	t->ok += reply != NULL;
	if (reply == NULL)
		snprintf(t->why, sizeof t->why, "%s", why);
}

/* A session's call, and how many of the others had ended when it did. */
struct first {
	struct outcome o;
	const struct tally *others;
	size_t others_done;
};

static void
first_cb(void *arg, json_t *reply, const char *why)
{
	struct first *f = arg;

	f->others_done = f->others->done;
	outcome_cb(&f->o, reply, why);
}

/*
 * This process's TCP connections to 127.0.0.1:port now (its socket inodes in
 * /proc/net/tcp), each counted once: the kernel makes that file anew at each
 * read(), resuming where the last one stopped in its table of sockets; when
 * sockets come or go between two reads, a line can come twice.
 */
static size_t
own_conns_to(int port)
{
	unsigned long inodes[512], seen[512], ino;
	size_t n = 0, count = 0;
	char path[300], link[64], line[512], rem[64], st[8];
	struct dirent *d;
	DIR *dir = opendir("/proc/self/fd");
	FILE *f;

	while (dir != NULL && (d = readdir(dir)) != NULL && n < sizeof inodes / sizeof inodes[0]) {
		ssize_t len;

		snprintf(path, sizeof path, "/proc/self/fd/%s", d->d_name);
		if ((len = readlink(path, link, sizeof link - 1)) > 0) {
			link[len] = '\0';
			if (sscanf(link, "socket:[%lu]", &ino) == 1)
				inodes[n++] = ino;
		}
	}
	if (dir != NULL)
		closedir(dir);
	if ((f = fopen("/proc/net/tcp", "r")) == NULL)
		return SIZE_MAX;
	while (fgets(line, sizeof line, f) != NULL) {
		unsigned rport;

		if (sscanf(line, "%*s %*s %63s %7s %*s %*s %*s %*s %*s %lu", rem, st, &ino) != 3 ||
		    strcmp(st, "01") != 0 || sscanf(rem, "%*8s:%x", &rport) != 1 || (int)rport != port)
			continue;
		for (size_t i = 0; i < n; i++) {
			size_t j = 0;

			if (inodes[i] != ino)
				continue;
			while (j < count && seen[j] != ino)
				j++;
			if (j == count)
				seen[count++] = ino;
			break;
		}
	}
	fclose(f);
	return count;
}

/*
 * A burst of lookups goes over at most ETCD_CONNS connections, in order,
 * and a session's call made after all of them (a lease grant) is answered
 * before all but the first few: a backlog never delays a keepalive.
 */
void
ct_test_session_first(void)
{
	enum { LOOKUPS = 2000 };
	struct event_base *base = event_base_new();
	struct etcd *e = NULL;
	struct tally bulk = { 0 };
	struct first grant = { .others = &bulk };
	size_t most = 0, conns;
	char url[64], *cause = NULL;
	int64_t end = clock_now_ns() + 60 * NSEC_PER_SEC;

	CU_ASSERT_FATAL(base != NULL);
	snprintf(url, sizeof url, "http://127.0.0.1:%d", ct_etcd_port());
	CU_ASSERT_FATAL(etcd_new(&e, base, url, 2000, &cause) == 0);
	for (int i = 0; i < LOOKUPS; i++)
		CU_ASSERT_FATAL(etcd_range(e, "/chand/t/nothing", 0, tally_cb, &bulk) == 0);
	CU_ASSERT_FATAL(etcd_lease_grant(e, 30, first_cb, &grant) == 0);
	for (int k = 0; bulk.done < LOOKUPS && clock_now_ns() < end; k++) {
		event_base_loop(base, EVLOOP_ONCE);
		if (k % 64 == 0 && (conns = own_conns_to(ct_etcd_port())) > most)
			most = conns;
	}
	CU_ASSERT_EQUAL(bulk.done, LOOKUPS);
	CU_ASSERT_EQUAL(bulk.ok, LOOKUPS);
	CU_ASSERT(most >= 1 && most <= ETCD_CONNS);
	CU_ASSERT_FATAL(grant.o.done == 1 && grant.o.ok && grant.o.n != 0);
	CU_ASSERT(grant.others_done < 4 * ETCD_CONNS);
	printf("(%zu of %d lookups before the grant; %zu connections at most) ", grant.others_done,
	    LOOKUPS, most);
	etcd_free(e);
	event_base_free(base);
}

/* Past ETCD_MAX_QUEUED calls waiting, a call fails at once, said; a session's call is still taken. */
static void
test_etcd_queue_full(void)
{
	struct event_base *base = event_base_new();
	struct etcd *e = NULL;
	struct tally many = { 0 }, over = { 0 };
	struct outcome g = { 0 };
	char url[64], *cause = NULL;

	CU_ASSERT_FATAL(base != NULL);
	snprintf(url, sizeof url, "http://127.0.0.1:%d", ct_free_port());
	CU_ASSERT_FATAL(etcd_new(&e, base, url, 1000, &cause) == 0);
	/* the connections but the session's busy, and the queue full */
	for (size_t i = 0; i < ETCD_MAX_QUEUED + ETCD_CONNS - 1; i++)
		CU_ASSERT_FATAL(etcd_range(e, "/x", 0, tally_cb, &many) == 0);
	CU_ASSERT_FATAL(etcd_range(e, "/x", 0, tally_cb, &over) == 0);
	CU_ASSERT_FATAL(etcd_lease_grant(e, 30, outcome_cb, &g) == 0);
	CU_ASSERT_EQUAL(over.done, 0);		/* never inside the call */
	for (int64_t end = clock_now_ns() + 10 * NSEC_PER_SEC; over.done == 0 && clock_now_ns() < end;)
		event_base_loop(base, EVLOOP_ONCE);
	CU_ASSERT_EQUAL(over.done, 1);
	CU_ASSERT_EQUAL(over.ok, 0);
	CU_ASSERT(strstr(over.why, "too many etcd calls are waiting") != NULL);
	CU_ASSERT(run_until(base, &g, 1));	/* taken, and failed as etcd is not there */
	CU_ASSERT_FALSE(g.ok);
	etcd_free(e);
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
	snprintf(url, sizeof url, "http://127.0.0.1:%d,http://127.0.0.1:%d", ct_free_port(), ct_free_port());
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

/* stop and served are shared by the test and the fake's thread */
static struct {
	int fd;
	atomic_bool stop;
	atomic_uint served;
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
			g = garbage[atomic_fetch_add(&fake.served, 1) % (sizeof garbage / sizeof garbage[0])];
			/* a node that hung up already is one more kind of garbage */
			(void)!write(c, g, strlen(g));
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
	    "node_name = liar\nadvertise = 127.0.0.1:1\nnode_ttl = 1s\n", ct_free_port(), ntohs(a.sin_port));
	CU_ASSERT_FATAL(test_server_start(&s, conf) == 0);
	end = clock_now_ns() + 10 * NSEC_PER_SEC;
	while (fake.served < 4 * sizeof garbage / sizeof garbage[0] && clock_now_ns() < end)
		poll(NULL, 0, 50);
	CU_ASSERT(fake.served >= 4 * sizeof garbage / sizeof garbage[0]);
	CU_ASSERT_FATAL(ct_open_client(&c, s.port, true) == 0);
	CU_ASSERT_EQUAL(st_stat(&c, "cluster_serving"), 0);
	CU_ASSERT(st_stat(&c, "cluster_etcd_errors") > 0);
	CU_ASSERT_EQUAL(ct_make(&c, "g", msg, sizeof msg), STATUS_UNAVAILABLE);
	CU_ASSERT(msg[0] != '\0');
	CU_ASSERT_EQUAL(st_make(&c, NULL, 0), STATUS_OK);
	test_conn_close(&c);
	CU_ASSERT(test_server_log_has(&s, "cluster-etcd-error"));
	CU_ASSERT_EQUAL(test_server_stop(&s), 0);
	fake.stop = true;
	pthread_join(t, NULL);
	close(fake.fd);
}

/*
 * The cluster keys are checked at start: advertise is required, names are
 * path segments, the TLS files to etcd are readable and loaded, and
 * owner_close (judged by the forwarding node's identity) is refused.
 */
static void
test_config(void)
{
	static const char *const bad[][2] = {
		{ "cluster_etcd = http://127.0.0.1:1\n", "advertise" },
		{ "cluster_etcd = http://127.0.0.1:1\nadvertise = nocolon\n", "HOST:PORT" },
		{ "cluster_etcd = http://127.0.0.1:1\nadvertise = unix:/run/chand.sock:1\n", "not a unix socket" },
		{ "cluster_etcd = http://127.0.0.1:1\nadvertise = unix:7420\n", "not a unix socket" },
		{ "cluster_etcd = http://127.0.0.1:1\nadvertise = tcp://127.0.0.1:1\n", "TCP HOST:PORT" },
		{ "node_name = a/b\n", "node_name" },
		{ "node_ttl = 500ms\n", "node_ttl" },
		{ "cluster_etcd = ftp://x\nadvertise = 127.0.0.1:1\n", "http://" },
		{ "cluster_etcd = http://127.0.0.1:1,https://h\nadvertise = 127.0.0.1:1\n", "https://HOST:PORT" },
		{ "cluster_etcd = https://h:2\nadvertise = 127.0.0.1:1\ncluster_etcd_cert = /etc/passwd\n",
		  "cluster_etcd_cert and cluster_etcd_key go together" },
		{ "cluster_etcd = https://h:2\nadvertise = 127.0.0.1:1\ncluster_etcd_ca = /nonexistent/ca.pem\n",
		  "cluster_etcd_ca" },
		{ "cluster_etcd = https://h:2\nadvertise = 127.0.0.1:1\ncluster_etcd_ca = /etc/passwd\n",
		  "cluster_etcd_ca: cannot load" },
		{ "cluster_etcd = http://127.0.0.1\nadvertise = 127.0.0.1:1\n", "HOST:PORT" },
		{ "cluster_etcd = http://127.0.0.1:1\nadvertise = 127.0.0.1:1\nowner_close = yes\n",
		  "'owner_close': is not enforced across the nodes" },
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

void
ct_register_alone(void)
{
	CU_pSuite s = test_suite("codec", NULL, NULL);

	test_add(s, "HELLO caps", test_hello_caps);
	s = test_suite("etcd", NULL, NULL);
	test_add(s, "endpoints and unreachable etcd", test_etcd_endpoints);
	test_add(s, "a call past the queue's limit fails, said", test_etcd_queue_full);
	s = test_suite("config", NULL, NULL);
	test_add(s, "cluster keys checked at start", test_config);
	test_add(s, "an etcd that answers garbage", test_garbage);
}
