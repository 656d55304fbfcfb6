/*
 * cli_plugin -- strata plugin list|status: the broker's plugin instances.
 *
 * Reads the status file stratad rewrites every second,
 * <log.dirs[0]>/.plugins/status.json (docs/plugins.md), so it works on the
 * broker's host without a Kafka connection and whatever the broker's state.
 * The file is located with -d/--data-dir (the broker's first log dir; default
 * $STRATA_DATA_DIR) or given with --status-file. --format json prints the
 * file's JSON (list: all of it; status: the instance's object).
 */
#include "cli.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

static const char plugin_usage[] =
    "usage: strata plugin list [options]\n"
    "       strata plugin status [options] [instance...]\n"
    "\n"
    "Plugin instances running in stratad, from <data dir>/.plugins/status.json\n"
    "(rewritten by the broker every second; docs/plugins.md).\n"
    "  -d, --data-dir DIR      the broker's first log.dirs entry (default $STRATA_DATA_DIR)\n"
    "      --status-file PATH  read this status file instead\n"
    "  plus the global options (strata --help)\n";

/* ---- a small JSON tree (enough for status.json) ---- */
enum { J_NULL, J_BOOL, J_NUM, J_STR, J_ARR, J_OBJ };
typedef struct jn {
    int type;
    double num;
    char *str;             /* J_STR: decoded; object member: key in ->key */
    char *key;
    const char *start, *end; /* the value's text */
    struct jn *child, *next;
} jn_t;

typedef struct {
    const char *p, *end;
    int depth;
} jp_t;

static void ws(jp_t *j)
{
    while (j->p < j->end && isspace((unsigned char)*j->p))
        j->p++;
}

static void jn_free(jn_t *n)
{
    while (n) {
        jn_t *next = n->next;
        jn_free(n->child);
        free(n->str);
        free(n->key);
        free(n);
        n = next;
    }
}

static char *jstr(jp_t *j)
{
    if (j->p >= j->end || *j->p != '"')
        return NULL;
    j->p++;
    size_t cap = 16, len = 0;
    char *s = malloc(cap);
    while (s && j->p < j->end && *j->p != '"') {
        char c = *j->p++;
        if (c == '\\' && j->p < j->end) {
            char e = *j->p++;
            c = e == 'n' ? '\n' : e == 't' ? '\t' : e == 'u' ? '?' : e;
            if (e == 'u')
                j->p += j->end - j->p >= 4 ? 4 : j->end - j->p;
        }
        if (len + 2 > cap) {
            char *t = realloc(s, cap *= 2);
            if (!t) {
                free(s);
                return NULL;
            }
            s = t;
        }
        s[len++] = c;
    }
    if (!s || j->p >= j->end) {
        free(s);
        return NULL;
    }
    j->p++;
    s[len] = 0;
    return s;
}

static jn_t *jval(jp_t *j)
{
    ws(j);
    if (j->p >= j->end || ++j->depth > 32)
        return NULL;
    jn_t *n = calloc(1, sizeof *n);
    if (!n)
        return NULL;
    n->start = j->p;
    char c = *j->p;
    if (c == '{' || c == '[') {
        n->type = c == '{' ? J_OBJ : J_ARR;
        j->p++;
        jn_t **tail = &n->child;
        ws(j);
        if (j->p < j->end && *j->p == (c == '{' ? '}' : ']')) {
            j->p++;
        } else {
            for (;;) {
                char *key = NULL;
                ws(j);
                if (c == '{') {
                    if (!(key = jstr(j)))
                        goto bad;
                    ws(j);
                    if (j->p >= j->end || *j->p != ':') {
                        free(key);
                        goto bad;
                    }
                    j->p++;
                }
                jn_t *m = jval(j);
                if (!m) {
                    free(key);
                    goto bad;
                }
                m->key = key;
                *tail = m;
                tail = &m->next;
                ws(j);
                if (j->p < j->end && *j->p == ',') {
                    j->p++;
                    continue;
                }
                if (j->p < j->end && *j->p == (c == '{' ? '}' : ']')) {
                    j->p++;
                    break;
                }
                goto bad;
            }
        }
    } else if (c == '"') {
        n->type = J_STR;
        if (!(n->str = jstr(j)))
            goto bad;
    } else if (!strncmp(j->p, "true", 4) || !strncmp(j->p, "false", 5)) {
        n->type = J_BOOL;
        n->num = *j->p == 't';
        j->p += *j->p == 't' ? 4 : 5;
    } else if (!strncmp(j->p, "null", 4)) {
        n->type = J_NULL;
        j->p += 4;
    } else {
        char *e;
        n->type = J_NUM;
        n->num = strtod(j->p, &e);
        if (e == j->p)
            goto bad;
        j->p = e;
    }
    n->end = j->p;
    j->depth--;
    return n;
bad:
    jn_free(n);
    return NULL;
}

