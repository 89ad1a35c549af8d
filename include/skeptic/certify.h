/* skeptic/certify.h — proofs that no perturbation within epsilon changes a
 * prediction: interval bound propagation (IBP), CROWN (backward linear
 * relaxation) and a global Lipschitz bound.
 *
 * Overview. For an input x and a radius eps the threat set is the L-infinity
 * ball intersected with the input box: B = {x' : |x'-x|_inf <= eps,
 * clip_lo <= x' <= clip_hi} (the box is [0,1] for images). A method returns,
 * for every class j, a lower bound of the margin z_y(x') - z_j(x') over all x'
 * in B; the point is *certified* when every margin bound with j != y is
 * positive (so no x' in B is classified as anything but y).
 *
 *   IBP    intervals pushed layer by layer in centre/radius form: for an affine
 *          map c' = W c + b, r' = |W| r; monotone activations and max pooling
 *          map the endpoints; average pooling, batch norm (eval), flatten are
 *          affine. The margins use the *specification* form: the last dense
 *          layer is folded into the difference, d_j = (W_y - W_j) h + b_y - b_j,
 *          bounded by (W_y - W_j) c + b_y - b_j - |W_y - W_j| r, which is
 *          tighter than lower(z_y) - upper(z_j).
 *   CROWN  for every layer kind, on chains and graphs (see "CROWN for every
 *          layer kind" below): every pre-activation is
 *          bounded by a backward pass of linear relaxations (upper line of an
 *          unstable ReLU through (l,0) and (u,u); lower slope 1 if u >= -l
 *          else 0, the adaptive choice of Zhang et al. 2018), intermediate
 *          bounds intersected with IBP's, and the final margins are the
 *          elementwise best of CROWN and IBP, so CROWN is never looser.
 *   LIPSCHITZ  a global L2 Lipschitz constant L_yj of each margin (product of
 *          the spectral norms of the layers before the last dense layer, by
 *          power iteration — conv layers through their forward/transpose —
 *          times |W_y - W_j|_2; on graphs the constants of two branches add
 *          where they are summed and root-sum-square where they are
 *          concatenated); margin bound d_j(x) - L_yj eps sqrt(dim).
 *
 * Floating point: bounds are computed in float (CROWN's backward products
 * too, with the final sums in double); a point is certified only when every margin lower
 * bound exceeds SK_CERTIFY_TOL * (1 + max |bound|), a margin for rounding.
 * Layer spectral norms are proved upper bounds (Gram iteration on the
 * layer's explicit matrix, rounding accounted for) wherever the matrix has
 * at most 4096 rows or columns on its smaller side and 2^26 entries; larger
 * layers fall back to power iteration (which converges from below) times
 * 1.01 — an estimate, reported by sk_certify_lipschitz_bound's *proved.
 *
 * Supported layers: dense, conv, relu, leaky relu (slope >= 0), tanh, sigmoid,
 * softplus, max/avg pooling, global average pooling, batch norm (eval: running
 * statistics), flatten, dropout (identity), add and cat (graph models). GELU
 * is not monotone: IBP rejects it with SK_EINVAL.
 */
#ifndef SKEPTIC_CERTIFY_H
#define SKEPTIC_CERTIFY_H

#include "skeptic/model.h"

