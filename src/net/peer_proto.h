/* peer_proto.h - the peer protocol's codec: frames, the handshake and the
 * messages two Triad nodes exchange over their one TCP connection.
 *
 * Pure code: no sockets, no libuv, no clock, no randomness (nonces come from
 * the caller). The transport (later: src/net/peer.c) owns the connection and
 * its state machine; this file only turns messages into bytes and bytes into
 * messages, checking every byte. docs/wire-formats.md ("Peer protocol")
 * documents the layout byte by byte; it and this file change together.
 *
 * A frame is a fixed 12-byte header and a payload, integers little-endian:
 *
 *     [u32 payload_len][u8 type][u8 version = 1][u16 flags = 0]
 *     [u32 crc32c of header bytes 0..7 then the payload][payload]
 *
 * The checksum covers the header's first eight bytes as well as the payload,
 * so a flipped type, flag or length byte is caught too, not only a flipped
 * payload byte. The header's layout never changes between protocol versions,
 * and neither do the HELLO's first ten bytes nor the ERROR payload: two nodes
 * of any versions can always tell each other why they disagree.
 *
 * The handshake (the connecting side is the "connector", the other the
 * "acceptor"):
 *
 *     connector -> HELLO      (its cluster id, node ids, nonce, has-secret)
 *     acceptor  -> HELLO_ACK  (the same from its side) | ERROR, close
 *   with a cluster secret on both sides:
 *     connector -> AUTH       HMAC(secret, role 1, ids, both nonces)
 *     acceptor  -> AUTH_OK    HMAC(secret, role 2, ...) | ERROR, close
 *     (the connector checks AUTH_OK's MAC: authentication is mutual)
 *   then either side sends RAFT, PROXY_REQ/PROXY_REPLY, PING/PONG, ERROR
 *   (leader mode) or DYN, PING/PONG, ERROR (leaderless mode).
 *
 * Lifetimes: a decoded frame's payload points into the decoder's buffer (or
 * the caller's, for peer_frame_parse). A decoded message's pointers point
 * into that payload (entry data, a snapshot chunk, error and reply text) or
 * into a caller's struct peer_arena (the entries array, a proxied command's
 * argv). A message is therefore valid until the earlier of: the next call
 * on the decoder that produced its frame, and the next decode into the same
 * arena (or peer_arena_free).
 */
#ifndef TRIAD_PEER_PROTO_H
#define TRIAD_PEER_PROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../common/buf.h"
#include "../core/dynamo.h"
#include "../core/raft.h"

/* ---- frames ---- */

#define PEER_FRAME_VERSION 1
#define PEER_HEADER_BYTES 12
#define PEER_HDR_OFF_LEN 0
#define PEER_HDR_OFF_TYPE 4
#define PEER_HDR_OFF_VERSION 5
#define PEER_HDR_OFF_FLAGS 6
#define PEER_HDR_OFF_CRC 8
/* One whole frame, header included: room for one entry of the largest size
 * (RAFT_ENTRY_BYTES_MAX) with the RAFT message's own fields around it. */
#define PEER_FRAME_BYTES_MAX (RAFT_ENTRY_BYTES_MAX + 4096u)
#define PEER_PAYLOAD_BYTES_MAX (PEER_FRAME_BYTES_MAX - PEER_HEADER_BYTES)
/* Until the handshake is done a peer is nobody: the transport lowers the
 * decoder's limit to this, so an unauthenticated connection cannot make a
 * node buffer 64 MiB. Every handshake frame fits (the largest is an ERROR). */
#define PEER_HANDSHAKE_PAYLOAD_BYTES_MAX 4096u

enum peer_msg_type {
    PEER_MSG_HELLO = 1,
    PEER_MSG_HELLO_ACK = 2,
    PEER_MSG_AUTH = 3,
    PEER_MSG_AUTH_OK = 4,
    PEER_MSG_ERROR = 5,
    PEER_MSG_PING = 6,
    PEER_MSG_PONG = 7,
    PEER_MSG_RAFT = 8,
    PEER_MSG_PROXY_REQ = 9,
    PEER_MSG_PROXY_REPLY = 10,
    PEER_MSG_ANNOUNCE = 11,
    PEER_MSG_DYN = 12, /* leaderless mode: one dynamo.h message */
    PEER_MSG_TYPE_MAX = PEER_MSG_DYN,
};

