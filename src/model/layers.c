/* The layer table (see layers.h): one row per layer kind. */
#include "model/layers.h"

#include <math.h>
#include <stddef.h>

int sk_layer_abs(struct sk_graph *g, int W)
{
    return sk_op_add(g, sk_op_relu(g, W), sk_op_relu(g, sk_op_scale(g, W, -1.0f)));
}

/* ---- parameters ---- */

static int param(const struct sk_layer_run *r, size_t off, int ndim, const int *shape)
{
    return sk_graph_param(r->g, r->w + off, r->dw ? r->dw + off : NULL, ndim, shape);
}

/* The weight and bias nodes, of the shapes of the row's first two tensors. */
static int tensor_params(const struct sk_layer_run *r, int *W, int *b)
{
    const struct sk_layer *L = r->L;
    struct sk_layer_tensor t[SK_LAYER_MAX_TENSORS];
    int nt = sk_layer_of(L)->tensors(L, t);
    SK_ASSERT(nt >= 2 && t[0].slot == SK_TENSOR_W && t[1].slot == SK_TENSOR_B);
    *W = param(r, L->w_off, t[0].ndim, t[0].shape);
    *b = param(r, L->b_off, t[1].ndim, t[1].shape);
    return *W < 0 ? *W : *b < 0 ? *b : SK_OK;
}

/* ---- initialisation ---- */

/* Fan-in / fan-out initialisers; rf = receptive field (k*k for conv). */
static int init_fan(struct sk_model *m, const struct sk_layer *L, enum sk_init init, struct sk_rng *r, int rf)
{
    double fan_in = (double)L->in[0] * rf, fan_out = (double)L->units * rf;
    float *w = m->params + L->w_off, *b = m->params + L->b_off;
    double bound = 0, std = 0;
    switch (init) {
    case SK_INIT_HE_UNIFORM: bound = sqrt(6.0 / fan_in); break;
    case SK_INIT_HE_NORMAL: std = sqrt(2.0 / fan_in); break;
    case SK_INIT_GLOROT_UNIFORM: bound = sqrt(6.0 / (fan_in + fan_out)); break;
    case SK_INIT_GLOROT_NORMAL: std = sqrt(2.0 / (fan_in + fan_out)); break;
    case SK_INIT_TORCH: bound = 1.0 / sqrt(fan_in); break;
    default: return sk_error(SK_EINVAL, "unknown initialiser %d", (int)init);
    }
    for (size_t i = 0; i < L->n_w; i++)
        w[i] = std > 0 ? (float)(std * sk_rng_normal(r)) : (float)(bound * (2.0 * sk_rng_uniform_d(r) - 1.0));
    for (size_t i = 0; i < L->n_b; i++)
        b[i] = init == SK_INIT_TORCH ? (float)(bound * (2.0 * sk_rng_uniform_d(r) - 1.0)) : 0.0f;
    return SK_OK;
}

static int dense_init(struct sk_model *m, const struct sk_layer *L, enum sk_init init, struct sk_rng *r)
{
    return init_fan(m, L, init, r, 1);
}

static int conv_init(struct sk_model *m, const struct sk_layer *L, enum sk_init init, struct sk_rng *r)
{
    return init_fan(m, L, init, r, L->k * L->k);
}

/* gamma 1, beta 0, running mean 0, running variance 1 (every initialiser) */
static int bn_init(struct sk_model *m, const struct sk_layer *L, enum sk_init init, struct sk_rng *r)
{
    (void)init;
    (void)r;
    for (int c = 0; c < L->units; c++) {
        m->params[L->w_off + c] = 1.0f;
        m->params[L->b_off + c] = 0.0f;
        m->buffers[L->rm_off + c] = 0.0f;
        m->buffers[L->rv_off + c] = 1.0f;
    }
    return SK_OK;
}

/* ---- forward ---- */

static int dense_forward(const struct sk_layer_run *r, int h)
{
    int W, b, rc = tensor_params(r, &W, &b);
    return rc ? rc : sk_op_dense(r->g, h, W, b);
}

