/* Verification: CROWN and α-CROWN bounds of a specification sound for every
 * layer kind on thousands of random boxes and sampled points; α-CROWN never
 * below CROWN; never looser than IBP; branch and bound's verdict equal to an
 * exhaustive grid search on small 2-input ReLU networks (thresholds placed
 * where the grid is exact); every counterexample inside the box and meeting
 * the property; the relu bounds branch and bound refines before it starts
 * hold every sampled point and are never looser than α-CROWN's. */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "skeptic/skeptic.h"
#include "skeptic/certify.h"
#include "testutil.h"

static float urand(struct sk_rng *r, float a, float b) { return a + (b - a) * sk_rng_uniform(r); }

static struct sk_model *random_model(const char *spec, uint64_t seed)
{
    struct sk_model *m = sk_model_from_spec(spec);
    CHECK(m != NULL, "spec %s: %s", spec, sk_last_error());
    if (!m) return NULL;
    sk_model_init(m, SK_INIT_HE_UNIFORM, seed);
    struct sk_rng r = sk_rng_new(seed + 7);
    for (int li = 0; li < m->n_layers; li++) {
        struct sk_layer *L = &m->layers[li];
        if (L->kind == SK_LAYER_DENSE || L->kind == SK_LAYER_CONV)
            for (size_t i = 0; i < L->n_b; i++) m->params[L->b_off + i] = urand(&r, -0.5f, 0.5f);
        if (L->kind == SK_LAYER_BATCHNORM)
            for (int c = 0; c < L->units; c++) {
                m->params[L->w_off + c] = urand(&r, -2, 2);
                m->params[L->b_off + c] = urand(&r, -1, 1);
                m->buffers[L->rm_off + c] = urand(&r, -0.5f, 0.5f);
                m->buffers[L->rv_off + c] = urand(&r, 0.2f, 3);
            }
    }
    return m;
}

/* Bounds of random specification rows over n_boxes random boxes contain
 * C·y of every sampled point (corners and uniform), for CROWN and α-CROWN;
 * α-CROWN >= CROWN row by row. */
static void check_spec_sound(const char *spec, bool prep, int n_boxes)
{
    struct sk_model *m = random_model(spec, 11);
    if (!m) return;
    int D = m->in_dim, K = m->n_classes, S = 3, P = 48;
    struct sk_rng r = sk_rng_new(5);
    if (prep) {
        struct sk_preprocess pp = { .kind = SK_PREP_STANDARDIZE, .dim = D };
        pp.shift = malloc(sizeof(float) * D);
        pp.scale = malloc(sizeof(float) * D);
        for (int j = 0; j < D; j++) {
            pp.shift[j] = urand(&r, -0.3f, 0.3f);
            pp.scale[j] = urand(&r, 0.5f, 2.0f);
        }
        int rc = sk_model_set_preprocess(m, &pp);
        CHECK(rc == SK_OK, "set preprocess: %s", sk_last_error());
        free(pp.shift);
        free(pp.scale);
    }
    float *lo = malloc(sizeof(float) * D), *hi = malloc(sizeof(float) * D), *x = malloc(sizeof(float) * D * P);
    float *C = malloc(sizeof(float) * S * K), *lc = malloc(sizeof(float) * S), *la = malloc(sizeof(float) * S);
    float *z = malloc(sizeof(float) * K * P);
    struct sk_certify_crown_config cc = sk_certify_crown_defaults(), ca = cc;
    ca.alpha_iters = 8;
    long bad = 0, checked = 0, worse = 0, tighter = 0;
    double worst = 0;
    int err = 0;
    for (int b = 0; b < n_boxes && !err; b++) {
        float rad = b % 3 == 0 ? 0.02f : b % 3 == 1 ? 0.2f : 1.0f;
        for (int j = 0; j < D; j++) {
            float c = urand(&r, -1, 1), w = rad * urand(&r, 0, 1);
            lo[j] = c - w;
            hi[j] = c + w;
        }
        for (int i = 0; i < S * K; i++) C[i] = urand(&r, -1, 1);
        err |= sk_certify_spec_bounds(m, lo, hi, 1, C, S, &cc, lc) != SK_OK;
        err |= sk_certify_spec_bounds(m, lo, hi, 1, C, S, &ca, la) != SK_OK;
        if (err) break;
        for (int s = 0; s < S; s++) {
            worse += la[s] < lc[s];
            tighter += la[s] > lc[s] + 1e-6f * (1 + fabsf(lc[s]));
        }
        for (int p = 0; p < P; p++)
            for (int j = 0; j < D; j++)
                x[p * D + j] = p < P / 2 ? (sk_rng_uniform(&r) < 0.5f ? lo[j] : hi[j]) : urand(&r, lo[j], hi[j]);
        sk_model_logits(m, x, P, z);
        for (int p = 0; p < P; p++)
            for (int s = 0; s < S; s++) {
                double v = 0;
                for (int k = 0; k < K; k++) v += (double)C[s * K + k] * z[p * K + k];
                double tol = 1e-5 * (1 + fabs(v));
                double gap = la[s] - v; /* la >= lc: α-CROWN's is the tighter to test */
                if (lc[s] - v > gap) gap = lc[s] - v;
                if (gap > tol) bad++;
                if (gap > worst) worst = gap;
                checked++;
            }
    }
    CHECK(!err, "%s: bounds failed: %s", spec, sk_last_error());
    CHECK(bad == 0, "%s%s: CROWN / alpha-CROWN sound on %d boxes (%ld of %ld samples outside, worst by %.3g)", spec,
          prep ? " (input transform)" : "", n_boxes, bad, checked, worst);
    CHECK(worse == 0, "%s: alpha-CROWN never below CROWN (%ld rows below)", spec, worse);
    printf("%-60s %d boxes, %ld samples inside; alpha tighter on %ld of %d rows\n", spec, n_boxes, checked, tighter,
           n_boxes * S);
    free(lo);
    free(hi);
    free(x);
    free(C);
    free(lc);
    free(la);
    free(z);
    sk_model_free(m);
}

