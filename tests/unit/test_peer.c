/* test_peer.c - the peer transport on real sockets: several peer_nets on
 * one uv loop, on 127.0.0.1 with ephemeral ports, plus a hand-driven "raw"
 * peer (the codec over a bare uv_tcp_t) for what an honest peer_net never
 * sends: forged senders, echoed MACs, oversized handshake frames, silence.
 *
 * Every loop run is bounded: WAIT_UNTIL arms a uv_timer that stops the loop
 * and fails the test. Each test has its own loop, and ends by closing
 * everything and checking that uv_loop_close() returns 0 (no handle left).
 */
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "../../src/common/buf.h"
#include "../../src/common/defs.h"
#include "../../src/core/raft.h"
#include "../../src/net/config.h"
#include "../../src/net/peer.h"
#include "../../src/net/peer_proto.h"
#include "test.h"

/* ---- the loop, bounded ---- */

static uv_loop_t g_loop;
static uv_timer_t g_poll;     /* wakes the loop every ms so WAIT_UNTIL re-checks */
static uv_timer_t g_deadline; /* stops the loop: the wait failed */
static bool g_timed_out;

static void on_poll(uv_timer_t *t) {}

static void on_deadline(uv_timer_t *t)
{
    g_timed_out = true;
    uv_stop(t->loop);
}

static void loop_begin(void)
{
    CHECK_EQ_INT(uv_loop_init(&g_loop), 0);
    uv_timer_init(&g_loop, &g_poll);
    uv_timer_start(&g_poll, on_poll, 1, 1);
    uv_timer_init(&g_loop, &g_deadline);
}

