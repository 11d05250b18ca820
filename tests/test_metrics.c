/*
 * test_metrics.c: the Prometheus endpoint (GET /metrics) of a real chand:
 * its samples, parsed and, when promtool is installed, checked by it; and
 * the endpoint's protected mode, token, connection cap, fd share and timeout.
 *
 * SPDX-License-Identifier: BSD-2-Clause
 */
#include <ctype.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "scrapetest.h"
#include "srvtest.h"

static int
metrics_port(struct test_server *s)
{
	char path[128];

	snprintf(path, sizeof path, "%s/chand.log", s->dir);
	return scrape_logged_port(path);
}

/* The status of req's answer, 0 when none came. */
static int
status_of(int port, const char *req)
{
	int code;

	free(scrape_http(port, req, &code));
	return code;
}

/* Every line is a comment or "name[{labels}] value"; histograms are cumulative. */
static bool
exposition_valid(const char *text)
{
	char *copy = strdup(text), *save, *line;
	double last_bucket = -1;
	bool ok = true;

	for (line = strtok_r(copy, "\n", &save); line && ok; line = strtok_r(NULL, "\n", &save)) {
		char *sp, *end;
		double v;

		if (line[0] == '#') {
			ok = strncmp(line, "# HELP ", 7) == 0 || strncmp(line, "# TYPE ", 7) == 0;
			continue;
		}
		ok = isalpha((unsigned char)line[0]) || line[0] == '_';
		for (char *q = line; ok && *q && *q != '{' && *q != ' '; q++)
			ok = isalnum((unsigned char)*q) || *q == '_' || *q == ':';
		if (!ok || (sp = strrchr(line, ' ')) == NULL)
			return free(copy), false;
		v = strtod(sp + 1, &end);
		ok = *end == '\0';
		if (strstr(line, "_bucket{")) {
			ok = ok && v >= last_bucket;
			last_bucket = v;
		}
	}
	free(copy);
	return ok;
}

