/*
 * auth.h: who a client is and what it may do: the token table (SHA-256
 * digests of tokens, from `token` keys and `tokens_file`) and the rules
 * (`allow = NAME PATTERN RIGHT[,RIGHT...]`), built from a config.
 *
 * An auth table is immutable once built; SIGHUP builds a new one and the
 * server swaps it in, so connections resolve their rights by identity name
 * against whatever table is current (PROTOCOL.md §13).
 *
 * Ownership: auth_new returns a table the caller frees with auth_free.
 * Thread-safety: none needed (immutable), but the server uses it from the
 * loop thread only. Errors: auth_new returns -1 with a malloc'd *cause
 * naming the file, line and key; it logs a warning for each rule whose
 * meaning changed when `all` stopped granting admin.
 *
 * SPDX-License-Identifier: BSD-2-Clause
 */
#ifndef CHAND_AUTH_H
#define CHAND_AUTH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"

enum auth_right {
	RIGHT_SEND = 1 << 0,
	RIGHT_RECV = 1 << 1,
	RIGHT_CLOSE = 1 << 2,
	RIGHT_MAKE = 1 << 3,
	RIGHT_DELETE = 1 << 4,
	RIGHT_ADMIN = 1 << 5,		/* server-wide: only a rule on the pattern "*" grants it */
};
/* "all": every channel right on the rule's pattern; never admin (PROTOCOL.md §13) */
#define RIGHT_ALL (RIGHT_SEND | RIGHT_RECV | RIGHT_CLOSE | RIGHT_MAKE | RIGHT_DELETE)
#define AUTH_NAME_MAX 64		/* identity names: 1..63 bytes */
#define AUTH_DIGEST_LEN 32		/* SHA-256 */

struct auth;

int auth_new(struct auth **out, const struct config *cfg, char **cause);
void auth_free(struct auth *a);

/* Is authentication on? Off: every client may do everything (no identity). */
bool auth_enabled(const struct auth *a);

/*
 * The identity a token belongs to: its name into name (cap >= AUTH_NAME_MAX)
 * and the token's digest into digest. Every stored digest is compared, in
 * constant time (CRYPTO_memcmp), whatever matches. false: unknown token.
 */
bool auth_token(const struct auth *a, const char *token, size_t len, char *name,
    uint8_t digest[AUTH_DIGEST_LEN]);
/* Does digest still belong to identity name (after a reload)? */
bool auth_digest_names(const struct auth *a, const uint8_t digest[AUTH_DIGEST_LEN],
    const char *name);

/* The channel rights of identity ident over the channel name (len bytes): RIGHT_* bits, never RIGHT_ADMIN. */
unsigned auth_rights(const struct auth *a, const char *ident, const char *chan, size_t len);
/* Does ident hold admin (granted by a rule `allow = NAME admin` or on the pattern "*")? */
bool auth_admin(const struct auth *a, const char *ident);
/* "send", "recv", ... for one right bit. */
const char *auth_right_name(unsigned right);

#endif
