/*
 * test_metrics.c: the Prometheus endpoint (GET /metrics) of a real chand:
 * its samples, parsed and, when promtool is installed, checked by it.
 */
#include <ctype.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "srvtest.h"

static int
metrics_port(struct test_server *s)
{
	char path[128], line[1024];
	int port = -1;
	FILE *f;

	snprintf(path, sizeof path, "%s/chand.log", s->dir);
	if ((f = fopen(path, "r")) == NULL)
		return -1;
	while (fgets(line, sizeof line, f)) {
		char *p = strstr(line, "metrics address=");

		if (p && (p = strstr(p, "port=")) != NULL)
			port = atoi(p + 5);
	}
	fclose(f);
	return port;
}

/* GET /metrics; the body (malloc'd) or NULL. */
static char *
scrape(int port)
{
	static const char req[] = "GET /metrics HTTP/1.0\r\nHost: x\r\n\r\n";
	struct test_conn c;
	char *buf = malloc(1 << 20), *body;
	size_t len = 0;
	ssize_t n;

	if (test_conn_open(&c, port, false) < 0 || test_conn_write(&c, req, sizeof req - 1) < 0) {
		free(buf);
		return NULL;
	}
	while (len < (1 << 20) - 1) {
		struct pollfd p = { .fd = c.fd, .events = POLLIN };

		if (poll(&p, 1, 10000) != 1 || (n = read(c.fd, buf + len, (1 << 20) - 1 - len)) <= 0)
			break;
		len += (size_t)n;
	}
	buf[len] = '\0';
	test_conn_close(&c);
	if (strncmp(buf, "HTTP/1.", 7) != 0 || strstr(buf, " 200 ") == NULL ||
	    (body = strstr(buf, "\r\n\r\n")) == NULL) {
		free(buf);
		return NULL;
	}
	memmove(buf, body + 4, strlen(body + 4) + 1);
	return buf;
}

/* The value of one sample ("name" or "name{labels}"), or -1. */
static double
sample(const char *text, const char *series)
{
	const char *p = text;
	size_t len = strlen(series);

	while ((p = strstr(p, series)) != NULL) {
		if ((p == text || p[-1] == '\n') && p[len] == ' ')
			return strtod(p + len + 1, NULL);
		p += len;
	}
	return -1;
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
	m = scrape(port);
	CU_ASSERT_PTR_NOT_NULL_FATAL(m);
	CU_ASSERT(exposition_valid(m));
	CU_ASSERT_EQUAL(sample(m, "chand_connections_current"), 2);
	CU_ASSERT_EQUAL(sample(m, "chand_channels"), 2);
	CU_ASSERT_EQUAL(sample(m, "chand_buffered_values"), 3);
	CU_ASSERT(sample(m, "chand_buffered_bytes") >= 15);
	CU_ASSERT_EQUAL(sample(m, "chand_waiters{kind=\"recv\"}"), 1);
	CU_ASSERT_EQUAL(sample(m, "chand_waiters{kind=\"send\"}"), 0);
	CU_ASSERT_EQUAL(sample(m, "chand_pending_requests"), 1);
	CU_ASSERT_EQUAL(sample(m, "chand_operations_total{op=\"SEND\",status=\"OK\"}"), 3);
	CU_ASSERT_EQUAL(sample(m, "chand_operations_total{op=\"SEND\",status=\"DEADLINE_EXCEEDED\"}"), 1);
	CU_ASSERT_EQUAL(sample(m, "chand_operations_total{op=\"MAKE\",status=\"OK\"}"), 2);
	CU_ASSERT_EQUAL(sample(m, "chand_operation_duration_seconds_bucket{le=\"+Inf\"}"),
	    sample(m, "chand_operation_duration_seconds_count"));
	CU_ASSERT_PTR_NOT_NULL(strstr(m, "# TYPE chand_operation_duration_seconds histogram"));
	CU_ASSERT_EQUAL(sample(m, "chand_links"), 0);
	CU_ASSERT_EQUAL(sample(m, "chand_jobs"), 0);
	CU_ASSERT(sample(m, "chand_pool_workers") >= 1);
	CU_ASSERT_EQUAL(sample(m, "chand_pool_queue_depth"), 0);
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
		m = scrape(port);
		CU_ASSERT_PTR_NOT_NULL_FATAL(m);
		CU_ASSERT_EQUAL(sample(m, "chand_links"), 2);
		CU_ASSERT_EQUAL(sample(m, "chand_jobs"), 1);
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
		m = scrape(port);
		CU_ASSERT_PTR_NOT_NULL_FATAL(m);
		CU_ASSERT_EQUAL(sample(m, "chand_operations_total{op=\"STREAM\",status=\"OK\"}"), 1);
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
	m = scrape(port);
	CU_ASSERT_PTR_NOT_NULL_FATAL(m);
	CU_ASSERT(exposition_valid(m));
	CU_ASSERT_EQUAL(sample(m, "chand_connections_current"), 0);
	CU_ASSERT_EQUAL(sample(m, "chand_connections"), -1);
	CU_ASSERT_PTR_NOT_NULL(strstr(m, "# TYPE chand_connections_total counter\n"));
	CU_ASSERT_EQUAL(sample(m, "chand_build_info{version=\"" PACKAGE_VERSION "\"}"), 1);
	CU_ASSERT(sample(m, "process_cpu_seconds_total") >= 0);
	CU_ASSERT_PTR_NOT_NULL(strstr(m, "# TYPE process_cpu_seconds_total counter\n"));
	CU_ASSERT(sample(m, "process_resident_memory_bytes") > 0);
	CU_ASSERT(sample(m, "process_virtual_memory_bytes") >= sample(m, "process_resident_memory_bytes"));
	/* the listeners, the log, the loop's own: several, and fewer than allowed */
	CU_ASSERT(sample(m, "process_open_fds") >= 3);
	CU_ASSERT(sample(m, "process_max_fds") > sample(m, "process_open_fds"));
	/* chand started after this test began, give or take a clock tick and a slow start */
	CU_ASSERT(sample(m, "process_start_time_seconds") >= now - 2);
	CU_ASSERT(sample(m, "process_start_time_seconds") <= (double)time(NULL) + 1);
	free(m);
	CU_ASSERT_EQUAL(test_server_stop(&s), 0);
}

