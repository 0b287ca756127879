/* num.h - decimal numbers in protocol arguments, parsed strictly.
 *
 * triad_parse_i64 is Redis's string2ll: an optional '-', then "0" alone or
 * a digit 1-9 followed by digits, within int64; it rejects "", "+1", "01",
 * "-0", " 1" and "1 ", so what it accepts prints back as the same bytes.
 * triad_parse_u64 takes digits only (leading zeros allowed), within uint64.
 */
#ifndef TRIAD_NUM_H
#define TRIAD_NUM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

bool triad_parse_i64(const char *p, size_t len, int64_t *out);
bool triad_parse_u64(const char *p, size_t len, uint64_t *out);

#endif
