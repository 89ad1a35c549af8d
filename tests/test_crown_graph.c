/* CROWN and α-CROWN on graph models (residual add, channel concat): bounds
 * of random specification rows over random boxes contain C·y of sampled
 * points (corners and uniform), with and without the interval intersection,
 * on dense and conv graphs with batch norm, pooling and global average
 * pooling; α-CROWN never below CROWN; the logit bounds never looser than
 * IBP's and tighter on average; a chain written with labels bounded bit for
 * bit as the chain, and a residual branch of zero weights as the chain
 * without it; sound floating point bounds below the exact (long double)
 * margins of a residual network whose rounding decides; certify and the
 * Lipschitz bound on a graph; branch and bound's verdicts equal to an
 * exhaustive grid's on residual and concat ReLU networks of two inputs. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

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

/* Graphs of every join and layer kind the bounds take. */
static const char *graph_specs[] = {
    /* residual MLP, and one whose add reads one output twice */
    "seq:6-dense8-relu=a-dense8-relu-dense8-add@a-relu-dense3",
    "seq:5-dense6-lrelu0.1=a-add@a@a-dense6-tanh-dense3",
    /* concatenation of vectors, first input not the previous output */
    "seq:6-dense8-relu=a-dense5-sigmoid=b-dense4@a-relu=c-cat@b@c-dense3",
    /* ResNet basic block with batch norm and global average pooling */
    "seq:2x6x6-conv4k3p1-bn-relu=a-conv4k3p1-bn-relu-conv4k3p1-bn-add@a-relu-gap-dense3",
    /* a projection shortcut with stride, then flatten */
    "seq:1x6x6-conv3k3p1-relu=a-conv4k3s2p1-bn-relu-conv4k3p1=c-conv4k1s2@a-bn-add@c-relu-flatten-dense3",
    /* DenseNet-style channel concatenation, max and average pooling, softplus */
    "seq:2x6x6-conv3k3p1-relu=a-conv2k3p1-softplus-cat@a-maxpool2-conv3k3p1-relu=b-conv2k3p1-tanh-cat@b-avgpool3-flatten-dense3",
};
#define N_GRAPHS (int)(sizeof graph_specs / sizeof graph_specs[0])

/* Bounds of S random rows over n_boxes random boxes, CROWN and α-CROWN,
 * with_ibp as given: every sampled C·y above them; α-CROWN >= CROWN. */
static void check_sound(const char *spec, bool with_ibp, int n_boxes, long *n_checked)
{
    struct sk_model *m = random_model(spec, 11);
    if (!m) return;
    CHECK(!sk_model_is_chain(m), "%s is a graph", spec);
    int D = m->in_dim, K = m->n_classes, S = 3, P = 40;
    struct sk_rng r = sk_rng_new(5);
    float *lo = malloc(sizeof(float) * D), *hi = malloc(sizeof(float) * D), *x = malloc(sizeof(float) * D * P);
    float *C = malloc(sizeof(float) * S * K), *lc = malloc(sizeof(float) * S), *la = malloc(sizeof(float) * S);
    float *z = malloc(sizeof(float) * K * P);
    struct sk_certify_crown_config cc = sk_certify_crown_defaults(), ca;
    cc.with_ibp = with_ibp;
    ca = cc;
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
                double gap = fmax((double)la[s] - v, (double)lc[s] - v);
                if (gap > 1e-5 * (1 + fabs(v))) bad++;
                worst = fmax(worst, gap);
                checked++;
            }
    }
    CHECK(!err, "%s: bounds failed: %s", spec, sk_last_error());
    CHECK(bad == 0, "%s%s: CROWN / alpha-CROWN sound on %d boxes (%ld of %ld samples outside, worst by %.3g)", spec,
          with_ibp ? "" : " (no intervals)", n_boxes, bad, checked, worst);
    CHECK(worse == 0, "%s: alpha-CROWN never below CROWN (%ld rows below)", spec, worse);
    printf("%-100s %s %d boxes, %ld samples inside; alpha tighter on %ld of %d rows\n", spec,
           with_ibp ? "ibp+crown" : "crown    ", n_boxes, checked, tighter, n_boxes * S);
    *n_checked += checked;
    free(lo);
    free(hi);
    free(x);
    free(C);
    free(lc);
    free(la);
    free(z);
    sk_model_free(m);
}

