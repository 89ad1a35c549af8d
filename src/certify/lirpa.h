/* Internal to the certification files: a model flattened into a chain of
 * bound-propagation steps, and the linear relaxation passes over it (CROWN,
 * α-CROWN, the per-domain bounds of branch and bound).
 *
 * A step acts on one sample's values, flat in NCHW order (C*H*W floats):
 * flatten and dropout (eval) vanish, the input transform and batch norm
 * (eval) become a diagonal affine step y = a x + b. Linear steps (dense,
 * conv, diagonal, average pooling, global average pooling) are propagated
 * backward exactly; nonlinear steps (activations, max pooling) through a
 * lower and an upper line per value chosen from the box of their input.
 *
 * Graphs. Steps are in topological order and read values: value 0 is the
 * model's input, value i + 1 the output of step i. Step i reads value in0
 * (in a chain, i: the step before) and a join reads in1 too: add (y = x1 +
 * x2) and cat (x1's values, then x2's: channel concatenation in NCHW). The
 * backward pass keeps a coefficient per live value and sums what reaches a
 * value from all its readers before going further back; every set of live
 * values is a cut of the graph, so concretizing all of them over their
 * boxes is a bound.
 *
 * Boxes: bnd->lo[v], hi[v] bound value v (v = 0..n): lo[s->in0] is the
 * input box of step s, lo[n], hi[n] the output. Every pass that takes a
 * domain reads the boxes of that domain (branch and bound tightens them per
 * split).
 */
#ifndef SK_CERTIFY_LIRPA_H
#define SK_CERTIFY_LIRPA_H

#include "skeptic/certify.h"

enum lp_kind { LP_DENSE, LP_CONV, LP_DIAG, LP_AVGPOOL, LP_GAP, LP_MAXPOOL, LP_ACT, LP_ADD, LP_CAT };

struct lp_step {
    enum lp_kind kind;
    enum sk_layer_kind act; /* LP_ACT: relu, lrelu, tanh, sigmoid, softplus, gelu */
    float p;                /* leaky-relu slope */
    int din, dout;          /* cat: din is its first input's size, dout both */
    int in0, in1;           /* the values read (in1: joins only, else -1) */
    int ic, ih, iw, oc, oh, ow, k, stride, pad;
    const float *W, *b;     /* dense [dout,din] / conv [oc,ic,k,k] weights, bias (NULL: none) */
    float *aW;              /* |W| (owned) */
    float *a, *ab;          /* diagonal step: y = a x + ab (owned, din each) */
    int relu_off;           /* relu / leaky relu: offset of its values among all such (else -1) */
    float *ea, *eab;        /* diagonal step: |a - a_exact|, |ab - ab_exact| bounds (owned, din each; the
                               float a and ab round the layer's formula) */
};

struct lp_net {
    int n;                  /* steps */
    struct lp_step *s;
    int in_dim, out_dim, maxd;
    int n_relu;             /* values of all relu / leaky-relu steps */
    int *relu_step;         /* [n_relu]: the step of each such value */
    bool graph;             /* some step reads a value other than the one before it */
    bool sound;             /* sound floating point: every pass over this net bounds the rounding error of
                               each product and sum a priori and moves its bounds outward by it, so they hold
                               for the real-number network (false after lp_net_build) */
};

struct lp_bounds {
    int n;
    float **lo, **hi;       /* n+1 boxes (see above) */
    float **rx;             /* per nonlinear step: its relaxation, made from its input box */
    float *mem;             /* the one allocation behind lo, hi and rx */
    size_t n_floats;
};

/* How the linear relaxation passes run. */
struct lp_opts {
    bool with_ibp;    /* intersect intermediate boxes with interval arithmetic; the final bound is the best
                         concretization over every step (never looser than IBP) */
    int crown_rows;   /* intermediate neurons bounded by CROWN per step at most (more: intervals only) */
    int alpha_iters;  /* α-CROWN steps on intermediate bounds too (0: CROWN's slopes) */
    double deadline;  /* sk_now() past which α-CROWN stops early with its best bound so far (0: none) */
    int stop;         /* lp_backward: the step whose input box concretizes the bound (0: the input; n - 1
                         after a last dense step: interval propagation in specification form) */
};

/* Flatten m into net (eval mode), chains and graphs. SK_EINVAL naming the
 * layer for what the steps cannot express. lp_net_free accepts a zeroed
 * net. */
int lp_net_build_graph(const struct sk_model *m, struct lp_net *net);
/* The same for passes that walk the steps as a chain (the weight-box
 * bounds): SK_EINVAL naming the model when it has branches. */
int lp_net_build(const struct sk_model *m, struct lp_net *net);
void lp_net_free(struct lp_net *net);

int lp_bounds_alloc(const struct lp_net *net, struct lp_bounds *b);
void lp_bounds_free(struct lp_bounds *b);
int lp_bounds_copy(const struct lp_net *net, struct lp_bounds *dst, const struct lp_bounds *src);

/* Boxes of every step from the input box lo0/hi0 (raw units: the input
 * transform is step 0 when the model has one). Intermediate boxes of
 * nonlinear steps by CROWN (and intervals with o->with_ibp). first: steps
 * before `first` keep the boxes already in b (branch and bound recomputes
 * only after its earliest split); split[n_relu] (NULL: none) clamps split
 * relu inputs (+1: >= 0, -1: <= 0). Returns 1 when a box came out empty
 * (the splits contradict each other: the domain holds no point), else SK_OK
 * or a negative status. */
int lp_bounds_compute(const struct lp_net *net, const float *lo0, const float *hi0, const signed char *split,
                      int first, const struct lp_opts *o, struct lp_bounds *b);

