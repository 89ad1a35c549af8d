/* study.h — the seed's experiments as reproducible library calls.
 *
 * sk_compare_run is experiment 3 of the seed: a deterministic network and its
 * Bayesian counterparts of the same architecture, trained on the same rows
 * (or loaded from a directory), judged on the same test rows, the same
 * out-of-distribution rows and the same adversarial attacks (FGSM and PGD
 * through the classifier seam, with EOT over each method's samples). One row
 * per method: accuracy, NLL, ECE, Brier, OOD AUROC, accuracy under attack and
 * the AUROC of telling PGD inputs from clean ones.
 *
 *   struct sk_compare_config cfg = sk_compare_defaults();
 *   cfg.methods = "deterministic,ensemble";
 *   cfg.data = "moons";
 *   struct sk_compare_result *r = NULL;
 *   if (sk_compare_run(&cfg, train, test, ood, &r)) fprintf(stderr, "%s\n", sk_last_error());
 *   for (int i = 0; r && i < r->n_rows; i++) printf("%s %.4f\n", r->rows[i].method, r->rows[i].rep.clean.accuracy);
 *   sk_compare_result_free(r);
 */
#ifndef SKEPTIC_STUDY_H
#define SKEPTIC_STUDY_H

#include "skeptic/attack.h"
#include "skeptic/bayes.h"
#include "skeptic/data.h"
#include "skeptic/metrics.h"
#include "skeptic/train.h"
#include "skeptic/study_seed.h" /* the seed study: sk_study_run */

#define SK_COMPARE_MAX_METHODS 8

/* What sk_compare_run is doing, for a progress display. Only the fields
 * that the stage names are set; every pointer lives for the call only. */
enum sk_compare_stage {
    SK_COMPARE_LOADING,    /* method, path: a file of cfg.dir is loaded instead of trained */
    SK_COMPARE_TRAINING,   /* method, spec */
    SK_COMPARE_EPOCH,      /* method, epoch: one epoch of a training run ended */
    SK_COMPARE_WARM_START, /* method: starts from the deterministic network of this run */
    SK_COMPARE_FITTED,     /* method, value: laplace's prior precision, temperature's T */
    SK_COMPARE_EVALUATING, /* method, row (samples set) */
    SK_COMPARE_ROW,        /* method, row: the row is complete */
};
struct sk_compare_row;
struct sk_compare_progress {
    enum sk_compare_stage stage;
    const char *method;
    const char *path;
    const char *spec;
    const struct sk_epoch_metrics *epoch;
    double value;
    const struct sk_compare_row *row;
};

struct sk_compare_config {
    const char *arch;    /* "mlp" (784-400-400-10), "cnn" (Fashion-MNIST CNN) or a spec (default "mlp") */
    const char *methods; /* comma list of deterministic, temperature, mc-dropout, ensemble, vi, sgld, laplace
                          * (default all seven, at most SK_COMPARE_MAX_METHODS) */
    const char *dir;     /* NULL, or a directory: METHOD.safetensors there is loaded instead of trained, and
                          * trained methods are saved there (the directory is created) */
    /* The data the rows came from, as the caller opened them: the trained
     * models record it, and files loaded from dir must have been trained on
     * the same selection and split. */
    const char *data;      /* the data set's name or path (default "fashion-mnist") */
    const char *classes;   /* the class selection ("6,0"), NULL = all classes */
    uint64_t data_seed;    /* the split's seed (0 = the default 1) */
    float test_fraction;   /* the split's test fraction (0 = the default 0.2) */
    int epochs;            /* deterministic nets and warm starts (default 10), >= 1 */
    int ens_epochs;        /* each ensemble member (0 = epochs) */
    int vi_epochs;         /* Bayes by Backprop, cosine schedule (default 20), >= 1 */
    int sgld_epochs;       /* SGLD after the warm start, the first is burn-in (default 5), >= 2 */
    int batch;             /* default 128, >= 1 */
    int members;           /* ensemble members (default 5), >= 1 */
    int samples;           /* posterior samples per prediction (default 20), >= 1 */
    int attack_samples;    /* EOT samples per attack gradient (default 10), >= 1 */
    int n_adv;             /* test rows attacked (default 500; 0 = no attacks), >= 0 */
    int pgd_steps;         /* default 10, >= 1 */
    float lr, vi_lr, sgld_lr; /* Adam (1e-3), Adam of VI (1e-3), SGLD step on the mean loss (0.01); > 0 */
    float val_fraction;    /* training rows held out for temperature and Laplace (default 1/12), in (0,1) */
    float dropout;         /* MC dropout rate (default 0.2), in [0,1) */
    enum sk_bayes_prior_kind prior; /* VI prior (default gaussian) */
    float prior_sigma;     /* VI Gaussian prior scale (default 0.1), > 0 */
    float init_sigma;      /* VI initial posterior scale (default 0.02), > 0 */
    float kl_weight;       /* VI KL weight (default 1), >= 0 */
    int flipout;           /* VI on non-MLP specs: 1 Flipout, 0 one draw per minibatch, -1 VI's default */
    float eps;             /* Linf budget of FGSM and PGD, in the data's units (default 0.1), >= 0 */
    float clip_min, clip_max; /* the attacks' valid input box (default [0,1]), clip_min < clip_max */
    uint64_t seed;         /* of everything: init, order, split, samples, attacks (default 1) */
    /* Called at every stage (NULL: silent). */
    void (*on_progress)(void *ctx, const struct sk_compare_progress *p);
    void *ctx;
};

