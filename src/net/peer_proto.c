/* peer_proto.c - the peer protocol's codec (see peer_proto.h and
 * docs/wire-formats.md, "Peer protocol").
 *
 * Pure code: no sockets, no clock, no randomness. The one outside library
 * is OpenSSL's libcrypto, for HMAC-SHA256 and a constant-time compare.
 *
 * Every decoder reads through a bounded cursor (struct peer__rd) and checks
 * counts against the bytes that are left before it asks the arena for
 * anything, so a count in a frame can never make a node allocate more than
 * a small multiple of the frame it has already received. Every encoder of a
 * variable-size message computes the exact payload size first, refuses it
 * if it is over the limit, then writes into space reserved once.
 */
#include "peer_proto.h"

#include <limits.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "../common/crc32c.h"
#include "../common/defs.h"
#include "../common/mem.h"
#include "resp.h"

/* ---- layouts, checked at compile time ---- */

/* The header as a struct of fixed-size fields: documentation of the layout
 * (bytes are written one by one, little-endian, never through this struct). */
struct peer__wire_header {
    uint32_t payload_len;
    uint8_t type;
    uint8_t version;
    uint16_t flags;
    uint32_t crc32c;
};
_Static_assert(sizeof(struct peer__wire_header) == PEER_HEADER_BYTES, "header is 12 bytes");
_Static_assert(offsetof(struct peer__wire_header, payload_len) == PEER_HDR_OFF_LEN, "len");
_Static_assert(offsetof(struct peer__wire_header, type) == PEER_HDR_OFF_TYPE, "type");
_Static_assert(offsetof(struct peer__wire_header, version) == PEER_HDR_OFF_VERSION, "version");
_Static_assert(offsetof(struct peer__wire_header, flags) == PEER_HDR_OFF_FLAGS, "flags");
_Static_assert(offsetof(struct peer__wire_header, crc32c) == PEER_HDR_OFF_CRC, "crc");

/* HELLO: magic, u16 version, u64 cluster, u32 from, u32 to, nonce, u8 auth */
_Static_assert(PEER_MAGIC_BYTES == sizeof(PEER_MAGIC) - 1, "magic length");
_Static_assert(PEER_HELLO_BYTES == PEER_MAGIC_BYTES + 2 + 8 + 4 + 4 + PEER_NONCE_BYTES + 1,
               "hello layout");
/* RAFT fixed part: u8 type, u8 flags, u32 from, u32 to, 14 x u64, u32 n_entries, u32 len */
_Static_assert(PEER_RAFT_FIXED_BYTES == 1 + 1 + 4 + 4 + 14 * 8 + 4 + 4, "raft layout");
_Static_assert(PEER_RAFT_ENTRY_HEADER_BYTES == 8 + 8 + 1 + 4, "entry header layout");
/* PROXY_REQ: u64 req_id, u64 client_id, u64 seq, u32 db, u8 proto, u32 argc */
_Static_assert(PEER_PROXY_REQ_HEADER_BYTES == 8 + 8 + 8 + 4 + 1 + 1 + 1 + 8 + 4, "proxy req layout");
_Static_assert(PEER_PROXY_REPLY_HEADER_BYTES == 8 + 8 + 4, "proxy reply layout");
_Static_assert(PEER_PROXY_ARGC_MAX == RESP_MULTIBULK_MAX, "a proxied command is a RESP request");
/* The largest entry fits in one RAFT frame with every other field at its
 * largest, and the largest handshake frame within the handshake limit. */
_Static_assert((uint64_t)PEER_RAFT_FIXED_BYTES + RAFT_CONF_BYTES_MAX + PEER_RAFT_ENTRY_HEADER_BYTES +
                       RAFT_ENTRY_BYTES_MAX <=
                   PEER_PAYLOAD_BYTES_MAX,
               "one entry of RAFT_ENTRY_BYTES_MAX fits in a frame");
_Static_assert(6 + PEER_ERROR_TEXT_BYTES_MAX <= PEER_HANDSHAKE_PAYLOAD_BYTES_MAX,
               "an ERROR fits in a handshake frame");
_Static_assert(PEER_FRAME_BYTES_MAX < UINT32_MAX, "lengths are u32");
_Static_assert(RAFT_NODES_MAX <= UINT8_MAX, "a configuration counts members in a u8");

#define PEER_RAFT_FLAG_TRANSFER 0x01
#define PEER_RAFT_FLAG_REJECT 0x02
#define PEER_RAFT_FLAG_DONE 0x04
#define PEER_RAFT_FLAGS_ALL 0x07

/* ---- small helpers ---- */

static int peer__fail(char *errmsg, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int peer__fail(char *errmsg, size_t errlen, const char *fmt, ...)
{
    if (errmsg != NULL && errlen > 0) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(errmsg, errlen, fmt, ap);
        va_end(ap);
    }
    return TRIAD_EPROTO;
}

static inline uint16_t peer__read_u16le(const uint8_t *p)
{
    return (uint16_t)(p[0] | p[1] << 8);
}

static inline uint8_t *peer__put_u8(uint8_t *w, uint8_t v)
{
    *w = v;
    return w + 1;
}

static inline uint8_t *peer__put_u16(uint8_t *w, uint16_t v)
{
    w[0] = (uint8_t)v;
    w[1] = (uint8_t)(v >> 8);
    return w + 2;
}

static inline uint8_t *peer__put_u32(uint8_t *w, uint32_t v)
{
    tbuf_write_u32le(w, v);
    return w + 4;
}

static inline uint8_t *peer__put_u64(uint8_t *w, uint64_t v)
{
    tbuf_write_u64le(w, v);
    return w + 8;
}

static inline uint8_t *peer__put_bytes(uint8_t *w, const void *p, size_t n)
{
    if (n > 0)
        memcpy(w, p, n);
    return w + n;
}

/* A bounded reader: a read past the end yields zeros and sets `short_read`,
 * which the decoder checks before it trusts anything it read. */
struct peer__rd {
    const uint8_t *p;
    size_t left;
    bool short_read;
};

static inline bool peer__rd_take(struct peer__rd *r, size_t n, const uint8_t **out)
{
    if (r->left < n) {
        r->short_read = true;
        r->left = 0;
        *out = NULL;
        return false;
    }
    *out = r->p;
    r->p += n;
    r->left -= n;
    return true;
}

