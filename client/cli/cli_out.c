/*
 * cli_out -- output for the strata CLI: aligned tables, a JSON writer with
 * escaping, error reporting, and the small parsers every command uses.
 */
#include "cli.h"

#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ---- errors ---------------------------------------------------------------------- */

int cli_usage_err(const char *fmt, ...)
{
    va_list ap;

    fputs("strata: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputs(" (see --help)\n", stderr);
    return CLI_USAGE;
}

static void vfail(strata_err_t err, const char *bmsg, const char *fmt, va_list ap)
{
    fputs("strata: ", stderr);
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, ": %s: %s", strata_err_name(err), strata_err_str(err));
    if (bmsg && *bmsg)
        fprintf(stderr, " (%s)", bmsg);
    fputc('\n', stderr);
}

int cli_fail(strata_err_t err, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vfail(err, NULL, fmt, ap);
    va_end(ap);
    return CLI_FAIL;
}

int cli_fail_msg(strata_err_t err, const char *broker_msg, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vfail(err, broker_msg, fmt, ap);
    va_end(ap);
    return CLI_FAIL;
}

strata_admin_t *cli_admin(void)
{
    strata_admin_t *a = NULL;
    char errstr[256];
    strata_err_t rc = strata_admin_new(cli.conf, &a, errstr, sizeof errstr);

    if (rc) {
        cli_fail_msg(rc, errstr, "admin client");
        return NULL;
    }
    return a;
}

/* ---- parsers ---------------------------------------------------------------------- */

int cli_parse_i64(const char *s, int64_t *out)
{
    char *e;
    long long v;

    if (!s || !*s)
        return -1;
    errno = 0;
    v = strtoll(s, &e, 10);
    if (*e || errno)
        return -1;
    *out = v;
    return 0;
}

int cli_parse_time(const char *s, int64_t *ms)
{
    struct tm tm;
    int y, mo, d, h = 0, mi = 0, sec = 0, n = 0, frac = 0, fdig = 0;
    const char *p;

    if (!cli_parse_i64(s, ms))
        return *ms >= 0 ? 0 : -1;
    if (sscanf(s, "%4d-%2d-%2d%n", &y, &mo, &d, &n) != 3)
        return -1;
    p = s + n;
    if (*p == 'T' || *p == ' ') {
        if (sscanf(p + 1, "%2d:%2d%n", &h, &mi, &n) != 2)
            return -1;
        p += 1 + n;
        if (*p == ':') {
            if (sscanf(p + 1, "%2d%n", &sec, &n) != 1)
                return -1;
            p += 1 + n;
            if (*p == '.' || *p == ',') {
                p++;
                while (*p >= '0' && *p <= '9') {
                    if (fdig < 3) {
                        frac = frac * 10 + (*p - '0');
                        fdig++;
                    }
                    p++;
                }
                while (fdig && fdig < 3) {
                    frac *= 10;
                    fdig++;
                }
            }
        }
    }
    long off = 0; /* seconds east of UTC; no zone = UTC */
    if (*p == 'Z') {
        p++;
    } else if (*p == '+' || *p == '-') {
        int oh, om = 0;
        int sign = *p == '-' ? -1 : 1;
        if (sscanf(p + 1, "%2d%n", &oh, &n) != 1)
            return -1;
        p += 1 + n;
        if (*p == ':')
            p++;
        if (*p >= '0' && *p <= '9') {
            if (sscanf(p, "%2d%n", &om, &n) != 1)
                return -1;
            p += n;
        }
        off = sign * (oh * 3600L + om * 60L);
    }
    if (*p || mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || sec > 60)
        return -1;
    memset(&tm, 0, sizeof tm);
    tm.tm_year = y - 1900;
    tm.tm_mon = mo - 1;
    tm.tm_mday = d;
    tm.tm_hour = h;
    tm.tm_min = mi;
    tm.tm_sec = sec;
    time_t t = timegm(&tm);
    *ms = ((int64_t)t - off) * 1000 + frac;
    return *ms >= 0 ? 0 : -1;
}

