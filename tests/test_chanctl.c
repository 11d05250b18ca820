/*
 * test_chanctl.c: chanctl end to end against a real chand: every command,
 * both output modes (JSON checked by a small validating parser), and the
 * documented exit codes; the helpers of ctltest.h. The command line itself
 * (addresses, options, timeouts, JSON of any bytes) is test_chanctl_cli.c.
 *
 * SPDX-License-Identifier: BSD-2-Clause
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "clock.h"
#include "ctltest.h"

struct test_server srv;
char addr[64];
const char *env_addr = addr;
char sock_path[64];
static char sock_dir[32];

int
ctl_suite_init(void)
{
	char conf[128];

	snprintf(sock_dir, sizeof sock_dir, "/tmp/chanctl-test.XXXXXX");
	if (mkdtemp(sock_dir) == NULL)
		return -1;
	snprintf(sock_path, sizeof sock_path, "%s/chand.sock", sock_dir);
	snprintf(conf, sizeof conf, "unix_socket = %s\n", sock_path);
	if (test_server_start(&srv, conf) < 0)
		return -1;
	snprintf(addr, sizeof addr, "tcp://127.0.0.1:%d", srv.port);
	return 0;
}

int
ctl_suite_clean(void)
{
	int rc = 0;

	/* the chanctl suite's last test shut the server down through chanctl */
	if (srv.pid > 0)
		rc = test_server_stop(&srv) == 0 ? 0 : -1;
	unlink(sock_path);
	rmdir(sock_dir);
	return rc;
}

/* Drain fd into buf (NUL-terminated), up to 30 s. */
static void
drain(int fd, char *buf, size_t cap)
{
	size_t len = 0;
	struct pollfd p = { .fd = fd, .events = POLLIN };
	ssize_t n;

	while (len < cap - 1 && poll(&p, 1, 30000) == 1 && (n = read(fd, buf + len, cap - 1 - len)) > 0)
		len += (size_t)n;
	buf[len] = '\0';
}

/* Start chanctl with argv (argv[0] replaced, NULL-terminated); $CHAND_ADDR is env_addr. */
void
ctl_start(struct proc *p, const char **argv)
{
	const char *ctl_path = getenv("CHANCTL") ? getenv("CHANCTL") : "client/chanctl";
	int po[2], pe[2], pi[2];

	argv[0] = ctl_path;
	/* O_CLOEXEC: a chanctl left running must not hold another one's pipes open */
	CU_ASSERT_FATAL(pipe2(po, O_CLOEXEC) == 0 && pipe2(pe, O_CLOEXEC) == 0 &&
	    pipe2(pi, O_CLOEXEC) == 0);
	p->start = clock_now_ns();
	p->pid = fork();
	if (p->pid == 0) {
		dup2(pi[0], 0);
		dup2(po[1], 1);
		dup2(pe[1], 2);
		close(pi[1]);
		if (env_addr)
			setenv("CHAND_ADDR", env_addr, 1);
		else
			unsetenv("CHAND_ADDR");
		execv(ctl_path, (char *const *)argv);
		_exit(127);
	}
	close(pi[0]);
	close(po[1]);
	close(pe[1]);
	p->in = pi[1];
	p->out = po[0];
	p->err = pe[0];
}

/* Wait for p to end (killed after 30 s: -1) and collect its output and exit status into r. */
void
ctl_finish(struct proc *p, struct run *r)
{
	if (p->in >= 0)
		close(p->in);
	drain(p->out, r->out, sizeof r->out);
	drain(p->err, r->err, sizeof r->err);
	close(p->out);
	close(p->err);
	r->status = test_wait_exit(p->pid, 30000);
	r->secs = (double)(clock_now_ns() - p->start) / NSEC_PER_SEC;
}

/* p has not ended yet (it is not reaped: ctl_finish still collects it). */
bool
running(const struct proc *p)
{
	siginfo_t si = { 0 };

	return waitid(P_PID, (id_t)p->pid, &si, WEXITED | WNOHANG | WNOWAIT) == 0 && si.si_pid == 0;
}

/* Run chanctl with args (NULL-terminated), stdin from in (may be NULL). */
void
ctl(struct run *r, const char *in, ...)
{
	const char *argv[24];
	int argc = 1;
	struct proc p;
	va_list ap;

	va_start(ap, in);
	while (argc < 23 && (argv[argc] = va_arg(ap, const char *)) != NULL)
		argc++;
	va_end(ap);
	argv[argc] = NULL;
	ctl_start(&p, argv);
	if (in && write(p.in, in, strlen(in)) < 0)
		CU_FAIL("write stdin");
	close(p.in);
	p.in = -1;
	ctl_finish(&p, r);
}

