/* CROWN-IBP certified training: the margin bounds recorded on the tape equal
 * certify's CROWN where the intermediate boxes agree (one ReLU layer: IBP is
 * exact there), with beta 0 equal IBP's specification-form margins, never
 * above certify's best-of-concretizations bound on the same IBP boxes, sound
 * under sampling, tighter than IBP on average; the loss's parameter gradient
 * matches central differences; a few CROWN-IBP training steps raise the
 * certified margin of a tiny model. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "skeptic/skeptic.h"
#include "skeptic/certify.h"
#include "skeptic/robust.h"
#include "testutil.h"

static const float EPS = 0.08f;

static struct sk_model *model(const char *spec, uint64_t seed)
{
    struct sk_model *m = sk_model_from_spec(spec);
    CHECK(m != NULL, "spec %s: %s", spec, sk_last_error());
    if (m) sk_model_init(m, SK_INIT_HE_UNIFORM, seed);
    return m;
}

static void fill01(float *x, size_t n, uint64_t seed)
{
    struct sk_rng r = sk_rng_new(seed);
    for (size_t i = 0; i < n; i++) x[i] = sk_rng_uniform(&r);
}

/* mlo [N,K] of CROWN-IBP at beta on the threat set of x (box [0,1]) */
static int crown_ibp(struct sk_model *m, const float *x, const int *y, int N, float eps, float beta, float *mlo)
{
    struct sk_graph *g = sk_graph_new();
    int c, r, ml, rc = sk_certify_ibp_input(g, m, x, N, eps, 0, 1, &c, &r);
    if (!rc) rc = sk_robust_crown_ibp_margins(m, g, c, r, y, beta, &ml);
    if (!rc) memcpy(mlo, sk_graph_value(g, ml), sizeof(float) * (size_t)N * m->n_classes);
    sk_graph_free(g);
    return rc;
}

/* certify's lower bounds of z_y - z_j per row (C rows e_y - e_j, j != y), in mlo's layout */
static int certify_spec(struct sk_model *m, const float *x, const int *y, int N, bool with_ibp, int crown_rows,
                        float *mlo)
{
    int D = m->in_dim, K = m->n_classes;
    float *lo = malloc(sizeof(float) * D), *hi = malloc(sizeof(float) * D), *C = calloc((size_t)K * K, sizeof(float));
    float *lb = malloc(sizeof(float) * K);
    struct sk_certify_crown_config cfg = sk_certify_crown_defaults();
    cfg.with_ibp = with_ibp;
    cfg.crown_rows = crown_rows;
    int rc = SK_OK;
    for (int n = 0; n < N && rc == SK_OK; n++) {
        for (int i = 0; i < D; i++) {
            float v = x[(size_t)n * D + i];
            lo[i] = v - EPS < 0 ? 0 : v - EPS;
            hi[i] = v + EPS > 1 ? 1 : v + EPS;
        }
        memset(C, 0, sizeof(float) * (size_t)K * K);
        for (int j = 0; j < K; j++) {
            C[(size_t)j * K + y[n]] += 1;
            C[(size_t)j * K + j] -= 1;
        }
        rc = sk_certify_spec_bounds(m, lo, hi, 1, C, K, &cfg, lb);
        for (int j = 0; j < K; j++) mlo[(size_t)n * K + j] = j == y[n] ? 0 : lb[j];
    }
    free(lo), free(hi), free(C), free(lb);
    return rc;
}

/* worst |a - b| / (1 + |b|) over the margins j != y */
static double margin_err(const float *a, const float *b, const int *y, int N, int K)
{
    double w = 0;
    for (int n = 0; n < N; n++)
        for (int j = 0; j < K; j++)
            if (j != y[n]) w = fmax(w, fabs((double)a[(size_t)n * K + j] - b[(size_t)n * K + j]) / (1 + fabs(b[(size_t)n * K + j])));
    return w;
}

static double mean_margin(const float *a, const int *y, int N, int K)
{
    double s = 0;
    for (int n = 0; n < N; n++)
        for (int j = 0; j < K; j++)
            if (j != y[n]) s += a[(size_t)n * K + j];
    return s / (N * (K - 1));
}

