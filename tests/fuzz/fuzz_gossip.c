/* fuzz_gossip.c - libFuzzer harness for leaderless mode's gossip
 * (src/core/gossip.c): the wire codec of a list of states, and merging
 * whatever decodes into a running gossip instance.
 *
 * Build and run (SRC: every .c file of src/common, i.e. the glob
 * src/common/STAR.c):
 *   clang -std=c11 -D_GNU_SOURCE -g -O1 -fsanitize=fuzzer,address,undefined \
 *       -o build-fuzz/fuzz_gossip tests/fuzz/fuzz_gossip.c src/core/gossip.c SRC -lxxhash -lm
 *   build-fuzz/fuzz_gossip -max_total_time=60 SCRATCH_DIR tests/fuzz/corpus_gossip
 *
 * The input is the bytes a peer sent. What it checks, besides the
 * sanitizers:
 *  - a list that decodes encodes back to exactly the input bytes;
 *  - merged into node 1 (which knows seeds 2 and 3), every node the list
 *    names is held at least as new as the list says (our own: strictly
 *    newer if the list's was newer than ours), unless the table was full;
 *  - merging the same list again changes nothing, and leaves nothing
 *    newer to tell;
 *  - a round after it never picks ourselves nor a node known to have left;
 *  - what the instance would send decodes again.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../src/common/buf.h"
#include "../../src/common/defs.h"
#include "../../src/core/gossip.h"

int gossip__check(const struct gossip *g);

static bool fuzz_newer(const struct gossip_state *a, const struct gossip_state *b)
{
    return a->generation != b->generation ? a->generation > b->generation
                                          : a->version > b->version;
}

static bool fuzz_same(const struct gossip_state *a, const struct gossip_state *b)
{
    return a->id == b->id && a->generation == b->generation && a->version == b->version &&
           a->status == b->status && a->peer_port == b->peer_port &&
           a->client_port == b->client_port && strcmp(a->host, b->host) == 0;
}

static void fuzz_merge(const struct gossip_state *in, size_t n)
{
    struct gossip_config cfg;
    gossip_config_default(&cfg);
    struct gossip_state self = {.id = 1, .generation = 2, .version = 5, .status = GOSSIP_NORMAL,
                                .peer_port = 7001, .client_port = 6001, .host = "127.0.0.1"};
    struct gossip *g = gossip_new(&self, &cfg, 1000);
    gossip_add_seed(g, 2);
    gossip_add_seed(g, 3);

    gossip_merge(g, 2, in, n, 1000);
    TRIAD_ASSERT(gossip__check(g) == 0);
    for (size_t i = 0; i < n; i++) {
        const struct gossip_state *held = gossip_get(g, in[i].id);
        if (held == NULL)
            continue; /* the table was full */
        TRIAD_ASSERT(!fuzz_newer(&in[i], held));
        if (in[i].id == 1 && fuzz_newer(&in[i], &self))
            TRIAD_ASSERT(fuzz_newer(held, &self));
    }

    static struct gossip_state before[GOSSIP_NODES_MAX], after[GOSSIP_NODES_MAX];
    size_t nb = gossip_states(g, before, GOSSIP_NODES_MAX);
    uint64_t epoch = gossip_epoch(g);
    gossip_merge(g, 2, in, n, 2000);
    size_t na = gossip_states(g, after, GOSSIP_NODES_MAX);
    TRIAD_ASSERT(na == nb && gossip_epoch(g) == epoch);
    for (size_t i = 0; i < na; i++) {
        TRIAD_ASSERT(fuzz_same(&before[i], &after[i]));
        TRIAD_ASSERT(i == 0 || after[i - 1].id < after[i].id);
    }
    TRIAD_ASSERT(!gossip_merge(g, 3, after, na, 2000));

    for (uint64_t r = 0; r < 4; r++) {
        uint32_t to = gossip_tick(g, 1000 + r * cfg.interval_ms, r * 0x9e3779b97f4a7c15ull);
        const struct gossip_state *t = gossip_get(g, to);
        TRIAD_ASSERT(to != 1);
        TRIAD_ASSERT(t == NULL || t->status != GOSSIP_LEFT);
    }
    for (size_t i = 0; i < n; i++) {
        double phi = gossip_phi(g, in[i].id, 30000);
        TRIAD_ASSERT(phi >= 0);
        TRIAD_ASSERT(in[i].id == 1 || gossip_get(g, in[i].id) == NULL ||
                     gossip_alive(g, in[i].id, 30000) == (phi < cfg.phi_convict));
    }

    struct tbuf out = {0};
    size_t m;
    na = gossip_states(g, after, GOSSIP_NODES_MAX);
    gossip_encode(after, na, &out);
    TRIAD_ASSERT(gossip_decode(out.data, out.len, before, GOSSIP_NODES_MAX, &m, NULL, 0) == 0);
    TRIAD_ASSERT(m == na);
    tbuf_free(&out);
    gossip_free(g);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct gossip_state in[GOSSIP_NODES_MAX];
    char errmsg[128];
    size_t n = 0;
    if (gossip_decode(data, size, in, GOSSIP_NODES_MAX, &n, errmsg, sizeof(errmsg)) != 0) {
        TRIAD_ASSERT(n == 0);
        TRIAD_ASSERT(errmsg[0] != '\0');
        return 0;
    }
    TRIAD_ASSERT(n <= GOSSIP_NODES_MAX);
    struct tbuf again = {0};
    gossip_encode(in, n, &again);
    TRIAD_ASSERT(again.len == size && memcmp(again.data, data, size) == 0);
    tbuf_free(&again);

    fuzz_merge(in, n);
    return 0;
}
