/*
 * codec_int.h: what the codec's files (codec.c, codec_request.c,
 * codec_reply.c) share and nobody else uses.
 */
#ifndef CHAND_CODEC_INT_H
#define CHAND_CODEC_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "codec.h"

/* Arguments each op takes after [op, id, wait] (0 for an op that has none or is unknown). */
extern const uint8_t proto_op_arity[OP_MAX + 1];

/* Well-formed UTF-8 (no overlongs, surrogates or code points past U+10FFFF). */
bool proto_utf8_valid(const uint8_t *s, size_t len);

#endif
