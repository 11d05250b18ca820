/* SPDX-License-Identifier: BSD-2-Clause */
#include <string.h>

#include "mpread.h"

/*
 * Decode the header of the object at r->p: its type, the header's size,
 * and either its scalar value (ints, bool), its element count (containers)
 * or its payload size (str, bin, ext, float). Checks only the header bytes.
 */
struct hdr {
	enum mpr_type type;
	size_t hlen;		/* header bytes */
	uint64_t u;		/* uint value, count, or payload size */
	int64_t i;		/* MPR_INT value */
	int8_t ext;		/* ext type */
};

static int
read_hdr(const struct mpr *r, struct hdr *h)
{
	size_t left = mpr_left(r);
	uint8_t b;

	if (left == 0)
		return MPR_ETRUNC;
	b = r->p[0];
	memset(h, 0, sizeof *h);
	h->hlen = 1;
	if (b <= 0x7f) {
		h->type = MPR_UINT;
		h->u = b;
		return 0;
	}
	if (b >= 0xe0) {
		h->type = MPR_INT;
		h->i = (int8_t)b;
		return 0;
	}
	if ((b & 0xf0) == 0x80 || (b & 0xf0) == 0x90) {
		h->type = (b & 0xf0) == 0x80 ? MPR_MAP : MPR_ARRAY;
		h->u = b & 0x0f;
		return 0;
	}
	if ((b & 0xe0) == 0xa0) {
		h->type = MPR_STR;
		h->u = b & 0x1f;
		return 0;
	}

	static const struct {
		enum mpr_type type;
		uint8_t len;	/* bytes after the first */
	} tab[0x20] = {
		[0x00] = { MPR_NIL, 0 },	/* c0 */
		[0x01] = { MPR_BAD, 0 },	/* c1 */
		[0x02] = { MPR_BOOL, 0 }, [0x03] = { MPR_BOOL, 0 },
		[0x04] = { MPR_BIN, 1 }, [0x05] = { MPR_BIN, 2 }, [0x06] = { MPR_BIN, 4 },
		[0x07] = { MPR_EXT, 2 }, [0x08] = { MPR_EXT, 3 }, [0x09] = { MPR_EXT, 5 },
		[0x0a] = { MPR_FLOAT, 0 }, [0x0b] = { MPR_FLOAT, 0 },
		[0x0c] = { MPR_UINT, 1 }, [0x0d] = { MPR_UINT, 2 },
		[0x0e] = { MPR_UINT, 4 }, [0x0f] = { MPR_UINT, 8 },
		[0x10] = { MPR_INT, 1 }, [0x11] = { MPR_INT, 2 },
		[0x12] = { MPR_INT, 4 }, [0x13] = { MPR_INT, 8 },
		[0x14] = { MPR_EXT, 1 }, [0x15] = { MPR_EXT, 1 }, [0x16] = { MPR_EXT, 1 },
		[0x17] = { MPR_EXT, 1 }, [0x18] = { MPR_EXT, 1 },
		[0x19] = { MPR_STR, 1 }, [0x1a] = { MPR_STR, 2 }, [0x1b] = { MPR_STR, 4 },
		[0x1c] = { MPR_ARRAY, 2 }, [0x1d] = { MPR_ARRAY, 4 },
		[0x1e] = { MPR_MAP, 2 }, [0x1f] = { MPR_MAP, 4 },
	};
	uint8_t k = b - 0xc0;

	h->type = tab[k].type;
	h->hlen = 1 + tab[k].len;
	if (h->type == MPR_BAD)
		return MPR_EINVALID;
	if (left < h->hlen)
		return MPR_ETRUNC;
	const uint8_t *p = r->p + 1;

	switch (b) {
	case 0xc2: case 0xc3:
		h->u = b == 0xc3;
		return 0;
	case 0xca: case 0xcb:
		h->u = b == 0xca ? 4 : 8;	/* float payload follows */
		return 0;
	case 0xd0: h->i = (int8_t)p[0]; return 0;
	case 0xd1: h->i = (int16_t)mpr_be(p, 2); return 0;
	case 0xd2: h->i = (int32_t)mpr_be(p, 4); return 0;
	case 0xd3: h->i = (int64_t)mpr_be(p, 8); return 0;
	case 0xd4: case 0xd5: case 0xd6: case 0xd7: case 0xd8:
		h->u = 1u << (b - 0xd4);	/* fixext 1, 2, 4, 8, 16 */
		h->ext = (int8_t)p[0];
		return 0;
	case 0xc7: case 0xc8: case 0xc9:
		h->u = mpr_be(p, tab[k].len - 1);
		h->ext = (int8_t)p[tab[k].len - 1];
		return 0;
	default:
		h->u = mpr_be(p, tab[k].len);
		return 0;
	}
}

/* Bytes of payload that follow the header (str, bin, ext, float). */
static bool
has_payload(enum mpr_type t)
{
	return t == MPR_STR || t == MPR_BIN || t == MPR_EXT || t == MPR_FLOAT;
}

static int
read_typed(struct mpr *r, enum mpr_type want, struct hdr *h)
{
	int rc = read_hdr(r, h);

	if (rc < 0)
		return rc;
	if (h->type != want)
		return MPR_ETYPE;
	if (has_payload(want) && h->u > mpr_left(r) - h->hlen)
		return MPR_ETRUNC;
	return 0;
}

