/*
 * chanctl: the admin CLI of chand, built only on libchanclient's public API.
 *
 *	chanctl [-s ADDR] [--json] COMMAND [ARGS...]
 *
 * One entry per command in a table (like tmux's cmd-*.c); every command
 * takes -t TIMEOUT (a Go duration, sent on the wire as the operation's
 * budget) and -h. Exit codes are listed in chanctl(1) and below.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "chanclient.h"
#include "ctl_out.h"

#define DEFAULT_ADDR "tcp://127.0.0.1:7420"

enum exit_code {
	EXIT_OKAY = 0,
	EXIT_ERROR = 1,		/* any other error the server or library reported */
	EXIT_USAGE = 2,
	EXIT_CONNECT = 3,	/* could not connect, or the connection broke */
	EXIT_TIMEOUT = 4,	/* -t ran out */
	EXIT_CLOSED = 5,	/* the channel is closed (recv: exhausted) */
	EXIT_NOTFOUND = 6,	/* no such channel, client or request */
};

struct ctl {
	const char *addr;
	chan_conn_t *conn;
	chan_ctx_t *ctx;
	struct out out;
	long count;		/* recv -n */
};

struct cmd {
	const char *name;
	const char *args;	/* usage after the name */
	const char *help;
	int min, max;		/* positional arguments */
	int (*run)(struct ctl *, int, char **);
};

static int
exit_for(int err)
{
	switch (err) {
	case CHAN_OK: return EXIT_OKAY;
	case CHAN_EDEADLINE: return EXIT_TIMEOUT;
	case CHAN_ECLOSED: return EXIT_CLOSED;
	case CHAN_ENOTFOUND: return EXIT_NOTFOUND;
	case CHAN_ECONNECT: case CHAN_ECONNLOST: case CHAN_ENOTCONN: case CHAN_ERESOLVE:
		return EXIT_CONNECT;
	default: return EXIT_ERROR;
	}
}

static int
fail(const char *what, int err)
{
	fprintf(stderr, "chanctl: %s: %s\n", what, chan_strerror(err));
	return exit_for(err);
}

/* ---- commands ---------------------------------------------------------------------- */

static int
cmd_ping(struct ctl *c, int argc, char **argv)
{
	int64_t start = chan_now();
	int rc = chan_ping(c->ctx, c->conn);

	if (rc != CHAN_OK)
		return fail("ping", rc);
	out_begin(&c->out);
	out_field_str(&c->out, "reply", "PONG");
	out_field_double(&c->out, "rtt_ms", (double)(chan_now() - start) / 1e6);
	out_end(&c->out);
	return EXIT_OKAY;
}

static void
info_row(struct out *o, const chan_info_t *i)
{
	out_row_begin(o);
	out_col_str(o, "name", i->name);
	out_col_uint(o, "len", i->len);
	out_col_uint(o, "cap", i->cap);
	out_col_bool(o, "closed", i->closed);
	out_col_uint(o, "senders", i->senders);
	out_col_uint(o, "receivers", i->receivers);
	out_col_uint(o, "bytes", i->bytes);
	out_row_end(o);
}

static int
cmd_ls(struct ctl *c, int argc, char **argv)
{
	chan_info_t *list;
	size_t n, matched;
	int rc = chan_admin_channels(c->ctx, c->conn, argc > 0 ? argv[0] : NULL, 0, &list, &n,
	    &matched);

	if (rc != CHAN_OK)
		return fail("ls", rc);
	out_table_begin(&c->out, "channels");
	for (size_t i = 0; i < n; i++)
		info_row(&c->out, &list[i]);
	out_table_end(&c->out, "matched", matched);
	free(list);
	return EXIT_OKAY;
}

static int
with_chan(struct ctl *c, const char *name, chan_t **ch)
{
	int rc = chan_handle_new(ch, c->conn, name);

	return rc == CHAN_OK ? EXIT_OKAY : fail(name, rc);
}