static inline uint8_t peer__rd_u8(struct peer__rd *r)
{
    const uint8_t *q;
    return peer__rd_take(r, 1, &q) ? q[0] : 0;
}

static inline uint16_t peer__rd_u16(struct peer__rd *r)
{
    const uint8_t *q;
    return peer__rd_take(r, 2, &q) ? peer__read_u16le(q) : 0;
}

static inline uint32_t peer__rd_u32(struct peer__rd *r)
{
    const uint8_t *q;
    return peer__rd_take(r, 4, &q) ? tbuf_read_u32le(q) : 0;
}

static inline uint64_t peer__rd_u64(struct peer__rd *r)
{
    const uint8_t *q;
    return peer__rd_take(r, 8, &q) ? tbuf_read_u64le(q) : 0;
}

/* Start a frame of `payload_len` bytes at the end of out: reserve the whole
 * frame once, write the header with a zero checksum and return where the
 * payload goes. peer__frame_end fills the checksum in. */
static uint8_t *peer__frame_begin(struct tbuf *out, uint8_t type, size_t payload_len,
                                  size_t *start)
{
    TRIAD_ASSERT(type >= 1 && type <= PEER_MSG_TYPE_MAX);
    TRIAD_ASSERT(payload_len <= PEER_PAYLOAD_BYTES_MAX);
    tbuf_reserve(out, PEER_HEADER_BYTES + payload_len);
    *start = out->len;
    uint8_t *h = (uint8_t *)out->data + out->len;
    peer__put_u32(h + PEER_HDR_OFF_LEN, (uint32_t)payload_len);
    h[PEER_HDR_OFF_TYPE] = type;
    h[PEER_HDR_OFF_VERSION] = PEER_FRAME_VERSION;
    peer__put_u16(h + PEER_HDR_OFF_FLAGS, 0);
    peer__put_u32(h + PEER_HDR_OFF_CRC, 0);
    return h + PEER_HEADER_BYTES;
}

/* `end` is where the payload's writer stopped: it must have written exactly
 * the length announced in the header. */
static void peer__frame_end(struct tbuf *out, size_t start, const uint8_t *end)
{
    uint8_t *h = (uint8_t *)out->data + start;
    uint32_t payload_len = tbuf_read_u32le(h + PEER_HDR_OFF_LEN);
    TRIAD_ASSERT(end == h + PEER_HEADER_BYTES + payload_len);
    TRIAD_ASSERT((size_t)(end - (const uint8_t *)out->data) <= out->cap);
    uint32_t crc = crc32c(0, h, PEER_HDR_OFF_CRC);
    crc = crc32c(crc, h + PEER_HEADER_BYTES, payload_len);
    peer__put_u32(h + PEER_HDR_OFF_CRC, crc);
    out->len = start + PEER_HEADER_BYTES + payload_len;
}

const char *peer_msg_type_name(uint8_t type)
{
    static const char *const names[] = {
        [PEER_MSG_HELLO] = "HELLO",         [PEER_MSG_HELLO_ACK] = "HELLO_ACK",
        [PEER_MSG_AUTH] = "AUTH",           [PEER_MSG_AUTH_OK] = "AUTH_OK",
        [PEER_MSG_ERROR] = "ERROR",         [PEER_MSG_PING] = "PING",
        [PEER_MSG_PONG] = "PONG",           [PEER_MSG_RAFT] = "RAFT",
        [PEER_MSG_PROXY_REQ] = "PROXY_REQ", [PEER_MSG_PROXY_REPLY] = "PROXY_REPLY",
        [PEER_MSG_ANNOUNCE] = "ANNOUNCE",   [PEER_MSG_DYN] = "DYN",
    };
    if (type < 1 || type > PEER_MSG_TYPE_MAX)
        return "?";
    return names[type];
}

const char *peer_error_code_name(uint16_t code)
{
    switch (code) {
    case PEER_ERR_PROTOCOL: return "protocol";
    case PEER_ERR_VERSION: return "version";
    case PEER_ERR_CLUSTER: return "cluster";
    case PEER_ERR_NODE: return "node";
    case PEER_ERR_AUTH: return "auth";
    case PEER_ERR_LIMIT: return "limit";
    case PEER_ERR_SHUTDOWN: return "shutdown";
    default: return "unknown";
    }
}

/* ---- frames ---- */

int peer_frame_parse(const void *buf, size_t len, uint32_t payload_bytes_max,
                     struct peer_frame *f, size_t *consumed, char *errmsg, size_t errlen)
{
    TRIAD_ASSERT(payload_bytes_max <= PEER_PAYLOAD_BYTES_MAX);
    const uint8_t *h = buf;

    *consumed = 0;
    memset(f, 0, sizeof(*f));
    if (len < PEER_HEADER_BYTES)
        return TRIAD_EAGAIN;

    /* The header is judged as soon as it is in, before any payload: a peer
     * speaking something else is told at once, not after we have waited
     * for (and buffered) whatever length its first bytes happen to say. */
    uint32_t payload_len = tbuf_read_u32le(h + PEER_HDR_OFF_LEN);
    uint8_t type = h[PEER_HDR_OFF_TYPE];
    uint8_t version = h[PEER_HDR_OFF_VERSION];
    uint16_t flags = peer__read_u16le(h + PEER_HDR_OFF_FLAGS);
    if (version != PEER_FRAME_VERSION)
        return peer__fail(errmsg, errlen, "unsupported frame version %u (this node speaks %u)",
                          version, PEER_FRAME_VERSION);
    if (flags != 0)
        return peer__fail(errmsg, errlen, "unknown frame flags 0x%04x", flags);
    if (type < 1 || type > PEER_MSG_TYPE_MAX)
        return peer__fail(errmsg, errlen, "unknown frame type %u", type);
    if (payload_len > payload_bytes_max)
        return peer__fail(errmsg, errlen, "%s frame of %u bytes exceeds the limit of %u bytes",
                          peer_msg_type_name(type), payload_len, payload_bytes_max);
    if (len - PEER_HEADER_BYTES < payload_len)
        return TRIAD_EAGAIN;

