/*
 * chanctl: the admin CLI of chand, built only on libchanclient's public API.
 *
 *	chanctl [OPTIONS] COMMAND [ARGS...]
 *
 * This half parses the options and runs one command of the table in
 * chanctl_cmds.c. Options go before or after the command (GNU getopt's
 * permutation), long ones spelled in full. -t TIMEOUT (a Go duration) is
 * the whole command's budget, sent on the wire as the operation's;
 * -h/--help works everywhere. Exit codes are listed in chanctl(1) and
 * chanctl.h.
 *
 * SPDX-License-Identifier: BSD-2-Clause
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chanctl.h"
#include "duration.h"

#define DEFAULT_ADDR "tcp://127.0.0.1:7420"
#define DEFAULT_TIMEOUT (5 * CHAN_SEC)	/* NATS's: an admin command never hangs */
#define GRACE_MAX (250 * CHAN_MSEC)	/* a round trip to a far server, and more */

void
usage(FILE *f)
{
	fprintf(f, "usage: chanctl [OPTIONS] COMMAND [ARGS...]   (OPTIONS also after COMMAND)\n\n"
	    "  -s, --server ADDR   server address (default $CHAND_ADDR or " DEFAULT_ADDR "):\n"
	    "                      HOST:PORT, [V6]:PORT or HOST (port 7420), each also after\n"
	    "                      tcp:// or tls://; unix:/PATH or /PATH; a cluster's\n"
	    "                      nodes: cluster://HOST:PORT,... (cluster+tls:// over TLS)\n"
	    "  -t, --timeout DUR   a Go duration (500ms, 2s, 1m30s): the whole command's\n"
	    "                      budget; default 5s, none for send and recv; 0: none\n"
	    "  --json              print one JSON document instead of tables\n"
	    "  --ca FILE, --cert FILE, --key FILE, --server-name NAME\n"
	    "                      tls:// and cluster+tls://: the CAs to trust, a client\n"
	    "                      certificate and its key, the name the server's\n"
	    "                      certificate must carry\n"
	    "                      (the token, if any, comes from $CHAND_TOKEN)\n"
	    "  -h, --help          this help; COMMAND --help: that command's\n"
	    "  --version           chanctl's version\n\n"
	    "commands:\n");
	for (size_t i = 0; i < ncmds; i++)
		fprintf(f, "  %-8s %-18s %s\n", cmds[i].name, cmds[i].args, cmds[i].help);
	fprintf(f, "\nexit codes: 0 ok, 1 error, 2 usage, 3 connection, 4 timeout, 5 closed, 6 not found\n");
}

void
cmd_usage(FILE *f, const struct cmd *cmd)
{
	fprintf(f, "usage: chanctl %s [OPTIONS]%s%s\n  %s\n", cmd->name, *cmd->args ? " " : "",
	    cmd->args, cmd->help);
}

const struct cmd *
cmd_find(const char *name)
{
	for (size_t i = 0; i < ncmds; i++)
		if (strcmp(cmds[i].name, name) == 0)
			return &cmds[i];
	return NULL;
}

/* ---- options ----------------------------------------------------------------------- */

enum { OPT_JSON = 256, OPT_VERSION, OPT_CA, OPT_CERT, OPT_KEY, OPT_SERVER_NAME, OPT_ERROR, OPT_CODE,
	OPT_ACK_WAIT, OPT_MAX_DELIVER, OPT_MAX_UNACKED, OPT_MAX_ACK_PENDING, OPT_DEAD_LETTER, OPT_NO_ACK,
	OPT_DURABLE };

static const struct option longopts[] = {
	{ "server", required_argument, NULL, 's' },
	{ "timeout", required_argument, NULL, 't' },
	{ "json", no_argument, NULL, OPT_JSON },
	{ "help", no_argument, NULL, 'h' },
	{ "version", no_argument, NULL, OPT_VERSION },
	{ "ca", required_argument, NULL, OPT_CA },
	{ "cert", required_argument, NULL, OPT_CERT },
	{ "key", required_argument, NULL, OPT_KEY },
	{ "server-name", required_argument, NULL, OPT_SERVER_NAME },
	{ "error", required_argument, NULL, OPT_ERROR },
	{ "code", required_argument, NULL, OPT_CODE },
	/* ack channels (PROTOCOL.md §16): make's and recv's own */
	{ "ack-wait", required_argument, NULL, OPT_ACK_WAIT },
	{ "max-deliver", required_argument, NULL, OPT_MAX_DELIVER },
	{ "max-unacked", required_argument, NULL, OPT_MAX_UNACKED },
	{ "max-ack-pending", required_argument, NULL, OPT_MAX_ACK_PENDING },
	{ "dead-letter", required_argument, NULL, OPT_DEAD_LETTER },
	{ "durable", no_argument, NULL, OPT_DURABLE },
	{ "no-ack", no_argument, NULL, OPT_NO_ACK },
	{ NULL, 0, NULL, 0 },
};

