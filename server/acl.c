/*
 * acl.c: identities, rights checks and per-identity limits on the loop.
 *
 * SPDX-License-Identifier: BSD-2-Clause
 */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "acl.h"
#include "conn.h"
#include "link.h"
#include "log.h"
#include "request.h"
#include "server.h"

/* ---- the ident table ------------------------------------------------------------ */

static struct ident *
ident_get(struct server *s, const char *name)
{
	uint64_t hash = hmap_hash_bytes(s->idents.seed, name, strlen(name));
	struct hmap_node *n;
	struct ident *id;

	HMAP_FOR_EACH_HASH(n, hash, &s->idents) {
		id = HMAP_ENTRY(n, struct ident, node);
		if (strcmp(id->name, name) == 0)
			return id;
	}
	if ((id = calloc(1, sizeof *id)) == NULL)
		return NULL;
	snprintf(id->name, sizeof id->name, "%s", name);
	if (hmap_insert(&s->idents, &id->node, hash) < 0) {
		free(id);
		return NULL;
	}
	return id;
}

static void
owner_gone(void *owner, void *arg)
{
	struct ident *id = owner;

	if (id->nchans > 0)
		id->nchans--;
}

int
acl_init(struct server *s)
{
	hmap_init(&s->idents, (uint64_t)(uintptr_t)s ^ (uint64_t)s->started_ns);
	engine_set_owner_hook(s->engine, owner_gone, s);
	return 0;
}

void
acl_destroy(struct server *s)
{
	struct hmap_node *n, *nx;
	size_t pos;

	HMAP_FOR_EACH_SAFE(n, nx, pos, &s->idents)
		free(HMAP_ENTRY(n, struct ident, node));
	hmap_destroy(&s->idents);
}

/* ---- identity ------------------------------------------------------------------- */

static void
deny_log(struct conn *c, const char *what, const char *detail)
{
	log_warn("denied client=%" PRIu64 " peer=%s identity=%s what=%s detail=\"%s\"", c->id, c->peer,
	    c->ident[0] ? c->ident : "-", what, detail);
}

int
acl_hello(struct conn *c, const struct proto_request *q, const char **why)
{
	struct server *s = c->srv;
	char name[AUTH_NAME_MAX];

	if (!auth_enabled(s->auth))
		return STATUS_OK;
	if (q->token != NULL) {
		if (!auth_token(s->auth, q->token, q->token_len, name, c->digest)) {
			*why = "invalid token";
			return STATUS_PERMISSION_DENIED;
		}
		c->by_token = true;
	} else if (c->cert_name[0] != '\0') {
		snprintf(name, sizeof name, "%s", c->cert_name);
	} else {
		*why = "authentication required: a token in HELLO, or a client certificate";
		return STATUS_PERMISSION_DENIED;
	}
	if ((c->who = ident_get(s, name)) == NULL) {
		*why = "out of memory";
		return STATUS_LIMIT;
	}
	if (s->cfg.identity_max_connections != 0 && c->who->nconns >= s->cfg.identity_max_connections) {
		log_warn("limit client=%" PRIu64 " peer=%s identity=%s limit=identity_max_connections "
		    "value=%" PRIu64, c->id, c->peer, name, s->cfg.identity_max_connections);
		c->who = NULL;
		*why = "too many connections for this identity (identity_max_connections)";
		return STATUS_LIMIT;
	}
	c->who->nconns++;
	snprintf(c->ident, sizeof c->ident, "%s", name);
	log_info("auth client=%" PRIu64 " identity=%s by=%s", c->id, name,
	    c->by_token ? "token" : "certificate");
	return STATUS_OK;
}

void
acl_conn_gone(struct conn *c)
{
	if (c->who != NULL && c->who->nconns > 0)
		c->who->nconns--;
	c->who = NULL;
}

/* ---- rights --------------------------------------------------------------------- */

static bool
has_right(struct conn *c, unsigned right, const char *name, size_t len)
{
	unsigned have = auth_rights(c->srv->auth, c->ident, name, len);

	if (right == 0)		/* OPEN, INFO...: an administrator sees every channel anyway */
		return have != 0 || auth_admin(c->srv->auth, c->ident);
	return (have & right) == right;
}

static void
deny_chan(struct conn *c, unsigned right, const char *name, size_t len)
{
	char detail[320];

	snprintf(detail, sizeof detail, "%s on %.*s", right ? auth_right_name(right) : "any right",
	    (int)len, name);
	deny_log(c, "channel", detail);
}

bool
acl_allow(struct conn *c, uint64_t id, unsigned right, const char *name, size_t len)
{
	if (name == NULL) {		/* an anonymous MAKE is checked as the name "~" */
		name = "~";
		len = 1;
	}
	if (has_right(c, right, name, len))
		return true;
	deny_chan(c, right, name, len);
	conn_reply_error(c, id, STATUS_PERMISSION_DENIED, "permission denied");
	return false;
}

