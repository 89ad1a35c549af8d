/* Metrics on plain arrays: hand-worked NLL / Brier / ECE values, the ECE of a
 * calibrated synthetic predictor, AUROC against the brute-force pairwise
 * count with ties, AUPR / FPR95 by hand, the entropy decomposition, coverage. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "skeptic/skeptic.h"
#include "skeptic/metrics.h"
#include "testutil.h"

static void test_hand_values(void)
{
    /* two rows, three classes */
    const float p[] = { 0.7f, 0.2f, 0.1f, 0.25f, 0.25f, 0.5f };
    const int y[] = { 0, 1 };
    double nll = sk_metric_nll(p, y, 2, 3);
    CHECK(fabs(nll - (-(log(0.7) + log(0.25)) / 2)) < 1e-6, "nll %g", nll);
    /* brier: (0.09+0.04+0.01) + (0.0625+0.5625+0.25) = 0.14 + 0.875 -> mean 0.5075 */
    double br = sk_metric_brier(p, y, 2, 3);
    CHECK(fabs(br - 0.5075) < 1e-6, "brier %g", br);
    CHECK(sk_metric_accuracy(p, y, 2, 3) == 0.5, "accuracy 1/2");

    /* miscalibrated predictor, 10 bins: 4 inputs with confidence 0.95 of
     * which 2 are right (gap 0.45), 6 with confidence 0.65 of which 3 are
     * right (gap 0.15): ECE = 0.4*0.45 + 0.6*0.15 = 0.27, MCE 0.45 */
    float q[10 * 2];
    int yq[10];
    for (int i = 0; i < 10; i++) {
        float c = i < 4 ? 0.95f : 0.65f;
        q[2 * i] = c;
        q[2 * i + 1] = 1 - c;
        yq[i] = i < 4 ? (i < 2 ? 0 : 1) : (i < 7 ? 0 : 1);
    }
    struct sk_reliability rel;
    CHECK(sk_metric_calibration(q, yq, 10, 2, 10, &rel) == SK_OK, "calibration runs");
    CHECK(fabs(rel.ece - 0.27) < 1e-6, "hand ECE 0.27, got %g", rel.ece);
    CHECK(fabs(rel.mce - 0.45) < 1e-6, "hand MCE 0.45, got %g", rel.mce);
    CHECK(rel.count[9] == 4 && rel.count[6] == 6, "bins (0.9,1] and (0.6,0.7] hold 4 and 6: %ld %ld",
          rel.count[9], rel.count[6]);
    CHECK(fabs(rel.acc[9] - 0.5) < 1e-12 && fabs(rel.conf[6] - 0.65) < 1e-6, "bin accuracy and confidence");
    CHECK(sk_metric_calibration(q, yq, 10, 2, 101, &rel) == SK_EINVAL && strstr(sk_last_error(), "bins"),
          "too many bins rejected");
}

static void test_calibrated(void)
{
    /* a predictor whose confidence c ~ U(0.1,1) (K = 10) is right with
     * probability exactly c: ECE -> 0 as N grows (sampling noise ~ 1/sqrt(N/B)) */
    int N = 1000000, K = 10;
    float *p = malloc(sizeof(float) * (size_t)N * K);
    int *y = malloc(sizeof(int) * (size_t)N);
    struct sk_rng r = sk_rng_new(42);
    for (int i = 0; i < N; i++) {
        float c = 0.1f + 0.9f * sk_rng_uniform(&r);
        float *row = p + (size_t)i * K;
        for (int k = 0; k < K; k++) row[k] = (1 - c) / (K - 1);
        int top = (int)sk_rng_below(&r, (uint64_t)K);
        row[top] = c;
        if (sk_rng_uniform(&r) < c) y[i] = top;
        else y[i] = (top + 1 + (int)sk_rng_below(&r, (uint64_t)K - 1)) % K;
    }
    struct sk_reliability rel;
    sk_metric_calibration(p, y, N, K, 15, &rel);
    CHECK(rel.ece < 0.005, "calibrated predictor has ECE ~ 0: %g", rel.ece);
    /* the same predictor made over-confident: report conf' = min(1, c + 0.1) -> ECE ~ 0.1 */
    for (int i = 0; i < N; i++) {
        float *row = p + (size_t)i * K;
        int top = 0;
        for (int k = 1; k < K; k++)
            if (row[k] > row[top]) top = k;
        float c = fminf(1.0f, row[top] + 0.1f);
        for (int k = 0; k < K; k++) row[k] = (1 - c) / (K - 1);
        row[top] = c;
    }
    sk_metric_calibration(p, y, N, K, 15, &rel);
    /* expected: E[min(1,c+0.1) - c] = 0.1 - E[(c+0.1-1)+] = 0.1 - (0.1^2/2)/0.9 */
    double want = 0.1 - 0.005 / 0.9;
    CHECK(fabs(rel.ece - want) < 0.006, "over-confident predictor has ECE %g, want %g", rel.ece, want);
    free(p);
    free(y);
}

