/* Certification: IBP bounds of every layer type sound on thousands of random
 * boxes and exact for a single linear layer; CROWN sound and at least as
 * tight as IBP on MLPs; the certified count of a hand-built network equals
 * exhaustive grid search; bounds contain the logits of PGD points; the
 * Lipschitz bound against closed forms and attacks; the IBP loss gradient. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "skeptic/skeptic.h"
#include "skeptic/certify.h"
#include "skeptic/robust.h"
#include "skeptic/attack.h"
#include "testutil.h"

/* logits of N rows (eval mode) */
static void logits(struct sk_model *m, const float *x, int N, float *z)
{
    struct sk_graph *g = sk_graph_new();
    sk_graph_set_param_grads(g, false);
    int shape[2] = { N, m->in_dim };
    int h = sk_model_forward(m, g, sk_graph_input(g, x, 2, shape, false), SK_MODE_EVAL, 0);
    SK_ASSERT(h >= 0);
    memcpy(z, sk_graph_value(g, h), sizeof(float) * (size_t)N * m->n_classes);
    sk_graph_free(g);
}

static float urand(struct sk_rng *r, float a, float b) { return a + (b - a) * sk_rng_uniform(r); }

static struct sk_model *random_model(const char *spec, uint64_t seed)
{
    struct sk_model *m = sk_model_from_spec(spec);
    CHECK(m != NULL, "spec %s: %s", spec, sk_last_error());
    if (!m) return NULL;
    sk_model_init(m, SK_INIT_HE_UNIFORM, seed);
    struct sk_rng r = sk_rng_new(seed + 99);
    /* random biases and batch-norm statistics so that nothing is trivially centred */
    for (int li = 0; li < m->n_layers; li++) {
        struct sk_layer *L = &m->layers[li];
        if (L->kind == SK_LAYER_DENSE || L->kind == SK_LAYER_CONV)
            for (size_t i = 0; i < L->n_b; i++) m->params[L->b_off + i] = urand(&r, -0.5f, 0.5f);
        if (L->kind == SK_LAYER_BATCHNORM)
            for (int c = 0; c < L->units; c++) {
                m->params[L->w_off + c] = urand(&r, -2, 2); /* negative gammas too */
                m->params[L->b_off + c] = urand(&r, -1, 1);
                m->buffers[L->rm_off + c] = urand(&r, -0.5f, 0.5f);
                m->buffers[L->rv_off + c] = urand(&r, 0.2f, 3);
            }
    }
    return m;
}

/* Sound on n_boxes random boxes: samples (uniform and corners) inside the bounds. */
static void check_sound(const char *spec, enum sk_certify_method method, int n_boxes, bool crown_only)
{
    struct sk_model *m = random_model(spec, 7);
    if (!m) return;
    int D = m->in_dim, K = m->n_classes, B = 100, S = 6;
    float *lo = malloc(sizeof(float) * B * D), *hi = malloc(sizeof(float) * B * D);
    float *zl = malloc(sizeof(float) * B * K), *zh = malloc(sizeof(float) * B * K);
    float *xs = malloc(sizeof(float) * B * S * D), *zs = malloc(sizeof(float) * B * S * K);
    struct sk_rng r = sk_rng_new(11);
    long bad = 0, checked = 0;
    double worst = 0;
    int rc = 0;
    for (int t = 0; t < n_boxes / B && rc == 0; t++) {
        for (int i = 0; i < B * D; i++) {
            float c = urand(&r, -1, 1), rad = urand(&r, 0, 0.5f) * (t % 3 == 0 ? 0.1f : 1.0f);
            lo[i] = c - rad;
            hi[i] = c + rad;
        }
        rc = crown_only ? sk_certify_bounds_crown_only(m, lo, hi, B, zl, zh)
                        : sk_certify_bounds(m, method, lo, hi, B, zl, zh);
        CHECK(rc == 0, "%s bounds of %s: %s", sk_certify_method_name(method), spec, sk_last_error());
        if (rc) break;
        for (int b = 0; b < B; b++)
            for (int s = 0; s < S; s++)
                for (int i = 0; i < D; i++) {
                    float u = sk_rng_uniform(&r);
                    /* half the samples are corners of the box */
                    if (s >= S / 2) u = u < 0.5f ? 0.0f : 1.0f;
                    xs[((size_t)b * S + s) * D + i] = lo[b * D + i] + u * (hi[b * D + i] - lo[b * D + i]);
                }
        logits(m, xs, B * S, zs);
        for (int b = 0; b < B; b++)
            for (int s = 0; s < S; s++)
                for (int k = 0; k < K; k++) {
                    float z = zs[((size_t)b * S + s) * K + k], l = zl[b * K + k], h = zh[b * K + k];
                    float tol = 1e-4f * (1 + fabsf(l) + fabsf(h));
                    checked++;
                    if (z < l - tol || z > h + tol) {
                        bad++;
                        double e = z < l ? l - z : z - h;
                        worst = e > worst ? e : worst;
                    }
                }
    }
    CHECK(bad == 0 && checked > 0,
          "%s%s bounds of %s sound on %d boxes: %ld of %ld sampled logits outside "
          "(worst by %g)",
          sk_certify_method_name(method), crown_only ? "-only" : "", spec, n_boxes, bad, checked, worst);
    free(lo), free(hi), free(zl), free(zh), free(xs), free(zs);
    sk_model_free(m);
}