#define WAIT_UNTIL(cond, timeout_ms)                                                       \
    do {                                                                                   \
        g_timed_out = false;                                                               \
        uv_timer_start(&g_deadline, on_deadline, (timeout_ms), 0);                         \
        while (!(cond) && !g_timed_out)                                                    \
            uv_run(&g_loop, UV_RUN_ONCE);                                                  \
        uv_timer_stop(&g_deadline);                                                        \
        if (!(cond))                                                                       \
            fprintf(stderr, "  timed out after %d ms waiting for %s\n", (int)(timeout_ms), \
                    #cond);                                                                \
        CHECK(cond);                                                                       \
    } while (0)

static void run_for_ms(uint64_t ms)
{
    g_timed_out = false;
    uv_timer_start(&g_deadline, on_deadline, ms, 0);
    while (!g_timed_out)
        uv_run(&g_loop, UV_RUN_ONCE);
}

static void close_any(uv_handle_t *h, void *arg)
{
    if (!uv_is_closing(h))
        uv_close(h, NULL);
}

/* Everything the test opened must be closed by now: the loop ends on its
 * own (the deadline is unref'd, so it does not keep the loop alive). */
static void loop_end(void)
{
    uv_close((uv_handle_t *)&g_poll, NULL);
    g_timed_out = false;
    uv_timer_start(&g_deadline, on_deadline, 2000, 0);
    uv_unref((uv_handle_t *)&g_deadline);
    uv_run(&g_loop, UV_RUN_DEFAULT);
    if (g_timed_out) {
        CHECK(!"handles left open at the end of the test");
        uv_walk(&g_loop, close_any, NULL);
    }
    if (!uv_is_closing((uv_handle_t *)&g_deadline))
        uv_close((uv_handle_t *)&g_deadline, NULL);
    uv_run(&g_loop, UV_RUN_DEFAULT);
    CHECK_EQ_INT(uv_loop_close(&g_loop), 0);
}

/* ---- nodes: a peer_net and what its callbacks saw ---- */

#define NODES_MAX 8
#define ENTRIES_PER_APPEND 3
#define ENTRY_BYTES 100
#define CHUNK_BYTES (1024u * 1024)

struct node {
    raft_id id;
    struct peer_net *pn;
    int port;
    bool closed;
    struct tbuf log;
    uint64_t raft_received;
    uint64_t next_seq[NODES_MAX];
    uint64_t bad_content;
    uint64_t snapshots;
    int ups, downs;
    bool up[NODES_MAX];
    bool close_on_raft; /* peer_net_close from inside on_raft */
    int proxy_reqs, proxy_replies;
    int reply_rc;
    struct peer_proxy_req req_seen; /* argv not kept */
    char req_args[128];             /* the request's arguments, space-separated */
    raft_id reply_from;
    uint64_t reply_req_id;
    char reply[64];
};

static bool g_verbose;

static void fill_pattern(uint8_t *p, size_t n, uint64_t seed)
{
    for (size_t j = 0; j < n; j++)
        p[j] = (uint8_t)(seed * 131 + j * 7 + (j >> 8));
}

static bool has_pattern(const uint8_t *p, size_t n, uint64_t seed)
{
    for (size_t j = 0; j < n; j++)
        if (p[j] != (uint8_t)(seed * 131 + j * 7 + (j >> 8)))
            return false;
    return true;
}

static void node_on_closed(void *arg)
{
    struct node *n = arg;
    n->closed = true;
    n->pn = NULL;
}

static void node_on_raft(void *arg, const struct raft_msg *m)
{
    struct node *n = arg;
    n->raft_received++;
    if (m->from >= NODES_MAX || m->to != n->id) {
        n->bad_content++;
        return;
    }
    if (m->seq != n->next_seq[m->from])
        n->bad_content++;
    n->next_seq[m->from] = m->seq + 1;
    if (m->type == RAFT_MSG_APPEND) {
        if (m->n_entries != ENTRIES_PER_APPEND || m->prev_index != m->seq * ENTRIES_PER_APPEND)
            n->bad_content++;
        for (uint32_t i = 0; i < m->n_entries; i++) {
            const struct raft_entry *e = &m->entries[i];
            if (e->index != m->seq * ENTRIES_PER_APPEND + i + 1 || e->len != ENTRY_BYTES ||
                !has_pattern(e->data, e->len, e->index * 31 + m->from))
                n->bad_content++;
        }
    } else if (m->type == RAFT_MSG_SNAPSHOT) {
        if (m->len != CHUNK_BYTES || !has_pattern(m->data, m->len, m->from) || !m->done ||
            m->snap_conf.n != 3)
            n->bad_content++;
        n->snapshots++;
    }
    if (n->close_on_raft) {
        n->close_on_raft = false;
        peer_net_close(n->pn, node_on_closed, n);
    }
}

static void node_on_proxy_req(void *arg, raft_id from, const struct peer_proxy_req *r)
{
    struct node *n = arg;
    struct peer_proxy_reply rep = {
        .req_id = r->req_id, .len = 5, .data = (const uint8_t *)"+OK\r\n"};
    size_t w = 0;

    n->proxy_reqs++;
    n->req_seen = *r;
    n->req_seen.argv = NULL;
    n->req_seen.argvlen = NULL;
    for (uint32_t i = 0; i < r->argc && w + r->argvlen[i] + 2 < sizeof(n->req_args); i++) {
        if (i > 0)
            n->req_args[w++] = ' ';
        memcpy(n->req_args + w, r->argv[i], r->argvlen[i]);
        w += r->argvlen[i];
    }
    n->req_args[w] = '\0';
    n->reply_rc = peer_net_send_proxy_reply(n->pn, from, &rep);
}

static void node_on_proxy_reply(void *arg, raft_id from, const struct peer_proxy_reply *r)
{
    struct node *n = arg;
    n->proxy_replies++;
    n->reply_from = from;
    n->reply_req_id = r->req_id;
    snprintf(n->reply, sizeof(n->reply), "%.*s", (int)r->len, (const char *)r->data);
}

static void node_on_log(void *arg, int level, const char *line)
{
    struct node *n = arg;
    if (g_verbose)
        fprintf(stderr, "    [node %u] %d %s\n", n->id, level, line);
    tbuf_appends(&n->log, line);
    tbuf_appendc(&n->log, '\n');
    tbuf_appendc(&n->log, '\0');
    n->log.len--; /* NUL-terminated for strstr */
}

static void node_on_connected(void *arg, raft_id peer, bool up)
{
    struct node *n = arg;
    if (up)
        n->ups++;
    else
        n->downs++;
    if (peer < NODES_MAX)
        n->up[peer] = up;
}

static bool log_has(const struct node *n, const char *s)
{
    return n->log.len > 0 && strstr(n->log.data, s) != NULL;
}

static int log_count(const struct node *n, const char *s)
{
    int k = 0;
    if (n->log.len == 0)
        return 0;
    for (const char *p = strstr(n->log.data, s); p != NULL; p = strstr(p + 1, s))
        k++;
    return k;
}

static void node_init(struct node *n, raft_id id)
{
    memset(n, 0, sizeof(*n));
    n->id = id;
    n->closed = true; /* until started */
}

static struct peer_net_config node_config(struct node *n)
{
    struct peer_net_config cfg;
    memset(&cfg, 0, sizeof(cfg));
    cfg.loop = &g_loop;
    cfg.self = n->id;
    cfg.cluster_id = 7;
    cfg.listen_host = "127.0.0.1";
    cfg.cb.arg = n;
    cfg.cb.on_raft = node_on_raft;
    cfg.cb.on_proxy_req = node_on_proxy_req;
    cfg.cb.on_proxy_reply = node_on_proxy_reply;
    cfg.cb.on_log = node_on_log;
    cfg.cb.on_connected = node_on_connected;
    return cfg;
}

static void node_start_with(struct node *n, const struct peer_net_config *cfg)
{
    char err[256] = "";
    int rc = peer_net_start(&n->pn, cfg, err, sizeof(err));
    if (rc != 0)
        fprintf(stderr, "  peer_net_start: %s\n", err);
    CHECK_EQ_INT(rc, 0);
    if (rc != 0)
        return;
    n->closed = false;
    n->port = peer_net_port(n->pn);
    CHECK(n->port > 0);
}

static void node_start(struct node *n)
{
    struct peer_net_config cfg = node_config(n);
    node_start_with(n, &cfg);
}

/* a and b know each other's address. */
static void node_link(struct node *a, struct node *b)
{
    CHECK_EQ_INT(peer_net_set_member(a->pn, b->id, "127.0.0.1", b->port), 0);
    CHECK_EQ_INT(peer_net_set_member(b->pn, a->id, "127.0.0.1", a->port), 0);
}

static bool pair_up(const struct node *a, const struct node *b)
{
    return a->pn != NULL && b->pn != NULL && peer_net_connected(a->pn, b->id) &&
           peer_net_connected(b->pn, a->id);
}

static struct peer_net_stats node_stats(const struct node *n)
{
    struct peer_net_stats s;
    memset(&s, 0, sizeof(s));
    if (n->pn != NULL)
        peer_net_stats(n->pn, &s);
    return s;
}

static void node_close(struct node *n)
{
    if (n->pn != NULL && !n->closed) {
        peer_net_close(n->pn, node_on_closed, n);
        WAIT_UNTIL(n->closed, 2000);
    }
}

static void node_free(struct node *n)
{
    node_close(n);
    tbuf_free(&n->log);
}

static void send_append(struct node *from, raft_id to, uint64_t seq)
{
    struct raft_entry e[ENTRIES_PER_APPEND];
    uint8_t data[ENTRIES_PER_APPEND][ENTRY_BYTES];
    struct raft_msg m;

    memset(&m, 0, sizeof(m));
    for (uint32_t i = 0; i < ENTRIES_PER_APPEND; i++) {
        e[i].term = 1;
        e[i].index = seq * ENTRIES_PER_APPEND + i + 1;
        e[i].type = RAFT_ENTRY_NORMAL;
        e[i].len = ENTRY_BYTES;
        fill_pattern(data[i], ENTRY_BYTES, e[i].index * 31 + from->id);
        e[i].data = data[i];
    }
    m.type = RAFT_MSG_APPEND;
    m.from = from->id;
    m.to = to;
    m.term = 1;
    m.prev_index = seq * ENTRIES_PER_APPEND;
    m.prev_term = 1;
    m.commit = seq;
    m.n_entries = ENTRIES_PER_APPEND;
    m.entries = e;
    m.seq = seq;
    peer_net_send_raft(from->pn, &m);
}

static uint8_t g_chunk[CHUNK_BYTES];

static struct raft_msg snapshot_msg(raft_id from, raft_id to, uint64_t seq)
{
    struct raft_msg m;
    memset(&m, 0, sizeof(m));
    fill_pattern(g_chunk, CHUNK_BYTES, from);
    m.type = RAFT_MSG_SNAPSHOT;
    m.from = from;
    m.to = to;
    m.term = 1;
    m.seq = seq;
    m.snap_index = 3000;
    m.snap_term = 1;
    m.snap_conf.n = 3;
    for (uint32_t i = 0; i < 3; i++) {
        m.snap_conf.members[i].id = i + 1;
        m.snap_conf.members[i].role = RAFT_VOTER;
    }
    m.snap_size = CHUNK_BYTES;
    m.offset = 0;
    m.len = CHUNK_BYTES;
    m.data = g_chunk;
    m.done = true;
    return m;
}

/* A small message with one field that says its order. */
static struct raft_msg vote_msg(raft_id from, raft_id to, uint64_t seq)
{
    struct raft_msg m;
    memset(&m, 0, sizeof(m));
    m.type = RAFT_MSG_VOTE_RESP;
    m.from = from;
    m.to = to;
    m.term = 3;
    m.seq = seq;
    return m;
}

static void send_vote(struct node *from, raft_id to, uint64_t seq)
{
    struct raft_msg m = vote_msg(from->id, to, seq);
    peer_net_send_raft(from->pn, &m);
}

/* ---- the raw peer: the codec over a bare socket ---- */

enum raw_mode {
    RAW_SILENT,    /* connects and says nothing */
    RAW_CONNECTOR, /* sends `hello` once connected; on HELLO_ACK calls on_ack */
    RAW_ECHO,      /* accepts; answers HELLO with an auth HELLO_ACK, AUTH with the same MAC */
};

struct raw {
    enum raw_mode mode;
    uv_tcp_t tcp, listener;
    uv_connect_t creq;
    bool tcp_open, listening, connected, eof;
    int port; /* listening */
    struct peer_decoder dec;
    int frames[PEER_MSG_TYPE_MAX + 1];
    uint16_t error_code;
    char error_text[256];
    struct peer_hello hello; /* what a connector sends */
    struct peer_hello got;   /* the HELLO or HELLO_ACK received */
    void (*on_ack)(struct raw *r);
};

static void raw_send(struct raw *r, const struct tbuf *b)
{
    uv_buf_t ub = uv_buf_init(b->data, (unsigned int)b->len);
    int n = uv_try_write((uv_stream_t *)&r->tcp, &ub, 1);
    CHECK_EQ_INT(n, (long long)b->len);
}

static void raw_handle_frame(struct raw *r, const struct peer_frame *f)
{
    struct tbuf out = {0};
    r->frames[f->type]++;
    switch (f->type) {
    case PEER_MSG_ERROR: {
        struct peer_error e;
        CHECK_EQ_INT(peer_decode_error(f->payload, f->len, &e, NULL, 0), 0);
        r->error_code = e.code;
        snprintf(r->error_text, sizeof(r->error_text), "%.*s", (int)e.len, e.text);
        break;
    }
    case PEER_MSG_HELLO_ACK:
        CHECK_EQ_INT(peer_decode_hello(f->payload, f->len, &r->got, NULL, NULL, 0), 0);
        if (r->on_ack != NULL)
            r->on_ack(r);
        break;
    case PEER_MSG_HELLO:
        CHECK_EQ_INT(peer_decode_hello(f->payload, f->len, &r->got, NULL, NULL, 0), 0);
        if (r->mode == RAW_ECHO) {
            struct peer_hello ack = r->got;
            ack.from = r->got.to;
            ack.to = r->got.from;
            ack.auth = true;
            ack.nonce[0] ^= 0x5a;
            peer_encode_hello(&out, PEER_MSG_HELLO_ACK, &ack);
            raw_send(r, &out);
        }
        break;
    case PEER_MSG_AUTH:
        if (r->mode == RAW_ECHO) {
            uint8_t mac[PEER_MAC_BYTES];
            CHECK_EQ_INT(peer_decode_auth(f->payload, f->len, mac, NULL, 0), 0);
            /* A stranger without the secret can only replay what it got. */
            peer_encode_auth(&out, PEER_MSG_AUTH_OK, mac);
            raw_send(r, &out);
        }
        break;
    default:
        break;
    }
    tbuf_free(&out);
}

static void raw_on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    struct raw *r = h->data;
    size_t avail;
    buf->base = (char *)peer_decoder_space(&r->dec, &avail);
    buf->len = avail;
}