/* ---- a small JSON validator: one document, nothing after it ----------------------- */

static const char *json_value(const char *p, int depth);

static const char *
ws(const char *p)
{
	while (*p == ' ' || *p == '\n' || *p == '\t' || *p == '\r')
		p++;
	return p;
}

static const char *
json_string(const char *p)
{
	if (*p++ != '"')
		return NULL;
	while (*p && *p != '"') {
		if ((unsigned char)*p < 0x20)
			return NULL;
		if (*p == '\\') {
			p++;
			if (*p == 'u') {
				for (int i = 1; i <= 4; i++)
					if (!isxdigit((unsigned char)p[i]))
						return NULL;
				p += 4;
			} else if (!strchr("\"\\/bfnrt", *p)) {
				return NULL;
			}
		}
		p++;
	}
	return *p == '"' ? p + 1 : NULL;
}

static const char *
json_list(const char *p, char close, bool keys, int depth)
{
	p = ws(p + 1);
	if (*p == close)
		return p + 1;
	for (;;) {
		if (keys) {
			if ((p = json_string(ws(p))) == NULL || *(p = ws(p)) != ':')
				return NULL;
			p++;
		}
		if ((p = json_value(p, depth + 1)) == NULL)
			return NULL;
		p = ws(p);
		if (*p == close)
			return p + 1;
		if (*p++ != ',')
			return NULL;
	}
}

static const char *
json_value(const char *p, int depth)
{
	p = ws(p);
	if (depth > 32)
		return NULL;
	if (*p == '{')
		return json_list(p, '}', true, depth);
	if (*p == '[')
		return json_list(p, ']', false, depth);
	if (*p == '"')
		return json_string(p);
	if (strncmp(p, "true", 4) == 0 || strncmp(p, "null", 4) == 0)
		return p + 4;
	if (strncmp(p, "false", 5) == 0)
		return p + 5;
	if (*p == '-' || isdigit((unsigned char)*p)) {
		char *end;

		strtod(p, &end);
		return end;
	}
	return NULL;
}

bool
json_valid(const char *doc)
{
	const char *end = json_value(doc, 0);

	return end != NULL && *ws(end) == '\0';
}

/* ---- tests ------------------------------------------------------------------------ */

static void
test_ping_and_usage(void)
{
	struct run r;

	ctl(&r, NULL, "ping", NULL);
	CU_ASSERT_EQUAL(r.status, 0);
	CU_ASSERT_PTR_NOT_NULL(strstr(r.out, "PONG"));
	ctl(&r, NULL, "--json", "ping", NULL);
	CU_ASSERT_EQUAL(r.status, 0);
	CU_ASSERT(json_valid(r.out));
	ctl(&r, NULL, "frobnicate", NULL);
	CU_ASSERT_EQUAL(r.status, 2);
	CU_ASSERT_PTR_NOT_NULL(strstr(r.err, "unknown command"));
	ctl(&r, NULL, "info", NULL);			/* missing argument */
	CU_ASSERT_EQUAL(r.status, 2);
	ctl(&r, NULL, "recv", "-t", "soon", "x", NULL);	/* not a duration */
	CU_ASSERT_EQUAL(r.status, 2);
	ctl(&r, NULL, "send", "-h", NULL);
	CU_ASSERT_EQUAL(r.status, 0);
	CU_ASSERT_PTR_NOT_NULL(strstr(r.out, "usage: chanctl send"));
	ctl(&r, NULL, "-h", NULL);
	CU_ASSERT_EQUAL(r.status, 0);
	CU_ASSERT_PTR_NOT_NULL(strstr(r.out, "exit codes"));
}


/* A connection waits in the listener's queue: chanctl reached it. */
bool
reached(int lfd)
{
	struct pollfd p = { .fd = lfd, .events = POLLIN };

	return poll(&p, 1, 0) == 1;
}

/* A loopback port bound while fd stays open, never listened on: connecting is refused. */
static int
refusing_port(int *fd)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t sl = sizeof sa;

	*fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (*fd < 0 || bind(*fd, (struct sockaddr *)&sa, sl) < 0 ||
	    getsockname(*fd, (struct sockaddr *)&sa, &sl) < 0)
		return -1;
	return ntohs(sa.sin_port);
}

