/*
 * cluster.c: the etcd session: lease, keepalive, node key, fencing,
 * ownership claims and rendezvous placement.
 *
 * SPDX-License-Identifier: BSD-2-Clause
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>
#include <jansson.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>

#include "clock.h"
#include "cluster.h"
#include "codec.h"
#include "cluster_mirror.h"
#include "config.h"
#include "engine.h"
#include "etcd.h"
#include "log.h"
#include "status.h"
#include "tls.h"

enum session { S_NONE, S_GRANTED, S_LIVE };

/* One cluster_resolve on its way through etcd. */
struct resolve {
	struct cluster *cl;
	char *name;			/* the channel's, or (maker) its maker's */
	size_t len;
	bool make;
	bool maker;			/* an anonymous name's: is its maker live? */
	cluster_done *cb;
	void *arg;
	TAILQ_ENTRY(resolve) link;
};

struct cluster {
	struct event_base *base;
	struct etcd *etcd;
	char *node, *advertise;
	char *node_key, *nodes_prefix, *chans_prefix;
	int64_t ttl_ms, margin_ms;
	struct mirror *nodes, *chans;
	enum session state;
	int64_t lease;
	bool inflight;			/* a grant, put or keepalive is out */
	int64_t sent_ns;		/* when it was sent */
	int64_t last_ok_ns;		/* when the last answered keepalive (or the grant) was sent */
	bool was_serving, etcd_down, stopping;
	bool revoking;			/* cluster_stop's revoke is out */
	int64_t started;		/* wall-clock seconds, for the node key */
	struct event *tick;
	void (*fenced)(void *arg);	/* cluster_on_fenced */
	void *fenced_arg;
	void (*node_change)(void *arg, const char *node, bool up);	/* cluster_on_node_change */
	void *node_change_arg;
	struct cluster_stats stats;
	TAILQ_HEAD(, resolve) resolves;
	/*
	 * The channel cluster_owner found here last: asked again under the same
	 * lease, the mirror unchanged since (gen), it is here without a lookup.
	 * Every request routed on a node asks; most name the channel the one
	 * before did.
	 */
	struct {
		uint64_t gen;
		int64_t lease;
		size_t len;		/* 0: none */
		char name[PROTO_NAME_MAX];
	} here;
};

static void session_step(struct cluster *cl);

const char *
cluster_self(const struct cluster *cl)
{
	return cl->node;
}

bool
cluster_serving(const struct cluster *cl, int64_t now_ns)
{
	/* in ns: no division on every request's path (floor(d / 1e6) < x is d < x * 1e6) */
	return cl->state == S_LIVE && now_ns - cl->last_ok_ns < (cl->ttl_ms - cl->margin_ms) * 1000000;
}

/* An etcd call failed: count it; say so once until one succeeds. */
static void
etcd_failed(struct cluster *cl, const char *what, const char *why)
{
	cl->stats.etcd_errors++;
	if (!cl->etcd_down)
		log_warn("cluster-etcd-error call=%s reason=\"%s\"", what, why);
	cl->etcd_down = true;
}

static void
etcd_answered(struct cluster *cl)
{
	if (cl->etcd_down)
		log_info("cluster-etcd-back endpoint=%s", etcd_endpoint(cl->etcd));
	cl->etcd_down = false;
}

/* The lease is gone (expired while we were away, or revoked): a new session, nothing owned. */
static void
session_lost(struct cluster *cl, const char *why)
{
	log_warn("cluster-lease-lost node=%s lease=%" PRId64 " reason=\"%s\" "
	    "note=\"its channels may now be owned elsewhere; starting a new session\"",
	    cl->node, cl->lease, why);
	cl->state = S_NONE;
	cl->lease = 0;
}

static void
keepalive_done(void *arg, json_t *reply, const char *why)
{
	struct cluster *cl = arg;
	int64_t ttl;

	cl->inflight = false;
	/* etcd answers an unknown lease with no TTL, or (some versions) with this error */
	if (reply == NULL && strstr(why, "lease not found") != NULL) {
		etcd_answered(cl);
		session_lost(cl, why);
		session_step(cl);
		return;
	}
	if (reply == NULL) {
		etcd_failed(cl, "keepalive", why);
		return;
	}
	etcd_answered(cl);
	if (etcd_int(reply, "TTL", &ttl) < 0) {
		etcd_failed(cl, "keepalive", "etcd's keepalive reply has a malformed TTL");
		return;
	}
	if (ttl <= 0) {
		session_lost(cl, "etcd says the lease does not exist");
		session_step(cl);
		return;
	}
	cl->last_ok_ns = cl->sent_ns;
}

