/*
 * codec_value.c: what the codec checks of names and values (PROTOCOL.md
 * §6, §7): strict UTF-8, channel names, and a value's wire form parsed
 * (a bin, a channel reference, an error value).
 *
 * SPDX-License-Identifier: BSD-2-Clause
 */
#include <string.h>

#include "codec.h"
#include "codec_int.h"
#include "mpread.h"

/* Strict UTF-8 (no overlongs, no surrogates, nothing past U+10FFFF). */
bool
proto_utf8_valid(const uint8_t *s, size_t len)
{
	size_t i = 0;

	while (i < len) {
		uint8_t c = s[i];
		size_t n;
		uint32_t cp, min;

		if (c < 0x80) {
			i++;
			continue;
		}
		if ((c & 0xe0) == 0xc0) {
			n = 1, cp = c & 0x1f, min = 0x80;
		} else if ((c & 0xf0) == 0xe0) {
			n = 2, cp = c & 0x0f, min = 0x800;
		} else if ((c & 0xf8) == 0xf0) {
			n = 3, cp = c & 0x07, min = 0x10000;
		} else {
			return false;
		}
		if (len - i - 1 < n)
			return false;
		for (size_t k = 1; k <= n; k++) {
			if ((s[i + k] & 0xc0) != 0x80)
				return false;
			cp = (cp << 6) | (s[i + k] & 0x3f);
		}
		if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
			return false;
		i += n + 1;
	}
	return true;
}

bool
proto_name_valid(const char *name, size_t len, const char **why)
{
	const uint8_t *s = (const uint8_t *)name;

	if (len == 0) {
		*why = "channel name is empty";
		return false;
	}
	if (len > PROTO_NAME_MAX) {
		*why = "channel name is longer than 255 bytes";
		return false;
	}
	/* the usual name is printable ASCII: one pass settles it */
	size_t ascii = 0;

	while (ascii < len && s[ascii] >= 0x20 && s[ascii] < 0x7f)
		ascii++;
	if (ascii == len)
		return true;
	for (size_t i = 0; i < len; i++) {
		if (s[i] < 0x20 || s[i] == 0x7f) {
			*why = "channel name contains a control character";
			return false;
		}
	}
	if (!proto_utf8_valid(s, len)) {
		*why = "channel name is not valid UTF-8";
		return false;
	}
	return true;
}

int
proto_value_parse(const uint8_t *raw, size_t raw_len, struct proto_value *v, const char **why)
{
	struct mpr r;
	const uint8_t *data;
	uint32_t len;
	int8_t type;

	mpr_init(&r, raw, raw_len);
	memset(v, 0, sizeof *v);
	v->raw = raw;
	v->raw_len = raw_len;
	switch (mpr_peek(&r)) {
	case MPR_BIN:
		if (mpr_bin(&r, &data, &len) < 0)
			goto bad;
		v->kind = VALUE_BIN;
		break;
	case MPR_EXT:
		if (mpr_ext(&r, &type, &data, &len) < 0)
			goto bad;
		if (type == PROTO_EXT_CHANREF) {
			if (!proto_name_valid((const char *)data, len, why))
				return STATUS_BAD_REQUEST;
			v->kind = VALUE_CHANREF;
		} else if (type == PROTO_EXT_ERROR) {
			v->kind = VALUE_ERROR;
		} else {
			*why = "value is an ext of an unknown type";
			return STATUS_BAD_REQUEST;
		}
		break;
	default:
		*why = "value must be a bin or a channel reference";
		return STATUS_BAD_REQUEST;
	}
	if (r.p != r.end) {
		*why = "value has trailing bytes";
		return STATUS_BAD_REQUEST;
	}
	v->data = data;
	v->len = len;
	return STATUS_OK;
bad:
	*why = "value is truncated";
	return STATUS_BAD_REQUEST;
}
