/* skeptic/attack.h — adversarial attacks and robustness evaluation through
 * the classifier seam (struct sk_classifier, model.h).
 *
 * Overview. Every attack sees the model only through sk_classifier: batched
 * log-probabilities, and the input gradient of a per-row loss of them (for a
 * stochastic classifier that gradient is the EOT gradient of the log of the
 * averaged probabilities over its n_samples). All losses are shift-invariant
 * or defined on log-probabilities, so nothing needs logits.
 *
 *     struct sk_classifier *c = sk_classifier_from_model(m, SK_MODE_EVAL, 1, 0);
 *     struct sk_attack_config cfg = sk_attack_defaults(SK_ATTACK_PGD, SK_NORM_LINF, 0.1f);
 *     cfg.steps = 20;
 *     struct sk_attack_result *r = sk_attack_evaluate(c, &cfg, x, y, n);
 *     if (!r) fprintf(stderr, "%s\n", sk_last_error());
 *     printf("clean %.4f robust %.4f\n", r->clean_acc, r->robust_acc);
 *     for (int i = 0; i < r->n_warnings; i++) fprintf(stderr, "warning: %s\n", r->warnings[i]);
 *     sk_attack_result_free(r);
 *
 * Guarantees for every returned example x_adv (every attack, every norm):
 *   x_adv is in the box [clip_min, clip_max] (per feature [box_lo[j],
 *   box_hi[j]] when given) and |x_adv - x|_p <= eps (L0:
 *   at most eps pixels changed), exactly up to float rounding (1e-6). For
 *   inputs x outside the box (data not scaled to it) the L-inf ball wins:
 *   a coordinate farther than eps outside stays within eps of x.
 * Worst case per sample: an attack keeps the best point it has seen for
 * each sample across iterations and restarts (the first adversarial point,
 * else the point of highest loss), never merely the last iterate; restarts
 * and later attacks of a suite run only on the points still standing.
 * Minimal-norm attacks (CW, DeepFool, FMN) search without a bound; the
 * smallest adversarial perturbation found is reported in min_norm, and
 * x_adv is that point when it fits in eps, else the best point projected
 * onto the eps ball.
 *
 * Robustness is decided at the end by the classifier itself: a point is
 * robust iff it is classified correctly at x_adv (one more call of
 * log_probs). A stochastic classifier with n_samples == 1 (no EOT) gives an
 * optimistic figure: result->no_eot is set and every text output says
 * "stochastic model, no EOT".
 *
 * Stochastic classifiers (c->stochastic). One noisy call that misclassifies
 * a point proves nothing: the next call may classify it correctly. So on a
 * stochastic classifier no attack locks a point on a single success or stops
 * early: every point runs all its steps (restarts, queries) and keeps the
 * iterate of the best objective as the classifier call reports it (the loss
 * the attack ascends, on the probabilities averaged over the call's EOT
 * samples; minimal-norm attacks: the largest CW margin within eps);
 * gradient attacks also hand their final iterate to the verdict, which
 * keeps the better of the two (the best noisy objective favours a lucky
 * call). Then the verdict decides, the same procedure everywhere (clean
 * prediction, every stage of the suite, the headline):
 *   verdict: R = max(2, ceil(cfg.verdict_samples / S)) calls of log_probs
 *   (S = c->n_samples each), probabilities averaged over the R S samples;
 *   correct iff the argmax is the label. result->verdict_samples = R S.
 * A stage judges the iterates it produced; a point the verdict misclassifies
 * is broken (and stays broken: its x_adv is that iterate); a point still
 * standing keeps whichever of its iterates had the smaller verdict margin
 * p_y - max_{k!=y} p_k, and goes on to the next stage. The headline is the
 * last stage's figure (no fresh call), so stage lines and headline agree.
 * Monte-Carlo error of the verdict (result->robust_acc_se): per point, the
 * margin d_i = pbar_y - pbar_k* (k* the verdict's strongest other class)
 * and its standard error s_i = sd_r(p_r,y - p_r,k*) / sqrt(R) over the R
 * calls; q_i = Phi(d_i / s_i) estimates the chance that a fresh verdict
 * calls the point correct (clean-misclassified points: q_i = 0), and
 *   robust_acc_se = sqrt(sum_i q_i (1 - q_i)) / n,
 * the standard deviation of the robust accuracy over fresh verdicts on the
 * same iterates (normal approximation per point, points independent). It
 * is the verdict's sampling error only, not the attack's randomness.
 * Deterministic classifiers are untouched: first success locks, one final
 * call decides, verdict_samples = 1 and robust_acc_se = 0.
 *
 * Randomness: stream SK_STREAM_ATTACK of cfg.seed; restart r and batch b use
 * derived children, so adding restarts or points never changes the earlier
 * ones.
 */