    uint32_t crc = crc32c(0, h, PEER_HDR_OFF_CRC);
    crc = crc32c(crc, h + PEER_HEADER_BYTES, payload_len);
    uint32_t want = tbuf_read_u32le(h + PEER_HDR_OFF_CRC);
    if (crc != want)
        return peer__fail(errmsg, errlen,
                          "checksum mismatch in a %s frame of %u bytes (0x%08x, expected 0x%08x)",
                          peer_msg_type_name(type), payload_len, crc, want);

    f->type = type;
    f->len = payload_len;
    f->payload = h + PEER_HEADER_BYTES;
    *consumed = PEER_HEADER_BYTES + (size_t)payload_len;
    return 0;
}

/* ---- the incremental decoder ---- */

void peer_decoder_init(struct peer_decoder *d)
{
    memset(d, 0, sizeof(*d));
    d->payload_bytes_max = PEER_PAYLOAD_BYTES_MAX;
}

void peer_decoder_free(struct peer_decoder *d)
{
    tfree(d->buf);
    d->buf = NULL;
    d->cap = d->len = d->pos = 0;
}

size_t peer_decoder_pending(const struct peer_decoder *d)
{
    TRIAD_ASSERT(d->pos <= d->len);
    return d->len - d->pos;
}

/* The size of the frame whose header is at pos, if the header is in and
 * its length is one the parser will accept; else 0. */
static size_t peer__decoder_frame_bytes(const struct peer_decoder *d)
{
    if (d->len - d->pos < PEER_HEADER_BYTES)
        return 0;
    uint32_t payload_len = tbuf_read_u32le(d->buf + d->pos + PEER_HDR_OFF_LEN);
    if (payload_len > d->payload_bytes_max)
        return 0;
    return PEER_HEADER_BYTES + (size_t)payload_len;
}

/* Drop the bytes already returned (invalidating the last frame), make room
 * for `extra` more, and give memory back after a big frame. */
static void peer__decoder_prepare(struct peer_decoder *d, size_t extra)
{
    TRIAD_ASSERT(d->pos <= d->len);
    TRIAD_ASSERT(d->len <= d->cap);
    if (d->pos > 0) {
        size_t rest = d->len - d->pos;
        if (rest > 0)
            memmove(d->buf, d->buf + d->pos, rest);
        d->len = rest;
        d->pos = 0;
    }
    TRIAD_ASSERT(extra <= SIZE_MAX - d->len);
    size_t need = d->len + extra;
    size_t frame = peer__decoder_frame_bytes(d);
    if (d->cap > PEER_DECODER_KEEP_BYTES && TRIAD_MAX(need, frame) <= PEER_DECODER_KEEP_BYTES) {
        d->buf = trealloc(d->buf, PEER_DECODER_KEEP_BYTES);
        d->cap = PEER_DECODER_KEEP_BYTES;
    }
    if (need <= d->cap)
        return;
    /* Doubling while small; past that the exact size, and the whole of a
     * big frame at once when its header is in: a 64 MiB frame fed 64 KiB
     * at a time is one allocation of 64 MiB, not a thousand reallocations
     * nor 128 MiB. */
    size_t cap = d->cap > 0 ? d->cap : PEER_DECODER_READ_BYTES;
    while (cap < need && cap < PEER_DECODER_KEEP_BYTES)
        cap *= 2;
    cap = TRIAD_MAX(cap, TRIAD_MAX(need, frame));
    d->buf = trealloc(d->buf, cap);
    d->cap = cap;
}

void peer_decoder_feed(struct peer_decoder *d, const void *data, size_t n)
{
    if (n == 0)
        return;
    peer__decoder_prepare(d, n);
    memcpy(d->buf + d->len, data, n);
    d->len += n;
}

uint8_t *peer_decoder_space(struct peer_decoder *d, size_t *avail)
{
    /* room for the rest of the frame being received, in one read if the
     * socket has it */
    size_t extra = PEER_DECODER_READ_BYTES;
    size_t frame = peer__decoder_frame_bytes(d), have = d->len - d->pos;
    if (frame > have)
        extra = TRIAD_MAX(extra, frame - have);
    peer__decoder_prepare(d, extra);
    TRIAD_ASSERT(d->cap - d->len >= extra);
    *avail = d->cap - d->len;
    return d->buf + d->len;
}

void peer_decoder_commit(struct peer_decoder *d, size_t n)
{
    TRIAD_ASSERT(n <= d->cap - d->len);
    d->len += n;
}

int peer_decoder_next(struct peer_decoder *d, struct peer_frame *f)
{
    size_t consumed = 0;
    if (d->failed) {
        memset(f, 0, sizeof(*f));
        return TRIAD_EPROTO;
    }
    if (d->len - d->pos < PEER_HEADER_BYTES) {
        memset(f, 0, sizeof(*f)); /* and no pointer arithmetic on a NULL buf */
        return TRIAD_EAGAIN;
    }
    int rc = peer_frame_parse(d->buf + d->pos, d->len - d->pos, d->payload_bytes_max, f,
                              &consumed, d->errmsg, sizeof(d->errmsg));
    if (rc == TRIAD_EPROTO) {
        d->failed = true;
        return rc;
    }
    if (rc == TRIAD_EAGAIN)
        return rc;
    TRIAD_ASSERT(rc == 0);
    TRIAD_ASSERT(consumed >= PEER_HEADER_BYTES && consumed <= d->len - d->pos);
    /* Nothing moves until the next feed or space: the payload stays where
     * it is while the caller takes the frames after it. */
    d->pos += consumed;
    return 0;
}

/* ---- the arena ---- */

void peer_arena_free(struct peer_arena *a)
{
    tfree(a->mem);
    a->mem = NULL;
    a->cap = 0;
}

/* `size` bytes (> 0), suitably aligned for any type; what the arena held is
 * gone. */
static void *peer__arena_get(struct peer_arena *a, size_t size)
{
    TRIAD_ASSERT(size > 0);
    bool too_small = size > a->cap;
    bool too_big = a->cap > PEER_ARENA_KEEP_BYTES && size <= PEER_ARENA_KEEP_BYTES;
    if (too_small || too_big) {
        tfree(a->mem);
        a->cap = TRIAD_MAX(size, (size_t)4096);
        a->mem = tmalloc(a->cap);
    }
    return a->mem;
}

/* ---- handshake ---- */

