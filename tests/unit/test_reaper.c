/* Unit tests for the reaper: files are deleted on its thread, in the
 * order given, while the caller goes on. */
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "../../src/common/defs.h"
#include "../../src/store/fs.h"
#include "../../src/store/reaper.h"
#include "../../src/store/wal.h"
#include "test.h"
#include "test_dir.h"

#define NFILES 5

/* A gate the reaper's deletions wait at (fs_faults.before_unlink), and the
 * order in which they reached it. */
static struct {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool closed;
    int waiting; /* deletions held at the gate now */
    char seen[16][512];
    int nseen;
    pthread_t thread; /* the thread of the last deletion */
    pthread_t caller; /* the test's: never held, so a deletion made on it fails the checks */
} gate = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, false, 0, {{0}}, 0, 0, 0};

static void gate_before_unlink(const char *path)
{
    pthread_mutex_lock(&gate.mu);
    if (gate.nseen < 16)
        snprintf(gate.seen[gate.nseen++], sizeof(gate.seen[0]), "%s", path);
    gate.thread = pthread_self();
    if (pthread_equal(gate.thread, gate.caller)) {
        pthread_mutex_unlock(&gate.mu);
        return;
    }
    gate.waiting++;
    pthread_cond_broadcast(&gate.cv);
    while (gate.closed)
        pthread_cond_wait(&gate.cv, &gate.mu);
    gate.waiting--;
    pthread_mutex_unlock(&gate.mu);
}

static void gate_set(bool closed)
{
    pthread_mutex_lock(&gate.mu);
    gate.closed = closed;
    gate.caller = pthread_self();
    if (closed)
        gate.nseen = 0;
    pthread_cond_broadcast(&gate.cv);
    pthread_mutex_unlock(&gate.mu);
}

/* Waits until a deletion is held at the closed gate; false at once if a
 * deletion was made on the caller's thread instead. */
static bool gate_wait_held(void)
{
    pthread_mutex_lock(&gate.mu);
    while (gate.waiting == 0 && !(gate.nseen > 0 && pthread_equal(gate.thread, gate.caller)))
        pthread_cond_wait(&gate.cv, &gate.mu);
    bool held = gate.waiting > 0;
    pthread_mutex_unlock(&gate.mu);
    return held;
}

/* Files dir/<prefix>0 .. dir/<prefix>(n-1), each one byte; their paths in
 * paths[], and pointers to those in chain[] (for reaper_delete_chain). */
static void touch_files(const char *dir, const char *prefix, int n, char (*paths)[512],
                        char **chain)
{
    for (int i = 0; i < n; i++) {
        snprintf(paths[i], sizeof(paths[i]), "%s/%s%d", dir, prefix, i);
        write_file(paths[i], "x", 1);
        chain[i] = paths[i];
    }
}

TEST(reaper_deletes_in_the_order_given_on_its_own_thread_while_the_caller_goes_on)
{
    char *dir = make_tmpdir_named("reaper");
    char paths[NFILES][512];
    for (int i = 0; i < NFILES; i++) {
        /* names that do not sort in the order they are given */
        snprintf(paths[i], sizeof(paths[i]), "%s/f%d", dir, (NFILES - i) * 7 % 10);
        write_file(paths[i], "x", 1);
    }
    struct reaper *r;
    char err[256];
    CHECK_EQ_INT(reaper_new(&r, err, sizeof(err)), 0);
    fs_faults.before_unlink = gate_before_unlink;
    gate_set(true);

    for (int i = 0; i < NFILES; i++)
        reaper_delete(r, paths[i]);
    /* Every call returned while the first deletion is still held. */
    CHECK(gate_wait_held());
    for (int i = 0; i < NFILES; i++)
        CHECK(file_size(paths[i]) == 1);
    struct reaper_stats st;
    reaper_stats(r, &st, err, sizeof(err));
    CHECK_EQ_INT(st.pending, NFILES);
    CHECK_EQ_INT(st.deleted, 0);
    pthread_mutex_lock(&gate.mu);
    CHECK(!pthread_equal(gate.thread, pthread_self()));
    pthread_mutex_unlock(&gate.mu);

    gate_set(false);
    reaper_wait(r);
    for (int i = 0; i < NFILES; i++)
        CHECK(file_size(paths[i]) == -1);
    CHECK_EQ_INT(gate.nseen, NFILES);
    for (int i = 0; i < NFILES && i < gate.nseen; i++)
        CHECK(strcmp(gate.seen[i], paths[i]) == 0);
    reaper_stats(r, &st, err, sizeof(err));
    CHECK_EQ_INT(st.pending, 0);
    CHECK_EQ_INT(st.deleted, NFILES);
    CHECK_EQ_INT(st.failed, 0);
    CHECK(err[0] == '\0');

    fs_faults.before_unlink = NULL;
    reaper_free(r);
    rm_rf(dir);
    free(dir);
}

