/* cluster.c - leader mode in the server (see cluster.h). */
#include "cluster.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <xxhash.h>

#include "../common/defs.h"
#include "../common/num.h"
#include "../common/proc.h"
#include "../core/raft.h"
#include "../node/fsm.h"
#include "../node/node.h"
#include "../store/fs.h"
#include "../store/kv.h"
#include "../store/raftlog.h"
#include "../store/wal.h"
#include "cluster_int.h"
#include "peer.h"

void cluster__log(struct cluster *cl, int level, const char *fmt, ...)
{
    char line[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    cl->hooks.log(cl->hooks.arg, level, line);
}

/* One line per role change, with term and leader. */
bool cluster__peer_addr(const struct cluster *cl, raft_id id, const char **host, int *port)
{
    const struct fsm_member *m = fsm_member(node_fsm(cl->node), id);
    if (m != NULL) {
        *host = m->host;
        *port = m->port;
        return true;
    }
    for (int i = 0; i < cl->n_peers; i++)
        if ((raft_id)cl->peers[i].id == id) {
            *host = cl->peers[i].host;
            *port = cl->peers[i].port;
            return true;
        }
    return false;
}

/* Tell the transport where each member of the configuration is, and forget
 * the members that left it, whenever the configuration or the member
 * table changed; one log line per configuration. */
static void cluster__sync_members(struct cluster *cl)
{
    struct raft *r = node_raft(cl->node);
    const struct raft_conf *c = raft_conf(r);
    const struct fsm *f = node_fsm(cl->node);
    bool same_conf = raft_conf_equal(c, &cl->synced_conf);
    if (same_conf && f->members_version == cl->synced_members)
        return;
    if (!same_conf && c->n > 0) {
        char line[400];
        int len = 0;
        for (uint32_t i = 0; i < c->n && len < (int)sizeof(line) - 32; i++)
            len += snprintf(line + len, sizeof(line) - (size_t)len, "%s%u %s", i ? ", " : "",
                            (unsigned)c->members[i].id,
                            c->members[i].role == RAFT_VOTER ? "voter" : "learner");
        cluster__log(cl, LOG_NOTICE, "raft: configuration at term %llu, index %llu: %s",
                     (unsigned long long)raft_current_term(r),
                     (unsigned long long)raft_last_index(r), line);
    }
    for (uint32_t i = 0; i < c->n; i++) {
        raft_id id = c->members[i].id;
        const char *host;
        int port;
        if (id == raft_id_of(r) || !cluster__peer_addr(cl, id, &host, &port))
            continue;
        size_t k = 0;
        while (k < cl->n_dialed && cl->dialed[k].id != id)
            k++;
        if (k < cl->n_dialed && cl->dialed[k].port == port && strcmp(cl->dialed[k].host, host) == 0)
            continue;
        if (peer_net_set_member(cl->pn, id, host, port) != 0) {
            cluster__log(cl, LOG_WARNING, "bad peer address %s:%d for node %u", host, port,
                         (unsigned)id);
            continue;
        }
        if (k == cl->n_dialed) {
            if (k == sizeof(cl->dialed) / sizeof(cl->dialed[0]))
                continue;
            cl->n_dialed++;
        }
        cl->dialed[k].id = id;
        cl->dialed[k].port = port;
        snprintf(cl->dialed[k].host, sizeof(cl->dialed[k].host), "%s", host);
    }
    /* a member that left the configuration (not merely one we have not
     * heard of yet: an empty log knows no configuration) */
    for (uint32_t i = 0; c->n > 0 && i < cl->synced_conf.n; i++) {
        raft_id id = cl->synced_conf.members[i].id;
        if (id == raft_id_of(r) || raft_conf_find(c, id) != NULL)
            continue;
        peer_net_remove_member(cl->pn, id);
        for (size_t k = 0; k < cl->n_dialed; k++)
            if (cl->dialed[k].id == id)
                cl->dialed[k] = cl->dialed[--cl->n_dialed];
        cluster__log(cl, LOG_NOTICE, "raft: node %u left the configuration", (unsigned)id);
    }
    cl->synced_conf = *c;
    cl->synced_members = f->members_version;
    memset(cl->last_progress, 0, sizeof(cl->last_progress));
}

/* One line per snapshot taken, installed, or started to a follower. */
static void cluster__note_snapshots(struct cluster *cl)
{
    struct raft *r = node_raft(cl->node);
    const struct node_stats *st = node_stats(cl->node);
    if (st->snapshots_taken != cl->last_snapshots_taken) {
        cl->last_snapshots_taken = st->snapshots_taken;
        cluster__log(cl, LOG_VERBOSE, "raft: took a snapshot at index %llu (term %llu)",
                     (unsigned long long)raft_snapshot_index(r),
                     (unsigned long long)raft_current_term(r));
    }
    if (st->snapshots_installed != cl->last_snapshots_installed) {
        cl->last_snapshots_installed = st->snapshots_installed;
        cluster__log(cl, LOG_NOTICE,
                     "raft: installed the leader's snapshot at index %llu (term %llu)",
                     (unsigned long long)raft_snapshot_index(r),
                     (unsigned long long)raft_current_term(r));
    }
    if (raft_role(r) != RAFT_LEADER)
        return;
    const struct raft_conf *c = &cl->synced_conf;
    for (uint32_t i = 0; i < c->n; i++) {
        struct raft_progress p;
        if (raft_progress_get(r, c->members[i].id, &p) != 0)
            continue;
        if (p.state == RAFT_SNAPSHOTTING && cl->last_progress[i] != RAFT_SNAPSHOTTING)
            cluster__log(cl, LOG_NOTICE,
                         "raft: sending node %u the snapshot at index %llu (term %llu)",
                         (unsigned)p.id, (unsigned long long)raft_snapshot_index(r),
                         (unsigned long long)raft_current_term(r));
        cl->last_progress[i] = p.state;
    }
}

void cluster__note_role(struct cluster *cl)
{
    struct raft *r = node_raft(cl->node);
    enum raft_role role = raft_role(r);
    raft_term term = raft_current_term(r);
    raft_id leader = raft_leader(r);
    cluster__sync_members(cl);
    cluster__note_snapshots(cl);
    if (role == cl->last_role && term == cl->last_term && leader == cl->last_leader)
        return;
    if (role == RAFT_LEADER && cl->last_role != RAFT_LEADER)
        cluster__log(cl, LOG_NOTICE, "raft: elected leader in term %llu (last index %llu)",
                     (unsigned long long)term, (unsigned long long)raft_last_index(r));
    else if (role != cl->last_role || leader != cl->last_leader)
        cluster__log(cl, LOG_NOTICE, "raft: %s in term %llu, leader %u", raft_role_name(role),
                     (unsigned long long)term, (unsigned)leader);
    cl->last_role = role;
    cl->last_term = term;
    cl->last_leader = leader;
}

/* ---- node_io ---- */

uint64_t cluster__now_ms(void *arg)
{
    (void)arg;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static uint64_t cluster__random(void *arg)
{
    (void)arg;
    uint64_t v = 0;
    if (getrandom(&v, sizeof(v), 0) != (ssize_t)sizeof(v))
        v = cluster__now_ms(NULL) * 0x9e3779b97f4a7c15ull;
    return v;
}

static bool cluster__blocked(const struct cluster *cl, raft_id id)
{
    for (size_t i = 0; i < cl->n_blocked; i++)
        if (cl->blocked[i] == id)
            return true;
    return false;
}

void cluster_fault_block(struct cluster *cl, const uint32_t *ids, size_t n)
{
    cl->n_blocked = 0;
    for (size_t i = 0; i < n && i < RAFT_NODES_MAX; i++)
        cl->blocked[cl->n_blocked++] = ids[i];
    cluster__log(cl, LOG_WARNING, "fault: %zu peer(s) cut off", cl->n_blocked);
}

static void cluster__send(void *arg, const struct raft_msg *m)
{
    struct cluster *cl = arg;
    if (!cl->stopped && !cluster__blocked(cl, m->to))
        peer_net_send_raft(cl->pn, m);
}

static void cluster__persist(void *arg, const struct raft_ready *rd)
{
    struct cluster *cl = arg;
    char err[256];
    uint64_t lsn = 0;
    if (raftlog_persist(cl->rl, rd, &lsn, err, sizeof(err)) != 0) {
        /* What was acknowledged is on disk; what is not cannot be made so.
         * Stopping is the one safe move. */
        cluster__log(cl, LOG_WARNING, "raft log write failed: %s; stopping", err);
        exit(1);
    }
    cl->persisting = true;
    cl->persist_lsn = lsn;
    cl->hooks.kick_syncer(cl->hooks.arg);
    if (cl->node != NULL && (lsn <= cl->durable_lsn || cl->cfg->fsync == CONFIG_FSYNC_NO)) {
        cl->persisting = false;
        node_persisted(cl->node); /* node.c accepts this from inside persist */
    }
}

/* ---- the log compaction's snapshot, serialized in a forked child ----
 *
 * Serializing the state machine takes time in proportion to its size
 * (about a second per million keys: every key visited, sorted, copied),
 * and on the loop that second stalls every client and every heartbeat:
 * a leader compacting its log lost its leadership. So the node asks for
 * the snapshot (node_io.snapshot) and the server forks: the child's memory
 * is the state machine as of the index asked for, which it serializes,
 * writes to the snapshot's file (raftlog_snap_prepare: durable, under a
 * name of its own) and into a pipe, and exits; the loop reads the pipe as
 * it fills and hands the bytes to node_compact(), and the persist of the
 * compaction only renames the file into place. The child keeps none of
 * the parent's descriptors but the pipe, nor its signal handlers, and dies
 * with it (proc_fork). */

/* The pipe is read in pieces of at most this much. */
#define CLUSTER_SNAP_READ_MAX (4u << 20)

/* The loop's monotonic milliseconds: a child's age must not jump with the
 * wall clock (an NTP step would kill a healthy one, or spare a stuck one). */
static uint64_t cluster__mono_ms(struct cluster *cl)
{
    uv_update_time(cl->loop);
    return uv_now(cl->loop);
}

static void cluster__snap_closed(uv_handle_t *h)
{
    free(h);
}

/* While the child shares the state machine's memory, the tables put off
 * resizing: a resize rewrites every entry, and every page written is a
 * page copied (kv.h). */
static void cluster__snap_resize_avoid(struct node *n, bool avoid)
{
    const struct fsm *f = node_fsm(n);
    for (int db = 0; db < f->srv.databases; db++)
        kv_set_resize_avoid(f->srv.db[db], avoid);
}

/* End the child's work: its pipe closed, the child killed if kill_first,
 * and reaped if it has exited; if not, the proxy timer reaps it
 * (snap_dying). The tables are free to resize. Returns what it sent (the
 * caller's now). */
static uint8_t *cluster__snap_end(struct cluster *cl, bool kill_first)
{
    uv_read_stop((uv_stream_t *)cl->snap_pipe);
    uv_close((uv_handle_t *)cl->snap_pipe, cluster__snap_closed);
    cl->snap_pipe = NULL;
    if (kill_first)
        kill(cl->snap_pid, SIGKILL);
    TRIAD_ASSERT(cl->snap_dying == 0);
    if (!proc_reap_try(cl->snap_pid))
        cl->snap_dying = cl->snap_pid;
    cl->snap_pid = 0;
    cluster__snap_resize_avoid(cl->node, false);
    uint8_t *data = cl->snap_data;
    cl->snap_data = NULL;
    return data;
}

/* Whether no child of an earlier compaction is still to be reaped (and
 * reap it if it has exited). */
static bool cluster__snap_reaped(struct cluster *cl)
{
    if (cl->snap_dying > 0 && proc_reap_try(cl->snap_dying)) {
        cluster__log(cl, LOG_VERBOSE, "raft: snapshot child pid %d reaped", (int)cl->snap_dying);
        cl->snap_dying = 0;
    }
    return cl->snap_dying == 0;
}

/* The child's work is over (eof: the pipe reached its end): kill it
 * unless it delivered everything, then hand the node the snapshot or tell
 * it that none came. Its exit status adds nothing: a child that sent every
 * byte exits 0 (cluster__snap_child), so it is not waited for. */
static void cluster__snap_finish(struct cluster *cl, bool eof, const char *why)
{
    bool whole = eof && cl->snap_hdr_got == sizeof(cl->snap_hdr) && cl->snap_data != NULL &&
                 cl->snap_got == cl->snap_len;
    if (!whole && why == NULL)
        why = "the child stopped before the end";
    pid_t pid = cl->snap_pid;
    uint8_t *data = cluster__snap_end(cl, !whole);
    if (!whole) {
        free(data);
        raftlog_snap_discard(cl->rl, cl->snap_index); /* a file it may have written */
        cluster__log(cl, LOG_WARNING,
                     "raft: the snapshot at index %llu failed (pid %d: %s); compaction waits",
                     (unsigned long long)cl->snap_index, (int)pid, why);
        node_compact_failed(cl->node);
        return;
    }
    uint32_t flags = tbuf_read_u32le(cl->snap_hdr + 20);
    cluster__log(cl, LOG_VERBOSE,
                 "raft: the snapshot at index %llu serialized by pid %d (%llu bytes%s, %llu ms)",
                 (unsigned long long)cl->snap_index, (int)pid, (unsigned long long)cl->snap_len,
                 flags & CLUSTER_SNAP_FILE ? ", file written" : "",
                 (unsigned long long)(cluster__mono_ms(cl) - cl->snap_start_ms));
    if (flags & CLUSTER_SNAP_FILE) {
        struct raft_snapshot s = {.index = cl->snap_index,
                                  .term = tbuf_read_u64le(cl->snap_hdr + 8),
                                  .len = cl->snap_len};
        raftlog_snap_prepared(cl->rl, &s, tbuf_read_u32le(cl->snap_hdr + 16));
    }
    node_compact(cl->node, cl->snap_index, data, cl->snap_len);
}

/* From a periodic timer (every CLUSTER_PROXY_SCAN_MS): a child past its
 * deadline (raft-snapshot-timeout-ms) fails. Serializing takes about a
 * second per million keys at full speed, so the default, 15 minutes,
 * allows for a big state machine on a busy machine (the child runs at
 * nice 19) and still ends a child stuck for good. */
static void cluster__snap_check_deadline(struct cluster *cl)
{
    (void)cluster__snap_reaped(cl);
    if (cl->snap_pid > 0 &&
        cluster__mono_ms(cl) - cl->snap_start_ms > (uint64_t)cl->cfg->raft_snapshot_timeout_ms)
        cluster__snap_finish(cl, false, "timed out");
}

static void cluster__snap_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    struct cluster *cl = h->data;
    (void)suggested;
    if (cl->snap_hdr_got < sizeof(cl->snap_hdr)) {
        *buf = uv_buf_init((char *)cl->snap_hdr + cl->snap_hdr_got,
                           (unsigned)(sizeof(cl->snap_hdr) - cl->snap_hdr_got));
    } else if (cl->snap_got < cl->snap_len) {
        uint64_t room = TRIAD_MIN(cl->snap_len - cl->snap_got, CLUSTER_SNAP_READ_MAX);
        *buf = uv_buf_init((char *)cl->snap_data + cl->snap_got, (unsigned)room);
    } else {
        /* anything now is more than the child announced */
        *buf = uv_buf_init((char *)cl->snap_spill, sizeof(cl->snap_spill));
    }
}

static void cluster__snap_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    struct cluster *cl = s->data;
    (void)buf;
    if (nread == 0)
        return;
    if (nread < 0) {
        cluster__snap_finish(cl, nread == UV_EOF, nread == UV_EOF ? NULL : uv_strerror((int)nread));
        return;
    }
    if (cl->snap_hdr_got < sizeof(cl->snap_hdr)) {
        cl->snap_hdr_got += (size_t)nread;
        if (cl->snap_hdr_got < sizeof(cl->snap_hdr))
            return;
        cl->snap_len = tbuf_read_u64le(cl->snap_hdr);
        if (cl->snap_len > RAFT_SNAPSHOT_BYTES_MAX) {
            cluster__snap_finish(cl, false, "length out of range");
            return;
        }
        cl->snap_data = malloc(cl->snap_len ? cl->snap_len : 1);
        if (cl->snap_data == NULL)
            cluster__snap_finish(cl, false, "out of memory");
    } else if (cl->snap_got < cl->snap_len) {
        cl->snap_got += (uint64_t)nread;
    } else {
        cluster__snap_finish(cl, false, "more bytes than announced");
    }
}

