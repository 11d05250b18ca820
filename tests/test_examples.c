/*
 * test_examples.c: run every client/examples program against a real chand.
 *
 * The examples are smoke tests of libchanclient as a user sees it: each one
 * is run as a process with the server's address, must exit 0 within
 * RUN_TIMEOUT_MS and print its key lines. $CHAND_EXAMPLES names the
 * directory of the built examples (set by `make check`). An example's
 * output is copied to this test's log.
 *
 * SPDX-License-Identifier: BSD-2-Clause
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1
#endif
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "testutil.h"

#define RUN_TIMEOUT_MS 30000
#define OUT_MAX 8192

static struct test_server srv;
static char addr[64];

struct run {
	char out[OUT_MAX];
	size_t len;
	int status;			/* exit status, or -1: killed, timed out or not run */
};

static int64_t
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int
remaining_ms(int64_t deadline)
{
	int64_t left = deadline - now_ms();

	return left > 0 ? (int)left : 0;
}

static pid_t
spawn(const char *name, int *outfd)
{
	const char *dir = getenv("CHAND_EXAMPLES");
	char path[512];
	int pfd[2];
	pid_t pid;

	snprintf(path, sizeof path, "%s/%s", dir ? dir : "client/examples", name);
	if (pipe2(pfd, O_CLOEXEC) < 0)
		return -1;
	if ((pid = fork()) < 0) {
		close(pfd[0]);
		close(pfd[1]);
		return -1;
	}
	if (pid == 0) {
		dup2(pfd[1], STDOUT_FILENO);
		execl(path, name, addr, (char *)NULL);
		fprintf(stderr, "exec %s: %s\n", path, strerror(errno));
		_exit(127);
	}
	close(pfd[1]);
	*outfd = pfd[0];
	return pid;
}

/* Read the child's stdout to EOF, bounded by deadline; false on timeout. */
static bool
collect(int fd, struct run *r, int64_t deadline)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };
	char buf[1024];
	ssize_t n;

	for (;;) {
		if (poll(&p, 1, remaining_ms(deadline)) <= 0)
			return false;
		if ((n = read(fd, buf, sizeof buf)) <= 0)
			return n == 0;
		if ((size_t)n > sizeof r->out - 1 - r->len)
			n = (ssize_t)(sizeof r->out - 1 - r->len);
		memcpy(r->out + r->len, buf, (size_t)n);
		r->len += (size_t)n;
		r->out[r->len] = '\0';
	}
}

/* Wait for pid to exit, bounded by deadline (a pidfd when the kernel has them). */
static bool
reap(pid_t pid, int *status, int64_t deadline)
{
	int pidfd = (int)syscall(SYS_pidfd_open, pid, 0);

	if (pidfd >= 0) {
		struct pollfd p = { .fd = pidfd, .events = POLLIN };
		int ready = poll(&p, 1, remaining_ms(deadline));

		close(pidfd);
		if (ready <= 0)
			return false;
	}
	return waitpid(pid, status, 0) == pid;
}

static void
run_example(const char *name, struct run *r)
{
	int64_t deadline = now_ms() + RUN_TIMEOUT_MS;
	int fd, status;
	bool ok;
	pid_t pid;

	memset(r, 0, sizeof *r);
	r->status = -1;
	if ((pid = spawn(name, &fd)) < 0) {
		perror("spawn");
		return;
	}
	ok = collect(fd, r, deadline);
	close(fd);
	if (ok && reap(pid, &status, deadline)) {
		r->status = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
	} else {
		fprintf(stderr, "%s: no exit within %d ms, killed\n", name, RUN_TIMEOUT_MS);
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
	}
	printf("\n---- %s %s (exit %d) ----\n%s---- end ----\n", name, addr, r->status, r->out);
}

/* Run name; it must exit 0 and print every line of want (NULL-terminated). */
static void
check_example(const char *name, const char *const *want)
{
	static struct run r;

	run_example(name, &r);
	CU_ASSERT_EQUAL(r.status, 0);
	for (; *want != NULL; want++) {
		bool found = strstr(r.out, *want) != NULL;

		if (!found)
			fprintf(stderr, "%s: missing output line \"%s\"\n", name, *want);
		CU_ASSERT(found);
	}
}

static void
test_rendezvous(void)
{
	static const char *const want[] = { "sender is blocked: 1 sender waiting, len 0, cap 0\n",
	    "(true): Hello channels!\n", "sender's send returned after the receive\n", NULL };

	check_example("rendezvous", want);
	check_example("rendezvous", want);	/* again: the run cleaned up after itself */
}

static void
test_owner(void)
{
	static const char *const want[] = { "Received: 0\nReceived: 1\nReceived: 2\n"
	    "Received: 3\nReceived: 4\nReceived: 5\nDone receiving!\n",
	    "owner wrote 6 values and closed the channel\n",
	    "a send now fails: channel closed\n", NULL };

	check_example("owner", want);
}

static void
test_select_timeout(void)
{
	static const char *const want[] = { "c1Count + c2Count = 1001, both chosen",
	    "\nTimed out.\nIn default.\nAchieved ", NULL };

	check_example("select_timeout", want);
}

