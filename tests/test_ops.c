/* Central-difference gradient checks for every op and loss (inputs and
 * parameters), and fast kernels against their naive twins on awkward shapes. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "graph/graph_impl.h"
#include "model/layers.h"
#include "skeptic/skeptic.h"
#include "testutil.h"

#define MAXIN 3

struct gc_case {
    const char *name;
    int n_in;
    int ndim[MAXIN];
    int shape[MAXIN][4];
    bool as_param[MAXIN];   /* feed through sk_graph_param instead of an input */
    float lo, hi;           /* input range */
    float away;             /* keep |x| >= away (kinks at 0) */
    int (*build)(struct sk_graph *g, const int *in, void *ctx);
    void *ctx;
    double tol;
};

static size_t numel(const int *s, int nd)
{
    size_t n = 1;
    for (int i = 0; i < nd; i++) n *= (size_t)s[i];
    return n;
}

/* Ops whose backward ran in a gradient check (test_op_table wants them all). */
static bool op_checked[OP_COUNT];

/* L = sum(out * r) with a fixed random r (so every output element matters). */
static float *rvec;
static size_t rvec_n;

static int record(struct gc_case *c, struct sk_graph *g, float **vals, float **grads, int *ids)
{
    for (int i = 0; i < c->n_in; i++)
        ids[i] = c->as_param[i] ? sk_graph_param(g, vals[i], grads ? grads[i] : NULL, c->ndim[i], c->shape[i])
                                : sk_graph_input(g, vals[i], c->ndim[i], c->shape[i], grads != NULL);
    int out = c->build(g, ids, c->ctx);
    if (out < 0) return out;
    size_t n = sk_graph_numel(g, out);
    if (n > rvec_n) {
        free(rvec);
        rvec = malloc(n * sizeof(float));
        struct sk_rng r = sk_rng_new(99);
        for (size_t i = 0; i < n; i++) rvec[i] = sk_rng_uniform(&r) * 2 - 1;
        rvec_n = n;
    }
    int rs = sk_graph_input(g, rvec, sk_graph_ndim(g, out), sk_graph_shape(g, out), false);
    return sk_op_sum(g, sk_op_mul(g, out, rs));
}

static double eval_loss(struct gc_case *c, struct sk_graph *g, float **vals)
{
    int ids[MAXIN];
    sk_graph_reset(g);
    int L = record(c, g, vals, NULL, ids);
    SK_ASSERT(L >= 0);
    return sk_graph_value(g, L)[0];
}

/* Returns the worst relative error; scale != 1 corrupts the analytic gradient
 * (used to prove the check can fail). */
static double gradcheck(struct gc_case *c, uint64_t seed, float scale)
{
    struct sk_graph *g = sk_graph_new();
    float *vals[MAXIN], *grads[MAXIN], *ana[MAXIN];
    size_t n[MAXIN];
    struct sk_rng r = sk_rng_new(seed);
    for (int i = 0; i < c->n_in; i++) {
        n[i] = numel(c->shape[i], c->ndim[i]);
        vals[i] = malloc(n[i] * sizeof(float));
        grads[i] = calloc(n[i], sizeof(float));
        ana[i] = malloc(n[i] * sizeof(float));
        for (size_t j = 0; j < n[i]; j++) {
            float v;
            do v = c->lo + (c->hi - c->lo) * sk_rng_uniform(&r);
            while (fabsf(v) < c->away);
            vals[i][j] = v;
        }
    }
    int ids[MAXIN];
    int L = record(c, g, vals, grads, ids);
    double worst = INFINITY;
    if (L < 0) {
        fprintf(stderr, "%s: build failed: %s\n", c->name, sk_last_error());
        goto done;
    }
    if (sk_graph_backward(g, L, NULL)) {
        fprintf(stderr, "%s: backward failed: %s\n", c->name, sk_last_error());
        goto done;
    }
    for (int i = 0; i < sk_graph_n_nodes(g); i++) op_checked[node_at(g, i)->op] = true;
    for (int i = 0; i < c->n_in; i++) {
        const float *gr = c->as_param[i] ? grads[i] : sk_graph_grad(g, ids[i]);
        for (size_t j = 0; j < n[i]; j++) ana[i][j] = gr[j] * scale;
    }
    worst = 0;
    const double h = 1e-3;
    /* per tensor: max |analytic - numeric| / max |numeric| */
    for (int i = 0; i < c->n_in; i++) {
        double md = 0, mn = 0;
        size_t step = n[i] > 60 ? n[i] / 60 : 1;
        for (size_t j = 0; j < n[i]; j += step) {
            float keep = vals[i][j];
            vals[i][j] = (float)(keep + h);
            double lp = eval_loss(c, g, vals);
            vals[i][j] = (float)(keep - h);
            double lm = eval_loss(c, g, vals);
            vals[i][j] = keep;
            double num = (lp - lm) / (2 * h);
            md = fmax(md, fabs(num - ana[i][j]));
            mn = fmax(mn, fabs(num));
        }
        double err = md / fmax(mn, 1e-4);
        if (err > worst) worst = err;
    }
done:
    for (int i = 0; i < c->n_in; i++) {
        free(vals[i]);
        free(grads[i]);
        free(ana[i]);
    }
    sk_graph_free(g);
    return worst;
}