struct sk_compare_row {
    char method[32];
    double train_seconds;     /* NaN when loaded from dir */
    int samples;              /* posterior samples per prediction */
    float temperature;
    struct sk_bayes_report rep; /* clean metrics, and OOD detection when ood was given */
    double fgsm_acc, pgd_acc; /* NaN without attacks */
    /* detecting PGD inputs by mutual information / entropy, over the adv_n
     * attacked rows that were right before the attack (a row misclassified
     * already is no adversarial example to detect); AUROC NaN without attacks */
    struct sk_detection adv_mi, adv_ent;
    int adv_n;
};
struct sk_compare_result {
    int n_rows;
    struct sk_compare_row *rows; /* one per method, in the order of cfg.methods */
    int n_test;                  /* test rows judged */
    int n_adv;                   /* test rows attacked: min(cfg.n_adv, n_test) */
    bool has_ood;
};

struct sk_compare_config sk_compare_defaults(void);
/* SK_EINVAL naming the first field out of range ("compare.epochs") or
 * contradicting another; SK_OK otherwise. sk_compare_run calls it first. */
int sk_compare_check(const struct sk_compare_config *cfg);
/* Run the comparison: train (or load from cfg->dir) every method on train
 * (its last val_fraction, by cfg->seed, serving temperature scaling and
 * Laplace), judge it on test and ood (NULL: no OOD columns) and attack the
 * first n_adv test rows. All data are raw: every model applies its own
 * preprocessing. *out receives an owned result (free with
 * sk_compare_result_free); NULL on failure, with sk_last_error() naming
 * the method, file or field at fault. */
int sk_compare_run(const struct sk_compare_config *cfg, const struct sk_dataset *train,
                   const struct sk_dataset *test, const struct sk_dataset *ood, struct sk_compare_result **out);
/* Accepts NULL. */
void sk_compare_result_free(struct sk_compare_result *r);

/* ---------------- calibration under attack ----------------
 * How the predictive of a classifier behaves on adversarial inputs (the
 * seed's next check 1): the attack of cfg->attack (FGSM, PGD, the suite; any
 * kind of attack.h) runs through classifier c (a posterior's classifier
 * averages its samples, so its gradient is the EOT gradient), and a
 * predictor turns clean and adversarial inputs into probabilities, which
 * are judged with metrics.h (ECE with eval's 15 bins):
 *
 *   struct sk_study_adv_cal_config cfg = sk_study_adv_cal_defaults(SK_ATTACK_PGD);
 *   float eps[3] = { 0, 0.05f, 0.1f };
 *   struct sk_study_adv_cal out[3];
 *   if (sk_study_adv_calibration_bayes(p, &cfg, eps, 3, x, y, n, out)) fprintf(stderr, "%s\n", sk_last_error());
 *   printf("ECE clean %.4f, at eps 0.1 %.4f\n", out[0].clean.ece, out[2].adv.ece);
 *
 * Over a list of eps (ascending), a row already misclassified at a smaller
 * eps keeps that adversarial example at the larger one unless the new one
 * is misclassified as well (the old example lies in the larger ball too),
 * so adversarial accuracy is non-increasing along the curve. eps = 0 runs
 * no attack: its adversarial figures are the clean ones, bit for bit. */

/* Probabilities [n,K] of n rows of x (raw units), for the metrics. */
typedef int (*sk_study_predict_fn)(void *ctx, const float *x, int n, float *probs);
struct sk_study_predictor {
    sk_study_predict_fn fn;
    void *ctx;
};

