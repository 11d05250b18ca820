/*
 * codec_int.h: what the codec's files (codec.c, codec_admin.c,
 * codec_request.c, codec_request_fast.c, codec_reply.c) share and nobody
 * else uses.
 *
 * SPDX-License-Identifier: BSD-2-Clause
 */
#ifndef CHAND_CODEC_INT_H
#define CHAND_CODEC_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "codec.h"
#include "mpread.h"

/* Arguments each op takes after [op, id, wait] (0 for an op that has none or is unknown). */
extern const uint8_t proto_op_arity[OP_MAX + 1];

/*
 * The encoders' pieces (codec.c), for codec_admin.c: a frame's end (its
 * length patched in, or the partial frame dropped when rc is not 0), the
 * heads [op, id, wait, ...] and [id, status, ...], and strings, names
 * (nil when NULL) and "key": uint pairs. Each returns 0 or not, to be or-ed.
 */
int codec_frame_end(struct proto_out *o, int rc);
int codec_req_head(struct proto_out *o, uint64_t op, uint64_t id, int64_t wait_us, size_t nargs);
int codec_rep_head(struct proto_out *o, uint64_t id, int status, size_t nres);
int codec_pack_str(msgpack_packer *pk, const char *s, size_t len);
int codec_pack_cstr(msgpack_packer *pk, const char *s);
int codec_pack_name(msgpack_packer *pk, const char *name, size_t len);
int codec_pack_kv_uint(msgpack_packer *pk, const char *k, uint64_t v);
int codec_pack_kv_str(msgpack_packer *pk, const char *k, const char *s, size_t len);

/* Well-formed UTF-8 (no overlongs, surrogates or code points past U+10FFFF). */
bool proto_utf8_valid(const uint8_t *s, size_t len);

/*
 * One-pass readers for the fast paths of requests (SEND, RECV, SELECT) and
 * replies (to SEND, RECV, STREAM): each reads a header once and takes a str
 * or bin extent straight from it, and says false, leaving the decision to
 * the general path, for anything it does not take (valid or not).
 */
struct fast {
	const uint8_t *p;
	const uint8_t *end;
};

/* A positive fixint or uint 8/16/32/64. */
static inline bool
fast_uint(struct fast *f, uint64_t *v)
{
	size_t n;
	uint8_t b;

	if (f->p >= f->end)
		return false;
	b = f->p[0];
	if (b <= 0x7f) {
		*v = b;
		f->p++;
		return true;
	}
	if (b < 0xcc || b > 0xcf)
		return false;
	n = (size_t)1 << (b - 0xcc);
	if ((size_t)(f->end - f->p) <= n)
		return false;
	*v = mpr_be(f->p + 1, n);
	f->p += 1 + n;
	return true;
}

/* A str (fixstr, str 8/16/32) or a bin (bin 8/16/32) whose bytes lie in the frame. */
static inline bool
fast_bytes(struct fast *f, bool bin, const uint8_t **data, size_t *len)
{
	size_t left = (size_t)(f->end - f->p), hlen;
	uint8_t b, first = bin ? 0xc4 : 0xd9;
	uint64_t n;

	if (left == 0)
		return false;
	b = f->p[0];
	if (!bin && (b & 0xe0) == 0xa0) {
		hlen = 1;
		n = b & 0x1f;
	} else {
		if (b < first || b > first + 2)
			return false;
		hlen = 1 + ((size_t)1 << (b - first));
		if (left < hlen)
			return false;
		n = mpr_be(f->p + 1, hlen - 1);
	}
	if (n > left - hlen)
		return false;
	*data = f->p + hlen;
	*len = (size_t)n;
	f->p += hlen + n;
	return true;
}

/* A bool (false, true). */
static inline bool
fast_bool(struct fast *f, bool *v)
{
	if (f->p >= f->end || (f->p[0] != 0xc2 && f->p[0] != 0xc3))
		return false;
	*v = *f->p++ == 0xc3;
	return true;
}

#endif
