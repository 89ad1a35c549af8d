/* A global Lipschitz bound: product of layer spectral norms (power iteration
 * on the layer's linear operator and its transpose), and the certified radius
 * it implies. */
#include "certify/certify_impl.h"

#include <math.h>
#include <string.h>

#define LIP_SAFETY 1.01 /* power iteration approaches the norm from below */

static double nrm(const float *v, size_t n)
{
    double s = 0;
    for (size_t i = 0; i < n; i++) s += (double)v[i] * v[i];
    return sqrt(s);
}

/* Spectral norm of the layer's linear map A (bias dropped) by power
 * iteration: A x by the graph's forward, A^T y by its backward with seed y
 * (so conv goes through its own forward and transpose). */
static int power_norm(struct sk_model *m, const struct sk_layer *L, int iters, uint64_t key, double *out)
{
    size_t nx = (size_t)L->in[0] * L->in[1] * L->in[2];
    float *x = sk_malloc(sizeof(float) * nx), *seed = NULL;
    struct sk_graph *g = sk_graph_new();
    int rc = SK_OK;
    if (!x || !g) {
        rc = SK_ENOMEM;
        goto done;
    }
    for (size_t i = 0; i < nx; i++) x[i] = sk_rng_normal_at(key, i);
    double s = 0;
    for (int it = 0; it < iters; it++) {
        double nx_ = nrm(x, nx);
        if (nx_ == 0) break;
        for (size_t i = 0; i < nx; i++) x[i] = (float)(x[i] / nx_);
        sk_graph_reset(g);
        int xs4[4] = { 1, L->in[0], L->in[1], L->in[2] }, xs2[2] = { 1, L->in[0] };
        int xin = L->kind == SK_LAYER_DENSE ? sk_graph_input(g, x, 2, xs2, true) : sk_graph_input(g, x, 4, xs4, true);
        int y;
        if (L->kind == SK_LAYER_DENSE) {
            int ws[2] = { L->units, L->in[0] };
            y = sk_op_dense(g, xin, sk_graph_param(g, m->params + L->w_off, NULL, 2, ws), -1);
        } else if (L->kind == SK_LAYER_CONV) {
            int ws[4] = { L->units, L->in[0], L->k, L->k };
            y = sk_op_conv2d(g, xin, sk_graph_param(g, m->params + L->w_off, NULL, 4, ws), -1, L->stride, L->pad);
        } else {
            y = sk_op_avgpool2d(g, xin, L->k, L->stride);
        }
        if (y < 0) {
            rc = y;
            goto done;
        }
        size_t ny = sk_graph_numel(g, y);
        if (!seed && !(seed = sk_malloc(sizeof(float) * ny))) {
            rc = SK_ENOMEM;
            goto done;
        }
        memcpy(seed, sk_graph_value(g, y), sizeof(float) * ny);
        s = nrm(seed, ny); /* |A x| with |x| = 1: a lower bound that rises to the norm */
        if ((rc = sk_graph_backward(g, y, seed))) goto done;
        memcpy(x, sk_graph_grad(g, xin), sizeof(float) * nx);
    }
    *out = s * LIP_SAFETY;
done:
    sk_free(x);
    sk_free(seed);
    sk_graph_free(g);
    return rc;
}

int sk_lipschitz(struct sk_model *m, int iters, uint64_t seed, double *norms, double *prefix, double *global)
{
    if (iters <= 0) iters = 100;
    int ld = sk_cert_last_dense(m);
    double pre = 1, all = 1;
    uint64_t key = sk_rng_derive(sk_rng_new(seed).key, SK_STREAM_NOISE).key;
    for (int li = 0; li < m->n_layers; li++) {
        const struct sk_layer *L = &m->layers[li];
        double s = 1;
        int rc;
        switch (L->kind) {
        case SK_LAYER_DENSE:
        case SK_LAYER_CONV:
        case SK_LAYER_AVGPOOL:
            if ((rc = power_norm(m, L, iters, sk_rng_derive(key, (uint64_t)li).key, &s))) return rc;
            break;
        case SK_LAYER_MAXPOOL: {
            /* each input lies in at most ceil(k/s)^2 windows; max is 1-Lipschitz per window */
            int q = (L->k + L->stride - 1) / L->stride;
            s = q;
            break;
        }
        case SK_LAYER_GAP: s = 1.0 / sqrt((double)L->in[1] * L->in[2]); break;
        case SK_LAYER_RELU: case SK_LAYER_TANH: case SK_LAYER_SOFTPLUS:
        case SK_LAYER_FLATTEN: case SK_LAYER_DROPOUT: s = 1; break;
        case SK_LAYER_LRELU: s = fabs(L->p) > 1 ? fabs(L->p) : 1; break;
        case SK_LAYER_SIGMOID: s = 0.25; break;
        case SK_LAYER_GELU: s = 1.1290; break; /* max of GELU's derivative, about 1.1289 */
        case SK_LAYER_BATCHNORM:
            s = 0;
            for (int c = 0; c < L->units; c++) {
                double a = fabs(m->params[L->w_off + c]) / sqrt(m->buffers[L->rv_off + c] + m->bn_eps);
                s = a > s ? a : s;
            }
            break;
        default: return sk_error(SK_EINVAL, "Lipschitz: layer %d (%s) not supported", li, sk_layer_name(L->kind));
        }
        if (norms) norms[li] = s;
        if (ld < 0 || li < ld) pre *= s;
        all *= s;
    }
    if (prefix) *prefix = pre;
    if (global) *global = all;
    return SK_OK;
}

