/*
 * cluster.c: routing a front connection's calls to the nodes of a chand
 * cluster (cluster.h, PROTOCOL.md §17).
 *
 * A request names its channels inside its encoding, which each caller
 * builds differently; rather than teach every operation about routing,
 * the request is encoded once more into scratch and read back with the
 * server's own decoder (proto_decode_request), so chan.c, delivery.c,
 * stream.c and links.c stay as they are.
 *
 * SPDX-License-Identifier: BSD-2-Clause
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

#include "codec.h"
#include "hmap.h"
#include "rand.h"
#include "status.h"

#include "chanclient.h"
#include "cluster.h"
#include "conn_priv.h"
#include "dial.h"

struct cnode {
	char *addr;			/* "host:port" as dialed */
	chan_conn_t *conn;		/* a reference; NULL until dialed, or after it broke */
};

/* A cached owner: channel name → index in cl->nodes. */
struct owner {
	struct hmap_node node;
	size_t idx;
	size_t len;
	char name[];
};

struct cluster {
	pthread_mutex_t lock;
	chan_dial_opts_t opts;		/* its strings are copies, the cluster's own */
	bool tls;			/* cluster+tls://: every node is dialed "tls://" + its address */
	struct cnode nodes[CLUSTER_NODES_MAX];
	size_t nnodes;
	struct hmap owners;
	uint64_t epoch;			/* counts owners dropped or moved: a route made before is stale */
	uint64_t seed;
};

/* The channel names of one request, read back from its encoding. */
struct rnames {
	struct proto_out o;
	struct proto_request req;
	struct proto_case *cases;
	bool ok;			/* it decoded: req says what it names */
};

/*
 * c broke or was closed: every call on it fails now. Read without c's lock
 * (it is on every asynchronous operation's path): a connection that breaks
 * just after fails the call itself.
 */
static bool
conn_broken(chan_conn_t *c)
{
	return __atomic_load_n(&c->dead, __ATOMIC_ACQUIRE) != 0;
}

/* ---- the names a request carries ---------------------------------------------------------- */

static int
rnames_read(struct rnames *rn, uint64_t op, uint64_t max_cases, call_encode_fn enc, void *arg)
{
	struct proto_limits lim = { .max_value = UINT64_MAX };
	const uint8_t *body;
	const char *why;

	memset(rn, 0, sizeof *rn);
	proto_out_init(&rn->o);
	/* only multi-channel requests have cases: the others go without the allocation */
	if (op == OP_SELECT || op == OP_STREAM || op == OP_OR || op == OP_FAN_IN) {
		lim.max_select_cases = max_cases ? (uint32_t)max_cases : 4096;
		if ((rn->cases = calloc(lim.max_select_cases, sizeof *rn->cases)) == NULL)
			return CHAN_ENOMEM;
	}
	if (enc(&rn->o, 1, 0, arg) != 0)
		return CHAN_ENOMEM;
	body = proto_out_data(&rn->o) + PROTO_FRAME_HDR;
	/* a request the decoder refuses goes anywhere: the server refuses it the same way */
	rn->ok = proto_decode_request(body, proto_out_len(&rn->o) - PROTO_FRAME_HDR, &lim,
	    rn->cases, lim.max_select_cases, &rn->req, &why) == STATUS_OK;
	return CHAN_OK;
}

static void
rnames_fini(struct rnames *rn)
{
	proto_out_destroy(&rn->o);
	free(rn->cases);
}

static bool
rnames_multi(const struct rnames *rn)
{
	return rn->req.op == OP_SELECT || rn->req.op == OP_STREAM || rn->req.op == OP_OR ||
	    rn->req.op == OP_FAN_IN;
}

static size_t
rnames_count(const struct rnames *rn)
{
	if (!rn->ok)
		return 0;
	if (rnames_multi(rn))
		return rn->req.ncases;
	return rn->req.name != NULL ? 1 : 0;
}

