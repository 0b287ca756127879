/* test_peer_proto.c - the peer protocol's codec: frames, the incremental
 * decoder, the handshake and its MACs, and every message.
 *
 * Each message is checked field by field after a round trip through the
 * frame parser and its decoder, and re-encoded to the same bytes. The
 * decoder is fed streams split at every byte; every single-byte corruption
 * of a frame is shown to be caught; every limit is tried at its value and
 * one past it. HMAC-SHA256 is checked against RFC 4231's test vectors.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../src/common/buf.h"
#include "../../src/common/crc32c.h"
#include "../../src/common/defs.h"
#include "../../src/common/mem.h"
#include "../../src/core/raft.h"
#include "../../src/net/peer_proto.h"
#include "test.h"

static char errmsg[256];

static void fill(uint8_t *p, size_t n, unsigned seed)
{
    for (size_t i = 0; i < n; i++)
        p[i] = (uint8_t)(i * 31u + seed * 7u + (i >> 8));
}

/* The one frame in b (exactly), parsed with the full limit. */
static bool parse_whole(const struct tbuf *b, struct peer_frame *f)
{
    size_t consumed = 0;
    int rc = peer_frame_parse(b->data, b->len, PEER_PAYLOAD_BYTES_MAX, f, &consumed, errmsg,
                              sizeof(errmsg));
    return rc == 0 && consumed == b->len;
}

/* Decode a frame's payload with its type's decoder and encode the message
 * again into out. Returns the decoder's or the encoder's code. */
static int reencode(const struct peer_frame *f, struct peer_arena *a, struct tbuf *out)
{
    int rc;
    switch (f->type) {
    case PEER_MSG_HELLO:
    case PEER_MSG_HELLO_ACK: {
        struct peer_hello h;
        rc = peer_decode_hello(f->payload, f->len, &h, NULL, errmsg, sizeof(errmsg));
        if (rc == 0)
            peer_encode_hello(out, f->type, &h);
        return rc;
    }
    case PEER_MSG_AUTH:
    case PEER_MSG_AUTH_OK: {
        uint8_t mac[PEER_MAC_BYTES];
        rc = peer_decode_auth(f->payload, f->len, mac, errmsg, sizeof(errmsg));
        if (rc == 0)
            peer_encode_auth(out, f->type, mac);
        return rc;
    }
    case PEER_MSG_ERROR: {
        struct peer_error e;
        rc = peer_decode_error(f->payload, f->len, &e, errmsg, sizeof(errmsg));
        if (rc == 0)
            peer_encode_error(out, e.code, e.text, e.len);
        return rc;
    }
    case PEER_MSG_PING:
    case PEER_MSG_PONG: {
        uint64_t v;
        rc = peer_decode_ping(f->payload, f->len, &v, errmsg, sizeof(errmsg));
        if (rc == 0)
            peer_encode_ping(out, f->type, v);
        return rc;
    }
    case PEER_MSG_RAFT: {
        struct raft_msg m;
        rc = peer_decode_raft(f->payload, f->len, a, &m, errmsg, sizeof(errmsg));
        return rc == 0 ? peer_encode_raft(out, &m) : rc;
    }
    case PEER_MSG_PROXY_REQ: {
        struct peer_proxy_req q;
        rc = peer_decode_proxy_req(f->payload, f->len, a, &q, errmsg, sizeof(errmsg));
        return rc == 0 ? peer_encode_proxy_req(out, &q) : rc;
    }
    case PEER_MSG_PROXY_REPLY: {
        struct peer_proxy_reply r;
        rc = peer_decode_proxy_reply(f->payload, f->len, &r, errmsg, sizeof(errmsg));
        return rc == 0 ? peer_encode_proxy_reply(out, &r) : rc;
    }
    case PEER_MSG_ANNOUNCE: {
        struct peer_announce an;
        rc = peer_decode_announce(f->payload, f->len, &an, errmsg, sizeof(errmsg));
        return rc == 0 ? peer_encode_announce(out, &an) : rc;
    }
    case PEER_MSG_DYN: {
        struct dyn_msg m;
        rc = peer_decode_dyn(f->payload, f->len, &m, errmsg, sizeof(errmsg));
        return rc == 0 ? peer_encode_dyn(out, &m) : rc;
    }
    }
    return TRIAD_EPROTO;
}

/* The frame in b re-encodes to exactly b. */
static bool reencodes_identically(const struct tbuf *b)
{
    struct peer_frame f;
    struct peer_arena a = {0};
    struct tbuf again = {0};
    bool ok = parse_whole(b, &f) && reencode(&f, &a, &again) == 0 && again.len == b->len &&
              memcmp(again.data, b->data, b->len) == 0;
    tbuf_free(&again);
    peer_arena_free(&a);
    return ok;
}

static bool raft_msg_equal(const struct raft_msg *a, const struct raft_msg *b)
{
    if (a->type != b->type || a->from != b->from || a->to != b->to || a->term != b->term ||
        a->last_log_index != b->last_log_index || a->last_log_term != b->last_log_term ||
        a->transfer != b->transfer || a->reject != b->reject || a->prev_index != b->prev_index ||
        a->prev_term != b->prev_term || a->commit != b->commit || a->n_entries != b->n_entries ||
        a->seq != b->seq || a->index != b->index || a->hint_index != b->hint_index ||
        a->hint_term != b->hint_term || a->snap_index != b->snap_index ||
        a->snap_term != b->snap_term || a->snap_size != b->snap_size || a->offset != b->offset ||
        a->len != b->len || a->done != b->done || a->snap_conf.n != b->snap_conf.n)
        return false;
    for (uint32_t i = 0; i < a->snap_conf.n; i++)
        if (a->snap_conf.members[i].id != b->snap_conf.members[i].id ||
            a->snap_conf.members[i].role != b->snap_conf.members[i].role)
            return false;
    for (uint32_t i = 0; i < a->n_entries; i++) {
        const struct raft_entry *x = &a->entries[i], *y = &b->entries[i];
        if (x->term != y->term || x->index != y->index || x->type != y->type || x->len != y->len)
            return false;
        if (x->len > 0 && memcmp(x->data, y->data, x->len) != 0)
            return false;
    }
    if (a->len > 0 && memcmp(a->data, b->data, a->len) != 0)
        return false;
    return true;
}

/* m through a frame and back: the decoded message must equal m field by
 * field and re-encode to the same bytes. */
static bool raft_round_trip(const struct raft_msg *m)
{
    struct tbuf b = {0};
    struct peer_frame f;
    struct peer_arena a = {0};
    struct raft_msg back;
    bool ok = peer_encode_raft(&b, m) == 0 && parse_whole(&b, &f) && f.type == PEER_MSG_RAFT &&
              peer_decode_raft(f.payload, f.len, &a, &back, errmsg, sizeof(errmsg)) == 0 &&
              raft_msg_equal(m, &back) && reencodes_identically(&b);
    if (ok && back.n_entries == 0)
        ok = back.entries == NULL;
    if (ok && back.len == 0)
        ok = back.data == NULL;
    peer_arena_free(&a);
    tbuf_free(&b);
    return ok;
}

static void hello_init(struct peer_hello *h, raft_id from, raft_id to, bool auth)
{
    memset(h, 0, sizeof(*h));
    h->version = PEER_PROTOCOL_VERSION;
    h->cluster_id = 0x1122334455667788ull;
    h->from = from;
    h->to = to;
    fill(h->nonce, sizeof(h->nonce), from);
    h->auth = auth;
}

/* ---- frames ---- */

TEST(peer_ping_frame_has_the_documented_bytes)
{
    struct tbuf b = {0};
    peer_encode_ping(&b, PEER_MSG_PING, 0x0807060504030201ull);
    const uint8_t want[20] = {8, 0, 0, 0, PEER_MSG_PING, 1, 0, 0, 0, 0, 0, 0,
                              1, 2, 3, 4, 5, 6, 7, 8};
    CHECK_EQ_INT(b.len, 20);
    CHECK(memcmp(b.data, want, 8) == 0);
    CHECK(memcmp(b.data + 12, want + 12, 8) == 0);
    /* the checksum: header bytes 0..7, then the payload */
    uint32_t crc = crc32c(crc32c(0, want, 8), want + 12, 8);
    CHECK_EQ_INT(tbuf_read_u32le(b.data + 8), crc);
    tbuf_free(&b);
}

TEST(peer_frame_parse_waits_for_every_byte_of_a_frame)
{
    struct tbuf b = {0};
    struct peer_frame f;
    size_t consumed = 99;
    peer_encode_ping(&b, PEER_MSG_PONG, 42);
    for (size_t n = 0; n < b.len; n++) {
        CHECK_EQ_INT(peer_frame_parse(b.data, n, PEER_PAYLOAD_BYTES_MAX, &f, &consumed, NULL, 0),
                     TRIAD_EAGAIN);
        CHECK_EQ_INT(consumed, 0);
    }
    CHECK_EQ_INT(peer_frame_parse(b.data, b.len, PEER_PAYLOAD_BYTES_MAX, &f, &consumed, NULL, 0),
                 0);
    CHECK_EQ_INT(consumed, b.len);
    CHECK_EQ_INT(f.type, PEER_MSG_PONG);
    CHECK_EQ_INT(f.len, 8);
    tbuf_free(&b);
}

/* A header with a field patched, and a checksum that is right for it. */
static void header_with(uint8_t h[PEER_HEADER_BYTES], uint32_t len, uint8_t type, uint8_t version,
                        uint16_t flags)
{
    tbuf_write_u32le(h, len);
    h[4] = type;
    h[5] = version;
    h[6] = (uint8_t)flags;
    h[7] = (uint8_t)(flags >> 8);
    tbuf_write_u32le(h + 8, crc32c(0, h, 8));
}

TEST(peer_decoder_refuses_a_bad_header_before_its_payload)
{
    struct {
        uint32_t len;
        uint8_t type, version;
        uint16_t flags;
        const char *msg;
    } cases[] = {
        {8, PEER_MSG_PING, 2, 0, "unsupported frame version 2 (this node speaks 1)"},
        {8, PEER_MSG_PING, 0, 0, "unsupported frame version 0 (this node speaks 1)"},
        {8, PEER_MSG_PING, 1, 1, "unknown frame flags 0x0001"},
        {8, PEER_MSG_PING, 1, 0x8000, "unknown frame flags 0x8000"},
        {8, 0, 1, 0, "unknown frame type 0"},
        {8, PEER_MSG_TYPE_MAX + 1, 1, 0, "unknown frame type 13"},
        {PEER_PAYLOAD_BYTES_MAX + 1, PEER_MSG_RAFT, 1, 0,
         "RAFT frame of 67112949 bytes exceeds the limit of 67112948 bytes"},
        {UINT32_MAX, PEER_MSG_RAFT, 1, 0,
         "RAFT frame of 4294967295 bytes exceeds the limit of 67112948 bytes"},
    };
    for (size_t i = 0; i < TRIAD_ARRAY_LEN(cases); i++) {
        uint8_t h[PEER_HEADER_BYTES];
        struct peer_decoder d;
        struct peer_frame f;
        header_with(h, cases[i].len, cases[i].type, cases[i].version, cases[i].flags);
        peer_decoder_init(&d);
        peer_decoder_feed(&d, h, sizeof(h) - 1);
        CHECK_EQ_INT(peer_decoder_next(&d, &f), TRIAD_EAGAIN);
        peer_decoder_feed(&d, h + sizeof(h) - 1, 1);
        CHECK_EQ_INT(peer_decoder_next(&d, &f), TRIAD_EPROTO);
        CHECK_MEM_STR(d.errmsg, strlen(d.errmsg), cases[i].msg);
        /* the error sticks: the stream cannot be resynchronised */
        struct tbuf ping = {0};
        peer_encode_ping(&ping, PEER_MSG_PING, 1);
        peer_decoder_feed(&d, ping.data, ping.len);
        CHECK_EQ_INT(peer_decoder_next(&d, &f), TRIAD_EPROTO);
        tbuf_free(&ping);
        peer_decoder_free(&d);
    }
}

