/* peer.c - the peer transport on libuv: see peer.h.
 *
 * A connection (struct conn) is one TCP socket, from its dial or accept to
 * its close callback. Its state machine:
 *
 *   connector: CONNECTING -> HELLO_SENT -> [AUTH_SENT ->] UP
 *   acceptor:  WAIT_HELLO -> [WAIT_AUTH ->] UP
 *   any:       -> LINGER (an ERROR is going out; input is discarded; then
 *                 close) -> CLOSING (uv_close called; freed in its callback)
 *
 * A member (struct member) is a node this one talks to. member->conn is
 * its connection once UP, the only one frames are sent on; a connector
 * also keeps the connection it is setting up in member->dialing. A
 * connection leaves those slots ("detaches") as soon as it fails, before
 * its close completes, so nothing is ever queued on a dying connection.
 *
 * Memory is freed only in libuv's close callbacks, which run in the loop's
 * own phase, never inside one of our callbacks: a struct conn or the
 * struct peer_net stays valid for the whole of any callback that closes
 * it, which is what lets user callbacks call peer_net_close() or
 * peer_net_remove_member() from anywhere. What such a call may change (the
 * members array, a connection's state) is checked again after every user
 * callback.
 */
#include "peer.h"

#include <arpa/inet.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "../common/buf.h"
#include "../common/defs.h"
#include "../common/err.h"
#include "../common/mem.h"
#include "config.h"

#define PEER_LISTEN_BACKLOG 128
#define PEER_OUT_KEEP_BYTES (1024u * 1024) /* an idle connection's write buffers give back more */
#define PEER_LINE_BYTES 512                /* one log line */
#define PEER_LOG_TEXT_BYTES 300            /* a peer's ERROR text, escaped, in a log line */
#define PEER_SCRATCH_BYTES 4096            /* input of lingering connections, discarded */
/* Open membership: the larger id dials this much later than the smaller
 * would, so that a pair that knows each other seldom dials both ways. */
#define PEER_OPEN_DIAL_DELAY_MS 500

enum conn_state {
    CONN_CONNECTING = 1, /* connector: TCP connect in progress */
    CONN_HELLO_SENT,     /* connector: HELLO sent, waiting for HELLO_ACK */
    CONN_AUTH_SENT,      /* connector: AUTH sent, waiting for AUTH_OK */
    CONN_WAIT_HELLO,     /* acceptor: waiting for HELLO */
    CONN_WAIT_AUTH,      /* acceptor: HELLO_ACK sent, waiting for AUTH */
    CONN_UP,             /* handshake passed: RAFT, PROXY, PING both ways */
    CONN_LINGER,         /* an ERROR is on its way out; then close */
    CONN_CLOSING,        /* uv_close called */
};

struct conn {
    uv_tcp_t tcp;
    uv_connect_t creq;
    uv_write_t wreq;
    uv_shutdown_t sreq;
    struct peer_net *pn;
    struct conn *prev, *next; /* pn->conns */
    enum conn_state state;
    bool dialer;
    bool up;        /* counted in conns_up; on_connected(peer, true) said */
    bool detached;  /* out of its member's slots, failure counted and logged */
    bool write_in_flight;
    bool shutdown_sent;
    bool warned_bad_raft;
    bool warned_bad_dyn;
    raft_id peer;   /* the id dialed; acceptor: the HELLO's from (0 before) */
    char addr[PEER_HOST_BYTES_MAX + 16];
    struct peer_decoder dec;
    struct peer_arena arena;
    struct tbuf out;  /* frames not yet handed to the socket */
    struct tbuf wbuf; /* the bytes of the write in flight */
    struct peer_hello hello; /* the connector's */
    struct peer_hello ack;   /* the acceptor's */
    uint64_t created_ms, up_ms, last_recv_ms, last_send_ms, linger_ms;
};

struct member {
    raft_id id;
    char host[PEER_HOST_BYTES_MAX];
    int port;             /* 0: no address known (open membership): never dialed */
    struct sockaddr_storage addr;
    struct conn *conn;    /* the connection UP, or NULL */
    struct conn *dialing; /* connector: the connection being set up, or NULL */
    bool dial_pending;
    uint64_t dial_at_ms;
    uint64_t backoff_ms;  /* the next retry's delay, before jitter */
    uint32_t failures;    /* dials or handshakes failed in a row */
};

struct peer_net {
    uv_loop_t *loop;
    raft_id self;
    uint64_t cluster_id;
    char *secret; /* NULL: none */
    size_t secret_len;
    struct peer_net_callbacks cb;
    struct peer_announce announce;
    bool open; /* open_membership */
    uint64_t send_queue_bytes_max;
    uint64_t ping_interval_ms;
    uint64_t dead_timeout_ms;
    uint64_t handshake_timeout_ms;
    uint64_t backoff_ms_min;
    uint64_t backoff_ms_max;
    uint64_t redial_down_ms_max;

    uv_tcp_t listener;
    uv_timer_t tick;
    uv_timer_t dial_timer;
    uint32_t handles; /* open handles; pn is freed when the last one closes */
    bool closing;
    peer_net_close_cb closed_cb;
    void *closed_arg;

    struct member members[PEER_MEMBERS_MAX];
    uint32_t n_members;
    struct conn *conns; /* every connection, in any state */
    struct peer_net_stats stats;
    uint8_t scratch[PEER_SCRATCH_BYTES];
};

static void conn_close(struct conn *c, int level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void conn_fail(struct conn *c, int level, uint16_t code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void conn_flush(struct conn *c);
static void net_arm_dial_timer(struct peer_net *pn);

/* ---- small helpers ---- */

static uint64_t net_now_ms(const struct peer_net *pn)
{
    return uv_now(pn->loop);
}

/* Nonces must be unpredictable: libuv's uv_random reads the kernel's
 * CSPRNG (getrandom, else /dev/urandom). 0 or a libuv error. */
static int net_random(void *p, size_t n)
{
    return uv_random(NULL, NULL, p, n, 0, NULL);
}

/* A delay in [b/2, b]: spread out so that nodes restarted together do not
 * dial in lockstep. */
static uint64_t net_jitter(uint64_t b)
{
    uint32_t r;
    if (b < 2)
        return b;
    if (net_random(&r, sizeof(r)) != 0)
        r = (uint32_t)((uv_hrtime() * 0x9E3779B97F4A7C15ull) >> 32);
    return b / 2 + r % (b - b / 2 + 1);
}

/* Printable ASCII as is, other bytes as \xNN: a peer's text is any bytes. */
static void escape_text(const char *p, size_t n, char *out, size_t outlen)
{
    static const char hex[] = "0123456789abcdef";
    size_t w = 0;
    TRIAD_ASSERT(outlen > 0);
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)p[i];
        bool plain = ch >= 0x20 && ch < 0x7f && ch != '\\';
        size_t need = plain ? 1 : 4;
        if (w + need + 1 > outlen)
            break;
        if (plain) {
            out[w++] = (char)ch;
        } else {
            out[w++] = '\\';
            out[w++] = 'x';
            out[w++] = hex[ch >> 4];
            out[w++] = hex[ch & 15];
        }
    }
    out[w] = '\0';
}

static void format_addr(const struct sockaddr *sa, char *out, size_t outlen)
{
    char host[INET6_ADDRSTRLEN] = "?";
    int port = 0;
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *a = (const struct sockaddr_in *)sa;
        uv_ip4_name(a, host, sizeof(host));
        port = ntohs(a->sin_port);
        snprintf(out, outlen, "%s:%d", host, port);
    } else if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)sa;
        uv_ip6_name(a, host, sizeof(host));
        port = ntohs(a->sin6_port);
        snprintf(out, outlen, "[%s]:%d", host, port);
    } else {
        snprintf(out, outlen, "?");
    }
}

