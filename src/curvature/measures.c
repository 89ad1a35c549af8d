/* Flatness and generalization measures: sharpness by projected gradient
 * ascent, PAC-Bayes sigma by bisection, the Fisher-Rao norm, spectral and
 * path norms, margins, the gradient noise scale, and all of them (with the
 * spectrum) for one model. */
#include "curvature/curvature_impl.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ---------------- sharpness of a loss ---------------- */

static int loss_check(const struct sk_curvature_loss *L, const char *who)
{
    if (!L || !L->theta || !L->value_grad || L->n < 1)
        return sk_error(SK_EINVAL, "%s: the loss has no parameters or no value callback", who);
    return SK_OK;
}

/* Scratch of a theta-moving measure: the saved point and two vectors. */
struct walk {
    float *th0, *a, *g;
};

static int walk_new(struct walk *w, const struct sk_curvature_loss *L)
{
    w->th0 = sk_malloc(sizeof(float) * L->n);
    w->a = sk_malloc(sizeof(float) * L->n);
    w->g = sk_malloc(sizeof(float) * L->n);
    if (!w->th0 || !w->a || !w->g) return SK_ENOMEM;
    memcpy(w->th0, L->theta, sizeof(float) * L->n);
    return SK_OK;
}

static void walk_end(struct walk *w, struct sk_curvature_loss *L)
{
    if (w->th0) memcpy(L->theta, w->th0, sizeof(float) * L->n);
    sk_free(w->th0);
    sk_free(w->a);
    sk_free(w->g);
}

int sk_curvature_sharpness_eps(struct sk_curvature_loss *L, double eps, int steps, uint64_t seed, double *increase)
{
    int rc = loss_check(L, "sk_curvature_sharpness_eps");
    if (rc) return rc;
    if (!(eps > 0) || steps < 0)
        return sk_error(SK_EINVAL, "sk_curvature_sharpness_eps: eps must be > 0 and steps >= 0 (eps %g, steps %d)",
                        eps, steps);
    size_t P = L->n;
    struct walk w = { 0 };
    double f0 = 0, best = 0;
    if ((rc = walk_new(&w, L)) || (rc = L->value_grad(L->ctx, &f0, NULL))) goto out;
    /* a = z, the offset inside the box |z_i| <= b_i = eps (|theta_i| + 1) */
    uint64_t key = sk_rng_derive(seed, CURV_STREAM_ASCENT).key;
    for (size_t i = 0; i < P; i++) w.a[i] = (float)(eps * (fabs(w.th0[i]) + 1) * (2.0 * sk_rng_uniform_at(key, i) - 1));
    for (int s = 0; s <= steps; s++) {
        for (size_t i = 0; i < P; i++) L->theta[i] = w.th0[i] + w.a[i];
        double f;
        if ((rc = L->value_grad(L->ctx, &f, s < steps ? w.g : NULL))) goto out;
        best = fmax(best, f - f0);
        if (s == steps) break;
        for (size_t i = 0; i < P; i++) {
            double b = eps * (fabs(w.th0[i]) + 1);
            double z = w.a[i] + (w.g[i] > 0 ? 0.25 * b : w.g[i] < 0 ? -0.25 * b : 0);
            w.a[i] = (float)fmax(-b, fmin(b, z));
        }
    }
    *increase = best;
out:
    walk_end(&w, L);
    return rc;
}