static void
test_metrics(void)
{
	struct test_server s;
	struct test_conn c, w;
	char *m;
	int port;

	CU_ASSERT_FATAL(test_server_start(&s, "metrics_listen = 127.0.0.1:0\n") == 0);
	CU_ASSERT_FATAL((port = metrics_port(&s)) > 0);
	CU_ASSERT_FATAL(test_conn_open(&c, s.port, true) == 0);
	CU_ASSERT_FATAL(test_conn_open(&w, s.port, true) == 0);
	CU_ASSERT_EQUAL(st_make(&c, "m.buf", 8), STATUS_OK);
	CU_ASSERT_EQUAL(st_make(&c, "m.unbuf", 0), STATUS_OK);
	for (int i = 0; i < 3; i++)
		CU_ASSERT_EQUAL(st_send_wait(&c, "m.buf", "12345", 0), STATUS_OK);
	CU_ASSERT_EQUAL(st_send_wait(&c, "m.unbuf", "x", 0), STATUS_DEADLINE_EXCEEDED);
	st_recv(&w, "m.unbuf", PROTO_WAIT_FOREVER);
	CU_ASSERT(st_await_waiters(&c, "m.unbuf", 0, 1));
	m = scrape_metrics(port);
	CU_ASSERT_PTR_NOT_NULL_FATAL(m);
	CU_ASSERT(exposition_valid(m));
	CU_ASSERT_EQUAL(scrape_sample(m, "chand_connections_current"), 2);
	CU_ASSERT_EQUAL(scrape_sample(m, "chand_channels"), 2);
	CU_ASSERT_EQUAL(scrape_sample(m, "chand_buffered_values"), 3);
	CU_ASSERT(scrape_sample(m, "chand_buffered_bytes") >= 15);
	CU_ASSERT_EQUAL(scrape_sample(m, "chand_waiters{kind=\"recv\"}"), 1);
	CU_ASSERT_EQUAL(scrape_sample(m, "chand_waiters{kind=\"send\"}"), 0);
	CU_ASSERT_EQUAL(scrape_sample(m, "chand_pending_requests"), 1);
	CU_ASSERT_EQUAL(scrape_sample(m, "chand_waiters_held"), 1);	/* the one blocked RECV */
	CU_ASSERT_EQUAL(scrape_sample(m, "chand_held_bytes"), 0);
	CU_ASSERT_EQUAL(scrape_sample(m, "chand_input_buffer_bytes"), 0);
	CU_ASSERT_EQUAL(scrape_sample(m, "chand_operations_total{op=\"SEND\",status=\"OK\"}"), 3);
	CU_ASSERT_EQUAL(scrape_sample(m, "chand_operations_total{op=\"SEND\",status=\"DEADLINE_EXCEEDED\"}"), 1);
	CU_ASSERT_EQUAL(scrape_sample(m, "chand_operations_total{op=\"MAKE\",status=\"OK\"}"), 2);
	CU_ASSERT_EQUAL(scrape_sample(m, "chand_operation_duration_seconds_bucket{le=\"+Inf\"}"),
	    scrape_sample(m, "chand_operation_duration_seconds_count"));
	CU_ASSERT_PTR_NOT_NULL(strstr(m, "# TYPE chand_operation_duration_seconds histogram"));
	CU_ASSERT_EQUAL(scrape_sample(m, "chand_links"), 0);
	CU_ASSERT_EQUAL(scrape_sample(m, "chand_jobs"), 0);
	CU_ASSERT(scrape_sample(m, "chand_pool_workers") >= 1);
	CU_ASSERT_EQUAL(scrape_sample(m, "chand_pool_queue_depth"), 0);
	free(m);
	/* a running link and a running job show up */
	{
		struct proto_request l = { .op = OP_TAKE, .name = "m.buf", .name_len = 5, .count = 100 };
		struct proto_request j = { .op = OP_FAN_OUT, .name = "m.unbuf", .name_len = 7,
		    .count = 1, .stage = "identity", .stage_len = 8 };
		struct proto_out o;
		struct proto_reply r;

		proto_out_init(&o);
		proto_req_link(&o, c.next_id++, PROTO_WAIT_FOREVER, &l);
		proto_req_link(&o, c.next_id++, PROTO_WAIT_FOREVER, &j);
		st_write(&c, &o);
		st_reply(&c, OP_TAKE, &r);
		CU_ASSERT_EQUAL(r.status, STATUS_STARTED);
		st_reply(&c, OP_FAN_OUT, &r);
		CU_ASSERT_EQUAL(r.status, STATUS_STARTED);
		m = scrape_metrics(port);
		CU_ASSERT_PTR_NOT_NULL_FATAL(m);
		CU_ASSERT_EQUAL(scrape_sample(m, "chand_links"), 2);
		CU_ASSERT_EQUAL(scrape_sample(m, "chand_jobs"), 1);
		free(m);
		proto_out_destroy(&o);
	}
	/* a STREAM that ends inside its own request (its channel is closed) counts once */
	{
		struct proto_case sc = { .name = "m.closed", .name_len = 8 };
		struct proto_out o;
		struct proto_reply r;

		CU_ASSERT_EQUAL(st_make(&c, "m.closed", 0), STATUS_OK);
		CU_ASSERT_EQUAL(st_close(&c, "m.closed"), STATUS_OK);
		proto_out_init(&o);
		proto_req_stream(&o, c.next_id++, PROTO_WAIT_FOREVER, &sc, 1, 4);
		st_write(&c, &o);
		proto_out_destroy(&o);
		st_reply(&c, OP_STREAM, &r);	/* the close report */
		CU_ASSERT(r.status == STATUS_OK && r.interim && !r.ok);
		st_reply(&c, OP_STREAM, &r);	/* the end */
		CU_ASSERT(r.status == STATUS_OK && !r.interim && r.n == 0);
		m = scrape_metrics(port);
		CU_ASSERT_PTR_NOT_NULL_FATAL(m);
		CU_ASSERT_EQUAL(scrape_sample(m, "chand_operations_total{op=\"STREAM\",status=\"OK\"}"), 1);
		free(m);
	}
	test_conn_close(&w);
	test_conn_close(&c);
	CU_ASSERT_EQUAL(test_server_stop(&s), 0);
}

/*
 * The names Prometheus expects: a gauge that is no counter's prefix,
 * chand_build_info, and the process_* series of every client library.
 */
