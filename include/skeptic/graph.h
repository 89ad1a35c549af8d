/* skeptic/graph.h — reverse-mode autodiff on a recorded graph (a tape).
 *
 * Overview. Ops run eagerly: each sk_op_* call computes its output at once
 * and records a node on the graph's tape. sk_graph_backward() then walks the
 * tape backwards and *adds* into the gradient of every node that needs one:
 * parameters (into the caller's gradient buffer, so gradients of several
 * backwards accumulate until the caller zeroes them) and inputs created with
 * needs_grad (dL/dx, which attacks need). Backward can be run again on the
 * same forward with another seed gradient (one logit, a margin, ...).
 *
 *     struct sk_graph *g = sk_graph_new();
 *     int x = sk_graph_input(g, xb, 2, (int[]){N, 784}, true);
 *     int z = sk_model_forward(model, g, x, SK_MODE_EVAL, 0);
 *     int L = sk_loss_cross_entropy(g, z, labels, 0.0f);
 *     if (L < 0) fprintf(stderr, "%s\n", sk_last_error());
 *     sk_graph_backward(g, L, NULL);
 *     const float *dx = sk_graph_grad(g, x);          // (N,784)
 *     sk_graph_reset(g);                               // next step
 *
 * Nodes are small integers. Every op returns the new node id, or a negative
 * status with sk_last_error() set (a shape that does not fit, out of memory);
 * an op given a negative input id returns that status unchanged, so a chain
 * of ops can be checked once at the end.
 *
 * Memory: all node values and gradients live in the graph's arena and are
 * valid until sk_graph_reset()/sk_graph_free(). Input and parameter values are
 * the caller's buffers (not copied): they must stay alive and unchanged until
 * the backward is done. Label arrays passed to losses likewise.
 *
 * Threads: a graph is used by one thread at a time; ops parallelise inside
 * with OpenMP and OpenBLAS.
 *
 * Shapes: up to 4 dimensions; images are NCHW, row-major.
 */
#ifndef SKEPTIC_GRAPH_H
#define SKEPTIC_GRAPH_H

#include "skeptic/core.h"

