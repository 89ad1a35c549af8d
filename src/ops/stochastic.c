/* Dropout, batch normalisation and the reparameterised Gaussian sample. */
#include "graph/graph_impl.h"

#include <math.h>
#include <string.h>

int sk_op_dropout(struct sk_graph *g, int x, float p, uint64_t key)
{
    int rc = sk_node_check(g, x, "sk_op_dropout", "x");
    if (rc) return rc;
    if (!(p >= 0 && p < 1)) return sk_error(SK_EINVAL, "sk_op_dropout: p = %g not in [0,1)", p);
    struct sk_node *X = node_at(g, x);
    int shape[4];
    memcpy(shape, X->shape, sizeof shape);
    int id = sk_node_new(g, OP_DROPOUT, X->ndim, shape, x, -1, -1);
    if (id < 0) return id;
    struct sk_node *nd = node_at(g, id);
    float *mask = sk_arena_alloc(g->arena, nd->n * sizeof(float));
    if (!mask) return SK_ENOMEM;
    nd->saved = mask;
    nd->farg[0] = p;
    nd->key = key;
    return sk_node_run(g, id);
}

/* farg[0] = p, key = mask stream; saved = the mask, 0 or 1/(1-p) */
void sk_dropout_forward(struct sk_graph *g, struct sk_node *nd)
{
    float *mask = nd->saved, p = nd->farg[0];
    uint64_t key = nd->key;
    const float *xv = in_val(g, nd, 0);
    float keep = 1.0f / (1.0f - p);
    size_t n = nd->n;
#pragma omp parallel for if (n > SK_PAR_MIN) schedule(static)
    for (size_t i = 0; i < n; i++) {
        mask[i] = sk_rng_uniform_at(key, i) >= p ? keep : 0.0f;
        nd->val[i] = xv[i] * mask[i];
    }
}

void sk_dropout_backward(struct sk_graph *g, struct sk_node *nd)
{
    float *dX = in_grad(g, nd, 0);
    if (!dX) return;
    const float *mask = nd->saved;
    for (size_t i = 0; i < nd->n; i++) dX[i] += nd->grad[i] * mask[i];
}

int sk_op_batchnorm(struct sk_graph *g, int x, int gamma, int beta, float *running_mean,
                    float *running_var, float momentum, float eps, bool training)
{
    int rc = sk_node_check(g, x, "sk_op_batchnorm", "x");
    if (!rc) rc = sk_node_check(g, gamma, "sk_op_batchnorm", "gamma");
    if (!rc) rc = sk_node_check(g, beta, "sk_op_batchnorm", "beta");
    if (rc) return rc;
    struct sk_node *X = node_at(g, x);
    if (X->ndim != 2 && X->ndim != 4)
        return sk_error(SK_EINVAL, "sk_op_batchnorm: x must be [N,C] or [N,C,H,W], got %d dims", X->ndim);
    int N = X->shape[0], C = X->shape[1];
    size_t HW = X->n / ((size_t)N * C);
    if (node_at(g, gamma)->n != (size_t)C || node_at(g, beta)->n != (size_t)C)
        return sk_error(SK_EINVAL, "sk_op_batchnorm: gamma/beta must have %d elements", C);
    size_t M = (size_t)N * HW;
    if (training && M < 2)
        return sk_error(SK_EINVAL, "sk_op_batchnorm: training mode needs more than one value per channel "
                        "(batch of %d)", N);
    int shape[4];
    memcpy(shape, X->shape, sizeof shape);
    int id = sk_node_new(g, OP_BATCHNORM, X->ndim, shape, x, gamma, beta);
    if (id < 0) return id;
    struct sk_node *nd = node_at(g, id);
    float *st = sk_arena_alloc(g->arena, 2 * (size_t)C * sizeof(float));
    if (!st) return SK_ENOMEM;
    nd->saved = st;
    nd->iarg[0] = training;
    nd->farg[0] = eps;
    nd->farg[1] = momentum;
    nd->rbuf[0] = running_mean;
    nd->rbuf[1] = running_var;
    return sk_node_run(g, id);
}

