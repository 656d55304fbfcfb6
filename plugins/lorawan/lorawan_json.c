/*
 * lorawan_json -- strict JSON reader; see lorawan_json.h.
 *
 * Recursive descent, bounded by PL_LORAWAN_JSON_MAX_DEPTH, so the C stack
 * cannot be exhausted by nesting. Strings are checked for escapes, control
 * characters and UTF-8 validity (RFC 3629: no overlongs, no surrogates,
 * nothing above U+10FFFF) during the parse, so the accessors can trust them.
 */
#include "lorawan_json.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    const char *s;
    size_t n, pos;
    pl_lorawan_jtok_t *t;
    uint32_t max, nt;
} parser_t;

static int parse_value(parser_t *p, int depth);

static void skip_ws(parser_t *p)
{
    while (p->pos < p->n) {
        char c = p->s[p->pos];
        if (c != ' ' && c != '\t' && c != '\n' && c != '\r')
            break;
        p->pos++;
    }
}

static int new_tok(parser_t *p, uint8_t type, uint32_t *idx)
{
    if (p->nt >= p->max)
        return -E2BIG;
    pl_lorawan_jtok_t *t = &p->t[p->nt];
    memset(t, 0, sizeof(*t));
    t->type = type;
    t->start = (uint32_t)p->pos;
    *idx = p->nt++;
    return 0;
}

