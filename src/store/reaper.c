/* reaper.c - deletes files on a thread of its own (see reaper.h).
 *
 * The queue is an array used as a FIFO: paths are appended at count and
 * taken from head; once the thread has taken them all, both go back to 0.
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

struct reaper {
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t work_cv; /* a path was queued, or stop was set */
    pthread_cond_t idle_cv; /* the queue ran dry with nothing in hand */
    char **paths;
    size_t head, count, cap;
    bool busy; /* the thread holds a path it took off the queue */
    bool stop;
    uint64_t deleted, failed;
    char last_error[REAPER_ERROR_MAX];
};

/* Deletes one path outside the lock; says how it went. */
static void reaper__unlink(struct reaper *r, char *path)
{
    int rc = fs_unlink(path);
    int err = errno;
    pthread_mutex_lock(&r->mu);
    if (rc == 0 || rc == TRIAD_ENOTFOUND) {
        r->deleted++;
    } else {
        r->failed++;
        snprintf(r->last_error, sizeof(r->last_error), "delete %s: %s", path, strerror(err));
    }
    pthread_mutex_unlock(&r->mu);
    tfree(path);
}

static void *reaper__main(void *arg)
{
    struct reaper *r = arg;
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
        char *path = r->paths[r->head++];
        r->busy = true;
        pthread_mutex_unlock(&r->mu);
        reaper__unlink(r, path);
        pthread_mutex_lock(&r->mu);
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
    tfree(r->paths);
    pthread_cond_destroy(&r->idle_cv);
    pthread_cond_destroy(&r->work_cv);
    pthread_mutex_destroy(&r->mu);
    tfree(r);
}

void reaper_delete(struct reaper *r, const char *path)
{
    char *copy = tstrndup(path, strlen(path));
    if (r == NULL) {
        fs_unlink(copy);
        tfree(copy);
        return;
    }
    pthread_mutex_lock(&r->mu);
    if (r->count == r->cap) {
        r->cap = r->cap ? r->cap * 2 : 8;
        r->paths = trealloc(r->paths, r->cap * sizeof(*r->paths));
    }
    r->paths[r->count++] = copy;
    pthread_cond_signal(&r->work_cv);
    pthread_mutex_unlock(&r->mu);
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
    if (len > 0)
        snprintf(last_error, len, "%s", r->last_error);
    pthread_mutex_unlock(&r->mu);
}