/* The logit bounds (rows ±e_k) never looser than IBP's, and tighter on
 * average (IBP lets the two inputs of a join vary independently). */
static void check_vs_ibp(const char *spec, int n_boxes)
{
    struct sk_model *m = random_model(spec, 3);
    if (!m) return;
    int D = m->in_dim, K = m->n_classes;
    struct sk_rng r = sk_rng_new(9);
    float *lo = malloc(sizeof(float) * D), *hi = malloc(sizeof(float) * D), *C = calloc(2 * K * K, sizeof(float));
    float *lb = malloc(sizeof(float) * 2 * K), *il = malloc(sizeof(float) * K), *ih = malloc(sizeof(float) * K);
    float *cl = malloc(sizeof(float) * K), *ch = malloc(sizeof(float) * K);
    for (int k = 0; k < K; k++) {
        C[k * K + k] = 1;
        C[(K + k) * K + k] = -1;
    }
    long looser = 0, looser_m = 0;
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
        /* method crown's own logit bounds: the engine's and IBP's, elementwise */
        err |= sk_certify_bounds(m, SK_CERTIFY_CROWN, lo, hi, 1, cl, ch) != SK_OK;
        for (int k = 0; k < K && !err; k++) {
            float l = lb[k], u = -lb[K + k];
            looser += l < il[k] - 1e-5f * (1 + fabsf(il[k])) || u > ih[k] + 1e-5f * (1 + fabsf(ih[k]));
            looser_m += cl[k] < il[k] || ch[k] > ih[k] || cl[k] < l - 1e-6f * (1 + fabsf(l)) ||
                        ch[k] > u + 1e-6f * (1 + fabsf(u));
            wc += u - l;
            wi += ih[k] - il[k];
        }
    }
    CHECK(!err, "%s: %s", spec, sk_last_error());
    CHECK(looser == 0, "%s: CROWN never looser than IBP (%ld bounds looser)", spec, looser);
    CHECK(looser_m == 0, "%s: method crown's bounds within both CROWN's and IBP's (%ld not)", spec, looser_m);
    CHECK(wc < wi, "%s: CROWN mean width %.4g below IBP's %.4g", spec, wc / (n_boxes * K), wi / (n_boxes * K));
    printf("%-100s mean logit width: crown %.4g, ibp %.4g\n", spec, wc / (n_boxes * K), wi / (n_boxes * K));
    free(lo);
    free(hi);
    free(C);
    free(lb);
    free(il);
    free(ih);
    free(cl);
    free(ch);
    sk_model_free(m);
}

/* bounds of rows ±e_k (CROWN and α-CROWN, 6 steps) of one model over boxes */
static int logit_bounds(struct sk_model *m, const float *lo, const float *hi, int alpha_iters, float *lb)
{
    int K = m->n_classes;
    float *C = calloc((size_t)2 * K * K, sizeof(float));
    for (int k = 0; k < K; k++) {
        C[k * K + k] = 1;
        C[(K + k) * K + k] = -1;
    }
    struct sk_certify_crown_config cfg = sk_certify_crown_defaults();
    cfg.alpha_iters = alpha_iters;
    int rc = sk_certify_spec_bounds(m, lo, hi, 1, C, 2 * K, &cfg, lb);
    free(C);
    return rc;
}

/* A chain written with labels is the chain; a residual branch of zero
 * weights (y = f(x) + 0 x) bounds as the chain f. */
