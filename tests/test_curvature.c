/* The curvature layer: Lanczos on matrices whose eigenvalues are known;
 * Hutchinson's estimator over many seeds; on a small MLP, Lanczos, the
 * trace and the spectral density against the exact dense Hessian; the
 * chunked loss against sk_model_hvp; every sharpness measure on a known
 * quadratic against its closed form; adaptive sharpness unchanged by a ReLU
 * rescaling that changes plain sharpness; the norms, margins, Fisher-Rao
 * norm and gradient noise scale of small models against hand-worked
 * formulas; the whole report reproducible for a seed. */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "skeptic/skeptic.h"
#include "testutil.h"

/* ---- operators given as matrices ---- */

struct dense_op {
    int n;
    const double *a; /* n x n, symmetric */
};

static int dense_apply(void *ctx, const float *v, float *av)
{
    const struct dense_op *d = ctx;
    for (int i = 0; i < d->n; i++) {
        double s = 0;
        for (int j = 0; j < d->n; j++) s += d->a[(size_t)i * d->n + j] * v[j];
        av[i] = (float)s;
    }
    return SK_OK;
}

static int diag_apply(void *ctx, const float *v, float *av)
{
    const struct dense_op *d = ctx;
    for (int i = 0; i < d->n; i++) av[i] = (float)(d->a[i] * v[i]);
    return SK_OK;
}

static void test_lanczos_diagonal(void)
{
    enum { N = 300 };
    double diag[N];
    /* a bulk in [-1, 2] and five outliers 40, 30, 20, 10, 5 */
    for (int i = 0; i < N; i++) diag[i] = -1 + 3.0 * i / N;
    const double top[5] = { 40, 30, 20, 10, 5 };
    for (int i = 0; i < 5; i++) diag[17 + 50 * i] = top[i];
    struct dense_op d = { N, diag };
    struct sk_curvature_op op = { N, diag_apply, &d };
    struct sk_curvature_lanczos_config c = { .k = 5, .max_steps = 60, .tol = 1e-7, .seed = 3 };
    double val[5], res[5];
    float *vec = malloc(sizeof(float) * 5 * N);
    int steps = 0;
    int rc = sk_curvature_lanczos(&op, &c, val, res, vec, &steps);
    CHECK(rc == SK_OK, "lanczos: %s", sk_last_error());
    for (int i = 0; i < 5; i++) {
        CHECK(fabs(val[i] - top[i]) <= 1e-6 * top[i], "lambda_%d = %.10g, want %g", i + 1, val[i], top[i]);
        CHECK(res[i] <= 1e-7 * 40 * 1.0001, "residual %d = %g above the tolerance", i + 1, res[i]);
        /* the Ritz vector is +-e_j with j the outlier's index */
        float at = fabsf(vec[(size_t)i * N + 17 + 50 * i]);
        CHECK(at > 0.99999f, "eigenvector %d: component %.7f at its index", i + 1, at);
    }
    CHECK(steps < 60, "the tolerance stops the run early (steps %d)", steps);

    /* fixed steps: the same start gives the same numbers (bit for bit) */
    c.tol = 0;
    c.max_steps = 30;
    double v2[5], v3[5];
    sk_curvature_lanczos(&op, &c, v2, NULL, NULL, &steps);
    sk_curvature_lanczos(&op, &c, v3, NULL, NULL, NULL);
    CHECK(steps == 30 && memcmp(v2, v3, sizeof v2) == 0, "fixed-step runs reproduce (steps %d)", steps);

    /* three distinct eigenvalues: an invariant subspace after three steps, exact */
    for (int i = 0; i < N; i++) diag[i] = i % 3 == 0 ? 7 : i % 3 == 1 ? 2 : -3;
    c.k = 2;
    c.max_steps = 20;
    rc = sk_curvature_lanczos(&op, &c, val, res, NULL, &steps);
    CHECK(rc == SK_OK && steps == 3, "invariant subspace: %d steps (rc %d)", steps, rc);
    CHECK(fabs(val[0] - 7) < 1e-5 && fabs(val[1] - 2) < 1e-5, "eigenvalues %.12g %.12g", val[0], val[1]);

    /* refusals */
    c.k = 3;
    c.max_steps = 2;
    CHECK(sk_curvature_lanczos(&op, &c, val, NULL, NULL, NULL) == SK_EINVAL, "max_steps < k refused");
    free(vec);
}

/* Hutchinson on a dense symmetric matrix: unbiased over many seeds, and its
 * standard error matches the spread of the estimates. */