static double brute_auroc(const float *pos, int np, const float *neg, int nn)
{
    double s = 0;
    for (int i = 0; i < np; i++)
        for (int j = 0; j < nn; j++) s += pos[i] > neg[j] ? 1.0 : pos[i] == neg[j] ? 0.5 : 0.0;
    return s / ((double)np * nn);
}

static void test_auroc(void)
{
    struct sk_rng r = sk_rng_new(7);
    for (int trial = 0; trial < 20; trial++) {
        int np = 1 + (int)sk_rng_below(&r, 300), nn = 1 + (int)sk_rng_below(&r, 300);
        float *a = malloc(sizeof(float) * np), *b = malloc(sizeof(float) * nn);
        /* few distinct values: many ties inside and across the sets */
        int levels = 2 + trial;
        for (int i = 0; i < np; i++) a[i] = (float)sk_rng_below(&r, levels) + (trial % 3 == 0 ? 0.5f : 0.0f);
        for (int i = 0; i < nn; i++) b[i] = (float)sk_rng_below(&r, levels);
        double fast = sk_metric_auroc(a, np, b, nn), slow = brute_auroc(a, np, b, nn);
        CHECK(fabs(fast - slow) < 1e-12, "trial %d: auroc %.15g vs pairwise %.15g", trial, fast, slow);
        free(a);
        free(b);
    }
    /* all tied -> 1/2; perfect -> 1; reversed -> 0 */
    float one[3] = { 1, 1, 1 }, lo[2] = { 0, 0 };
    CHECK(sk_metric_auroc(one, 3, one, 3) == 0.5, "all ties give 0.5");
    CHECK(sk_metric_auroc(one, 3, lo, 2) == 1.0 && sk_metric_auroc(lo, 2, one, 3) == 0.0, "perfect / reversed");

    /* AUPR and FPR95 by hand: positives {0.9, 0.7, 0.4}, negatives {0.8, 0.3}.
     * descending: .9P (R1/3,P1) .8N .7P (R2/3,P2/3) .4P (R1,P3/4) .3N
     * AP = 1/3*1 + 1/3*2/3 + 1/3*3/4 = 0.80555...; TPR reaches 0.95 at 0.4 where FPR = 1/2 */
    float pos[] = { 0.9f, 0.7f, 0.4f }, neg[] = { 0.8f, 0.3f };
    struct sk_detection d;
    CHECK(sk_metric_detection(pos, 3, neg, 2, &d) == SK_OK, "detection runs");
    CHECK(fabs(d.aupr - (1.0 / 3 + 2.0 / 9 + 0.25)) < 1e-9, "AUPR %g", d.aupr);
    CHECK(fabs(d.fpr95 - 0.5) < 1e-12, "FPR95 %g", d.fpr95);
    CHECK(fabs(d.auroc - 4.0 / 6) < 1e-12, "AUROC %g", d.auroc);
    CHECK(sk_metric_detection(pos, 0, neg, 2, &d) == SK_EINVAL, "empty positives rejected");
}

