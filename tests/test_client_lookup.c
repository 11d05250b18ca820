/*
 * test_client_lookup.c: chan_dial's name lookup obeys its context. This
 * program defines its own getaddrinfo, which libchanclient's calls reach
 * first (the executable comes first in symbol lookup): names under
 * ".chand.test" never reach a resolver — "slow.chand.test" blocks until
 * the test lets it go (10 s at most), as a DNS server that does not answer
 * would, and
 * "none.chand.test" does not exist; every other name goes to the real one.
 * It also covers the address forms chan_dial takes (dial.c's one parser).
 *
 * SPDX-License-Identifier: BSD-2-Clause
 */
#include <arpa/inet.h>
#include <dlfcn.h>
#include <errno.h>
#include <netdb.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "clienttest.h"

#define SLOW_HOST "slow.chand.test"
#define NO_HOST "none.chand.test"

static char sock_dir[] = "/tmp/chand-lookup.XXXXXX";
static char sock_path[64];		/* the suite's chand also listens here */

typedef int (*getaddrinfo_fn)(const char *, const char *, const struct addrinfo *,
    struct addrinfo **);

static pthread_mutex_t gate_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t gate_cond = PTHREAD_COND_INITIALIZER;
static bool gate_open;
static int slow_entered, slow_left;

int
getaddrinfo(const char *node, const char *service, const struct addrinfo *hints,
    struct addrinfo **res)
{
	static getaddrinfo_fn real;

	if (node != NULL && strcmp(node, SLOW_HOST) == 0) {
		if (hints != NULL && (hints->ai_flags & AI_NUMERICHOST))
			return EAI_NONAME;
		struct timespec until;

		/* bounded, so that a chan_dial that waits for it fails the test, not hangs */
		clock_gettime(CLOCK_REALTIME, &until);
		until.tv_sec += 2 * BOUND_MS / 1000;
		pthread_mutex_lock(&gate_lock);
		slow_entered++;
		pthread_cond_broadcast(&gate_cond);
		while (!gate_open && pthread_cond_timedwait(&gate_cond, &gate_lock, &until) == 0)
			;
		slow_left++;
		pthread_cond_broadcast(&gate_cond);
		pthread_mutex_unlock(&gate_lock);
		return EAI_AGAIN;
	}
	if (node != NULL && strcmp(node, NO_HOST) == 0)
		return EAI_NONAME;
	if (real == NULL)
		real = (getaddrinfo_fn)dlsym(RTLD_NEXT, "getaddrinfo");
	return real(node, service, hints, res);
}

/* Wait (BOUND_MS) until *count reaches n under the gate's lock. */
static bool
gate_wait_count(const int *count, int n)
{
	struct timespec until;
	bool ok = true;

	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += BOUND_MS / 1000;
	pthread_mutex_lock(&gate_lock);
	while (*count < n && ok)
		ok = pthread_cond_timedwait(&gate_cond, &gate_lock, &until) == 0 || *count >= n;
	pthread_mutex_unlock(&gate_lock);
	return ok;
}

static int
entered(void)
{
	int n;

	pthread_mutex_lock(&gate_lock);
	n = slow_entered;
	pthread_mutex_unlock(&gate_lock);
	return n;
}

/* A lookup that never answers: chan_dial returns at its context's deadline. */
static void
test_lookup_deadline(void)
{
	chan_conn_t *c = NULL;
	chan_ctx_t *cx;
	int64_t t0 = chan_now();
	int before = entered();

	CU_ASSERT_EQUAL_FATAL(chan_with_timeout(&cx, NULL, 100 * CHAN_MSEC), CHAN_OK);
	CU_ASSERT_EQUAL(chan_dial(cx, "tcp://" SLOW_HOST ":1", NULL, &c), CHAN_EDEADLINE);
	CU_ASSERT(ms_since(t0) >= 100);
	CU_ASSERT(ms_since(t0) < BOUND_MS);
	CU_ASSERT_PTR_NULL(c);
	CU_ASSERT_EQUAL(entered(), before + 1);	/* it did wait on the lookup */
	chan_ctx_free(cx);
}

struct canceller {
	chan_ctx_t *ctx;
	int after;			/* cancel once this many lookups have entered */
	bool saw;
};

static void *
cancel_main(void *arg)
{
	struct canceller *k = arg;

	k->saw = gate_wait_count(&slow_entered, k->after);
	chan_cancel(k->ctx);
	return NULL;
}

