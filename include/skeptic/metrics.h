/* skeptic/metrics.h — metrics of predictions and uncertainty on plain arrays.
 *
 * Overview. Every function here works on plain arrays of probabilities (rows
 * of K classes that sum to 1), labels and scores; none needs a model or a
 * graph, so every command (eval, compare, attacks, studies) computes its
 * numbers with the same code. Probabilities are float32 [N,K] row-major;
 * sums are accumulated in double.
 *
 *   accuracy  mean [argmax_k p_nk == y_n]          (ties: the lowest index wins)
 *   nll       mean -log max(p_{n,y_n}, 1e-12)
 *   brier     mean sum_k (p_nk - [k == y_n])^2     (in [0, 2])
 *   ece       sum_b (n_b / N) |acc_b - conf_b|,  mce = max_b |acc_b - conf_b| over
 *             non-empty bins; conf = max_k p_nk, bin b holds conf in (b/B, (b+1)/B]
 *             (bin 0 also holds conf = 0); B = 15 by default (Guo et al. 2017)
 *
 * Predictive quantities from S samples p_s [S,N,K] (MC dropout masks,
 * ensemble members, weight samples):
 *   pbar      = mean_s p_s                                   predictive distribution
 *   H[pbar]   = -sum_k pbar_k log pbar_k                     total entropy
 *   E_s H[p_s]                                               expected entropy (aleatoric)
 *   MI        = H[pbar] - E_s H[p_s] >= 0                    mutual information (epistemic)
 * (natural logarithms; 0 log 0 = 0).
 *
 * Detection (out-of-distribution, misclassification, adversarial) takes an
 * uncertainty score per input, bigger = more suspicious, and a label
 * positive (the thing to detect) or negative:
 *   auroc     P(s_pos > s_neg) + 1/2 P(s_pos == s_neg)  (the Mann–Whitney
 *             statistic: exactly the pairwise count with ties as one half)
 *   aupr      average precision with the positives as the positive class:
 *             sum over distinct thresholds t (descending) of (R_t - R_{t-1}) P_t
 *             (tied scores enter together, as scikit-learn)
 *   fpr95     false-positive rate at the first threshold (descending) at which
 *             the true-positive rate reaches 0.95
 */
#ifndef SKEPTIC_METRICS_H
#define SKEPTIC_METRICS_H

#include "skeptic/core.h"

