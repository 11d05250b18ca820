/*
 * fuzz_decode_skip.c: mpr_skip (proto/mpread.c) against msgpack-c on every body.
 * Part of fuzz_decode (tests/fuzz/fuzzdecode.h).
 *
 * SPDX-License-Identifier: BSD-2-Clause
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <msgpack.h>

#include "codec.h"
#include "codec_int.h"
#include "fuzzdecode.h"
#include "mpread.h"
#include "status.h"

/* ---- mpr_skip against msgpack-c ------------------------------------------------ */

static double
be_float(const uint8_t *p, size_t n)
{
	uint64_t u = 0;

	for (size_t i = 0; i < n; i++)
		u = u << 8 | p[i];
	if (n == 4) {
		uint32_t u32 = (uint32_t)u;
		float f;

		memcpy(&f, &u32, sizeof f);
		return (double)f;
	} else {
		double d;

		memcpy(&d, &u, sizeof d);
		return d;
	}
}

/* Walk one object with the mpr reader and compare it with msgpack-c's tree. */
static bool
same_object(struct mpr *r, const msgpack_object *o)
{
	const uint8_t *raw, *b;
	const char *s;
	size_t raw_len;
	uint64_t u;
	int64_t i;
	uint32_t n;
	int8_t et;
	bool v;
	double d;

	switch (mpr_peek(r)) {
	case MPR_NIL:
		return mpr_nil(r) == 0 && o->type == MSGPACK_OBJECT_NIL;
	case MPR_BOOL:
		return mpr_bool(r, &v) == 0 && o->type == MSGPACK_OBJECT_BOOLEAN && o->via.boolean == v;
	case MPR_UINT:
		return mpr_uint(r, &u) == 0 && o->type == MSGPACK_OBJECT_POSITIVE_INTEGER &&
		    o->via.u64 == u;
	case MPR_INT:
		if (mpr_int(r, &i) != 0)
			return false;
		if (i >= 0)
			return o->type == MSGPACK_OBJECT_POSITIVE_INTEGER && o->via.u64 == (uint64_t)i;
		return o->type == MSGPACK_OBJECT_NEGATIVE_INTEGER && o->via.i64 == i;
	case MPR_FLOAT:
		if (mpr_raw(r, &raw, &raw_len) != 0 || (raw_len != 5 && raw_len != 9))
			return false;
		if (o->type != (raw_len == 5 ? MSGPACK_OBJECT_FLOAT32 : MSGPACK_OBJECT_FLOAT64))
			return false;
		d = be_float(raw + 1, raw_len - 1);
		return memcmp(&d, &o->via.f64, sizeof d) == 0;
	case MPR_STR:
		return mpr_str(r, &s, &n) == 0 && o->type == MSGPACK_OBJECT_STR &&
		    same_str(s, n, o->via.str.ptr, o->via.str.size);
	case MPR_BIN:
		return mpr_bin(r, &b, &n) == 0 && o->type == MSGPACK_OBJECT_BIN &&
		    same_str((const char *)b, n, o->via.bin.ptr, o->via.bin.size);
	case MPR_EXT:
		return mpr_ext(r, &et, &b, &n) == 0 && o->type == MSGPACK_OBJECT_EXT &&
		    o->via.ext.type == et && same_str((const char *)b, n, o->via.ext.ptr, o->via.ext.size);
	case MPR_ARRAY:
		if (mpr_array(r, &n) != 0 || o->type != MSGPACK_OBJECT_ARRAY || o->via.array.size != n)
			return false;
		for (uint32_t k = 0; k < n; k++)
			if (!same_object(r, &o->via.array.ptr[k]))
				return false;
		return true;
	case MPR_MAP:
		if (mpr_map(r, &n) != 0 || o->type != MSGPACK_OBJECT_MAP || o->via.map.size != n)
			return false;
		for (uint32_t k = 0; k < n; k++)
			if (!same_object(r, &o->via.map.ptr[k].key) || !same_object(r, &o->via.map.ptr[k].val))
				return false;
		return true;
	default:
		return false;
	}
}

void
diff_skip(const uint8_t *body, size_t blen)
{
	struct mpr r, w;
	msgpack_unpacked u;
	msgpack_unpack_return ur;
	size_t n, off = 0;
	int rc;

	mpr_init(&r, body, blen);
	rc = mpr_skip(&r);
	CHECK(rc == 0 || rc == MPR_ETRUNC || rc == MPR_EINVALID);
	if (rc != 0) {
		CHECK(r.p == body);	/* unchanged on error */
		return;
	}
	n = (size_t)(r.p - body);
	CHECK(n >= 1 && n <= blen);

	/* mpr accepted n bytes: every count in them is bounded by n, so msgpack-c is safe. */
	msgpack_unpacked_init(&u);
	ur = msgpack_unpack_next(&u, (const char *)body, blen, &off);
	CHECK(ur == MSGPACK_UNPACK_SUCCESS);
	CHECK(off == n);
	mpr_init(&w, body, blen);
	CHECK(same_object(&w, &u.data));
	CHECK((size_t)(w.p - body) == n);
	msgpack_unpacked_destroy(&u);

	/* Every proper prefix is truncated, for both readers (checked at a few cut points). */
	size_t cuts[3] = { n - 1, n / 2, 1 };

	for (int k = 0; k < 3; k++) {
		size_t c = cuts[k];

		if (c == 0 || c >= n)
			continue;
		mpr_init(&w, body, c);
		CHECK(mpr_skip(&w) == MPR_ETRUNC && w.p == body);
		off = 0;
		msgpack_unpacked_init(&u);
		ur = msgpack_unpack_next(&u, (const char *)body, c, &off);
		CHECK(ur == MSGPACK_UNPACK_CONTINUE);
		msgpack_unpacked_destroy(&u);
	}
}