static int conv_forward(const struct sk_layer_run *r, int h)
{
    int W, b, rc = tensor_params(r, &W, &b);
    return rc ? rc : sk_op_conv2d(r->g, h, W, b, r->L->stride, r->L->pad);
}

static int bn_forward(const struct sk_layer_run *r, int h)
{
    const struct sk_layer *L = r->L;
    const struct sk_model *m = r->m;
    int gm, bt, rc = tensor_params(r, &gm, &bt);
    return rc ? rc : sk_op_batchnorm(r->g, h, gm, bt, m->buffers + L->rm_off, m->buffers + L->rv_off, m->bn_momentum,
                           m->bn_eps, r->train);
}

static int maxpool_forward(const struct sk_layer_run *r, int h)
{
    return sk_op_maxpool2d(r->g, h, r->L->k, r->L->stride);
}
static int avgpool_forward(const struct sk_layer_run *r, int h)
{
    return sk_op_avgpool2d(r->g, h, r->L->k, r->L->stride);
}
static int gap_forward(const struct sk_layer_run *r, int h) { return sk_op_global_avgpool(r->g, h); }
static int flatten_forward(const struct sk_layer_run *r, int h) { return sk_op_flatten(r->g, h); }
static int relu_forward(const struct sk_layer_run *r, int h) { return sk_op_relu(r->g, h); }
static int lrelu_forward(const struct sk_layer_run *r, int h) { return sk_op_leaky_relu(r->g, h, r->L->p); }
static int tanh_forward(const struct sk_layer_run *r, int h) { return sk_op_tanh(r->g, h); }
static int sigmoid_forward(const struct sk_layer_run *r, int h) { return sk_op_sigmoid(r->g, h); }
static int softplus_forward(const struct sk_layer_run *r, int h) { return sk_op_softplus(r->g, h); }
static int gelu_forward(const struct sk_layer_run *r, int h) { return sk_op_gelu(r->g, h); }
static int dropout_forward(const struct sk_layer_run *r, int h)
{
    return r->dropout && r->L->p > 0 ? sk_op_dropout(r->g, h, r->L->p, r->key) : h;
}

static int add_forward(const struct sk_layer_run *r, int h) { return sk_op_add(r->g, h, r->h2); }
static int cat_forward(const struct sk_layer_run *r, int h) { return sk_op_concat(r->g, h, r->h2); }

int sk_layer_forward_fixed(struct sk_graph *g, const struct sk_layer *L, int h, bool dropout_on, uint64_t dropout_key)
{
    const struct sk_layer_def *d = sk_layer_of(L);
    if (d->params) return h;
    if (d->join)
        return sk_error(SK_EINVAL, "%s reads two outputs of a graph: run graph models with sk_model_forward", d->name);
    struct sk_layer_run r = { .g = g, .L = L, .dropout = dropout_on, .key = dropout_key };
    return d->forward(&r, h);
}

/* ---- interval bound propagation ---- */

/* c through the layer, the radius through |W| without bias. */
static int dense_ibp(const struct sk_layer_run *r, int *c, int *rad)
{
    int W, b, rc = tensor_params(r, &W, &b);
    if (rc) return rc;
    int c2 = sk_op_dense(r->g, *c, W, b);
    *rad = sk_op_dense(r->g, *rad, sk_layer_abs(r->g, W), -1);
    *c = c2;
    return SK_OK;
}

static int conv_ibp(const struct sk_layer_run *r, int *c, int *rad)
{
    const struct sk_layer *L = r->L;
    int W, b, rc = tensor_params(r, &W, &b);
    if (rc) return rc;
    int c2 = sk_op_conv2d(r->g, *c, W, b, L->stride, L->pad);
    *rad = sk_op_conv2d(r->g, *rad, sk_layer_abs(r->g, W), -1, L->stride, L->pad);
    *c = c2;
    return SK_OK;
}

/* A monotone non-decreasing layer f maps [l, u] = [c - r, c + r] into
 * [f(l), f(u)]. */
