/*
 * test_client_cluster_admin.c: test_client_cluster's tests of what is not
 * routing a channel's ops: a MOVED loop (a node that always answers MOVED
 * to itself) ends after a bounded number of hops, addresses that are not
 * a cluster's are refused, a single chand is not a cluster (the suite that
 * needs no etcd); CLUSTER_NODES lists the live nodes, and chanctl's
 * cluster nodes, where and ls.
 *
 * SPDX-License-Identifier: BSD-2-Clause
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "codec.h"
#include "clientclustertest.h"
#include "srvtest.h"
#include "status.h"

/* ---- a node that always answers MOVED to itself ------------------------------------------------ */

static struct {
	int lfd, port;
	int requests;			/* after HELLO */
	const char *moved_to;		/* what its MOVED names: NULL, itself */
} liar;

static bool
read_full(int fd, void *p, size_t n)
{
	ssize_t r;

	for (size_t got = 0; got < n; got += (size_t)r)
		if ((r = read(fd, (char *)p + got, n - got)) <= 0)
			return false;
	return true;
}

/* One connection: HELLO OK, then MOVED "here" for every request, until it closes. */
static void *
liar_thread(void *arg)
{
	struct proto_hello_info h = { .version = PROTO_VERSION, .server = "liar", .server_len = 4,
	    .max_frame = 1 << 20, .max_value = 1 << 16, .max_pending = 64, .max_select_cases = 64 };
	struct proto_limits lim = { .max_value = 1 << 16, .max_select_cases = 64 };
	struct proto_case cases[64];
	struct proto_request req;
	struct proto_out o;
	uint8_t hdr[PROTO_FRAME_HDR], body[4096];
	char here[32];
	const char *why;
	size_t len;
	int fd = accept(liar.lfd, NULL, NULL);

	(void)arg;
	snprintf(here, sizeof here, "127.0.0.1:%d", liar.port);
	if (liar.moved_to == NULL)
		liar.moved_to = here;
	proto_out_init(&o);
	while (fd >= 0 && read_full(fd, hdr, sizeof hdr) && (len = proto_frame_len(hdr)) <= sizeof body &&
	    read_full(fd, body, len)) {
		if (proto_decode_request(body, len, &lim, cases, 64, &req, &why) != STATUS_OK)
			break;
		proto_out_reset(&o);
		if (req.op == OP_HELLO)
			proto_rep_hello(&o, req.id, &h);
		else {
			__atomic_add_fetch(&liar.requests, 1, __ATOMIC_RELAXED);
			proto_rep_error(&o, req.id, STATUS_MOVED, liar.moved_to);
		}
		if (write(fd, proto_out_data(&o), proto_out_len(&o)) < 0)
			break;
	}
	proto_out_destroy(&o);
	if (fd >= 0)
		close(fd);
	return NULL;
}

/* Start the liar on an ephemeral loopback port, answering MOVED moved_to (NULL: itself). */
static void
liar_start(pthread_t *t, const char *moved_to)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t alen = sizeof a;

	liar.requests = 0;
	liar.moved_to = moved_to;
	liar.lfd = socket(AF_INET, SOCK_STREAM, 0);
	CU_ASSERT_FATAL(bind(liar.lfd, (struct sockaddr *)&a, sizeof a) == 0 && listen(liar.lfd, 4) == 0 &&
	    getsockname(liar.lfd, (struct sockaddr *)&a, &alen) == 0);
	liar.port = ntohs(a.sin_port);
	CU_ASSERT_FATAL(pthread_create(t, NULL, liar_thread, NULL) == 0);
}

/* A MOVED loop (stale views that never converge) ends after a bounded number of hops, clearly. */
static void
test_moved_loop(void)
{
	chan_conn_t *c;
	chan_t *ch;
	pthread_t t;
	char addr[64];

	liar_start(&t, NULL);
	snprintf(addr, sizeof addr, "cluster://127.0.0.1:%d", liar.port);
	CU_ASSERT_EQUAL_FATAL(chan_dial(NULL, addr, NULL, &c), CHAN_OK);
	CU_ASSERT_EQUAL(chan_make(NULL, c, "loop", 1, &ch), CHAN_EUNAVAILABLE);
	CU_ASSERT_EQUAL(__atomic_load_n(&liar.requests, __ATOMIC_RELAXED), 6);	/* 1 + 5 hops */
	chan_conn_close(c);
	pthread_join(t, NULL);
	close(liar.lfd);
}

/*
 * A MOVED naming what is no node's HOST:PORT (a unix socket, a scheme, no
 * port) breaks the contract (PROTOCOL.md §3, §9): the call fails with
 * CHAN_EPROTO and nothing is dialed. A node, or whoever sits on its plain
 * TCP, must not send a client to a local socket with its token and its
 * request.
 */
