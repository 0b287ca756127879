/* test_dir.h - scratch directories for the unit tests that touch files. */
#ifndef TRIAD_TEST_DIR_H
#define TRIAD_TEST_DIR_H

#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../../src/common/defs.h"

/* A new empty directory /tmp/triad-test-<name>-XXXXXX; the caller frees
 * the returned path (after rm_rf). */
static inline char *make_tmpdir_named(const char *name)
{
    char tmpl[256];
    snprintf(tmpl, sizeof(tmpl), "/tmp/triad-test-%s-XXXXXX", name);
    char *d = mkdtemp(tmpl);
    TRIAD_ASSERT(d != NULL);
    return strdup(d);
}

/* Remove dir and everything below it. */
static inline void rm_rf(const char *dir)
{
    DIR *d = opendir(dir);
    if (d != NULL) {
        struct dirent *e;
        while ((e = readdir(d)) != NULL) {
            if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
                continue;
            char p[1024];
            if (snprintf(p, sizeof(p), "%s/%s", dir, e->d_name) >= (int)sizeof(p))
                continue;
            struct stat st;
            if (lstat(p, &st) == 0 && S_ISDIR(st.st_mode))
                rm_rf(p);
            else
                unlink(p);
        }
        closedir(d);
    }
    rmdir(dir);
}


/* The size of a file, or -1. */
static inline long file_size(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 ? (long)st.st_size : -1;
}

/* The whole file (malloc'd, one spare byte); *len is its size. */
static inline char *read_file(const char *path, size_t *len)
{
    long n = file_size(path);
    TRIAD_ASSERT(n >= 0);
    char *p = malloc((size_t)n + 1);
    int fd = open(path, O_RDONLY);
    TRIAD_ASSERT(fd >= 0);
    TRIAD_ASSERT(read(fd, p, (size_t)n) == n);
    close(fd);
    *len = (size_t)n;
    return p;
}

/* How many files in dir end in suffix. */
static inline int count_files(const char *dir, const char *suffix)
{
    DIR *d = opendir(dir);
    int n = 0;
    struct dirent *e;
    while (d != NULL && (e = readdir(d)) != NULL) {
        size_t l = strlen(e->d_name), s = strlen(suffix);
        if (l >= s && strcmp(e->d_name + l - s, suffix) == 0)
            n++;
    }
    if (d != NULL)
        closedir(d);
    return n;
}

/* Replace the file's contents with len bytes at p. */
static inline void write_file(const char *path, const void *p, size_t len)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    TRIAD_ASSERT(fd >= 0);
    TRIAD_ASSERT(write(fd, p, len) == (ssize_t)len);
    close(fd);
}

#endif
