/*
 * test_chanctl.c: chanctl end to end against a real chand: every command,
 * both output modes (JSON checked by a small validating parser), and the
 * documented exit codes.
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
#include "srvtest.h"

static struct test_server srv;
static char addr[64];
static const char *env_addr = addr;	/* chanctl's $CHAND_ADDR */
static char sock_dir[] = "/tmp/chanctl-test.XXXXXX";
static char sock_path[64];		/* chand listens here too */

static int
suite_init(void)
{
	char conf[128];

	if (mkdtemp(sock_dir) == NULL)
		return -1;
	snprintf(sock_path, sizeof sock_path, "%s/chand.sock", sock_dir);
	snprintf(conf, sizeof conf, "unix_socket = %s\n", sock_path);
	if (test_server_start(&srv, conf) < 0)
		return -1;
	snprintf(addr, sizeof addr, "tcp://127.0.0.1:%d", srv.port);
	return 0;
}

static int
suite_clean(void)
{
	int rc = 0;

	/* the last test shut the server down through chanctl */
	if (srv.pid > 0)
		rc = test_server_stop(&srv) == 0 ? 0 : -1;
	unlink(sock_path);
	rmdir(sock_dir);
	return rc;
}

struct run {
	int status;
	double secs;			/* how long it ran */
	char out[8192];
	char err[2048];
};

/* A chanctl running in the background: its pid and the ends of its pipes. */
struct proc {
	pid_t pid;
	int in, out, err;
	int64_t start;
};

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
static void
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
static void
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
static bool
running(const struct proc *p)
{
	siginfo_t si = { 0 };

	return waitid(P_PID, (id_t)p->pid, &si, WEXITED | WNOHANG | WNOWAIT) == 0 && si.si_pid == 0;
}

/* Run chanctl with args (NULL-terminated), stdin from in (may be NULL). */
static void
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

static bool
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


/*
 * A listener on ip:port (port 0: any) that never answers: the kernel
 * accepts for it, so a chanctl that reaches it connects, says HELLO and waits.
 */
static int
silent_listener(const char *ip, int port, int *portp)
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

/* A connection waits in the listener's queue: chanctl reached it. */
static bool
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

/* chanctl -s addr ping reaches the suite's chand. */
static void
ping_via(const char *fmt, ...)
{
	char a[160];
	struct run r;
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(a, sizeof a, fmt, ap);
	va_end(ap);
	ctl(&r, NULL, "-s", a, "ping", NULL);
	if (r.status != 0)
		fprintf(stderr, "chanctl -s %s ping: %s", a, r.err);
	CU_ASSERT_EQUAL(r.status, 0);
	CU_ASSERT_PTR_NOT_NULL(strstr(r.out, "PONG"));
}

/* Every form of chan_dial's one parser, through -s and $CHAND_ADDR. */
static void
test_address_forms(void)
{
	char ip[32], a[80];
	struct run r;
	int lfd = -1, port;

	ping_via("127.0.0.1:%d", srv.port);
	ping_via("localhost:%d", srv.port);
	ping_via("tcp://localhost:%d", srv.port);
	ping_via("unix:%s", sock_path);
	ping_via("%s", sock_path);
	snprintf(a, sizeof a, "localhost:%d", srv.port);
	env_addr = a;
	ctl(&r, NULL, "ping", NULL);
	CU_ASSERT_EQUAL(r.status, 0);
	env_addr = sock_path;
	ctl(&r, NULL, "ping", NULL);
	CU_ASSERT_EQUAL(r.status, 0);
	env_addr = addr;
	/* a bare host means port 7420: a loopback address of the test's own, where 7420 is free */
	for (int i = 0; i < 16 && lfd < 0; i++) {
		snprintf(ip, sizeof ip, "127.42.%d.%d", (getpid() >> 8) & 0xff, (getpid() + i) % 254 + 1);
		lfd = silent_listener(ip, 7420, &port);
	}
	CU_ASSERT_FATAL(lfd >= 0);
	ctl(&r, NULL, "-s", ip, "-t", "300ms", "ping", NULL);
	CU_ASSERT_EQUAL(r.status, 4);		/* connected, and no HELLO came back */
	CU_ASSERT(reached(lfd));
	close(lfd);
	if ((lfd = silent_listener("::1", 0, &port)) >= 0) {
		snprintf(a, sizeof a, "[::1]:%d", port);
		ctl(&r, NULL, "-s", a, "-t", "300ms", "ping", NULL);
		CU_ASSERT_EQUAL(r.status, 4);
		CU_ASSERT(reached(lfd));
		close(lfd);
	}
	/* not an address: a usage error that says what is */
	ctl(&r, NULL, "-s", "::1", "ping", NULL);
	CU_ASSERT_EQUAL(r.status, 2);
	CU_ASSERT_PTR_NOT_NULL(strstr(r.err, "not a server address"));
	ctl(&r, NULL, "-s", "localhost:0", "ping", NULL);
	CU_ASSERT_EQUAL(r.status, 2);
}