static void test_entropy_decomposition(void)
{
    int S = 7, N = 50, K = 5;
    float *sp = malloc(sizeof(float) * (size_t)S * N * K), pbar[50 * 5], th[50], eh[50], mi[50];
    struct sk_rng r = sk_rng_new(3);
    for (int i = 0; i < S * N; i++) {
        double z = 0;
        for (int k = 0; k < K; k++) z += (sp[(size_t)i * K + k] = expf(3 * sk_rng_normal(&r)));
        for (int k = 0; k < K; k++) sp[(size_t)i * K + k] /= (float)z;
    }
    sk_predictive(sp, S, N, K, pbar, th, eh, mi);
    double worst = 0, minmi = 1;
    for (int i = 0; i < N; i++) {
        /* recompute independently in double */
        double h = 0, e = 0;
        for (int k = 0; k < K; k++) {
            double p = 0;
            for (int s = 0; s < S; s++) p += sp[((size_t)s * N + i) * K + k];
            p /= S;
            h -= p * log(p);
        }
        for (int s = 0; s < S; s++)
            for (int k = 0; k < K; k++) {
                double q = sp[((size_t)s * N + i) * K + k];
                e -= q * log(q) / S;
            }
        worst = fmax(worst, fabs(th[i] - h) + fabs(eh[i] - e) + fabs((double)th[i] - eh[i] - mi[i]));
        minmi = fmin(minmi, mi[i]);
    }
    CHECK(worst < 1e-5, "total = expected + MI on random inputs (max err %g)", worst);
    CHECK(minmi > 0, "MI positive when samples disagree (%g)", minmi);
    /* identical samples: MI = 0 */
    for (int s = 1; s < S; s++) memcpy(sp + (size_t)s * N * K, sp, sizeof(float) * N * K);
    sk_predictive(sp, S, N, K, NULL, th, eh, mi);
    double mx = 0;
    for (int i = 0; i < N; i++) mx = fmax(mx, mi[i]);
    CHECK(mx < 1e-6, "identical samples have MI 0 (%g)", mx);
    float sc[50];
    sk_unc_score(SK_SCORE_MI, pbar, mi, N, K, sc);
    CHECK(sc[3] == mi[3], "score mi");
    sk_unc_score(SK_SCORE_MAXPROB, pbar, NULL, N, K, sc);
    CHECK(sc[0] >= 0 && sc[0] < 1, "score maxprob");
    CHECK(sk_unc_score_parse("entropy") == SK_SCORE_ENTROPY && sk_unc_score_parse("x") == -1, "score parse");
    free(sp);
}

static void test_coverage_and_misclassification(void)
{
    /* 4 inputs: uncertainties .1 .2 .3 .4, the first two right */
    const float p[] = { 0.9f, 0.1f, 0.8f, 0.2f, 0.7f, 0.3f, 0.6f, 0.4f };
    const int y[] = { 0, 0, 1, 1 };
    float u[4];
    sk_unc_score(SK_SCORE_MAXPROB, p, NULL, 4, 2, u);
    float cov[] = { 0.5f, 0.75f, 1.0f };
    double acc[3];
    CHECK(sk_metric_coverage(u, p, y, 4, 2, cov, 3, acc) == SK_OK, "coverage runs");
    CHECK(acc[0] == 1.0 && fabs(acc[1] - 2.0 / 3) < 1e-12 && acc[2] == 0.5, "coverage %g %g %g", acc[0], acc[1],
          acc[2]);
    struct sk_detection d;
    CHECK(sk_metric_misclassification(p, NULL, y, 4, 2, SK_SCORE_MAXPROB, &d) == SK_OK && d.auroc == 1.0,
          "misclassification perfectly ranked by max prob (%g)", d.auroc);
    float bad = 1.5f;
    CHECK(sk_metric_coverage(u, p, y, 4, 2, &bad, 1, acc) == SK_EINVAL, "coverage > 1 rejected");
}

int main(void)
{
    test_hand_values();
    test_calibrated();
    test_auroc();
    test_entropy_decomposition();
    test_coverage_and_misclassification();
    return sk_test_finish("test_metrics");
}
