/* skeptic/curvature.h — the curvature of a model's training loss: the
 * Hessian's spectrum, flatness and generalization measures.
 *
 * Overview. Everything here is built on exact Hessian-vector products
 * (sk_graph_hvp, forward-over-reverse on the tape). The objects are:
 *
 *   struct sk_curvature_op    a symmetric linear operator v -> A v on n
 *                             floats, given as a callback: the Hessian of a
 *                             loss, or any matrix a test supplies;
 *   struct sk_curvature_loss  a loss of n parameters theta with its value,
 *                             gradient and Hessian-vector product: the mean
 *                             cross-entropy of a model over a set of rows
 *                             (sk_curvature_loss_model), or one a caller
 *                             fills in (a known quadratic);
 *
 * and on them: the top eigenpairs by Lanczos, Hutchinson's trace with its
 * standard error, the spectral density by stochastic Lanczos quadrature, the
 * exact dense Hessian of a small model, the spread of lambda_max across
 * sample sets, and the sharpness measures (epsilon-sharpness, adaptive
 * sharpness, PAC-Bayes sigma). sk_curvature_measures computes every measure
 * of one model file in one call (what `skeptic curvature` prints).
 *
 *     struct sk_curvature_loss *L = sk_curvature_loss_model(m, x, y, n, NULL);
 *     struct sk_curvature_op H = sk_curvature_loss_op(L);
 *     struct sk_curvature_lanczos_config lc = sk_curvature_lanczos_defaults();
 *     double lam[1];
 *     if (sk_curvature_lanczos(&H, &lc, lam, NULL, NULL, NULL)) fprintf(stderr, "%s\n", sk_last_error());
 *     double tr, se;
 *     sk_curvature_trace(&H, 100, 0, 42, &tr, &se, NULL, NULL);
 *     sk_curvature_loss_free(L);
 *
 * Conventions. The loss of a model is the mean cross-entropy over its rows in
 * eval mode (dropout off, batch norm on its running statistics), as
 * sk_model_hvp. Vectors are float in the model's parameter layout;
 * reductions are in double. Randomness comes from the seed given (probes,
 * start vectors, noise draws), so a result is reproducible bit for bit for a
 * seed and a thread count. Functions that move theta (sharpness, PAC-Bayes)
 * put it back bit for bit before they return, also on error.
 */
#ifndef SKEPTIC_CURVATURE_H
#define SKEPTIC_CURVATURE_H

#include "skeptic/model.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---------------- operators and losses ---------------- */

/* A symmetric linear operator on n floats: apply(ctx, v, av) writes A v
 * into av (n floats; v and av do not alias). Returns a status. */
struct sk_curvature_op {
    size_t n;
    int (*apply)(void *ctx, const float *v, float *av);
    void *ctx;
};

/* A loss of n parameters. theta is the point (for a model, m->params).
 *   value_grad(ctx, &loss, grad): the loss at theta's current contents and,
 *     if grad is not NULL, its gradient (n floats);
 *   hvp(ctx, v, hv): H v at theta (n floats each);
 *   destroy(ctx): frees ctx (NULL: nothing to free).
 * value_grad must follow theta as it moves; hvp may assume theta holds what
 * it held at the first hvp call (sk_curvature_loss_reset drops what it
 * kept). A caller may fill one in for a loss of its own. */
struct sk_curvature_loss {
    size_t n;
    float *theta;
    void *ctx;
    int (*value_grad)(void *ctx, double *loss, float *grad);
    int (*hvp)(void *ctx, const float *v, float *hv);
    void (*destroy)(void *ctx);
    void (*reset)(void *ctx); /* may be NULL */
};

struct sk_curvature_data_config {
    int chunk;            /* rows per recorded forward (0 = 1024) */
    /* Memory (MiB) for recorded forwards kept between products, so that
     * each Hessian-vector product after the first skips the forward. A
     * chunk costs about 16 bytes per value of its forward (value, gradient,
     * tangent and its gradient); chunks beyond the budget are recorded
     * afresh every product. 0 = 1024; negative = none kept. */
    double keep_mb;
};

/* The mean cross-entropy of model m (eval mode) over n rows x (n x in_dim
 * raw floats) with labels y: a loss object for the functions below, with
 * theta = m->params. Products run chunk by chunk (each chunk's ops use the
 * library's threads), are accumulated in double in chunk order, and are
 * exact: the same as sk_model_hvp over all n rows up to float rounding.
 * m, x and y are borrowed and must outlive the object; the parameters
 * must not change between Hessian-vector products unless
 * sk_curvature_loss_reset is called. value_grad overwrites m->grads (its
 * scratch). cfg NULL = defaults. NULL + sk_last_error() for n < 1, labels
 * out of range, a model with an op without an exact second-order rule
 * (reported at the first product), or out of memory. */