static void
put_done(void *arg, json_t *reply, const char *why)
{
	struct cluster *cl = arg;

	cl->inflight = false;
	if (reply == NULL) {
		etcd_failed(cl, "put-node", why);
		return;
	}
	etcd_answered(cl);
	if (cl->state != S_GRANTED)
		return;
	cl->state = S_LIVE;
	log_info("cluster-joined node=%s advertise=%s lease=%" PRId64 " ttl_ms=%" PRId64,
	    cl->node, cl->advertise, cl->lease, cl->ttl_ms);
}

static void
grant_done(void *arg, json_t *reply, const char *why)
{
	struct cluster *cl = arg;
	int64_t id;

	cl->inflight = false;
	if (reply == NULL) {
		etcd_failed(cl, "lease-grant", why);
		return;
	}
	etcd_answered(cl);
	if (etcd_int(reply, "ID", &id) < 0 || id == 0) {
		etcd_failed(cl, "lease-grant", "etcd's grant reply has no lease ID");
		return;
	}
	cl->lease = id;
	cl->last_ok_ns = cl->sent_ns;
	cl->state = S_GRANTED;
	cl->stats.sessions++;
	session_step(cl);
}

/* The node key's value: {"advertise", "version", "started"}. */
static char *
node_value(const struct cluster *cl)
{
	json_t *v = json_pack("{s:s, s:s, s:I}", "advertise", cl->advertise,
	    "version", PACKAGE_NAME " " PACKAGE_VERSION, "started", (json_int_t)cl->started);
	char *s = v != NULL ? json_dumps(v, JSON_COMPACT) : NULL;

	json_decref(v);
	return s;
}

/* The next call of the session, unless one is out. */
static void
session_step(struct cluster *cl)
{
	char *value;
	int rc = 0;

	if (cl->inflight || cl->stopping)
		return;
	cl->sent_ns = clock_now_ns();
	cl->inflight = true;
	switch (cl->state) {
	case S_NONE:
		rc = etcd_lease_grant(cl->etcd, (cl->ttl_ms + 999) / 1000, grant_done, cl);
		break;
	case S_GRANTED:
		if ((value = node_value(cl)) == NULL) {
			rc = -1;
			break;
		}
		rc = etcd_put(cl->etcd, cl->node_key, value, cl->lease, put_done, cl);
		free(value);
		break;
	case S_LIVE:
		rc = etcd_lease_keepalive(cl->etcd, cl->lease, keepalive_done, cl);
		break;
	}
	if (rc < 0)
		cl->inflight = false;
}

static void
tick_cb(evutil_socket_t fd, short what, void *arg)
{
	struct cluster *cl = arg;
	bool serving = cluster_serving(cl, clock_now_ns());

	/* fencing is decided per request by the clock; this only says when it changed */
	if (serving != cl->was_serving)
		log_msg(serving ? LOG_LEVEL_INFO : LOG_LEVEL_WARN, "cluster-%s node=%s since_last_keepalive_ms=%"
		    PRId64, serving ? "serving" : "fenced", cl->node,
		    (clock_now_ns() - cl->last_ok_ns) / 1000000);
	if (!serving && cl->was_serving && cl->fenced != NULL)
		cl->fenced(cl->fenced_arg);
	cl->was_serving = serving;
	session_step(cl);
}

void
cluster_on_fenced(struct cluster *cl, void (*fn)(void *arg), void *arg)
{
	cl->fenced = fn;
	cl->fenced_arg = arg;
}

/* ---- owners and placement ------------------------------------------------------- */

/*
 * A node key's view (cluster_mirror.h): its advertise address, parsed once
 * when the key changes, not at every request routed to the node.
 */
static int
node_key_advertise(const char *value, char **addr)
{
	json_t *o = json_loads(value, 0, NULL);
	const char *a = json_string_value(json_object_get(o, "advertise"));
	int rc = 0;

	*addr = NULL;
	if (a != NULL && (*addr = strdup(a)) == NULL)
		rc = -1;
	json_decref(o);
	return rc;
}

