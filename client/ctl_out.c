/*
 * ctl_out.c: chanctl's two output modes. JSON is written as it goes; a
 * human table is collected so its columns can be aligned.
 *
 * SPDX-License-Identifier: BSD-2-Clause
 */
#include <ctype.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "ctl_out.h"

void
out_init(struct out *o, FILE *f)
{
	bool json = o->json;

	memset(o, 0, sizeof *o);
	o->f = f;
	o->json = json;
}

void
out_free(struct out *o)
{
	fflush(o->f);
}

/*
 * The length of the UTF-8 sequence at p (1 to 4), or 0 if it is not one:
 * strict, as JSON parsers are (no overlongs, no surrogates, nothing past
 * U+10FFFF, nothing cut short).
 */
static size_t
utf8_len(const unsigned char *p, size_t left)
{
	uint32_t cp, min;
	size_t n;

	if (p[0] < 0x80)
		return 1;
	if (p[0] >= 0xc2 && p[0] <= 0xdf)
		n = 2, cp = p[0] & 0x1f, min = 0x80;
	else if ((p[0] & 0xf0) == 0xe0)
		n = 3, cp = p[0] & 0x0f, min = 0x800;
	else if (p[0] >= 0xf0 && p[0] <= 0xf4)
		n = 4, cp = p[0] & 0x07, min = 0x10000;
	else
		return 0;
	if (left < n)
		return 0;
	for (size_t k = 1; k < n; k++) {
		if ((p[k] & 0xc0) != 0x80)
			return 0;
		cp = cp << 6 | (p[k] & 0x3f);
	}
	if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return n;
}

/*
 * A JSON string: quotes, backslashes and control characters (NUL too)
 * escaped. A byte that is not UTF-8 becomes U+FFFD, as in Go's
 * encoding/json, so the document stays valid; values that must come back
 * exactly are checked first (text_ok) and sent as base64 otherwise.
 */
static void
json_str(FILE *f, const char *s, size_t len)
{
	const unsigned char *p = (const unsigned char *)s;

	fputc('"', f);
	for (size_t i = 0, n; i < len; i += n) {
		if ((n = utf8_len(p + i, len - i)) == 0) {
			fputs("\\ufffd", f);
			n = 1;
		} else if (p[i] == '"' || p[i] == '\\') {
			fprintf(f, "\\%c", p[i]);
		} else if (p[i] < 0x20) {
			fprintf(f, "\\u%04x", p[i]);
		} else {
			fwrite(p + i, 1, n, f);
		}
	}
	fputc('"', f);
}

static void
json_key(struct out *o, const char *key)
{
	if (o->nfields++ > 0)
		fputc(',', o->f);
	json_str(o->f, key, strlen(key));
	fputc(':', o->f);
}

void
out_ok(struct out *o)
{
	fputs(o->json ? "{\"ok\":true}\n" : "OK\n", o->f);
}

void
out_begin(struct out *o)
{
	o->nfields = 0;
	if (o->json)
		fputc('{', o->f);
}

void
out_end(struct out *o)
{
	if (o->json)
		fputs("}\n", o->f);
}

void
out_field_str(struct out *o, const char *key, const char *v)
{
	if (!o->json) {
		fprintf(o->f, "%-18s %s\n", key, v);
		return;
	}
	json_key(o, key);
	json_str(o->f, v, strlen(v));
}

void
out_field_uint(struct out *o, const char *key, uint64_t v)
{
	if (o->json) {
		json_key(o, key);
		fprintf(o->f, "%" PRIu64, v);
	} else {
		fprintf(o->f, "%-18s %" PRIu64 "\n", key, v);
	}
}

void
out_field_double(struct out *o, const char *key, double v)
{
	if (o->json) {
		json_key(o, key);
		fprintf(o->f, "%.3f", v);
	} else {
		fprintf(o->f, "%-18s %.3f\n", key, v);
	}
}

void
out_field_bool(struct out *o, const char *key, bool v)
{
	if (o->json) {
		json_key(o, key);
		fputs(v ? "true" : "false", o->f);
	} else {
		fprintf(o->f, "%-18s %s\n", key, v ? "yes" : "no");
	}
}

/* ---- tables -------------------------------------------------------------------------- */

void
out_table_begin(struct out *o, const char *name)
{
	o->nrows = 0;
	o->ncols = 0;
	if (o->json) {
		fputs("{", o->f);
		json_str(o->f, name, strlen(name));
		fputs(":[", o->f);
	}
}

void
out_row_begin(struct out *o)
{
	if (o->json) {
		fputs(o->nrows++ ? ",{" : "{", o->f);
		o->nfields = 0;
		return;
	}
	if (o->nrows == o->rows_cap) {
		o->rows_cap = o->rows_cap ? o->rows_cap * 2 : 16;
		o->rows = realloc(o->rows, o->rows_cap * sizeof *o->rows);
		if (o->rows == NULL)
			abort();
	}
	o->rows[o->nrows] = calloc(16, sizeof (char *));
	if (o->rows[o->nrows++] == NULL)
		abort();
	o->nfields = 0;
}

/* Human mode: the cell's text, and the column's header on the first row. */
static void
cell(struct out *o, const char *key, char *text)
{
	if (o->nfields < 16) {
		if (o->nrows == 1 && o->ncols < 16)
			o->cols[o->ncols++] = key;
		o->rows[o->nrows - 1][o->nfields] = text;
	} else {
		free(text);
	}
	o->nfields++;
}

void
out_col_str(struct out *o, const char *key, const char *v)
{
	if (o->json) {
		json_key(o, key);
		json_str(o->f, v, strlen(v));
		return;
	}
	cell(o, key, strdup(*v ? v : "-"));
}