static void
test_connection_failure(void)
{
	struct run r;
	char a[64];
	int fd, port = refusing_port(&fd);

	CU_ASSERT_FATAL(port > 0);
	snprintf(a, sizeof a, "tcp://127.0.0.1:%d", port);
	ctl(&r, NULL, "-s", a, "ping", NULL);
	CU_ASSERT_EQUAL(r.status, 3);
	CU_ASSERT_PTR_NOT_NULL(strstr(r.err, a));
	CU_ASSERT_PTR_NOT_NULL(strstr(r.err, "refused"));
	close(fd);
	ctl(&r, NULL, "-s", "unix:/nonexistent/chand.sock", "ping", NULL);
	CU_ASSERT_EQUAL(r.status, 3);
	CU_ASSERT_PTR_NOT_NULL(strstr(r.err, "unix:/nonexistent/chand.sock"));
	ctl(&r, NULL, "-s", "bogus://x", "ping", NULL);
	CU_ASSERT_EQUAL(r.status, 2);
}








static void
test_make_send_recv(void)
{
	struct run r;

	ctl(&r, NULL, "make", "ctl.q", "4", NULL);
	CU_ASSERT_EQUAL(r.status, 0);
	ctl(&r, NULL, "send", "ctl.q", "hello world", NULL);
	CU_ASSERT_EQUAL(r.status, 0);
	ctl(&r, "from stdin\n", "send", "ctl.q", NULL);
	CU_ASSERT_EQUAL(r.status, 0);
	ctl(&r, NULL, "info", "ctl.q", NULL);
	CU_ASSERT_EQUAL(r.status, 0);
	CU_ASSERT_PTR_NOT_NULL(strstr(r.out, "len"));
	CU_ASSERT_PTR_NOT_NULL(strstr(r.out, " 2\n"));
	ctl(&r, NULL, "--json", "info", "ctl.q", NULL);
	CU_ASSERT(json_valid(r.out));
	CU_ASSERT_PTR_NOT_NULL(strstr(r.out, "\"len\":2"));
	ctl(&r, NULL, "recv", "-n", "2", "ctl.q", NULL);
	CU_ASSERT_EQUAL(r.status, 0);
	CU_ASSERT_STRING_EQUAL(r.out, "hello world\nfrom stdin\n\n");
	/* nothing left: -t bounds the wait, exit 4 */
	ctl(&r, NULL, "recv", "-t", "150ms", "ctl.q", NULL);
	CU_ASSERT_EQUAL(r.status, 4);
	/* binary values in JSON come as base64 */
	ctl(&r, "\x01\x02\xff", "send", "ctl.q", NULL);
	ctl(&r, NULL, "--json", "recv", "ctl.q", NULL);
	CU_ASSERT_EQUAL(r.status, 0);
	CU_ASSERT(json_valid(r.out));
	CU_ASSERT_PTR_NOT_NULL(strstr(r.out, "\"base64\":\"AQL/\""));
}

static void
test_closed_and_not_found(void)
{
	struct run r;

	ctl(&r, NULL, "make", "ctl.c", "2", NULL);
	ctl(&r, NULL, "send", "ctl.c", "last", NULL);
	ctl(&r, NULL, "close", "ctl.c", NULL);
	CU_ASSERT_EQUAL(r.status, 0);
	ctl(&r, NULL, "close", "ctl.c", NULL);
	CU_ASSERT_EQUAL(r.status, 5);
	ctl(&r, NULL, "send", "ctl.c", "more", NULL);
	CU_ASSERT_EQUAL(r.status, 5);
	/* drains the buffered value, then the exhausted closed channel: exit 5 */
	ctl(&r, NULL, "recv", "-n", "5", "ctl.c", NULL);
	CU_ASSERT_EQUAL(r.status, 5);
	CU_ASSERT_STRING_EQUAL(r.out, "last\n");
	ctl(&r, NULL, "--json", "recv", "ctl.c", NULL);
	CU_ASSERT_EQUAL(r.status, 5);
	CU_ASSERT(json_valid(r.out));
	CU_ASSERT_PTR_NOT_NULL(strstr(r.out, "\"closed\":true"));
	ctl(&r, NULL, "info", "ctl.none", NULL);
	CU_ASSERT_EQUAL(r.status, 6);
	ctl(&r, NULL, "delete", "ctl.c", NULL);
	CU_ASSERT_EQUAL(r.status, 0);
	ctl(&r, NULL, "delete", "ctl.c", NULL);
	CU_ASSERT_EQUAL(r.status, 6);
}