/* The final bounds are never looser than IBP's (logits: rows ±e_k) where
 * IBP applies, and CROWN through conv / pooling layers is strictly tighter
 * on average. */
static void check_vs_ibp(const char *spec, int n_boxes)
{
    struct sk_model *m = random_model(spec, 3);
    if (!m) return;
    int D = m->in_dim, K = m->n_classes;
    struct sk_rng r = sk_rng_new(9);
    float *lo = malloc(sizeof(float) * D), *hi = malloc(sizeof(float) * D), *C = calloc(2 * K * K, sizeof(float));
    float *lb = malloc(sizeof(float) * 2 * K), *il = malloc(sizeof(float) * K), *ih = malloc(sizeof(float) * K);
    for (int k = 0; k < K; k++) {
        C[k * K + k] = 1;
        C[(K + k) * K + k] = -1;
    }
    long looser = 0;
    double wc = 0, wi = 0;
    int err = 0;
    for (int b = 0; b < n_boxes && !err; b++) {
        for (int j = 0; j < D; j++) {
            float c = urand(&r, -1, 1), w = urand(&r, 0, 0.3f);
            lo[j] = c - w;
            hi[j] = c + w;
        }
        err |= sk_certify_spec_bounds(m, lo, hi, 1, C, 2 * K, NULL, lb) != SK_OK;
        err |= sk_certify_bounds(m, SK_CERTIFY_IBP, lo, hi, 1, il, ih) != SK_OK;
        for (int k = 0; k < K && !err; k++) {
            float cl = lb[k], ch = -lb[K + k];
            looser += cl < il[k] - 1e-5f * (1 + fabsf(il[k])) || ch > ih[k] + 1e-5f * (1 + fabsf(ih[k]));
            wc += ch - cl;
            wi += ih[k] - il[k];
        }
    }
    CHECK(!err, "%s: %s", spec, sk_last_error());
    CHECK(looser == 0, "%s: CROWN never looser than IBP (%ld bounds looser)", spec, looser);
    CHECK(wc < wi, "%s: CROWN mean width %.4g below IBP's %.4g", spec, wc / (n_boxes * K), wi / (n_boxes * K));
    free(lo);
    free(hi);
    free(C);
    free(lb);
    free(il);
    free(ih);
    sk_model_free(m);
}

/* ---------------- branch and bound against a grid ---------------- */

/* Branch and bound's variants: subdomains per round (0: the default) and
 * sound floating point (every domain bounded alone, not batched). */
static int g_batch;
static bool g_sound;
static bool g_child_intervals; /* children's intermediate boxes by intervals through the split alone */
static float g_decay;          /* branch_decay (0: the default) */
static bool g_refine;          /* refine the relu layers' bounds by branch and bound first (the default) */