static void check_chain_equivalence(void)
{
    const char *plain = "seq:6-dense8-relu-dense8-relu-dense8-relu-dense3";
    const char *labelled = "seq:6=x-dense8@x=a-relu@a-dense8=b-relu@b-dense8-relu-dense3";
    const char *zero_branch = "seq:6-dense8-relu=a-dense8-relu-dense8=b-dense8@a-add@b-relu-dense3";
    struct sk_model *m = random_model(plain, 21), *ml = sk_model_from_spec(labelled), *mz = sk_model_from_spec(zero_branch);
    CHECK(ml && mz, "specs: %s", sk_last_error());
    if (!m || !ml || !mz) {
        sk_model_free(m);
        sk_model_free(ml);
        sk_model_free(mz);
        return;
    }
    CHECK(sk_model_is_chain(ml) && !sk_model_is_chain(mz), "labels alone make no graph; an add does");
    memcpy(ml->params, m->params, sizeof(float) * m->n_params);
    /* mz: layers 0..4 as the chain's, 5 (dense8@a) zero, 6 add, 7 relu, 8 dense3 = the chain's 6 */
    memset(mz->params, 0, sizeof(float) * mz->n_params);
    for (int li = 0; li < 5; li++) {
        const struct sk_layer *a = &m->layers[li], *b = &mz->layers[li];
        memcpy(mz->params + b->w_off, m->params + a->w_off, sizeof(float) * a->n_w);
        memcpy(mz->params + b->b_off, m->params + a->b_off, sizeof(float) * a->n_b);
    }
    memcpy(mz->params + mz->layers[8].w_off, m->params + m->layers[6].w_off, sizeof(float) * m->layers[6].n_w);
    memcpy(mz->params + mz->layers[8].b_off, m->params + m->layers[6].b_off, sizeof(float) * m->layers[6].n_b);
    int D = m->in_dim, K = m->n_classes;
    struct sk_rng r = sk_rng_new(4);
    float lo[6], hi[6], a[6], b[6], c[6];
    long differ_l = 0, n = 0;
    double worst_z = 0;
    int err = 0;
    for (int t = 0; t < 40 && !err; t++) {
        float rad = t % 2 ? 0.3f : 0.05f;
        for (int j = 0; j < D; j++) {
            float ce = urand(&r, -1, 1);
            lo[j] = ce - rad * urand(&r, 0, 1);
            hi[j] = ce + rad * urand(&r, 0, 1);
        }
        int it = t % 4 == 3 ? 6 : 0;
        err |= logit_bounds(m, lo, hi, it, a) || logit_bounds(ml, lo, hi, it, b) || logit_bounds(mz, lo, hi, it, c);
        for (int k = 0; k < 2 * K && !err; k++, n++) {
            differ_l += memcmp(&a[k], &b[k], sizeof(float)) != 0;
            worst_z = fmax(worst_z, fabs((double)a[k] - c[k]) / (1 + fabs((double)a[k])));
        }
    }
    CHECK(!err, "chain equivalence: %s", sk_last_error());
    CHECK(differ_l == 0, "labelled chain: %ld of %ld bounds differ from the chain's", differ_l, n);
    CHECK(worst_z < 1e-5, "zero residual branch: bounds within %.3g (relative) of the chain's", worst_z);
    printf("chain equivalence: %ld bounds; labelled identical, zero branch within %.2g\n", n, worst_z);
    sk_model_free(m);
    sk_model_free(ml);
    sk_model_free(mz);
}

/* ---------------- sound floating point ---------------- */

/* The exact margins z_y - z_j at x of a vector graph of dense, relu, add
 * and cat layers, in long double (float products exact, sums of a few
 * hundred terms within about 2^-60 of their magnitudes). */
