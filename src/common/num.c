/* num.c - decimal numbers in protocol arguments (see num.h). */
#include "num.h"

#define NUM_CHARS_MAX 20 /* "-9223372036854775808", "18446744073709551615" */

/* digits only into *v; false on a non-digit or overflow */
static bool num__digits(const char *p, size_t len, uint64_t *v)
{
    uint64_t x = 0;
    for (size_t i = 0; i < len; i++) {
        if (p[i] < '0' || p[i] > '9')
            return false;
        uint64_t d = (uint64_t)(p[i] - '0');
        if (x > (UINT64_MAX - d) / 10)
            return false;
        x = x * 10 + d;
    }
    *v = x;
    return true;
}

bool triad_parse_u64(const char *p, size_t len, uint64_t *out)
{
    if (len == 0 || len > NUM_CHARS_MAX)
        return false;
    return num__digits(p, len, out);
}

bool triad_parse_i64(const char *p, size_t len, int64_t *out)
{
    if (len == 0 || len > NUM_CHARS_MAX)
        return false;
    if (len == 1 && p[0] == '0') {
        if (out)
            *out = 0;
        return true;
    }
    bool neg = p[0] == '-';
    size_t i = neg ? 1 : 0;
    uint64_t v;
    if (i == len || p[i] < '1' || p[i] > '9' || !num__digits(p + i, len - i, &v))
        return false;
    if (v > (uint64_t)INT64_MAX + (neg ? 1 : 0))
        return false;
    if (out)
        *out = neg ? (v == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)v) : (int64_t)v;
    return true;
}