static void test_trace_seeds(void)
{
    enum { N = 40, SEEDS = 400, PROBES = 8 };
    static double a[N * N];
    struct sk_rng r = sk_rng_new(5);
    double tr = 0, off2 = 0;
    for (int i = 0; i < N; i++)
        for (int j = 0; j <= i; j++) {
            double v = sk_rng_normal(&r);
            a[i * N + j] = a[j * N + i] = v;
        }
    for (int i = 0; i < N; i++) {
        tr += a[i * N + i];
        for (int j = 0; j < N; j++)
            if (i != j) off2 += a[i * N + j] * a[i * N + j];
    }
    struct dense_op d = { N, a };
    struct sk_curvature_op op = { N, dense_apply, &d };
    double mean = 0, m2 = 0, se_mean = 0;
    for (int s = 0; s < SEEDS; s++) {
        double t, se;
        int used = 0;
        int rc = sk_curvature_trace(&op, PROBES, 0, (uint64_t)s + 100, &t, &se, NULL, &used);
        if (rc || used != PROBES) {
            CHECK(0, "trace seed %d: rc %d used %d", s, rc, used);
            return;
        }
        mean += t;
        m2 += t * t;
        se_mean += se;
    }
    mean /= SEEDS;
    double sd = sqrt((m2 - SEEDS * mean * mean) / (SEEDS - 1));
    se_mean /= SEEDS;
    /* Var(z^T A z) = 2 sum_{i != j} a_ij^2 for Rademacher z */
    double sd_exact = sqrt(2 * off2 / PROBES);
    CHECK(fabs(mean - tr) <= 4 * sd_exact / sqrt(SEEDS), "mean over %d seeds %.4f, exact trace %.4f (sd %.4f)", SEEDS,
          mean, tr, sd_exact / sqrt(SEEDS));
    CHECK(fabs(sd / sd_exact - 1) < 0.12, "spread of the estimates %.4f, exact %.4f", sd, sd_exact);
    CHECK(fabs(se_mean / sd_exact - 1) < 0.15, "mean reported standard error %.4f, exact %.4f", se_mean, sd_exact);
    /* a diagonal matrix: every Rademacher probe gives the trace exactly */
    double diag[N];
    for (int i = 0; i < N; i++) diag[i] = i * 0.25 - 3;
    struct dense_op dd = { N, diag };
    struct sk_curvature_op dop = { N, diag_apply, &dd };
    double t, se;
    sk_curvature_trace(&dop, 5, 0, 1, &t, &se, NULL, NULL);
    CHECK(fabs(t - (0.25 * N * (N - 1) / 2 - 3 * N)) < 1e-9 && se < 1e-12, "diagonal trace %.12g se %g", t, se);
}

/* ---- a small trained MLP ---- */

static struct sk_model *small_mlp(const char *spec, struct sk_dataset **data, int n)
{
    struct sk_model *m = sk_model_from_spec(spec);
    struct sk_dataset *d = sk_data_blobs(n, m->n_classes, 6, 1.0f, 11);
    sk_model_init(m, SK_INIT_HE_UNIFORM, 7);
    struct sk_train_config cfg = sk_train_defaults();
    cfg.epochs = 15;
    cfg.batch = 32;
    cfg.seed = 1;
    cfg.opt = sk_optim_defaults(SK_OPT_ADAM);
    cfg.opt.lr = 0.01f;
    if (sk_train(m, &cfg, d->x, d->y, d->n)) fprintf(stderr, "train: %s\n", sk_last_error());
    *data = d;
    return m;
}

