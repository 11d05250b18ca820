/*
 * scrapetest.h: the tests' side of chand's Prometheus endpoint
 * (test_metrics.c, test_cluster_etcdtls.c): find the port chand logged,
 * fetch a page over plain HTTP, read one sample, and have promtool check a
 * scrape. Each call that reads waits at most 10 s.
 *
 * SPDX-License-Identifier: BSD-2-Clause
 */
#ifndef CHAND_SCRAPETEST_H
#define CHAND_SCRAPETEST_H

/* The metrics port chand logged in the file log ("metrics address=... port=N"), or -1. */
int scrape_logged_port(const char *log);
/*
 * Send req to 127.0.0.1:port and read the answer until chand closes. The
 * body (malloc'd, the caller frees it) with *code the HTTP status, or NULL.
 */
char *scrape_http(int port, const char *req, int *code);
/* GET /metrics: the body (malloc'd) or NULL unless 200. */
char *scrape_metrics(int port);
/* The value of one sample ("name" or "name{labels}") in text, or -1 when absent. */
double scrape_sample(const char *text, const char *series);
/*
 * promtool check metrics finds nothing in text: a CUnit assertion. Says
 * so and returns when promtool (Debian package prometheus) is not installed.
 */
void scrape_promtool_clean(const char *text);

#endif
