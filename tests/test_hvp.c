/* Exact Hessian-vector products (sk_graph_hvp, sk_model_hvp*): every op's
 * second-order rule against central differences of the exact gradient (with
 * Richardson extrapolation), w.r.t. inputs and parameters; symmetry
 * u.Hv = v.Hu; quadratic losses against their known Hessians; the model
 * level against the finite-difference oracle; ops without a rule refused. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "graph/graph_impl.h"
#include "skeptic/skeptic.h"
#include "testutil.h"

#define MAXIN 3

struct hc_case {
    const char *name;
    int n_in;
    int ndim[MAXIN];
    int shape[MAXIN][4];
    bool as_param[MAXIN];
    float lo, hi;  /* input range */
    float away;    /* keep |x| >= away (kinks at 0) */
    int (*build)(struct sk_graph *g, const int *in);
    double tol;    /* relative error allowed against the differences */
    double h;      /* difference step, a power of two (0: 2^-7); small where winners could swap */
};

static size_t numel(const int *s, int nd)
{
    size_t n = 1;
    for (int i = 0; i < nd; i++) n *= (size_t)s[i];
    return n;
}

static bool op_checked[OP_COUNT];
static float *rvec;
static size_t rvec_n;

/* L = sum(out r) + sum(out^2)/2 with a fixed random r: the square makes
 * linear ops (pooling, dense in x) have a Hessian, the r term exercises
 * each op's own second derivative. */
static int record(const struct hc_case *c, struct sk_graph *g, float **vals, float **grads, int *ids)
{
    for (int i = 0; i < c->n_in; i++)
        ids[i] = c->as_param[i] ? sk_graph_param(g, vals[i], grads[i], c->ndim[i], c->shape[i])
                                : sk_graph_input(g, vals[i], c->ndim[i], c->shape[i], true);
    int out = c->build(g, ids);
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
    int lin = sk_op_sum(g, sk_op_mul(g, out, rs));
    int sq = sk_op_scale(g, sk_op_sum(g, sk_op_mul(g, out, out)), 0.5f);
    return sk_op_add(g, lin, sq);
}

struct hc_state {
    const struct hc_case *c;
    struct sk_graph *g;
    size_t n[MAXIN];
    float *vals[MAXIN], *grads[MAXIN], *tmp[MAXIN];
};

/* The gradient of every leaf at vals + s v into out[i]. */
static int grad_at(struct hc_state *st, float *const *v, double s, double **out)
{
    const struct hc_case *c = st->c;
    int ids[MAXIN];
    for (int i = 0; i < c->n_in; i++) {
        for (size_t j = 0; j < st->n[i]; j++) st->tmp[i][j] = (float)(st->vals[i][j] + s * (v[i] ? v[i][j] : 0));
        memset(st->grads[i], 0, st->n[i] * sizeof(float));
    }
    sk_graph_reset(st->g);
    int L = record(c, st->g, st->tmp, st->grads, ids);
    if (L < 0 || sk_graph_backward(st->g, L, NULL)) return -1;
    for (int i = 0; i < c->n_in; i++) {
        const float *gr = c->as_param[i] ? st->grads[i] : sk_graph_grad(st->g, ids[i]);
        for (size_t j = 0; j < st->n[i]; j++) out[i][j] = gr[j];
    }
    return 0;
}

/* Exact H v (all leaves' blocks) into hv[i]; v[i] NULL = zero direction. */
static int hvp_at(struct hc_state *st, float *const *v, float **hv)
{
    const struct hc_case *c = st->c;
    int ids[MAXIN];
    for (int i = 0; i < c->n_in; i++) memset(st->grads[i], 0, st->n[i] * sizeof(float));
    sk_graph_reset(st->g);
    int L = record(c, st->g, st->vals, st->grads, ids);
    if (L < 0) return L;
    for (int i = 0; i < c->n_in; i++) {
        memset(hv[i], 0, st->n[i] * sizeof(float));
        int rc = sk_graph_set_direction(st->g, ids[i], v[i], hv[i]);
        if (rc) return rc;
    }
    for (int i = 0; i < c->n_in; i++)
        if (c->as_param[i]) st->grads[i][0] = 7; /* H v leaves parameter gradients alone */
    int rc = sk_graph_hvp(st->g, L);
    for (int i = 0; i < sk_graph_n_nodes(st->g); i++) op_checked[node_at(st->g, i)->op] = true;
    for (int i = 0; i < c->n_in; i++)
        for (size_t j = 0; j < st->n[i] && c->as_param[i]; j++)
            if (st->grads[i][j] != (j ? 0 : 7)) return sk_error(SK_ESTATE, "parameter %d's gradient was written", i);
    return rc;
}

/* Worst relative error of the exact HVP (times `scale`, to prove the check
 * can fail) against Richardson-extrapolated central differences, over three
 * directions: on every leaf, on the inputs only, on the parameters only.
 * *sym: worst |u.Hv - v.Hu| / (|u| |Hv| + |v| |Hu|). */