/* The child: serialize the state machine as of index, write the
 * snapshot's file, send the bytes into fd, and leave without running any
 * of the parent's exit code. A file it could not write the parent writes
 * at the persist, as it would have. */
static void cluster__snap_child(const char *dir, struct node *n, uint64_t index, int fd)
{
    struct tbuf b = {0};
    tbuf_append(&b, (const char[CLUSTER_SNAP_HEADER_BYTES]){0}, CLUSTER_SNAP_HEADER_BYTES);
    node_snapshot_fsm(n, &b);
    unsigned char *h = (unsigned char *)b.data;
    struct raft_snapshot s = {.index = index,
                              .term = raft_term_at(node_raft(n), index),
                              .data = h + CLUSTER_SNAP_HEADER_BYTES,
                              .len = (uint64_t)b.len - CLUSTER_SNAP_HEADER_BYTES};
    uint32_t crc = 0, flags = 0;
    char err[256];
    if (raftlog_snap_prepare(dir, &s, &crc, err, sizeof(err)) == 0)
        flags |= CLUSTER_SNAP_FILE;
    else
        fprintf(stderr, "triad: snapshot child: %s (the server writes the file)\n", err);
    tbuf_write_u64le(h, s.len);
    tbuf_write_u64le(h + 8, s.term);
    tbuf_write_u32le(h + 16, crc);
    tbuf_write_u32le(h + 20, flags);
    _exit(fs_write_all(fd, b.data, b.len) == 0 ? 0 : 1);
}