TEST(reaper_counts_a_missing_file_as_deleted_and_names_one_it_could_not_delete)
{
    char *dir = make_tmpdir_named("reaper");
    char missing[512], sub[512];
    snprintf(missing, sizeof(missing), "%s/never-was", dir);
    snprintf(sub, sizeof(sub), "%s/a-directory", dir);
    CHECK_EQ_INT(mkdir(sub, 0755), 0);
    struct reaper *r;
    char err[256];
    CHECK_EQ_INT(reaper_new(&r, err, sizeof(err)), 0);
    reaper_delete(r, missing);
    reaper_delete(r, sub); /* unlink() refuses a directory */
    reaper_wait(r);
    struct reaper_stats st;
    reaper_stats(r, &st, err, sizeof(err));
    CHECK_EQ_INT(st.deleted, 1);
    CHECK_EQ_INT(st.failed, 1);
    CHECK(strstr(err, sub) != NULL);
    CHECK(file_size(sub) >= 0);
    reaper_free(r);
    rm_rf(dir);
    free(dir);
}

TEST(reaper_stops_a_chain_at_a_file_it_cannot_delete_and_goes_on_with_the_next)
{
    char *dir = make_tmpdir_named("reaper");
    char paths[NFILES][512];
    char *chain[NFILES];
    touch_files(dir, "f", NFILES, paths, chain);
    struct reaper *r;
    char err[256];
    CHECK_EQ_INT(reaper_new(&r, err, sizeof(err)), 0);
    fs_faults.unlink_fail_nth = 2; /* the chain's second file */
    reaper_delete_chain(r, chain, 3);
    reaper_delete_chain(r, chain + 3, 2); /* another chain goes on */
    reaper_wait(r);
    fs_faults.unlink_fail_nth = 0;
    CHECK(file_size(paths[0]) == -1);
    CHECK(file_size(paths[1]) == 1); /* failed */
    CHECK(file_size(paths[2]) == 1); /* kept behind it */
    CHECK(file_size(paths[3]) == -1);
    CHECK(file_size(paths[4]) == -1);
    struct reaper_stats st;
    reaper_stats(r, &st, err, sizeof(err));
    CHECK_EQ_INT(st.deleted, 3);
    CHECK_EQ_INT(st.failed, 1);
    CHECK_EQ_INT(st.kept, 1);
    CHECK(strstr(err, paths[1]) != NULL);
    /* a NULL reaper stops the same way */
    write_file(paths[0], "x", 1);
    fs_faults.unlink_fail_nth = 1;
    reaper_delete_chain(NULL, chain, 3);
    CHECK(file_size(paths[0]) == 1 && file_size(paths[1]) == 1 && file_size(paths[2]) == 1);
    reaper_free(r);
    rm_rf(dir);
    free(dir);
}