static void
test_metrics_names(void)
{
	struct test_server s;
	char *m;
	int port;
	double now = (double)time(NULL);

	CU_ASSERT_FATAL(test_server_start(&s, "metrics_listen = 127.0.0.1:0\n") == 0);
	CU_ASSERT_FATAL((port = metrics_port(&s)) > 0);
	m = scrape_metrics(port);
	CU_ASSERT_PTR_NOT_NULL_FATAL(m);
	CU_ASSERT(exposition_valid(m));
	CU_ASSERT_EQUAL(scrape_sample(m, "chand_connections_current"), 0);
	CU_ASSERT_EQUAL(scrape_sample(m, "chand_connections"), -1);
	CU_ASSERT_PTR_NOT_NULL(strstr(m, "# TYPE chand_connections_total counter\n"));
	CU_ASSERT_EQUAL(scrape_sample(m, "chand_build_info{version=\"" PACKAGE_VERSION "\"}"), 1);
	CU_ASSERT(scrape_sample(m, "process_cpu_seconds_total") >= 0);
	CU_ASSERT_PTR_NOT_NULL(strstr(m, "# TYPE process_cpu_seconds_total counter\n"));
	CU_ASSERT(scrape_sample(m, "process_resident_memory_bytes") > 0);
	CU_ASSERT(scrape_sample(m, "process_virtual_memory_bytes") >=
	    scrape_sample(m, "process_resident_memory_bytes"));
	/* the listeners, the log, the loop's own: several, and fewer than allowed */
	CU_ASSERT(scrape_sample(m, "process_open_fds") >= 3);
	CU_ASSERT(scrape_sample(m, "process_max_fds") > scrape_sample(m, "process_open_fds"));
	/* chand started after this test began, give or take a clock tick and a slow start */
	CU_ASSERT(scrape_sample(m, "process_start_time_seconds") >= now - 2);
	CU_ASSERT(scrape_sample(m, "process_start_time_seconds") <= (double)time(NULL) + 1);
	free(m);
	CU_ASSERT_EQUAL(test_server_stop(&s), 0);
}

/* promtool check metrics over a scrape with every kind of series in it. */
static void
test_metrics_promtool(void)
{
	struct test_server s;
	struct test_conn c;
	char *m;

	CU_ASSERT_FATAL(test_server_start(&s, "metrics_listen = 127.0.0.1:0\n") == 0);
	CU_ASSERT_FATAL(test_conn_open(&c, s.port, true) == 0);
	CU_ASSERT_EQUAL(st_make(&c, "prom", 1), STATUS_OK);
	CU_ASSERT_EQUAL(st_send_wait(&c, "prom", "x", 0), STATUS_OK);
	m = scrape_metrics(metrics_port(&s));
	CU_ASSERT_PTR_NOT_NULL_FATAL(m);
	scrape_promtool_clean(m);
	free(m);
	test_conn_close(&c);
	CU_ASSERT_EQUAL(test_server_stop(&s), 0);
}

/* ---- the endpoint's protection and limits ---------------------------------------- */

/* A chand of its own: its fd limit set before exec, its stderr (the log) kept. */
struct proc {
	pid_t pid;
	int port;			/* the protocol port it reported */
	char dir[32], conf[64], log[64];
};

/*
 * Start chand on 127.0.0.1 with conf and, when nofile > 0, RLIMIT_NOFILE at
 * nofile (soft and hard). Returns 0 once it reported its port, or chand's
 * exit status (10 s bound) when it did not start.
 */
static int
spawn(struct proc *p, const char *conf, rlim_t nofile)
{
	const char *chand = getenv("CHAND") ? getenv("CHAND") : "server/chand";
	char line[64] = "";
	struct pollfd pfd = { .events = POLLIN };
	int pipefd[2];
	ssize_t n = 0;
	FILE *f;

	p->port = 0;
	snprintf(p->dir, sizeof p->dir, "/tmp/chand-met.XXXXXX");
	CU_ASSERT_FATAL(mkdtemp(p->dir) != NULL);
	snprintf(p->conf, sizeof p->conf, "%s/c.conf", p->dir);
	snprintf(p->log, sizeof p->log, "%s/log", p->dir);
	CU_ASSERT_FATAL((f = fopen(p->conf, "w")) != NULL);
	fputs(conf, f);
	fclose(f);
	CU_ASSERT_FATAL(pipe2(pipefd, O_CLOEXEC) == 0);
	CU_ASSERT_FATAL((p->pid = fork()) >= 0);
	if (p->pid == 0) {
		struct rlimit rl = { nofile, nofile };
		int fd = dup(pipefd[1]), log = open(p->log, O_WRONLY | O_CREAT | O_TRUNC, 0600);
		char fdarg[16];

		dup2(log, STDERR_FILENO);
		if (nofile > 0)
			setrlimit(RLIMIT_NOFILE, &rl);
		snprintf(fdarg, sizeof fdarg, "%d", fd);
		execl(chand, chand, "-f", "-c", p->conf, "-l", "127.0.0.1", "-p", "0", "--ready-fd",
		    fdarg, (char *)NULL);
		_exit(127);
	}
	close(pipefd[1]);
	pfd.fd = pipefd[0];
	if (poll(&pfd, 1, 10000) == 1)
		n = read(pipefd[0], line, sizeof line - 1);
	close(pipefd[0]);
	line[n > 0 ? n : 0] = '\0';
	if (sscanf(line, "%d", &p->port) == 1 && p->port > 0)
		return 0;
	return test_wait_exit(p->pid, 10000);
}