static void exact_margins(const struct sk_model *m, const float *x, int y, long double *mg)
{
    enum { MAXL = 16, MAXD = 512 };
    static long double out[MAXL][MAXD];
    long double in[MAXD];
    for (int j = 0; j < m->in_dim; j++) in[j] = x[j];
    int li = 0;
    for (; li < m->n_layers; li++) {
        const struct sk_layer *L = &m->layers[li];
        const long double *a = L->from[0] < 0 ? in : out[L->from[0]];
        const long double *a2 = L->from[1] < 0 ? in : out[L->from[1]];
        int d = L->in[0], o = L->out[0];
        long double *z = out[li];
        if (L->kind == SK_LAYER_DENSE) {
            const float *W = m->params + L->w_off, *bb = m->params + L->b_off;
            for (int i = 0; i < o; i++) {
                long double s = bb[i];
                for (int j = 0; j < d; j++) s += (long double)W[(size_t)i * d + j] * a[j];
                z[i] = s;
            }
        } else if (L->kind == SK_LAYER_RELU) {
            for (int j = 0; j < d; j++) z[j] = a[j] > 0 ? a[j] : 0;
        } else if (L->kind == SK_LAYER_ADD) {
            for (int j = 0; j < d; j++) z[j] = a[j] + a2[j];
        } else if (L->kind == SK_LAYER_CAT) {
            for (int j = 0; j < d; j++) z[j] = a[j];
            for (int j = d; j < o; j++) z[j] = a2[j - d];
        }
    }
    const long double *f = out[li - 1];
    for (int j = 0; j < m->n_classes; j++) mg[j] = f[y] - f[j];
}

/* seq:D-denseH-relu=a-denseH-add@a-relu-cat@a-dense2 whose pre-activations
 * and margin are sums of terms of size ~1e3 that cancel to ~1e-3 at x:
 * float rounding of the products and of the coefficients (including the
 * sums where a branch joins the trunk) is far larger than the margin. */
static struct sk_model *cancelling_graph(int D, int H, uint64_t seed, const float *x)
{
    char spec[128];
    snprintf(spec, sizeof spec, "seq:%d-dense%d-relu=a-dense%d-add@a-relu-cat@a-dense2", D, H, H);
    struct sk_model *m = sk_model_from_spec(spec);
    if (!m) return NULL;
    struct sk_rng r = sk_rng_new(seed);
    const struct sk_layer *L0 = &m->layers[0], *L2 = &m->layers[2], *L6 = &m->layers[6];
    float *W0 = m->params + L0->w_off, *b0 = m->params + L0->b_off;
    float *W2 = m->params + L2->w_off, *b2 = m->params + L2->b_off;
    float *W6 = m->params + L6->w_off, *b6 = m->params + L6->b_off;
    for (int i = 0; i < H * D; i++) W0[i] = urand(&r, 100, 1000) * (sk_rng_uniform(&r) < 0.5f ? -1.0f : 1.0f);
    for (int i = 0; i < H * H; i++) W2[i] = urand(&r, 100, 1000) * (sk_rng_uniform(&r) < 0.5f ? -1.0f : 1.0f);
    for (int i = 0; i < 2 * 2 * H; i++) W6[i] = urand(&r, 100, 1000) * (i < 2 * H ? 1.0f : 0.37f);
    /* first layer: exact pre-activations 1e-3 (i + 1) at x */
    long double h[64], g[64];
    for (int i = 0; i < H; i++) {
        long double s = 0;
        for (int j = 0; j < D; j++) s += (long double)W0[(size_t)i * D + j] * x[j];
        b0[i] = (float)(-s + 1e-3L * (i + 1));
        s += b0[i];
        h[i] = s > 0 ? s : 0;
    }
    /* the branch cancels the trunk: h + W2 h + b2 near 2e-3 (i + 1) */
    for (int i = 0; i < H; i++) {
        long double s = h[i];
        for (int j = 0; j < H; j++) s += (long double)W2[(size_t)i * H + j] * h[j];
        b2[i] = (float)(-s + 2e-3L * (i + 1));
        s += b2[i];
        g[i] = s;
    }
    (void)g;
    b6[0] = b6[1] = 0;
    long double mg[2];
    exact_margins(m, x, 0, mg);
    b6[1] = (float)(mg[1] - 1e-4L);
    return m;
}