TEST(peer_decoder_limit_is_a_setting)
{
    uint8_t h[PEER_HEADER_BYTES];
    struct peer_decoder d;
    struct peer_frame f;

    /* the handshake limit: the largest handshake frame passes, one more byte not */
    header_with(h, PEER_HANDSHAKE_PAYLOAD_BYTES_MAX, PEER_MSG_ERROR, 1, 0);
    peer_decoder_init(&d);
    d.payload_bytes_max = PEER_HANDSHAKE_PAYLOAD_BYTES_MAX;
    peer_decoder_feed(&d, h, sizeof(h));
    CHECK_EQ_INT(peer_decoder_next(&d, &f), TRIAD_EAGAIN);
    peer_decoder_free(&d);

    header_with(h, PEER_HANDSHAKE_PAYLOAD_BYTES_MAX + 1, PEER_MSG_ERROR, 1, 0);
    peer_decoder_init(&d);
    d.payload_bytes_max = PEER_HANDSHAKE_PAYLOAD_BYTES_MAX;
    peer_decoder_feed(&d, h, sizeof(h));
    CHECK_EQ_INT(peer_decoder_next(&d, &f), TRIAD_EPROTO);
    peer_decoder_free(&d);

    /* the same header is fine once the limit is the full one */
    peer_decoder_init(&d);
    peer_decoder_feed(&d, h, sizeof(h));
    CHECK_EQ_INT(peer_decoder_next(&d, &f), TRIAD_EAGAIN);
    size_t avail = 0;
    peer_decoder_space(&d, &avail);
    CHECK(avail >= PEER_HANDSHAKE_PAYLOAD_BYTES_MAX + 1);
    peer_decoder_free(&d);
}

/* One frame of every type, as a stream. */
static void build_stream(struct tbuf *s)
{
    struct peer_hello h;
    uint8_t mac[PEER_MAC_BYTES];
    static uint8_t data[3][700], chunk[1500], reply[300];
    struct raft_entry e[3] = {
        {.term = 3, .index = 11, .type = RAFT_ENTRY_NORMAL, .len = 700, .data = data[0]},
        {.term = 4, .index = 12, .type = RAFT_ENTRY_NOOP, .len = 0, .data = NULL},
        {.term = 4, .index = 13, .type = RAFT_ENTRY_NORMAL, .len = 1, .data = data[2]},
    };
    fill(data[0], sizeof(data[0]), 1);
    fill(data[2], sizeof(data[2]), 2);
    fill(chunk, sizeof(chunk), 3);
    fill(reply, sizeof(reply), 4);
    fill(mac, sizeof(mac), 5);

    hello_init(&h, 1, 2, true);
    peer_encode_hello(s, PEER_MSG_HELLO, &h);
    hello_init(&h, 2, 1, true);
    peer_encode_hello(s, PEER_MSG_HELLO_ACK, &h);
    peer_encode_auth(s, PEER_MSG_AUTH, mac);
    peer_encode_auth(s, PEER_MSG_AUTH_OK, mac);
    peer_encode_ping(s, PEER_MSG_PING, 77);
    peer_encode_ping(s, PEER_MSG_PONG, 77);

    struct raft_msg m = {.type = RAFT_MSG_APPEND, .from = 1, .to = 2, .term = 4,
                         .prev_index = 10, .prev_term = 3, .commit = 9, .seq = 5,
                         .n_entries = 3, .entries = e};
    TRIAD_ASSERT(peer_encode_raft(s, &m) == 0);
    struct raft_msg sn = {.type = RAFT_MSG_SNAPSHOT, .from = 1, .to = 3, .term = 4,
                          .snap_index = 100, .snap_term = 3, .snap_size = 4000, .offset = 1500,
                          .len = sizeof(chunk), .data = chunk};
    sn.snap_conf.n = 2;
    sn.snap_conf.members[0] = (struct raft_member){1, RAFT_VOTER};
    sn.snap_conf.members[1] = (struct raft_member){3, RAFT_LEARNER};
    TRIAD_ASSERT(peer_encode_raft(s, &sn) == 0);

    char *argv[] = {"SET", "key", "value"};
    size_t argvlen[] = {3, 3, 5};
    struct peer_proxy_req q = {.req_id = 9, .client_id = 8, .seq = 7, .db = 3, .proto = 3,
                               .argc = 3, .argv = argv, .argvlen = argvlen};
    TRIAD_ASSERT(peer_encode_proxy_req(s, &q) == 0);
    struct peer_proxy_reply r = {.req_id = 9, .index = 77, .len = sizeof(reply), .data = reply};
    TRIAD_ASSERT(peer_encode_proxy_reply(s, &r) == 0);
    struct peer_announce an = {.client_port = 7379};
    strcpy(an.host, "127.0.0.1");
    TRIAD_ASSERT(peer_encode_announce(s, &an) == 0);
    static const char ctxb[] = "context", val[] = "value";
    struct dyn_msg dm = {.type = DYN_MSG_UPDATE, .from = 1, .to = 2, .req = 5,
                         .ts = 0x123456789ull, .op = DYN_UPD_SET, .key = "key", .klen = 3,
                         .body = ctxb, .blen = 7, .body2 = val, .b2len = 5};
    TRIAD_ASSERT(peer_encode_dyn(s, &dm) == 0);
    peer_encode_errorf(s, PEER_ERR_SHUTDOWN, "node %d is stopping", 1);
}

/* Frames as a log: type, length and payload of each, then "E" and the
 * error if the stream ended in one, or "P" and the count of pending bytes. */
static void log_frame(struct tbuf *log, const struct peer_frame *f)
{
    tbuf_appendc(log, (char)f->type);
    tbuf_append_u32le(log, f->len);
    tbuf_append(log, f->payload, f->len);
}

static void drain(struct peer_decoder *d, struct tbuf *log, int *frames)
{
    struct peer_frame f;
    int rc;
    while ((rc = peer_decoder_next(d, &f)) == 0) {
        log_frame(log, &f);
        (*frames)++;
    }
    if (rc == TRIAD_EPROTO)
        tbuf_appendf(log, "E%s", d->errmsg);
}

static void log_end(struct peer_decoder *d, struct tbuf *log)
{
    tbuf_appendf(log, "P%zu", peer_decoder_pending(d));
}

/* The stream parsed with peer_frame_parse in one go. */
static int reference_log(const struct tbuf *s, struct tbuf *log)
{
    size_t off = 0;
    int frames = 0;
    for (;;) {
        struct peer_frame f;
        size_t consumed;
        int rc = peer_frame_parse(s->data + off, s->len - off, PEER_PAYLOAD_BYTES_MAX, &f,
                                  &consumed, errmsg, sizeof(errmsg));
        if (rc != 0) {
            if (rc == TRIAD_EPROTO)
                tbuf_appendf(log, "E%s", errmsg);
            tbuf_appendf(log, "P%zu", s->len - off);
            return frames;
        }
        log_frame(log, &f);
        off += consumed;
        frames++;
    }
}

static bool logs_equal(const struct tbuf *a, const struct tbuf *b)
{
    return a->len == b->len && memcmp(a->data, b->data, a->len) == 0;
}

TEST(peer_stream_split_at_every_byte_decodes_identically)
{
    struct tbuf s = {0}, ref = {0};
    build_stream(&s);
    CHECK_EQ_INT(reference_log(&s, &ref), 13);

    for (size_t split = 0; split <= s.len; split++) {
        struct peer_decoder d;
        struct tbuf log = {0};
        int frames = 0;
        peer_decoder_init(&d);
        peer_decoder_feed(&d, s.data, split);
        drain(&d, &log, &frames);
        peer_decoder_feed(&d, s.data + split, s.len - split);
        drain(&d, &log, &frames);
        log_end(&d, &log);
        if (!logs_equal(&log, &ref)) {
            CHECK(logs_equal(&log, &ref));
            fprintf(stderr, "  split at %zu\n", split);
        }
        tbuf_free(&log);
        peer_decoder_free(&d);
    }
    tbuf_free(&ref);
    tbuf_free(&s);
}

TEST(peer_stream_fed_byte_by_byte_or_read_in_place_decodes_identically)
{
    struct tbuf s = {0}, ref = {0};
    build_stream(&s);
    reference_log(&s, &ref);

    struct peer_decoder d;
    struct tbuf log = {0};
    int frames = 0;
    peer_decoder_init(&d);
    for (size_t i = 0; i < s.len; i++) {
        peer_decoder_feed(&d, s.data + i, 1);
        drain(&d, &log, &frames);
    }
    log_end(&d, &log);
    CHECK(logs_equal(&log, &ref));
    CHECK_EQ_INT(frames, 13);
    peer_decoder_free(&d);
    tbuf_free(&log);

    /* reads straight into the decoder, of 1 to 13 bytes */
    for (size_t step0 = 1; step0 <= 13; step0++) {
        peer_decoder_init(&d);
        tbuf_reset(&log);
        frames = 0;
        size_t off = 0, step = step0;
        while (off < s.len) {
            size_t avail = 0;
            uint8_t *w = peer_decoder_space(&d, &avail);
            CHECK(avail >= PEER_DECODER_READ_BYTES);
            size_t n = TRIAD_MIN(TRIAD_MIN(step, avail), s.len - off);
            memcpy(w, s.data + off, n);
            peer_decoder_commit(&d, n);
            off += n;
            step = step % 13 + 1;
            drain(&d, &log, &frames);
        }
        log_end(&d, &log);
        CHECK(logs_equal(&log, &ref));
        peer_decoder_free(&d);
    }
    tbuf_free(&log);
    tbuf_free(&ref);
    tbuf_free(&s);
}