void peer_encode_hello(struct tbuf *out, uint8_t type, const struct peer_hello *h)
{
    TRIAD_ASSERT(type == PEER_MSG_HELLO || type == PEER_MSG_HELLO_ACK);
    size_t start;
    uint8_t *w = peer__frame_begin(out, type, PEER_HELLO_BYTES, &start);
    w = peer__put_bytes(w, PEER_MAGIC, PEER_MAGIC_BYTES);
    w = peer__put_u16(w, h->version);
    w = peer__put_u64(w, h->cluster_id);
    w = peer__put_u32(w, h->from);
    w = peer__put_u32(w, h->to);
    w = peer__put_bytes(w, h->nonce, PEER_NONCE_BYTES);
    w = peer__put_u8(w, h->auth ? 1 : 0);
    peer__frame_end(out, start, w);
}

int peer_decode_hello(const uint8_t *p, size_t len, struct peer_hello *out, uint16_t *code,
                      char *errmsg, size_t errlen)
{
    struct peer__rd r = {p, len, false};
    const uint8_t *magic, *nonce;

    memset(out, 0, sizeof(*out));
    if (code != NULL)
        *code = PEER_ERR_PROTOCOL;
    if (!peer__rd_take(&r, PEER_MAGIC_BYTES, &magic) || memcmp(magic, PEER_MAGIC, PEER_MAGIC_BYTES))
        return peer__fail(errmsg, errlen, "not a Triad peer: bad magic in hello");
    uint16_t version = peer__rd_u16(&r);
    if (r.short_read)
        return peer__fail(errmsg, errlen, "hello of %zu bytes is too short", len);
    /* Before the length: another version's hello may be longer. */
    if (version != PEER_PROTOCOL_VERSION) {
        if (code != NULL)
            *code = PEER_ERR_VERSION;
        return peer__fail(errmsg, errlen,
                          "protocol version mismatch: this node speaks version %u, the peer "
                          "version %u",
                          PEER_PROTOCOL_VERSION, version);
    }
    if (len != PEER_HELLO_BYTES)
        return peer__fail(errmsg, errlen, "hello of %zu bytes, expected %u", len,
                          PEER_HELLO_BYTES);
    out->version = version;
    out->cluster_id = peer__rd_u64(&r);
    out->from = peer__rd_u32(&r);
    out->to = peer__rd_u32(&r);
    peer__rd_take(&r, PEER_NONCE_BYTES, &nonce);
    uint8_t auth = peer__rd_u8(&r);
    TRIAD_ASSERT(!r.short_read && r.left == 0);
    memcpy(out->nonce, nonce, PEER_NONCE_BYTES);
    if (auth > 1) {
        memset(out, 0, sizeof(*out));
        return peer__fail(errmsg, errlen, "bad auth flag %u in hello", auth);
    }
    out->auth = auth == 1;
    if (code != NULL)
        *code = 0;
    return 0;
}

int peer_hello_check(const struct peer_hello *h, uint64_t cluster_id, raft_id self_id,
                     raft_id peer_id, bool secret_configured, uint16_t *code, char *errmsg,
                     size_t errlen)
{
    TRIAD_ASSERT(self_id != 0);
    uint16_t c = 0;
    int rc = 0;

    if (h->cluster_id != cluster_id) {
        c = PEER_ERR_CLUSTER;
        rc = peer__fail(errmsg, errlen, "cluster id mismatch: expected %llu, got %llu",
                        (unsigned long long)cluster_id, (unsigned long long)h->cluster_id);
    } else if (h->to != self_id) {
        c = PEER_ERR_NODE;
        rc = peer__fail(errmsg, errlen, "node id mismatch: this is node %u, the peer wants node %u",
                        self_id, h->to);
    } else if (h->from == 0 || h->from == self_id) {
        c = PEER_ERR_NODE;
        rc = peer__fail(errmsg, errlen, "bad peer node id %u (this is node %u)", h->from, self_id);
    } else if (peer_id != 0 && h->from != peer_id) {
        c = PEER_ERR_NODE;
        rc = peer__fail(errmsg, errlen, "node id mismatch: expected node %u, got node %u",
                        peer_id, h->from);
    } else if (secret_configured && !h->auth) {
        c = PEER_ERR_AUTH;
        rc = peer__fail(errmsg, errlen,
                        "authentication mismatch: node %u has a cluster secret, node %u has none",
                        self_id, h->from);
    } else if (!secret_configured && h->auth) {
        c = PEER_ERR_AUTH;
        rc = peer__fail(errmsg, errlen,
                        "authentication mismatch: node %u has a cluster secret, node %u has none",
                        h->from, self_id);
    }
    if (code != NULL)
        *code = c;
    return rc;
}

int peer_hmac_sha256(const void *key, size_t key_len, const void *data, size_t len,
                     uint8_t mac[PEER_MAC_BYTES])
{
    static const uint8_t empty[1];
    unsigned int mac_len = 0;

    if (key_len > INT_MAX)
        return TRIAD_EINVAL;
    if (HMAC(EVP_sha256(), key_len > 0 ? key : empty, (int)key_len, len > 0 ? data : empty, len,
             mac, &mac_len) == NULL ||
        mac_len != PEER_MAC_BYTES) {
        memset(mac, 0, PEER_MAC_BYTES);
        return TRIAD_EINVAL;
    }
    return 0;
}

#define PEER_AUTH_LABEL_BYTES (sizeof(PEER_AUTH_LABEL) - 1)
#define PEER_AUTH_INPUT_BYTES (PEER_AUTH_LABEL_BYTES + 1 + 8 + 4 + 4 + 2 * PEER_NONCE_BYTES)
_Static_assert(PEER_AUTH_INPUT_BYTES == 62, "the MAC's input as documented");

int peer_auth_compute(const void *secret, size_t secret_len, uint8_t role,
                      const struct peer_hello *hello, const struct peer_hello *ack,
                      uint8_t mac[PEER_MAC_BYTES])
{
    TRIAD_ASSERT(role == PEER_AUTH_CONNECTOR || role == PEER_AUTH_ACCEPTOR);
    uint8_t in[PEER_AUTH_INPUT_BYTES];

    if (secret == NULL || secret_len == 0 || secret_len > PEER_SECRET_BYTES_MAX) {
        memset(mac, 0, PEER_MAC_BYTES);
        return TRIAD_EINVAL;
    }
    uint8_t *w = in;
    w = peer__put_bytes(w, PEER_AUTH_LABEL, PEER_AUTH_LABEL_BYTES);
    w = peer__put_u8(w, role);
    w = peer__put_u64(w, hello->cluster_id);
    w = peer__put_u32(w, hello->from);
    w = peer__put_u32(w, ack->from);
    w = peer__put_bytes(w, hello->nonce, PEER_NONCE_BYTES);
    w = peer__put_bytes(w, ack->nonce, PEER_NONCE_BYTES);
    TRIAD_ASSERT(w == in + sizeof(in));
    return peer_hmac_sha256(secret, secret_len, in, sizeof(in), mac);
}