#ifndef SKEPTIC_ATTACK_H
#define SKEPTIC_ATTACK_H

#include "skeptic/model.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Append only. */
enum sk_attack_kind {
    SK_ATTACK_FGSM,      /* one signed (Linf) / normalised (L2) gradient step of size eps */
    SK_ATTACK_PGD,       /* BIM/PGD: steps of step_size, projected; random start; restarts */
    SK_ATTACK_MIFGSM,    /* momentum iterative FGSM (Dong et al. 2018), decay mu = 1 */
    SK_ATTACK_APGD_CE,   /* auto-PGD, cross-entropy (Croce & Hein 2020) */
    SK_ATTACK_APGD_DLR,  /* auto-PGD, difference-of-logits-ratio loss */
    SK_ATTACK_APGD_T,    /* targeted auto-PGD-DLR over the top-k other classes */
    SK_ATTACK_CW,        /* Carlini–Wagner L2, binary search on c (minimal norm) */
    SK_ATTACK_DEEPFOOL,  /* DeepFool (minimal norm), multi-class, with overshoot */
    SK_ATTACK_FMN,       /* fast minimum-norm (Pintor et al. 2021), L2 or Linf */
    SK_ATTACK_SQUARE,    /* Square Attack (score-based, no gradients), Linf or L2 */
    SK_ATTACK_SPARSE,    /* Sparse-RS L0 (score-based): at most eps pixels changed */
    SK_ATTACK_SUITE,     /* APGD-CE, APGD-T, FMN, Square, each on the points left */
};
#define SK_ATTACK_COUNT 12
/* "fgsm", "pgd", "mifgsm", "apgd-ce", "apgd-dlr", "apgd-t", "cw", "deepfool",
 * "fmn", "square", "sparse", "suite". */
const char *sk_attack_name(enum sk_attack_kind k);
int sk_attack_parse(const char *s); /* -1 if unknown */

enum sk_norm { SK_NORM_LINF = 0, SK_NORM_L2 = 1, SK_NORM_L1 = 2, SK_NORM_L0 = 3 };
const char *sk_attack_norm_name(enum sk_norm p); /* "linf", "l2", "l1", "l0" */
int sk_attack_norm_parse(const char *s);         /* -1 if unknown */

enum sk_target_mode {
    SK_TARGET_NONE = 0,        /* untargeted: success = misclassified */
    SK_TARGET_GIVEN = 1,       /* cfg.targets[i] (i = index of the row) */
    SK_TARGET_RANDOM = 2,      /* uniform over the other classes (stream of cfg.seed) */
    SK_TARGET_LEAST_LIKELY = 3 /* the class of lowest clean probability */
};
const char *sk_attack_target_name(enum sk_target_mode t);

/* Loss an iterative gradient attack ascends. */
enum sk_attack_loss { SK_LOSS_DEFAULT = 0, SK_LOSS_CE = 1, SK_LOSS_CW = 2, SK_LOSS_DLR = 3 };

struct sk_attack_stage;
/* What on_progress sees: the stage running, how far it is, and once it is
 * over its figures. */
struct sk_attack_progress {
    int stage, n_stages;  /* 0-based stage of this evaluation; stages in all (1 for a single attack) */
    const char *name;     /* the stage's attack ("apgd-ce") */
    int done, total;      /* rows of the stage attacked so far; rows it attacks (those still standing) */
    int n;                /* rows of the evaluation (robust_acc is over these) */
    const struct sk_attack_stage *finished; /* NULL while the stage runs; at its end its figures
                                             * (n_attacked, n_broken, robust_acc, cost, seconds) */
};
typedef void (*sk_attack_progress_fn)(void *ctx, const struct sk_attack_progress *p);

