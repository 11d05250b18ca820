/*
 * stage.c: the stage registry, the built-in stages, module loading, and the
 * call wrapper that turns a stage's output into an encoded channel value.
 *
 * SPDX-License-Identifier: BSD-2-Clause
 */
#include <ctype.h>
#include <dlfcn.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "chand_stage.h"
#include "codec.h"
#include "log.h"
#include "stage.h"

#define STAGE_NAME_MAX 64
#define STAGE_HDR 6		/* room for the largest bin/ext header */
#define STAGE_MIN_CAP 256	/* so an error message always fits */

struct stage {
	char name[STAGE_NAME_MAX + 1];
	chand_stage_v1_fn *fn;
	void *dl;		/* NULL for a built-in */
};

struct stages {
	struct stage *v;
	size_t n;
};

/* ---- built-ins ----------------------------------------------------------- */

static int
stage_error(struct chand_stage_out *out, const char *msg)
{
	size_t len = strlen(msg);

	if (len > out->cap)
		len = out->cap;
	memcpy(out->data, msg, len);
	out->len = len;
	return CHAND_STAGE_ERROR;
}

static int
stage_identity(const uint8_t *in, size_t in_len, struct chand_stage_out *out)
{
	if (in_len > out->cap) {
		out->len = in_len;
		return CHAND_STAGE_TOOBIG;
	}
	if (in_len > 0)
		memcpy(out->data, in, in_len);
	out->len = in_len;
	return CHAND_STAGE_OK;
}

/* The 32-byte SHA-256 digest of the input. */
static int
stage_sha256(const uint8_t *in, size_t in_len, struct chand_stage_out *out)
{
	unsigned int len = 0;

	if (out->cap < 32) {
		out->len = 32;
		return CHAND_STAGE_TOOBIG;
	}
	if (EVP_Digest(in, in_len, out->data, &len, EVP_sha256(), NULL) != 1)
		return stage_error(out, "sha256: digest failed");
	out->len = len;
	return CHAND_STAGE_OK;
}

/* 1 to 20 ASCII digits (up to 2^64-1), else exactly 8 bytes big-endian. */
static bool
parse_number(const uint8_t *in, size_t len, uint64_t *v)
{
	size_t digits = 0;

	while (digits < len && isdigit(in[digits]))
		digits++;
	*v = 0;
	if (len > 0 && len <= 20 && digits == len) {
		for (size_t i = 0; i < len; i++) {
			if (*v > (UINT64_MAX - (uint64_t)(in[i] - '0')) / 10)
				return false;
			*v = *v * 10 + (uint64_t)(in[i] - '0');
		}
		return true;
	}
	if (len != 8)
		return false;
	for (size_t i = 0; i < 8; i++)
		*v = *v << 8 | in[i];
	return true;
}

/*
 * The notes' prime finder: trial division. The notes try every divisor
 * from v-1 down to 2; stopping at the square root gives the same answer.
 * Unlike the notes, 0 and 1 are not prime.
 */
static bool
is_prime(uint64_t v)
{
	if (v < 2)
		return false;
	if (v < 4)
		return true;
	if (v % 2 == 0)
		return false;
	for (uint64_t d = 3; d <= v / d; d += 2)
		if (v % d == 0)
			return false;
	return true;
}

/* A filter: a prime goes on unchanged, anything else is dropped. */
static int
stage_isprime(const uint8_t *in, size_t in_len, struct chand_stage_out *out)
{
	uint64_t v;

	if (!parse_number(in, in_len, &v))
		return stage_error(out, "isprime: input must be a decimal number or 8 bytes big-endian");
	if (!is_prime(v))
		return CHAND_STAGE_SKIP;
	return stage_identity(in, in_len, out);
}

static const struct stage builtins[] = {
	{ "identity", stage_identity, NULL },
	{ "sha256", stage_sha256, NULL },
	{ "isprime", stage_isprime, NULL },
};
#define NBUILTINS (sizeof builtins / sizeof builtins[0])