struct sk_study_adv_cal_config {
    /* The attack: kind, norm, steps, restarts, box, seed, batch (eps is set
     * per point of the curve); audits are off by default here. */
    struct sk_attack_config attack;
    /* sk_study_adv_calibration_bayes only: */
    int samples;        /* posterior samples of the predictive (default 20, eval's) */
    int attack_samples; /* posterior samples per attack gradient, EOT (default 10) */
    uint64_t seed;      /* the predictive's samples (eval's --mc-seed; default 0); the attack's
                         * classifier draws from seed + 101 */
};
/* attack = sk_attack_defaults(kind, SK_NORM_LINF, 0) with audits off. */
struct sk_study_adv_cal_config sk_study_adv_cal_defaults(enum sk_attack_kind kind);

struct sk_study_adv_cal {
    float eps;
    int n;
    struct sk_metric_summary clean, adv; /* accuracy, NLL, Brier, ECE, MCE of the predictive */
    double clean_conf, adv_conf;         /* mean max-probability (confidence) */
    double adv_entropy;                  /* mean predictive entropy on the adversarial inputs */
    long grad_evals;                     /* input gradients the attack took (rows x EOT samples) */
    double seconds;
};

/* Calibration of `pred` at each eps[0..n_eps) (ascending, >= 0) with the
 * attack run through c on n rows of x (labels y). pred NULL: the
 * probabilities of c itself (exp of log_probs; for a stochastic classifier
 * averaged over ceil(attack.verdict_samples / c->n_samples) calls, at least
 * 2). out[n_eps]. SK_EINVAL naming "adv_cal.eps" or the attack's field for a
 * bad setting; SK_OK otherwise. c's counters advance. */
int sk_study_adv_calibration(struct sk_classifier *c, const struct sk_study_predictor *pred,
                             const struct sk_study_adv_cal_config *cfg, const float *eps, int n_eps, const float *x,
                             const int *y, int n, struct sk_study_adv_cal *out);
/* The same for a posterior (any method): the attack through
 * sk_bayes_classifier(p, cfg->attack_samples, cfg->seed + 101), the metrics
 * from sk_bayes_predict(p, ., cfg->samples, cfg->seed): the clean figures are
 * exactly those of sk_bayes_report(p, x, y, n, ..., cfg->samples, cfg->seed)
 * (what `skeptic eval --samples S --mc-seed SEED` prints). */
int sk_study_adv_calibration_bayes(struct sk_posterior *p, const struct sk_study_adv_cal_config *cfg,
                                   const float *eps, int n_eps, const float *x, const int *y, int n,
                                   struct sk_study_adv_cal *out);

/* ---------------- sweeps ----------------
 * A grid of training configurations (depth, width, optimizer, batch size,
 * learning rate, seed, adversarial training, Bayesian method), each trained
 * on the same rows and measured the same way: clean, train and test loss and
 * accuracy (the generalization gap), ECE, Brier, OOD AUROC, the curvature
 * measures of curvature.h, robust accuracy and calibration under FGSM, PGD
 * and the suite (EOT for stochastic models), IBP-certified accuracy of
 * deterministic nets. One JSON line per configuration, keyed by the hash of
 * the configuration; the row of a configuration is a pure function of the
 * configuration (its seed included) and the data: run twice, it has the
 * same bits (for one thread count).
 *
 *   struct sk_sweep_config cfg = sk_sweep_defaults();
 *   sk_sweep_grid_set(&cfg.grid, SK_SWEEP_DEPTH, "1,2,3");
 *   struct sk_sweep *s = sk_sweep_new(&cfg, train, test, ood);
 *   if (!s || sk_sweep_resume(s, "rows.jsonl") || sk_sweep_run(s, "rows.jsonl"))
 *       fprintf(stderr, "%s\n", sk_last_error());
 *   sk_sweep_free(s);
 *
 * The loop of sk_sweep_run is three calls, so that a distributor (MPI ranks,
 * hosts) can run it in pieces: sk_sweep_next (the next configuration index
 * not finished), sk_sweep_run_one (index -> row text; no shared state is
 * written) and sk_sweep_append (one finished row into the file, atomically).
 * A process that hands out indices calls sk_sweep_next and sk_sweep_append;
 * workers call sk_sweep_run_one on their own sk_sweep (same config and
 * data). Rows are whole lines written with one write(2) and fsync: a sweep
 * killed at any moment leaves whole rows, plus at most one torn line at the
 * end, which sk_sweep_resume cuts off. */