/* A numeric IPv4 or IPv6 address. 0 or TRIAD_EINVAL. */
static int parse_addr(const char *host, int port, struct sockaddr_storage *ss)
{
    memset(ss, 0, sizeof(*ss));
    if (host == NULL || port < 0 || port > 65535)
        return TRIAD_EINVAL;
    if (strlen(host) >= PEER_HOST_BYTES_MAX)
        return TRIAD_EINVAL;
    if (uv_ip4_addr(host, port, (struct sockaddr_in *)ss) == 0)
        return 0;
    if (uv_ip6_addr(host, port, (struct sockaddr_in6 *)ss) == 0)
        return 0;
    return TRIAD_EINVAL;
}

/* ---- logging ---- */

/* No callback after peer_net_close(): the caller may have torn down what
 * its callbacks use. */
__attribute__((format(printf, 3, 4))) static void net_log(struct peer_net *pn, int level,
                                                          const char *fmt, ...)
{
    char line[PEER_LINE_BYTES];
    va_list ap;
    if (pn->closing || pn->cb.on_log == NULL)
        return;
    va_start(ap, fmt);
    vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    pn->cb.on_log(pn->cb.arg, level, line);
}

/* One line about c: "peer 2 (127.0.0.1:7001): <what>". */
static void conn_log_text(struct conn *c, int level, const char *what)
{
    if (c->peer != 0)
        net_log(c->pn, level, "peer %u (%s): %s", c->peer, c->addr, what);
    else
        net_log(c->pn, level, "peer ? (%s): %s", c->addr, what);
}

__attribute__((format(printf, 3, 4))) static void conn_log(struct conn *c, int level,
                                                           const char *fmt, ...)
{
    char what[PEER_LINE_BYTES];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof(what), fmt, ap);
    va_end(ap);
    conn_log_text(c, level, what);
}

/* ---- members ---- */

static struct member *member_find(struct peer_net *pn, raft_id id)
{
    for (uint32_t i = 0; i < pn->n_members; i++)
        if (pn->members[i].id == id)
            return &pn->members[i];
    return NULL;
}

static void member_schedule_dial(struct peer_net *pn, struct member *m, uint64_t delay_ms)
{
    TRIAD_ASSERT(pn->self < m->id || pn->open);
    TRIAD_ASSERT(m->port != 0);
    m->dial_pending = true;
    m->dial_at_ms = net_now_ms(pn) + delay_ms;
    net_arm_dial_timer(pn);
}

/* ---- connections: life and death ---- */

static struct conn *conn_new(struct peer_net *pn, bool dialer, raft_id peer)
{
    struct conn *c = tcalloc(1, sizeof(*c));
    int rc;

    c->pn = pn;
    c->dialer = dialer;
    c->peer = peer;
    peer_decoder_init(&c->dec);
    /* Until the peer has proved who it is, a frame is small. */
    c->dec.payload_bytes_max = PEER_HANDSHAKE_PAYLOAD_BYTES_MAX;
    c->created_ms = c->last_recv_ms = c->last_send_ms = net_now_ms(pn);
    rc = uv_tcp_init(pn->loop, &c->tcp);
    TRIAD_ASSERT(rc == 0); /* fails only for bad flags */
    c->tcp.data = c;
    c->next = pn->conns;
    if (pn->conns != NULL)
        pn->conns->prev = c;
    pn->conns = c;
    pn->handles++;
    pn->stats.conns_open++;
    return c;
}

static void net_free(struct peer_net *pn)
{
    peer_net_close_cb cb = pn->closed_cb;
    void *arg = pn->closed_arg;

    TRIAD_ASSERT(pn->closing);
    TRIAD_ASSERT(pn->handles == 0);
    TRIAD_ASSERT(pn->conns == NULL);
    tfree(pn->secret);
    tfree(pn);
    if (cb != NULL)
        cb(arg);
}

static void net_handle_closed(struct peer_net *pn)
{
    TRIAD_ASSERT(pn->handles > 0);
    pn->handles--;
    if (pn->handles == 0 && pn->closing)
        net_free(pn);
}

static void net_on_handle_closed(uv_handle_t *h)
{
    net_handle_closed(h->data);
}

static void conn_on_closed(uv_handle_t *h)
{
    struct conn *c = h->data;
    struct peer_net *pn = c->pn;

    TRIAD_ASSERT(c->state == CONN_CLOSING);
    TRIAD_ASSERT(!c->write_in_flight);
    if (c->prev != NULL)
        c->prev->next = c->next;
    else
        pn->conns = c->next;
    if (c->next != NULL)
        c->next->prev = c->prev;
    peer_decoder_free(&c->dec);
    peer_arena_free(&c->arena);
    tbuf_free(&c->out);
    tbuf_free(&c->wbuf);
    tfree(c);
    pn->stats.conns_open--;
    net_handle_closed(pn);
}

/* Take c out of its member's slots so that nothing more is queued on it,
 * count and log how it ended (what: one line, the reason), schedule the
 * connector's next dial, and say "down" if it was up. `was` is the state
 * c was in when it failed. The user callback comes last: it may do
 * anything, c's own close included. */
static void conn_detach(struct conn *c, enum conn_state was, int level, const char *what)
{
    struct peer_net *pn = c->pn;
    struct member *m;
    bool was_up = c->up;
    char retry[64] = "";

    if (c->detached)
        return;
    c->detached = true;
    if (c->up) {
        c->up = false;
        TRIAD_ASSERT(pn->stats.conns_up > 0);
        pn->stats.conns_up--;
    } else if (was == CONN_CONNECTING) {
        pn->stats.dial_failures++;
    } else {
        pn->stats.handshake_failures++;
    }

    m = c->peer != 0 ? member_find(pn, c->peer) : NULL;
    if (m != NULL) {
        if (m->conn == c)
            m->conn = NULL;
        if (m->dialing == c)
            m->dialing = NULL;
        bool dials = c->dialer || (pn->open && m->port != 0);
        if (dials && !pn->closing && m->conn == NULL && m->dialing == NULL && !m->dial_pending) {
            uint64_t now = net_now_ms(pn);
            /* A connection that stayed up a while was not a failure: start
             * the backoff over. One that dies at once keeps doubling, so a
             * peer that accepts and drops is not redialed 20 times a
             * second. */
            if (was_up && now - c->up_ms >= pn->backoff_ms_max)
                m->backoff_ms = pn->backoff_ms_min;
            /* A dial nobody answered troubled no one: the peer is down,
             * and once it is back it should hear from us soon (a
             * restarted larger id waits for us to dial), not after a
             * backoff grown through its whole outage. */
            uint64_t max = was == CONN_CONNECTING ? pn->redial_down_ms_max : pn->backoff_ms_max;
            uint64_t delay = net_jitter(TRIAD_MIN(m->backoff_ms, max));
            if (pn->self > m->id)
                delay += PEER_OPEN_DIAL_DELAY_MS;
            if (m->backoff_ms < max)
                m->backoff_ms = TRIAD_MIN(m->backoff_ms * 2, max);
            member_schedule_dial(pn, m, delay);
            snprintf(retry, sizeof(retry), "; redialing in %llu ms", (unsigned long long)delay);
        }
        /* A peer that stays down is logged loudly once, then quietly. */
        if (!was_up && ++m->failures > 1 && level > LOG_VERBOSE)
            level = LOG_VERBOSE;
    }
    conn_log(c, level, "%s%s", what, retry);
    if (was_up && !pn->closing && pn->cb.on_connected != NULL)
        pn->cb.on_connected(pn->cb.arg, c->peer, false);
}