static void cluster__snapshot(void *arg, struct node *n, uint64_t index)
{
    struct cluster *cl = arg;
    TRIAD_ASSERT(cl->snap_pid == 0);
    int fds[2] = {-1, -1};
    const char *what = "pipe";
    if (cl->stopped) {
        node_compact_failed(n); /* and none will be taken: the node is going */
        return;
    }
    if (!cluster__snap_reaped(cl)) {
        /* Two children alive at once would each hold a copy of the pages
         * written since its fork. Put off, not failed: three failures
         * would make the node serialize on the loop, the stall the child
         * is there to avoid. */
        cluster__log(cl, LOG_WARNING,
                     "raft: the last snapshot child (pid %d) has not exited yet; compaction waits",
                     (int)cl->snap_dying);
        node_compact_later(n);
        return;
    }
    if (pipe2(fds, O_CLOEXEC) != 0)
        goto err;
    /* fewer, bigger reads (best effort: the default is 64 KiB) */
    (void)fcntl(fds[1], F_SETPIPE_SZ, 1 << 20);
    what = "fork";
    pid_t pid = proc_fork(fds[1]);
    if (pid < 0)
        goto err;
    if (pid == 0)
        cluster__snap_child(cl->cfg->dir, n, index, fds[1]);
    close(fds[1]);
    fds[1] = -1;
    uv_pipe_t *p = malloc(sizeof(*p));
    int uerr = UV_ENOMEM;
    what = "pipe handle";
    if (p == NULL || (uerr = uv_pipe_init(cl->loop, p, 0)) != 0) {
        free(p);
        goto err_child;
    }
    p->data = cl;
    if ((uerr = uv_pipe_open(p, fds[0])) != 0) {
        uv_close((uv_handle_t *)p, cluster__snap_closed);
        goto err_child;
    }
    fds[0] = -1; /* the handle's now: closed with it */
    if ((uerr = uv_read_start((uv_stream_t *)p, cluster__snap_alloc, cluster__snap_read)) != 0) {
        uv_close((uv_handle_t *)p, cluster__snap_closed);
        goto err_child;
    }
    cl->snap_pipe = p;
    cl->snap_pid = pid;
    cl->snap_index = index;
    cl->snap_hdr_got = 0;
    cl->snap_len = cl->snap_got = 0;
    cl->snap_data = NULL;
    cl->snap_start_ms = cluster__mono_ms(cl);
    cluster__snap_resize_avoid(n, true);
    cluster__log(cl, LOG_VERBOSE, "raft: snapshot at index %llu started by pid %d",
                 (unsigned long long)index, (int)pid);
    return;

err_child:
    kill(pid, SIGKILL);
    if (!proc_reap_try(pid))
        cl->snap_dying = pid;
    errno = -uerr;
err:
    cluster__log(cl, LOG_WARNING, "raft: can't start a snapshot at index %llu: %s: %s",
                 (unsigned long long)index, what, strerror(errno));
    if (fds[0] >= 0)
        close(fds[0]);
    if (fds[1] >= 0)
        close(fds[1]);
    node_compact_failed(n);
}

