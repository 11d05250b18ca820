/*
 * codec.h: chand's wire protocol (proto/PROTOCOL.md), both directions.
 *
 * Decoding is in place: names, messages and values in a decoded request or
 * reply point into the frame body, so they are valid as long as the body is,
 * and decoding allocates nothing. Every decoder checks everything: types,
 * arity, names (§6), values (§7), counts against the bytes present, and
 * returns a status with a static reason string.
 *
 * Encoding uses msgpack-c's packer into a growable buffer (struct proto_out)
 * that holds any number of whole frames, each with its length prefix.
 *
 * Thread-safety: none inside; a proto_out or decoded message is one
 * thread's. The functions keep no global state.
 *
 * SPDX-License-Identifier: BSD-2-Clause
 */
#ifndef CHAND_CODEC_H
#define CHAND_CODEC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <msgpack.h>

#include "status.h"

#define PROTO_VERSION 1
#define PROTO_VERSION_MIN 1
#define PROTO_FRAME_HDR 4
#define PROTO_NAME_MAX 255
#define PROTO_CLIENT_NAME_MAX 255
/* A node's name in HELLO caps "node" (PROTOCOL.md §17: node_name is 1 to 64 characters). */
#define PROTO_NODE_NAME_MAX 64
#define PROTO_WAIT_FOREVER (-1)		/* wait = nil */
#define PROTO_WAIT_MAX (1LL << 48)	/* µs; larger is BAD_REQUEST */
#define PROTO_EXT_CHANREF 1
#define PROTO_EXT_ERROR 2		/* reserved for server-made error values */

enum proto_op {
	OP_HELLO = 1,
	OP_PING = 2,
	OP_MAKE = 3,
	OP_OPEN = 4,
	OP_SEND = 5,
	OP_RECV = 6,
	OP_CLOSE = 7,
	OP_LEN = 8,
	OP_CAP = 9,
	OP_SELECT = 10,
	OP_CANCEL = 11,
	OP_DELETE = 12,
	OP_INFO = 13,
	/* admin operations (PROTOCOL.md §11) */
	OP_STATS = 14,
	OP_CHANNELS = 15,
	OP_CLIENTS = 16,
	OP_WAITERS = 17,
	OP_UNBLOCK = 18,
	OP_SHUTDOWN = 19,
	/* streaming receive (PROTOCOL.md §14) */
	OP_STREAM = 20,
	OP_CREDIT = 21,
	/* deferred replies (PROTOCOL.md §15) */
	OP_WANT = 22,
	/* acknowledged delivery (PROTOCOL.md §16); INFLIGHT is an admin op */
	OP_ACK = 23,
	OP_NACK = 24,
	OP_TOUCH = 25,
	OP_INFLIGHT = 26,
	/* a cluster's live nodes (PROTOCOL.md §17), an admin op */
	OP_CLUSTER_NODES = 27,
	OP_XSETTLE = 28,		/* node-to-node: a held SELECT value kept or given back (§17) */
	/* links and jobs (PROTOCOL.md §12); 28-31 are unassigned */
	OP_OR = 32,
	OP_OR_DONE = 33,
	OP_TEE = 34,
	OP_BRIDGE = 35,
	OP_FAN_IN = 36,
	OP_REPEAT = 37,
	OP_TAKE = 38,
	OP_FAN_OUT = 39,
};
#define OP_MAX OP_FAN_OUT
/* Bit 6 of a request's op asks for a deferred reply (§15); every op is below it. */
#define PROTO_OP_DEFER 64
#define OP_LINK_MIN OP_OR
#define PROTO_LINK_OUTS_MAX 2		/* TEE has two outputs, every other link one */
#define PROTO_STAGE_NAME_MAX 64

/* Is op one of the link operations of §12? */
static inline bool
proto_op_is_link(uint64_t op)
{
	return op >= OP_LINK_MIN && op <= OP_MAX;
}

/* "SEND", ...; NULL for an unknown op. */
const char *proto_op_name(uint64_t op);

/* ---- framing -------------------------------------------------------------- */