/* ---- tables ------------------------------------------------------------------------ */

struct cli_table {
    int ncols;
    size_t nrows, cap;
    char **cells; /* nrows * ncols, row 0 = headers */
};

static void tbl_add(cli_table_t *t, char **row)
{
    if (t->nrows == t->cap) {
        size_t ncap = t->cap ? t->cap * 2 : 16;
        char **nc = realloc(t->cells, ncap * (size_t)t->ncols * sizeof *nc);
        if (!nc) {
            for (int i = 0; i < t->ncols; i++)
                free(row[i]);
            return;
        }
        t->cells = nc;
        t->cap = ncap;
    }
    memcpy(t->cells + t->nrows * (size_t)t->ncols, row, (size_t)t->ncols * sizeof *row);
    t->nrows++;
}

static char *dupcell(const char *s) { return strdup(s ? s : "-"); }

cli_table_t *tbl_new(int ncols, ...)
{
    cli_table_t *t = calloc(1, sizeof *t);
    char *row[32];
    va_list ap;

    if (!t || ncols > 32) {
        free(t);
        return NULL;
    }
    t->ncols = ncols;
    va_start(ap, ncols);
    for (int i = 0; i < ncols; i++)
        row[i] = dupcell(va_arg(ap, const char *));
    va_end(ap);
    tbl_add(t, row);
    return t;
}

void tbl_row(cli_table_t *t, ...)
{
    char *row[32];
    va_list ap;

    if (!t)
        return;
    va_start(ap, t);
    for (int i = 0; i < t->ncols; i++)
        row[i] = dupcell(va_arg(ap, const char *));
    va_end(ap);
    tbl_add(t, row);
}

void tbl_rowf(cli_table_t *t, const char *fmt, ...)
{
    char *line = NULL, *row[32], *p;
    va_list ap;

    if (!t)
        return;
    va_start(ap, fmt);
    if (vasprintf(&line, fmt, ap) < 0)
        line = NULL;
    va_end(ap);
    if (!line)
        return;
    p = line;
    for (int i = 0; i < t->ncols; i++) {
        char *tab = p ? strchr(p, '\t') : NULL;
        if (tab)
            *tab = 0;
        row[i] = dupcell(p);
        p = tab ? tab + 1 : NULL;
    }
    free(line);
    tbl_add(t, row);
}

/* Display width: UTF-8 code points. */
static size_t width(const char *s)
{
    size_t w = 0;
    for (; *s; s++)
        w += ((unsigned char)*s & 0xC0) != 0x80;
    return w;
}

void tbl_print(cli_table_t *t, FILE *f)
{
    size_t w[32] = {0};

    if (!t)
        return;
    for (size_t r = 0; r < t->nrows; r++)
        for (int c = 0; c < t->ncols; c++) {
            size_t x = width(t->cells[r * (size_t)t->ncols + (size_t)c]);
            if (x > w[c])
                w[c] = x;
        }
    for (size_t r = 0; r < t->nrows; r++) {
        for (int c = 0; c < t->ncols; c++) {
            const char *s = t->cells[r * (size_t)t->ncols + (size_t)c];
            fputs(s, f);
            if (c + 1 < t->ncols)
                fprintf(f, "%*s", (int)(w[c] - width(s) + 2), "");
        }
        fputc('\n', f);
    }
    for (size_t i = 0; i < t->nrows * (size_t)t->ncols; i++)
        free(t->cells[i]);
    free(t->cells);
    free(t);
}

/* ---- JSON --------------------------------------------------------------------------- */