/* Did p's log say needle? */
static bool
logged(struct proc *p, const char *needle)
{
	char buf[16384];
	size_t n = 0;
	FILE *f = fopen(p->log, "r");

	if (f != NULL) {
		n = fread(buf, 1, sizeof buf - 1, f);
		fclose(f);
	}
	buf[n] = '\0';
	if (strstr(buf, needle) == NULL)
		fprintf(stderr, "chand's log lacks \"%s\": %s\n", needle, buf);
	return strstr(buf, needle) != NULL;
}

/* SIGTERM (unless it has exited), then remove its files. */
static void
reap(struct proc *p, int want)
{
	if (p->port > 0) {
		kill(p->pid, SIGTERM);
		CU_ASSERT_EQUAL(test_wait_exit(p->pid, 10000), want);
	}
	unlink(p->conf);
	unlink(p->log);
	rmdir(p->dir);
}

/* Has chand closed c (EOF or reset) within 10 s? The bytes before the close go to buf. */
static bool
await_closed(struct test_conn *c, char *buf, size_t cap)
{
	int64_t end = clock_now_ns() + 10 * NSEC_PER_SEC;
	size_t len = 0;

	buf[0] = '\0';
	for (;;) {
		struct pollfd p = { .fd = c->fd, .events = POLLIN };
		int64_t left = (end - clock_now_ns()) / NSEC_PER_MSEC;
		ssize_t n;

		if (left <= 0 || poll(&p, 1, (int)left) != 1)
			return false;
		if ((n = read(c->fd, buf + len, cap - 1 - len)) <= 0)
			return true;
		len += (size_t)n;
		buf[len] = '\0';
	}
}

/* Still open: nothing to read and no hang-up, right now. */
static bool
still_open(struct test_conn *c)
{
	struct pollfd p = { .fd = c->fd, .events = POLLIN };

	return poll(&p, 1, 0) == 0;
}

/*
 * Protected mode covers metrics_listen: a non-loopback endpoint needs a
 * token or metrics_protected = no. 0.0.0.0 is bound but only reached
 * through 127.0.0.1.
 */
static void
test_metrics_protected(void)
{
	static const char bearer[] = "GET /metrics HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\n\r\n";
	struct proc p;
	char req[256];
	int port;

	CU_ASSERT_EQUAL(spawn(&p, "metrics_listen = 0.0.0.0:0\n", 0), 1);
	CU_ASSERT(logged(&p, "key 'metrics_listen': protected mode"));
	reap(&p, 0);
	CU_ASSERT_EQUAL(spawn(&p, "metrics_listen = [::]:0\n", 0), 1);
	CU_ASSERT(logged(&p, "key 'metrics_listen': protected mode"));
	reap(&p, 0);
	CU_ASSERT_EQUAL(spawn(&p, "metrics_listen = 0.0.0.0:0\nmetrics_token = nothex\n", 0), 1);
	CU_ASSERT(logged(&p, "key 'metrics_token': must be the hex SHA-256 digest"));
	reap(&p, 0);
	/* said explicitly: it serves anyone */
	CU_ASSERT_EQUAL_FATAL(spawn(&p, "metrics_listen = 0.0.0.0:0\nmetrics_protected = no\n", 0), 0);
	CU_ASSERT_FATAL((port = scrape_logged_port(p.log)) > 0);
	CU_ASSERT_EQUAL(status_of(port, "GET /metrics HTTP/1.0\r\n\r\n"), 200);
	reap(&p, 0);
	/* a token (its SHA-256 stored): only "Authorization: Bearer test" gets the text */
	CU_ASSERT_EQUAL_FATAL(spawn(&p, "metrics_listen = 0.0.0.0:0\nmetrics_token = "
	    "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08\n", 0), 0);
	CU_ASSERT_FATAL((port = scrape_logged_port(p.log)) > 0);
	CU_ASSERT_EQUAL(status_of(port, "GET /metrics HTTP/1.0\r\n\r\n"), 401);
	snprintf(req, sizeof req, bearer, "wrong");
	CU_ASSERT_EQUAL(status_of(port, req), 401);
	CU_ASSERT_EQUAL(status_of(port, "GET /metrics HTTP/1.0\r\nAuthorization: Basic dGVzdA==\r\n\r\n"), 401);
	snprintf(req, sizeof req, bearer, "test");
	CU_ASSERT_EQUAL(status_of(port, req), 200);
	reap(&p, 0);
}

