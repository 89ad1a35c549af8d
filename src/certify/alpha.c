/* α-CROWN (Xu et al. 2021) and β-CROWN's split multipliers (Wang et al.
 * 2021): the lower slopes of unstable relu values, per specification row
 * and value, and a multiplier per split value, raised by Adam on the bound
 * itself, on chains and graphs. The bound of a row is the relaxed network evaluated at the input
 * corner x* that minimises it, so its gradient needs no tape: one relaxed
 * forward pass of x* gives the value z at every relu input, and
 *     d lb / d alpha_j = A_j z_j   (A_j >= 0, the lower line in use)
 *     d lb / d beta_j  = -s_j z_j  (s_j = +1 split active, -1 inactive),
 * A_j the coefficient at the relu output (in a graph: summed over all the
 * readers of that output, as the backward pass leaves it). Every bound on the way is valid,
 * so the best one seen is kept. */
#include "certify/lirpa.h"

#include <math.h>
#include <string.h>

int lp_alpha_optimize(const struct lp_net *net, const struct lp_bounds *b, int top, const float *C, int M, int iters,
                      float lr, const signed char *split, float *alpha, float *beta, const struct lp_opts *o,
                      const float *target, float *lb, float *xstar, float *Arelu)
{
    /* the final specification of an MLP: the batched passes' matrix products
     * (one domain; its early stop is this one's when M == 1) */
    if (lp_batch_ok(net) && (!target || M == 1)) {
        const struct lp_bounds *bb1[1] = { b };
        const signed char *sp1[1] = { split };
        float *al1[1] = { alpha }, *be1[1] = { beta }, *ar1[1] = { Arelu };
        return lp_alpha_batch(net, bb1, 1, top, C, M, iters, lr, sp1, al1, be1, o, target, lb, xstar, ar1);
    }
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
        int i = net->relu_step[g], j = (int)(g - (size_t)net->s[i].relu_off), vi = net->s[i].in0;
        float p = net->s[i].p, l = b->lo[vi][j], u = b->hi[vi][j];
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
            const float *lo = b->lo[s->in0], *hi = b->hi[s->in0];
            for (int q = 0; q < M; q++) {
                const float *A = Aout[i] + (size_t)q * s->dout, *z = G[s->in0] + (size_t)q * s->din;
                for (int j = 0; j < s->din; j++) {
                    size_t k = (size_t)q * nr + s->relu_off + j;
                    if (lo[j] < 0 && hi[j] > 0 && s->p <= 1) {
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

/* ---------------- many domains at once ---------------- */

bool lp_batch_ok(const struct lp_net *net)
{
    if (net->sound) return false; /* its passes bound no rounding error: lp_backward's do */
    if (net->graph) return false; /* its passes walk a chain */
    for (int i = 0; i < net->n; i++) {
        enum lp_kind k = net->s[i].kind;
        if (k != LP_DENSE && k != LP_DIAG && k != LP_ACT) return false;
    }
    return true;
}

/* Rows of a batch: row q is row q % R of domain act[q / R]. */
struct batch {
    const struct lp_net *net;
    const struct lp_bounds *const *b;
    const signed char *const *split;
    const int *act;
    int R, Q, top;
    size_t nr;
    const float *a, *bt; /* current slopes and multipliers, [N][R, n_relu] */
};

/* the lines of value j of activation step i for row q (act_line of crown.c
 * with this row's domain and slopes) */
static inline void batch_line(const struct batch *x, int d, int r, int i, int j, bool lower, float *sl, float *ic)
{
    const struct lp_step *s = &x->net->s[i];
    const float *rx = x->b[d]->rx[i] + 4 * (size_t)j;
    if (lower) {
        *sl = rx[0];
        *ic = rx[1];
        if (s->relu_off >= 0 && s->p <= 1 && x->b[d]->lo[i][j] < 0 && x->b[d]->hi[i][j] > 0)
            *sl = x->a[((size_t)d * x->R + r) * x->nr + s->relu_off + j];
    } else {
        *sl = rx[2];
        *ic = rx[3];
    }
}

static double concretize_row(const float *a, const float *lo, const float *hi, int d, float *corner)
{
    double s = 0;
    for (int j = 0; j < d; j++) {
        float v = a[j] >= 0 ? lo[j] : hi[j];
        if (corner) corner[j] = v;
        s += (double)a[j] * v;
    }
    return s;
}

/* lp_backward over the batch's rows, C [R, out_dim] the rows of every
 * domain: lb[Q]; Aout[i] [Q, dout] at activation steps; xs [Q, in_dim] the
 * input corners. cur, nxt: [Q, maxd] scratch; bias, best: [Q]. */
static void batch_backward(const struct batch *x, const float *C, const struct lp_opts *o, float **Aout, float *xs,
                           float *cur, float *nxt, double *bias, double *best, float *lb)
{
    const struct lp_net *net = x->net;
    int n = x->top, Q = x->Q, R = x->R, dt = n == net->n ? net->out_dim : net->s[n].din;
    for (int q = 0; q < Q; q++) {
        const struct lp_bounds *b = x->b[x->act[q / R]];
        memcpy(cur + (size_t)q * dt, C + (size_t)(q % R) * dt, sizeof(float) * dt);
        bias[q] = 0;
        best[q] = o->with_ibp ? concretize_row(cur + (size_t)q * dt, b->lo[n], b->hi[n], dt, NULL) : -INFINITY;
    }
    for (int i = n - 1; i >= 0; i--) {
        const struct lp_step *s = &net->s[i];
        if (s->kind == LP_DENSE) {
            sk_sgemm(false, false, Q, s->din, s->dout, 1.0f, cur, s->dout, s->W, s->din, 0.0f, nxt, s->din);
            for (int q = 0; q < Q; q++) {
                const float *a = cur + (size_t)q * s->dout;
                double acc = 0;
                for (int k = 0; k < s->dout; k++) acc += (double)a[k] * s->b[k];
                bias[q] += acc;
            }
        } else {
            if (s->kind == LP_ACT) memcpy(Aout[i], cur, sizeof(float) * (size_t)Q * s->dout);
#pragma omp parallel for schedule(static) if (Q * s->din > 1 << 14)
            for (int q = 0; q < Q; q++) {
                const float *a = cur + (size_t)q * s->dout;
                float *bq = nxt + (size_t)q * s->din;
                int d = x->act[q / R], r = q % R;
                double acc = 0;
                if (s->kind == LP_DIAG) {
                    for (int j = 0; j < s->din; j++) {
                        bq[j] = a[j] * s->a[j];
                        acc += (double)a[j] * s->ab[j];
                    }
                } else {
                    for (int j = 0; j < s->din; j++) {
                        float sl, ic;
                        batch_line(x, d, r, i, j, a[j] >= 0, &sl, &ic);
                        bq[j] = a[j] * sl;
                        acc += (double)a[j] * ic;
                    }
                    const signed char *sp = x->split ? x->split[d] : NULL;
                    if (sp && s->relu_off >= 0) {
                        const float *bt = x->bt + ((size_t)d * R + r) * x->nr + s->relu_off;
                        for (int j = 0; j < s->din; j++)
                            if (sp[s->relu_off + j]) bq[j] += bt[j] * (float)(-sp[s->relu_off + j]);
                    }
                }
                bias[q] += acc;
            }
        }
        float *t = cur;
        cur = nxt;
        nxt = t;
        if (o->with_ibp && i > 0)
            for (int q = 0; q < Q; q++) {
                const struct lp_bounds *b = x->b[x->act[q / R]];
                double v = bias[q] + concretize_row(cur + (size_t)q * s->din, b->lo[i], b->hi[i], s->din, NULL);
                if (v > best[q]) best[q] = v;
            }
    }
    for (int q = 0; q < Q; q++) {
        const struct lp_bounds *b = x->b[x->act[q / R]];
        double v = bias[q] + concretize_row(cur + (size_t)q * net->in_dim, b->lo[0], b->hi[0], net->in_dim,
                                            xs + (size_t)q * net->in_dim);
        if (o->with_ibp && best[q] > v) v = best[q];
        float f = (float)v;
        lb[q] = f - 2e-6f * (1.0f + fabsf(f)); /* as lp_backward: float products and sums */
    }
}

/* G[i] [Q, din of i]: the relaxed network of each row at its corner xs. */
static void batch_forward(const struct batch *x, float **Aout, const float *xs, float **G)
{
    const struct lp_net *net = x->net;
    int Q = x->Q, R = x->R;
    memcpy(G[0], xs, sizeof(float) * (size_t)Q * net->in_dim);
    for (int i = 0; i < x->top; i++) {
        const struct lp_step *s = &net->s[i];
        if (s->kind == LP_DENSE) {
            sk_sgemm(false, true, Q, s->dout, s->din, 1.0f, G[i], s->din, s->W, s->din, 0.0f, G[i + 1], s->dout);
            for (int q = 0; q < Q; q++)
                for (int k = 0; k < s->dout; k++) G[i + 1][(size_t)q * s->dout + k] += s->b[k];
            continue;
        }
#pragma omp parallel for schedule(static) if (Q * s->din > 1 << 14)
        for (int q = 0; q < Q; q++) {
            const float *gi = G[i] + (size_t)q * s->din;
            float *go = G[i + 1] + (size_t)q * s->dout;
            if (s->kind == LP_DIAG) {
                for (int j = 0; j < s->din; j++) go[j] = s->a[j] * gi[j] + s->ab[j];
            } else {
                const float *a = Aout[i] + (size_t)q * s->dout;
                for (int j = 0; j < s->din; j++) {
                    float sl, ic;
                    batch_line(x, x->act[q / R], q % R, i, j, a[j] >= 0, &sl, &ic);
                    go[j] = sl * gi[j] + ic;
                }
            }
        }
    }
}

int lp_alpha_batch(const struct lp_net *net, const struct lp_bounds *const *b, int N, int top, const float *C, int R,
                   int iters, float lr, const signed char *const *split, float *const *alpha, float *const *beta,
                   const struct lp_opts *o, const float *target, float *lb, float *xstar, float *const *Arelu)
{
    SK_ASSERT(lp_batch_ok(net));
    size_t nr = (size_t)net->n_relu, per = (size_t)R * nr, Qmax = (size_t)N * R;
    int n = top, rc = SK_ENOMEM;
    /* per domain: current and best slopes and multipliers, Adam's moments */
    float *st = sk_calloc(8 * per * (size_t)N + 1, sizeof(float));
    float *cur = sk_malloc(sizeof(float) * (Qmax * net->maxd + 1)), *nxt = sk_malloc(sizeof(float) * (Qmax * net->maxd + 1));
    double *bias = sk_malloc(sizeof(double) * (Qmax + 1)), *best = sk_malloc(sizeof(double) * (Qmax + 1));
    float *lbq = sk_malloc(sizeof(float) * (Qmax + 1)), *xs = sk_malloc(sizeof(float) * (Qmax * net->in_dim + 1));
    int *act = sk_malloc(sizeof(int) * ((size_t)N + 1));
    float **Aout = sk_calloc((size_t)n + 1, sizeof(float *)), **G = sk_calloc((size_t)n + 1, sizeof(float *));
    if (!st || !cur || !nxt || !bias || !best || !lbq || !xs || !act || !Aout || !G) goto done;
    for (int i = 0; i <= n; i++) {
        int d = i == 0 ? net->in_dim : net->s[i - 1].dout;
        if (!(G[i] = sk_malloc(sizeof(float) * (Qmax * d + 1)))) goto done;
        if (i < n && net->s[i].kind == LP_ACT && !(Aout[i] = sk_malloc(sizeof(float) * (Qmax * net->s[i].dout + 1))))
            goto done;
    }
    float *a = st, *bt = st + per * N, *ba = st + 2 * per * N, *bb = st + 3 * per * N;
    float *ma = st + 4 * per * N, *va = st + 5 * per * N, *mb = st + 6 * per * N, *vb = st + 7 * per * N;
    for (int d = 0; d < N; d++)
        for (size_t g = 0; g < nr; g++) {
            int i = net->relu_step[g], j = (int)(g - (size_t)net->s[i].relu_off);
            float p = net->s[i].p, l = b[d]->lo[i][j], u = b[d]->hi[i][j];
            float lo_a = p < 1 ? p : 1, hi_a = p < 1 ? 1 : p;
            for (int r = 0; r < R; r++) {
                size_t k = (size_t)r * nr + g, kd = (size_t)d * per + k;
                float v = alpha && alpha[d] ? alpha[d][k] : lp_relu_default_slope(p, l, u);
                a[kd] = isfinite(v) ? (v < lo_a ? lo_a : v > hi_a ? hi_a : v) : lp_relu_default_slope(p, l, u);
                if (split && split[d] && split[d][g] && beta && beta[d]) bt[kd] = beta[d][k] > 0 ? beta[d][k] : 0;
            }
        }
    for (size_t q = 0; q < Qmax; q++) lb[q] = -INFINITY;
    int na = 0;
    for (int d = 0; d < N; d++) act[na++] = d;
    struct batch x = { .net = net, .b = b, .split = split, .act = act, .R = R, .top = top, .nr = nr, .a = a,
                       .bt = bt };
    const float b1 = 0.9f, b2 = 0.999f;
    rc = SK_OK;
    for (int it = 0; it <= iters && na > 0; it++) {
        x.Q = na * R;
        batch_backward(&x, C, o, Aout, xs, cur, nxt, bias, best, lbq);
        /* keep each row's best; a domain leaves the batch once a row passes
         * its target, and the rows of those still in are packed forward */
        int na2 = 0;
        for (int t = 0; t < na; t++) {
            int d = act[t];
            bool done = false;
            for (int r = 0; r < R; r++) {
                size_t q = (size_t)t * R + r, qd = (size_t)d * R + r;
                if (lbq[q] > lb[qd]) {
                    lb[qd] = lbq[q];
                    memcpy(ba + qd * nr, a + qd * nr, sizeof(float) * nr);
                    memcpy(bb + qd * nr, bt + qd * nr, sizeof(float) * nr);
                    if (xstar) memcpy(xstar + qd * net->in_dim, xs + q * net->in_dim, sizeof(float) * (size_t)net->in_dim);
                    if (Arelu && Arelu[d])
                        for (int i = 0; i < n; i++)
                            if (net->s[i].relu_off >= 0)
                                memcpy(Arelu[d] + (size_t)r * nr + net->s[i].relu_off, Aout[i] + q * net->s[i].dout,
                                       sizeof(float) * (size_t)net->s[i].dout);
                }
                if (target && lb[qd] > target[r]) done = true;
            }
            if (done) continue;
            if (na2 < t) {
                size_t from = (size_t)t * R, to = (size_t)na2 * R;
                memmove(xs + to * net->in_dim, xs + from * net->in_dim, sizeof(float) * R * net->in_dim);
                for (int i = 0; i < n; i++)
                    if (Aout[i])
                        memmove(Aout[i] + to * net->s[i].dout, Aout[i] + from * net->s[i].dout,
                                sizeof(float) * R * net->s[i].dout);
            }
            act[na2++] = d;
        }
        na = na2;
        x.Q = na * R;
        if (it == iters || nr == 0 || na == 0 || (o->deadline > 0 && sk_now() > o->deadline)) break;
        batch_forward(&x, Aout, xs, G);
        float c1 = 1.0f - powf(b1, (float)(it + 1)), c2 = 1.0f - powf(b2, (float)(it + 1));
#pragma omp parallel for schedule(static)
        for (int q = 0; q < x.Q; q++) {
            int d = act[q / R];
            size_t qd = (size_t)d * R + q % R;
            const signed char *sp = split ? split[d] : NULL;
            for (int i = 0; i < n; i++) {
                const struct lp_step *s = &net->s[i];
                if (s->relu_off < 0) continue;
                float lo_a = s->p < 1 ? s->p : 1, hi_a = s->p < 1 ? 1 : s->p;
                const float *A = Aout[i] + (size_t)q * s->dout, *z = G[i] + (size_t)q * s->din;
                for (int j = 0; j < s->din; j++) {
                    size_t k = qd * nr + s->relu_off + j;
                    if (b[d]->lo[i][j] < 0 && b[d]->hi[i][j] > 0 && s->p <= 1) {
                        float gr = A[j] >= 0 ? A[j] * z[j] : 0.0f;
                        ma[k] = b1 * ma[k] + (1 - b1) * gr;
                        va[k] = b2 * va[k] + (1 - b2) * gr * gr;
                        float v = a[k] + lr * (ma[k] / c1) / (sqrtf(va[k] / c2) + 1e-8f);
                        a[k] = v < lo_a ? lo_a : v > hi_a ? hi_a : v;
                    }
                    if (sp && sp[s->relu_off + j]) {
                        float gr = -(float)sp[s->relu_off + j] * z[j];
                        mb[k] = b1 * mb[k] + (1 - b1) * gr;
                        vb[k] = b2 * vb[k] + (1 - b2) * gr * gr;
                        float v = bt[k] + 0.5f * lr * (mb[k] / c1) / (sqrtf(vb[k] / c2) + 1e-8f);
                        bt[k] = v > 0 ? v : 0;
                    }
                }
            }
        }
    }
    for (int d = 0; d < N; d++) {
        if (alpha && alpha[d]) memcpy(alpha[d], ba + (size_t)d * per, sizeof(float) * per);
        if (beta && beta[d]) memcpy(beta[d], bb + (size_t)d * per, sizeof(float) * per);
    }
done:
    if (G)
        for (int i = 0; i <= n; i++) sk_free(G[i]);
    if (Aout)
        for (int i = 0; i <= n; i++) sk_free(Aout[i]);
    sk_free(G);
    sk_free(Aout);
    sk_free(st);
    sk_free(cur);
    sk_free(nxt);
    sk_free(bias);
    sk_free(best);
    sk_free(lbq);
    sk_free(xs);
    sk_free(act);
    return rc;
}