/* The body length announced by a 4-byte frame header. */
static inline uint32_t
proto_frame_len(const uint8_t hdr[PROTO_FRAME_HDR])
{
	return (uint32_t)hdr[0] << 24 | (uint32_t)hdr[1] << 16 | (uint32_t)hdr[2] << 8 | hdr[3];
}

/*
 * Split the next frame off a stream. buf holds avail bytes read so far.
 * Returns the bytes the frame takes (header + body; *body and *body_len
 * set), 0 when more input is needed, or -1 when the header announces a
 * length of 0 or above max_frame (*why set): the limit is enforced as soon
 * as the four header bytes are in, before any of the body is buffered.
 */
long proto_frame_split(const uint8_t *buf, size_t avail, size_t max_frame,
    const uint8_t **body, size_t *body_len, const char **why);

/* ---- values ------------------------------------------------------------- */

enum proto_value_kind { VALUE_NONE = 0, VALUE_BIN, VALUE_CHANREF, VALUE_ERROR };

/*
 * A value as it travels: `raw` is its exact msgpack encoding (what the
 * server stores and forwards); `data` is the payload inside (the bytes of a
 * bin, the name of a channel reference, the message of an error value).
 */
struct proto_value {
	enum proto_value_kind kind;
	const uint8_t *raw;
	size_t raw_len;
	const uint8_t *data;
	size_t len;
};

/* Parse one encoded value (bin or ext 1/2). STATUS_OK or STATUS_BAD_REQUEST. */
int proto_value_parse(const uint8_t *raw, size_t raw_len, struct proto_value *v,
    const char **why);
/* Is this a valid channel name (§6)? why says what is wrong. */
bool proto_name_valid(const char *name, size_t len, const char **why);

/*
 * A channel's close error (§5 CLOSE): an application's code and a UTF-8
 * message of at most PROTO_CLOSE_MSG_MAX bytes, [code, message] on the
 * wire. set is false for none (a plain close, or no error in a reply).
 */
#define PROTO_CLOSE_MSG_MAX 1024
struct proto_close_err {
	bool set;
	uint64_t code;
	const char *msg;
	uint32_t msg_len;
};

/* ---- requests (client encodes, server decodes) ------------------------------ */

struct proto_case {
	uint8_t dir;			/* 0 receive, 1 send */
	const char *name;		/* NULL: nil channel */
	uint32_t name_len;
	struct proto_value value;	/* send cases */
};

/* A link's output (§12): name NULL for an anonymous channel. */
struct proto_link_out {
	const char *name;
	uint32_t name_len;
	uint64_t cap;
};

/* MAKE's options (§16): on when ack_wait was given (an ack channel); durable alone is a plain one. */
struct proto_delivery {
	bool on;
	bool durable;			/* kept in the journal (data_dir) */
	uint64_t ack_wait_us;		/* 1 … PROTO_WAIT_MAX */
	uint64_t max_deliver;		/* 0: unlimited */
	uint64_t max_unacked;		/* per connection on the channel; 0: unlimited */
	uint64_t max_ack_pending;	/* the whole channel, every connection; 0: unlimited */
	const char *dead_letter;	/* NULL: none */
	uint32_t dead_letter_len;
};
#define PROTO_MAX_DELIVER_DEFAULT 5
#define PROTO_MAX_UNACKED_DEFAULT 1000
#define PROTO_MAX_ACK_PENDING_DEFAULT 0
#define PROTO_ACK_TAGS_MAX 65536	/* tags in one ACK */

/* A cursor over a list (or map) in a decoded message: ACK's tags, and the admin lists of replies. */
struct proto_list {
	const uint8_t *p, *end;
	uint32_t left;
};