static int
cmd_info(struct ctl *c, int argc, char **argv)
{
	chan_info_t i;
	chan_t *ch;
	int rc;

	if ((rc = with_chan(c, argv[0], &ch)) != EXIT_OKAY)
		return rc;
	rc = chan_info(c->ctx, ch, &i);
	chan_free(ch);
	if (rc != CHAN_OK)
		return fail(argv[0], rc);
	out_begin(&c->out);
	out_field_str(&c->out, "name", i.name);
	out_field_uint(&c->out, "len", i.len);
	out_field_uint(&c->out, "cap", i.cap);
	out_field_bool(&c->out, "closed", i.closed);
	out_field_bool(&c->out, "anonymous", i.anonymous);
	out_field_uint(&c->out, "senders", i.senders);
	out_field_uint(&c->out, "receivers", i.receivers);
	out_field_uint(&c->out, "bytes", i.bytes);
	out_end(&c->out);
	return EXIT_OKAY;
}

static int
parse_size(const char *s, size_t *out)
{
	char *end;
	unsigned long long v;

	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno || *end || *s == '-' || end == s)
		return -1;
	*out = (size_t)v;
	return 0;
}

static int
cmd_make(struct ctl *c, int argc, char **argv)
{
	size_t cap = 0;
	chan_t *ch;
	int rc;

	if (argc > 1 && parse_size(argv[1], &cap) < 0) {
		fprintf(stderr, "chanctl: make: CAP must be a number, not '%s'\n", argv[1]);
		return EXIT_USAGE;
	}
	if ((rc = chan_make(c->ctx, c->conn, argv[0], cap, &ch)) != CHAN_OK)
		return fail(argv[0], rc);
	out_begin(&c->out);
	out_field_str(&c->out, "name", chan_name(ch));
	out_field_uint(&c->out, "cap", cap);
	out_end(&c->out);
	chan_free(ch);
	return EXIT_OKAY;
}

static int
cmd_close(struct ctl *c, int argc, char **argv)
{
	chan_t *ch;
	int rc;

	if ((rc = with_chan(c, argv[0], &ch)) != EXIT_OKAY)
		return rc;
	rc = chan_close(c->ctx, ch);
	chan_free(ch);
	if (rc != CHAN_OK)
		return fail(argv[0], rc);
	out_ok(&c->out);
	return EXIT_OKAY;
}

static int
cmd_delete(struct ctl *c, int argc, char **argv)
{
	size_t discarded = 0;
	chan_t *ch;
	int rc;

	if ((rc = with_chan(c, argv[0], &ch)) != EXIT_OKAY)
		return rc;
	rc = chan_delete(c->ctx, ch, &discarded);
	chan_free(ch);
	if (rc != CHAN_OK)
		return fail(argv[0], rc);
	out_begin(&c->out);
	out_field_uint(&c->out, "discarded", discarded);
	out_end(&c->out);
	return EXIT_OKAY;
}

/* All of stdin, for `send CH` without a value. */
static char *
read_stdin(size_t *len)
{
	size_t cap = 4096, n = 0;
	char *buf = malloc(cap);
	size_t got;

	while (buf && (got = fread(buf + n, 1, cap - n, stdin)) > 0) {
		n += got;
		if (n == cap) {
			char *nb = realloc(buf, cap *= 2);

			if (nb == NULL) {
				free(buf);
				return NULL;
			}
			buf = nb;
		}
	}
	*len = n;
	return buf;
}

static int
cmd_send(struct ctl *c, int argc, char **argv)
{
	char *stdin_buf = NULL;
	const char *data;
	size_t len;
	chan_t *ch;
	int rc;

	if (argc > 1) {
		data = argv[1];
		len = strlen(argv[1]);
	} else if ((data = stdin_buf = read_stdin(&len)) == NULL) {
		fprintf(stderr, "chanctl: send: cannot read stdin\n");
		return EXIT_ERROR;
	}
	if ((rc = with_chan(c, argv[0], &ch)) != EXIT_OKAY) {
		free(stdin_buf);
		return rc;
	}
	rc = chan_send(c->ctx, ch, data, len);
	chan_free(ch);
	free(stdin_buf);
	if (rc != CHAN_OK)
		return fail(argv[0], rc);
	out_ok(&c->out);
	return EXIT_OKAY;
}