/* ---- builders ---- */
static int b_dense(struct sk_graph *g, const int *in, void *ctx) { (void)ctx; return sk_op_dense(g, in[0], in[1], in[2]); }
static int b_dense_nobias(struct sk_graph *g, const int *in, void *ctx) { (void)ctx; return sk_op_dense(g, in[0], in[1], -1); }
static int b_conv_s1p1(struct sk_graph *g, const int *in, void *ctx) { (void)ctx; return sk_op_conv2d(g, in[0], in[1], in[2], 1, 1); }
static int b_conv_s2p0(struct sk_graph *g, const int *in, void *ctx) { (void)ctx; return sk_op_conv2d(g, in[0], in[1], in[2], 2, 0); }
static int b_conv_s2p2(struct sk_graph *g, const int *in, void *ctx) { (void)ctx; return sk_op_conv2d(g, in[0], in[1], -1, 2, 2); }
static int b_maxpool(struct sk_graph *g, const int *in, void *ctx) { (void)ctx; return sk_op_maxpool2d(g, in[0], 2, 2); }
static int b_maxpool_ov(struct sk_graph *g, const int *in, void *ctx) { (void)ctx; return sk_op_maxpool2d(g, in[0], 3, 2); }
static int b_avgpool(struct sk_graph *g, const int *in, void *ctx) { (void)ctx; return sk_op_avgpool2d(g, in[0], 2, 2); }
static int b_avgpool_ov(struct sk_graph *g, const int *in, void *ctx) { (void)ctx; return sk_op_avgpool2d(g, in[0], 3, 1); }
static int b_gap(struct sk_graph *g, const int *in, void *ctx) { (void)ctx; return sk_op_global_avgpool(g, in[0]); }
static int b_flatten(struct sk_graph *g, const int *in, void *ctx) { (void)ctx; return sk_op_tanh(g, sk_op_flatten(g, in[0])); }
static int b_relu(struct sk_graph *g, const int *in, void *ctx) { (void)ctx; return sk_op_relu(g, in[0]); }
static int b_lrelu(struct sk_graph *g, const int *in, void *ctx) { (void)ctx; return sk_op_leaky_relu(g, in[0], 0.1f); }
static int b_tanh(struct sk_graph *g, const int *in, void *ctx) { (void)ctx; return sk_op_tanh(g, in[0]); }
static int b_sigmoid(struct sk_graph *g, const int *in, void *ctx) { (void)ctx; return sk_op_sigmoid(g, in[0]); }
static int b_softplus(struct sk_graph *g, const int *in, void *ctx) { (void)ctx; return sk_op_softplus(g, in[0]); }
static int b_gelu(struct sk_graph *g, const int *in, void *ctx) { (void)ctx; return sk_op_gelu(g, in[0]); }
static int b_dropout(struct sk_graph *g, const int *in, void *ctx) { (void)ctx; return sk_op_dropout(g, in[0], 0.3f, 1234); }
static float rm[8], rv[8];
static int b_bn_train(struct sk_graph *g, const int *in, void *ctx)
{
    (void)ctx;
    for (int i = 0; i < 8; i++) rm[i] = 0, rv[i] = 1;
    return sk_op_batchnorm(g, in[0], in[1], in[2], rm, rv, 0.1f, 1e-5f, true);
}
static int b_bn_eval(struct sk_graph *g, const int *in, void *ctx)
{
    (void)ctx;
    for (int i = 0; i < 8; i++) rm[i] = 0.1f * i, rv[i] = 0.5f + 0.2f * i;
    return sk_op_batchnorm(g, in[0], in[1], in[2], rm, rv, 0.1f, 1e-5f, false);
}
static int b_softmax(struct sk_graph *g, const int *in, void *ctx) { (void)ctx; return sk_op_softmax(g, in[0]); }
static int b_logsoftmax(struct sk_graph *g, const int *in, void *ctx) { (void)ctx; return sk_op_log_softmax(g, in[0]); }
static int b_add(struct sk_graph *g, const int *in, void *ctx) { (void)ctx; return sk_op_add(g, in[0], in[1]); }
static int b_sub(struct sk_graph *g, const int *in, void *ctx) { (void)ctx; return sk_op_sub(g, in[0], in[1]); }
static int b_mul(struct sk_graph *g, const int *in, void *ctx) { (void)ctx; return sk_op_mul(g, in[0], in[1]); }
static int b_scale(struct sk_graph *g, const int *in, void *ctx) { (void)ctx; return sk_op_scale(g, in[0], -2.5f); }
static int b_sum(struct sk_graph *g, const int *in, void *ctx) { (void)ctx; return sk_op_sum(g, sk_op_tanh(g, in[0])); }
static int b_mean(struct sk_graph *g, const int *in, void *ctx) { (void)ctx; return sk_op_mean(g, sk_op_tanh(g, in[0])); }
static int b_gauss(struct sk_graph *g, const int *in, void *ctx) { (void)ctx; return sk_op_gauss_sample(g, in[0], in[1], 77); }
static const int lab[6] = { 0, 3, 2, 4, 1, 3 };
static const int tgt[6] = { 1, 0, 4, 2, 3, 1 };
static int b_ce(struct sk_graph *g, const int *in, void *ctx) { (void)ctx; return sk_loss_cross_entropy(g, in[0], lab, 0.0f); }
static int b_ce_ls(struct sk_graph *g, const int *in, void *ctx) { (void)ctx; return sk_loss_cross_entropy(g, in[0], lab, 0.1f); }
static const float bt[6] = { 0, 1, 1, 0, 0.3f, 0.9f };
static int b_bce(struct sk_graph *g, const int *in, void *ctx) { (void)ctx; return sk_loss_bce_logits(g, in[0], bt); }
static int b_mse(struct sk_graph *g, const int *in, void *ctx) { (void)ctx; return sk_loss_mse(g, in[0], in[1]); }
static int b_kl(struct sk_graph *g, const int *in, void *ctx)
{
    (void)ctx;
    return sk_loss_kl_categorical(g, sk_op_log_softmax(g, in[0]), sk_op_log_softmax(g, in[1]));
}
static int b_nuc(struct sk_graph *g, const int *in, void *ctx) { (void)ctx; return sk_loss_nuclear(g, in[0]); }
static int b_cw(struct sk_graph *g, const int *in, void *ctx) { (void)ctx; return sk_loss_margin(g, in[0], lab, NULL, SK_MARGIN_CW); }
static int b_cw_t(struct sk_graph *g, const int *in, void *ctx) { (void)ctx; return sk_loss_margin(g, in[0], lab, tgt, SK_MARGIN_CW); }
static int b_dlr(struct sk_graph *g, const int *in, void *ctx) { (void)ctx; return sk_loss_margin(g, in[0], lab, NULL, SK_MARGIN_DLR); }
static int b_dlr_t(struct sk_graph *g, const int *in, void *ctx) { (void)ctx; return sk_loss_margin(g, in[0], lab, tgt, SK_MARGIN_DLR); }
static const float aff_shift[6] = { 0.5f, -1, 0, 2, 0.25f, -0.5f }, aff_scale[6] = { 2, 0.5f, 1, 3, 0.1f, 1.5f };
static int b_affine(struct sk_graph *g, const int *in, void *ctx) { (void)ctx; return sk_op_affine_cols(g, in[0], aff_shift, aff_scale); }

static int b_convt_s2p1(struct sk_graph *g, const int *in, void *ctx) { (void)ctx; return sk_op_conv_transpose2d(g, in[0], in[1], 2, 1, 5, 5); }
static int b_convt_s1p0(struct sk_graph *g, const int *in, void *ctx) { (void)ctx; return sk_op_conv_transpose2d(g, in[0], in[1], 1, 0, 5, 4); }
static int b_transpose(struct sk_graph *g, const int *in, void *ctx) { (void)ctx; return sk_op_transpose(g, in[0]); }
static int b_mul_groups(struct sk_graph *g, const int *in, void *ctx) { (void)ctx; return sk_op_mul_groups(g, in[0], in[1]); }
static int b_dot_groups(struct sk_graph *g, const int *in, void *ctx) { (void)ctx; return sk_op_dot_groups(g, in[0], in[1]); }
static int b_relu_slope(struct sk_graph *g, const int *in, void *ctx) { (void)ctx; return sk_op_relu_upper_slope(g, in[0], in[1]); }
static int b_concat(struct sk_graph *g, const int *in, void *ctx) { (void)ctx; return sk_op_concat(g, in[0], in[1]); }

#define S2(a, b) { a, b, 1, 1 }
#define S4(a, b, c, d) { a, b, c, d }

