/* fuzz_fsm.c - libFuzzer harness for the bytes a replica takes from its
 * peers and its disk in leader mode: a Raft entry's command payload
 * (fsm_decode_command, fsm_apply), a state-machine snapshot (fsm_restore)
 * and a membership configuration (raft_conf_decode).
 *
 * None may crash. A payload that decodes must encode back to the same
 * bytes; applying it must leave the fsm able to snapshot. A snapshot that
 * restores must snapshot back to bytes that restore again to the same
 * digest; one that fails must leave the fsm exactly as it was.
 *
 *   build-fuzz/fuzz_fsm -max_total_time=60 tests/fuzz/corpus_fsm
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../src/common/buf.h"
#include "../../src/common/defs.h"
#include "../../src/core/raft.h"
#include "../../src/node/fsm.h"

static void fuzz_command(const uint8_t *data, size_t size)
{
    struct fsm_command c;
    char err[256];
    if (fsm_decode_command(data, size, &c, err, sizeof(err)) != 0)
        return;
    struct tbuf again = {0};
    TRIAD_ASSERT(fsm_encode_command(&c, &again) == 0);
    TRIAD_ASSERT(again.len == size && memcmp(again.data, data, size) == 0);
    tbuf_free(&again);
    fsm_command_free(&c);

    struct fsm f;
    TRIAD_ASSERT(fsm_init(&f, 1) == 0);
    struct tbuf reply = {0}, snap = {0};
    fsm_apply(&f, 1, data, size, &reply);
    TRIAD_ASSERT(f.applied_index == 1);
    TRIAD_ASSERT(fsm_snapshot(&f, &snap) == 0);
    tbuf_free(&reply);
    tbuf_free(&snap);
    fsm_free(&f);
}

static void fuzz_snapshot(const uint8_t *data, size_t size)
{
    struct fsm f;
    TRIAD_ASSERT(fsm_init(&f, 2) == 0);
    uint64_t before = fsm_digest(&f);
    char err[256];
    if (fsm_restore(&f, data, size, err, sizeof(err)) != 0) {
        TRIAD_ASSERT(fsm_digest(&f) == before);
        fsm_free(&f);
        return;
    }
    uint64_t d = fsm_digest(&f);
    struct tbuf snap = {0};
    TRIAD_ASSERT(fsm_snapshot(&f, &snap) == 0);
    struct fsm g;
    TRIAD_ASSERT(fsm_init(&g, 3) == 0);
    TRIAD_ASSERT(fsm_restore(&g, snap.data, snap.len, err, sizeof(err)) == 0);
    TRIAD_ASSERT(fsm_digest(&g) == d);
    tbuf_free(&snap);
    fsm_free(&g);
    fsm_free(&f);
}

static void fuzz_conf(const uint8_t *data, size_t size)
{
    struct raft_conf c;
    if (raft_conf_decode(&c, data, size) != 0)
        return;
    uint8_t buf[RAFT_CONF_BYTES_MAX];
    size_t len = raft_conf_encode(&c, buf);
    TRIAD_ASSERT(len == size && memcmp(buf, data, size) == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    /* the first byte picks the decoder, so one corpus reaches all three */
    switch (data[0] % 3) {
    case 0:
        fuzz_command(data + 1, size - 1);
        break;
    case 1:
        fuzz_snapshot(data + 1, size - 1);
        break;
    default:
        fuzz_conf(data + 1, size - 1);
        break;
    }
    return 0;
}