static void test_layers_sound(void)
{
    const char *specs[] = {
        "mlp:8-5",
        "cnn:2x6x6-conv3k3s2p1-flatten",
        "cnn:2x7x7-conv3k3s1-flatten",
        "cnn:2x6x6-maxpool2-flatten",
        "cnn:2x7x7-maxpool3s2-flatten",
        "cnn:2x6x6-avgpool2-flatten",
        "cnn:2x6x6-avgpool3s1-flatten",
        "cnn:3x4x4-gap",
        "seq:6-relu",
        "seq:6-lrelu0.1",
        "seq:6-tanh",
        "seq:6-sigmoid",
        "seq:6-softplus",
        "seq:6-dropout0.5",
        "cnn:2x4x4-bn-flatten",
        "seq:5-bn",
        "cnn:1x8x8-conv4k3p1-bn-relu-maxpool2-conv4k3p1-tanh-avgpool2-flatten-dense6-sigmoid-dense3",
        "mlp:10-16-16-4:relu",
    };
    for (size_t i = 0; i < sizeof specs / sizeof *specs; i++) check_sound(specs[i], SK_CERTIFY_IBP, 2000, false);
    check_sound("mlp:10-16-16-4:relu", SK_CERTIFY_CROWN, 2000, false);
    check_sound("mlp:10-16-16-4:relu", SK_CERTIFY_CROWN, 2000, true);
    check_sound("mlp:6-12-12-12-3:lrelu", SK_CERTIFY_CROWN, 2000, true);
    check_sound("cnn:1x4x4-flatten-dense8-relu-dropout0.3-dense3", SK_CERTIFY_CROWN, 1000, false);

    /* GELU is not monotone: rejected with a clear message */
    struct sk_model *m = random_model("seq:4-gelu", 1);
    float lo[4] = { 0 }, hi[4] = { 1, 1, 1, 1 }, zl[4], zh[4];
    int rc = m ? sk_certify_bounds(m, SK_CERTIFY_IBP, lo, hi, 1, zl, zh) : -1;
    CHECK(rc == SK_EINVAL && strstr(sk_last_error(), "gelu"), "gelu rejected (%s)", sk_last_error());
    sk_model_free(m);
    m = random_model("cnn:1x6x6-conv2k3-flatten-dense3", 1);
    float l2[36] = { 0 }, h2[36], z3[3], z4[3];
    for (int i = 0; i < 36; i++) h2[i] = 1;
    /* CROWN takes every layer kind: on a CNN, within IBP's bounds */
    float z5[3], z6[3];
    rc = m ? sk_certify_bounds(m, SK_CERTIFY_CROWN, l2, h2, 1, z3, z4) : -1;
    if (rc == SK_OK) rc = sk_certify_bounds(m, SK_CERTIFY_IBP, l2, h2, 1, z5, z6);
    CHECK(rc == SK_OK && z3[0] >= z5[0] && z4[0] <= z6[0] && z3[2] >= z5[2] && z4[2] <= z6[2] && z3[1] <= z4[1],
          "CROWN on a CNN within IBP's bounds (%s)", rc ? sk_last_error() : "");
    sk_model_free(m);
}