static void run_gradchecks(void)
{
    struct gc_case cases[] = {
        { "dense", 3, { 2, 2, 1 }, { S2(5, 7), S2(3, 7), S2(3, 1) }, { 0, 0, 0 }, -1, 1, 0, b_dense, NULL, 1e-2 },
        { "dense(params)", 3, { 2, 2, 1 }, { S2(4, 6), S2(5, 6), S2(5, 1) }, { 0, 1, 1 }, -1, 1, 0, b_dense, NULL, 1e-2 },
        { "dense(no bias)", 2, { 2, 2 }, { S2(1, 3), S2(2, 3) }, { 0, 0 }, -1, 1, 0, b_dense_nobias, NULL, 1e-2 },
        { "conv s1 p1", 3, { 4, 4, 1 }, { S4(2, 3, 5, 4), S4(4, 3, 3, 3), S2(4, 1) }, { 0, 1, 1 }, -1, 1, 0, b_conv_s1p1, NULL, 1e-2 },
        { "conv s2 p0", 3, { 4, 4, 1 }, { S4(1, 2, 7, 6), S4(3, 2, 3, 2), S2(3, 1) }, { 0, 0, 0 }, -1, 1, 0, b_conv_s2p0, NULL, 1e-2 },
        { "conv s2 p2", 2, { 4, 4 }, { S4(2, 1, 5, 5), S4(2, 1, 3, 3) }, { 0, 0 }, -1, 1, 0, b_conv_s2p2, NULL, 1e-2 },
        { "maxpool 2", 1, { 4 }, { S4(2, 3, 4, 5) }, { 0 }, -1, 1, 0, b_maxpool, NULL, 1e-2 },
        { "maxpool 3 s2", 1, { 4 }, { S4(1, 2, 7, 7) }, { 0 }, -1, 1, 0, b_maxpool_ov, NULL, 1e-2 },
        { "avgpool 2", 1, { 4 }, { S4(2, 3, 4, 5) }, { 0 }, -1, 1, 0, b_avgpool, NULL, 1e-2 },
        { "avgpool 3 s1", 1, { 4 }, { S4(1, 2, 5, 6) }, { 0 }, -1, 1, 0, b_avgpool_ov, NULL, 1e-2 },
        { "gap", 1, { 4 }, { S4(2, 3, 3, 4) }, { 0 }, -1, 1, 0, b_gap, NULL, 1e-2 },
        { "flatten", 1, { 4 }, { S4(2, 3, 2, 2) }, { 0 }, -1, 1, 0, b_flatten, NULL, 1e-2 },
        { "relu", 1, { 2 }, { S2(4, 9) }, { 0 }, -1, 1, 0.05f, b_relu, NULL, 1e-2 },
        { "leaky relu", 1, { 2 }, { S2(4, 9) }, { 0 }, -1, 1, 0.05f, b_lrelu, NULL, 1e-2 },
        { "tanh", 1, { 2 }, { S2(4, 9) }, { 0 }, -2, 2, 0, b_tanh, NULL, 1e-2 },
        { "sigmoid", 1, { 2 }, { S2(4, 9) }, { 0 }, -3, 3, 0, b_sigmoid, NULL, 1e-2 },
        { "softplus", 1, { 2 }, { S2(4, 9) }, { 0 }, -3, 3, 0, b_softplus, NULL, 1e-2 },
        { "gelu", 1, { 2 }, { S2(4, 9) }, { 0 }, -3, 3, 0, b_gelu, NULL, 1e-2 },
        { "dropout", 1, { 2 }, { S2(6, 9) }, { 0 }, -1, 1, 0, b_dropout, NULL, 1e-2 },
        { "batchnorm train 2d", 3, { 2, 1, 1 }, { S2(6, 4), S2(4, 1), S2(4, 1) }, { 0, 1, 1 }, -1, 1, 0, b_bn_train, NULL, 2e-2 },
        { "batchnorm train 4d", 3, { 4, 1, 1 }, { S4(3, 2, 3, 2), S2(2, 1), S2(2, 1) }, { 0, 1, 1 }, -1, 1, 0, b_bn_train, NULL, 2e-2 },
        { "batchnorm eval", 3, { 4, 1, 1 }, { S4(2, 3, 2, 2), S2(3, 1), S2(3, 1) }, { 0, 1, 1 }, -1, 1, 0, b_bn_eval, NULL, 1e-2 },
        { "softmax", 1, { 2 }, { S2(3, 5) }, { 0 }, -2, 2, 0, b_softmax, NULL, 1e-2 },
        { "log softmax", 1, { 2 }, { S2(3, 5) }, { 0 }, -2, 2, 0, b_logsoftmax, NULL, 1e-2 },
        { "add", 2, { 2, 2 }, { S2(3, 4), S2(3, 4) }, { 0, 0 }, -1, 1, 0, b_add, NULL, 1e-2 },
        { "sub", 2, { 2, 2 }, { S2(3, 4), S2(3, 4) }, { 0, 0 }, -1, 1, 0, b_sub, NULL, 1e-2 },
        { "mul", 2, { 2, 2 }, { S2(3, 4), S2(3, 4) }, { 0, 1 }, -1, 1, 0, b_mul, NULL, 1e-2 },
        { "scale", 1, { 2 }, { S2(3, 4) }, { 0 }, -1, 1, 0, b_scale, NULL, 1e-2 },
        { "sum", 1, { 3 }, { S4(2, 3, 4, 1) }, { 0 }, -1, 1, 0, b_sum, NULL, 1e-2 },
        { "mean", 1, { 3 }, { S4(2, 3, 4, 1) }, { 0 }, -1, 1, 0, b_mean, NULL, 1e-2 },
        { "gauss sample", 2, { 2, 2 }, { S2(3, 4), S2(3, 4) }, { 1, 1 }, -2, 1, 0, b_gauss, NULL, 1e-2 },
        { "cross entropy", 1, { 2 }, { S2(6, 5) }, { 0 }, -2, 2, 0, b_ce, NULL, 1e-2 },
        { "cross entropy smoothed", 1, { 2 }, { S2(6, 5) }, { 0 }, -2, 2, 0, b_ce_ls, NULL, 1e-2 },
        { "bce logits", 1, { 2 }, { S2(6, 1) }, { 0 }, -3, 3, 0, b_bce, NULL, 1e-2 },
        { "mse", 2, { 2, 2 }, { S2(3, 4), S2(3, 4) }, { 0, 0 }, -1, 1, 0, b_mse, NULL, 1e-2 },
        { "kl categorical", 2, { 2, 2 }, { S2(4, 5), S2(4, 5) }, { 0, 0 }, -2, 2, 0, b_kl, NULL, 1e-2 },
        { "nuclear norm tall", 1, { 2 }, { S2(7, 4) }, { 0 }, -2, 2, 0, b_nuc, NULL, 1e-2 },
        { "nuclear norm wide", 1, { 2 }, { S2(3, 6) }, { 0 }, -2, 2, 0, b_nuc, NULL, 1e-2 },
        { "cw margin", 1, { 2 }, { S2(6, 5) }, { 0 }, -2, 2, 0, b_cw, NULL, 1e-2 },
        { "cw margin targeted", 1, { 2 }, { S2(6, 5) }, { 0 }, -2, 2, 0, b_cw_t, NULL, 1e-2 },
        { "dlr margin", 1, { 2 }, { S2(6, 5) }, { 0 }, -2, 2, 0, b_dlr, NULL, 2e-2 },
        { "dlr margin targeted", 1, { 2 }, { S2(6, 5) }, { 0 }, -2, 2, 0, b_dlr_t, NULL, 2e-2 },
        { "affine cols", 1, { 4 }, { S4(3, 6, 1, 1) }, { 0 }, -2, 2, 0, b_affine, NULL, 1e-2 },
        { "conv transpose s2 p1", 2, { 4, 4 }, { S4(2, 3, 3, 3), S4(3, 2, 3, 3) }, { 0, 1 }, -1, 1, 0, b_convt_s2p1, NULL, 1e-2 },
        { "conv transpose s1 p0", 2, { 4, 4 }, { S4(1, 2, 4, 3), S4(2, 3, 2, 2) }, { 0, 0 }, -1, 1, 0, b_convt_s1p0, NULL, 1e-2 },
        { "transpose", 1, { 2 }, { S2(3, 5) }, { 0 }, -1, 1, 0, b_transpose, NULL, 1e-2 },
        { "mul groups", 2, { 2, 2 }, { S2(6, 4), S2(2, 4) }, { 0, 1 }, -1, 1, 0, b_mul_groups, NULL, 1e-2 },
        { "dot groups", 2, { 2, 2 }, { S2(6, 4), S2(2, 4) }, { 0, 0 }, -1, 1, 0, b_dot_groups, NULL, 1e-2 },
        { "relu upper slope", 2, { 2, 2 }, { S2(3, 4), S2(3, 4) }, { 0, 0 }, -1, 1, 0.05f, b_relu_slope, NULL, 1e-2 },
        { "concat 4d", 2, { 4, 4 }, { S4(2, 3, 2, 2), S4(2, 1, 2, 2) }, { 0, 1 }, -1, 1, 0, b_concat, NULL, 1e-2 },
        { "concat 2d", 2, { 2, 2 }, { S2(3, 2), S2(3, 5) }, { 0, 0 }, -1, 1, 0, b_concat, NULL, 1e-2 },
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        double e = gradcheck(&cases[i], 1000 + i, 1.0f);
        CHECK(e < cases[i].tol, "gradcheck %s: worst relative error %.3g (tol %.3g)", cases[i].name, e, cases[i].tol);
        /* the same check must catch a gradient that is 5%% off */
        double bad = gradcheck(&cases[i], 1000 + i, 1.05f);
        CHECK(bad > cases[i].tol || e == 0, "gradcheck %s does not notice a 5%% error (%.3g)", cases[i].name, bad);
    }
}

