/* The op table: backward of every op, indexed by op id. */
#include "graph/graph_impl.h"

void sk_dense_backward(struct sk_graph *g, struct sk_node *nd);
void sk_conv2d_node_backward(struct sk_graph *g, struct sk_node *nd);
void sk_pool_backward(struct sk_graph *g, struct sk_node *nd);
void sk_gap_backward(struct sk_graph *g, struct sk_node *nd);
void sk_relu_backward(struct sk_graph *g, struct sk_node *nd);
void sk_lrelu_backward(struct sk_graph *g, struct sk_node *nd);
void sk_tanh_backward(struct sk_graph *g, struct sk_node *nd);
void sk_sigmoid_backward(struct sk_graph *g, struct sk_node *nd);
void sk_softplus_backward(struct sk_graph *g, struct sk_node *nd);
void sk_gelu_backward(struct sk_graph *g, struct sk_node *nd);
void sk_scale_backward(struct sk_graph *g, struct sk_node *nd);
void sk_binary_backward(struct sk_graph *g, struct sk_node *nd);
void sk_reduce_backward(struct sk_graph *g, struct sk_node *nd);
void sk_rowwise_backward(struct sk_graph *g, struct sk_node *nd);
void sk_dropout_backward(struct sk_graph *g, struct sk_node *nd);
void sk_batchnorm_backward(struct sk_graph *g, struct sk_node *nd);
void sk_gauss_backward(struct sk_graph *g, struct sk_node *nd);
void sk_ce_backward(struct sk_graph *g, struct sk_node *nd);
void sk_bce_backward(struct sk_graph *g, struct sk_node *nd);
void sk_mse_backward(struct sk_graph *g, struct sk_node *nd);
void sk_kl_backward(struct sk_graph *g, struct sk_node *nd);
void sk_nuc_backward(struct sk_graph *g, struct sk_node *nd);
void sk_margin_backward(struct sk_graph *g, struct sk_node *nd);
void sk_affine_cols_backward(struct sk_graph *g, struct sk_node *nd);

const sk_backward_fn sk_backward_table[OP_COUNT] = {
    [OP_INPUT] = NULL,
    [OP_PARAM] = NULL,
    [OP_DENSE] = sk_dense_backward,
    [OP_CONV2D] = sk_conv2d_node_backward,
    [OP_MAXPOOL] = sk_pool_backward,
    [OP_AVGPOOL] = sk_pool_backward,
    [OP_GAP] = sk_gap_backward,
    [OP_FLATTEN] = NULL, /* a view: its gradient is its input's */
    [OP_RELU] = sk_relu_backward,
    [OP_LRELU] = sk_lrelu_backward,
    [OP_TANH] = sk_tanh_backward,
    [OP_SIGMOID] = sk_sigmoid_backward,
    [OP_SOFTPLUS] = sk_softplus_backward,
    [OP_GELU] = sk_gelu_backward,
    [OP_DROPOUT] = sk_dropout_backward,
    [OP_BATCHNORM] = sk_batchnorm_backward,
    [OP_SOFTMAX] = sk_rowwise_backward,
    [OP_LOGSOFTMAX] = sk_rowwise_backward,
    [OP_ADD] = sk_binary_backward,
    [OP_SUB] = sk_binary_backward,
    [OP_MUL] = sk_binary_backward,
    [OP_SCALE] = sk_scale_backward,
    [OP_SUM] = sk_reduce_backward,
    [OP_MEAN] = sk_reduce_backward,
    [OP_GAUSS] = sk_gauss_backward,
    [OP_CE] = sk_ce_backward,
    [OP_BCE] = sk_bce_backward,
    [OP_MSE] = sk_mse_backward,
    [OP_KL] = sk_kl_backward,
    [OP_MARGIN] = sk_margin_backward,
    [OP_STEP] = NULL, /* zero gradient by definition: a masked gradient */
    [OP_CONV_RELU_POOL] = sk_conv2d_node_backward,
    [OP_AFFINE_COLS] = sk_affine_cols_backward,
    [OP_NUC] = sk_nuc_backward,
};
