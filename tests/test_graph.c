/* Graph models: the spec's labels, add and cat give the layer list and
 * shapes worked out by hand; chains read as before; forward equals the
 * formula; gradients (parameters and input) match central differences;
 * Hessian-vector products match the finite-difference oracle; IBP of a
 * residual model is sound on random points of the ball; the concat op's
 * gradient and second-order rule; malformed graph specs give messages that
 * name the column and the fault; a graph model survives a file round trip. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "skeptic/certify.h"
#include "skeptic/skeptic.h"
#include "model/layers.h"
#include "testutil.h"

#define RESNET "seq:1x8x8-conv4k3p1-bn-relu=a-conv4k3p1-bn-relu-conv4k3p1-bn-add@a-relu=b-conv6k3s2p1-bn-relu-" \
               "conv6k3p1-bn=c-conv6k1s2@b-bn-add@c-relu-gap-dropout0.1-dense3"

static float frand(uint64_t *s)
{
    *s = *s * 6364136223846793005ULL + 1442695040888963407ULL;
    return (float)((*s >> 40) & 0xffffff) / 16777216.0f;
}

static void fill(float *x, size_t n, float lo, float hi, uint64_t seed)
{
    for (size_t i = 0; i < n; i++) x[i] = lo + (hi - lo) * frand(&seed);
}

/* Random weights and non-trivial batch-norm statistics. */
static void randomise(struct sk_model *m, uint64_t seed)
{
    CHECK(sk_model_init(m, SK_INIT_HE_UNIFORM, seed) == SK_OK, "init: %s", sk_last_error());
    uint64_t s = seed * 7 + 1;
    for (int i = 0; i < m->n_layers; i++) {
        const struct sk_layer *L = &m->layers[i];
        if (L->kind != SK_LAYER_BATCHNORM) continue;
        for (int c = 0; c < L->units; c++) {
            m->params[L->w_off + c] = 0.5f + frand(&s);
            m->params[L->b_off + c] = frand(&s) - 0.5f;
            m->buffers[L->rm_off + c] = 0.2f * (frand(&s) - 0.5f);
            m->buffers[L->rv_off + c] = 0.5f + frand(&s);
        }
    }
}

static void test_parse(void)
{
    struct sk_model *m = sk_model_from_spec(RESNET);
    CHECK(m != NULL, "resnet spec: %s", sk_last_error());
    if (!m) return;
    CHECK(m->n_layers == 22, "22 layers, got %d", m->n_layers);
    CHECK(!sk_model_is_chain(m), "a residual model is not a chain");
    /* add@a (layer 8) reads bn (7) and relu=a (2); the shortcut conv (15)
     * reads relu=b (9); add@c (17) reads the shortcut bn (16) and bn=c (14) */
    const struct sk_layer *L = m->layers;
    CHECK(L[8].kind == SK_LAYER_ADD && L[8].from[0] == 7 && L[8].from[1] == 2, "add@a reads 7, 2: %d %d",
          L[8].from[0], L[8].from[1]);
    CHECK(L[15].kind == SK_LAYER_CONV && L[15].from[0] == 9 && L[15].from[1] == -1 && L[15].stride == 2 &&
              L[15].k == 1,
          "conv6k1s2@b reads 10: %d", L[15].from[0]);
    CHECK(L[15].in[0] == 4 && L[15].in[1] == 8 && L[15].out[0] == 6 && L[15].out[1] == 4,
          "shortcut conv 4x8x8 -> 6x4x4: %dx%d -> %dx%d", L[15].in[0], L[15].in[1], L[15].out[0], L[15].out[1]);
    CHECK(L[17].from[0] == 16 && L[17].from[1] == 14 && L[17].out[0] == 6 && L[17].out[2] == 4,
          "add@c reads 16, 14 and gives 6x4x4");
    CHECK(L[0].from[0] == -1 && L[1].from[0] == 0, "chain defaults");
    /* parameters: conv 1->4 (36+4), bn 8, 2x (conv 4->4 144+4, bn 8), conv 4->6 (216+6), bn 12,
     * conv 6->6 (324+6), bn 12, conv1x1 4->6 (24+6), bn 12, dense 6->3 (18+3) */
    size_t want = 40 + 8 + 2 * (148 + 8) + 222 + 12 + 330 + 12 + 30 + 12 + 21;
    CHECK(m->n_params == want, "%zu parameters, want %zu", m->n_params, want);
    CHECK(sk_model_tensor(m, "15.weight") && sk_model_tensor(m, "15.weight")->shape[2] == 1,
          "tensors are named by layer index");
    sk_model_free(m);

    /* chains are chains; cat along channels and on vectors */
    m = sk_model_from_spec("cnn:1x28x28-conv8k3p1-relu-maxpool2-flatten-dense10");
    CHECK(m && sk_model_is_chain(m), "a cnn spec is a chain");
    sk_model_free(m);
    m = sk_model_from_spec("seq:2x6x6=x-conv3k3p1=y-relu=r-cat@y@x-cat@r-gap-dense2");
    CHECK(m != NULL, "cat spec: %s", sk_last_error());
    if (m) {
        CHECK(m->layers[2].kind == SK_LAYER_CAT && m->layers[2].out[0] == 5 && m->layers[2].from[0] == 0 &&
                  m->layers[2].from[1] == -1,
              "cat@y@x: y (3) then x (2) = 5 channels: %d", m->layers[2].out[0]);
        CHECK(m->layers[3].out[0] == 8 && m->layers[3].out[1] == 6 && m->layers[3].from[0] == 2 &&
                  m->layers[3].from[1] == 1,
              "cat@r: the previous (5) then r (3), got %d channels from %d, %d", m->layers[3].out[0],
              m->layers[3].from[0], m->layers[3].from[1]);
    }
    sk_model_free(m);
}