struct sk_curvature_loss *sk_curvature_loss_model(struct sk_model *m, const float *x, const int *y, int n,
                                                  const struct sk_curvature_data_config *cfg);
/* Drop the recorded forwards (after the parameters changed). NULL ok. */
void sk_curvature_loss_reset(struct sk_curvature_loss *L);
/* Free the object (calls destroy). NULL ok. */
void sk_curvature_loss_free(struct sk_curvature_loss *L);
/* The Hessian of L as an operator (borrows L). */
struct sk_curvature_op sk_curvature_loss_op(const struct sk_curvature_loss *L);
/* How many Hessian-vector products L has computed (for reports). 0 for
 * losses not made by sk_curvature_loss_model. */
long sk_curvature_loss_n_hvp(const struct sk_curvature_loss *L);

/* ---------------- spectrum ---------------- */

struct sk_curvature_lanczos_config {
    int k;            /* eigenpairs wanted, largest algebraic first (1) */
    int max_steps;    /* Lanczos steps at most (20); k <= max_steps <= n */
    /* Stop early when every one of the k Ritz pairs (theta_i, y_i) has the
     * residual bound |beta_m s_mi| = ||A y_i - theta_i y_i|| <= tol * |theta_1|.
     * 0 = run max_steps. The eigenvalue error is then at most the residual,
     * and about residual^2 / gap when the gap to the rest of the spectrum is
     * wider (default 1e-4). */
    double tol;
    uint64_t seed;    /* the Gaussian start vector */
};
struct sk_curvature_lanczos_config sk_curvature_lanczos_defaults(void);
/* Lanczos with full reorthogonalisation (every new vector against every
 * earlier one, twice, in double) on op, from a seeded Gaussian start:
 * values[k] the k largest Ritz values, descending; resid[k] (may be NULL)
 * their residual norms ||A y - theta y||; vectors (may be NULL) k x n floats,
 * the unit Ritz vectors; *steps (may be NULL) the steps taken. Costs one
 * op->apply per step and steps x n floats of basis. An invariant subspace
 * found early (beta below 1e-5 of the tridiagonal's scale, the level of
 * float rounding in the products) ends the run with the eigenvalues of that
 * subspace; pairs beyond its dimension are NaN (vectors zero).
 * SK_EINVAL for k < 1, max_steps < k or max_steps > n; the op's status. */
int sk_curvature_lanczos(const struct sk_curvature_op *op, const struct sk_curvature_lanczos_config *cfg,
                         double *values, double *resid, float *vectors, int *steps);

/* Hutchinson's estimate of tr(A) from up to `probes` Rademacher vectors z
 * (entries +-1, seeded): tr = mean z^T A z, *se its standard error (sample
 * standard deviation / sqrt(probes taken); needs probes >= 2). rel_tol > 0
 * stops after at least 10 probes once se <= rel_tol |tr|. samples (may be
 * NULL, probes doubles) receives each z^T A z; *used (may be NULL) the
 * probes taken. */
int sk_curvature_trace(const struct sk_curvature_op *op, int probes, double rel_tol, uint64_t seed, double *tr,
                       double *se, double *samples, int *used);

/* Spectral density by stochastic Lanczos quadrature (Ghorbani et al. 2019):
 * `runs` runs of `steps` Lanczos steps from seeded Gaussian start vectors;
 * the density is
 *     rho(t) = (1/runs) sum_r sum_i w_ri N(t; node_ri, sigma^2)
 * with node_ri the Ritz values of run r and w_ri the squared first
 * components of their eigenvectors (sum_i w_ri = 1). It approximates the
 * eigenvalue density (1/n) sum_j delta(t - lambda_j); its moments
 * sum w t^p / runs estimate tr(A^p) / n, exactly for p <= 2 steps - 1 in
 * expectation over the start vector. */
struct sk_curvature_density {
    int runs, steps;     /* steps may be smaller than asked when a run ends early */
    size_t n;            /* dimension of the operator */
    double *nodes;       /* runs x steps; unused slots have weight 0 */
    double *weights;     /* runs x steps */
};
/* NULL + sk_last_error() for runs < 1, steps < 2 or steps > n, out of
 * memory or the op's failure. Free with sk_curvature_density_free. */
