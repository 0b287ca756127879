/* buf.h - a growable byte buffer.
 *
 * struct tbuf owns `data` (allocated with tmalloc); `len` bytes are valid,
 * `cap` are reserved. A zeroed struct tbuf is a valid empty buffer.
 * `data` may move on any call that grows the buffer: do not keep pointers
 * into it across appends.
 */
#ifndef TRIAD_BUF_H
#define TRIAD_BUF_H

#include <stddef.h>
#include <stdint.h>

struct tbuf {
    char *data;
    size_t len;
    size_t cap;
};

/* make room for at least `extra` more bytes past len */
void tbuf_reserve(struct tbuf *b, size_t extra);
void tbuf_append(struct tbuf *b, const void *p, size_t n);
void tbuf_appendc(struct tbuf *b, char c);
void tbuf_appends(struct tbuf *b, const char *s); /* NUL-terminated */
/* printf-style append */
void tbuf_appendf(struct tbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void tbuf_append_u32le(struct tbuf *b, uint32_t v);
void tbuf_append_u64le(struct tbuf *b, uint64_t v);
/* drop the first n bytes (memmove of the rest) */
void tbuf_consume(struct tbuf *b, size_t n);
void tbuf_reset(struct tbuf *b); /* len = 0, keeps the memory */
void tbuf_free(struct tbuf *b);  /* releases the memory; b is empty after */

static inline uint32_t tbuf_read_u32le(const void *p)
{
    const unsigned char *c = p;
    return (uint32_t)c[0] | (uint32_t)c[1] << 8 | (uint32_t)c[2] << 16 | (uint32_t)c[3] << 24;
}

static inline uint64_t tbuf_read_u64le(const void *p)
{
    const unsigned char *c = p;
    return (uint64_t)tbuf_read_u32le(c) | (uint64_t)tbuf_read_u32le(c + 4) << 32;
}

static inline void tbuf_write_u32le(void *p, uint32_t v)
{
    unsigned char *c = p;
    c[0] = (unsigned char)v;
    c[1] = (unsigned char)(v >> 8);
    c[2] = (unsigned char)(v >> 16);
    c[3] = (unsigned char)(v >> 24);
}

static inline void tbuf_write_u64le(void *p, uint64_t v)
{
    tbuf_write_u32le(p, (uint32_t)v);
    tbuf_write_u32le((unsigned char *)p + 4, (uint32_t)(v >> 32));
}

#endif
