/*
 * test_systemd.c: chand as systemd runs it, without systemd: a fake
 * $NOTIFY_SOCKET listener receives READY=1, STATUS=, WATCHDOG=1 and
 * STOPPING=1; socket activation hands chand a listening socket on fd 3
 * ($LISTEN_FDS, $LISTEN_PID), as chand.socket does; and SIGHUP reloads
 * (ExecReload). The Prometheus endpoint is test_metrics.c's.
 *
 * SPDX-License-Identifier: BSD-2-Clause
 */
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "clock.h"
#include "srvtest.h"

struct notify {
	int fd;
	char path[108];
	char dir[32];
};

static void
notify_open(struct notify *n)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };

	snprintf(n->dir, sizeof n->dir, "/tmp/chand-sd.XXXXXX");
	CU_ASSERT_FATAL(mkdtemp(n->dir) != NULL);
	snprintf(n->path, sizeof n->path, "%s/notify", n->dir);
	strcpy(sun.sun_path, n->path);
	n->fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	CU_ASSERT_FATAL(n->fd >= 0);
	CU_ASSERT_FATAL(bind(n->fd, (struct sockaddr *)&sun, sizeof sun) == 0);
}

static void
notify_close(struct notify *n)
{
	close(n->fd);
	unlink(n->path);
	rmdir(n->dir);
}

/* Wait (up to timeout_ms) for a datagram containing want; true if it came. */
static bool
notify_await(struct notify *n, const char *want, int timeout_ms)
{
	int64_t end = clock_now_ns() + (int64_t)timeout_ms * NSEC_PER_MSEC;
	char buf[1024];

	for (;;) {
		struct pollfd p = { .fd = n->fd, .events = POLLIN };
		int64_t left = (end - clock_now_ns()) / NSEC_PER_MSEC;
		ssize_t len;

		if (left <= 0 || poll(&p, 1, (int)left) != 1)
			return false;
		if ((len = recv(n->fd, buf, sizeof buf - 1, 0)) <= 0)
			return false;
		buf[len] = '\0';
		if (strstr(buf, want))
			return true;
	}
}

static void
test_notify_and_watchdog(void)
{
	struct test_server s;
	struct notify n;
	int64_t start;

	notify_open(&n);
	setenv("NOTIFY_SOCKET", n.path, 1);
	setenv("WATCHDOG_USEC", "200000", 1);	/* 200 ms: a ping every 100 ms */
	CU_ASSERT_FATAL(test_server_start(&s, NULL) == 0);
	unsetenv("NOTIFY_SOCKET");
	unsetenv("WATCHDOG_USEC");
	CU_ASSERT(notify_await(&n, "READY=1", 10000));
	start = clock_now_ns();
	CU_ASSERT(notify_await(&n, "WATCHDOG=1", 10000));
	CU_ASSERT(notify_await(&n, "WATCHDOG=1", 10000));
	/* two pings at half of 200 ms: well under 10 s even on a loaded machine */
	CU_ASSERT(clock_now_ns() - start < 10 * NSEC_PER_SEC);
	CU_ASSERT_EQUAL(test_server_stop(&s), 0);
	CU_ASSERT(notify_await(&n, "STOPPING=1", 10000));
	notify_close(&n);
}

static void
test_status_lines(void)
{
	struct test_server s;
	struct notify n;

	notify_open(&n);
	setenv("NOTIFY_SOCKET", n.path, 1);
	CU_ASSERT_FATAL(test_server_start(&s, NULL) == 0);
	unsetenv("NOTIFY_SOCKET");
	CU_ASSERT(notify_await(&n, "STATUS=ready", 10000));
	CU_ASSERT_EQUAL(test_server_stop(&s), 0);
	CU_ASSERT(notify_await(&n, "STATUS=shutting down", 10000));
	notify_close(&n);
}

/* chand started as systemd would start it, its stderr kept in a file. */
struct activation {
	char dir[32];
	char conf[64];
	char err[64];
	pid_t pid;
};

/*
 * Play systemd: run chand -f with conf, LISTEN_FDS=1, fd 3 = lfd (-1: left
 * as it is) and, when own_pid, LISTEN_PID = chand's own pid.
 */
