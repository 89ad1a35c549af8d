/* Status messages, allocation hook, random streams, threads, clock. */
#define _POSIX_C_SOURCE 200809L
#include "skeptic/core.h"

#include <math.h>
#include <omp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static _Thread_local char err_buf[1024];

const char *sk_last_error(void) { return err_buf; }

int sk_error(int status, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err_buf, sizeof err_buf, fmt, ap);
    va_end(ap);
    return status;
}

void sk_error_clear(void) { err_buf[0] = 0; }

const char *sk_status_name(int status)
{
    switch (status) {
    case SK_OK: return "SK_OK";
    case SK_EINVAL: return "SK_EINVAL";
    case SK_ENOMEM: return "SK_ENOMEM";
    case SK_EIO: return "SK_EIO";
    case SK_EFORMAT: return "SK_EFORMAT";
    case SK_ENONFINITE: return "SK_ENONFINITE";
    case SK_ESTATE: return "SK_ESTATE";
    default: return "SK_E?";
    }
}

void sk_assert_fail(const char *expr, const char *file, int line)
{
    fprintf(stderr, "skeptic: internal error: assertion `%s' failed at %s:%d\n", expr, file, line);
    abort();
}

/* 0 (or below, once spent) = never fail. Atomic: OpenMP threads allocate
 * too, and exactly one allocation may take the failure. */
static _Atomic long alloc_fail_countdown;

void sk_alloc_fail_after(long n) { atomic_store(&alloc_fail_countdown, n); }

bool sk_alloc_fail_taken(void) { return atomic_load(&alloc_fail_countdown) <= 0; }

void *sk_malloc(size_t bytes)
{
    if (atomic_load_explicit(&alloc_fail_countdown, memory_order_relaxed) > 0 &&
        atomic_fetch_sub(&alloc_fail_countdown, 1) == 1) {
        sk_error(SK_ENOMEM, "out of memory (injected failure)");
        return NULL;
    }
    void *p = NULL;
    size_t sz = (bytes + 63) & ~(size_t)63;
    if (sz == 0) sz = 64;
    if (posix_memalign(&p, 64, sz) != 0) {
        sk_error(SK_ENOMEM, "out of memory allocating %zu bytes", bytes);
        return NULL;
    }
    return p;
}

void *sk_calloc(size_t n, size_t size)
{
    if (size && n > SIZE_MAX / size) {
        sk_error(SK_ENOMEM, "allocation of %zu x %zu bytes overflows", n, size);
        return NULL;
    }
    void *p = sk_malloc(n * size);
    if (p) memset(p, 0, n * size);
    return p;
}

void sk_free(void *p) { free(p); }

char *sk_strdup(const char *s)
{
    size_t n = strlen(s) + 1;
    char *d = sk_malloc(n);
    if (d) memcpy(d, s, n);
    return d;
}

/* ---- SplitMix64 as a counter-based generator ---- */
#define GOLDEN 0x9E3779B97F4A7C15ull

uint64_t sk_mix64(uint64_t z)
{
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

struct sk_rng sk_rng_new(uint64_t seed)
{
    struct sk_rng r = { sk_mix64(seed ^ 0x5ce971c5ce971c00ull), 0 };
    return r;
}

struct sk_rng sk_rng_derive(uint64_t key, uint64_t id)
{
    struct sk_rng r = { sk_mix64(key ^ sk_mix64(id + GOLDEN)), 0 };
    return r;
}

static inline uint64_t draw_at(uint64_t key, uint64_t i) { return sk_mix64(key + (i + 1) * GOLDEN); }

uint64_t sk_rng_u64(struct sk_rng *r) { return draw_at(r->key, r->ctr++); }

float sk_rng_uniform(struct sk_rng *r) { return (float)(sk_rng_u64(r) >> 40) * 0x1.0p-24f; }

double sk_rng_uniform_d(struct sk_rng *r) { return (double)(sk_rng_u64(r) >> 11) * 0x1.0p-53; }

static float normal_from(uint64_t a, uint64_t b, int second)
{
    /* u1 in (0,1], u2 in [0,1) */
    double u1 = ((double)(a >> 11) + 1.0) * 0x1.0p-53;
    double u2 = (double)(b >> 11) * 0x1.0p-53;
    double r = sqrt(-2.0 * log(u1));
    double t = 2.0 * 3.14159265358979323846 * u2;
    return (float)(second ? r * sin(t) : r * cos(t));
}

float sk_rng_normal(struct sk_rng *r)
{
    /* Each normal consumes two draws; deterministic, no cached state. */
    uint64_t a = sk_rng_u64(r), b = sk_rng_u64(r);
    return normal_from(a, b, 0);
}

uint64_t sk_rng_below(struct sk_rng *r, uint64_t n)
{
    /* Lemire's multiply-shift with rejection: unbiased. */
    uint64_t x = sk_rng_u64(r);
    __uint128_t m = (__uint128_t)x * n;
    uint64_t l = (uint64_t)m;
    if (l < n) {
        uint64_t t = -n % n;
        while (l < t) {
            x = sk_rng_u64(r);
            m = (__uint128_t)x * n;
            l = (uint64_t)m;
        }
    }
    return (uint64_t)(m >> 64);
}

void sk_rng_shuffle(struct sk_rng *r, int *idx, int n)
{
    for (int i = n - 1; i > 0; i--) {
        int j = (int)sk_rng_below(r, (uint64_t)i + 1);
        int t = idx[i];
        idx[i] = idx[j];
        idx[j] = t;
    }
}

float sk_rng_uniform_at(uint64_t key, uint64_t i) { return (float)(draw_at(key, i) >> 40) * 0x1.0p-24f; }

float sk_rng_normal_at(uint64_t key, uint64_t i)
{
    return normal_from(draw_at(key, 2 * i), draw_at(key, 2 * i + 1), 0);
}

double sk_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}
