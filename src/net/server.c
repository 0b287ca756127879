/* server.c - `triad server`: one node on a libuv loop.
 *
 * Threads: the loop thread owns every session, the command layer and the
 * keyspace. The fsync thread (struct syncer) owns the WAL's files: it
 * writes the batches the loop hands it and makes them durable; under
 * `fsync everysec` the loop writes a small batch itself while the thread
 * is idle, holding the lock the thread needs to start anything
 * (syncer_write_here). A background
 * snapshot runs in a forked child that only reads its copy of the keyspace.
 *
 * The durability rule. Every command is applied in memory at once; a write
 * also appends a record to the WAL's pending buffer. A reply - any reply,
 * a read's too - may leave only once every record appended before it was
 * produced is durable (fsync always) or written (everysec). A client that
 * saw a reply therefore never sees it undone by a crash: neither its own
 * write nor another client's write that it read. Replies wait in the
 * session's output buffer; the session sits on the wait list until the
 * syncer reports progress.
 *
 * Group commit: all records appended during one loop turn leave as one
 * batch - one write() and one fdatasync() - handed over in the prepare
 * phase, right before the loop polls for I/O (or, under everysec, written
 * by the loop in the check phase).
 *
 * Replies leave once per loop turn, too: a session that produced replies
 * joins the flush queue, emptied in the check phase right after the I/O
 * callbacks, so a pipeline that arrives in several reads is answered with
 * one write.
 */
#include "server.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/types.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

#include "../cmd/cmd.h"
#include "../common/buf.h"
#include "../common/defs.h"
#include "../common/idlepoll.h"
#include "../common/mem.h"
#include "../common/proc.h"
#include "../store/kv.h"
#include "../store/reaper.h"
#include "../store/snap.h"
#include "../store/wal.h"
#include "cluster.h"
#include "config.h"
#include "leaderless.h"
#include "resp.h"

#define TRIAD_VERSION "0.1.0"
#define TRIAD_REDIS_COMPAT_VERSION "7.0.0"

#define SESSION_READ_CHUNK_BYTES (16 * 1024)
#define SESSION_OUT_SHRINK_BYTES (1024 * 1024) /* free an emptied output buffer above this */
#define SERVER_READ_BYTES (64 * 1024)        /* the shared read buffer */
#define SESSION_OUT_PAUSE_BYTES (64ull * 1024 * 1024) /* stop reading a client that doesn't read */
#define SESSION_BATCH_COMMANDS_MAX 1024      /* commands per read before yielding */
#define SESSION_PREFETCH_MAX 16              /* requests whose keys are prefetched at once */
#define EXPIRE_KEYS_PER_TICK_MAX 2000
#define OPS_SAMPLES 16

struct server;
struct session;

/* A session's place in one of the server's queues (the wait list, the
 * flush queue): intrusive, so joining and leaving cost no allocation. */
struct squeue_link {
    struct session *s;
    struct squeue_link *prev, *next;
    bool queued;
};

struct squeue {
    struct squeue_link *first;
    size_t n;
};

struct session {
    uv_tcp_t tcp;
    struct server *srv;
    struct cmd_client cc;
    struct resp_parser parser;
    struct tbuf in;   /* query buffer: bytes read, not yet parsed */
    struct tbuf out;  /* replies not yet handed to the socket */
    struct tbuf wbuf; /* the bytes of the write in flight */
    size_t wbuf_off;
    uv_write_t wreq;
    uint64_t wait_lsn; /* `out` may leave once the WAL is durable to here */
    bool write_in_flight;
    bool reading;
    bool closing;
    struct session *prev, *next;   /* srv->sessions */
    struct squeue_link wait_link;  /* srv->waiting */
    struct squeue_link flush_link; /* srv->flushing */
    char addr[64];
    char laddr[64];
    int64_t created_ms;
    int64_t last_ms;
    /* leader or leaderless mode: the data command this session waits for
     * (one at a time, so that its replies stay in order and a read sees its
     * own writes) */
    uint64_t cluster_req;
    bool cluster_wait;
    struct cluster_session cs;
    struct ll_session ls; /* leaderless mode */
    uint32_t slot; /* in srv->slots: how an answer finds its session */
};

/* A leader-mode request id names its session's slot (low bits) and is
 * never reused (high bits count up), so a late answer for a closed session
 * finds nobody, or a session waiting for another id. */
#define SERVER_SLOT_BITS 24
#define SERVER_SLOT_MASK ((1u << SERVER_SLOT_BITS) - 1)

/* Batches queued for the fsync thread, at most. */
#define SYNCER_JOBS_MAX 64
/* Written batches' buffers kept for the loop to fill again, at most. */
#define SYNCER_SPARES_MAX 2

/* The fsync thread and what it shares with the loop (under mu). */
struct syncer {
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    struct wal_batch jobs[SYNCER_JOBS_MAX]; /* a ring, oldest at jobs_head */
    int jobs_head, njobs;
    bool writing; /* the thread is writing or syncing the log outside the
                     lock (the loop's own write holds it: syncer_write_here) */
    struct wal_batch spares[SYNCER_SPARES_MAX];
    int nspares;
    bool stop;
    int policy;
    uint64_t written_lsn;
    uint64_t synced_lsn;
    bool failed;
    char errmsg[256];
    uv_async_t async;
    struct wal *wal;
};

struct server {
    struct config cfg;
    uv_loop_t *loop;
    uv_tcp_t listener;
    uv_timer_t cron;
    uv_prepare_t prepare;
    uv_check_t check;
    char rbuf[SERVER_READ_BYTES]; /* shared read buffer (on_alloc) */
    struct idlepoll idlepoll;     /* how long the loop polls before it sleeps */
    bool idlepoll_cpus;           /* another CPU could send work while it polls */
    int psi_fd;                   /* /proc/pressure/cpu, or -1 */
    uint64_t psi_total_us;        /* its last "some total" and when it was read */
    uint64_t psi_at_ns;
    uv_signal_t sigterm, sigint;
    struct cmd_server cmd;
    struct wal *wal;
    struct syncer syncer;
    int lock_fd;

    struct session *sessions;
    struct squeue waiting;  /* sessions whose replies wait for durability */
    struct squeue flushing; /* sessions with replies to send this loop turn */
    struct session *current; /* the session whose command is running */
    size_t nsessions;
    uint64_t next_client_id;

    uint64_t durable_lsn; /* replies for records up to here may leave */
    uint64_t wal_bytes_since_snapshot;
    uint64_t wal_loop_writes; /* batches the loop wrote itself (syncer_write_here) */
    uint64_t idle_check_lsn; /* the WAL's last lsn at the previous cron tick */

    /* snapshots */
    struct reaper *reaper;   /* deletes the files a snapshot made obsolete */
    uint64_t reaper_failed;  /* failures of it already logged */
    pid_t child_pid;
    uint64_t child_lsn;
    int64_t child_start_ms;
    uint64_t snapshot_lsn;
    uint64_t snapshot_bytes; /* size of the newest snapshot file */
    long long last_snapshot_s;
    bool last_snapshot_ok;
    uint64_t dirty_at_snapshot;
    bool snapshot_deferred; /* BGSAVE in a transaction: start after it (on_check) */

    struct cluster *cluster; /* leader mode, or NULL for a single node */
    struct ll *ll;           /* leaderless mode, or NULL */
    uint64_t next_req_id;
    struct session **slots;  /* by session slot; NULL: free */
    uint32_t *free_slots;
    uint32_t nslots, nfree;
    bool syncer_started;

    bool shutting_down;
    int exit_code;
    int64_t start_ms;
    char run_id[41];

    /* stats */
    uint64_t total_connections;
    uint64_t rejected_connections;
    uint64_t net_input_bytes;
    uint64_t net_output_bytes;
    uint64_t ops_samples[OPS_SAMPLES];
    int ops_idx;
    uint64_t ops_last_count;
    int64_t ops_last_ms;
    size_t peak_memory;
};

static struct server *g_srv; /* for the log function only */

/* ---- time and logging ---- */

/* Monotonic microseconds, for INFO commandstats. */
static uint64_t mono_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static int64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int64_t wall_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static FILE *log_file;

__attribute__((format(printf, 2, 3))) static void srv_log(int level, const char *fmt, ...)
{
    if (g_srv && level < g_srv->cfg.loglevel)
        return;
    FILE *f = log_file ? log_file : stderr;
    struct timeval tv;
    gettimeofday(&tv, NULL);
    struct tm tm;
    localtime_r(&tv.tv_sec, &tm);
    char when[64];
    strftime(when, sizeof(when), "%d %b %Y %H:%M:%S", &tm);
    static const char marks[] = ".-*#";
    fprintf(f, "%d:M %s.%03d %c ", (int)getpid(), when, (int)(tv.tv_usec / 1000),
            marks[level < 0 ? 0 : level > 3 ? 3 : level]);
    va_list ap;
    va_start(ap, fmt);
    vfprintf(f, fmt, ap);
    va_end(ap);
    fputc('\n', f);
    fflush(f);
}

/* ---- the fsync thread ---- */

/* Under mu: the log failed; nothing more is written, and the loop stops
 * the server when it hears (on_syncer_progress). */
static void syncer_fail(struct syncer *sy, const char *err)
{
    sy->failed = true;
    snprintf(sy->errmsg, sizeof(sy->errmsg), "%s", err);
}

/* Under mu (the fsync thread, or the loop after writing a batch itself):
 * keep a written job's buffer for the loop to fill
 * again (a fresh one per batch would cost the loop page faults and copies
 * for every byte of log), or free it. */
static void syncer_keep_buffer(struct syncer *sy, struct wal_batch *job)
{
    if (sy->nspares < SYNCER_SPARES_MAX && job->cap <= WAL_SPARE_BYTES_MAX) {
        sy->spares[sy->nspares++] = *job;
        memset(job, 0, sizeof(*job));
        return;
    }
    pthread_mutex_unlock(&sy->mu);
    wal_batch_free(job);
    pthread_mutex_lock(&sy->mu);
}

/* Fsync thread, under mu: write the jobs queued now, as one group: each is
 * written, and under `fsync always` the last is followed by one fdatasync
 * that covers them all. Jobs queued meanwhile wait for the next group, so
 * a steady stream of them cannot put the fdatasync off. */
static void syncer_write_group(struct syncer *sy, int64_t *last_sync_ms)
{
    char err[256];
    int n = sy->njobs;
    bool sync = sy->policy == CONFIG_FSYNC_ALWAYS;
    int rc = 0;
    sy->writing = true;
    for (int i = 0; i < n && rc == 0; i++) {
        struct wal_batch job = sy->jobs[sy->jobs_head];
        pthread_mutex_unlock(&sy->mu);
        rc = wal_write_batch(sy->wal, &job, sync && i == n - 1, err, sizeof(err));
        pthread_mutex_lock(&sy->mu);
        sy->jobs_head = (sy->jobs_head + 1) % SYNCER_JOBS_MAX;
        sy->njobs--;
        if (rc == 0)
            sy->written_lsn = job.last_lsn;
        syncer_keep_buffer(sy, &job);
    }
    sy->writing = false;
    if (rc != 0) {
        syncer_fail(sy, err);
        /* nothing more is written: the loop stops the server */
        while (sy->njobs > 0) {
            wal_batch_free(&sy->jobs[sy->jobs_head]);
            sy->jobs_head = (sy->jobs_head + 1) % SYNCER_JOBS_MAX;
            sy->njobs--;
        }
    } else if (sync) {
        sy->synced_lsn = sy->written_lsn;
        *last_sync_ms = wall_ms();
    }
    /* Under `fsync no` no reply waits for this, so the loop is told only
     * of a failure: a wake-up per batch would cost the loop a syscall and
     * a turn for nothing. It hands over the next batch on its own (each
     * turn and from the cron). */
    if (rc != 0 || sy->policy != CONFIG_FSYNC_NO)
        uv_async_send(&sy->async);
}