/* A host that does not resolve is named as such (RFC 6761: .invalid never resolves). */
static void
test_unresolvable_host(void)
{
	struct run r;

	ctl(&r, NULL, "-s", "nonexistent.invalid", "ping", NULL);
	CU_ASSERT_EQUAL(r.status, 3);
	CU_ASSERT_PTR_NOT_NULL(strstr(r.err, "nonexistent.invalid"));
	CU_ASSERT_PTR_NOT_NULL(strstr(r.err, "did not resolve"));
	CU_ASSERT_PTR_NULL(strstr(r.err, "No route to host"));
	ctl(&r, NULL, "-s", "tcp://nonexistent.invalid:7420", "ping", NULL);
	CU_ASSERT_EQUAL(r.status, 3);
	CU_ASSERT_PTR_NOT_NULL(strstr(r.err, "did not resolve"));
}

/* Options anywhere, --help on every command, help, --version. */
static void
test_option_order_and_help(void)
{
	struct run r;

	ctl(&r, NULL, "make", "ctl.o", "4", NULL);
	ctl(&r, NULL, "recv", "ctl.o", "-t", "150ms", NULL);	/* options after the arguments */
	CU_ASSERT_EQUAL(r.status, 4);
	ctl(&r, NULL, "ls", "--json", NULL);			/* global options after the command */
	CU_ASSERT_EQUAL(r.status, 0);
	CU_ASSERT(json_valid(r.out));
	ctl(&r, NULL, "send", "ctl.o", "--timeout", "2s", "one", NULL);
	CU_ASSERT_EQUAL(r.status, 0);
	ctl(&r, NULL, "send", "ctl.o", "-s", addr, "--", "-2", NULL);	/* "--": a value starting with '-' */
	CU_ASSERT_EQUAL(r.status, 0);
	ctl(&r, NULL, "recv", "ctl.o", "--json", "-n", "2", "-t", "2s", NULL);
	CU_ASSERT_EQUAL(r.status, 0);
	CU_ASSERT_STRING_EQUAL(r.out, "{\"values\":[\"one\",\"-2\"],\"closed\":false}\n");
	ctl(&r, NULL, "info", "--server", addr, "ctl.o", "--json", NULL);
	CU_ASSERT_EQUAL(r.status, 0);
	CU_ASSERT_PTR_NOT_NULL(strstr(r.out, "\"len\":0"));
	/* --help and -h on every command: its usage, exit 0, no server needed */
	env_addr = "unix:/nonexistent/chand.sock";
	ctl(&r, NULL, "recv", "--help", NULL);
	CU_ASSERT_EQUAL(r.status, 0);
	CU_ASSERT_PTR_NOT_NULL(strstr(r.out, "usage: chanctl recv"));
	CU_ASSERT_PTR_NOT_NULL(strstr(r.out, "-n COUNT"));
	ctl(&r, NULL, "ls", "ls.*", "--help", NULL);
	CU_ASSERT_EQUAL(r.status, 0);
	CU_ASSERT_PTR_NOT_NULL(strstr(r.out, "usage: chanctl ls"));
	ctl(&r, NULL, "--help", NULL);
	CU_ASSERT_EQUAL(r.status, 0);
	CU_ASSERT_PTR_NOT_NULL(strstr(r.out, "exit codes"));
	ctl(&r, NULL, "help", NULL);
	CU_ASSERT_EQUAL(r.status, 0);
	CU_ASSERT_PTR_NOT_NULL(strstr(r.out, "commands:"));
	ctl(&r, NULL, "help", "send", NULL);
	CU_ASSERT_EQUAL(r.status, 0);
	CU_ASSERT_PTR_NOT_NULL(strstr(r.out, "usage: chanctl send"));
	ctl(&r, NULL, "help", "frobnicate", NULL);
	CU_ASSERT_EQUAL(r.status, 2);
	CU_ASSERT_PTR_NOT_NULL(strstr(r.err, "unknown command"));
	ctl(&r, NULL, "--version", NULL);
	CU_ASSERT_EQUAL(r.status, 0);
	CU_ASSERT_STRING_EQUAL(r.out, "chanctl " PACKAGE_VERSION "\n");
	env_addr = addr;
	/* still usage errors: an option of another command, a bad count, a missing argument */
	ctl(&r, NULL, "ping", "-n", "2", NULL);
	CU_ASSERT_EQUAL(r.status, 2);
	ctl(&r, NULL, "recv", "ctl.o", "-n", "0", NULL);
	CU_ASSERT_EQUAL(r.status, 2);
	ctl(&r, NULL, "recv", "ctl.o", "-n", "2x", NULL);
	CU_ASSERT_EQUAL(r.status, 2);
	ctl(&r, NULL, "ping", "-t", NULL);
	CU_ASSERT_EQUAL(r.status, 2);
	CU_ASSERT_PTR_NOT_NULL(strstr(r.err, "needs an argument"));
}

/* Long options are exact: --server is the address, a prefix is an error. */
static void
test_long_options_exact(void)
{
	struct run r;

	env_addr = "unix:/nonexistent/chand.sock";	/* only --server can reach chand */
	ctl(&r, NULL, "--server", addr, "ping", NULL);
	CU_ASSERT_EQUAL(r.status, 0);
	ctl(&r, NULL, "ping", "--server=unix:/nonexistent", "--server", addr, NULL);	/* the last wins */
	CU_ASSERT_EQUAL(r.status, 0);
	ctl(&r, NULL, "--server-name", "chand.example", "--server", addr, "ping", NULL);
	CU_ASSERT_EQUAL(r.status, 0);		/* exact names still work (tls:// only) */
	ctl(&r, NULL, "--serv", addr, "ping", NULL);	/* ambiguous */
	CU_ASSERT_EQUAL(r.status, 2);
	CU_ASSERT_PTR_NOT_NULL(strstr(r.err, "--serv"));
	CU_ASSERT_PTR_NOT_NULL(strstr(r.err, "--server-name"));
	ctl(&r, NULL, "--server-n", "x", "--server", addr, "ping", NULL);	/* unique, still refused */
	CU_ASSERT_EQUAL(r.status, 2);
	CU_ASSERT_PTR_NOT_NULL(strstr(r.err, "'--server-n'"));
	ctl(&r, NULL, "--js", "--server", addr, "ping", NULL);
	CU_ASSERT_EQUAL(r.status, 2);
	ctl(&r, NULL, "ping", "--server", addr, "--time=2s", NULL);
	CU_ASSERT_EQUAL(r.status, 2);
	CU_ASSERT_PTR_NOT_NULL(strstr(r.err, "--timeout"));
	env_addr = addr;
}

/*
 * A listener that never answers: -t is the whole budget (dial, HELLO and
 * the operation), the default is 5 s, and send and recv have none.
 */