/* Close c now: pending output is dropped. The log line says why. */
static void conn_close(struct conn *c, int level, const char *fmt, ...)
{
    enum conn_state was = c->state;
    char what[PEER_LINE_BYTES];
    va_list ap;

    if (c->state == CONN_CLOSING)
        return;
    c->state = CONN_CLOSING;
    uv_close((uv_handle_t *)&c->tcp, conn_on_closed);
    if (!c->detached) {
        va_start(ap, fmt);
        vsnprintf(what, sizeof(what), fmt, ap);
        va_end(ap);
        conn_detach(c, was, level, what);
    }
}

/* Refuse or end c with an ERROR frame that says why (the same text goes to
 * the log), then close once it has left. */
static void conn_fail(struct conn *c, int level, uint16_t code, const char *fmt, ...)
{
    enum conn_state was = c->state;
    char text[PEER_ERROR_TEXT_BYTES_MAX];
    char what[PEER_LINE_BYTES];
    va_list ap;

    if (c->state == CONN_CLOSING || c->state == CONN_LINGER)
        return;
    TRIAD_ASSERT(c->state != CONN_CONNECTING);
    va_start(ap, fmt);
    vsnprintf(text, sizeof(text), fmt, ap);
    va_end(ap);
    peer_encode_error(&c->out, code, text, strlen(text));
    c->pn->stats.frames_sent++;
    c->state = CONN_LINGER;
    c->linger_ms = net_now_ms(c->pn);
    snprintf(what, sizeof(what), "%s: %.*s", c->up ? "closing the connection" : "handshake refused",
             PEER_LOG_TEXT_BYTES, text);
    conn_detach(c, was, level, what);
    if (c->state == CONN_LINGER)
        conn_flush(c);
}

/* ---- connections: output ---- */

static void conn_on_shutdown(uv_shutdown_t *req, int status)
{
    struct conn *c = req->data;
    /* Now the peer reads the ERROR, then EOF, and closes its side; our read
     * sees that EOF, or the linger time runs out. */
    if (status < 0 && c->state != CONN_CLOSING)
        conn_close(c, LOG_DEBUG, "shutdown failed: %s", uv_strerror(status));
}

static void conn_on_write(uv_write_t *req, int status)
{
    struct conn *c = req->data;
    struct peer_net *pn = c->pn;

    TRIAD_ASSERT(c->write_in_flight);
    c->write_in_flight = false;
    if (c->state == CONN_CLOSING)
        return; /* UV_ECANCELED: closed while the write was out */
    if (status < 0) {
        conn_close(c, LOG_NOTICE, "connection closed: write failed: %s", uv_strerror(status));
        return;
    }
    pn->stats.bytes_sent += c->wbuf.len;
    tbuf_reset(&c->wbuf);
    if (c->wbuf.cap > PEER_OUT_KEEP_BYTES)
        tbuf_free(&c->wbuf);
    if (c->out.len > 0) {
        conn_flush(c);
        return;
    }
    /* Shut the write side only once the ERROR has gone: closing the
     * socket with it still queued would lose it. */
    if (c->state == CONN_LINGER && !c->shutdown_sent) {
        c->shutdown_sent = true;
        c->sreq.data = c;
        int rc = uv_shutdown(&c->sreq, (uv_stream_t *)&c->tcp, conn_on_shutdown);
        if (rc != 0)
            conn_close(c, LOG_DEBUG, "shutdown failed: %s", uv_strerror(rc));
    }
}

/* Hand what c->out holds to the socket, unless a write is out already: the
 * frames queued meanwhile then leave together, in one write, when it
 * completes. */
static void conn_flush(struct conn *c)
{
    struct tbuf t;
    uv_buf_t b;
    int rc;

    if (c->write_in_flight || c->out.len == 0)
        return;
    if (c->state == CONN_CONNECTING || c->state == CONN_CLOSING || c->shutdown_sent)
        return;
    t = c->wbuf;
    c->wbuf = c->out;
    c->out = t;
    tbuf_reset(&c->out);
    b.base = c->wbuf.data;
    b.len = c->wbuf.len;
    c->wreq.data = c;
    rc = uv_write(&c->wreq, (uv_stream_t *)&c->tcp, &b, 1, conn_on_write);
    if (rc != 0) {
        conn_close(c, LOG_NOTICE, "connection closed: write failed: %s", uv_strerror(rc));
        return;
    }
    c->write_in_flight = true;
    c->last_send_ms = net_now_ms(c->pn);
}

/* Bytes queued on c: not yet written, plus the write in flight. */
static size_t conn_queued_bytes(const struct conn *c)
{
    return c->out.len + (c->write_in_flight ? c->wbuf.len : 0);
}

/* A frame was just appended to c->out at `start`: keep it if the send
 * queue has room, else take it back out. One frame always fits into an
 * empty queue, or a message bigger than the limit could never be sent. */
static int conn_admit(struct conn *c, size_t start)
{
    struct peer_net *pn = c->pn;
    size_t frame_bytes = c->out.len - start;
    size_t before = start + (c->write_in_flight ? c->wbuf.len : 0);

    TRIAD_ASSERT(c->out.len > start);
    if (before > 0 && before + frame_bytes > pn->send_queue_bytes_max) {
        c->out.len = start;
        pn->stats.dropped_queue_full++;
        return TRIAD_ELIMIT;
    }
    pn->stats.frames_sent++;
    conn_flush(c);
    return 0;
}

/* The connection to `to` that frames may be sent on, or NULL. */
static struct conn *net_conn_up(struct peer_net *pn, raft_id to)
{
    struct member *m;
    if (pn->closing)
        return NULL;
    m = member_find(pn, to);
    if (m == NULL || m->conn == NULL)
        return NULL;
    TRIAD_ASSERT(m->conn->state == CONN_UP);
    return m->conn;
}

/* ---- the handshake ---- */

static bool net_has_secret(const struct peer_net *pn)
{
    return pn->secret != NULL;
}

static void conn_up(struct conn *c)
{
    struct peer_net *pn = c->pn;
    struct member *m = member_find(pn, c->peer);
    struct conn *old;

    TRIAD_ASSERT(!c->up);
    if (m == NULL) {
        conn_fail(c, LOG_WARNING, PEER_ERR_NODE, "node %u is not a member known to node %u",
                  c->peer, pn->self);
        return;
    }
    TRIAD_ASSERT(!c->dialer || m->dialing == c);
    old = m->conn;
    if (old != NULL && pn->open && old->dialer != c->dialer) {
        /* Both sides dialed. Each keeps the connection the smaller id
         * dialed, so both keep the same one. */
        bool by_smaller = c->dialer == (pn->self < c->peer);
        if (!by_smaller) {
            conn_fail(c, LOG_VERBOSE, PEER_ERR_NODE,
                      "nodes %u and %u are connected already (the connection node %u dialed "
                      "stays)", pn->self, c->peer, TRIAD_MIN(pn->self, c->peer));
            return;
        }
    }
    c->state = CONN_UP;
    c->up = true;
    c->up_ms = net_now_ms(pn);
    c->dec.payload_bytes_max = PEER_PAYLOAD_BYTES_MAX;
    pn->stats.connects++;
    pn->stats.conns_up++;
    if (c->dialer)
        m->dialing = NULL;
    m->failures = 0;
    m->conn = c;
    conn_log(c, LOG_NOTICE, "connected (%s)", c->dialer ? "dialed" : "accepted");
    if (pn->announce.client_port != 0 && peer_encode_announce(&c->out, &pn->announce) == 0)
        pn->stats.frames_sent++;
    /* The connector dials again only when it has no connection, so an
     * older one here is dead and does not know it yet (a restarted peer):
     * the newer wins. */
    if (old != NULL)
        conn_close(old, LOG_NOTICE, "connection closed: replaced by a newer one");
    if (c->state == CONN_UP && !pn->closing && pn->cb.on_connected != NULL)
        pn->cb.on_connected(pn->cb.arg, c->peer, true);
}