static void test_mlp_spectrum(void)
{
    struct sk_dataset *d;
    struct sk_model *m = small_mlp("mlp:6-12-10-10:tanh", &d, 200);
    size_t P = m->n_params;
    /* chunks of 64 rows (about 70 kB each): a budget for two of the four, the
     * others recorded per product */
    struct sk_curvature_data_config dc = { .chunk = 64, .keep_mb = 0.15 };
    struct sk_curvature_loss *L = sk_curvature_loss_model(m, d->x, d->y, d->n, &dc);
    CHECK(L != NULL, "loss: %s", sk_last_error());
    if (!L) return;
    struct sk_curvature_op H = sk_curvature_loss_op(L);

    /* the chunked product equals sk_model_hvp over all rows, and repeats bit for bit */
    float *v = malloc(sizeof(float) * P), *h1 = malloc(sizeof(float) * P), *h2 = malloc(sizeof(float) * P),
          *h3 = malloc(sizeof(float) * P);
    struct sk_rng r = sk_rng_new(4);
    for (size_t i = 0; i < P; i++) v[i] = sk_rng_normal(&r);
    H.apply(H.ctx, v, h1);
    H.apply(H.ctx, v, h2);
    sk_model_hvp(m, d->x, d->y, d->n, v, h3);
    CHECK(memcmp(h1, h2, sizeof(float) * P) == 0, "a product repeats bit for bit on kept forwards");
    CHECK(sk_rel_err(h1, h3, P) < 1e-5, "chunked product vs sk_model_hvp: rel err %g", sk_rel_err(h1, h3, P));
    /* value and gradient equal the model's own over all rows */
    double lv;
    float lm;
    L->value_grad(L->ctx, &lv, h1);
    struct sk_graph *g = sk_graph_new();
    sk_model_loss_grad(m, g, d->x, d->y, d->n, SK_MODE_EVAL, 0, &lm);
    CHECK(fabs(lv - lm) < 1e-5 * (1 + fabs(lm)), "loss %.8f vs %.8f", lv, (double)lm);
    CHECK(sk_rel_err(h1, m->grads, P) < 1e-5, "gradient rel err %g", sk_rel_err(h1, m->grads, P));
    sk_graph_free(g);

    /* the exact spectrum */
    double *w = malloc(sizeof(double) * P), asym = 1;
    double *hd = malloc(sizeof(double) * P * P);
    CHECK(sk_curvature_hessian_dense(&H, hd, &asym) == SK_OK, "dense: %s", sk_last_error());
    CHECK(asym < 1e-4, "the exact Hessian is symmetric: %g", asym);
    free(hd);
    CHECK(sk_curvature_eigen_dense(&H, w, NULL) == SK_OK, "eigen: %s", sk_last_error());
    double tr = 0, tr2 = 0;
    for (size_t i = 0; i < P; i++) {
        tr += w[i];
        tr2 += w[i] * w[i];
    }
    fprintf(stderr, "  P %zu, exact lambda 1..5: %.6g %.6g %.6g %.6g %.6g, min %.3g, trace %.6g\n", P, w[P - 1],
            w[P - 2], w[P - 3], w[P - 4], w[P - 5], w[0], tr);

    /* lambda_1..5 by Lanczos within 0.1% */
    struct sk_curvature_lanczos_config lc = { .k = 5, .max_steps = 120, .tol = 1e-6, .seed = 9 };
    double val[5], res[5];
    int steps;
    CHECK(sk_curvature_lanczos(&H, &lc, val, res, NULL, &steps) == SK_OK, "lanczos: %s", sk_last_error());
    for (int i = 0; i < 5; i++)
        CHECK(fabs(val[i] - w[P - 1 - i]) <= 1e-3 * fabs(w[P - 1 - i]), "lambda_%d: Lanczos %.8g, dense %.8g (%d steps)",
              i + 1, val[i], w[P - 1 - i], steps);

    /* Hutchinson within 3 standard errors */
    double t, se;
    CHECK(sk_curvature_trace(&H, 300, 0, 2, &t, &se, NULL, NULL) == SK_OK, "trace");
    CHECK(fabs(t - tr) <= 3 * se, "Hutchinson %.6g +- %.3g, exact %.6g", t, se, tr);
    /* a relative tolerance stops early */
    int used = 0;
    sk_curvature_trace(&H, 300, 0.2, 2, &t, &se, NULL, &used);
    CHECK(used >= 10 && used < 300 && se <= 0.2 * fabs(t), "rel_tol 0.2 stopped at %d probes (se %g, tr %g)", used,
          se, t);

    /* SLQ: the density's first two moments within 5% of the exact ones */
    double t_slq = sk_now();
    struct sk_curvature_density *dn = sk_curvature_density(&H, 200, 10, 5);
    fprintf(stderr, "  slq %.2f s\n", sk_now() - t_slq);
    CHECK(dn != NULL, "density: %s", sk_last_error());
    if (dn) {
        double m1 = sk_curvature_density_moment(dn, 1), m2 = sk_curvature_density_moment(dn, 2);
        double e1 = tr / P, e2 = tr2 / P;
        fprintf(stderr, "  SLQ moments %.6g %.6g, exact %.6g %.6g\n", m1, m2, e1, e2);
        CHECK(fabs(m1 - e1) <= 0.05 * fabs(e1), "SLQ first moment %.6g, exact %.6g", m1, e1);
        CHECK(fabs(m2 - e2) <= 0.05 * fabs(e2), "SLQ second moment %.6g, exact %.6g", m2, e2);
        double wsum = 0;
        for (int i = 0; i < dn->runs * dn->steps; i++) wsum += dn->weights[i];
        CHECK(fabs(wsum - dn->runs) < 1e-9, "each run's weights sum to 1 (%.12g over %d runs)", wsum, dn->runs);
        /* the broadened density integrates to about 1 over a wide grid */
        enum { G = 2000 };
        static double gt[G], gr[G];
        sk_curvature_density_eval(dn, 0, w[0] - 1, w[P - 1] + 1, G, gt, gr);
        double integral = 0;
        for (int i = 1; i < G; i++) integral += 0.5 * (gr[i] + gr[i - 1]) * (gt[i] - gt[i - 1]);
        CHECK(fabs(integral - 1) < 1e-3, "density integrates to %.6f", integral);
        const char *png = sk_test_path("density.png");
        CHECK(sk_curvature_density_plot(dn, 0, png, NULL) == SK_OK, "plot: %s", sk_last_error());
        size_t nb = 0;
        unsigned char *b = sk_test_file_bytes("density.png", &nb);
        CHECK(b && nb > 100 && memcmp(b, "\x89PNG", 4) == 0, "a PNG was written (%zu bytes)", nb);
        free(b);
    }
    sk_curvature_density_free(dn);

    /* lambda_max across sample sets: each one equals Lanczos on its rows */
    double lm3[3];
    CHECK(sk_curvature_lmax_spread(m, d->x, d->y, d->n, 50, 3, 30, 8, lm3) == SK_OK, "spread: %s", sk_last_error());
    CHECK(lm3[0] > 0 && lm3[1] > 0 && lm3[2] > 0, "lambda_max per set %g %g %g", lm3[0], lm3[1], lm3[2]);
    CHECK(sk_curvature_lmax_spread(m, d->x, d->y, d->n, 100, 3, 30, 8, lm3) == SK_EINVAL, "300 rows of 200 refused");

    free(w);
    free(v);
    free(h1);
    free(h2);
    free(h3);
    sk_curvature_loss_free(L);
    sk_model_free(m);
    sk_dataset_free(d);
}