static void *syncer_main(void *arg)
{
    struct syncer *sy = arg;
    int64_t last_sync_ms = wall_ms();
    char err[256];

    pthread_mutex_lock(&sy->mu);
    for (;;) {
        if (sy->njobs > 0) {
            syncer_write_group(sy, &last_sync_ms);
            continue;
        }
        if (sy->stop)
            break;
        bool unsynced = sy->synced_lsn < sy->written_lsn && !sy->failed;
        /* Under everysec once a second; under always at once, for records
         * written under everysec or no before a CONFIG SET made the policy
         * always (their replies wait for this, and new jobs may not come). */
        bool due = sy->policy == CONFIG_FSYNC_ALWAYS ||
                   (sy->policy == CONFIG_FSYNC_EVERYSEC && wall_ms() - last_sync_ms >= 1000);
        if (unsynced && due) {
            uint64_t upto = sy->written_lsn;
            sy->writing = true; /* the loop must not write meanwhile (syncer_write_here) */
            TRIAD_ASSERT(sy->njobs == 0);
            pthread_mutex_unlock(&sy->mu);
            int rc = wal_sync(sy->wal, err, sizeof(err));
            last_sync_ms = wall_ms();
            pthread_mutex_lock(&sy->mu);
            sy->writing = false;
            if (rc != 0) {
                syncer_fail(sy, err);
            } else {
                sy->synced_lsn = upto;
            }
            uv_async_send(&sy->async);
            continue;
        }
        if (unsynced && sy->policy == CONFIG_FSYNC_EVERYSEC) {
            /* a second after the last sync, not after now: woken by the
             * first unsynced record 0.9 s after a sync, the thread would
             * otherwise sync only 1.9 s after it */
            int64_t due_ms = last_sync_ms + 1000;
            struct timespec until = {.tv_sec = due_ms / 1000,
                                     .tv_nsec = (long)(due_ms % 1000) * 1000000};
            pthread_cond_timedwait(&sy->cv, &sy->mu, &until);
        } else {
            pthread_cond_wait(&sy->cv, &sy->mu);
        }
    }
    /* Stopping: whatever was written is made durable whatever the policy,
     * so a clean shutdown never loses an acknowledged write. */
    if (sy->synced_lsn < sy->written_lsn && !sy->failed) {
        pthread_mutex_unlock(&sy->mu);
        int rc = wal_sync(sy->wal, err, sizeof(err));
        pthread_mutex_lock(&sy->mu);
        if (rc == 0)
            sy->synced_lsn = sy->written_lsn;
        else
            sy->failed = true;
    }
    pthread_mutex_unlock(&sy->mu);
    return NULL;
}

/* Under `fsync no`, records wait until this many bytes are pending (or the
 * cron runs): fewer, larger writes cost the other core less. At 50 MB/s of
 * log (1 KiB SETs, one request in flight per client) 64 KiB writes took
 * the fsync thread 8% of a core, 1 MiB writes 2%: each write is a trip to
 * the device, in a VM an exit to the host. */
#define SYNCER_LAZY_BATCH_BYTES (1024 * 1024)
/* Pending records this big are handed over even while the fsync thread is
 * busy, so the disk gets the log while the loop makes more, and batches
 * (and the buffers that come back) stay bounded. Not smaller: every write
 * costs the fsync thread a trip to the device, which at hundreds of MB/s
 * of log in 256 KiB writes took a tenth of a core in a VM. */
#define SYNCER_CHUNK_BYTES (4 * 1024 * 1024)

/* Loop thread, under mu: move the pending records into *b and give the
 * WAL a kept buffer to fill next, if there is one. */
static void syncer_take_pending(struct server *srv, struct wal_batch *b)
{
    struct syncer *sy = &srv->syncer;
    wal_take_batch(srv->wal, b);
    if (sy->nspares > 0)
        wal_recycle_batch(srv->wal, &sy->spares[--sy->nspares]);
}

/* Loop thread: queue the pending records for the fsync thread, if there
 * are at least min_bytes of them and it is idle (or, with busy_too, has
 * room in its queue). Small batches thus wait while it is busy and then
 * go together: group commit. */
static void syncer_hand_over(struct server *srv, size_t min_bytes, bool busy_too)
{
    struct syncer *sy = &srv->syncer;
    size_t pending = wal_pending_bytes(srv->wal);
    if (pending == 0 || pending < min_bytes)
        return;
    pthread_mutex_lock(&sy->mu);
    bool idle = sy->njobs == 0 && !sy->writing;
    bool queued = idle || (busy_too && sy->njobs < SYNCER_JOBS_MAX);
    if (queued) {
        int tail = (sy->jobs_head + sy->njobs) % SYNCER_JOBS_MAX;
        syncer_take_pending(srv, &sy->jobs[tail]);
        sy->njobs++;
    }
    pthread_mutex_unlock(&sy->mu);
    /* after the unlock: woken under the lock, the thread would only block
     * on the mutex again, one more sleep and wake-up per group */
    if (queued)
        pthread_cond_signal(&sy->cv);
}

static void syncer_kick(struct server *srv)
{
    syncer_hand_over(srv, 0, false);
}

static void server_release_waiting(struct server *srv);

/* Loop thread, under `fsync everysec` on a single node: write the pending
 * records to the log here and let their replies go at once, as Redis
 * writes its AOF before replying, when the fsync thread is idle and the
 * write only copies them into the page cache (wal_pending_stays_cached).
 * Handing them over instead costs a wake-up of the thread and another of
 * the loop when it is done, and the replies wait for both. The thread
 * still makes the fdatasync once a second; anything else (a new segment,
 * a big run, the thread busy writing or syncing) goes to it as before.
 *
 * The lock is held across the write: the thread needs it to start a write
 * or a sync, so it cannot touch the log meanwhile, and it waits at most
 * for a copy of under 128 KiB into the page cache. */
static void syncer_write_here(struct server *srv)
{
    struct syncer *sy = &srv->syncer;
    if (srv->cfg.fsync != CONFIG_FSYNC_EVERYSEC || srv->cluster != NULL || srv->ll != NULL ||
        wal_pending_bytes(srv->wal) == 0)
        return;
    pthread_mutex_lock(&sy->mu);
    if (sy->njobs > 0 || sy->writing || sy->failed || !wal_pending_stays_cached(srv->wal)) {
        pthread_mutex_unlock(&sy->mu);
        return;
    }
    struct wal_batch job;
    syncer_take_pending(srv, &job);
    TRIAD_ASSERT(job.first_lsn == sy->written_lsn + 1); /* none lost, none twice */
    char err[256];
    uint64_t last = job.last_lsn;
    int rc = wal_write_batch(srv->wal, &job, false, err, sizeof(err));
    /* the thread sleeps without a deadline while nothing is unsynced */
    bool wake = rc == 0 && sy->synced_lsn == sy->written_lsn;
    if (rc != 0) {
        syncer_fail(sy, err);
    } else {
        sy->written_lsn = last;
        srv->wal_loop_writes++;
    }
    syncer_keep_buffer(sy, &job);
    pthread_mutex_unlock(&sy->mu);
    if (rc != 0) {
        /* no reply for these records leaves: on_syncer_progress stops the
         * server, as after a failed write of the thread's */
        uv_async_send(&sy->async);
        return;
    }
    if (wake)
        pthread_cond_signal(&sy->cv);
    if (last > srv->durable_lsn)
        srv->durable_lsn = last;
    server_release_waiting(srv);
}

/* Cron: once a whole tick has passed without a new record, free the log
 * buffers kept for reuse (up to 3 x 8 MiB after a burst). */
static void syncer_release_if_idle(struct server *srv)
{
    struct syncer *sy = &srv->syncer;
    uint64_t last = wal_last_lsn(srv->wal);
    if (last != srv->idle_check_lsn) {
        srv->idle_check_lsn = last;
        return;
    }
    wal_release_idle(srv->wal);
    struct wal_batch spares[SYNCER_SPARES_MAX];
    pthread_mutex_lock(&sy->mu);
    int n = sy->nspares;
    memcpy(spares, sy->spares, (size_t)n * sizeof(spares[0]));
    sy->nspares = 0;
    pthread_mutex_unlock(&sy->mu);
    for (int i = 0; i < n; i++)
        wal_batch_free(&spares[i]);
}

static void session_flush(struct session *s);

static void squeue_push(struct squeue *q, struct squeue_link *l)
{
    if (l->queued)
        return;
    l->queued = true;
    q->n++;
    l->prev = NULL;
    l->next = q->first;
    if (q->first)
        q->first->prev = l;
    q->first = l;
}

static void squeue_unlink(struct squeue *q, struct squeue_link *l)
{
    if (!l->queued)
        return;
    if (l->prev)
        l->prev->next = l->next;
    else
        q->first = l->next;
    if (l->next)
        l->next->prev = l->prev;
    l->prev = l->next = NULL;
    l->queued = false;
    q->n--;
}

static void server_release_waiting(struct server *srv)
{
    struct squeue_link *l = srv->waiting.first;
    while (l) {
        struct squeue_link *next = l->next;
        if (l->s->wait_lsn <= srv->durable_lsn) {
            /* unlink, then flush (which may re-add it) */
            squeue_unlink(&srv->waiting, l);
            session_flush(l->s);
        }
        l = next;
    }
}

/* Send what the sessions produced in this loop turn, one write each (or
 * move them to the wait list, if their replies wait for durability). */
static void server_flush_queued(struct server *srv)
{
    struct squeue_link *l;
    while ((l = srv->flushing.first) != NULL) {
        squeue_unlink(&srv->flushing, l);
        session_flush(l->s);
    }
}

static int server_snapshot_background(struct server *srv, char *errmsg, size_t errlen);

/* Check phase: right after the loop turn's I/O callbacks. */
static void on_check(uv_check_t *h)
{
    struct server *srv = h->data;
    if (srv->snapshot_deferred) {
        srv->snapshot_deferred = false;
        char err[256];
        if (srv->child_pid == 0 && server_snapshot_background(srv, err, sizeof(err)) != 0)
            srv_log(LOG_WARNING, "can't start a background snapshot: %s", err);
    }
    syncer_write_here(srv);
    server_flush_queued(srv);
}

static uint64_t server_durable_target(struct server *srv)
{
    struct syncer *sy = &srv->syncer;
    switch (srv->cfg.fsync) {
    case CONFIG_FSYNC_ALWAYS:
        return sy->synced_lsn;
    case CONFIG_FSYNC_EVERYSEC:
        return sy->written_lsn;
    default:
        return UINT64_MAX; /* replies never wait */
    }
}

static void on_syncer_progress(uv_async_t *h)
{
    struct server *srv = h->data;
    struct syncer *sy = &srv->syncer;
    pthread_mutex_lock(&sy->mu);
    bool failed = sy->failed;
    uint64_t target = server_durable_target(srv);
    pthread_mutex_unlock(&sy->mu);
    if (failed) {
        /* Replies still held were never acknowledged, and acknowledged
         * writes are on disk: stopping is the one safe move. */
        srv_log(LOG_WARNING, "WAL write failed: %s; stopping to protect acknowledged data",
                sy->errmsg);
        exit(1);
    }
    /* The next group first: the records logged while the thread wrote
     * this one are all pending now, and the replies below (a write() per
     * session) would keep the disk idle the while. */
    syncer_kick(srv);
    if (target > srv->durable_lsn)
        srv->durable_lsn = target;
    server_release_waiting(srv);
    if (srv->cluster != NULL)
        cluster_durable(srv->cluster, target);
    if (srv->ll != NULL)
        ll_durable(srv->ll, target);
}

/* What waits for the end of the loop's turn, before it polls or sleeps:
 * the records the turn logged go to the fsync thread together. */
static void on_prepare(uv_prepare_t *h)
{
    struct server *srv = h->data;
    syncer_hand_over(srv, srv->cfg.fsync == CONFIG_FSYNC_NO ? SYNCER_LAZY_BATCH_BYTES : 0, false);
}