static void test_bounds(void)
{
    /* one ReLU layer: IBP boxes are exact for its inputs, so CROWN-IBP is CROWN */
    const char *single[] = { "mlp:12-16-5:relu", "cnn:1x6x6-conv3k3s2p1-relu-flatten-dense4" };
    /* two and three: only sound, within certify's best bound on the same boxes, tighter than IBP on average */
    const char *deep[] = { "mlp:12-16-16-5:relu", "cnn:1x6x6-conv3k3s1p1-relu-conv4k3s2p0-relu-flatten-dense8-relu-dense4",
                           "cnn:2x5x5-conv3k2s1p0-relu-flatten-dense6-relu-dense6-relu-dense3" };
    enum { N = 6 };
    int y[N];
    for (int n = 0; n < N; n++) y[n] = (n * 7 + 1) % 3;
    for (size_t s = 0; s < 2 + 3; s++) {
        bool one = s < 2;
        const char *spec = one ? single[s] : deep[s - 2];
        struct sk_model *m = model(spec, 11 + s);
        if (!m) continue;
        int D = m->in_dim, K = m->n_classes;
        float *x = malloc(sizeof(float) * N * D), *mc = malloc(sizeof(float) * N * K), *mr = malloc(sizeof(float) * N * K);
        float *mi = malloc(sizeof(float) * N * K), *m0 = malloc(sizeof(float) * N * K);
        fill01(x, (size_t)N * D, 100 + s);
        int rc = crown_ibp(m, x, y, N, EPS, 1.0f, mc);
        CHECK(rc == 0, "%s: CROWN-IBP margins: %s", spec, sk_last_error());
        CHECK(crown_ibp(m, x, y, N, EPS, 0.0f, m0) == 0, "%s: beta 0", spec);
        struct sk_certify_domain box = { 0, 1, NULL, NULL };
        CHECK(sk_certify_margins_box(m, SK_CERTIFY_IBP, x, y, N, EPS, &box, mi) == 0, "%s: IBP margins", spec);
        double e0 = margin_err(m0, mi, y, N, K);
        CHECK(e0 < 1e-5, "%s: beta 0 gives IBP's margins (worst relative difference %.3g)", spec, e0);
        if (one) {
            CHECK(certify_spec(m, x, y, N, false, 1 << 30, mr) == 0, "%s: certify CROWN: %s", spec, sk_last_error());
            double e = margin_err(mc, mr, y, N, K);
            CHECK(e < 1e-4, "%s: CROWN-IBP equals certify's CROWN with one ReLU layer (worst relative difference %.3g)",
                  spec, e);
        } else {
            /* the same IBP boxes (crown_rows 0): certify's bound is the best of the concretizations
             * at every step, the input one being CROWN-IBP's */
            CHECK(certify_spec(m, x, y, N, true, 0, mr) == 0, "%s: certify on IBP boxes: %s", spec, sk_last_error());
            double worst = -INFINITY;
            for (int n = 0; n < N; n++)
                for (int j = 0; j < K; j++)
                    if (j != y[n]) worst = fmax(worst, (mc[n * K + j] - mr[n * K + j]) / (1 + fabs(mr[n * K + j])));
            CHECK(worst < 1e-4, "%s: CROWN-IBP is never above certify's bound on the IBP boxes (%.3g)", spec, worst);
        }
        double tc = mean_margin(mc, y, N, K), ti = mean_margin(mi, y, N, K);
        CHECK(tc > ti, "%s: CROWN-IBP is tighter than IBP on average (mean margin bound %.4g vs %.4g)", spec, tc, ti);
        /* soundness: margins at random points of the ball and at its corners */
        enum { T = 200 };
        float *xs = malloc(sizeof(float) * T * D), *lp = malloc(sizeof(float) * T * K);
        struct sk_rng rr = sk_rng_new(7 + s);
        int bad = 0;
        for (int n = 0; n < N; n++) {
            for (int t = 0; t < T; t++)
                for (int i = 0; i < D; i++) {
                    float u = sk_rng_uniform(&rr), v = x[(size_t)n * D + i] + EPS * (t % 2 ? (u < 0.5f ? -1 : 1) : 2 * u - 1);
                    xs[(size_t)t * D + i] = v < 0 ? 0 : v > 1 ? 1 : v;
                }
            sk_model_logits(m, xs, T, lp);
            for (int t = 0; t < T; t++)
                for (int j = 0; j < K; j++)
                    if (j != y[n] && lp[t * K + y[n]] - lp[t * K + j] < mc[n * K + j] - 1e-4f * (1 + fabsf(mc[n * K + j])))
                        bad++;
        }
        CHECK(bad == 0, "%s: %d sampled margins below the CROWN-IBP bound", spec, bad);
        free(xs), free(lp), free(x), free(mc), free(mr), free(mi), free(m0);
        sk_model_free(m);
    }
}