bool
acl_allow_cases(struct conn *c, const struct proto_request *q)
{
	for (uint32_t i = 0; i < q->ncases; i++) {
		const struct proto_case *pc = &q->cases[i];
		unsigned right = pc->dir ? RIGHT_SEND : RIGHT_RECV;

		if (pc->name == NULL || has_right(c, right, pc->name, pc->name_len))
			continue;
		deny_chan(c, right, pc->name, pc->name_len);
		if (proto_rep_case_error(&c->srv->out, q->id, STATUS_PERMISSION_DENIED,
		    "permission denied", i) == 0)
			conn_flush_out(c);
		return false;
	}
	return true;
}

bool
acl_admin(struct conn *c, uint64_t id)
{
	if (auth_admin(c->srv->auth, c->ident))
		return true;
	deny_log(c, "admin", "admin operations need the admin right");
	conn_reply_error(c, id, STATUS_PERMISSION_DENIED, "permission denied: admin right needed");
	return false;
}

/* owner_close: is c's identity ch's creator, or does the rule not apply? */
static bool
owns(struct conn *c, struct chan *ch)
{
	void *owner = chan_owner(ch);

	return !config_yes(c->srv->cfg.owner_close) || owner == NULL || owner == c->who;
}

bool
acl_close(struct conn *c, uint64_t id, struct chan *ch)
{
	size_t len;
	const char *name = chan_name(ch, &len);

	if (!acl_allow(c, id, RIGHT_CLOSE, name, len))
		return false;
	if (owns(c, ch))
		return true;
	deny_log(c, "owner", "owner_close: only the channel's creator may close it");
	conn_reply_error(c, id, STATUS_PERMISSION_DENIED,
	    "permission denied: only the channel's creator may close it");
	return false;
}

bool
acl_link(struct conn *c, const struct proto_request *q)
{
	bool many = q->op == OP_OR || q->op == OP_FAN_IN;

	if (q->done != NULL && !acl_allow(c, q->id, RIGHT_RECV, q->done, q->done_len))
		return false;
	if (q->op != OP_REPEAT && !many && !acl_allow(c, q->id, RIGHT_RECV, q->name, q->name_len))
		return false;
	for (uint32_t i = 0; many && i < q->ncases; i++)
		if (!acl_allow(c, q->id, RIGHT_RECV, q->cases[i].name, q->cases[i].name_len))
			return false;
	for (uint32_t i = 0; i < q->nouts; i++) {
		const struct proto_link_out *o = &q->outs[i];
		unsigned need = RIGHT_SEND | RIGHT_CLOSE;	/* a stopped link closes its outputs */
		struct chan *ch;

		if (o->name == NULL)
			continue;	/* a new anonymous channel of the creator's own */
		/* in a cluster a link makes no named output (PROTOCOL.md §17): it may be another node's */
		if ((ch = engine_lookup(c->srv->engine, o->name, o->name_len)) == NULL &&
		    c->srv->cluster == NULL)
			need |= RIGHT_MAKE;
		if (!acl_allow(c, q->id, need, o->name, o->name_len))
			return false;
		if (ch != NULL && !owns(c, ch)) {
			deny_log(c, "owner", "owner_close: a link closes its outputs, so they must be its own");
			conn_reply_error(c, q->id, STATUS_PERMISSION_DENIED, "permission denied: only the "
			    "channel's creator may close it (a link closes its outputs)");
			return false;
		}
	}
	return true;
}

bool
acl_link_may(struct conn *c, unsigned right, const char *name, size_t len)
{
	char detail[320];

	if (has_right(c, right, name, len))
		return true;
	snprintf(detail, sizeof detail, "link: %s on %.*s", auth_right_name(right), (int)len, name);
	deny_log(c, "channel", detail);
	return false;
}

bool
acl_link_may_close(struct conn *c, struct chan *ch, const char *name, size_t len)
{
	if (!acl_link_may(c, RIGHT_CLOSE, name, len))
		return false;
	if (owns(c, ch))
		return true;
	deny_log(c, "owner", "owner_close: a link may close only its creator's channels");
	return false;
}

/* ---- limits --------------------------------------------------------------------- */

bool
acl_channels_full(struct conn *c)
{
	uint64_t max = c->srv->cfg.identity_max_channels;

	if (c->who == NULL || max == 0 || c->who->nchans < max)
		return false;
	log_warn("limit client=%" PRIu64 " identity=%s limit=identity_max_channels value=%" PRIu64,
	    c->id, c->ident, max);
	return true;
}