/* Everything the loop's callbacks handed the node since it last waited,
 * in one round of readies: one WAL append and one message per peer for a
 * whole batch of clients. */
static void cluster__on_idle(uv_idle_t *h)
{
    struct cluster *cl = h->data;
    uv_idle_stop(h);
    if (cl->stopped)
        return;
    node_flush(cl->node);
    cluster__note_role(cl);
}

static void cluster__wake(void *arg)
{
    struct cluster *cl = arg;
    if (!cl->stopped)
        uv_idle_start(&cl->idle, cluster__on_idle);
}

static void cluster__on_timer(uv_timer_t *t)
{
    struct cluster *cl = t->data;
    if (cl->stopped)
        return;
    node_tick(cl->node);
    cluster__note_role(cl);
}

static void cluster__set_timer(void *arg, uint64_t at_ms)
{
    struct cluster *cl = arg;
    if (cl->stopped)
        return;
    uint64_t now = cluster__now_ms(NULL);
    uv_timer_start(&cl->timer, cluster__on_timer, at_ms > now ? at_ms - now : 0, 0);
}

static void cluster__reply(void *arg, uint64_t req_id, const char *resp, size_t len,
                           uint64_t index)
{
    struct cluster *cl = arg;
    if (!(req_id & CLUSTER_REMOTE_BIT)) {
        cl->hooks.reply(cl->hooks.arg, req_id, resp, len, index);
        return;
    }
    /* a follower's request: the answer goes back over the peer link */
    for (size_t i = 0; i < cl->n_remotes; i++) {
        struct cluster__remote *rm = &cl->remotes[i];
        if (rm->local_id != req_id)
            continue;
        struct peer_proxy_reply r = {.req_id = rm->their_id, .index = index,
                                     .len = (uint32_t)len, .data = (const uint8_t *)resp};
        if (peer_net_send_proxy_reply(cl->pn, rm->from, &r) != 0)
            cluster__log(cl, LOG_VERBOSE, "can't answer node %u's forwarded request",
                         (unsigned)rm->from);
        cl->remotes[i] = cl->remotes[--cl->n_remotes];
        return;
    }
}

/* ---- forwarding: a follower sends a client's command to the leader ---- */

static void cluster__proxy_done(struct cluster *cl, size_t i)
{
    memmove(cl->proxies + i, cl->proxies + i + 1, (cl->n_proxies - i - 1) * sizeof(*cl->proxies));
    cl->n_proxies--;
}

static void cluster__on_proxy_reply(void *arg, raft_id from, const struct peer_proxy_reply *r)
{
    struct cluster *cl = arg;
    for (size_t i = 0; i < cl->n_proxies; i++) {
        if (cl->proxies[i].req_id != r->req_id)
            continue;
        cluster__proxy_done(cl, i);
        cl->hooks.reply(cl->hooks.arg, r->req_id, (const char *)r->data, r->len, r->index);
        return;
    }
}