/* L = CE(-(beta m_C + (1-beta) m_I), y) */
static double loss_at(struct sk_model *m, struct sk_graph *g, const float *x, const int *y, int N, float beta,
                      bool backward)
{
    sk_graph_reset(g);
    int c, r, zw;
    if (sk_certify_ibp_input(g, m, x, N, EPS, 0, 1, &c, &r) || sk_robust_crown_ibp_worst_logits(m, g, c, r, y, beta, &zw))
        return NAN;
    int L = sk_loss_cross_entropy(g, zw, y, 0.0f);
    if (L < 0) return NAN;
    if (backward && sk_graph_backward(g, L, NULL)) return NAN;
    return sk_graph_value(g, L)[0];
}

static void test_gradient(void)
{
    const char *specs[] = { "cnn:1x5x5-conv2k3s1p1-relu-conv3k3s2p0-relu-flatten-dense5-relu-dense3",
                            "mlp:6-7-7-4:relu" };
    enum { N = 4 };
    int y[N] = { 0, 2, 1, 2 };
    for (int s = 0; s < 2; s++) {
        struct sk_model *m = model(specs[s], 21 + s);
        if (!m) continue;
        float *x = malloc(sizeof(float) * N * m->in_dim);
        fill01(x, (size_t)N * m->in_dim, 40 + s);
        struct sk_graph *g = sk_graph_new();
        memset(m->grads, 0, sizeof(float) * m->n_params);
        double L0 = loss_at(m, g, x, y, N, 0.7f, true);
        CHECK(isfinite(L0), "%s: loss: %s", specs[s], sk_last_error());
        float *ana = malloc(sizeof(float) * m->n_params);
        memcpy(ana, m->grads, sizeof(float) * m->n_params);
        double md = 0, mn = 0;
        const double h = 1e-3;
        size_t step = m->n_params / 50 + 1;
        for (size_t i = 0; i < m->n_params; i += step) {
            float keep = m->params[i];
            m->params[i] = (float)(keep + h);
            double lp = loss_at(m, g, x, y, N, 0.7f, false);
            m->params[i] = (float)(keep - h);
            double lm = loss_at(m, g, x, y, N, 0.7f, false);
            m->params[i] = keep;
            double num = (lp - lm) / (2 * h);
            md = fmax(md, fabs(num - ana[i]));
            mn = fmax(mn, fabs(num));
        }
        double rel = md / fmax(mn, 1e-6);
        CHECK(rel < 2e-2 && mn > 1e-3, "%s: CROWN-IBP loss gradient against central differences: %.3g (max %.3g)",
              specs[s], rel, mn);
        free(ana), free(x);
        sk_graph_free(g);
        sk_model_free(m);
    }
}