bool peer_auth_equal(const uint8_t a[PEER_MAC_BYTES], const uint8_t b[PEER_MAC_BYTES])
{
    /* A compare that stops at the first difference would tell a forger,
     * by its timing, how many leading bytes of a guess were right. */
    return CRYPTO_memcmp(a, b, PEER_MAC_BYTES) == 0;
}

void peer_encode_auth(struct tbuf *out, uint8_t type, const uint8_t mac[PEER_MAC_BYTES])
{
    TRIAD_ASSERT(type == PEER_MSG_AUTH || type == PEER_MSG_AUTH_OK);
    size_t start;
    uint8_t *w = peer__frame_begin(out, type, PEER_MAC_BYTES, &start);
    w = peer__put_bytes(w, mac, PEER_MAC_BYTES);
    peer__frame_end(out, start, w);
}

int peer_decode_auth(const uint8_t *p, size_t len, uint8_t mac[PEER_MAC_BYTES], char *errmsg,
                     size_t errlen)
{
    memset(mac, 0, PEER_MAC_BYTES);
    if (len != PEER_MAC_BYTES)
        return peer__fail(errmsg, errlen, "auth of %zu bytes, expected %u", len, PEER_MAC_BYTES);
    memcpy(mac, p, PEER_MAC_BYTES);
    return 0;
}

/* ---- ERROR, PING, PONG ---- */

void peer_encode_error(struct tbuf *out, uint16_t code, const char *text, size_t len)
{
    len = TRIAD_MIN(len, (size_t)PEER_ERROR_TEXT_BYTES_MAX);
    size_t start;
    uint8_t *w = peer__frame_begin(out, PEER_MSG_ERROR, 2 + 4 + len, &start);
    w = peer__put_u16(w, code);
    w = peer__put_u32(w, (uint32_t)len);
    w = peer__put_bytes(w, text, len);
    peer__frame_end(out, start, w);
}

void peer_encode_errorf(struct tbuf *out, uint16_t code, const char *fmt, ...)
{
    char text[PEER_ERROR_TEXT_BYTES_MAX + 1];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(text, sizeof(text), fmt, ap);
    va_end(ap);
    TRIAD_ASSERT(n >= 0);
    peer_encode_error(out, code, text, TRIAD_MIN((size_t)n, sizeof(text) - 1));
}

int peer_decode_error(const uint8_t *p, size_t len, struct peer_error *out, char *errmsg,
                      size_t errlen)
{
    struct peer__rd r = {p, len, false};
    const uint8_t *text;

    memset(out, 0, sizeof(*out));
    uint16_t code = peer__rd_u16(&r);
    uint32_t tlen = peer__rd_u32(&r);
    if (r.short_read)
        return peer__fail(errmsg, errlen, "error frame of %zu bytes is too short", len);
    if (tlen > PEER_ERROR_TEXT_BYTES_MAX)
        return peer__fail(errmsg, errlen, "error text of %u bytes exceeds the limit of %u", tlen,
                          PEER_ERROR_TEXT_BYTES_MAX);
    if (r.left != tlen)
        return peer__fail(errmsg, errlen, "error text of %u bytes in %zu bytes", tlen, r.left);
    peer__rd_take(&r, tlen, &text);
    out->code = code;
    out->len = tlen;
    out->text = (const char *)text;
    return 0;
}

void peer_encode_ping(struct tbuf *out, uint8_t type, uint64_t value)
{
    TRIAD_ASSERT(type == PEER_MSG_PING || type == PEER_MSG_PONG);
    size_t start;
    uint8_t *w = peer__frame_begin(out, type, 8, &start);
    w = peer__put_u64(w, value);
    peer__frame_end(out, start, w);
}

int peer_decode_ping(const uint8_t *p, size_t len, uint64_t *value, char *errmsg, size_t errlen)
{
    *value = 0;
    if (len != 8)
        return peer__fail(errmsg, errlen, "ping of %zu bytes, expected 8", len);
    *value = tbuf_read_u64le(p);
    return 0;
}

/* ---- RAFT ---- */

/* Check m as the decoder would and compute its payload size. */
static int peer__raft_size(const struct raft_msg *m, uint8_t *conf, size_t *conf_len,
                           uint64_t *size)
{
    if (m->type < RAFT_MSG_PREVOTE || m->type > RAFT_MSG_TYPE_MAX)
        return TRIAD_EINVAL;
    if (m->n_entries > 0 && (m->type != RAFT_MSG_APPEND || m->entries == NULL))
        return TRIAD_EINVAL;
    if (m->len > 0 && (m->type != RAFT_MSG_SNAPSHOT || m->data == NULL))
        return TRIAD_EINVAL;
    if (m->snap_conf.n > RAFT_NODES_MAX)
        return TRIAD_EINVAL;
    *conf_len = raft_conf_encode(&m->snap_conf, conf);
    struct raft_conf check;
    if (raft_conf_decode(&check, conf, *conf_len) != 0)
        return TRIAD_EINVAL; /* an id 0, a bad role or a duplicate id */

    uint64_t n = PEER_RAFT_FIXED_BYTES + *conf_len + (uint64_t)m->len;
    for (uint32_t i = 0; i < m->n_entries; i++) {
        const struct raft_entry *e = &m->entries[i];
        if (e->type < RAFT_ENTRY_NORMAL || e->type > RAFT_ENTRY_CONF)
            return TRIAD_EINVAL;
        if (e->len > RAFT_ENTRY_BYTES_MAX || (e->len > 0 && e->data == NULL))
            return TRIAD_EINVAL;
        n += PEER_RAFT_ENTRY_HEADER_BYTES + (uint64_t)e->len;
        if (n > PEER_PAYLOAD_BYTES_MAX)
            return TRIAD_ELIMIT; /* also stops n from growing without bound */
    }
    if (n > PEER_PAYLOAD_BYTES_MAX)
        return TRIAD_ELIMIT;
    *size = n;
    return 0;
}

