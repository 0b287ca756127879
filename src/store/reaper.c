/* reaper.c - deletes files on a thread of its own (see reaper.h).
 *
 * The queue is an array used as a FIFO: entries are appended at count and
 * taken from head; the taken ones are reclaimed when the array would
 * otherwise grow, and both go back to 0 whenever the thread has taken
 * them all. Each entry carries its chain's number; after a failure the
 * thread skips the rest of that chain.
 */
#include "reaper.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "../common/defs.h"
#include "../common/err.h"
#include "../common/mem.h"
#include "fs.h"

#define REAPER_ERROR_MAX 512

struct reaper_entry {
    char *path;
    uint64_t chain;
};

struct reaper {
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t work_cv; /* an entry was queued, or stop was set */
    pthread_cond_t idle_cv; /* the queue ran dry with nothing in hand */
    struct reaper_entry *q;
    size_t head, count, cap;
    uint64_t chains;       /* chains numbered so far */
    uint64_t failed_chain; /* the chain whose rest is skipped (0: none) */
    bool busy;             /* the thread holds an entry it took off the queue */
    bool stop;
    uint64_t deleted, failed, kept;
    char last_error[REAPER_ERROR_MAX];
};

/* Deletes one path (the lock not held); true if it is gone. */
static bool reaper__unlink(const char *path, char *err, size_t errlen)
{
    int rc = fs_unlink(path);
    if (rc == 0 || rc == TRIAD_ENOTFOUND)
        return true;
    snprintf(err, errlen, "delete %s: %s", path, strerror(errno));
    return false;
}

static void *reaper__main(void *arg)
{
    struct reaper *r = arg;
    char err[REAPER_ERROR_MAX];
    pthread_mutex_lock(&r->mu);
    for (;;) {
        if (r->head == r->count) {
            r->head = r->count = 0;
            r->busy = false;
            pthread_cond_broadcast(&r->idle_cv);
            if (r->stop)
                break;
            pthread_cond_wait(&r->work_cv, &r->mu);
            continue;
        }
        struct reaper_entry e = r->q[r->head++];
        if (e.chain == r->failed_chain) {
            r->kept++;
            tfree(e.path);
            continue;
        }
        r->busy = true;
        pthread_mutex_unlock(&r->mu);
        bool gone = reaper__unlink(e.path, err, sizeof(err));
        tfree(e.path);
        pthread_mutex_lock(&r->mu);
        if (gone) {
            r->deleted++;
        } else {
            r->failed++;
            r->failed_chain = e.chain;
            memcpy(r->last_error, err, sizeof(err));
        }
    }
    pthread_mutex_unlock(&r->mu);
    return NULL;
}

int reaper_new(struct reaper **out, char *errmsg, size_t errlen)
{
    struct reaper *r = tcalloc(1, sizeof(*r));
    pthread_mutex_init(&r->mu, NULL);
    pthread_cond_init(&r->work_cv, NULL);
    pthread_cond_init(&r->idle_cv, NULL);
    int rc = pthread_create(&r->thread, NULL, reaper__main, r);
    if (rc != 0) {
        triad_errf(errmsg, errlen, "reaper: start thread: %s", strerror(rc));
        pthread_cond_destroy(&r->idle_cv);
        pthread_cond_destroy(&r->work_cv);
        pthread_mutex_destroy(&r->mu);
        tfree(r);
        return TRIAD_EIO;
    }
    *out = r;
    return 0;
}

void reaper_free(struct reaper *r)
{
    if (r == NULL)
        return;
    pthread_mutex_lock(&r->mu);
    r->stop = true;
    pthread_cond_signal(&r->work_cv);
    pthread_mutex_unlock(&r->mu);
    pthread_join(r->thread, NULL);
    tfree(r->q);
    pthread_cond_destroy(&r->idle_cv);
    pthread_cond_destroy(&r->work_cv);
    pthread_mutex_destroy(&r->mu);
    tfree(r);
}

/* Room for as many of n more entries as the limit allows, under the
 * lock (the taken ones are reclaimed before the array grows); returns how
 * many. */
static size_t reaper__reserve(struct reaper *r, size_t n)
{
    size_t queued = r->count - r->head;
    if (n > REAPER_QUEUE_MAX - queued)
        n = REAPER_QUEUE_MAX - queued;
    if (r->count + n <= r->cap)
        return n;
    if (r->head > 0) {
        memmove(r->q, r->q + r->head, (r->count - r->head) * sizeof(*r->q));
        r->count -= r->head;
        r->head = 0;
    }
    if (r->count + n > r->cap) {
        size_t cap = r->cap ? r->cap : 8;
        while (cap < r->count + n)
            cap *= 2;
        r->q = trealloc(r->q, cap * sizeof(*r->q));
        r->cap = cap;
    }
    return n;
}

void reaper_delete_chain(struct reaper *r, char *const *paths, size_t n)
{
    if (n == 0)
        return;
    if (r == NULL) {
        char err[REAPER_ERROR_MAX];
        for (size_t i = 0; i < n; i++)
            if (!reaper__unlink(paths[i], err, sizeof(err)))
                break;
        return;
    }
    pthread_mutex_lock(&r->mu);
    /* What does not fit stays: the chain's head is queued, and a head of
     * a chain never leaves a gap. */
    size_t fit = reaper__reserve(r, n);
    r->kept += n - fit;
    uint64_t chain = ++r->chains;
    for (size_t i = 0; i < fit; i++)
        r->q[r->count++] = (struct reaper_entry){tstrndup(paths[i], strlen(paths[i])), chain};
    pthread_cond_signal(&r->work_cv);
    pthread_mutex_unlock(&r->mu);
}

void reaper_delete(struct reaper *r, const char *path)
{
    char *p = (char *)path;
    reaper_delete_chain(r, &p, 1);
}

void reaper_wait(struct reaper *r)
{
    if (r == NULL)
        return;
    pthread_mutex_lock(&r->mu);
    while (r->head < r->count || r->busy)
        pthread_cond_wait(&r->idle_cv, &r->mu);
    pthread_mutex_unlock(&r->mu);
}

void reaper_stats(struct reaper *r, struct reaper_stats *st, char *last_error, size_t len)
{
    *st = (struct reaper_stats){0};
    if (len > 0)
        last_error[0] = '\0';
    if (r == NULL)
        return;
    pthread_mutex_lock(&r->mu);
    st->pending = (uint64_t)(r->count - r->head) + (r->busy ? 1 : 0);
    st->deleted = r->deleted;
    st->failed = r->failed;
    st->kept = r->kept;
    if (len > 0)
        snprintf(last_error, len, "%s", r->last_error);
    pthread_mutex_unlock(&r->mu);
}
