/* Last-layer Laplace approximation: generalised Gauss–Newton of the last
 * dense layer (full or Kronecker-factored), prior precision by marginal
 * likelihood or validation NLL, probit or Monte Carlo predictive. */
#include "bayes/bayes_impl.h"

#include <math.h>
#include <string.h>

#define FULL_MAX 2500 /* largest K*(D+1) for the full Hessian */
#define BATCH 500

/* Features (the input of the last layer) of N rows: phi [N, D]. */
static int features(const struct sk_posterior *p, const float *x, int N, float *phi)
{
    struct sk_model view = *p->model;
    view.n_layers = p->ll_layer;
    int D = p->ll_d1 - 1;
    struct sk_graph *g = sk_graph_new();
    if (!g) return SK_ENOMEM;
    sk_graph_set_param_grads(g, false);
    int rc = SK_OK;
    for (int i = 0; i < N && !rc; i += BATCH) {
        int B = N - i < BATCH ? N - i : BATCH;
        sk_graph_reset(g);
        int shape[2] = { B, view.in_dim };
        int xin = sk_graph_input(g, x + (size_t)i * view.in_dim, 2, shape, false);
        int h = sk_model_forward(&view, g, xin, SK_MODE_EVAL, 0);
        if (h < 0) {
            rc = h;
            break;
        }
        if (sk_graph_numel(g, h) != (size_t)B * D) {
            rc = sk_error(SK_EINVAL, "laplace: features of %zu values per row, the last layer wants %d",
                          sk_graph_numel(g, h) / (size_t)B, D);
            break;
        }
        memcpy(phi + (size_t)i * D, sk_graph_value(g, h), sizeof(float) * (size_t)B * D);
    }
    sk_graph_free(g);
    return rc;
}

/* logits of the MAP last layer: z[K] = W phi + b */
static void ll_logits(const struct sk_posterior *p, const float *phi, double *z)
{
    const struct sk_layer *L = &p->model->layers[p->ll_layer];
    int D = p->ll_d1 - 1, K = p->ll_k;
    const float *W = p->model->params + L->w_off, *b = p->model->params + L->b_off;
    for (int k = 0; k < K; k++) {
        double s = b[k];
        for (int d = 0; d < D; d++) s += (double)W[(size_t)k * D + d] * phi[d];
        z[k] = s;
    }
}

/* variance of each logit under the posterior, for one feature row */
static void ll_fvar(const struct sk_posterior *p, const float *phi, double delta, double *var)
{
    int D1 = p->ll_d1, D = D1 - 1, K = p->ll_k;
    if (p->laplace.hessian == SK_LAPLACE_KFAC) {
        double psi2[4096], c[256];
        for (int j = 0; j < D1; j++) {
            const float *a = p->ll_avec + (size_t)j * D1;
            double s = a[D];
            for (int d = 0; d < D; d++) s += (double)a[d] * phi[d];
            psi2[j] = s * s;
        }
        for (int i = 0; i < K; i++) {
            double s = 0;
            for (int j = 0; j < D1; j++) s += psi2[j] / ((double)p->ll_gval[i] * p->ll_aval[j] + delta);
            c[i] = s;
        }
        for (int k = 0; k < K; k++) {
            double s = 0;
            for (int i = 0; i < K; i++) {
                double gk = p->ll_gvec[(size_t)i * K + k];
                s += gk * gk * c[i];
            }
            var[k] = s;
        }
    } else {
        int PK = K * D1;
        for (int k = 0; k < K; k++) {
            double s = 0;
            const float *blk = p->ll_cov + (size_t)k * D1 * PK + (size_t)k * D1;
            for (int d = 0; d < D1; d++) {
                double pd = d < D ? phi[d] : 1.0, t = 0;
                for (int e = 0; e < D1; e++) t += (double)blk[(size_t)d * PK + e] * (e < D ? phi[e] : 1.0);
                s += pd * t;
            }
            var[k] = s;
        }
    }
}

static void probit_row(const struct sk_posterior *p, const float *phi, double delta, float *out)
{
    int K = p->ll_k;
    double z[256], v[256], mx = -INFINITY, s = 0;
    ll_logits(p, phi, z);
    ll_fvar(p, phi, delta, v);
    for (int k = 0; k < K; k++) {
        z[k] = z[k] / p->temperature / sqrt(1.0 + SK_PI / 8.0 * v[k] / ((double)p->temperature * p->temperature));
        mx = fmax(mx, z[k]);
    }
    for (int k = 0; k < K; k++) s += exp(z[k] - mx);
    for (int k = 0; k < K; k++) out[k] = (float)(exp(z[k] - mx) / s);
}

