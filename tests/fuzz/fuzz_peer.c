/* fuzz_peer.c - libFuzzer harness for the peer protocol's codec
 * (src/net/peer_proto.c): the frame parser, the incremental decoder and
 * every message decoder.
 *
 * Build and run (SRC: every .c file of src/common, i.e. the glob
 * src/common/STAR.c):
 *   clang -std=c11 -D_GNU_SOURCE -g -O1 -fsanitize=fuzzer,address,undefined \
 *       -o build-fuzz/fuzz_peer tests/fuzz/fuzz_peer.c src/net/peer_proto.c \
 *       src/core/raft.c SRC -lcrypto -lxxhash -lm
 *   build-fuzz/fuzz_peer -max_total_time=60 SCRATCH_DIR
 *
 * The first input byte steers; the rest is the body. What it checks,
 * besides the sanitizers:
 *  - the body as the payload of each of the twelve message types (DYN's
 *    decoder is the leaderless core's dyn_msg_decode): a payload
 *    that decodes encodes back to exactly the same frame;
 *  - the body as a stream of frames (with the checksums made right first
 *    when bit 0 of the steering byte is set, so that the fuzzer gets past
 *    them): fed whole, in chunks, and read in place through
 *    peer_decoder_space, the decoder returns the same frames and the same
 *    error as peer_frame_parse over the whole stream;
 *  - every frame of the stream whose payload decodes re-encodes to the
 *    frame's exact bytes.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../src/common/buf.h"
#include "../../src/common/crc32c.h"
#include "../../src/common/defs.h"
#include "../../src/core/raft.h"
#include "../../src/net/peer_proto.h"

/* Stop after this many frames from one input. */
#define FUZZ_FRAMES_MAX 4096

static char errmsg[256];

/* Decode a payload with the decoder of `type` and, if it decodes, encode
 * the message again into out. Returns the decoder's (or encoder's) code. */
