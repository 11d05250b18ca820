/*
 * value.h: one channel value, owned bytes.
 *
 * A value is the exact msgpack encoding of one element as it arrived on the
 * wire (a bin, or the channel-reference ext), so it is forwarded without
 * re-encoding. The engine never looks inside.
 *
 * Ownership: value_new returns a value the caller owns; passing it to the
 * engine moves it; value_free accepts NULL. Not thread-safe; values may be
 * handed between threads with external synchronisation.
 *
 * SPDX-License-Identifier: BSD-2-Clause
 */
#ifndef CHAND_VALUE_H
#define CHAND_VALUE_H

#include <stddef.h>
#include <stdint.h>

struct value;

/* Copy len bytes into a new value; NULL only when out of memory. */
struct value *value_new(const void *encoded, size_t len);
void value_free(struct value *v);
const uint8_t *value_data(const struct value *v);
size_t value_len(const struct value *v);
/*
 * The payload: the data bytes of the bin or ext, without its msgpack
 * header (what max_value limits, and what buffered bytes count). Bytes that
 * are not a bin or an ext count whole.
 */
size_t value_size(const struct value *v);
/*
 * A number given to the value when it was made, by a counter shared by
 * all threads (wrapping after 2^32): with its address, it tells a value
 * from a later one that reuses the memory of a freed one (durable.c's
 * values waiting for their tag).
 */
uint32_t value_serial(const struct value *v);
/*
 * How many times the value was delivered from an ack channel (delivery.h):
 * 0 for a new value. Carried with the value through the engine, never read
 * by it.
 */
uint32_t value_deliveries(const struct value *v);
void value_set_deliveries(struct value *v, uint32_t n);

#endif