/* Wait (up to 10 s) for p's log to show needle: the log is a file, nothing to wait on but time. */
static bool
await_logged(struct proc *p, const char *needle)
{
	int64_t end = clock_now_ns() + 10 * NSEC_PER_SEC;
	char buf[16384];

	while (clock_now_ns() < end) {
		FILE *f = fopen(p->log, "r");
		size_t n = f ? fread(buf, 1, sizeof buf - 1, f) : 0;

		if (f != NULL)
			fclose(f);
		buf[n] = '\0';
		if (strstr(buf, needle) != NULL)
			return true;
		poll(NULL, 0, 5);
	}
	return false;
}

/* SIGHUP replaces metrics_token; a reload that would leave 0.0.0.0 without one is refused. */
static void
test_metrics_token_reload(void)
{
	static const char test[] = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";
	static const char other[] = "d9298a10d1b0735837dc4bd85dac641b0f3cef27a47e5d53a54f2f3f5b2fcffa";
	static const char get[] = "GET /metrics HTTP/1.1\r\nAuthorization: Bearer %s\r\n\r\n";
	struct proc p;
	char conf[256], req_test[128], req_other[128];
	int port;
	FILE *f;

	snprintf(req_test, sizeof req_test, get, "test");
	snprintf(req_other, sizeof req_other, get, "other");
	snprintf(conf, sizeof conf, "metrics_listen = 0.0.0.0:0\nmetrics_token = %s\n", test);
	CU_ASSERT_EQUAL_FATAL(spawn(&p, conf, 0), 0);
	CU_ASSERT_FATAL((port = scrape_logged_port(p.log)) > 0);
	CU_ASSERT_EQUAL(status_of(port, req_test), 200);
	CU_ASSERT_EQUAL(status_of(port, req_other), 401);
	snprintf(conf, sizeof conf, "metrics_listen = 0.0.0.0:0\nmetrics_token = %s\n", other);
	CU_ASSERT_FATAL((f = fopen(p.conf, "w")) != NULL);
	fputs(conf, f);
	fclose(f);
	kill(p.pid, SIGHUP);
	CU_ASSERT(await_logged(&p, "changed=metrics_token"));
	CU_ASSERT_EQUAL(status_of(port, req_test), 401);
	CU_ASSERT_EQUAL(status_of(port, req_other), 200);
	CU_ASSERT_FATAL((f = fopen(p.conf, "w")) != NULL);
	fputs("metrics_listen = 0.0.0.0:0\n", f);
	fclose(f);
	kill(p.pid, SIGHUP);
	CU_ASSERT(await_logged(&p, "reload-failed"));
	CU_ASSERT(logged(&p, "key 'metrics_listen': protected mode"));
	CU_ASSERT_EQUAL(status_of(port, "GET /metrics HTTP/1.1\r\n\r\n"), 401);
	CU_ASSERT_EQUAL(status_of(port, req_other), 200);
	reap(&p, 0);
}

/* n SENDs and RECVs on ch, one at a time: each request comes as soon as the last reply is in. */
static void
loop_traffic(struct test_conn *c, const char *ch, int n)
{
	char buf[8];
	bool ok;

	for (int i = 0; i < n; i++) {
		CU_ASSERT_EQUAL(st_send_wait(c, ch, "v", PROTO_WAIT_FOREVER), STATUS_OK);
		CU_ASSERT_EQUAL(st_recv_wait(c, ch, PROTO_WAIT_FOREVER, buf, sizeof buf, &ok), STATUS_OK);
	}
}

/*
 * The loop's series (config busy_poll_us). Each of 400 requests comes only
 * after the last reply: with busy_poll_us = 0 the loop waits in the kernel
 * for every one of them; with a limit of 1 ms, polling finds most of them
 * (a wait only when the client took longer than the window, at least
 * 250 us), unless the machine has one CPU, where chand never polls. A
 * SIGHUP to 0 sets the window to 0 and nothing more is polled.
 */