static void
test_moved_elsewhere(void)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	char dir[] = "/tmp/chand-moved.XXXXXX", bad[6][160], addr[64];
	int ufd;

	CU_ASSERT_FATAL(mkdtemp(dir) != NULL);
	snprintf(sun.sun_path, sizeof sun.sun_path, "%s/s", dir);
	ufd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	CU_ASSERT_FATAL(bind(ufd, (struct sockaddr *)&sun, sizeof sun) == 0 && listen(ufd, 4) == 0);
	snprintf(bad[0], sizeof bad[0], "unix:%s", sun.sun_path);
	snprintf(bad[1], sizeof bad[1], "%s", sun.sun_path);
	snprintf(bad[2], sizeof bad[2], "unix:///%s", sun.sun_path + 1);
	snprintf(bad[3], sizeof bad[3], "tcp://127.0.0.1:1");
	snprintf(bad[4], sizeof bad[4], "127.0.0.1");
	snprintf(bad[5], sizeof bad[5], "unix:7420");
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		chan_conn_t *c;
		chan_ctx_t *ctx;
		chan_t *ch = NULL;
		pthread_t t;

		liar_start(&t, bad[i]);
		snprintf(addr, sizeof addr, "cluster://127.0.0.1:%d", liar.port);
		CU_ASSERT_EQUAL_FATAL(chan_dial(NULL, addr, NULL, &c), CHAN_OK);
		/* bounded: followed, the unix socket's backlog would take HELLO and never answer */
		CU_ASSERT_FATAL(chan_with_timeout(&ctx, NULL, REPLY_MS * CHAN_MSEC) == CHAN_OK);
		CU_ASSERT_EQUAL(chan_make(ctx, c, "a", 1, &ch), CHAN_EPROTO);
		CU_ASSERT_PTR_NULL(ch);
		CU_ASSERT_EQUAL(__atomic_load_n(&liar.requests, __ATOMIC_RELAXED), 1);
		chan_ctx_free(ctx);
		chan_conn_close(c);
		pthread_join(t, NULL);
		close(liar.lfd);
	}
	/* nobody connected to the unix socket */
	CU_ASSERT(accept(ufd, NULL, NULL) < 0 && errno == EAGAIN);
	close(ufd);
	unlink(sun.sun_path);
	rmdir(dir);
}

/* Addresses that are not a cluster's. */
static void
test_bad_addresses(void)
{
	chan_dial_opts_t tls = { .tls_ca = "/nonexistent/ca.pem" };
	chan_conn_t *c = NULL;

	CU_ASSERT_EQUAL(chan_dial(NULL, "cluster://", NULL, &c), CHAN_EINVAL);
	CU_ASSERT_EQUAL(chan_dial(NULL, "cluster://127.0.0.1:1,,", NULL, &c), CHAN_EINVAL);
	CU_ASSERT_EQUAL(chan_dial(NULL, "cluster://tls://127.0.0.1:1", NULL, &c), CHAN_EINVAL);
	/* a seed is HOST:PORT: not a unix socket, not a host without its port */
	CU_ASSERT_EQUAL(chan_dial(NULL, "cluster://unix:/run/chand.sock", NULL, &c), CHAN_EINVAL);
	CU_ASSERT_EQUAL(chan_dial(NULL, "cluster://unix:7420", NULL, &c), CHAN_EINVAL);
	CU_ASSERT_EQUAL(chan_dial(NULL, "127.0.0.1,127.0.0.1:1", NULL, &c), CHAN_EINVAL);
	CU_ASSERT_EQUAL(chan_dial(NULL, "cluster://[::1]", NULL, &c), CHAN_EINVAL);
	CU_ASSERT_EQUAL(chan_dial(NULL, "cluster+tls://", NULL, &c), CHAN_EINVAL);
	CU_ASSERT_EQUAL(chan_dial(NULL, "cluster+tls://tls://127.0.0.1:1", NULL, &c), CHAN_EINVAL);
	CU_ASSERT_EQUAL(chan_dial(NULL, "cluster+tls://unix:/run/chand.sock", NULL, &c), CHAN_EINVAL);
	/* a tls_* option with a plain cluster would not be used: refused before any dial */
	CU_ASSERT_EQUAL(chan_dial(NULL, "cluster://127.0.0.1:1", &tls, &c), CHAN_EINVAL);
	CU_ASSERT_EQUAL(chan_dial(NULL, "127.0.0.1:1,127.0.0.1:2", &tls, &c), CHAN_EINVAL);
	/* nobody listens on port 1: every seed tried, then the connection error */
	CU_ASSERT_EQUAL(chan_dial(NULL, "127.0.0.1:1,127.0.0.1:1", NULL, &c), CHAN_ECONNECT);
	CU_ASSERT_PTR_NULL(c);
}