struct sk_curvature_density *sk_curvature_density(const struct sk_curvature_op *op, int runs, int steps,
                                                  uint64_t seed);
void sk_curvature_density_free(struct sk_curvature_density *d); /* NULL ok */
/* The p-th moment sum_ri w_ri node_ri^p / runs (estimates tr(A^p) / n). */
double sk_curvature_density_moment(const struct sk_curvature_density *d, int p);
/* The broadened density on a grid of n_grid points from lo to hi
 * (t[n_grid], rho[n_grid]). sigma <= 0: (max node - min node) / 200. */
int sk_curvature_density_eval(const struct sk_curvature_density *d, double sigma, double lo, double hi,
                              int n_grid, double *t, double *rho);
/* A PNG of the density: eigenvalue on the x axis (linear, over the nodes'
 * range and 5% beyond), density on a log10 y axis (down to 1e-7 of its
 * peak), labelled axes, the title given (may be NULL). */
int sk_curvature_density_plot(const struct sk_curvature_density *d, double sigma, const char *path,
                              const char *title);

/* The exact dense Hessian of op (n HVPs along the unit vectors, in double):
 * h is n x n, symmetrised as (A + A^T)/2; *asym (may be NULL) receives the
 * largest |A_ij - A_ji| / max |A_ij| seen before (0 for an exact product).
 * For checking the estimators on models of up to a few thousand
 * parameters: SK_EINVAL for n > 8192. */
int sk_curvature_hessian_dense(const struct sk_curvature_op *op, double *h, double *asym);
/* All eigenvalues of op, ascending (w[n]), from its dense Hessian
 * (sk_dsyev); vectors (may be NULL, n x n doubles) row i the unit
 * eigenvector of w[i]. Same limit. */
int sk_curvature_eigen_dense(const struct sk_curvature_op *op, double *w, double *vectors);

/* lambda_max across n_sets disjoint sample sets of n_per_set rows each
 * (drawn by a seeded permutation of the n rows; n_sets x n_per_set <= n),
 * each by `steps` Lanczos steps: lmax[n_sets]. The spread (max / min,
 * relative standard deviation) shows how far one sample set's lambda_max
 * speaks for the whole training loss. */
int sk_curvature_lmax_spread(struct sk_model *m, const float *x, const int *y, int n, int n_per_set, int n_sets,
                             int steps, uint64_t seed, double *lmax);

/* ---------------- sharpness of a loss ---------------- */

/* epsilon-sharpness (Keskar et al. 2017): the largest increase
 *     max_{z in C} L(theta + z) - L(theta),  C = { |z_i| <= eps (|theta_i| + 1) }
 * found by `steps` steps of projected sign-gradient ascent (step eps/4 in
 * units of the box) from a seeded random point of the box; the best value
 * seen is returned in *increase. Keskar's normalised figure is
 * 100 * increase / (1 + L(theta)). theta restored. */
int sk_curvature_sharpness_eps(struct sk_curvature_loss *L, double eps, int steps, uint64_t seed,
                               double *increase);
/* Adaptive sharpness (Kwon et al. 2021; Andriushchenko et al. 2023): the
 * largest increase max L(theta + delta) - L(theta) over the ball
 * || delta / (|theta| + eta) ||_p <= rho (elementwise scaling; p = 2 or
 * p = 0 for the infinity norm; eta = 0 as Andriushchenko et al., > 0 as
 * ASAM), by `steps` steps of projected normalised gradient ascent in the
 * scaled coordinates u = delta / (|theta| + eta): u moves by rho along the
 * normalised ascent direction (p = 2; sign steps of rho / 4 for p = 0) and
 * is projected back onto the ball; from a seeded random
 * point of the ball. Unlike plain sharpness it is unchanged when a ReLU
 * layer's weights are multiplied by a and the next layer's divided by a.
 * theta restored. */
int sk_curvature_sharpness_adaptive(struct sk_curvature_loss *L, double rho, int p, double eta, int steps,
                                    uint64_t seed, double *increase);
/* PAC-Bayes flatness (Jiang et al. 2020): the largest sigma such that the
 * mean increase of the loss under Gaussian weight noise u stays under bound:
 *     (1/S) sum_s L(theta + u_s) - L(theta) <= bound,
 *     plain:           u_i = sigma z_i
 *     magnitude-aware: u_i = z_i sqrt(sigma^2 theta_i^2 + 1e-6)   (the same eps^2 = 1e-6)
 * with z the same S seeded standard-normal draws for every sigma (so the
 * increase is a smooth function of sigma), by doubling from 1e-3 and then
 * `iters` bisection steps (geometric). The flatness figure is 1/sigma^2.
 * SK_EINVAL (naming bound) if even sigma = 1e-9 exceeds the bound;
 * *sigma = 1e3 (a cap) if no sigma up to it does. theta restored. */