/* Name i (NULL: a nil case). */
static const char *
rnames_get(const struct rnames *rn, size_t i, size_t *len)
{
	if (rnames_multi(rn)) {
		*len = rn->req.cases[i].name_len;
		return rn->req.cases[i].name;
	}
	*len = rn->req.name_len;
	return rn->req.name;
}

/* ---- the owner cache (cl->lock held) ----------------------------------------------------------- */

static struct owner *
owner_find_locked(struct cluster *cl, const char *name, size_t len)
{
	struct hmap_node *n;

	HMAP_FOR_EACH_HASH(n, hmap_hash_bytes(cl->seed, name, len), &cl->owners) {
		struct owner *ow = HMAP_ENTRY(n, struct owner, node);

		if (ow->len == len && memcmp(ow->name, name, len) == 0)
			return ow;
	}
	return NULL;
}

static void
owner_drop_locked(struct cluster *cl, const char *name, size_t len)
{
	struct owner *ow = owner_find_locked(cl, name, len);

	if (ow != NULL) {
		hmap_remove(&cl->owners, &ow->node);
		free(ow);
		cl->epoch++;
	}
}

/* Forget every owner (idx SIZE_MAX) or those on node idx. */
static void
owners_clear_locked(struct cluster *cl, size_t idx)
{
	struct hmap_node *n, *nx;
	size_t pos;

	HMAP_FOR_EACH_SAFE(n, nx, pos, &cl->owners) {
		struct owner *ow = HMAP_ENTRY(n, struct owner, node);

		if (idx == SIZE_MAX || ow->idx == idx) {
			hmap_remove(&cl->owners, n);
			free(ow);
		}
	}
	cl->epoch++;
}

/* A cache miss costs one MOVED at most: on no memory, just do not remember. */
static void
owner_set_locked(struct cluster *cl, const char *name, size_t len, size_t idx)
{
	struct owner *ow = owner_find_locked(cl, name, len);

	if (ow != NULL) {
		if (ow->idx != idx)
			cl->epoch++;
		ow->idx = idx;
		return;
	}
	if (hmap_count(&cl->owners) >= CLUSTER_CACHE_MAX)
		owners_clear_locked(cl, SIZE_MAX);
	if ((ow = malloc(sizeof *ow + len)) == NULL)
		return;
	ow->idx = idx;
	ow->len = len;
	memcpy(ow->name, name, len);
	if (hmap_insert(&cl->owners, &ow->node, hmap_hash_bytes(cl->seed, name, len)) < 0)
		free(ow);
}

/*
 * The node for rn's channels: the first one cached, or -1 when none is.
 * When they are cached on different nodes, a SELECT or a STREAM is
 * coordinated by that first node (PROTOCOL.md §17, cross-node SELECT and
 * STREAM), and a link runs there and pumps the others (§17, links in a
 * cluster).
 */
static ssize_t
owner_of_locked(struct cluster *cl, const struct rnames *rn)
{
	const char *name;
	size_t len;

	for (size_t i = 0; i < rnames_count(rn); i++) {
		struct owner *ow;

		if ((name = rnames_get(rn, i, &len)) != NULL && (ow = owner_find_locked(cl, name, len)) != NULL)
			return (ssize_t)ow->idx;
	}
	return -1;
}

/* What a reply from node idx says of where rn's channels are. */
static void
owner_learn(struct cluster *cl, const struct rnames *rn, size_t idx, const struct proto_reply *rep)
{
	const char *name;
	size_t len;

	pthread_mutex_lock(&cl->lock);
	if (rep->status == STATUS_OK && rn->ok && rn->req.op == OP_MAKE && rn->req.name == NULL) {
		owner_set_locked(cl, rep->name, rep->name_len, idx);	/* anonymous: its maker's */
	} else {
		for (size_t i = 0; i < rnames_count(rn); i++) {
			if ((name = rnames_get(rn, i, &len)) == NULL)
				continue;
			/* gone or fenced: the next request asks again */
			if (rep->status == STATUS_NOT_FOUND || rep->status == STATUS_UNAVAILABLE ||
			    (rep->status == STATUS_OK && rn->req.op == OP_DELETE))
				owner_drop_locked(cl, name, len);
			else if (rep->status != STATUS_MOVED)
				owner_set_locked(cl, name, len, idx);
		}
	}
	pthread_mutex_unlock(&cl->lock);
}

