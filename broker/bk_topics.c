/* bk_topics -- in-memory topic registry (see bk_topics.h). A small array with
 * linear lookup: fine for the handful of topics a single node serves today;
 * the storage-backed registry brings a hash map. */
#include "bk_topics.h"

#include "sc_err.h"
#include "sc_mem.h"

#include <string.h>

typedef struct {
    char *name;
    size_t len;
    int32_t partitions;
} topic_t;

struct bk_topics {
    topic_t *v;
    size_t n, cap;
};

int bk_topics_new(bk_topics_t **out)
{
    bk_topics_t *t = sc_calloc(1, sizeof *t);
    if (!t)
        return SC_ERR_NO_MEMORY;
    *out = t;
    return 0;
}

void bk_topics_free(bk_topics_t *t)
{
    if (!t)
        return;
    for (size_t i = 0; i < t->n; i++)
        sc_free(t->v[i].name);
    sc_free(t->v);
    sc_free(t);
}

int bk_topic_name_valid(const char *name, size_t len)
{
    if (len == 0 || len > BK_TOPIC_NAME_MAX)
        return 0;
    if ((len == 1 && name[0] == '.') || (len == 2 && name[0] == '.' && name[1] == '.'))
        return 0;
    for (size_t i = 0; i < len; i++) {
        char c = name[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-'))
            return 0;
    }
    return 1;
}

static const topic_t *lookup(const bk_topics_t *t, const char *name, size_t len)
{
    for (size_t i = 0; i < t->n; i++)
        if (t->v[i].len == len && memcmp(t->v[i].name, name, len) == 0)
            return &t->v[i];
    return NULL;
}

int bk_topics_create(bk_topics_t *t, const char *name, size_t len, int32_t partitions)
{
    if (!bk_topic_name_valid(name, len))
        return SC_ERR_INVALID_TOPIC_EXCEPTION;
    if (partitions < 1)
        return SC_ERR_INVALID_PARTITIONS;
    if (lookup(t, name, len))
        return SC_ERR_TOPIC_ALREADY_EXISTS;
    if (t->n == t->cap) {
        size_t cap = t->cap ? t->cap * 2 : 16;
        topic_t *v = sc_realloc(t->v, cap * sizeof *v);
        if (!v)
            return SC_ERR_NO_MEMORY;
        t->v = v;
        t->cap = cap;
    }
    char *copy = sc_malloc(len + 1);
    if (!copy)
        return SC_ERR_NO_MEMORY;
    memcpy(copy, name, len);
    copy[len] = 0;
    t->v[t->n++] = (topic_t){copy, len, partitions};
    return 0;
}

int bk_topics_find(const bk_topics_t *t, const char *name, size_t len, int32_t *partitions)
{
    const topic_t *x = lookup(t, name, len);
    if (!x)
        return SC_ERR_UNKNOWN_TOPIC_OR_PARTITION;
    *partitions = x->partitions;
    return 0;
}

size_t bk_topics_count(const bk_topics_t *t) { return t->n; }

const char *bk_topics_get(const bk_topics_t *t, size_t i, int32_t *partitions)
{
    *partitions = t->v[i].partitions;
    return t->v[i].name;
}
