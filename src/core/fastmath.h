/* Branch-free float kernels that GCC vectorises inside `omp simd` loops
 * (glibc's logf and sincosf are scalar calls: they were a quarter of Monte
 * Carlo prediction's time). Accurate to a few float ulps over the ranges
 * stated; test_bayes compares the normals built from them with libm in
 * double precision. Internal. */
#ifndef SKEPTIC_CORE_FASTMATH_H
#define SKEPTIC_CORE_FASTMATH_H

#include <stdint.h>
#include <string.h>

static inline uint64_t sk_mix64_inline(uint64_t z) /* sk_mix64, inlined */
{
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/* log(x) for normal positive floats: x = 2^e m, m in [sqrt(1/2), sqrt(2)),
 * log m = 2 atanh(s), s = (m - 1)/(m + 1), |s| < 0.172 (odd series to s^9). */
static inline float sk_fast_logf(float x)
{
    uint32_t u;
    memcpy(&u, &x, 4);
    int32_t e = (int32_t)((u >> 23) & 0xff) - 127;
    u = (u & 0x007fffffu) | 0x3f800000u; /* m in [1, 2) */
    float m;
    memcpy(&m, &u, 4);
    int big = m > 1.41421356f;
    m = big ? 0.5f * m : m;
    e += big;
    float s = (m - 1.0f) / (m + 1.0f), s2 = s * s;
    float poly = 2.0f + s2 * (0.6666666667f + s2 * (0.4f + s2 * (0.2857142857f + s2 * 0.2222222222f)));
    return (float)e * 0.69314718056f + s * poly;
}

/* sin and cos of 2 pi u for u in [0, 1): quadrant q = round(4u), the rest
 * theta = 2 pi (u - q/4) in [-pi/4, pi/4] by Taylor polynomials. */
struct sk_sincos {
    float s, c;
};
static inline struct sk_sincos sk_fast_sincos_2pi(float u)
{
    int q = (int)(4.0f * u + 0.5f); /* u >= 0: truncation is floor */
    float t = 6.28318530717958648f * (u - 0.25f * (float)q), t2 = t * t;
    float s = t * (1.0f + t2 * (-1.0f / 6 + t2 * (1.0f / 120 + t2 * (-1.0f / 5040 + t2 * (1.0f / 362880)))));
    float c = 1.0f + t2 * (-0.5f + t2 * (1.0f / 24 + t2 * (-1.0f / 720 + t2 * (1.0f / 40320))));
    int k = q & 3;
    float a = (k & 1) ? c : s, b = (k & 1) ? s : c;
    struct sk_sincos r = { (k & 2) ? -a : a, ((k + 1) & 2) ? -b : b };
    return r;
}

#endif