static int hexval(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Length of the valid UTF-8 sequence at s[0..n) (lead byte >= 0x80), or 0. */
static size_t utf8_seq(const unsigned char *s, size_t n)
{
    unsigned c = s[0];
    size_t len;
    unsigned min_second = 0x80, max_second = 0xBF;
    if (c >= 0xC2 && c <= 0xDF)
        len = 2;
    else if (c >= 0xE0 && c <= 0xEF) {
        len = 3;
        if (c == 0xE0)
            min_second = 0xA0; /* overlong */
        if (c == 0xED)
            max_second = 0x9F; /* surrogates */
    } else if (c >= 0xF0 && c <= 0xF4) {
        len = 4;
        if (c == 0xF0)
            min_second = 0x90;
        if (c == 0xF4)
            max_second = 0x8F; /* > U+10FFFF */
    } else
        return 0;
    if (n < len)
        return 0;
    if (s[1] < min_second || s[1] > max_second)
        return 0;
    for (size_t i = 2; i < len; i++)
        if (s[i] < 0x80 || s[i] > 0xBF)
            return 0;
    return len;
}

static int parse_string(parser_t *p)
{
    uint32_t idx;
    int rc;
    p->pos++; /* opening quote */
    if ((rc = new_tok(p, PL_LORAWAN_JSTR, &idx)))
        return rc;
    while (p->pos < p->n) {
        unsigned char c = (unsigned char)p->s[p->pos];
        if (c == '"') {
            p->t[idx].len = (uint32_t)(p->pos - p->t[idx].start);
            p->pos++;
            p->t[idx].next = p->nt;
            return 0;
        }
        if (c < 0x20)
            return -EINVAL;
        if (c == '\\') {
            p->t[idx].escaped = 1;
            if (p->pos + 1 >= p->n)
                return -EINVAL;
            char e = p->s[p->pos + 1];
            if (e == 'u') {
                if (p->pos + 6 > p->n)
                    return -EINVAL;
                for (int k = 2; k < 6; k++)
                    if (hexval((unsigned char)p->s[p->pos + k]) < 0)
                        return -EINVAL;
                p->pos += 6;
                continue;
            }
            if (!strchr("\"\\/bfnrt", e) || e == 0)
                return -EINVAL;
            p->pos += 2;
            continue;
        }
        if (c >= 0x80) {
            size_t l = utf8_seq((const unsigned char *)p->s + p->pos, p->n - p->pos);
            if (!l)
                return -EINVAL;
            p->pos += l;
            continue;
        }
        p->pos++;
    }
    return -EINVAL; /* unterminated */
}

static int is_digit(parser_t *p)
{
    return p->pos < p->n && p->s[p->pos] >= '0' && p->s[p->pos] <= '9';
}

static int parse_number(parser_t *p)
{
    uint32_t idx;
    int rc;
    if ((rc = new_tok(p, PL_LORAWAN_JNUM, &idx)))
        return rc;
    if (p->pos < p->n && p->s[p->pos] == '-')
        p->pos++;
    if (!is_digit(p))
        return -EINVAL;
    if (p->s[p->pos] == '0')
        p->pos++;
    else
        while (is_digit(p))
            p->pos++;
    if (p->pos < p->n && p->s[p->pos] == '.') {
        p->pos++;
        if (!is_digit(p))
            return -EINVAL;
        while (is_digit(p))
            p->pos++;
    }
    if (p->pos < p->n && (p->s[p->pos] == 'e' || p->s[p->pos] == 'E')) {
        p->pos++;
        if (p->pos < p->n && (p->s[p->pos] == '+' || p->s[p->pos] == '-'))
            p->pos++;
        if (!is_digit(p))
            return -EINVAL;
        while (is_digit(p))
            p->pos++;
    }
    p->t[idx].len = (uint32_t)(p->pos - p->t[idx].start);
    p->t[idx].next = p->nt;
    return 0;
}

static int parse_literal(parser_t *p, const char *word, uint8_t type)
{
    size_t l = strlen(word);
    uint32_t idx;
    int rc;
    if (p->n - p->pos < l || memcmp(p->s + p->pos, word, l) != 0)
        return -EINVAL;
    if ((rc = new_tok(p, type, &idx)))
        return rc;
    p->pos += l;
    p->t[idx].len = (uint32_t)l;
    p->t[idx].next = p->nt;
    return 0;
}

static int parse_container(parser_t *p, int depth, int obj)
{
    uint32_t idx;
    int rc;
    char close = obj ? '}' : ']';
    if (depth >= PL_LORAWAN_JSON_MAX_DEPTH)
        return -EINVAL;
    if ((rc = new_tok(p, obj ? PL_LORAWAN_JOBJ : PL_LORAWAN_JARR, &idx)))
        return rc;
    p->pos++;
    skip_ws(p);
    if (p->pos < p->n && p->s[p->pos] == close) {
        p->pos++;
        goto done;
    }
    for (;;) {
        skip_ws(p);
        if (obj) {
            if (p->pos >= p->n || p->s[p->pos] != '"')
                return -EINVAL;
            if ((rc = parse_string(p)))
                return rc;
            skip_ws(p);
            if (p->pos >= p->n || p->s[p->pos] != ':')
                return -EINVAL;
            p->pos++;
        }
        if ((rc = parse_value(p, depth + 1)))
            return rc;
        p->t[idx].count++;
        skip_ws(p);
        if (p->pos >= p->n)
            return -EINVAL;
        if (p->s[p->pos] == ',') {
            p->pos++;
            continue;
        }
        if (p->s[p->pos] == close) {
            p->pos++;
            break;
        }
        return -EINVAL;
    }
done:
    p->t[idx].len = (uint32_t)(p->pos - p->t[idx].start);
    p->t[idx].next = p->nt;
    return 0;
}

static int parse_value(parser_t *p, int depth)
{
    skip_ws(p);
    if (p->pos >= p->n)
        return -EINVAL;
    switch (p->s[p->pos]) {
    case '{':
        return parse_container(p, depth, 1);
    case '[':
        return parse_container(p, depth, 0);
    case '"':
        return parse_string(p);
    case 't':
        return parse_literal(p, "true", PL_LORAWAN_JBOOL);
    case 'f':
        return parse_literal(p, "false", PL_LORAWAN_JBOOL);
    case 'n':
        return parse_literal(p, "null", PL_LORAWAN_JNULL);
    default:
        return parse_number(p);
    }
}

int pl_lorawan_json_parse(pl_lorawan_json_t *doc, const char *text, size_t len,
                          pl_lorawan_jtok_t *tok, uint32_t max)
{
    parser_t p = {.s = text, .n = len, .t = tok, .max = max};
    int rc;
    if (len > UINT32_MAX - 1)
        return -EINVAL;
    if ((rc = parse_value(&p, 0)))
        return rc;
    skip_ws(&p);
    if (p.pos != p.n)
        return -EINVAL;
    doc->text = text;
    doc->len = len;
    doc->tok = tok;
    doc->ntok = p.nt;
    return 0;
}

/* Unescapes a validated string token. Returns length, -EINVAL or -ENOSPC. */
static int unescape(const pl_lorawan_json_t *doc, const pl_lorawan_jtok_t *t, char *out,
                    size_t cap)
{
    const char *s = doc->text + t->start;
    size_t n = t->len, o = 0;
    if (cap == 0)
        return -ENOSPC;
    for (size_t i = 0; i < n;) {
        if (s[i] != '\\') {
            if (o + 1 >= cap)
                return -ENOSPC;
            out[o++] = s[i++];
            continue;
        }
        char e = s[i + 1];
        char c;
        switch (e) {
        case 'b': c = '\b'; break;
        case 'f': c = '\f'; break;
        case 'n': c = '\n'; break;
        case 'r': c = '\r'; break;
        case 't': c = '\t'; break;
        case 'u': c = 0; break;
        default: c = e; break;
        }
        if (e != 'u') {
            if (o + 1 >= cap)
                return -ENOSPC;
            out[o++] = c;
            i += 2;
            continue;
        }
        uint32_t cp = 0;
        for (int k = 2; k < 6; k++)
            cp = cp << 4 | (uint32_t)hexval((unsigned char)s[i + k]);
        i += 6;
        if (cp >= 0xD800 && cp <= 0xDBFF) {
            uint32_t lo = 0;
            if (i + 6 > n || s[i] != '\\' || s[i + 1] != 'u')
                return -EINVAL;
            for (int k = 2; k < 6; k++)
                lo = lo << 4 | (uint32_t)hexval((unsigned char)s[i + k]);
            if (lo < 0xDC00 || lo > 0xDFFF)
                return -EINVAL;
            i += 6;
            cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
        } else if (cp >= 0xDC00 && cp <= 0xDFFF) {
            return -EINVAL;
        }
        if (cp == 0)
            return -EINVAL;
        char u[4];
        size_t ul;
        if (cp < 0x80) {
            u[0] = (char)cp;
            ul = 1;
        } else if (cp < 0x800) {
            u[0] = (char)(0xC0 | cp >> 6);
            u[1] = (char)(0x80 | (cp & 0x3F));
            ul = 2;
        } else if (cp < 0x10000) {
            u[0] = (char)(0xE0 | cp >> 12);
            u[1] = (char)(0x80 | (cp >> 6 & 0x3F));
            u[2] = (char)(0x80 | (cp & 0x3F));
            ul = 3;
        } else {
            u[0] = (char)(0xF0 | cp >> 18);
            u[1] = (char)(0x80 | (cp >> 12 & 0x3F));
            u[2] = (char)(0x80 | (cp >> 6 & 0x3F));
            u[3] = (char)(0x80 | (cp & 0x3F));
            ul = 4;
        }
        if (o + ul >= cap)
            return -ENOSPC;
        memcpy(out + o, u, ul);
        o += ul;
    }
    out[o] = 0;
    return (int)o;
}

int pl_lorawan_json_get(const pl_lorawan_json_t *doc, uint32_t obj, const char *key)
{
    if (obj >= doc->ntok || doc->tok[obj].type != PL_LORAWAN_JOBJ)
        return -1;
    size_t kl = strlen(key);
    uint32_t k = obj + 1;
    for (uint32_t m = 0; m < doc->tok[obj].count; m++) {
        const pl_lorawan_jtok_t *t = &doc->tok[k];
        if (!t->escaped) {
            if (t->len == kl && memcmp(doc->text + t->start, key, kl) == 0)
                return (int)(k + 1);
        } else {
            char buf[256];
            int l = unescape(doc, t, buf, sizeof(buf));
            if (l >= 0 && (size_t)l == kl && memcmp(buf, key, kl) == 0)
                return (int)(k + 1);
        }
        k = doc->tok[k + 1].next;
    }
    return -1;
}

int pl_lorawan_json_str(const pl_lorawan_json_t *doc, uint32_t i, char *out, size_t cap)
{
    if (i >= doc->ntok || doc->tok[i].type != PL_LORAWAN_JSTR)
        return -EINVAL;
    return unescape(doc, &doc->tok[i], out, cap);
}

int pl_lorawan_json_num(const pl_lorawan_json_t *doc, uint32_t i, double *out)
{
    char buf[64];
    if (i >= doc->ntok || doc->tok[i].type != PL_LORAWAN_JNUM)
        return -EINVAL;
    const pl_lorawan_jtok_t *t = &doc->tok[i];
    if (t->len >= sizeof(buf))
        return -EINVAL;
    memcpy(buf, doc->text + t->start, t->len);
    buf[t->len] = 0;
    double v = strtod(buf, NULL);
    if (!isfinite(v))
        return -EINVAL;
    *out = v;
    return 0;
}

int pl_lorawan_json_int(const pl_lorawan_json_t *doc, uint32_t i, int64_t lo, int64_t hi,
                        int64_t *out)
{
    if (i >= doc->ntok || doc->tok[i].type != PL_LORAWAN_JNUM)
        return -EINVAL;
    const pl_lorawan_jtok_t *t = &doc->tok[i];
    const char *s = doc->text + t->start;
    size_t k = 0;
    int neg = 0;
    uint64_t v = 0;
    if (s[0] == '-') {
        neg = 1;
        k = 1;
    }
    for (; k < t->len; k++) {
        if (s[k] < '0' || s[k] > '9')
            return -EINVAL;
        if (v > (UINT64_MAX - 9) / 10)
            return -ERANGE;
        v = v * 10 + (uint64_t)(s[k] - '0');
    }
    int64_t r;
    if (neg) {
        if (v > (uint64_t)INT64_MAX + 1)
            return -ERANGE;
        r = v == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)v;
    } else {
        if (v > (uint64_t)INT64_MAX)
            return -ERANGE;
        r = (int64_t)v;
    }
    if (r < lo || r > hi)
        return -ERANGE;
    *out = r;
    return 0;
}