static int monotone_ibp(const struct sk_layer_run *r, int *c, int *rad)
{
    struct sk_graph *g = r->g;
    int lo = sk_op_sub(g, *c, *rad), hi = sk_op_add(g, *c, *rad);
    int flo = sk_layer_of(r->L)->forward(r, lo);
    int fhi = sk_layer_of(r->L)->forward(r, hi);
    *c = sk_op_scale(g, sk_op_add(g, fhi, flo), 0.5f);
    *rad = sk_op_scale(g, sk_op_sub(g, fhi, flo), 0.5f);
    return *rad < 0 ? *rad : SK_OK;
}

static int lrelu_ibp(const struct sk_layer_run *r, int *c, int *rad)
{
    if (r->L->p < 0) return sk_error(SK_EINVAL, "IBP: leaky relu with negative slope %g is not monotone", r->L->p);
    return monotone_ibp(r, c, rad);
}

/* A linear map with non-negative weights and no bias (average pooling,
 * flatten): the centre and the radius go through it unchanged. */
static int positive_linear_ibp(const struct sk_layer_run *r, int *c, int *rad)
{
    *c = sk_layer_of(r->L)->forward(r, *c);
    *rad = sk_layer_of(r->L)->forward(r, *rad);
    return SK_OK;
}

static int identity_ibp(const struct sk_layer_run *r, int *c, int *rad)
{
    (void)r;
    (void)c;
    (void)rad;
    return SK_OK;
}

/* x + y for x in [c1 - r1, c1 + r1], y in [c2 - r2, c2 + r2] lies in
 * [c1 + c2 - (r1 + r2), c1 + c2 + (r1 + r2)]: the two inputs vary
 * independently in the boxes, which is what makes IBP sound (and loose) on
 * a residual connection. */
static int add_ibp(const struct sk_layer_run *r, int *c, int *rad)
{
    *c = sk_op_add(r->g, *c, r->c2);
    *rad = sk_op_add(r->g, *rad, r->r2);
    return SK_OK;
}

/* a box of a concatenation is the concatenation of the boxes */
static int cat_ibp(const struct sk_layer_run *r, int *c, int *rad)
{
    *c = sk_op_concat(r->g, *c, r->c2);
    *rad = sk_op_concat(r->g, *rad, r->r2);
    return SK_OK;
}

/* y = a (x - mean) + beta with a = gamma / sqrt(var + eps): the centre
 * through the layer itself, the radius through |gamma| with zero mean and
 * zero shift. */
static int bn_ibp(const struct sk_layer_run *r, int *c, int *rad)
{
    const struct sk_layer *L = r->L;
    const struct sk_model *m = r->m;
    struct sk_graph *g = r->g;
    int C = L->units, cs[1] = { C }, gm, bt, rc = tensor_params(r, &gm, &bt);
    if (rc) return rc;
    float *zero = sk_graph_scratch_zero(g, sizeof(float) * (size_t)C);
    if (!zero) return SK_ENOMEM;
    int zb = sk_graph_param(g, zero, NULL, 1, cs);
    float *rv = m->buffers + L->rv_off;
    *c = sk_op_batchnorm(g, *c, gm, bt, m->buffers + L->rm_off, rv, m->bn_momentum, m->bn_eps, false);
    *rad = sk_op_batchnorm(g, *rad, sk_layer_abs(g, gm), zb, zero, rv, m->bn_momentum, m->bn_eps, false);
    return SK_OK;
}

/* ---- bias-free linear maps and Lipschitz constants ---- */

static int dense_linear(const struct sk_layer_run *r, int h)
{
    int ws[2] = { r->L->units, r->L->in[0] };
    return sk_op_dense(r->g, h, param(r, r->L->w_off, 2, ws), -1);
}

static int conv_linear(const struct sk_layer_run *r, int h)
{
    const struct sk_layer *L = r->L;
    int ws[4] = { L->units, L->in[0], L->k, L->k };
    return sk_op_conv2d(r->g, h, param(r, L->w_off, 4, ws), -1, L->stride, L->pad);
}