static double hvpcheck(const struct hc_case *c, uint64_t seed, float scale, double *sym)
{
    struct hc_state st = { .c = c, .g = sk_graph_new() };
    float *v[MAXIN], *u[MAXIN], *hv[MAXIN], *hu[MAXIN], *vm[MAXIN];
    double *g1[MAXIN], *g2[MAXIN], *g3[MAXIN], *g4[MAXIN];
    struct sk_rng r = sk_rng_new(seed);
    for (int i = 0; i < c->n_in; i++) {
        size_t n = st.n[i] = numel(c->shape[i], c->ndim[i]);
        st.vals[i] = malloc(n * 4), st.grads[i] = malloc(n * 4), st.tmp[i] = malloc(n * 4);
        v[i] = malloc(n * 4), u[i] = malloc(n * 4), hv[i] = malloc(n * 4), hu[i] = malloc(n * 4);
        g1[i] = malloc(n * 8), g2[i] = malloc(n * 8), g3[i] = malloc(n * 8), g4[i] = malloc(n * 8);
        /* x on a 2^-12 grid and v on a 2^-6 grid: x + s v is exact in float
         * for the power-of-two steps s used below, so the differences see
         * exactly the perturbation they divide by */
        for (size_t j = 0; j < n; j++) {
            float x;
            do x = roundf((c->lo + (c->hi - c->lo) * sk_rng_uniform(&r)) * 4096) / 4096;
            while (fabsf(x) < c->away);
            st.vals[i][j] = x;
            v[i][j] = roundf((sk_rng_uniform(&r) * 2 - 1) * 64) / 64;
            u[i][j] = roundf((sk_rng_uniform(&r) * 2 - 1) * 64) / 64;
        }
    }
    double worst = 0, h = c->h > 0 ? c->h : 1.0 / 128;
    *sym = 0;
    for (int which = 0; which < 3; which++) {
        bool any = false;
        for (int i = 0; i < c->n_in; i++) {
            bool on = which == 0 || (which == 1) == !c->as_param[i];
            vm[i] = on ? v[i] : NULL;
            any |= on;
        }
        if (!any) continue;
        if (hvp_at(&st, vm, hv)) {
            fprintf(stderr, "%s: hvp failed: %s\n", c->name, sk_last_error());
            worst = INFINITY;
            break;
        }
        if (grad_at(&st, vm, h, g1) || grad_at(&st, vm, -h, g2) || grad_at(&st, vm, h / 2, g3) ||
            grad_at(&st, vm, -h / 2, g4)) {
            worst = INFINITY;
            break;
        }
        double md = 0, mn = 0;
        for (int i = 0; i < c->n_in; i++)
            for (size_t j = 0; j < st.n[i]; j++) {
                double d1 = (g1[i][j] - g2[i][j]) / (2 * h), d2 = (g3[i][j] - g4[i][j]) / h;
                double num = (4 * d2 - d1) / 3;
                md = fmax(md, fabs(num - scale * hv[i][j]));
                mn = fmax(mn, fabs(num));
            }
        double err = md / fmax(mn, 1e-3);
        worst = fmax(worst, err);
        if (which == 0) { /* symmetry on the full direction */
            float *um[MAXIN];
            for (int i = 0; i < c->n_in; i++) um[i] = u[i];
            if (hvp_at(&st, um, hu)) {
                worst = INFINITY;
                break;
            }
            double uhv = 0, vhu = 0, nu = 0, nv = 0, nhv = 0, nhu = 0;
            for (int i = 0; i < c->n_in; i++)
                for (size_t j = 0; j < st.n[i]; j++) {
                    uhv += (double)u[i][j] * hv[i][j], vhu += (double)v[i][j] * hu[i][j];
                    nu += (double)u[i][j] * u[i][j], nv += (double)v[i][j] * v[i][j];
                    nhv += (double)hv[i][j] * hv[i][j], nhu += (double)hu[i][j] * hu[i][j];
                }
            double den = sqrt(nu * nhv) + sqrt(nv * nhu);
            *sym = den > 0 ? fabs(uhv - vhu) / den : 0;
        }
    }
    for (int i = 0; i < c->n_in; i++) {
        free(st.vals[i]), free(st.grads[i]), free(st.tmp[i]);
        free(v[i]), free(u[i]), free(hv[i]), free(hu[i]);
        free(g1[i]), free(g2[i]), free(g3[i]), free(g4[i]);
    }
    sk_graph_free(st.g);
    return worst;
}