/* close --error / --code, info showing it, recv printing it and exiting 5 (issue 17). */
static void
test_close_with_error(void)
{
	struct run r;

	ctl(&r, NULL, "make", "ctl.e", "2", NULL);
	ctl(&r, NULL, "send", "ctl.e", "last", NULL);
	ctl(&r, NULL, "close", "--error", "disk full", "--code", "28", "ctl.e", NULL);
	CU_ASSERT_EQUAL(r.status, 0);
	ctl(&r, NULL, "info", "ctl.e", NULL);
	CU_ASSERT_EQUAL(r.status, 0);
	CU_ASSERT_PTR_NOT_NULL(strstr(r.out, "close_code         28\n"));
	CU_ASSERT_PTR_NOT_NULL(strstr(r.out, "close_error        disk full\n"));
	ctl(&r, NULL, "--json", "info", "ctl.e", NULL);
	CU_ASSERT(json_valid(r.out));
	CU_ASSERT_PTR_NOT_NULL(strstr(r.out, "\"close_code\":28,\"close_error\":\"disk full\""));
	/* the value first, then the error, exit 5 */
	ctl(&r, NULL, "recv", "-n", "5", "ctl.e", NULL);
	CU_ASSERT_EQUAL(r.status, 5);
	CU_ASSERT_STRING_EQUAL(r.out, "last\n");
	CU_ASSERT_STRING_EQUAL(r.err, "chanctl: ctl.e: closed with error 28: disk full\n");
	ctl(&r, NULL, "--json", "recv", "ctl.e", NULL);
	CU_ASSERT_EQUAL(r.status, 5);
	CU_ASSERT(json_valid(r.out));
	CU_ASSERT_STRING_EQUAL(r.out,
	    "{\"values\":[],\"closed\":true,\"close_error\":{\"code\":28,\"message\":\"disk full\"}}\n");
	/* --error alone: code 1; a plain close shows no error */
	ctl(&r, NULL, "make", "ctl.e1", NULL);
	ctl(&r, NULL, "close", "ctl.e1", "--error", "quote \" and \\", NULL);
	CU_ASSERT_EQUAL(r.status, 0);
	ctl(&r, NULL, "--json", "recv", "ctl.e1", NULL);
	CU_ASSERT(json_valid(r.out));
	CU_ASSERT_PTR_NOT_NULL(strstr(r.out, "{\"code\":1,\"message\":\"quote \\\" and \\\\\"}"));
	ctl(&r, NULL, "close", "ctl.e1", "--error", "again", NULL);
	CU_ASSERT_EQUAL(r.status, 5);
	ctl(&r, NULL, "make", "ctl.e2", NULL);
	ctl(&r, NULL, "close", "ctl.e2", NULL);
	ctl(&r, NULL, "info", "ctl.e2", NULL);
	CU_ASSERT_PTR_NULL(strstr(r.out, "close_"));
	ctl(&r, NULL, "recv", "ctl.e2", NULL);
	CU_ASSERT_EQUAL(r.status, 5);
	CU_ASSERT_STRING_EQUAL(r.err, "chanctl: ctl.e2: closed\n");
	/* usage errors: a bad code, the options on another command, a message too long */
	ctl(&r, NULL, "make", "ctl.e3", NULL);
	ctl(&r, NULL, "close", "--code", "-1", "ctl.e3", NULL);
	CU_ASSERT_EQUAL(r.status, 2);
	ctl(&r, NULL, "info", "--error", "x", "ctl.e3", NULL);
	CU_ASSERT_EQUAL(r.status, 2);
	CU_ASSERT_PTR_NOT_NULL(strstr(r.err, "'--error' belongs to the close command"));
	ctl(&r, NULL, "close", "--error", "\xff", "ctl.e3", NULL);
	CU_ASSERT_EQUAL(r.status, 1);
	CU_ASSERT_PTR_NOT_NULL(strstr(r.err, "bad request"));
	ctl(&r, NULL, "info", "ctl.e3", NULL);
	CU_ASSERT_PTR_NOT_NULL(strstr(r.out, "closed             no\n"));
}