static void raw_on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    struct raw *r = s->data;
    struct peer_frame f;
    if (nread < 0) {
        r->eof = true;
        uv_read_stop(s);
        return;
    }
    peer_decoder_commit(&r->dec, (size_t)nread);
    while (peer_decoder_next(&r->dec, &f) == 0)
        raw_handle_frame(r, &f);
}

static void raw_on_connect(uv_connect_t *req, int status)
{
    struct raw *r = req->data;
    CHECK_EQ_INT(status, 0);
    if (status != 0)
        return;
    r->connected = true;
    uv_read_start((uv_stream_t *)&r->tcp, raw_on_alloc, raw_on_read);
    if (r->mode == RAW_CONNECTOR) {
        struct tbuf out = {0};
        peer_encode_hello(&out, PEER_MSG_HELLO, &r->hello);
        raw_send(r, &out);
        tbuf_free(&out);
    }
}

static void raw_init(struct raw *r, enum raw_mode mode)
{
    memset(r, 0, sizeof(*r));
    r->mode = mode;
    peer_decoder_init(&r->dec);
    r->hello.version = PEER_PROTOCOL_VERSION;
    r->hello.cluster_id = 7;
    memset(r->hello.nonce, 0xab, sizeof(r->hello.nonce));
}

static void raw_connect(struct raw *r, int port)
{
    struct sockaddr_in a;
    uv_ip4_addr("127.0.0.1", port, &a);
    uv_tcp_init(&g_loop, &r->tcp);
    r->tcp.data = r;
    r->tcp_open = true;
    r->creq.data = r;
    CHECK_EQ_INT(uv_tcp_connect(&r->creq, &r->tcp, (const struct sockaddr *)&a, raw_on_connect), 0);
}

static void raw_on_connection(uv_stream_t *l, int status)
{
    struct raw *r = l->data;
    if (status != 0 || r->tcp_open)
        return; /* one connection only; later ones wait in the backlog */
    uv_tcp_init(&g_loop, &r->tcp);
    r->tcp.data = r;
    r->tcp_open = true;
    CHECK_EQ_INT(uv_accept(l, (uv_stream_t *)&r->tcp), 0);
    r->connected = true;
    uv_read_start((uv_stream_t *)&r->tcp, raw_on_alloc, raw_on_read);
}

static void raw_listen(struct raw *r)
{
    struct sockaddr_in a;
    struct sockaddr_storage ss;
    int len = sizeof(ss);
    uv_ip4_addr("127.0.0.1", 0, &a);
    uv_tcp_init(&g_loop, &r->listener);
    r->listener.data = r;
    r->listening = true;
    CHECK_EQ_INT(uv_tcp_bind(&r->listener, (const struct sockaddr *)&a, 0), 0);
    CHECK_EQ_INT(uv_listen((uv_stream_t *)&r->listener, 8, raw_on_connection), 0);
    uv_tcp_getsockname(&r->listener, (struct sockaddr *)&ss, &len);
    r->port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
}

static void raw_close(struct raw *r)
{
    if (r->tcp_open)
        uv_close((uv_handle_t *)&r->tcp, NULL);
    if (r->listening)
        uv_close((uv_handle_t *)&r->listener, NULL);
    r->tcp_open = r->listening = false;
    peer_decoder_free(&r->dec);
}

static void raw_send_raft(struct raw *r, raft_id from, raft_id to, uint64_t seq)
{
    struct tbuf out = {0};
    struct raft_msg m = vote_msg(from, to, seq);
    CHECK_EQ_INT(peer_encode_raft(&out, &m), 0);
    raw_send(r, &out);
    tbuf_free(&out);
}

/* ---- tests ---- */

static bool all_received(struct node *nodes, int n, uint64_t per_sender)
{
    for (int i = 0; i < n; i++)
        for (int j = 0; j < n; j++)
            if (i != j && nodes[i].next_seq[nodes[j].id] != per_sender)
                return false;
    return true;
}