static void conn_send_hello(struct conn *c, uint8_t type, const struct peer_hello *h)
{
    peer_encode_hello(&c->out, type, h);
    c->pn->stats.frames_sent++;
}

static void conn_send_auth(struct conn *c, uint8_t type, const struct peer_hello *hello,
                           const struct peer_hello *ack)
{
    struct peer_net *pn = c->pn;
    uint8_t role = type == PEER_MSG_AUTH ? PEER_AUTH_CONNECTOR : PEER_AUTH_ACCEPTOR;
    uint8_t mac[PEER_MAC_BYTES];
    int rc = peer_auth_compute(pn->secret, pn->secret_len, role, hello, ack, mac);
    TRIAD_ASSERT(rc == 0); /* the secret's length was checked at start */
    peer_encode_auth(&c->out, type, mac);
    pn->stats.frames_sent++;
}

/* Whether mac is the one the peer in `role` must have sent. */
static bool conn_auth_ok(struct conn *c, uint8_t role, const uint8_t mac[PEER_MAC_BYTES])
{
    struct peer_net *pn = c->pn;
    uint8_t want[PEER_MAC_BYTES];
    int rc = peer_auth_compute(pn->secret, pn->secret_len, role, &c->hello, &c->ack, want);
    TRIAD_ASSERT(rc == 0);
    return peer_auth_equal(mac, want);
}

/* ---- connections: input ---- */

static void conn_on_error_frame(struct conn *c, const struct peer_frame *f)
{
    struct peer_error e;
    char text[PEER_LOG_TEXT_BYTES];
    char err[160];
    int level;

    if (peer_decode_error(f->payload, f->len, &e, err, sizeof(err)) != 0) {
        c->pn->stats.dropped_bad_frames++;
        conn_close(c, LOG_WARNING, "connection closed: bad ERROR frame: %s", err);
        return;
    }
    escape_text(e.text, e.len, text, sizeof(text));
    level = e.code == PEER_ERR_SHUTDOWN ? LOG_NOTICE : LOG_WARNING;
    conn_close(c, level, "%s by the peer: %s [%s]",
               c->up ? "connection closed" : "handshake refused", text,
               peer_error_code_name(e.code));
}

static void conn_on_hello(struct conn *c, const struct peer_frame *f)
{
    struct peer_net *pn = c->pn;
    struct peer_hello h;
    uint16_t code = PEER_ERR_PROTOCOL;
    char err[256];
    int rc;

    if (peer_decode_hello(f->payload, f->len, &h, &code, err, sizeof(err)) != 0) {
        pn->stats.dropped_bad_frames++;
        conn_fail(c, LOG_WARNING, code, "%s", err);
        return;
    }
    if (h.from != 0 && h.from != pn->self)
        c->peer = h.from; /* for the log, even if refused */
    if (peer_hello_check(&h, pn->cluster_id, pn->self, 0, net_has_secret(pn), &code, err,
                         sizeof(err)) != 0) {
        conn_fail(c, LOG_WARNING, code, "%s", err);
        return;
    }
    /* The smaller id dials: a HELLO the other way round would make a
     * second connection for the pair. */
    if (h.from > pn->self && !pn->open) {
        conn_fail(c, LOG_WARNING, PEER_ERR_NODE,
                  "node %u dialed node %u, but the node with the smaller id dials", h.from,
                  pn->self);
        return;
    }
    if (member_find(pn, h.from) == NULL && pn->open && pn->n_members < PEER_MEMBERS_MAX) {
        /* a node gossip has not told us of yet: a member with no address */
        struct member *m = &pn->members[pn->n_members++];
        memset(m, 0, sizeof(*m));
        m->id = h.from;
        m->backoff_ms = pn->backoff_ms_min;
    }
    if (member_find(pn, h.from) == NULL) {
        conn_fail(c, LOG_WARNING, PEER_ERR_NODE, "node %u is not a member known to node %u",
                  h.from, pn->self);
        return;
    }
    c->hello = h;
    memset(&c->ack, 0, sizeof(c->ack));
    c->ack.version = PEER_PROTOCOL_VERSION;
    c->ack.cluster_id = pn->cluster_id;
    c->ack.from = pn->self;
    c->ack.to = h.from;
    c->ack.auth = net_has_secret(pn);
    rc = net_random(c->ack.nonce, sizeof(c->ack.nonce));
    if (rc != 0) {
        conn_fail(c, LOG_WARNING, PEER_ERR_PROTOCOL, "node %u has no random bytes: %s", pn->self,
                  uv_strerror(rc));
        return;
    }
    conn_send_hello(c, PEER_MSG_HELLO_ACK, &c->ack);
    if (net_has_secret(pn)) {
        c->state = CONN_WAIT_AUTH;
        conn_flush(c);
        return;
    }
    conn_up(c); /* frames the callback sends queue behind the HELLO_ACK */
    conn_flush(c);
}

/* Decode an AUTH or AUTH_OK and check the peer's MAC for its role; on any
 * failure the connection fails with the reason and false is returned. */
static bool conn_check_mac(struct conn *c, const struct peer_frame *f, uint8_t role)
{
    uint8_t mac[PEER_MAC_BYTES];
    char err[160];

    if (peer_decode_auth(f->payload, f->len, mac, err, sizeof(err)) != 0) {
        c->pn->stats.dropped_bad_frames++;
        conn_fail(c, LOG_WARNING, PEER_ERR_PROTOCOL, "%s", err);
        return false;
    }
    if (!conn_auth_ok(c, role, mac)) {
        conn_fail(c, LOG_WARNING, PEER_ERR_AUTH,
                  "authentication failed: node %u's MAC is wrong (another cluster secret?)",
                  c->peer);
        return false;
    }
    return true;
}

static void conn_on_auth(struct conn *c, const struct peer_frame *f)
{
    if (!conn_check_mac(c, f, PEER_AUTH_CONNECTOR))
        return;
    conn_send_auth(c, PEER_MSG_AUTH_OK, &c->hello, &c->ack);
    conn_up(c);
    conn_flush(c);
}

static void conn_on_hello_ack(struct conn *c, const struct peer_frame *f)
{
    struct peer_net *pn = c->pn;
    struct peer_hello ack;
    uint16_t code = PEER_ERR_PROTOCOL;
    char err[256];

    if (peer_decode_hello(f->payload, f->len, &ack, &code, err, sizeof(err)) != 0) {
        pn->stats.dropped_bad_frames++;
        conn_fail(c, LOG_WARNING, code, "%s", err);
        return;
    }
    if (peer_hello_check(&ack, pn->cluster_id, pn->self, c->peer, net_has_secret(pn), &code, err,
                         sizeof(err)) != 0) {
        conn_fail(c, LOG_WARNING, code, "%s", err);
        return;
    }
    c->ack = ack;
    if (net_has_secret(pn)) {
        conn_send_auth(c, PEER_MSG_AUTH, &c->hello, &c->ack);
        c->state = CONN_AUTH_SENT;
        conn_flush(c);
        return;
    }
    conn_up(c);
    conn_flush(c);
}