/* ---- nodes -------------------------------------------------------------------------------------- */

/* The index of addr, added if new; -1 when the table is full or out of memory (cl->lock held). */
static ssize_t
node_add_locked(struct cluster *cl, const char *addr, size_t len)
{
	char *copy;

	for (size_t i = 0; i < cl->nnodes; i++)
		if (strlen(cl->nodes[i].addr) == len && memcmp(cl->nodes[i].addr, addr, len) == 0)
			return (ssize_t)i;
	if (len == 0 || cl->nnodes == CLUSTER_NODES_MAX || (copy = strndup(addr, len)) == NULL)
		return -1;
	cl->nodes[cl->nnodes] = (struct cnode){ copy, NULL };
	return (ssize_t)cl->nnodes++;
}

/* Node idx's connection is c and broke: forget it with the owners cached on it. */
static void
node_drop(struct cluster *cl, size_t idx, chan_conn_t *c)
{
	bool ours;

	pthread_mutex_lock(&cl->lock);
	if ((ours = cl->nodes[idx].conn == c)) {
		cl->nodes[idx].conn = NULL;
		owners_clear_locked(cl, idx);
	}
	pthread_mutex_unlock(&cl->lock);
	if (ours)
		chan_conn_close(c);
}

/* Node idx's connection (a reference for the caller), dialed if there is none or it broke. */
static int
node_get(struct cluster *cl, chan_ctx_t *ctx, size_t idx, chan_conn_t **out)
{
	chan_conn_t *c, *old = NULL;
	char *addr = NULL;
	int rc;

	pthread_mutex_lock(&cl->lock);
	if ((c = cl->nodes[idx].conn) != NULL && conn_broken(c)) {
		old = c;
		cl->nodes[idx].conn = c = NULL;
		owners_clear_locked(cl, idx);
	}
	if (c != NULL)
		conn_ref(c);
	if (c == NULL && asprintf(&addr, "%s%s", cl->tls ? "tls://" : "", cl->nodes[idx].addr) < 0)
		addr = NULL;
	pthread_mutex_unlock(&cl->lock);
	chan_conn_close(old);
	if (c != NULL) {
		*out = c;
		return CHAN_OK;
	}
	if (addr == NULL)
		return CHAN_ENOMEM;
	/* dialed without the lock: other nodes' calls go on meanwhile */
	rc = conn_dial(ctx, addr, &cl->opts, true, &c);
	free(addr);
	if (rc != CHAN_OK)
		return rc;
	pthread_mutex_lock(&cl->lock);
	if (cl->nodes[idx].conn == NULL) {
		cl->nodes[idx].conn = c;
		conn_ref(c);
	} else {
		old = c;	/* another thread dialed it first */
		c = cl->nodes[idx].conn;
		conn_ref(c);
	}
	pthread_mutex_unlock(&cl->lock);
	chan_conn_close(old);
	*out = c;
	return CHAN_OK;
}

/*
 * The node for rn (to >= 0: the one MOVED named). Without a cached owner
 * any node answers (it routes or MOVEs), so one that cannot be reached
 * is passed over for the next.
 */