int sk_curvature_pac_sigma(struct sk_curvature_loss *L, double bound, bool magnitude_aware, int samples, int iters,
                           uint64_t seed, double *sigma);

/* ---------------- every measure of one model ---------------- */

struct sk_curvature_config {
    int n;                /* training rows the loss is taken over (0 = all) */
    int top_k;            /* top eigenvalues (1..64; default 1) */
    int lanczos_steps;    /* Lanczos steps for the top eigenvalues (20) */
    double lanczos_tol;   /* see sk_curvature_lanczos_config.tol (1e-4) */
    int probes;           /* Hutchinson probes (100) */
    int slq_runs;         /* density runs (0 = no density; the CLI's --density sets 4) */
    int slq_steps;        /* Lanczos steps per density run (80) */
    int spread_sets;      /* lambda_max spread: sets (0 = none; default 5) */
    int spread_n;         /* rows per set (128) */
    int spread_steps;     /* Lanczos steps per set (20) */
    double eps;           /* epsilon-sharpness box (1e-3) */
    double rho;           /* adaptive sharpness radius (0.05, p = 2, eta = 0) */
    int ascent_steps;     /* gradient-ascent steps of both sharpness measures (20) */
    double pac_bound;     /* PAC-Bayes: allowed mean loss increase (0.1) */
    int pac_samples;      /* noise draws per sigma (5) */
    int pac_iters;        /* bisection steps (8) */
    int gns_batch;        /* batch size whose gradient noise gives B_simple (128) */
    bool dense;           /* also the dense Hessian's spectrum (n_params <= 8192) */
    bool skip_sharpness;  /* only the spectrum and the norms */
    struct sk_curvature_data_config data;
    uint64_t seed;        /* 42 */
    /* progress (may be NULL): called with a stage name and its fraction done */
    void (*progress)(void *ctx, const char *stage, double frac);
    void *progress_ctx;
};
struct sk_curvature_config sk_curvature_defaults(void);

#define SK_CURVATURE_MAX_K 64
struct sk_curvature_report {
    size_t n_params;
    int n_train, n_test;          /* rows used */
    /* spectrum of the training loss's Hessian */
    int k, lanczos_steps;
    double eig[SK_CURVATURE_MAX_K], eig_resid[SK_CURVATURE_MAX_K];
    double trace, trace_se;
    int trace_probes;
    double slq_m1, slq_m2;        /* density moments (tr H / P, tr H^2 / P); NaN without a density */
    int spread_sets;
    double spread_min, spread_max, spread_median, spread_rsd; /* lambda_max over sample sets; NaN without */
    bool has_dense;
    double dense_eig[SK_CURVATURE_MAX_K]; /* the k largest, descending */
    double dense_trace, dense_min;
    /* generalization gap */
    double train_loss, train_err, test_loss, test_err; /* test: NaN without test rows */
    /* sharpness and flatness (NaN when skipped) */
    double eps_sharpness, eps_sharpness_keskar; /* increase; 100 increase / (1 + L) */
    double adaptive_sharpness;
    double pac_sigma, pac_sigma_mag;            /* flatness = 1 / sigma^2 */
    /* norms and margins */
    double fisher_rao;          /* (1/n) sum_i <theta, grad_theta l_i>^2 = theta^T F theta, empirical Fisher */
    int n_spectral;             /* weight matrices (dense; conv reshaped OC x C K K) */
    double spec_prod, spec_sum; /* product and sum of their largest singular values */
    double frobenius_sq;        /* sum of squared weights of those layers */
    double path_norm;           /* l2 path norm: sum of outputs of the network with squared weights on an
                                   input of ones (ReLU/linear nets of dense, conv, average pooling; NaN otherwise) */
    double margin_p10, margin_median; /* logit margin z_y - max_{j!=y} z_j over training rows */
    /* gradient noise scale (McCandlish et al. 2018) */
    double gns_simple;          /* B_simple = tr(Sigma) / |G|^2 */
    double gns_trace_sigma, gns_grad_sq;
    long n_hvp;                 /* Hessian-vector products computed */
    double seconds;
};