/* ---- CLUSTER_NODES and chanctl ------------------------------------------------------------------- */

/* The live nodes, through the cluster connection; each node's count matches its own STATS. */
static void
test_admin_nodes(void)
{
	chan_conn_t *c = dial_cluster();
	chan_node_info_t *list;
	size_t n, selves = 0, total = 0;
	char want[32];

	CU_ASSERT_EQUAL_FATAL(chan_admin_cluster_nodes(NULL, c, &list, &n), CHAN_OK);
	CU_ASSERT_EQUAL_FATAL(n, NODES);
	for (size_t i = 0; i < n; i++) {
		int k = node_of(list[i].addr);

		CU_ASSERT_FATAL(k >= 0);
		snprintf(want, sizeof want, "n%d", k);
		CU_ASSERT_STRING_EQUAL(list[i].name, want);
		CU_ASSERT_EQUAL(list[i].owned, ct_node_stat(k, "cluster_owned"));
		total += list[i].owned;
		if (list[i].self) {
			selves++;
			CU_ASSERT(list[i].lease_left_ms > 0 && list[i].lease_left_ms <= TTL_S * 1000);
		} else {
			CU_ASSERT_EQUAL(list[i].lease_left_ms, 0);
		}
	}
	CU_ASSERT_EQUAL(selves, 1);
	CU_ASSERT(total >= NCHANS);	/* test_owner_direct's, at least */
	free(list);
	chan_conn_close(c);
}

