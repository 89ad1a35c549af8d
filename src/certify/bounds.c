/* Bounds of every value of a chain or graph and of a specification: CROWN
 * value by value with optional alpha-CROWN slopes (alpha.c) for
 * intermediate and final bounds, over the relaxation primitives of crown.c;
 * and sk_crown, the entry of certify.c. Above crown.c and alpha.c, so
 * neither calls back here. */
#include "certify/certify_impl.h"
#include "certify/lirpa.h"

#include <limits.h>
#include <math.h>
#include <string.h>

/* ---------------- boxes of every value ---------------- */

/* depth[v]: how many linear maps (diagonal steps aside) value v is of the
 * input box, INT_MAX / 2 when a nonlinear step or an add lies between:
 * intervals are exact at depth 1 (a cat of exact intervals is exact). */
static void lin_depth(const struct lp_net *net, int *depth)
{
    const int far = INT_MAX / 2;
    depth[0] = 0;
    for (int i = 0; i < net->n; i++) {
        const struct lp_step *s = &net->s[i];
        int d = depth[s->in0];
        if (s->kind == LP_ACT || s->kind == LP_MAXPOOL || s->kind == LP_ADD) d = far;
        else if (s->kind == LP_CAT) d = d > depth[s->in1] ? d : depth[s->in1];
        else if (s->kind != LP_DIAG && d < far) d++;
        depth[i + 1] = d;
    }
}

static bool nonlinear(const struct lp_step *s) { return s->kind == LP_ACT || s->kind == LP_MAXPOOL; }

/* After value v's box is final: the splits of the relu steps (from step
 * kmin on) that read it clamp it, then the relaxations of its nonlinear
 * readers from kmin on. 1 when the box came out empty (the splits
 * contradict each other), else SK_OK or a status. */
static int finish_value(const struct lp_net *net, struct lp_bounds *b, int v, int kmin, const signed char *split)
{
    int k0 = v > kmin ? v : kmin;
    if (split)
        for (int k = k0; k < net->n; k++) {
            const struct lp_step *s = &net->s[k];
            if (s->in0 != v || s->relu_off < 0) continue;
            for (int j = 0; j < s->din; j++) {
                signed char sp = split[s->relu_off + j];
                if (sp > 0 && b->lo[v][j] < 0) b->lo[v][j] = 0;
                if (sp < 0 && b->hi[v][j] > 0) b->hi[v][j] = 0;
            }
        }
    int d = v == 0 ? net->in_dim : net->s[v - 1].dout;
    for (int j = 0; j < d; j++) {
        float l = b->lo[v][j], u = b->hi[v][j];
        if (l <= u) continue;
        if (isnan(l) || isnan(u))
            return sk_error(SK_ENONFINITE, "bound propagation: a bound of value %d (step %d's output) is not a number",
                            v, v - 1);
        /* Two conservative bounds of one value cross only when no point
         * of the domain reaches it (a split contradicts the others); a
         * crossing within rounding is only rounding: keep both sides. */
        if (l - u > 1e-5f * (1 + fabsf(l) + fabsf(u)))
            return split ? 1
                         : sk_error(SK_ESTATE, "bound propagation: the bounds of entry %d of value %d cross (%g > %g)",
                                    j, v, l, u);
        b->lo[v][j] = u;
        b->hi[v][j] = l;
    }
    for (int k = k0; k < net->n; k++)
        if (net->s[k].in0 == v && b->rx[k]) lp_make_relax(net, b, k);
    return SK_OK;
}

/* CROWN (and α-CROWN with o->alpha_iters) for entries of value v: its
 * unstable ones when only relu steps read it and intervals are on, else
 * all; intersected with the box with o->with_ibp. */
