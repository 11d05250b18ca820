/* SPDX-License-Identifier: BSD-2-Clause */
#include <CUnit/Basic.h>
#include <errno.h>
#include <fcntl.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"

#include "testutil.h"

CU_pSuite
test_suite(const char *name, CU_InitializeFunc init, CU_CleanupFunc clean)
{
	CU_pSuite s = CU_add_suite(name, init, clean);

	if (s == NULL) {
		fprintf(stderr, "CU_add_suite(%s): %s\n", name, CU_get_error_msg());
		exit(2);
	}
	return s;
}

void
test_add(CU_pSuite suite, const char *name, CU_TestFunc fn)
{
	if (CU_add_test(suite, name, fn) == NULL) {
		fprintf(stderr, "CU_add_test(%s): %s\n", name, CU_get_error_msg());
		exit(2);
	}
}

static bool
name_has_any(const char *name, int n, char **parts)
{
	for (int i = 0; i < n; i++)
		if (strstr(name, parts[i]) != NULL)
			return true;
	return false;
}

int
test_main(int argc, char **argv, void (*register_suites)(void))
{
	unsigned run, failed;

	if (CU_initialize_registry() != CUE_SUCCESS) {
		fprintf(stderr, "CU_initialize_registry: %s\n", CU_get_error_msg());
		return 2;
	}
	register_suites();
	CU_basic_set_mode(CU_BRM_VERBOSE);
	/*
	 * argv[1], if given, runs only the suite of that name; argv[2...],
	 * only its tests whose names contain one of them (to run one test
	 * over and over; a cluster suite's needs "three nodes join" too).
	 */
	if (argc > 1) {
		CU_pSuite s = CU_get_suite(argv[1]);

		if (s == NULL) {
			fprintf(stderr, "no suite named %s\n", argv[1]);
			CU_cleanup_registry();
			return 2;
		}
		for (CU_pTest t = s->pTest; argc > 2 && t != NULL; t = t->pNext)
			CU_set_test_active(t, name_has_any(t->pName, argc - 2, argv + 2));
		CU_basic_run_suite(s);
	} else {
		CU_basic_run_tests();
	}
	run = CU_get_number_of_tests_run();
	failed = CU_get_number_of_tests_failed();
	/* A suite whose init failed runs nothing: count it as failures. */
	failed += CU_get_number_of_suites_failed();
	printf("\n#totals passed=%u failed=%u\n", run - CU_get_number_of_tests_failed(), failed);
	CU_cleanup_registry();
	return failed == 0 ? 0 : 1;
}

/* ---- a real chand -------------------------------------------------------------- */

static int
read_with_timeout(int fd, char *buf, size_t cap, int timeout_ms)
{
	struct pollfd pfd = { .fd = fd, .events = POLLIN };
	size_t len = 0;
	int64_t end = clock_now_ns() + (int64_t)timeout_ms * NSEC_PER_MSEC;

	while (len < cap - 1) {
		int64_t left = (end - clock_now_ns()) / NSEC_PER_MSEC;
		ssize_t n;

		if (left <= 0 || poll(&pfd, 1, (int)left) <= 0)
			return -1;
		n = read(fd, buf + len, cap - 1 - len);
		if (n <= 0)
			break;
		len += (size_t)n;
		if (memchr(buf, '\n', len))
			break;
	}
	buf[len] = '\0';
	return (int)len;
}

int
test_server_start(struct test_server *s, const char *conf_lines)
{
	return test_server_start_args(s, conf_lines, NULL);
}

/* Copy a server's log to stderr: a start that failed says why only there. */
static void
print_log(const struct test_server *s)
{
	char path[160], line[1024];
	FILE *f;

	snprintf(path, sizeof path, "%s/chand.log", s->dir);
	if ((f = fopen(path, "r")) == NULL)
		return;
	while (fgets(line, sizeof line, f) != NULL)
		fprintf(stderr, "  %s: %s", s->dir, line);
	fclose(f);
}