static void
test_metrics_loop(void)
{
	struct test_server s;
	struct test_conn c;
	bool polls = sysconf(_SC_NPROCESSORS_ONLN) > 1;
	double waits, hits, polled;
	FILE *f;
	char *m;
	int port;

	CU_ASSERT_FATAL(test_server_start(&s, "metrics_listen = 127.0.0.1:0\nbusy_poll_us = 1000\n") == 0);
	CU_ASSERT_FATAL((port = metrics_port(&s)) > 0);
	CU_ASSERT_FATAL(test_conn_open(&c, s.port, true) == 0);
	CU_ASSERT_EQUAL(st_make(&c, "l.buf", 1), STATUS_OK);
	CU_ASSERT_PTR_NOT_NULL_FATAL(m = scrape_metrics(port));
	waits = scrape_sample(m, "chand_loop_waits_total");
	free(m);
	loop_traffic(&c, "l.buf", 200);
	CU_ASSERT_PTR_NOT_NULL_FATAL(m = scrape_metrics(port));
	CU_ASSERT(exposition_valid(m));
	CU_ASSERT(waits >= 1);
	waits = scrape_sample(m, "chand_loop_waits_total") - waits;
	CU_ASSERT(polls ? waits < 200 : waits >= 400);
	CU_ASSERT(scrape_sample(m, "chand_loop_poll_hits_total") >= 0);
	CU_ASSERT(scrape_sample(m, "chand_loop_poll_preempted_total") >= 0);
	CU_ASSERT(scrape_sample(m, "chand_loop_poll_seconds_total") >= 0);
	CU_ASSERT(scrape_sample(m, "chand_loop_poll_window_seconds") >= 0);
	CU_ASSERT(scrape_sample(m, "chand_loop_poll_window_seconds") <= 0.001);
	CU_ASSERT_PTR_NOT_NULL(strstr(m, "# TYPE chand_loop_poll_hits_total counter"));
	free(m);
	CU_ASSERT_FATAL((f = fopen(s.conf, "w")) != NULL);
	fputs("metrics_listen = 127.0.0.1:0\nbusy_poll_us = 0\n", f);
	fclose(f);
	kill(s.pid, SIGHUP);
	CU_ASSERT(test_server_await_log(&s, "changed=busy_poll_us"));
	CU_ASSERT_PTR_NOT_NULL_FATAL(m = scrape_metrics(port));
	CU_ASSERT_EQUAL(scrape_sample(m, "chand_loop_poll_window_seconds"), 0);
	waits = scrape_sample(m, "chand_loop_waits_total");
	hits = scrape_sample(m, "chand_loop_poll_hits_total");
	polled = scrape_sample(m, "chand_loop_poll_seconds_total");
	free(m);
	loop_traffic(&c, "l.buf", 200);
	CU_ASSERT_PTR_NOT_NULL_FATAL(m = scrape_metrics(port));
	CU_ASSERT(scrape_sample(m, "chand_loop_waits_total") - waits >= 400);
	CU_ASSERT_EQUAL(scrape_sample(m, "chand_loop_poll_hits_total"), hits);
	CU_ASSERT_EQUAL(scrape_sample(m, "chand_loop_poll_seconds_total"), polled);
	CU_ASSERT_EQUAL(scrape_sample(m, "chand_loop_poll_window_seconds"), 0);
	free(m);
	test_conn_close(&c);
	CU_ASSERT_EQUAL(test_server_stop(&s), 0);
}