static uint64_t server_log_record(void *arg, const void *body, size_t len)
{
    struct server *srv = arg;
    srv->wal_bytes_since_snapshot += len + WAL_RECORD_OVERHEAD + 8;
    return wal_append(srv->wal, CMD_LOG_BATCH, body, len);
}

/* A single node's commands build their records in the WAL's pending buffer
 * itself (cmd.h, log_begin). */
static struct tbuf *server_log_begin(void *arg)
{
    struct server *srv = arg;
    return wal_record_begin(srv->wal);
}

static uint64_t server_log_end(void *arg)
{
    struct server *srv = arg;
    srv->wal_bytes_since_snapshot += wal_record_bytes(srv->wal);
    return wal_record_end(srv->wal, CMD_LOG_BATCH);
}

static void server_log_cancel(void *arg)
{
    struct server *srv = arg;
    wal_record_cancel(srv->wal);
}

/* ---- sessions ---- */


static void on_session_closed(uv_handle_t *h)
{
    struct session *s = h->data;
    struct server *srv = s->srv;
    cmd_client_free(&srv->cmd, &s->cc);
    cluster_session_free(&s->cs);
    if (srv->ll != NULL)
        ll_session_free(&s->ls);
    resp_parser_free(&s->parser);
    tbuf_free(&s->in);
    tbuf_free(&s->out);
    tbuf_free(&s->wbuf);
    tfree(s);
}

static void session_close(struct session *s)
{
    struct server *srv = s->srv;
    if (s->closing)
        return;
    s->closing = true;
    squeue_unlink(&srv->waiting, &s->wait_link);
    squeue_unlink(&srv->flushing, &s->flush_link);
    if (s->prev)
        s->prev->next = s->next;
    else
        srv->sessions = s->next;
    if (s->next)
        s->next->prev = s->prev;
    srv->nsessions--;
    srv->slots[s->slot] = NULL;
    srv->free_slots[srv->nfree++] = s->slot;
    uv_close((uv_handle_t *)&s->tcp, on_session_closed);
}

static void session_process(struct session *s);
static void session_start_reading(struct session *s);

static void session_maybe_resume(struct session *s)
{
    if (s->closing || s->reading)
        return;
    if (s->out.len + (s->wbuf.len - s->wbuf_off) >= SESSION_OUT_PAUSE_BYTES)
        return;
    if (s->srv->shutting_down)
        return;
    /* resume: first work through what is already buffered */
    session_process(s);
    if (s->closing)
        return;
    session_start_reading(s);
}

static void on_write_done(uv_write_t *req, int status)
{
    struct session *s = req->data;
    s->write_in_flight = false;
    if (s->closing)
        return;
    if (status < 0) {
        srv_log(LOG_VERBOSE, "client %s write error: %s", s->addr, uv_strerror(status));
        session_close(s);
        return;
    }
    s->srv->net_output_bytes += s->wbuf.len - s->wbuf_off;
    tbuf_reset(&s->wbuf);
    s->wbuf_off = 0;
    session_flush(s);
    if (!s->closing)
        session_maybe_resume(s);
}

/* Hand `out` to the socket if the durability rule allows it. */
static void session_flush(struct session *s)
{
    struct server *srv = s->srv;
    if (s->closing || s->write_in_flight)
        return;
    if (s->out.len == 0) {
        if (s->cc.flags & CMD_CLIENT_CLOSE_AFTER_REPLY)
            session_close(s);
        return;
    }
    if (srv->cfg.fsync != CONFIG_FSYNC_NO && s->wait_lsn > srv->durable_lsn) {
        squeue_push(&srv->waiting, &s->wait_link);
        return;
    }
    uv_buf_t b = uv_buf_init(s->out.data, (unsigned int)TRIAD_MIN(s->out.len, (size_t)UINT_MAX));
    int n = uv_try_write((uv_stream_t *)&s->tcp, &b, 1);
    if (n == UV_EAGAIN)
        n = 0;
    if (n < 0) {
        srv_log(LOG_VERBOSE, "client %s write error: %s", s->addr, uv_strerror(n));
        session_close(s);
        return;
    }
    srv->net_output_bytes += (uint64_t)n;
    if ((size_t)n == s->out.len) {
        tbuf_reset(&s->out);
        if (s->out.cap > SESSION_OUT_SHRINK_BYTES)
            tbuf_free(&s->out);
        if (s->cc.flags & CMD_CLIENT_CLOSE_AFTER_REPLY)
            session_close(s);
        return;
    }
    /* The rest goes out asynchronously from wbuf, while new replies
     * accumulate in out: swap the buffers instead of copying. */
    struct tbuf t = s->wbuf;
    s->wbuf = s->out;
    s->out = t;
    tbuf_reset(&s->out);
    s->wbuf_off = (size_t)n;
    b = uv_buf_init(s->wbuf.data + n, (unsigned int)TRIAD_MIN(s->wbuf.len - (size_t)n, (size_t)UINT_MAX));
    s->wreq.data = s;
    int rc = uv_write(&s->wreq, (uv_stream_t *)&s->tcp, &b, 1, on_write_done);
    if (rc != 0) {
        session_close(s);
        return;
    }
    s->write_in_flight = true;
}

/* Parse and execute what the query buffer holds. */
/* Leader mode: the answer to a session's data command. The session may be
 * gone (its answer is dropped) or still inside session_process (the answer
 * came at once: it just goes out with the rest). */
static void server_cluster_reply(void *arg, uint64_t req_id, const char *resp, size_t len,
                                 uint64_t index)
{
    struct server *srv = arg;
    uint32_t slot = (uint32_t)(req_id & SERVER_SLOT_MASK);
    struct session *s = slot < srv->nslots ? srv->slots[slot] : NULL;
    if (s == NULL || !s->cluster_wait || s->cluster_req != req_id)
        return;
    cluster_session_answer(&s->cs, resp, len, index, &s->out);
    s->cluster_wait = false;
    if (srv->current == s)
        return;
    session_flush(s);
    if (!s->closing && s->in.len > 0)
        session_process(s); /* what it sent meanwhile */
}

static void server_cluster_kick(void *arg)
{
    struct server *srv = arg;
    if (srv->syncer_started)
        syncer_kick(srv);
}

static void server_cluster_log(void *arg, int level, const char *line)
{
    (void)arg;
    srv_log(level, "%s", line);
}

/* A request id for session s's next command in a cluster: its slot in
 * the low bits, a sequence number above, below bit 63 (which leader mode
 * keeps for the requests it runs for a follower). Wrapping is harmless: an
 * answer must match the slot and the session's current id. */
static uint64_t server_next_req_id(struct server *srv, struct session *s)
{
    uint64_t seq = ++srv->next_req_id & ((1ull << (63 - SERVER_SLOT_BITS)) - 1);
    return (seq << SERVER_SLOT_BITS) | s->slot;
}


/* Leaderless mode: the answer to a session's command, from the loop (never
 * from inside the core), or from inside ll_command when it came at once. */
static void server_ll_reply(void *arg, uint64_t req_id, const char *resp, size_t len)
{
    struct server *srv = arg;
    uint32_t slot = (uint32_t)(req_id & SERVER_SLOT_MASK);
    struct session *s = slot < srv->nslots ? srv->slots[slot] : NULL;
    if (s == NULL || !s->cluster_wait || s->cluster_req != req_id)
        return;
    tbuf_append(&s->out, resp, len);
    s->cluster_wait = false;
    /* As every reply: it leaves once what was applied before it is
     * durable (a read may show this replica's own newest copy). */
    uint64_t last = wal_last_lsn(srv->wal);
    if (last > s->wait_lsn)
        s->wait_lsn = last;
    if (srv->current == s)
        return;
    session_flush(s);
    if (!s->closing && s->in.len > 0)
        session_process(s); /* what it sent meanwhile */
}

static void server_ll_log(void *arg, int level, const char *line)
{
    (void)arg;
    srv_log(level, "%s", line);
}

static uint64_t server_ll_durable_lsn(void *arg)
{
    struct server *srv = arg;
    return srv->cfg.fsync == CONFIG_FSYNC_NO ? UINT64_MAX : srv->durable_lsn;
}

/* A cluster (either mode) takes the data commands and its own commands of
 * an authenticated connection (true: handled, maybe still waiting);
 * connection and server commands run here, RESET after it has put the
 * mode's session state back to its defaults. */
static bool server_cluster_route(struct server *srv, struct session *s)
{
    bool auth_ok = srv->cfg.requirepass[0] == '\0' || s->cc.authenticated;
    if (!auth_ok)
        return false; /* cmd_exec answers NOAUTH */
    char **argv = s->parser.argv;
    size_t *argvlen = s->parser.argvlen;
    if (argvlen[0] == 5 && strncasecmp(argv[0], "RESET", 5) == 0) {
        if (srv->ll != NULL) {
            ll_session_reset(&s->ls);
        } else {
            /* back to the defaults (the floor stays: it only ever helps) */
            s->cs.ack = 0;
            s->cs.readonly = false;
            cluster_session_unwatch(&s->cs);
        }
        return false;
    }
    uint64_t req_id = server_next_req_id(srv, s);
    s->cluster_req = req_id;
    s->cluster_wait = true;
    if (srv->ll != NULL) {
        enum ll_outcome o = ll_command(srv->ll, &s->ls, &s->cc, req_id, s->parser.argc, argv,
                                       argvlen);
        if (o != LL_PENDING)
            s->cluster_wait = false;
        return o != LL_LOCAL;
    }
    bool in_multi = (s->cc.flags & CMD_CLIENT_MULTI) != 0;
    enum cluster_outcome o = cluster_command(srv->cluster, &s->cs, &s->cc, req_id,
                                             s->parser.argc, argv, argvlen);
    if (o != CLUSTER_PENDING)
        s->cluster_wait = false;
    if (in_multi && o != CLUSTER_LOCAL)
        cmd_discard_transaction(&srv->cmd, &s->cc); /* EXEC went to the log (or was refused) */
    return o != CLUSTER_LOCAL;
}

/* Warm the cache for the keys of the next requests in data[0..len) (a
 * pipeline): their lookups then overlap their cache misses instead of
 * waiting for each in turn. Returns the bytes the requests looked at span. */
static size_t session_prefetch(struct session *s, const char *data, size_t len)
{
    struct resp_key keys[SESSION_PREFETCH_MAX];
    uint64_t hash[SESSION_PREFETCH_MAX];
    size_t scanned;
    size_t n = resp_peek_keys(data, len, keys, SESSION_PREFETCH_MAX, &scanned);
    if (n < 2)
        return scanned; /* a lone request: nothing to overlap */
    const struct kv *kv = s->srv->cmd.db[s->cc.db];
    for (size_t i = 0; i < n; i++)
        if (keys[i].ptr != NULL)
            hash[i] = kv_prefetch_bucket(kv, keys[i].ptr, keys[i].len);
    for (size_t i = 0; i < n; i++)
        if (keys[i].ptr != NULL)
            kv_prefetch_entry(kv, hash[i]);
    return scanned;
}

/* Parse and run the commands in data[0..len), as far as the session may go
 * on; returns the bytes consumed and sets *produced if replies were made. */
