/* test_words.h - split a test's command line into argv: space-separated
 * words, where "\s" in a word is a space, "\0" a NUL byte and "\e" makes
 * the word empty. Shared by the unit tests that run commands. */
#ifndef TRIAD_TEST_WORDS_H
#define TRIAD_TEST_WORDS_H

#include <string.h>

#include "../../src/common/defs.h"

#define T_ARGS_MAX 64
#define T_LINE_MAX 4096

/* words must hold T_LINE_MAX bytes; argv and argvlen T_ARGS_MAX entries. */
static inline int t_split(const char *line, char *words, char **argv, size_t *argvlen)
{
    int argc = 0;
    size_t w = 0;
    TRIAD_ASSERT(strlen(line) < T_LINE_MAX);
    for (const char *p = line; *p;) {
        while (*p == ' ')
            p++;
        if (!*p)
            break;
        TRIAD_ASSERT(argc < T_ARGS_MAX);
        argv[argc] = &words[w];
        size_t start = w;
        while (*p && *p != ' ') {
            if (p[0] == '\\' && p[1] == 's') {
                words[w++] = ' ';
                p += 2;
            } else if (p[0] == '\\' && p[1] == '0') {
                words[w++] = '\0';
                p += 2;
            } else if (p[0] == '\\' && p[1] == 'e') {
                p += 2;
            } else {
                words[w++] = *p++;
            }
        }
        argvlen[argc++] = w - start;
        words[w++] = '\0';
    }
    return argc;
}

#endif