/* --ca, --cert, --key, --server-name, the grace and the token ($CHAND_TOKEN). */
static chan_dial_opts_t dial_opts = { .client_name = "chanctl" };

/*
 * The argv element of the option just taken: argv[optind - 1], or
 * argv[optind - 2] when that is a long option's separate argument.
 */
static const char *
option_text(char **argv, int li)
{
	if (li >= 0 && longopts[li].has_arg == required_argument && optarg == argv[optind - 1])
		return argv[optind - 2];
	return argv[optind - 1];
}

/*
 * getopt_long takes any unique prefix of a long option; chanctl takes only
 * the full name, so that an option added later never changes what a command
 * line means (--server was once taken as --server-name).
 */
static bool
long_exact(const char *text, int li)
{
	const char *name = longopts[li].name;
	size_t n;

	if (strncmp(text, "--", 2) != 0)
		return false;
	n = strcspn(text + 2, "=");
	return n == strlen(name) && strncmp(text + 2, name, n) == 0;
}

/* The long options text (up to any '=') is a prefix of, into alts. */
static void
long_alternatives(const char *text, char *alts, size_t cap)
{
	size_t n = strcspn(text + 2, "=");

	*alts = '\0';
	for (const struct option *o = longopts; o->name != NULL && n > 0; o++)
		if (strncmp(o->name, text + 2, n) == 0)
			snprintf(alts + strlen(alts), cap - strlen(alts), "%s--%s", *alts ? ", " : "",
			    o->name);
}

/* An option getopt refused or long_exact did not take: say which, and what would do. */
static int
bad_option(const struct cmd *cmd, const char *text, int ch)
{
	char alts[160] = "";

	if (ch == ':') {
		fprintf(stderr, "chanctl: option '%s' needs an argument\n", text);
	} else if (optopt != 0) {
		fprintf(stderr, "chanctl: unknown option '-%c'\n", optopt);
	} else {
		if (strncmp(text, "--", 2) == 0)
			long_alternatives(text, alts, sizeof alts);
		if (*alts)
			fprintf(stderr, "chanctl: unknown option '%.*s' (long options are spelled in "
			    "full: %s)\n", (int)strcspn(text, "="), text, alts);
		else
			fprintf(stderr, "chanctl: unknown option '%s'\n", text);
	}
	if (cmd != NULL)
		cmd_usage(stderr, cmd);
	else
		fputs("try 'chanctl --help'\n", stderr);
	return EXIT_USAGE;
}

/* close's --error MSG and --code N (only close takes them): 0 or EXIT_USAGE. */
static int
take_close_option(struct ctl *c, const struct cmd *cmd, int ch)
{
	char *end;

	if (cmd == NULL || !(cmd->flags & CMD_CLOSE_OPTS)) {
		fprintf(stderr, "chanctl: option '--%s' belongs to the close command\n",
		    ch == OPT_ERROR ? "error" : "code");
		return EXIT_USAGE;
	}
	c->close_err = true;
	if (ch == OPT_ERROR) {
		c->close_msg = optarg;
		return 0;
	}
	errno = 0;
	c->close_code = strtoull(optarg, &end, 10);
	if (errno || *end || end == optarg || *optarg == '-') {
		fprintf(stderr, "chanctl: --code: N must be a number from 0 to 2^64-1, not '%s'\n", optarg);
		return EXIT_USAGE;
	}
	return 0;
}

/* A count option of make: 0 or more. */
static int
take_count(const char *opt, long *out)
{
	char *end;

	errno = 0;
	if ((*out = strtol(optarg, &end, 10)) < 0 || *out > UINT32_MAX || errno || *end ||
	    end == optarg) {
		fprintf(stderr, "chanctl: %s: must be 0 to 4294967295, not '%s'\n", opt, optarg);
		return EXIT_USAGE;
	}
	return 0;
}