/* ---- builders ---- */
static int b_dense(struct sk_graph *g, const int *in) { return sk_op_dense(g, in[0], in[1], in[2]); }
static int b_dense_nobias(struct sk_graph *g, const int *in) { return sk_op_dense(g, in[0], in[1], -1); }
static int b_conv_s1p1(struct sk_graph *g, const int *in) { return sk_op_conv2d(g, in[0], in[1], in[2], 1, 1); }
static int b_conv_s2p0(struct sk_graph *g, const int *in) { return sk_op_conv2d(g, in[0], in[1], in[2], 2, 0); }
static int b_crp(struct sk_graph *g, const int *in) { return sk_op_conv2d_relu_maxpool(g, in[0], in[1], in[2], 1, 1, 2, 2); }
static int b_crp_ov(struct sk_graph *g, const int *in) { return sk_op_conv2d_relu_maxpool(g, in[0], in[1], in[2], 2, 1, 3, 1); }
static int b_maxpool(struct sk_graph *g, const int *in) { return sk_op_maxpool2d(g, in[0], 2, 2); }
static int b_maxpool_ov(struct sk_graph *g, const int *in) { return sk_op_maxpool2d(g, in[0], 3, 2); }
static int b_avgpool(struct sk_graph *g, const int *in) { return sk_op_avgpool2d(g, in[0], 3, 1); }
static int b_gap(struct sk_graph *g, const int *in) { return sk_op_global_avgpool(g, in[0]); }
static int b_flatten(struct sk_graph *g, const int *in) { return sk_op_tanh(g, sk_op_flatten(g, in[0])); }
static int b_reshape(struct sk_graph *g, const int *in)
{
    return sk_op_softplus(g, sk_op_reshape(g, in[0], 2, (int[]){ 3, 8 }));
}
static int b_relu(struct sk_graph *g, const int *in) { return sk_op_relu(g, in[0]); }
static int b_lrelu(struct sk_graph *g, const int *in) { return sk_op_leaky_relu(g, in[0], 0.1f); }
static int b_tanh(struct sk_graph *g, const int *in) { return sk_op_tanh(g, in[0]); }
static int b_sigmoid(struct sk_graph *g, const int *in) { return sk_op_sigmoid(g, in[0]); }
static int b_softplus(struct sk_graph *g, const int *in) { return sk_op_softplus(g, in[0]); }
static int b_gelu(struct sk_graph *g, const int *in) { return sk_op_gelu(g, in[0]); }
static int b_step(struct sk_graph *g, const int *in) { return sk_op_add(g, sk_op_step(g, in[0]), sk_op_tanh(g, in[0])); }
static int b_dropout(struct sk_graph *g, const int *in) { return sk_op_dropout(g, sk_op_tanh(g, in[0]), 0.3f, 1234); }
static float rm[8], rv[8];
static int b_bn_train(struct sk_graph *g, const int *in)
{
    for (int i = 0; i < 8; i++) rm[i] = 0, rv[i] = 1;
    return sk_op_tanh(g, sk_op_batchnorm(g, in[0], in[1], in[2], rm, rv, 0.1f, 1e-5f, true));
}
static int b_bn_eval(struct sk_graph *g, const int *in)
{
    for (int i = 0; i < 8; i++) rm[i] = 0.1f * i, rv[i] = 0.5f + 0.2f * i;
    return sk_op_tanh(g, sk_op_batchnorm(g, in[0], in[1], in[2], rm, rv, 0.1f, 1e-5f, false));
}
static int b_softmax(struct sk_graph *g, const int *in) { return sk_op_softmax(g, in[0]); }
static int b_logsoftmax(struct sk_graph *g, const int *in) { return sk_op_log_softmax(g, in[0]); }
static int b_add(struct sk_graph *g, const int *in) { return sk_op_add(g, in[0], in[1]); }
static int b_sub(struct sk_graph *g, const int *in) { return sk_op_sub(g, in[0], in[1]); }
static int b_mul(struct sk_graph *g, const int *in) { return sk_op_mul(g, in[0], in[1]); }
static int b_mul_self(struct sk_graph *g, const int *in) { return sk_op_mul(g, in[0], in[0]); }
static int b_scale(struct sk_graph *g, const int *in) { return sk_op_scale(g, in[0], -2.5f); }
static int b_sum(struct sk_graph *g, const int *in) { return sk_op_sum(g, sk_op_tanh(g, in[0])); }
static int b_mean(struct sk_graph *g, const int *in) { return sk_op_mean(g, sk_op_tanh(g, in[0])); }
static int b_gauss(struct sk_graph *g, const int *in) { return sk_op_gauss_sample(g, in[0], in[1], 77); }
static const int lab[6] = { 0, 3, 2, 4, 1, 3 };
static const int tgt[6] = { 1, 0, 4, 2, 3, 1 };
static int b_ce(struct sk_graph *g, const int *in) { return sk_loss_cross_entropy(g, in[0], lab, 0.0f); }
static int b_ce_ls(struct sk_graph *g, const int *in) { return sk_loss_cross_entropy(g, in[0], lab, 0.1f); }
static const float bt[6] = { 0, 1, 1, 0, 0.3f, 0.9f };
static int b_bce(struct sk_graph *g, const int *in) { return sk_loss_bce_logits(g, in[0], bt); }
static int b_mse(struct sk_graph *g, const int *in) { return sk_loss_mse(g, in[0], in[1]); }
static int b_kl(struct sk_graph *g, const int *in)
{
    return sk_loss_kl_categorical(g, sk_op_log_softmax(g, in[0]), sk_op_log_softmax(g, in[1]));
}
static int b_cw(struct sk_graph *g, const int *in) { return sk_loss_margin(g, in[0], lab, NULL, SK_MARGIN_CW); }
static int b_cw_t(struct sk_graph *g, const int *in) { return sk_loss_margin(g, in[0], lab, tgt, SK_MARGIN_CW); }
static int b_dlr(struct sk_graph *g, const int *in) { return sk_loss_margin(g, in[0], lab, NULL, SK_MARGIN_DLR); }
static int b_dlr_t(struct sk_graph *g, const int *in) { return sk_loss_margin(g, in[0], lab, tgt, SK_MARGIN_DLR); }
static const float aff_shift[6] = { 0.5f, -1, 0, 2, 0.25f, -0.5f }, aff_scale[6] = { 2, 0.5f, 1, 3, 0.1f, 1.5f };
static int b_affine(struct sk_graph *g, const int *in)
{
    return sk_op_tanh(g, sk_op_affine_cols(g, in[0], aff_shift, aff_scale));
}
static int b_convt(struct sk_graph *g, const int *in) { return sk_op_conv_transpose2d(g, in[0], in[1], 2, 1, 5, 5); }
static int b_transpose(struct sk_graph *g, const int *in) { return sk_op_transpose(g, in[0]); }
static int b_mul_groups(struct sk_graph *g, const int *in) { return sk_op_mul_groups(g, in[0], in[1]); }
static int b_dot_groups(struct sk_graph *g, const int *in) { return sk_op_dot_groups(g, in[0], in[1]); }
static int b_concat(struct sk_graph *g, const int *in) { return sk_op_tanh(g, sk_op_concat(g, in[0], in[1])); }
/* A small network: every kind of op in a chain, both leaves kinds. */
static int b_chain(struct sk_graph *g, const int *in)
{
    int h = sk_op_gelu(g, sk_op_dense(g, in[0], in[1], in[2]));
    return sk_loss_cross_entropy(g, sk_op_tanh(g, h), lab, 0.1f);
}

#define S2(a, b) { a, b, 1, 1 }
#define S4(a, b, c, d) { a, b, c, d }

