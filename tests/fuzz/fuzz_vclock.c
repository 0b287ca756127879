/* fuzz_vclock.c - libFuzzer harness for the dotted-version-vector decoders.
 *
 * The first byte picks the decoder, the rest is its input: even, an object
 * (dvv_decode); odd, a client's context string (dvv_context_decode). Bad
 * bytes must give an error, never a crash; what is accepted must be
 * canonical (it re-encodes to exactly the input), its digest must be the
 * hash of those bytes, and merging it with itself or a copy must change
 * nothing.
 *
 *   clang -std=c11 -D_GNU_SOURCE -g -O1 -fsanitize=fuzzer,address,undefined \
 *     -o build-fuzz/fuzz_vclock tests/fuzz/fuzz_vclock.c src/core/vclock.c \
 *     src/core/hlc.c src/common/\*.c -lxxhash
 *   build-fuzz/fuzz_vclock -max_total_time=60 tests/fuzz/corpus_vclock
 */
#include <stdint.h>
#include <string.h>
#include <xxhash.h>

#include "../../src/common/buf.h"
#include "../../src/common/defs.h"
#include "../../src/core/vclock.h"

static void fuzz_object(const uint8_t *data, size_t size)
{
    struct dvv_obj o, c;
    struct tbuf b = {0};
    char err[256];

    if (dvv_decode(&o, data, size, err, sizeof(err)) != 0) {
        TRIAD_ASSERT(err[0] != '\0');
        TRIAD_ASSERT(o.n_sibs == 0 && o.vv.n == 0 && o.sibs == NULL && o.vv.e == NULL);
        return;
    }
    dvv_encode(&o, &b);
    TRIAD_ASSERT(b.len == size);
    TRIAD_ASSERT(memcmp(b.data, data, size) == 0);
    TRIAD_ASSERT(dvv_digest(&o) == XXH3_64bits(data, size));

    dvv_copy(&c, &o);
    TRIAD_ASSERT(dvv_merge(&c, &o) == 0);
    TRIAD_ASSERT(dvv_equal(&c, &o));
    TRIAD_ASSERT(dvv_merge(&o, &o) == 0);
    TRIAD_ASSERT(dvv_equal(&c, &o));
    tbuf_reset(&b);
    dvv_encode(&c, &b);
    TRIAD_ASSERT(b.len == size && memcmp(b.data, data, size) == 0);

    /* Every sibling is covered; the winner is one of them. */
    for (uint32_t i = 0; i < o.n_sibs; i++)
        TRIAD_ASSERT(dvv_covers(&o, o.sibs[i].dot));
    const struct dvv_sib *w = dvv_winner(&o);
    TRIAD_ASSERT((w == NULL) == (o.n_sibs == 0));
    TRIAD_ASSERT(w == NULL || w->ts == dvv_max_ts(&o));

    /* A write that read the whole object leaves one sibling, or is refused
     * (a counter at UINT64_MAX, actors at the limit) without a change. */
    dvv_actor a = o.vv.n ? o.vv.e[0].actor : 1;
    int rc = dvv_update(&c, &o.vv, a, 1, 1, false, "v", 1, NULL);
    TRIAD_ASSERT(rc == 0 || rc == TRIAD_EOVERFLOW);
    TRIAD_ASSERT(rc != 0 || (c.n_sibs == 1 && dvv_clock_descends(&c.vv, &o.vv)));

    tbuf_free(&b);
    dvv_free(&c);
    dvv_free(&o);
}

static void fuzz_context(const uint8_t *data, size_t size)
{
    struct dvv_clock c, j;
    struct tbuf b = {0};
    char err[256];

    if (dvv_context_decode(&c, (const char *)data, size, err, sizeof(err)) != 0) {
        TRIAD_ASSERT(err[0] != '\0');
        TRIAD_ASSERT(c.n == 0 && c.e == NULL);
        return;
    }
    dvv_context_encode(&c, &b);
    TRIAD_ASSERT(b.len == size);
    TRIAD_ASSERT(size == 0 || memcmp(b.data, data, size) == 0);
    for (size_t i = 0; i < b.len; i++)
        TRIAD_ASSERT(b.data[i] > ' ' && b.data[i] <= '~');

    dvv_clock_copy(&j, &c);
    dvv_clock_join(&j, &c);
    TRIAD_ASSERT(dvv_clock_equal(&j, &c));
    TRIAD_ASSERT(dvv_clock_descends(&j, &c) && dvv_clock_descends(&c, &j));
    for (uint32_t i = 0; i < c.n; i++)
        TRIAD_ASSERT(dvv_clock_get(&c, c.e[i].actor) == c.e[i].counter);

    dvv_clock_free(&j);
    dvv_clock_free(&c);
    tbuf_free(&b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    if (data[0] % 2 == 0)
        fuzz_object(data + 1, size - 1);
    else
        fuzz_context(data + 1, size - 1);
    return 0;
}