static int
route(struct cluster *cl, chan_ctx_t *ctx, const struct rnames *rn, ssize_t to, size_t *idxp,
    chan_conn_t **out)
{
	ssize_t idx = to;
	size_t n, start = 0;
	int rc = CHAN_OK;

	pthread_mutex_lock(&cl->lock);
	if (idx < 0 && (idx = owner_of_locked(cl, rn)) < 0)
		for (size_t i = 0; i < cl->nnodes; i++)
			if (cl->nodes[i].conn != NULL) {	/* prefer one connected already */
				start = i;
				break;
			}
	n = cl->nnodes;
	pthread_mutex_unlock(&cl->lock);
	if (idx >= 0) {
		*idxp = (size_t)idx;
		if ((rc = node_get(cl, ctx, (size_t)idx, out)) != CHAN_OK) {
			pthread_mutex_lock(&cl->lock);
			owners_clear_locked(cl, (size_t)idx);	/* unreachable: ask anew next time */
			pthread_mutex_unlock(&cl->lock);
		}
		return rc;
	}
	rc = CHAN_EUNAVAILABLE;
	for (size_t i = 0; i < n; i++) {
		*idxp = (start + i) % n;
		if ((rc = node_get(cl, ctx, *idxp, out)) == CHAN_OK ||
		    rc == CHAN_EDEADLINE || rc == CHAN_ECANCELED || rc == CHAN_ENOMEM)
			break;
	}
	return rc;
}

/* ---- calls --------------------------------------------------------------------------------------- */

/* The front's own failure (chan_conn_close), or 0. */
static int
front_err(chan_conn_t *front)
{
	return conn_broken(front) ? CHAN_ENOTCONN : CHAN_OK;
}

static int
routed_call(chan_conn_t *front, struct rnames *rn, chan_ctx_t *ctx, uint64_t op, enum call_wait how,
    call_encode_fn enc, void *arg, struct call_reply *r)
{
	struct cluster *cl = front->cluster;
	chan_conn_t *node;
	ssize_t to = -1;
	size_t idx;
	int rc, hops = 0;

	for (;;) {
		if ((rc = front_err(front)) != CHAN_OK || (rc = route(cl, ctx, rn, to, &idx, &node)) != CHAN_OK)
			return rc;
		cluster_release_others(cl, node);	/* a blocking call: as on one connection */
		if ((rc = conn_call(node, ctx, op, how, enc, arg, r)) != CHAN_OK) {
			if (conn_broken(node))
				node_drop(cl, idx, node);	/* its calls failed with it: the next one re-resolves */
			conn_unref(node);
			return rc;
		}
		owner_learn(cl, rn, idx, &r->rep);
		if (r->rep.status != STATUS_MOVED) {
			r->via = node;	/* its tag, if any, is this connection's */
			return CHAN_OK;
		}
		if (!dial_is_hostport(r->rep.msg, r->rep.msg_len)) {
			/* a unix path or a scheme is no node's address (§3): not followed, never dialed */
			rc = conn_broke_contract(node);
			node_drop(cl, idx, node);
			conn_unref(node);
			call_reply_free(r);
			return rc;
		}
		conn_unref(node);
		pthread_mutex_lock(&cl->lock);
		to = node_add_locked(cl, r->rep.msg, r->rep.msg_len);
		if (to >= 0 && rnames_count(rn) == 1 && rn->req.name != NULL)
			owner_set_locked(cl, rn->req.name, rn->req.name_len, (size_t)to);
		pthread_mutex_unlock(&cl->lock);
		call_reply_free(r);
		/* the wait budget was not spent on a MOVED: the same request goes again */
		if (to < 0 || ++hops > CLUSTER_HOPS_MAX)
			return CHAN_EUNAVAILABLE;
	}
}

int
cluster_call(chan_conn_t *front, chan_ctx_t *ctx, uint64_t op, enum call_wait how,
    call_encode_fn enc, void *arg, struct call_reply *r)
{
	struct rnames rn;
	int rc;

	memset(r, 0, sizeof *r);
	if ((rc = rnames_read(&rn, op, front->info.max_select_cases, enc, arg)) == CHAN_OK)
		rc = routed_call(front, &rn, ctx, op, how, enc, arg, r);
	rnames_fini(&rn);
	return rc;
}

struct open_arg {
	const char *name;
	size_t len;
};

