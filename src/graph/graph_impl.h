/* Internal to src/graph/ and src/ops/: the node record, the op table and
 * helpers shared by op files. Everything else sees nodes through graph.h. */
#ifndef SK_GRAPH_IMPL_H
#define SK_GRAPH_IMPL_H

#include "skeptic/graph.h"

/* Op ids: append only (ids index sk_op_table, which holds each op's name). */
enum sk_op {
    OP_INPUT, OP_PARAM, OP_DENSE, OP_CONV2D, OP_MAXPOOL, OP_AVGPOOL, OP_GAP, OP_FLATTEN,
    OP_RELU, OP_LRELU, OP_TANH, OP_SIGMOID, OP_SOFTPLUS, OP_GELU, OP_DROPOUT, OP_BATCHNORM,
    OP_SOFTMAX, OP_LOGSOFTMAX, OP_ADD, OP_SUB, OP_MUL, OP_SCALE, OP_SUM, OP_MEAN,
    OP_GAUSS, OP_CE, OP_BCE, OP_MSE, OP_KL, OP_MARGIN, OP_STEP, OP_CONV_RELU_POOL, OP_NUC,
    OP_AFFINE_COLS, OP_CONV_T, OP_TRANSPOSE, OP_MUL_GROUPS, OP_DOT_GROUPS, OP_RELU_SLOPE, OP_CONCAT, OP_COUNT
};

struct sk_node {
    int op;
    int in[3];          /* input node ids, -1 if unused */
    int ndim;
    int shape[4];
    size_t n;           /* number of elements */
    float *val;
    float *grad;        /* NULL until backward (params: caller's buffer) */
    bool needs_grad;
    bool grad_fresh;    /* during backward: grad holds no contribution yet (treat as zero) */
    int iarg[4];
    float farg[4];
    uint64_t key;
    const void *cptr[2]; /* caller-owned arrays (labels, targets) */
    void *saved;         /* arena-owned state for backward */
    void *saved2;
    void *saved3;
    float *rbuf[2];      /* caller buffers (batch-norm running stats) */
    /* Second order (sk_graph_hvp): tval = R{val}, the directional derivative
     * of the value along the leaves' directions (NULL = zero: no direction
     * reaches the node); tgrad = R{grad}, its directional derivative (leaves:
     * the caller's hv buffer or NULL). */
    float *tval;
    float *tgrad;
    float *tbuf;         /* arena buffer behind tval of an inner node, reused */
    float *tgbuf;        /* arena buffer behind tgrad of an inner node, reused */
    float *ttmp;         /* arena scratch of the op's second-order rule (temp_floats), reused */
};

struct sk_graph {
    struct sk_arena *arena;
    struct sk_node *nodes;
    int n_nodes, cap;
    bool param_grads;
};

/* ---- the op table (src/ops/table.c) ----
 * One row per op id. An op's constructor (sk_op_*, sk_loss_* in graph.h)
 * checks shapes, records the node, stores its arguments on it and allocates
 * in the arena whatever the op keeps for backward; then it runs the row's
 * forward (sk_node_run). Forward and backward see only the node, so the same
 * rows can drive a replay of the tape or another backend. */
typedef void (*sk_op_fn)(struct sk_graph *g, struct sk_node *nd);
struct sk_op_def {
    const char *name;     /* the constructor's name without sk_op_ / sk_loss_ */
    /* nd->val (and nd->saved state) from the inputs' values and the node's
     * arguments; cannot fail: the constructor allocated what it needs.
     * NULL for leaves (caller's buffer) and views (the input's buffer). */
    sk_op_fn forward;
    /* Add dL/d(input) into the gradient of every input that needs one (see
     * in_grad / in_grad_w). NULL: no gradient flows through the op, and
     * no_grad says why. */
    sk_op_fn backward;
    /* Second-order rule for exact Hessian-vector products (forward-over-
     * reverse, Pearlmutter's R-operator). NULL for an op without a backward
     * (no gradient flows, so nothing of second order either: R{y} = 0), and
     * for an op without a rule, where no_hvp says why (sk_graph_hvp then
     * refuses, naming the op). */
    const struct sk_op_hvp *hvp;
    const char *no_grad;  /* why backward is NULL; NULL when it is not */
    const char *no_hvp;   /* why hvp is NULL for an op with a backward */
};
/* The two halves of an op's second-order rule. With R{.} = d/dr at r = 0
 * along the leaves' directions:
 *   tangent:  nd->tval = R{y} from the inputs' values and tvals (an input's
 *             tval NULL = zero); overwrites. NULL: R{y} is zero (a
 *             piecewise-constant op).
 *   backward: add R{dL/d input} = J^T R{dy} + R{J}^T dy into the tgrad of
 *             every input that has one (in_tgrad), from nd->grad (dy, the
 *             gradient of the ordinary backward), nd->tgrad (R{dy}), values
 *             and tvals. Cannot fail: buffers were allocated before. */