static void fill(float *p, size_t n, uint64_t seed)
{
    struct sk_rng r = sk_rng_new(seed);
    for (size_t i = 0; i < n; i++) p[i] = sk_rng_uniform(&r) * 2 - 1;
}

static void test_sgemm_twin(void)
{
    int dims[][3] = { { 1, 1, 1 }, { 7, 5, 3 }, { 33, 17, 65 }, { 128, 10, 784 }, { 3, 129, 2 } };
    for (size_t t = 0; t < sizeof dims / sizeof *dims; t++)
        for (int ta = 0; ta < 2; ta++)
            for (int tb = 0; tb < 2; tb++) {
                int M = dims[t][0], N = dims[t][1], K = dims[t][2];
                float *A = malloc(sizeof(float) * M * K), *B = malloc(sizeof(float) * K * N);
                float *C1 = malloc(sizeof(float) * M * N), *C2 = malloc(sizeof(float) * M * N);
                fill(A, (size_t)M * K, 1);
                fill(B, (size_t)K * N, 2);
                fill(C1, (size_t)M * N, 3);
                memcpy(C2, C1, sizeof(float) * M * N);
                sk_sgemm(ta, tb, M, N, K, 0.7f, A, ta ? M : K, B, tb ? K : N, 0.3f, C1, N);
                sk_sgemm_ref(ta, tb, M, N, K, 0.7f, A, ta ? M : K, B, tb ? K : N, 0.3f, C2, N);
                double e = sk_rel_err(C1, C2, (size_t)M * N);
                CHECK(e < 1e-5, "sgemm %dx%dx%d ta=%d tb=%d: rel err %.3g", M, N, K, ta, tb, e);
                free(A), free(B), free(C1), free(C2);
            }
}

static void test_conv_twin(void)
{
    /* N, C, H, W, OC, K, stride, pad */
    int cfg[][8] = { { 1, 1, 5, 5, 1, 3, 1, 0 }, { 3, 2, 7, 6, 5, 3, 2, 1 }, { 2, 3, 9, 9, 4, 5, 2, 2 },
                     { 1, 4, 6, 7, 3, 1, 1, 0 }, { 5, 1, 28, 28, 8, 3, 1, 1 }, { 2, 2, 4, 4, 3, 4, 3, 3 },
                     { 7, 3, 8, 5, 6, 3, 1, 1 }, { 4, 2, 11, 10, 3, 2, 2, 0 } };
    for (size_t t = 0; t < sizeof cfg / sizeof *cfg; t++)
        for (int T = 1; T <= 3; T++) {
            int N = cfg[t][0], C = cfg[t][1], H = cfg[t][2], W = cfg[t][3], OC = cfg[t][4], K = cfg[t][5];
            int s = cfg[t][6], p = cfg[t][7];
            int OH = (H + 2 * p - K) / s + 1, OW = (W + 2 * p - K) / s + 1;
            size_t nx = (size_t)N * C * H * W, nw = (size_t)OC * C * K * K, ny = (size_t)N * OC * OH * OW;
            float *x = malloc(nx * 4), *w = malloc(nw * 4), *b = malloc(OC * 4), *y1 = malloc(ny * 4);
            float *y2 = malloc(ny * 4), *dy = malloc(ny * 4);
            float *scratch = malloc(sk_conv2d_scratch_floats(C, H, W, OC, K, K, s, p, T) * 4);
            float *dx1 = malloc(nx * 4), *dx2 = malloc(nx * 4), *dw1 = malloc(nw * 4), *dw2 = malloc(nw * 4);
            float *db1 = malloc(OC * 4), *db2 = malloc(OC * 4);
            fill(x, nx, 10 + t), fill(w, nw, 20 + t), fill(b, OC, 30 + t), fill(dy, ny, 40 + t);
            /* backward adds: start from the same non-zero gradients on both sides */
            fill(dx1, nx, 50 + t), fill(dw1, nw, 60 + t), fill(db1, OC, 70 + t);
            memcpy(dx2, dx1, nx * 4), memcpy(dw2, dw1, nw * 4), memcpy(db2, db1, OC * 4);
            sk_conv2d_forward(y1, scratch, T, x, w, b, N, C, H, W, OC, K, K, s, p);
            sk_conv2d_forward_ref(y2, x, w, b, N, C, H, W, OC, K, K, s, p);
            CHECK(sk_rel_err(y1, y2, ny) < 1e-5, "conv forward case %zu T=%d: %.3g", t, T, sk_rel_err(y1, y2, ny));
            /* T == 2 also checks assign mode: dx overwritten, whatever it held */
            bool assign = T == 2;
            if (assign) memset(dx2, 0, nx * 4);
            sk_conv2d_backward(dx1, assign, dw1, db1, scratch, T, dy, x, w, N, C, H, W, OC, K, K, s, p);
            sk_conv2d_backward_ref(dx2, dw2, db2, dy, x, w, N, C, H, W, OC, K, K, s, p);
            CHECK(sk_rel_err(dx1, dx2, nx) < 1e-5, "conv dx case %zu T=%d: %.3g", t, T, sk_rel_err(dx1, dx2, nx));
            CHECK(sk_rel_err(dw1, dw2, nw) < 1e-5, "conv dW case %zu T=%d: %.3g", t, T, sk_rel_err(dw1, dw2, nw));
            CHECK(sk_rel_err(db1, db2, OC) < 1e-5, "conv db case %zu T=%d: %.3g", t, T, sk_rel_err(db1, db2, OC));
            free(x), free(w), free(b), free(y1), free(y2), free(scratch), free(dy);
            free(dx1), free(dx2), free(dw1), free(dw2), free(db1), free(db2);
        }
}