/* A single linear layer: the bounds are attained at the corners. */
static void test_linear_exact(void)
{
    struct sk_model *m = random_model("mlp:9-4", 3);
    if (!m) return;
    int D = 9, K = 4;
    struct sk_rng r = sk_rng_new(5);
    double worst = 0;
    for (int t = 0; t < 200; t++) {
        float lo[9], hi[9], zl[4], zh[4], zc[4];
        for (int i = 0; i < D; i++) {
            float c = urand(&r, -1, 1), rad = urand(&r, 0, 0.3f);
            lo[i] = c - rad, hi[i] = c + rad;
        }
        for (int meth = 0; meth < 2; meth++) {
            sk_certify_bounds(m, (enum sk_certify_method)meth, lo, hi, 1, zl, zh);
            for (int k = 0; k < K; k++) {
                const float *W = m->params + m->layers[0].w_off + k * D;
                float xmax[9], xmin[9];
                for (int i = 0; i < D; i++) {
                    xmax[i] = W[i] >= 0 ? hi[i] : lo[i];
                    xmin[i] = W[i] >= 0 ? lo[i] : hi[i];
                }
                logits(m, xmax, 1, zc);
                double e1 = fabs(zc[k] - zh[k]);
                logits(m, xmin, 1, zc);
                double e2 = fabs(zc[k] - zl[k]);
                worst = fmax(worst, fmax(e1, e2));
            }
        }
    }
    CHECK(worst < 1e-5, "single linear layer: IBP and CROWN bounds equal the corner extremes (max gap %g)", worst);
    sk_model_free(m);
}

/* CROWN alone is at least as tight as IBP on MLPs (mean width), and the
 * combined method never looser anywhere. */
static void test_crown_tighter(void)
{
    const char *specs[] = { "mlp:10-32-32-5:relu", "mlp:20-50-50-50-10:relu", "mlp:8-16-16-4:lrelu" };
    for (size_t s = 0; s < 3; s++) {
        struct sk_model *m = random_model(specs[s], 21 + s);
        if (!m) continue;
        int D = m->in_dim, K = m->n_classes, B = 200;
        float *lo = malloc(sizeof(float) * B * D), *hi = malloc(sizeof(float) * B * D);
        float *il = malloc(sizeof(float) * B * K), *ih = malloc(sizeof(float) * B * K);
        float *cl = malloc(sizeof(float) * B * K), *ch = malloc(sizeof(float) * B * K);
        float *bl = malloc(sizeof(float) * B * K), *bh = malloc(sizeof(float) * B * K);
        struct sk_rng r = sk_rng_new(8);
        for (int i = 0; i < B * D; i++) {
            float c = urand(&r, 0, 1), rad = (i / D) % 2 ? 0.05f : 0.2f;
            lo[i] = c - rad, hi[i] = c + rad;
        }
        sk_certify_bounds(m, SK_CERTIFY_IBP, lo, hi, B, il, ih);
        sk_certify_bounds_crown_only(m, lo, hi, B, cl, ch);
        sk_certify_bounds(m, SK_CERTIFY_CROWN, lo, hi, B, bl, bh);
        double wi = 0, wc = 0, wb = 0;
        long looser = 0;
        for (int i = 0; i < B * K; i++) {
            wi += ih[i] - il[i];
            wc += ch[i] - cl[i];
            wb += bh[i] - bl[i];
            if (bl[i] < il[i] - 1e-5f * (1 + fabsf(il[i])) || bh[i] > ih[i] + 1e-5f * (1 + fabsf(ih[i]))) looser++;
        }
        CHECK(wc <= wi, "%s: CROWN alone mean width %.4g <= IBP %.4g", specs[s], wc / (B * K), wi / (B * K));
        CHECK(looser == 0 && wb <= wc + 1e-6 * B * K, "%s: CROWN (with IBP) never looser than IBP (%ld looser), "
              "mean width %.4g", specs[s], looser, wb / (B * K));
        /* margins too */
        int *y = malloc(sizeof(int) * B);
        float *x = malloc(sizeof(float) * B * D), *mi = malloc(sizeof(float) * B * K), *mc = malloc(sizeof(float) * B * K);
        for (int i = 0; i < B; i++) y[i] = i % K;
        for (int i = 0; i < B * D; i++) x[i] = urand(&r, 0, 1);
        sk_certify_margins(m, SK_CERTIFY_IBP, x, y, B, 0.05f, 0, 1, mi);
        sk_certify_margins(m, SK_CERTIFY_CROWN, x, y, B, 0.05f, 0, 1, mc);
        long worse = 0;
        for (int i = 0; i < B * K; i++) worse += mc[i] < mi[i];
        CHECK(worse == 0, "%s: CROWN margin bounds never below IBP's (%ld below)", specs[s], worse);
        free(y), free(x), free(mi), free(mc);
        free(lo), free(hi), free(il), free(ih), free(cl), free(ch), free(bl), free(bh);
        sk_model_free(m);
    }
}

/* A hand-built 2-D network whose certified count can be checked by
 * exhaustive search: hidden h1 = relu(x1 + .5), h2 = relu(x2 + .5) (active on
 * the box), h3 = relu(-x1 - x2 - .5) (dead); z0 = 2 h1 - 2 h2, z1 = 2 h2 - 2 h1,
 * z2 = 0.37. Class 0 iff x1 - x2 > 0.185, class 1 iff x2 - x1 > 0.185. */