/* Requests that are not a GET of /metrics get a status and a close, never a hang. */
static void
test_metrics_bad_requests(void)
{
	struct test_server s;
	struct test_conn c;
	char big[9000], buf[512];
	int port;

	CU_ASSERT_FATAL(test_server_start(&s, "metrics_listen = 127.0.0.1:0\n") == 0);
	CU_ASSERT_FATAL((port = metrics_port(&s)) > 0);
	CU_ASSERT_EQUAL(status_of(port, "POST /metrics HTTP/1.1\r\nContent-Length: 0\r\n\r\n"), 405);
	CU_ASSERT_EQUAL(status_of(port, "GET /other HTTP/1.1\r\n\r\n"), 404);
	CU_ASSERT_EQUAL(status_of(port, "GET /metrics?x=1 HTTP/1.1\r\n\r\n"), 200);
	CU_ASSERT_EQUAL(status_of(port, "GET /metrics\r\n\r\n"), 400);
	CU_ASSERT_EQUAL(status_of(port, "\r\n\r\n"), 400);
	CU_ASSERT_EQUAL(status_of(port, "GET /metrics SPDY/3\r\n\r\n"), 400);
	/* headers that never end: 431 once 8 KiB came */
	memset(big, 'a', sizeof big);
	memcpy(big, "GET /metrics HTTP/1.1\r\nX: ", 27);
	CU_ASSERT_FATAL(test_conn_open(&c, port, false) == 0);
	CU_ASSERT(test_conn_write(&c, big, sizeof big) == 0);
	CU_ASSERT(await_closed(&c, buf, sizeof buf));
	CU_ASSERT(strncmp(buf, "HTTP/1.1 431 ", 13) == 0);
	test_conn_close(&c);
	/* a client that leaves at once */
	CU_ASSERT_FATAL(test_conn_open(&c, port, false) == 0);
	test_conn_close(&c);
	CU_ASSERT_EQUAL(status_of(port, "GET /metrics HTTP/1.1\r\n\r\n"), 200);
	CU_ASSERT_EQUAL(test_server_stop(&s), 0);
}

/* A NUL byte in the request line (fuzz_metrics): 400, and chand stays up. */
static void
test_metrics_nul_byte(void)
{
	static const char req[] = "GET /metrics\0 HTTP/1.1\r\n\r\n";
	struct test_server s;
	struct test_conn c;
	char buf[512];
	int port;

	CU_ASSERT_FATAL(test_server_start(&s, "metrics_listen = 127.0.0.1:0\n") == 0);
	CU_ASSERT_FATAL((port = metrics_port(&s)) > 0);
	CU_ASSERT_FATAL(test_conn_open(&c, port, false) == 0);
	CU_ASSERT(test_conn_write(&c, req, sizeof req - 1) == 0);
	CU_ASSERT(await_closed(&c, buf, sizeof buf));
	CU_ASSERT(strncmp(buf, "HTTP/1.1 400 ", 13) == 0);
	test_conn_close(&c);
	CU_ASSERT_EQUAL(status_of(port, "GET /metrics HTTP/1.1\r\n\r\n"), 200);
	CU_ASSERT_EQUAL(test_server_stop(&s), 0);
}

/*
 * metrics_max_connections holds: the extras get 503 and a close, the ones
 * held stay open, protocol clients are served, and a freed slot is reused.
 */
static void
test_metrics_max_connections(void)
{
	struct test_server s;
	struct test_conn idle[4], extra, c;
	char buf[512], *m = NULL;
	int port;
	int64_t end;

	CU_ASSERT_FATAL(test_server_start(&s, "metrics_listen = 127.0.0.1:0\n"
	    "metrics_max_connections = 4\nmetrics_timeout = 1m\n") == 0);
	CU_ASSERT_FATAL((port = metrics_port(&s)) > 0);
	for (int i = 0; i < 4; i++)
		CU_ASSERT_FATAL(test_conn_open(&idle[i], port, false) == 0);
	/* accepted in order: these come after the four */
	for (int i = 0; i < 3; i++) {
		CU_ASSERT_FATAL(test_conn_open(&extra, port, false) == 0);
		CU_ASSERT(await_closed(&extra, buf, sizeof buf));
		CU_ASSERT(strncmp(buf, "HTTP/1.1 503 ", 13) == 0);
		test_conn_close(&extra);
	}
	for (int i = 0; i < 4; i++)
		CU_ASSERT(still_open(&idle[i]));
	CU_ASSERT(test_server_log_has(&s, "limit metrics-connections=4 limit=metrics_max_connections"));
	CU_ASSERT_FATAL(test_conn_open(&c, s.port, true) == 0);
	CU_ASSERT_EQUAL(st_make(&c, "served", 0), STATUS_OK);
	test_conn_close(&c);
	/* one leaves: its slot is free once chand has seen it go */
	test_conn_close(&idle[0]);
	for (end = clock_now_ns() + 10 * NSEC_PER_SEC; m == NULL && clock_now_ns() < end; )
		m = scrape_metrics(port);
	CU_ASSERT_PTR_NOT_NULL(m);
	free(m);
	for (int i = 1; i < 4; i++)
		test_conn_close(&idle[i]);
	CU_ASSERT_EQUAL(test_server_stop(&s), 0);
}