/* The fused conv -> ReLU -> max-pool op gives exactly (==, bit for bit up to
 * the sign of zeros) what the three ops give in a row: values, dx, dW, db.
 * Inputs on a coarse grid make ReLU zeros and max-pool ties common. */
static void test_fused_conv_twin(void)
{
    /* N, C, H, W, OC, K, stride, pad, pool k, pool stride */
    int cfg[][10] = { { 3, 2, 9, 8, 4, 3, 1, 1, 2, 2 }, { 2, 1, 28, 28, 8, 3, 1, 1, 2, 2 },
                      { 1, 3, 11, 10, 5, 3, 2, 1, 3, 1 }, { 5, 2, 7, 7, 3, 2, 1, 0, 2, 2 },
                      { 2, 2, 9, 9, 3, 3, 1, 1, 2, 2 }, { 4, 3, 6, 13, 6, 3, 1, 1, 3, 2 } };
    for (size_t t = 0; t < sizeof cfg / sizeof *cfg; t++)
        for (int grid = 0; grid < 2; grid++) {
            int N = cfg[t][0], C = cfg[t][1], H = cfg[t][2], W = cfg[t][3], OC = cfg[t][4], K = cfg[t][5];
            int s = cfg[t][6], p = cfg[t][7], pk = cfg[t][8], ps = cfg[t][9];
            size_t nx = (size_t)N * C * H * W, nw = (size_t)OC * C * K * K;
            float *x = malloc(nx * 4), *w = malloc(nw * 4), *b = malloc(OC * 4);
            float *dw1 = calloc(nw, 4), *dw2 = calloc(nw, 4), *db1 = calloc(OC, 4), *db2 = calloc(OC, 4);
            fill(x, nx, 100 + t), fill(w, nw, 110 + t), fill(b, OC, 120 + t);
            if (grid) {
                for (size_t i = 0; i < nx; i++) x[i] = floorf(x[i] * 2.0f);
                for (size_t i = 0; i < nw; i++) w[i] = floorf(w[i] * 2.0f);
                for (int i = 0; i < OC; i++) b[i] = floorf(b[i] * 2.0f);
            }
            struct sk_graph *g1 = sk_graph_new(), *g2 = sk_graph_new();
            int xs[4] = { N, C, H, W }, ws[4] = { OC, C, K, K };
            int x1 = sk_graph_input(g1, x, 4, xs, true), x2 = sk_graph_input(g2, x, 4, xs, true);
            int w1 = sk_graph_param(g1, w, dw1, 4, ws), w2 = sk_graph_param(g2, w, dw2, 4, ws);
            int b1 = sk_graph_param(g1, b, db1, 1, &OC), b2 = sk_graph_param(g2, b, db2, 1, &OC);
            int y1 = sk_op_maxpool2d(g1, sk_op_relu(g1, sk_op_conv2d(g1, x1, w1, b1, s, p)), pk, ps);
            int y2 = sk_op_conv2d_relu_maxpool(g2, x2, w2, b2, s, p, pk, ps);
            CHECK(y1 >= 0 && y2 >= 0, "fused case %zu builds (%d, %d): %s", t, y1, y2, sk_last_error());
            if (y1 < 0 || y2 < 0) continue;
            size_t ny = sk_graph_numel(g1, y1);
            CHECK(ny == sk_graph_numel(g2, y2), "fused case %zu: output sizes", t);
            float *dy = malloc(ny * 4);
            fill(dy, ny, 130 + t);
            int same_y = 1, same_dx = 1, same_dw = 1, same_db = 1;
            const float *v1 = sk_graph_value(g1, y1), *v2 = sk_graph_value(g2, y2);
            for (size_t i = 0; i < ny; i++) same_y &= v1[i] == v2[i];
            sk_graph_backward(g1, y1, dy);
            sk_graph_backward(g2, y2, dy);
            const float *dx1 = sk_graph_grad(g1, x1), *dx2 = sk_graph_grad(g2, x2);
            for (size_t i = 0; i < nx; i++) same_dx &= dx1[i] == dx2[i];
            for (size_t i = 0; i < nw; i++) same_dw &= dw1[i] == dw2[i];
            for (int i = 0; i < OC; i++) same_db &= db1[i] == db2[i];
            CHECK(same_y && same_dx && same_dw && same_db, "fused conv-relu-maxpool case %zu grid=%d: y %d dx %d dW %d db %d",
                  t, grid, same_y, same_dx, same_dw, same_db);
            sk_graph_free(g1), sk_graph_free(g2);
            free(x), free(w), free(b), free(dw1), free(dw2), free(db1), free(db2), free(dy);
        }
}