/* Receive up to -n values (default 1); an exhausted closed channel is EXIT_CLOSED. */
static int
cmd_recv(struct ctl *c, int argc, char **argv)
{
	chan_t *ch;
	long got = 0;
	int rc, code = EXIT_OKAY;

	if ((rc = with_chan(c, argv[0], &ch)) != EXIT_OKAY)
		return rc;
	out_values_begin(&c->out);
	while (got < c->count) {
		chan_value_t v = { 0 };
		bool ok;

		if ((rc = chan_recv(c->ctx, ch, &v, &ok)) != CHAN_OK) {
			code = fail(argv[0], rc);
			break;
		}
		if (!ok) {
			code = EXIT_CLOSED;
			break;
		}
		if (v.kind == CHAN_VALUE_CHAN)
			out_value_chan(&c->out, chan_name(v.chan));
		else if (v.kind == CHAN_VALUE_ERROR)	/* a failed stage: not data */
			fprintf(stderr, "chanctl: %s: error value: %s\n", argv[0], (char *)v.data);
		else
			out_value_bytes(&c->out, v.data, v.len);
		chan_value_clear(&v);
		got++;
	}
	out_values_end(&c->out, code == EXIT_CLOSED);
	if (code == EXIT_CLOSED && !c->out.json)
		fprintf(stderr, "chanctl: %s: closed\n", argv[0]);
	chan_free(ch);
	return code;
}

static int
cmd_clients(struct ctl *c, int argc, char **argv)
{
	chan_client_info_t *list;
	size_t n;
	int rc = chan_admin_clients(c->ctx, c->conn, &list, &n);

	if (rc != CHAN_OK)
		return fail("clients", rc);
	out_table_begin(&c->out, "clients");
	for (size_t i = 0; i < n; i++) {
		out_row_begin(&c->out);
		out_col_uint(&c->out, "id", list[i].id);
		out_col_str(&c->out, "peer", list[i].peer);
		out_col_str(&c->out, "name", list[i].name);
		out_col_uint(&c->out, "pending", list[i].pending);
		out_col_uint(&c->out, "age_ms", list[i].age_ms);
		out_col_uint(&c->out, "unsent", list[i].unsent);
		out_row_end(&c->out);
	}
	out_table_end(&c->out, NULL, 0);
	free(list);
	return EXIT_OKAY;
}

static int
cmd_waiters(struct ctl *c, int argc, char **argv)
{
	chan_waiter_t *list;
	size_t n, total;
	int rc = chan_admin_waiters(c->ctx, c->conn, 0, &list, &n, &total);

	if (rc != CHAN_OK)
		return fail("waiters", rc);
	out_table_begin(&c->out, "waiters");
	for (size_t i = 0; i < n; i++) {
		out_row_begin(&c->out);
		out_col_uint(&c->out, "client", list[i].client);
		out_col_uint(&c->out, "request", list[i].request);
		out_col_str(&c->out, "op", list[i].op);
		out_col_uint(&c->out, "waited_ms", list[i].waited_ms);
		out_col_cases(&c->out, "cases", list[i].cases, list[i].ncases);
		out_row_end(&c->out);
	}
	out_table_end(&c->out, "total", total);
	chan_admin_waiters_free(list, n);
	return EXIT_OKAY;
}

/* The link operations of PROTOCOL.md §12, as chan_admin_waiters names them. */
static bool
is_link_op(const char *op, bool jobs_only)
{
	static const char *const links[] = { "OR", "OR_DONE", "TEE", "BRIDGE", "FAN_IN", "REPEAT",
	    "TAKE", "FAN_OUT" };

	if (jobs_only)
		return strcmp(op, "FAN_OUT") == 0;
	for (size_t i = 0; i < sizeof links / sizeof links[0]; i++)
		if (strcmp(op, links[i]) == 0)
			return true;
	return false;
}