static void test_training(void)
{
    const float TEPS = 0.04f;
    struct sk_dataset *d = sk_data_blobs(600, 3, 10, 1.0f, 3);
    for (int i = 0; i < d->n * d->dim; i++) d->x[i] = 1.0f / (1.0f + expf(-0.5f * d->x[i]));
    struct sk_model *m = model("mlp:10-32-32-3:relu", 5);
    if (!m) return;
    struct sk_train_config cfg = sk_train_defaults();
    cfg.epochs = 1;
    cfg.batch = 64;
    cfg.seed = 2;
    cfg.opt = sk_optim_defaults(SK_OPT_ADAM);
    cfg.opt.lr = 2e-3f;
    /* a clean start, so that the margins have something to lose */
    CHECK(sk_train(m, &cfg, d->x, d->y, d->n) == 0, "clean training: %s", sk_last_error());
    int n = 200, K = 3;
    float *mb = malloc(sizeof(float) * n * K), *ma = malloc(sizeof(float) * n * K);
    CHECK(crown_ibp(m, d->x, d->y, n, TEPS, 1.0f, mb) == 0, "margins before: %s", sk_last_error());
    struct sk_robust_config a = sk_robust_defaults(SK_ROBUST_CROWN_IBP, TEPS);
    CHECK(sk_robust_kind_parse("crown-ibp") == SK_ROBUST_CROWN_IBP && a.crown_beta_start == 1 && a.crown_beta_end == 0,
          "crown-ibp parses; beta 1 -> 0 by default");
    a.ibp_warmup_epochs = 0;
    a.ibp_ramp_epochs = 0; /* full eps from the first step */
    a.crown_beta_end = 1;  /* CROWN-IBP throughout */
    a.ibp_kappa_end = 0;
    struct sk_certify_report r0;
    CHECK(sk_certify(m, SK_CERTIFY_CROWN, d->x, d->y, n, TEPS, 0, 1, NULL, &r0) == 0, "certify: %s", sk_last_error());
    cfg.epochs = 8;
    CHECK(sk_robust_train(m, &cfg, &a, d->x, d->y, d->n, NULL) == 0, "CROWN-IBP training: %s", sk_last_error());
    CHECK(crown_ibp(m, d->x, d->y, n, TEPS, 1.0f, ma) == 0, "margins after: %s", sk_last_error());
    double before = 0, after = 0;
    for (int i = 0; i < n; i++) {
        float wb = INFINITY, wa = INFINITY;
        for (int j = 0; j < K; j++)
            if (j != d->y[i]) wb = fminf(wb, mb[i * K + j]), wa = fminf(wa, ma[i * K + j]);
        before += wb / n;
        after += wa / n;
    }
    fprintf(stderr, "  mean worst certified margin: %.4f before, %.4f after 8 epochs of CROWN-IBP\n", before, after);
    CHECK(after > before + 0.3, "CROWN-IBP training raises the certified margin: %.4f -> %.4f", before, after);
    struct sk_certify_report rb;
    CHECK(sk_certify(m, SK_CERTIFY_CROWN, d->x, d->y, n, TEPS, 0, 1, NULL, &rb) == 0, "certify: %s", sk_last_error());
    fprintf(stderr, "  CROWN-certified: %.3f before, %.3f after (clean %.3f)\n", r0.certified_acc, rb.certified_acc, rb.clean_acc);
    CHECK(rb.certified_acc > r0.certified_acc + 0.2, "CROWN-IBP training raises CROWN-certified accuracy: %.3f -> %.3f",
          r0.certified_acc, rb.certified_acc);

    /* refused: a layer without a relaxation here, a beta outside [0,1] */
    struct sk_model *t = model("mlp:10-8-3:tanh", 1);
    struct sk_graph *g = sk_graph_new();
    int c, r, ml;
    sk_certify_ibp_input(g, t, d->x, 2, TEPS, 0, 1, &c, &r);
    CHECK(sk_robust_crown_ibp_margins(t, g, c, r, d->y, 1.0f, &ml) == SK_EINVAL && strstr(sk_last_error(), "tanh"),
          "a tanh layer is refused by name: %s", sk_last_error());
    CHECK(sk_robust_crown_ibp_margins(m, g, c, r, d->y, 1.5f, &ml) == SK_EINVAL, "beta 1.5 refused");
    a.crown_beta_start = 2;
    CHECK(sk_robust_check(&a) == SK_EINVAL && strstr(sk_last_error(), "crown_beta_start"), "config check names the field");
    sk_graph_free(g);
    sk_model_free(t);
    free(mb), free(ma);
    sk_model_free(m);
    sk_dataset_free(d);
}

int main(void)
{
    sk_set_threads(2);
    double t0 = sk_now();
    test_bounds();
    double t1 = sk_now();
    test_gradient();
    double t2 = sk_now();
    test_training();
    fprintf(stderr, "  seconds: bounds %.1f, gradient %.1f, training %.1f\n", t1 - t0, t2 - t1, sk_now() - t2);
    return sk_test_finish("test_crown_ibp");
}
