#include "mem.h"
#include "defs.h"

#include <malloc.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

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

void *tmem_io_alloc(size_t len, size_t *cap)
{
    size_t n = len == 0 ? TMEM_IO_ALIGN : (len + TMEM_IO_ALIGN - 1) & ~(TMEM_IO_ALIGN - 1);
    if (n < len || n > SIZE_MAX - TMEM_IO_ALIGN)
        mem__oom(len);
    /* Over-map by one unit and trim both ends to the aligned part: mmap
     * itself promises only page alignment. */
    size_t span = n + TMEM_IO_ALIGN;
    char *raw = mmap(NULL, span, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (raw == MAP_FAILED)
        mem__oom(len);
    uintptr_t a = ((uintptr_t)raw + TMEM_IO_ALIGN - 1) & ~(uintptr_t)(TMEM_IO_ALIGN - 1);
    size_t head = (size_t)(a - (uintptr_t)raw);
    if (head > 0)
        munmap(raw, head);
    munmap((char *)a + n, span - head - n); /* head < ALIGN: never empty */
    /* Advice only: without THP (or with it off) the pages are small. */
    (void)madvise((void *)a, n, MADV_HUGEPAGE);
    (void)madvise((void *)a, n, MADV_DONTFORK);
    atomic_fetch_add_explicit(&mem_used_bytes, n, memory_order_relaxed);
    *cap = n;
    return (void *)a;
}

void tmem_io_free(void *p, size_t cap)
{
    if (p == NULL)
        return;
    TRIAD_ASSERT((uintptr_t)p % TMEM_IO_ALIGN == 0 && cap > 0 && cap % TMEM_IO_ALIGN == 0);
    atomic_fetch_sub_explicit(&mem_used_bytes, cap, memory_order_relaxed);
    munmap(p, cap);
}

#ifndef MADV_COLLAPSE
#define MADV_COLLAPSE 25 /* Linux 6.1; glibc 2.36's headers lack it */
#endif

bool tmem_io_huge(void *p, size_t cap)
{
    volatile unsigned char *b = p;
    for (size_t off = 0; off < cap; off += TMEM_IO_ALIGN)
        b[off] = b[off];
    /* 0 only if every unit is a huge page now (already, or collapsed) */
    return madvise(p, cap, MADV_COLLAPSE) == 0;
}
