/* peer.h - the peer transport: one node's TCP endpoint to the other members
 * of a cluster (leader mode's RAFT and PROXY frames, or leaderless mode's
 * DYN frames with open membership), on libuv.
 *
 * One TCP connection per pair of nodes, so that one ordered byte stream
 * carries everything between two nodes: the node with the smaller id dials
 * the larger, the larger accepts, and an acceptor refuses a HELLO from a
 * larger id, so a pair never holds two connections. The frames, the
 * handshake (HELLO / HELLO_ACK, and AUTH / AUTH_OK with a cluster secret)
 * and every message are peer_proto.h's; docs/wire-formats.md ("Peer
 * protocol") has the bytes. This file owns the sockets and the state
 * machine around them:
 *
 *   - Until a connection has passed its handshake its decoder refuses any
 *     payload over PEER_HANDSHAKE_PAYLOAD_BYTES_MAX, at most
 *     PEER_HANDSHAKES_MAX such connections are held, and each has
 *     handshake_timeout_ms to finish: a stranger cannot make a node buffer
 *     much. A refused handshake is answered with an ERROR frame saying why,
 *     then closed; both sides log the reason.
 *   - A RAFT frame is delivered only if its `from` is the peer the
 *     connection authenticated and its `to` is this node; any other is
 *     dropped, counted, and logged once per connection.
 *   - Each connection's send queue holds at most send_queue_bytes_max bytes
 *     (frames not yet written plus the write in flight). A RAFT message that
 *     does not fit, or is meant for a peer with no connection up, is dropped
 *     and counted: Raft recovers from lost messages by retrying. One frame
 *     is always accepted into an empty queue, whatever its size.
 *   - An idle connection sends a PING every ping_interval_ms; a connection
 *     that receives nothing for dead_timeout_ms is closed, and the dialer
 *     dials again after a jittered exponential backoff (backoff_ms_min
 *     doubling to backoff_ms_max; at most redial_down_ms_max after a dial
 *     nobody answered).
 *
 * Everything runs on the caller's loop thread; no function here may be
 * called from another thread. The process must ignore SIGPIPE (as `triad
 * server` does): libuv writes with write(2), and a peer that resets its
 * connection would otherwise kill the node. Callbacks may call any peer_net function,
 * peer_net_close included, except on_log, which must not call back into
 * peer_net. No callback runs after peer_net_close() has returned, except
 * the close callback.
 */
#ifndef TRIAD_PEER_H
#define TRIAD_PEER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "../core/raft.h"
#include "peer_proto.h"

/* Defaults, used where a peer_net_config field is 0. */
#define PEER_SEND_QUEUE_BYTES_MAX (64u << 20) /* per connection */
#define PEER_PING_INTERVAL_MS 1000
#define PEER_DEAD_TIMEOUT_MS 10000
#define PEER_HANDSHAKE_TIMEOUT_MS 5000 /* TCP connect + handshake */
#define PEER_BACKOFF_MS_MIN 50
#define PEER_BACKOFF_MS_MAX 2000

/* Fixed limits. */
#define PEER_MEMBERS_MAX (2 * RAFT_NODES_MAX) /* old and new configuration */
#define PEER_HANDSHAKES_MAX 64   /* accepted connections not yet through the handshake */
#define PEER_LINGER_MS 1000      /* how long an ERROR may take to leave before the close */
#define PEER_TICK_MS 100         /* pings, timeouts: checked this often */
#define PEER_HOST_BYTES_MAX 64   /* a numeric IPv4 or IPv6 address */

struct peer_net;

/* All optional (NULL: the event is ignored). Decoded pointers are borrowed
 * for the call only. */
struct peer_net_callbacks {
    void *arg;
    /* m->from is the connection's authenticated peer, m->to this node. */
    void (*on_raft)(void *arg, const struct raft_msg *m);
    void (*on_proxy_req)(void *arg, raft_id from, const struct peer_proxy_req *r);
    void (*on_proxy_reply)(void *arg, raft_id from, const struct peer_proxy_reply *r);
    /* level: LOG_DEBUG .. LOG_WARNING (enum config_loglevel, 0 .. 3); line
     * has no newline. Must not call any peer_net function. */
    void (*on_log)(void *arg, int level, const char *line);
    /* A connection to peer came up (handshake passed) or went down. Every
     * up is followed by exactly one down, unless peer_net_close() comes
     * first. Messages sent on a connection that went down may be lost. */
    void (*on_connected)(void *arg, raft_id peer, bool up);
    /* The peer told where its clients reach it (once per connection). */
    void (*on_announce)(void *arg, raft_id peer, const struct peer_announce *a);
    /* Leaderless mode: a message from peer (m->from is peer, m->to this
     * node; the transport drops any other). */
    void (*on_dyn)(void *arg, raft_id peer, const struct dyn_msg *m);
};

struct peer_net_config {
    uv_loop_t *loop;
    raft_id self;         /* not 0 */
    uint64_t cluster_id;
    const char *secret;   /* NULL or "" = none; else 1 .. PEER_SECRET_BYTES_MAX bytes (copied) */
    const char *listen_host; /* numeric IPv4 or IPv6 address (copied) */
    int listen_port;      /* 0 = an ephemeral port: see peer_net_port() */
    struct peer_net_callbacks cb;
    /* Where clients reach this node, sent to each peer as its connection
     * comes up (client_port 0: nothing is announced). */
    struct peer_announce announce;
    /* Leaderless mode, where membership is gossiped rather than configured:
     * a HELLO from a node not yet known is accepted (the node becomes a
     * member with no address, dialed once peer_net_set_member gives it
     * one), and either side of a pair dials once it knows the other's
     * address, so a new node can reach a seed that has never heard of it.
     * If both dials succeed, both sides keep the connection the smaller id
     * dialed and close the other with an ERROR saying so. */
    bool open_membership;