/* One disjunct, one row c·y <= d, over the box [-1,1]^2. */
static enum sk_certify_verdict verify_row(struct sk_model *m, const float *c, float d, bool pgd, int *n_bab,
                                          long *domains)
{
    float lo[2] = { -1, -1 }, hi[2] = { 1, 1 };
    int disj[2] = { 0, 1 };
    struct sk_certify_property p = { .n_in = 2, .n_out = m->n_classes, .lo = lo, .hi = hi, .n_rows = 1, .c = c,
                                     .d = &d, .n_disj = 1, .disj = disj };
    struct sk_certify_verify_config cfg = sk_certify_verify_defaults();
    cfg.timeout_s = 60;
    cfg.pgd_restarts = pgd ? 3 : 0;
    cfg.alpha_iters = 10;
    if (g_batch) cfg.batch = g_batch;
    cfg.sound_fp = g_sound;
    cfg.child_crown = !g_child_intervals;
    if (g_decay > 0) cfg.branch_decay = g_decay;
    if (!g_refine) cfg.refine_layers = 0; /* else the refinement alone decides most of these small nets */
    struct sk_certify_verify_report rep;
    float x[2], y[8];
    int rc = sk_certify_verify(m, &p, &cfg, &rep, x, y);
    CHECK(rc == SK_OK, "verify: %s", sk_last_error());
    if (rep.verdict == SK_VERDICT_SAT) {
        double v = -d;
        for (int k = 0; k < m->n_classes; k++) v += (double)c[k] * y[k];
        float z[8];
        sk_model_logits(m, x, 1, z);
        CHECK(x[0] >= -1 && x[0] <= 1 && x[1] >= -1 && x[1] <= 1 && v <= 0 && memcmp(z, y, sizeof(float) * 2) == 0,
              "counterexample (%g, %g) inside the box and meeting c.y <= d (c.y - d = %g)", x[0], x[1], v);
    }
    if (!strcmp(rep.stage, "bab")) (*n_bab)++;
    *domains += rep.domains;
    return rep.verdict;
}

static void check_bab_grid(const char *spec, int n_nets)
{
    int agree = 0, total = 0, n_bab = 0, sat_bab = 0;
    long domains = 0;
    for (int t = 0; t < n_nets; t++) {
        struct sk_model *m = random_model(spec, 100 + (uint64_t)t);
        if (!m) return;
        int K = m->n_classes;
        float c[8] = { 0 };
        c[0] = 1;
        c[1] = -1;
        /* a grid of G x G points: min and a Lipschitz bound of the row */
        int G = 401;
        float *x = malloc(sizeof(float) * 2 * G * G), *z = malloc(sizeof(float) * K * G * G);
        for (int a = 0; a < G; a++)
            for (int b = 0; b < G; b++) {
                x[2 * (a * G + b)] = -1 + 2.0f * a / (G - 1);
                x[2 * (a * G + b) + 1] = -1 + 2.0f * b / (G - 1);
            }
        sk_model_logits(m, x, G * G, z);
        double gmin = INFINITY, gmax = -INFINITY;
        for (int i = 0; i < G * G; i++) {
            double v = (double)z[i * K] - z[i * K + 1];
            gmin = v < gmin ? v : gmin;
            gmax = v > gmax ? v : gmax;
        }
        /* Lipschitz constant (inf -> 1 norm is enough on a grid: |dx|_inf <= h/2 to the nearest point) */
        double L = 1;
        for (int li = 0; li < m->n_layers; li++) {
            const struct sk_layer *Ly = &m->layers[li];
            if (Ly->kind != SK_LAYER_DENSE) continue;
            double nm = 0; /* max row sum of |W| (inf norm) */
            for (int o = 0; o < Ly->units; o++) {
                double s = 0;
                for (int i = 0; i < Ly->in[0]; i++) s += fabs(m->params[Ly->w_off + (size_t)o * Ly->in[0] + i]);
                nm = s > nm ? s : nm;
            }
            L *= nm;
        }
        L *= 2; /* the row y0 - y1 */
        double h = 2.0 / (G - 1), gap = L * h / 2 + 1e-4;
        double range = gmax - gmin;
        /* holds: d below every value the box takes; violated: d above a grid value */
        float d_unsat = (float)(gmin - gap - 0.01 * range), d_sat = (float)(gmin + 0.02 * range);
        enum sk_certify_verdict v1 = verify_row(m, c, d_unsat, true, &n_bab, &domains);
        int before = n_bab;
        enum sk_certify_verdict v2 = verify_row(m, c, d_sat, false, &n_bab, &domains);
        sat_bab += n_bab > before;
        agree += v1 == SK_VERDICT_UNSAT;
        agree += v2 == SK_VERDICT_SAT;
        total += 2;
        if (v1 != SK_VERDICT_UNSAT || v2 != SK_VERDICT_SAT)
            fprintf(stderr, "  %s net %d: grid min %.5g, gap %.3g: d=%.5g -> %s (want unsat), d=%.5g -> %s (want sat)\n",
                    spec, t, gmin, gap, d_unsat, sk_certify_verdict_name(v1), d_sat, sk_certify_verdict_name(v2));
        free(x);
        free(z);
        sk_model_free(m);
    }
    CHECK(agree == total, "%s: branch and bound agrees with the grid on %d of %d properties", spec, agree, total);
    CHECK(n_bab > 0 || g_refine, "%s: some properties needed branch and bound (%d)", spec, n_bab);
    printf("%s: %d/%d verdicts equal the grid's, %d decided by branch and bound (%d counterexamples found by it "
           "without PGD), %ld subdomains\n", spec, agree, total, n_bab, sat_bab, domains);
}