/*
 * Running links (or only fan-out jobs): a link is a pending request for its
 * whole life, so WAITERS lists it with its op, its age and what it waits on
 * right now (its done channel first).
 */
static int
list_links(struct ctl *c, const char *what, bool jobs_only)
{
	chan_waiter_t *list;
	size_t n, total, shown = 0;
	int rc = chan_admin_waiters(c->ctx, c->conn, 0, &list, &n, &total);

	if (rc != CHAN_OK)
		return fail(what, rc);
	out_table_begin(&c->out, what);
	for (size_t i = 0; i < n; i++) {
		if (!is_link_op(list[i].op, jobs_only))
			continue;
		out_row_begin(&c->out);
		out_col_uint(&c->out, "client", list[i].client);
		out_col_uint(&c->out, "request", list[i].request);
		out_col_str(&c->out, "op", list[i].op);
		out_col_uint(&c->out, "age_ms", list[i].waited_ms);
		out_col_cases(&c->out, "waiting", list[i].cases, list[i].ncases);
		out_row_end(&c->out);
		shown++;
	}
	out_table_end(&c->out, "count", shown);
	if (n < total)	/* WAITERS lists at most its default limit */
		fprintf(stderr, "chanctl: %s: only the first %zu of %zu pending requests examined\n",
		    what, n, total);
	chan_admin_waiters_free(list, n);
	return EXIT_OKAY;
}

static int
cmd_links(struct ctl *c, int argc, char **argv)
{
	return list_links(c, "links", false);
}

static int
cmd_jobs(struct ctl *c, int argc, char **argv)
{
	return list_links(c, "jobs", true);
}

static int
cmd_stats(struct ctl *c, int argc, char **argv)
{
	chan_stat_t *st;
	size_t n;
	int rc = chan_admin_stats(c->ctx, c->conn, &st, &n);

	if (rc != CHAN_OK)
		return fail("stats", rc);
	out_begin(&c->out);
	for (size_t i = 0; i < n; i++)
		out_field_uint(&c->out, st[i].key, st[i].value);
	out_end(&c->out);
	free(st);
	return EXIT_OKAY;
}

static int
cmd_cancel(struct ctl *c, int argc, char **argv)
{
	size_t client, request = 0, canceled;
	int rc;

	if (parse_size(argv[0], &client) < 0 || client == 0 ||
	    (argc > 1 && (parse_size(argv[1], &request) < 0 || request == 0))) {
		fprintf(stderr, "chanctl: cancel: CLIENT and REQUEST are ids (see clients, waiters)\n");
		return EXIT_USAGE;
	}
	rc = chan_admin_unblock(c->ctx, c->conn, client, request, &canceled);
	if (rc == CHAN_ENOTFOUND) {
		fprintf(stderr, "chanctl: cancel: no such client%s\n", request ? " or pending request" : "");
		return EXIT_NOTFOUND;
	}
	if (rc != CHAN_OK)
		return fail("cancel", rc);
	out_begin(&c->out);
	out_field_uint(&c->out, "canceled", canceled);
	out_end(&c->out);
	return EXIT_OKAY;
}

static int
cmd_shutdown(struct ctl *c, int argc, char **argv)
{
	int rc = chan_admin_shutdown(c->ctx, c->conn);

	if (rc != CHAN_OK)
		return fail("shutdown", rc);
	out_ok(&c->out);
	return EXIT_OKAY;
}