static void test_pool_twin(void)
{
    /* N, C, H, W, k, s; the 2x2/2 cases cover the vectorised path (rows of 1,
     * 14, 15, 16, 17 outputs: tails, one and two vectors) */
    int cfg[][6] = { { 1, 1, 2, 2, 2, 2 }, { 3, 2, 7, 5, 2, 2 }, { 2, 3, 9, 8, 3, 2 }, { 1, 1, 5, 5, 3, 1 },
                     { 2, 3, 28, 28, 2, 2 }, { 1, 2, 6, 30, 2, 2 }, { 1, 1, 5, 35, 2, 2 }, { 1, 2, 4, 33, 2, 2 },
                     { 2, 2, 7, 9, 2, 1 } };
    for (size_t t = 0; t < sizeof cfg / sizeof *cfg; t++)
        for (int ties = 0; ties < 2; ties++) {
            int N = cfg[t][0], C = cfg[t][1], H = cfg[t][2], W = cfg[t][3], k = cfg[t][4], s = cfg[t][5];
            int OH = (H - k) / s + 1, OW = (W - k) / s + 1;
            size_t nx = (size_t)N * C * H * W, ny = (size_t)N * C * OH * OW;
            float *x = malloc(nx * 4), *y1 = malloc(ny * 4), *y2 = malloc(ny * 4), *dy = malloc(ny * 4);
            float *dx1 = malloc(nx * 4), *dx2 = malloc(nx * 4);
            int *arg = malloc(ny * sizeof(int));
            fill(x, nx, 50 + t);
            fill(dy, ny, 60 + t);
            /* ties: values on a coarse grid, so windows hold equal maxima */
            if (ties)
                for (size_t i = 0; i < nx; i++) x[i] = floorf(x[i] * 2.0f);
            sk_maxpool_forward(y1, arg, x, N, C, H, W, k, s);
            sk_maxpool_forward_ref(y2, x, N, C, H, W, k, s);
            CHECK(sk_rel_err(y1, y2, ny) == 0, "maxpool case %zu ties=%d differs", t, ties);
            fill(dx1, nx, 70 + t);
            memcpy(dx2, dx1, nx * 4);
            sk_maxpool_backward(dx1, false, dy, arg, N, C, H, W, OH, OW);
            sk_maxpool_backward_ref(dx2, dy, x, N, C, H, W, k, s);
            CHECK(sk_rel_err(dx1, dx2, nx) < 1e-6, "maxpool backward case %zu ties=%d: %.3g", t, ties,
                  sk_rel_err(dx1, dx2, nx));
            memset(dx2, 0, nx * 4);
            sk_maxpool_backward(dx1, true, dy, arg, N, C, H, W, OH, OW);
            sk_maxpool_backward_ref(dx2, dy, x, N, C, H, W, k, s);
            CHECK(sk_rel_err(dx1, dx2, nx) < 1e-6, "maxpool backward (assign) case %zu ties=%d", t, ties);
            sk_avgpool_forward(y1, x, N, C, H, W, k, s);
            sk_avgpool_forward_ref(y2, x, N, C, H, W, k, s);
            CHECK(sk_rel_err(y1, y2, ny) < 1e-6, "avgpool case %zu: %.3g", t, sk_rel_err(y1, y2, ny));
            fill(dx1, nx, 80 + t);
            memcpy(dx2, dx1, nx * 4);
            sk_avgpool_backward(dx1, false, dy, N, C, H, W, k, s);
            sk_avgpool_backward_ref(dx2, dy, N, C, H, W, k, s);
            CHECK(sk_rel_err(dx1, dx2, nx) < 1e-6, "avgpool backward case %zu: %.3g", t, sk_rel_err(dx1, dx2, nx));
            free(x), free(y1), free(y2), free(dy), free(dx1), free(dx2), free(arg);
        }
}

/* Nuclear norm against hand-built singular value decompositions. */
static double nuc_case(const float *a, int N, int K, float *grad)
{
    struct sk_graph *g = sk_graph_new();
    int ai = sk_graph_input(g, a, 2, (int[]){ N, K }, true);
    int L = sk_loss_nuclear(g, ai);
    SK_ASSERT(L >= 0);
    SK_ASSERT(sk_graph_backward(g, L, NULL) == SK_OK);
    double v = sk_graph_value(g, L)[0];
    memcpy(grad, sk_graph_grad(g, ai), sizeof(float) * (size_t)N * K);
    sk_graph_free(g);
    return v;
}

static void test_nuclear(void)
{
    /* A = 5 u1 v1^T + 2 u2 v2^T with orthonormal u (3-d) and v (2-d): ||A||_* = 7, gradient u1 v1^T + u2 v2^T */
    const double u1[3] = { 0.6, 0.8, 0 }, u2[3] = { -0.48, 0.36, 0.8 }, v1[2] = { 0.28, 0.96 }, v2[2] = { -0.96, 0.28 };
    float a[6], gr[12];
    double want[6];
    for (int i = 0; i < 3; i++)
        for (int j = 0; j < 2; j++) {
            a[i * 2 + j] = (float)(5 * u1[i] * v1[j] + 2 * u2[i] * v2[j]);
            want[i * 2 + j] = u1[i] * v1[j] + u2[i] * v2[j];
        }
    double v = nuc_case(a, 3, 2, gr), worst = 0;
    for (int i = 0; i < 6; i++) worst = fmax(worst, fabs(gr[i] - want[i]));
    CHECK(fabs(v - 7) < 1e-5, "nuclear norm of a rank-2 3x2 matrix with singular values 5, 2: %.7f (want 7)", v);
    CHECK(worst < 1e-5, "its gradient is U V^T (worst error %.3g)", worst);
    /* the transpose has the same norm and the transposed gradient */
    float at[6], gt[6];
    for (int i = 0; i < 3; i++)
        for (int j = 0; j < 2; j++) at[j * 3 + i] = a[i * 2 + j];
    double vt = nuc_case(at, 2, 3, gt);
    worst = 0;
    for (int i = 0; i < 3; i++)
        for (int j = 0; j < 2; j++) worst = fmax(worst, fabs(gt[j * 3 + i] - want[i * 2 + j]));
    CHECK(fabs(vt - 7) < 1e-5 && worst < 1e-5, "the 2x3 transpose: %.7f, gradient error %.3g", vt, worst);
    /* rank 1, u v^T with |u| = 3, |v| = 2 (4x3): norm 6, gradient u v^T / 6 (the zero singular values add nothing) */
    const float u[4] = { 1, 2, 0, -2 }, w[3] = { 1.2f, 0, -1.6f };
    float r1[12];
    for (int i = 0; i < 4; i++)
        for (int j = 0; j < 3; j++) r1[i * 3 + j] = u[i] * w[j];
    double v1n = nuc_case(r1, 4, 3, gr);
    worst = 0;
    for (int i = 0; i < 12; i++) worst = fmax(worst, fabs(gr[i] - r1[i] / 6.0));
    CHECK(fabs(v1n - 6) < 1e-5 && worst < 1e-5, "rank-1 4x3: norm %.7f (want 6), gradient error %.3g", v1n, worst);
    /* zero: norm 0, gradient 0 (not NaN) */
    float z[12] = { 0 };
    double v0 = nuc_case(z, 4, 3, gr);
    int finite0 = 1;
    for (int i = 0; i < 12; i++) finite0 &= gr[i] == 0.0f;
    CHECK(v0 == 0 && finite0, "zero matrix: norm %g, gradient all zero %d", v0, finite0);
}