/* Relu-input bounds refined by branch and bound (sk_certify_relu_bounds):
 * every sampled point's pre-activations inside them (uniform points and
 * corners of the box, where the extremes of a relu network's layers tend to
 * be), never looser than α-CROWN's, and tighter in total on most boxes. */
static void check_relu_bounds(const char *spec, int n_boxes)
{
    int tighter = 0, looser = 0, outside = 0, unstable0 = 0, unstable1 = 0;
    long checked = 0;
    double w0 = 0, w1 = 0;
    for (int t = 0; t < n_boxes; t++) {
        struct sk_model *m = random_model(spec, 300 + (uint64_t)t);
        if (!m) return;
        int D = m->in_dim, n = 0;
        struct sk_rng r = sk_rng_new(900 + (uint64_t)t);
        float lo[16], hi[16], x[16], a[64], b[64];
        for (int j = 0; j < D; j++) {
            float c = urand(&r, -1, 1), rad = urand(&r, 0.1f, 0.5f);
            lo[j] = c - rad;
            hi[j] = c + rad;
        }
        int rc = sk_certify_relu_bounds(m, lo, hi, 0, 0, NULL, NULL, &n);
        CHECK(rc == SK_OK && n > 0 && n <= 256, "%s: relu count %d (%s)", spec, n, sk_last_error());
        float *z0lo = malloc(sizeof(float) * (size_t)n * 4), *z0hi = z0lo + n, *zlo = z0lo + 2 * n, *zhi = z0lo + 3 * n;
        rc = sk_certify_relu_bounds(m, lo, hi, 0, 0, z0lo, z0hi, &n);
        if (rc == SK_OK) rc = sk_certify_relu_bounds(m, lo, hi, 8, 60, zlo, zhi, &n);
        CHECK(rc == SK_OK, "%s: relu bounds: %s", spec, sk_last_error());
        double s0 = 0, s1 = 0;
        for (int g = 0; g < n && rc == SK_OK; g++) {
            float tl = 1e-4f * (1 + fabsf(z0lo[g]) + fabsf(z0hi[g]));
            looser += zlo[g] < z0lo[g] - tl || zhi[g] > z0hi[g] + tl;
            s0 += z0hi[g] - z0lo[g];
            s1 += zhi[g] - zlo[g];
            unstable0 += z0lo[g] < 0 && z0hi[g] > 0;
            unstable1 += zlo[g] < 0 && zhi[g] > 0;
        }
        w0 += s0;
        w1 += s1;
        tighter += s1 < s0 - 1e-3 * (1 + s0);
        /* the pre-activations of 4000 points, by hand through the dense and relu layers */
        for (int k = 0; k < 4000 && rc == SK_OK; k++) {
            for (int j = 0; j < D; j++)
                x[j] = k % 2 ? (sk_rng_uniform(&r) < 0.5f ? lo[j] : hi[j]) : urand(&r, lo[j], hi[j]);
            memcpy(a, x, sizeof(float) * (size_t)D);
            int da = D, g = 0;
            for (int li = 0; li < m->n_layers; li++) {
                const struct sk_layer *L = &m->layers[li];
                if (L->kind == SK_LAYER_DENSE) {
                    for (int o = 0; o < L->units; o++) {
                        double v = m->params[L->b_off + o];
                        for (int i = 0; i < da; i++) v += (double)m->params[L->w_off + (size_t)o * da + i] * a[i];
                        b[o] = (float)v;
                    }
                    da = L->units;
                    memcpy(a, b, sizeof(float) * (size_t)da);
                } else if (L->kind == SK_LAYER_RELU) {
                    for (int i = 0; i < da; i++, g++) {
                        float tl = 1e-4f * (1 + fabsf(a[i]));
                        outside += a[i] < zlo[g] - tl || a[i] > zhi[g] + tl;
                        a[i] = a[i] > 0 ? a[i] : 0;
                    }
                    checked += da;
                }
            }
        }
        free(z0lo);
        sk_model_free(m);
    }
    CHECK(outside == 0, "%s: %d of %ld sampled pre-activations outside the refined bounds", spec, outside, checked);
    CHECK(looser == 0, "%s: %d refined bounds looser than alpha-CROWN's", spec, looser);
    CHECK(tighter * 2 > n_boxes && w1 < 0.95 * w0,
          "%s: refined bounds tighter in total on %d of %d boxes (widths %.1f vs %.1f)", spec, tighter, n_boxes, w1,
          w0);
    printf("%s: %ld sampled pre-activations inside the refined relu bounds; total width %.1f -> %.1f, unstable "
           "%d -> %d, tighter on %d of %d boxes\n",
           spec, checked, w0, w1, unstable0, unstable1, tighter, n_boxes);
}