static void check_sound_fp(void)
{
    const enum sk_certify_method meths[3] = { SK_CERTIFY_IBP, SK_CERTIFY_CROWN, SK_CERTIFY_ALPHA_CROWN };
    int D = 200, H = 4;
    long plain_bad[3] = { 0 }, sound_bad[3] = { 0 }, checked = 0;
    double worst = 0;
    float x[200], xs[200];
    struct sk_rng r = sk_rng_new(3);
    for (int t = 0; t < 8; t++) {
        for (int j = 0; j < D; j++) x[j] = urand(&r, 0.5f, 1.0f);
        struct sk_model *m = cancelling_graph(D, H, 100 + (uint64_t)t, x);
        CHECK(m != NULL, "model: %s", sk_last_error());
        if (!m) return;
        float eps = t % 3 == 0 ? 0.0f : 1e-7f;
        for (int k = 0; k < 3; k++) {
            struct sk_certify_crown_config cfg = sk_certify_crown_defaults();
            float lp[2], ls[2];
            int y = 0;
            int rc = sk_certify_margins_cfg(m, meths[k], x, &y, 1, eps, NULL, &cfg, lp);
            cfg.sound_fp = true;
            int rs = sk_certify_margins_cfg(m, meths[k], x, &y, 1, eps, NULL, &cfg, ls);
            CHECK(rc == 0 && rs == 0, "%s: %s", sk_certify_method_name(meths[k]), sk_last_error());
            if (rc || rs) continue;
            for (int s = 0; s < 20; s++) {
                for (int j = 0; j < D; j++) {
                    float u = s == 0 ? 0.5f : s < 10 ? sk_rng_uniform(&r) : (sk_rng_uniform(&r) < 0.5f ? 0 : 1);
                    xs[j] = x[j] + (2 * u - 1) * eps;
                }
                long double mg[2];
                exact_margins(m, xs, 0, mg);
                checked++;
                plain_bad[k] += (long double)lp[1] > mg[1];
                if ((long double)ls[1] > mg[1]) {
                    sound_bad[k]++;
                    worst = fmax(worst, (double)((long double)ls[1] - mg[1]));
                }
            }
        }
        sk_model_free(m);
    }
    for (int k = 0; k < 3; k++)
        CHECK(sound_bad[k] == 0, "%s sound-fp on a residual graph: %ld of %ld exact margins below the bound (by %g)",
              sk_certify_method_name(meths[k]), sound_bad[k], checked / 3, worst);
    printf("sound fp on residual graphs: plain bounds above the exact margin at %ld / %ld / %ld of %ld points "
           "(ibp / crown / alpha-crown), sound at none\n", plain_bad[0], plain_bad[1], plain_bad[2], checked / 3);
}

/* certify by every method on a residual model: CROWN certifies at least what
 * IBP does; the Lipschitz bound of a graph is above the largest slope seen
 * between random pairs of points. */