/* malformed graph specs: the message names the column and the fault */
static void test_bad_specs(void)
{
    static const struct {
        const char *spec, *want;
    } bad[] = {
        { "seq:4-dense4-add@q-dense2", "no earlier layer is labelled 'q'" },
        { "seq:4=a-dense4=a-add@a-dense2", "the label 'a' is already taken" },
        { "seq:4=a-dense5-add@a-dense2", "add needs two outputs of one shape" },
        { "seq:1x4x4=a-conv2k3-cat@a-gap-dense2", "cat needs images of one height and width" },
        { "seq:1x4x4=a-flatten-cat@a-dense2", "cat needs two images or two vectors" },
        { "seq:4=a-dense4=b-dense4@a-dense2", "no later layer reads the output of layer 0 (dense =b)" },
        { "seq:4=a-dense4-add-dense2", "'add' reads two outputs" },
        { "seq:4=a-dense4=b-dense4@a@b-dense2", "'dense' reads one output, not two" },
        { "seq:4=a-dense4-add@a@a@a-dense2", "at most two outputs" },
        { "seq:4=A-dense2", "expected a label" },
        { "seq:4=abcdefghijklmnopq-dense2", "at most 15 characters" },
        { "seq:1x4x4=a-flatten-conv2k1@a-gap-dense2", "no later layer reads the output of layer 0 (flatten)" },
        { "seq:1x4x4=a-conv2k1-conv1k1@a-cat-gap-dense2", "'cat' reads two outputs" },
        { "seq:1x4x4=a-conv2k1-relu-cat@a-gap-dense2", "" },
        { "seq:1x4x4=a-conv2k1-flatten-dense2@a", "a dense layer after a spatial layer" },
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        struct sk_model *m = sk_model_from_spec(bad[i].spec);
        bool refused = bad[i].want[0] != 0;
        if (refused)
            CHECK(!m && strstr(sk_last_error(), bad[i].want) && strstr(sk_last_error(), "at column"),
                  "'%s': want '%s', got '%s'", bad[i].spec, bad[i].want, m ? "a model" : sk_last_error());
        else
            CHECK(m != NULL, "'%s' is valid (a layer may read the input): %s", bad[i].spec, sk_last_error());
        sk_model_free(m);
    }
}

