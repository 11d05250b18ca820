/*
 * chanctl_cmds.c: chanctl's commands, one function and one table entry
 * each (like tmux's cmd-*.c), on libchanclient's public API only.
 *
 * SPDX-License-Identifier: BSD-2-Clause
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chanctl.h"

int
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

int
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
	int rc;

	if (ctl_is_cluster(c))		/* admin ops are per node: ask each */
		return cluster_ls(c, argc > 0 ? argv[0] : NULL);
	rc = chan_admin_channels(c->ctx, c->conn, argc > 0 ? argv[0] : NULL, 0, &list, &n, &matched);
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
	if (i.has_close_error) {
		out_field_uint(&c->out, "close_code", i.close_code);
		out_field_str(&c->out, "close_error", i.close_message);
	}
	if (i.ack_wait_ns != 0) {	/* an ack channel's counters (PROTOCOL.md §16) */
		out_field_double(&c->out, "ack_wait_s", (double)i.ack_wait_ns / 1e9);
		out_field_uint(&c->out, "inflight", i.inflight);
		out_field_uint(&c->out, "redelivered", i.redelivered);
		out_field_uint(&c->out, "dead_lettered", i.dead_lettered);
		out_field_uint(&c->out, "max_unacked", i.max_unacked);
		out_field_uint(&c->out, "max_ack_pending", i.max_ack_pending);
	}
	if (i.durable) {
		out_field_bool(&c->out, "durable", true);
		out_field_uint(&c->out, "journal_bytes", i.journal_bytes);
	}
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
	if (c->ack_wait == 0 && (c->max_deliver >= 0 || c->max_unacked >= 0 || c->max_ack_pending >= 0 ||
	    c->dead_letter)) {
		fprintf(stderr, "chanctl: make: --max-deliver, --max-unacked, --max-ack-pending and "
		    "--dead-letter need --ack-wait\n");
		return EXIT_USAGE;
	}
	if (c->ack_wait != 0 || c->durable) {
		chan_delivery_opts_t o = CHAN_DELIVERY_OPTS_INIT;

		o.ack_wait_ns = c->ack_wait;
		o.durable = c->durable;
		if (c->max_deliver >= 0)
			o.max_deliver = (uint32_t)c->max_deliver;
		if (c->max_unacked >= 0)
			o.max_unacked = (uint32_t)c->max_unacked;
		if (c->max_ack_pending >= 0)
			o.max_ack_pending = (uint32_t)c->max_ack_pending;
		o.dead_letter = c->dead_letter;
		rc = chan_make_opts(c->ctx, c->conn, argv[0], cap, &o, &ch);
	} else {
		rc = chan_make(c->ctx, c->conn, argv[0], cap, &ch);
	}
	if (rc != CHAN_OK)
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
	rc = c->close_err ? chan_close_err(c->ctx, ch, c->close_code, c->close_msg) :
	    chan_close(c->ctx, ch);
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

/* The channel ended: say so, with its close error if it has one. */
static void
recv_closed(struct ctl *c, chan_t *ch, const char *name)
{
	char msg[CHAN_CLOSE_MSG_MAX + 1];
	uint64_t code;

	if (!chan_err(ch, &code, msg, sizeof msg)) {
		out_values_end(&c->out, true);
		if (!c->out.json)
			fprintf(stderr, "chanctl: %s: closed\n", name);
		return;
	}
	out_values_end_err(&c->out, code, msg);
	if (!c->out.json)
		fprintf(stderr, "chanctl: %s: closed with error %" PRIu64 ": %s\n", name, code, msg);
}

/*
 * Receive up to -n values (default 1); an exhausted closed channel is
 * EXIT_CLOSED, its close error (if any) said after the values. On an ack
 * channel each value is acked once printed (and the ack confirmed), unless
 * --no-ack: then it goes back to the channel when chanctl exits, to be
 * delivered again.
 */
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
		chan_msg_t m = { 0 };
		const chan_value_t *v = &m.value;
		bool ok;

		if ((rc = chan_recv_msg(c->ctx, ch, &m, &ok)) != CHAN_OK) {
			code = fail(argv[0], rc);
			break;
		}
		if (!ok) {
			code = EXIT_CLOSED;
			break;
		}
		if (v->kind == CHAN_VALUE_CHAN)
			out_value_chan(&c->out, chan_name(v->chan));
		else if (v->kind == CHAN_VALUE_ERROR)	/* a failed stage: not data */
			fprintf(stderr, "chanctl: %s: error value: %s\n", argv[0], (char *)v->data);
		else
			out_value_bytes(&c->out, v->data, v->len);
		got++;
		rc = m.tag != 0 && !c->no_ack ? chan_ack_n(c->ctx, ch, &m.tag, 1) : CHAN_OK;
		chan_msg_clear(&m);
		if (rc != CHAN_OK) {
			code = fail(argv[0], rc);
			break;
		}
	}
	if (code == EXIT_CLOSED)
		recv_closed(c, ch, argv[0]);
	else
		out_values_end(&c->out, false);
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
		out_col_str(&c->out, "home", list[i].home);
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