static int crown_value(const struct lp_net *net, struct lp_bounds *b, int v, const struct lp_opts *o, int *sel,
                       float **A, float **lb)
{
    bool relu = true;
    for (int k = v; k < net->n; k++)
        if (net->s[k].in0 == v && nonlinear(&net->s[k]) && net->s[k].relu_off < 0) relu = false;
    int dv = net->s[v - 1].dout, ns = 0;
    for (int j = 0; j < dv; j++)
        if (!relu || !o->with_ibp || (b->lo[v][j] < 0 && b->hi[v][j] > 0)) sel[ns++] = j;
    if (ns == 0 || (ns > o->crown_rows && o->with_ibp)) return SK_OK;
    int per = (int)((1u << 21) / (unsigned)dv);
    per = per < 1 ? 1 : per > ns ? ns : per;
    sk_free(*A);
    sk_free(*lb);
    *A = sk_malloc(sizeof(float) * (size_t)2 * per * dv);
    *lb = sk_malloc(sizeof(float) * (size_t)2 * per);
    if (!*A || !*lb) return SK_ENOMEM;
    int rc = SK_OK;
    for (int j0 = 0; j0 < ns && rc == SK_OK; j0 += per) {
        int r = ns - j0 < per ? ns - j0 : per;
        float *Ar = *A, *l = *lb;
        memset(Ar, 0, sizeof(float) * (size_t)2 * r * dv);
        for (int t = 0; t < r; t++) {
            Ar[(size_t)t * dv + sel[j0 + t]] = 1.0f;
            Ar[(size_t)(r + t) * dv + sel[j0 + t]] = -1.0f;
        }
        rc = lp_backward(net, b, v, Ar, 2 * r, o, NULL, l);
        /* α-CROWN on these rows too, where its slopes fit in memory */
        if (rc == SK_OK && o->alpha_iters > 0 && net->n_relu > 0 && net->relu_step[0] < v &&
            (size_t)2 * r * net->n_relu <= ((size_t)1 << 23)) {
            struct lp_opts oi = *o;
            oi.alpha_iters = 0;
            rc = lp_alpha_optimize(net, b, v, Ar, 2 * r, o->alpha_iters, 0.1f, NULL, NULL, NULL, &oi, NULL, l, NULL,
                                   NULL);
        }
        for (int t = 0; t < r && rc == SK_OK; t++) {
            int j = sel[j0 + t];
            float lo = l[t], hi = -l[r + t];
            if (o->with_ibp) {
                if (lo > b->lo[v][j]) b->lo[v][j] = lo;
                if (hi < b->hi[v][j]) b->hi[v][j] = hi;
            } else {
                b->lo[v][j] = lo;
                b->hi[v][j] = hi;
            }
        }
    }
    return rc;
}

int lp_bounds_compute(const struct lp_net *net, const float *lo0, const float *hi0, const signed char *split,
                      int first, const struct lp_opts *o, struct lp_bounds *b)
{
    bool keep = first > 0;
    if (!keep) {
        memcpy(b->lo[0], lo0, sizeof(float) * (size_t)net->in_dim);
        memcpy(b->hi[0], hi0, sizeof(float) * (size_t)net->in_dim);
    }
    float *tmp = sk_malloc(sizeof(float) * (4 * (size_t)net->maxd + 2));
    float *col = sk_malloc(sizeof(float) * lp_conv_col(net));
    int *sel = sk_malloc(sizeof(int) * ((size_t)net->maxd + 1));
    int *depth = sk_malloc(sizeof(int) * ((size_t)net->n + 1));
    float *A = NULL, *lb = NULL;
    int rc = SK_ENOMEM;
    if (!tmp || !col || !sel || !depth) goto done;
    rc = SK_OK;
    lin_depth(net, depth);
    /* a graph's steps from `first` on may read values before it: their splits and relaxations */
    if (keep)
        for (int v = 0; v < first && rc == SK_OK; v++) {
            bool read = false;
            for (int k = first; k < net->n && !read; k++) read = net->s[k].in0 == v && nonlinear(&net->s[k]);
            if (read) rc = finish_value(net, b, v, first, split);
        }
    for (int v = first; v <= net->n && rc == SK_OK; v++) {
        if (v > first || v == 0) {
            if (v > 0) {
                /* the interval through step v-1 */
                const struct lp_step *s = &net->s[v - 1];
                lp_step_interval(net, b, v - 1, tmp, col);
                float *lo = b->lo[v], *hi = b->hi[v];
                bool isect = keep && o->with_ibp;
                for (int j = 0; j < s->dout; j++) {
                    float l = tmp[j], u = tmp[s->dout + j];
                    if (isect) {
                        lo[j] = l > lo[j] ? l : lo[j];
                        hi[j] = u < hi[j] ? u : hi[j];
                    } else {
                        lo[j] = l;
                        hi[j] = u;
                    }
                }
            }
            /* CROWN for the inputs of nonlinear steps */
            bool read = false;
            for (int k = v; k < net->n && !read; k++) read = net->s[k].in0 == v && nonlinear(&net->s[k]);
            if (v > 0 && read && depth[v] > 1 && (rc = crown_value(net, b, v, o, sel, &A, &lb))) break;
        }
        rc = finish_value(net, b, v, first, split);
    }
done:
    sk_free(tmp);
    sk_free(col);
    sk_free(sel);
    sk_free(depth);
    sk_free(A);
    sk_free(lb);
    return rc;
}