struct sk_op_hvp {
    sk_op_fn tangent;
    sk_op_fn backward;
    /* floats of scratch the rule needs in nd->ttmp (NULL: none) */
    size_t (*temp_floats)(const struct sk_graph *g, const struct sk_node *nd);
};
extern const struct sk_op_def sk_op_table[OP_COUNT];

static inline struct sk_node *node_at(struct sk_graph *g, int id) { return &g->nodes[id]; }

/* Run the table's forward on node id (a constructor's last step); returns id,
 * or id unchanged when it is a negative status. */
static inline int sk_node_run(struct sk_graph *g, int id)
{
    if (id >= 0) sk_op_table[g->nodes[id].op].forward(g, &g->nodes[id]);
    return id;
}

/* Append a node with the given shape and op; allocates its value in the arena.
 * Returns the id or a negative status. */
int sk_node_new(struct sk_graph *g, int op, int ndim, const int *shape, int in0, int in1, int in2);
/* Validate an input id; returns 0 or a negative status with a message. */
int sk_node_check(const struct sk_graph *g, int id, const char *op, const char *what);
/* The node that owns the storage of id's gradient (views share their input's). */
static inline struct sk_node *grad_owner(struct sk_graph *g, int id)
{
    struct sk_node *c = &g->nodes[id];
    while (c->op == OP_FLATTEN) c = &g->nodes[c->in[0]];
    return c;
}
/* Intermediate gradients are not zeroed up front: a gradient is "fresh" until
 * its first contribution. in_grad_w() hands the gradient of input k to a
 * backward that can write its contribution (*overwrite = true: assign, not
 * add) and so saves a pass over memory; in_grad() zeroes a fresh gradient
 * first, so backward code that adds stays correct. Both return NULL if input
 * k needs no gradient. */
static inline float *in_grad_w(struct sk_graph *g, struct sk_node *nd, int k, bool *overwrite)
{
    int id = nd->in[k];
    *overwrite = false;
    if (id < 0 || !g->nodes[id].needs_grad) return NULL;
    struct sk_node *o = grad_owner(g, id);
    if (o->grad_fresh) {
        *overwrite = true;
        o->grad_fresh = false;
    }
    return g->nodes[id].grad;
}
void sk_grad_zero(struct sk_node *o); /* memset the gradient of a storage owner */
static inline float *in_grad(struct sk_graph *g, struct sk_node *nd, int k)
{
    int id = nd->in[k];
    if (id < 0 || !g->nodes[id].needs_grad) return NULL;
    struct sk_node *o = grad_owner(g, id);
    if (o->grad_fresh) {
        sk_grad_zero(o);
        o->grad_fresh = false;
    }
    return g->nodes[id].grad;
}
static inline float *in_val(struct sk_graph *g, struct sk_node *nd, int k)
{
    return g->nodes[nd->in[k]].val;
}
/* Second order: input k's R{val} (NULL = zero) and the R{grad} buffer to
 * add into (NULL: input k needs none). */
static inline const float *in_tval(struct sk_graph *g, struct sk_node *nd, int k)
{
    return nd->in[k] < 0 ? NULL : g->nodes[nd->in[k]].tval;
}
static inline float *in_tgrad(struct sk_graph *g, struct sk_node *nd, int k)
{
    int id = nd->in[k];
    if (id < 0 || !g->nodes[id].needs_grad) return NULL;
    return g->nodes[id].tgrad;
}

/* Kernels shared with tests (naive twins live beside the fast ones). */
/* conv2d kernels: scratch holds sk_conv2d_scratch_floats(..., n_threads)
 * floats (64-byte aligned); forward overwrites y; backward adds into dx, dW, db
 * (any may be NULL; assign_dx: overwrite dx instead of adding). Reproducible for a fixed n_threads. */
size_t sk_conv2d_scratch_floats(int C, int H, int Wd, int OC, int KH, int KW, int stride, int pad, int n_threads);
void sk_conv2d_forward(float *y, float *scratch, int n_threads, const float *x, const float *W, const float *b,
                       int N, int C, int H, int Wd, int OC, int KH, int KW, int stride, int pad);