int peer_encode_raft(struct tbuf *out, const struct raft_msg *m)
{
    uint8_t conf[RAFT_CONF_BYTES_MAX];
    size_t conf_len = 0;
    uint64_t size = 0;
    int rc = peer__raft_size(m, conf, &conf_len, &size);
    if (rc != 0)
        return rc;

    uint8_t flags = (m->transfer ? PEER_RAFT_FLAG_TRANSFER : 0) |
                    (m->reject ? PEER_RAFT_FLAG_REJECT : 0) | (m->done ? PEER_RAFT_FLAG_DONE : 0);
    size_t start;
    uint8_t *w = peer__frame_begin(out, PEER_MSG_RAFT, (size_t)size, &start);
    uint8_t *fixed = w;
    w = peer__put_u8(w, m->type);
    w = peer__put_u8(w, flags);
    w = peer__put_u32(w, m->from);
    w = peer__put_u32(w, m->to);
    w = peer__put_u64(w, m->term);
    w = peer__put_u64(w, m->last_log_index);
    w = peer__put_u64(w, m->last_log_term);
    w = peer__put_u64(w, m->prev_index);
    w = peer__put_u64(w, m->prev_term);
    w = peer__put_u64(w, m->commit);
    w = peer__put_u64(w, m->seq);
    w = peer__put_u64(w, m->index);
    w = peer__put_u64(w, m->hint_index);
    w = peer__put_u64(w, m->hint_term);
    w = peer__put_u64(w, m->snap_index);
    w = peer__put_u64(w, m->snap_term);
    w = peer__put_u64(w, m->snap_size);
    w = peer__put_u64(w, m->offset);
    w = peer__put_u32(w, m->n_entries);
    w = peer__put_u32(w, m->len);
    TRIAD_ASSERT(w == fixed + PEER_RAFT_FIXED_BYTES);
    w = peer__put_bytes(w, conf, conf_len);
    for (uint32_t i = 0; i < m->n_entries; i++) {
        const struct raft_entry *e = &m->entries[i];
        w = peer__put_u64(w, e->term);
        w = peer__put_u64(w, e->index);
        w = peer__put_u8(w, e->type);
        w = peer__put_u32(w, e->len);
        w = peer__put_bytes(w, e->data, e->len);
    }
    w = peer__put_bytes(w, m->data, m->len);
    peer__frame_end(out, start, w);
    return 0;
}

int peer_decode_raft(const uint8_t *p, size_t len, struct peer_arena *a, struct raft_msg *out,
                     char *errmsg, size_t errlen)
{
    struct peer__rd r = {p, len, false};
    struct raft_msg m;
    const uint8_t *q;

    memset(out, 0, sizeof(*out));
    memset(&m, 0, sizeof(m));
    m.type = peer__rd_u8(&r);
    uint8_t flags = peer__rd_u8(&r);
    m.from = peer__rd_u32(&r);
    m.to = peer__rd_u32(&r);
    m.term = peer__rd_u64(&r);
    m.last_log_index = peer__rd_u64(&r);
    m.last_log_term = peer__rd_u64(&r);
    m.prev_index = peer__rd_u64(&r);
    m.prev_term = peer__rd_u64(&r);
    m.commit = peer__rd_u64(&r);
    m.seq = peer__rd_u64(&r);
    m.index = peer__rd_u64(&r);
    m.hint_index = peer__rd_u64(&r);
    m.hint_term = peer__rd_u64(&r);
    m.snap_index = peer__rd_u64(&r);
    m.snap_term = peer__rd_u64(&r);
    m.snap_size = peer__rd_u64(&r);
    m.offset = peer__rd_u64(&r);
    m.n_entries = peer__rd_u32(&r);
    m.len = peer__rd_u32(&r);
    if (r.short_read)
        return peer__fail(errmsg, errlen, "raft message of %zu bytes is too short", len);
    TRIAD_ASSERT(r.left == len - PEER_RAFT_FIXED_BYTES);
    if (m.type < RAFT_MSG_PREVOTE || m.type > RAFT_MSG_TYPE_MAX)
        return peer__fail(errmsg, errlen, "unknown raft message type %u", m.type);
    if (flags & ~PEER_RAFT_FLAGS_ALL)
        return peer__fail(errmsg, errlen, "unknown raft message flags 0x%02x", flags);
    m.transfer = (flags & PEER_RAFT_FLAG_TRANSFER) != 0;
    m.reject = (flags & PEER_RAFT_FLAG_REJECT) != 0;
    m.done = (flags & PEER_RAFT_FLAG_DONE) != 0;

    /* The configuration: [u8 n][0][0][1] then n * 5 bytes. */
    if (r.left < 4)
        return peer__fail(errmsg, errlen, "raft message of %zu bytes is too short", len);
    size_t conf_n = r.p[0];
    if (conf_n > RAFT_NODES_MAX)
        return peer__fail(errmsg, errlen, "configuration of %zu members exceeds %u", conf_n,
                          RAFT_NODES_MAX);
    size_t conf_len = 4 + conf_n * 5;
    if (!peer__rd_take(&r, conf_len, &q))
        return peer__fail(errmsg, errlen, "raft message of %zu bytes is too short", len);
    if (raft_conf_decode(&m.snap_conf, q, conf_len) != 0)
        return peer__fail(errmsg, errlen, "bad snapshot configuration in a raft message");

    if (m.n_entries > 0 && m.type != RAFT_MSG_APPEND)
        return peer__fail(errmsg, errlen, "%u entries in a raft message of type %u", m.n_entries,
                          m.type);
    if (m.len > 0 && m.type != RAFT_MSG_SNAPSHOT)
        return peer__fail(errmsg, errlen, "a snapshot chunk in a raft message of type %u", m.type);
    /* Before the arena is asked: every entry takes at least its header, so
     * the count cannot promise more entries than the bytes could hold. */
    if (m.len > r.left || m.n_entries > (r.left - m.len) / PEER_RAFT_ENTRY_HEADER_BYTES)
        return peer__fail(errmsg, errlen,
                          "%u entries and a %u-byte chunk cannot fit in %zu bytes", m.n_entries,
                          m.len, r.left);

    struct raft_entry *entries = NULL;
    if (m.n_entries > 0)
        entries = peer__arena_get(a, (size_t)m.n_entries * sizeof(*entries));
    for (uint32_t i = 0; i < m.n_entries; i++) {
        struct raft_entry *e = &entries[i];
        memset(e, 0, sizeof(*e));
        e->term = peer__rd_u64(&r);
        e->index = peer__rd_u64(&r);
        e->type = peer__rd_u8(&r);
        e->len = peer__rd_u32(&r);
        if (r.short_read)
            return peer__fail(errmsg, errlen, "entry %u of %u is truncated", i, m.n_entries);
        if (e->type < RAFT_ENTRY_NORMAL || e->type > RAFT_ENTRY_CONF)
            return peer__fail(errmsg, errlen, "entry %u has unknown type %u", i, e->type);
        if (e->len > RAFT_ENTRY_BYTES_MAX)
            return peer__fail(errmsg, errlen, "entry %u of %u bytes exceeds the limit of %u", i,
                              e->len, RAFT_ENTRY_BYTES_MAX);
        if (e->len > r.left)
            return peer__fail(errmsg, errlen, "entry %u is truncated", i);
        if (e->len > 0) {
            peer__rd_take(&r, e->len, &q);
            /* The core borrows entries read-only (raft_step copies what it
             * keeps); the field is not const because the log owns its own. */
            e->data = (uint8_t *)q;
        }
    }
    if (r.left != m.len)
        return peer__fail(errmsg, errlen, "snapshot chunk of %u bytes in %zu bytes", m.len,
                          r.left);
    if (m.len > 0) {
        peer__rd_take(&r, m.len, &q);
        m.data = q;
    }
    TRIAD_ASSERT(!r.short_read && r.left == 0);
    m.entries = entries;
    *out = m;
    return 0;
}

