/*
 * stage.h: the stages a fan-out job can apply: the built-ins (identity,
 * sha256, isprime) and the modules named by stage_module in the config,
 * loaded once at start-up through the ABI of chand_stage.h.
 *
 * Ownership: the server owns the registry; stages live until stages_free.
 * Thread-safety: stages_new/stages_free/stages_find on the loop thread;
 * stage_apply on any thread, concurrently (stages are reentrant).
 *
 * SPDX-License-Identifier: BSD-2-Clause
 */
#ifndef CHAND_STAGE_REGISTRY_H
#define CHAND_STAGE_REGISTRY_H

#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "value.h"

struct stages;
struct stage;

/*
 * The built-ins plus every module of the list. A module that cannot be
 * loaded, lacks the chand_stage_v1 symbol, or reuses a stage name is an
 * error: -1 with a malloc'd *cause naming the file, line and key.
 */
int stages_new(struct stages **out, const struct config_list *modules, char **cause);
void stages_free(struct stages *s);
/* The stage with this name, or NULL. */
const struct stage *stages_find(const struct stages *s, const char *name, size_t len);
const char *stage_name(const struct stage *st);

/*
 * Apply st to one encoded value (raw, as stored in a channel). A bin runs
 * the stage; an error value (ext 2) passes through untouched; anything else
 * becomes an error value. *out is the encoded result (bin or error value),
 * or NULL when the stage produced nothing (CHAND_STAGE_SKIP). Results over
 * max_value become error values. Returns 0, or -1 when out of memory.
 */
int stage_apply(const struct stage *st, const uint8_t *raw, size_t raw_len, size_t max_value,
    struct value **out);

/* An encoded error value (ext 2) with msg (cut at 256 bytes). Returns 0, or -1 when out of memory. */
int stage_error_value(const char *msg, struct value **out);

#endif
