/*
 * codec_admin.c: the encoders of the admin operations (PROTOCOL.md §11):
 * their requests, and the pieces their replies are built of (chand's
 * admin.c writes a reply's list element by element).
 *
 * SPDX-License-Identifier: BSD-2-Clause
 */
#include "codec.h"
#include "codec_int.h"

int
proto_req_simple(struct proto_out *o, uint64_t op, uint64_t id)
{
	return codec_frame_end(o, codec_req_head(o, op, id, PROTO_WAIT_FOREVER, 0));
}

int
proto_req_channels(struct proto_out *o, uint64_t id, const char *pattern, uint64_t limit)
{
	return codec_frame_end(o, codec_req_head(o, OP_CHANNELS, id, PROTO_WAIT_FOREVER, 2) |
	    (pattern ? codec_pack_cstr(&o->pk, pattern) : msgpack_pack_nil(&o->pk)) |
	    msgpack_pack_uint64(&o->pk, limit));
}

int
proto_req_waiters(struct proto_out *o, uint64_t id, uint64_t limit)
{
	return codec_frame_end(o, codec_req_head(o, OP_WAITERS, id, PROTO_WAIT_FOREVER, 1) |
	    msgpack_pack_uint64(&o->pk, limit));
}

int
proto_req_unblock(struct proto_out *o, uint64_t id, uint64_t client, uint64_t request)
{
	return codec_frame_end(o, codec_req_head(o, OP_UNBLOCK, id, PROTO_WAIT_FOREVER, 2) |
	    msgpack_pack_uint64(&o->pk, client) |
	    (request ? msgpack_pack_uint64(&o->pk, request) : msgpack_pack_nil(&o->pk)));
}

int
proto_rep_begin(struct proto_out *o, uint64_t id, size_t nresults)
{
	return codec_rep_head(o, id, STATUS_OK, nresults);
}

int
proto_rep_end(struct proto_out *o, int rc)
{
	return codec_frame_end(o, rc);
}

int
proto_pack_array(struct proto_out *o, size_t n)
{
	return msgpack_pack_array(&o->pk, n);
}

int
proto_pack_map(struct proto_out *o, size_t n)
{
	return msgpack_pack_map(&o->pk, n);
}

int
proto_pack_uint(struct proto_out *o, uint64_t v)
{
	return msgpack_pack_uint64(&o->pk, v);
}

int
proto_pack_kv_uint(struct proto_out *o, const char *key, uint64_t v)
{
	return codec_pack_kv_uint(&o->pk, key, v);
}

int
proto_pack_client_info(struct proto_out *o, const struct proto_client_info *c)
{
	msgpack_packer *pk = &o->pk;

	return msgpack_pack_map(pk, 6) | codec_pack_kv_uint(pk, "id", c->id) |
	    codec_pack_kv_str(pk, "peer", c->peer, c->peer_len) |
	    codec_pack_kv_str(pk, "name", c->name, c->name_len) |
	    codec_pack_kv_uint(pk, "pending", c->pending) | codec_pack_kv_uint(pk, "age_ms", c->age_ms) |
	    codec_pack_kv_uint(pk, "unsent", c->unsent);
}

int
proto_pack_node_info(struct proto_out *o, const struct proto_node_info *n)
{
	msgpack_packer *pk = &o->pk;

	return msgpack_pack_map(pk, 5) |
	    codec_pack_kv_str(pk, "name", n->name, n->name_len) |
	    codec_pack_kv_str(pk, "advertise", n->advertise, n->advertise_len) |
	    codec_pack_kv_uint(pk, "owned", n->owned) | codec_pack_kv_uint(pk, "self", n->self) |
	    codec_pack_kv_uint(pk, "lease_left_ms", n->lease_left_ms);
}

int
proto_pack_waiter_head(struct proto_out *o, const struct proto_waiter_info *w)
{
	msgpack_packer *pk = &o->pk;

	bool home = w->home != NULL && w->home_len > 0;
	int rc = msgpack_pack_map(pk, home ? 6 : 5) | codec_pack_kv_uint(pk, "client", w->client) |
	    codec_pack_kv_uint(pk, "request", w->request) | codec_pack_kv_uint(pk, "op", w->op) |
	    codec_pack_kv_uint(pk, "waited_ms", w->waited_ms);

	if (home)
		rc |= codec_pack_kv_str(pk, "home", w->home, w->home_len);
	return rc | codec_pack_cstr(pk, "cases") | msgpack_pack_array(pk, w->ncases);
}

int
proto_pack_case(struct proto_out *o, uint8_t dir, const char *name, size_t len)
{
	return msgpack_pack_array(&o->pk, 2) | msgpack_pack_uint8(&o->pk, dir) |
	    codec_pack_name(&o->pk, name, len);
}
