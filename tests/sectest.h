/*
 * sectest.h: what the parts of test_security share (test_security.c,
 * test_security_tls.c): alice's token line and the one-call helpers.
 *
 * SPDX-License-Identifier: BSD-2-Clause
 */
#ifndef CHAND_SECTEST_H
#define CHAND_SECTEST_H

#include <stddef.h>

#include "chanclient.h"

/* "alice:SHA256HEX" of the token "alice-secret", once tokens_init has run. */
extern char tok_alice[100];

/* Compute the token lines of alice, bob and admin: 0, or -1 without the openssl CLI. */
int tokens_init(void);
/* The status of one operation ("send", "recv", "close", "delete") on name through c. */
int op_rc(chan_conn_t *c, const char *what, const char *name);
/* The status of MAKE name (NULL: anonymous) with cap through c. */
int make_rc(chan_conn_t *c, const char *name, size_t cap);

/* The TLS suite, registered after the others. */
void register_security_tls(void);

#endif