static size_t session_run(struct session *s, const char *data, size_t len, bool *produced)
{
    struct server *srv = s->srv;
    size_t off = 0, prefetched = 0;
    int ncmds = 0;

    srv->cmd.now_ms = wall_ms();
    s->last_ms = srv->cmd.now_ms;
    while (!s->closing && off < len) {
        if (s->cc.flags & CMD_CLIENT_CLOSE_AFTER_REPLY)
            break;
        if (s->cluster_wait)
            break;
        if (s->out.len + (s->wbuf.len - s->wbuf_off) >= SESSION_OUT_PAUSE_BYTES) {
            /* the client isn't reading its replies: stop until it does */
            if (s->reading) {
                uv_read_stop((uv_stream_t *)&s->tcp);
                s->reading = false;
            }
            break;
        }
        if (off >= prefetched && resp_parser_idle(&s->parser))
            prefetched = off + session_prefetch(s, data + off, len - off);
        /* Derived afresh before every parse rather than set at AUTH: the
         * command just run may have been AUTH, HELLO AUTH or RESET, and any
         * client's CONFIG SET requirepass changes it for every session. */
        s->parser.auth_required = srv->cfg.requirepass[0] != '\0' && !s->cc.authenticated;
        size_t consumed = 0;
        int rc = resp_parse(&s->parser, data + off, len - off, &consumed);
        off += consumed;
        if (rc == TRIAD_EAGAIN)
            break;
        if (rc == TRIAD_EPROTO) {
            srv_log(LOG_VERBOSE, "client %s: %s", s->addr, s->parser.errmsg);
            /* through resp_add_errorf, which turns CR and LF into spaces:
             * errmsg may quote the client's bytes, and one of those must
             * never end the error line early */
            resp_add_errorf(&s->out, "ERR %s", s->parser.errmsg);
            s->cc.flags |= CMD_CLIENT_CLOSE_AFTER_REPLY;
            *produced = true;
            off = len; /* drop the rest, as Redis does */
            break;
        }
        if (s->parser.argc == 0)
            continue;
        srv->current = s;
        if ((srv->cluster != NULL || srv->ll != NULL) && server_cluster_route(srv, s)) {
            srv->current = NULL;
            *produced = true;
            if (s->cluster_wait)
                break; /* the rest waits for this answer */
            continue;
        }
        cmd_exec(&srv->cmd, &s->cc, s->parser.argc, s->parser.argv, s->parser.argvlen);
        srv->current = NULL;
        *produced = true;
        if (++ncmds >= SESSION_BATCH_COMMANDS_MAX) {
            /* keep latency fair: flush what we have; more follows below */
            ncmds = 0;
            srv->cmd.now_ms = wall_ms();
        }
    }
    return off;
}

/* After session_run: enforce the query buffer limit, and queue the replies
 * to leave at the end of the loop turn. */
static void session_after_run(struct session *s, bool produced)
{
    struct server *srv = s->srv;
    if (s->closing)
        return;
    /* what the client sent and we hold unexecuted: the query buffer plus
     * the part of a request the parser has already taken into its arena */
    size_t held = s->in.len + s->parser.arena.len;
    if (held > (size_t)srv->cfg.client_query_buffer_limit) {
        srv_log(LOG_WARNING, "Closing client %s that reached max query buffer length (%zu bytes)",
                s->addr, held);
        session_close(s);
        return;
    }
    if (produced) {
        /* Every reply just produced waits for everything applied so far. */
        uint64_t last = wal_last_lsn(srv->wal);
        if (last > s->wait_lsn)
            s->wait_lsn = last;
    }
    squeue_push(&srv->flushing, &s->flush_link);
}

/* Run what the session's own query buffer holds. */
static void session_process(struct session *s)
{
    bool produced = false;
    size_t off = session_run(s, s->in.data, s->in.len, &produced);
    tbuf_consume(&s->in, off);
    if (s->in.len == 0 && s->in.cap > 0)
        tbuf_free(&s->in); /* reads go to the shared buffer again */
    session_after_run(s, produced);
}

/* A session with nothing left over reads into the server's shared read
 * buffer, as big as SERVER_READ_BYTES, and keeps only what it could not
 * parse yet: an idle connection holds no query buffer, and a pipeline of
 * big values arrives in one read. A session with bytes left over, or in
 * the middle of a payload longer than the shared buffer, reads into its
 * own buffer. */
static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    struct session *s = h->data;
    struct server *srv = s->srv;
    size_t hint = resp_parse_hint(&s->parser);
    if (s->in.len == 0 && hint <= SERVER_READ_BYTES) {
        *buf = uv_buf_init(srv->rbuf, SERVER_READ_BYTES);
        return;
    }
    size_t want = SESSION_READ_CHUNK_BYTES;
    if (hint > want)
        want = TRIAD_MIN(hint, (size_t)64 * 1024 * 1024);
    if (s->in.cap - s->in.len < want)
        tbuf_reserve(&s->in, want);
    size_t room = s->in.cap - s->in.len;
    buf->base = s->in.data + s->in.len;
    buf->len = TRIAD_MIN(room, (size_t)UINT_MAX);
}

static void on_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf)
{
    struct session *s = stream->data;
    struct server *srv = s->srv;
    if (nread == 0)
        return;
    if (nread < 0) {
        if (nread != UV_EOF)
            srv_log(LOG_VERBOSE, "client %s read error: %s", s->addr, uv_strerror((int)nread));
        session_close(s);
        return;
    }
    srv->net_input_bytes += (uint64_t)nread;
    if (buf->base != srv->rbuf) {
        s->in.len += (size_t)nread;
        session_process(s);
    } else {
        bool produced = false;
        size_t off = session_run(s, srv->rbuf, (size_t)nread, &produced);
        if (off < (size_t)nread && !s->closing)
            tbuf_append(&s->in, srv->rbuf + off, (size_t)nread - off);
        session_after_run(s, produced);
    }
    syncer_hand_over(srv, SYNCER_CHUNK_BYTES, true);
}

static void session_start_reading(struct session *s)
{
    if (s->reading || s->closing)
        return;
    if (uv_read_start((uv_stream_t *)&s->tcp, on_alloc, on_read) == 0)
        s->reading = true;
    else
        session_close(s);
}

static void format_addr(const struct sockaddr_storage *ss, char *out, size_t outlen)
{
    char host[INET6_ADDRSTRLEN] = "?";
    int port = 0;
    if (ss->ss_family == AF_INET) {
        const struct sockaddr_in *a = (const struct sockaddr_in *)ss;
        uv_ip4_name(a, host, sizeof(host));
        port = ntohs(a->sin_port);
    } else if (ss->ss_family == AF_INET6) {
        const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)ss;
        uv_ip6_name(a, host, sizeof(host));
        port = ntohs(a->sin6_port);
    }
    snprintf(out, outlen, "%s:%d", host, port);
}

static void on_reject_closed(uv_handle_t *h)
{
    tfree(h);
}

static void session_take_slot(struct server *srv, struct session *s)
{
    if (srv->nfree == 0) {
        uint32_t n = srv->nslots ? srv->nslots * 2 : 1024;
        TRIAD_ASSERT(n <= SERVER_SLOT_MASK + 1u);
        srv->slots = trealloc(srv->slots, n * sizeof(*srv->slots));
        srv->free_slots = trealloc(srv->free_slots, n * sizeof(*srv->free_slots));
        for (uint32_t i = n; i > srv->nslots; i--) {
            srv->slots[i - 1] = NULL;
            srv->free_slots[srv->nfree++] = i - 1;
        }
        srv->nslots = n;
    }
    s->slot = srv->free_slots[--srv->nfree];
    srv->slots[s->slot] = s;
}

static void on_connection(uv_stream_t *listener, int status)
{
    struct server *srv = listener->data;
    if (status < 0) {
        srv_log(LOG_WARNING, "accept error: %s", uv_strerror(status));
        return;
    }
    if (srv->shutting_down)
        return;
    if (srv->nsessions >= (size_t)srv->cfg.maxclients) {
        /* Accept, say why, close: as Redis does at maxclients. */
        uv_tcp_t *t = tmalloc(sizeof(*t));
        uv_tcp_init(srv->loop, t);
        if (uv_accept(listener, (uv_stream_t *)t) == 0) {
            uv_buf_t b = uv_buf_init("-ERR max number of clients reached\r\n", 36);
            uv_try_write((uv_stream_t *)t, &b, 1);
        }
        srv->rejected_connections++;
        uv_close((uv_handle_t *)t, on_reject_closed);
        return;
    }
    struct session *s = tcalloc(1, sizeof(*s));
    s->srv = srv;
    s->wait_link.s = s->flush_link.s = s;
    session_take_slot(srv, s);
    uv_tcp_init(srv->loop, &s->tcp);
    s->tcp.data = s;
    if (uv_accept(listener, (uv_stream_t *)&s->tcp) != 0) {
        srv->slots[s->slot] = NULL;
        srv->free_slots[srv->nfree++] = s->slot;
        uv_close((uv_handle_t *)&s->tcp, on_reject_closed);
        return;
    }
    uv_tcp_nodelay(&s->tcp, 1);
    if (srv->cfg.tcp_keepalive_s > 0)
        uv_tcp_keepalive(&s->tcp, 1, (unsigned)srv->cfg.tcp_keepalive_s);
    struct sockaddr_storage ss;
    int len = sizeof(ss);
    if (uv_tcp_getpeername(&s->tcp, (struct sockaddr *)&ss, &len) == 0)
        format_addr(&ss, s->addr, sizeof(s->addr));
    len = sizeof(ss);
    if (uv_tcp_getsockname(&s->tcp, (struct sockaddr *)&ss, &len) == 0)
        format_addr(&ss, s->laddr, sizeof(s->laddr));
    resp_parser_init(&s->parser);
    s->parser.proto_max_bulk_len = srv->cfg.proto_max_bulk_len;
    cmd_client_init(&s->cc, ++srv->next_client_id, &s->out);
    /* As Redis's default user: a client that connects while no password is
     * set is authenticated, and stays so if one is set later. */
    s->cc.authenticated = srv->cfg.requirepass[0] == '\0';
    s->created_ms = s->last_ms = wall_ms();
    s->next = srv->sessions;
    if (srv->sessions)
        srv->sessions->prev = s;
    srv->sessions = s;
    srv->nsessions++;
    srv->total_connections++;
    session_start_reading(s);
}

/* ---- snapshots ---- */

static uint64_t snapshot_file_bytes(struct server *srv, uint64_t lsn)
{
    char path[CONFIG_STR_MAX + 64];
    struct stat st;
    snprintf(path, sizeof(path), "%.*s/snap-%020llu.snap", CONFIG_STR_MAX, srv->cfg.dir,
             (unsigned long long)lsn);
    return stat(path, &st) == 0 ? (uint64_t)st.st_size : 0;
}

/* A snapshot rewrites the whole dataset, so it is worth it once the WAL has
 * grown by both snapshot-wal-bytes and snapshot-wal-percentage of the last
 * snapshot (Redis's auto-aof-rewrite-min-size and -percentage): write
 * amplification stays bounded however large the dataset. */
static bool server_snapshot_due(struct server *srv)
{
    if (srv->cfg.snapshot_wal_bytes <= 0 || srv->child_pid != 0)
        return false;
    uint64_t need = (uint64_t)srv->cfg.snapshot_wal_bytes;
    uint64_t rel = srv->snapshot_bytes / 100 * (uint64_t)srv->cfg.snapshot_wal_percentage;
    if (rel > need)
        need = rel;
    return srv->wal_bytes_since_snapshot >= need;
}

static int server_snapshot_sync(struct server *srv, char *errmsg, size_t errlen)
{
    /* leader mode's data lives in its Raft log, which compacts itself */
    TRIAD_ASSERT(srv->cluster == NULL);
    uint64_t lsn = wal_last_lsn(srv->wal);
    int64_t t0 = wall_ms();
    uint64_t bytes = 0;
    int rc = snap_write(srv->cfg.dir, lsn, srv->cmd.db, srv->cmd.databases, wall_ms(), &bytes,
                        errmsg, errlen);
    if (rc != 0) {
        srv->last_snapshot_ok = false;
        return rc;
    }
    srv->snapshot_lsn = lsn;
    srv->snapshot_bytes = bytes;
    srv->last_snapshot_s = (long long)time(NULL);
    srv->last_snapshot_ok = true;
    srv->dirty_at_snapshot = srv->cmd.dirty;
    srv->wal_bytes_since_snapshot = 0;
    snap_remove_older(srv->cfg.dir, lsn, srv->reaper);
    wal_remove_before(srv->wal, lsn);
    srv_log(LOG_NOTICE, "snapshot at lsn %" PRIu64 " written (%" PRIu64 " bytes, %lld ms)", lsn,
            bytes, (long long)(wall_ms() - t0));
    return 0;
}