TEST(reaper_queues_what_fits_its_limit_and_keeps_the_rest_of_the_chain)
{
    char *dir = make_tmpdir_named("reaper");
    char a[3][512], b[5][512], missing[512];
    char *chain_a[3], *chain_b[5];
    touch_files(dir, "a", 3, a, chain_a);
    touch_files(dir, "b", 5, b, chain_b);
    snprintf(missing, sizeof(missing), "%s/never-was", dir);
    struct reaper *r;
    char err[256];
    CHECK_EQ_INT(reaper_new(&r, err, sizeof(err)), 0);
    fs_faults.before_unlink = gate_before_unlink;
    gate_set(true);
    reaper_delete_chain(r, chain_a, 3);
    CHECK(gate_wait_held()); /* a0 in hand, a1 and a2 queued */
    /* Growing the queue moves a1 and a2 down to reclaim a0's slot. */
    static char *many[REAPER_QUEUE_MAX];
    for (size_t i = 0; i < REAPER_QUEUE_MAX; i++)
        many[i] = missing;
    reaper_delete_chain(r, many, REAPER_QUEUE_MAX - 4);
    reaper_delete_chain(r, chain_b, 5); /* two fit */
    struct reaper_stats st;
    reaper_stats(r, &st, err, sizeof(err));
    CHECK_EQ_INT(st.pending, REAPER_QUEUE_MAX + 1);
    CHECK_EQ_INT(st.kept, 3);
    gate_set(false);
    reaper_wait(r);
    fs_faults.before_unlink = NULL;
    for (int i = 0; i < 3; i++)
        CHECK(file_size(a[i]) == -1);
    for (int i = 0; i < 5; i++)
        CHECK(file_size(b[i]) == (i < 2 ? -1 : 1));
    reaper_stats(r, &st, err, sizeof(err));
    CHECK_EQ_INT(st.deleted, 3 + (REAPER_QUEUE_MAX - 4) + 2); /* gone already counts */
    CHECK_EQ_INT(st.failed, 0);
    reaper_free(r);
    rm_rf(dir);
    free(dir);
}

TEST(reaper_free_deletes_what_is_still_queued)
{
    char *dir = make_tmpdir_named("reaper");
    char paths[NFILES][512];
    struct reaper *r;
    char err[256];
    CHECK_EQ_INT(reaper_new(&r, err, sizeof(err)), 0);
    for (int i = 0; i < NFILES; i++) {
        snprintf(paths[i], sizeof(paths[i]), "%s/f%d", dir, i);
        write_file(paths[i], "x", 1);
        reaper_delete(r, paths[i]);
    }
    reaper_free(r);
    for (int i = 0; i < NFILES; i++)
        CHECK(file_size(paths[i]) == -1);
    rm_rf(dir);
    free(dir);
}

TEST(reaper_null_deletes_at_once)
{
    char *dir = make_tmpdir_named("reaper");
    char path[512];
    snprintf(path, sizeof(path), "%s/f", dir);
    write_file(path, "x", 1);
    reaper_delete(NULL, path);
    CHECK(file_size(path) == -1);
    reaper_wait(NULL);
    struct reaper_stats st;
    char err[8];
    reaper_stats(NULL, &st, err, sizeof(err));
    CHECK_EQ_INT(st.pending + st.deleted + st.failed, 0);
    rm_rf(dir);
    free(dir);
}

/* The WAL with a reaper: the removed segments leave the log at once, and
 * their files go later, oldest first. */
static int no_replay(void *arg, uint64_t lsn, uint8_t type, const void *body, size_t len)
{
    return 0; /* the log is new: nothing to replay */
}

static int log_wal(struct wal **w, const char *dir)
{
    char err[256];
    return wal_open(w, dir, 200, 0, no_replay, NULL, NULL, NULL, err, sizeof(err));
}

/* n records, each its own synced batch. */
static void write_records(struct wal *w, int n)
{
    char err[256];
    for (int i = 0; i < n; i++) {
        char payload[40];
        memset(payload, 'v', sizeof(payload));
        wal_append(w, 1, payload, sizeof(payload));
        struct wal_batch b;
        wal_take_batch(w, &b);
        CHECK_EQ_INT(wal_write_batch(w, &b, true, err, sizeof(err)), 0);
        wal_batch_free(&b);
    }
}

