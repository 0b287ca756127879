/* err.c - see err.h. */
#include "err.h"

#include <stdarg.h>
#include <stdio.h>

void triad_errf(char *errmsg, size_t errlen, const char *fmt, ...)
{
    if (errmsg == NULL || errlen == 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(errmsg, errlen, fmt, ap);
    va_end(ap);
}