static void
test_timeouts(void)
{
	const char *rargv[] = { NULL, "recv", "ctl.wait.r", NULL };
	const char *sargv[] = { NULL, "send", "ctl.wait.s", "patience", NULL };
	struct proc rp, sp;
	struct test_conn c;
	struct run r, rr, sr;
	char a[64];
	int lfd, port;

	CU_ASSERT_FATAL((lfd = silent_listener("127.0.0.1", 0, &port)) >= 0);
	snprintf(a, sizeof a, "127.0.0.1:%d", port);
	ctl(&r, NULL, "-s", a, "-t", "1s", "ping", NULL);
	CU_ASSERT_EQUAL(r.status, 4);
	CU_ASSERT(r.secs >= 0.9 && r.secs < 1.8);
	ctl(&r, NULL, "recv", "ctl.wait.r", "-s", a, "--timeout", "1s", NULL);
	CU_ASSERT_EQUAL(r.status, 4);
	CU_ASSERT(r.secs >= 0.9 && r.secs < 1.8);
	/* a recv and a send on the real chand, blocked, with no -t ... */
	ctl(&r, NULL, "make", "ctl.wait.r", NULL);
	ctl(&r, NULL, "make", "ctl.wait.s", NULL);
	ctl_start(&rp, rargv);
	ctl_start(&sp, sargv);
	CU_ASSERT_FATAL(test_conn_open(&c, srv.port, true) == 0);
	CU_ASSERT(st_await_waiters(&c, "ctl.wait.r", -1, 1));
	CU_ASSERT(st_await_waiters(&c, "ctl.wait.s", 1, -1));
	/* ... while a ping with no -t gives up on the silent listener after 5 s */
	ctl(&r, NULL, "-s", a, "ping", NULL);
	CU_ASSERT_EQUAL(r.status, 4);
	CU_ASSERT(r.secs >= 4.5 && r.secs < 10);
	CU_ASSERT(strstr(r.err, "deadline") != NULL);
	/* they are still waiting, and end as Go's would: on a value */
	CU_ASSERT(running(&rp));
	CU_ASSERT(running(&sp));
	ctl(&r, NULL, "send", "ctl.wait.r", "late", NULL);
	CU_ASSERT_EQUAL(r.status, 0);
	ctl_finish(&rp, &rr);
	CU_ASSERT_EQUAL(rr.status, 0);
	CU_ASSERT_STRING_EQUAL(rr.out, "late\n");
	ctl(&r, NULL, "recv", "ctl.wait.s", NULL);
	CU_ASSERT_STRING_EQUAL(r.out, "patience\n");
	ctl_finish(&sp, &sr);
	CU_ASSERT_EQUAL(sr.status, 0);
	/* -t 0: no deadline at all */
	ctl(&r, NULL, "-t", "0", "ping", NULL);
	CU_ASSERT_EQUAL(r.status, 0);
	test_conn_close(&c);
	close(lfd);
}

/* Run python3 on script with doc on stdin and args after it; its exit status. */
static int
python(const char *script, const char *doc, const char *const *args, size_t nargs)
{
	const char *argv[40] = { "python3", "-c", script };
	int in[2], st;
	pid_t pid;

	for (size_t i = 0; i < nargs && i < 36; i++)
		argv[3 + i] = args[i];
	if (pipe2(in, O_CLOEXEC) < 0)
		return -1;
	if ((pid = fork()) == 0) {
		dup2(in[0], 0);
		execv("/usr/bin/python3", (char *const *)argv);
		execvp("python3", (char *const *)argv);
		_exit(127);
	}
	close(in[0]);
	if (write(in[1], doc, strlen(doc)) < 0)
		CU_FAIL("write to python3");
	close(in[1]);
	st = test_wait_exit(pid, 30000);
	if (st == 127)
		fprintf(stderr, "python3 is missing: the JSON round trip cannot be checked\n");
	return st;
}

/* Strict UTF-8 in, values as bytes out, compared with argv's hex strings. */
static const char py_roundtrip[] =
	"import base64, json, sys\n"
	"doc = json.loads(sys.stdin.buffer.read().decode('utf-8'))\n"
	"got = [v.encode('utf-8') if isinstance(v, str) else\n"
	"    base64.b64decode(v['base64'], validate=True) for v in doc['values']]\n"
	"want = [bytes.fromhex(h) for h in sys.argv[1:]]\n"
	"print(got, want, file=sys.stderr) if got != want else None\n"
	"sys.exit(0 if got == want and doc['closed'] is False else 1)\n";

