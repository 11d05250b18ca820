/*
 * test_config.c: chand's configuration as an operator meets it, against the
 * real binary: --check-config refuses what start-up refuses (and says
 * where), flags keep winning over the file across SIGHUP, --set, and the
 * journal's log format.
 *
 * SPDX-License-Identifier: BSD-2-Clause
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "clock.h"
#include "srvtest.h"

static const char *
chand_path(void)
{
	return getenv("CHAND") ? getenv("CHAND") : "server/chand";
}

/*
 * In chand's child: no JOURNAL_STREAM, or (journal_stream) one naming its
 * stderr, as systemd sets it, or (< 0) one naming another file.
 */
static void
journal_env(void *arg)
{
	int journal_stream = *(int *)arg;
	struct stat st;
	char js[64];

	unsetenv("JOURNAL_STREAM");
	if (journal_stream && fstat(2, &st) == 0) {
		snprintf(js, sizeof js, "%llu:%llu", (unsigned long long)st.st_dev,
		    (unsigned long long)st.st_ino + (journal_stream < 0));
		setenv("JOURNAL_STREAM", js, 1);
	}
}

/* chand with args to its exit (test_run), its JOURNAL_STREAM as journal_env sets it. */
static int
run_chand_env(const char *const *args, char *out, size_t cap, int journal_stream)
{
	return test_run_child(chand_path(), args, out, cap, journal_env, &journal_stream);
}

static int
run_chand(const char *const *args, char *out, size_t cap)
{
	return run_chand_env(args, out, cap, 0);
}

/* A private directory for the files a test writes; removed by dir_remove. */
struct dir {
	char path[64];
};

static void
dir_make(struct dir *d)
{
	snprintf(d->path, sizeof d->path, "/tmp/chand-cfg.XXXXXX");
	CU_ASSERT_FATAL(mkdtemp(d->path) != NULL);
}

/* Write text to DIR/name; its path into path. */
static void
dir_write(struct dir *d, const char *name, const char *text, char *path, size_t cap)
{
	FILE *f;

	snprintf(path, cap, "%s/%s", d->path, name);
	f = fopen(path, "w");
	CU_ASSERT_FATAL(f != NULL);
	fputs(text, f);
	fclose(f);
}

static void
dir_remove(struct dir *d)
{
	char cmd[128];

	snprintf(cmd, sizeof cmd, "rm -rf '%s'", d->path);
	CU_ASSERT_EQUAL(system(cmd), 0);
}

/* text with every DIR replaced by dir, into buf. */
static void
subst_dir(char *buf, size_t cap, const char *text, const char *dir)
{
	size_t len = 0;

	for (const char *p = text; *p && len + strlen(dir) + 1 < cap; p++) {
		if (strncmp(p, "DIR", 3) == 0) {
			len += (size_t)snprintf(buf + len, cap - len, "%s", dir);
			p += 2;
		} else {
			buf[len++] = *p;
		}
	}
	buf[len] = '\0';
}

/* ---- --check-config checks what start-up checks ------------------------------------- */

/*
 * Each config is refused by --check-config and by a real start alike, with
 * the same message naming FILE:LINE: key 'KEY'. DIR in a text is the test's
 * directory (bad.pem is there; missing.* are not).
 */
