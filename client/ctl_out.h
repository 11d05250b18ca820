/*
 * ctl_out.h: chanctl's output, in two modes: aligned human-readable tables
 * and "key: value" lines, or one JSON document for scripts (--json).
 *
 * A command prints one shape: an object (out_begin, out_field_*, out_end),
 * a table (out_table_*, out_row_*, out_col_*), a value stream (out_values_*),
 * or just OK (out_ok). Not thread-safe; one per process.
 *
 * SPDX-License-Identifier: BSD-2-Clause
 */
#ifndef CHANCTL_OUT_H
#define CHANCTL_OUT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "chanclient.h"
#include "duration.h"

struct out {
	FILE *f;
	bool json;
	int nfields;			/* fields printed in the current object/row */
	/* human tables are collected, then printed aligned */
	char ***rows;			/* rows[i][j]: malloc'd cell text */
	const char *cols[16];
	int ncols;
	size_t nrows, rows_cap;
};

void out_init(struct out *o, FILE *f);
void out_free(struct out *o);

void out_ok(struct out *o);

void out_begin(struct out *o);
void out_field_str(struct out *o, const char *key, const char *v);
void out_field_uint(struct out *o, const char *key, uint64_t v);
void out_field_double(struct out *o, const char *key, double v);
void out_field_bool(struct out *o, const char *key, bool v);
void out_end(struct out *o);

void out_table_begin(struct out *o, const char *name);
void out_row_begin(struct out *o);
void out_col_str(struct out *o, const char *key, const char *v);
void out_col_uint(struct out *o, const char *key, uint64_t v);
void out_col_bool(struct out *o, const char *key, bool v);
void out_col_cases(struct out *o, const char *key, const chan_waiter_case_t *c, size_t n);
void out_row_end(struct out *o);
/*
 * End a table. count_key (may be NULL) says how many exist in all: JSON
 * gets it as a key beside the table, a human a note when not all are shown.
 */
void out_table_end(struct out *o, const char *count_key, uint64_t count);

void out_values_begin(struct out *o);
/*
 * JSON: a string when the bytes are strict UTF-8 (control characters
 * escaped), else {"base64":"..."}; the document stays valid for any bytes.
 */
void out_value_bytes(struct out *o, const void *p, size_t len);
void out_value_chan(struct out *o, const char *name);
void out_values_end(struct out *o, bool closed);
/* The stream ended on a channel closed with an error: JSON adds "close_error":{"code","message"}. */
void out_values_end_err(struct out *o, uint64_t code, const char *msg);

#endif
