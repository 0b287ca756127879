/* defs.h - error codes, assertions and small helpers shared by every layer.
 *
 * src/common/ is a leaf: it includes only the C library, and every layer may
 * include it. Nothing here does I/O beyond writing an assertion failure to
 * stderr before aborting.
 */
#ifndef TRIAD_DEFS_H
#define TRIAD_DEFS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

/* Return codes: 0 on success, a negative TRIAD_E* on failure. Human detail
 * goes into an errmsg buffer supplied by the caller, never into the code. */
#define TRIAD_OK 0
#define TRIAD_EAGAIN (-1)   /* a parser needs more bytes */
#define TRIAD_ENOMEM (-2)
#define TRIAD_EPROTO (-3)   /* malformed input from a client or peer */
#define TRIAD_EIO (-4)      /* a system call on a file failed */
#define TRIAD_ECORRUPT (-5) /* bad bytes on disk */
#define TRIAD_ENOTFOUND (-6)
#define TRIAD_EINVAL (-7)
#define TRIAD_ELIMIT (-8)   /* a configured limit would be exceeded */
#define TRIAD_ETYPE (-9)    /* wrong value type / not an integer, ... */
#define TRIAD_EOVERFLOW (-10)

#define TRIAD_LIKELY(x) __builtin_expect(!!(x), 1)
#define TRIAD_UNLIKELY(x) __builtin_expect(!!(x), 0)

/* TRIAD_ASSERT stays on in every build: a broken invariant must stop the
 * node, not corrupt data. Bad bytes from a client, a peer or the disk are
 * operating errors and never reach an assertion. */
__attribute__((noreturn, cold)) static inline void
triad__assert_fail(const char *expr, const char *file, int line)
{
    fprintf(stderr, "triad: assertion failed: %s (%s:%d)\n", expr, file, line);
    fflush(stderr);
    abort();
}

#define TRIAD_ASSERT(cond) \
    (TRIAD_LIKELY(cond) ? (void)0 : triad__assert_fail(#cond, __FILE__, __LINE__))

#ifdef TRIAD_DEBUG
#define TRIAD_DEBUG_ASSERT(cond) TRIAD_ASSERT(cond)
#else
#define TRIAD_DEBUG_ASSERT(cond) ((void)0)
#endif

#define TRIAD_MIN(a, b) ((a) < (b) ? (a) : (b))
#define TRIAD_MAX(a, b) ((a) > (b) ? (a) : (b))

/* A host name or address as peers exchange it: 1 to max bytes, each
 * printable ASCII other than space. */
static inline bool triad_host_ok(const char *h, size_t n, size_t max)
{
    if (n == 0 || n > max)
        return false;
    for (size_t i = 0; i < n; i++)
        if (h[i] <= ' ' || h[i] > '~')
            return false;
    return true;
}

/* The value of a hex digit, or -1. */
static inline int triad_hex_digit(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}
/* splitmix64 (Steele, Lea, Flood 2014): the one PRNG of the cores and the
 * simulators, seeded by the caller so every run replays. */
static inline uint64_t triad_splitmix64(uint64_t *state)
{
    uint64_t z = (*state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

#define TRIAD_ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

#endif
