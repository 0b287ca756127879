#include "buf.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "defs.h"
#include "mem.h"

void tbuf_reserve(struct tbuf *b, size_t extra)
{
    size_t need = b->len + extra;
    TRIAD_ASSERT(need >= b->len); /* no overflow */
    if (need <= b->cap)
        return;
    size_t cap = b->cap ? b->cap : 64;
    while (cap < need)
        cap = cap < (SIZE_MAX / 2) ? cap * 2 : need;
    b->data = trealloc(b->data, cap);
    b->cap = cap;
}

void tbuf_append(struct tbuf *b, const void *p, size_t n)
{
    if (n == 0)
        return;
    tbuf_reserve(b, n);
    memcpy(b->data + b->len, p, n);
    b->len += n;
}

void tbuf_appendc(struct tbuf *b, char c)
{
    tbuf_reserve(b, 1);
    b->data[b->len++] = c;
}

void tbuf_appends(struct tbuf *b, const char *s)
{
    tbuf_append(b, s, strlen(s));
}

void tbuf_appendf(struct tbuf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char small[256];
    int n = vsnprintf(small, sizeof(small), fmt, ap);
    va_end(ap);
    TRIAD_ASSERT(n >= 0);
    if ((size_t)n < sizeof(small)) {
        tbuf_append(b, small, (size_t)n);
        return;
    }
    tbuf_reserve(b, (size_t)n + 1);
    va_start(ap, fmt);
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

void tbuf_append_u32le(struct tbuf *b, uint32_t v)
{
    tbuf_reserve(b, 4);
    tbuf_write_u32le(b->data + b->len, v);
    b->len += 4;
}

void tbuf_append_u64le(struct tbuf *b, uint64_t v)
{
    tbuf_reserve(b, 8);
    tbuf_write_u64le(b->data + b->len, v);
    b->len += 8;
}

void tbuf_consume(struct tbuf *b, size_t n)
{
    TRIAD_ASSERT(n <= b->len);
    if (n == b->len) {
        b->len = 0;
        return;
    }
    memmove(b->data, b->data + n, b->len - n);
    b->len -= n;
}

void tbuf_reset(struct tbuf *b)
{
    b->len = 0;
}

void tbuf_free(struct tbuf *b)
{
    tfree(b->data);
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
}