/* "HELLO", "RAFT", ...; "?" for an unknown type. */
const char *peer_msg_type_name(uint8_t type);

struct peer_frame {
    uint8_t type;           /* enum peer_msg_type */
    uint32_t len;           /* payload bytes */
    const uint8_t *payload; /* borrowed: see the lifetimes above */
};

/* Parse one frame from buf[0..len) (borrowed; the payload points into it).
 * payload_bytes_max <= PEER_PAYLOAD_BYTES_MAX. Returns:
 *   0             *f is the frame, *consumed its size (header + payload).
 *   TRIAD_EAGAIN  a whole frame is not there yet (*consumed 0). A bad
 *                 header is reported as soon as its 12 bytes are there.
 *   TRIAD_EPROTO  bad length, version, flags, type or checksum; errmsg set
 *                 (if not NULL). The connection cannot be resynchronised:
 *                 close it.
 */
int peer_frame_parse(const void *buf, size_t len, uint32_t payload_bytes_max,
                     struct peer_frame *f, size_t *consumed, char *errmsg, size_t errlen);

/* The incremental decoder: the transport puts bytes in (feed them, or read
 * straight into peer_decoder_space() and peer_decoder_commit()), then takes
 * frames out with peer_decoder_next() until TRIAD_EAGAIN. A frame split at
 * any byte decodes exactly as if it had come whole.
 *
 * Memory: the buffer holds one partial frame plus the bytes of one read, and
 * goes back to at most PEER_DECODER_KEEP_BYTES after a bigger frame, so one
 * 64 MiB entry does not pin 64 MiB for the life of an idle connection. */
#define PEER_DECODER_READ_BYTES (64u * 1024)       /* least room offered to a read */
#define PEER_DECODER_KEEP_BYTES (1024u * 1024)

struct peer_decoder {
    /* setting: frames with a longer payload are refused (TRIAD_EPROTO).
     * peer_decoder_init sets PEER_PAYLOAD_BYTES_MAX; may be changed between
     * calls (PEER_HANDSHAKE_PAYLOAD_BYTES_MAX until authenticated). */
    uint32_t payload_bytes_max;
    char errmsg[160]; /* after TRIAD_EPROTO */

    /* private */
    uint8_t *buf;
    size_t cap;
    size_t len; /* bytes in buf */
    size_t pos; /* start of the first byte not yet returned in a frame */
    bool failed;
};

void peer_decoder_init(struct peer_decoder *d);
void peer_decoder_free(struct peer_decoder *d);
/* Copy n bytes in (data borrowed for the call). */
void peer_decoder_feed(struct peer_decoder *d, const void *data, size_t n);
/* Room to read into directly: at least PEER_DECODER_READ_BYTES, and at least
 * the rest of the frame being received when its header is in. Write up to
 * *avail bytes there, then peer_decoder_commit() the count written. */
uint8_t *peer_decoder_space(struct peer_decoder *d, size_t *avail);
void peer_decoder_commit(struct peer_decoder *d, size_t n);
/* The next whole frame: 0 with *f set (its payload valid until the next call
 * on d), TRIAD_EAGAIN, or TRIAD_EPROTO with d->errmsg set; after an error
 * every later call returns TRIAD_EPROTO again. */
int peer_decoder_next(struct peer_decoder *d, struct peer_frame *f);
/* Bytes received and not yet returned in a frame. */
size_t peer_decoder_pending(const struct peer_decoder *d);

/* Memory for decoded messages (an entries array, a command's argv). A zeroed
 * struct is an empty arena. Each decode that uses it reuses it, so what the
 * previous decode left there is gone; peer_arena_free releases it. Never
 * more than a small multiple of the frame's size is asked of it. */
#define PEER_ARENA_KEEP_BYTES (1024u * 1024)
struct peer_arena {
    void *mem;
    size_t cap;
};
void peer_arena_free(struct peer_arena *a);