/* ---- registry ------------------------------------------------------------ */

static int
fail(char **cause, const struct config_item *it, const char *what, const char *detail)
{
	if (asprintf(cause, "%s: key 'stage_module': %s%s%s", it->origin, what,
	    detail ? ": " : "", detail ? detail : "") < 0)
		*cause = NULL;
	return -1;
}

/* dlopen one NAME:PATH entry into st. */
static int
load_module(struct stages *s, const struct config_item *it, struct stage *st, char **cause)
{
	const char *colon = strchr(it->value, ':'), *path;
	char what[600];
	void *sym;

	/* the config parser checked NAME:PATH and the name's length */
	snprintf(st->name, sizeof st->name, "%.*s", (int)(colon - it->value), it->value);
	path = colon + 1;
	if (stages_find(s, st->name, strlen(st->name)) != NULL) {
		snprintf(what, sizeof what, "stage '%s' is defined twice", st->name);
		return fail(cause, it, what, NULL);
	}
	if ((st->dl = dlopen(path, RTLD_NOW | RTLD_LOCAL)) == NULL) {
		snprintf(what, sizeof what, "cannot load stage '%s' from '%s'", st->name, path);
		return fail(cause, it, what, dlerror());
	}
	if ((sym = dlsym(st->dl, CHAND_STAGE_SYMBOL_V1)) == NULL) {
		snprintf(what, sizeof what, "'%s' has no %s (not a chand stage module)", path,
		    CHAND_STAGE_SYMBOL_V1);
		dlclose(st->dl);
		st->dl = NULL;
		return fail(cause, it, what, NULL);
	}
	/* POSIX guarantees a data pointer from dlsym converts to a function pointer */
	*(void **)&st->fn = sym;
	log_info("stage-module name=%s path=%s abi=%d", st->name, path, CHAND_STAGE_ABI_VERSION);
	return 0;
}

int
stages_new(struct stages **out, const struct config_list *modules, char **cause)
{
	struct stages *s = calloc(1, sizeof *s);

	*out = NULL;
	*cause = NULL;
	if (s == NULL || (s->v = calloc(NBUILTINS + modules->n, sizeof *s->v)) == NULL)
		goto fail;
	memcpy(s->v, builtins, sizeof builtins);
	s->n = NBUILTINS;
	for (size_t i = 0; i < modules->n; i++) {
		if (load_module(s, &modules->items[i], &s->v[s->n], cause) < 0)
			goto fail;
		s->n++;
	}
	*out = s;
	return 0;
fail:
	if (*cause == NULL && asprintf(cause, "out of memory") < 0)
		*cause = NULL;
	stages_free(s);
	return -1;
}

void
stages_free(struct stages *s)
{
	if (s == NULL)
		return;
	for (size_t i = 0; i < s->n; i++)
		if (s->v != NULL && s->v[i].dl != NULL)
			dlclose(s->v[i].dl);
	free(s->v);
	free(s);
}

const struct stage *
stages_find(const struct stages *s, const char *name, size_t len)
{
	for (size_t i = 0; i < s->n; i++)
		if (strlen(s->v[i].name) == len && memcmp(s->v[i].name, name, len) == 0)
			return &s->v[i];
	return NULL;
}

const char *
stage_name(const struct stage *st)
{
	return st->name;
}

/* ---- applying a stage ------------------------------------------------------ */