static void conn_on_auth_ok(struct conn *c, const struct peer_frame *f)
{
    /* Mutual: the acceptor proves the secret too, or a stranger listening
     * at a member's address would be sent the cluster's traffic. */
    if (!conn_check_mac(c, f, PEER_AUTH_ACCEPTOR))
        return;
    conn_up(c);
    conn_flush(c);
}

static void conn_on_raft(struct conn *c, const struct peer_frame *f)
{
    struct peer_net *pn = c->pn;
    struct raft_msg m;
    char err[160];

    if (peer_decode_raft(f->payload, f->len, &c->arena, &m, err, sizeof(err)) != 0) {
        pn->stats.dropped_bad_frames++;
        conn_fail(c, LOG_WARNING, PEER_ERR_PROTOCOL, "bad RAFT frame: %s", err);
        return;
    }
    /* The handshake proved who is at the other end; a message claiming
     * another sender (or meant for another node) is a bug or a forgery,
     * and Raft would count it as that node's vote or ack. */
    if (m.from != c->peer || m.to != pn->self) {
        pn->stats.dropped_bad_frames++;
        if (!c->warned_bad_raft) {
            c->warned_bad_raft = true;
            conn_log(c, LOG_WARNING,
                     "dropped a RAFT message from node %u to node %u on the connection of nodes "
                     "%u and %u (logged once per connection)",
                     m.from, m.to, c->peer, pn->self);
        }
        return;
    }
    if (pn->cb.on_raft != NULL)
        pn->cb.on_raft(pn->cb.arg, &m);
}

static void conn_on_proxy_req(struct conn *c, const struct peer_frame *f)
{
    struct peer_net *pn = c->pn;
    struct peer_proxy_req r;
    char err[160];

    if (peer_decode_proxy_req(f->payload, f->len, &c->arena, &r, err, sizeof(err)) != 0) {
        pn->stats.dropped_bad_frames++;
        conn_fail(c, LOG_WARNING, PEER_ERR_PROTOCOL, "bad PROXY_REQ frame: %s", err);
        return;
    }
    if (pn->cb.on_proxy_req != NULL)
        pn->cb.on_proxy_req(pn->cb.arg, c->peer, &r);
}

static void conn_on_proxy_reply(struct conn *c, const struct peer_frame *f)
{
    struct peer_net *pn = c->pn;
    struct peer_proxy_reply r;
    char err[160];

    if (peer_decode_proxy_reply(f->payload, f->len, &r, err, sizeof(err)) != 0) {
        pn->stats.dropped_bad_frames++;
        conn_fail(c, LOG_WARNING, PEER_ERR_PROTOCOL, "bad PROXY_REPLY frame: %s", err);
        return;
    }
    if (pn->cb.on_proxy_reply != NULL)
        pn->cb.on_proxy_reply(pn->cb.arg, c->peer, &r);
}

static void conn_on_announce(struct conn *c, const struct peer_frame *f)
{
    struct peer_net *pn = c->pn;
    struct peer_announce an;
    char err[160];

    if (peer_decode_announce(f->payload, f->len, &an, err, sizeof(err)) != 0) {
        pn->stats.dropped_bad_frames++;
        conn_fail(c, LOG_WARNING, PEER_ERR_PROTOCOL, "bad ANNOUNCE frame: %s", err);
        return;
    }
    if (pn->cb.on_announce != NULL)
        pn->cb.on_announce(pn->cb.arg, c->peer, &an);
}

static void conn_on_dyn(struct conn *c, const struct peer_frame *f)
{
    struct peer_net *pn = c->pn;
    struct dyn_msg m;
    char err[200];

    if (peer_decode_dyn(f->payload, f->len, &m, err, sizeof(err)) != 0) {
        pn->stats.dropped_bad_frames++;
        conn_fail(c, LOG_WARNING, PEER_ERR_PROTOCOL, "bad DYN frame: %s", err);
        return;
    }
    /* as for RAFT: only the authenticated peer speaks for itself */
    if (m.from != c->peer || m.to != pn->self) {
        pn->stats.dropped_bad_frames++;
        if (!c->warned_bad_dyn) {
            c->warned_bad_dyn = true;
            conn_log(c, LOG_WARNING,
                     "dropped a DYN message from node %u to node %u on the connection of nodes "
                     "%u and %u (logged once per connection)",
                     m.from, m.to, c->peer, pn->self);
        }
        return;
    }
    if (pn->cb.on_dyn != NULL)
        pn->cb.on_dyn(pn->cb.arg, c->peer, &m);
}

static void conn_on_ping(struct conn *c, const struct peer_frame *f)
{
    uint64_t value;
    char err[160];

    if (peer_decode_ping(f->payload, f->len, &value, err, sizeof(err)) != 0) {
        c->pn->stats.dropped_bad_frames++;
        conn_fail(c, LOG_WARNING, PEER_ERR_PROTOCOL, "bad %s frame: %s",
                  peer_msg_type_name(f->type), err);
        return;
    }
    if (f->type == PEER_MSG_PING) {
        peer_encode_ping(&c->out, PEER_MSG_PONG, value);
        c->pn->stats.frames_sent++;
        conn_flush(c);
    }
}

static void conn_handle_frame(struct conn *c, const struct peer_frame *f)
{
    uint8_t want = 0; /* the one type a handshake state takes */

    if (f->type == PEER_MSG_ERROR) {
        conn_on_error_frame(c, f);
        return;
    }
    switch (c->state) {
    case CONN_HELLO_SENT:
        want = PEER_MSG_HELLO_ACK;
        break;
    case CONN_AUTH_SENT:
        want = PEER_MSG_AUTH_OK;
        break;
    case CONN_WAIT_HELLO:
        want = PEER_MSG_HELLO;
        break;
    case CONN_WAIT_AUTH:
        want = PEER_MSG_AUTH;
        break;
    case CONN_UP:
        switch (f->type) {
        case PEER_MSG_RAFT:
            conn_on_raft(c, f);
            return;
        case PEER_MSG_PROXY_REQ:
            conn_on_proxy_req(c, f);
            return;
        case PEER_MSG_PROXY_REPLY:
            conn_on_proxy_reply(c, f);
            return;
        case PEER_MSG_ANNOUNCE:
            conn_on_announce(c, f);
            return;
        case PEER_MSG_DYN:
            conn_on_dyn(c, f);
            return;
        case PEER_MSG_PING:
        case PEER_MSG_PONG:
            conn_on_ping(c, f);
            return;
        default:
            break;
        }
        break;
    default:
        TRIAD_ASSERT(!"a frame in a state that reads none");
    }
    if (want != 0 && f->type == want) {
        switch (want) {
        case PEER_MSG_HELLO_ACK:
            conn_on_hello_ack(c, f);
            break;
        case PEER_MSG_AUTH_OK:
            conn_on_auth_ok(c, f);
            break;
        case PEER_MSG_HELLO:
            conn_on_hello(c, f);
            break;
        default:
            conn_on_auth(c, f);
            break;
        }
        return;
    }
    c->pn->stats.dropped_bad_frames++;
    if (want != 0)
        conn_fail(c, LOG_WARNING, PEER_ERR_PROTOCOL,
                  "unexpected %s frame during the handshake (expected %s)",
                  peer_msg_type_name(f->type), peer_msg_type_name(want));
    else
        conn_fail(c, LOG_WARNING, PEER_ERR_PROTOCOL, "unexpected %s frame",
                  peer_msg_type_name(f->type));
}