int pl_lorawan_json_bool(const pl_lorawan_json_t *doc, uint32_t i, int *out)
{
    if (i >= doc->ntok || doc->tok[i].type != PL_LORAWAN_JBOOL)
        return -EINVAL;
    *out = doc->text[doc->tok[i].start] == 't';
    return 0;
}

int pl_lorawan_json_put_str(char *out, size_t cap, size_t *pos, const char *s, size_t n)
{
    size_t o = *pos;
    static const char hex[] = "0123456789abcdef";
    if (o + 1 >= cap)
        return -ENOSPC;
    out[o++] = '"';
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        const char *esc = NULL;
        char ubuf[7];
        if (c == '"')
            esc = "\\\"";
        else if (c == '\\')
            esc = "\\\\";
        else if (c == '\n')
            esc = "\\n";
        else if (c == '\r')
            esc = "\\r";
        else if (c == '\t')
            esc = "\\t";
        else if (c < 0x20) {
            ubuf[0] = '\\';
            ubuf[1] = 'u';
            ubuf[2] = '0';
            ubuf[3] = '0';
            ubuf[4] = hex[c >> 4];
            ubuf[5] = hex[c & 15];
            ubuf[6] = 0;
            esc = ubuf;
        }
        if (esc) {
            size_t l = strlen(esc);
            if (o + l >= cap)
                return -ENOSPC;
            memcpy(out + o, esc, l);
            o += l;
        } else {
            if (o + 1 >= cap)
                return -ENOSPC;
            out[o++] = (char)c;
        }
    }
    if (o + 1 >= cap)
        return -ENOSPC;
    out[o++] = '"';
    out[o] = 0;
    *pos = o;
    return 0;
}