/* ---- a known quadratic: f = 1/2 sum a_i (theta_i - c_i)^2, at its minimum ---- */

struct quad {
    int n;
    const double *a, *c;
    float *theta;
};

static int quad_vg(void *ctx, double *loss, float *grad)
{
    struct quad *q = ctx;
    double f = 0;
    for (int i = 0; i < q->n; i++) {
        double e = (double)q->theta[i] - q->c[i];
        f += 0.5 * q->a[i] * e * e;
        if (grad) grad[i] = (float)(q->a[i] * e);
    }
    *loss = f;
    return SK_OK;
}

static int quad_hvp(void *ctx, const float *v, float *hv)
{
    struct quad *q = ctx;
    for (int i = 0; i < q->n; i++) hv[i] = (float)(q->a[i] * v[i]);
    return SK_OK;
}

static void test_sharpness_quadratic(void)
{
    enum { N = 400 };
    static double a[N], c[N];
    static float th[N], th0[N];
    struct sk_rng r = sk_rng_new(21);
    double amax_t2 = 0, sum_at2 = 0, tra = 0, box = 0;
    const double eps = 1e-2, rho = 0.05, bound = 0.01;
    for (int i = 0; i < N; i++) {
        a[i] = 0.5 + sk_rng_uniform_d(&r);
        c[i] = (sk_rng_uniform_d(&r) - 0.5) * 2;
        th[i] = (float)c[i];
        c[i] = th[i]; /* the minimum exactly at the float point */
    }
    a[123] = 10; /* one coordinate where a_i c_i^2 stands out */
    c[123] = th[123] = 1.5f;
    for (int i = 0; i < N; i++) {
        double t = fabs(c[i]);
        amax_t2 = fmax(amax_t2, a[i] * t * t);
        sum_at2 += a[i] * t * t;
        tra += a[i];
        double b = eps * (t + 1);
        box += 0.5 * a[i] * b * b;
    }
    memcpy(th0, th, sizeof th);
    struct quad q = { N, a, c, th };
    struct sk_curvature_loss L = { .n = N, .theta = th, .ctx = &q, .value_grad = quad_vg, .hvp = quad_hvp };

    double inc = -1;
    CHECK(sk_curvature_sharpness_eps(&L, eps, 10, 1, &inc) == SK_OK, "eps: %s", sk_last_error());
    CHECK(fabs(inc - box) <= 1e-4 * box, "eps-sharpness %.8g, closed form (box corner) %.8g", inc, box);
    CHECK(memcmp(th, th0, sizeof th) == 0, "theta restored after eps-sharpness");

    CHECK(sk_curvature_sharpness_adaptive(&L, rho, 2, 0, 60, 1, &inc) == SK_OK, "adaptive: %s", sk_last_error());
    double want = 0.5 * rho * rho * amax_t2;
    CHECK(fabs(inc - want) <= 1e-3 * want, "adaptive (l2) %.8g, closed form %.8g", inc, want);
    CHECK(sk_curvature_sharpness_adaptive(&L, rho, 0, 0, 10, 1, &inc) == SK_OK, "adaptive inf");
    want = 0.5 * rho * rho * sum_at2;
    CHECK(fabs(inc - want) <= 1e-4 * want, "adaptive (l-inf) %.8g, closed form %.8g", inc, want);
    CHECK(memcmp(th, th0, sizeof th) == 0, "theta restored after adaptive sharpness");

    /* PAC-Bayes: E increase = sigma^2 tr(A) / 2 (plain), and
     * sum a_i (sigma^2 theta_i^2 + 1e-6) / 2 (magnitude-aware); the sample
     * mean of 50 draws is within about 1% of it. */
    double sig = 0;
    CHECK(sk_curvature_pac_sigma(&L, bound, false, 50, 16, 3, &sig) == SK_OK, "pac: %s", sk_last_error());
    want = sqrt(2 * bound / tra);
    CHECK(fabs(sig - want) <= 0.03 * want, "PAC-Bayes sigma %.6g, closed form %.6g", sig, want);
    CHECK(sk_curvature_pac_sigma(&L, bound, true, 50, 16, 3, &sig) == SK_OK, "pac mag");
    want = sqrt((2 * bound - 1e-6 * tra) / sum_at2);
    CHECK(fabs(sig - want) <= 0.03 * want, "magnitude-aware sigma %.6g, closed form %.6g", sig, want);
    CHECK(memcmp(th, th0, sizeof th) == 0, "theta restored after PAC-Bayes");
    CHECK(sk_curvature_pac_sigma(&L, 1e-30, true, 5, 4, 3, &sig) == SK_EINVAL, "an unreachable bound is refused");
    CHECK(memcmp(th, th0, sizeof th) == 0, "theta restored after an error");

    /* the quadratic's operator through the loss: Lanczos finds max a_i = 10 */
    struct sk_curvature_op H = sk_curvature_loss_op(&L);
    struct sk_curvature_lanczos_config lc = { .k = 1, .max_steps = 40, .tol = 1e-8, .seed = 1 };
    double lam;
    sk_curvature_lanczos(&H, &lc, &lam, NULL, NULL, NULL);
    CHECK(fabs(lam - 10) < 1e-5, "lambda_max of the quadratic %.9g", lam);
}

