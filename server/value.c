/* SPDX-License-Identifier: BSD-2-Clause */
#include <stdlib.h>
#include <string.h>

#include "value.h"

/* One allocation: the length, then the bytes. */
struct value {
	size_t len;
	uint32_t deliveries;	/* delivery.c's count; the engine never reads it */
	uint32_t serial;	/* in the padding before data: no bigger */
	uint8_t data[];
};

/* value_serial's source; values are made on pool workers too */
static uint32_t next_serial;

struct value *
value_new(const void *encoded, size_t len)
{
	struct value *v;

	if (len > SIZE_MAX - sizeof *v)
		return NULL;
	v = malloc(sizeof *v + len);
	if (v == NULL)
		return NULL;
	v->len = len;
	v->deliveries = 0;
	v->serial = __atomic_add_fetch(&next_serial, 1, __ATOMIC_RELAXED);
	if (len > 0)
		memcpy(v->data, encoded, len);
	return v;
}

void
value_free(struct value *v)
{
	free(v);
}

const uint8_t *
value_data(const struct value *v)
{
	return v->data;
}

size_t
value_len(const struct value *v)
{
	return v->len;
}

uint32_t
value_serial(const struct value *v)
{
	return v->serial;
}

uint32_t
value_deliveries(const struct value *v)
{
	return v->deliveries;
}

void
value_set_deliveries(struct value *v, uint32_t n)
{
	v->deliveries = n;
}

size_t
value_size(const struct value *v)
{
	size_t hdr;

	if (v->len == 0)
		return 0;
	switch (v->data[0]) {
	case 0xc4: hdr = 2; break;		/* bin 8, 16, 32: the length */
	case 0xc5: hdr = 3; break;
	case 0xc6: hdr = 5; break;
	case 0xd4: case 0xd5: case 0xd6: case 0xd7: case 0xd8:
		hdr = 2; break;			/* fixext: the type */
	case 0xc7: hdr = 3; break;		/* ext 8, 16, 32: the length, the type */
	case 0xc8: hdr = 4; break;
	case 0xc9: hdr = 6; break;
	default: return v->len;
	}
	return v->len >= hdr ? v->len - hdr : v->len;
}