/* A property of two disjuncts, one of them violated: sat, with the
 * counterexample meeting that disjunct; the same property without it: unsat
 * when the other disjunct cannot hold. */
static void check_disjunction(void)
{
    struct sk_model *m = random_model("mlp:3-10-10-3:relu", 42);
    if (!m) return;
    float lo[3] = { -0.2f, -0.2f, -0.2f }, hi[3] = { 0.2f, 0.2f, 0.2f };
    /* the logits' range over the box by sampling */
    struct sk_rng r = sk_rng_new(1);
    float x[3 * 512], z[3 * 512];
    for (int i = 0; i < 3 * 512; i++) x[i] = urand(&r, -0.2f, 0.2f);
    sk_model_logits(m, x, 512, z);
    float mx0 = -INFINITY, mn0 = INFINITY;
    for (int i = 0; i < 512; i++) {
        mx0 = z[3 * i] > mx0 ? z[3 * i] : mx0;
        mn0 = z[3 * i] < mn0 ? z[3 * i] : mn0;
    }
    float lb;
    float e0[3] = { 1, 0, 0 };
    sk_certify_spec_bounds(m, lo, hi, 1, e0, 1, NULL, &lb);
    /* disjunct 0: y0 <= lb - 1 (impossible); disjunct 1: y0 >= mx0 - small and y0 <= mx0 (a sampled value) */
    float c[9] = { 1, 0, 0, -1, 0, 0, 1, 0, 0 };
    float d[3] = { lb - 1, -(mx0 - 0.05f * (mx0 - mn0)), mx0 };
    int disj[3] = { 0, 1, 3 };
    struct sk_certify_property p = { .n_in = 3, .n_out = 3, .lo = lo, .hi = hi, .n_rows = 3, .c = c, .d = d,
                                     .n_disj = 2, .disj = disj };
    struct sk_certify_verify_report rep;
    float cx[3], cy[3];
    int rc = sk_certify_verify(m, &p, NULL, &rep, cx, cy);
    bool holds = false;
    int dj = -1;
    if (rc == SK_OK && rep.verdict == SK_VERDICT_SAT) sk_certify_property_check(m, &p, cx, 0, &holds, NULL, &dj);
    CHECK(rc == SK_OK && rep.verdict == SK_VERDICT_SAT && holds && dj == 1 && rep.disjunct == 1,
          "two disjuncts, the second reachable: %s (stage %s, disjunct %d, rechecked %d)",
          sk_certify_verdict_name(rep.verdict), rep.stage, rep.disjunct, holds);
    p.n_disj = 1;
    p.n_rows = 1;
    disj[1] = 1;
    rc = sk_certify_verify(m, &p, NULL, &rep, cx, cy);
    CHECK(rc == SK_OK && rep.verdict == SK_VERDICT_UNSAT, "the unreachable disjunct alone: %s (%s)",
          sk_certify_verdict_name(rep.verdict), rep.stage);
    /* a property that does not fit the model is an error */
    p.n_out = 4;
    rc = sk_certify_verify(m, &p, NULL, &rep, cx, cy);
    CHECK(rc == SK_EINVAL && rep.verdict == SK_VERDICT_ERROR && strstr(sk_last_error(), "outputs"),
          "a property of 4 outputs on a 3-class model: error (%s)", sk_last_error());
    sk_model_free(m);
}