static void cluster__on_proxy_req(void *arg, raft_id from, const struct peer_proxy_req *r)
{
    struct cluster *cl = arg;
    if (cl->stopped)
        return;
    if (cl->n_remotes == CLUSTER_PROXY_MAX) {
        static const char busy[] = "-BUSY too many forwarded requests waiting; retry later\r\n";
        struct peer_proxy_reply rep = {.req_id = r->req_id, .len = sizeof(busy) - 1,
                                       .data = (const uint8_t *)busy};
        peer_net_send_proxy_reply(cl->pn, from, &rep);
        return;
    }
    if (cl->n_remotes == cl->cap_remotes) {
        cl->cap_remotes = cl->cap_remotes ? cl->cap_remotes * 2 : 64;
        cl->remotes = realloc(cl->remotes, cl->cap_remotes * sizeof(*cl->remotes));
        TRIAD_ASSERT(cl->remotes != NULL);
    }
    uint64_t local = CLUSTER_REMOTE_BIT | ++cl->next_remote;
    cl->remotes[cl->n_remotes++] = (struct cluster__remote){local, from, r->req_id};
    /* the answer may come at once (cluster__reply) */
    if (r->kind == PEER_PROXY_WAIT) {
        uint64_t replicas = 0, timeout = 0;
        if (r->argc != 3 || !triad_parse_u64(r->argv[1], r->argvlen[1], &replicas) ||
            !triad_parse_u64(r->argv[2], r->argvlen[2], &timeout) || replicas > UINT32_MAX) {
            static const char bad[] = "-ERR TRIAD malformed forwarded WAIT\r\n";
            cluster__reply(cl, local, bad, sizeof(bad) - 1, 0);
            return;
        }
        node_wait(cl->node, local, r->after, (uint32_t)replicas, timeout);
    } else {
        struct node_req rq = {.id = local, .client_id = r->client_id, .seq = r->seq,
                              .db = (int)r->db, .proto = r->proto, .ack = r->ack,
                              .after = r->after, .argc = (int)r->argc, .argv = r->argv,
                              .argvlen = r->argvlen};
        node_submit(cl->node, &rq);
    }
    cluster__note_role(cl);
}

/* Forwarded requests the leader never answered (it failed, or the link
 * did): their outcome is unknown to us. */
static void cluster__on_proxy_timer(uv_timer_t *t)
{
    struct cluster *cl = t->data;
    uint64_t now = cluster__now_ms(NULL);
    cluster__snap_check_deadline(cl);
    static const char lost[] =
        "-TRYAGAIN the leader did not answer; the command may or may not have been applied\r\n";
    static const char gone[] =
        "-TRYAGAIN the leader WAIT ran on is gone; the writes are where they were\r\n";
    raft_id leader = raft_leader(node_raft(cl->node));
    for (size_t i = 0; i < cl->n_proxies;) {
        const struct cluster__proxy *p = &cl->proxies[i];
        /* a WAIT with no timeout would outlive the leader it waits on */
        bool orphan = p->wait && (p->leader != leader || !peer_net_connected(cl->pn, p->leader));
        if (p->deadline_ms > now && !orphan) {
            i++;
            continue;
        }
        uint64_t id = p->req_id;
        cluster__proxy_done(cl, i);
        if (orphan)
            cl->hooks.reply(cl->hooks.arg, id, gone, sizeof(gone) - 1, 0);
        else
            cl->hooks.reply(cl->hooks.arg, id, lost, sizeof(lost) - 1, 0);
    }
}

static void cluster__answer(struct cluster *cl, uint64_t req_id, const char *msg)
{
    cl->hooks.reply(cl->hooks.arg, req_id, msg, strlen(msg), 0);
}

/* Redis Cluster's hash slot of a key (CRC16-CCITT of the key, or of the
 * part inside its first non-empty {...} hash tag, mod 16384), so that a
 * cluster-aware client (redis-cli -c) follows a -MOVED redirect. */
static unsigned cluster__slot(const char *key, size_t len)
{
    size_t open = 0;
    while (open < len && key[open] != '{')
        open++;
    if (open < len) {
        size_t close = open + 1;
        while (close < len && key[close] != '}')
            close++;
        if (close < len && close > open + 1) {
            key += open + 1;
            len = close - open - 1;
        }
    }
    uint16_t crc = 0;
    for (size_t i = 0; i < len; i++) {
        crc ^= (uint16_t)((uint8_t)key[i] << 8);
        for (int b = 0; b < 8; b++)
            crc = (uint16_t)(crc & 0x8000 ? (crc << 1) ^ 0x1021 : crc << 1);
    }
    return crc & 16383u;
}

/* true: forwarded to the leader (or answered with why not). kind and the
 * WAIT arguments as in struct peer_proxy_req; redirect: the client may be
 * sent to the leader instead (--redirect). */
