/*
 * ctltest.h: what the parts of test_chanctl share (test_chanctl.c,
 * test_chanctl_cli.c): a chand per suite, listening on an ephemeral
 * loopback port and a unix socket; chanctl run in the foreground or left
 * running; a small JSON validator; a listener that never answers.
 *
 * SPDX-License-Identifier: BSD-2-Clause
 */
#ifndef CHAND_CTLTEST_H
#define CHAND_CTLTEST_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "srvtest.h"

extern struct test_server srv;
extern char addr[64];			/* tcp://127.0.0.1:PORT of srv */
extern char sock_path[64];		/* srv listens here too */
extern const char *env_addr;		/* chanctl's $CHAND_ADDR (NULL: unset); addr by default */

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

/* The suite hooks: start srv (with its unix socket), and stop it. 0 or -1. */
int ctl_suite_init(void);
int ctl_suite_clean(void);

/* Start chanctl with argv (argv[0] is replaced; NULL-terminated). */
void ctl_start(struct proc *p, const char **argv);
/* Wait for p to end (killed after 30 s: status -1) and collect it into r. */
void ctl_finish(struct proc *p, struct run *r);
/* p has not ended yet (it is not reaped: ctl_finish still collects it). */
bool running(const struct proc *p);
/* Run chanctl with args (NULL-terminated), stdin from in (may be NULL). */
void ctl(struct run *r, const char *in, ...);

/* doc is one JSON document and nothing after it. */
bool json_valid(const char *doc);

/* A connection waits in lfd's queue: something reached it. */
bool reached(int lfd);

/* test_chanctl_cli.c's and test_chanctl_ack.c's suites. */
void register_chanctl_cli(void);
void register_chanctl_ack(void);

#endif