static int
enc_open(struct proto_out *o, uint64_t id, int64_t wait_us, void *arg)
{
	struct open_arg *a = arg;

	return proto_req_name(o, OP_OPEN, id, wait_us, a->name, a->len);
}

/* An OPEN of name through the front: its owner is cached after, if it has one. */
static int
resolve(chan_conn_t *front, chan_ctx_t *ctx, const char *name, size_t len, int *status)
{
	struct open_arg a = { name, len };
	struct call_reply r;
	int rc;

	if ((rc = cluster_call(front, ctx, OP_OPEN, CALL_NOWAIT, enc_open, &a, &r)) != CHAN_OK)
		return rc;
	*status = r.rep.status;
	call_reply_free(&r);
	return CHAN_OK;
}

int
cluster_pick(chan_conn_t *front, chan_ctx_t *ctx, uint64_t op, call_encode_fn enc, void *arg,
    chan_conn_t **node)
{
	struct cluster *cl = front->cluster;
	struct rnames rn;
	const char *name;
	size_t len, idx;
	bool known;
	int rc, st;

	if ((rc = rnames_read(&rn, op, front->info.max_select_cases, enc, arg)) != CHAN_OK)
		goto done;
	for (size_t i = 0; i < rnames_count(&rn); i++) {
		if ((name = rnames_get(&rn, i, &len)) == NULL)
			continue;
		pthread_mutex_lock(&cl->lock);
		known = owner_find_locked(cl, name, len) != NULL;
		pthread_mutex_unlock(&cl->lock);
		/* a request that stays (async, stream, link) cannot bounce: find the owner first */
		if (!known && (rc = resolve(front, ctx, name, len, &st)) != CHAN_OK)
			goto done;
	}
	if ((rc = front_err(front)) == CHAN_OK)
		rc = route(cl, ctx, &rn, -1, &idx, node);
done:
	rnames_fini(&rn);
	return rc;
}

/* The node index of name's cached owner (route: where it was last, if it still holds), or -1. */
static ssize_t
owner_idx_locked(struct cluster *cl, const char *name, size_t len, struct cluster_route *route)
{
	struct owner *ow;

	if (route->epoch == cl->epoch)
		return (ssize_t)route->idx;
	if ((ow = owner_find_locked(cl, name, len)) == NULL)
		return -1;
	*route = (struct cluster_route){ .epoch = cl->epoch, .idx = ow->idx };
	return (ssize_t)ow->idx;
}

/* The connection of name's cached owner, when it is up (a reference), else NULL. */
static chan_conn_t *
cached_conn(struct cluster *cl, const char *name, size_t len, struct cluster_route *route)
{
	chan_conn_t *c = NULL;
	ssize_t idx;

	pthread_mutex_lock(&cl->lock);
	if ((idx = owner_idx_locked(cl, name, len, route)) >= 0 && (c = cl->nodes[idx].conn) != NULL)
		conn_ref(c);
	pthread_mutex_unlock(&cl->lock);
	if (c != NULL && conn_broken(c)) {
		conn_unref(c);
		c = NULL;
	}
	return c;
}

int
cluster_conn_for(chan_conn_t *c, chan_ctx_t *ctx, const char *name, size_t len,
    struct cluster_route *route, chan_conn_t **out)
{
	struct open_arg a = { name, len };

	if (c->cluster == NULL) {
		conn_ref(c);
		*out = c;
		return CHAN_OK;
	}
	/* the common case, without encoding a request to read its name back */
	if (front_err(c) == CHAN_OK && (*out = cached_conn(c->cluster, name, len, route)) != NULL)
		return CHAN_OK;
	return cluster_pick(c, ctx, OP_OPEN, enc_open, &a, out);
}