/* While a snapshot child shares the keyspace's memory. */
static void server_resize_avoid(struct server *srv, bool avoid)
{
    for (int i = 0; i < srv->cmd.databases; i++)
        kv_set_resize_avoid(srv->cmd.db[i], avoid);
}

static int server_snapshot_background(struct server *srv, char *errmsg, size_t errlen)
{
    TRIAD_ASSERT(srv->cluster == NULL); /* as server_snapshot_sync */
    if (srv->child_pid > 0) {
        snprintf(errmsg, errlen, "Background save already in progress");
        return -1;
    }
    uint64_t lsn = wal_last_lsn(srv->wal);
    pid_t pid = proc_fork(-1);
    if (pid < 0) {
        snprintf(errmsg, errlen, "fork failed: %s", strerror(errno));
        return -1;
    }
    if (pid == 0) {
        /* The child: its memory is the keyspace as of `lsn`. It writes the
         * snapshot and leaves without running any of the parent's exit
         * code (no atexit handlers, no WAL, no sockets; proc_fork closed
         * the parent's descriptors, lock and listener with them). At the
         * lowest priority, on a busy machine the snapshot takes longer
         * (the WAL grows meanwhile) instead of taking CPU from the server
         * it is a copy of. */
        char err[256];
        int rc = snap_write(srv->cfg.dir, lsn, srv->cmd.db, srv->cmd.databases, wall_ms(), NULL,
                            err, sizeof(err));
        if (rc != 0) {
            fprintf(stderr, "triad: snapshot failed: %s\n", err);
            _exit(1);
        }
        _exit(0);
    }
    srv->child_pid = pid;
    server_resize_avoid(srv, true);
    srv->child_lsn = lsn;
    srv->child_start_ms = wall_ms();
    srv->wal_bytes_since_snapshot = 0;
    srv->dirty_at_snapshot = srv->cmd.dirty;
    srv_log(LOG_NOTICE, "background snapshot at lsn %" PRIu64 " started by pid %d", lsn, (int)pid);
    return 0;
}

static void server_check_child(struct server *srv)
{
    if (srv->child_pid <= 0)
        return;
    int status;
    pid_t r = waitpid(srv->child_pid, &status, WNOHANG);
    if (r == 0)
        return;
    bool ok = r == srv->child_pid && WIFEXITED(status) && WEXITSTATUS(status) == 0;
    srv->child_pid = 0;
    server_resize_avoid(srv, false);
    srv->last_snapshot_ok = ok;
    if (!ok) {
        srv_log(LOG_WARNING, "background snapshot failed");
        return;
    }
    srv->snapshot_lsn = srv->child_lsn;
    srv->snapshot_bytes = snapshot_file_bytes(srv, srv->child_lsn);
    srv->last_snapshot_s = (long long)time(NULL);
    snap_remove_older(srv->cfg.dir, srv->child_lsn, srv->reaper);
    wal_remove_before(srv->wal, srv->child_lsn);
    srv_log(LOG_NOTICE, "background snapshot at lsn %" PRIu64 " done in %lld ms", srv->child_lsn,
            (long long)(wall_ms() - srv->child_start_ms));
}

/* Says in the log when the reaper could not delete a file: it stays on
 * disk (a WAL segment with every newer one), and a later snapshot tries
 * again. */
static void server_check_reaper(struct server *srv)
{
    struct reaper_stats st;
    char last[512];
    reaper_stats(srv->reaper, &st, last, sizeof(last));
    if (st.failed == srv->reaper_failed)
        return;
    srv_log(LOG_WARNING,
            "%" PRIu64 " old file(s) could not be deleted (%" PRIu64
            " kept behind them so far), the last: %s",
            st.failed - srv->reaper_failed, st.kept, last);
    srv->reaper_failed = st.failed;
}

/* ---- cron ---- */

static void server_shutdown(struct server *srv, bool save);
static void server_sample_cpu_pressure(struct server *srv);

static void on_cron(uv_timer_t *t)
{
    struct server *srv = t->data;
    srv->cmd.now_ms = wall_ms();

    syncer_kick(srv); /* what `fsync no` left pending, at least every tick */
    syncer_release_if_idle(srv);
    cmd_active_expire(&srv->cmd, EXPIRE_KEYS_PER_TICK_MAX);
    for (int i = 0; i < srv->cmd.databases; i++)
        kv_rehash_step(srv->cmd.db[i], 100);

    server_sample_cpu_pressure(srv);
    server_check_child(srv);
    server_check_reaper(srv);
    if (srv->cluster == NULL && server_snapshot_due(srv)) {
        char err[256];
        if (server_snapshot_background(srv, err, sizeof(err)) != 0)
            srv_log(LOG_WARNING, "can't start a background snapshot: %s", err);
    }

    int64_t now = srv->cmd.now_ms;
    if (now - srv->ops_last_ms >= 100) {
        uint64_t c = srv->cmd.stats.commands_processed;
        uint64_t ops = (c - srv->ops_last_count) * 1000 / (uint64_t)(now - srv->ops_last_ms);
        srv->ops_samples[srv->ops_idx++ % OPS_SAMPLES] = ops;
        srv->ops_last_count = c;
        srv->ops_last_ms = now;
    }
    size_t used = tmem_used();
    if (used > srv->peak_memory)
        srv->peak_memory = used;

    if (srv->cfg.timeout_s > 0) {
        struct session *s = srv->sessions;
        while (s) {
            struct session *next = s->next;
            if (!(s->cc.flags & CMD_CLIENT_MULTI) &&
                now - s->last_ms > (int64_t)srv->cfg.timeout_s * 1000) {
                srv_log(LOG_VERBOSE, "closing idle client %s", s->addr);
                session_close(s);
            }
            s = next;
        }
    }
}

/* ---- hooks for the command layer ---- */

static void human_bytes(char *out, size_t outlen, double n)
{
    if (n < 1024)
        snprintf(out, outlen, "%.0fB", n);
    else if (n < 1024 * 1024)
        snprintf(out, outlen, "%.2fK", n / 1024);
    else if (n < 1024.0 * 1024 * 1024)
        snprintf(out, outlen, "%.2fM", n / (1024 * 1024));
    else
        snprintf(out, outlen, "%.2fG", n / (1024.0 * 1024 * 1024));
}

static size_t rss_bytes(void)
{
    FILE *f = fopen("/proc/self/statm", "r");
    if (!f)
        return 0;
    unsigned long size = 0, resident = 0;
    if (fscanf(f, "%lu %lu", &size, &resident) != 2)
        resident = 0;
    fclose(f);
    return (size_t)resident * (size_t)sysconf(_SC_PAGESIZE);
}

static bool info_wants(int argc, char **argv, const char *section, bool is_default)
{
    if (argc == 0)
        return is_default;
    for (int i = 0; i < argc; i++) {
        if (strcasecmp(argv[i], section) == 0 || strcasecmp(argv[i], "all") == 0 ||
            strcasecmp(argv[i], "everything") == 0)
            return true;
        if (strcasecmp(argv[i], "default") == 0 && is_default)
            return true;
    }
    return false;
}

static void hook_info(void *arg, struct cmd_client *c, int argc, char **argv, size_t *argvlen,
                      struct tbuf *t)
{
    struct server *srv = arg;
    int64_t now = wall_ms();
    bool first = true;
#define SECTION(name)                  \
    do {                               \
        if (!first)                    \
            tbuf_appends(t, "\r\n");   \
        first = false;                 \
        tbuf_appends(t, "# " name "\r\n"); \
    } while (0)