static void
test_ls(void)
{
	struct run r;

	ctl(&r, NULL, "make", "ls.one", NULL);
	ctl(&r, NULL, "make", "ls.two", "3", NULL);
	ctl(&r, NULL, "ls", "ls.*", NULL);
	CU_ASSERT_EQUAL(r.status, 0);
	CU_ASSERT(strncmp(r.out, "NAME", 4) == 0);
	CU_ASSERT_PTR_NOT_NULL(strstr(r.out, "ls.one"));
	CU_ASSERT_PTR_NOT_NULL(strstr(r.out, "ls.two"));
	CU_ASSERT_PTR_NULL(strstr(r.out, "ctl.q"));
	ctl(&r, NULL, "--json", "ls", NULL);
	CU_ASSERT(json_valid(r.out));
	CU_ASSERT_PTR_NOT_NULL(strstr(r.out, "\"name\":\"ls.two\""));
}

/* A raw client blocked in RECV shows up in waiters and clients; cancel ends it. */
static void
test_waiters_clients_cancel(void)
{
	struct test_conn c;
	struct proto_reply rep;
	struct run r;
	char idbuf[32];
	const char *p;

	ctl(&r, NULL, "make", "ctl.w", NULL);
	CU_ASSERT_FATAL(test_conn_open(&c, srv.port, true) == 0);
	st_recv(&c, "ctl.w", PROTO_WAIT_FOREVER);
	CU_ASSERT_FATAL(st_await_waiters(&c, "ctl.w", 0, 1));
	ctl(&r, NULL, "waiters", NULL);
	CU_ASSERT_EQUAL(r.status, 0);
	CU_ASSERT_PTR_NOT_NULL(strstr(r.out, "recv ctl.w"));
	CU_ASSERT_PTR_NOT_NULL(strstr(r.out, "RECV"));
	ctl(&r, NULL, "--json", "waiters", NULL);
	CU_ASSERT(json_valid(r.out));
	CU_ASSERT_PTR_NOT_NULL(strstr(r.out, "\"channel\":\"ctl.w\""));
	/* find the client's id in the JSON: "client":N */
	p = strstr(r.out, "\"client\":");
	CU_ASSERT_PTR_NOT_NULL_FATAL(p);
	snprintf(idbuf, sizeof idbuf, "%ld", strtol(p + 9, NULL, 10));
	ctl(&r, NULL, "clients", NULL);
	CU_ASSERT_EQUAL(r.status, 0);
	CU_ASSERT_PTR_NOT_NULL(strstr(r.out, "PEER"));
	ctl(&r, NULL, "--json", "clients", NULL);
	CU_ASSERT(json_valid(r.out));
	ctl(&r, NULL, "cancel", idbuf, NULL);
	CU_ASSERT_EQUAL(r.status, 0);
	CU_ASSERT_PTR_NOT_NULL(strstr(r.out, "1"));
	st_reply(&c, OP_RECV, &rep);
	CU_ASSERT_EQUAL(rep.status, STATUS_CANCELED);
	ctl(&r, NULL, "cancel", "987654", NULL);
	CU_ASSERT_EQUAL(r.status, 6);
	ctl(&r, NULL, "cancel", "x", NULL);
	CU_ASSERT_EQUAL(r.status, 2);
	test_conn_close(&c);
}

/* Is s in chanctl's output of `links` (or `jobs`) within 10 s? */
static bool
await_listed(const char *cmd, const char *s, bool want)
{
	struct run r;

	for (int i = 0; i < 1000; i++) {
		ctl(&r, NULL, cmd, NULL);
		if (r.status == 0 && (strstr(r.out, s) != NULL) == want)
			return true;
		usleep(10000);
	}
	return false;
}