/* Multiplying a ReLU layer's weights and bias by 4 and dividing the next
 * layer's weights by 4 leaves the function unchanged: adaptive sharpness
 * stays (exactly: powers of two), plain epsilon-sharpness moves. */
static void test_rescaling(void)
{
    struct sk_dataset *d;
    struct sk_model *m = small_mlp("mlp:6-12-3:relu", &d, 200);
    struct sk_model *m2 = sk_model_clone(m);
    const struct sk_layer *l0 = &m2->layers[0], *l2 = &m2->layers[2];
    for (size_t i = 0; i < l0->n_w; i++) m2->params[l0->w_off + i] *= 4;
    for (size_t i = 0; i < l0->n_b; i++) m2->params[l0->b_off + i] *= 4;
    for (size_t i = 0; i < l2->n_w; i++) m2->params[l2->w_off + i] *= 0.25f;
    struct sk_curvature_loss *L1 = sk_curvature_loss_model(m, d->x, d->y, d->n, NULL);
    struct sk_curvature_loss *L2 = sk_curvature_loss_model(m2, d->x, d->y, d->n, NULL);
    double f1, f2, a1, a2, e1, e2;
    L1->value_grad(L1->ctx, &f1, NULL);
    L2->value_grad(L2->ctx, &f2, NULL);
    CHECK(fabs(f1 - f2) < 1e-6, "rescaled network, same loss %.8g %.8g", f1, f2);
    sk_curvature_sharpness_adaptive(L1, 0.05, 2, 0, 10, 4, &a1);
    sk_curvature_sharpness_adaptive(L2, 0.05, 2, 0, 10, 4, &a2);
    CHECK(fabs(a1 - a2) <= 1e-5 * fabs(a1) && a1 > 0, "adaptive sharpness %.8g vs %.8g after rescaling", a1, a2);
    sk_curvature_sharpness_eps(L1, 1e-3, 10, 4, &e1);
    sk_curvature_sharpness_eps(L2, 1e-3, 10, 4, &e2);
    CHECK(fabs(e1 - e2) > 0.05 * fmax(e1, e2), "plain eps-sharpness moves under rescaling: %.6g vs %.6g", e1, e2);
    sk_curvature_loss_free(L1);
    sk_curvature_loss_free(L2);
    sk_model_free(m);
    sk_model_free(m2);
    sk_dataset_free(d);
}

/* ---- norms, margins, Fisher-Rao, noise scale on hand-checkable models ---- */