static const jn_t *jget(const jn_t *o, const char *key)
{
    for (const jn_t *m = o ? o->child : NULL; m; m = m->next)
        if (m->key && !strcmp(m->key, key))
            return m;
    return NULL;
}

static const char *jgets(const jn_t *o, const char *key)
{
    const jn_t *v = jget(o, key);
    return v && v->type == J_STR ? v->str : "";
}

static char *fmtnum(const jn_t *o, const char *key, char *buf, size_t len)
{
    const jn_t *v = jget(o, key);
    snprintf(buf, len, "%.0f", v && v->type == J_NUM ? v->num : 0);
    return buf;
}

/* ---- commands ---- */
typedef struct {
    const char *dir, *file;
} popt_t;

static int on_opt(int c, const char *arg, void *ctx)
{
    popt_t *o = ctx;
    if (c == 'd')
        o->dir = arg;
    else if (c == 0x200)
        o->file = arg;
    else
        return CLI_USAGE;
    return 0;
}

static int load(const popt_t *o, char **text, size_t *len, jn_t **root, double *age)
{
    char path[4096];
    const char *dir = o->dir ? o->dir : getenv("STRATA_DATA_DIR");
    if (o->file)
        snprintf(path, sizeof path, "%s", o->file);
    else if (dir && *dir)
        snprintf(path, sizeof path, "%s/.plugins/status.json", dir);
    else
        return cli_usage_err("plugin: give -d DATA_DIR (the broker's log.dirs) or --status-file");
    FILE *f = fopen(path, "r");
    if (!f) {
        fprintf(stderr, "strata: plugin: %s: %s (is stratad running with plugins?)\n", path,
                strerror(errno));
        return CLI_FAIL;
    }
    struct stat st;
    *age = fstat(fileno(f), &st) == 0 ? difftime(time(NULL), st.st_mtime) : 0;
    size_t cap = 1 << 16, n = 0;
    char *b = malloc(cap);
    size_t r;
    while (b && (r = fread(b + n, 1, cap - n, f)) > 0) {
        n += r;
        if (n == cap) {
            char *t = realloc(b, cap *= 2);
            if (!t) {
                free(b);
                b = NULL;
            }
            b = t;
        }
    }
    fclose(f);
    if (!b) {
        fputs("strata: out of memory\n", stderr);
        return CLI_FAIL;
    }
    jp_t j = {b, b + n, 0};
    jn_t *rt = jval(&j);
    if (!rt || rt->type != J_OBJ || !jget(rt, "instances")) {
        fprintf(stderr, "strata: plugin: %s: not a plugin status file\n", path);
        jn_free(rt);
        free(b);
        return CLI_FAIL;
    }
    *text = b;
    *len = n;
    *root = rt;
    return 0;
}