TEST(wal_hands_removed_segments_to_its_reaper_oldest_first)
{
    char *dir = make_tmpdir_named("reaper-wal");
    struct wal *w;
    CHECK_EQ_INT(log_wal(&w, dir), 0);
    char err[256];
    write_records(w, 30);
    size_t segs_before, segs;
    uint64_t bytes;
    wal_stats(w, &segs_before, &bytes);
    CHECK(segs_before > 4);

    struct reaper *r;
    CHECK_EQ_INT(reaper_new(&r, err, sizeof(err)), 0);
    wal_set_reaper(w, r);
    fs_faults.before_unlink = gate_before_unlink;
    gate_set(true);
    wal_remove_before(w, 17);
    CHECK(gate_wait_held());
    wal_stats(w, &segs, &bytes);
    CHECK(segs < segs_before);
    CHECK_EQ_INT(count_files(dir, ".log"), (int)segs_before); /* the files are still there */

    gate_set(false);
    reaper_wait(r);
    CHECK_EQ_INT(count_files(dir, ".log"), (int)segs);
    CHECK_EQ_INT(gate.nseen, (int)(segs_before - segs));
    for (int i = 1; i < gate.nseen; i++)
        CHECK(strcmp(gate.seen[i - 1], gate.seen[i]) < 0); /* names carry the first lsn */
    fs_faults.before_unlink = NULL;
    wal_close(w);
    reaper_free(r);
    rm_rf(dir);
    free(dir);
}

TEST(wal_deletes_what_a_failed_removal_left_with_the_next_removal)
{
    char *dir = make_tmpdir_named("reaper-wal");
    struct wal *w;
    CHECK_EQ_INT(log_wal(&w, dir), 0);
    struct reaper *r;
    char err[256];
    CHECK_EQ_INT(reaper_new(&r, err, sizeof(err)), 0);
    wal_set_reaper(w, r);
    write_records(w, 30);
    size_t segs_before, segs;
    uint64_t bytes;
    wal_stats(w, &segs_before, &bytes);
    /* The oldest segment cannot be deleted: it and every newer one stay. */
    fs_faults.unlink_fail_nth = 1;
    wal_remove_before(w, 17);
    reaper_wait(r);
    fs_faults.unlink_fail_nth = 0;
    wal_stats(w, &segs, &bytes);
    CHECK(segs < segs_before);
    CHECK_EQ_INT(count_files(dir, ".log"), (int)segs_before);
    /* A removal that finds nothing new to take off deletes nothing... */
    wal_remove_before(w, 17);
    reaper_wait(r);
    CHECK_EQ_INT(count_files(dir, ".log"), (int)segs_before);
    /* ...the next one that does deletes the leftovers too. */
    write_records(w, 10);
    wal_stats(w, &segs_before, &bytes);
    wal_remove_before(w, 35);
    reaper_wait(r);
    wal_stats(w, &segs, &bytes);
    CHECK_EQ_INT(count_files(dir, ".log"), (int)segs);
    struct reaper_stats st;
    reaper_stats(r, &st, err, sizeof(err));
    CHECK_EQ_INT(st.failed, 1);
    CHECK(st.kept > 0);
    wal_close(w);
    reaper_free(r);
    rm_rf(dir);
    free(dir);
}

int main(void)
{
    RUN(reaper_deletes_in_the_order_given_on_its_own_thread_while_the_caller_goes_on);
    RUN(reaper_counts_a_missing_file_as_deleted_and_names_one_it_could_not_delete);
    RUN(reaper_stops_a_chain_at_a_file_it_cannot_delete_and_goes_on_with_the_next);
    RUN(reaper_queues_what_fits_its_limit_and_keeps_the_rest_of_the_chain);
    RUN(reaper_free_deletes_what_is_still_queued);
    RUN(reaper_null_deletes_at_once);
    RUN(wal_hands_removed_segments_to_its_reaper_oldest_first);
    RUN(wal_deletes_what_a_failed_removal_left_with_the_next_removal);
    return test_summary("reaper");
}