static bool conn_reading(const struct conn *c)
{
    return !c->pn->closing && c->state != CONN_LINGER && c->state != CONN_CLOSING;
}

/* Take every whole frame out of the decoder. A callback may close c or the
 * whole peer_net: checked before each frame. */
static void conn_process(struct conn *c)
{
    struct peer_net *pn = c->pn;
    struct peer_frame f;

    while (conn_reading(c)) {
        int rc = peer_decoder_next(&c->dec, &f);
        if (rc == TRIAD_EAGAIN)
            return;
        if (rc != 0) {
            pn->stats.dropped_bad_frames++;
            conn_fail(c, LOG_WARNING, PEER_ERR_PROTOCOL, "%s", c->dec.errmsg);
            return;
        }
        pn->stats.frames_received++;
        conn_handle_frame(c, &f);
    }
}

static void conn_on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    struct conn *c = h->data;
    size_t avail;

    if (!conn_reading(c)) {
        buf->base = (char *)c->pn->scratch;
        buf->len = sizeof(c->pn->scratch);
        return;
    }
    buf->base = (char *)peer_decoder_space(&c->dec, &avail);
    buf->len = avail;
}

static void conn_on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    struct conn *c = s->data;
    struct peer_net *pn = c->pn;

    if (c->state == CONN_CLOSING || nread == 0)
        return;
    if (nread < 0) {
        if (nread == UV_EOF)
            conn_close(c, LOG_NOTICE, "%s: closed by the peer",
                       c->up ? "connection closed" : "handshake cut short");
        else
            conn_close(c, LOG_NOTICE, "%s: %s", c->up ? "connection closed" : "handshake cut short",
                       uv_strerror((int)nread));
        return;
    }
    pn->stats.bytes_received += (uint64_t)nread;
    c->last_recv_ms = net_now_ms(pn);
    if ((uint8_t *)buf->base == pn->scratch)
        return; /* lingering: what the peer says now is not read */
    peer_decoder_commit(&c->dec, (size_t)nread);
    conn_process(c);
}

static void conn_start_reading(struct conn *c)
{
    int rc = uv_read_start((uv_stream_t *)&c->tcp, conn_on_alloc, conn_on_read);
    if (rc != 0)
        conn_close(c, LOG_WARNING, "read failed: %s", uv_strerror(rc));
}

/* ---- dialing and accepting ---- */

static void conn_on_connect(uv_connect_t *req, int status)
{
    struct conn *c = req->data;
    struct peer_net *pn = c->pn;
    int rc;

    if (c->state == CONN_CLOSING)
        return; /* UV_ECANCELED: closed while connecting */
    TRIAD_ASSERT(c->state == CONN_CONNECTING);
    if (status < 0) {
        conn_close(c, LOG_NOTICE, "dial failed: %s", uv_strerror(status));
        return;
    }
    uv_tcp_nodelay(&c->tcp, 1);
    memset(&c->hello, 0, sizeof(c->hello));
    c->hello.version = PEER_PROTOCOL_VERSION;
    c->hello.cluster_id = pn->cluster_id;
    c->hello.from = pn->self;
    c->hello.to = c->peer;
    c->hello.auth = net_has_secret(pn);
    rc = net_random(c->hello.nonce, sizeof(c->hello.nonce));
    if (rc != 0) {
        conn_close(c, LOG_WARNING, "handshake not started: no random bytes: %s", uv_strerror(rc));
        return;
    }
    c->state = CONN_HELLO_SENT;
    conn_send_hello(c, PEER_MSG_HELLO, &c->hello);
    conn_start_reading(c);
    conn_flush(c);
}

static void member_dial(struct peer_net *pn, struct member *m)
{
    struct conn *c;
    int rc;

    TRIAD_ASSERT(m->conn == NULL);
    TRIAD_ASSERT(m->dialing == NULL);
    TRIAD_ASSERT(pn->self < m->id || pn->open);
    TRIAD_ASSERT(m->port != 0);
    c = conn_new(pn, true, m->id);
    if (m->addr.ss_family == AF_INET6)
        snprintf(c->addr, sizeof(c->addr), "[%s]:%d", m->host, m->port);
    else
        snprintf(c->addr, sizeof(c->addr), "%s:%d", m->host, m->port);
    c->state = CONN_CONNECTING;
    m->dialing = c;
    pn->stats.dials++;
    c->creq.data = c;
    rc = uv_tcp_connect(&c->creq, &c->tcp, (const struct sockaddr *)&m->addr, conn_on_connect);
    if (rc != 0)
        conn_close(c, LOG_NOTICE, "dial failed: %s", uv_strerror(rc));
}

static void net_on_dial_timer(uv_timer_t *t)
{
    struct peer_net *pn = t->data;
    uint64_t now = net_now_ms(pn);
    raft_id due[PEER_MEMBERS_MAX];
    uint32_t n = 0;

    /* Ids, not pointers: a dial that fails at once logs, and the members
     * array must not be walked while anything else may run. */
    for (uint32_t i = 0; i < pn->n_members; i++)
        if (pn->members[i].dial_pending && pn->members[i].dial_at_ms <= now)
            due[n++] = pn->members[i].id;
    for (uint32_t i = 0; i < n && !pn->closing; i++) {
        struct member *m = member_find(pn, due[i]);
        if (m == NULL || !m->dial_pending || m->dial_at_ms > now)
            continue;
        m->dial_pending = false;
        if (m->conn == NULL && m->dialing == NULL && m->port != 0)
            member_dial(pn, m);
    }
    net_arm_dial_timer(pn);
}

/* One timer for every member's next dial, set to the earliest. */
static void net_arm_dial_timer(struct peer_net *pn)
{
    uint64_t at = UINT64_MAX, now;

    if (pn->closing)
        return;
    for (uint32_t i = 0; i < pn->n_members; i++)
        if (pn->members[i].dial_pending)
            at = TRIAD_MIN(at, pn->members[i].dial_at_ms);
    if (at == UINT64_MAX) {
        uv_timer_stop(&pn->dial_timer);
        return;
    }
    now = net_now_ms(pn);
    uv_timer_start(&pn->dial_timer, net_on_dial_timer, at > now ? at - now : 0, 0);
}

/* Accepted connections not yet through their handshake. */
static uint32_t net_handshakes(const struct peer_net *pn)
{
    uint32_t n = 0;
    for (const struct conn *c = pn->conns; c != NULL; c = c->next)
        if (!c->dialer && !c->up && c->state != CONN_CLOSING)
            n++;
    return n;
}