TEST(peer_three_nodes_connect_once_per_pair_and_deliver_everything_in_order)
{
    struct node nodes[3];
    loop_begin();
    for (int i = 0; i < 3; i++) {
        node_init(&nodes[i], (raft_id)(i + 1));
        node_start(&nodes[i]);
    }
    for (int i = 0; i < 3; i++)
        for (int j = i + 1; j < 3; j++)
            node_link(&nodes[i], &nodes[j]);
    WAIT_UNTIL(pair_up(&nodes[0], &nodes[1]) && pair_up(&nodes[0], &nodes[2]) &&
                   pair_up(&nodes[1], &nodes[2]),
               2000);

    /* Both directions of every pair at once, then a 1 MiB chunk behind. */
    for (uint64_t seq = 0; seq < 1000; seq++)
        for (int i = 0; i < 3; i++)
            for (int j = 0; j < 3; j++)
                if (i != j)
                    send_append(&nodes[i], nodes[j].id, seq);
    for (int i = 0; i < 3; i++)
        for (int j = 0; j < 3; j++)
            if (i != j) {
                struct raft_msg m = snapshot_msg(nodes[i].id, nodes[j].id, 1000);
                peer_net_send_raft(nodes[i].pn, &m);
            }
    WAIT_UNTIL(all_received(nodes, 3, 1001), 5000);

    for (int i = 0; i < 3; i++) {
        struct peer_net_stats s = node_stats(&nodes[i]);
        CHECK_EQ_INT(nodes[i].bad_content, 0);
        CHECK_EQ_INT(nodes[i].raft_received, 2 * 1001);
        CHECK_EQ_INT(nodes[i].snapshots, 2);
        /* One TCP connection per pair: 1 dials 2 and 3, 2 dials 3. */
        CHECK_EQ_INT(s.conns_open, 2);
        CHECK_EQ_INT(s.conns_up, 2);
        CHECK_EQ_INT(s.connects, 2);
        CHECK_EQ_INT(s.dials, 2 - i);
        CHECK_EQ_INT(s.accepts, i);
        CHECK_EQ_INT(nodes[i].ups, 2);
        CHECK_EQ_INT(nodes[i].downs, 0);
        CHECK_EQ_INT(s.dropped_not_connected, 0);
        CHECK_EQ_INT(s.dropped_queue_full, 0);
        CHECK_EQ_INT(s.dropped_bad_frames, 0);
        CHECK_EQ_INT(s.handshake_failures, 0);
        CHECK(s.bytes_received > 2 * CHUNK_BYTES);
        CHECK(s.frames_received >= 2 * 1001 + 2); /* + the handshake */
    }
    for (int i = 0; i < 3; i++)
        node_free(&nodes[i]);
    loop_end();
}

TEST(peer_wrong_cluster_id_is_refused_with_the_reason_in_both_logs)
{
    struct node a, b;
    struct peer_net_config cfg;
    loop_begin();
    node_init(&a, 1);
    node_init(&b, 2);
    node_start(&a);
    cfg = node_config(&b);
    cfg.cluster_id = 8;
    node_start_with(&b, &cfg);
    node_link(&a, &b);
    WAIT_UNTIL(log_has(&a, "refused by the peer: cluster id mismatch: expected 8, got 7") &&
                   log_has(&b, "handshake refused: cluster id mismatch: expected 8, got 7"),
               2000);
    send_vote(&a, 2, 0);
    send_vote(&b, 1, 0);
    run_for_ms(50);
    CHECK(!peer_net_connected(a.pn, 2));
    CHECK(!peer_net_connected(b.pn, 1));
    CHECK_EQ_INT(a.raft_received + b.raft_received, 0);
    CHECK_EQ_INT(a.ups + b.ups, 0);
    CHECK_EQ_INT(node_stats(&a).dropped_not_connected, 1);
    CHECK_EQ_INT(node_stats(&b).dropped_not_connected, 1);
    CHECK(node_stats(&a).handshake_failures >= 1);
    CHECK(node_stats(&b).handshake_failures >= 1);
    node_free(&a);
    node_free(&b);
    loop_end();
}

/* a dials b; each with its own secret (NULL: none). */
static void secret_pair(struct node *a, struct node *b, const char *sa, const char *sb)
{
    struct peer_net_config cfg;
    node_init(a, 1);
    node_init(b, 2);
    cfg = node_config(a);
    cfg.secret = sa;
    node_start_with(a, &cfg);
    cfg = node_config(b);
    cfg.secret = sb;
    node_start_with(b, &cfg);
    node_link(a, b);
}

TEST(peer_same_secret_on_both_sides_connects_and_delivers)
{
    struct node a, b;
    loop_begin();
    secret_pair(&a, &b, "s3cret", "s3cret");
    WAIT_UNTIL(pair_up(&a, &b), 2000);
    send_vote(&a, 2, 0);
    send_vote(&b, 1, 0);
    WAIT_UNTIL(a.raft_received == 1 && b.raft_received == 1, 2000);
    CHECK_EQ_INT(a.bad_content + b.bad_content, 0);
    CHECK_EQ_INT(node_stats(&a).handshake_failures + node_stats(&b).handshake_failures, 0);
    node_free(&a);
    node_free(&b);
    loop_end();
}

TEST(peer_different_secrets_are_refused_on_every_retry)
{
    struct node a, b;
    loop_begin();
    secret_pair(&a, &b, "alpha", "beta");
    WAIT_UNTIL(log_has(&b, "handshake refused: authentication failed: node 1's MAC is wrong") &&
                   log_has(&a, "handshake refused by the peer: authentication failed") &&
                   node_stats(&b).handshake_failures >= 2,
               3000);
    CHECK_EQ_INT(a.ups + b.ups, 0);
    send_vote(&a, 2, 0);
    CHECK_EQ_INT(node_stats(&a).dropped_not_connected, 1);
    CHECK_EQ_INT(b.raft_received, 0);
    node_free(&a);
    node_free(&b);
    loop_end();
}

TEST(peer_secret_on_one_side_only_is_refused_either_way)
{
    for (int dialer_has_it = 0; dialer_has_it < 2; dialer_has_it++) {
        struct node a, b;
        loop_begin();
        secret_pair(&a, &b, dialer_has_it ? "s3cret" : NULL, dialer_has_it ? NULL : "s3cret");
        WAIT_UNTIL(log_has(&a, "handshake refused by the peer: authentication mismatch") &&
                       log_has(&b, "handshake refused: authentication mismatch"),
                   2000);
        CHECK_EQ_INT(a.ups + b.ups, 0);
        node_free(&a);
        node_free(&b);
        loop_end();
    }
}

