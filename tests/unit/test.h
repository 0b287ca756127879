/* test.h - the unit-test harness: one binary per module, each test a
 * function whose name is a claim. A failed CHECK reports file:line and the
 * expression and fails the test (the test goes on, so one run shows every
 * failing check of it).
 *
 *     TEST(kv_returns_what_was_set) { ... CHECK(x == 1); CHECK_EQ_INT(a, b); }
 *     int main(void) { RUN(kv_returns_what_was_set); return test_summary("kv"); }
 *
 * test_summary prints "<module>: N passed, N failed" and returns the exit code.
 */
#ifndef TRIAD_TEST_H
#define TRIAD_TEST_H

#include <stdio.h>
#include <string.h>

static int test__passed, test__failed, test__cur_failed;
static const char *test__cur;

#define TEST(name) static void name(void)

#define CHECK(cond)                                                                       \
    do {                                                                                  \
        if (!(cond)) {                                                                    \
            fprintf(stderr, "  FAIL %s: %s:%d: %s\n", test__cur, __FILE__, __LINE__, #cond); \
            test__cur_failed = 1;                                                         \
        }                                                                                 \
    } while (0)

#define CHECK_EQ_INT(a, b)                                                                \
    do {                                                                                  \
        long long test__a = (long long)(a), test__b = (long long)(b);                     \
        if (test__a != test__b) {                                                         \
            fprintf(stderr, "  FAIL %s: %s:%d: %s == %s (%lld != %lld)\n", test__cur,      \
                    __FILE__, __LINE__, #a, #b, test__a, test__b);                        \
            test__cur_failed = 1;                                                         \
        }                                                                                 \
    } while (0)

/* compare n bytes at a with the C string b */
#define CHECK_MEM_STR(a, n, b)                                                            \
    do {                                                                                  \
        const char *test__s = (b);                                                        \
        size_t test__n = (n);                                                             \
        if (test__n != strlen(test__s) || memcmp((a), test__s, test__n) != 0) {           \
            fprintf(stderr, "  FAIL %s: %s:%d: %s == \"%s\" (got \"%.*s\")\n", test__cur,  \
                    __FILE__, __LINE__, #a, test__s, (int)test__n, (const char *)(a));    \
            test__cur_failed = 1;                                                         \
        }                                                                                 \
    } while (0)

#define RUN(name)                                                                         \
    do {                                                                                  \
        test__cur = #name;                                                                \
        test__cur_failed = 0;                                                             \
        name();                                                                           \
        if (test__cur_failed) {                                                           \
            test__failed++;                                                               \
            fprintf(stderr, "FAIL %s\n", #name);                                          \
        } else {                                                                          \
            test__passed++;                                                               \
        }                                                                                 \
    } while (0)

static inline int test_summary(const char *module)
{
    printf("%s: %d passed, %d failed\n", module, test__passed, test__failed);
    return test__failed ? 1 : 0;
}

#endif