    if (info_wants(argc, argv, "server", true)) {
        struct utsname u;
        uname(&u);
        SECTION("Server");
        int64_t up = (now - srv->start_ms) / 1000;
        struct timeval tv;
        gettimeofday(&tv, NULL);
        long long now_us = (long long)tv.tv_sec * 1000000 + tv.tv_usec;
        char exe[PATH_MAX] = "";
        ssize_t el = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
        exe[el > 0 ? el : 0] = '\0';
        tbuf_appendf(t,
                     "redis_version:%s\r\ntriad_version:%s\r\nredis_mode:standalone\r\n"
                     "os:%s %s %s\r\narch_bits:%d\r\nmultiplexing_api:libuv %s\r\n"
                     "process_id:%d\r\nrun_id:%s\r\ntcp_port:%d\r\nserver_time_usec:%lld\r\n"
                     "uptime_in_seconds:%lld\r\nuptime_in_days:%lld\r\nhz:%d\r\n"
                     "executable:%s\r\nconfig_file:%s\r\nnode_name:%s\r\n",
                     TRIAD_REDIS_COMPAT_VERSION, TRIAD_VERSION, u.sysname, u.release, u.machine,
                     (int)(sizeof(void *) * 8), uv_version_string(), (int)getpid(), srv->run_id,
                     srv->cfg.port, now_us, (long long)up, (long long)(up / 86400),
                     srv->cfg.hz, exe, srv->cfg.config_file, srv->cfg.name);
    }
    if (info_wants(argc, argv, "clients", true)) {
        SECTION("Clients");
        tbuf_appendf(t,
                     "connected_clients:%zu\r\nmaxclients:%d\r\nblocked_clients:0\r\n"
                     "clients_waiting_for_durability:%zu\r\n",
                     srv->nsessions, srv->cfg.maxclients, srv->waiting.n);
    }
    if (info_wants(argc, argv, "memory", true)) {
        SECTION("Memory");
        size_t used = tmem_used(), rss = rss_bytes();
        if (used > srv->peak_memory)
            srv->peak_memory = used;
        char h1[32], h2[32], h3[32], h4[32];
        human_bytes(h1, sizeof(h1), (double)used);
        human_bytes(h2, sizeof(h2), (double)rss);
        human_bytes(h3, sizeof(h3), (double)srv->peak_memory);
        human_bytes(h4, sizeof(h4), (double)srv->cfg.maxmemory);
        size_t dataset = 0;
        for (int i = 0; i < srv->cmd.databases; i++)
            dataset += kv_mem_bytes(srv->cmd.db[i]);
        tbuf_appendf(t,
                     "used_memory:%zu\r\nused_memory_human:%s\r\nused_memory_rss:%zu\r\n"
                     "used_memory_rss_human:%s\r\nused_memory_peak:%zu\r\n"
                     "used_memory_peak_human:%s\r\nused_memory_dataset:%zu\r\n"
                     "maxmemory:%lld\r\nmaxmemory_human:%s\r\nmaxmemory_policy:noeviction\r\n"
                     "mem_fragmentation_ratio:%.2f\r\nmem_allocator:libc\r\n",
                     used, h1, rss, h2, srv->peak_memory, h3, dataset, srv->cfg.maxmemory, h4,
                     used ? (double)rss / (double)used : 0.0);
    }
    if (info_wants(argc, argv, "persistence", true)) {
        SECTION("Persistence");
        size_t segs = 0;
        uint64_t wbytes = 0;
        wal_stats(srv->wal, &segs, &wbytes);
        struct syncer *sy = &srv->syncer;
        pthread_mutex_lock(&sy->mu);
        uint64_t written = sy->written_lsn, synced = sy->synced_lsn;
        pthread_mutex_unlock(&sy->mu);
        bool direct, huge;
        wal_io_mode(srv->wal, &direct, &huge);
        tbuf_appendf(t,
                     "loading:0\r\nrdb_changes_since_last_save:%llu\r\n"
                     "rdb_bgsave_in_progress:%d\r\nrdb_last_save_time:%lld\r\n"
                     "rdb_last_bgsave_status:%s\r\naof_enabled:1\r\n"
                     "wal_enabled:1\r\nwal_fsync:%s\r\nwal_last_lsn:%llu\r\n"
                     "wal_written_lsn:%llu\r\nwal_synced_lsn:%llu\r\nwal_segments:%zu\r\n"
                     "wal_bytes:%llu\r\nwal_bytes_since_snapshot:%llu\r\nsnapshot_lsn:%llu\r\n"
                     "snapshot_bytes:%llu\r\nwal_loop_writes:%llu\r\nwal_direct_io:%d\r\n"
                     "wal_huge_pages:%d\r\n",
                     (unsigned long long)(srv->cmd.dirty - srv->dirty_at_snapshot),
                     srv->child_pid > 0 ? 1 : 0, srv->last_snapshot_s,
                     srv->last_snapshot_ok ? "ok" : "err", config_fsync_name(srv->cfg.fsync),
                     (unsigned long long)wal_last_lsn(srv->wal), (unsigned long long)written,
                     (unsigned long long)synced, segs, (unsigned long long)wbytes,
                     (unsigned long long)srv->wal_bytes_since_snapshot,
                     (unsigned long long)srv->snapshot_lsn,
                     (unsigned long long)srv->snapshot_bytes,
                     (unsigned long long)srv->wal_loop_writes, direct ? 1 : 0, huge ? 1 : 0);
    }
    if (info_wants(argc, argv, "stats", true)) {
        SECTION("Stats");
        uint64_t ops = 0;
        for (int i = 0; i < OPS_SAMPLES; i++)
            ops += srv->ops_samples[i];
        const struct cmd_stats *st = &srv->cmd.stats;
        tbuf_appendf(t,
                     "total_connections_received:%llu\r\ntotal_commands_processed:%llu\r\n"
                     "instantaneous_ops_per_sec:%llu\r\ntotal_net_input_bytes:%llu\r\n"
                     "total_net_output_bytes:%llu\r\nrejected_connections:%llu\r\n"
                     "expired_keys:%llu\r\nevicted_keys:0\r\nkeyspace_hits:%llu\r\n"
                     "keyspace_misses:%llu\r\ntotal_error_replies:%llu\r\n"
                     "total_rejected_calls:%llu\r\nidle_poll_window_us:%llu\r\n"
                     "idle_poll_cpu_contended:%d\r\n",
                     (unsigned long long)srv->total_connections,
                     (unsigned long long)st->commands_processed,
                     (unsigned long long)(ops / OPS_SAMPLES),
                     (unsigned long long)srv->net_input_bytes,
                     (unsigned long long)srv->net_output_bytes,
                     (unsigned long long)srv->rejected_connections,
                     (unsigned long long)st->expired_keys, (unsigned long long)st->keyspace_hits,
                     (unsigned long long)st->keyspace_misses, (unsigned long long)st->errors,
                     (unsigned long long)st->rejected_calls,
                     (unsigned long long)(idlepoll_window(&srv->idlepoll) / 1000),
                     idlepoll_contended(&srv->idlepoll) ? 1 : 0);
    }
    if (info_wants(argc, argv, "replication", true)) {
        SECTION("Replication");
        if (srv->cluster != NULL)
            cluster_info(srv->cluster, t);
        else
            tbuf_appendf(t,
                         "role:master\r\nconnected_slaves:0\r\nmaster_replid:%s\r\n"
                         "master_repl_offset:%llu\r\n",
                         srv->run_id, (unsigned long long)wal_last_lsn(srv->wal));
    }
    if (srv->ll != NULL && info_wants(argc, argv, "leaderless", true)) {
        SECTION("Leaderless");
        ll_info(srv->ll, t);
    }
    if (info_wants(argc, argv, "cpu", true)) {
        SECTION("CPU");
        struct rusage ru;
        getrusage(RUSAGE_SELF, &ru);
        tbuf_appendf(t, "used_cpu_sys:%ld.%06ld\r\nused_cpu_user:%ld.%06ld\r\n",
                     (long)ru.ru_stime.tv_sec, (long)ru.ru_stime.tv_usec,
                     (long)ru.ru_utime.tv_sec, (long)ru.ru_utime.tv_usec);
    }
    if (info_wants(argc, argv, "commandstats", false)) {
        SECTION("Commandstats");
        const struct cmd_stats *st = &srv->cmd.stats;
        for (int i = 0; i < st->ncmdstats; i++) {
            const struct cmd_cmdstat *cs = &st->cmdstats[i];
            tbuf_appendf(t,
                         "cmdstat_%s:calls=%llu,usec=%llu,usec_per_call=%.2f,rejected_calls=%llu,"
                         "failed_calls=%llu\r\n",
                         cs->name, (unsigned long long)cs->calls, (unsigned long long)cs->usec,
                         cs->calls ? (double)cs->usec / (double)cs->calls : 0.0,
                         (unsigned long long)cs->rejected, (unsigned long long)cs->failed);
        }
    }
    if (info_wants(argc, argv, "errorstats", true)) {
        SECTION("Errorstats");
        const struct cmd_stats *st = &srv->cmd.stats;
        for (int i = 0; i < st->nerrorstats; i++)
            tbuf_appendf(t, "errorstat_%s:count=%llu\r\n", st->errorstats[i].code,
                         (unsigned long long)st->errorstats[i].count);
    }
    if (info_wants(argc, argv, "keyspace", true)) {
        SECTION("Keyspace");
        for (int i = 0; i < srv->cmd.databases && srv->cluster != NULL; i++) {
            size_t expires, n = cluster_keys(srv->cluster, i, &expires);
            if (n != 0)
                tbuf_appendf(t, "db%d:keys=%zu,expires=%zu,avg_ttl=0\r\n", i, n, expires);
        }
        /* leaderless mode: database 0 holds the objects (tombstones too),
         * database 1 the hints, which are not client data */
        int dbs = srv->ll != NULL ? 1 : srv->cmd.databases;
        for (int i = 0; i < dbs && srv->cluster == NULL; i++) {
            size_t n = kv_count(srv->cmd.db[i]);
            if (n == 0)
                continue;
            tbuf_appendf(t, "db%d:keys=%zu,expires=%zu,avg_ttl=%lld\r\n", i, n,
                         kv_expires_count(srv->cmd.db[i]),
                         (long long)kv_avg_ttl_ms(srv->cmd.db[i], now));
        }
    }
#undef SECTION
}

static void hook_config_get(void *arg, const char *pattern,
                            void (*emit)(void *e, const char *name, const char *value), void *e)
{
    struct server *srv = arg;
    config_get(&srv->cfg, pattern, emit, e);
}

/* Apply every pair to a copy and commit only if all of them are valid, so a
 * failed CONFIG SET changes nothing (as in Redis). */
static int hook_config_set(void *arg, int npairs, char **names, char **values, char *errmsg,
                           size_t errlen)
{
    struct server *srv = arg;
    struct config next = srv->cfg;
    for (int i = 0; i < npairs; i++)
        if (config_set(&next, names[i], values[i], errmsg, errlen) != 0)
            return -1;
    srv->cfg = next;
    /* push the new values to where they are used */
    srv->cmd.maxmemory = (uint64_t)srv->cfg.maxmemory;
    srv->cmd.proto_max_bulk_len = (uint64_t)srv->cfg.proto_max_bulk_len;
    srv->cmd.requirepass = srv->cfg.requirepass;
    pthread_mutex_lock(&srv->syncer.mu);
    srv->syncer.policy = srv->cfg.fsync;
    uint64_t target = server_durable_target(srv);
    pthread_cond_signal(&srv->syncer.cv);
    pthread_mutex_unlock(&srv->syncer.mu);
    /* The new policy's own point, even when lower: under `no` it is "all"
     * (replies do not wait), and kept after a switch to a stricter policy
     * it let replies leave before their records were written or synced. */
    srv->durable_lsn = target;
    for (struct session *s = srv->sessions; s; s = s->next)
        s->parser.proto_max_bulk_len = srv->cfg.proto_max_bulk_len;
    uv_timer_set_repeat(&srv->cron, (uint64_t)(1000 / srv->cfg.hz));
    server_release_waiting(srv);
    return 0;
}

static void hook_config_resetstat(void *arg)
{
    struct server *srv = arg;
    memset(&srv->cmd.stats, 0, sizeof(srv->cmd.stats));
    srv->total_connections = 0;
    srv->rejected_connections = 0;
    srv->net_input_bytes = srv->net_output_bytes = 0;
}

static struct session *session_of(struct cmd_client *c)
{
    return (struct session *)((char *)c - offsetof(struct session, cc));
}

static int session_fd(struct session *s)
{
    uv_os_fd_t fd;
    if (uv_fileno((uv_handle_t *)&s->tcp, &fd) != 0)
        return -1;
    return (int)fd;
}

static void client_line(struct server *srv, struct session *s, struct tbuf *t)
{
    int64_t now = wall_ms();
    const char *name = s->cc.name ? s->cc.name : "";
    char flags[8];
    int nf = 0;
    if (s->cc.flags & CMD_CLIENT_MULTI)
        flags[nf++] = 'x';
    if (s->cc.flags & CMD_CLIENT_DIRTY_CAS)
        flags[nf++] = 'd';
    if (s->cc.flags & CMD_CLIENT_CLOSE_AFTER_REPLY)
        flags[nf++] = 'c';
    if (s->cc.flags & CMD_CLIENT_NO_EVICT)
        flags[nf++] = 'e';
    if (s->cc.flags & CMD_CLIENT_NO_TOUCH)
        flags[nf++] = 'T';
    if (nf == 0)
        flags[nf++] = 'N';
    flags[nf] = '\0';
    char cmdname[64];
    const char *lc = s->cc.last_cmd ? s->cc.last_cmd : "NULL";
    size_t n = 0;
    for (; lc[n] && n < 32; n++)
        cmdname[n] = (char)tolower((unsigned char)lc[n]);
    cmdname[n] = '\0';
    if (s->cc.last_sub[0])
        snprintf(cmdname + n, sizeof(cmdname) - n, "|%s", s->cc.last_sub);
    tbuf_appendf(t,
                 "id=%llu addr=%s laddr=%s fd=%d name=%s age=%lld idle=%lld flags=%s db=%d "
                 "sub=0 psub=0 ssub=0 multi=%d qbuf=%zu qbuf-free=%zu argv-mem=0 multi-mem=0 "
                 "rbs=%zu rbp=0 obl=0 oll=0 omem=%zu tot-mem=%zu events=r cmd=%s user=default "
                 "redir=-1 resp=%d\n",
                 (unsigned long long)s->cc.id, s->addr, s->laddr,
                 session_fd(s), name, (long long)((now - s->created_ms) / 1000),
                 (long long)((now - s->last_ms) / 1000), flags, s->cc.db,
                 (s->cc.flags & CMD_CLIENT_MULTI) ? s->cc.queue_len : -1,
                 s->in.len + s->parser.arena.len, s->in.cap - s->in.len, s->in.cap,
                 s->out.len + s->wbuf.len,
                 sizeof(*s) + s->in.cap + s->parser.arena.cap + s->out.cap + s->wbuf.cap,
                 cmdname, s->cc.proto);
    (void)srv;
}

static void hook_client_list(void *arg, struct cmd_client *self, bool only_self,
                             const uint64_t *ids, size_t nids, struct tbuf *t)
{
    struct server *srv = arg;
    if (only_self) {
        client_line(srv, session_of(self), t);
        return;
    }
    /* oldest first, as Redis lists them */
    struct session *last = srv->sessions;
    while (last && last->next)
        last = last->next;
    for (struct session *s = last; s; s = s->prev) {
        if (nids > 0) {
            bool hit = false;
            for (size_t i = 0; i < nids; i++)
                hit = hit || ids[i] == s->cc.id;
            if (!hit)
                continue;
        }
        client_line(srv, s, t);
    }
}