#ifdef __cplusplus
extern "C" {
#endif

struct sk_graph;

struct sk_graph *sk_graph_new(void);
void sk_graph_free(struct sk_graph *g); /* NULL ok */
/* Forget all nodes; the arena is rewound (no allocation after the first step). */
void sk_graph_reset(struct sk_graph *g);
/* Whether backward computes parameter gradients (default true). Attacks turn
 * it off: only dL/dx is needed, which saves the weight-gradient products. */
void sk_graph_set_param_grads(struct sk_graph *g, bool on);

/* A caller-owned input (not copied). needs_grad: compute dL/dx in backward. */
int sk_graph_input(struct sk_graph *g, const float *x, int ndim, const int *shape, bool needs_grad);
/* A parameter: value w, gradient accumulator dw (same size; NULL = frozen). */
int sk_graph_param(struct sk_graph *g, float *w, float *dw, int ndim, const int *shape);

/* Scratch memory from the graph's arena for arrays that ops borrow (boxes,
 * masks, constant weights given to sk_graph_input / sk_graph_param): bytes
 * bytes, 64-byte aligned, uninitialised (_zero: zeroed). Owned by the graph,
 * valid until sk_graph_reset()/sk_graph_free(); never freed by the caller.
 * NULL when out of memory. */
void *sk_graph_scratch(struct sk_graph *g, size_t bytes);
void *sk_graph_scratch_zero(struct sk_graph *g, size_t bytes);

/* Name of the op that made a node ("dense", "relu", "input", ...; "?" for
 * an id the graph does not have). Static storage. */
const char *sk_graph_op_name(const struct sk_graph *g, int node);

int sk_graph_n_nodes(const struct sk_graph *g);
int sk_graph_ndim(const struct sk_graph *g, int node);
const int *sk_graph_shape(const struct sk_graph *g, int node);
size_t sk_graph_numel(const struct sk_graph *g, int node);
/* Value of a node (arena-owned, or the caller's buffer for inputs/params). */
float *sk_graph_value(const struct sk_graph *g, int node);
/* Gradient of a node after backward; NULL if it needs none. */
float *sk_graph_grad(const struct sk_graph *g, int node);

/* Backpropagate from `node`. seed: dL/d(node) with the node's shape, or NULL
 * for a scalar node (seed 1). Gradients of intermediate nodes and inputs are
 * zeroed first; parameter gradients accumulate (zero them yourself). */
int sk_graph_backward(struct sk_graph *g, int node, const float *seed);

/* ---------------- second order: exact Hessian-vector products ----------------
 * For a scalar loss L recorded on g and a direction v over the leaves
 * (inputs and parameters), sk_graph_hvp computes
 *     Hv = d/dr grad L(leaves + r v) at r = 0
 * exactly (to rounding), by forward-over-reverse (Pearlmutter's R-operator):
 * a forward pass of directional derivatives R{y} of every value, the
 * ordinary backward, and a backward pass of R{dL/dy}; each op's rule is in
 * its op-table row. It costs about three backwards. Ops are differentiated
 * as recorded: dropout with its fixed mask, batch norm with the statistics
 * of its mode (training: batch statistics, differentiated too), max pooling
 * and ReLU-like ops with their active set (second derivative 0 off kinks).
 *
 *     int x = sk_graph_input(g, xb, 2, shape, true);
 *     int L = sk_loss_cross_entropy(g, sk_model_forward(m, g, x, SK_MODE_EVAL, 0), y, 0);
 *     sk_graph_set_direction(g, x, vx, hvx);      // hvx += (H v)_x
 *     sk_graph_hvp(g, L);
 */

/* Set the direction of leaf (an input or parameter node) for the next
 * sk_graph_hvp: v (numel floats, borrowed until then; NULL = zero), and hv
 * (numel floats, caller-owned; NULL = not wanted) into which the leaf's block
 * of H v is *added* (zero it first). Leaves without a call have direction 0.
 * SK_EINVAL for a non-leaf, or hv on a leaf without a gradient (an input
 * without needs_grad, a frozen parameter). */
int sk_graph_set_direction(struct sk_graph *g, int leaf, const float *v, float *hv);
/* The same for every parameter node whose value lies inside the flat buffer
 * params[0..n) (a model's parameter layout): direction v + offset, output
 * hv + offset (either NULL). Returns how many nodes it matched. */
int sk_graph_param_directions(struct sk_graph *g, const float *params, size_t n, const float *v, float *hv);
/* Exact Hessian-vector product of the scalar node `loss` along the
 * directions set above: runs the backward of sk_graph_backward(g, loss, NULL)
 * (gradients of inner nodes and inputs filled as there; parameter gradient
 * buffers left untouched: H v does not need them) and adds the leaves'
 * blocks of H v into their hv buffers. SK_EINVAL, naming the op, when
 * the loss depends on an op without an exact rule (nuclear); SK_ENOMEM. May
 * be called again on the same forward with other directions. */
int sk_graph_hvp(struct sk_graph *g, int loss);
/* R{value} of a node after sk_graph_hvp: its directional derivative along
 * the directions (NULL when none reaches it, i.e. zero). Arena-owned. */
const float *sk_graph_tangent(const struct sk_graph *g, int node);

/* ---------------- ops ----------------
 * Each constructor checks shapes, records a node and runs the op's forward
 * from the op table (src/ops/table.c), which also holds its backward. */

/* y[N,O] = x[N,D] W[O,D]^T + b[O]          (b < 0: no bias) */
int sk_op_dense(struct sk_graph *g, int x, int W, int b);
/* y[N,OC,OH,OW] = conv(x[N,C,H,W], W[OC,C,KH,KW]) + b[OC];
 * OH = (H + 2 pad - KH)/stride + 1 (cross-correlation, zero padding, as PyTorch). */
int sk_op_conv2d(struct sk_graph *g, int x, int W, int b, int stride, int pad);
/* Fused conv2d -> ReLU -> max-pool(pk, stride ps): the same values and
 * gradients, bit for bit, as sk_op_conv2d, sk_op_relu, sk_op_maxpool2d in a
 * row, without writing the conv output and the ReLU to memory (per sample the
 * conv output stays in cache; backward rebuilds its gradient from the pooled
 * output and the argmax). sk_model_forward uses it for conv-relu-maxpool. */
int sk_op_conv2d_relu_maxpool(struct sk_graph *g, int x, int W, int b, int stride, int pad, int pk, int ps);
/* y = max over each k x k window (stride s; no padding; floor mode). */
int sk_op_maxpool2d(struct sk_graph *g, int x, int k, int stride);
/* y = mean over each k x k window (stride s; no padding; floor mode). */
int sk_op_avgpool2d(struct sk_graph *g, int x, int k, int stride);
/* y[N,C] = mean over H,W of x[N,C,H,W]. */
int sk_op_global_avgpool(struct sk_graph *g, int x);
/* y[N, C*H*W] = x (a view: shares value and gradient). */
int sk_op_flatten(struct sk_graph *g, int x);
/* A view of x with another shape of the same element count. */
int sk_op_reshape(struct sk_graph *g, int x, int ndim, const int *shape);

/* y = max(x, 0) */
int sk_op_relu(struct sk_graph *g, int x);
/* y = x > 0 ? x : alpha x */
int sk_op_leaky_relu(struct sk_graph *g, int x, float alpha);
/* y = tanh(x) */
int sk_op_tanh(struct sk_graph *g, int x);
/* y = 1 / (1 + e^-x) */
int sk_op_sigmoid(struct sk_graph *g, int x);
/* y = log(1 + e^x) (computed stably) */
int sk_op_softplus(struct sk_graph *g, int x);
/* y = x Phi(x) = x/2 (1 + erf(x/sqrt 2))  (exact GELU, as PyTorch's default) */
int sk_op_gelu(struct sk_graph *g, int x);
/* Heaviside step y = (x > 0) with zero gradient: a deliberately masked
 * gradient, used to test that gradient-masking audits fire. */
int sk_op_step(struct sk_graph *g, int x);
/* Inverted dropout: y = x m / (1-p), m_i = [u_i >= p], u_i the i-th uniform
 * of stream `key` (so masks are reproducible and thread-count independent). */
int sk_op_dropout(struct sk_graph *g, int x, float p, uint64_t key);
/* Batch normalisation over N (and H,W for 4-D): per channel c,
 *   training: y = gamma (x - mean_B) / sqrt(var_B + eps) + beta, biased var_B;
 *             running = (1-momentum) running + momentum stat_B, running var
 *             updated with the unbiased batch variance (as PyTorch);
 *   eval:     y = gamma (x - running_mean) / sqrt(running_var + eps) + beta.
 * running_mean/var are caller buffers of C floats (updated in training mode). */
int sk_op_batchnorm(struct sk_graph *g, int x, int gamma, int beta, float *running_mean,
                    float *running_var, float momentum, float eps, bool training);
/* Row-wise over the last dim of x[N,K]: softmax / log-softmax (stable). */
int sk_op_softmax(struct sk_graph *g, int x);
int sk_op_log_softmax(struct sk_graph *g, int x);
/* Element-wise, same shapes: a + b, a - b, a * b; alpha x. */
int sk_op_add(struct sk_graph *g, int a, int b);
int sk_op_sub(struct sk_graph *g, int a, int b);
int sk_op_mul(struct sk_graph *g, int a, int b);
int sk_op_scale(struct sk_graph *g, int x, float alpha);
/* y = (a, b) along dimension 1: [N,Ca,H,W] and [N,Cb,H,W] give
 * [N,Ca+Cb,H,W] (and [N,Da], [N,Db] give [N,Da+Db]); the other dimensions
 * must agree. */
int sk_op_concat(struct sk_graph *g, int a, int b);
/* Per-feature affine map with constants: y[n,j] = (x[n,j] - shift[j]) * scale[j],
 * j over the D = numel/N values of row n (any shape [N,...]); dx = dy * scale.
 * shift and scale (D floats each) are borrowed until the graph is reset. */
int sk_op_affine_cols(struct sk_graph *g, int x, const float *shift, const float *scale);
/* Scalar reductions over all elements: sum, mean. */
int sk_op_sum(struct sk_graph *g, int x);
int sk_op_mean(struct sk_graph *g, int x);
/* Reparameterised Gaussian sample w = mu + softplus(rho) * eps, eps_i the
 * i-th standard normal of stream `key`; gradients flow to mu and rho. */
int sk_op_gauss_sample(struct sk_graph *g, int mu, int rho, uint64_t key);

/* Ops of backward bound propagation (CROWN as graph ops, for certified training).
 * Transposed convolution: y = T^T x for the conv map T of sk_op_conv2d with
 * weights W[OC,C,KH,KW], stride and padding, on inputs C x H x W: x [N,OC,OH,OW]
 * (OH, OW that conv's output size) -> y [N,C,H,W]; y . v = x . T v for every v. */
int sk_op_conv_transpose2d(struct sk_graph *g, int x, int W, int stride, int pad, int H, int Wd);
/* y[j,i] = x[i,j] for a 2-D x. */
int sk_op_transpose(struct sk_graph *g, int x);
/* Per sample n, v [N,...] holds D = numel(v)/N values and x holds G = numel(x)/numel(v)
 * groups of D (sample-major, e.g. x [N*G, D] or [N*G, C, H, W]):
 *   mul_groups: y[n,g,d] = x[n,g,d] v[n,d]        (y has x's shape)
 *   dot_groups: y[n,g]   = sum_d x[n,g,d] v[n,d]  (y [N,G]; sums in double) */
int sk_op_mul_groups(struct sk_graph *g, int x, int v);
int sk_op_dot_groups(struct sk_graph *g, int x, int v);
/* Upper slope of the linear relaxation of relu on [l, u] (same shapes):
 * s = max(u,0) / (max(u,0) + max(-l,0)), 0 where both are 0; the chord
 * through (l,0), (u,u) when l < 0 < u, 1 when l >= 0, 0 when u <= 0. */
int sk_op_relu_upper_slope(struct sk_graph *g, int l, int u);

/* ---------------- losses (scalar nodes) ---------------- */

/* mean_n -sum_k q_nk log softmax(z_n)_k, q = (1-s) onehot(y_n) + s/K
 * (s = label smoothing). z[N,K], labels[N] in [0,K). */
int sk_loss_cross_entropy(struct sk_graph *g, int z, const int *labels, float smoothing);
/* mean_n [max(z,0) - z t + log(1 + e^-|z|)]: binary cross-entropy with
 * logits; z has N elements ([N] or [N,1]), targets[N] in [0,1]. */
int sk_loss_bce_logits(struct sk_graph *g, int z, const float *targets);
/* mean over elements of (a - b)^2. */
int sk_loss_mse(struct sk_graph *g, int a, int b);
/* KL(p || q) = mean_n sum_k e^{lp_nk} (lp_nk - lq_nk) for log-probability
 * inputs lp, lq [N,K] (e.g. TRADES: p clean, q adversarial). */
int sk_loss_kl_categorical(struct sk_graph *g, int lp, int lq);
/* Nuclear norm sum_k sigma_k(A) of A [N,K] (one-sided Jacobi SVD in double);
 * gradient U V^T over the singular values above 1e-9 sigma_max (NuAT's
 * regulariser on z(x') - z(x) over a batch). */
int sk_loss_nuclear(struct sk_graph *g, int a);

/* Margin losses used by attacks (bigger = closer to misclassification),
 * computed per row of z[N,K] and summed over rows:
 *   SK_MARGIN_CW   untargeted: max_{j!=y} z_j - z_y;  targeted t: z_t - max_{j!=t} z_j
 *   SK_MARGIN_DLR  untargeted: -(z_y - max_{j!=y} z_j) / (z_pi1 - z_pi3 + 1e-12)
 *                  targeted t: -(z_y - z_t) / (z_pi1 - (z_pi3 + z_pi4)/2 + 1e-12)
 * with z_pi1 >= z_pi2 >= ... the sorted row (DLR needs K >= 3, targeted K >= 4).
 * All are invariant to adding a constant to a row, so they may be applied to
 * log-probabilities as well as logits. */
enum sk_margin_kind { SK_MARGIN_CW = 0, SK_MARGIN_DLR = 1 };
int sk_loss_margin(struct sk_graph *g, int z, const int *labels, const int *targets,
                   enum sk_margin_kind kind);
/* The same on plain arrays: loss[N] and dloss/dz [N,K] (either may be NULL).
 * targets NULL = untargeted. */
void sk_margin_rows(enum sk_margin_kind kind, const float *z, int N, int K, const int *labels,
                    const int *targets, float *loss, float *dz);

#ifdef __cplusplus
}
#endif
#endif
