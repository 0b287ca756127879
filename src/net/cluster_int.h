/* cluster_int.h - what cluster.c (the node on libuv: its I/O, peers and
 * forwarding) and cluster_cmd.c (the client commands of leader mode) share.
 * Nothing outside those two files includes it.
 */
#ifndef TRIAD_CLUSTER_INT_H
#define TRIAD_CLUSTER_INT_H

#include <sys/types.h>
#include <uv.h>

#include "../core/raft.h"
#include "../node/node.h"
#include "cluster.h"
#include "peer.h"

#define CLUSTER_PROXY_MAX 100000        /* forwarded requests waiting, per node */
#define CLUSTER_PROXY_TIMEOUT_MS 10000  /* a forwarded request's answer must come by then */
#define CLUSTER_PROXY_SCAN_MS 200
/* The leader's own request ids for requests it runs for a follower: the high
 * bit keeps them apart from the server's (which stay below it). */
#define CLUSTER_REMOTE_BIT (1ull << 63)

/* A client request this follower forwarded to the leader. */
struct cluster__proxy {
    uint64_t req_id;
    uint64_t deadline_ms; /* UINT64_MAX: none (WAIT 0) */
    raft_id leader;       /* where it went */
    bool wait;            /* a WAIT: it ends if that leader goes */
};

/* A request the leader runs for a follower: whom to answer, under which id. */
struct cluster__remote {
    uint64_t local_id; /* ours (with CLUSTER_REMOTE_BIT) */
    raft_id from;
    uint64_t their_id;
};

/* Where a member's clients connect, as it announced (or, for this node,
 * as configured). port 0: not known yet. */
struct cluster__addr {
    raft_id id;
    int port;
    char host[PEER_ANNOUNCE_HOST_MAX + 1];
};

/* length u64, term u64, crc u32, flags u32 (CLUSTER_SNAP_FILE) */
#define CLUSTER_SNAP_HEADER_BYTES 24
#define CLUSTER_SNAP_FILE 1u /* the child wrote the file (raftlog_snap_prepare) */

struct cluster {
    const struct config *cfg;
    struct cluster_hooks hooks;
    uv_loop_t *loop;
    uv_timer_t timer;
    uv_idle_t idle;      /* runs node_flush before the loop next waits (node_io.wake) */
    struct raftlog *rl;
    struct peer_net *pn;
    struct node *node;
    bool persisting;     /* a ready is in the WAL, not yet durable */
    uint64_t persist_lsn;
    uint64_t durable_lsn;
    bool stopped;
    uint32_t blocked[RAFT_NODES_MAX]; /* TRIAD.FAULT: peers cut off */
    size_t n_blocked;
    uv_timer_t proxy_timer;
    struct cluster__proxy *proxies; /* in req_id order */
    size_t n_proxies, cap_proxies;
    struct cluster__remote *remotes;
    size_t n_remotes, cap_remotes;
    uint64_t next_remote;
    struct cluster__addr addrs[PEER_MEMBERS_MAX + 1];
    size_t n_addrs;
    /* peer addresses: --peers, then what the log records (fsm.h) */
    struct config_peer peers[CONFIG_PEERS_MAX];
    int n_peers;
    struct cluster__addr dialed[PEER_MEMBERS_MAX]; /* what peer_net was last given */
    size_t n_dialed;
    struct raft_conf synced_conf;   /* the configuration peer_net was synced to */
    uint64_t synced_members;        /* ... and the member table's version */
    uint64_t last_snapshots_taken, last_snapshots_installed;
    uint8_t last_progress[RAFT_NODES_MAX]; /* per member of synced_conf, to log snapshots sent */
    /* The log compaction's snapshot, serialized by a forked child
     * (cluster__snapshot) and read back through a pipe: a header (the
     * length, the term at the index, the bytes' checksum, whether the
     * child wrote the snapshot's file too), then that many bytes. */
    pid_t snap_pid;       /* 0: none at work */
    uv_pipe_t *snap_pipe; /* its own allocation: freed once closed */
    uint64_t snap_index;
    uint8_t snap_hdr[CLUSTER_SNAP_HEADER_BYTES];
    size_t snap_hdr_got;
    uint8_t *snap_data; /* malloc'd once the length is known */
    uint64_t snap_len, snap_got;
    uint8_t snap_spill[64]; /* bytes past the announced length land here */
    uint64_t snap_start_ms;
    /* A child whose work is over but that has not been reaped yet: one
     * killed may take its time to die (its memory torn down, or an I/O
     * that cannot be interrupted), and the loop must not wait for it. The
     * proxy timer reaps it; no new child starts until then. */
    pid_t snap_dying; /* 0: none */
    /* what was last logged, to log each change once */
    enum raft_role last_role;
    raft_term last_term;
    raft_id last_leader;
};

void cluster__log(struct cluster *cl, int level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void cluster__note_role(struct cluster *cl);
uint64_t cluster__now_ms(void *arg);

/* Run rq here if this node leads, else forward it to the leader (or, with
 * --redirect and `redirect`, answer where the leader is). What rests on the
 * connection's state on this node (EXEC of its queue, WATCH's read, WAIT)
 * passes redirect false: the client could not repeat it elsewhere. */
void cluster__submit(struct cluster *cl, const struct node_req *rq, bool redirect);
/* A read from this node's own state (READONLY), else as cluster__submit. */
void cluster__read_local(struct cluster *cl, const struct node_req *rq);
/* WAIT on the leader, wherever the client is. */
void cluster__wait(struct cluster *cl, uint64_t req_id, uint64_t index, uint32_t replicas,
                   uint64_t timeout_ms);
/* Where member id's peer port is (the log's record, else --peers); NULL
 * if nowhere. */
bool cluster__peer_addr(const struct cluster *cl, raft_id id, const char **host, int *port);
/* A member's client address; NULL if not known. */
const struct cluster__addr *cluster__addr_of(const struct cluster *cl, raft_id id);

#endif