/* --json recv is valid JSON for any bytes, and every value comes back exactly. */
static void
test_json_any_bytes(void)
{
	static const struct {
		const char *b;
		size_t n;
		bool text;		/* a JSON string, not base64 */
	} vals[] = {
		{ "\xff\xfe", 2, false },
		{ "a\0b", 3, true },			/* NUL is UTF-8: escaped */
		{ "\x01\x1f\"\\\t\x7f/", 7, true },	/* control characters, quote, backslash */
		{ "h\xc3\xa9 \xe2\x9c\x93 \xf0\x9f\x98\x80", 12, true },
		{ "\xc0\x80", 2, false },			/* an overlong NUL */
		{ "\xed\xa0\x80", 3, false },		/* a UTF-16 surrogate */
		{ "\xf4\x90\x80\x80", 4, false },	/* past U+10FFFF */
		{ "ok\xe2\x82", 4, false },		/* cut short */
		{ "", 0, true },
	};
	size_t n = sizeof vals / sizeof vals[0];
	char hex[sizeof vals / sizeof vals[0]][32], count[8];
	const char *args[sizeof vals / sizeof vals[0]];
	struct test_conn c;
	struct proto_reply rep;
	struct run r;
	size_t strings = 0;

	ctl(&r, NULL, "make", "ctl.bytes", "16", NULL);
	CU_ASSERT_FATAL(test_conn_open(&c, srv.port, true) == 0);
	for (size_t i = 0; i < n; i++) {
		st_send(&c, "ctl.bytes", vals[i].b, vals[i].n, 0);
		st_reply(&c, OP_SEND, &rep);
		CU_ASSERT_EQUAL(rep.status, STATUS_OK);
		for (size_t k = 0; k < vals[i].n; k++)
			sprintf(hex[i] + 2 * k, "%02x", (unsigned char)vals[i].b[k]);
		hex[i][2 * vals[i].n] = '\0';
		args[i] = hex[i];
		strings += vals[i].text;
	}
	test_conn_close(&c);
	snprintf(count, sizeof count, "%zu", n);
	ctl(&r, NULL, "--json", "recv", "-n", count, "ctl.bytes", NULL);
	CU_ASSERT_EQUAL(r.status, 0);
	CU_ASSERT(json_valid(r.out));
	CU_ASSERT_EQUAL(python(py_roundtrip, r.out, args, n), 0);
	/* valid UTF-8 stays readable: a string, not base64 */
	CU_ASSERT_PTR_NOT_NULL(strstr(r.out, "\"a\\u0000b\""));
	CU_ASSERT_PTR_NOT_NULL(strstr(r.out, "\"h\xc3\xa9 \xe2\x9c\x93 \xf0\x9f\x98\x80\""));
	CU_ASSERT_PTR_NOT_NULL(strstr(r.out, "{\"base64\":\"//4=\"}"));
	for (const char *p = r.out; (p = strstr(p, "{\"base64\":")) != NULL; p++)
		strings++;
	CU_ASSERT_EQUAL(strings, n);	/* the strings, and one base64 object for each other value */
}

/* chanctl(1) renders: the recv heading on one line (groff, as man does). */
static void
test_man_page(void)
{
	const char *src = getenv("CHAND_SRCDIR") ? getenv("CHAND_SRCDIR") : "..";
	char cmd[512], line[256];
	bool heading = false;
	FILE *f;

	snprintf(cmd, sizeof cmd, "groff -man -Tutf8 -P-c -P-b -P-u -ww %s/client/chanctl.1 2>&1", src);
	if ((f = popen(cmd, "r")) == NULL) {
		CU_FAIL("popen groff");
		return;
	}
	while (fgets(line, sizeof line, f) != NULL) {
		if (strcmp(line, "       recv [-n count] ch\n") == 0)
			heading = true;
		CU_ASSERT_PTR_NULL(strstr(line, "warning"));
	}
	if (pclose(f) != 0) {
		fprintf(stderr, "groff is missing: chanctl.1 not rendered\n");
		return;
	}
	CU_ASSERT(heading);
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
	CU_pSuite s = test_suite("chanctl", suite_init, suite_clean);

	test_add(s, "ping, usage errors, -h", test_ping_and_usage);
	test_add(s, "connection failures name the address", test_connection_failure);
	test_add(s, "address forms: host:port, [v6]:port, host, tcp://, unix:, /path", test_address_forms);
	test_add(s, "an unresolvable host says so", test_unresolvable_host);
	test_add(s, "options anywhere, --help everywhere, help, --version", test_option_order_and_help);
	test_add(s, "long options are exact: --server, no abbreviations", test_long_options_exact);
	test_add(s, "-t is the whole budget; 5 s by default; none for send, recv", test_timeouts);
	test_add(s, "--json recv: valid JSON and exact values for any bytes", test_json_any_bytes);
	test_add(s, "chanctl.1 renders (the recv heading)", test_man_page);
	test_add(s, "make, send (argument, stdin), info, recv, -t timeout", test_make_send_recv);
	test_add(s, "closed (exit 5) and not found (exit 6)", test_closed_and_not_found);
	test_add(s, "ls as a table and as JSON", test_ls);
	test_add(s, "waiters, clients, cancel", test_waiters_clients_cancel);
	test_add(s, "links and jobs", test_links_jobs);
	test_add(s, "stats", test_stats);
	test_add(s, "shutdown", test_shutdown);
}

int
main(int argc, char **argv)
{
	return test_main(argc, argv, register_suites);
}