/* ---- PROXY_REQ, PROXY_REPLY ---- */

int peer_encode_proxy_req(struct tbuf *out, const struct peer_proxy_req *req)
{
    if (req->proto != 2 && req->proto != 3)
        return TRIAD_EINVAL;
    if (req->kind > PEER_PROXY_WAIT || req->ack > RAFT_ACK_ALL)
        return TRIAD_EINVAL;
    if (req->argc == 0 || req->argv == NULL || req->argvlen == NULL)
        return TRIAD_EINVAL;
    if (req->argc > PEER_PROXY_ARGC_MAX)
        return TRIAD_ELIMIT;
    uint64_t size = PEER_PROXY_REQ_HEADER_BYTES;
    for (uint32_t i = 0; i < req->argc; i++) {
        if (req->argvlen[i] > 0 && req->argv[i] == NULL)
            return TRIAD_EINVAL;
        if (req->argvlen[i] > PEER_PAYLOAD_BYTES_MAX)
            return TRIAD_ELIMIT;
        size += 4 + (uint64_t)req->argvlen[i];
        if (size > PEER_PAYLOAD_BYTES_MAX)
            return TRIAD_ELIMIT;
    }

    size_t start;
    uint8_t *w = peer__frame_begin(out, PEER_MSG_PROXY_REQ, (size_t)size, &start);
    w = peer__put_u64(w, req->req_id);
    w = peer__put_u64(w, req->client_id);
    w = peer__put_u64(w, req->seq);
    w = peer__put_u32(w, req->db);
    w = peer__put_u8(w, req->proto);
    w = peer__put_u8(w, req->kind);
    w = peer__put_u8(w, req->ack);
    w = peer__put_u64(w, req->after);
    w = peer__put_u32(w, req->argc);
    for (uint32_t i = 0; i < req->argc; i++) {
        w = peer__put_u32(w, (uint32_t)req->argvlen[i]);
        w = peer__put_bytes(w, req->argv[i], req->argvlen[i]);
    }
    peer__frame_end(out, start, w);
    return 0;
}

int peer_decode_proxy_req(const uint8_t *p, size_t len, struct peer_arena *a,
                          struct peer_proxy_req *out, char *errmsg, size_t errlen)
{
    struct peer__rd r = {p, len, false};
    struct peer_proxy_req q;

    memset(out, 0, sizeof(*out));
    memset(&q, 0, sizeof(q));
    q.req_id = peer__rd_u64(&r);
    q.client_id = peer__rd_u64(&r);
    q.seq = peer__rd_u64(&r);
    q.db = peer__rd_u32(&r);
    q.proto = peer__rd_u8(&r);
    q.kind = peer__rd_u8(&r);
    q.ack = peer__rd_u8(&r);
    q.after = peer__rd_u64(&r);
    q.argc = peer__rd_u32(&r);
    if (r.short_read)
        return peer__fail(errmsg, errlen, "proxied request of %zu bytes is too short", len);
    if (q.proto != 2 && q.proto != 3)
        return peer__fail(errmsg, errlen, "proxied request with protocol %u", q.proto);
    if (q.kind > PEER_PROXY_WAIT)
        return peer__fail(errmsg, errlen, "proxied request of unknown kind %u", q.kind);
    if (q.ack > RAFT_ACK_ALL)
        return peer__fail(errmsg, errlen, "proxied request with ack level %u", q.ack);
    if (q.argc == 0)
        return peer__fail(errmsg, errlen, "proxied request with no arguments");
    if (q.argc > PEER_PROXY_ARGC_MAX)
        return peer__fail(errmsg, errlen, "proxied request of %u arguments exceeds %u", q.argc,
                          PEER_PROXY_ARGC_MAX);
    if (q.argc > r.left / 4)
        return peer__fail(errmsg, errlen, "%u arguments cannot fit in %zu bytes", q.argc,
                          r.left);

    /* First pass: every length in bounds, and the bytes to copy. */
    struct peer__rd scan = r;
    size_t bytes = 0;
    for (uint32_t i = 0; i < q.argc; i++) {
        uint32_t alen = peer__rd_u32(&scan);
        const uint8_t *arg;
        if (scan.short_read || !peer__rd_take(&scan, alen, &arg))
            return peer__fail(errmsg, errlen, "argument %u of %u is truncated", i, q.argc);
        bytes += (size_t)alen + 1;
    }
    if (scan.left != 0)
        return peer__fail(errmsg, errlen, "%zu trailing bytes after a proxied request",
                          scan.left);