/* The command line: verdict words, the counterexample file, the runner's CSV. */
static void write_prop(const char *name, float d)
{
    char t[1024];
    int n = snprintf(t, sizeof t,
                     "; y0 - y1 <= d over [-1,1]^2\n(declare-const X_0 Real)\n(declare-const X_1 Real)\n"
                     "(declare-const Y_0 Real)\n(declare-const Y_1 Real)\n(assert (<= X_0 1.0))\n(assert (>= X_0 -1.0))\n"
                     "(assert (<= X_1 1.0))\n(assert (>= X_1 -1.0))\n(assert (<= (- Y_0 Y_1) %.9g))\n",
                     (double)d);
    sk_test_write(sk_test_path(name), t, (size_t)n);
}

static void check_cli(void)
{
    struct sk_model *m = random_model("mlp:2-8-8-2:relu", 7);
    if (!m) return;
    int rc = sk_model_save(m, sk_test_path("net.safetensors"), NULL);
    CHECK(rc == SK_OK, "save: %s", sk_last_error());
    float x0[2] = { 0, 0 }, z[2], lo[2] = { -1, -1 }, hi[2] = { 1, 1 }, c[2] = { 1, -1 }, lb;
    sk_model_logits(m, x0, 1, z);
    sk_certify_spec_bounds(m, lo, hi, 1, c, 1, NULL, &lb);
    write_prop("sat.vnnlib", z[0] - z[1] + 0.01f); /* the centre meets it */
    write_prop("unsat.vnnlib", lb - 1.0f);         /* below CROWN's bound */
    int e = sk_cli_run("verify --model net.safetensors --vnnlib sat.vnnlib --timeout 10 --cex cex.txt");
    CHECK(e == 0 && !strcmp(sk_cli_out, "sat\n"), "verify prints sat (exit %d, '%s' %s)", e, sk_cli_out, sk_cli_err);
    char buf[4096];
    sk_test_slurp(sk_test_path("cex.txt"), buf, sizeof buf);
    double xv[2] = { 9, 9 }, yv[2] = { 9, 9 };
    int got = sscanf(buf, "((X_0 %lf)\n(X_1 %lf)\n(Y_0 %lf)\n(Y_1 %lf))", &xv[0], &xv[1], &yv[0], &yv[1]);
    float xf[2] = { (float)xv[0], (float)xv[1] }, zf[2];
    sk_model_logits(m, xf, 1, zf);
    CHECK(got == 4 && fabs(xv[0]) <= 1 && fabs(xv[1]) <= 1 && zf[0] - zf[1] <= z[0] - z[1] + 0.01f + 1e-6f &&
              fabs(yv[0] - zf[0]) < 1e-6 && fabs(yv[1] - zf[1]) < 1e-6,
          "the counterexample file ((X_0 v) ... (Y_1 v)) holds a point of the box meeting the property (%d values: '%.80s')",
          got, buf);
    e = sk_cli_run("verify --model net.safetensors --vnnlib unsat.vnnlib --timeout 10");
    CHECK(e == 0 && !strcmp(sk_cli_out, "unsat\n"), "verify prints unsat (exit %d, '%s')", e, sk_cli_out);
    const char *inst = "net.safetensors,sat.vnnlib,10\nnet.safetensors,unsat.vnnlib,10\n";
    sk_test_write(sk_test_path("instances.csv"), inst, strlen(inst));
    e = sk_cli_run("verify --instances instances.csv --out results.csv");
    sk_test_slurp(sk_test_path("results.csv"), buf, sizeof buf);
    CHECK(e == 0 && !strncmp(buf, "onnx,vnnlib,result,time_s,raw_result,prepare_s\nnet.safetensors,sat.vnnlib,sat,", 78) &&
              strstr(buf, "\nnet.safetensors,unsat.vnnlib,unsat,"),
          "the runner writes VNN-COMP's columns (exit %d): %.200s", e, buf);
    e = sk_cli_run("verify --model net.safetensors --vnnlib missing.vnnlib --timeout 10");
    CHECK(e == 1 && !strcmp(sk_cli_out, "error\n") && strstr(sk_cli_err, "missing.vnnlib"),
          "a missing property: error, naming the file (exit %d, '%s')", e, sk_cli_err);
    sk_model_free(m);
}