static void test_grid(void)
{
    struct sk_model *m = sk_model_from_spec("mlp:2-3-3:relu");
    if (!m) return;
    float W1[6] = { 1, 0, 0, 1, -1, -1 }, b1[3] = { 0.5f, 0.5f, -0.5f };
    float W2[9] = { 2, -2, 0, -2, 2, 0, 0, 0, 0 }, b2[3] = { 0, 0, 0.37f };
    memcpy(m->params + m->layers[0].w_off, W1, sizeof W1);
    memcpy(m->params + m->layers[0].b_off, b1, sizeof b1);
    memcpy(m->params + m->layers[2].w_off, W2, sizeof W2);
    memcpy(m->params + m->layers[2].b_off, b2, sizeof b2);
    const int G = 11, N = G * G, S = 21;
    float *x = malloc(sizeof(float) * N * 2);
    int *y = malloc(sizeof(int) * N);
    for (int i = 0; i < G; i++)
        for (int j = 0; j < G; j++) {
            int n = i * G + j;
            x[2 * n] = i / 10.0f;
            x[2 * n + 1] = j / 10.0f;
            float d = x[2 * n] - x[2 * n + 1];
            y[n] = d > 0.25f ? 0 : d < -0.25f ? 1 : 2; /* a rule the network does not quite follow */
        }
    float eps = 0.1f;
    int robust = 0;
    float *xs = malloc(sizeof(float) * S * S * 2), *zs = malloc(sizeof(float) * S * S * 3);
    for (int n = 0; n < N; n++) {
        float l1 = fmaxf(x[2 * n] - eps, 0), u1 = fminf(x[2 * n] + eps, 1);
        float l2 = fmaxf(x[2 * n + 1] - eps, 0), u2 = fminf(x[2 * n + 1] + eps, 1);
        for (int a = 0; a < S; a++)
            for (int b = 0; b < S; b++) {
                xs[2 * (a * S + b)] = l1 + (u1 - l1) * a / (S - 1);
                xs[2 * (a * S + b) + 1] = l2 + (u2 - l2) * b / (S - 1);
            }
        logits(m, xs, S * S, zs);
        bool ok = true;
        for (int q = 0; q < S * S && ok; q++) {
            const float *z = zs + 3 * q;
            for (int k = 0; k < 3; k++)
                if (k != y[n] && z[k] >= z[y[n]]) ok = false;
        }
        robust += ok;
    }
    struct sk_certify_report ri, rc;
    sk_certify(m, SK_CERTIFY_IBP, x, y, N, eps, 0, 1, NULL, &ri);
    sk_certify(m, SK_CERTIFY_CROWN, x, y, N, eps, 0, 1, NULL, &rc);
    CHECK(robust > 10 && robust < N - 10, "grid search finds robust and non-robust points (%d of %d)", robust, N);
    CHECK(ri.n_certified == robust, "IBP certified count %d equals grid search %d", ri.n_certified, robust);
    CHECK(rc.n_certified == robust, "CROWN certified count %d equals grid search %d", rc.n_certified, robust);
    CHECK(ri.n_certified <= ri.n_correct && ri.n_correct < N, "certified %d <= correct %d < %d", ri.n_certified,
          ri.n_correct, N);
    free(x), free(y), free(xs), free(zs);
    sk_model_free(m);
}

/* Bounds contain the logits of PGD's adversarial points, which push each
 * margin as far as they can; margin bounds hold for them too. */
