/* fuzz_lincheck_json.c - libFuzzer harness for lin_load_json, the reader
 * of history files (`triad lincheck FILE`).
 *
 * Build and run (SRC: every .c file of src/common, i.e. the glob
 * src/common/STAR.c):
 *   clang -std=c11 -D_GNU_SOURCE -g -O1 -fsanitize=fuzzer,address,undefined \
 *       -o build-fuzz/fuzz_lincheck_json tests/fuzz/fuzz_lincheck_json.c \
 *       sim/lincheck.c SRC -lxxhash -lm
 *   build-fuzz/fuzz_lincheck_json -max_total_time=60 SCRATCH_DIR
 * (a seed corpus: `triad sim --seed 1 --history SCRATCH_DIR/sim1` and a
 * few lines of any history file)
 *
 * What it checks, besides the sanitizers:
 *  - an input that is refused leaves the history empty, with an error
 *    message that names the line ("line L, column C: ...");
 *  - an input that loads dumps (lin_dump_json) to text that loads again
 *    to the same ops, and dumps to the same bytes;
 *  - the checker runs on whatever loads (bounded, so slow histories give
 *    "unknown" rather than a slow input).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../sim/lincheck.h"
#include "../../src/common/buf.h"
#include "../../src/common/defs.h"

/* search steps per key: enough to decide small histories, small enough
 * that no input is slow */
#define FUZZ_STEPS_PER_KEY 2000u

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct lin_history h, back;
    struct tbuf d1 = {0}, d2 = {0};
    char err[256];

    lin_history_init(&h);
    int rc = lin_load_json(&h, (const char *)data, size, err, sizeof(err));
    if (rc != 0) {
        TRIAD_ASSERT(rc == TRIAD_EPROTO || rc == TRIAD_ELIMIT);
        TRIAD_ASSERT(h.ops_count == 0);
        TRIAD_ASSERT(strncmp(err, "line ", 5) == 0);
        lin_history_free(&h);
        return 0;
    }
    TRIAD_ASSERT(err[0] == '\0');

    lin_dump_json(&h, &d1);
    lin_history_init(&back);
    rc = lin_load_json(&back, d1.data, d1.len, err, sizeof(err));
    TRIAD_ASSERT(rc == 0);
    TRIAD_ASSERT(back.ops_count == h.ops_count);
    lin_dump_json(&back, &d2);
    TRIAD_ASSERT(d2.len == d1.len);
    TRIAD_ASSERT(d1.len == 0 || memcmp(d1.data, d2.data, d1.len) == 0);

    struct lin_report rep;
    enum lin_result r = lin_check(&h, FUZZ_STEPS_PER_KEY, &rep);
    TRIAD_ASSERT(r == rep.result);
    TRIAD_ASSERT(rep.ops_count == h.ops_count);

    tbuf_free(&d1);
    tbuf_free(&d2);
    lin_history_free(&back);
    lin_history_free(&h);
    return 0;
}