TEST(peer_every_frame_of_the_stream_reencodes_to_the_same_bytes)
{
    struct tbuf s = {0};
    build_stream(&s);
    size_t off = 0;
    int frames = 0;
    struct peer_arena a = {0};
    while (off < s.len) {
        struct peer_frame f;
        size_t consumed;
        CHECK_EQ_INT(peer_frame_parse(s.data + off, s.len - off, PEER_PAYLOAD_BYTES_MAX, &f,
                                      &consumed, errmsg, sizeof(errmsg)),
                     0);
        struct tbuf again = {0};
        CHECK_EQ_INT(reencode(&f, &a, &again), 0);
        CHECK(again.len == consumed && memcmp(again.data, s.data + off, consumed) == 0);
        tbuf_free(&again);
        off += consumed;
        frames++;
    }
    CHECK_EQ_INT(frames, 13);
    peer_arena_free(&a);
    tbuf_free(&s);
}

TEST(peer_every_single_byte_corruption_of_a_frame_is_detected)
{
    /* Every frame of the stream; every byte of it; every one of the 255
     * values that byte can wrongly take. A length made longer is fed zeros
     * up to the (lowered) limit so that the parser must decide. */
    const uint32_t limit = 4096;
    static uint8_t buf[PEER_HEADER_BYTES + 4096 + 4096];
    struct tbuf s = {0};
    build_stream(&s);
    size_t off = 0;
    long tried = 0, detected = 0;
    while (off < s.len) {
        struct peer_frame f;
        size_t n;
        TRIAD_ASSERT(peer_frame_parse(s.data + off, s.len - off, limit, &f, &n, NULL, 0) == 0);
        TRIAD_ASSERT(n <= PEER_HEADER_BYTES + limit);
        for (size_t i = 0; i < n; i++) {
            for (unsigned x = 1; x < 256; x++) {
                memset(buf, 0, sizeof(buf));
                memcpy(buf, s.data + off, n);
                buf[i] ^= (uint8_t)x;
                size_t consumed;
                int rc = peer_frame_parse(buf, sizeof(buf), limit, &f, &consumed, NULL, 0);
                tried++;
                if (rc == TRIAD_EPROTO)
                    detected++;
                else
                    fprintf(stderr, "  missed: byte %zu of the frame at %zu, xor 0x%02x\n", i,
                            off, x);
            }
        }
        off += n;
    }
    CHECK_EQ_INT(detected, tried);
    CHECK(tried > 200000);
    tbuf_free(&s);
}

TEST(peer_decoder_gives_memory_back_after_a_big_frame)
{
    struct peer_decoder d;
    struct peer_frame f;
    struct tbuf big = {0}, ping = {0};
    size_t len = 3u << 20;
    uint8_t *data = malloc(len);
    fill(data, len, 9);
    struct peer_proxy_reply r = {.req_id = 1, .len = (uint32_t)len, .data = data};
    CHECK_EQ_INT(peer_encode_proxy_reply(&big, &r), 0);
    peer_encode_ping(&ping, PEER_MSG_PING, 5);

    peer_decoder_init(&d);
    /* the header first: the read space then covers the rest of the frame */
    peer_decoder_feed(&d, big.data, PEER_HEADER_BYTES);
    size_t avail = 0;
    uint8_t *w = peer_decoder_space(&d, &avail);
    CHECK(avail >= big.len - PEER_HEADER_BYTES);
    CHECK(d.cap <= big.len + PEER_DECODER_READ_BYTES); /* not doubled past the frame */
    memcpy(w, big.data + PEER_HEADER_BYTES, big.len - PEER_HEADER_BYTES);
    peer_decoder_commit(&d, big.len - PEER_HEADER_BYTES);
    CHECK_EQ_INT(peer_decoder_next(&d, &f), 0);
    CHECK_EQ_INT(f.len, len + PEER_PROXY_REPLY_HEADER_BYTES);
    CHECK(memcmp(f.payload + PEER_PROXY_REPLY_HEADER_BYTES, data, len) == 0);
    CHECK_EQ_INT(peer_decoder_next(&d, &f), TRIAD_EAGAIN);

    peer_decoder_feed(&d, ping.data, ping.len);
    CHECK(d.cap <= PEER_DECODER_KEEP_BYTES);
    CHECK_EQ_INT(peer_decoder_next(&d, &f), 0);
    CHECK_EQ_INT(f.type, PEER_MSG_PING);
    CHECK_EQ_INT(peer_decoder_pending(&d), 0);
    peer_decoder_free(&d);
    tbuf_free(&big);
    tbuf_free(&ping);
    free(data);
}

/* ---- handshake ---- */

TEST(peer_hello_round_trips_with_every_field)
{
    for (int ack = 0; ack <= 1; ack++) {
        for (int auth = 0; auth <= 1; auth++) {
            struct peer_hello h, back;
            struct tbuf b = {0};
            struct peer_frame f;
            uint16_t code = 99;
            uint8_t type = ack ? PEER_MSG_HELLO_ACK : PEER_MSG_HELLO;
            hello_init(&h, 0xfffffffe, 0x80000001, auth);
            h.cluster_id = UINT64_MAX - 1;
            peer_encode_hello(&b, type, &h);
            CHECK_EQ_INT(b.len, PEER_HEADER_BYTES + PEER_HELLO_BYTES);
            CHECK(parse_whole(&b, &f));
            CHECK_EQ_INT(f.type, type);
            CHECK(memcmp(f.payload, "TRIADPR1", 8) == 0);
            CHECK_EQ_INT(peer_decode_hello(f.payload, f.len, &back, &code, errmsg,
                                           sizeof(errmsg)),
                         0);
            CHECK_EQ_INT(code, 0);
            CHECK_EQ_INT(back.version, PEER_PROTOCOL_VERSION);
            CHECK(back.cluster_id == h.cluster_id);
            CHECK(back.from == h.from);
            CHECK(back.to == h.to);
            CHECK(memcmp(back.nonce, h.nonce, PEER_NONCE_BYTES) == 0);
            CHECK(back.auth == h.auth);
            CHECK(reencodes_identically(&b));
            tbuf_free(&b);
        }
    }
}

/* The HELLO payload of h with byte `at` replaced by v (at < 0: as is). */
static int decode_patched_hello(const struct peer_hello *h, size_t len, int at, uint8_t v,
                                uint16_t *code)
{
    struct tbuf b = {0};
    struct peer_hello back;
    uint8_t p[64] = {0};
    peer_encode_hello(&b, PEER_MSG_HELLO, h);
    memcpy(p, b.data + PEER_HEADER_BYTES, PEER_HELLO_BYTES);
    if (at >= 0)
        p[at] = v;
    int rc = peer_decode_hello(p, len, &back, code, errmsg, sizeof(errmsg));
    tbuf_free(&b);
    return rc;
}

TEST(peer_hello_refuses_bad_magic_version_length_and_flag)
{
    struct peer_hello h;
    uint16_t code;
    hello_init(&h, 1, 2, false);

    CHECK_EQ_INT(decode_patched_hello(&h, PEER_HELLO_BYTES, 0, 'X', &code), TRIAD_EPROTO);
    CHECK_EQ_INT(code, PEER_ERR_PROTOCOL);
    CHECK_MEM_STR(errmsg, strlen(errmsg), "not a Triad peer: bad magic in hello");
    CHECK_EQ_INT(decode_patched_hello(&h, PEER_HELLO_BYTES, 7, '2', &code), TRIAD_EPROTO);
    CHECK_EQ_INT(code, PEER_ERR_PROTOCOL);

    /* another version is told apart before the length: its hello may be longer */
    h.version = 3;
    CHECK_EQ_INT(decode_patched_hello(&h, PEER_HELLO_BYTES + 20, -1, 0, &code), TRIAD_EPROTO);
    CHECK_EQ_INT(code, PEER_ERR_VERSION);
    CHECK_MEM_STR(errmsg, strlen(errmsg),
                  "protocol version mismatch: this node speaks version 2, the peer version 3");
    h.version = 0;
    CHECK_EQ_INT(decode_patched_hello(&h, PEER_HELLO_BYTES, -1, 0, &code), TRIAD_EPROTO);
    CHECK_EQ_INT(code, PEER_ERR_VERSION);
    h.version = PEER_PROTOCOL_VERSION;

    for (size_t len = 0; len < PEER_HELLO_BYTES + 4; len++) {
        int rc = decode_patched_hello(&h, len, -1, 0, &code);
        CHECK_EQ_INT(rc, len == PEER_HELLO_BYTES ? 0 : TRIAD_EPROTO);
        CHECK_EQ_INT(code, len == PEER_HELLO_BYTES ? 0 : PEER_ERR_PROTOCOL);
    }
    CHECK_EQ_INT(decode_patched_hello(&h, PEER_HELLO_BYTES, PEER_HELLO_BYTES - 1, 2, &code),
                 TRIAD_EPROTO);
    CHECK_MEM_STR(errmsg, strlen(errmsg), "bad auth flag 2 in hello");
}

TEST(peer_hello_check_names_each_mismatch)
{
    struct peer_hello h;
    uint16_t code;
    const uint64_t cluster = 0x1122334455667788ull;

    hello_init(&h, 1, 2, true);
    CHECK_EQ_INT(peer_hello_check(&h, cluster, 2, 0, true, &code, errmsg, sizeof(errmsg)), 0);
    CHECK_EQ_INT(code, 0);
    CHECK_EQ_INT(peer_hello_check(&h, cluster, 2, 1, true, &code, errmsg, sizeof(errmsg)), 0);

    h.cluster_id = 8;
    CHECK_EQ_INT(peer_hello_check(&h, 7, 2, 0, true, &code, errmsg, sizeof(errmsg)),
                 TRIAD_EPROTO);
    CHECK_EQ_INT(code, PEER_ERR_CLUSTER);
    CHECK_MEM_STR(errmsg, strlen(errmsg), "cluster id mismatch: expected 7, got 8");
    h.cluster_id = cluster;

    CHECK_EQ_INT(peer_hello_check(&h, cluster, 3, 0, true, &code, errmsg, sizeof(errmsg)),
                 TRIAD_EPROTO);
    CHECK_EQ_INT(code, PEER_ERR_NODE);
    CHECK_MEM_STR(errmsg, strlen(errmsg), "node id mismatch: this is node 3, the peer wants node 2");

    CHECK_EQ_INT(peer_hello_check(&h, cluster, 2, 5, true, &code, errmsg, sizeof(errmsg)),
                 TRIAD_EPROTO);
    CHECK_EQ_INT(code, PEER_ERR_NODE);
    CHECK_MEM_STR(errmsg, strlen(errmsg), "node id mismatch: expected node 5, got node 1");

    h.from = 0;
    CHECK_EQ_INT(peer_hello_check(&h, cluster, 2, 0, true, &code, errmsg, sizeof(errmsg)),
                 TRIAD_EPROTO);
    CHECK_EQ_INT(code, PEER_ERR_NODE);
    h.from = 2; /* a node talking to itself */
    CHECK_EQ_INT(peer_hello_check(&h, cluster, 2, 0, true, &code, errmsg, sizeof(errmsg)),
                 TRIAD_EPROTO);
    CHECK_EQ_INT(code, PEER_ERR_NODE);
    CHECK_MEM_STR(errmsg, strlen(errmsg), "bad peer node id 2 (this is node 2)");
    h.from = 1;

    /* a secret on one side only: refused by the side that has it and the other */
    h.auth = false;
    CHECK_EQ_INT(peer_hello_check(&h, cluster, 2, 0, true, &code, errmsg, sizeof(errmsg)),
                 TRIAD_EPROTO);
    CHECK_EQ_INT(code, PEER_ERR_AUTH);
    CHECK_MEM_STR(errmsg, strlen(errmsg),
                  "authentication mismatch: node 2 has a cluster secret, node 1 has none");
    h.auth = true;
    CHECK_EQ_INT(peer_hello_check(&h, cluster, 2, 0, false, &code, errmsg, sizeof(errmsg)),
                 TRIAD_EPROTO);
    CHECK_EQ_INT(code, PEER_ERR_AUTH);
    CHECK_MEM_STR(errmsg, strlen(errmsg),
                  "authentication mismatch: node 1 has a cluster secret, node 2 has none");
    h.auth = false;
    CHECK_EQ_INT(peer_hello_check(&h, cluster, 2, 0, false, &code, errmsg, sizeof(errmsg)), 0);
}