static void net_on_connection(uv_stream_t *server, int status)
{
    struct peer_net *pn = server->data;
    struct sockaddr_storage ss;
    int len = sizeof(ss);
    uint32_t handshakes;
    struct conn *c;
    int rc;

    if (status < 0) {
        net_log(pn, LOG_WARNING, "peer listener: accept failed: %s", uv_strerror(status));
        return;
    }
    if (pn->closing)
        return;
    handshakes = net_handshakes(pn);
    c = conn_new(pn, false, 0);
    snprintf(c->addr, sizeof(c->addr), "?");
    rc = uv_accept(server, (uv_stream_t *)&c->tcp);
    if (rc != 0) {
        c->detached = true; /* never a connection: nothing to count */
        c->state = CONN_CLOSING;
        uv_close((uv_handle_t *)&c->tcp, conn_on_closed);
        net_log(pn, LOG_WARNING, "peer listener: accept failed: %s", uv_strerror(rc));
        return;
    }
    pn->stats.accepts++;
    if (uv_tcp_getpeername(&c->tcp, (struct sockaddr *)&ss, &len) == 0)
        format_addr((const struct sockaddr *)&ss, c->addr, sizeof(c->addr));
    c->state = CONN_WAIT_HELLO;
    /* Each one holds a socket and a read buffer before anyone knows who
     * is at the other end: their number is bounded. */
    if (handshakes >= PEER_HANDSHAKES_MAX) {
        conn_close(c, LOG_WARNING, "refused: %u handshakes already in progress", handshakes);
        return;
    }
    uv_tcp_nodelay(&c->tcp, 1);
    conn_log(c, LOG_DEBUG, "accepted a TCP connection");
    conn_start_reading(c);
}

/* Pings, the dead-peer timeout, handshake and linger timeouts. */
static void net_on_tick(uv_timer_t *t)
{
    struct peer_net *pn = t->data;
    uint64_t now = net_now_ms(pn);
    struct conn *next;

    /* Closing a connection frees nothing before the loop's close phase, so
     * `next` stays valid; connections a callback adds go to the head and
     * wait for the next tick. */
    for (struct conn *c = pn->conns; c != NULL && !pn->closing; c = next) {
        next = c->next;
        switch (c->state) {
        case CONN_UP:
            if (now - c->last_recv_ms >= pn->dead_timeout_ms) {
                conn_close(c, LOG_WARNING, "connection closed: nothing received for %llu ms",
                           (unsigned long long)(now - c->last_recv_ms));
            } else if (now - c->last_send_ms >= pn->ping_interval_ms) {
                peer_encode_ping(&c->out, PEER_MSG_PING, now);
                pn->stats.frames_sent++;
                /* Sent as far as idleness goes, even if it waits behind a
                 * slow write: one PING queued per interval, not per tick. */
                c->last_send_ms = now;
                conn_flush(c);
            }
            break;
        case CONN_LINGER:
            if (now - c->linger_ms >= PEER_LINGER_MS)
                conn_close(c, LOG_DEBUG, "linger time over");
            break;
        case CONN_CLOSING:
            break;
        default:
            if (now - c->created_ms >= pn->handshake_timeout_ms)
                conn_close(c, LOG_WARNING, "%s timed out after %llu ms",
                           c->state == CONN_CONNECTING ? "dial" : "handshake",
                           (unsigned long long)(now - c->created_ms));
            break;
        }
    }
}

/* ---- the API ---- */

int peer_net_start(struct peer_net **out, const struct peer_net_config *cfg, char *errmsg,
                   size_t errlen)
{
    struct peer_net *pn;
    struct sockaddr_storage ss;
    size_t secret_len = cfg->secret != NULL ? strlen(cfg->secret) : 0;
    int rc;

    *out = NULL;
    if (cfg->loop == NULL || cfg->self == 0) {
        triad_errf(errmsg, errlen, "peer transport: a loop and a node id other than 0 are needed");
        return TRIAD_EINVAL;
    }
    if (secret_len > PEER_SECRET_BYTES_MAX) {
        triad_errf(errmsg, errlen, "cluster secret of %zu bytes is longer than %u", secret_len,
                   PEER_SECRET_BYTES_MAX);
        return TRIAD_EINVAL;
    }
    if (parse_addr(cfg->listen_host, cfg->listen_port, &ss) != 0) {
        triad_errf(errmsg, errlen, "bad peer listen address '%s' port %d",
                   cfg->listen_host ? cfg->listen_host : "(null)", cfg->listen_port);
        return TRIAD_EINVAL;
    }

    pn = tcalloc(1, sizeof(*pn));
    pn->loop = cfg->loop;
    pn->self = cfg->self;
    pn->cluster_id = cfg->cluster_id;
    if (secret_len > 0) {
        pn->secret = tstrndup(cfg->secret, secret_len);
        pn->secret_len = secret_len;
    }
    pn->cb = cfg->cb;
    pn->announce = cfg->announce;
    pn->open = cfg->open_membership;
    pn->send_queue_bytes_max = cfg->send_queue_bytes_max ? cfg->send_queue_bytes_max
                                                         : PEER_SEND_QUEUE_BYTES_MAX;
    pn->ping_interval_ms = cfg->ping_interval_ms ? cfg->ping_interval_ms : PEER_PING_INTERVAL_MS;
    pn->dead_timeout_ms = cfg->dead_timeout_ms ? cfg->dead_timeout_ms : PEER_DEAD_TIMEOUT_MS;
    pn->handshake_timeout_ms = cfg->handshake_timeout_ms ? cfg->handshake_timeout_ms
                                                         : PEER_HANDSHAKE_TIMEOUT_MS;
    pn->backoff_ms_min = cfg->backoff_ms_min ? cfg->backoff_ms_min : PEER_BACKOFF_MS_MIN;
    pn->backoff_ms_max = cfg->backoff_ms_max ? cfg->backoff_ms_max : PEER_BACKOFF_MS_MAX;
    pn->backoff_ms_max = TRIAD_MAX(pn->backoff_ms_max, pn->backoff_ms_min);
    pn->redial_down_ms_max = cfg->redial_down_ms_max ? cfg->redial_down_ms_max : pn->backoff_ms_max;
    pn->redial_down_ms_max = TRIAD_MIN(TRIAD_MAX(pn->redial_down_ms_max, pn->backoff_ms_min),
                                       pn->backoff_ms_max);

    rc = uv_tcp_init(pn->loop, &pn->listener);
    TRIAD_ASSERT(rc == 0);
    pn->listener.data = pn;
    pn->handles++;
    rc = uv_tcp_bind(&pn->listener, (const struct sockaddr *)&ss, 0);
    if (rc == 0)
        rc = uv_listen((uv_stream_t *)&pn->listener, PEER_LISTEN_BACKLOG, net_on_connection);
    if (rc != 0) {
        triad_errf(errmsg, errlen, "cannot listen for peers on %s port %d: %s", cfg->listen_host,
                   cfg->listen_port, uv_strerror(rc));
        /* The handle is initialised, so it is closed the libuv way, and pn
         * freed in its callback; no user callback is ever called. */
        pn->closing = true;
        uv_close((uv_handle_t *)&pn->listener, net_on_handle_closed);
        return TRIAD_EIO;
    }
    uv_timer_init(pn->loop, &pn->tick);
    pn->tick.data = pn;
    pn->handles++;
    uv_timer_start(&pn->tick, net_on_tick, PEER_TICK_MS, PEER_TICK_MS);
    uv_timer_init(pn->loop, &pn->dial_timer);
    pn->dial_timer.data = pn;
    pn->handles++;
    *out = pn;
    return 0;
}

int peer_net_port(const struct peer_net *pn)
{
    struct sockaddr_storage ss;
    int len = sizeof(ss);

    if (uv_tcp_getsockname(&pn->listener, (struct sockaddr *)&ss, &len) != 0)
        return 0;
    if (ss.ss_family == AF_INET)
        return ntohs(((const struct sockaddr_in *)&ss)->sin_port);
    if (ss.ss_family == AF_INET6)
        return ntohs(((const struct sockaddr_in6 *)&ss)->sin6_port);
    return 0;
}