struct proto_request {
	uint64_t op;			/* without PROTO_OP_DEFER */
	bool deferred;			/* the op carried PROTO_OP_DEFER */
	uint64_t id;
	int64_t wait_us;		/* PROTO_WAIT_FOREVER, or 0 … PROTO_WAIT_MAX */
	const char *name;		/* MAKE (NULL: anonymous) and the one-channel ops */
	uint32_t name_len;
	uint64_t cap;			/* MAKE */
	struct proto_value value;	/* SEND */
	struct proto_close_err close_err;	/* CLOSE's optional error */
	uint64_t target;		/* CANCEL, CREDIT: request id; UNBLOCK: client id */
	uint64_t target_req;		/* UNBLOCK: request id, 0 for all */
	const char *pattern;		/* CHANNELS: glob, NULL for all */
	uint32_t pattern_len;
	uint64_t limit;			/* CHANNELS, WAITERS: most items to return */
	uint64_t version;		/* HELLO */
	const char *client;		/* HELLO */
	uint32_t client_len;
	const char *token;		/* HELLO auth "token", NULL if absent */
	uint32_t token_len;
	bool moved;			/* HELLO caps "moved": the client follows MOVED (§17) */
	const char *node;		/* HELLO caps "node": another node's name (§17), NULL if absent */
	uint32_t node_len;
	struct proto_case *cases;	/* SELECT: points at the caller's case array; */
	uint32_t ncases;		/* OR, FAN_IN, STREAM: the inputs; REPEAT: the values */
	bool has_default;
	bool hold;			/* SELECT: its received value is held until XSETTLE (§17) */
	bool hold_parked;		/* ... and STARTED says when it waits (hold 2) */
	uint32_t firm;			/* ... its first firm cases fire for good at the poll */
	bool keep;			/* XSETTLE */
	/* links (§12); the single input of OR_DONE, TEE, BRIDGE, TAKE, FAN_OUT is name */
	const char *done;		/* NULL: no done channel */
	uint32_t done_len;
	struct proto_link_out outs[PROTO_LINK_OUTS_MAX];
	uint32_t nouts;
	uint64_t count;			/* TAKE: n; FAN_OUT: workers; STREAM: credit; CREDIT: n */
	const char *stage;		/* FAN_OUT */
	uint32_t stage_len;
	bool ordered;			/* FAN_OUT */
	struct proto_delivery dlv;	/* MAKE */
	struct proto_list tags;		/* ACK: 1 … PROTO_ACK_TAGS_MAX tags (proto_list_tag) */
	uint64_t tag;			/* NACK, TOUCH */
	int64_t delay_us;		/* NACK */
};

/* Next tag of ACK's list: 1, or 0 at the end. */
int proto_list_tag(struct proto_list *l, uint64_t *tag);

struct proto_limits {
	uint64_t max_value;		/* bin payload bytes */
	uint32_t max_select_cases;
	bool error_values;		/* a SEND may carry an error value (ext 2): a node's link pump, §17 */
};

/*
 * Decode one request body. Returns
 *   STATUS_OK;
 *   STATUS_PROTOCOL: no usable header (req->id is 0), the frame is malformed;
 *   STATUS_BAD_REQUEST or STATUS_LIMIT: req->id and req->op are valid, the
 *     connection goes on.
 * *why is a static reason. SELECT cases are decoded into cases[0..case_cap);
 * more than case_cap (or limits->max_select_cases) is STATUS_LIMIT.
 */
int proto_decode_request(const uint8_t *body, size_t len, const struct proto_limits *limits,
    struct proto_case *cases, uint32_t case_cap, struct proto_request *req, const char **why);
/*
 * The same without the one-pass fast path for SEND, RECV and SELECT: the reference
 * that tests and the fuzzer compare proto_decode_request with.
 */
int proto_decode_request_general(const uint8_t *body, size_t len, const struct proto_limits *limits,
    struct proto_case *cases, uint32_t case_cap, struct proto_request *req, const char **why);

/* ---- replies (server encodes, client decodes) ------------------------------- */

struct proto_hello_info {
	uint64_t version;
	const char *server;
	uint32_t server_len;
	uint64_t max_frame;
	uint64_t max_value;
	uint64_t max_pending;
	uint64_t max_select_cases;
	uint64_t max_stream_credit;	/* 0 from a server without STREAM */
	uint64_t max_waiters_per_connection;	/* 0: no budget, or a server without one */
};