static void unhex(const char *hex, uint8_t *out)
{
    for (size_t i = 0; hex[2 * i] != '\0'; i++) {
        unsigned v;
        sscanf(hex + 2 * i, "%2x", &v);
        out[i] = (uint8_t)v;
    }
}

TEST(peer_hmac_sha256_matches_rfc4231)
{
    uint8_t key[131], want[PEER_MAC_BYTES], mac[PEER_MAC_BYTES];

    /* test case 1 */
    memset(key, 0x0b, 20);
    unhex("b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7", want);
    CHECK_EQ_INT(peer_hmac_sha256(key, 20, "Hi There", 8, mac), 0);
    CHECK(memcmp(mac, want, sizeof(mac)) == 0);

    /* test case 2: a key shorter than the output */
    unhex("5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843", want);
    CHECK_EQ_INT(peer_hmac_sha256("Jefe", 4, "what do ya want for nothing?", 28, mac), 0);
    CHECK(memcmp(mac, want, sizeof(mac)) == 0);

    /* test case 6: a key longer than the block, hashed first */
    memset(key, 0xaa, sizeof(key));
    unhex("60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54", want);
    const char *msg = "Test Using Larger Than Block-Size Key - Hash Key First";
    CHECK_EQ_INT(peer_hmac_sha256(key, sizeof(key), msg, strlen(msg), mac), 0);
    CHECK(memcmp(mac, want, sizeof(mac)) == 0);
}

/* The whole handshake with a secret on each side, through frames. Returns
 * whether each side accepted the other's proof. */
static void handshake(const char *secret_c, const char *secret_a, bool *acceptor_ok,
                      bool *connector_ok)
{
    struct peer_hello hello, ack, got_hello, got_ack;
    struct tbuf wire = {0};
    struct peer_frame f;
    uint8_t mac[PEER_MAC_BYTES], got[PEER_MAC_BYTES], want[PEER_MAC_BYTES];
    const uint64_t cluster = 0x1122334455667788ull;

    /* connector 1 -> acceptor 2 */
    hello_init(&hello, 1, 2, true);
    peer_encode_hello(&wire, PEER_MSG_HELLO, &hello);
    CHECK(parse_whole(&wire, &f));
    CHECK_EQ_INT(peer_decode_hello(f.payload, f.len, &got_hello, NULL, errmsg, sizeof(errmsg)), 0);
    CHECK_EQ_INT(peer_hello_check(&got_hello, cluster, 2, 0, true, NULL, errmsg, sizeof(errmsg)),
                 0);

    tbuf_reset(&wire);
    hello_init(&ack, 2, got_hello.from, true);
    peer_encode_hello(&wire, PEER_MSG_HELLO_ACK, &ack);
    CHECK(parse_whole(&wire, &f));
    CHECK_EQ_INT(peer_decode_hello(f.payload, f.len, &got_ack, NULL, errmsg, sizeof(errmsg)), 0);
    CHECK_EQ_INT(peer_hello_check(&got_ack, cluster, 1, 2, true, NULL, errmsg, sizeof(errmsg)),
                 0);

    /* AUTH: the connector proves itself with what it sent and received */
    tbuf_reset(&wire);
    CHECK_EQ_INT(peer_auth_compute(secret_c, strlen(secret_c), PEER_AUTH_CONNECTOR, &hello,
                                   &got_ack, mac),
                 0);
    peer_encode_auth(&wire, PEER_MSG_AUTH, mac);
    CHECK(parse_whole(&wire, &f));
    CHECK_EQ_INT(f.type, PEER_MSG_AUTH);
    CHECK_EQ_INT(peer_decode_auth(f.payload, f.len, got, errmsg, sizeof(errmsg)), 0);
    CHECK_EQ_INT(peer_auth_compute(secret_a, strlen(secret_a), PEER_AUTH_CONNECTOR, &got_hello,
                                   &ack, want),
                 0);
    *acceptor_ok = peer_auth_equal(got, want);

    /* AUTH_OK: the acceptor proves itself in turn */
    tbuf_reset(&wire);
    CHECK_EQ_INT(peer_auth_compute(secret_a, strlen(secret_a), PEER_AUTH_ACCEPTOR, &got_hello,
                                   &ack, mac),
                 0);
    CHECK(!peer_auth_equal(mac, want)); /* the roles give different MACs */
    peer_encode_auth(&wire, PEER_MSG_AUTH_OK, mac);
    CHECK(parse_whole(&wire, &f));
    CHECK_EQ_INT(peer_decode_auth(f.payload, f.len, got, errmsg, sizeof(errmsg)), 0);
    CHECK_EQ_INT(peer_auth_compute(secret_c, strlen(secret_c), PEER_AUTH_ACCEPTOR, &hello,
                                   &got_ack, want),
                 0);
    *connector_ok = peer_auth_equal(got, want);
    tbuf_free(&wire);
}

TEST(peer_auth_round_trip_proves_both_sides)
{
    bool a = false, c = false;
    handshake("s3cret", "s3cret", &a, &c);
    CHECK(a);
    CHECK(c);
}

TEST(peer_auth_with_a_wrong_secret_fails_on_both_sides)
{
    bool a = true, c = true;
    handshake("s3cret", "s3creT", &a, &c);
    CHECK(!a);
    CHECK(!c);
}

TEST(peer_auth_mac_covers_every_input)
{
    struct peer_hello hello, ack, h2, a2;
    uint8_t base[PEER_MAC_BYTES], mac[PEER_MAC_BYTES];
    hello_init(&hello, 1, 2, true);
    hello_init(&ack, 2, 1, true);
    CHECK_EQ_INT(peer_auth_compute("k", 1, PEER_AUTH_CONNECTOR, &hello, &ack, base), 0);

    /* the documented input, computed by hand */
    uint8_t in[62];
    memcpy(in, "triad-peer-v1", 13);
    in[13] = PEER_AUTH_CONNECTOR;
    tbuf_write_u64le(in + 14, hello.cluster_id);
    tbuf_write_u32le(in + 22, 1);
    tbuf_write_u32le(in + 26, 2);
    memcpy(in + 30, hello.nonce, 16);
    memcpy(in + 46, ack.nonce, 16);
    CHECK_EQ_INT(peer_hmac_sha256("k", 1, in, sizeof(in), mac), 0);
    CHECK(peer_auth_equal(mac, base));

    h2 = hello;
    h2.nonce[15] ^= 1;
    CHECK_EQ_INT(peer_auth_compute("k", 1, PEER_AUTH_CONNECTOR, &h2, &ack, mac), 0);
    CHECK(!peer_auth_equal(mac, base));
    a2 = ack;
    a2.nonce[0] ^= 1;
    CHECK_EQ_INT(peer_auth_compute("k", 1, PEER_AUTH_CONNECTOR, &hello, &a2, mac), 0);
    CHECK(!peer_auth_equal(mac, base));
    a2 = ack;
    a2.from = 3;
    CHECK_EQ_INT(peer_auth_compute("k", 1, PEER_AUTH_CONNECTOR, &hello, &a2, mac), 0);
    CHECK(!peer_auth_equal(mac, base));
    h2 = hello;
    h2.cluster_id++;
    CHECK_EQ_INT(peer_auth_compute("k", 1, PEER_AUTH_CONNECTOR, &h2, &ack, mac), 0);
    CHECK(!peer_auth_equal(mac, base));
    CHECK_EQ_INT(peer_auth_compute("k", 1, PEER_AUTH_ACCEPTOR, &hello, &ack, mac), 0);
    CHECK(!peer_auth_equal(mac, base));
}

TEST(peer_auth_secret_length_is_bounded)
{
    struct peer_hello hello, ack;
    uint8_t mac[PEER_MAC_BYTES];
    static char secret[PEER_SECRET_BYTES_MAX + 1];
    memset(secret, 'x', sizeof(secret));
    hello_init(&hello, 1, 2, true);
    hello_init(&ack, 2, 1, true);
    CHECK_EQ_INT(peer_auth_compute(secret, 0, PEER_AUTH_CONNECTOR, &hello, &ack, mac),
                 TRIAD_EINVAL);
    CHECK_EQ_INT(peer_auth_compute(NULL, 5, PEER_AUTH_CONNECTOR, &hello, &ack, mac), TRIAD_EINVAL);
    CHECK_EQ_INT(peer_auth_compute(secret, PEER_SECRET_BYTES_MAX, PEER_AUTH_CONNECTOR, &hello,
                                   &ack, mac),
                 0);
    CHECK_EQ_INT(peer_auth_compute(secret, PEER_SECRET_BYTES_MAX + 1, PEER_AUTH_CONNECTOR, &hello,
                                   &ack, mac),
                 TRIAD_EINVAL);
}

TEST(peer_auth_equal_sees_a_difference_at_every_byte)
{
    uint8_t a[PEER_MAC_BYTES], b[PEER_MAC_BYTES];
    fill(a, sizeof(a), 3);
    memcpy(b, a, sizeof(b));
    CHECK(peer_auth_equal(a, b));
    for (size_t i = 0; i < PEER_MAC_BYTES; i++) {
        b[i] ^= 0x80;
        CHECK(!peer_auth_equal(a, b));
        b[i] ^= 0x80;
    }
}

TEST(peer_auth_frame_must_hold_exactly_a_mac)
{
    uint8_t p[PEER_MAC_BYTES + 1] = {0}, mac[PEER_MAC_BYTES];
    CHECK_EQ_INT(peer_decode_auth(p, PEER_MAC_BYTES, mac, errmsg, sizeof(errmsg)), 0);
    CHECK_EQ_INT(peer_decode_auth(p, PEER_MAC_BYTES - 1, mac, errmsg, sizeof(errmsg)),
                 TRIAD_EPROTO);
    CHECK_EQ_INT(peer_decode_auth(p, PEER_MAC_BYTES + 1, mac, errmsg, sizeof(errmsg)),
                 TRIAD_EPROTO);
    CHECK_MEM_STR(errmsg, strlen(errmsg), "auth of 33 bytes, expected 32");
}

/* ---- ERROR, PING, PONG ---- */