int sk_curvature_sharpness_adaptive(struct sk_curvature_loss *L, double rho, int p, double eta, int steps,
                                    uint64_t seed, double *increase)
{
    int rc = loss_check(L, "sk_curvature_sharpness_adaptive");
    if (rc) return rc;
    if (!(rho > 0) || steps < 0 || (p != 2 && p != 0) || !(eta >= 0))
        return sk_error(SK_EINVAL, "sk_curvature_sharpness_adaptive: needs rho > 0, steps >= 0, p 2 or 0 (infinity) "
                        "and eta >= 0 (rho %g, steps %d, p %d, eta %g)", rho, steps, p, eta);
    size_t P = L->n;
    struct walk w = { 0 };
    double f0 = 0, best = 0;
    if ((rc = walk_new(&w, L)) || (rc = L->value_grad(L->ctx, &f0, NULL))) goto out;
    /* a = u, the scaled offset: delta_i = u_i (|theta_i| + eta) */
    uint64_t key = sk_rng_derive(seed, CURV_STREAM_ASCENT).key;
    double nu = 0;
    for (size_t i = 0; i < P; i++) {
        w.a[i] = p == 2 ? sk_rng_normal_at(key, i) : (float)(rho * (sk_rng_uniform_at(key, i) - 0.5));
        nu += (double)w.a[i] * w.a[i];
    }
    if (p == 2)
        for (size_t i = 0; i < P; i++) w.a[i] = (float)(0.5 * rho * w.a[i] / sqrt(nu));
    for (int s = 0; s <= steps; s++) {
        for (size_t i = 0; i < P; i++) L->theta[i] = (float)(w.th0[i] + w.a[i] * (fabs(w.th0[i]) + eta));
        double f;
        if ((rc = L->value_grad(L->ctx, &f, s < steps ? w.g : NULL))) goto out;
        best = fmax(best, f - f0);
        if (s == steps) break;
        double ng = 0;
        for (size_t i = 0; i < P; i++) { /* the gradient in u: d L / d u_i = g_i (|theta_i| + eta) */
            w.g[i] = (float)(w.g[i] * (fabs(w.th0[i]) + eta));
            ng += (double)w.g[i] * w.g[i];
        }
        if (!(ng > 0)) break; /* a flat spot: ascent stops */
        if (p == 2) {
            double nn = 0, c = rho / sqrt(ng);
            for (size_t i = 0; i < P; i++) {
                w.a[i] = (float)(w.a[i] + c * w.g[i]);
                nn += (double)w.a[i] * w.a[i];
            }
            if (nn > rho * rho)
                for (size_t i = 0; i < P; i++) w.a[i] = (float)(w.a[i] * rho / sqrt(nn));
        } else {
            for (size_t i = 0; i < P; i++) {
                double u = w.a[i] + (w.g[i] > 0 ? 0.25 * rho : w.g[i] < 0 ? -0.25 * rho : 0);
                w.a[i] = (float)fmax(-rho, fmin(rho, u));
            }
        }
    }
    *increase = best;
out:
    walk_end(&w, L);
    return rc;
}

/* Mean loss increase under the S seeded noise draws at sigma; a loss that
 * is not finite counts as an unbounded increase. */
static int pac_increase(struct sk_curvature_loss *L, const float *th0, double f0, double sigma, bool mag, int S,
                        uint64_t key, double *inc)
{
    double sum = 0;
    for (int s = 0; s < S; s++) {
        uint64_t ks = sk_rng_derive(key, (uint64_t)s).key;
        for (size_t i = 0; i < L->n; i++) {
            double sd = mag ? sqrt(sigma * sigma * (double)th0[i] * th0[i] + 1e-6) : sigma;
            L->theta[i] = (float)(th0[i] + sd * sk_rng_normal_at(ks, i));
        }
        double f;
        int rc = L->value_grad(L->ctx, &f, NULL);
        if (rc == SK_ENONFINITE || (!rc && !isfinite(f))) {
            sk_error_clear();
            *inc = INFINITY;
            return SK_OK;
        }
        if (rc) return rc;
        sum += f;
    }
    *inc = sum / S - f0;
    return SK_OK;
}