/* node's advertise address, "" when not live or its key is malformed; valid until the loop runs on. */
static const char *
node_addr(const struct cluster *cl, const char *node)
{
	const char *a = mirror_view(cl->nodes, node, strlen(node));

	return a != NULL ? a : "";
}

/* An anonymous channel lives on its maker, which its name says (cluster_owner). */
static enum cluster_where
anon_owner(struct cluster *cl, const char *name, size_t len, const char **node, const char **addr)
{
	size_t mlen;
	const char *maker = engine_anon_maker(name, len, &mlen);

	*node = cl->node;
	if (maker == NULL || (mlen == strlen(cl->node) && memcmp(maker, cl->node, mlen) == 0))
		return CLUSTER_HERE;
	if ((*node = mirror_key(cl->nodes, maker, mlen)) == NULL)
		return CLUSTER_UNKNOWN;
	*addr = node_addr(cl, *node);
	return CLUSTER_THERE;
}

enum cluster_where
cluster_owner(struct cluster *cl, const char *name, size_t len, const char **node, const char **addr)
{
	int64_t lease;
	const char *owner;

	*addr = "";
	if (len > 0 && name[0] == '~')
		return anon_owner(cl, name, len, node, addr);
	if (len > 0 && len == cl->here.len && cl->here.lease == cl->lease &&
	    cl->here.gen == mirror_gen(cl->chans) && memcmp(cl->here.name, name, len) == 0) {
		*node = cl->node;
		return CLUSTER_HERE;
	}
	*node = owner = mirror_get(cl->chans, name, len, &lease);
	if (owner == NULL)
		return CLUSTER_UNKNOWN;
	if (strcmp(owner, cl->node) == 0) {
		/* ours under an older lease: gone, or soon gone, from etcd */
		if (lease != cl->lease || cl->lease == 0)
			return CLUSTER_UNKNOWN;
		if (len <= sizeof cl->here.name) {
			cl->here.gen = mirror_gen(cl->chans);
			cl->here.lease = cl->lease;
			cl->here.len = len;
			memcpy(cl->here.name, name, len);
		}
		return CLUSTER_HERE;
	}
	*addr = node_addr(cl, owner);
	return CLUSTER_THERE;
}

struct place {
	const char *name;
	size_t len;
	const char *best;
	uint64_t weight;
};

static void
place_one(void *arg, const char *node, size_t nlen, const char *value, int64_t lease)
{
	struct place *p = arg;
	unsigned char buf[64 + 1 + PROTO_NAME_MAX], md[EVP_MAX_MD_SIZE];
	uint64_t w = 0;

	/* node names are at most 64 bytes (config.c), channel names PROTO_NAME_MAX */
	if (nlen > 64 || p->len > PROTO_NAME_MAX)
		return;
	memcpy(buf, node, nlen);
	buf[nlen] = 0;
	memcpy(buf + nlen + 1, p->name, p->len);
	if (EVP_Digest(buf, nlen + 1 + p->len, md, NULL, EVP_sha256(), NULL) != 1)
		return;
	for (int i = 0; i < 8; i++)
		w = w << 8 | md[i];
	if (p->best == NULL || w > p->weight || (w == p->weight && strcmp(node, p->best) < 0)) {
		p->best = node;
		p->weight = w;
	}
}

const char *
cluster_place(struct cluster *cl, const char *name, size_t len, const char **addr)
{
	struct place p = { .name = name, .len = len };

	mirror_each(cl->nodes, place_one, &p);
	if (p.best == NULL || strcmp(p.best, cl->node) == 0) {
		*addr = cl->advertise;
		return cl->node;
	}
	*addr = node_addr(cl, p.best);
	return p.best;
}

static void
count_owned(void *arg, const char *key, size_t klen, const char *value, int64_t lease)
{
	struct cluster *cl = arg;

	if (lease == cl->lease && strcmp(value, cl->node) == 0)
		cl->stats.owned++;
}

struct cluster_stats *
cluster_stats(struct cluster *cl)
{
	cl->stats.serving = cluster_serving(cl, clock_now_ns());
	cl->stats.nodes = mirror_count(cl->nodes);
	cl->stats.owned = 0;
	mirror_each(cl->chans, count_owned, cl);
	return &cl->stats;
}

struct cluster_stats *
cluster_counters(struct cluster *cl)
{
	return &cl->stats;
}

