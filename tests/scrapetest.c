/*
 * scrapetest.c: fetch and check chand's /metrics for the tests (scrapetest.h).
 *
 * SPDX-License-Identifier: BSD-2-Clause
 */
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <CUnit/CUnit.h>

#include "scrapetest.h"
#include "testutil.h"

#define PAGE_MAX (1 << 20)

int
scrape_logged_port(const char *log)
{
	char line[1024];
	int port = -1;
	FILE *f;

	if ((f = fopen(log, "r")) == NULL)
		return -1;
	while (fgets(line, sizeof line, f)) {
		char *p = strstr(line, "metrics address=");

		if (p && (p = strstr(p, "port=")) != NULL)
			port = atoi(p + 5);
	}
	fclose(f);
	return port;
}

char *
scrape_http(int port, const char *req, int *code)
{
	struct test_conn c;
	char *buf = malloc(PAGE_MAX), *body;
	size_t len = 0;
	ssize_t n;

	*code = 0;
	if (buf == NULL || test_conn_open(&c, port, false) < 0) {
		free(buf);
		return NULL;
	}
	if (test_conn_write(&c, req, strlen(req)) < 0)
		goto fail;
	while (len < PAGE_MAX - 1) {
		struct pollfd p = { .fd = c.fd, .events = POLLIN };

		if (poll(&p, 1, 10000) != 1 || (n = read(c.fd, buf + len, PAGE_MAX - 1 - len)) <= 0)
			break;
		len += (size_t)n;
	}
	buf[len] = '\0';
	if (sscanf(buf, "HTTP/1.%*d %d", code) != 1 || (body = strstr(buf, "\r\n\r\n")) == NULL)
		goto fail;
	test_conn_close(&c);
	memmove(buf, body + 4, strlen(body + 4) + 1);
	return buf;
fail:
	test_conn_close(&c);
	free(buf);
	return NULL;
}

char *
scrape_metrics(int port)
{
	int code;
	char *body = scrape_http(port, "GET /metrics HTTP/1.0\r\nHost: x\r\n\r\n", &code);

	if (body != NULL && code != 200) {
		free(body);
		body = NULL;
	}
	return body;
}

double
scrape_sample(const char *text, const char *series)
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

void
scrape_promtool_clean(const char *text)
{
	char path[] = "/tmp/chand-prom.XXXXXX", cmd[128], out[4096] = "";
	FILE *f;
	size_t n;
	int fd, rc;

	if (system("command -v promtool >/dev/null 2>&1") != 0) {
		printf("\n  promtool not installed (Debian package prometheus): its check is skipped ");
		return;
	}
	CU_ASSERT_FATAL((fd = mkstemp(path)) >= 0);
	CU_ASSERT(write(fd, text, strlen(text)) == (ssize_t)strlen(text));
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
}