struct proto_chan_info {
	const char *name;
	uint32_t name_len;
	uint64_t len;
	uint64_t cap;
	bool closed;
	bool anonymous;
	uint64_t senders;
	uint64_t receivers;
	uint64_t bytes;
	struct proto_close_err close_err;	/* "close_error", present only when set */
	/* durable channels only: both sent when durable */
	bool durable;
	uint64_t journal_bytes;		/* the server's journal on disk, all channels */
	/* ack channels only (§16): ack_wait 0 means a plain channel, and none of these are sent */
	uint64_t ack_wait;		/* µs */
	uint64_t inflight;
	uint64_t redelivered;
	uint64_t dead_lettered;
	uint64_t max_unacked;		/* 0: unlimited */
	uint64_t max_ack_pending;	/* 0: unlimited */
};

struct proto_client_info {
	uint64_t id;
	const char *peer;
	uint32_t peer_len;
	const char *name;
	uint32_t name_len;
	uint64_t pending;
	uint64_t age_ms;
	uint64_t unsent;
};

struct proto_waiter_info {
	uint64_t client;
	uint64_t request;
	uint64_t op;
	uint64_t waited_ms;
	uint32_t ncases;
	const uint8_t *cases;		/* raw array of [dir, name|nil]: proto_case_list */
	size_t cases_len;
	const char *home;		/* a remote waiter's home node (§17); NULL or "" for none */
	uint32_t home_len;
};

struct proto_reply {
	uint64_t id;
	int status;
	const char *msg;		/* error replies */
	uint32_t msg_len;
	int64_t index;			/* SELECT, STREAM; -1 otherwise or for default */
	struct proto_value value;	/* RECV, SELECT, STREAM (kind VALUE_NONE for nil) */
	bool ok;			/* RECV, SELECT, STREAM */
	struct proto_close_err close_err;	/* ok false: the channel's close error, if it has one */
	bool interim;			/* not the request's final reply: STARTED, a STREAM value */
	uint64_t tag;			/* a value from an ack channel (§16): its tag, else 0 */
	uint64_t count;			/* and its delivery count */
	uint64_t n;			/* OPEN/CAP: cap, LEN: len, DELETE: discarded, MAKE: cap */
	const char *name;		/* MAKE */
	uint32_t name_len;
	bool created;			/* MAKE */
	struct proto_hello_info hello;	/* HELLO */
	struct proto_chan_info info;	/* INFO */
	struct proto_list list;		/* STATS (a map), CHANNELS, CLIENTS, WAITERS */
	uint64_t total;			/* CHANNELS, WAITERS: how many matched */
	/* links: STARTED carries the output names in list (proto_list_name); the final OK, n = values sent */
	/* STREAM: an interim OK is [index, value, ok] (interim set); the final OK, n = values delivered */
};

/* Next item of a list; returns 1, 0 at the end, -1 when malformed. */
int proto_list_chan(struct proto_list *l, struct proto_chan_info *out);
int proto_list_client(struct proto_list *l, struct proto_client_info *out);
int proto_list_waiter(struct proto_list *l, struct proto_waiter_info *out);
/* CLUSTER_NODES' items (§17). */
struct proto_node_info {
	const char *name;
	uint32_t name_len;
	const char *advertise;		/* "" when its node key is malformed */
	uint32_t advertise_len;
	uint64_t owned;			/* channels it owns, by the answering node's mirror */
	uint64_t self;			/* 1: the answering node */
	uint64_t lease_left_ms;		/* self only: until etcd may expire its lease; else 0 */
};
int proto_list_node(struct proto_list *l, struct proto_node_info *out);
/* INFLIGHT's items (§16). */
struct proto_inflight_info {
	uint64_t client;
	uint64_t tag;
	uint64_t count;
	uint64_t age_ms;
};
int proto_list_inflight(struct proto_list *l, struct proto_inflight_info *out);
/* Next case of a waiter: dir and name (NULL for nil). Start with proto_case_list. */
void proto_case_list(const struct proto_waiter_info *w, struct proto_list *l);
int proto_list_case(struct proto_list *l, uint8_t *dir, const char **name, uint32_t *len);
/* Next output name of a link's STARTED reply. */
int proto_list_name(struct proto_list *l, const char **name, uint32_t *len);
/* Next key and unsigned value of STATS. */
int proto_list_stat(struct proto_list *l, const char **key, uint32_t *klen, uint64_t *val);

