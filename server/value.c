#include <stdlib.h>
#include <string.h>

#include "value.h"

/* One allocation: the length, then the bytes. */
struct value {
	size_t len;
	uint8_t data[];
};

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
