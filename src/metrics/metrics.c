/* Metrics of predictions and uncertainty on plain arrays (see metrics.h). */
#include "skeptic/metrics.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static int argmax_row(const float *r, int K)
{
    int b = 0;
    for (int k = 1; k < K; k++)
        if (r[k] > r[b]) b = k;
    return b;
}

double sk_metric_accuracy(const float *probs, const int *y, int N, int K)
{
    if (N <= 0) return 0;
    long c = 0;
    for (int i = 0; i < N; i++) c += argmax_row(probs + (size_t)i * K, K) == y[i];
    return (double)c / N;
}

double sk_metric_nll(const float *probs, const int *y, int N, int K)
{
    if (N <= 0) return 0;
    double s = 0;
    for (int i = 0; i < N; i++) s -= log(fmax((double)probs[(size_t)i * K + y[i]], 1e-12));
    return s / N;
}

double sk_metric_brier(const float *probs, const int *y, int N, int K)
{
    if (N <= 0) return 0;
    double s = 0;
    for (int i = 0; i < N; i++)
        for (int k = 0; k < K; k++) {
            double d = probs[(size_t)i * K + k] - (k == y[i] ? 1.0 : 0.0);
            s += d * d;
        }
    return s / N;
}

int sk_metric_calibration(const float *probs, const int *y, int N, int K, int n_bins, struct sk_reliability *out)
{
    if (n_bins == 0) n_bins = SK_METRIC_DEFAULT_BINS;
    if (n_bins < 1 || n_bins > SK_METRIC_MAX_BINS)
        return sk_error(SK_EINVAL, "calibration needs 1 to %d bins, got %d", SK_METRIC_MAX_BINS, n_bins);
    memset(out, 0, sizeof *out);
    out->n_bins = n_bins;
    double csum[SK_METRIC_MAX_BINS] = { 0 }, hits[SK_METRIC_MAX_BINS] = { 0 };
    for (int i = 0; i < N; i++) {
        const float *r = probs + (size_t)i * K;
        int k = argmax_row(r, K);
        double conf = r[k];
        /* bin b holds (b/B, (b+1)/B]: ceil(conf B) - 1 */
        int b = (int)ceil(conf * n_bins) - 1;
        if (b < 0) b = 0;
        if (b >= n_bins) b = n_bins - 1;
        out->count[b]++;
        csum[b] += conf;
        hits[b] += k == y[i];
    }
    for (int b = 0; b < n_bins; b++) {
        if (!out->count[b]) continue;
        out->conf[b] = csum[b] / out->count[b];
        out->acc[b] = hits[b] / out->count[b];
        double gap = fabs(out->acc[b] - out->conf[b]);
        out->ece += gap * out->count[b] / (N > 0 ? N : 1);
        if (gap > out->mce) out->mce = gap;
    }
    return SK_OK;
}

int sk_metric_summary(const float *probs, const int *y, int N, int K, struct sk_metric_summary *out)
{
    struct sk_reliability rel;
    int rc = sk_metric_calibration(probs, y, N, K, 0, &rel);
    if (rc) return rc;
    out->n = N;
    out->accuracy = sk_metric_accuracy(probs, y, N, K);
    out->nll = sk_metric_nll(probs, y, N, K);
    out->brier = sk_metric_brier(probs, y, N, K);
    out->ece = rel.ece;
    out->mce = rel.mce;
    return SK_OK;
}

static double row_entropy(const float *r, int K)
{
    double h = 0;
    for (int k = 0; k < K; k++)
        if (r[k] > 0) h -= (double)r[k] * log((double)r[k]);
    return h;
}

void sk_entropy_rows(const float *probs, int N, int K, float *h)
{
    for (int i = 0; i < N; i++) h[i] = (float)row_entropy(probs + (size_t)i * K, K);
}

void sk_predictive(const float *sp, int S, int N, int K, float *pbar, float *total_entropy, float *expected_entropy,
                   float *mi)
{
    double row[1024];
    double *acc = K <= 1024 ? row : malloc(sizeof(double) * (size_t)K);
    for (int i = 0; i < N; i++) {
        double eh = 0;
        for (int k = 0; k < K; k++) acc[k] = 0;
        for (int s = 0; s < S; s++) {
            const float *r = sp + ((size_t)s * N + i) * K;
            for (int k = 0; k < K; k++) acc[k] += r[k];
            eh += row_entropy(r, K);
        }
        double th = 0;
        for (int k = 0; k < K; k++) {
            double p = acc[k] / S;
            if (pbar) pbar[(size_t)i * K + k] = (float)p;
            if (p > 0) th -= p * log(p);
        }
        eh /= S;
        if (total_entropy) total_entropy[i] = (float)th;
        if (expected_entropy) expected_entropy[i] = (float)eh;
        if (mi) mi[i] = (float)fmax(th - eh, 0.0);
    }
    if (acc != row) free(acc);
}

const char *sk_unc_score_name(enum sk_unc_score s)
{
    static const char *names[] = { "maxprob", "entropy", "mi" };
    return (unsigned)s < 3 ? names[s] : "?";
}

int sk_unc_score_parse(const char *s)
{
    for (int i = 0; i < 3; i++)
        if (!strcmp(s, sk_unc_score_name((enum sk_unc_score)i))) return i;
    return -1;
}

void sk_unc_score(enum sk_unc_score kind, const float *pbar, const float *mi, int N, int K, float *score)
{
    for (int i = 0; i < N; i++) {
        const float *r = pbar + (size_t)i * K;
        switch (kind) {
        case SK_SCORE_MAXPROB: score[i] = 1.0f - r[argmax_row(r, K)]; break;
        case SK_SCORE_ENTROPY: score[i] = (float)row_entropy(r, K); break;
        case SK_SCORE_MI: score[i] = mi ? mi[i] : 0.0f; break;
        default: score[i] = 0; break;
        }
    }
}