/*
 * Decode a reply to a request of operation op. First read the id and status
 * with proto_reply_header (to find which request it answers), then the rest.
 * Returns STATUS_OK when the reply is well-formed (whatever its status), or
 * STATUS_PROTOCOL with *why.
 */
int proto_reply_header(const uint8_t *body, size_t len, uint64_t *id, int *status,
    const char **why);
int proto_decode_reply(const uint8_t *body, size_t len, uint64_t op, struct proto_reply *rep,
    const char **why);
/*
 * The same without the one-pass fast path for OK replies to SEND, RECV and
 * STREAM values: the reference tests and the fuzzer compare it with.
 */
int proto_decode_reply_general(const uint8_t *body, size_t len, uint64_t op,
    struct proto_reply *rep, const char **why);
/*
 * How many results follow id and status (a STREAM's value has 3, or 4 for a
 * close report with the channel's close error; its end 1); -1 if malformed.
 */
int proto_reply_nresults(const uint8_t *body, size_t len);

/* ---- output ------------------------------------------------------------------ */

struct proto_out {
	msgpack_sbuffer sb;
	msgpack_packer pk;
	size_t frame;			/* offset of the open frame's header */
	uint64_t last_id;		/* id and status of the last reply begun, */
	int last_status;		/* so a server can count it without decoding */
};

void proto_out_init(struct proto_out *o);
void proto_out_destroy(struct proto_out *o);
/* Forget the bytes but keep the memory. */
void proto_out_reset(struct proto_out *o);
/* Drop every byte past len (whole frames appended after a proto_out_len). */
void proto_out_truncate(struct proto_out *o, size_t len);
/* Drop the first n bytes (written already); what follows moves to the front. */
void proto_out_consume(struct proto_out *o, size_t n);
static inline const uint8_t *
proto_out_data(const struct proto_out *o)
{
	return (const uint8_t *)o->sb.data;
}
static inline size_t
proto_out_len(const struct proto_out *o)
{
	return o->sb.size;
}

/*
 * Every encoder appends one whole frame and returns 0, or -1 when out of
 * memory (the buffer is then left as it was before the call).
 */

/* Requests. name NULL (with len 0) encodes nil where the protocol allows. */
int proto_req_hello(struct proto_out *o, uint64_t id, uint64_t version, const char *client,
    const char *token);
/* HELLO with caps (PROTOCOL.md §5): moved says the client follows MOVED replies. */
int proto_req_hello_caps(struct proto_out *o, uint64_t id, uint64_t version, const char *client,
    const char *token, bool moved);
int proto_req_ping(struct proto_out *o, uint64_t id);
int proto_req_make(struct proto_out *o, uint64_t id, const char *name, size_t len, uint64_t cap);
/* MAKE with delivery options (d->on: the map; else as proto_req_make). */
int proto_req_make_opts(struct proto_out *o, uint64_t id, const char *name, size_t len,
    uint64_t cap, const struct proto_delivery *d);
/* ACK (tags, 1 … PROTO_ACK_TAGS_MAX), NACK (delay in µs), TOUCH (§16). */
int proto_req_ack(struct proto_out *o, uint64_t id, const uint64_t *tags, size_t n);
int proto_req_nack(struct proto_out *o, uint64_t id, uint64_t tag, int64_t delay_us);
int proto_req_touch(struct proto_out *o, uint64_t id, uint64_t tag);
/* INFLIGHT (admin, §16): [26, id, wait, name, limit]. */
int proto_req_inflight(struct proto_out *o, uint64_t id, const char *name, size_t len,
    uint64_t limit);
