/* lincheck_cli.c - `triad lincheck FILE [--steps N]`: check a recorded
 * history for linearizability.
 *
 * The history is JSON lines as lin_dump_json writes them (`triad sim
 * --history`, or a test that records clients talking to a real cluster;
 * see lin_load_json in lincheck.h for the exact format). One line of
 * verdict goes to stdout, and on a violation or an unknown answer the
 * checker's account of it on a second line. Exit codes: 0 linearizable,
 * 1 not linearizable, 2 unknown (a key's search hit its bound), bad input
 * or bad usage.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "../src/common/buf.h"
#include "../src/common/defs.h"
#include "lincheck.h"
#include "sim.h"

/* the largest history file read; past it the file is refused */
#define LIN_FILE_BYTES_MAX ((size_t)1 << 30)
#define LIN_READ_CHUNK_SIZE ((size_t)1 << 16)

enum { LIN_EXIT_OK = 0, LIN_EXIT_VIOLATION = 1, LIN_EXIT_OTHER = 2 };

static void lin__cli_usage(FILE *f)
{
    fprintf(f,
            "Usage: triad lincheck FILE [--steps N]\n"
            "  Check a history (JSON lines, as `triad sim --history FILE` writes them;\n"
            "  FILE - reads stdin) for linearizability.\n"
            "  --steps N   search steps per key before the answer is unknown\n"
            "              (default %u)\n"
            "Exit status: 0 linearizable, 1 not linearizable, 2 unknown or bad input.\n",
            LIN_STEPS_PER_KEY_DEFAULT);
}

/* Read all of f into out; 0, or -1 with errmsg set. */
static int lin__read_all(FILE *f, struct tbuf *out, char *errmsg, size_t errlen)
{
    for (;;) {
        if (out->len >= LIN_FILE_BYTES_MAX) {
            snprintf(errmsg, errlen, "larger than %zu bytes", LIN_FILE_BYTES_MAX);
            return -1;
        }
        tbuf_reserve(out, LIN_READ_CHUNK_SIZE);
        size_t n = fread(out->data + out->len, 1, LIN_READ_CHUNK_SIZE, f);
        out->len += n;
        if (n < LIN_READ_CHUNK_SIZE) {
            if (ferror(f)) {
                snprintf(errmsg, errlen, "read error: %s", strerror(errno));
                return -1;
            }
            return 0;
        }
    }
}

static bool lin__parse_u64(const char *s, uint64_t *out)
{
    uint64_t v = 0;
    if (*s == '\0')
        return false;
    for (; *s != '\0'; s++) {
        if (*s < '0' || *s > '9')
            return false;
        unsigned d = (unsigned)(*s - '0');
        if (v > (UINT64_MAX - d) / 10)
            return false;
        v = v * 10 + d;
    }
    *out = v;
    return true;
}

int lin_main(int argc, char **argv)
{
    const char *path = NULL;
    uint64_t steps = LIN_STEPS_PER_KEY_DEFAULT;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--steps") == 0 && i + 1 < argc) {
            if (!lin__parse_u64(argv[++i], &steps)) {
                fprintf(stderr, "triad lincheck: --steps takes a count, not '%s'\n", argv[i]);
                return LIN_EXIT_OTHER;
            }
        } else if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            lin__cli_usage(stdout);
            return LIN_EXIT_OK;
        } else if (path == NULL && (a[0] != '-' || strcmp(a, "-") == 0)) {
            path = a;
        } else {
            fprintf(stderr, "triad lincheck: unknown or incomplete option '%s'\n", a);
            lin__cli_usage(stderr);
            return LIN_EXIT_OTHER;
        }
    }
    if (path == NULL) {
        lin__cli_usage(stderr);
        return LIN_EXIT_OTHER;
    }

    char errmsg[512];
    struct tbuf text = {0};
    bool from_stdin = strcmp(path, "-") == 0;
    FILE *f = from_stdin ? stdin : fopen(path, "rb");
    if (f == NULL) {
        fprintf(stderr, "triad lincheck: %s: %s\n", path, strerror(errno));
        return LIN_EXIT_OTHER;
    }
    int rc = lin__read_all(f, &text, errmsg, sizeof(errmsg));
    if (!from_stdin)
        fclose(f);
    if (rc != 0) {
        fprintf(stderr, "triad lincheck: %s: %s\n", path, errmsg);
        tbuf_free(&text);
        return LIN_EXIT_OTHER;
    }

    struct lin_history h;
    lin_history_init(&h);
    rc = lin_load_json(&h, text.data, text.len, errmsg, sizeof(errmsg));
    tbuf_free(&text);
    if (rc != 0) {
        fprintf(stderr, "triad lincheck: %s: %s\n", path, errmsg);
        lin_history_free(&h);
        return LIN_EXIT_OTHER;
    }

    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    struct lin_report rep;
    enum lin_result r = lin_check(&h, steps, &rep);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    lin_history_free(&h);

    const char *verdict = r == LIN_RESULT_OK          ? "linearizable"
                          : r == LIN_RESULT_VIOLATION ? "NOT linearizable"
                                                      : "unknown";
    printf("%s: %s: %zu ops (%zu failed, %zu unknown) over %zu key%s, %" PRIu64
           " search steps in %.2f s\n",
           path, verdict, rep.ops_count, rep.ops_failed_count, rep.ops_unknown_count,
           rep.keys_count, rep.keys_count == 1 ? "" : "s", rep.steps_count, secs);
    if (r != LIN_RESULT_OK)
        printf("%s\n", rep.msg);
    if (r == LIN_RESULT_UNKNOWN)
        printf("(%zu key%s without an answer; a larger --steps may decide)\n",
               rep.keys_unknown_count, rep.keys_unknown_count == 1 ? "" : "s");
    return r == LIN_RESULT_OK ? LIN_EXIT_OK : r == LIN_RESULT_VIOLATION ? LIN_EXIT_VIOLATION
                                                                        : LIN_EXIT_OTHER;
}
