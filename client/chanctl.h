/*
 * chanctl.h: what chanctl's two halves share: the run's state, the exit
 * codes, and the command table. chanctl.c parses the options and runs a
 * command; chanctl_cmds.c holds the commands, one entry each. A command
 * prints through ctl->out and returns an exit code. One command per
 * process: nothing here is thread-safe.
 *
 * SPDX-License-Identifier: BSD-2-Clause
 */
#ifndef CHANCTL_H
#define CHANCTL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "chanclient.h"
#include "ctl_out.h"

enum exit_code {
	EXIT_OKAY = 0,
	EXIT_ERROR = 1,		/* any other error the server or library reported */
	EXIT_USAGE = 2,
	EXIT_CONNECT = 3,	/* could not connect, or the connection broke */
	EXIT_TIMEOUT = 4,	/* -t (or the default timeout) ran out */
	EXIT_CLOSED = 5,	/* the channel is closed (recv: exhausted) */
	EXIT_NOTFOUND = 6,	/* no such channel, client or request */
};

struct ctl {
	const char *addr;
	chan_conn_t *conn;
	chan_ctx_t *ctx;	/* the command's: dial, HELLO and the operation */
	chan_ctx_t *dial_ctx;	/* ctx, or the dial's own for send and recv without -t */
	int64_t timeout;	/* -t; 0: none */
	bool timeout_set;
	struct out out;
	long count;		/* recv -n */
	const char *close_msg;	/* close --error; NULL: a plain close */
	uint64_t close_code;	/* close --code */
	bool close_err;		/* close: --error or --code given */
	int64_t ack_wait;	/* make --ack-wait; 0: a plain channel */
	long max_deliver;	/* make --max-deliver; -1: the default */
	long max_unacked;	/* make --max-unacked; -1: the default */
	long max_ack_pending;	/* make --max-ack-pending; -1: the default */
	const char *dead_letter;	/* make --dead-letter */
	bool durable;			/* make --durable */
	bool no_ack;		/* recv --no-ack */
	const chan_dial_opts_t *dial_opts;	/* for the nodes of a cluster, dialed one by one */
};

enum cmd_flag {
	CMD_BLOCKS = 1,		/* send, recv: no default timeout, they wait as Go does */
	CMD_LOCAL = 2,		/* help: no server needed */
	CMD_CLOSE_OPTS = 4,	/* close: takes --error and --code */
};

struct cmd {
	const char *name;
	const char *args;	/* usage after the name */
	const char *help;
	int min, max;		/* positional arguments */
	int (*run)(struct ctl *, int, char **);
	const char *opts;	/* getopt letters of its own, if any */
	int flags;		/* enum cmd_flag */
};

extern const struct cmd cmds[];
extern const size_t ncmds;

/* The exit code for a CHAN_E* code. */
int exit_for(int err);
/* "chanctl: what: why" on stderr; exit_for(err). */
int fail(const char *what, int err);
/* chanctl_cluster.c: -s is a cluster address; "cluster ..."; ls over every node. */
bool ctl_is_cluster(const struct ctl *c);
/* -s is cluster+tls://: every node is dialed over TLS. */
bool ctl_is_cluster_tls(const struct ctl *c);
int cmd_cluster(struct ctl *c, int argc, char **argv);
int cluster_ls(struct ctl *c, const char *pattern);
/* The command named name, or NULL. */
const struct cmd *cmd_find(const char *name);
/* chanctl's usage, or one command's (chanctl.c). */
void usage(FILE *f);
void cmd_usage(FILE *f, const struct cmd *cmd);

#endif