/* Write a bin (error false) or ext 2 header for len bytes ending at end; returns its start. */
static uint8_t *
put_header(uint8_t *end, size_t len, bool error)
{
	static const uint8_t fixext[17] = { [1] = 0xd4, [2] = 0xd5, [4] = 0xd6, [8] = 0xd7, [16] = 0xd8 };
	uint8_t *p = end;

	if (error) {
		*--p = PROTO_EXT_ERROR;
		if (len <= 16 && fixext[len])
			return *--p = fixext[len], p;
	}
	if (len < 256) {
		*--p = (uint8_t)len;
		*--p = error ? 0xc7 : 0xc4;
	} else if (len < 65536) {
		p -= 2;
		p[0] = (uint8_t)(len >> 8), p[1] = (uint8_t)len;
		*--p = error ? 0xc8 : 0xc5;
	} else {
		p -= 4;
		p[0] = (uint8_t)(len >> 24), p[1] = (uint8_t)(len >> 16);
		p[2] = (uint8_t)(len >> 8), p[3] = (uint8_t)len;
		*--p = error ? 0xc9 : 0xc6;
	}
	return p;
}

int
stage_error_value(const char *msg, struct value **out)
{
	uint8_t buf[STAGE_HDR + 256];
	size_t len = strlen(msg);
	uint8_t *start;

	if (len > 256)
		len = 256;
	memcpy(buf + STAGE_HDR, msg, len);
	start = put_header(buf + STAGE_HDR, len, true);
	*out = value_new(start, (size_t)(buf + STAGE_HDR + len - start));
	return *out == NULL ? -1 : 0;
}

/* Call the stage, growing the buffer once if it asks; returns the stage's status. */
static int
call_stage(const struct stage *st, const uint8_t *in, size_t in_len, size_t max_value,
    uint8_t **buf, struct chand_stage_out *so)
{
	size_t cap = in_len + 64 < STAGE_MIN_CAP ? STAGE_MIN_CAP : in_len + 64;
	int rc;

	for (int attempt = 0; attempt < 2; attempt++) {
		uint8_t *nb = realloc(*buf, STAGE_HDR + cap);

		if (nb == NULL)
			return -1;
		*buf = nb;
		*so = (struct chand_stage_out){ .data = nb + STAGE_HDR, .cap = cap };
		rc = st->fn(in, in_len, so);
		if (rc != CHAND_STAGE_TOOBIG)
			return rc;
		if (so->len <= cap || so->len > max_value)
			break;
		cap = so->len;
	}
	return CHAND_STAGE_TOOBIG;
}

int
stage_apply(const struct stage *st, const uint8_t *raw, size_t raw_len, size_t max_value,
    struct value **out)
{
	struct chand_stage_out so;
	struct proto_value v;
	const char *why;
	uint8_t *buf = NULL, *start;
	int rc;

	*out = NULL;
	if (proto_value_parse(raw, raw_len, &v, &why) != STATUS_OK || v.kind == VALUE_CHANREF)
		return stage_error_value("stage input must be bytes (a bin)", out);
	if (v.kind == VALUE_ERROR) {
		/* errors flow down a pipeline as values */
		*out = value_new(raw, raw_len);
		return *out == NULL ? -1 : 0;
	}
	rc = call_stage(st, v.data, v.len, max_value, &buf, &so);
	switch (rc) {
	case -1:
		return -1;
	case CHAND_STAGE_SKIP:
		rc = 0;
		break;
	case CHAND_STAGE_OK:
	case CHAND_STAGE_ERROR:
		if (so.len > so.cap || (rc == CHAND_STAGE_OK && so.len > max_value)) {
			rc = stage_error_value("stage result is larger than max_value", out);
			break;
		}
		if (rc == CHAND_STAGE_ERROR && so.len == 0) {
			rc = stage_error_value("stage error", out);
			break;
		}
		start = put_header(so.data, so.len, rc == CHAND_STAGE_ERROR);
		*out = value_new(start, (size_t)(so.data + so.len - start));
		rc = *out == NULL ? -1 : 0;
		break;
	case CHAND_STAGE_TOOBIG:
		rc = stage_error_value("stage result is larger than max_value", out);
		break;
	default:
		rc = stage_error_value("stage failed", out);
		break;
	}
	free(buf);
	return rc;
}