bool
acl_can_create(struct conn *c, uint64_t id, const char *name, size_t len)
{
	if (name != NULL && engine_lookup(c->srv->engine, name, len) != NULL)
		return true;	/* opens, does not create */
	if (!acl_channels_full(c))
		return true;
	conn_reply_error(c, id, STATUS_LIMIT, "too many channels for this identity (identity_max_channels)");
	return false;
}

void
acl_created(struct conn *c, struct chan *ch)
{
	if (c->who == NULL || chan_owner(ch) != NULL)
		return;
	chan_set_owner(ch, c->who);
	c->who->nchans++;
}

bool
acl_pending_room(struct conn *c, uint64_t id)
{
	struct server *s = c->srv;
	uint64_t max = s->cfg.identity_max_pending;

	if (hmap_count(&c->pending) >= s->cfg.max_pending) {
		log_warn("limit client=%" PRIu64 " limit=max_pending value=%" PRIu64, c->id, s->cfg.max_pending);
		conn_reply_error(c, id, STATUS_LIMIT, "too many pending requests (max_pending)");
		return false;
	}
	if (c->who == NULL || max == 0 || c->who->npending < max)
		return true;
	log_warn("limit client=%" PRIu64 " identity=%s limit=identity_max_pending value=%" PRIu64,
	    c->id, c->ident, max);
	conn_reply_error(c, id, STATUS_LIMIT,
	    "too many pending requests for this identity (identity_max_pending)");
	return false;
}

bool
acl_pending_full(struct conn *c)
{
	uint64_t max = c->srv->cfg.identity_max_pending;

	return hmap_count(&c->pending) >= c->srv->cfg.max_pending ||
	    (c->who != NULL && max != 0 && c->who->npending >= max);
}

void
acl_pending(struct conn *c, int delta)
{
	if (c->who == NULL)
		return;
	if (delta > 0)
		c->who->npending++;
	else if (c->who->npending > 0)
		c->who->npending--;
}

/* Does one of r's waiting cases need a right c no longer has? */
static bool
waits_denied(struct conn *c, const struct request *r)
{
	size_t n = request_ncases(r), len;
	enum case_dir dir;
	struct chan *ch;
	const char *name;

	for (size_t i = 0; i < n; i++) {
		if ((ch = request_case(r, i, &dir)) == NULL)
			continue;
		name = chan_name(ch, &len);
		if (!has_right(c, dir == CASE_SEND ? RIGHT_SEND : RIGHT_RECV, name, len)) {
			deny_chan(c, dir == CASE_SEND ? RIGHT_SEND : RIGHT_RECV, name, len);
			return true;
		}
	}
	return false;
}

/*
 * After a reload: c's waiting SEND, RECV, SELECT and STREAM requests that the
 * new rules deny end with PERMISSION_DENIED, as a link's do (link.c), so a
 * removed right takes nothing more. The ids are gathered first: ending one
 * request changes the pending table.
 */
static void
recheck_waits(struct conn *c)
{
	struct hmap_node *nd, *nx;
	struct request *r;
	uint64_t *ids = NULL, *grown;
	size_t pos, n = 0, cap = 0;

	HMAP_FOR_EACH_SAFE(nd, nx, pos, &c->pending) {
		r = HMAP_ENTRY(nd, struct request, node);
		if (r->kind == REQUEST_LINK || !waits_denied(c, r))
			continue;
		if (n == cap) {
			cap = cap ? cap * 2 : 8;
			if ((grown = realloc(ids, cap * sizeof *ids)) == NULL) {
				log_warn("reload-waits client=%" PRIu64 " reason=\"out of memory\"", c->id);
				break;
			}
			ids = grown;
		}
		ids[n++] = r->id;
	}
	for (size_t i = 0; i < n; i++)
		if ((r = request_find(c, ids[i])) != NULL)
			request_cancel(r, STATUS_PERMISSION_DENIED);
	free(ids);
}

void
acl_reload(struct server *s)
{
	struct conn *c, *next;

	for (c = TAILQ_FIRST(&s->conns); c != NULL; c = next) {
		const char *why = NULL;

		next = TAILQ_NEXT(c, link);
		if (c->closing || !c->hello)
			continue;
		if (!auth_enabled(s->auth))
			continue;
		if (c->ident[0] == '\0')
			why = "authentication is now required";
		else if (c->by_token && !auth_digest_names(s->auth, c->digest, c->ident))
			why = "credentials revoked";
		if (why == NULL) {
			recheck_waits(c);
			continue;
		}
		deny_log(c, "reload", why);
		conn_close_after_flush(c, 0, STATUS_PERMISSION_DENIED, why);
	}
	link_rules_changed(s);	/* running links: what they wait on now */
}