TEST(peer_error_round_trips_and_long_text_is_cut)
{
    struct tbuf b = {0};
    struct peer_frame f;
    struct peer_error e;
    peer_encode_errorf(&b, PEER_ERR_CLUSTER, "cluster id mismatch: expected %d, got %d", 7, 8);
    CHECK(parse_whole(&b, &f));
    CHECK_EQ_INT(f.type, PEER_MSG_ERROR);
    CHECK_EQ_INT(peer_decode_error(f.payload, f.len, &e, errmsg, sizeof(errmsg)), 0);
    CHECK_EQ_INT(e.code, PEER_ERR_CLUSTER);
    CHECK_MEM_STR(e.text, e.len, "cluster id mismatch: expected 7, got 8");
    CHECK(reencodes_identically(&b));
    CHECK_MEM_STR(peer_error_code_name(e.code), 7, "cluster");
    CHECK_MEM_STR(peer_error_code_name(999), 7, "unknown");

    /* at the limit, and cut to it */
    static char text[PEER_ERROR_TEXT_BYTES_MAX + 100];
    memset(text, 'y', sizeof(text));
    for (size_t n = PEER_ERROR_TEXT_BYTES_MAX; n <= PEER_ERROR_TEXT_BYTES_MAX + 1; n++) {
        tbuf_reset(&b);
        peer_encode_error(&b, 42, text, n);
        CHECK(parse_whole(&b, &f));
        CHECK_EQ_INT(peer_decode_error(f.payload, f.len, &e, errmsg, sizeof(errmsg)), 0);
        CHECK_EQ_INT(e.code, 42);
        CHECK_EQ_INT(e.len, PEER_ERROR_TEXT_BYTES_MAX);
        CHECK(f.len <= PEER_HANDSHAKE_PAYLOAD_BYTES_MAX);
    }
    tbuf_reset(&b);
    peer_encode_errorf(&b, 1, "%.*s", (int)sizeof(text), text);
    CHECK(parse_whole(&b, &f));
    CHECK_EQ_INT(peer_decode_error(f.payload, f.len, &e, errmsg, sizeof(errmsg)), 0);
    CHECK_EQ_INT(e.len, PEER_ERROR_TEXT_BYTES_MAX);

    /* empty text */
    tbuf_reset(&b);
    peer_encode_error(&b, PEER_ERR_SHUTDOWN, NULL, 0);
    CHECK(parse_whole(&b, &f));
    CHECK_EQ_INT(peer_decode_error(f.payload, f.len, &e, errmsg, sizeof(errmsg)), 0);
    CHECK_EQ_INT(e.len, 0);
    tbuf_free(&b);
}

TEST(peer_error_decoder_refuses_text_over_the_limit_or_mislength)
{
    uint8_t p[6 + PEER_ERROR_TEXT_BYTES_MAX + 1];
    struct peer_error e;
    memset(p, 'z', sizeof(p));
    p[0] = 1;
    p[1] = 0;
    tbuf_write_u32le(p + 2, PEER_ERROR_TEXT_BYTES_MAX + 1);
    CHECK_EQ_INT(peer_decode_error(p, sizeof(p), &e, errmsg, sizeof(errmsg)), TRIAD_EPROTO);
    CHECK_MEM_STR(errmsg, strlen(errmsg), "error text of 1025 bytes exceeds the limit of 1024");
    tbuf_write_u32le(p + 2, 10);
    CHECK_EQ_INT(peer_decode_error(p, 6 + 10, &e, errmsg, sizeof(errmsg)), 0);
    CHECK_EQ_INT(peer_decode_error(p, 6 + 9, &e, errmsg, sizeof(errmsg)), TRIAD_EPROTO);
    CHECK_EQ_INT(peer_decode_error(p, 6 + 11, &e, errmsg, sizeof(errmsg)), TRIAD_EPROTO);
    CHECK_EQ_INT(peer_decode_error(p, 5, &e, errmsg, sizeof(errmsg)), TRIAD_EPROTO);
    CHECK(e.text == NULL && e.len == 0);
}

TEST(peer_ping_and_pong_round_trip)
{
    const uint64_t values[] = {0, 1, 0x8000000000000000ull, UINT64_MAX};
    for (size_t i = 0; i < TRIAD_ARRAY_LEN(values); i++) {
        for (uint8_t type = PEER_MSG_PING; type <= PEER_MSG_PONG; type++) {
            struct tbuf b = {0};
            struct peer_frame f;
            uint64_t v = 1234;
            peer_encode_ping(&b, type, values[i]);
            CHECK(parse_whole(&b, &f));
            CHECK_EQ_INT(f.type, type);
            CHECK_EQ_INT(peer_decode_ping(f.payload, f.len, &v, errmsg, sizeof(errmsg)), 0);
            CHECK(v == values[i]);
            CHECK_EQ_INT(peer_decode_ping(f.payload, f.len - 1, &v, errmsg, sizeof(errmsg)),
                         TRIAD_EPROTO);
            CHECK(reencodes_identically(&b));
            tbuf_free(&b);
        }
    }
}

/* ---- RAFT ---- */

/* Every scalar field distinct and non-zero, so a swapped pair shows. */
static void raft_all_fields(struct raft_msg *m, uint8_t type)
{
    memset(m, 0, sizeof(*m));
    m->type = type;
    m->from = 0xa1a2a3a4;
    m->to = 0xb1b2b3b4;
    m->term = 0x0101010101010101ull;
    m->last_log_index = 0x0202020202020202ull;
    m->last_log_term = 0x0303030303030303ull;
    m->transfer = true;
    m->reject = true;
    m->prev_index = 0x0404040404040404ull;
    m->prev_term = 0x0505050505050505ull;
    m->commit = 0x0606060606060606ull;
    m->seq = 0x0707070707070707ull;
    m->index = 0x0808080808080808ull;
    m->hint_index = 0x0909090909090909ull;
    m->hint_term = 0x0a0a0a0a0a0a0a0aull;
    m->snap_index = 0x0b0b0b0b0b0b0b0bull;
    m->snap_term = 0x0c0c0c0c0c0c0c0cull;
    m->snap_size = 0x0d0d0d0d0d0d0d0dull;
    m->offset = 0x0e0e0e0e0e0e0e0eull;
    m->done = true;
    m->snap_conf.n = RAFT_NODES_MAX;
    for (uint32_t i = 0; i < RAFT_NODES_MAX; i++)
        m->snap_conf.members[i] =
            (struct raft_member){0xf0000000u + i, i % 3 ? RAFT_VOTER : RAFT_LEARNER};
}

TEST(peer_raft_every_type_round_trips_with_every_field)
{
    for (uint8_t t = RAFT_MSG_PREVOTE; t <= RAFT_MSG_TYPE_MAX; t++) {
        struct raft_msg m;
        raft_all_fields(&m, t);
        CHECK(raft_round_trip(&m));
        m.transfer = m.reject = m.done = false;
        m.snap_conf.n = 0;
        CHECK(raft_round_trip(&m));
        memset(&m, 0, sizeof(m));
        m.type = t;
        CHECK(raft_round_trip(&m));
    }
    /* the flags one at a time */
    struct raft_msg m;
    raft_all_fields(&m, RAFT_MSG_VOTE);
    m.transfer = m.reject = m.done = false;
    m.transfer = true;
    CHECK(raft_round_trip(&m));
    m.transfer = false;
    m.reject = true;
    CHECK(raft_round_trip(&m));
    m.reject = false;
    m.done = true;
    CHECK(raft_round_trip(&m));
}

TEST(peer_raft_append_with_several_entries_round_trips)
{
    static uint8_t d0[1000], d2[1], d3[RAFT_CONF_BYTES_MAX];
    struct raft_conf c = {.n = 2, .members = {{1, RAFT_VOTER}, {2, RAFT_LEARNER}}};
    fill(d0, sizeof(d0), 11);
    d2[0] = 0;
    size_t clen = raft_conf_encode(&c, d3);
    struct raft_entry e[4] = {
        {.term = 5, .index = 21, .type = RAFT_ENTRY_NORMAL, .len = sizeof(d0), .data = d0},
        {.term = 6, .index = 22, .type = RAFT_ENTRY_NOOP, .len = 0, .data = NULL},
        {.term = 6, .index = 23, .type = RAFT_ENTRY_NORMAL, .len = 1, .data = d2},
        {.term = 6, .index = 24, .type = RAFT_ENTRY_CONF, .len = (uint32_t)clen, .data = d3},
    };
    struct raft_msg m = {.type = RAFT_MSG_APPEND, .from = 1, .to = 2, .term = 6,
                         .prev_index = 20, .prev_term = 5, .commit = 19, .seq = 77,
                         .n_entries = 4, .entries = e};
    CHECK(raft_round_trip(&m));

    /* the decoded entries point into the frame's payload, the array into the arena */
    struct tbuf b = {0};
    struct peer_frame f;
    struct peer_arena a = {0};
    struct raft_msg back;
    CHECK_EQ_INT(peer_encode_raft(&b, &m), 0);
    CHECK(parse_whole(&b, &f));
    CHECK_EQ_INT(peer_decode_raft(f.payload, f.len, &a, &back, errmsg, sizeof(errmsg)), 0);
    CHECK((const void *)back.entries == a.mem);
    CHECK(back.entries[0].data > f.payload && back.entries[0].data < f.payload + f.len);
    CHECK(back.entries[1].data == NULL);
    CHECK_EQ_INT(f.len, PEER_RAFT_FIXED_BYTES + 4 + 4 * PEER_RAFT_ENTRY_HEADER_BYTES + 1000 + 1 +
                            clen);
    peer_arena_free(&a);
    tbuf_free(&b);
}

TEST(peer_raft_snapshot_chunk_round_trips)
{
    static uint8_t chunk[100000];
    fill(chunk, sizeof(chunk), 12);
    struct raft_msg m = {.type = RAFT_MSG_SNAPSHOT, .from = 3, .to = 1, .term = 9,
                         .snap_index = 500, .snap_term = 8, .snap_size = 250000,
                         .offset = 150000, .len = sizeof(chunk), .data = chunk, .done = true,
                         .commit = 480, .seq = 3};
    m.snap_conf.n = 3;
    m.snap_conf.members[0] = (struct raft_member){3, RAFT_VOTER};
    m.snap_conf.members[1] = (struct raft_member){1, RAFT_VOTER};
    m.snap_conf.members[2] = (struct raft_member){7, RAFT_LEARNER};
    CHECK(raft_round_trip(&m));
    /* the answer */
    struct raft_msg r = {.type = RAFT_MSG_SNAPSHOT_RESP, .from = 1, .to = 3, .term = 9,
                         .offset = 250000, .index = 500};
    CHECK(raft_round_trip(&r));
}

