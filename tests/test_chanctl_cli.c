/*
 * test_chanctl_cli.c: chanctl's command line against a real chand: the
 * address forms of -s and $CHAND_ADDR, a host that does not resolve,
 * options anywhere, --help and --version, exact long options, the timeout
 * as the whole budget, --json for any bytes, and chanctl.1's rendering.
 *
 * SPDX-License-Identifier: BSD-2-Clause
 */
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ctltest.h"

/* chanctl -s addr ping reaches the suite's chand. */
static void __attribute__((format(printf, 1, 2)))
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
		lfd = test_listen_silent(ip, 7420, &port);
	}
	CU_ASSERT_FATAL(lfd >= 0);
	ctl(&r, NULL, "-s", ip, "-t", "300ms", "ping", NULL);
	CU_ASSERT_EQUAL(r.status, 4);		/* connected, and no HELLO came back */
	CU_ASSERT(reached(lfd));
	close(lfd);
	if ((lfd = test_listen_silent("::1", 0, &port)) >= 0) {
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

/* A host that does not resolve is named as such. */
static void
test_unresolvable_host(void)
{
	struct run r;

	ctl(&r, NULL, "-s", TEST_UNRESOLVABLE_HOST, "ping", NULL);
	CU_ASSERT_EQUAL(r.status, 3);
	CU_ASSERT_PTR_NOT_NULL(strstr(r.err, TEST_UNRESOLVABLE_HOST));
	CU_ASSERT_PTR_NOT_NULL(strstr(r.err, "did not resolve"));
	CU_ASSERT_PTR_NULL(strstr(r.err, "No route to host"));
	ctl(&r, NULL, "-s", "tcp://" TEST_UNRESOLVABLE_HOST ":7420", "ping", NULL);
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

	CU_ASSERT_FATAL((lfd = test_listen_silent("127.0.0.1", 0, &port)) >= 0);
	snprintf(a, sizeof a, "127.0.0.1:%d", port);
	/* 1 s, not the default 5 s: the upper bound is generous, for a loaded machine */
	ctl(&r, NULL, "-s", a, "-t", "1s", "ping", NULL);
	CU_ASSERT_EQUAL(r.status, 4);
	CU_ASSERT(r.secs >= 0.9 && r.secs < 4.5);
	ctl(&r, NULL, "recv", "ctl.wait.r", "-s", a, "--timeout", "1s", NULL);
	CU_ASSERT_EQUAL(r.status, 4);
	CU_ASSERT(r.secs >= 0.9 && r.secs < 4.5);
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

void
register_chanctl_cli(void)
{
	CU_pSuite s = test_suite("chanctl-cli", ctl_suite_init, ctl_suite_clean);

	test_add(s, "address forms: host:port, [v6]:port, host, tcp://, unix:, /path", test_address_forms);
	test_add(s, "an unresolvable host says so", test_unresolvable_host);
	test_add(s, "options anywhere, --help everywhere, help, --version", test_option_order_and_help);
	test_add(s, "long options are exact: --server, no abbreviations", test_long_options_exact);
	test_add(s, "-t is the whole budget; 5 s by default; none for send, recv", test_timeouts);
	test_add(s, "--json recv: valid JSON and exact values for any bytes", test_json_any_bytes);
	test_add(s, "chanctl.1 renders (the recv heading)", test_man_page);
}