/* iarg[0] = training, farg = eps, momentum, rbuf = running mean, var (updated
 * in training: running the forward again updates them again);
 * saved: [mean(C), invstd(C)] of the statistics used. */
void sk_batchnorm_forward(struct sk_graph *g, struct sk_node *nd)
{
    struct sk_node *X = node_at(g, nd->in[0]);
    int N = X->shape[0], C = X->shape[1];
    size_t HW = X->n / ((size_t)N * C), M = (size_t)N * HW;
    bool training = nd->iarg[0];
    float eps = nd->farg[0], momentum = nd->farg[1];
    float *running_mean = nd->rbuf[0], *running_var = nd->rbuf[1];
    const float *xv = X->val, *gm = in_val(g, nd, 1), *bt = in_val(g, nd, 2);
    float *mean = nd->saved, *invstd = mean + C;
#pragma omp parallel for schedule(static)
    for (int c = 0; c < C; c++) {
        double mu, var;
        if (training) {
            /* Float partial sums per plane (vector lanes), added up in double
             * across the batch: a strictly sequential double sum cannot be
             * vectorised and made this op a tenth of a ResNet's training time. */
            double s = 0, ss = 0;
            for (int n = 0; n < N; n++) {
                const float *p = xv + ((size_t)n * C + c) * HW;
                float f = 0;
#pragma omp simd reduction(+ : f)
                for (size_t q = 0; q < HW; q++) f += p[q];
                s += f;
            }
            mu = s / (double)M;
            float muf = (float)mu;
            for (int n = 0; n < N; n++) {
                const float *p = xv + ((size_t)n * C + c) * HW;
                float f = 0;
#pragma omp simd reduction(+ : f)
                for (size_t q = 0; q < HW; q++) f += (p[q] - muf) * (p[q] - muf);
                ss += f;
            }
            var = ss / (double)M;
            running_mean[c] = (1 - momentum) * running_mean[c] + momentum * (float)mu;
            running_var[c] = (1 - momentum) * running_var[c] + momentum * (float)(var * M / (M - 1));
        } else {
            mu = running_mean[c];
            var = running_var[c];
        }
        mean[c] = (float)mu;
        invstd[c] = (float)(1.0 / sqrt(var + eps));
        float a = gm[c] * invstd[c], b = bt[c] - a * mean[c];
        for (int n = 0; n < N; n++) {
            const float *p = xv + ((size_t)n * C + c) * HW;
            float *y = nd->val + ((size_t)n * C + c) * HW;
            for (size_t q = 0; q < HW; q++) y[q] = a * p[q] + b;
        }
    }
}

void sk_batchnorm_backward(struct sk_graph *g, struct sk_node *nd)
{
    struct sk_node *X = node_at(g, nd->in[0]);
    float *dX = in_grad(g, nd, 0), *dG = in_grad(g, nd, 1), *dB = in_grad(g, nd, 2);
    const float *xv = X->val, *gm = in_val(g, nd, 1), *dy = nd->grad;
    int N = X->shape[0], C = X->shape[1];
    size_t HW = X->n / ((size_t)N * C), M = (size_t)N * HW;
    const float *mean = nd->saved, *invstd = (const float *)nd->saved + C;
    bool training = nd->iarg[0];
#pragma omp parallel for schedule(static)
    for (int c = 0; c < C; c++) {
        /* per-plane float sums in vector lanes, double across planes (as forward) */
        double sdy = 0, sdyx = 0;
        float mc = mean[c], ic = invstd[c];
        for (int n = 0; n < N; n++) {
            const float *p = xv + ((size_t)n * C + c) * HW, *d = dy + ((size_t)n * C + c) * HW;
            float fd = 0, fdx = 0;
#pragma omp simd reduction(+ : fd, fdx)
            for (size_t q = 0; q < HW; q++) {
                fd += d[q];
                fdx += d[q] * (p[q] - mc);
            }
            sdy += fd;
            sdyx += fdx;
        }
        sdyx *= ic;
        if (dG) dG[c] += (float)sdyx;
        if (dB) dB[c] += (float)sdy;
        if (!dX) continue;
        float k = gm[c] * ic, mdy = (float)(sdy / M), mdyx = (float)(sdyx / M);
        for (int n = 0; n < N; n++) {
            const float *p = xv + ((size_t)n * C + c) * HW, *d = dy + ((size_t)n * C + c) * HW;
            float *dx = dX + ((size_t)n * C + c) * HW;
            if (training) {
                /* dx = gamma invstd (dy - mean(dy) - xhat mean(dy xhat)) */
#pragma omp simd
                for (size_t q = 0; q < HW; q++) dx[q] += k * (d[q] - mdy - (p[q] - mc) * ic * mdyx);
            } else {
#pragma omp simd
                for (size_t q = 0; q < HW; q++) dx[q] += k * d[q];
            }
        }
    }
}