/* The same lookup, cancelled from another thread while it waits. */
static void
test_lookup_cancel(void)
{
	struct canceller k = { .after = entered() + 1 };
	chan_conn_t *c = NULL;
	chan_ctx_t *cx;
	pthread_t t;

	CU_ASSERT_EQUAL_FATAL(chan_with_cancel(&cx, NULL), CHAN_OK);
	k.ctx = cx;
	CU_ASSERT_EQUAL_FATAL(pthread_create(&t, NULL, cancel_main, &k), 0);
	CU_ASSERT_EQUAL(chan_dial(cx, "tls://" SLOW_HOST ":1", NULL, &c), CHAN_ECANCELED);
	pthread_join(t, NULL);
	CU_ASSERT(k.saw);
	CU_ASSERT_PTR_NULL(c);
	chan_ctx_free(cx);
}

/* The abandoned lookups end on their own once the "server" answers. */
static void
test_lookup_abandoned_end(void)
{
	int n = entered();

	pthread_mutex_lock(&gate_lock);
	gate_open = true;
	pthread_cond_broadcast(&gate_cond);
	pthread_mutex_unlock(&gate_lock);
	CU_ASSERT(n >= 2);
	CU_ASSERT(gate_wait_count(&slow_left, n));
}

/* Names still resolve: through the lookup thread, and at once when numeric. */
static void
test_lookup_names(void)
{
	char addr[80];
	chan_conn_t *c = NULL;
	int errno_seen;

	snprintf(addr, sizeof addr, "tcp://localhost:%d", csuite.srv.port);
	CU_ASSERT_EQUAL_FATAL(chan_dial(NULL, addr, NULL, &c), CHAN_OK);
	CU_ASSERT_EQUAL(chan_ping(NULL, c), CHAN_OK);
	chan_conn_close(c);
	c = NULL;
	/* a name that does not resolve says so: not "No route to host" */
	CU_ASSERT_EQUAL(chan_dial(NULL, "tcp://" NO_HOST ":1", NULL, &c), CHAN_ERESOLVE);
	CU_ASSERT_PTR_NULL(c);
	CU_ASSERT_EQUAL(chan_dial(NULL, NO_HOST, NULL, &c), CHAN_ERESOLVE);
	CU_ASSERT_EQUAL(chan_dial(NULL, "tls://" NO_HOST, NULL, &c), CHAN_ERESOLVE);
	CU_ASSERT_PTR_NULL(c);
	CU_ASSERT_STRING_EQUAL(chan_strerror(CHAN_ERESOLVE), "host name did not resolve");
	CU_ASSERT_STRING_NOT_EQUAL(chan_strerror(CHAN_ERESOLVE), chan_strerror(CHAN_ECONNECT));
	/* the real resolver too */
	CU_ASSERT_EQUAL(chan_dial(NULL, TEST_UNRESOLVABLE_HOST ":7420", NULL, &c), CHAN_ERESOLVE);
	CU_ASSERT_PTR_NULL(c);
	/* a refused connection is still CHAN_ECONNECT, errno saying why */
	errno = 0;
	CU_ASSERT_EQUAL(chan_dial(NULL, "unix:/nonexistent/chand.sock", NULL, &c), CHAN_ECONNECT);
	errno_seen = errno;
	CU_ASSERT_EQUAL(errno_seen, ENOENT);
	snprintf(addr, sizeof addr, "tcp://127.0.0.1:%d", csuite.srv.port);
	CU_ASSERT_EQUAL_FATAL(chan_dial(NULL, addr, NULL, &c), CHAN_OK);
	chan_conn_close(c);
}

/* ---- address forms ------------------------------------------------------------------ */

/* Dial addr and ping through it: the form reached the suite's chand. */
static void __attribute__((format(printf, 1, 2)))
dial_ping(const char *fmt, ...)
{
	char addr[160];
	chan_conn_t *c = NULL;
	va_list ap;
	int rc;

	va_start(ap, fmt);
	vsnprintf(addr, sizeof addr, fmt, ap);
	va_end(ap);
	rc = chan_dial(NULL, addr, NULL, &c);
	if (rc != CHAN_OK)
		fprintf(stderr, "chan_dial(%s): %s\n", addr, chan_strerror(rc));
	CU_ASSERT_EQUAL_FATAL(rc, CHAN_OK);
	CU_ASSERT_EQUAL(chan_ping(NULL, c), CHAN_OK);
	chan_conn_close(c);
}

static void
test_forms_reach_chand(void)
{
	int port = csuite.srv.port;

	dial_ping("127.0.0.1:%d", port);
	dial_ping("localhost:%d", port);
	dial_ping("tcp://localhost:%d", port);
	dial_ping("tcp://127.0.0.1:%d", port);
	dial_ping("unix:%s", sock_path);
	dial_ping("unix://%s", sock_path);
	dial_ping("%s", sock_path);
}