static void run_hvpchecks(void)
{
    static const struct hc_case cases[] = {
        { "dense", 3, { 2, 2, 1 }, { S2(5, 7), S2(3, 7), S2(3, 1) }, { 0, 1, 1 }, -1, 1, 0, b_dense, 1e-3, 0 },
        { "dense(no bias)", 2, { 2, 2 }, { S2(2, 3), S2(2, 3) }, { 0, 1 }, -1, 1, 0, b_dense_nobias, 1e-3, 0 },
        { "conv s1 p1", 3, { 4, 4, 1 }, { S4(2, 3, 5, 4), S4(4, 3, 3, 3), S2(4, 1) }, { 0, 1, 1 }, -1, 1, 0, b_conv_s1p1, 1e-3, 0 },
        { "conv s2 p0", 3, { 4, 4, 1 }, { S4(1, 2, 7, 6), S4(3, 2, 3, 2), S2(3, 1) }, { 0, 1, 1 }, -1, 1, 0, b_conv_s2p0, 1e-3, 0 },
        { "conv-relu-maxpool", 3, { 4, 4, 1 }, { S4(2, 2, 6, 6), S4(3, 2, 3, 3), S2(3, 1) }, { 0, 1, 1 }, -1, 1, 0, b_crp, 1e-3, 0x1p-10 },
        { "conv-relu-maxpool s2 k3s1", 3, { 4, 4, 1 }, { S4(2, 2, 9, 8), S4(3, 2, 3, 3), S2(3, 1) }, { 0, 1, 1 }, -1, 1, 0, b_crp_ov, 1e-3, 0x1p-10 },
        { "maxpool 2", 1, { 4 }, { S4(2, 3, 4, 5) }, { 0 }, -1, 1, 0, b_maxpool, 1e-3, 0x1p-14 },
        { "maxpool 3 s2", 1, { 4 }, { S4(1, 2, 7, 7) }, { 0 }, -1, 1, 0, b_maxpool_ov, 1e-3, 0x1p-14 },
        { "avgpool 3 s1", 1, { 4 }, { S4(1, 2, 5, 6) }, { 0 }, -1, 1, 0, b_avgpool, 1e-3, 0 },
        { "gap", 1, { 4 }, { S4(2, 3, 3, 4) }, { 0 }, -1, 1, 0, b_gap, 1e-3, 0 },
        { "flatten", 1, { 4 }, { S4(2, 3, 2, 2) }, { 0 }, -1, 1, 0, b_flatten, 1e-3, 0 },
        { "reshape", 1, { 4 }, { S4(2, 3, 2, 2) }, { 1 }, -1, 1, 0, b_reshape, 1e-3, 0 },
        { "relu", 1, { 2 }, { S2(4, 9) }, { 0 }, -1, 1, 0.05f, b_relu, 1e-3, 0 },
        { "leaky relu", 1, { 2 }, { S2(4, 9) }, { 0 }, -1, 1, 0.05f, b_lrelu, 1e-3, 0 },
        { "tanh", 1, { 2 }, { S2(4, 9) }, { 0 }, -2, 2, 0, b_tanh, 1e-3, 0 },
        { "sigmoid", 1, { 2 }, { S2(4, 9) }, { 0 }, -3, 3, 0, b_sigmoid, 1e-3, 0 },
        { "softplus", 1, { 2 }, { S2(4, 9) }, { 0 }, -3, 3, 0, b_softplus, 1e-3, 0 },
        { "gelu", 1, { 2 }, { S2(4, 9) }, { 0 }, -3, 3, 0, b_gelu, 1e-3, 0 },
        { "step", 1, { 2 }, { S2(4, 9) }, { 0 }, -1, 1, 0.05f, b_step, 1e-3, 0 },
        { "dropout", 1, { 2 }, { S2(6, 9) }, { 0 }, -1, 1, 0, b_dropout, 1e-3, 0 },
        { "batchnorm train 2d", 3, { 2, 1, 1 }, { S2(6, 4), S2(4, 1), S2(4, 1) }, { 0, 1, 1 }, -1, 1, 0, b_bn_train, 2e-3, 0 },
        { "batchnorm train 4d", 3, { 4, 1, 1 }, { S4(3, 2, 3, 2), S2(2, 1), S2(2, 1) }, { 0, 1, 1 }, -1, 1, 0, b_bn_train, 2e-3, 0 },
        { "batchnorm eval", 3, { 4, 1, 1 }, { S4(2, 3, 2, 2), S2(3, 1), S2(3, 1) }, { 0, 1, 1 }, -1, 1, 0, b_bn_eval, 1e-3, 0 },
        { "softmax", 1, { 2 }, { S2(3, 5) }, { 0 }, -2, 2, 0, b_softmax, 1e-3, 0 },
        { "log softmax", 1, { 2 }, { S2(3, 5) }, { 0 }, -2, 2, 0, b_logsoftmax, 1e-3, 0 },
        { "add", 2, { 2, 2 }, { S2(3, 4), S2(3, 4) }, { 0, 1 }, -1, 1, 0, b_add, 1e-3, 0 },
        { "sub", 2, { 2, 2 }, { S2(3, 4), S2(3, 4) }, { 0, 1 }, -1, 1, 0, b_sub, 1e-3, 0 },
        { "mul", 2, { 2, 2 }, { S2(3, 4), S2(3, 4) }, { 0, 1 }, -1, 1, 0, b_mul, 1e-3, 0 },
        { "mul(x, x)", 1, { 2 }, { S2(3, 4) }, { 0 }, -1, 1, 0, b_mul_self, 1e-3, 0 },
        { "scale", 1, { 2 }, { S2(3, 4) }, { 0 }, -1, 1, 0, b_scale, 1e-3, 0 },
        { "sum", 1, { 3 }, { S4(2, 3, 4, 1) }, { 0 }, -1, 1, 0, b_sum, 1e-3, 0 },
        { "mean", 1, { 3 }, { S4(2, 3, 4, 1) }, { 0 }, -1, 1, 0, b_mean, 1e-3, 0 },
        { "gauss sample", 2, { 2, 2 }, { S2(3, 4), S2(3, 4) }, { 1, 1 }, -2, 1, 0, b_gauss, 1e-3, 0 },
        { "cross entropy", 1, { 2 }, { S2(6, 5) }, { 0 }, -2, 2, 0, b_ce, 1e-3, 0 },
        { "cross entropy smoothed", 1, { 2 }, { S2(6, 5) }, { 1 }, -2, 2, 0, b_ce_ls, 1e-3, 0 },
        { "bce logits", 1, { 2 }, { S2(6, 1) }, { 0 }, -3, 3, 0, b_bce, 1e-3, 0 },
        { "mse", 2, { 2, 2 }, { S2(3, 4), S2(3, 4) }, { 0, 1 }, -1, 1, 0, b_mse, 1e-3, 0 },
        { "kl categorical", 2, { 2, 2 }, { S2(4, 5), S2(4, 5) }, { 0, 1 }, -2, 2, 0, b_kl, 1e-3, 0 },
        { "cw margin", 1, { 2 }, { S2(6, 5) }, { 0 }, -2, 2, 0, b_cw, 1e-3, 0x1p-14 },
        { "cw margin targeted", 1, { 2 }, { S2(6, 5) }, { 0 }, -2, 2, 0, b_cw_t, 1e-3, 0x1p-14 },
        { "dlr margin", 1, { 2 }, { S2(6, 5) }, { 0 }, -2, 2, 0, b_dlr, 1e-3, 0x1p-10 },
        { "dlr margin targeted", 1, { 2 }, { S2(6, 5) }, { 0 }, -2, 2, 0, b_dlr_t, 1e-3, 0x1p-10 },
        { "affine cols", 1, { 4 }, { S4(3, 6, 1, 1) }, { 0 }, -2, 2, 0, b_affine, 1e-3, 0 },
        { "conv transpose s2 p1", 2, { 4, 4 }, { S4(2, 3, 3, 3), S4(3, 2, 3, 3) }, { 0, 1 }, -1, 1, 0, b_convt, 1e-3, 0 },
        { "transpose", 1, { 2 }, { S2(3, 5) }, { 0 }, -1, 1, 0, b_transpose, 1e-3, 0 },
        { "mul groups", 2, { 2, 2 }, { S2(6, 4), S2(2, 4) }, { 0, 1 }, -1, 1, 0, b_mul_groups, 1e-3, 0 },
        { "concat", 2, { 4, 4 }, { S4(2, 3, 2, 2), S4(2, 1, 2, 2) }, { 0, 1 }, -2, 2, 0, b_concat, 1e-3, 0 },
        { "dot groups", 2, { 2, 2 }, { S2(6, 4), S2(2, 4) }, { 0, 1 }, -1, 1, 0, b_dot_groups, 1e-3, 0 },
        { "dense-gelu-tanh-ce", 3, { 2, 2, 1 }, { S2(6, 4), S2(5, 4), S2(5, 1) }, { 0, 1, 1 }, -1, 1, 0, b_chain, 1e-3, 0 },
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        double sym, bsym;
        double e = hvpcheck(&cases[i], 2000 + i, 1.0f, &sym);
        printf("  %-28s rel err %.2e (tol %.0e)  symmetry %.2e\n", cases[i].name, e, cases[i].tol, sym);
        CHECK(e < cases[i].tol, "hvp %s: worst relative error %.3g (tol %.3g)", cases[i].name, e, cases[i].tol);
        CHECK(sym < 1e-5, "hvp %s: u.Hv and v.Hu differ by %.3g relative", cases[i].name, sym);
        /* the same check must catch an HVP 1% off */
        double bad = hvpcheck(&cases[i], 2000 + i, 1.01f, &bsym);
        CHECK(bad > cases[i].tol || e == 0, "hvpcheck %s does not notice a 1%% error (%.3g)", cases[i].name, bad);
    }
    /* every op with a second-order rule took part */
    for (int op = 0; op < OP_COUNT; op++) {
        const struct sk_op_def *d = &sk_op_table[op];
        if (d->hvp) CHECK(op_checked[op], "op %s has a second-order rule but no HVP check", d->name);
        if (d->backward)
            CHECK((d->hvp != NULL) != (d->no_hvp != NULL), "op %s: a second-order rule, or (only then) why not",
                  d->name);
    }
}