/* make's and recv's own long options (ack channels); elsewhere they are unknown. */
static int
take_delivery_option(struct ctl *c, const struct cmd *cmd, int ch)
{
	const char *owner = ch == OPT_NO_ACK ? "recv" : "make";

	if (cmd == NULL || strcmp(cmd->name, owner) != 0) {
		for (const struct option *o = longopts; o->name != NULL; o++)
			if (o->val == ch)
				fprintf(stderr, "chanctl: option '--%s' is only for '%s'\n", o->name, owner);
		return EXIT_USAGE;
	}
	switch (ch) {
	case OPT_ACK_WAIT:
		if (parse_duration(optarg, &c->ack_wait) < 0 || c->ack_wait <= 0) {
			fprintf(stderr, "chanctl: --ack-wait: '%s' is not a duration above 0 (500ms, 30s)\n",
			    optarg);
			return EXIT_USAGE;
		}
		return 0;
	case OPT_MAX_DELIVER:
		return take_count("--max-deliver", &c->max_deliver);
	case OPT_MAX_UNACKED:
		return take_count("--max-unacked", &c->max_unacked);
	case OPT_MAX_ACK_PENDING:
		return take_count("--max-ack-pending", &c->max_ack_pending);
	case OPT_DURABLE:
		c->durable = true;
		return 0;
	case OPT_DEAD_LETTER:
		c->dead_letter = optarg;
		return 0;
	default:
		c->no_ack = true;
		return 0;
	}
}

/* One option taken: 0, EXIT_USAGE, or -1 once help or the version is printed. */
static int
take_option(struct ctl *c, const struct cmd *cmd, int ch)
{
	char *end;

	if (ch >= OPT_ACK_WAIT && ch <= OPT_DURABLE)
		return take_delivery_option(c, cmd, ch);
	switch (ch) {
	case 's': c->addr = optarg; break;
	case 't':
		if (parse_duration(optarg, &c->timeout) < 0) {
			fprintf(stderr, "chanctl: -t: '%s' is not a duration (500ms, 2s, 1m)\n", optarg);
			return EXIT_USAGE;
		}
		c->timeout_set = true;
		break;
	case 'n':	/* only in recv's letters */
		errno = 0;
		if ((c->count = strtol(optarg, &end, 10)) <= 0 || errno || *end) {
			fprintf(stderr, "chanctl: -n: COUNT must be 1 or more, not '%s'\n", optarg);
			return EXIT_USAGE;
		}
		break;
	case OPT_JSON: c->out.json = true; break;
	case OPT_CA: dial_opts.tls_ca = optarg; break;
	case OPT_CERT: dial_opts.tls_cert = optarg; break;
	case OPT_KEY: dial_opts.tls_key = optarg; break;
	case OPT_SERVER_NAME: dial_opts.tls_server_name = optarg; break;
	case OPT_ERROR:
	case OPT_CODE:
		return take_close_option(c, cmd, ch);
	case 'h':
		if (cmd != NULL)
			cmd_usage(stdout, cmd);
		else
			usage(stdout);
		return -1;
	case OPT_VERSION:
		printf("chanctl %s\n", PACKAGE_VERSION);
		return -1;
	}
	return 0;
}

/*
 * The options before the command (cmd NULL: stop at its name), or, from
 * the command's name on, the options anywhere among its arguments (GNU
 * getopt moves them to the front; "--" ends them, for a VALUE that starts
 * with '-'). The global options are taken in both places. Returns 0,
 * EXIT_USAGE, or -1 when help or the version was printed.
 */
static int
parse_options(struct ctl *c, const struct cmd *cmd, int argc, char **argv)
{
	char letters[32];
	int ch, li, rc;

	/* ':' first: a missing argument is ':', not '?' */
	snprintf(letters, sizeof letters, "%s:s:t:h%s", cmd ? "" : "+",
	    cmd && cmd->opts ? cmd->opts : "");
	optind = 0;		/* glibc: start afresh on this argv */
	opterr = 0;		/* bad_option says it, naming the command */
	for (;;) {
		li = -1;
		optopt = 0;
		if ((ch = getopt_long(argc, argv, letters, longopts, &li)) == -1)
			return 0;
		if (ch == '?' || ch == ':' || (li >= 0 && !long_exact(option_text(argv, li), li)))
			return bad_option(cmd, option_text(argv, li), ch);
		if ((rc = take_option(c, cmd, ch)) != 0)
			return rc;
	}
}

/* ---- running a command --------------------------------------------------------------- */

/*
 * The contexts. -t is the whole command's budget: dial, HELLO and the
 * operation share one deadline. Without it a command gets DEFAULT_TIMEOUT,
 * but send and recv wait as long as Go would (only their dial is bounded,
 * so a server that never answers cannot hang them). -t 0: no deadline.
 * Past a deadline the library waits for the server's word (cancel_grace_ns,
 * default 1 s, so that a value matched at the deadline is not lost); a
 * tenth of the budget, at most GRACE_MAX, keeps "-t 1s" about 1 s.
 */