struct sk_attack_config {
    enum sk_attack_kind kind;
    enum sk_norm norm;
    float eps;            /* budget (L0: pixels); minimal-norm attacks: success bound */
    int steps;            /* 0 = the attack's default (pgd 20, mifgsm 10, apgd 100, fmn 100,
                           * cw 100 per search step, deepfool 50) */
    int restarts;         /* runs per point (>= 1; default 1) */
    float step_size;      /* 0 = default: pgd 2.5 eps/steps, mifgsm eps/steps, cw adam lr 0.01 */
    bool random_start;    /* pgd: start uniformly in the ball (restarts after the first always do) */
    enum sk_attack_loss loss; /* pgd/mifgsm: default CE */
    enum sk_target_mode target;
    const int *targets;   /* SK_TARGET_GIVEN: n labels (borrowed) */
    int n_target_classes; /* apgd-t: top-k classes tried (default 9, capped at K-1) */
    float momentum;       /* mifgsm decay (default 1.0); apgd uses 0.75 (reference) */
    int queries;          /* square / sparse: queries per point (default 5000) */
    float p_init;         /* square: initial fraction of pixels (0.8); sparse: of the k pixels swapped (0.3) */
    int cw_search_steps;  /* binary search steps on c (default 9) */
    float cw_c_init;      /* initial c (default 1e-2) */
    float cw_confidence;  /* kappa (default 0; at least 1e-4 is used so the optimum lands past the boundary) */
    float overshoot;      /* deepfool (default 0.02) */
    int batch;            /* rows per classifier call (default 256) */
    int img_c, img_h, img_w; /* image shape for square/sparse (0 = the classifier's; a
                              * 784-vector classifier is taken as 1x28x28 when square) */
    float clip_min, clip_max; /* the valid input box (default [0,1]) */
    const float *box_lo, *box_hi; /* per-feature box [box_lo[j], box_hi[j]] (in_dim each, borrowed,
                                   * box_lo[j] < box_hi[j]) instead of [clip_min, clip_max]; NULL
                                   * (default): the scalar box. Tabular data: the training range */
    uint64_t seed;
    bool audit;           /* run the audits (default true) */
    bool keep_going;      /* gradient attacks: keep computing rows already broken (the work of a
                           * plain loop; default false: a broken row keeps its first adversarial
                           * point and is dropped from later model calls — same results, less work) */
    int verdict_samples;  /* stochastic classifiers: predictive samples of the verdict (default
                           * SK_ATTACK_VERDICT_SAMPLES; see the overview). Ignored when deterministic */
    /* Progress of sk_attack_evaluate and sk_attack_curve (NULL, the default:
     * none). Called on the calling thread after every chunk of cfg.batch rows
     * of a stage and once more when the stage is over; it must not call back
     * into the attack. The library itself prints nothing. */
    sk_attack_progress_fn on_progress;
    void *progress_ctx;   /* passed to on_progress */
    long first_row;       /* index of x's row 0 among all the rows being attacked (default 0): row i
                           * draws its random starts, search moves and random target as row
                           * first_row + i, so that a share of the rows (one process's, under
                           * mpirun) gets the very draws those rows get in one evaluation */
};
/* Default of cfg.verdict_samples. Measured on an MC-dropout MLP on Fashion-MNIST
 * (784-256-256-10, dropout 0.3; PGD-10, EOT-10, eps 0.03, 1000 points, seeds 1-3):
 * robust accuracy 0.6547 / 0.6570 / 0.6570 / 0.6563 / 0.6573 (mean of 3) with
 * 50 / 100 / 200 / 500 / 1000 verdict samples, seed-to-seed spread +-0.003 at
 * each, s.e. 0.0031 / 0.0026 / 0.0020 / 0.0015 / 0.0016: from 200 on the figure
 * moves by < 0.1 point, while the run time doubles at 500. */
#define SK_ATTACK_VERDICT_SAMPLES 200
/* Reference settings of `kind` for this norm and budget. */
struct sk_attack_config sk_attack_defaults(enum sk_attack_kind kind, enum sk_norm norm, float eps);

#define SK_ATTACK_MAX_STAGES 8
#define SK_ATTACK_MAX_WARNINGS 8

struct sk_attack_stage {
    char name[32];        /* "apgd-ce", ... */
    int n_attacked;       /* points it ran on (still standing) */
    int n_broken;         /* of those, broken by this stage */
    double robust_acc;    /* robust accuracy after this stage (over all n) */
    long grad_evals, queries;
    double seconds;
};