enum mpr_type
mpr_peek(const struct mpr *r)
{
	struct hdr h;
	int rc = read_hdr(r, &h);

	if (rc == MPR_EINVALID)
		return MPR_BAD;
	if (mpr_left(r) == 0)
		return MPR_NONE;
	return h.type;
}

static int
read_container(struct mpr *r, enum mpr_type want, uint32_t *n, unsigned per)
{
	struct hdr h;
	int rc = read_typed(r, want, &h);

	if (rc < 0)
		return rc;
	/* Every element takes at least one byte: reject absurd counts now. */
	if (h.u * per > mpr_left(r) - h.hlen)
		return MPR_ETRUNC;
	*n = (uint32_t)h.u;
	r->p += h.hlen;
	return 0;
}

int
mpr_array(struct mpr *r, uint32_t *n)
{
	return read_container(r, MPR_ARRAY, n, 1);
}

int
mpr_map(struct mpr *r, uint32_t *n)
{
	return read_container(r, MPR_MAP, n, 2);
}

int
mpr_nil(struct mpr *r)
{
	struct hdr h;
	int rc = read_typed(r, MPR_NIL, &h);

	if (rc == 0)
		r->p += h.hlen;
	return rc;
}

int
mpr_bool(struct mpr *r, bool *v)
{
	struct hdr h;
	int rc = read_typed(r, MPR_BOOL, &h);

	if (rc == 0) {
		*v = h.u != 0;
		r->p += h.hlen;
	}
	return rc;
}

int
mpr_uint(struct mpr *r, uint64_t *v)
{
	struct hdr h;
	int rc = read_hdr(r, &h);

	if (rc < 0)
		return rc;
	if (h.type == MPR_INT) {
		if (h.i < 0)
			return MPR_ERANGE;
		h.u = (uint64_t)h.i;
	} else if (h.type != MPR_UINT) {
		return MPR_ETYPE;
	}
	*v = h.u;
	r->p += h.hlen;
	return 0;
}

int
mpr_int(struct mpr *r, int64_t *v)
{
	struct hdr h;
	int rc = read_hdr(r, &h);

	if (rc < 0)
		return rc;
	if (h.type == MPR_UINT) {
		if (h.u > INT64_MAX)
			return MPR_ERANGE;
		h.i = (int64_t)h.u;
	} else if (h.type != MPR_INT) {
		return MPR_ETYPE;
	}
	*v = h.i;
	r->p += h.hlen;
	return 0;
}

static int
read_bytes(struct mpr *r, enum mpr_type want, const uint8_t **p, uint32_t *len, int8_t *ext)
{
	struct hdr h;
	int rc = read_typed(r, want, &h);

	if (rc < 0)
		return rc;
	*p = r->p + h.hlen;
	*len = (uint32_t)h.u;
	if (ext)
		*ext = h.ext;
	r->p += h.hlen + h.u;
	return 0;
}

int
mpr_str(struct mpr *r, const char **s, uint32_t *len)
{
	return read_bytes(r, MPR_STR, (const uint8_t **)s, len, NULL);
}

int
mpr_bin(struct mpr *r, const uint8_t **b, uint32_t *len)
{
	return read_bytes(r, MPR_BIN, b, len, NULL);
}

int
mpr_ext(struct mpr *r, int8_t *type, const uint8_t **data, uint32_t *len)
{
	return read_bytes(r, MPR_EXT, data, len, type);
}

static int
skip_depth(struct mpr *r, int depth)
{
	struct hdr h;
	uint32_t n;
	int rc;

	if (depth > MPR_MAX_DEPTH)
		return MPR_EINVALID;
	rc = read_hdr(r, &h);
	if (rc < 0)
		return rc;
	if (h.type == MPR_ARRAY || h.type == MPR_MAP) {
		const uint8_t *save = r->p;

		rc = read_container(r, h.type, &n, h.type == MPR_MAP ? 2 : 1);
		if (rc < 0)
			return rc;
		for (uint64_t i = 0; i < (uint64_t)n * (h.type == MPR_MAP ? 2 : 1); i++) {
			rc = skip_depth(r, depth + 1);
			if (rc < 0) {
				r->p = save;
				return rc;
			}
		}
		return 0;
	}
	if (has_payload(h.type) && h.u > mpr_left(r) - h.hlen)
		return MPR_ETRUNC;
	r->p += h.hlen + (has_payload(h.type) ? h.u : 0);
	return 0;
}

int
mpr_skip(struct mpr *r)
{
	return skip_depth(r, 1);
}

int
mpr_raw(struct mpr *r, const uint8_t **start, size_t *len)
{
	const uint8_t *s = r->p;
	int rc = mpr_skip(r);

	if (rc == 0) {
		*start = s;
		*len = (size_t)(r->p - s);
	}
	return rc;
}

const char *
mpr_strerror(int err)
{
	switch (err) {
	case 0: return "ok";
	case MPR_ETRUNC: return "object runs past the end of the frame";
	case MPR_ETYPE: return "wrong type";
	case MPR_ERANGE: return "integer out of range";
	case MPR_EINVALID: return "invalid msgpack";
	default: return "unknown error";
	}
}