    /* 0 = the default above. Tests shorten them. */
    uint64_t send_queue_bytes_max;
    uint64_t ping_interval_ms;
    uint64_t dead_timeout_ms;
    uint64_t handshake_timeout_ms;
    uint64_t backoff_ms_min;
    uint64_t backoff_ms_max;
    /* After a dial that nobody answered (refused, unreachable, timed out:
     * the peer is down or restarting) the next waits at most this, however
     * far the backoff has grown: such a dial costs the peer nothing, and a
     * peer that comes back is reached soon. The backoff still spaces out
     * peers that answer and then refuse or drop us. 0 = backoff_ms_max
     * (leader mode sets it: cluster.c). */
    uint64_t redial_down_ms_max;
};

/* Bind, listen, and start the timers. 0 with *out set, or TRIAD_EINVAL (a
 * bad setting) / TRIAD_EIO (bind or listen failed, e.g. the port is in use)
 * with errmsg set and *out NULL; then no callback is ever called, but
 * handles may already be closing: the loop must run (as it will anyway)
 * before uv_loop_close() can succeed. */
int peer_net_start(struct peer_net **out, const struct peer_net_config *cfg, char *errmsg,
                   size_t errlen);

/* The port the listener is bound to. */
int peer_net_port(const struct peer_net *pn);

/* Add a member or change its address (host: a numeric address, copied).
 * If self < id this node dials it now (and again, at the new address, if
 * the address changed); if self > id it waits to be dialed. Returns 0, or
 * TRIAD_EINVAL (id 0 or self, a bad address or port), or TRIAD_ELIMIT (more
 * than PEER_MEMBERS_MAX members). */
int peer_net_set_member(struct peer_net *pn, raft_id id, const char *host, int port);
/* Forget a member: its connection is closed (on_connected(id, false) if it
 * was up) and no HELLO from it is accepted any more. Unknown ids: no-op. */
void peer_net_remove_member(struct peer_net *pn, raft_id id);

/* Queue m for m->to (m borrowed for the call: it is encoded at once).
 * m->from must be this node. Dropped, and counted, if no connection to
 * m->to is up, if the send queue is full, or if the codec refuses m (an
 * entry over the limit: logged at warning). */
void peer_net_send_raft(struct peer_net *pn, const struct raft_msg *m);

/* Queue a proxied request or its reply (r borrowed for the call). 0, or
 * TRIAD_EAGAIN (no connection to `to` is up), TRIAD_ELIMIT (the send queue
 * is full, or the message is over the frame limit), TRIAD_EINVAL (the
 * codec refuses it); nothing is sent then. */
int peer_net_send_proxy_req(struct peer_net *pn, raft_id to, const struct peer_proxy_req *r);
int peer_net_send_proxy_reply(struct peer_net *pn, raft_id to, const struct peer_proxy_reply *r);
/* A leaderless-mode message for m->to (m borrowed for the call; m->from
 * must be this node). 0, TRIAD_EAGAIN, TRIAD_ELIMIT as above. */
int peer_net_send_dyn(struct peer_net *pn, const struct dyn_msg *m);

/* A connection to id is up (its handshake passed). */
bool peer_net_connected(const struct peer_net *pn, raft_id id);

struct peer_net_stats {
    uint64_t frames_sent;           /* frames queued to go out, every type */
    uint64_t frames_received;       /* whole frames read, every type */
    uint64_t bytes_sent;            /* bytes the sockets took */
    uint64_t bytes_received;
    uint64_t dropped_not_connected; /* RAFT, PROXY or DYN for a peer with no connection up */
    uint64_t dropped_queue_full;    /* RAFT, PROXY or DYN over the send queue's limit */
    uint64_t dropped_encode_errors; /* messages the codec refused to encode */
    uint64_t dropped_bad_frames;    /* bad bytes, or a RAFT or DYN frame not from/to this pair */
    uint64_t dials;                 /* TCP connects started */
    uint64_t dial_failures;         /* ... that failed before the TCP connection was made */
    uint64_t accepts;               /* TCP connections accepted */
    uint64_t connects;              /* handshakes passed, either side */
    uint64_t handshake_failures;    /* refused either way, timed out, or cut short */
    uint64_t conns_open;            /* now: TCP connections held, in any state */
    uint64_t conns_up;              /* now: connections through the handshake */
};
void peer_net_stats(const struct peer_net *pn, struct peer_net_stats *out);

/* Close everything: connections (each up one is sent a best-effort ERROR
 * "shutdown"), the listener, the timers. pn must not be used after this
 * call. Memory is released once libuv has run the handles' close
 * callbacks, after which closed_cb(arg) is called (closed_cb may be NULL);
 * the caller keeps running the loop until then (uv_run returns once the
 * loop has nothing else to do). May be called from inside a callback. */
typedef void (*peer_net_close_cb)(void *arg);
void peer_net_close(struct peer_net *pn, peer_net_close_cb closed_cb, void *arg);

#endif