/* Every measure of model m on its training rows (n_train) and, if
 * n_test > 0, test rows (for the generalization gap): the spectrum (top-k by
 * Lanczos, Hutchinson's trace, optionally the SLQ density written into
 * *density (may be NULL; free with sk_curvature_density_free) and the dense
 * spectrum), lambda_max's spread, the sharpness measures, the norms,
 * margins and the gradient noise scale, with cfg's settings. m's
 * parameters are restored; m->grads overwritten. Step counts above the
 * number of parameters are cut to it. SK_EINVAL naming the config field
 * (e.g. "cfg.top_k") for a bad setting. */
int sk_curvature_measures(struct sk_model *m, const float *x_train, const int *y_train, int n_train,
                          const float *x_test, const int *y_test, int n_test, const struct sk_curvature_config *cfg,
                          struct sk_curvature_report *out, struct sk_curvature_density **density);

/* The parts of the above on their own. */
/* Largest singular value of each weight matrix (dense weights, conv kernels
 * reshaped OC x (C K K)); spec[n_layers] (may be NULL) per layer (0 for
 * layers without weights); product, sum, and the Frobenius sum. */
int sk_curvature_spectral_norms(const struct sk_model *m, double *per_layer, int *n_mats, double *prod, double *sum,
                                double *frob_sq);
/* The l2 path norm (see the report); SK_EINVAL naming the layer for a
 * network it is not defined on. */
int sk_curvature_path_norm(const struct sk_model *m, double *path_norm);
/* Per-row logit margins z_y - max_{j != y} z_j: margin[n]. */
int sk_curvature_margins(struct sk_model *m, const float *x, const int *y, int n, float *margin);
/* (1/n) sum_i <theta, grad l_i>^2 through one Hessian-free directional
 * derivative per chunk (the logits' tangent along theta). */
int sk_curvature_fisher_rao(struct sk_model *m, const float *x, const int *y, int n, double *fr);
/* B_simple from the gradients of the n / batch disjoint batches of a seeded
 * permutation: tr(Sigma) = batch * sample variance of the batch gradients,
 * |G|^2 the squared norm of their mean less tr(Sigma) / (batches x batch)
 * (unbiased). Needs at least two batches. */
int sk_curvature_noise_scale(struct sk_model *m, const float *x, const int *y, int n, int batch, uint64_t seed,
                             double *b_simple, double *trace_sigma, double *grad_sq);

/* ---------------- loss landscapes ----------------
 * The loss and accuracy of a model (eval mode, sk_model_evaluate) at the
 * points of a line or plane through its weights theta:
 *     1D  theta + a d1,         a on steps points from lo to hi
 *     2D  theta + a d1 + b d2,  a, b on the same grid
 * with d1, d2 filter-normalised random directions (Li et al. 2018) or the top
 * Hessian eigenvectors of the training loss (unit vectors, by Lanczos); and
 * on the segment between two models (Goodfellow et al. 2015)
 *     theta(t) = (1 - t) theta_A + t theta_B   (batch-norm statistics too).
 * The point a = b = 0 is the model itself, bit for bit, so its loss is the
 * model's; t = 0 and t = 1 are the two models exactly. Grids run
 * lo + (hi - lo) i / (steps - 1), computed so that a symmetric range with odd
 * steps has an exact 0 in the middle. The model's weights are restored. */
enum sk_curvature_landscape_dirs {
    SK_LANDSCAPE_FILTER,      /* filter-normalised Gaussian directions */
    SK_LANDSCAPE_EIGEN,       /* the top one or two Hessian eigenvectors */
    SK_LANDSCAPE_INTERPOLATE, /* (set in results of sk_curvature_landscape_interpolate) */
};
struct sk_curvature_landscape_config {
    int dims;            /* 1 or 2 (1) */
    enum sk_curvature_landscape_dirs dirs;
    double lo, hi;       /* coordinate range (-1, 1) */
    int steps;           /* points per axis, 2..1001 (21) */
    bool keep_bias_bn;   /* 1-D tensors (biases, batch-norm scale and shift) get
                            the weights as direction instead of zero */
    int eig_n;           /* eigenvectors: rows of the Hessian's loss (0 = all) */
    int lanczos_steps;   /* eigenvectors: Lanczos steps (20) */
    uint64_t seed;       /* directions: d_k from seed + k (42) */
    void (*progress)(void *ctx, const char *stage, double frac); /* may be NULL */
    void *progress_ctx;
};
struct sk_curvature_landscape_config sk_curvature_landscape_defaults(void);