/* promtool check metrics over a scrape with every kind of series in it. */
static void
test_metrics_promtool(void)
{
	char path[] = "/tmp/chand-prom.XXXXXX", cmd[256], out[4096] = "";
	struct test_server s;
	struct test_conn c;
	FILE *f;
	char *m;
	int fd, rc;
	size_t n;

	if (system("command -v promtool >/dev/null 2>&1") != 0) {
		printf("\n  promtool not installed (Debian package prometheus): its check is skipped ");
		return;
	}
	CU_ASSERT_FATAL(test_server_start(&s, "metrics_listen = 127.0.0.1:0\n") == 0);
	CU_ASSERT_FATAL(test_conn_open(&c, s.port, true) == 0);
	CU_ASSERT_EQUAL(st_make(&c, "prom", 1), STATUS_OK);
	CU_ASSERT_EQUAL(st_send_wait(&c, "prom", "x", 0), STATUS_OK);
	m = scrape(metrics_port(&s));
	CU_ASSERT_PTR_NOT_NULL_FATAL(m);
	CU_ASSERT_FATAL((fd = mkstemp(path)) >= 0);
	CU_ASSERT(write(fd, m, strlen(m)) == (ssize_t)strlen(m));
	close(fd);
	snprintf(cmd, sizeof cmd, "promtool check metrics < %s 2>&1", path);
	CU_ASSERT_FATAL((f = popen(cmd, "r")) != NULL);
	n = fread(out, 1, sizeof out - 1, f);
	out[n] = '\0';
	rc = pclose(f);
	if (rc != 0 || n > 0)
		fprintf(stderr, "promtool check metrics: %s\n", out);
	CU_ASSERT_EQUAL(rc, 0);
	CU_ASSERT_EQUAL(n, 0);	/* no lint findings either */
	unlink(path);
	free(m);
	test_conn_close(&c);
	CU_ASSERT_EQUAL(test_server_stop(&s), 0);
}

static void
register_suites(void)
{
	CU_pSuite s = test_suite("metrics", NULL, NULL);

	test_add(s, "/metrics in the Prometheus text format", test_metrics);
	test_add(s, "metric names: _current, build_info, process_*", test_metrics_names);
	test_add(s, "promtool check metrics", test_metrics_promtool);
}

int
main(int argc, char **argv)
{
	return test_main(argc, argv, register_suites);
}