/* Every message decoder below takes a frame's payload (p, len: borrowed),
 * checks every byte and returns 0, or TRIAD_EPROTO with errmsg set (if not
 * NULL) and *out zeroed. Encoders append one whole frame to out; those that
 * return int leave out unchanged on error. */

/* ---- handshake ---- */

#define PEER_MAGIC "TRIADPR1"
#define PEER_MAGIC_BYTES 8
#define PEER_PROTOCOL_VERSION 2 /* 2: PROXY frames carry ack, floor and index; ANNOUNCE */
#define PEER_NONCE_BYTES 16
#define PEER_MAC_BYTES 32 /* HMAC-SHA256 */
#define PEER_HELLO_BYTES 43
#define PEER_SECRET_BYTES_MAX 1024
#define PEER_AUTH_LABEL "triad-peer-v1"

/* HELLO (connector) and HELLO_ACK (acceptor) carry the same fields, each
 * from its sender's side. */
struct peer_hello {
    uint16_t version;    /* PEER_PROTOCOL_VERSION (a field so tests can send others) */
    uint64_t cluster_id; /* both sides must agree */
    raft_id from;        /* the sender's node id */
    raft_id to;          /* the node id the sender means to talk to */
    uint8_t nonce[PEER_NONCE_BYTES]; /* fresh per connection, from a CSPRNG */
    bool auth;           /* the sender has a cluster secret (then both must) */
};

/* Why a handshake or a connection failed: the ERROR frame's code. */
enum peer_error_code {
    PEER_ERR_PROTOCOL = 1, /* malformed or unexpected frame */
    PEER_ERR_VERSION = 2,  /* no protocol version in common */
    PEER_ERR_CLUSTER = 3,  /* another cluster */
    PEER_ERR_NODE = 4,     /* wrong or unknown node id */
    PEER_ERR_AUTH = 5,     /* secret missing on one side, or a wrong MAC */
    PEER_ERR_LIMIT = 6,    /* a message over a limit */
    PEER_ERR_SHUTDOWN = 7, /* the sender is stopping */
};
/* "protocol", "version", ...; "unknown" for any other code. */
const char *peer_error_code_name(uint16_t code);

/* type is PEER_MSG_HELLO or PEER_MSG_HELLO_ACK. */
void peer_encode_hello(struct tbuf *out, uint8_t type, const struct peer_hello *h);
/* Besides TRIAD_EPROTO's errmsg, *code (if not NULL) says which ERROR code
 * to answer with: PEER_ERR_VERSION for another protocol version (told apart
 * before the length is checked, as another version's HELLO may be longer),
 * PEER_ERR_PROTOCOL otherwise. */
int peer_decode_hello(const uint8_t *p, size_t len, struct peer_hello *out, uint16_t *code,
                      char *errmsg, size_t errlen);
/* Check a decoded HELLO or HELLO_ACK against this node's own settings:
 * cluster_id, self_id (which must be h->to), peer_id (the node the
 * connector dialed, which must be h->from; 0 on the acceptor, which accepts
 * any sender but itself and 0 - membership is the transport's call) and
 * whether this node has a secret (h->auth must say the same). 0, or
 * TRIAD_EPROTO with *code (if not NULL) and an errmsg meant for both logs
 * and the ERROR frame, e.g. "cluster id mismatch: expected 7, got 8". */
int peer_hello_check(const struct peer_hello *h, uint64_t cluster_id, raft_id self_id,
                     raft_id peer_id, bool secret_configured, uint16_t *code, char *errmsg,
                     size_t errlen);

/* The MAC values of AUTH (role PEER_AUTH_CONNECTOR) and AUTH_OK (role
 * PEER_AUTH_ACCEPTOR) for the handshake of `hello` (the connector's) and
 * `ack` (the acceptor's):
 *
 *     HMAC-SHA256(secret, "triad-peer-v1" || u8 role || u64 cluster_id ||
 *                 u32 connector id || u32 acceptor id ||
 *                 connector nonce || acceptor nonce)
 *
 * (cluster_id from hello; connector id = hello->from, acceptor id =
 * ack->from). Both nonces make a MAC good for one connection only, the role
 * stops an acceptor from proving itself by echoing the connector's MAC. Call
 * only after peer_hello_check() passed on both sides. secret: 1 ..
 * PEER_SECRET_BYTES_MAX bytes (borrowed). 0, or TRIAD_EINVAL for a secret
 * out of bounds or a failure inside libcrypto. */
