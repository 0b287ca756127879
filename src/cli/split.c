/* split.c - splitting a typed line into arguments, quoted as redis-cli does.
 *
 * Outside quotes, blanks separate arguments and a quote opens quoting even
 * in the middle of a word (a"b c" is one argument, `ab c`). Inside double
 * quotes \n \r \t \b \a \xHH and \<any> are escapes; inside single quotes
 * only \' is. A closing quote must end the argument: `"a"b` is an error.
 */
#include <ctype.h>
#include <string.h>

#include "../common/defs.h"
#include "../common/mem.h"
#include "cli_int.h"

void cli_split_free(int argc, char **argv, size_t *lens)
{
    for (int i = 0; i < argc; i++)
        tfree(argv[i]);
    tfree(argv);
    tfree(lens);
}

/* Reads one argument starting at *pp (not a blank) into arg. */
static int split_one(const char **pp, struct tbuf *arg)
{
    const char *p = *pp;
    int in_dq = 0, in_sq = 0;

    for (;;) {
        if (in_dq) {
            if (*p == '\0')
                return TRIAD_EINVAL; /* unterminated quotes */
            if (p[0] == '\\' && p[1] == 'x' && triad_hex_digit(p[2]) >= 0 && triad_hex_digit(p[3]) >= 0) {
                tbuf_appendc(arg, (char)(triad_hex_digit(p[2]) * 16 + triad_hex_digit(p[3])));
                p += 4;
            } else if (p[0] == '\\' && p[1] != '\0') {
                char c = p[1];
                switch (c) {
                case 'n': c = '\n'; break;
                case 'r': c = '\r'; break;
                case 't': c = '\t'; break;
                case 'b': c = '\b'; break;
                case 'a': c = '\a'; break;
                default: break;
                }
                tbuf_appendc(arg, c);
                p += 2;
            } else if (*p == '"') {
                if (p[1] != '\0' && !isspace((unsigned char)p[1]))
                    return TRIAD_EINVAL; /* "foo"bar */
                *pp = p + 1;
                return 0;
            } else {
                tbuf_appendc(arg, *p++);
            }
        } else if (in_sq) {
            if (*p == '\0')
                return TRIAD_EINVAL;
            if (p[0] == '\\' && p[1] == '\'') {
                tbuf_appendc(arg, '\'');
                p += 2;
            } else if (*p == '\'') {
                if (p[1] != '\0' && !isspace((unsigned char)p[1]))
                    return TRIAD_EINVAL;
                *pp = p + 1;
                return 0;
            } else {
                tbuf_appendc(arg, *p++);
            }
        } else {
            if (*p == '\0' || isspace((unsigned char)*p)) {
                *pp = p;
                return 0;
            }
            if (*p == '"')
                in_dq = 1;
            else if (*p == '\'')
                in_sq = 1;
            else
                tbuf_appendc(arg, *p);
            p++;
        }
    }
}

int cli_split_line(const char *line, int *argc_out, char ***argv_out, size_t **lens_out)
{
    int argc = 0, cap = 0;
    char **argv = NULL;
    size_t *lens = NULL;
    struct tbuf arg = {0};
    const char *p = line;
    int rc = 0;

    for (;;) {
        while (*p != '\0' && isspace((unsigned char)*p))
            p++;
        if (*p == '\0')
            break;
        if (argc == CLI_SPLIT_ARGS_MAX) {
            rc = TRIAD_ELIMIT;
            goto err_free;
        }
        tbuf_reset(&arg);
        rc = split_one(&p, &arg);
        if (rc != 0)
            goto err_free;
        if (argc == cap) {
            cap = cap ? cap * 2 : 8;
            argv = trealloc(argv, (size_t)cap * sizeof(*argv));
            lens = trealloc(lens, (size_t)cap * sizeof(*lens));
        }
        /* copied by length: "\x00" is a valid argument */
        argv[argc] = tmalloc(arg.len + 1);
        if (arg.len > 0)
            memcpy(argv[argc], arg.data, arg.len);
        argv[argc][arg.len] = '\0';
        lens[argc] = arg.len;
        argc++;
    }
    tbuf_free(&arg);
    *argc_out = argc;
    *argv_out = argv;
    *lens_out = lens;
    return 0;

err_free:
    tbuf_free(&arg);
    cli_split_free(argc, argv, lens);
    return rc;
}
