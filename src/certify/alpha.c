/* α-CROWN (Xu et al. 2021) and β-CROWN's split multipliers (Wang et al.
 * 2021): the lower slopes of unstable relu values, per specification row
 * and value, and a multiplier per split value, raised by Adam on the bound
 * itself. The bound of a row is the relaxed network evaluated at the input
 * corner x* that minimises it, so its gradient needs no tape: one relaxed
 * forward pass of x* gives the value z at every relu input, and
 *     d lb / d alpha_j = A_j z_j   (A_j >= 0, the lower line in use)
 *     d lb / d beta_j  = -s_j z_j  (s_j = +1 split active, -1 inactive),
 * A_j the coefficient at the relu output. Every bound on the way is valid,
 * so the best one seen is kept. */
#include "certify/certify_impl.h"
#include "certify/lirpa.h"

#include <math.h>
#include <string.h>

int lp_alpha_optimize(const struct lp_net *net, const struct lp_bounds *b, int top, const float *C, int M, int iters,
                      float lr, const signed char *split, float *alpha, float *beta, const struct lp_opts *o,
                      const float *target, float *lb, float *xstar, float *Arelu)
{
    size_t nr = (size_t)net->n_relu, na = (size_t)M * nr + 1;
    int n = net->n, rc = SK_ENOMEM;
    float *a = sk_malloc(sizeof(float) * na), *bt = sk_calloc(na, sizeof(float));
    float *ma = sk_calloc(na, sizeof(float)), *va = sk_calloc(na, sizeof(float));
    float *mb = sk_calloc(na, sizeof(float)), *vb = sk_calloc(na, sizeof(float));
    float *ba = sk_malloc(sizeof(float) * na), *bb = sk_malloc(sizeof(float) * na);
    float *cur = sk_malloc(sizeof(float) * (size_t)M), *xs = sk_malloc(sizeof(float) * (size_t)M * net->in_dim);
    float **Aout = sk_calloc((size_t)n + 1, sizeof(float *)), **G = sk_calloc((size_t)n + 1, sizeof(float *));
    if (!a || !bt || !ma || !va || !mb || !vb || !ba || !bb || !cur || !xs || !Aout || !G) goto done;
    for (int i = 0; i <= top; i++) {
        int d = i == 0 ? net->in_dim : net->s[i - 1].dout;
        if (!(G[i] = sk_malloc(sizeof(float) * (size_t)M * d))) goto done;
        if (i < top && (net->s[i].kind == LP_ACT || net->s[i].kind == LP_MAXPOOL) &&
            !(Aout[i] = sk_malloc(sizeof(float) * (size_t)M * net->s[i].dout)))
            goto done;
    }
    /* the starting point: given (projected) or CROWN's slopes */
    for (size_t g = 0; g < nr; g++) {
        int i = net->relu_step[g], j = (int)(g - (size_t)net->s[i].relu_off);
        float p = net->s[i].p, l = b->lo[i][j], u = b->hi[i][j];
        float lo_a = p < 1 ? p : 1, hi_a = p < 1 ? 1 : p;
        for (int q = 0; q < M; q++) {
            size_t k = (size_t)q * nr + g;
            float v = alpha ? alpha[k] : lp_relu_default_slope(p, l, u);
            a[k] = isfinite(v) ? (v < lo_a ? lo_a : v > hi_a ? hi_a : v) : lp_relu_default_slope(p, l, u);
            if (split && beta && split[g]) bt[k] = beta[k] > 0 ? beta[k] : 0;
        }
    }
    struct lp_extra x = { .alpha = a, .beta = split ? bt : NULL, .split = split, .Aout = Aout, .xstar = xs };
    for (int q = 0; q < M; q++) lb[q] = -INFINITY;
    const float b1 = 0.9f, b2 = 0.999f;
    rc = SK_OK;
    for (int it = 0; it <= iters; it++) {
        if ((rc = lp_backward(net, b, top, C, M, o, &x, cur))) break;
        bool all = target != NULL;
        for (int q = 0; q < M; q++) {
            if (cur[q] > lb[q]) {
                lb[q] = cur[q];
                memcpy(ba + (size_t)q * nr, a + (size_t)q * nr, sizeof(float) * nr);
                memcpy(bb + (size_t)q * nr, bt + (size_t)q * nr, sizeof(float) * nr);
                if (xstar) memcpy(xstar + (size_t)q * net->in_dim, xs + (size_t)q * net->in_dim,
                                  sizeof(float) * (size_t)net->in_dim);
                if (Arelu)
                    for (int i = 0; i < top; i++)
                        if (net->s[i].relu_off >= 0)
                            memcpy(Arelu + (size_t)q * nr + net->s[i].relu_off, Aout[i] + (size_t)q * net->s[i].dout,
                                   sizeof(float) * (size_t)net->s[i].dout);
            }
            if (target && !(lb[q] > target[q])) all = false;
        }
        if (it == iters || all || nr == 0 || (o->deadline > 0 && sk_now() > o->deadline)) break;
        if ((rc = lp_relaxed_forward(net, b, top, M, &x, G))) break;
        float c1 = 1.0f - powf(b1, (float)(it + 1)), c2 = 1.0f - powf(b2, (float)(it + 1));
        for (int i = 0; i < top; i++) {
            const struct lp_step *s = &net->s[i];
            if (s->relu_off < 0) continue;
            float lo_a = s->p < 1 ? s->p : 1, hi_a = s->p < 1 ? 1 : s->p;
            for (int q = 0; q < M; q++) {
                const float *A = Aout[i] + (size_t)q * s->dout, *z = G[i] + (size_t)q * s->din;
                for (int j = 0; j < s->din; j++) {
                    size_t k = (size_t)q * nr + s->relu_off + j;
                    if (b->lo[i][j] < 0 && b->hi[i][j] > 0 && s->p <= 1) {
                        float gr = A[j] >= 0 ? A[j] * z[j] : 0.0f;
                        ma[k] = b1 * ma[k] + (1 - b1) * gr;
                        va[k] = b2 * va[k] + (1 - b2) * gr * gr;
                        float v = a[k] + lr * (ma[k] / c1) / (sqrtf(va[k] / c2) + 1e-8f);
                        a[k] = v < lo_a ? lo_a : v > hi_a ? hi_a : v;
                    }
                    if (split && split[s->relu_off + j]) {
                        float gr = -(float)split[s->relu_off + j] * z[j];
                        mb[k] = b1 * mb[k] + (1 - b1) * gr;
                        vb[k] = b2 * vb[k] + (1 - b2) * gr * gr;
                        float v = bt[k] + 0.5f * lr * (mb[k] / c1) / (sqrtf(vb[k] / c2) + 1e-8f);
                        bt[k] = v > 0 ? v : 0;
                    }
                }
            }
        }
    }
    if (!rc) {
        if (alpha) memcpy(alpha, ba, sizeof(float) * (size_t)M * nr);
        if (beta) memcpy(beta, bb, sizeof(float) * (size_t)M * nr);
    }
done:
    if (G)
        for (int i = 0; i <= n; i++) sk_free(G[i]);
    if (Aout)
        for (int i = 0; i <= n; i++) sk_free(Aout[i]);
    sk_free(G);
    sk_free(Aout);
    sk_free(a);
    sk_free(bt);
    sk_free(ma);
    sk_free(va);
    sk_free(mb);
    sk_free(vb);
    sk_free(ba);
    sk_free(bb);
    sk_free(cur);
    sk_free(xs);
    return rc;
}
