/*
 * rand.h: a small, fast PRNG (xoshiro256**) for select's random poll order,
 * and rand_secure for secrets.
 *
 * The PRNG is not for secrets. Each owner keeps its own state, so no
 * locking: a state must be used by one thread at a time. rand_secure keeps
 * no state and is thread-safe.
 *
 * SPDX-License-Identifier: BSD-2-Clause
 */
#ifndef CHAND_RAND_H
#define CHAND_RAND_H

#include <stddef.h>
#include <stdint.h>

struct rand_state {
	uint64_t s[4];
};

/* Seed from getrandom(2); falls back to time and pid if that fails. */
void rand_seed(struct rand_state *r);
/* Seed deterministically, for reproducible tests. */
void rand_seed_with(struct rand_state *r, uint64_t seed);
uint64_t rand_next(struct rand_state *r);
/* Uniform in [0, n), n > 0, without modulo bias. */
uint32_t rand_below(struct rand_state *r, uint32_t n);
/*
 * n bytes from the kernel's CSPRNG (getrandom(2); blocks only until it is
 * first seeded at boot). 0, or -1 with errno set: never a weaker fallback.
 */
int rand_secure(void *buf, size_t n);

#endif
