/*
 * teststage.c: a stage module for tests/test_links (never installed).
 *
 * Echoes its input after sleeping a random 0-2 ms, so that concurrent
 * workers finish out of order (the ordered fan-out test); an input that
 * starts with "err" is refused with an error (the stage error test).
 *
 * SPDX-License-Identifier: BSD-2-Clause
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "chand_stage.h"

static __thread unsigned seed;

int
chand_stage_v1(const uint8_t *in, size_t in_len, struct chand_stage_out *out)
{
	static const char msg[] = "teststage: refused";
	struct timespec ts = { 0, 0 };

	if (in_len >= 3 && memcmp(in, "err", 3) == 0) {
		memcpy(out->data, msg, sizeof msg - 1);
		out->len = sizeof msg - 1;
		return CHAND_STAGE_ERROR;
	}
	if (seed == 0)
		seed = (unsigned)(uintptr_t)&seed ^ (unsigned)time(NULL);
	ts.tv_nsec = (long)(rand_r(&seed) % 2000) * 1000;
	nanosleep(&ts, NULL);
	if (in_len > out->cap) {
		out->len = in_len;
		return CHAND_STAGE_TOOBIG;
	}
	memcpy(out->data, in, in_len);
	out->len = in_len;
	return CHAND_STAGE_OK;
}
