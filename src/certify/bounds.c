/* Bounds of a chain's every step and of a specification: CROWN layer by
 * layer with optional alpha-CROWN slopes (alpha.c) for intermediate and final
 * bounds, over the relaxation primitives of crown.c; and sk_crown, the MLP
 * entry of certify.c. Above crown.c and alpha.c, so neither calls back here. */
#include "certify/certify_impl.h"
#include "certify/lirpa.h"

#include <math.h>
#include <string.h>

/* ---------------- boxes of every step ---------------- */

static bool needs_crown(const struct lp_net *net, int k)
{
    /* the input of step k is one linear map (after diagonal steps) of the
     * input box: intervals are exact there */
    int lin = 0;
    for (int i = 0; i < k; i++) {
        if (net->s[i].kind == LP_ACT || net->s[i].kind == LP_MAXPOOL) return true;
        if (net->s[i].kind != LP_DIAG) lin++;
    }
    return lin > 1;
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
    float *A = NULL, *lb = NULL;
    int rc = SK_ENOMEM;
    if (!tmp || !col || !sel) goto done;
    rc = SK_OK;
    for (int i = first; i <= net->n && rc == SK_OK; i++) {
        if (i > first || i == 0) {
            if (i > 0) {
                /* the interval through step i-1 */
                const struct lp_step *s = &net->s[i - 1];
                lp_step_interval(net, b, i - 1, tmp, col);
                float *lo = b->lo[i], *hi = b->hi[i];
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
            if (i < net->n && i > 0 && (net->s[i].kind == LP_ACT || net->s[i].kind == LP_MAXPOOL) &&
                needs_crown(net, i)) {
                const struct lp_step *s = &net->s[i];
                bool relu = s->relu_off >= 0;
                int ns = 0;
                for (int j = 0; j < s->din; j++)
                    if (!relu || !o->with_ibp || (b->lo[i][j] < 0 && b->hi[i][j] > 0)) sel[ns++] = j;
                if (ns > 0 && (ns <= o->crown_rows || !o->with_ibp)) {
                    int per = (int)((1u << 21) / (unsigned)s->din);
                    per = per < 1 ? 1 : per > ns ? ns : per;
                    sk_free(A);
                    sk_free(lb);
                    A = sk_malloc(sizeof(float) * (size_t)2 * per * s->din);
                    lb = sk_malloc(sizeof(float) * (size_t)2 * per);
                    if (!A || !lb) {
                        rc = SK_ENOMEM;
                        break;
                    }
                    for (int j0 = 0; j0 < ns && rc == SK_OK; j0 += per) {
                        int r = ns - j0 < per ? ns - j0 : per;
                        memset(A, 0, sizeof(float) * (size_t)2 * r * s->din);
                        for (int t = 0; t < r; t++) {
                            A[(size_t)t * s->din + sel[j0 + t]] = 1.0f;
                            A[(size_t)(r + t) * s->din + sel[j0 + t]] = -1.0f;
                        }
                        rc = lp_backward(net, b, i, A, 2 * r, o, NULL, lb);
                        /* α-CROWN on these rows too, where its slopes fit in memory */
                        if (rc == SK_OK && o->alpha_iters > 0 && net->n_relu > 0 && net->relu_step[0] < i &&
                            (size_t)2 * r * net->n_relu <= ((size_t)1 << 23)) {
                            struct lp_opts oi = *o;
                            oi.alpha_iters = 0;
                            rc = lp_alpha_optimize(net, b, i, A, 2 * r, o->alpha_iters, 0.1f, NULL, NULL, NULL, &oi,
                                                   NULL, lb, NULL, NULL);
                        }
                        for (int t = 0; t < r && rc == SK_OK; t++) {
                            int j = sel[j0 + t];
                            float l = lb[t], u = -lb[r + t];
                            if (o->with_ibp) {
                                if (l > b->lo[i][j]) b->lo[i][j] = l;
                                if (u < b->hi[i][j]) b->hi[i][j] = u;
                            } else {
                                b->lo[i][j] = l;
                                b->hi[i][j] = u;
                            }
                        }
                    }
                    if (rc) break;
                }
            }
        }
        if (i < net->n && split && net->s[i].relu_off >= 0) {
            const struct lp_step *s = &net->s[i];
            for (int j = 0; j < s->din; j++) {
                signed char sp = split[s->relu_off + j];
                if (sp > 0 && b->lo[i][j] < 0) b->lo[i][j] = 0;
                if (sp < 0 && b->hi[i][j] > 0) b->hi[i][j] = 0;
            }
        }
        int d = i == 0 ? net->in_dim : net->s[i - 1].dout;
        for (int j = 0; j < d; j++) {
            float l = b->lo[i][j], u = b->hi[i][j];
            if (l <= u) continue;
            if (isnan(l) || isnan(u)) {
                rc = sk_error(SK_ENONFINITE, "bound propagation: a bound of step %d is not a number", i);
                goto done;
            }
            /* Two conservative bounds of one value cross only when no point
             * of the domain reaches it (a split contradicts the others); a
             * crossing within rounding is only rounding: keep both sides. */
            if (l - u > 1e-5f * (1 + fabsf(l) + fabsf(u))) {
                rc = split ? 1
                           : sk_error(SK_ESTATE, "bound propagation: the bounds of value %d of step %d cross (%g > %g)",
                                      j, i, l, u);
                goto done;
            }
            b->lo[i][j] = u;
            b->hi[i][j] = l;
        }
        if (i < net->n && b->rx[i]) lp_make_relax(net, b, i);
    }
done:
    sk_free(tmp);
    sk_free(col);
    sk_free(sel);
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
    int rc = lp_net_build(m, &net);
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

/* ---------------- the MLP entry of method crown ---------------- */

static int check_mlp(const struct sk_model *m)
{
    if (!sk_model_is_chain(m))
        return sk_error(SK_EINVAL, "crown does not support residual models yet (model '%s' has branches); use "
                        "method ibp", m->spec);
    bool want_dense = true;
    int n = 0;
    for (int li = 0; li < m->n_layers; li++) {
        const struct sk_layer *L = &m->layers[li];
        if (L->kind == SK_LAYER_FLATTEN || L->kind == SK_LAYER_DROPOUT) continue;
        if (want_dense && L->kind == SK_LAYER_DENSE) {
            want_dense = false;
            n++;
        } else if (!want_dense &&
                   (L->kind == SK_LAYER_RELU || (L->kind == SK_LAYER_LRELU && L->p >= 0 && L->p <= 1))) {
            want_dense = true;
        } else {
            return sk_error(SK_EINVAL, "CROWN supports models of dense layers with relu/leaky relu between them "
                            "(an MLP); layer %d (%s) of '%s' does not fit: use method ibp, or alpha-crown for "
                            "every layer kind", li, sk_layer_name(L->kind), m->spec);
        }
    }
    if (n == 0 || want_dense) return sk_error(SK_EINVAL, "CROWN: model '%s' must end with a dense layer", m->spec);
    return SK_OK;
}

int sk_crown(struct sk_model *m, const float *cv, const float *rv, const int *y, int N, bool with_ibp, float *zlo,
             float *zhi)
{
    int rc = check_mlp(m);
    if (rc) return rc;
    return sk_crown_any(m, cv, rv, y, N, with_ibp, 0, zlo, zhi);
}

int sk_crown_any(struct sk_model *m, const float *cv, const float *rv, const int *y, int N, bool with_ibp,
                 int alpha_iters, float *zlo, float *zhi)
{
    int K = m->n_classes, D = m->in_dim;
    struct lp_net net;
    int rc = lp_net_build(m, &net);
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
    float *a = sk_malloc(sizeof(float) * (size_t)net->maxd), *c = sk_malloc(sizeof(float) * (size_t)net->maxd);
    float *col = sk_malloc(sizeof(float) * lp_conv_col(net));
    int rc = SK_ENOMEM;
    if (a && c && col) {
        memcpy(a, x, sizeof(float) * (size_t)net->in_dim);
        for (int i = 0; i < net->n; i++) {
            const struct lp_step *s = &net->s[i];
            if (s->kind == LP_ACT) {
                for (int j = 0; j < s->din; j++) c[j] = (float)lp_act_f(s->act, s->p, a[j]);
            } else if (s->kind == LP_MAXPOOL) {
                for (int ch = 0; ch < s->oc; ch++)
                    for (int oy = 0; oy < s->oh; oy++)
                        for (int ox = 0; ox < s->ow; ox++) {
                            float mx = -INFINITY;
                            for (int ky = 0; ky < s->k; ky++)
                                for (int kx = 0; kx < s->k; kx++) {
                                    float v = a[(ch * s->ih + oy * s->stride + ky) * s->iw + ox * s->stride + kx];
                                    mx = v > mx ? v : mx;
                                }
                            c[(ch * s->oh + oy) * s->ow + ox] = mx;
                        }
            } else if (s->kind == LP_DENSE) {
                /* one matrix-vector product (branch and bound checks a corner per subdomain) */
                memcpy(c, s->b, sizeof(float) * (size_t)s->dout);
                sk_sgemm(false, true, 1, s->dout, s->din, 1.0f, a, s->din, s->W, s->din, 1.0f, c, s->dout);
            } else {
                lp_lin_forward(s, s->W, a, c, true, col);
            }
            float *t = a;
            a = c;
            c = t;
        }
        memcpy(y, a, sizeof(float) * (size_t)net->out_dim);
        rc = SK_OK;
    }
    sk_free(a);
    sk_free(c);
    sk_free(col);
    return rc;
}