static const struct cmd cmds[] = {
	{ "ping", "", "round trip to the server", 0, 0, cmd_ping },
	{ "ls", "[PATTERN]", "list channels (glob PATTERN) with len/cap/closed/waiters", 0, 1, cmd_ls },
	{ "info", "CH", "one channel's len, cap, closed, waiters, bytes", 1, 1, cmd_info },
	{ "make", "CH [CAP]", "make (or open) a channel with capacity CAP (default 0)", 1, 2, cmd_make },
	{ "close", "CH", "close a channel", 1, 1, cmd_close },
	{ "delete", "CH", "delete a channel and its buffered values", 1, 1, cmd_delete },
	{ "send", "CH [VALUE]", "send VALUE (or all of stdin) on CH; blocks like Go", 1, 2, cmd_send },
	{ "recv", "[-n COUNT] CH", "receive COUNT values (default 1), one per line", 1, 1, cmd_recv },
	{ "clients", "", "list connected clients", 0, 0, cmd_clients },
	{ "waiters", "", "every blocked operation: client, request, op, channels, time", 0, 0, cmd_waiters },
	{ "links", "", "running links (or, tee, bridge, fan-in, ...): client, request, age", 0, 0, cmd_links },
	{ "jobs", "", "running fan-out jobs (the links with op FAN_OUT)", 0, 0, cmd_jobs },
	{ "stats", "", "server counters", 0, 0, cmd_stats },
	{ "cancel", "CLIENT [REQUEST]", "cancel a client's pending request, or all of them", 1, 2, cmd_cancel },
	{ "shutdown", "", "shut the server down", 0, 0, cmd_shutdown },
};
#define NCMDS (sizeof cmds / sizeof cmds[0])

static void
usage(FILE *f)
{
	fprintf(f, "usage: chanctl [-s ADDR] [--json] COMMAND [-t TIMEOUT] [ARGS...]\n\n"
	    "  -s ADDR   server address (default $CHAND_ADDR or " DEFAULT_ADDR "):\n"
	    "            HOST:PORT, [V6]:PORT or HOST (port 7420), each also after\n"
	    "            tcp:// or tls://; unix:/PATH or /PATH\n"
	    "  --ca FILE, --cert FILE, --key FILE, --server-name NAME\n"
	    "            tls://: the CAs to trust, a client certificate and its key,\n"
	    "            the name the server's certificate must carry\n"
	    "            (the token, if any, comes from $CHAND_TOKEN)\n"
	    "  --json    print one JSON document instead of tables\n"
	    "  -t DUR    a Go duration (500ms, 2s, 1m30s): how long the command may wait\n\n"
	    "commands:\n");
	for (size_t i = 0; i < NCMDS; i++)
		fprintf(f, "  %-8s %-18s %s\n", cmds[i].name, cmds[i].args, cmds[i].help);
	fprintf(f, "\nexit codes: 0 ok, 1 error, 2 usage, 3 connection, 4 timeout, 5 closed, 6 not found\n");
}

static void
cmd_usage(FILE *f, const struct cmd *cmd)
{
	fprintf(f, "usage: chanctl %s [-t TIMEOUT] %s\n  %s\n", cmd->name, cmd->args, cmd->help);
}

/* Per-command options: -t, -n (recv), -h. Returns -1 on a usage error, 1 for -h. */
static int
cmd_options(struct ctl *c, const struct cmd *cmd, int argc, char **argv, int64_t *timeout)
{
	int ch;

	optind = 1;
	while ((ch = getopt(argc, argv, "+t:n:h")) != -1) {
		switch (ch) {
		case 't':
			if (parse_duration(optarg, timeout) < 0 || *timeout <= 0) {
				fprintf(stderr, "chanctl: -t: '%s' is not a duration (500ms, 2s, 1m)\n", optarg);
				return -1;
			}
			break;
		case 'n':
			if (strcmp(cmd->name, "recv") != 0 || (c->count = strtol(optarg, NULL, 10)) <= 0) {
				fprintf(stderr, "chanctl: -n COUNT is recv's, and COUNT must be 1 or more\n");
				return -1;
			}
			break;
		case 'h':
			cmd_usage(stdout, cmd);
			return 1;
		default:
			cmd_usage(stderr, cmd);
			return -1;
		}
	}
	if (argc - optind < cmd->min || argc - optind > cmd->max) {
		cmd_usage(stderr, cmd);
		return -1;
	}
	return 0;
}

