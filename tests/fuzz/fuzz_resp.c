/* fuzz_resp.c - libFuzzer harness for the RESP request parser.
 *
 * Build and run (SRC: every .c file of src/common, i.e. the glob
 * src/common/STAR.c):
 *   clang -std=c11 -D_GNU_SOURCE -g -O1 -fsanitize=fuzzer,address,undefined \
 *       -o build-fuzz/fuzz_resp tests/fuzz/fuzz_resp.c src/net/resp.c SRC
 *   build-fuzz/fuzz_resp -max_total_time=60 tests/fuzz/corpus_resp
 * (put a scratch directory before tests/fuzz/corpus_resp to keep the new
 * inputs libFuzzer finds out of the seed corpus)
 *
 * What it checks, besides the sanitizers:
 *  - the input fed in chunks (sizes drawn from the input's own bytes, as the
 *    session layer would see them from the socket) parses to exactly the
 *    same commands and the same error as the input fed whole;
 *  - every argv is NUL-terminated at argvlen;
 *  - every parsed command re-encoded as a multibulk parses back, in one
 *    call, to the same argv and consumes exactly the encoding;
 *  - the lookahead (resp_peek_keys) finds only requests the parser
 *    completes from the same bytes, with their argv[1], and ends where
 *    they end.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../src/common/buf.h"
#include "../../src/common/defs.h"
#include "../../src/net/resp.h"

/* Stop after this many commands from one input: a run of empty lines could
 * otherwise make one input slow without finding anything new. */
#define FUZZ_COMMANDS_MAX 4096

static void fuzz_roundtrip(const struct resp_parser *p)
{
    struct tbuf enc = {0};
    struct resp_parser back;
    size_t consumed;

    for (int i = 0; i < p->argc; i++)
        TRIAD_ASSERT(p->argv[i][p->argvlen[i]] == '\0');
    if (p->argc == 0)
        return; /* `*0` parses to nothing, as it should */

    resp_add_array_len(&enc, p->argc);
    for (int i = 0; i < p->argc; i++)
        resp_add_bulk(&enc, p->argv[i], p->argvlen[i]);

    /* default limits: an inline argument is not bound by the bulk limit
     * the fuzzed parser may have had, in Redis either */
    resp_parser_init(&back);
    int rc = resp_parse(&back, enc.data, enc.len, &consumed);
    TRIAD_ASSERT(rc == 0);
    TRIAD_ASSERT(consumed == enc.len);
    TRIAD_ASSERT(back.argc == p->argc);
    for (int i = 0; i < p->argc; i++) {
        TRIAD_ASSERT(back.argvlen[i] == p->argvlen[i]);
        TRIAD_ASSERT(memcmp(back.argv[i], p->argv[i], p->argvlen[i]) == 0);
    }
    resp_parser_free(&back);
    tbuf_free(&enc);
}

/* Record a command in `log` as its multibulk encoding. */
static void fuzz_log_command(struct tbuf *log, const struct resp_parser *p)
{
    resp_add_array_len(log, p->argc);
    for (int i = 0; i < p->argc; i++)
        resp_add_bulk(log, p->argv[i], p->argvlen[i]);
}

/* Parse data[0..size) in chunks; chunk sizes come from `sizes` (cycled), or
 * the whole input at once when nsizes == 0. Writes every command and the
 * final error (if any) to log. */
static void fuzz_run(const uint8_t *data, size_t size, long long max_bulk, const uint8_t *sizes,
                     size_t nsizes, bool check_roundtrip, struct tbuf *log)
{
    struct resp_parser p;
    struct tbuf q = {0};
    size_t off = 0, chunk_i = 0;
    int commands = 0;
    bool stop = false;

    resp_parser_init(&p);
    p.proto_max_bulk_len = max_bulk;
    while (!stop && off < size) {
        size_t c = nsizes ? 1 + (size_t)sizes[chunk_i++ % nsizes] % 97 : size;
        c = TRIAD_MIN(c, size - off);
        tbuf_append(&q, data + off, c);
        off += c;
        for (;;) {
            size_t consumed = 0;
            int rc = resp_parse(&p, q.data, q.len, &consumed);
            if (rc == TRIAD_EPROTO) {
                tbuf_appendf(log, "ERR %s", p.errmsg);
                stop = true;
                break;
            }
            TRIAD_ASSERT(consumed <= q.len);
            tbuf_consume(&q, consumed);
            if (rc == TRIAD_EAGAIN)
                break;
            TRIAD_ASSERT(rc == 0);
            TRIAD_ASSERT(p.argc >= 0);
            fuzz_log_command(log, &p);
            if (check_roundtrip)
                fuzz_roundtrip(&p);
            if (++commands >= FUZZ_COMMANDS_MAX) {
                stop = true;
                break;
            }
        }
    }
    tbuf_free(&q);
    resp_parser_free(&p);
}

static void fuzz_peek(const uint8_t *data, size_t size)
{
    struct resp_key keys[16];
    size_t scanned = 0;
    size_t n = resp_peek_keys((const char *)data, size, keys, 16, &scanned);
    TRIAD_ASSERT(n <= 16 && scanned <= size);
    struct resp_parser p;
    resp_parser_init(&p);
    size_t off = 0;
    for (size_t i = 0; i < n; i++) {
        size_t consumed = 0;
        int rc = resp_parse(&p, (const char *)data + off, size - off, &consumed);
        TRIAD_ASSERT(rc == 0);
        off += consumed;
        if (p.argc < 2) {
            TRIAD_ASSERT(p.argc == 1 && keys[i].ptr == NULL);
        } else {
            TRIAD_ASSERT(keys[i].len == p.argvlen[1]);
            TRIAD_ASSERT(memcmp(keys[i].ptr, p.argv[1], p.argvlen[1]) == 0);
        }
    }
    TRIAD_ASSERT(off == scanned);
    resp_parser_free(&p);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct tbuf chunked = {0}, whole = {0};

    /* A small bulk limit half of the time, so the limit check is reached
     * with short inputs too. */
    long long max_bulk = size > 0 && (data[0] & 1) ? 1 + data[0] % 32
                                                   : RESP_PROTO_MAX_BULK_LEN_DEFAULT;
    /* chunk sizes: the input's last bytes read backwards, so they differ from
     * the bytes at the front that decide the frame types */
    uint8_t sizes[16];
    size_t nsizes = TRIAD_MIN(size, sizeof(sizes));
    for (size_t i = 0; i < nsizes; i++)
        sizes[i] = data[size - 1 - i];
    if (nsizes == 0) {
        sizes[0] = 0;
        nsizes = 1;
    }

    fuzz_run(data, size, max_bulk, sizes, nsizes, true, &chunked);
    fuzz_run(data, size, max_bulk, NULL, 0, false, &whole);
    fuzz_peek(data, size);
    /* Above 64 KiB the "too big" limits see different amounts of buffered
     * input depending on the chunking (as in Redis), so only compare below. */
    if (size <= RESP_INLINE_MAX) {
        TRIAD_ASSERT(chunked.len == whole.len);
        TRIAD_ASSERT(chunked.len == 0 || memcmp(chunked.data, whole.data, chunked.len) == 0);
    }
    tbuf_free(&chunked);
    tbuf_free(&whole);
    return 0;
}