/* A connection waits in the listener's queue: some dial reached it. */
static bool
reached(int lfd)
{
	struct pollfd p = { .fd = lfd, .events = POLLIN };

	return poll(&p, 1, 0) == 1;
}

/* Dial addr with a short deadline: it must connect to lfd, then time out. */
static void
dial_reaches(const char *addr, int lfd)
{
	chan_conn_t *c = NULL;
	chan_ctx_t *cx;

	CU_ASSERT_EQUAL_FATAL(chan_with_timeout(&cx, NULL, 200 * CHAN_MSEC), CHAN_OK);
	CU_ASSERT_EQUAL(chan_dial(cx, addr, NULL, &c), CHAN_EDEADLINE);
	CU_ASSERT_PTR_NULL(c);
	chan_ctx_free(cx);
	CU_ASSERT(reached(lfd));
}

/* The forms that imply a port (7420) or name an IPv6 address, on listeners of the test's own. */
static void
test_forms_default_port_v6(void)
{
	char ip[32], addr[80];
	int lfd = -1, port;

	/* a loopback address of this test's own, so that 7420 is free there */
	for (int i = 0; i < 16 && lfd < 0; i++) {
		snprintf(ip, sizeof ip, "127.42.%d.%d", (getpid() >> 8) & 0xff, (getpid() + i) % 254 + 1);
		lfd = test_listen_silent(ip, 7420, &port);
	}
	CU_ASSERT_FATAL(lfd >= 0);
	dial_reaches(ip, lfd);
	close(lfd);
	CU_ASSERT_FATAL((lfd = test_listen_silent(ip, 7420, &port)) >= 0);
	snprintf(addr, sizeof addr, "tls://%s", ip);	/* the handshake gets no answer */
	dial_reaches(addr, lfd);
	close(lfd);
	if ((lfd = test_listen_silent("::1", 0, &port)) < 0) {
		fprintf(stderr, "no IPv6 loopback: [v6]:port not dialled\n");
		return;
	}
	snprintf(addr, sizeof addr, "[::1]:%d", port);
	dial_reaches(addr, lfd);
	close(lfd);
}

static void
test_forms_invalid(void)
{
	static const char *const bad[] = {
		"", "::1", "::1:7420", "tcp://fe80::1", "localhost:", "localhost:0", "localhost:65536",
		"localhost:http", "localhost:12x", ":7420", "[::1", "[::1]x", "[]:7420", "[::1]:",
		"bogus://x", "http://localhost:7420", "unix:", "tcp://", "tls://",
	};
	chan_conn_t *c = (chan_conn_t *)1;

	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		int rc = chan_dial(NULL, bad[i], NULL, &c);

		if (rc != CHAN_EINVAL)
			fprintf(stderr, "chan_dial(\"%s\"): %s\n", bad[i], chan_strerror(rc));
		CU_ASSERT_EQUAL(rc, CHAN_EINVAL);
	}
	CU_ASSERT_PTR_EQUAL(c, (chan_conn_t *)1);
}

static int
suite_init(void)
{
	char conf[128];

	if (mkdtemp(sock_dir) == NULL)
		return -1;
	snprintf(sock_path, sizeof sock_path, "%s/chand.sock", sock_dir);
	snprintf(conf, sizeof conf, "unix_socket = %s\n", sock_path);
	return cs_up(conf, false);
}

static int
suite_clean(void)
{
	cs_suite_clean();
	unlink(sock_path);	/* chand removes it; in case it could not */
	rmdir(sock_dir);
	return 0;
}

static void
register_suites(void)
{
	CU_pSuite s = test_suite("lookup", suite_init, suite_clean);

	test_add(s, "a lookup that never answers ends at the deadline", test_lookup_deadline);
	test_add(s, "a lookup that never answers ends at a cancel", test_lookup_cancel);
	test_add(s, "abandoned lookups end on their own", test_lookup_abandoned_end);
	test_add(s, "names, unknown names and addresses", test_lookup_names);
	test_add(s, "host:port, tcp://, unix: and /path reach chand", test_forms_reach_chand);
	test_add(s, "a bare host (port 7420), tls://host and [v6]:port", test_forms_default_port_v6);
	test_add(s, "addresses that are not one of the forms", test_forms_invalid);
}

int
main(int argc, char **argv)
{
	return test_main(argc, argv, register_suites);
}