static void test_linear_measures(void)
{
    enum { D = 6, K = 3, N = 120 };
    struct sk_dataset *d;
    struct sk_model *m = small_mlp("mlp:6-3", &d, N);
    const float *W = m->params + m->layers[0].w_off, *b = m->params + m->layers[0].b_off;
    float z[N * K];
    sk_model_logits(m, d->x, N, z);
    /* per-row gradient of l_i: (p - e_y) (x) [x_i, 1] in the layout W then b */
    size_t P = m->n_params;
    double *G = calloc(P, sizeof(double)), sq = 0, fr = 0;
    double *gi = malloc(sizeof(double) * P);
    float marg[N];
    double marg_max = 0;
    CHECK(sk_curvature_margins(m, d->x, d->y, N, marg) == SK_OK, "margins");
    for (int i = 0; i < N; i++) {
        const float *zi = z + i * K, *xi = d->x + i * D;
        double mx = zi[0], s = 0, p[K];
        for (int k = 1; k < K; k++) mx = fmax(mx, zi[k]);
        for (int k = 0; k < K; k++) s += exp(zi[k] - mx);
        double dot = 0;
        for (int k = 0; k < K; k++) {
            p[k] = exp(zi[k] - mx) / s - (k == d->y[i]);
            dot += p[k] * zi[k];
            for (int j = 0; j < D; j++) gi[m->layers[0].w_off + (size_t)k * D + j] = p[k] * xi[j];
            gi[m->layers[0].b_off + k] = p[k];
        }
        fr += dot * dot; /* <theta, grad l_i> = (p - e_y) . z_i for a linear model */
        for (size_t t = 0; t < P; t++) {
            G[t] += gi[t];
            sq += gi[t] * gi[t];
        }
        double other = -1e30;
        for (int k = 0; k < K; k++)
            if (k != d->y[i]) other = fmax(other, zi[k]);
        marg_max = fmax(marg_max, fabs(marg[i] - (zi[d->y[i]] - other)));
    }
    CHECK(marg_max < 1e-5, "margins against the logits: %g", marg_max);
    double frs = 0;
    CHECK(sk_curvature_fisher_rao(m, d->x, d->y, N, &frs) == SK_OK, "fisher-rao: %s", sk_last_error());
    CHECK(fabs(frs - fr / N) <= 1e-4 * fr / N, "Fisher-Rao %.8g, by hand %.8g", frs, fr / N);

    /* B_simple with batches of one row: every row once, the exact formula */
    double gm = 0;
    for (size_t t = 0; t < P; t++) gm += (G[t] / N) * (G[t] / N);
    double ts = (sq - N * gm) / (N - 1), g2 = gm - ts / N;
    double bs, tsig, gsq;
    CHECK(sk_curvature_noise_scale(m, d->x, d->y, N, 1, 5, &bs, &tsig, &gsq) == SK_OK, "gns: %s", sk_last_error());
    CHECK(fabs(tsig - ts) <= 1e-4 * ts && fabs(gsq - g2) <= 1e-3 * fabs(g2) + 1e-9, "tr Sigma %.8g (%.8g), |G|^2 %.8g (%.8g)",
          tsig, ts, gsq, g2);
    CHECK(fabs(bs - ts / g2) <= 2e-3 * fabs(ts / g2), "B_simple %.6g, by hand %.6g", bs, ts / g2);
    CHECK(sk_curvature_noise_scale(m, d->x, d->y, N, 61, 5, &bs, &tsig, &gsq) == SK_EINVAL, "one batch refused");

    /* path norm of a linear map: sum_k (sum_j W_kj^2 + b_k^2) */
    double pn = 0, want = 0;
    for (int k = 0; k < K; k++) {
        want += (double)b[k] * b[k];
        for (int j = 0; j < D; j++) want += (double)W[k * D + j] * W[k * D + j];
    }
    CHECK(sk_curvature_path_norm(m, &pn) == SK_OK && fabs(pn - want) <= 1e-5 * want, "path norm %.8g, by hand %.8g", pn,
          want);
    /* spectral norm: power iteration on W^T W by hand */
    double v[D], u[K], snorm = 0;
    for (int j = 0; j < D; j++) v[j] = 1 + 0.1 * j;
    for (int it = 0; it < 2000; it++) {
        for (int k = 0; k < K; k++) {
            u[k] = 0;
            for (int j = 0; j < D; j++) u[k] += W[k * D + j] * v[j];
        }
        double nv = 0;
        for (int j = 0; j < D; j++) {
            v[j] = 0;
            for (int k = 0; k < K; k++) v[j] += W[k * D + j] * u[k];
            nv += v[j] * v[j];
        }
        nv = sqrt(nv);
        snorm = sqrt(nv);
        for (int j = 0; j < D; j++) v[j] /= nv;
    }
    double prod, sum, frob;
    int nm;
    CHECK(sk_curvature_spectral_norms(m, NULL, &nm, &prod, &sum, &frob) == SK_OK, "spectral");
    CHECK(nm == 1 && fabs(prod - snorm) <= 1e-6 * snorm && fabs(sum - snorm) <= 1e-6 * snorm,
          "spectral norm %.9g, by hand %.9g (%d matrices)", prod, snorm, nm);
    free(G);
    free(gi);
    sk_model_free(m);
    sk_dataset_free(d);

    /* path norm of a ReLU MLP: sum_k sum_j W2_kj^2 (sum_i W1_ji^2 + b1_j^2) + b2_k^2 */
    m = small_mlp("mlp:6-5-3:relu", &d, N);
    const struct sk_layer *l0 = &m->layers[0], *l2 = &m->layers[2];
    double h[5];
    for (int j = 0; j < 5; j++) {
        h[j] = (double)m->params[l0->b_off + j] * m->params[l0->b_off + j];
        for (int i = 0; i < 6; i++) h[j] += (double)m->params[l0->w_off + j * 6 + i] * m->params[l0->w_off + j * 6 + i];
    }
    want = 0;
    for (int k = 0; k < 3; k++) {
        want += (double)m->params[l2->b_off + k] * m->params[l2->b_off + k];
        for (int j = 0; j < 5; j++) want += (double)m->params[l2->w_off + k * 5 + j] * m->params[l2->w_off + k * 5 + j] * h[j];
    }
    CHECK(sk_curvature_path_norm(m, &pn) == SK_OK && fabs(pn - want) <= 1e-5 * want, "ReLU path norm %.8g, by hand %.8g",
          pn, want);
    sk_model_free(m);
    struct sk_model *cnn = sk_model_from_spec("cnn:1x6x6-conv2k3-relu-maxpool2-flatten-dense3");
    CHECK(sk_curvature_path_norm(cnn, &pn) == SK_EINVAL && strstr(sk_last_error(), "maxpool"),
          "max pooling refused by name: %s", sk_last_error());
    sk_model_free(cnn);
    sk_dataset_free(d);
}

