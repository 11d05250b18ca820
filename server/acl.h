/*
 * acl.h: enforcement, per connection, of what auth.h decides: a client's
 * identity (from its HELLO token or its TLS client certificate), its rights
 * on each operation (PROTOCOL.md §13), the owner rule, and the
 * per-identity limits on connections, channels and pending requests.
 *
 * Identities are counted in the server's ident table (struct ident, one
 * per name ever seen, kept until the server exits), which survives
 * reloads; the rules are looked up by identity name in the current auth
 * table at each check, so a reload applies to open connections at once.
 *
 * The acl_* checks that return bool reply PERMISSION_DENIED (or LIMIT) to
 * the request and log a line when they return false; the connection goes
 * on. Thread-safety: loop thread only.
 *
 * SPDX-License-Identifier: BSD-2-Clause
 */
#ifndef CHAND_ACL_H
#define CHAND_ACL_H

#include <stdbool.h>
#include <stdint.h>

#include "auth.h"
#include "codec.h"
#include "hmap.h"

struct server;
struct conn;
struct chan;

struct ident {
	struct hmap_node node;		/* in the server's idents */
	uint64_t nconns;		/* connections that said HELLO as this identity */
	uint64_t nchans;		/* live channels it created */
	uint64_t npending;		/* pending requests of its connections */
	char name[AUTH_NAME_MAX];
};

/* Set up s->idents and the engine's owner hook; free them at exit. -1: out of memory. */
int acl_init(struct server *s);
void acl_destroy(struct server *s);

/*
 * HELLO: establish c's identity. STATUS_OK, or PERMISSION_DENIED (bad or
 * missing credentials) or LIMIT (identity_max_connections) with *why.
 */
int acl_hello(struct conn *c, const struct proto_request *q, const char **why);
/* The connection is going away: uncount it. */
void acl_conn_gone(struct conn *c);

/* May c use right on the channel name? right 0: any right at all (OPEN, INFO...). */
bool acl_allow(struct conn *c, uint64_t id, unsigned right, const char *name, size_t len);
/* SELECT: each case's right; a denial names the case's index. */
bool acl_allow_cases(struct conn *c, const struct proto_request *q);
/* Admin operations (PROTOCOL.md §11). */
bool acl_admin(struct conn *c, uint64_t id);
/* CLOSE: the close right and, with owner_close, being the channel's creator. */
bool acl_close(struct conn *c, uint64_t id, struct chan *ch);
/*
 * A link request: recv on its inputs and done channel, send, close (and
 * make) on its outputs, and with owner_close, owning each output that exists.
 */
bool acl_link(struct conn *c, const struct proto_request *q);
/*
 * A running link of c's is about to use right on name (an operation, or a
 * channel a bridge follows): may c's identity, its creator, do so now? The
 * rules are looked up at each call, so a reload applies. Logs a denied line
 * when not and replies nothing: the link decides what a denial means.
 */
bool acl_link_may(struct conn *c, unsigned right, const char *name, size_t len);
/*
 * A stopping link of c's would close its output ch: the close right on name
 * (len bytes: the channel's own name, or the one a stand-in stands for) and
 * the owner rule on ch, now.
 */
bool acl_link_may_close(struct conn *c, struct chan *ch, const char *name, size_t len);

/* MAKE of name (NULL: anonymous) that would create a channel: identity_max_channels. */
bool acl_can_create(struct conn *c, uint64_t id, const char *name, size_t len);
/* Has c's identity reached identity_max_channels? (logs when it has; no reply) */
bool acl_channels_full(struct conn *c);
/* c created ch: remember its owner and count it. */
void acl_created(struct conn *c, struct chan *ch);
/* max_pending and identity_max_pending: room for one more pending request? */
bool acl_pending_room(struct conn *c, uint64_t id);
/* The same question, asked quietly: is c (or its identity) at its limit? No reply, no log. */
bool acl_pending_full(struct conn *c);
/* A request of c became pending (+1) or ended (-1). */
void acl_pending(struct conn *c, int delta);

/* After a reload: close connections whose token was revoked or that now lack credentials. */
void acl_reload(struct server *s);

#endif