enum sk_sweep_axis {
    SK_SWEEP_DEPTH,     /* hidden layers of the MLP (>= 1) */
    SK_SWEEP_WIDTH,     /* units per hidden layer (>= 1) */
    SK_SWEEP_OPTIMIZER, /* sgd | momentum | nesterov | adam | adamw | rmsprop | sam (momentum, SAM rho 0.05) */
    SK_SWEEP_BATCH,     /* batch size (>= 1) */
    SK_SWEEP_LR,        /* learning rate (> 0) or "auto": sgd 0.1, adam/adamw/rmsprop 1e-3, others 0.01 */
    SK_SWEEP_SEED,      /* seed of init, order, dropout, posterior samples and attacks */
    SK_SWEEP_ADV,       /* adversarial training: none | pgd | fgsm | trades | ... (robust.h's kinds), at cfg.adv_eps */
    SK_SWEEP_BAYES,     /* none | mc-dropout (mcdropout) | ensemble | vi | sgld | laplace */
    SK_SWEEP_N_AXES
};
#define SK_SWEEP_MAX_VALUES 16
/* "depth", "width", "optimizer", "batch", "lr", "seed", "adv", "bayes". */
const char *sk_sweep_axis_name(enum sk_sweep_axis a);
int sk_sweep_axis_parse(const char *s); /* -1 if unknown */

struct sk_sweep_grid {
    int n[SK_SWEEP_N_AXES];
    char value[SK_SWEEP_N_AXES][SK_SWEEP_MAX_VALUES][24];
};
/* Set axis a from a comma list ("1,2,3"); each value is checked. SK_EINVAL
 * naming the axis and the value ("sweep.depth value 'x' is not an integer
 * >= 1"), also for an empty list, more than SK_SWEEP_MAX_VALUES values or a
 * value given twice. */
int sk_sweep_grid_set(struct sk_sweep_grid *g, enum sk_sweep_axis a, const char *list);
/* A grid file: lines "AXIS = v1,v2,..." (or "AXIS: ..."), '#' comments,
 * blank lines. SK_EINVAL naming the file, the line and the axis or value. */
int sk_sweep_grid_read(struct sk_sweep_grid *g, const char *path);
long sk_sweep_grid_size(const struct sk_sweep_grid *g);

/* Configuration `index` of the grid: the first axis varies slowest. */
struct sk_sweep_point {
    long index;
    int at[SK_SWEEP_N_AXES]; /* which value of each axis */
    int depth, width, batch;
    const char *optimizer;   /* the grid's string */
    float lr;                /* resolved ("auto" replaced) */
    uint64_t seed;
    int adv;                 /* enum sk_robust_kind */
    int bayes;               /* enum sk_bayes_method */
};
int sk_sweep_point(const struct sk_sweep_grid *g, long index, struct sk_sweep_point *out);

struct sk_sweep_config {
    struct sk_sweep_grid grid; /* default: one value per axis: depth 2, width 256, adam, batch 128, lr auto,
                                * seed 1, adv none, bayes none */
    const char *data;          /* the data's name, recorded in models and hashed (default "fashion-mnist") */
    const char *dir;           /* NULL, or a directory: the model of each configuration is saved there as
                                * <config_hash>.safetensors and loaded instead of trained when present */
    int epochs;                /* default 5, >= 1 */
    int n_test;                /* test rows of the clean metrics (default 2000; 0 = all) */
    int n_adv;                 /* test rows attacked by FGSM and PGD, and certified (default 500), >= 1 */
    int n_suite;               /* test rows attacked by the suite (default 200; 0 = no suite; nets of
                                * fewer than 4 classes have none: its DLR losses need 4) */
    int n_ood;                 /* OOD rows (default 2000; 0 = all) */
    int n_curv;                /* training rows of the curvature measures (default 512; 0 = no curvature) */
    float eps;                 /* L-inf budget of the attacks (default 0.1), > 0 */
    float adv_eps;             /* budget of adversarial training (0 = eps) */
    float cert_eps;            /* budget of IBP certification (default 0.01; 0 = no certification) */
    int pgd_steps;             /* default 10 */
    int suite_steps;           /* steps of the suite's gradient attacks (default 20) */
    int suite_queries;         /* queries of its Square attack (default 500) */
    int samples;               /* posterior samples of the predictive (default 20) */
    int attack_samples;        /* EOT samples per attack gradient (default 10) */
    int members;               /* ensemble members (default 5) */
    float dropout;             /* mc-dropout rate (default 0.2) */
    float clip_min, clip_max;  /* the attacks' box (default [0,1]) */
    /* Progress (NULL: silent): the stage a configuration is in ("train",
     * "curvature", "fgsm", ...); for the stage "epoch" the epoch's index. */
    void (*on_stage)(void *ctx, long index, const char *stage, int epoch);
    void *ctx;
};
struct sk_sweep_config sk_sweep_defaults(void);
/* SK_EINVAL naming the first field out of range ("sweep.epochs"). */
int sk_sweep_check(const struct sk_sweep_config *cfg);