static bool cluster__forward(struct cluster *cl, const struct node_req *rq, uint8_t kind,
                             bool redirect)
{
    struct raft *r = node_raft(cl->node);
    if (raft_role(r) == RAFT_LEADER)
        return false;
    raft_id leader = raft_leader(r);
    if (leader == 0 || leader == raft_id_of(r) || !peer_net_connected(cl->pn, leader) ||
        cluster__blocked(cl, leader)) {
        cluster__answer(cl, rq->id, "-TRYAGAIN no leader is reachable yet; retry shortly\r\n");
        return true;
    }
    if (cl->cfg->redirect && redirect) {
        const struct cluster__addr *a = cluster__addr_of(cl, leader);
        if (a == NULL) {
            cluster__answer(cl, rq->id, "-TRYAGAIN the leader's address is not known yet; retry shortly\r\n");
            return true;
        }
        char buf[PEER_ANNOUNCE_HOST_MAX + 64];
        unsigned slot = rq->argc > 1 ? cluster__slot(rq->argv[1], rq->argvlen[1]) : 0;
        snprintf(buf, sizeof(buf), "-MOVED %u %s:%d\r\n", slot, a->host, a->port);
        cluster__answer(cl, rq->id, buf);
        return true;
    }
    if (cl->n_proxies == CLUSTER_PROXY_MAX) {
        cluster__answer(cl, rq->id, "-BUSY too many requests waiting for the leader; retry later\r\n");
        return true;
    }
    struct peer_proxy_req pr = {.req_id = rq->id, .client_id = rq->client_id, .seq = rq->seq,
                                .db = (uint32_t)rq->db, .proto = (uint8_t)rq->proto,
                                .kind = kind, .ack = (uint8_t)rq->ack, .after = rq->after,
                                .argc = (uint32_t)rq->argc, .argv = rq->argv,
                                .argvlen = rq->argvlen};
    if (peer_net_send_proxy_req(cl->pn, leader, &pr) != 0) {
        cluster__answer(cl, rq->id, "-TRYAGAIN the leader is not reachable; retry shortly\r\n");
        return true;
    }
    if (cl->n_proxies == cl->cap_proxies) {
        cl->cap_proxies = cl->cap_proxies ? cl->cap_proxies * 2 : 64;
        cl->proxies = realloc(cl->proxies, cl->cap_proxies * sizeof(*cl->proxies));
        TRIAD_ASSERT(cl->proxies != NULL);
    }
    uint64_t deadline = cluster__now_ms(NULL) + CLUSTER_PROXY_TIMEOUT_MS;
    if (kind == PEER_PROXY_WAIT) {
        /* WAIT's own timeout (argv[2], 0 = none) comes first */
        uint64_t t = 0;
        triad_parse_u64(rq->argv[2], rq->argvlen[2], &t);
        deadline = t == 0 ? UINT64_MAX : deadline + t;
    }
    /* req ids grow, so the list stays in req_id order */
    cl->proxies[cl->n_proxies++] = (struct cluster__proxy){
        .req_id = rq->id, .deadline_ms = deadline, .leader = leader,
        .wait = kind == PEER_PROXY_WAIT};
    return true;
}

void cluster__submit(struct cluster *cl, const struct node_req *rq, bool redirect)
{
    /* a follower forwards to the leader, so any node serves any client */
    if (cluster__forward(cl, rq, PEER_PROXY_COMMAND, redirect))
        return;
    node_submit(cl->node, rq);
    cluster__note_role(cl);
}

void cluster__read_local(struct cluster *cl, const struct node_req *rq)
{
    if (raft_role(node_raft(cl->node)) != RAFT_LEADER && node_read_local(cl->node, rq))
        return;
    cluster__submit(cl, rq, true);
}

void cluster__wait(struct cluster *cl, uint64_t req_id, uint64_t index, uint32_t replicas,
                   uint64_t timeout_ms)
{
    char rbuf[24], tbuf_[24];
    int rl = snprintf(rbuf, sizeof(rbuf), "%u", (unsigned)replicas);
    int tl = snprintf(tbuf_, sizeof(tbuf_), "%llu", (unsigned long long)timeout_ms);
    char *argv[3] = {"WAIT", rbuf, tbuf_};
    size_t argvlen[3] = {4, (size_t)rl, (size_t)tl};
    struct node_req rq = {.id = req_id, .proto = 2, .after = index, .argc = 3, .argv = argv,
                          .argvlen = argvlen};
    if (cluster__forward(cl, &rq, PEER_PROXY_WAIT, false))
        return;
    node_wait(cl->node, req_id, index, replicas, timeout_ms);
    cluster__note_role(cl);
}

const struct cluster__addr *cluster__addr_of(const struct cluster *cl, raft_id id)
{
    for (size_t i = 0; i < cl->n_addrs; i++)
        if (cl->addrs[i].id == id && cl->addrs[i].port != 0)
            return &cl->addrs[i];
    return NULL;
}

static void cluster__set_addr(struct cluster *cl, raft_id id, const char *host, int port)
{
    size_t i = 0;
    while (i < cl->n_addrs && cl->addrs[i].id != id)
        i++;
    if (i == cl->n_addrs) {
        if (cl->n_addrs == sizeof(cl->addrs) / sizeof(cl->addrs[0]))
            return;
        cl->n_addrs++;
    }
    cl->addrs[i].id = id;
    cl->addrs[i].port = port;
    snprintf(cl->addrs[i].host, sizeof(cl->addrs[i].host), "%s", host);
}

static void cluster__on_announce(void *arg, raft_id from, const struct peer_announce *a)
{
    struct cluster *cl = arg;
    cluster__set_addr(cl, from, a->host, a->client_port);
}

/* ---- peers ---- */

static void cluster__on_raft(void *arg, const struct raft_msg *m)
{
    struct cluster *cl = arg;
    if (cl->stopped || cluster__blocked(cl, m->from))
        return;
    node_step(cl->node, m);
    cluster__note_role(cl);
}

static void cluster__on_peer_log(void *arg, int level, const char *line)
{
    struct cluster *cl = arg;
    cl->hooks.log(cl->hooks.arg, level, line);
}

/* ---- the server's side ---- */

void cluster_durable(struct cluster *cl, uint64_t lsn)
{
    if (lsn > cl->durable_lsn)
        cl->durable_lsn = lsn;
    if (cl->persisting && cl->persist_lsn <= cl->durable_lsn && !cl->stopped) {
        cl->persisting = false;
        node_persisted(cl->node);
        raftlog_compact(cl->rl, cl->durable_lsn);
        cluster__note_role(cl);
    }
}

bool cluster_handles(const struct cmd_spec *spec)
{
    if (spec == NULL)
        return false;
    if (spec->flags & (CMD_ADMIN | CMD_NOMULTI | CMD_DENYMULTI | CMD_NOAUTH | CMD_SUBCOMMANDS))
        return false;
    return (spec->flags & (CMD_WRITE | CMD_READONLY)) != 0;
}

bool cluster_is_leader(const struct cluster *cl)
{
    return raft_role(node_raft(cl->node)) == RAFT_LEADER;
}

size_t cluster_keys(struct cluster *cl, int db, size_t *expires)
{
    struct fsm *f = node_fsm(cl->node);
    if (db < 0 || db >= f->srv.databases) {
        *expires = 0;
        return 0;
    }
    *expires = kv_expires_count(f->srv.db[db]);
    return kv_count(f->srv.db[db]);
}