/* L = mean over N x O of (X W^T - T)^2: d2L/dW2 V = (2/(N O)) V X^T X and
 * d2L/dX2 U = (2/(N O)) U W^T W, exactly. */
static void test_quadratic(void)
{
    enum { N = 7, D = 5, O = 3 };
    float X[N * D], W[O * D], T[N * O], dW[O * D], V[O * D], U[N * D], hW[O * D], hX[N * D];
    struct sk_rng r = sk_rng_new(5);
    for (int i = 0; i < N * D; i++) X[i] = sk_rng_normal(&r), U[i] = sk_rng_normal(&r);
    for (int i = 0; i < O * D; i++) W[i] = sk_rng_normal(&r), V[i] = sk_rng_normal(&r);
    for (int i = 0; i < N * O; i++) T[i] = sk_rng_normal(&r);
    struct sk_graph *g = sk_graph_new();
    int x = sk_graph_input(g, X, 2, (int[]){ N, D }, true);
    int w = sk_graph_param(g, W, dW, 2, (int[]){ O, D });
    int t = sk_graph_input(g, T, 2, (int[]){ N, O }, false);
    int L = sk_loss_mse(g, sk_op_dense(g, x, w, -1), t);
    memset(hW, 0, sizeof hW), memset(hX, 0, sizeof hX);
    CHECK(sk_graph_set_direction(g, w, V, hW) == 0, "direction on W");
    CHECK(sk_graph_set_direction(g, x, U, hX) == 0, "direction on X");
    CHECK(sk_graph_hvp(g, L) == 0, "quadratic hvp: %s", sk_last_error());
    /* with both directions on, each block also gets the cross term: compute
     * the full product H [U; V] by hand */
    double eW = 0, mW = 0, eX = 0, mX = 0, c = 2.0 / (N * O);
    for (int o = 0; o < O; o++)
        for (int d = 0; d < D; d++) {
            double s = 0;
            for (int n = 0; n < N; n++) {
                double vx = 0, ux = 0, res = -T[n * O + o];
                for (int k = 0; k < D; k++) {
                    vx += (double)V[o * D + k] * X[n * D + k];
                    ux += (double)W[o * D + k] * U[n * D + k];
                    res += (double)W[o * D + k] * X[n * D + k];
                }
                /* d/dW_od of sum (W X^T - T)^2 along (U, V): (V x + W u) x_d + res u_d */
                s += (vx + ux) * X[n * D + d] + res * U[n * D + d];
            }
            eW = fmax(eW, fabs(c * s - hW[o * D + d]));
            mW = fmax(mW, fabs(c * s));
        }
    for (int n = 0; n < N; n++)
        for (int d = 0; d < D; d++) {
            double s = 0;
            for (int o = 0; o < O; o++) {
                double vx = 0, ux = 0, res = -T[n * O + o];
                for (int k = 0; k < D; k++) {
                    vx += (double)V[o * D + k] * X[n * D + k];
                    ux += (double)W[o * D + k] * U[n * D + k];
                    res += (double)W[o * D + k] * X[n * D + k];
                }
                s += (vx + ux) * W[o * D + d] + res * V[o * D + d];
            }
            eX = fmax(eX, fabs(c * s - hX[n * D + d]));
            mX = fmax(mX, fabs(c * s));
        }
    printf("  quadratic (mse of dense): W block rel err %.2e, X block %.2e\n", eW / mW, eX / mX);
    CHECK(eW <= 1e-5 * mW, "quadratic: W block off by %.3g of %.3g", eW, mW);
    CHECK(eX <= 1e-5 * mX, "quadratic: X block off by %.3g of %.3g", eX, mX);
    /* a direction on W only: (2/(N O)) V X^T X */
    sk_graph_set_direction(g, x, NULL, NULL);
    memset(hW, 0, sizeof hW);
    CHECK(sk_graph_hvp(g, L) == 0, "quadratic hvp again on the same forward");
    double e = 0, m = 0;
    for (int o = 0; o < O; o++)
        for (int d = 0; d < D; d++) {
            double s = 0;
            for (int n = 0; n < N; n++) {
                double vx = 0;
                for (int k = 0; k < D; k++) vx += (double)V[o * D + k] * X[n * D + k];
                s += vx * X[n * D + d];
            }
            e = fmax(e, fabs(c * s - hW[o * D + d]));
            m = fmax(m, fabs(c * s));
        }
    CHECK(e <= 1e-5 * m, "quadratic: V X^T X off by %.3g of %.3g", e, m);
    sk_graph_free(g);
}