struct sk_sweep;
/* A sweep over cfg (copied; the strings it points to and the data are
 * borrowed and must outlive it): train (n rows), test, ood (NULL: no OOD
 * AUROC). Raw data in the attacks' box. NULL + sk_last_error() on a bad
 * config or data that do not fit (test/ood dimensions). */
struct sk_sweep *sk_sweep_new(const struct sk_sweep_config *cfg, const struct sk_dataset *train,
                              const struct sk_dataset *test, const struct sk_dataset *ood);
void sk_sweep_free(struct sk_sweep *s); /* NULL ok */
long sk_sweep_size(const struct sk_sweep *s);
/* The configuration hash of index (16 hex digits, FNV-1a 64 of the
 * configuration's canonical text: every axis value, the budget and the
 * data), into buf (>= 17 bytes). */
void sk_sweep_config_hash(const struct sk_sweep *s, long index, char *buf);
/* Read the rows already in path (missing file: none): a row whose
 * config_hash is that of a configuration of this grid marks it finished;
 * rows of other grids are kept and ignored. A torn last line (no newline,
 * or not JSON) is cut off the file. SK_EFORMAT naming the file and line for
 * a whole line that is no JSON object. */
int sk_sweep_resume(struct sk_sweep *s, const char *path);
bool sk_sweep_finished(const struct sk_sweep *s, long index);
/* The first index >= from that is not finished, or -1. */
long sk_sweep_next(const struct sk_sweep *s, long from);
/* Run configuration index: train it (or load its model from cfg.dir), measure
 * it and write its row (one JSON object, no newline; owned, free with
 * sk_free) to *row. Touches no file but the model in cfg.dir. */
int sk_sweep_run_one(struct sk_sweep *s, long index, char **row);
/* Append row (of configuration index) as one line of path atomically and
 * mark index finished. */
int sk_sweep_append(struct sk_sweep *s, const char *path, long index, const char *row);
/* The serial loop: every unfinished index in order, each row appended as it
 * is done. on_row (may be NULL) sees each row; nonzero stops the loop. */
int sk_sweep_run(struct sk_sweep *s, const char *path, int (*on_row)(void *ctx, long index, const char *row),
                 void *ctx);

/* ---- measures against the generalization gap and robust accuracy ----
 * Kendall's tau-b of n pairs (a_i, b_i): (C - D) / sqrt((P - T_a)(P - T_b))
 * over the P = n(n-1)/2 pairs, C / D the concordant / discordant ones, T_a /
 * T_b the pairs tied in a / in b; pairs with a NaN are left out. NaN when
 * fewer than two pairs remain or either side is constant. */
double sk_stat_kendall_tau_b(const double *a, const double *b, int n);

/* The granulated coefficient Psi of Jiang et al. 2020: for each axis i,
 * m_i = the mean over the groups of rows equal in every other axis of the
 * tau-b within the group (groups where tau is undefined left out); Psi =
 * the mean of m_i over the axes where some group has a tau. key[r][a] says
 * which value of axis a row r has (n_axes axes). m_axis[n_axes] (may be
 * NULL) gets each m_i (NaN where undefined). NaN when no axis has one. */
double sk_stat_psi(const double *measure, const double *target, int n, const int *key, int n_axes,
                   double *m_axis);

#define SK_SWEEP_MAX_MEASURES 64
struct sk_sweep_summary {
    int n_rows;
    int n_measures, n_targets;
    char measure[SK_SWEEP_MAX_MEASURES][32];
    char target[4][32];                 /* "gap_err", "gap_loss", "pgd_acc" */
    double tau[SK_SWEEP_MAX_MEASURES][4], psi[SK_SWEEP_MAX_MEASURES][4];
    double mean[SK_SWEEP_MAX_MEASURES]; /* mean over the rows where it is finite */
    int n_finite[SK_SWEEP_MAX_MEASURES];
};
/* Tau and Psi of every measure of the rows in path against each target.
 * Measures are the numeric fields of the rows other than the configuration
 * (axes, hashes, counts) and the targets. SK_EFORMAT naming the file and
 * line for a row that is no JSON object or lacks an axis field. */
int sk_sweep_summarize(const char *path, struct sk_sweep_summary *out);

#endif