static void test_pgd_inside(void)
{
    struct sk_dataset *d = sk_data_blobs(600, 4, 10, 1.0f, 3);
    /* blobs live around 0; squash into [0,1] so the box matters */
    for (int i = 0; i < d->n * d->dim; i++) d->x[i] = 1.0f / (1.0f + expf(-d->x[i]));
    const char *specs[] = { "mlp:10-32-32-4:relu", "cnn:1x2x5-conv4k3p1-relu-maxpool1-flatten-dense16-relu-dense4" };
    for (int s = 0; s < 2; s++) {
        struct sk_model *m = sk_model_from_spec(specs[s]);
        sk_model_init(m, SK_INIT_HE_UNIFORM, 4);
        struct sk_train_config cfg = sk_train_defaults();
        cfg.epochs = 5;
        cfg.batch = 32;
        cfg.opt = sk_optim_defaults(SK_OPT_ADAM);
        sk_train(m, &cfg, d->x, d->y, d->n);
        int N = 200, K = 4, D = 10;
        float eps = 0.08f;
        float *xa = malloc(sizeof(float) * N * D), *z = malloc(sizeof(float) * N * K);
        float *lo = malloc(sizeof(float) * N * D), *hi = malloc(sizeof(float) * N * D);
        float *zl = malloc(sizeof(float) * N * K), *zh = malloc(sizeof(float) * N * K), *ml = malloc(sizeof(float) * N * K);
        for (int i = 0; i < N * D; i++) {
            lo[i] = fmaxf(d->x[i] - eps, 0);
            hi[i] = fminf(d->x[i] + eps, 1);
        }
        int meth = s == 0 ? SK_CERTIFY_CROWN : SK_CERTIFY_IBP;
        int rc = sk_certify_bounds(m, (enum sk_certify_method)meth, lo, hi, N, zl, zh);
        rc |= sk_certify_margins(m, (enum sk_certify_method)meth, d->x, d->y, N, eps, 0, 1, ml);
        CHECK(rc == 0, "bounds: %s", sk_last_error());
        struct sk_attack_pgd_config pc = sk_attack_pgd_defaults(eps, 20);
        long outside = 0, margin_bad = 0, flipped = 0;
        for (int kind = 0; kind < 2; kind++) {
            pc.loss = kind == 0 ? SK_PGD_LOSS_CE : SK_PGD_LOSS_CW;
            rc = sk_attack_pgd(m, &pc, d->x, d->y, N, 5 + kind, xa);
            CHECK(rc == 0, "pgd: %s", sk_last_error());
            logits(m, xa, N, z);
            for (int n = 0; n < N; n++) {
                int best = 0;
                for (int k = 0; k < K; k++) {
                    float tol = 1e-4f * (1 + fabsf(z[n * K + k]));
                    if (z[n * K + k] < zl[n * K + k] - tol || z[n * K + k] > zh[n * K + k] + tol) outside++;
                    if (k != d->y[n] && z[n * K + d->y[n]] - z[n * K + k] < ml[n * K + k] - tol) margin_bad++;
                    if (z[n * K + k] > z[n * K + best]) best = k;
                }
                flipped += best != d->y[n];
                for (int i = 0; i < D; i++) {
                    float v = xa[n * D + i];
                    if (v < lo[n * D + i] - 1e-6f || v > hi[n * D + i] + 1e-6f) outside += 1000000;
                }
            }
        }
        /* the attack suite's attacks (attack.h) through the classifier seam */
        struct sk_classifier *cl = sk_classifier_from_model(m, SK_MODE_EVAL, 1, 0);
        enum sk_attack_kind kinds[4] = { SK_ATTACK_APGD_CE, SK_ATTACK_APGD_T, SK_ATTACK_FMN, SK_ATTACK_SQUARE };
        for (int q = 0; q < 4; q++) {
            struct sk_attack_config ac = sk_attack_defaults(kinds[q], SK_NORM_LINF, eps);
            ac.steps = 20;
            ac.queries = 100;
            ac.img_c = 1, ac.img_h = 2, ac.img_w = 5;
            ac.seed = 3;
            rc = sk_attack_run(cl, &ac, d->x, d->y, NULL, N, xa, NULL);
            CHECK(rc == 0, "%s: %s", sk_attack_name(kinds[q]), sk_last_error());
            if (rc) continue;
            logits(m, xa, N, z);
            for (int n = 0; n < N; n++)
                for (int k = 0; k < K; k++) {
                    float tol = 1e-4f * (1 + fabsf(z[n * K + k]));
                    if (z[n * K + k] < zl[n * K + k] - tol || z[n * K + k] > zh[n * K + k] + tol) outside++;
                    if (k != d->y[n] && z[n * K + d->y[n]] - z[n * K + k] < ml[n * K + k] - tol) margin_bad++;
                }
        }
        sk_classifier_free(cl);
        CHECK(outside == 0 && margin_bad == 0, "%s: PGD points stay in the ball; their logits and those of APGD-CE, "
              "APGD-T, FMN and Square lie inside the %s bounds (%ld outside, %ld margin violations; %ld of %d flipped)", specs[s],
              sk_certify_method_name((enum sk_certify_method)meth), outside, margin_bad, flipped, 2 * N);
        CHECK(flipped > 0, "%s: PGD does find adversarial points at eps %.2f (%ld)", specs[s], eps, flipped);
        /* and certified points are never flipped */
        unsigned char *cert = malloc(N);
        struct sk_certify_report rep;
        sk_certify(m, (enum sk_certify_method)meth, d->x, d->y, N, eps, 0, 1, cert, &rep);
        int bad = 0;
        logits(m, xa, N, z);
        for (int n = 0; n < N; n++) {
            int best = 0;
            for (int k = 1; k < K; k++)
                if (z[n * K + k] > z[n * K + best]) best = k;
            bad += cert[n] && best != d->y[n];
        }
        CHECK(bad == 0 && rep.n_certified <= rep.n_correct, "%s: no certified point is broken by PGD (%d); %d "
              "certified of %d correct", specs[s], bad, rep.n_certified, rep.n_correct);
        free(cert);
        free(xa), free(z), free(lo), free(hi), free(zl), free(zh), free(ml);
        sk_model_free(m);
    }
    sk_dataset_free(d);
}