struct sk_attack_result {
    int n, dim, n_classes;
    char attack[32];      /* attack name */
    enum sk_norm norm;
    float eps;
    bool targeted;
    /* per point (owned) */
    float *x_adv;         /* n x dim */
    int *pred_clean, *pred_adv, *target; /* target: -1 when untargeted */
    bool *clean_correct, *robust; /* robust: correct at x_adv */
    bool *success;        /* attack goal met: misclassified (untargeted) / target hit */
    float *norm_delta;    /* |x_adv - x| in the attack's norm (L0: pixels changed) */
    float *min_norm;      /* minimal-norm attacks: smallest adversarial found (INFINITY if none);
                           * others: norm_delta where success, else INFINITY */
    /* figures */
    double clean_acc, robust_acc, success_rate; /* success over clean-correct points */
    double mean_norm, median_norm;              /* over successful points (NaN if none) */
    long grad_evals;      /* input gradients, in rows (x EOT samples) */
    long queries;         /* forward evaluations, in rows (x EOT samples) */
    double seconds;
    bool stochastic, no_eot; /* stochastic classifier attacked with n_samples == 1 */
    int eot_samples;
    int verdict_samples;  /* samples of the verdict (stochastic; 1 when deterministic) */
    double robust_acc_se; /* Monte-Carlo standard error of robust_acc from the verdict (0 when deterministic) */
    int n_stages;         /* suite: one per attack; single attacks: 1 */
    struct sk_attack_stage stages[SK_ATTACK_MAX_STAGES];
    int n_warnings;
    char warnings[SK_ATTACK_MAX_WARNINGS][256];
    /* audit flags (also in warnings) */
    bool warn_no_eot, warn_bad_grad, warn_masking, warn_probabilities, warn_train_mode;
    double frac_zero_grad; /* fraction of clean points with an all-zero or non-finite input gradient */
};
void sk_attack_result_free(struct sk_attack_result *r); /* NULL ok */

/* Attack n rows of x (n x dim, dim = c->in_dim) with labels y: clean
 * predictions, the attack on the clean-correct points (misclassified ones are
 * non-robust with x_adv = x), final robustness by the classifier, figures and
 * audits. Returns an owned result or NULL + sk_last_error(). */
struct sk_attack_result *sk_attack_evaluate(struct sk_classifier *c, const struct sk_attack_config *cfg,
                                            const float *x, const int *y, int n);

/* Run one attack on rows that the caller chooses (no clean filtering, no
 * audits): writes x_adv (n x dim) and, if not NULL, min_norm[n] (smallest
 * adversarial norm found, INFINITY if none). tgt: per-row target or NULL
 * (untargeted). The counters of c advance. Stochastic classifier: every
 * stage's iterates are judged by the verdict (overview); the first stage's
 * iterate is kept whatever its margin, later ones replace it when their
 * margin is smaller; min_norm is |x_adv - x| where the verdict says
 * adversarial (target hit), else INFINITY. */
int sk_attack_run(struct sk_classifier *c, const struct sk_attack_config *cfg, const float *x, const int *y,
                  const int *tgt, int n, float *x_adv, float *min_norm);

/* Accuracy versus eps: for eps_list sorted ascending (n_eps values), robust
 * accuracy at each. A point broken at eps_i counts as broken at every larger
 * eps (its example fits those balls too), so later budgets attack only the
 * points still standing and the curve is non-increasing by construction.
 * robust_acc[n_eps]; results[n_eps] (may be NULL) receive owned results, the
 * later ones holding the earlier adversarial examples for reused points. */
int sk_attack_curve(struct sk_classifier *c, const struct sk_attack_config *cfg, const float *eps_list, int n_eps,
                    const float *x, const int *y, int n, double *robust_acc, struct sk_attack_result **results);

/* Norm of v (n floats) in norm p; L0 counts pixels: groups of `channels`
 * interleaved as NCHW (a pixel is changed if any channel changes by more
 * than 1e-7). */
double sk_attack_norm(enum sk_norm p, const float *v, int n, int channels);

/* Project x (n rows of dim) onto {|x - x0|_p <= eps} intersected with the
 * box [lo, hi] (for L2/L1: the ball projection followed by the box clamp,
 * which keeps the norm within eps because x0 is in the box). */
void sk_attack_project(enum sk_norm p, float eps, float lo, float hi, const float *x0, float *x, int n, int dim);

/* Figure of robust accuracy versus eps (PNG or SVG by the path's extension,
 * skeptic/figure.h): n_series (1..8) curves of n_eps points
 * (acc[s * n_eps + e]) with markers, names for the legend (may be NULL).
 * Atomic write. */
int sk_attack_plot_curve(const char *path, const char *title, const float *eps, int n_eps, const double *acc,
                         int n_series, const char *const *names);
/* Figure (PNG or SVG by the extension) of one row per shown example (rows
 * idx[0..n_show) of x, or the first n_show if idx is NULL; n_show <= 256):
 * the original captioned with its true class y[i], the perturbation
 * magnified to the full grey range (max |delta| and the factor printed), the
 * adversarial example captioned "true -> predicted" (pred[i]; in red when it
 * differs from y[i]). Classes are named by class_names[0..n_classes) (e.g.
 * from sk_data_class_name), by number where that is NULL or short. Images
 * C x H x W with C = 1 or 3, values in [0, 1]. Atomic write. */