static void
test_check_refuses(void)
{
	static const struct {
		const char *text;
		const char *expect;
	} cases[] = {
		{ "port = 0\nallow = alice jobs.* send,recieve\n",
		  ":2: key 'allow': rights are send, recv" },
		{ "\ntokens_file = DIR/missing.tokens\n",
		  ":2: key 'tokens_file': cannot read" },
		{ "tls_listen = 127.0.0.1:0\ntls_cert = DIR/missing.pem\ntls_key = DIR/bad.pem\n",
		  ":2: key 'tls_cert': cannot read" },
		{ "tls_listen = 127.0.0.1:0\ntls_cert = DIR/bad.pem\ntls_key = DIR/missing.pem\n",
		  ":3: key 'tls_key': cannot read" },
		{ "tls_listen = 127.0.0.1:0\ntls_cert = DIR/bad.pem\ntls_key = DIR/bad.pem\n",
		  ":2: key 'tls_cert': cannot load" },
		{ "# modules\nstage_module = up:DIR/missing.so\n",
		  ":2: key 'stage_module': cannot load stage 'up'" },
		{ "metrics_listen = localhost\n",
		  ":1: key 'metrics_listen': must be HOST:PORT" },
		{ "metrics_listen = 127.0.0.1:http\n",
		  ":1: key 'metrics_listen': must be HOST:PORT" },
		{ "port = 7420\ntokens_file = \"/etc/chand.tokens\n",
		  ":2: key 'tokens_file': unterminated quote" },
		{ "listen = \"127.0.0.1\" \"x\"\n",
		  ":1: key 'listen': text after the closing quote" },
	};
	struct dir d;
	char path[160], bad[160], text[512], out[4096], want[512];

	dir_make(&d);
	dir_write(&d, "bad.pem", "not a certificate\n", bad, sizeof bad);
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		const char *check[] = { "--check-config", "-c", path, NULL };
		const char *start[] = { "-f", "-c", path, "-p", "0", NULL };

		subst_dir(text, sizeof text, cases[i].text, d.path);
		dir_write(&d, "chand.conf", text, path, sizeof path);
		snprintf(want, sizeof want, "%s%s", path, cases[i].expect);
		CU_ASSERT_EQUAL(run_chand(check, out, sizeof out), 1);
		if (strstr(out, want) == NULL)
			fprintf(stderr, "\ncase %zu: want \"%s\", got \"%s\"\n", i, want, out);
		CU_ASSERT_PTR_NOT_NULL(strstr(out, want));
		CU_ASSERT_PTR_NULL(strstr(out, "is valid"));
		/* the very same words when it is started for real */
		CU_ASSERT_EQUAL(run_chand(start, out, sizeof out), 1);
		CU_ASSERT_PTR_NOT_NULL(strstr(out, want));
	}
	dir_remove(&d);
}

/* A quoted value keeps a '#'; a comment after it is still a comment, quotes and all. */
static void
test_check_quotes(void)
{
	struct dir d;
	char path[160], text[512], out[4096], want[512];
	const char *check[] = { "--check-config", "-c", path, NULL };

	dir_make(&d);
	snprintf(text, sizeof text, "tokens_file = \"%s/a#b\"   # a \"comment\n", d.path);
	dir_write(&d, "chand.conf", text, path, sizeof path);
	/* the file named is a#b, not a */
	snprintf(want, sizeof want, "%s:1: key 'tokens_file': cannot read '%s/a#b'", path, d.path);
	CU_ASSERT_EQUAL(run_chand(check, out, sizeof out), 1);
	CU_ASSERT_PTR_NOT_NULL(strstr(out, want));
	dir_remove(&d);
}

/* The stage module of tests/stages beside $CHAND's build tree. */
static void
stage_module_path(char *buf, size_t cap)
{
	char dir[512];
	char *slash;

	snprintf(dir, sizeof dir, "%s", chand_path());
	if ((slash = strrchr(dir, '/')) != NULL)
		*slash = '\0';
	else
		snprintf(dir, sizeof dir, ".");
	snprintf(buf, cap, "%s/../tests/stages/.libs/teststage.so", dir);
}

/* What is there and well formed passes: every file read, the module loaded, nothing bound. */
static void
test_check_accepts(void)
{
	struct dir d;
	char path[160], tokens[160], module[600], text[2048], out[4096];
	const char *check[] = { "--check-config", "-c", path, NULL };
	struct stat st;

	dir_make(&d);
	stage_module_path(module, sizeof module);
	if (stat(module, &st) != 0) {
		fprintf(stderr, "test stage module %s is missing (make tests/stages/teststage.la)\n",
		    module);
		CU_FAIL_FATAL("no test stage module");
	}
	dir_write(&d, "chand.tokens",
	    "# alice's\nalice:2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824\n",
	    tokens, sizeof tokens);
	snprintf(text, sizeof text,
	    "port = 1\n"		/* binding it would fail unprivileged: checking binds nothing */
	    "tokens_file = %s\n"
	    "allow = alice jobs.* send,recv,make\n"
	    "stage_module = teststage:%s\n"
	    "metrics_listen = 127.0.0.1:1\n"
	    "log = journal\n", tokens, module);
	dir_write(&d, "chand.conf", text, path, sizeof path);
	CU_ASSERT_EQUAL(run_chand(check, out, sizeof out), 0);
	CU_ASSERT_PTR_NOT_NULL(strstr(out, "is valid"));
	/* only the verdict, not a running server's log lines */
	CU_ASSERT_PTR_NULL(strstr(out, "stage-module"));
	dir_remove(&d);
}