struct node_walk {
	struct cluster *cl;
	cluster_node_fn *fn;
	void *arg;
	const char *node;
	uint64_t owned;
};

static void
count_node(void *arg, const char *key, size_t klen, const char *value, int64_t lease)
{
	struct node_walk *w = arg;

	if (strcmp(value, w->node) == 0)
		w->owned++;
}

static void
visit_node(void *arg, const char *node, size_t nlen, const char *value, int64_t lease)
{
	struct node_walk *w = arg;

	w->node = node;
	w->owned = 0;
	mirror_each(w->cl->chans, count_node, w);	/* an admin view: nodes × channels is fine */
	w->fn(w->arg, node, node_addr(w->cl, node), w->owned);
}

void
cluster_each_node(struct cluster *cl, cluster_node_fn *fn, void *arg)
{
	struct node_walk w = { cl, fn, arg, NULL, 0 };

	mirror_each(cl->nodes, visit_node, &w);
}

uint64_t
cluster_lease_left_ms(const struct cluster *cl)
{
	int64_t left = cl->ttl_ms - (clock_now_ns() - cl->last_ok_ns) / 1000000;

	return cl->state == S_LIVE && left > 0 ? (uint64_t)left : 0;
}

/* ---- resolving and claiming ------------------------------------------------------ */

static void
resolve_end(struct resolve *r, int status, const char *why)
{
	TAILQ_REMOVE(&r->cl->resolves, r, link);
	r->cb(r->arg, status, why);
	free(r->name);
	free(r);
}

static char *
chan_key(const struct cluster *cl, const char *name, size_t len)
{
	char *key;

	if (asprintf(&key, "%s%.*s", cl->chans_prefix, (int)len, name) < 0)
		return NULL;
	return key;
}

/* What etcd is asked for r: the channel's ownership key, or its maker's node key. */
static char *
lookup_key(const struct resolve *r)
{
	char *key;

	if (!r->maker)
		return chan_key(r->cl, r->name, r->len);
	if (asprintf(&key, "%s%s", r->cl->nodes_prefix, r->name) < 0)
		return NULL;
	return key;
}

/* A kv etcd sent for our name: record its owner (or its maker's node key). -1 when malformed. */
static int
record_owner(struct resolve *r, const json_t *kv)
{
	char *owner;
	size_t olen;
	int64_t lease;
	int rc;

	if (etcd_bytes(kv, "value", &owner, &olen) < 0 || etcd_int(kv, "lease", &lease) < 0 ||
	    olen == 0 || strlen(owner) != olen) {
		free(owner);
		return -1;
	}
	rc = mirror_set(r->maker ? r->cl->nodes : r->cl->chans, r->name, r->len, owner, lease);
	free(owner);
	return rc;
}

static void
claim_done(void *arg, json_t *reply, const char *why)
{
	struct resolve *r = arg;
	struct cluster *cl = r->cl;
	const json_t *rr;

	if (reply == NULL) {
		etcd_failed(cl, "claim", why);
		resolve_end(r, STATUS_UNAVAILABLE, why);
		return;
	}
	etcd_answered(cl);
	if (json_is_true(json_object_get(reply, "succeeded"))) {
		if (mirror_set(cl->chans, r->name, r->len, cl->node, cl->lease) < 0)
			resolve_end(r, STATUS_UNAVAILABLE, "out of memory");
		else
			resolve_end(r, STATUS_OK, NULL);
		return;
	}
	/* another node won: the failure branch read its key */
	rr = json_object_get(json_array_get(json_object_get(reply, "responses"), 0), "response_range");
	if (record_owner(r, json_array_get(json_object_get(rr, "kvs"), 0)) < 0) {
		resolve_end(r, STATUS_UNAVAILABLE, "etcd's claim reply is malformed");
		return;
	}
	resolve_end(r, STATUS_OK, NULL);
}

/* No owner in etcd: claim it if it is placed here. */
static void
maybe_claim(struct resolve *r)
{
	struct cluster *cl = r->cl;
	const char *addr;
	char *key;

	mirror_del(cl->chans, r->name, r->len);
	if (!r->make || strcmp(cluster_place(cl, r->name, r->len, &addr), cl->node) != 0) {
		resolve_end(r, STATUS_OK, NULL);
		return;
	}
	if (!cluster_serving(cl, clock_now_ns())) {
		resolve_end(r, STATUS_UNAVAILABLE, "this node is fenced: its etcd lease is not certain");
		return;
	}
	if ((key = chan_key(cl, r->name, r->len)) == NULL ||
	    etcd_create(cl->etcd, key, cl->node, cl->lease, claim_done, r) < 0)
		resolve_end(r, STATUS_UNAVAILABLE, "out of memory");
	free(key);
}