static void check_certify_and_lipschitz(void)
{
    const char *spec = "seq:1x6x6-conv3k3p1-relu=a-conv3k3p1-relu-add@a=s-conv2k3p1@a-cat@s-gap-dense3";
    struct sk_model *m = random_model(spec, 5);
    if (!m) return;
    int N = 12, D = m->in_dim, K = m->n_classes;
    float *x = malloc(sizeof(float) * N * D), z[3];
    int y[12];
    struct sk_rng r = sk_rng_new(8);
    for (int i = 0; i < N * D; i++) x[i] = urand(&r, 0, 1);
    for (int n = 0; n < N; n++) {
        sk_model_logits(m, x + n * D, 1, z);
        y[n] = 0;
        for (int k = 1; k < K; k++)
            if (z[k] > z[y[n]]) y[n] = k;
    }
    struct sk_certify_report ri, rc, ra, rl;
    float eps = 0.04f;
    int e = sk_certify(m, SK_CERTIFY_IBP, x, y, N, eps, 0, 1, NULL, &ri);
    e |= sk_certify(m, SK_CERTIFY_CROWN, x, y, N, eps, 0, 1, NULL, &rc);
    e |= sk_certify(m, SK_CERTIFY_ALPHA_CROWN, x, y, N, eps, 0, 1, NULL, &ra);
    CHECK(e == 0, "certify on a graph: %s", sk_last_error());
    CHECK(rc.n_certified >= ri.n_certified && ra.n_certified >= rc.n_certified && rc.mean_margin_lo > ri.mean_margin_lo,
          "certified ibp %d, crown %d, alpha-crown %d; mean margin bound ibp %g, crown %g", ri.n_certified,
          rc.n_certified, ra.n_certified, ri.mean_margin_lo, rc.mean_margin_lo);
    printf("%s: eps %g certified ibp %d, crown %d, alpha-crown %d of %d; mean margin bound %.4g / %.4g / %.4g\n", spec,
           eps, ri.n_certified, rc.n_certified, ra.n_certified, N, ri.mean_margin_lo, rc.mean_margin_lo,
           ra.mean_margin_lo);
    double L = 0;
    bool proved = false;
    e = sk_certify_lipschitz_bound(m, 0, 1, NULL, NULL, &L, &proved);
    CHECK(e == 0 && isfinite(L) && L > 0, "Lipschitz bound of a graph: %s", e ? sk_last_error() : "not finite");
    /* the largest |f(u) - f(v)|_2 / |u - v|_2 over random close pairs stays below it */
    float *u = malloc(sizeof(float) * D), *v = malloc(sizeof(float) * D), zu[3], zv[3];
    double ratio = 0;
    for (int t = 0; t < 300; t++) {
        double du = 0, dz = 0;
        for (int j = 0; j < D; j++) {
            u[j] = urand(&r, 0, 1);
            v[j] = u[j] + urand(&r, -0.01f, 0.01f);
            du += ((double)u[j] - v[j]) * ((double)u[j] - v[j]);
        }
        sk_model_logits(m, u, 1, zu);
        sk_model_logits(m, v, 1, zv);
        for (int k = 0; k < K; k++) dz += ((double)zu[k] - zv[k]) * ((double)zu[k] - zv[k]);
        ratio = fmax(ratio, sqrt(dz / du));
    }
    CHECK(ratio <= L, "graph Lipschitz bound %g below a slope %g seen", L, ratio);
    printf("Lipschitz bound of the graph %.4g (%s), largest slope seen %.4g\n", L, proved ? "proved" : "estimate", ratio);
    rl.n = 0;
    e = sk_certify(m, SK_CERTIFY_LIPSCHITZ, x, y, N, eps, 0, 1, NULL, &rl);
    CHECK(e == 0 && rl.n == N, "certify --method lipschitz on a graph: %s", sk_last_error());
    free(u);
    free(v);
    free(x);
    sk_model_free(m);
}

/* ---------------- branch and bound on a graph against a grid ---------------- */

/* verify of c·y <= d over [-1,1]^2: the verdict; a counterexample is checked
 * to lie in the box and meet the row */
static enum sk_certify_verdict verify_row(struct sk_model *m, const float *c, float d, bool pgd, bool *bab)
{
    float lo[2] = { -1, -1 }, hi[2] = { 1, 1 };
    int disj[2] = { 0, 1 };
    struct sk_certify_property p = { .n_in = 2, .n_out = m->n_classes, .lo = lo, .hi = hi, .n_rows = 1, .c = c,
                                     .d = &d, .n_disj = 1, .disj = disj };
    struct sk_certify_verify_config cfg = sk_certify_verify_defaults();
    cfg.timeout_s = 60;
    cfg.pgd_restarts = pgd ? 3 : 0;
    cfg.alpha_iters = 10;
    struct sk_certify_verify_report rep;
    float x[2], y[8];
    int rc = sk_certify_verify(m, &p, &cfg, &rep, x, y);
    CHECK(rc == SK_OK, "verify on a graph: %s", sk_last_error());
    if (rc == SK_OK && rep.verdict == SK_VERDICT_SAT) {
        double v = -d;
        for (int k = 0; k < m->n_classes; k++) v += (double)c[k] * y[k];
        CHECK(x[0] >= -1 && x[0] <= 1 && x[1] >= -1 && x[1] <= 1 && v <= 0,
              "counterexample (%g, %g) inside the box and meeting c.y <= d (c.y - d = %g)", x[0], x[1], v);
    }
    *bab |= !strcmp(rep.stage, "bab");
    return rep.verdict;
}

