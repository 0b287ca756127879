/* err.h - human detail for an error, into the caller's errmsg buffer. */
#ifndef TRIAD_ERR_H
#define TRIAD_ERR_H

#include <stddef.h>

/* Format into errmsg (errlen bytes, always NUL-terminated); a NULL errmsg
 * or zero errlen is allowed and ignored. */
void triad_errf(char *errmsg, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif
