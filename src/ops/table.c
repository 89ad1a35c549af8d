/* The op table: name, forward, backward and second-order rule of every op,
 * indexed by op id. A new op is one enum value (appended) and one row here. */
#include "graph/graph_impl.h"

#include <stddef.h>

/* Ops with a gradient and a second-order rule sk_hvp_<h> (see struct sk_op_def). */
#define OP(id, nm, kern, h) \
    [id] = { .name = nm, .forward = sk_##kern##_forward, .backward = sk_##kern##_backward, .hvp = &sk_hvp_##h }

const struct sk_op_def sk_op_table[] = {
    [OP_INPUT] = { .name = "input", .no_grad = "leaf: dL/dx is its own gradient, filled by its consumers" },
    [OP_PARAM] = { .name = "param", .no_grad = "leaf: its gradient is the caller's buffer, filled by its consumers" },
    OP(OP_DENSE, "dense", dense, dense),
    OP(OP_CONV2D, "conv2d", conv2d_node, conv2d),
    OP(OP_MAXPOOL, "maxpool2d", maxpool_node, maxpool),
    OP(OP_AVGPOOL, "avgpool2d", avgpool_node, avgpool),
    OP(OP_GAP, "global_avgpool", gap, gap),
    /* sk_op_flatten and sk_op_reshape */
    [OP_FLATTEN] = { .name = "reshape", .no_grad = "view: shares its input's value and gradient" },
    OP(OP_RELU, "relu", relu, relu),
    OP(OP_LRELU, "leaky_relu", lrelu, lrelu),
    OP(OP_TANH, "tanh", tanh, tanh),
    OP(OP_SIGMOID, "sigmoid", sigmoid, sigmoid),
    OP(OP_SOFTPLUS, "softplus", softplus, softplus),
    OP(OP_GELU, "gelu", gelu, gelu),
    OP(OP_DROPOUT, "dropout", dropout, dropout),
    OP(OP_BATCHNORM, "batchnorm", batchnorm, batchnorm),
    OP(OP_SOFTMAX, "softmax", softmax, softmax),
    OP(OP_LOGSOFTMAX, "log_softmax", log_softmax, log_softmax),
    OP(OP_ADD, "add", add, add),
    OP(OP_SUB, "sub", sub, sub),
    OP(OP_MUL, "mul", mul, mul),
    OP(OP_SCALE, "scale", scale, scale),
    OP(OP_SUM, "sum", sum, sum),
    OP(OP_MEAN, "mean", mean, mean),
    OP(OP_GAUSS, "gauss_sample", gauss, gauss),
    OP(OP_CE, "cross_entropy", ce, ce),
    OP(OP_BCE, "bce_logits", bce, bce),
    OP(OP_MSE, "mse", mse, mse),
    OP(OP_KL, "kl_categorical", kl, kl),
    OP(OP_MARGIN, "margin", margin, margin),
    [OP_STEP] = { .name = "step", .forward = sk_step_forward,
                  .no_grad = "zero gradient by definition: a deliberately masked gradient" },
    OP(OP_CONV_RELU_POOL, "conv2d_relu_maxpool", conv_relu_pool, conv_relu_pool),
    [OP_NUC] = { .name = "nuclear", .forward = sk_nuc_forward, .backward = sk_nuc_backward,
                 .no_hvp = "its second derivative needs the derivative of the singular vectors (a full SVD "
                           "perturbation, singular where singular values meet); not implemented" },
    OP(OP_AFFINE_COLS, "affine_cols", affine_cols, affine_cols),
    OP(OP_CONV_T, "conv_transpose2d", conv_t, conv_t),
    OP(OP_TRANSPOSE, "transpose", transpose, transpose),
    OP(OP_MUL_GROUPS, "mul_groups", mul_groups, mul_groups),
    OP(OP_DOT_GROUPS, "dot_groups", dot_groups, dot_groups),
    [OP_RELU_SLOPE] = { .name = "relu_upper_slope", .forward = sk_relu_slope_forward, .backward = sk_relu_slope_backward,
                        .no_hvp = "a bound-propagation coefficient of certified training, whose loss is not "
                                  "differentiated twice; no second-order rule" },
    OP(OP_CONCAT, "concat", concat, concat),
};

_Static_assert(sizeof sk_op_table / sizeof sk_op_table[0] == OP_COUNT,
               "sk_op_table needs one row per op id (enum sk_op in graph_impl.h)");
