/* Certified accuracy and the array entry points of the three methods. */
#include "certify/certify_impl.h"
#include "certify/lirpa.h"

#include <math.h>
#include <string.h>

static int check_rows(const struct sk_model *m, const int *y, int N)
{
    if (N < 0) return sk_error(SK_EINVAL, "certify: %d rows", N);
    if (y)
        for (int i = 0; i < N; i++)
            if (y[i] < 0 || y[i] >= m->n_classes)
                return sk_error(SK_EINVAL, "certify: label %d of row %d outside the model's %d classes", y[i], i,
                                m->n_classes);
    return SK_OK;
}

/* The centre/radius form of the box [lo, hi] (n values each): *cv and *rv
 * allocated (n + 1 floats, freed by the caller even on an error); SK_EINVAL
 * naming the first value with lo > hi, SK_ENOMEM. */
static int box_centre_radius(const float *lo, const float *hi, size_t n, float **cv, float **rv)
{
    *cv = sk_malloc(sizeof(float) * (n + 1));
    *rv = sk_malloc(sizeof(float) * (n + 1));
    if (!*cv || !*rv) return SK_ENOMEM;
    for (size_t i = 0; i < n; i++) {
        if (!(lo[i] <= hi[i])) return sk_error(SK_EINVAL, "bounds: box has lo > hi at value %zu", i);
        (*cv)[i] = 0.5f * (lo[i] + hi[i]);
        (*rv)[i] = 0.5f * (hi[i] - lo[i]);
    }
    return SK_OK;
}

/* α-CROWN over the boxes [lo, hi] (margins for labels y, else logit bounds);
 * the engine's own intervals keep it never looser than IBP. */
#define ALPHA_CROWN_ITERS 20
static int alpha_crown_bounds(struct sk_model *m, const float *lo, const float *hi, int N, const int *y, float *zlo,
                              float *zhi)
{
    float *cv = NULL, *rv = NULL;
    int rc = box_centre_radius(lo, hi, (size_t)N * m->in_dim, &cv, &rv);
    if (!rc) rc = sk_crown_any(m, cv, rv, y, N, true, ALPHA_CROWN_ITERS, zlo, zhi);
    sk_free(cv);
    sk_free(rv);
    return rc;
}

int sk_certify_bounds(struct sk_model *m, enum sk_certify_method method, const float *lo, const float *hi, int N,
                      float *zlo, float *zhi)
{
    if (method == SK_CERTIFY_IBP) return sk_certify_ibp_bounds(m, lo, hi, N, zlo, zhi);
    if (method == SK_CERTIFY_ALPHA_CROWN) return alpha_crown_bounds(m, lo, hi, N, NULL, zlo, zhi);
    if (method != SK_CERTIFY_CROWN)
        return sk_error(SK_EINVAL, "bounds: method %s gives no logit bounds (use ibp or crown)",
                        sk_certify_method_name(method));
    float *cv = NULL, *rv = NULL;
    int rc = box_centre_radius(lo, hi, (size_t)N * m->in_dim, &cv, &rv);
    size_t nk = (size_t)N * m->n_classes + 1;
    float *il = sk_malloc(sizeof(float) * nk), *iu = sk_malloc(sizeof(float) * nk);
    if (!rc && (!il || !iu)) rc = SK_ENOMEM;
    if (!rc) {
        rc = sk_crown(m, cv, rv, NULL, N, true, zlo, zhi);
        if (!rc) rc = sk_certify_ibp_bounds(m, lo, hi, N, il, iu);
        if (!rc)
            for (size_t i = 0; i + 1 < nk; i++) {
                if (il[i] > zlo[i]) zlo[i] = il[i];
                if (iu[i] < zhi[i]) zhi[i] = iu[i];
            }
    }
    sk_free(cv);
    sk_free(rv);
    sk_free(il);
    sk_free(iu);
    return rc;
}

int sk_certify_bounds_crown_only(struct sk_model *m, const float *lo, const float *hi, int N, float *zlo, float *zhi)
{
    float *cv = NULL, *rv = NULL;
    int rc = box_centre_radius(lo, hi, (size_t)N * m->in_dim, &cv, &rv);
    if (!rc) rc = sk_crown(m, cv, rv, NULL, N, false, zlo, zhi);
    sk_free(cv);
    sk_free(rv);
    return rc;
}

int sk_certify_margins(struct sk_model *m, enum sk_certify_method method, const float *x, const int *y, int N,
                       float eps, float clip_lo, float clip_hi, float *mlo)
{
    struct sk_certify_domain box = { clip_lo, clip_hi, NULL, NULL };
    return sk_certify_margins_box(m, method, x, y, N, eps, &box, mlo);
}

