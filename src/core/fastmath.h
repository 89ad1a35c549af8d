/* Branch-free float kernels that GCC vectorises inside `omp simd` loops
 * (glibc's logf, expf, log1pf and sincosf are scalar calls: they were a
 * quarter of Monte Carlo prediction's time and a fifth of Bayes by
 * Backprop's). Accurate to a few float ulps over the ranges stated;
 * test_bayes compares them with libm in double precision. Selects on
 * constants are written as multiplications by 0/1 masks: a clamp such as
 * `a > 87 ? 87 : a` lets GCC thread the constant path and the loop stops
 * vectorising. Internal. */
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

/* exp(-a) for finite a >= 0 (0 for a > 87): -a = n ln2 + r, |r| <= ln2/2,
 * a degree-7 polynomial for exp(r), 2^n by the exponent bits. */
static inline float sk_fast_exp_neg(float a)
{
    float keep = (float)(a <= 87.0f);
    a *= keep;
    int n = (int)(a * -1.44269504089f - 0.5f); /* -a <= 0: rounds to nearest */
    float r = -a - (float)n * 0.693145751953125f - (float)n * 1.428606765330187e-06f;
    float p = 1.0f + r * (1.0f + r * (0.5f + r * (1.0f / 6 + r * (1.0f / 24 + r * (1.0f / 120 + r * (1.0f / 720 +
                                                                                                r * (1.0f / 5040)))))));
    int32_t u = (n + 127) * (1 << 23);
    float scale;
    memcpy(&scale, &u, 4);
    return p * scale * keep;
}

/* log(1 + e) for e in [0, 1], accurate for tiny e: with u = 1 + e rounded,
 * log1p(e) = log(u) e / (u - 1) (Goldberg), and e itself when u == 1. */
static inline float sk_fast_log1p_unit(float e)
{
    float u = 1.0f + e, d = u - 1.0f;
    float tiny = (float)(d == 0.0f);
    return tiny * e + (1.0f - tiny) * sk_fast_logf(u) * (e / (d + tiny));
}

#endif