static void
test_links_jobs(void)
{
	struct proto_request l = { .op = OP_OR_DONE, .name = "ctl.lin", .name_len = 7 };
	struct test_conn c;
	struct proto_out o;
	struct proto_reply rep;
	struct run r;

	ctl(&r, NULL, "make", "ctl.lin", NULL);
	CU_ASSERT_FATAL(test_conn_open(&c, srv.port, true) == 0);
	proto_out_init(&o);
	CU_ASSERT_FATAL(proto_req_link(&o, c.next_id++, PROTO_WAIT_FOREVER, &l) == 0);
	l = (struct proto_request){ .op = OP_FAN_OUT, .name = "ctl.lin", .name_len = 7,
	    .stage = "identity", .stage_len = 8, .count = 1 };
	CU_ASSERT_FATAL(proto_req_link(&o, c.next_id++, PROTO_WAIT_FOREVER, &l) == 0);
	st_write(&c, &o);
	proto_out_destroy(&o);
	st_reply(&c, OP_OR_DONE, &rep);
	CU_ASSERT_EQUAL(rep.status, STATUS_STARTED);
	st_reply(&c, OP_FAN_OUT, &rep);
	CU_ASSERT_EQUAL(rep.status, STATUS_STARTED);
	CU_ASSERT(st_await_waiters(&c, "ctl.lin", 0, 2));
	ctl(&r, NULL, "links", NULL);
	CU_ASSERT_EQUAL(r.status, 0);
	CU_ASSERT_PTR_NOT_NULL(strstr(r.out, "AGE_MS"));
	CU_ASSERT_PTR_NOT_NULL(strstr(r.out, "OR_DONE"));
	CU_ASSERT_PTR_NOT_NULL(strstr(r.out, "FAN_OUT"));
	CU_ASSERT_PTR_NOT_NULL(strstr(r.out, "recv ctl.lin"));
	ctl(&r, NULL, "jobs", NULL);
	CU_ASSERT_EQUAL(r.status, 0);
	CU_ASSERT_PTR_NOT_NULL(strstr(r.out, "FAN_OUT"));
	CU_ASSERT_PTR_NULL(strstr(r.out, "OR_DONE"));
	ctl(&r, NULL, "--json", "links", NULL);
	CU_ASSERT(json_valid(r.out));
	CU_ASSERT_PTR_NOT_NULL(strstr(r.out, "\"op\":\"OR_DONE\""));
	CU_ASSERT_PTR_NOT_NULL(strstr(r.out, "\"count\":2"));
	ctl(&r, NULL, "--json", "jobs", NULL);
	CU_ASSERT(json_valid(r.out));
	CU_ASSERT_PTR_NOT_NULL(strstr(r.out, "\"count\":1"));
	ctl(&r, NULL, "jobs", "-h", NULL);
	CU_ASSERT_EQUAL(r.status, 0);
	ctl(&r, NULL, "links", "extra", NULL);
	CU_ASSERT_EQUAL(r.status, 2);
	test_conn_close(&c);		/* the creator's disconnect stops both */
	CU_ASSERT(await_listed("links", "OR_DONE", false));
	CU_ASSERT(await_listed("jobs", "FAN_OUT", false));
}

static void
test_stats(void)
{
	struct run r;

	ctl(&r, NULL, "stats", NULL);
	CU_ASSERT_EQUAL(r.status, 0);
	CU_ASSERT_PTR_NOT_NULL(strstr(r.out, "connections"));
	ctl(&r, NULL, "--json", "stats", NULL);
	CU_ASSERT(json_valid(r.out));
	CU_ASSERT_PTR_NOT_NULL(strstr(r.out, "\"channels\":"));
}

static void
test_shutdown(void)
{
	struct run r;

	ctl(&r, NULL, "shutdown", NULL);
	CU_ASSERT_EQUAL(r.status, 0);
	/* chand exits on its own, cleanly */
	CU_ASSERT_EQUAL(test_wait_exit(srv.pid, 10000), 0);
	srv.pid = 0;
	test_server_kill(&srv);	/* nothing left to kill: removes the temp dir */
	ctl(&r, NULL, "ping", NULL);
	CU_ASSERT_EQUAL(r.status, 3);
}

static void
register_suites(void)
{
	CU_pSuite s = test_suite("chanctl", ctl_suite_init, ctl_suite_clean);

	test_add(s, "ping, usage errors, -h", test_ping_and_usage);
	test_add(s, "connection failures name the address", test_connection_failure);
	test_add(s, "make, send (argument, stdin), info, recv, -t timeout", test_make_send_recv);
	test_add(s, "closed (exit 5) and not found (exit 6)", test_closed_and_not_found);
	test_add(s, "close --error, info and recv show the close error", test_close_with_error);
	test_add(s, "ls as a table and as JSON", test_ls);
	test_add(s, "waiters, clients, cancel", test_waiters_clients_cancel);
	test_add(s, "links and jobs", test_links_jobs);
	test_add(s, "stats", test_stats);
	test_add(s, "shutdown", test_shutdown);
	register_chanctl_cli();
	register_chanctl_ack();
}

int
main(int argc, char **argv)
{
	return test_main(argc, argv, register_suites);
}