/* Power iteration against closed forms; the Lipschitz radius is sound. */
static void test_lipschitz(void)
{
    struct sk_model *m = sk_model_from_spec("mlp:3-3");
    memset(m->params, 0, sizeof(float) * m->n_params);
    float *W = m->params + m->layers[0].w_off;
    W[0] = 3, W[4] = -1, W[8] = 2;
    double norms[1], pre, all;
    bool proved = false;
    sk_certify_lipschitz_bound(m, 100, 1, norms, &pre, &all, &proved);
    CHECK(proved && norms[0] >= 3 && norms[0] <= 3 * (1 + 1e-3), "diag(3,-1,2): proved bound %g of the norm 3",
          norms[0]);
    sk_model_free(m);

    /* Gram iteration against known singular values: A = H1 diag(sigma) H2 with
     * Householder reflections, tall and wide, top two values 0.05% apart (slow
     * for power iteration, whose estimate must not exceed the proved bound) */
    const char *shapes[] = { "mlp:40-64", "mlp:64-40", "mlp:50-50" };
    for (int sh = 0; sh < 3; sh++) {
        m = sk_model_from_spec(shapes[sh]);
        int rows = m->layers[0].units, cols = m->layers[0].in[0];
        double v1[64], v2[64], n1 = 0, n2 = 0;
        for (int i = 0; i < rows; i++) {
            v1[i] = sin(1.0 + 3.7 * i + sh);
            n1 += v1[i] * v1[i];
        }
        for (int j = 0; j < cols; j++) {
            v2[j] = cos(0.5 + 1.3 * j * j + sh);
            n2 += v2[j] * v2[j];
        }
        float *Wm = m->params + m->layers[0].w_off;
        for (int i = 0; i < rows; i++)
            for (int j = 0; j < cols; j++) {
                /* (I - 2 v1 v1^T / n1) D (I - 2 v2 v2^T / n2), D = diag(sigma_k), sigma_0 = 2, sigma_1 = 1.999 */
                double a = 0;
                for (int k = 0; k < (rows < cols ? rows : cols); k++) {
                    double sg = k == 0 ? 2.0 : k == 1 ? 1.999 : 1.5 / (1 + k);
                    double h1 = (i == k) - 2 * v1[i] * v1[k] / n1, h2 = (k == j) - 2 * v2[k] * v2[j] / n2;
                    a += h1 * sg * h2;
                }
                Wm[(size_t)i * cols + j] = (float)a;
            }
        double nb[1];
        sk_certify_lipschitz_bound(m, 100, 1, nb, &pre, &all, &proved);
        /* the float matrix's norm is 2 up to its rounding (relative 1e-6) */
        CHECK(proved && nb[0] >= 2 * (1 - 1e-6) && nb[0] <= 2 * (1 + 1.5e-3),
              "%s with sigma 2, 1.999: proved bound %.7f (in [2, 2.003])", shapes[sh], nb[0]);
        sk_model_free(m);
    }

    /* a layer too large for Gram iteration: power iteration, not a proof */
    m = sk_model_from_spec("cnn:1x70x70-conv1k1-flatten");
    m->params[m->layers[0].w_off] = 0.5f;
    double nl[2];
    sk_certify_lipschitz_bound(m, 100, 1, nl, &pre, &all, &proved);
    CHECK(!proved && fabs(nl[0] - 0.5 * 1.01) < 1e-4, "4900x4900 conv: estimate %g = 0.5 x 1.01, not proved",
          nl[0]);
    sk_model_free(m);

    /* conv: the norm of the explicit matrix, by power iteration in double */
    m = random_model("cnn:2x5x5-conv3k3s1p1-flatten", 2);
    memset(m->params + m->layers[0].b_off, 0, sizeof(float) * m->layers[0].n_b);
    int nin = 50, nout = 75;
    double *A = calloc((size_t)nin * nout, sizeof(double));
    float e[50], col[75];
    for (int i = 0; i < nin; i++) {
        memset(e, 0, sizeof e);
        e[i] = 1;
        logits(m, e, 1, col); /* bias zeroed: the map itself */
        for (int o = 0; o < nout; o++) A[(size_t)o * nin + i] = col[o];
    }
    double v[50], u[75], s = 0;
    for (int i = 0; i < nin; i++) v[i] = 1.0 + i % 7;
    for (int it = 0; it < 2000; it++) {
        double nv = 0;
        for (int i = 0; i < nin; i++) nv += v[i] * v[i];
        nv = sqrt(nv);
        for (int i = 0; i < nin; i++) v[i] /= nv;
        s = 0;
        for (int o = 0; o < nout; o++) {
            u[o] = 0;
            for (int i = 0; i < nin; i++) u[o] += A[(size_t)o * nin + i] * v[i];
            s += u[o] * u[o];
        }
        s = sqrt(s);
        for (int i = 0; i < nin; i++) {
            v[i] = 0;
            for (int o = 0; o < nout; o++) v[i] += A[(size_t)o * nin + i] * u[o];
        }
    }
    double cn[2];
    sk_certify_lipschitz_bound(m, 300, 1, cn, &pre, &all, &proved);
    CHECK(proved && cn[0] >= s && cn[0] <= s * (1 + 1e-3), "conv: proved bound %g of the explicit matrix's norm %g",
          cn[0], s);
    free(A);
    sk_model_free(m);

    /* radius: a point is never flipped within its certified L-inf radius */
    struct sk_dataset *d = sk_data_blobs(300, 3, 6, 0.5f, 9);
    for (int i = 0; i < d->n * d->dim; i++) d->x[i] = 1.0f / (1.0f + expf(-d->x[i]));
    m = sk_model_from_spec("mlp:6-16-3:relu");
    sk_model_init(m, SK_INIT_HE_UNIFORM, 3);
    struct sk_train_config cfg = sk_train_defaults();
    cfg.epochs = 10;
    cfg.opt = sk_optim_defaults(SK_OPT_ADAM);
    sk_train(m, &cfg, d->x, d->y, d->n);
    int N = 100;
    float *rinf = malloc(sizeof(float) * N), *xa = malloc(sizeof(float) * N * 6), *lp = malloc(sizeof(float) * N * 3);
    sk_certify_lipschitz_radius(m, d->x, d->y, N, 100, NULL, rinf);
    int pos = 0, broken = 0;
    for (int n = 0; n < N; n++) pos += rinf[n] > 0;
    /* attack each point at 0.99 of its radius */
    for (int n = 0; n < N; n++) {
        if (!(rinf[n] > 0)) continue;
        struct sk_attack_pgd_config pc = sk_attack_pgd_defaults(0.99f * rinf[n], 30);
        pc.clip_lo = pc.clip_hi = 0; /* the radius ignores the box */
        sk_attack_pgd(m, &pc, d->x + n * 6, d->y + n, 1, 1, xa);
        sk_model_log_probs(m, xa, 1, lp);
        int best = 0;
        for (int k = 1; k < 3; k++)
            if (lp[k] > lp[best]) best = k;
        broken += best != d->y[n];
    }
    CHECK(pos > N / 2 && broken == 0, "Lipschitz radius: %d of %d points have a radius, %d broken inside it", pos, N,
          broken);
    struct sk_certify_report rl, ri;
    sk_certify(m, SK_CERTIFY_LIPSCHITZ, d->x, d->y, N, 0.01f, 0, 1, NULL, &rl);
    sk_certify(m, SK_CERTIFY_IBP, d->x, d->y, N, 0.01f, 0, 1, NULL, &ri);
    CHECK(rl.n_certified <= rl.n_correct && rl.n_correct == ri.n_correct, "lipschitz certify: %d certified of %d "
          "correct (IBP %d)", rl.n_certified, rl.n_correct, ri.n_certified);
    /* the one-pass entry point: the same points, radii and global bound as the separate calls; a point is
     * certified at eps exactly when its L-inf radius exceeds eps (up to the tolerance) */
    float eps1 = 0.02f, *r2a = malloc(sizeof(float) * N), *rinfa = malloc(sizeof(float) * N);
    unsigned char *c1 = malloc(N), *c2 = malloc(N);
    struct sk_certify_report r1, r2rep;
    int rc1 = sk_certify_lipschitz(m, d->x, d->y, N, eps1, c1, r2a, rinfa, &r1);
    sk_certify(m, SK_CERTIFY_LIPSCHITZ, d->x, d->y, N, eps1, 0, 1, c2, &r2rep);
    sk_certify_lipschitz_bound(m, 0, 1, NULL, &pre, &all, &proved);
    int same_cert = 0, same_r = 0, radius_agrees = 0;
    for (int n = 0; n < N; n++) {
        same_cert += c1[n] == c2[n];
        same_r += rinfa[n] == rinf[n] && fabsf(r2a[n] - rinf[n] * sqrtf(6.0f)) <= 1e-5f * r2a[n];
        radius_agrees += c1[n] == (rinfa[n] > eps1 * 1.001f) || fabsf(rinfa[n] - eps1) < 2e-3f * eps1;
    }
    CHECK(rc1 == SK_OK && same_cert == N && same_r == N && r1.n_certified == r2rep.n_certified &&
              r1.n_certified > 0 && r1.n_certified < r1.n_correct && r1.lipschitz_global == all &&
              r1.lipschitz_proved == proved && proved && isnan(ri.lipschitz_global),
          "sk_certify_lipschitz: %d of %d points and %d radii as the separate calls, %d certified (%d), global %g "
          "(%g)", same_cert, N, same_r, r1.n_certified, r2rep.n_certified, r1.lipschitz_global, all);
    CHECK(radius_agrees == N, "certified at eps <=> L-inf radius > eps on %d of %d points", radius_agrees, N);
    free(r2a), free(rinfa), free(c1), free(c2);
    free(rinf), free(xa), free(lp);
    sk_model_free(m);
    sk_dataset_free(d);
}