int sk_op_gauss_sample(struct sk_graph *g, int mu, int rho, uint64_t key)
{
    int rc = sk_node_check(g, mu, "sk_op_gauss_sample", "mu");
    if (!rc) rc = sk_node_check(g, rho, "sk_op_gauss_sample", "rho");
    if (rc) return rc;
    struct sk_node *M = node_at(g, mu);
    if (M->n != node_at(g, rho)->n)
        return sk_error(SK_EINVAL, "sk_op_gauss_sample: mu has %zu elements, rho %zu", M->n,
                        node_at(g, rho)->n);
    int shape[4];
    memcpy(shape, M->shape, sizeof shape);
    int id = sk_node_new(g, OP_GAUSS, M->ndim, shape, mu, rho, -1);
    if (id < 0) return id;
    struct sk_node *nd = node_at(g, id);
    float *eps = sk_arena_alloc(g->arena, nd->n * sizeof(float));
    if (!eps) return SK_ENOMEM;
    nd->saved = eps;
    nd->key = key;
    return sk_node_run(g, id);
}

/* key = noise stream; saved = eps */
void sk_gauss_forward(struct sk_graph *g, struct sk_node *nd)
{
    float *eps = nd->saved;
    uint64_t key = nd->key;
    const float *m = in_val(g, nd, 0), *r = in_val(g, nd, 1);
    size_t n = nd->n;
#pragma omp parallel for if (n > SK_PAR_MIN) schedule(static)
    for (size_t i = 0; i < n; i++) {
        eps[i] = sk_rng_normal_at(key, i);
        float sp = r[i] > 0 ? r[i] + log1pf(expf(-r[i])) : log1pf(expf(r[i]));
        nd->val[i] = m[i] + sp * eps[i];
    }
}

void sk_gauss_backward(struct sk_graph *g, struct sk_node *nd)
{
    float *dM = in_grad(g, nd, 0), *dR = in_grad(g, nd, 1);
    const float *r = in_val(g, nd, 1), *eps = nd->saved;
    for (size_t i = 0; i < nd->n; i++) {
        float d = nd->grad[i];
        if (dM) dM[i] += d;
        if (dR) {
            float sg = r[i] >= 0 ? 1.0f / (1.0f + expf(-r[i])) : expf(r[i]) / (1.0f + expf(r[i]));
            dR[i] += d * eps[i] * sg;
        }
    }
}

/* ---- second order (R-operator; see struct sk_op_hvp) ---- */

/* A fixed mask: R{y} = R{x} m, R{dx} += R{dy} m. */
static void dropout_tangent(struct sk_graph *g, struct sk_node *nd)
{
    const float *T = in_tval(g, nd, 0), *mask = nd->saved;
    for (size_t i = 0; i < nd->n; i++) nd->tval[i] = T[i] * mask[i];
}

static void dropout_rback(struct sk_graph *g, struct sk_node *nd)
{
    float *tdX = in_tgrad(g, nd, 0);
    if (!tdX) return;
    const float *mask = nd->saved;
    for (size_t i = 0; i < nd->n; i++) tdX[i] += nd->tgrad[i] * mask[i];
}
const struct sk_op_hvp sk_hvp_dropout = { dropout_tangent, dropout_rback, NULL };

