/* The ground floor of bayes/: method names, default settings and the
 * elementwise pieces that every method and the predictive share (Gaussian
 * draws, softplus). Calls nothing else in bayes/, so the files above it
 * (posterior, laplace, vi, sgld, ...) never call one another in a circle. */
#include "bayes/bayes_impl.h"
#include "core/fastmath.h"

#include <math.h>
#include <string.h>

static const char *method_names[] = { "deterministic", "vi", "mc-dropout", "ensemble", "sgld", "laplace" };

const char *sk_bayes_method_name(enum sk_bayes_method m)
{
    return (unsigned)m < 6 ? method_names[m] : "?";
}

int sk_bayes_method_parse(const char *s)
{
    for (int i = 0; i < 6; i++)
        if (!strcmp(s, method_names[i])) return i;
    if (!strcmp(s, "bbb") || !strcmp(s, "bayes-by-backprop")) return SK_BAYES_VI;
    if (!strcmp(s, "mcdropout") || !strcmp(s, "dropout")) return SK_BAYES_MCDROPOUT;
    return -1;
}

struct sk_bayes_vi_config sk_bayes_vi_defaults(void)
{
    struct sk_bayes_vi_config c = { 0 };
    c.prior = SK_PRIOR_GAUSSIAN;
    c.prior_sigma = 0.1f;
    c.mix_pi = 0.5f;
    c.mix_s1 = 1.0f;
    c.mix_s2 = 0.0024787522f; /* e^-6 */
    c.init_sigma = 0.02f;
    c.kl_weight = 1.0f;
    c.anneal_epochs = 0;
    c.local_reparam = true;
    c.flipout = false;
    return c;
}

struct sk_bayes_sgld_config sk_bayes_sgld_defaults(void)
{
    struct sk_bayes_sgld_config c = { 0 };
    c.prior_sigma = 1.0f;
    c.temperature = 1.0f;
    c.burnin_epochs = 2;
    c.thin = 100;
    c.n_keep = 20;
    c.cycles = 0;
    return c;
}

struct sk_bayes_laplace_config sk_bayes_laplace_defaults(void)
{
    struct sk_bayes_laplace_config c = { 0 };
    c.hessian = SK_LAPLACE_KFAC;
    c.prior_precision = 0;
    c.select_on_val = false;
    c.probit = false;
    return c;
}

void sk_bayes_normals(uint64_t key, float *out, size_t n)
{
    const uint64_t G = 0x9E3779B97F4A7C15ull;
    size_t np = n / 2;
#pragma omp parallel for simd schedule(static) if (np > 32768)
    for (size_t j = 0; j < np; j++) {
        uint64_t a = sk_mix64_inline(key + (2 * j + 1) * G), b = sk_mix64_inline(key + (2 * j + 2) * G);
        float u1 = ((float)(int32_t)(a >> 40) + 1.0f) * 0x1.0p-24f, u2 = (float)(int32_t)(b >> 40) * 0x1.0p-24f;
        float r = sqrtf(-2.0f * sk_fast_logf(u1));
        struct sk_sincos sc = sk_fast_sincos_2pi(u2);
        out[2 * j] = r * sc.c;
        out[2 * j + 1] = r * sc.s;
    }
    if (n & 1) { /* the last, odd one: the cosine half of its pair */
        size_t j = np;
        uint64_t a = sk_mix64_inline(key + (2 * j + 1) * G), b = sk_mix64_inline(key + (2 * j + 2) * G);
        float u1 = ((float)(int32_t)(a >> 40) + 1.0f) * 0x1.0p-24f, u2 = (float)(int32_t)(b >> 40) * 0x1.0p-24f;
        out[2 * j] = sqrtf(-2.0f * sk_fast_logf(u1)) * sk_fast_sincos_2pi(u2).c;
    }
}

float sk_softplusf(float r) { return r > 0 ? r + log1pf(expf(-r)) : log1pf(expf(r)); }
float sk_sigmoidf(float r) { return r >= 0 ? 1.0f / (1.0f + expf(-r)) : expf(r) / (1.0f + expf(r)); }

void sk_bayes_vi_sigma(const float *rho, float *sigma, size_t n)
{
#pragma omp parallel for schedule(static) if (n > 65536)
    for (size_t i = 0; i < n; i++) sigma[i] = sk_softplusf(rho[i]);
}

void sk_bayes_vi_sample(const float *mu, const float *sigma, uint64_t key, float *w, size_t n)
{
    sk_bayes_normals(key, w, n);
#pragma omp parallel for schedule(static) if (n > 65536)
    for (size_t i = 0; i < n; i++) w[i] = mu[i] + sigma[i] * w[i];
}