#ifdef __cplusplus
extern "C" {
#endif

#define SK_METRIC_MAX_BINS 100
#define SK_METRIC_DEFAULT_BINS 15

double sk_metric_accuracy(const float *probs, const int *y, int N, int K);
double sk_metric_nll(const float *probs, const int *y, int N, int K);
double sk_metric_brier(const float *probs, const int *y, int N, int K);

/* The reliability table: per bin the number of inputs, their mean confidence
 * and their accuracy (0 for empty bins), and the ECE / MCE. */
struct sk_reliability {
    int n_bins;
    long count[SK_METRIC_MAX_BINS];
    double conf[SK_METRIC_MAX_BINS];
    double acc[SK_METRIC_MAX_BINS];
    double ece, mce;
};
/* n_bins in [1, SK_METRIC_MAX_BINS] (0 = the default 15). SK_EINVAL otherwise. */
int sk_metric_calibration(const float *probs, const int *y, int N, int K, int n_bins, struct sk_reliability *out);

/* All the point metrics of one prediction at once. */
struct sk_metric_summary {
    int n;
    double accuracy, nll, brier, ece, mce;
};
int sk_metric_summary(const float *probs, const int *y, int N, int K, struct sk_metric_summary *out);

/* Predictive quantities from samples [S,N,K] (see the overview). Each output
 * (pbar [N,K], total [N], expected [N], mi [N]) may be NULL. MI is clamped at
 * 0 against rounding. */
void sk_predictive(const float *sample_probs, int S, int N, int K, float *pbar, float *total_entropy,
                   float *expected_entropy, float *mi);
/* Entropy of each row of probs [N,K]. */
void sk_entropy_rows(const float *probs, int N, int K, float *h);

/* Which number serves as the uncertainty score (bigger = less sure). */
enum sk_unc_score {
    SK_SCORE_MAXPROB = 0, /* 1 - max_k pbar_k */
    SK_SCORE_ENTROPY = 1, /* total predictive entropy */
    SK_SCORE_MI = 2,      /* mutual information (0 for a single sample) */
};
const char *sk_unc_score_name(enum sk_unc_score s);
int sk_unc_score_parse(const char *s); /* "maxprob" | "entropy" | "mi"; -1 if unknown */
/* score[N] from pbar [N,K] and (for SK_SCORE_MI) mi [N] (NULL = zeros). */
void sk_unc_score(enum sk_unc_score kind, const float *pbar, const float *mi, int N, int K, float *score);

/* Detection quality of a score: positives pos[n_pos], negatives neg[n_neg]
 * (bigger score = more likely positive). SK_EINVAL if either set is empty. */
struct sk_detection {
    double auroc, aupr, fpr95;
};
int sk_metric_detection(const float *pos, int n_pos, const float *neg, int n_neg, struct sk_detection *out);
/* The same with one score array and a label per element (1 = positive). */
int sk_metric_detection_labels(const float *score, const int *positive, int n, struct sk_detection *out);
/* AUROC alone (the Mann–Whitney statistic, O((n+m) log(n+m))). */
double sk_metric_auroc(const float *pos, int n_pos, const float *neg, int n_neg);

/* Misclassification detection: positives are the inputs whose argmax of pbar
 * is wrong, scored by `kind`. SK_EINVAL if all are right or all wrong. */
int sk_metric_misclassification(const float *pbar, const float *mi, const int *y, int N, int K,
                                enum sk_unc_score kind, struct sk_detection *out);

/* Selective prediction: keep the fraction c of inputs with the smallest
 * uncertainty (ties broken by index) and report their accuracy, for each
 * coverage c in coverage[n_cov] (in (0,1]). acc[n_cov]. */
int sk_metric_coverage(const float *uncertainty, const float *pbar, const int *y, int N, int K,
                       const float *coverage, int n_cov, double *acc);

/* ---- figures (skeptic/figure.h: PNG or SVG by the path's extension,
 * written atomically) ----
 * Each has a title, axes with numbered ticks and labels, and a legend.
 *   reliability diagram: per non-empty bin a bar of its accuracy (blue), the
 *     gap to its mean confidence (translucent red), the diagonal (dashed
 *     grey), ECE and MCE in the panel title, and under it the inputs per bin
 *     (grey bars, log scale).
 *   histograms: the normalised histograms of a[na] (blue, named name_a) and
 *     b[nb] (orange, named name_b; nb = 0 for none) over [lo, hi] in `bins`
 *     bins (values outside go to the end bins, non-finite ones are skipped),
 *     e.g. entropy in and out of distribution.
 * SK_EINVAL naming the path for a bad table or range, SK_EIO naming the path
 * if the file cannot be written. */
int sk_plot_reliability(const char *path, const struct sk_reliability *rel);
int sk_plot_histograms(const char *path, const char *title, const char *xlabel, const float *a, int na,
                       const char *name_a, const float *b, int nb, const char *name_b, int bins, float lo, float hi);
/* A line chart of y[i] against x[i] (n >= 2; non-finite points break the
 * line), the axes over the data's range; any text may be NULL. */
int sk_plot_line(const char *path, const char *title, const char *xlabel, const char *ylabel, const float *x,
                 const float *y, int n);
/* Up to 8 series on one chart, series k in palette colour k + 1 (blue, red,
 * green, orange, purple, grey, brown, pink), solid or dashed, named in the
 * legend (name NULL: not listed); non-finite points (and, with log_y, values
 * <= 0) break a line. log_y: the y axis is logarithmic, ticks at powers of
 * ten. */
struct sk_plot_series {
    const double *x, *y;
    int n;
    const char *name;
    bool dashed;
};
int sk_plot_lines(const char *path, const char *title, const char *xlabel, const char *ylabel,
                  const struct sk_plot_series *s, int n_series, bool log_y);
/* A heat map of z on the grid x[nx] by y[ny] (both increasing; z[j nx + i]
 * at (x[i], y[j]), bilinear between grid points), coloured on a viridis ramp
 * over z's range (log10 of z with log_z; values <= 0 then grey), white
 * contour lines between n_levels equal bands (0: none), labelled axes and a
 * colour bar with numbered ticks and the label zlabel. */
int sk_plot_heatmap(const char *path, const char *title, const char *xlabel, const char *ylabel, const char *zlabel,
                    const double *x, int nx, const double *y, int ny, const double *z, bool log_z, int n_levels);

#ifdef __cplusplus
}
#endif
#endif