/* ---------------- VNN-COMP mnist_fc ---------------- */

static const char *mnistfc_dir(void)
{
    static char dir[4096];
    const char *e = getenv("SKEPTIC_BENCHMARKS"), *src = getenv("SKEPTIC_SOURCE_DIR");
    if (e) snprintf(dir, sizeof dir, "%s/vnncomp-mnistfc", e);
    else snprintf(dir, sizeof dir, "%s/../shared/benchmarks/vnncomp-mnistfc", src ? src : "..");
    struct stat sb;
    /* a clone outside the workspace: the workspace's shared folder */
    if (!e && stat(dir, &sb) != 0) snprintf(dir, sizeof dir, "/work/shared/benchmarks/vnncomp-mnistfc");
    return dir;
}

/* On the 256x2 net: attack --property finds a counterexample of prop_1_0.03
 * (one of MN-BaB's 18), saved and re-checked here against the file; none
 * for prop_0_0.03, which verify proves; and verify decides prop_14_0.05
 * (unsat) by branch and bound. */
static void check_mnistfc(void)
{
    const char *dir = mnistfc_dir();
    struct stat sb;
    CHECK(stat(dir, &sb) == 0, "the VNN-COMP mnist_fc files are missing: %s (set SKEPTIC_BENCHMARKS)", dir);
    if (stat(dir, &sb)) return;
    char net[4200], prop[4200], cmd[9000];
    snprintf(net, sizeof net, "%s/onnx/mnist-net_256x2.onnx", dir);
    snprintf(prop, sizeof prop, "%s/vnnlib/prop_1_0.03.vnnlib", dir);
    snprintf(cmd, sizeof cmd, "attack --model %s --property %s --save-adv adv.npy --json", net, prop);
    int e = sk_cli_run(cmd);
    cJSON *j = sk_cli_json();
    CHECK(e == 0 && j && !strcmp(sk_json_str(j, "result"), "violated") && sk_json_num(j, "margin") >= 0,
          "attack --property finds a counterexample of prop_1_0.03 (exit %d: %.300s %.300s)", e, sk_cli_out, sk_cli_err);
    cJSON_Delete(j);
    struct sk_model *m = sk_model_load(net, NULL, NULL);
    struct sk_vnnlib *v = sk_certify_vnnlib_read(prop);
    int nd = 0;
    long shape[4];
    float *x = sk_npy_read(sk_test_path("adv.npy"), &nd, shape);
    CHECK(m && v && x && nd == 2 && shape[0] == 1 && shape[1] == 784, "the saved point reads back as [1, 784] (%s)",
          sk_last_error());
    if (m && v && x && shape[1] == 784) {
        float y[10];
        sk_model_logits(m, x, 1, y);
        CHECK(sk_certify_vnnlib_in_box(v, x, 1e-6) && sk_certify_vnnlib_satisfied(v, y, 0),
              "the saved point lies in the box and its logits meet the property");
    }
    sk_free(x);
    sk_certify_vnnlib_free(v);
    sk_model_free(m);
    snprintf(cmd, sizeof cmd, "attack --model %s --property %s/vnnlib/prop_0_0.03.vnnlib", net, dir);
    e = sk_cli_run(cmd);
    CHECK(e == 0 && !strncmp(sk_cli_out, "not found:", 10), "no counterexample of prop_0_0.03 (exit %d: %.200s)", e,
          sk_cli_out);
    snprintf(cmd, sizeof cmd,
             "verify --model %s --vnnlib %s/vnnlib/prop_14_0.05.vnnlib --timeout 120 --refine-layers 0 --json", net, dir);
    e = sk_cli_run(cmd);
    j = sk_cli_json();
    CHECK(e == 0 && j && !strcmp(sk_json_str(j, "result"), "unsat") && !strcmp(sk_json_str(j, "stage"), "bab") &&
              sk_json_num(j, "domains") > 0,
          "verify proves prop_14_0.05 on 256x2 by branch and bound (exit %d: %.300s)", e, sk_cli_out);
    cJSON_Delete(j);
    /* by default the second layer's bounds are refined first, which decides it before branching */
    snprintf(cmd, sizeof cmd, "verify --model %s --vnnlib %s/vnnlib/prop_14_0.05.vnnlib --timeout 120 --json", net, dir);
    e = sk_cli_run(cmd);
    j = sk_cli_json();
    CHECK(e == 0 && j && !strcmp(sk_json_str(j, "result"), "unsat") && sk_json_num(j, "domains") > 0,
          "verify proves prop_14_0.05 on 256x2 with the refined bounds (exit %d: %.300s)", e, sk_cli_out);
    cJSON_Delete(j);
    snprintf(cmd, sizeof cmd, "verify --model %s --vnnlib %s/vnnlib/prop_14_0.05.vnnlib --refine-layers -2", net, dir);
    e = sk_cli_run(cmd);
    CHECK(e != 0 && strstr(sk_cli_err, "--refine-layers"), "a negative --refine-layers is refused (exit %d: %.200s)",
          e, sk_cli_err);
}