TEST(peer_connector_refuses_an_acceptor_that_echoes_its_mac)
{
    struct node a;
    struct raw r;
    struct peer_net_config cfg;
    loop_begin();
    node_init(&a, 1);
    cfg = node_config(&a);
    cfg.secret = "s3cret";
    node_start_with(&a, &cfg);
    raw_init(&r, RAW_ECHO);
    raw_listen(&r);
    CHECK_EQ_INT(peer_net_set_member(a.pn, 2, "127.0.0.1", r.port), 0);
    WAIT_UNTIL(r.error_code != 0, 2000);
    CHECK_EQ_INT(r.frames[PEER_MSG_AUTH], 1);
    CHECK_EQ_INT(r.error_code, PEER_ERR_AUTH);
    CHECK(strstr(r.error_text, "authentication failed: node 2's MAC is wrong") != NULL);
    CHECK(log_has(&a, "handshake refused: authentication failed"));
    CHECK(!peer_net_connected(a.pn, 2));
    CHECK_EQ_INT(a.ups, 0);
    CHECK_EQ_INT(node_stats(&a).connects, 0);
    node_free(&a);
    raw_close(&r);
    loop_end();
}

static void raw_forge_after_ack(struct raw *r)
{
    raw_send_raft(r, 3, 2, 0); /* claims another sender */
    raw_send_raft(r, 1, 4, 0); /* meant for another node */
    raw_send_raft(r, 3, 2, 1);
    raw_send_raft(r, 1, 2, 0); /* the only good one */
}

TEST(peer_raft_frame_not_from_the_authenticated_peer_is_dropped_and_logged_once)
{
    struct node b;
    struct raw r;
    loop_begin();
    node_init(&b, 2);
    node_start(&b);
    CHECK_EQ_INT(peer_net_set_member(b.pn, 1, "127.0.0.1", 9), 0);
    CHECK_EQ_INT(peer_net_set_member(b.pn, 3, "127.0.0.1", 9), 0);
    raw_init(&r, RAW_CONNECTOR);
    r.hello.from = 1;
    r.hello.to = 2;
    r.on_ack = raw_forge_after_ack;
    raw_connect(&r, b.port);
    WAIT_UNTIL(b.raft_received == 1, 2000);
    run_for_ms(20);
    CHECK_EQ_INT(b.raft_received, 1);
    CHECK_EQ_INT(b.next_seq[1], 1);
    CHECK_EQ_INT(b.bad_content, 0);
    CHECK_EQ_INT(node_stats(&b).dropped_bad_frames, 3);
    CHECK_EQ_INT(log_count(&b, "dropped a RAFT message"), 1);
    CHECK(log_has(&b, "dropped a RAFT message from node 3 to node 2"));
    CHECK(peer_net_connected(b.pn, 1)); /* dropped, not closed */
    CHECK(!r.eof);
    node_free(&b);
    raw_close(&r);
    loop_end();
}

TEST(peer_hello_from_a_stranger_or_a_larger_id_is_refused)
{
    struct node b;
    struct raw stranger, larger;
    loop_begin();
    node_init(&b, 2);
    node_start(&b);
    CHECK_EQ_INT(peer_net_set_member(b.pn, 3, "127.0.0.1", 9), 0);
    raw_init(&stranger, RAW_CONNECTOR);
    stranger.hello.from = 1; /* not a member */
    stranger.hello.to = 2;
    raw_connect(&stranger, b.port);
    raw_init(&larger, RAW_CONNECTOR);
    larger.hello.from = 3; /* a member, but 2 dials 3, not the other way */
    larger.hello.to = 2;
    raw_connect(&larger, b.port);
    WAIT_UNTIL(stranger.eof && larger.eof, 2000);
    CHECK_EQ_INT(stranger.error_code, PEER_ERR_NODE);
    CHECK(strstr(stranger.error_text, "node 1 is not a member known to node 2") != NULL);
    CHECK_EQ_INT(larger.error_code, PEER_ERR_NODE);
    CHECK(strstr(larger.error_text, "the node with the smaller id dials") != NULL);
    CHECK_EQ_INT(stranger.frames[PEER_MSG_HELLO_ACK] + larger.frames[PEER_MSG_HELLO_ACK], 0);
    CHECK_EQ_INT(node_stats(&b).handshake_failures, 2);
    CHECK_EQ_INT(b.ups, 0);
    node_free(&b);
    raw_close(&stranger);
    raw_close(&larger);
    loop_end();
}

TEST(peer_handshake_frame_over_the_preauth_limit_is_refused_at_its_header)
{
    struct node b;
    struct raw r;
    uint8_t hdr[PEER_HEADER_BYTES];
    struct tbuf out = {0};
    loop_begin();
    node_init(&b, 2);
    node_start(&b);
    raw_init(&r, RAW_SILENT);
    raw_connect(&r, b.port);
    WAIT_UNTIL(r.connected, 2000);
    /* Only a header, claiming one byte more than a handshake frame may
     * carry: refused without waiting for (or buffering) the payload. */
    memset(hdr, 0, sizeof(hdr));
    tbuf_write_u32le(hdr, PEER_HANDSHAKE_PAYLOAD_BYTES_MAX + 1);
    hdr[PEER_HDR_OFF_TYPE] = PEER_MSG_HELLO;
    hdr[PEER_HDR_OFF_VERSION] = PEER_FRAME_VERSION;
    tbuf_append(&out, hdr, sizeof(hdr));
    raw_send(&r, &out);
    tbuf_free(&out);
    WAIT_UNTIL(r.eof, 2000);
    CHECK_EQ_INT(r.error_code, PEER_ERR_PROTOCOL);
    CHECK(strstr(r.error_text, "exceeds the limit of 4096 bytes") != NULL);
    CHECK_EQ_INT(node_stats(&b).dropped_bad_frames, 1);
    CHECK_EQ_INT(node_stats(&b).handshake_failures, 1);
    node_free(&b);
    raw_close(&r);
    loop_end();
}

TEST(peer_silent_connections_time_out_in_the_handshake_and_when_up)
{
    struct node b;
    struct raw mute, idle;
    struct peer_net_config cfg;
    loop_begin();
    node_init(&b, 2);
    cfg = node_config(&b);
    cfg.handshake_timeout_ms = 200;
    cfg.ping_interval_ms = 50;
    cfg.dead_timeout_ms = 400;
    node_start_with(&b, &cfg);
    CHECK_EQ_INT(peer_net_set_member(b.pn, 1, "127.0.0.1", 9), 0);
    raw_init(&mute, RAW_SILENT);
    raw_connect(&mute, b.port);
    raw_init(&idle, RAW_CONNECTOR); /* handshakes, then never answers */
    idle.hello.from = 1;
    idle.hello.to = 2;
    raw_connect(&idle, b.port);
    WAIT_UNTIL(mute.eof, 1000);
    CHECK(log_has(&b, "handshake timed out"));
    CHECK(b.up[1]);
    WAIT_UNTIL(idle.eof, 2000);
    CHECK(idle.frames[PEER_MSG_PING] >= 3); /* pinged while idle */
    CHECK(log_has(&b, "connection closed: nothing received for"));
    CHECK_EQ_INT(b.ups, 1);
    CHECK_EQ_INT(b.downs, 1);
    CHECK(!peer_net_connected(b.pn, 1));
    node_free(&b);
    raw_close(&mute);
    raw_close(&idle);
    loop_end();
}