/* The whole report: consistent with the parts, and reproducible. */
static void test_report(void)
{
    struct sk_dataset *d;
    struct sk_model *m = small_mlp("mlp:6-8-3:tanh", &d, 300);
    struct sk_dataset *te = sk_data_blobs(100, 3, 6, 1.0f, 12);
    struct sk_curvature_config c = sk_curvature_defaults();
    c.top_k = 3;
    c.lanczos_steps = 60;
    c.lanczos_tol = 1e-7;
    c.probes = 30;
    c.slq_runs = 2;
    c.slq_steps = 20;
    c.spread_sets = 3;
    c.spread_n = 64;
    c.dense = true;
    c.gns_batch = 32;
    c.ascent_steps = 5;
    struct sk_curvature_report r1, r2;
    struct sk_curvature_density *dn = NULL;
    float *before = malloc(sizeof(float) * m->n_params);
    memcpy(before, m->params, sizeof(float) * m->n_params);
    int rc = sk_curvature_measures(m, d->x, d->y, d->n, te->x, te->y, te->n, &c, &r1, &dn);
    CHECK(rc == SK_OK, "measures: %s", sk_last_error());
    CHECK(memcmp(before, m->params, sizeof(float) * m->n_params) == 0, "parameters restored");
    CHECK(dn != NULL, "density returned");
    for (int i = 0; i < 3; i++)
        CHECK(fabs(r1.eig[i] - r1.dense_eig[i]) <= 1e-3 * fabs(r1.dense_eig[i]), "eig %d: %.8g vs dense %.8g", i,
              r1.eig[i], r1.dense_eig[i]);
    CHECK(fabs(r1.trace - r1.dense_trace) <= 3 * r1.trace_se, "trace %.6g +- %.2g vs %.6g", r1.trace, r1.trace_se,
          r1.dense_trace);
    double acc, loss;
    sk_model_evaluate(m, te->x, te->y, te->n, &acc, &loss);
    CHECK(fabs(r1.test_loss - loss) < 1e-9 && fabs(r1.test_err - (1 - acc)) < 1e-12, "test loss/err");
    CHECK(r1.eps_sharpness > 0 && r1.adaptive_sharpness > 0 && r1.pac_sigma > 0 && r1.pac_sigma_mag > 0,
          "sharpness %g %g, sigma %g %g", r1.eps_sharpness, r1.adaptive_sharpness, r1.pac_sigma, r1.pac_sigma_mag);
    CHECK(isnan(r1.path_norm), "no path norm for tanh: %g", r1.path_norm);
    CHECK(r1.spread_sets == 3 && r1.spread_min <= r1.spread_median && r1.spread_median <= r1.spread_max,
          "spread %g %g %g", r1.spread_min, r1.spread_median, r1.spread_max);
    CHECK(r1.gns_trace_sigma > 0 && (r1.gns_grad_sq > 0 ? isfinite(r1.gns_simple) : isinf(r1.gns_simple)),
          "noise scale %g (tr Sigma %g, |G|^2 %g)", r1.gns_simple, r1.gns_trace_sigma, r1.gns_grad_sq);
    CHECK(r1.fisher_rao > 0 && r1.n_spectral == 2 && r1.spec_prod > 0, "norms");
    rc = sk_curvature_measures(m, d->x, d->y, d->n, te->x, te->y, te->n, &c, &r2, NULL);
    r1.seconds = r2.seconds = 0;
    CHECK(rc == SK_OK && memcmp(&r1, &r2, sizeof r1) == 0, "the report reproduces bit for bit");
    c.top_k = 0;
    CHECK(sk_curvature_measures(m, d->x, d->y, d->n, NULL, NULL, 0, &c, &r2, NULL) == SK_EINVAL &&
              strstr(sk_last_error(), "cfg.top_k"),
          "a bad setting names its field: %s", sk_last_error());
    sk_curvature_density_free(dn);
    free(before);
    sk_model_free(m);
    sk_dataset_free(d);
    sk_dataset_free(te);
}

