/* fuzz_dynamo.c - libFuzzer harness for leaderless mode's messages.
 *
 * The input is a message as a peer would send it. It must decode or be
 * refused; once decoded it must re-encode to the same bytes (the layout
 * is fixed), and then it is handed to a fresh node (id 1, peers 2 and 3,
 * a few keys and hints in its store) as if it came from the network, and
 * time passes: every handler's body parser (objects, contexts, gossip
 * states, anti-entropy lists) sees what the fuzzer makes, and must neither
 * crash nor break the node.
 *
 *   clang -std=c11 -D_GNU_SOURCE -g -O1 -fsanitize=fuzzer,address,undefined \
 *     -o build-fuzz/fuzz_dynamo tests/fuzz/fuzz_dynamo.c src/core/\*.c src/common/\*.c \
 *     -lxxhash -lm
 *   build-fuzz/fuzz_dynamo -max_total_time=60 tests/fuzz/corpus_dynamo
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../src/common/buf.h"
#include "../../src/common/defs.h"
#include "../../src/core/dynamo.h"
#include "../../src/core/ring.h"

#define FZ_KEYS 16

struct fz_ent {
    bool used;
    uint32_t owner;
    char key[16];
    size_t klen;
    struct tbuf obj;
};

static struct fz_ent fz_store[FZ_KEYS];
static struct dyn *fz_node;

static struct fz_ent *fz_find(uint32_t owner, const char *key, size_t klen)
{
    for (int i = 0; i < FZ_KEYS; i++)
        if (fz_store[i].used && fz_store[i].owner == owner && fz_store[i].klen == klen &&
            memcmp(fz_store[i].key, key, klen) == 0)
            return &fz_store[i];
    return NULL;
}

static void fz_set(uint32_t owner, const char *key, size_t klen, const struct dvv_obj *o)
{
    struct fz_ent *e = fz_find(owner, key, klen);
    if (o == NULL) {
        if (e)
            e->used = false;
        return;
    }
    if (e == NULL) {
        if (klen > sizeof(e->key))
            return; /* the harness keeps short keys only */
        for (int i = 0; i < FZ_KEYS && e == NULL; i++)
            if (!fz_store[i].used)
                e = &fz_store[i];
        if (e == NULL)
            return;
        e->used = true;
        e->owner = owner;
        memcpy(e->key, key, klen);
        e->klen = klen;
    }
    tbuf_reset(&e->obj);
    dvv_encode(o, &e->obj);
}

static bool fz_get(uint32_t owner, const char *key, size_t klen, struct dvv_obj *out)
{
    struct fz_ent *e = fz_find(owner, key, klen);
    if (e == NULL)
        return false;
    if (dvv_decode(out, e->obj.data, e->obj.len, NULL, 0) != 0)
        abort(); /* what we stored must decode */
    return true;
}