struct scored {
    float s;
    int pos;
};

static int cmp_desc(const void *a, const void *b)
{
    float x = ((const struct scored *)a)->s, y = ((const struct scored *)b)->s;
    return (x < y) - (x > y);
}

/* Walk the scores from the top, a group of ties at a time. */
static int detect(struct scored *v, int n, long n_pos, long n_neg, struct sk_detection *out)
{
    qsort(v, (size_t)n, sizeof *v, cmp_desc);
    double auc = 0, ap = 0, fpr95 = NAN;
    long tp = 0, fp = 0;
    for (int i = 0; i < n;) {
        int j = i;
        long gp = 0, gn = 0;
        while (j < n && v[j].s == v[i].s) {
            if (v[j].pos) gp++;
            else gn++;
            j++;
        }
        /* positives of this group beat all negatives below (not yet seen),
         * tie with this group's negatives */
        auc += (double)gp * (double)(n_neg - fp - gn) + 0.5 * (double)gp * gn;
        double r0 = (double)tp / n_pos;
        tp += gp;
        fp += gn;
        double r1 = (double)tp / n_pos;
        ap += (r1 - r0) * ((double)tp / (tp + fp));
        if (isnan(fpr95) && r1 >= 0.95 - 1e-12) fpr95 = (double)fp / n_neg;
        i = j;
    }
    out->auroc = auc / ((double)n_pos * n_neg);
    out->aupr = ap;
    out->fpr95 = fpr95;
    return SK_OK;
}

int sk_metric_detection(const float *pos, int n_pos, const float *neg, int n_neg, struct sk_detection *out)
{
    if (n_pos < 1 || n_neg < 1)
        return sk_error(SK_EINVAL, "detection needs positives and negatives (got %d and %d)", n_pos, n_neg);
    int n = n_pos + n_neg;
    struct scored *v = sk_malloc(sizeof *v * (size_t)n);
    if (!v) return SK_ENOMEM;
    for (int i = 0; i < n_pos; i++) v[i] = (struct scored){ pos[i], 1 };
    for (int i = 0; i < n_neg; i++) v[n_pos + i] = (struct scored){ neg[i], 0 };
    int rc = detect(v, n, n_pos, n_neg, out);
    sk_free(v);
    return rc;
}

int sk_metric_detection_labels(const float *score, const int *positive, int n, struct sk_detection *out)
{
    long np = 0;
    for (int i = 0; i < n; i++) np += positive[i] != 0;
    if (np < 1 || np == n)
        return sk_error(SK_EINVAL, "detection needs positives and negatives (got %ld and %ld)", np, (long)n - np);
    struct scored *v = sk_malloc(sizeof *v * (size_t)n);
    if (!v) return SK_ENOMEM;
    for (int i = 0; i < n; i++) v[i] = (struct scored){ score[i], positive[i] != 0 };
    int rc = detect(v, n, np, n - np, out);
    sk_free(v);
    return rc;
}

double sk_metric_auroc(const float *pos, int n_pos, const float *neg, int n_neg)
{
    struct sk_detection d;
    if (sk_metric_detection(pos, n_pos, neg, n_neg, &d)) return NAN;
    return d.auroc;
}

int sk_metric_misclassification(const float *pbar, const float *mi, const int *y, int N, int K,
                                enum sk_unc_score kind, struct sk_detection *out)
{
    float *s = sk_malloc(sizeof(float) * (size_t)(N > 0 ? N : 1));
    int *wrong = sk_malloc(sizeof(int) * (size_t)(N > 0 ? N : 1));
    int rc = SK_ENOMEM;
    if (s && wrong) {
        sk_unc_score(kind, pbar, mi, N, K, s);
        for (int i = 0; i < N; i++) wrong[i] = argmax_row(pbar + (size_t)i * K, K) != y[i];
        rc = sk_metric_detection_labels(s, wrong, N, out);
    }
    sk_free(s);
    sk_free(wrong);
    return rc;
}

struct ranked {
    float u;
    int i;
};

static int cmp_asc(const void *a, const void *b)
{
    const struct ranked *x = a, *y = b;
    if (x->u != y->u) return (x->u > y->u) - (x->u < y->u);
    return (x->i > y->i) - (x->i < y->i);
}

int sk_metric_coverage(const float *uncertainty, const float *pbar, const int *y, int N, int K,
                       const float *coverage, int n_cov, double *acc)
{
    if (N < 1) return sk_error(SK_EINVAL, "coverage needs at least one input");
    for (int c = 0; c < n_cov; c++)
        if (!(coverage[c] > 0 && coverage[c] <= 1))
            return sk_error(SK_EINVAL, "coverage %g must be in (0,1]", coverage[c]);
    struct ranked *v = sk_malloc(sizeof *v * (size_t)N);
    if (!v) return SK_ENOMEM;
    for (int i = 0; i < N; i++) v[i] = (struct ranked){ uncertainty[i], i };
    qsort(v, (size_t)N, sizeof *v, cmp_asc);
    for (int c = 0; c < n_cov; c++) {
        int keep = (int)ceil(coverage[c] * N - 1e-9);
        if (keep < 1) keep = 1;
        long hits = 0;
        for (int j = 0; j < keep; j++) {
            int i = v[j].i;
            hits += argmax_row(pbar + (size_t)i * K, K) == y[i];
        }
        acc[c] = (double)hits / keep;
    }
    sk_free(v);
    return SK_OK;
}