void sk_conv2d_backward(float *dx, bool assign_dx, float *dW, float *db, float *scratch, int n_threads,
                        const float *dy, const float *x, const float *W, int N, int C, int H, int Wd, int OC,
                        int KH, int KW, int stride, int pad);
void sk_conv2d_forward_ref(float *y, const float *x, const float *W, const float *b, int N, int C,
                           int H, int Wd, int OC, int KH, int KW, int stride, int pad);
void sk_conv2d_backward_ref(float *dx, float *dW, float *db, const float *dy, const float *x,
                            const float *W, int N, int C, int H, int Wd, int OC, int KH, int KW,
                            int stride, int pad);
void sk_maxpool_forward(float *y, int *arg, const float *x, int N, int C, int H, int W, int k, int s);
void sk_maxpool_forward_ref(float *y, const float *x, int N, int C, int H, int W, int k, int s);
/* Pool backwards add into dx (assign_dx: overwrite it). */
void sk_maxpool_backward(float *dx, bool assign_dx, const float *dy, const int *arg, int N, int C, int H, int W,
                         int OH, int OW);
void sk_avgpool_forward(float *y, const float *x, int N, int C, int H, int W, int k, int s);
void sk_avgpool_forward_ref(float *y, const float *x, int N, int C, int H, int W, int k, int s);
void sk_maxpool_backward_ref(float *dx, const float *dy, const float *x, int N, int C, int H, int W, int k, int s);
void sk_avgpool_backward_ref(float *dx, const float *dy, int N, int C, int H, int W, int k, int s);
void sk_avgpool_backward(float *dx, bool assign_dx, const float *dy, int N, int C, int H, int W, int k, int s);

/* Node kernels, the rows of sk_op_table (_node_ where an array kernel above
 * has the plain name). */