static void io_send(void *arg, const struct dyn_msg *m)
{
    /* what the node sends must be well formed */
    struct tbuf b = {0};
    struct dyn_msg back;
    dyn_msg_encode(m, &b);
    if (dyn_msg_decode(&back, b.data, b.len, NULL, 0) != 0)
        abort();
    tbuf_free(&b);
}
static bool io_get(void *arg, const char *k, size_t n, struct dvv_obj *o) { return fz_get(0, k, n, o); }
static void io_put(void *arg, const char *k, size_t n, const struct dvv_obj *o, uint64_t tok)
{
    fz_set(0, k, n, o);
    dyn_durable(fz_node, tok);
}
static bool io_hint_get(void *arg, uint32_t ow, const char *k, size_t n, struct dvv_obj *o)
{
    return fz_get(ow, k, n, o);
}
static void io_hint_put(void *arg, uint32_t ow, const char *k, size_t n, const struct dvv_obj *o,
                        uint64_t tok)
{
    fz_set(ow, k, n, o);
    dyn_durable(fz_node, tok);
}
static uint64_t io_hint_count(void *arg, uint32_t owner)
{
    uint64_t c = 0;
    for (int i = 0; i < FZ_KEYS; i++)
        if (fz_store[i].used && fz_store[i].owner != 0 && (owner == 0 || fz_store[i].owner == owner))
            c++;
    return c;
}
static void fz_scan(uint32_t owner, bool range, uint64_t lo, uint64_t hi, size_t max,
                    dyn_scan_cb cb, void *cbarg)
{
    size_t seen = 0;
    for (int i = 0; i < FZ_KEYS && (max == 0 || seen < max); i++) {
        struct fz_ent *e = &fz_store[i];
        if (!e->used || e->owner != owner)
            continue;
        if (range && !ring_in_range(lo, hi, ring_hash(e->key, e->klen)))
            continue;
        struct dvv_obj o = {0};
        if (dvv_decode(&o, e->obj.data, e->obj.len, NULL, 0) != 0)
            abort();
        cb(cbarg, e->key, e->klen, &o);
        dvv_free(&o);
        seen++;
    }
}
static void io_scan(void *arg, uint64_t lo, uint64_t hi, size_t max, dyn_scan_cb cb, void *a)
{
    fz_scan(0, true, lo, hi, max, cb, a);
}
static void io_scan_hints(void *arg, uint32_t owner, size_t max, dyn_scan_cb cb, void *a)
{
    fz_scan(owner, false, 0, 0, max, cb, a);
}
static void io_reply(void *arg, uint64_t req, const struct dyn_result *r) {}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct dyn_msg m;
    if (dyn_msg_decode(&m, data, size, NULL, 0) != 0)
        return 0;
    struct tbuf again = {0};
    dyn_msg_encode(&m, &again);
    if (again.len != size || memcmp(again.data, data, size) != 0)
        abort();
    tbuf_free(&again);

    memset(fz_store, 0, sizeof(fz_store));
    struct dyn_config cfg;
    dyn_config_default(&cfg, 1);
    cfg.vnodes = 4;
    cfg.merkle_depth = 6;
    cfg.ae_interval_ms = 100;
    struct dyn_io io = {NULL, io_send, io_get, io_put, io_hint_get, io_hint_put, io_hint_count,
                        io_scan, io_scan_hints, io_reply};
    struct gossip_state self;
    memset(&self, 0, sizeof(self));
    self.id = 1;
    self.generation = 1;
    self.status = GOSSIP_NORMAL;
    strcpy(self.host, "127.0.0.1");
    fz_node = dyn_new(&cfg, &io, &self, 42, 1000);
    dyn_add_seed(fz_node, 2);
    dyn_add_seed(fz_node, 3);
    /* a few keys of our own and a hint, so replies and scans have data */
    static const char *const keys[] = {"a", "b", "key", "zz"};
    for (int i = 0; i < 4; i++) {
        struct dyn_req rq = {.id = (uint64_t)i + 1, .op = DYN_OP_SET, .key = keys[i],
                             .klen = strlen(keys[i]), .value = "v", .vlen = 1, .w = 1};
        dyn_submit(fz_node, &rq, 1000);
    }
    struct dvv_obj h = {0};
    struct dvv_clock none = {0};
    dvv_update(&h, &none, 99, 5, 2, false, "h", 1, NULL);
    fz_set(2, "hinted", 6, &h);
    dvv_free(&h);

    m.to = 1; /* as if addressed to us */
    if (m.from == 1)
        m.from = 2;
    if (m.type >= DYN_MSG_AE_TREE && m.type <= DYN_MSG_AE_OBJS) {
        /* name one of our ranges, in our ring, so the exchange's body
         * parsers run (a fuzzer would never guess 128 bits) */
        const struct ring *r = dyn_ring(fz_node);
        size_t i = (size_t)(m.a % ring_ranges(r));
        ring_range_bounds(r, i, &m.a, &m.b);
        m.ring_epoch = dyn_ring_epoch(fz_node);
    }
    dyn_step(fz_node, &m, 1001);
    dyn_tick(fz_node, 1200);
    dyn_tick(fz_node, 5000);
    dyn_free(fz_node);
    for (int i = 0; i < FZ_KEYS; i++)
        tbuf_free(&fz_store[i].obj);
    return 0;
}