int sk_curvature_pac_sigma(struct sk_curvature_loss *L, double bound, bool magnitude_aware, int samples, int iters,
                           uint64_t seed, double *sigma)
{
    int rc = loss_check(L, "sk_curvature_pac_sigma");
    if (rc) return rc;
    if (!(bound > 0) || samples < 1 || iters < 0)
        return sk_error(SK_EINVAL, "sk_curvature_pac_sigma: needs bound > 0, samples >= 1, iters >= 0 (bound %g, "
                        "samples %d, iters %d)", bound, samples, iters);
    struct walk w = { 0 };
    double f0 = 0, inc = 0;
    uint64_t key = sk_rng_derive(seed, CURV_STREAM_PAC).key;
    if ((rc = walk_new(&w, L)) || (rc = L->value_grad(L->ctx, &f0, NULL))) goto out;
    double s = 1e-3, lo, hi;
    if ((rc = pac_increase(L, w.th0, f0, s, magnitude_aware, samples, key, &inc))) goto out;
    if (inc > bound) {
        while (inc > bound) {
            s *= 0.5;
            if (s < 1e-9) {
                rc = sk_error(SK_EINVAL, "sk_curvature_pac_sigma: even sigma = 1e-9 raises the mean loss by %g, over "
                              "the bound %g", inc, bound);
                goto out;
            }
            if ((rc = pac_increase(L, w.th0, f0, s, magnitude_aware, samples, key, &inc))) goto out;
        }
        lo = s;
        hi = 2 * s;
    } else {
        while (inc <= bound) {
            s *= 2;
            if (s > 1e3) {
                *sigma = 1e3;
                goto out;
            }
            if ((rc = pac_increase(L, w.th0, f0, s, magnitude_aware, samples, key, &inc))) goto out;
        }
        lo = 0.5 * s;
        hi = s;
    }
    for (int it = 0; it < iters; it++) {
        double mid = sqrt(lo * hi);
        if ((rc = pac_increase(L, w.th0, f0, mid, magnitude_aware, samples, key, &inc))) goto out;
        if (inc <= bound) lo = mid;
        else hi = mid;
    }
    *sigma = lo;
out:
    walk_end(&w, L);
    return rc;
}

/* ---------------- norms, margins, noise ---------------- */

/* Largest singular value of the rows x cols matrix a (row-major floats):
 * the square root of the top eigenvalue of its smaller Gram matrix, or
 * power iteration when that would exceed 4096 x 4096. */
static int spectral_norm(const float *a, int rows, int cols, double *out)
{
    int k = rows < cols ? rows : cols;
    size_t ne = (size_t)rows * cols;
    double *d = sk_malloc(sizeof(double) * ne);
    if (!d) return SK_ENOMEM;
    for (size_t i = 0; i < ne; i++) d[i] = a[i];
    int rc = SK_OK;
    if (k <= 4096) {
        double *G = sk_malloc(sizeof(double) * (size_t)k * k), *ev = sk_malloc(sizeof(double) * (size_t)k);
        if (!G || !ev) rc = SK_ENOMEM;
        else {
            sk_dsyrk(rows > cols, k, rows > cols ? rows : cols, 1.0, d, cols, 0.0, G, k);
            for (int i = 0; i < k; i++)
                for (int j = 0; j < i; j++) G[(size_t)i * k + j] = G[(size_t)j * k + i];
            rc = sk_dsyev(G, k, ev);
            if (!rc) *out = sqrt(fmax(0, ev[k - 1]));
        }
        sk_free(G);
        sk_free(ev);
    } else {
        double *v = sk_malloc(sizeof(double) * cols), *u = sk_malloc(sizeof(double) * rows);
        if (!v || !u) rc = SK_ENOMEM;
        else {
            for (int j = 0; j < cols; j++) v[j] = 1.0 + 0.01 * (j % 7);
            double s = 0;
            for (int it = 0; it < 300; it++) {
                sk_dgemm(false, false, rows, 1, cols, 1.0, d, cols, v, 1, 0.0, u, 1);
                sk_dgemm(true, false, cols, 1, rows, 1.0, d, cols, u, 1, 0.0, v, 1);
                double nv = 0;
                for (int j = 0; j < cols; j++) nv += v[j] * v[j];
                nv = sqrt(nv);
                if (!(nv > 0)) break;
                s = sqrt(nv);
                for (int j = 0; j < cols; j++) v[j] /= nv;
            }
            *out = s;
        }
        sk_free(v);
        sk_free(u);
    }
    sk_free(d);
    return rc;
}