void sk_dense_forward(struct sk_graph *g, struct sk_node *nd);
void sk_dense_backward(struct sk_graph *g, struct sk_node *nd);
void sk_conv2d_node_forward(struct sk_graph *g, struct sk_node *nd);
void sk_conv2d_node_backward(struct sk_graph *g, struct sk_node *nd);
void sk_conv_relu_pool_forward(struct sk_graph *g, struct sk_node *nd);
void sk_conv_relu_pool_backward(struct sk_graph *g, struct sk_node *nd);
void sk_maxpool_node_forward(struct sk_graph *g, struct sk_node *nd);
void sk_maxpool_node_backward(struct sk_graph *g, struct sk_node *nd);
void sk_avgpool_node_forward(struct sk_graph *g, struct sk_node *nd);
void sk_avgpool_node_backward(struct sk_graph *g, struct sk_node *nd);
void sk_gap_forward(struct sk_graph *g, struct sk_node *nd);
void sk_gap_backward(struct sk_graph *g, struct sk_node *nd);
void sk_relu_forward(struct sk_graph *g, struct sk_node *nd);
void sk_relu_backward(struct sk_graph *g, struct sk_node *nd);
void sk_lrelu_forward(struct sk_graph *g, struct sk_node *nd);
void sk_lrelu_backward(struct sk_graph *g, struct sk_node *nd);
void sk_tanh_forward(struct sk_graph *g, struct sk_node *nd);
void sk_tanh_backward(struct sk_graph *g, struct sk_node *nd);
void sk_sigmoid_forward(struct sk_graph *g, struct sk_node *nd);
void sk_sigmoid_backward(struct sk_graph *g, struct sk_node *nd);
void sk_softplus_forward(struct sk_graph *g, struct sk_node *nd);
void sk_softplus_backward(struct sk_graph *g, struct sk_node *nd);
void sk_gelu_forward(struct sk_graph *g, struct sk_node *nd);
void sk_gelu_backward(struct sk_graph *g, struct sk_node *nd);
void sk_dropout_forward(struct sk_graph *g, struct sk_node *nd);
void sk_dropout_backward(struct sk_graph *g, struct sk_node *nd);
void sk_batchnorm_forward(struct sk_graph *g, struct sk_node *nd);
void sk_batchnorm_backward(struct sk_graph *g, struct sk_node *nd);
void sk_softmax_forward(struct sk_graph *g, struct sk_node *nd);
void sk_softmax_backward(struct sk_graph *g, struct sk_node *nd);
void sk_log_softmax_forward(struct sk_graph *g, struct sk_node *nd);
void sk_log_softmax_backward(struct sk_graph *g, struct sk_node *nd);
void sk_add_forward(struct sk_graph *g, struct sk_node *nd);
void sk_add_backward(struct sk_graph *g, struct sk_node *nd);
void sk_sub_forward(struct sk_graph *g, struct sk_node *nd);
void sk_sub_backward(struct sk_graph *g, struct sk_node *nd);
void sk_mul_forward(struct sk_graph *g, struct sk_node *nd);
void sk_mul_backward(struct sk_graph *g, struct sk_node *nd);
void sk_scale_forward(struct sk_graph *g, struct sk_node *nd);
void sk_scale_backward(struct sk_graph *g, struct sk_node *nd);
void sk_sum_forward(struct sk_graph *g, struct sk_node *nd);
void sk_sum_backward(struct sk_graph *g, struct sk_node *nd);
void sk_mean_forward(struct sk_graph *g, struct sk_node *nd);
void sk_mean_backward(struct sk_graph *g, struct sk_node *nd);
void sk_gauss_forward(struct sk_graph *g, struct sk_node *nd);
void sk_gauss_backward(struct sk_graph *g, struct sk_node *nd);
void sk_ce_forward(struct sk_graph *g, struct sk_node *nd);
void sk_ce_backward(struct sk_graph *g, struct sk_node *nd);
void sk_bce_forward(struct sk_graph *g, struct sk_node *nd);
void sk_bce_backward(struct sk_graph *g, struct sk_node *nd);
void sk_mse_forward(struct sk_graph *g, struct sk_node *nd);
void sk_mse_backward(struct sk_graph *g, struct sk_node *nd);
void sk_kl_forward(struct sk_graph *g, struct sk_node *nd);
void sk_kl_backward(struct sk_graph *g, struct sk_node *nd);
void sk_margin_forward(struct sk_graph *g, struct sk_node *nd);
void sk_margin_backward(struct sk_graph *g, struct sk_node *nd);
void sk_nuc_forward(struct sk_graph *g, struct sk_node *nd);
void sk_nuc_backward(struct sk_graph *g, struct sk_node *nd);
void sk_affine_cols_forward(struct sk_graph *g, struct sk_node *nd);
void sk_affine_cols_backward(struct sk_graph *g, struct sk_node *nd);
void sk_concat_forward(struct sk_graph *g, struct sk_node *nd);
void sk_concat_backward(struct sk_graph *g, struct sk_node *nd);
void sk_step_forward(struct sk_graph *g, struct sk_node *nd); /* no backward: see the table */
void sk_conv_t_forward(struct sk_graph *g, struct sk_node *nd);
void sk_conv_t_backward(struct sk_graph *g, struct sk_node *nd);
void sk_transpose_forward(struct sk_graph *g, struct sk_node *nd);
void sk_transpose_backward(struct sk_graph *g, struct sk_node *nd);
void sk_mul_groups_forward(struct sk_graph *g, struct sk_node *nd);
void sk_mul_groups_backward(struct sk_graph *g, struct sk_node *nd);
void sk_dot_groups_forward(struct sk_graph *g, struct sk_node *nd);
void sk_dot_groups_backward(struct sk_graph *g, struct sk_node *nd);
void sk_relu_slope_forward(struct sk_graph *g, struct sk_node *nd);
void sk_relu_slope_backward(struct sk_graph *g, struct sk_node *nd);

/* Second-order rules, the hvp column of sk_op_table (sk_hvp_<op>). */
extern const struct sk_op_hvp sk_hvp_dense, sk_hvp_conv2d, sk_hvp_conv_relu_pool, sk_hvp_maxpool,
    sk_hvp_avgpool, sk_hvp_gap, sk_hvp_relu, sk_hvp_lrelu, sk_hvp_tanh, sk_hvp_sigmoid, sk_hvp_softplus,
    sk_hvp_gelu, sk_hvp_dropout, sk_hvp_batchnorm, sk_hvp_softmax, sk_hvp_log_softmax, sk_hvp_add, sk_hvp_sub,
    sk_hvp_mul, sk_hvp_scale, sk_hvp_sum, sk_hvp_mean, sk_hvp_gauss, sk_hvp_ce, sk_hvp_bce, sk_hvp_mse, sk_hvp_kl,
    sk_hvp_margin, sk_hvp_affine_cols, sk_hvp_concat, sk_hvp_conv_t, sk_hvp_transpose, sk_hvp_mul_groups,
    sk_hvp_dot_groups;

#define SK_PAR_MIN 32768 /* element count above which element-wise loops go parallel */

#endif