/* OPEN, RECV, CLOSE, LEN, CAP, DELETE, INFO: [op, id, wait, name] */
int proto_req_name(struct proto_out *o, uint64_t op, uint64_t id, int64_t wait_us,
    const char *name, size_t len);
/* CLOSE with an error: [7, id, wait, name, [code, message]] (err->set false: the plain form). */
int proto_req_close(struct proto_out *o, uint64_t id, int64_t wait_us, const char *name,
    size_t len, const struct proto_close_err *err);
/* value: VALUE_BIN (data, len) or VALUE_CHANREF (data = name) */
int proto_req_send(struct proto_out *o, uint64_t id, int64_t wait_us, const char *name,
    size_t len, const struct proto_value *value);
int proto_req_select(struct proto_out *o, uint64_t id, int64_t wait_us,
    const struct proto_case *cases, size_t ncases, bool has_default);
/*
 * SELECT with its hold argument (node-to-node, PROTOCOL.md §17): 0 none, 1
 * (true) hold, PROTO_HOLD_PARKED hold and a STARTED reply when it waits;
 * with hold, firm > 0 (at most ncases) its firm argument: the first firm
 * cases fire for good when ready at the poll.
 */
#define PROTO_HOLD_PARKED 2
int proto_req_select_hold(struct proto_out *o, uint64_t id, int64_t wait_us,
    const struct proto_case *cases, size_t ncases, bool has_default, int hold, uint32_t firm);
/* XSETTLE (§17): keep or give back the value held for SELECT target. */
int proto_req_xsettle(struct proto_out *o, uint64_t id, uint64_t target, bool keep);
int proto_req_cancel(struct proto_out *o, uint64_t id, uint64_t target);
/* WANT (§15): the reply to target is awaited now. */
int proto_req_want(struct proto_out *o, uint64_t id, uint64_t target);
/* Can op's reply be deferred (SEND, RECV, SELECT, CANCEL, CREDIT, ACK, XSETTLE)? */
bool proto_op_deferrable(uint64_t op);
/*
 * Mark the request encoded last into o (a whole frame, nothing after it)
 * as deferred: sets PROTO_OP_DEFER in its op. -1 if its op is not
 * deferrable.
 */
int proto_req_defer_last(struct proto_out *o);

/* Replies. */
int proto_rep_ok(struct proto_out *o, uint64_t id);
int proto_rep_error(struct proto_out *o, uint64_t id, int status, const char *msg);
int proto_rep_case_error(struct proto_out *o, uint64_t id, int status, const char *msg,
    int64_t index);
int proto_rep_uint(struct proto_out *o, uint64_t id, uint64_t n);
int proto_rep_make(struct proto_out *o, uint64_t id, const char *name, size_t len, uint64_t cap,
    bool created);
/* raw: a value's exact encoding, or NULL for nil. */
int proto_rep_recv(struct proto_out *o, uint64_t id, const uint8_t *raw, size_t raw_len, bool ok);
int proto_rep_select(struct proto_out *o, uint64_t id, int64_t index, const uint8_t *raw,
    size_t raw_len, bool ok);
/*
 * ok false from a channel closed with err: [id, 0, nil, false, [code,
 * message]], and for SELECT and a STREAM's close report [id, 0, index, nil,
 * false, [code, message]] (index < 0: the RECV form).
 */
int proto_rep_closed_err(struct proto_out *o, uint64_t id, int64_t index,
    const struct proto_close_err *err);
/* A value from an ack channel (§16): the same with its tag and delivery count after ok. */
int proto_rep_recv_ack(struct proto_out *o, uint64_t id, const uint8_t *raw, size_t raw_len,
    uint64_t tag, uint64_t count);
int proto_rep_select_ack(struct proto_out *o, uint64_t id, int64_t index, const uint8_t *raw,
    size_t raw_len, uint64_t tag, uint64_t count);
/*
 * A select case's reply decoded from another node (rep), re-encoded for this
 * node's client: its close report, its value under tag (this node's, for an
 * ack channel; 0: none) or the plain value.
 */