/*
 * With a low fd limit the endpoint takes at most a sixteenth of it, however
 * high metrics_max_connections is: a flood of idle scrapers leaves every
 * protocol client served (the issue: 600 of them took all of 512 fds).
 */
static void
test_metrics_fd_share(void)
{
	struct test_conn idle[16], extra, clients[200];
	struct proc p;
	char buf[512];
	int port, refused = 0;

	CU_ASSERT_EQUAL_FATAL(spawn(&p, "metrics_listen = 127.0.0.1:0\nmax_connections = 200\n"
	    "metrics_max_connections = 1000\nmetrics_timeout = 1m\n", 256), 0);
	CU_ASSERT_FATAL((port = scrape_logged_port(p.log)) > 0);
	CU_ASSERT(logged(&p, "max_connections=16"));
	for (int i = 0; i < 16; i++)
		CU_ASSERT_FATAL(test_conn_open(&idle[i], port, false) == 0);
	for (int i = 0; i < 100; i++) {
		CU_ASSERT_FATAL(test_conn_open(&extra, port, false) == 0);
		refused += await_closed(&extra, buf, sizeof buf) && strncmp(buf, "HTTP/1.1 503 ", 13) == 0;
		test_conn_close(&extra);
	}
	CU_ASSERT_EQUAL(refused, 100);
	CU_ASSERT(logged(&p, "limit=RLIMIT_NOFILE/16"));
	for (int i = 0; i < 200; i++)
		CU_ASSERT_FATAL(test_conn_open(&clients[i], p.port, true) == 0);
	CU_ASSERT_EQUAL(st_make(&clients[199], "fd.share", 0), STATUS_OK);
	for (int i = 0; i < 16; i++) {
		CU_ASSERT(still_open(&idle[i]));
		test_conn_close(&idle[i]);
	}
	for (int i = 0; i < 200; i++)
		test_conn_close(&clients[i]);
	reap(&p, 0);
}

/* metrics_timeout closes a connection that is idle, or whose request never ends. */
static void
test_metrics_timeout(void)
{
	struct test_server s;
	struct test_conn idle, slow;
	char buf[512];
	int port;
	int64_t start;

	CU_ASSERT_FATAL(test_server_start(&s, "metrics_listen = 127.0.0.1:0\n"
	    "metrics_timeout = 200ms\n") == 0);
	CU_ASSERT_FATAL((port = metrics_port(&s)) > 0);
	start = clock_now_ns();
	CU_ASSERT_FATAL(test_conn_open(&idle, port, false) == 0);
	CU_ASSERT_FATAL(test_conn_open(&slow, port, false) == 0);
	CU_ASSERT(test_conn_write(&slow, "GET /metr", 9) == 0);
	CU_ASSERT(await_closed(&idle, buf, sizeof buf));
	CU_ASSERT_STRING_EQUAL(buf, "");
	CU_ASSERT(await_closed(&slow, buf, sizeof buf));
	CU_ASSERT(clock_now_ns() - start < 10 * NSEC_PER_SEC);
	test_conn_close(&idle);
	test_conn_close(&slow);
	/* the endpoint itself goes on */
	CU_ASSERT_EQUAL(status_of(port, "GET /metrics HTTP/1.1\r\n\r\n"), 200);
	CU_ASSERT_EQUAL(test_server_stop(&s), 0);
}

static void
register_suites(void)
{
	CU_pSuite s = test_suite("metrics", NULL, NULL);

	test_add(s, "/metrics in the Prometheus text format", test_metrics);
	test_add(s, "metric names: _current, build_info, process_*", test_metrics_names);
	test_add(s, "promtool check metrics", test_metrics_promtool);
	test_add(s, "protected mode covers metrics_listen; metrics_token", test_metrics_protected);
	test_add(s, "SIGHUP replaces metrics_token", test_metrics_token_reload);
	test_add(s, "the loop's busy polling; busy_poll_us = 0 by SIGHUP", test_metrics_loop);
	test_add(s, "bad HTTP requests get a status and a close", test_metrics_bad_requests);
	test_add(s, "a NUL byte in the request line: 400", test_metrics_nul_byte);
	test_add(s, "metrics_max_connections holds; protocol clients served", test_metrics_max_connections);
	test_add(s, "at most 1/16 of RLIMIT_NOFILE for /metrics", test_metrics_fd_share);
	test_add(s, "metrics_timeout closes idle and slow connections", test_metrics_timeout);
}

int
main(int argc, char **argv)
{
	return test_main(argc, argv, register_suites);
}
