/* Optimisers as flat loops over the parameter buffer. */
#include "skeptic/optim.h"

#include <math.h>
#include <string.h>

static const char *kind_names[] = { "sgd", "momentum", "nesterov", "adam", "adamw", "rmsprop" };
static const char *sched_names[] = { "constant", "step", "cosine", "onecycle" };

const char *sk_optim_kind_name(enum sk_optim_kind k) { return (unsigned)k < 6 ? kind_names[k] : "?"; }
const char *sk_sched_kind_name(enum sk_sched_kind k) { return (unsigned)k < 4 ? sched_names[k] : "?"; }

int sk_optim_kind_parse(const char *s)
{
    for (int i = 0; i < 6; i++)
        if (!strcmp(s, kind_names[i])) return i;
    return -1;
}

int sk_sched_kind_parse(const char *s)
{
    for (int i = 0; i < 4; i++)
        if (!strcmp(s, sched_names[i])) return i;
    return -1;
}

struct sk_optim_config sk_optim_defaults(enum sk_optim_kind kind)
{
    struct sk_optim_config c = { 0 };
    c.kind = kind;
    c.lr = (kind == SK_OPT_ADAM || kind == SK_OPT_ADAMW || kind == SK_OPT_RMSPROP) ? 1e-3f : 0.01f;
    c.momentum = 0.9f;
    c.beta1 = 0.9f;
    c.beta2 = 0.999f;
    c.eps = 1e-8f;
    c.alpha = 0.99f;
    c.gamma = 0.1f;
    c.sam_eta = 0.01f;
    c.sched = SK_SCHED_CONSTANT;
    return c;
}

struct sk_optim *sk_optim_new(const struct sk_optim_config *cfg, size_t n)
{
    struct sk_optim *o = sk_calloc(1, sizeof *o);
    if (!o) return NULL;
    o->cfg = *cfg;
    o->n = n;
    o->m = sk_calloc(n ? n : 1, sizeof(float));
    o->v = sk_calloc(n ? n : 1, sizeof(float));
    if (!o->m || !o->v) {
        sk_optim_free(o);
        return NULL;
    }
    return o;
}

void sk_optim_free(struct sk_optim *o)
{
    if (!o) return;
    sk_free(o->m);
    sk_free(o->v);
    sk_free(o);
}

float sk_optim_lr_at(const struct sk_optim_config *c, long t)
{
    const double pi = 3.14159265358979323846;
    double lr = c->lr;
    long T = c->total_steps > 0 ? c->total_steps : 1;
    long wu = c->warmup_steps;
    if (c->sched == SK_SCHED_ONECYCLE && wu <= 0) wu = (long)(0.3 * T);
    if (wu > 0 && t < wu) {
        double lo = c->sched == SK_SCHED_ONECYCLE ? c->lr / 25.0 : 0.0;
        return (float)(lo + (c->lr - lo) * (double)(t + 1) / (double)wu);
    }
    switch (c->sched) {
    case SK_SCHED_CONSTANT: break;
    case SK_SCHED_STEP:
        if (c->step_size > 0) lr = c->lr * pow(c->gamma, (double)((t - (wu > 0 ? wu : 0)) / c->step_size));
        break;
    case SK_SCHED_COSINE:
    case SK_SCHED_ONECYCLE: {
        double span = (double)(T - (wu > 0 ? wu : 0));
        double f = span > 0 ? (double)(t - (wu > 0 ? wu : 0)) / span : 1.0;
        if (f > 1) f = 1;
        lr = c->min_lr + (c->lr - c->min_lr) * 0.5 * (1.0 + cos(pi * f));
        break;
    }
    }
    return (float)lr;
}

/* sum of g^2 in fixed chunks: float lanes inside a chunk (vectorised), chunks
 * added in order in double. The result does not depend on the thread count. */
#define SQ_CHUNK 4096
#define PAR_MIN 65536
static double sum_sq(const float *g, size_t n)
{
    size_t nc = (n + SQ_CHUNK - 1) / SQ_CHUNK;
    double ss = 0;
    float part[256];
    for (size_t c0 = 0; c0 < nc; c0 += 256) {
        long cn = (long)(nc - c0 < 256 ? nc - c0 : 256);
#pragma omp parallel for if (n > PAR_MIN) schedule(static)
        for (long c = 0; c < cn; c++) {
            size_t lo = (c0 + (size_t)c) * SQ_CHUNK, hi = lo + SQ_CHUNK < n ? lo + SQ_CHUNK : n;
            float acc = 0;
#pragma omp simd reduction(+ : acc)
            for (size_t i = lo; i < hi; i++) acc += g[i] * g[i];
            part[c] = acc;
        }
        for (long c = 0; c < cn; c++) ss += part[c];
    }
    return ss;
}