/* Extras of one backward pass for the final specification (α-CROWN, β). */
struct lp_extra {
    const float *alpha;        /* [M, n_relu] lower slopes of relu / leaky relu values (NULL: CROWN's) */
    const float *beta;         /* [M, n_relu] split multipliers >= 0 (NULL: none) */
    const signed char *split;  /* [n_relu] +1 active, -1 inactive, 0 none (with beta) */
    float **Aout;              /* per step: A at the output of nonlinear steps [M, dout] is stored here */
    float *xstar;              /* [M, in_dim]: the input corner that attains each row's bound */
};

/* Lower bounds lb[M] of A·(value top) + 0 over the boxes b, A [M, dim]
 * (value top: the input of step top in a chain; top = net->n: the model's
 * output). Steps top-1 down to o->stop are propagated (those whose output
 * no coefficient reaches are skipped), then every live value is
 * concretized over its box. Work buffers are allocated inside.
 * o->with_ibp: lb is the best of the concretizations of the live values
 * after every step. */
int lp_backward(const struct lp_net *net, const struct lp_bounds *b, int top, const float *A, int M,
                const struct lp_opts *o, const struct lp_extra *x, float *lb);

/* The relaxed forward pass of lp_backward's rows: per row q the values
 * G[v][q, :] of every value v (v = 0..top) of the relaxed network that row
 * q's bound used, evaluated at x->xstar. G[v] is [M, size of v]; steps from
 * `top` on are left out. */
int lp_relaxed_forward(const struct lp_net *net, const struct lp_bounds *b, int top, int M, const struct lp_extra *x,
                       float **G);

/* The default lower slope of a relu / leaky relu value on [l, u]. */
float lp_relu_default_slope(float p, float l, float u);

/* α-CROWN on the rows C [M, dim] on value top (top = n: the
 * specification on the outputs) over the boxes b, `iters` Adam
 * steps of size lr on the lower slopes of unstable relu / leaky-relu values
 * (per row and value, projected on [p, 1]) and, with split, on the β
 * multipliers of split values (projected on >= 0). lb[M]: the best bound of
 * each row seen, never below CROWN's (the first step is CROWN's slopes when
 * alpha is NULL). alpha, beta [M, n_relu] (may be NULL): in, the starting
 * point (warm start; values outside the feasible range are projected); out,
 * the point of the best bound. xstar [M, in_dim] (may be NULL): the input
 * corner of each row's best bound. Arelu [M, n_relu] (may be NULL): the
 * coefficients at the relu outputs of the best bound (branching scores).
 * target [M] (may be NULL): stop once every row's bound exceeds it. */
int lp_alpha_optimize(const struct lp_net *net, const struct lp_bounds *b, int top, const float *C, int M, int iters,
                      float lr, const signed char *split, float *alpha, float *beta, const struct lp_opts *o,
                      const float *target, float *lb, float *xstar, float *Arelu);

/* Whether lp_alpha_batch handles net: a chain of dense, diagonal and
 * activation steps (the MLPs of the VNN-COMP fully connected benchmarks). */
bool lp_batch_ok(const struct lp_net *net);

/* lp_alpha_optimize on N domains at once, the same rows C [R, dim] on the
 * input of step top of each, so that the backward and the relaxed forward passes are
 * matrix products over all N * R rows. b[d], split[d] (split may be NULL, or
 * an entry NULL: no splits), alpha[d], beta[d] ([R, n_relu]; either array
 * or an entry may be NULL: CROWN's slopes, no multipliers; in/out as in
 * lp_alpha_optimize): domain d's boxes and split state. A domain stops
 * early once one of its rows passes target[r] (target may be NULL): its
 * conjunction is refuted. lb [N * R], xstar [N * R, in_dim] (may be NULL),
 * Arelu[d] [R, n_relu] (Arelu or an entry may be NULL): lp_alpha_optimize's
 * outputs, domain by domain. Requires lp_batch_ok(net). */
int lp_alpha_batch(const struct lp_net *net, const struct lp_bounds *const *b, int N, int top, const float *C, int R,
                   int iters, float lr, const signed char *const *split, float *const *alpha, float *const *beta,
                   const struct lp_opts *o, const float *target, float *lb, float *xstar, float *const *Arelu);

/* y[out_dim] = the network at x[in_dim] over the steps (float, as the
 * relaxations see it; the exact check of a counterexample is the model's own
 * forward pass). */
int lp_forward_point(const struct lp_net *net, const float *x, float *y);

/* CROWN / α-CROWN logit bounds or margins of N boxes in centre/radius
 * form for any chain or graph (sk_crown's contract, alpha_iters Adam
 * steps). */
int sk_crown_any(struct sk_model *m, const float *cv, const float *rv, const int *y, int N, bool with_ibp,
                 int alpha_iters, float *zlo, float *zhi);

/* crown.c's primitives used by bounds.c (the layer-by-layer bounds above
 * crown.c and alpha.c): */
/* the activation of layer kind k (parameter p) at x */
double lp_act_f(enum sk_layer_kind k, double p, double x);
/* the relaxation cache of nonlinear step i from its input box */
void lp_make_relax(const struct lp_net *net, struct lp_bounds *b, int i);
/* y = T x (+ b when with_bias), T step s's linear map with weights W; col:
 * lp_conv_col(net) floats of scratch for convolutions */
void lp_lin_forward(const struct lp_step *s, const float *W, const float *x, float *y, bool with_bias, float *col);
size_t lp_conv_col(const struct lp_net *net);
/* the interval of step i's output from its input boxes, widened by a relative
 * 2^-20 (joins: rounded outward); tmp (4 maxd + 2 floats) and col: scratch */
void lp_step_interval(const struct lp_net *net, struct lp_bounds *b, int i, float *tmp, float *col);

#endif