int main(void)
{
    sk_set_threads(2);
    check_spec_sound("mlp:6-12-12-4:relu", false, 160);
    check_spec_sound("mlp:6-12-12-4:relu", true, 80);
    check_spec_sound("seq:5-dense8-lrelu0.1-dense8-lrelu-dense3", false, 120);
    check_spec_sound("seq:5-dense8-lrelu1.5-dense3", false, 80);
    check_spec_sound("seq:5-dense8-tanh-dense8-sigmoid-dense3", false, 120);
    check_spec_sound("seq:5-dense8-softplus-dense8-gelu-dense3", false, 120);
    check_spec_sound("seq:5-dense8-bn-relu-dropout0.3-dense3", false, 120);
    check_spec_sound("cnn:1x6x6-conv3k3p1-relu-maxpool2-flatten-dense3", false, 120);
    check_spec_sound("cnn:1x6x6-conv3k3p1-relu-maxpool2s1-flatten-dense3", false, 80);
    check_spec_sound("cnn:2x6x6-conv3k3s2p1-bn-relu-avgpool2-flatten-dense5-tanh-dense3", false, 120);
    check_spec_sound("cnn:1x6x6-conv4k3-gelu-gap-dense3", false, 120);
    check_vs_ibp("mlp:6-16-16-4:relu", 100);
    check_vs_ibp("cnn:1x6x6-conv3k3p1-relu-maxpool2-flatten-dense8-relu-dense3", 100);
    check_vs_ibp("cnn:2x6x6-conv3k3s2p1-bn-relu-avgpool2-flatten-dense5-sigmoid-dense3", 100);
    check_relu_bounds("mlp:3-12-12-12-12-2:relu", 24);
    check_bab_grid("mlp:2-12-12-2:relu", 4);
    check_bab_grid("mlp:2-8-8-8-2:relu", 2);
    check_bab_grid("mlp:2-8-8-8-8-2:relu", 2);
    g_batch = 1; /* one subdomain per round: the same verdicts */
    check_bab_grid("mlp:2-12-12-2:relu", 2);
    g_batch = 0;
    g_sound = true; /* the path of one domain at a time */
    check_bab_grid("mlp:2-8-8-8-2:relu", 2);
    g_sound = false;
    /* children re-bounded by intervals only, and branching by the score alone or strongly by layer */
    g_child_intervals = true;
    g_decay = 1;
    check_bab_grid("mlp:2-8-8-8-8-2:relu", 2);
    g_child_intervals = false;
    g_decay = 64;
    check_bab_grid("mlp:2-8-8-8-8-2:relu", 2);
    g_decay = 0;
    /* the defaults: the relu layers' bounds refined by branch and bound before it */
    g_refine = true;
    check_bab_grid("mlp:2-8-8-8-8-2:relu", 3);
    check_bab_grid("mlp:2-12-12-2:relu", 2);
    g_refine = false;
    check_mnistfc();
    check_disjunction();
    check_cli();
    return sk_test_finish("test_verify");
}
