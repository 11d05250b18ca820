/*
 * chanctl_cluster.c: chanctl's views of a chand cluster (PROTOCOL.md §17):
 * "cluster nodes", "cluster where CH", and "ls" over every node when -s
 * is a cluster address. Each node is asked directly (a connection of its
 * own), since admin operations are per node.
 *
 * SPDX-License-Identifier: BSD-2-Clause
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chanctl.h"

bool
ctl_is_cluster_tls(const struct ctl *c)
{
	return strncmp(c->addr, "cluster+tls://", 14) == 0;
}

bool
ctl_is_cluster(const struct ctl *c)
{
	return strncmp(c->addr, "cluster://", 10) == 0 || ctl_is_cluster_tls(c) ||
	    strchr(c->addr, ',') != NULL;
}

/* Dial a node by its advertise address as the cluster was dialed: over TLS for cluster+tls://. */
static int
node_dial(struct ctl *c, const char *addr, chan_conn_t **out)
{
	char url[300];

	snprintf(url, sizeof url, "%s%s", ctl_is_cluster_tls(c) ? "tls://" : "", addr);
	return chan_dial(c->ctx, url, c->dial_opts, out);
}

/* The live nodes as one of them sees them. */
static int
nodes_of(struct ctl *c, chan_node_info_t **nodes, size_t *n)
{
	int rc = chan_admin_cluster_nodes(c->ctx, c->conn, nodes, n);

	if (rc == CHAN_EBADREQ)
		fprintf(stderr, "chanctl: cluster: %s is not a cluster node (no cluster_etcd)\n", c->addr);
	else if (rc != CHAN_OK)
		return fail("cluster nodes", rc);
	return rc == CHAN_OK ? EXIT_OKAY : EXIT_ERROR;
}

/* What node d says of itself: its lease, and its connections (STATS); false if unreachable. */
static bool
node_self(struct ctl *c, const chan_node_info_t *d, uint64_t *lease_ms, uint64_t *clients)
{
	chan_node_info_t *list = NULL;
	chan_stat_t *st = NULL;
	chan_conn_t *nc;
	size_t n = 0, ns = 0;
	bool ok = false;

	if (node_dial(c, d->addr, &nc) != CHAN_OK)
		return false;
	if (chan_admin_cluster_nodes(c->ctx, nc, &list, &n) == CHAN_OK &&
	    chan_admin_stats(c->ctx, nc, &st, &ns) == CHAN_OK) {
		for (size_t i = 0; i < n; i++)
			if (list[i].self)
				*lease_ms = list[i].lease_left_ms;
		for (size_t i = 0; i < ns; i++)
			if (strcmp(st[i].key, "connections") == 0)
				*clients = st[i].value - 1;	/* not this one */
		ok = true;
	}
	free(list);
	free(st);
	chan_conn_close(nc);
	return ok;
}

static int
cluster_nodes(struct ctl *c)
{
	chan_node_info_t *nodes;
	uint64_t lease, clients;
	size_t n;
	int rc;

	if ((rc = nodes_of(c, &nodes, &n)) != EXIT_OKAY)
		return rc;
	out_table_begin(&c->out, "nodes");
	for (size_t i = 0; i < n; i++) {
		bool up;

		lease = clients = 0;
		up = node_self(c, &nodes[i], &lease, &clients);
		out_row_begin(&c->out);
		out_col_str(&c->out, "name", nodes[i].name);
		out_col_str(&c->out, "addr", nodes[i].addr);
		out_col_uint(&c->out, "lease_left_ms", lease);
		out_col_uint(&c->out, "owned", nodes[i].owned);
		out_col_uint(&c->out, "clients", clients);
		out_col_bool(&c->out, "reachable", up);
		out_row_end(&c->out);
	}
	out_table_end(&c->out, "nodes", n);
	free(nodes);
	return EXIT_OKAY;
}

static int
cluster_where(struct ctl *c, const char *name)
{
	char addr[256];
	int rc;

	if (!ctl_is_cluster(c)) {
		fprintf(stderr, "chanctl: cluster where: -s must be a cluster address "
		    "(cluster://HOST:PORT,... or cluster+tls://HOST:PORT,...)\n");
		return EXIT_USAGE;
	}
	if ((rc = chan_cluster_where(c->ctx, c->conn, name, addr, sizeof addr)) != CHAN_OK)
		return fail(name, rc);
	out_begin(&c->out);
	out_field_str(&c->out, "name", name);
	out_field_str(&c->out, "addr", addr);
	out_end(&c->out);
	return EXIT_OKAY;
}

int
cmd_cluster(struct ctl *c, int argc, char **argv)
{
	if (strcmp(argv[0], "nodes") == 0 && argc == 1)
		return cluster_nodes(c);
	if (strcmp(argv[0], "where") == 0 && argc == 2)
		return cluster_where(c, argv[1]);
	fprintf(stderr, "chanctl: cluster: use 'cluster nodes' or 'cluster where CH'\n");
	return EXIT_USAGE;
}

/* One node's channels as rows with its name; how many matched there. */
static int
ls_node(struct ctl *c, const chan_node_info_t *d, const char *pattern, size_t *matched)
{
	chan_info_t *list;
	chan_conn_t *nc;
	size_t n, m;
	int rc;

	if ((rc = node_dial(c, d->addr, &nc)) != CHAN_OK)
		return rc;
	rc = chan_admin_channels(c->ctx, nc, pattern, 0, &list, &n, &m);
	chan_conn_close(nc);
	if (rc != CHAN_OK)
		return rc;
	for (size_t i = 0; i < n; i++) {
		out_row_begin(&c->out);
		out_col_str(&c->out, "node", d->name);
		out_col_str(&c->out, "name", list[i].name);
		out_col_uint(&c->out, "len", list[i].len);
		out_col_uint(&c->out, "cap", list[i].cap);
		out_col_bool(&c->out, "closed", list[i].closed);
		out_col_uint(&c->out, "senders", list[i].senders);
		out_col_uint(&c->out, "receivers", list[i].receivers);
		out_col_uint(&c->out, "bytes", list[i].bytes);
		out_row_end(&c->out);
	}
	free(list);
	*matched += m;
	return CHAN_OK;
}

int
cluster_ls(struct ctl *c, const char *pattern)
{
	chan_node_info_t *nodes;
	size_t n, matched = 0;
	int rc, err = CHAN_OK;

	if ((rc = nodes_of(c, &nodes, &n)) != EXIT_OKAY)
		return rc;
	out_table_begin(&c->out, "channels");
	for (size_t i = 0; i < n; i++)
		if ((rc = ls_node(c, &nodes[i], pattern, &matched)) != CHAN_OK) {
			fprintf(stderr, "chanctl: ls: node %s (%s): %s\n", nodes[i].name, nodes[i].addr,
			    chan_strerror(rc));
			err = rc;	/* the others are still listed */
		}
	out_table_end(&c->out, "matched", matched);
	free(nodes);
	return exit_for(err);
}