static void
lookup_done(void *arg, json_t *reply, const char *why)
{
	struct resolve *r = arg;
	const json_t *kvs;

	if (reply == NULL) {
		etcd_failed(r->cl, "lookup", why);
		resolve_end(r, STATUS_UNAVAILABLE, why);
		return;
	}
	etcd_answered(r->cl);
	kvs = json_object_get(reply, "kvs");
	if (json_array_size(kvs) == 0) {
		if (r->maker)
			resolve_end(r, STATUS_OK, NULL);	/* not live: still unknown to cluster_owner */
		else
			maybe_claim(r);
		return;
	}
	if (record_owner(r, json_array_get(kvs, 0)) < 0) {
		resolve_end(r, STATUS_UNAVAILABLE, "etcd's lookup reply is malformed");
		return;
	}
	resolve_end(r, STATUS_OK, NULL);
}

int
cluster_resolve(struct cluster *cl, const char *name, size_t len, bool make, cluster_done *cb,
    void *arg)
{
	struct resolve *r = calloc(1, sizeof *r);
	size_t mlen;
	const char *maker = engine_anon_maker(name, len, &mlen);
	char *key = NULL;

	if (r == NULL)
		return -1;
	*r = (struct resolve){ .cl = cl, .len = maker ? mlen : len, .make = make, .maker = maker != NULL,
	    .cb = cb, .arg = arg };
	if ((r->name = malloc(r->len + 1)) == NULL)
		goto fail;
	memcpy(r->name, maker ? maker : name, r->len);
	r->name[r->len] = '\0';
	if ((key = lookup_key(r)) == NULL)
		goto fail;
	TAILQ_INSERT_TAIL(&cl->resolves, r, link);
	if (etcd_range(cl->etcd, key, 0, lookup_done, r) < 0) {
		TAILQ_REMOVE(&cl->resolves, r, link);
		goto fail;
	}
	free(key);
	return 0;
fail:
	free(key);
	free(r->name);
	free(r);
	return -1;
}

/* ---- life ------------------------------------------------------------------------ */

void
cluster_on_node_change(struct cluster *cl, void (*fn)(void *arg, const char *node, bool up),
    void *arg)
{
	cl->node_change = fn;
	cl->node_change_arg = arg;
}

static void
node_changed(void *arg, const char *key, size_t klen, const char *value)
{
	struct cluster *cl = arg;
	char node[65];

	log_info("cluster-node-%s node=%.*s", value != NULL ? "up" : "down", (int)klen, key);
	/* node names are at most 64 bytes (config.c); a longer key is no node of ours */
	if (cl->node_change != NULL && klen < sizeof node) {
		memcpy(node, key, klen);
		node[klen] = '\0';
		cl->node_change(cl->node_change_arg, node, value != NULL);
	}
}

/* Copy the cluster keys; the node name defaults to the host name. */
static int
cluster_names(struct cluster *cl, const struct config *cfg, char **cause)
{
	char host[256] = "";
	const char *node = cfg->node_name;

	if (node[0] == '\0') {
		if (gethostname(host, sizeof host - 1) < 0 || host[0] == '\0') {
			if (asprintf(cause, "node_name: not set, and the host name is unknown") < 0)
				*cause = NULL;
			return -1;
		}
		node = host;
	}
	if ((cl->node = strdup(node)) == NULL || (cl->advertise = strdup(cfg->advertise)) == NULL)
		return -1;
	/* asprintf leaves its pointer undefined on failure: only that one is cleared */
	if (asprintf(&cl->node_key, "/chand/%s/nodes/%s", cfg->cluster_name, node) < 0) {
		cl->node_key = NULL;
		return -1;
	}
	if (asprintf(&cl->chans_prefix, "/chand/%s/chans/", cfg->cluster_name) < 0) {
		cl->chans_prefix = NULL;
		return -1;
	}
	if (asprintf(&cl->nodes_prefix, "/chand/%s/nodes/", cfg->cluster_name) < 0) {
		cl->nodes_prefix = NULL;
		return -1;
	}
	return 0;
}