/* ---------------- entry points ---------------- */

/* Lower bounds lb[n] of C·y over one box (lo, hi raw units), y the logits. */
static int spec_lower(const struct sk_model *m, const struct lp_net *net, const float *lo, const float *hi,
                      const float *C, int n, const struct lp_opts *o, int alpha_iters, float alpha_lr, float *lb)
{
    struct lp_bounds b;
    int rc = lp_bounds_alloc(net, &b);
    if (rc) return rc;
    (void)m;
    rc = lp_bounds_compute(net, lo, hi, NULL, 0, o, &b);
    if (!rc) {
        if (alpha_iters > 0 && net->n_relu > 0)
            rc = lp_alpha_optimize(net, &b, net->n, C, n, alpha_iters, alpha_lr, NULL, NULL, NULL, o, NULL, lb, NULL, NULL);
        else
            rc = lp_backward(net, &b, net->n, C, n, o, NULL, lb);
    }
    lp_bounds_free(&b);
    return rc;
}

int sk_certify_spec_bounds(struct sk_model *m, const float *lo, const float *hi, int N, const float *C, int n_spec,
                           const struct sk_certify_crown_config *cfg, float *lb)
{
    struct sk_certify_crown_config d = sk_certify_crown_defaults();
    if (!cfg) cfg = &d;
    if (N < 0 || n_spec < 0) return sk_error(SK_EINVAL, "bounds: %d boxes, %d specification rows", N, n_spec);
    for (size_t i = 0; i < (size_t)N * m->in_dim; i++)
        if (!(lo[i] <= hi[i])) return sk_error(SK_EINVAL, "bounds: box has lo > hi at value %zu", i);
    if (cfg->alpha_iters < 0 || !(cfg->alpha_lr > 0) || cfg->crown_rows < 0)
        return sk_error(SK_EINVAL, "bounds: cfg.alpha_iters %d, cfg.alpha_lr %g, cfg.crown_rows %d out of range",
                        cfg->alpha_iters, cfg->alpha_lr, cfg->crown_rows);
    struct lp_net net;
    int rc = lp_net_build_graph(m, &net);
    if (rc) return rc;
    net.sound = cfg->sound_fp;
    struct lp_opts o = { .with_ibp = cfg->with_ibp, .crown_rows = cfg->crown_rows };
    for (int n = 0; n < N && rc == SK_OK; n++)
        rc = spec_lower(m, &net, lo + (size_t)n * m->in_dim, hi + (size_t)n * m->in_dim, C, n_spec, &o,
                        cfg->alpha_iters, cfg->alpha_lr, lb + (size_t)n * n_spec);
    lp_net_free(&net);
    return rc;
}

struct sk_certify_crown_config sk_certify_crown_defaults(void)
{
    return (struct sk_certify_crown_config){ .alpha_iters = 0, .alpha_lr = 0.1f, .crown_rows = 2048,
                                             .with_ibp = true };
}

/* ---------------- method crown ---------------- */

int sk_crown(struct sk_model *m, const float *cv, const float *rv, const int *y, int N, bool with_ibp, float *zlo,
             float *zhi)
{
    return sk_crown_any(m, cv, rv, y, N, with_ibp, 0, zlo, zhi);
}