static int fuzz_reencode(uint8_t type, const uint8_t *p, size_t len, struct peer_arena *a,
                         struct tbuf *out)
{
    int rc;
    switch (type) {
    case PEER_MSG_HELLO:
    case PEER_MSG_HELLO_ACK: {
        struct peer_hello h;
        uint16_t code;
        rc = peer_decode_hello(p, len, &h, &code, errmsg, sizeof(errmsg));
        TRIAD_ASSERT(rc == 0 ? code == 0 : code == PEER_ERR_PROTOCOL || code == PEER_ERR_VERSION);
        if (rc != 0)
            return rc;
        /* The checks must not mind what the peer said: against settings
         * that match it or not, as the nonce's first byte picks. */
        uint8_t pick = h.nonce[0];
        raft_id self = (pick & 2) ? h.to + 1 : h.to;
        raft_id peer = (pick & 4) ? h.from + 1 : (pick & 8) ? 0 : h.from;
        rc = peer_hello_check(&h, h.cluster_id ^ (pick & 1), self ? self : 1, peer,
                              (pick & 16) ? !h.auth : h.auth, &code, errmsg, sizeof(errmsg));
        TRIAD_ASSERT(rc == 0 ? code == 0 : code >= PEER_ERR_CLUSTER && code <= PEER_ERR_AUTH);
        uint8_t mac[PEER_MAC_BYTES];
        TRIAD_ASSERT(peer_auth_compute("k", 1, PEER_AUTH_CONNECTOR, &h, &h, mac) == 0);
        peer_encode_hello(out, type, &h);
        return 0;
    }
    case PEER_MSG_AUTH:
    case PEER_MSG_AUTH_OK: {
        uint8_t mac[PEER_MAC_BYTES];
        rc = peer_decode_auth(p, len, mac, errmsg, sizeof(errmsg));
        if (rc == 0)
            peer_encode_auth(out, type, mac);
        return rc;
    }
    case PEER_MSG_ERROR: {
        struct peer_error e;
        rc = peer_decode_error(p, len, &e, errmsg, sizeof(errmsg));
        if (rc == 0) {
            TRIAD_ASSERT(e.len <= PEER_ERROR_TEXT_BYTES_MAX);
            (void)peer_error_code_name(e.code);
            peer_encode_error(out, e.code, e.text, e.len);
        }
        return rc;
    }
    case PEER_MSG_PING:
    case PEER_MSG_PONG: {
        uint64_t v;
        rc = peer_decode_ping(p, len, &v, errmsg, sizeof(errmsg));
        if (rc == 0)
            peer_encode_ping(out, type, v);
        return rc;
    }
    case PEER_MSG_RAFT: {
        struct raft_msg m;
        rc = peer_decode_raft(p, len, a, &m, errmsg, sizeof(errmsg));
        if (rc != 0)
            return rc;
        /* what the decoder hands out lies inside the payload */
        for (uint32_t i = 0; i < m.n_entries; i++) {
            const struct raft_entry *e = &m.entries[i];
            TRIAD_ASSERT(e->len == 0 ? e->data == NULL
                                     : e->data >= p && e->data + e->len <= p + len);
        }
        TRIAD_ASSERT(m.len == 0 ? m.data == NULL : m.data >= p && m.data + m.len <= p + len);
        rc = peer_encode_raft(out, &m);
        TRIAD_ASSERT(rc == 0);
        return 0;
    }
    case PEER_MSG_PROXY_REQ: {
        struct peer_proxy_req q;
        rc = peer_decode_proxy_req(p, len, a, &q, errmsg, sizeof(errmsg));
        if (rc != 0)
            return rc;
        for (uint32_t i = 0; i < q.argc; i++)
            TRIAD_ASSERT(q.argv[i][q.argvlen[i]] == '\0');
        rc = peer_encode_proxy_req(out, &q);
        TRIAD_ASSERT(rc == 0);
        return 0;
    }
    case PEER_MSG_PROXY_REPLY: {
        struct peer_proxy_reply r;
        rc = peer_decode_proxy_reply(p, len, &r, errmsg, sizeof(errmsg));
        if (rc != 0)
            return rc;
        rc = peer_encode_proxy_reply(out, &r);
        TRIAD_ASSERT(rc == 0);
        return 0;
    }
    case PEER_MSG_ANNOUNCE: {
        struct peer_announce an;
        rc = peer_decode_announce(p, len, &an, errmsg, sizeof(errmsg));
        if (rc != 0)
            return rc;
        rc = peer_encode_announce(out, &an);
        TRIAD_ASSERT(rc == 0);
        return 0;
    }
    case PEER_MSG_DYN: {
        struct dyn_msg m;
        rc = peer_decode_dyn(p, len, &m, errmsg, sizeof(errmsg));
        if (rc != 0)
            return rc;
        /* what the decoder hands out lies inside the payload */
        TRIAD_ASSERT(m.klen == 0 || ((const uint8_t *)m.key >= p &&
                                     (const uint8_t *)m.key + m.klen <= p + len));
        TRIAD_ASSERT(m.blen == 0 || ((const uint8_t *)m.body >= p &&
                                     (const uint8_t *)m.body + m.blen <= p + len));
        TRIAD_ASSERT(m.b2len == 0 || ((const uint8_t *)m.body2 >= p &&
                                      (const uint8_t *)m.body2 + m.b2len <= p + len));
        rc = peer_encode_dyn(out, &m);
        TRIAD_ASSERT(rc == 0);
        return 0;
    }
    }
    TRIAD_ASSERT(0 && "no such type");
    return TRIAD_EPROTO;
}