static void test_errors(void)
{
    struct sk_graph *g = sk_graph_new();
    float x[12] = { 0 }, w[6] = { 0 };
    int xi = sk_graph_input(g, x, 2, (int[]){ 3, 4 }, true);
    int wi = sk_graph_input(g, w, 2, (int[]){ 2, 3 }, false);
    int y = sk_op_dense(g, xi, wi, -1);
    CHECK(y == SK_EINVAL, "dense with mismatched W returns SK_EINVAL (%d)", y);
    CHECK(strstr(sk_last_error(), "W is [2,3]") != NULL, "message names the shape: %s", sk_last_error());
    int z = sk_op_relu(g, y);
    CHECK(z == SK_EINVAL, "an op given a failed node propagates its status (%d)", z);
    int badlab[3] = { 0, 7, 1 };
    int L = sk_loss_cross_entropy(g, xi, badlab, 0);
    CHECK(L == SK_EINVAL && strstr(sk_last_error(), "label 7"), "bad label rejected: %s", sk_last_error());
    sk_graph_free(g);
    /* a backward run again with another seed gives that seed's gradient */
    g = sk_graph_new();
    float a[4] = { 1, -2, 3, 0.5f };
    int ai = sk_graph_input(g, a, 2, (int[]){ 2, 2 }, true);
    int s = sk_op_scale(g, ai, 3.0f);
    float seed1[4] = { 1, 0, 0, 0 }, seed2[4] = { 0, 0, 2, 0 };
    sk_graph_backward(g, s, seed1);
    CHECK(sk_graph_grad(g, ai)[0] == 3.0f && sk_graph_grad(g, ai)[2] == 0.0f, "first seed");
    sk_graph_backward(g, s, seed2);
    CHECK(sk_graph_grad(g, ai)[0] == 0.0f && sk_graph_grad(g, ai)[2] == 6.0f, "second seed replaces the first");
    sk_graph_free(g);
}


/* Every op id has a row: a unique name, a forward (leaves and views
 * excepted), and a backward or the reason it has none; every backward is
 * gradient-checked above (run_gradchecks first). */
static void test_op_table(void)
{
    for (int op = 0; op < OP_COUNT; op++) {
        const struct sk_op_def *d = &sk_op_table[op];
        CHECK(d->name && d->name[0], "op %d has no name", op);
        if (!d->name) continue;
        for (int q = 0; q < op; q++)
            CHECK(!sk_op_table[q].name || strcmp(sk_op_table[q].name, d->name), "ops %d and %d are both '%s'", q, op,
                  d->name);
        CHECK((d->backward != NULL) != (d->no_grad != NULL), "op %s: a backward, or (only then) why it has none",
              d->name);
        CHECK(d->forward || d->no_grad, "op %s: no forward, and not a leaf or view", d->name);
        CHECK(!d->hvp || d->backward, "op %s: a second-order rule without a backward", d->name);
        /* the fused conv is compared bit for bit with the checked chain in test_fused_conv_twin */
        if (d->backward && op != OP_CONV_RELU_POOL)
            CHECK(op_checked[op], "op %s has a backward but no gradient check", d->name);
    }
    struct sk_graph *g = sk_graph_new();
    float x[4] = { -1, 2, -3, 4 };
    int xi = sk_graph_input(g, x, 2, (int[]){ 2, 2 }, false);
    int y = sk_op_log_softmax(g, sk_op_relu(g, xi));
    CHECK(!strcmp(sk_graph_op_name(g, xi), "input") && !strcmp(sk_graph_op_name(g, y), "log_softmax") &&
              !strcmp(sk_graph_op_name(g, y + 1), "?"),
          "op names of nodes: %s, %s, %s", sk_graph_op_name(g, xi), sk_graph_op_name(g, y), sk_graph_op_name(g, y + 1));
    sk_graph_free(g);
}

/* Forwards read only their node: running the table's forwards again over a
 * recorded tape reproduces every value bit for bit. */
static void test_forward_replay(void)
{
    float x[2 * 36], w[3 * 9], b[3], dw[4 * 27], db[4], gm[4], beta[4], rmean[4] = { 0.1f, -0.2f, 0, 0.3f };
    float rvar[4] = { 1, 0.5f, 2, 1.5f }, rho[4], shift[36], scale[36];
    int labels[2] = { 1, 3 };
    fill(x, 72, 11);
    fill(w, 27, 12);
    fill(b, 3, 13);
    fill(dw, 108, 14);
    fill(db, 4, 15);
    fill(gm, 4, 16);
    fill(beta, 4, 17);
    fill(rho, 4, 18);
    fill(shift, 36, 19);
    for (int i = 0; i < 36; i++) scale[i] = 0.5f + 0.01f * (float)i;
    struct sk_graph *g = sk_graph_new();
    int xi = sk_graph_input(g, x, 4, (int[]){ 2, 1, 6, 6 }, true);
    int h = sk_op_affine_cols(g, xi, shift, scale);
    int W = sk_graph_param(g, w, NULL, 4, (int[]){ 3, 1, 3, 3 }), B = sk_graph_param(g, b, NULL, 1, (int[]){ 3 });
    int a = sk_op_maxpool2d(g, sk_op_relu(g, sk_op_conv2d(g, h, W, B, 1, 1)), 2, 2);
    int f = sk_op_conv2d_relu_maxpool(g, h, W, B, 1, 1, 2, 2);
    h = sk_op_flatten(g, sk_op_add(g, sk_op_avgpool2d(g, a, 1, 1), sk_op_scale(g, f, 0.5f)));
    int D = sk_graph_param(g, dw, NULL, 2, (int[]){ 4, 27 }), Db = sk_graph_param(g, db, NULL, 1, (int[]){ 4 });
    h = sk_op_dropout(g, sk_op_dense(g, h, D, Db), 0.25f, 99);
    int G = sk_graph_param(g, gm, NULL, 1, (int[]){ 4 }), Bt = sk_graph_param(g, beta, NULL, 1, (int[]){ 4 });
    h = sk_op_batchnorm(g, h, G, Bt, rmean, rvar, 0.1f, 1e-5f, false);
    int R = sk_graph_param(g, rho, NULL, 1, (int[]){ 4 });
    int s = sk_op_gauss_sample(g, G, R, 5);
    h = sk_op_mul(g, sk_op_tanh(g, h), sk_op_sigmoid(g, sk_op_sub(g, h, sk_op_softplus(g, h))));
    int z = sk_op_sub(g, sk_op_gelu(g, h), sk_op_leaky_relu(g, h, 0.1f));
    int L = sk_op_add(g, sk_loss_cross_entropy(g, z, labels, 0.1f), sk_loss_margin(g, z, labels, NULL, SK_MARGIN_DLR));
    L = sk_op_add(g, L, sk_op_mean(g, sk_op_softmax(g, z)));
    L = sk_op_add(g, L, sk_op_sum(g, sk_op_step(g, s)));
    L = sk_op_add(g, L, sk_loss_kl_categorical(g, sk_op_log_softmax(g, z), sk_op_log_softmax(g, h)));
    L = sk_op_add(g, L, sk_loss_nuclear(g, z));
    CHECK(L >= 0, "replay graph recorded (%s)", sk_last_error());
    if (L < 0) {
        sk_graph_free(g);
        return;
    }
    int n = sk_graph_n_nodes(g);
    size_t total = 0;
    for (int i = 0; i < n; i++) total += sk_graph_numel(g, i);
    float *keep = malloc(total * sizeof(float));
    size_t off = 0;
    for (int i = 0; i < n; i++) {
        memcpy(keep + off, sk_graph_value(g, i), sk_graph_numel(g, i) * sizeof(float));
        off += sk_graph_numel(g, i);
    }
    for (int i = 0; i < n; i++) {
        struct sk_node *nd = node_at(g, i);
        if (!sk_op_table[nd->op].forward) continue;
        for (size_t q = 0; q < nd->n; q++) nd->val[q] = NAN;
        sk_op_table[nd->op].forward(g, nd);
    }
    int same = 0, ops = 0;
    off = 0;
    for (int i = 0; i < n; i++) {
        size_t k = sk_graph_numel(g, i);
        same += memcmp(keep + off, sk_graph_value(g, i), k * sizeof(float)) == 0;
        ops += sk_op_table[node_at(g, i)->op].forward != NULL;
        off += k;
    }
    CHECK(same == n, "replaying %d forwards reproduces %d of %d node values bit for bit", ops, same, n);
    free(keep);
    sk_graph_free(g);
}