void cluster_info(struct cluster *cl, struct tbuf *t)
{
    struct raft *r = node_raft(cl->node);
    bool leader = raft_role(r) == RAFT_LEADER;
    raft_id lid = raft_leader(r);
    const struct raft_conf *c = raft_conf(r);
    uint64_t now = cluster__now_ms(NULL);
    /* Redis's shape first: a master lists its replicas, a replica its master */
    tbuf_appendf(t, "role:%s\r\n", leader ? "master" : "slave");
    if (leader) {
        int k = 0;
        for (uint32_t i = 0; i < c->n; i++)
            k += c->members[i].id != raft_id_of(r);
        tbuf_appendf(t, "connected_slaves:%d\r\n", k);
        k = 0;
        for (uint32_t i = 0; i < c->n; i++) {
            raft_id id = c->members[i].id;
            struct raft_progress p;
            if (id == raft_id_of(r) || raft_progress_get(r, id, &p) != 0)
                continue;
            const struct cluster__addr *a = cluster__addr_of(cl, id);
            tbuf_appendf(t, "slave%d:ip=%s,port=%d,state=%s,offset=%llu,lag=%llu\r\n", k++,
                         a ? a->host : "?", a ? a->port : 0,
                         peer_net_connected(cl->pn, id) ? "online" : "offline",
                         (unsigned long long)p.match,
                         (unsigned long long)(now > p.last_ack_ms ? (now - p.last_ack_ms) / 1000 : 0));
        }
    } else {
        const struct cluster__addr *a = lid ? cluster__addr_of(cl, lid) : NULL;
        tbuf_appendf(t, "master_host:%s\r\nmaster_port:%d\r\n", a ? a->host : "",
                     a ? a->port : 0);
        tbuf_appendf(t, "master_link_status:%s\r\n",
                     lid != 0 && peer_net_connected(cl->pn, lid) && !cluster__blocked(cl, lid)
                         ? "up" : "down");
        tbuf_appendf(t, "slave_repl_offset:%llu\r\nslave_read_only:1\r\n",
                     (unsigned long long)raft_applied_index(r));
    }
    tbuf_appendf(t, "master_repl_offset:%llu\r\n", (unsigned long long)raft_applied_index(r));
    tbuf_appendf(t, "triad_mode:leader\r\n");
    tbuf_appendf(t, "triad_node_id:%u\r\n", (unsigned)raft_id_of(r));
    tbuf_appendf(t, "triad_raft_role:%s\r\n", raft_role_name(raft_role(r)));
    tbuf_appendf(t, "triad_term:%llu\r\n", (unsigned long long)raft_current_term(r));
    tbuf_appendf(t, "triad_leader:%u\r\n", (unsigned)lid);
    tbuf_appendf(t, "triad_commit_index:%llu\r\n", (unsigned long long)raft_commit_index(r));
    tbuf_appendf(t, "triad_applied_index:%llu\r\n", (unsigned long long)raft_applied_index(r));
    tbuf_appendf(t, "triad_last_index:%llu\r\n", (unsigned long long)raft_last_index(r));
    tbuf_appendf(t, "triad_snapshot_index:%llu\r\n", (unsigned long long)raft_snapshot_index(r));
    const struct node_stats *ns = node_stats(cl->node);
    tbuf_appendf(t, "triad_snapshots_taken:%llu\r\ntriad_snapshots_installed:%llu\r\n",
                 (unsigned long long)ns->snapshots_taken,
                 (unsigned long long)ns->snapshots_installed);
    tbuf_appendf(t, "triad_snapshot_in_progress:%d\r\n", cl->snap_pid > 0 ? 1 : 0);
    int k = 0;
    for (uint32_t i = 0; i < c->n; i++) {
        const struct raft_member *mb = &c->members[i];
        if (mb->id == raft_id_of(r))
            continue;
        struct raft_progress p;
        bool have = raft_progress_get(r, mb->id, &p) == 0;
        /* lag: entries the leader has that it does not; lag_ms: how long
         * since it last answered the leader (-1: only the leader knows) */
        tbuf_appendf(t, "triad_peer%d:id=%u,role=%s,connected=%d,match=%llu,lag=%llu,lag_ms=%lld\r\n",
                     k++, (unsigned)mb->id, mb->role == RAFT_VOTER ? "voter" : "learner",
                     peer_net_connected(cl->pn, mb->id) ? 1 : 0,
                     (unsigned long long)(have ? p.match : 0),
                     (unsigned long long)(have && raft_last_index(r) > p.match
                                              ? raft_last_index(r) - p.match
                                              : 0),
                     have ? (long long)(now > p.last_ack_ms ? now - p.last_ack_ms : 0) : -1ll);
    }
}

struct wal *cluster_wal(struct cluster *cl)
{
    return raftlog_wal(cl->rl);
}

void cluster_set_reaper(struct cluster *cl, struct reaper *r)
{
    raftlog_set_reaper(cl->rl, r);
}

static void cluster__wal_log(void *arg, const char *msg)
{
    struct cluster *cl = arg;
    cl->hooks.log(cl->hooks.arg, LOG_WARNING, msg);
}