void
out_col_uint(struct out *o, const char *key, uint64_t v)
{
	char *t;

	if (o->json) {
		json_key(o, key);
		fprintf(o->f, "%" PRIu64, v);
		return;
	}
	if (asprintf(&t, "%" PRIu64, v) < 0)
		abort();
	cell(o, key, t);
}

void
out_col_bool(struct out *o, const char *key, bool v)
{
	if (o->json) {
		json_key(o, key);
		fputs(v ? "true" : "false", o->f);
		return;
	}
	cell(o, key, strdup(v ? "yes" : "no"));
}

void
out_col_cases(struct out *o, const char *key, const chan_waiter_case_t *c, size_t n)
{
	if (o->json) {
		json_key(o, key);
		fputc('[', o->f);
		for (size_t i = 0; i < n; i++) {
			fprintf(o->f, "%s{\"dir\":\"%s\",\"channel\":", i ? "," : "",
			    c[i].dir == CHAN_DIR_SEND ? "send" : "recv");
			if (c[i].channel[0])
				json_str(o->f, c[i].channel, strlen(c[i].channel));
			else
				fputs("null", o->f);
			fputc('}', o->f);
		}
		fputc(']', o->f);
		return;
	}
	char *buf = NULL;
	size_t len = 0;
	FILE *m = open_memstream(&buf, &len);

	for (size_t i = 0; i < n && m; i++)
		fprintf(m, "%s%s %s", i ? ", " : "", c[i].dir == CHAN_DIR_SEND ? "send" : "recv",
		    c[i].channel[0] ? c[i].channel : "nil");
	if (m == NULL || fclose(m) != 0)
		abort();
	cell(o, key, buf);
}

void
out_row_end(struct out *o)
{
	if (o->json)
		fputc('}', o->f);
}

void
out_table_end(struct out *o, const char *count_key, uint64_t count)
{
	size_t width[16] = { 0 };
	size_t shown = o->nrows;

	if (o->json) {
		fputc(']', o->f);
		if (count_key)
			fprintf(o->f, ",\"%s\":%" PRIu64, count_key, count);
		fputs("}\n", o->f);
		return;
	}
	for (int j = 0; j < o->ncols; j++) {
		width[j] = strlen(o->cols[j]);
		for (size_t i = 0; i < o->nrows; i++)
			if (o->rows[i][j] && strlen(o->rows[i][j]) > width[j])
				width[j] = strlen(o->rows[i][j]);
	}
	for (int j = 0; j < o->ncols; j++) {
		for (const char *k = o->cols[j]; *k; k++)
			fputc(toupper((unsigned char)*k), o->f);
		fprintf(o->f, "%*s", j + 1 < o->ncols ? (int)(width[j] - strlen(o->cols[j]) + 2) : 0, "");
	}
	if (o->ncols)
		fputc('\n', o->f);
	for (size_t i = 0; i < o->nrows; i++) {
		for (int j = 0; j < o->ncols; j++) {
			const char *t = o->rows[i][j] ? o->rows[i][j] : "";

			fprintf(o->f, j + 1 < o->ncols ? "%-*s  " : "%-*s", j + 1 < o->ncols ? (int)width[j] : 0, t);
		}
		fputc('\n', o->f);
		for (int j = 0; j < 16; j++)
			free(o->rows[i][j]);
		free(o->rows[i]);
	}
	free(o->rows);
	o->rows = NULL;
	o->nrows = o->rows_cap = 0;
	if (count_key && count > shown)
		fprintf(o->f, "(%" PRIu64 " %s in all, the first %zu shown)\n", count, count_key, shown);
}

/* ---- received values ------------------------------------------------------------------ */

void
out_values_begin(struct out *o)
{
	o->nfields = 0;
	if (o->json)
		fputs("{\"values\":[", o->f);
}

/* Valid UTF-8 (NUL and control characters included: json_str escapes them) prints as a string. */
static bool
text_ok(const unsigned char *p, size_t len)
{
	for (size_t i = 0, n; i < len; i += n)
		if ((n = utf8_len(p + i, len - i)) == 0)
			return false;
	return true;
}

void
out_value_bytes(struct out *o, const void *p, size_t len)
{
	if (!o->json) {
		fwrite(p, 1, len, o->f);
		fputc('\n', o->f);
		return;
	}
	fputs(o->nfields++ ? "," : "", o->f);
	if (text_ok(p, len)) {
		json_str(o->f, p, len);
		return;
	}
	unsigned char *b64 = malloc(4 * ((len + 2) / 3) + 1);

	if (b64 == NULL)
		abort();
	EVP_EncodeBlock(b64, p, (int)len);
	fprintf(o->f, "{\"base64\":\"%s\"}", b64);
	free(b64);
}

void
out_value_chan(struct out *o, const char *name)
{
	if (!o->json) {
		fprintf(o->f, "chan:%s\n", name);
		return;
	}
	fputs(o->nfields++ ? ",{\"chan\":" : "{\"chan\":", o->f);
	json_str(o->f, name, strlen(name));
	fputc('}', o->f);
}

void
out_values_end(struct out *o, bool closed)
{
	if (o->json)
		fprintf(o->f, "],\"closed\":%s}\n", closed ? "true" : "false");
}

void
out_values_end_err(struct out *o, uint64_t code, const char *msg)
{
	if (!o->json)
		return;
	fprintf(o->f, "],\"closed\":true,\"close_error\":{\"code\":%" PRIu64 ",\"message\":", code);
	json_str(o->f, msg, strlen(msg));
	fputs("}}\n", o->f);
}