int sk_attack_plot_grid(const char *path, const float *x, const float *x_adv, const int *y, const int *pred,
                        const int *idx, int n_show, int C, int H, int W, const char *const *class_names,
                        int n_classes);
/* float32 .npy of n rows: shape (n, C, H, W), or (n, C) when H = W = 1. Atomic. */
int sk_attack_save_npy(const char *path, const float *x, int n, int C, int H, int W);

/* Write a short text summary (several lines) of r to buf (NUL-terminated). */
void sk_attack_summary(const struct sk_attack_result *r, char *buf, size_t size);

/* ---- PGD on a model's graph: the inner attack of adversarial training ----
 * The same projected-gradient ascent as SK_ATTACK_PGD, with the model's
 * graph as the gradient oracle instead of the classifier seam (losses of
 * logits and of the batch, EOT as a sum of per-draw gradients): L-infinity
 * sign steps, x <- P(x + step sign(grad_x loss)), P the eps-ball then the
 * box [clip_lo, clip_hi] (no box if clip_lo >= clip_hi: the box wins over
 * the ball, where the attacks' projection lets the ball win). Random starts
 * from stream SK_STREAM_ATTACK of the seed given (robust.h). */

/* CE_NUC (NuAT's attack): CE(z(x'), y) + nuc_lambda ||z(x') - z(x)||_* / B over
 * each batch of B rows (at most 256 rows per batch). */
enum sk_attack_pgd_loss { SK_PGD_LOSS_CE = 0, SK_PGD_LOSS_CW = 1, SK_PGD_LOSS_KL = 2, SK_PGD_LOSS_CE_NUC = 3 };

struct sk_attack_pgd_config {
    float eps;           /* L-infinity radius */
    int steps;           /* >= 1 */
    float step;          /* step size; <= 0: 2.5 eps / steps (1.25 eps for one step) */
    bool random_start;
    float clip_lo, clip_hi; /* input box (default 0, 1); lo >= hi: none */
    const float *box_lo, *box_hi; /* per-feature box (in_dim each, borrowed) instead of
                                   * [clip_lo, clip_hi]; NULL (default): the scalar box */
    enum sk_attack_pgd_loss loss;
    enum sk_mode mode;   /* EVAL (default) or MC (dropout on) */
    int eot;             /* gradients averaged per step (MC mode), >= 1 */
    float start_radius;  /* random start U(-r, r); <= 0: r = eps */
    bool no_project;     /* keep only the box: the perturbation may leave the eps-ball (N-FGSM) */
    const float *x_start;/* N x in_dim start points (projected onto the ball and box), instead of
                          * the random start or x itself; NULL: not used (FGSM-EP's prior) */
    bool sign_start;     /* random start +-r with probability 1/2 each (Bernoulli; NuAT) instead of U(-r, r) */
    float nuc_lambda;    /* SK_PGD_LOSS_CE_NUC: weight of the nuclear norm */
};
/* eps, steps as given; step 0 (automatic); random start; box [0,1]; CE; eval; eot 1. */
struct sk_attack_pgd_config sk_attack_pgd_defaults(float eps, int steps);

/* Adversarial versions of N rows of x (labels y) into xadv (N x in_dim;
 * may not alias x). For SK_PGD_LOSS_KL the labels are unused and the loss is
 * KL(p(x) || p(x')). Parameter gradients are not touched. */
int sk_attack_pgd(struct sk_model *m, const struct sk_attack_pgd_config *c, const float *x, const int *y, int N,
                  uint64_t seed, float *xadv);
/* The same on a caller's graph (reset inside; parameter gradients must be
 * off: sk_graph_set_param_grads(g, false)). */
int sk_attack_pgd_graph(struct sk_model *m, struct sk_graph *g, const struct sk_attack_pgd_config *c, const float *x,
                        const int *y, int N, uint64_t seed, float *xadv);
/* Accuracy under this PGD on (x, y) (eval mode), and optionally the clean
 * accuracy. correct[N] (may be NULL) gets 1 where the point survives. */
int sk_attack_pgd_accuracy(struct sk_model *m, const struct sk_attack_pgd_config *c, const float *x, const int *y,
                           int N, uint64_t seed, double *robust_acc, unsigned char *correct);

#ifdef __cplusplus
}
#endif
#endif