int
chan_cluster_where(chan_ctx_t *ctx, chan_conn_t *front, const char *name, char *addr, size_t cap)
{
	struct cluster *cl;
	struct owner *ow;
	size_t len;
	int rc, st;

	if (front == NULL || name == NULL || addr == NULL || cap == 0)
		return CHAN_EINVAL;
	if ((cl = front->cluster) == NULL)
		return CHAN_ENOTSUP;
	len = strlen(name);
	if ((rc = resolve(front, ctx, name, len, &st)) != CHAN_OK)
		return rc;
	if ((rc = call_status_err(st, false)) != CHAN_OK)
		return rc;
	pthread_mutex_lock(&cl->lock);
	if ((ow = owner_find_locked(cl, name, len)) != NULL)
		snprintf(addr, cap, "%s", cl->nodes[ow->idx].addr);
	pthread_mutex_unlock(&cl->lock);
	return ow != NULL ? CHAN_OK : CHAN_EUNAVAILABLE;
}

/* ---- a cluster's life ------------------------------------------------------------------------------ */

#define SCHEME_PLAIN "cluster://"
#define SCHEME_TLS "cluster+tls://"

static bool
has_prefix(const char *s, const char *prefix)
{
	return strncmp(s, prefix, strlen(prefix)) == 0;
}

bool
cluster_addr(const char *addr)
{
	return addr != NULL && (has_prefix(addr, SCHEME_PLAIN) || has_prefix(addr, SCHEME_TLS) ||
	    strchr(addr, ',') != NULL);
}

/* The seed list of cluster address addr, after its scheme if any; *tls: cluster+tls://. */
static const char *
seeds_of(const char *addr, bool *tls)
{
	if ((*tls = has_prefix(addr, SCHEME_TLS)))
		return addr + strlen(SCHEME_TLS);
	return has_prefix(addr, SCHEME_PLAIN) ? addr + strlen(SCHEME_PLAIN) : addr;
}

/* The seeds of "a,b" (seeds_of's) into the node table. */
static int
seeds_add(struct cluster *cl, const char *p)
{
	const char *comma;
	size_t len;

	for (;;) {
		comma = strchr(p, ',');
		len = comma ? (size_t)(comma - p) : strlen(p);
		if (!dial_is_hostport(p, len) || node_add_locked(cl, p, len) < 0)
			return CHAN_EINVAL;	/* plain HOST:PORT only, at most CLUSTER_NODES_MAX */
		if (comma == NULL)
			return CHAN_OK;
		p = comma + 1;
	}
}

/* The strings of o, which a cluster copies: its nodes are dialed long after chan_dial returned. */
#define OPTS_STRINGS(o) { &(o)->client_name, &(o)->token, &(o)->tls_ca, &(o)->tls_cert, \
	&(o)->tls_key, &(o)->tls_server_name }
#define OPTS_NSTRINGS 6

/* *o's strings replaced by copies; on failure those made so far are freed and the rest NULL. */
static int
opts_own(chan_dial_opts_t *o)
{
	const char **str[OPTS_NSTRINGS] = OPTS_STRINGS(o);
	bool failed = false;

	for (size_t i = 0; i < OPTS_NSTRINGS; i++)
		if (*str[i] != NULL && (failed || (*str[i] = strdup(*str[i])) == NULL)) {
			*str[i] = NULL;
			failed = true;
		}
	return failed ? CHAN_ENOMEM : CHAN_OK;
}

static void
opts_free(chan_dial_opts_t *o)
{
	const char **str[OPTS_NSTRINGS] = OPTS_STRINGS(o);

	for (size_t i = 0; i < OPTS_NSTRINGS; i++)
		free((char *)*str[i]);
}

static bool
opts_tls(const chan_dial_opts_t *opts)
{
	return opts != NULL && (opts->tls_ca || opts->tls_cert || opts->tls_key || opts->tls_server_name);
}