/* The command: every section in --json, the density file, lambda_max
 * against the dense spectrum, and a bad setting named by its flag. */
static void test_command(void)
{
    struct sk_dataset *tr = sk_data_open("blobs", "train", NULL);
    struct sk_model *m = sk_model_from_spec("mlp:2-8-3:relu");
    sk_model_init(m, SK_INIT_HE_UNIFORM, 3);
    struct sk_train_config cfg = sk_train_defaults();
    cfg.epochs = 5;
    cfg.opt = sk_optim_defaults(SK_OPT_ADAM);
    sk_train(m, &cfg, tr->x, tr->y, tr->n);
    CHECK(sk_model_save(m, sk_test_path("m.safetensors"), NULL) == SK_OK, "save: %s", sk_last_error());
    int rc = sk_cli_run("curvature --model m.safetensors --data blobs --n 300 --n-test 100 --top-k 2 --probes 10 "
                        "--spread-sets 2 --spread-n 50 --dense --density d.png --ascent-steps 3 --pac-samples 2 "
                        "--gns-batch 50 --json --threads 1");
    cJSON *o = sk_cli_json();
    CHECK(rc == 0 && o, "curvature --json: rc %d, %s", rc, sk_cli_err);
    if (o) {
        const cJSON *ev = cJSON_GetObjectItem(o, "eigenvalues"), *de = cJSON_GetObjectItem(o, "dense_eigenvalues");
        double l1 = sk_json_num(o, "lambda_max"), d1 = de ? cJSON_GetArrayItem(de, 0)->valuedouble : -1;
        CHECK(cJSON_GetArraySize(ev) == 2 && fabs(l1 - d1) <= 1e-3 * fabs(d1), "lambda_max %g, dense %g", l1, d1);
        CHECK(sk_json_num(o, "n_train") == 300 && sk_json_num(o, "n_test") == 100 && sk_json_num(o, "params") == 51,
              "rows and parameters");
        const char *keys[] = { "trace", "trace_se", "slq_moment1", "spread_min", "train_loss", "test_err", "gap_loss",
                               "eps_sharpness", "adaptive_sharpness", "pac_sigma", "pac_sigma_mag", "fisher_rao",
                               "spectral_prod", "path_norm", "margin_p10", "gns_trace_sigma" };
        for (size_t i = 0; i < sizeof keys / sizeof *keys; i++)
            CHECK(sk_json_num(o, keys[i]) > -1e300, "key %s is a number", keys[i]);
        cJSON_Delete(o);
    }
    size_t nb = 0;
    unsigned char *b = sk_test_file_bytes("d.png", &nb);
    CHECK(b && nb > 100, "--density wrote a picture (%zu bytes)", nb);
    free(b);
    rc = sk_cli_run("curvature --model m.safetensors --data blobs --top-k 0");
    CHECK(rc == 2 && strstr(sk_cli_err, "--top-k"), "--top-k 0: rc %d, %s", rc, sk_cli_err);
    rc = sk_cli_run("curvature --model m.safetensors --data blobs --n 300 --no-sharpness --spread-sets 0 --probes 5");
    CHECK(rc == 0 && strstr(sk_cli_out, "lambda_1") && !strstr(sk_cli_out, "eps-sharpness"), "text output: %s",
          sk_cli_err);
    sk_model_free(m);
    sk_dataset_free(tr);
}

int main(void)
{
    sk_set_threads(2);
    test_lanczos_diagonal();
    test_trace_seeds();
    test_mlp_spectrum();
    test_sharpness_quadratic();
    test_rescaling();
    test_linear_measures();
    test_report();
    test_command();
    return sk_test_finish("test_curvature");
}
