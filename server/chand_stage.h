/*
 * chand_stage.h: the C ABI of chand's stage modules, version 1.
 *
 * A fan-out job (PROTOCOL.md §12, FAN_OUT) applies a named *stage* to each
 * value it reads. Besides the built-in stages, chand loads shared objects
 * named in its configuration file at start-up:
 *
 *     stage_module = NAME:/path/to/module.so     (repeatable)
 *
 * A module exports one function with C linkage under the name
 * CHAND_STAGE_SYMBOL_V1 ("chand_stage_v1"), of type chand_stage_v1_fn. A
 * later, incompatible ABI gets a new symbol (chand_stage_v2); chand looks
 * for the versions it knows, so a module may export several.
 *
 * Call contract (version 1):
 * - in, in_len: the payload of one value (the bytes of a msgpack bin).
 *   Read-only; valid only during the call.
 * - out->data: a buffer of out->cap bytes owned by chand. The stage writes
 *   its result there and sets out->len. Valid only during the call.
 * - Return CHAND_STAGE_OK: the result (out->len bytes) is sent on as a bin.
 *   CHAND_STAGE_SKIP: no result for this input (a filter, such as the
 *   built-in isprime, drops it).
 *   CHAND_STAGE_ERROR: out->data holds a UTF-8 message of out->len bytes;
 *   the receiver gets it as an error value (PROTOCOL.md §7, ext type 2)
 *   and the job goes on with the next value.
 *   CHAND_STAGE_TOOBIG: out->cap is too small; set out->len to the size
 *   needed and chand calls again with at least that much room (up to the
 *   server's max_value; beyond it the receiver gets an error value).
 *   Any other return is treated as an error.
 * - Thread-safety: chand calls the function from several worker threads at
 *   once; it must be reentrant. It must not block for long, keep pointers to
 *   in or out after returning, or call exit.
 *
 * SPDX-License-Identifier: BSD-2-Clause
 */
#ifndef CHAND_STAGE_H
#define CHAND_STAGE_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define CHAND_STAGE_ABI_VERSION 1
#define CHAND_STAGE_SYMBOL_V1 "chand_stage_v1"

enum chand_stage_status {
	CHAND_STAGE_OK = 0,
	CHAND_STAGE_SKIP = 1,
	CHAND_STAGE_ERROR = 2,
	CHAND_STAGE_TOOBIG = 3,
};

struct chand_stage_out {
	uint8_t *data;		/* chand's buffer */
	size_t cap;		/* its size */
	size_t len;		/* set by the stage */
};

typedef int chand_stage_v1_fn(const uint8_t *in, size_t in_len, struct chand_stage_out *out);

/* What a module defines (declared here so the compiler checks the type). */
chand_stage_v1_fn chand_stage_v1;

#ifdef __cplusplus
}
#endif

#endif
