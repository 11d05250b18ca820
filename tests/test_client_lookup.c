/*
 * test_client_lookup.c: chan_dial's name lookup obeys its context. This
 * program defines its own getaddrinfo, which libchanclient's calls reach
 * first (the executable comes first in symbol lookup): names under
 * ".chand.test" never reach a resolver — "slow.chand.test" blocks until
 * the test lets it go (10 s at most), as a DNS server that does not answer
 * would, and
 * "none.chand.test" does not exist; every other name goes to the real one.
 */
#include <dlfcn.h>
#include <errno.h>
#include <netdb.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "clienttest.h"

#define SLOW_HOST "slow.chand.test"
#define NO_HOST "none.chand.test"

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
	errno = 0;
	CU_ASSERT_EQUAL(chan_dial(NULL, "tcp://" NO_HOST ":1", NULL, &c), CHAN_ECONNECT);
	errno_seen = errno;
	CU_ASSERT_EQUAL(errno_seen, EHOSTUNREACH);
	CU_ASSERT_PTR_NULL(c);
	snprintf(addr, sizeof addr, "tcp://127.0.0.1:%d", csuite.srv.port);
	CU_ASSERT_EQUAL_FATAL(chan_dial(NULL, addr, NULL, &c), CHAN_OK);
	chan_conn_close(c);
}

static int
suite_init(void)
{
	return cs_up(NULL, false);
}

static void
register_suites(void)
{
	CU_pSuite s = test_suite("lookup", suite_init, cs_suite_clean);

	test_add(s, "a lookup that never answers ends at the deadline", test_lookup_deadline);
	test_add(s, "a lookup that never answers ends at a cancel", test_lookup_cancel);
	test_add(s, "abandoned lookups end on their own", test_lookup_abandoned_end);
	test_add(s, "names, unknown names and addresses", test_lookup_names);
}

int
main(int argc, char **argv)
{
	return test_main(argc, argv, register_suites);
}