/* "seq:3=x-dense3-add@x-dense2": z = W2 (W1 x + b1 + x) + b2 */
static void test_forward_formula(void)
{
    struct sk_model *m = sk_model_from_spec("seq:3=x-dense3-add@x-dense2");
    CHECK(m != NULL, "%s", sk_last_error());
    if (!m) return;
    randomise(m, 3);
    float x[6], z[4];
    fill(x, 6, -1, 1, 9);
    CHECK(sk_model_logits(m, x, 2, z) == SK_OK, "%s", sk_last_error());
    const float *W1 = m->params + m->layers[0].w_off, *b1 = m->params + m->layers[0].b_off;
    const float *W2 = m->params + m->layers[2].w_off, *b2 = m->params + m->layers[2].b_off;
    double err = 0;
    for (int n = 0; n < 2; n++) {
        double h[3];
        for (int i = 0; i < 3; i++) {
            h[i] = b1[i] + x[n * 3 + i];
            for (int j = 0; j < 3; j++) h[i] += (double)W1[i * 3 + j] * x[n * 3 + j];
        }
        for (int k = 0; k < 2; k++) {
            double s = b2[k];
            for (int i = 0; i < 3; i++) s += (double)W2[k * 3 + i] * h[i];
            err = fmax(err, fabs(s - z[n * 2 + k]));
        }
    }
    CHECK(err < 1e-5, "residual forward = formula (max error %g)", err);
    sk_model_free(m);
}

/* the mean cross-entropy of (x, y), eval mode */
static double loss_at(struct sk_model *m, const float *x, const int *y, int n)
{
    double l = 0;
    CHECK(sk_model_evaluate(m, x, y, n, NULL, &l) == SK_OK, "%s", sk_last_error());
    return l;
}

/* Parameter and input gradients of a graph with add, cat, bn and smooth
 * activations against central differences (float32: relative 2e-2 on a
 * sample of coordinates). */
static void test_gradients(void)
{
    const char *spec = "seq:2x5x5=x-conv3k3p1-bn-tanh=a-conv3k3p1-softplus-add@a-cat@x-conv2k3s2p1-gelu-gap-dense3";
    struct sk_model *m = sk_model_from_spec(spec);
    CHECK(m != NULL, "%s", sk_last_error());
    if (!m) return;
    randomise(m, 5);
    int n = 3, y[3] = { 0, 2, 1 };
    float x[150];
    fill(x, 150, -1, 1, 11);
    struct sk_graph *g = sk_graph_new();
    float loss;
    CHECK(sk_model_loss_grad(m, g, x, y, n, SK_MODE_EVAL, 0, &loss) == SK_OK, "%s", sk_last_error());
    float *grad = malloc(sizeof(float) * m->n_params);
    memcpy(grad, m->grads, sizeof(float) * m->n_params);
    double worst = 0;
    for (size_t i = 0; i < m->n_params; i += 7) {
        float keep = m->params[i], h = 1e-2f;
        m->params[i] = keep + h;
        double lp = loss_at(m, x, y, n);
        m->params[i] = keep - h;
        double lm = loss_at(m, x, y, n);
        m->params[i] = keep;
        double fd = (lp - lm) / (2 * h), e = fabs(fd - grad[i]) / (fabs(fd) + fabs(grad[i]) + 1e-2);
        worst = fmax(worst, e);
    }
    CHECK(worst < 2e-2, "parameter gradients of a graph vs central differences: worst relative %g", worst);
    free(grad);

    /* input gradient through the classifier seam */
    struct sk_classifier *c = sk_classifier_from_model(m, SK_MODE_EVAL, 1, 1);
    float dx[150];
    CHECK(c && c->input_grad(c->self, x, n, sk_logp_loss_ce, y, NULL, NULL, dx) == SK_OK, "%s", sk_last_error());
    worst = 0;
    for (int i = 0; i < 150; i += 3) {
        float keep = x[i], h = 1e-2f;
        x[i] = keep + h;
        double lp = loss_at(m, x, y, n) * n;
        x[i] = keep - h;
        double lm = loss_at(m, x, y, n) * n;
        x[i] = keep;
        double fd = (lp - lm) / (2 * h), e = fabs(fd - dx[i]) / (fabs(fd) + fabs(dx[i]) + 1e-2);
        worst = fmax(worst, e);
    }
    CHECK(worst < 2e-2, "input gradients of a graph vs central differences: worst relative %g", worst);
    sk_classifier_free(c);

    /* second order: exact HVP against the finite-difference oracle */
    float *v = malloc(sizeof(float) * m->n_params), *hv = malloc(sizeof(float) * m->n_params);
    float *hf = malloc(sizeof(float) * m->n_params);
    fill(v, m->n_params, -1, 1, 21);
    CHECK(sk_model_hvp(m, x, y, n, v, hv) == SK_OK, "hvp: %s", sk_last_error());
    CHECK(sk_model_hvp_fd(m, x, y, n, v, hf) == SK_OK, "hvp_fd: %s", sk_last_error());
    double e = sk_rel_err(hv, hf, m->n_params);
    CHECK(e < 2e-2, "HVP of a graph with add and cat vs central differences: relative %g", e);
    free(v);
    free(hv);
    free(hf);
    sk_graph_free(g);
    sk_model_free(m);
}