static int hook_client_kill(void *arg, const struct cmd_kill_filter *f)
{
    struct server *srv = arg;
    int64_t now = wall_ms();
    int killed = 0;
    struct session *s = srv->sessions;
    while (s) {
        struct session *next = s->next;
        bool match = (f->id == 0 || f->id == s->cc.id) &&
                     (f->addr == NULL || strcmp(f->addr, s->addr) == 0) &&
                     (f->laddr == NULL || strcmp(f->laddr, s->laddr) == 0) &&
                     (f->skip_id == 0 || f->skip_id != s->cc.id) &&
                     (f->maxage_s == 0 || (now - s->created_ms) / 1000 > f->maxage_s);
        if (match) {
            /* the killer may be the victim: let the reply out first */
            s->cc.flags |= CMD_CLIENT_CLOSE_AFTER_REPLY;
            if (s->out.len == 0 && !s->write_in_flight && s != srv->current)
                session_close(s);
            killed++;
        }
        s = next;
    }
    return killed;
}

/* FLUSHALL/FLUSHDB ASYNC: free the old keyspace on libuv's thread pool.
 * Only the allocator is shared with the loop (the memory counter is
 * atomic), so nothing else needs a lock. */
struct lazyfree {
    uv_work_t req;
    struct kv *kv;
};

static void lazyfree_work(uv_work_t *req)
{
    struct lazyfree *lf = req->data;
    kv_free(lf->kv);
}

static void lazyfree_done(uv_work_t *req, int status)
{
    struct lazyfree *lf = req->data;
    if (status != 0)
        kv_free(lf->kv); /* cancelled at shutdown: free here */
    tfree(lf);
}

static void hook_free_async(void *arg, struct kv *kv)
{
    struct server *srv = arg;
    struct lazyfree *lf = tmalloc(sizeof(*lf));
    lf->kv = kv;
    lf->req.data = lf;
    if (uv_queue_work(srv->loop, &lf->req, lazyfree_work, lazyfree_done) != 0) {
        kv_free(kv);
        tfree(lf);
    }
}

static void hook_shutdown(void *arg, bool save)
{
    server_shutdown(arg, save);
}

static int hook_snapshot(void *arg, bool background, char *errmsg, size_t errlen)
{
    struct server *srv = arg;
    if (srv->cluster != NULL) {
        snprintf(errmsg, errlen, "in leader mode the log is compacted by the node itself");
        return -1;
    }
    if (background && cmd_record_open(&srv->cmd)) {
        /* Inside a transaction the keyspace may already hold writes whose
         * record has no lsn yet: a snapshot now would carry them under an
         * earlier lsn, and a restart would replay them a second time. It
         * starts once the command is over (on_check). */
        if (srv->child_pid > 0 || srv->snapshot_deferred) {
            snprintf(errmsg, errlen, "Background save already in progress");
            return -1;
        }
        srv->snapshot_deferred = true;
        return 0;
    }
    if (background)
        return server_snapshot_background(srv, errmsg, errlen);
    if (srv->child_pid > 0) {
        snprintf(errmsg, errlen, "Background save already in progress");
        return -1;
    }
    return server_snapshot_sync(srv, errmsg, errlen);
}

static long long hook_last_snapshot(void *arg)
{
    struct server *srv = arg;
    return srv->last_snapshot_s;
}

/* ---- start and stop ---- */

static void on_handle_closed(uv_handle_t *h)
{
    (void)h;
}

static void server_shutdown(struct server *srv, bool save)
{
    if (srv->shutting_down)
        return;
    srv->shutting_down = true;
    srv_log(LOG_WARNING, "shutting down: stop accepting, make the WAL durable, close");
    if (srv->cluster != NULL)
        cluster_stop(srv->cluster);
    if (srv->ll != NULL)
        ll_stop(srv->ll);
    uv_close((uv_handle_t *)&srv->listener, on_handle_closed);
    for (struct session *s = srv->sessions; s; s = s->next) {
        if (s->reading) {
            uv_read_stop((uv_stream_t *)&s->tcp);
            s->reading = false;
        }
    }
    if (srv->child_pid > 0) {
        proc_reap(srv->child_pid, true, NULL);
        srv->child_pid = 0;
    }
    /* Hand the last records to the fsync thread and let it finish: it writes
     * the job and makes everything durable before it exits. */
    struct syncer *sy = &srv->syncer;
    for (;;) {
        pthread_mutex_lock(&sy->mu);
        bool busy = sy->njobs > 0 || sy->writing;
        pthread_mutex_unlock(&sy->mu);
        if (!busy)
            break;
        usleep(1000);
    }
    syncer_kick(srv);
    pthread_mutex_lock(&sy->mu);
    sy->stop = true;
    pthread_cond_signal(&sy->cv);
    pthread_mutex_unlock(&sy->mu);
    pthread_join(sy->thread, NULL);
    while (sy->nspares > 0)
        wal_batch_free(&sy->spares[--sy->nspares]);
    if (sy->failed) {
        srv_log(LOG_WARNING, "WAL write failed during shutdown: %s", sy->errmsg);
        srv->exit_code = 1;
    } else {
        srv->durable_lsn = sy->synced_lsn;
        /* everything the node made is on disk: it may keep its actor id */
        if (srv->ll != NULL)
            ll_shutdown_clean(srv->ll);
    }
    /* In leader mode the data lives in the Raft log, which is durable now
     * and compacts itself: the single-node snapshot would be of the empty
     * local keyspace, and would remove the log's segments. */
    if (save && srv->cluster == NULL) {
        char err[256];
        if (server_snapshot_sync(srv, err, sizeof(err)) != 0)
            srv_log(LOG_WARNING, "snapshot at shutdown failed: %s", err);
    }
    /* Replies that are now durable get a last chance to leave. */
    server_flush_queued(srv);
    server_release_waiting(srv);
    struct session *s = srv->sessions;
    while (s) {
        struct session *next = s->next;
        session_close(s);
        s = next;
    }
    uv_close((uv_handle_t *)&srv->cron, on_handle_closed);
    uv_close((uv_handle_t *)&srv->prepare, on_handle_closed);
    uv_close((uv_handle_t *)&srv->check, on_handle_closed);
    uv_close((uv_handle_t *)&sy->async, on_handle_closed);
    uv_close((uv_handle_t *)&srv->sigterm, on_handle_closed);
    uv_close((uv_handle_t *)&srv->sigint, on_handle_closed);
}

static void on_signal(uv_signal_t *h, int signum)
{
    struct server *srv = h->data;
    srv_log(LOG_WARNING, "received %s", signum == SIGINT ? "SIGINT" : "SIGTERM");
    server_shutdown(srv, false);
}

static int mkdir_p(const char *path)
{
    char buf[CONFIG_STR_MAX];
    size_t n = strlen(path);
    if (n >= sizeof(buf)) {
        errno = ENAMETOOLONG;
        return -1;
    }
    memcpy(buf, path, n + 1);
    for (char *p = buf + 1; *p; p++) {
        if (*p == '/') {
            *p = '\0';
            if (mkdir(buf, 0755) != 0 && errno != EEXIST)
                return -1;
            *p = '/';
        }
    }
    if (mkdir(buf, 0755) != 0 && errno != EEXIST)
        return -1;
    return 0;
}

struct replay_ctx {
    struct server *srv;
    uint64_t records;
};

static int on_replay(void *arg, uint64_t lsn, uint8_t type, const void *body, size_t len)
{
    struct replay_ctx *rc = arg;
    char err[256];
    if (type != CMD_LOG_BATCH) {
        srv_log(LOG_WARNING, "WAL record %" PRIu64 " has unknown type %u", lsn, type);
        return TRIAD_ECORRUPT;
    }
    if (cmd_replay(&rc->srv->cmd, body, len, err, sizeof(err)) != 0) {
        srv_log(LOG_WARNING, "WAL record %" PRIu64 " does not decode: %s", lsn, err);
        return TRIAD_ECORRUPT;
    }
    rc->records++;
    return 0;
}

static void on_wal_log(void *arg, const char *msg)
{
    (void)arg;
    srv_log(LOG_WARNING, "%s", msg);
}

static void raise_fd_limit(struct server *srv)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
        return;
    rlim_t want = (rlim_t)srv->cfg.maxclients + 64;
    if (rl.rlim_cur >= want)
        return;
    rl.rlim_cur = rl.rlim_max == RLIM_INFINITY || rl.rlim_max >= want ? want : rl.rlim_max;
    if (setrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < want)
        srv_log(LOG_WARNING, "open files limit is %llu: fewer than maxclients %d can connect",
                (unsigned long long)rl.rlim_cur, srv->cfg.maxclients);
}

static int server_listen(struct server *srv)
{
    struct sockaddr_storage addr;
    int rc;
    if (strchr(srv->cfg.bind, ':'))
        rc = uv_ip6_addr(srv->cfg.bind, srv->cfg.port, (struct sockaddr_in6 *)&addr);
    else
        rc = uv_ip4_addr(srv->cfg.bind, srv->cfg.port, (struct sockaddr_in *)&addr);
    if (rc != 0) {
        srv_log(LOG_WARNING, "bad bind address '%s': %s", srv->cfg.bind, uv_strerror(rc));
        return -1;
    }
    uv_tcp_init(srv->loop, &srv->listener);
    srv->listener.data = srv;
    rc = uv_tcp_bind(&srv->listener, (struct sockaddr *)&addr, 0);
    if (rc == 0)
        rc = uv_listen((uv_stream_t *)&srv->listener, srv->cfg.tcp_backlog, on_connection);
    if (rc != 0) {
        srv_log(LOG_WARNING, "can't listen on %s:%d: %s", srv->cfg.bind, srv->cfg.port,
                uv_strerror(rc));
        return -1;
    }
    if (srv->cfg.port == 0) {
        struct sockaddr_storage ss;
        int len = sizeof(ss);
        uv_tcp_getsockname(&srv->listener, (struct sockaddr *)&ss, &len);
        srv->cfg.port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
    }
    return 0;
}

/* ---- the loop ---- */

/* The poll window now: idle-poll-us may have changed, and the cron may have
 * found the CPUs contended. */
static uint64_t server_poll_window(struct server *srv)
{
    uint64_t limit = srv->idlepoll_cpus ? (uint64_t)srv->cfg.idle_poll_us * 1000 : 0;
    if (limit != srv->idlepoll.limit_ns)
        idlepoll_set_limit(&srv->idlepoll, limit);
    return idlepoll_window(&srv->idlepoll);
}

/* Runs the loop's turns without sleeping in them until a poll window passes
 * with no work: a turn has work when the loop's epoll descriptor has events
 * or libuv has callbacks to run. Each is a whole libuv turn (timers, the
 * prepare phase's hand-over to the fsync thread, the check phase's
 * replies), and a turn with work is followed by one more, which puts the
 * watchers its callbacks started into epoll before the polling can miss
 * them. Timers that fall due while nothing comes run at most one window
 * late. False once the loop has nothing left. */
static bool server_poll_for_work(struct server *srv)
{
    struct pollfd pfd = {.fd = uv_backend_fd(srv->loop), .events = POLLIN};
    uint64_t last_work = uv_hrtime();
    bool turn = true; /* a turn's callbacks may add watchers: the next turn adds them to epoll */
    for (;;) {
        bool work = uv_backend_timeout(srv->loop) == 0 || poll(&pfd, 1, 0) > 0;
        if (work || turn) {
            if (uv_run(srv->loop, UV_RUN_NOWAIT) == 0)
                return false;
            turn = work;
        }
        uint64_t now = uv_hrtime();
        if (work)
            last_work = now;
        else if (now - last_work >= server_poll_window(srv))
            return true;
    }
}

/* From the cron: how long tasks waited for a CPU since the last tick, for
 * the loop's polling (idlepoll.h). A kernel without pressure information
 * leaves the polling to go by the load alone. */