TEST(peer_raft_entry_at_the_limit_fits_and_one_past_is_refused)
{
    uint8_t *big = malloc((size_t)RAFT_ENTRY_BYTES_MAX + 1);
    fill(big, (size_t)RAFT_ENTRY_BYTES_MAX + 1, 13);
    struct raft_entry e = {.term = 2, .index = 2, .type = RAFT_ENTRY_NORMAL,
                           .len = RAFT_ENTRY_BYTES_MAX, .data = big};
    struct raft_msg m;
    raft_all_fields(&m, RAFT_MSG_APPEND); /* the largest configuration too */
    m.n_entries = 1;
    m.entries = &e;
    CHECK(raft_round_trip(&m));

    e.len = RAFT_ENTRY_BYTES_MAX + 1;
    struct tbuf b = {0};
    tbuf_append(&b, "x", 1);
    CHECK_EQ_INT(peer_encode_raft(&b, &m), TRIAD_EINVAL);
    CHECK_EQ_INT(b.len, 1);
    tbuf_free(&b);
    free(big);
}

TEST(peer_payload_at_the_limit_passes_and_one_byte_more_is_refused)
{
    /* a snapshot chunk that fills the payload exactly */
    const size_t room = PEER_PAYLOAD_BYTES_MAX - PEER_RAFT_FIXED_BYTES - 4;
    uint8_t *chunk = malloc(PEER_PAYLOAD_BYTES_MAX); /* enough for every case below */
    fill(chunk, PEER_PAYLOAD_BYTES_MAX, 14);
    struct raft_msg m = {.type = RAFT_MSG_SNAPSHOT, .from = 1, .to = 2, .term = 1,
                         .snap_index = 1, .snap_term = 1, .snap_size = room + 1,
                         .len = (uint32_t)room, .data = chunk};
    struct tbuf b = {0};
    CHECK_EQ_INT(peer_encode_raft(&b, &m), 0);
    CHECK_EQ_INT(b.len, PEER_FRAME_BYTES_MAX);
    CHECK(raft_round_trip(&m));

    /* through the decoder, fed in 1 MiB reads */
    struct peer_decoder d;
    struct peer_frame f;
    peer_decoder_init(&d);
    for (size_t off = 0; off < b.len; off += 1u << 20) {
        CHECK_EQ_INT(peer_decoder_next(&d, &f), TRIAD_EAGAIN);
        peer_decoder_feed(&d, b.data + off, TRIAD_MIN((size_t)1 << 20, b.len - off));
    }
    CHECK_EQ_INT(peer_decoder_next(&d, &f), 0);
    CHECK_EQ_INT(f.len, PEER_PAYLOAD_BYTES_MAX);
    peer_decoder_free(&d);

    m.len++;
    tbuf_reset(&b);
    CHECK_EQ_INT(peer_encode_raft(&b, &m), TRIAD_ELIMIT);
    CHECK_EQ_INT(b.len, 0);

    /* a proxied reply at the limit and one past */
    struct peer_proxy_reply r = {.req_id = 3,
                                 .len = PEER_PAYLOAD_BYTES_MAX - PEER_PROXY_REPLY_HEADER_BYTES,
                                 .data = chunk};
    CHECK_EQ_INT(peer_encode_proxy_reply(&b, &r), 0);
    CHECK_EQ_INT(b.len, PEER_FRAME_BYTES_MAX);
    CHECK(reencodes_identically(&b));
    size_t before = b.len;
    r.len++;
    CHECK_EQ_INT(peer_encode_proxy_reply(&b, &r), TRIAD_ELIMIT);
    CHECK_EQ_INT(b.len, before);

    /* entries whose headers alone push the payload one past the limit */
    tbuf_reset(&b);
    struct raft_entry e[2] = {
        {.term = 1, .index = 1, .type = RAFT_ENTRY_NORMAL, .data = chunk},
        {.term = 1, .index = 2, .type = RAFT_ENTRY_NOOP},
    };
    e[0].len = (uint32_t)(PEER_PAYLOAD_BYTES_MAX - PEER_RAFT_FIXED_BYTES - 4 -
                          2 * PEER_RAFT_ENTRY_HEADER_BYTES);
    TRIAD_ASSERT(e[0].len > RAFT_ENTRY_BYTES_MAX); /* so split it in two */
    e[1].type = RAFT_ENTRY_NORMAL;
    e[1].len = e[0].len - RAFT_ENTRY_BYTES_MAX;
    e[1].data = chunk;
    e[0].len = RAFT_ENTRY_BYTES_MAX;
    struct raft_msg ap = {.type = RAFT_MSG_APPEND, .from = 1, .to = 2, .term = 1,
                          .n_entries = 2, .entries = e};
    CHECK_EQ_INT(peer_encode_raft(&b, &ap), 0);
    CHECK_EQ_INT(b.len, PEER_FRAME_BYTES_MAX);
    CHECK(raft_round_trip(&ap));
    tbuf_reset(&b);
    e[1].len++;
    CHECK_EQ_INT(peer_encode_raft(&b, &ap), TRIAD_ELIMIT);
    CHECK_EQ_INT(b.len, 0);
    tbuf_free(&b);
    free(chunk);
}

TEST(peer_raft_encoder_refuses_what_the_decoder_would)
{
    uint8_t byte = 1;
    struct raft_entry e = {.term = 1, .index = 1, .type = RAFT_ENTRY_NORMAL, .len = 1,
                           .data = &byte};
    struct raft_msg m;
    struct tbuf b = {0};

#define REFUSED(setup, code)                               \
    do {                                                   \
        memset(&m, 0, sizeof(m));                          \
        m.type = RAFT_MSG_APPEND;                          \
        m.from = 1;                                        \
        m.to = 2;                                          \
        setup;                                             \
        CHECK_EQ_INT(peer_encode_raft(&b, &m), code);      \
        CHECK_EQ_INT(b.len, 0);                            \
    } while (0)

    REFUSED(m.type = 0, TRIAD_EINVAL);
    REFUSED(m.type = RAFT_MSG_TYPE_MAX + 1, TRIAD_EINVAL);
    REFUSED((m.type = RAFT_MSG_VOTE, m.n_entries = 1, m.entries = &e), TRIAD_EINVAL);
    REFUSED((m.n_entries = 1, m.entries = NULL), TRIAD_EINVAL);
    REFUSED((m.len = 1, m.data = &byte), TRIAD_EINVAL); /* a chunk in an append */
    REFUSED((m.type = RAFT_MSG_SNAPSHOT, m.len = 1, m.data = NULL), TRIAD_EINVAL);
    REFUSED(m.snap_conf.n = RAFT_NODES_MAX + 1, TRIAD_EINVAL);
    REFUSED((m.snap_conf.n = 1, m.snap_conf.members[0] = (struct raft_member){0, RAFT_VOTER}),
            TRIAD_EINVAL);
    REFUSED((m.snap_conf.n = 1, m.snap_conf.members[0] = (struct raft_member){4, 3}),
            TRIAD_EINVAL);
    REFUSED((m.snap_conf.n = 2, m.snap_conf.members[0] = (struct raft_member){4, RAFT_VOTER},
             m.snap_conf.members[1] = (struct raft_member){4, RAFT_LEARNER}),
            TRIAD_EINVAL);
    e.type = 0;
    REFUSED((m.n_entries = 1, m.entries = &e), TRIAD_EINVAL);
    e.type = RAFT_ENTRY_CONF + 1;
    REFUSED((m.n_entries = 1, m.entries = &e), TRIAD_EINVAL);
    e.type = RAFT_ENTRY_NORMAL;
    e.data = NULL;
    REFUSED((m.n_entries = 1, m.entries = &e), TRIAD_EINVAL);
#undef REFUSED
    tbuf_free(&b);
}

/* A valid APPEND payload to patch. */
static void append_payload(struct tbuf *p)
{
    static uint8_t d[10];
    struct raft_entry e[2] = {
        {.term = 1, .index = 1, .type = RAFT_ENTRY_NORMAL, .len = 10, .data = d},
        {.term = 1, .index = 2, .type = RAFT_ENTRY_NOOP},
    };
    struct raft_msg m = {.type = RAFT_MSG_APPEND, .from = 1, .to = 2, .term = 1,
                         .n_entries = 2, .entries = e};
    struct tbuf b = {0};
    TRIAD_ASSERT(peer_encode_raft(&b, &m) == 0);
    tbuf_reset(p);
    tbuf_append(p, b.data + PEER_HEADER_BYTES, b.len - PEER_HEADER_BYTES);
    tbuf_free(&b);
}

#define RAFT_OFF_FLAGS 1
#define RAFT_OFF_N_ENTRIES 122
#define RAFT_OFF_LEN 126
#define RAFT_OFF_CONF 130
#define RAFT_OFF_ENTRY0 (RAFT_OFF_CONF + 4)

static int decode_raft_tbuf(const struct tbuf *p, struct peer_arena *a)
{
    struct raft_msg m;
    return peer_decode_raft((const uint8_t *)p->data, p->len, a, &m, errmsg, sizeof(errmsg));
}

TEST(peer_raft_decoder_refuses_counts_the_payload_cannot_hold)
{
    struct tbuf p = {0};
    struct peer_arena a = {0};

    append_payload(&p);
    CHECK_EQ_INT(decode_raft_tbuf(&p, &a), 0);
    peer_arena_free(&a);

    /* a count of 4 billion entries allocates nothing */
    tbuf_write_u32le(p.data + RAFT_OFF_N_ENTRIES, UINT32_MAX);
    CHECK_EQ_INT(decode_raft_tbuf(&p, &a), TRIAD_EPROTO);
    CHECK(a.mem == NULL);
    /* nor one entry more than the bytes could hold */
    size_t left = p.len - RAFT_OFF_ENTRY0;
    tbuf_write_u32le(p.data + RAFT_OFF_N_ENTRIES,
                     (uint32_t)(left / PEER_RAFT_ENTRY_HEADER_BYTES + 1));
    CHECK_EQ_INT(decode_raft_tbuf(&p, &a), TRIAD_EPROTO);
    CHECK(a.mem == NULL);
    /* a chunk longer than the payload */
    append_payload(&p);
    p.data[0] = RAFT_MSG_SNAPSHOT;
    tbuf_write_u32le(p.data + RAFT_OFF_N_ENTRIES, 0);
    tbuf_write_u32le(p.data + RAFT_OFF_LEN, UINT32_MAX);
    CHECK_EQ_INT(decode_raft_tbuf(&p, &a), TRIAD_EPROTO);
    CHECK(a.mem == NULL);
    /* three entries where there are two: the third is truncated */
    append_payload(&p);
    tbuf_write_u32le(p.data + RAFT_OFF_N_ENTRIES, 3);
    static const uint8_t zeros[20];
    tbuf_append(&p, zeros, sizeof(zeros)); /* enough for the count check, not the entry */
    CHECK_EQ_INT(decode_raft_tbuf(&p, &a), TRIAD_EPROTO);
    CHECK_MEM_STR(errmsg, strlen(errmsg), "entry 2 of 3 is truncated");
    peer_arena_free(&a);
    tbuf_free(&p);
}