int
test_server_start_args(struct test_server *s, const char *conf_lines, const char *const *args)
{
	const char *chand = getenv("CHAND");
	char fdarg[16], line[128] = "";
	int pfd[2], st;
	FILE *f;

	memset(s, 0, sizeof *s);
	if (chand == NULL)
		chand = "server/chand";
	snprintf(s->dir, sizeof s->dir, "/tmp/chand-test.XXXXXX");
	if (mkdtemp(s->dir) == NULL)
		return perror("mkdtemp"), -1;
	snprintf(s->conf, sizeof s->conf, "%s/chand.conf", s->dir);
	if ((f = fopen(s->conf, "w")) == NULL)
		return perror(s->conf), -1;
	fprintf(f, "%s\n", conf_lines ? conf_lines : "");
	fclose(f);
	if (pipe2(pfd, O_CLOEXEC) < 0)
		return perror("pipe"), -1;
	s->pid = fork();
	if (s->pid < 0)
		return perror("fork"), -1;
	if (s->pid == 0) {
		int fd = dup(pfd[1]);	/* without O_CLOEXEC, for chand */
		char log[128];
		int logfd;

		/* chand's log goes to DIR/chand.log, for the tests that read it */
		snprintf(log, sizeof log, "%s/chand.log", s->dir);
		logfd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0644);
		if (logfd >= 0 && getenv("CHAND_TEST_STDERR") == NULL)
			dup2(logfd, STDERR_FILENO);

		snprintf(fdarg, sizeof fdarg, "%d", fd);
		{
			const char *argv[32] = { chand, "-f", "-c", s->conf, "-l", "127.0.0.1", "-p", "0",
			    "--ready-fd", fdarg };
			size_t n = 10;

			for (; args != NULL && *args != NULL && n < 31; args++)
				argv[n++] = *args;
			execv(chand, (char *const *)argv);
		}
		perror(chand);
		_exit(127);
	}
	close(pfd[1]);
	if (read_with_timeout(pfd[0], line, sizeof line, 10000) <= 0 ||
	    sscanf(line, "%d", &s->port) != 1 || s->port <= 0) {
		fprintf(stderr, "chand did not report its port (got \"%s\")\n", line);
		close(pfd[0]);
		if (waitpid(s->pid, &st, WNOHANG) == s->pid) {
			fprintf(stderr, "chand exited: %s %d\n", WIFEXITED(st) ? "status" : "signal",
			    WIFEXITED(st) ? WEXITSTATUS(st) : WTERMSIG(st));
			s->pid = 0;
		}
		/* its log says why; it goes with its directory */
		print_log(s);
		test_server_kill(s);
		return -1;
	}
	close(pfd[0]);
	return 0;
}

static void
remove_dir(struct test_server *s)
{
	char path[160];

	snprintf(path, sizeof path, "%s/chand.conf", s->dir);
	unlink(path);
	snprintf(path, sizeof path, "%s/chand.sock", s->dir);
	unlink(path);
	snprintf(path, sizeof path, "%s/chand.log", s->dir);
	if (getenv("CHAND_TEST_KEEP_LOG") == NULL)
		unlink(path);
	rmdir(s->dir);
}

/*
 * Without pidfd_open (Linux before 5.3, or valgrind, which does not know
 * the call), ask waitpid every 10 ms until the deadline. Returns 1 when the
 * child was reaped into *status.
 */
static int
wait_exit_polled(pid_t pid, int timeout_ms, int *status)
{
	int64_t end = clock_now_ns() + (int64_t)timeout_ms * NSEC_PER_MSEC;

	for (;;) {
		if (waitpid(pid, status, WNOHANG) == pid)
			return 1;
		if (clock_now_ns() >= end)
			return 0;
		poll(NULL, 0, 10);
	}
}