/* ---- flags win over the file, on start and on every SIGHUP ------------------------- */

static void
rewrite_conf(struct test_server *s, const char *text)
{
	FILE *f = fopen(s->conf, "w");

	CU_ASSERT_FATAL(f != NULL);
	fputs(text, f);
	fclose(f);
}

/* -l and -p overrode the file: a reload compares the file plus the flags, so nothing differs. */
static void
test_reload_keeps_flags(void)
{
	struct test_server s;
	struct test_conn c;

	/* test_server_start runs chand with -l 127.0.0.1 -p 0 */
	CU_ASSERT_FATAL(test_server_start(&s, "listen = 127.0.0.9\nport = 7420\n") == 0);
	rewrite_conf(&s, "listen = 127.0.0.9\nport = 7420\nmax_pending = 7\n");
	kill(s.pid, SIGHUP);
	CU_ASSERT(test_server_await_log(&s, "reload file="));
	/* a reply after the reload: its every log line is written by then */
	CU_ASSERT_FATAL(test_conn_open(&c, s.port, true) == 0);
	CU_ASSERT_EQUAL(st_make(&c, st_name("reloaded"), 0), STATUS_OK);
	test_conn_close(&c);
	CU_ASSERT(test_server_log_has(&s, "changed=max_pending"));
	CU_ASSERT_FALSE(test_server_log_has(&s, "reload-ignored"));
	CU_ASSERT_FALSE(test_server_log_has(&s, "need a restart"));
	CU_ASSERT_EQUAL(test_server_stop(&s), 0);
}

/*
 * Make name and queue n RECVs on it through c, then INFO: the status of the
 * first reply (a RECV's LIMIT comes before the INFO's OK: one connection's
 * requests are handled in order).
 */
static int
pending_recvs(struct test_conn *c, const char *name, int n)
{
	const uint8_t *body;
	const char *why;
	uint64_t id, rid;
	int status;
	long len;

	CU_ASSERT_EQUAL(st_make(c, name, 0), STATUS_OK);
	for (int i = 0; i < n; i++)
		st_recv(c, name, PROTO_WAIT_FOREVER);
	id = st_name_op(c, OP_INFO, name);
	len = test_conn_frame(c, REPLY_MS, &body);
	CU_ASSERT_FATAL(len > 0);
	CU_ASSERT_FATAL(proto_reply_header(body, (size_t)len, &rid, &status, &why) == 0);
	return rid == id ? STATUS_OK : status;
}

/* --set sets any key over the file, and a reload applies it again. */
static void
test_set(void)
{
	const char *args[] = { "--set", "max_pending=3", "--set", "max_cap=5", NULL };
	struct test_server s;
	struct test_conn c;

	CU_ASSERT_FATAL(test_server_start_args(&s, "max_pending = 1\nmax_cap = 100\n", args) == 0);
	CU_ASSERT_FATAL(test_conn_open(&c, s.port, true) == 0);
	CU_ASSERT_EQUAL(st_make(&c, st_name("set.big"), 6), STATUS_LIMIT);	/* max_cap=5 won */
	CU_ASSERT_EQUAL(pending_recvs(&c, st_name("set.a"), 3), STATUS_OK);	/* over the file's 1 */
	test_conn_close(&c);
	/* the file changes; the flags still win, and what they do not set changes */
	rewrite_conf(&s, "max_pending = 1\nmax_cap = 100\nmax_select_cases = 7\nmax_channels = 99\n");
	kill(s.pid, SIGHUP);
	CU_ASSERT(test_server_await_log(&s, "reload file="));
	CU_ASSERT(test_server_await_log(&s, "reload-ignored"));
	CU_ASSERT(test_server_log_has(&s, "changed=max_channels"));
	CU_ASSERT(test_server_log_has(&s, "reload-ignored keys=max_select_cases reason"));
	CU_ASSERT_FATAL(test_conn_open(&c, s.port, true) == 0);
	CU_ASSERT_EQUAL(st_make(&c, st_name("set.big2"), 6), STATUS_LIMIT);
	CU_ASSERT_EQUAL(pending_recvs(&c, st_name("set.b"), 3), STATUS_OK);
	CU_ASSERT_EQUAL(pending_recvs(&c, st_name("set.c"), 1), STATUS_LIMIT);	/* the 4th */
	test_conn_close(&c);
	CU_ASSERT_EQUAL(test_server_stop(&s), 0);
}