/* Ops without an exact rule are refused by name, never given a number; a
 * leaf without a gradient cannot take an hv buffer. */
static void test_refusals(void)
{
    float A[12], dA[12], v[12], hv[12];
    for (int i = 0; i < 12; i++) A[i] = (float)sin(i + 1.0), v[i] = 1;
    struct sk_graph *g = sk_graph_new();
    int a = sk_graph_param(g, A, dA, 2, (int[]){ 4, 3 });
    int L = sk_loss_nuclear(g, a);
    sk_graph_set_direction(g, a, v, hv);
    int rc = sk_graph_hvp(g, L);
    CHECK(rc == SK_EINVAL && strstr(sk_last_error(), "nuclear"), "nuclear norm refused by name: %d %s", rc,
          sk_last_error());
    sk_graph_reset(g);
    int x = sk_graph_input(g, A, 2, (int[]){ 4, 3 }, false);
    CHECK(sk_graph_set_direction(g, x, v, hv) == SK_EINVAL, "hv on an input without a gradient refused");
    CHECK(sk_graph_set_direction(g, x, v, NULL) == 0, "a direction alone on it is fine");
    int s = sk_op_tanh(g, x);
    CHECK(sk_graph_set_direction(g, s, v, NULL) == SK_EINVAL, "a direction on an inner node refused");
    /* a nuclear norm elsewhere on the tape does not matter */
    sk_graph_reset(g);
    a = sk_graph_param(g, A, dA, 2, (int[]){ 4, 3 });
    (void)sk_loss_nuclear(g, a);
    L = sk_op_sum(g, sk_op_mul(g, a, a));
    memset(hv, 0, sizeof hv);
    sk_graph_set_direction(g, a, v, hv);
    CHECK(sk_graph_hvp(g, L) == 0, "an unrelated node without a rule is ignored: %s", sk_last_error());
    CHECK(hv[0] == 2 && hv[11] == 2, "H of sum a^2 is 2I: %g %g", hv[0], hv[11]);
    sk_graph_free(g);
}

/* Central differences of the exact gradient of the model's eval loss along
 * (vp on the parameters | vx on the input), step h, into out. */