/* On residual and concat ReLU networks of two inputs, branch and bound
 * proves y0 - y1 > d for d below the minimum over a grid fine enough to be
 * exact (the gap a proved Lipschitz bound allows between grid points) and
 * refutes it for d above a grid value. */
static void check_bab_grid(const char *spec, int n_nets)
{
    int agree = 0, total = 0, n_bab = 0;
    for (int t = 0; t < n_nets; t++) {
        struct sk_model *m = random_model(spec, 200 + (uint64_t)t);
        if (!m) return;
        int K = m->n_classes, G = 301;
        float c[8] = { 1, -1 };
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
            gmin = fmin(gmin, v);
            gmax = fmax(gmax, v);
        }
        /* every point is within h / sqrt 2 (L2) of a grid point; |y0 - y1| moves at most sqrt 2 L per unit */
        double L = 0;
        bool proved = false;
        CHECK(sk_certify_lipschitz_bound(m, 0, 1, NULL, NULL, &L, &proved) == SK_OK && proved, "Lipschitz: %s",
              sk_last_error());
        double h = 2.0 / (G - 1), gap = L * h * 1.01 + 1e-4, range = gmax - gmin;
        float d_unsat = (float)(gmin - gap - 0.01 * range), d_sat = (float)(gmin + 0.02 * range);
        bool b1 = false, b2 = false;
        enum sk_certify_verdict v1 = verify_row(m, c, d_unsat, true, &b1), v2 = verify_row(m, c, d_sat, false, &b2);
        agree += (v1 == SK_VERDICT_UNSAT) + (v2 == SK_VERDICT_SAT);
        total += 2;
        n_bab += b1 + b2;
        if (v1 != SK_VERDICT_UNSAT || v2 != SK_VERDICT_SAT)
            fprintf(stderr, "  %s net %d: grid min %.5g, gap %.3g: d=%.5g -> %s (want unsat), d=%.5g -> %s (want sat)\n",
                    spec, t, gmin, gap, d_unsat, sk_certify_verdict_name(v1), d_sat, sk_certify_verdict_name(v2));
        free(x);
        free(z);
        sk_model_free(m);
    }
    CHECK(agree == total, "%s: branch and bound agrees with the grid on %d of %d properties", spec, agree, total);
    CHECK(n_bab > 0, "%s: some properties needed branch and bound (%d)", spec, n_bab);
    printf("%s: %d/%d verdicts equal the grid's, %d decided by branch and bound\n", spec, agree, total, n_bab);
}

int main(void)
{
    long checked = 0;
    for (int i = 0; i < N_GRAPHS; i++) {
        check_sound(graph_specs[i], true, 20, &checked);
        check_sound(graph_specs[i], false, 10, &checked);
        check_vs_ibp(graph_specs[i], 10);
    }
    printf("%ld sampled points inside the bounds of %d graphs\n", checked, N_GRAPHS);
    check_chain_equivalence();
    check_sound_fp();
    check_certify_and_lipschitz();
    check_bab_grid("seq:2-dense12-relu=a-dense12-relu-add@a-dense12-relu-dense2", 4);
    check_bab_grid("seq:2-dense10-relu=a-dense6-relu-cat@a-dense10-relu-dense2", 4);
    return sk_test_finish("crown_graph");
}