TEST(peer_raft_decoder_refuses_bad_fields)
{
    struct tbuf p = {0};
    struct peer_arena a = {0};

#define BAD(patch, msg)                                        \
    do {                                                       \
        append_payload(&p);                                    \
        patch;                                                 \
        CHECK_EQ_INT(decode_raft_tbuf(&p, &a), TRIAD_EPROTO);  \
        CHECK_MEM_STR(errmsg, strlen(errmsg), msg);            \
    } while (0)

    BAD(p.data[0] = 0, "unknown raft message type 0");
    BAD(p.data[0] = RAFT_MSG_TYPE_MAX + 1, "unknown raft message type 10");
    BAD(p.data[RAFT_OFF_FLAGS] = 0x08, "unknown raft message flags 0x08");
    BAD(p.data[0] = RAFT_MSG_VOTE, "2 entries in a raft message of type 3");
    BAD(p.data[RAFT_OFF_CONF] = RAFT_NODES_MAX + 1, "configuration of 17 members exceeds 16");
    BAD(p.data[RAFT_OFF_CONF + 3] = 2, "bad snapshot configuration in a raft message");
    BAD(p.data[RAFT_OFF_ENTRY0 + 16] = 4, "entry 0 has unknown type 4");
    BAD(tbuf_write_u32le(p.data + RAFT_OFF_ENTRY0 + 17, RAFT_ENTRY_BYTES_MAX + 1),
        "entry 0 of 67108865 bytes exceeds the limit of 67108864");
    BAD(tbuf_write_u32le(p.data + RAFT_OFF_ENTRY0 + 17, 32), "entry 0 is truncated");
    BAD(tbuf_appendc(&p, 0), "snapshot chunk of 0 bytes in 1 bytes");
    BAD((tbuf_write_u32le(p.data + RAFT_OFF_LEN, 1), tbuf_appendc(&p, 0)),
        "a snapshot chunk in a raft message of type 5");
    BAD(p.len = 3, "raft message of 3 bytes is too short");
    BAD(p.len = PEER_RAFT_FIXED_BYTES + 2, "raft message of 132 bytes is too short");
#undef BAD
    peer_arena_free(&a);
    tbuf_free(&p);
}

/* ---- PROXY_REQ, PROXY_REPLY ---- */

TEST(peer_proxy_req_round_trips_with_nul_terminated_copies)
{
    char a0[] = "SET", a1[] = "k\0ey", a2[] = "";
    static char a3[70000];
    memset(a3, 'v', sizeof(a3));
    char *argv[] = {a0, a1, a2, a3};
    size_t argvlen[] = {3, 4, 0, sizeof(a3)};
    struct peer_proxy_req q = {.req_id = UINT64_MAX, .client_id = 0x1234, .seq = 99, .db = 15,
                               .proto = 2, .kind = PEER_PROXY_WAIT, .ack = RAFT_ACK_ALL,
                               .after = 0x0102030405060708ull, .argc = 4, .argv = argv,
                               .argvlen = argvlen};
    struct tbuf b = {0};
    struct peer_frame f;
    struct peer_arena a = {0};
    struct peer_proxy_req back;

    CHECK_EQ_INT(peer_encode_proxy_req(&b, &q), 0);
    CHECK(parse_whole(&b, &f));
    CHECK_EQ_INT(f.type, PEER_MSG_PROXY_REQ);
    CHECK_EQ_INT(peer_decode_proxy_req(f.payload, f.len, &a, &back, errmsg, sizeof(errmsg)), 0);
    CHECK(back.req_id == q.req_id);
    CHECK(back.client_id == q.client_id);
    CHECK(back.seq == q.seq);
    CHECK_EQ_INT(back.db, q.db);
    CHECK_EQ_INT(back.proto, q.proto);
    CHECK_EQ_INT(back.kind, q.kind);
    CHECK_EQ_INT(back.ack, q.ack);
    CHECK(back.after == q.after);
    CHECK_EQ_INT(back.argc, q.argc);
    for (uint32_t i = 0; i < q.argc; i++) {
        CHECK_EQ_INT(back.argvlen[i], argvlen[i]);
        CHECK(memcmp(back.argv[i], argv[i], argvlen[i]) == 0);
        CHECK(back.argv[i][argvlen[i]] == '\0');
    }
    back.argv[0][0] = 's'; /* writable, as cmd/ expects */
    CHECK(reencodes_identically(&b));
    peer_arena_free(&a);
    tbuf_free(&b);
}

TEST(peer_proxy_req_argc_at_the_limit_passes_and_one_more_is_refused)
{
    size_t n = PEER_PROXY_ARGC_MAX + 1;
    char **argv = calloc(n, sizeof(*argv));
    size_t *argvlen = calloc(n, sizeof(*argvlen));
    struct peer_proxy_req q = {.req_id = 1, .proto = 3, .argc = PEER_PROXY_ARGC_MAX,
                               .argv = argv, .argvlen = argvlen};
    struct tbuf b = {0};
    struct peer_frame f;
    struct peer_arena a = {0};
    struct peer_proxy_req back;

    CHECK_EQ_INT(peer_encode_proxy_req(&b, &q), 0);
    CHECK(parse_whole(&b, &f));
    CHECK_EQ_INT(peer_decode_proxy_req(f.payload, f.len, &a, &back, errmsg, sizeof(errmsg)), 0);
    CHECK_EQ_INT(back.argc, PEER_PROXY_ARGC_MAX);
    CHECK_EQ_INT(back.argvlen[PEER_PROXY_ARGC_MAX - 1], 0);

    q.argc++;
    tbuf_reset(&b);
    CHECK_EQ_INT(peer_encode_proxy_req(&b, &q), TRIAD_ELIMIT);
    CHECK_EQ_INT(b.len, 0);

    /* the decoder refuses a count one past, before allocating anything */
    peer_arena_free(&a);
    size_t plen = PEER_PROXY_REQ_HEADER_BYTES + 4 * n;
    uint8_t *p = calloc(1, plen);
    p[28] = 3;
    tbuf_write_u32le(p + 39, (uint32_t)n);
    CHECK_EQ_INT(peer_decode_proxy_req(p, plen, &a, &back, errmsg, sizeof(errmsg)), TRIAD_EPROTO);
    CHECK_MEM_STR(errmsg, strlen(errmsg), "proxied request of 1048577 arguments exceeds 1048576");
    CHECK(a.mem == NULL);
    free(p);
    free(argv);
    free(argvlen);
    tbuf_free(&b);
}

TEST(peer_proxy_req_refuses_bad_fields)
{
    char *argv[] = {"GET", "k"};
    size_t argvlen[] = {3, 1};
    struct peer_proxy_req q = {.req_id = 1, .proto = 3, .argc = 2, .argv = argv,
                               .argvlen = argvlen};
    struct tbuf b = {0}, p = {0};
    struct peer_arena a = {0};
    struct peer_proxy_req back;

    q.proto = 4;
    CHECK_EQ_INT(peer_encode_proxy_req(&b, &q), TRIAD_EINVAL);
    q.proto = 3;
    q.kind = PEER_PROXY_WAIT + 1;
    CHECK_EQ_INT(peer_encode_proxy_req(&b, &q), TRIAD_EINVAL);
    q.kind = PEER_PROXY_COMMAND;
    q.ack = RAFT_ACK_ALL + 1;
    CHECK_EQ_INT(peer_encode_proxy_req(&b, &q), TRIAD_EINVAL);
    q.ack = 0;
    q.argc = 0;
    CHECK_EQ_INT(peer_encode_proxy_req(&b, &q), TRIAD_EINVAL);
    q.argc = 2;
    argv[1] = NULL;
    CHECK_EQ_INT(peer_encode_proxy_req(&b, &q), TRIAD_EINVAL);
    argv[1] = "k";
    CHECK_EQ_INT(b.len, 0);

    CHECK_EQ_INT(peer_encode_proxy_req(&b, &q), 0);
#define BAD(patch, msg)                                                                    \
    do {                                                                                   \
        tbuf_reset(&p);                                                                    \
        tbuf_append(&p, b.data + PEER_HEADER_BYTES, b.len - PEER_HEADER_BYTES);            \
        patch;                                                                             \
        CHECK_EQ_INT(peer_decode_proxy_req((const uint8_t *)p.data, p.len, &a, &back, errmsg, \
                                           sizeof(errmsg)),                                \
                     TRIAD_EPROTO);                                                        \
        CHECK_MEM_STR(errmsg, strlen(errmsg), msg);                                        \
        CHECK(back.argv == NULL && back.argc == 0);                                        \
    } while (0)

    BAD(p.data[28] = 1, "proxied request with protocol 1");
    BAD(p.data[29] = 2, "proxied request of unknown kind 2");
    BAD(p.data[30] = 5, "proxied request with ack level 5");
    BAD(tbuf_write_u32le(p.data + 39, 0), "proxied request with no arguments");
    BAD(tbuf_write_u32le(p.data + 39, 3), "argument 2 of 3 is truncated");
    BAD(tbuf_write_u32le(p.data + 39, 5), "5 arguments cannot fit in 12 bytes");
    BAD(tbuf_write_u32le(p.data + 43, 100), "argument 0 of 2 is truncated");
    BAD(tbuf_appendc(&p, 'x'), "1 trailing bytes after a proxied request");
    BAD(p.len = 20, "proxied request of 20 bytes is too short");
#undef BAD
    CHECK(a.mem == NULL);
    tbuf_free(&p);
    tbuf_free(&b);
}

TEST(peer_proxy_reply_round_trips)
{
    const char *resp = "$5\r\nhello\r\n";
    struct peer_proxy_reply r = {.req_id = 0xfeedull, .index = 0x1122334455667788ull,
                                 .len = (uint32_t)strlen(resp), .data = (const uint8_t *)resp};
    struct tbuf b = {0};
    struct peer_frame f;
    struct peer_proxy_reply back;

    CHECK_EQ_INT(peer_encode_proxy_reply(&b, &r), 0);
    CHECK(parse_whole(&b, &f));
    CHECK_EQ_INT(f.type, PEER_MSG_PROXY_REPLY);
    CHECK_EQ_INT(peer_decode_proxy_reply(f.payload, f.len, &back, errmsg, sizeof(errmsg)), 0);
    CHECK(back.req_id == r.req_id);
    CHECK(back.index == r.index);
    CHECK_MEM_STR(back.data, back.len, resp);
    CHECK(reencodes_identically(&b));
    CHECK_EQ_INT(peer_decode_proxy_reply(f.payload, f.len - 1, &back, errmsg, sizeof(errmsg)),
                 TRIAD_EPROTO);

    tbuf_reset(&b);
    r.len = 0;
    r.data = NULL;
    CHECK_EQ_INT(peer_encode_proxy_reply(&b, &r), 0);
    CHECK(parse_whole(&b, &f));
    CHECK_EQ_INT(peer_decode_proxy_reply(f.payload, f.len, &back, errmsg, sizeof(errmsg)), 0);
    CHECK(back.len == 0 && back.data == NULL);
    r.len = 1;
    CHECK_EQ_INT(peer_encode_proxy_reply(&b, &r), TRIAD_EINVAL);
    tbuf_free(&b);
}