enum peer_auth_role { PEER_AUTH_CONNECTOR = 1, PEER_AUTH_ACCEPTOR = 2 };
int peer_auth_compute(const void *secret, size_t secret_len, uint8_t role,
                      const struct peer_hello *hello, const struct peer_hello *ack,
                      uint8_t mac[PEER_MAC_BYTES]);
/* Compare two MACs in time independent of where they differ. */
bool peer_auth_equal(const uint8_t a[PEER_MAC_BYTES], const uint8_t b[PEER_MAC_BYTES]);
/* The primitive, exposed for its known-answer test. 0 or TRIAD_EINVAL. */
int peer_hmac_sha256(const void *key, size_t key_len, const void *data, size_t len,
                     uint8_t mac[PEER_MAC_BYTES]);

/* type is PEER_MSG_AUTH or PEER_MSG_AUTH_OK; the payload is the MAC. */
void peer_encode_auth(struct tbuf *out, uint8_t type, const uint8_t mac[PEER_MAC_BYTES]);
int peer_decode_auth(const uint8_t *p, size_t len, uint8_t mac[PEER_MAC_BYTES], char *errmsg,
                     size_t errlen);

/* ---- ERROR, PING, PONG ---- */

#define PEER_ERROR_TEXT_BYTES_MAX 1024

struct peer_error {
    uint16_t code;    /* enum peer_error_code; others may come from newer peers */
    uint32_t len;
    const char *text; /* not NUL-terminated; any bytes: escape before logging */
};

