/*
 * lorawan_json -- a small strict JSON reader (RFC 8259) for the LoRaWAN
 * gateway plugin: the GWMP rxpk/stat documents and the instance config.
 *
 * The parser makes one pass over the text and fills a caller-supplied array
 * of tokens in document order (a value, then its children); nothing is
 * allocated and the text is not modified. Tokens point into the text, so they
 * are valid while the text is. Strict: no comments, no trailing commas, no
 * leading zeros, no control characters or bad escapes in strings, nothing but
 * whitespace after the value, nesting at most PL_LORAWAN_JSON_MAX_DEPTH.
 * Duplicate keys are accepted; lookups return the first.
 *
 * Pure; thread-safe with distinct token arrays.
 */
#ifndef PL_LORAWAN_JSON_H
#define PL_LORAWAN_JSON_H

#include <stddef.h>
#include <stdint.h>

#define PL_LORAWAN_JSON_MAX_DEPTH 32

typedef enum {
    PL_LORAWAN_JNULL = 1,
    PL_LORAWAN_JBOOL,
    PL_LORAWAN_JNUM,
    PL_LORAWAN_JSTR,
    PL_LORAWAN_JARR,
    PL_LORAWAN_JOBJ,
} pl_lorawan_jtype_t;

typedef struct {
    uint8_t type;   /* pl_lorawan_jtype_t */
    uint8_t escaped; /* JSTR: the raw text holds a backslash escape */
    uint32_t start; /* JSTR: first byte inside the quotes; others: first byte */
    uint32_t len;   /* JSTR: bytes inside the quotes; JARR/JOBJ: whole text */
    uint32_t count; /* JARR: elements; JOBJ: members (key + value = 2 tokens each) */
    uint32_t next;  /* index of the first token after this value's subtree */
} pl_lorawan_jtok_t;

typedef struct {
    const char *text;
    size_t len;
    pl_lorawan_jtok_t *tok;
    uint32_t ntok;
} pl_lorawan_json_t;

/* Parses text[0..len) into tok[0..max). Returns 0 and fills *doc (doc->tok =
 * tok, token 0 is the root), -EINVAL for malformed JSON (also a text longer
 * than 4 GiB), -E2BIG when more than max tokens would be needed. */
int pl_lorawan_json_parse(pl_lorawan_json_t *doc, const char *text, size_t len,
                          pl_lorawan_jtok_t *tok, uint32_t max);

/* Member `key` of the object at token obj: the index of its value token, or
 * -1 when obj is not an object or has no such member. Keys are compared after
 * unescaping. */
int pl_lorawan_json_get(const pl_lorawan_json_t *doc, uint32_t obj, const char *key);

/* Unescapes the string at token i into out (cap bytes, NUL-terminated).
 * Returns the length, -EINVAL when i is not a string or holds \u0000,
 * -ENOSPC when it does not fit. */
int pl_lorawan_json_str(const pl_lorawan_json_t *doc, uint32_t i, char *out, size_t cap);

/* The number at token i. Returns 0, -EINVAL when i is not a number or not
 * finite. */
int pl_lorawan_json_num(const pl_lorawan_json_t *doc, uint32_t i, double *out);

/* The integer at token i (no fraction or exponent, within [lo, hi]).
 * Returns 0, -EINVAL (not an integer) or -ERANGE. */
int pl_lorawan_json_int(const pl_lorawan_json_t *doc, uint32_t i, int64_t lo, int64_t hi,
                        int64_t *out);

/* The boolean at token i: 0 with *out set, or -EINVAL. */
int pl_lorawan_json_bool(const pl_lorawan_json_t *doc, uint32_t i, int *out);

/* Iteration: the first child of an array (or the first key of an object) is
 * i + 1; the token after child c is doc->tok[c].next. For objects, member m's
 * key is at k and its value at k + 1. */

/* Appends s to a JSON string literal with quotes and escapes into out at *pos
 * (cap bytes). Returns 0 or -ENOSPC (out unchanged past the old *pos then). */
int pl_lorawan_json_put_str(char *out, size_t cap, size_t *pos, const char *s, size_t n);

#endif