static int plugin_cmd(int argc, char **argv, int status)
{
    static const struct option lo[] = {{"data-dir", required_argument, NULL, 'd'},
                                       {"status-file", required_argument, NULL, 0x200},
                                       {NULL, 0, NULL, 0}};
    popt_t o = {0};
    int i = cli_getopt(argc, argv, "d:", lo, on_opt, &o, plugin_usage);
    if (i < 0)
        return CLI_USAGE;
    if (!status && i < argc)
        return cli_usage_err("plugin list: unexpected argument \"%s\"", argv[i]);
    char *text = NULL;
    size_t len = 0;
    jn_t *root = NULL;
    double age = 0;
    int rc = load(&o, &text, &len, &root, &age);
    if (rc)
        return rc;
    const jn_t *insts = jget(root, "instances");
    if (age > 10)
        fprintf(stderr, "strata: plugin: the status file is %.0f s old: is stratad running?\n",
                age);
    if (!status) {
        if (cli.json) {
            fwrite(text, 1, len, stdout);
        } else {
            cli_table_t *t = tbl_new(10, "INSTANCE", "PLUGIN", "VERSION", "STATE", "LINK",
                                     "RESTARTS", "PRODUCED", "DURABLE", "ERRORS", "TOPIC");
            char a[32], b[32], c[32], d[32];
            for (const jn_t *n = insts->child; n; n = n->next)
                tbl_row(t, jgets(n, "name"), jgets(n, "plugin"), jgets(n, "version"),
                        jgets(n, "state"), jgets(n, "link"), fmtnum(n, "restarts", a, sizeof a),
                        fmtnum(n, "records_produced", b, sizeof b),
                        fmtnum(n, "records_durable", c, sizeof c),
                        fmtnum(n, "append_errors", d, sizeof d), jgets(n, "topic"));
            tbl_print(t, stdout);
        }
        goto out;
    }
    int shown = 0, first = 1;
    if (cli.json)
        fputs("[", stdout);
    for (const jn_t *n = insts->child; n; n = n->next) {
        const char *name = jgets(n, "name");
        int want = i >= argc;
        for (int k = i; k < argc; k++)
            want |= !strcmp(argv[k], name);
        if (!want)
            continue;
        shown++;
        if (cli.json) {
            printf("%s%.*s", first ? "" : ",\n", (int)(n->end - n->start), n->start);
            first = 0;
            continue;
        }
        if (!first)
            putchar('\n');
        first = 0;
        cli_table_t *t = tbl_new(2, "FIELD", "VALUE");
        for (const jn_t *m = n->child; m; m = m->next) {
            char v[512];
            if (m->type == J_STR)
                snprintf(v, sizeof v, "%s", m->str);
            else
                snprintf(v, sizeof v, "%.*s", (int)(m->end - m->start), m->start);
            tbl_row(t, m->key, v);
        }
        tbl_print(t, stdout);
    }
    if (cli.json)
        fputs("]\n", stdout);
    for (int k = i; k < argc; k++) {
        int found = 0;
        for (const jn_t *n = insts->child; n; n = n->next)
            found |= !strcmp(argv[k], jgets(n, "name"));
        if (!found) {
            fprintf(stderr, "strata: plugin status: no instance \"%s\"\n", argv[k]);
            rc = CLI_FAIL;
        }
    }
    (void)shown;
out:
    jn_free(root);
    free(text);
    return rc;
}

int cmd_plugin(int argc, char **argv)
{
    if (argc < 2 || !strcmp(argv[1], "-h") || !strcmp(argv[1], "--help")) {
        fputs(plugin_usage, argc < 2 ? stderr : stdout);
        return argc < 2 ? CLI_USAGE : CLI_OK;
    }
    if (!strcmp(argv[1], "list"))
        return plugin_cmd(argc - 1, argv + 1, 0);
    if (!strcmp(argv[1], "status"))
        return plugin_cmd(argc - 1, argv + 1, 1);
    return cli_usage_err("plugin: unknown subcommand \"%s\" (list, status)", argv[1]);
}