static void
activate(struct activation *a, const char *conf, int lfd, bool own_pid)
{
	const char *chand = getenv("CHAND") ? getenv("CHAND") : "server/chand";
	FILE *f;

	snprintf(a->dir, sizeof a->dir, "/tmp/chand-sa.XXXXXX");
	CU_ASSERT_FATAL(mkdtemp(a->dir) != NULL);
	snprintf(a->conf, sizeof a->conf, "%s/c.conf", a->dir);
	snprintf(a->err, sizeof a->err, "%s/err", a->dir);
	CU_ASSERT_FATAL((f = fopen(a->conf, "w")) != NULL);
	fputs(conf, f);
	fclose(f);
	a->pid = fork();
	CU_ASSERT_FATAL(a->pid >= 0);
	if (a->pid == 0) {
		char pidbuf[16];
		int efd = open(a->err, O_WRONLY | O_CREAT | O_TRUNC, 0600);

		if (efd >= 0)
			dup2(efd, STDERR_FILENO);
		if (lfd >= 0)
			dup2(lfd, 3);
		snprintf(pidbuf, sizeof pidbuf, "%d", (int)getpid());
		if (own_pid)
			setenv("LISTEN_PID", pidbuf, 1);
		else
			unsetenv("LISTEN_PID");
		setenv("LISTEN_FDS", "1", 1);
		execl(chand, chand, "-f", "-c", a->conf, (char *)NULL);
		_exit(127);
	}
}

/* Did chand's stderr say needle? */
static bool
activation_said(struct activation *a, const char *needle)
{
	char buf[8192];
	size_t n = 0;
	FILE *f = fopen(a->err, "r");

	if (f != NULL) {
		n = fread(buf, 1, sizeof buf - 1, f);
		fclose(f);
	}
	buf[n] = '\0';
	if (strstr(buf, needle) == NULL)
		fprintf(stderr, "chand's stderr lacks \"%s\": %s\n", needle, buf);
	return strstr(buf, needle) != NULL;
}

static void
activation_done(struct activation *a)
{
	unlink(a->conf);
	unlink(a->err);
	rmdir(a->dir);
}

/* A TCP socket listening on addr, port 0; *port gets the port. */
static int
listening_socket(in_addr_t addr, uint16_t *port)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(addr) };
	socklen_t len = sizeof sa;
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	CU_ASSERT_FATAL(fd >= 0);
	CU_ASSERT_FATAL(bind(fd, (struct sockaddr *)&sa, sizeof sa) == 0);
	CU_ASSERT_FATAL(listen(fd, 16) == 0);
	CU_ASSERT_FATAL(getsockname(fd, (struct sockaddr *)&sa, &len) == 0);
	*port = ntohs(sa.sin_port);
	return fd;
}

/* Socket activation: the test plays systemd and owns the listening socket. */
static void
test_socket_activation(void)
{
	struct activation a;
	struct test_conn c;
	struct proto_reply r;
	uint16_t port;
	int lfd = listening_socket(INADDR_LOOPBACK, &port);

	/* a config whose own listener is unusable: only the inherited socket works */
	activate(&a, "listen = \"\"\nlog_level = error\n", lfd, true);
	close(lfd);
	/* the socket already listens: connecting cannot race chand's start */
	CU_ASSERT_FATAL(test_conn_open(&c, port, true) == 0);
	CU_ASSERT_EQUAL(st_make(&c, "activated", 1), STATUS_OK);
	CU_ASSERT_EQUAL(st_send_wait(&c, "activated", "yes", 0), STATUS_OK);
	st_name_op(&c, OP_LEN, "activated");
	st_reply(&c, OP_LEN, &r);
	CU_ASSERT_EQUAL(r.n, 1);
	test_conn_close(&c);
	kill(a.pid, SIGTERM);
	CU_ASSERT_EQUAL(test_wait_exit(a.pid, 10000), 0);
	activation_done(&a);
}

/*
 * $LISTEN_FDS is not activation unless $LISTEN_PID is chand's pid and fd 3
 * listens: protected mode then still checks listen (which binds 0.0.0.0 but
 * is never connected to).
 */
static void
test_activation_not_ours(void)
{
	static const char conf[] = "listen = 0.0.0.0\nport = 0\n";
	struct activation a;
	int devnull;

	activate(&a, conf, -1, false);
	CU_ASSERT_EQUAL(test_wait_exit(a.pid, 10000), 1);
	CU_ASSERT(activation_said(&a, "key 'listen': protected mode"));
	activation_done(&a);
	/* chand's pid, but fd 3 is no socket */
	CU_ASSERT_FATAL((devnull = open("/dev/null", O_RDONLY)) >= 0);
	activate(&a, conf, devnull, true);
	close(devnull);
	CU_ASSERT_EQUAL(test_wait_exit(a.pid, 10000), 1);
	CU_ASSERT(activation_said(&a, "socket-activation-ignored fd=3"));
	CU_ASSERT(activation_said(&a, "key 'listen': protected mode"));
	activation_done(&a);
}