static double lip_one(const struct sk_model *m, const struct sk_layer *L)
{
    (void)m;
    (void)L;
    return 1;
}

/* each input lies in at most ceil(k/s)^2 windows; max is 1-Lipschitz per window */
static double maxpool_lip(const struct sk_model *m, const struct sk_layer *L)
{
    (void)m;
    int q = (L->k + L->stride - 1) / L->stride;
    return q;
}

static double gap_lip(const struct sk_model *m, const struct sk_layer *L)
{
    (void)m;
    return 1.0 / sqrt((double)L->in[1] * L->in[2]);
}

static double lrelu_lip(const struct sk_model *m, const struct sk_layer *L)
{
    (void)m;
    return fabs(L->p) > 1 ? fabs(L->p) : 1;
}

static double sigmoid_lip(const struct sk_model *m, const struct sk_layer *L)
{
    (void)m;
    (void)L;
    return 0.25;
}

/* the maximum of GELU's derivative, about 1.1289 */
static double gelu_lip(const struct sk_model *m, const struct sk_layer *L)
{
    (void)m;
    (void)L;
    return 1.1290;
}

/* eval mode: max_c |gamma_c| / sqrt(running_var_c + eps) */
static double bn_lip(const struct sk_model *m, const struct sk_layer *L)
{
    double s = 0;
    for (int c = 0; c < L->units; c++) {
        double a = fabs(m->params[L->w_off + c]) / sqrt(m->buffers[L->rv_off + c] + m->bn_eps);
        s = a > s ? a : s;
    }
    return s;
}

/* ---- shapes and tensors (what a spec's layer makes) ---- */

static const char *dense_shape(struct sk_layer *L, struct sk_layer_shape *s)
{
    s->C = L->units;
    return NULL;
}

static const char *conv_shape(struct sk_layer *L, struct sk_layer_shape *s)
{
    if (s->H + 2 * L->pad < L->k || s->W + 2 * L->pad < L->k) return "the kernel is larger than the (padded) input";
    s->C = L->units;
    s->H = (s->H + 2 * L->pad - L->k) / L->stride + 1;
    s->W = (s->W + 2 * L->pad - L->k) / L->stride + 1;
    return NULL;
}

static const char *pool_shape(struct sk_layer *L, struct sk_layer_shape *s)
{
    if (!L->stride) L->stride = L->k; /* the stride defaults to the window */
    if (L->k > s->H || L->k > s->W) return "the pooling window is larger than the input";
    s->H = (s->H - L->k) / L->stride + 1;
    s->W = (s->W - L->k) / L->stride + 1;
    return NULL;
}

static const char *gap_shape(struct sk_layer *L, struct sk_layer_shape *s)
{
    (void)L;
    s->H = s->W = 1;
    s->spatial = false;
    return NULL;
}

static const char *flatten_shape(struct sk_layer *L, struct sk_layer_shape *s)
{
    (void)L;
    s->C = s->C * s->H * s->W;
    s->H = s->W = 1;
    s->spatial = false;
    return NULL;
}

static const char *dropout_shape(struct sk_layer *L, struct sk_layer_shape *s)
{
    (void)s;
    return L->p >= 0 && L->p < 1 ? NULL : "dropout probability must be in [0,1)";
}

static const char *add_join(struct sk_layer *L, struct sk_layer_shape *s, const struct sk_layer_shape *s2)
{
    (void)L;
    if (s->C != s2->C || s->H != s2->H || s->W != s2->W || s->spatial != s2->spatial)
        return "add needs two outputs of one shape";
    return NULL;
}

static const char *cat_join(struct sk_layer *L, struct sk_layer_shape *s, const struct sk_layer_shape *s2)
{
    (void)L;
    if (s->spatial != s2->spatial) return "cat needs two images or two vectors, not one of each";
    if (s->H != s2->H || s->W != s2->W) return "cat needs images of one height and width";
    s->C += s2->C;
    return NULL;
}

static const char *bn_shape(struct sk_layer *L, struct sk_layer_shape *s)
{
    L->units = s->C;
    return NULL;
}