int sk_crown_any(struct sk_model *m, const float *cv, const float *rv, const int *y, int N, bool with_ibp,
                 int alpha_iters, float *zlo, float *zhi)
{
    int K = m->n_classes, D = m->in_dim;
    struct lp_net net;
    int rc = lp_net_build_graph(m, &net);
    if (rc) return rc;
    float *C = sk_calloc((size_t)2 * K * K + 1, sizeof(float)), *lb = sk_malloc(sizeof(float) * (2 * (size_t)K + 1));
    float *lo = sk_malloc(sizeof(float) * (size_t)D), *hi = sk_malloc(sizeof(float) * (size_t)D);
    struct lp_opts o = { .with_ibp = with_ibp, .crown_rows = with_ibp ? 2048 : 1 << 30 };
    rc = SK_ENOMEM;
    if (C && lb && lo && hi) {
        rc = SK_OK;
        for (int n = 0; n < N && rc == SK_OK; n++) {
            for (int j = 0; j < D; j++) {
                lo[j] = cv[(size_t)n * D + j] - rv[(size_t)n * D + j];
                hi[j] = cv[(size_t)n * D + j] + rv[(size_t)n * D + j];
            }
            int M;
            memset(C, 0, sizeof(float) * (size_t)2 * K * K);
            if (y) {
                M = K;
                for (int j = 0; j < K; j++)
                    if (j != y[n]) {
                        C[(size_t)j * K + y[n]] = 1.0f;
                        C[(size_t)j * K + j] = -1.0f;
                    }
            } else {
                M = 2 * K;
                for (int j = 0; j < K; j++) {
                    C[(size_t)j * K + j] = 1.0f;
                    C[(size_t)(K + j) * K + j] = -1.0f;
                }
            }
            rc = spec_lower(m, &net, lo, hi, C, M, &o, alpha_iters, 0.1f, lb);
            if (rc) break;
            if (y) {
                for (int j = 0; j < K; j++) zlo[(size_t)n * K + j] = j == y[n] ? 0.0f : lb[j];
            } else {
                for (int j = 0; j < K; j++) {
                    zlo[(size_t)n * K + j] = lb[j];
                    zhi[(size_t)n * K + j] = -lb[K + j];
                }
            }
        }
    }
    sk_free(C);
    sk_free(lb);
    sk_free(lo);
    sk_free(hi);
    lp_net_free(&net);
    return rc;
}

/* ---------------- a plain forward pass over the steps ---------------- */

int lp_forward_point(const struct lp_net *net, const float *x, float *y)
{
    /* every value's buffer (a graph reads values further back than the step before) */
    size_t tot = (size_t)net->in_dim + 1;
    for (int i = 0; i < net->n; i++) tot += (size_t)net->s[i].dout;
    float *mem = sk_malloc(sizeof(float) * tot), **v = sk_malloc(sizeof(float *) * ((size_t)net->n + 1));
    float *col = sk_malloc(sizeof(float) * lp_conv_col(net));
    int rc = SK_ENOMEM;
    if (mem && v && col) {
        v[0] = mem;
        for (int i = 0; i < net->n; i++) v[i + 1] = v[i] + (i == 0 ? net->in_dim : net->s[i - 1].dout);
        memcpy(v[0], x, sizeof(float) * (size_t)net->in_dim);
        for (int i = 0; i < net->n; i++) {
            const struct lp_step *s = &net->s[i];
            const float *a = v[s->in0];
            float *c = v[i + 1];
            if (s->kind == LP_ACT) {
                for (int j = 0; j < s->din; j++) c[j] = (float)lp_act_f(s->act, s->p, a[j]);
            } else if (s->kind == LP_MAXPOOL) {
                for (int ch = 0; ch < s->oc; ch++)
                    for (int oy = 0; oy < s->oh; oy++)
                        for (int ox = 0; ox < s->ow; ox++) {
                            float mx = -INFINITY;
                            for (int ky = 0; ky < s->k; ky++)
                                for (int kx = 0; kx < s->k; kx++) {
                                    float t = a[(ch * s->ih + oy * s->stride + ky) * s->iw + ox * s->stride + kx];
                                    mx = t > mx ? t : mx;
                                }
                            c[(ch * s->oh + oy) * s->ow + ox] = mx;
                        }
            } else if (s->kind == LP_ADD) {
                for (int j = 0; j < s->dout; j++) c[j] = a[j] + v[s->in1][j];
            } else if (s->kind == LP_CAT) {
                memcpy(c, a, sizeof(float) * (size_t)s->din);
                memcpy(c + s->din, v[s->in1], sizeof(float) * (size_t)(s->dout - s->din));
            } else if (s->kind == LP_DENSE) {
                /* one matrix-vector product (branch and bound checks a corner per subdomain) */
                memcpy(c, s->b, sizeof(float) * (size_t)s->dout);
                sk_sgemm(false, true, 1, s->dout, s->din, 1.0f, a, s->din, s->W, s->din, 1.0f, c, s->dout);
            } else {
                lp_lin_forward(s, s->W, a, c, true, col);
            }
        }
        memcpy(y, v[net->n], sizeof(float) * (size_t)net->out_dim);
        rc = SK_OK;
    }
    sk_free(mem);
    sk_free(v);
    sk_free(col);
    return rc;
}