/*
 * An inherited socket on a non-loopback address is a plaintext listener
 * there: refused in protected mode, as listen would be, even with
 * authentication on; protected_mode = no lets it serve. Only loopback
 * traffic: the socket is bound to 0.0.0.0 and reached through 127.0.0.1.
 */
static void
test_activation_protected(void)
{
	static const char token[] = "token = t:"
	    "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08\n";
	struct activation a;
	struct test_conn c;
	uint16_t port;
	int lfd = listening_socket(INADDR_ANY, &port);

	activate(&a, "", lfd, true);
	CU_ASSERT_EQUAL(test_wait_exit(a.pid, 10000), 1);
	CU_ASSERT(activation_said(&a, "key 'protected_mode': protected mode: socket activation"));
	CU_ASSERT(activation_said(&a, "fd 3, 0.0.0.0 port"));
	activation_done(&a);
	activate(&a, token, lfd, true);
	CU_ASSERT_EQUAL(test_wait_exit(a.pid, 10000), 1);
	CU_ASSERT(activation_said(&a, "key 'protected_mode'"));
	activation_done(&a);
	activate(&a, "protected_mode = no\n", lfd, true);
	close(lfd);
	CU_ASSERT_FATAL(test_conn_open(&c, port, true) == 0);
	CU_ASSERT_EQUAL(st_make(&c, "activated.any", 1), STATUS_OK);
	test_conn_close(&c);
	kill(a.pid, SIGTERM);
	CU_ASSERT_EQUAL(test_wait_exit(a.pid, 10000), 0);
	activation_done(&a);
}

static void
write_conf(struct test_server *s, const char *text)
{
	FILE *f = fopen(s->conf, "w");

	CU_ASSERT_FATAL(f != NULL);
	fputs(text, f);
	fclose(f);
}

/* SIGHUP (systemd's ExecReload) re-reads the file: limits change, restart-only keys are named. */
static void
test_reload(void)
{
	struct test_server s;
	struct test_conn c;
	struct proto_reply r;

	CU_ASSERT_FATAL(test_server_start(&s, "max_pending = 1\n") == 0);
	CU_ASSERT_FATAL(test_conn_open(&c, s.port, true) == 0);
	CU_ASSERT_EQUAL(st_make(&c, "hup", 0), STATUS_OK);
	st_recv(&c, "hup", PROTO_WAIT_FOREVER);
	st_recv(&c, "hup", PROTO_WAIT_FOREVER);	/* over max_pending = 1 */
	st_reply(&c, OP_RECV, &r);
	CU_ASSERT_EQUAL(r.status, STATUS_LIMIT);
	write_conf(&s, "max_pending = 3\nworkers = 2\n");
	kill(s.pid, SIGHUP);
	CU_ASSERT(test_server_await_log(&s, "reload file="));
	CU_ASSERT(test_server_log_has(&s, "changed=max_pending"));
	CU_ASSERT(test_server_log_has(&s, "reload-ignored keys=workers"));
	st_recv(&c, "hup", PROTO_WAIT_FOREVER);	/* now the second pending one fits */
	CU_ASSERT(st_await_waiters(&c, "hup", 0, 2));
	/* a broken file keeps the running configuration */
	write_conf(&s, "max_pending = lots\n");
	kill(s.pid, SIGHUP);
	CU_ASSERT(test_server_await_log(&s, "reload-failed"));
	CU_ASSERT(test_server_log_has(&s, "key 'max_pending'"));
	st_recv(&c, "hup", PROTO_WAIT_FOREVER);	/* third of 3: still allowed */
	CU_ASSERT(st_await_waiters(&c, "hup", 0, 3));
	test_conn_close(&c);
	CU_ASSERT_EQUAL(test_server_stop(&s), 0);
}

static void
register_suites(void)
{
	CU_pSuite s = test_suite("systemd", NULL, NULL);

	test_add(s, "sd_notify READY=1, WATCHDOG=1, STOPPING=1", test_notify_and_watchdog);
	test_add(s, "STATUS= lines at start and shutdown", test_status_lines);
	test_add(s, "socket activation on an inherited fd", test_socket_activation);
	test_add(s, "LISTEN_FDS alone, or fd 3 no socket: not activation", test_activation_not_ours);
	test_add(s, "protected mode refuses an inherited non-loopback socket", test_activation_protected);
	test_add(s, "SIGHUP reloads limits, names restart-only keys, keeps a bad file out", test_reload);
}

int
main(int argc, char **argv)
{
	return test_main(argc, argv, register_suites);
}