static void
test_done_leak(void)
{
	static const char *const want[] = { "doWork is blocked on done (1 waiter)\n"
	    "Canceling doWork goroutine...\ndoWork exited.\nDone.\n3 random ints:\n1: ",
	    "\n3: ", "newRandStream closure exited.\n", NULL };

	check_example("done_leak", want);
}

static void
test_pipeline(void)
{
	static const char *const want[] = { "6\n10\n14\n18\n4 stages exited after the pipeline drained\n"
	    "6\n10\n4 stages exited after close(done) with 2 values taken\n", NULL };

	check_example("pipeline", want);
}

static void
test_primes(void)
{
	static const char *const want[] = { "Spinning up 4 prime finders.\n",
	    "168 primes below 1000: 2 3 5 7 11 13 17 19 23 29 ... 997\n",
	    "took 10 primes >= 1000000, all prime; close(done) stopped 10 threads\n", NULL };

	check_example("primes", want);
}

static void
test_context(void)
{
	static const char *const want[] = { "run 1: timeout and cancel\n"
	    "cannot print greeting: context deadline exceeded\n"
	    "cannot print farewell: context canceled\n"
	    "run 2: checking the deadline first\n"
	    "cannot print greeting: context deadline exceeded (at once)\n"
	    "cannot print farewell: context canceled\n"
	    "run 3: the locale service answers\nhello world!\ngoodbye world!\n", NULL };

	check_example("context", want);
}

static void
test_or_server(void)
{
	static const char *const want[] = { "sig(2h0m0s) sig(5m0s) sig(1s) sig(1h0m0s) sig(1m0s)\n"
	    "done after the 1s signal (100 ms scaled)\n"
	    "or: ended by itself; sig(1s): context deadline exceeded\n"
	    "0 links left on the server\n", NULL };

	check_example("or_server", want);
}

static void
test_ordone_server(void)
{
	static const char *const want[] = { "a b c a b\nclose(done): the range over orDone ended\n"
	    "orDone: context canceled; myChan's repeat: context canceled\n", NULL };

	check_example("ordone_server", want);
}

static void
test_tee_server(void)
{
	static const char *const want[] = { "out1: 1, out2: 1\nout1: 2, out2: 2\n",
	    "out1: 2, out2: 2\ntake sent 20, tee sent 40, both ended by themselves\n"
	    "close(done) stopped repeat: context canceled\n", NULL };
	static struct run r;
	int lines = 0;

	check_example("tee_server", want);
	run_example("tee_server", &r);
	for (const char *p = r.out; (p = strstr(p, "out1: ")) != NULL; p++)
		lines++;
	CU_ASSERT_EQUAL(lines, 20);
}

static void
test_bridge_server(void)
{
	static const char *const want[] = { "0 1 2 3 4 5 6 7 8 9\nbridge sent 10 values\n"
	    "error value: bridge: a value of the channel of channels is not a channel reference\n"
	    "then: after\n", NULL };

	check_example("bridge_server", want);
}

static void
test_primes_server(void)
{
	static const char *const want[] = { "Spinning up 4 prime finders on the server.\n"
	    "168 primes below 1000: 2 3 5 7 11 13 17 19 23 29 ... 997\nPrimes:\n\t40425851\n",
	    "took 10 primes, all prime, in input order; close(done) stopped the job\n", NULL };

	check_example("primes_server", want);
}

static void
test_worker_pool(void)
{
	static const char *const want[] = { "worker 1: crashing with job ", " again (delivery 2)\n",
	    "20 of 20 jobs done; redelivered 1\n", NULL };

	check_example("worker_pool", want);
}

static int
suite_init(void)
{
	if (test_server_start(&srv, "workers = 4\n") < 0)
		return -1;
	snprintf(addr, sizeof addr, "tcp://127.0.0.1:%d", srv.port);
	return 0;
}

static int
suite_clean(void)
{
	return test_server_stop(&srv) == 0 ? 0 : -1;
}

static void
register_suites(void)
{
	CU_pSuite s = test_suite("examples", suite_init, suite_clean);

	test_add(s, "rendezvous: unbuffered, two connections", test_rendezvous);
	test_add(s, "owner: buffered, owner closes, consumer ranges", test_owner);
	test_add(s, "select_timeout: random, timeout, default", test_select_timeout);
	test_add(s, "done_leak: done stops a blocked worker", test_done_leak);
	test_add(s, "pipeline: generator, multiply, add; done", test_pipeline);
	test_add(s, "primes: fan-out, fan-in, take 10", test_primes);
	test_add(s, "context: timeout, cancel, deadline", test_context);
	test_add(s, "or_server: the or-channel as a link", test_or_server);
	test_add(s, "ordone_server: or-done and repeat, one done", test_ordone_server);
	test_add(s, "tee_server: tee(take(repeat(1, 2), 20))", test_tee_server);
	test_add(s, "bridge_server: bridge, an error value", test_bridge_server);
	test_add(s, "primes_server: fan-out job with isprime, take 10", test_primes_server);
	test_add(s, "worker_pool: an ack channel survives a killed worker", test_worker_pool);
}

int
main(int argc, char **argv)
{
	signal(SIGPIPE, SIG_IGN);
	return test_main(argc, argv, register_suites);
}