/* Length of the valid UTF-8 sequence at p (n bytes left), 0 when invalid. */
static size_t utf8_len(const unsigned char *p, size_t n)
{
    size_t len;
    uint32_t cp;

    if (p[0] < 0x80)
        return 1;
    if ((p[0] & 0xE0) == 0xC0) {
        len = 2;
        cp = p[0] & 0x1F;
    } else if ((p[0] & 0xF0) == 0xE0) {
        len = 3;
        cp = p[0] & 0x0F;
    } else if ((p[0] & 0xF8) == 0xF0) {
        len = 4;
        cp = p[0] & 0x07;
    } else {
        return 0;
    }
    if (len > n)
        return 0;
    for (size_t i = 1; i < len; i++) {
        if ((p[i] & 0xC0) != 0x80)
            return 0;
        cp = cp << 6 | (p[i] & 0x3F);
    }
    if ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) ||
        cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
        return 0;
    return len;
}

void cli_json_escape(FILE *f, const void *data, size_t n)
{
    const unsigned char *p = data;

    for (size_t i = 0; i < n;) {
        unsigned char c = p[i];
        size_t l;
        switch (c) {
        case '"': fputs("\\\"", f); i++; continue;
        case '\\': fputs("\\\\", f); i++; continue;
        case '\n': fputs("\\n", f); i++; continue;
        case '\r': fputs("\\r", f); i++; continue;
        case '\t': fputs("\\t", f); i++; continue;
        case '\b': fputs("\\b", f); i++; continue;
        case '\f': fputs("\\f", f); i++; continue;
        default: break;
        }
        if (c < 0x20 || c == 0x7F) {
            fprintf(f, "\\u%04x", c);
            i++;
        } else if ((l = utf8_len(p + i, n - i))) {
            fwrite(p + i, 1, l, f);
            i += l;
        } else {
            fprintf(f, "\\u%04x", c); /* not UTF-8: the byte as a Latin-1 code point */
            i++;
        }
    }
}

void jw_init(jw_t *j, FILE *f)
{
    memset(j, 0, sizeof *j);
    j->f = f;
    j->first[0] = 1;
}

static void jw_sep(jw_t *j)
{
    if (j->after_key) {
        j->after_key = 0;
        return;
    }
    if (!j->first[j->depth])
        fputc(',', j->f);
    j->first[j->depth] = 0;
}

static void jw_open(jw_t *j, char c)
{
    jw_sep(j);
    fputc(c, j->f);
    if (j->depth < 31)
        j->depth++;
    j->first[j->depth] = 1;
}

void jw_obj(jw_t *j) { jw_open(j, '{'); }
void jw_arr(jw_t *j) { jw_open(j, '['); }
void jw_obj_end(jw_t *j)
{
    fputc('}', j->f);
    if (j->depth)
        j->depth--;
}
void jw_arr_end(jw_t *j)
{
    fputc(']', j->f);
    if (j->depth)
        j->depth--;
}

void jw_key(jw_t *j, const char *k)
{
    jw_sep(j);
    fputc('"', j->f);
    cli_json_escape(j->f, k, strlen(k));
    fputs("\":", j->f);
    j->after_key = 1;
}

void jw_strn(jw_t *j, const void *p, size_t n)
{
    jw_sep(j);
    if (!p) {
        fputs("null", j->f);
        return;
    }
    fputc('"', j->f);
    cli_json_escape(j->f, p, n);
    fputc('"', j->f);
}

void jw_str(jw_t *j, const char *s) { jw_strn(j, s, s ? strlen(s) : 0); }

void jw_int(jw_t *j, int64_t v)
{
    jw_sep(j);
    fprintf(j->f, "%lld", (long long)v);
}

void jw_bool(jw_t *j, int v)
{
    jw_sep(j);
    fputs(v ? "true" : "false", j->f);
}

void jw_null(jw_t *j)
{
    jw_sep(j);
    fputs("null", j->f);
}

void jw_end(jw_t *j)
{
    fputc('\n', j->f);
    j->depth = 0;
    j->first[0] = 1;
    j->after_key = 0;
}
