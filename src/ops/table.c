/* The op table: name, forward, backward and second-order rule of every op,
 * indexed by op id. A new op is one enum value (appended) and one row here. */
#include "graph/graph_impl.h"

#include <stddef.h>

/* Ops with a gradient and no second-order rule yet (see struct sk_op_def). */
#define OP(id, nm, kern) [id] = { .name = nm, .forward = sk_##kern##_forward, .backward = sk_##kern##_backward }

const struct sk_op_def sk_op_table[] = {
    [OP_INPUT] = { .name = "input", .no_grad = "leaf: dL/dx is its own gradient, filled by its consumers" },
    [OP_PARAM] = { .name = "param", .no_grad = "leaf: its gradient is the caller's buffer, filled by its consumers" },
    OP(OP_DENSE, "dense", dense),
    OP(OP_CONV2D, "conv2d", conv2d_node),
    OP(OP_MAXPOOL, "maxpool2d", maxpool_node),
    OP(OP_AVGPOOL, "avgpool2d", avgpool_node),
    OP(OP_GAP, "global_avgpool", gap),
    /* sk_op_flatten and sk_op_reshape */
    [OP_FLATTEN] = { .name = "reshape", .no_grad = "view: shares its input's value and gradient" },
    OP(OP_RELU, "relu", relu),
    OP(OP_LRELU, "leaky_relu", lrelu),
    OP(OP_TANH, "tanh", tanh),
    OP(OP_SIGMOID, "sigmoid", sigmoid),
    OP(OP_SOFTPLUS, "softplus", softplus),
    OP(OP_GELU, "gelu", gelu),
    OP(OP_DROPOUT, "dropout", dropout),
    OP(OP_BATCHNORM, "batchnorm", batchnorm),
    OP(OP_SOFTMAX, "softmax", softmax),
    OP(OP_LOGSOFTMAX, "log_softmax", log_softmax),
    OP(OP_ADD, "add", add),
    OP(OP_SUB, "sub", sub),
    OP(OP_MUL, "mul", mul),
    OP(OP_SCALE, "scale", scale),
    OP(OP_SUM, "sum", sum),
    OP(OP_MEAN, "mean", mean),
    OP(OP_GAUSS, "gauss_sample", gauss),
    OP(OP_CE, "cross_entropy", ce),
    OP(OP_BCE, "bce_logits", bce),
    OP(OP_MSE, "mse", mse),
    OP(OP_KL, "kl_categorical", kl),
    OP(OP_MARGIN, "margin", margin),
    [OP_STEP] = { .name = "step", .forward = sk_step_forward,
                  .no_grad = "zero gradient by definition: a deliberately masked gradient" },
    OP(OP_CONV_RELU_POOL, "conv2d_relu_maxpool", conv_relu_pool),
    OP(OP_NUC, "nuclear", nuc),
    OP(OP_AFFINE_COLS, "affine_cols", affine_cols),
};

_Static_assert(sizeof sk_op_table / sizeof sk_op_table[0] == OP_COUNT,
               "sk_op_table needs one row per op id (enum sk_op in graph_impl.h)");
