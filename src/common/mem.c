#include "mem.h"

#include <malloc.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static _Atomic size_t mem_used_bytes;

__attribute__((noreturn, cold)) static void mem__oom(size_t size)
{
    fprintf(stderr, "triad: out of memory allocating %zu bytes\n", size);
    fflush(stderr);
    abort();
}

void *tmalloc(size_t size)
{
    void *p = malloc(size ? size : 1);
    if (p == NULL)
        mem__oom(size);
    atomic_fetch_add_explicit(&mem_used_bytes, malloc_usable_size(p), memory_order_relaxed);
    return p;
}

void *tcalloc(size_t n, size_t size)
{
    void *p = calloc(n ? n : 1, size ? size : 1);
    if (p == NULL)
        mem__oom(n * size);
    atomic_fetch_add_explicit(&mem_used_bytes, malloc_usable_size(p), memory_order_relaxed);
    return p;
}

void *trealloc(void *ptr, size_t size)
{
    size_t old = ptr ? malloc_usable_size(ptr) : 0;
    void *p = realloc(ptr, size ? size : 1);
    if (p == NULL)
        mem__oom(size);
    atomic_fetch_sub_explicit(&mem_used_bytes, old, memory_order_relaxed);
    atomic_fetch_add_explicit(&mem_used_bytes, malloc_usable_size(p), memory_order_relaxed);
    return p;
}

void tfree(void *ptr)
{
    if (ptr == NULL)
        return;
    atomic_fetch_sub_explicit(&mem_used_bytes, malloc_usable_size(ptr), memory_order_relaxed);
    free(ptr);
}

char *tstrndup(const char *s, size_t n)
{
    char *p = tmalloc(n + 1);
    memcpy(p, s, n);
    p[n] = '\0';
    return p;
}

size_t tmalloc_size(void *ptr)
{
    return ptr ? malloc_usable_size(ptr) : 0;
}

size_t tmem_used(void)
{
    return atomic_load_explicit(&mem_used_bytes, memory_order_relaxed);
}