int cluster_open(struct cluster **out, uv_loop_t *loop, const struct config *cfg,
                 const struct cluster_hooks *hooks, char *errmsg, size_t errlen)
{
    struct config_peer peers[CONFIG_PEERS_MAX];
    const struct config_peer *self;
    int n = config_peers_self(cfg, peers, &self, errmsg, errlen);
    if (n < 0)
        return -1;
    struct cluster *cl = calloc(1, sizeof(*cl));
    if (cl == NULL) {
        snprintf(errmsg, errlen, "out of memory");
        return -1;
    }
    cl->cfg = cfg;
    cl->hooks = *hooks;
    memcpy(cl->peers, peers, (size_t)n * sizeof(*peers));
    cl->n_peers = n;
    cl->loop = loop;
    cl->last_role = RAFT_FOLLOWER;

    if (raftlog_open(&cl->rl, cfg->dir, (uint64_t)cfg->wal_segment_bytes, cluster__wal_log, cl,
                     errmsg, errlen) != 0)
        goto err_free;
    cl->durable_lsn = wal_last_lsn(raftlog_wal(cl->rl));

    uv_timer_init(loop, &cl->timer);
    cl->timer.data = cl;
    uv_idle_init(loop, &cl->idle);
    cl->idle.data = cl;
    uv_timer_init(loop, &cl->proxy_timer);
    cl->proxy_timer.data = cl;
    uv_timer_start(&cl->proxy_timer, cluster__on_proxy_timer, CLUSTER_PROXY_SCAN_MS,
                   CLUSTER_PROXY_SCAN_MS);

    struct node_config ncfg;
    node_config_default(&ncfg, (raft_id)cfg->node_id);
    ncfg.snapshot_entries = (uint64_t)cfg->raft_snapshot_entries;
    struct peer_net_config pc = {
        .loop = loop,
        .self = (raft_id)cfg->node_id,
        .cluster_id = XXH3_64bits(cfg->cluster_id, strlen(cfg->cluster_id)),
        .secret = cfg->cluster_secret,
        .listen_host = self->host,
        .listen_port = self->port,
        .announce = {.client_port = (uint16_t)cfg->port},
        .cb = {.arg = cl,
               .on_raft = cluster__on_raft,
               .on_proxy_req = cluster__on_proxy_req,
               .on_proxy_reply = cluster__on_proxy_reply,
               .on_announce = cluster__on_announce,
               .on_log = cluster__on_peer_log},
        /* Only the smaller id dials, so a restarted member is reachable
         * from the smaller ids only once they dial it again; until then
         * the votes it asks for, and those asked of it, are lost, and the
         * candidate tries again only a whole election timeout later. A
         * leader killed soon after another member restarted took over a
         * second and more while the redial waited out a backoff grown
         * through the restart (up to 2 s). Redialing a member that is
         * down every half a minimum election timeout at most has the link
         * back that soon after it restarts: within less than the wait
         * before any election's first vote request. */
        .redial_down_ms_max = ncfg.raft.election_timeout_ms_min / 2,
    };
    /* clients reach this node at its peer host (the address the others
     * know it by) on its client port */
    snprintf(pc.announce.host, sizeof(pc.announce.host), "%s", self->host);
    cluster__set_addr(cl, (raft_id)cfg->node_id, self->host, cfg->port);
    if (peer_net_start(&cl->pn, &pc, errmsg, errlen) != 0)
        goto err_log;
    for (int i = 0; i < n; i++)
        if (peers[i].id != cfg->node_id &&
            peer_net_set_member(cl->pn, (raft_id)peers[i].id, peers[i].host, peers[i].port) != 0) {
            snprintf(errmsg, errlen, "bad peer address %s:%d for node %d", peers[i].host,
                     peers[i].port, peers[i].id);
            goto err_log;
        }
    /* what --peers gave the transport: the log's records may change it */
    for (int i = 0; i < n && cl->n_dialed < sizeof(cl->dialed) / sizeof(cl->dialed[0]); i++)
        if (peers[i].id != cfg->node_id) {
            struct cluster__addr *d = &cl->dialed[cl->n_dialed++];
            d->id = (raft_id)peers[i].id;
            d->port = peers[i].port;
            snprintf(d->host, sizeof(d->host), "%s", peers[i].host);
        }

    struct node_disk disk;
    raftlog_disk(cl->rl, &disk.hs, &disk.snapshot, &disk.entries, &disk.n_entries);
    bool empty = disk.hs.term == 0 && disk.n_entries == 0 && disk.snapshot == NULL;
    struct raft_conf conf = {.n = 0};
    for (int i = 0; i < n; i++)
        conf.members[conf.n++] = (struct raft_member){.id = (raft_id)peers[i].id, .role = RAFT_VOTER};
    struct node_io io = {
        .arg = cl,
        .now_ms = cluster__now_ms,
        .random = cluster__random,
        .send = cluster__send,
        .persist = cluster__persist,
        .set_timer = cluster__set_timer,
        .reply = cluster__reply,
        .wake = cluster__wake,
        .snapshot = cluster__snapshot,
    };
    cluster__log(cl, LOG_NOTICE, "raft: node %d of %d, %s (term %llu, %zu entries on disk)",
                 cfg->node_id, n,
                 !empty         ? "restarting"
                 : cfg->join    ? "empty: waiting for a leader to add it (join)"
                                : "bootstrapping a new cluster",
                 (unsigned long long)disk.hs.term, disk.n_entries);
    *out = cl; /* the node may persist from inside node_new */
    cl->node = node_new(&ncfg, &io, &disk, empty && !cfg->join ? &conf : NULL, errmsg, errlen);
    if (cl->node == NULL)
        goto err_log;
    raftlog_release_disk(cl->rl);
    if (cl->persisting && cfg->fsync == CONFIG_FSYNC_NO) {
        cl->persisting = false;
        node_persisted(cl->node);
    }
    return 0;

err_log:
    raftlog_close(cl->rl);
err_free:
    free(cl);
    *out = NULL;
    return -1;
}

static void cluster__closed(void *arg)
{
    (void)arg;
}

void cluster_stop(struct cluster *cl)
{
    if (cl->stopped)
        return;
    cl->stopped = true;
    if (cl->snap_pid > 0) {
        /* no compaction now: the log is whole without it */
        free(cluster__snap_end(cl, true));
        raftlog_snap_discard(cl->rl, cl->snap_index);
    }
    /* The node is going: the child, killed, is waited for here, so none
     * outlives the server (proc.h). */
    if (cl->snap_dying > 0) {
        proc_reap(cl->snap_dying, true, NULL);
        cl->snap_dying = 0;
    }
    uv_timer_stop(&cl->timer);
    uv_close((uv_handle_t *)&cl->timer, NULL);
    uv_idle_stop(&cl->idle);
    uv_close((uv_handle_t *)&cl->idle, NULL);
    uv_timer_stop(&cl->proxy_timer);
    uv_close((uv_handle_t *)&cl->proxy_timer, NULL);
    peer_net_close(cl->pn, cluster__closed, cl);
}

void cluster_free(struct cluster *cl)
{
    if (cl == NULL)
        return;
    node_free(cl->node);
    raftlog_close(cl->rl);
    free(cl->proxies);
    free(cl->remotes);
    free(cl);
}