static void model_fd(struct sk_model *m, const float *x, const int *y, int n, const float *vp, const float *vx,
                     double h, float *out)
{
    size_t P = m->n_params, nx = (size_t)n * m->in_dim, no = vp ? P : nx;
    float *theta = malloc(P * 4), *xs = malloc(nx * 4), *gp = malloc(no * 4);
    memcpy(theta, m->params, P * 4);
    struct sk_graph *g = sk_graph_new();
    for (int s = 1; s >= -1; s -= 2) {
        for (size_t i = 0; i < P; i++) m->params[i] = vp ? (float)(theta[i] + s * h * vp[i]) : theta[i];
        for (size_t i = 0; i < nx; i++) xs[i] = vx ? (float)(x[i] + s * h * vx[i]) : x[i];
        sk_graph_reset(g);
        memset(m->grads, 0, P * 4);
        int xi = sk_graph_input(g, xs, 2, (int[]){ n, m->in_dim }, vx != NULL);
        int L = sk_loss_cross_entropy(g, sk_model_forward(m, g, xi, SK_MODE_EVAL, 0), y, 0.0f);
        SK_ASSERT(L >= 0 && sk_graph_backward(g, L, NULL) == 0);
        const float *gr = vp ? m->grads : sk_graph_grad(g, xi);
        for (size_t i = 0; i < no; i++)
            if (s > 0) gp[i] = gr[i];
            else out[i] = (float)(((double)gp[i] - gr[i]) / (2 * h));
    }
    memcpy(m->params, theta, P * 4);
    memset(m->grads, 0, P * 4);
    sk_graph_free(g);
    free(theta), free(xs), free(gp);
}

/* max |a - d| / max |d| over the entries where the differences at h (d)
 * and h/2 (d2) agree to 1e-2 of max |d|: elsewhere a kink (a ReLU or a
 * max-pool winner) lies within h and the difference quotient is a jump, not
 * a derivative. *skipped: how many entries that left out. */
static double rel_err_smooth(const float *a, const float *d, const float *d2, size_t n, size_t *skipped)
{
    double md = 0, mn = 0;
    for (size_t i = 0; i < n; i++) mn = fmax(mn, fabs(d2[i]));
    *skipped = 0;
    double ref = 0;
    for (size_t i = 0; i < n; i++) {
        if (fabs((double)d[i] - d2[i]) > 1e-2 * mn) {
            ++*skipped;
            continue;
        }
        md = fmax(md, fabs((double)a[i] - d2[i]));
        ref = fmax(ref, fabs(d2[i]));
    }
    return ref > 0 ? md / ref : md;
}

/* Model level: the exact HVPs (parameters, input) against central
 * differences of the gradient with step h, and against the finite-difference
 * oracle sk_model_hvp_fd (about 1e-3). */
static void test_model(const char *spec, bool prep, int n, double h)
{
    struct sk_model *m = sk_model_from_spec(spec);
    CHECK(m != NULL, "model %s: %s", spec, sk_last_error());
    if (!m) return;
    sk_model_init(m, SK_INIT_TORCH, 4);
    struct sk_rng r = sk_rng_new(8);
    for (size_t i = 0; i < m->n_buffers; i++) m->buffers[i] = 0.5f + sk_rng_uniform(&r) * 0.5f;
    size_t P = m->n_params, D = (size_t)m->in_dim, nx = (size_t)n * D;
    if (prep) {
        struct sk_preprocess pp = { .kind = SK_PREP_STANDARDIZE, .dim = m->in_dim };
        pp.shift = malloc(D * 4), pp.scale = malloc(D * 4);
        for (size_t j = 0; j < D; j++) pp.shift[j] = 0.1f * (float)(j % 3), pp.scale[j] = 0.5f + 0.1f * (float)(j % 4);
        CHECK(sk_model_set_preprocess(m, &pp) == 0, "preprocess: %s", sk_last_error());
        free(pp.shift), free(pp.scale);
    }
    float *x = malloc(nx * 4), *vx = malloc(nx * 4), *hx = malloc(nx * 4), *fx = malloc(nx * 4);
    float *v = malloc(P * 4), *hv = malloc(P * 4), *fd = malloc(P * 4), *theta = malloc(P * 4);
    int *y = malloc(sizeof(int) * n);
    for (size_t i = 0; i < nx; i++) x[i] = sk_rng_normal(&r), vx[i] = sk_rng_normal(&r);
    for (int i = 0; i < n; i++) y[i] = (int)sk_rng_below(&r, (uint64_t)m->n_classes);
    for (size_t i = 0; i < P; i++) v[i] = sk_rng_normal(&r);
    memcpy(theta, m->params, P * 4);
    for (size_t i = 0; i < P; i++) m->grads[i] = 7;
    CHECK(sk_model_hvp(m, x, y, n, v, hv) == 0, "%s: hvp: %s", spec, sk_last_error());
    CHECK(memcmp(theta, m->params, P * 4) == 0, "%s: parameters untouched", spec);
    bool same = true;
    for (size_t i = 0; i < P; i++) same &= m->grads[i] == 7;
    CHECK(same, "%s: gradients untouched", spec);
    memset(m->grads, 0, P * 4);
    float *fd2 = malloc(P * 4), *fx2 = malloc(nx * 4);
    size_t skip_p, skip_x;
    model_fd(m, x, y, n, v, NULL, h, fd);
    model_fd(m, x, y, n, v, NULL, h / 2, fd2);
    double e = rel_err_smooth(hv, fd, fd2, P, &skip_p), eo = 0;
    CHECK(sk_model_hvp_fd(m, x, y, n, v, fd) == 0, "%s: fd hvp", spec);
    eo = sk_rel_err(hv, fd, P);
    CHECK(eo < 5e-3, "%s: exact vs the oracle sk_model_hvp_fd: rel err %.3g", spec, eo);
    CHECK(sk_model_hvp_input(m, x, y, n, vx, hx) == 0, "%s: input hvp: %s", spec, sk_last_error());
    model_fd(m, x, y, n, NULL, vx, h, fx);
    model_fd(m, x, y, n, NULL, vx, h / 2, fx2);
    double ex = rel_err_smooth(hx, fx, fx2, nx, &skip_x);
    printf("  model %-50s params: %.2e (oracle %.2e); input: %.2e; kinks skipped %zu/%zu, %zu/%zu\n", spec, e,
           eo, ex, skip_p, P, skip_x, nx);
    CHECK(e < 2e-3, "%s: exact vs differences (params) rel err %.3g", spec, e);
    CHECK(ex < 2e-3, "%s: exact vs differences (input) rel err %.3g", spec, ex);
    CHECK(skip_p * 100 <= P && skip_x * 100 <= nx, "%s: too many entries at kinks (%zu, %zu)", spec, skip_p, skip_x);
    free(fd2), free(fx2);
    free(x), free(vx), free(hx), free(fx), free(v), free(hv), free(fd), free(theta), free(y);
    sk_model_free(m);
}