/* --set is validated like the file, its errors named --set:KEY; --help shows it. */
static void
test_set_errors(void)
{
	static const struct {
		const char *arg;
		int status;
		const char *expect;
	} cases[] = {
		{ "max_pending=lots", 1, "--set:max_pending: key 'max_pending': must be a whole number" },
		{ "port=70000", 1, "--set:port: key 'port': is out of range" },
		{ "busy_poll_us=1001", 1, "--set:busy_poll_us: key 'busy_poll_us': is out of range" },
		{ "busy_poll_us=50us", 1, "--set:busy_poll_us: key 'busy_poll_us': must be a whole number" },
		{ "busy_poll_us=-1", 1, "--set:busy_poll_us: key 'busy_poll_us': must be a whole number" },
		{ "no_such_key=1", 1, "--set:no_such_key: key 'no_such_key': unknown key" },
		{ "allow=alice * fly", 1, "--set:allow: key 'allow': rights are" },
		{ "log=fancy", 1, "--set:log: key 'log': must be auto, journal or plain" },
		{ "max_pending", 2, "--set: 'max_pending' is not KEY=VALUE" },
		{ "=1", 2, "--set: '=1' is not KEY=VALUE" },
	};
	char out[4096];

	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		const char *args[] = { "--check-config", "-c", "/dev/null", "--set", cases[i].arg, NULL };

		CU_ASSERT_EQUAL(run_chand(args, out, sizeof out), cases[i].status);
		if (strstr(out, cases[i].expect) == NULL)
			fprintf(stderr, "\n--set %s: want \"%s\", got \"%s\"\n", cases[i].arg,
			    cases[i].expect, out);
		CU_ASSERT_PTR_NOT_NULL(strstr(out, cases[i].expect));
	}
	{
		/* listen= is the empty value: no TCP listener, the unix socket instead */
		const char *ok[] = { "--check-config", "-c", "/dev/null", "--set", "max_pending=9",
			"--set", "listen=", "--set", "unix_socket=/tmp/x.sock", NULL };
		const char *help[] = { "--help", NULL };

		CU_ASSERT_EQUAL(run_chand(ok, out, sizeof out), 0);
		CU_ASSERT_EQUAL(run_chand(help, out, sizeof out), 0);
		CU_ASSERT_PTR_NOT_NULL(strstr(out, "--set KEY=VALUE"));
	}
}

/* ---- log lines for the journal ---------------------------------------------------- */

/* Does line start with an ISO-8601 UTC time ("2026-12-04T15:30:35.123Z ")? */
static bool
has_time(const char *line)
{
	int y, mo, d, h, mi, s, ms;
	char z;

	return sscanf(line, "%4d-%2d-%2dT%2d:%2d:%2d.%3d%c", &y, &mo, &d, &h, &mi, &s, &ms, &z) == 8 &&
	    z == 'Z';
}

/* Is every line of text "<N>..." with N a priority of level (and no time), and how many? */
static int
journal_lines(const char *text, bool *all)
{
	int n = 0;

	*all = true;
	for (const char *l = text; *l; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : l + strlen(l)) {
		if (*l == '\n')
			continue;
		n++;
		if (!(l[0] == '<' && strchr("3467", l[1]) && l[2] == '>') || has_time(l + 3))
			*all = false;
	}
	return n;
}

/* The whole of chand's log (DIR/chand.log) into buf. */
static void
read_log(struct test_server *s, char *buf, size_t cap)
{
	char path[128];
	FILE *f;
	size_t n;

	snprintf(path, sizeof path, "%s/chand.log", s->dir);
	f = fopen(path, "r");
	CU_ASSERT_FATAL(f != NULL);
	n = fread(buf, 1, cap - 1, f);
	buf[n] = '\0';
	fclose(f);
}

