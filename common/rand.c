/* SPDX-License-Identifier: BSD-2-Clause */
#include <sys/random.h>
#include <errno.h>
#include <unistd.h>

#include "clock.h"
#include "rand.h"

static uint64_t
splitmix64(uint64_t *x)
{
	uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

void
rand_seed_with(struct rand_state *r, uint64_t seed)
{
	for (int i = 0; i < 4; i++)
		r->s[i] = splitmix64(&seed);
}

void
rand_seed(struct rand_state *r)
{
	uint64_t seed;

	if (getrandom(&seed, sizeof seed, GRND_NONBLOCK) != sizeof seed)
		seed = (uint64_t)clock_now_ns() ^ ((uint64_t)getpid() << 32);
	rand_seed_with(r, seed);
}

static inline uint64_t
rotl(uint64_t x, int k)
{
	return (x << k) | (x >> (64 - k));
}

uint64_t
rand_next(struct rand_state *r)
{
	uint64_t *s = r->s;
	uint64_t result = rotl(s[1] * 5, 7) * 9;
	uint64_t t = s[1] << 17;

	s[2] ^= s[0];
	s[3] ^= s[1];
	s[1] ^= s[2];
	s[0] ^= s[3];
	s[2] ^= t;
	s[3] = rotl(s[3], 45);
	return result;
}

uint32_t
rand_below(struct rand_state *r, uint32_t n)
{
	/* Lemire's multiply-shift with rejection: uniform, usually one draw. */
	uint64_t m = (uint64_t)(uint32_t)rand_next(r) * n;
	uint32_t low = (uint32_t)m;

	if (low < n) {
		uint32_t threshold = -n % n;

		while (low < threshold) {
			m = (uint64_t)(uint32_t)rand_next(r) * n;
			low = (uint32_t)m;
		}
	}
	return (uint32_t)(m >> 32);
}

int
rand_secure(void *buf, size_t n)
{
	uint8_t *p = buf;
	ssize_t got;

	while (n > 0) {
		if ((got = getrandom(p, n, 0)) < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		p += got;
		n -= (size_t)got;
	}
	return 0;
}