static void server_sample_cpu_pressure(struct server *srv)
{
    if (srv->psi_fd < 0 || srv->idlepoll.limit_ns == 0)
        return;
    char text[256];
    ssize_t n = pread(srv->psi_fd, text, sizeof(text), 0);
    uint64_t total;
    if (n <= 0 || !idlepoll_parse_psi(text, (size_t)n, &total)) {
        close(srv->psi_fd);
        srv->psi_fd = -1;
        return;
    }
    uint64_t now = uv_hrtime();
    if (srv->psi_at_ns != 0 && total >= srv->psi_total_us)
        idlepoll_pressure(&srv->idlepoll, total - srv->psi_total_us,
                          (now - srv->psi_at_ns) / 1000);
    srv->psi_total_us = total;
    srv->psi_at_ns = now;
}

/* libuv's loop, with a poll for work before each sleep (idlepoll.h). The
 * time each pass slept in epoll_wait is libuv's own idle-time metric. On a
 * single CPU nothing else can run while the loop polls, so it never does,
 * nor without the metric to learn from. */
static void server_run_loop(struct server *srv)
{
    cpu_set_t cpus;
    srv->idlepoll_cpus = sched_getaffinity(0, sizeof(cpus), &cpus) == 0 && CPU_COUNT(&cpus) > 1 &&
                         uv_loop_configure(srv->loop, UV_METRICS_IDLE_TIME) == 0;
    idlepoll_init(&srv->idlepoll, 0);
    srv->psi_fd = open("/proc/pressure/cpu", O_RDONLY | O_CLOEXEC);
    bool alive = true;
    while (alive) {
        if (server_poll_window(srv) > 0 && !server_poll_for_work(srv))
            break;
        uint64_t idle = uv_metrics_idle_time(srv->loop);
        alive = uv_run(srv->loop, UV_RUN_ONCE) != 0;
        idlepoll_slept(&srv->idlepoll, uv_metrics_idle_time(srv->loop) - idle);
    }
    if (srv->psi_fd >= 0)
        close(srv->psi_fd);
    srv->psi_fd = -1;
}

int server_main(int argc, char **argv)
{
    static struct server server_storage;
    struct server *srv = &server_storage;
    char err[512];

    int rc = config_load(&srv->cfg, argc, argv, err, sizeof(err));
    if (rc == 1)
        return 0;
    if (rc != 0) {
        fprintf(stderr, "triad server: %s\n", err);
        return 2;
    }
    g_srv = srv;
    if (srv->cfg.logfile[0]) {
        log_file = fopen(srv->cfg.logfile, "a");
        if (!log_file) {
            fprintf(stderr, "triad server: can't open logfile %s: %s\n", srv->cfg.logfile,
                    strerror(errno));
            return 1;
        }
    }
    signal(SIGPIPE, SIG_IGN);
    srv->start_ms = wall_ms();
    unsigned char rnd[20];
    if (getrandom(rnd, sizeof(rnd), 0) != (ssize_t)sizeof(rnd))
        memset(rnd, 0x5a, sizeof(rnd));
    for (int i = 0; i < 20; i++)
        snprintf(srv->run_id + 2 * i, 3, "%02x", rnd[i]);
    uint64_t seed;
    memcpy(&seed, rnd, sizeof(seed));

    if (mkdir_p(srv->cfg.dir) != 0) {
        srv_log(LOG_WARNING, "can't create data directory %s: %s", srv->cfg.dir, strerror(errno));
        return 1;
    }
    /* One process per data directory: a second server on the same dir
     * would interleave two WALs into one. */
    char lockpath[CONFIG_STR_MAX + 16];
    memcpy(lockpath, srv->cfg.dir, strlen(srv->cfg.dir) + 1); /* dir < CONFIG_STR_MAX */
    strcat(lockpath, "/LOCK");
    srv->lock_fd = open(lockpath, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (srv->lock_fd < 0 || flock(srv->lock_fd, LOCK_EX | LOCK_NB) != 0) {
        srv_log(LOG_WARNING, "data directory %s is in use by another triad server", srv->cfg.dir);
        return 1;
    }

    srv_log(LOG_NOTICE, "Triad %s starting: node %s, dir %s, fsync %s", TRIAD_VERSION,
            srv->cfg.name, srv->cfg.dir, config_fsync_name(srv->cfg.fsync));
    cmd_server_init(&srv->cmd, srv->cfg.databases, seed);
    srv->cmd.requirepass = srv->cfg.requirepass;
    srv->cmd.maxmemory = (uint64_t)srv->cfg.maxmemory;
    srv->cmd.proto_max_bulk_len = (uint64_t)srv->cfg.proto_max_bulk_len;
    srv->cmd.used_memory = tmem_used;
    srv->cmd.clock_us = mono_us;
    srv->cmd.wall_us = wall_us;

    /* Files a snapshot makes obsolete are deleted off the loop (reaper.h). */
    if (reaper_new(&srv->reaper, err, sizeof(err)) != 0) {
        srv_log(LOG_WARNING, "%s", err);
        return 1;
    }

    srv->loop = uv_default_loop();
    bool fresh = false;
    if (srv->cfg.node_id != 0 && srv->cfg.mode == CONFIG_MODE_LEADER) {
        /* leader mode: the data lives in the cluster's replicated state
         * machine and its log; this cmd_server runs connection and server
         * commands only */
        struct cluster_hooks ch = {
            .arg = srv,
            .reply = server_cluster_reply,
            .kick_syncer = server_cluster_kick,
            .log = server_cluster_log,
        };
        if (cluster_open(&srv->cluster, srv->loop, &srv->cfg, &ch, err, sizeof(err)) != 0) {
            srv_log(LOG_WARNING, "can't start the cluster node: %s", err);
            return 1;
        }
        cluster_set_reaper(srv->cluster, srv->reaper);
        srv->wal = cluster_wal(srv->cluster);
        srv->durable_lsn = wal_last_lsn(srv->wal);
        srv->last_snapshot_ok = true;
        srv->last_snapshot_s = (long long)time(NULL);
        goto hooks;
    }

    int64_t t0 = wall_ms();
    uint64_t snap_lsn = 0;
    rc = snap_load_latest(srv->cfg.dir, srv->cmd.db, srv->cmd.databases, &snap_lsn, err,
                          sizeof(err));
    if (rc != 0) {
        srv_log(LOG_WARNING, "can't load snapshot: %s", err);
        return 1;
    }
    size_t keys = 0;
    for (int i = 0; i < srv->cmd.databases; i++)
        keys += kv_count(srv->cmd.db[i]);
    int64_t t1 = wall_ms();
    struct replay_ctx rctx = {.srv = srv};
    srv->cmd.now_ms = wall_ms();
    rc = wal_open(&srv->wal, srv->cfg.dir, (uint64_t)srv->cfg.wal_segment_bytes, snap_lsn,
                  on_replay, &rctx, on_wal_log, NULL, err, sizeof(err));
    if (rc != 0) {
        srv_log(LOG_WARNING, "can't open the WAL: %s", err);
        return 1;
    }
    wal_set_reaper(srv->wal, srv->reaper);
    srv->snapshot_lsn = snap_lsn;
    srv->snapshot_bytes = snap_lsn ? snapshot_file_bytes(srv, snap_lsn) : 0;
    srv->last_snapshot_ok = true;
    srv->last_snapshot_s = (long long)time(NULL);
    srv_log(LOG_NOTICE,
            "loaded %zu keys from snapshot (lsn %" PRIu64 ") in %lld ms, replayed %" PRIu64
            " WAL record(s) in %lld ms",
            keys, snap_lsn, (long long)(t1 - t0), rctx.records, (long long)(wall_ms() - t1));
    srv->durable_lsn = wal_last_lsn(srv->wal);
    srv->cmd.log_fn = server_log_record;
    srv->cmd.log_arg = srv;
    if (srv->cfg.mode != CONFIG_MODE_LEADERLESS) {
        /* leaderless mode appends records of its own too (leaderless.c) */
        srv->cmd.log_begin = server_log_begin;
        srv->cmd.log_end = server_log_end;
        srv->cmd.log_cancel = server_log_cancel;
    }
    /* leaderless mode: a node with no data takes a new actor id */
    fresh = snap_lsn == 0 && wal_last_lsn(srv->wal) == 0;

hooks:;
    struct cmd_hooks hooks = {
        .arg = srv,
        .info = hook_info,
        .config_get = hook_config_get,
        .config_set = hook_config_set,
        .config_resetstat = hook_config_resetstat,
        .client_list = hook_client_list,
        .client_kill = hook_client_kill,
        .free_async = hook_free_async,
        .shutdown = hook_shutdown,
        .snapshot = hook_snapshot,
        .last_snapshot = hook_last_snapshot,
    };
    srv->cmd.hooks = hooks;

    raise_fd_limit(srv);

    struct syncer *sy = &srv->syncer;
    sy->wal = srv->wal;
    sy->policy = srv->cfg.fsync;
    sy->written_lsn = sy->synced_lsn = wal_last_lsn(srv->wal);
    pthread_mutex_init(&sy->mu, NULL);
    pthread_cond_init(&sy->cv, NULL);
    uv_async_init(srv->loop, &sy->async, on_syncer_progress);
    sy->async.data = srv;
    if (pthread_create(&sy->thread, NULL, syncer_main, sy) != 0) {
        srv_log(LOG_WARNING, "can't start the fsync thread");
        return 1;
    }
    srv->syncer_started = true;
    syncer_kick(srv); /* a new cluster's first records */

    if (server_listen(srv) != 0)
        return 1;
    if (srv->cfg.mode == CONFIG_MODE_LEADERLESS) {
        /* after listening: the gossiped client port is the real one */
        struct ll_hooks lh = {
            .arg = srv,
            .reply = server_ll_reply,
            .log = server_ll_log,
            .durable_lsn = server_ll_durable_lsn,
        };
        if (ll_open(&srv->ll, srv->loop, &srv->cfg, &srv->cmd, fresh, &lh, err,
                    sizeof(err)) != 0) {
            srv_log(LOG_WARNING, "can't start the leaderless node: %s", err);
            return 1;
        }
    }
    uv_prepare_init(srv->loop, &srv->prepare);
    srv->prepare.data = srv;
    uv_prepare_start(&srv->prepare, on_prepare);
    uv_check_init(srv->loop, &srv->check);
    srv->check.data = srv;
    uv_check_start(&srv->check, on_check);
    uv_timer_init(srv->loop, &srv->cron);
    srv->cron.data = srv;
    uv_timer_start(&srv->cron, on_cron, (uint64_t)(1000 / srv->cfg.hz),
                   (uint64_t)(1000 / srv->cfg.hz));
    uv_signal_init(srv->loop, &srv->sigterm);
    uv_signal_init(srv->loop, &srv->sigint);
    srv->sigterm.data = srv->sigint.data = srv;
    uv_signal_start(&srv->sigterm, on_signal, SIGTERM);
    uv_signal_start(&srv->sigint, on_signal, SIGINT);
    srv->ops_last_ms = wall_ms();

    if (srv->cfg.pidfile[0]) {
        FILE *pf = fopen(srv->cfg.pidfile, "w");
        if (pf) {
            fprintf(pf, "%d\n", (int)getpid());
            fclose(pf);
        }
    }
    srv_log(LOG_NOTICE, "Ready to accept connections on %s:%d", srv->cfg.bind, srv->cfg.port);

    server_run_loop(srv);

    ll_free(srv->ll);
    srv->ll = NULL;
    if (srv->cluster != NULL) {
        cluster_free(srv->cluster); /* closes its log, the WAL with it */
        srv->cluster = NULL;
    } else {
        wal_close(srv->wal);
    }
    srv->wal = NULL;
    reaper_wait(srv->reaper); /* the deletions still queued */
    server_check_reaper(srv);
    reaper_free(srv->reaper);
    srv->reaper = NULL;
    cmd_server_free(&srv->cmd);
    tfree(srv->slots);
    tfree(srv->free_slots);
    uv_loop_close(srv->loop);
    if (srv->cfg.pidfile[0])
        unlink(srv->cfg.pidfile);
    srv_log(LOG_NOTICE, "Triad is now ready to exit, bye bye...");
    return srv->exit_code;
}