/* Lipschitz constant of each margin z_y - z_j: Lyj[K*K]. */
static int margin_lip(struct sk_model *m, int iters, double *Lyj)
{
    double pre, all;
    int rc = sk_lipschitz(m, iters, 1, NULL, &pre, &all);
    if (rc) return rc;
    int K = m->n_classes, ld = sk_cert_last_dense(m);
    for (int a = 0; a < K; a++)
        for (int b = 0; b < K; b++) {
            if (ld < 0) {
                Lyj[a * K + b] = sqrt(2.0) * all;
                continue;
            }
            const struct sk_layer *L = &m->layers[ld];
            const float *W = m->params + L->w_off;
            int D = L->in[0];
            double s = 0;
            for (int i = 0; i < D; i++) {
                double d = (double)W[(size_t)a * D + i] - W[(size_t)b * D + i];
                s += d * d;
            }
            Lyj[a * K + b] = pre * sqrt(s);
        }
    return SK_OK;
}

int sk_lipschitz_margins(struct sk_model *m, const float *x, const int *y, int N, float eps, float *mlo)
{
    int K = m->n_classes;
    double *Lyj = sk_malloc(sizeof(double) * (size_t)K * K);
    float *lp = sk_malloc(sizeof(float) * (size_t)(N > 0 ? N : 1) * K);
    int rc = SK_ENOMEM;
    if (Lyj && lp && !(rc = margin_lip(m, 0, Lyj)) && !(rc = sk_model_log_probs(m, x, N, lp))) {
        double s = eps * sqrt((double)m->in_dim); /* |d|_2 <= sqrt(dim) |d|_inf */
        for (int n = 0; n < N; n++)
            for (int j = 0; j < K; j++)
                mlo[(size_t)n * K + j] =
                    j == y[n] ? 0.0f
                              : (float)((double)lp[(size_t)n * K + y[n]] - lp[(size_t)n * K + j] -
                                        Lyj[y[n] * K + j] * s);
    }
    sk_free(Lyj);
    sk_free(lp);
    return rc;
}

int sk_lipschitz_radius(struct sk_model *m, const float *x, const int *y, int N, int iters, float *r2, float *rinf)
{
    int K = m->n_classes;
    double *Lyj = sk_malloc(sizeof(double) * (size_t)K * K);
    float *lp = sk_malloc(sizeof(float) * (size_t)(N > 0 ? N : 1) * K);
    int rc = SK_ENOMEM;
    if (Lyj && lp && !(rc = margin_lip(m, iters, Lyj)) && !(rc = sk_model_log_probs(m, x, N, lp))) {
        for (int n = 0; n < N; n++) {
            const float *z = lp + (size_t)n * K;
            double r = INFINITY;
            for (int j = 0; j < K; j++) {
                if (j == y[n]) continue;
                double d = (double)z[y[n]] - z[j];
                double q = d <= 0 ? 0 : (Lyj[y[n] * K + j] > 0 ? d / Lyj[y[n] * K + j] : INFINITY);
                r = q < r ? q : r;
            }
            if (r2) r2[n] = (float)r;
            if (rinf) rinf[n] = (float)(r / sqrt((double)m->in_dim));
        }
    }
    sk_free(Lyj);
    sk_free(lp);
    return rc;
}