TEST(peer_idle_connection_stays_up_on_pings)
{
    struct node a, b;
    struct peer_net_config cfg;
    loop_begin();
    node_init(&a, 1);
    node_init(&b, 2);
    cfg = node_config(&a);
    cfg.ping_interval_ms = 50;
    cfg.dead_timeout_ms = 250;
    node_start_with(&a, &cfg);
    cfg = node_config(&b);
    cfg.ping_interval_ms = 50;
    cfg.dead_timeout_ms = 250;
    node_start_with(&b, &cfg);
    node_link(&a, &b);
    WAIT_UNTIL(pair_up(&a, &b), 2000);
    run_for_ms(800);
    CHECK(pair_up(&a, &b));
    CHECK_EQ_INT(node_stats(&a).connects, 1);
    CHECK_EQ_INT(node_stats(&b).connects, 1);
    CHECK(node_stats(&a).frames_received >= 5); /* pings and pongs */
    node_free(&a);
    node_free(&b);
    loop_end();
}

TEST(peer_restarted_node_on_the_same_port_is_redialed_and_messages_flow_again)
{
    struct node nodes[3];
    int port3;
    struct peer_net_config cfg;
    loop_begin();
    for (int i = 0; i < 3; i++) {
        node_init(&nodes[i], (raft_id)(i + 1));
        node_start(&nodes[i]);
    }
    for (int i = 0; i < 3; i++)
        for (int j = i + 1; j < 3; j++)
            node_link(&nodes[i], &nodes[j]);
    WAIT_UNTIL(pair_up(&nodes[0], &nodes[2]) && pair_up(&nodes[1], &nodes[2]), 2000);
    send_vote(&nodes[0], 3, 0);
    WAIT_UNTIL(nodes[2].raft_received == 1, 2000);

    port3 = nodes[2].port;
    node_free(&nodes[2]);
    WAIT_UNTIL(!nodes[0].up[3] && !nodes[1].up[3], 2000);
    send_vote(&nodes[0], 3, 1);
    CHECK_EQ_INT(node_stats(&nodes[0]).dropped_not_connected, 1);

    node_init(&nodes[2], 3);
    cfg = node_config(&nodes[2]);
    cfg.listen_port = port3;
    node_start_with(&nodes[2], &cfg);
    CHECK_EQ_INT(nodes[2].port, port3);
    CHECK_EQ_INT(peer_net_set_member(nodes[2].pn, 1, "127.0.0.1", nodes[0].port), 0);
    CHECK_EQ_INT(peer_net_set_member(nodes[2].pn, 2, "127.0.0.1", nodes[1].port), 0);
    WAIT_UNTIL(pair_up(&nodes[0], &nodes[2]) && pair_up(&nodes[1], &nodes[2]), 3000);
    send_vote(&nodes[0], 3, 0); /* the new node 3 counts from 0 */
    send_vote(&nodes[1], 3, 0);
    send_vote(&nodes[2], 1, 0);
    WAIT_UNTIL(nodes[2].raft_received == 2 && nodes[0].raft_received == 1, 2000);
    CHECK_EQ_INT(nodes[2].bad_content, 0);
    CHECK_EQ_INT(nodes[0].ups, 3); /* 2, 3, then 3 again */
    CHECK_EQ_INT(nodes[0].downs, 1);
    CHECK_EQ_INT(node_stats(&nodes[2]).conns_open, 2);
    CHECK(node_stats(&nodes[0]).dials >= 3);
    for (int i = 0; i < 3; i++)
        node_free(&nodes[i]);
    loop_end();
}

TEST(peer_message_to_a_peer_not_connected_is_dropped_and_dials_back_off)
{
    struct node a;
    struct peer_proxy_req req;
    char *argv[] = {"PING"};
    size_t argvlen[] = {4};
    loop_begin();
    node_init(&a, 1);
    node_start(&a);
    /* Port 1 on loopback: nobody listens, every dial is refused. */
    CHECK_EQ_INT(peer_net_set_member(a.pn, 2, "127.0.0.1", 1), 0);
    send_vote(&a, 2, 0);
    send_vote(&a, 5, 0); /* not even a member */
    memset(&req, 0, sizeof(req));
    req.req_id = 1;
    req.proto = 2;
    req.argc = 1;
    req.argv = argv;
    req.argvlen = argvlen;
    CHECK_EQ_INT(peer_net_send_proxy_req(a.pn, 2, &req), TRIAD_EAGAIN);
    CHECK_EQ_INT(node_stats(&a).dropped_not_connected, 3);
    /* Dials at 0, then after [25,50], [50,100], [100,200], [200,400] ms:
     * 3 or 4 in 300 ms, where dialing without backoff would make dozens. */
    run_for_ms(300);
    CHECK(node_stats(&a).dials >= 2);
    CHECK(node_stats(&a).dials <= 5);
    /* A dial may be under way: each one fails, and logs once. */
    WAIT_UNTIL(node_stats(&a).dial_failures == node_stats(&a).dials &&
                   log_count(&a, "dial failed") == (int)node_stats(&a).dials,
               500);
    CHECK(log_has(&a, "peer 2 (127.0.0.1:1): dial failed: connection refused; redialing in"));
    node_free(&a);
    loop_end();
}

TEST(peer_member_down_for_long_is_redialed_within_the_down_limit_once_back)
{
    /* Node 2 is away for 1.5 s while node 1 dials it: the backoff would
     * have grown past 800 ms by then, but a dial nobody answered is
     * retried within redial_down_ms_max, so node 2 hears from node 1 soon
     * after it is back. (Node 2, the larger id, never dials node 1: in
     * leader mode a failover that needs this pair waits for that dial.) */
    struct node a, b;
    struct peer_net_config cfg;
    int port;
    loop_begin();
    node_init(&a, 1);
    cfg = node_config(&a);
    cfg.redial_down_ms_max = 100;
    node_start_with(&a, &cfg);
    node_init(&b, 2);
    node_start(&b);
    node_link(&a, &b);
    WAIT_UNTIL(pair_up(&a, &b), 2000);

    port = b.port;
    node_free(&b);
    WAIT_UNTIL(!a.up[2], 2000);
    run_for_ms(1500);
    /* Dials after [25,50], [50,100], then every [50,100] ms: 15 or more,
     * where the backoff alone (to 2 s) would have made 5 or 6. */
    CHECK(node_stats(&a).dial_failures >= 10);

    node_init(&b, 2);
    cfg = node_config(&b);
    cfg.listen_port = port;
    node_start_with(&b, &cfg);
    CHECK_EQ_INT(b.port, port);
    CHECK_EQ_INT(peer_net_set_member(b.pn, 1, "127.0.0.1", a.port), 0);
    /* within 100 ms, and room for a busy machine */
    WAIT_UNTIL(pair_up(&a, &b), 400);
    send_vote(&a, 2, 0);
    WAIT_UNTIL(b.raft_received == 1, 2000);
    node_free(&a);
    node_free(&b);
    loop_end();
}