static int
set_budget(struct ctl *c, const struct cmd *cmd)
{
	int64_t dial = c->timeout_set ? c->timeout : DEFAULT_TIMEOUT;
	int64_t op = c->timeout_set || !(cmd->flags & CMD_BLOCKS) ? dial : 0;
	int rc;

	c->ctx = c->dial_ctx = chan_background();
	if (op > 0 && (rc = chan_with_timeout(&c->ctx, chan_background(), op)) != CHAN_OK)
		return fail("context", rc);
	c->dial_ctx = c->ctx;
	if (op == 0 && dial > 0 &&
	    (rc = chan_with_timeout(&c->dial_ctx, chan_background(), dial)) != CHAN_OK)
		return fail("context", rc);
	if (dial > 0)
		dial_opts.cancel_grace_ns = dial / 10 > GRACE_MAX ? GRACE_MAX :
		    dial / 10 < CHAN_MSEC ? CHAN_MSEC : dial / 10;
	return EXIT_OKAY;
}

static int
connect_server(struct ctl *c)
{
	int rc;

	c->dial_opts = &dial_opts;
	rc = chan_dial(c->dial_ctx, c->addr, &dial_opts, &c->conn);

	if (rc == CHAN_EINVAL && ctl_is_cluster(c) && !ctl_is_cluster_tls(c) &&
	    (dial_opts.tls_ca || dial_opts.tls_cert || dial_opts.tls_key || dial_opts.tls_server_name)) {
		fprintf(stderr, "chanctl: --ca, --cert, --key and --server-name need TLS: "
		    "say cluster+tls:// instead of '%s'\n", c->addr);
		return EXIT_USAGE;
	}
	if (rc == CHAN_EINVAL) {
		fprintf(stderr, "chanctl: '%s' is not a server address (HOST:PORT, [V6]:PORT, HOST, "
		    "tcp://, tls://, unix:/PATH, /PATH, cluster:// or cluster+tls://HOST:PORT,...)\n",
		    c->addr);
		return EXIT_USAGE;
	}
	if (rc == CHAN_ECONNECT) {
		fprintf(stderr, "chanctl: cannot connect to %s: %s\n", c->addr, strerror(errno));
		return EXIT_CONNECT;
	}
	if (rc != CHAN_OK) {
		fprintf(stderr, "chanctl: cannot connect to %s: %s\n", c->addr, chan_strerror(rc));
		return rc == CHAN_ENOTSUP ? EXIT_USAGE : rc == CHAN_ETLS ? EXIT_CONNECT : exit_for(rc);
	}
	return EXIT_OKAY;
}

/* Dial and run cmd within its budget; then let go of the connection and the contexts. */
static int
run_remote(struct ctl *c, const struct cmd *cmd, int argc, char **argv)
{
	int rc;

	if ((rc = set_budget(c, cmd)) == EXIT_OKAY && (rc = connect_server(c)) == EXIT_OKAY)
		rc = cmd->run(c, argc, argv);
	chan_conn_close(c->conn);
	if (c->dial_ctx != c->ctx)
		chan_ctx_free(c->dial_ctx);
	chan_ctx_free(c->ctx);
	return rc;
}

int
main(int argc, char **argv)
{
	struct ctl c = { .count = 1, .close_code = 1, .max_deliver = -1, .max_unacked = -1,
	    .max_ack_pending = -1 };
	const struct cmd *cmd;
	int rc;

	c.addr = getenv("CHAND_ADDR") ? getenv("CHAND_ADDR") : DEFAULT_ADDR;
	dial_opts.token = getenv("CHAND_TOKEN");	/* not a flag: argv is visible to every user */
	if ((rc = parse_options(&c, NULL, argc, argv)) != 0)
		return rc < 0 ? EXIT_OKAY : rc;
	if (optind >= argc) {
		usage(stderr);
		return EXIT_USAGE;
	}
	if ((cmd = cmd_find(argv[optind])) == NULL) {
		fprintf(stderr, "chanctl: unknown command '%s'\n", argv[optind]);
		usage(stderr);
		return EXIT_USAGE;
	}
	argc -= optind;
	argv += optind;
	if ((rc = parse_options(&c, cmd, argc, argv)) != 0)
		return rc < 0 ? EXIT_OKAY : rc;
	argc -= optind;
	argv += optind;
	if (argc < cmd->min || argc > cmd->max) {
		cmd_usage(stderr, cmd);
		return EXIT_USAGE;
	}
	out_init(&c.out, stdout);
	rc = cmd->flags & CMD_LOCAL ? cmd->run(&c, argc, argv) : run_remote(&c, cmd, argc, argv);
	out_free(&c.out);
	return rc;
}