#ifdef __cplusplus
extern "C" {
#endif

/* SK_CERTIFY_ALPHA_CROWN: CROWN for every layer kind with the lower slopes
 * of unstable relu values optimised (α-CROWN, see sk_certify_spec_bounds). */
enum sk_certify_method { SK_CERTIFY_IBP = 0, SK_CERTIFY_CROWN = 1, SK_CERTIFY_LIPSCHITZ = 2, SK_CERTIFY_ALPHA_CROWN = 3 };
const char *sk_certify_method_name(enum sk_certify_method m);
/* "ibp" | "crown" | "lipschitz" | "alpha-crown" -> method, or -1. */
int sk_certify_method_parse(const char *s);

#define SK_CERTIFY_TOL 1e-5f

/* ---------------- IBP on the graph (differentiable) ----------------
 * Record interval propagation of layers [0, upto) of m on g, from the box
 * given in centre/radius form: nodes c, r of shape [N, in_dim] (or
 * [N,C,H,W]). Outputs the centre and radius nodes after layer upto-1.
 * Parameters enter as graph parameters with their gradients (so a loss of
 * the bounds trains the model, as IBP training needs); |W| is recorded as
 * relu(W) + relu(-W). Batch norm uses running statistics (eval). Returns
 * SK_OK or a negative status (unsupported layer, shapes). */
int sk_certify_ibp_graph(struct sk_model *m, struct sk_graph *g, int c, int r, int upto, int *c_out, int *r_out);

/* The valid input box of a threat set: per feature [blo[j], bhi[j]] when
 * blo is given (in_dim each, borrowed, blo[j] <= bhi[j]; tabular data: the
 * training range), else [lo, hi] for every feature (lo >= hi: no box). */
struct sk_certify_domain {
    float lo, hi;
    const float *blo, *bhi;
};

/* The centre/radius input nodes of the threat set of x[N, in_dim]: the
 * values live in g's arena. clip_lo >= clip_hi means no box. */
int sk_certify_ibp_input(struct sk_graph *g, const struct sk_model *m, const float *x, int N, float eps, float clip_lo,
                         float clip_hi, int *c, int *r);
/* The same in the box *box (NULL: no box). */
int sk_certify_ibp_box(struct sk_graph *g, const struct sk_model *m, const float *x, int N, float eps,
                       const struct sk_certify_domain *box, int *c, int *r);

/* Worst-case logits of the specification form for labels y[N] (caller's
 * array, alive until backward): zw[n,j] = upper bound of z_j - z_y over the
 * box (zw[n,y] = 0). Cross-entropy of zw is Gowal et al.'s robust loss. If
 * the model does not end in a dense layer (dropout after it allowed), falls
 * back to upper(z_j) - lower(z_y). */
int sk_certify_ibp_worst_logits(struct sk_model *m, struct sk_graph *g, int c, int r, const int *y, int *zw);

/* ---------------- bounds on plain arrays ----------------
 * Logit bounds over the boxes [lo, hi] (N rows of in_dim each, lo <= hi):
 * zlo, zhi [N, n_classes]. method IBP, CROWN (elementwise best with IBP) or
 * ALPHA_CROWN. */
int sk_certify_bounds(struct sk_model *m, enum sk_certify_method method, const float *lo, const float *hi, int N,
                      float *zlo, float *zhi);
/* CROWN alone (no intersection with IBP anywhere): for tests and studies. */
int sk_certify_bounds_crown_only(struct sk_model *m, const float *lo, const float *hi, int N, float *zlo, float *zhi);

/* Lower bounds of the margins z_y - z_j over the threat set of each row of
 * x: mlo [N, n_classes], mlo[n, y_n] = 0. */
int sk_certify_margins(struct sk_model *m, enum sk_certify_method method, const float *x, const int *y, int N,
                       float eps, float clip_lo, float clip_hi, float *mlo);
/* The same in the box *box (NULL: no box). */
int sk_certify_margins_box(struct sk_model *m, enum sk_certify_method method, const float *x, const int *y, int N,
                           float eps, const struct sk_certify_domain *box, float *mlo);

struct sk_certify_report {
    enum sk_certify_method method;
    float eps;
    int n;               /* points */
    int n_correct;       /* clean prediction right */
    int n_certified;     /* certified (implies correct) */
    double clean_acc, certified_acc;
    double mean_margin_lo; /* mean over points of min_j margin bound */
    double seconds;
    double lipschitz_global; /* lipschitz: sk_certify_lipschitz_bound's global bound (else NAN) */
    bool lipschitz_proved;   /* lipschitz: every layer's factor is a proof */
};

/* Certified accuracy over (x, y): cert[N] (may be NULL) gets 1 where the
 * point is certified. Eval mode. Box [clip_lo, clip_hi] (0,1 for images). */
int sk_certify(struct sk_model *m, enum sk_certify_method method, const float *x, const int *y, int N, float eps,
               float clip_lo, float clip_hi, unsigned char *cert, struct sk_certify_report *rep);
/* The same in the box *box (NULL: no box), e.g. per feature. */
int sk_certify_box(struct sk_model *m, enum sk_certify_method method, const float *x, const int *y, int N, float eps,
                   const struct sk_certify_domain *box, unsigned char *cert, struct sk_certify_report *rep);
/* sk_certify with the Lipschitz method (which ignores the box) and, from the
 * same layer bounds (computed once: they dominate the cost), the certified
 * radii of sk_certify_lipschitz_radius (r2, rinf: N each, may be NULL). */
int sk_certify_lipschitz(struct sk_model *m, const float *x, const int *y, int N, float eps, unsigned char *cert,
                         float *r2, float *rinf, struct sk_certify_report *rep);

/* ---------------- Lipschitz ----------------
 * Upper bound of the spectral norm of every layer (1 for ReLU-like
 * activations, 1/4 sigmoid, gamma/sqrt(var+eps) max for batch norm; dense,
 * conv and average pooling as linear maps: Gram iteration, a proof, or power
 * iteration x 1.01 for layers too large for it) written to norms[n_layers]
 * (may be NULL; add: sqrt 2, cat: 1, as maps of their two inputs);
 * *prefix = the constant of the last dense layer's input (the product over
 * the layers before it in a chain); *global = that of the output (the
 * product over all layers in a chain; in a graph the constants of two
 * branches add at an add and root-sum-square at a cat); *proved (may be NULL) = every
 * factor is a proved bound. iters (power iteration; <= 0: 100) sets the lower
 * bound at which Gram iteration stops (within 0.1% of it). */
int sk_certify_lipschitz_bound(struct sk_model *m, int iters, uint64_t seed, double *norms, double *prefix,
                               double *global, bool *proved);
/* Certified L2 radius of each point (0 if misclassified):
 * r = min_{j != y} (z_y - z_j)(x) / (prefix |W_y - W_j|_2); and the implied
 * L-infinity radius r / sqrt(in_dim). Either output may be NULL. */
int sk_certify_lipschitz_radius(struct sk_model *m, const float *x, const int *y, int N, int iters, float *r2,
                                float *rinf);

/* ---------------- CROWN for every layer kind, α-CROWN ----------------
 * Bounds of a specification c·y (y the logits, c a row of C) over a box,
 * by backward linear relaxation on the model's layers, chains and graphs
 * (add passes its coefficients to both inputs, cat splits them along the
 * channels, and a branch point sums what its readers pass back): dense, conv
 * (its transpose), average / global average pooling, batch norm (eval),
 * flatten, dropout (identity), the input transform, relu and leaky relu
 * (upper chord, lower line through 0), max pooling (lower: the input with
 * the largest lower bound; upper: that input when it dominates the window,
 * else the largest upper bound), and tanh, sigmoid, softplus and GELU
 * (tangent or chord slopes, intercepts proved by a bound on f'' over a grid).
 * Intermediate bounds of the inputs of nonlinear layers by CROWN layer by
 * layer (cfg.crown_rows neurons per layer at most, else intervals),
 * intersected with interval arithmetic; the final bound of each row is the
 * best of its concretizations at every layer, so never looser than IBP in
 * specification form. With cfg.alpha_iters > 0 the lower slopes of unstable
 * relu values are optimised per row and neuron by Adam on the bound
 * (α-CROWN), starting from CROWN's and keeping the best: never looser than
 * CROWN. Rounding: float products with a relative margin on each bound. */
struct sk_certify_crown_config {
    int alpha_iters;  /* α-CROWN steps (0: CROWN) */
    float alpha_lr;   /* Adam step (0.1) */
    int crown_rows;   /* intermediate neurons bounded by CROWN per layer at most (2048) */
    bool with_ibp;    /* intersect with intervals (true; false: CROWN alone, for studies) */
    bool sound_fp;    /* outward rounding of every bound (false; see "sound floating point" below) */
};
struct sk_certify_crown_config sk_certify_crown_defaults(void);

/* lb[n, k] = a lower bound of C[k]·y over the box [lo[n], hi[n]] (N boxes of
 * in_dim values, raw units) for C [n_spec, n_classes] (row-major); upper
 * bounds are the rows -C. cfg NULL: the defaults. SK_EINVAL for a layer the
 * chain cannot express or lo > hi. */
int sk_certify_spec_bounds(struct sk_model *m, const float *lo, const float *hi, int N, const float *C, int n_spec,
                           const struct sk_certify_crown_config *cfg, float *lb);

/* ---------------- complete verification of a property ----------------
 * A property in VNN-LIB's form: an input box and a disjunction of
 * conjunctions of linear output constraints,
 *     exists x in [lo, hi] with  OR_i AND_{k in rows of i} c_k·y(x) <= d_k.
 * A point satisfying it is a counterexample. Verdicts (VNN-COMP's words):
 *   unsat    no point of the box satisfies it (proved: the property's
 *            negation, typically robustness, holds);
 *   sat      a counterexample, re-checked by the model's own float forward
 *            pass: inside the box, every constraint of one disjunct met;
 *   timeout  the wall-clock budget ran out first;
 *   unknown  the search stopped without an answer (domain memory cap, or a
 *            domain with every relu decided that could not be refuted);
 *   error    the model or the property could not be handled.
 * Method: margin PGD with restarts on every disjunct first; then CROWN and
 * α-CROWN bounds on the rows; disjuncts not refuted go to branch and bound:
 * the unstable relu value with the largest BaBSR-style score (|A| times the
 * intercept of its upper line) is split, each subdomain's intermediate
 * bounds are recomputed under its splits, and its bound is optimised over
 * the slopes α and the split multipliers β together (β-CROWN); subdomains
 * with a bound above d (or with contradictory splits) are pruned; the input
 * corner attaining each subdomain's bound is tried as a counterexample.
 * Subdomains are bounded in parallel (OpenMP); the queue is capped by
 * cfg.max_domain_mb. */
struct sk_certify_property {
    int n_in, n_out;
    const float *lo, *hi;  /* [n_in] the input box, raw units (borrowed) */
    int n_rows;
    const float *c;        /* [n_rows, n_out] */
    const float *d;        /* [n_rows] */
    int n_disj;
    const int *disj;       /* [n_disj + 1]: disjunct i is rows disj[i] .. disj[i+1]-1 */
};

enum sk_certify_verdict {
    SK_VERDICT_UNSAT = 0, SK_VERDICT_SAT = 1, SK_VERDICT_TIMEOUT = 2, SK_VERDICT_UNKNOWN = 3, SK_VERDICT_ERROR = 4
};
/* "unsat" "sat" "timeout" "unknown" "error" */
const char *sk_certify_verdict_name(enum sk_certify_verdict v);

struct sk_certify_verify_config {
    double timeout_s;     /* wall clock for the whole property (> 0) */
    int pgd_restarts;     /* per disjunct (5) */
    int pgd_steps;        /* (100) */
    int alpha_iters;      /* α-CROWN steps on the whole box (50) */
    int inter_alpha_iters;/* α-CROWN steps on each layer's intermediate bounds, whole box, before branch and
                             bound (10; 0: CROWN's) */
    int bab_iters;        /* α/β steps per subdomain (20) */
    int refine_layers;    /* before branch and bound, the boxes of this many relu layers after the first are
                             tightened by branch and bound over the relus before them, as a MIP solver would
                             (2; 0: none; chains only) */
    int refine_domains;   /* subdomains per bound of each such neuron (100) */
    bool child_crown;     /* re-bound a subdomain's intermediate layers after its newest split by CROWN, the
                             split neurons fixed, within its parent's boxes (true); false: its parent's boxes
                             tightened by intervals through the split alone */
    float branch_decay;   /* a split candidate's score is divided by branch_decay^k for a relu of the k-th
                             relu layer (8: earlier layers first, whose splits tighten every layer after them;
                             1: the BaBSR-style score alone; >= 1) */
    int batch;            /* subdomains split per round, their children bounded as one batch (64) */
    int max_domain_mb;    /* memory of the subdomain queue (1024) */
    int crown_rows;       /* see sk_certify_crown_config (2048) */
    bool bab;             /* branch and bound (true; false: stop after α-CROWN with unknown) */
    uint64_t seed;        /* PGD starts */
    bool sound_fp;        /* outward rounding of every bound (false; see "sound floating point" below):
                             unsat then holds for the real-number network */
};
struct sk_certify_verify_config sk_certify_verify_defaults(void);

/* The bounds of every relu input (pre-activation) of m over the box
 * [lo, hi] (raw units), in the model's order, as branch and bound starts
 * from them: CROWN and α-CROWN on every layer, then the refine_layers relu
 * layers after the first tightened by branch and bound over the relus before
 * them, refine_domains subdomains per bound (0, 0: α-CROWN's boxes alone;
 * models with branches get α-CROWN's boxes, the refinement walks chains).
 * *n gets the number of relu units; zlo, zhi [*n] may be NULL to ask for it
 * alone. SK_EINVAL for lo > hi or a layer the bounds cannot express. */
int sk_certify_relu_bounds(struct sk_model *m, const float *lo, const float *hi, int refine_layers,
                           int refine_domains, float *zlo, float *zhi, int *n);

struct sk_certify_verify_report {
    enum sk_certify_verdict verdict;
    const char *stage;    /* what decided it: "pgd", "crown", "alpha-crown", "bab" (static) */
    double seconds;
    long domains;         /* subdomains bounded */
    int disjunct;         /* sat: the disjunct the counterexample meets */
    float worst_lb;       /* the lowest bound margin min_k(lb_k - d_k) over open domains at the end */
};

/* Decide the property p for model m within cfg (NULL: defaults). cex_x
 * [n_in] and cex_y [n_out] (either may be NULL) receive the counterexample
 * of a sat verdict. Returns SK_OK with the verdict in *rep (error verdicts
 * come with a negative return and sk_last_error()). */
int sk_certify_verify(struct sk_model *m, const struct sk_certify_property *p,
                      const struct sk_certify_verify_config *cfg, struct sk_certify_verify_report *rep, float *cex_x,
                      float *cex_y);
/* Whether x satisfies p (inside the box within tol, and every constraint of
 * some disjunct met by the model's float forward pass); y (may be NULL)
 * gets the logits, *disj (may be NULL) the disjunct met. */
int sk_certify_property_check(struct sk_model *m, const struct sk_certify_property *p, const float *x, float tol,
                              bool *holds, float *y, int *disj);

/* sk_certify_verify on a parsed VNN-LIB property (below): the box rounded
 * outward to float and every bound d rounded up, so unsat holds for the
 * file's numbers; a sat point is re-checked against the file's own box
 * (within 1e-6) and constraints (exactly, on the model's float logits),
 * else the verdict is unknown. */
struct sk_vnnlib;
int sk_certify_verify_vnnlib(struct sk_model *m, const struct sk_vnnlib *v,
                             const struct sk_certify_verify_config *cfg, struct sk_certify_verify_report *rep,
                             float *cex_x, float *cex_y);

/* A counterexample by search alone (an attack whose threat model is the
 * property): margin PGD, `restarts` starts per disjunct (the box centre,
 * then uniform points) of `steps` signed-gradient steps each, projected on
 * the box, on the worst row c·y - d of the disjunct, within timeout_s of
 * wall clock. *found: x [n_in] lies in the box and meets disjunct
 * *disjunct (may be NULL) in the model's own forward pass, re-checked
 * alone; y [n_out] (may be NULL) its logits. Not finding one proves
 * nothing (sk_certify_verify decides). SK_EINVAL for restarts < 1, steps
 * < 0, timeout_s <= 0 or a malformed property. */
int sk_certify_falsify(struct sk_model *m, const struct sk_certify_property *p, int restarts, int steps,
                       uint64_t seed, double timeout_s, bool *found, float *x, float *y, int *disjunct);
/* sk_certify_falsify on a parsed VNN-LIB property: found only when x is in
 * the file's box (within 1e-6) and y meets the file's constraints exactly. */
int sk_certify_falsify_vnnlib(struct sk_model *m, const struct sk_vnnlib *v, int restarts, int steps,
                              uint64_t seed, double timeout_s, bool *found, float *x, float *y, int *disjunct);

/* ---------------- VNN-LIB properties ----------------
 * The subset of SMT-LIB the verification competitions (VNN-COMP: mnist_fc,
 * cifar, acasxu, ...) write their properties in:
 *
 *   (declare-const X_0 Real) ... (declare-const Y_9 Real)
 *   (assert (<= X_0 0.03))  (assert (>= X_0 0.0))        input box
 *   (assert (or (and (>= Y_0 Y_4)) (and (>= Y_1 Y_4) (<= Y_1 0.5)) ...))
 *
 * A file states the *negation* of what should hold: a point x of the input
 * box whose outputs y satisfy the output constraints is a counterexample.
 * Read into: per input X_i the bounds [lo_i, hi_i] (from every assert that
 * bounds one input, -inf / +inf when it has none), and the output
 * constraints in disjunctive normal form: a disjunction of conjunctions of
 * linear inequalities sum_k coef_k Y_{idx_k} <= rhs. Top-level asserts over
 * outputs are conjoined into every disjunct; an (or ...) multiplies out
 * (at most 2^22 constraints in all). Comparisons may be (<= A B), (>= A B)
 * (strict < and > are read as <= and >=) of linear expressions: X_i / Y_i,
 * numbers, (+ ...), (- ...), (* c e). Not read: bounds inside (or ...) (a
 * union of input boxes), constraints over several inputs or mixing inputs
 * and outputs; they are errors, as is anything malformed, with
 * "path:line:column: what". Comments (;) are skipped. */
struct sk_vnnlib_constraint {
    int n_terms;
    int *idx;            /* output indices (owned) */
    double *coef;        /* their coefficients (owned) */
    double rhs;          /* sum_k coef[k] * Y[idx[k]] <= rhs */
};
struct sk_vnnlib_conj {
    int n;
    struct sk_vnnlib_constraint *c; /* all must hold (owned) */
};
struct sk_vnnlib {
    int n_inputs, n_outputs;
    double *lo, *hi;     /* n_inputs each (owned) */
    int n_disjuncts;
    struct sk_vnnlib_conj *disj; /* any one may hold (owned) */
};
/* Read and parse the file at path. NULL + sk_last_error() on failure. */
struct sk_vnnlib *sk_certify_vnnlib_read(const char *path);
/* Parse len bytes of text (need not be NUL-terminated); name is used in
 * messages. NULL + sk_last_error() on failure. */
struct sk_vnnlib *sk_certify_vnnlib_parse(const char *text, size_t len, const char *name);
void sk_certify_vnnlib_free(struct sk_vnnlib *p); /* NULL ok */
/* Whether outputs y[n_outputs] satisfy some disjunct (each constraint up to
 * tol): with x in the box, (x, y) is a counterexample. */
bool sk_certify_vnnlib_satisfied(const struct sk_vnnlib *p, const float *y, double tol);
/* Whether x[n_inputs] lies in the input box (up to tol). */
bool sk_certify_vnnlib_in_box(const struct sk_vnnlib *p, const float *x, double tol);

/* ---------------- sound floating point ----------------
 * The bounds above are computed in float32 products (double sums in places)
 * and widened by relative margins for rounding: a heuristic, so "certified"
 * holds for the network evaluated in float32 up to those margins. With
 * sound_fp every bound computation moves outward by an a-priori bound of
 * its rounding error, so a certified margin holds for the real-number
 * network with the float32 parameters (and the model's input transform and
 * batch norm as formulas, their rounded float coefficients accounted for):
 *   - each product and sum: |fl(sum_i a_i b_i) - sum_i a_i b_i| <= gamma_n
 *     sum_i |a_i b_i|, gamma_n = n u / (1 - n u) (u = 2^-24 float, 2^-53
 *     double), whatever the order, blocking, FMA use or thread split of the
 *     BLAS (so OpenBLAS's sgemm is used unchanged); in CROWN's backward pass
 *     the error of a coefficient matrix A T is bounded by gamma |A| |T| and
 *     costs gamma |A| (|T| max|x|) of the bound, max|x| over the step's input
 *     box; interval steps add gamma (|T| |c| + |b|) to the radius;
 *   - the threat set's box x +- eps is rounded outward, the centre/radius
 *     form of every box contains it exactly, relu chords absorb the rounding
 *     of their float slope, concretizations subtract their sum's error.
 * Directed rounding (fesetround) was not chosen: the rounding mode is per
 * thread, so OpenMP workers and OpenBLAS's own threads would not inherit
 * it; OpenBLAS kernels and libm are not specified under other modes; and
 * gcc assumes round-to-nearest unless everything is built with
 * -frounding-math. The error terms need none of that. IBP under sound_fp
 * runs on the same chain as CROWN (intervals only, specification form at
 * the last dense layer); the Lipschitz method has no sound variant. */

/* sk_certify_margins_box with cfg (NULL: the defaults): cfg->sound_fp for
 * outward rounding (method ibp, crown (every layer kind, not only MLPs),
 * alpha-crown with cfg->alpha_iters steps, 20 when 0); without it the
 * plain functions. */
int sk_certify_margins_cfg(struct sk_model *m, enum sk_certify_method method, const float *x, const int *y, int N,
                           float eps, const struct sk_certify_domain *box, const struct sk_certify_crown_config *cfg,
                           float *mlo);
/* sk_certify_box with cfg, as sk_certify_margins_cfg. */
int sk_certify_box_cfg(struct sk_model *m, enum sk_certify_method method, const float *x, const int *y, int N,
                       float eps, const struct sk_certify_domain *box, const struct sk_certify_crown_config *cfg,
                       unsigned char *cert, struct sk_certify_report *rep);

/* ---------------- guarantees for Bayesian networks ----------------
 * A posterior (bayes.h: ensemble, sgld, vi, laplace, mc-dropout,
 * deterministic) is a distribution over networks; a test point is robust
 * for a share of it. Two figures per point x with label y and radius eps:
 *
 *   certified posterior mass   the share of S posterior samples (ensemble
 *          members, sgld samples, vi / laplace weight draws, mc-dropout masks
 *          folded into the weights of the dense layer after each dropout)
 *          whose network is certified at x by sk_certify (cfg.method: the
 *          best bound the model admits by default: CROWN for MLPs, else IBP),
 *          with its two-sided Clopper-Pearson interval at cfg.confidence: an
 *          interval for the posterior probability q(w certified at x), exact
 *          for independent draws (members and sgld samples are what the
 *          posterior is, so for them the share itself is the figure).
 *   vi lower bound  (mean-field vi only; Wicker et al. 2020, "Probabilistic
 *          safety for Bayesian neural networks") for every radius k of
 *          cfg.k: the weight box |w - mu| <= k sigma has mass
 *          q(box) = erf(k / sqrt 2)^P (P parameters), and when interval
 *          bound propagation with interval weights (sk_certify_bayes_weight_bounds)
 *          certifies the point, every network of the box is robust at x, so
 *            q(prediction y everywhere in the ball) >= q(box);
 *          the bound of the point is the best over k (0 if no box certifies).
 *          A proof, not an estimate: no sampling is involved. P is in the
 *          hundreds of thousands for an MLP, so only k of about 5 or more
 *          gives a box of non-negligible mass.
 *
 * y NULL: the class predicted by the posterior's predictive (S samples) at
 * x instead of a label; then "certified" means that the prediction is
 * constant over the ball.
 *
 * How to call it (a report showing the figures):
 *
 *     struct sk_posterior *p = sk_bayes_load("ens.safetensors");
 *     struct sk_certify_bayes_config cfg = sk_certify_bayes_defaults();
 *     struct sk_certify_domain box = { 0.0f, 1.0f, NULL, NULL };   // images
 *     struct sk_certify_bayes_result r;
 *     if (sk_certify_bayes(p, x, y, N, 0.03f, &box, &cfg, &r) == SK_OK) {
 *         // r.mean_frac, r.mean_cp_lo, r.mean_cp_hi; per point r.frac[n] ...
 *         // vi: r.mean_vi_lower, r.vi_lower[n]; per radius r.k[i], r.k_mass[i]
 *         sk_certify_bayes_result_free(&r);
 *     }
 *     sk_bayes_free(p);
 */
struct sk_posterior;

struct sk_certify_bayes_config {
    int method;          /* per-sample bound: SK_CERTIFY_IBP, SK_CERTIFY_CROWN (MLPs) or
                            SK_CERTIFY_ALPHA_CROWN; -1 (default): CROWN for MLPs, else IBP */
    int samples;         /* S: ensemble / sgld: the first S members (0, the default: all);
                            vi, laplace, mc-dropout: S weight draws (0: 32) */
    uint64_t seed;       /* the draws (default 1) */
    double confidence;   /* two-sided Clopper-Pearson level, in (0, 1) (default 0.95) */
    int n_k;             /* vi: how many box radii (0: the default grid 1, 2, 3, 4, 5, 5.5, 6, 7) */
    const float *k;      /* vi: [n_k] radii in standard deviations, > 0 (borrowed) */
    bool vi_box;         /* vi: compute the weight-box lower bound (default true) */
    bool sound_fp;       /* every per-sample bound rounded outward (sk_certify_box_cfg; default false) */
};
struct sk_certify_bayes_config sk_certify_bayes_defaults(void);

/* Arrays owned by the result (sk_certify_bayes_result_free). */
struct sk_certify_bayes_result {
    int n, n_samples, method; /* points, samples used, the per-sample method */
    int *n_cert;          /* [n] samples certified at each point */
    double *frac;         /* [n] n_cert / n_samples */
    double *cp_lo, *cp_hi;/* [n] Clopper-Pearson interval of frac */
    int *label;           /* [n] the class certified (y, or the predictive's class) */
    double mean_frac, mean_cp_lo, mean_cp_hi; /* means over points */
    int n_all, n_none;    /* points certified for every / for no sample */
    double sample_clean;  /* share of (sample, point) pairs predicting the label */
    /* vi with cfg.vi_box (else NULL, 0, NAN) */
    double *vi_lower;     /* [n] max over certified k of q(box k) */
    float *vi_k;          /* [n] the k attaining it (0: none certified) */
    int n_k;
    float *k;             /* [n_k] the radii */
    double *k_mass;       /* [n_k] q(box k) */
    int *k_certified;     /* [n_k] points certified with box k */
    double mean_vi_lower;
    double seconds;
};

/* The figures above for N points x [N, in_dim] (labels y [N], or NULL: the
 * predictive's class) at radius eps in *box (NULL: no box). cfg NULL: the
 * defaults. Every sample is certified with sk_certify_box_cfg (eval mode,
 * the sample's weights). The posterior is borrowed (its vi sigma cache is
 * refreshed). SK_EINVAL for a bad config or a model the chosen bound cannot
 * handle (the message names the field or the layer); on failure *r holds
 * nothing to free. */
int sk_certify_bayes(struct sk_posterior *p, const float *x, const int *y, int N, float eps,
                     const struct sk_certify_domain *box, const struct sk_certify_bayes_config *cfg,
                     struct sk_certify_bayes_result *r);
void sk_certify_bayes_result_free(struct sk_certify_bayes_result *r); /* arrays only; NULL ok */

/* Interval bound propagation with interval weights: bounds over every
 * network whose parameters w satisfy |w - m->params| <= wr (n_params radii
 * >= 0, e.g. k sigma of a vi posterior) and every input in the boxes [lo, hi]
 * (N rows, raw units). Products of intervals in midpoint-radius form
 * (W x in W_c x_c +- (|W_c| x_r + W_r (|x_c| + x_r))), rounding errors bounded
 * a priori and added outward. Outputs (each may be NULL): logit bounds
 * zlo, zhi [N, n_classes]; with y, margin lower bounds mlo [N, n_classes] of
 * z_y - z_j in specification form (the last dense layer's difference
 * W_y - W_j taken as an interval), mlo[n, y_n] = 0. Layers as
 * sk_certify_spec_bounds, except batch norm (SK_EINVAL). */
int sk_certify_bayes_weight_bounds(struct sk_model *m, const float *wr, const float *lo, const float *hi, int N,
                                   const int *y, float *zlo, float *zhi, float *mlo);

/* Two-sided Clopper-Pearson interval of a binomial proportion: k successes
 * of n trials (0 <= k <= n, n >= 1) at level `confidence` in (0, 1):
 *   lo = the p with P(X >= k | p) = (1 - confidence) / 2 (0 when k = 0),
 *   hi = the p with P(X <= k | p) = (1 - confidence) / 2 (1 when k = n),
 * by bisection on the binomial tails (to 1e-12). SK_EINVAL otherwise. */
int sk_certify_clopper_pearson(long k, long n, double confidence, double *lo, double *hi);

#ifdef __cplusplus
}
#endif
#endif