/* log = journal: "<N>" priorities, no time stamp; plain keeps the time. */
static void
test_log_journal(void)
{
	static char log[65536];
	struct test_server s;
	bool all;

	CU_ASSERT_FATAL(test_server_start(&s, "log = journal\n") == 0);
	kill(s.pid, SIGHUP);	/* no file change: an info line */
	CU_ASSERT(test_server_await_log(&s, "<6>reload file="));
	read_log(&s, log, sizeof log);
	CU_ASSERT(journal_lines(log, &all) >= 2);
	CU_ASSERT(all);
	CU_ASSERT_PTR_NOT_NULL(strstr(log, "<6>listening"));
	CU_ASSERT_EQUAL(test_server_stop(&s), 0);
	/* a warning is <4> (a reload that names a restart-only key) */
	CU_ASSERT_FATAL(test_server_start(&s, "log = journal\n") == 0);
	rewrite_conf(&s, "log = journal\nworkers = 3\n");
	kill(s.pid, SIGHUP);
	CU_ASSERT(test_server_await_log(&s, "<4>reload-ignored keys=workers"));
	CU_ASSERT_EQUAL(test_server_stop(&s), 0);
	/* plain: the time stamp, the name and the level's name */
	CU_ASSERT_FATAL(test_server_start(&s, "log = plain\n") == 0);
	CU_ASSERT(test_server_await_log(&s, "chand info listening"));
	read_log(&s, log, sizeof log);
	CU_ASSERT(has_time(log));
	CU_ASSERT_NOT_EQUAL(log[0], '<');
	CU_ASSERT_EQUAL(test_server_stop(&s), 0);
}

/*
 * log = auto (the default) goes by $JOURNAL_STREAM: the journal's format
 * only when it names stderr itself. A start that fails after logging is
 * up gives an error line: <3>.
 */
static void
test_log_auto(void)
{
	const char *args[] = { "-f", "-c", "/dev/null", "--set", "listen=",
		"--set", "unix_socket=/nonexistent-dir/chand.sock", NULL };
	char out[4096];
	bool all;

	CU_ASSERT_EQUAL(run_chand_env(args, out, sizeof out, 1), 1);
	CU_ASSERT_PTR_NOT_NULL(strstr(out, "<3>start-failed"));
	/* "chand: why" on stderr too, for a terminal; the log lines are all journal lines */
	CU_ASSERT_PTR_NOT_NULL(strstr(out, "\nchand: "));
	CU_ASSERT_FALSE(has_time(out));
	/* stderr redirected elsewhere (JOURNAL_STREAM inherited but stale): plain */
	CU_ASSERT_EQUAL(run_chand_env(args, out, sizeof out, -1), 1);
	CU_ASSERT(has_time(out));
	CU_ASSERT_PTR_NOT_NULL(strstr(out, "chand error start-failed"));
	/* no JOURNAL_STREAM at all: plain */
	CU_ASSERT_EQUAL(run_chand_env(args, out, sizeof out, 0), 1);
	CU_ASSERT(has_time(out));
	(void)journal_lines(out, &all);
	CU_ASSERT_FALSE(all);
}

static void
register_suites(void)
{
	CU_pSuite s = test_suite("check-config", NULL, NULL);

	test_add(s, "refuses what start-up refuses, naming file:line:key", test_check_refuses);
	test_add(s, "quotes: '#' inside, comment after", test_check_quotes);
	test_add(s, "a good config with files, a module and auth is valid", test_check_accepts);
	s = test_suite("overrides", NULL, NULL);
	test_add(s, "SIGHUP compares with -l and -p applied", test_reload_keeps_flags);
	test_add(s, "--set wins over the file, also after SIGHUP", test_set);
	test_add(s, "--set errors name --set:KEY; --help shows it", test_set_errors);
	s = test_suite("log format", NULL, NULL);
	test_add(s, "log = journal: <N> priorities, no time; plain has it", test_log_journal);
	test_add(s, "log = auto follows JOURNAL_STREAM only when it is stderr", test_log_auto);
}

int
main(int argc, char **argv)
{
	return test_main(argc, argv, register_suites);
}
