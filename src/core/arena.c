/* Bump arena: a list of chunks; reset collapses them into one chunk as large
 * as the peak so the steady state allocates nothing. */
#include "skeptic/core.h"

#include <string.h>

struct chunk {
    struct chunk *next;
    size_t cap, used;
    unsigned char *mem;
};

struct sk_arena {
    struct chunk *head; /* current chunk first */
    size_t total_used;  /* across chunks since reset */
    size_t peak;
};

static struct chunk *chunk_new(size_t cap)
{
    struct chunk *c = sk_malloc(sizeof *c);
    if (!c) return NULL;
    c->mem = sk_malloc(cap);
    if (!c->mem) {
        sk_free(c);
        return NULL;
    }
    c->cap = cap;
    c->used = 0;
    c->next = NULL;
    return c;
}

struct sk_arena *sk_arena_new(size_t initial_bytes)
{
    struct sk_arena *a = sk_calloc(1, sizeof *a);
    if (!a) return NULL;
    if (initial_bytes < 4096) initial_bytes = 4096;
    a->head = chunk_new(initial_bytes);
    if (!a->head) {
        sk_free(a);
        return NULL;
    }
    return a;
}

void sk_arena_free(struct sk_arena *a)
{
    if (!a) return;
    struct chunk *c = a->head;
    while (c) {
        struct chunk *n = c->next;
        sk_free(c->mem);
        sk_free(c);
        c = n;
    }
    sk_free(a);
}

void *sk_arena_alloc(struct sk_arena *a, size_t bytes)
{
    size_t sz = (bytes + 63) & ~(size_t)63;
    if (sz == 0) sz = 64;
    struct chunk *c = a->head;
    if (c->used + sz > c->cap) {
        size_t cap = c->cap * 2;
        if (cap < sz) cap = sz;
        struct chunk *n = chunk_new(cap);
        if (!n) return NULL;
        n->next = c;
        a->head = n;
        c = n;
    }
    void *p = c->mem + c->used;
    c->used += sz;
    a->total_used += sz;
    if (a->total_used > a->peak) a->peak = a->total_used;
    return p;
}

void *sk_arena_zalloc(struct sk_arena *a, size_t bytes)
{
    void *p = sk_arena_alloc(a, bytes);
    if (p) memset(p, 0, bytes);
    return p;
}

void sk_arena_reset(struct sk_arena *a)
{
    if (a->head->next) {
        /* Several chunks: replace them with one that holds the peak. */
        struct chunk *big = chunk_new(a->peak);
        if (big) {
            struct chunk *c = a->head;
            while (c) {
                struct chunk *n = c->next;
                sk_free(c->mem);
                sk_free(c);
                c = n;
            }
            a->head = big;
        } else {
            /* Out of memory: keep the chunks, just rewind them all. */
            for (struct chunk *c = a->head; c; c = c->next) c->used = 0;
        }
    }
    a->head->used = 0;
    a->total_used = 0;
}

size_t sk_arena_used(const struct sk_arena *a) { return a->total_used; }