static struct sk_layer_tensor tensor(const char *suffix, enum sk_layer_tensor_slot slot, bool buffer, int ndim, int d0,
                                     int d1, int d2, int d3)
{
    return (struct sk_layer_tensor){ .suffix = suffix, .slot = slot, .buffer = buffer, .ndim = ndim,
                                     .shape = { d0, d1, d2, d3 } };
}

/* weight [O, I], bias [O] (nn.Linear) */
static int dense_tensors(const struct sk_layer *L, struct sk_layer_tensor *t)
{
    t[0] = tensor("weight", SK_TENSOR_W, false, 2, L->units, L->in[0], 0, 0);
    t[1] = tensor("bias", SK_TENSOR_B, false, 1, L->units, 0, 0, 0);
    return 2;
}

/* weight [O, C, k, k], bias [O] (nn.Conv2d) */
static int conv_tensors(const struct sk_layer *L, struct sk_layer_tensor *t)
{
    t[0] = tensor("weight", SK_TENSOR_W, false, 4, L->units, L->in[0], L->k, L->k);
    t[1] = tensor("bias", SK_TENSOR_B, false, 1, L->units, 0, 0, 0);
    return 2;
}

/* gamma, beta, and the running statistics as buffers (nn.BatchNorm) */
static int bn_tensors(const struct sk_layer *L, struct sk_layer_tensor *t)
{
    t[0] = tensor("weight", SK_TENSOR_W, false, 1, L->units, 0, 0, 0);
    t[1] = tensor("bias", SK_TENSOR_B, false, 1, L->units, 0, 0, 0);
    t[2] = tensor("running_mean", SK_TENSOR_RUNNING_MEAN, true, 1, L->units, 0, 0, 0);
    t[3] = tensor("running_var", SK_TENSOR_RUNNING_VAR, true, 1, L->units, 0, 0, 0);
    return 4;
}

/* ---- the table ---- */

/* a required argument into field f of struct sk_layer; an optional one with its default */
#define ARG(what_, tag_, type_, f) { .what = what_, .tag = tag_, .type = type_, .field = offsetof(struct sk_layer, f) }
#define OPT(what_, tag_, type_, f, def_)                                                                     \
    { .what = what_, .tag = tag_, .type = type_, .optional = true, .field = offsetof(struct sk_layer, f),    \
      .def = def_ }