int
test_wait_exit(pid_t pid, int timeout_ms)
{
	struct pollfd pfd = { .events = POLLIN };
	int status, exited;

	/* a pidfd becomes readable when the child exits: wait on that, bounded */
	pfd.fd = (int)syscall(SYS_pidfd_open, pid, 0);
	if (pfd.fd >= 0) {
		exited = poll(&pfd, 1, timeout_ms) == 1 && waitpid(pid, &status, 0) == pid;
		close(pfd.fd);
	} else {
		exited = wait_exit_polled(pid, timeout_ms, &status);
	}
	if (!exited) {
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
		return -1;
	}
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

int
test_server_stop(struct test_server *s)
{
	int rc;

	if (s->pid <= 0)
		return -1;
	kill(s->pid, SIGTERM);
	rc = test_wait_exit(s->pid, 10000);
	if (rc < 0)
		fprintf(stderr, "chand did not exit within 10 s of SIGTERM\n");
	s->pid = 0;
	remove_dir(s);
	return rc;
}

void
test_server_kill(struct test_server *s)
{
	if (s->pid > 0) {
		kill(s->pid, SIGKILL);
		waitpid(s->pid, NULL, 0);
		s->pid = 0;
	}
	remove_dir(s);
}

/* ---- raw connection ---------------------------------------------------------------- */

int
test_server_log_count(struct test_server *s, const char *needle)
{
	char path[128], line[2048];
	int n = 0;
	FILE *f;

	snprintf(path, sizeof path, "%s/chand.log", s->dir);
	if ((f = fopen(path, "r")) == NULL)
		return 0;
	while (fgets(line, sizeof line, f) != NULL)
		n += strstr(line, needle) != NULL;
	fclose(f);
	return n;
}

bool
test_server_log_has(struct test_server *s, const char *needle)
{
	return test_server_log_count(s, needle) > 0;
}

bool
test_server_await_log(struct test_server *s, const char *needle)
{
	int64_t end = clock_now_ns() + 10 * NSEC_PER_SEC;

	while (clock_now_ns() < end) {
		if (test_server_log_has(s, needle))
			return true;
		poll(NULL, 0, 10);	/* the log is a file: nothing to wait on but time */
	}
	return false;
}

int
test_server_tls_port(struct test_server *s)
{
	char path[160], line[512];
	FILE *f;
	int port = 0;

	snprintf(path, sizeof path, "%s/chand.log", s->dir);
	if ((f = fopen(path, "r")) == NULL)
		return 0;
	while (fgets(line, sizeof line, f))
		if (strstr(line, "tls=yes") && strstr(line, "listening") && strstr(line, "port="))
			sscanf(strstr(line, "port=") + 5, "%d", &port);
	fclose(f);
	return port;
}

void
test_token_digest(const char *token, char *out)
{
	char cmd[300];
	FILE *p;

	out[0] = '\0';
	snprintf(cmd, sizeof cmd, "printf %%s '%s' | openssl dgst -sha256 -r", token);
	if ((p = popen(cmd, "r")) == NULL)
		return;
	if (fscanf(p, "%64s", out) != 1)
		out[0] = '\0';
	pclose(p);
}

int
test_listen_silent(const char *ip, int port, int *portp)
{
	struct sockaddr_storage ss = { 0 };
	struct sockaddr_in *sin = (struct sockaddr_in *)&ss;
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;
	socklen_t sl = sizeof ss;
	int fd, one = 1;

	if (inet_pton(AF_INET, ip, &sin->sin_addr) == 1) {
		sin->sin_family = AF_INET;
		sin->sin_port = htons((uint16_t)port);
	} else if (inet_pton(AF_INET6, ip, &sin6->sin6_addr) == 1) {
		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons((uint16_t)port);
	} else {
		return -1;
	}
	if ((fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0)
		return -1;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
	if (bind(fd, (struct sockaddr *)&ss, sl) < 0 || listen(fd, 8) < 0 ||
	    getsockname(fd, (struct sockaddr *)&ss, &sl) < 0) {
		close(fd);
		return -1;
	}
	*portp = ntohs(ss.ss_family == AF_INET ? sin->sin_port : sin6->sin6_port);
	return fd;
}

int
test_conn_open(struct test_conn *c, int port, bool hello)
{
	return test_conn_open_rcvbuf(c, port, hello, 0);
}

int
test_conn_open_rcvbuf(struct test_conn *c, int port, bool hello, int rcvbuf)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
	int one = 1;

	memset(c, 0, sizeof *c);
	c->next_id = 1;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	c->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	/* a small receive window makes the server's output back up (backpressure tests) */
	if (c->fd >= 0 && rcvbuf > 0)
		setsockopt(c->fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
	if (c->fd < 0 || connect(c->fd, (struct sockaddr *)&sa, sizeof sa) < 0) {
		perror("connect");
		goto fail;
	}
	setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	if (hello) {
		struct proto_out o;
		struct proto_reply r;
		int rc;

		proto_out_init(&o);
		proto_req_hello(&o, c->next_id++, PROTO_VERSION, "test", NULL);
		rc = test_conn_write(c, proto_out_data(&o), proto_out_len(&o));
		proto_out_destroy(&o);
		if (rc < 0 || test_conn_reply(c, OP_HELLO, 10000, &r) < 0 || r.status != STATUS_OK)
			goto fail;
	}
	return 0;
fail:
	test_conn_close(c);	/* a caller that gives up leaks neither the socket nor the buffer */
	return -1;
}

void
test_conn_close(struct test_conn *c)
{
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
	free(c->buf);
	c->buf = NULL;
}

int
test_conn_write(struct test_conn *c, const void *p, size_t len)
{
	const char *b = p;

	while (len > 0) {
		ssize_t n = send(c->fd, b, len, MSG_NOSIGNAL);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		b += n;
		len -= (size_t)n;
	}
	return 0;
}

long
test_conn_frame(struct test_conn *c, int timeout_ms, const uint8_t **body)
{
	int64_t end = clock_now_ns() + (int64_t)timeout_ms * NSEC_PER_MSEC;

	/* drop the frame returned last time */
	if (c->consumed > 0) {
		memmove(c->buf, c->buf + c->consumed, c->len - c->consumed);
		c->len -= c->consumed;
		c->consumed = 0;
	}
	for (;;) {
		size_t blen;
		const char *why;
		long n = proto_frame_split(c->buf, c->len, 64u << 20, body, &blen, &why);
		struct pollfd pfd = { .fd = c->fd, .events = POLLIN };
		int64_t left;
		ssize_t got;

		if (n > 0) {
			c->consumed = (size_t)n;
			return (long)blen;
		}
		if (n < 0)
			return -1;
		if (c->cap - c->len < 65536) {
			size_t cap = c->cap ? c->cap * 2 : 131072;
			uint8_t *nb = realloc(c->buf, cap);

			if (nb == NULL)
				return -1;
			c->buf = nb;
			c->cap = cap;
		}
		left = (end - clock_now_ns()) / NSEC_PER_MSEC;
		if (left < 0 || poll(&pfd, 1, (int)left) <= 0)
			return -1;
		got = recv(c->fd, c->buf + c->len, c->cap - c->len, 0);
		if (got == 0)
			return 0;
		if (got < 0)
			return errno == EINTR ? test_conn_frame(c, timeout_ms, body) : -1;
		c->len += (size_t)got;
	}
}

int
test_conn_reply(struct test_conn *c, uint64_t op, int timeout_ms, struct proto_reply *r)
{
	const uint8_t *body;
	const char *why;
	long n = test_conn_frame(c, timeout_ms, &body);

	if (n <= 0)
		return -1;
	if (proto_decode_reply(body, (size_t)n, op, r, &why) != STATUS_OK) {
		fprintf(stderr, "bad reply: %s\n", why);
		return -1;
	}
	return 0;
}

int
test_chan_info(int port, const char *name, struct proto_chan_info *out)
{
	struct test_conn tc;
	struct proto_out o;
	struct proto_reply r;
	int rc = -1;

	if (test_conn_open(&tc, port, true) < 0)
		return -1;
	proto_out_init(&o);
	proto_req_name(&o, OP_INFO, tc.next_id++, PROTO_WAIT_FOREVER, name, strlen(name));
	if (test_conn_write(&tc, proto_out_data(&o), proto_out_len(&o)) == 0 &&
	    test_conn_reply(&tc, OP_INFO, 5000, &r) == 0 && r.status == STATUS_OK) {
		*out = r.info;
		out->name = NULL;	/* pointed into tc's buffer */
		rc = 0;
	}
	proto_out_destroy(&o);
	test_conn_close(&tc);
	return rc;
}

bool
test_wait_waiters(int port, const char *name, size_t senders, size_t receivers, int timeout_ms)
{
	struct timespec ms = { 0, 1000000 };
	int64_t end = clock_now_ns() + (int64_t)timeout_ms * NSEC_PER_MSEC;
	struct proto_chan_info i;

	while (clock_now_ns() < end) {
		if (test_chan_info(port, name, &i) == 0 && i.senders == senders &&
		    i.receivers == receivers)
			return true;
		nanosleep(&ms, NULL);	/* between polls of the condition */
	}
	return false;
}

int
test_run(const char *prog, const char *const *args, char *out, size_t cap)
{
	return test_run_child(prog, args, out, cap, NULL, NULL);
}

int
test_run_child(const char *prog, const char *const *args, char *out, size_t cap,
    void (*child)(void *arg), void *arg)
{
	const char *argv[16] = { prog };
	int64_t end = clock_now_ns() + 10 * NSEC_PER_SEC;
	struct pollfd p = { .events = POLLIN };
	int pfd[2];
	size_t len = 0;
	ssize_t n = 1;
	pid_t pid;

	for (int i = 0; args[i] != NULL && i < 14; i++)
		argv[i + 1] = args[i];
	CU_ASSERT_FATAL(pipe(pfd) == 0);
	if ((pid = fork()) == 0) {
		dup2(pfd[1], 1);
		dup2(pfd[1], 2);
		if (child != NULL)
			child(arg);
		execv(argv[0], (char *const *)argv);
		_exit(127);
	}
	close(pfd[1]);
	p.fd = pfd[0];
	while (n > 0 && len < cap - 1 && clock_now_ns() < end &&
	    poll(&p, 1, (int)((end - clock_now_ns()) / NSEC_PER_MSEC)) == 1)
		if ((n = read(pfd[0], out + len, cap - 1 - len)) > 0)
			len += (size_t)n;
	out[len] = '\0';
	close(pfd[0]);
	return test_wait_exit(pid, 10000);
}