/* concat on its own: values, gradient split, tangent and second-order
 * backward of a loss sum(w * concat(a, b)^2) */
static void test_concat_op(void)
{
    struct sk_graph *g = sk_graph_new();
    float a[2 * 2 * 3], b[2 * 1 * 3], w[2 * 3 * 3];
    fill(a, 12, -1, 1, 1);
    fill(b, 6, -1, 1, 2);
    fill(w, 18, 0, 1, 3);
    float da[12] = { 0 }, db[6] = { 0 };
    int sa[3] = { 2, 2, 3 }, sb[3] = { 2, 1, 3 }, sw[3] = { 2, 3, 3 };
    int A = sk_graph_param(g, a, da, 3, sa), B = sk_graph_param(g, b, db, 3, sb);
    int Wn = sk_graph_input(g, w, 3, sw, false);
    int y = sk_op_concat(g, A, B);
    CHECK(y >= 0 && sk_graph_shape(g, y)[1] == 3, "concat shape");
    const float *yv = sk_graph_value(g, y);
    CHECK(yv[0] == a[0] && yv[6] == b[0] && yv[9] == a[6] && yv[15] == b[3], "concat layout: sample, a, b");
    int L = sk_op_sum(g, sk_op_mul(g, Wn, sk_op_mul(g, y, y)));
    CHECK(sk_graph_backward(g, L, NULL) == SK_OK, "%s", sk_last_error());
    double err = 0;
    for (int n = 0; n < 2; n++)
        for (int i = 0; i < 6; i++) err = fmax(err, fabs(da[n * 6 + i] - 2 * w[n * 9 + i] * a[n * 6 + i]));
    for (int n = 0; n < 2; n++)
        for (int i = 0; i < 3; i++) err = fmax(err, fabs(db[n * 3 + i] - 2 * w[n * 9 + 6 + i] * b[n * 3 + i]));
    CHECK(err < 1e-6, "concat gradient splits: %g", err);
    int bad = sk_op_concat(g, A, Wn);
    CHECK(bad >= 0, "concat [2,2,3] and [2,3,3] along dim 1");
    int sx[3] = { 2, 2, 4 };
    float xx[16] = { 0 };
    bad = sk_op_concat(g, A, sk_graph_input(g, xx, 3, sx, false));
    CHECK(bad < 0 && strstr(sk_last_error(), "differ outside dimension 1"), "%s", sk_last_error());
    sk_graph_free(g);
}