/* The bytes of vote_msg's frame. */
static size_t vote_frame_bytes(void)
{
    struct tbuf out = {0};
    struct raft_msg m = vote_msg(1, 2, 0);
    size_t n;
    CHECK_EQ_INT(peer_encode_raft(&out, &m), 0);
    n = out.len;
    tbuf_free(&out);
    return n;
}

TEST(peer_send_queue_takes_frames_up_to_its_limit_and_drops_one_more)
{
    size_t f = vote_frame_bytes();
    /* Three frames fit exactly; one byte short of four (the message's
     * cheap lower bound passes, its exact size does not); four exactly. */
    const struct {
        size_t limit_bytes;
        uint64_t fit;
    } cases[] = {{3 * f, 3}, {4 * f - 1, 3}, {4 * f, 4}};

    for (size_t k = 0; k < TRIAD_ARRAY_LEN(cases); k++) {
        struct node a, b;
        struct peer_net_config cfg;
        loop_begin();
        node_init(&a, 1);
        node_init(&b, 2);
        cfg = node_config(&a);
        cfg.send_queue_bytes_max = cases[k].limit_bytes;
        node_start_with(&a, &cfg);
        node_start(&b);
        node_link(&a, &b);
        WAIT_UNTIL(pair_up(&a, &b), 2000);
        /* Within one callback no write completes: the first frame is the
         * write in flight, the rest wait behind it in the queue. */
        for (uint64_t seq = 0; seq < 6; seq++)
            send_vote(&a, 2, seq < cases[k].fit ? seq : 100 + seq);
        CHECK_EQ_INT(node_stats(&a).dropped_queue_full, 6 - cases[k].fit);
        WAIT_UNTIL(b.raft_received == cases[k].fit, 2000);
        CHECK_EQ_INT(b.next_seq[1], cases[k].fit);
        CHECK_EQ_INT(b.bad_content, 0);
        /* Drained: room again. */
        send_vote(&a, 2, cases[k].fit);
        WAIT_UNTIL(b.raft_received == cases[k].fit + 1, 2000);
        CHECK_EQ_INT(b.bad_content, 0);
        CHECK_EQ_INT(node_stats(&a).dropped_queue_full, 6 - cases[k].fit);
        node_free(&a);
        node_free(&b);
        loop_end();
    }
}

TEST(peer_message_bigger_than_the_queue_limit_still_goes_alone)
{
    struct node a, b;
    struct peer_net_config cfg;
    loop_begin();
    node_init(&a, 1);
    node_init(&b, 2);
    cfg = node_config(&a);
    cfg.send_queue_bytes_max = 1024; /* far below a 1 MiB chunk */
    node_start_with(&a, &cfg);
    node_start(&b);
    node_link(&a, &b);
    WAIT_UNTIL(pair_up(&a, &b), 2000);
    struct raft_msg m = snapshot_msg(1, 2, 0);
    peer_net_send_raft(a.pn, &m);
    m = snapshot_msg(1, 2, 1);
    peer_net_send_raft(a.pn, &m); /* behind the first: dropped */
    CHECK_EQ_INT(node_stats(&a).dropped_queue_full, 1);
    WAIT_UNTIL(b.snapshots == 1, 2000);
    CHECK_EQ_INT(b.bad_content, 0);
    node_free(&a);
    node_free(&b);
    loop_end();
}

TEST(peer_proxy_request_and_reply_round_trip)
{
    struct node a, b;
    struct peer_proxy_req req;
    char *argv[] = {"SET", "k", "v"};
    size_t argvlen[] = {3, 1, 1};
    loop_begin();
    node_init(&a, 1);
    node_init(&b, 2);
    node_start(&a);
    node_start(&b);
    node_link(&a, &b);
    WAIT_UNTIL(pair_up(&a, &b), 2000);
    memset(&req, 0, sizeof(req));
    req.req_id = 42;
    req.client_id = 7;
    req.seq = 9;
    req.db = 3;
    req.proto = 3;
    req.argc = 3;
    req.argv = argv;
    req.argvlen = argvlen;
    CHECK_EQ_INT(peer_net_send_proxy_req(a.pn, 2, &req), 0);
    WAIT_UNTIL(a.proxy_replies == 1, 2000);
    CHECK_EQ_INT(b.proxy_reqs, 1);
    CHECK_EQ_INT(b.req_seen.req_id, 42);
    CHECK_EQ_INT(b.req_seen.client_id, 7);
    CHECK_EQ_INT(b.req_seen.seq, 9);
    CHECK_EQ_INT(b.req_seen.db, 3);
    CHECK_EQ_INT(b.req_seen.proto, 3);
    CHECK(strcmp(b.req_args, "SET k v") == 0);
    CHECK_EQ_INT(b.reply_rc, 0);
    CHECK_EQ_INT(a.reply_from, 2);
    CHECK_EQ_INT(a.reply_req_id, 42);
    CHECK(strcmp(a.reply, "+OK\r\n") == 0);
    CHECK_EQ_INT(peer_net_send_proxy_req(a.pn, 3, &req), TRIAD_EAGAIN);
    node_free(&a);
    node_free(&b);
    loop_end();
}

static void raw_send_vote_after_ack(struct raw *r)
{
    raw_send_raft(r, 1, 2, r->hello.nonce[0] == 0x01 ? 0 : 1);
}

TEST(peer_newer_connection_from_the_same_peer_replaces_the_older)
{
    struct node b;
    struct raw older, newer;
    loop_begin();
    node_init(&b, 2);
    node_start(&b);
    CHECK_EQ_INT(peer_net_set_member(b.pn, 1, "127.0.0.1", 9), 0);
    /* Node 1 restarted without node 2 noticing: its old connection is
     * still up on node 2 when the new one arrives. */
    raw_init(&older, RAW_CONNECTOR);
    older.hello.from = 1;
    older.hello.to = 2;
    older.hello.nonce[0] = 0x01;
    older.on_ack = raw_send_vote_after_ack;
    raw_connect(&older, b.port);
    WAIT_UNTIL(b.raft_received == 1, 2000);
    raw_init(&newer, RAW_CONNECTOR);
    newer.hello.from = 1;
    newer.hello.to = 2;
    newer.hello.nonce[0] = 0x02;
    newer.on_ack = raw_send_vote_after_ack;
    raw_connect(&newer, b.port);
    WAIT_UNTIL(older.eof && b.raft_received == 2, 2000);
    CHECK(!newer.eof);
    CHECK(peer_net_connected(b.pn, 1));
    CHECK(log_has(&b, "connection closed: replaced by a newer one"));
    CHECK_EQ_INT(b.ups, 2);
    CHECK_EQ_INT(b.downs, 1);
    CHECK(b.up[1]);
    CHECK_EQ_INT(node_stats(&b).conns_up, 1);
    CHECK_EQ_INT(b.bad_content, 0);
    node_free(&b);
    raw_close(&older);
    raw_close(&newer);
    loop_end();
}