int
cluster_new(struct cluster **out, struct event_base *base, const struct config *cfg, char **cause)
{
	struct cluster *cl = calloc(1, sizeof *cl);
	const struct mirror_hooks nodes_hooks = { node_changed, node_key_advertise, cl };
	const struct mirror_hooks chans_hooks = { NULL, NULL, NULL };
	struct timeval tv;
	SSL_CTX *ssl = NULL;

	*cause = NULL;
	if (cl == NULL)
		goto fail;
	TAILQ_INIT(&cl->resolves);
	cl->base = base;
	cl->ttl_ms = (int64_t)cfg->node_ttl_ms;
	cl->margin_ms = cl->ttl_ms / 4;
	cl->started = (int64_t)time(NULL);
	if (cluster_names(cl, cfg, cause) < 0)
		goto fail;
	/* https:// endpoints: etcd's certificate is verified against cluster_etcd_ca */
	if (strstr(cfg->cluster_etcd, "https://") != NULL && (ssl = tls_etcd_ctx(cfg, cause)) == NULL)
		goto fail;
	/* a call may take up to half the ttl: keepalive comes every third of it */
	if (etcd_new_tls(&cl->etcd, base, cfg->cluster_etcd, (unsigned)(cl->ttl_ms / 2), ssl,
	    cause) < 0)
		goto fail;
	SSL_CTX_free(ssl);
	ssl = NULL;
	if (mirror_new(&cl->nodes, cl->etcd, base, cl->nodes_prefix, &nodes_hooks,
	    &cl->stats.etcd_errors) < 0 ||
	    mirror_new(&cl->chans, cl->etcd, base, cl->chans_prefix, &chans_hooks,
	    &cl->stats.etcd_errors) < 0)
		goto fail;
	tv.tv_sec = cl->ttl_ms / 3 / 1000;
	tv.tv_usec = (suseconds_t)(cl->ttl_ms / 3 % 1000) * 1000;
	if ((cl->tick = event_new(base, -1, EV_PERSIST, tick_cb, cl)) == NULL ||
	    event_add(cl->tick, &tv) < 0)
		goto fail;
	log_info("cluster-start node=%s cluster=%s etcd=%s advertise=%s node_ttl_ms=%" PRId64,
	    cl->node, cfg->cluster_name, cfg->cluster_etcd, cl->advertise, cl->ttl_ms);
	session_step(cl);
	*out = cl;
	return 0;
fail:
	SSL_CTX_free(ssl);
	if (*cause == NULL && asprintf(cause, "out of memory") < 0)
		*cause = NULL;
	cluster_free(cl);
	return -1;
}

static void
revoke_done(void *arg, json_t *reply, const char *why)
{
	struct cluster *cl = arg;

	cl->revoking = false;
	if (reply == NULL)
		log_warn("cluster-revoke-failed reason=\"%s\" note=\"the keys go when the lease expires\"",
		    why);
}

void
cluster_stop(struct cluster *cl)
{
	if (cl == NULL || cl->stopping)
		return;
	cl->stopping = true;
	if (cl->lease != 0 && etcd_lease_revoke(cl->etcd, cl->lease, revoke_done, cl) == 0) {
		log_info("cluster-leave node=%s lease=%" PRId64, cl->node, cl->lease);
		cl->revoking = true;
	}
	cl->state = S_NONE;
}

bool
cluster_leaving(const struct cluster *cl)
{
	return cl != NULL && cl->revoking;
}

const struct etcd_stats *
cluster_etcd_stats(const struct cluster *cl)
{
	return etcd_stats(cl->etcd);
}

void
cluster_free(struct cluster *cl)
{
	struct resolve *r;

	if (cl == NULL)
		return;
	if (cl->tick != NULL)
		event_free(cl->tick);
	/* the mirrors' and resolves' calls end with etcd, never calling back */
	mirror_free(cl->nodes);
	mirror_free(cl->chans);
	etcd_free(cl->etcd);
	while ((r = TAILQ_FIRST(&cl->resolves)) != NULL) {
		TAILQ_REMOVE(&cl->resolves, r, link);
		free(r->name);
		free(r);
	}
	free(cl->node);
	free(cl->advertise);
	free(cl->node_key);
	free(cl->chans_prefix);
	free(cl->nodes_prefix);
	free(cl);
}