struct sk_curvature_landscape {
    int dims, nx, ny;         /* ny = 1 in 1D */
    enum sk_curvature_landscape_dirs dirs;
    double *xs, *ys;          /* coordinates, nx and ny */
    /* point (i, j) at [j nx + i]: training loss and accuracy; on the test
     * rows (NaN without them) */
    double *loss, *acc, *test_loss, *test_acc;
    float *dir;               /* dims x n_params, the directions (NULL for interpolation) */
    double eig[2];            /* eigen directions: their eigenvalues (else NaN) */
};
void sk_curvature_landscape_free(struct sk_curvature_landscape *ls); /* NULL ok */

/* A filter-normalised direction d (n_params floats) for m: Gaussian
 * entries from the seed, then every filter (a convolution's output channel,
 * a dense layer's neuron: the rows of a weight tensor) rescaled to the norm
 * of the same filter of the weights, ||d_f|| = ||theta_f||; biases and
 * batch-norm parameters zero, or a copy of theta with keep_bias_bn. */
int sk_curvature_landscape_filter_direction(const struct sk_model *m, uint64_t seed, bool keep_bias_bn, float *d);

/* The 1D or 2D slice of cfg through m's weights, on n training rows (x, y)
 * and, if nt > 0, nt test rows. NULL + sk_last_error() naming cfg's field for
 * a bad setting, for a model whose Hessian cannot be taken (eigen), or out of
 * memory. Free with sk_curvature_landscape_free. */
struct sk_curvature_landscape *sk_curvature_landscape_slice(struct sk_model *m, const float *x, const int *y, int n,
                                                            const float *xt, const int *yt, int nt,
                                                            const struct sk_curvature_landscape_config *cfg);
/* The segment from model a (t = 0) to model b (t = 1), extended to cfg's
 * [lo, hi], steps points (cfg.dims and dirs ignored); a and b of one spec.
 * a is the model evaluated (its weights restored); b is only read. */
struct sk_curvature_landscape *sk_curvature_landscape_interpolate(struct sk_model *a, const struct sk_model *b,
                                                                  const float *x, const int *y, int n,
                                                                  const float *xt, const int *yt, int nt,
                                                                  const struct sk_curvature_landscape_config *cfg);

/* ---------------- training dynamics ----------------
 * Probes of a model while it trains (skeptic train --track curvature): on a
 * fixed subset of n training rows (a seeded choice, the same at every probe)
 * and n test rows, each probe measures
 *     lambda_max      top Hessian eigenvalue of the subset's mean loss (Lanczos)
 *     trace           Hutchinson's trace of that Hessian, and its standard error
 *     b_simple        the gradient noise scale (sk_curvature_noise_scale) at
 *                     batch gns_batch
 *     grad_norm       ||grad L|| of the subset's mean loss
 *     weight_norm     ||theta||
 *     train/test loss and accuracy on the subsets
 * all in eval mode. Edge of stability (Cohen et al. 2021): under gradient
 * descent with step size eta, lambda_max rises to about 2 / eta and hovers
 * there. */
struct sk_curvature_track_config {
    int n;               /* rows of each subset (1000) */
    int lanczos_steps;   /* (20) */
    int probes;          /* Hutchinson probes (20) */
    int gns_batch;       /* batch of the gradient noise scale (128; NaN with fewer than 2 batches) */
    uint64_t seed;       /* subsets, start vectors, probes (42) */
};
struct sk_curvature_track_config sk_curvature_track_defaults(void);
struct sk_curvature_track_point {
    double lambda_max, lambda_resid, trace, trace_se, b_simple, grad_norm, weight_norm;
    double train_loss, train_acc, test_loss, test_acc; /* test: NaN without test rows */
    double seconds;      /* the probe's own time */
};
struct sk_curvature_track;
/* A prober of m (borrowed, as are the rows: they must outlive it) on the
 * subsets of (x, y, n) and (xt, yt, nt) (nt = 0: none). NULL +
 * sk_last_error() naming cfg's field, or out of memory. */
struct sk_curvature_track *sk_curvature_track_new(struct sk_model *m, const float *x, const int *y, int n,
                                                  const float *xt, const int *yt, int nt,
                                                  const struct sk_curvature_track_config *cfg);
/* One probe at m's current weights (m->grads overwritten, weights untouched). */
int sk_curvature_track_probe(struct sk_curvature_track *tr, struct sk_curvature_track_point *out);
void sk_curvature_track_free(struct sk_curvature_track *tr); /* NULL ok */

#ifdef __cplusplus
}
#endif
#endif