/* Every layer kind has a row: a name (sk_layer_name), a forward, an
 * initialiser exactly when it has parameters, a linear map or a closed-form
 * Lipschitz constant, and IBP or the reason it has none. The layer table
 * (model/) is checked here beside the op table it is built on. */
static void test_layer_table(void)
{
    for (int k = 0; k < SK_LAYER_COUNT; k++) {
        const struct sk_layer_def *d = &sk_layer_table[k];
        CHECK(d->name && d->forward, "layer kind %d has a name and a forward", k);
        if (!d->name) continue;
        CHECK(!strcmp(sk_layer_name((enum sk_layer_kind)k), d->name), "sk_layer_name(%d) is the table's", k);
        CHECK((d->params != NULL) == (d->init != NULL), "layer %s: an initialiser iff it has parameters", d->name);
        /* two-input layers (add, cat): the Lipschitz bound refuses graphs */
        CHECK(d->join ? !d->linear && !d->lipschitz : (d->linear != NULL) != (d->lipschitz != NULL),
              "layer %s: a linear map or a Lipschitz constant (none for add, cat)", d->name);
        CHECK((d->ibp != NULL) != (d->ibp_note != NULL), "layer %s: IBP, or (only then) why not", d->name);
    }
    CHECK(!strcmp(sk_layer_name(SK_LAYER_COUNT), "?"), "no name past the last kind");
}

/* The double-precision door against triple loops. */
static void test_blas_door(void)
{
    enum { M = 7, N = 5, K = 6 };
    double A[M * K], B[K * N], C[M * N], R[M * N];
    struct sk_rng r = sk_rng_new(3);
    for (int i = 0; i < M * K; i++) A[i] = sk_rng_uniform_d(&r) - 0.5;
    for (int i = 0; i < K * N; i++) B[i] = sk_rng_uniform_d(&r) - 0.5;
    double worst = 0;
    for (int ta = 0; ta < 2; ta++)
        for (int tb = 0; tb < 2; tb++) {
            for (int i = 0; i < M * N; i++) C[i] = R[i] = 0.25 * i;
            /* A is op(A) [M,K] read as [K,M] when transposed; B likewise */
            sk_dgemm(ta, tb, M, N, K, 1.5, A, ta ? M : K, B, tb ? K : N, -0.5, C, N);
            for (int i = 0; i < M; i++)
                for (int j = 0; j < N; j++) {
                    double s = 0;
                    for (int q = 0; q < K; q++)
                        s += (ta ? A[q * M + i] : A[i * K + q]) * (tb ? B[j * K + q] : B[q * N + j]);
                    R[i * N + j] = 1.5 * s - 0.5 * R[i * N + j];
                }
            for (int i = 0; i < M * N; i++) worst = fmax(worst, fabs(C[i] - R[i]));
        }
    CHECK(worst < 1e-12, "sk_dgemm matches the triple loop (max diff %.3g)", worst);
    /* syrk: upper triangle of A A^T (A [M,K]) and of A^T A; the lower one untouched */
    double S[M * M], T[K * K];
    for (int i = 0; i < M * M; i++) S[i] = -7;
    for (int i = 0; i < K * K; i++) T[i] = -7;
    sk_dsyrk(false, M, K, 1.0, A, K, 0.0, S, M);
    sk_dsyrk(true, K, M, 2.0, A, K, 0.0, T, K);
    worst = 0;
    bool lower_kept = true;
    for (int i = 0; i < M; i++)
        for (int j = 0; j < M; j++) {
            double s = 0;
            for (int q = 0; q < K; q++) s += A[i * K + q] * A[j * K + q];
            if (j >= i) worst = fmax(worst, fabs(S[i * M + j] - s));
            else lower_kept &= S[i * M + j] == -7;
        }
    for (int i = 0; i < K; i++)
        for (int j = i; j < K; j++) {
            double s = 0;
            for (int q = 0; q < M; q++) s += A[q * K + i] * A[q * K + j];
            worst = fmax(worst, fabs(T[i * K + j] - 2 * s));
        }
    CHECK(worst < 1e-12 && lower_kept, "sk_dsyrk: upper triangles match (max diff %.3g), lower kept %d", worst,
          lower_kept);
    /* dsyev on S (symmetrised): S v_i = w_i v_i, ascending, unit rows */
    double E[M * M], w[M];
    for (int i = 0; i < M; i++)
        for (int j = 0; j < M; j++) E[i * M + j] = S[(i < j ? i : j) * M + (i < j ? j : i)];
    double Ssym[M * M];
    memcpy(Ssym, E, sizeof E);
    int rc = sk_dsyev(E, M, w);
    worst = 0;
    bool ascending = true;
    for (int i = 0; i < M; i++) {
        double nn = 0;
        for (int j = 0; j < M; j++) {
            double s = 0;
            for (int q = 0; q < M; q++) s += Ssym[j * M + q] * E[i * M + q];
            worst = fmax(worst, fabs(s - w[i] * E[i * M + j]));
            nn += E[i * M + j] * E[i * M + j];
        }
        worst = fmax(worst, fabs(nn - 1));
        if (i) ascending &= w[i] >= w[i - 1];
    }
    CHECK(rc == SK_OK && worst < 1e-10 && ascending, "sk_dsyev: rc %d, max residual %.3g, ascending %d", rc, worst,
          ascending);
}

int main(void)
{
    sk_set_threads(2);
    run_gradchecks();
    test_sgemm_twin();
    test_conv_twin();
    test_pool_twin();
    test_fused_conv_twin();
    test_nuclear();
    test_errors();
    test_op_table();
    test_forward_replay();
    test_layer_table();
    test_blas_door();
    free(rvec);
    return sk_test_finish("test_ops");
}
