/* Certified margins under sound floating point: the threat set rounded
 * outward, then the steps of lirpa.h (chains and graphs) with net->sound, so every product, sum
 * and concretization moves its bound outward by an a-priori error term (see
 * certify.h, "sound floating point", and crown.c). */
#include "certify/certify_impl.h"
#include "certify/lirpa.h"

#include <math.h>
#include <string.h>

int sk_certify_outward_box(const float *x, size_t n, int D, float eps, const struct sk_certify_domain *box, float *lo,
                           float *hi)
{
    if (!(eps >= 0) || !isfinite(eps)) return sk_error(SK_EINVAL, "certify: epsilon %g must be finite and >= 0", eps);
    bool clip = box && (box->blo || box->lo < box->hi);
    for (size_t i = 0; i < n; i++) {
        /* x +- eps in double is exact for floats of similar size; the float ends round outward */
        float l = sk_certify_down((double)x[i] - eps), h = sk_certify_up((double)x[i] + eps);
        if (clip) {
            float bl = box->blo ? box->blo[i % (size_t)D] : box->lo, bh = box->bhi ? box->bhi[i % (size_t)D] : box->hi;
            l = l < bl ? bl : l;
            h = h > bh ? bh : h;
            if (h < l) h = l; /* x itself outside the box */
        }
        lo[i] = l;
        hi[i] = h;
    }
    return SK_OK;
}

#define ALPHA_ITERS_DEFAULT 20

/* Margin lower bounds of one box: rows C (K of them, e_y - e_j). */
static int sound_margins(const struct lp_net *net, struct lp_bounds *b, const struct lp_opts *o, int method,
                         const struct sk_certify_crown_config *cfg, const float *lo, const float *hi, const float *C,
                         int K, float *lb)
{
    int rc = lp_bounds_compute(net, lo, hi, NULL, 0, o, b);
    if (rc) return rc;
    if (method == SK_CERTIFY_ALPHA_CROWN && net->n_relu > 0) {
        int iters = cfg->alpha_iters > 0 ? cfg->alpha_iters : ALPHA_ITERS_DEFAULT;
        return lp_alpha_optimize(net, b, net->n, C, K, iters, cfg->alpha_lr, NULL, NULL, NULL, o, NULL, lb, NULL,
                                 NULL);
    }
    return lp_backward(net, b, net->n, C, K, o, NULL, lb);
}

int sk_certify_margins_cfg(struct sk_model *m, enum sk_certify_method method, const float *x, const int *y, int N,
                           float eps, const struct sk_certify_domain *box, const struct sk_certify_crown_config *cfg,
                           float *mlo)
{
    struct sk_certify_crown_config dc = sk_certify_crown_defaults();
    if (!cfg) cfg = &dc;
    if (!cfg->sound_fp) return sk_certify_margins_box(m, method, x, y, N, eps, box, mlo);
    int K = m->n_classes, D = m->in_dim;
    if (N < 0) return sk_error(SK_EINVAL, "certify: %d rows", N);
    if (!y) return sk_error(SK_EINVAL, "certify: labels needed");
    for (int n = 0; n < N; n++)
        if (y[n] < 0 || y[n] >= K)
            return sk_error(SK_EINVAL, "certify: label %d of row %d outside the model's %d classes", y[n], n, K);
    if (method == SK_CERTIFY_LIPSCHITZ)
        return sk_error(SK_EINVAL, "certify: cfg.sound_fp with method lipschitz: the Lipschitz bound has no outward-"
                        "rounded variant (use ibp, crown or alpha-crown)");
    if (method != SK_CERTIFY_IBP && method != SK_CERTIFY_CROWN && method != SK_CERTIFY_ALPHA_CROWN)
        return sk_error(SK_EINVAL, "certify: unknown method %d", (int)method);
    if (cfg->crown_rows < 0 || cfg->alpha_iters < 0 || !(cfg->alpha_lr > 0))
        return sk_error(SK_EINVAL, "certify: cfg.alpha_iters %d, cfg.alpha_lr %g, cfg.crown_rows %d out of range",
                        cfg->alpha_iters, cfg->alpha_lr, cfg->crown_rows);
    if (N == 0) return SK_OK;
    struct lp_net net;
    int rc = lp_net_build_graph(m, &net);
    if (rc) return rc;
    net.sound = true;
    /* ibp: intervals only, the bound concretized after the last dense layer (specification form) */
    bool ibp = method == SK_CERTIFY_IBP;
    struct lp_opts o = { .with_ibp = true, .crown_rows = ibp ? 0 : cfg->crown_rows,
                         .stop = ibp ? (net.s[net.n - 1].kind == LP_DENSE ? net.n - 1 : net.n) : 0 };
    struct lp_bounds b;
    memset(&b, 0, sizeof b);
    float *lo = sk_malloc(sizeof(float) * (size_t)D), *hi = sk_malloc(sizeof(float) * (size_t)D);
    float *C = sk_malloc(sizeof(float) * (size_t)K * K), *lb = sk_malloc(sizeof(float) * (size_t)K);
    rc = SK_ENOMEM;
    if (lo && hi && C && lb && !(rc = lp_bounds_alloc(&net, &b))) {
        for (int n = 0; n < N && rc == SK_OK; n++) {
            if ((rc = sk_certify_outward_box(x + (size_t)n * D, (size_t)D, D, eps, box, lo, hi))) break;
            memset(C, 0, sizeof(float) * (size_t)K * K);
            for (int j = 0; j < K; j++)
                if (j != y[n]) {
                    C[(size_t)j * K + y[n]] = 1.0f;
                    C[(size_t)j * K + j] = -1.0f;
                }
            if ((rc = sound_margins(&net, &b, &o, method, cfg, lo, hi, C, K, lb))) break;
            for (int j = 0; j < K; j++) mlo[(size_t)n * K + j] = j == y[n] ? 0.0f : lb[j];
        }
    }
    lp_bounds_free(&b);
    lp_net_free(&net);
    sk_free(lo);
    sk_free(hi);
    sk_free(C);
    sk_free(lb);
    return rc;
}

int sk_certify_box_cfg(struct sk_model *m, enum sk_certify_method method, const float *x, const int *y, int N,
                       float eps, const struct sk_certify_domain *box, const struct sk_certify_crown_config *cfg,
                       unsigned char *cert, struct sk_certify_report *rep)
{
    if (!cfg || !cfg->sound_fp) return sk_certify_box(m, method, x, y, N, eps, box, cert, rep);
    double t0 = sk_now();
    if (!y) return sk_error(SK_EINVAL, "certify: labels needed");
    size_t nk = (size_t)N * m->n_classes + 1;
    float *mlo = sk_malloc(sizeof(float) * nk), *lp = sk_malloc(sizeof(float) * nk);
    int rc = SK_ENOMEM;
    if (mlo && lp && !(rc = sk_certify_margins_cfg(m, method, x, y, N, eps, box, cfg, mlo)) &&
        !(rc = sk_model_log_probs(m, x, N, lp))) {
        struct sk_certify_report r;
        sk_certify_fill_report(m, method, eps, lp, mlo, y, N, cert, &r);
        r.lipschitz_global = NAN;
        r.seconds = sk_now() - t0;
        if (rep) *rep = r;
    }
    sk_free(mlo);
    sk_free(lp);
    return rc;
}
