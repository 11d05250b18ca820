/*
 * crc32c.h: CRC-32C (Castagnoli), the checksum of the journal's records.
 *
 * Reflected polynomial 0x82F63B78, initial value and final xor 0xFFFFFFFF,
 * the variant of iSCSI, ext4 and LevelDB: crc32c("123456789") = 0xE3069283.
 * With SSE4.2's crc32 instruction where the CPU has it (x86-64, checked
 * at run time), else table-driven, one byte at a time. Thread-safe: the
 * table is built at compile time and never written.
 *
 * SPDX-License-Identifier: BSD-2-Clause
 */
#ifndef CHAND_CRC32C_H
#define CHAND_CRC32C_H

#include <stddef.h>
#include <stdint.h>

/* The CRC of len bytes. */
uint32_t crc32c(const void *data, size_t len);
/*
 * Continue a CRC: crc32c_extend(crc32c(a), b) == crc32c(a followed by b).
 * crc32c_extend(0, ...) is crc32c(...).
 */
uint32_t crc32c_extend(uint32_t crc, const void *data, size_t len);

#endif