int sk_bayes_laplace_probit(const struct sk_posterior *p, const float *x, int N, float *pbar)
{
    int D = p->ll_d1 - 1, K = p->ll_k;
    float *phi = sk_malloc(sizeof(float) * (size_t)(N > 0 ? N : 1) * D);
    if (!phi) return SK_ENOMEM;
    int rc = features(p, x, N, phi);
    if (!rc) {
#pragma omp parallel for schedule(static)
        for (int i = 0; i < N; i++) probit_row(p, phi + (size_t)i * D, p->prior_precision, pbar + (size_t)i * K);
    }
    sk_free(phi);
    return rc;
}

/* cov = V^T diag(1/(lam + delta)) V for eigenvectors in the rows of V [n,n] */
static int full_cov(const double *V, const double *lam, int n, double delta, float *cov, float *sqrt_out)
{
    double *Vs = sk_malloc(sizeof(double) * (size_t)n * n), *C = sk_malloc(sizeof(double) * (size_t)n * n);
    if (!Vs || !C) {
        sk_free(Vs);
        sk_free(C);
        return SK_ENOMEM;
    }
    for (int i = 0; i < n; i++)
        for (int r = 0; r < n; r++) Vs[(size_t)i * n + r] = V[(size_t)i * n + r] / sqrt(lam[i] + delta);
    sk_dgemm(true, false, n, n, n, 1.0, Vs, n, Vs, n, 0.0, C, n);
    for (size_t i = 0; i < (size_t)n * n; i++) cov[i] = (float)C[i];
    /* square root S = V^T diag(..)^(1/2): S[r][c] = Vs[c][r] */
    if (sqrt_out)
        for (int r = 0; r < n; r++)
            for (int c = 0; c < n; c++) sqrt_out[(size_t)r * n + c] = (float)Vs[(size_t)c * n + r];
    sk_free(Vs);
    sk_free(C);
    return SK_OK;
}

/* The GGN of the last layer over the n rows of x, added into H (full:
 * [PK,PK]; kfac: A = sum_n phi_n phi_n^T [D1,D1]) and, kfac only, G = mean_n
 * Lambda_n [K,K]; phi = [features, 1], Lambda = diag(p) - p p^T. */
static int accumulate_ggn(const struct sk_posterior *p, const float *x, int n, bool kfac, double *H, double *G)
{
    const struct sk_model *m = p->model;
    int D1 = p->ll_d1, D = D1 - 1, K = p->ll_k, PK = K * D1;
    float *phi = sk_malloc(sizeof(float) * BATCH * (size_t)D);
    double *pb = sk_malloc(sizeof(double) * BATCH * (size_t)D1);
    int rc = phi && pb ? SK_OK : SK_ENOMEM;
    for (int i0 = 0; i0 < n && !rc; i0 += BATCH) {
        int B = n - i0 < BATCH ? n - i0 : BATCH;
        if ((rc = features(p, x + (size_t)i0 * m->in_dim, B, phi))) break;
        for (int i = 0; i < B; i++) {
            double z[256], pr[256], mx = -INFINITY, s = 0;
            const float *f = phi + (size_t)i * D;
            ll_logits(p, f, z);
            for (int k = 0; k < K; k++) mx = fmax(mx, z[k]);
            for (int k = 0; k < K; k++) s += (pr[k] = exp(z[k] - mx));
            for (int k = 0; k < K; k++) pr[k] /= s;
            double *pt = pb + (size_t)i * D1;
            for (int d = 0; d < D; d++) pt[d] = f[d];
            pt[D] = 1.0;
            if (kfac) {
                for (int k = 0; k < K; k++)
                    for (int j = 0; j < K; j++) G[(size_t)k * K + j] += ((k == j) * pr[k] - pr[k] * pr[j]) / n;
            } else {
                for (int k = 0; k < K; k++)
                    for (int j = 0; j < K; j++) {
                        double l = (k == j) * pr[k] - pr[k] * pr[j];
                        for (int d = 0; d < D1; d++) {
                            double *row = H + ((size_t)k * D1 + d) * PK + (size_t)j * D1;
                            double ld = l * pt[d];
                            for (int e = 0; e < D1; e++) row[e] += ld * pt[e];
                        }
                    }
            }
        }
        if (kfac) sk_dgemm(true, false, D1, D1, B, 1.0, pb, D1, pb, D1, 1.0, H, D1);
    }
    sk_free(phi);
    sk_free(pb);
    return rc;
}