TEST(peer_announce_round_trips_and_refuses_bad_addresses)
{
    struct peer_announce an = {.client_port = 65535}, back;
    struct tbuf b = {0};
    struct peer_frame f;
    strcpy(an.host, "fe80::1");
    CHECK_EQ_INT(peer_encode_announce(&b, &an), 0);
    CHECK(parse_whole(&b, &f));
    CHECK_EQ_INT(f.type, PEER_MSG_ANNOUNCE);
    CHECK_EQ_INT(peer_decode_announce(f.payload, f.len, &back, errmsg, sizeof(errmsg)), 0);
    CHECK_EQ_INT(back.client_port, 65535);
    CHECK_MEM_STR(back.host, strlen(back.host), "fe80::1");
    CHECK(reencodes_identically(&b));

    tbuf_reset(&b);
    an.client_port = 0;
    CHECK_EQ_INT(peer_encode_announce(&b, &an), TRIAD_EINVAL);
    an.client_port = 1;
    an.host[0] = '\0';
    CHECK_EQ_INT(peer_encode_announce(&b, &an), TRIAD_EINVAL);
    strcpy(an.host, "a b");
    CHECK_EQ_INT(peer_encode_announce(&b, &an), TRIAD_EINVAL);
    CHECK_EQ_INT(b.len, 0);

    uint8_t p[8] = {0x00, 0x00, 1, 'x'}; /* port 0 */
    CHECK_EQ_INT(peer_decode_announce(p, 4, &back, errmsg, sizeof(errmsg)), TRIAD_EPROTO);
    CHECK_MEM_STR(errmsg, strlen(errmsg), "announce of a bad client address");
    p[0] = 1;
    CHECK_EQ_INT(peer_decode_announce(p, 4, &back, errmsg, sizeof(errmsg)), 0);
    CHECK_EQ_INT(peer_decode_announce(p, 5, &back, errmsg, sizeof(errmsg)), TRIAD_EPROTO);
    CHECK_MEM_STR(errmsg, strlen(errmsg), "announce host of 1 bytes in 2 bytes");
    CHECK_EQ_INT(peer_decode_announce(p, 2, &back, errmsg, sizeof(errmsg)), TRIAD_EPROTO);
    p[3] = 0x7f; /* not printable */
    CHECK_EQ_INT(peer_decode_announce(p, 4, &back, errmsg, sizeof(errmsg)), TRIAD_EPROTO);
    tbuf_free(&b);
}

/* ---- every decoder against every payload ---- */

TEST(peer_every_payload_cut_short_or_with_a_byte_more_is_refused)
{
    struct tbuf s = {0}, p = {0};
    struct peer_arena a = {0};
    build_stream(&s);
    size_t off = 0;
    while (off < s.len) {
        struct peer_frame f, g;
        size_t consumed;
        TRIAD_ASSERT(peer_frame_parse(s.data + off, s.len - off, PEER_PAYLOAD_BYTES_MAX, &f,
                                      &consumed, NULL, 0) == 0);
        for (size_t n = 0; n <= (size_t)f.len + 1; n++) {
            if (n == f.len)
                continue;
            tbuf_reset(&p);
            tbuf_append(&p, f.payload, TRIAD_MIN(n, (size_t)f.len));
            if (n > f.len)
                tbuf_appendc(&p, 0);
            g = f;
            g.payload = (const uint8_t *)p.data;
            g.len = (uint32_t)n;
            struct tbuf again = {0};
            int rc = reencode(&g, &a, &again);
            if (rc != TRIAD_EPROTO) {
                CHECK_EQ_INT(rc, TRIAD_EPROTO);
                fprintf(stderr, "  %s payload of %zu bytes (of %u)\n",
                        peer_msg_type_name(f.type), n, f.len);
            }
            tbuf_free(&again);
        }
        off += consumed;
    }
    peer_arena_free(&a);
    tbuf_free(&p);
    tbuf_free(&s);
}

/* ---- DYN ---- */

/* Two decoded messages say the same in every field the codec carries. */
static bool dyn_msg_equal(const struct dyn_msg *a, const struct dyn_msg *b)
{
    return a->type == b->type && a->from == b->from && a->to == b->to && a->req == b->req &&
           a->klen == b->klen && (a->klen == 0 || memcmp(a->key, b->key, a->klen) == 0) &&
           a->blen == b->blen && (a->blen == 0 || memcmp(a->body, b->body, a->blen) == 0) &&
           a->b2len == b->b2len && (a->b2len == 0 || memcmp(a->body2, b->body2, a->b2len) == 0);
}

TEST(peer_dyn_round_trips_every_message_type_and_checks_the_payload)
{
    static uint8_t body[5000], body2[300];
    fill(body, sizeof(body), 21);
    fill(body2, sizeof(body2), 22);
    for (uint8_t t = 1; t <= DYN_MSG_TYPE_MAX; t++) {
        struct dyn_msg m = {.type = t, .from = 3, .to = 1, .req = 1000u + t,
                            .ring_epoch = 0xabcdefull, .ts = (uint64_t)t << 20,
                            .status = DYN_ST_OK, .op = DYN_UPD_PUT, .hint_for = 2,
                            .a = 5, .b = 9, .level = 3, .key = "some-key", .klen = 8,
                            .body = body, .blen = t * 100u, .body2 = body2, .b2len = 17};
        struct tbuf b = {0}, raw = {0};
        struct peer_frame f;
        struct dyn_msg back, ref;
        CHECK_EQ_INT(peer_encode_dyn(&b, &m), 0);
        CHECK(parse_whole(&b, &f));
        CHECK_EQ_INT(f.type, PEER_MSG_DYN);
        /* the payload is exactly the core's encoding */
        dyn_msg_encode(&m, &raw);
        CHECK_EQ_INT(f.len, raw.len);
        CHECK(memcmp(f.payload, raw.data, raw.len) == 0);
        CHECK_EQ_INT(peer_decode_dyn(f.payload, f.len, &back, errmsg, sizeof(errmsg)), 0);
        CHECK_EQ_INT(dyn_msg_decode(&ref, raw.data, raw.len, errmsg, sizeof(errmsg)), 0);
        CHECK(dyn_msg_equal(&back, &ref));
        CHECK_EQ_INT(back.type, t);
        CHECK_EQ_INT(back.from, 3);
        CHECK_EQ_INT(back.to, 1);
        CHECK(reencodes_identically(&b));
        tbuf_free(&b);
        tbuf_free(&raw);
    }
    /* bytes that are no message: refused with the core's reason */
    struct dyn_msg back;
    uint8_t junk[16] = {0xff, 0xee, 0xdd};
    CHECK_EQ_INT(peer_decode_dyn(junk, sizeof(junk), &back, errmsg, sizeof(errmsg)),
                 TRIAD_EPROTO);
    CHECK(strncmp(errmsg, "bad leaderless message: ", 24) == 0);
    CHECK_EQ_INT(peer_decode_dyn(junk, 0, &back, errmsg, sizeof(errmsg)), TRIAD_EPROTO);
}

TEST(peer_dyn_over_the_frame_limit_is_refused_and_leaves_out_unchanged)
{
    struct tbuf b = {0};
    tbuf_appends(&b, "xyz");
    size_t big = PEER_PAYLOAD_BYTES_MAX; /* with the header fields, one over the limit */
    char *v = tmalloc(big);
    memset(v, 'v', big);
    struct dyn_msg m = {.type = DYN_MSG_PUT, .from = 1, .to = 2, .key = "k", .klen = 1,
                        .body = v, .blen = (uint32_t)big};
    CHECK_EQ_INT(peer_encode_dyn(&b, &m), TRIAD_ELIMIT);
    CHECK_EQ_INT(b.len, 3);
    CHECK(memcmp(b.data, "xyz", 3) == 0);
    tfree(v);
    tbuf_free(&b);
}

TEST(peer_type_names_cover_every_type)
{
    for (uint8_t t = 1; t <= PEER_MSG_TYPE_MAX; t++)
        CHECK(strcmp(peer_msg_type_name(t), "?") != 0);
    CHECK(strcmp(peer_msg_type_name(0), "?") == 0);
    CHECK(strcmp(peer_msg_type_name(PEER_MSG_DYN), "DYN") == 0);
    CHECK(strcmp(peer_msg_type_name(PEER_MSG_TYPE_MAX + 1), "?") == 0);
}

int main(void)
{
    RUN(peer_ping_frame_has_the_documented_bytes);
    RUN(peer_frame_parse_waits_for_every_byte_of_a_frame);
    RUN(peer_decoder_refuses_a_bad_header_before_its_payload);
    RUN(peer_decoder_limit_is_a_setting);
    RUN(peer_stream_split_at_every_byte_decodes_identically);
    RUN(peer_stream_fed_byte_by_byte_or_read_in_place_decodes_identically);
    RUN(peer_every_frame_of_the_stream_reencodes_to_the_same_bytes);
    RUN(peer_every_single_byte_corruption_of_a_frame_is_detected);
    RUN(peer_decoder_gives_memory_back_after_a_big_frame);
    RUN(peer_hello_round_trips_with_every_field);
    RUN(peer_hello_refuses_bad_magic_version_length_and_flag);
    RUN(peer_hello_check_names_each_mismatch);
    RUN(peer_hmac_sha256_matches_rfc4231);
    RUN(peer_auth_round_trip_proves_both_sides);
    RUN(peer_auth_with_a_wrong_secret_fails_on_both_sides);
    RUN(peer_auth_mac_covers_every_input);
    RUN(peer_auth_secret_length_is_bounded);
    RUN(peer_auth_equal_sees_a_difference_at_every_byte);
    RUN(peer_auth_frame_must_hold_exactly_a_mac);
    RUN(peer_error_round_trips_and_long_text_is_cut);
    RUN(peer_error_decoder_refuses_text_over_the_limit_or_mislength);
    RUN(peer_ping_and_pong_round_trip);
    RUN(peer_raft_every_type_round_trips_with_every_field);
    RUN(peer_raft_append_with_several_entries_round_trips);
    RUN(peer_raft_snapshot_chunk_round_trips);
    RUN(peer_raft_entry_at_the_limit_fits_and_one_past_is_refused);
    RUN(peer_payload_at_the_limit_passes_and_one_byte_more_is_refused);
    RUN(peer_raft_encoder_refuses_what_the_decoder_would);
    RUN(peer_raft_decoder_refuses_counts_the_payload_cannot_hold);
    RUN(peer_raft_decoder_refuses_bad_fields);
    RUN(peer_proxy_req_round_trips_with_nul_terminated_copies);
    RUN(peer_proxy_req_argc_at_the_limit_passes_and_one_more_is_refused);
    RUN(peer_proxy_req_refuses_bad_fields);
    RUN(peer_proxy_reply_round_trips);
    RUN(peer_announce_round_trips_and_refuses_bad_addresses);
    RUN(peer_dyn_round_trips_every_message_type_and_checks_the_payload);
    RUN(peer_dyn_over_the_frame_limit_is_refused_and_leaves_out_unchanged);
    RUN(peer_every_payload_cut_short_or_with_a_byte_more_is_refused);
    RUN(peer_type_names_cover_every_type);
    return test_summary("peer_proto");
}