/* Gradient of the IBP robust loss (the worst-case logits of the
 * specification form, as graph ops) against central differences. */
static void test_ibp_grad(void)
{
    const char *specs[] = { "mlp:6-8-8-3:relu", "cnn:1x5x5-conv3k3p1-bn-relu-avgpool2-flatten-dense3",
                            "cnn:1x4x4-conv2k3p1-tanh-maxpool2-flatten-dense4-sigmoid-dense3" };
    for (int s = 0; s < 3; s++) {
        struct sk_model *m = random_model(specs[s], 13 + s);
        int N = 6, D = m->in_dim;
        float *x = malloc(sizeof(float) * N * D);
        int y[6] = { 0, 1, 2, 0, 1, 2 };
        struct sk_rng r = sk_rng_new(3);
        for (int i = 0; i < N * D; i++) x[i] = urand(&r, 0, 1);
        struct sk_graph *g = sk_graph_new();
        float eps = 0.05f;
        int c, rr, zw;
        double f0 = 0;
        /* loss(params) */
#define LOSS(out)                                                                                                      \
    do {                                                                                                               \
        sk_graph_reset(g);                                                                                             \
        sk_certify_ibp_input(g, m, x, N, eps, 0, 1, &c, &rr);                                                          \
        int rc_ = sk_certify_ibp_worst_logits(m, g, c, rr, y, &zw);                                                    \
        CHECK(rc_ == 0, "ibp graph: %s", sk_last_error());                                                             \
        out = sk_loss_cross_entropy(g, zw, y, 0);                                                                      \
    } while (0)
        int Lnode;
        LOSS(Lnode);
        memset(m->grads, 0, sizeof(float) * m->n_params);
        sk_graph_backward(g, Lnode, NULL);
        f0 = sk_graph_value(g, Lnode)[0];
        float *an = malloc(sizeof(float) * m->n_params);
        memcpy(an, m->grads, sizeof(float) * m->n_params);
        double worst = 0, scale = 0;
        int tried = 0;
        for (size_t p = 0; p < m->n_params; p += 1 + m->n_params / 40) {
            float keep = m->params[p], h = 1e-3f;
            m->params[p] = keep + h;
            LOSS(Lnode);
            double fp = sk_graph_value(g, Lnode)[0];
            m->params[p] = keep - h;
            LOSS(Lnode);
            double fm = sk_graph_value(g, Lnode)[0];
            m->params[p] = keep;
            double num = (fp - fm) / (2 * h);
            worst = fmax(worst, fabs(num - an[p]));
            if (getenv("GRADDBG")) fprintf(stderr, "  p %zu num %g an %g\n", p, num, an[p]);
            scale = fmax(scale, fabs(num));
            tried++;
        }
        CHECK(worst <= 2e-2 * fmax(scale, 1e-2), "%s: IBP loss gradient matches central differences on %d params "
              "(max err %g, scale %g, loss %g)", specs[s], tried, worst, scale, f0);
        free(an);
        free(x);
        sk_graph_free(g);
        sk_model_free(m);
    }
}

int main(void)
{
    sk_set_threads(2);
    test_layers_sound();
    test_linear_exact();
    test_crown_tighter();
    test_grid();
    test_pgd_inside();
    test_lipschitz();
    test_ibp_grad();
    return sk_test_finish("test_certify");
}