int sk_curvature_spectral_norms(const struct sk_model *m, double *per_layer, int *n_mats, double *prod, double *sum,
                                double *frob_sq)
{
    double p = 1, s = 0, f = 0;
    int cnt = 0;
    for (int l = 0; l < m->n_layers; l++) {
        const struct sk_layer *ly = &m->layers[l];
        if (per_layer) per_layer[l] = 0;
        if (ly->kind != SK_LAYER_DENSE && ly->kind != SK_LAYER_CONV) continue;
        int rows = ly->units, cols = (int)(ly->n_w / (size_t)ly->units);
        const float *w = m->params + ly->w_off;
        double sn = 0;
        int rc = spectral_norm(w, rows, cols, &sn);
        if (rc) return rc;
        for (size_t i = 0; i < ly->n_w; i++) f += (double)w[i] * w[i];
        if (per_layer) per_layer[l] = sn;
        p *= sn;
        s += sn;
        cnt++;
    }
    if (n_mats) *n_mats = cnt;
    if (prod) *prod = p;
    if (sum) *sum = s;
    if (frob_sq) *frob_sq = f;
    return SK_OK;
}

int sk_curvature_path_norm(const struct sk_model *m, double *path_norm)
{
    for (int l = 0; l < m->n_layers; l++) {
        enum sk_layer_kind k = m->layers[l].kind;
        if (k != SK_LAYER_DENSE && k != SK_LAYER_CONV && k != SK_LAYER_RELU && k != SK_LAYER_FLATTEN &&
            k != SK_LAYER_AVGPOOL && k != SK_LAYER_GAP && k != SK_LAYER_DROPOUT && k != SK_LAYER_LRELU)
            return sk_error(SK_EINVAL, "the path norm is defined for ReLU networks of dense, convolution and average "
                            "pooling layers; layer %d is %s", l, sk_layer_name(k));
    }
    /* With squared weights and an input of ones every value is >= 0, so the
     * ReLUs pass everything and each output sums its paths' products. */
    struct sk_model *c = sk_model_clone(m);
    float *ones = sk_malloc(sizeof(float) * (size_t)m->in_dim), *out = sk_malloc(sizeof(float) * (size_t)m->n_classes);
    int rc = c && ones && out ? sk_model_set_preprocess(c, NULL) : SK_ENOMEM;
    if (!rc) {
        for (size_t i = 0; i < c->n_params; i++) c->params[i] *= c->params[i];
        for (int j = 0; j < m->in_dim; j++) ones[j] = 1;
        rc = sk_model_logits(c, ones, 1, out);
    }
    if (!rc) {
        double s = 0;
        for (int k = 0; k < m->n_classes; k++) s += out[k];
        *path_norm = s;
    }
    sk_model_free(c);
    sk_free(ones);
    sk_free(out);
    return rc;
}

int sk_curvature_margins(struct sk_model *m, const float *x, const int *y, int n, float *margin)
{
    int K = m->n_classes;
    float *z = sk_malloc(sizeof(float) * (size_t)n * K);
    if (!z) return SK_ENOMEM;
    int rc = sk_model_logits(m, x, n, z);
    for (int i = 0; i < n && !rc; i++) {
        const float *r = z + (size_t)i * K;
        float other = -INFINITY;
        for (int k = 0; k < K; k++)
            if (k != y[i] && r[k] > other) other = r[k];
        margin[i] = r[y[i]] - other;
    }
    sk_free(z);
    return rc;
}