int proto_rep_case(struct proto_out *o, uint64_t id, int64_t index, const struct proto_reply *rep,
    uint64_t tag);
int proto_rep_hello(struct proto_out *o, uint64_t id, const struct proto_hello_info *h);
int proto_rep_info(struct proto_out *o, uint64_t id, const struct proto_chan_info *i);

/* Admin requests. */
int proto_req_simple(struct proto_out *o, uint64_t op, uint64_t id);	/* STATS, CLIENTS, SHUTDOWN */
int proto_req_channels(struct proto_out *o, uint64_t id, const char *pattern, uint64_t limit);
int proto_req_waiters(struct proto_out *o, uint64_t id, uint64_t limit);
int proto_req_unblock(struct proto_out *o, uint64_t id, uint64_t client, uint64_t request);

/*
 * Admin replies are built in steps: begin the reply with its results count,
 * pack the items, end it. The packers return 0 or -1; proto_rep_end(o, rc)
 * drops the whole frame when rc says anything failed.
 */
int proto_rep_begin(struct proto_out *o, uint64_t id, size_t nresults);
int proto_rep_end(struct proto_out *o, int rc);
int proto_pack_array(struct proto_out *o, size_t n);
int proto_pack_map(struct proto_out *o, size_t n);
int proto_pack_uint(struct proto_out *o, uint64_t v);
int proto_pack_kv_uint(struct proto_out *o, const char *key, uint64_t v);
int proto_pack_chan_info(struct proto_out *o, const struct proto_chan_info *i);
int proto_pack_client_info(struct proto_out *o, const struct proto_client_info *c);
/* A waiter map; its cases follow with proto_pack_case, ncases of them. */
int proto_pack_waiter_head(struct proto_out *o, const struct proto_waiter_info *w);
int proto_pack_case(struct proto_out *o, uint8_t dir, const char *name, size_t len);
int proto_pack_inflight(struct proto_out *o, const struct proto_inflight_info *i);
int proto_pack_node_info(struct proto_out *o, const struct proto_node_info *n);

/*
 * Links (§12). A link request is [op, id, wait, done, outs, args...]; l
 * holds the op, done (done == NULL: nil), outs (nouts == 0: nil), the input
 * (name) or inputs/values (cases, ncases: dir 0 with a name, or dir 1 with a
 * value), count, stage and ordered, as the op needs them.
 */
int proto_req_link(struct proto_out *o, uint64_t id, int64_t wait_us, const struct proto_request *l);
/* [id, STARTED, [out names...]] */
int proto_rep_started(struct proto_out *o, uint64_t id, const char *const *names,
    const size_t *lens, size_t n);

/*
 * Streams (§14). STREAM: [20, id, wait, [name...], credit], names[i] the
 * i-th name (dir and value unused). CREDIT: [21, id, wait, stream_id, n].
 * The server answers each value with proto_rep_select's shape (an interim
 * reply) and ends with proto_rep_uint (values delivered) or an error.
 */
int proto_req_stream(struct proto_out *o, uint64_t id, int64_t wait_us,
    const struct proto_case *names, size_t n, uint64_t credit);
int proto_req_credit(struct proto_out *o, uint64_t id, uint64_t stream_id, uint64_t n);

/*
 * Forwarding between nodes (PROTOCOL.md §17). HELLO of a node: caps
 * {"node": node, "moved": true}. A request frame's body again with another id and wait
 * (its op without PROTO_OP_DEFER; every other argument, values and channel
 * references included, copied as it came); a reply's body again with
 * another id. -1 when body is malformed or out of memory.
 */
int proto_req_hello_node(struct proto_out *o, uint64_t id, const char *client, const char *token,
    const char *node);
int proto_req_readdress(struct proto_out *o, const uint8_t *body, size_t len, uint64_t id,
    int64_t wait_us);
int proto_rep_readdress(struct proto_out *o, const uint8_t *body, size_t len, uint64_t id);

/* Encode a value's raw form (bin or channel reference) on its own, no frame. */
int proto_value_encode(struct proto_out *o, const struct proto_value *v);

#endif
