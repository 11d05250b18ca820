/*
 * test_server_limits_lifecycle.c: chand's start and end, part of
 * test_server_limits, each test with a chand of its own: SIGTERM with a
 * request pending, config errors that name file, line and key, and the
 * unix socket listener.
 *
 * SPDX-License-Identifier: BSD-2-Clause
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "srvtest.h"
#include "limitstest.h"

/* ---- lifecycle ---------------------------------------------------------------------- */

/* SIGTERM with a request pending: SHUTTING_DOWN reply, then exit 0. */
static void
test_shutdown(void)
{
	struct test_server s2;
	struct test_conn c;
	struct proto_reply r;
	const uint8_t *body;
	long len;
	int sawshutdown = 0;

	CU_ASSERT_FATAL(test_server_start(&s2, NULL) == 0);
	CU_ASSERT_FATAL(test_conn_open(&c, s2.port, true) == 0);
	CU_ASSERT_EQUAL(st_make(&c, "sd", 0), STATUS_OK);
	st_recv(&c, "sd", PROTO_WAIT_FOREVER);
	st_info(&c, "sd", NULL);	/* the RECV is surely queued by now */
	CU_ASSERT_EQUAL(test_server_stop(&s2), 0);
	/* the pending RECV's reply and the connection notice, then EOF */
	while ((len = test_conn_frame(&c, REPLY_MS, &body)) > 0) {
		uint64_t id;
		int st;
		const char *why;

		proto_reply_header(body, (size_t)len, &id, &st, &why);
		sawshutdown += st == STATUS_SHUTTING_DOWN;
	}
	CU_ASSERT_EQUAL(len, 0);
	CU_ASSERT_EQUAL(sawshutdown, 2);
	(void)r;
	test_conn_close(&c);
}

/* Run chand with args; returns its exit status and its stderr in err. */
static int
run_chand(const char *const *args, char *err, size_t errcap)
{
	const char *chand = getenv("CHAND") ? getenv("CHAND") : "server/chand";
	const char *argv[16] = { chand };
	int pfd[2], status;
	size_t len = 0;
	ssize_t n;
	pid_t pid;

	for (int i = 0; args[i] && i < 14; i++)
		argv[i + 1] = args[i];
	CU_ASSERT_FATAL(pipe(pfd) == 0);
	pid = fork();
	if (pid == 0) {
		dup2(pfd[1], 2);
		dup2(pfd[1], 1);
		execv(chand, (char *const *)argv);
		_exit(127);
	}
	close(pfd[1]);
	while (len < errcap - 1 && (n = read(pfd[0], err + len, errcap - 1 - len)) > 0)
		len += (size_t)n;
	err[len] = '\0';
	close(pfd[0]);
	waitpid(pid, &status, 0);
	return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static void
test_config_errors(void)
{
	static const struct {
		const char *text;
		const char *expect;
	} cases[] = {
		{ "port = 7420\nbogus_key = 1\n", ":2: key 'bogus_key': unknown key" },
		{ "max_frame = lots\n", ":1: key 'max_frame': must be a number" },
		{ "port = 1\nport = 2\n", ":2: key 'port': set twice" },
		{ "port = 70000\n", ":1: key 'port': is out of range" },
		{ "log_level = chatty\n", ":1: key 'log_level': must be error, warn, info or debug" },
		{ "just words\n", ":1: expected 'key = value'" },
	};
	char path[] = "/tmp/chand-conf.XXXXXX";
	char out[2048];
	int fd = mkstemp(path);

	CU_ASSERT_FATAL(fd >= 0);
	close(fd);
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		FILE *f = fopen(path, "w");
		const char *args[] = { "--check-config", "-c", path, NULL };

		fputs(cases[i].text, f);
		fclose(f);
		CU_ASSERT_EQUAL(run_chand(args, out, sizeof out), 1);
		CU_ASSERT_PTR_NOT_NULL(strstr(out, path));
		CU_ASSERT_PTR_NOT_NULL(strstr(out, cases[i].expect));
	}
	{
		FILE *f = fopen(path, "w");
		const char *args[] = { "--check-config", "-c", path, NULL };
		const char *bad_flag[] = { "--check-config", "-c", path, "-p", "x", NULL };

		fputs("# fine\nmax_pending = 10 # trailing comment\nlisten = \"127.0.0.1\"\n", f);
		fclose(f);
		CU_ASSERT_EQUAL(run_chand(args, out, sizeof out), 0);
		CU_ASSERT_EQUAL(run_chand(bad_flag, out, sizeof out), 1);
		CU_ASSERT_PTR_NOT_NULL(strstr(out, "-p: key 'port'"));
	}
	{
		const char *shipped[] = { "--check-config", "-c", NULL, NULL };
		char conf[512];

		snprintf(conf, sizeof conf, "%s/etc/chand.conf",
		    getenv("CHAND_SRCDIR") ? getenv("CHAND_SRCDIR") : ".");
		shipped[2] = conf;
		CU_ASSERT_EQUAL(run_chand(shipped, out, sizeof out), 0);
	}
	unlink(path);
}

/* The unix socket listener: same protocol, its own file mode, removed at exit. */
static void
test_unix_socket(void)
{
	struct test_server s2;
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	struct test_conn c = { .next_id = 1 };
	struct proto_out o;
	struct proto_reply r;
	struct stat st;
	char conf[256];
	char dir[] = "/tmp/chand-unix.XXXXXX";

	CU_ASSERT_FATAL(mkdtemp(dir) != NULL);
	snprintf(sun.sun_path, sizeof sun.sun_path, "%s/chand.sock", dir);
	snprintf(conf, sizeof conf, "unix_socket = %s\nunix_mode = 0600\n", sun.sun_path);
	CU_ASSERT_FATAL(test_server_start(&s2, conf) == 0);
	CU_ASSERT_EQUAL(stat(sun.sun_path, &st), 0);
	CU_ASSERT(S_ISSOCK(st.st_mode));
	CU_ASSERT_EQUAL(st.st_mode & 0777, 0600);
	c.fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	CU_ASSERT_FATAL(connect(c.fd, (struct sockaddr *)&sun, sizeof sun) == 0);
	proto_out_init(&o);
	proto_req_hello(&o, c.next_id++, PROTO_VERSION, "unix", NULL);
	st_write(&c, &o);
	st_reply(&c, OP_HELLO, &r);
	CU_ASSERT_EQUAL(r.status, STATUS_OK);
	CU_ASSERT_EQUAL(st_make(&c, "over.unix", 1), STATUS_OK);
	CU_ASSERT_EQUAL(st_send_wait(&c, "over.unix", "u", 0), STATUS_OK);
	proto_out_destroy(&o);
	test_conn_close(&c);
	CU_ASSERT_EQUAL(test_server_stop(&s2), 0);
	CU_ASSERT_NOT_EQUAL(stat(sun.sun_path, &st), 0);	/* removed on exit */
	rmdir(dir);
}

void
register_server_limits_lifecycle(void)
{
	CU_pSuite s = test_suite("lifecycle", NULL, NULL);

	test_add(s, "SIGTERM: pending get SHUTTING_DOWN, exit 0", test_shutdown);
	test_add(s, "config errors name file, line and key", test_config_errors);
	test_add(s, "unix socket listener", test_unix_socket);
}