int sk_curvature_fisher_rao(struct sk_model *m, const float *x, const int *y, int n, double *fr)
{
    enum { CHUNK = 1024 };
    struct sk_graph *g = sk_graph_new();
    if (!g) return SK_ENOMEM;
    int K = m->n_classes, rc = SK_OK;
    double sum = 0;
    for (int r0 = 0; r0 < n && !rc; r0 += CHUNK) {
        int nc = n - r0 < CHUNK ? n - r0 : CHUNK;
        sk_graph_reset(g);
        int xin = sk_graph_input(g, x + (size_t)r0 * m->in_dim, 2, (int[]){ nc, m->in_dim }, false);
        int z = sk_model_forward(m, g, xin, SK_MODE_EVAL, 0);
        int L = sk_loss_cross_entropy(g, z, y + r0, 0.0f);
        if (L < 0) {
            rc = L;
            break;
        }
        /* R{z} along theta is J theta; <theta, grad l_i> = (softmax(z_i) - e_y) . (J theta)_i */
        sk_graph_param_directions(g, m->params, m->n_params, m->params, NULL);
        if ((rc = sk_graph_hvp(g, L))) break;
        const float *tz = sk_graph_tangent(g, z), *zv = sk_graph_value(g, z);
        if (!tz) continue; /* the logits do not depend on theta: every term 0 */
        for (int i = 0; i < nc; i++) {
            const float *zi = zv + (size_t)i * K, *ti = tz + (size_t)i * K;
            double mx = zi[0], se = 0, d = 0;
            for (int k = 1; k < K; k++) mx = fmax(mx, zi[k]);
            for (int k = 0; k < K; k++) se += exp(zi[k] - mx);
            for (int k = 0; k < K; k++) d += (exp(zi[k] - mx) / se - (k == y[r0 + i])) * ti[k];
            sum += d * d;
        }
    }
    sk_graph_free(g);
    if (!rc) *fr = sum / n;
    return rc;
}

int sk_curvature_noise_scale(struct sk_model *m, const float *x, const int *y, int n, int batch, uint64_t seed,
                             double *b_simple, double *trace_sigma, double *grad_sq)
{
    if (batch < 1 || n / batch < 2)
        return sk_error(SK_EINVAL, "the gradient noise scale needs two batches of gns_batch rows (gns_batch %d, rows %d)",
                        batch, n);
    int J = n / batch;
    size_t P = m->n_params;
    int *idx = sk_malloc(sizeof(int) * (size_t)n), *yb = sk_malloc(sizeof(int) * (size_t)batch);
    float *xb = sk_malloc(sizeof(float) * (size_t)batch * m->in_dim);
    double *G = sk_calloc(P, sizeof(double));
    struct sk_graph *g = sk_graph_new();
    int rc = SK_OK;
    if (!idx || !yb || !xb || !G || !g) {
        rc = SK_ENOMEM;
        goto out;
    }
    for (int i = 0; i < n; i++) idx[i] = i;
    struct sk_rng r = sk_rng_derive(seed, CURV_STREAM_BATCHES);
    sk_rng_shuffle(&r, idx, n);
    double sq = 0; /* sum_j |g_j|^2 */
    for (int j = 0; j < J && !rc; j++) {
        sk_curv_gather(x, y, m->in_dim, idx + (size_t)j * batch, batch, xb, yb);
        if ((rc = sk_model_loss_grad(m, g, xb, yb, batch, SK_MODE_EVAL, 0, NULL))) break;
        for (size_t i = 0; i < P; i++) {
            G[i] += m->grads[i];
            sq += (double)m->grads[i] * m->grads[i];
        }
    }
    if (!rc) {
        double gm = 0;
        for (size_t i = 0; i < P; i++) gm += (G[i] / J) * (G[i] / J);
        /* the batch gradients' sample variance is tr(Sigma) / batch */
        double var = (sq - J * gm) / (J - 1), ts = batch * fmax(0, var);
        double g2 = gm - ts / ((double)J * batch);
        *trace_sigma = ts;
        *grad_sq = g2;
        *b_simple = g2 > 0 ? ts / g2 : INFINITY;
    }
out:
    memset(m->grads, 0, sizeof(float) * P);
    sk_free(idx);
    sk_free(yb);
    sk_free(xb);
    sk_free(G);
    sk_graph_free(g);
    return rc;
}

/* ---------------- every measure ---------------- */

struct sk_curvature_config sk_curvature_defaults(void)
{
    return (struct sk_curvature_config){
        .n = 0, .top_k = 1, .lanczos_steps = 20, .lanczos_tol = 1e-4, .probes = 100, .slq_runs = 0, .slq_steps = 80,
        .spread_sets = 5, .spread_n = 128, .spread_steps = 20, .eps = 1e-3, .rho = 0.05, .ascent_steps = 20,
        .pac_bound = 0.1, .pac_samples = 5, .pac_iters = 8, .gns_batch = 128, .seed = 42,
    };
}