/* kfac: the factors' eigenvectors (rows of A and G, as sk_dsyev leaves them)
 * and eigenvalues evals = [a (D1); g (K)], clamped at 0, kept in p; lam [K D1]
 * receives every product g_i a_j. */
static int keep_kfac(struct sk_posterior *p, const double *A, const double *G, double *evals, double *lam)
{
    int D1 = p->ll_d1, K = p->ll_k;
    for (int j = 0; j < D1; j++) evals[j] = fmax(evals[j], 0);
    for (int i = 0; i < K; i++) evals[D1 + i] = fmax(evals[D1 + i], 0);
    for (int i = 0; i < K; i++)
        for (int j = 0; j < D1; j++) lam[(size_t)i * D1 + j] = evals[D1 + i] * evals[j];
    sk_free(p->ll_avec);
    sk_free(p->ll_aval);
    sk_free(p->ll_gvec);
    sk_free(p->ll_gval);
    p->ll_avec = sk_malloc(sizeof(float) * (size_t)D1 * D1);
    p->ll_aval = sk_malloc(sizeof(float) * (size_t)D1);
    p->ll_gvec = sk_malloc(sizeof(float) * (size_t)K * K);
    p->ll_gval = sk_malloc(sizeof(float) * (size_t)K);
    if (!p->ll_avec || !p->ll_aval || !p->ll_gvec || !p->ll_gval) return SK_ENOMEM;
    for (size_t i = 0; i < (size_t)D1 * D1; i++) p->ll_avec[i] = (float)A[i];
    for (int i = 0; i < D1; i++) p->ll_aval[i] = (float)evals[i];
    for (int i = 0; i < K * K; i++) p->ll_gvec[i] = (float)G[i];
    for (int i = 0; i < K; i++) p->ll_gval[i] = (float)evals[D1 + i];
    return SK_OK;
}

/* The eigenvalues lam [K D1] of the Hessian, clamped at 0 (kfac: the
 * products of the factors', which keep_kfac stores); H (and kfac's G) are
 * overwritten by their eigenvectors. */
static int hessian_eigen(struct sk_posterior *p, bool kfac, double *H, double *G, double *lam)
{
    int D1 = p->ll_d1, K = p->ll_k, PK = K * D1;
    double *evals = sk_malloc(sizeof(double) * (size_t)(kfac ? D1 + K : PK));
    if (!evals) return SK_ENOMEM;
    int rc;
    if (kfac) {
        if (!(rc = sk_dsyev(H, D1, evals)) && !(rc = sk_dsyev(G, K, evals + D1))) rc = keep_kfac(p, H, G, evals, lam);
    } else if (!(rc = sk_dsyev(H, PK, evals))) {
        for (int i = 0; i < PK; i++) lam[i] = fmax(evals[i], 0);
    }
    sk_free(evals);
    return rc;
}

/* The prior precision on a log grid 1e-4 .. 1e4 maximising the Laplace
 * marginal likelihood -delta/2 |w*|^2 + P/2 log delta - 1/2 sum log(lam + delta)
 * (delta, the value given, if no grid point is finite). */
static double marglik_delta(const struct sk_posterior *p, const double *lam, double delta)
{
    const struct sk_model *m = p->model;
    const struct sk_layer *L = &m->layers[p->ll_layer];
    int D1 = p->ll_d1, D = D1 - 1, K = p->ll_k, PK = K * D1;
    double wn = 0;
    for (int k = 0; k < K; k++) {
        for (int d = 0; d < D; d++) {
            double w = m->params[L->w_off + (size_t)k * D + d];
            wn += w * w;
        }
        wn += (double)m->params[L->b_off + k] * m->params[L->b_off + k];
    }
    double best = -INFINITY;
    for (int gi = 0; gi <= 160; gi++) {
        double dl = pow(10.0, -4.0 + gi * 0.05), ml = -0.5 * dl * wn + 0.5 * PK * log(dl);
        for (size_t i = 0; i < (size_t)PK; i++) ml -= 0.5 * log(lam[i] + dl);
        if (ml > best) {
            best = ml;
            delta = dl;
        }
    }
    return delta;
}

/* The prior precision on a log grid 1e-4 .. 1e4 with the lowest probit NLL
 * on the nv validation rows, into *delta (kept if none is finite). Full
 * Hessian: p->ll_cov is recomputed for each, from the eigenvectors V (rows)
 * and values lam. */