int sk_certify_margins_box(struct sk_model *m, enum sk_certify_method method, const float *x, const int *y, int N,
                           float eps, const struct sk_certify_domain *box, float *mlo)
{
    int rc = check_rows(m, y, N);
    if (rc) return rc;
    if (!(eps >= 0) || !isfinite(eps)) return sk_error(SK_EINVAL, "certify: epsilon %g must be finite and >= 0", eps);
    if (N == 0) return SK_OK;
    if (method == SK_CERTIFY_LIPSCHITZ) return sk_certify_lipschitz_margins(m, x, y, N, eps, mlo);
    if (method != SK_CERTIFY_IBP && method != SK_CERTIFY_CROWN && method != SK_CERTIFY_ALPHA_CROWN)
        return sk_error(SK_EINVAL, "certify: unknown method %d", (int)method);
    size_t n = (size_t)N * m->in_dim;
    float *cv = sk_malloc(sizeof(float) * n), *rv = sk_malloc(sizeof(float) * n);
    float *tmp = method == SK_CERTIFY_CROWN ? sk_malloc(sizeof(float) * (size_t)N * m->n_classes) : NULL;
    rc = SK_ENOMEM;
    if (cv && rv && (method != SK_CERTIFY_CROWN || tmp)) {
        rc = sk_certify_domain_centre_radius(x, n, m->in_dim, eps, box, cv, rv);
        if (!rc && method == SK_CERTIFY_ALPHA_CROWN) rc = sk_crown_any(m, cv, rv, y, N, true, ALPHA_CROWN_ITERS, mlo, NULL);
        else if (!rc) rc = sk_certify_ibp_margins(m, cv, rv, y, N, mlo);
        if (!rc && method == SK_CERTIFY_CROWN) {
            rc = sk_crown(m, cv, rv, y, N, true, tmp, NULL);
            if (!rc)
                for (size_t i = 0; i < (size_t)N * m->n_classes; i++)
                    if (tmp[i] > mlo[i]) mlo[i] = tmp[i];
        }
    }
    sk_free(cv);
    sk_free(rv);
    sk_free(tmp);
    return rc;
}

void sk_certify_fill_report(const struct sk_model *m, enum sk_certify_method method, float eps, const float *lp,
                            const float *mlo, const int *y, int N, unsigned char *cert, struct sk_certify_report *rep)
{
    int K = m->n_classes;
    struct sk_certify_report r = { 0 };
    r.method = method;
    r.eps = eps;
    r.n = N;
    double msum = 0;
    for (int n = 0; n < N; n++) {
        const float *z = lp + (size_t)n * K, *ml = mlo + (size_t)n * K;
        int best = 0;
        for (int k = 1; k < K; k++)
            if (z[k] > z[best]) best = k;
        bool correct = best == y[n];
        float big = 0, worst = INFINITY;
        for (int k = 0; k < K; k++) {
            if (k == y[n]) continue;
            big = fabsf(ml[k]) > big ? fabsf(ml[k]) : big;
            worst = ml[k] < worst ? ml[k] : worst;
        }
        bool ok = correct && K > 1 && worst > SK_CERTIFY_TOL * (1.0f + big);
        r.n_correct += correct;
        r.n_certified += ok;
        msum += K > 1 ? worst : 0;
        if (cert) cert[n] = ok;
    }
    r.clean_acc = N ? (double)r.n_correct / N : 0;
    r.certified_acc = N ? (double)r.n_certified / N : 0;
    r.mean_margin_lo = N ? msum / N : 0;
    *rep = r;
}

/* sk_certify and sk_certify_lipschitz: margins and log-probabilities, then the report. */
static int certify_run(struct sk_model *m, enum sk_certify_method method, const float *x, const int *y, int N,
                       float eps, const struct sk_certify_domain *box, unsigned char *cert, float *r2, float *rinf,
                       struct sk_certify_report *rep)
{
    double t0 = sk_now();
    int rc = check_rows(m, y, N);
    if (rc) return rc;
    if (!y) return sk_error(SK_EINVAL, "certify: labels needed");
    if (!(eps >= 0) || !isfinite(eps)) return sk_error(SK_EINVAL, "certify: epsilon %g must be finite and >= 0", eps);
    size_t nk = (size_t)N * m->n_classes + 1;
    float *mlo = sk_malloc(sizeof(float) * nk), *lp = sk_malloc(sizeof(float) * nk);
    double global = NAN;
    bool proved = false;
    rc = SK_ENOMEM;
    if (mlo && lp && method == SK_CERTIFY_LIPSCHITZ) /* the layer bounds once for everything */
        rc = sk_certify_lipschitz_run(m, x, y, N, eps, 0, lp, mlo, r2, rinf, &global, &proved);
    else if (mlo && lp && !(rc = sk_certify_margins_box(m, method, x, y, N, eps, box, mlo)))
        rc = sk_model_log_probs(m, x, N, lp);
    if (!rc) {
        struct sk_certify_report r;
        sk_certify_fill_report(m, method, eps, lp, mlo, y, N, cert, &r);
        r.lipschitz_global = global;
        r.lipschitz_proved = proved;
        r.seconds = sk_now() - t0;
        if (rep) *rep = r;
    }
    sk_free(mlo);
    sk_free(lp);
    return rc;
}

int sk_certify_lipschitz(struct sk_model *m, const float *x, const int *y, int N, float eps, unsigned char *cert,
                         float *r2, float *rinf, struct sk_certify_report *rep)
{
    return certify_run(m, SK_CERTIFY_LIPSCHITZ, x, y, N, eps, NULL, cert, r2, rinf, rep);
}

int sk_certify(struct sk_model *m, enum sk_certify_method method, const float *x, const int *y, int N, float eps,
               float clip_lo, float clip_hi, unsigned char *cert, struct sk_certify_report *rep)
{
    struct sk_certify_domain box = { clip_lo, clip_hi, NULL, NULL };
    return certify_run(m, method, x, y, N, eps, &box, cert, NULL, NULL, rep);
}

int sk_certify_box(struct sk_model *m, enum sk_certify_method method, const float *x, const int *y, int N, float eps,
                   const struct sk_certify_domain *box, unsigned char *cert, struct sk_certify_report *rep)
{
    return certify_run(m, method, x, y, N, eps, box, cert, NULL, NULL, rep);
}