static int cmp_float(const void *a, const void *b)
{
    float x = *(const float *)a, y = *(const float *)b;
    return (x > y) - (x < y);
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static void progress(const struct sk_curvature_config *c, const char *stage, double frac)
{
    if (c->progress) c->progress(c->progress_ctx, stage, frac);
}

/* Checks c's settings; step counts beyond the P parameters are cut to P
 * (Lanczos cannot take more steps than the dimension). */
static int check_config(struct sk_curvature_config *c, size_t P)
{
    int cap = P < 1000000 ? (int)P : 1000000;
    if (c->lanczos_steps > cap) c->lanczos_steps = cap;
    if (c->slq_steps > cap) c->slq_steps = cap;
    if (c->spread_steps > cap) c->spread_steps = cap;
    if (c->n < 0) return sk_error(SK_EINVAL, "cfg.n must be >= 0 (0 = all rows), got %d", c->n);
    if (c->top_k < 1 || c->top_k > SK_CURVATURE_MAX_K)
        return sk_error(SK_EINVAL, "cfg.top_k must be in 1..%d, got %d", SK_CURVATURE_MAX_K, c->top_k);
    if (c->lanczos_steps < c->top_k)
        return sk_error(SK_EINVAL, "cfg.lanczos_steps must be at least cfg.top_k (%d), got %d", c->top_k,
                        c->lanczos_steps);
    if (c->probes < 2) return sk_error(SK_EINVAL, "cfg.probes must be >= 2, got %d", c->probes);
    if (c->slq_runs < 0 || (c->slq_runs > 0 && c->slq_steps < 2))
        return sk_error(SK_EINVAL, "cfg.slq_steps must be >= 2, got %d", c->slq_steps);
    if (c->spread_sets < 0 || (c->spread_sets > 0 && (c->spread_n < 1 || c->spread_steps < 1)))
        return sk_error(SK_EINVAL, "cfg.spread_n and cfg.spread_steps must be >= 1 (got %d, %d)", c->spread_n,
                        c->spread_steps);
    if (!c->skip_sharpness && (!(c->eps > 0) || !(c->rho > 0) || c->ascent_steps < 0 || !(c->pac_bound > 0) ||
                               c->pac_samples < 1 || c->pac_iters < 0))
        return sk_error(SK_EINVAL, "cfg.eps, cfg.rho and cfg.pac_bound must be > 0, cfg.ascent_steps and "
                        "cfg.pac_iters >= 0, cfg.pac_samples >= 1");
    if (c->gns_batch < 1) return sk_error(SK_EINVAL, "cfg.gns_batch must be >= 1, got %d", c->gns_batch);
    return SK_OK;
}

int sk_curvature_measures(struct sk_model *m, const float *x_train, const int *y_train, int n_train,
                          const float *x_test, const int *y_test, int n_test, const struct sk_curvature_config *cfg,
                          struct sk_curvature_report *out, struct sk_curvature_density **density)
{
    struct sk_curvature_config c = cfg ? *cfg : sk_curvature_defaults();
    size_t P = m->n_params;
    int rc = check_config(&c, P);
    if (rc) return rc;
    if (n_train < 1) return sk_error(SK_EINVAL, "sk_curvature_measures: no training rows");
    double t0 = sk_now();
    memset(out, 0, sizeof *out);
    if (density) *density = NULL;
    out->n_params = P;
    out->slq_m1 = out->slq_m2 = NAN;
    out->spread_min = out->spread_max = out->spread_median = out->spread_rsd = NAN;
    out->test_loss = out->test_err = NAN;
    out->eps_sharpness = out->eps_sharpness_keskar = out->adaptive_sharpness = NAN;
    out->pac_sigma = out->pac_sigma_mag = NAN;
    out->path_norm = NAN;
    out->gns_simple = out->gns_trace_sigma = out->gns_grad_sq = NAN;
    for (int i = 0; i < SK_CURVATURE_MAX_K; i++) out->eig[i] = out->eig_resid[i] = out->dense_eig[i] = NAN;

    /* the rows: all, or n chosen by a seeded permutation */
    int n = c.n > 0 && c.n < n_train ? c.n : n_train;
    const float *x = x_train;
    const int *y = y_train;
    float *xs = NULL;
    int *ys = NULL, *idx = NULL;
    struct sk_curvature_loss *L = NULL;
    float *margin = NULL;
    double *lm = NULL;
    if (n < n_train) {
        idx = sk_malloc(sizeof(int) * (size_t)n_train);
        xs = sk_malloc(sizeof(float) * (size_t)n * m->in_dim);
        ys = sk_malloc(sizeof(int) * (size_t)n);
        if (!idx || !xs || !ys) {
            rc = SK_ENOMEM;
            goto out;
        }
        for (int i = 0; i < n_train; i++) idx[i] = i;
        struct sk_rng r = sk_rng_derive(c.seed, CURV_STREAM_ROWS);
        sk_rng_shuffle(&r, idx, n_train);
        sk_curv_gather(x_train, y_train, m->in_dim, idx, n, xs, ys);
        x = xs;
        y = ys;
    }
    out->n_train = n;
    out->n_test = n_test > 0 ? n_test : 0;
    if (!(L = sk_curvature_loss_model(m, x, y, n, &c.data))) {
        rc = SK_EINVAL;
        goto out;
    }
    struct sk_curvature_op H = sk_curvature_loss_op(L);

    progress(&c, "top eigenvalues", 0);
    struct sk_curvature_lanczos_config lc = { .k = c.top_k, .max_steps = c.lanczos_steps, .tol = c.lanczos_tol,
                                              .seed = c.seed };
    out->k = c.top_k;
    if ((rc = sk_curvature_lanczos(&H, &lc, out->eig, out->eig_resid, NULL, &out->lanczos_steps))) goto out;

    progress(&c, "trace", 0.15);
    if ((rc = sk_curvature_trace(&H, c.probes, 0, c.seed, &out->trace, &out->trace_se, NULL, &out->trace_probes)))
        goto out;

    if (c.slq_runs > 0) {
        progress(&c, "spectral density", 0.3);
        struct sk_curvature_density *d = sk_curvature_density(&H, c.slq_runs, c.slq_steps, c.seed);
        if (!d) {
            rc = SK_EINVAL;
            goto out;
        }
        out->slq_m1 = sk_curvature_density_moment(d, 1);
        out->slq_m2 = sk_curvature_density_moment(d, 2);
        if (density) *density = d;
        else sk_curvature_density_free(d);
    }

    if (c.dense && P <= 8192) {
        progress(&c, "dense Hessian", 0.4);
        double *w = sk_malloc(sizeof(double) * P);
        if (!w) {
            rc = SK_ENOMEM;
            goto out;
        }
        rc = sk_curvature_eigen_dense(&H, w, NULL);
        if (!rc) {
            out->has_dense = true;
            out->dense_trace = 0;
            for (size_t i = 0; i < P; i++) out->dense_trace += w[i];
            out->dense_min = w[0];
            for (int i = 0; i < c.top_k && (size_t)i < P; i++) out->dense_eig[i] = w[P - 1 - i];
        }
        sk_free(w);
        if (rc) goto out;
    }
    out->n_hvp = sk_curvature_loss_n_hvp(L);

    int sets = c.spread_n > 0 ? (c.spread_sets < n / c.spread_n ? c.spread_sets : n / c.spread_n) : 0;
    if (sets > 0) {
        progress(&c, "lambda_max spread", 0.5);
        if (!(lm = sk_malloc(sizeof(double) * (size_t)sets))) {
            rc = SK_ENOMEM;
            goto out;
        }
        if ((rc = sk_curvature_lmax_spread(m, x, y, n, c.spread_n, sets, c.spread_steps, c.seed, lm))) goto out;
        out->n_hvp += (long)sets * c.spread_steps;
        double s = 0, s2 = 0;
        for (int i = 0; i < sets; i++) {
            s += lm[i];
            s2 += lm[i] * lm[i];
        }
        qsort(lm, (size_t)sets, sizeof *lm, cmp_double);
        out->spread_sets = sets;
        out->spread_min = lm[0];
        out->spread_max = lm[sets - 1];
        out->spread_median = sets % 2 ? lm[sets / 2] : 0.5 * (lm[sets / 2 - 1] + lm[sets / 2]);
        double mean = s / sets;
        out->spread_rsd = sets > 1 ? sqrt(fmax(0, (s2 - sets * mean * mean) / (sets - 1))) / fabs(mean) : 0;
    }

    progress(&c, "generalization gap", 0.6);
    double acc;
    if ((rc = sk_model_evaluate(m, x, y, n, &acc, &out->train_loss))) goto out;
    out->train_err = 1 - acc;
    if (n_test > 0) {
        if ((rc = sk_model_evaluate(m, x_test, y_test, n_test, &acc, &out->test_loss))) goto out;
        out->test_err = 1 - acc;
    }

    if (!c.skip_sharpness) {
        progress(&c, "epsilon-sharpness", 0.65);
        if ((rc = sk_curvature_sharpness_eps(L, c.eps, c.ascent_steps, c.seed, &out->eps_sharpness))) goto out;
        out->eps_sharpness_keskar = 100 * out->eps_sharpness / (1 + out->train_loss);
        progress(&c, "adaptive sharpness", 0.72);
        if ((rc = sk_curvature_sharpness_adaptive(L, c.rho, 2, 0, c.ascent_steps, c.seed, &out->adaptive_sharpness)))
            goto out;
        progress(&c, "PAC-Bayes sigma", 0.8);
        if ((rc = sk_curvature_pac_sigma(L, c.pac_bound, false, c.pac_samples, c.pac_iters, c.seed, &out->pac_sigma)))
            goto out;
        progress(&c, "PAC-Bayes sigma (magnitude-aware)", 0.87);
        if ((rc = sk_curvature_pac_sigma(L, c.pac_bound, true, c.pac_samples, c.pac_iters, c.seed,
                                         &out->pac_sigma_mag)))
            goto out;
    }

    progress(&c, "norms and margins", 0.93);
    if ((rc = sk_curvature_fisher_rao(m, x, y, n, &out->fisher_rao))) goto out;
    if ((rc = sk_curvature_spectral_norms(m, NULL, &out->n_spectral, &out->spec_prod, &out->spec_sum,
                                          &out->frobenius_sq)))
        goto out;
    if (sk_curvature_path_norm(m, &out->path_norm)) {
        sk_error_clear();
        out->path_norm = NAN;
    }
    if (!(margin = sk_malloc(sizeof(float) * (size_t)n))) {
        rc = SK_ENOMEM;
        goto out;
    }
    if ((rc = sk_curvature_margins(m, x, y, n, margin))) goto out;
    qsort(margin, (size_t)n, sizeof *margin, cmp_float);
    out->margin_p10 = margin[(size_t)(0.1 * (n - 1))];
    out->margin_median = n % 2 ? margin[n / 2] : 0.5 * ((double)margin[n / 2 - 1] + margin[n / 2]);

    if (n / c.gns_batch >= 2) {
        progress(&c, "gradient noise scale", 0.97);
        if ((rc = sk_curvature_noise_scale(m, x, y, n, c.gns_batch, c.seed, &out->gns_simple, &out->gns_trace_sigma,
                                           &out->gns_grad_sq)))
            goto out;
    }
    progress(&c, "done", 1);
    out->seconds = sk_now() - t0;
out:
    if (rc && density && *density) {
        sk_curvature_density_free(*density);
        *density = NULL;
    }
    sk_curvature_loss_free(L);
    sk_free(idx);
    sk_free(xs);
    sk_free(ys);
    sk_free(margin);
    sk_free(lm);
    return rc;
}