/* --ca, --cert, --key, --server-name and the token ($CHAND_TOKEN). */
static chan_dial_opts_t dial_opts = { .client_name = "chanctl" };

static int
connect_server(struct ctl *c)
{
	int rc = chan_dial(c->ctx, c->addr, &dial_opts, &c->conn);

	if (rc == CHAN_EINVAL) {
		fprintf(stderr, "chanctl: '%s' is not a server address (HOST:PORT, [V6]:PORT, HOST, "
		    "tcp://, tls://, unix:/PATH or /PATH)\n", c->addr);
		return EXIT_USAGE;
	}
	if (rc == CHAN_ECONNECT) {
		fprintf(stderr, "chanctl: cannot connect to %s: %s\n", c->addr, strerror(errno));
		return EXIT_CONNECT;
	}
	if (rc != CHAN_OK) {
		fprintf(stderr, "chanctl: cannot connect to %s: %s\n", c->addr, chan_strerror(rc));
		return rc == CHAN_EINVAL || rc == CHAN_ENOTSUP ? EXIT_USAGE :
		    rc == CHAN_ETLS ? EXIT_CONNECT : exit_for(rc);
	}
	return EXIT_OKAY;
}

static const struct cmd *
cmd_find(const char *name)
{
	for (size_t i = 0; i < NCMDS; i++)
		if (strcmp(cmds[i].name, name) == 0)
			return &cmds[i];
	return NULL;
}

int
main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ "ca", required_argument, NULL, 'C' },
		{ "cert", required_argument, NULL, 'E' },
		{ "key", required_argument, NULL, 'K' },
		{ "server-name", required_argument, NULL, 'N' },
		{ NULL, 0, NULL, 0 },
	};
	struct ctl c = { .count = 1 };
	const struct cmd *cmd;
	int64_t timeout = 0;
	int ch, rc;

	c.addr = getenv("CHAND_ADDR") ? getenv("CHAND_ADDR") : DEFAULT_ADDR;
	dial_opts.token = getenv("CHAND_TOKEN");	/* not a flag: argv is visible to every user */
	while ((ch = getopt_long(argc, argv, "+s:t:h", longopts, NULL)) != -1) {
		switch (ch) {
		case 's': c.addr = optarg; break;
		case 't':	/* also accepted before the command */
			if (parse_duration(optarg, &timeout) < 0 || timeout <= 0) {
				fprintf(stderr, "chanctl: -t: '%s' is not a duration (500ms, 2s, 1m)\n", optarg);
				return EXIT_USAGE;
			}
			break;
		case 'j': c.out.json = true; break;
		case 'C': dial_opts.tls_ca = optarg; break;
		case 'E': dial_opts.tls_cert = optarg; break;
		case 'K': dial_opts.tls_key = optarg; break;
		case 'N': dial_opts.tls_server_name = optarg; break;
		case 'h': usage(stdout); return EXIT_OKAY;
		default: usage(stderr); return EXIT_USAGE;
		}
	}
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
	if ((rc = cmd_options(&c, cmd, argc, argv, &timeout)) != 0)
		return rc > 0 ? EXIT_OKAY : EXIT_USAGE;
	c.ctx = chan_background();
	if (timeout > 0 && (rc = chan_with_timeout(&c.ctx, chan_background(), timeout)) != CHAN_OK)
		return fail("context", rc);
	out_init(&c.out, stdout);
	if ((rc = connect_server(&c)) == EXIT_OKAY)
		rc = cmd->run(&c, argc - optind, argv + optind);
	chan_conn_close(c.conn);
	if (timeout > 0)
		chan_ctx_free(c.ctx);
	out_free(&c.out);
	return rc;
}