static int val_delta(struct sk_posterior *p, bool kfac, const double *V, const double *lam, const float *vx,
                     const int *vy, int nv, double *delta)
{
    int D = p->ll_d1 - 1, PK = p->ll_k * p->ll_d1;
    float *vphi = sk_malloc(sizeof(float) * (size_t)nv * D);
    if (!vphi) return SK_ENOMEM;
    int rc = features(p, vx, nv, vphi);
    double best = INFINITY;
    for (int gi = 0; gi <= 32 && !rc; gi++) {
        double dl = pow(10.0, -4.0 + gi * 0.25), nll = 0;
        /* Sigma(dl) = V^T diag(1/(lam+dl)) V */
        if (!kfac && (rc = full_cov(V, lam, PK, dl, p->ll_cov, NULL))) break;
        for (int i = 0; i < nv; i++) {
            float pr[256];
            probit_row(p, vphi + (size_t)i * D, dl, pr);
            nll -= log(fmax(pr[vy[i]], 1e-12));
        }
        if (nll < best) {
            best = nll;
            *delta = dl;
        }
    }
    sk_free(vphi);
    return rc;
}

int sk_bayes_fit_laplace(struct sk_posterior *p, const struct sk_bayes_laplace_config *lc, const float *x, const int *y,
                         int n, const float *vx, const int *vy, int nv)
{
    struct sk_model *m = p->model;
    (void)y; /* the GGN of the softmax likelihood does not depend on the labels */
    if (p->method != SK_BAYES_LAPLACE)
        return sk_error(SK_EINVAL, "sk_bayes_fit_laplace: the posterior's method is %s", sk_bayes_method_name(p->method));
    int li = m->n_layers - 1;
    const struct sk_layer *L = &m->layers[li];
    if (L->kind != SK_LAYER_DENSE)
        return sk_error(SK_EINVAL, "last-layer Laplace needs a dense last layer ('%s' ends with %s)", m->spec,
                        sk_layer_name(L->kind));
    if (L->from[0] != li - 1)
        return sk_error(SK_EINVAL, "last-layer Laplace needs a last dense layer that reads the layer before it "
                        "(the features); in '%s' it reads another output", m->spec);
    int D = L->in[0], D1 = D + 1, K = L->units, PK = K * D1;
    if (K > 256 || D1 > 4096) return sk_error(SK_EINVAL, "last-layer Laplace supports up to 256 classes and 4095 features");
    if (lc->hessian == SK_LAPLACE_FULL && PK > FULL_MAX)
        return sk_error(SK_EINVAL, "the full last-layer Hessian would be %d x %d; use the Kronecker-factored one "
                        "(kfac) for layers with more than %d weights", PK, PK, FULL_MAX);
    if (lc->select_on_val && (!vx || !vy || nv < 1))
        return sk_error(SK_EINVAL, "choosing the prior precision on validation data needs validation rows");
    if (n < 1) return sk_error(SK_EINVAL, "Laplace needs training rows");
    p->laplace = *lc;
    p->ll_layer = li;
    p->ll_d1 = D1;
    p->ll_k = K;
    bool kfac = lc->hessian == SK_LAPLACE_KFAC;
    size_t hn = kfac ? (size_t)D1 * D1 : (size_t)PK * PK;
    double *H = sk_calloc(hn, sizeof(double)), *G = sk_calloc((size_t)K * K, sizeof(double)), *lam = NULL;
    int rc = H && G ? accumulate_ggn(p, x, n, kfac, H, G) : SK_ENOMEM;
    if (!rc) rc = (lam = sk_malloc(sizeof(double) * (size_t)PK)) ? hessian_eigen(p, kfac, H, G, lam) : SK_ENOMEM;
    double delta = lc->prior_precision;
    if (!rc && !(delta > 0) && !lc->select_on_val) delta = marglik_delta(p, lam, delta);
    if (!rc && !kfac) {
        /* covariance and a square root from the eigenvectors (rows of H) */
        sk_free(p->ll_cov);
        sk_free(p->ll_cov_sqrt);
        p->ll_cov = sk_malloc(sizeof(float) * (size_t)PK * PK);
        p->ll_cov_sqrt = sk_malloc(sizeof(float) * (size_t)PK * PK);
        if (!p->ll_cov || !p->ll_cov_sqrt) rc = SK_ENOMEM;
    }
    if (!rc && lc->select_on_val && !(lc->prior_precision > 0)) rc = val_delta(p, kfac, H, lam, vx, vy, nv, &delta);
    if (!rc) {
        p->prior_precision = (float)delta;
        if (!kfac) rc = full_cov(H, lam, PK, delta, p->ll_cov, p->ll_cov_sqrt);
    }
    sk_free(H);
    sk_free(G);
    sk_free(lam);
    return rc;
}
