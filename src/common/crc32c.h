/* crc32c.h - CRC-32C (Castagnoli), the checksum of WAL records and
 * snapshots.
 *
 * crc32c(0, data, len) is the standard CRC-32C of data (pre- and
 * post-inverted), and crcs chain: crc32c(crc32c(0, a, n), b, m) is the crc
 * of a followed by b. crc32c(0, "123456789", 9) == 0xE3069283.
 *
 * Uses the SSE4.2 crc32 instruction when the CPU has it (checked once),
 * else a slicing-by-8 table. Thread-safe.
 */
#ifndef TRIAD_CRC32C_H
#define TRIAD_CRC32C_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

uint32_t crc32c(uint32_t crc, const void *data, size_t len);

/* The two implementations, exposed so tests can check them against each
 * other. crc32c_hw may only be called if crc32c_hw_available(). */
uint32_t crc32c_sw(uint32_t crc, const void *data, size_t len);
uint32_t crc32c_hw(uint32_t crc, const void *data, size_t len);
bool crc32c_hw_available(void);

#endif