const struct sk_layer_def sk_layer_table[] = {
    [SK_LAYER_DENSE] = { .name = "dense", .input = SK_INPUT_VECTOR,
                         .input_note = "a dense layer after a spatial layer needs 'flatten' (or 'gap') first",
                         .args = { ARG("the number of units after 'dense'", 0, SK_ARG_INT, units) },
                         .shape = dense_shape, .tensors = dense_tensors, .params = tensor_params, .init = dense_init,
                         .forward = dense_forward, .ibp = dense_ibp, .linear = dense_linear },
    [SK_LAYER_CONV] = { .name = "conv", .input = SK_INPUT_IMAGE,
                        .input_note = "conv needs an image input (CxHxW), not a vector",
                        .args = { ARG("the number of output channels after 'conv'", 0, SK_ARG_INT, units),
                                  { .what = "the kernel size after 'k'", .tag = 'k', .type = SK_ARG_INT,
                                    .field = offsetof(struct sk_layer, k),
                                    .missing = "expected 'k' and the kernel size (e.g. conv32k3p1)" },
                                  OPT("the stride after 's'", 's', SK_ARG_INT, stride, 1),
                                  OPT("the padding after 'p'", 'p', SK_ARG_INT0, pad, 0) },
                        .shape = conv_shape, .tensors = conv_tensors, .params = tensor_params, .init = conv_init,
                        .forward = conv_forward, .ibp = conv_ibp, .linear = conv_linear },
    /* stride 0 when left out: pool_shape makes it the window */
    [SK_LAYER_MAXPOOL] = { .name = "maxpool", .input = SK_INPUT_IMAGE, .input_note = "pooling needs an image input",
                           .args = { ARG("the window size", 0, SK_ARG_INT, k),
                                     OPT("the stride after 's'", 's', SK_ARG_INT, stride, 0) },
                           .shape = pool_shape, .forward = maxpool_forward, .ibp = monotone_ibp,
                           .lipschitz = maxpool_lip },
    [SK_LAYER_AVGPOOL] = { .name = "avgpool", .input = SK_INPUT_IMAGE, .input_note = "pooling needs an image input",
                           .args = { ARG("the window size", 0, SK_ARG_INT, k),
                                     OPT("the stride after 's'", 's', SK_ARG_INT, stride, 0) },
                           .shape = pool_shape, .forward = avgpool_forward, .ibp = positive_linear_ibp,
                           .linear = avgpool_forward },
    [SK_LAYER_GAP] = { .name = "gap", .input = SK_INPUT_IMAGE,
                       .input_note = "global average pooling needs an image input", .shape = gap_shape,
                       .forward = gap_forward, .ibp = positive_linear_ibp, .lipschitz = gap_lip },
    [SK_LAYER_FLATTEN] = { .name = "flatten", .shape = flatten_shape, .forward = flatten_forward,
                           .ibp = positive_linear_ibp, .lipschitz = lip_one },
    [SK_LAYER_RELU] = { .name = "relu", .activation = true, .forward = relu_forward, .ibp = monotone_ibp,
                        .lipschitz = lip_one },
    [SK_LAYER_LRELU] = { .name = "lrelu", .activation = true,
                         .args = { OPT("the negative slope", 0, SK_ARG_FLOAT, p, 0.01f) },
                         .forward = lrelu_forward, .ibp = lrelu_ibp, .lipschitz = lrelu_lip },
    [SK_LAYER_TANH] = { .name = "tanh", .activation = true, .forward = tanh_forward, .ibp = monotone_ibp,
                        .lipschitz = lip_one },
    [SK_LAYER_SIGMOID] = { .name = "sigmoid", .activation = true, .forward = sigmoid_forward, .ibp = monotone_ibp,
                           .lipschitz = sigmoid_lip },
    [SK_LAYER_SOFTPLUS] = { .name = "softplus", .activation = true, .forward = softplus_forward, .ibp = monotone_ibp,
                            .lipschitz = lip_one },
    [SK_LAYER_GELU] = { .name = "gelu", .activation = true, .forward = gelu_forward, .lipschitz = gelu_lip,
                        .ibp_note = "is not monotone; bound propagation supports relu, leaky relu, tanh, sigmoid, "
                                    "softplus" },
    /* identity in eval mode, where bounds are taken */
    [SK_LAYER_DROPOUT] = { .name = "dropout",
                           .args = { ARG("the dropout probability (e.g. dropout0.5)", 0, SK_ARG_FLOAT, p) },
                           .shape = dropout_shape, .forward = dropout_forward, .ibp = identity_ibp,
                           .lipschitz = lip_one },
    [SK_LAYER_BATCHNORM] = { .name = "bn", .shape = bn_shape, .tensors = bn_tensors, .params = tensor_params,
                             .init = bn_init, .forward = bn_forward, .ibp = bn_ibp, .lipschitz = bn_lip },
    /* Lipschitz constants of graphs: sum (add) and root-sum-square (cat) of
     * the inputs' constants, in certify/lipschitz.c */
    [SK_LAYER_ADD] = { .name = "add", .join = add_join, .forward = add_forward, .ibp = add_ibp },
    [SK_LAYER_CAT] = { .name = "cat", .join = cat_join, .forward = cat_forward, .ibp = cat_ibp },
};

_Static_assert(sizeof sk_layer_table / sizeof sk_layer_table[0] == SK_LAYER_COUNT,
               "sk_layer_table needs one row per layer kind (enum sk_layer_kind in model.h)");

const char *sk_layer_name(enum sk_layer_kind k)
{
    return (unsigned)k < SK_LAYER_COUNT ? sk_layer_table[k].name : "?";
}