int peer_net_set_member(struct peer_net *pn, raft_id id, const char *host, int port)
{
    struct sockaddr_storage ss;
    struct member *m;
    bool changed;

    TRIAD_ASSERT(!pn->closing);
    if (id == 0 || id == pn->self || port < 1 || port > 65535)
        return TRIAD_EINVAL;
    if (parse_addr(host, port, &ss) != 0)
        return TRIAD_EINVAL;
    m = member_find(pn, id);
    if (m == NULL) {
        if (pn->n_members == PEER_MEMBERS_MAX)
            return TRIAD_ELIMIT;
        m = &pn->members[pn->n_members++];
        memset(m, 0, sizeof(*m));
        m->id = id;
        m->backoff_ms = pn->backoff_ms_min;
        changed = true;
    } else {
        changed = strcmp(m->host, host) != 0 || m->port != port;
    }
    snprintf(m->host, sizeof(m->host), "%s", host);
    m->port = port;
    m->addr = ss;
    if ((pn->self > id && !pn->open) || !changed)
        return 0;
    /* Open membership learns addresses by gossip, after the fact: a
     * connection that is up (whoever dialed it) works whatever address was
     * learned since. */
    if (pn->open && (m->conn != NULL || m->dialing != NULL || m->dial_pending))
        return 0;
    /* A connection to the old address goes; the new one is dialed now. */
    if (m->conn != NULL || m->dialing != NULL)
        conn_close(m->conn != NULL ? m->conn : m->dialing, LOG_NOTICE,
                   "connection closed: the member's address is now %s port %d", host, port);
    m = member_find(pn, id); /* the callback may have changed the members */
    if (m != NULL && !pn->closing && m->conn == NULL && m->dialing == NULL) {
        m->backoff_ms = pn->backoff_ms_min;
        member_schedule_dial(pn, m, pn->self > id ? PEER_OPEN_DIAL_DELAY_MS : 0);
    }
    return 0;
}

void peer_net_remove_member(struct peer_net *pn, raft_id id)
{
    struct member *m = member_find(pn, id);
    struct conn *up, *dialing;

    TRIAD_ASSERT(!pn->closing);
    if (m == NULL)
        return;
    up = m->conn;
    dialing = m->dialing;
    /* Out of the array first: the closes below find no member to redial,
     * and the callback they make may change the array. */
    *m = pn->members[--pn->n_members];
    net_arm_dial_timer(pn);
    if (dialing != NULL)
        conn_close(dialing, LOG_NOTICE, "dial abandoned: node %u is no longer a member", id);
    /* The peer is told why, or it would only see the connection drop and
     * learn nothing from its next refused HELLO either. */
    if (up != NULL)
        conn_fail(up, LOG_NOTICE, PEER_ERR_NODE, "node %u is no longer a member known to node %u",
                  id, pn->self);
}

/* The least bytes m's frame can take: to drop a message that cannot fit
 * before paying for its encoding. */
static size_t raft_frame_bytes_min(const struct raft_msg *m)
{
    size_t n = PEER_HEADER_BYTES + PEER_RAFT_FIXED_BYTES + m->len;
    if (m->entries != NULL)
        for (uint32_t i = 0; i < m->n_entries; i++)
            n += PEER_RAFT_ENTRY_HEADER_BYTES + m->entries[i].len;
    return n;
}

void peer_net_send_raft(struct peer_net *pn, const struct raft_msg *m)
{
    struct conn *c;
    size_t queued, start;
    int rc;

    TRIAD_ASSERT(m->from == pn->self);
    c = net_conn_up(pn, m->to);
    if (c == NULL) {
        pn->stats.dropped_not_connected++;
        return;
    }
    queued = conn_queued_bytes(c);
    if (queued > 0 && queued + raft_frame_bytes_min(m) > pn->send_queue_bytes_max) {
        pn->stats.dropped_queue_full++;
        return;
    }
    start = c->out.len;
    rc = peer_encode_raft(&c->out, m);
    if (rc != 0) {
        pn->stats.dropped_encode_errors++;
        conn_log(c, LOG_WARNING, "dropped a RAFT message of type %u the codec refuses (%s)",
                 m->type, rc == TRIAD_ELIMIT ? "over the frame limit" : "malformed");
        return;
    }
    conn_admit(c, start);
}

/* A frame for `to`: the connection to append it to (NULL, counted, if
 * `to` is not connected), then the outcome of encoding it at `start`. */
static struct conn *net_send_begin(struct peer_net *pn, raft_id to, size_t *start)
{
    struct conn *c = net_conn_up(pn, to);
    if (c == NULL) {
        pn->stats.dropped_not_connected++;
        return NULL;
    }
    *start = c->out.len;
    return c;
}

static int net_send_end(struct peer_net *pn, struct conn *c, size_t start, int encode_rc)
{
    if (encode_rc != 0) {
        pn->stats.dropped_encode_errors++;
        return encode_rc;
    }
    return conn_admit(c, start);
}

int peer_net_send_proxy_req(struct peer_net *pn, raft_id to, const struct peer_proxy_req *r)
{
    size_t start;
    struct conn *c = net_send_begin(pn, to, &start);
    if (c == NULL)
        return TRIAD_EAGAIN;
    return net_send_end(pn, c, start, peer_encode_proxy_req(&c->out, r));
}

int peer_net_send_proxy_reply(struct peer_net *pn, raft_id to, const struct peer_proxy_reply *r)
{
    size_t start;
    struct conn *c = net_send_begin(pn, to, &start);
    if (c == NULL)
        return TRIAD_EAGAIN;
    return net_send_end(pn, c, start, peer_encode_proxy_reply(&c->out, r));
}

int peer_net_send_dyn(struct peer_net *pn, const struct dyn_msg *m)
{
    size_t start;
    TRIAD_ASSERT(m->from == pn->self);
    struct conn *c = net_send_begin(pn, m->to, &start);
    if (c == NULL)
        return TRIAD_EAGAIN;
    return net_send_end(pn, c, start, peer_encode_dyn(&c->out, m));
}

bool peer_net_connected(const struct peer_net *pn, raft_id id)
{
    for (uint32_t i = 0; i < pn->n_members; i++)
        if (pn->members[i].id == id)
            return pn->members[i].conn != NULL;
    return false;
}

void peer_net_stats(const struct peer_net *pn, struct peer_net_stats *out)
{
    *out = pn->stats;
}

void peer_net_close(struct peer_net *pn, peer_net_close_cb closed_cb, void *arg)
{
    struct tbuf bye = {0};

    TRIAD_ASSERT(!pn->closing);
    pn->closing = true;
    pn->closed_cb = closed_cb;
    pn->closed_arg = arg;
    peer_encode_errorf(&bye, PEER_ERR_SHUTDOWN, "node %u is shutting down", pn->self);
    for (struct conn *c = pn->conns; c != NULL; c = c->next) {
        if (c->state == CONN_CLOSING)
            continue;
        /* Best effort, so that the peer logs why: a write that does not go
         * at once (uv_try_write refuses behind a write in flight) is not
         * waited for. */
        if (c->state == CONN_UP) {
            uv_buf_t b = uv_buf_init(bye.data, (unsigned int)bye.len);
            (void)uv_try_write((uv_stream_t *)&c->tcp, &b, 1);
        }
        c->state = CONN_CLOSING;
        c->detached = true;
        uv_close((uv_handle_t *)&c->tcp, conn_on_closed);
    }
    tbuf_free(&bye);
    uv_close((uv_handle_t *)&pn->listener, net_on_handle_closed);
    uv_close((uv_handle_t *)&pn->tick, net_on_handle_closed);
    uv_close((uv_handle_t *)&pn->dial_timer, net_on_handle_closed);
}