/* Batch norm per channel, xh = (x - mu) s, y = gamma xh + beta, with
 * s = 1/sqrt(var + eps). Training (mu, var of the batch, M values):
 *   R{xh} = s (R{x} - mean R{x} - xh mean(xh R{x})),  R{s} = -s^2 mean(xh R{x});
 *   dx    = gamma s (dy - mean dy - xh mean(dy xh))
 *   R{dx} = (R{gamma} s + gamma R{s}) (dy - mean dy - xh mean(dy xh))
 *         + gamma s (R{dy} - mean R{dy} - R{xh} mean(dy xh) - xh mean(R{dy} xh + dy R{xh})).
 * Eval (running statistics, constants): R{xh} = s R{x}, R{s} = 0, and
 *   R{dx} = R{gamma} s dy + gamma s R{dy}.
 * Both: R{y} = R{gamma} xh + gamma R{xh} + R{beta},
 *   R{dgamma} += sum(R{dy} xh + dy R{xh}),  R{dbeta} += sum R{dy}. */
struct bn_dims {
    int N, C;
    size_t HW, M;
};

static struct bn_dims bn_dims_of(struct sk_graph *g, struct sk_node *nd)
{
    struct sk_node *X = node_at(g, nd->in[0]);
    struct bn_dims d = { X->shape[0], X->shape[1], 0, 0 };
    d.HW = X->n / ((size_t)d.N * d.C);
    d.M = (size_t)d.N * d.HW;
    return d;
}

/* mean R{x} and mean(xh R{x}) of channel c (0 without a direction or in eval). */
static void bn_tangent_moments(struct sk_graph *g, struct sk_node *nd, struct bn_dims d, int c, double *mt,
                               double *mxt)
{
    const float *xv = in_val(g, nd, 0), *tx = in_tval(g, nd, 0), *mean = nd->saved;
    const float *invstd = mean + d.C;
    *mt = *mxt = 0;
    if (!tx || !nd->iarg[0]) return;
    for (int n = 0; n < d.N; n++) {
        size_t o = ((size_t)n * d.C + c) * d.HW;
        for (size_t q = 0; q < d.HW; q++) {
            *mt += tx[o + q];
            *mxt += (double)(xv[o + q] - mean[c]) * invstd[c] * tx[o + q];
        }
    }
    *mt /= (double)d.M;
    *mxt /= (double)d.M;
}

/* R{xh} at element i of channel c */
static inline float bn_rxh(const float *tx, size_t i, float xh, float s, double mt, double mxt)
{
    return tx ? s * (tx[i] - (float)mt - xh * (float)mxt) : 0.0f;
}

static void batchnorm_tangent(struct sk_graph *g, struct sk_node *nd)
{
    struct bn_dims d = bn_dims_of(g, nd);
    const float *xv = in_val(g, nd, 0), *tx = in_tval(g, nd, 0), *gm = in_val(g, nd, 1);
    const float *tg = in_tval(g, nd, 1), *tb = in_tval(g, nd, 2), *mean = nd->saved, *invstd = mean + d.C;
#pragma omp parallel for schedule(static)
    for (int c = 0; c < d.C; c++) {
        double mt, mxt;
        bn_tangent_moments(g, nd, d, c, &mt, &mxt);
        for (int n = 0; n < d.N; n++) {
            size_t o = ((size_t)n * d.C + c) * d.HW;
            for (size_t q = 0; q < d.HW; q++) {
                float xh = (xv[o + q] - mean[c]) * invstd[c];
                nd->tval[o + q] = (tg ? tg[c] * xh : 0.0f) + gm[c] * bn_rxh(tx, o + q, xh, invstd[c], mt, mxt) +
                                  (tb ? tb[c] : 0.0f);
            }
        }
    }
}