/* IBP of a residual model contains the logits of random points of the ball */
static void test_ibp_sound(void)
{
    struct sk_model *m = sk_model_from_spec(RESNET);
    if (!m) return;
    randomise(m, 7);
    int N = 4, K = 3, D = m->in_dim;
    float *x = malloc(sizeof(float) * N * D), *lo = malloc(sizeof(float) * N * D), *hi = malloc(sizeof(float) * N * D);
    float zlo[12], zhi[12], z[3];
    fill(x, (size_t)N * D, 0, 1, 13);
    float eps = 0.02f;
    for (int i = 0; i < N * D; i++) lo[i] = x[i] - eps, hi[i] = x[i] + eps;
    CHECK(sk_certify_bounds(m, SK_CERTIFY_IBP, lo, hi, N, zlo, zhi) == SK_OK, "ibp: %s", sk_last_error());
    float *p = malloc(sizeof(float) * D);
    int outside = 0;
    double width = 0;
    uint64_t s = 17;
    for (int n = 0; n < N; n++) {
        for (int t = 0; t < 50; t++) {
            for (int i = 0; i < D; i++) {
                float u = frand(&s);
                /* corners half of the time: the extremes of the ball */
                p[i] = x[n * D + i] + eps * (t % 2 ? (u < 0.5f ? -1 : 1) : 2 * u - 1);
            }
            sk_model_logits(m, p, 1, z);
            for (int k = 0; k < K; k++) outside += z[k] < zlo[n * K + k] - 1e-5f || z[k] > zhi[n * K + k] + 1e-5f;
        }
        for (int k = 0; k < K; k++) width += zhi[n * K + k] - zlo[n * K + k];
    }
    CHECK(outside == 0, "IBP of a residual model: %d logits of random points outside the bounds", outside);
    CHECK(width > 0 && isfinite(width), "bounds have positive finite width (%g)", width);
    /* CROWN bounds graphs too (tests/test_crown_graph.c), within IBP's bounds */
    float clo[12], chi[12];
    CHECK(sk_certify_bounds(m, SK_CERTIFY_CROWN, lo, hi, N, clo, chi) == SK_OK, "crown on a graph: %s", sk_last_error());
    int wider = 0;
    for (int i = 0; i < N * K; i++) wider += clo[i] < zlo[i] || chi[i] > zhi[i] || clo[i] > chi[i];
    CHECK(wider == 0, "crown on a graph: %d bounds outside IBP's", wider);
    free(p);
    free(x);
    free(lo);
    free(hi);
    sk_model_free(m);
}

/* The shape of the Fashion-MNIST ResNet (three stages, projection shortcuts,
 * gap, dropout, ten classes) at 1x12x12, with a standardising input transform
 * and the ball clipped to [0,1] as `certify` uses it: the logit bounds and the
 * specification-form margin bounds hold at random points and corners. */
#define RESNET3 "seq:1x12x12-conv4k3p1-bn-relu=a-conv4k3p1-bn-relu-conv4k3p1-bn-add@a-relu=b-conv6k3s2p1-bn-relu-" \
                "conv6k3p1-bn=c-conv6k1s2@b-bn-add@c-relu=d-conv8k3s2p1-bn-relu-conv8k3p1-bn=e-conv8k1s2@d-bn-add@e-" \
                "relu-gap-dropout0.2-dense10"