TEST(peer_member_moved_to_a_new_address_is_redialed_there)
{
    struct node a, old2, new2;
    loop_begin();
    node_init(&a, 1);
    node_init(&old2, 2);
    node_init(&new2, 2);
    node_start(&a);
    node_start(&old2);
    node_start(&new2);
    node_link(&a, &old2);
    CHECK_EQ_INT(peer_net_set_member(new2.pn, 1, "127.0.0.1", a.port), 0);
    WAIT_UNTIL(pair_up(&a, &old2), 2000);
    CHECK_EQ_INT(peer_net_set_member(a.pn, 2, "127.0.0.1", new2.port), 0);
    CHECK(!peer_net_connected(a.pn, 2)); /* the old connection went at once */
    WAIT_UNTIL(pair_up(&a, &new2) && old2.downs == 1, 2000);
    send_vote(&a, 2, 0);
    WAIT_UNTIL(new2.raft_received == 1, 2000);
    CHECK_EQ_INT(old2.raft_received, 0);
    CHECK(log_has(&a, "the member's address is now 127.0.0.1 port"));
    CHECK_EQ_INT(a.ups, 2);
    CHECK_EQ_INT(a.downs, 1);
    /* The same address again changes nothing. */
    CHECK_EQ_INT(peer_net_set_member(a.pn, 2, "127.0.0.1", new2.port), 0);
    CHECK(peer_net_connected(a.pn, 2));
    node_free(&a);
    node_free(&old2);
    node_free(&new2);
    loop_end();
}

TEST(peer_removed_member_is_disconnected_and_refused_afterwards)
{
    struct node a, b;
    loop_begin();
    node_init(&a, 1);
    node_init(&b, 2);
    node_start(&a);
    node_start(&b);
    node_link(&a, &b);
    WAIT_UNTIL(pair_up(&a, &b), 2000);
    peer_net_remove_member(b.pn, 1);
    CHECK_EQ_INT(b.downs, 1);
    CHECK(!peer_net_connected(b.pn, 1));
    WAIT_UNTIL(a.downs == 1 && log_has(&a, "handshake refused by the peer: node 1 is not a member"),
               2000);
    CHECK(log_has(&a, "connection closed by the peer: node 1 is no longer a member known to node 2"));
    CHECK_EQ_INT(a.ups, 1);
    CHECK_EQ_INT(b.ups, 1);
    node_free(&a);
    node_free(&b);
    loop_end();
}

TEST(peer_net_closed_from_inside_its_own_callback_releases_everything)
{
    struct node a, b;
    loop_begin();
    node_init(&a, 1);
    node_init(&b, 2);
    node_start(&a);
    node_start(&b);
    node_link(&a, &b);
    WAIT_UNTIL(pair_up(&a, &b), 2000);
    b.close_on_raft = true;
    for (uint64_t seq = 0; seq < 10; seq++)
        send_append(&a, 2, seq);
    WAIT_UNTIL(b.closed, 2000);
    CHECK_EQ_INT(b.raft_received, 1); /* nothing after the close */
    WAIT_UNTIL(a.downs == 1, 2000);
    node_free(&a);
    node_free(&b);
    loop_end();
}

TEST(peer_start_on_a_port_in_use_fails_and_leaves_nothing_open)
{
    struct node a, b;
    struct peer_net_config cfg;
    struct peer_net *pn = NULL;
    char err[256] = "";
    loop_begin();
    node_init(&a, 1);
    node_init(&b, 2);
    node_start(&a);
    cfg = node_config(&b);
    cfg.listen_port = a.port;
    CHECK_EQ_INT(peer_net_start(&pn, &cfg, err, sizeof(err)), TRIAD_EIO);
    CHECK(pn == NULL);
    CHECK(strstr(err, "address already in use") != NULL);
    cfg.listen_host = "not-an-address";
    CHECK_EQ_INT(peer_net_start(&pn, &cfg, err, sizeof(err)), TRIAD_EINVAL);
    CHECK(strstr(err, "bad peer listen address") != NULL);
    CHECK_EQ_INT(peer_net_set_member(a.pn, 1, "127.0.0.1", 9), TRIAD_EINVAL); /* itself */
    CHECK_EQ_INT(peer_net_set_member(a.pn, 2, "localhost", 9), TRIAD_EINVAL);  /* numeric only */
    CHECK_EQ_INT(peer_net_set_member(a.pn, 2, "127.0.0.1", 0), TRIAD_EINVAL);
    node_free(&a);
    node_free(&b);
    loop_end();
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN); /* as triad server: see peer.h */
    g_verbose = getenv("PEER_TEST_LOG") != NULL;
    RUN(peer_three_nodes_connect_once_per_pair_and_deliver_everything_in_order);
    RUN(peer_wrong_cluster_id_is_refused_with_the_reason_in_both_logs);
    RUN(peer_same_secret_on_both_sides_connects_and_delivers);
    RUN(peer_different_secrets_are_refused_on_every_retry);
    RUN(peer_secret_on_one_side_only_is_refused_either_way);
    RUN(peer_connector_refuses_an_acceptor_that_echoes_its_mac);
    RUN(peer_raft_frame_not_from_the_authenticated_peer_is_dropped_and_logged_once);
    RUN(peer_hello_from_a_stranger_or_a_larger_id_is_refused);
    RUN(peer_handshake_frame_over_the_preauth_limit_is_refused_at_its_header);
    RUN(peer_silent_connections_time_out_in_the_handshake_and_when_up);
    RUN(peer_idle_connection_stays_up_on_pings);
    RUN(peer_restarted_node_on_the_same_port_is_redialed_and_messages_flow_again);
    RUN(peer_message_to_a_peer_not_connected_is_dropped_and_dials_back_off);
    RUN(peer_member_down_for_long_is_redialed_within_the_down_limit_once_back);
    RUN(peer_send_queue_takes_frames_up_to_its_limit_and_drops_one_more);
    RUN(peer_message_bigger_than_the_queue_limit_still_goes_alone);
    RUN(peer_proxy_request_and_reply_round_trip);
    RUN(peer_newer_connection_from_the_same_peer_replaces_the_older);
    RUN(peer_member_moved_to_a_new_address_is_redialed_there);
    RUN(peer_removed_member_is_disconnected_and_refused_afterwards);
    RUN(peer_net_closed_from_inside_its_own_callback_releases_everything);
    RUN(peer_start_on_a_port_in_use_fails_and_leaves_nothing_open);
    return test_summary("peer");
}
