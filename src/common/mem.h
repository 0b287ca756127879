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

#include <stdbool.h>
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

/* A buffer for O_DIRECT writes: at least len bytes of zeros, mapped at a
 * TMEM_IO_ALIGN boundary in whole TMEM_IO_ALIGN units (*cap gets the size,
 * for tmem_io_free), with transparent huge pages asked for. A direct write
 * hands the device one piece per physically contiguous run of the buffer:
 * from 4 KiB pages a 1 MiB write is 256 pieces, each a descriptor a
 * virtio disk's host handles apart; from a huge page it is one. On this
 * project's VMs a 1 MiB O_DIRECT write took 1.0-1.4 ms from 4 KiB pages
 * and 0.25 ms from a huge page, a 64 KiB one 125 us and 46 us. Where the
 * kernel has no huge page to give, the buffer is plain pages, as before.
 * Not mapped in a forked child (MADV_DONTFORK: a snapshot child has no use
 * for it, and the parent's writes to it then copy nothing). Counted in
 * tmem_used. Aborts on out-of-memory, as tmalloc does. */
#define TMEM_IO_ALIGN ((size_t)2 << 20)
void *tmem_io_alloc(size_t len, size_t *cap);
void tmem_io_free(void *p, size_t cap);
/* Whether an I/O buffer is backed by huge pages: touches each of its
 * TMEM_IO_ALIGN units (faulting them in) and asks the kernel to collapse
 * any still in small pages (MADV_COLLAPSE, Linux 6.1), which it does only
 * if it can, whatever the system's THP setting. False where the kernel has
 * no THP or is older than 6.1, THP is disabled for the process
 * (PR_SET_THP_DISABLE), or no free huge page could be made. The answer is
 * as of now: the kernel may split the pages later (swap-out). */
bool tmem_io_huge(void *p, size_t cap);

#endif