/* A ReLU / max-pool CNN has kinks everywhere a difference quotient could
 * land on one, so it is checked otherwise: the model's HVP (through the fused
 * conv-relu-maxpool op) against the same network recorded op by op (conv2d,
 * relu, maxpool2d: each checked against differences above), with the same
 * weights and directions, for parameters and input; and symmetric. */
static void test_fused_model(void)
{
    const char *spec = "cnn:1x8x8-conv4k3p1-relu-maxpool2-flatten-dense5";
    struct sk_model *m = sk_model_from_spec(spec);
    SK_ASSERT(m);
    sk_model_init(m, SK_INIT_TORCH, 4);
    enum { n = 6 };
    size_t P = m->n_params, nx = (size_t)n * 64;
    float *x = malloc(nx * 4), *vx = malloc(nx * 4), *hx = malloc(nx * 4), *hx2 = malloc(nx * 4);
    float *v = malloc(P * 4), *u = malloc(P * 4), *hv = malloc(P * 4), *hv2 = malloc(P * 4), *hu = malloc(P * 4);
    int y[n];
    struct sk_rng r = sk_rng_new(21);
    for (size_t i = 0; i < nx; i++) x[i] = sk_rng_normal(&r), vx[i] = sk_rng_normal(&r);
    for (size_t i = 0; i < P; i++) v[i] = sk_rng_normal(&r), u[i] = sk_rng_normal(&r);
    for (int i = 0; i < n; i++) y[i] = (int)sk_rng_below(&r, 5);
    CHECK(sk_model_hvp(m, x, y, n, v, hv) == 0, "fused cnn hvp: %s", sk_last_error());
    CHECK(sk_model_hvp(m, x, y, n, u, hu) == 0, "fused cnn hvp (u)");
    CHECK(sk_model_hvp_input(m, x, y, n, vx, hx) == 0, "fused cnn input hvp");
    const struct sk_layer *C = &m->layers[0], *Dn = &m->layers[4];
    for (int on_x = 0; on_x < 2; on_x++) {
        struct sk_graph *g = sk_graph_new();
        sk_graph_set_param_grads(g, !on_x);
        int xi = sk_graph_input(g, x, 4, (int[]){ n, 1, 8, 8 }, on_x);
        int W = sk_graph_param(g, m->params + C->w_off, m->grads + C->w_off, 4, (int[]){ 4, 1, 3, 3 });
        int b = sk_graph_param(g, m->params + C->b_off, m->grads + C->b_off, 1, (int[]){ 4 });
        int W2 = sk_graph_param(g, m->params + Dn->w_off, m->grads + Dn->w_off, 2, (int[]){ 5, 64 });
        int b2 = sk_graph_param(g, m->params + Dn->b_off, m->grads + Dn->b_off, 1, (int[]){ 5 });
        int h = sk_op_maxpool2d(g, sk_op_relu(g, sk_op_conv2d(g, xi, W, b, 1, 1)), 2, 2);
        int L = sk_loss_cross_entropy(g, sk_op_dense(g, sk_op_flatten(g, h), W2, b2), y, 0.0f);
        memset(on_x ? hx2 : hv2, 0, (on_x ? nx : P) * 4);
        if (on_x) sk_graph_set_direction(g, xi, vx, hx2);
        else CHECK(sk_graph_param_directions(g, m->params, P, v, hv2) == 4, "four parameter nodes");
        CHECK(sk_graph_hvp(g, L) == 0, "unfused cnn hvp: %s", sk_last_error());
        memset(m->grads, 0, P * 4);
        sk_graph_free(g);
    }
    double e = sk_rel_err(hv, hv2, P), ex = sk_rel_err(hx, hx2, nx), uhv = 0, vhu = 0;
    for (size_t i = 0; i < P; i++) uhv += (double)u[i] * hv[i], vhu += (double)v[i] * hu[i];
    printf("  model %-50s fused vs op by op: params %.2e, input %.2e; u.Hv %.6g v.Hu %.6g\n", spec, e, ex, uhv, vhu);
    CHECK(e < 1e-5 && ex < 1e-5, "fused vs unfused HVP: %.3g %.3g", e, ex);
    CHECK(fabs(uhv - vhu) <= 1e-5 * (fabs(uhv) + fabs(vhu)), "fused cnn symmetric: %g vs %g", uhv, vhu);
    free(x), free(vx), free(hx), free(hx2), free(v), free(u), free(hv), free(hv2), free(hu);
    sk_model_free(m);
}

int main(void)
{
    run_hvpchecks();
    test_quadratic();
    test_refusals();
    test_model("mlp:12-16-16-4:tanh", false, 9, 1e-3);
    test_model("mlp:10-8-3:gelu:dropout0.2", true, 6, 1e-3);
    test_fused_model();
    test_model("seq:2x6x6-conv3k3p1-bn-gelu-avgpool2-flatten-dense8-bn-tanh-dense4", true, 7, 1e-3);
    free(rvec);
    return sk_test_finish("test_hvp");
}