static void batchnorm_rback(struct sk_graph *g, struct sk_node *nd)
{
    struct bn_dims d = bn_dims_of(g, nd);
    float *tdX = in_tgrad(g, nd, 0), *tdG = in_tgrad(g, nd, 1), *tdB = in_tgrad(g, nd, 2);
    const float *xv = in_val(g, nd, 0), *tx = in_tval(g, nd, 0), *gm = in_val(g, nd, 1), *tg = in_tval(g, nd, 1);
    const float *dy = nd->grad, *tdy = nd->tgrad, *mean = nd->saved, *invstd = mean + d.C;
    bool training = nd->iarg[0];
#pragma omp parallel for schedule(static)
    for (int c = 0; c < d.C; c++) {
        float s = invstd[c];
        double mt, mxt, sdy = 0, sdyx = 0, stdy = 0, rsdyx = 0; /* rsdyx = sum(R{dy} xh + dy R{xh}) */
        bn_tangent_moments(g, nd, d, c, &mt, &mxt);
        for (int n = 0; n < d.N; n++) {
            size_t o = ((size_t)n * d.C + c) * d.HW;
            for (size_t q = 0; q < d.HW; q++) {
                size_t i = o + q;
                float xh = (xv[i] - mean[c]) * s;
                float rxh = training ? bn_rxh(tx, i, xh, s, mt, mxt) : tx ? s * tx[i] : 0.0f;
                sdy += dy[i];
                sdyx += (double)dy[i] * xh;
                stdy += tdy[i];
                rsdyx += (double)tdy[i] * xh + (double)dy[i] * rxh;
            }
        }
        if (tdG) tdG[c] += (float)rsdyx;
        if (tdB) tdB[c] += (float)stdy;
        if (!tdX) continue;
        float M = (float)d.M, k = gm[c] * s;
        float rk = (tg ? tg[c] * s : 0.0f) + (training ? -gm[c] * s * s * (float)mxt : 0.0f); /* R{gamma s} */
        for (int n = 0; n < d.N; n++) {
            size_t o = ((size_t)n * d.C + c) * d.HW;
            for (size_t q = 0; q < d.HW; q++) {
                size_t i = o + q;
                float xh = (xv[i] - mean[c]) * s;
                if (!training) {
                    tdX[i] += rk * dy[i] + k * tdy[i];
                    continue;
                }
                float rxh = bn_rxh(tx, i, xh, s, mt, mxt);
                float core = dy[i] - (float)sdy / M - xh * (float)sdyx / M;
                tdX[i] += rk * core +
                          k * (tdy[i] - (float)stdy / M - rxh * (float)sdyx / M - xh * (float)rsdyx / M);
            }
        }
    }
}
const struct sk_op_hvp sk_hvp_batchnorm = { batchnorm_tangent, batchnorm_rback, NULL };

/* w = mu + softplus(rho) eps:  R{w} = R{mu} + sigma(rho) eps R{rho};
 * R{dmu} += R{dw},  R{drho} += R{dw} eps sigma + dw eps sigma (1 - sigma) R{rho}. */
static inline float sigmoid_of(float r)
{
    return r >= 0 ? 1.0f / (1.0f + expf(-r)) : expf(r) / (1.0f + expf(r));
}

static void gauss_tangent(struct sk_graph *g, struct sk_node *nd)
{
    const float *tm = in_tval(g, nd, 0), *tr = in_tval(g, nd, 1), *r = in_val(g, nd, 1), *eps = nd->saved;
    for (size_t i = 0; i < nd->n; i++)
        nd->tval[i] = (tm ? tm[i] : 0.0f) + (tr ? sigmoid_of(r[i]) * eps[i] * tr[i] : 0.0f);
}

static void gauss_rback(struct sk_graph *g, struct sk_node *nd)
{
    float *tdM = in_tgrad(g, nd, 0), *tdR = in_tgrad(g, nd, 1);
    const float *tr = in_tval(g, nd, 1), *r = in_val(g, nd, 1), *eps = nd->saved;
    for (size_t i = 0; i < nd->n; i++) {
        if (tdM) tdM[i] += nd->tgrad[i];
        if (tdR) {
            float sg = sigmoid_of(r[i]);
            tdR[i] += nd->tgrad[i] * eps[i] * sg + (tr ? nd->grad[i] * eps[i] * sg * (1.0f - sg) * tr[i] : 0.0f);
        }
    }
}
const struct sk_op_hvp sk_hvp_gauss = { gauss_tangent, gauss_rback, NULL };