/* An ack channel's values in flight (PROTOCOL.md §16): who holds them, how often delivered, how long. */
static int
cmd_inflight(struct ctl *c, int argc, char **argv)
{
	chan_inflight_t *list;
	size_t n, total;
	int rc = chan_admin_inflight(c->ctx, c->conn, argv[0], 0, &list, &n, &total);

	if (rc == CHAN_EBADREQ) {
		fprintf(stderr, "chanctl: inflight: %s is not an ack channel\n", argv[0]);
		return EXIT_ERROR;
	}
	if (rc != CHAN_OK)
		return fail(argv[0], rc);
	out_table_begin(&c->out, "inflight");
	for (size_t i = 0; i < n; i++) {
		out_row_begin(&c->out);
		out_col_uint(&c->out, "client", list[i].client);
		out_col_uint(&c->out, "tag", list[i].tag);
		out_col_uint(&c->out, "count", list[i].count);
		out_col_uint(&c->out, "age_ms", list[i].age_ms);
		out_row_end(&c->out);
	}
	out_table_end(&c->out, "total", total);
	free(list);
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

static int
cmd_help(struct ctl *c, int argc, char **argv)
{
	const struct cmd *cmd;

	if (argc == 0) {
		usage(stdout);
		return EXIT_OKAY;
	}
	if ((cmd = cmd_find(argv[0])) == NULL) {
		fprintf(stderr, "chanctl: help: unknown command '%s'\n", argv[0]);
		return EXIT_USAGE;
	}
	cmd_usage(stdout, cmd);
	return EXIT_OKAY;
}

const struct cmd cmds[] = {
	{ "ping", "", "round trip to the server", 0, 0, cmd_ping, NULL, 0 },
	{ "ls", "[PATTERN]", "list channels (glob PATTERN) with len/cap/closed/waiters", 0, 1, cmd_ls, NULL, 0 },
	{ "info", "CH", "one channel's len, cap, closed, waiters, bytes, close error", 1, 1, cmd_info, NULL, 0 },
	{ "make", "CH [CAP]", "make (or open) a channel with capacity CAP (default 0); with "
	    "--ack-wait DUR [--max-deliver N] [--max-unacked N] [--max-ack-pending N] [--dead-letter CH], "
	    "an ack channel; with --durable, one kept across restarts (CAP >= 1, chand's data_dir)", 1, 2,
	    cmd_make, NULL, 0 },
	{ "close", "[--error MSG] [--code N] CH", "close a channel, with an error (code N, default 1) if given",
	    1, 1, cmd_close, NULL, CMD_CLOSE_OPTS },
	{ "delete", "CH", "delete a channel and its buffered values", 1, 1, cmd_delete, NULL, 0 },
	{ "send", "CH [VALUE]", "send VALUE (or all of stdin) on CH; blocks like Go", 1, 2, cmd_send,
	    NULL, CMD_BLOCKS },
	{ "recv", "[-n COUNT] CH", "receive COUNT values (default 1), one per line; on an ack "
	    "channel acks each (--no-ack: leaves it)", 1, 1, cmd_recv, "n:", CMD_BLOCKS },
	{ "inflight", "CH", "an ack channel's values in flight: client, tag, count, age", 1, 1,
	    cmd_inflight, NULL, 0 },
	{ "clients", "", "list connected clients", 0, 0, cmd_clients, NULL, 0 },
	{ "waiters", "", "every blocked operation: client, request, op, channels, time", 0, 0, cmd_waiters, NULL, 0 },
	{ "links", "", "running links (or, tee, bridge, fan-in, ...): client, request, age", 0, 0, cmd_links, NULL, 0 },
	{ "jobs", "", "running fan-out jobs (the links with op FAN_OUT)", 0, 0, cmd_jobs, NULL, 0 },
	{ "stats", "", "server counters", 0, 0, cmd_stats, NULL, 0 },
	{ "cluster", "nodes | where CH", "a cluster's live nodes (name, addr, lease left, channels owned, "
	    "clients), or the node that owns CH", 1, 2, cmd_cluster, NULL, 0 },
	{ "cancel", "CLIENT [REQUEST]", "cancel a client's pending request, or all of them", 1, 2, cmd_cancel, NULL, 0 },
	{ "shutdown", "", "shut the server down", 0, 0, cmd_shutdown, NULL, 0 },
	{ "help", "[COMMAND]", "this help, or one command's", 0, 1, cmd_help, NULL, CMD_LOCAL },
};
const size_t ncmds = sizeof cmds / sizeof cmds[0];
