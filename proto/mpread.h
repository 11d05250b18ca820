/*
 * mpread.h: a bounded, zero-copy msgpack reader over one frame.
 *
 * Why not msgpack-c's unpacker for decoding: it allocates an array's storage
 * from the header's element count before any element has arrived (a 5-byte
 * header asks for gigabytes), and allocates a zone per message. Frames here
 * are already length-checked, so a cursor that checks every count against
 * the bytes left and borrows str/bin slices from the frame is both bounded
 * and allocation-free. Encoding uses msgpack-c (codec.c).
 *
 * Every function reads one object at the cursor and advances past it only on
 * success; on error the cursor is unchanged. Errors are negative MPR_E*.
 * Slices point into the frame: valid as long as the frame is.
 * Thread-safety: a reader is one thread's.
 *
 * SPDX-License-Identifier: BSD-2-Clause
 */
#ifndef CHAND_MPREAD_H
#define CHAND_MPREAD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct mpr {
	const uint8_t *p;
	const uint8_t *end;
};

enum mpr_type {
	MPR_NIL, MPR_BOOL, MPR_UINT, MPR_INT, MPR_FLOAT, MPR_STR, MPR_BIN,
	MPR_ARRAY, MPR_MAP, MPR_EXT, MPR_NONE /* end of input */, MPR_BAD /* 0xc1 */
};

#define MPR_ETRUNC (-1)		/* the object runs past the end of the input */
#define MPR_ETYPE (-2)		/* the object has another type */
#define MPR_ERANGE (-3)		/* the integer does not fit */
#define MPR_EINVALID (-4)	/* not msgpack (0xc1) or nested too deep */

#define MPR_MAX_DEPTH 32

/* The unsigned big-endian integer in p[0..n), n <= 8: msgpack's lengths and values. */
static inline uint64_t
mpr_be(const uint8_t *p, size_t n)
{
	uint64_t v = 0;

	for (size_t i = 0; i < n; i++)
		v = (v << 8) | p[i];
	return v;
}

static inline void
mpr_init(struct mpr *r, const void *p, size_t len)
{
	r->p = p;
	r->end = (const uint8_t *)p + len;
}

static inline size_t
mpr_left(const struct mpr *r)
{
	return (size_t)(r->end - r->p);
}

/* The type of the next object, without consuming it. */
enum mpr_type mpr_peek(const struct mpr *r);

/* Containers: *n is checked against the bytes left (each element needs one). */
int mpr_array(struct mpr *r, uint32_t *n);
int mpr_map(struct mpr *r, uint32_t *n);

int mpr_nil(struct mpr *r);
int mpr_bool(struct mpr *r, bool *v);
/* Any integer encoding whose value is >= 0 and fits. */
int mpr_uint(struct mpr *r, uint64_t *v);
/* Any integer encoding whose value fits in int64_t. */
int mpr_int(struct mpr *r, int64_t *v);
int mpr_str(struct mpr *r, const char **s, uint32_t *len);
int mpr_bin(struct mpr *r, const uint8_t **b, uint32_t *len);
int mpr_ext(struct mpr *r, int8_t *type, const uint8_t **data, uint32_t *len);

/* Skip one whole object (containers included, nesting up to MPR_MAX_DEPTH). */
int mpr_skip(struct mpr *r);
/* Skip one object and return its exact encoding. */
int mpr_raw(struct mpr *r, const uint8_t **start, size_t *len);

/* A human-readable reason for an MPR_E* code. */
const char *mpr_strerror(int err);

#endif