/* The body as the payload of each type. */
static void fuzz_payloads(const uint8_t *body, size_t n)
{
    struct peer_arena a = {0};
    if (n > PEER_PAYLOAD_BYTES_MAX)
        return;
    for (uint8_t type = 1; type <= PEER_MSG_TYPE_MAX; type++) {
        struct tbuf out = {0};
        if (fuzz_reencode(type, body, n, &a, &out) == 0) {
            TRIAD_ASSERT(out.len == PEER_HEADER_BYTES + n);
            TRIAD_ASSERT(tbuf_read_u32le(out.data) == n);
            TRIAD_ASSERT((uint8_t)out.data[PEER_HDR_OFF_TYPE] == type);
            TRIAD_ASSERT(n == 0 || memcmp(out.data + PEER_HEADER_BYTES, body, n) == 0);
            /* and the frame parses back to the same payload */
            struct peer_frame f;
            size_t consumed;
            TRIAD_ASSERT(peer_frame_parse(out.data, out.len, PEER_PAYLOAD_BYTES_MAX, &f,
                                          &consumed, errmsg, sizeof(errmsg)) == 0);
            TRIAD_ASSERT(consumed == out.len && f.type == type && f.len == n);
        }
        tbuf_free(&out);
    }
    peer_arena_free(&a);
}

/* Make each frame's checksum right (and, with `fix_header`, its version and
 * flags), walking the frames as their lengths say, so the fuzzer can reach
 * the message decoders through the stream. */
static void fuzz_fix_frames(uint8_t *s, size_t n, bool fix_header)
{
    size_t off = 0;
    while (n - off >= PEER_HEADER_BYTES) {
        uint8_t *h = s + off;
        uint32_t len = tbuf_read_u32le(h);
        if (fix_header) {
            h[PEER_HDR_OFF_VERSION] = PEER_FRAME_VERSION;
            h[PEER_HDR_OFF_FLAGS] = 0;
            h[PEER_HDR_OFF_FLAGS + 1] = 0;
            h[PEER_HDR_OFF_TYPE] = (uint8_t)(1 + h[PEER_HDR_OFF_TYPE] % PEER_MSG_TYPE_MAX);
        }
        if (len > n - off - PEER_HEADER_BYTES)
            return;
        uint32_t crc = crc32c(crc32c(0, h, PEER_HDR_OFF_CRC), h + PEER_HEADER_BYTES, len);
        tbuf_write_u32le(h + PEER_HDR_OFF_CRC, crc);
        off += PEER_HEADER_BYTES + len;
    }
}

static void fuzz_log_frame(struct tbuf *log, const struct peer_frame *f)
{
    tbuf_appendc(log, (char)f->type);
    tbuf_append_u32le(log, f->len);
    tbuf_append(log, f->payload, f->len);
}

/* The reference: peer_frame_parse over the whole stream; every frame that
 * decodes must re-encode to its own bytes. */
static void fuzz_reference(const uint8_t *s, size_t n, uint32_t limit, struct tbuf *log)
{
    struct peer_arena a = {0};
    size_t off = 0;
    int frames = 0;
    while (frames < FUZZ_FRAMES_MAX) {
        struct peer_frame f;
        size_t consumed;
        int rc = peer_frame_parse(s + off, n - off, limit, &f, &consumed, errmsg, sizeof(errmsg));
        if (rc == TRIAD_EPROTO)
            tbuf_appendf(log, "E%s", errmsg);
        if (rc != 0)
            break;
        frames++;
        TRIAD_ASSERT(consumed == PEER_HEADER_BYTES + (size_t)f.len && consumed <= n - off);
        TRIAD_ASSERT(f.len <= limit && f.type >= 1 && f.type <= PEER_MSG_TYPE_MAX);
        fuzz_log_frame(log, &f);
        struct tbuf out = {0};
        if (fuzz_reencode(f.type, f.payload, f.len, &a, &out) == 0) {
            TRIAD_ASSERT(out.len == consumed);
            TRIAD_ASSERT(memcmp(out.data, s + off, consumed) == 0);
        }
        tbuf_free(&out);
        off += consumed;
    }
    peer_arena_free(&a);
}

