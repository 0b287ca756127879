/* mem.h - allocation with accounting.
 *
 * Every long-lived allocation that counts towards `used_memory` (INFO
 * memory, maxmemory) goes through these wrappers, which keep a process-wide
 * total of the allocator's usable sizes. The counter is atomic (relaxed)
 * because the fsync thread frees WAL batches.
 *
 * tmalloc/trealloc/tcalloc abort on out-of-memory, as Redis's zmalloc does:
 * a half-applied write is worse than a clean stop. Callers that can refuse
 * a request instead check maxmemory before they allocate.
 */
#ifndef TRIAD_MEM_H
#define TRIAD_MEM_H

#include <stddef.h>

void *tmalloc(size_t size);
void *tcalloc(size_t n, size_t size);
void *trealloc(void *ptr, size_t size);
void tfree(void *ptr);
char *tstrndup(const char *s, size_t n);
/* bytes the allocator really reserved for ptr (>= the size asked for) */
size_t tmalloc_size(void *ptr);
/* the total usable size of live allocations made through this API */
size_t tmem_used(void);

#endif