static void test_ibp_sound_clipped(void)
{
    struct sk_model *m = sk_model_from_spec(RESNET3);
    CHECK(m != NULL, "resnet3 spec: %s", sk_last_error());
    if (!m) return;
    randomise(m, 21);
    enum { N = 4, K = 10, T = 64 };
    int D = m->in_dim;
    float *shift = malloc(sizeof(float) * D), *scale = malloc(sizeof(float) * D);
    for (int i = 0; i < D; i++) shift[i] = 0.286f, scale[i] = 1 / 0.353f;
    struct sk_preprocess prep = { SK_PREP_STANDARDIZE, D, shift, scale };
    CHECK(sk_model_set_preprocess(m, &prep) == SK_OK, "preprocess: %s", sk_last_error());
    float *x = malloc(sizeof(float) * N * D), *lo = malloc(sizeof(float) * N * D), *hi = malloc(sizeof(float) * N * D);
    float *p = malloc(sizeof(float) * D), zlo[N * K], zhi[N * K], mlo[N * K], z[K];
    int y[N];
    float eps = 0.01f;
    fill(x, (size_t)N * D, 0, 1, 23);
    /* a dark border, as in Fashion-MNIST, where the box cuts the ball */
    for (int i = 0; i < N * D; i++)
        if (i % 12 < 2) x[i] = 0;
    for (int i = 0; i < N * D; i++) lo[i] = fmaxf(0, x[i] - eps), hi[i] = fminf(1, x[i] + eps);
    for (int n = 0; n < N; n++) y[n] = (3 * n + 1) % K;
    CHECK(sk_certify_bounds(m, SK_CERTIFY_IBP, lo, hi, N, zlo, zhi) == SK_OK, "ibp: %s", sk_last_error());
    CHECK(sk_certify_margins(m, SK_CERTIFY_IBP, x, y, N, eps, 0, 1, mlo) == SK_OK, "margins: %s", sk_last_error());
    int out_z = 0, out_m = 0, off_box = 0;
    double reach = 0, width = 0;
    uint64_t s = 29;
    for (int n = 0; n < N; n++) {
        float smin[K], smax[K];
        for (int k = 0; k < K; k++) smin[k] = INFINITY, smax[k] = -INFINITY;
        for (int t = 0; t < T; t++) {
            for (int i = 0; i < D; i++) {
                float u = frand(&s), a = lo[n * D + i], b = hi[n * D + i];
                p[i] = t % 2 ? (u < 0.5f ? a : b) : a + (b - a) * u;
                off_box += p[i] < 0 || p[i] > 1;
            }
            sk_model_logits(m, p, 1, z);
            for (int k = 0; k < K; k++) {
                float tol = 1e-5f * (1 + fabsf(zlo[n * K + k]) + fabsf(zhi[n * K + k]));
                out_z += z[k] < zlo[n * K + k] - tol || z[k] > zhi[n * K + k] + tol;
                float margin = z[y[n]] - z[k];
                out_m += margin < mlo[n * K + k] - 1e-5f * (1 + fabsf(mlo[n * K + k]));
                smin[k] = fminf(smin[k], z[k]);
                smax[k] = fmaxf(smax[k], z[k]);
            }
        }
        for (int k = 0; k < K; k++) {
            width += zhi[n * K + k] - zlo[n * K + k];
            reach += smax[k] - smin[k];
        }
        CHECK(mlo[n * K + y[n]] == 0, "the margin bound of the label itself is 0 (%g)", mlo[n * K + y[n]]);
    }
    CHECK(off_box == 0, "%d sampled pixels left [0,1]", off_box);
    CHECK(out_z == 0, "IBP with an input transform in the clipped ball: %d logits outside their bounds", out_z);
    CHECK(out_m == 0, "IBP margins in the clipped ball: %d sampled margins below their lower bound", out_m);
    /* the draws move the logits (the test is not vacuous) and IBP encloses them */
    CHECK(reach > 0 && width >= reach && isfinite(width), "sampled spread %g inside bound width %g", reach, width);
    free(shift);
    free(scale);
    free(x);
    free(lo);
    free(hi);
    free(p);
    sk_model_free(m);
}

/* training mode updates the batch norms of both branches; a graph model
 * survives a file round trip bit for bit */
static void test_file_round_trip(void)
{
    struct sk_model *m = sk_model_from_spec(RESNET);
    if (!m) return;
    randomise(m, 9);
    const char *path = sk_test_path("graph.safetensors");
    CHECK(sk_model_save(m, path, NULL) == SK_OK, "save: %s", sk_last_error());
    struct sk_model *r = sk_model_load(path, NULL, NULL);
    CHECK(r != NULL, "load: %s", sk_last_error());
    if (r) {
        CHECK(!strcmp(r->spec, m->spec) && r->n_params == m->n_params &&
                  !memcmp(r->params, m->params, sizeof(float) * m->n_params) &&
                  !memcmp(r->buffers, m->buffers, sizeof(float) * m->n_buffers),
              "graph model round trip is bit-identical");
        float x[128], z1[6], z2[6];
        fill(x, 128, 0, 1, 4);
        sk_model_logits(m, x, 2, z1);
        sk_model_logits(r, x, 2, z2);
        CHECK(!memcmp(z1, z2, sizeof z1), "same logits after the round trip");
    }
    sk_model_free(r);
    sk_model_free(m);
}

int main(void)
{
    test_parse();
    test_bad_specs();
    test_forward_formula();
    test_gradients();
    test_concat_op();
    test_ibp_sound();
    test_ibp_sound_clipped();
    test_file_round_trip();
    return sk_test_finish("test_graph");
}
