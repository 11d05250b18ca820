/*
 * admin.h: the admin operations behind chanctl (PROTOCOL.md §11): STATS,
 * CHANNELS, CLIENTS, WAITERS, UNBLOCK, SHUTDOWN. Each reads the server's
 * state and answers in one reply. Loop thread only.
 *
 * SPDX-License-Identifier: BSD-2-Clause
 */
#ifndef CHAND_ADMIN_H
#define CHAND_ADMIN_H

struct conn;
struct proto_request;

void admin_stats(struct conn *c, const struct proto_request *q);
void admin_channels(struct conn *c, const struct proto_request *q);
void admin_clients(struct conn *c, const struct proto_request *q);
/* CLUSTER_NODES (§17): the live nodes; BAD_REQUEST on a node without cluster_etcd. */
void admin_cluster_nodes(struct conn *c, const struct proto_request *q);
void admin_waiters(struct conn *c, const struct proto_request *q);
void admin_unblock(struct conn *c, const struct proto_request *q);
void admin_shutdown(struct conn *c, const struct proto_request *q);
/* INFLIGHT (§16): one ack channel's values held by connections, oldest first. */
void admin_inflight(struct conn *c, const struct proto_request *q);

#endif