    /* argv, argvlen and the NUL-terminated copies, in one piece of the
     * arena: at most argc * 17 + the payload bytes, argc <= payload / 4. */
    size_t ptrs = (size_t)q.argc * sizeof(*q.argv);
    size_t lens = (size_t)q.argc * sizeof(*q.argvlen);
    _Static_assert(sizeof(char *) % _Alignof(size_t) == 0, "argvlen follows argv aligned");
    uint8_t *mem = peer__arena_get(a, ptrs + lens + bytes);
    q.argv = (char **)mem;
    q.argvlen = (size_t *)(mem + ptrs);
    char *copy = (char *)mem + ptrs + lens;
    for (uint32_t i = 0; i < q.argc; i++) {
        uint32_t alen = peer__rd_u32(&r);
        const uint8_t *arg;
        peer__rd_take(&r, alen, &arg);
        if (alen > 0)
            memcpy(copy, arg, alen);
        copy[alen] = '\0';
        q.argv[i] = copy;
        q.argvlen[i] = alen;
        copy += (size_t)alen + 1;
    }
    TRIAD_ASSERT(!r.short_read && r.left == 0);
    TRIAD_ASSERT(copy == (char *)mem + ptrs + lens + bytes);
    *out = q;
    return 0;
}

int peer_encode_proxy_reply(struct tbuf *out, const struct peer_proxy_reply *rep)
{
    if (rep->len > 0 && rep->data == NULL)
        return TRIAD_EINVAL;
    if (rep->len > PEER_PAYLOAD_BYTES_MAX - PEER_PROXY_REPLY_HEADER_BYTES)
        return TRIAD_ELIMIT;
    size_t start;
    uint8_t *w = peer__frame_begin(out, PEER_MSG_PROXY_REPLY,
                                   PEER_PROXY_REPLY_HEADER_BYTES + (size_t)rep->len, &start);
    w = peer__put_u64(w, rep->req_id);
    w = peer__put_u64(w, rep->index);
    w = peer__put_u32(w, rep->len);
    w = peer__put_bytes(w, rep->data, rep->len);
    peer__frame_end(out, start, w);
    return 0;
}

int peer_decode_proxy_reply(const uint8_t *p, size_t len, struct peer_proxy_reply *out,
                            char *errmsg, size_t errlen)
{
    struct peer__rd r = {p, len, false};
    const uint8_t *data;

    memset(out, 0, sizeof(*out));
    uint64_t req_id = peer__rd_u64(&r);
    uint64_t index = peer__rd_u64(&r);
    uint32_t rlen = peer__rd_u32(&r);
    if (r.short_read)
        return peer__fail(errmsg, errlen, "proxied reply of %zu bytes is too short", len);
    if (r.left != rlen)
        return peer__fail(errmsg, errlen, "proxied reply of %u bytes in %zu bytes", rlen, r.left);
    out->req_id = req_id;
    out->index = index;
    out->len = rlen;
    if (rlen > 0) {
        peer__rd_take(&r, rlen, &data);
        out->data = data;
    }
    return 0;
}

/* ---- ANNOUNCE ---- */

int peer_encode_announce(struct tbuf *out, const struct peer_announce *a)
{
    size_t n = strnlen(a->host, sizeof(a->host));
    if (a->client_port == 0 || !triad_host_ok(a->host, n, PEER_ANNOUNCE_HOST_MAX))
        return TRIAD_EINVAL;
    size_t start;
    uint8_t *w = peer__frame_begin(out, PEER_MSG_ANNOUNCE, 2 + 1 + n, &start);
    w = peer__put_u16(w, a->client_port);
    w = peer__put_u8(w, (uint8_t)n);
    w = peer__put_bytes(w, a->host, n);
    peer__frame_end(out, start, w);
    return 0;
}

int peer_decode_announce(const uint8_t *p, size_t len, struct peer_announce *out, char *errmsg,
                         size_t errlen)
{
    struct peer__rd r = {p, len, false};
    const uint8_t *host;

    memset(out, 0, sizeof(*out));
    uint16_t port = peer__rd_u16(&r);
    uint8_t n = peer__rd_u8(&r);
    if (r.short_read)
        return peer__fail(errmsg, errlen, "announce of %zu bytes is too short", len);
    if (r.left != n)
        return peer__fail(errmsg, errlen, "announce host of %u bytes in %zu bytes", n, r.left);
    peer__rd_take(&r, n, &host);
    if (port == 0 || !triad_host_ok((const char *)host, n, PEER_ANNOUNCE_HOST_MAX))
        return peer__fail(errmsg, errlen, "announce of a bad client address");
    out->client_port = port;
    memcpy(out->host, host, n);
    out->host[n] = '\0';
    return 0;
}

/* ---- DYN ---- */

int peer_encode_dyn(struct tbuf *out, const struct dyn_msg *m)
{
    size_t start = out->len;
    /* The header goes first with the length unknown: dyn_msg_encode
     * appends the payload behind it, then the header is filled in. */
    tbuf_reserve(out, PEER_HEADER_BYTES);
    out->len += PEER_HEADER_BYTES;
    dyn_msg_encode(m, out);
    size_t payload_len = out->len - start - PEER_HEADER_BYTES;
    if (payload_len > PEER_PAYLOAD_BYTES_MAX) {
        out->len = start;
        return TRIAD_ELIMIT;
    }
    uint8_t *h = (uint8_t *)out->data + start;
    peer__put_u32(h + PEER_HDR_OFF_LEN, (uint32_t)payload_len);
    h[PEER_HDR_OFF_TYPE] = PEER_MSG_DYN;
    h[PEER_HDR_OFF_VERSION] = PEER_FRAME_VERSION;
    peer__put_u16(h + PEER_HDR_OFF_FLAGS, 0);
    peer__frame_end(out, start, h + PEER_HEADER_BYTES + payload_len);
    return 0;
}

int peer_decode_dyn(const uint8_t *p, size_t len, struct dyn_msg *out, char *errmsg,
                    size_t errlen)
{
    char why[160];
    if (dyn_msg_decode(out, p, len, why, sizeof(why)) != 0) {
        memset(out, 0, sizeof(*out));
        return peer__fail(errmsg, errlen, "bad leaderless message: %s", why);
    }
    return 0;
}