static struct cluster *
cluster_new(const chan_dial_opts_t *opts, bool tls)
{
	struct rand_state rs;
	struct cluster *cl = calloc(1, sizeof *cl);

	if (cl == NULL)
		return NULL;
	pthread_mutex_init(&cl->lock, NULL);
	rand_seed(&rs);
	cl->seed = rand_next(&rs);
	cl->epoch = 1;		/* a zeroed route is none */
	cl->tls = tls;
	hmap_init(&cl->owners, cl->seed);
	if (opts != NULL)
		cl->opts = *opts;
	if (opts_own(&cl->opts) != CHAN_OK) {
		cluster_free(cl);
		return NULL;
	}
	return cl;
}

int
cluster_dial(chan_ctx_t *ctx, const char *addr, const chan_dial_opts_t *opts, chan_conn_t **out)
{
	struct rnames none = { .ok = false };
	struct cluster *cl;
	chan_conn_t *node, *front;
	chan_conn_info_t info;
	size_t idx;
	int rc;
	bool tls;
	const char *seeds = seeds_of(addr, &tls);

	/* tls_* with a plain cluster would send the token in the clear to a cluster thought TLS */
	if (!tls && opts_tls(opts))
		return CHAN_EINVAL;
	if ((cl = cluster_new(opts, tls)) == NULL)
		return CHAN_ENOMEM;
	if ((rc = seeds_add(cl, seeds)) != CHAN_OK)
		goto fail;
	/* one seed now: its HELLO's limits are the front's, and a dead cluster fails here */
	if ((rc = route(cl, ctx, &none, -1, &idx, &node)) != CHAN_OK)
		goto fail;
	chan_conn_info(node, &info);
	conn_unref(node);
	rc = CHAN_ENOMEM;
	if ((front = conn_front_new(cl, &info, opts)) == NULL)
		goto fail;
	*out = front;
	return CHAN_OK;
fail:
	cluster_free(cl);
	return rc;
}

/* The node connections, each with a reference (the caller's conn_unref), into c. */
static size_t
node_conns(struct cluster *cl, chan_conn_t *c[CLUSTER_NODES_MAX])
{
	size_t n = 0;

	pthread_mutex_lock(&cl->lock);
	for (size_t i = 0; i < cl->nnodes; i++)
		if ((c[n] = cl->nodes[i].conn) != NULL)
			conn_ref(c[n++]);
	pthread_mutex_unlock(&cl->lock);
	return n;
}

int
cluster_flush(struct cluster *cl)
{
	chan_conn_t *c[CLUSTER_NODES_MAX];
	size_t n = node_conns(cl, c);
	int rc = CHAN_OK, err;

	for (size_t i = 0; i < n; i++) {
		if ((err = chan_conn_flush(c[i])) != CHAN_OK && rc == CHAN_OK)
			rc = err;
		conn_unref(c[i]);
	}
	return rc;
}

void
cluster_release_others(struct cluster *cl, const chan_conn_t *waiting)
{
	chan_conn_t *c[CLUSTER_NODES_MAX];
	size_t n = node_conns(cl, c);

	for (size_t i = 0; i < n; i++) {
		if (c[i] != waiting)
			conn_release(c[i]);
		conn_unref(c[i]);
	}
}

void
cluster_close(struct cluster *cl)
{
	chan_conn_t *c[CLUSTER_NODES_MAX];
	size_t n = 0;

	pthread_mutex_lock(&cl->lock);
	for (size_t i = 0; i < cl->nnodes; i++) {
		if ((c[n] = cl->nodes[i].conn) != NULL)
			n++;
		cl->nodes[i].conn = NULL;
	}
	owners_clear_locked(cl, SIZE_MAX);
	pthread_mutex_unlock(&cl->lock);
	for (size_t i = 0; i < n; i++)
		chan_conn_close(c[i]);
}

void
cluster_free(struct cluster *cl)
{
	if (cl == NULL)
		return;
	cluster_close(cl);
	for (size_t i = 0; i < cl->nnodes; i++)
		free(cl->nodes[i].addr);
	hmap_destroy(&cl->owners);
	pthread_mutex_destroy(&cl->lock);
	opts_free(&cl->opts);
	free(cl);
}
