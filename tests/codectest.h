/*
 * codectest.h: what the parts of test_codec share (test_codec.c,
 * test_codec_bad_input.c, test_codec_links.c): the suite's limits, output
 * buffer and select cases, the decoders of the one frame in that buffer,
 * and the packer for hand-made requests. Each part adds its tests to the
 * one "codec" suite.
 *
 * SPDX-License-Identifier: BSD-2-Clause
 */
#ifndef CHAND_CODECTEST_H
#define CHAND_CODECTEST_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "codec.h"
#include "testutil.h"

#define NAME_IS(p, l, s) (l == strlen(s) && memcmp(p, s, l) == 0)

/* ---- test_codec.c ---- */

extern const struct proto_limits limits;	/* max_value 1024, max_select_cases 8 */
extern struct proto_out out;
extern struct proto_case cases[8];

/* The body of the single frame in out. */
const uint8_t *only_body(size_t *len);
/* Decode that frame as a request, or as a reply to op. */
int decode_req(struct proto_request *q, const char **why);
int decode_rep(uint64_t op, struct proto_reply *r);

/* ---- test_codec_bad_input.c: hand-made requests, packed with pk ---- */

extern msgpack_packer pk;

/* Make and free the packer's buffer: before the first test, after the last. */
void pk_init(void);
void pk_free(void);
int pk_decode(struct proto_request *q);
/* Start a request [op, id, nil, ...] of nargs arguments. */
void pk_head(uint64_t op, uint64_t id, size_t nargs);
void pk_str(const char *s, size_t len);

/* Each part's tests, added to the codec suite s in the order they run. */
void register_codec_bad_input(CU_pSuite s);
void register_codec_links(CU_pSuite s);
void register_codec_ack(CU_pSuite s);

#endif
