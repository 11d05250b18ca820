/*
 * fuzzdecode.h: what the parts of fuzz_decode (the wire decoder's libFuzzer
 * harness, tests/fuzz/README.md) share: the limits, CHECK, the comparison
 * helpers, and each part's check of one frame body.
 *
 * SPDX-License-Identifier: BSD-2-Clause
 */
#ifndef CHAND_FUZZDECODE_H
#define CHAND_FUZZDECODE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "codec.h"

#define MAX_FRAME 65536
#define NCASES 64

/* Every invariant violation traps. */
#define CHECK(cond) do { if (!(cond)) __builtin_trap(); } while (0)

extern const struct proto_limits fuzz_limits;

/* p[0..len) lies inside body[0..blen) (a NULL slice must be empty). */
bool inside(const void *p, size_t len, const uint8_t *body, size_t blen);
bool same_bytes(const void *a, size_t alen, const void *b, size_t blen);
/* Names: NULL (nil) and a str are different things. */
bool same_name(const char *a, uint32_t alen, const char *b, uint32_t blen);
/* Like same_name, but NULL and "" are both "empty" (encoders write "" for NULL). */
bool same_str(const char *a, uint32_t alen, const char *b, uint32_t blen);
bool same_value(const struct proto_value *a, const struct proto_value *b);
bool value_inside(const struct proto_value *v, const uint8_t *body, size_t blen);
/* value.raw parses on its own to the same value. */
void check_value_reparse(const struct proto_value *v);
/* A NUL-terminated copy (malloc'd), or NULL when s holds a NUL. */
char *cstr_dup(const char *s, size_t len);
bool same_close_err(const struct proto_close_err *a, const struct proto_close_err *b);
/* The same value at the same place in the frame. */
bool same_extent(const struct proto_value *a, const struct proto_value *b);
/* The body of the one frame in o, which must hold exactly one frame. */
const uint8_t *only_frame(const struct proto_out *o, size_t *blen);

/* fuzz_decode_skip.c: mpr_skip agrees with msgpack-c on body. */
void diff_skip(const uint8_t *body, size_t blen);
/* fuzz_decode_request.c: body as a request, both decoder paths, and its round trip. */
void check_request(const uint8_t *body, size_t blen);
/* fuzz_decode_reply.c: body as a reply to every op, and its round trip. */
void check_reply(const uint8_t *body, size_t blen);

#endif