static bool fuzz_drain(struct peer_decoder *d, struct tbuf *log, int *frames)
{
    struct peer_frame f;
    int rc;
    while (*frames < FUZZ_FRAMES_MAX && (rc = peer_decoder_next(d, &f)) == 0) {
        fuzz_log_frame(log, &f);
        (*frames)++;
    }
    if (*frames >= FUZZ_FRAMES_MAX)
        return false;
    if (rc == TRIAD_EPROTO) {
        tbuf_appendf(log, "E%s", d->errmsg);
        return false;
    }
    TRIAD_ASSERT(rc == TRIAD_EAGAIN);
    return true;
}

/* The stream through the decoder, in chunks whose sizes come from `sizes`
 * (cycled; all at once when nsizes is 0), fed or read in place. */
static void fuzz_decoder(const uint8_t *s, size_t n, uint32_t limit, const uint8_t *sizes,
                         size_t nsizes, bool in_place, struct tbuf *log)
{
    struct peer_decoder d;
    size_t off = 0, k = 0;
    int frames = 0;
    peer_decoder_init(&d);
    d.payload_bytes_max = limit;
    while (off < n) {
        size_t c = nsizes ? 1 + (size_t)sizes[k++ % nsizes] % 97 : n;
        c = TRIAD_MIN(c, n - off);
        if (in_place) {
            size_t avail = 0;
            uint8_t *w = peer_decoder_space(&d, &avail);
            TRIAD_ASSERT(avail >= PEER_DECODER_READ_BYTES);
            c = TRIAD_MIN(c, avail);
            memcpy(w, s + off, c);
            peer_decoder_commit(&d, c);
        } else {
            peer_decoder_feed(&d, s + off, c);
        }
        off += c;
        if (!fuzz_drain(&d, log, &frames))
            break;
    }
    peer_decoder_free(&d);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    uint8_t ctl = data[0];
    const uint8_t *body = data + 1;
    size_t n = size - 1;

    fuzz_payloads(body, n);

    uint8_t *s = malloc(n > 0 ? n : 1);
    if (n > 0)
        memcpy(s, body, n);
    if (ctl & 1)
        fuzz_fix_frames(s, n, (ctl & 2) != 0);
    /* the handshake limit, a small one, or the full one */
    static const uint32_t limits[] = {PEER_HANDSHAKE_PAYLOAD_BYTES_MAX, 64,
                                      PEER_PAYLOAD_BYTES_MAX, PEER_PAYLOAD_BYTES_MAX};
    uint32_t limit = limits[(ctl >> 2) & 3];

    /* chunk sizes: the input's last bytes read backwards */
    uint8_t sizes[16];
    size_t nsizes = TRIAD_MIN(n, sizeof(sizes));
    for (size_t i = 0; i < nsizes; i++)
        sizes[i] = body[n - 1 - i];
    if (nsizes == 0) {
        sizes[0] = 0;
        nsizes = 1;
    }

    struct tbuf ref = {0}, whole = {0}, chunked = {0}, in_place = {0};
    fuzz_reference(s, n, limit, &ref);
    fuzz_decoder(s, n, limit, NULL, 0, false, &whole);
    fuzz_decoder(s, n, limit, sizes, nsizes, false, &chunked);
    fuzz_decoder(s, n, limit, sizes, nsizes, true, &in_place);
    TRIAD_ASSERT(whole.len == ref.len && (ref.len == 0 || !memcmp(whole.data, ref.data, ref.len)));
    TRIAD_ASSERT(chunked.len == ref.len &&
                 (ref.len == 0 || !memcmp(chunked.data, ref.data, ref.len)));
    TRIAD_ASSERT(in_place.len == ref.len &&
                 (ref.len == 0 || !memcmp(in_place.data, ref.data, ref.len)));
    tbuf_free(&ref);
    tbuf_free(&whole);
    tbuf_free(&chunked);
    tbuf_free(&in_place);
    free(s);
    return 0;
}