/* Run chanctl with args (one string, no quoting needed); its exit code, stdout in out. */
static int
ctl(char *out, size_t cap, const char *args)
{
	const char *path = getenv("CHANCTL") ? getenv("CHANCTL") : "client/chanctl";
	char cmd[512];
	size_t len = 0, k;
	FILE *f;
	int st;

	snprintf(cmd, sizeof cmd, "%s -t 10s %s 2>/dev/null", path, args);
	CU_ASSERT_PTR_NOT_NULL_FATAL(f = popen(cmd, "r"));
	while (len < cap - 1 && (k = fread(out + len, 1, cap - 1 - len, f)) > 0)
		len += k;
	out[len] = '\0';
	st = pclose(f);
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static void
test_chanctl(void)
{
	chan_conn_t *c = dial_cluster();
	chan_t *ch[NODES];
	char name[NODES][64], args[256], out[16384], addr[32];

	for (int k = 0; k < NODES; k++)
		ch[k] = make_on(c, k, "ctl", 1, name[k], sizeof name[k]);
	snprintf(args, sizeof args, "-s %s cluster nodes", seeds);
	CU_ASSERT_EQUAL(ctl(out, sizeof out, args), 0);
	for (int k = 0; k < NODES; k++) {
		snprintf(addr, sizeof addr, "127.0.0.1:%d", ct_node_port(k));
		CU_ASSERT_PTR_NOT_NULL(strstr(out, addr));
	}
	CU_ASSERT(strstr(out, "n0") && strstr(out, "n1") && strstr(out, "n2"));
	/* where: the owner's address; an unknown channel exits 6 (not found) */
	snprintf(args, sizeof args, "-s %s cluster where %s", seeds, name[2]);
	CU_ASSERT_EQUAL(ctl(out, sizeof out, args), 0);
	snprintf(addr, sizeof addr, "127.0.0.1:%d", ct_node_port(2));
	CU_ASSERT_PTR_NOT_NULL(strstr(out, addr));
	snprintf(args, sizeof args, "-s %s cluster where %s", seeds, st_name("nosuch"));
	CU_ASSERT_EQUAL(ctl(out, sizeof out, args), 6);
	snprintf(args, sizeof args, "-s 127.0.0.1:%d cluster where %s", ct_node_port(0), name[0]);
	CU_ASSERT_EQUAL(ctl(out, sizeof out, args), 2);	/* needs a cluster address */
	snprintf(args, sizeof args, "-s %s cluster bogus", seeds);
	CU_ASSERT_EQUAL(ctl(out, sizeof out, args), 2);
	/* ls over the cluster lists every node's channels; over one node, only its own */
	snprintf(args, sizeof args, "-s %s ls 'ctl*'", seeds);
	CU_ASSERT_EQUAL(ctl(out, sizeof out, args), 0);
	for (int k = 0; k < NODES; k++)
		CU_ASSERT_PTR_NOT_NULL(strstr(out, name[k]));
	snprintf(args, sizeof args, "-s 127.0.0.1:%d ls 'ctl*'", ct_node_port(0));
	CU_ASSERT_EQUAL(ctl(out, sizeof out, args), 0);
	CU_ASSERT_PTR_NOT_NULL(strstr(out, name[0]));
	CU_ASSERT_PTR_NULL(strstr(out, name[1]));
	for (int k = 0; k < NODES; k++)
		chan_free(ch[k]);
	chan_conn_close(c);
}

/*
 * The TLS suites: chanctl -s cluster+tls:// --ca dials every node over TLS,
 * for cluster nodes (each node reachable), where (the owner's TLS listener)
 * and ls (every node's channels); --ca with a plain cluster:// is a usage
 * error, dialing nothing.
 */
static void
test_chanctl_tls(void)
{
	chan_conn_t *c = dial_cluster();
	chan_t *ch[NODES];
	char name[NODES][64], args[512], out[16384], addr[32], opt[200];

	snprintf(opt, sizeof opt, "-s %s --ca %s/ca.pem", seeds, ct_certs());
	for (int k = 0; k < NODES; k++)
		ch[k] = make_on(c, k, "tctl", 1, name[k], sizeof name[k]);
	snprintf(args, sizeof args, "%s --json cluster nodes", opt);
	CU_ASSERT_EQUAL(ctl(out, sizeof out, args), 0);
	CU_ASSERT_PTR_NULL(strstr(out, "\"reachable\":false"));
	for (int k = 0; k < NODES; k++) {
		snprintf(addr, sizeof addr, "127.0.0.1:%d", ct_node_tls_port(k));
		CU_ASSERT_PTR_NOT_NULL(strstr(out, addr));
	}
	snprintf(args, sizeof args, "%s cluster where %s", opt, name[2]);
	CU_ASSERT_EQUAL(ctl(out, sizeof out, args), 0);
	snprintf(addr, sizeof addr, "127.0.0.1:%d", ct_node_tls_port(2));
	CU_ASSERT_PTR_NOT_NULL(strstr(out, addr));
	snprintf(args, sizeof args, "%s ls 'tctl*'", opt);
	CU_ASSERT_EQUAL(ctl(out, sizeof out, args), 0);
	for (int k = 0; k < NODES; k++)
		CU_ASSERT_PTR_NOT_NULL(strstr(out, name[k]));
	snprintf(args, sizeof args, "-s cluster://127.0.0.1:%d --ca %s/ca.pem ls", ct_node_tls_port(0),
	    ct_certs());
	CU_ASSERT_EQUAL(ctl(out, sizeof out, args), 2);
	for (int k = 0; k < NODES; k++)
		chan_free(ch[k]);
	chan_conn_close(c);
}

/* A single chand (no cluster_etcd): CLUSTER_NODES is a clear BAD_REQUEST, chanctl says why. */
static void
test_not_a_cluster(void)
{
	struct test_server srv;
	chan_conn_t *c;
	chan_node_info_t *list;
	size_t n;
	char addr[64], args[128], out[1024];

	CU_ASSERT_FATAL(test_server_start(&srv, NULL) == 0);
	snprintf(addr, sizeof addr, "127.0.0.1:%d", srv.port);
	CU_ASSERT_EQUAL_FATAL(chan_dial(NULL, addr, NULL, &c), CHAN_OK);
	CU_ASSERT_EQUAL(chan_admin_cluster_nodes(NULL, c, &list, &n), CHAN_EBADREQ);
	CU_ASSERT_EQUAL(chan_cluster_where(NULL, c, "x", addr, sizeof addr), CHAN_ENOTSUP);
	chan_conn_close(c);
	snprintf(args, sizeof args, "-s 127.0.0.1:%d cluster nodes", srv.port);
	CU_ASSERT_EQUAL(ctl(out, sizeof out, args), 1);
	CU_ASSERT_EQUAL(test_server_stop(&srv), 0);
}

/* The suite that needs no etcd: a MOVED loop, bad addresses, a single chand. */
void
register_client_cluster_no_etcd(CU_pSuite s)
{
	test_add(s, "a MOVED loop ends in CHAN_EUNAVAILABLE", test_moved_loop);
	test_add(s, "a MOVED to no node's HOST:PORT is not followed", test_moved_elsewhere);
	test_add(s, "bad cluster addresses", test_bad_addresses);
	test_add(s, "a single chand is not a cluster", test_not_a_cluster);
}

/* CLUSTER_NODES and chanctl, after the ack channel tests. */
void
register_client_cluster_admin(CU_pSuite s)
{
	test_add(s, "CLUSTER_NODES", test_admin_nodes);
	test_add(s, "chanctl cluster nodes, where, ls", test_chanctl);
}

void
register_client_cluster_tls_admin(CU_pSuite s)
{
	test_add(s, "chanctl over cluster+tls://", test_chanctl_tls);
}