int sk_optim_step(struct sk_optim *o, float *w, float *g)
{
    const struct sk_optim_config *c = &o->cfg;
    size_t n = o->n;
    double ss = sum_sq(g, n);
    if (!isfinite(ss)) return sk_error(SK_ENONFINITE, "gradient is not finite at step %ld", o->t);
    float lr = sk_optim_lr_at(c, o->t);
    if (c->grad_noise > 0) {
        /* element i of child t: independent of the thread count */
        uint64_t key = sk_rng_derive(sk_rng_derive(sk_rng_new(c->noise_seed).key, SK_OPTIM_STREAM_NOISE).key,
                                     (uint64_t)o->t).key;
        float s = c->grad_noise;
#pragma omp parallel for if (n > PAR_MIN) schedule(static)
        for (size_t i = 0; i < n; i++) g[i] += s * sk_rng_normal_at(key, i);
        ss = sum_sq(g, n);
    }
    o->t++;
    float wd = c->kind == SK_OPT_ADAMW ? 0.0f : c->weight_decay, l1 = c->l1;
    if (wd != 0 || l1 != 0) {
        for (size_t i = 0; i < n; i++) g[i] += wd * w[i] + (w[i] > 0 ? l1 : w[i] < 0 ? -l1 : 0.0f);
        ss = sum_sq(g, n);
    }
    o->last_grad_norm = (float)sqrt(ss);
    if (c->clip_norm > 0 && o->last_grad_norm > c->clip_norm) {
        float s = c->clip_norm / o->last_grad_norm;
        for (size_t i = 0; i < n; i++) g[i] *= s;
    }
    float *m = o->m, *v = o->v, mu = c->momentum;
    switch (c->kind) {
    case SK_OPT_SGD:
#pragma omp parallel for if (n > PAR_MIN) schedule(static)
        for (size_t i = 0; i < n; i++) w[i] -= lr * g[i];
        break;
    case SK_OPT_MOMENTUM:
        if (o->t == 1) {
#pragma omp parallel for if (n > PAR_MIN) schedule(static)
            for (size_t i = 0; i < n; i++) {
                m[i] = g[i];
                w[i] -= lr * m[i];
            }
        } else {
#pragma omp parallel for if (n > PAR_MIN) schedule(static)
            for (size_t i = 0; i < n; i++) {
                m[i] = mu * m[i] + g[i];
                w[i] -= lr * m[i];
            }
        }
        break;
    case SK_OPT_NESTEROV: {
        float keep = o->t == 1 ? 0.0f : mu; /* b_1 = g_1 */
#pragma omp parallel for if (n > PAR_MIN) schedule(static)
        for (size_t i = 0; i < n; i++) {
            m[i] = keep * m[i] + g[i];
            w[i] -= lr * (g[i] + mu * m[i]);
        }
        break;
    }
    case SK_OPT_ADAM:
    case SK_OPT_ADAMW: {
        float b1 = c->beta1, b2 = c->beta2;
        float bc1 = 1.0f - powf(b1, (float)o->t), bc2 = 1.0f - powf(b2, (float)o->t);
        float step = lr / bc1, dec = c->kind == SK_OPT_ADAMW ? lr * c->weight_decay : 0.0f;
        float sbc2 = sqrtf(bc2), eps = c->eps;
        /* element-wise: the same bits for any thread count (-fno-math-errno
         * lets sqrtf vectorise) */
#pragma omp parallel for if (n > PAR_MIN) schedule(static)
        for (size_t i = 0; i < n; i++) {
            float wi = w[i] - dec * w[i], gi = g[i];
            float mi = b1 * m[i] + (1 - b1) * gi, vi = b2 * v[i] + (1 - b2) * gi * gi;
            m[i] = mi;
            v[i] = vi;
            w[i] = wi - step * mi / (sqrtf(vi) / sbc2 + eps);
        }
        break;
    }
    case SK_OPT_RMSPROP: {
        float a = c->alpha, eps = c->eps;
#pragma omp parallel for if (n > PAR_MIN) schedule(static)
        for (size_t i = 0; i < n; i++) {
            float vi = a * v[i] + (1 - a) * g[i] * g[i];
            v[i] = vi;
            w[i] -= lr * g[i] / (sqrtf(vi) + eps);
        }
        break;
    }
    }
    return SK_OK;
}

int sk_optim_sam_perturb(const struct sk_optim_config *c, float *w, const float *g, size_t n, double *norm)
{
    if (!(c->sam_rho > 0) || !isfinite(c->sam_rho))
        return sk_error(SK_EINVAL, "cfg.sam_rho %g must be positive and finite", c->sam_rho);
    if (c->sam_adaptive && !(c->sam_eta >= 0 && isfinite(c->sam_eta)))
        return sk_error(SK_EINVAL, "cfg.sam_eta %g must be >= 0 and finite", c->sam_eta);
    double ss;
    if (c->sam_adaptive) {
        /* ||T g||^2 in the chunk order of sum_sq, through a copy-free pass */
        size_t nc = (n + SQ_CHUNK - 1) / SQ_CHUNK;
        float eta = c->sam_eta;
        ss = 0;
        for (size_t k = 0; k < nc; k++) {
            size_t lo = k * SQ_CHUNK, hi = lo + SQ_CHUNK < n ? lo + SQ_CHUNK : n;
            float acc = 0;
            for (size_t i = lo; i < hi; i++) {
                float tg = (fabsf(w[i]) + eta) * g[i];
                acc += tg * tg;
            }
            ss += acc;
        }
    } else {
        ss = sum_sq(g, n);
    }
    if (!isfinite(ss)) return sk_error(SK_ENONFINITE, "gradient is not finite at the SAM ascent");
    double nrm = sqrt(ss);
    if (norm) *norm = nrm;
    if (nrm == 0) return SK_OK;
    float s = (float)(c->sam_rho / nrm);
    if (c->sam_adaptive) {
        float eta = c->sam_eta;
#pragma omp parallel for if (n > PAR_MIN) schedule(static)
        for (size_t i = 0; i < n; i++) {
            float t = fabsf(w[i]) + eta;
            w[i] += s * t * t * g[i];
        }
    } else {
#pragma omp parallel for if (n > PAR_MIN) schedule(static)
        for (size_t i = 0; i < n; i++) w[i] += s * g[i];
    }
    return SK_OK;
}