/* The text is cut to PEER_ERROR_TEXT_BYTES_MAX bytes. */
void peer_encode_error(struct tbuf *out, uint16_t code, const char *text, size_t len);
void peer_encode_errorf(struct tbuf *out, uint16_t code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
int peer_decode_error(const uint8_t *p, size_t len, struct peer_error *out, char *errmsg,
                      size_t errlen);

/* type is PEER_MSG_PING or PEER_MSG_PONG (which echoes its PING's value). */
void peer_encode_ping(struct tbuf *out, uint8_t type, uint64_t value);
int peer_decode_ping(const uint8_t *p, size_t len, uint64_t *value, char *errmsg, size_t errlen);

/* ---- RAFT ---- */

#define PEER_RAFT_FIXED_BYTES 130 /* the fields before the configuration */
#define PEER_RAFT_ENTRY_HEADER_BYTES 21

/* Every field of m, its entries and its snapshot chunk. TRIAD_EINVAL for a
 * message the decoder would refuse (a type out of range, entries outside an
 * APPEND or a chunk outside a SNAPSHOT, a NULL pointer with a length, an
 * entry type out of range or an entry over RAFT_ENTRY_BYTES_MAX, a
 * configuration raft_conf_decode refuses); TRIAD_ELIMIT when the payload
 * would exceed PEER_PAYLOAD_BYTES_MAX (the caller sends fewer entries or a
 * smaller chunk). */
int peer_encode_raft(struct tbuf *out, const struct raft_msg *m);
/* Every field of the message; entries (an array in a) and the data of
 * entries and chunk (in p; NULL when the length is 0) as stated at the top.
 * The codec checks the structure (counts against the payload's length,
 * types, flags, limits); Raft's own checks (indexes, terms, that from is
 * the authenticated peer) are raft_step()'s and the transport's. */
int peer_decode_raft(const uint8_t *p, size_t len, struct peer_arena *a, struct raft_msg *out,
                     char *errmsg, size_t errlen);

/* ---- PROXY_REQ, PROXY_REPLY ---- */

#define PEER_PROXY_REQ_HEADER_BYTES 43
#define PEER_PROXY_REPLY_HEADER_BYTES 20
#define PEER_PROXY_ARGC_MAX (1024 * 1024) /* RESP_MULTIBULK_MAX */

/* What a PROXY_REQ asks the leader to do. */
enum peer_proxy_kind {
    PEER_PROXY_COMMAND = 0, /* run argv as the client's command */
    PEER_PROXY_WAIT = 1,    /* WAIT argv[1] argv[2] for the index `after` */
};

/* A client's command, forwarded by a follower to the leader. */
struct peer_proxy_req {
    uint64_t req_id;    /* the follower's; echoed in the PROXY_REPLY */
    uint64_t client_id; /* the client's session (0: none), as in fsm.h */
    uint64_t seq;
    uint32_t db;
    uint8_t proto;      /* 2 or 3 */
    uint8_t kind;       /* enum peer_proxy_kind */
    uint8_t ack;        /* a write's enum raft_ack, 0 = the default (QUORUM) */
    uint64_t after;     /* a read's floor (node_req.after); WAIT's index */
    uint32_t argc;      /* 1 .. PEER_PROXY_ARGC_MAX */
    char **argv;        /* encode: borrowed; decode: copies in the arena,
                         * NUL-terminated at argvlen and writable */
    size_t *argvlen;
};

/* TRIAD_EINVAL for proto not 2 or 3, argc 0 or a NULL argument with a
 * length; TRIAD_ELIMIT for argc or the payload over their limits. db, the
 * client_id/seq pairing and the command itself are the leader's to check
 * (fsm_encode_command) as for a local client. */
int peer_encode_proxy_req(struct tbuf *out, const struct peer_proxy_req *r);
int peer_decode_proxy_req(const uint8_t *p, size_t len, struct peer_arena *a,
                          struct peer_proxy_req *out, char *errmsg, size_t errlen);

/* The leader's RESP reply, passed to the client unchanged. */
struct peer_proxy_reply {
    uint64_t req_id;
    uint64_t index;     /* the log index the answer reflects (node.h), 0: none */
    uint32_t len;
    const uint8_t *data; /* borrowed (encode) / into the payload (decode); NULL if len 0 */
};

/* TRIAD_EINVAL for a NULL data with a length; TRIAD_ELIMIT when the reply
 * exceeds the payload limit (a value grown past 64 MiB by APPEND, say): the
 * leader must then send an error reply instead. */
int peer_encode_proxy_reply(struct tbuf *out, const struct peer_proxy_reply *r);
int peer_decode_proxy_reply(const uint8_t *p, size_t len, struct peer_proxy_reply *out,
                            char *errmsg, size_t errlen);

/* ---- ANNOUNCE ---- */

/* Where clients reach the sender (ROLE, SENTINEL, --redirect): sent by each
 * side once its connection is up. [u16 port][u8 host_len][host]. */
#define PEER_ANNOUNCE_HOST_MAX 255
struct peer_announce {
    uint16_t client_port; /* 1 .. 65535 */
    char host[PEER_ANNOUNCE_HOST_MAX + 1]; /* 1 .. 255 bytes, printable, NUL-terminated */
};
/* TRIAD_EINVAL for port 0 or a host empty, too long or not printable. */
int peer_encode_announce(struct tbuf *out, const struct peer_announce *a);
int peer_decode_announce(const uint8_t *p, size_t len, struct peer_announce *out, char *errmsg,
                         size_t errlen);

/* ---- DYN ---- */

/* Leaderless mode's messages (src/core/dynamo.h): the payload is exactly
 * dyn_msg_encode's bytes, so the codec's checks are dyn_msg_decode's. */

/* TRIAD_ELIMIT (out unchanged) when the encoding exceeds
 * PEER_PAYLOAD_BYTES_MAX: a message with an object over the frame limit
 * cannot travel (the core counts it lost, as any message). */
int peer_encode_dyn(struct tbuf *out, const struct dyn_msg *m);
/* m's pointers point into p afterwards (dynamo.h). */
int peer_decode_dyn(const uint8_t *p, size_t len, struct dyn_msg *out, char *errmsg,
                    size_t errlen);

#endif
